"""Render the Helm chart offline (helm-python-sdk, as tests/helm/test_chart.py does) and pick
out the objects the container tests start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

__all__ = ["CHART", "Manifest", "get", "render"]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "hookline"
RELEASE = "hl"
NAMESPACE = "mail"

Manifest = dict[str, Any]


def render(values: dict[str, Any] | None = None) -> list[Manifest]:
    """Every YAML document ``helm template`` would print for ``values``."""
    with helm.Chart.load(CHART) as loaded:
        rendered = loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[Manifest] = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(rendered[path]) if doc)
    return docs


def get(docs: list[Manifest], kind: str, name: str) -> Manifest:
    """The one object of ``kind`` called ``name``."""
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]
