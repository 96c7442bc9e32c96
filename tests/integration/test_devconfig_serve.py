"""``hookline serve`` creates the development configuration only on the zero-config default."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx

from tests.integration._gateway_process import ROOT, clean_environment, free_port, run_gateway


async def test_serve_with_a_configuration_file_creates_no_development_config(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """A configuration file means the operator chose: no development configuration."""
    data_dir = tmp_path / "data"
    config = {"database": {"url": fresh_db_url}, "storage": {"data_dir": str(data_dir)}}
    async with run_gateway(config, tmp_path / "run", clean_environment()) as gateway:
        assert gateway.process.returncode is None
    assert not (data_dir / "dev").exists()


async def test_serve_with_only_a_database_url_creates_no_development_config(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """No file but a database URL (the usual container set-up): not the zero-config default,
    so nothing is created and nothing is printed about it."""
    data_dir = tmp_path / "data"
    port = free_port()
    env = clean_environment(
        HOOKLINE_DATABASE_URL=fresh_db_url,
        HOOKLINE_DATA_DIR=str(data_dir),
        HOOKLINE_PORT=str(port),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        ready = False
        async with httpx.AsyncClient(timeout=2.0) as client:
            for _ in range(600):
                try:
                    response = await client.get(f"http://127.0.0.1:{port}/readyz")
                    if response.status_code == 200:
                        ready = True
                        break
                except httpx.HTTPError:
                    pass
                assert process.returncode is None, "gateway exited"
                await asyncio.sleep(0.1)
        assert ready, "gateway never became ready"
    finally:
        process.terminate()
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert not (data_dir / "dev").exists()
    assert b"DEVELOPMENT" not in out
