"""The one error the read side raises for bad client input (mapped to 400 by the routes)."""

from __future__ import annotations

__all__ = ["QueryError"]


class QueryError(ValueError):
    """A query parameter, cursor or path value the client must fix; ``str()`` says why."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason
