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

from ..errors import TORCH_INSTALL, SubjectError
from . import adapters
from .adapters import SubjectRaised, _check_signature, exc_text, one_line, where
from .cs231n_units import CS231N_NAMES, cs231n_units
from .d2l_units import D2LUnit, find_d2l
from .dlai_units import DLAI_NAMES, dlai_units
from .minchar_units import MIN_CHAR_GLOBALS, MinCharUnit, weights_passing
from .module_args import built, check_accepted, missing_hint, parse_options, split_call
from .protocol_units import Protocol, ProtocolUnit

CONVENTIONS = ("cs231n", "d2l", "torch.nn", "min-char-rnn", "deeplearning.ai", "protocol",
               "torch-tutorial")
_COUNTER = itertools.count()


def split_target(target: str) -> tuple[Path, str | None]:
    """'solution.py:MyLSTM' -> (Path('solution.py'), 'MyLSTM'); a path that exists as given
    wins over a split at its last colon."""
    p = Path(target)
    if p.exists() or ":" not in target:
        return p, None
    target, _ = split_call(target)  # FILE:NAME(key=value, ...): the options, read by load()
    path, name = target.rsplit(":", 1)
    if not name.isidentifier():
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
        raise SubjectError(f"{what} needs PyTorch, which is not installed ({TORCH_INSTALL})") from None


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
    factory, or a Protocol."""
    if cell is not None and cell not in ("rnn", "lstm", "gru"):
        raise SubjectError(f"cell {cell!r}: expected rnn, lstm or gru")
    cleanup, notes = [], []
    source = None
    name = None
    options = {}
    if isinstance(subject, (str, Path)):
        path, name = split_target(str(subject))
        if convention is None:
            raise SubjectError("give the convention of a file: one of " + ", ".join(CONVENTIONS))
        if convention not in CONVENTIONS:
            raise SubjectError(f"unknown convention {convention!r}; expected one of {', '.join(CONVENTIONS)}")
        if name is not None:
            options = parse_options(name, split_call(str(subject))[1])
            if options and convention != "torch.nn":
                raise SubjectError(f"{name}(...): constructor arguments are read for a torch.nn "
                                   f"module class only, not under the {convention} convention")
        directory = str(path.resolve().parent)
        sys.path.insert(0, directory)
        cleanup.append(lambda: sys.path.remove(directory) if directory in sys.path else None)
        try:
            obj, notes = import_file(path, script=convention == "min-char-rnn")
        except SubjectError:
            for f in cleanup:
                f()
            raise
        source = path
        label = f"{path.name}" + (f":{name}" if name else "")
    else:
        obj = subject
        convention = convention or infer_convention(obj)
        if convention not in CONVENTIONS:
            raise SubjectError(f"unknown convention {convention!r}; expected one of {', '.join(CONVENTIONS)}")
        label = getattr(obj, "__name__", None) or getattr(obj, "name", None) or type(obj).__name__
        src = inspect.getsourcefile(obj) if not isinstance(obj, Protocol) and _has_source(obj) else None
        source = Path(src) if src else None
    try:
        units, found = _units(obj, convention, cell, name, source, label, options)
    except BaseException:
        for f in cleanup:
            f()
        raise
    for u in units:
        if isinstance(u, MinCharUnit):
            cleanup.append(_restorer(u.module))
    loaded = Loaded(units, found, label, notes, cleanup)
    try:
        for u in units:
            u.probe()
    except BaseException:
        loaded.close()
        raise
    return loaded


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
            target = target()
    if not isinstance(target, Protocol):
        raise SubjectError(f"{name or label} is not an rnnlab.testing.Protocol (protocol convention)")
    if cell is not None and cell != target.cell:
        raise SubjectError(f"the Protocol's cell is {target.cell}, not {cell}")
    return [ProtocolUnit(target, source)], [target.name]


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
