"""The property suite: NumPy BPTT, torch autograd and torch.nn held to each other and to
the identities of the maths. Relations, not examples (STYLE.md §6)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from rnnlab.backend import get_backend
from rnnlab.gradcheck import relative_error
from rnnlab.numpy_backend.functional import clip_grads, global_norm, sigmoid
from rnnlab.numpy_backend.reference import REFERENCES
from rnnlab.numpy_backend.functional import softmax_cross_entropy, softmax_cross_entropy_backward

from strategies import (ALL_CELLS, BASE_CELLS, dtypes, gradient_dicts, model_configs, problems,
                        saturated_problems, seeds)

torch = pytest.importorskip("torch")

TOL = {"float64": 1e-10, "float32": 1e-5}


def backends(dtype: str) -> dict:
    return {
        "numpy": get_backend("numpy", dtype=dtype),
        "torch": get_backend("torch", dtype=dtype, device="cpu", impl="scratch"),
        "torch-nn": get_backend("torch", dtype=dtype, device="cpu", impl="nn"),
    }


def evaluate(be, p, state=None, X=None, Y=None, weights="given"):
    """Everything a backend says about a problem, as float64 NumPy arrays."""
    X = p.X if X is None else X
    Y = p.Y if Y is None else Y
    w = p.weights if isinstance(weights, str) else weights
    params = be.from_numpy(p.params)
    st0 = be.state_from_numpy(p.state if state is None else state)
    logits, state_f = be.forward(p.cfg, params, be.tokens(X), st0)
    loss, grads, state_T, dstate = be.loss_and_grads(
        p.cfg, params, be.tokens(X), be.tokens(Y), st0, weights=w, state_grads=True)
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    return {
        "logits": f64(be.to_numpy({"l": logits})["l"]),
        "loss": loss,
        "state": [f64(s) for s in be.state_to_numpy(state_T)],
        "state_forward": [f64(s) for s in be.state_to_numpy(state_f)],
        "grads": {k: f64(v) for k, v in be.to_numpy(grads).items()},
        "dstate": [f64(s) for s in be.state_to_numpy(dstate)],
    }


def assert_same(a: dict, b: dict, tol: float, what: str, per_array: bool = True) -> None:
    """Agreement to ``tol``. Gradients: relative to each array's own scale (float64), or,
    with ``per_array=False`` (float32), to the largest gradient of the problem. A gradient
    that is a small difference of large terms (1e-6 out of sums of terms of 0.3, seen
    with H = 1) carries the round-off of those terms, ~1e-8 in float32 whichever backend
    computes it; measured on its own tiny scale that looks like 1e-4."""
    assert relative_error(a["logits"], b["logits"]) < tol, f"{what}: logits"
    assert abs(a["loss"] - b["loss"]) <= tol * max(1.0, abs(b["loss"])), f"{what}: loss"
    for i, (x, y) in enumerate(zip(a["state"], b["state"])):
        assert relative_error(x, y) < tol, f"{what}: state[{i}]"
    assert set(a["grads"]) == set(b["grads"])
    scale = max(np.abs(g).max() for g in [*b["grads"].values(), *b["dstate"]])

    def close(x, y) -> bool:
        if per_array:
            return relative_error(x, y) < tol
        return float(np.abs(x - y).max()) <= tol * scale

    for k in a["grads"]:
        assert close(a["grads"][k], b["grads"][k]), f"{what}: grad {k}"
    for i, (x, y) in enumerate(zip(a["dstate"], b["dstate"])):
        assert close(x, y), f"{what}: dstate[{i}]"


# ------------------------------------------------------------- the backends agree


@given(p=problems(model_configs(ALL_CELLS, nn_mappable=True)), dtype=dtypes)
def test_backends_agree_on_outputs_state_and_gradients(p, dtype):
    """numpy BPTT == torch autograd (scratch) == torch.nn, for every parameter and the
    initial state, under random token weights: 1e-10 relative in float64, 1e-5 in float32."""
    results = {name: evaluate(be, p) for name, be in backends(dtype).items()}
    for name in ("torch", "torch-nn"):
        assert_same(results["numpy"], results[name], TOL[dtype], f"numpy vs {name} ({dtype})",
                    per_array=dtype == "float64")
    # forward() and loss_and_grads() report the same final state
    for x, y in zip(results["numpy"]["state"], results["numpy"]["state_forward"]):
        np.testing.assert_array_equal(x, y)


@given(p=problems(model_configs(BASE_CELLS, max_layers=1)))
def test_fused_equals_per_gate_reference(p):
    """The fused-gate cells give d2l's per-gate rnn/lstm outputs and gradients."""
    out = evaluate(get_backend("numpy", dtype="float64"), p)
    forward, backward = REFERENCES[p.cfg.cell]
    logits, state, cache = forward(p.params, p.X, p.state)
    loss, ce = softmax_cross_entropy(logits, p.Y.T.reshape(-1), p.weights)
    grads, dstate = backward(p.params, softmax_cross_entropy_backward(ce), cache)
    assert relative_error(out["logits"], logits) < 1e-12
    for k in grads:
        assert relative_error(out["grads"][k], grads[k]) < 1e-12, k
    for a, b in zip(out["dstate"], dstate):
        assert relative_error(a, b) < 1e-12


