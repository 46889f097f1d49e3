"""What the long-range memory tasks need from the model, held to the properties of every
cell: the IRNN (Le, Jaitly & Hinton 2015), real-valued inputs (B, T, In), a loss read at
chosen steps only (per-step weights, 0 leaving a step out) and the squared-error head.

The NumPy spec (hand-written BPTT), torch autograd (scratch) and torch.nn agree; BPTT
matches finite differences; the fused IRNN equals its per-step reference; stepwise equals
whole sequence; the concatenated-weight identity holds for the IRNN's step; a masked
step's target changes nothing; bad inputs are refused with one clear error.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rnnlab.backend import get_backend
from rnnlab.config import ModelConfig
from rnnlab.errors import ConfigError, ShapeError
from rnnlab.gradcheck import gradcheck, random_problem, relative_error
from rnnlab.numpy_backend.cells import irnn_forward
from rnnlab.numpy_backend.functional import (
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
    squared_error,
    squared_error_backward,
)
from rnnlab.numpy_backend.reference import REFERENCES
from rnnlab.params import fuse, init_params, param_shapes

from strategies import problems, seeds, task_configs

torch = pytest.importorskip("torch")

NP64 = get_backend("numpy", dtype="float64")
SCRATCH = get_backend("torch", dtype="float64", device="cpu")
NN = get_backend("torch", dtype="float64", device="cpu", impl="nn")


def run(be, cfg, params, X, Y, state, weights):
    """(logits, loss, grads, state_T, dstate_0) as float64 NumPy arrays."""
    p, st0 = be.from_numpy(params), be.state_from_numpy(state)
    logits, _ = be.forward(cfg, p, X, st0)
    loss, grads, state_T, dstate = be.loss_and_grads(cfg, p, X, Y, st0, weights=weights,
                                                     state_grads=True)
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    return (f64(be.to_numpy({"l": logits})["l"]), loss,
            {k: f64(v) for k, v in be.to_numpy(grads).items()},
            [f64(s) for s in be.state_to_numpy(state_T)], [f64(s) for s in be.state_to_numpy(dstate)])


def assert_same(a, b, tol=1e-10, what=""):
    assert relative_error(a[0], b[0]) < tol, f"{what}: logits"
    assert abs(a[1] - b[1]) <= tol * max(1.0, abs(b[1])), f"{what}: loss"
    assert set(a[2]) == set(b[2])
    for k in a[2]:
        assert relative_error(a[2][k], b[2][k]) < tol, f"{what}: grad {k}"
    for i, (x, y) in enumerate(zip(a[3] + a[4], b[3] + b[4])):
        assert relative_error(x, y) < tol, f"{what}: state {i}"


def relu_margin(cfg: ModelConfig, params: dict, X, state) -> float:
    """min |pre-activation| of an IRNN's steps (inf for other cells): finite differences
    of step h are exact only where no pre-activation lies within h of ReLU's kink."""
    if cfg.cell != "irnn":
        return np.inf
    inputs = np.eye(cfg.vocab_size)[X.T] if cfg.input_size is None else X.transpose(1, 0, 2)
    margin = np.inf
    for layer in range(cfg.num_layers):
        W_x, W_h, b = fuse(cfg, params, layer)
        H, outs = state[layer], []
        for X_t in inputs:  # (B, In)
            Z = X_t @ W_x + b + H @ W_h  # (B, H)
            margin = min(margin, float(np.abs(Z).min()))
            H = np.maximum(Z, 0)
            outs.append(H)
        inputs = np.stack(outs)  # (T, B, H)
    return margin


# ------------------------------------------------------------------ backends agree


@given(p=problems(task_configs()))
def test_backends_agree_on_irnn_real_inputs_and_squared_error(p):
    """numpy BPTT == torch autograd == torch.nn (the IRNN as nn.RNN(relu)), every gradient
    and the initial state's, under random per-step weights, to 1e-10 in float64."""
    ref = run(NP64, p.cfg, p.params, p.X, p.Y, p.state, p.weights)
    for name, be in (("scratch", SCRATCH), ("nn", NN)):
        assert_same(run(be, p.cfg, p.params, p.X, p.Y, p.state, p.weights), ref,
                    what=f"numpy vs {name}")


