"""The torch backend against the NumPy backend (the executable spec), both impls.

Every comparison uses random non-zero biases, random initial states and random per-token
loss weights (STYLE.md §5: ones and zeros let a doubled bias or a dropped term pass).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnnlab.backend import Backend, get_backend  # noqa: E402
from rnnlab.config import ModelConfig  # noqa: E402
from rnnlab.errors import BackendError, ConfigError, ParamError, ShapeError  # noqa: E402
from rnnlab.numpy_backend import NumpyBackend  # noqa: E402
from rnnlab.numpy_backend import functional as npf  # noqa: E402
from rnnlab.params import init_params, to_torch_nn  # noqa: E402
from rnnlab.torch_backend import TorchBackend, nn_weights  # noqa: E402
from rnnlab.torch_backend import functional as tf  # noqa: E402

V, H, B = 7, 5, 3
IMPLS = ("scratch", "nn")


def CUDA(test):
    """Needs a CUDA GPU: marked ``cuda`` (``pytest -m cuda``, run by benchmarks/gpu_check.sh)
    and skipped where there is none."""
    skip = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
    return pytest.mark.cuda(skip(test))


def as_np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def assert_rel(got, want, tol: float, what: str = "") -> None:
    """max |got - want| <= tol * max |want|: relative to the array's own scale."""
    got, want = as_np(got).astype(np.float64), as_np(want).astype(np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(float(np.abs(want).max(initial=0.0)), 1e-300)
    err = float(np.abs(got - want).max(initial=0.0)) / scale
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


def make_case(cell: str, num_layers: int = 1, T: int = 5, seed: int = 0, dtype=np.float64):
    """Random everything: weights, biases, initial state, tokens, targets, loss weights."""
    cfg = ModelConfig(cell, V, H, num_layers=num_layers)
    rng = np.random.default_rng(seed)
    params = {k: (rng.standard_normal(v.shape) * 0.5).astype(dtype)  # biases non-zero too
              for k, v in init_params(cfg, seed=seed, dtype=np.float64).items()}
    n = num_layers * cfg.num_states
    state = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in range(n))
    X = rng.integers(0, V, (B, T))
    Y = rng.integers(0, V, (B, T))
    weights = (rng.random(B * T) + 0.25).astype(dtype)  # (T*B,), not ones
    return cfg, params, X, Y, state, weights


def compare_to_numpy(cell, num_layers, T, impl, dtype, tol, device="cpu"):
    cfg, params, X, Y, state, w = make_case(cell, num_layers, T, dtype=dtype)
    nb = NumpyBackend(dtype=dtype)
    want_logits, want_state = nb.forward(cfg, params, X, state)
    loss0, g0, s0, d0 = nb.loss_and_grads(cfg, params, X, Y, state, weights=w, state_grads=True)

    tb = TorchBackend(dtype=dtype, device=device, impl=impl)
    p, st = tb.from_numpy(params), tb.state_from_numpy(state)
    logits, state_T = tb.forward(cfg, p, tb.tokens(X), st)
    assert logits.shape == (T * B, V) and logits.device.type == torch.device(device).type
    assert not logits.requires_grad
    assert_rel(logits, want_logits, tol, "logits")
    for i, (a, b) in enumerate(zip(state_T, want_state, strict=True)):
        assert_rel(a, b, tol, f"forward state[{i}]")

    loss, grads, s1, d1 = tb.loss_and_grads(cfg, p, X, Y, st, weights=w, state_grads=True)
    assert isinstance(loss, float)
    assert abs(loss - loss0) <= tol * abs(loss0), (loss, loss0)
    assert list(grads) == list(params)
    for name in params:
        assert grads[name].shape == p[name].shape and grads[name].dtype == p[name].dtype
        assert_rel(grads[name], g0[name], tol, f"d{name}")
    for i, (a, b) in enumerate(zip(s1, s0, strict=True)):
        assert not a.requires_grad
        assert_rel(a, b, tol, f"state_T[{i}]")
    for i, (a, b) in enumerate(zip(d1, d0, strict=True)):
        assert_rel(a, b, tol, f"dstate0[{i}]")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("T", [1, 5])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_matches_numpy_float64(cell, num_layers, T, impl):
    compare_to_numpy(cell, num_layers, T, impl, np.float64, 1e-10)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_matches_numpy_float32(cell, impl):
    compare_to_numpy(cell, 2, 5, impl, np.float32, 1e-5)


