"""The NumPy backend against finite differences, the per-gate reference, and its own rules."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.backend import get_backend
from rnnlab.config import ModelConfig
from rnnlab.errors import BackendError, ConfigError, ShapeError
from rnnlab.gradcheck import gradcheck, random_problem, relative_error
from rnnlab.numpy_backend.functional import (
    clip_grads, global_norm, sigmoid, softmax_cross_entropy, softmax_cross_entropy_backward)
from rnnlab.numpy_backend.reference import REFERENCES
from rnnlab.params import init_params

SHAPES = [  # (B, T, V, H): T = 1 included, B = 1 included, V < H and V > H
    (1, 1, 3, 2),
    (2, 1, 4, 3),
    (3, 4, 5, 4),
    (2, 6, 3, 5),
    (1, 7, 6, 2),
]


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("B,T,V,H", SHAPES)
def test_bptt_matches_finite_differences(cell, B, T, V, H):
    """Every parameter and the initial state, float64, random biases/state/token weights."""
    cfg = ModelConfig(cell, V, H)
    params, X, Y, state, weights = random_problem(cfg, B, T, seed=B * 100 + T * 10 + V + H)
    assert all(np.abs(params[k]).min() > 0 for k in params if k.startswith("b_"))  # biases non-zero
    result = gradcheck(get_backend("numpy", dtype="float64"), cfg, params, X, Y, state, weights)
    assert set(result.errors) == set(params) | {f"state[{i}]" for i in range(len(state))}
    assert result.worst < 1e-7, result.errors


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("B,T,V,H", SHAPES)
def test_fused_equals_per_gate_reference(cell, B, T, V, H):
    """The fused cells (one matmul, row gathers) give d2l's per-gate outputs and grads."""
    cfg = ModelConfig(cell, V, H)
    params, X, Y, state, weights = random_problem(cfg, B, T, seed=7)
    be = get_backend("numpy", dtype="float64")
    loss, grads, state_T, dstate = be.loss_and_grads(cfg, params, X, Y, state, weights=weights,
                                                     state_grads=True)
    logits, _ = be.forward(cfg, params, X, state)
    forward, backward = REFERENCES[cell]
    ref_logits, ref_state, cache = forward(params, X, state)
    ref_loss, ce = softmax_cross_entropy(ref_logits, Y.T.reshape(-1), weights)
    ref_grads, ref_dstate = backward(params, softmax_cross_entropy_backward(ce), cache)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-12, atol=1e-14)
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    for a, b in zip(state_T, ref_state):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for k in params:
        assert relative_error(grads[k], ref_grads[k]) < 1e-12, k
    for a, b in zip(dstate, ref_dstate):
        assert relative_error(a, b) < 1e-12


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_float32_follows_float64(cell):
    cfg = ModelConfig(cell, 6, 8)
    params, X, Y, state, weights = random_problem(cfg, 3, 5, seed=3)
    be64, be32 = get_backend("numpy", dtype="float64"), get_backend("numpy", dtype="float32")
    l64, g64, s64 = be64.loss_and_grads(cfg, params, X, Y, state, weights=weights)
    p32 = be32.from_numpy(params)
    l32, g32, s32 = be32.loss_and_grads(cfg, p32, X, Y, be32.state_from_numpy(state), weights=weights)
    assert all(g.dtype == np.float32 for g in g32.values())
    assert all(s.dtype == np.float32 for s in s32)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for k in params:
        assert relative_error(g32[k], g64[k]) < 1e-5, k


def test_logits_are_time_major():
    """Row t*B + b of the logits is step t of sequence b, as d2l's Y.T.reshape(-1)."""
    cfg = ModelConfig("rnn", 5, 3)
    params, X, _, state, _ = random_problem(cfg, 4, 3, seed=1)
    be = get_backend("numpy", dtype="float64")
    logits, _ = be.forward(cfg, params, X, state)
    for b in range(4):  # one sequence alone gives the rows t*B + b
        one, _ = be.forward(cfg, params, X[b:b + 1], tuple(s[b:b + 1] for s in state))
        np.testing.assert_allclose(logits[b::4], one, rtol=1e-13)


def test_begin_state_and_init_params_follow_d2l():
    be = get_backend("numpy")
    H, C = be.begin_state("lstm", 3, 5)
    assert H.shape == C.shape == (3, 5) and not H.any() and not C.any()
    (H,) = be.begin_state("rnn", 2, 4)
    assert H.shape == (2, 4)
    p = init_params("lstm", 28, 256, seed=0)
    assert list(p)[:3] == ["W_xi", "W_hi", "b_i"] and list(p)[-2:] == ["W_hq", "b_q"]
    assert p["W_xi"].dtype == np.float32 and p["W_xi"].shape == (28, 256)
    assert 0.009 < p["W_hi"].std() < 0.011  # normal * 0.01
    assert not p["b_i"].any()  # biases start at zero
    p64 = init_params("lstm", 28, 256, seed=0, dtype=np.float64)
    np.testing.assert_allclose(p["W_xi"], p64["W_xi"], rtol=1e-7)  # same draws, cast


