"""What a checkpoint may hold: the schema of its JSON metadata and of its arrays.

A checkpoint's digest proves that nothing changed since it was written, not that what
was written is sound: code other than rnnlab's (or a hand edit followed by a new
digest) can write ``"epoch": "three"``, a history that is a string, Adam moments full
of NaN. Loading checks every field and every array here, once, and refuses the first
fault with a CheckpointError that names it (``metadata field 'history' is 'nope',
expected a list of per-epoch dicts``), so "the last good checkpoint is kept" always
points at one that can be resumed. Saving runs the same checks, so rnnlab never writes
a checkpoint it would refuse to read.

The tables below are the single place a new field is declared: a top-level metadata
key in ``METADATA``, an entry of ``extra`` in ``EXTRA``, an optimiser's arrays in
``OPTIMIZER_ARRAYS``. A ModelConfig or TrainConfig field needs nothing here: those
sections are checked by constructing the config.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Callable

import numpy as np

from .checks import is_int, is_number, shown
from .config import OPTIMIZERS, ModelConfig
from .errors import CheckpointError, ConfigError
from .train import TrainConfig

# an optimiser's per-parameter arrays, stored as "optim.<slot>.<parameter name>", and
# the slots that hold sums of squares (a negative entry would make sqrt() NaN)
OPTIMIZER_ARRAYS = {"sgd": (), "adam": ("m", "v"), "adagrad": ("sum",),
                    "adagrad-minchar": ("mem",)}
NON_NEGATIVE_SLOTS = {"v", "sum", "mem"}
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _fail(where: str, field: str, value, expected: str) -> CheckpointError:
    return CheckpointError(f"{where}: metadata field {field!r} is {shown(value)}, expected "
                           f"{expected}")


# ---------------------------------------------------------------------- field checkers
# each takes (value, field, where) and raises a CheckpointError naming the field


def _dict(value, field, where):
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _fail(where, field, value, "a JSON object (dict with str keys)")


def _nonneg_int(value, field, where):
    if not (is_int(value) and value >= 0):
        raise _fail(where, field, value, "a non-negative integer")


def _positive_int(value, field, where):
    if not (is_int(value) and value >= 1):
        raise _fail(where, field, value, "a positive integer")


def _str(value, field, where):
    if not isinstance(value, str):
        raise _fail(where, field, value, "a string")


def _str_or_none(value, field, where):
    if value is not None and not isinstance(value, str):
        raise _fail(where, field, value, "a string or null")


def _config(cls) -> Callable:
    """A section that is a config dataclass's ``to_dict()``: unknown keys are refused, a
    missing key takes the default (an older or partial record; --resume decides whether
    that is enough), a bad value is named with the config's own message."""
    names = {f.name for f in dataclasses.fields(cls)}

    def check(value, field, where):
        _dict(value, field, where)
        unknown = sorted(set(value) - names)
        if unknown:
            raise CheckpointError(f"{where}: metadata field {field!r} has unknown key(s) "
                                  f"{', '.join(unknown)}; known: {', '.join(sorted(names))}")
        try:
            cls(**value)
        except ConfigError as exc:
            name = getattr(exc, "argument", None)
            where_field = f"{field}.{name}" if name else field
            raise CheckpointError(f"{where}: metadata field {where_field!r} is invalid: "
                                  f"{exc}") from None
    return check


def _model(value, field, where):
    _dict(value, field, where)
    missing = [k for k in ("cell", "vocab_size", "num_hiddens") if k not in value]
    if missing:
        raise CheckpointError(f"{where}: metadata field {field!r} lacks "
                              f"{', '.join(missing)}")
    _config(ModelConfig)(value, field, where)


def _vocab(value, field, where):
    if not isinstance(value, list) or not value:
        raise _fail(where, field, value, "a non-empty list of token strings")
    for i, tok in enumerate(value):
        if not isinstance(tok, str):
            raise _fail(where, f"{field}[{i}]", tok, "a string (a token)")


def _train(value, field, where):
    _config(TrainConfig)(value, field, where)


def _optimizer(value, field, where):
    if value is None:
        return
    _dict(value, field, where)
    if value.get("name") not in OPTIMIZERS:
        raise _fail(where, f"{field}.name", value.get("name"),
                    "one of " + ", ".join(OPTIMIZERS))
    _nonneg_int(value.get("step"), f"{field}.step", where)


# what EpochStats.to_dict() gives; entries may carry more keys (a newer rnnlab's)
_HISTORY_NUMBERS = ("train_ppl", "tokens_per_s", "seconds", "grad_norm_mean", "grad_norm_max",
                    "clipped_fraction", "lr")


