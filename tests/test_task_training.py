"""Training on the memory tasks, small enough to run in seconds: a gated cell with full
BPTT goes far below the adding problem's baseline, and on the copy task a run whose
gradient is truncated shorter than the lag (the symbols are read T + 10 steps before they
are written back) learns nothing better than the baseline."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.backend import get_backend
from rnnlab.errors import ConfigError
from rnnlab.params import init_params
from rnnlab.tasks import adding_problem, copy_task, task_loss, train_task
from rnnlab.train import TrainConfig

NP = get_backend("numpy")


def run(task, test, cell, H, epochs, batch_size, truncate=None, seed=0):
    cfg = task.model_config(cell, H)
    params = NP.from_numpy(init_params(cfg, seed=seed, init="torch"))
    tcfg = TrainConfig(num_epochs=epochs, lr=0.01, batch_size=batch_size, optimizer="adam",
                       clip_theta=1.0, seed=seed)
    return train_task(NP, cfg, params, task, tcfg, test=test, truncate=truncate)


def test_an_lstm_learns_the_adding_problem_far_below_its_baseline():
    """T = 10, H = 16, Adam: about 300 updates take the held-out MSE from the baseline's
    1/6 to below a quarter of it (about 0.01 when written)."""
    history = run(adding_problem(1000, 10, seed=0), adding_problem(500, 10, seed=1),
                  "lstm", 16, epochs=15, batch_size=50)
    assert history[0].test_loss > 0.5 * (1 / 6)  # it starts near the baseline ...
    assert history[-1].test_loss < 0.25 * (1 / 6)  # ... and ends far below it


def test_copy_truncated_shorter_than_the_lag_stays_at_the_baseline():
    """The ten symbols are read at steps 0..9 and written back at T+10..T+19, each T + 10
    steps later; the closest pair (the last symbol, the first answer) is T + 1 apart. With
    truncate = T + 1 no gradient from an answer reaches a step that saw a symbol, so the
    symbols' input weights never move and the loss stays at 10 log 8 / (T + 20)."""
    task, test = copy_task(200, 5, seed=0), copy_task(200, 5, seed=1)
    cfg = task.model_config("lstm", 16)
    params = NP.from_numpy(init_params(cfg, seed=0, init="torch"))
    before = {k: v.copy() for k, v in params.items()}
    history = train_task(NP, cfg, params, task, TrainConfig(
        num_epochs=6, lr=0.01, batch_size=20, optimizer="adam", clip_theta=1.0), test=test,
        truncate=6)
    symbols = slice(1, 9)  # rows of W_x* read by the symbol ids 1..8
    for name in ("W_xi", "W_xf", "W_xo", "W_xc"):
        np.testing.assert_array_equal(params[name][symbols], before[name][symbols])
        assert not np.array_equal(params[name], before[name])  # the other rows did move
    assert history[-1].test_loss > 0.99 * test.baseline


def test_task_training_refuses_a_model_that_does_not_fit():
    task = adding_problem(100, 5)
    cfg = copy_task(10, 5).model_config("lstm", 8)
    params = init_params(cfg)
    with pytest.raises(ConfigError, match=r"the adding task needs a model with \(vocab_size, "
                                          r"input_size, head\) = \(1, 2, 'mse'\), got "
                                          r"\(10, None, 'softmax'\)"):
        train_task(NP, cfg, params, task, TrainConfig(num_epochs=1))
    cfg = task.model_config("lstm", 8)
    with pytest.raises(ConfigError, match="the adding task has 100 examples, fewer than "
                                          "batch_size=128"):
        train_task(NP, cfg, init_params(cfg), task, TrainConfig(num_epochs=1, batch_size=128))
    with pytest.raises(ConfigError, match="truncate must be a positive integer, got 0"):
        train_task(NP, cfg, init_params(cfg), task, TrainConfig(num_epochs=1, batch_size=8),
                   truncate=0)
    assert task_loss(NP, cfg, init_params(cfg), task) == pytest.approx(
        float(np.mean(task.Y[:, -1] ** 2)), rel=1e-3)  # outputs near 0 at init: the mean of y²


def test_the_loss_curves_are_drawn_against_the_baseline(tmp_path):
    pytest.importorskip("matplotlib")
    from rnnlab.plot import plot_task_losses
    path = plot_task_losses({"lstm": [0.2, 0.1, 0.01], "lstm truncate=2": [0.2, 0.17, 0.16],
                             "irnn": [0.3, 0.2, 0.05]}, 1 / 6, tmp_path / "adding.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_large_but_finite_squared_error_is_not_called_divergence():
    """A perplexity overflows past 709 nats; a squared error has no such bound, so only
    NaN or inf stops a regression run (an IRNN's first batches can be far off)."""
    task = adding_problem(40, 5)
    cfg = task.model_config("irnn", 4)
    params = init_params(cfg)
    params["b_q"][:] = 100.0  # answers of 100 for sums in [0, 2]: an MSE near 1e4
    history = train_task(NP, cfg, params, task, TrainConfig(num_epochs=1, lr=1e-9,
                                                            batch_size=20, optimizer="sgd"))
    assert 709.78 < history[0].loss < 1e5
