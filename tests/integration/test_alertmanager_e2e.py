"""An alert from the shipped rules fires through a real Alertmanager to a webhook receiver.

A real gateway takes forged SendGrid signatures (as after a key rotation). The Debian
``prometheus`` scrapes it and evaluates grafana/alerts/hookline.rules.yml, unchanged except
that every ``for:`` is 0s so alerts fire within seconds instead of minutes. Alerts go to the
Debian ``prometheus-alertmanager`` running grafana/alertmanager.example.yml with its route
tree and inhibit rules intact, its receivers swapped for webhooks to a local HTTP server and
its group waits shortened. The page-severity HookLineSignatureFailureSpike must reach the
``pager`` receiver with its labels and runbook; the HookLineWebhook4xxRatioHigh that the same
401s cause must fire in Prometheus but be inhibited in Alertmanager, never notified.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from hookline_testing import samples_for
from tests.integration._http_capture import Captured, capture_server
from tests.integration._load import SyntheticLoad, source_config
from tests.integration._observability_files import ROOT, RULE_FILES
from tests.integration._prometheus import Service, run_alertmanager, run_prometheus

ALERTMANAGER_EXAMPLE = ROOT / "grafana" / "alertmanager.example.yml"
SPIKE = "HookLineSignatureFailureSpike"
RATIO_4XX = "HookLineWebhook4xxRatioHigh"
RUNBOOK_PREFIX = "https://github.com/hookline/hookline/blob/main/docs/runbooks.md#"
WAIT_SECONDS = 45.0


def _rules_without_for(workdir: Path) -> list[Path]:
    """Copies of the shipped rule files with every alert's ``for`` set to 0s."""
    copies = []
    for path in RULE_FILES:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in document["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = "0s"
        copy = workdir / path.name
        copy.write_text(yaml.safe_dump(document), encoding="utf-8")
        copies.append(copy)
    return copies


def _alertmanager_config(receiver_url: str) -> dict[str, Any]:
    """The example config: same routes and inhibit rules; every receiver a webhook to
    ``<receiver_url>/<receiver name>``; group waits of a second."""
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text(encoding="utf-8"))
    routes = [config["route"], *config["route"].get("routes", [])]
    for route in routes:
        route["group_wait"] = "1s"
        route["group_interval"] = "1s"
    config["receivers"] = [
        {
            "name": receiver["name"],
            "webhook_configs": [
                {"url": f"{receiver_url}/{receiver['name']}", "send_resolved": False}
            ],
        }
        for receiver in config["receivers"]
    ]
    return config


def _notified(receiver: Captured, path: str) -> list[dict[str, Any]]:
    """Every alert in every notification that reached ``path``."""
    return [alert for request in receiver.on(path) for alert in json.loads(request.body)["alerts"]]


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.25)


async def _firing_in_prometheus(prometheus: Service) -> set[str]:
    data = await prometheus.api("/api/v1/alerts")
    return {a["labels"]["alertname"] for a in data["alerts"] if a["state"] == "firing"}


async def test_signature_spike_pages_through_alertmanager_and_inhibits_4xx_ticket(
    gateway_factory: Any, tmp_path: Path
) -> None:
    """Forged signatures fire HookLineSignatureFailureSpike (severity page), which the
    example routing sends to the pager webhook with provider, job and runbook_url; the
    4xx-ratio alert the same requests fire is inhibited by it and never notified."""
    sendgrid_source = samples_for("sendgrid").make_source("main")
    ses_source = samples_for("ses").make_source("main")
    sources = [source_config(sendgrid_source[0]), source_config(ses_source[0])]
    with capture_server() as receiver:
        async with (
            gateway_factory(sources=sources) as gateway,
            run_alertmanager(
                tmp_path / "alertmanager", _alertmanager_config(receiver.url)
            ) as alertmanager,
        ):
            scrape = {
                "job_name": "hookline",
                "static_configs": [{"targets": [gateway.url.removeprefix("http://")]}],
            }
            rules = _rules_without_for(tmp_path)
            async with run_prometheus(
                tmp_path / "prometheus", [scrape], rules, alertmanager_url=alertmanager.url
            ) as prometheus:
                await prometheus.wait_for_target("hookline")
                load = SyntheticLoad(gateway.client, sendgrid_source, ses_source)
                await load.sendgrid(3)
                for _ in range(25):
                    await load.forged()
                    await asyncio.sleep(0.2)

                async def paged() -> bool:
                    return any(
                        a["labels"]["alertname"] == SPIKE for a in _notified(receiver, "/pager")
                    )

                async def both_firing() -> bool:
                    return {SPIKE, RATIO_4XX} <= await _firing_in_prometheus(prometheus)

                await _until(paged, f"{SPIKE} at the pager receiver")
                await _until(both_firing, f"{SPIKE} and {RATIO_4XX} firing in Prometheus")
                await asyncio.sleep(3.0)  # several group intervals for a 4xx notification
                in_alertmanager = (await alertmanager.client.get("/api/v2/alerts")).json()

    spike = next(a for a in _notified(receiver, "/pager") if a["labels"]["alertname"] == SPIKE)
    assert spike["status"] == "firing"
    assert spike["labels"]["severity"] == "page"
    assert spike["labels"]["provider"] == "sendgrid"
    assert spike["labels"]["job"] == "hookline"
    assert spike["annotations"]["runbook_url"] == RUNBOOK_PREFIX + SPIKE.lower()
    assert "sendgrid" in spike["annotations"]["summary"]
    assert spike["annotations"]["description"].strip()

    # Inhibition is judged by Alertmanager's own view once both alerts are present: whether a
    # ticket slipped out before the spike arrived depends on which rule Prometheus evaluated
    # first, a race that a loaded CI machine loses now and then.
    ratio = [a for a in in_alertmanager if a["labels"]["alertname"] == RATIO_4XX]
    assert ratio, "the 4xx alert never reached Alertmanager"
    assert all(a["status"]["state"] == "suppressed" for a in ratio), ratio
    spike_fingerprints = {
        a["fingerprint"] for a in in_alertmanager if a["labels"]["alertname"] == SPIKE
    }
    assert all(set(a["status"]["inhibitedBy"]) == spike_fingerprints for a in ratio), ratio
