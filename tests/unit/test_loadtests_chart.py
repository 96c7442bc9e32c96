"""The capacity run's SVG chart."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from loadtests.chart import svg_chart
from loadtests.verdict import Objective, StepMeasure

SVG = "{http://www.w3.org/2000/svg}"


def test_the_chart_is_valid_svg_with_the_knee_ringed_and_invalid_steps_hollow() -> None:
    """Well-formed SVG; 'knee' labels the knee step in both panels (and no other step); the
    generator-saturated step is drawn hollow; the objective's bound is drawn."""
    steps = [
        StepMeasure(4, 160.0, 70.0, 0.0),
        StepMeasure(8, 300.0, 120.0, 0.0),
        StepMeasure(16, 320.0, 400.0, 0.0),
        StepMeasure(12, 310.0, 200.0, 0.0, "CPU"),
    ]
    root = ET.fromstring(svg_chart(steps, Objective(p99_ms=250.0)))
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert labels.count("knee") == 2
    titles = [t.text or "" for t in root.iter(f"{SVG}title")]
    assert "8 users: 300.0" in titles
    hollow = [
        c
        for c in root.iter(f"{SVG}circle")
        if c.get("fill") == "none" and c.get("stroke") == "grey"
    ]
    assert len(hollow) == 2  # the invalid step, in both panels
    assert "objective 250" in labels
    knee_rings = [c for c in root.iter(f"{SVG}circle") if c.get("stroke") == "darkorange"]
    ring_x = {c.get("cx") for c in knee_rings}
    dots_at_8 = {
        c.get("cx")
        for c in root.iter(f"{SVG}circle")
        if (c.findtext(f"{SVG}title") or "").startswith("8 users")
    }
    assert ring_x == dots_at_8
