"""docs/errors.md ends with every refusal in rnnlab, read off the source itself.

The tables above it hold the tested examples (tests/test_bad_input.py). This catalogue
is the rest of the promise "every refusal is listed": each ``raise`` of an rnnlab error
(and each argparse type check of the command line) in the package, with its type and its
message as written, ``…`` standing for the values filled in. It is generated from the
source's syntax tree, so it cannot drift: a new refusal fails this test until the page is
regenerated with ``RNNLAB_UPDATE_DOCS=1 python -m pytest tests/test_errors_catalogue.py``.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import rnnlab.errors as errors

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "errors.md"
START = "<!-- generated: every refusal -->\n"
END = "<!-- end generated -->"
ERROR_TYPES = {name for name in dir(errors) if name.endswith("Error")
               and isinstance(getattr(errors, name), type)} | {"ArgumentTypeError"}
HOLE = "…"


def _template(node) -> str:
    """A message expression as text, each computed part a hole."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else HOLE for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _template(node.left) + _template(node.right)
    return HOLE


def _name(func) -> str:
    return getattr(func, "id", None) or getattr(func, "attr", "")


def refusals() -> list[tuple[str, str, str]]:
    """(module, error type, message template) of every error rnnlab makes, in source order:
    each call of an error type (raised at once, or returned by a helper that builds it),
    and each call of the helpers that fill in a common form (``checks.refuse``: "… must
    be <expected>, got …"; the checkpoint schema's ``_fail``)."""
    out = []
    for path in sorted((ROOT / "rnnlab").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call)),
                       key=lambda n: (n.lineno, n.col_offset))
        for node in calls:
            name, args = _name(node.func), node.args
            if name == "refuse" and len(args) >= 3:  # checks.refuse(name, value, expected[, error])
                kind = _name(args[3]) if len(args) > 3 else "ConfigError"
                if kind not in ERROR_TYPES:  # a helper passing on its caller's type
                    kind = "ConfigError, ShapeError or ParamError"
                text = f"{HOLE} must be {_template(args[2])}, got {HOLE}"
            elif name == "_fail" and len(args) >= 4:  # checkpoint_schema._fail(where, field, value, expected)
                kind = "CheckpointError"
                text = f"{HOLE}: metadata field {HOLE} is {HOLE}, expected {_template(args[3])}"
            elif name in ERROR_TYPES and args:
                kind, text = name, _template(args[0])
            else:
                continue
            text = re.sub(rf"{HOLE}(?:\s*{HOLE})+", HOLE, " ".join(text.split())).strip()
            if text != HOLE:  # else a message made elsewhere, listed where it is made
                out.append((module, kind, text))
    return out


def render() -> str:
    rows = ["| module | raised | message (… a value filled in) |", "| --- | --- | --- |"]
    seen = set()
    for module, kind, text in refusals():
        if (module, kind, text) in seen:  # the same refusal in two places of one module
            continue
        seen.add((module, kind, text))
        cell = text.replace("|", "\\|").replace("`", "'")
        rows.append(f"| `{module}` | `{kind}` | {cell} |")
    return "\n".join(rows) + "\n"


def test_the_page_lists_every_refusal_in_the_source():
    text = PAGE.read_text(encoding="utf-8")
    assert START in text and END in text, "docs/errors.md lacks the generated catalogue"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    want = render()
    if os.environ.get("RNNLAB_UPDATE_DOCS") == "1":
        PAGE.write_text(head + START + want + END + tail, encoding="utf-8")
        return
    assert rest.split(END, 1)[0] == want, (
        "docs/errors.md's catalogue differs from the source: regenerate it with "
        "RNNLAB_UPDATE_DOCS=1 python -m pytest tests/test_errors_catalogue.py")


def test_the_catalogue_is_complete():
    """Every rnnlab error type raised in the package appears, and the count is plausible
    (a parsing slip would list far fewer)."""
    found = refusals()
    kinds = {k for _, k, _ in found}
    assert {"ConfigError", "CorpusError", "VocabError", "ShapeError", "ParamError",
            "CheckpointError", "NonFiniteError", "SaveError", "BackendError",
            "DistributedError", "SubjectError"} <= kinds, kinds
    assert len(found) > 300, len(found)
    assert all(text and text != HOLE for _, _, text in found)