@CUDA
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_matches_numpy_on_cuda(cell, impl):
    compare_to_numpy(cell, 2, 5, impl, np.float64, 1e-10, device="cuda")
    # cuDNN may use TF32 for float32 RNNs (torch.backends.cudnn.allow_tf32): off for exactness
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        compare_to_numpy(cell, 2, 5, impl, np.float32, 1e-5, device="cuda")


@pytest.mark.parametrize("impl", IMPLS)
def test_no_grad_left_and_state_detached(impl):
    cfg, params, X, Y, state, w = make_case("lstm", 2, 4)
    tb = TorchBackend(dtype="float64", impl=impl)
    p = {k: v.requires_grad_(True) for k, v in tb.from_numpy(params).items()}
    st = tuple(s.requires_grad_(True) for s in tb.state_from_numpy(state))
    out = tb.loss_and_grads(cfg, p, X, Y, st)
    assert len(out) == 3  # no dstate0 unless asked
    loss, grads, state_T = out
    assert all(v.grad is None for v in p.values()) and all(s.grad is None for s in st)
    assert not any(g.requires_grad for g in grads.values())
    assert all(not s.requires_grad and s.grad_fn is None for s in state_T)
    logits, state_f = tb.forward(cfg, p, X, st)
    assert not logits.requires_grad and not any(s.requires_grad for s in state_f)
    *_, dstate0 = tb.loss_and_grads(cfg, p, X, Y, st, state_grads=True)
    assert len(dstate0) == 4 and not any(d.requires_grad for d in dstate0)


@pytest.mark.parametrize("impl", IMPLS)
def test_weights_none_is_all_ones(impl):
    cfg, params, X, Y, state, _ = make_case("rnn", 1, 3)
    tb = TorchBackend(dtype="float64", impl=impl)
    p, st = tb.from_numpy(params), tb.state_from_numpy(state)
    a = tb.loss_and_grads(cfg, p, X, Y, st)
    b = tb.loss_and_grads(cfg, p, X, Y, st, weights=torch.ones(X.size, dtype=torch.float64))
    assert a[0] == b[0]
    for k in params:
        assert torch.equal(a[1][k], b[1][k])


@pytest.mark.parametrize("impl", IMPLS)
def test_two_windows_with_carried_state_equal_one_pass(impl):
    cfg, params, X, _, state, _ = make_case("lstm", 2, 6)
    tb = TorchBackend(dtype="float64", impl=impl)
    p, st = tb.from_numpy(params), tb.state_from_numpy(state)
    whole, s_whole = tb.forward(cfg, p, X, st)
    first, s1 = tb.forward(cfg, p, X[:, :2], st)
    second, s2 = tb.forward(cfg, p, X[:, 2:], s1)
    assert_rel(torch.cat([first, second]), whole, 1e-12, "logits")  # time-major rows
    for a, b in zip(s2, s_whole, strict=True):
        assert_rel(a, b, 1e-12, "state")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_saturated_preactivations_stay_finite(cell, impl):
    cfg, params, X, Y, state, w = make_case(cell, 2, 4, dtype=np.float32)
    tb = TorchBackend(dtype="float32", impl=impl)
    p = {k: v * 500 for k, v in tb.from_numpy(params).items()}  # |pre-activation| ~ 1e3
    loss, grads, state_T = tb.loss_and_grads(cfg, p, X, Y, tb.state_from_numpy(state), w)
    assert np.isfinite(loss)
    assert all(bool(torch.isfinite(g).all()) for g in grads.values())
    assert all(bool(torch.isfinite(s).all()) for s in state_T)


def test_nn_module_is_cached_per_config():
    cfg, params, X, _, state, _ = make_case("lstm", 2, 2)
    tb = TorchBackend(dtype="float64", impl="nn")
    p, st = tb.from_numpy(params), tb.state_from_numpy(state)
    tb.forward(cfg, p, X, st)
    module = tb._nn_modules[cfg]
    tb.forward("lstm", p, X, st)  # a name: sizes read off params, the same config
    assert list(tb._nn_modules.values()) == [module]
    assert isinstance(module, torch.nn.LSTM)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_nn_weights_equal_to_torch_nn(cell):
    cfg, params, *_ = make_case(cell, 2)
    want = to_torch_nn(cfg, params, prefix="")
    got = nn_weights(cfg, TorchBackend(dtype="float64").from_numpy(params))
    assert set(got) == {k for k in want if not k.startswith("linear.")}
    for k, v in got.items():
        np.testing.assert_array_equal(as_np(v), want[k], err_msg=k)


