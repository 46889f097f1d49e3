"""Shared pytest fixtures for rnnlab's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def time_machine_dir() -> Path:
    """Directory holding d2l's ``timemachine.txt``: ``$RNNLAB_DATA``, else the repo's
    sibling ``shared/data``. Skips the test where the file is absent (never downloads)."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    data_dir = Path(os.environ.get("RNNLAB_DATA") or default)
    if not (data_dir / "timemachine.txt").is_file():
        pytest.skip(f"timemachine.txt not found in {data_dir} (set RNNLAB_DATA)")
    return data_dir
