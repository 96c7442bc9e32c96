"""0011: recipients stored before canonical addresses (a display name, a comment, blanks, an
upper-case domain) are rewritten in every table keyed on them, so per-address reads and the
suppression list find them (issue #17, item 3)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg

from gateway.query.filters import RecipientQuery
from gateway.query.reads import ReadService
from gateway.storage.embedded import EmbeddedPostgres
from gateway.storage.migrate import apply_migrations
from gateway.storage.pool import create_pool
from handlers.addresses import canonical_address
from tests.integration.test_migrations import empty_db, migrate_to

__all__ = ["empty_db"]

MIGRATIONS = Path(__file__).resolve().parents[2] / "gateway" / "storage" / "migrations"

JANE = "Jane.Doe@example.org"
#: how the ESPs spelled Jane before the fix: a display name, a quoted one, an upper-case domain
JANE_SPELLINGS = (
    "Jane Doe <Jane.Doe@Example.ORG>",
    '"Doe, Jane" <Jane.Doe@EXAMPLE.org>',
    " Jane.Doe@example.ORG. ",
)
#: a domain that needs IDNA: SQL leaves it as written
IDN = "Ünï <x@bücher.example>"


def engagement_key(provider: str, message_id: str, recipient: str) -> str:
    """The rollups trigger's first-engagement key (0008), as SQL text."""
    return (
        f"decode(md5('{provider}' || E'\\x1f' || '{message_id}' || E'\\x1f' || "
        f"lower('{recipient}')), 'hex')"
    )


async def seed_old_rows(db: asyncpg.Connection) -> None:
    """Rows as a gateway at 0009 stored them, before canonical addresses."""
    await db.executemany(
        "INSERT INTO events (dedup_key, provider, source, event_type, occurred_at, received_at, "
        "recipient, message_id) VALUES ($1, 'sendgrid', 'main', $2, $3, $3, $4, 'm1')",
        [
            ("e1", "delivered", datetime(2024, 5, 1, 10, tzinfo=UTC), JANE_SPELLINGS[0]),
            ("e2", "opened", datetime(2024, 5, 2, 10, tzinfo=UTC), JANE_SPELLINGS[1]),
            ("e3", "bounced", datetime(2024, 5, 3, 10, tzinfo=UTC), JANE_SPELLINGS[2]),
            ("e4", "delivered", datetime(2024, 5, 3, 11, tzinfo=UTC), IDN),
            ("e5", "delivered", datetime(2024, 5, 3, 12, tzinfo=UTC), "Carol@example.com"),
        ],
    )
    await db.execute(
        "INSERT INTO recipient_activity (address, first_delivered_on, last_delivered_on, "
        "last_engaged_on) VALUES "
        "('jane doe <jane.doe@example.org>', '2024-05-01', '2024-05-01', NULL), "
        "('jane.doe@example.org', '2024-05-04', '2024-05-06', '2024-05-05'), "
        "('\"doe, jane\" <jane.doe@example.org>', NULL, NULL, '2024-05-02')"
    )
    await db.execute(
        "INSERT INTO suppressions (address_key, address, reason, dedup_key, provider, "
        "occurred_at, expires_at) VALUES "
        # Jane: an unsubscribe, a hard bounce and an expired soft-bounce quarantine
        "('jane doe <jane.doe@example.org>', 'Jane Doe <Jane.Doe@Example.ORG>', "
        "'unsubscribe', 'u1', 'sendgrid', '2024-05-01', NULL), "
        "('\"doe, jane\" <jane.doe@example.org>', '\"Doe, Jane\" <Jane.Doe@EXAMPLE.org>', "
        "'hard_bounce', 'b1', 'sendgrid', '2024-05-03', NULL), "
        "('jane.doe@example.org', 'jane.doe@example.org', 'soft_bounce', 's1', 'sendgrid', "
        "'2024-05-02', '2024-05-09'), "
        # Bob: two complaints, the earliest stays
        "('bob <bob@example.net>', 'Bob <bob@Example.NET>', 'complaint', 'c2', 'mailgun', "
        "'2024-05-02', NULL), "
        "('<bob@example.net>', '<bob@example.net>', 'complaint', 'c1', 'mailgun', "
        "'2024-05-01', NULL)"
    )
    await db.execute(
        "INSERT INTO soft_bounces (address_key, dedup_key, occurred_at) VALUES "
        "('jane doe <jane.doe@example.org>', 's1', '2024-05-02'), "
        "('jane.doe@example.org', 's1', '2024-05-02'), "
        "('jane doe <jane.doe@example.org>', 's0', '2024-05-01')"
    )


