"""``verify``: the pipeline, subject -> convention adapter -> properties -> report + diagnosis."""

from __future__ import annotations

import sys
import time
from typing import Annotated, TextIO

from ..arguments import Flag, Instance, NonNegativeInt, PositiveInt, checked
from .compare import tolerance
from .diagnosis import diagnose
from .loader import load
from .properties import PROPERTIES, run_property
from .report import Report, UnitReport
from .strategies import Example

DEFAULT_MAX_EXAMPLES = 30  # per property: a default run of one subject takes seconds


class Progress:
    """One line on ``stream`` per property once a run has taken more than ``after`` seconds
    (a quick run prints nothing); the clock is ``clock`` (a test passes a fake one)."""

    def __init__(self, stream: TextIO | None = sys.stderr, after: float = 3.0, clock=time.monotonic):
        self.stream, self.after, self.clock = stream, after, clock
        self.start = clock()
        self.shown = False

    def elapsed(self) -> float:
        return self.clock() - self.start

    def step(self, unit: str, prop: str, k: int, n: int) -> None:
        if self.stream is None or self.elapsed() < self.after:
            return
        self.shown = True
        print(f"rnnlab verify: {unit}: {prop} ({k}/{n}), {self.elapsed():.0f} s so far",
              file=self.stream, flush=True)

    def done(self) -> None:
        if self.stream is not None and self.shown:
            print(f"rnnlab verify: done in {self.elapsed():.0f} s", file=self.stream, flush=True)


def _example(name: str, value):  # a replayable example: checked before the subject is loaded
    if value is not None:
        Example.parse(value)
    return value


@checked
def verify(subject, convention: str | None = None, cell: str | None = None, *,
           max_examples: PositiveInt = DEFAULT_MAX_EXAMPLES, seed: NonNegativeInt = 0,
           example: Annotated[str | None, _example] = None, shrink: Flag = True,
           progress: Annotated[Progress | None, Instance(Progress, "a rnnlab.testing.Progress",
                                                         optional=True, got="type")] = None,
           diagnose_failures: Flag = True) -> Report:
    """Check ``subject`` against the spec; return the :class:`Report` (``report.ok``,
    ``report.exit_status``, ``str(report)``, ``report.to_json()``).

    ``subject``: ``"FILE[:NAME]"`` or a path, a module, a function (d2l), an nn.Module class
    or factory (torch.nn), ``lossFun`` (min-char-rnn) or a :class:`Protocol`.
    ``example``: replay one example, ``"B=2 T=3 D=1 H=2 seed=7"``, instead of searching.
    Usage problems raise :class:`~rnnlab.errors.SubjectError`.
    """
    loaded = load(subject, convention, cell)
    progress = progress or Progress(None)
    try:
        conv = loaded.units[0].convention if loaded.units else convention
        report = Report(loaded.label, conv, found=loaded.found, notes=loaded.notes, seed=seed,
                        max_examples=max_examples)
        n_steps = len(loaded.units) * len(PROPERTIES)
        k = 0
        for unit in loaded.units:
            tol = tolerance(unit.dtype)
            replay = Example.parse(example, unit.cons.one_hot) if example is not None else None
            ur = UnitReport(unit.name, unit.cell, unit.dtype, tol.describe(), notes=list(unit.notes))
            for prop in PROPERTIES:
                k += 1
                progress.step(unit.name, prop.name, k, n_steps)
                ur.properties.append(run_property(prop, unit, tol, max_examples, seed, shrink, replay))
            if not ur.ok and diagnose_failures:
                failing = [Example.parse(p.example, unit.cons.one_hot) for p in ur.properties
                           if p.verdict == "FAIL" and p.example]
                ur.diagnosis, ur.diagnosis_note = diagnose(unit, tol, failing)
            if unit.printed:
                ur.notes.append(f"your code printed {unit.printed} line(s) during the checks "
                                "(not shown)")
            report.units.append(ur)
        return report
    finally:
        loaded.close()
        progress.done()


def assert_conforms(subject, convention: str | None = None, cell: str | None = None, *,
                    max_examples: int = DEFAULT_MAX_EXAMPLES, seed: int = 0) -> Report:
    """Verify ``subject`` from your own test: an AssertionError whose message is the report
    when a property fails; the report when every property holds.

    >>> from rnnlab.testing import assert_conforms
    >>> import my_rnn_layers
    >>> assert_conforms(my_rnn_layers, convention="cs231n", cell="lstm")  # doctest: +SKIP
    """
    report = verify(subject, convention, cell, max_examples=max_examples, seed=seed)
    if not report.ok:
        raise AssertionError("\n" + report.render())
    return report
