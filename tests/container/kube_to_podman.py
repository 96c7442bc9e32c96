"""Translate one container of a rendered Kubernetes workload into ``podman run`` arguments.

``podman kube play`` does not work on the test machines ("pod cgroup is not set"), so the
container tests start the chart's pod the way a kubelet would, flag by flag:

- ``command`` / ``args`` -> ``--entrypoint`` (JSON form) and the arguments after the image;
- ``env`` (values, Secret and ConfigMap key references) and ``envFrom`` (whole Secrets and
  ConfigMaps, with their prefix) -> ``--env``, resolved from the rendered Secret/ConfigMap
  objects (or ``external`` ones the caller supplies, for ``existingSecret`` values); ``env``
  wins over ``envFrom`` as in Kubernetes, and ``env_overrides`` win over both;
- ConfigMap and Secret volumes -> their files written under ``volume_dir`` and mounted
  read-only; ``emptyDir`` -> a tmpfs of its ``sizeLimit`` (mode 0777, as the kubelet makes
  it); PersistentVolumeClaims (a StatefulSet's claim templates) -> a directory under
  ``volume_dir`` owned by the pod's ``fsGroup``;
- the security context (pod's, overridden by the container's): ``runAsUser``/``runAsGroup``
  -> ``--user``, ``fsGroup`` -> ``--group-add``, ``readOnlyRootFilesystem`` -> ``--read-only``
  without podman's own tmpfs mounts, ``capabilities`` -> ``--cap-drop``/``--cap-add``,
  ``allowPrivilegeEscalation: false`` -> ``no-new-privileges``; ``runAsNonRoot`` is enforced
  here, as the kubelet would refuse to start the container;
- ``terminationGracePeriodSeconds`` -> ``--stop-timeout``; HTTP probes are returned resolved
  (path and host port) for the caller to poll; a ``preStop`` sleep is returned too.

Resource limits are not translated: the machine's podman runs with cgroups disabled.
Networking is always the host's: a container port is reached on the host port ``ports`` maps
it to (identity by default), and ``env_overrides`` must make the process listen there.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["HttpProbe", "PodmanRun", "UntranslatableSpecError", "find_container", "to_podman_run"]

Manifest = dict[str, Any]

_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL_SUFFIXES = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


class UntranslatableSpecError(Exception):
    """The rendered pod uses a field this translation has no podman flag for: the test must
    fail loudly rather than run a container that differs from the manifest."""


@dataclass(frozen=True)
class HttpProbe:
    """An ``httpGet`` probe, with its port resolved to the host port."""

    path: str
    port: int
    period_seconds: int
    failure_threshold: int
    timeout_seconds: int


@dataclass(frozen=True)
class PodmanRun:
    """Everything needed to start one container of a pod with podman."""

    #: the arguments after ``podman`` (``run --detach ... IMAGE ARGS...``)
    argv: list[str]
    #: host files to write before running (ConfigMap and Secret volumes): path -> (bytes, mode)
    files: dict[Path, tuple[bytes, int]]
    #: host directories to create (PersistentVolumeClaims): path -> (mode, gid)
    directories: dict[Path, tuple[int, int | None]]
    #: "startup", "liveness", "readiness" -> the probe (only those the container declares)
    probes: dict[str, HttpProbe]
    grace_seconds: int
    pre_stop_sleep_seconds: int
    user: int
    group: int | None
    env: dict[str, str] = field(repr=False)

    def materialize(self) -> None:
        """Write the volume files and make the claim directories on the host."""
        for directory, (mode, gid) in self.directories.items():
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(mode)
            if gid is not None:
                os.chown(directory, 0, gid)
        for path, (content, mode) in self.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.parent.chmod(0o755)
            path.write_bytes(content)
            path.chmod(mode)


def find_container(workload: Manifest, name: str) -> Manifest:
    """The container (or init container) called ``name`` in a workload's pod template."""
    spec = pod_template_spec(workload)
    candidates = spec.get("containers", []) + spec.get("initContainers", [])
    found = [c for c in candidates if c["name"] == name]
    if len(found) != 1:
        workload_id = f"{workload['kind']}/{workload['metadata']['name']}"
        raise KeyError(f"{workload_id} has no container {name!r}")
    return found[0]


def pod_template_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def quantity_bytes(quantity: str | int) -> int:
    """A Kubernetes memory/storage quantity (``2Gi``, ``64Mi``, ``500M``, ``1024``) in bytes."""
    text = str(quantity)
    for suffixes in (_BINARY_SUFFIXES, _DECIMAL_SUFFIXES):
        for suffix, factor in suffixes.items():
            if text.endswith(suffix):
                return int(float(text[: -len(suffix)]) * factor)
    return int(text)


