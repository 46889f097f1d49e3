"""The speed-tuned numpy code computes exactly what the readable forms compute.

Issue 6 rewrote the hot loops of ``numpy_backend/cells.py`` (one tanh for all four LSTM
gates, derivative factors multiplied out before the BPTT loop, preallocated buffers) and
the input side of ``model.py`` (bias folded into the gather table, a sorted scatter-add
instead of ``np.add.at``). These tests hold each trick to the form it replaces:

- the whole fused model against the per-gate reference of d2l (``reference.py``: one-hot
  matrices, one matmul per gate), forward and BPTT, float64 to 1e-10, T = 1 included,
  with random biases, initial states and upstream gradients;
- ``scatter_add_rows`` against ``np.add.at``, bit for bit, repeated ids included;
- the fused gate nonlinearity against ``functional.sigmoid`` / ``np.tanh``, bit for bit,
  and finite at pre-activations in the thousands;
- float32 stays float32 (no float64 scalar or array sneaks into the hot path).
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.config import ModelConfig
from rnnlab.gradcheck import random_problem
from rnnlab.numpy_backend.cells import CELLS, gate_coefficients
from rnnlab.numpy_backend.functional import sigmoid
from rnnlab.numpy_backend.model import loss_and_grads, model_backward, model_forward, scatter_add_rows
from rnnlab.numpy_backend.reference import REFERENCES

SHAPES = [  # (V, H, B, T)
    (5, 3, 2, 1),  # T = 1: the loop runs once, dH_next / dC_next come only from dstate
    (4, 1, 1, 3),  # H = 1, B = 1
    (7, 6, 3, 5),
    (28, 8, 4, 9),  # the time machine's vocabulary
]


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "irnn"])
@pytest.mark.parametrize("V,H,B,T", SHAPES)
def test_fused_model_equals_per_gate_reference(cell, V, H, B, T):
    cfg = ModelConfig(cell, V, H)
    params, X, _, state, _ = random_problem(cfg, B, T, seed=V * 100 + H * 10 + T)
    rng = np.random.default_rng(T)
    ref_forward, ref_backward = REFERENCES[cell]

    logits, state_T, cache = model_forward(cfg, params, X, state)
    ref_logits, ref_state_T, ref_cache = ref_forward(params, X, state)
    assert rel_err(logits, ref_logits) < 1e-10
    for s, r in zip(state_T, ref_state_T):
        assert rel_err(s, r) < 1e-10

    dlogits = rng.standard_normal(logits.shape)  # (T*B, V): a random upstream gradient
    grads, dstate0 = model_backward(dlogits, tuple(np.zeros_like(s) for s in state_T), cache)
    ref_grads, ref_dstate0 = ref_backward(params, dlogits, ref_cache)
    for name in params:
        assert rel_err(grads[name], ref_grads[name]) < 1e-10, name
    for d, r in zip(dstate0, ref_dstate0):
        assert rel_err(d, r) < 1e-10


@pytest.mark.parametrize("cell", ["rnn", "lstm", "irnn"])
def test_cell_backward_reads_gradients_arriving_from_beyond_the_window(cell):
    """dstate_T non-zero (as in a longer BPTT window): the cell equals a two-window run."""
    cfg = ModelConfig(cell, 6, 4)
    params, X, _, state, _ = random_problem(cfg, 3, 6, seed=7)
    rng = np.random.default_rng(0)
    dlogits = rng.standard_normal((6 * 3, 6))  # (T*B, V)
    _, _, cache = model_forward(cfg, params, X, state)
    zeros = tuple(np.zeros((3, 4)) for _ in state)
    full, dstate_full = model_backward(dlogits, zeros, cache)
    # the same window as two halves: the second half's dstate_0 feeds the first's dstate_T
    _, mid, cache_a = model_forward(cfg, params, X[:, :3], state)
    _, _, cache_b = model_forward(cfg, params, X[:, 3:], mid)
    g_b, d_mid = model_backward(dlogits[9:], zeros, cache_b)
    g_a, dstate_a = model_backward(dlogits[:9], d_mid, cache_a)
    for name in params:
        assert rel_err(g_a[name] + g_b[name], full[name]) < 1e-10, name
    for a, b in zip(dstate_a, dstate_full):
        assert rel_err(a, b) < 1e-10


@pytest.mark.parametrize("V", [3, 28, 500])
def test_scatter_add_rows_equals_np_add_at_bit_for_bit(V):
    rng = np.random.default_rng(V)
    for dtype in (np.float32, np.float64):
        ids = rng.integers(0, V, 200)  # (N,): repeats guaranteed for V < 200
        ids[:5] = ids[0]  # one id five times in a row
        rows = rng.standard_normal((200, 12)).astype(dtype)  # (N, G)
        expected = np.zeros((V, 12), dtype=dtype)
        np.add.at(expected, ids, rows)
        got = scatter_add_rows(ids, rows, V)
        assert got.dtype == dtype
        assert np.array_equal(got, expected)


def test_scatter_add_rows_is_one_hot_transposed_times_rows():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 6, 40)  # (N,)
    rows = rng.standard_normal((40, 5))  # (N, G)
    one_hot = np.eye(6)[ids]  # (N, V)
    assert np.allclose(scatter_add_rows(ids, rows, 6), one_hot.T @ rows, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_gate_nonlinearity_is_sigmoid_and_tanh_exactly(dtype):
    """a ⊙ tanh(a ⊙ Z) + c, as lstm_forward applies it, is σ on [I|F|O] and tanh on C̃."""
    n = 5
    rng = np.random.default_rng(0)
    Z = (rng.standard_normal((3, 4 * n)) * 4).astype(dtype)  # (B, 4H)
    Z[0, :] = np.linspace(-3e3, 3e3, 4 * n)  # saturated: exp(-z) would overflow here
    a, c = gate_coefficients(n, dtype)
    assert a.dtype == c.dtype == dtype
    G = Z.copy()  # (B, 4H), the same four in-place passes as the forward
    G *= a
    np.tanh(G, out=G)
    G *= a
    G += c
    assert np.isfinite(G).all()
    assert np.array_equal(G[:, :3 * n], sigmoid(Z[:, :3 * n].copy()))
    assert np.array_equal(G[:, 3 * n:], np.tanh(Z[:, 3 * n:]))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "irnn"])
def test_float32_stays_float32(cell):
    """Every array the hot path makes, and every gradient, is float32 for float32 inputs."""
    cfg = ModelConfig(cell, 9, 5)
    params, X, Y, state, _ = random_problem(cfg, 2, 4, seed=3)
    params = {k: v.astype(np.float32) for k, v in params.items()}
    state = tuple(s.astype(np.float32) for s in state)
    logits, state_T, cache = model_forward(cfg, params, X, state)
    assert logits.dtype == np.float32
    assert all(s.dtype == np.float32 for s in state_T)
    for arr in cache.layers[0].cell:
        assert arr.dtype == np.float32
    loss, grads, state_T, dstate0 = loss_and_grads(cfg, params, X, Y, state)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert all(d.dtype == np.float32 for d in dstate0)
    forward, backward = CELLS[cell]
    XW = np.zeros((4, 2, 5 * (4 if cell == "lstm" else 1)), np.float32)  # (T, B, G*H)
    W_h = np.zeros((5, XW.shape[-1]), np.float32)  # (H, G*H)
    Hs, st, c = forward(XW, W_h, state)
    dZ, dW_h, dst = backward(np.ones_like(Hs), tuple(np.ones_like(s) for s in st), c)
    assert Hs.dtype == dZ.dtype == dW_h.dtype == np.float32
    assert all(d.dtype == np.float32 for d in dst)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "irnn"])
def test_cells_do_not_modify_their_inputs(cell):
    """Pure functions: XW, W_h, the state and the upstream gradients come back untouched."""
    rng = np.random.default_rng(5)
    G = 4 if cell == "lstm" else 1
    XW = rng.standard_normal((3, 2, 4 * G))  # (T, B, G*H)
    W_h = rng.standard_normal((4, 4 * G))  # (H, G*H)
    state = tuple(rng.standard_normal((2, 4)) for _ in range(2 if cell == "lstm" else 1))
    dHs = rng.standard_normal((3, 2, 4))  # (T, B, H)
    dstate = tuple(rng.standard_normal((2, 4)) for _ in state)
    before = [x.copy() for x in (XW, W_h, dHs, *state, *dstate)]
    forward, backward = CELLS[cell]
    _, _, cache = forward(XW, W_h, state)
    backward(dHs, dstate, cache)
    for x, y in zip((XW, W_h, dHs, *state, *dstate), before):
        assert np.array_equal(x, y)


def test_global_norm_is_within_1e7_of_the_exact_norm():
    """Squares summed per array in float64 after rounding to float32: still exact to 1e-7
    over millions of entries of mixed magnitude."""
    import math

    from rnnlab.numpy_backend.functional import global_norm

    rng = np.random.default_rng(0)
    grads = {"a": rng.standard_normal(2_000_000) * 10.0 ** rng.integers(-3, 3, 2_000_000),
             "b": rng.standard_normal((700, 900)) * 1e-2, "c": np.full(3, 7.0)}
    grads = {k: v.astype(np.float32) for k, v in grads.items()}
    exact = math.sqrt(sum(float(np.sum(v.astype(np.float64) ** 2)) for v in grads.values()))
    assert abs(global_norm(grads) - exact) <= 1e-7 * exact


@pytest.mark.parametrize("dtype,value", [(np.float32, 1e20), (np.float32, 1e-25),
                                         (np.float64, 1e200), (np.float64, 1e-200)])
def test_global_norm_is_exact_where_squares_leave_the_dtype(dtype, value):
    """Squares that overflow or underflow the dtype fall back to the scaled sum."""
    import math

    from rnnlab.numpy_backend.functional import global_norm

    g = {"a": np.full(4, value, dtype=dtype), "b": np.full(9, -value, dtype=dtype)}
    exact = math.sqrt(13) * float(dtype(value))
    with np.errstate(all="raise"):  # no warning escapes either
        assert abs(global_norm(g) - exact) <= 1e-12 * exact
