"""One SMTP-status parser for every adapter (issue #17: the two extraction helpers parsed
the same diagnostic differently; there is one extraction library now, ``handlers._common``)."""

from __future__ import annotations

import pytest

from handlers._common import smtp_status_from_text


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("550 5.1.1 <a@example.org>: Recipient address rejected", "5.1.1"),
        ("smtp;550 5.1.1 The email account that you tried to reach does not exist", "5.1.1"),
        ("452 4.2.2 Mailbox full", "4.2.2"),
        ("smtp; 554 Transaction failed", "554"),
        ("250 OK", "250"),
        ("Message delivered in 250 ms", None),
        ("connect to 10.4.5.6 port 25 failed", None),
        ("host mx.example.org said: 5.7.1 blocked (in reply to RCPT TO)", "5.7.1"),
        ("", None),
        (None, None),
    ],
)
def test_the_one_parser_reads_the_status(text: str | None, status: str | None) -> None:
    """The enhanced code anywhere (never a piece of an IP address or a longer dotted
    number), else the reply code at the start."""
    assert smtp_status_from_text(text) == status
