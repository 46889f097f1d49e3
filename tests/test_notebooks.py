"""The walkthrough notebooks in notebooks/ are stored executed, so that a reader opening one
on GitHub or in the docs site sees what each cell prints and draws; the suite runs each
from top to bottom in a fresh kernel, as a reader's Jupyter does, checks what it prints
and that the stored outputs are what the code prints now, never a stale copy. Each
notebook ends with assertions of its own claims.

After changing a notebook (or what rnnlab prints), store it executed again with
``RNNLAB_UPDATE_DOCS=1 python -m pytest tests/test_notebooks.py``."""

from __future__ import annotations

import base64
import copy
import os
import re
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
UPDATE = bool(os.environ.get("RNNLAB_UPDATE_DOCS"))
PNG_LIMIT = 80_000  # bytes of one stored picture: a modest dpi, not a poster

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
    "train_rnn_lstm_gru": ["rnn  greedy  time traveller", "rnn  τ = 0.5 time traveller",
                           "gru  τ = 0.5 time traveller", "τ = 0.7, top_p = 0.9"],
    "vanishing_gradients": ["b_f = 0.0: dC shrinks", "b_f = 3.0: dC shrinks"],
    "memory_tasks": ["| cell | truncate | final loss | / baseline |", "| rnn | none |",
                     "| irnn | none |", "| lstm | none |", "| gru | none |", "| lstm | 3 |",
                     "| lstm | 30 |", "| rnn | 6 |", "| irnn | 6 |", "| lstm | 6 |", "| gru | 6 |",
                     "| gru | none |", "every cell truncated at T + 1 stays at the copy task's baseline"],
}
# Cells that draw: a picture must be among their outputs (stored and fresh)
DRAWS = re.compile(r"^\s*plt\.show\(\)", re.M)
# What must never reach an output: a path of the machine that ran it, a timing
PRIVATE = re.compile(r"(/home/|/Users/|/tmp/|/work/|C:\\\\|tokens/s|\bseconds\b|\d\s?ms\b|"
                     r"\d s so far|done in \d)")


def _text(output) -> str:
    """The text an output shows (a stream, or the text/plain of a result), ANSI removed."""
    if output.output_type == "stream":
        text = output.text
    else:
        text = output.get("data", {}).get("text/plain", "")
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _kinds(cell) -> list:
    """The outputs of a code cell as (kind, stream name or picture): what they are, not
    what they say."""
    kinds = []
    for o in cell.outputs:
        if o.output_type == "stream":
            kinds.append(("stream", o.name))
        else:
            data = o.get("data", {})
            kinds.append((o.output_type, "image/png" in data))
    return kinds


NUMBER = re.compile(r"[-+]?(\d[\d,]*\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _words(text: str) -> str:
    """``text`` as compared between the stored and a fresh run: numbers (rounding errors of
    another BLAS; an error of 3e-11 or of 8e-11 both say "round-off") are masked, and a
    line of generated text is kept up to its prefix, "time traveller" (the characters a
    small model picks after it can change with the last bit of a weight)."""
    lines = []
    for line in text.splitlines():
        at = line.find("time traveller")
        lines.append(line[:at + len("time traveller")] if at >= 0 else line)
    return NUMBER.sub("#", "\n".join(lines))


def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def _coalesce(nb) -> None:
    """One stream output per run of prints to the same stream: how a cell's prints are cut
    into outputs depends on when the kernel flushed them, not on what they say."""
    for cell in _code_cells(nb):
        merged = []
        for o in cell.outputs:
            if (o.output_type == "stream" and merged and merged[-1].output_type == "stream"
                    and merged[-1].name == o.name):
                merged[-1].text += o.text
            else:
                merged.append(o)
        cell.outputs = merged


def test_there_are_the_walkthroughs():
    names = {p.stem for p in NOTEBOOKS}
    assert {"bptt_by_hand", "train_rnn_lstm_gru", "vanishing_gradients",
            "verify_your_own_rnn", "memory_tasks"} <= names, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_with_its_outputs(path):
    """Without running anything: every code cell was run, in order, in one go; a cell that
    prints, runs a command or draws shows it; pictures are small; no output holds a path
    of the machine that stored it or a timing."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    cells = _code_cells(nb)
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1)), (
        f"{path.name} is not stored executed from top to bottom in one kernel: store it with "
        "RNNLAB_UPDATE_DOCS=1 python -m pytest tests/test_notebooks.py")
    assert set(nb.metadata.get("language_info", {})) <= {"name"}, (
        f"{path.name} holds the Python version of the machine that saved it: store it with "
        "RNNLAB_UPDATE_DOCS=1 python -m pytest tests/test_notebooks.py")
    for i, cell in enumerate(cells, 1):
        where = f"{path.name}, code cell {i}"
        shows = re.search(r"\bprint\(|^!|^%%writefile", cell.source, re.M)
        assert cell.outputs or not shows, f"{where} prints, but is stored without output"
        if DRAWS.search(cell.source):
            assert any(kind == ("display_data", True) for kind in _kinds(cell)), \
                f"{where} draws, but no picture is stored"
        assert "execution" not in cell.metadata, f"{where} stores the times it ran at"
        for o in cell.outputs:
            assert o.output_type != "error", f"{where} is stored with an error"
            assert not PRIVATE.search(_text(o)), f"{where}: {PRIVATE.search(_text(o))[0]!r}"
            png = o.get("data", {}).get("image/png")
            if png:
                assert len(base64.b64decode(png)) < PNG_LIMIT, f"{where}: the picture is large"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_shows_what_it_prints(path, tmp_path, monkeypatch, time_machine_dir):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    stored = nbformat.read(path, as_version=4)
    nb = copy.deepcopy(stored)
    for cell in _code_cells(nb):  # run from scratch: nothing stored can leak into the check
        cell.outputs, cell.execution_count = [], None
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))  # the kernel inherits it
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # `!rnnlab ...` in a cell finds the command of the environment running the tests, as
    # it does in a reader's activated environment
    monkeypatch.setenv("PATH", sysconfig.get_path("scripts") + os.pathsep + os.environ["PATH"])
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", record_timing=False,
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:  # the failing cell and its traceback
        pytest.fail(f"{path.name}: {exc}")
    _coalesce(nb)
    printed = "".join(_text(o) for c in _code_cells(nb) for o in c.outputs)
    assert "Traceback" not in printed
    assert str(tmp_path) not in printed and str(ROOT) not in printed
    at = 0
    for expected in PRINTS.get(path.stem, []):
        found = printed.find(expected, at)
        assert found >= 0, (f"{path.name} does not print {expected!r} after what it printed "
                            f"before it; it printed:\n{printed[at:at + 3000]}")
        at = found + len(expected)
    if UPDATE:  # store it executed, as a reader will see it
        nb.metadata = stored.metadata
        nbformat.write(nb, path)
        return
    for i, (old, new) in enumerate(zip(_code_cells(stored), _code_cells(nb)), 1):
        where = f"{path.name}, code cell {i}"
        assert old.source == new.source
        assert _kinds(old) == _kinds(new), (
            f"{where}: stored outputs {_kinds(old)}, now {_kinds(new)}; store it again with "
            "RNNLAB_UPDATE_DOCS=1 python -m pytest tests/test_notebooks.py")
        for o, n in zip(old.outputs, new.outputs):
            assert _words(_text(o)) == _words(_text(n)), (
                f"{where} is stored printing\n{_text(o)}\nand now prints\n{_text(n)}\nstore it "
                "again with RNNLAB_UPDATE_DOCS=1 python -m pytest tests/test_notebooks.py")
