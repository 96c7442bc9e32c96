"""SVG charts of a capacity run (no plotting dependency).

``svg_chart``: throughput and p99 by step. ``svg_timeline``: throughput, p50 and p99 over
time, from Locust's per-step history CSVs.

Two panels share the x axis (users, in step order of user count): requests/s on the left,
p99 latency on the right with the objective's bound as a dashed line. Valid steps are
filled dots, steps where the generator saturated are hollow grey, and the knee is ringed
and labelled.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from loadtests.verdict import Objective, StepMeasure, find_knee

__all__ = ["HistoryPoint", "read_history", "svg_chart", "svg_timeline"]

_W, _H, _PAD = 360, 240, 48


def _scale(low: float, high: float, out_low: float, out_high: float) -> Callable[[float], float]:
    span = (high - low) or 1.0
    return lambda value: out_low + (value - low) / span * (out_high - out_low)


def _panel(
    x0: int,
    title: str,
    steps: Sequence[StepMeasure],
    value: Callable[[StepMeasure], float],
    knee: StepMeasure | None,
    bound: float | None = None,
) -> list[str]:
    points = [(s, value(s)) for s in steps if not math.isnan(value(s))]
    top = max([v for _, v in points] + [bound or 0.0, 1.0]) * 1.1
    users = [s.users for s in steps] or [1]
    x = _scale(0, max(users) * 1.05, x0 + _PAD, x0 + _W - 12)
    y = _scale(0, top, _H - _PAD + 12, 28)
    parts = [
        f'<text x="{x0 + _W / 2}" y="16" text-anchor="middle" font-weight="bold">'
        f"{escape(title)}</text>",
        f'<line x1="{x(0)}" y1="{y(0)}" x2="{x0 + _W - 12}" y2="{y(0)}" stroke="black"/>',
        f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(0)}" y2="28" stroke="black"/>',
        f'<text x="{x0 + _W / 2}" y="{_H - 8}" text-anchor="middle">users</text>',
        f'<text x="{x(0) - 4}" y="{y(0)}" text-anchor="end">0</text>',
        f'<text x="{x(0) - 4}" y="{y(top / 1.1) + 4}" text-anchor="end">{top / 1.1:,.0f}</text>',
    ]
    if bound is not None:
        parts.append(
            f'<line x1="{x(0)}" y1="{y(bound)}" x2="{x0 + _W - 12}" y2="{y(bound)}" '
            'stroke="red" stroke-dasharray="4 3"/>'
            f'<text x="{x0 + _W - 14}" y="{y(bound) - 4}" text-anchor="end" fill="red">'
            f"objective {bound:g}</text>"
        )
    valid = sorted(((s.users, v) for s, v in points if s.valid), key=lambda p: p[0])
    if len(valid) > 1:
        path = " ".join(f"{x(u):.1f},{y(v):.1f}" for u, v in valid)
        parts.append(f'<polyline points="{path}" fill="none" stroke="steelblue"/>')
    for step, v in points:
        fill = "steelblue" if step.valid else "none"
        stroke = "steelblue" if step.valid else "grey"
        parts.append(
            f'<circle cx="{x(step.users):.1f}" cy="{y(v):.1f}" r="4" fill="{fill}" '
            f'stroke="{stroke}"><title>{step.users} users: {v:,.1f}</title></circle>'
        )
        parts.append(
            f'<text x="{x(step.users):.1f}" y="{y(0) + 14}" text-anchor="middle" '
            f'font-size="10">{step.users}</text>'
        )
        if step is knee:
            parts.append(
                f'<circle cx="{x(step.users):.1f}" cy="{y(v):.1f}" r="9" fill="none" '
                f'stroke="darkorange" stroke-width="2"/>'
                f'<text x="{x(step.users):.1f}" y="{y(v) - 13:.1f}" text-anchor="middle" '
                f'fill="darkorange">knee</text>'
            )
    return parts


def svg_chart(steps: Sequence[StepMeasure], objective: Objective) -> str:
    """The chart as an SVG document."""
    knee = find_knee(steps, objective)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * _W}" height="{_H}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{2 * _W}" height="{_H}" fill="white"/>',
        *_panel(0, "requests/s", steps, lambda s: s.throughput, knee),
        *_panel(_W, "p99 latency (ms)", steps, lambda s: s.p99_ms, knee, objective.p99_ms),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


@dataclass(frozen=True)
class HistoryPoint:
    """One second of Locust's ``<prefix>_stats_history.csv`` (its ``Aggregated`` row)."""

    at: float
    users: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def _number(text: str) -> float:
    return math.nan if text.strip() in ("", "N/A") else float(text)


