"""The catalogue of known BPTT mistakes: named variants of the spec, each one small change.

Each :class:`Mistake` is the spec (``spec.SPEC``) with one rule replaced, so its numbers come
from the same readable reference code. Two things read this registry:

* the diagnosis (``diagnosis.py``): a subject whose outputs and gradients reproduce a
  mistake's numbers, to the tolerance, is told that mistake by name;
* the test suite (``tests/test_mutants.py``): every mistake, planted in a subject of every
  convention, must make a property fail *and* be diagnosed by name.

``kind`` says where the mistake is made: ``"backward"`` in hand-written gradient code
(cs231n, min-char-rnn, a protocol backward); ``"forward"`` in the forward pass (any
subject, gradients then follow it); ``"autograd"`` in autograd code (a state detached
from the graph). When several mistakes reproduce a subject's numbers, those of the
subject's own kind are named first.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from .reparams import (BhnOutside, CellStart, DoubleBias, DropBias, DropGateArray, DropOutputBias,
                       DropBiasHalf, GatePermutation, GateReads, GateReadsLayer, IgnoreState,
                       InputHalfInside,
                       NegateUpdate, ResetAfter,
                       ResetBefore, ShiftGateBias, StackedOrder, StateSwapped, TransposeRecurrent)
from .spec import GATES, IDENTITY, RELU, SIGMOID, SPEC, TANH, Act, Rules

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


# --------------------------------------------------------------------- the catalogue


def _m(name, cells, kind, title, heads=None, forms=None, perm=None, grad_perm=None, split=False,
       predicts=False, **rules):
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


_HEADED = ("linear", "softmax", "logsoftmax")

_LIST = [
    # ---- hand-written backward
    _m("dropped-hidden-carry", ALL, "backward",
       "dH_t = dY_t only: the gradient carried from step t+1, dH_next, is not added",
       carry_h=0.0),
    _m("lstm-dropped-cell-carry", {"lstm"}, "backward",
       "dC_t = dH_t ⊙ O ⊙ (1 - tanh²(C_t)) only: no cell-state gradient reaches step t from "
       "step t+1. In the step's backward, dC_next (dnext_c) is not added into dC_t, or the "
       "dC_prev passed back is dC_next ⊙ F alone, without the path from H_t (then zero from "
       "the last step on); or, in the loop over the steps, the dprev_c a step returns is "
       "never passed to the step before (dnext_c left at zero)", carry_c=0.0),
    _m("lstm-forgot-c-path", {"lstm"}, "backward",
       "dC_t = dC_next only: the path from H_t = O ⊙ tanh(C_t) into C_t, "
       "dH_t ⊙ O ⊙ (1 - tanh²(C_t)), is missing", c_path=0.0),
    _m("sigmoid-derivative-s", GATED, "backward",
       "σ' = σ instead of σ(1 - σ) for the gates", gate=SIGMOID_S_GRAD),
    _m("sigmoid-derivative-one-minus-s", GATED, "backward",
       "σ' = 1 - σ instead of σ(1 - σ) for the gates", gate=SIGMOID_1MS_GRAD),
    _m("sigmoid-derivative-as-tanh", GATED, "backward",
       "σ' written as tanh's, 1 - σ², instead of σ(1 - σ) for the gates", gate=SIGMOID_TANH_GRAD),
    _m("sigmoid-derivative-missing", GATED, "backward",
       "the gates' σ' is left out: dZ_<gate> = d<gate> where d<gate> ⊙ σ(1 - σ) belongs",
       gate=SIGMOID_NO_GRAD),
    _m("tanh-derivative-missing", ALL, "backward",
       "tanh' is left out: the gradient goes through the tanh unchanged, where it is multiplied "
       "by 1 - y² (y = tanh(x): H_t for the rnn, the candidate for lstm/gru)",
       candidate=TANH_NO_GRAD),
    _m("tanh-derivative-sign", ALL, "backward",
       "tanh' = y² - 1 instead of 1 - y²: the sign turned (y = tanh(x): H_t for the rnn, the "
       "candidate for lstm/gru)", candidate=TANH_SIGN_GRAD),
    _m("tanh-derivative-as-sigmoid", ALL, "backward",
       "tanh' written as σ' = y(1 - y) instead of 1 - y² (y = tanh(x): H_t for the rnn, the "
       "candidate for lstm/gru)", candidate=Act("tanh", TANH.f, lambda x, y: y * (1 - y))),
    _m("lstm-cell-tanh-derivative-one-minus-y", {"lstm"}, "backward",
       "tanh'(C_t) = 1 - tanh(C_t) instead of 1 - tanh²(C_t)",
       cell=Act("tanh", TANH.f, lambda x, y: 1 - y)),
    _m("lstm-dO-without-tanh-C", {"lstm"}, "backward",
       "dO = dH instead of dH ⊙ tanh(C_t): the factor tanh(C_t) of H_t = O ⊙ tanh(C_t) left out",
       dO_cell="none"),
    _m("rnn-db-before-tanh-derivative", {"rnn"}, "backward",
       "db_h = Σ_t dH_t, the gradient before tanh' (dbh += dh), where Σ_t dA_t = Σ_t dH_t ⊙ "
       "(1 - H_t²) belongs", db_of="dH"),
    _m("dW_h-transposed", {"rnn"}, "backward",
       "dW_hh returned transposed, Σ_t dA_tᵀ H_{t-1} where Σ_t H_{t-1}ᵀ dA_t belongs (a square "
       "matrix, so no shape error shows it)", dW_h_transposed=True),
    _m("rnn-tanh-derivative-from-H_prev", {"rnn"}, "backward",
       "tanh' = 1 - H_{t-1}² instead of 1 - H_t²: the derivative taken at the state the step "
       "read (prev_h) instead of the one it made (next_h)", dtanh_state="prev"),
    _m("lstm-cell-tanh-derivative-missing", {"lstm"}, "backward",
       "tanh'(C_t) is left out: dC_t = dH_t ⊙ O + dC_next where dH_t ⊙ O ⊙ (1 - tanh²(C_t)) "
       "belongs", cell=Act("tanh", TANH.f, lambda x, y: np.ones_like(y))),
    _m("lstm-dc-without-o", {"lstm"}, "backward",
       "dC_t = dH_t ⊙ (1 - tanh²(C_t)) + dC_next: the output gate O is left out of the path "
       "from H_t = O ⊙ tanh(C_t) into C_t", c_path_o=False),
    _m("lstm-dc-prev-without-f", {"lstm"}, "backward",
       "dC_{t-1} = dC_t (dprev_c = dc) instead of dC_t ⊙ F: the cell-state gradient passed "
       "back is not multiplied by the forget gate", carry_c_forget=False),
    _m("tanh-derivative-one-minus-y", ALL, "backward",
       "tanh' = 1 - y instead of 1 - y² (y = tanh(x): H_t for the rnn, the candidate for lstm/gru)",
       candidate=Act("tanh", TANH.f, lambda x, y: 1 - y)),
    _m("tanh-derivative-of-tanh", ALL, "backward",
       "tanh' = 1 - tanh²(y), with y = tanh(x) already the tanh (H_t for the rnn, the "
       "candidate for lstm/gru): 1 - y² was meant", candidate=Act("tanh", TANH.f,
                                                                  lambda x, y: 1 - np.tanh(y) ** 2)),
    _m("tanh-derivative-one-minus-y-squared", ALL, "backward",
       "tanh' = (1 - y)² instead of 1 - y²: the square outside the parenthesis (y = tanh(x): "
       "H_t for the rnn, the candidate for lstm/gru)", candidate=TANH_SQUARED_GRAD),
    _m("lstm-cell-tanh-derivative-one-minus-y-squared", {"lstm"}, "backward",
       "tanh'(C_t) = (1 - tanh(C_t))² instead of 1 - tanh²(C_t): the square outside the "
       "parenthesis", cell=TANH_SQUARED_GRAD),
    _m("lstm-dc-prev-from-dnext-c", {"lstm"}, "backward",
       "dC_{t-1} = dC_next ⊙ F (dprev_c = dnext_c * f): the cell gradient passed back is the "
       "one that came in from step t+1 alone, without the path from H_t; dF, dI and dC̃ use "
       "the whole dC_t", carry_c_total=False),
    _m("lstm-dconcat-split-x-first", {"lstm"}, "backward",
       "the gradient of the stacked [H_{t-1}; X_t] (deeplearning.ai's dconcat) split as if it "
       "were [X_t; H_{t-1}]: dX_t = dconcat[:D] and dH_{t-1} = dconcat[D:] where dH_{t-1} = "
       "dconcat[:H], dX_t = dconcat[H:] (the order the forward stacked them)",
       dconcat_order="xh"),
    _m("bptt-reads-previous-steps-cache", {"rnn", "lstm"}, "backward",
       "BPTT's step t reads step t-1's cache (cache[t - 1], and step 1 the last step's, "
       "cache[-1]) where its own, cache[t], belongs: each step's local derivatives taken at "
       "the wrong step's values", cache_step="t-1"),
    _m("bptt-reads-caches-reversed", {"rnn", "lstm"}, "backward",
       "BPTT's step t reads the cache of step T+1-t (caches[T - 1 - t] in a loop that already "
       "runs from the last step down) where its own belongs: the caches read in reverse",
       cache_step="reversed"),
    # (a clip shows only where the gradient passes it: an lstm's carried gradient, or one
    # from a softmax loss, stays under 5 on the examples drawn)
    *[_m(f"bptt-carry-clipped-at-{c}", cells, "backward",
         f"the gradient carried into the previous step is clipped to [-{c}, {c}] at every step "
         f"of BPTT (np.clip(dprev_h, -{c}, {c}) inside the loop), dH_0 included: clipping is "
         "for the parameters' gradients, once, after BPTT", heads=heads, clip_carry=float(c))
      for c, cells, heads in ((1, {"rnn", "lstm"}, (None, "linear", "softmax")),
                              (5, {"rnn"}, (None, "linear")))],
    _m("upstream-gradient-at-last-step-only", ALL, "backward",
       "only the last step's output gradient enters BPTT (da[:, :, t] or dh[:, t] added at "
       "t = T alone): every earlier step gets the gradient carried from the step after it and "
       "not its own output's", heads=(None,), upstream="last"),
    _m("rnn-weight-grads-before-tanh-derivative", {"rnn"}, "backward",
       "dW_xh = Σ X_tᵀ dH_t and dW_hh = Σ H_{t-1}ᵀ dH_t: the weight gradients take dH_t where "
       "dA_t = dH_t ⊙ (1 - H_t²) belongs (tanh' left out of them alone)",
       raw_for=("W_xh", "W_hh")),
    _m("rnn-dW_xh-before-tanh-derivative", {"rnn"}, "backward",
       "dW_xh = Σ X_tᵀ dH_t: the input weight's gradient takes dH_t where dA_t = dH_t ⊙ "
       "(1 - H_t²) belongs (tanh' left out of it alone)", raw_for=("W_xh",)),
    _m("rnn-dW_hh-before-tanh-derivative", {"rnn"}, "backward",
       "dW_hh = Σ H_{t-1}ᵀ dH_t: the recurrent weight's gradient takes dH_t where dA_t = dH_t ⊙ "
       "(1 - H_t²) belongs (tanh' left out of it alone)", raw_for=("W_hh",)),
    _m("rnn-dx-before-tanh-derivative", {"rnn"}, "backward",
       "dX_t = dH_t W_xhᵀ: the input's gradient takes dH_t where dA_t = dH_t ⊙ (1 - H_t²) "
       "belongs (tanh' left out of it alone)", raw_for=("X",)),
    _m("rnn-carry-added-after-tanh-derivative", {"rnn"}, "backward",
       "dA_t = dY_t ⊙ (1 - H_t²) + dH_next: the gradient carried from step t+1 added after "
       "tanh', where (dY_t + dH_next) ⊙ (1 - H_t²) belongs (dhraw = (1 - h**2) * dh + dhnext)",
       heads=("softmax",), carry_after_dtanh=True),  # min-char-rnn's loop: one line per sum
    _m("lstm-cell-tanh-derivative-from-candidate", {"lstm"}, "backward",
       "tanh'(C_t) = 1 - C̃² instead of 1 - tanh²(C_t): the candidate's value where tanh(C_t) "
       "belongs (dnext_h * o * (1 - g**2))", cell_grad_reads="c"),
    _m("lstm-cell-tanh-derivative-from-H", {"lstm"}, "backward",
       "tanh'(C_t) = 1 - H_t² instead of 1 - tanh²(C_t): the new hidden state where tanh(C_t) "
       "belongs (dnext_h * o * (1 - next_h**2))", cell_grad_reads="H"),
    _m("tanh-derivative-from-pre-activation", ALL, "backward",
       "tanh' = 1 - x² with x the pre-activation (X_t W_x + H_{t-1} W_h + b), where 1 - y² "
       "with y = tanh(x) belongs (H_t for the rnn, the candidate for lstm/gru)",
       candidate=Act("tanh", TANH.f, lambda x, y: 1 - x * x)),
    _m("lstm-cell-tanh-derivative-from-C", {"lstm"}, "backward",
       "tanh'(C_t) = 1 - C_t² instead of 1 - tanh²(C_t)",
       cell=Act("tanh", TANH.f, lambda x, y: 1 - x * x)),
    _m("lstm-dF-from-C_t", {"lstm"}, "backward",
       "dF = dC ⊙ C_t instead of dC ⊙ C_{t-1}", dF_cell="next"),
    _m("lstm-dF-from-previous-hidden", {"lstm"}, "backward",
       "dF = dC ⊙ H_{t-1} instead of dC ⊙ C_{t-1}: the forget gate's gradient takes the "
       "previous hidden state (prev_h) where the previous cell state (prev_c) belongs",
       dF_cell="h_prev"),
    _m("lstm-dO-from-C", {"lstm"}, "backward",
       "dO = dH ⊙ C_t instead of dH ⊙ tanh(C_t)", dO_cell="raw"),
    _m("dW_h-from-H_t", ALL, "backward",
       "dW_h = Σ_t H_tᵀ dZ_t, with H_t in place of H_{t-1}", dW_h_state="next"),
    _m("bias-grad-mean", ALL, "backward",
       "db is the mean over the batch instead of the sum", bias="mean"),
    _m("grads-mean-over-batch", ALL, "backward",
       "every weight and bias gradient is the mean over the batch (dW /= N) where the loss, "
       "and so its gradient, is the sum; dX and dH_0 are right", heads=(None,),
       param_grads="mean"),
    _m("weight-grad-not-accumulated", ALL, "backward",
       "dW = (one step's part) instead of dW += ...: the weight gradients hold step 1 only",
       accumulate=False),
    *[_m(f"weight-grad-not-accumulated-{d}", {"rnn", "lstm"}, "backward",
         f"{d} = (one step's part) instead of {d} += ...: {d} holds step 1's part only "
         f"(the other gradients are accumulated)", heads=(None, "softmax"), not_accumulated=prefix)
      for d, prefix in (("dW_x", "W_x"), ("dW_h", "W_h"), ("db", "b_"))],
    *[_m(f"output-{what}-grad-not-accumulated", ALL, "backward",
         f"{d} = (one step's part) instead of {d} += ...: {d} holds step 1's part only (the "
         "output layer's other gradient and the cell's are accumulated)", heads=("softmax",),
         not_accumulated=name)
      for what, d, name in (("weight", "dW_hq (dWhy)", "W_hq"), ("bias", "db_q (dby)", "b_q"))],
    _m("bptt-loop-forward-in-time", {"rnn", "lstm"}, "backward",
       "the backward loop runs forward in time (for t in range(T)) where BPTT runs from the last "
       "step down: the gradient carried into each step is the one the step before it made",
       bptt_order="forward"),
    _m("bptt-skips-first-step", ALL, "backward",
       "the backward loop stops before step 1 (range(T-1, 0, -1)): step 1 adds nothing",
       first_step=1),
    _m("bptt-skips-first-step-and-its-output", ALL, "backward",
       "the backward loop, output layer included, stops before step 1 (range(T-1, 0, -1)): "
       "step 1 adds nothing, its output's gradients (dW_hq, db_q) included", heads=_HEADED,
       first_step=1, first_step_head=True),
    _m("dH0-unmultiplied", ALL, "backward",
       "dH_0 is dH_1, the gradient at step 1's output, not carried through step 1 (× W_hᵀ)",
       dstate0="unmultiplied"),
    _m("dH0-upstream-only", ALL, "backward",
       "dH_0 is dh[:, 0], the upstream gradient at step 1's output alone: neither the "
       "gradient carried from step 2 nor the product through step 1 (× W_hᵀ) (lstm: no "
       "dC_0)", heads=(None,), dstate0="upstream"),
    _m("dH0-zero", ALL, "backward",
       "dH_0 (and the lstm's dC_0) is zero: the gradient of the initial state is never computed "
       "(a hand-written backward), or the initial state is detached before the loop "
       "(state[0].detach(): autograd)", dstate0="zero"),
    _m("rnn-W_hh-not-transposed", {"rnn"}, "backward",
       "dH_next = dA_t W_hh instead of dA_t W_hhᵀ", transpose_W_h=False),
    _m("gru-update-derivative-sign", {"gru"}, "backward",
       "∂H_t/∂Z = H̃ - H_{t-1} instead of H_{t-1} - H̃", update_sign=-1.0),
    _m("gru-dropped-direct-path", {"gru"}, "backward",
       "dH_{t-1} misses the direct path dH_t ⊙ Z (H_t = Z ⊙ H_{t-1} + ...)", direct_path=0.0),
    _m("gru-reset-derivative-partner", {"gru"}, "backward",
       "dR = d(R ⊙ P) without ⊙ P (P = H_{t-1} in the d2l form, H_{t-1} W_hh + b_hn in "
       "the torch form)", reset_partner=False),
    *[_m(f"{what}-grad-never-accumulated", ALL, "backward",
         f"{d} is never accumulated ({line} left out of the loop): it stays zero", heads=heads,
         zero_grad=name)
      for what, d, line, name, heads in (
          ("bias", "db (every gate bias's)", "db += ...", "b_", None),
          ("output-bias", "db_q (dby)", "dby += dy", "b_q", ("softmax",)),
          ("output-weight", "dW_hq (dWhy)", "dWhy += ...", "W_hq", ("softmax",)))],
    *[_m(f"{d}-mean-over-batch", ALL, "backward",
         f"{d} alone is the mean over the batch ({d} /= N, or np.mean) where the loss, and so "
         "its gradient, is the sum; the other gradients are summed", heads=(None,),
         param_grads=f"mean-{name}")
      for d, name in (("dW_x", "W_x"), ("dW_h", "W_h"))],
    _m("bptt-last-step-gradient-counted-twice", {"rnn", "lstm"}, "backward",
       "the gradient carried into the last step starts at dh[:, T] (dprev_h = dh[:, -1]) where "
       "it starts at zero, and the step adds dh[:, T] again: H_T's upstream gradient is counted "
       "twice", heads=(None,), last_twice=True),
    _m("lstm-gate-grads-from-dnext-c", {"lstm"}, "backward",
       "dI, dF and dC̃ are taken from dC_next (di = dnext_c * g ...) where dC_t = dC_next + "
       "dH_t ⊙ O ⊙ (1 - tanh²(C_t)) belongs: the path from H_t is left out of the gates' "
       "gradients alone (dC_{t-1} = dC_t ⊙ F is right)", dc_gates="ifc"),
    *[_m(f"lstm-{what}-grad-from-dnext-c", {"lstm"}, "backward",
         f"d{G} is taken from dC_next ({line}) where dC_t = dC_next + dH_t ⊙ O ⊙ "
         "(1 - tanh²(C_t)) belongs: the path from H_t is left out of that gate's gradient alone",
         dc_gates=g)
      for g, G, what, line in (("i", "I", "input-gate", "di = dnext_c * g"),
                               ("f", "F", "forget-gate", "df = dnext_c * prev_c"),
                               ("c", "C̃", "candidate", "dg = dnext_c * i"))],
    _m("lstm-gate-grads-without-dnext-c", {"lstm"}, "backward",
       "dI, dF and dC̃ are taken from the path from H_t alone, dH_t ⊙ O ⊙ (1 - tanh²(C_t)), "
       "where dC_t = dC_next + that belongs: dC_next is left out of the gates' gradients (dit = "
       "da_next * ot * (1 - tanh(c_next)²) * cct * ..., without dc_next * cct)", dc_h_only="ifc"),
    *[_m(f"lstm-{what}-grad-without-dnext-c", {"lstm"}, "backward",
         f"d{G} is taken from the path from H_t alone, dH_t ⊙ O ⊙ (1 - tanh²(C_t)), where dC_t = "
         f"dC_next + that belongs: dC_next is left out of that gate's gradient alone ({line})",
         dc_h_only=g)
      for g, G, what, line in (("i", "I", "input-gate", "dc_next * cct dropped from dit"),
                               ("f", "F", "forget-gate", "dc_next * c_prev dropped from dft"),
                               ("c", "C̃", "candidate", "dc_next * it dropped from dcct"))],
    _m("rnn-dprev-h-without-tanh-derivative", {"rnn"}, "backward",
       "dH_{t-1} = dH_t W_hhᵀ (dprev_h = dnext_h @ Wh.T): tanh' left out of the gradient carried "
       "to the step before, where dA_t W_hhᵀ belongs; dW and db take dA_t, as they should",
       carry_raw=True),
    _m("lstm-dW-concat-x-first", {"lstm"}, "backward",
       "the backward rebuilds concat as [xt; a_prev] for dW = dZ concatᵀ while the forward "
       "stacked [a_prev; xt]: the columns of dWf, dWi, dWc, dWo in the wrong order",
       dW_concat="xh"),
    _m("input-one-hot-from-targets", ALL, "forward",
       "each step's input one-hot is built from targets[t] (xs[t][targets[t]] = 1) where "
       "inputs[t] belongs", heads=("softmax",), inputs_from="targets"),
    _m("softmax-grad-minus-one-at-input", ALL, "backward",
       "dY = softmax(Y) - onehot(inputs[t]): the 1 subtracted at the input's index where it "
       "belongs at the target's (dy[targets[t]] -= 1)", heads=("softmax",), softmax_at="inputs"),
    _m("dH0-plus-first-output-gradient", ALL, "backward",
       "dH_0 = the gradient carried back through step 1 + dh[:, 0]: step 1's upstream gradient "
       "added again (dh0 = dprev_h + dh[:, 0]), where it belongs to H_1 and reaches H_0 through "
       "step 1 already", heads=(None,), dstate0="plus-upstream"),
    _m("softmax-grad-without-minus-one", ALL, "backward",
       "dY = softmax(Y) without subtracting 1 at the target", heads=("softmax",),
       softmax_minus_one=False),
    _m("dW_hq-from-H_prev", ALL, "backward",
       "the output layer's weight gradient uses H_{t-1} in place of H_t", heads=_HEADED,
       head_state="prev"),
    _m("loss-mean-over-steps", ALL, "backward",
       "the loss returned is the mean over the steps (Σ_t / T) where min-char-rnn sums it; "
       "the gradients are the sum's", heads=("softmax",), loss="mean"),
    _m("loss-and-grads-mean-over-steps", ALL, "backward",
       "the loss and its gradients are the mean over the steps (/ T) where min-char-rnn "
       "sums them", heads=("softmax",), loss="mean-both"),
    # ---- forward
    _m("initial-state-ignored", ALL, "forward",
       "the initial state given is ignored: the recurrence starts from zeros",
       reparam=IgnoreState()),
    _m("initial-state-ignored-in-forward", ALL, "backward",
       "the forward starts from zeros instead of the initial state given, while the backward "
       "still returns the gradient of the state it was given",
       reparam=IgnoreState(), pullback=False),
    _m("initial-state-every-step", ALL, "forward",
       "every step reads the initial state H_0 (lstm: and C_0) instead of H_{t-1} (h = "
       "tanh(x_t W_xh + h0 W_hh + b) in the loop, or a new state computed and never assigned "
       "back): the state is never carried from one step to the next",
       step_reads="initial"),
    _m("initial-state-every-step-in-forward", ALL, "backward",
       "the forward's every step reads the initial state H_0 (lstm: and C_0) instead of "
       "H_{t-1} (h0 passed to every step); the backward is the recurrence's, as intended (dH "
       "carried to step t-1), with H_0 cached as each step's previous state (dW_h = Σ H_0ᵀ "
       "dZ_t)", heads=(None,), step_reads="initial", step_reads_back="cache"),
    _m("initial-state-every-step-forward-only", {"rnn"}, "backward",
       "the forward's every step reads the initial state (hprev) instead of H_{t-1}; the "
       "backward is the recurrence's, as intended, on the states computed (dW_hh = Σ H_{t-1}ᵀ "
       "dA_t, dH carried to step t-1)", heads=("softmax",), step_reads="initial",
       step_reads_back="states"),
    _m("first-step-state-returned", ALL, "forward",
       "the state returned is the one after the first step, H_1 (hs[0]; and C_1), where the "
       "last step's, H_T (C_T), belongs", final_state="first"),
    _m("lstm-cell-state-never-updated", {"lstm"}, "forward",
       "every step reads the initial cell state C_0 where C_{t-1} belongs (the new cell state "
       "computed and never assigned back); the hidden state is carried", step_reads="initial-c"),
    _m("lstm-cell-state-never-updated-in-forward", {"lstm"}, "backward",
       "the forward's every step reads the initial cell state C_0 where C_{t-1} belongs (c0 "
       "passed to every step); the backward is the recurrence's, as intended (dC carried to "
       "step t-1), with C_0 cached as each step's previous cell (dF = dC ⊙ C_0)", heads=(None,),
       step_reads="initial-c", step_reads_back="cache"),
    _m("lstm-c0-ignored", {"lstm"}, "forward",
       "the initial cell state given is ignored: C starts from zeros (the initial hidden state "
       "H_0 is used)", reparam=CellStart("zeros")),
    _m("lstm-c0-from-h0", {"lstm"}, "forward",
       "the initial cell state is the initial hidden state (prev_c = h0, c = a0) where C_0 "
       "belongs (zeros in CS231n and deeplearning.ai)", reparam=CellStart("h0")),
    _m("lstm-c0-from-h0-in-forward", {"lstm"}, "backward",
       "the forward starts the cell state from the initial hidden state (prev_c = h0) where C_0 "
       "belongs; the backward is as if it started from C_0 (dh0 leaves out the gradient that "
       "reaches it through the cell)", heads=(None,), reparam=CellStart("h0"), pullback=False),
    _m("outputs-previous-state", ALL, "forward",
       "the outputs collected are the previous states H_{t-1} (h stored before it is updated): "
       "H_0 .. H_{T-1} where H_1 .. H_T belong", heads=(None,), head_input="prev"),
    _m("outputs-previous-state-in-forward", ALL, "backward",
       "the forward's outputs are the previous states H_{t-1} (h stored before it is updated), "
       "H_0 .. H_{T-1} where H_1 .. H_T belong; the backward takes dh[t] as H_t's gradient, as "
       "intended", heads=(None,), head_input="prev-forward-only"),
    _m("outputs-candidate", GATED, "forward",
       "the outputs collected are the candidates (C̃_t for the lstm, H̃_t for the gru) where "
       "they are the hidden states H_t, which are still computed and carried (with an output "
       "layer, it reads the candidate)", outputs="candidate"),
    _m("candidate-relu", ALL, "forward",
       "ReLU instead of tanh for the candidate (H_t for the rnn, C̃ for the lstm, H̃ for the gru)",
       candidate=RELU),
    _m("first-state-returned", ALL, "forward",
       "the state returned is the initial state given (return outputs, state; hprev in "
       "min-char-rnn) instead of the last step's, H_T (and C_T)", final_state="initial"),
    _m("final-state-one-step-early", ALL, "forward",
       "the state returned is the one before the last step, H_{T-1} (and C_{T-1}; hs[T-1] in a "
       "list that starts with H_0), where H_T (C_T) belongs", final_state="previous"),
    _m("lstm-final-cell-state-tanh", {"lstm"}, "forward",
       "the final cell state returned is tanh(C_T) (c_n = torch.tanh(c)) where C_T belongs; "
       "the outputs are right", final_state="tanh-c"),
    _m("lstm-final-state-swapped", {"lstm"}, "forward",
       "the final state is returned as (C_T, H_T) where (H_T, C_T) belongs (return outputs, "
       "(C, H))", final_state="swapped"),
    _m("rnn-recurrent-term-missing", {"rnn"}, "forward",
       "H_t = tanh(X_t W_xh + b_h): the recurrent term H_{t-1} W_hh is never added, so no step "
       "reads the state (W_hh's gradient is zero)", reparam=DropGateArray("h", "W_hh")),
    _m("bias-missing", ALL, "forward",
       "the gate biases are never added (the spec with b = 0): their gradients are zero",
       reparam=DropBias()),
    _m("bias-missing-in-forward", ALL, "backward",
       "the forward leaves the gate biases out; the backward computes db as if they were in",
       reparam=DropBias(), pullback=False),
    _m("output-bias-missing-in-forward", ALL, "backward",
       "the forward leaves the output layer's bias out (Y_t = H_t W_hq); the backward "
       "computes db_q as if it were in", heads=_HEADED, reparam=DropOutputBias(), pullback=False),
    _m("bias-added-twice", ALL, "forward",
       "the gate biases are added twice (the spec with 2b)", reparam=DoubleBias()),
    _m("bias-added-twice-in-forward", ALL, "backward",
       "the forward adds the gate biases twice; the backward computes db as if once",
       reparam=DoubleBias(), pullback=False),
    _m("candidate-sigmoid", ALL, "forward",
       "σ instead of tanh for the candidate (H_t for the rnn, C̃ for the lstm, H̃ for the gru)",
       candidate=SIGMOID),
    _m("candidate-tanh-twice", ALL, "forward",
       "tanh applied twice to the candidate, tanh(tanh(·)) (H_t for the rnn, C̃ for the lstm, "
       "H̃ for the gru): I ⊙ tanh(G) where G is already tanh'd", candidate=TANH_TWICE),
    _m("rnn-bias-after-tanh", {"rnn"}, "forward",
       "H_t = tanh(X_t W_xh + H_{t-1} W_hh) + b_h: the bias added after the tanh where it "
       "belongs inside it", bias_after="true"),
    _m("rnn-bias-after-tanh-in-forward", {"rnn"}, "backward",
       "the forward adds b_h after the tanh, H_t = tanh(X_t W_xh + H_{t-1} W_hh) + b_h; the "
       "backward is that of tanh(... + b_h), as intended: tanh' = 1 - H_t² at the H_t it "
       "cached, db_h = Σ dA_t", heads=(None,), bias_after="forward-only"),
    _m("lstm-outputs-C-in-forward", {"lstm"}, "backward",
       "the forward's outputs are the cell states C_t (h[:, t] = next_c) where they are the "
       "hidden states H_t; the backward takes dh[t] as H_t's gradient, as intended",
       heads=(None,), outputs="C-forward-only"),
    _m("lstm-h-from-previous-cell", {"lstm"}, "forward",
       "H_t = O ⊙ tanh(C_{t-1}): the hidden state computed before the cell state is updated, "
       "from the old cell, where O ⊙ tanh(C_t) belongs", h_cell="prev"),
    _m("lstm-initial-state-swapped", {"lstm"}, "forward",
       "the initial state given is read as (C_0, H_0) where it is (H_0, C_0): h, c = c0, h0 "
       "(the state tuple unpacked in the wrong order)", reparam=StateSwapped()),
    _m("lstm-stacked-weights-read-x-first", {"lstm"}, "forward",
       "each stacked weight (deeplearning.ai's Wf, Wi, Wc, Wo, made for concat = [a_prev; xt]) "
       "is used on [xt; a_prev]: its first D columns multiply X_t and the rest H_{t-1}, where "
       "its first H columns belong to H_{t-1}", reparam=StackedOrder("lstm")),
    _m("lstm-stacked-weights-read-x-first-split-unchanged", {"lstm"}, "backward",
       "each stacked weight (deeplearning.ai's Wf, Wi, Wc, Wo, made for concat = [a_prev; xt]) "
       "is used on [xt; a_prev] in the forward and in dW = dZ concatᵀ, while dconcat is still "
       "split as if it were [a_prev; xt]: da_prev = dconcat[:n_a], dxt = dconcat[n_a:]",
       reparam=StackedOrder("lstm"), dconcat_order="xh-read-hx"),
    _m("lstm-stacked-weights-read-x-first-in-forward", {"lstm"}, "backward",
       "the forward stacks concat = [xt; a_prev] where deeplearning.ai's weights are made for "
       "[a_prev; xt] (their first D columns then multiply X_t); the backward is the intended "
       "one, concat rebuilt [a_prev; xt] for dW and dconcat split so",
       reparam=StackedOrder("lstm"), pullback=False, backward_weights="given"),
    _m("lstm-h-tanh-of-o-times-c", {"lstm"}, "forward",
       "H_t = tanh(O ⊙ C_t) where O ⊙ tanh(C_t) belongs: the tanh around the product",
       h_form="tanh-oc"),
    _m("lstm-forget-bias-plus-one", {"lstm"}, "forward",
       "F = σ(X_t W_xf + H_{t-1} W_hf + b_f + 1): a constant 1 added to the forget gate's "
       "pre-activation in the forward (the forget-bias initialisation, b_f = 1 once at the "
       "start, written into every step)", reparam=ShiftGateBias("f", 1.0)),
    _m("lstm-input-gate-as-one-minus-forget", {"lstm"}, "forward",
       "C_t = F ⊙ C_{t-1} + (1 - F) ⊙ C̃: 1 - F where the input gate I belongs (a GRU's coupled "
       "update); I is computed and never used (its weights get no gradient)", coupled_input=True),
    _m("gru-reset-on-whole-candidate", {"gru"}, "forward",
       "H̃ = tanh(R ⊙ (X_t W_xh + b_h + H_{t-1} W_hh + b_hn)): the reset gate applied to the "
       "input's terms too, where torch.nn applies it to the state's alone, R ⊙ (H_{t-1} W_hh + "
       "b_hn)", forms=("torch",), reset_on="all"),
    # deeplearning.ai's cells predict, yt_pred = softmax(Wya a_next + by): that line wrong
    _m("prediction-from-previous-state", {"rnn", "lstm"}, "forward",
       "the prediction is made from the state the step started from, softmax(Wya a_prev + by), "
       "where a_next belongs", heads=(None,), predicts=True, prediction="H_prev"),
    _m("lstm-prediction-from-cell-state", {"lstm"}, "forward",
       "the prediction is made from the cell state, softmax(Wy c_next + by), where the hidden "
       "state a_next belongs", heads=(None,), predicts=True, prediction="C"),
    _m("prediction-softmax-over-everything", {"rnn", "lstm"}, "forward",
       "the prediction's softmax is normalised over the whole array, np.exp(z) / "
       "np.sum(np.exp(z)), the batch included, where each example's column sums to 1 "
       "(np.sum(..., axis=0))", heads=(None,), predicts=True, prediction="all"),
    _m("prediction-softmax-over-batch", {"rnn", "lstm"}, "forward",
       "the prediction's softmax is normalised over the batch axis (np.sum(..., axis=1)) where "
       "it is over the classes, axis 0", heads=(None,), predicts=True, prediction="batch"),
    # a module that keeps each gate's bias in two arrays, one side of them left out
    _m("hidden-side-biases-missing", GATED, "forward",
       "the hidden-side biases are never added (bias_hh, the b_h<gate> of torch.nn's equations, "
       "or the biases of the layers on the hidden state): each gate has its input-side bias "
       "alone, and the hidden-side ones get no gradient", split=True, reparam=DropBiasHalf("hh")),
    _m("input-side-biases-missing", GATED, "forward",
       "the input-side biases are never added (bias_ih, the b_i<gate> of torch.nn's equations, "
       "or the biases of the layers on the input): each gate has its hidden-side bias alone, "
       "and the input-side ones get no gradient", split=True, reparam=DropBiasHalf("ih")),
    _m("gru-b_hn-missing", {"gru"}, "forward",
       "the candidate's hidden-side bias b_hn (bias_hh's n block, inside R ⊙ (H_{t-1} W_hn + "
       "b_hn)) is never added: its gradient is zero", forms=("torch",), reparam=DropGateArray("h", "b_hn")),
    _m("gru-reset-on-input-term", {"gru"}, "forward",
       "H̃ = tanh(R ⊙ (X_t W_xh) + H_{t-1} W_hh + b_h): the reset gate applied to the input's "
       "term where it belongs on the state's, (R ⊙ H_{t-1}) W_hh", forms=("d2l",),
       reset_on="x"),
    _m("lstm-h-without-tanh", {"lstm"}, "forward",
       "H_t = O ⊙ C_t instead of O ⊙ tanh(C_t)", cell=IDENTITY),
    _m("lstm-h-without-tanh-in-forward", {"lstm"}, "backward",
       "the forward's H_t = O ⊙ C_t, without the tanh; the backward is that of O ⊙ tanh(C_t), "
       "as intended (dO = dH ⊙ tanh(C_t), the path into C_t through tanh')", heads=(None,),
       cell_forward_only=True),
    _m("lstm-outputs-C", {"lstm"}, "forward",
       "the outputs collected are the cell states C_t (outputs.append(c)) where they are the "
       "hidden states H_t = O ⊙ tanh(C_t), which is still computed and carried to the next step",
       heads=(None,), outputs="C"),
    _m("gru-forward-without-direct-term", {"gru"}, "forward",
       "H_t = (1 - Z) ⊙ H̃: the term Z ⊙ H_{t-1} is left out, so nothing of H_{t-1} is kept "
       "directly", direct_term=False),
    _m("lstm-forget-gate-on-H", {"lstm"}, "forward",
       "C_t = F ⊙ H_{t-1} + I ⊙ C̃: the forget gate multiplies the hidden state H_{t-1} "
       "where it belongs on the cell C_{t-1}", forget_on="H"),
    _m("recurrent-weight-transposed", ALL, "forward",
       "H_{t-1} W_hᵀ instead of H_{t-1} W_h: the recurrent weights used transposed (W_hh, "
       "or each W_h<gate>)", reparam=TransposeRecurrent()),
    _m("recurrent-weight-transposed-in-forward", ALL, "backward",
       "the forward uses the recurrent weights transposed (H_{t-1} W_hᵀ: W_hh, or each "
       "W_h<gate>); the backward is that of H_{t-1} W_h, as intended (dW_h = Σ H_{t-1}ᵀ dZ_t, "
       "dH_{t-1} = dZ_t W_hᵀ)", reparam=TransposeRecurrent(), pullback=False,
       transpose_W_h=False),
    _m("output-bias-missing", ALL, "forward",
       "Y_t = H_t W_hq: the output layer's bias b_q is never added (its gradient is zero)",
       heads=_HEADED, reparam=DropOutputBias()),
    _m("gru-update-one-minus-r", {"gru"}, "forward",
       "H_t = Z ⊙ H_{t-1} + (1 - R) ⊙ H̃: the reset gate R where the update gate belongs in "
       "(1 - Z)", update_gates="zr"),
    _m("gru-update-direct-term-r", {"gru"}, "forward",
       "H_t = R ⊙ H_{t-1} + (1 - Z) ⊙ H̃: the reset gate R where the update gate belongs in "
       "Z ⊙ H_{t-1}", update_gates="rz"),
    _m("gru-update-from-r", {"gru"}, "forward",
       "H_t = R ⊙ H_{t-1} + (1 - R) ⊙ H̃: the update written with the reset gate R, the "
       "update gate Z computed and never used", update_gates="rr"),
    _m("gru-update-swapped", {"gru"}, "forward",
       "H_t = (1 - Z) ⊙ H_{t-1} + Z ⊙ H̃: Z and 1 - Z swapped", reparam=NegateUpdate()),
    _m("gru-reset-after-matmul", {"gru"}, "forward",
       "H̃ = tanh(X W_xh + b_h + R ⊙ (H_{t-1} W_hh)): the reset gate applied after the "
       "matmul, every candidate bias outside R ⊙ (...), where d2l applies it before, "
       "(R ⊙ H_{t-1}) W_hh (and torch.nn after it with its hidden-side bias inside, "
       "R ⊙ (H_{t-1} W_hh + b_hn))",
       forms=("d2l",), reparam=ResetAfter()),
    _m("gru-reset-before-matmul", {"gru"}, "forward",
       "H̃ = tanh(X W_xh + b_h + (R ⊙ H_{t-1}) W_hh + b_hn): the reset gate applied before "
       "the matmul (d2l's form) where torch.nn applies it after, R ⊙ (H_{t-1} W_hh + b_hn)",
       forms=("torch",), reparam=ResetBefore()),
    _m("gru-b_hn-outside-reset", {"gru"}, "forward",
       "H̃ = tanh(X W_xh + b_h + R ⊙ (H_{t-1} W_hh) + b_hn): the hidden-side candidate bias "
       "b_hn (bias_hh's n block) added outside the reset product, where torch.nn puts it "
       "inside, R ⊙ (H_{t-1} W_hh + b_hn)", forms=("torch",), reparam=BhnOutside()),
    # PyTorch's char-RNN tutorial (its first form: i2h and i2o on cat(input, hidden))
    _m("linear-recurrence", {"rnn"}, "forward",
       "a linear recurrence: no tanh on the new hidden state, H_t = X_t W_xh + H_{t-1} W_hh + b_h",
       candidate=IDENTITY),
    _m("output-one-step-late", {"rnn", "lstm", "gru"}, "forward",
       "the output is computed one step late, from the previous hidden state: Y_t = H_{t-1} W_hq "
       "+ b_q (the output layer applied before the state is updated; in PyTorch's char-RNN "
       "tutorial, i2o on cat(input, hidden): the output is computed from the input and the "
       "previous hidden state, one step late)", heads=_HEADED, head_input="prev"),
    _m("tutorial-linear-recurrence-late-output", {"rnn"}, "forward",
       "a linear recurrence: no tanh on the new hidden state; the output is computed from the "
       "input and the previous hidden state, one step late (PyTorch's char-RNN tutorial: "
       "hidden = i2h(combined), output = i2o(combined), combined = cat(input, hidden))",
       heads=("logsoftmax",), candidate=IDENTITY, head_input="prev"),
    # ---- autograd
    _m("state-detached-each-step", ALL, "autograd",
       "the state is detached at every step: no gradient flows from H_t (C_t) into step t",
       detach=True),
    _m("state-detached-after-each-step", ALL, "autograd",
       "the state is detached at the end of every step (h = h.detach() last in the loop), "
       "the final state returned included: no gradient flows from step t+1, nor from the "
       "final state, into step t; the initial state still gets its gradient through step 1",
       detach=True, detach_first=False, final_state_grad=False),
    _m("outputs-detached", ALL, "autograd",
       "the outputs are detached before they are collected (outputs.append(h.detach()), or "
       "h.data): no gradient reaches a step through its own output, only through the state "
       "returned at the end", heads=(None, "linear", "logsoftmax"), output_grad=False),
    _m("lstm-cell-state-detached-each-step", {"lstm"}, "autograd",
       "the cell state alone is detached at every step (c = c.detach()): no gradient reaches "
       "C_{t-1} from step t, C_0's included; the hidden state's path is kept", cut_c=True),
    _m("lstm-hidden-state-detached-each-step", {"lstm"}, "autograd",
       "the hidden state alone is detached at every step (h = h.detach()): no gradient reaches "
       "H_{t-1} from step t, H_0's included; the cell state's path is kept", cut_h=True),
    _m("final-state-detached", ALL, "autograd",
       "the final state is returned detached (h.detach()): the gradient it receives does not "
       "flow back", final_state_grad=False),
]


def _cycles_name(gates: tuple, perm: tuple) -> str:
    """A permutation as the gates it exchanges, in the spec's letters: ``o-c-swapped`` (o
    reads c's block and c reads o's), ``i-f-o-rotated`` (i reads f's, f o's, o i's). Unlike
    a gate string (``rzh``), it cannot be read as some library's own, correct, order."""
    source = dict(zip(gates, perm))  # gate -> the gate whose block it reads
    seen, parts = set(), []
    for g in gates:
        if g in seen or source[g] == g:
            continue
        cycle = [g]
        while source[cycle[-1]] != g:
            cycle.append(source[cycle[-1]])
        seen.update(cycle)
        parts.append("-".join(cycle) + ("-swapped" if len(cycle) == 2 else "-rotated"))
    return "-".join(parts)


def _permutations():
    """Gate blocks in another order: read so in the forward (autograd follows, and a
    backward true to its forward), or only in the forward, or only in the backward's
    stacking (lstm: hand-written in CS231n, whose gate order differs from the others')."""
    for cell in ("lstm", "gru"):
        gates = GATES[cell]
        for perm in itertools.permutations(gates):
            if perm == gates:
                continue
            order = _cycles_name(gates, perm)
            wrong = ", ".join(f"{g} from {s}'s weights" for g, s in zip(gates, perm) if g != s)
            # σ gates alone exchanged: computing each from another's weights gives the
            # numbers of computing each right and using it in another's place
            # (C_t = I ⊙ C_{t-1} + F ⊙ C̃), so the title says both
            used = ("; or, the same numbers, the gates computed from their own weights and "
                    "used in each other's places" if perm[-1] == gates[-1] else "")
            yield _m(f"{cell}-gates-{order}", {cell}, "forward",
                     f"gates computed from the wrong blocks: {wrong}{used}", perm=perm,
                     reparam=GatePermutation(cell, perm))
            if cell != "lstm":
                continue
            inverse = tuple(gates[perm.index(g)] for g in gates)  # gate k's gradient to block inverse[k]
            yield _m(f"lstm-gates-{order}-in-forward", {cell}, "backward",
                     f"the forward computes {wrong}; the backward puts each gate's gradient "
                     "back in the convention's block", perm=perm, grad_perm=inverse,
                     reparam=GatePermutation(cell, perm))
            yield _m(f"lstm-backward-gates-{order}", {cell}, "backward",
                     "the backward puts the gate gradients in the wrong blocks: "
                     + ", ".join(f"d{g} in {s}'s" for g, s in zip(gates, perm) if g != s),
                     grad_perm=perm)


def _copied_gates():
    """One gate computed from another gate's weights, the other keeping its own (a line
    copied from the one above and not fully edited): not a permutation, so the gate whose
    weights were meant is never used."""
    for cell in ("lstm", "gru"):
        gates = GATES[cell]
        for g, s in itertools.permutations(gates, 2):
            # two σ gates: g computed from s's weights equals g computed right and s used
            # in g's place, so the title names both (the numbers cannot tell them apart)
            used = ("" if CANDIDATE[cell] in (g, s) else
                    f"; or, the same numbers, {g.upper()} computed right but {s.upper()} "
                    f"used where {g.upper()} belongs")
            yield _m(f"{cell}-{g}-from-{s}-weights", {cell}, "forward",
                     f"gate {g} computed from gate {s}'s weights (W_x{s}, W_h{s}, b_{s}) "
                     f"instead of its own (W_x{g}, W_h{g}, b_{g}), which are never used{used}",
                     reparam=GateReads(cell, g, s))


TORCH_LETTER = {"lstm": {"c": "g"}, "gru": {"h": "n"}}  # torch.nn's names of the candidate
GATE_NAMES = {"i": "input", "f": "forget", "o": "output", "c": "candidate", "z": "update",
              "r": "reset", "h": "candidate"}
UNUSED = {  # gate: (what the code computes without it, the constant it amounts to)
    ("lstm", "i"): ("C_t = F ⊙ C_{t-1} + C̃", UNUSED_ONE),
    ("lstm", "f"): ("C_t = C_{t-1} + I ⊙ C̃", UNUSED_ONE),
    ("lstm", "o"): ("H_t = tanh(C_t)", UNUSED_ONE),
    ("gru", "r"): ("H̃ = tanh(X W_xh + H_{t-1} W_hh + b_h) (torch.nn's form: X W_xh + b_h + "
                   "H_{t-1} W_hh + b_hn)", UNUSED_ONE),
    ("gru", "z"): ("H_t = H̃", UNUSED_ZERO),
}


def _copied_arrays():
    """One array of a gate's line read from another gate (W_hf in the o gate's line, b_i in
    the f gate's), the rest of the line right: that array of the gate's own is never used."""
    for cell in ("lstm", "gru"):
        for g, s in itertools.permutations(GATES[cell], 2):
            for kind in ("W_x", "W_h", "b_"):
                yield _m(f"{cell}-{g}-reads-{kind}{s}", {cell}, "forward",
                         f"gate {g}'s line uses {kind}{s} (gate {s}'s) where {kind}{g} belongs, "
                         f"the rest of the line right: {kind}{g} is never used (its gradient is "
                         "zero)", reparam=GateReads(cell, g, s, (kind,)))


def _one_gate():
    """A mistake in one gate alone, the others right: its σ' left out or written σ, tanh in
    the place of its σ, the gate computed and never used, its bias never added."""
    for cell in ("lstm", "gru"):
        for g in GATES[cell]:
            G, name = g.upper(), GATE_NAMES[g]
            whose = "the candidate's" if g == CANDIDATE[cell] else f"the {name} gate's"
            yield _m(f"{cell}-b_{g}-missing", {cell}, "forward",
                     f"{whose} bias b_{g} is never added (the other gates' are): its gradient "
                     "is zero", reparam=DropGateArray(g))
            yield _m(f"{cell}-{g}-recurrent-term-missing", {cell}, "forward",
                     f"{whose} recurrent term H_{{t-1}} W_h{g} is never added (it reads the "
                     f"input alone): W_h{g}'s gradient is zero", reparam=DropGateArray(g, f"W_h{g}"))
            yield _m(f"{cell}-{g}-recurrent-weight-transposed", {cell}, "forward",
                     f"{whose} recurrent weight alone used transposed, H_{{t-1}} W_h{g}ᵀ (in "
                     f"torch.nn's layout h @ W_h{TORCH_LETTER[cell].get(g, g)} where "
                     f"h @ W_h{TORCH_LETTER[cell].get(g, g)}.T belongs), the other "
                     "gates' right: a square matrix, so no shape error shows it",
                     reparam=TransposeRecurrent(g))
            if cell == "lstm":
                yield _m(f"lstm-{g}-term-missing-in-dx-dh", {cell}, "backward",
                         f"dX_t and dH_{{t-1}} leave out {whose} term (dZ_{g} W_x{g}ᵀ, dZ_{g} "
                         f"W_h{g}ᵀ): the sums over the gates written without it",
                         back_skip=g)
            if not (cell == "gru" and g == "h"):  # (torch.nn's GRU keeps b_h and b_hn apart)
                torch_letter = TORCH_LETTER[cell].get(g, g)
                for side, what in (("hh", "hidden"), ("ih", "input")):
                    yield _m(f"{cell}-{g}-{what}-side-bias-missing", {cell}, "forward",
                             f"{whose} {what}-side bias (its block of bias_{side}, "
                             f"b_{side[0]}{torch_letter} in "
                             f"torch.nn's equations, or its {what} layer's bias) is never added: "
                             f"that half gets no gradient", split=True,
                             reparam=DropBiasHalf(side, (g,)))
            if not (cell == "gru" and g == "h"):  # (the gru candidate's line reads R too)
                act = "tanh" if g == CANDIDATE[cell] else "σ"
                yield _m(f"{cell}-{g}-bias-after-activation", {cell}, "forward",
                         f"{whose} bias added after its {act}: {act}(X_t W_x{g} + H_{{t-1}} "
                         f"W_h{g}) + b_{g}, a parenthesis closed before + b_{g}", outside=((g, "b"),))
                if cell == "lstm":
                    yield _m(f"lstm-{g}-bias-after-activation-in-forward", {cell}, "backward",
                             f"the forward adds {whose} bias after its {act}, {act}(X_t W_x{g} + "
                             f"H_{{t-1}} W_h{g}) + b_{g} (a parenthesis closed before + b_{g}); the "
                             f"backward is that of {act}(... + b_{g}), as intended, on the values "
                             "the forward made", outside=((g, "b"),), outside_back=False)
                yield _m(f"{cell}-{g}-recurrent-term-after-activation", {cell}, "forward",
                         f"{whose} recurrent term and bias added after its {act}: {act}(X_t "
                         f"W_x{g}) + H_{{t-1}} W_h{g} + b_{g}, a parenthesis closed after the "
                         "input's term", outside=((g, "hb"),))
                yield _m(f"{cell}-{g}-hidden-layer-after-activation", {cell}, "forward",
                         f"{whose} hidden-side layer added after its {act}: {act}(x2{g}(x)) + "
                         f"h2{g}(h) (or {act}(x W_i{g}ᵀ + b_i{g}) + h W_h{g}ᵀ + b_h{g} in torch.nn's "
                         "equations), a parenthesis closed after the input's layer",
                         split=True, outside=((g, "hb"),), reparam=InputHalfInside(g))
            if g == CANDIDATE[cell]:
                continue
            yield _m(f"{cell}-{g}-sigmoid-derivative-missing", {cell}, "backward",
                     f"σ' left out for the {name} gate {G} alone: the gradient of its "
                     f"pre-activation is d{G} where d{G} ⊙ {G}(1 - {G}) belongs",
                     gate_acts=((g, SIGMOID_NO_GRAD),))
            yield _m(f"{cell}-{g}-sigmoid-derivative-one-minus-s", {cell}, "backward",
                     f"σ' = 1 - σ for the {name} gate {G} alone: the gradient of its "
                     f"pre-activation is d{G} ⊙ (1 - {G}) where d{G} ⊙ {G}(1 - {G}) belongs",
                     gate_acts=((g, SIGMOID_1MS_GRAD),))
            yield _m(f"{cell}-{g}-sigmoid-derivative-as-tanh", {cell}, "backward",
                     f"σ' written as tanh's for the {name} gate {G} alone: the gradient of its "
                     f"pre-activation is d{G} ⊙ (1 - {G}²) where d{G} ⊙ {G}(1 - {G}) belongs",
                     gate_acts=((g, SIGMOID_TANH_GRAD),))
            yield _m(f"{cell}-{g}-sigmoid-derivative-s", {cell}, "backward",
                     f"σ' = σ for the {name} gate {G} alone: the gradient of its pre-activation "
                     f"is d{G} ⊙ {G} where d{G} ⊙ {G}(1 - {G}) belongs",
                     gate_acts=((g, SIGMOID_S_GRAD),))
            yield _m(f"{cell}-{g}-sigmoid-derivative-from-pre-activation", {cell}, "backward",
                     f"σ' of the {name} gate {G} written with its pre-activation x: the "
                     f"gradient of x is d{G} ⊙ x(1 - x) where d{G} ⊙ {G}(1 - {G}), {G} = σ(x), "
                     "belongs", gate_acts=((g, SIGMOID_OF_X_GRAD),))
            yield _m(f"{cell}-{g}-gate-tanh", {cell}, "forward",
                     f"the {name} gate {G} computed with tanh instead of σ", gate_acts=((g, TANH),))
            what, act = UNUSED[(cell, g)]
            yield _m(f"{cell}-{name}-gate-unused", {cell}, "forward",
                     f"{what}: the {name} gate {G} is computed and never used (its weights "
                     "get no gradient)", gate_acts=((g, act),))


def _derivatives_read_elsewhere():
    """A σ gate's derivative G(1 - G) written with another gate's value, wholly (a line
    copied from the gate above and not edited: df = ... * i * (1 - i)) or in one of its two
    places (f * (1 - i), i * (1 - f)); the candidate's tanh' from another tanh."""
    for cell in ("lstm", "gru"):
        sigmas = [g for g in GATES[cell] if g != CANDIDATE[cell]]
        for g, s in itertools.permutations(sigmas, 2):
            G, S, name = g.upper(), s.upper(), GATE_NAMES[g]
            for suffix, (a, b) in ((f"from-{s}", (s, s)), (f"{g}-one-minus-{s}", (g, s)),
                                   (f"{s}-one-minus-{g}", (s, g))):
                A, B = a.upper(), b.upper()
                yield _m(f"{cell}-{g}-sigmoid-derivative-{suffix}", {cell}, "backward",
                         f"σ' of the {name} gate {G} written with gate {S}'s value: the gradient "
                         f"of its pre-activation is d{G} ⊙ {A}(1 - {B}) where d{G} ⊙ {G}(1 - {G}) "
                         "belongs (the line copied from gate "
                         f"{s}'s and not fully edited)", grad_reads=((g, a, b),))
    yield _m("lstm-candidate-derivative-from-tanh-c", {"lstm"}, "backward",
             "the candidate's tanh' taken at the cell, 1 - tanh²(C_t), where 1 - C̃² belongs "
             "(dC̃ ⊙ (1 - tanh(c_next)²))", grad_reads=(("c", "TC", "TC"),))
    yield _m("gru-candidate-derivative-from-H", {"gru"}, "backward",
             "the candidate's tanh' taken at the new state, 1 - H_t², where 1 - H̃² belongs "
             "(dH̃ ⊙ (1 - h_next²))", grad_reads=(("h", "H", "H"),))


def _copied_layers():
    """In a module of one layer per gate and source (its bias in two arrays, one per
    layer), one gate's line calling another gate's layer on one side: its weight and its
    half of the bias that gate's, the rest of the line right; or, one nn.Parameter per
    array, that half of the bias alone another gate's. torch.nn's GRU candidate,
    whose two biases are the spec's b_h and b_hn, is left to the arrays' entries above."""
    for cell, gates in (("lstm", GATES["lstm"]), ("gru", ("z", "r"))):
        for g, s in itertools.permutations(gates, 2):
            letter = TORCH_LETTER[cell].get(s, s)
            for side, what, W in (("hh", "hidden", "W_h"), ("ih", "input", "W_x")):
                yield _m(f"{cell}-{g}-reads-{s}-{what}-layer", {cell}, "forward",
                         f"gate {g}'s line uses gate {s}'s {what}-side layer ({W}{s} and its "
                         f"half of b_{s}: {'h2' if side == 'hh' else 'x2'}{letter}(...), or "
                         f"W_{side[0]}{letter} and b_{side[0]}{letter} in torch.nn's equations) "
                         f"where its own belongs, the rest of the line right: gate {g}'s own "
                         f"{what}-side weight and bias are never used (their gradients are zero)",
                         split=True, reparam=GateReadsLayer(g, s, side))
                yield _m(f"{cell}-{g}-reads-b_{s}-{what}-half", {cell}, "forward",
                         f"gate {g}'s line adds gate {s}'s {what}-side bias (its half of "
                         f"b_{s}: b_{side[0]}{letter} in torch.nn's equations) where its own "
                         f"belongs, the weights right: gate {g}'s own {what}-side bias is never "
                         "used (its gradient is zero)", split=True,
                         reparam=GateReadsLayer(g, s, side, weights=False))


CATALOGUE: dict[str, Mistake] = {m.name: m for m in [*_LIST, *_permutations(), *_copied_gates(),
                                                      *_one_gate(), *_copied_arrays(),
                                                      *_copied_layers(),
                                                      *_derivatives_read_elsewhere()]}


# Arrays returned with the right numbers in another shape: no rule of the spec, so not in the
# catalogue above; the diagnosis names one when every array that differs is one of these.
LAYOUT = {
    "outputs-stacked":
        "the outputs stacked, torch.stack(outputs) of shape (T, B, V), where d2l's functions "
        "concatenate them, torch.cat(outputs, dim=0) of shape (T*B, V); the numbers are right",
    "state-without-layer-axis":
        "the final state returned without its layer axis, (B, H), where torch.nn's h_n (and "
        "c_n) is (num_layers, B, H) = (1, B, H); the numbers are right",
    "time-batch-axes-exchanged":
        "the outputs with their time and batch axes exchanged: (T, B, H) where (B, T, H) "
        "belongs (batch_first=True), or the other way; the numbers are right",
    "gradient-transposed":
        "a weight's gradient returned transposed, (n, m) where the weight is (m, n) (dWax = "
        "xt @ dz.T where dz @ xt.T belongs): the numbers are right, their axes exchanged",
    "right-numbers-other-shape":
        "an array with the right numbers, in the order they belong, in another shape",
}


# What a module starts from when called without a state, where zeros belong: no rule of the
# spec (the spec is given its state), so not in the catalogue; the diagnosis names one when
# the module's run without a state equals the spec's from this state. (state part, value)
DEFAULT_STATES = {
    "default-state-ones": ("called without a state it starts from ones (torch.ones where "
                           "torch.zeros belongs), its hidden and cell state alike", (0, 1), 1.0),
    "lstm-default-hidden-state-ones": ("called without a state its hidden state starts from "
                                       "ones, where zeros belong (its cell state from zeros)",
                                       (0,), 1.0),
    "lstm-default-cell-state-ones": ("called without a state its cell state starts from ones, "
                                     "where zeros belong (its hidden state from zeros)", (1,), 1.0),
}


def applicable(cell: str, head: str | None = None, gru_form: str = "d2l",
               bias_split: bool = False, predicts: bool = False) -> list[Mistake]:
    """The catalogue's mistakes that can be made in this cell, output layer and GRU form
    (with ``bias_split``, by a module that keeps each gate's bias in two arrays; with
    ``predicts``, in a cell's own prediction)."""
    return [m for m in CATALOGUE.values() if m.applies(cell, head, gru_form, bias_split, predicts)]


def combine(a: Mistake, b: Mistake) -> Mistake | None:
    """Both mistakes at once, or None when they change the same rule (or are both reparams,
    or both gate orders: two permutations compose into one already in the catalogue)."""
    changed_a = {f for f in Rules.__dataclass_fields__ if getattr(a.rules, f) is not getattr(SPEC, f)
                 and getattr(a.rules, f) != getattr(SPEC, f)}
    changed_b = {f for f in Rules.__dataclass_fields__ if getattr(b.rules, f) is not getattr(SPEC, f)
                 and getattr(b.rules, f) != getattr(SPEC, f)}
    if changed_a & changed_b:
        return None
    rules = replace(a.rules, **{f: getattr(b.rules, f) for f in changed_b})
    return Mistake(f"{a.name} + {b.name}", a.cells & b.cells, a.kind, f"{a.title}; and {b.title}",
                   rules, a.heads & b.heads, a.forms & b.forms)
