"""A GRU or an LSTM built from one ``nn.Linear`` per gate and per source, as tutorials write it::

    self.x2r, self.h2r = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)
    self.x2z, self.h2z = ...;  self.x2n, self.h2n = ...
    r = torch.sigmoid(self.x2r(x) + self.h2r(h))
    z = torch.sigmoid(self.x2z(x) + self.h2z(h))
    n = torch.tanh(self.x2n(x) + r * self.h2n(h))      # torch.nn's GRU form (b_hn inside)
    n = torch.tanh(self.x2n(x) + self.h2n(r * h))      # or d2l's form
    h = (1 - z) * n + z * h

Which layer reads what is told by its shape (``in_features`` input_size or hidden_size,
``out_features`` hidden_size) and which gate it feeds by its name, in the spellings students
use: ``x2r``/``h2r``, ``W_xr``/``W_hr`` (``W_ir``/``W_hr`` as torch's docs write it),
``reset_x``/``reset_h``, ``x_reset``/``h_reset``; gates r/reset, z/u/update, n/h/c/g/candidate/new
(GRU) and i/input, f/forget, g/c/candidate/cell, o/output (LSTM). Each weight is then one
spec array transposed (``x2r.weight = W_xrᵀ``); the two biases of a gate sum to the spec's
``b_r`` (as torch.nn's ``bias_ih`` and ``bias_hh`` do), and in torch.nn's form the candidate's
hidden-side bias is ``b_hn``, inside the reset product.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap

import torch

from .conventions import linear_gates_layout, parameter_gates_layout

# the spec's gate letter for each spelling, per cell; the first letter is the one the
# report uses (torch.nn's: r, z, n; i, f, g, o)
GATE_WORDS = {
    "gru": {"r": ("r", "reset"), "z": ("z", "u", "update"),
            "h": ("n", "h", "c", "g", "candidate", "cand", "new")},
    "lstm": {"i": ("i", "input", "in"), "f": ("f", "forget"),
             "c": ("g", "c", "candidate", "cand", "cell"), "o": ("o", "output", "out")},
}
LABELS = {"gru": {"r": "r", "z": "z", "h": "n"}, "lstm": {"i": "i", "f": "f", "c": "g", "o": "o"}}
SOURCES = {"x": ("x", "i", "in", "inp", "input", "ih"), "h": ("h", "hid", "hidden", "hh", "prev")}
_SRC = "|".join(sorted({w for ws in SOURCES.values() for w in ws}, key=len, reverse=True))
# (source group, gate group) of each spelling: x2r, W_xr, reset_x, x_reset
PATTERNS = [
    (re.compile(rf"^(?:w_?)?({_SRC})2([a-z]+)$"), 1, 2),
    (re.compile(rf"^w_?({_SRC})_?([a-z])$"), 1, 2),
    (re.compile(rf"^(?:w_)?([a-z]+)_({_SRC})$"), 2, 1),
    (re.compile(rf"^(?:w_)?({_SRC})_([a-z]+)$"), 1, 2),
]


def _side(word: str) -> str | None:
    return next((s for s, words in SOURCES.items() if word in words), None)


def _gates_of(name: str, side: str, cell: str) -> set:
    """The spec gates a layer's attribute name can mean, read from the side it is on."""
    leaf = name.split(".")[-1].lower()
    found = set()
    for pattern, s, g in PATTERNS:
        m = pattern.match(leaf)
        if m is None or _side(m.group(s)) != side:
            continue
        found |= {gate for gate, words in GATE_WORDS[cell].items() if m.group(g) in words}
    return found


class GateLinears:
    """{spec gate: (input-side layer, hidden-side layer)} of one module, with which has a bias."""

    def __init__(self, cell: str, gates: dict, biased: dict):
        self.cell, self.gates, self.biased = cell, gates, biased

    def forms(self) -> tuple:
        """The GRU forms these layers can hold: torch.nn's needs both candidate biases
        (b_h and b_hn); d2l's one at least."""
        if self.cell != "gru":
            return ("d2l",)
        x, h = self.gates["h"]
        return ("torch", "d2l") if self.biased[x] and self.biased[h] else ("d2l",)

    def layout(self, form: str) -> dict:
        """The subject's arrays (``conventions.linear_gates_layout``)."""
        return linear_gates_layout(self.cell, self.gates, self.biased, form)

    def note(self, D: int, H: int, form: str) -> str:
        pairs = ", ".join(f"{x}/{h} as gate {LABELS[self.cell][g]}" for g, (x, h) in self.gates.items())
        text = (f"one nn.Linear per gate and source is read as the spec's per-gate weights "
                f"(in_features {D} the input, {H} the hidden state): {pairs}")
        if self.cell == "gru":
            x, h = (n.split(".")[-1] for n in self.gates["h"])
            text += (f"; the candidate is read in torch.nn's form, tanh({x}(x) + r * {h}(h)), "
                     f"{h}.bias (b_hn) inside the reset product"
                     if form == "torch" else
                     f"; the candidate is read in d2l's form, tanh({x}(x) + {h}(r * h))")
        return text


