"""Data-parallel training (torchrun, gloo on the CPU) equals one process, to round-off.

* The property: two ranks, each training B/2 rows of every batch through DDP, end with
  the parameters, perplexities (training and validation) and gradient norms of one
  process training all B rows, in float64, for RNN, LSTM and GRU on both torch paths,
  sequential and random partitioning, with clipping on every batch and never, and
  stacked layers with dropout (each rank's masks are its rows of the whole batch's).
  One torchrun of tests/distributed_worker.py trains every combination.
* A hung peer: a collective gives up after the group's timeout with a DistributedError.
* The command as users type it: ``torchrun ... -m rnnlab train --backend torch``
  against ``rnnlab train`` in one process; resumes from 2 processes to 1 and from 1 to 2;
  a rank SIGKILLed at a random moment leaves a checkpoint that loads and resumes to the
  one-process numbers.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rnnlab.distributed import Launch, check_divisible, launch_env, shard_rows, split_rows
from rnnlab.errors import ConfigError

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")

pytestmark = [
    pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                       reason="this torch has no torch.distributed / gloo"),
    pytest.mark.skipif(os.name != "posix" or not os.path.isdir("/proc"),
                       reason="torchrun, SIGKILL and /proc"),
]

ROOT = pathlib.Path(__file__).resolve().parents[1]
THOROUGH = os.environ.get("RNNLAB_HYPOTHESIS_PROFILE") == "thorough"
RTOL = 1e-10  # float64: the ranks add the same terms in another order, nothing more


def base_env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "RNNLAB_TEST_SLOW_SAVE"):
        env.pop(name, None)
    return env


def torchrun(*args: str) -> list:
    """torchrun with 2 processes on a free port (--standalone: tests may run side by side)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", "2", *args]


def assert_close(got, want, what: str) -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = max(float(np.max(np.abs(want))), 1e-300)
    err = float(np.max(np.abs(got - want))) / scale
    assert err <= RTOL, f"{what}: relative error {err:.2e} > {RTOL:.0e}"


# ------------------------------------------------------------------------ the row shards


def test_shards_are_blocks_of_rows_that_tile_the_batch():
    X = np.arange(24).reshape(6, 4)  # (B, T)
    parts = [shard_rows(X, r, 3) for r in range(3)]
    assert all(p.shape == (2, 4) for p in parts)
    np.testing.assert_array_equal(np.concatenate(parts), X)
    masks = np.arange(5 * 6 * 2).reshape(5, 6, 2)  # (T, B, H*D): rows on axis 1
    np.testing.assert_array_equal(shard_rows(masks, 1, 3, axis=1), masks[:, 2:4])
    with pytest.raises(ConfigError, match=r"batch_size 6 cannot be split evenly over 4"):
        shard_rows(X, 0, 4)
    with pytest.raises(ConfigError, match=r"--batch-size 5 cannot be split evenly over 2"):
        check_divisible(5, 2, "--batch-size")
    # validation rows need not divide: the first ranks take one more, a rank may get none
    assert [split_rows(3, r, 2) for r in range(2)] == [slice(0, 2), slice(2, 3)]
    assert [split_rows(1, r, 3) for r in range(3)] == [slice(0, 1), slice(1, 1), slice(1, 1)]


def test_launch_env_reads_torchrun_variables():
    assert launch_env({}) is None  # a plain process
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    assert launch_env(env) == Launch(3, 4, 1, 2)
    with pytest.raises(ConfigError, match=r"RANK='x' is not an integer"):
        launch_env({**env, "RANK": "x"})
    with pytest.raises(ConfigError, match=r"inconsistent launcher environment: RANK=4"):
        launch_env({**env, "RANK": "4"})


def test_other_ranks_leave_shared_errors_to_rank_0(monkeypatch, capsys, tmp_path):
    """Every process meets a bad option alike; only rank 0 says so, all exit with 2."""
    from rnnlab import cli

    for name, value in (("RANK", "1"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "1"),
                        ("LOCAL_WORLD_SIZE", "2")):
        monkeypatch.setenv(name, value)
    assert cli.main(["train", "--backend", "numpy", "--out", str(tmp_path)]) == 2  # refused
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--hidden", "0"])  # argparse's refusal
    assert exit_.value.code == 2
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    assert cli.main(["train", "--backend", "numpy", "--out", str(tmp_path)]) == 2
    assert "the numpy backend trains in one process" in capsys.readouterr().err


