"""The speed-tuned torch backend computes what the plain forms compute.

The torch backend's hot path uses tricks that must not change the numbers beyond float
rounding; each is held here to the form it replaces:

- the scratch LSTM makes all four gates with one sigmoid (the candidate's pre-activation
  doubled, tanh(z) = 2σ(2z) - 1) and one ``addcmul``: held to d2l's per-gate LSTM
  (``nn_map.d2l_rnn_scratch``, one-hot inputs, ``torch.tanh``) in float64 to 1e-10,
  T = 1 and saturated gates included;
- weight matrices live in torch.nn's memory order (``nn_order``): same shapes and values,
  gradients in the same layout, and the same numbers as C-ordered tensors;
- a whole model's per-gate tensors are views of torch.nn's flat weights
  (``nn_map.fused_params``), which the nn path hands to the kernel without a copy: the
  same numbers, bit for bit, as separate tensors, and a dict whose views are not laid out
  as torch.nn's (names swapped, a view of the wrong rows) is computed by its names;
- ``global_norm`` sums squares per array in the array's dtype: within 1e-7 of the exact
  norm over millions of float32 entries, and exact where squares overflow or underflow;
- the SGD step is ``torch.optim.SGD``'s update, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnnlab.config import ModelConfig  # noqa: E402
from rnnlab.gradcheck import random_problem  # noqa: E402
from rnnlab.torch_backend import TorchBackend, d2l_rnn_scratch  # noqa: E402
from rnnlab.torch_backend import functional as tf  # noqa: E402
from rnnlab.torch_backend.optim import TorchOptimizer  # noqa: E402

SHAPES = [  # (V, H, B, T)
    (5, 3, 2, 1),  # T = 1
    (4, 1, 1, 3),  # H = 1, B = 1
    (28, 8, 4, 9),  # the time machine's vocabulary
]


def rel_err(a, b) -> float:
    a = a.detach().double() if isinstance(a, torch.Tensor) else torch.as_tensor(a).double()
    b = b.detach().double() if isinstance(b, torch.Tensor) else torch.as_tensor(b).double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def d2l_loss_and_grads(cfg, params, X, Y, state):
    """d2l's scratch LSTM (per-gate matmuls on one-hot inputs, torch.tanh), autograd."""
    net = d2l_rnn_scratch(cfg, params)
    st = tuple(torch.tensor(s) for s in state)
    logits, state_T = net(torch.as_tensor(X), st)
    loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(Y).T.reshape(-1))
    grads = torch.autograd.grad(loss, net.params)
    names = list(params)  # d2l's get_lstm_params order is rnnlab's parameter order
    return float(loss.detach()), dict(zip(names, grads)), state_T


@pytest.mark.parametrize("scale", [1.0, 40.0])  # 40: pre-activations in the hundreds
@pytest.mark.parametrize("V,H,B,T", SHAPES)
def test_scratch_lstm_equals_d2l_per_gate_lstm(V, H, B, T, scale):
    cfg = ModelConfig("lstm", V, H)
    params, X, Y, state, _ = random_problem(cfg, B, T, seed=V * 10 + T)
    params = {k: v * scale for k, v in params.items()}
    tb = TorchBackend(dtype="float64", impl="scratch")
    loss, grads, state_T = tb.loss_and_grads(cfg, tb.from_numpy(params), X, Y,
                                             tb.state_from_numpy(state))
    ref_loss, ref_grads, ref_state_T = d2l_loss_and_grads(cfg, params, X, Y, state)
    assert math.isfinite(loss)
    assert abs(loss - ref_loss) <= 1e-10 * abs(ref_loss)
    # on the scale of the largest gradient: saturated gates leave some arrays all ~0
    scale = max(float(g.abs().max()) for g in ref_grads.values())
    for name in params:
        err = float((grads[name] - ref_grads[name]).abs().max())
        assert err <= 1e-10 * scale, name
    for s, r in zip(state_T, ref_state_T):
        assert rel_err(s, r) < 1e-10


def test_from_numpy_stores_weight_matrices_in_torch_nn_order():
    cfg = ModelConfig("lstm", 7, 5, num_layers=2)
    params, X, Y, state, _ = random_problem(cfg, 3, 4, seed=1)
    tb = TorchBackend(dtype="float64")
    p = tb.from_numpy(params)
    for name, v in p.items():
        assert tuple(v.shape) == params[name].shape, name
        assert np.array_equal(v.numpy(), params[name]), name  # values untouched
        if name.startswith("W_"):  # (In, Out) stored as torch.nn's (Out, In) rows
            assert v.stride() == (1, v.shape[0]) and v.T.is_contiguous(), name
    back = tb.to_numpy(p)
    for name in params:
        assert np.array_equal(back[name], params[name]), name
    for impl in ("scratch", "nn"):
        _, grads, _ = TorchBackend(dtype="float64", impl=impl).loss_and_grads(
            cfg, p, X, Y, tb.state_from_numpy(state))
        for name in params:  # gradients in their parameter's layout: no copies to make
            assert grads[name].stride() == p[name].stride(), (impl, name)