def _history(value, field, where):
    if not isinstance(value, list):
        raise _fail(where, field, value, "a list of per-epoch dicts")
    for i, entry in enumerate(value):
        at = f"{field}[{i}]"
        _dict(entry, at, where)
        if "epoch" in entry:
            _positive_int(entry["epoch"], f"{at}.epoch", where)
        if "num_tokens" in entry:
            _nonneg_int(entry["num_tokens"], f"{at}.num_tokens", where)
        for key in _HISTORY_NUMBERS:
            if key in entry and not is_number(entry[key]):
                raise _fail(where, f"{at}.{key}", entry[key], "a number")
        if entry.get("val_ppl") is not None and not is_number(entry["val_ppl"]):
            raise _fail(where, f"{at}.val_ppl", entry["val_ppl"], "a number or null")


def _rng(value, field, where):
    _dict(value, field, where)
    if "seed" in value:
        _nonneg_int(value["seed"], f"{field}.seed", where)


MAX_PREFIX = 10_000  # characters of a recorded prefix: generate warms up on every one


def _prefix(value, field, where):
    _str_or_none(value, field, where)
    if value is not None and len(value) > MAX_PREFIX:
        raise CheckpointError(f"{where}: metadata field {field!r} is {len(value):,} characters "
                              f"long, expected at most {MAX_PREFIX:,} (the prefix generate "
                              "warms up on)")


def _choice(*choices) -> Callable:
    def check(value, field, where):
        if value not in choices or not isinstance(value, str):
            raise _fail(where, field, value, "one of " + ", ".join(choices))
    return check


# extra: free-form for Python users; these keys, when present, have these types
EXTRA = {
    "corpus": _str,
    "corpus_sha256": _str,
    "backend": _choice("numpy", "torch"),
    "dtype": _choice("float32", "float64"),
    "device": _str_or_none,
    "rnnlab_version": _str,
    "world_size": _positive_int,
    "prefix": _prefix,
    "run_id": _str,  # which run the file belongs to (best.safetensors beside its checkpoint)
    "options": _dict,  # each value is checked against its option's parser on --resume
}


def _extra(value, field, where):
    _dict(value, field, where)
    for key, check in EXTRA.items():
        if key in value:
            check(value[key], f"{field}.{key}", where)


# every top-level key of the metadata, in the order they are checked
METADATA = {
    "format": _str,
    "format_version": _positive_int,
    "model": _model,
    "vocab": _vocab,
    "epoch": _nonneg_int,
    "train": _train,
    "optimizer": _optimizer,
    "history": _history,
    "rng": _rng,
    "extra": _extra,
}
REQUIRED = ("format", "format_version", "model", "vocab")


