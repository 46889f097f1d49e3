"""The README's promises about installing rnnlab agree with pyproject.toml and .ci/run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def lower_bounds() -> dict:
    """{distribution: lowest version} from pyproject's dependencies and extras."""
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for rs in project["optional-dependencies"].values()
                                      for r in rs]
    bounds = {}
    for r in reqs:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)\s*", r)
        assert m, f"pyproject.toml: {r!r} has no plain lower bound"
        bounds[m.group(1).lower()] = m.group(3)
    bounds["python"] = project["requires-python"].removeprefix(">=")
    return bounds


def readme_table() -> dict:
    """{name (lower case): oldest version} from the README's "Supported versions" table."""
    section = README.split("### Supported versions", 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in section.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        names = re.sub(r"\(.*?\)", "", cells[0]).split(",")
        versions = cells[1].split(",")
        for name, version in zip(names, versions):
            rows[name.strip().lower().replace("pytorch", "torch").replace(" ", "-")] = version.strip()
    return rows


def test_readme_table_states_the_lower_bounds_of_pyproject():
    bounds, table = lower_bounds(), readme_table()
    for name, version in table.items():
        assert name in bounds, f"README lists {name}, pyproject.toml does not require it"
        assert bounds[name] == version, (
            f"{name}: README says {version}, pyproject.toml says >={bounds[name]}")
    assert set(bounds) <= set(table), f"README's table lacks {sorted(set(bounds) - set(table))}"


def test_ci_runs_the_readme_test_command_in_a_fresh_venv():
    """.ci/run reads the command after the README's marker; it pins the CPU torch first,
    and CI builds its own venv (no system site-packages) rather than reusing one."""
    run = (ROOT / ".ci" / "run").read_text()
    assert "<!-- the test command -->" in README and "<!-- the test command -->" in run
    block = README.split("<!-- the test command -->", 1)[1].split("```")[1]
    command = block.removeprefix("bash").strip().splitlines()[0]
    assert command.startswith("pip install torch==") and "python -m pytest" in command
    assert "python3 -m venv" in run and "--system-site-packages\"" not in run
    extracted = subprocess.run(["bash", str(ROOT / ".ci" / "run"), "--print-command"],
                               capture_output=True, text=True, check=True).stdout.strip()
    assert extracted == command


def _user_texts() -> dict:
    """Every text a user reads: the README, the docs, the notebooks, rnnlab's source (its
    messages and --help) and the benchmark scripts."""
    paths = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "notebooks").glob("*.ipynb")), *sorted((ROOT / "rnnlab").rglob("*.py")),
             *sorted((ROOT / "benchmarks").glob("*.py"))]
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in paths}


def test_one_torch_install_instruction_everywhere():
    """Every `pip install torch` a user reads is the CPU build from pytorch.org's CPU index
    (the one instruction, rnnlab.errors.TORCH_INSTALL), but the README's pinned test command
    and the sentence warning what a plain `pip install torch` pulls."""
    from rnnlab.errors import TORCH_INSTALL

    assert TORCH_INSTALL == "pip install torch --index-url https://download.pytorch.org/whl/cpu"
    cpu = re.compile(r"pip install torch(==[\d.]+)? --index-url https://download\.pytorch\.org/whl/cpu")
    test_command = "pip install torch==2.13.0 && pip install -e"
    warning = "`pip install torch` on Linux takes PyPI's CUDA build"
    found = 0
    for name, text in _user_texts().items():
        for m in re.finditer(r"pip install torch", text):
            here = text[m.start():m.start() + 120]
            found += 1
            assert (cpu.match(here) or here.startswith(test_command)
                    or text[m.start() - 1:].startswith(warning)), f"{name}: {here!r}"
    assert found >= 5


def test_no_install_line_asks_an_index_for_rnnlab():
    """rnnlab is installed from a clone: `pip install "rnnlab[verify]"` finds nothing on an
    index, so no page, message or notebook tells a user to run it (docs/verify.md says it
    works once rnnlab is published)."""
    for name, text in _user_texts().items():
        for m in re.finditer(r"""pip install ['"]?rnnlab\[""", text):
            before = text[max(0, m.start() - 120):m.start()]
            assert name == "docs/verify.md" and "Once rnnlab is published" in before, \
                f"{name}: {text[m.start() - 40:m.end() + 20]!r}"
