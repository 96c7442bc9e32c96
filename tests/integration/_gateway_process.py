"""A real gateway as a child process: ``python -m gateway.cli serve`` on a free loopback port.

Tracing is process-global (one tracer provider per process, configured from ``OTEL_*``), so
tests that check what a gateway exports or logs run it in its own process, with its own
environment, and read its stderr from a file once it has stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = ["GatewayProcess", "clean_environment", "free_port", "run_gateway", "to_toml"]

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 25.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _toml_key(key: str) -> str:
    """A bare key when TOML allows one, else a quoted key (e.g. a URL)."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def to_toml(config: Mapping[str, Any]) -> str:
    """Hookline's config shape as TOML: ``[section]`` tables and ``[[sources]]`` arrays."""
    lines: list[str] = []
    for section, body in config.items():
        if isinstance(body, list):
            for entry in body:
                lines.append(f"[[{section}]]")
                lines += [f"{key} = {_toml_value(value)}" for key, value in entry.items()]
                lines.append("")
        else:
            lines.append(f"[{section}]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in body.items()]
            lines.append("")
    return "\n".join(lines)


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any ``OTEL_*`` or ``HOOKLINE_*`` variable, plus
    ``extra``: the child sees exactly the telemetry settings the test chose."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "HOOKLINE_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class GatewayProcess:
    """A running gateway child process and where its stderr goes."""

    url: str
    process: asyncio.subprocess.Process
    stderr_path: Path
    config_path: Path
    #: where the process's stdout goes (nothing is expected there; tests scan it)
    stdout_path: Path | None = None

    def stdout(self) -> str:
        """Everything the process wrote to stdout so far."""
        if self.stdout_path is None:
            return ""
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        """Everything the process wrote to stderr so far (its structlog output)."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def json_lines(self) -> list[dict[str, Any]]:
        """The stderr lines that are JSON objects (structlog's JSON renderer)."""
        found: list[dict[str, Any]] = []
        for line in self.stderr().splitlines():
            line = line.strip()
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    found.append(json.loads(line))
        return found


async def _wait_ready(gateway: GatewayProcess) -> None:
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_SECONDS
    async with httpx.AsyncClient(base_url=gateway.url, timeout=2.0) as client:
        while asyncio.get_running_loop().time() < deadline:
            if gateway.process.returncode is not None:
                raise RuntimeError(
                    f"gateway exited with {gateway.process.returncode}:\n{gateway.stderr()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"gateway not ready after {START_TIMEOUT_SECONDS}s:\n{gateway.stderr()}")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout=STOP_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def run_gateway(
    config: Mapping[str, Any], workdir: Path, env: Mapping[str, str]
) -> AsyncIterator[GatewayProcess]:
    """Write ``config`` as TOML under ``workdir``, start ``hookline serve`` with ``env`` and
    yield once /readyz answers 200; SIGTERM (then SIGKILL) it on exit, whatever happens."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "hookline.toml"
    config_path.write_text(to_toml(config), encoding="utf-8")
    stderr_path = workdir / "gateway.stderr"
    stdout_path = workdir / "gateway.stdout"
    port = free_port()
    with stderr_path.open("wb") as stderr, stdout_path.open("wb") as stdout:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--config",
            str(config_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            cwd=ROOT,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
        gateway = GatewayProcess(
            f"http://127.0.0.1:{port}", process, stderr_path, config_path, stdout_path
        )
        try:
            await _wait_ready(gateway)
            yield gateway
        finally:
            await _stop(process)
