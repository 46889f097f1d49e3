"""The parameter contract: names, shapes, initialisation, fusing, and weight mappings.

Parameters are a ``dict[str, np.ndarray]`` with d2l's names and its row-vector
convention (``X @ W``). Shapes, with V the vocabulary and H the hidden width:

=====  ===================================================================  ==========
cell   names of layer 0 (forward direction)                                 gate order
=====  ===================================================================  ==========
rnn    ``W_xh (V,H) W_hh (H,H) b_h (H)``                                    h
lstm   ``W_xi W_hi b_i``, ``W_xf W_hf b_f``, ``W_xo W_ho b_o``,             i f o c
       ``W_xc W_hc b_c``
gru    ``W_xz W_hz b_z``, ``W_xr W_hr b_r``, ``W_xh W_hh b_h``              z r h
       (+ ``b_hn (H)`` in the torch form)
irnn   ``W_xh (V,H) W_hh (H,H) b_h (H)``, the rnn's names (ReLU, W_hh = I)   h
all    ``W_hq (H*D, V) b_q (V)``: the output layer, D = 2 if bidirectional
=====  ===================================================================  ==========

A model with ``input_size`` In reads real inputs: its layer-0 ``W_x*`` are (In, H).
Layer k > 0 appends ``_l{k}`` and reads the (B, H*D) outputs of layer k-1, so its
``W_x*`` are (H*D, H). The reverse direction of a bidirectional layer appends ``_rev``
after that: ``W_xh_l1_rev``. A one-layer, one-direction model has exactly d2l's names.

Fused layout: per layer and direction, ``W_x = [W_x<g1> | W_x<g2> | ...]`` (In, G*H),
``W_h`` (H, G*H) and ``b`` (G*H,) in the gate order above, so one matmul makes every gate
(``[X, H] @ [W_x; W_h] == X @ W_x + H @ W_h``, the identity d2l's RNN chapter,
8.4, shows with ``torch.cat``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterator

import numpy as np

from .checks import (
    check_choice,
    check_dict,
    check_fits,
    check_instance,
    check_seed,
    check_sequence,
    host_array,
)
from .config import CELLS, ModelConfig, replace_checked
from .errors import ConfigError, ParamError

GATES = {"rnn": ("h",), "lstm": ("i", "f", "o", "c"), "gru": ("z", "r", "h"), "irnn": ("h",)}
TORCH_GATES = {"rnn": ("h",), "lstm": ("i", "f", "c", "o"), "gru": ("r", "z", "h"),
               "irnn": ("h",)}
TORCH_MODULE = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU", "irnn": "RNN"}  # irnn: relu
DTYPES = (np.float32, np.float64)
INITS = ("d2l", "torch")  # N(0, 0.01²) and zero biases | U(±1/√H) as torch.nn


def suffix(layer: int, direction: int = 0) -> str:
    """Name suffix of a layer and direction: '' for layer 0 forward, '_l2_rev' ..."""
    return (f"_l{layer}" if layer > 0 else "") + ("_rev" if direction == 1 else "")


def layer_input_size(cfg: ModelConfig, layer: int) -> int:
    """Rows of a layer's ``W_x*``: V one-hot columns (or ``input_size`` reals) for layer 0,
    the H*D outputs of the layer below for the others."""
    if layer > 0:
        return cfg.num_hiddens * cfg.num_directions
    return cfg.vocab_size if cfg.input_size is None else cfg.input_size


def units(cfg: ModelConfig) -> Iterator[tuple[int, int]]:
    """(layer, direction) pairs in parameter and state order."""
    for layer in range(cfg.num_layers):
        for direction in range(cfg.num_directions):
            yield layer, direction


def has_hidden_bias(cfg: ModelConfig) -> bool:
    """The torch-form GRU keeps the candidate's recurrent bias b_hn inside R * (...)."""
    return cfg.cell == "gru" and cfg.gru_form == "torch"


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter name and shape, in d2l's ``get_params`` order."""
    H, V = cfg.num_hiddens, cfg.vocab_size
    shapes: dict[str, tuple[int, ...]] = {}
    for layer, direction in units(cfg):
        s, In = suffix(layer, direction), layer_input_size(cfg, layer)
        for g in GATES[cfg.cell]:
            shapes[f"W_x{g}{s}"] = (In, H)
            shapes[f"W_h{g}{s}"] = (H, H)
            shapes[f"b_{g}{s}"] = (H,)
        if has_hidden_bias(cfg):
            shapes[f"b_hn{s}"] = (H,)
    shapes["W_hq"] = (H * cfg.num_directions, V)
    shapes["b_q"] = (V,)
    return shapes


