"""Checks of the arrays every backend call takes: token ids, per-token weights, states,
parameter values, gradients and the clipping threshold.

A ShapeError or ParamError names the argument, the shape or value found and what was
expected, instead of a traceback from deep inside NumPy. Every check is O(1) or one pass
over an input the caller handed in; the backends' hot path checks names, shapes and
dtypes only (see ``check_numpy_params``).
"""

from __future__ import annotations

import functools
from typing import Annotated

import numpy as np

from .arguments import Number
from .checks import (
    check_dict,
    check_fits,
    check_int,
    check_number,
    check_same_keys,
    check_sequence,
    host_array,
    is_number,
    refuse,
    shown,
)
from .config import ModelConfig
from .errors import ConfigError, NonFiniteParamError, ParamError, ShapeError
from .params import infer_cell, param_shapes, validate_params


def check_optimizer_args(name, params, lr, choices, array_type, hint: str) -> float:
    """``make_optimizer(name, params, lr)``: a known name, a non-empty dict of the backend's
    arrays (``hint`` says how to get them), a positive finite learning rate."""
    if not isinstance(name, str):
        raise refuse("name", name, "an optimizer name, one of " + ", ".join(choices))
    if name not in choices:
        raise ConfigError(f"unknown optimizer {name!r}; expected one of {', '.join(choices)}")
    check_arrays_of("params", params, array_type, hint)
    if not params:
        raise ParamError("params is an empty dict: there is nothing to optimise")
    return check_number("lr", lr, 0, lo_open=True)


def check_arrays_of(name: str, values, array_type: type, hint: str) -> dict:
    """A dict whose every value is a ``array_type`` (np.ndarray, torch.Tensor): a NumPy
    array handed to the torch backend, or a tensor to the numpy one, is named."""
    check_dict(name, values)
    for key, v in values.items():
        if not isinstance(v, array_type):
            raise ParamError(f"{name}[{key!r}] must be a {array_type.__module__.split('.')[0]}."
                             f"{array_type.__name__}, got {type(v).__name__}{hint}")
    return values


def check_states_of(name: str, state, array_type: type | None, hint: str = "") -> tuple:
    """A tuple or list of state arrays; each a ``array_type`` when one is given, else any
    rectangular real array."""
    state = check_sequence(name, state, "(B, H) arrays")
    for i, s in enumerate(state):
        if array_type is not None and not isinstance(s, array_type):
            raise ShapeError(f"{name}[{i}] must be a {array_type.__module__.split('.')[0]}."
                             f"{array_type.__name__}, got {type(s).__name__}{hint}")
        if array_type is None:
            arr = host_array(s, f"{name}[{i}]")
            if arr.dtype.kind not in "fiu":  # the shape is checked where the model is known
                raise ShapeError(f"{name}[{i}] must be an array of real numbers, got dtype "
                                 f"{arr.dtype}")
    return state



_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))



