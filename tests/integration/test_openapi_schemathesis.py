"""Schemathesis against the served OpenAPI document: generated requests (valid and
invalid) to every /v1 read endpoint of a running gateway, with the admin token, never get
a 5xx and every documented response matches its schema."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import FailureGroup, not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from handlers.events import BounceClass, EmailEvent, EventType

TOKEN = "fuzz-token"
READ_PATHS = {
    "/v1/events",
    "/v1/messages/{message_id}",
    "/v1/recipients/{address}",
    "/v1/recipients",
    "/v1/stats",
}


def seed_events() -> list[EmailEvent]:
    now = datetime.now(UTC)
    events = []
    for i, event_type in enumerate(["delivered", "opened", "clicked", "bounced", "complained"]):
        events.append(
            EmailEvent(
                provider="sendgrid",
                source="main",
                event_type=EventType(event_type),
                occurred_at=now - timedelta(hours=i),
                received_at=now,
                recipient=f"user{i % 2}@example.com",
                message_id="m-1",
                dedup_key=f"fuzz-{i}",
                bounce_class=BounceClass.SOFT if event_type == "bounced" else None,
                campaign="c1",
                tags=("t1",),
                metadata={"order": i},
                raw={"i": i},
            )
        )
    return events


def fuzz(document: dict[str, Any], base_url: str) -> list[str]:
    """Run every read operation's strategies; return the failures (empty when clean)."""
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    tested = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "GET" or operation.path not in READ_PATHS:
            continue
        tested.add(operation.path)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=15,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                case.call_and_validate(
                    base_url=base_url,
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    checks=[not_a_server_error, response_schema_conformance],
                )

            try:
                check()
            except (Exception, FailureGroup) as exc:  # report it, keep fuzzing the rest
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    assert tested == READ_PATHS, f"operations missing from the document: {READ_PATHS - tested}"
    return failures


async def test_read_endpoints_conform_to_their_openapi_document(gateway_factory: Any) -> None:
    """The document at /schema/openapi.json describes /v1 reads well enough that
    schemathesis finds no server error and no response violating its schema."""
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        await gw.runtime.database.store.write_events(seed_events())
        document = (await gw.client.get("/schema/openapi.json")).json()
        failures = await asyncio.to_thread(fuzz, document, gw.url)
        assert failures == [], "\n\n".join(failures)