# ----------------------------------------------------------------- numerics and clipping


def test_sigmoid_is_stable_and_exact():
    x = np.array([-1e4, -800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0, 1e4])
    with np.errstate(all="raise"):  # no overflow warning anywhere
        y = sigmoid(x)
    assert y[0] == 0.0 and y[-1] == 1.0 and y[4] == 0.5
    mid = np.linspace(-20, 20, 101)
    np.testing.assert_allclose(sigmoid(mid), 1 / (1 + np.exp(-mid)), rtol=0, atol=3e-16)  # ~1 ulp of 1
    y32 = sigmoid(np.array([-1e4, 1e4], dtype=np.float32))
    assert y32.dtype == np.float32 and list(y32) == [0.0, 1.0]


def test_cross_entropy_is_stable_at_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        loss, cache = softmax_cross_entropy(logits, np.array([1, 2]))
        d = softmax_cross_entropy_backward(cache)
    assert loss == pytest.approx((1e4 + np.log(3)) / 2, rel=1e-12)
    np.testing.assert_allclose(d, [[0.5, -0.5, 0.0], [1 / 6, 1 / 6, -1 / 3]], atol=1e-15)


@pytest.mark.parametrize("theta", [0.1, 1.0, 5.0])
def test_clipping_scales_to_theta_and_keeps_direction(theta):
    rng = np.random.default_rng(0)
    grads = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5) * 3}
    before = {k: v.copy() for k, v in grads.items()}
    norm = clip_grads(grads, theta)
    expected = np.sqrt(sum((v ** 2).sum() for v in before.values()))
    assert norm == pytest.approx(expected, rel=1e-12)
    after = global_norm(grads)
    assert after == pytest.approx(min(norm, theta), rel=1e-6)
    scale = min(1.0, theta / norm)
    for k in grads:
        np.testing.assert_allclose(grads[k], before[k] * scale, rtol=1e-12)


def test_clipping_below_theta_is_a_no_op_and_zero_stays_zero():
    grads = {"a": np.full(4, 0.1)}
    assert clip_grads(grads, 1.0) == pytest.approx(0.2)
    np.testing.assert_array_equal(grads["a"], np.full(4, 0.1))
    zeros = {"a": np.zeros(3, dtype=np.float32)}
    assert clip_grads(zeros, 1.0) == 0.0 and not np.isnan(zeros["a"]).any()
    huge = {"a": np.full(4, 1e30, dtype=np.float32)}  # squares overflow float32
    norm = clip_grads(huge, 1.0)
    assert norm == pytest.approx(2e30, rel=1e-6)
    assert np.isfinite(huge["a"]).all() and global_norm(huge) == pytest.approx(1.0, rel=1e-6)


# ------------------------------------------------------------------------- bad input


def test_bad_backend_cell_sizes_and_tokens():
    be = get_backend("numpy")
    with pytest.raises(BackendError, match="jax"):
        get_backend("jax")
    with pytest.raises(ConfigError, match="'transformer'"):
        init_params("transformer", 5, 3)
    with pytest.raises(ConfigError, match="num_hiddens must be a positive integer, got 0"):
        init_params("lstm", 5, 0)
    with pytest.raises(ConfigError, match="vocab_size"):
        ModelConfig("rnn", -3, 4)
    params = be.from_numpy(init_params("rnn", 5, 3))
    state = be.begin_state("rnn", 2, 3)
    with pytest.raises(ShapeError, match="token id 5, outside the vocabulary"):
        be.forward("rnn", params, np.array([[0, 5], [1, 2]]), state)
    with pytest.raises(ShapeError, match="dtype float64"):
        be.forward("rnn", params, np.zeros((2, 2)), state)
    with pytest.raises(ShapeError, match=r"shape \(4,\)"):
        be.forward("rnn", params, np.zeros(4, dtype=int), state)
    with pytest.raises(ShapeError, match=r"state\[0\] has shape \(3, 3\), expected \(2, 3\)"):
        be.forward("rnn", params, np.zeros((2, 2), dtype=int), be.begin_state("rnn", 3, 3))
    with pytest.raises(ShapeError, match="needs 2 arrays"):
        be.forward("lstm", be.from_numpy(init_params("lstm", 5, 3)), np.zeros((2, 2), dtype=int),
                   state)
