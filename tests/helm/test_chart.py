"""The Helm chart (helm/hookline), rendered and linted offline with the real Helm SDK.

Helm runs in-process through helm-python-sdk (Helm's Go SDK behind a C ABI: no helm binary,
no cluster). Every rendered built-in object is validated against the Kubernetes OpenAPI
schemas bundled with kubernetes-validate; the Prometheus Operator objects (ServiceMonitor,
PrometheusRule), which those schemas do not cover, are checked against the structure the
operator's CRDs require. The rest asserts the facts an operator relies on: ports, probes,
security context, the worker split, scraping, alerts, hooks and the values schema.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from gateway.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "hookline"
ALERTS = ROOT / "grafana" / "alerts"
FULL_VALUES = CHART / "ci" / "full-values.yaml"

RELEASE = "hl"
NAMESPACE = "mail"
FULLNAME = "hl-hookline"
WORKER = "hl-hookline-worker"
#: the Kubernetes version Helm's offline render assumes (Capabilities.KubeVersion)
KUBE_VERSION = "1.36.0"
#: API groups kubernetes-validate has no schema for; validated structurally below
CRD_GROUPS = ("monitoring.coreos.com/",)
#: the one value an install must give: an external database (the chart fails without one)
REQUIRED: dict[str, Any] = {"database": {"existingSecret": "hookline-db"}}

Manifest = dict[str, Any]


# --------------------------------------------------------------------------- helpers


def render(values: dict[str, Any] | None = None, chart: Path = CHART) -> list[Manifest]:
    """Render ``chart`` as ``helm template`` would and parse every YAML document; ``values``
    without a ``database`` key get REQUIRED's."""
    with helm.Chart.load(chart) as loaded:
        rendered = loaded.render(
            {**REQUIRED, **(values or {})}, name=RELEASE, namespace=NAMESPACE, is_install=True
        )
    docs: list[Manifest] = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(rendered[path]) if doc)
    return docs


def notes(values: dict[str, Any] | None = None) -> str:
    """The rendered NOTES.txt (``values`` completed with REQUIRED as in ``render``)."""
    with helm.Chart.load(CHART) as loaded:
        rendered = loaded.render(
            {**REQUIRED, **(values or {})}, name=RELEASE, namespace=NAMESPACE, is_install=True
        )
    return rendered["hookline/templates/NOTES.txt"]


def full_values() -> dict[str, Any]:
    """The values file that switches every feature on (a fresh copy per call)."""
    loaded: dict[str, Any] = yaml.safe_load(FULL_VALUES.read_text())
    return loaded


def get(docs: list[Manifest], kind: str, name: str) -> Manifest:
    """The one object of ``kind`` called ``name``."""
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def kinds(docs: list[Manifest]) -> set[str]:
    return {d["kind"] for d in docs}


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def container(workload: Manifest, name: str) -> Manifest:
    found: list[Manifest] = [c for c in pod_spec(workload)["containers"] if c["name"] == name]
    assert len(found) == 1, f"expected one container {name}"
    return found[0]


