"""SNS certificate fetching: strict URLs, negative cache, one breaker per SNS host, and
pinned sources that never fetch. Certificates are served by a real local HTTP server that
the fetcher is pointed at through its test-only ``redirect``."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.sns_certificates import CertificateUnavailableError, SnsCertificates
from handlers import ses
from handlers.base import AuthError, VerifyContext
from handlers.sns import signing_cert_host
from hookline_testing import TEST_CERT_URL, samples_for
from observability.metrics import Metrics

GOOD = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem"


@dataclass
class CertServer:
    """A loopback HTTP server: ``/<status>/...`` answers that status, anything else the PEM."""

    url: str = ""
    pem: bytes = b""
    paths: list[str] = field(default_factory=list)


@contextlib.contextmanager
def cert_server(pem: bytes) -> Iterator[CertServer]:
    served = CertServer(pem=pem)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.paths.append(self.path)
            first = self.path.strip("/").split("/")[0]
            status = int(first) if first.isdigit() else 200
            body = served.pem if status == 200 else b"no"
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fetcher(
    served: CertServer,
    http: httpx.AsyncClient,
    clock: Clock | None = None,
    prefix: str = "",
    **kw: Any,
) -> SnsCertificates:
    """Requests go to the local server: the host becomes ``<server><prefix>``, path kept."""

    def redirect(url: str) -> str:
        return f"{served.url}{prefix}{urlsplit(url).path}"

    return SnsCertificates(http, Metrics(), redirect=redirect, clock=clock or Clock(), **kw)


@pytest.mark.parametrize(
    "url",
    [
        GOOD + "\n",
        GOOD + " ",
        " " + GOOD,
        GOOD + "#x",
        GOOD + "?x=1",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        "https://sns.us-east-1.amazonaws.com:443/SimpleNotificationService-0123abcd.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-01.pem",
        "https://SNS.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem.txt",
        "https://sns.us-east-1.amazonaws.com/a/../SimpleNotificationService-0123abcd.pem",
        "https://sns.evil.amazonaws.com/SimpleNotificationService-0123abcd.pem",
    ],
)
def test_signing_cert_urls_are_parsed_strictly(url: str) -> None:
    """Only https://sns.<region>.amazonaws.com[.cn]/SimpleNotificationService-<hex>.pem,
    whole: no trailing newline or space, fragment, query, userinfo, port or other host."""
    assert signing_cert_host(url) is None


def test_genuine_signing_cert_urls_name_their_host() -> None:
    """The host is what the breaker is keyed by; both partitions are accepted."""
    assert signing_cert_host(GOOD) == "sns.us-east-1.amazonaws.com"
    china = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-9f8e.pem"
    assert signing_cert_host(china) == "sns.cn-north-1.amazonaws.com.cn"
    gov = "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-9f8e.pem"
    assert signing_cert_host(gov) == "sns.us-gov-west-1.amazonaws.com"


async def test_a_certificate_is_fetched_once_and_cached() -> None:
    """A good URL is fetched from its host once; later requests use the cache."""
    with cert_server(b"PEM") as served:
        async with httpx.AsyncClient() as http:
            certificates = fetcher(served, http)
            assert await certificates.fetch(GOOD) == b"PEM"
            assert await certificates.fetch(GOOD) == b"PEM"
    assert served.paths == ["/SimpleNotificationService-0123abcd.pem"]


async def test_malformed_urls_are_never_fetched() -> None:
    """A URL that fails strict parsing answers b"" (untrusted) without any request."""
    with cert_server(b"PEM") as served:
        async with httpx.AsyncClient() as http:
            certificates = fetcher(served, http)
            assert await certificates.fetch(GOOD + "\n") == b""
    assert served.paths == []


async def test_a_refused_url_is_negatively_cached_and_does_not_open_the_host_breaker() -> None:
    """A 404 (a made-up certificate on a genuine host) is untrusted, not fetched again
    within the negative TTL, and never opens that host's breaker, so a flood of forged
    URLs cannot make genuine notifications from the same region wait for a breaker."""
    clock = Clock()
    with cert_server(b"PEM") as served:
        async with httpx.AsyncClient() as http:
            certificates = fetcher(served, http, clock, prefix="/404", negative_ttl=60.0)
            forged = [
                f"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-{i:04x}.pem"
                for i in range(10)
            ]
            for url in forged:
                assert await certificates.fetch(url) == b""
                assert await certificates.fetch(url) == b""
            assert len(served.paths) == 10
            assert certificates.breaker_for("sns.us-east-1.amazonaws.com").state == "closed"
            clock.now += 61
            assert await certificates.fetch(forged[0]) == b""
            assert len(served.paths) == 11


async def test_host_trouble_opens_only_that_hosts_breaker() -> None:
    """5xx from one SNS host opens its breaker (503 for its URLs), while certificates from
    another region are still fetched."""
    with cert_server(b"PEM") as served:
        async with httpx.AsyncClient() as http:

            def redirect(url: str) -> str:
                path = urlsplit(url).path
                failing = "eu-west-1" in url
                return f"{served.url}{'/503' if failing else ''}{path}"

            certificates = SnsCertificates(
                http, Metrics(), redirect=redirect, clock=Clock(), fail_max=2
            )
            bad = [
                f"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-{i:04x}.pem"
                for i in range(4)
            ]
            for url in bad:
                with pytest.raises(CertificateUnavailableError):
                    await certificates.fetch(url)
            assert certificates.breaker_for("sns.eu-west-1.amazonaws.com").state == "open"
            assert len(served.paths) == 2  # the open breaker stopped the rest
            assert await certificates.fetch(GOOD) == b"PEM"
            assert certificates.breaker_for("sns.us-east-1.amazonaws.com").state == "closed"


async def test_breakers_are_bounded_in_number() -> None:
    """Beyond max_hosts distinct hosts, the rest share one breaker (bounded label set)."""
    async with httpx.AsyncClient() as http:
        certificates = SnsCertificates(http, Metrics(), max_hosts=2)
        names = {
            certificates.breaker_for(f"sns.us-east-{i}.amazonaws.com").name for i in range(1, 9)
        }
    assert names == {"sns:sns.us-east-1.amazonaws.com", "sns:sns.us-east-2.amazonaws.com"} | {
        "sns:other"
    }


async def test_a_source_that_pins_certificates_never_fetches() -> None:
    """A pinned source refuses an unpinned SigningCertURL as untrusted, without fetching
    it, even though the gateway could fetch it (and it would verify)."""
    source, material = samples_for("ses").make_source()
    other_url = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ffff.pem"
    now = datetime.now(UTC)
    request = samples_for("ses").signed_request(
        source,
        replace(material, cert_url=other_url),
        samples_for("ses").example_body(now=now),
        now=now,
    )
    with cert_server(material.certificate_pem.encode()) as served:
        async with httpx.AsyncClient() as http:
            certificates = fetcher(served, http)
            context = VerifyContext(now=now, fetch_certificate=certificates.fetch)
            with pytest.raises(AuthError) as caught:
                await ses.ADAPTER.verify(request, source, context)
            assert caught.value.reason == "untrusted"
            assert served.paths == []
            # the same request verifies for a source that does not pin: it was genuine
            await ses.ADAPTER.verify(request, replace(source, sns_certificates={}), context)
    assert served.paths == ["/SimpleNotificationService-ffff.pem"]
    assert TEST_CERT_URL in source.sns_certificates


async def test_nothing_is_fetched_before_the_cheap_checks_pass() -> None:
    """A message from a topic the source does not allow, or outside the replay window, is
    refused before any certificate is fetched."""
    source, material = samples_for("ses").make_source()
    unpinned = replace(source, sns_certificates={}, topic_arns=("arn:aws:sns:x:1:other",))
    now = datetime.now(UTC)
    request = samples_for("ses").signed_request(
        source, material, samples_for("ses").example_body(now=now), now=now
    )
    with cert_server(material.certificate_pem.encode()) as served:
        async with httpx.AsyncClient() as http:
            context = VerifyContext(now=now, fetch_certificate=fetcher(served, http).fetch)
            with pytest.raises(AuthError):
                await ses.ADAPTER.verify(request, unpinned, context)
            stale = VerifyContext(
                now=datetime(2020, 1, 1, tzinfo=UTC), fetch_certificate=context.fetch_certificate
            )
            with pytest.raises(AuthError):
                await ses.ADAPTER.verify(
                    request, replace(unpinned, topic_arns=source.topic_arns), stale
                )
    assert served.paths == []


async def test_a_transient_failure_is_cached_briefly_then_retried() -> None:
    """After a 5xx the URL answers "unavailable" from the cache (no new request) until the
    short transient TTL has passed; then it is fetched again and succeeds."""
    clock = Clock()
    with cert_server(b"PEM") as served:
        async with httpx.AsyncClient() as http:
            failing = {"on": True}

            def redirect(url: str) -> str:
                prefix = "/503" if failing["on"] else ""
                return f"{served.url}{prefix}{urlsplit(url).path}"

            certificates = SnsCertificates(
                http, Metrics(), redirect=redirect, clock=clock, transient_ttl=5.0
            )
            with pytest.raises(CertificateUnavailableError):
                await certificates.fetch(GOOD)
            failing["on"] = False
            with pytest.raises(CertificateUnavailableError):
                await certificates.fetch(GOOD)
            assert len(served.paths) == 1
            clock.now += 6
            assert await certificates.fetch(GOOD) == b"PEM"
            assert len(served.paths) == 2