def check_tokens(X, vocab_size: int | None, name: str = "X") -> np.ndarray:
    """(B, T) integer ids in [0, V). Returns them as an int64 NumPy array.

    ``vocab_size=None`` checks only what needs no vocabulary (2-D, non-empty, integer,
    non-negative): what ``backend.tokens`` can check.
    """
    arr = host_array(X, name)
    if arr.ndim != 2:
        raise ShapeError(f"{name} must be a (batch, steps) array of token ids, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ShapeError(f"{name} has an empty dimension: shape {arr.shape}")
    if arr.dtype.kind not in "iu":  # signed or unsigned integers; not bool ("b")
        raise ShapeError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or (vocab_size is not None and hi >= vocab_size):
        bad = lo if lo < 0 else hi
        where = f"[0, {vocab_size})" if vocab_size is not None else "[0, vocab_size)"
        raise ShapeError(f"{name} holds token id {bad}, outside the vocabulary {where}")
    if hi > np.iinfo(np.int64).max:  # uint64 ids that int64 cannot hold
        raise ShapeError(f"{name} holds token id {hi}, too large for int64")
    return arr.astype(np.int64, copy=False)


def _real_array(value, name: str, what: str) -> np.ndarray:
    arr = host_array(value, name)
    if arr.dtype == bool or arr.dtype.kind not in "fiu":
        raise ShapeError(f"{name} must hold real numbers ({what}), got dtype {arr.dtype}")
    return arr


def check_inputs(X, input_size: int, name: str = "X") -> np.ndarray:
    """Real inputs (B, T, In) of a model with ``input_size`` In, every entry finite.

    Token ids (B, T) are what a model without ``input_size`` reads; a model with one reads
    a vector of In reals per step (the adding problem's number and marker).
    """
    arr = _real_array(X, name, f"a (batch, steps, {input_size}) array of inputs")
    if arr.ndim != 3 or arr.shape[2] != input_size:
        raise ShapeError(f"{name} must be a (batch, steps, {input_size}) array of real inputs "
                         f"(the model's input_size is {input_size}), got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ShapeError(f"{name} has an empty dimension: shape {arr.shape}")
    bad = arr.size - int(np.isfinite(arr).sum()) if arr.dtype.kind == "f" else 0
    if bad:
        raise ShapeError(f"{name} holds {bad} NaN or infinite value(s); inputs must be finite")
    return arr


def check_real_targets(Y, shape: tuple, name: str = "Y") -> np.ndarray:
    """Real targets (B, T) of the squared-error head, one per step, every entry finite."""
    arr = _real_array(Y, name, "one real target per step")
    if arr.shape != tuple(shape):
        raise ShapeError(f"{name} must be a (batch, steps) array of real targets, shape "
                         f"{tuple(shape)} to match X, got shape {arr.shape}")
    bad = arr.size - int(np.isfinite(arr).sum()) if arr.dtype.kind == "f" else 0
    if bad:
        raise ShapeError(f"{name} holds {bad} NaN or infinite value(s); targets must be finite")
    return arr


def check_weights(weights, n: int):
    if weights is None:
        return None
    w = host_array(weights, "weights")
    if w.shape != (n,):
        raise ShapeError(f"weights must have shape ({n},) (one per token, time-major), got {w.shape}")
    if not (np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)) \
            or w.dtype == bool:
        raise ShapeError(f"weights must be real numbers, got dtype {w.dtype}")
    # one pass over T*B numbers, far below the forward's cost: a NaN weight would make the
    # loss NaN, a negative one a negative "loss" that training would drive down without end
    bad = w.size - int(np.isfinite(w).sum())
    if bad:
        raise ShapeError(f"weights hold {bad} NaN or infinite value(s); a per-token weight is "
                         "a finite number >= 0 (0 leaves the token out)")
    if w.size and w.min() < 0:
        i = int(np.argmin(w))
        raise ShapeError(f"weights[{i}] is {w[i]:g}; a per-token weight is a finite number "
                         ">= 0 (0 leaves the token out)")
    return w


def zero_state_shape(cell, batch_size, num_hiddens=None) -> tuple[int, int, int]:
    """``(count, B, H)`` of a zero state (d2l's ``init_state``): one (B, H) array per layer,
    direction and kind of state. ``cell`` is a ModelConfig, or a name with ``num_hiddens``
    (one layer). Both backends' ``begin_state`` build their zeros from this."""
    if isinstance(cell, ModelConfig):
        cfg = cell
    else:
        if num_hiddens is None:
            raise ConfigError("begin_state(cell_name, batch_size, num_hiddens): num_hiddens missing")
        cfg = ModelConfig(cell, 1, num_hiddens)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    n = cfg.num_layers * cfg.num_directions * cfg.num_states
    check_fits(n * int(batch_size) * cfg.num_hiddens * 8, f"a state of batch_size={batch_size}",
               "use a smaller batch_size")  # before NumPy or torch try to allocate it
    return n, int(batch_size), cfg.num_hiddens


def state_shapes(cfg: ModelConfig, batch_size: int) -> list[tuple[int, int]]:
    n = cfg.num_layers * cfg.num_directions * cfg.num_states
    return [(batch_size, cfg.num_hiddens)] * n


def check_state(cfg: ModelConfig, state, batch_size: int, finite: bool = False,
                array_type: type | None = None) -> None:
    """The state must be a tuple with one (B, H) array per layer, direction and kind.

    ``finite=True`` also refuses NaN or infinite entries (cheap: B*H numbers per array;
    the numpy backend asks for it, a GPU backend would pay a device sync).
    ``array_type`` (``np.ndarray`` for the numpy backend) refuses lists and the like.
    """
    expected = state_shapes(cfg, batch_size)
    if not isinstance(state, (tuple, list)):
        raise ShapeError(f"state must be a tuple of (B, H) arrays, got {type(state).__name__}")
    if len(state) != len(expected):
        kinds = "(H, C)" if cfg.cell == "lstm" else "(H,)"
        raise ShapeError(
            f"state for {cfg.cell} with {cfg.num_layers} layer(s) x {cfg.num_directions} "
            f"direction(s) needs {len(expected)} arrays ({kinds} per unit), got {len(state)}"
        )
    for i, (s, shape) in enumerate(zip(state, expected)):
        if array_type is not None and not isinstance(s, array_type):
            raise ShapeError(f"state[{i}] must be a {array_type.__module__}.{array_type.__name__}"
                             f" of shape {shape}, got {type(s).__name__}")
        got = tuple(s.shape) if hasattr(s, "shape") else host_array(s, f"state[{i}]").shape
        if got != shape:
            raise ShapeError(f"state[{i}] has shape {got}, expected {shape} (batch, hidden)")
        if hasattr(s, "detach"):
            continue  # a tensor: the torch backend checks its dtype and device itself
        arr = s if isinstance(s, np.ndarray) else host_array(s, f"state[{i}]")
        if arr.dtype.kind not in "fiu":  # dtype.kind: cheaper than np.issubdtype per call
            raise ShapeError(f"state[{i}] must hold real numbers, got dtype {arr.dtype}")
        if finite and arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ShapeError(f"state[{i}] holds NaN, infinite or non-numeric values")


def check_grads_fit(grads: dict, params: dict) -> dict:
    """Gradients for exactly these parameters, each of its parameter's shape: an optimiser
    step with another model's gradients would fail on a missing name or, worse, broadcast
    a (H,) gradient over an (H, H) matrix without a word. Names and shapes only (a few
    microseconds a step), never the values."""
    check_same_keys("grads", grads, params)
    for name, p in params.items():
        got, want = tuple(grads[name].shape), tuple(p.shape)
        if got != want:
            raise ParamError(f"gradient {name!r} has shape {got}, expected {want}, the shape of "
                             "the parameter it updates")
    return grads


def check_theta(theta) -> float:
    """The clipping threshold θ: a positive number; ``math.inf`` clips nothing (the norm
    is still computed and returned)."""
    if not is_number(theta) or not (theta > 0):  # NaN fails theta > 0
        raise ConfigError(f"clipping threshold theta must be a positive number (math.inf: no "
                          f"clipping), got {shown(theta)}")
    return float(theta)


def check_grads(grads) -> dict:
    """A dict of float arrays (NumPy here; a backend checks its own array type)."""
    if not isinstance(grads, dict):
        raise ParamError(f"grads must be a dict of arrays, got {type(grads).__name__}")
    for name, g in grads.items():
        if not isinstance(g, np.ndarray) or not np.issubdtype(g.dtype, np.floating):
            what = f"dtype {g.dtype}" if isinstance(g, np.ndarray) else type(g).__name__
            raise ParamError(f"gradient {name!r} must be a float NumPy array, got {what}")
    return grads



def check_param_array(name: str, v) -> np.ndarray:
    """One parameter as a real-valued NumPy array (a tensor is read back to the host);
    strings, objects, ragged lists, booleans and complex numbers are a ParamError."""
    arr = host_array(v, f"parameter {name!r}")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating)
                                 or np.issubdtype(arr.dtype, np.integer)):
        raise ParamError(f"parameter {name!r} must hold real numbers, got dtype {arr.dtype}")
    return arr


