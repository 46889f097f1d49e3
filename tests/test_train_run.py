"""``rnnlab train`` as a run a user expects: resumed from anywhere, stopped by a scheduler,
options refused early and in flag names, progress over the whole run, one-line samples."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_run import numbers, run
from rnnlab.checkpoint import load_checkpoint
from rnnlab.cli.common import FLAGS, flag_names
from rnnlab.cli.progress import RunProgress, printable

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--hidden", "8", "--max-tokens", "600", "--batch-size", "4", "--num-steps", "8",
        "--no-plot", "--no-progress", "--num-preds", "5", "--threads", "1"]


@pytest.fixture(autouse=True)
def _data(monkeypatch, time_machine_dir):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))


# ------------------------------------------------------------- resume from anywhere


def novel(path: Path, text: str = "the cat sat on the mat. ") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text * 60, encoding="utf-8")
    return path


def test_a_run_resumes_from_another_directory_and_with_a_copy_of_its_corpus(
        capsys, tmp_path, monkeypatch):
    """Trained in project/ on a relative path; resumed from elsewhere with no --corpus, with
    a relative path that resolves elsewhere, with an absolute path to a copy: all accepted,
    because the text is the same, and all end with the uninterrupted run's numbers. Other
    text under the run's own file name is refused."""
    project = tmp_path / "project"
    novel(project / "zh.txt", "时间旅行者说，")
    args = ["train", "--corpus", "zh.txt", "--cell", "rnn", "--optimizer", "adam", "--lr",
            "0.02", *TINY]
    monkeypatch.chdir(project)
    assert run(capsys, *args, "--epochs", "4", "--out", "full")[0] == 0
    assert run(capsys, *args, "--epochs", "1", "--out", "runs/zh")[0] == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run_dir = project / "runs" / "zh"
    code, _, err = run(capsys, "train", "--resume", "--out", run_dir, "--epochs", "2")
    assert code == 0, err
    novel(elsewhere / "zh.txt", "时间旅行者说，")  # a copy, found by the same relative name
    code, out, err = run(capsys, "train", "--resume", "--out", run_dir, "--epochs", "3",
                         "--corpus", "zh.txt")
    assert code == 0, err
    code, _, err = run(capsys, "train", "--resume", "--out", run_dir, "--epochs", "4",
                       "--corpus", project / "zh.txt")
    assert code == 0, err
    assert numbers(run_dir) == numbers(project / "full")
    novel(elsewhere / "zh.txt", "时间旅行者笑，")  # same name, other text
    code, _, err = run(capsys, "train", "--resume", "--out", run_dir, "--epochs", "5",
                       "--corpus", "zh.txt")
    assert code == 2 and len(err) == 1
    assert "--corpus zh.txt is not the text the run was trained on" in err[0]
    assert "another SHA-256" in err[0]


def test_a_moved_corpus_is_found_beside_the_run_or_named(capsys, tmp_path, monkeypatch):
    project = tmp_path / "project"
    novel(project / "data" / "book.txt")
    monkeypatch.chdir(project)
    args = ["train", "--corpus", "data/book.txt", "--cell", "rnn", *TINY]
    assert run(capsys, *args, "--epochs", "1", "--out", "runs/b")[0] == 0
    moved = tmp_path / "moved"
    (project).rename(moved)  # the whole project moved: the recorded absolute path is gone
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "train", "--resume", "--out", moved / "runs" / "b",
                         "--epochs", "2")
    assert code == 0, err
    assert f"reading the run's corpus from {moved / 'data' / 'book.txt'}" in out
    (moved / "data" / "book.txt").unlink()
    code, _, err = run(capsys, "train", "--resume", "--out", moved / "runs" / "b",
                       "--epochs", "3")
    assert code == 2 and "is not there any more" in err[0] and "give --corpus PATH" in err[0]


