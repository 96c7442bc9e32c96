"""Configuration checks for the delivery fields: sinks and suppressions."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gateway.settings import ConfigError, Settings, load_settings

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "hookline.toml"
    path.write_text(text)
    return load_settings(path, environ=environ or {})


def test_a_sink_with_defaults(tmp_path: Path) -> None:
    """A minimal sink gets the documented defaults."""
    settings = load(
        tmp_path,
        f'[[sinks]]\nname = "crm"\nurl = "https://crm.internal/hooks"\nsecret = "{SECRET}"\n',
    )
    (sink,) = settings.sinks
    assert (sink.max_attempts, sink.timeout_seconds, sink.event_types) == (8, 10.0, [])
    assert settings.suppressions.soft_bounce_quarantine_seconds == 7 * 86400


def test_the_secret_may_come_from_the_environment(tmp_path: Path) -> None:
    """``secret_env`` names an environment variable holding the whsec_ secret."""
    settings = load(
        tmp_path,
        '[[sinks]]\nname = "crm"\nurl = "https://crm.internal/"\nsecret_env = "CRM_SECRET"\n',
        {"CRM_SECRET": SECRET},
    )
    assert settings.sinks[0].secret == SECRET


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ('secret = "not-a-whsec"', "field 'secret': must start with 'whsec_'"),
        ('secret = "whsec_%%%"', "field 'secret': the part after 'whsec_' is not valid base64"),
        ("timeout_seconds = 0", "field 'timeout_seconds': must be positive"),
        ("breaker_fail_max = 0", "field 'breaker_fail_max': must be at least 1"),
        (
            "backoff_base_seconds = 10\nbackoff_cap_seconds = 1",
            "field 'backoff_cap_seconds': must be >= backoff_base_seconds",
        ),
        ('event_types = ["bounced", "exploded"]', "unknown event type 'exploded'"),
    ],
)
def test_bad_sink_fields_name_the_sink_and_field(tmp_path: Path, fields: str, message: str) -> None:
    """Each invalid sink field stops start-up with a message naming sink and field."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, f'[[sinks]]\nname = "crm"\nurl = "https://crm.internal/"\n{fields}\n')
    assert "sink crm (#1)" in str(caught.value)
    assert message in str(caught.value)
    assert "whsec_%%%" not in str(caught.value)  # the secret itself is never echoed


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("soft_bounce_threshold = 0", "soft_bounce_threshold': must be at least 1"),
        ("soft_bounce_window_seconds = 0", "soft_bounce_window_seconds': must be positive"),
        ("soft_bounce_quarantine_seconds = -1", "soft_bounce_quarantine_seconds': must not"),
    ],
)
def test_bad_suppression_fields(tmp_path: Path, fields: str, message: str) -> None:
    """Invalid suppression settings are refused with the field named."""
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, f"[suppressions]\n{fields}\n")