# ----------------------------------------------------------------------- clip and sgd


def random_grads(seed=0, dtype=np.float64):
    cfg, params, *_ = make_case("lstm", 1, seed=seed, dtype=dtype)
    return params  # same keys and shapes as gradients


def test_clip_grads_above_theta_scales_to_theta_and_keeps_direction():
    g_np = random_grads()
    g = TorchBackend(dtype="float64").from_numpy(g_np)
    before = {k: v.clone() for k, v in g.items()}
    want = npf.global_norm(g_np)
    norm = tf.clip_grads(g, theta=0.5)
    assert abs(norm - want) <= 1e-12 * want
    assert abs(tf.global_norm(g) - 0.5) <= 1e-12  # norm after = min(norm, theta)
    for k in g:
        assert_rel(g[k] * (norm / 0.5), before[k], 1e-12, k)  # same direction
    npf.clip_grads(g_np, 0.5)
    for k in g:
        assert_rel(g[k], g_np[k], 1e-12, k)


def test_clip_grads_below_theta_is_a_no_op():
    g = TorchBackend(dtype="float32").from_numpy(random_grads(dtype=np.float32))
    before = {k: v.clone() for k, v in g.items()}
    norm = TorchBackend().clip_grads(g, theta=1e6)
    assert 0 < norm < 1e6
    assert all(torch.equal(g[k], before[k]) for k in g)


def test_clip_grads_zero_nonfinite_and_huge():
    zeros = {"a": torch.zeros(3), "b": torch.zeros(2, 2)}
    assert tf.clip_grads(zeros, 1.0) == 0.0 and not any(v.any() for v in zeros.values())
    for bad in (float("inf"), float("nan")):
        g = {"a": torch.ones(3), "b": torch.tensor([1.0, bad])}
        norm = tf.clip_grads(g, 1.0)
        assert not np.isfinite(norm) and (np.isnan(norm) == np.isnan(bad))
        assert torch.equal(g["a"], torch.ones(3))  # untouched
    huge = {"a": torch.full((4,), 1e20, dtype=torch.float32)}  # squares overflow float32
    norm = tf.clip_grads(huge, 1.0)
    assert abs(norm - 2e20) <= 1e-6 * 2e20
    assert abs(float(huge["a"].double().norm()) - 1.0) < 1e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_matches_numpy_exactly(dtype):
    params, grads = random_grads(1, dtype), random_grads(2, dtype)
    tb = TorchBackend(dtype=dtype)
    p, g = tb.from_numpy(params), tb.from_numpy(grads)
    tb.sgd(p, g, 0.3)
    npf.sgd(params, grads, 0.3)
    for k in params:
        np.testing.assert_array_equal(as_np(p[k]), params[k], err_msg=k)


# ------------------------------------------------------------------ arrays and devices


def test_arrays_round_trip_and_begin_state():
    tb = TorchBackend(dtype="float64", device="cpu")
    assert isinstance(tb, Backend) and tb.name == "torch" and tb.dtype == torch.float64
    params = init_params("lstm", V, H, seed=3)
    p = tb.from_numpy(params)
    assert all(v.dtype == torch.float64 and v.is_leaf and v.device.type == "cpu" for v in p.values())
    params["W_xi"][0, 0] = 123.0  # from_numpy copied
    assert p["W_xi"][0, 0] != 123.0
    back = tb.to_numpy(p)
    assert back["W_xi"].dtype == np.float64 and back["b_q"].shape == (V,)
    X = tb.tokens([[1, 2], [3, 4]])
    assert X.dtype == torch.int64 and X.shape == (2, 2)
    st = tb.begin_state(ModelConfig("lstm", V, H, num_layers=2), 4)
    assert len(st) == 4 and all(s.shape == (4, H) and not s.any() for s in st)
    assert len(tb.begin_state("rnn", 2, num_hiddens=H)) == 1
    with pytest.raises(ConfigError, match="num_hiddens"):
        tb.begin_state("rnn", 2)
    with pytest.raises(ConfigError, match="batch_size"):
        tb.begin_state("rnn", 0, H)
    s_np = tuple(np.arange(6.0).reshape(2, 3) + k for k in range(2))
    for a, b in zip(tb.state_to_numpy(tb.state_from_numpy(s_np)), s_np, strict=True):
        np.testing.assert_array_equal(a, b)