async def test_old_display_name_recipients_become_canonical_everywhere(
    empty_db: asyncpg.Connection, pg_server: EmbeddedPostgres
) -> None:
    """After 0011, old rows hold the canonical addr-spec (local part as written, domain
    lower-cased), merged where two spellings became one address (activity by LEAST /
    GREATEST, suppressions by the entry in force with the stronger reason, then the earliest,
    engagements by their bits); IDNA domains are left as written. The recipient read path
    then finds every event, the activity and the suppression of the address."""
    await migrate_to(empty_db, 9)
    await seed_old_rows(empty_db)
    old_key = engagement_key("sendgrid", "m1", JANE_SPELLINGS[1])
    assert await empty_db.fetchval(f"SELECT kinds FROM first_engagements WHERE key = {old_key}")

    assert 11 in [m.version for m in await apply_migrations(empty_db)]

    recipients = await empty_db.fetch("SELECT dedup_key, recipient FROM events ORDER BY 1")
    assert [tuple(row) for row in recipients] == [
        ("e1", JANE),
        ("e2", JANE),
        ("e3", JANE),
        ("e4", IDN),
        ("e5", "Carol@example.com"),
    ]
    new_key = engagement_key("sendgrid", "m1", JANE)
    engagements = await empty_db.fetch(
        f"SELECT key = {new_key} AS canonical, kinds FROM first_engagements"
    )
    assert [tuple(row) for row in engagements] == [(True, 3)]  # an open and a human open

    activity = await empty_db.fetch("SELECT * FROM recipient_activity ORDER BY address")
    assert [tuple(row) for row in activity] == [
        ("jane.doe@example.org", date(2024, 5, 1), date(2024, 5, 6), date(2024, 5, 5))
    ]
    suppressions = await empty_db.fetch(
        "SELECT address_key, address, reason, dedup_key FROM suppressions ORDER BY 1"
    )
    assert [tuple(row) for row in suppressions] == [
        ("bob@example.net", "bob@example.net", "complaint", "c1"),
        ("jane.doe@example.org", JANE, "hard_bounce", "b1"),
    ]
    bounces = await empty_db.fetch("SELECT address_key, dedup_key FROM soft_bounces ORDER BY 2")
    assert [tuple(row) for row in bounces] == [
        ("jane.doe@example.org", "s0"),
        ("jane.doe@example.org", "s1"),
    ]

    url = (
        pg_server.url().rsplit("/", 1)[0]
        + "/"
        + await empty_db.fetchval("SELECT current_database()")
    )
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        history = await ReadService(pool).recipient("Jane.Doe@EXAMPLE.ORG", RecipientQuery())
    finally:
        await pool.close()
    assert sorted(event.event_type for event in history.events) == [
        "bounced",
        "delivered",
        "opened",
    ]
    assert history.suppressed
    assert history.suppression is not None and history.suppression["reason"] == "hard_bounce"
    assert history.activity is not None
    assert history.activity.first_delivered_on == date(2024, 5, 1)
    assert history.activity.last_engaged_on == date(2024, 5, 5)


#: spellings ESPs echo, with and without a display name, comment, blanks or capitals
SPELLINGS = (
    "to@example.org",
    "To.Someone@Example.ORG",
    "Jane Doe <Jane.Doe@Example.ORG>",
    '"Doe, Jane" <jane@EXAMPLE.org>',
    '"a<b" <c@D.example>',
    "<bob@Example.NET>",
    "bob@example.net (Bob)",
    "(Bob) bob@Example.net",
    "  padded@Example.org  ",
    "trailing@example.org.",
    "not an address",
    "Name <x@bücher.example>",
    "x@BÜCHER.example",
)


async def test_the_migrations_canonical_form_is_the_adapters(
    empty_db: asyncpg.Connection,
) -> None:
    """The SQL rewrite spells every ASCII-domain address exactly as
    ``handlers.addresses.canonical_address`` does, and leaves IDNA domains alone (NULL)."""
    sql = (MIGRATIONS / "0011_canonical_recipients.sql").read_text()
    start = sql.index("CREATE FUNCTION hookline_0011_canonical")
    end = sql.index("-- events:")
    await empty_db.execute(sql[start:end])
    for value in SPELLINGS:
        got = await empty_db.fetchval("SELECT hookline_0011_canonical($1)", value)
        expected = canonical_address(value)
        assert expected is not None
        domain = expected.rpartition("@")[2]
        if domain.startswith("xn--") or not value.isascii():
            assert got is None, value
        else:
            assert got == expected, value
