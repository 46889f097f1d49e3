"""Learning-rate decay, early stopping and the best model: pure functions of the epoch and
the history, so a run stopped anywhere and resumed ends exactly as one never stopped."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from cli_run import numbers, run
from rnnlab import cli
from rnnlab.backend import get_backend
from rnnlab.checkpoint import load_checkpoint
from rnnlab.config import ModelConfig
from rnnlab.data import load_corpus
from rnnlab.errors import ConfigError
from rnnlab.params import init_params
from rnnlab.schedule import best_epoch, lr_at, stopped_early
from rnnlab.train import TrainConfig, train

# a small RNN that overfits 1,200 tokens within ~15 epochs: validation turns, patience stops
SCHED = ["--cell", "rnn", "--hidden", "32", "--max-tokens", "1200", "--batch-size", "8",
         "--num-steps", "10", "--lr", "4", "--lr-decay", "0.9", "--lr-decay-after", "3",
         "--patience", "2", "--no-plot", "--no-progress", "--num-preds", "5", "--threads", "1"]


@pytest.fixture(autouse=True)
def _data(monkeypatch, time_machine_dir):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))


# ------------------------------------------------------------------ pure functions


def char_rnn_rates(lr, decay, after, epochs):
    """char-rnn's train.lua, as written: after each epoch's last iteration, if the epoch
    count reached learning_rate_decay_after, lr *= learning_rate_decay."""
    rates = []
    for epoch_done in range(1, epochs + 1):
        rates.append(lr)  # the rate this epoch trained with
        if decay < 1 and epoch_done >= after:
            lr = lr * decay
    return rates


@pytest.mark.parametrize("lr,decay,after", [(2e-3, 0.97, 10), (1.0, 0.5, 1), (0.1, 0.9, 0),
                                            (1.0, 1.0, 10)])
def test_lr_decay_is_char_rnns(lr, decay, after):
    expected = char_rnn_rates(lr, decay, after, 30)
    got = [lr_at(lr, e, decay, after) for e in range(30)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_step_and_cosine_are_torchs_schedulers():
    """step: StepLR(step_size=after, gamma=decay); cosine: CosineAnnealingLR(T_max=E), both
    as written (their closed forms), and against torch.optim.lr_scheduler where torch is."""
    step = [lr_at(0.5, e, 0.1, 3, "step") for e in range(10)]
    np.testing.assert_allclose(step, [0.5] * 3 + [0.05] * 3 + [0.005] * 3 + [0.0005], rtol=1e-12)
    cosine = [lr_at(2.0, e, schedule="cosine", num_epochs=8) for e in range(8)]
    np.testing.assert_allclose(cosine, [(1 + np.cos(np.pi * e / 8)) for e in range(8)],
                               rtol=1e-12)
    assert cosine[0] == 2.0 and 0 < cosine[-1] < 0.1
    assert lr_at(1.0, 7, 1.0, 3, "step") == 1.0  # decay 1: constant, as exp
    torch = pytest.importorskip("torch")
    for make, ours in ((lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.1),
                        lambda e: lr_at(0.5, e, 0.1, 3, "step")),
                       (lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 8),
                        lambda e: lr_at(0.5, e, schedule="cosine", num_epochs=8))):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
        sched = make(opt)
        for e in range(8):
            assert opt.param_groups[0]["lr"] == pytest.approx(ours(e), rel=1e-12, abs=1e-15), e
            opt.step()
            sched.step()


def test_schedule_choices_are_checked():
    TrainConfig(lr_schedule="cosine", lr_decay_after=0)  # cosine reads neither
    with pytest.raises(ConfigError, match="unknown lr_schedule .linear.; expected one of exp, step, cosine"):
        TrainConfig(lr_schedule="linear")
    with pytest.raises(ConfigError, match="give lr_decay_after 1 or more, got 0"):
        TrainConfig(lr_schedule="step", lr_decay=0.5, lr_decay_after=0)
    with pytest.raises(ConfigError, match="lr_decay=0.5 applies to the exp and step"):
        TrainConfig(lr_schedule="cosine", lr_decay=0.5)


@pytest.mark.parametrize("schedule", [["--lr-schedule", "cosine"],
                                      ["--lr-schedule", "step", "--lr-decay", "0.5",
                                       "--lr-decay-after", "2"]])
def test_cosine_and_step_resume_exactly_and_print_the_rate(capsys, tmp_path, monkeypatch,
                                                           schedule):
    """Functions of the epoch: 6 epochs straight, or stopped by Ctrl-C in epoch 3 and
    resumed, give the same numbers, learning rates included; every epoch line shows the
    rate it trained with."""
    base = ["--cell", "rnn", "--hidden", "16", "--max-tokens", "1200", "--batch-size", "8",
            "--num-steps", "10", "--lr", "2", *schedule, "--no-plot", "--no-progress",
            "--num-preds", "3", "--threads", "1"]
    code, text, _ = run(capsys, "train", *base, "--epochs", "6", "--out", tmp_path / "full")
    assert code == 0
    rates = [lr_at(2.0, e, *((0.5, 2, "step") if "step" in schedule else (1.0, 10, "cosine")),
                   num_epochs=6) for e in range(6)]
    lines = [ln for ln in text.splitlines() if ln.startswith("epoch ")]
    assert [ln.rsplit("  lr ", 1)[1] for ln in lines] == [f"{r:.3g}" for r in rates]
    assert [h["lr"] for h in load_checkpoint(tmp_path / "full").history] == pytest.approx(rates)
    with monkeypatch.context() as mp:
        train_module = importlib.import_module("rnnlab.train")
        real = train_module.train_epoch

        def interrupted(*args, **kwargs):  # Ctrl-C at the start of epoch 3 (0-based 2)
            if args[6] == 2:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        mp.setattr(train_module, "train_epoch", interrupted)
        code = run(capsys, "train", *base, "--epochs", "6", "--checkpoint-every", "1",
                   "--out", tmp_path / "cut")[0]
    assert code == 130 and load_checkpoint(tmp_path / "cut").epoch == 2
    assert run(capsys, "train", "--resume", "--out", tmp_path / "cut")[0] == 0
    assert numbers(tmp_path / "cut") == numbers(tmp_path / "full")
    code, _, err = run(capsys, "train", "--resume", "--epochs", "7", "--lr-schedule", "exp",
                       "--out", tmp_path / "cut")
    assert code == 2 and "--lr-schedule" in err[0]


def test_early_stopping_counts_epochs_since_the_best():
    vals = [9.0, 8.0, 7.5, 7.6, 7.7]
    assert best_epoch(vals) == 3
    assert not stopped_early(vals[:4], 2) and stopped_early(vals, 2)
    assert not stopped_early(vals, 3) and not stopped_early(vals, 0)
    assert best_epoch([None, None]) is None and not stopped_early([None, None], 1)
    assert best_epoch([5.0, 5.0]) == 1  # a tie does not improve


def test_train_stops_and_decays_from_the_config(time_machine_dir):
    corpus, vocab = load_corpus("timemachine", 1320, data_dir=time_machine_dir)
    cfg = ModelConfig("rnn", len(vocab), 32)
    be = get_backend("numpy")
    tcfg = TrainConfig(num_epochs=60, lr=4.0, batch_size=8, num_steps=10, lr_decay=0.9,
                       lr_decay_after=3, patience=2, threads=1)
    h = train(be, cfg, be.from_numpy(init_params(cfg, seed=0)), corpus[:1200], tcfg,
              val_corpus=corpus[1200:])  # the CLI's split: the 120 tokens after the 1,200
    vals = [s.val_ppl for s in h]
    assert len(h) < 60 and stopped_early(vals, 2) and not stopped_early(vals[:-1], 2)
    assert [s.lr for s in h] == [lr_at(4.0, e, 0.9, 3) for e in range(len(h))]
    with pytest.raises(ConfigError, match="patience=2 stops on validation perplexity"):
        train(be, cfg, be.from_numpy(init_params(cfg, seed=0)), corpus, tcfg)
    for bad in (dict(lr_decay=0), dict(lr_decay=1.5), dict(patience=-1), dict(patience=1.5),
                dict(lr_decay_after="3")):
        with pytest.raises(ConfigError):
            TrainConfig(**bad)


# ---------------------------------------------------------- the command, resumed


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, time_machine_dir):
    """The schedule run to its early stop, never interrupted."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RNNLAB_DATA", str(time_machine_dir))
    out = tmp_path_factory.mktemp("sched") / "full"
    try:
        assert cli.main(["train", *SCHED, "--epochs", "60", "--out", str(out)]) == 0
    finally:
        mp.undo()
    ckpt = load_checkpoint(out)
    assert 6 < ckpt.epoch < 60  # it stopped early, after some decay
    return out


