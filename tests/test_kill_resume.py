"""No lost work (issue 7): real ``python -m rnnlab train`` processes, SIGKILLed.

A run killed at any moment, during start-up, training or a checkpoint save, must leave
either no checkpoint (killed before the first save) or one that loads; ``--resume`` from
it must finish with exactly the numbers of a run never interrupted: the per-epoch
history, the final parameters and the optimiser's moments, bit for bit (numpy backend).

Kill moments are seeded random delays spanning the whole run, and, with the test hook
``RNNLAB_TEST_SLOW_SAVE`` (rnnlab/checkpoint.py), the exact moment between writing a
checkpoint's temporary file and renaming it over the old one. The ci profile kills
about 20 times in under a minute; RNNLAB_HYPOTHESIS_PROFILE=thorough kills ~5x more.
"""

from __future__ import annotations

import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rnnlab.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and fork semantics")

ROOT = pathlib.Path(__file__).resolve().parents[1]
THOROUGH = os.environ.get("RNNLAB_HYPOTHESIS_PROFILE") == "thorough"
EPOCHS = 8
# a small LSTM trained with Adam, so a resume must restore moments and step count too
ARGS = ["--cell", "lstm", "--hidden", "16", "--epochs", str(EPOCHS), "--max-tokens", "2000",
        "--batch-size", "4", "--num-steps", "8", "--checkpoint-every", "1", "--no-plot",
        "--no-progress", "--num-preds", "5", "--optimizer", "adam", "--lr", "0.01",
        "--seed", "3"]
TIMING_KEYS = ("tokens_per_s", "seconds")  # wall-clock: the only history entries that may differ


def temp_files(out: pathlib.Path) -> list:
    return sorted(out.glob(".checkpoint.safetensors.*.tmp"))


