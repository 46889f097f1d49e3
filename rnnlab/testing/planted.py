"""Subjects in every convention, computed by the spec, with a known mistake planted or not.

``planted(convention, cell, mistake)`` returns what a user would hand to ``verify``: a
module of CS231n functions, a d2l ``lstm(inputs, state, params)`` (torch, gradients by
autograd through a ``torch.autograd.Function`` whose backward is the spec's, mistake
included), an ``nn.Module`` class, a min-char-rnn module with ``lossFun``, or a
:class:`Protocol`. The test suite plants every mistake of the catalogue in every
convention and checks that the properties catch it and the diagnosis names it; the
correct ones (``mistake=None``) must pass.
"""

from __future__ import annotations

import types

import numpy as np

from . import conventions as cv
from .dlai_units import GATES as _DLAI_GATES
from .dlai_units import to_parameters
from .minchar_units import CLIP
from .mistakes import CATALOGUE, Mistake
from .protocol_units import Protocol
from .rules import SPEC, Rules
from .spec import predictions, run


GATES_DLAI = _DLAI_GATES["lstm"]


def _rules(mistake) -> Rules:
    if mistake is None:
        return SPEC
    if isinstance(mistake, str):
        mistake = CATALOGUE[mistake]
    return mistake.rules if isinstance(mistake, Mistake) else mistake


def planted(convention: str, cell: str, mistake=None, gru_form: str | None = None):
    r = _rules(mistake)
    if convention == "cs231n":
        return _cs231n(cell, r)
    if convention == "deeplearning.ai":
        return _dlai(cell, r)
    if convention == "d2l":
        return _d2l_torch(cell, r)
    if convention == "d2l-numpy":
        return _d2l_numpy(cell, r)
    if convention == "torch.nn":
        return _torch_nn(cell, r)
    if convention == "torch.nn-gates":  # the torch.nn convention, one nn.Linear per gate
        return _torch_nn_gates(cell, r, gru_form or "torch")
    if convention in ("torch-tutorial", "torch-tutorial-step"):  # PyTorch's char-RNN module
        return _torch_tutorial("step" if convention.endswith("step") else "sequence", r)
    if convention == "min-char-rnn":
        return _min_char(r)
    if convention == "protocol":
        return _protocol(cell, r, gru_form or "d2l")
    raise ValueError(f"unknown convention {convention!r}")


# ------------------------------------------------------------------------- CS231n


def _cs231n(cell: str, r: Rules) -> types.ModuleType:
    layout = cv.cs231n_layout(cell)
    m = types.ModuleType(f"planted_cs231n_{cell}")

    def params(Wx, Wh, b):
        return cv.from_subject(layout, {"Wx": Wx, "Wh": Wh, "b": b})[0]

    def step_forward(x, prev_h, *rest):
        *prev_c, Wx, Wh, b = rest
        p = params(Wx, Wh, b)
        state = (prev_h, *prev_c)
        res = run(cell, p, x[None], state, dOut=np.zeros((1, *prev_h.shape)), rules=r)
        cache = (p, x, state)
        return (res.Hs[0], *res.state[1:], cache)

    def step_backward(dnext_h, *rest):
        *dnext_c, (p, x, state) = rest
        dState = (np.zeros_like(dnext_h), *dnext_c)
        res = run(cell, p, x[None], state, dOut=dnext_h[None], dState=dState, rules=r)
        g = cv.grads_to_subject(layout, res.grads)
        return (res.dX[0], *res.dstate0, g["Wx"], g["Wh"], g["b"])

    def forward(x, h0, Wx, Wh, b):
        p = params(Wx, Wh, b)
        state = (h0,) if cell == "rnn" else (h0, np.zeros_like(h0))
        X = x.transpose(1, 0, 2)  # (T, N, D)
        res = run(cell, p, X, state, dOut=np.zeros((X.shape[0], *h0.shape)), rules=r)
        return res.Hs.transpose(1, 0, 2), (p, X, state)

    def backward(dh, cache):
        p, X, state = cache
        res = run(cell, p, X, state, dOut=dh.transpose(1, 0, 2), rules=r)
        g = cv.grads_to_subject(layout, res.grads)
        return res.dX.transpose(1, 0, 2), res.dstate0[0], g["Wx"], g["Wh"], g["b"]

    if cell == "rnn":
        m.rnn_step_forward = lambda x, prev_h, Wx, Wh, b: step_forward(x, prev_h, Wx, Wh, b)
        m.rnn_step_backward = lambda dnext_h, cache: step_backward(dnext_h, cache)
        m.rnn_forward, m.rnn_backward = forward, backward
    else:
        m.lstm_step_forward = (lambda x, prev_h, prev_c, Wx, Wh, b:
                               step_forward(x, prev_h, prev_c, Wx, Wh, b))
        m.lstm_step_backward = lambda dnext_h, dnext_c, cache: step_backward(dnext_h, dnext_c, cache)
        m.lstm_forward, m.lstm_backward = forward, backward
    return m