def env(c: Manifest) -> dict[str, Any]:
    """A container's env as {name: value or valueFrom}."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def workloads(docs: list[Manifest]) -> list[Manifest]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def matches(selector: Manifest, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels + matchExpressions)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def alert_rule_groups(directory: Path) -> list[Manifest]:
    """The rule groups of every Prometheus rule file in ``directory`` (promtool test files,
    which have no ``groups`` key, are not rule files), in the order Helm's Files.Glob sees
    them: sorted by path."""
    groups: list[Manifest] = []
    for path in sorted(p for p in directory.iterdir() if p.suffix in (".yml", ".yaml")):
        doc = yaml.safe_load(path.read_text()) or {}
        groups.extend(doc.get("groups", []))
    return groups


@pytest.fixture(scope="module")
def default_docs() -> list[Manifest]:
    return render()


@pytest.fixture(scope="module")
def full_docs() -> list[Manifest]:
    return render(full_values())


@pytest.fixture
def chart_copy(tmp_path: Path) -> Iterator[Path]:
    """A private copy of the chart whose files/alerts is a real directory (initially empty)."""
    copy_dir = tmp_path / "hookline"
    shutil.copytree(CHART, copy_dir, symlinks=True, ignore=shutil.ignore_patterns("alerts"))
    (copy_dir / "files" / "alerts").mkdir(parents=True)
    yield copy_dir


# --------------------------------------------------------------------------- CRD structure

_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?"
    r"(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
_META = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
        "namespace": {"type": "string", "minLength": 1},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
#: the parts of monitoring.coreos.com/v1 ServiceMonitor the operator requires or the chart sets
SERVICE_MONITOR_SCHEMA: Manifest = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": _META,
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "matchExpressions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["key", "operator"],
                                "properties": {
                                    "key": {"type": "string"},
                                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                                    "values": {"type": "array", "items": {"type": "string"}},
                                },
                            },
                        },
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string", "minLength": 1},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                            "honorLabels": {"type": "boolean"},
                            "relabelings": {"type": "array", "items": {"type": "object"}},
                            "metricRelabelings": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                },
            },
        },
    },
}
#: monitoring.coreos.com/v1 PrometheusRule, i.e. a Prometheus rule file under spec
PROMETHEUS_RULE_SCHEMA: Manifest = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": _META,
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": _DURATION,
                            "limit": {"type": "integer"},
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["expr"],
                                    "additionalProperties": False,
                                    "oneOf": [
                                        {"required": ["alert"]},
                                        {"required": ["record"]},
                                    ],
                                    "properties": {
                                        "alert": {"type": "string", "minLength": 1},
                                        "record": {"type": "string", "minLength": 1},
                                        "expr": {
                                            "type": ["string", "integer"],
                                            "minLength": 1,
                                        },
                                        "for": _DURATION,
                                        "keep_firing_for": _DURATION,
                                        "labels": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                        "annotations": {
                                            "type": "object",
                                            "additionalProperties": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}
CRD_SCHEMAS = {"ServiceMonitor": SERVICE_MONITOR_SCHEMA, "PrometheusRule": PROMETHEUS_RULE_SCHEMA}


def validate_crd(doc: Manifest) -> None:
    """Structural validation of a Prometheus Operator object (raises on a violation)."""
    jsonschema.Draft7Validator(CRD_SCHEMAS[doc["kind"]]).validate(doc)
    if doc["kind"] == "PrometheusRule":
        names = [g["name"] for g in doc["spec"]["groups"]]
        assert len(names) == len(set(names)), f"duplicate rule group names: {names}"


# --------------------------------------------------------------------------- lint + schemas


@pytest.mark.parametrize("values_name", ["default", "full"])
def test_chart_lints_without_warnings(values_name: str) -> None:
    """`helm lint --strict` (values schema included) finds no warning or error."""
    values = REQUIRED if values_name == "default" else full_values()
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


@pytest.mark.parametrize("values_name", ["default", "full"])
def test_every_builtin_object_matches_the_kubernetes_openapi_schema(
    values_name: str, default_docs: list[Manifest], full_docs: list[Manifest]
) -> None:
    """Each rendered core object validates (strict: unknown fields rejected) against the
    Kubernetes schema, so `kubectl apply` would accept it."""
    docs = default_docs if values_name == "default" else full_docs
    validated = set()
    for doc in docs:
        if doc["apiVersion"].startswith(CRD_GROUPS):
            continue
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        validated.add(doc["kind"])
    expected = {
        "ConfigMap",
        "Deployment",
        "Job",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    }
    if values_name == "full":
        expected |= {"HorizontalPodAutoscaler", "Ingress", "Secret", "StatefulSet"}
    assert validated == expected


def test_prometheus_operator_objects_have_the_crd_structure(full_docs: list[Manifest]) -> None:
    """ServiceMonitors and the PrometheusRule carry every field the operator's CRDs require,
    with the right types (durations, selectors, rule entries)."""
    crds = [d for d in full_docs if d["apiVersion"].startswith(CRD_GROUPS)]
    assert sorted(d["kind"] for d in crds) == ["PrometheusRule", "ServiceMonitor", "ServiceMonitor"]
    for doc in crds:
        validate_crd(doc)


def test_crd_structure_check_rejects_a_malformed_rule() -> None:
    """The structural check is not a rubber stamp: a rule without `expr` or with a bad
    duration fails it."""
    rule: Manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "x"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0"}]}]},
    }
    validate_crd(rule)
    no_expr = copy.deepcopy(rule)
    del no_expr["spec"]["groups"][0]["rules"][0]["expr"]
    bad_for = copy.deepcopy(rule)
    bad_for["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    for broken in (no_expr, bad_for):
        with pytest.raises(jsonschema.ValidationError):
            validate_crd(broken)


def test_values_schema_is_a_valid_json_schema_that_accepts_the_defaults() -> None:
    """values.schema.json is itself valid draft-07 and accepts values.yaml and the full file."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(yaml.safe_load((CHART / "values.yaml").read_text()))
    with helm.Chart.load(CHART) as loaded:
        loaded.validate_schema(full_values())


@pytest.mark.parametrize(
    ("bad_values", "where"),
    [
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"replicaCount": "three"}, "/replicaCount"),
        ({"replicas": 3}, "replicas"),
        ({"terminationGracePeriodSeconds": 5}, "/terminationGracePeriodSeconds"),
        ({"securityContext": {"runAsNonRoot": False}}, "/securityContext/runAsNonRoot"),
        ({"database": {"url": "mysql://db/hookline"}}, "/database/url"),
        ({"secrets": {"env": {"not-an-env-name": "x"}}}, "not-an-env-name"),
        ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "/metrics/serviceMonitor"),
    ],
)
def test_values_schema_rejects_bad_values(bad_values: dict[str, Any], where: str) -> None:
    """A wrong type, an unknown key, a root container or a too-short grace period is refused
    before anything renders, and the message points at the offending key."""
    with helm.Chart.load(CHART) as loaded:
        with pytest.raises(helm.HelmValuesError) as schema_error:
            loaded.validate_schema(bad_values)
        assert where in str(schema_error.value)
        with pytest.raises(helm.HelmValuesError):
            loaded.render(bad_values, name=RELEASE, namespace=NAMESPACE)


