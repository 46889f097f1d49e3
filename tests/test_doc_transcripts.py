"""The example output in the docs is what the commands print: every ```console block is a
transcript that the suite runs and compares.

A transcript (README.md and docs/*.md):

    ```console
    $ rnnlab train --cell lstm --hidden 256 --epochs 500 --lr 1
    training lstm (H=256, layers=1) on 10,000 tokens, ...
    epoch    1/500  train ppl   25.008  ...
    ...
    ```

* ``$ rnnlab ...`` lines are commands, run in-process in order, in one temporary working
  directory per page (so a page's later commands see its earlier runs), with
  ``RNNLAB_DATA`` set, stdout and stderr together as a terminal shows them (no progress
  bar: it is drawn only on a terminal).
* The lines after a command are its output, compared line by line. A last line ``...``
  means "and more": the command is stopped (as by Ctrl-C) once the lines above it are
  out. A first line ``...`` means "after more": only the last lines are compared (a
  lone ``...``: the command runs to its end, its output is not shown).
* ``# Ctrl-C during epoch N`` after a command interrupts it at the start of epoch N,
  exactly as pressing Ctrl-C then would.
* Speeds vary from run to run: ``12,345 tokens/s`` matches any number of tokens/s, and
  the lines of ``--threads auto`` (``threads: ...``) are left out on both sides.
* A block right under a ``<!-- generated: ... -->`` comment belongs to another
  generator (``rnnlab verify``'s reports in docs/verify.md) and is left to it.
* ```` ```console slow ```` marks a transcript too long for the suite (d2l's 500 epochs):
  normally only its commands are checked to parse; ``RNNLAB_DOCS_SLOW=1`` runs it. (Its
  late epochs repeat only with a fixed thread count: under ``--threads auto`` a long
  float32 run may sum in another order, so such blocks are meant to be rewritten,
  ``RNNLAB_UPDATE_DOCS=1``, after a change.)

To rewrite the blocks from real runs after a change (keeping each block's commands, its
``...`` markers and its number of shown lines):

    RNNLAB_UPDATE_DOCS=1 python -m pytest tests/test_doc_transcripts.py        # fast blocks
    RNNLAB_UPDATE_DOCS=1 RNNLAB_DOCS_SLOW=1 python -m pytest tests/test_doc_transcripts.py
"""

from __future__ import annotations

import io
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rnnlab import cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```console( slow)?\n(.*?)^```\s*$", re.S | re.M)
UPDATE = os.environ.get("RNNLAB_UPDATE_DOCS") == "1"
SLOW = os.environ.get("RNNLAB_DOCS_SLOW") == "1"
CTRL_C = re.compile(r"#\s*Ctrl-C during epoch (\d+)")
MORE = "..."


@dataclass
class Step:
    command: str  # the line after "$ "
    output: list = field(default_factory=list)  # expected lines, "..." markers included

    @property
    def argv(self) -> list:
        argv = shlex.split(self.command, comments=True)
        assert argv and argv[0] == "rnnlab", f"a transcript runs rnnlab only: {self.command!r}"
        return argv[1:]

    @property
    def interrupt_epoch(self) -> int | None:
        m = CTRL_C.search(self.command)
        return int(m.group(1)) if m else None


@dataclass
class Block:
    page: Path
    slow: bool
    start: int  # offset of the block's body in the page's text
    end: int
    steps: list

    @property
    def line(self) -> int:
        return self.page.read_text(encoding="utf-8")[:self.start].count("\n") + 1


def parse(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    blocks = []
    for m in FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if before.startswith("<!-- generated"):
            continue  # another generator's block (docs/verify.md's, tests/test_verify_docs.py)
        steps = []
        for line in m.group(2).splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:]))
            else:
                assert steps, f"{page.name}: a console block must start with '$ rnnlab ...'"
                steps[-1].output.append(line)
        blocks.append(Block(page, bool(m.group(1)), m.start(2), m.end(2), steps))
    return blocks


class Terminal(io.StringIO):
    """stdout and stderr as one stream; after ``stop_after`` lines, the next write is a
    KeyboardInterrupt (once), and what follows is not recorded."""

    def __init__(self, stop_after: int | None):
        super().__init__()
        self.stop_after, self.stopped = stop_after, False

    def write(self, s: str) -> int:
        if self.stopped:
            return len(s)
        n = super().write(s)
        if self.stop_after is not None and kept_lines(self.getvalue()).count("\n") >= self.stop_after:
            self.stopped = True
            raise KeyboardInterrupt
        return n

    def isatty(self) -> bool:
        return False


