"""The rules of the specification that ``rnnlab verify`` holds code to: every choice where
implementations go wrong, named.

:class:`Rules` names every choice the backward (and a few in the forward) makes where
implementations go wrong: which derivative of σ, whether the cell-state gradient is
carried, H_{t-1} or H_t in dW_h... ``SPEC`` is the specification. A known mistake
(``mistakes.py``) is ``SPEC`` with one field replaced; ``spec.py`` computes the forward and
the backward of any ``Rules``, so a mistake is computed by the same readable code, and a
subject whose numbers reproduce it can be told which line is wrong. A :class:`Reparam` is
a forward mistake that re-reads the weights or the state (``reparams.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..numpy_backend.functional import sigmoid

GATES = {"rnn": ("h",), "irnn": ("h",), "lstm": ("i", "f", "o", "c"), "gru": ("z", "r", "h")}


@dataclass(frozen=True)
class Act:
    """A nonlinearity y = f(x) and the derivative the backward uses, f'(x) from x and y."""

    name: str
    f: Callable
    grad: Callable  # (x, y) -> f'(x), same shape


TANH = Act("tanh", np.tanh, lambda x, y: 1 - y * y)  # tanh' = 1 - tanh²
SIGMOID = Act("sigmoid", sigmoid, lambda x, y: y * (1 - y))  # σ' = σ(1 - σ)
IDENTITY = Act("identity", lambda x: x.copy(), lambda x, y: np.ones_like(x))
RELU = Act("relu", lambda x: np.maximum(x, 0.0), lambda x, y: (x > 0).astype(x.dtype))  # relu' = [x > 0]


class Reparam:
    """A forward mistake that computes the spec's function of re-read weights, f(P(θ)):
    gate blocks read in the wrong order, the initial state ignored... Its gradient is the
    spec's, pulled back through P: ∂f(P(θ))/∂θ = Pᵀ ∇f.

    One that needs the problem's bias split (the "hh" half of each bias a module keeps in
    two arrays) defines ``bind(split)``, returning itself with that split."""

    def apply(self, params: dict, state: tuple) -> tuple[dict, tuple]:
        raise NotImplementedError

    def pullback(self, params: dict, grads: dict, dstate: tuple) -> tuple[dict, tuple]:
        raise NotImplementedError


