"""Input checks at rnnlab's public boundary, shared by the configs, the backends, the
training loop, generation and checkpoints.

Two kinds. **Scalars** (``check_int``, ``check_number``, ``check_bool``,
``check_choice``, ``check_str``, ``check_seed``): a bad value is a ConfigError that names
the argument, shows the value and says what was expected, with the argument's name in
``exc.argument`` (a checkpoint's schema check reports it as the metadata field).
Booleans are not numbers, strings are not numbers, NaN is not in any range.
**Arrays** (token ids, targets, weights, states, parameter dicts): a ShapeError or
ParamError naming the argument, the shape or value found and what was expected,
instead of a traceback from deep inside NumPy.

Every check is O(1) or one pass over an input the caller handed in; the backends' hot
path checks names, shapes and dtypes only (see ``check_numpy_params``).
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from .config import ModelConfig
from .errors import ConfigError, NonFiniteParamError, ParamError, ShapeError
from .params import GATES, param_shapes, validate_params


# ----------------------------------------------------------------------------- scalars


def shown(value, limit: int = 80) -> str:
    """A value as an error message shows it: repr, an array by its type and shape, cut
    to ``limit`` characters."""
    if hasattr(value, "shape") and hasattr(value, "dtype") and getattr(value, "ndim", 0) > 0:
        return f"{type(value).__name__} of shape {tuple(value.shape)} ({value.dtype})"
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def refuse(name: str, value, expected: str, error=ConfigError) -> Exception:
    """The error for ``name = value`` when ``expected`` was: raise what this returns."""
    exc = error(f"{name} must be {expected}, got {shown(value)}")
    exc.argument = name
    return exc


def is_int(value) -> bool:
    """An integer, not a bool (``True`` is an int to Python, not to rnnlab)."""
    if type(value) is int:  # the common case, without the abstract-class checks
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_number(value) -> bool:
    """A real number: int or float (NumPy's too), not a bool, a string or a complex."""
    if type(value) is float or type(value) is int:  # the common cases, quickly
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _interval(lo, hi, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    return f"{'<' if hi_open else '<='} {hi:g}"


def check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """An integer in [lo, hi] (either bound optional), as a Python int."""
    if is_int(value) and (lo is None or value >= lo) and (hi is None or value <= hi):
        return int(value)
    if lo == 1 and hi is None:
        expected = "a positive integer"
    elif lo == 0 and hi is None:
        expected = "a non-negative integer"
    elif lo is None and hi is None:
        expected = "an integer"
    else:
        expected = f"an integer {_interval(lo, hi, False, False)}".replace("integer [", "integer in [")
    raise refuse(name, value, expected)


def check_number(name: str, value, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False, hi_open: bool = False, allow_inf: bool = False) -> float:
    """A real number in the interval (NaN never is; inf only with ``allow_inf``), as a float."""
    if is_number(value):
        v = float(value)
        if (not math.isnan(v) and (allow_inf or math.isfinite(v))
                and (lo is None or (v > lo if lo_open else v >= lo))
                and (hi is None or (v < hi if hi_open else v <= hi))):
            return v
    finite = "" if allow_inf else " finite"
    if lo == 0 and lo_open and hi is None:
        expected = f"a positive{finite} number"
    elif lo is None and hi is None:
        expected = f"a{finite} number"
    else:
        expected = f"a number in {_interval(lo, hi, lo_open, hi_open)}" if (
            lo is not None and hi is not None) else f"a{finite} number {_interval(lo, hi, lo_open, hi_open)}"
    raise refuse(name, value, expected)


def check_bool(name: str, value) -> bool:
    """True or False: not 1, not "no" (a non-empty string is truthy)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise refuse(name, value, "True or False")


def check_choice(name: str, value, choices) -> str:
    """One of ``choices`` (strings)."""
    if isinstance(value, str) and value in choices:
        return value
    if isinstance(value, str):  # a typo, most likely: name it as such
        exc = ConfigError(f"unknown {name} {shown(value)}; expected one of "
                          + ", ".join(map(str, choices)))
        exc.argument = name
        raise exc
    raise refuse(name, value, "one of " + ", ".join(map(str, choices)))


def check_str(name: str, value, nonempty: bool = False) -> str:
    if isinstance(value, str) and (value or not nonempty):
        return value
    raise refuse(name, value, "a non-empty string" if nonempty else "a string")


def check_seed(name: str, value, optional: bool = False):
    """A seed: a non-negative integer (what ``numpy.random.default_rng`` takes), or None
    where ``optional`` (fresh entropy)."""
    if value is None and optional:
        return None
    if is_int(value) and value >= 0:
        return int(value)
    raise refuse(name, value, "a non-negative integer" + (" or None" if optional else ""))


def check_path(name: str, value):
    """A file path: a str or os.PathLike, not None, not empty."""
    import os

    if isinstance(value, os.PathLike) or (isinstance(value, str) and value):
        return value
    raise refuse(name, value, "a file path (str or pathlib.Path)" if value != "" else
                 "a file path, not an empty string")


def check_instance(name: str, value, cls: type, hint: str = ""):
    """An instance of ``cls`` (a config dataclass, most often): ``cfg must be a
    ModelConfig, got None``, with ``hint`` saying how to make one."""
    if isinstance(value, cls):
        return value
    raise refuse(name, value, f"a {cls.__name__}{hint}")


def check_backend(backend, name: str = "backend"):
    """An rnnlab backend: what ``rnnlab.get_backend`` returns (anything with its methods)."""
    from .backend import Backend

    if isinstance(backend, Backend):
        return backend
    raise refuse(name, backend, "an rnnlab backend, rnnlab.get_backend('numpy') or "
                 "rnnlab.get_backend('torch')")


def check_dict(name: str, value, what: str = "arrays", error=ParamError) -> dict:
    """A dict (of parameter arrays, gradients, a state_dict): its name and type on error."""
    if isinstance(value, dict):
        return value
    raise refuse(name, value, f"a dict of {what}", error)


def check_same_keys(name: str, value: dict, reference: dict, ref_name: str = "params") -> dict:
    """A dict with exactly ``reference``'s keys (gradients for parameters): the missing
    and extra names on error."""
    check_dict(name, value)
    if value.keys() != reference.keys():
        missing = sorted(set(reference) - set(value))
        extra = sorted(set(value) - set(reference))
        parts = ([f"missing {', '.join(map(repr, missing[:6]))}"] if missing else []) + (
            [f"extra {', '.join(map(repr, extra[:6]))}"] if extra else [])
        raise ParamError(f"{name} must have the names of {ref_name}: {'; '.join(parts)}")
    return value


def check_sequence(name: str, value, what: str, error=ShapeError) -> tuple:
    """A tuple or list (of states, of arrays), not a string, an array or None."""
    if isinstance(value, (tuple, list)):
        return tuple(value)
    raise refuse(name, value, f"a tuple or list of {what}", error)


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
            arr = _host_array(s, f"{name}[{i}]")
            if arr.dtype.kind not in "fiu":  # the shape is checked where the model is known
                raise ShapeError(f"{name}[{i}] must be an array of real numbers, got dtype "
                                 f"{arr.dtype}")
    return state


# ----------------------------------------------------------------------------- arrays


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _host_array(X, name: str) -> np.ndarray:
    """``X`` as a NumPy array (a torch tensor is read back to the host); a ragged nested
    list, or anything NumPy cannot make an array of, is a ShapeError naming ``name``."""
    if hasattr(X, "detach"):  # a torch tensor: check its values on the host
        X = X.detach().cpu().numpy()
    try:
        return np.asarray(X)
    except (ValueError, TypeError) as exc:  # ragged lists: "inhomogeneous shape ..."
        raise ShapeError(f"{name} is not a rectangular array ({type(X).__name__}): {exc}") from None


def check_tokens(X, vocab_size: int | None, name: str = "X") -> np.ndarray:
    """(B, T) integer ids in [0, V). Returns them as an int64 NumPy array.

    ``vocab_size=None`` checks only what needs no vocabulary (2-D, non-empty, integer,
    non-negative): what ``backend.tokens`` can check.
    """
    arr = _host_array(X, name)
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


def check_weights(weights, n: int):
    if weights is None:
        return None
    w = _host_array(weights, "weights")
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
    from .memory import check_fits

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
        got = tuple(s.shape) if hasattr(s, "shape") else _host_array(s, f"state[{i}]").shape
        if got != shape:
            raise ShapeError(f"state[{i}] has shape {got}, expected {shape} (batch, hidden)")
        if hasattr(s, "detach"):
            continue  # a tensor: the torch backend checks its dtype and device itself
        arr = s if isinstance(s, np.ndarray) else _host_array(s, f"state[{i}]")
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


def check_param_array(name: str, v) -> np.ndarray:
    """One parameter as a real-valued NumPy array (a tensor is read back to the host);
    strings, objects, ragged lists, booleans and complex numbers are a ParamError."""
    arr = _host_array(v, f"parameter {name!r}")
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