def test_get_backend_options():
    tb = get_backend("torch", dtype="float64", device="cpu", impl="nn")
    assert isinstance(tb, TorchBackend) and tb.impl == "nn" and tb.device == torch.device("cpu")
    with pytest.raises(ConfigError, match="impl"):
        TorchBackend(impl="fast")
    with pytest.raises(ConfigError, match="float16"):
        TorchBackend(dtype="float16")
    assert TorchBackend(dtype=torch.float64).dtype == torch.float64


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_a_backend_error(device):
    with pytest.raises(BackendError, match=f"'{device}'"):
        TorchBackend(device=device)
    assert TorchBackend(device=None).device == torch.device("cpu")
    assert TorchBackend(device="auto").device == torch.device("cpu")


@pytest.mark.parametrize("device", ["tpu", "not a device", "mps"])
def test_unknown_device_is_a_backend_error(device):
    with pytest.raises(BackendError, match=repr(device)):
        TorchBackend(device=device)


@CUDA
def test_cuda_device_and_bad_index():
    tb = TorchBackend(device="cuda")
    assert tb.device.type == "cuda" and tb.from_numpy(init_params("rnn", V, H))["b_q"].is_cuda
    with pytest.raises(BackendError, match="cuda:99"):
        TorchBackend(device="cuda:99")


# -------------------------------------------------------------------------- refusals


def test_nn_impl_refuses_the_d2l_form_gru():
    """torch.nn.GRU is the torch form; the d2l form is another function (issue 4)."""
    cfg = ModelConfig("gru", V, H, num_layers=2)
    params = init_params(cfg)
    tb = TorchBackend(impl="nn")
    with pytest.raises(ConfigError, match="gru_form='torch'.*impl='scratch'"):
        tb.forward(cfg, tb.from_numpy(params), np.zeros((2, 3), dtype=int),
                   tb.begin_state(cfg, 2))


@pytest.mark.parametrize("impl", IMPLS)
def test_bad_inputs_are_refused_with_shared_errors(impl):
    cfg, params, X, Y, state, w = make_case("lstm", 1, 3)
    tb = TorchBackend(dtype="float64", impl=impl)
    p, st = tb.from_numpy(params), tb.state_from_numpy(state)
    bad = X.copy()
    bad[0, 0] = V
    with pytest.raises(ShapeError, match=f"token id {V}"):
        tb.forward(cfg, p, bad, st)
    with pytest.raises(ShapeError, match="token id -1"):
        tb.forward(cfg, p, torch.tensor(X) - 1, st)
    with pytest.raises(ShapeError, match="integer"):
        tb.forward(cfg, p, torch.tensor(X, dtype=torch.float64), st)
    with pytest.raises(ShapeError, match="batch, steps"):
        tb.forward(cfg, p, X[0], st)
    with pytest.raises(ShapeError, match="Y has shape"):
        tb.loss_and_grads(cfg, p, X, Y[:, :2], st)
    with pytest.raises(ShapeError, match="weights"):
        tb.loss_and_grads(cfg, p, X, Y, st, weights=w[:-1])
    with pytest.raises(ShapeError, match="weights"):
        tb.loss_and_grads(cfg, p, X, Y, st, weights=torch.tensor(w[:-1]))
    with pytest.raises(ShapeError, match="needs 2 arrays"):
        tb.forward(cfg, p, X, st[:1])
    with pytest.raises(ShapeError, match="float32"):
        tb.forward(cfg, p, X, tuple(s.float() for s in st))
    with pytest.raises(ParamError, match="'W_hc'"):
        tb.forward(cfg, {**p, "W_hc": p["W_hc"][:, :2]}, X, st)
    with pytest.raises(ParamError, match="W_xi"):
        tb.forward(cfg, {k: v for k, v in p.items() if k != "W_xi"}, X, st)
    assert tb.validate("lstm", p) == cfg
    with pytest.raises(ParamError, match="'b_f'.*NaN"):
        tb.validate(cfg, {**p, "b_f": p["b_f"] * float("nan")})


def test_numpy_params_and_state_are_accepted():
    cfg, params, X, _, state, _ = make_case("rnn", 2, 3)
    tb = TorchBackend(dtype="float64")
    a, _ = tb.forward(cfg, params, X, state)
    b, _ = tb.forward(cfg, tb.from_numpy(params), X, tb.state_from_numpy(state))
    assert torch.equal(a, b)


def test_import_rnnlab_does_not_import_torch():
    code = ("import sys, rnnlab, rnnlab.numpy_backend, rnnlab.backend, rnnlab.params, "
            "rnnlab.arrays, rnnlab.checks, rnnlab.arguments; assert 'torch' not in sys.modules, 'torch was imported'")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root)] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=env)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["sgd", "adam", "adagrad", "adagrad-minchar"])