def kept_lines(text: str) -> str:
    """The output without the lines of --threads auto."""
    return "".join(ln for ln in text.splitlines(keepends=True) if not ln.startswith("threads: "))


def normal(line: str) -> str:
    return re.sub(r" +[\d,.]+ tokens/s", " N tokens/s", line.rstrip())  # padded to a width


def run_step(step: Step, monkeypatch) -> list:
    """Run one command; its output lines as a terminal would show them."""
    head = len(step.output) > 1 and step.output[-1] == MORE  # a lone "...": all skipped
    shown = [ln for ln in step.output if ln != MORE]
    term = Terminal(len(shown) if head else None)
    epoch = step.interrupt_epoch
    if epoch is not None:
        import importlib

        train_module = importlib.import_module("rnnlab.train")  # rnnlab.train is also a function

        real = train_module.train_epoch

        def ctrl_c(backend, cfg, params, optimizer, loader, tcfg, e, *a, **k):
            if e == epoch - 1:  # train_epoch counts from 0
                raise KeyboardInterrupt
            return real(backend, cfg, params, optimizer, loader, tcfg, e, *a, **k)

        monkeypatch.setattr(train_module, "train_epoch", ctrl_c)
    monkeypatch.setattr(sys, "stdout", term)
    monkeypatch.setattr(sys, "stderr", term)
    try:
        cli.main(step.argv)
    except SystemExit:  # argparse's own exits (usage errors)
        pass
    except KeyboardInterrupt:  # stopped by Terminal where cli.main does not catch it
        pass
    finally:
        monkeypatch.undo()
    return kept_lines(term.getvalue()).splitlines()


def expected_and_actual(step: Step, actual: list) -> tuple[list, list]:
    out = step.output
    if len(out) > 1 and out[-1] == MORE:  # the first lines
        want = out[:-1]
        return want, actual[:len(want)]
    if out and out[0] == MORE:  # the last lines
        want = out[1:]
        return want, actual[len(actual) - len(want):] if want else []
    return out, actual


def rewritten(step: Step, actual: list) -> list:
    out = step.output
    if len(out) > 1 and out[-1] == MORE:
        return actual[:len(out) - 1] + [MORE]
    if out and out[0] == MORE:
        return [MORE] + (actual[len(actual) - (len(out) - 1):] if len(out) > 1 else [])
    return actual


PAGE_BLOCKS = [(page, parse(page)) for page in PAGES]
PAGES_WITH_TRANSCRIPTS = [(p, b) for p, b in PAGE_BLOCKS if b]


@pytest.mark.parametrize("page,blocks", PAGES_WITH_TRANSCRIPTS,
                         ids=[p.name for p, _ in PAGES_WITH_TRANSCRIPTS])
def test_transcripts_are_what_the_commands_print(page, blocks, tmp_path, monkeypatch,
                                                 time_machine_dir):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))
    monkeypatch.chdir(tmp_path)
    parser = cli.build_parser()
    failures, new_bodies = [], {}
    for block in blocks:
        if block.slow and not SLOW:
            for step in block.steps:  # the command must still be a valid one
                parser.parse_args(step.argv)
            continue
        lines = []
        for step in block.steps:
            inner = pytest.MonkeyPatch()
            actual = run_step(step, inner)
            want, got = expected_and_actual(step, actual)
            if [normal(x) for x in want] != [normal(x) for x in got]:
                failures.append(f"{page.name}:{block.line} `$ {step.command}`:\n  doc: "
                                + "\n       ".join(want) + "\n  now: " + "\n       ".join(got))
            lines += [f"$ {step.command}", *rewritten(step, actual)]
        new_bodies[block.start, block.end] = "\n".join(lines) + "\n"
    if UPDATE and new_bodies:
        text = page.read_text(encoding="utf-8")
        for (start, end), body in sorted(new_bodies.items(), reverse=True):
            text = text[:start] + body + text[end:]
        page.write_text(text, encoding="utf-8")
        return
    assert not failures, ("the docs show other output than the commands print now "
                          "(RNNLAB_UPDATE_DOCS=1 rewrites them):\n" + "\n".join(failures))
