"""Reliability of the command and the library on odd inputs: clipping switched off,
dropout on one layer, byte-order marks, special files as checkpoints, sizes too large
to allocate, a full disk, extreme temperatures, empty corpus names."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import rnnlab
from cli_run import run as cli_run
from rnnlab.checkpoint import load_checkpoint
from rnnlab.config import ModelConfig
from rnnlab.params import init_params
from rnnlab.train import TrainConfig, train

TINY = ["--hidden", "8", "--max-tokens", "400", "--batch-size", "2", "--num-steps", "5",
        "--no-plot", "--no-progress", "--num-preds", "3"]
TEXT = "the time traveller (for so it will be convenient to speak of him) was expounding " * 8


@pytest.fixture(autouse=True)
def _data(monkeypatch, time_machine_dir):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))


def run(capsys, *argv) -> tuple[int, str, list]:
    """As cli_run.run, the output of earlier commands dropped first."""
    capsys.readouterr()
    return cli_run(capsys, *argv)


def tiny_model(cell="rnn", hidden=8, **model):
    vocab = rnnlab.Vocab(list(TEXT))
    corpus = np.array(vocab[list(TEXT)])
    cfg = ModelConfig(cell, len(vocab), hidden, **model)
    return corpus, vocab, cfg


# ------------------------------------------------------------------ 12: clipping off


@pytest.mark.parametrize("off", [None, math.inf])
def test_no_clipping_trains_with_the_raw_gradient(off):
    """clip_theta None (or math.inf) is no clipping: the run equals one whose θ is too
    large to ever clip, and no batch counts as clipped."""
    corpus, _, cfg = tiny_model()
    be = rnnlab.get_backend("numpy", dtype="float64")
    runs = []
    for theta in (off, 1e300):
        params = be.from_numpy(init_params(cfg, seed=0, dtype="float64"))
        tcfg = TrainConfig(num_epochs=2, lr=5.0, batch_size=2, num_steps=5, clip_theta=theta)
        runs.append((train(be, cfg, params, corpus, tcfg), params))
    (h_off, p_off), (h_big, p_big) = runs
    assert TrainConfig(clip_theta=off).clip_theta is None
    assert [s.train_ppl for s in h_off] == [s.train_ppl for s in h_big]
    assert all(s.clipped_fraction == 0 for s in h_off) and h_off[0].grad_norm_max > 1
    for k in p_off:
        np.testing.assert_array_equal(p_off[k], p_big[k])


def test_cli_clip_none_is_recorded_and_resumed(capsys, tmp_path):
    out = tmp_path / "run"
    code, text, err = run(capsys, "train", "--cell", "rnn", "--epochs", "1", "--clip", "none",
                          "--plot", "--out", out, *[a for a in TINY if a != "--no-plot"])
    assert code == 0, err
    ckpt = load_checkpoint(out)
    assert ckpt.train["clip_theta"] is None and ckpt.extra["options"]["clip"] is None
    assert (out / "grad_norm.png").exists()
    assert run(capsys, "train", "--resume", "--out", out, "--epochs", "2")[0] == 0
    code, _, err = run(capsys, "train", "--resume", "--out", out, "--epochs", "3", "--clip", "1")
    assert code == 2 and "--clip 1.0 (the checkpoint has None)" in err[0], err
    assert run(capsys, "train", "--resume", "--out", out, "--epochs", "3", "--clip", "off")[0] == 0
    code, text, _ = run(capsys, "inspect", "--run", out, "--no-plot", "--epochs", "0",
                        "--cells", "rnn", "--window", "20", "--hidden", "8", "--batch-size", "2")
    assert code == 0 and "no clipping" in text


# ------------------------------------------------------------------ 7: byte-order mark


def test_a_byte_order_mark_is_not_a_token(tmp_path):
    """Notepad's UTF-8 files start with EF BB BF: U+FEFF is not part of the text, so the
    vocabulary and the tokens equal those of the same file without it."""
    text = "the cat sat on the mat. 时间机器\n" * 5
    plain, marked = tmp_path / "plain.txt", tmp_path / "bom.txt"
    plain.write_bytes(text.encode("utf-8"))
    marked.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    a, va = rnnlab.load_corpus(plain)
    b, vb = rnnlab.load_corpus(marked)
    assert "\ufeff" not in vb.idx_to_token and va == vb and np.array_equal(a, b)
    inner = tmp_path / "inner.txt"  # a U+FEFF inside the text is a character like any other
    inner.write_bytes(("ab\ufeffcd" * 5).encode("utf-8"))
    assert "\ufeff" in rnnlab.load_corpus(inner)[1].idx_to_token


# ------------------------------------------------------------------ 8: special files


def test_special_files_as_checkpoints_never_hang(capsys, tmp_path):
    """A named pipe as a checkpoint: generate, train --resume and inspect --run refuse it
    at once (an alarm fails the test instead of letting it hang)."""
    import os
    import signal

    if not hasattr(os, "mkfifo"):
        pytest.skip("POSIX named pipes")
    pipe = tmp_path / "pipe.safetensors"
    os.mkfifo(pipe)
    (tmp_path / "run").mkdir()
    os.mkfifo(tmp_path / "run" / "checkpoint.safetensors")

    def hung(*_):
        raise TimeoutError("blocked on a named pipe")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        for argv in (["generate", pipe], ["inspect", "--run", pipe, "--no-plot"],
                     ["train", "--resume", "--out", tmp_path / "run", *TINY],
                     ["generate", "/dev/zero"]):
            code, _, err = run(capsys, *argv)
            assert code == 2 and len(err) == 1 and "is not a regular file" in err[0], (argv, err)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------ 9: sizes up front


def test_huge_sizes_are_refused_at_once_with_the_number(capsys, tmp_path):
    """Nothing is allocated: each refusal takes well under a second (it used to allocate
    for 47 s with --num-layers 10**9)."""
    import time

    for extra, match in ((["--num-layers", str(10**9)], "1,000,000,000 layer(s)"),
                         (["--hidden", str(10**12)], "H=1,000,000,000,000"),
                         (["--num-preds", str(10**23)], "--num-preds 100,000,000,000,000,000,000,000")):
        t0 = time.perf_counter()
        code, _, err = run(capsys, "train", "--out", tmp_path / "run", *TINY, *extra)
        assert code == 2 and len(err) == 1 and match in err[0], err
        assert "more than the" in err[0] and "of memory here" in err[0]
        assert time.perf_counter() - t0 < 5


def test_deep_models_are_estimated_in_constant_time_and_exactly():
    """Past 16 layers estimate_memory extrapolates: parameters, gradients, optimiser state
    and activations exactly (every layer above the first is alike), the workspace as a
    lower bound; param_count is exact at any depth."""
    import dataclasses
    import time

    from rnnlab import memory
    from rnnlab.params import param_shapes

    for cell, bi, dropout, backend in (("lstm", False, 0.0, "numpy"), ("gru", True, 0.3, "numpy"),
                                        ("rnn", False, 0.0, "torch")):
        cfg = ModelConfig(cell, 11, 6, num_layers=40, bidirectional=bi, dropout=dropout)
        fast = memory.estimate_memory(cfg, 3, 5, backend, "adam")
        slow_walk = memory._WALKED_LAYERS
        try:
            memory._WALKED_LAYERS = 10**9
            walked = memory.estimate_memory(cfg, 3, 5, backend, "adam")
        finally:
            memory._WALKED_LAYERS = slow_walk
        for field in ("parameters", "gradients", "optimizer_state", "activations"):
            assert getattr(fast, field) == getattr(walked, field), (cell, field)
        assert fast.workspace <= walked.workspace
        assert memory.param_count(cfg) == sum(math.prod(s) for s in param_shapes(cfg).values())
    t0 = time.perf_counter()
    huge = dataclasses.replace(cfg, num_layers=10**9)
    assert memory.estimate_memory(huge, 32, 35).parameters > 10**11
    assert time.perf_counter() - t0 < 1


def test_gradcheck_refuses_a_model_it_would_check_for_hours(capsys):
    code, _, err = run(capsys, "gradcheck", "--hidden", "512")
    assert code == 2 and "2,130,954 evaluations" in err[0]
    code, out, _ = run(capsys, "gradcheck", "--cell", "rnn", "--hidden", "16")  # still fine
    assert code == 0 and "(ok," in out


# ------------------------------------------------------------------ 10: a full disk


def _disk_full_at(mp, marker: str, nth: int) -> list:
    """``os.fsync`` fails with ENOSPC on the ``nth`` save of a temporary file whose name
    holds ``marker``; returns the list of those saves' descriptors, filled as they come."""
    import os

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc to tell the temporary file's descriptor")
    real, saves = os.fsync, []

    def fsync(fd):
        if marker in os.readlink(f"/proc/self/fd/{fd}"):
            saves.append(fd)
            if len(saves) == nth:
                raise OSError(28, "No space left on device")
        return real(fd)

    mp.setattr(os, "fsync", fsync)
    return saves


