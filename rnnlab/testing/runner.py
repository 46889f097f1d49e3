"""``verify``: the pipeline, subject -> convention adapter -> properties -> report + diagnosis."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, TextIO

from ..arguments import Flag, Instance, NonNegativeInt, PositiveInt, checked
from ..errors import ConfigError
from . import isolation
from .adapters import SubjectEnded
from .compare import tolerance
from .diagnosis import diagnose
from .loader import check_convention, load, split_target
from .properties import PROPERTIES, run_property
from .report import PropertyResult, Report, UnitReport
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


def _timeout(name: str, value) -> float:  # seconds per call into the subject
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0 < value < float("inf")):
        raise ConfigError(f"timeout must be a positive number of seconds, got {value!r}")
    return float(value)


@checked
def verify(subject, convention: str | None = None, cell: str | None = None, *,
           max_examples: PositiveInt = DEFAULT_MAX_EXAMPLES, seed: NonNegativeInt = 0,
           example: Annotated[str | None, _example] = None, shrink: Flag = True,
           progress: Annotated[Progress | None, Instance(Progress, "a rnnlab.testing.Progress",
                                                         optional=True, got="type")] = None,
           diagnose_failures: Flag = True,
           timeout: Annotated[float, _timeout] = isolation.DEFAULT_TIMEOUT) -> Report:
    """Check ``subject`` against the spec; return the :class:`Report` (``report.ok``,
    ``report.exit_status``, ``str(report)``, ``report.to_json()``).

    ``subject``: ``"FILE[:NAME]"`` or a path, a module, a function (d2l), an nn.Module class
    or factory (torch.nn), ``lossFun`` (min-char-rnn) or a :class:`Protocol`. A file runs
    in a child process, each call into it limited to ``timeout`` seconds; a Python object
    runs in this process (it is already imported here).
    ``convention``: one of ``loader.CONVENTIONS``; left out, a file is tried under each and
    checked under the most specific that fits (the report's first note says which), and a
    file that fits none raises :class:`~rnnlab.errors.NoConventionFitsError`.
    ``example``: replay one example, ``"B=2 T=3 D=1 H=2 seed=7"``, instead of searching.
    Usage problems raise :class:`~rnnlab.errors.SubjectError`.
    """
    progress = progress or Progress(None)
    check_convention(convention)  # before a process is started for the file
    if isinstance(subject, (str, Path)):
        try:
            loaded = isolation.load(subject, convention, cell, timeout=float(timeout))
        except SubjectEnded as end:  # importing or probing it ended the child
            path, name = split_target(str(subject))
            progress.done()
            printed = isolation.printed_note(getattr(end, "printed", ""))
            return Report(path.name + (f":{name}" if name else ""), convention or "", seed=seed,
                          max_examples=max_examples, ended=end.line,
                          notes=[printed] if printed else [])
    else:
        loaded = load(subject, convention, cell)
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
                ended = getattr(loaded, "ended", None)
                if ended is not None:  # the subject ended the child: nothing more can run
                    ur.properties.append(PropertyResult(prop.name, prop.title, "n/a",
                                                        reason="not run: your code ended the "
                                                               "process running it (above)"))
                    continue
                progress.step(unit.name, prop.name, k, n_steps)
                ur.properties.append(run_property(prop, unit, tol, max_examples, seed, shrink, replay))
            ended = getattr(loaded, "ended", None)
            if not ur.ok and diagnose_failures and ended is None:
                failing = [Example.parse(p.example, unit.cons.one_hot) for p in ur.properties
                           if p.verdict == "FAIL" and p.example]
                try:
                    ur.diagnosis, ur.diagnosis_note = diagnose(
                        unit, tol, failing, [p.name for p in ur.properties if p.verdict == "FAIL"])
                except SubjectEnded:
                    ended = loaded.ended
            if ended is not None and not ur.ok:
                ur.diagnosis_note = "no diagnosis: your code ended the process running it"
            if unit.printed:
                ur.notes.append(f"your code printed {unit.printed} line(s) during the checks "
                                "(not shown)")
            report.units.append(ur)
        report.ended = getattr(loaded, "ended", None)
    finally:
        loaded.close()
        progress.done()
    printed = isolation.printed_note(getattr(loaded, "printed", ""))
    if printed is not None:
        report.notes.append(printed)
    return report


def assert_conforms(subject, convention: str | None = None, cell: str | None = None, *,
                    max_examples: int = DEFAULT_MAX_EXAMPLES, seed: int = 0,
                    timeout: float = isolation.DEFAULT_TIMEOUT) -> Report:
    """Verify ``subject`` from your own test: an AssertionError whose message is the report
    when a property fails; the report when every property holds.

    >>> from rnnlab.testing import assert_conforms
    >>> import my_rnn_layers
    >>> assert_conforms(my_rnn_layers, convention="cs231n", cell="lstm")  # doctest: +SKIP
    """
    report = verify(subject, convention, cell, max_examples=max_examples, seed=seed,
                    timeout=timeout)
    if not report.ok:
        raise AssertionError("\n" + report.render())
    return report
