"""Declared argument checks: a public function says in its signature what each argument
must be, and :func:`checked` refuses anything else before the body runs.

::

    @checked
    def evaluate(backend: AnyBackend, cfg: Model, params: dict, corpus: np.ndarray,
                 batch_size: PositiveInt, num_steps: PositiveInt, ...) -> float:
        ...  # the body reads as the algorithm: every argument is already what it says

An annotation ``Annotated[T, check]`` carries a *check*: a callable
``check(name, value) -> value`` that returns the value (normalised: a NumPy integer becomes
a Python int) or raises an rnnlab error naming the argument, the value and what was
expected (the messages of ``rnnlab.checks``). Annotations without a check are
documentation only. A keyword argument the function does not have is a ConfigError that
lists the ones it has, not a TypeError. Defaults are not checked: they are the library's.

The decorator reads the hints once, when the function is defined; a call costs one
check per argument given and no ``inspect`` machinery (a few hundred nanoseconds).
Checks that relate two arguments (token ids below the model's vocabulary size) stay in
the function, after these.
"""

from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable

from .checks import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_seed,
    refuse,
)
from .errors import ConfigError

# ------------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Int:
    """An integer in [lo, hi] (either bound optional); ``check_int``'s message."""

    lo: int | None = None
    hi: int | None = None

    def __call__(self, name: str, value) -> int:
        return check_int(name, value, self.lo, self.hi)


@dataclass(frozen=True)
class Number:
    """A real number in the interval; NaN never is, inf only with ``allow_inf``."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    allow_inf: bool = False

    def __call__(self, name: str, value) -> float:
        return check_number(name, value, self.lo, self.hi, self.lo_open, self.hi_open,
                            self.allow_inf)


@dataclass(frozen=True)
class Bool:
    """True or False, not 1 and not "no"."""

    def __call__(self, name: str, value) -> bool:
        return check_bool(name, value)


@dataclass(frozen=True)
class Choice:
    """One of a few strings; a typo is named as an unknown choice."""

    choices: tuple

    def __call__(self, name: str, value) -> str:
        return check_choice(name, value, self.choices)


@dataclass(frozen=True)
class Seed:
    """A non-negative integer (``numpy.random.default_rng``'s seed), or None if optional."""

    optional: bool = False

    def __call__(self, name: str, value):
        return check_seed(name, value, self.optional)


@dataclass(frozen=True)
class Instance:
    """An instance of ``cls`` (or None where ``optional``).

    ``what`` is how the message names the type (``a ModelConfig``), ``hint`` follows it
    (how to make one). ``got="value"`` shows the value found, ``got="type"`` its type.
    """

    cls: type | tuple
    what: str
    optional: bool = False
    hint: str = ""
    got: str = "value"

    def __call__(self, name: str, value):
        if isinstance(value, self.cls) or (value is None and self.optional):
            return value
        expected = self.what + (" or None" if self.optional else "") + self.hint
        if self.got == "value":
            raise refuse(name, value, expected)
        exc = ConfigError(f"{name} must be {expected}, got {type(value).__name__}")
        exc.argument = name
        raise exc


@dataclass(frozen=True)
class Function:
    """A callable, or None where ``optional`` (a callback)."""

    optional: bool = True

    def __call__(self, name: str, value):
        if callable(value) or (value is None and self.optional):
            return value
        exc = ConfigError(f"{name} must be a function{' or None' if self.optional else ''}, "
                          f"got {type(value).__name__}")
        exc.argument = name
        raise exc


# Annotations that read as what they say. ``Annotated`` keeps the type for readers and
# type checkers; the second part is the check.
PositiveInt = Annotated[int, Int(lo=1)]
NonNegativeInt = Annotated[int, Int(lo=0)]
Flag = Annotated[bool, Bool()]
Callback = Annotated[typing.Optional[Callable], Function(optional=True)]


# ---------------------------------------------------------------------------- @checked


def _check_of(hint) -> Callable | None:
    """The check an annotation carries, if any: the last callable of ``Annotated[T, ...]``."""
    if typing.get_origin(hint) is Annotated:
        checks = [m for m in hint.__metadata__ if callable(m)]
        return checks[-1] if checks else None
    return None


def checked(fn):
    """Apply the checks declared in ``fn``'s annotations to the arguments of every call."""
    hints = typing.get_type_hints(fn, include_extras=True)
    params = inspect.signature(fn).parameters
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    plan = []  # (position or None, name, check) for every checked argument
    for i, (name, p) in enumerate(params.items()):
        check = _check_of(hints.get(name))
        if check is not None:
            plan.append((i if p.kind in positional else None, name, check))
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    known = frozenset(n for n, p in params.items() if p.kind is not inspect.Parameter.POSITIONAL_ONLY)
    shown_names = [n for n in params if n != "self"]

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if not takes_any and not known.issuperset(kwargs):
            unknown = sorted(set(kwargs) - known)
            raise ConfigError(f"{fn.__qualname__}() has no argument {', '.join(map(repr, unknown))}; "
                              f"its arguments are {', '.join(shown_names)}")
        if plan:
            args = list(args)
            for i, name, check in plan:
                if i is not None and i < len(args):
                    args[i] = check(name, args[i])
                elif name in kwargs:
                    kwargs[name] = check(name, kwargs[name])
        return fn(*args, **kwargs)

    call.__checks__ = {name: check for _, name, check in plan}  # what is declared, for docs and tests
    return call


def declared(fn) -> dict[str, Any]:
    """The checks ``@checked`` applies to ``fn``'s arguments, by name."""
    return dict(getattr(fn, "__checks__", {}))