FUSED_CFGS = [ModelConfig("rnn", 6, 4, num_layers=2, bidirectional=True),
              ModelConfig("lstm", 6, 4, num_layers=2),
              ModelConfig("gru", 6, 4, gru_form="torch", bidirectional=True),
              ModelConfig("gru", 6, 4)]


@pytest.mark.parametrize("cfg", FUSED_CFGS, ids=["rnn-L2-bi", "lstm-L2", "gru-torch-bi", "gru-d2l"])
def test_from_numpy_lays_the_gates_out_in_torch_nn_flat_weights(cfg):
    from rnnlab.torch_backend.nn_map import fused_weights, nn_weights

    params, *_ = random_problem(cfg, 3, 4, seed=3)
    p = TorchBackend(dtype="float64").from_numpy(params)
    assert list(p) == list(params)  # the caller's order of names
    flat = fused_weights(cfg, p)  # weight_ih, weight_hh, bias_ih of every unit
    assert flat is not None
    separate = {k: torch.tensor(v) for k, v in params.items()}
    ref = [v.numpy() for k, v in nn_weights(cfg, separate).items()  # = to_torch_nn's
           if not k.startswith("bias_hh")]
    assert len(flat) == len(ref)
    for got, want in zip(flat, ref):
        assert np.array_equal(got.numpy(), want)
    for name, v in p.items():  # each parameter: its own shape, values and layout
        assert np.array_equal(v.numpy(), params[name]), name
    # in place, one parameter's update changes its values and no other's
    with torch.no_grad():
        p["W_h" + ("h" if cfg.cell == "rnn" else "z" if cfg.cell == "gru" else "f")] += 1.0
    changed = [k for k in params if not np.array_equal(p[k].numpy(), params[k])]
    assert len(changed) == 1


@pytest.mark.parametrize("cfg", FUSED_CFGS[:3], ids=["rnn-L2-bi", "lstm-L2", "gru-torch-bi"])
def test_the_nn_path_uses_the_fused_weights_and_computes_the_same_numbers(cfg):
    from rnnlab.torch_backend.model import nn_flat

    params, X, Y, state, _ = random_problem(cfg, 3, 5, seed=4)
    tb = TorchBackend(dtype="float64", impl="nn")
    fused = tb.from_numpy(params)
    separate = {k: v.clone() for k, v in fused.items()}  # same layout, own memory
    names = tb._nn_weight_names(cfg)
    ptrs = {v.untyped_storage().data_ptr() for v in fused.values()}
    weights = [w for n, w in zip(names, nn_flat(cfg, fused, names)) if not n.startswith("bias_hh")]
    assert all(w.untyped_storage().data_ptr() in ptrs for w in weights)  # no copies
    st = tb.state_from_numpy(state)
    a = tb.loss_and_grads(cfg, fused, X, Y, st)
    b = tb.loss_and_grads(cfg, separate, X, Y, st)
    assert a[0] == b[0]
    for name in params:
        assert torch.equal(a[1][name], b[1][name]), name
    for s, r in zip(a[2], b[2]):
        assert torch.equal(s, r)
    fa, fb = tb.forward(cfg, fused, X, st), tb.forward(cfg, separate, X, st)
    assert torch.equal(fa[0], fb[0])