def test_other_commands_run_on_process_0_alone(monkeypatch, capsys, tmp_path):
    """generate, gradcheck, verify, inspect, memory under torchrun: process 0 does the
    work and prints it once; every other process leaves at once with status 0, without
    reading a file (its checkpoint argument here does not even exist)."""
    from rnnlab import cli

    for name, value in (("RANK", "1"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "1"),
                        ("LOCAL_WORLD_SIZE", "2")):
        monkeypatch.setenv(name, value)
    for argv in (["gradcheck", "--cell", "rnn", "--hidden", "3"],
                 ["generate", str(tmp_path / "nowhere")], ["memory"],
                 ["inspect", "--window", "1"],
                 ["verify", str(tmp_path / "none.py"), "--convention", "cs231n"]):
        assert cli.main(argv) == 0, argv
        assert capsys.readouterr() == ("", ""), argv
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert cli.main(["gradcheck", "--cell", "rnn", "--hidden", "3"]) == 0
    assert capsys.readouterr().out.count("(ok,") >= 1
    assert cli.main(["generate", str(tmp_path / "nowhere")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


# ----------------------------------------------------------------- N ranks = one process


@pytest.fixture(scope="module")
def worker_out(tmp_path_factory) -> pathlib.Path:
    """One torchrun of the worker: every combination, 2 ranks, then the hung peer."""
    out = tmp_path_factory.mktemp("ddp")
    proc = subprocess.run(torchrun(str(ROOT / "tests" / "distributed_worker.py"), str(out)),
                          env=base_env(), cwd=str(ROOT), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _combos():
    sys.path.insert(0, str(ROOT / "tests"))
    import distributed_worker

    return distributed_worker


W = _combos()


@pytest.mark.parametrize("i", range(len(W.COMBOS)),
                         ids=["{cell}-{impl}-{p}-{c}{d}".format(
                             p="random" if c["random"] else "seq",
                             c="clip" if c["clip"] else "noclip",
                             d=f"-{c['layers']}layers-dropout" if c["dropout"] else "", **c)
                             for c in W.COMBOS])
def test_two_ranks_equal_one_process(i, worker_out):
    from rnnlab.torch_backend import TorchBackend

    combo = W.COMBOS[i]
    torch.set_num_threads(1)
    want = W.run(combo, TorchBackend("float64", "cpu", combo["impl"]))  # all B rows
    ranks = [np.load(worker_out / f"rank{r}-{i}.npz") for r in range(2)]
    for name, value in want.items():
        # DDP leaves every replica with the same bits: the same gradient, the same step
        np.testing.assert_array_equal(ranks[0][name], ranks[1][name], err_msg=name)
        assert_close(ranks[0][name], value, name)
    # the property covers what it says: clipping on every batch, or never
    assert (want["stats"][:, 4] == (1.0 if combo["clip"] else 0.0)).all()


def test_a_failed_set_up_stops_every_rank_with_one_message(worker_out):
    ranks = [json.loads((worker_out / f"agree{r}.json").read_text()) for r in range(2)]
    # rank 1 failed alone: rank 0 (which prints) names it; rank 1 raises its own
    assert ranks[0][0] == ["CorpusError", "corpus file 'x.txt' does not exist (on process 1 of 2)"]
    assert ranks[1][0] == ["CorpusError", "corpus file 'x.txt' does not exist"]
    for r in range(2):  # what rank 0 read, or failed to read, reaches every rank
        assert ranks[r][1] == ["ConfigError", "--resume: no checkpoint"]
        assert ranks[r][2] == ["ok", "checkpoint bytes"]


def test_a_hung_peer_stops_the_survivor_after_the_timeout(worker_out):
    outcome = json.loads((worker_out / "hang.json").read_text())
    assert outcome["error"] == "DistributedError", outcome
    assert "lost the others" in outcome["message"] and "1 s timeout" in outcome["message"]
    assert "run the same command with --resume" in outcome["message"]  # what to do
    assert "process 1 did not answer" in outcome["message"]  # the one that hung, named
    # the group was made with 120 s: set_timeout cut it to 1 s, then 1 s for the others to
    # say they are waiting too (rank 1 never says it: it sleeps 2.5 s, then leaves)
    assert 1.9 < outcome["seconds"] < 3.5, outcome


def test_a_timeout_is_a_communication_error_and_auto_is_about_an_epoch():
    """gloo's words for a peer that stopped (not died) are a lost peer, not a bug's
    traceback; --dist-timeout auto waits twice the first epoch, between 60 and 300 s."""
    from rnnlab.distributed import epoch_timeout
    from rnnlab.torch_backend.distributed import is_communication_error

    assert is_communication_error(RuntimeError("Application timeout caused pair closure"))
    assert not is_communication_error(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert (epoch_timeout(0.5), epoch_timeout(45.0), epoch_timeout(1e4)) == (60.0, 90.0, 300.0)


# ------------------------------------------------------------------ the command, as typed

ARGS = ["--backend", "torch", "--device", "cpu", "--cell", "lstm", "--hidden", "12",
        "--max-tokens", "1500", "--batch-size", "4", "--num-steps", "8", "--no-plot",
        "--no-progress", "--num-preds", "5", "--optimizer", "adam", "--lr", "0.01",
        "--dtype", "float64", "--seed", "5", "--checkpoint-every", "1"]
TIMING = ("tokens_per_s", "seconds")


def run_here(out, *extra) -> None:
    """``rnnlab train`` in this process, one thread (as each torchrun process has)."""
    from rnnlab import cli

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli.main(["train", *ARGS, "--out", str(out), *extra]) == 0
    finally:
        torch.set_num_threads(threads)


def run_torchrun(out, *extra, env=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(torchrun("-m", "rnnlab", "train", *ARGS, "--out", str(out), *extra),
                          env=env or base_env(), cwd=str(ROOT), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def assert_same_run(got_dir, want_dir, epochs: int) -> None:
    from rnnlab.checkpoint import load_checkpoint

    got, want = load_checkpoint(got_dir), load_checkpoint(want_dir)
    assert got.epoch == want.epoch == epochs
    for name, value in want.params.items():
        assert_close(got.params[name], value, f"param {name}")
    assert got.optimizer["step"] == want.optimizer["step"]
    for name, value in want.optimizer["arrays"].items():
        assert_close(got.optimizer["arrays"][name], value, f"optimizer {name}")
    assert_close(got.arrays["grad_norms"], want.arrays["grad_norms"], "per-batch norms")
    assert len(got.history) == len(want.history) == epochs
    for g, w in zip(got.history, want.history):
        for key, value in w.items():
            if key not in TIMING and value is not None:
                assert_close(g[key], value, f"epoch {w['epoch']} {key}")


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, time_machine_dir):
    """One process: 2 epochs, and the same run resumed to 4."""
    os.environ["RNNLAB_DATA"] = str(time_machine_dir)  # the torchrun children inherit it
    base = tmp_path_factory.mktemp("one")
    run_here(base / "two", "--epochs", "2")
    shutil.copytree(base / "two", base / "four")
    run_here(base / "four", "--epochs", "4", "--resume")
    return base


def test_torchrun_two_processes_equal_one_and_resume_on_one(one_process, tmp_path):
    from rnnlab.checkpoint import load_checkpoint

    proc = run_torchrun(tmp_path / "run", "--epochs", "2")
    assert_same_run(tmp_path / "run", one_process / "two", 2)
    assert load_checkpoint(tmp_path / "run").extra["world_size"] == 2
    assert load_checkpoint(one_process / "two").extra["world_size"] == 1
    lines = proc.stdout.splitlines()  # rank 0 alone prints: each line once
    assert sum(line.startswith("epoch    1/2") for line in lines) == 1, proc.stdout
    assert sum(line.startswith("saved ") for line in lines) == 1, proc.stdout
    assert "rnnlab" not in proc.stderr.replace("rnnlab.", ""), proc.stderr  # no error lines
    run_here(tmp_path / "run", "--epochs", "4", "--resume")  # 2 processes -> 1
    assert_same_run(tmp_path / "run", one_process / "four", 4)
    assert load_checkpoint(tmp_path / "run").extra["world_size"] == 1


def test_a_one_process_run_resumes_on_two(one_process, tmp_path):
    shutil.copytree(one_process / "two", tmp_path / "run")
    proc = run_torchrun(tmp_path / "run", "--epochs", "4", "--resume")
    assert "(trained on torch, continuing on torch x 2 processes)" in proc.stdout, proc.stdout
    assert_same_run(tmp_path / "run", one_process / "four", 4)


def children(pid: int) -> list:
    """The pids whose parent is ``pid`` (torchrun's worker processes)."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


@pytest.mark.parametrize("chain", range(6 if THOROUGH else 1))
def test_sigkill_of_a_rank_leaves_a_checkpoint_that_resumes(chain, one_process, tmp_path):
    """A rank SIGKILLed at a seeded random moment after the first save (saves slowed by
    the RNNLAB_TEST_SLOW_SAVE hook, so the kill may land inside one): torchrun stops the
    other, the checkpoint loads, and torchrun --resume ends with the numbers of one
    process that was never interrupted."""
    from rnnlab.checkpoint import load_checkpoint

    out = tmp_path / "run"
    rng = random.Random(15 + chain)  # chain 0 kills rank 0, the writer
    victim, delay = rng.randrange(2), rng.uniform(0.0, 0.6)
    proc = subprocess.Popen(torchrun("-m", "rnnlab", "train", *ARGS, "--out", str(out),
                                     "--epochs", "4"),
                            env={**base_env(), "RNNLAB_TEST_SLOW_SAVE": "0.3"},
                            cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.safetensors").exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.02)
        time.sleep(delay)
        workers = children(proc.pid)
        # each save lasts 0.3 s more (the test hook), so 3 epochs still lie ahead
        assert proc.poll() is None and len(workers) == 2, (proc.poll(), workers)
        os.kill(workers[victim], signal.SIGKILL)
        _, err = proc.communicate(timeout=120)  # torchrun tears the group down, then exits
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    ckpt = load_checkpoint(out)  # a CheckpointError here would be lost work
    assert 1 <= ckpt.epoch <= 4 and ckpt.extra["world_size"] == 2
    assert all(np.isfinite(v).all() for v in ckpt.params.values())
    assert proc.returncode != 0, err.decode()[-2000:]
    if ckpt.epoch < 4:
        run_torchrun(out, "--epochs", "4", "--resume")
    assert_same_run(out, one_process / "four", 4)
