"""The walkthrough notebooks in notebooks/ run from top to bottom in a fresh kernel, as a
reader's Jupyter runs them, and are stored without outputs (what a reader sees is what
the code prints now, never a stale copy). Each ends with assertions of its own claims."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# What a notebook must print, in this order (beyond running without an error): the
# verdicts and the mistakes named, so a notebook that "runs" while showing the wrong
# thing fails.
PRINTS = {
    "verify_your_own_rnn": [
        "PASS: every property holds (lstm)",                     # d2l's lstm, from Python
        "FAIL  forward", "known mistake lstm-h-without-tanh",    # H = O * C
        "FAIL: 1 of 1 checked do not conform: lstm_without_tanh",
        "ok: False  exit status: 1",
        "lstm_without_tanh -> lstm-h-without-tanh",              # the diagnosis as data
        "FAIL: 1 of 1 checked do not conform: lstm_without_tanh",  # assert_conforms raised
        "rnnlab verify my_lstm.py --convention d2l",             # the command line
        "PASS: every property holds (lstm)", "exit status 0",
        "rnnlab verify rnn_layers.py --convention cs231n",       # CS231n, dnext_c dropped
        "PASS  forward", "FAIL  gradients", "FAIL  finite-differences",
        "known mistake lstm-dropped-cell-carry", "exit status 1",
        "PASS  finite-differences",                              # fixed
        "PASS: every property holds (lstm_step_forward / lstm_step_backward)",
    ],
}


def test_there_are_the_walkthroughs():
    names = {p.stem for p in NOTEBOOKS}
    assert {"bptt_by_hand", "train_rnn_lstm_gru", "vanishing_gradients",
            "verify_your_own_rnn"} <= names, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_is_stored_clean(path, tmp_path, monkeypatch, time_machine_dir):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name} is stored with outputs: clear them before committing")
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))  # the kernel inherits it
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # `!rnnlab ...` in a cell finds the command of the environment running the tests, as
    # it does in a reader's activated environment
    monkeypatch.setenv("PATH", sysconfig.get_path("scripts") + os.pathsep + os.environ["PATH"])
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:  # the failing cell and its traceback
        pytest.fail(f"{path.name}: {exc}")
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.outputs)
    assert "Traceback" not in printed
    at = 0
    for expected in PRINTS.get(path.stem, []):
        found = printed.find(expected, at)
        assert found >= 0, (f"{path.name} does not print {expected!r} after what it printed "
                            f"before it; it printed:\n{printed[at:at + 3000]}")
        at = found + len(expected)
