"""The rest of the recurrent family on the NumPy spec: GRU (d2l and torch forms), stacked
layers, dropout between layers and bidirectional layers, all with hand-written BPTT.

Each new cell and option gets the properties the suite holds rnn and lstm to: finite
differences in float64, the per-gate reference, stepwise == whole sequence, two windows
with carried state == one pass, per-example == batch; plus the options' own laws
(dropout at p = 0 is the identity, the reverse direction is the forward cell on the
reversed window).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnlab import cli
from rnnlab.backend import get_backend
from rnnlab.config import ModelConfig
from rnnlab.dropout import dropout_masks, dropout_rng
from rnnlab.errors import ConfigError, ShapeError
from rnnlab.gradcheck import gradcheck, random_problem, relative_error
from rnnlab.numpy_backend.functional import softmax_cross_entropy, softmax_cross_entropy_backward
from rnnlab.numpy_backend.model import layer_forward, model_backward, model_forward
from rnnlab.numpy_backend.reference import REFERENCES
from rnnlab.params import fuse, has_hidden_bias, init_params, param_shapes, suffix
from rnnlab.train import TrainConfig, train

NP64 = get_backend("numpy", dtype="float64")

# one name per configuration, so a failure says which; every new cell and option appears
CONFIGS = {
    "gru-d2l": dict(cell="gru"),
    "gru-torch": dict(cell="gru", gru_form="torch"),
    "rnn-2layers": dict(cell="rnn", num_layers=2),
    "lstm-2layers": dict(cell="lstm", num_layers=2),
    "gru-d2l-2layers": dict(cell="gru", num_layers=2),
    "gru-torch-2layers": dict(cell="gru", gru_form="torch", num_layers=2),
    "rnn-bi": dict(cell="rnn", bidirectional=True),
    "lstm-bi": dict(cell="lstm", bidirectional=True),
    "gru-d2l-bi-2layers": dict(cell="gru", bidirectional=True, num_layers=2),
    "gru-torch-bi": dict(cell="gru", gru_form="torch", bidirectional=True),
    "lstm-bi-2layers": dict(cell="lstm", bidirectional=True, num_layers=2),
}
CAUSAL = [k for k, v in CONFIGS.items() if not v.get("bidirectional")]


def make_cfg(name: str, V: int = 4, H: int = 3, **changes) -> ModelConfig:
    return ModelConfig(vocab_size=V, num_hiddens=H, **{**CONFIGS[name], **changes})


def random_masks(cfg: ModelConfig, T: int, B: int, seed: int = 0, p: float = 0.4) -> tuple:
    return dropout_masks(cfg, T, B, np.random.default_rng(seed), p=p)


class WithMasks:
    """A float64 numpy backend whose loss_and_grads always applies the same fixed masks,
    so gradcheck's finite differences see the same (deterministic) function."""

    def __init__(self, masks):
        self.masks, self.be = masks, NP64

    def __getattr__(self, name):
        return getattr(self.be, name)

    def loss_and_grads(self, *args, **kwargs):
        return self.be.loss_and_grads(*args, dropout_masks=self.masks, **kwargs)


# ------------------------------------------------------------------- finite differences


@pytest.mark.parametrize("name", list(CONFIGS))
def test_bptt_matches_finite_differences(name):
    """Every parameter (b_hn, every layer, every direction) and every initial state."""
    cfg = make_cfg(name)
    params, X, Y, state, weights = random_problem(cfg, 2, 4, seed=len(name))
    assert set(params) == set(param_shapes(cfg))
    result = gradcheck(NP64, cfg, params, X, Y, state, weights)
    assert set(result.errors) == set(params) | {f"state[{i}]" for i in range(len(state))}
    assert result.worst < 1e-7, result.errors


@pytest.mark.parametrize("name", ["gru-d2l", "gru-torch"])
@pytest.mark.parametrize("B,T,V,H", [(1, 1, 3, 2), (3, 5, 2, 4), (1, 6, 5, 2)])
def test_gru_bptt_matches_finite_differences_over_shapes(name, B, T, V, H):
    cfg = make_cfg(name, V, H)
    params, X, Y, state, weights = random_problem(cfg, B, T, seed=B * 100 + T * 10 + V + H)
    assert gradcheck(NP64, cfg, params, X, Y, state, weights).worst < 1e-7


