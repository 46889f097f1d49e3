"""Numerics at the extremes (issue 7).

* sigmoid, tanh, the log-softmax inside the cross-entropy, and their gradients stay
  finite and accurate for inputs up to |x| = 1e4, in float32 and float64. The reference
  is computed in 60-digit decimal arithmetic (``decimal``, no extra dependency) on the
  very same (dtype-rounded) inputs, so the tolerances measure rnnlab's error alone:
  sigmoid and tanh within 2 ulp of their output scale 1 (measured: <= 0.5), their
  derivatives within 2 ulp (measured: <= 1.03), the per-token negative log-likelihood
  within 4 ulp relative to max(|nll|, 1) (measured: <= 1), the softmax gradient within
  4 ulp absolute (measured: <= 1.5).
* The whole model's loss and gradients stay finite with pre-activations in the hundreds.
* Clipping a zero, tiny, huge or mixed gradient gives norm min(||g||, θ) and never a NaN.
* A window of T = 1000 steps trains without overflow.
* A non-finite loss or norm stops training before the update: parameters stay good.
"""

from __future__ import annotations

import decimal
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rnnlab
from rnnlab.config import ModelConfig
from rnnlab.errors import NonFiniteError
from rnnlab.numpy_backend.functional import (
    clip_grads,
    global_norm,
    sigmoid,
    sigmoid_backward,
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
    tanh_backward,
)
from rnnlab.params import init_params
from rnnlab.train import TrainConfig, train

D = decimal.Context(prec=60, Emin=-10**8, Emax=10**8)  # e^±1e4 is in range
DTYPES = [np.float32, np.float64]


def dec(x) -> decimal.Decimal:
    return D.create_decimal(float(x))  # exact: every binary float is a finite decimal


def ref_sigmoid(x) -> float:
    return float(D.divide(1, D.add(1, D.exp(-dec(x)))))


def ref_tanh(x) -> float:
    a = D.exp(D.multiply(-2, abs(dec(x))))  # e^{-2|x|} <= 1: no cancellation below
    t = D.divide(D.subtract(1, a), D.add(1, a))
    return float(t if x >= 0 else -t)


def ref_dsigmoid(x) -> float:
    a = D.exp(-abs(dec(x)))  # σ' = e^{-|x|} / (1 + e^{-|x|})², symmetric in x
    return float(D.divide(a, D.power(D.add(1, a), 2)))


def ref_dtanh(x) -> float:
    a = D.exp(D.multiply(-2, abs(dec(x))))  # sech² = 4 e^{-2|x|} / (1 + e^{-2|x|})²
    return float(D.divide(D.multiply(4, a), D.power(D.add(1, a), 2)))


def ref_log_softmax(z) -> list:
    zs = [dec(v) for v in z]
    m = max(zs)
    lse = D.add(m, D.ln(sum((D.exp(D.subtract(v, m)) for v in zs), decimal.Decimal(0))))
    return [D.subtract(v, lse) for v in zs]


def extreme_inputs() -> np.ndarray:
    """Both signs, every scale from 1e-8 to 1e4, and the points where naive formulas
    overflow (exp(88.7) in float32, exp(709.8) in float64) or saturate."""
    mags = np.concatenate([np.geomspace(1e-8, 1e4, 400), np.linspace(0, 1e4, 201),
                           [16.6, 36.7, 44.4, 88.7, 89.0, 709.8, 710.0, 9999.0, 1e4]])
    return np.concatenate([mags, -mags])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_tanh_are_finite_and_accurate_up_to_1e4(dtype):
    x = extreme_inputs().astype(dtype)  # (n,)
    eps = np.finfo(dtype).eps
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow, not even an intermediate one
        s = sigmoid(x)  # (n,)
        t = np.tanh(x)  # (n,)
    assert s.dtype == t.dtype == dtype
    assert ((0 <= s) & (s <= 1)).all() and ((-1 <= t) & (t <= 1)).all()
    ref_s = np.array([ref_sigmoid(v) for v in x])
    ref_t = np.array([ref_tanh(v) for v in x])
    assert np.max(np.abs(s - ref_s)) <= 2 * eps
    assert np.max(np.abs(t - ref_t)) <= 2 * eps
    assert set(s[x == dtype(1e4)].tolist()) == {1.0} and set(s[x == dtype(-1e4)].tolist()) == {0.0}


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_tanh_gradients_are_finite_and_accurate_up_to_1e4(dtype):
    x = extreme_inputs().astype(dtype)
    eps = np.finfo(dtype).eps
    rng = np.random.default_rng(3)
    dY = rng.uniform(-2, 2, x.shape).astype(dtype)  # a random upstream gradient, not ones
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ds = sigmoid_backward(dY, sigmoid(x))  # (n,)
        dt = tanh_backward(dY, np.tanh(x))  # (n,)
    assert np.isfinite(ds).all() and np.isfinite(dt).all()
    ref_ds = dY.astype(np.float64) * np.array([ref_dsigmoid(v) for v in x])
    ref_dt = dY.astype(np.float64) * np.array([ref_dtanh(v) for v in x])
    # |dY| <= 2, so 2 ulp of the derivative's scale becomes 4 ulp here
    assert np.max(np.abs(ds - ref_ds)) <= 4 * eps
    assert np.max(np.abs(dt - ref_dt)) <= 4 * eps


