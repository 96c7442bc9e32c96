"""The capacity run's SVG chart."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from loadtests.chart import read_history, svg_chart, svg_timeline
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


HISTORY = """\
Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,\
99.99%,100%,Total Request Count
100,0,,Aggregated,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0
101,{users},,Aggregated,{rps},0.0,20,24,27,30,40,56,74,{p99},85,85,85,553
102,{users},,Aggregated,{rps},0.0,20,24,27,30,40,56,74,{p99},85,85,85,900
102,{users},POST,sendgrid,1.0,0.0,20,24,27,30,40,56,74,79,85,85,85,9
"""


def test_the_timeline_reads_locust_history_and_draws_every_step_inside_the_canvas(
    tmp_path: Path,
) -> None:
    """Only Locust's Aggregated rows with users are read; the timeline has one labelled
    band per step and three lines (requests/s, p50, p99) per step, all inside the canvas."""
    histories = []
    for index, (users, rps, p99) in enumerate([(4, 150.0, 70), (8, 300.0, 400)]):
        path = tmp_path / f"step{index + 1}_stats_history.csv"
        path.write_text(HISTORY.format(users=users, rps=rps, p99=p99))
        histories.append(read_history(path))
    assert [len(points) for points in histories] == [2, 2]
    assert histories[1][0].p99_ms == 400 and histories[0][0].requests_per_second == 150.0

    root = ET.fromstring(svg_timeline(histories, Objective(p99_ms=250.0)))
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "step 1: 4 users" in labels and "step 2: 8 users" in labels
    lines = list(root.iter(f"{SVG}polyline"))
    assert len(lines) == 6
    width, height = float(root.get("width", 0)), float(root.get("height", 0))
    for line in lines:
        for pair in (line.get("points") or "").split():
            x, y = (float(v) for v in pair.split(","))
            assert 0 <= x <= width and 0 <= y <= height
