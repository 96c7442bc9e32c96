"""Every setting is documented twice over and nowhere invented: a ``#:`` line next to its
field (gateway/settings.py; per source, ``SourceSpec`` in handlers/base.py) and a line in
docs/configuration.md's example, whose values are the defaults the code has."""

from __future__ import annotations

import inspect
import re
import tomllib
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway.settings import Settings, SinkSettings, SourceSettings
from handlers.base import SourceSpec

DOCS = Path(__file__).resolve().parents[2] / "docs"
CONFIGURATION = (DOCS / "configuration.md").read_text()
SINKS = (DOCS / "sinks.md").read_text()
(EXAMPLE,) = re.findall(r"^```toml\n(\[server\].*?)^```", CONFIGURATION, re.M | re.S)
DOCUMENTED: dict[str, Any] = tomllib.loads(EXAMPLE)

#: the [section] tables of Settings: (name, struct type)
SECTIONS = [
    (f.name, f.type)
    for f in msgspec.structs.fields(Settings)
    if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct)
]
#: every class whose fields are settings
SETTINGS_CLASSES = [cls for _, cls in SECTIONS] + [SinkSettings, SourceSettings, SourceSpec]


def test_every_section_is_in_the_example() -> None:
    """docs/configuration.md shows a table for each section of Settings, and no other."""
    tables = {key for key, value in DOCUMENTED.items() if isinstance(value, dict)}
    assert tables == {name for name, _ in SECTIONS}


@pytest.mark.parametrize(("section", "struct"), SECTIONS, ids=[name for name, _ in SECTIONS])
def test_every_field_is_in_the_example_with_its_default(section: str, struct: type) -> None:
    """Each field of the section is in the example, and a documented value is the default
    (fields with no default, like a database URL, show an example value)."""
    documented = DOCUMENTED[section]
    defaults = {f.name: f.default for f in msgspec.structs.fields(struct)}
    assert sorted(set(defaults) - set(documented)) == [], "undocumented fields"
    assert sorted(set(documented) - set(defaults)) == [], "documented fields that do not exist"
    for name, default in defaults.items():
        if default is not None and default is not msgspec.NODEFAULT:
            assert documented[name] == default, f"[{section}] {name}"


def _mentioned(field: str, *texts: str) -> bool:
    """Named in backticks (alone or set: `field = ...`), or set in a TOML example."""
    named = re.compile(rf"`{field}( = [^`]*)?`|^{field}(_env|_file)? *=", re.M)
    return any(named.search(text) for text in texts)


def test_every_source_field_is_documented() -> None:
    """Each [[sources]] field (SourceSpec's and the gateway's own) is in the example entry
    or named in docs/configuration.md (the per-provider fields are in its table)."""
    (example,) = DOCUMENTED["sources"]
    missing = [
        f.name
        for f in fields(SourceSettings)
        if f.name not in example and not _mentioned(f.name, CONFIGURATION)
    ]
    assert missing == []
    for f in fields(SourceSettings):
        if f.name in example and f.default not in (None, MISSING):
            assert example[f.name] == f.default, f.name


def test_every_sink_field_is_documented() -> None:
    """Each [[sinks]] field is in the example entry or named in docs/configuration.md or
    docs/sinks.md (the AMQP fields are there)."""
    (example,) = DOCUMENTED["sinks"]
    missing = [
        f.name
        for f in msgspec.structs.fields(SinkSettings)
        if f.name not in example and not _mentioned(f.name, CONFIGURATION, SINKS)
    ]
    assert missing == []


@pytest.mark.parametrize("cls", SETTINGS_CLASSES, ids=[c.__name__ for c in SETTINGS_CLASSES])
def test_every_field_has_a_doc_line(cls: type) -> None:
    """Each field declared in the class has a ``#:`` comment (or a class docstring line
    right above it), so its meaning is next to its default."""
    lines = inspect.getsource(cls).splitlines()
    undocumented = []
    for index, line in enumerate(lines):
        declared = re.match(r"^    (\w+): [^=]+(?:=.*)?$", line)
        if declared and not lines[index - 1].strip().startswith("#:"):
            undocumented.append(declared.group(1))
    assert undocumented == []