@pytest.mark.parametrize("name", ["lstm-2layers", "gru-torch-2layers", "gru-d2l-bi-2layers"])
def test_bptt_through_a_fixed_dropout_mask_matches_finite_differences(name):
    cfg = make_cfg(name, num_layers=3, dropout=0.4)
    params, X, Y, state, weights = random_problem(cfg, 2, 3, seed=5)
    masks = random_masks(cfg, 3, 2, seed=1)
    assert len(masks) == 2 and all((m == 0).any() and (m > 1).any() for m in masks)
    result = gradcheck(WithMasks(masks), cfg, params, X, Y, state, weights)
    assert result.worst < 1e-7, result.errors


# ------------------------------------------------------------------- per-gate reference


@pytest.mark.parametrize("form", ["d2l", "torch"])
@pytest.mark.parametrize("B,T,V,H", [(1, 1, 3, 2), (2, 4, 5, 4), (3, 6, 3, 5)])
def test_fused_gru_equals_per_gate_reference(form, B, T, V, H):
    """One matmul for Z and R (all three in the torch form) == d2l's gate-by-gate gru."""
    cfg = ModelConfig("gru", V, H, gru_form=form)
    params, X, Y, state, weights = random_problem(cfg, B, T, seed=11)
    loss, grads, state_T, dstate = NP64.loss_and_grads(cfg, params, X, Y, state, weights=weights,
                                                       state_grads=True)
    logits, _ = NP64.forward(cfg, params, X, state)
    forward, backward = REFERENCES["gru"]
    ref_logits, ref_state, cache = forward(params, X, state)
    ref_loss, ce = softmax_cross_entropy(ref_logits, Y.T.reshape(-1), weights)
    ref_grads, ref_dstate = backward(params, softmax_cross_entropy_backward(ce), cache)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-12, atol=1e-14)
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    np.testing.assert_allclose(state_T[0], ref_state[0], rtol=1e-12, atol=1e-14)
    assert set(ref_grads) == set(grads)
    for k in params:
        assert relative_error(grads[k], ref_grads[k]) < 1e-12, k
    assert relative_error(dstate[0], ref_dstate[0]) < 1e-12


def test_the_two_gru_forms_are_different_functions():
    """Same shared weights, b_hn = 0: d2l's (R ⊙ H) W_hh and torch's R ⊙ (H W_hh) differ."""
    d2l, torch_form = ModelConfig("gru", 4, 3), ModelConfig("gru", 4, 3, gru_form="torch")
    params, X, _, state, _ = random_problem(torch_form, 2, 5, seed=2)
    params["b_hn"][:] = 0.0
    shared = {k: v for k, v in params.items() if k != "b_hn"}
    a, _ = NP64.forward(d2l, shared, X, state)
    b, _ = NP64.forward(torch_form, params, X, state)
    assert np.abs(a - b).max() > 1e-3
    # ... and agree when R is forced to 1 (a huge reset bias): R ⊙ (H W) = (R ⊙ H) W
    for p in (shared, params):
        p["b_r"] = np.full(3, 1e3)
    a, _ = NP64.forward(d2l, shared, X, state)
    b, _ = NP64.forward(torch_form, params, X, state)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("form", ["d2l", "torch"])
def test_saturated_gru_stays_finite(form):
    cfg = ModelConfig("gru", 4, 3, gru_form=form)
    params, X, Y, state, _ = random_problem(cfg, 2, 5, seed=3)
    params = {k: v * 400 for k, v in params.items()}  # pre-activations in the hundreds
    with np.errstate(over="raise", invalid="raise"):
        loss, grads, state_T = NP64.loss_and_grads(cfg, params, X, Y, state)
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())
    assert np.abs(state_T[0]).max() <= np.abs(state[0]).max() + 1  # convex mix of H, tanh