# ------------------------------------------------------------------- identities


@given(seed=seeds, B=st.integers(1, 5), V=st.integers(1, 8), H=st.integers(1, 8))
def test_concatenated_weight_identity(seed, B, V, H):
    """X @ W_xh + H @ W_hh == cat(X, H) @ cat(W_xh, W_hh)   (d2l 8.4's torch.cat identity)."""
    rng = np.random.default_rng(seed)
    X, Hs = rng.standard_normal((B, V)), rng.standard_normal((B, H))
    W_xh, W_hh = rng.standard_normal((V, H)), rng.standard_normal((H, H))
    left = X @ W_xh + Hs @ W_hh  # (B, H)
    right = np.concatenate([X, Hs], 1) @ np.concatenate([W_xh, W_hh], 0)  # (B, H)
    assert relative_error(left, right) < 1e-13
    tl = torch.matmul(torch.from_numpy(X), torch.from_numpy(W_xh)) + torch.from_numpy(Hs) @ torch.from_numpy(W_hh)
    tr = torch.cat([torch.from_numpy(X), torch.from_numpy(Hs)], 1) @ torch.cat(
        [torch.from_numpy(W_xh), torch.from_numpy(W_hh)], 0)
    assert relative_error(tl.numpy(), tr.numpy()) < 1e-13


