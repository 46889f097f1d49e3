"""Optimisers: hand-written NumPy SGD / Adam / Adagrad take torch.optim's steps.

The same parameters and the same gradients, step after step, give the same parameters
and the same state on both backends; the state moves between them mid-run; and the
NumPy ones match the closed forms of their first steps.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnlab.errors import CheckpointError, ConfigError
from rnnlab.numpy_backend import NumpyBackend

NAMES = ("sgd", "adam", "adagrad")


@st.composite
def param_dicts(draw):
    """1-3 named arrays of random shapes (scalars-as-(1,) to 3-D), float64, seeded."""
    n = draw(st.integers(1, 3))
    shapes = [tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))) for _ in range(n)]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return {f"W{i}": rng.standard_normal(s) for i, s in enumerate(shapes)}, seed


lrs = st.floats(1e-4, 2.0)
steps = st.integers(1, 5)


def gradients(params: dict, rng: np.random.Generator) -> dict:
    # scales spread over orders of magnitude, as a real run's gradients are
    return {k: rng.standard_normal(v.shape) * 10.0 ** rng.uniform(-4, 1) for k, v in params.items()}


def assert_rel(got, want, tol, what=""):
    got, want = np.asarray(got), np.asarray(want)
    scale = max(float(np.abs(want).max()), 1e-300)
    assert float(np.abs(got - want).max()) <= tol * scale, what


# ------------------------------------------------------------------ numpy vs torch.optim


@given(pd=param_dicts(), lr=lrs, n=steps, name=st.sampled_from(NAMES))
def test_same_updates_from_the_same_gradients(pd, lr, n, name):
    torch = pytest.importorskip("torch")
    from rnnlab.torch_backend import TorchBackend

    params, seed = pd
    nb, tb = NumpyBackend(dtype="float64"), TorchBackend(dtype="float64")
    p_np, p_t = nb.from_numpy(params), tb.from_numpy(params)
    o_np, o_t = nb.make_optimizer(name, p_np, lr), tb.make_optimizer(name, p_t, lr)
    rng = np.random.default_rng(seed + 1)
    for _ in range(n):
        g = gradients(params, rng)
        o_np.step(g)
        o_t.step(tb.from_numpy(g))
    got = tb.to_numpy(p_t)
    for k in params:
        assert_rel(got[k], p_np[k], 1e-12, k)
        assert p_t[k].grad is None and isinstance(p_t[k], torch.Tensor)
    s_np, s_t = o_np.state_dict(), o_t.state_dict()
    assert s_np["step"] == s_t["step"] == (0 if name == "sgd" else n)
    assert set(s_np["arrays"]) == set(s_t["arrays"])
    for k, v in tb.to_numpy(s_t["arrays"]).items():
        assert_rel(v, s_np["arrays"][k], 1e-12, k)


@given(pd=param_dicts(), lr=lrs, name=st.sampled_from(NAMES), first=st.booleans())
def test_state_moves_between_backends_mid_run(pd, lr, name, first):
    """Two steps on one backend, state handed over, two on the other = four on one."""
    pytest.importorskip("torch")
    from rnnlab.torch_backend import TorchBackend

    params, seed = pd
    nb, tb = NumpyBackend(dtype="float64"), TorchBackend(dtype="float64")
    a, b = (nb, tb) if first else (tb, nb)
    rng = np.random.default_rng(seed + 2)
    grads = [gradients(params, rng) for _ in range(4)]
    ref = nb.from_numpy(params)
    o_ref = nb.make_optimizer(name, ref, lr)
    for g in grads:
        o_ref.step(g)
    p_a = a.from_numpy(params)
    o_a = a.make_optimizer(name, p_a, lr)
    for g in grads[:2]:
        o_a.step(a.from_numpy(g))
    state = o_a.state_dict()
    state = {"step": state["step"], "arrays": a.to_numpy(state["arrays"])}  # as a checkpoint
    p_b = b.from_numpy(a.to_numpy(p_a))
    o_b = b.make_optimizer(name, p_b, lr)
    o_b.load_state_dict(state)
    for g in grads[2:]:
        o_b.step(b.from_numpy(g))
    for k, v in b.to_numpy(p_b).items():
        assert_rel(v, ref[k], 1e-12, k)


# ------------------------------------------------------------- closed forms (numpy only)


@given(pd=param_dicts(), lr=lrs)
def test_sgd_is_theta_minus_lr_g(pd, lr):
    params, seed = pd
    p = {k: v.copy() for k, v in params.items()}
    g = gradients(params, np.random.default_rng(seed))
    NumpyBackend(dtype="float64").make_optimizer("sgd", p, lr).step(g)
    for k in params:
        np.testing.assert_array_equal(p[k], params[k] - lr * g[k])


@given(pd=param_dicts(), lr=lrs, name=st.sampled_from(["adam", "adagrad"]))
def test_first_adaptive_step_is_lr_times_the_sign(pd, lr, name):
    """Adam's bias correction and Adagrad's accumulator both make the first step
    lr · g / (|g| + ε): a step of length lr per coordinate, whatever the gradient's scale."""
    params, seed = pd
    p = {k: v.copy() for k, v in params.items()}
    g = gradients(params, np.random.default_rng(seed))
    NumpyBackend(dtype="float64").make_optimizer(name, p, lr).step(g)
    eps = 1e-8 if name == "adam" else 1e-10
    for k in params:
        step = params[k] - p[k]
        assert_rel(step, lr * g[k] / (np.abs(g[k]) + eps), 1e-9, k)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_exactly(name):
    rng = np.random.default_rng(0)
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    grads = [gradients(params, rng) for _ in range(4)]
    nb = NumpyBackend(dtype="float64")
    p1, p2 = nb.from_numpy(params), nb.from_numpy(params)
    o1 = nb.make_optimizer(name, p1, 0.05)
    o2 = nb.make_optimizer(name, p2, 0.05)
    for g in grads[:2]:
        o1.step(g)
        o2.step(g)
    saved = {"step": o2.state_dict()["step"],
             "arrays": {k: v.copy() for k, v in o2.state_dict()["arrays"].items()}}
    o2 = nb.make_optimizer(name, p2, 0.05)  # a fresh optimiser, as after a restart
    o2.load_state_dict(saved)
    for g in grads[2:]:
        o1.step(g)
        o2.step(g)
    for k in params:
        np.testing.assert_array_equal(p1[k], p2[k])


def test_bad_optimizer_state_and_options_are_refused():
    nb = NumpyBackend(dtype="float64")
    p = {"W": np.zeros((2, 3))}
    with pytest.raises(CheckpointError, match="'v.W'"):
        nb.make_optimizer("adam", p, 0.1).load_state_dict({"step": 1, "arrays": {"m.W": np.zeros((2, 3))}})
    with pytest.raises(CheckpointError, match=r"'sum.W' has shape \(3, 2\), expected \(2, 3\)"):
        nb.make_optimizer("adagrad", p, 0.1).load_state_dict({"step": 1, "arrays": {"sum.W": np.zeros((3, 2))}})
    with pytest.raises(CheckpointError, match="SGD has no per-parameter state"):
        nb.make_optimizer("sgd", p, 0.1).load_state_dict({"step": 0, "arrays": {"m.W": np.zeros((2, 3))}})
    with pytest.raises(ConfigError, match="rmsprop"):
        nb.make_optimizer("rmsprop", p, 0.1)
    with pytest.raises(ConfigError, match="positive"):
        nb.make_optimizer("adam", p, -1.0)
