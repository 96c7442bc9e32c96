"""The README's configuration example is a configuration the gateway accepts."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.settings import load_settings
from hookline_testing import samples_for

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_example_loads(tmp_path: Path) -> None:
    """The TOML block under '## Configuration' loads and validates (secrets from the
    environment and a file, as it says), with the sources and sink it describes."""
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"^```toml\n(.*?)^```", section, re.M | re.S)
    token = tmp_path / "token"
    token.write_text("an-admin-token\n")
    config = tmp_path / "hookline.toml"
    config.write_text(block.replace("/run/secrets/hookline-admin-token", str(token)))
    spec, _ = samples_for("sendgrid").make_source("main")
    environ = {
        "DATABASE_URL": "postgresql://hookline:secret@db:5432/hookline",
        "SENDGRID_VERIFICATION_KEY": str(spec.signing_key),
        "POSTMARK_WEBHOOK_AUTH": "user:password",
        "CRM_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    }
    settings = load_settings(config, environ=environ)
    assert settings.database.url == environ["DATABASE_URL"]
    assert settings.admin.token == "an-admin-token"
    assert [(s.provider, s.name) for s in settings.sources] == [
        ("sendgrid", "main"),
        ("postmark", "main"),
    ]
    assert settings.sources[1].basic_auth == "user:password"
    assert [(s.name, s.event_types) for s in settings.sinks] == [
        ("crm", ["bounced", "complained", "unsubscribed"])
    ]