# --------------------------------------------------------------------------- defaults


def test_without_a_database_the_chart_refuses_to_render() -> None:
    """The default is an external PostgreSQL: with none given (and no explicit trial), the
    render fails and says which values to set."""
    with (
        helm.Chart.load(CHART) as loaded,
        pytest.raises(helm.HelmRenderError, match=r"database\.existingSecret") as error,
    ):
        loaded.render({}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    assert "database.embedded.enabled=true" in str(error.value)


def test_embedded_and_external_database_together_are_refused() -> None:
    """Asking for the trial database and an external one at once is an error, not a guess."""
    with pytest.raises(helm.HelmRenderError, match="conflicts"):
        render({"database": {"url": "postgresql://h/db", "embedded": {"enabled": True}}})


def test_default_install_uses_the_external_database(default_docs: list[Manifest]) -> None:
    """With only the database Secret given: the gateway reads the URL from it, rolls
    without downtime, and the migrate Job (not an init container) prepares the schema."""
    gateway = get(default_docs, "Deployment", FULLNAME)
    assert gateway["spec"]["replicas"] == 1
    assert gateway["spec"]["strategy"]["type"] == "RollingUpdate"
    assert env(container(gateway, "hookline"))["HOOKLINE_DATABASE_URL"] == {
        "secretKeyRef": {"name": "hookline-db", "key": "database-url"}
    }
    assert "initContainers" not in pod_spec(gateway)
    assert get(default_docs, "Job", f"{FULLNAME}-migrate")
    assert "TRIAL ONLY" not in notes()


def test_embedded_trial_is_one_pod_on_a_persistent_volume() -> None:
    """database.embedded.enabled: one recreated gateway pod (never two PostgreSQL on one
    data dir) whose data directory is a PersistentVolumeClaim, migrations as an init
    container, no Job; NOTES says it is a trial."""
    trial = {"database": {"embedded": {"enabled": True}}}
    docs = render(trial)
    gateway = get(docs, "Deployment", FULLNAME)
    assert gateway["spec"]["replicas"] == 1
    assert gateway["spec"]["strategy"] == {"type": "Recreate"}
    assert "HOOKLINE_DATABASE_URL" not in env(container(gateway, "hookline"))
    init = pod_spec(gateway)["initContainers"]
    assert [(c["name"], c["args"]) for c in init] == [("migrate", ["migrate"])]
    data = next(v for v in pod_spec(gateway)["volumes"] if v["name"] == "data")
    assert data["persistentVolumeClaim"] == {"claimName": f"{FULLNAME}-data"}
    claim = get(docs, "PersistentVolumeClaim", f"{FULLNAME}-data")
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert "Job" not in kinds(docs)
    assert "TRIAL ONLY" in notes(trial)
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


@pytest.mark.parametrize(
    "risky",
    [{"replicaCount": 2}, {"worker": {"enabled": True}}, {"autoscaling": {"enabled": True}}],
)
def test_embedded_database_refuses_to_scale_out(risky: dict[str, Any]) -> None:
    """Several pods on the embedded database would each write to a private PostgreSQL: the
    chart fails the render with an explanation instead."""
    with pytest.raises(helm.HelmRenderError, match="embedded PostgreSQL"):
        render({"database": {"embedded": {"enabled": True}}, **risky})


# --------------------------------------------------------------------------- gateway pod


@pytest.mark.parametrize("values_name", ["default", "full"])
def test_gateway_serves_http_8000_with_healthz_and_readyz_probes(
    values_name: str, default_docs: list[Manifest], full_docs: list[Manifest]
) -> None:
    """The gateway listens on 8000 (named http), the Service routes to it, liveness and
    startup probe /healthz and readiness probes /readyz on that port."""
    docs = default_docs if values_name == "default" else full_docs
    kind = "Deployment" if values_name == "default" else "StatefulSet"
    c = container(get(docs, kind, FULLNAME), "hookline")
    assert c["args"] == ["serve"]
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert env(c)["HOOKLINE_PORT"] == "8000"
    assert env(c)["HOOKLINE_HOST"] == "0.0.0.0"
    probes = {
        p: (c[p]["httpGet"]["path"], c[p]["httpGet"]["port"])
        for p in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": ("/healthz", "http"),
        "livenessProbe": ("/healthz", "http"),
        "readinessProbe": ("/readyz", "http"),
    }
    service = get(docs, "Service", FULLNAME)
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]