def test_a_full_disk_names_the_file_and_the_checkpoint_kept(capsys, tmp_path, monkeypatch):
    """The disk fills up during the third save: status 2, one line naming the file, the
    error, and the epoch whose checkpoint is kept; that checkpoint loads, and --resume
    continues from it once there is space again."""
    out = tmp_path / "run"
    args = ["train", "--cell", "rnn", "--epochs", "4", "--checkpoint-every", "1", "--out", out,
            *TINY]
    with monkeypatch.context() as m:
        _disk_full_at(m, ".checkpoint.safetensors.", 3)
        code, _, err = run(capsys, *args)
    assert code == 2 and len(err) == 1, err
    assert re.search(r"^rnnlab: error: could not write .*run/checkpoint\.safetensors: No space "
                     r"left on device \(ENOSPC\); the previous file is kept unchanged \(the "
                     r"checkpoint after epoch 2\); free some space, then run the same command "
                     r"with --resume", err[0]), err[0]
    assert load_checkpoint(out).epoch == 2 and not list(out.glob(".checkpoint*.tmp"))
    assert run(capsys, *args, "--resume")[0] == 0 and load_checkpoint(out).epoch == 4


def test_a_full_disk_while_writing_the_best_model_names_both_files(capsys, tmp_path,
                                                                   monkeypatch):
    """best.safetensors is written just before the latest checkpoint: when it is the one
    the disk refuses, the line names it and the latest checkpoint that is kept."""
    out = tmp_path / "run"
    args = ["train", "--cell", "rnn", "--epochs", "6", "--checkpoint-every", "1", "--lr", "2",
            "--val-fraction", "0.2", "--out", out, *TINY]
    with monkeypatch.context() as m:
        best_saves = _disk_full_at(m, ".best.safetensors.", 2)
        code, _, err = run(capsys, *args)
    assert len(best_saves) == 2, "the validation perplexity never improved twice"
    assert code == 2 and len(err) == 1, err
    assert re.search(r"^rnnlab: error: could not write .*run/best\.safetensors: No space left on "
                     r"device \(ENOSPC\); the previous file is kept unchanged \(and "
                     r"checkpoint\.safetensors after epoch \d\); free some space, then run the "
                     r"same command with --resume", err[0]), err[0]
    epoch = int(re.search(r"after epoch (\d)", err[0]).group(1))
    assert load_checkpoint(out).epoch == epoch and load_checkpoint(out / "best.safetensors")


