"""Optimisers: hand-written NumPy SGD / Adam / Adagrad take torch.optim's steps, and
``adagrad-minchar`` takes min-char-rnn's.

The same parameters and the same gradients, step after step, give the same parameters
and the same state on both backends; the state moves between them mid-run; the NumPy
ones match the closed forms of their first steps; ``adagrad`` matches a bare
``torch.optim.Adagrad`` and ``adagrad-minchar`` matches min-char-rnn's update lines.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnlab.errors import CheckpointError, ConfigError
from rnnlab.numpy_backend import NumpyBackend

NAMES = ("sgd", "adam", "adagrad", "adagrad-minchar")


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
    # scales spread over orders of magnitude, as a real run's gradients are; up to 100, so
    # min-char-rnn's clip to [-5, 5] is exercised
    return {k: rng.standard_normal(v.shape) * 10.0 ** rng.uniform(-4, 2) for k, v in params.items()}


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


@given(pd=param_dicts(), lr=lrs, name=st.sampled_from(["adam", "adagrad", "adagrad-minchar"]))
def test_first_adaptive_step_is_lr_times_the_sign(pd, lr, name):
    """Adam's bias correction and Adagrad's accumulator both make the first step
    lr · g / (|g| + ε): a step of length lr per coordinate, whatever the gradient's scale.
    min-char-rnn's puts ε under the root and clips first: lr · c / sqrt(c² + 1e-8),
    c = clip(g, -5, 5)."""
    params, seed = pd
    p = {k: v.copy() for k, v in params.items()}
    g = gradients(params, np.random.default_rng(seed))
    NumpyBackend(dtype="float64").make_optimizer(name, p, lr).step(g)
    for k in params:
        step = params[k] - p[k]
        if name == "adagrad-minchar":
            c = np.clip(g[k], -5, 5)
            want = lr * c / np.sqrt(c * c + 1e-8)
        else:
            want = lr * g[k] / (np.abs(g[k]) + (1e-8 if name == "adam" else 1e-10))
        assert_rel(step, want, 1e-9, k)


# ------------------------------------------- the two Adagrads, each against its source


@given(pd=param_dicts(), lr=lrs, n=steps)
def test_adagrad_is_torch_optim_adagrad(pd, lr, n):
    """``adagrad`` against a bare ``torch.optim.Adagrad`` (not rnnlab's wrapper of it)."""
    torch = pytest.importorskip("torch")
    params, seed = pd
    p = {k: v.copy() for k, v in params.items()}
    t = [torch.tensor(v, requires_grad=True) for v in params.values()]
    ours = NumpyBackend(dtype="float64").make_optimizer("adagrad", p, lr)
    theirs = torch.optim.Adagrad(t, lr=lr)
    rng = np.random.default_rng(seed + 3)
    for _ in range(n):
        g = gradients(params, rng)
        ours.step(g)
        for tensor, gk in zip(t, g.values()):
            tensor.grad = torch.tensor(gk)
        theirs.step()
    for tensor, k in zip(t, params):
        assert_rel(tensor.detach().numpy(), p[k], 1e-12, k)


def min_char_rnn_update(params: dict, grads: list[dict], learning_rate: float) -> dict:
    """Karpathy's min-char-rnn.py, its clip (in lossFun) and its parameter update, as
    written there, on copies of ``params``; ``mem`` starts at zero as ``mWxh`` ... do."""
    params = {k: v.copy() for k, v in params.items()}
    mems = {k: np.zeros_like(v) for k, v in params.items()}
    for g in grads:
        g = {k: v.copy() for k, v in g.items()}
        for dparam in g.values():
            np.clip(dparam, -5, 5, out=dparam)  # clip to mitigate exploding gradients
        for param, dparam, mem in zip(params.values(), g.values(), mems.values()):
            mem += dparam * dparam
            param += -learning_rate * dparam / np.sqrt(mem + 1e-8)  # adagrad update
    return params


@given(pd=param_dicts(), lr=lrs, n=steps)
def test_adagrad_minchar_is_min_char_rnns_update(pd, lr, n):
    params, seed = pd
    rng = np.random.default_rng(seed + 4)
    grads = [gradients(params, rng) for _ in range(n)]
    p = {k: v.copy() for k, v in params.items()}
    opt = NumpyBackend(dtype="float64").make_optimizer("adagrad-minchar", p, lr)
    for g in grads:
        kept = {k: v.copy() for k, v in g.items()}
        opt.step(g)
        for k in g:  # the clip works on a copy: the caller's gradients are left as they were
            np.testing.assert_array_equal(g[k], kept[k])
    want = min_char_rnn_update(params, grads, lr)
    for k in params:
        assert_rel(p[k], want[k], 1e-12, k)


def test_the_two_adagrads_differ_where_their_sources_do():
    """ε outside the root (torch) makes a tiny gradient's step about lr; ε inside (min-char-rnn)
    damps it to about lr · |g| / 1e-4. A gradient of 50 moves min-char-rnn's by its clipped
    5 only, so the same step as a gradient of 5 would."""
    nb = NumpyBackend(dtype="float64")
    for g, torch_step, minchar_step in ((1e-6, 1e-6 / (1e-6 + 1e-10), 1e-6 / np.sqrt(1e-12 + 1e-8)),
                                        (50.0, 50 / (50 + 1e-10), 5 / np.sqrt(25 + 1e-8))):
        steps_taken = {}
        for name in ("adagrad", "adagrad-minchar"):
            p = {"W": np.zeros(1)}
            nb.make_optimizer(name, p, 1.0).step({"W": np.array([g])})
            steps_taken[name] = -p["W"][0]
        assert steps_taken["adagrad"] == pytest.approx(torch_step, rel=1e-12)
        assert steps_taken["adagrad-minchar"] == pytest.approx(minchar_step, rel=1e-12)


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
    with pytest.raises(CheckpointError, match=r"'mem.W' has shape \(3, 2\), expected \(2, 3\)"):
        nb.make_optimizer("adagrad-minchar", p, 0.1).load_state_dict({"step": 1, "arrays": {"mem.W": np.zeros((3, 2))}})
    with pytest.raises(CheckpointError, match="SGD has no per-parameter state"):
        nb.make_optimizer("sgd", p, 0.1).load_state_dict({"step": 0, "arrays": {"m.W": np.zeros((2, 3))}})
    with pytest.raises(ConfigError, match="rmsprop"):
        nb.make_optimizer("rmsprop", p, 0.1)
    with pytest.raises(ConfigError, match="positive"):
        nb.make_optimizer("adam", p, -1.0)
