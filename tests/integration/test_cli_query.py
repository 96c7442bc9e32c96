"""The read-side CLI (``hookline events | message | recipient | stats``) run as a real
process against a running gateway: readable tables, --json, paging and errors."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.events import BounceClass, EmailEvent, EventType

TOKEN = "cli-token"
BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def ev(key: str, event_type: str, recipient: str, minute: int, **fields: Any) -> EmailEvent:
    fields.setdefault("message_id", "msg-1")
    return EmailEvent(
        provider="sendgrid",
        source="main",
        event_type=EventType(event_type),
        occurred_at=fields.pop("at", BASE + timedelta(minutes=minute)),
        received_at=datetime.now(UTC),
        recipient=recipient,
        dedup_key=key,
        campaign="spring",
        **fields,
    )


EVENTS = [
    ev("d1", "delivered", "ann@example.com", 1),
    ev("o1", "opened", "ann@example.com", 2),
    ev("c1", "clicked", "ann@example.com", 3, url="https://example.com/offer"),
    ev("d2", "delivered", "bob@example.com", 1),
    ev("b2", "bounced", "cy@example.com", 4, bounce_class=BounceClass.HARD, reason="no such user"),
    ev(
        "q1",
        "delivered",
        "quiet@example.com",
        0,
        at=datetime.now(UTC) - timedelta(days=90),
        message_id="msg-0",
    ),
]


async def hookline(gw: Any, *args: str, token: str | None = TOKEN) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
    if token is not None:
        env["HOOKLINE_ADMIN_TOKEN"] = token
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        "--url",
        gw.url,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return await process.wait(), out.decode(), err.decode()


async def test_events_command_prints_a_table_json_and_follows_pages(gateway_factory: Any) -> None:
    """``hookline events`` filters like the API, prints aligned columns with the bounce
    class and reason or the URL, --json gives the API's page, --pages follows cursors."""
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        await gw.runtime.database.store.write_events(EVENTS)
        code, out, _ = await hookline(gw, "events", "--recipient", "ANN@example.com")
        assert code == 0
        lines = out.splitlines()
        assert lines[0].split() == [
            "OCCURRED_AT", "EVENT_TYPE", "PROVIDER", "RECIPIENT", "MESSAGE_ID", "CAMPAIGN",
            "DETAIL",
        ]  # fmt: skip
        assert [line.split()[1] for line in lines[1:]] == ["clicked", "opened", "delivered"]
        assert "https://example.com/offer" in lines[1]

        code, out, _ = await hookline(gw, "events", "--event-type", "bounced")
        assert "[hard] no such user" in out

        code, out, _ = await hookline(gw, "events", "--json", "--limit", "2", "--pages", "2")
        page = json.loads(out)
        assert [i["dedup_key"] for i in page["items"]] == ["q1", "b2", "c1", "o1"]
        assert page["next_cursor"] is not None

        code, out, err = await hookline(gw, "events", "--limit", "2")
        assert code == 0 and "more: --cursor" in err

        code, out, _ = await hookline(gw, "events", "--recipient", "nobody@example.com")
        assert code == 0 and out.strip() == "no events match"


async def test_message_recipient_and_stats_commands(gateway_factory: Any) -> None:
    """``message`` shows the status per recipient and the timeline; ``recipient`` the
    summary line and events, or the inactive list; ``stats`` the KPIs as percentages."""
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        await gw.runtime.database.store.write_events(EVENTS)
        code, out, _ = await hookline(gw, "message", "msg-1")
        assert code == 0
        assert re.search(r"^ann@example.com\s+clicked$", out, re.M)
        assert re.search(r"^cy@example.com\s+bounced$", out, re.M)
        code, out, _ = await hookline(gw, "message", "msg-1", "--json")
        assert json.loads(out)["status"]["bob@example.com"] == "delivered"

        code, out, _ = await hookline(gw, "recipient", "Ann@Example.com")
        assert code == 0
        assert out.splitlines()[0].split() == ["recipient", "ann@example.com", "not", "suppressed"]
        assert "delivered 1, opened 1, clicked 1" in out

        code, out, _ = await hookline(gw, "recipient", "--inactive-days", "60")
        assert code == 0
        listed = [line.split()[0] for line in out.splitlines()[1:]]
        assert listed == ["ann@example.com", "bob@example.com", "quiet@example.com"]

        code, _, err = await hookline(gw, "recipient")
        assert code == 2 and "ADDRESS or --inactive-days" in err

        code, out, _ = await hookline(
            gw, "stats", "--group-by", "campaign", "--since", "2024-04-30", "--until", "2024-05-02"
        )
        assert code == 0
        header, row = out.splitlines()[1:3]
        assert header.split()[:3] == ["KEY", "DELIVERED", "BOUNCED"]
        cells = row.split()
        # spring: 2 delivered, 1 bounce -> delivery 66.67%, 1 unique open and click of 2
        assert cells[:3] == ["spring", "2", "1"]
        assert "66.67%" in cells and "50.00%" in cells and "100.00%" in cells

        code, out, _ = await hookline(gw, "stats", "--json", "--since", "2024-04-30")
        assert json.loads(out)["groups"][0]["key"] == "sendgrid"


async def test_errors_exit_1_with_the_servers_reason(gateway_factory: Any) -> None:
    """A wrong token or bad input prints the problem detail and exits 1."""
    async with gateway_factory(admin={"token": TOKEN}) as gw:
        code, _, err = await hookline(gw, "events", token="wrong")
        assert code == 1 and "401" in err
        code, _, err = await hookline(gw, "events", "--since", "last week")
        assert code == 1 and "400" in err and "since" in err
        code, _, err = await hookline(gw, "message", "nope")
        assert code == 1 and "404" in err
