"""The walkthrough notebooks in notebooks/ run from top to bottom in a fresh kernel, as a
reader's Jupyter runs them, and are stored without outputs (what a reader sees is what
the code prints now, never a stale copy). Each ends with assertions of its own claims."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


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
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:  # the failing cell and its traceback
        pytest.fail(f"{path.name}: {exc}")
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.outputs)
    assert "Traceback" not in printed
