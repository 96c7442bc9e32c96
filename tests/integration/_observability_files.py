"""Reading the shipped monitoring as data: every PromQL expression of the Grafana dashboards
(panel targets and ``label_values`` variable selectors) and of the Prometheus rule files, the
Grafana variables they use, and the series names they select."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DASHBOARD_FILES",
    "RULE_FILES",
    "Expression",
    "dashboard_expressions",
    "metric_names",
    "recording_names",
    "rule_expressions",
    "rule_group_names",
    "substitute",
]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_FILES = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((ROOT / "grafana" / "alerts").glob("*.yml"))


@dataclass(frozen=True)
class Expression:
    """One PromQL expression and where it comes from (for test ids and messages)."""

    where: str
    expr: str
    #: the label a ``label_values(selector, label)`` variable reads, else None
    variable_label: str | None = None
    #: an alerting rule (its result is empty while it does not fire)
    alert: bool = False


def _walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _walk(panel.get("panels", []))


_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.*),\s*(?P<label>\w+)\s*\)\s*$")


def dashboard_expressions() -> list[Expression]:
    """Every panel target and every query variable of every dashboard."""
    found: list[Expression] = []
    for path in DASHBOARD_FILES:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in _walk(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if str(target.get("expr", "")).strip():
                    where = f"{path.stem}: {panel.get('title')} / {target.get('refId')}"
                    found.append(Expression(where, str(target["expr"])))
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") != "query":
                continue
            query = variable["query"]
            query = query.get("query", "") if isinstance(query, dict) else str(query)
            where = f"{path.stem}: variable {variable['name']}"
            match = _LABEL_VALUES.match(query)
            if match:
                found.append(Expression(where, match["selector"], match["label"]))
            else:
                found.append(Expression(where, query))
    return found


def _rules() -> Iterator[tuple[Path, str, dict[str, Any]]]:
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                yield path, str(group["name"]), rule


def rule_expressions() -> list[Expression]:
    """Every recording and alerting rule's ``expr``."""
    return [
        Expression(
            f"{path.stem}: {group} / {rule.get('record') or rule.get('alert')}",
            str(rule["expr"]),
            alert="alert" in rule,
        )
        for path, group, rule in _rules()
    ]


def rule_group_names() -> set[str]:
    return {group for _, group, _ in _rules()}


def recording_names() -> set[str]:
    return {str(rule["record"]) for _, _, rule in _rules() if "record" in rule}


#: a Grafana variable reference; names start with a letter or "_" (``$1`` in a
#: label_replace() replacement is PromQL's, not Grafana's)
_VARIABLE = re.compile(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)|\[\[([A-Za-z_]\w*)\]\]")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana variables (``$x``, ``${x}``, ``${x:fmt}``, ``[[x]]``) by ``values``;
    a variable without a value raises ``KeyError`` naming it."""

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise KeyError(f"no test value for Grafana variable ${name}")
        return values[name]

    return _VARIABLE.sub(value, expr)


_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])[a-zA-Z_:][\w:]*+(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
_KEYWORDS |= {"by", "without", "on", "ignoring", "group_left", "group_right"}


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects: strings, label matchers, ranges, grouping
    clauses, function calls, numbers and keywords removed."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "{}", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}
