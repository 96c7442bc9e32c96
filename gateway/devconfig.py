"""The development configuration: what ``hookline serve`` uses when given nothing at all.

With no configuration file and no database URL (the embedded PostgreSQL), a gateway that
serves no source and accepts no admin token is of no use to someone trying it out. So on that
zero-config default ``hookline serve`` creates, once, under ``<data_dir>/dev/``:

* ``hookline.toml``: an admin token and one source named ``dev`` per provider, with freshly
  generated secrets and keys (the gateway's half);
* ``credentials.json``: what signs webhooks for those sources (the ESP's half, in the
  load-test credentials format), read by ``hookline demo`` and ``hookline sign``.

Both files are mode 0600. The configuration is never created nor used when a configuration
file (``--config`` / ``HOOKLINE_CONFIG``) or a database URL is given. ``HOOKLINE_*``
variables still apply on top of it, as they do on top of any configuration file.

Creating it needs the ``loadtests`` package (the signing helpers), which a source checkout
has; without it the gateway starts on the bare defaults, as before.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.settings import Settings, StorageSettings

__all__ = [
    "SOURCE_NAME",
    "DevConfig",
    "applies",
    "banner",
    "data_dir_from_env",
    "ensure",
]

#: the name of every generated source: ``/webhooks/<provider>/dev``
SOURCE_NAME = "dev"


@dataclass(frozen=True)
class DevConfig:
    """Where the development configuration of one data directory lives."""

    directory: Path

    @classmethod
    def under(cls, data_dir: Path) -> DevConfig:
        return cls(data_dir.resolve() / "dev")

    @property
    def config(self) -> Path:
        return self.directory / "hookline.toml"

    @property
    def credentials(self) -> Path:
        return self.directory / "credentials.json"

    def exists(self) -> bool:
        return self.config.is_file() and self.credentials.is_file()

    def admin_token(self) -> str | None:
        """The admin token it holds, or None when it does not exist or cannot be read."""
        try:
            with self.config.open("rb") as handle:
                document = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError):
            return None
        token = document.get("admin", {}).get("token")
        return token if isinstance(token, str) and token else None


def data_dir_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """The data directory a zero-config gateway started here would use."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("HOOKLINE_DATA_DIR") or StorageSettings().data_dir).resolve()


def applies(settings: Settings) -> bool:
    """True on the zero-config default: no configuration file and no database URL."""
    return settings.origin == "<defaults>" and not settings.database.url


def ensure(dev: DevConfig) -> bool:
    """Create the development configuration unless it exists; True when it was created.

    The credentials are written before the configuration, each through a temporary name,
    so an interrupted run never leaves a configuration whose sources nobody can sign for.
    """
    if dev.exists():
        return False
    from handlers.registry import available_providers
    from loadtests.credentials import credentials_json, make_sources, sources_toml

    sources = make_sources(available_providers(), SOURCE_NAME)
    config = "\n".join(
        [
            "# Hookline DEVELOPMENT configuration, created by `hookline serve` because it was",
            "# started with no configuration file and no database URL. Not for production:",
            "# credentials.json next to this file can sign webhooks for every source below.",
            "",
            "[admin]",
            f'token = "{secrets.token_urlsafe(32)}"',
            "",
        ]
    )
    dev.directory.mkdir(parents=True, exist_ok=True)
    os.chmod(dev.directory, 0o700)
    _write_private(dev.credentials, credentials_json(sources))
    _write_private(dev.config, config + sources_toml(sources))
    return True


def _write_private(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def banner(dev: DevConfig, settings: Settings, *, created: bool) -> str:
    """What ``hookline serve`` prints at start on the development configuration."""
    host = settings.server.host
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}"  # noqa: S104
    base += f":{settings.server.port}"
    lines = [
        "",
        "Hookline is running on its DEVELOPMENT configuration "
        + ("(created just now)" if created else "(created on an earlier start)")
        + ":",
        f"  config       {dev.config}  (admin token inside, mode 0600)",
        f"  credentials  {dev.credentials}  (signs test webhooks, mode 0600)",
        "  It is for development only: give a configuration file (HOOKLINE_CONFIG) or a",
        "  database URL (HOOKLINE_DATABASE_URL) and it is neither created nor used.",
        "  Try it:  make demo   then   .venv/bin/hookline stats",
        "  Webhook URLs:",
    ]
    width = max((len(source.provider) for source in settings.sources), default=0)
    for source in settings.sources:
        lines.append(
            f"    {source.provider.ljust(width)}  {base}/webhooks/{source.provider}/{source.name}"
        )
    return "\n".join(lines) + "\n"
