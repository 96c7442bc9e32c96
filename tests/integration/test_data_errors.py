"""``is_data_error`` recognises what the pinned asyncpg really raises for a value it cannot
send (through a prepared statement or COPY, as the writers do) and for one PostgreSQL
refuses, and does not mistake an outage for bad data. If asyncpg changes what it raises,
these fail (gateway/storage/data_errors.py names the classes once)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from gateway.storage.data_errors import is_data_error, reason_code


@pytest.fixture
async def conn(fresh_db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(fresh_db_url)
    await connection.execute("CREATE TEMP TABLE t (n bigint, s text)")
    try:
        yield connection
    finally:
        await connection.close()


async def test_an_argument_the_driver_cannot_encode_is_a_data_error(
    conn: asyncpg.Connection,
) -> None:
    """A str for an integer parameter fails in the driver before anything is sent: a data
    error (the record is quarantined), not unavailability (the breaker would count it)."""
    with pytest.raises(Exception) as caught:
        await conn.execute("INSERT INTO t (n) VALUES ($1)", "not a number")
    assert is_data_error(caught.value), type(caught.value).__mro__


@pytest.mark.parametrize(
    ("record", "reason"),
    [((1, "lone surrogate \ud800"), "invalid_text"), ((2**70, "too big"), "invalid_value")],
)
async def test_a_value_copy_cannot_encode_is_a_data_error(
    conn: asyncpg.Connection, record: tuple[Any, ...], reason: str
) -> None:
    """COPY (the batcher's write) refusing a value on the client side is a data error."""
    with pytest.raises(Exception) as caught:
        await conn.copy_records_to_table("t", records=[record])
    assert is_data_error(caught.value), type(caught.value).__mro__
    assert reason_code(caught.value) == reason


async def test_a_value_postgresql_refuses_is_a_data_error(conn: asyncpg.Connection) -> None:
    """PostgreSQL refusing a value (SQLSTATE class 22) is a data error too."""
    with pytest.raises(asyncpg.PostgresError) as caught:
        await conn.execute("SELECT 'not json'::jsonb")
    assert is_data_error(caught.value)


def test_an_unreachable_database_is_not_a_data_error() -> None:
    """Connection trouble is unavailability: never quarantined as bad data."""
    assert not is_data_error(ConnectionRefusedError())
    assert not is_data_error(asyncpg.exceptions.ConnectionDoesNotExistError())
