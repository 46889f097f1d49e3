"""MkDocs hook for the documentation site (mkdocs.yml: ``hooks``).

The pages mark their fences for rnnlab's tests (tests/test_docs.py,
tests/test_doc_transcripts.py): ``python source=<file>`` quotes a file, ``python no-run``
is shown only, ``console slow`` is a transcript too long for the suite. The site's
Markdown (pymdownx.superfences) knows none of these words, so before a page is rendered
they become what it does know: a quoted file's name as the block's title, the others
dropped.
"""

from __future__ import annotations

import re

FENCE_INFO = re.compile(r"^```(python|console)[ \t]+([^\n]*)$", re.M)


def _rewrite(match: re.Match) -> str:
    lang, info = match.group(1), match.group(2).strip()
    if info.startswith("source="):
        return f'```{lang} title="{info[len("source="):]}"'
    return f"```{lang}"  # no-run, slow: for the tests only


def on_page_markdown(markdown: str, **kwargs) -> str:
    return FENCE_INFO.sub(_rewrite, markdown)