@given(seed=seeds, B=st.integers(1, 6), V=st.integers(1, 9), H=st.integers(1, 7))
def test_one_hot_matmul_is_a_row_gather(seed, B, V, H):
    """one_hot(x) @ W == W[x], exactly: each row of the product has one non-zero term."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, V, B)
    W = rng.standard_normal((V, H))
    np.testing.assert_array_equal(np.eye(V)[x] @ W, W[x])
    tx = torch.from_numpy(x)
    tW = torch.from_numpy(W)
    assert torch.equal(torch.nn.functional.one_hot(tx, V).double() @ tW, tW[tx])


# ------------------------------------------------------------ metamorphic relations


@given(p=problems(model_configs(ALL_CELLS), min_T=2), split=st.integers(1, 5),
       name=st.sampled_from(["numpy", "torch"]))
def test_stepwise_equals_whole_sequence(p, split, name):
    """Running [0, k) then [k, T) with the state carried gives the whole-sequence logits."""
    be = get_backend(name, dtype="float64", **({"device": "cpu"} if name == "torch" else {}))
    T = p.X.shape[1]
    k = min(split, T - 1)
    params = be.from_numpy(p.params)
    whole, s_whole = be.forward(p.cfg, params, be.tokens(p.X), be.state_from_numpy(p.state))
    first, s = be.forward(p.cfg, params, be.tokens(p.X[:, :k]), be.state_from_numpy(p.state))
    second, s2 = be.forward(p.cfg, params, be.tokens(p.X[:, k:]), s)
    whole = be.to_numpy({"a": whole})["a"]
    parts = np.concatenate([be.to_numpy({"a": first})["a"], be.to_numpy({"a": second})["a"]])
    assert relative_error(whole, parts) < 1e-12  # time-major rows: window 1 then window 2
    for a, b in zip(be.state_to_numpy(s_whole), be.state_to_numpy(s2)):
        assert relative_error(a, b) < 1e-12


@given(p=problems(model_configs(ALL_CELLS)), name=st.sampled_from(["numpy", "torch"]))
def test_batch_equals_examples_one_by_one(p, name):
    """Each row of a batch runs independently: logits, final state and (weighted) losses."""
    be = get_backend(name, dtype="float64", **({"device": "cpu"} if name == "torch" else {}))
    B, T = p.X.shape
    w = p.weights.reshape(T, B)  # time-major: w[t, b]
    full = evaluate(be, p)
    total, grads = 0.0, {k: 0.0 for k in p.params}
    for b in range(B):
        one = evaluate(be, p, state=tuple(s[b:b + 1] for s in p.state), X=p.X[b:b + 1],
                       Y=p.Y[b:b + 1], weights=w[:, b])
        assert relative_error(full["logits"][b::B], one["logits"]) < 1e-12
        for x, y in zip(full["state"], one["state"]):
            assert relative_error(x[b:b + 1], y) < 1e-12
        for x, y in zip(full["dstate"], one["dstate"]):  # dL/ds0 of row b, rescaled by 1/B
            assert relative_error(x[b:b + 1] * B, y) < 1e-10
        total += one["loss"] / B  # mean over B*T tokens == mean of per-row means
        grads = {k: grads[k] + one["grads"][k] / B for k in grads}
    assert full["loss"] == pytest.approx(total, rel=1e-12)
    for k in grads:
        assert relative_error(full["grads"][k], grads[k]) < 1e-10, k


def _truncated_reference(p, k):
    """Autograd over the whole sequence with the state detached after step k: the
    truncated gradient of L1 + L2, built independently of any backend."""
    from rnnlab.torch_backend.model import model_forward as torch_forward

    tp = {n: torch.tensor(v, requires_grad=True) for n, v in p.params.items()}
    X = torch.from_numpy(p.X)
    Y = torch.from_numpy(p.Y)
    B = p.X.shape[0]
    w = torch.from_numpy(p.weights.reshape(-1, B))  # (T, B)
    s0 = tuple(torch.tensor(s) for s in p.state)
    logits1, s1 = torch_forward(p.cfg, tp, X[:, :k], s0)[:2]
    logits2, _ = torch_forward(p.cfg, tp, X[:, k:], tuple(s.detach() for s in s1))[:2]
    ce = torch.nn.functional.cross_entropy
    L1 = (ce(logits1, Y[:, :k].T.reshape(-1), reduction="none") * w[:k].reshape(-1)).mean()
    L2 = (ce(logits2, Y[:, k:].T.reshape(-1), reduction="none") * w[k:].reshape(-1)).mean()
    g = torch.autograd.grad(L1 + L2, list(tp.values()))
    return float(L1.detach()), float(L2.detach()), {n: gi.numpy() for n, gi in zip(tp, g)}


@given(p=problems(model_configs(ALL_CELLS), min_T=2), split=st.integers(1, 5))
def test_truncated_bptt_two_windows(p, split):
    """Two consecutive windows, state carried and detached: the losses of one pass, and
    per-window gradients that add up to the truncated gradient (autograd with a detach)."""
    B, T = p.X.shape
    k = min(split, T - 1)
    be = get_backend("numpy", dtype="float64")
    w = p.weights.reshape(T, B)
    l1, g1, s1 = be.loss_and_grads(p.cfg, p.params, p.X[:, :k], p.Y[:, :k], p.state,
                                   weights=w[:k].reshape(-1))
    l2, g2, _ = be.loss_and_grads(p.cfg, p.params, p.X[:, k:], p.Y[:, k:], s1,
                                  weights=w[k:].reshape(-1))
    whole, _, _ = be.loss_and_grads(p.cfg, p.params, p.X, p.Y, p.state, weights=p.weights)
    assert whole == pytest.approx((l1 * k + l2 * (T - k)) / T, rel=1e-12)  # same forward
    r1, r2, ref = _truncated_reference(p, k)
    assert l1 == pytest.approx(r1, rel=1e-12) and l2 == pytest.approx(r2, rel=1e-12)
    for name in p.params:
        assert relative_error(g1[name] + g2[name], ref[name]) < 1e-10, name


# --------------------------------------------------------------------- clipping


@given(grads=gradient_dicts(), theta=st.floats(1e-3, 1e3), name=st.sampled_from(["numpy", "torch"]))
def test_clipping_norm_is_min_of_norm_and_theta(grads, theta, name):
    be = get_backend(name, dtype="float64", **({"device": "cpu"} if name == "torch" else {}))
    g = be.from_numpy(grads)
    before = {k: v.copy() for k, v in grads.items()}
    norm = be.clip_grads(g, theta)
    after = be.to_numpy(g)
    assert norm == pytest.approx(np.sqrt(sum((v ** 2).sum() for v in before.values())), rel=1e-12)
    assert global_norm(after) == pytest.approx(min(norm, theta), rel=1e-6)
    if norm <= theta:  # below the threshold clipping is a no-op
        for k in after:
            np.testing.assert_array_equal(after[k], before[k])
    else:  # direction kept: every array scaled by the same θ / ||g||
        for k in after:
            np.testing.assert_allclose(after[k], before[k] * (theta / norm), rtol=1e-12)


@given(p=problems(model_configs(BASE_CELLS)))
def test_gradient_checks_see_unclipped_gradients(p):
    """loss_and_grads never clips: its norm can exceed any θ, and clipping is a separate call."""
    be = get_backend("numpy", dtype="float64")
    params = {k: v * 20 for k, v in p.params.items()}
    _, grads, _ = be.loss_and_grads(p.cfg, params, p.X, p.Y, p.state, weights=p.weights * 50)
    norm = global_norm(grads)
    copy = {k: v.copy() for k, v in grads.items()}
    assert clip_grads(copy, norm / 2) == pytest.approx(norm)
    assert global_norm(copy) == pytest.approx(norm / 2, rel=1e-6)


# ------------------------------------------------------------------- saturation


@given(p=saturated_problems(model_configs(ALL_CELLS, nn_mappable=True)), dtype=dtypes)
def test_saturated_preactivations_stay_finite(p, dtype):
    """Pre-activations in the hundreds saturate σ and tanh; nothing becomes NaN or inf."""
    for name, be in backends(dtype).items():
        out = evaluate(be, p)
        assert np.isfinite(out["loss"]), name
        assert np.isfinite(out["logits"]).all(), name
        for k, g in out["grads"].items():
            assert np.isfinite(g).all(), (name, k)
        for s in out["state"] + out["dstate"]:
            assert np.isfinite(s).all(), name
    x = np.array([-500.0, -100.0, 100.0, 500.0], dtype=dtype)
    assert np.isfinite(sigmoid(x)).all()
