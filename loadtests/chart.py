"""An SVG chart of a capacity run (no plotting dependency): throughput and p99 by step.

Two panels share the x axis (users, in step order of user count): requests/s on the left,
p99 latency on the right with the objective's bound as a dashed line. Valid steps are
filled dots, steps where the generator saturated are hollow grey, and the knee is ringed
and labelled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from loadtests.verdict import Objective, StepMeasure, find_knee

__all__ = ["svg_chart"]

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
