"""Configuration of AMQP sinks: the fields, their checks at start-up, the password kept
out of the URL and out of anything printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.amqp_target import RoutingKey, broker_url
from gateway.settings import ConfigError, Settings, load_settings
from observability.redact import redact_url

BASE = '[[sinks]]\nname = "bus"\nkind = "amqp"\n'


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "hookline.toml"
    path.write_text(text)
    return load_settings(path, environ=environ or {})


def test_an_amqp_sink_with_its_password_from_the_environment(tmp_path: Path) -> None:
    """``password_env`` fills ``password``; the defaults publish to the durable topic
    exchange ``hookline`` under ``hookline.{provider}.{event_type}``, and the URL used to
    connect carries the (escaped) password while the one shown does not."""
    settings = load(
        tmp_path,
        BASE + 'url = "amqp://hookline@rabbit:5672/prod"\npassword_env = "RABBIT_PASSWORD"\n',
        {"RABBIT_PASSWORD": "p@ss:w/rd"},
    )
    (sink,) = settings.sinks
    assert (sink.kind, sink.password, sink.exchange, sink.exchange_type) == (
        "amqp",
        "p@ss:w/rd",
        "hookline",
        "topic",
    )
    assert sink.routing_key == "hookline.{provider}.{event_type}"
    assert broker_url(sink) == "amqp://hookline:p%40ss%3Aw%2Frd@rabbit:5672/prod"
    assert redact_url(broker_url(sink)) == "amqp://hookline:[redacted]@rabbit:5672/prod"


def test_http_sinks_are_still_the_default_kind(tmp_path: Path) -> None:
    """A sink without ``kind`` is an HTTP sink and still needs an http(s) URL."""
    assert load(tmp_path, '[[sinks]]\nname = "crm"\nurl = "https://crm/"\n').sinks[0].kind == (
        "http"
    )
    with pytest.raises(ConfigError, match="field 'url': must be an http"):
        load(tmp_path, '[[sinks]]\nname = "crm"\nurl = "amqp://rabbit/"\n')


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ('url = "http://rabbit/"', "field 'url': must be an amqp:// or amqps:// URL"),
        ('url = "amqp://rabbit:notaport/"', "field 'url': not a valid amqp:// URL"),
        (
            'url = "amqp://u:inline@rabbit/"\npassword = "again"',
            "field 'password': the URL already has a password",
        ),
        (
            'url = "amqp://rabbit/"\nsecret = "whsec_a2trLWtrLWtrLWtrLWtrLWtr"',
            "field 'secret': AMQP messages are not signed",
        ),
        ('url = "amqp://rabbit/"\nexchange_type = "x-fancy"', "field 'exchange_type'"),
        (
            'url = "amqp://rabbit/"\nrouting_key = "{provider}.{recipient}"',
            "field 'routing_key': unknown field '{recipient}'",
        ),
        (
            'url = "amqp://rabbit/"\nrouting_key = "{provider!r}"',
            "field 'routing_key': field '{provider}' takes no format spec",
        ),
        ('url = "amqp://rabbit/"\nrouting_key = "{provider"', "field 'routing_key': not a valid"),
    ],
)
def test_bad_amqp_fields_stop_start_up_naming_sink_and_field(
    tmp_path: Path, fields: str, message: str
) -> None:
    """Each invalid AMQP field is a ConfigError that names the sink and the field."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, BASE + fields + "\n")
    assert "sink bus (#1)" in str(caught.value)
    assert message in str(caught.value)


def test_an_unknown_kind_is_rejected(tmp_path: Path) -> None:
    """``kind`` is http or amqp; anything else is named in the error."""
    with pytest.raises(ConfigError, match="field 'kind': must be 'http' or 'amqp'"):
        load(tmp_path, '[[sinks]]\nname = "q"\nkind = "kafka"\nurl = "https://x/"\n')


def test_config_errors_never_echo_the_password(tmp_path: Path) -> None:
    """A rejected sink's error message does not contain its password."""
    with pytest.raises(ConfigError) as caught:
        load(
            tmp_path,
            BASE + 'url = "amqp://u:Sup3rS3cret@rabbit/"\nexchange_type = "nope"\n',
        )
    assert "Sup3rS3cret" not in str(caught.value)


def test_routing_keys_render_from_the_event() -> None:
    """A template renders with the event's provider, source and type."""
    key = RoutingKey("{source}/{provider}/{event_type}")
    assert key.render(provider="ses", source="eu", event_type="bounced") == "eu/ses/bounced"


def test_redacted_urls_hide_passwords_and_query_strings() -> None:
    """What check-config and logs print never carries a password or query token."""
    shown = redact_url("https://u:pw@crm/hook?token=abc")
    assert "pw" not in shown and "abc" not in shown
    assert shown.startswith("https://u:") and "crm/hook" in shown
    assert redact_url("amqp://rabbit/") == "amqp://rabbit/"