def param_count(cfg: ModelConfig) -> int:
    """Numbers in the parameters of ``cfg``, in O(1) whatever num_layers is."""
    def count(layers: int) -> int:
        return sum(math.prod(s) for s in param_shapes(
            dataclasses.replace(cfg, num_layers=layers, dropout=0.0)).values())
    one = count(1)
    return one + (cfg.num_layers - 1) * (count(2) - one) if cfg.num_layers > 1 else one


def init_params(
    cell: "str | ModelConfig",
    vocab_size: int | None = None,
    num_hiddens: int | None = None,
    seed: int = 0,
    dtype=np.float32,
    init: str = "d2l",
    **model_options,
) -> dict[str, np.ndarray]:
    """Seeded initial parameters.

    ``init="d2l"`` (the default): d2l's scratch chapters, weights ``N(0, 1) * 0.01``,
    biases zero. ``init="torch"``: what ``torch.nn.RNN/LSTM/GRU`` + ``nn.Linear`` do,
    every recurrent weight and bias ``U(-1/√H, 1/√H)``, the output layer
    ``U(-1/√(H·D), 1/√(H·D))``; d2l's deep-RNN chapter trains its stacked LSTM from this.
    The IRNN (``cell="irnn"``, Le, Jaitly & Hinton 2015) starts with every ``W_hh`` the
    identity under both; with ``init="d2l"`` its other weights are the paper's
    ``N(0, 0.001²)`` instead of 0.01, biases zero.
    (With d2l's 0.01, a stacked model's layers pass each other signals of ~1e-4 and SGD
    sits for hundreds of epochs at the unigram perplexity; see docs/recurrent_family.md.)

    Numbers are drawn in float64 from ``np.random.default_rng(seed)`` in
    ``param_shapes`` order and then cast, so float32 and float64 models start from the
    same values and both backends start from the same numbers.
    """
    if isinstance(cell, ModelConfig):
        cfg = cell
        if vocab_size is not None or num_hiddens is not None or model_options:
            raise ConfigError("init_params(ModelConfig, ...): the sizes and options are the "
                              "config's; pass vocab_size, num_hiddens and the rest only with a "
                              "cell name")
    else:
        if vocab_size is None or num_hiddens is None:
            raise ConfigError("init_params(cell_name, ...) needs vocab_size and num_hiddens")
        cfg = replace_checked(ModelConfig(cell, vocab_size, num_hiddens), **model_options)
    dtype = check_dtype(dtype)
    check_choice("init", init, INITS)
    seed = check_seed("seed", seed)
    # refused with the number before anything is allocated (num_layers=10**9 would
    # otherwise allocate layer after layer for a minute before running out)
    check_fits(param_count(cfg) * dtype.itemsize,
               f"the parameters of a {cfg.cell} with H={cfg.num_hiddens:,}, "
               f"{cfg.num_layers:,} layer(s) and V={cfg.vocab_size:,}",
               "use a smaller hidden size (--hidden) or fewer layers (--num-layers)")
    rng = np.random.default_rng(seed)
    scale = 0.001 if cfg.cell == "irnn" else 0.01  # Le et al.'s N(0, 0.001²); d2l's 0.01
    params = {}
    for name, shape in param_shapes(cfg).items():
        if init == "torch":
            fan_in = cfg.num_hiddens * (cfg.num_directions if name in ("W_hq", "b_q") else 1)
            bound = 1.0 / np.sqrt(fan_in)
            params[name] = rng.uniform(-bound, bound, shape).astype(dtype)  # shape
        elif name.startswith("W_"):
            params[name] = (rng.standard_normal(shape) * scale).astype(dtype)  # shape
        else:
            params[name] = np.zeros(shape, dtype=dtype)  # biases start at zero
        if cfg.cell == "irnn" and name.startswith("W_hh"):  # drawn above all the same, so
            params[name] = np.eye(shape[0], dtype=dtype)  # (H, H): every rng draw stays put
    return params


