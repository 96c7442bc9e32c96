"""Amazon SNS signing certificates and subscription confirmations: the gateway's only
outbound calls on behalf of an unauthenticated request, so they are fenced in.

- URLs are parsed strictly by ``handlers.sns`` (one host pattern for both): anything else is
  never fetched.
- A fetched certificate is cached by URL; a URL that failed is not fetched again for a
  while: ``negative_ttl`` seconds after a refusal (e.g. 404: "untrusted" from the cache),
  ``transient_ttl`` after a transient failure ("unavailable" from the cache; kept short, as
  SNS retries a notification only for about a minute, and the breaker covers sustained
  trouble).
- One circuit breaker per SNS host (``sns:<host>``, a bounded set: at most ``max_hosts``
  hosts get their own, the rest share ``sns:other``), and only host trouble (connection
  errors, timeouts, 5xx) counts against it. A made-up certificate path on a genuine host
  gets a quick 404 from Amazon, which is an answer about that URL, not about the host: so
  forged traffic can neither open the breaker genuine notifications go through nor make the
  gateway fetch the same bad URL again and again.

Built once by the app factory and handed to the runtime; ``redirect`` (tests only) maps a
validated URL to the URL actually requested, so tests can serve certificates locally.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

import httpx
import structlog

from gateway.resilience import AsyncCircuitBreaker, CircuitOpenError
from gateway.settings import SnsSettings
from handlers.sns import signing_cert_host, subscribe_url_host
from observability.metrics import Metrics

__all__ = ["OTHER_HOSTS_BREAKER", "CertificateUnavailableError", "SnsCertificates"]

log = structlog.get_logger("hookline.sns")

#: the breaker shared by SNS hosts beyond ``max_hosts``
OTHER_HOSTS_BREAKER = "sns:other"
#: a certificate is a few KiB; anything much larger is not one
_MAX_CERTIFICATE_BYTES = 64 * 1024
_CACHE_LIMIT = 256
_NEGATIVE_LIMIT = 4096
#: the defaults of the [sns] tunables (gateway/settings.py holds them)
_SNS = SnsSettings()


class CertificateUnavailableError(Exception):
    """An SNS signing certificate could not be fetched now (the request may be retried)."""


class _HostTrouble(Exception):
    """A 5xx from an SNS host: counts against its breaker."""


class SnsCertificates:
    def __init__(
        self,
        http: httpx.AsyncClient,
        metrics: Metrics,
        *,
        fail_max: int = _SNS.breaker_fail_max,
        reset_timeout: float = _SNS.breaker_reset_seconds,
        negative_ttl: float = _SNS.failure_ttl_seconds,
        transient_ttl: float = _SNS.transient_failure_ttl_seconds,
        max_hosts: int = _SNS.max_hosts,
        timeout: float = _SNS.certificate_timeout_seconds,
        redirect: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._metrics = metrics
        self._fail_max = fail_max
        self._reset_timeout = reset_timeout
        self._negative_ttl = negative_ttl
        self._transient_ttl = transient_ttl
        self._max_hosts = max_hosts
        self._timeout = timeout
        self._redirect = redirect or (lambda url: url)
        self._clock = clock
        self._certificates: OrderedDict[str, bytes] = OrderedDict()
        #: url -> (retry no earlier than, transient?)
        self._failed: OrderedDict[str, tuple[float, bool]] = OrderedDict()
        self._breakers: dict[str, AsyncCircuitBreaker] = {}

    @classmethod
    def configured(
        cls, http: httpx.AsyncClient, metrics: Metrics, settings: SnsSettings
    ) -> SnsCertificates:
        """The certificate fetcher as ``[sns]`` configures it."""
        return cls(
            http,
            metrics,
            fail_max=settings.breaker_fail_max,
            reset_timeout=settings.breaker_reset_seconds,
            negative_ttl=settings.failure_ttl_seconds,
            transient_ttl=settings.transient_failure_ttl_seconds,
            max_hosts=settings.max_hosts,
            timeout=settings.certificate_timeout_seconds,
        )

    # -- breakers -------------------------------------------------------------------------
    def breaker_for(self, host: str) -> AsyncCircuitBreaker:
        """The breaker guarding fetches from ``host`` (created on first use)."""
        name = f"sns:{host}"
        breaker = self._breakers.get(name)
        if breaker is None:
            if len(self._breakers) >= self._max_hosts and name != OTHER_HOSTS_BREAKER:
                return self.breaker_for("other")
            breaker = AsyncCircuitBreaker(
                name,
                self._metrics,
                fail_max=self._fail_max,
                reset_timeout=self._reset_timeout,
            )
            self._breakers[name] = breaker
        return breaker

    # -- certificates ---------------------------------------------------------------------
    async def fetch(self, url: str) -> bytes:
        """The PEM at ``url``; ``b""`` when it is not an SNS certificate URL or the host
        refused it (the caller answers "untrusted"); ``CertificateUnavailableError`` when it
        cannot be fetched now (the caller answers 503)."""
        host = signing_cert_host(url)
        if host is None:
            return b""
        cached = self._certificates.get(url)
        if cached is not None:
            return cached
        failed = self._failed.get(url)
        if failed is not None:
            until, transient = failed
            if self._clock() < until:
                if transient:
                    raise CertificateUnavailableError("fetch failed recently")
                return b""
            del self._failed[url]
        target = self._redirect(url)
        timeout = self._timeout

        async def get() -> httpx.Response:
            response = await self._http.get(target, timeout=timeout)
            if response.status_code >= 500:
                raise _HostTrouble(str(response.status_code))
            return response

        try:
            response = await self.breaker_for(host).call(get)
        except (httpx.HTTPError, CircuitOpenError, _HostTrouble) as exc:
            self._remember_failure(url, transient=True)
            log.warning("sns.certificate_unavailable", host=host, error=type(exc).__name__)
            raise CertificateUnavailableError(type(exc).__name__) from exc
        pem = response.content
        if response.status_code != 200 or not pem or len(pem) > _MAX_CERTIFICATE_BYTES:
            self._remember_failure(url, transient=False)
            log.warning("sns.certificate_refused", host=host, status=response.status_code)
            return b""
        self._certificates[url] = pem
        if len(self._certificates) > _CACHE_LIMIT:
            self._certificates.popitem(last=False)
        return pem

    def _remember_failure(self, url: str, *, transient: bool) -> None:
        ttl = self._transient_ttl if transient else self._negative_ttl
        self._failed[url] = (self._clock() + ttl, transient)
        self._failed.move_to_end(url)
        if len(self._failed) > _NEGATIVE_LIMIT:
            self._failed.popitem(last=False)

    # -- subscriptions --------------------------------------------------------------------
    async def confirm(self, url: str) -> str | None:
        """GET a SubscribeURL; None when confirmed, else what went wrong (no secrets: the
        URL, which carries the subscription token, is never logged or returned)."""
        if subscribe_url_host(url) is None:
            return "refused: SubscribeURL is not an https SNS endpoint"
        try:
            response = await self._http.get(self._redirect(url), timeout=10.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return None
