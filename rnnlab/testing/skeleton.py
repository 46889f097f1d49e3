"""A Protocol skeleton for a file that fits no convention: Python to edit, filled in with
the file's own functions.

Read off the file's syntax tree only (nothing of it runs here): the functions and classes
it defines, their parameters and what they return. The forward is the function whose name
says ``forward`` (the whole sequence before a step), the backward its ``backward``; the
cell is read off their names. Each parameter is mapped to what rnnlab gives a
:class:`~rnnlab.testing.Protocol` by its name where the name says (``x`` is X, ``h0`` the
initial state, ``cache`` the forward's cache); every other parameter is taken for one of
your weights and gets a line of the layout, and each guess carries a TODO.

    protocol_skeleton(path, text) -> the text of ``<stem>_protocol.py``
"""

from __future__ import annotations

import ast
from pathlib import Path

from .rules import GATES

INPUTS = {"x", "X", "xs", "inputs", "input", "x_seq", "xt", "x_t"}
STATES = {"h0", "h", "prev_h", "hprev", "h_prev", "a0", "a_prev", "H", "H0", "state", "hx", "h_0"}
CELLS = {"c0", "prev_c", "c_prev", "c", "C", "C0", "c_0"}
PARAMS = {"params", "parameters", "weights", "p", "W"}
UPSTREAM = {"dh", "dout", "dnext_h", "dHs", "da", "dh_all", "dy", "grad_output"}
ORDER = {"rnn": "h", "lstm": "ifog", "gru": "zrh"}  # a guess, as CS231n and d2l order them


def _defs(tree) -> tuple[list, list]:
    """(functions, classes) at the file's top level, in order."""
    fns = [s for s in tree.body if isinstance(s, ast.FunctionDef)]
    classes = [s for s in tree.body if isinstance(s, ast.ClassDef)]
    return fns, classes


def _returned(fn) -> list:
    """The names in the function's last ``return a, b, c`` (empty where it is not names)."""
    rets = [n for n in ast.walk(fn) if isinstance(n, ast.Return) and n.value is not None]
    if not rets:
        return []
    v = rets[-1].value
    elts = v.elts if isinstance(v, ast.Tuple) else [v]
    return [e.id if isinstance(e, ast.Name) else None for e in elts]


def _pick(fns, word: str, cell: str | None):
    """The function named like ``word`` (forward/backward), of ``cell`` where several are,
    the whole sequence's before a step's."""
    named = [f for f in fns if word in f.name.lower()]
    if cell is not None:
        named = [f for f in named if cell in f.name.lower()] or named
    named.sort(key=lambda f: ("step" in f.name or "cell" in f.name.lower()))
    return named[0] if named else None


def _cell_of(names) -> str | None:
    for name in names:
        for c in ("lstm", "gru", "rnn"):
            if c in name.lower():
                return c
    return None


def _weight_block(arg: str, cell: str) -> str:
    """The layout line for a weight parameter, guessed from its name (Wx, Wh, b, Wxh...)."""
    low = arg.lower()
    order = ORDER[cell]
    if low.startswith("b"):
        return f'fused("b_", "{order}", CELL)'
    if "x" in low:
        return f'fused("W_x", "{order}", CELL)'
    return f'fused("W_h", "{order}", CELL)'


def _call_args(fn, weights: list, upstream: bool) -> list[tuple[str, str]]:
    """(what rnnlab gives it, a comment) for each parameter of ``fn``, by its name; a name
    that says nothing is taken for a weight and added to ``weights``."""
    out = []
    for a in [a.arg for a in fn.args.args if a.arg != "self"]:
        if a in INPUTS:
            out.append(("X", ("TODO: X is (T, B, D) time-major; X.transpose(1, 0, 2) if yours "
                              "is (B, T, D)")))
        elif a in STATES:
            out.append(("state[0]", "H_0 (B, H)"))
        elif a in CELLS:
            out.append(("state[1]", "C_0 (B, H), an lstm's"))
        elif a in PARAMS:
            out.append(("params", "TODO: your dict of weights, named as LAYOUT says"))
        elif a == "cache":
            out.append(("self.cache(params, X, state)", "your forward's cache"))
        elif upstream and a in UPSTREAM:
            out.append(("dHs", ("TODO: dHs is (T, B, H); add dstate[0] to its last step if "
                                "your backward takes no separate final-state gradient")))
        elif upstream and a.startswith("d"):
            out.append(("dstate[0]", f"TODO: the final state's gradient, if that is what {a} is"))
        else:
            if a not in weights:
                weights.append(a)
            out.append((f'params["{a}"]', ""))
    return out


