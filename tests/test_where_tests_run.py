"""The tests pass wherever they are started: a clone where the user has trained first (the
README's own order) holds runs/lstm, and the suite neither reads, refuses nor touches it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from book import book_dir

ROOT = Path(__file__).resolve().parents[1]


def _tree(folder: Path) -> dict:
    """Every file under folder -> its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_each_test_starts_in_its_own_empty_folder(tmp_path):
    assert Path.cwd() == tmp_path and not any(tmp_path.iterdir())


def test_cli_tests_ignore_a_run_in_the_folder_pytest_starts_in(tmp_path, time_machine_dir):
    """pytest started in a folder holding the user's runs/lstm (the default --out of
    `rnnlab train --cell lstm`): the CLI tests that train with the default --out pass, and
    the user's run is left byte for byte as it was, with nothing added beside it."""
    clone = tmp_path / "clone"
    run = clone / "runs" / "lstm"
    run.mkdir(parents=True)
    (run / "checkpoint.safetensors").write_bytes(b"the user's own run")
    (run / "run.json").write_text('{"cell": "lstm"}\n')
    before = _tree(clone)
    env = dict(os.environ, RNNLAB_DATA=str(time_machine_dir),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp",
         str(tmp_path / "inner"), str(ROOT / "tests" / "test_train.py"), "-k", "cli"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout, proc.stdout[-3000:]
    assert _tree(clone) == before


def test_the_book_is_found_in_the_user_cache_as_rnnlab_finds_it(tmp_path, time_machine_dir, monkeypatch):
    """No RNNLAB_DATA, the book copied into the user cache as the README says: found there."""
    cache = tmp_path / "cache"
    (cache / "rnnlab").mkdir(parents=True)
    (cache / "rnnlab" / "timemachine.txt").write_bytes((time_machine_dir / "timemachine.txt").read_bytes())
    monkeypatch.delenv("RNNLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    assert book_dir(tmp_path) == cache / "rnnlab"


def test_the_book_named_otherwise_in_rnnlab_data_is_found(tmp_path, time_machine_dir, monkeypatch):
    book = tmp_path / "the_time_machine.txt"
    book.write_bytes((time_machine_dir / "timemachine.txt").read_bytes())
    monkeypatch.setenv("RNNLAB_DATA", str(book))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert (book_dir(scratch) / "timemachine.txt").read_bytes() == book.read_bytes()


def test_no_book_skips_saying_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("RNNLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(pytest.skip.Exception) as skipped:
        book_dir(tmp_path)
    why = str(skipped.value)
    assert f"copy timemachine.txt into {tmp_path / 'cache' / 'rnnlab'}" in why
    assert "set RNNLAB_DATA" in why
