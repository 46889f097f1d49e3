"""Shared pytest fixtures for rnnlab's tests."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from book import book_dir

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
def time_machine_dir(tmp_path_factory) -> Path:
    """Directory holding d2l's ``timemachine.txt``, found where rnnlab finds it
    (``$RNNLAB_DATA``, then the user cache); skips the test where it is in neither."""
    return book_dir(tmp_path_factory.mktemp("book"))


@pytest.fixture(autouse=True)
def _own_folder(tmp_path, monkeypatch):
    """Every test starts in its own empty temporary folder: whatever rnnlab writes by default
    (runs/<cell>, plots) lands there, and a run in the folder pytest was started from (the
    user's runs/lstm, say) is never read, refused or overwritten."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never touch the network: any URL but a file:// one fails the test."""
    real_urlopen = urllib.request.urlopen

    def file_only(url, *args, **kwargs):
        if not str(getattr(url, "full_url", url)).startswith("file:"):
            raise AssertionError(f"test tried to reach the network: {url}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", file_only)