def _call(mod: str, fn, weights: list, upstream: bool, indent: str) -> str:
    """``mod.fn(`` one argument a line, each with its comment ``)``."""
    args = _call_args(fn, weights, upstream)
    if not args:
        return f"{mod}.{fn.name}()"
    inner = "".join(f"\n{indent}    {expr},{'  # ' + note if note else ''}" for expr, note in args)
    return f"{mod}.{fn.name}({inner}\n{indent})"


def _placed(backward, weights: list, cell: str) -> list[str]:
    """Lines that put what ``backward`` returns where the Protocol wants it, by the names
    of its ``return`` (dx is dX, dh0 the initial state's, dWx the gradient of Wx)."""
    ret = _returned(backward)
    if len(ret) < 2 or None in ret:
        return [f"        # TODO: what {backward.name} returns, placed below",
                "        named = out if isinstance(out, dict) else {}",
                '        grads = {k: named.get(f"d{k}", np.zeros_like(v)) for k, v in params.items()}  # TODO',
                '        dX = named.get("dx", np.zeros_like(X))  # TODO: (T, B, D), time-major',
                "        dstate_0 = tuple(np.zeros_like(s) for s in state)  # TODO",
                "        return grads, dX, dstate_0"]
    used = set()

    def find(kinds) -> str | None:
        for r in ret:
            if r.startswith("d") and r[1:] in kinds and r not in used:
                used.add(r)
                return r
        return None

    lines = [f"        {', '.join(ret)} = out  # what {backward.name} returns"]
    grads = []
    for w in weights:
        g = find({w})
        grads.append(f'"{w}": {g}' if g else f'"{w}": np.zeros_like(params["{w}"])  # TODO')
    dx = find(INPUTS)
    states = [find(STATES)] + ([find(CELLS)] if cell == "lstm" else [])
    if grads:
        lines.append("        grads = {" + ", ".join(grads) + "}")
    else:
        lines.append("        grads = {}  # TODO: {your weight's name: its gradient}")
    lines.append(f"        dX = {dx}  # TODO: (T, B, D), time-major" if dx else
                 "        dX = np.zeros_like(X)  # TODO: the inputs' gradient, (T, B, D)")
    parts = [s if s else f"np.zeros_like(state[{k}])" for k, s in enumerate(states)]
    todo = "" if all(states) else "  # TODO: the initial state's gradient"
    lines.append(f"        dstate_0 = ({', '.join(parts)},){todo}")
    rest = [r for r in ret if r not in used]
    if rest:
        lines.append(f"        # TODO: not placed above: {', '.join(rest)}")
    lines.append("        return grads, dX, dstate_0")
    return lines


