"""The shipped dashboards and rules, evaluated by a real Prometheus scraping a real gateway.

One gateway (real HTTP, real PostgreSQL, a real downstream sink) takes ~12 s of synthetic
signed traffic (SendGrid batches and SES notifications of several event types, an SNS
subscription confirmation, forged signatures, unknown sources) while the Debian
``prometheus`` server scrapes it every second as ``job="hookline"`` and evaluates
grafana/alerts/*.yml every second. Then every dashboard query and every rule expression is
run through Prometheus's HTTP API: none may fail, dashboards and recording rules must return
data, and every series they name must be one the gateway exports.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.storage.embedded import EmbeddedPostgres
from hookline_testing import samples_for
from tests.integration._http_capture import capture_server
from tests.integration._load import SyntheticLoad, source_config
from tests.integration._observability_files import (
    RULE_FILES,
    Expression,
    dashboard_expressions,
    metric_names,
    recording_names,
    rule_expressions,
    rule_group_names,
    substitute,
)
from tests.integration._prometheus import Service, run_prometheus
from tests.integration.conftest import build_settings, serve

JOB = "hookline"
LOAD_SECONDS = 12.0
#: Grafana's built-in variables, at values that suit a 1 s scrape interval
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "5m",
    "__range_s": "300",
    "__range_ms": "300000",
}
#: the dashboards' variables set to "All" (Grafana's ``.*``) and to one value with data
ALL_VALUES = {**BUILTINS, "job": JOB, "provider": ".*", "source": ".*", "sink": ".*"}
ONE_VALUES = {**BUILTINS, "job": JOB, "provider": "sendgrid", "source": "main", "sink": "crm"}
#: what a label_values() variable must offer once the gateway has been scraped
EXPECTED_VARIABLE_VALUES = {"job": JOB, "provider": "sendgrid", "source": "main", "sink": "crm"}
#: series Prometheus itself makes for every target
PROMETHEUS_SERIES = {"up"}

DASHBOARD_EXPRESSIONS = dashboard_expressions()
RULE_EXPRESSIONS = rule_expressions()


@dataclass
class Scraped:
    """A Prometheus that has scraped a loaded gateway, and what the gateway exposed."""

    prometheus: Service
    exposition_names: set[str]
    statuses: Counter[int]
    requests_sent: int


async def _create_database(server: EmbeddedPostgres, template: str) -> str:
    name = "t_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()
    return server.url().rsplit("/", 1)[0] + "/" + name


async def _drop_database(server: EmbeddedPostgres, url: str) -> None:
    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


async def _scalar(prometheus: Service, expr: str) -> float | None:
    answer = await prometheus.query(expr)
    assert answer["status"] == "success", answer
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def _wait_until_scraped(prometheus: Service, requests_sent: int) -> None:
    """Until Prometheus holds every request the load sent, then two rule evaluations more."""
    deadline = time.monotonic() + 20
    expr = f'sum(hookline_webhook_requests_total{{job="{JOB}"}})'
    while await _scalar(prometheus, expr) != requests_sent:
        assert time.monotonic() < deadline, "Prometheus never scraped the final counts"
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.5)


@pytest.fixture(scope="module")
async def scraped(
    pg_server: EmbeddedPostgres, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Scraped]:
    """Gateway + sink + Prometheus, loaded for LOAD_SECONDS; all stopped at module end."""
    workdir: Path = tmp_path_factory.mktemp("prometheus-scrape")
    db_url = await _create_database(pg_server, template_db)
    sendgrid_source = samples_for("sendgrid").make_source("main")
    ses_source = samples_for("ses").make_source("main")
    try:
        with capture_server() as sink:
            settings = build_settings(
                db_url,
                workdir,
                sources=[source_config(sendgrid_source[0]), source_config(ses_source[0])],
                sinks=[{"name": "crm", "url": f"{sink.url}/hook", "max_attempts": 3}],
            )
            async with serve(settings) as gateway:
                scrape = {
                    "job_name": JOB,
                    "static_configs": [{"targets": [gateway.url.removeprefix("http://")]}],
                }
                async with run_prometheus(workdir / "prometheus", [scrape], RULE_FILES) as prom:
                    await prom.wait_for_target(JOB)
                    load = SyntheticLoad(gateway.client, sendgrid_source, ses_source)
                    await load.ses("SubscriptionConfirmation")
                    started = time.monotonic()
                    index = 0
                    while time.monotonic() - started < LOAD_SECONDS:
                        await load.round(index)
                        index += 1
                        await asyncio.sleep(0.2)
                    sent = sum(load.statuses.values())
                    await _wait_until_scraped(prom, sent)
                    exposition = (await gateway.client.get("/metrics")).text
                    names = {
                        sample.name
                        for family in text_string_to_metric_families(exposition)
                        for sample in family.samples
                    }
                    yield Scraped(prom, names, load.statuses, sent)
    finally:
        await _drop_database(pg_server, db_url)


async def test_prometheus_scraped_the_loaded_gateway(scraped: Scraped) -> None:
    """The target is up as job="hookline" and Prometheus saw exactly the requests sent:
    accepted, unauthorized (forged) and not found (unknown source), and the sink got data."""
    assert await _scalar(scraped.prometheus, f'up{{job="{JOB}"}}') == 1.0
    assert set(scraped.statuses) == {200, 401, 404}, scraped.statuses
    by_outcome = await scraped.prometheus.query(
        f'sum by (outcome) (hookline_webhook_requests_total{{job="{JOB}"}}) > 0'
    )
    outcomes = {
        item["metric"]["outcome"]: float(item["value"][1]) for item in by_outcome["data"]["result"]
    }
    assert outcomes == {
        "accepted": float(scraped.statuses[200] - 1),
        "control": 1.0,
        "unauthorized": float(scraped.statuses[401]),
        "not_found": float(scraped.statuses[404]),
    }
    accepted_rate = await _scalar(
        scraped.prometheus,
        f'sum(hookline:webhook_requests:rate5m{{job="{JOB}", provider="sendgrid", '
        'outcome="accepted"})',
    )
    assert accepted_rate is not None and accepted_rate > 0
    delivered = await _scalar(
        scraped.prometheus,
        f'sum(hookline_delivery_attempts_total{{job="{JOB}", outcome="success"}})',
    )
    assert delivered is not None and delivered > 0


async def test_rule_groups_are_loaded_and_healthy(scraped: Scraped) -> None:
    """/api/v1/rules lists every group of grafana/alerts, each rule evaluated, health ok,
    no lastError."""
    data = await scraped.prometheus.api("/api/v1/rules")
    groups = {group["name"]: group for group in data["groups"]}
    assert set(groups) == rule_group_names()
    unhealthy = [
        (group["name"], rule["name"], rule["health"], rule.get("lastError"))
        for group in groups.values()
        for rule in group["rules"]
        if rule["health"] != "ok" or rule.get("lastError")
    ]
    assert unhealthy == []
    assert sum(len(group["rules"]) for group in groups.values()) == len(RULE_EXPRESSIONS)
    assert all(not g["lastEvaluation"].startswith("0001-") for g in groups.values())


async def _evaluate(prometheus: Service, expr: str) -> list[dict[str, Any]]:
    answer = await prometheus.query(expr)
    assert answer["status"] == "success", (
        f"{expr}\n{answer.get('errorType')}: {answer.get('error')}"
    )
    assert not answer.get("warnings"), answer["warnings"]
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


@pytest.mark.parametrize("expression", DASHBOARD_EXPRESSIONS, ids=lambda e: e.where)
async def test_dashboard_expression_evaluates_with_data(
    scraped: Scraped, expression: Expression
) -> None:
    """The query evaluates without error with the variables set to All and to one
    provider/sink; with All it returns data; a label_values() variable offers the expected
    value."""
    await _evaluate(scraped.prometheus, substitute(expression.expr, ONE_VALUES))
    expr = substitute(expression.expr, ALL_VALUES)
    result = await _evaluate(scraped.prometheus, expr)
    assert result, f"no data for {expr}"
    if expression.variable_label is not None:
        offered = {item["metric"].get(expression.variable_label) for item in result}
        assert EXPECTED_VARIABLE_VALUES[expression.variable_label] in offered, offered


@pytest.mark.parametrize("expression", RULE_EXPRESSIONS, ids=lambda e: e.where)
async def test_rule_expression_evaluates(scraped: Scraped, expression: Expression) -> None:
    """The rule's expression evaluates without error; a recording rule's returns data
    (an alert's may be empty: it is not firing)."""
    result = await _evaluate(scraped.prometheus, expression.expr)
    if not expression.alert:
        assert result, f"recording rule returned no data: {expression.expr}"


async def test_every_referenced_series_is_exported_by_the_gateway(scraped: Scraped) -> None:
    """Every series name in a dashboard or rule is in the gateway's /metrics and in
    Prometheus under job="hookline" (recording rules and `up` excepted: Prometheus makes
    them)."""
    exprs = [substitute(e.expr, ALL_VALUES) for e in DASHBOARD_EXPRESSIONS]
    exprs += [expression.expr for expression in RULE_EXPRESSIONS]
    referenced = {name for expr in exprs for name in metric_names(expr)}
    exported = referenced - recording_names() - PROMETHEUS_SERIES
    assert exported, "no series found: the name scanner is broken"
    assert exported - scraped.exposition_names == set()
    stored = set(
        await scraped.prometheus.api(
            "/api/v1/label/__name__/values", **{"match[]": f'{{job="{JOB}"}}'}
        )
    )
    assert (exported | PROMETHEUS_SERIES) - stored == set()


async def test_recording_rules_write_their_series(scraped: Scraped) -> None:
    """Prometheus's rule manager has written every recording rule's series (job kept)."""
    stored = set(
        await scraped.prometheus.api(
            "/api/v1/label/__name__/values", **{"match[]": f'{{job="{JOB}"}}'}
        )
    )
    assert recording_names() - stored == set()


async def test_latency_exemplars_reach_prometheus_with_trace_ids(scraped: Scraped) -> None:
    """Scraped as OpenMetrics, the webhook latency histogram's exemplars carry trace ids."""
    now = time.time()
    data = await scraped.prometheus.api(
        "/api/v1/query_exemplars",
        query=f'hookline_webhook_request_duration_seconds_bucket{{job="{JOB}"}}',
        start=str(now - 120),
        end=str(now),
    )
    exemplars = [
        (series["seriesLabels"].get("provider"), exemplar["labels"].get("trace_id", ""))
        for series in data
        for exemplar in series["exemplars"]
    ]
    assert {provider for provider, _ in exemplars} >= {"sendgrid", "ses"}
    assert all(re.fullmatch(r"[0-9a-f]{32}", trace_id) for _, trace_id in exemplars), exemplars
