"""rnnlab parameters <-> ``torch.nn`` modules and d2l's parameter lists, as torch tensors.

Built on :func:`rnnlab.params.to_torch_nn` / :func:`rnnlab.params.from_torch_nn` (the
NumPy mapping, the one place the gate orders and name suffixes are written down):

* :func:`to_nn_module` / :func:`from_nn_module`: a real ``nn.RNN`` / ``nn.LSTM`` /
  ``nn.GRU`` plus ``nn.Linear`` with the weights copied in or out;
* :func:`to_state_dict` / :func:`from_state_dict`: d2l's ``RNNModel`` state dict
  (``rnn.*``, ``linear.*``) as tensors;
* :func:`to_d2l_params` / :func:`from_d2l_params`: the list of d2l's ``get_params`` /
  ``get_lstm_params``, leaves with ``requires_grad``;
* :func:`d2l_rnn_scratch`: d2l's ``RNNModelScratch`` forward verbatim (per gate,
  ``F.one_hot(X.T, V)``), the reference and the benchmarks' baseline;
* :func:`nn_weights`: the same mapping as ``to_torch_nn``, written in torch ops so that
  autograd carries gradients from the ``torch.nn`` weights back to rnnlab's names. The
  torch backend's ``impl="nn"`` path runs on it; a test holds it equal to ``to_torch_nn``;
* :func:`nn_views`: the other way, ``torch.nn`` weights as views under rnnlab's names,
  for the nn path's gradients and for :func:`fused_params`, the layout
  ``TorchBackend.from_numpy`` gives a model (per-gate views of torch.nn's flat weights),
  which :func:`fused_weights` recognises so the kernel gets the weights without a copy.

torch.nn computes ``x W_ihᵀ + b_ih + h W_hhᵀ + b_hh`` with gates stacked as LSTM
(i, f, g, o), GRU (r, z, n); rnnlab's one bias per gate goes into ``b_ih`` and
``b_hh`` is zero (the torch-form GRU's ``b_hn`` excepted).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from ..params import (
    TORCH_GATES,
    TORCH_MODULE,
    _torch_suffix,
    as_model_config,
    from_d2l_list,
    from_torch_nn,
    has_hidden_bias,
    layer_input_size,
    suffix,
    to_d2l_list,
    to_torch_nn,
    units,
    validate_params,
)
from .device import resolve_dtype

# ---------------------------------------------------------------------------------------
# the differentiable mapping used by the backend's nn path


def nn_weights(cfg: ModelConfig, params: dict) -> dict:
    """rnnlab tensors -> ``torch.nn`` weights (no prefix), by ``torch.cat`` and transposes.

    ``weight_ih = [W_x<g>ᵀ ...]`` (G*H, In) in torch's gate order, ``weight_hh`` likewise
    (G*H, H), ``bias_ih = [b_<g> ...]`` (G*H,), ``bias_hh = 0`` (G*H,). Every entry is a
    function of the rnnlab leaves, so ``autograd.grad`` w.r.t. those leaves slices and
    transposes the ``torch.nn`` weight gradients back to rnnlab's names: bias_hh, a
    constant, collects none (its gradient equals bias_ih's, which is b_<g>'s).
    """
    gates = TORCH_GATES[cfg.cell]
    hidden = hidden_biases(cfg, params)
    out = {}
    for layer, direction in units(cfg):
        s, t = suffix(layer, direction), _torch_suffix(layer, direction)
        out[f"weight_ih{t}"] = torch.cat([params[f"W_x{g}{s}"].T for g in gates])  # (G*H, In)
        out[f"weight_hh{t}"] = torch.cat([params[f"W_h{g}{s}"].T for g in gates])  # (G*H, H)
        out[f"bias_ih{t}"] = torch.cat([params[f"b_{g}{s}"] for g in gates])  # (G*H,)
        out[f"bias_hh{t}"] = hidden[f"bias_hh{t}"]  # (G*H,)
    return out


def hidden_biases(cfg: ModelConfig, params: dict) -> dict:
    """torch.nn's ``bias_hh`` of every (layer, direction): zero (rnnlab's one bias per
    gate is in ``bias_ih``), but for the torch-form GRU's b_hn in its candidate's rows."""
    G, H = len(TORCH_GATES[cfg.cell]), cfg.num_hiddens
    zeros = params["b_q"].new_zeros(G * H)  # (G*H,)
    out = {}
    for layer, direction in units(cfg):
        s, t = suffix(layer, direction), _torch_suffix(layer, direction)
        if has_hidden_bias(cfg):  # the n (candidate) slot, last of torch's (r, z, n)
            out[f"bias_hh{t}"] = torch.cat([zeros[: (G - 1) * H], params[f"b_hn{s}"]])  # (G*H,)
        else:
            out[f"bias_hh{t}"] = zeros
    return out


# the weights torch.nn keeps in one tensor per (layer, direction) and kind, whose rows
# are rnnlab's per-gate parameters: (torch.nn name, rnnlab name, transposed)
_FUSED = (("weight_ih", "W_x", True), ("weight_hh", "W_h", True), ("bias_ih", "b_", False))


def nn_views(cfg: ModelConfig, weight_names: list, flat: list) -> dict:
    """torch.nn's flat weights (``weight_names`` order; ``None`` for a constant) as views
    under rnnlab's names: W_x<g> = weight_ih[rows of g]ᵀ (In, H), W_h<g> = weight_hh[rows
    of g]ᵀ (H, H), b_<g> = bias_ih[rows of g] (H,), the torch-form GRU's b_hn =
    bias_hh[rows of its candidate]. No copies: a view shares its weight's memory.

    The one mapping from torch.nn's weights to rnnlab's names, used both ways round: the
    nn path's gradients come back through it, and :func:`fused_params` lays the
    parameters out through it.
    """
    by_name = dict(zip(weight_names, flat))
    H, gates = cfg.num_hiddens, TORCH_GATES[cfg.cell]
    out = {}
    for layer, direction in units(cfg):
        s, t = suffix(layer, direction), _torch_suffix(layer, direction)
        for kind, name, transposed in _FUSED:
            w = by_name[f"{kind}{t}"].unflatten(0, (len(gates), H))  # (G, H, In) or (G, H)
            blocks = (w.mT if transposed else w).unbind(0)  # G x (In, H), or G x (H,)
            out.update((f"{name}{g}{s}", b) for g, b in zip(gates, blocks))
        if has_hidden_bias(cfg):
            n = gates.index("h")
            out[f"b_hn{s}"] = by_name[f"bias_hh{t}"][n * H:(n + 1) * H]  # (H,)
    return out


def fused_params(cfg: ModelConfig, params: dict) -> dict:
    """The same tensors, copied into torch.nn's flat weights and returned as views of
    them (:func:`nn_views`): each W_x<g>, W_h<g>, b_<g> keeps its shape and values and
    lies in its rows of one ``weight_ih`` / ``weight_hh`` / ``bias_ih`` per layer and
    direction, as torch.nn keeps them. :func:`fused_weights` then finds those weights
    without a copy; the torch-form GRU's b_hn, W_hq and b_q stay tensors of their own.
    """
    with torch.no_grad():
        weights = nn_weights(cfg, params)  # fresh tensors in torch.nn's layout
    views = nn_views(cfg, list(weights), list(weights.values()))
    out = dict(params)  # the same order of names
    out.update((k, v) for k, v in views.items() if not k.startswith("b_hn"))
    return out


def fused_weights(cfg: ModelConfig, params: dict) -> list | None:
    """torch.nn's ``weight_ih``, ``weight_hh`` and ``bias_ih`` of every (layer, direction),
    in that order, when ``params`` lie in them as :func:`fused_params` lays them out (each
    per-gate tensor a view of one contiguous weight, in its rows, in torch.nn's gate
    order); ``None`` otherwise (then :func:`nn_weights` copies them together)."""
    H, gates = cfg.num_hiddens, TORCH_GATES[cfg.cell]
    found = []
    for layer, direction in units(cfg):
        s = suffix(layer, direction)
        for _, name, transposed in _FUSED:
            views = [params[f"{name}{g}{s}"] for g in gates]
            base = views[0]._base  # (G*H, In) or (G*H,) if they lie in one
            if base is None or base.dim() != 1 + transposed or base.shape[0] != len(gates) * H \
                    or not base.is_contiguous():
                return None
            cols = base.shape[1] if transposed else 1
            shape, stride = ((cols, H), (1, cols)) if transposed else ((H,), (1,))
            block = cols * H  # entries of one gate's rows
            for k, v in enumerate(views):
                if (v._base is not base or v.shape != shape or v.stride() != stride
                        or v.storage_offset() != base.storage_offset() + k * block):
                    return None
            found.append(base)
    return found


def make_nn_module(cfg: ModelConfig, dtype=None, device=None) -> nn.Module:
    """An ``nn.RNN`` (tanh) / ``nn.LSTM`` / ``nn.GRU`` of the config's shape (random weights)."""
    if cfg.cell == "gru" and cfg.gru_form != "torch":
        raise ConfigError(
            "only the torch-form GRU maps onto torch.nn.GRU: the d2l form applies the reset "
            "gate before the matmul, (R * H) @ W_hh, which torch.nn.GRU cannot express"
        )
    kwargs = dict(num_layers=cfg.num_layers, bias=True, batch_first=False,
                  dropout=float(cfg.dropout) if cfg.num_layers > 1 else 0.0,
                  bidirectional=cfg.bidirectional, dtype=dtype, device=device)
    if cfg.cell in ("rnn", "irnn"):
        kwargs["nonlinearity"] = "tanh" if cfg.cell == "rnn" else "relu"  # the IRNN is nn.RNN(relu)
    return getattr(nn, TORCH_MODULE[cfg.cell])(layer_input_size(cfg, 0), cfg.num_hiddens, **kwargs)