@pytest.mark.parametrize("name", ["gru-d2l", "gru-torch-bi", "lstm-bi-2layers"])
def test_float32_follows_float64(name):
    cfg = make_cfg(name, 6, 8)
    params, X, Y, state, weights = random_problem(cfg, 3, 5, seed=3)
    be32 = get_backend("numpy", dtype="float32")
    l64, g64, _ = NP64.loss_and_grads(cfg, params, X, Y, state, weights=weights)
    l32, g32, s32 = be32.loss_and_grads(cfg, be32.from_numpy(params), X, Y,
                                        be32.state_from_numpy(state), weights=weights)
    assert all(g.dtype == np.float32 for g in g32.values()) and all(s.dtype == np.float32 for s in s32)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for k in params:
        assert relative_error(g32[k], g64[k]) < 1e-5, k


# ----------------------------------------------------------------------- composition


@pytest.mark.parametrize("name", ["rnn-2layers", "gru-torch-bi", "lstm-bi-2layers"])
def test_layers_compose_as_written(name):
    """The model equals the layers run by hand: layer k+1 reads M_k ⊙ [H_fwd | H_rev] of
    layer k, the reverse pass runs on the reversed window, logits = H W_hq + b_q."""
    cfg = make_cfg(name, num_layers=2, dropout=0.3)
    T, B = 5, 3
    params, X, _, state, _ = random_problem(cfg, B, T, seed=4)
    masks = random_masks(cfg, T, B, seed=2, p=0.3)
    logits, state_T, _ = model_forward(cfg, params, X, state, masks)
    S, D, inputs, tokens, states = cfg.num_states, cfg.num_directions, X, True, []
    for layer in range(cfg.num_layers):
        outs = []
        for d in range(D):
            i = layer * D + d
            x = inputs if d == 0 else (inputs[:, ::-1] if tokens else inputs[::-1])
            extra = (params["b_hn" + suffix(layer, d)],) if has_hidden_bias(cfg) else ()
            Hs, st_, _ = layer_forward(cfg.cell, *fuse(cfg, params, layer, d), x,
                                       state[i * S:(i + 1) * S], tokens, extra)
            outs.append(Hs if d == 0 else Hs[::-1])
            states.extend(st_)
        inputs, tokens = np.concatenate(outs, -1), False
        if layer == 0:
            inputs = inputs * masks[0]
    expected = inputs.reshape(T * B, -1) @ params["W_hq"] + params["b_q"]  # (T*B, V)
    np.testing.assert_allclose(logits, expected, rtol=1e-13, atol=1e-14)
    for a, b in zip(state_T, states):
        np.testing.assert_array_equal(a, b)


def test_state_tuple_carries_every_layer_and_direction():
    cfg = ModelConfig("lstm", 5, 3, num_layers=3, bidirectional=True)
    be = get_backend("numpy")
    state = be.begin_state(cfg, 2)
    assert len(state) == 3 * 2 * 2 and all(s.shape == (2, 3) for s in state)
    params = be.from_numpy(init_params(cfg))
    logits, state_T = be.forward(cfg, params, np.zeros((2, 4), dtype=int), state)
    assert logits.shape == (8, 5) and len(state_T) == 12
    with pytest.raises(ShapeError, match=r"3 layer\(s\) x 2 direction\(s\) needs 12 arrays"):
        be.forward(cfg, params, np.zeros((2, 4), dtype=int), state[:4])


# ------------------------------------------------------------------------- dropout


