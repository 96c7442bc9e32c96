"""Observability as code: Prometheus rules, Alertmanager example and Grafana dashboards.

Everything here runs the real tools: ``promtool`` (Debian package ``prometheus``), ``amtool``
(``prometheus-alertmanager``) and the TypeScript compiler against the published
``@grafana/schema`` types (``npm ci --prefix tests/observability/schema``). A missing tool is a
failure, never a skip: CI must install them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from observability.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
ALERTS_DIR = ROOT / "grafana" / "alerts"
RULE_FILES = sorted(ALERTS_DIR.glob("*.yml"))
RULE_TEST_FILES = sorted((ALERTS_DIR / "tests").glob("*.yml"))
DASHBOARDS_DIR = ROOT / "grafana" / "dashboards"
DASHBOARD_FILES = sorted(DASHBOARDS_DIR.glob("*.json"))
ALERTMANAGER_EXAMPLE = ROOT / "grafana" / "alertmanager.example.yml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
SCHEMA_DIR = Path(__file__).resolve().parent / "schema"

RUNBOOK_URL_PREFIX = "https://github.com/hookline/hookline/blob/main/docs/runbooks.md#"
SEVERITIES = {"page", "ticket", "info"}
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}

#: plausible values for dashboard variables, so that each expression can be parsed
VARIABLE_VALUES = {
    "job": "hookline",
    "provider": "sendgrid",
    "source": "main",
    "sink": "crm",
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
}
#: series the gateway does not define but may reference
EXTERNAL_SERIES = {"up"}

TOOLS_HINT = (
    "install Debian packages prometheus (promtool) and prometheus-alertmanager (amtool): "
    "apt-get install -y --no-install-recommends prometheus prometheus-alertmanager"
)


# ----------------------------------------------------------------------- helpers ----
def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH; {TOOLS_HINT}")
    return path


def _run(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Rule:
    """One rule of a rule file, alerting or recording."""

    file: Path
    group: str
    body: dict[str, Any]

    @property
    def expr(self) -> str:
        return str(self.body["expr"])


def _rules() -> list[Rule]:
    return [
        Rule(path, group["name"], rule)
        for path in RULE_FILES
        for group in _load_yaml(path)["groups"]
        for rule in group["rules"]
    ]


def _alerts() -> list[Rule]:
    return [rule for rule in _rules() if "alert" in rule.body]


def _recording_names() -> set[str]:
    return {str(rule.body["record"]) for rule in _rules() if "record" in rule.body}


def _alert_names() -> list[str]:
    return [str(rule.body["alert"]) for rule in _alerts()]


def _exported_metric_names() -> set[str]:
    """Every series name the gateway exports: observability/metrics.py plus the defaults."""
    registry = CollectorRegistry()
    Metrics(registry)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    names: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count", "created")}
        else:
            names.add(family.name)
    return names


_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
#: a maximal identifier (possessive) that is not a function call and not part of a number
_IDENTIFIER = re.compile(r"(?<![\w:.])[a-zA-Z_:][\w:]*+(?!\s*\()")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
}


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects (functions, labels and keywords removed)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "{}", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}


def _walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _walk_panels(panel.get("panels", []))


def _data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in _walk_panels(dashboard["panels"]) if p["type"] != "row"]


_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def _variables_in(text: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in _VARIABLE.finditer(text)}


def substitute_variables(expr: str) -> str:
    """Replace Grafana variables by plausible values; an unknown variable raises KeyError."""
    return _VARIABLE.sub(lambda m: VARIABLE_VALUES[next(g for g in m.groups() if g)], expr)


_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.*),\s*(?P<label>\w+)\s*\)\s*$")


def _dashboard_expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every label_values() variable query."""
    found: list[tuple[str, str]] = []
    for panel in _data_panels(dashboard):
        for target in panel.get("targets", []):
            found.append((f"{panel['title']} / {target.get('refId')}", str(target["expr"])))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        match = _LABEL_VALUES.match(query)
        assert match, f"variable {variable['name']}: not a label_values() query: {query}"
        found.append((f"variable {variable['name']}", match["selector"]))
    return found


