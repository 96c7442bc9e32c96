"""The layering of the code (docs/architecture.md, "Layers") holds: the import-linter
contracts of pyproject.toml pass on the tree as it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contracts_hold() -> None:
    """``lint-imports`` keeps every contract: handlers import no service, ingest, delivery
    and the read side do not import each other, and nothing low imports something high
    (a new upward import makes this fail with the offending line)."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
