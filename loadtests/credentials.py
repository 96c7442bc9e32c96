"""Fresh load-test sources: the gateway's TOML config and the signing material, on disk.

``write_run_files`` writes two files: ``hookline.toml`` (the gateway's half: public keys,
shared secrets, pinned certificates) and ``credentials.json`` (the ESP's half: the private
keys and secrets that sign). Both are created mode 0600; anyone holding ``credentials.json``
can sign webhooks for these sources, so never add them to a production gateway you do not
mean to load.

Material is stored as typed JSON, never pickled: text, PEM private keys, and frozen
dataclasses defined in ``hookline_testing`` (e.g. the SES signing material), nothing else.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from handlers.base import SourceSpec
from hookline_testing import samples_for

__all__ = [
    "CONFIG_NAME",
    "CREDENTIALS_FORMAT",
    "CREDENTIALS_NAME",
    "LoadSource",
    "RunFiles",
    "config_toml",
    "credentials_json",
    "decode_material",
    "encode_material",
    "load_credentials",
    "make_sources",
    "parse_credentials",
    "sources_toml",
    "write_run_files",
]

CREDENTIALS_FORMAT = "hookline-loadtest-credentials/1"
CONFIG_NAME = "hookline.toml"
CREDENTIALS_NAME = "credentials.json"
#: the only package whose dataclasses may be signing material
_MATERIAL_PACKAGE = "hookline_testing."
#: where material classes lived before: credentials files written then still load
_MOVED_MODULES = {"handlers._signing_ses": "hookline_testing._ses"}


@dataclasses.dataclass(frozen=True)
class LoadSource:
    """One gateway source and what signs its traffic (as ``Samples.make_source`` returns)."""

    spec: SourceSpec
    material: Any

    @property
    def provider(self) -> str:
        return self.spec.provider

    @property
    def path(self) -> str:
        return f"/webhooks/{self.spec.provider}/{self.spec.name}"


@dataclasses.dataclass(frozen=True)
class RunFiles:
    config: Path
    credentials: Path


def make_sources(providers: Iterable[str], name: str = "loadtest") -> list[LoadSource]:
    """A source named ``name`` per provider, each with freshly generated test credentials."""
    sources = []
    for provider in providers:
        spec, material = samples_for(provider).make_source(name)
        sources.append(LoadSource(spec, material))
    return sources


# -- material <-> JSON ------------------------------------------------------------------------
def encode_material(material: Any) -> dict[str, Any]:
    """Typed JSON for signing material: text, a private key, or a ``hookline_testing``
    dataclass."""
    if material is None:
        return {"type": "none"}
    if isinstance(material, str):
        return {"type": "text", "value": material}
    if isinstance(material, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        pem = material.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return {"type": "private_key", "pem": pem.decode("ascii")}
    cls = type(material)
    if dataclasses.is_dataclass(material) and cls.__module__.startswith(_MATERIAL_PACKAGE):
        return {
            "type": "dataclass",
            "class": f"{cls.__module__}:{cls.__qualname__}",
            "fields": {
                f.name: encode_material(getattr(material, f.name))
                for f in dataclasses.fields(material)
            },
        }
    raise TypeError(f"cannot store signing material of type {cls.__qualname__}")


def decode_material(data: Mapping[str, Any]) -> Any:
    kind = data.get("type")
    if kind == "none":
        return None
    if kind == "text":
        return str(data["value"])
    if kind == "private_key":
        return serialization.load_pem_private_key(str(data["pem"]).encode("ascii"), None)
    if kind == "dataclass":
        module_name, _, qualname = str(data["class"]).partition(":")
        module_name = _MOVED_MODULES.get(module_name, module_name)
        if not module_name.startswith(_MATERIAL_PACKAGE):
            raise ValueError(f"refusing to build {data['class']!r}: not a hookline_testing class")
        cls = getattr(importlib.import_module(module_name), qualname)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ValueError(f"{data['class']!r} is not a dataclass")
        factory: Callable[..., Any] = cls
        return factory(**{name: decode_material(value) for name, value in data["fields"].items()})
    raise ValueError(f"unknown material type {kind!r}")


def _spec_fields(spec: SourceSpec) -> dict[str, Any]:
    """The spec's fields that differ from their defaults, as JSON/TOML-friendly values."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(SourceSpec):
        value = getattr(spec, f.name)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        if f.name not in ("provider", "name") and value == default:
            continue
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        out[f.name] = value
    return out


