"""The recurrent family across backends: the NumPy spec (hand-written BPTT), the torch
scratch path (autograd) and the torch.nn path, and real torch.nn modules.

GRU in both forms, stacked, bidirectional and dropout layers must give the same logits,
final state, loss, parameter gradients and initial-state gradients, at 1e-10 relative in
float64, on configurations drawn by Hypothesis; weights taken from real torch.nn.GRU /
LSTM / RNN modules (random non-zero biases, bias_hh included) must give those modules'
outputs and gradients through every backend; dropout masks are shared across backends
and, drawn as torch.nn draws its own, reproduce torch.nn.LSTM(dropout=p) in training.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from rnnlab import cli  # noqa: E402
from rnnlab.backend import get_backend  # noqa: E402
from rnnlab.config import ModelConfig  # noqa: E402
from rnnlab.dropout import dropout_masks  # noqa: E402
from rnnlab.errors import ConfigError  # noqa: E402
from rnnlab.gradcheck import random_problem, relative_error  # noqa: E402
from rnnlab.params import TORCH_GATES, _torch_suffix, from_torch_nn, to_torch_nn, units  # noqa: E402
from rnnlab.torch_backend import nn_map  # noqa: E402

NP64 = get_backend("numpy", dtype="float64")
SCRATCH = get_backend("torch", dtype="float64", device="cpu")
NN = get_backend("torch", dtype="float64", device="cpu", impl="nn")
TOL = 1e-10  # float64, relative to each array's largest entry


def backends_for(cfg: ModelConfig) -> list:
    """torch scratch always; the nn path where torch.nn can express the cell."""
    return [SCRATCH] + ([NN] if not (cfg.cell == "gru" and cfg.gru_form == "d2l") else [])


def run(be, cfg, params, X, Y, state, weights, masks=None):
    """(loss, grads, state_T, dstate_0) as NumPy arrays."""
    loss, grads, state_T, dstate = be.loss_and_grads(
        cfg, be.from_numpy(params), X, Y, be.state_from_numpy(state), weights=weights,
        state_grads=True, dropout_masks=masks)
    return loss, be.to_numpy(grads), be.state_to_numpy(state_T), be.state_to_numpy(dstate)


def assert_same(a, b, tol=TOL):
    assert a[0] == pytest.approx(b[0], rel=tol)
    assert set(a[1]) == set(b[1])
    for k in a[1]:
        assert relative_error(a[1][k], b[1][k]) < tol, k
    for i, (x, y) in enumerate(zip(a[2] + a[3], b[2] + b[3])):
        assert relative_error(x, y) < tol, f"state {i}"


@st.composite
def family_configs(draw):
    """Any cell, GRU form, 1-3 layers, one or two directions, with or without dropout."""
    cell = draw(st.sampled_from(["rnn", "lstm", "gru"]))
    layers = draw(st.integers(1, 3))
    return ModelConfig(cell, draw(st.integers(2, 6)), draw(st.integers(1, 5)),
                       num_layers=layers,
                       gru_form=draw(st.sampled_from(["d2l", "torch"])),
                       bidirectional=draw(st.booleans()),
                       # dropout acts between layers: one layer has none (ModelConfig refuses it)
                       dropout=draw(st.sampled_from([0.0, 0.3, 0.7])) if layers > 1 else 0.0)


# ------------------------------------------------------- numpy == scratch == nn


@given(family_configs(), st.integers(1, 3), st.integers(1, 5), st.integers(0, 2 ** 16))
def test_numpy_scratch_and_nn_agree(cfg, B, T, seed):
    """Logits, loss, grads, final state and initial-state grads, under shared masks."""
    params, X, Y, state, weights = random_problem(cfg, B, T, seed=seed)
    masks = dropout_masks(cfg, T, B, np.random.default_rng(seed)) if cfg.dropout else None
    ref = run(NP64, cfg, params, X, Y, state, weights, masks)
    logits, _ = NP64.forward(cfg, params, X, state)
    for be in backends_for(cfg):
        assert_same(run(be, cfg, params, X, Y, state, weights, masks), ref)
        out, _ = be.forward(cfg, be.from_numpy(params), X, be.state_from_numpy(state))
        assert relative_error(out.numpy(), logits) < TOL


def test_the_nn_path_refuses_the_d2l_gru_and_scratch_runs_it():
    cfg = ModelConfig("gru", 4, 3)
    params, X, Y, state, _ = random_problem(cfg, 2, 3)
    with pytest.raises(ConfigError, match="torch-form GRU.*gru_form='torch'"):
        NN.forward(cfg, NN.from_numpy(params), X, NN.state_from_numpy(state))
    with pytest.raises(ConfigError, match="only the torch-form GRU maps onto torch.nn.GRU"):
        to_torch_nn(cfg, params)
    SCRATCH.forward(cfg, SCRATCH.from_numpy(params), X, SCRATCH.state_from_numpy(state))


# ----------------------------------------------------------- real torch.nn modules


def randomise(module: nn.Module, seed: int) -> None:
    """Every weight and both biases (bias_ih and bias_hh) random and non-zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)


