"""The docs run as they read: every ```python block of docs/*.md runs, in order, one
fresh namespace per file, with RNNLAB_DATA set and a temporary working directory.

Fences:
  ```python                      runs
  ```python no-run               shown only (needs a GPU, the network, or hours)
  ```python source=<path>        a quotation of rnnlab's code: every line of it must
                                 still appear in <path> (stripped), so the page and the
                                 code cannot drift apart; not run
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```\s*$", re.S | re.M)


def blocks(path: Path):
    """(info string, code, line number) of every fenced block in a Markdown file."""
    text = path.read_text(encoding="utf-8")
    for m in FENCE.finditer(text):
        yield m.group(1).strip(), m.group(2), text[:m.start()].count("\n") + 1


def python_blocks(path: Path):
    return [(info, code, line) for info, code, line in blocks(path)
            if info.split(" ")[0] == "python"]


@pytest.mark.parametrize("path", [p for p in DOCS if any(
    info == "python" for info, _, _ in python_blocks(p))], ids=lambda p: p.name)
def test_doc_examples_run(path, monkeypatch, tmp_path, time_machine_dir):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))
    monkeypatch.chdir(tmp_path)  # whatever an example writes lands in a temporary directory
    code_all = "".join(code for info, code, _ in python_blocks(path) if info == "python")
    if "torch" in code_all:
        pytest.importorskip("torch")
    namespace = {"__name__": f"docs_{path.stem}"}
    for info, code, line in python_blocks(path):
        if info != "python":
            continue
        try:
            exec(compile(code, f"{path.name}:{line}", "exec"), namespace)
        except Exception as exc:  # name the block, keep the traceback
            raise AssertionError(f"{path.name}, block at line {line} failed: {exc!r}") from exc


def test_readme_examples_run(monkeypatch, tmp_path, time_machine_dir):
    """The README's ```python blocks run too, in order, in one namespace."""
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))
    monkeypatch.chdir(tmp_path)
    readme = ROOT / "README.md"
    code_all = "".join(code for info, code, _ in python_blocks(readme) if info == "python")
    assert "to_nn_module" in code_all and "from_nn_module" in code_all
    if "torch" in code_all:
        pytest.importorskip("torch")
    namespace = {"__name__": "docs_readme"}
    for info, code, line in python_blocks(readme):
        if info == "python":
            exec(compile(code, f"README.md:{line}", "exec"), namespace)


QUOTES = [(p, info, code, line) for p in DOCS for info, code, line in python_blocks(p)
          if info.startswith("python source=")]


@pytest.mark.parametrize("path,info,code,line", QUOTES,
                         ids=[f"{q[0].name}:{q[3]}" for q in QUOTES])
def test_quoted_code_is_still_in_the_source(path, info, code, line):
    source = ROOT / info.split("source=", 1)[1].strip()
    assert source.is_file(), f"{path.name}:{line} quotes {source}, which does not exist"
    have = {ln.strip() for ln in source.read_text(encoding="utf-8").splitlines()}
    missing = [ln.strip() for ln in code.splitlines() if ln.strip() and ln.strip() not in have]
    assert not missing, f"{path.name}:{line}: no longer in {source.name}: {missing}"


def test_every_fence_is_known_and_every_doc_is_linked_from_the_index():
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    for path in DOCS:
        if path.name != "index.md":
            assert f"({path.name})" in index, f"docs/index.md does not link {path.name}"
        for info, _, line in blocks(path):
            kind = info.split(" ")[0]
            assert kind in ("", "python", "bash", "console", "text"), f"{path.name}:{line} {info}"
            if kind == "python":
                assert info in ("python", "python no-run") or info.startswith("python source="), \
                    f"{path.name}:{line}: unknown python fence {info!r}"
