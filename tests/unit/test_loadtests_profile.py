"""Traffic profiles for the capacity search."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.events import EventType
from handlers.registry import available_providers
from hookline_testing import samples_for
from loadtests.options import LoadOptions
from loadtests.profile import DEFAULT_PROFILE, ProfileError, load_profile


def test_the_default_profile_is_valid_and_covers_every_provider() -> None:
    """The documented default loads, names every available ESP with a positive share, and
    its environment strings are accepted by the Locust file's option parser."""
    profile = load_profile(DEFAULT_PROFILE)
    assert sorted(profile.provider_names) == sorted(available_providers())
    options = LoadOptions.from_env(
        {
            "LOADTEST_PROVIDERS": profile.providers_env(),
            "LOADTEST_EVENT_WEIGHTS": profile.event_weights_env(),
        }
    )
    assert options.providers == profile.shares()
    assert options.event_weights[EventType.DELIVERED] == 60


def test_without_a_providers_table_each_esp_takes_the_share_its_samples_declare() -> None:
    """The default profile names no ESP: every available provider is sent, with the
    ``traffic_share`` of its samples (largest first), so a new ESP needs no profile edit."""
    profile = load_profile(DEFAULT_PROFILE)
    assert profile.providers is None
    shares = profile.shares()
    assert shares == {p: samples_for(p).traffic_share for p in available_providers()}
    assert list(shares.values()) == sorted(shares.values(), reverse=True)
    assert all(share > 0 for share in shares.values())


def test_a_partial_profile_keeps_the_defaults_for_what_it_leaves_out(tmp_path: Path) -> None:
    """Only the keys given change; a [providers] table names the only ESPs sent."""
    path = tmp_path / "p.toml"
    path.write_text("batch_size = 20\n[providers]\nsendgrid = 3\nmailgun = 0\n")
    profile = load_profile(path)
    assert profile.batch_size == 20 and profile.duplicate_ratio == 0.0
    assert profile.providers == {"sendgrid": 3}
    assert profile.event_weights is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("batch_sise = 3\n", "unknown keys batch_sise"),
        ("batch_size = 0\n", "batch_size must be 1 to 500"),
        ("duplicate_ratio = 0.7\nbad_signature_ratio = 0.4\n", "exceed 1"),
        ("[providers]\nhotmail = 1\n", "unknown provider 'hotmail'"),
        ("[event_weights]\nread = 1\n", "unknown event type 'read'"),
        ("batch_size = [", "not TOML"),
    ],
)
def test_a_bad_profile_is_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    """Typos and out-of-range values are errors naming the key, never silent defaults."""
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message):
        load_profile(path)
