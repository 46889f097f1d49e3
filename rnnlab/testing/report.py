"""The verification report: plain data, rendered for the terminal (and pytest) and as JSON.

A :class:`Report` holds one :class:`UnitReport` per function pair or module checked
(CS231n's ``lstm_forward``/``lstm_backward``, a torch.nn class...). Each unit lists its
properties, PASS / FAIL / n/a, and for a failure the smallest example Hypothesis found
(sizes and seed, replayable), every array that differs (for a fused weight, which gate
blocks; for a sequence, which time steps; the worst absolute and relative error and the
tolerance), then the diagnosis: the known mistakes whose numbers the subject reproduces.
Nothing in a report depends on the clock, so the same run prints the same report.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass
class Difference:
    """One array that differs from what it should be (the spec, or the subject's own run)."""

    quantity: str  # the subject's name for the array
    role: str  # output | state | loss | grad | dinput | dstate | fd | call
    message: str  # "differs from the spec", "has shape (3, 4), expected (4, 3)"
    worst_abs: float | None = None
    worst_rel: float | None = None  # worst |got - want| / max |want| (the array's scale)
    at: tuple | None = None  # index of the worst entry
    got: float | str | None = None
    want: float | None = None
    tolerance: str | None = None
    gates: list | None = None  # gate blocks (the subject's labels) that differ
    steps: list | None = None  # time steps that differ
    T: int | None = None
    detail: str | None = None  # a sentence on the steps or the finite differences

    def lines(self) -> list[str]:
        head = f"{self.quantity} {self.message}"
        if self.gates:
            head += f": gate block{'s' if len(self.gates) > 1 else ''} {', '.join(self.gates)}"
        out = [head]
        if self.detail:
            out.append(self.detail)
        if self.worst_abs is not None and self.role != "fd":
            at = f"[{', '.join(map(str, self.at))}]" if self.at else ""
            got = self.got if isinstance(self.got, str) else f"{self.got:.6g}"
            out.append(f"worst {self.quantity}{at}: got {got}, expected {self.want:.6g}; "
                       f"abs error {self.worst_abs:.2e}, rel error {self.worst_rel:.2e} "
                       f"(tolerance {self.tolerance})")
        elif self.worst_abs is not None:  # finite differences: one line
            out = [out[0], f"{self.detail}; abs error {self.worst_abs:.2e} "
                           f"(tolerance {self.tolerance})"]
        return out


@dataclass
class PropertyResult:
    name: str  # forward | gradients | finite-differences | stepwise | carry | batch
    title: str  # what it asserts
    verdict: str  # PASS | FAIL | n/a
    examples: int = 0  # examples run (the last failing one included)
    reason: str | None = None  # why n/a
    example: str | None = None  # the smallest failing example, "B=1 T=2 D=1 H=1 seed=0"
    differences: list = field(default_factory=list)
    error: str | None = None  # the subject raised (or returned the wrong structure): one line, with where


@dataclass
class Match:
    """A known mistake (or two) whose numbers the subject reproduces."""

    mistakes: list  # names
    titles: list  # what each one does
    quantities: list  # the arrays it explains
    full: bool  # True: every compared array matches the mistake; False: these arrays only
    equivalent: list = field(default_factory=list)  # mistakes with the very same numbers here


@dataclass
class UnitReport:
    name: str  # "lstm_forward / lstm_backward", "MyLSTM", "lossFun"
    cell: str
    dtype: str
    tolerance: str
    properties: list = field(default_factory=list)
    diagnosis: list = field(default_factory=list)  # Match
    diagnosis_note: str | None = None  # why there is no diagnosis, or on which example
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.verdict != "FAIL" for p in self.properties)


@dataclass
class Report:
    subject: str  # "solution.py", "solution.py:MyLSTM"
    convention: str
    units: list = field(default_factory=list)
    found: list = field(default_factory=list)  # what was found in the subject
    notes: list = field(default_factory=list)
    seed: int = 0
    max_examples: int = 0
    ended: str | None = None  # how the subject ended the process running it, if it did

    @property
    def ok(self) -> bool:
        """Every property ran and held: a subject that ended its process never passes."""
        return self.ended is None and bool(self.units) and all(u.ok for u in self.units)

    @property
    def exit_status(self) -> int:
        return 0 if self.ok else 1

    # ---------------------------------------------------------------- renderings

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str)

    def render(self) -> str:
        given = f" --convention {self.convention}" if self.convention else ""
        out = [f"rnnlab verify {self.subject}{given} "
               f"(seed {self.seed}, up to {self.max_examples} examples per property)"]
        if self.found:
            out.append(f"found: {', '.join(self.found)}")
        out += [f"note: {n}" for n in self.notes]
        for u in self.units:
            out.append("")
            out.append(f"{u.name} ({u.cell}, computes in {u.dtype})")
            out += [f"  note: {n}" for n in u.notes]
            out.append(f"  tolerances: {u.tolerance}")
            for p in u.properties:
                count = {"PASS": f" ({p.examples} examples)", "n/a": "",
                         "FAIL": f" (falsified by example {p.examples})"}[p.verdict]
                out.append(f"  {p.verdict:<4}  {p.name}: {p.title}{count}")
                if p.verdict == "n/a" and p.reason:
                    out.append(f"        {p.reason}")
                if p.verdict == "FAIL":
                    if p.example:
                        out.append(f"        smallest failing example: {p.example}")
                    if p.error:
                        out.append(f"        {p.error}")
                    for d in p.differences:
                        lines = d.lines()
                        out.append(f"        - {lines[0]}")
                        out += [f"          {ln}" for ln in lines[1:]]
            if not u.ok:
                out.append("  diagnosis:")
                if u.diagnosis_note:
                    out.append(f"    {u.diagnosis_note}")
                for m in u.diagnosis:
                    names = " + ".join(m.mistakes)
                    if m.full and len(m.mistakes) > 1:
                        out.append(f"    known mistakes {names}: every array matches the spec with "
                                   f"both mistakes:")
                    elif m.full:
                        out.append(f"    known mistake {names}: every array matches the spec with this "
                                   f"mistake:")
                    else:
                        out.append(f"    {', '.join(m.quantities)} match{'es' if len(m.quantities) == 1 else ''} "
                                   f"the spec with known mistake {names}:")
                    out += [f"      {t}" for t in m.titles]
                    if m.equivalent:
                        out.append(f"      (the same numbers as {', '.join(m.equivalent)}: "
                                   "these outputs cannot tell them apart)")
                if not u.diagnosis and not u.diagnosis_note:
                    out.append("    no known mistake reproduces these numbers; the differences above "
                               "say where they start")
        out.append("")
        n_fail = sum(1 for u in self.units if not u.ok)
        checked = ", ".join(u.name for u in self.units)
        if self.ended is not None:
            out.append(f"FAIL: {self.ended}")
        else:
            out.append(f"PASS: every property holds ({checked})" if self.ok else
                       f"FAIL: {n_fail} of {len(self.units)} checked do not conform: "
                       + ", ".join(u.name for u in self.units if not u.ok))
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()
