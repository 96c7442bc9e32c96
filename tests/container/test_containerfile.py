"""Facts about the Containerfile that the chart and the build rely on (pure file checks;
test_image.py checks the built image itself)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = (ROOT / "Containerfile").read_text()


def instructions(name: str) -> list[str]:
    return re.findall(rf"^{name}\s+(.+)$", CONTAINERFILE, re.MULTILINE)


def test_uv_is_pinned_as_the_makefile_pins_it() -> None:
    """The builder's default uv version is the Makefile's UV_VERSION (make image also passes
    it explicitly), so the image resolves uv.lock with the same uv as development."""
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"^UV_VERSION\s*:=\s*(\S+)$", makefile, re.MULTILINE)
    assert pinned is not None
    assert f"UV_VERSION={pinned.group(1)}" in instructions("ARG")


def test_runtime_runs_hookline_serve_as_a_numeric_non_root_user() -> None:
    """The last stage runs `hookline serve` (ENTRYPOINT + CMD, exec form) as a numeric
    non-root user, which the chart's runAsNonRoot can verify without /etc/passwd."""
    runtime = CONTAINERFILE.split("AS runtime", 1)[1]
    user = re.findall(r"^USER\s+(\S+)$", runtime, re.MULTILINE)
    assert len(user) == 1
    uid, _, gid = user[0].partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or gid.isdigit())
    assert json.loads(instructions("ENTRYPOINT")[-1]) == ["hookline"]
    assert json.loads(instructions("CMD")[-1]) == ["serve"]


def test_builder_installs_only_the_locked_runtime_dependencies() -> None:
    """uv sync runs frozen (uv.lock as is) without the dev group, and the runtime stage
    installs no compiler or build tool."""
    syncs = re.findall(r"uv sync ([^\n\\]+)", CONTAINERFILE)
    assert syncs and all("--frozen" in s and "--no-dev" in s for s in syncs)
    runtime = CONTAINERFILE.split("AS runtime", 1)[1]
    for tool in ("gcc", "build-essential", "python3-pip", "python3-dev", "make"):
        assert not re.search(rf"\b{re.escape(tool)}\b", runtime), tool


def test_builder_copies_every_package_the_wheel_ships() -> None:
    """Each package the wheel ships (pyproject's hatch ``packages``, e.g. ``hookline_testing``
    that ``hookline sign`` / ``demo`` use) is copied into the builder before the project is
    installed, so the image holds it."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    builder = CONTAINERFILE.split("AS runtime", 1)[0]
    assert "hookline_testing" in packages
    for package in packages:
        assert f"COPY {package} ./{package}\n" in builder, package