@given(p=problems(task_configs(max_layers=1)))
def test_float32_follows_float64(p):
    ref = run(NP64, p.cfg, p.params, p.X, p.Y, p.state, p.weights)
    for be in (get_backend("numpy", dtype="float32"), get_backend("torch", dtype="float32")):
        got = run(be, p.cfg, p.params, p.X, p.Y, p.state, p.weights)
        assert abs(got[1] - ref[1]) <= 1e-4 * max(1.0, abs(ref[1]))
        scale = max(np.abs(g).max() for g in ref[2].values())
        for k in ref[2]:
            assert np.abs(got[2][k] - ref[2][k]).max() <= 1e-4 * scale, k


# ------------------------------------------------------------- finite differences


@settings(max_examples=40, deadline=None)
@given(p=problems(task_configs(nn_mappable=False), max_T=5))
def test_bptt_matches_finite_differences(p):
    """Every parameter and the initial state, for each cell, input kind and head; an IRNN
    problem with a pre-activation within 1e-4 of ReLU's kink is not drawn."""
    assume(relu_margin(p.cfg, p.params, p.X, p.state) > 1e-4)
    result = gradcheck(NP64, p.cfg, p.params, p.X, p.Y, p.state, p.weights)
    assert result.worst < 1e-6, result.errors


@pytest.mark.parametrize("options", [dict(), dict(input_size=3), dict(input_size=2, head="mse"),
                                     dict(num_layers=2, input_size=2, head="mse"),
                                     dict(bidirectional=True, input_size=2)],
                         ids=["tokens", "reals", "mse", "2layers", "bidirectional"])
def test_irnn_bptt_matches_finite_differences(options):
    cfg = ModelConfig("irnn", 1 if options.get("head") == "mse" else 4, 3, **options)
    params, X, Y, state, weights = random_problem(cfg, 3, 5, seed=7)
    assert relu_margin(cfg, params, X, state) > 1e-4 or cfg.bidirectional
    for be in (NP64, SCRATCH):
        assert gradcheck(be, cfg, params, X, Y, state, weights).worst < 1e-6


# ------------------------------------------------------- the reference and identities


@given(seed=seeds, B=st.integers(1, 4), T=st.integers(1, 6), H=st.integers(1, 5),
       In=st.one_of(st.none(), st.integers(1, 4)), mse=st.booleans())
def test_fused_irnn_equals_per_step_reference(seed, B, T, H, In, mse):
    """cells.irnn_forward/backward == reference.irnn_reference, outputs and gradients."""
    cfg = ModelConfig("irnn", 1 if mse else 3, H, input_size=In, head="mse" if mse else "softmax")
    params, X, Y, state, weights = random_problem(cfg, B, T, seed=seed)
    *_, grads, _, dstate = run(NP64, cfg, params, X, Y, state, weights)
    logits_fused = run(NP64, cfg, params, X, Y, state, weights)[0]
    forward, backward = REFERENCES["irnn"]
    logits, _, cache = forward(params, X, state)
    if mse:
        _, se = squared_error(logits, Y.T.reshape(-1), weights)
        dlogits = squared_error_backward(se)
    else:
        _, ce = softmax_cross_entropy(logits, Y.T.reshape(-1), weights)
        dlogits = softmax_cross_entropy_backward(ce)
    ref_grads, ref_dstate = backward(params, dlogits, cache)
    assert relative_error(logits_fused, logits) < 1e-12
    for k in ref_grads:
        assert relative_error(grads[k], ref_grads[k]) < 1e-12, k
    assert relative_error(dstate[0], ref_dstate[0]) < 1e-12


@given(seed=seeds, B=st.integers(1, 5), In=st.integers(1, 6), H=st.integers(1, 6))
def test_concatenated_weight_identity_for_the_irnn_step(seed, B, In, H):
    """ReLU(cat(X, H) @ cat(W_xh, W_hh) + b) is the IRNN's step as the spec computes it."""
    rng = np.random.default_rng(seed)
    X, H0 = rng.standard_normal((B, In)), rng.standard_normal((B, H))
    W_xh, W_hh, b = rng.standard_normal((In, H)), rng.standard_normal((H, H)), rng.standard_normal(H)
    concat = np.maximum(np.concatenate([X, H0], 1) @ np.concatenate([W_xh, W_hh], 0) + b, 0)
    Hs, (H_T,), _ = irnn_forward((X @ W_xh + b)[None], W_hh, (H0,))
    assert relative_error(Hs[0], concat) < 1e-13 and relative_error(H_T, concat) < 1e-13


