"""Planted mistakes in the NumPy BPTT must each make the suite fail.

Each mutant is applied to a copy of the package in a temporary directory (never the
working tree), then the property suite and the NumPy backend tests run against it. A
mutant that passes means the suite cannot see that class of bug. The anchors are exact
lines of the current code: if one is not found the test fails and says which, so the
list is kept in step with the code rather than silently skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
CELLS = "rnnlab/numpy_backend/cells.py"
FUNCTIONAL = "rnnlab/numpy_backend/functional.py"
MODEL = "rnnlab/numpy_backend/model.py"

MUTANTS = {  # name: (file, exact original text, planted mistake)
    "lstm-dropped-cell-carry": (
        CELLS, "        dC += dC_next  # dC_t", "        dC += 0 * dC_next  # dC_t"),
    "rnn-dropped-hidden-carry": (
        CELLS, "np.add(dHs[t], dH_next, out=dZ[t])", "np.add(dHs[t], 0 * dH_next, out=dZ[t])"),
    "rnn-wrong-tanh-derivative": (  # 1 - H instead of 1 - H²
        CELLS, "    np.subtract(1, dtanh, out=dtanh)\n", "    np.subtract(1, Hs[1:], out=dtanh)\n"),
    "lstm-wrong-candidate-derivative": (  # tanh' = C̃² instead of 1 - C̃²
        CELLS, "    np.subtract(1, M4[:, :, 3], out=M4[:, :, 3])", "    np.add(0, M4[:, :, 3], out=M4[:, :, 3])"),
    "lstm-off-by-one-previous-cell": (  # C_t where C_{t-1} belongs
        CELLS, "    M4[:, :, 1] *= Cs[:-1]", "    M4[:, :, 1] *= Cs[1:]"),
    "rnn-off-by-one-weight-gradient": (  # H_t where H_{t-1} belongs
        CELLS, "    dW_hh = Hs[:-1].reshape", "    dW_hh = Hs[1:].reshape"),
    "input-bias-gradient-misses-a-token": (  # db summed from dW_x without its first row
        MODEL, "        db = dW_x.sum(axis=0)", "        db = dW_x[1:].sum(axis=0)"),
    "wrong-clipping-scale": (
        FUNCTIONAL, "        scale = theta / norm\n", "        scale = theta / norm ** 2\n"),
}

SUITE = ["tests/test_properties.py", "tests/test_numpy_backend.py"]


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_planted_mistake_is_caught(name, tmp_path):
    path, original, planted = MUTANTS[name]
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "rnnlab", copy / "rnnlab", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests", copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    source = (copy / path).read_text()
    assert source.count(original) == 1, f"mutant {name}: anchor not found once in {path}; update MUTANTS"
    (copy / path).write_text(source.replace(original, planted))
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    check = subprocess.run([sys.executable, "-c", "import rnnlab; print(rnnlab.__file__)"],
                           cwd=copy, env=env, capture_output=True, text=True)
    assert check.stdout.strip().startswith(str(copy)), "the mutant copy is not the one imported"
    r = subprocess.run([sys.executable, "-m", "pytest", *SUITE, "-x", "-q", "-p", "no:cacheprovider",
                        "-W", "ignore"], cwd=copy, env=env, capture_output=True, text=True,
                       timeout=600)
    # exit 1: tests ran and at least one failed (not 2-4: an import or usage error)
    assert r.returncode == 1, f"mutant {name} was not caught:\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
    assert "failed" in r.stdout.splitlines()[-1]
