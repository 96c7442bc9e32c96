"""Deliverability KPIs from summed rollup counters (definitions also in docs/admin-api.md).

=============================  =====================================================
delivery_rate                  delivered / (delivered + bounced + dropped)
unique_open_rate               unique human opens / delivered
unique_open_rate_with_machine  unique opens, machine opens included / delivered
click_rate                     unique clicks / delivered
click_to_open_rate             unique clicks / unique human opens
bounce_rate                    bounced / (delivered + bounced)
hard_bounce_rate               hard bounces / (delivered + bounced)
soft_bounce_rate               soft bounces / (delivered + bounced)
complaint_rate                 complained / delivered
unsubscribe_rate               unsubscribed / delivered
=============================  =====================================================

"Unique" counts the first open (or click) per (provider, message id, recipient); a
"human" open is one the ESP did not flag as a machine open (Apple Mail Privacy
Protection, security scanners).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.query.models import Rates, StatsDetails

__all__ = ["compute_details", "compute_rates"]


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator > 0 else None


def compute_rates(counts: Mapping[str, int]) -> Rates:
    """The rates of one group from its counter sums (``COUNTER_COLUMNS`` names)."""

    def c(name: str) -> int:
        return int(counts.get(name, 0))

    delivered, bounced = c("delivered"), c("bounced")
    bounce_base = delivered + bounced
    return Rates(
        delivery_rate=_ratio(delivered, delivered + bounced + c("dropped")),
        unique_open_rate=_ratio(c("unique_human_opened"), delivered),
        unique_open_rate_with_machine=_ratio(c("unique_opened"), delivered),
        click_rate=_ratio(c("unique_clicked"), delivered),
        click_to_open_rate=_ratio(c("unique_clicked"), c("unique_human_opened")),
        bounce_rate=_ratio(bounced, bounce_base),
        hard_bounce_rate=_ratio(c("hard_bounced"), bounce_base),
        soft_bounce_rate=_ratio(c("soft_bounced"), bounce_base),
        complaint_rate=_ratio(c("complained"), delivered),
        unsubscribe_rate=_ratio(c("unsubscribed"), delivered),
    )


def compute_details(counts: Mapping[str, int]) -> StatsDetails:
    def c(name: str) -> int:
        return int(counts.get(name, 0))

    return StatsDetails(
        hard_bounces=c("hard_bounced"),
        soft_bounces=c("soft_bounced"),
        undetermined_bounces=max(0, c("bounced") - c("hard_bounced") - c("soft_bounced")),
        machine_opens=c("machine_opened"),
        unique_opens=c("unique_opened"),
        unique_human_opens=c("unique_human_opened"),
        unique_clicks=c("unique_clicked"),
    )