@dataclass(frozen=True)
class Rules:
    """Every place where the spec makes a choice that implementations get wrong.

    ``SPEC = Rules()`` is the specification; each default is the correct choice."""

    gate: Act = SIGMOID  # I, F, O (lstm); Z, R (gru): σ, and σ' = σ(1 - σ)
    candidate: Act = TANH  # H_t (rnn), C̃ (lstm), H̃ (gru): tanh, tanh' = 1 - y²
    cell: Act = TANH  # lstm: H_t = O ⊙ tanh(C_t), and tanh'(C_t) = 1 - tanh²(C_t)
    carry_h: float = 1.0  # dH_t = dY_t + carry_h · dH_next between steps (0: the carry dropped)
    carry_c: float = 1.0  # lstm: dC_t = ... + carry_c · dC_next
    c_squash: bool = False  # lstm: C_t = tanh(F ⊙ C_{t-1} + I ⊙ C̃), the new cell state squashed
    c_path: float = 1.0  # lstm: dC_t = c_path · dH_t ⊙ O ⊙ tanh'(C_t) + dC_next
    detach: bool = False  # the state is cut from the graph at the start of every step
    detach_first: bool = True  # with detach, H_0 too; False: cut after each step (h = h.detach()
    #                             at the end of the loop body), so H_0 still reaches step 1
    output_grad: bool = True  # the outputs H_t collected keep their graph; False: detached
    #                            before they are collected (outputs.append(h.detach()))
    forget_on: str = "C"  # lstm: C_t = F ⊙ C_{t-1} + I ⊙ C̃; "H": F ⊙ H_{t-1} in its place
    outputs: str = "H"  # lstm: the outputs collected are H_t; "C": C_t (outputs.append(c)),
    #                     the final state still (H_T, C_T); "candidate" (lstm, gru): C̃_t, H̃_t;
    #                     "C-forward-only": C_t, the backward taking dh[t] as H_t's, as intended
    final_state_grad: bool = True  # the final state's upstream gradient flows back; False: returned detached
    dW_h_state: str = "prev"  # dW_h = Σ H_{t-1}ᵀ dZ_t; "next": H_t in its place
    dF_cell: str = "prev"  # lstm: dF = dC ⊙ C_{t-1}; "next": C_t in its place; "h_prev":
    #                        H_{t-1} in its place (prev_h where prev_c belongs)
    dO_cell: str = "tanh"  # lstm: dO = dH ⊙ tanh(C_t); "raw": C_t in its place; "none": dO = dH
    bias: str = "sum"  # db = Σ over the batch of dZ; "mean": averaged instead
    param_grads: str = "sum"  # every parameter's gradient sums the batch's; "mean": each / B;
    #                           "mean-W_x" / "mean-W_h": those of W_x<g> (W_h<g>) alone / B
    #                           (dX and dH_0 untouched: the loss is still the sum)
    accumulate: bool = True  # dW += each step's part; False: dW = (the last step visited, t=1)
    not_accumulated: str = ""  # one array of the cell's alone not accumulated: "W_x" (every
    #                            W_x<g>), "W_h" (every W_h<g>) or "b_" (every gate bias)
    first_step: int = 0  # BPTT walks t = T..1; 1: the loop stops before t = 1 (range(T-1, 0, -1))
    first_step_head: bool = False  # with first_step, the output layer's backward stops there too
    skip_last: bool = False  # BPTT's loop starts a step early (reversed(range(T - 1))): the last
    #                          step, its output and the gradient reaching H_T add nothing
    #                                (one loop for both, as min-char-rnn's lossFun has it)
    dstate0: str = "carried"  # dH_0 = dZ_1 W_hᵀ (+ paths); "zero"; "unmultiplied": dH_1 itself;
    #                           "upstream": dY_1, step 1's upstream gradient alone (dh[:, 0]), dC_0 zero;
    #                           "plus-upstream": the carried dH_0 + dY_1 (dh0 = dprev_h + dh[:, 0])
    transpose_W_h: bool = True  # dH_next = dZ W_hᵀ; False: dZ W_h (square W_hh)
    update_sign: float = 1.0  # gru: ∂H_t/∂Z = update_sign · (H_{t-1} - H̃)
    direct_path: float = 1.0  # gru: dH_{t-1} = direct_path · dH_t ⊙ Z + ...
    reset_partner: bool = True  # gru: dR = d(R ⊙ P) ⊙ P, P = H_{t-1} (d2l) or H_{t-1}W_hh+b_hn
    head_state: str = "same"  # output layer: dW_hq = Σ H_tᵀ dY_t; "prev": H_{t-1}
    head_input: str = "same"  # output layer: Y_t = H_t W_hq + b_q; "prev": Y_t reads H_{t-1},
    #                           one step late (PyTorch's char-RNN tutorial: i2o(cat(x, h)));
    #                           without an output layer, the outputs are H_0 .. H_{T-1}
    softmax_minus_one: bool = True  # min-char-rnn: dY = softmax(Y) - onehot(target); False: no -1
    softmax_at: str = "targets"  # min-char-rnn: the -1 at targets[t]; "inputs": at inputs[t]
    loss_at: str = "targets"  # min-char-rnn: the loss reads p[targets[t]]; "inputs": p[inputs[t]]
    loss: str = "sum"  # min-char-rnn: L = Σ_t; "mean": the loss returned is /T, the gradients
    #                    still the sum's; "mean-both": the loss and its gradients both /T
    grad_perm: tuple | None = None  # lstm: gate g's gradient written into gate grad_perm[k]'s
    #                                 block (k = g's index in i, f, o, c): the backward stacks
    #                                 the gates' gradients in another order than the forward reads
    pullback: bool = True  # a forward mistake's gradients pulled back through it (autograd,
    #                        or a backward true to the forward); False: the backward ignores it
    backward_weights: str = "used"  # with pullback False, the weights the backward multiplies
    #   by: "used", the forward's P(θ); "given": θ itself (a backward written for the intended
    #   forward, reading the parameters it was given)
    step_reads: str = "prev"  # rnn: step t reads H_{t-1}; "initial": H_0 at every step (the
    #                           state never updated: h = tanh(x_t W_xh + h0 W_hh + b) in the loop)
    step_reads_back: str = "true"  # with step_reads "initial", the backward: "true" to that
    #   forward (dW_hh = Σ H_0ᵀ dA_t, every dA_t W_hhᵀ into H_0, nothing between steps);
    #   "cache": the intended recurrence's, its cache holding H_0 as every step's previous
    #   state (dW_hh = Σ H_0ᵀ dA_t, dH carried to step t-1); "states": the intended
    #   recurrence's on the states computed (dW_hh = Σ H_{t-1}ᵀ dA_t, dH carried)
    final_state: str = "last"  # the state returned is H_T (C_T); "swapped" (lstm): (C_T, H_T)
    #   where (H_T, C_T) belongs; "tanh-c" (lstm): (H_T, tanh(C_T)); "previous": H_{T-1}
    #   (C_{T-1}), one step early (hs[T-1] in a list that holds H_0 first; H_0 itself when
    #   T = 1); "first": H_1 (C_1), the state after the first step (hs[0]); "candidate-c"
    #   (lstm): (H_T, C̃_T), the last candidate where the cell state belongs; "initial": the
    #   initial state given, returned unchanged (return outputs, state), its upstream
    #   gradient going straight back to H_0
    gate_acts: tuple = ()  # lstm/gru: ((gate, Act), ...), one gate's nonlinearity (and the
    #                        derivative its backward uses) in the place of gate/candidate above
    cell_grad_reads: str = ""  # lstm: tanh'(C_t) = 1 - tanh²(C_t); "c": 1 - C̃² (the candidate's
    #                            value), "H": 1 - H_t² (next_h's), in its place
    carry_c_forget: bool = True  # lstm: dC_{t-1} = dC_t ⊙ F; False: dC_t itself (no ⊙ F)
    c_path_o: bool = True  # lstm: the path from H_t into C_t is dH_t ⊙ O ⊙ tanh'(C_t); False: no ⊙ O
    dtanh_state: str = "same"  # rnn: tanh'(A_t) = 1 - H_t²; "prev": 1 - H_{t-1}², the state
    #                            the step read (prev_h in a CS231n cache) where it made H_t
    direct_term: bool = True  # gru: H_t = Z ⊙ H_{t-1} + (1 - Z) ⊙ H̃; False: (1 - Z) ⊙ H̃ alone
    update_gates: str = "zz"  # gru: the gates in H_t = Z ⊙ H_{t-1} + (1 - Z) ⊙ H̃, in order:
    #                           "zr": Z ⊙ H_{t-1} + (1 - R) ⊙ H̃, R where the second Z belongs
    db_of: str = "dA"  # rnn: db_h = Σ dA_t; "dH": Σ dH_t, taken before tanh' (dbh += dh)
    dW_h_transposed: bool = False  # dW_h returned transposed (Σ dZ_tᵀ H_{t-1}): every W_h<g>
    cut_c: bool = False  # lstm: the cell state alone detached at every step (c = c.detach())
    cut_h: bool = False  # lstm: the hidden state alone detached at every step (h = h.detach())
    cell_forward_only: bool = False  # lstm: the forward's H_t = O ⊙ C_t (no tanh) while the
    #                                  backward (and its cache) keep tanh(C_t), as intended
    bptt_order: str = "backward"  # rnn, lstm: BPTT walks t = T..1; "forward": t = 1..T, each
    #                               step's carried gradient then the one the step before made
    back_skip: str = ""  # lstm: one gate whose dZ_g is left out of dX_t and dH_{t-1} (the
    #                      sums dZ_g W_x<g>ᵀ, dZ_g W_h<g>ᵀ written without that gate's term)
    bias_after: str = ""  # rnn: "true": H_t = tanh(X_t W_xh + H_{t-1} W_hh) + b_h, the bias
    #   added after the tanh (db_h = Σ dH_t, tanh' taken at tanh(A_t)); "forward-only": so in
    #   the forward, the backward that of tanh(... + b_h) (tanh' = 1 - H_t², db_h = Σ dA_t)
    carry_raw: bool = False  # rnn: dH_{t-1} = dH_t W_hhᵀ, tanh' left out of the carry alone
    raw_for: tuple = ()  # rnn: the arrays whose gradient takes dH_t where dA_t = dH_t ⊙ (1 - H_t²)
    #                      belongs, tanh' left out of them alone: "W_xh", "W_hh", "X"
    carry_after_dtanh: bool = False  # rnn: dA_t = dY_t ⊙ (1 - H_t²) + dH_next, the carry
    #                                  added after tanh' (dhraw = (1 - h²) * dy_h + dhnext)
    h_cell: str = "new"  # lstm: H_t = O ⊙ tanh(C_t); "prev": O ⊙ tanh(C_{t-1}), the hidden
    #   state computed before the cell state is updated; "candidate": O ⊙ tanh(C̃_t);
    #   "prev-forward-only": O ⊙ tanh(C_{t-1}) in the forward, the backward that of
    #   O ⊙ tanh(C_t), as intended, tanh(C_t) recomputed from the cell state cached
    reads_c: str = ""  # lstm: those gates' recurrent term reads C_{t-1} where H_{t-1} belongs
    #                    (c @ W_ho.T in the output gate's line)
    dx_from_gate: str = ""  # lstm: dX_t = dZ_g W_xgᵀ of this gate alone (as dh_from_gate)
    dh_from_gate: str = ""  # lstm: dH_{t-1} = dZ_g W_hgᵀ of this gate alone (da_prev = ... in a
    #                         loop over the gates, where += belongs: the last gate's term kept)
    reset_on: str = "h"  # gru, d2l form: H̃ = tanh(X_t W_xh + (R ⊙ H_{t-1}) W_hh + b_h); "x":
    #                      tanh(R ⊙ (X_t W_xh) + H_{t-1} W_hh + b_h), R on the input's term;
    #                      torch form, "all": tanh(R ⊙ (X_t W_xh + b_h + H_{t-1} W_hh + b_hn))
    #                      "outside", either form: R ⊙ tanh(X_t W_xh + b_h + H_{t-1} W_hh (+ b_hn))
    cache_step: str = "t"  # rnn, lstm: BPTT's step t reads step t's cache; "t-1": step t-1's
    #                        (cache[t-1]: step 1 reads the last step's, cache[-1]); "reversed":
    #                        step T+1-t's (caches[T-1-t] in a loop already running down)
    upstream: str = "all"  # every output's gradient dY_t enters BPTT at its step; "last": dY_T
    #                        alone (da[:, :, t] added at the last step only)
    dconcat_order: str = "hx"  # lstm: dH_{t-1}, dX_t split from d[H_{t-1}; X_t] as stacked;
    #                            "xh": split as if [X_t; H_{t-1}] (dxt = dconcat[:n_x]);
    #                            "xh-read-hx": d[X_t; H_{t-1}] (the forward stacked so) split
    #                            as if [H_{t-1}; X_t] (da_prev = dconcat[:n_a])
    coupled_input: bool = False  # lstm: C_t = F ⊙ C_{t-1} + (1 - F) ⊙ C̃, I computed, not used
    carry_c_total: bool = True  # lstm: dC_{t-1} = dC_t ⊙ F; False: dC_next ⊙ F, the part
    #                             carried into step t alone (dprev_c = dnext_c * f)
    last_twice: bool = False  # H_T's upstream gradient counted twice (the carry starts at
    #                           dh[:, -1] where it starts at zero, and step T adds dh[:, -1])
    dc_h_only: str = ""  # lstm: those gates' dI, dF, dC̃ from the path from H_t alone, dC_next
    #                      left out of them (deeplearning.ai's expanded dit = (ot * (1 - tanh²)
    #                      * cct * da_next) * ...: the dc_next * cct term dropped)
    dc_gates: str = ""  # lstm: dI, dF, dC̃ from dC_t; those of these gates ("i", "f", "c")
    #                     from dC_next alone (the dnext_c passed in), the path from H_t left out
    dW_concat: str = "hx"  # lstm: dW<g> = dZ [H_{t-1}; X_t]ᵀ; "xh": [X_t; H_{t-1}] rebuilt so in
    #                        the backward alone (deeplearning.ai's dWf's columns in another order)
    inputs_from: str = "inputs"  # min-char-rnn: the one-hot of inputs[t]; "targets": targets[t]
    h_form: str = "o-tanh-c"  # lstm: H_t = O ⊙ tanh(C_t); "tanh-oc": tanh(O ⊙ C_t)
    prediction: str = "H"  # a cell's own prediction (deeplearning.ai's yt_pred = softmax(Wya
    #   a_next + by), no gradient through it): "H" softmax over the classes of H_t's;
    #   "H_prev": H_{t-1}'s (a_prev); "C": C_t's (c_next, lstm); "all": normalised over the
    #   classes and the batch together (np.sum(np.exp(z))); "batch": over the batch axis;
    #   "shift-classes": each column shifted by its own max, then summed over the whole array
    zero_grad: str = ""  # the gradient of "b_" (every gate bias), "b_q", "W_hq", "W_x" or "W_h"
    #                      (every W_x<g>, W_h<g>) never accumulated: it stays zero (dby += dy
    #                      left out)
    grad_reads: tuple = ()  # lstm/gru: ((gate, a, b), ...): that gate's local derivative
    #   written with other values, a(1 - b) for a σ gate (σ' = G(1 - G) with another gate's
    #   value: f * (1 - i)), 1 - a b for the candidate's tanh (1 - tanh²(C_t) for 1 - C̃²);
    #   a, b name a gate's value ("i", "f", "o", "c"; "z", "r", "h"), or "TC" tanh(C_t), "H" H_t
    outside: tuple = ()  # lstm/gru: ((gate, what), ...), a parenthesis closed early in that
    #   gate's line: what: "b", act(X W_x + H W_h) + b, the bias after the activation; "hb",
    #   act(X W_x + b_in) + H W_h + b, the recurrent term and the bias after it (b_in the
    #   bias's "b_<g>~in" part where a Reparam puts one there: σ(x2f(x)) + h2f(h))
    outside_back: bool = True  # with r.outside, the backward that of that forward; False:
    #                            that of the intended line, on the values the forward made
    clip_carry: float = 0.0  # rnn, lstm: > 0, the gradient carried into H_{t-1} clipped to
    #                          [-clip_carry, clip_carry] at every step (np.clip(dprev_h, -5, 5)
    #                          in the loop), dH_0 included
    reparam: Reparam | None = field(default=None, compare=False)


SPEC = Rules()