def check_param_values(params) -> dict:
    """Every value of a parameter dict as a finite float NumPy array, named on error.

    What ``backend.from_numpy`` checks before copying: a string, a ragged list, complex
    or integer values, NaN or inf are refused here, once, instead of surfacing as a NaN
    loss many batches later. If the names belong to a cell, the structure (missing,
    extra, misshaped arrays) is checked too, with :func:`rnnlab.params.validate_params`.
    """
    if not isinstance(params, dict):
        raise ParamError(f"params must be a dict of arrays, got {type(params).__name__}")
    out = {}
    for name, v in params.items():
        arr = check_param_array(name, v)
        if not np.isfinite(arr).all():
            bad = int(np.size(arr) - np.isfinite(arr).sum())
            raise ParamError(f"parameter {name!r} holds {bad} NaN or infinite value(s)")
        out[name] = arr
    cell = infer_cell(out)
    if cell is not None:
        validate_params(cell, out, finite=False)
    return out


@functools.lru_cache(maxsize=128)
def shape_items(cfg: ModelConfig) -> tuple:
    """``param_shapes(cfg)`` as (name, shape) pairs, made once per model."""
    return tuple(param_shapes(cfg).items())


def check_numpy_params(cell, params) -> ModelConfig:
    """Names, shapes and one float dtype of NumPy parameters, for every backend call.

    No pass over the values (a NaN is found only when the loss or logits come out
    non-finite, by :func:`check_finite_inputs`), and with a ModelConfig a fast path of
    one ``shape`` and ``dtype`` comparison per array: about 5 µs for an LSTM, against
    ~50 µs for the general check, which runs only to name what is wrong.
    """
    if not isinstance(params, dict):
        raise ParamError(f"params must be a dict of arrays, got {type(params).__name__}")
    if isinstance(cell, ModelConfig):
        shapes = shape_items(cell)
        if len(params) == len(shapes):
            dtype = params.get(shapes[0][0], None)
            dtype = getattr(dtype, "dtype", None)
            if dtype in _FLOAT_DTYPES and all(
                    type(v) is np.ndarray and v.shape == shape and v.dtype == dtype
                    for v, shape in ((params.get(name), shape) for name, shape in shapes)):
                return cell
    for name, v in params.items():
        if not isinstance(v, np.ndarray) or v.dtype not in _FLOAT_DTYPES:
            what = f"dtype {v.dtype}" if isinstance(v, np.ndarray) else type(v).__name__
            raise ParamError(f"parameter {name!r} must be a float32 or float64 NumPy array, "
                             f"got {what}; convert with backend.from_numpy")
    return validate_params(cell, params, finite=False)


