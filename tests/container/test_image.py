"""The chart's gateway pod, started from the real image ``make image`` builds.

The chart is rendered, its gateway Deployment and migrate Job are translated into
``podman run`` flags (kube_to_podman, unit-tested in test_kube_to_podman.py) and started
with host networking on a free loopback port against the session's real PostgreSQL. The
image build is cached by podman; a fresh clone builds it here (cold build, about two minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gateway.storage.embedded import EmbeddedPostgres
from hookline_testing import samples_for
from tests.container.chart import Manifest, get, render
from tests.container.kube_to_podman import PodmanRun, to_podman_run
from tests.container.podman import (
    BuiltImage,
    build_image,
    logs,
    podman,
    running,
    unique_name,
    wait_for_probe,
)
from tests.integration._gateway_process import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

FULLNAME = "hl-hookline"
KEY_ENV = "SENDGRID_CONTAINER_KEY"


@pytest.fixture(scope="session")
def image() -> Iterator[BuiltImage]:
    built = build_image()
    print(
        f"\nimage {built.name}: built in {built.build_seconds:.1f}s, "
        f"{built.size_bytes / 1e6:.0f} MB"
    )
    yield built


@pytest.fixture
async def later_pg() -> AsyncIterator[EmbeddedPostgres]:
    """A dedicated PostgreSQL whose port and password are fixed now but which is NOT running:
    the test starts it when the database should appear (as in
    tests/integration/test_boot_without_database.py). Its directory is world-traversable,
    since the server runs as an unprivileged user when the suite runs as root."""
    base = Path(tempfile.mkdtemp(prefix="hookline-container-pg-"))
    os.chmod(base, 0o755)
    (base / "pg").mkdir()
    server = EmbeddedPostgres(base / "pg", durable=False, port=free_port())
    server.url()  # writes the password the cluster will be initialised with
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop, "immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
async def empty_db_url(pg_server: EmbeddedPostgres) -> AsyncIterator[str]:
    """A new database with no schema at all: what the migrate Job meets on a first install."""
    name = "c_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(pg_server.url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield pg_server.url().rsplit("/", 1)[0] + "/" + name
    admin = await asyncpg.connect(pg_server.url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def chart_values(db_url: str, signing_key: str) -> dict[str, Any]:
    """An install with an external database and one SendGrid source whose key reaches the pod
    through secrets.env (envFrom), as docs/kubernetes.md describes."""
    return {
        "database": {"url": db_url},
        "admin": {"token": "container-test-admin-token"},
        "secrets": {"env": {KEY_ENV: signing_key}},
        "config": "\n".join(
            [
                "[logging]",
                'level = "info"',
                'format = "json"',
                "[storage]",
                "spool_enabled = true",
                "[[sources]]",
                'provider = "sendgrid"',
                'name = "container"',
                f'signing_key_env = "{KEY_ENV}"',
                "",
            ]
        ),
    }


def gateway_run(docs: list[Manifest], tmp_path: Path, port: int) -> PodmanRun:
    return to_podman_run(
        docs,
        get(docs, "Deployment", FULLNAME),
        "hookline",
        name=unique_name("hookline-test-gateway"),
        volume_dir=tmp_path / "gateway",
        # host networking: the process must listen on the free loopback port itself
        env_overrides={"HOOKLINE_HOST": "127.0.0.1", "HOOKLINE_PORT": str(port)},
        ports={8000: port},
    )


@contextlib.contextmanager
def start_ready(run: PodmanRun) -> Iterator[tuple[str, float]]:
    """Start the gateway container; yield its name once the startup probe passed within the
    kubelet's budget, with the seconds from `podman run` to ready (reported, not asserted)."""
    started = time.monotonic()
    with running(run) as name:
        startup = run.probes["startup"]
        wait_for_probe(name, startup, startup.period_seconds * startup.failure_threshold)
        readiness = run.probes["readiness"]
        wait_for_probe(name, readiness, readiness.period_seconds * readiness.failure_threshold)
        yield name, time.monotonic() - started


async def stored_event_ids(db_url: str) -> set[str]:
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch("SELECT provider_event_id FROM events WHERE provider = 'sendgrid'")
    finally:
        await conn.close()
    return {row["provider_event_id"] for row in rows}