# ------------------------------------------------------------------ 11: odd values


def test_a_vanishing_temperature_is_greedy_not_nan(capsys, tmp_path):
    """T = 1e-320 divides the logits into overflow: the logits are shifted first, so the
    top one stays 0 and the rest go to -inf: sampling becomes greedy, never NaN."""
    from rnnlab.generate import choose

    rng = np.random.default_rng(0)
    logits = np.array([0.5, 3.0, -1.0, 2.999])
    assert all(choose(logits, "sample", 1e-320, None, rng) == 1 for _ in range(20))
    assert choose(logits, "sample", 1e-320, 2, rng) == 1
    corpus, vocab, cfg = tiny_model()
    be = rnnlab.get_backend("numpy")
    params = be.from_numpy(init_params(cfg, seed=3, init="torch"))
    greedy = rnnlab.predict("the ", 30, be, cfg, params, vocab)
    assert rnnlab.predict("the ", 30, be, cfg, params, vocab, strategy="sample",
                          temperature=1e-320, seed=5) == greedy
    out = tmp_path / "run"
    assert run(capsys, "train", "--cell", "rnn", "--epochs", "1", "--out", out, *TINY)[0] == 0
    code, text, err = run(capsys, "generate", out, "--temperature", "1e-320", "--num-preds", "20")
    assert code == 0, err
    assert text.strip() == run(capsys, "generate", out, "--num-preds", "20")[1].strip()


