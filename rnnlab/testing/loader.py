"""Finding the subject: a file imported by path, a name in it, and the units to check.

``FILE[:NAME]`` is imported as a module of its own (a unique name, the file's directory
on ``sys.path`` while it is checked, so its own imports work). A file written as a
script (Karpathy's min-char-rnn.py reads input.txt and trains forever at top level) is
loaded for the min-char-rnn convention without running its training: imports,
definitions and assignments run in order; loops, ``if __name__ == "__main__":`` blocks
and top-level statements that fail (reading a missing input.txt) are skipped, and the
globals ``lossFun`` reads are set by rnnlab. Every problem finding or fitting the code is
a :class:`~rnnlab.errors.SubjectError`, one line naming what was expected.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import inspect
import io
import itertools
import re
import sys
import types
import warnings
from pathlib import Path

from ..errors import (
    TORCH_INSTALL,
    MissingDependencyError,
    NoConventionFitsError,
    SubjectError,
)
from . import adapters
from .adapters import SubjectRaised, _check_signature, exc_text, one_line, where
from .cs231n_units import CS231N_NAMES, cs231n_units
from .d2l_units import D2LUnit, find_d2l
from .dlai_units import DLAI_NAMES, dlai_units
from .minchar_units import MIN_CHAR_GLOBALS, MinCharUnit, weights_passing
from .module_args import built, check_accepted, missing_hint, parse_options, split_call
from .protocol_units import Protocol, ProtocolUnit

# The conventions rnnlab knows: the single registry, read by the command line, the
# checks of a convention given, and the search for one when none is. Each name maps to
# how specific a fit under it is, lower first: when a file fits several, the most specific
# is taken (a Protocol object is declared outright; lossFun and the two assignments'
# function names are exact; d2l's rnn/lstm/gru are common names; any nn.Module fits torch.nn;
# PyTorch's char-RNN tutorial module needs its three sizes and its layers' shapes).
REGISTRY = {"cs231n": 2, "d2l": 4, "torch.nn": 5, "min-char-rnn": 1, "deeplearning.ai": 2,
            "protocol": 0, "torch-tutorial": 3}
CONVENTIONS = tuple(REGISTRY)  # in the order they are named to users
WRAP = ("to check code laid out otherwise, wrap it in an rnnlab.testing.Protocol and give "
        "--convention protocol (leave --convention out for a skeleton to edit; docs/verify.md, "
        "'Wrap your code in a Protocol')")
_COUNTER = itertools.count()


def check_convention(convention) -> None:
    """Refuse a convention that is not in the registry (None: find it)."""
    if convention is not None and convention not in CONVENTIONS:
        raise SubjectError(f"unknown convention {convention!r}; expected one of {', '.join(CONVENTIONS)}")


def split_target(target: str) -> tuple[Path, str | None]:
    """'solution.py:MyLSTM' -> (Path('solution.py'), 'MyLSTM'); a path that exists as given
    wins over a split at its last colon. A target that is empty, or whose file exists with
    no name or not a Python name after the colon, is refused naming that."""
    if not target.strip():
        raise SubjectError("the target is empty: give the Python file to check, FILE or FILE:NAME")
    p = Path(target)
    if p.exists() or ":" not in target:
        return p, None
    target, _ = split_call(target)  # FILE:NAME(key=value, ...): the options, read by load()
    path, name = target.rsplit(":", 1)
    if not name.isidentifier():
        if path and Path(path).is_file():
            what = ("has nothing after the colon" if not name else
                    f"has {name!r} after the colon, which is not a Python name")
            raise SubjectError(f"{target!r} {what}; give a function or class of "
                               f"{Path(path).name} ({Path(path).name}:NAME) or the file alone")
        return p, None
    return Path(path), name


class Loaded:
    """The units to check and what to undo afterwards (sys.path, min-char-rnn's globals)."""

    def __init__(self, units, found, label, notes=(), cleanup=()):
        self.units, self.found, self.label = units, found, label
        self.notes = list(notes)
        self._cleanup = list(cleanup)

    def close(self) -> None:
        for f in reversed(self._cleanup):
            f()
        self._cleanup.clear()


def import_file(path: Path, script: bool = False) -> tuple[types.ModuleType, list]:
    """Import ``path`` as a fresh module; ``script`` skips loops, main blocks and failing
    top-level statements. Returns (module, notes)."""
    if not path.exists():
        raise SubjectError(f"{path}: no such file")
    if path.is_dir():
        raise SubjectError(f"{path} is a directory; give the Python file to check")
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SubjectError(f"cannot read {path}: {one_line(exc)}") from None
    name = f"rnnlab_subject_{next(_COUNTER)}_{''.join(c if c.isalnum() else '_' for c in path.stem)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    notes = []
    sys.modules[name] = module
    try:
        try:
            tree = ast.parse(source, filename=str(path))
        except SyntaxError:
            if not script:
                raise
            source = _py2_prints(source)  # Karpathy's gist is Python 2: print '...' % x
            tree = ast.parse(source, filename=str(path))
            notes.append(f"{path.name} is Python 2: its print statements were read as print() calls")
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise SubjectError(f"cannot import {path.name}: SyntaxError: {exc.msg} (line {exc.lineno})") from None
    out = io.StringIO()
    try:
        # swallowed in rnnlab's process; in the child that runs a file, captured (isolation.py)
        swallow = contextlib.redirect_stdout(out) if adapters.SWALLOW_PRINTS else contextlib.nullcontext()
        with swallow, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not script:
                spec.loader.exec_module(module)
            else:
                module.__file__ = str(path)
                module.__dict__.setdefault("xrange", range)  # the original is Python 2
                loops, failed = [], []
                for stmt in tree.body:
                    if isinstance(stmt, (ast.While, ast.For, ast.AsyncFor)) or _is_main_guard(stmt):
                        loops.append(str(stmt.lineno))
                        continue
                    code = compile(ast.Module([stmt], type_ignores=[]), str(path), "exec")
                    try:
                        exec(code, module.__dict__)
                    except Exception as exc:  # noqa: BLE001: a script's data loading
                        failed.append((stmt.lineno, exc_text(exc)[:80]))
                if loops or failed:
                    msg = f"{path.name} is run as a script without its training"
                    if loops:
                        msg += f": skipped the top-level loop or main block at line {', '.join(loops)}"
                    if failed:
                        msg += (f"{';' if loops else ':'} skipped {len(failed)} top-level statement"
                                f"{'s' if len(failed) > 1 else ''} that failed, the first at line "
                                f"{failed[0][0]} ({failed[0][1]})")
                    notes.append(msg)
    except SystemExit as exc:
        sys.modules.pop(name, None)
        raise SubjectError(f"cannot import {path.name}: it called sys.exit({exc.code!r})") from None
    except Exception as exc:  # noqa: BLE001: any error of the subject's import
        sys.modules.pop(name, None)
        raise SubjectError(f"cannot import {path.name}: {exc_text(exc)}"
                           f"{where(exc, path)}") from None
    return module, notes


def _py2_prints(source: str) -> str:
    """``print 'x %d' % n  # comment`` -> ``print('x %d' % n)  # comment``, line by line."""
    out = []
    for line in source.splitlines():
        m = re.match(r"^(\s*(?:[^#'\"]*:\s*)?)print\s+(?![(=])([^#]*?)(\s*#.*)?$", line)
        out.append(f"{m.group(1)}print({m.group(2)}){m.group(3) or ''}" if m else line)
    return "\n".join(out) + "\n"


def _is_main_guard(stmt) -> bool:
    if not isinstance(stmt, ast.If):
        return False
    t = stmt.test
    return (isinstance(t, ast.Compare) and isinstance(t.left, ast.Name) and t.left.id == "__name__")


def _uses_torch(fn) -> bool:
    """Does a d2l function compute with torch? Decided by what its code refers to (the
    global names in its bytecode, nested functions included, and its closure): torch, or
    anything defined in torch (``torch.nn.functional as F``, an autograd.Function), means
    torch; only NumPy means NumPy; neither (``X @ W`` alone) means torch where it is
    installed, so that its gradients are checked too."""
    g = getattr(fn, "__globals__", {})
    names, stack = set(), [getattr(fn, "__code__", None)]
    while stack:
        code = stack.pop()
        if code is None:
            continue
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    values = [g[n] for n in names if n in g]
    values += [c.cell_contents for c in (getattr(fn, "__closure__", None) or ()) if _filled(c)]
    saw_numpy = False
    for v in values:
        kinds = (v.__mro__ if isinstance(v, type) else
                 () if isinstance(v, types.ModuleType) else (type(v),))
        mods = [getattr(v, "__name__", "") if isinstance(v, types.ModuleType) else
                str(getattr(v, "__module__", "") or "")]
        mods += [str(getattr(k, "__module__", "")) for k in kinds]
        if any(m == "torch" or m.startswith("torch.") for m in mods):
            return True
        saw_numpy = saw_numpy or any(m == "numpy" or m.startswith("numpy.") for m in mods)
    if saw_numpy:
        return False
    return importlib.util.find_spec("torch") is not None


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _need_torch(what: str) -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MissingDependencyError(f"{what} needs PyTorch, which is not installed ({TORCH_INSTALL})") from None


def infer_convention(obj) -> str:
    """The convention of a Python object handed to ``assert_conforms`` without one."""
    if isinstance(obj, Protocol):
        return "protocol"
    if isinstance(obj, types.ModuleType):
        if any(callable(getattr(obj, n, None)) for n in CS231N_NAMES):
            return "cs231n"
        if any(callable(getattr(obj, n, None)) for n in DLAI_NAMES):
            return "deeplearning.ai"
        if callable(getattr(obj, "lossFun", None)):
            return "min-char-rnn"
        if any(callable(getattr(obj, n, None)) for n in ("rnn", "lstm", "gru")):
            return "d2l"
    if inspect.isclass(obj) and "torch" in sys.modules:
        import torch

        if _d2l_classes(obj, None, None):
            return "d2l"
        if issubclass(obj, torch.nn.Module):
            return "torch.nn"
    if callable(obj) and getattr(obj, "__name__", "") == "lossFun":
        return "min-char-rnn"
    if callable(obj) and getattr(obj, "__name__", "") in ("rnn", "lstm", "gru"):
        return "d2l"
    raise SubjectError(f"cannot tell the convention of {obj!r}: give convention= "
                       f"({', '.join(CONVENTIONS)})")


def load(subject, convention: str | None, cell: str | None) -> Loaded:
    """Units for ``subject``: 'FILE[:NAME]' or a path, a module, a function, a class or
    factory, or a Protocol. A file given without a convention is tried under each
    (:func:`find_convention`)."""
    if cell is not None and cell not in ("rnn", "lstm", "gru"):
        raise SubjectError(f"cell {cell!r}: expected rnn, lstm or gru")
    check_convention(convention)
    cleanup, notes = [], []
    source = None
    name = None
    options = {}
    if isinstance(subject, (str, Path)):
        path, name = split_target(str(subject))
        if name is not None:  # FILE:NAME(key=value, ...): a torch.nn class's other arguments
            options = parse_options(name, split_call(str(subject))[1])
            if options and convention is None:
                convention = "torch.nn"  # only a torch.nn module class is given arguments
            if options and convention != "torch.nn":
                raise SubjectError(f"{name}(...): constructor arguments are read for a torch.nn "
                                   f"module class only, not under the {convention} convention")
        directory = str(path.resolve().parent)
        sys.path.insert(0, directory)
        cleanup.append(lambda: sys.path.remove(directory) if directory in sys.path else None)
        try:
            script = convention == "min-char-rnn" or (convention is None and _min_char_script(path, name))
            obj, notes = import_file(path, script=script)
            check_name(obj, name, path.name)
        except SubjectError:
            for f in cleanup:
                f()
            raise
        source = path
        label = f"{path.name}" + (f":{name}" if name else "")
    else:
        obj = subject
        convention = convention or infer_convention(obj)
        label = getattr(obj, "__name__", None) or getattr(obj, "name", None) or type(obj).__name__
        src = inspect.getsourcefile(obj) if not isinstance(obj, Protocol) and _has_source(obj) else None
        source = Path(src) if src else None
    probed = convention is None  # a convention found is one whose units ran once
    try:
        if convention is None:
            convention, units, found, why = find_convention(obj, cell, name, source, label)
            notes.append(why)
        else:
            try:
                units, found = _units(obj, convention, cell, name, source, label, options)
            except MissingDependencyError:
                raise
            except SubjectError as exc:  # it does not fit: say how any code can be checked
                raise SubjectError(f"{exc}; {WRAP}") from None
    except BaseException:
        for f in cleanup:
            f()
        raise
    for u in units:
        if isinstance(u, MinCharUnit):
            cleanup.append(_restorer(u.module))
    loaded = Loaded(units, found, label, notes, cleanup)
    try:
        for u in units if not probed else ():
            try:
                u.probe()
            except SubjectError as exc:  # a structural misfit: the code does not fit after all
                raise SubjectError(f"{exc}; {WRAP}") from None
    except BaseException:
        loaded.close()
        raise
    return loaded


def find_convention(obj, cell, name, source, label) -> tuple:
    """The convention a module fits, tried in the registry's order by adapting its units
    and running them once on a small problem (no property runs): (convention, units, found,
    a note saying which fits and why it was taken). Several fit: the most specific
    (REGISTRY). None fits: NoConventionFitsError, with each convention's reason."""
    fits, tried = [], []
    for conv in CONVENTIONS:
        try:
            units, found = _units(obj, conv, cell, name, source, label)
            _confirm(conv, units)
        except (SubjectError, SubjectRaised) as exc:
            tried.append((conv, getattr(exc, "line", None) or str(exc)))
        else:
            fits.append((REGISTRY[conv], conv, units, found))
    fits.sort(key=lambda fit: fit[0])  # stable: the registry's order among equals
    for k, (_, conv, units, found) in enumerate(fits):
        restore = [_restorer(u.module) for u in units if isinstance(u, MinCharUnit)]
        try:  # one call on a small problem: a misfit that names cannot show (a class with
            for u in units:  # d2l's name but not its attributes) shows here
                u.probe()
        except SubjectError as exc:
            for f in restore:
                f()
            tried.append((conv, str(exc)))
            continue
        why = f"fits the {conv} convention: {', '.join(found)} found (--convention left out)"
        others = [c for _, c, _, _ in fits[k + 1:]]
        if others:
            why += (f"; it fits {', '.join(others)} too, and {conv} is the more specific (give "
                    "--convention to choose)")
        return conv, units, found, why
    tried.sort(key=lambda t: CONVENTIONS.index(t[0]))
    raise NoConventionFitsError(f"{label} fits none of rnnlab's conventions ("
                                + "; ".join(f"{c}: {why}" for c, why in tried) + f"); {WRAP}", tried)


def _confirm(convention: str, units: list) -> None:
    """Make sure of a fit that names and arity alone may grant: min-char-rnn's takes any
    function of three arguments given as FILE:NAME, so it must be lossFun or take
    min-char-rnn's targets or hprev; torch.nn's takes any class or factory, so one module
    is built (an nn.Module with torch.nn's parameters, or the fit fails)."""
    if convention == "min-char-rnn":
        unit = units[0]
        try:
            params = list(inspect.signature(unit.fn).parameters)
        except (TypeError, ValueError):
            params = []
        if unit.name != "lossFun" and not {"targets", "hprev"} & set(params):
            raise SubjectError(f"{unit.name}({', '.join(params)}) is not min-char-rnn's "
                               "lossFun(inputs, targets, hprev)")
    elif convention == "torch.nn":
        units[0].module(3, 2)


def _min_char_script(path: Path, name: str | None) -> bool:
    """Does the file define min-char-rnn's ``lossFun`` (or NAME, taking ``hprev``)? Then,
    with no convention given, it is imported as that convention imports a script, its
    training loop skipped, so that Karpathy's file can be tried at all."""
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        try:
            tree = ast.parse(_py2_prints(source))
        except (SyntaxError, ValueError):
            return False
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == (name or "lossFun"):
            return stmt.name == "lossFun" or "hprev" in [a.arg for a in stmt.args.args]
    return False


def defined_names(module) -> list:
    """The functions and classes a module defines itself (not those it imports), and its
    Protocol objects, in the order it defines them."""
    own = getattr(module, "__name__", None)
    return [n for n, v in vars(module).items() if not n.startswith("__") and (
        isinstance(v, Protocol)
        or ((inspect.isfunction(v) or inspect.isclass(v)) and getattr(v, "__module__", None) == own))]


def check_name(module, name: str | None, label: str) -> None:
    """FILE:NAME: NAME must be in the file, and a function, class or Protocol object."""
    if name is None:
        return
    if name not in vars(module):
        names = defined_names(module)
        raise SubjectError(f"{label} has no function or class {name!r}; "
                           + (f"it defines {', '.join(names)}" if names else
                              "it defines no function or class"))
    value = vars(module)[name]
    if not callable(value) and not isinstance(value, Protocol):
        kind = type(value).__name__
        what = "None" if value is None else f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"
        raise SubjectError(f"{label}:{name} is {what}, not a function or class")


def _has_source(obj) -> bool:
    try:
        return inspect.getsourcefile(obj) is not None
    except TypeError:
        return False


def _restorer(module):
    """Undo the globals min-char-rnn's checks set on the user's module."""
    saved = {k: getattr(module, k) for k in ("Wxh", "Whh", "Why", "bh", "by", "vocab_size",
                                             "hidden_size") if hasattr(module, k)}

    def restore():
        for k in ("Wxh", "Whh", "Why", "bh", "by", "vocab_size", "hidden_size"):
            if k in saved:
                setattr(module, k, saved[k])
            elif hasattr(module, k):
                delattr(module, k)
    return restore


class _Globals:
    """A function's module globals as attributes (min-char-rnn's lossFun given bare)."""

    def __init__(self, g: dict):
        object.__setattr__(self, "_g", g)

    def __getattr__(self, k):
        try:
            return self._g[k]
        except KeyError:
            raise AttributeError(k) from None

    def __setattr__(self, k, v):
        self._g[k] = v

    def __delattr__(self, k):
        del self._g[k]


def _units(obj, convention, cell, name, source, label, options=None) -> tuple[list, list]:
    if convention == "cs231n":
        if not isinstance(obj, types.ModuleType):
            raise SubjectError("the cs231n convention checks a module (a file) of functions")
        return cs231n_units(obj, cell, name, source)
    if convention == "deeplearning.ai":
        if not isinstance(obj, types.ModuleType):
            raise SubjectError("the deeplearning.ai convention checks a module (a file) of "
                               "functions")
        return dlai_units(obj, cell, name, source)
    if convention == "d2l":
        classes = _d2l_classes(obj, cell, name)
        if classes:
            from .d2l_class_units import D2LClassUnit  # lazy: torch, for torch subjects only

            return ([D2LClassUnit(cls, c, n, source) for n, cls, c in classes],
                    [n for n, _, _ in classes])
        if isinstance(obj, types.ModuleType):
            pairs = find_d2l(obj, cell, name, source)
        else:
            fname = getattr(obj, "__name__", "subject")
            c = cell or next((c for c in ("lstm", "gru", "rnn") if c in fname.lower()), None)
            if c is None:
                raise SubjectError(f"cannot tell whether {fname} is an rnn, lstm or gru: give cell=")
            _check_signature(obj, ("inputs", "state", "params"), fname, "d2l")
            pairs = [(fname, obj, c)]
        units = []
        for n, fn, c in pairs:
            if _uses_torch(fn):
                _need_torch(f"{n} (it uses torch)")
                from .torch_units import (
                    D2LTorchUnit,  # lazy: torch, for torch subjects only
                )

                units.append(D2LTorchUnit(fn, c, n, source))
            else:
                units.append(D2LUnit(fn, c, n, source))
        return units, [n for n, _, _ in pairs]
    if convention == "torch.nn":
        _need_torch("the torch.nn convention")
        from .torch_units import TorchNNUnit, infer_cell, is_module_class  # lazy: torch

        if isinstance(obj, types.ModuleType):
            if name is not None:
                factory = getattr(obj, name, None)
                if not callable(factory):
                    raise SubjectError(f"{source.name if source else label} has no class or factory "
                                       f"{name!r} (torch.nn convention: {name}(input_size, hidden_size))")
                fname = name
            else:
                classes = [n for n, v in vars(obj).items()
                           if is_module_class(v) and v.__module__ == obj.__name__]
                if len(classes) != 1:
                    what = ("no nn.Module class" if not classes else
                            f"several nn.Module classes ({', '.join(classes)})")
                    raise SubjectError(f"{source.name if source else label} defines {what}: name the "
                                       f"one to check, {source.name if source else 'FILE'}:NAME "
                                       "(torch.nn convention)")
                fname = classes[0]
                factory = getattr(obj, fname)
        else:
            factory, fname = obj, getattr(obj, "__name__", type(obj).__name__)
        check_accepted(factory, fname, options or {})
        probe = TorchNNUnit(factory, "rnn", fname, source, options)  # only to call the factory safely
        c = infer_cell(factory, fname, cell, lambda f, D, H: _construct(probe, f, fname, D, H))
        return [TorchNNUnit(factory, c, fname, source, options)], [fname]
    if convention == "torch-tutorial":
        _need_torch("the torch-tutorial convention")
        if cell not in (None, "rnn"):
            raise SubjectError(f"PyTorch's char-RNN tutorial module is an RNN; --cell {cell} does "
                               "not apply")
        from .torch_tutorial import TutorialUnit, find_tutorial  # lazy: torch

        if isinstance(obj, types.ModuleType):
            fname, factory = find_tutorial(obj, name, source.name if source else label)
        else:
            factory, fname = obj, getattr(obj, "__name__", type(obj).__name__)
        return [TutorialUnit(factory, fname, source)], [fname]
    if convention == "min-char-rnn":
        if cell not in (None, "rnn"):
            raise SubjectError(f"min-char-rnn is an RNN; --cell {cell} does not apply")
        fname = name or "lossFun"
        if isinstance(obj, types.ModuleType):
            fn, module = getattr(obj, fname, None), obj
        else:
            fn, module = obj, _Globals(getattr(obj, "__globals__", {}))
            fname = getattr(obj, "__name__", fname)
        if not callable(fn):
            raise SubjectError(f"{fname}(inputs, targets, hprev) not found in "
                               f"{source.name if source else label} (min-char-rnn convention)")
        weights = weights_passing(fn, fname)
        extra = (() if weights is None else MIN_CHAR_GLOBALS if weights == "arguments"
                 else (weights,))
        if weights != "arguments":  # by name, in any order: weights_passing has read them
            _check_signature(fn, ("inputs", "targets", "hprev", *extra), fname, "min-char-rnn")
        return [MinCharUnit(module, fn, fname, source)], [fname]
    # protocol
    target = obj
    if isinstance(obj, types.ModuleType):
        if name is not None:
            target = getattr(obj, name, None)
        else:
            found = [n for n, v in vars(obj).items() if isinstance(v, Protocol)]
            if len(found) != 1:
                raise SubjectError(f"{label} defines {'no' if not found else 'several'} "
                                   "rnnlab.testing.Protocol object(s): name one, FILE:NAME")
            target = getattr(obj, found[0])
        if callable(target) and not isinstance(target, Protocol):
            target = _protocol_factory(target, name or label, source)
    if not isinstance(target, Protocol):
        raise SubjectError(f"{name or label} is not an rnnlab.testing.Protocol (protocol convention)")
    if cell is not None and cell != target.cell:
        raise SubjectError(f"the Protocol's cell is {target.cell}, not {cell}")
    return [ProtocolUnit(target, source)], [target.name]


def _protocol_factory(factory, name: str, source):
    """What a function named as the Protocol returns, called without arguments; one that
    needs arguments (a forward of the student's own) is no Protocol factory, and is not
    called."""
    try:
        needs = [p.name for p in inspect.signature(factory).parameters.values()
                 if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD,
                                                        p.KEYWORD_ONLY)]
    except (TypeError, ValueError):  # a builtin: let the call decide
        needs = []
    if needs:
        raise SubjectError(f"{name} is not an rnnlab.testing.Protocol, nor a function that makes one "
                           f"without arguments: it takes ({', '.join(needs)}) (protocol convention)")
    try:
        return factory()
    except Exception as exc:  # noqa: BLE001 (the subject's own error, said in one line)
        raise SubjectError(f"{name}() raised {exc_text(exc)}{where(exc, source)} (protocol "
                           "convention: a function that makes the Protocol)") from None