# ---------------------------------------------------------------------------------------
# NumPy params <-> modules and state dicts


def _numpy_params(params: dict) -> dict:
    return {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
            for k, v in params.items()}


def to_state_dict(cfg: "ModelConfig | str", params: dict, dtype=None, device=None,
                  prefix: str = "rnn.", linear_prefix: str = "linear.") -> dict:
    """d2l ``RNNModel`` state dict (``rnn.weight_ih_l0`` ... ``linear.bias``) as tensors."""
    params = _numpy_params(params)
    cfg = validate_params(cfg, params)
    sd = to_torch_nn(cfg, params, prefix=prefix, linear_prefix=linear_prefix)
    return {k: torch.tensor(v, dtype=dtype, device=device) for k, v in sd.items()}


def from_state_dict(cfg: ModelConfig, state_dict: dict, prefix: str = "rnn.",
                    linear_prefix: str = "linear.") -> dict:
    """Inverse of :func:`to_state_dict` (b_ih + b_hh fold into one bias); NumPy params.

    A missing or misshaped entry raises ParamError naming its key.
    """
    return from_torch_nn(cfg, state_dict, prefix=prefix, linear_prefix=linear_prefix)


def to_nn_module(cfg: "ModelConfig | str", params: dict, dtype=None, device=None):
    """``(rnn_module, linear_module)``: a real ``torch.nn`` recurrent layer and
    ``nn.Linear`` holding exactly ``params`` (dtype defaults to the params' dtype).

    ``linear(rnn(one_hot(X.T), state)[0])`` then computes rnnlab's logits: d2l's
    ``RNNModel`` with these two modules is the same model.
    """
    params = _numpy_params(params)
    cfg = validate_params(cfg, params)
    if dtype is None:
        dtype = resolve_dtype(params["b_q"].dtype)
    sd = to_state_dict(cfg, params, dtype=dtype, device=device)
    rnn_module = make_nn_module(cfg, dtype=dtype, device=device)
    linear = nn.Linear(cfg.num_hiddens * cfg.num_directions, cfg.vocab_size,
                       dtype=dtype, device=device)
    rnn_module.load_state_dict({k[len("rnn."):]: v for k, v in sd.items() if k.startswith("rnn.")})
    linear.load_state_dict({k[len("linear."):]: v for k, v in sd.items()
                            if k.startswith("linear.")})
    return rnn_module, linear


