"""Truth check of one load step: were the acknowledged events stored in PostgreSQL?

Per provider, from Locust's final statistics (request names are ``<provider>``,
``<provider> duplicate`` and ``<provider> bad_signature``, see ``TrafficRequest.name``) and
the rows the step added to ``events``:

* *acknowledged* events: fresh requests answered 200 with every event accepted, times the
  events each carries; every one must be stored, or the step **lost** events;
* *sent* events: every fresh request, answered or not (a request that timed out on the
  client may still have been stored); more rows than that means something that was never
  sent fresh was stored (e.g. a forged request): the step stored **unexplained** events;
* duplicates (redeliveries) and forged requests are counted apart: a duplicate adds no row,
  and a forged request must be refused (401), which Locust counts as its success.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadtests.mix import events_per_request

__all__ = ["ProviderTruth", "StepTruth", "check_step", "count_by_name"]

_DUPLICATE = " duplicate"
_FORGED = " bad_signature"


@dataclass(frozen=True)
class ProviderTruth:
    provider: str
    events_per_request: int
    fresh_acknowledged: int = 0
    fresh_failed: int = 0
    duplicates: int = 0
    duplicates_failed: int = 0
    forged: int = 0
    #: forged requests not refused with 401 (a failure of their Locust check)
    forged_not_refused: int = 0
    stored: int = 0

    @property
    def acknowledged_events(self) -> int:
        return self.fresh_acknowledged * self.events_per_request

    @property
    def sent_events(self) -> int:
        return (self.fresh_acknowledged + self.fresh_failed) * self.events_per_request

    @property
    def missing(self) -> int:
        """Acknowledged events not in PostgreSQL."""
        return max(0, self.acknowledged_events - self.stored)

    @property
    def unexplained(self) -> int:
        """Rows stored beyond every event sent fresh."""
        return max(0, self.stored - self.sent_events)

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.unexplained == 0 and self.forged_not_refused == 0


@dataclass(frozen=True)
class StepTruth:
    providers: tuple[ProviderTruth, ...]

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.providers)

    @property
    def missing(self) -> int:
        return sum(p.missing for p in self.providers)

    @property
    def acknowledged_events(self) -> int:
        return sum(p.acknowledged_events for p in self.providers)

    @property
    def stored(self) -> int:
        return sum(p.stored for p in self.providers)

    def problems(self) -> list[str]:
        """One sentence per provider whose check failed."""
        lines = []
        for p in self.providers:
            if p.missing:
                lines.append(
                    f"{p.provider}: {p.missing} acknowledged events missing from PostgreSQL "
                    f"({p.acknowledged_events} acknowledged, {p.stored} stored)"
                )
            if p.unexplained:
                lines.append(
                    f"{p.provider}: {p.unexplained} stored events were never sent fresh "
                    f"({p.sent_events} sent, {p.stored} stored)"
                )
            if p.forged_not_refused:
                lines.append(f"{p.provider}: {p.forged_not_refused} forged requests not refused")
        return lines


def count_by_name(entries: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """``{name: (requests, failures)}`` from Locust's ``--json-file`` entries."""
    counts: dict[str, tuple[int, int]] = {}
    for entry in entries:
        name = str(entry["name"])
        requests, failures = counts.get(name, (0, 0))
        counts[name] = (
            requests + int(entry["num_requests"]),
            failures + int(entry["num_failures"]),
        )
    return counts


def check_step(
    counts: Mapping[str, tuple[int, int]],
    stored: Mapping[str, int],
    providers: Sequence[str],
    batch_size: int,
) -> StepTruth:
    """Compare what Locust saw acknowledged with the rows stored per provider in the step."""
    rows = []
    for provider in providers:
        fresh, fresh_failed = counts.get(provider, (0, 0))
        duplicates, duplicates_failed = counts.get(provider + _DUPLICATE, (0, 0))
        forged, forged_failed = counts.get(provider + _FORGED, (0, 0))
        rows.append(
            ProviderTruth(
                provider=provider,
                events_per_request=events_per_request(provider, batch_size),
                fresh_acknowledged=fresh - fresh_failed,
                fresh_failed=fresh_failed,
                duplicates=duplicates,
                duplicates_failed=duplicates_failed,
                forged=forged,
                forged_not_refused=forged_failed,
                stored=int(stored.get(provider, 0)),
            )
        )
    return StepTruth(tuple(rows))
