"""The catalogue of known BPTT mistakes: named variants of the spec, each one small change.

Each :class:`Mistake` is the spec (``rules.SPEC``) with one rule replaced, so its numbers come
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

from dataclasses import replace

import numpy as np

from .mistake_entry import (ALL, GATED, HEADED, SIGMOID_1MS_GRAD, SIGMOID_NO_GRAD, SIGMOID_S_GRAD,
                            SIGMOID_TANH_GRAD, TANH_NO_GRAD, TANH_SIGN_GRAD, TANH_SQUARED_GRAD,
                            TANH_TWICE, Mistake, mistake)
from .mistake_families import families
from .reparams import (BhnOutside, CellStart, DoubleBias, DropBias, DropBiasHalf, DropGateArray,
                       DropOutputBias, IgnoreState, NegateGate, ResetAfter, ResetBefore,
                       ShiftGateBias, StackedOrder, StateSwapped, TransposeRecurrent)
from .rules import IDENTITY, RELU, SIGMOID, SPEC, TANH, Act, Rules


_LIST = [
    # ---- hand-written backward
    mistake("dropped-hidden-carry", ALL, "backward",
            "dH_t = dY_t only: the gradient carried from step t+1, dH_next, is not added",
            carry_h=0.0),
    mistake("lstm-dropped-cell-carry", {"lstm"}, "backward",
            "dC_t = dH_t ⊙ O ⊙ (1 - tanh²(C_t)) only: no cell-state gradient reaches step t from "
            "step t+1. In the step's backward, dC_next (dnext_c) is not added into dC_t, or the "
            "dC_prev passed back is dC_next ⊙ F alone, without the path from H_t (then zero from "
            "the last step on); or, in the loop over the steps, the dprev_c a step returns is "
            "never passed to the step before (dnext_c left at zero)", carry_c=0.0),
    mistake("lstm-forgot-c-path", {"lstm"}, "backward",
            "dC_t = dC_next only: the path from H_t = O ⊙ tanh(C_t) into C_t, "
            "dH_t ⊙ O ⊙ (1 - tanh²(C_t)), is missing", c_path=0.0),
    mistake("sigmoid-derivative-s", GATED, "backward",
            "σ' = σ instead of σ(1 - σ) for the gates", gate=SIGMOID_S_GRAD),
    mistake("sigmoid-derivative-one-minus-s", GATED, "backward",
            "σ' = 1 - σ instead of σ(1 - σ) for the gates", gate=SIGMOID_1MS_GRAD),
    mistake("sigmoid-derivative-as-tanh", GATED, "backward",
            "σ' written as tanh's, 1 - σ², instead of σ(1 - σ) for the gates", gate=SIGMOID_TANH_GRAD),
    mistake("sigmoid-derivative-missing", GATED, "backward",
            "the gates' σ' is left out: dZ_<gate> = d<gate> where d<gate> ⊙ σ(1 - σ) belongs",
            gate=SIGMOID_NO_GRAD),
    mistake("tanh-derivative-missing", ALL, "backward",
            "tanh' is left out: the gradient goes through the tanh unchanged, where it is multiplied "
            "by 1 - y² (y = tanh(x): H_t for the rnn, the candidate for lstm/gru)",
            candidate=TANH_NO_GRAD),
    mistake("tanh-derivative-sign", ALL, "backward",
            "tanh' = y² - 1 instead of 1 - y²: the sign turned (y = tanh(x): H_t for the rnn, the "
            "candidate for lstm/gru)", candidate=TANH_SIGN_GRAD),
    mistake("tanh-derivative-as-sigmoid", ALL, "backward",
            "tanh' written as σ' = y(1 - y) instead of 1 - y² (y = tanh(x): H_t for the rnn, the "
            "candidate for lstm/gru)", candidate=Act("tanh", TANH.f, lambda x, y: y * (1 - y))),
    mistake("lstm-cell-tanh-derivative-one-minus-y", {"lstm"}, "backward",
            "tanh'(C_t) = 1 - tanh(C_t) instead of 1 - tanh²(C_t)",
            cell=Act("tanh", TANH.f, lambda x, y: 1 - y)),
    mistake("lstm-dO-without-tanh-C", {"lstm"}, "backward",
            "dO = dH instead of dH ⊙ tanh(C_t): the factor tanh(C_t) of H_t = O ⊙ tanh(C_t) left out",
            dO_cell="none"),
    mistake("rnn-db-before-tanh-derivative", {"rnn"}, "backward",
            "db_h = Σ_t dH_t, the gradient before tanh' (dbh += dh), where Σ_t dA_t = Σ_t dH_t ⊙ "
            "(1 - H_t²) belongs", db_of="dH"),
    mistake("dW_h-transposed", {"rnn"}, "backward",
            "dW_hh returned transposed, Σ_t dA_tᵀ H_{t-1} where Σ_t H_{t-1}ᵀ dA_t belongs (a square "
            "matrix, so no shape error shows it)", dW_h_transposed=True),
    mistake("rnn-tanh-derivative-from-H_prev", {"rnn"}, "backward",
            "tanh' = 1 - H_{t-1}² instead of 1 - H_t²: the derivative taken at the state the step "
            "read (prev_h) instead of the one it made (next_h)", dtanh_state="prev"),
    mistake("lstm-cell-tanh-derivative-missing", {"lstm"}, "backward",
            "tanh'(C_t) is left out: dC_t = dH_t ⊙ O + dC_next where dH_t ⊙ O ⊙ (1 - tanh²(C_t)) "
            "belongs", cell=Act("tanh", TANH.f, lambda x, y: np.ones_like(y))),
    mistake("lstm-dc-without-o", {"lstm"}, "backward",
            "dC_t = dH_t ⊙ (1 - tanh²(C_t)) + dC_next: the output gate O is left out of the path "
            "from H_t = O ⊙ tanh(C_t) into C_t", c_path_o=False),
    mistake("lstm-dc-prev-without-f", {"lstm"}, "backward",
            "dC_{t-1} = dC_t (dprev_c = dc) instead of dC_t ⊙ F: the cell-state gradient passed "
            "back is not multiplied by the forget gate", carry_c_forget=False),
    mistake("tanh-derivative-one-minus-y", ALL, "backward",
            "tanh' = 1 - y instead of 1 - y² (y = tanh(x): H_t for the rnn, the candidate for lstm/gru)",
            candidate=Act("tanh", TANH.f, lambda x, y: 1 - y)),
    mistake("tanh-derivative-of-tanh", ALL, "backward",
            "tanh' = 1 - tanh²(y), with y = tanh(x) already the tanh (H_t for the rnn, the "
            "candidate for lstm/gru): 1 - y² was meant", candidate=Act("tanh", TANH.f,
                                                                       lambda x, y: 1 - np.tanh(y) ** 2)),
    mistake("tanh-derivative-one-minus-y-squared", ALL, "backward",
            "tanh' = (1 - y)² instead of 1 - y²: the square outside the parenthesis (y = tanh(x): "
            "H_t for the rnn, the candidate for lstm/gru)", candidate=TANH_SQUARED_GRAD),
    mistake("lstm-cell-tanh-derivative-one-minus-y-squared", {"lstm"}, "backward",
            "tanh'(C_t) = (1 - tanh(C_t))² instead of 1 - tanh²(C_t): the square outside the "
            "parenthesis", cell=TANH_SQUARED_GRAD),
    mistake("lstm-dc-prev-from-dnext-c", {"lstm"}, "backward",
            "dC_{t-1} = dC_next ⊙ F (dprev_c = dnext_c * f): the cell gradient passed back is the "
            "one that came in from step t+1 alone, without the path from H_t; dF, dI and dC̃ use "
            "the whole dC_t", carry_c_total=False),
    mistake("lstm-dconcat-split-x-first", {"lstm"}, "backward",
            "the gradient of the stacked [H_{t-1}; X_t] (deeplearning.ai's dconcat) split as if it "
            "were [X_t; H_{t-1}]: dX_t = dconcat[:D] and dH_{t-1} = dconcat[D:] where dH_{t-1} = "
            "dconcat[:H], dX_t = dconcat[H:] (the order the forward stacked them)",
            dconcat_order="xh"),
    mistake("bptt-reads-previous-steps-cache", {"rnn", "lstm"}, "backward",
            "BPTT's step t reads step t-1's cache (cache[t - 1], and step 1 the last step's, "
            "cache[-1]) where its own, cache[t], belongs: each step's local derivatives taken at "
            "the wrong step's values", cache_step="t-1"),
    mistake("bptt-reads-caches-reversed", {"rnn", "lstm"}, "backward",
            "BPTT's step t reads the cache of step T+1-t (caches[T - 1 - t] in a loop that already "
            "runs from the last step down) where its own belongs: the caches read in reverse",
            cache_step="reversed"),
    # (a clip shows only where the gradient passes it: an lstm's carried gradient, or one
    # from a softmax loss, stays under 5 on the examples drawn)
    *[mistake(f"bptt-carry-clipped-at-{c}", cells, "backward",
              f"the gradient carried into the previous step is clipped to [-{c}, {c}] at every step "
              f"of BPTT (np.clip(dprev_h, -{c}, {c}) inside the loop), dH_0 included: clipping is "
              "for the parameters' gradients, once, after BPTT", heads=heads, clip_carry=float(c))
      for c, cells, heads in ((1, {"rnn", "lstm"}, (None, "linear", "softmax")),
                              (5, {"rnn"}, (None, "linear")))],
    mistake("upstream-gradient-at-last-step-only", ALL, "backward",
            "only the last step's output gradient enters BPTT (da[:, :, t] or dh[:, t] added at "
            "t = T alone): every earlier step gets the gradient carried from the step after it and "
            "not its own output's", heads=(None,), upstream="last"),
    mistake("rnn-weight-grads-before-tanh-derivative", {"rnn"}, "backward",
            "dW_xh = Σ X_tᵀ dH_t and dW_hh = Σ H_{t-1}ᵀ dH_t: the weight gradients take dH_t where "
            "dA_t = dH_t ⊙ (1 - H_t²) belongs (tanh' left out of them alone)",
            raw_for=("W_xh", "W_hh")),
    mistake("rnn-dW_xh-before-tanh-derivative", {"rnn"}, "backward",
            "dW_xh = Σ X_tᵀ dH_t: the input weight's gradient takes dH_t where dA_t = dH_t ⊙ "
            "(1 - H_t²) belongs (tanh' left out of it alone)", raw_for=("W_xh",)),
    mistake("rnn-dW_hh-before-tanh-derivative", {"rnn"}, "backward",
            "dW_hh = Σ H_{t-1}ᵀ dH_t: the recurrent weight's gradient takes dH_t where dA_t = dH_t ⊙ "
            "(1 - H_t²) belongs (tanh' left out of it alone)", raw_for=("W_hh",)),
    mistake("rnn-dx-before-tanh-derivative", {"rnn"}, "backward",
            "dX_t = dH_t W_xhᵀ: the input's gradient takes dH_t where dA_t = dH_t ⊙ (1 - H_t²) "
            "belongs (tanh' left out of it alone)", raw_for=("X",)),
    mistake("rnn-carry-added-after-tanh-derivative", {"rnn"}, "backward",
            "dA_t = dY_t ⊙ (1 - H_t²) + dH_next: the gradient carried from step t+1 added after "
            "tanh', where (dY_t + dH_next) ⊙ (1 - H_t²) belongs (dhraw = (1 - h**2) * dh + dhnext)",
            heads=("softmax",), carry_after_dtanh=True),  # min-char-rnn's loop: one line per sum
    mistake("lstm-cell-tanh-derivative-from-candidate", {"lstm"}, "backward",
            "tanh'(C_t) = 1 - C̃² instead of 1 - tanh²(C_t): the candidate's value where tanh(C_t) "
            "belongs (dnext_h * o * (1 - g**2))", cell_grad_reads="c"),
    mistake("lstm-cell-tanh-derivative-from-H", {"lstm"}, "backward",
            "tanh'(C_t) = 1 - H_t² instead of 1 - tanh²(C_t): the new hidden state where tanh(C_t) "
            "belongs (dnext_h * o * (1 - next_h**2))", cell_grad_reads="H"),
    mistake("tanh-derivative-from-pre-activation", ALL, "backward",
            "tanh' = 1 - x² with x the pre-activation (X_t W_x + H_{t-1} W_h + b), where 1 - y² "
            "with y = tanh(x) belongs (H_t for the rnn, the candidate for lstm/gru)",
            candidate=Act("tanh", TANH.f, lambda x, y: 1 - x * x)),
    mistake("lstm-cell-tanh-derivative-from-C", {"lstm"}, "backward",
            "tanh'(C_t) = 1 - C_t² instead of 1 - tanh²(C_t)",
            cell=Act("tanh", TANH.f, lambda x, y: 1 - x * x)),
    mistake("lstm-dF-from-C_t", {"lstm"}, "backward",
            "dF = dC ⊙ C_t instead of dC ⊙ C_{t-1}", dF_cell="next"),
    mistake("lstm-dF-from-previous-hidden", {"lstm"}, "backward",
            "dF = dC ⊙ H_{t-1} instead of dC ⊙ C_{t-1}: the forget gate's gradient takes the "
            "previous hidden state (prev_h) where the previous cell state (prev_c) belongs",
            dF_cell="h_prev"),
    mistake("lstm-dO-from-C", {"lstm"}, "backward",
            "dO = dH ⊙ C_t instead of dH ⊙ tanh(C_t)", dO_cell="raw"),
    mistake("dW_h-from-H_t", ALL, "backward",
            "dW_h = Σ_t H_tᵀ dZ_t, with H_t in place of H_{t-1}", dW_h_state="next"),
    mistake("bias-grad-mean", ALL, "backward",
            "db is the mean over the batch instead of the sum", bias="mean"),
    mistake("grads-mean-over-batch", ALL, "backward",
            "every weight and bias gradient is the mean over the batch (dW /= N) where the loss, "
            "and so its gradient, is the sum; dX and dH_0 are right", heads=(None,),
            param_grads="mean"),
    mistake("weight-grad-not-accumulated", ALL, "backward",
            "dW = (one step's part) instead of dW += ...: the weight gradients hold step 1 only (the "
            "loop's last, t = 0 in the code)",
            accumulate=False),
    *[mistake(f"weight-grad-not-accumulated-{d}", {"rnn", "lstm"}, "backward",
              f"{d} = (one step's part) instead of {d} += ...: {d} holds step 1's part only (t = 0) "
              f"(the other gradients are accumulated)", heads=(None, "softmax"), not_accumulated=prefix)
      for d, prefix in (("dW_x", "W_x"), ("dW_h", "W_h"), ("db", "b_"))],
    *[mistake(f"output-{what}-grad-not-accumulated", ALL, "backward",
              f"{d} = (one step's part) instead of {d} += ...: {d} holds step 1's part only (t = 0; "
              "the output layer's other gradient and the cell's are accumulated)", heads=("softmax",),
              not_accumulated=name)
      for what, d, name in (("weight", "dW_hq (dWhy)", "W_hq"), ("bias", "db_q (dby)", "b_q"))],
    mistake("bptt-loop-forward-in-time", {"rnn", "lstm"}, "backward",
            "the backward loop runs forward in time (for t in range(T)) where BPTT runs from the last "
            "step down: the gradient carried into each step is the one the step before it made",
            bptt_order="forward"),
    mistake("bptt-skips-first-step", ALL, "backward",
            "the backward loop stops before step 1 (range(T-1, 0, -1)): step 1 (t = 0 in the "
            "code) adds nothing",
            first_step=1),
    mistake("bptt-skips-first-step-and-its-output", ALL, "backward",
            "the backward loop, output layer included, stops before step 1 (range(T-1, 0, -1)): "
            "step 1 (t = 0 in the code) adds nothing, its output's gradients (dW_hq, db_q) included", heads=HEADED,
            first_step=1, first_step_head=True),
    mistake("bptt-skips-last-step", ALL, "backward",
            "the backward loop starts a step early (reversed(range(T - 1))): the last step adds "
            "nothing, its output's gradient and the gradient reaching the final state included",
            skip_last=True),
    mistake("dH0-unmultiplied", ALL, "backward",
            "dH_0 is dH_1, the gradient at step 1's output, not carried through step 1 (× W_hᵀ)",
            dstate0="unmultiplied"),
    mistake("dH0-upstream-only", ALL, "backward",
            "dH_0 is dh[:, 0], the upstream gradient at step 1's output alone: neither the "
            "gradient carried from step 2 nor the product through step 1 (× W_hᵀ) (lstm: no "
            "dC_0)", heads=(None,), dstate0="upstream"),
    mistake("dH0-zero", ALL, "backward",
            "dH_0 (and the lstm's dC_0) is zero: the gradient of the initial state is never computed "
            "(a hand-written backward), or the initial state is detached before the loop "
            "(state[0].detach(): autograd)", dstate0="zero"),
    mistake("rnn-W_hh-not-transposed", {"rnn"}, "backward",
            "dH_next = dA_t W_hh instead of dA_t W_hhᵀ", transpose_W_h=False),
    mistake("gru-update-derivative-sign", {"gru"}, "backward",
            "∂H_t/∂Z = H̃ - H_{t-1} instead of H_{t-1} - H̃", update_sign=-1.0),
    mistake("gru-dropped-direct-path", {"gru"}, "backward",
            "dH_{t-1} misses the direct path dH_t ⊙ Z (H_t = Z ⊙ H_{t-1} + ...)", direct_path=0.0),
    mistake("gru-reset-derivative-partner", {"gru"}, "backward",
            "dR = d(R ⊙ P) without ⊙ P (P = H_{t-1} in the d2l form, H_{t-1} W_hh + b_hn in "
            "the torch form)", reset_partner=False),
    *[mistake(f"{what}-grad-never-accumulated", ALL, "backward",
              f"{d} is never accumulated ({line} left out of the loop): it stays zero", heads=heads,
              zero_grad=name)
      for what, d, line, name, heads in (
          ("bias", "db (every gate bias's)", "db += ...", "b_", None),
          ("output-bias", "db_q (dby)", "dby += dy", "b_q", ("softmax",)),
          ("output-weight", "dW_hq (dWhy)", "dWhy += ...", "W_hq", ("softmax",)),
          ("dW_x", "dW_x (dWx, dWax)", "dWx += ...", "W_x", (None, "softmax")),
          ("dW_h", "dW_h (dWh, dWaa)", "dWh += ...", "W_h", (None, "softmax")))],
    *[mistake(f"{d}-mean-over-batch", ALL, "backward",
              f"{d} alone is the mean over the batch ({d} /= N, or np.mean) where the loss, and so "
              "its gradient, is the sum; the other gradients are summed", heads=(None,),
              param_grads=f"mean-{name}")
      for d, name in (("dW_x", "W_x"), ("dW_h", "W_h"))],
    mistake("bptt-last-step-gradient-counted-twice", {"rnn", "lstm"}, "backward",
            "the gradient carried into the last step starts at dh[:, T] (dprev_h = dh[:, -1]) where "
            "it starts at zero, and the step adds dh[:, T] again: H_T's upstream gradient is counted "
            "twice", heads=(None,), last_twice=True),
    mistake("lstm-gate-grads-from-dnext-c", {"lstm"}, "backward",
            "dI, dF and dC̃ are taken from dC_next (di = dnext_c * g ...) where dC_t = dC_next + "
            "dH_t ⊙ O ⊙ (1 - tanh²(C_t)) belongs: the path from H_t is left out of the gates' "
            "gradients alone (dC_{t-1} = dC_t ⊙ F is right)", dc_gates="ifc"),
    *[mistake(f"lstm-{what}-grad-from-dnext-c", {"lstm"}, "backward",
              f"d{G} is taken from dC_next ({line}) where dC_t = dC_next + dH_t ⊙ O ⊙ "
              "(1 - tanh²(C_t)) belongs: the path from H_t is left out of that gate's gradient alone",
              dc_gates=g)
      for g, G, what, line in (("i", "I", "input-gate", "di = dnext_c * g"),
                               ("f", "F", "forget-gate", "df = dnext_c * prev_c"),
                               ("c", "C̃", "candidate", "dg = dnext_c * i"))],
    mistake("lstm-gate-grads-without-dnext-c", {"lstm"}, "backward",
            "dI, dF and dC̃ are taken from the path from H_t alone, dH_t ⊙ O ⊙ (1 - tanh²(C_t)), "
            "where dC_t = dC_next + that belongs: dC_next is left out of the gates' gradients (dit = "
            "da_next * ot * (1 - tanh(c_next)²) * cct * ..., without dc_next * cct)", dc_h_only="ifc"),
    *[mistake(f"lstm-{what}-grad-without-dnext-c", {"lstm"}, "backward",
              f"d{G} is taken from the path from H_t alone, dH_t ⊙ O ⊙ (1 - tanh²(C_t)), where dC_t = "
              f"dC_next + that belongs: dC_next is left out of that gate's gradient alone ({line})",
              dc_h_only=g)
      for g, G, what, line in (("i", "I", "input-gate", "dc_next * cct dropped from dit"),
                               ("f", "F", "forget-gate", "dc_next * c_prev dropped from dft"),
                               ("c", "C̃", "candidate", "dc_next * it dropped from dcct"))],
    mistake("rnn-dprev-h-without-tanh-derivative", {"rnn"}, "backward",
            "dH_{t-1} = dH_t W_hhᵀ (dprev_h = dnext_h @ Wh.T): tanh' left out of the gradient carried "
            "to the step before, where dA_t W_hhᵀ belongs; dW and db take dA_t, as they should",
            carry_raw=True),
    mistake("lstm-dW-concat-x-first", {"lstm"}, "backward",
            "the backward rebuilds concat as [xt; a_prev] for dW = dZ concatᵀ while the forward "
            "stacked [a_prev; xt]: the columns of dWf, dWi, dWc, dWo in the wrong order",
            dW_concat="xh"),
    mistake("input-one-hot-from-targets", ALL, "forward",
            "each step's input one-hot is built from targets[t] (xs[t][targets[t]] = 1) where "
            "inputs[t] belongs", heads=("softmax",), inputs_from="targets"),
    mistake("softmax-grad-minus-one-at-input", ALL, "backward",
            "dY = softmax(Y) - onehot(inputs[t]): the 1 subtracted at the input's index where it "
            "belongs at the target's (dy[targets[t]] -= 1)", heads=("softmax",), softmax_at="inputs"),
    mistake("loss-at-input", ALL, "backward",
            "L = Σ_t -log softmax(Y_t)[inputs[t]]: the loss reads the input character's probability "
            "where the target's belongs; the backward, p - onehot(targets[t]), is the intended loss's",
            heads=("softmax",), loss_at="inputs"),
    mistake("dH0-plus-first-output-gradient", ALL, "backward",
            "dH_0 = the gradient carried back through step 1 + dh[:, 0]: step 1's upstream gradient "
            "added again (dh0 = dprev_h + dh[:, 0]), where it belongs to H_1 and reaches H_0 through "
            "step 1 already", heads=(None,), dstate0="plus-upstream"),
    mistake("softmax-grad-without-minus-one", ALL, "backward",
            "dY = softmax(Y) without subtracting 1 at the target", heads=("softmax",),
            softmax_minus_one=False),
    mistake("dW_hq-from-H_prev", ALL, "backward",
            "the output layer's weight gradient uses H_{t-1} in place of H_t", heads=HEADED,
            head_state="prev"),
    mistake("loss-mean-over-steps", ALL, "backward",
            "the loss returned is the mean over the steps (Σ_t / T) where min-char-rnn sums it; "
            "the gradients are the sum's", heads=("softmax",), loss="mean"),
    mistake("loss-and-grads-mean-over-steps", ALL, "backward",
            "the loss and its gradients are the mean over the steps (/ T) where min-char-rnn "
            "sums them", heads=("softmax",), loss="mean-both"),
    # ---- forward
    mistake("initial-state-ignored", ALL, "forward",
            "the initial state given is ignored: the recurrence starts from zeros",
            reparam=IgnoreState()),
    mistake("initial-state-ignored-in-forward", ALL, "backward",
            "the forward starts from zeros instead of the initial state given, while the backward "
            "still returns the gradient of the state it was given",
            reparam=IgnoreState(), pullback=False),
    mistake("initial-state-every-step", ALL, "forward",
            "every step reads the initial state H_0 (lstm: and C_0) instead of H_{t-1} (h = "
            "tanh(x_t W_xh + h0 W_hh + b) in the loop, or a new state computed and never assigned "
            "back): the state is never carried from one step to the next",
            step_reads="initial"),
    mistake("initial-state-every-step-in-forward", ALL, "backward",
            "the forward's every step reads the initial state H_0 (lstm: and C_0) instead of "
            "H_{t-1} (h0 passed to every step); the backward is the recurrence's, as intended (dH "
            "carried to step t-1), with H_0 cached as each step's previous state (dW_h = Σ H_0ᵀ "
            "dZ_t)", heads=(None,), step_reads="initial", step_reads_back="cache"),
    mistake("initial-state-every-step-forward-only", {"rnn"}, "backward",
            "the forward's every step reads the initial state (hprev) instead of H_{t-1}; the "
            "backward is the recurrence's, as intended, on the states computed (dW_hh = Σ H_{t-1}ᵀ "
            "dA_t, dH carried to step t-1)", heads=("softmax",), step_reads="initial",
            step_reads_back="states"),
    mistake("first-step-state-returned", ALL, "forward",
            "the state returned is the one after the first step, H_1 (hs[0]; and C_1), where the "
            "last step's, H_T (C_T), belongs", final_state="first"),
    mistake("lstm-cell-state-never-updated", {"lstm"}, "forward",
            "every step reads the initial cell state C_0 where C_{t-1} belongs (the new cell state "
            "computed and never assigned back); the hidden state is carried", step_reads="initial-c"),
    mistake("lstm-cell-state-never-updated-in-forward", {"lstm"}, "backward",
            "the forward's every step reads the initial cell state C_0 where C_{t-1} belongs (c0 "
            "passed to every step); the backward is the recurrence's, as intended (dC carried to "
            "step t-1), with C_0 cached as each step's previous cell (dF = dC ⊙ C_0)", heads=(None,),
            step_reads="initial-c", step_reads_back="cache"),
    mistake("lstm-c0-ignored", {"lstm"}, "forward",
            "the initial cell state given is ignored: C starts from zeros (the initial hidden state "
            "H_0 is used)", reparam=CellStart("zeros")),
    mistake("lstm-c0-from-h0", {"lstm"}, "forward",
            "the initial cell state is the initial hidden state (prev_c = h0, c = a0) where C_0 "
            "belongs (zeros in CS231n and deeplearning.ai)", reparam=CellStart("h0")),
    mistake("lstm-c0-from-h0-in-forward", {"lstm"}, "backward",
            "the forward starts the cell state from the initial hidden state (prev_c = h0) where C_0 "
            "belongs; the backward is as if it started from C_0 (dh0 leaves out the gradient that "
            "reaches it through the cell)", heads=(None,), reparam=CellStart("h0"), pullback=False),
    mistake("outputs-previous-state", ALL, "forward",
            "the outputs collected are the previous states H_{t-1} (h stored before it is updated): "
            "H_0 .. H_{T-1} where H_1 .. H_T belong", heads=(None,), head_input="prev"),
    mistake("outputs-previous-state-in-forward", ALL, "backward",
            "the forward's outputs are the previous states H_{t-1} (h stored before it is updated), "
            "H_0 .. H_{T-1} where H_1 .. H_T belong; the backward takes dh[t] as H_t's gradient, as "
            "intended", heads=(None,), head_input="prev-forward-only"),
    mistake("outputs-candidate", GATED, "forward",
            "the outputs collected are the candidates (C̃_t for the lstm, H̃_t for the gru) where "
            "they are the hidden states H_t, which are still computed and carried (with an output "
            "layer, it reads the candidate)", outputs="candidate"),
    mistake("candidate-relu", ALL, "forward",
            "ReLU instead of tanh for the candidate (H_t for the rnn, C̃ for the lstm, H̃ for the gru)",
            candidate=RELU),
    mistake("first-state-returned", ALL, "forward",
            "the state returned is the initial state given (return outputs, state; hprev in "
            "min-char-rnn) instead of the last step's, H_T (and C_T)", final_state="initial"),
    mistake("final-state-one-step-early", ALL, "forward",
            "the state returned is the one before the last step, H_{T-1} (and C_{T-1}; hs[T-1] in a "
            "list that starts with H_0), where H_T (C_T) belongs", final_state="previous"),
    mistake("lstm-final-cell-state-candidate", {"lstm"}, "forward",
            "the final cell state returned is the last candidate C̃_T (return H, C_tilda) where C_T "
            "belongs; the outputs are right", final_state="candidate-c"),
    mistake("lstm-cell-state-squashed", {"lstm"}, "forward",
            "C_t = tanh(F ⊙ C_{t-1} + I ⊙ C̃): the new cell state squashed by a tanh (then H_t = "
            "O ⊙ tanh(C_t) on top), where C_t = F ⊙ C_{t-1} + I ⊙ C̃ belongs", c_squash=True),
    mistake("lstm-h-from-candidate", {"lstm"}, "forward",
            "H_t = O ⊙ tanh(C̃_t): the hidden state reads the candidate where the new cell state "
            "belongs, O ⊙ tanh(C_t)", h_cell="candidate"),
    mistake("lstm-h-from-previous-cell-in-forward", {"lstm"}, "backward",
            "the forward computes H_t = O ⊙ tanh(C_{t-1}) (a_next = ot * np.tanh(c_prev)) where "
            "O ⊙ tanh(C_t) belongs; the backward is that of O ⊙ tanh(C_t), as intended",
            h_cell="prev-forward-only"),
    *[mistake(f"lstm-{g}-reads-c-prev", {"lstm"}, "forward",
              f"gate {g}'s recurrent term reads the previous cell state, C_{{t-1}} W_h{g} "
              f"(c @ W_h{g}.T), where the previous hidden state H_{{t-1}} belongs",
              reads_c=g) for g in "ifoc"],
    *[mistake(f"lstm-dconcat-from-{g}-alone", {"lstm"}, "backward",
              f"dH_{{t-1}} and dX_t from gate {g}'s term alone, dZ_{g} W_h{g}ᵀ and dZ_{g} W_x{g}ᵀ: "
              "the gradient of [H_{t-1}; X_t] keeps one gate's term only (dconcat = W.T @ dz where "
              "+= belongs, in a loop over the gates that ends with it)", dh_from_gate=g,
              dx_from_gate=g) for g in "ifoc"],
    *[mistake(f"lstm-dprev-h-from-{g}-alone", {"lstm"}, "backward",
              f"dH_{{t-1}} = dZ_{g} W_h{g}ᵀ alone: the gradient into the previous hidden state "
              f"keeps gate {g}'s term only (da_prev = ... where += belongs, in a loop over the "
              "gates that ends with it)", dh_from_gate=g) for g in "ifoc"],
    mistake("lstm-final-cell-state-tanh", {"lstm"}, "forward",
            "the final cell state returned is tanh(C_T) (c_n = torch.tanh(c)) where C_T belongs; "
            "the outputs are right", final_state="tanh-c"),
    mistake("lstm-final-state-swapped", {"lstm"}, "forward",
            "the final state is returned as (C_T, H_T) where (H_T, C_T) belongs (return outputs, "
            "(C, H))", final_state="swapped"),
    mistake("rnn-recurrent-term-missing", {"rnn"}, "forward",
            "H_t = tanh(X_t W_xh + b_h): the recurrent term H_{t-1} W_hh is never added, so no step "
            "reads the state (W_hh's gradient is zero)", reparam=DropGateArray("h", "W_hh")),
    mistake("bias-missing", ALL, "forward",
            "the gate biases are never added (the spec with b = 0): their gradients are zero",
            reparam=DropBias()),
    mistake("bias-missing-in-forward", ALL, "backward",
            "the forward leaves the gate biases out; the backward computes db as if they were in",
            reparam=DropBias(), pullback=False),
    mistake("output-bias-missing-in-forward", ALL, "backward",
            "the forward leaves the output layer's bias out (Y_t = H_t W_hq); the backward "
            "computes db_q as if it were in", heads=HEADED, reparam=DropOutputBias(), pullback=False),
    mistake("bias-added-twice", ALL, "forward",
            "the gate biases are added twice (the spec with 2b)", reparam=DoubleBias()),
    mistake("bias-added-twice-in-forward", ALL, "backward",
            "the forward adds the gate biases twice; the backward computes db as if once",
            reparam=DoubleBias(), pullback=False),
    mistake("candidate-sigmoid", ALL, "forward",
            "σ instead of tanh for the candidate (H_t for the rnn, C̃ for the lstm, H̃ for the gru)",
            candidate=SIGMOID),
    mistake("candidate-tanh-twice", ALL, "forward",
            "tanh applied twice to the candidate, tanh(tanh(·)) (H_t for the rnn, C̃ for the lstm, "
            "H̃ for the gru): I ⊙ tanh(G) where G is already tanh'd", candidate=TANH_TWICE),
    mistake("rnn-bias-after-tanh", {"rnn"}, "forward",
            "H_t = tanh(X_t W_xh + H_{t-1} W_hh) + b_h: the bias added after the tanh where it "
            "belongs inside it", bias_after="true"),
    mistake("rnn-bias-after-tanh-in-forward", {"rnn"}, "backward",
            "the forward adds b_h after the tanh, H_t = tanh(X_t W_xh + H_{t-1} W_hh) + b_h; the "
            "backward is that of tanh(... + b_h), as intended: tanh' = 1 - H_t² at the H_t it "
            "cached, db_h = Σ dA_t", heads=(None,), bias_after="forward-only"),
    mistake("lstm-outputs-C-in-forward", {"lstm"}, "backward",
            "the forward's outputs are the cell states C_t (h[:, t] = next_c) where they are the "
            "hidden states H_t; the backward takes dh[t] as H_t's gradient, as intended",
            heads=(None,), outputs="C-forward-only"),
    mistake("lstm-h-from-previous-cell", {"lstm"}, "forward",
            "H_t = O ⊙ tanh(C_{t-1}): the hidden state computed before the cell state is updated, "
            "from the old cell, where O ⊙ tanh(C_t) belongs", h_cell="prev"),
    mistake("lstm-initial-state-swapped", {"lstm"}, "forward",
            "the initial state given is read as (C_0, H_0) where it is (H_0, C_0): h, c = c0, h0 "
            "(the state tuple unpacked in the wrong order)", reparam=StateSwapped()),
    mistake("lstm-stacked-weights-read-x-first", {"lstm"}, "forward",
            "each stacked weight (deeplearning.ai's Wf, Wi, Wc, Wo, made for concat = [a_prev; xt]) "
            "is used on [xt; a_prev]: its first D columns multiply X_t and the rest H_{t-1}, where "
            "its first H columns belong to H_{t-1}", reparam=StackedOrder("lstm")),
    mistake("lstm-stacked-weights-read-x-first-split-unchanged", {"lstm"}, "backward",
            "each stacked weight (deeplearning.ai's Wf, Wi, Wc, Wo, made for concat = [a_prev; xt]) "
            "is used on [xt; a_prev] in the forward and in dW = dZ concatᵀ, while dconcat is still "
            "split as if it were [a_prev; xt]: da_prev = dconcat[:n_a], dxt = dconcat[n_a:]",
            reparam=StackedOrder("lstm"), dconcat_order="xh-read-hx"),
    mistake("lstm-stacked-weights-read-x-first-in-forward", {"lstm"}, "backward",
            "the forward stacks concat = [xt; a_prev] where deeplearning.ai's weights are made for "
            "[a_prev; xt] (their first D columns then multiply X_t); the backward is the intended "
            "one, concat rebuilt [a_prev; xt] for dW and dconcat split so",
            reparam=StackedOrder("lstm"), pullback=False, backward_weights="given"),
    mistake("lstm-h-tanh-of-o-times-c", {"lstm"}, "forward",
            "H_t = tanh(O ⊙ C_t) where O ⊙ tanh(C_t) belongs: the tanh around the product",
            h_form="tanh-oc"),
    mistake("lstm-forget-bias-plus-one", {"lstm"}, "forward",
            "F = σ(X_t W_xf + H_{t-1} W_hf + b_f + 1): a constant 1 added to the forget gate's "
            "pre-activation in the forward (the forget-bias initialisation, b_f = 1 once at the "
            "start, written into every step)", reparam=ShiftGateBias("f", 1.0)),
    mistake("lstm-input-gate-as-one-minus-forget", {"lstm"}, "forward",
            "C_t = F ⊙ C_{t-1} + (1 - F) ⊙ C̃: 1 - F where the input gate I belongs (a GRU's coupled "
            "update); I is computed and never used (its weights get no gradient)", coupled_input=True),
    mistake("gru-reset-on-whole-candidate", {"gru"}, "forward",
            "H̃ = tanh(R ⊙ (X_t W_xh + b_h + H_{t-1} W_hh + b_hn)): the reset gate applied to the "
            "input's terms too, where torch.nn applies it to the state's alone, R ⊙ (H_{t-1} W_hh + "
            "b_hn)", forms=("torch",), reset_on="all"),
    # deeplearning.ai's cells predict, yt_pred = softmax(Wya a_next + by): that line wrong
    mistake("prediction-from-previous-state", {"rnn", "lstm"}, "forward",
            "the prediction is made from the state the step started from, softmax(Wya a_prev + by), "
            "where a_next belongs", heads=(None,), predicts=True, prediction="H_prev"),
    mistake("lstm-prediction-from-cell-state", {"lstm"}, "forward",
            "the prediction is made from the cell state, softmax(Wy c_next + by), where the hidden "
            "state a_next belongs", heads=(None,), predicts=True, prediction="C"),
    mistake("prediction-softmax-over-everything", {"rnn", "lstm"}, "forward",
            "the prediction's softmax is normalised over the whole array, np.exp(z) / "
            "np.sum(np.exp(z)), the batch included, where each example's column sums to 1 "
            "(np.sum(..., axis=0))", heads=(None,), predicts=True, prediction="all"),
    mistake("prediction-softmax-shifted-per-column-summed-over-everything", {"rnn", "lstm"},
            "forward", "the prediction's softmax shifts each column by its own max, np.exp(z - "
            "np.max(z, axis=0)), then divides by the sum over the whole array, np.sum(e), where each "
            "column's own sum belongs (np.sum(e, axis=0))", heads=(None,), predicts=True,
            prediction="shift-classes"),
    mistake("prediction-softmax-over-batch", {"rnn", "lstm"}, "forward",
            "the prediction's softmax is normalised over the batch axis (np.sum(..., axis=1)) where "
            "it is over the classes, axis 0", heads=(None,), predicts=True, prediction="batch"),
    # a module that keeps each gate's bias in two arrays, one side of them left out
    mistake("hidden-side-biases-missing", GATED, "forward",
            "the hidden-side biases are never added (bias_hh, the b_h<gate> of torch.nn's equations, "
            "or the biases of the layers on the hidden state): each gate has its input-side bias "
            "alone, and the hidden-side ones get no gradient", split=True, reparam=DropBiasHalf("hh")),
    mistake("input-side-biases-missing", GATED, "forward",
            "the input-side biases are never added (bias_ih, the b_i<gate> of torch.nn's equations, "
            "or the biases of the layers on the input): each gate has its hidden-side bias alone, "
            "and the input-side ones get no gradient", split=True, reparam=DropBiasHalf("ih")),
    mistake("gru-b_hn-missing", {"gru"}, "forward",
            "the candidate's hidden-side bias b_hn (bias_hh's n block, inside R ⊙ (H_{t-1} W_hn + "
            "b_hn)) is never added: its gradient is zero", forms=("torch",),
            reparam=DropGateArray("h", "b_hn")),
    mistake("gru-reset-on-input-term", {"gru"}, "forward",
            "H̃ = tanh(R ⊙ (X_t W_xh) + H_{t-1} W_hh + b_h): the reset gate applied to the input's "
            "term where it belongs on the state's, (R ⊙ H_{t-1}) W_hh", forms=("d2l",),
            reset_on="x"),
    mistake("lstm-h-without-tanh", {"lstm"}, "forward",
            "H_t = O ⊙ C_t instead of O ⊙ tanh(C_t)", cell=IDENTITY),
    mistake("lstm-h-without-tanh-in-forward", {"lstm"}, "backward",
            "the forward's H_t = O ⊙ C_t, without the tanh; the backward is that of O ⊙ tanh(C_t), "
            "as intended (dO = dH ⊙ tanh(C_t), the path into C_t through tanh')", heads=(None,),
            cell_forward_only=True),
    mistake("lstm-outputs-C", {"lstm"}, "forward",
            "the outputs collected are the cell states C_t (outputs.append(c)) where they are the "
            "hidden states H_t = O ⊙ tanh(C_t), which is still computed and carried to the next step",
            heads=(None,), outputs="C"),
    mistake("gru-forward-without-direct-term", {"gru"}, "forward",
            "H_t = (1 - Z) ⊙ H̃: the term Z ⊙ H_{t-1} is left out, so nothing of H_{t-1} is kept "
            "directly", direct_term=False),
    mistake("lstm-forget-gate-on-H", {"lstm"}, "forward",
            "C_t = F ⊙ H_{t-1} + I ⊙ C̃: the forget gate multiplies the hidden state H_{t-1} "
            "where it belongs on the cell C_{t-1}", forget_on="H"),
    mistake("recurrent-weight-transposed", ALL, "forward",
            "H_{t-1} W_hᵀ instead of H_{t-1} W_h: the recurrent weights used transposed (W_hh, "
            "or each W_h<gate>)", reparam=TransposeRecurrent()),
    mistake("recurrent-weight-transposed-in-forward", ALL, "backward",
            "the forward uses the recurrent weights transposed (H_{t-1} W_hᵀ: W_hh, or each "
            "W_h<gate>); the backward is that of H_{t-1} W_h, as intended (dW_h = Σ H_{t-1}ᵀ dZ_t, "
            "dH_{t-1} = dZ_t W_hᵀ)", reparam=TransposeRecurrent(), pullback=False,
            transpose_W_h=False),
    mistake("output-bias-missing", ALL, "forward",
            "Y_t = H_t W_hq: the output layer's bias b_q is never added (its gradient is zero)",
            heads=HEADED, reparam=DropOutputBias()),
    mistake("gru-update-one-minus-r", {"gru"}, "forward",
            "H_t = Z ⊙ H_{t-1} + (1 - R) ⊙ H̃: the reset gate R where the update gate belongs in "
            "(1 - Z)", update_gates="zr"),
    mistake("gru-update-direct-term-r", {"gru"}, "forward",
            "H_t = R ⊙ H_{t-1} + (1 - Z) ⊙ H̃: the reset gate R where the update gate belongs in "
            "Z ⊙ H_{t-1}", update_gates="rz"),
    mistake("gru-update-from-r", {"gru"}, "forward",
            "H_t = R ⊙ H_{t-1} + (1 - R) ⊙ H̃: the update written with the reset gate R, the "
            "update gate Z computed and never used", update_gates="rr"),
    mistake("gru-update-swapped", {"gru"}, "forward",
            "H_t = (1 - Z) ⊙ H_{t-1} + Z ⊙ H̃: Z and 1 - Z swapped", reparam=NegateGate("z")),
    mistake("gru-reset-inverted", {"gru"}, "forward",
            "the candidate reads 1 - R where R belongs ((1 - r) * (...) in its line): the reset gate "
            "inverted", reparam=NegateGate("r")),
    mistake("gru-reset-after-tanh", {"gru"}, "forward",
            "H̃ = R ⊙ tanh(X W_xh + b_h + H_{t-1} W_hh (+ b_hn)): the reset gate multiplies the "
            "candidate after its tanh, where it belongs inside, on the recurrent term",
            reset_on="outside"),
    mistake("gru-reset-after-matmul", {"gru"}, "forward",
            "H̃ = tanh(X W_xh + b_h + R ⊙ (H_{t-1} W_hh)): the reset gate applied after the "
            "matmul, every candidate bias outside R ⊙ (...), where d2l applies it before, "
            "(R ⊙ H_{t-1}) W_hh (and torch.nn after it with its hidden-side bias inside, "
            "R ⊙ (H_{t-1} W_hh + b_hn))",
            forms=("d2l",), reparam=ResetAfter()),
    mistake("gru-reset-before-matmul", {"gru"}, "forward",
            "H̃ = tanh(X W_xh + b_h + (R ⊙ H_{t-1}) W_hh + b_hn): the reset gate applied before "
            "the matmul (d2l's form) where torch.nn applies it after, R ⊙ (H_{t-1} W_hh + b_hn)",
            forms=("torch",), reparam=ResetBefore()),
    mistake("gru-b_hn-outside-reset", {"gru"}, "forward",
            "H̃ = tanh(X W_xh + b_h + R ⊙ (H_{t-1} W_hh) + b_hn): the hidden-side candidate bias "
            "b_hn (bias_hh's n block) added outside the reset product, where torch.nn puts it "
            "inside, R ⊙ (H_{t-1} W_hh + b_hn)", forms=("torch",), reparam=BhnOutside()),
    # PyTorch's char-RNN tutorial (its first form: i2h and i2o on cat(input, hidden))
    mistake("linear-recurrence", {"rnn"}, "forward",
            "a linear recurrence: no tanh on the new hidden state, H_t = X_t W_xh + H_{t-1} W_hh + b_h",
            candidate=IDENTITY),
    mistake("output-one-step-late", {"rnn", "lstm", "gru"}, "forward",
            "the output is computed one step late, from the previous hidden state: Y_t = H_{t-1} W_hq "
            "+ b_q (the output layer applied before the state is updated; in PyTorch's char-RNN "
            "tutorial, i2o on cat(input, hidden): the output is computed from the input and the "
            "previous hidden state, one step late)", heads=HEADED, head_input="prev"),
    mistake("tutorial-linear-recurrence-late-output", {"rnn"}, "forward",
            "a linear recurrence: no tanh on the new hidden state; the output is computed from the "
            "input and the previous hidden state, one step late (PyTorch's char-RNN tutorial: "
            "hidden = i2h(combined), output = i2o(combined), combined = cat(input, hidden))",
            heads=("logsoftmax",), candidate=IDENTITY, head_input="prev"),
    # ---- autograd
    mistake("state-detached-each-step", ALL, "autograd",
            "the state is detached at every step: no gradient reaches H_{t-1} (C_{t-1}) from step "
            "t, H_0's included",
            detach=True),
    mistake("state-detached-after-each-step", ALL, "autograd",
            "the state is detached at the end of every step (h = h.detach() last in the loop), "
            "the final state returned included: no gradient flows from step t+1, nor from the "
            "final state, into step t; the initial state still gets its gradient through step 1",
            detach=True, detach_first=False, final_state_grad=False),
    mistake("outputs-detached", ALL, "autograd",
            "the outputs are detached before they are collected (outputs.append(h.detach()), or "
            "h.data): no gradient reaches a step through its own output, only through the state "
            "returned at the end", heads=(None, "linear", "logsoftmax"), output_grad=False),
    mistake("lstm-cell-state-detached-each-step", {"lstm"}, "autograd",
            "the cell state alone is detached at every step (c = c.detach()): no gradient reaches "
            "C_{t-1} from step t, C_0's included; the hidden state's path is kept", cut_c=True),
    mistake("lstm-hidden-state-detached-each-step", {"lstm"}, "autograd",
            "the hidden state alone is detached at every step (h = h.detach()): no gradient reaches "
            "H_{t-1} from step t, H_0's included; the cell state's path is kept", cut_h=True),
    mistake("final-state-detached", ALL, "autograd",
            "the final state is returned detached (h.detach()): the gradient it receives does not "
            "flow back", final_state_grad=False),
]


CATALOGUE: dict[str, Mistake] = {m.name: m for m in [*_LIST, *families()]}


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


# What a module called without a state does wrong, told by the calls alone: named when every
# failing example shows it (and the module is right when given a state)
DEFAULT_STATE_FAULTS = {
    "default-state-wrong-shape": (
        "called without a state it builds one of another shape (the number of steps or of "
        "inputs where the batch size or the hidden size belongs): the call fails, or "
        "broadcasts into outputs of another shape; given a state, it is right"),
    "default-state-random": (
        "called without a state it starts from a random state (torch.randn where torch.zeros "
        "belongs): the same call twice gives other numbers; given a state, it is right"),
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
