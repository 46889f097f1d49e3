"""The long-range memory tasks: generated from a seed, shaped as the papers state them,
their loss read where the answer is, their baselines what a memoryless answer scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnlab.backend import get_backend
from rnnlab.errors import ConfigError
from rnnlab.params import init_params
from rnnlab.tasks import COPY_VOCAB, DELIMITER, adding_problem, copy_task, make_task

NP64 = get_backend("numpy", dtype="float64")


@pytest.mark.parametrize("name", ["adding", "copy"])
def test_a_seed_gives_the_same_examples_and_another_seed_others(name):
    a, b, c = (make_task(name, 50, 12, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.Y, b.Y)
    assert not np.array_equal(a.X, c.X)


def test_adding_problem_is_as_stated():
    T, N = 30, 400
    task = adding_problem(N, T, seed=1)
    assert task.X.shape == (N, T, 2) and task.Y.shape == (N, T) and task.num_steps == T
    values, markers = task.X[..., 0], task.X[..., 1]
    assert values.min() >= 0 and values.max() <= 1
    assert set(np.unique(markers)) == {0.0, 1.0}
    assert (markers[:, : T // 2].sum(1) == 1).all() and (markers[:, T // 2:].sum(1) == 1).all()
    np.testing.assert_allclose(task.Y[:, -1], (values * markers).sum(1), rtol=1e-15)
    assert not task.Y[:, :-1].any()
    assert task.step_weights.tolist() == [0.0] * (T - 1) + [float(T)]


def test_adding_baseline_is_what_always_answering_one_scores():
    """The loss (a mean over T*B weighted steps) of a model that always answers 1 is the
    mean squared error of that answer over the examples, which is 1/6 in expectation."""
    task = adding_problem(20000, 8, seed=0)
    assert task.baseline == pytest.approx(1 / 6)
    mse_of_one = float(np.mean((task.Y[:, -1] - 1.0) ** 2))
    assert mse_of_one == pytest.approx(1 / 6, abs=0.005)
    cfg = task.model_config("irnn", 4)
    params = init_params(cfg, dtype=np.float64)
    params["W_hq"][:] = 0.0
    params["b_q"][:] = 1.0  # the answer 1, whatever the input
    X, Y = task.X[:500], task.Y[:500]
    loss, *_ = NP64.loss_and_grads(cfg, params, X, Y, NP64.begin_state(cfg, 500),
                                   weights=task.weights(500))
    assert loss == pytest.approx(float(np.mean((Y[:, -1] - 1.0) ** 2)), rel=1e-12)


def test_copy_task_is_as_stated():
    T, N = 7, 300
    task = copy_task(N, T, seed=2)
    assert task.X.shape == task.Y.shape == (N, T + 20) and task.num_steps == T + 20
    assert ((task.X[:, :10] >= 1) & (task.X[:, :10] <= 8)).all()
    assert (task.X[:, 10:T + 9] == 0).all() and (task.X[:, T + 9] == DELIMITER).all()
    assert (task.X[:, T + 10:] == 0).all()
    assert (task.Y[:, :T + 10] == 0).all()
    np.testing.assert_array_equal(task.Y[:, -10:], task.X[:, :10])
    assert task.step_weights.tolist() == [0.0] * (T + 10) + [1.0] * 10
    assert task.baseline == pytest.approx(10 * math.log(8) / (T + 20))


def test_copy_baseline_is_what_guessing_the_eight_symbols_scores():
    task = copy_task(64, 5, seed=0)
    cfg = task.model_config("lstm", 4)
    assert cfg.vocab_size == COPY_VOCAB == 10
    params = init_params(cfg, dtype=np.float64)
    params["W_hq"][:] = 0.0
    params["b_q"][:] = [-1e3] + [0.0] * 8 + [-1e3]  # uniform over the eight symbols
    loss, *_ = NP64.loss_and_grads(cfg, params, task.X, task.Y, NP64.begin_state(cfg, 64),
                                   weights=task.weights(64))
    assert loss == pytest.approx(task.baseline, rel=1e-12)


def test_models_weights_and_batches_fit_the_task():
    adding = adding_problem(10, 6)
    cfg = adding.model_config("gru", 16, gru_form="torch")
    assert (cfg.input_size, cfg.head, cfg.vocab_size, cfg.gru_form) == (2, "mse", 1, "torch")
    w = adding.weights(3)  # time-major: step t's weight for each of the 3 rows
    assert w.shape == (18,) and w[-3:].tolist() == [6.0] * 3 and not w[:-3].any()
    batches = list(adding.batches(4, np.random.default_rng(0)))
    assert len(batches) == 2 and all(X.shape == (4, 6, 2) and Y.shape == (4, 6) for X, Y in batches)
    rows = np.concatenate([X[:, 0, 0] for X, _ in batches])
    assert len(set(rows.tolist())) == 8  # no example twice in an epoch


@pytest.mark.parametrize("call,message", [
    (lambda: adding_problem(10, 1), "length must be an integer >= 2, got 1"),
    (lambda: copy_task(10, 0), "length must be a positive integer, got 0"),
    (lambda: make_task("adding", 0, 10), "num_examples must be a positive integer, got 0"),
    (lambda: make_task("parity", 10, 10), "unknown name 'parity'; expected one of adding, copy"),
    (lambda: copy_task(10, 5, seed=-1), "seed must be"),
    (lambda: adding_problem(10, 5).model_config("lstm", 8, head="softmax"),
     r"the adding task sets head itself \(its model's inputs and outputs are the task's\); "
     "leave them out"),
])
def test_bad_task_arguments_are_refused_by_name(call, message):
    with pytest.raises(ConfigError, match=message):
        call()
