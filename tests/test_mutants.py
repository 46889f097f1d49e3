"""Planted mistakes in the NumPy BPTT must each make the suite fail.

Each mutant is applied to a copy of the package in a temporary directory (never the
working tree), then the property suite and the NumPy backend tests run against it. A
mutant that passes means the suite cannot see that class of bug. The anchors are exact
lines of the current code: if one is not found the test fails and says which, so the
list is kept in step with the code rather than silently skipped.
"""

from __future__ import annotations

import dataclasses
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
        CELLS, "np.add(dHs[t], dH_next, out=dZ[t])  # dH_t = dHs[t] + dH_next: H_t feeds the "
               "output at t and H_{t+1}\n        dZ[t] *= dtanh[t]",
        "np.add(dHs[t], 0 * dH_next, out=dZ[t])\n        dZ[t] *= dtanh[t]"),
    "rnn-wrong-tanh-derivative": (  # 1 - H instead of 1 - H²
        CELLS, "    np.subtract(1, dtanh, out=dtanh)\n", "    np.subtract(1, Hs[1:], out=dtanh)\n"),
    "lstm-wrong-candidate-derivative": (  # tanh' = C̃² instead of 1 - C̃²
        CELLS, "    np.subtract(1, M4[:, :, 3], out=M4[:, :, 3])", "    np.add(0, M4[:, :, 3], out=M4[:, :, 3])"),
    "lstm-off-by-one-previous-cell": (  # C_t where C_{t-1} belongs
        CELLS, "    M4[:, :, 1] *= Cs[:-1]", "    M4[:, :, 1] *= Cs[1:]"),
    "rnn-off-by-one-weight-gradient": (  # H_t where H_{t-1} belongs
        CELLS, "summed as one (H, T*B) @ (T*B, H) product\n    dW_hh = Hs[:-1].reshape",
        "summed as one (H, T*B) @ (T*B, H) product\n    dW_hh = Hs[1:].reshape"),
    "input-bias-gradient-misses-a-token": (  # db summed from dW_x without its first row
        MODEL, "        db = dW_x.sum(axis=0)", "        db = dW_x[1:].sum(axis=0)"),
    "wrong-clipping-scale": (
        FUNCTIONAL, "        scale = theta / norm\n", "        scale = theta / norm ** 2\n"),
}

SUITE = ["tests/test_numpy_backend.py", "tests/test_properties.py"]  # the backend's own tests first:
# with -x, a mutant they catch stops there (4-6 s, not 10-22 s); the suite is the same


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


# ------------------------------------------------------------------------------
# The catalogue (rnnlab/testing/mistakes.py): every known mistake, planted in a subject
# of every convention, must make a property fail *and* be named by the diagnosis. The
# diagnosis reads the same registry, so every mistake it can name is one the properties
# are shown to catch. Planted subjects are computed by the spec with the mistake's rule
# (rnnlab/testing/planted.py); torch subjects carry it through an autograd.Function.

from rnnlab.testing import CATALOGUE  # noqa: E402
from rnnlab.testing.compare import tolerance  # noqa: E402
from rnnlab.testing.diagnosis import diagnose  # noqa: E402
from rnnlab.testing.loader import load  # noqa: E402
from rnnlab.testing.planted import planted  # noqa: E402
from rnnlab.testing.properties import PROPERTIES, run_property  # noqa: E402
from rnnlab.testing.runner import verify  # noqa: E402
from rnnlab.testing.strategies import Example  # noqa: E402

CONVENTIONS = {  # convention: (cells, output layer, gru form)
    "cs231n": (("rnn", "lstm"), None, "d2l"),
    "deeplearning.ai": (("rnn", "lstm"), None, "d2l"),
    "d2l": (("rnn", "lstm", "gru"), "linear", "d2l"),
    "torch.nn": (("rnn", "lstm", "gru"), None, "torch"),
    "min-char-rnn": (("rnn",), "softmax", "d2l"),
    "protocol": (("rnn", "lstm", "gru"), None, "d2l"),
    "protocol-torch": (("gru",), None, "torch"),  # a Protocol(gru_form="torch")
    # the torch.nn convention on modules of one nn.Linear per gate and source (x2r, h2r,
    # ...), in torch.nn's GRU form and in d2l's; the lstm's gate orders are left to the
    # fused torch.nn modules above (one per gate, its layers are named, not ordered)
    "torch.nn-gates": (("lstm", "gru"), None, "torch"),
    "torch.nn-gates-d2l": (("gru",), None, "d2l"),
    # PyTorch's char-RNN tutorial module: its newer form (nn.RNN over the sequence) and its
    # first, one step per call
    "torch-tutorial": (("rnn",), "logsoftmax", "d2l"),
    "torch-tutorial-step": (("rnn",), "logsoftmax", "d2l"),
}
PLANTED_AS = {"torch.nn-gates": "torch.nn", "torch.nn-gates-d2l": "torch.nn",  # the convention read
              "torch-tutorial-step": "torch-tutorial", "protocol-torch": "protocol"}