def test_a_run_resumed_anywhere_decays_and_stops_where_the_uninterrupted_one_does(
        capsys, tmp_path, uninterrupted):
    """Stopped after epoch 2 (before the decay), after epoch 5 (during it), and one epoch
    before the early stop (past the best epoch), then resumed each time: the same
    per-epoch numbers (learning rates included), the same stopping epoch, the same best
    model."""
    full = load_checkpoint(uninterrupted)
    out = tmp_path / "cut"
    assert run(capsys, "train", *SCHED, "--epochs", "2", "--out", out)[0] == 0
    # after the decay began, then one epoch before the stop: past the best epoch, so the
    # stop and the best model depend on the epochs before the resume
    for cut in (5, full.epoch - 1):
        assert run(capsys, "train", "--resume", "--epochs", cut, "--out", out)[0] == 0
    code, text, _ = run(capsys, "train", "--resume", "--epochs", "60", "--out", out)
    assert code == 0 and f"stopped early after epoch {full.epoch}:" in text
    assert numbers(out) == numbers(uninterrupted)
    for name, value in full.params.items():
        np.testing.assert_array_equal(load_checkpoint(out).params[name], value, err_msg=name)
    best, best_full = load_checkpoint(out / "best.safetensors"), \
        load_checkpoint(uninterrupted / "best.safetensors")
    assert best.epoch == best_full.epoch == best_epoch([h["val_ppl"] for h in full.history])
    for name, value in best_full.params.items():
        np.testing.assert_array_equal(best.params[name], value, err_msg=name)
    code, text, _ = run(capsys, "train", "--resume", "--out", out)  # stopped: stays stopped
    assert code == 0 and "this run stopped early after epoch" in text
    assert "pass a larger --patience to go on" in text
    code, text, _ = run(capsys, "train", "--resume", "--out", out, "--patience", "4")
    assert code == 0 and load_checkpoint(out).epoch > full.epoch  # patience may be raised


