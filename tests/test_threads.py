"""Thread control (rnnlab.threads): fixed counts, the ``auto`` tuner, and what it changes.

The tuner is tested on scripted step durations (a cost per thread count that changes
when "another job" starts or stops), so its decisions are checked exactly, without
depending on this machine's load; the real counts are set through threadpoolctl all
the same, and read back.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from rnnlab import threads
from rnnlab.backend import get_backend
from rnnlab.config import ModelConfig
from rnnlab.data import load_corpus
from rnnlab.errors import ConfigError
from rnnlab.params import init_params
from rnnlab.threads import ThreadTuner, candidate_counts, check_threads, limit_threads
from rnnlab.train import TrainConfig, train


def drive(tuner: ThreadTuner, cost, steps: int) -> list:
    """Feed ``steps`` steps whose duration is ``cost(thread count in use)``; returns the
    count each step ran at."""
    ran = []
    for _ in range(steps):
        ran.append(tuner.current)
        tuner.step_done(cost(tuner.current))
    return ran


def test_check_threads_accepts_auto_and_positive_ints_only():
    assert check_threads("auto") == "auto" and check_threads(3) == 3
    for bad in (0, -1, 1.5, True, "4", "all", None):
        with pytest.raises(ConfigError, match="threads must be 'auto' or a positive integer"):
            check_threads(bad)
    with pytest.raises(ConfigError, match="threads"):
        TrainConfig(threads="2")


def test_candidates_are_one_all_and_a_few_between():
    assert candidate_counts(1) == (1,)
    assert candidate_counts(2) == (1, 2)
    assert candidate_counts(8) == (1, 2, 4, 8)
    assert candidate_counts(64) == (1, 2, 4, 32, 64)


def test_a_fixed_count_is_set_inside_the_block_and_restored_after():
    before = threads.get_threads()
    with limit_threads(1):
        assert threads.get_threads() == 1
    assert threads.get_threads() == before
    with pytest.raises(RuntimeError):
        with ThreadTuner(1) as tuner:
            assert threads.get_threads() == 1 and not tuner.auto
            drive(tuner, lambda n: 1.0, 50)
            assert tuner.current == 1 and tuner.measurements == []
            raise RuntimeError("restored even on an exception")
    assert threads.get_threads() == before


def test_environment_variables_cap_auto(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with ThreadTuner("auto") as tuner:
        assert tuner.candidates == (1,) and not tuner.measuring
        assert drive(tuner, lambda n: 0.01, 100) == [1] * 100 and tuner.measurements == []
        assert tuner.calibrate(lambda: pytest.fail("one candidate: nothing to time")) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3,1")  # OpenMP's nested form: the outer level
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    assert threads.environment_limit() == 2


def test_auto_drops_a_count_after_one_slow_step_and_keeps_the_fast_one():
    """Busy machine: 2 threads 20x slower. After the untimed warm-up step, one step at 1
    thread and one at 2 decide it; 2 threads is never tried again in the measurement."""
    cost = {1: 0.01, 2: 0.2}.get
    with ThreadTuner("auto", most=2) as tuner:
        ran = drive(tuner, cost, 40)
        assert threads.get_threads() == 1
    assert ran[:3] == [1, 1, 2] and set(ran[3:]) == {1}
    (m,) = tuner.measurements
    assert m.chosen == 1 and m.seconds == {1: 0.01, 2: 0.2} and m.reason == "start"


class FakeClock:
    """A clock that a scripted probe advances by the cost of the count in use."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_probe_screens_out_a_hopeless_count_without_a_full_step():
    """Busy machine: a full step at 2 threads takes seconds. The probe (a forward over a
    few time steps) shows it 40x slower, so 2 threads never runs a full step; the first
    steady window then sets the pace that later windows are compared with."""
    clock = FakeClock()
    tuner = ThreadTuner("auto", most=2, clock=clock)
    tuner.probe = lambda: setattr(clock, "now", clock.now + {1: 0.001, 2: 0.04}[tuner.current])
    with tuner:
        ran = drive(tuner, {1: 0.01, 2: 3.0}.get, 40)
    assert ran == [1] * 40
    (m,) = tuner.measurements
    assert m.chosen == 1 and m.seconds == {} and m.probe_ratios() == pytest.approx({1: 1.0, 2: 40.0})
    assert tuner.reference == pytest.approx(0.01)
    assert tuner.cost == pytest.approx(3 * 0.001 + 3 * 0.04)  # what measuring again costs