class _Objects:
    """The rendered Secrets and ConfigMaps (plus caller-supplied external Secrets), decoded."""

    def __init__(self, docs: list[Manifest], external: Mapping[str, Mapping[str, str]]) -> None:
        self.secrets: dict[str, dict[str, bytes]] = {
            name: {k: v.encode() for k, v in data.items()} for name, data in external.items()
        }
        self.config_maps: dict[str, dict[str, bytes]] = {}
        for doc in docs:
            name = doc["metadata"]["name"]
            if doc["kind"] == "Secret":
                data = {k: base64.b64decode(v) for k, v in (doc.get("data") or {}).items()}
                data.update({k: v.encode() for k, v in (doc.get("stringData") or {}).items()})
                self.secrets[name] = data
            elif doc["kind"] == "ConfigMap":
                cm = {k: v.encode() for k, v in (doc.get("data") or {}).items()}
                binary = doc.get("binaryData") or {}
                cm.update({k: base64.b64decode(v) for k, v in binary.items()})
                self.config_maps[name] = cm

    def source(self, kind: str, name: str, optional: bool = False) -> dict[str, bytes]:
        table = self.secrets if kind == "secret" else self.config_maps
        if name not in table:
            if optional:
                return {}
            raise KeyError(f"the pod needs {kind} {name!r}, which is neither rendered nor supplied")
        return table[name]

    def key(self, kind: str, ref: Manifest) -> str | None:
        data = self.source(kind, ref["name"], ref.get("optional", False))
        if ref["key"] not in data:
            if ref.get("optional", False):
                return None
            raise KeyError(f"{kind} {ref['name']!r} has no key {ref['key']!r}")
        return data[ref["key"]].decode()


def _env(container: Manifest, objects: _Objects) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        for kind, ref_key in (("secret", "secretRef"), ("configmap", "configMapRef")):
            if ref_key in source:
                ref = source[ref_key]
                data = objects.source(kind, ref["name"], ref.get("optional", False))
                env.update({prefix + k: v.decode() for k, v in data.items()})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        value_from = item.get("valueFrom", {})
        if "secretKeyRef" in value_from:
            value = objects.key("secret", value_from["secretKeyRef"])
        elif "configMapKeyRef" in value_from:
            value = objects.key("configmap", value_from["configMapKeyRef"])
        elif not value_from:
            value = ""
        else:
            raise UntranslatableSpecError(
                f"env {item['name']}: cannot translate {sorted(value_from)}"
            )
        if value is not None:
            env[item["name"]] = value
    return env


def _security(pod: Manifest, container: Manifest) -> tuple[list[str], int, int | None]:
    pod_ctx: Manifest = pod.get("securityContext") or {}
    ctx: Manifest = {**pod_ctx, **(container.get("securityContext") or {})}
    user = ctx.get("runAsUser")
    group = ctx.get("runAsGroup")
    if ctx.get("runAsNonRoot") and (user is None or int(user) == 0):
        raise ValueError("runAsNonRoot needs a numeric non-zero runAsUser to be checked here")
    flags: list[str] = []
    if user is not None:
        flags += ["--user", f"{int(user)}:{int(group)}" if group is not None else str(int(user))]
    if pod_ctx.get("fsGroup") is not None:
        flags += ["--group-add", str(int(pod_ctx["fsGroup"]))]
    for extra in pod_ctx.get("supplementalGroups", []):
        flags += ["--group-add", str(int(extra))]
    if ctx.get("readOnlyRootFilesystem"):
        flags += ["--read-only", "--read-only-tmpfs=false"]
    if ctx.get("privileged"):
        flags.append("--privileged")
    if ctx.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    capabilities = ctx.get("capabilities") or {}
    for cap in capabilities.get("drop", []):
        flags += ["--cap-drop", cap]
    for cap in capabilities.get("add", []):
        flags += ["--cap-add", cap]
    seccomp = (ctx.get("seccompProfile") or {}).get("type", "RuntimeDefault")
    if seccomp == "Unconfined":
        flags += ["--security-opt", "seccomp=unconfined"]
    elif seccomp != "RuntimeDefault":
        raise UntranslatableSpecError(f"seccompProfile {seccomp}")
    return flags, int(user if user is not None else 0), None if group is None else int(group)


def _claim_names(workload: Manifest) -> set[str]:
    return {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}