@given(p=problems(task_configs(max_layers=2), min_T=2), split=st.integers(1, 5))
def test_stepwise_equals_whole_sequence(p, split):
    """Logits and final state of one pass == two passes with the state carried."""
    k = min(split, p.X.shape[1] - 1)
    for be in (NP64, SCRATCH):
        params, st0 = be.from_numpy(p.params), be.state_from_numpy(p.state)
        whole, s_whole = be.forward(p.cfg, params, p.X, st0)
        first, s1 = be.forward(p.cfg, params, p.X[:, :k], st0)
        second, s2 = be.forward(p.cfg, params, p.X[:, k:], s1)
        parts = np.concatenate([be.to_numpy({"a": first})["a"], be.to_numpy({"a": second})["a"]])
        assert relative_error(parts, be.to_numpy({"a": whole})["a"]) < 1e-12
        for a, b in zip(be.state_to_numpy(s2), be.state_to_numpy(s_whole)):
            assert relative_error(a, b) < 1e-12


# ----------------------------------------------------------------- mask and head


@given(p=problems(task_configs()), seed=seeds)
def test_a_step_weighted_zero_is_left_out(p, seed):
    """Weights 0 at some steps (a loss mask): the targets there change neither the loss
    nor any gradient, on every backend."""
    rng = np.random.default_rng(seed)
    B, T = p.Y.shape
    keep = rng.random(T * B) < 0.5  # (T*B,) time-major
    weights = np.where(keep, p.weights, 0.0)  # (T*B,)
    masked = keep.reshape(T, B).T  # (B, T)
    if p.cfg.head == "mse":
        Y2 = np.where(masked, p.Y, rng.standard_normal(p.Y.shape) * 10)
    else:
        Y2 = np.where(masked, p.Y, rng.integers(0, p.cfg.vocab_size, p.Y.shape))
    for be in (NP64, SCRATCH, NN):
        a = run(be, p.cfg, p.params, p.X, p.Y, p.state, weights)
        b = run(be, p.cfg, p.params, p.X, Y2, p.state, weights)
        assert_same(a, b, tol=1e-13)


@given(p=problems(task_configs()))
def test_the_squared_error_head_is_the_weighted_mean_of_squares(p):
    """L = (1/N) Σ_n w_n (z_n - y_n)², z the (T*B, 1) outputs, y time-major."""
    assume(p.cfg.head == "mse")
    logits, loss, *_ = run(NP64, p.cfg, p.params, p.X, p.Y, p.state, p.weights)
    assert logits.shape == (p.Y.size, 1)
    expected = np.mean(p.weights * (logits[:, 0] - p.Y.T.reshape(-1)) ** 2)
    assert loss == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- init and config


@pytest.mark.parametrize("init", ["d2l", "torch"])
def test_irnn_starts_from_the_identity(init):
    """Le et al.: W_hh = I (every layer and direction), biases zero; input and output
    weights N(0, 0.001²) under d2l's init (std 0.001, not d2l's 0.01)."""
    cfg = ModelConfig("irnn", 1, 64, input_size=2, head="mse", num_layers=2, bidirectional=True)
    params = init_params(cfg, seed=3, init=init, dtype=np.float64)
    for name, v in params.items():
        if name.startswith("W_hh"):
            np.testing.assert_array_equal(v, np.eye(64))
        elif name.startswith("b_") and init == "d2l":
            assert not v.any(), name
    if init == "d2l":
        assert 0.0008 < params["W_xh_l1"].std() < 0.0012
        rnn = init_params(ModelConfig("rnn", 1, 64, input_size=2, head="mse", num_layers=2,
                                      bidirectional=True), seed=3, dtype=np.float64)
        np.testing.assert_allclose(params["W_xh"], rnn["W_xh"] / 10, rtol=1e-12)


def test_the_irnn_is_torch_nn_rnn_with_relu():
    from rnnlab.torch_backend import nn_map
    cfg = ModelConfig("irnn", 5, 4, num_layers=2)
    params, X, Y, state, weights = random_problem(cfg, 2, 3, seed=1)
    rnn, linear = nn_map.to_nn_module(cfg, params)
    assert isinstance(rnn, torch.nn.RNN) and rnn.nonlinearity == "relu"
    out, _ = rnn(torch.nn.functional.one_hot(torch.tensor(X.T), 5).double(),
                 torch.tensor(np.stack(state)))
    logits = linear(out).reshape(-1, 5).detach().numpy()
    assert relative_error(run(NP64, cfg, params, X, Y, state, weights)[0], logits) < 1e-12
    np.testing.assert_array_equal(nn_map.from_nn_module(cfg, rnn, linear)["W_hh"], params["W_hh"])
    with pytest.raises(ConfigError, match="irnn cell is ReLU"):
        nn_map.from_nn_module(cfg, torch.nn.RNN(5, 4, num_layers=2).double(), linear)
    with pytest.raises(ConfigError, match="RNNModelScratch"):
        nn_map.d2l_rnn_scratch(ModelConfig("irnn", 5, 4), init_params(ModelConfig("irnn", 5, 4)))


