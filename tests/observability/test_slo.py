"""SLOs as code: grafana/slo/slos.yml and what scripts/slo_rules.py generates from it.

The promtool tests that fire each burn-rate alert and keep it silent are generated too, and
run with the other rule tests in test_rules.py; here: the generated files are current, the
windows are the SRE workbook's, and the spec is checked.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("slo_rules", ROOT / "scripts" / "slo_rules.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["slo_rules"] = module
    spec.loader.exec_module(module)
    return module


slo_rules = _generator()


def test_generated_files_are_current() -> None:
    """The rules, promtool tests and dashboard in the repository are what the spec gives:
    `scripts/slo_rules.py --check` fails when someone edits one without the other."""
    result = subprocess.run(
        [sys.executable, "scripts/slo_rules.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_check_reports_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--check is real: a generated file that differs from the spec's output is reported."""
    stale = tmp_path / "hookline.slo.rules.yml"
    stale.write_text("groups: []\n", encoding="utf-8")
    monkeypatch.setattr(slo_rules, "ROOT", tmp_path)
    original = slo_rules.generated
    monkeypatch.setattr(slo_rules, "generated", lambda: {stale: next(iter(original().values()))})
    assert slo_rules.main(["--check"]) == 1
    assert stale.read_text(encoding="utf-8") == "groups: []\n"


def test_burn_windows_are_the_sre_workbooks() -> None:
    """Page: 1h/5m at 14.4x and 6h/30m at 6x; ticket: 1d/2h at 3x and 3d/6h at 1x."""
    assert slo_rules.BURN_WINDOWS == {
        "page": (("1h", "5m", 14.4), ("6h", "30m", 6.0)),
        "ticket": (("1d", "2h", 3.0), ("3d", "6h", 1.0)),
    }


def test_the_spec_defines_the_four_slos_with_their_objectives() -> None:
    """Ingest availability and latency, storage freshness and delivery, each with an
    objective below 100% and one page and one ticket alert."""
    window, slos = slo_rules.load()
    assert window == "30d"
    assert {s.name: s.objective for s in slos} == {
        "ingest_availability": 99.9,
        "ingest_latency": 99.0,
        "storage_freshness": 99.9,
        "delivery": 99.0,
    }
    alerts = [
        rule["alert"]
        for group in slo_rules.rules(window, slos)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert len(alerts) == 2 * len(slos) == len(set(alerts))


def test_every_alert_window_has_a_recorded_burn_rate() -> None:
    """Each window an alert reads is recorded for every SLO, and the error budget too."""
    window, slos = slo_rules.load()
    records = {
        (rule["record"], rule["labels"]["slo"])
        for group in slo_rules.rules(window, slos)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    for slo in slos:
        for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
            assert (f"hookline:slo_burn_rate:rate{w}", slo.name) in records
        assert ("hookline:slo_error_budget:remaining_ratio", slo.name) in records


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"objective": 100}, "objective"),
        ({"sli": {"total": "x", "bad": "y", "good": "z"}}, "exactly one"),
        ({"test_series": [{"series": "x", "counts": "most"}]}, "counts"),
    ],
)
def test_a_malformed_spec_is_refused(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    """Objectives must be below 100%, an SLI gives bad or good (not both), and test series
    say what they count."""
    doc = yaml.safe_load((ROOT / "grafana" / "slo" / "slos.yml").read_text(encoding="utf-8"))
    doc["slos"][0].update(change)
    spec = tmp_path / "slos.yml"
    spec.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        slo_rules.load(spec)


def test_windows_convert_to_minutes() -> None:
    """5m, 6h and 3d in minutes; anything else is refused."""
    assert [slo_rules.minutes(w) for w in ("5m", "6h", "3d")] == [5, 360, 4320]
    with pytest.raises(ValueError):
        slo_rules.minutes("1w")
