"""The Debian ``prometheus`` and ``prometheus-alertmanager`` servers as child processes on
loopback, with temporary configuration and storage, and a thin client for their HTTP APIs.

A missing binary fails the test (never a skip): ``make test`` installs both packages
(scripts/install-system-deps.sh).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration._gateway_process import free_port

__all__ = ["Service", "run_alertmanager", "run_prometheus", "tool"]

READY_TIMEOUT_SECONDS = 30.0
INSTALL_HINT = (
    "install the Debian packages: apt-get install -y --no-install-recommends "
    "prometheus prometheus-alertmanager (make system-deps does it)"
)


def tool(*names: str) -> str:
    """The path of the first of ``names`` on PATH; fails the test when none is installed."""
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.fail(f"{' / '.join(names)} not found on PATH; {INSTALL_HINT}")


@dataclass
class Service:
    """A running server: its base URL, an HTTP client for it, and its log file."""

    url: str
    client: httpx.AsyncClient
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    async def api(self, path: str, **params: Any) -> Any:
        """GET an API path; return ``data`` after checking ``status == "success"``."""
        response = await self.client.get(path, params=params)
        body = response.json()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    async def wait_for_target(self, job: str) -> None:
        """Until ``job`` has been scraped successfully (``up == 1``). Prometheus applies
        target discovery up to 5 s after start-up: load sent before that is never seen as
        a rate, only as a counter that was already high at the first scrape."""
        deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_SECONDS
        while True:
            answer = await self.query(f'up{{job="{job}"}} == 1')
            if answer.get("status") == "success" and answer["data"]["result"]:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"job {job} never scraped:\n{self.log()}")
            await asyncio.sleep(0.1)

    async def query(self, expr: str) -> dict[str, Any]:
        """An instant query through ``/api/v1/query``: the whole JSON answer, errors included."""
        response = await self.client.post("/api/v1/query", data={"query": expr})
        answer: dict[str, Any] = response.json()
        return answer


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout=10)
    except TimeoutError:
        process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def _run_service(args: Sequence[str], port: int, log_path: Path) -> AsyncIterator[Service]:
    """Start ``args``, wait for ``/-/ready`` on ``port``; always stop the process on exit."""
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log
        )
        try:
            async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
                service = Service(url, client, log_path)
                deadline = asyncio.get_running_loop().time() + READY_TIMEOUT_SECONDS
                while True:
                    if process.returncode is not None:
                        raise AssertionError(f"{args[0]} exited:\n{service.log()}")
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get("/-/ready")).status_code == 200:
                            break
                    if asyncio.get_running_loop().time() > deadline:
                        raise AssertionError(f"{args[0]} not ready:\n{service.log()}")
                    await asyncio.sleep(0.1)
                yield service
        finally:
            await _stop(process)


@contextlib.asynccontextmanager
async def run_prometheus(
    workdir: Path,
    scrape_configs: Sequence[Mapping[str, Any]],
    rule_files: Sequence[Path] = (),
    alertmanager_url: str | None = None,
) -> AsyncIterator[Service]:
    """Prometheus scraping and evaluating every second, exemplar storage on."""
    workdir.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [dict(scrape) for scrape in scrape_configs],
        "rule_files": [str(path) for path in rule_files],
    }
    if alertmanager_url is not None:
        target = alertmanager_url.removeprefix("http://")
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [target]}]}]}
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    args = [
        tool("prometheus"),
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=exemplar-storage",
        "--rules.alert.resend-delay=1s",
        "--log.level=warn",
    ]
    async with _run_service(args, port, workdir / "prometheus.log") as service:
        yield service


@contextlib.asynccontextmanager
async def run_alertmanager(workdir: Path, config: Mapping[str, Any]) -> AsyncIterator[Service]:
    """Alertmanager (Debian's ``prometheus-alertmanager``), clustering off."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(dict(config)), encoding="utf-8")
    port = free_port()
    args = [
        tool("prometheus-alertmanager", "alertmanager"),
        f"--config.file={config_path}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    async with _run_service(args, port, workdir / "alertmanager.log") as service:
        yield service
