"""Imports run one way: the layers of rnnlab/__init__.py's picture, held by import-linter.

The contracts live in pyproject.toml ([tool.importlinter]); a module that imports from a
layer above it, a circle among rnnlab's modules, or torch reached from the NumPy side
fails here, imports placed inside functions included (grimp reads every import
statement, wherever it stands).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")
importlinter_cli = pytest.importorskip("importlinter.cli")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rnnlab"

# The imports inside functions that stay, each for its reason: they keep `import rnnlab`
# light (torch, matplotlib and Hypothesis are optional and heavy). Any other is either a
# circle being dodged or an import that belongs at the top of its module.
LAZY = {
    ("rnnlab/backend.py", "torch_backend"): "torch, only for get_backend('torch')",
    ("rnnlab/cli/compare.py", "plot"): "matplotlib, only when drawing",
    ("rnnlab/cli/inspect.py", "plot"): "matplotlib, only when drawing",
    ("rnnlab/cli/run_writer.py", "plot"): "matplotlib is optional",
    ("rnnlab/cli/train_task.py", "plot"): "matplotlib is optional",
    ("rnnlab/cli/train.py", "torch_backend.distributed"): "torch, under torchrun only",
    ("rnnlab/cli/verify.py", "testing"): "Hypothesis is optional",
    ("rnnlab/cli/verify.py", "testing.loader"): "Hypothesis is optional (rnnlab.testing needs it)",
    ("rnnlab/cli/verify.py", "testing.skeleton"): "Hypothesis is optional (rnnlab.testing needs it)",
    ("rnnlab/testing/loader.py", "torch_units"): "torch, for torch subjects only",
    ("rnnlab/testing/loader.py", "d2l_class_units"): "torch, for torch subjects only",
    ("rnnlab/testing/loader.py", "torch_tutorial"): "torch, for torch subjects only",
}


def test_import_linter_contracts_are_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the contracts are read from the project's pyproject.toml
    status = importlinter_cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"),
                                           no_cache=True)
    assert status == importlinter_cli.EXIT_STATUS_SUCCESS, "an import-linter contract is broken (output above)"


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_circle_among_rnnlab_modules():
    """Inside packages too (testing/, cli/), where the layers contract does not look."""
    g = grimp.build_graph("rnnlab")
    graph = {m: {x for x in g.find_modules_directly_imported_by(m) if x.startswith("rnnlab")}
             for m in g.modules}
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_circle():
    """The check above can fail: a planted circle is found."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def _local_rnnlab_imports():
    """(file, module) of every import of an rnnlab module inside a function."""
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and node.level > 0:
                    yield rel, node.module or ""
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                    for name in names:
                        if name == "rnnlab" or name.startswith("rnnlab."):
                            yield rel, name.removeprefix("rnnlab.")


def test_imports_inside_functions_are_only_the_lazy_ones():
    found = sorted(set(_local_rnnlab_imports()))
    unexplained = [f"{file}: {module}" for file, module in found if (file, module) not in LAZY]
    assert unexplained == [], ("an rnnlab import inside a function: move it to the top of "
                               "the module, or (torch, matplotlib, Hypothesis) add it to LAZY "
                               "with its reason")
    assert set(found) == set(LAZY), "LAZY lists an import that is gone: drop it"


def test_import_rnnlab_does_not_shadow_the_standard_library_inspect():
    """The gradient-reach module is rnnlab.gradient_reach; rnnlab.inspect still imports."""
    import inspect as stdlib_inspect

    import rnnlab.gradient_reach
    from rnnlab.inspect import state_gradient_norms

    assert not (PACKAGE / "inspect.py").exists()
    assert state_gradient_norms is rnnlab.gradient_reach.state_gradient_norms
    assert stdlib_inspect.__name__ == "inspect" and hasattr(stdlib_inspect, "signature")
