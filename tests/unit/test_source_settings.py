"""One definition of the per-source fields: ``handlers.base.SourceSpec``. A ``[[sources]]``
entry is parsed straight into it (``gateway.settings.SourceSettings`` extends it with the
gateway's own fields), so a field cannot be configurable yet never reach the adapter, nor
reach the adapter yet be impossible to configure."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.settings import SourceSettings, load_settings
from gateway.sources import SourceTable
from handlers.base import SourceSpec
from tests.integration._gateway_process import to_toml


def _value_for(name: str, annotation: Any, default: Any) -> Any:
    """A value of the field's type that differs from its default (and passes validation)."""
    options = set(typing.get_args(annotation)) if isinstance(annotation, types.UnionType) else {}
    kind = typing.get_origin(annotation) or annotation
    if str in options or kind is str:
        return f"{name}:value"  # basic_auth must look like user:password
    if kind is bool:
        return not default
    if kind in (int, float):
        return default + 7
    if kind is tuple:
        return [f"{name}-item"]
    if kind in (Mapping, dict):
        return {f"{name}-key": f"{name}-value"}
    raise AssertionError(f"SourceSpec.{name}: no test value for {annotation!r}; add one here")


def test_every_spec_field_is_configurable_and_reaches_the_adapter(tmp_path: Path) -> None:
    """Each SourceSpec field, set in a [[sources]] entry to a value other than its default,
    arrives unchanged in the spec the gateway hands the adapter."""
    hints = typing.get_type_hints(SourceSpec)
    entry: dict[str, Any] = {"provider": "postmark", "name": "main"}
    for field in dataclasses.fields(SourceSpec):
        if field.name in entry:
            continue
        default = field.default if field.default is not dataclasses.MISSING else None
        entry[field.name] = _value_for(field.name, hints[field.name], default)
    path = tmp_path / "hookline.toml"
    path.write_text(to_toml({"sources": [entry]}))

    served = SourceTable(load_settings(path, environ={})).get("postmark", "main")

    assert served is not None
    assert type(served.spec) is SourceSpec
    for field in dataclasses.fields(SourceSpec):
        value = getattr(served.spec, field.name)
        expected = entry[field.name]
        assert (list(value) if isinstance(value, tuple) else value) == expected, field.name


def test_source_settings_are_the_spec_plus_the_gateways_own_fields() -> None:
    """SourceSettings declares no per-source field of its own beyond the rate limits: the
    adapter's fields (names, types, defaults) are SourceSpec's, inherited, not copied."""
    assert issubclass(SourceSettings, SourceSpec)
    spec_fields = {f.name: (f.type, f.default) for f in dataclasses.fields(SourceSpec)}
    settings_fields = {f.name: (f.type, f.default) for f in dataclasses.fields(SourceSettings)}
    assert {k: settings_fields[k] for k in spec_fields} == spec_fields
    assert set(settings_fields) - set(spec_fields) == {"rate_limit_per_second", "rate_limit_burst"}
