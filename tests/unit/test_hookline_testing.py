"""The testing package's contract: found per provider the way adapters are, never loaded
by the gateway itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

from handlers.events import EventType
from handlers.registry import PROVIDERS
from hookline_testing import Samples, samples_for
from loadtests.mix import DEFAULT_WEIGHTS, event_names


def test_every_provider_has_samples_and_an_unknown_one_has_none() -> None:
    """``samples_for`` answers every registered provider with its own Samples (the same
    object each time) and refuses a provider the registry does not know."""
    for provider in PROVIDERS:
        samples = samples_for(provider)
        assert isinstance(samples, Samples) and samples.provider == provider
        assert samples_for(provider) is samples
    with pytest.raises(LookupError):
        samples_for("nosuchesp")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_load_mix_is_read_from_what_the_adapter_makes_of_each_sample(provider: str) -> None:
    """The load-test mix of a provider names, per normalized type, an ESP event of its
    samples; deliveries, bounces and opens exist everywhere, and ``unknown`` never appears
    (it is not a type to load-test)."""
    names = event_names(provider)
    assert set(names.values()) <= set(samples_for(provider).events)
    assert {EventType.DELIVERED, EventType.BOUNCED, EventType.OPENED} <= set(names)
    assert EventType.UNKNOWN not in names
    assert set(names) & set(DEFAULT_WEIGHTS)


def test_serving_never_imports_the_testing_package() -> None:
    """``hookline serve`` builds the CLI parser and the app: neither imports
    ``hookline_testing`` (only ``hookline sign`` / ``demo`` load it, when they run)."""
    code = (
        "import sys\n"
        "from gateway.cli import build_parser\n"
        "import gateway.app, gateway.worker_app\n"
        "build_parser().parse_args(['serve'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('hookline_testing', 'loadtests')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]", result.stdout