@pytest.mark.parametrize("values_name", ["default", "full"])
def test_every_pod_is_non_root_read_only_and_capability_free(
    values_name: str, default_docs: list[Manifest], full_docs: list[Manifest]
) -> None:
    """Every container of every workload (gateway, worker, migration Job, init containers)
    runs as non-root with a read-only root filesystem, no privilege escalation, all
    capabilities dropped, and requests plus a memory limit; the data dir and /tmp are the
    only writable mounts and are backed by a volume."""
    docs = default_docs if values_name == "default" else full_docs
    checked = 0
    for workload in workloads(docs):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] > 0
        assert spec["automountServiceAccountToken"] is False
        volume_names = {v["name"] for v in spec["volumes"]}
        claim_names = {
            t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])
        }
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert c["resources"]["requests"]["cpu"]
            assert c["resources"]["requests"]["memory"]
            assert c["resources"]["limits"]["memory"]
            writable = {
                m["mountPath"]: m["name"] for m in c["volumeMounts"] if not m.get("readOnly")
            }
            assert set(writable) == {"/var/lib/hookline", "/tmp"}
            assert set(writable.values()) <= volume_names | claim_names
            assert env(c)["HOOKLINE_DATA_DIR"] == "/var/lib/hookline"
            checked += 1
    assert checked == (2 if values_name == "default" else 3)