def gate_linears(m: torch.nn.Module, D: int, H: int) -> GateLinears | None:
    """The per-gate nn.Linear layers of a module built for input_size D != hidden_size H,
    or None where they are not 3 (GRU) or 4 (LSTM) pairs whose names tell their gates."""
    if D == H:
        return None
    sides = {"x": [], "h": []}
    biased = {}
    for n, mod in m.named_modules():
        if isinstance(mod, torch.nn.Linear) and mod.out_features == H and mod.in_features in (D, H):
            sides["x" if mod.in_features == D else "h"].append(n)
            biased[n] = mod.bias is not None
    if len(sides["x"]) != len(sides["h"]) or len(sides["x"]) not in (3, 4):
        return None
    cell = "gru" if len(sides["x"]) == 3 else "lstm"
    gates = {}
    for side, names in sides.items():
        for n in names:
            found = _gates_of(n, side, cell)
            if len(found) != 1:
                return None
            (g,) = found
            if g in gates and side in gates[g]:
                return None
            gates.setdefault(g, {})[side] = n
    if len(gates) != len(GATE_WORDS[cell]):
        return None
    pairs = {g: (gates[g]["x"], gates[g]["h"]) for g in GATE_WORDS[cell]}
    if not all(biased[x] or biased[h] for x, h in pairs.values()):
        return None
    return GateLinears(cell, pairs, biased)


# a bias's name: its source and gate (b_ii, b_hi, b_xi), else its gate alone (b_i, b_r)
BIAS_PATTERNS = [re.compile(rf"^b_?({_SRC})_?([a-z])$"), re.compile(r"^b_?([a-z]+)$")]


def _bias_of(name: str, cell: str) -> tuple | None:
    """(side or None, spec gate) that a bias's attribute name says, or None."""
    leaf = name.split(".")[-1].lower()
    m = BIAS_PATTERNS[0].match(leaf)
    if m is not None:
        gate = [g for g, words in GATE_WORDS[cell].items() if m.group(2) in words]
        if gate and _side(m.group(1)) is not None:
            return _side(m.group(1)), gate[0]
    m = BIAS_PATTERNS[1].match(leaf)
    if m is not None:
        gate = [g for g, words in GATE_WORDS[cell].items() if m.group(1) in words]
        if gate:
            return None, gate[0]
    return None


class GateParams:
    """{spec gate: (input-side weight, hidden-side weight)} and their biases, of a module
    that holds one nn.Parameter per gate and source (torch's equations written out:
    ``W_ii``, ``W_hi``, ``b_ii``, ``b_hi``, ...). The same interface as GateLinears."""

    def __init__(self, cell: str, gates: dict, biases: dict, transpose: bool):
        self.cell, self.gates, self.biases, self.transpose = cell, gates, biases, transpose

    def forms(self) -> tuple:
        """torch.nn's GRU form needs the candidate's two biases (b_h and b_hn)."""
        if self.cell != "gru":
            return ("d2l",)
        return ("torch", "d2l") if len(self.biases["h"]) == 2 else ("d2l",)

    def layout(self, form: str) -> dict:
        return parameter_gates_layout(self.cell, self.gates, self.biases, self.transpose, form)

    def note(self, D: int, H: int, form: str) -> str:
        shape = f"({H}, {D})" if self.transpose else f"({D}, {H})"
        pairs = ", ".join(
            "/".join([x, h, *(self.biases[g][s] for s in ("x", "h") if s in self.biases[g])])
            + f" as gate {LABELS[self.cell][g]}" for g, (x, h) in self.gates.items())
        text = (f"one nn.Parameter per gate and source is read as the spec's per-gate weights "
                f"(input-side weights {shape}, {'used transposed, x @ W.T' if self.transpose else 'x @ W'}"
                f"): {pairs}")
        if self.cell == "gru":
            text += ("; the candidate is read in torch.nn's form, its hidden-side bias (b_hn) "
                     "inside the reset product" if form == "torch" else
                     "; the candidate is read in d2l's form, the reset gate before the matmul")
        return text


