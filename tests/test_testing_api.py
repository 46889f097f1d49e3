"""rnnlab.testing from Python: every wrong argument is an rnnlab error that names it.

The verify suite's own building blocks (examples, constraints, problems, layouts, the
Protocol) are public; a wrong value must be refused where it is given, with the argument
and the value, never a raw exception from inside Hypothesis or NumPy, and never taken
silently (``shrink="no"`` is not True, ``sizes(-5, -10)`` draws nothing).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("hypothesis")

from rnnlab.errors import RnnlabError  # noqa: E402
from rnnlab.testing import (  # noqa: E402
    Constraints,
    Example,
    Protocol,
    examples,
    fused,
    make_problem,
    problems,
    single,
    sizes,
    verify,
)

EX = "examples/verify/cs231n_correct.py"
OK = Constraints("lstm")
GOOD = Example(1, 2, 3, 2, 0)


def _forward(params, X, state):
    return X, state


BAD = [  # (call, a word the message must hold)
    (lambda: verify(EX, "cs231n", example=3), "example"),
    (lambda: verify(EX, "cs231n", example="B=1.5 T=1 D=1 H=1 seed=0"), "B=1.5"),
    (lambda: verify(EX, "cs231n", progress="yes"), "progress"),
    (lambda: verify(EX, "cs231n", shrink="no"), "shrink"),
    (lambda: verify(EX, "cs231n", diagnose_failures=1), "diagnose_failures"),
    (lambda: verify(EX, "cs231n", max_examples=0), "max_examples"),
    (lambda: verify(EX, "cs231n", seed=-1), "seed"),
    (lambda: verify(EX, "cs231n", bogus=1), "bogus"),
    (lambda: Example.parse(None), "example"),
    (lambda: Example.parse("B=1 T=1 D=1 H=1 seed=0 B=2"), "twice"),
    (lambda: Example.parse("B=1 T=1 D=1 H=1 seed=0", one_hot="yes"), "one_hot"),
    (lambda: Example(0, 1, 1, 1, 0), "B"),
    (lambda: Example(1, 1, 1, 1, -3), "seed"),
    (lambda: Example(1, 1, 1, True, 0), "H"),
    (lambda: make_problem(None, GOOD), "cons"),
    (lambda: make_problem(OK, None), "ex"),
    (lambda: make_problem(OK, GOOD, dtype="int32"), "dtype"),
    (lambda: make_problem(OK, GOOD, dtype=None), "dtype"),
    (lambda: Constraints("cnn"), "cell"),
    (lambda: Constraints("gru", gru_form="keras"), "gru_form"),
    (lambda: Constraints("lstm", B=(3, 1)), "B[1]"),
    (lambda: Constraints("lstm", T=5), "T"),
    (lambda: Constraints("lstm", head="tanh"), "head"),
    (lambda: Constraints("lstm", one_hot="no"), "one_hot"),
    (lambda: Constraints("lstm", state_in=(True,)), "state_in"),
    (lambda: Constraints("rnn", state_upstream=("yes",)), "state_upstream[0]"),
    (lambda: Constraints("lstm", bias_split=True, split_biases="b_f"), "split_biases"),
    (lambda: examples(None), "cons"),
    (lambda: examples(OK, min_T=0), "min_T"),
    (lambda: problems("cnn"), "cell"),
    (lambda: problems("lstm", bogus=1), "bogus"),
    (lambda: problems("lstm", dtype="int32"), "dtype"),
    (lambda: sizes("a", "b"), "low"),
    (lambda: sizes(-5, -10), "low"),
    (lambda: sizes(3, 1), "high"),
    (lambda: fused(3, "ifog", "lstm"), "kind"),
    (lambda: fused("W_x", "ifo", "lstm"), "gate order"),
    (lambda: fused("W_x", "ifog", "cnn"), "cell"),
    (lambda: fused("W_x", "ifog", "lstm", transpose="yes"), "transpose"),
    (lambda: single(None), "name"),
    (lambda: single("Wy", column=1), "column"),
    (lambda: Protocol("cnn", _forward), "cell"),
    (lambda: Protocol("lstm", None), "forward"),
    (lambda: Protocol("lstm", _forward, backward=3), "backward"),
    (lambda: Protocol("lstm", _forward, layout={"Wx": 1}), "layout"),
    (lambda: Protocol("lstm", _forward, dtype="int32"), "dtype"),
    (lambda: Protocol("lstm", _forward, name=""), "name"),
]


@pytest.mark.parametrize("k", range(len(BAD)))
def test_a_wrong_argument_is_named(k, monkeypatch):
    call, word = BAD[k]
    with pytest.raises(RnnlabError) as info:
        call()
    assert word in str(info.value), str(info.value)


def test_the_checks_keep_what_is_right():
    """The refusals above do not refuse the valid forms they stand beside."""
    assert Example.parse("B=2, T=3 V=4 H=2 seed=7", one_hot=True) == Example(2, 3, 4, 2, 7, True)
    assert Example(np.int64(2), 1, 1, 1, 0).B == 2 and type(Example(np.int64(2), 1, 1, 1, 0).B) is int
    p = make_problem(Constraints("gru", gru_form="torch", B=(2, 2)), GOOD, dtype=np.float32)
    assert p.X.shape == (2, 1, 3)
    assert sizes(0, 0) is not None and fused("W_x", "ifgo", "lstm").labels == tuple("ifgo")
    assert Protocol("rnn", _forward, layout={"Wx": single("W_xh")}).cell == "rnn"