def _volumes(
    workload: Manifest, container: Manifest, objects: _Objects, volume_dir: Path
) -> tuple[list[str], dict[Path, tuple[bytes, int]], dict[Path, tuple[int, int | None]]]:
    pod = pod_template_spec(workload)
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    claims = _claim_names(workload)
    fs_group = (pod.get("securityContext") or {}).get("fsGroup")
    flags: list[str] = []
    files: dict[Path, tuple[bytes, int]] = {}
    directories: dict[Path, tuple[int, int | None]] = {}
    for mount in container.get("volumeMounts", []):
        name, target = mount["name"], mount["mountPath"]
        read_only = bool(mount.get("readOnly", False))
        if name in claims and name not in volumes:
            host = volume_dir / "claims" / name
            directories[host] = (0o2775 if fs_group is not None else 0o777, fs_group)
            flags += ["--volume", f"{host}:{target}:{'ro' if read_only else 'rw'}"]
            continue
        volume = volumes[name]
        if "emptyDir" in volume:
            options = ["type=tmpfs", f"destination={target}", "tmpfs-mode=0777"]
            size = (volume["emptyDir"] or {}).get("sizeLimit")
            if size is not None:
                options.append(f"tmpfs-size={quantity_bytes(size)}")
            flags += ["--mount", ",".join(options)]
        elif "configMap" in volume or "secret" in volume:
            kind = "configmap" if "configMap" in volume else "secret"
            spec = volume["configMap"] if kind == "configmap" else volume["secret"]
            source_name = spec["name"] if kind == "configmap" else spec["secretName"]
            data = objects.source(kind, source_name, spec.get("optional", False))
            mode = int(spec.get("defaultMode", 0o644))
            items = spec.get("items") or [{"key": k, "path": k} for k in sorted(data)]
            host = volume_dir / name
            for item in items:
                files[host / item["path"]] = (data[item["key"]], int(item.get("mode", mode)))
            flags += ["--volume", f"{host}:{target}:ro"]
        elif "persistentVolumeClaim" in volume:
            host = volume_dir / "claims" / volume["persistentVolumeClaim"]["claimName"]
            directories[host] = (0o2775 if fs_group is not None else 0o777, fs_group)
            flags += ["--volume", f"{host}:{target}:{'ro' if read_only else 'rw'}"]
        else:
            raise UntranslatableSpecError(f"volume {name}: cannot translate {sorted(volume)}")
    return flags, files, directories


def _probes(container: Manifest, ports: Mapping[int, int]) -> dict[str, HttpProbe]:
    named = {p["name"]: int(p["containerPort"]) for p in container.get("ports", []) if "name" in p}
    probes: dict[str, HttpProbe] = {}
    for kind in ("startup", "liveness", "readiness"):
        probe = container.get(f"{kind}Probe")
        if probe is None:
            continue
        if "httpGet" not in probe:
            raise UntranslatableSpecError(f"{kind} probe: only httpGet is translated")
        port = probe["httpGet"]["port"]
        container_port = named[port] if isinstance(port, str) else int(port)
        probes[kind] = HttpProbe(
            path=probe["httpGet"].get("path", "/"),
            port=ports.get(container_port, container_port),
            period_seconds=int(probe.get("periodSeconds", 10)),
            failure_threshold=int(probe.get("failureThreshold", 3)),
            timeout_seconds=int(probe.get("timeoutSeconds", 1)),
        )
    return probes


def _pre_stop_sleep(container: Manifest) -> int:
    pre_stop = (container.get("lifecycle") or {}).get("preStop") or {}
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"]["seconds"])
    command = (pre_stop.get("exec") or {}).get("command") or []
    if len(command) == 2 and command[0] == "sleep":
        return int(command[1])
    return 0


def to_podman_run(
    docs: list[Manifest],
    workload: Manifest,
    container_name: str,
    *,
    name: str,
    volume_dir: Path,
    env_overrides: Mapping[str, str] | None = None,
    ports: Mapping[int, int] | None = None,
    external: Mapping[str, Mapping[str, str]] | None = None,
) -> PodmanRun:
    """The ``podman run`` for container ``container_name`` of ``workload`` (a rendered
    Deployment, StatefulSet or Job among ``docs``), named ``name``, detached, host network."""
    pod = pod_template_spec(workload)
    container = find_container(workload, container_name)
    objects = _Objects(docs, external or {})
    env = _env(container, objects)
    env.update(env_overrides or {})
    security, user, group = _security(pod, container)
    volume_flags, files, directories = _volumes(workload, container, objects, volume_dir)
    grace = int(pod.get("terminationGracePeriodSeconds", 30))
    argv = ["run", "--detach", "--name", name, "--network", "host", "--stop-timeout", str(grace)]
    argv += security
    argv += volume_flags
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
    if "command" in container:
        argv += ["--entrypoint", json.dumps(container["command"])]
    argv.append(container["image"])
    argv += [str(arg) for arg in container.get("args", [])]
    return PodmanRun(
        argv=argv,
        files=files,
        directories=directories,
        probes=_probes(container, ports or {}),
        grace_seconds=grace,
        pre_stop_sleep_seconds=_pre_stop_sleep(container),
        user=user,
        group=group,
        env=env,
    )