def test_best_holds_the_parameters_of_the_best_epoch(capsys, tmp_path, uninterrupted):
    """A run trained for exactly the best epoch's count ends with best.safetensors'
    parameters: the file is that epoch's model, not a later one."""
    best = load_checkpoint(uninterrupted / "best.safetensors")
    out = tmp_path / "short"
    assert run(capsys, "train", *SCHED, "--epochs", best.epoch, "--out", out)[0] == 0
    for name, value in load_checkpoint(out).params.items():
        np.testing.assert_array_equal(best.params[name], value, err_msg=name)
    # a new run in its place (--overwrite) does not keep the old run's best model
    code, _, _ = run(capsys, "train", *SCHED, "--epochs", "1", "--val-fraction", "0",
                     "--patience", "0", "--out", out, "--overwrite")
    assert code == 0 and not (out / "best.safetensors").exists()


def test_generate_chooses_best_or_latest(capsys, uninterrupted):
    full, best = load_checkpoint(uninterrupted), load_checkpoint(uninterrupted / "best.safetensors")
    code, _, err = run(capsys, "generate", uninterrupted, "--num-preds", "3")
    assert code == 0 and err[0].startswith(str(uninterrupted / "best.safetensors"))
    assert f"epoch {best.epoch}/" in err[0]
    code, _, err = run(capsys, "generate", uninterrupted, "--which", "latest", "--num-preds", "3")
    assert code == 0 and err[0].startswith(str(uninterrupted / "checkpoint.safetensors"))
    assert f"epoch {full.epoch}/" in err[0]
    code, _, err = run(capsys, "generate", uninterrupted / "checkpoint.safetensors", "--which",
                       "best")
    assert code == 2 and "--which best chooses a checkpoint of a run directory" in err[0]


def test_schedule_options_are_refused_in_flag_names(capsys, tmp_path):
    code, _, err = run(capsys, "train", *SCHED, "--val-fraction", "0", "--out", tmp_path / "r")
    assert code == 2 and err == [
        "rnnlab: error: --patience 2 stops on the validation perplexity, and --val-fraction 0.0 "
        "leaves no validation tokens; give --val-fraction above 0"]
    for bad in ("0", "1.5", "x"):
        code, _, err = run(capsys, "train", "--lr-decay", bad)
        assert code == 2 and "argument --lr-decay: expected a number in (0, 1]" in err[0]
    code, _, err = run(capsys, "train", "--resume", "--out", tmp_path / "r", "--lr-decay", "0.5")
    assert code == 2  # no checkpoint there; with one, --lr-decay must match (a run option)


def test_a_torch_optimizer_takes_the_rate_it_is_given():
    """Setting ``optimizer.lr`` changes the next steps on the torch backend too (torch.optim
    keeps its own copy in its parameter groups): Adam made with lr 1 and set to 0.01 steps
    exactly as Adam made with 0.01."""
    torch = pytest.importorskip("torch")
    be = get_backend("torch", device="cpu", dtype="float64")
    cfg = ModelConfig("rnn", 5, 4)
    a = be.from_numpy(init_params(cfg, seed=0, dtype="float64"))
    b = be.from_numpy(init_params(cfg, seed=0, dtype="float64"))
    opt_a, opt_b = be.make_optimizer("adam", a, 0.01), be.make_optimizer("adam", b, 1.0)
    opt_b.lr = 0.01
    grads = {k: torch.ones_like(v) for k, v in a.items()}
    for _ in range(3):
        opt_a.step({k: g.clone() for k, g in grads.items()})
        opt_b.step({k: g.clone() for k, g in grads.items()})
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ---------------------------------------------------------- --val-every