def post_sendgrid(port: int, spec: Any, key: Any, seed: int, count: int = 3) -> httpx.Response:
    body = samples_for("sendgrid").example_body(count, seed=seed)
    request = samples_for("sendgrid").signed_request(spec, key, body, now=datetime.now(UTC))
    return httpx.post(
        f"http://127.0.0.1:{port}/webhooks/sendgrid/{spec.name}",
        content=request.body,
        headers=dict(request.headers),
        timeout=10,
    )


def sent_event_ids(seed: int, count: int = 3) -> set[str]:
    return {
        item["sg_event_id"]
        for item in json.loads(samples_for("sendgrid").example_body(count, seed=seed))
    }


async def stored_event_id_list(db_url: str) -> list[str]:
    """Every stored SendGrid event id, duplicates kept; empty before the gateway migrated."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch("SELECT provider_event_id FROM events WHERE provider = 'sendgrid'")
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()
    return [row["provider_event_id"] for row in rows]


def scraped(port: int, name: str, **labels: str) -> float:
    """The sum of the samples of metric ``name`` whose labels include ``labels``."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample != name and not sample.startswith(name + "{"):
            continue
        if all(f'{key}="{wanted}"' in sample for key, wanted in labels.items()):
            total += float(value)
    return total


def full_log(name: str) -> str:
    """Everything the container wrote to stdout and stderr."""
    result = podman("logs", name, check=False)
    return result.stdout + result.stderr


def log_events(text: str) -> list[dict[str, Any]]:
    """The JSON log lines (structlog) in ``text``."""
    lines = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            parsed = json.loads(line)
            if isinstance(parsed, dict):
                lines.append(parsed)
    return lines


def post_spooled(port: int, spec: Any, key: Any, seeds: range) -> set[str]:
    """POST one signed webhook per seed while PostgreSQL is down: each is acknowledged (200)
    and counted with outcome "spooled"; return the acknowledged event ids."""
    requests = "hookline_webhook_requests_total"
    before = scraped(port, requests, provider="sendgrid", outcome="spooled")
    acked: set[str] = set()
    for seed in seeds:
        response = post_sendgrid(port, spec, key, seed=seed)
        assert response.status_code == 200, response.text
        acked |= sent_event_ids(seed)
    after = scraped(port, requests, provider="sendgrid", outcome="spooled")
    assert after - before == len(seeds)
    return acked


async def test_chart_pod_migrates_serves_and_runs_locked_down(
    image: BuiltImage, empty_db_url: str, tmp_path: Path
):
    """On a first install the migrate Job (the image, `hookline migrate`) creates the schema;
    the gateway pod then passes its startup, readiness and liveness probes on the chart's
    paths, acknowledges and stores a signed SendGrid webhook, serves /metrics, and runs as
    the chart's non-root uid on a read-only root filesystem (only the data volume and /tmp
    writable)."""
    spec, key = samples_for("sendgrid").make_source("container")
    docs = render(chart_values(empty_db_url, spec.signing_key or ""))
    deployment = get(docs, "Deployment", FULLNAME)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image.name

    migrate = to_podman_run(
        docs,
        get(docs, "Job", f"{FULLNAME}-migrate"),
        "migrate",
        name=unique_name("hookline-test-migrate"),
        volume_dir=tmp_path / "migrate",
    )
    with running(migrate) as job:
        exit_code = podman("wait", job, timeout=300).stdout.strip()
        assert exit_code == "0", logs(job)
    assert await stored_event_ids(empty_db_url) == set()  # the events table exists now

    port = free_port()
    run = gateway_run(docs, tmp_path, port)
    with start_ready(run) as (name, seconds_to_ready):
        print(f"\npodman run -> ready in {seconds_to_ready:.1f}s")
        readiness = httpx.get(f"http://127.0.0.1:{port}{run.probes['readiness'].path}")
        assert readiness.status_code == 200
        assert readiness.json()["database"] == "ok"
        liveness = httpx.get(f"http://127.0.0.1:{port}{run.probes['liveness'].path}")
        assert liveness.status_code == 200

        response = post_sendgrid(port, spec, key, seed=1)
        assert response.status_code in (200, 202), response.text
        deadline = time.monotonic() + 30
        while await stored_event_ids(empty_db_url) != sent_event_ids(1):
            assert time.monotonic() < deadline, logs(name)
            time.sleep(0.2)

        scrape = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert scrape.status_code == 200
        accepted = [
            line
            for line in scrape.text.splitlines()
            if line.startswith("hookline_webhook_requests_total{")
            and 'provider="sendgrid"' in line
            and 'outcome="accepted"' in line
        ]
        assert accepted and float(accepted[0].rsplit(" ", 1)[1]) == 1.0, scrape.text[:2000]

        assert podman("exec", name, "id", "-u").stdout.strip() == str(run.user)
        assert podman("exec", name, "id", "-g").stdout.strip() == str(run.group)
        inspected = json.loads(podman("inspect", name).stdout)[0]
        assert inspected["HostConfig"]["ReadonlyRootfs"] is True
        for path in ("/opt/hookline/probe", "/etc/probe", "/var/tmp/probe"):
            denied = podman("exec", name, "touch", path, check=False)
            assert denied.returncode != 0 and "Read-only file system" in denied.stderr, path
        for path in ("/var/lib/hookline/probe", "/tmp/probe"):
            assert podman("exec", name, "touch", path, check=False).returncode == 0, path


async def test_sigterm_drains_and_exits_zero_within_the_grace_period(
    image: BuiltImage, fresh_db_url: str, tmp_path: Path
):
    """SIGTERM (what the kubelet sends after the preStop sleep) makes the gateway finish what
    it acknowledged and exit 0 before the rest of terminationGracePeriodSeconds runs out."""
    spec, key = samples_for("sendgrid").make_source("container")
    docs = render(chart_values(fresh_db_url, spec.signing_key or ""))
    port = free_port()
    run = gateway_run(docs, tmp_path, port)
    with start_ready(run) as (name, _):
        for seed in (11, 12, 13):
            response = post_sendgrid(port, spec, key, seed=seed)
            assert response.status_code in (200, 202), response.text
        podman("kill", "--signal", "TERM", name)
        budget = run.grace_seconds - run.pre_stop_sleep_seconds
        try:
            exit_code = podman("wait", name, timeout=budget).stdout.strip()
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {budget}s after SIGTERM:\n{logs(name)}")
        assert exit_code == "0", logs(name)
    expected = sent_event_ids(11) | sent_event_ids(12) | sent_event_ids(13)
    assert await stored_event_ids(fresh_db_url) == expected


async def test_embedded_trial_pod_starts_on_its_volume(image: BuiltImage, tmp_path: Path):
    """database.embedded.enabled: the pod's init container (`hookline migrate`) initialises
    the embedded PostgreSQL on the data volume, owned as Kubernetes makes it (root, group
    fsGroup, setgid), and the gateway container then starts on it, ready and storing a
    signed webhook."""
    spec, key = samples_for("sendgrid").make_source("container")
    values = chart_values("", spec.signing_key or "")
    values["database"] = {"embedded": {"enabled": True}}
    docs = render(values)
    deployment = get(docs, "Deployment", FULLNAME)
    # the chart's PersistentVolumeClaim, bound like the StatefulSet's claims: a host directory
    pod = deployment["spec"]["template"]["spec"]
    data = next(v for v in pod["volumes"] if v["name"] == "data")
    assert data["persistentVolumeClaim"]["claimName"] == f"{FULLNAME}-data"

    init = to_podman_run(
        docs,
        deployment,
        "migrate",
        name=unique_name("hookline-test-init"),
        volume_dir=tmp_path / "pod",
    )
    with running(init) as job:
        exit_code = podman("wait", job, timeout=300).stdout.strip()
        assert exit_code == "0", logs(job)

    port = free_port()
    run = to_podman_run(
        docs,
        deployment,
        "hookline",
        name=unique_name("hookline-test-trial"),
        volume_dir=tmp_path / "pod",
        env_overrides={"HOOKLINE_HOST": "127.0.0.1", "HOOKLINE_PORT": str(port)},
        ports={8000: port},
    )
    with start_ready(run) as (name, _):
        response = post_sendgrid(port, spec, key, seed=21)
        assert response.status_code in (200, 202), response.text
        # read back through the admin API: the events are in the embedded database
        headers = {"Authorization": "Bearer container-test-admin-token"}
        deadline = time.monotonic() + 30
        while True:
            found = httpx.get(
                f"http://127.0.0.1:{port}/v1/events",
                params={"provider": "sendgrid", "limit": 50},
                headers=headers,
                timeout=10,
            )
            assert found.status_code == 200, found.text
            ids = {e.get("provider_event_id") for e in found.json()["items"]}
            if ids >= sent_event_ids(21):
                break
            assert time.monotonic() < deadline, (found.text[:2000], logs(name))
            time.sleep(0.2)


async def test_chart_pod_boots_with_the_database_down_spools_and_drains(
    image: BuiltImage, later_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    """The chart's default pod (emptyDir spool) started from the real image against a
    PostgreSQL that is not running: the startup and liveness probes pass and readiness is 200
    with storage "degraded"; signed webhooks are acknowledged into the spool. When PostgreSQL
    starts, the gateway migrates it and drains the spool: every acknowledged event is stored
    exactly once. PostgreSQL stopped again, more webhooks spooled, PostgreSQL restarted and
    SIGTERM sent at once: the gateway drains what it holds at exit (the emptyDir would go with
    the pod) and exits 0 within the grace period, with every acknowledged event stored."""
    spec, key = samples_for("sendgrid").make_source("container")
    url = later_pg.url()
    docs = render(chart_values(url, spec.signing_key or ""))
    port = free_port()
    run = gateway_run(docs, tmp_path, port)
    pod = get(docs, "Deployment", FULLNAME)["spec"]["template"]["spec"]
    data = next(v for v in pod["volumes"] if v["name"] == "data")
    assert "emptyDir" in data  # the chart's default: the spool goes with the pod
    with start_ready(run) as (name, seconds_to_ready):
        print(f"\nPostgreSQL down: podman run -> ready in {seconds_to_ready:.1f}s")
        liveness = httpx.get(f"http://127.0.0.1:{port}{run.probes['liveness'].path}")
        assert liveness.status_code == 200
        readiness = httpx.get(f"http://127.0.0.1:{port}{run.probes['readiness'].path}")
        assert readiness.status_code == 200, readiness.text
        assert readiness.json()["storage"] == "degraded", readiness.text

        acked = post_spooled(port, spec, key, range(100, 110))
        assert scraped(port, "hookline_spool_events") == len(acked)

        started = time.monotonic()
        await asyncio.to_thread(later_pg.start)
        deadline = time.monotonic() + 90
        while sorted(await stored_event_id_list(url)) != sorted(acked):
            assert time.monotonic() < deadline, logs(name)
            await asyncio.sleep(0.2)
        print(
            f"{len(acked)} spooled events stored {time.monotonic() - started:.1f}s after "
            "PostgreSQL was started (initdb included)"
        )
        readiness = httpx.get(f"http://127.0.0.1:{port}{run.probes['readiness'].path}")
        assert readiness.status_code == 200 and readiness.json()["storage"] == "ok"
        # the start without a database is told in log lines, never a traceback (the second
        # outage below is not checked for this: terminated sessions can leave asyncpg
        # connections in the pool that crash a background task once, which is restarted)
        assert "Traceback" not in full_log(name), logs(name)

        await asyncio.to_thread(later_pg.stop, "fast")
        second = post_spooled(port, spec, key, range(200, 210))
        assert scraped(port, "hookline_spool_events") == len(second)
        acked |= second
        await asyncio.to_thread(later_pg.start)
        stopping = time.monotonic()
        podman("kill", "--signal", "TERM", name)
        budget = run.grace_seconds - run.pre_stop_sleep_seconds
        try:
            exit_code = podman("wait", name, timeout=budget).stdout.strip()
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {budget}s after SIGTERM:\n{logs(name)}")
        seconds_to_exit = time.monotonic() - stopping
        assert exit_code == "0", logs(name)
        text = full_log(name)
    lines = log_events(text)
    stored = await stored_event_id_list(url)
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert set(stored) == acked, f"{len(acked - set(stored))} acknowledged events lost"
    [drained] = [line for line in lines if line.get("event") == "spool.drained_at_exit"]
    print(
        f"SIGTERM -> exit 0 in {seconds_to_exit:.1f}s (budget {budget}s); the exit drain "
        f"stored {drained['events']} events in {drained['seconds']}s"
    )
    # SIGTERM came before the storage breaker let the background drainer retry (5 s after
    # it opened): what the second outage spooled was drained by the exit drain itself
    assert drained["events"] == len(second)