@pytest.mark.parametrize("how", ["swapped names", "wrong rows", "another base"])
def test_views_not_laid_out_as_torch_nn_are_computed_by_their_names(how):
    """Only an exact layout is taken as torch.nn's weights: anything else is copied
    together by name, so the numbers follow the names, never the memory."""
    from rnnlab.torch_backend.nn_map import fused_weights

    cfg = ModelConfig("lstm", 6, 4)
    params, X, Y, state, _ = random_problem(cfg, 3, 5, seed=5)
    tb = TorchBackend(dtype="float64", impl="nn")
    p = tb.from_numpy(params)
    if how == "swapped names":  # the input and forget gates' views exchanged
        p["W_xi"], p["W_xf"] = p["W_xf"], p["W_xi"]
        params["W_xi"], params["W_xf"] = params["W_xf"], params["W_xi"]
    elif how == "wrong rows":  # b_i: a view of b_f's rows of the same weight
        p["b_i"] = p["b_f"][:]
        params["b_i"] = params["b_f"]
    else:  # one gate a view of a copy of the weight
        p["W_ho"] = p["W_ho"]._base.clone()[12:16].T
    assert fused_weights(cfg, p) is None
    separate = {k: torch.tensor(v) for k, v in params.items()}
    st = tb.state_from_numpy(state)
    a = tb.loss_and_grads(cfg, p, X, Y, st)
    b = tb.loss_and_grads(cfg, separate, X, Y, st)
    assert rel_err(a[0], b[0]) < 1e-12
    for name in params:
        assert rel_err(a[1][name], b[1][name]) < 1e-12, name
    assert rel_err(tb.forward(cfg, p, X, st)[0], tb.forward(cfg, separate, X, st)[0]) < 1e-12


@pytest.mark.parametrize("impl", ["scratch", "nn"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_memory_order_does_not_change_the_numbers(cell, impl):
    """C-ordered tensors (a user's own) and torch.nn-ordered ones give the same loss,
    gradients and state, to float64 rounding."""
    cfg = ModelConfig(cell, 6, 4, num_layers=2, gru_form="torch" if cell == "gru" else "d2l")
    params, X, Y, state, _ = random_problem(cfg, 3, 5, seed=2)
    tb = TorchBackend(dtype="float64", impl=impl)
    c_ordered = {k: torch.tensor(v) for k, v in params.items()}
    st = tb.state_from_numpy(state)
    a = tb.loss_and_grads(cfg, c_ordered, X, Y, st)
    b = tb.loss_and_grads(cfg, tb.from_numpy(params), X, Y, st)
    assert abs(a[0] - b[0]) <= 1e-12 * abs(b[0])
    for name in params:
        assert rel_err(a[1][name], b[1][name]) < 1e-12, name
        assert a[1][name].stride() == c_ordered[name].stride(), name  # the caller's layout
    for s, r in zip(a[2], b[2]):
        assert rel_err(s, r) < 1e-12


def test_global_norm_float32_is_within_1e7_of_the_exact_norm():
    rng = np.random.default_rng(0)
    grads = {  # millions of entries over six orders of magnitude
        "a": (rng.standard_normal(2_000_000) * 10.0 ** rng.integers(-3, 3, 2_000_000)),
        "b": rng.standard_normal((700, 900)) * 1e-2,
        "c": np.full(3, 7.0),
    }
    grads = {k: v.astype(np.float32) for k, v in grads.items()}
    exact = math.sqrt(sum(float(np.sum(v.astype(np.float64) ** 2)) for v in grads.values()))
    got = tf.global_norm({k: torch.from_numpy(v) for k, v in grads.items()})
    assert abs(got - exact) <= 1e-7 * exact


@pytest.mark.parametrize("dtype,value", [
    (torch.float32, 1e20),  # squares overflow float32
    (torch.float32, 1e-25),  # squares underflow float32
    (torch.float64, 1e200),  # squares overflow float64
    (torch.float64, 1e-200),  # squares underflow float64
])
def test_global_norm_is_exact_where_squares_leave_the_dtype(dtype, value):
    g = {"a": torch.full((4,), value, dtype=dtype), "b": torch.full((9,), -value, dtype=dtype)}
    exact = math.sqrt(13) * float(torch.tensor(value, dtype=dtype))
    assert abs(tf.global_norm(g) - exact) <= 1e-12 * exact


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sgd_step_is_torch_optim_sgd_bit_for_bit(dtype):
    gen = torch.Generator().manual_seed(0)
    shapes = {"W_xh": (7, 5), "W_hh": (5, 5), "b_h": (5,), "W_hq": (5, 7), "b_q": (7,)}
    ours = {k: torch.randn(s, generator=gen, dtype=dtype) for k, s in shapes.items()}
    theirs = {k: v.clone() for k, v in ours.items()}
    opt = TorchOptimizer("sgd", ours, 0.37)
    reference = torch.optim.SGD(list(theirs.values()), lr=0.37)
    for _ in range(3):
        grads = {k: torch.randn(s, generator=gen, dtype=dtype) for k, s in shapes.items()}
        opt.step(grads)
        for k, p in theirs.items():
            p.grad = grads[k].clone()
        reference.step()
    for k in shapes:
        assert torch.equal(ours[k], theirs[k]), k
        assert ours[k].grad is None, k  # nothing left on the parameters