# a module called one step at a time holds no loop over the steps: the mistakes of that
# loop (the carry between steps, the accumulation, where BPTT stops, what reaches H_0, a
# state ignored or detached once) are not mistakes it can make; planted in each step they
# are others (a state detached at every step), tried in the modules that run the sequence
NOT_PER_STEP = {"dropped-hidden-carry", "weight-grad-not-accumulated", "bptt-skips-first-step",
                "bptt-skips-last-step",
                "bptt-skips-first-step-and-its-output",
                "dH0-unmultiplied", "dH0-zero", "initial-state-ignored",
                "initial-state-ignored-in-forward", "final-state-detached",
                "initial-state-every-step", "first-state-returned", "first-step-state-returned",
                "final-state-one-step-early",
                "bptt-loop-forward-in-time", "bptt-reads-previous-steps-cache",
                "bptt-reads-caches-reversed", "bptt-carry-clipped-at-1",
                "bptt-carry-clipped-at-5"}
# what a convention cannot see: min-char-rnn runs one batch row (a mean is the sum),
# lossFun returns no gradient for hprev and takes none for its final state; CS231n's rnn
# functions take a gradient for every H_t through dh (dnext_h) and none for a final
# state apart from it (its lstm's take dnext_c), so a detached final state changes nothing
UNSEEN = {"min-char-rnn": {"bias-grad-mean", "dH0-unmultiplied", "dH0-zero",
                           "final-state-detached", "rnn-dx-before-tanh-derivative"},
          # d2l's inputs, as min-char-rnn's, are the one-hots of tokens: no gradient is asked
          # of them, so a mistake in dX alone is not one these conventions can see
          "d2l": {"rnn-dx-before-tanh-derivative"},
          # CS231n's and deeplearning.ai's rnn functions return no final state apart from h
          # (a)'s last step, so none can be the wrong one
          "cs231n": {"final-state-detached@rnn", "first-state-returned@rnn",
                     # nor a state after the first step (its lstm_forward returns h alone;
                     # one step's functions make one state, the first and the last)
                     "first-step-state-returned", "final-state-one-step-early@rnn"},
          # the tutorial's newer module starts from zeros it is not given and returns no state
          "torch-tutorial": {"dH0-unmultiplied", "dH0-zero", "initial-state-ignored",
                             "initial-state-ignored-in-forward", "final-state-detached",
                             "first-state-returned", "first-step-state-returned",
                             "final-state-one-step-early"},
          "deeplearning.ai": {"final-state-detached@rnn", "first-state-returned@rnn",
                              "first-step-state-returned", "final-state-one-step-early@rnn"}}
# what a convention sees as another mistake with the same numbers: CS231n's rnn_backward
# takes the final state's gradient inside dh, so a state detached after each step (no
# carry between steps, the final state's gradient still arriving through dh) is exactly
# a hand-written backward that drops the carry, and is named so
SAME_AS = {"cs231n": {"state-detached-after-each-step@rnn": "dropped-hidden-carry"},
           "deeplearning.ai": {"state-detached-after-each-step@rnn": "dropped-hidden-carry"}}


# mistakes that change the numbers only where a gradient is large (a clip at 5 bites only
# where the carried gradient passes 5): examples are drawn until one shows it
RARE = {"bptt-carry-clipped-at-1": 50, "bptt-carry-clipped-at-5": 200}


# the conventions whose modules keep each gate's bias in two arrays (b_ih + b_hh)
BIAS_SPLIT = {"torch.nn", "torch.nn-gates", "torch.nn-gates-d2l", "torch-tutorial"}


def _cases():
    for conv, (cells, head, form) in CONVENTIONS.items():
        for cell in cells:
            for m in CATALOGUE.values():
                if m.applies(cell, head, form, conv in BIAS_SPLIT, conv == "deeplearning.ai") and not (
                        conv == "torch.nn-gates" and cell == "lstm" and m.perm is not None) and not (
                        conv == "torch-tutorial-step" and m.name in NOT_PER_STEP):
                    yield conv, cell, m.name