def torch_reference(cell, V, H, L, bidirectional, seed, B=3, T=5):
    """A real nn.RNN/LSTM/GRU + nn.Linear, random everything, run as d2l's RNNModel with a
    weighted cross-entropy; returns the problem and torch's own logits, states and grads."""
    torch.manual_seed(seed)
    module = getattr(nn, {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[cell])(
        V, H, num_layers=L, bidirectional=bidirectional, dtype=torch.float64)
    D = 2 if bidirectional else 1
    linear = nn.Linear(H * D, V, dtype=torch.float64)
    randomise(module, seed)
    randomise(linear, seed + 1)
    rng = np.random.default_rng(seed)
    X, Y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    weights = rng.uniform(0.1, 2.0, T * B)
    h0 = torch.tensor(rng.standard_normal((L * D, B, H)), requires_grad=True)
    c0 = torch.tensor(rng.standard_normal((L * D, B, H)), requires_grad=True)
    hidden = (h0, c0) if cell == "lstm" else h0
    out, hidden_T = module(nn.functional.one_hot(torch.tensor(X.T), V).double(), hidden)
    logits = linear(out.reshape(T * B, H * D))  # (T*B, V)
    nll = nn.functional.cross_entropy(logits, torch.tensor(Y.T.reshape(-1)), reduction="none")
    loss = (nll * torch.tensor(weights)).sum() / (T * B)
    loss.backward()
    cfg = ModelConfig(cell, V, H, num_layers=L, bidirectional=bidirectional,
                             gru_form="torch")
    params = nn_map.from_nn_module(cfg, module, linear)
    # rnnlab's flat state: (H_u, C_u) per unit u = layer * D + direction
    kinds = [h0, c0] if cell == "lstm" else [h0]
    state = tuple(k[u].detach().numpy() for u in range(L * D) for k in kinds)
    finals = hidden_T if cell == "lstm" else (hidden_T,)
    state_T = tuple(k[u].detach().numpy() for u in range(L * D) for k in finals)
    dstate = tuple(k.grad[u].numpy() for u in range(L * D) for k in kinds)
    return cfg, module, linear, params, X, Y, state, weights, dict(
        logits=logits.detach().numpy(), loss=loss.item(), state_T=state_T, dstate=dstate)


def check_against_module(be, cfg, module, linear, params, X, Y, state, weights, ref):
    p = be.from_numpy(params)
    st_ = be.state_from_numpy(state)
    logits, _ = be.forward(cfg, p, X, st_)
    logits = np.asarray(be.to_numpy({"l": logits})["l"])
    assert relative_error(logits, ref["logits"]) < TOL
    loss, grads, state_T, dstate = be.loss_and_grads(cfg, p, X, Y, st_, weights=weights,
                                                     state_grads=True)
    assert loss == pytest.approx(ref["loss"], rel=TOL)
    for a, b in zip(be.state_to_numpy(state_T), ref["state_T"]):
        assert relative_error(a, b) < TOL
    for a, b in zip(be.state_to_numpy(dstate), ref["dstate"]):
        assert relative_error(a, b) < TOL
    # rnnlab's gradients, written as torch.nn weights, against the module's .grad
    g = to_torch_nn(cfg, be.to_numpy(grads))
    H = cfg.num_hiddens
    for layer, direction in units(cfg):
        t = _torch_suffix(layer, direction)
        for kind in ("weight_ih", "weight_hh", "bias_ih"):
            assert relative_error(g[f"rnn.{kind}{t}"], getattr(module, kind + t).grad.numpy()) \
                < TOL, kind + t
        # b_ih and b_hh enter every gate as a sum, so their gradients are equal, except in
        # the GRU's candidate slot, where b_hn sits inside R * (...): that slot is db_hn
        bias_hh = getattr(module, "bias_hh" + t).grad.numpy()
        bias_ih = getattr(module, "bias_ih" + t).grad.numpy()
        plain = slice(0, 2 * H) if cfg.cell == "gru" else slice(None)
        assert relative_error(bias_hh[plain], bias_ih[plain]) < TOL
        if cfg.cell == "gru":
            assert relative_error(g[f"rnn.bias_hh{t}"][2 * H:], bias_hh[2 * H:]) < TOL
    assert relative_error(g["linear.weight"], linear.weight.grad.numpy()) < TOL
    assert relative_error(g["linear.bias"], linear.bias.grad.numpy()) < TOL


@pytest.mark.parametrize("cell,L,bidirectional", [
    ("gru", 1, False), ("gru", 2, False), ("lstm", 2, False), ("lstm", 3, True),
    ("gru", 2, True), ("rnn", 2, True)])
@pytest.mark.parametrize("be", [NP64, SCRATCH, NN], ids=["numpy", "scratch", "nn"])
def test_weights_from_real_torch_nn_modules_give_torch_outputs_and_grads(cell, L, bidirectional,
                                                                         be):
    case = torch_reference(cell, 4, 3, L, bidirectional, seed=L * 10 + bidirectional)
    check_against_module(be, *case)


@given(st.sampled_from(["rnn", "lstm", "gru"]), st.integers(2, 6), st.integers(1, 5),
       st.integers(1, 3), st.booleans(), st.integers(0, 2 ** 16))
def test_unseen_torch_nn_configurations_through_the_numpy_spec(cell, V, H, L, bidirectional,
                                                                seed):
    """Acceptance: any torch.nn.GRU / multi-layer LSTM / RNN, through hand-written BPTT."""
    case = torch_reference(cell, V, H, L, bidirectional, seed, B=2, T=4)
    check_against_module(NP64, *case)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_mapping_round_trips_through_modules(cell):
    """from_nn_module then to_nn_module: a module computing the same function (b_ih + b_hh
    fold into one bias, b_hn stays apart), and from_torch_nn inverts to_torch_nn exactly."""
    cfg, module, linear, params, X, *_ = torch_reference(cell, 4, 3, 2, True, seed=5)
    rnn2, lin2 = nn_map.to_nn_module(cfg, params)
    x = nn.functional.one_hot(torch.tensor(X.T), 4).double()
    with torch.no_grad():
        a, b = linear(module(x)[0]), lin2(rnn2(x)[0])
    assert relative_error(a.numpy(), b.numpy()) < 1e-13
    again = from_torch_nn(cfg, to_torch_nn(cfg, params))
    assert list(again) == list(params)
    for k in params:
        np.testing.assert_array_equal(again[k], params[k])
    assert set(to_torch_nn(cfg, params)) == {f"rnn.{k}" for k in module.state_dict()} | \
        {"linear.weight", "linear.bias"}
    assert TORCH_GATES["gru"] == ("r", "z", "h")


# ------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("cell,bidirectional", [("lstm", False), ("gru", True)])
def test_masks_drawn_as_torch_draws_them_reproduce_torch_nn_dropout(cell, bidirectional):
    """torch.nn.LSTM(dropout=p) in training, on CPU, multiplies layer k's outputs by
    ``empty_like(out).bernoulli_(1 - p).div_(1 - p)``, drawn in layer order from torch's
    generator. The same masks, handed to rnnlab, give the module's outputs and gradients:
    rnnlab's dropout is torch.nn's, mask for mask."""
    V, H, L, T, B, p = 4, 3, 3, 5, 2, 0.4
    D = 2 if bidirectional else 1
    module = getattr(nn, cell.upper())(V, H, num_layers=L, dropout=p, bidirectional=bidirectional,
                                       dtype=torch.float64)
    linear = nn.Linear(H * D, V, dtype=torch.float64)
    randomise(module, 1)
    randomise(linear, 2)
    rng = np.random.default_rng(0)
    X, Y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    x = nn.functional.one_hot(torch.tensor(X.T), V).double()
    module.train()
    torch.manual_seed(123)
    logits = linear(module(x)[0].reshape(T * B, H * D))
    loss = nn.functional.cross_entropy(logits, torch.tensor(Y.T.reshape(-1)))
    loss.backward()
    torch.manual_seed(123)
    masks = tuple(torch.empty(T, B, H * D, dtype=torch.float64).bernoulli_(1 - p).div_(1 - p)
                  .numpy() for _ in range(L - 1))
    assert any((m == 0).any() for m in masks)
    cfg = ModelConfig(cell, V, H, num_layers=L, bidirectional=bidirectional, dropout=p,
                      gru_form="torch")
    params = nn_map.from_nn_module(cfg, module, linear)
    zeros = tuple(np.zeros((B, H)) for _ in range(L * D * cfg.num_states))
    for be in (NP64, SCRATCH, NN):
        lo, grads, _ = be.loss_and_grads(cfg, be.from_numpy(params), X, Y,
                                         be.state_from_numpy(zeros), dropout_masks=masks)
        assert lo == pytest.approx(loss.item(), rel=TOL)
        g = to_torch_nn(cfg, be.to_numpy(grads))
        for name, param in module.named_parameters():
            if not name.startswith("bias_hh"):
                assert relative_error(g[f"rnn.{name}"], param.grad.numpy()) < TOL, name


@pytest.mark.parametrize("be", [SCRATCH, NN], ids=["scratch", "nn"])
def test_dropout_at_p0_is_the_identity_on_torch(be):
    cfg = ModelConfig("lstm", 4, 3, num_layers=3, bidirectional=True)
    params, X, Y, state, weights = random_problem(cfg, 2, 4, seed=3)
    masks = dropout_masks(cfg, 4, 2, np.random.default_rng(0), p=0.0)
    a = run(be, cfg, params, X, Y, state, weights)
    b = run(be, cfg, params, X, Y, state, weights, masks)
    assert_same(a, b, tol=1e-15)


# -------------------------------------------------------------- metamorphic relations


@pytest.mark.parametrize("be", [SCRATCH, NN], ids=["scratch", "nn"])
@pytest.mark.parametrize("cell,L", [("gru", 1), ("gru", 2), ("lstm", 2)])
def test_torch_stepwise_and_two_windows_equal_one_pass(be, cell, L):
    cfg = ModelConfig(cell, 4, 3, num_layers=L, gru_form="torch" if be is NN else "d2l")
    T, B = 4, 2
    params, X, _, state, _ = random_problem(cfg, B, T, seed=L)
    p, st_ = be.from_numpy(params), be.state_from_numpy(state)
    logits, state_T = be.forward(cfg, p, X, st_)
    rows, s = [], st_
    for t in range(T):
        out, s = be.forward(cfg, p, X[:, t:t + 1], s)
        rows.append(out.numpy())
    assert relative_error(np.concatenate(rows), logits.numpy()) < TOL
    first, s = be.forward(cfg, p, X[:, :2], st_)
    second, s = be.forward(cfg, p, X[:, 2:], s)
    assert relative_error(np.concatenate([first.numpy(), second.numpy()]), logits.numpy()) < TOL
    for a, b in zip(s, state_T):
        assert relative_error(a.numpy(), b.numpy()) < TOL


@pytest.mark.parametrize("be", [SCRATCH, NN], ids=["scratch", "nn"])
def test_torch_per_example_equals_batch_with_masks(be):
    cfg = ModelConfig("gru", 4, 3, num_layers=2, gru_form="torch", bidirectional=True,
                      dropout=0.5)
    T, B = 4, 3
    params, X, Y, state, weights = random_problem(cfg, B, T, seed=2)
    masks = dropout_masks(cfg, T, B, np.random.default_rng(2))
    loss, grads, _, _ = run(be, cfg, params, X, Y, state, weights, masks)
    total, acc = 0.0, {k: 0.0 for k in grads}
    for b in range(B):
        l_b, g_b, _, _ = run(be, cfg, params, X[b:b + 1], Y[b:b + 1],
                             tuple(s[b:b + 1] for s in state), weights[b::B],
                             tuple(m[:, b:b + 1] for m in masks))
        total += l_b / B
        for k in acc:
            acc[k] = acc[k] + g_b[k] / B
    assert loss == pytest.approx(total, rel=TOL)
    for k in grads:
        assert relative_error(grads[k], acc[k]) < TOL, k


# ---------------------------------------------------------------------- CLI, training


def test_training_with_dropout_is_the_same_on_both_backends():
    """rnnlab.train draws the masks, not the backend: numpy and torch train alike."""
    from rnnlab.params import init_params
    from rnnlab.train import TrainConfig, train

    corpus = np.array([i * 7 % 11 for i in range(200)]) % 5
    cfg = ModelConfig("gru", 5, 6, num_layers=2, dropout=0.3, gru_form="torch")
    tcfg = TrainConfig(num_epochs=2, lr=1.0, batch_size=4, num_steps=6, seed=2)
    curves = []
    for be in (NP64, SCRATCH, NN):
        params = be.from_numpy(init_params(cfg, seed=0, dtype=np.float64))
        curves.append([h.train_ppl for h in train(be, cfg, params, corpus, tcfg)])
    for c in curves[1:]:
        np.testing.assert_allclose(c, curves[0], rtol=1e-10)


def test_cli_trains_a_stacked_torch_form_gru_on_the_nn_path(tmp_path, capsys):
    corpus = tmp_path / "text.txt"
    corpus.write_text("the time traveller for so it will be convenient to speak of him " * 20)
    common = ["train", "--cell", "gru", "--num-layers", "2", "--dropout", "0.2", "--hidden", "8",
              "--epochs", "1", "--corpus", str(corpus), "--max-tokens", "-1", "--batch-size",
              "4", "--num-steps", "8", "--no-plot", "--no-progress", "--num-preds", "5",
              "--prefix", "the ", "--backend", "torch", "--device", "cpu", "--impl", "nn"]
    code = cli.main(common + ["--gru-form", "torch", "--out", str(tmp_path / "a")])
    assert code == 0, capsys.readouterr()
    assert "epoch    1/1  train ppl" in capsys.readouterr().out
    code = cli.main(common + ["--out", str(tmp_path / "b")])  # d2l form on torch.nn: refused
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "add --gru-form torch" in err[0]
