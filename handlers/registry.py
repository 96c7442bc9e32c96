"""Provider id -> adapter. Each provider lives in ``handlers/<provider>.py`` as ``ADAPTER``."""

from __future__ import annotations

import importlib
from functools import cache

from handlers.base import Adapter

__all__ = ["PROVIDERS", "UnknownProviderError", "get_adapter"]

#: every provider id Hookline knows (config ``provider`` and the URL segment)
PROVIDERS: tuple[str, ...] = (
    "sendgrid",
    "mailgun",
    "postmark",
    "ses",
    "sparkpost",
    "mailjet",
    "mandrill",
    "brevo",
    "resend",
    "postal",
)


class UnknownProviderError(LookupError):
    pass


@cache
def get_adapter(provider: str) -> Adapter:
    """The adapter instance for ``provider``; ``UnknownProviderError`` if there is none."""
    if provider not in PROVIDERS:
        raise UnknownProviderError(provider)
    try:
        module = importlib.import_module(f"handlers.{provider}")
    except ModuleNotFoundError as exc:
        raise UnknownProviderError(provider) from exc
    adapter = module.ADAPTER
    if not isinstance(adapter, Adapter):
        raise TypeError(f"handlers.{provider}.ADAPTER is not an Adapter")
    return adapter


def available_providers() -> tuple[str, ...]:
    """Providers whose adapter module is importable (all of PROVIDERS once complete)."""
    found = []
    for provider in PROVIDERS:
        try:
            get_adapter(provider)
        except UnknownProviderError:
            continue
        found.append(provider)
    return tuple(found)