def protocol_skeleton(path: Path, text: str) -> str:
    """The text of a module defining ``subject``, an rnnlab.testing.Protocol that calls the
    functions of ``path`` (whose source is ``text``), each guess marked TODO."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        tree = ast.Module(body=[], type_ignores=[])
    fns, classes = _defs(tree)
    names = [f.name for f in fns] + [c.name for c in classes]
    cell = _cell_of(n for n in names if "forward" in n.lower()) or _cell_of(names)
    forward = _pick(fns, "forward", cell)
    backward = _pick(fns, "backward", cell or (_cell_of([forward.name]) if forward else None))
    cell = cell or "rnn"
    stem = path.stem
    mod = stem if stem.isidentifier() else "yours"
    cls = "".join(w.capitalize() for w in stem.replace("-", "_").split("_") if w) or "Yours"
    cls = cls if cls.isidentifier() else "Yours"
    weights: list = []
    lines = [
        f'"""{path.name} wrapped in an rnnlab.testing.Protocol: edit each TODO, then check it with',
        "",
        f"    rnnlab verify {stem}_protocol.py --convention protocol",
        "",
        "rnnlab calls forward(params, X, state) and backward(params, X, state, dHs, dstate):",
        "params {your name: array} laid out as LAYOUT says, X (T, B, D) time-major, state",
        "(H_0,) for an rnn or gru and (H_0, C_0) for an lstm, each (B, H); dHs (T, B, H) and",
        "dstate are the gradients of the outputs and of the final state (docs/verify.md, 'Wrap",
        "your code in a Protocol').",
        '"""',
        "",
    ]
    if mod == stem:  # numpy and the wrapped file: one block, sorted, as isort has it
        lines += sorted(["import numpy as np", f"import {stem}  # {path.name}: keep this file beside it"],
                        key=lambda ln: ln.split()[1])
        lines += ["", "from rnnlab.testing import Protocol, fused"]
    else:  # not a module name (min-char-rnn.py): imported by its path
        lines += ["import importlib.util",
                  "import pathlib",
                  "",
                  "import numpy as np",
                  "",
                  "from rnnlab.testing import Protocol, fused",
                  "",
                  f'_spec = importlib.util.spec_from_file_location("yours", pathlib.Path(__file__).with_name("{path.name}"))',
                  "yours = importlib.util.module_from_spec(_spec)",
                  "_spec.loader.exec_module(yours)"]
    lines += ["", f'CELL = "{cell}"  # TODO: rnn, lstm or gru (read off the names in {path.name})', ""]
    body = []
    if forward is not None:
        ret = _returned(forward)
        body += ["    def _forward(self, params, X, state):",
                 f"        return {_call(mod, forward, weights, False, '        ')}",
                 "",
                 "    def forward(self, params, X, state):",
                 '        """-> (Hs (T, B, H) time-major, the final state: (H_T,), or (H_T, C_T) for an lstm)"""',
                 "        out = self._forward(params, X, state)",
                 f"        # {forward.name} returns ({', '.join(r or '?' for r in ret)})"
                 if ret else f"        # TODO: what {forward.name} returns",
                 "        Hs = out[0] if isinstance(out, tuple) else out  # TODO: as (T, B, H), time-major",
                 "        return Hs, (Hs[-1], np.zeros_like(Hs[-1]))  # TODO: the final cell state C_T"
                 if cell == "lstm" else "        return Hs, (Hs[-1],)",
                 "",
                 "    def cache(self, params, X, state):",
                 "        out = self._forward(params, X, state)",
                 "        return out[-1] if isinstance(out, tuple) else None  # TODO: your cache",
                 ""]
    else:
        candidates = ", ".join(names) or "none"
        body += ["    def forward(self, params, X, state):",
                 '        """-> (Hs (T, B, H) time-major, the final state: (H_T,), or (H_T, C_T) for an lstm)"""',
                 f"        # TODO: call your forward here ({path.name} defines: {candidates})",
                 '        raise NotImplementedError("the forward of the wrapped code")',
                 ""]
    if backward is not None:
        call = _call(mod, backward, weights, True, "        ")
        body += ["    def backward(self, params, X, state, dHs, dstate):",
                 '        """-> (grads {name: array, keyed like params}, dX (T, B, D), dstate_0 like state)"""',
                 f"        out = {call}"]
        body += _placed(backward, weights, cell)
        body.append("")
    layout = ["LAYOUT = {  # your weights by your names: which of rnnlab's arrays each stacks, in which order"]
    if weights:
        layout += [f'    "{w}": {_weight_block(w, cell)},  # TODO: check' for w in weights]
        layout.append("}")
    else:
        default = ", ".join(f"{k}{g}" for g in GATES[cell] for k in ("W_x", "W_h", "b_"))
        layout = [f"LAYOUT = None  # rnnlab's own names: params holds {default}; TODO: your names,",
                  '#   e.g. {"Wx": fused("W_x", "' + ORDER[cell] + '", CELL), ...}']
    lines += layout + ["", "", f"class {cls}:",
                       f'    """{path.name}\'s functions behind the calls rnnlab makes."""', ""]
    lines += body
    lines += ["", f"_wrapped = {cls}()",
              (f"subject = Protocol(CELL, _wrapped.forward, "
               f"{'_wrapped.backward' if backward is not None else 'None'}, layout=LAYOUT, "
               f'name="{stem}")')]
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["protocol_skeleton"]
