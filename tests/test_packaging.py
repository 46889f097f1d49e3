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
