"""What a failed database call means, defined once.

``DB_ERRORS`` is every way a call to PostgreSQL can fail that says nothing about the code:
the server is down, restarting or refusing, the connection broke, a timeout, an error raised
by the server. A worker logs it and tries again later; a request answers 503 or spools.
"""

from __future__ import annotations

import asyncpg

__all__ = ["DB_ERRORS"]

DB_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    # a pooled connection whose session the server ended mid-query (a fast shutdown) can be
    # left in a state asyncpg refuses to use: "cannot switch to state ..."
    asyncpg.InternalClientError,
)