def _spec_from_fields(fields: Mapping[str, Any]) -> SourceSpec:
    values = dict(fields)
    if "topic_arns" in values:
        values["topic_arns"] = tuple(values["topic_arns"])
    return SourceSpec(**values)


def credentials_json(sources: Sequence[LoadSource]) -> str:
    document = {
        "format": CREDENTIALS_FORMAT,
        "sources": [
            {"spec": _spec_fields(s.spec), "material": encode_material(s.material)} for s in sources
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def parse_credentials(text: str) -> list[LoadSource]:
    document = json.loads(text)
    if not isinstance(document, dict) or document.get("format") != CREDENTIALS_FORMAT:
        raise ValueError(f"not a load-test credentials file (expected {CREDENTIALS_FORMAT})")
    return [
        LoadSource(_spec_from_fields(entry["spec"]), decode_material(entry["material"]))
        for entry in document["sources"]
    ]


def load_credentials(path: str | os.PathLike[str]) -> list[LoadSource]:
    return parse_credentials(Path(path).read_text())


# -- the gateway's TOML -----------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    """A TOML literal: JSON's string escapes are a subset of TOML basic strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"no TOML form for {type(value).__qualname__}")


def config_toml(
    sources: Sequence[LoadSource],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    database_url: str | None = None,
    data_dir: str | None = None,
    log_level: str = "info",
) -> str:
    """The gateway configuration serving ``sources`` (secrets inline: keep the file private)."""
    lines = [
        "# Hookline load-test configuration, written by",
        "# `python -m loadtests.traffic write-config`. The sources carry fresh test",
        "# credentials; credentials.json next to this file signs for them.",
        "",
        "[server]",
        f"host = {_toml_value(host)}",
        f"port = {port}",
        "",
        "[logging]",
        f"level = {_toml_value(log_level)}",
        'format = "json"',
    ]
    if database_url is not None:
        lines += ["", "[database]", f"url = {_toml_value(database_url)}"]
    if data_dir is not None:
        lines += ["", "[storage]", f"data_dir = {_toml_value(data_dir)}"]
    return "\n".join(lines) + "\n" + sources_toml(sources)


def sources_toml(sources: Sequence[LoadSource]) -> str:
    """One ``[[sources]]`` table per source (the gateway's half of the credentials)."""
    lines: list[str] = []
    for source in sources:
        lines += ["", "[[sources]]"]
        lines += [
            f"{key} = {_toml_value(value)}" for key, value in _spec_fields(source.spec).items()
        ]
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def write_run_files(
    out_dir: str | os.PathLike[str],
    sources: Sequence[LoadSource],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    database_url: str | None = None,
    data_dir: str | None = None,
    log_level: str = "info",
) -> RunFiles:
    """Write ``hookline.toml`` and ``credentials.json`` (both 0600) into ``out_dir``.

    The directory itself is left traversable (0755): the embedded PostgreSQL may run as
    another user and keep its cluster under ``data_dir`` inside it.
    """
    directory = Path(out_dir).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    files = RunFiles(directory / CONFIG_NAME, directory / CREDENTIALS_NAME)
    config = config_toml(
        sources,
        host=host,
        port=port,
        database_url=database_url,
        data_dir=data_dir,
        log_level=log_level,
    )
    _write_private(files.config, config)
    _write_private(files.credentials, credentials_json(sources))
    return files