def check_finite_inputs(params: dict, state=(), to_numpy=None) -> None:
    """Name the parameter or state array holding NaN or inf; return if there is none.

    Run by a backend only after its loss or logits came out non-finite, so the common
    path pays nothing. ``to_numpy`` reads a backend's arrays back to the host.
    """
    def bad(v) -> int:
        arr = np.asarray(to_numpy(v) if to_numpy is not None else v)
        return int(arr.size - np.isfinite(arr).sum())

    for name, v in params.items():
        n = bad(v)
        if n:
            raise NonFiniteParamError(f"parameter {name!r} holds {n} NaN or infinite value(s)")
    for i, s in enumerate(state):
        n = bad(s)
        if n:
            raise NonFiniteParamError(f"state[{i}] holds {n} NaN or infinite value(s)")


def check_truncate(cfg: ModelConfig, truncate) -> int | None:
    """``truncate``: None (full BPTT over the window) or k >= 1 steps back, for a model
    that runs forward in time only (a reverse pass's "back" is the other way)."""
    if truncate is None:
        return None
    k = check_int("truncate", truncate, lo=1)
    if cfg.bidirectional:
        exc = ConfigError("truncate stops the gradient k steps back in time, and a "
                          "bidirectional model's reverse pass runs the other way; use a "
                          "one-direction model, or truncate=None")
        exc.argument = "truncate"
        raise exc
    return k


def _theta(name: str, value) -> float:  # check_theta as a declared check
    return check_theta(value)


Theta = Annotated[float, _theta]  # the clipping threshold: > 0, math.inf for none
LearningRate = Annotated[float, Number(lo=0, lo_open=True)]  # a positive finite step size