def test_dropout_masks_are_seeded_inverted_and_shaped():
    cfg = ModelConfig("lstm", 5, 16, num_layers=3, dropout=0.25, bidirectional=True)
    masks = dropout_masks(cfg, 40, 30, dropout_rng(0, 1, 2))
    assert len(masks) == 2 and all(m.shape == (40, 30, 32) for m in masks)
    values = np.unique(np.concatenate([m.ravel() for m in masks]))
    np.testing.assert_array_equal(values, [0.0, 1 / 0.75])
    dropped = np.mean([(m == 0).mean() for m in masks])
    assert abs(dropped - 0.25) < 0.02  # 76,800 draws: 5 sigma is ~0.008
    again = dropout_masks(cfg, 40, 30, dropout_rng(0, 1, 2))
    assert all(np.array_equal(a, b) for a, b in zip(masks, again))
    other = dropout_masks(cfg, 40, 30, dropout_rng(0, 1, 3))
    assert not np.array_equal(masks[0], other[0])
    assert dropout_masks(ModelConfig("gru", 5, 4), 3, 2, dropout_rng(0, 0, 0), p=0.5) == ()
    with pytest.raises(ConfigError, match=r"dropout=0\.5 acts between stacked layers, and a "
                                          r"model with num_layers=1 has none"):
        ModelConfig("gru", 5, 4, dropout=0.5)  # refused, not silently ignored
    with pytest.raises(ConfigError, match=r"dropout must be a number in \[0, 1\), got 1\.0"):
        dropout_masks(cfg, 3, 2, dropout_rng(0, 0, 0), p=1.0)


@pytest.mark.parametrize("name", ["lstm-2layers", "gru-d2l-bi-2layers"])
def test_dropout_at_p0_is_the_identity(name):
    cfg = make_cfg(name, num_layers=3)
    params, X, Y, state, weights = random_problem(cfg, 2, 4, seed=8)
    masks = dropout_masks(cfg, 4, 2, dropout_rng(0, 0, 0), p=0.0)
    assert all((m == 1).all() for m in masks)
    plain = NP64.loss_and_grads(cfg, params, X, Y, state, weights=weights, state_grads=True)
    masked = NP64.loss_and_grads(cfg, params, X, Y, state, weights=weights, state_grads=True,
                                 dropout_masks=masks)
    assert plain[0] == masked[0]
    for k in params:
        np.testing.assert_array_equal(plain[1][k], masked[1][k])
    for a, b in zip(plain[2] + plain[3], masked[2] + masked[3]):
        np.testing.assert_array_equal(a, b)


def test_a_zero_mask_cuts_the_layers_below():
    """M_0 = 0: layer 1 sees zeros, so the loss ignores layer 0 and its gradients are 0."""
    cfg = make_cfg("gru-torch-2layers")
    params, X, Y, state, weights = random_problem(cfg, 2, 4, seed=9)
    zero = (np.zeros((4, 2, 3)),)
    loss, grads, _ = NP64.loss_and_grads(cfg, params, X, Y, state, weights=weights,
                                         dropout_masks=zero)
    for k in ("W_xz", "W_hr", "b_h", "b_hn"):
        assert not grads[k].any(), k
    assert not grads["W_xz_l1"].any() and grads["W_hz_l1"].any()  # layer 1 input is zero
    other = dict(params, W_xh=params["W_xh"] + 1.0)
    assert NP64.loss_and_grads(cfg, other, X, Y, state, weights=weights,
                               dropout_masks=zero)[0] == loss


def test_dropout_masks_are_checked_and_never_used_by_forward():
    cfg = make_cfg("lstm-2layers", dropout=0.5)
    params, X, Y, state, _ = random_problem(cfg, 2, 4, seed=1)
    with pytest.raises(ShapeError, match=r"dropout_masks\[0\] has shape \(4, 2, 6\), expected \(4, 2, 3\)"):
        NP64.loss_and_grads(cfg, params, X, Y, state, dropout_masks=(np.ones((4, 2, 6)),))
    with pytest.raises(ShapeError, match="2-layer model has 1 layer boundaries, got 2"):
        NP64.loss_and_grads(cfg, params, X, Y, state, dropout_masks=(np.ones((4, 2, 3)),) * 2)
    masks = random_masks(cfg, 4, 2, p=0.5)
    dropped = NP64.loss_and_grads(cfg, params, X, Y, state, dropout_masks=masks)[0]
    assert dropped != NP64.loss_and_grads(cfg, params, X, Y, state)[0]
    # forward is evaluation: the config's dropout never applies there
    logits, _ = NP64.forward(cfg, params, X, state)
    plain, _ = NP64.forward(make_cfg("lstm-2layers"), params, X, state)
    np.testing.assert_array_equal(logits, plain)


# -------------------------------------------------------------------- bidirectional