def test_a_probe_that_finds_no_hopeless_count_leaves_the_choice_to_full_steps():
    clock = FakeClock()
    tuner = ThreadTuner("auto", most=2, clock=clock)
    probe_cost = {1: 0.0012, 2: 0.001}
    tuner.probe = lambda: setattr(clock, "now", clock.now + probe_cost[tuner.current])
    with tuner:
        ran = drive(tuner, {1: 0.012, 2: 0.010}.get, 20)
    assert ran[:7] == [1, 1, 2, 1, 2, 1, 2] and tuner.measurements[0].chosen == 2


def test_auto_takes_the_faster_count_and_fewer_threads_on_a_tie():
    with ThreadTuner("auto", most=2) as tuner:
        ran = drive(tuner, {1: 0.012, 2: 0.010}.get, 20)
    assert ran[:7] == [1, 1, 2, 1, 2, 1, 2] and tuner.measurements[0].chosen == 2
    assert set(ran[7:]) == {2}
    with ThreadTuner("auto", most=2) as tuner:
        drive(tuner, {1: 0.0102, 2: 0.0100}.get, 20)  # 2% apart: not worth a second core
    assert tuner.measurements[0].chosen == 1


def test_auto_measures_again_when_the_steps_slow_down():
    """Quiet, then another job takes the cores: 2 threads becomes 10x slower than 1.
    The tuner notices within a window or two and moves to 1 thread."""
    load = {"busy": False}

    def cost(n):
        if load["busy"]:
            return {1: 0.015, 2: 0.15}[n]
        return {1: 0.012, 2: 0.010}[n]

    with ThreadTuner("auto", most=2) as tuner:
        drive(tuner, cost, 100)
        assert tuner.current == 2
        load["busy"] = True
        ran = drive(tuner, cost, 200)
    assert tuner.measurements[-1].reason == "slower" and tuner.measurements[-1].chosen == 1
    slow_steps = sum(n == 2 for n in ran)
    assert slow_steps <= 2 * tuner.window + 1  # at most two windows at the slow count
    assert set(ran[-100:]) == {1}


def test_auto_rechecks_and_returns_to_more_threads_when_the_load_ends():
    """Busy, then quiet: nothing slows down, so only the periodic recheck can see that
    2 threads now win; measuring again never costs more than max_overhead of the run."""
    load = {"busy": True}

    def cost(n):
        return {1: 0.015, 2: 0.15}[n] if load["busy"] else {1: 0.012, 2: 0.008}[n]

    # recheck_s far below the overhead bound: the bound must hold the rechecks back
    with ThreadTuner("auto", most=2, recheck_s=0.5) as tuner:
        ran = drive(tuner, cost, 1000)  # 15 s of steady work at 1 thread
        busy_time = sum(cost(n) for n in ran)
        wasted = sum(cost(n) for n in ran[1:] if n == 2)
        assert wasted <= tuner.max_overhead * busy_time + cost(2)  # the first try is free
        load["busy"] = False
        ran = drive(tuner, cost, 10_000)
    assert tuner.measurements[-1].chosen == 2 and tuner.measurements[-1].reason == "recheck"
    assert ran[-1] == 2


def test_rechecks_grow_rarer_while_the_choice_holds():
    """5 s, then 10, 20, 40, 80 and 120 s between rechecks: a steady run of 1000 s
    measures 13 times, not 200."""
    with ThreadTuner("auto", most=2) as tuner:
        drive(tuner, {1: 0.012, 2: 0.010}.get, 100_000)
    gaps = [5, 10, 20, 40, 80] + [120] * 10
    expected = 1 + sum(1 for i in range(len(gaps)) if sum(gaps[:i + 1]) <= 1000 - 1)
    assert [m.chosen for m in tuner.measurements] == [2] * expected
    assert [m.reason for m in tuner.measurements[1:]] == ["recheck"] * (expected - 1)


def test_measuring_again_keeps_the_count_unless_another_is_clearly_faster():
    """Rechecks see 2 threads 6% faster: not worth a switch (noise, a passing burst);
    20% faster: switch."""
    cost = {1: 0.010, 2: 0.0098}
    with ThreadTuner("auto", most=2) as tuner:
        drive(tuner, lambda n: cost[n], 10)
        assert tuner.measurements[0].chosen == 1  # 2% apart at the start: the fewer threads
        cost[2] = 0.0094
        drive(tuner, lambda n: cost[n], 5_000)
        assert len(tuner.measurements) > 3 and {m.chosen for m in tuner.measurements} == {1}
        cost[2] = 0.008
        drive(tuner, lambda n: cost[n], 5_000)
    assert tuner.measurements[-1].chosen == 2


def test_calibrate_runs_the_step_and_keeps_the_choice():
    calls = []
    with ThreadTuner("auto", most=2) as tuner:
        chosen = tuner.calibrate(lambda: calls.append(threads.get_threads()))
        assert chosen == tuner.current == threads.get_threads()
    assert 3 <= len(calls) <= 7 and set(calls) <= {1, 2}
    assert ThreadTuner(1).calibrate(lambda: pytest.fail("a fixed count runs nothing")) == 1