def check_dtype(dtype) -> np.dtype:
    """float32 or float64, named any way NumPy names them ("float32", np.float32, a
    dtype); None (NumPy's float64 by default) and anything else are refused."""
    try:
        dt = None if dtype is None or isinstance(dtype, bool) else np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt not in [np.dtype(d) for d in DTYPES]:  # np.dtype(...) == None holds
        raise ConfigError(f"dtype must be float32 or float64, got {dt if dt is not None else repr(dtype)}")
    return dt


def infer_config(cell: str, params: dict) -> ModelConfig:
    """Read V, H, layers, directions and GRU form off a parameter dict's names and shapes."""
    if cell not in CELLS:
        raise ConfigError(f"unknown cell {cell!r}; expected one of {', '.join(CELLS)}")
    if not isinstance(params, dict):
        raise ParamError(f"params must be a dict of arrays, got {type(params).__name__}")
    for key, ndim in (("b_q", 1), (f"W_h{GATES[cell][0]}", 2)):
        if key not in params:
            raise ParamError(f"parameter {key!r} is missing for cell {cell!r}")
        if len(np.shape(params[key])) != ndim or 0 in np.shape(params[key]):
            raise ParamError(f"parameter {key!r} has shape {tuple(np.shape(params[key]))}, "
                             f"expected a non-empty {ndim}-D array")
    V = int(np.shape(params["b_q"])[0])
    H = int(np.shape(params[f"W_h{GATES[cell][0]}"])[0])
    layers = 1
    while f"W_h{GATES[cell][0]}_l{layers}" in params:
        layers += 1
    bidirectional = f"W_h{GATES[cell][0]}_rev" in params
    gru_form = "torch" if "b_hn" in params else "d2l"
    # a layer-0 W_x of In != V rows reads real inputs; In == V reads as token ids (pass a
    # ModelConfig to say otherwise, and to say head="mse", which no name or shape tells)
    W_x = params.get(f"W_x{GATES[cell][0]}")
    rows = int(np.shape(W_x)[0]) if W_x is not None and len(np.shape(W_x)) == 2 else V
    return ModelConfig(cell, V, H, num_layers=layers, bidirectional=bidirectional,
                       gru_form=gru_form, input_size=None if rows in (0, V) else rows)


def as_model_config(cell: "str | ModelConfig", params: dict | None = None) -> ModelConfig:
    """Accept a cell name (sizes read off ``params``) or a full ModelConfig."""
    if isinstance(cell, ModelConfig):
        return cell
    if not isinstance(cell, str):
        raise ConfigError(f"cell must be a name or a ModelConfig, got {type(cell).__name__}")
    if cell not in CELLS:
        raise ConfigError(f"unknown cell {cell!r}; expected one of {', '.join(CELLS)}")
    if params is None:
        raise ConfigError(f"cell {cell!r} given by name: params are needed to read the sizes")
    return infer_config(cell, params)


def infer_cell(params: dict) -> str | None:
    """The cell a parameter dict's names belong to, or None if they name none.

    LSTM gates (i f o c) and GRU gates (z r) have names no other cell uses; an rnn has
    only ``W_xh W_hh b_h`` and the shared output layer ``W_hq b_q``.
    """
    names = {k.split("_l")[0].removesuffix("_rev") for k in params if isinstance(k, str)}
    for cell in ("lstm", "gru"):
        if any(f"{kind}{g}" in names for g in GATES[cell] if g != "h"
               for kind in ("W_x", "W_h", "b_")):
            return cell
    if names & {"W_xh", "W_hh", "b_h", "W_hq", "b_q"}:
        return "rnn"
    return None


def validate_params(cfg: "ModelConfig | str", params: dict, finite: bool = True) -> ModelConfig:
    """Refuse a dict with a missing, extra, misshaped, non-float or non-finite array."""
    if not isinstance(params, dict):
        raise ParamError(f"params must be a dict of arrays, got {type(params).__name__}")
    cfg = as_model_config(cfg, params)
    shapes = param_shapes(cfg)
    missing = [k for k in shapes if k not in params]
    extra = [k for k in params if k not in shapes]
    if missing:
        raise ParamError(f"{cfg.cell} parameters: missing {', '.join(missing)}")
    if extra:
        raise ParamError(f"{cfg.cell} parameters: unexpected {', '.join(map(str, extra))}")
    dtypes = set()
    for name, shape in shapes.items():
        got = tuple(np.shape(params[name]))
        if got != shape:
            raise ParamError(f"parameter {name!r} has shape {got}, expected {shape}")
        dtype = getattr(params[name], "dtype", None)
        dtypes.add(str(dtype))
        if finite:
            arr = np.asarray(params[name]) if not hasattr(params[name], "detach") else None
            if arr is not None and not np.isfinite(arr).all():
                raise ParamError(f"parameter {name!r} holds NaN or infinite values")
    if len(dtypes) > 1:
        raise ParamError(f"parameters mix dtypes {sorted(dtypes)}; use one of float32/float64")
    return cfg


