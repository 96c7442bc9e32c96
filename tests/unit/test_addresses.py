"""Canonical addresses (handlers.addresses): what a sender wrote -> one addr-spec."""

from __future__ import annotations

import pytest

from handlers.addresses import address_key, canonical_address


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("to@example.org", "to@example.org"),
        ("Recipient <to@example.org>", "to@example.org"),
        ('"Smith, Jo" <Jo.Smith@Example.ORG>', "Jo.Smith@example.org"),
        ("<to@example.org>", "to@example.org"),
        ("to@example.org (on vacation)", "to@example.org"),
        ("(work) to@example.org", "to@example.org"),
        ("  To@EXAMPLE.org  ", "To@example.org"),
        ("to@example.org.", "to@example.org"),
        ("user@bücher.example", "user@xn--bcher-kva.example"),
        ("Bücherwurm <user@BÜCHER.example>", "user@xn--bcher-kva.example"),
        ("用户@例子.测试", "用户@xn--fsqu00a.xn--0zwm56d"),
    ],
)
def test_display_names_comments_and_domain_spelling_are_normalized(
    written: str, canonical: str
) -> None:
    """Display name and comments go, the domain is lower-cased and IDNA-encoded, and the
    local part is kept exactly as written (it may be case-sensitive)."""
    assert canonical_address(written) == canonical


@pytest.mark.parametrize("written", ["not-an-address", "a@b@c.example", "bad@xn--\u00e9"])
def test_text_that_is_not_a_plain_address_is_kept_not_invented(written: str) -> None:
    """Text with no usable address stays as written (trimmed): never another address."""
    assert canonical_address(f" {written} ") in (written, written.lower())


def test_nothing_stays_nothing() -> None:
    """None, empty and blank values are no recipient."""
    assert canonical_address(None) is None
    assert canonical_address("") is None
    assert canonical_address("   ") is None


def test_address_key_makes_every_spelling_of_one_address_one_key() -> None:
    """Suppressions and lookups compare by this key: case, display name and IDN spelling of
    one address all give the same key."""
    spellings = [
        "user@xn--bcher-kva.example",
        "User <USER@bücher.example>",
        "user@BÜCHER.EXAMPLE",
        " user@xn--bcher-kva.example ",
    ]
    assert {address_key(s) for s in spellings} == {"user@xn--bcher-kva.example"}
