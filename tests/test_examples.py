"""Every example runs as a script in its short mode and exits 0 (its own checks pass)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_quick(script, time_machine_dir):
    if "torch" in script.read_text() and not _has_torch():
        pytest.skip("example needs torch")
    env = dict(os.environ, RNNLAB_DATA=str(time_machine_dir))
    r = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True
