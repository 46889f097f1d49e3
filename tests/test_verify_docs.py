"""docs/verify.md shows real reports: every block between ``<!-- generated: ... -->`` and
``<!-- end generated -->`` is the output of the command it names on the files in
examples/verify (or the catalogue's table), and this test compares them. After a change
to the reports, regenerate the page with ``RNNLAB_WRITE_DOCS=1 pytest tests/test_verify_docs.py``."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rnnlab.testing import CATALOGUE
from rnnlab.testing.mistakes import DEFAULT_STATE_FAULTS, DEFAULT_STATES, LAYOUT

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "verify.md"
BLOCK = re.compile(r"(<!-- generated: (.*?) -->\n)(.*?)(<!-- end generated -->)", re.S)


GROUPS = {  # a family of gate-order mistakes, one row: (name pattern, kind, what the code does)
    "gate-order": ("{cell}-gates-…", "forward",
                   "gate blocks read in another order than the convention's, named by the gates "
                   "exchanged in the spec's letters (`lstm-gates-o-c-swapped`: o reads c's block "
                   "and c reads o's; `-rotated`: each reads the next one's); the report says it "
                   "in the convention's letters: \"read in the order i, f, o, g; the "
                   "convention's order is i, f, g, o\""),
    "in-forward": ("lstm-gates-…-in-forward", "backward",
                   "the forward reads the gate blocks in another order; the hand-written backward "
                   "puts the gradients back in the convention's blocks"),
    "copied": ("{cell}-…-from-…-weights", "forward",
               "one gate computed from another gate's weights (a line copied and not fully "
               "edited), the other keeping its own, so the first gate's weights are never used: "
               "`gru-r-from-z-weights` computes R = σ(X W_xz + H W_hz + b_z); between two σ "
               "gates the same numbers come from the first computed right and the other used "
               "in its place (Z ⊙ H where R ⊙ H belongs), and the report says both"),
    "reads": ("{cell}-…-reads-…", "forward",
              "one array of a gate's line read from another gate, the rest of the line right "
              "(`lstm-o-reads-W_hf`: o's line uses W_hf where W_ho belongs; `gru-r-reads-b_z`: "
              "R = σ(X W_xr + H W_hr + b_z)): that array of the gate's own is never used, its "
              "gradient zero"),
    "reads-layer": ("{cell}-…-reads-…-layer", "forward",
                    "in a module of one layer per gate and source (each gate's bias in two "
                    "arrays), one gate's line calls another gate's layer on one side, the rest "
                    "of the line right (`lstm-f-reads-i-hidden-layer`: h2i(h) in the forget "
                    "gate's line): that gate's own layer on that side is never used, its weight "
                    "and bias get no gradient (the gru's z and r)"),
    "backward": ("lstm-backward-gates-…", "backward",
                 "the forward is right; the hand-written backward puts the gate gradients in "
                 "other blocks (\"di in f's, df in i's\")"),
}


def _group(m) -> str | None:
    if m.name.endswith("-weights") and "-from-" in m.name:
        return "copied"
    if re.fullmatch(r"(lstm|gru)-[a-z]-reads-(W_x|W_h|b_)[a-z]", m.name):
        return "reads"
    if re.fullmatch(r"(lstm|gru)-[a-z]-reads-[a-z]-(input|hidden)-layer", m.name):
        return "reads-layer"
    if m.perm is None and m.grad_perm is None:
        return None
    if m.perm is None:
        return "backward"
    return "in-forward" if m.grad_perm is not None else "gate-order"


def catalogue_table() -> str:
    rows = ["| mistake | cells | kind | what the code does |", "| --- | --- | --- | --- |"]
    groups = {}
    for m in CATALOGUE.values():
        group = _group(m)
        if group is not None:
            groups.setdefault((group, sorted(m.cells)[0]), []).append(m.name)
            continue
        forms = f" ({'d2l' if 'd2l' in m.forms else 'torch'} form)" if len(m.forms) == 1 else ""
        heads = (" (min-char-rnn)" if m.heads == frozenset({"softmax"}) else
                 " (PyTorch's char-RNN tutorial)" if m.heads == frozenset({"logsoftmax"}) else
                 " (with an output layer)" if None not in m.heads else "")
        cells = ", ".join(c for c in ("rnn", "lstm", "gru") if c in m.cells)
        split = " (a module with each gate's bias in two arrays)" if m.split else ""
        rows.append(f"| `{m.name}` | {cells}{forms}{heads}{split} | {m.kind} | "
                    f"{m.title.replace('|', '¦')} |")
    for (group, cell), names in groups.items():
        pattern, kind, what = GROUPS[group]
        family = {"copied": "every pair of gates", "reads": "every gate, array and other gate",
                  "reads-layer": "every gate, other gate and side"}.get(group, "every other order")
        rows.append(f"| `{pattern.format(cell=cell)}` ({len(names)}: {family}, e.g. "
                    f"`{names[0]}`) | {cell} | {kind} | {what} |")
    for name, what in LAYOUT.items():
        rows.append(f"| `{name}` | rnn, lstm, gru | layout | {what} |")
    for name, (what, _, _) in DEFAULT_STATES.items():
        cells = "lstm" if name.startswith("lstm-") else "rnn, lstm, gru"
        rows.append(f"| `{name}` | {cells} (a default state) | forward | {what} |")
    for name, what in DEFAULT_STATE_FAULTS.items():
        rows.append(f"| `{name}` | rnn, lstm, gru (a default state) | forward | {what} |")
    return "\n".join(rows) + "\n"


def run_command(command: str) -> str:
    """The command's report as a reader sees it: its own process, run from the repository."""
    argv = shlex.split(command)
    assert argv[0] == "rnnlab"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run([sys.executable, "-m", "rnnlab", *argv[1:], "--no-progress"], cwd=ROOT,
                          env=env, capture_output=True, encoding="utf-8", timeout=600)
    return f"```console\n$ {command}\n{proc.stdout}$ echo $?\n{proc.returncode}\n```\n"


def test_the_page_shows_real_reports():
    pytest.importorskip("torch")
    text = PAGE.read_text(encoding="utf-8")
    blocks = list(BLOCK.finditer(text))
    assert len(blocks) >= 9
    # each command in its own process, as many at once as there are cores (each report is
    # its command's alone: no shared state between them)
    commands = [m.group(2) for m in blocks if m.group(2) != "catalogue"]
    with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        reports = dict(zip(commands, pool.map(run_command, commands)))
    new = text
    for m in reversed(blocks):
        what = m.group(2)
        body = catalogue_table() if what == "catalogue" else reports[what]
        new = new[:m.start(3)] + body + new[m.end(3):]
    if os.environ.get("RNNLAB_WRITE_DOCS") == "1":
        PAGE.write_text(new, encoding="utf-8")
    assert new == text, ("docs/verify.md differs from the real reports; regenerate it with "
                         "RNNLAB_WRITE_DOCS=1 pytest tests/test_verify_docs.py")


def test_every_example_is_on_the_page():
    text = PAGE.read_text(encoding="utf-8")
    for f in sorted((ROOT / "examples" / "verify").glob("*.py")):
        # a class's constructor arguments follow its name in quotes: "FILE:NAME(...)"
        assert re.search(rf'<!-- generated: rnnlab verify "?examples/verify/{re.escape(f.name)}[ :]',
                         text), f.name
