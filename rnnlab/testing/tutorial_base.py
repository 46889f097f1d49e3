"""The torch-tutorial convention's arrays and names, without torch: what rnnlab's process
needs of PyTorch's char-RNN tutorial module ("NLP From Scratch: Classifying Names with a
Character-Level RNN", and "Generating Names"), whose module runs in a child process
(isolation.py); ``torch_tutorial.TutorialUnit`` adds building and calling it.

The tutorial writes its RNN in two forms, both built as ``RNN(input_size, hidden_size,
output_size)`` with ``output_size`` = V, the spec's output width (rnnlab passes input_size):

* **step** (the first form): ``forward(input, hidden) -> (output, hidden)``, one step per
  call, ``combined = torch.cat((input, hidden), 1)``, ``hidden = i2h(combined)``,
  ``output = softmax(i2o(combined))`` with ``softmax = nn.LogSoftmax(dim=1)``. Its layers:
  ``i2h.weight = [W_xhᵀ | W_hhᵀ]`` (H, D+H), ``i2h.bias = b_h``; the output layer reads
  either ``combined`` (``i2o.weight = [W_xqᵀ | W_hqᵀ]`` (V, D+H), the spec has no W_xq:
  rnnlab holds it at zero, its gradient is Σ_t X_tᵀ dY_t) or the hidden state alone
  (``h2o.weight = W_hqᵀ`` (V, H)); ``*.bias = b_q``.
* **sequence** (the newer form): ``self.rnn = nn.RNN(input_size, hidden_size)``,
  ``self.h2o = nn.Linear(hidden_size, output_size)``; ``forward(line_tensor)`` with
  ``line_tensor`` (T, B, D) returns ``softmax(h2o(hidden[0]))``, the last step's output
  alone, from a zero initial state (``rnn.weight_ih_l0 = W_xhᵀ`` ..., torch.nn's).

The spec (docs/verify.md): H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h), output_t =
log softmax(H_t W_hq + b_q); gradients of L = Σ_t output_t ⊙ dOut_t + Σ H_T ⊙ dState.
"""

from __future__ import annotations

import numpy as np

from . import conventions as cv
from .adapters import Unit, _grad_quantities
from .compare import Quantity
from .spec import SpecResult, log_softmax_backward
from .strategies import Constraints, Problem

FORMS = ("step", "sequence")


def tutorial_constraints(form: str) -> Constraints:
    """The step form takes and returns the state; the sequence form starts from zeros and
    returns the last step's output alone (its other outputs receive no gradient)."""
    step = form == "step"
    # D = V >= 2: the log-softmax of one class is 0 whatever the layer computes
    return Constraints("rnn", D=(2, 5), head="logsoftmax", bias_split=not step, state_in=(step,),
                       state_upstream=(step,), last_output=not step)