@pytest.fixture(scope="module")
def env(time_machine_dir) -> dict:
    e = dict(os.environ)
    e.update(RNNLAB_DATA=str(time_machine_dir), PYTHONPATH=str(ROOT),
             OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    e.pop("RNNLAB_TEST_SLOW_SAVE", None)
    return e


def start(out: pathlib.Path, env: dict, resume: bool, slow_save: float | None = None):
    e = dict(env)
    if slow_save is not None:
        e["RNNLAB_TEST_SLOW_SAVE"] = str(slow_save)
    cmd = [sys.executable, "-m", "rnnlab", "train", *ARGS, "--out", str(out)]
    return subprocess.Popen(cmd + (["--resume"] if resume else []), env=e, cwd=str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(out: pathlib.Path, env: dict) -> None:
    """Run to the end: resume when there is a checkpoint, else start afresh."""
    proc = start(out, env, resume=(out / "checkpoint.safetensors").exists())
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()


def kill(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)


def check_after_kill(out: pathlib.Path, last: int = EPOCHS) -> int:
    """No checkpoint yet, or one that loads with finite parameters; returns its epoch."""
    path = out / "checkpoint.safetensors"
    if not path.exists():
        return 0
    ckpt = load_checkpoint(path)  # a CheckpointError here would be lost work
    assert all(np.isfinite(v).all() for v in ckpt.params.values())
    assert 1 <= ckpt.epoch <= last and len(ckpt.history) == ckpt.epoch
    return ckpt.epoch


def snapshot(out: pathlib.Path) -> dict:
    ckpt = load_checkpoint(out)
    return {
        "epoch": ckpt.epoch,
        "history": [{k: v for k, v in h.items() if k not in TIMING_KEYS} for h in ckpt.history],
        "params": ckpt.params,
        "optimizer": ckpt.optimizer,
        "arrays": ckpt.arrays if hasattr(ckpt, "arrays") else {},
    }


def assert_same_run(got: dict, ref: dict) -> None:
    assert got["epoch"] == ref["epoch"] == EPOCHS
    assert got["history"] == ref["history"]  # floats compared with ==: bit-identical
    for name, value in ref["params"].items():
        np.testing.assert_array_equal(got["params"][name], value, err_msg=name)
    assert got["optimizer"]["step"] == ref["optimizer"]["step"]
    for name, value in ref["optimizer"]["arrays"].items():
        np.testing.assert_array_equal(got["optimizer"]["arrays"][name], value, err_msg=name)
    for name, value in ref["arrays"].items():
        np.testing.assert_array_equal(got["arrays"][name], value, err_msg=name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env) -> tuple[dict, float]:
    """The uninterrupted run, and how long it took (the span random kills are drawn from)."""
    out = tmp_path_factory.mktemp("reference")
    t0 = time.perf_counter()
    finish(out, env)
    return snapshot(out), time.perf_counter() - t0


@pytest.mark.parametrize("chain", range(16 if THOROUGH else 4))
def test_killed_at_random_moments_then_resumed(chain, reference, env, tmp_path):
    """Kill the run (and every resumed run) at seeded random moments, check the
    checkpoint after each kill, then resume to the end: the reference run's numbers."""
    ref, span = reference
    rng = random.Random(1000 + chain)
    kills = 10 if THOROUGH else 6
    epochs_seen = []
    for _ in range(kills):
        if epochs_seen and epochs_seen[-1] == EPOCHS:
            break  # finished between two kills
        proc = start(tmp_path, env, resume=(tmp_path / "checkpoint.safetensors").exists())
        # a third of the kills in start-up (imports, corpus, the first epoch), the rest
        # anywhere in a whole run's span: epochs, saves, the end
        short = rng.random() < 1 / 3
        time.sleep(rng.uniform(0.0, 0.35) if short else rng.uniform(0.0, span))
        kill(proc)
        epochs_seen.append(check_after_kill(tmp_path))
    assert epochs_seen == sorted(epochs_seen)  # a kill never takes a checkpoint backwards
    finish(tmp_path, env)
    assert temp_files(tmp_path) == []  # the last save swept up any killed save's temp file
    assert_same_run(snapshot(tmp_path), ref)


@pytest.mark.parametrize("save_index", [1, 2, 5] + ([3, 4, 6, 7, 8] if THOROUGH else []))
def test_killed_during_a_save(save_index, reference, env, tmp_path):
    """SIGKILL while save number ``save_index`` sits between its temp file and the rename:
    the previous checkpoint (epoch save_index - 1, or none) survives intact."""
    ref, _ = reference
    proc = start(tmp_path, env, resume=False, slow_save=0.25)
    seen, was_present, deadline = 0, False, time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            present = bool(temp_files(tmp_path))
            if present and not was_present:
                seen += 1
                if seen == save_index:
                    break
            was_present = present
            assert proc.poll() is None, "the run ended before the save to kill"
            time.sleep(0.002)
        else:
            pytest.fail(f"save {save_index} never started")
    finally:
        kill(proc)
    assert len(temp_files(tmp_path)) == 1  # the killed save's temp file is left behind...
    assert check_after_kill(tmp_path) == save_index - 1  # ...and the old checkpoint is whole
    finish(tmp_path, env)
    assert temp_files(tmp_path) == []  # ...until the next save removes it
    assert_same_run(snapshot(tmp_path), ref)


def test_stale_temp_of_a_live_writer_is_left_alone(tmp_path):
    """The sweep removes temp files of dead writers only: never a live process's save."""
    from rnnlab.checkpoint import remove_stale_temps

    path = tmp_path / "checkpoint.safetensors"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        mine = tmp_path / f".checkpoint.safetensors.{live.pid}.abc123.tmp"
        stale = tmp_path / f".checkpoint.safetensors.{dead.pid}.def456.tmp"
        other = tmp_path / ".other.safetensors.1.x.tmp"  # another file's temp: not ours
        for f in (mine, stale, other):
            f.write_bytes(b"partial")
        removed = remove_stale_temps(path)
        assert removed == [stale]
        assert mine.exists() and other.exists() and not stale.exists()
    finally:
        live.kill()
        live.wait()


def _one_line_refusal(out: pathlib.Path, env: dict, *extra) -> str:
    """A second ``rnnlab train`` into ``out``: status 2 and one line on stderr."""
    proc = subprocess.run([sys.executable, "-m", "rnnlab", "train", *ARGS, "--out", str(out),
                           *extra], env=env, cwd=str(ROOT), capture_output=True, timeout=120)
    lines = proc.stderr.decode().strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr.decode()
    return lines[0]


def test_a_second_writer_is_refused_and_a_killed_holder_leaves_no_lock(env, tmp_path):
    """Run A trains into --out. Run B into the same --out (even with --overwrite) and a
    --resume while A still writes are refused with one line naming the folder and A's
    pid; A's checkpoints go on. SIGKILL A: the kernel drops its lock, so the --resume
    goes ahead at once, with no stale lock to remove."""
    a = subprocess.Popen([sys.executable, "-m", "rnnlab", "train", *ARGS, "--epochs", "100000",
                          "--out", str(tmp_path)], env=env, cwd=str(ROOT),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "checkpoint.safetensors").exists():
            assert a.poll() is None and time.monotonic() < deadline, "run A never saved"
            time.sleep(0.02)
        for extra in (["--overwrite"], ["--resume"]):
            line = _one_line_refusal(tmp_path, env, *extra)
            assert re.search(rf"--out '{re.escape(str(tmp_path))}' is in use: process {a.pid} "
                             r"is training into it", line), line
        assert a.poll() is None  # A was not disturbed
        before = load_checkpoint(tmp_path).epoch
        while load_checkpoint(tmp_path).epoch == before:  # ...and still saves
            assert time.monotonic() < deadline, "run A stopped saving"
            time.sleep(0.02)
    finally:
        kill(a)
    epoch = load_checkpoint(tmp_path).epoch
    assert (tmp_path / ".rnnlab.lock").exists()  # the file stays; the lock went with A
    proc = subprocess.run([sys.executable, "-m", "rnnlab", "train", "--resume", "--out",
                           str(tmp_path), "--epochs", str(epoch + 1)], env=env, cwd=str(ROOT),
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    assert load_checkpoint(tmp_path).epoch == epoch + 1


# learning-rate decay and early stopping (rnnlab.schedule): a small RNN that decays from
# epoch 3 and stops on validation about epoch 11, saving every epoch
SCHED_ARGS = ["--cell", "rnn", "--hidden", "32", "--max-tokens", "1200", "--batch-size", "8",
              "--num-steps", "10", "--lr", "4", "--lr-decay", "0.9", "--lr-decay-after", "3",
              "--patience", "2", "--epochs", "60", "--checkpoint-every", "1", "--no-plot",
              "--no-progress", "--num-preds", "5", "--threads", "1"]


def sched_run(out: pathlib.Path, env: dict, resume: bool):
    e = dict(env, RNNLAB_TEST_SLOW_SAVE="0.05")  # a run long enough to be killed mid-way
    cmd = [sys.executable, "-m", "rnnlab", "train", *SCHED_ARGS, "--out", str(out)]
    return subprocess.Popen(cmd + (["--resume"] if resume else []), env=e, cwd=str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_schedules_resume_exactly_after_sigkill(env, tmp_path):
    """Killed at seeded random moments and resumed: the decayed learning rates, the epoch
    the run stops at, the parameters and best.safetensors are the uninterrupted run's."""
    ref_dir = tmp_path / "ref"
    t0 = time.perf_counter()
    proc = sched_run(ref_dir, env, resume=False)
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    span = time.perf_counter() - t0
    ref = load_checkpoint(ref_dir)
    assert ref.epoch < 60  # it stopped early
    out, rng, seen = tmp_path / "cut", random.Random(7), []
    while len(seen) < 6 and (not seen or seen[-1] < ref.epoch):
        proc = sched_run(out, env, resume=(out / "checkpoint.safetensors").exists())
        time.sleep(rng.uniform(0.3 * span, span))
        kill(proc)
        seen.append(check_after_kill(out, last=60))
    assert any(0 < e < ref.epoch for e in seen)  # some kills did land mid-run
    proc = sched_run(out, env, resume=(out / "checkpoint.safetensors").exists())
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    got = load_checkpoint(out)
    strip = lambda h: [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in h]  # noqa: E731
    assert got.epoch == ref.epoch and strip(got.history) == strip(ref.history)
    assert [e["lr"] for e in got.history][3] < 4.0  # the decay is in what was compared
    for a, b in ((got, ref), (load_checkpoint(out / "best.safetensors"),
                              load_checkpoint(ref_dir / "best.safetensors"))):
        assert a.epoch == b.epoch
        for name, value in b.params.items():
            np.testing.assert_array_equal(a.params[name], value, err_msg=name)