def read_history(path: Path) -> list[HistoryPoint]:
    """The aggregated rows of a Locust history CSV, skipping those before the first user."""
    points = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("Name") != "Aggregated" or int(row["User Count"] or 0) == 0:
                continue
            points.append(
                HistoryPoint(
                    at=float(row["Timestamp"]),
                    users=int(row["User Count"]),
                    requests_per_second=_number(row["Requests/s"]),
                    p50_ms=_number(row["50%"]),
                    p99_ms=_number(row["99%"]),
                )
            )
    return points


def svg_timeline(steps: Sequence[Sequence[HistoryPoint]], objective: Objective) -> str:
    """Throughput, p50 and p99 over the run's time, one shaded band per step (gaps between
    steps, when the gateway drains, are left out)."""
    width, panel = 2 * _W, 180
    flat: list[tuple[float, HistoryPoint, int]] = []
    offset = 0.0
    for index, points in enumerate(steps):
        if not points:
            continue
        for point in points:
            flat.append((offset + point.at - points[0].at, point, index))
        offset = flat[-1][0] + 1.0
    end = max(offset, 1.0)
    x = _scale(0, end, _PAD, width - 12)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{2 * panel + 30}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{2 * panel + 30}" fill="white"/>',
    ]
    for index in sorted({i for _, _, i in flat}):
        times = [t for t, _, i in flat if i == index]
        users = next(p.users for _, p, i in flat if i == index)
        shade = "#f0f0f0" if index % 2 == 0 else "#ffffff"
        left, right = x(min(times)), x(max(times))
        parts.append(
            f'<rect x="{left:.1f}" y="20" width="{max(right - left, 1):.1f}" '
            f'height="{2 * panel - 10}" fill="{shade}"/>'
            f'<text x="{(left + right) / 2:.1f}" y="{2 * panel + 24}" '
            f'text-anchor="middle" font-size="10">step {index + 1}: {users} users</text>'
        )
    panels: list[tuple[str, list[tuple[str, Callable[[HistoryPoint], float]]], float | None]] = [
        ("requests/s", [("steelblue", lambda p: p.requests_per_second)], None),
        (
            "latency (ms): p50, p99",
            [("seagreen", lambda p: p.p50_ms), ("darkorange", lambda p: p.p99_ms)],
            objective.p99_ms,
        ),
    ]
    for row, (title, lines, bound) in enumerate(panels):
        top_y, bottom_y = 28 + row * panel, (row + 1) * panel
        values = [f(p) for _, p, _ in flat for _, f in lines]
        top = max([v for v in values if not math.isnan(v)] + [bound or 0.0, 1.0]) * 1.1
        y = _scale(0, top, bottom_y, top_y)
        parts += [
            f'<text x="{_PAD}" y="{top_y - 10}" font-weight="bold">{escape(title)}</text>',
            f'<line x1="{_PAD}" y1="{bottom_y}" x2="{width - 12}" y2="{bottom_y}" stroke="black"/>',
            f'<text x="{_PAD - 4}" y="{bottom_y}" text-anchor="end">0</text>',
            f'<text x="{_PAD - 4}" y="{y(top / 1.1) + 4:.1f}" text-anchor="end">'
            f"{top / 1.1:,.0f}</text>",
        ]
        if bound is not None:
            parts.append(
                f'<line x1="{_PAD}" y1="{y(bound):.1f}" x2="{width - 12}" y2="{y(bound):.1f}" '
                'stroke="red" stroke-dasharray="4 3"/>'
            )
        for color, value in lines:
            for index in sorted({i for _, _, i in flat}):
                coords = [
                    f"{x(t):.1f},{y(value(p)):.1f}"
                    for t, p, i in flat
                    if i == index and not math.isnan(value(p))
                ]
                if coords:
                    parts.append(
                        f'<polyline points="{" ".join(coords)}" fill="none" stroke="{color}"/>'
                    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
