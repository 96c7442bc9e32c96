"""The translation of the chart's rendered pods into ``podman run`` flags (pure unit tests on
the real rendered manifests; the container tests in test_image.py rely on it)."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest

from tests.container.chart import Manifest, get, render
from tests.container.kube_to_podman import find_container, quantity_bytes, to_podman_run

FULLNAME = "hl-hookline"
DB_URL = "postgresql://hookline:pw@127.0.0.1:5432/hookline"
CONFIG = '[logging]\nformat = "json"\n'


def values(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "database": {"url": DB_URL},
        "admin": {"token": "admin-token-for-tests"},
        "secrets": {"env": {"SENDGRID_KEY": "sg-key"}},
        "config": CONFIG,
    }
    base.update(extra)
    return base


def flag_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


@pytest.fixture(scope="module")
def docs() -> list[Manifest]:
    return render(values())


def test_command_args_and_image_come_from_the_container(docs: list[Manifest], tmp_path: Path):
    """The container's command becomes the entrypoint and its args follow the image."""
    deployment = get(docs, "Deployment", FULLNAME)
    container = find_container(deployment, "hookline")
    run = to_podman_run(docs, deployment, "hookline", name="c", volume_dir=tmp_path)
    image_at = run.argv.index(container["image"])
    assert json.loads(flag_values(run.argv, "--entrypoint")[0]) == container["command"]
    assert run.argv[image_at + 1 :] == container["args"] == ["serve"]
    assert run.argv[:2] == ["run", "--detach"]
    assert flag_values(run.argv, "--network") == ["host"]


def test_env_resolves_secret_references_and_env_from(docs: list[Manifest], tmp_path: Path):
    """Plain values, secretKeyRef (database URL, admin token) and envFrom (the sources'
    secrets) all arrive as the decoded values of the rendered Secrets."""
    deployment = get(docs, "Deployment", FULLNAME)
    run = to_podman_run(docs, deployment, "hookline", name="c", volume_dir=tmp_path)
    env = dict(item.split("=", 1) for item in flag_values(run.argv, "--env"))
    assert env["HOOKLINE_DATABASE_URL"] == DB_URL
    assert env["HOOKLINE_ADMIN_TOKEN"] == "admin-token-for-tests"
    assert env["SENDGRID_KEY"] == "sg-key"
    assert env["HOOKLINE_CONFIG"] == "/etc/hookline/hookline.toml"
    assert env["HOOKLINE_PORT"] == "8000"
    assert env == run.env


def test_overrides_win_and_probes_use_the_mapped_port(docs: list[Manifest], tmp_path: Path):
    """``env_overrides`` replace the chart's values and probes resolve the named port
    through ``ports`` to the host port the process really listens on."""
    deployment = get(docs, "Deployment", FULLNAME)
    run = to_podman_run(
        docs,
        deployment,
        "hookline",
        name="c",
        volume_dir=tmp_path,
        env_overrides={"HOOKLINE_PORT": "18123"},
        ports={8000: 18123},
    )
    env_flags = flag_values(run.argv, "--env")
    assert "HOOKLINE_PORT=18123" in env_flags
    assert "HOOKLINE_PORT=8000" not in env_flags
    container = find_container(deployment, "hookline")
    assert run.probes["readiness"].path == container["readinessProbe"]["httpGet"]["path"]
    assert run.probes["liveness"].path == container["livenessProbe"]["httpGet"]["path"]
    assert {probe.port for probe in run.probes.values()} == {18123}
    assert run.probes["startup"].failure_threshold == container["startupProbe"]["failureThreshold"]


def test_security_context_becomes_user_read_only_and_capabilities(
    docs: list[Manifest], tmp_path: Path
):
    """runAsUser/runAsGroup, fsGroup, readOnlyRootFilesystem (without podman's own tmpfs
    mounts), dropped capabilities and no privilege escalation are all translated."""
    deployment = get(docs, "Deployment", FULLNAME)
    pod = deployment["spec"]["template"]["spec"]
    run = to_podman_run(docs, deployment, "hookline", name="c", volume_dir=tmp_path)
    uid = pod["securityContext"]["runAsUser"]
    gid = pod["securityContext"]["runAsGroup"]
    assert flag_values(run.argv, "--user") == [f"{uid}:{gid}"]
    assert (run.user, run.group) == (uid, gid)
    assert flag_values(run.argv, "--group-add") == [str(pod["securityContext"]["fsGroup"])]
    assert "--read-only" in run.argv and "--read-only-tmpfs=false" in run.argv
    assert flag_values(run.argv, "--cap-drop") == ["ALL"]
    assert flag_values(run.argv, "--security-opt") == ["no-new-privileges"]


def test_volumes_become_read_only_files_and_sized_tmpfs(docs: list[Manifest], tmp_path: Path):
    """The ConfigMap volume is written out and mounted read-only with the rendered TOML;
    each emptyDir becomes a tmpfs of its sizeLimit."""
    deployment = get(docs, "Deployment", FULLNAME)
    run = to_podman_run(docs, deployment, "hookline", name="c", volume_dir=tmp_path)
    config_map = get(docs, "ConfigMap", FULLNAME)
    assert run.files == {
        tmp_path / "config" / "hookline.toml": (config_map["data"]["hookline.toml"].encode(), 0o644)
    }
    assert f"{tmp_path / 'config'}:/etc/hookline:ro" in flag_values(run.argv, "--volume")
    mounts = flag_values(run.argv, "--mount")
    assert f"type=tmpfs,destination=/tmp,tmpfs-mode=0777,tmpfs-size={256 * 2**20}" in mounts
    assert any(m.startswith("type=tmpfs,destination=/var/lib/hookline,") for m in mounts)
    run.materialize()
    assert (tmp_path / "config" / "hookline.toml").read_text() == config_map["data"][
        "hookline.toml"
    ]