CASES = list(_cases())


@pytest.mark.parametrize("conv,cell,name", CASES, ids=[f"{c}-{x}-{n}" for c, x, n in CASES])
def test_catalogue_mistake_is_caught_and_diagnosed(conv, cell, name):
    if conv in ("d2l", "torch.nn", "torch-tutorial", *PLANTED_AS):
        pytest.importorskip("torch")
    form = CONVENTIONS[conv][2]
    loaded = load(planted(conv.removesuffix("-d2l").removesuffix("-torch"), cell, name, gru_form=form),
                  PLANTED_AS.get(conv, conv), cell)
    caught, named = False, set()
    n = RARE.get(name, 2)
    try:
        for unit in loaded.units:
            tol = tolerance(unit.dtype)
            results = [run_property(p, unit, tol, n, 0, shrink=False) for p in PROPERTIES[:2]]
            if any(r.verdict == "FAIL" for r in results):
                caught = True
                # as the runner does: the examples that failed, after the diagnostic one
                failing = [Example.parse(r.example, unit.cons.one_hot) for r in results
                           if r.verdict == "FAIL" and r.example]
                matches, _ = diagnose(unit, tol, failing)
                named |= {n for m in matches if m.full for n in [*m.mistakes, *m.equivalent]}
    finally:
        loaded.close()
    if name in UNSEEN.get(conv, ()) or f"{name}@{cell}" in UNSEEN.get(conv, ()):
        assert not caught, f"{name} is listed as unseen by {conv} but was caught: update UNSEEN"
        return
    assert caught, f"{name} planted in a {conv} {cell} was not caught"
    name = SAME_AS.get(conv, {}).get(f"{name}@{cell}", name)
    assert name in named, f"{name} planted in a {conv} {cell}: the diagnosis named {sorted(named)}"


WHO_BREAKS = {  # property: a planted mistake that must make exactly that property fail
    "forward": ("protocol", "lstm", "lstm-gates-o-c-swapped"),
    "gradients": ("protocol", "gru", "gru-dropped-direct-path"),
    "finite-differences": ("cs231n", "rnn", "dW_h-from-H_t"),
    "stepwise": ("protocol", "rnn", "initial-state-ignored"),
    "carry": ("protocol", "rnn", "initial-state-ignored"),
    "batch": ("protocol", "rnn", "bias-grad-mean"),
}


# a property about what a subject does outside the spec's terms (no catalogue mistake can
# plant it): a wrong implementation written out, that only this property catches
WHO_BREAKS_WRITTEN = {
    "default-state": (f"{ROOT / 'tests' / 'verify_subjects' / 'students' / 'torch_nn_ones_default.py'}"
                      ":OnesLSTM", "torch.nn"),
}


def _writes_into_its_input():
    """A correct protocol rnn whose forward zeroes the X it was given after using it: no
    catalogue mistake (its numbers are right), only the ``unchanged`` property sees it."""
    subject = planted("protocol", "rnn")

    def forward(params, X, state, inner=subject.forward):
        out = inner(params, X, state)
        X[...] = 0
        return out
    return dataclasses.replace(subject, forward=forward)


@pytest.mark.parametrize("prop", [p.name for p in PROPERTIES])
def test_every_property_fails_on_some_wrong_implementation(prop):
    if prop == "unchanged":
        r = verify(_writes_into_its_input(), "protocol", "rnn", max_examples=10)
        verdicts = {p.name: p.verdict for u in r.units for p in u.properties}
        assert verdicts["unchanged"] == "FAIL" and verdicts["forward"] == "PASS", r.render()
        assert "X was changed in place by forward" in r.render()
        return
    if prop in WHO_BREAKS_WRITTEN:
        target, conv = WHO_BREAKS_WRITTEN[prop]
        r = verify(target, conv, max_examples=10)
        verdicts = {p.name: p.verdict for u in r.units for p in u.properties}
        assert verdicts[prop] == "FAIL", r.render()
        return
    conv, cell, name = WHO_BREAKS[prop]
    r = verify(planted(conv, cell, name), conv, cell, max_examples=10)
    verdicts = {p.name: p.verdict for u in r.units for p in u.properties if p.verdict == "FAIL"}
    assert prop in verdicts, r.render()
    assert any(name in m.mistakes for u in r.units for m in u.diagnosis if m.full), r.render()
