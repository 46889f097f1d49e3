"""The documentation builds into a site (mkdocs.yml, MkDocs Material), strictly: every page
in the navigation, no broken link or anchor, no fence left unrendered, equations typeset
by MathJax."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("pymdownx")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
    log = done.stdout + done.stderr
    assert done.returncode == 0, ("mkdocs build --strict failed (a page missing from "
                                  "mkdocs.yml's nav, a broken link or anchor...):\n" + log)
    assert "WARNING" not in log, log
    return out


def test_every_page_is_built_into_the_site(site):
    for page in (ROOT / "docs").glob("*.md"):
        html = site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert html.is_file(), f"docs/{page.name} is not in the site"
        text = html.read_text(encoding="utf-8")
        # a fence the Markdown did not understand shows up as literal backticks
        assert "<p>```" not in text and "\n```" not in text, f"unrendered fence in {page.name}"


def test_equations_are_typeset_by_mathjax(site):
    html = (site / "bptt" / "index.html").read_text(encoding="utf-8")
    equations = re.findall(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', html, re.S)
    assert len(equations) >= 20, len(equations)
    assert any(r"\odot" in eq and "dC_{next}" in eq for eq in equations)
    assert '<script src="https://unpkg.com/mathjax@3/es5/tex-mml-chtml.js">' in html
    assert '<script src="../javascripts/mathjax.js">' in html
    assert (site / "javascripts" / "mathjax.js").is_file()
    assert not (site / "site_hooks.py").exists()  # the build hook is not published


def test_quoted_source_blocks_are_titled_with_their_file(site):
    html = (site / "bptt" / "index.html").read_text(encoding="utf-8")
    assert '<span class="filename">rnnlab/numpy_backend/cells.py</span>' in html
