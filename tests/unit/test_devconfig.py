"""The development configuration and the CLI defaults that follow the server's environment."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli._client import default_token, default_url
from gateway.devconfig import DevConfig, applies, banner, ensure
from gateway.settings import load_settings
from handlers.registry import PROVIDERS
from loadtests.credentials import load_credentials


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> DevConfig:
    """One development configuration for the module (RSA key generation is the slow part)."""
    config = DevConfig.under(tmp_path_factory.mktemp("data"))
    assert ensure(config) is True
    return config


def test_created_config_serves_every_provider_with_an_admin_token(dev: DevConfig) -> None:
    """The created configuration loads as the gateway loads it: an admin token and one
    ``dev`` source per provider (all ten), each with the credentials that sign for it."""
    settings = load_settings(dev.config, environ={})
    assert settings.admin.token and len(settings.admin.token) >= 32
    assert sorted(s.provider for s in settings.sources) == sorted(PROVIDERS)
    assert {s.name for s in settings.sources} == {"dev"}
    signers = load_credentials(dev.credentials)
    served = {s.provider: s.spec() for s in settings.sources}
    assert {s.provider: s.spec for s in signers} == served
    assert dev.admin_token() == settings.admin.token


def test_created_files_are_private(dev: DevConfig) -> None:
    """Both files hold secrets: mode 0600, in a directory only the owner can enter."""
    for path in (dev.config, dev.credentials):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(dev.directory.stat().st_mode) == 0o700


def test_created_once_and_kept(dev: DevConfig) -> None:
    """A second start reuses the configuration: same token, files untouched."""
    token, before = dev.admin_token(), dev.config.read_bytes()
    assert ensure(dev) is False
    assert dev.admin_token() == token and dev.config.read_bytes() == before


def test_only_on_the_zero_config_default(tmp_path: Path) -> None:
    """Never when a configuration file or a database URL is given."""
    assert applies(load_settings(environ={}))
    config = tmp_path / "hookline.toml"
    config.write_text("")
    assert not applies(load_settings(config, environ={}))
    assert not applies(load_settings(environ={"HOOKLINE_CONFIG": str(config)}))
    assert not applies(load_settings(environ={"HOOKLINE_DATABASE_URL": "postgresql://db/x"}))


def test_banner_names_the_files_every_webhook_url_and_says_development(dev: DevConfig) -> None:
    """The start-up printout says it is for development, where the files are, and the
    webhook URL of every source on the address the server listens on."""
    settings = load_settings(dev.config, environ={"HOOKLINE_PORT": "9123"})
    text = banner(dev, settings, created=True)
    assert "DEVELOPMENT" in text and "development only" in text
    assert str(dev.config) in text and str(dev.credentials) in text
    for provider in PROVIDERS:
        assert f"http://127.0.0.1:9123/webhooks/{provider}/dev" in text
    assert settings.admin.token is not None and settings.admin.token not in text


def test_cli_url_follows_the_servers_host_and_port() -> None:
    """The CLI talks to where ``hookline serve`` listens under the same environment."""
    assert default_url({}) == "http://127.0.0.1:8000"
    assert default_url({"HOOKLINE_PORT": "9000"}) == "http://127.0.0.1:9000"
    assert default_url({"HOOKLINE_HOST": "0.0.0.0", "HOOKLINE_PORT": "9"}) == "http://127.0.0.1:9"
    assert default_url({"HOOKLINE_HOST": "::1"}) == "http://[::1]:8000"
    assert default_url({"HOOKLINE_URL": "http://gw:1", "HOOKLINE_PORT": "9"}) == "http://gw:1"


def test_cli_token_comes_from_env_else_the_development_config(dev: DevConfig) -> None:
    """$HOOKLINE_ADMIN_TOKEN wins; without it the development configuration's token of the
    data directory is used, unless a configuration file or a database URL is in use."""
    data_dir = str(dev.directory.parent)
    assert default_token({"HOOKLINE_DATA_DIR": data_dir}) == dev.admin_token()
    assert default_token({"HOOKLINE_DATA_DIR": data_dir, "HOOKLINE_ADMIN_TOKEN": "t"}) == "t"
    assert default_token({"HOOKLINE_DATA_DIR": data_dir, "HOOKLINE_CONFIG": "x.toml"}) is None
    assert default_token({"HOOKLINE_DATA_DIR": data_dir, "HOOKLINE_DATABASE_URL": "pg"}) is None
    assert default_token({"HOOKLINE_DATA_DIR": data_dir + "/nothing-here"}) is None


def test_cli_reports_a_missing_token_as_a_missing_token(tmp_path: Path) -> None:
    """With no token anywhere the CLI says so (exit 2) instead of failing on the header."""
    process = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "stats", "--url", "http://127.0.0.1:9"],
        env={"PATH": "/usr/bin:/bin", "HOOKLINE_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 2, process.stderr
    assert "no admin token" in process.stderr and "HOOKLINE_ADMIN_TOKEN" in process.stderr
    assert "Illegal header" not in process.stderr and "cannot reach" not in process.stderr


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env={"PATH": "/usr/bin:/bin", "HOOKLINE_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_and_sign_without_credentials_say_how_to_get_them(tmp_path: Path) -> None:
    """Before any zero-config start there is nothing to sign with: both commands say where
    they looked and what creates the credentials (exit 2), without a traceback."""
    for args in (("demo",), ("sign", "sendgrid")):
        process = _cli(*args, data_dir=tmp_path)
        assert process.returncode == 2, process.stderr
        assert f"no signing credentials at {tmp_path / 'dev' / 'credentials.json'}" in (
            process.stderr
        )
        assert "make run" in process.stderr and "Traceback" not in process.stderr


def test_sign_refuses_an_event_the_provider_cannot_send(dev: DevConfig) -> None:
    """Postal has no complaint event: a clear message listing what it can send (exit 2)."""
    process = _cli("sign", "postal", "--event", "complained", data_dir=dev.directory.parent)
    assert process.returncode == 2
    assert "no postal sample for event 'complained'" in process.stderr
    assert "delivered" in process.stderr and "Traceback" not in process.stderr