@pytest.mark.parametrize("values_name", ["default", "full"])
def test_gateway_drains_before_it_stops(
    values_name: str, default_docs: list[Manifest], full_docs: list[Manifest]
) -> None:
    """A preStop sleep lets endpoints drain before SIGTERM, and the grace period (30s+)
    leaves room after it for in-flight requests and the last batch flush."""
    docs = default_docs if values_name == "default" else full_docs
    kind = "Deployment" if values_name == "default" else "StatefulSet"
    gateway = get(docs, kind, FULLNAME)
    sleep = container(gateway, "hookline")["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = pod_spec(gateway)["terminationGracePeriodSeconds"]
    assert sleep >= 5
    assert grace >= 30
    assert grace - sleep >= 30


def test_prestop_falls_back_to_exec_sleep_before_kubernetes_1_30(chart_copy: Path) -> None:
    """Clusters older than 1.30 have no native sleep action: the chart then uses
    `exec sleep` (checked by rendering with a template that pins the capability)."""
    helpers = chart_copy / "templates" / "_helpers.tpl"
    helpers.write_text(
        helpers.read_text().replace(
            'semverCompare ">=1.30-0" .Capabilities.KubeVersion.Version',
            'semverCompare ">=1.30-0" "v1.29.4"',
        )
    )
    gateway = get(render(chart=chart_copy), "Deployment", FULLNAME)
    pre_stop = container(gateway, "hookline")["lifecycle"]["preStop"]
    assert pre_stop == {"exec": {"command": ["sleep", "10"]}}


def test_config_map_holds_the_toml_and_a_change_rolls_the_pods() -> None:
    """The TOML from values lands, parseable, at the path HOOKLINE_CONFIG names, and the pod
    template's checksum/config changes with it (so `helm upgrade` restarts the pods)."""
    first = render()
    changed = render({"config": '[logging]\nlevel = "debug"\n'})
    config_map = get(changed, "ConfigMap", FULLNAME)
    assert tomllib.loads(config_map["data"]["hookline.toml"]) == {"logging": {"level": "debug"}}
    gateway = get(changed, "Deployment", FULLNAME)
    c = container(gateway, "hookline")
    mount = next(m for m in c["volumeMounts"] if m["name"] == "config")
    volume = next(v for v in pod_spec(gateway)["volumes"] if v["name"] == "config")
    assert env(c)["HOOKLINE_CONFIG"] == f"{mount['mountPath']}/hookline.toml"
    assert volume["configMap"] == {
        "name": FULLNAME,
        "items": [{"key": "hookline.toml", "path": "hookline.toml"}],
    }

    def checksum(docs: list[Manifest]) -> str:
        annotations = get(docs, "Deployment", FULLNAME)["spec"]["template"]["metadata"]
        return str(annotations["annotations"]["checksum/config"])

    assert checksum(first) != checksum(changed)
    assert checksum(first) == checksum(render())


def test_a_new_chart_managed_secret_rolls_the_pods() -> None:
    """checksum/secret follows the chart-managed Secrets, so rotating `admin.token` or a
    `secrets.env` value through `helm upgrade` restarts the pods that read them."""
    base = {"database": {"existingSecret": "db"}}

    def checksum(extra: dict[str, Any]) -> str:
        docs = render({**base, **extra})
        template = get(docs, "Deployment", FULLNAME)["spec"]["template"]
        return str(template["metadata"]["annotations"]["checksum/secret"])

    first = checksum({"admin": {"token": "one"}})
    assert first == checksum({"admin": {"token": "one"}})
    assert first != checksum({"admin": {"token": "two"}})
    assert first != checksum({"admin": {"token": "one"}, "secrets": {"env": {"K": "v"}}})


def test_default_config_parses_as_toml(default_docs: list[Manifest]) -> None:
    """The shipped default config is valid TOML with JSON logs for log shippers."""
    toml = tomllib.loads(get(default_docs, "ConfigMap", FULLNAME)["data"]["hookline.toml"])
    assert toml["logging"]["format"] == "json"


def test_secrets_reach_pods_only_through_secret_objects(full_docs: list[Manifest]) -> None:
    """The admin token, database URL and `*_env` secrets come from Secrets (secretKeyRef /
    envFrom); their values appear in no ConfigMap, pod spec or annotation."""
    values = full_values()
    token = values["admin"]["token"]
    sendgrid_key = values["secrets"]["env"]["SENDGRID_MARKETING_KEY"]
    for doc in full_docs:
        if doc["kind"] != "Secret":
            dumped = yaml.safe_dump(doc)
            assert token not in dumped
            assert sendgrid_key not in dumped
    secret = get(full_docs, "Secret", FULLNAME)
    assert base64.b64decode(secret["data"]["admin-token"]).decode() == token
    env_secret = get(full_docs, "Secret", f"{FULLNAME}-env")
    assert base64.b64decode(env_secret["data"]["SENDGRID_MARKETING_KEY"]).decode() == sendgrid_key

    gateway = container(get(full_docs, "StatefulSet", FULLNAME), "hookline")
    assert env(gateway)["HOOKLINE_ADMIN_TOKEN"] == {
        "secretKeyRef": {"name": FULLNAME, "key": "admin-token"}
    }
    assert env(gateway)["HOOKLINE_DATABASE_URL"] == {
        "secretKeyRef": {"name": "hookline-db", "key": "url"}
    }
    worker = container(get(full_docs, "Deployment", WORKER), "worker")
    for c in (gateway, worker):
        assert {"secretRef": {"name": f"{FULLNAME}-env"}} in c["envFrom"]
    assert "HOOKLINE_ADMIN_TOKEN" not in env(worker)


# --------------------------------------------------------------------------- worker split


def test_worker_deployment_takes_over_the_background_workers(full_docs: list[Manifest]) -> None:
    """With worker.enabled the gateway runs with HOOKLINE_SERVER_WORKERS=false and a
    `hookline worker` Deployment serves /healthz and /metrics on 8001."""
    gateway = container(get(full_docs, "StatefulSet", FULLNAME), "hookline")
    assert env(gateway)["HOOKLINE_SERVER_WORKERS"] == "false"
    worker_deployment = get(full_docs, "Deployment", WORKER)
    assert worker_deployment["spec"]["replicas"] == 2
    worker = container(worker_deployment, "worker")
    assert worker["args"] == ["worker"]
    assert worker["ports"] == [{"name": "metrics", "containerPort": 8001, "protocol": "TCP"}]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert worker[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert "HOOKLINE_SERVER_WORKERS" not in env(worker)
    assert env(worker)["OTEL_SERVICE_NAME"] == WORKER
    assert env(gateway)["OTEL_SERVICE_NAME"] == FULLNAME


def test_without_the_worker_deployment_the_gateway_keeps_its_workers(
    default_docs: list[Manifest],
) -> None:
    """By default the outbox workers run inside `hookline serve`: no override is set."""
    gateway = container(get(default_docs, "Deployment", FULLNAME), "hookline")
    assert "HOOKLINE_SERVER_WORKERS" not in env(gateway)
    assert not [d for d in default_docs if d["metadata"]["name"] == WORKER]


# --------------------------------------------------------------------------- scale + disruption


def test_spool_persistence_gives_each_gateway_pod_its_own_volume(
    full_docs: list[Manifest],
) -> None:
    """With spool.persistence the gateway is a StatefulSet with a PVC template mounted at
    the data dir and a headless governing Service; there is no gateway Deployment."""
    assert not [
        d for d in full_docs if d["kind"] == "Deployment" and d["metadata"]["name"] == FULLNAME
    ]
    sts = get(full_docs, "StatefulSet", FULLNAME)
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert claim["spec"]["storageClassName"] == "standard"
    assert "data" not in {v["name"] for v in pod_spec(sts)["volumes"]}
    headless = get(full_docs, "Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert "replicas" not in sts["spec"]  # the HPA owns the replica count


def test_hpa_scales_the_gateway_on_cpu_and_request_rate(full_docs: list[Manifest]) -> None:
    """The HPA targets the gateway workload, on CPU utilisation and on the per-pod request
    rate from the custom metrics API."""
    hpa = get(full_docs, "HorizontalPodAutoscaler", FULLNAME)["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": FULLNAME,
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 12)
    by_type = {m["type"]: m for m in hpa["metrics"]}
    assert by_type["Resource"]["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 65},
    }
    assert by_type["Pods"]["pods"] == {
        "metric": {"name": "hookline_webhook_requests_per_second"},
        "target": {"type": "AverageValue", "averageValue": "150"},
    }


def test_hpa_on_a_deployment_with_cpu_only() -> None:
    """Without persistence the HPA targets the Deployment; request rate is opt-in."""
    values = {"database": {"existingSecret": "db"}, "autoscaling": {"enabled": True}}
    docs = render(values)
    hpa = get(docs, "HorizontalPodAutoscaler", FULLNAME)["spec"]
    assert hpa["scaleTargetRef"]["kind"] == "Deployment"
    assert [m["type"] for m in hpa["metrics"]] == ["Resource"]
    assert "replicas" not in get(docs, "Deployment", FULLNAME)["spec"]


def test_disruption_budgets_select_their_own_pods(full_docs: list[Manifest]) -> None:
    """Each PodDisruptionBudget selects exactly the pods of its workload."""
    gateway = get(full_docs, "StatefulSet", FULLNAME)
    worker = get(full_docs, "Deployment", WORKER)
    for name, workload, other in ((FULLNAME, gateway, worker), (WORKER, worker, gateway)):
        pdb = get(full_docs, "PodDisruptionBudget", name)["spec"]
        assert matches(pdb["selector"], workload["spec"]["template"]["metadata"]["labels"])
        assert not matches(pdb["selector"], other["spec"]["template"]["metadata"]["labels"])
    assert get(full_docs, "PodDisruptionBudget", FULLNAME)["spec"]["minAvailable"] == 1
    assert get(full_docs, "PodDisruptionBudget", WORKER)["spec"]["maxUnavailable"] == 1


# --------------------------------------------------------------------------- monitoring


def test_service_monitors_scrape_metrics_on_the_right_ports(full_docs: list[Manifest]) -> None:
    """Following each ServiceMonitor as the operator does (selector -> Service -> named
    port -> container port) lands on /metrics at 8000 for the gateway and 8001 for the
    worker, with job="hookline" and job="hookline-worker" whatever the release is called
    (the names grafana/alerts and its promtool tests use); the headless Service is not
    scraped twice."""
    services = [d for d in full_docs if d["kind"] == "Service"]
    expected = {
        FULLNAME: ("StatefulSet", FULLNAME, 8000, "hookline"),
        WORKER: ("Deployment", WORKER, 8001, "hookline-worker"),
    }
    for name, (kind, workload_name, container_port, job) in expected.items():
        monitor = get(full_docs, "ServiceMonitor", name)
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        job_label = monitor["spec"]["jobLabel"]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        selected = [
            s for s in services if matches(monitor["spec"]["selector"], s["metadata"]["labels"])
        ]
        assert [s["metadata"]["name"] for s in selected] == [name]
        service = selected[0]
        assert service["metadata"]["labels"][job_label] == job
        (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
        workload = get(full_docs, kind, workload_name)
        assert matches(
            {"matchLabels": service["spec"]["selector"]},
            workload["spec"]["template"]["metadata"]["labels"],
        )
        ports = {
            p["name"]: p["containerPort"]
            for c in pod_spec(workload)["containers"]
            for p in c["ports"]
        }
        assert ports[port["targetPort"]] == container_port


def test_prometheus_rule_embeds_the_grafana_alert_groups(full_docs: list[Manifest]) -> None:
    """The PrometheusRule holds exactly the rule groups of grafana/alerts/*.yml, unchanged
    (Prometheus templating such as {{ $labels.x }} included)."""
    expected = alert_rule_groups(ALERTS)
    assert expected, "grafana/alerts holds no rule groups"
    rule = get(full_docs, "PrometheusRule", FULLNAME)
    assert rule["spec"]["groups"] == expected
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_chart_reads_alerts_through_a_symlink_to_grafana_alerts() -> None:
    """files/alerts is a symlink to grafana/alerts, so the chart cannot drift from the
    promtool-tested rules: Helm follows it and ships the same bytes (the promtool tests in
    subdirectories stay out, by .helmignore)."""
    link = CHART / "files" / "alerts"
    assert link.is_symlink()
    assert link.resolve() == ALERTS.resolve()
    with helm.Chart.load(CHART) as loaded:
        files = {f["name"]: f["data"] for f in loaded.files if f["name"].startswith("files/")}
    on_disk = {f"files/alerts/{p.name}": p.read_text() for p in ALERTS.iterdir() if p.is_file()}
    assert on_disk
    assert files == on_disk


def test_packaged_chart_carries_the_alerts(tmp_path: Path) -> None:
    """`helm package` resolves the symlink: the .tgz renders the same PrometheusRule
    without the repository around it, and leaves the CI values file out."""
    archive = Path(helm.package(CHART, destination=tmp_path))
    assert archive.name == "hookline-0.2.0.tgz"
    with helm.Chart.load_archive(archive.read_bytes()) as packaged:
        names = {f["name"] for f in packaged.files}
        rendered = packaged.render(full_values(), name=RELEASE, namespace=NAMESPACE)
    alert_files = {f"files/alerts/{p.name}" for p in ALERTS.iterdir() if p.is_file()}
    assert {n for n in names if n.startswith("files/")} == alert_files
    assert not any(n.startswith("ci/") for n in names)
    rule = yaml.safe_load(rendered["hookline/templates/prometheusrule.yaml"])
    assert rule["spec"]["groups"] == alert_rule_groups(ALERTS)


def test_prometheus_rule_skips_promtool_tests_and_appends_extra_groups(chart_copy: Path) -> None:
    """Only rule files (top-level `groups`) are embedded, in file order; promtool test
    files are skipped; extraGroups are appended after the bundled groups."""
    alerts = chart_copy / "files" / "alerts"
    (alerts / "a.yml").write_text(
        "groups:\n  - name: first\n    rules:\n      - alert: A\n        expr: up == 0\n"
        "        annotations:\n          summary: '{{ $labels.instance }} is down'\n"
    )
    (alerts / "b.yaml").write_text(
        "groups:\n  - name: second\n    rules:\n      - record: job:up:sum\n"
        "        expr: sum by (job) (up)\n"
    )
    (alerts / "a_test.yml").write_text("rule_files: [a.yml]\ntests: []\n")
    extra = {"name": "site", "rules": [{"alert": "Extra", "expr": "vector(1)"}]}
    values = {"metrics": {"prometheusRule": {"enabled": True, "extraGroups": [extra]}}}
    rule = get(render(values, chart=chart_copy), "PrometheusRule", FULLNAME)
    validate_crd(rule)
    assert [g["name"] for g in rule["spec"]["groups"]] == ["first", "second", "site"]
    annotation = rule["spec"]["groups"][0]["rules"][0]["annotations"]["summary"]
    assert annotation == "{{ $labels.instance }} is down"


def test_prometheus_rule_without_any_group_fails_loudly(chart_copy: Path) -> None:
    """An enabled PrometheusRule with nothing to put in it is a mistake, not an empty
    object; a rule file that is not YAML is named in the error."""
    values = {"metrics": {"prometheusRule": {"enabled": True}}}
    with pytest.raises(helm.HelmRenderError, match="no rule groups"):
        render(values, chart=chart_copy)
    (chart_copy / "files" / "alerts" / "broken.yml").write_text("groups: [\n")
    with pytest.raises(helm.HelmRenderError, match=r"broken\.yml"):
        render(values, chart=chart_copy)


# --------------------------------------------------------------------------- hooks + network


def test_migration_job_runs_before_install_and_upgrade(full_docs: list[Manifest]) -> None:
    """With an external database, `hookline migrate` runs as a pre-install/pre-upgrade hook
    Job reading the URL from the existing Secret; the gateway has no init container."""
    job = get(full_docs, "Job", f"{FULLNAME}-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    c = container(job, "migrate")
    assert c["args"] == ["migrate"]
    assert env(c)["HOOKLINE_DATABASE_URL"] == {
        "secretKeyRef": {"name": "hookline-db", "key": "url"}
    }
    assert "HOOKLINE_CONFIG" not in env(c)
    assert pod_spec(job)["restartPolicy"] == "Never"
    # the chart's ServiceAccount, created by an earlier hook so it exists on first install
    assert pod_spec(job)["serviceAccountName"] == FULLNAME
    account = get(full_docs, "ServiceAccount", FULLNAME)["metadata"]["annotations"]
    assert "pre-install" in account["helm.sh/hook"]
    assert int(account["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
    assert "initContainers" not in pod_spec(get(full_docs, "StatefulSet", FULLNAME))


def test_inline_database_url_reaches_the_hook_through_a_hook_secret() -> None:
    """Hooks run before the release's Secret exists, so an inline database.url is also put
    in a hook Secret created before the Job (lower weight); pods use the main Secret."""
    url = "postgresql://hookline:pw@db.internal:5432/hookline"
    docs = render({"database": {"url": url}})
    hook_secret = get(docs, "Secret", f"{FULLNAME}-migrate")
    job = get(docs, "Job", f"{FULLNAME}-migrate")
    assert base64.b64decode(hook_secret["data"]["database-url"]).decode() == url
    weight = int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert weight < int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert env(container(job, "migrate"))["HOOKLINE_DATABASE_URL"] == {
        "secretKeyRef": {"name": f"{FULLNAME}-migrate", "key": "database-url"}
    }
    gateway = container(get(docs, "Deployment", FULLNAME), "hookline")
    assert env(gateway)["HOOKLINE_DATABASE_URL"] == {
        "secretKeyRef": {"name": FULLNAME, "key": "database-url"}
    }
    assert base64.b64decode(get(docs, "Secret", FULLNAME)["data"]["database-url"]).decode() == url
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_network_policies_open_only_the_serving_ports(full_docs: list[Manifest]) -> None:
    """The gateway accepts traffic on its HTTP port from the ingress controller and the
    scrapers, the worker only on its metrics port; egress is DNS plus the listed peers."""
    gateway = get(full_docs, "NetworkPolicy", FULLNAME)["spec"]
    (rule,) = gateway["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    namespaces = [
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in rule["from"]
    ]
    assert namespaces == ["ingress-nginx", "monitoring"]
    assert gateway["policyTypes"] == ["Ingress", "Egress"]
    assert {"port": 53, "protocol": "UDP"} in gateway["egress"][0]["ports"]
    worker = get(full_docs, "NetworkPolicy", WORKER)["spec"]
    (worker_rule,) = worker["ingress"]
    assert worker_rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]


def test_ingress_exposes_only_the_webhook_prefix(full_docs: list[Manifest]) -> None:
    """The Ingress publishes /webhooks, never the admin API, /metrics or the probes."""
    ingress = get(full_docs, "Ingress", FULLNAME)["spec"]
    (rule,) = ingress["rules"]
    assert rule["host"] == "hooks.example.com"
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [("/webhooks", "Prefix")]
    assert rule["http"]["paths"][0]["backend"]["service"] == {
        "name": FULLNAME,
        "port": {"name": "http"},
    }


# --------------------------------------------------------------------------- schema coverage


def _schema_node(schema: Manifest, node: Manifest) -> Manifest:
    """``node`` with a local ``$ref`` resolved."""
    while "$ref" in node:
        target: Manifest = schema
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _uncovered(schema: Manifest, node: Manifest, value: Any, path: str) -> list[str]:
    """The paths under ``value`` (a values.yaml subtree) the schema ``node`` does not describe:
    every key of a dict must be a named property, or the dict a declared map."""
    node = _schema_node(schema, node)
    if not isinstance(value, dict):
        return []
    properties = node.get("properties")
    if properties is None:
        return []  # a declared map (labels, secrets.env) or a Kubernetes object (affinity)
    missing: list[str] = []
    for key, sub in value.items():
        if key not in properties:
            missing.append(f"{path}/{key}")
            continue
        missing += _uncovered(schema, properties[key], sub, f"{path}/{key}")
    return missing


def test_values_schema_describes_every_value() -> None:
    """Every key in values.yaml (at every depth) is a named property of values.schema.json,
    or lives in a map or Kubernetes object the schema declares whole (annotations, labels,
    secrets.env, affinity), and every object with named properties refuses unknown keys."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert _uncovered(schema, schema, values, "") == []

    def closed(node: Manifest, path: str) -> list[str]:
        node = _schema_node(schema, node)
        open_objects = []
        if "properties" in node and node.get("additionalProperties") is not False:
            open_objects.append(path)
        for key, sub in node.get("properties", {}).items():
            open_objects += closed(sub, f"{path}/{key}")
        return open_objects

    assert closed(schema, "") == []


def test_connection_deadlines_reach_the_gateway_as_settings(default_docs: list[Manifest]) -> None:
    """`server.*TimeoutSeconds` become the HOOKLINE_SERVER_* variables that set
    ``[server]`` header/keep-alive/body deadlines, defaults and overrides alike."""
    c = container(get(default_docs, "Deployment", FULLNAME), "hookline")
    assert env(c)["HOOKLINE_SERVER_HEADER_READ_TIMEOUT_SECONDS"] == "5"
    assert env(c)["HOOKLINE_SERVER_KEEP_ALIVE_TIMEOUT_SECONDS"] == "5"
    assert env(c)["HOOKLINE_SERVER_BODY_READ_TIMEOUT_SECONDS"] == "30"
    docs = render({"server": {"headerReadTimeoutSeconds": 2.5}})
    c = container(get(docs, "Deployment", FULLNAME), "hookline")
    assert env(c)["HOOKLINE_SERVER_HEADER_READ_TIMEOUT_SECONDS"] == "2.5"
    assert env(c)["HOOKLINE_SERVER_BODY_READ_TIMEOUT_SECONDS"] == "30"
    variables = {e["name"]: e["value"] for e in c["env"] if e["name"].startswith("HOOKLINE_SERVER")}
    server = load_settings(None, variables).server
    assert server.header_read_timeout_seconds == 2.5
    assert (server.keep_alive_timeout_seconds, server.body_read_timeout_seconds) == (5, 30)


# --------------------------------------------------------------------------- AMQP sinks


def test_an_amqp_sink_takes_its_password_from_one_key_of_a_secret(tmp_path: Path) -> None:
    """An AMQP sink in `config` with `password_env`, and `secrets.keyRefs` pointing that
    variable at one key of a Secret the operator manages (e.g. the RabbitMQ operator's
    default-user Secret): the gateway and the worker read it through secretKeyRef, the
    password is in no rendered object, and the rendered TOML passes Hookline's own checks."""
    from gateway.settings import load_settings

    config = (
        '[[sinks]]\nname = "bus"\nkind = "amqp"\n'
        'url = "amqp://hookline@rabbitmq.messaging.svc:5672/"\n'
        'password_env = "RABBITMQ_PASSWORD"\n'
    )
    docs = render(
        {
            "config": config,
            "database": {"existingSecret": "db"},
            "worker": {"enabled": True},
            "secrets": {
                "keyRefs": {
                    "RABBITMQ_PASSWORD": {"name": "rabbitmq-default-user", "key": "password"}
                }
            },
        }
    )
    ref = {"secretKeyRef": {"name": "rabbitmq-default-user", "key": "password"}}
    gateway = container(get(docs, "Deployment", FULLNAME), "hookline")
    worker = container(get(docs, "Deployment", WORKER), "worker")
    assert env(gateway)["RABBITMQ_PASSWORD"] == ref
    assert env(worker)["RABBITMQ_PASSWORD"] == ref
    toml = get(docs, "ConfigMap", FULLNAME)["data"]["hookline.toml"]
    path = tmp_path / "hookline.toml"
    path.write_text(toml)
    settings = load_settings(path, environ={"RABBITMQ_PASSWORD": "from-the-secret"})
    assert settings.sinks[0].kind == "amqp"
    assert settings.sinks[0].password == "from-the-secret"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {"secrets": {"keyRefs": {"RABBITMQ_PASSWORD": {"name": "only-a-name"}}}},
            json.loads((CHART / "values.schema.json").read_text()),
        )
