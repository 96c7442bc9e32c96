"""``hookline sign``: the printed curl command, run by a shell, is accepted by a real gateway
for every provider, for a sample body and for a body from a file."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

from gateway.devconfig import DevConfig, ensure
from handlers.registry import PROVIDERS
from hookline_testing import samples_for
from tests.integration._gateway_process import ROOT, clean_environment, free_port


def _sign(*args: str) -> str:
    """The command's output, byte for byte (no newline translation: SendGrid's body ends in
    CRLF and the signature covers it)."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "sign", *args],
        cwd=ROOT,
        env=clean_environment(),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def _run(command: str) -> dict[str, int]:
    done = subprocess.run(["sh", "-c", command], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answer: dict[str, int] = json.loads(done.stdout)
    return answer


@asynccontextmanager
async def _gateway(config: Path, database_url: str) -> AsyncIterator[str]:
    """``hookline serve`` on the development configuration file and a real database."""
    port = free_port()
    env = clean_environment(
        HOOKLINE_CONFIG=str(config), HOOKLINE_DATABASE_URL=database_url, HOOKLINE_PORT=str(port)
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            for _ in range(600):
                assert process.returncode is None, "gateway exited"
                try:
                    if (await client.get(url + "/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("gateway never became ready")
        yield url
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


async def test_signed_curl_commands_are_accepted_for_every_provider(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """For each of the ten providers, `hookline sign PROVIDER | sh` posts one event the
    gateway verifies and stores (a second run is a duplicate, not a rejection); a file's body
    is posted as is (`@FILE`); `--basic-auth` prints the source's own credentials."""
    dev = DevConfig.under(tmp_path / "data")
    ensure(dev)
    async with _gateway(dev.config, fresh_db_url) as url:
        common = ["--credentials", str(dev.credentials), "--url", url]
        for provider in PROVIDERS:
            command = _sign(provider, *common)
            assert command.startswith(f"curl -sS {url}/webhooks/{provider}/dev ")
            assert _run(command) == {"accepted": 1, "duplicates": 0}, provider
            assert _run(command) == {"accepted": 1, "duplicates": 1}, provider

        body = tmp_path / "bounce.json"
        body.write_bytes(
            samples_for("sendgrid").example_body(1, seed=7, event="bounce", now=datetime.now(UTC))
        )
        command = _sign("sendgrid", str(body), *common)
        assert command.rstrip("\n").endswith(f"--data-binary @{body}")
        assert _run(command) == {"accepted": 1, "duplicates": 0}

    with dev.config.open("rb") as handle:
        served = {s["provider"]: s for s in tomllib.load(handle)["sources"]}
    auth = _sign("postmark", "--basic-auth", "--credentials", str(dev.credentials)).strip()
    assert auth == served["postmark"]["basic_auth"]