# ----------------------------------------------------------------------------------------
# Fusing: per-gate arrays <-> one (In, G*H) / (H, G*H) / (G*H,) triple per layer+direction


def fuse(cfg: ModelConfig, params: dict, layer: int = 0, direction: int = 0, cat=np.concatenate):
    """``W_x = [W_x<g>...]`` (In, G*H), ``W_h`` (H, G*H), ``b`` (G*H,) in GATES order."""
    s, gates = suffix(layer, direction), GATES[cfg.cell]
    W_x = cat([params[f"W_x{g}{s}"] for g in gates], 1)  # (In, G*H)
    W_h = cat([params[f"W_h{g}{s}"] for g in gates], 1)  # (H, G*H)
    b = cat([params[f"b_{g}{s}"] for g in gates], 0)  # (G*H,)
    return W_x, W_h, b


def unfuse(cfg: ModelConfig, layer: int, direction: int, dW_x, dW_h, db) -> dict:
    """Inverse of :func:`fuse`: slice fused arrays back into named per-gate arrays."""
    s, H = suffix(layer, direction), cfg.num_hiddens
    out = {}
    for k, g in enumerate(GATES[cfg.cell]):
        cols = slice(k * H, (k + 1) * H)
        out[f"W_x{g}{s}"] = dW_x[:, cols]  # (In, H)
        out[f"W_h{g}{s}"] = dW_h[:, cols]  # (H, H)
        out[f"b_{g}{s}"] = db[cols]  # (H,)
    return out


# ----------------------------------------------------------------------------------------
# d2l's flat parameter list (get_params / get_lstm_params order) and torch.nn state dicts


def to_d2l_list(cfg: "ModelConfig | str", params: dict) -> list:
    """Parameters in the order of d2l's ``get_params`` / ``get_lstm_params``."""
    cfg = validate_params(cfg, params, finite=False)  # a missing or misshaped one is named
    return [params[name] for name in param_shapes(cfg)]


def from_d2l_list(cfg: ModelConfig, arrays: list) -> dict:
    """Inverse of :func:`to_d2l_list`, checking the count and every shape."""
    check_instance("cfg", cfg, ModelConfig)
    arrays = check_sequence("arrays", arrays, "arrays in d2l's get_params order", ParamError)
    shapes = param_shapes(cfg)
    if len(arrays) != len(shapes):
        raise ParamError(
            f"d2l {cfg.cell} parameter list has {len(arrays)} arrays, expected {len(shapes)} "
            f"({', '.join(shapes)})"
        )
    params = {}
    for (name, shape), arr in zip(shapes.items(), arrays):
        arr = host_array(arr, f"d2l list entry {name!r}")
        if arr.shape != shape:
            raise ParamError(f"d2l list entry {name!r} has shape {arr.shape}, expected {shape}")
        if arr.dtype.kind not in "fiu":
            raise ParamError(f"d2l list entry {name!r} must hold real numbers, got dtype {arr.dtype}")
        params[name] = arr.copy()
    return params


def _torch_suffix(layer: int, direction: int) -> str:
    return f"_l{layer}" + ("_reverse" if direction == 1 else "")


