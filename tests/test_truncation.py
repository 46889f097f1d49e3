"""Truncated BPTT inside a window (``truncate=k``, d2l 8.7): each step's loss sends its
gradient k steps back and no further, on every backend.

The reference uses only full BPTT through the public API: for each step t with a loss,
run the model without gradient up to step t-k+1 (the state there is a constant: the
detach), then full BPTT over steps t-k+1 .. t with only step t's weight, scaled from that
window's mean to the whole window's; the truncated gradient is the sum of those.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnlab.backend import get_backend
from rnnlab.config import ModelConfig
from rnnlab.errors import ConfigError
from rnnlab.gradcheck import random_problem, relative_error

from strategies import problems, seeds, task_configs

torch = pytest.importorskip("torch")

BACKENDS = {
    "numpy": get_backend("numpy", dtype="float64"),
    "scratch": get_backend("torch", dtype="float64", device="cpu"),
    "nn": get_backend("torch", dtype="float64", device="cpu", impl="nn"),
}


def grads_of(be, cfg, params, X, Y, state, weights, truncate=None):
    loss, g, state_T, dstate = be.loss_and_grads(
        cfg, be.from_numpy(params), X, Y, be.state_from_numpy(state), weights=weights,
        state_grads=True, truncate=truncate)
    return (loss, be.to_numpy(g), [np.asarray(s) for s in be.state_to_numpy(dstate)],
            [np.asarray(s) for s in be.state_to_numpy(state_T)])


def detached_windows_reference(be, cfg, params, X, Y, state, weights, k):
    """Σ_t (full BPTT of L_t over steps t-k+1 .. t from the detached state before them)."""
    B, T = X.shape[0], X.shape[1]
    w = weights.reshape(T, B)  # (T, B): time-major
    grads = {name: np.zeros_like(v) for name, v in params.items()}
    dstate = [np.zeros_like(s) for s in state]
    p = be.from_numpy(params)
    for t in range(T):
        if not w[t].any():
            continue
        lo = max(0, t - k + 1)
        start = be.state_from_numpy(state)
        if lo > 0:
            _, start = be.forward(cfg, p, X[:, :lo], start)  # no gradient reaches past here
        n = t + 1 - lo  # steps in the window
        w_window = np.zeros((n, B))  # (n, B): only L_t is read
        w_window[-1] = w[t]
        _, g, _, ds = be.loss_and_grads(cfg, p, X[:, lo:t + 1], Y[:, lo:t + 1], start,
                                        weights=w_window.reshape(-1), state_grads=True)
        for name, v in be.to_numpy(g).items():
            grads[name] += v * n / T  # the window's mean over n*B rows -> the whole T*B
        if lo == 0:
            dstate = [a + np.asarray(b) * n / T for a, b in zip(dstate, be.state_to_numpy(ds))]
    return grads, dstate


@given(p=problems(task_configs(), min_T=2), k=st.integers(1, 7), seed=seeds,
       name=st.sampled_from(list(BACKENDS)))
def test_truncated_gradient_is_what_detaching_the_state_k_steps_back_gives(p, k, seed, name):
    be = BACKENDS[name]
    T = p.X.shape[1]
    keep = np.random.default_rng(seed).random(T * p.X.shape[0]) < 0.6  # some steps unread
    weights = np.where(keep, p.weights, 0.0)  # (T*B,)
    loss, grads, dstate, state_T = grads_of(be, p.cfg, p.params, p.X, p.Y, p.state, weights, k)
    ref_grads, ref_dstate = detached_windows_reference(be, p.cfg, p.params, p.X, p.Y, p.state,
                                                       weights, k)
    for key in p.params:
        assert relative_error(grads[key], ref_grads[key]) < 1e-10, key
    for a, b in zip(dstate, ref_dstate):
        assert relative_error(a, b) < 1e-10
    # the loss and the final state are the whole window's: truncation is backward only
    full_loss, _, _, full_state_T = grads_of(be, p.cfg, p.params, p.X, p.Y, p.state, weights)
    assert loss == pytest.approx(full_loss, rel=1e-12)
    for a, b in zip(state_T, full_state_T):
        assert relative_error(a, b) < 1e-12


@given(p=problems(task_configs(), min_T=2), extra=st.integers(0, 3))
def test_truncating_at_the_window_or_beyond_is_full_bptt(p, extra):
    """k >= T cuts nothing: the reference by windows is then full BPTT, on every backend;
    and k = T - 1 cuts something on the spec (the first step's loss reaches step 0
    either way, but the last step's no longer reaches it)."""
    T = p.X.shape[1]
    for be in BACKENDS.values():
        full = grads_of(be, p.cfg, p.params, p.X, p.Y, p.state, p.weights)
        cut = grads_of(be, p.cfg, p.params, p.X, p.Y, p.state, p.weights, truncate=T + extra)
        for key in p.params:
            assert relative_error(cut[1][key], full[1][key]) < 1e-12, key
        ref, _ = detached_windows_reference(be, p.cfg, p.params, p.X, p.Y, p.state, p.weights,
                                            T + extra)
        for key in p.params:
            assert relative_error(ref[key], full[1][key]) < 1e-10, key


def test_a_loss_read_at_the_last_step_reaches_only_k_steps_back():
    """The adding problem's shape: with the loss at the last step only, the truncated
    gradient of the initial state is zero once k < T, and the full one is not; the output
    layer's gradient is the same, the recurrent weights' is not."""
    cfg = ModelConfig("lstm", 1, 4, input_size=2, head="mse")
    params, X, Y, state, _ = random_problem(cfg, 3, 8, seed=2)
    weights = np.zeros(8 * 3)
    weights[-3:] = 8.0  # (T*B,): the last step of each row
    for be in BACKENDS.values():
        _, g_full, ds_full, _ = grads_of(be, cfg, params, X, Y, state, weights)
        _, g_cut, ds_cut, _ = grads_of(be, cfg, params, X, Y, state, weights, truncate=3)
        assert np.abs(ds_full[0]).max() > 1e-6 and not np.abs(ds_cut[0]).any()
        assert relative_error(g_cut["W_hq"], g_full["W_hq"]) < 1e-12  # the head is not recurrent
        assert relative_error(g_cut["W_hi"], g_full["W_hi"]) > 1e-6  # the cut is felt


@pytest.mark.parametrize("name", list(BACKENDS))
def test_bad_truncation_is_refused(name):
    be = BACKENDS[name]
    cfg = ModelConfig("rnn", 4, 3, bidirectional=True)
    params, X, Y, state, weights = random_problem(cfg, 2, 4)
    p, st0 = be.from_numpy(params), be.state_from_numpy(state)
    with pytest.raises(ConfigError, match="truncate stops the gradient k steps back in time, "
                                          "and a bidirectional model's reverse pass runs the "
                                          "other way"):
        be.loss_and_grads(cfg, p, X, Y, st0, truncate=2)
    cfg = ModelConfig("rnn", 4, 3)
    params, X, Y, state, weights = random_problem(cfg, 2, 4)
    p, st0 = be.from_numpy(params), be.state_from_numpy(state)
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ConfigError, match="truncate must be a positive integer"):
            be.loss_and_grads(cfg, p, X, Y, st0, truncate=bad)
