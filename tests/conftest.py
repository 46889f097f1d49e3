"""Shared pytest fixtures for rnnlab's tests."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis profiles: "ci" (the default) keeps the whole suite under 10 minutes on two
# cores; "thorough" runs many more examples. Choose with RNNLAB_HYPOTHESIS_PROFILE.
settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", max_examples=600, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=5, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("RNNLAB_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def time_machine_dir() -> Path:
    """Directory holding d2l's ``timemachine.txt``: ``$RNNLAB_DATA``, else the repo's
    sibling ``shared/data``. Skips the test where the file is absent (never downloads)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    data_dir = Path(os.environ.get("RNNLAB_DATA") or default)
    if not (data_dir / "timemachine.txt").is_file():
        pytest.skip(f"timemachine.txt not found in {data_dir} (set RNNLAB_DATA)")
    return data_dir


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never touch the network: any URL but a file:// one fails the test."""
    real_urlopen = urllib.request.urlopen

    def file_only(url, *args, **kwargs):
        if not str(getattr(url, "full_url", url)).startswith("file:"):
            raise AssertionError(f"test tried to reach the network: {url}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", file_only)
