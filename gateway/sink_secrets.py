"""The format of a sink's signing secret (``whsec_<base64>``, Standard Webhooks).

Shared core: ``gateway.settings`` validates a sink's secret with it at start-up, and
``gateway/delivery/signing.py`` signs with the key it decodes.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["SECRET_PREFIX", "decode_secret"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret


def decode_secret(secret: str) -> bytes:
    """The signing key of a ``whsec_<base64>`` secret; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with '{SECRET_PREFIX}' followed by base64")
    encoded = secret[len(SECRET_PREFIX) :].strip()
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after '{SECRET_PREFIX}' is not valid base64") from None
    if len(key) < 16:
        raise ValueError("the key must be at least 16 bytes (24 to 64 recommended)")
    return key
