"""A real RabbitMQ broker for the AMQP sink tests (Debian's ``rabbitmq-server``).

The broker runs from a temporary directory (Mnesia data, logs, config, Erlang cookie) on
free loopback ports (AMQP, Erlang distribution and its own ``epmd``), without plugins, as
the unprivileged ``rabbitmq`` user when the tests run as root. It keeps its data across
``stop()`` / ``start()``, so durable queues and persistent messages survive a restart the
way they do in production. Start-up takes several seconds: one broker per test module.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["SERVER", "RabbitBroker", "free_port"]

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
EPMD_CANDIDATES = ("/usr/bin/epmd", "/usr/lib/erlang/bin/epmd")
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


class RabbitBroker:
    """One broker node; ``url`` has the user and a random password."""

    def __init__(self) -> None:
        self.user = "hookline"
        self.password = "rmq-" + secrets.token_hex(12)
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="hookline-rabbitmq-"))
        self._account = pwd.getpwnam("rabbitmq") if os.geteuid() == 0 else None
        self._server: subprocess.Popen[bytes] | None = None
        self._epmd: subprocess.Popen[bytes] | None = None
        self._prepare()

    @property
    def url(self) -> str:
        return f"amqp://{self.user}:{self.password}@127.0.0.1:{self.port}/"

    @property
    def url_without_password(self) -> str:
        return f"amqp://{self.user}@127.0.0.1:{self.port}/"

    def _prepare(self) -> None:
        home = self.base / "home"
        for sub in ("home", "mnesia", "log"):
            (self.base / sub).mkdir()
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            f"default_user = {self.user}\n"
            f"default_pass = {self.password}\n"
            "loopback_users = none\n"
            "log.console = true\n"
            "log.console.level = warning\n"
            "log.file = false\n"
            "disk_free_limit.absolute = 10MB\n"
        )
        if self._account is not None:
            self.base.chmod(0o755)
            for path in [self.base, *self.base.rglob("*")]:
                os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def _env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "LANG": "C.UTF-8",
            "HOME": str(self.base / "home"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.base / "rabbitmq.pid"),
            "RABBITMQ_NODENAME": f"hookline-test-{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def _spawn(self, argv: list[str], log_name: str) -> subprocess.Popen[bytes]:
        account = self._account
        with (self.base / log_name).open("ab") as out:
            return subprocess.Popen(
                argv,
                env=self._env(),
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=account.pw_uid if account is not None else None,
                group=account.pw_gid if account is not None else None,
                extra_groups=[] if account is not None else None,
            )

    def start(self) -> None:
        """Start the broker (and our own epmd the first time); wait until AMQP answers."""
        if self._epmd is None:
            epmd = next((p for p in EPMD_CANDIDATES if os.path.exists(p)), "epmd")
            self._epmd = self._spawn([epmd, "-port", str(self.epmd_port)], "epmd.out")
        self._server = self._spawn([SERVER], "server.out")
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _port_open(self.port):
            if self._server.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited:\n{self.output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"rabbitmq-server not up after 90 s:\n{self.output()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the broker (SIGTERM to its process group, as an init system would)."""
        server, self._server = self._server, None
        if server is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGCONT)  # a paused broker cannot stop
        _end(server)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing is answered."""
        if self._server is not None:
            os.killpg(self._server.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._server is not None:
            os.killpg(self._server.pid, signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        epmd, self._epmd = self._epmd, None
        if epmd is not None:
            _end(epmd)
        shutil.rmtree(self.base, ignore_errors=True)

    def output(self) -> str:
        path = self.base / "server.out"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _end(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group this helper started (the Erlang VM is in it, beside the
    shell script); wait for all of it to exit, SIGKILL what lingers."""
    group = process.pid
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    process.wait()