def _check_module(cfg: ModelConfig, rnn_module: nn.Module, linear_module: nn.Module) -> None:
    """Refuse a module that computes something else than ``cfg`` (relu, projections...)."""
    expected = getattr(nn, TORCH_MODULE[cfg.cell])
    if type(rnn_module) is not expected:
        raise ConfigError(f"a {cfg.cell} model maps onto torch.nn.{expected.__name__}, "
                          f"got {type(rnn_module).__name__}")
    if cfg.cell == "rnn" and rnn_module.nonlinearity != "tanh":
        raise ConfigError(f"rnnlab's rnn cell is tanh; the nn.RNN has nonlinearity="
                          f"{rnn_module.nonlinearity!r}")
    if cfg.cell == "irnn" and rnn_module.nonlinearity != "relu":
        raise ConfigError(f"rnnlab's irnn cell is ReLU; the nn.RNN has nonlinearity="
                          f"{rnn_module.nonlinearity!r}")
    if getattr(rnn_module, "proj_size", 0):
        raise ConfigError(f"nn.LSTM with proj_size={rnn_module.proj_size} has no rnnlab form")
    if not rnn_module.bias:
        raise ConfigError("the torch.nn module has bias=False; rnnlab's cells have biases")
    got = (rnn_module.input_size, rnn_module.hidden_size, rnn_module.num_layers,
           bool(rnn_module.bidirectional))
    want = (layer_input_size(cfg, 0), cfg.num_hiddens, cfg.num_layers, cfg.bidirectional)
    if got != want:
        raise ConfigError(f"torch.nn module has (input_size, hidden_size, num_layers, "
                          f"bidirectional) = {got}, the config asks for {want}")
    if not isinstance(linear_module, nn.Linear) or linear_module.bias is None:
        raise ConfigError("the output layer must be an nn.Linear with a bias")


