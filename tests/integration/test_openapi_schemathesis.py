"""Schemathesis against the served OpenAPI document, with every one of its checks: generated
requests (valid and invalid) to every admin API operation of a running gateway (real
PostgreSQL, the admin token) never get a 5xx, only documented status codes, content types
and headers, bodies that match their schema, and invalid input is rejected with a 4xx."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from schemathesis.checks import FailureGroup
from schemathesis.generation import GenerationMode

from gateway.query.errors import QueryError
from gateway.query.filters import event_filter, stats_query
from handlers.events import BounceClass, EmailEvent, EventType

TOKEN = "fuzz-token"
#: every admin operation the document must describe (method, path)
ADMIN_OPERATIONS = {
    ("GET", "/v1/events"),
    ("GET", "/v1/messages/{message_id}"),
    ("GET", "/v1/recipients/{address}"),
    ("GET", "/v1/recipients"),
    ("GET", "/v1/stats"),
    ("GET", "/v1/dlq"),
    ("GET", "/v1/dlq/{entry_id}"),
    ("POST", "/v1/dlq/{entry_id}/replay"),
    ("POST", "/v1/dlq/replay"),
    ("GET", "/v1/dlq/replay/{job_id}"),
    ("DELETE", "/v1/dlq/{entry_id}"),
    ("GET", "/v1/suppressions"),
    ("GET", "/v1/suppressions/{address}"),
    ("POST", "/v1/suppressions"),
    ("DELETE", "/v1/suppressions/{address}"),
    ("GET", "/v1/control-messages"),
    ("GET", "/v1/quarantine"),
    ("GET", "/v1/quarantine/{entry_id}"),
    ("POST", "/v1/quarantine/{entry_id}/replay"),
    ("DELETE", "/v1/quarantine/{entry_id}"),
}
MAX_EXAMPLES = 15
#: rules between parameters, which OpenAPI cannot state (the descriptions do)
CROSS_PARAMETER_RULES = ("must be before until", "cannot be combined with campaign")


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


def _utc(text: Any) -> datetime | None:
    try:
        value = msgspec.convert(text, datetime)
    except msgspec.ValidationError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def breaks_a_cross_parameter_rule(case: Any) -> bool:
    """Whether a schema-valid case breaks a rule between parameters that the document
    describes in words: ``since`` before ``until``; ``tag`` not with ``campaign``. Decided
    with the gateway's own query builders; such a case is a documented 400, not valid data."""
    path = case.operation.path
    if path in ("/v1/events", "/v1/stats"):
        build = event_filter if path == "/v1/events" else stats_query
        try:
            build(datetime.now(UTC), **(case.query or {}))
        except QueryError as exc:
            return any(rule in str(exc) for rule in CROSS_PARAMETER_RULES)
        return False
    if path == "/v1/dlq/replay" and isinstance(case.body, dict):
        since, until = _utc(case.body.get("since")), _utc(case.body.get("until"))
        return since is not None and until is not None and since >= until
    return False


def fuzz(document: dict[str, Any], base_url: str) -> list[str]:
    """Run every admin operation's strategies with all checks; return the failures."""
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    tested = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if not operation.path.startswith("/v1/"):
            continue
        tested.add(key)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                if mode is GenerationMode.POSITIVE:
                    assume(not breaks_a_cross_parameter_rule(case))
                # no ``checks=``: schemathesis runs all of its checks
                case.call_and_validate(
                    base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}
                )

            try:
                check()
            except (Exception, FailureGroup) as exc:  # report it, keep fuzzing the rest
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    # every admin operation is fuzzed, and a new one must be added to the list above
    assert tested == ADMIN_OPERATIONS, (ADMIN_OPERATIONS - tested, tested - ADMIN_OPERATIONS)
    return failures


async def test_admin_api_conforms_to_its_openapi_document(gateway_factory: Any) -> None:
    """The document at /schema/openapi.json describes the admin API exactly enough that
    schemathesis, with all of its checks, finds nothing to report."""
    async with gateway_factory(
        admin={"token": TOKEN}, sinks=[{"name": "crm", "url": "http://127.0.0.1:9/hook"}]
    ) as gw:
        await gw.runtime.database.store.write_events(seed_events())
        document = (await gw.client.get("/schema/openapi.json")).json()
        failures = await asyncio.to_thread(fuzz, document, gw.url)
        assert failures == [], "\n\n".join(failures)
