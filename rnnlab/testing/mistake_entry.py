"""One entry of the catalogue of known mistakes (``mistakes.py``): the :class:`Mistake`
record, :func:`mistake` that writes one as the spec with rules replaced, and the
nonlinearities with a wrong derivative that entries use.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .rules import GATES, SIGMOID, SPEC, TANH, Act, Rules

ALL = frozenset(("rnn", "lstm", "gru"))
CANDIDATE = {"lstm": "c", "gru": "h"}  # the tanh gate; the others are σ gates
GATED = frozenset(("lstm", "gru"))

# local derivatives written wrong, and gates computed and never used
SIGMOID_NO_GRAD = Act("sigmoid", SIGMOID.f, lambda x, y: np.ones_like(y))  # σ' left out: 1
SIGMOID_S_GRAD = Act("sigmoid", SIGMOID.f, lambda x, y: y)  # σ' = σ
SIGMOID_1MS_GRAD = Act("sigmoid", SIGMOID.f, lambda x, y: 1 - y)  # σ' = 1 - σ
SIGMOID_OF_X_GRAD = Act("sigmoid", SIGMOID.f, lambda x, y: x * (1 - x))  # σ' at the pre-activation
SIGMOID_TANH_GRAD = Act("sigmoid", SIGMOID.f, lambda x, y: 1 - y * y)  # σ' written as tanh's
TANH_NO_GRAD = Act("tanh", TANH.f, lambda x, y: np.ones_like(y))  # tanh' left out: 1
TANH_SIGN_GRAD = Act("tanh", TANH.f, lambda x, y: y * y - 1)  # tanh' = y² - 1: the sign turned
TANH_SQUARED_GRAD = Act("tanh", TANH.f, lambda x, y: (1 - y) ** 2)  # tanh' = (1 - y)²: a parenthesis
TANH_TWICE = Act("tanh(tanh)", lambda x: np.tanh(np.tanh(x)),  # tanh applied twice, and its
                 lambda x, y: (1 - y * y) * (1 - np.tanh(x) ** 2))  # true derivative (chain rule)
UNUSED_ONE = Act("unused", lambda x: np.ones_like(x), lambda x, y: np.zeros_like(y))  # the gate as 1
UNUSED_ZERO = Act("unused", lambda x: np.zeros_like(x), lambda x, y: np.zeros_like(y))  # ... as 0


@dataclass(frozen=True)
class Mistake:
    name: str  # stable id, e.g. "lstm-dropped-cell-carry"
    cells: frozenset  # the cells it can be made in
    kind: str  # "backward" | "forward" | "autograd"
    title: str  # what the code does, in the spec's notation (docs/verify.md)
    rules: Rules  # SPEC with the mistake
    heads: frozenset = frozenset((None, "linear", "softmax", "logsoftmax"))  # output layers it needs
    forms: frozenset = frozenset(("d2l", "torch"))  # gru forms where it exists
    perm: tuple | None = None  # gate permutation: canonical gate k reads gate perm[k]'s weights
    grad_perm: tuple | None = None  # lstm backward: gate k's gradient goes to gate grad_perm[k]'s block
    split: bool = False  # made only where a gate's bias is two arrays (torch.nn's b_ih + b_hh)
    predicts: bool = False  # made only where each cell predicts (deeplearning.ai's yt_pred)

    def applies(self, cell: str, head: str | None = None, gru_form: str = "d2l",
                bias_split: bool = False, predicts: bool = False) -> bool:
        return (cell in self.cells and head in self.heads
                and (cell != "gru" or gru_form in self.forms) and (bias_split or not self.split)
                and (predicts or not self.predicts))

    def describe(self, order: tuple | None = None) -> str:
        """The title, for a gate permutation in the subject's own gate labels: ``order``
        is ((canonical gate, subject's label), ...) in the subject's block order."""
        perm = self.perm if self.perm is not None else self.grad_perm
        if perm is None or order is None:
            return self.title
        spec = ", ".join(lab for _, lab in order)
        read = ", ".join(_read_order(perm, order))
        if self.perm is None:  # the backward's stacking only
            return (f"the backward puts the gate gradients in the blocks in the order {read}; "
                    f"the forward reads them, as the convention, in the order {spec}")
        if self.grad_perm is not None:  # the forward's order only: the backward the convention's
            return (f"the forward reads the gate blocks in the order {read}; the backward puts "
                    f"the gradients back in the convention's order, {spec}")
        return f"the gate blocks are read in the order {read}; the convention's order is {spec}"


def _read_order(perm: tuple, order: tuple) -> list:
    """The subject's labels of the gates the code takes each block for, block by block."""
    gates = GATES["lstm" if len(perm) == 4 else "gru"]
    label = dict(order)
    # block k holds canonical gate c_k; the code uses it as the gate s with perm[s] = c_k
    inverse = {perm[i]: gates[i] for i in range(len(gates))}
    return [label[inverse[c]] for c, _ in order]


def mistake(name, cells, kind, title, heads=None, forms=None, perm=None, grad_perm=None, split=False,
            predicts=False, **rules) -> Mistake:
    """The entry ``name``: SPEC with ``rules`` replaced (``reparam=`` a forward that re-reads
    the weights), made in ``cells`` by code of ``kind``."""
    reparam = rules.pop("reparam", None)
    if grad_perm is not None:  # the backward's stacking is a rule of the spec's backward
        rules["grad_perm"] = grad_perm
    r = replace(SPEC, **rules)
    if reparam is not None:
        r = replace(r, reparam=reparam)
    extra = {}
    if heads is not None:
        extra["heads"] = frozenset(heads)
    if forms is not None:
        extra["forms"] = frozenset(forms)
    return Mistake(name, frozenset(cells), kind, title, r, perm=perm, grad_perm=grad_perm, split=split,
                   predicts=predicts, **extra)


HEADED = ("linear", "softmax", "logsoftmax")