class TutorialBase(Unit):
    """PyTorch's char-RNN tutorial module (see the module docstring): the arrays it returns,
    by name, and the spec's in its layout. ``names`` maps roles to the module's layers:
    "i2h", "out" (the output layer) and "rnn" (the sequence form's nn.RNN)."""

    convention = "torch-tutorial"
    kind = "autograd"

    def __init__(self, name: str, form: str, names: dict, out_reads: str, source=None):
        super().__init__(name, tutorial_constraints(form), {}, source)
        self.form = form
        self.names = dict(names)
        self.out_reads = out_reads  # step form: "combined" (i2o) or "hidden" (h2o)
        self.layout = self._layout()

    def _layout(self) -> dict:
        """{the module's parameter: a Block naming the spec array it holds} (one per
        parameter: a weight that stacks two spec arrays is named by its first)."""
        out = self.names["out"]
        if self.form == "step":
            i2h = self.names["i2h"]
            W_q = "W_hq" if self.out_reads == "hidden" else "W_xq"
            return {f"{i2h}.weight": cv.single("W_xh"), f"{i2h}.bias": cv.single("b_h"),
                    f"{out}.weight": cv.single(W_q), f"{out}.bias": cv.single("b_q")}
        rnn = self.names["rnn"]
        return {f"{rnn}.weight_ih_l0": cv.single("W_xh", transpose=True),
                f"{rnn}.weight_hh_l0": cv.single("W_hh", transpose=True),
                f"{rnn}.bias_ih_l0": cv.Block(("b_h",), ("",), shared=(True,), role="ih"),
                f"{rnn}.bias_hh_l0": cv.Block(("b_h",), ("",), shared=(True,), role="hh"),
                f"{out}.weight": cv.single("W_hq", transpose=True), f"{out}.bias": cv.single("b_q")}

    # ---- the spec's arrays in the module's
    def to_module(self, p: Problem) -> dict:
        """{parameter: array} of the problem's weights, as the module stores them."""
        W = p.params
        out = self.names["out"]
        if self.form == "sequence":
            return cv.to_subject(self.layout, W, p.split)
        i2h = self.names["i2h"]
        arrays = {f"{i2h}.weight": np.concatenate([W["W_xh"], W["W_hh"]]).T,  # (H, D+H)
                  f"{i2h}.bias": W["b_h"]}
        W_q = W["W_hq"]  # (H, V)
        if self.out_reads == "combined":  # no input-to-output weight in the spec: zero
            W_q = np.concatenate([np.zeros((W["W_xh"].shape[0], W_q.shape[1])), W_q])  # (D+H, V)
        arrays[f"{out}.weight"] = np.ascontiguousarray(W_q.T)  # (V, D+H) or (V, H)
        arrays[f"{out}.bias"] = W["b_q"]
        return arrays

    def _grads(self, p: Problem, res: SpecResult) -> dict:
        g = res.grads
        out = self.names["out"]
        if self.form == "sequence":
            return cv.grads_to_subject(self.layout, g)
        i2h = self.names["i2h"]
        grads = {f"{i2h}.weight": np.concatenate([g["W_xh"], g["W_hh"]]).T,  # (H, D+H)
                 f"{i2h}.bias": g["b_h"]}
        dW_q = g["W_hq"]  # (H, V)
        if self.out_reads == "combined":  # Y_t = X_t W_xq + ..., W_xq = 0: dW_xq = Σ X_tᵀ dY_t
            dY = log_softmax_backward(p.dOut, res.Y)  # (T, B, V)
            dW_xq = np.einsum("tbd,tbv->dv", p.X, dY)  # (D, V)
            dW_q = np.concatenate([dW_xq, dW_q])  # (D+H, V)
        grads[f"{out}.weight"] = dW_q.T
        grads[f"{out}.bias"] = g["b_q"]
        return grads

    # ---- what rnnlab compares
    def quantities(self) -> dict:
        if self.form == "step":
            q = {"output": Quantity("output", "output", time_axis=0, batch_axis=1),
                 "hidden": Quantity("hidden", "state", batch_axis=0, index=0)}
        else:
            q = {"output": Quantity("output", "output", batch_axis=0)}
        q.update(_grad_quantities(self.layout, prefix="", suffix=".grad"))
        q["input.grad"] = Quantity("input.grad", "dinput", time_axis=0, batch_axis=1)
        if self.form == "step":
            q["hidden_0.grad"] = Quantity("hidden_0.grad", "dstate", batch_axis=0, index=0)
        return q

    def final_state_names(self) -> tuple:
        return ("hidden",) if self.form == "step" else ()

    def initial_grad_names(self):
        return ("hidden_0.grad",) if self.form == "step" else None

    def expect(self, p: Problem, res: SpecResult, grads: bool) -> dict:
        e = {"output": res.Y if self.form == "step" else res.Y[-1]}  # log-probabilities
        if self.form == "step":
            e["hidden"] = res.state[0]
        if grads:
            e.update({f"{k}.grad": v for k, v in self._grads(p, res).items()})
            e["input.grad"] = res.dX
            if self.form == "step":
                e["hidden_0.grad"] = res.dstate0[0]
        return e