def gate_parameters(m: torch.nn.Module, D: int, H: int) -> GateParams | None:
    """The per-gate nn.Parameter weights and biases of a module built for input_size D !=
    hidden_size H, or None where they are not 3 (GRU) or 4 (LSTM) pairs whose names tell
    their gates, stored (H, D) as torch's are (x @ W.T), each gate with a bias. Parameters
    of other shapes (an output layer) are left alone. Weights stored (D, H) with d2l's
    names are the d2l convention's classes (LSTMScratch), not read here."""
    if D == H:
        return None
    named = list(m.named_parameters())
    x_side = [(n, tuple(p.shape)) for n, p in named if tuple(p.shape) == (H, D)]
    h_side = [n for n, p in named if tuple(p.shape) == (H, H)]
    if len(x_side) != len(h_side) or len(x_side) not in (3, 4) \
            or any(tuple(p.shape) == (D, H) for _, p in named):
        return None
    cell = "gru" if len(x_side) == 3 else "lstm"
    gates = {}
    for side, names in (("x", [n for n, _ in x_side]), ("h", h_side)):
        for n in names:
            found = _gates_of(n, side, cell)
            if len(found) != 1:
                return None
            (g,) = found
            if side in gates.setdefault(g, {}):
                return None
            gates[g][side] = n
    if len(gates) != len(GATE_WORDS[cell]) or not all(len(v) == 2 for v in gates.values()):
        return None
    biases = {g: {} for g in GATE_WORDS[cell]}
    for n, p in named:
        if tuple(p.shape) != (H,):
            continue
        read = _bias_of(n, cell)
        if read is None:
            continue
        side, g = read
        side = side or ("x" if "x" not in biases[g] else "h")
        if side in biases[g]:
            return None
        biases[g][side] = n
    if not all(biases.values()):
        return None
    pairs = {g: (gates[g]["x"], gates[g]["h"]) for g in GATE_WORDS[cell]}
    return GateParams(cell, pairs, biases, transpose=True)


def linear_layers(m: torch.nn.Module) -> str:
    """The module's nn.Linear layers as the report shows them, for a message that none fit."""
    return ", ".join(f"{n} = nn.Linear({mod.in_features}, {mod.out_features}"
                     f"{'' if mod.bias is not None else ', bias=False'})"
                     for n, mod in m.named_modules() if isinstance(mod, torch.nn.Linear))


def form_in_source(m: torch.nn.Module, gates: GateLinears | GateParams) -> str | None:
    """The GRU form the module's class is written in, read off its source (``forward`` and
    the methods it calls, a ``step`` or ``cell``, its own classes' and not torch's), at the
    candidate's hidden-side weight: a layer called on a product (``h2n(r * h)``) or a
    parameter multiplied by one (``(r * h) @ self.W_hn.T``) is d2l's form; a layer called
    on the state alone (``r * h2n(h)``), or a parameter's matmul that a product then takes
    (``r * (h @ self.W_hn.T + self.b_hn)``), torch.nn's. None where the source does not say."""
    trees = []
    for obj in (type(m).forward, *type(m).__mro__):
        if obj.__module__.split(".")[0] in ("torch", "builtins"):
            continue
        try:
            trees.append(ast.parse(textwrap.dedent(inspect.getsource(obj))))
        except (OSError, TypeError, SyntaxError):
            continue
    leaf = gates.gates["h"][1].split(".")[-1]
    forms = set()
    for tree in trees:
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if _names(node) == leaf:
                form = _form_at(node, parents)
                if form is not None:
                    forms.add(form)
    return forms.pop() if len(forms) == 1 else None


def _names(node) -> str | None:
    """The attribute or variable a node names (``self.W_hn``, ``W_hn``), else None."""
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)


def _has_product(node) -> bool:
    """Whether an expression multiplies elementwise (``r * h``, ``torch.mul(r, h)``)."""
    return any((isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult))
               or (isinstance(n, ast.Call) and _names(n.func) == "mul") for n in ast.walk(node))


def _form_at(node, parents) -> str | None:
    """The form one use of the candidate's hidden-side weight is written in."""
    parent = parents.get(node)
    if isinstance(parent, ast.Call) and parent.func is node:  # a layer: h2n(...)
        return "d2l" if any(_has_product(a) for a in parent.args) else "torch"
    # a parameter (or a layer's .weight): up through its transpose (.T, .t()) to its matmul
    while (isinstance(parent, ast.Attribute) and parent.value is node) \
            or (isinstance(parent, ast.Call) and parent.func is node):
        node, parent = parent, parents.get(parent)
    if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.MatMult):
        other = parent.left if parent.right is node else parent.right
    elif isinstance(parent, ast.Call) and _names(parent.func) in ("mm", "matmul", "linear"):
        other = next((a for a in parent.args if a is not node), None)
    else:
        return None
    if other is not None and _has_product(other):
        return "d2l"
    # torch.nn's form: the matmul (plus its bias) is a factor of a product
    node, parent = parent, parents.get(parent)
    while isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Add):
        node, parent = parent, parents.get(parent)
    if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Mult):
        return "torch"
    return None
