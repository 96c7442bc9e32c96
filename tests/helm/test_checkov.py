"""checkov (the real scanner, offline) finds nothing wrong in the rendered chart: the default
install, the StatefulSet (spool persistence + HPA), worker and ingress variants, the embedded
trial and the everything-on values. The few checks that do not apply are skipped inline, on
the workload, with a reason (templates/_helpers.tpl, ``hookline.checkovSkips``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.container.chart import CHART, render

#: checkov is a real external scanner run as a process (tens of seconds): not the fast suite
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = Path(sys.executable).parent / "checkov"
EXTERNAL = {"database": {"existingSecret": "hookline-db"}}
#: the only checks the chart skips, each justified in the skip annotation's text
JUSTIFIED_SKIPS = {"CKV_K8S_11", "CKV_K8S_15", "CKV_K8S_35", "CKV_K8S_43"}

VARIANTS: dict[str, dict[str, Any]] = {
    "default": EXTERNAL,
    "statefulset": {
        **EXTERNAL,
        "spool": {"persistence": {"enabled": True}},
        "autoscaling": {"enabled": True},
    },
    "worker": {**EXTERNAL, "worker": {"enabled": True}},
    "ingress": {**EXTERNAL, "ingress": {"enabled": True}},
    "trial": {"database": {"embedded": {"enabled": True}}},
    "full": yaml.safe_load((CHART / "ci" / "full-values.yaml").read_text()),
}


def scan(directory: Path) -> dict[str, Any]:
    """checkov's JSON report for every manifest file in ``directory`` (no network: the
    guideline download is skipped)."""
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(directory),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--compact",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert result.stdout.strip(), result.stderr[-3000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("rendered")
    for name, values in VARIANTS.items():
        (directory / f"{name}.yaml").write_text(yaml.safe_dump_all(render(values)))
    return scan(directory)


def test_checkov_finds_no_failed_check_in_any_variant(report: dict[str, Any]) -> None:
    """Zero failed checks across every variant, and the scan really covered the workloads."""
    failed = [
        (c["check_id"], c["resource"], Path(c["file_path"]).name)
        for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    resources = {c["resource"].split(".")[0] for c in report["results"]["passed_checks"]}
    assert {"Deployment", "StatefulSet", "Job", "Ingress"} <= resources
    assert report["summary"]["passed"] > 500


def test_every_skip_is_one_of_the_justified_few_with_its_reason(report: dict[str, Any]) -> None:
    """Skips come only from the chart's inline annotations, name a justified check and carry
    a reason."""
    skipped = report["results"]["skipped_checks"]
    assert skipped
    assert {c["check_id"] for c in skipped} == JUSTIFIED_SKIPS
    assert all(len(c["check_result"].get("suppress_comment") or "") > 30 for c in skipped)


def test_a_real_finding_fails_the_scan(tmp_path: Path) -> None:
    """The scan is not a rubber stamp: a privileged container is reported as failed."""
    docs = render(EXTERNAL)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump_all(docs))
    failed = {c["check_id"] for c in scan(tmp_path)["results"]["failed_checks"]}
    assert "CKV_K8S_16" in failed