# ------------------------------------------------------------------ the run folder is rnnlab's


def test_a_planted_lock_link_writes_nothing_through_it(capsys, tmp_path):
    """A symbolic link at .rnnlab.lock to a file of the user's, or to nowhere: the run is
    refused and the file keeps its bytes; no file appears where the dangling link points."""
    precious = tmp_path / "precious.txt"
    precious.write_text("precious-user-data")
    for name, target in (("a", precious), ("b", tmp_path / "outside.txt")):
        (tmp_path / name).mkdir()
        (tmp_path / name / ".rnnlab.lock").symlink_to(target)
        code, _, err = run(capsys, "train", "--cell", "rnn", "--epochs", "1", "--out",
                           tmp_path / name, *TINY)
        assert code == 2 and "is a symbolic link" in err[0], err
        assert not (tmp_path / name / "checkpoint.safetensors").exists()
    assert precious.read_text() == "precious-user-data"
    assert not (tmp_path / "outside.txt").exists()


def test_a_full_disk_at_the_first_save_leaves_the_folder_as_it_was(capsys, tmp_path,
                                                                    monkeypatch):
    """The first save stages best.safetensors, then the checkpoint's temp file meets a
    full disk: neither is renamed into place, and the run removes the folder it made with
    its lock, so no best model is left without its run, and the same command runs again
    without --overwrite."""
    out = tmp_path / "run"
    args = ["train", "--cell", "rnn", "--epochs", "2", "--checkpoint-every", "1", "--out", out,
            *TINY]
    with monkeypatch.context() as m:
        _disk_full_at(m, ".checkpoint.safetensors.", 1)
        code, _, err = run(capsys, *args)
    assert code == 2 and "nothing was written" in err[0], err
    assert not out.exists(), "the folder this run made is removed with its lock: as it was"
    assert run(capsys, *args)[0] == 0 and load_checkpoint(out / "best.safetensors").epoch >= 1


def test_a_full_disk_keeps_the_previous_best_model(capsys, tmp_path, monkeypatch):
    """The third save fails on the checkpoint after staging a better best model: the
    best.safetensors on disk stays the one saved with epoch 2's checkpoint, never an epoch
    the kept checkpoint has not reached."""
    args = ["train", "--cell", "rnn", "--epochs", "3", "--checkpoint-every", "1",
            "--val-fraction", "0.2", *TINY]
    assert run(capsys, *args, "--out", tmp_path / "whole")[0] == 0
    vals = [h["val_ppl"] for h in load_checkpoint(tmp_path / "whole").history]
    assert vals[2] < min(vals[:2]), "epoch 3 must be the best for this test to mean anything"
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _disk_full_at(m, ".checkpoint.safetensors.", 3)
        code, _, err = run(capsys, *args, "--out", out)
    assert code == 2 and "the checkpoint after epoch 2" in err[0], err
    assert load_checkpoint(out).epoch == 2
    assert load_checkpoint(out / "best.safetensors").epoch <= 2
    assert not list(out.glob(".*.tmp"))


