"""Where the tests find d2l's book: where rnnlab itself finds it, never downloaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rnnlab.data import files
from rnnlab.data.files import TIME_MACHINE_FILE, find_time_machine
from rnnlab.errors import CorpusNotFoundError


def book_dir(scratch: Path) -> Path:
    """The folder holding ``timemachine.txt``: ``$RNNLAB_DATA`` (a folder, or the file itself,
    copied into ``scratch`` when it has another name), then the user cache (``~/.cache/rnnlab``,
    or ``$XDG_CACHE_HOME/rnnlab``), as ``rnnlab train`` looks. Where it is in neither, the test
    is skipped with a line saying what to do."""
    try:
        book = find_time_machine(download=False)
    except CorpusNotFoundError:
        pytest.skip(f"d2l's {TIME_MACHINE_FILE} not found (the tests never download it): copy "
                    f"{TIME_MACHINE_FILE} into {files._cache_dir()}, or set RNNLAB_DATA to the "
                    "folder that holds it")
    if book.name == TIME_MACHINE_FILE:
        return book.parent
    shutil.copyfile(book, scratch / TIME_MACHINE_FILE)
    return scratch