@pytest.fixture(scope="module")
def corpus(time_machine_dir):
    return load_corpus("timemachine", 3000, data_dir=time_machine_dir)


@pytest.mark.parametrize("backend,dtype,rtol", [("numpy", "float64", 1e-12),
                                                ("numpy", "float32", 1e-5),
                                                ("torch", "float32", 1e-5)])
def test_the_thread_count_changes_results_by_round_off_only(corpus, backend, dtype, rtol):
    """1 thread, 2 threads and auto train to the same numbers up to reassociation of the
    matrix products' sums (docs/determinism.md records where the bits are identical)."""
    if backend == "torch":
        pytest.importorskip("torch")
    data, vocab = corpus
    cfg = ModelConfig("lstm", len(vocab), 64)
    results = {}
    for n in (1, 2, "auto"):
        be = get_backend(backend, dtype=dtype, **({"device": "cpu"} if backend == "torch" else {}))
        p = be.from_numpy(init_params(cfg, seed=0, dtype=dtype))
        h = train(be, cfg, p, data[:1700], TrainConfig(num_epochs=2, batch_size=16,
                                                       num_steps=20, threads=n))
        results[n] = ([s.train_ppl for s in h], be.to_numpy(p))
    for n in (2, "auto"):
        np.testing.assert_allclose(results[n][0], results[1][0], rtol=rtol)
        for k, v in results[1][1].items():
            np.testing.assert_allclose(results[n][1][k], v, rtol=rtol, atol=rtol * 1e-2,
                                       err_msg=f"{n} threads, {k}")


def test_train_feeds_every_step_to_the_tuner_and_restores_the_count(corpus):
    data, vocab = corpus
    cfg = ModelConfig("rnn", len(vocab), 16)
    be = get_backend("numpy")
    seen = []

    class Recorder(ThreadTuner):
        def step_done(self, seconds):
            seen.append(seconds)
            super().step_done(seconds)

    before = threads.get_threads()
    with Recorder("auto", most=2) as tuner:
        train(be, cfg, be.from_numpy(init_params(cfg, seed=0)), data,
              TrainConfig(num_epochs=2, batch_size=8, num_steps=10), tuner=tuner)
        assert tuner.measurements  # measured on the training steps themselves
    n_batches = 2 * ((len(data) - 1) // (8 * 10))
    assert len(seen) >= n_batches - 2 and all(s > 0 for s in seen)
    assert threads.get_threads() == before
    train(be, cfg, be.from_numpy(init_params(cfg, seed=0)), data,
          TrainConfig(num_epochs=1, batch_size=8, num_steps=10, threads=1))
    assert threads.get_threads() == before  # train() restores what it set


def test_cli_threads_option(capsys, tmp_path, monkeypatch, time_machine_dir):
    """--threads N|auto on train, generate, inspect, gradcheck; a bad value is one line."""
    from rnnlab import cli

    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))
    tiny = ["--hidden", "8", "--max-tokens", "600", "--batch-size", "4", "--num-steps", "8",
            "--no-plot", "--no-progress", "--num-preds", "5", "--epochs", "2"]
    for command in ("train", "generate", "inspect", "gradcheck"):
        for bad in ("0", "x", "1.5"):
            with pytest.raises(SystemExit) as exc:
                cli.main([command, "--threads", bad])
            err = capsys.readouterr().err.strip().splitlines()
            assert exc.value.code == 2 and len(err) == 1
            assert "argument --threads: expected 'auto' or a positive integer" in err[0]
    before = threads.get_threads()
    assert cli.main(["train", *tiny, "--out", str(tmp_path / "one"), "--threads", "1"]) == 0
    assert "threads:" not in capsys.readouterr().out  # a fixed count: nothing measured
    monkeypatch.setattr(threads, "max_threads", lambda: 2)  # as on a 2-core machine
    assert cli.main(["train", *tiny, "--out", str(tmp_path / "auto")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^threads: [12], the fastest on this machine now \(auto; (tokens/s: 1 "
                     r"thread [\d,]+(, 2 threads [\d,]+)?(; )?)?(2 threads \d+x slower on a short "
                     r"probe, as when other programs keep the cores busy)?\)$", out, re.M), out
    assert cli.main(["generate", str(tmp_path / "auto"), "--num-preds", "3"]) == 0
    assert cli.main(["gradcheck", "--cell", "rnn", "--threads", "1"]) == 0
    assert threads.get_threads() == before  # every command restores the count it found
