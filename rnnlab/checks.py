"""Generic argument checks: the ground floor every public function stands on.

They know no rnnlab type, only Python's and NumPy's: a bad value is a ConfigError (or the
error type the caller passes) that names the argument, shows the value and says what was
expected, with the argument's name in ``exc.argument`` (a checkpoint's schema check
reports it as the metadata field). Booleans are not numbers, strings are not numbers,
NaN is not in any range. ``check_fits`` refuses, with the number, an allocation larger
than the machine's memory before NumPy or torch try it.

The checks of rnnlab's own types live beside those types: a ModelConfig's fields in
``config``, parameter dicts in ``params``, tokens, states and gradients in ``arrays``, a
backend in ``backend``. ``rnnlab.arguments.checked`` declares them on a signature.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

from .errors import ConfigError, ParamError, ShapeError

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



# --------------------------------------------------------------------------- containers


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



def host_array(X, name: str) -> np.ndarray:
    """``X`` as a NumPy array (a torch tensor is read back to the host); a ragged nested
    list, or anything NumPy cannot make an array of, is a ShapeError naming ``name``."""
    if hasattr(X, "detach"):  # a torch tensor: check its values on the host
        X = X.detach().cpu().numpy()
    try:
        return np.asarray(X)
    except (ValueError, TypeError) as exc:  # ragged lists: "inhomogeneous shape ..."
        raise ShapeError(f"{name} is not a rectangular array ({type(X).__name__}): {exc}") from None



# ------------------------------------------------------------------------------ memory


def memory_limit() -> int | None:
    """Bytes this process may use: the machine's RAM, or a container's (cgroup) limit when
    lower; None where neither can be read."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # "max" or 2^63-ish: no limit
            limits.append(int(text))
    return min(limits) if limits else None


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.3g} bytes"  # pragma: no cover


def check_fits(nbytes: int, what: str, hint: str) -> None:
    """Refuse, before allocating, what could not fit in this machine's memory: a
    ConfigError with the number (``what`` needs about X, more than the Y here; ``hint``)."""
    limit = memory_limit()
    if limit is not None and nbytes > limit:
        raise ConfigError(f"{what} needs about {human_bytes(nbytes)}, more than the "
                          f"{human_bytes(limit)} of memory here; {hint}")