def test_grace_period_and_pre_stop(docs: list[Manifest], tmp_path: Path):
    """terminationGracePeriodSeconds becomes podman's stop timeout; the preStop sleep is
    reported so the caller can subtract it from the drain budget."""
    deployment = get(docs, "Deployment", FULLNAME)
    pod = deployment["spec"]["template"]["spec"]
    run = to_podman_run(docs, deployment, "hookline", name="c", volume_dir=tmp_path)
    assert flag_values(run.argv, "--stop-timeout") == [str(pod["terminationGracePeriodSeconds"])]
    assert run.grace_seconds == pod["terminationGracePeriodSeconds"]
    assert 0 < run.pre_stop_sleep_seconds < run.grace_seconds


def test_the_migrate_job_reads_its_hook_secret(docs: list[Manifest], tmp_path: Path):
    """The migrate Job's container gets the database URL from its hook-scoped Secret."""
    job = get(docs, "Job", f"{FULLNAME}-migrate")
    run = to_podman_run(docs, job, "migrate", name="m", volume_dir=tmp_path)
    assert run.env["HOOKLINE_DATABASE_URL"] == DB_URL
    assert run.argv[-1] == "migrate"


def test_statefulset_claims_become_group_owned_directories(tmp_path: Path):
    """With spool persistence the data volume is a claim template: it becomes a host
    directory owned by the pod's fsGroup and mounted read-write."""
    docs = render(values(spool={"persistence": {"enabled": True}}))
    statefulset = get(docs, "StatefulSet", FULLNAME)
    run = to_podman_run(docs, statefulset, "hookline", name="c", volume_dir=tmp_path)
    host = tmp_path / "claims" / "data"
    assert f"{host}:/var/lib/hookline:rw" in flag_values(run.argv, "--volume")
    fs_group = statefulset["spec"]["template"]["spec"]["securityContext"]["fsGroup"]
    assert run.directories == {host: (0o2775, fs_group)}


def test_external_secrets_must_be_supplied(tmp_path: Path):
    """An existingSecret the chart does not render is an error until the caller supplies it."""
    docs = render(values(database={"existingSecret": "pg", "existingSecretKey": "url"}))
    deployment = get(docs, "Deployment", FULLNAME)
    with pytest.raises(KeyError, match="'pg'"):
        to_podman_run(docs, deployment, "hookline", name="c", volume_dir=tmp_path)
    run = to_podman_run(
        docs, deployment, "hookline", name="c", volume_dir=tmp_path, external={"pg": {"url": "x"}}
    )
    assert run.env["HOOKLINE_DATABASE_URL"] == "x"


def test_run_as_non_root_is_enforced(docs: list[Manifest], tmp_path: Path):
    """runAsNonRoot with uid 0 is refused, as the kubelet would refuse the container (the
    values schema already forbids it, so the rendered manifest is edited here)."""
    deployment = copy.deepcopy(get(docs, "Deployment", FULLNAME))
    find_container(deployment, "hookline")["securityContext"]["runAsUser"] = 0
    with pytest.raises(ValueError, match="runAsNonRoot"):
        to_podman_run(docs, deployment, "hookline", name="c", volume_dir=tmp_path)


def test_quantities():
    """Kubernetes quantities convert to bytes (binary and decimal suffixes)."""
    assert quantity_bytes("2Gi") == 2 * 2**30
    assert quantity_bytes("64Mi") == 64 * 2**20
    assert quantity_bytes("500M") == 500 * 10**6
    assert quantity_bytes(1024) == 1024


def test_secret_values_are_base64_decoded(docs: list[Manifest]):
    """Guard for the fixture: the chart stores the URL base64-encoded, so a translation that
    forgot to decode would not pass test_env_resolves_secret_references_and_env_from."""
    secret = get(docs, "Secret", FULLNAME)
    assert secret["data"]["database-url"] == base64.b64encode(DB_URL.encode()).decode()


def test_init_containers_and_chart_claims_are_translated(tmp_path: Path):
    """The embedded trial's init container (migrate) is found and translated like any
    container, and the chart's own PersistentVolumeClaim volume becomes the same host
    directory for the init container and the gateway, owned by the pod's fsGroup."""
    docs = render({"database": {"embedded": {"enabled": True}}})
    deployment = get(docs, "Deployment", FULLNAME)
    init = to_podman_run(docs, deployment, "migrate", name="i", volume_dir=tmp_path)
    gateway = to_podman_run(docs, deployment, "hookline", name="g", volume_dir=tmp_path)
    host = tmp_path / "claims" / f"{FULLNAME}-data"
    fs_group = deployment["spec"]["template"]["spec"]["securityContext"]["fsGroup"]
    for run in (init, gateway):
        assert f"{host}:/var/lib/hookline:rw" in flag_values(run.argv, "--volume")
        assert run.directories == {host: (0o2775, fs_group)}
    assert init.argv[-1] == "migrate"
    assert "HOOKLINE_DATABASE_URL" not in init.env