def _github_anchor(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def _runbook_anchors() -> set[str]:
    text = RUNBOOKS.read_text(encoding="utf-8")
    return {_github_anchor(m) for m in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, re.MULTILINE)}


def _write_rule_file(path: Path, exprs: list[tuple[str, str]]) -> None:
    rules = [
        {"record": f"dashboard:expression_{i}:check", "expr": expr, "labels": {"where": where}}
        for i, (where, expr) in enumerate(exprs)
    ]
    path.write_text(yaml.safe_dump({"groups": [{"name": "exprs", "rules": rules}]}), "utf-8")


# ------------------------------------------------------------------------ inputs ----
def test_observability_files_are_present() -> None:
    """The rule file, its promtool tests, the three dashboards and the runbooks exist."""
    assert [p.name for p in RULE_FILES] == ["hookline.rules.yml", "hookline.slo.rules.yml"]
    assert {p.name for p in RULE_TEST_FILES} >= {
        "availability.test.yml",
        "ingest.test.yml",
        "storage.test.yml",
        "delivery.test.yml",
        "deliverability.test.yml",
        "slo-page.test.yml",
        "slo-ticket.test.yml",
    }
    assert {p.name for p in DASHBOARD_FILES} == {
        "gateway-overview.json",
        "delivery.json",
        "deliverability.json",
        "slo.json",
    }
    assert ALERTMANAGER_EXAMPLE.is_file()
    assert RUNBOOKS.is_file()


