"""The suppression rank exists twice, in Python (``RANK``, used to plan a batch) and in SQL
(``hookline_suppression_rank``, the upsert's guard that keeps a stronger reason in place).
They must agree, or a batch and the database would disagree about which reason wins."""

from __future__ import annotations

import asyncpg

from gateway.delivery.processors.suppressions import RANK


async def test_the_sql_rank_is_the_python_rank_for_every_reason(fresh_db_url: str) -> None:
    """Every reason the Python side ranks has the same rank in SQL; a reason neither knows
    ranks 0 there (below every real one); and the suppressions table accepts each ranked
    reason, so no ranked reason is one the database refuses."""
    conn = await asyncpg.connect(fresh_db_url)
    try:
        reasons = [*RANK, "not-a-reason"]
        rows = await conn.fetch(
            "SELECT r, hookline_suppression_rank(r) AS rank FROM unnest($1::text[]) AS r",
            reasons,
        )
        assert {row["r"]: row["rank"] for row in rows} == {**RANK, "not-a-reason": 0}
        assert min(RANK.values()) > 0
        async with conn.transaction():
            for index, reason in enumerate(RANK):
                await conn.execute(
                    "INSERT INTO suppressions (address_key, address, reason) VALUES ($1, $1, $2)",
                    f"rank{index}@example.com",
                    reason,
                )
            assert await conn.fetchval("SELECT count(*) FROM suppressions") == len(RANK)
    finally:
        await conn.close()