def _reverse_as_forward(cfg: ModelConfig, params: dict):
    """A one-direction model whose layer-0 weights are the bidirectional model's `_rev`."""
    uni = ModelConfig(cfg.cell, cfg.vocab_size, cfg.num_hiddens, gru_form=cfg.gru_form)
    H = cfg.num_hiddens
    p = {k: params[k + "_rev"] for k in param_shapes(uni) if k not in ("W_hq", "b_q")}
    p["W_hq"], p["b_q"] = params["W_hq"][H:], params["b_q"]  # the reverse half of W_hq
    return uni, p


@pytest.mark.parametrize("cell,form", [("rnn", "d2l"), ("lstm", "d2l"), ("gru", "d2l"),
                                       ("gru", "torch")])
def test_reverse_direction_is_the_forward_cell_on_the_reversed_window(cell, form):
    cfg = ModelConfig(cell, 4, 3, gru_form=form, bidirectional=True)
    T, B, H = 5, 3, cfg.num_hiddens
    params, X, Y, state, weights = random_problem(cfg, B, T, seed=6)
    S = cfg.num_states
    uni, p_rev = _reverse_as_forward(cfg, params)
    fwd = ModelConfig(cfg.cell, cfg.vocab_size, H, gru_form=cfg.gru_form)
    p_fwd = {k: params[k] for k in param_shapes(fwd) if k not in ("W_hq", "b_q")}
    p_fwd["W_hq"], p_fwd["b_q"] = params["W_hq"][:H], params["b_q"]
    # outputs: [H_fwd(X) | reverse_t(H_rev-as-forward(reverse_t(X)))], states of each
    _, st_bi, c_bi = model_forward(cfg, params, X, state)
    _, st_f, c_f = model_forward(fwd, p_fwd, X, state[:S])
    _, st_r, c_r = model_forward(uni, p_rev, X[:, ::-1], state[S:])
    Hs_bi = c_bi.Hs.reshape(T, B, 2 * H)  # (T, B, 2H)
    np.testing.assert_allclose(Hs_bi[..., :H], c_f.Hs.reshape(T, B, H), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(Hs_bi[..., H:], c_r.Hs.reshape(T, B, H)[::-1], rtol=1e-13,
                               atol=1e-15)
    for a, b in zip(st_bi, st_f + st_r):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    # gradients: with the forward half of W_hq at zero the loss reads only the reverse pass,
    # which must then be the one-direction model on reversed inputs, targets and weights
    params["W_hq"][:H] = 0.0
    _, g_bi, _, ds_bi = NP64.loss_and_grads(cfg, params, X, Y, state, weights=weights,
                                            state_grads=True)
    w_rev = weights.reshape(T, B)[::-1].reshape(-1)  # time-major rows, steps reversed
    _, g_r, _, ds_r = NP64.loss_and_grads(uni, p_rev, X[:, ::-1], Y[:, ::-1], state[S:],
                                          weights=w_rev, state_grads=True)
    for k in g_r:
        if k not in ("W_hq", "b_q"):
            assert relative_error(g_bi[k + "_rev"], g_r[k]) < 1e-12, k
    assert relative_error(g_bi["W_hq"][H:], g_r["W_hq"]) < 1e-12
    for a, b in zip(ds_bi[S:], ds_r):
        assert relative_error(a, b) < 1e-12
    assert all(not g_bi[k].any() for k in p_fwd if k not in ("W_hq", "b_q"))


def test_bidirectional_outputs_see_the_future():
    """Changing the last token changes the first step's logits; a causal model's do not."""
    for bidirectional in (False, True):
        cfg = ModelConfig("gru", 5, 4, bidirectional=bidirectional)
        params, X, _, state, _ = random_problem(cfg, 2, 6, seed=3)
        X2 = X.copy()
        X2[:, -1] = (X2[:, -1] + 1) % 5
        a, _ = NP64.forward(cfg, params, X, state)
        b, _ = NP64.forward(cfg, params, X2, state)
        moved = np.abs(a[:2] - b[:2]).max()  # step 0's rows
        assert (moved > 1e-6) == bidirectional


def test_train_refuses_a_bidirectional_language_model():
    cfg = ModelConfig("lstm", 5, 4, bidirectional=True)
    be = get_backend("numpy")
    params = be.from_numpy(init_params(cfg))
    with pytest.raises(ConfigError, match="bidirectional model reads the future.*next character"):
        train(be, cfg, params, np.arange(400) % 5, TrainConfig(num_epochs=1, batch_size=2,
                                                               num_steps=4))


# ------------------------------------------------------------- metamorphic relations


@pytest.mark.parametrize("name", CAUSAL)
def test_stepwise_equals_whole_sequence(name):
    cfg = make_cfg(name)
    T = 5
    params, X, _, state, _ = random_problem(cfg, 3, T, seed=12)
    logits, state_T = NP64.forward(cfg, params, X, state)
    st_, rows = state, []
    for t in range(T):
        out, st_ = NP64.forward(cfg, params, X[:, t:t + 1], st_)
        rows.append(out)
    np.testing.assert_allclose(np.concatenate(rows), logits, rtol=1e-12, atol=1e-14)
    for a, b in zip(st_, state_T):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", CAUSAL)
def test_two_windows_with_carried_state_equal_one_pass(name):
    """Forward: window 2 from window 1's state == the second half of one pass. Backward:
    one pass's gradient == the two truncated windows' gradients + the part carried from
    window 2 into window 1 (dL2/dstate between them, back through window 1); dropout masks
    split at the window edge."""
    stacked = CONFIGS[name].get("num_layers", 1) > 1  # dropout needs a layer boundary
    cfg = make_cfg(name, dropout=0.3 if stacked else 0.0)
    T, B = 3, 2
    params, X, Y, state, weights = random_problem(cfg, B, 2 * T, seed=13)
    masks = random_masks(cfg, 2 * T, B, seed=3, p=0.3)
    m1, m2 = tuple(m[:T] for m in masks), tuple(m[T:] for m in masks)
    w1, w2 = weights[:T * B], weights[T * B:]
    full = NP64.loss_and_grads(cfg, params, X, Y, state, weights=weights, state_grads=True,
                               dropout_masks=masks)
    l1, g1, s1 = NP64.loss_and_grads(cfg, params, X[:, :T], Y[:, :T], state, weights=w1,
                                     dropout_masks=m1)
    l2, g2, s2, ds2 = NP64.loss_and_grads(cfg, params, X[:, T:], Y[:, T:], s1, weights=w2,
                                          state_grads=True, dropout_masks=m2)
    assert full[0] == pytest.approx((l1 + l2) / 2, rel=1e-13)
    for a, b in zip(full[2], s2):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    _, _, cache1 = model_forward(cfg, params, X[:, :T], state, m1)
    V = cfg.vocab_size
    carried, _ = model_backward(np.zeros((T * B, V)), ds2, cache1)  # window 2 -> window 1
    for k in params:
        truncated = (g1[k] + g2[k]) / 2  # what training with truncation uses
        assert relative_error(full[1][k], truncated + carried[k] / 2) < 1e-12, k


@pytest.mark.parametrize("name", ["gru-d2l", "gru-torch-2layers", "gru-d2l-bi-2layers",
                                  "lstm-bi-2layers"])
def test_per_example_equals_batch(name):
    """The batch loss is the mean of the examples' losses; so are the gradients, each
    example with its own slice of the state, the weights and the dropout masks."""
    cfg = make_cfg(name, num_layers=2, dropout=0.5)
    T, B = 4, 3
    params, X, Y, state, weights = random_problem(cfg, B, T, seed=14)
    masks = random_masks(cfg, T, B, seed=4, p=0.5)
    loss, grads, state_T = NP64.loss_and_grads(cfg, params, X, Y, state, weights=weights,
                                               dropout_masks=masks)
    total, acc = 0.0, {k: np.zeros_like(v) for k, v in params.items()}
    for b in range(B):
        l_b, g_b, s_b = NP64.loss_and_grads(
            cfg, params, X[b:b + 1], Y[b:b + 1], tuple(s[b:b + 1] for s in state),
            weights=weights[b::B], dropout_masks=tuple(m[:, b:b + 1] for m in masks))
        total += l_b / B
        for k in acc:
            acc[k] += g_b[k] / B
        for a, s in zip(state_T, s_b):
            np.testing.assert_allclose(a[b:b + 1], s, rtol=1e-13, atol=1e-15)
    assert loss == pytest.approx(total, rel=1e-13)
    for k in params:
        assert relative_error(grads[k], acc[k]) < 1e-12, k


@st.composite
def family_problems(draw):
    """A random configuration of the family with random sizes (named strategy)."""
    cell = draw(st.sampled_from(["rnn", "lstm", "gru"]))
    cfg = ModelConfig(cell, draw(st.integers(2, 5)), draw(st.integers(1, 4)),
                      num_layers=draw(st.integers(1, 3)),
                      gru_form=draw(st.sampled_from(["d2l", "torch"])),
                      bidirectional=draw(st.booleans()))
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    return cfg, B, T, draw(st.integers(0, 2 ** 16))


@given(family_problems())
def test_hand_written_bptt_equals_directional_derivatives(problem):
    """For random configurations: <grads, d> == (L(θ + h d) - L(θ - h d)) / 2h for a random
    direction d through every parameter and the state at once (one check, any size)."""
    cfg, B, T, seed = problem
    params, X, Y, state, weights = random_problem(cfg, B, T, seed=seed)
    masks = random_masks(cfg, T, B, seed=seed, p=0.3)
    rng = np.random.default_rng(seed + 1)
    d_p = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    d_s = [rng.standard_normal(s.shape) for s in state]
    _, grads, _, dstate = NP64.loss_and_grads(cfg, params, X, Y, state, weights=weights,
                                              state_grads=True, dropout_masks=masks)
    analytic = sum(float((grads[k] * d_p[k]).sum()) for k in params) + \
        sum(float((a * b).sum()) for a, b in zip(dstate, d_s))

    def loss_at(h):
        p = {k: v + h * d_p[k] for k, v in params.items()}
        s = tuple(v + h * d for v, d in zip(state, d_s))
        return NP64.loss_and_grads(cfg, p, X, Y, s, weights=weights, dropout_masks=masks)[0]

    h = 1e-5
    numeric = (loss_at(h) - loss_at(-h)) / (2 * h)
    assert abs(analytic - numeric) <= 1e-7 * max(1.0, abs(analytic))


# ---------------------------------------------------------------------- train and CLI


def test_training_with_dropout_is_seeded_and_uses_the_masks():
    corpus = np.array([i * 7 % 11 for i in range(600)]) % 6
    be = get_backend("numpy", dtype="float64")
    tcfg = TrainConfig(num_epochs=2, lr=1.0, batch_size=4, num_steps=6, seed=1)

    def run(dropout):
        cfg = ModelConfig("gru", 6, 8, num_layers=2, dropout=dropout)
        params = be.from_numpy(init_params(cfg, seed=0, dtype=np.float64))
        return [h.train_ppl for h in train(be, cfg, params, corpus, tcfg)], params

    a, pa = run(0.3)
    b, pb = run(0.3)
    c, _ = run(0.0)
    assert a == b and all(np.array_equal(pa[k], pb[k]) for k in pa)
    assert a != c


def test_cli_trains_a_stacked_gru_with_dropout(tmp_path, capsys):
    corpus = tmp_path / "text.txt"
    corpus.write_text("the time traveller for so it will be convenient to speak of him " * 20)
    out = tmp_path / "run"
    code = cli.main(["train", "--cell", "gru", "--gru-form", "torch", "--num-layers", "2",
                     "--dropout", "0.2", "--hidden", "8", "--epochs", "2", "--corpus", str(corpus),
                     "--max-tokens", "-1", "--batch-size", "4", "--num-steps", "8",
                     "--out", str(out), "--no-plot", "--no-progress", "--num-preds", "5",
                     "--prefix", "the "])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "training gru (H=8, layers=2)" in text and "epoch    2/2  train ppl" in text
    assert (out / "checkpoint.safetensors").exists()