# ----------------------------------------------------------------- stop signals


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_like_ctrl_c(tmp_path, time_machine_dir, signum, status):
    """A real process: the signal arrives mid-run; the last checkpoint stays, the resume
    line is printed, the status is 128 + the signal's number, and no traceback."""
    env = dict(os.environ, RNNLAB_DATA=str(time_machine_dir), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "rnnlab", "train", "--cell", "rnn", *TINY, "--epochs", "10000",
           "--checkpoint-every", "1", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while not (tmp_path / "checkpoint.safetensors").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # a few more epochs, so the signal lands mid-step or mid-save
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = err.decode().strip().splitlines()
    assert proc.returncode == status, err
    assert "Traceback" not in "\n".join(err)
    name = signal.Signals(signum).name
    m = re.fullmatch(rf"stopped by {name}; the last checkpoint is \S+, after epoch (\d+); run "
                     r"the same command with --resume to continue", err[-1])
    assert m, err
    assert load_checkpoint(tmp_path).epoch == int(m.group(1)) >= 1


# ------------------------------------------------- options refused early, in flags


@pytest.mark.parametrize("argv,message", [
    (["train", "--impl", "nn"], "--impl nn needs --backend torch (the numpy backend has one "
                                "implementation"),
    (["train", "--device", "cuda"], "--device cuda needs --backend torch"),
    (["gradcheck", "--impl", "nn"], "--impl nn needs --backend torch"),
    (["memory", "--backend", "numpy", "--impl", "nn"], "--impl nn needs --backend torch"),
    (["memory", "--cell", "gru", "--backend", "torch", "--impl", "nn"],
     "computes the torch form of the GRU, R * (H W_hh + b_hn), not d2l's (R * H) W_hh; add "
     "--gru-form torch, or use --impl scratch"),
    (["memory", "--cell", "gru", "--impl", "nn"], "add --gru-form torch"),
    (["gradcheck", "--cell", "gru", "--backend", "torch", "--impl", "nn"], "add --gru-form torch"),
    (["train", "--cell", "gru", "--backend", "torch", "--impl", "nn", "--device", "cpu"],
     "add --gru-form torch"),
    (["train", "--batch-size", "5000"], "--batch-size 5000 and --num-steps 35 need at least"),
])
def test_impossible_options_are_refused_before_anything_runs(capsys, tmp_path, argv, message):
    if "torch" in argv:
        pytest.importorskip("torch")
    code, out, err = run(capsys, *argv, *(["--out", tmp_path / "r"] if argv[0] == "train"
                                          else []))
    assert code == 2 and out == "" and len(err) == 1, (out, err)
    assert message in err[0]
    # no Python argument names (batch_size, device='cpu'): the flags the user typed
    assert not re.search(r"\b(" + "|".join(k for k in FLAGS if "_" in k) + r")\b|\w+='",
                         err[0]), err[0]


def test_library_messages_are_said_in_flag_names():
    assert flag_names("batch_size=32 and num_steps=35 need at least 1156") == \
        "--batch-size 32 and --num-steps 35 need at least 1156"
    assert flag_names("use device='cpu'") == "use --device cpu"
    assert flag_names("use gru_form='torch' (--gru-form torch) or impl='scratch'") == \
        "use --gru-form torch or --impl scratch"
    assert flag_names("val_fraction must be in [0, 1)") == "--val-fraction must be in [0, 1)"
    assert flag_names("use_random_iter=True") == "--random"
    assert flag_names("a device and an impl") == "a device and an impl"  # plain words stay
    # a quoted part is the user's own text (a file name, an --example): never rewritten
    assert flag_names("example 'B=1 T=0 seed=3' lacks num_steps, file 'num_steps=2.txt'") == \
        "example 'B=1 T=0 seed=3' lacks --num-steps, file 'num_steps=2.txt'"


def test_a_torch_run_resumed_on_numpy_leaves_its_torch_options_behind(capsys, tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "r"
    base = ["train", "--cell", "lstm", *TINY, "--out", out]
    assert run(capsys, *base, "--epochs", "1", "--backend", "torch", "--impl", "nn",
               "--device", "cpu")[0] == 0
    code, _, err = run(capsys, "train", "--resume", "--out", out, "--epochs", "2",
                       "--backend", "numpy")
    assert code == 0, err


# --------------------------------------------------------------------- progress


def test_samples_are_one_line_each():
    assert printable("ab\ncd\te\r") == "ab\\ncd\\te\\r"
    assert printable("时间 旅行") == "时间 旅行"


def test_sample_lines_of_a_text_with_newlines_stay_one_line(capsys, tmp_path):
    text = novel(tmp_path / "poem.txt", "roses are red\nviolets are blue\n")
    code, out, _ = run(capsys, "train", "--corpus", text, "--cell", "rnn", *TINY, "--epochs", "2",
                       "--sample-every", "1", "--prefix", "blue\nr", "--num-preds", "40",
                       "--out", tmp_path / "r")
    assert code == 0
    lines = out.splitlines()
    assert any(ln.startswith("  sample: blue\\nr") for ln in lines)  # the prefix, escaped
    assert all(ln.startswith(("training ", "threads", "epoch ", "  sample: ", "perplexity ",
                              "blue\\nr", "saved ", "best ")) for ln in lines), lines


def test_one_bar_counts_the_whole_run(monkeypatch, capsys):
    """Resumed after epoch 2 of 5: the bar's total is the 3 epochs left, its description the
    epoch, and a line logged meanwhile lands whole on stdout."""
    pytest.importorskip("tqdm")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    p = RunProgress(True, first_epoch=2, num_epochs=5, tokens_per_batch=100)
    for epoch in (2, 3):
        for i in range(4):
            p.batch(epoch, i, 4, 2.0)
        p.log(f"epoch {epoch + 1}/5  a line")
    assert p.bar.total == 3 * 4 * 100 and p.bar.n == 2 * 4 * 100
    assert p.bar.desc == "epoch 4/5"
    p.close()
    out = capsys.readouterr().out
    assert out == "epoch 3/5  a line\nepoch 4/5  a line\n"
    off = RunProgress(True, 0, 5, 100)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert not RunProgress(True, 0, 5, 100).enabled and off.enabled
