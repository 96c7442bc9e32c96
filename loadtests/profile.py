"""Traffic profiles: the ESP mix, batch size and duplicate/forgery ratios of a capacity run.

A profile is a TOML file (``loadtests/profiles/default.toml`` is the documented default):
``batch_size``, ``duplicate_ratio``, ``bad_signature_ratio``, a ``[providers]`` table of
integer request shares and an ``[event_weights]`` table of normalized event types. Every key
is optional (a missing one takes the default's value; without ``[providers]`` each ESP takes
the ``traffic_share`` its samples declare in ``hookline_testing``); unknown keys are errors,
so a typo cannot silently fall back to a default.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handlers.events import EventType
from handlers.registry import available_providers
from hookline_testing import samples_for
from loadtests.mix import DEFAULT_WEIGHTS, MAX_BATCH_SIZE

__all__ = ["DEFAULT_PROFILE", "Profile", "ProfileError", "load_profile"]

DEFAULT_PROFILE = Path(__file__).resolve().parent / "profiles" / "default.toml"
_KEYS = {"batch_size", "duplicate_ratio", "bad_signature_ratio", "providers", "event_weights"}


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Profile:
    batch_size: int = 1
    duplicate_ratio: float = 0.0
    bad_signature_ratio: float = 0.0
    #: provider -> request share (positive integers only); None: the samples' own shares
    providers: Mapping[str, int] | None = None
    event_weights: Mapping[EventType, float] | None = None

    @property
    def provider_names(self) -> list[str]:
        return list(self.shares())

    def shares(self) -> Mapping[str, int]:
        """Provider -> request share: the profile's table, else each ESP's declared share
        (largest first)."""
        if self.providers:
            return self.providers
        declared = {name: samples_for(name).traffic_share for name in available_providers()}
        return dict(sorted(declared.items(), key=lambda item: -item[1]))

    def providers_env(self) -> str:
        """``LOADTEST_PROVIDERS`` for the Locust file: ``sendgrid:25,ses:20,...``."""
        return ",".join(f"{name}:{share}" for name, share in self.shares().items())

    def event_weights_env(self) -> str:
        """``LOADTEST_EVENT_WEIGHTS`` for the Locust file."""
        weights = self.event_weights or DEFAULT_WEIGHTS
        return ",".join(f"{event.value}={weight:g}" for event, weight in weights.items())


def _ratio(path: Path, data: Mapping[str, Any], key: str) -> float:
    value = data.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ProfileError(f"{path}: {key} must be a number from 0 to 1, not {value!r}")
    return float(value)


def _providers(path: Path, table: Any) -> dict[str, int]:
    if not isinstance(table, dict):
        raise ProfileError(f"{path}: [providers] must be a table of ESP = share")
    available = available_providers()
    shares: dict[str, int] = {}
    for name, share in table.items():
        if name not in available:
            raise ProfileError(
                f"{path}: unknown provider {name!r} (available: {', '.join(available)})"
            )
        if isinstance(share, bool) or not isinstance(share, int) or share < 0:
            raise ProfileError(f"{path}: providers.{name} must be an integer >= 0")
        if share:
            shares[name] = share
    if not shares:
        raise ProfileError(f"{path}: [providers] gives no provider a positive share")
    return shares


def _event_weights(path: Path, table: Any) -> dict[EventType, float]:
    if not isinstance(table, dict):
        raise ProfileError(f"{path}: [event_weights] must be a table of type = weight")
    weights: dict[EventType, float] = {}
    for name, weight in table.items():
        try:
            event = EventType(name)
        except ValueError:
            known = ", ".join(t.value for t in EventType)
            raise ProfileError(f"{path}: unknown event type {name!r} (known: {known})") from None
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            raise ProfileError(f"{path}: event_weights.{name} must be a number >= 0")
        weights[event] = float(weight)
    if not any(weights.values()):
        raise ProfileError(f"{path}: [event_weights] gives no event type a positive weight")
    return weights


def load_profile(path: Path = DEFAULT_PROFILE) -> Profile:
    """Read and check a profile file."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ProfileError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not TOML: {exc}") from None
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ProfileError(f"{path}: unknown keys {', '.join(unknown)}")
    batch_size = data.get("batch_size", 1)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise ProfileError(f"{path}: batch_size must be an integer")
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ProfileError(f"{path}: batch_size must be 1 to {MAX_BATCH_SIZE}")
    duplicate_ratio = _ratio(path, data, "duplicate_ratio")
    bad_signature_ratio = _ratio(path, data, "bad_signature_ratio")
    if duplicate_ratio + bad_signature_ratio > 1:
        raise ProfileError(f"{path}: duplicate_ratio + bad_signature_ratio exceed 1")
    return Profile(
        batch_size=batch_size,
        duplicate_ratio=duplicate_ratio,
        bad_signature_ratio=bad_signature_ratio,
        providers=_providers(path, data["providers"]) if "providers" in data else None,
        event_weights=(
            _event_weights(path, data["event_weights"]) if "event_weights" in data else None
        ),
    )