# ------------------------------------------------------------------ deeplearning.ai


def _dlai(cell: str, r: Rules) -> types.ModuleType:
    """Sequence Models week 1's functions, column-major with a parameters dict."""
    m = types.ModuleType(f"planted_dlai_{cell}")

    def spec_params(parameters):
        if cell == "rnn":
            return {"W_xh": parameters["Wax"].T, "W_hh": parameters["Waa"].T,
                    "b_h": parameters["ba"][:, 0]}
        p = {}
        for g in GATES_DLAI:
            W = parameters[f"W{g}"]
            H = W.shape[0]
            p[f"W_h{g}"], p[f"W_x{g}"], p[f"b_{g}"] = W[:, :H].T, W[:, H:].T, parameters[f"b{g}"][:, 0]
        return p

    def head(parameters, res):  # each cell's softmax(Wya a_next + by): (n_y, m, T_x)
        return predictions(res, parameters["Wya"], parameters["by"][:, 0]).transpose(2, 1, 0)

    def grads_out(res, step: bool):
        g = {f"d{k}": v for k, v in to_parameters(cell, res.grads).items()}
        g["dxt" if step else "dx"] = res.dX[0].T if step else res.dX.transpose(2, 1, 0)
        g["da_prev" if step else "da0"] = res.dstate0[0].T
        if step and cell == "lstm":
            g["dc_prev"] = res.dstate0[1].T
        return g

    def cell_forward(xt, a_prev, *rest):
        *c_prev, parameters = rest
        p = spec_params(parameters)
        state = (a_prev.T, *[c.T for c in c_prev])
        res = run(cell, p, xt.T[None], state, dOut=np.zeros((1,) + state[0].shape), rules=r)
        a_next = res.Hs[0].T
        extra = (res.state[1].T,) if cell == "lstm" else ()
        return (a_next, *extra, head(parameters, res)[:, :, 0], (p, xt, state))

    def cell_backward(da_next, *rest):
        *dc_next, (p, xt, state) = rest
        dState = (np.zeros_like(state[0]), *[d.T for d in dc_next])
        res = run(cell, p, xt.T[None], state, dOut=da_next.T[None], dState=dState, rules=r)
        return grads_out(res, True)

    def forward(x, a0, parameters):
        p = spec_params(parameters)
        X = x.transpose(2, 1, 0)  # (T, m, n_x)
        state = (a0.T,) if cell == "rnn" else (a0.T, np.zeros_like(a0.T))
        res = run(cell, p, X, state, dOut=np.zeros((X.shape[0],) + state[0].shape), rules=r)
        a = res.Hs.transpose(2, 1, 0)
        out = [a, head(parameters, res)]
        if cell == "lstm":  # c for every step, (n_a, m, T_x)
            out.append(res.Cs.transpose(2, 1, 0))
        return (*out, (p, X, state))

    def backward(da, caches):
        p, X, state = caches
        res = run(cell, p, X, state, dOut=da.transpose(2, 1, 0), rules=r)
        return grads_out(res, False)

    if cell == "rnn":
        m.rnn_cell_forward = lambda xt, a_prev, parameters: cell_forward(xt, a_prev, parameters)
        m.rnn_cell_backward = lambda da_next, cache: cell_backward(da_next, cache)
        m.rnn_forward = forward
        m.rnn_backward = backward
    else:
        m.lstm_cell_forward = (lambda xt, a_prev, c_prev, parameters:
                               cell_forward(xt, a_prev, c_prev, parameters))
        m.lstm_cell_backward = (lambda da_next, dc_next, cache:
                                cell_backward(da_next, dc_next, cache))
        m.lstm_forward = forward
        m.lstm_backward = backward
    return m