# ------------------------------------------------------------------- rule files ----
@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
@pytest.mark.integration  # runs a real tool (promtool, amtool or tsc)
def test_rule_file_passes_promtool_check(rule_file: Path) -> None:
    """`promtool check rules` accepts every rule file (syntax, PromQL, duplicates)."""
    result = _run([_tool("promtool"), "check", "rules", str(rule_file)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("test_file", RULE_TEST_FILES, ids=lambda p: p.name)
@pytest.mark.integration  # runs a real tool (promtool, amtool or tsc)
def test_promtool_unit_tests_pass(test_file: Path) -> None:
    """Every promtool unit test file passes: alerts fire and stay silent as specified."""
    result = _run([_tool("promtool"), "test", "rules", test_file.name], cwd=test_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_load_the_rule_files() -> None:
    """Each promtool test file loads shipped rule files, not copies of its own, and every
    shipped rule file is loaded by some test file."""
    shipped = {p.resolve() for p in RULE_FILES}
    covered: set[Path] = set()
    for test_file in RULE_TEST_FILES:
        loaded = {(test_file.parent / p).resolve() for p in _load_yaml(test_file)["rule_files"]}
        assert loaded and loaded <= shipped, test_file.name
        covered |= loaded
    assert covered == shipped


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    """Every alert has a promtool case where it fires and one where it stays silent."""
    fires: set[str] = set()
    silent: set[str] = set()
    for test_file in RULE_TEST_FILES:
        for case in _load_yaml(test_file)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = set(_alert_names())
    assert alerts - fires == set(), "alerts never tested firing"
    assert alerts - silent == set(), "alerts never tested silent"
    assert (fires | silent) - alerts == set(), "tests for alerts that do not exist"


def test_rules_cover_the_required_alerts() -> None:
    """The alert set the gateway's operators rely on is all there, each name once."""
    names = _alert_names()
    assert len(names) == len(set(names))
    assert set(names) >= {
        "HookLineHighBounceRate",
        "HookLineHighComplaintRate",
        "HookLineWebhook4xxRatioHigh",
        "HookLineWebhook5xxRatioHigh",
        "HookLineSignatureFailureSpike",
        "HookLineIngestLatencyP99High",
        "HookLineStorageBreakerOpen",
        "HookLineSinkBreakerOpen",
        "HookLineDLQGrowing",
        "HookLineOutboxLagHigh",
        "HookLineSpoolNotDraining",
        "HookLineNoEventsFromProvider",
        "HookLineGatewayDown",
        "HookLineSpamRateAtMailboxLimit",
        "HookLineSpamRateOverMailboxTarget",
        "HookLineSESBounceRateAtReview",
        "HookLineSESComplaintRateAtReview",
    }


@pytest.mark.parametrize("alert", _alerts(), ids=lambda r: str(r.body["alert"]))
def test_alert_has_severity_summary_description_and_runbook(alert: Rule) -> None:
    """Each alert has a known severity, a summary, a description and a live runbook anchor."""
    assert alert.body["labels"]["severity"] in SEVERITIES
    annotations = alert.body["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    url = annotations["runbook_url"]
    assert url.startswith(RUNBOOK_URL_PREFIX), url
    anchor = url.removeprefix(RUNBOOK_URL_PREFIX)
    assert anchor == _github_anchor(str(alert.body["alert"]))
    assert anchor in _runbook_anchors(), f"docs/runbooks.md has no section #{anchor}"


def test_runbooks_have_no_section_for_a_missing_alert_and_no_dead_links() -> None:
    """Every alert-named runbook section belongs to an alert; in-page links resolve."""
    text = RUNBOOKS.read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (HookLine\w+)\s*$", text, re.MULTILINE))
    assert sections == set(_alert_names())
    anchors = _runbook_anchors()
    for link in re.findall(r"\]\(#([^)]+)\)", text):
        assert link in anchors, f"dead link #{link}"


def test_runbook_panel_references_exist() -> None:
    """Every *Dashboard → Panel* the runbooks point to is a panel of that dashboard."""
    titles = {
        _load_json(p)["title"].removeprefix("Hookline / "): {
            panel["title"] for panel in _walk_panels(_load_json(p)["panels"])
        }
        for p in DASHBOARD_FILES
    }
    text = RUNBOOKS.read_text(encoding="utf-8")
    references = re.findall(r"\*(Gateway overview|Delivery|Deliverability|SLOs) → ([^*]+)\*", text)
    assert len(references) > 20
    for dashboard, panel in references:
        assert " ".join(panel.split()) in titles[dashboard], f"{dashboard} → {panel}"


def test_recording_rule_names_follow_the_convention() -> None:
    """Recording rules are named level:metric:operations, start with hookline:, once each
    per label set (the SLO rules share names and differ by their `slo` label)."""
    keyed = [
        (str(r.body["record"]), tuple(sorted(r.body.get("labels", {}).items())))
        for r in _rules()
        if "record" in r.body
    ]
    assert len(keyed) == len(set(keyed))
    for name, _ in keyed:
        assert re.fullmatch(r"hookline:[a-z0-9_]+:[a-z0-9_]+", name), name


def test_rule_expressions_only_use_exported_metrics() -> None:
    """Every series a rule selects is exported by metrics.py, recorded, or `up`."""
    known = _exported_metric_names() | _recording_names() | EXTERNAL_SERIES
    unknown = {
        (str(rule.body.get("alert") or rule.body.get("record")), name)
        for rule in _rules()
        for name in metric_names(rule.expr)
        if name not in known
    }
    assert unknown == set()


def test_metric_name_extraction_finds_series_and_skips_the_rest() -> None:
    """The PromQL name scanner keeps selectors and drops functions, labels and keywords."""
    expr = (
        'sum by (provider, le) (rate(hookline_webhook_requests_total{outcome=~"a|b"}[5m]'
        " offset 1h)) / on (job) group_left (x) hookline:bounce:ratio_rate1h > bool 1e3"
        ' and label_replace(up, "sink", "$1", "breaker", "sink:(.+)") unless vector(0)'
    )
    assert metric_names(expr) == {
        "hookline_webhook_requests_total",
        "hookline:bounce:ratio_rate1h",
        "up",
    }


# ----------------------------------------------------------------- alertmanager ----
@pytest.mark.integration  # runs a real tool (promtool, amtool or tsc)
def test_alertmanager_example_passes_amtool() -> None:
    """`amtool check-config` accepts the example Alertmanager configuration."""
    result = _run([_tool("amtool"), "check-config", str(ALERTMANAGER_EXAMPLE)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=page", "alertname=HookLineStorageBreakerOpen"], "pager"),
        (["severity=ticket", "alertname=HookLineDLQGrowing"], "ticket"),
        (["severity=page", "alertname=HookLineSLOIngestAvailabilityPage"], "pager"),
        (["severity=ticket", "alertname=HookLineSLODeliveryTicket", "sink=crm"], "ticket"),
        (["severity=info"], "default"),
        (["alertname=SomethingElse"], "default"),
    ],
)
@pytest.mark.integration  # runs a real tool (promtool, amtool or tsc)
def test_alertmanager_example_routes_by_severity(labels: list[str], receiver: str) -> None:
    """amtool's route test sends pages to the pager and tickets to the ticket webhook."""
    result = _run(
        [
            _tool("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_EXAMPLE}",
            *labels,
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == [receiver]


def test_every_alert_severity_has_a_route() -> None:
    """Each severity an alert uses is matched by a route of the example."""
    routes = _load_yaml(ALERTMANAGER_EXAMPLE)["route"]["routes"]
    routed = {m.split("=", 1)[1].strip('"') for r in routes for m in r["matchers"]}
    used = {str(alert.body["labels"]["severity"]) for alert in _alerts()}
    assert used <= routed


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    match = re.fullmatch(r'(\w+)\s*(=~|!~|!=|=)\s*"(.*)"', matcher)
    assert match, matcher
    name, op, value = match.groups()
    actual = labels.get(name, "")
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    found = re.fullmatch(value, actual) is not None
    return found if op == "=~" else not found


def test_gateway_down_inhibits_every_other_alert() -> None:
    """In the example, HookLineGatewayDown inhibits every other Hookline alert."""
    inhibit_rules = _load_yaml(ALERTMANAGER_EXAMPLE)["inhibit_rules"]
    down = {"alertname": "HookLineGatewayDown"}
    gateway_rules = [
        rule for rule in inhibit_rules if all(_matches(m, down) for m in rule["source_matchers"])
    ]
    assert gateway_rules, "no inhibit rule sourced by HookLineGatewayDown"
    for name in _alert_names():
        inhibited = any(
            all(_matches(m, {"alertname": name}) for m in rule["target_matchers"])
            for rule in gateway_rules
        )
        assert inhibited == (name != "HookLineGatewayDown"), name


def test_an_slo_page_inhibits_the_same_slos_ticket_only() -> None:
    """Each generated SLO page alert inhibits its own SLO's ticket (equal on slo), and no
    ticket inhibits a page."""
    inhibit_rules = _load_yaml(ALERTMANAGER_EXAMPLE)["inhibit_rules"]
    names = set(_alert_names())
    pages = sorted(n for n in names if n.startswith("HookLineSLO") and n.endswith("Page"))
    assert len(pages) >= 4
    for page in pages:
        ticket = page.removesuffix("Page") + "Ticket"
        assert ticket in names
        rules = [
            r
            for r in inhibit_rules
            if all(_matches(m, {"alertname": page}) for m in r["source_matchers"])
            and all(_matches(m, {"alertname": ticket}) for m in r["target_matchers"])
        ]
        assert rules and all("slo" in r["equal"] for r in rules), page
        assert not any(
            all(_matches(m, {"alertname": ticket}) for m in r["source_matchers"])
            and all(_matches(m, {"alertname": page}) for m in r["target_matchers"])
            for r in inhibit_rules
        )


# -------------------------------------------------------------------- dashboards ----
@pytest.mark.integration  # runs a real tool (promtool, amtool or tsc)
def test_promtool_rejects_a_broken_dashboard_expression(tmp_path: Path) -> None:
    """The expression check is real: promtool refuses an expression that does not parse."""
    rule_file = tmp_path / "broken.rules.yml"
    _write_rule_file(rule_file, [("broken", "sum by (provider (rate(x[5m]))")])
    result = _run([_tool("promtool"), "check", "rules", str(rule_file)])
    assert result.returncode != 0


@pytest.mark.parametrize("dashboard_file", DASHBOARD_FILES, ids=lambda p: p.name)
@pytest.mark.integration  # runs a real tool (promtool, amtool or tsc)
def test_dashboard_expressions_parse_with_promtool(dashboard_file: Path, tmp_path: Path) -> None:
    """Every panel query and variable selector parses as PromQL once variables are set."""
    exprs = [
        (where, substitute_variables(expr))
        for where, expr in _dashboard_expressions(_load_json(dashboard_file))
    ]
    assert exprs
    rule_file = tmp_path / "dashboard.rules.yml"
    _write_rule_file(rule_file, exprs)
    result = _run([_tool("promtool"), "check", "rules", str(rule_file)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


@pytest.mark.parametrize("dashboard_file", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_expressions_only_use_exported_or_recorded_metrics(dashboard_file: Path) -> None:
    """Every series a dashboard queries exists in metrics.py or the recording rules."""
    known = _exported_metric_names() | _recording_names() | EXTERNAL_SERIES
    exprs = _dashboard_expressions(_load_json(dashboard_file))
    unknown = {
        (where, name)
        for where, expr in exprs
        for name in metric_names(substitute_variables(expr))
        if name not in known
    }
    assert unknown == set()
    recorded = {n for _, e in exprs for n in metric_names(e) if n in _recording_names()}
    assert recorded, "the dashboard should reuse the recording rules"


def _overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


@pytest.mark.parametrize("dashboard_file", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_structure(dashboard_file: Path) -> None:
    """uid, title, schema version, unique ids, layout, descriptions, datasource variable."""
    dashboard = _load_json(dashboard_file)
    assert re.fullmatch(r"hookline-[a-z-]+", dashboard["uid"])
    assert len(dashboard["uid"]) <= 40
    assert dashboard["title"].startswith("Hookline / ")
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["description"].strip()
    assert "hookline" in dashboard["tags"]

    panels = list(_walk_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        pos = panel["gridPos"]
        assert all(isinstance(pos[k], int) for k in ("x", "y", "w", "h")), panel["title"]
        assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
    for i, a in enumerate(panels):
        for b in panels[i + 1 :]:
            assert not _overlaps(a["gridPos"], b["gridPos"]), (a["title"], b["title"])

    for panel in _data_panels(dashboard):
        assert panel.get("title", "").strip(), panel["id"]
        assert panel.get("description", "").strip(), f"{panel['title']}: no description"
        assert panel["datasource"] == DATASOURCE_REF, panel["title"]
        targets = panel.get("targets", [])
        assert targets, f"{panel['title']}: no targets"
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in targets:
            assert str(target.get("expr", "")).strip(), f"{panel['title']}: target without expr"
            assert target.get("datasource", DATASOURCE_REF) == DATASOURCE_REF, panel["title"]


EXPECTED_VARIABLES = {
    "gateway-overview.json": {"datasource", "job", "provider", "source"},
    "delivery.json": {"datasource", "job", "sink"},
    "deliverability.json": {"datasource", "job", "provider", "source"},
    "slo.json": {"datasource", "job"},
}


@pytest.mark.parametrize("dashboard_file", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboard_variables(dashboard_file: Path) -> None:
    """The datasource is a Prometheus variable; every variable defined is used, and back."""
    dashboard = _load_json(dashboard_file)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == EXPECTED_VARIABLES[dashboard_file.name]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE_REF, variable["name"]
    used: set[str] = set()
    for _, expr in _dashboard_expressions(dashboard):
        used |= _variables_in(expr)
    builtins = {name for name in used if name.startswith("__")}
    assert used - builtins <= set(variables), "expression uses an undefined variable"
    assert set(variables) - {"datasource"} <= used, "variable defined but never used"
    # the description says how the dashboard treats configured sources
    assert "source" in dashboard["description"]
    if "source" in variables:  # the ingest series carry source: no stale "there is none"
        assert "not the source name" not in dashboard["description"]
        assert 'provider=~"$provider"' in variables["source"]["query"]


def _threshold_values(panel: dict[str, Any]) -> set[float]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return {float(step["value"]) for step in steps if step["value"] is not None}


@pytest.mark.parametrize(
    ("series", "threshold"),
    [("hookline:bounce:ratio_rate1h", 0.02), ("hookline:complaint:ratio_rate1h", 0.001)],
)
def test_deliverability_draws_bounce_and_complaint_thresholds(
    series: str, threshold: float
) -> None:
    """The bounce (2%) and complaint (0.1%) thresholds are drawn as lines on their panels."""
    dashboard = _load_json(DASHBOARDS_DIR / "deliverability.json")
    panels = [
        p
        for p in _data_panels(dashboard)
        if p["type"] == "timeseries" and any(series in t["expr"] for t in p["targets"])
    ]
    assert panels, f"no time series panel shows {series}"
    for panel in panels:
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["unit"] == "percentunit"
        assert defaults["custom"]["thresholdsStyle"]["mode"] in {"line", "line+area", "dashed"}
        assert threshold in _threshold_values(panel)


def test_dashboard_thresholds_match_the_alerts() -> None:
    """The deliverability lines sit where the bounce and complaint alerts fire."""
    exprs = {str(a.body["alert"]): a.expr for a in _alerts()}
    assert "hookline:bounce:ratio_rate1h > 0.02" in exprs["HookLineHighBounceRate"]
    assert "hookline:complaint:ratio_rate1h > 0.001" in exprs["HookLineHighComplaintRate"]


# ----------------------------------------------------------- grafana schema (tsc) ----
def _tsc() -> Path:
    tsc = SCHEMA_DIR / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        pytest.fail(
            "the Grafana schema checker is not installed: run "
            "`npm ci --prefix tests/observability/schema`"
        )
    _tool("node")
    return tsc


def _typecheck(
    dashboards: dict[str, dict[str, Any]], workdir: Path
) -> subprocess.CompletedProcess[str]:
    """Type-check each dashboard, as a literal, against @grafana/schema's Dashboard."""
    files = []
    for name, dashboard in dashboards.items():
        source = workdir / f"{name}.ts"
        source.write_text(
            'import type { Dashboard } from "@grafana/schema";\n'
            f'import type {{ Jsonify }} from "{SCHEMA_DIR / "jsonify"}";\n'
            f"const dashboard: Jsonify<Dashboard> = {json.dumps(dashboard, indent=1)};\n"
            "export default dashboard;\n",
            encoding="utf-8",
        )
        files.append(source.name)
    tsconfig = {"extends": str(SCHEMA_DIR / "tsconfig.json"), "files": files}
    (workdir / "tsconfig.json").write_text(json.dumps(tsconfig), encoding="utf-8")
    return _run([str(_tsc()), "-p", str(workdir / "tsconfig.json")], cwd=workdir)


@pytest.mark.integration  # runs a real tool (promtool, amtool or tsc)
def test_dashboards_match_the_published_grafana_schema(tmp_path: Path) -> None:
    """Every dashboard type-checks as @grafana/schema's Dashboard (no unknown fields)."""
    dashboards = {p.stem: _load_json(p) for p in DASHBOARD_FILES}
    result = _typecheck(dashboards, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration  # runs a real tool (promtool, amtool or tsc)
def test_schema_check_rejects_unknown_fields_and_wrong_values(tmp_path: Path) -> None:
    """The schema check is real: a misspelled panel field and a bad enum value fail it."""
    misspelled = _load_json(DASHBOARDS_DIR / "gateway-overview.json")
    panel = _data_panels(misspelled)[0]
    panel["descripton"] = panel.pop("description")
    bad_enum = _load_json(DASHBOARDS_DIR / "gateway-overview.json")
    _data_panels(bad_enum)[0]["fieldConfig"]["defaults"]["color"]["mode"] = "rainbow"
    result = _typecheck({"misspelled": misspelled, "bad_enum": bad_enum}, tmp_path)
    assert result.returncode != 0
    assert re.search(r"misspelled\.ts.*'\"descripton\"' does not exist", result.stdout)
    assert re.search(r"bad_enum\.ts.*'\"rainbow\"' is not assignable", result.stdout)
