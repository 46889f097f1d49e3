"""A module class's other constructor arguments, written in the target: ``FILE:NAME(key=value, ...)``.

rnnlab builds a torch.nn subject as ``NAME(input_size, hidden_size)``, as ``nn.LSTM`` is
built; a class whose constructor takes more (``output_size``, ``batch_first=True``,
``bias=True``) is given them in the target, in Python's own call syntax::

    rnnlab verify solution.py:CharRNN(output_size=5, batch_first=True) --convention torch.nn

They belong to the class they are written after, so several targets checked at once each
keep their own, and they travel with the target to the process that runs the code. Only
keyword arguments with literal values (numbers, strings, True/False/None, tuples and lists
of them) are read: the first two arguments are rnnlab's, and nothing in a target is run.
"""

from __future__ import annotations

import ast
import inspect
import re

from ..errors import SubjectError

TARGET = re.compile(r"^(?P<path>.*):(?P<name>[A-Za-z_]\w*)(?P<args>\(.*)?$", re.DOTALL)
# what the spec is: one layer, one direction, with biases; options that make anything else
REFUSED = {"num_layers": (1, "rnnlab's spec is one recurrent layer"),
           "bidirectional": (False, "rnnlab's spec runs forwards only"),
           "bias": (True, "rnnlab's spec adds a bias to every gate"),
           "proj_size": (0, "rnnlab's spec has no projection of the hidden state")}


def split_call(target: str) -> tuple[str, str | None]:
    """'sol.py:Net(a=1)' -> ('sol.py:Net', '(a=1)'); a target without options -> (target, None)."""
    m = TARGET.match(target)
    if m is None or m.group("args") is None:
        return target, None
    return f"{m.group('path')}:{m.group('name')}", m.group("args")


def parse_options(name: str, args: str | None) -> dict:
    """'(output_size=5, batch_first=True)' -> {'output_size': 5, 'batch_first': True}; a
    positional argument, a value that is not a literal or a key given twice is refused."""
    if args is None:
        return {}
    call = f"{name}{args}"
    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError as exc:
        raise SubjectError(f"{call}: not a call rnnlab can read ({exc.msg}); write "
                           f"{name}(key=value, ...)") from None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise SubjectError(f"{call}: expected {name}(key=value, ...)")
    if node.args:
        raise SubjectError(f"{call}: give the constructor's other arguments by keyword; rnnlab "
                           f"passes the first two, {name}(input_size, hidden_size, ...)")
    out = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise SubjectError(f"{call}: ** is not read; write each argument as key=value")
        if kw.arg in out:
            raise SubjectError(f"{call}: {kw.arg} is given twice")
        if kw.arg in ("input_size", "hidden_size"):
            raise SubjectError(f"{call}: rnnlab chooses {kw.arg} for every example it draws; "
                               "leave it out")
        try:
            out[kw.arg] = ast.literal_eval(kw.value)
        except ValueError:
            raise SubjectError(f"{call}: {kw.arg}={ast.unparse(kw.value)} is not a literal "
                               "(a number, a string, True, False or None)") from None
    for key, (value, why) in REFUSED.items():
        if key in out and out[key] != value:
            raise SubjectError(f"{call}: {key}={out[key]!r} cannot be checked: {why} "
                               f"({key}={value!r})")
    return out


def check_accepted(factory, name: str, options: dict) -> None:
    """Refuse an option the constructor does not take, by name, before building anything."""
    if not options:
        return
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    params = sig.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    known = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in options if k not in known[2:]]
    if unknown:
        raise SubjectError(f"{name} takes no argument {', '.join(unknown)}; its constructor is "
                           f"{name}{sig}")


def missing_hint(factory, name: str, options: dict) -> str:
    """'; give its other arguments as FILE:NAME(output_size=...)' where the constructor
    needs arguments beyond the first two that the target does not give, else ''."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return ""
    need = [p.name for p in list(sig.parameters.values())[2:]
            if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name not in options]
    if not need:
        return ""
    return (f"; give its other arguments in the target, FILE:{name}("
            + ", ".join(f"{n}=..." for n in need) + ")")


def built(name: str, options: dict, D, H) -> str:
    """'Net(3, 2, batch_first=True)': how the module was built, for the report (D and H
    may be the words input_size, hidden_size)."""
    extra = "".join(f", {k}={v!r}" for k, v in options.items())
    return f"{name}({D}, {H}{extra})"