def test_overwrite_replaces_the_old_best_model_at_the_first_save(capsys, tmp_path):
    """--overwrite of a run with a best model, by a run without validation: the old best
    is gone once the new run has saved (it would name another run's epoch); the new
    run's plots are rnnlab's, and a user's own plot is refused unless --overwrite."""
    from rnnlab.cli.run_writer import drawn_by_rnnlab

    out = tmp_path / "run"
    base = ["train", "--cell", "rnn", "--epochs", "1", "--out", out,
            *[a for a in TINY if a != "--no-plot"]]
    assert run(capsys, *base)[0] == 0 and (out / "best.safetensors").exists()
    assert drawn_by_rnnlab(out / "perplexity.png") and drawn_by_rnnlab(out / "grad_norm.png")
    code, _, err = run(capsys, *base, "--overwrite", "--val-fraction", "0")
    assert code == 0, err
    assert not (out / "best.safetensors").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "grad_norm.png").write_bytes(b"\x89PNG\r\n\x1a\n my own figure")
    base[base.index(out)] = mine
    code, _, err = run(capsys, *base)
    assert code == 2 and "grad_norm.png is not a plot rnnlab drew" in err[0], err
    assert (mine / "grad_norm.png").read_bytes().endswith(b"my own figure")
    assert run(capsys, *base, "--overwrite")[0] == 0 and drawn_by_rnnlab(mine / "grad_norm.png")


def test_a_resume_opens_no_recorded_corpus_outside_the_run(capsys, tmp_path, monkeypatch):
    """A checkpoint's recorded corpus outside the current folder and the run's project
    folder is never opened (not even hashed) unless --corpus names it; named, the run
    resumes."""
    import rnnlab.cli.run_record as run_record

    book = tmp_path / "elsewhere" / "book.txt"
    book.parent.mkdir()
    book.write_text(TEXT)
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    args = ["train", "--cell", "rnn", "--out", "runs/run", *TINY]
    assert run(capsys, *args, "--epochs", "1", "--corpus", book)[0] == 0
    opened, real = [], run_record.load_corpus
    monkeypatch.setattr(run_record, "load_corpus",
                        lambda path, *a, **k: opened.append(str(path)) or real(path, *a, **k))
    code, _, err = run(capsys, *args, "--epochs", "2", "--resume")
    assert code == 2 and "lies outside this folder and the run's" in err[0], err
    assert opened == []
    assert run(capsys, *args, "--epochs", "2", "--resume", "--corpus", book)[0] == 0
    assert opened == [str(book)]


def test_a_resume_replaces_a_best_model_another_run_left(capsys, tmp_path):
    """A run without validation, beside a best.safetensors copied from another run: the
    resume's first save removes it (it is no epoch of this run), so generate reads the
    run's own checkpoint afterwards instead of refusing."""
    import shutil

    other, out = tmp_path / "other", tmp_path / "run"
    assert run(capsys, "train", "--cell", "lstm", "--epochs", "1", "--out", other, *TINY)[0] == 0
    args = ["train", "--cell", "rnn", "--val-fraction", "0", "--out", out, *TINY]
    assert run(capsys, *args, "--epochs", "1")[0] == 0
    shutil.copyfile(other / "best.safetensors", out / "best.safetensors")
    code, _, err = run(capsys, "generate", out, "--num-preds", "5")
    assert code == 2 and "belongs to another run" in err[0], err
    assert run(capsys, *args, "--epochs", "2", "--resume")[0] == 0
    assert not (out / "best.safetensors").exists()
    assert run(capsys, "generate", out, "--num-preds", "5")[0] == 0