def test_val_every_validates_every_nth_epoch_and_the_last_and_trains_the_same(time_machine_dir):
    """Validation only reads the parameters: every 3rd epoch and the last are validated,
    with the numbers an every-epoch run measures there, and training is the same to the
    last bit."""
    corpus, vocab = load_corpus("timemachine", 1320, data_dir=time_machine_dir)
    cfg = ModelConfig("rnn", len(vocab), 32)
    be = get_backend("numpy")
    runs = {}
    for every in (1, 3):
        tcfg = TrainConfig(num_epochs=7, lr=4.0, batch_size=8, num_steps=10, threads=1,
                           val_every=every)
        params = be.from_numpy(init_params(cfg, seed=0))
        runs[every] = train(be, cfg, params, corpus[:1200], tcfg,
                            val_corpus=corpus[1200:]), params
    (each, p1), (third, p3) = runs[1], runs[3]
    assert [s.val_ppl is not None for s in each] == [True] * 7
    assert [s.val_ppl is not None for s in third] == [False, False, True, False, False, True, True]
    for a, b in zip(each, third):
        assert (a.train_ppl, a.grad_norm_mean, a.grad_norm_max) == \
            (b.train_ppl, b.grad_norm_mean, b.grad_norm_max)
        assert b.val_ppl is None or b.val_ppl == a.val_ppl
    for name in p1:
        np.testing.assert_array_equal(p1[name], p3[name], err_msg=name)
    for bad in (0, -1, 1.5, "2", True, None):
        with pytest.raises(ConfigError, match="val_every"):
            TrainConfig(val_every=bad)


def test_early_stopping_is_decided_after_a_validation_only():
    assert stopped_early([5.0, 4.0, 6.0, 7.0], 2)
    assert not stopped_early([5.0, 4.0, None, None], 2)  # the best is 2 epochs old, unvalidated
    assert stopped_early([5.0, 4.0, None, None, 6.0], 2)
    assert not stopped_early([5.0, None, None, 4.0], 2)
    assert not stopped_early([], 2)


def test_a_run_validated_every_few_epochs_stops_and_resumes_as_one_never_stopped(
        capsys, tmp_path, uninterrupted):
    """--val-every 3 with --patience 2: the lines show val ppl on every 3rd epoch, the run
    stops after a validated epoch, and a run cut at an unvalidated epoch and resumed
    ends with the same numbers and best model. The training numbers are those of the
    every-epoch run."""
    every = ["--val-every", "3"]
    full, cut = tmp_path / "full", tmp_path / "cut"
    code, text, _ = run(capsys, "train", *SCHED, *every, "--epochs", "60", "--out", full)
    assert code == 0
    lines = [ln for ln in text.splitlines() if ln.startswith("epoch ")]
    assert all(("val ppl" in ln) == (i % 3 == 2) for i, ln in enumerate(lines[:-1]))
    ckpt = load_checkpoint(full)
    assert "stopped early" in text and ckpt.epoch % 3 == 0  # after a validated epoch
    assert ckpt.extra["options"]["val_every"] == 3
    # the training is the every-epoch run's, epoch for epoch
    train_only = lambda h: [{k: v for k, v in e.items() if k != "val_ppl"} for e in h]  # noqa: E731
    n = min(len(numbers(full)), len(numbers(uninterrupted)))  # each stops when it sees
    assert n > 6 and train_only(numbers(full))[:n] == train_only(numbers(uninterrupted))[:n]
    assert run(capsys, "train", *SCHED, *every, "--epochs", "4", "--out", cut)[0] == 0
    code, text, _ = run(capsys, "train", "--resume", "--epochs", "60", "--out", cut)
    assert code == 0 and f"stopped early after epoch {ckpt.epoch}:" in text
    # the cut run validated its last epoch, 4, beside the uninterrupted run's 3, 6, ...
    got, want = numbers(cut), numbers(full)
    assert got[3]["val_ppl"] is not None and want[3]["val_ppl"] is None
    got[3]["val_ppl"] = None
    assert got == want
    best, best_full = load_checkpoint(cut / "best.safetensors"), \
        load_checkpoint(full / "best.safetensors")
    assert best.epoch == best_full.epoch
    code, text, _ = run(capsys, "train", "--resume", "--out", cut, "--val-every", "1",
                        "--patience", "3", "--epochs", str(ckpt.epoch + 2))
    assert code == 0  # --val-every may change on a resume
    assert all("val ppl" in ln for ln in text.splitlines() if ln.startswith("epoch "))