def test_optimizers_match_numpy_and_checkpoint_across_backends(name, dtype):
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(v.shape).astype(dtype)
              for k, v in init_params("lstm", V, H).items()}
    nb, tb = NumpyBackend(dtype=dtype), TorchBackend(dtype=dtype)
    p_np, p_t = nb.from_numpy(params), tb.from_numpy(params)
    opt_np, opt_t = nb.make_optimizer(name, p_np, 0.1), tb.make_optimizer(name, p_t, 0.1)
    for step in range(3):
        # scale 10: some entries beyond adagrad-minchar's clip at ±5
        g = {k: (10 * rng.standard_normal(v.shape)).astype(dtype) for k, v in params.items()}
        opt_np.step(g)
        opt_t.step(tb.from_numpy(g))
        if step == 1:  # resume the torch optimiser from the NumPy one's state
            opt_t = tb.make_optimizer(name, p_t, 0.1)
            opt_t.load_state_dict(opt_np.state_dict())
    tol = 1e-6 if dtype == "float32" else 1e-14
    for k in params:
        assert_rel(p_t[k], p_np[k], tol, k)
        assert p_t[k].grad is None
    sd_np, sd_t = opt_np.state_dict(), opt_t.state_dict()
    assert sd_t["step"] == sd_np["step"] and set(sd_t["arrays"]) == set(sd_np["arrays"])
    for k, v in tb.to_numpy(sd_t["arrays"]).items():
        assert_rel(v, sd_np["arrays"][k], tol * 100, k)


def test_optimizer_refusals():
    tb = TorchBackend()
    p = tb.from_numpy(init_params("rnn", V, H))
    with pytest.raises(ConfigError, match="rmsprop"):
        tb.make_optimizer("rmsprop", p, 0.1)
    with pytest.raises(ConfigError, match="positive"):
        tb.make_optimizer("adam", p, 0.0)
    from rnnlab.errors import CheckpointError

    with pytest.raises(CheckpointError, match="'m.W_xh'"):
        tb.make_optimizer("adam", p, 0.1).load_state_dict({"step": 2, "arrays": {}})


@pytest.mark.parametrize("impl", IMPLS)
def test_non_finite_inputs_are_named(impl):
    from rnnlab.errors import NonFiniteParamError

    cfg, params, X, Y, state, _ = make_case("lstm", 2, 3)
    tb = TorchBackend(dtype="float64", impl=impl)
    with pytest.raises(ParamError, match="'b_o'"):
        tb.from_numpy({**params, "b_o": params["b_o"] * np.inf})  # refused on the way in
    p, st = tb.from_numpy(params), tb.state_from_numpy(state)
    p["W_hf_l1"][0, 0] = float("nan")
    with pytest.raises(NonFiniteParamError, match="'W_hf_l1'"):
        tb.forward(cfg, p, X, st)
    with pytest.raises(NonFiniteParamError, match="'W_hf_l1'"):
        tb.loss_and_grads(cfg, p, X, Y, st)
    p = tb.from_numpy(params)
    st[3][1, 2] = float("nan")  # (inf in C_0 can give a finite loss: tanh(inf) = 1)
    with pytest.raises(NonFiniteParamError, match=r"state\[3\]"):
        tb.loss_and_grads(cfg, p, X, Y, st)


def test_clip_and_tokens_refusals():
    tb = TorchBackend()
    g = tb.from_numpy(init_params("rnn", V, H))
    for theta in (0.0, -1.0, float("nan"), "1"):
        with pytest.raises(ConfigError, match="theta"):
            tb.clip_grads(g, theta)
    with pytest.raises(ParamError, match="'b_q'"):
        tb.clip_grads({**g, "b_q": np.zeros(V)}, 1.0)
    with pytest.raises(ShapeError, match="token id -2"):
        tb.tokens([[0, -2]])
    with pytest.raises(ShapeError, match="integer"):
        tb.tokens(torch.zeros(2, 2))
    cfg, params, X, Y, state, _ = make_case("lstm", 2, 3)
    with pytest.raises(ShapeError, match="dropout_masks: a 2-layer model has 1 layer boundaries"):
        tb.loss_and_grads(cfg, tb.from_numpy(params), X, Y, tb.state_from_numpy(state),
                          dropout_masks=(np.ones((3, B, H)),) * 2)
