"""Replay protection through a PostgreSQL outage, with real gateways and a PostgreSQL that
is stopped and started: Mailgun signs only timestamp + token, so a forged complaint that
reuses a genuine signature block must never be stored or suppress anyone, whether it
reaches the same replica or another one while the database is down."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from gateway.storage.embedded import EmbeddedPostgres
from hookline_testing import samples_for
from tests.integration._outage import restart, wait_for
from tests.integration.conftest import build_settings, serve

SPEC, KEY = samples_for("mailgun").make_source("main")
SOURCES = [{"provider": "mailgun", "name": "main", "signing_key": SPEC.signing_key}]
VICTIM = "innocent.victim@example.com"


def replica(pg: EmbeddedPostgres, workdir: Path) -> Any:
    settings = build_settings(
        pg.url(),
        workdir,
        sources=SOURCES,
        storage={"breaker_fail_max": 1, "breaker_reset_seconds": 0.3},
    )
    return serve(settings)


async def fetch(url: str, query: str) -> list[Any]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


async def test_replayed_signature_during_an_outage_is_refused_and_never_stored(
    own_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    """While PostgreSQL is down: a signed complaint is accepted (spooled); the same
    signature block on a forged complaint for another recipient is refused 401 by the same
    replica. A replica with a fresh memory (another process) accepts the forgery while the
    database is still down, but once PostgreSQL is back and its nonce journal is merged the
    forgery is diverted: never stored, nobody suppressed, counted. The genuine complaint is
    stored and suppresses its recipient."""
    genuine = samples_for("mailgun").signed_request(
        SPEC,
        KEY,
        samples_for("mailgun").example_body(seed=11, event="complained"),
        now=datetime.now(UTC),
    )
    data = msgspec.json.decode(genuine.body)
    genuine_key = f"mailgun:{data['event-data']['id']}"
    genuine_recipient = data["event-data"]["recipient"]
    data["event-data"]["recipient"] = VICTIM
    data["event-data"]["id"] = "evt-forged-complaint"
    forged = msgspec.json.encode(data)
    headers = dict(genuine.headers)
    path = "/webhooks/mailgun/main"

    # replica 1, database down: the genuine complaint in, the forgery out
    async with replica(own_pg, tmp_path / "replica1") as gw:
        own_pg.stop("immediate")
        first = await gw.client.post(path, content=genuine.body, headers=headers)
        assert first.status_code == 200, first.text
        assert gw.metric("hookline_webhook_requests_total", provider="mailgun", outcome="spooled")
        again = await gw.client.post(path, content=genuine.body, headers=headers)
        assert again.status_code == 200, "a redelivery of the same request is not a replay"
        refused = await gw.client.post(path, content=forged, headers=headers)
        assert refused.status_code == 401, refused.text
        assert (
            gw.metric("hookline_signature_failures_total", provider="mailgun", reason="replayed")
            == 1
        )
    # journaled, not merged (the drain at exit may have set it aside for merging, and failed)
    assert _journal_pending(tmp_path / "replica1")

    # replica 2 (fresh in-memory map), database down again: it cannot know, so it accepts
    restart(own_pg)
    async with replica(own_pg, tmp_path / "replica2") as gw:
        own_pg.stop("immediate")
        accepted = await gw.client.post(path, content=forged, headers=headers)
        assert accepted.status_code == 200, accepted.text

    # the database is back: replica 1 drains the genuine complaint first
    restart(own_pg)
    async with replica(own_pg, tmp_path / "replica1") as gw:

        async def genuine_stored() -> bool:
            rows = await fetch(own_pg.url(), "SELECT dedup_key FROM events")
            return genuine_key in {row["dedup_key"] for row in rows}

        await wait_for(genuine_stored)

    # then replica 2 merges its journal: a conflicting digest, so the forgery is diverted
    async with replica(own_pg, tmp_path / "replica2") as gw:

        async def rejected() -> bool:
            return (
                gw.metric("hookline_replays_rejected_total", provider="mailgun") == 1
                and gw.metric("hookline_spool_events") == 0
            )

        await wait_for(rejected)

        async def genuine_suppressed() -> bool:
            rows = await fetch(own_pg.url(), "SELECT address FROM suppressions")
            return genuine_recipient in {row["address"] for row in rows}

        await wait_for(genuine_suppressed)
        events = await fetch(own_pg.url(), "SELECT dedup_key, recipient FROM events")
        assert [row["dedup_key"] for row in events] == [genuine_key]
        assert VICTIM not in {row["recipient"] for row in events}
        suppressed = await fetch(own_pg.url(), "SELECT address FROM suppressions")
        assert VICTIM not in {row["address"] for row in suppressed}
    assert not _journal_pending(tmp_path / "replica2")


def _journal_pending(replica_dir: Path) -> bool:
    nonces = replica_dir / "data" / "nonces"
    return (nonces / "journal").exists() or (nonces / "journal.merging").exists()