# -------------------------------------------------------------------------- d2l


def _d2l_numpy(cell: str, r: Rules):
    order = (*cv.D2L_ORDER[cell], "W_hq", "b_q")

    def fn(inputs, state, params):
        p = dict(zip(order, params))
        res = run(cell, p, inputs, tuple(state), head="linear",
                  dOut=np.zeros(inputs.shape), rules=r)
        T, B, V = res.Y.shape
        return res.Y.reshape(T * B, V), res.state

    fn.__name__ = cell
    return fn


def _d2l_torch(cell: str, r: Rules):
    import torch

    order = (*cv.D2L_ORDER[cell], "W_hq", "b_q")
    n_state = 2 if cell == "lstm" else 1

    class Spec(torch.autograd.Function):
        @staticmethod
        def forward(ctx, inputs, *rest):
            state = [s.detach().double().numpy() for s in rest[:n_state]]
            p = {k: t.detach().double().numpy() for k, t in zip(order, rest[n_state:])}
            X = inputs.detach().double().numpy()
            ctx.saved = (p, X, state)
            res = run(cell, p, X, tuple(state), head="linear", dOut=np.zeros(X.shape), rules=r)
            T, B, V = res.Y.shape
            dt = inputs.dtype
            return (torch.tensor(res.Y.reshape(T * B, V), dtype=dt),
                    *[torch.tensor(s, dtype=dt) for s in res.state])

        @staticmethod
        def backward(ctx, dY, *dS):
            p, X, state = ctx.saved
            T, B, V = X.shape
            res = run(cell, p, X, tuple(state), head="linear",
                      dOut=dY.double().numpy().reshape(T, B, V),
                      dState=tuple(d.double().numpy() for d in dS), rules=r)
            dt = dY.dtype
            return (None, *[torch.tensor(d, dtype=dt) for d in res.dstate0],
                    *[torch.tensor(res.grads[k], dtype=dt) for k in order])

    def fn(inputs, state, params):
        out, *st = Spec.apply(inputs, *state, *params)
        return out, tuple(st)

    fn.__name__ = cell
    return fn


# --------------------------------------------------------------------- torch.nn


def _torch_nn_spec(cell: str, layout: dict, r: Rules):
    """The spec with mistake ``r`` as an autograd.Function over a torch.nn-style module's
    call: (x, *hx, *weights in ``layout``'s order) -> (output, *final states), each state
    with its layer axis; the backward is the spec's BPTT, mapped back to ``layout``."""
    import torch

    names = tuple(layout)
    n_state = 2 if cell == "lstm" else 1

    class Spec(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, *rest):
            hx = [h.detach().numpy()[0] for h in rest[:n_state]]
            p, split = cv.from_subject(layout, {k: t.detach().numpy() for k, t in zip(names, rest[n_state:])})
            X = x.detach().numpy()
            ctx.saved = (p, X, hx, split)
            res = run(cell, p, X, tuple(hx), dOut=np.zeros(X.shape[:2] + hx[0].shape[-1:]), rules=r,
                      split=split)
            return (torch.from_numpy(res.Hs.copy()), *[torch.from_numpy(s[None].copy()) for s in res.state])

        @staticmethod
        def backward(ctx, dout, *dh):
            p, X, hx, split = ctx.saved
            res = run(cell, p, X, tuple(hx), dOut=dout.numpy(),
                      dState=tuple(d.numpy()[0] for d in dh), rules=r, split=split)
            g = cv.grads_to_subject(layout, res.grads)
            return (torch.from_numpy(res.dX), *[torch.from_numpy(d[None].copy()) for d in res.dstate0],
                    *[torch.from_numpy(g[k]) for k in names])

    return Spec


