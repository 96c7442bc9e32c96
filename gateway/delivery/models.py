"""The rows delivery works on, and the outcome of processing one of them."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["SINK", "SUPPRESSIONS", "Attempt", "ClaimedRow", "Outcome", "RowResult"]

#: the ``outbox.processor`` values
SUPPRESSIONS = "suppressions"
SINK = "sink"


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """One outbox row claimed by a dispatcher pass (``token`` identifies the claim)."""

    id: int
    processor: str
    sink: str
    dedup_key: str
    event_type: str
    payload: str
    trace_context: str | None
    created_at: datetime
    attempts: int
    token: uuid.UUID

    @classmethod
    def from_record(cls, record: Any, token: uuid.UUID) -> ClaimedRow:
        return cls(
            id=record["id"],
            processor=record["processor"],
            sink=record["sink"],
            dedup_key=record["dedup_key"],
            event_type=record["event_type"],
            payload=record["payload"],
            trace_context=record["trace_context"],
            created_at=record["created_at"],
            attempts=record["attempts"],
            token=token,
        )


class Outcome(enum.Enum):
    """What happened to a claimed sink row in one pass (also the metric's outcome label)."""

    SUCCESS = "success"
    RETRY = "retry"
    PERMANENT_FAILURE = "permanent_failure"
    DEAD_LETTERED = "dead_lettered"
    BREAKER_OPEN = "breaker_open"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP attempt, as kept in the row's history (and the DLQ entry)."""

    number: int
    at: datetime
    status: int | None
    error: str | None
    duration_ms: float

    def as_json(self) -> dict[str, Any]:
        return {
            "attempt": self.number,
            "at": self.at.isoformat(),
            "status": self.status,
            "error": self.error,
            "duration_ms": round(self.duration_ms, 1),
        }


@dataclass(frozen=True, slots=True)
class RowResult:
    """The outcome of one claimed sink row: what to write back to the outbox."""

    row: ClaimedRow
    outcome: Outcome
    #: the attempt made (None when the breaker kept the row from being attempted)
    attempt: Attempt | None = None
    #: when the row is due again (retry / breaker_open)
    due_at: datetime | None = None

    @property
    def attempts(self) -> int:
        return self.row.attempts + (1 if self.attempt is not None else 0)
