"""SLOs as code: grafana/slo/slos.yml -> Prometheus rules and their promtool tests.

    python scripts/slo_rules.py          # write the generated files
    python scripts/slo_rules.py --check  # exit 1 when a generated file is stale

From each SLO it generates recording rules for the error ratio and the burn rate over every
window the alerts read, the error budget left over the SLO window, and two multi-window,
multi-burn-rate alerts as in the Google SRE workbook (chapter "Alerting on SLOs"):

- page:   1 h and 5 m above 14.4x the budget rate, or 6 h and 30 m above 6x
- ticket: 1 d and 2 h above 3x, or 3 d and 6 h above 1x

It also generates the promtool unit tests that fire each alert and keep it silent at a burn
just below each of its thresholds, so a change of window, factor or expression that breaks
the arithmetic fails `make test`. docs/slos.md documents the format.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "grafana" / "slo" / "slos.yml"
RULES = ROOT / "grafana" / "alerts" / "hookline.slo.rules.yml"
PAGE_TESTS = ROOT / "grafana" / "alerts" / "tests" / "slo-page.test.yml"
TICKET_TESTS = ROOT / "grafana" / "alerts" / "tests" / "slo-ticket.test.yml"
DASHBOARD = ROOT / "grafana" / "dashboards" / "slo.json"
RUNBOOK_URL = "https://github.com/hookline/hookline/blob/main/docs/runbooks.md#"

#: (long window, short window, burn-rate factor) per severity, from the SRE workbook
BURN_WINDOWS: dict[str, tuple[tuple[str, str, float], ...]] = {
    "page": (("1h", "5m", 14.4), ("6h", "30m", 6.0)),
    "ticket": (("1d", "2h", 3.0), ("3d", "6h", 1.0)),
}
#: how long each alert's condition must hold before it notifies
ALERT_FOR = {"page": "2m", "ticket": "15m"}
#: the labels every test series carries (one installation: a namespace and a job)
TEST_LABELS = {"namespace": "mail", "job": "hookline"}
#: how far below / above a threshold the silent / firing test burns
BELOW, ABOVE = 0.95, 1.05

_MINUTES = {"m": 1, "h": 60, "d": 24 * 60}
_COUNTS = ("good", "bad", "total", "zero")


def minutes(window: str) -> int:
    """A Prometheus duration such as 5m, 6h or 3d in minutes."""
    match = re.fullmatch(r"(\d+)([mhd])", window)
    if match is None:
        raise ValueError(f"unsupported window {window!r} (use m, h or d)")
    return int(match[1]) * _MINUTES[match[2]]


@dataclass(frozen=True)
class TestSeries:
    series: str
    counts: str


@dataclass(frozen=True)
class SLO:
    name: str
    title: str
    objective: float
    description: str
    total: str
    bad: str | None
    good: str | None
    by: tuple[str, ...]
    spent_by: str
    test_series: tuple[TestSeries, ...]

    @property
    def budget(self) -> float:
        """The error budget as a ratio: 0.001 for a 99.9% objective."""
        return round(1 - self.objective / 100, 10)

    @property
    def alert_prefix(self) -> str:
        return "HookLineSLO" + "".join(part.title() for part in self.name.split("_"))

    def error_ratio(self, window: str) -> str:
        total = self.total.replace("{{window}}", window).strip()
        if self.bad is not None:
            bad = self.bad.replace("{{window}}", window).strip()
            return f"({bad})\n/\n({total})"
        assert self.good is not None
        good = self.good.replace("{{window}}", window).strip()
        return f"1 - (\n  ({good})\n  /\n  ({total})\n)"


def load(path: Path = SPEC) -> tuple[str, list[SLO]]:
    """The SLO window and the SLOs of a spec file, checked."""
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    window = str(doc["window"])
    minutes(window)
    slos = []
    for item in doc["slos"]:
        sli = item["sli"]
        if ("bad" in sli) == ("good" in sli):
            raise ValueError(f"{item['name']}: give exactly one of sli.bad and sli.good")
        objective = float(item["objective"])
        if not 0 < objective < 100:
            raise ValueError(f"{item['name']}: objective must be a percentage below 100")
        series = tuple(TestSeries(str(s["series"]), str(s["counts"])) for s in item["test_series"])
        for s in series:
            if s.counts not in _COUNTS:
                raise ValueError(f"{item['name']}: test series counts one of {_COUNTS}")
        slos.append(
            SLO(
                name=str(item["name"]),
                title=str(item["title"]),
                objective=objective,
                description=" ".join(str(item["description"]).split()),
                total=str(sli["total"]),
                bad=str(sli["bad"]) if "bad" in sli else None,
                good=str(sli["good"]) if "good" in sli else None,
                by=tuple(item.get("by", ())),
                spent_by=" ".join(str(item["spent_by"]).split()),
                test_series=series,
            )
        )
    if len({slo.name for slo in slos}) != len(slos):
        raise ValueError("SLO names must be unique")
    return window, slos


def alert_windows() -> list[str]:
    """Every window an alert reads, shortest first."""
    found = {w for pairs in BURN_WINDOWS.values() for pair in pairs for w in pair[:2]}
    return sorted(found, key=minutes)


# ------------------------------------------------------------------------ rules ----
def _alert(slo: SLO, severity: str) -> dict[str, Any]:
    conditions = [
        f'(\n  hookline:slo_burn_rate:rate{long}{{slo="{slo.name}"}} > {factor:g}\n'
        f'  and\n  hookline:slo_burn_rate:rate{short}{{slo="{slo.name}"}} > {factor:g}\n)'
        for long, short, factor in BURN_WINDOWS[severity]
    ]
    name = f"{slo.alert_prefix}{severity.title()}"
    windows = " or ".join(
        f"{long} and {short} above {factor:g}x" for long, short, factor in BURN_WINDOWS[severity]
    )
    scope = "{{ $labels.namespace }}/{{ $labels.job }}" + "".join(
        f" {label} {{{{ $labels.{label} }}}}" for label in slo.by
    )
    speed = "fast" if severity == "page" else "steadily"
    return {
        "alert": name,
        "expr": "\nor\n".join(conditions) + "\n",
        "for": ALERT_FOR[severity],
        "labels": {"severity": severity, "slo": slo.name},
        "annotations": {
            "summary": f"{slo.title} SLO error budget burning {speed} ({scope})",
            "description": (
                f"{slo.title} ({slo.objective:g}% over the SLO window) is spending its error "
                f"budget too fast: burn rate {windows}. {slo.description}"
            ),
            "runbook_url": RUNBOOK_URL + name.lower(),
        },
    }


def rules(window: str, slos: list[SLO]) -> dict[str, Any]:
    """The rule file: recording rules, then the alerts."""
    recording: list[dict[str, Any]] = []
    alerting: list[dict[str, Any]] = []
    for slo in slos:
        labels = {"slo": slo.name}
        for w in [*alert_windows(), window]:
            recording.append(
                {
                    "record": f"hookline:slo_errors:ratio_rate{w}",
                    "expr": slo.error_ratio(w) + "\n",
                    "labels": labels,
                }
            )
        for w in alert_windows():
            recording.append(
                {
                    "record": f"hookline:slo_burn_rate:rate{w}",
                    "expr": f'hookline:slo_errors:ratio_rate{w}{{slo="{slo.name}"}}'
                    f" / {slo.budget:g}",
                    "labels": labels,
                }
            )
        recording.append(
            {
                "record": "hookline:slo_error_budget:remaining_ratio",
                "expr": f'1 - hookline:slo_errors:ratio_rate{window}{{slo="{slo.name}"}}'
                f" / {slo.budget:g}",
                "labels": labels,
            }
        )
        alerting += [_alert(slo, severity) for severity in BURN_WINDOWS]
    return {
        "groups": [
            {"name": "hookline.slo.recording", "rules": recording},
            {"name": "hookline.slo", "rules": alerting},
        ]
    }


# ------------------------------------------------------------------------ tests ----
def _series(text: str, extra: dict[str, str]) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in {**extra, **TEST_LABELS}.items())
    if "{" in text:
        name, _, rest = text.partition("{")
        return f"{name}{{{rest.rstrip('}')},{labels}}}"
    return f"{text}{{{labels}}}"


def _values(segments: list[tuple[float, int]]) -> str:
    """promtool's expanding notation for a counter that grows by ``inc`` per interval for
    ``n`` intervals, segment after segment, starting at 0."""
    parts, value, first = [], 0.0, True
    for inc, n in segments:
        if first:
            parts.append(f"0+{inc:g}x{n}")
            value = inc * n
            first = False
        else:
            start = value + inc
            parts.append(f"{start:g}+{inc:g}x{n - 1}")
            value = start + inc * (n - 1)
    return " ".join(parts)


def _input_series(
    slo: SLO, phases: list[tuple[float, int]], per_interval: float
) -> list[dict[str, str]]:
    """Series for ``phases`` of (burn rate, intervals): ``per_interval`` events each interval,
    of which burn x budget are bad."""
    sink = {label: "crm" for label in slo.by}
    out = []
    for s in slo.test_series:
        segments = []
        for burn, n in phases:
            bad = burn * slo.budget * per_interval
            inc = {"good": per_interval - bad, "bad": bad, "total": per_interval, "zero": 0.0}
            segments.append((round(inc[s.counts], 6), n))
        out.append({"series": _series(s.series, sink), "values": _values(segments)})
    return out


def _expected(slo: SLO, severity: str) -> list[dict[str, Any]]:
    alert = _alert(slo, severity)
    labels = {**TEST_LABELS, **{label: "crm" for label in slo.by}}
    annotations = {}
    for key, text in alert["annotations"].items():
        for label, value in labels.items():
            text = text.replace(f"{{{{ $labels.{label} }}}}", value)
        annotations[key] = text
    return [
        {
            "exp_labels": {**alert["labels"], **labels},
            "exp_annotations": annotations,
        }
    ]


def _scenarios(severity: str, interval: int) -> list[tuple[str, list[tuple[float, int]], bool]]:
    """Per window pair: a burn just above its factor fires, just below stays silent. The
    pair with the shorter long window is tested after a clean history as long as the other
    pair's long window, so that the other pair cannot be what fires or stays silent.
    Returns (name, phases of (burn rate, intervals), fires)."""
    (fast_long, _, fast), (slow_long, _, slow) = BURN_WINDOWS[severity]
    clean = minutes(slow_long) // interval
    # each burn lasts its long window, plus the alert's `for:` and two steps
    hold = minutes(ALERT_FOR[severity])
    burn_steps = (minutes(fast_long) + hold) // interval + 2
    steady = (minutes(slow_long) + hold) // interval + 2
    found = []
    for factor, fires in ((ABOVE, True), (BELOW, False)):
        found.append(
            (
                f"{fast * factor:g}x for {fast_long} after {slow_long} clean",
                [(0.0, clean), (fast * factor, burn_steps)],
                fires,
            )
        )
        steady_name = f"a steady {slow * factor:g}x for {slow_long}"
        found.append((steady_name, [(slow * factor, steady)], fires))
    return found


def tests(severity: str, slos: list[SLO], interval: int) -> dict[str, Any]:
    """One promtool case per scenario; each carries every SLO's series (they are disjoint)
    and checks every SLO's alert, which keeps promtool's run short."""
    cases = []
    for name, phases, fires in _scenarios(severity, interval):
        total_minutes = sum(n for _, n in phases) * interval
        cases.append(
            {
                "name": f"{severity}: {name} -> {'fires' if fires else 'silent'}",
                "interval": f"{interval}m",
                "input_series": [s for slo in slos for s in _input_series(slo, phases, 1000.0)],
                "alert_rule_test": [
                    {
                        "eval_time": f"{total_minutes}m",
                        "alertname": f"{slo.alert_prefix}{severity.title()}",
                        "exp_alerts": _expected(slo, severity) if fires else [],
                    }
                    for slo in slos
                ],
            }
        )
    return {
        "rule_files": [f"../{RULES.name}"],
        "evaluation_interval": f"{interval}m",
        "group_eval_order": ["hookline.slo.recording", "hookline.slo"],
        "tests": cases,
    }


# -------------------------------------------------------------------- dashboard ----
_DS = {"type": "prometheus", "uid": "${datasource}"}


def _target(ref: str, expr: str, legend: str) -> dict[str, Any]:
    return {
        "refId": ref,
        "datasource": _DS,
        "expr": expr,
        "legendFormat": legend,
        "range": True,
        "editorMode": "code",
    }


def _panel(kind: str, title: str, description: str, unit: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": _DS,
        "fieldConfig": {"defaults": {"unit": unit, **extra.pop("defaults", {})}, "overrides": []},
        "options": extra.pop("options", {}),
        **extra,
    }


def _slo_panels(slo: SLO, window: str, y: int, first_id: int) -> list[dict[str, Any]]:
    sel = f'slo="{slo.name}", job=~"$job"'
    factors = sorted({f for pairs in BURN_WINDOWS.values() for _, _, f in pairs}, reverse=True)
    budget = _panel(
        "stat",
        f"{slo.title}: error budget left ({window})",
        f"{slo.objective:g}% objective: the share of the {window} error budget not spent yet "
        f"(1 = untouched, 0 = spent, below 0 = overspent). {slo.description}",
        "percentunit",
        defaults={
            "color": {"mode": "thresholds"},
            "decimals": 1,
            "thresholds": {
                "mode": "absolute",
                "steps": [
                    {"color": "red", "value": None},
                    {"color": "orange", "value": 0.25},
                    {"color": "green", "value": 0.5},
                ],
            },
        },
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "area",
            "justifyMode": "auto",
            "textMode": "auto",
            "orientation": "auto",
        },
        targets=[
            _target(
                "A",
                f"min by (job, {', '.join(slo.by) or 'namespace'}) "
                f"(hookline:slo_error_budget:remaining_ratio{{{sel}}})",
                "{{job}}" + "".join(f" {{{{{label}}}}}" for label in slo.by),
            )
        ],
        gridPos={"h": 7, "w": 6, "x": 0, "y": y},
    )
    burn = _panel(
        "timeseries",
        f"{slo.title}: burn rate",
        "How fast the error budget burns, per alert window (1 = exactly the budget over the "
        "SLO window). Lines: the page thresholds 14.4x (1h and 5m) and 6x (6h and 30m), the "
        "ticket thresholds 3x (1d and 2h) and 1x (3d and 6h).",
        "short",
        defaults={
            "custom": {"thresholdsStyle": {"mode": "line"}},
            "color": {"mode": "palette-classic"},
            "thresholds": {
                "mode": "absolute",
                "steps": [{"color": "green", "value": None}]
                + [{"color": "red", "value": f} for f in factors],
            },
        },
        options={"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        targets=[
            _target(
                chr(ord("A") + i),
                f"max by (job) (hookline:slo_burn_rate:rate{w}{{{sel}}})",
                f"{{{{job}}}} {w}",
            )
            for i, w in enumerate(alert_windows())
        ],
        gridPos={"h": 7, "w": 9, "x": 6, "y": y},
    )
    spent = _panel(
        "timeseries",
        f"{slo.title}: events that spent budget",
        "Events per second that count against this SLO, broken down where the series allow.",
        "ops",
        defaults={"color": {"mode": "palette-classic"}},
        options={"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        targets=[_target("A", slo.spent_by, "")],
        gridPos={"h": 7, "w": 9, "x": 15, "y": y},
    )
    row = {
        "type": "row",
        "title": slo.title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": y - 1},
    }
    panels = [row, budget, burn, spent]
    for offset, panel in enumerate(panels):
        panel["id"] = first_id + offset
    return panels


def dashboard(window: str, slos: list[SLO]) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    for i, slo in enumerate(slos):
        panels += _slo_panels(slo, window, 1 + i * 8, 1 + i * 4)
    return {
        "id": None,
        "uid": "hookline-slos",
        "title": "Hookline / SLOs",
        "description": (
            "Service-level objectives from grafana/slo/slos.yml (generated by "
            "scripts/slo_rules.py; do not edit here): per SLO, the error budget left over the "
            f"{window} window, the burn rate per alert window, and the events that spent it. "
            "The SLOs aggregate by (namespace, job), so there is no source variable: the "
            "gateway overview and deliverability dashboards break a provider down by source."
        ),
        "tags": ["hookline"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-2d", "to": "now"},
        "timepicker": {},
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "description": "The Prometheus that scrapes Hookline and evaluates its rules.",
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                    "skipUrlSync": False,
                },
                {
                    "name": "job",
                    "label": "Job",
                    "type": "query",
                    "datasource": _DS,
                    "description": "Hookline scrape jobs. Every panel filters on it.",
                    "query": 'label_values(up{job=~".*hookline.*"}, job)',
                    "hide": 0,
                    "includeAll": True,
                    "allValue": ".*hookline.*",
                    "multi": True,
                    "options": [],
                    "refresh": 2,
                    "regex": "",
                    "skipUrlSync": False,
                    "sort": 1,
                },
            ]
        },
        "panels": panels,
    }


# ------------------------------------------------------------------------- files ----
class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (the PromQL), no aliases, keys as written."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def _dump(header: str, doc: dict[str, Any]) -> str:
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    return header + body


_HEADER = (
    "# GENERATED by scripts/slo_rules.py from grafana/slo/slos.yml: do not edit by hand.\n"
    "# Regenerate with `make slo`; the tests fail when this file is stale.\n"
)


def generated() -> dict[Path, str]:
    """Every generated file and the text it should hold."""
    window, slos = load()
    return {
        RULES: _dump(_HEADER, rules(window, slos)),
        # the page windows need minute steps; the ticket windows span days, so 10 minutes
        PAGE_TESTS: _dump(_HEADER, tests("page", slos, 1)),
        TICKET_TESTS: _dump(_HEADER, tests("ticket", slos, 10)),
        DASHBOARD: json.dumps(dashboard(window, slos), indent=2) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generated().items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        if args.check:
            stale.append(path.relative_to(ROOT))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"stale: {', '.join(map(str, stale))}; run `make slo`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