def from_nn_module(cfg: "ModelConfig | str", rnn_module: nn.Module,
                   linear_module: nn.Module) -> dict:
    """rnnlab params (NumPy, the modules' dtype) from a ``torch.nn`` layer + ``nn.Linear``.

    ``cfg`` may be a cell name: sizes are then read off the modules.
    """
    if not isinstance(cfg, ModelConfig):
        cfg = ModelConfig(cfg, rnn_module.input_size, rnn_module.hidden_size,
                          num_layers=rnn_module.num_layers,
                          bidirectional=bool(rnn_module.bidirectional),
                          gru_form="torch" if cfg == "gru" else "d2l")
    _check_module(cfg, rnn_module, linear_module)
    sd = {f"rnn.{k}": v for k, v in rnn_module.state_dict().items()}
    sd.update({f"linear.{k}": v for k, v in linear_module.state_dict().items()})
    return from_state_dict(cfg, sd)


# ---------------------------------------------------------------------------------------
# d2l's parameter list and its RNNModelScratch


def to_d2l_params(cfg: "ModelConfig | str", params: dict, device=None) -> list:
    """d2l's ``get_params`` / ``get_lstm_params`` list: fresh leaves, ``requires_grad``.

    lstm: ``[W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c, W_hq, b_q]``.
    """
    cfg = as_model_config(cfg, params)
    out = []
    for arr in to_d2l_list(cfg, _numpy_params(params)):
        out.append(torch.tensor(arr, device=device).requires_grad_(True))
    return out


def from_d2l_params(cfg: ModelConfig, tensors: list) -> dict:
    """Inverse of :func:`to_d2l_params`: NumPy params, count and shapes checked."""
    return from_d2l_list(cfg, list(tensors))


def d2l_rnn(inputs, state, params):
    """d2l 8.5's ``rnn``, verbatim."""
    W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        H = torch.tanh(torch.mm(X, W_xh) + torch.mm(H, W_hh) + b_h)
        Y = torch.mm(H, W_hq) + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), (H,)


