"""Framework-free ESP adapters: (headers, raw body) -> verified list[EmailEvent]."""

from handlers.base import (
    Adapter,
    AuthError,
    ContentTypeError,
    ControlMessage,
    ParseResult,
    PayloadError,
    SourceSpec,
    VerifyContext,
    WebhookRequest,
)
from handlers.events import BounceClass, EmailEvent, EventType
from handlers.registry import PROVIDERS, UnknownProviderError, get_adapter

__all__ = [
    "PROVIDERS",
    "Adapter",
    "AuthError",
    "BounceClass",
    "ContentTypeError",
    "ControlMessage",
    "EmailEvent",
    "EventType",
    "ParseResult",
    "PayloadError",
    "SourceSpec",
    "UnknownProviderError",
    "VerifyContext",
    "WebhookRequest",
    "get_adapter",
]
