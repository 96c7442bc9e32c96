"""The configuration contract: TOML + HOOKLINE_* overrides + X_env / X_file secrets, and
errors that name the file, the source and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import ConfigError, load_settings
from hookline_testing import samples_for

KEY = samples_for("sendgrid").make_source()[0].signing_key


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hookline.toml"
    path.write_text(text)
    return path


def test_no_file_gives_zero_config_defaults() -> None:
    settings = load_settings(None, environ={})
    assert settings.database.url is None
    assert settings.sources == []
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8000)
    assert settings.storage.data_dir == ".hookline"
    assert settings.ingest.max_body_bytes == 1024 * 1024


def test_environment_overrides_file_values(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9000\n[ingest]\nmax_body_bytes = 10\n")
    settings = load_settings(
        path,
        environ={
            "HOOKLINE_PORT": "9100",
            "HOOKLINE_HOST": "0.0.0.0",
            "HOOKLINE_INGEST_MAX_BODY_BYTES": "2048",
            "HOOKLINE_DATABASE_URL": "postgresql://x@db/h",
        },
    )
    assert settings.server.port == 9100
    assert settings.server.host == "0.0.0.0"
    assert settings.ingest.max_body_bytes == 2048
    assert settings.database.url == "postgresql://x@db/h"


def test_config_path_comes_from_hookline_config(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9001\n")
    assert load_settings(None, environ={"HOOKLINE_CONFIG": str(path)}).server.port == 9001


def test_secrets_from_env_and_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "key"
    secret_file.write_text(KEY + "\n")
    path = write(
        tmp_path,
        f"""
[admin]
token_env = "ADMIN_TOKEN"
[[sources]]
provider = "sendgrid"
name = "a"
signing_key_file = "{secret_file}"
[[sources]]
provider = "mailgun"
name = "b"
signing_key_env = "MG_KEY"
""",
    )
    settings = load_settings(path, environ={"MG_KEY": "mg-secret", "ADMIN_TOKEN": "tok"})
    assert settings.sources[0].signing_key == KEY
    assert settings.sources[1].signing_key == "mg-secret"
    assert settings.admin.token == "tok"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[server\nport = 1", "malformed TOML"),
        ('[[sources]]\nprovider = "sendgrd"\nname = "main"\n', "unknown provider 'sendgrd'"),
        (
            '[[sources]]\nprovider = "mailgun"\nname = "eu"\n',
            "source mailgun/eu (#1), field 'signing_key': required for mailgun",
        ),
        (
            '[[sources]]\nprovider = "mailgun"\nname = "eu"\nsigning_key_env = "NOPE"\n',
            "'signing_key_env' names $NOPE, which is not set",
        ),
        (
            '[[sources]]\nprovider = "mailgun"\nname = "eu"\nsigning_key = 3\n',
            "source mailgun/eu (#1), field 'signing_key'",
        ),
        (
            '[[sources]]\nprovider = "postmark"\nname = "p"\n',
            "postmark signs nothing; set 'basic_auth' or 'bearer_token'",
        ),
        ("[server]\nprot = 1\n", "prot"),
        (
            '[[sources]]\nprovider = "brevo"\nname = "b"\nbasic_auth = "u:p"\nrate_limt = 1\n',
            "source brevo/b (#1), field 'rate_limt': unknown field",
        ),
        (
            '[[sinks]]\nname = "crm"\nurl = "ftp://x"\n',
            "sink crm (#1), field 'url': must be an http(s) URL",
        ),
        (
            "[database]\nconnect_retry_max_seconds = 0\n",
            "field 'database.connect_retry_max_seconds': must be positive",
        ),
        (
            "[storage]\nshutdown_drain_seconds = -1\n",
            "field 'storage.shutdown_drain_seconds': must not be negative",
        ),
        (
            "[server]\nshutdown_delay_seconds = -0.5\n",
            "field 'server.shutdown_delay_seconds': must not be negative",
        ),
    ],
)
def test_bad_config_names_file_source_and_field(tmp_path: Path, toml: str, expected: str) -> None:
    """Every problem is one ConfigError whose message starts with the file and names what is
    wrong (never a traceback from deep inside)."""
    path = write(tmp_path, toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    message = str(caught.value)
    assert message.startswith(str(path))
    assert expected in message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_allow_unauthenticated_lets_an_unsigned_provider_start(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[[sources]]\nprovider = "brevo"\nname = "b"\nallow_unauthenticated = true\n'
    )
    assert load_settings(path, environ={}).sources[0].allow_unauthenticated


@pytest.mark.parametrize(
    ("provider", "key"),
    [("sendgrid", "bm90IGEga2V5"), ("postal", "not-base64!"), ("resend", "whsec_***")],
)
def test_malformed_signing_keys_stop_start_up(tmp_path: Path, provider: str, key: str) -> None:
    """A key that cannot be parsed is a start-up error, not a 401 for every request."""
    path = write(
        tmp_path, f'[[sources]]\nprovider = "{provider}"\nname = "x"\nsigning_key = "{key}"\n'
    )
    with pytest.raises(ConfigError, match=f"source {provider}/x .*field 'signing_key'"):
        load_settings(path, environ={})


def test_forwarded_allow_ips_defaults_to_loopback_and_follows_the_environment(
    tmp_path: Path,
) -> None:
    """[server] forwarded_allow_ips is 127.0.0.1 unless set, in TOML or through
    HOOKLINE_FORWARDED_ALLOW_IPS; a malformed network stops start-up naming the field."""
    assert load_settings(None, environ={}).server.forwarded_allow_ips == "127.0.0.1"
    env = {"HOOKLINE_FORWARDED_ALLOW_IPS": "10.0.0.0/8, 127.0.0.1"}
    assert load_settings(None, environ=env).server.forwarded_allow_ips == "10.0.0.0/8, 127.0.0.1"
    path = tmp_path / "hookline.toml"
    path.write_text('[server]\nforwarded_allow_ips = "10.0.0.0/33"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert "forwarded_allow_ips" in str(caught.value)