def check_metadata(meta: dict, where: str) -> None:
    """Every field of a checkpoint's metadata, or a CheckpointError naming the first bad one."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where}: the metadata is {type(meta).__name__}, not an object")
    unknown = sorted(set(meta) - set(METADATA))
    if unknown:
        raise CheckpointError(f"{where}: unknown metadata field(s) {', '.join(unknown)}; this "
                              f"rnnlab knows {', '.join(METADATA)}")
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise CheckpointError(f"{where}: metadata lacks {', '.join(missing)}")
    for key, check in METADATA.items():
        if key in meta:
            check(meta[key], key, where)
    _check_history_epochs(meta, where)
    _check_token_level(meta, where)
    name = (meta.get("optimizer") or {}).get("name")
    trained = (meta.get("train") or {}).get("optimizer")
    if name is not None and trained is not None and name != trained:
        raise CheckpointError(f"{where}: metadata field 'optimizer.name' is {name!r} but "
                              f"'train.optimizer' is {trained!r}")


def _check_history_epochs(meta: dict, where: str) -> None:
    """A run's history holds one entry per epoch, 1, 2, ..., up to the checkpoint's epoch
    (a checkpoint written from Python may have no history at all)."""
    history, epoch = meta.get("history") or [], meta.get("epoch", 0)
    if not history:
        return
    if len(history) != epoch:
        raise CheckpointError(f"{where}: metadata field 'epoch' is {epoch}, but 'history' holds "
                              f"{len(history)} epoch(s); a checkpoint after epoch e records e")
    for i, entry in enumerate(history):
        if entry.get("epoch", i + 1) != i + 1:
            raise _fail(where, f"history[{i}].epoch", entry["epoch"], f"{i + 1} (the entries "
                        "count the epochs from 1)")


def _check_token_level(meta: dict, where: str) -> None:
    """A vocabulary recorded as character-level holds characters: every token is one,
    but <unk> and reserved tokens in angle brackets (d2l's <pad>, <bos>, <eos>)."""
    train, options = meta.get("train") or {}, (meta.get("extra") or {}).get("options") or {}
    token = train.get("token", options.get("token") if isinstance(options, dict) else None)
    if token != "char":  # word-level, or not recorded (a checkpoint written from Python)
        return
    for i, tok in enumerate(meta["vocab"][1:], start=1):
        if len(tok) != 1 and not (len(tok) > 2 and tok[0] == "<" and tok[-1] == ">"):
            raise _fail(where, f"vocab[{i}]", tok, "one character (the run is character-level: "
                        "train.token is 'char')")


# ---------------------------------------------------------------------- arrays


def _float_finite(where: str, what: str, arr) -> None:
    if not isinstance(arr, np.ndarray) or arr.dtype not in FLOAT_DTYPES:
        got = f"dtype {arr.dtype}" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise CheckpointError(f"{where}: {what} must be a float32 or float64 NumPy array, "
                              f"got {got}")
    bad = arr.size - int(np.isfinite(arr).sum())
    if bad:
        raise CheckpointError(f"{where}: {what} holds {bad} NaN or infinite value(s)")


def check_optimizer_arrays(where: str, optimizer: dict | None, params: dict) -> None:
    """The optimiser's arrays: exactly its slots for every parameter, each of the
    parameter's shape, float, finite (and >= 0 for sums of squares). A checkpoint whose
    Adam moments are NaN would poison the first step after a resume."""
    arrays = {} if optimizer is None else optimizer.get("arrays", {})
    if optimizer is None:
        return
    if not isinstance(arrays, dict):
        raise CheckpointError(f"{where}: optimiser arrays must be a dict, got "
                              f"{type(arrays).__name__}")
    slots = OPTIMIZER_ARRAYS.get(optimizer.get("name"), ())
    expected = {f"{slot}.{name}" for slot in slots for name in params}
    missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
    if missing:
        raise CheckpointError(f"{where}: the {optimizer.get('name')} optimiser state has no "
                              f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
    if extra:
        raise CheckpointError(f"{where}: the {optimizer.get('name')} optimiser state has "
                              f"unexpected arrays {', '.join(extra[:4])}")
    for key in sorted(arrays):
        arr = arrays[key]
        slot, name = key.split(".", 1)
        what = f"optimiser array {key!r}"
        _float_finite(where, what, arr)
        if arr.shape != np.shape(params[name]):
            raise CheckpointError(f"{where}: {what} has shape {arr.shape}, expected "
                                  f"{np.shape(params[name])} (the shape of {name})")
        if slot in NON_NEGATIVE_SLOTS and arr.size and float(arr.min()) < 0:
            raise CheckpointError(f"{where}: {what} holds a negative value ({arr.min():g}); "
                                  "it is a running sum of squared gradients")


def check_extra_arrays(where: str, arrays: dict) -> None:
    """``Checkpoint.arrays``: named float arrays, finite; ``grad_norms`` is (n, 2)."""
    if not isinstance(arrays, dict):
        raise CheckpointError(f"{where}: arrays must be a dict, got {type(arrays).__name__}")
    for key in sorted(arrays):
        if not isinstance(key, str):
            raise CheckpointError(f"{where}: array name {key!r} is not a string")
        _float_finite(where, f"array {key!r}", arrays[key])
    norms = arrays.get("grad_norms")
    if norms is not None and (norms.ndim != 2 or norms.shape[1] != 2):
        raise CheckpointError(f"{where}: array 'grad_norms' has shape {norms.shape}, expected "
                              "(batches, 2): position and norm of every batch")


def check_param_arrays(where: str, params) -> None:
    """Parameters as NumPy float arrays (the structure is params.validate_params's)."""
    if not isinstance(params, dict) or not params:
        raise CheckpointError(f"{where}: params must be a non-empty dict of NumPy arrays, got "
                              f"{shown(params)}")
    for name, arr in params.items():
        if not isinstance(arr, np.ndarray) or arr.dtype not in FLOAT_DTYPES:
            got = f"dtype {arr.dtype}" if isinstance(arr, np.ndarray) else type(arr).__name__
            raise CheckpointError(f"{where}: parameter {name!r} must be a float32 or float64 "
                                  f"NumPy array, got {got} (backend.to_numpy converts)")


# ---------------------------------------------------------------------- saving


def _is_plain(value) -> bool:
    """A Python str, int, bool, None or non-NaN float, exactly: JSON data as it is."""
    t = type(value)
    return t is str or t is int or t is bool or value is None or (t is float and value == value)


def plain(value, field: str, where: str):
    """``value`` as plain JSON data: NumPy scalars become Python numbers, tuples lists;
    anything JSON cannot hold (an array, an object) is a CheckpointError naming it."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isnan(v):
            raise CheckpointError(f"{where}: metadata field {field!r} is NaN, which JSON "
                                  "cannot hold")
        return v
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise CheckpointError(f"{where}: metadata field {field!r} has a key {k!r} "
                                      "that is not a string")
            # a history holds thousands of plain numbers: they are kept as they are
            # without building their field names (only an error needs one)
            out[k] = v if _is_plain(v) else plain(v, f"{field}.{k}", where)
        return out
    if isinstance(value, (list, tuple)):
        return [v if _is_plain(v) else plain(v, f"{field}[{i}]", where)
                for i, v in enumerate(value)]
    raise CheckpointError(f"{where}: metadata field {field!r} is {shown(value)} of type "
                          f"{type(value).__name__}, which a checkpoint cannot hold (numbers, "
                          "strings, lists and dicts only)")
