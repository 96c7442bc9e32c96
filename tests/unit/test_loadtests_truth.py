"""The stored-vs-acknowledged check of a capacity step."""

from __future__ import annotations

from loadtests.truth import check_step, count_by_name

ENTRIES = [
    {"name": "sendgrid", "num_requests": 10, "num_failures": 1},
    {"name": "sendgrid duplicate", "num_requests": 3, "num_failures": 0},
    {"name": "sendgrid bad_signature", "num_requests": 2, "num_failures": 0},
    {"name": "mailgun", "num_requests": 7, "num_failures": 0},
]


def test_everything_acknowledged_and_stored_passes() -> None:
    """SendGrid batches (9 acknowledged x 5 events; the failed request's 5 may or may not be
    stored), Mailgun sends one event each: nothing missing, nothing unexplained."""
    counts = count_by_name(ENTRIES)
    for stored_sendgrid in (45, 50):
        truth = check_step(
            counts, {"sendgrid": stored_sendgrid, "mailgun": 7}, ["sendgrid", "mailgun"], 5
        )
        assert truth.ok, truth.problems()
    sendgrid = truth.providers[0]
    assert (sendgrid.acknowledged_events, sendgrid.duplicates, sendgrid.forged) == (45, 3, 2)


def test_a_single_missing_acknowledged_event_fails_the_step() -> None:
    """One acknowledged event short in PostgreSQL is a loss, named with its provider."""
    truth = check_step(
        count_by_name(ENTRIES), {"sendgrid": 45, "mailgun": 6}, ["sendgrid", "mailgun"], 5
    )
    assert not truth.ok
    assert truth.missing == 1
    assert truth.problems() == [
        "mailgun: 1 acknowledged events missing from PostgreSQL (7 acknowledged, 6 stored)"
    ]


def test_rows_beyond_what_was_sent_or_an_accepted_forgery_fail_the_step() -> None:
    """A stored row no fresh request carried (e.g. a forged one) and a forged request that
    was not refused both fail, and are reported apart from losses."""
    counts = count_by_name(ENTRIES)
    truth = check_step(counts, {"sendgrid": 51, "mailgun": 7}, ["sendgrid", "mailgun"], 5)
    assert not truth.ok and truth.missing == 0
    assert "never sent fresh" in truth.problems()[0]
    counts["mailgun bad_signature"] = (4, 1)
    truth = check_step(counts, {"sendgrid": 45, "mailgun": 7}, ["sendgrid", "mailgun"], 5)
    assert not truth.ok
    assert truth.problems() == ["mailgun: 1 forged requests not refused"]
