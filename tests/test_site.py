"""The documentation builds into a site (mkdocs.yml, MkDocs Material), strictly: every page
in the navigation, no broken link or anchor, no fence left unrendered, equations typeset
into MathML when the site is built, and nothing loaded from outside it: read offline, it
shows every equation."""

from __future__ import annotations

import json
import os
import re
import shutil
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
    pytest.importorskip("latex2mathml")
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


def _pages(site: Path) -> dict:
    return {str(p.relative_to(site)): p.read_text(encoding="utf-8") for p in site.rglob("*.html")}


def _text_outside_code(html: str) -> str:
    """The page's text as a reader sees it, without <pre>/<code> (code may hold a regex
    with \\[) and without tags."""
    html = re.sub(r"<(pre|code|script)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def test_equations_are_typeset_when_the_site_is_built(site):
    html = (site / "bptt" / "index.html").read_text(encoding="utf-8")
    blocks = re.findall(r'<div class="arithmatex">(.*?)</div>', html, re.S)
    assert len(blocks) >= 20, len(blocks)
    assert all(b.startswith('<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">')
               for b in blocks)
    assert any("&#x02299;" in b for b in blocks)  # \odot, the Hadamard product
    aligned = [b for b in blocks if "<mtable" in b]
    assert len(aligned) >= 5  # every `aligned` block: rows and cells, no raw & or \\
    assert all("<mtd" in b and not re.search(r">&<|linebreak", b) for b in aligned)
    for name, page in _pages(site).items():
        text = _text_outside_code(page)
        for raw in ("\\[", "\\]", "\\(", "\\begin{", "$$"):
            assert raw not in text, f"{name}: raw TeX {raw!r} reaches the page's text"
    assert not (site / "site_hooks.py").exists()  # the build hook is not published


def test_no_page_loads_anything_from_outside_the_site(site):
    """Offline, the site is whole: no script, stylesheet, font, image or frame comes from
    another host (links a reader may follow are <a href>, not loads)."""
    loads = re.compile(r"<(script|img|iframe|source|link)\b([^>]*?)\b(?:src|href)=\"([^\"]*)\"", re.S)
    for name, page in _pages(site).items():
        for tag, attrs, url in loads.findall(page):
            if tag == "link" and re.search(r'rel="(canonical|alternate)"', attrs):
                continue  # the page's own address, a name: nothing is fetched
            assert not re.match(r"(https?:)?//", url), f"{name}: <{tag}> loads {url}"
        assert "fonts.googleapis" not in page and "fonts.gstatic" not in page, name
        assert "mathjax" not in page.lower() and "unpkg.com" not in page, name
    for css in site.rglob("*.css"):
        assert not re.search(r"@import\s+url\(\s*[\"']?(https?:)?//|url\(\s*[\"']?(https?:)?//",
                             css.read_text(encoding="utf-8")), css


def test_quoted_source_blocks_are_titled_with_their_file(site):
    html = (site / "bptt" / "index.html").read_text(encoding="utf-8")
    assert '<span class="filename">rnnlab/numpy_backend/cells.py</span>' in html


def test_the_notebooks_are_pages_with_their_stored_outputs(site):
    """Each notebook in notebooks/ is a page of the site, as stored, never executed at
    build time: its code, what it printed (a block titled "printed"), every picture it
    drew (inside the page, a data: address: nothing fetched), its maths typeset."""
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        html = (site / "notebooks" / notebook.stem / "index.html").read_text(encoding="utf-8")
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        outputs = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]]
        pictures = [o for o in outputs if "image/png" in o.get("data", {})]
        printed = [o for o in outputs if o["output_type"] == "stream"]
        assert html.count('<img alt="the picture this cell draws" src="data:image/png;base64,') \
            == len(pictures), notebook.name
        assert html.count('<span class="filename">printed</span>') == len(printed) > 0, notebook.name
        last = "".join(printed[-1]["text"]).strip().splitlines()[-1]
        assert last.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in html
        if "$" in "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown"):
            assert '<math xmlns="http://www.w3.org/1998/Math/MathML"' in html, notebook.name
    verify = (site / "notebooks" / "verify_your_own_rnn" / "index.html").read_text(encoding="utf-8")
    assert "known mistake lstm-dropped-cell-carry" in verify
    assert 'href="../../verify/"' in verify  # the notebook's ../docs/verify.md, on the site


def test_the_site_in_a_headless_browser_offline(site):
    """The real thing: every page opened in a headless Chrome with the network cut off
    (tests/site_browser_check.mjs) asks for nothing outside the site, throws no script
    error, draws every equation and shows no raw TeX. Runs where node and puppeteer-core
    are found: npm install puppeteer-core @sparticuz/chromium, in the clone's root or in
    the folder $RNNLAB_NODE_MODULES names (a Chrome of your own: $CHROME_PATH)."""
    node = shutil.which("node")
    modules = Path(os.environ.get("RNNLAB_NODE_MODULES") or ROOT / "node_modules")
    if node is None or not (modules / "puppeteer-core").is_dir():
        pytest.skip("no node with puppeteer-core: npm install puppeteer-core @sparticuz/chromium "
                    "(or set RNNLAB_NODE_MODULES) to read the site in a headless browser")
    if not os.environ.get("CHROME_PATH") and not (modules / "@sparticuz" / "chromium").is_dir():
        pytest.skip("no Chrome: set CHROME_PATH, or npm install @sparticuz/chromium")
    done = subprocess.run([node, str(ROOT / "tests" / "site_browser_check.mjs"), str(site),
                           str(modules)], capture_output=True, text=True, timeout=600)
    pages = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    bad = [p for p in pages if not p["ok"]]
    assert done.returncode == 0 and not bad and pages, (bad or done.stderr[-2000:])
    assert len(pages) == len(list(site.rglob("*.html")))
    bptt = next(p for p in pages if p["page"] == "bptt/index.html")
    assert bptt["maths"] >= 20 and bptt["tables"] >= 5  # drawn, aligned rows stacked
