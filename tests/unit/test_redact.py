"""observability.redact: credentials in URLs, secret-named fields and recipient addresses
are hidden wherever they appear in a value Hookline prints or logs."""

from __future__ import annotations

from observability.redact import REDACTED, mask_address, redact_text, redact_url, redact_value


def test_url_loses_its_password_and_credential_query_values_only() -> None:
    """The user info's password and token-like query values go; the rest stays readable."""
    url = "https://hook:s3cret-pw@crm.example:8443/in?token=abc123&sig=xyz&team=ops#k=v"
    assert redact_url(url) == (
        f"https://hook:{REDACTED}@crm.example:8443/in?token={REDACTED}&sig={REDACTED}"
        f"&team=ops#{REDACTED}"
    )
    assert redact_url("https://only-user@host/p") == f"https://{REDACTED}@host/p"
    assert redact_url("https://host/p?team=ops") == "https://host/p?team=ops"


def test_text_has_urls_redacted_and_addresses_masked() -> None:
    """URLs inside free text are redacted; addresses (also percent-encoded ones, and inside
    dedup keys) are masked, unless masking is off."""
    text = (
        "confirm https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=T0k3n "
        "key ses:abc:jane.doe@example.com path /v1/recipients/bob%40example.net"
    )
    redacted = redact_text(text)
    assert "T0k3n" not in redacted and f"Token={REDACTED}" in redacted
    assert "ses:abc:j***@example.com" in redacted
    assert "b***@example.net" in redacted and "bob%40" not in redacted
    unmasked = redact_text(text, mask=False)
    assert "jane.doe@example.com" in unmasked and "T0k3n" not in unmasked


def test_nested_values_hide_secret_keys_at_any_depth() -> None:
    """Secret-named keys are hidden in nested mappings (SNS ``Token``, ``password``) and
    strings in lists are redacted too."""
    value = {
        "detail": {"Token": "abc", "topic_arn": "arn:aws:sns:x"},
        "keys": ["ses:1:carol@example.com"],
        "auth": {"Password": "pw", "user": "u"},
    }
    assert redact_value(value) == {
        "detail": {"Token": REDACTED, "topic_arn": "arn:aws:sns:x"},
        "keys": ["ses:1:c***@example.com"],
        "auth": {"Password": REDACTED, "user": "u"},
    }


def test_mask_address_keeps_the_domain() -> None:
    """``jane@example.com`` -> ``j***@example.com``; a non-address is fully hidden."""
    assert mask_address("jane@example.com") == "j***@example.com"
    assert mask_address("not-an-address") == "***"
    assert mask_address(None) is None