def _torch_nn(cell: str, r: Rules):
    import torch

    layout = cv.torch_nn_layout(cell)
    names = tuple(layout)
    n_state = 2 if cell == "lstm" else 1
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]

    Spec = _torch_nn_spec(cell, layout, r)

    class Planted(torch.nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            H = hidden_size
            self.weight_ih_l0 = torch.nn.Parameter(torch.zeros(G * H, input_size, dtype=torch.float64))
            self.weight_hh_l0 = torch.nn.Parameter(torch.zeros(G * H, H, dtype=torch.float64))
            self.bias_ih_l0 = torch.nn.Parameter(torch.zeros(G * H, dtype=torch.float64))
            self.bias_hh_l0 = torch.nn.Parameter(torch.zeros(G * H, dtype=torch.float64))

        def forward(self, x, hx):
            hx = (hx,) if n_state == 1 else tuple(hx)
            out, *st = Spec.apply(x, *hx, *[getattr(self, n) for n in names])
            return out, (st[0] if n_state == 1 else tuple(st))

    Planted.__name__ = Planted.__qualname__ = f"Planted{cell.upper()}"
    return Planted


def _torch_nn_gates(cell: str, r: Rules, form: str):
    """A GRU or LSTM of one nn.Linear per gate and source (``x2r``, ``h2r``, ...), in
    torch.nn's GRU form or d2l's, its numbers the spec's through an autograd.Function."""
    import torch

    letters = {"gru": {"r": "r", "z": "z", "h": "n"},
               "lstm": {"i": "i", "f": "f", "c": "g", "o": "o"}}[cell]
    pairs = {g: (f"x2{k}", f"h2{k}") for g, k in letters.items()}
    layout = cv.linear_gates_layout(cell, pairs, dict.fromkeys(
        [n for pair in pairs.values() for n in pair], True), form)
    names = tuple(layout)
    n_state = 2 if cell == "lstm" else 1

    Spec = _torch_nn_spec(cell, layout, r)

    class Planted(torch.nn.Module):
        def __init__(self, input_size, hidden_size):
            super().__init__()
            for x, h in pairs.values():
                setattr(self, x, torch.nn.Linear(input_size, hidden_size, dtype=torch.float64))
                setattr(self, h, torch.nn.Linear(hidden_size, hidden_size, dtype=torch.float64))

        def forward(self, x, hx):
            hx = (hx,) if n_state == 1 else tuple(hx)
            params = dict(self.named_parameters())
            out, *st = Spec.apply(x, *hx, *[params[n] for n in names])
            return out, (st[0] if n_state == 1 else tuple(st))

    # the form is read off the forward's code, as in a student's module: write it there
    # (the numbers are the spec's, above)
    def torch_form(self, x, hx):
        """As torch.nn.GRU: n = tanh(x2n(x) + r * h2n(h))."""
        candidate = lambda x, h, r: torch.tanh(self.x2n(x) + r * self.h2n(h))  # noqa: E731, F841
        return Planted.forward(self, x, hx)

    def d2l_form(self, x, hx):
        """As d2l's GRU: n = tanh(x2n(x) + h2n(r * h))."""
        candidate = lambda x, h, r: torch.tanh(self.x2n(x) + self.h2n(r * h))  # noqa: E731, F841
        return Planted.forward(self, x, hx)

    return type(f"PlantedGates{cell.upper()}", (Planted,),
                {"forward": torch_form if form == "torch" else d2l_form})


def _torch_tutorial(form: str, r: Rules):
    """PyTorch's char-RNN tutorial module, RNN(input_size, hidden_size, output_size), its
    numbers the spec's with a log-softmax output layer through an autograd.Function: the
    newer form (nn.RNN, h2o on the last hidden state, from zeros) or the first, one step
    per call, i2h on cat(input, hidden) and h2o on the new hidden state."""
    import torch

    names = ("W_xh", "W_hh", "b_h", "W_hq", "b_q")

    class Spec(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, h0, *weights):
            p = {k: t.detach().numpy() for k, t in zip(names, weights)}
            X, H0 = x.detach().numpy(), h0.detach().numpy()
            ctx.saved = (p, X, H0)
            res = run("rnn", p, X, (H0,), head="logsoftmax", dOut=np.zeros(X.shape[:2] + p["b_q"].shape),
                      rules=r)
            return torch.from_numpy(res.Y.copy()), torch.from_numpy(res.state[0].copy())

        @staticmethod
        def backward(ctx, dY, dH):
            p, X, H0 = ctx.saved
            res = run("rnn", p, X, (H0,), head="logsoftmax", dOut=dY.numpy(), dState=(dH.numpy(),),
                      rules=r)
            return (torch.from_numpy(res.dX), torch.from_numpy(res.dstate0[0].copy()),
                    *[torch.from_numpy(np.ascontiguousarray(res.grads[k])) for k in names])

    f64 = torch.float64

    class Sequence(torch.nn.Module):
        def __init__(self, input_size, hidden_size, output_size):
            super().__init__()
            self.rnn = torch.nn.RNN(input_size, hidden_size, dtype=f64)
            self.h2o = torch.nn.Linear(hidden_size, output_size, dtype=f64)
            self.softmax = torch.nn.LogSoftmax(dim=1)

        def forward(self, line_tensor):
            h0 = line_tensor.new_zeros(line_tensor.shape[1], self.rnn.hidden_size)  # (B, H)
            weights = (self.rnn.weight_ih_l0.T, self.rnn.weight_hh_l0.T,
                       self.rnn.bias_ih_l0 + self.rnn.bias_hh_l0, self.h2o.weight.T, self.h2o.bias)
            out, _ = Spec.apply(line_tensor, h0, *weights)
            return out[-1]  # (B, V)

    class Step(torch.nn.Module):
        def __init__(self, input_size, hidden_size, output_size):
            super().__init__()
            self.input_size = input_size
            self.i2h = torch.nn.Linear(input_size + hidden_size, hidden_size, dtype=f64)
            self.h2o = torch.nn.Linear(hidden_size, output_size, dtype=f64)

        def forward(self, input, hidden):
            W = self.i2h.weight.T  # (D+H, H): [W_xh; W_hh]
            weights = (W[:self.input_size], W[self.input_size:], self.i2h.bias, self.h2o.weight.T,
                       self.h2o.bias)
            out, h = Spec.apply(input[None], hidden, *weights)
            return out[0], h

    cls = Step if form == "step" else Sequence
    cls.__name__ = cls.__qualname__ = f"PlantedTutorial{form.title()}"
    return cls


# ------------------------------------------------------------------ min-char-rnn


def _min_char(r: Rules) -> types.ModuleType:
    layout = cv.min_char_layout()
    m = types.ModuleType("planted_min_char_rnn")

    def lossFun(inputs, targets, hprev):
        W = {k: getattr(m, k) for k in layout}
        p = cv.from_subject(layout, W)[0]
        V = W["Wxh"].shape[1]
        X = np.eye(V)[np.array(inputs)][:, None]  # (T, 1, V)
        res = run("rnn", p, X, (hprev.T,), head="softmax",
                  targets=np.array(targets)[:, None], rules=r)
        g = cv.grads_to_subject(layout, res.grads)
        for k in g:
            np.clip(g[k], -CLIP, CLIP, out=g[k])
        return (res.loss, g["Wxh"], g["Whh"], g["Why"], g["bh"], g["by"], res.state[0].T)

    m.lossFun = lossFun
    return m


# --------------------------------------------------------------------- protocol


def _protocol(cell: str, r: Rules, gru_form: str) -> Protocol:
    def forward(params, X, state):
        res = run(cell, params, X, tuple(state), dOut=np.zeros(X.shape[:2] + state[0].shape[-1:]),
                  rules=r)
        return res.Hs, res.state

    def backward(params, X, state, dHs, dstate):
        res = run(cell, params, X, tuple(state), dOut=dHs, dState=tuple(dstate), rules=r)
        return res.grads, res.dX, res.dstate0

    return Protocol(cell, forward, backward, gru_form=gru_form, name=f"planted {cell}")
