"""What users read speaks of rnnlab and the sources they know, not of how rnnlab was made.

The README, docs/, the notebooks (sources and outputs), examples/, benchmarks/ (their
scripts and notes, which docs/benchmarks.md quotes), mkdocs.yml and pyproject.toml (the
site's and the package's descriptions), every ``--help`` and every string in the package
(error messages, warnings, docstrings that ``help()`` shows) are searched for words that belong to the project's making: the material it was grown
from ("the seeds' equations", "d2lzh seed"), issue numbers and acceptance criteria,
helpers and build machines, and the paths of a build machine. Random seeds are fine.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROCESS_WORDS = re.compile("|".join([
    r"\bseeds?'",  # "the seeds' equations", "the seed's code"
    r"\bseed (?:repo|repository|code|project|implementation|file|notebook|material|text)s?\b",
    r"\bd2lzh seed\b",
    r"\bissue\s*#?\d+",  # "issue 12"
    r"\bacceptance\b",
    r"\bhelpers?\b",
    r"\btask (?:\d+|brief|list)\b", r"\b(?:my|our|this) task\b",
    r"\b(?:was|were|been|environment|machine|us) lent\b", r"\blent (?:us|a GPU|no GPU)\b",
    r"\bthe (?:session|lead)\b", r"\bbrief\b", r"\bworktrees?\b",
    r"\bbuild (?:machine|environment)s?\b",
    r"/work/",
    r"\.\./shared\b",
    r"\bshared/data\b",
    r"\bthis (?:session|workplace)\b",
]), re.IGNORECASE)


def _subcommands() -> list[str]:
    """Every subcommand the parser has, so a new one cannot be left out."""
    import argparse

    from rnnlab.cli import build_parser

    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(name for a in actions for name in a.choices)


SUBCOMMANDS = _subcommands()


def _text_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    files += sorted(p for p in (ROOT / "examples").rglob("*") if p.is_file())
    files += sorted(p for p in (ROOT / "benchmarks").iterdir()
                    if p.suffix in {".py", ".sh", ".md"})
    files += [ROOT / "mkdocs.yml", ROOT / "pyproject.toml"]
    files += sorted((ROOT / "docs" / "javascripts").glob("*.js"))
    return files


def _notebook_text(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        parts.append("".join(cell.get("source", [])))
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", [])))
            for value in out.get("data", {}).values():
                parts.append("".join(value) if isinstance(value, list) else str(value))
    return "\n".join(parts)


def _package_strings(path: Path) -> str:
    """Every string constant of a module (messages, docstrings), not its comments."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return "\n".join(node.value for node in ast.walk(tree)
                     if isinstance(node, ast.Constant) and isinstance(node.value, str))


def _hits(text: str) -> list[str]:
    return [m.group(0) for m in PROCESS_WORDS.finditer(text)]


SOURCES = ([(str(p.relative_to(ROOT)), p.read_text) for p in _text_files()]
           + [(str(p.relative_to(ROOT)), lambda p=p: _notebook_text(p))
              for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
           + [(str(p.relative_to(ROOT)), lambda p=p: _package_strings(p))
              for p in sorted((ROOT / "rnnlab").rglob("*.py"))])


@pytest.mark.parametrize("name,read", SOURCES, ids=[s[0] for s in SOURCES])
def test_no_process_words(name, read):
    text = read() if callable(read) else read
    assert not _hits(text), f"{name} speaks of how rnnlab was made: {_hits(text)}"


@pytest.mark.parametrize("command", [[], *([c] for c in SUBCOMMANDS)], ids=lambda c: " ".join(c) or "rnnlab")
def test_help_has_no_process_words(command):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-m", "rnnlab", *command, "--help"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert not _hits(out.stdout), f"rnnlab {' '.join(command)} --help: {_hits(out.stdout)}"


@pytest.mark.parametrize("text", [
    "the gradients follow the seeds' equations", "adam (d2lzh seed)",
    "see the issue 12 acceptance claim", "copy it to ../shared/data",
    "measured on the build machine", "the file in /work/shared",
    "the seed notebook's identity", "what the build environment lent", "a helper wrote this",
    "see the task brief", "as the lead asked", "in the session", "my task"])
def test_the_words_are_found(text):
    """The patterns catch what they are for."""
    assert _hits(text)


@pytest.mark.parametrize("text", [
    "--seed 3 gives the same text", "random seeds, resume, CPU and GPU",
    "seed=0", "the same seed prints the same report", "which numbers repeat (seeds)",
    "every random draw derives from the seed", "the gradients are lent to p.grad",
    "the task needs both sides", "a dropped ssh session"])
def test_random_seeds_are_not_process_words(text):
    assert not _hits(text)
