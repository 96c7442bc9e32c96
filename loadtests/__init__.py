"""Load tests for Hookline: signed ESP traffic, a Locust file and a capacity-test script.

``loadtests.traffic`` generates the traffic (framework-free), ``loadtests.locustfile`` drives
it with Locust, ``loadtests.capacity`` searches for the gateway's capacity (the knee) against a
gateway it starts itself. See ``loadtests/README.md`` and ``docs/capacity.md``.

The public names below are imported lazily, so ``python -m loadtests.traffic`` does not
import its own module twice.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadtests.credentials import LoadSource, load_credentials, make_sources, write_run_files
    from loadtests.mix import DEFAULT_WEIGHTS, EventMix, event_names
    from loadtests.traffic import TrafficGenerator, TrafficRequest

__all__ = [
    "DEFAULT_WEIGHTS",
    "EventMix",
    "LoadSource",
    "TrafficGenerator",
    "TrafficRequest",
    "event_names",
    "load_credentials",
    "make_sources",
    "write_run_files",
]

_HOMES = {
    "DEFAULT_WEIGHTS": "loadtests.mix",
    "EventMix": "loadtests.mix",
    "event_names": "loadtests.mix",
    "LoadSource": "loadtests.credentials",
    "load_credentials": "loadtests.credentials",
    "make_sources": "loadtests.credentials",
    "write_run_files": "loadtests.credentials",
    "TrafficGenerator": "loadtests.traffic",
    "TrafficRequest": "loadtests.traffic",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'loadtests' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
