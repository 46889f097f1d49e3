"""MkDocs hook for the documentation site (mkdocs.yml: ``hooks``).

The pages mark their fences for rnnlab's tests (tests/test_docs.py,
tests/test_doc_transcripts.py): ``python source=<file>`` quotes a file, ``python no-run``
is shown only, ``console slow`` is a transcript too long for the suite. The site's
Markdown (pymdownx.superfences) knows none of these words, so before a page is rendered
they become what it does know: a quoted file's name as the block's title, the others
dropped.

The equations are typeset here, when the site is built: pymdownx.arithmatex marks them
(``<div class="arithmatex">\\[...\\]</div>``, ``<span class="arithmatex">\\(...\\)</span>``)
and latex2mathml turns each into MathML, which browsers draw themselves. No script and
no font is fetched from elsewhere: the site reads the same offline, and an equation
latex2mathml cannot convert fails the build, naming the page and the equation.

The notebooks in notebooks/ become pages too (``notebooks/<name>.md`` in the navigation),
as they are stored, with their outputs, never executed here: each markdown cell as it
is (its maths typeset like the pages'), each code cell as a Python block, what it
printed as a text block and what it drew as a PNG inside the page (a data: address, so
nothing is fetched). (mkdocs-jupyter renders notebooks too, but its pages load MathJax
and Mermaid from a CDN: the site would no longer read offline.)
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from latex2mathml.converter import convert
from mkdocs.structure.files import File

FENCE_INFO = re.compile(r"^```(python|console)[ \t]+([^\n]*)$", re.M)


def _rewrite(match: re.Match) -> str:
    lang, info = match.group(1), match.group(2).strip()
    if info.startswith("source="):
        return f'```{lang} title="{info[len("source="):]}"'
    return f"```{lang}"  # no-run, slow: for the tests only


def on_page_markdown(markdown: str, **kwargs) -> str:
    return FENCE_INFO.sub(_rewrite, markdown)


DISPLAY = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.S)
INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.S)


ALIGNED = re.compile(r"\\(begin|end)\{aligned\}")


def _mathml(latex: str, display: str, where: str) -> str:
    tex = html.unescape(latex).strip()  # the Markdown escaped <, > and & in the TeX
    # latex2mathml reads `aligned` as one row of text (its & and \\ shown as is): typeset
    # it as a matrix, whose cells are MathML's table cells, aligned as `aligned` does
    # (columns right, left, right, left...: `&x = ...` is one left-aligned row)
    aligned = bool(ALIGNED.search(tex))
    try:
        mathml = convert(ALIGNED.sub(lambda m: f"\\{m.group(1)}{{matrix}}", tex), display=display)
    except Exception as exc:  # any failure: the build stops and says which equation
        raise ValueError(f"{where}: cannot typeset {tex!r}: {exc}") from exc
    if aligned:
        mathml = mathml.replace("<mtable>", '<mtable displaystyle="true" '
                                'columnalign="right left right left" columnspacing="0em 2em 0em">')
    if re.search(r"<m[a-z]+>&</m[a-z]+>|linebreak=", mathml):
        raise ValueError(f"{where}: {tex!r} typesets with a raw & or line break")
    return mathml


def on_page_content(content: str, page, **kwargs) -> str:
    where = page.file.src_path
    def block(m):
        return f'<div class="arithmatex">{_mathml(m.group(1), "block", where)}</div>'

    def inline(m):
        return f'<span class="arithmatex">{_mathml(m.group(1), "inline", where)}</span>'

    return INLINE.sub(inline, DISPLAY.sub(block, content))


NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _fence(text: str, lang: str, title: str = "") -> str:
    ticks = "````" if "```" in text else "```"
    info = f'{lang} title="{title}"' if title else lang
    return f"{ticks}{info}\n{text.rstrip()}\n{ticks}"


def _outputs(cell: dict) -> list:
    """A code cell's stored outputs as Markdown: text blocks and pictures."""
    parts = []
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if out.get("output_type") == "stream":
            text = "".join(out.get("text", ""))
            title = "printed" if out.get("name") == "stdout" else "printed on stderr"
        elif "image/png" in data:
            png = "".join(data["image/png"]).replace("\n", "")
            parts.append(f'<p class="notebook-picture"><img alt="the picture this cell draws" '
                         f'src="data:image/png;base64,{png}"></p>')
            continue
        elif "text/plain" in data:
            text, title = "".join(data["text/plain"]), "result"
        else:
            continue
        parts.append(_fence(ANSI.sub("", text), "text", title))
    return parts


def notebook_markdown(path: Path) -> str:
    """The page of a stored notebook: its cells in order, with their stored outputs."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    parts = []
    for i, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            # links written for the repository (../docs/bptt.md) to the site's pages
            parts.append(re.sub(r"\]\(\.\./docs/", "](../", source))
            if i == 0:
                parts.append(f"*This page is `notebooks/{path.name}` with the outputs it is "
                             "stored with. To run it yourself, see **Notebooks** on the [home page](../index.md).*")
        elif cell["cell_type"] == "code":
            parts.append(_fence(source, "python"))
            parts.extend(_outputs(cell))
    return "\n\n".join(parts) + "\n"


def on_files(files, config, **kwargs):
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        files.append(File.generated(config, f"notebooks/{path.stem}.md",
                                    content=notebook_markdown(path)))
    return files