def test_config_options_and_their_refusals():
    cfg = ModelConfig("irnn", 1, 8, input_size=2, head="mse")
    assert param_shapes(cfg)["W_xh"] == (2, 8) and param_shapes(cfg)["W_hq"] == (8, 1)
    assert ModelConfig(**cfg.to_dict()) == cfg
    # a language model's record is what it was before these fields existed
    assert set(ModelConfig("lstm").to_dict()) == {"cell", "vocab_size", "num_hiddens",
                                                  "num_layers", "gru_form", "dropout",
                                                  "bidirectional"}
    with pytest.raises(ConfigError, match="head='mse' regresses one real number per step, so "
                                          "the output width vocab_size must be 1, got 3"):
        ModelConfig("lstm", 3, 8, head="mse")
    with pytest.raises(ConfigError, match="unknown head .l1.; expected one of softmax, mse"):
        ModelConfig("lstm", 3, 8, head="l1")
    with pytest.raises(ConfigError, match="input_size must be a positive integer, got 0"):
        ModelConfig("lstm", 3, 8, input_size=0)
    with pytest.raises(ConfigError, match="unknown cell .relu.; expected one of rnn, lstm, gru, irnn"):
        ModelConfig("relu")


BAD = [  # (X, Y, message) for a model of input_size 2 and the mse head, B = 2, T = 3
    (np.zeros((2, 3), dtype=int), np.zeros((2, 3)),
     r"X must be a \(batch, steps, 2\) array of real inputs \(the model's input_size is 2\), "
     r"got shape \(2, 3\)"),
    (np.zeros((2, 3, 4)), np.zeros((2, 3)), r"got shape \(2, 3, 4\)"),
    (np.full((2, 3, 2), np.nan), np.zeros((2, 3)), r"X holds 12 NaN or infinite value\(s\)"),
    (np.zeros((2, 3, 2), dtype=bool), np.zeros((2, 3)), "X must hold real numbers"),
    (np.zeros((2, 3, 2)), np.zeros((3, 2)),
     r"Y must be a \(batch, steps\) array of real targets, shape \(2, 3\) to match X, got "
     r"shape \(3, 2\)"),
    (np.zeros((2, 3, 2)), np.array([[0, np.inf, 0], [0, 0, 0]]),
     r"Y holds 1 NaN or infinite value\(s\); targets must be finite"),
    (np.zeros((2, 0, 2)), np.zeros((2, 0)), "X has an empty dimension"),
]


@pytest.mark.parametrize("X,Y,message", BAD)
@pytest.mark.parametrize("be", [NP64, SCRATCH, NN], ids=["numpy", "scratch", "nn"])
def test_bad_real_inputs_and_targets_are_refused_by_name(be, X, Y, message):
    cfg = ModelConfig("irnn", 1, 3, input_size=2, head="mse")
    params = be.from_numpy(init_params(cfg, dtype=np.float64))
    state = be.begin_state(cfg, 2)
    with pytest.raises(ShapeError, match=message):
        be.loss_and_grads(cfg, params, X, Y, state)
    if not isinstance(be, type(NP64)):  # tensors are checked as arrays are
        with pytest.raises(ShapeError, match=message):
            be.loss_and_grads(cfg, params, torch.tensor(X), torch.tensor(Y), state)


def test_a_softmax_model_refuses_real_targets():
    cfg = ModelConfig("lstm", 3, 4, input_size=2)
    params = init_params(cfg, dtype=np.float64)
    with pytest.raises(ShapeError, match="Y must hold integer token ids"):
        NP64.loss_and_grads(cfg, params, np.zeros((2, 3, 2)), np.zeros((2, 3)),
                            NP64.begin_state(cfg, 2))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_rnnlab_gradcheck_knows_the_irnn(backend, capsys):
    from rnnlab import cli
    assert cli.main(["gradcheck", "--cell", "irnn", "--backend", backend]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"gradcheck irnn on {backend}") and "(ok, tolerance" in out