def to_torch_nn(cfg: "ModelConfig | str", params: dict, prefix: str = "rnn.",
                linear_prefix: str = "linear.") -> dict[str, np.ndarray]:
    """rnnlab parameters -> a ``torch.nn.RNN/LSTM/GRU`` + ``nn.Linear`` state dict (NumPy).

    torch.nn computes ``x @ W_ih.T + b_ih + h @ W_hh.T + b_hh`` with gates stacked in
    its own order (LSTM i, f, g, o; GRU r, z, n). rnnlab has one bias per gate, so it
    goes into ``b_ih`` and ``b_hh`` is zero, except the torch-form GRU's candidate, whose
    recurrent bias ``b_hn`` sits inside ``r * (h @ W_hn + b_hn)``. The keys follow d2l's
    ``RNNModel`` (``rnn.*`` and ``linear.*``).
    """
    cfg = validate_params(cfg, params, finite=False)  # a missing or misshaped one is named
    if cfg.cell == "gru" and cfg.gru_form != "torch":
        raise ConfigError(
            "only the torch-form GRU maps onto torch.nn.GRU: the d2l form applies the reset "
            "gate before the matmul, (R * H) @ W_hh, which torch.nn.GRU cannot express"
        )
    H, out = cfg.num_hiddens, {}
    for layer, direction in units(cfg):
        s, t = suffix(layer, direction), _torch_suffix(layer, direction)
        gates = TORCH_GATES[cfg.cell]
        out[f"{prefix}weight_ih{t}"] = np.concatenate([params[f"W_x{g}{s}"].T for g in gates])
        out[f"{prefix}weight_hh{t}"] = np.concatenate([params[f"W_h{g}{s}"].T for g in gates])
        out[f"{prefix}bias_ih{t}"] = np.concatenate([params[f"b_{g}{s}"] for g in gates])
        bias_hh = np.zeros(len(gates) * H, dtype=params["b_q"].dtype)  # (G*H,)
        if has_hidden_bias(cfg):
            bias_hh[2 * H:] = params[f"b_hn{s}"]  # the n (candidate) slot
        out[f"{prefix}bias_hh{t}"] = bias_hh
    out[f"{linear_prefix}weight"] = np.ascontiguousarray(params["W_hq"].T)  # (V, H*D)
    out[f"{linear_prefix}bias"] = params["b_q"].copy()  # (V,)
    return out


def from_torch_nn(cfg: ModelConfig, state_dict: dict, prefix: str = "rnn.",
                  linear_prefix: str = "linear.") -> dict[str, np.ndarray]:
    """A ``torch.nn`` state dict (tensors or arrays) -> rnnlab parameters, exactly.

    ``b_ih + b_hh`` fold into rnnlab's one bias per gate (the torch-form GRU's candidate
    keeps ``b_hn`` apart). A missing or misshaped entry is named in the error.
    """
    def get(key, shape):
        if key not in state_dict:
            raise ParamError(f"torch.nn state dict has no {key!r}")
        v = host_array(state_dict[key], f"torch.nn entry {key!r}")
        if v.shape != shape:
            raise ParamError(f"torch.nn entry {key!r} has shape {v.shape}, expected {shape}")
        if v.dtype.kind not in "fiu":
            raise ParamError(f"torch.nn entry {key!r} must hold real numbers, got dtype {v.dtype}")
        return v

    check_instance("cfg", cfg, ModelConfig)
    check_dict("state_dict", state_dict, "arrays or tensors (module.state_dict())")

    if cfg.cell == "gru" and cfg.gru_form != "torch":
        raise ConfigError("torch.nn.GRU weights map only onto gru_form='torch'")
    H, V, params = cfg.num_hiddens, cfg.vocab_size, {}
    gates = TORCH_GATES[cfg.cell]
    G = len(gates)
    for layer, direction in units(cfg):
        s, t, In = suffix(layer, direction), _torch_suffix(layer, direction), layer_input_size(cfg, layer)
        w_ih = get(f"{prefix}weight_ih{t}", (G * H, In))
        w_hh = get(f"{prefix}weight_hh{t}", (G * H, H))
        b_ih = get(f"{prefix}bias_ih{t}", (G * H,))
        b_hh = get(f"{prefix}bias_hh{t}", (G * H,))
        for k, g in enumerate(gates):
            rows = slice(k * H, (k + 1) * H)
            params[f"W_x{g}{s}"] = np.ascontiguousarray(w_ih[rows].T)  # (In, H)
            params[f"W_h{g}{s}"] = np.ascontiguousarray(w_hh[rows].T)  # (H, H)
            if has_hidden_bias(cfg) and g == "h":
                params[f"b_{g}{s}"] = b_ih[rows].copy()  # b_in
                params[f"b_hn{s}"] = b_hh[rows].copy()  # stays inside r * (...)
            else:
                params[f"b_{g}{s}"] = b_ih[rows] + b_hh[rows]  # one bias per gate
    params["W_hq"] = np.ascontiguousarray(get(f"{linear_prefix}weight", (V, H * cfg.num_directions)).T)
    params["b_q"] = get(f"{linear_prefix}bias", (V,)).copy()
    # keep param_shapes order so to_d2l_list and checkpoints are stable
    return {name: params[name] for name in param_shapes(cfg)}