logit_rows = st.lists(
    st.one_of(st.floats(-1e4, 1e4, allow_nan=False), st.sampled_from([1e4, -1e4, 0.0])),
    min_size=2, max_size=12)


@pytest.mark.parametrize("dtype", DTYPES)
@given(rows=st.lists(logit_rows, min_size=1, max_size=4), data=st.data())
def test_log_softmax_loss_and_gradient_accurate_up_to_1e4(dtype, rows, data):
    """Each token's nll = logsumexp(z) - z_y, isolated with one-hot token weights, and
    the gradient (softmax - onehot) / N against 60-digit references."""
    V = min(len(r) for r in rows)
    z = np.array([r[:V] for r in rows], dtype=dtype)  # (N, V)
    N = z.shape[0]
    y = np.array([data.draw(st.integers(0, V - 1)) for _ in range(N)])  # (N,)
    eps = np.finfo(dtype).eps
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        _, cache = softmax_cross_entropy(z, y)
        dz = softmax_cross_entropy_backward(cache)  # (N, V)
    assert np.isfinite(dz).all()
    for n in range(N):
        ref = ref_log_softmax(z[n])  # log-softmax of row n, 60 digits
        w = np.zeros(N, dtype=dtype)
        w[n] = N  # the weighted mean is then token n's nll alone
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            nll, _ = softmax_cross_entropy(z, y, w)
        expected = -float(ref[y[n]])
        assert math.isfinite(nll) and nll >= 0
        assert abs(nll - expected) <= 4 * eps * max(abs(expected), 1.0)
        probs = np.array([float(D.exp(v)) for v in ref])  # (V,)
        probs[y[n]] -= 1
        assert np.max(np.abs(dz[n] * N - probs)) <= 4 * eps * N


CELL_CONFIGS = [ModelConfig("rnn", 6, 5), ModelConfig("lstm", 6, 5),
                ModelConfig("gru", 6, 5), ModelConfig("gru", 6, 5, gru_form="torch"),
                ModelConfig("lstm", 6, 5, num_layers=2)]


def saturated_problem(cfg: ModelConfig, scale: float, seed: int = 0):
    """Weights N(0, 1) * scale, random biases and state: pre-activations of order
    scale * sqrt(H), i.e. hundreds for scale 100."""
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(v.shape) * scale
              for k, v in init_params(cfg, seed=seed, dtype=np.float64).items()}
    B, T = 3, 7
    X = rng.integers(0, cfg.vocab_size, (B, T))
    Y = rng.integers(0, cfg.vocab_size, (B, T))
    n = cfg.num_layers * cfg.num_directions * cfg.num_states
    state = tuple(rng.uniform(-1, 1, (B, cfg.num_hiddens)) for _ in range(n))
    return params, X, Y, state


@pytest.mark.parametrize("cfg", CELL_CONFIGS, ids=lambda c: f"{c.cell}-{c.gru_form}-L{c.num_layers}")
def test_whole_model_finite_with_preactivations_in_the_hundreds(cfg):
    params, X, Y, state = saturated_problem(cfg, scale=100.0)
    be64 = rnnlab.get_backend("numpy", dtype="float64")
    W_x = params["W_x" + {"rnn": "h", "lstm": "i", "gru": "z"}[cfg.cell]]
    assert np.abs(W_x).max() > 200  # the premise: saturated gates
    losses = {}
    for name in ("float32", "float64"):
        be = rnnlab.get_backend("numpy", dtype=name)
        with np.errstate(over="raise", invalid="raise"):
            loss, grads, state_T, dstate = be.loss_and_grads(
                cfg, be.from_numpy(params), X, Y, be.state_from_numpy(state), state_grads=True)
        assert math.isfinite(loss)
        assert all(np.isfinite(g).all() for g in grads.values())
        assert all(np.isfinite(s).all() for s in state_T + dstate)
        losses[name] = loss
    # logits of order 1e3: float32 agrees with float64 to float32 precision of the logits
    assert losses["float32"] == pytest.approx(losses["float64"], rel=1e-4)
    assert be64.forward(cfg, be64.from_numpy(params), X, be64.state_from_numpy(state))[0].max() > 100