def _d2l_classes(obj, cell, name) -> list:
    """d2l's 2nd-edition cell classes (RNNScratch, LSTMScratch, GRUScratch: nn.Module classes
    built as (num_inputs, num_hiddens)) where the subject is one or names one, or where a
    file defines them and none of the 1st edition's functions rnn / lstm / gru."""
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        return []
    if isinstance(obj, types.ModuleType):
        if name is not None and not isinstance(getattr(obj, name, None), type):
            return []
        if name is None and any(callable(getattr(obj, n, None)) and not isinstance(getattr(obj, n), type)
                                for n in ("rnn", "lstm", "gru")):
            return []
        if "torch" not in sys.modules:  # a file that never imported torch defines no nn.Module
            return []
        from .d2l_class_units import find_classes  # lazy: torch

        return find_classes(obj, cell, name)
    if isinstance(obj, type) and "torch" in sys.modules:
        from .d2l_class_units import infer_class_cell, is_scratch_class  # lazy: torch

        if is_scratch_class(obj):
            n = obj.__name__
            c = infer_class_cell(obj, n, cell)
            if c is None:
                raise SubjectError(f"cannot tell whether {n} is an rnn, lstm or gru: give cell=")
            return [(n, obj, c)]
    return []


def _construct(unit, factory, fname, D, H):
    options = getattr(unit, "options", {})
    try:
        return unit.call(built(fname, options, D, H), lambda: factory(D, H, **options))
    except SubjectRaised as exc:
        raise SubjectError(f"cannot construct {exc.line} (torch.nn convention: "
                           f"{fname}(input_size, hidden_size){missing_hint(factory, fname, options)})"
                           ) from None
