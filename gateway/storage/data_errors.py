"""Which storage errors are about the data (one record PostgreSQL refuses) and which are
about availability (the database is down, slow or overloaded). One place decides.

A data error is retried by nobody: the batcher and the drainer bisect the batch, store the
good records and quarantine the poison ones (``gateway/ingest/isolation.py``), and the
storage breaker does not count it (``is_data_error`` is in its ``exclude``). Anything else
is unavailability: the breaker counts it and the events go to the spool.
"""

from __future__ import annotations

import asyncpg
import asyncpg.exceptions
import msgspec

__all__ = ["is_data_error", "reason_code"]

#: PostgreSQL refused a value (SQLSTATE class 22: encoding, text, numeric range, jsonb ...);
#: asyncpg raises the same class for a query argument it cannot encode
_SERVER_DATA = asyncpg.exceptions.DataError
#: a value over a limit (class 54: index row size, jsonb depth, ...)
_SERVER_LIMIT = asyncpg.exceptions.ProgramLimitExceededError
#: the driver could not encode a value for COPY (client side; e.g. a str it cannot send);
#: tests/integration/test_data_errors.py pins what the pinned asyncpg raises
_CLIENT_DATA = (
    UnicodeEncodeError,
    OverflowError,
    msgspec.EncodeError,
)

_DATA_ERRORS: tuple[type[BaseException], ...] = (_SERVER_DATA, _SERVER_LIMIT, *_CLIENT_DATA)


def is_data_error(exc: BaseException) -> bool:
    """True when ``exc`` means "this data cannot be stored", not "storage is unavailable"."""
    return isinstance(exc, _DATA_ERRORS)


def reason_code(exc: BaseException) -> str:
    """A bounded reason (a metric label) for a data error."""
    if isinstance(exc, _SERVER_LIMIT):
        return "value_too_large"
    if isinstance(
        exc,
        asyncpg.exceptions.CharacterNotInRepertoireError
        | asyncpg.exceptions.UntranslatableCharacterError
        | UnicodeEncodeError,
    ):
        return "invalid_text"
    return "invalid_value"