def d2l_lstm(inputs, state, params):
    """d2l 9.2's ``lstm``, verbatim."""
    [W_xi, W_hi, b_i, W_xf, W_hf, b_f, W_xo, W_ho, b_o, W_xc, W_hc, b_c,
     W_hq, b_q] = params
    (H, C) = state
    outputs = []
    for X in inputs:
        I = torch.sigmoid((X @ W_xi) + (H @ W_hi) + b_i)  # noqa: E741
        F = torch.sigmoid((X @ W_xf) + (H @ W_hf) + b_f)
        O = torch.sigmoid((X @ W_xo) + (H @ W_ho) + b_o)  # noqa: E741
        C_tilda = torch.tanh((X @ W_xc) + (H @ W_hc) + b_c)
        C = F * C + I * C_tilda
        H = O * torch.tanh(C)
        Y = (H @ W_hq) + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), (H, C)


def d2l_gru(inputs, state, params):
    """d2l 9.1's ``gru`` (the d2l form: the reset gate before the matmul), verbatim."""
    W_xz, W_hz, b_z, W_xr, W_hr, b_r, W_xh, W_hh, b_h, W_hq, b_q = params
    H, = state
    outputs = []
    for X in inputs:
        Z = torch.sigmoid((X @ W_xz) + (H @ W_hz) + b_z)
        R = torch.sigmoid((X @ W_xr) + (H @ W_hr) + b_r)
        H_tilda = torch.tanh((X @ W_xh) + ((R * H) @ W_hh) + b_h)
        H = Z * H + (1 - Z) * H_tilda
        Y = H @ W_hq + b_q
        outputs.append(Y)
    return torch.cat(outputs, dim=0), (H,)


D2L_FORWARD = {"rnn": d2l_rnn, "lstm": d2l_lstm, "gru": d2l_gru}


class D2LScratch:
    """d2l's ``RNNModelScratch``: ``model(X, state) -> (Y (T*B, V), state)``.

    As in d2l, ``X`` (B, T) ids become ``F.one_hot(X.T, V)`` (T, B, V) and the cell's
    forward runs gate by gate. The one-hot inputs take the params' dtype (d2l hard-codes
    float32) so the model also runs in float64.
    """

    def __init__(self, cfg: ModelConfig, params: list, forward_fn):
        self.vocab_size, self.num_hiddens = cfg.vocab_size, cfg.num_hiddens
        self.num_states = cfg.num_states
        self.params = params
        self.forward_fn = forward_fn

    def __call__(self, X, state):
        X = F.one_hot(X.T.long(), self.vocab_size).type(self.params[0].dtype)
        return self.forward_fn(X, state, self.params)

    def begin_state(self, batch_size, device=None):
        p = self.params[0]
        return tuple(torch.zeros((batch_size, self.num_hiddens), dtype=p.dtype,
                                 device=device or p.device) for _ in range(self.num_states))


def d2l_rnn_scratch(cfg: "ModelConfig | str", params: dict, device=None) -> D2LScratch:
    """d2l's ``RNNModelScratch`` holding ``params`` (as :func:`to_d2l_params` leaves).

    One layer, one direction, as in d2l; the GRU in d2l's form.
    """
    cfg = as_model_config(cfg, params)
    if cfg.num_layers != 1 or cfg.bidirectional:
        raise ConfigError("d2l's RNNModelScratch has one layer and one direction")
    if cfg.cell not in D2L_FORWARD or cfg.input_size is not None:
        raise ConfigError(f"d2l's RNNModelScratch reads token ids into an rnn, lstm or gru; "
                          f"this model is a {cfg.cell}"
                          + (" reading real inputs" if cfg.input_size is not None else ""))
    if cfg.cell == "gru" and cfg.gru_form != "d2l":
        raise ConfigError("d2l's scratch GRU is the d2l form (gru_form='d2l')")
    return D2LScratch(cfg, to_d2l_params(cfg, params, device=device), D2L_FORWARD[cfg.cell])


__all__ = ["nn_weights", "make_nn_module", "to_state_dict", "from_state_dict", "to_nn_module",
           "from_nn_module", "to_d2l_params", "from_d2l_params", "d2l_rnn_scratch",
           "D2LScratch", "d2l_rnn", "d2l_lstm", "d2l_gru"]
