"""Canonical email addresses: the one way adapters, suppressions and lookups spell one.

ESPs echo recipients as the sender wrote them (``Recipient <to@Example.ORG>``, a trailing
comment, an internationalised domain). ``canonical_address`` turns that into an addr-spec:
display name and comments removed, the domain lower-cased and IDNA-encoded (UTS #46, as
mail systems resolve it), the local part kept exactly as written (RFC 5321 lets the
receiving system treat it case-sensitively). Adapters store the canonical form as
``recipient`` (the ESP's own spelling stays in ``raw``); ``address_key`` (the canonical form
lower-cased) is how suppressions and per-address lookups compare addresses.

Cheap on the hot path: an address that is already canonical (by far the most common
case) is recognised by one regular expression and returned as it is.
"""

from __future__ import annotations

import re
from email.utils import parseaddr

import idna

__all__ = ["address_key", "canonical_address"]

#: already an addr-spec with a lower-case ASCII domain: nothing to do
_CANONICAL = re.compile(r"[^\s<>()\",@]+@[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")


def canonical_address(value: str | None) -> str | None:
    """The addr-spec in what a sender wrote, or None for nothing. Text that holds no
    address (no ``@``) is returned trimmed: the recipient is kept, not invented."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _CANONICAL.fullmatch(text):
        return text
    if "<" in text or "(" in text:
        # a display name or a comment around the address: let the RFC 5322 parser find it
        _, found = parseaddr(text)
        if found:
            text = found
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        return text
    return f"{local}@{canonical_domain(domain)}"


def canonical_domain(domain: str) -> str:
    """The domain lower-cased, IDNA-encoded; as written (lower-cased) if it is not valid."""
    name = domain.strip().rstrip(".")
    if name.isascii():
        return name.lower()
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError:
        return name.lower()


def address_key(address: str) -> str:
    """The case-insensitive key of an address: its canonical form, lower-cased."""
    return (canonical_address(address) or "").lower()