# --------------------------------------------------------------------------- clipping


def exact_norm(grads: dict) -> float:
    return float(D.sqrt(sum((D.power(dec(v), 2) for g in grads.values() for v in np.ravel(g)),
                            decimal.Decimal(0))))


CLIP_CASES = {
    "zero": lambda dt: {"a": np.zeros((3, 2), dt), "b": np.zeros(4, dt)},
    "tiny": lambda dt: {"a": np.full((3, 2), 1e-30, dt), "b": np.full(4, -3e-30, dt)},
    "subnormal": lambda dt: {"a": np.array([1e-45 if dt == np.float32 else 5e-324, 0.0], dt)},
    "huge": lambda dt: {"a": np.full((3, 2), 1e30, dt), "b": np.full(4, -2e30, dt)},
    "near-max": lambda dt: {"a": np.full(5, np.finfo(dt).max / 8, dt)},
    "mixed": lambda dt: {"a": np.array([1e30, -1e-30, 3.0], dt), "b": np.array([1e-30], dt),
                         "c": np.array([0.0, 2.0], dt)},
    "ordinary": lambda dt: {"a": np.array([[0.3, -0.4], [1.2, 0.0]], dt), "b": np.array([2.0], dt)},
}


@pytest.mark.parametrize("theta", [1e-20, 1.0, 1e25])
@pytest.mark.parametrize("case", list(CLIP_CASES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_clipping_never_introduces_nan(backend, dtype, case, theta):
    """||g|| before is exact to float rounding; after clipping the norm is
    min(||g||, θ) (relative 1e-6) and the direction is kept; nothing becomes NaN."""
    grads = CLIP_CASES[case](dtype)
    ref = exact_norm(grads)
    if backend == "torch":
        pytest.importorskip("torch")
        be = rnnlab.get_backend("torch", dtype=np.dtype(dtype).name, device="cpu")
    else:
        be = rnnlab.get_backend("numpy", dtype=np.dtype(dtype).name)
    g = be.from_numpy(grads) if backend == "torch" else {k: v.copy() for k, v in grads.items()}
    with np.errstate(over="raise", invalid="raise"):
        norm = be.clip_grads(g, theta)
    after = be.to_numpy(g) if backend == "torch" else g
    assert math.isfinite(norm)
    assert norm == pytest.approx(ref, rel=1e-6, abs=0)
    for k in grads:
        assert np.isfinite(after[k]).all(), k
    target = min(ref, theta)
    got = exact_norm(after)
    if ref > theta:  # clipped: norm θ up to the rounding of a scale of |g| to the dtype
        tiny = float(np.finfo(dtype).smallest_subnormal) * math.sqrt(sum(v.size for v in grads.values()))
        assert got == pytest.approx(target, rel=1e-6, abs=2 * tiny)
        for k in grads:  # same direction: every entry scaled by the same θ / ||g||
            np.testing.assert_allclose(after[k], grads[k].astype(np.float64) / ref * theta, rtol=1e-6,
                                       atol=2 * np.finfo(dtype).smallest_subnormal)
    else:  # below the threshold clipping is a no-op, bit for bit
        for k in grads:
            np.testing.assert_array_equal(after[k], grads[k])


def test_global_norm_does_not_depend_on_dict_order():
    """A resumed run gets its parameters back in another order: same norm, bit for bit."""
    rng = np.random.default_rng(0)
    grads = {k: rng.standard_normal(s).astype(np.float32) * 10.0 ** rng.integers(-5, 5)
             for k, s in [("W_xh", (7, 5)), ("W_hh", (5, 5)), ("b_h", (5,)), ("W_hq", (5, 7))]}
    reordered = dict(reversed(list(grads.items())))
    assert global_norm(grads) == global_norm(reordered)
    copy = {k: v.copy() for k, v in grads.items()}
    copy_reordered = {k: v.copy() for k, v in reordered.items()}
    assert clip_grads(copy, 1e-3) == clip_grads(copy_reordered, 1e-3)
    for k in grads:
        np.testing.assert_array_equal(copy[k], copy_reordered[k])


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_window_of_1000_steps_trains_without_overflow(cell):
    """d2l's settings (lr 1, clip 1, sequential, state carried) with T = 1000: every loss
    and gradient norm finite, and the model learns something in four windows."""
    rng = np.random.default_rng(0)
    V, T, B = 12, 1000, 2
    corpus = rng.integers(0, V, (B + 1) * T + 1 + 50)  # (N,): one (B, T) window per epoch
    corpus[::3] = 0  # a pattern to learn: every third token is 0
    cfg = ModelConfig(cell, V, 6)
    be = rnnlab.get_backend("numpy", dtype="float32")
    params = be.from_numpy(init_params(cfg, seed=1))
    norms = []
    with np.errstate(over="raise", invalid="raise"):
        history = train(be, cfg, params, corpus,
                        TrainConfig(num_epochs=4, batch_size=B, num_steps=T, lr=1.0, clip_theta=1.0),
                        on_batch=lambda e, i, n, loss, norm: norms.append((loss, norm)))
    assert len(norms) == 4 and all(math.isfinite(a) and math.isfinite(b) for a, b in norms)
    assert all(math.isfinite(h.train_ppl) for h in history)
    assert all(np.isfinite(v).all() for v in params.values())
    assert history[-1].train_ppl < history[0].train_ppl


def test_nonfinite_norm_stops_before_the_update():
    """The loop checks the loss and the norm before optimizer.step: when batch k's
    gradient is NaN, the parameters are exactly those after batch k - 1."""
    cfg = ModelConfig("lstm", 8, 4)
    be = rnnlab.get_backend("numpy", dtype="float64")
    rng = np.random.default_rng(0)
    corpus = rng.integers(0, 8, 400)
    params = be.from_numpy(init_params(cfg, seed=0))
    seen = []

    class PoisonAfter3:
        """The numpy backend, except that its 4th gradient holds a NaN."""

        def __getattr__(self, name):
            return getattr(be, name)

        def loss_and_grads(self, *args, **kwargs):
            loss, grads, state = be.loss_and_grads(*args, **kwargs)
            if len(seen) == 3:
                grads["W_hq"][0, 0] = np.nan
            return loss, grads, state

    def on_batch(epoch, i, n, loss, norm):
        seen.append({k: v.copy() for k, v in params.items()})

    with pytest.raises(NonFiniteError, match=r"gradient norm became nan at epoch 1, batch 4"):
        train(PoisonAfter3(), cfg, params, corpus,
              TrainConfig(num_epochs=1, batch_size=2, num_steps=5), on_batch=on_batch)
    assert len(seen) == 3
    for k in params:
        np.testing.assert_array_equal(params[k], seen[-1][k])  # no update from batch 4


def test_overflow_in_the_last_update_is_caught_at_the_end_of_the_epoch():
    """An update that overflows a parameter on the last batch of an epoch has no later
    loss to reveal it: the end-of-epoch check names it before the epoch is reported (and
    so before the CLI would checkpoint it)."""
    cfg = ModelConfig("rnn", 8, 4)
    be = rnnlab.get_backend("numpy", dtype="float32")
    corpus = np.random.default_rng(0).integers(0, 8, 3 * 5 + 1)  # one batch per epoch
    params = be.from_numpy(init_params(cfg, seed=0))
    sgd = be.make_optimizer("sgd", params, 1.0)

    class Overflowing:
        """SGD whose step overflows W_hq[1, 2], as lr * g past 3.4e38 would."""

        def step(self, grads):
            sgd.step(grads)
            params["W_hq"][1, 2] = np.float32(3e38) * np.float32(10)  # inf

    reported = []
    with np.errstate(over="ignore"):
        with pytest.raises(NonFiniteError, match=r"parameter 'W_hq' became NaN or infinite in "
                                                 r"the update at epoch 1, batch 1"):
            train(be, cfg, params, corpus, TrainConfig(num_epochs=3, batch_size=2, num_steps=5),
                  optimizer=Overflowing(), on_epoch=reported.append)
    assert reported == []  # the epoch was never reported, so never checkpointed
