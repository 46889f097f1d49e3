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
"""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

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
