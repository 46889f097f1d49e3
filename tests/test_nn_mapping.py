"""rnnlab params <-> torch.nn modules, state dicts and d2l's lists, held to torch's own math.

The direction that matters most is torch -> rnnlab: weights from a freshly initialised
``torch.nn.LSTM`` / ``nn.RNN`` (whose ``bias_hh`` is random, not zero), mapped into rnnlab
names and run through the NumPy backend, must give torch's logits and gradients.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from rnnlab.config import ModelConfig  # noqa: E402
from rnnlab.errors import ConfigError, ParamError  # noqa: E402
from rnnlab.numpy_backend import NumpyBackend  # noqa: E402
from rnnlab.params import from_torch_nn, init_params  # noqa: E402
from rnnlab.torch_backend import nn_map  # noqa: E402

V, H, B, T = 6, 4, 3, 5
TOL = 1e-10


def assert_rel(got, want, tol: float = TOL, what: str = "") -> None:
    got = got.detach().cpu().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    want = want.detach().cpu().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(float(np.abs(want).max(initial=0.0)), 1e-300)
    err = float(np.abs(got - want).max(initial=0.0)) / scale
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


def torch_modules(cell: str, num_layers: int, seed: int = 0):
    """torch's own random initialisation, float64: uniform(±1/sqrt(H)) for every weight
    and both biases, so bias_hh is non-zero and must fold into rnnlab's one bias."""
    torch.manual_seed(seed)
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM}[cell]
    rnn = cls(V, H, num_layers=num_layers).double()
    linear = torch.nn.Linear(H, V).double()
    assert all(bool(getattr(rnn, f"bias_hh_l{k}").abs().min() > 0) for k in range(num_layers))
    return rnn, linear


def random_inputs(cfg: ModelConfig, seed: int = 1):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, V, (B, T))
    Y = rng.integers(0, V, (B, T))
    state = tuple(rng.standard_normal((B, H)) for _ in range(cfg.num_layers * cfg.num_states))
    weights = rng.random(B * T) + 0.25  # (T*B,) random, not ones
    return X, Y, state, weights


def random_params(cfg: ModelConfig, seed: int = 2) -> dict:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(v.shape) * 0.5
            for k, v in init_params(cfg, dtype=np.float64).items()}


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_torch_module_weights_run_on_the_numpy_backend(cell, num_layers):
    cfg = ModelConfig(cell, V, H, num_layers=num_layers)
    rnn, linear = torch_modules(cell, num_layers)
    params = nn_map.from_nn_module(cfg, rnn, linear)
    X, Y, state, w = random_inputs(cfg)

    # NumPy backend, hand-written BPTT, on the mapped weights
    loss, grads, state_T, dstate0 = NumpyBackend(dtype="float64").loss_and_grads(
        cfg, params, X, Y, state, weights=w, state_grads=True)
    logits_np, _ = NumpyBackend(dtype="float64").forward(cfg, params, X, state)

    # torch's own module forward and backward (d2l's RNNModel)
    st = [torch.tensor(s, requires_grad=True) for s in state]
    S = cfg.num_states
    hidden = tuple(torch.stack(st[k::S]) for k in range(S))  # (L, B, H) each
    inputs = F.one_hot(torch.tensor(X).T, V).double()  # (T, B, V)
    out, hidden_T = rnn(inputs, hidden if S == 2 else hidden[0])
    logits = linear(out.reshape(-1, H))  # (T*B, V)
    targets = torch.tensor(Y).T.reshape(-1)
    loss_t = (F.cross_entropy(logits, targets, reduction="none") * torch.tensor(w)).mean()
    loss_t.backward()

    assert_rel(logits_np, logits, what="logits")
    assert abs(loss - loss_t.item()) <= TOL * abs(loss)
    hidden_T = hidden_T if S == 2 else (hidden_T,)
    for i, s in enumerate(state_T):
        assert_rel(s, hidden_T[i % S][i // S], what=f"state_T[{i}]")
    for i, d in enumerate(dstate0):
        assert_rel(d, st[i].grad, what=f"dstate0[{i}]")

    # torch's gradients under rnnlab's names: bias_ih and bias_hh get the same gradient
    # (both add to the pre-activation), which is rnnlab's one bias's gradient
    grad_sd = {f"rnn.{k}": p.grad for k, p in rnn.named_parameters()}
    grad_sd.update({f"linear.{k}": p.grad for k, p in linear.named_parameters()})
    for k in range(num_layers):
        assert_rel(grad_sd[f"rnn.bias_hh_l{k}"], grad_sd[f"rnn.bias_ih_l{k}"], 1e-12, "bias_hh")
        grad_sd[f"rnn.bias_hh_l{k}"] = torch.zeros_like(grad_sd[f"rnn.bias_hh_l{k}"])
    want = from_torch_nn(cfg, grad_sd)
    assert list(want) == list(grads)
    for name in grads:
        assert_rel(grads[name], want[name], what=f"d{name}")


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_round_trips_are_exact(cell, num_layers):
    cfg = ModelConfig(cell, V, H, num_layers=num_layers)
    params = random_params(cfg)
    rnn, linear = nn_map.to_nn_module(cfg, params)
    assert rnn.weight_ih_l0.dtype == torch.float64 and rnn.num_layers == num_layers
    for name, got in nn_map.from_nn_module(cfg, rnn, linear).items():
        np.testing.assert_array_equal(got, params[name], err_msg=name)
    sd = nn_map.to_state_dict(cfg, params)
    assert "rnn.weight_hh_l0" in sd and "linear.bias" in sd
    assert not any(sd[f"rnn.bias_hh_l{k}"].any() for k in range(num_layers))
    for name, got in nn_map.from_state_dict(cfg, sd).items():
        np.testing.assert_array_equal(got, params[name], err_msg=name)
    back = nn_map.from_d2l_params(cfg, nn_map.to_d2l_params(cfg, params))
    for name in params:
        np.testing.assert_array_equal(back[name], params[name], err_msg=name)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_to_nn_module_computes_the_numpy_backends_logits(cell):
    cfg = ModelConfig(cell, V, H, num_layers=2)
    params = random_params(cfg)
    X, _, state, _ = random_inputs(cfg)
    want, want_state = NumpyBackend(dtype="float64").forward(cfg, params, X, state)
    rnn, linear = nn_map.to_nn_module(cfg, params)
    S = cfg.num_states
    hidden = tuple(torch.stack([torch.tensor(s) for s in state[k::S]]) for k in range(S))
    with torch.no_grad():
        out, _ = rnn(F.one_hot(torch.tensor(X).T, V).double(), hidden if S == 2 else hidden[0])
        logits = linear(out.reshape(-1, H))
    assert_rel(logits, want, what="logits")


def test_to_d2l_params_follows_get_lstm_params_order():
    cfg = ModelConfig("lstm", V, H)
    params = random_params(cfg)
    # d2l 9.2 get_lstm_params: three() for input, forget, output gates and the candidate
    expected = ["W_xi", "W_hi", "b_i", "W_xf", "W_hf", "b_f", "W_xo", "W_ho", "b_o",
                "W_xc", "W_hc", "b_c", "W_hq", "b_q"]
    tensors = nn_map.to_d2l_params(cfg, params)
    assert len(tensors) == len(expected)
    for name, t in zip(expected, tensors, strict=True):
        assert t.is_leaf and t.requires_grad
        np.testing.assert_array_equal(t.detach().numpy(), params[name], err_msg=name)
    rnn_params = random_params(ModelConfig("rnn", V, H))
    rnn_list = nn_map.to_d2l_params("rnn", rnn_params)  # d2l 8.5 get_params
    for name, t in zip(["W_xh", "W_hh", "b_h", "W_hq", "b_q"], rnn_list, strict=True):
        np.testing.assert_array_equal(t.detach().numpy(), rnn_params[name], err_msg=name)
    with pytest.raises(ParamError, match="14"):
        nn_map.from_d2l_params(cfg, tensors[:-1])


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_d2l_scratch_matches_the_numpy_backend(cell):
    cfg = ModelConfig(cell, V, H)
    params = random_params(cfg)
    X, Y, state, w = random_inputs(cfg)
    nb = NumpyBackend(dtype="float64")
    want, want_state = nb.forward(cfg, params, X, state)
    _, want_grads, _ = nb.loss_and_grads(cfg, params, X, Y, state, weights=w)

    model = nn_map.d2l_rnn_scratch(cfg, params)
    assert [s.shape for s in model.begin_state(B)] == [(B, H)] * cfg.num_states
    Y_hat, state_T = model(torch.tensor(X), tuple(torch.tensor(s) for s in state))
    assert_rel(Y_hat, want, what="logits")
    for a, b in zip(state_T, want_state, strict=True):
        assert_rel(a, b, what="state")
    # d2l's train_epoch_ch8: loss on y = Y.T.reshape(-1), then backward into the list
    y = torch.tensor(Y).T.reshape(-1)
    loss = (F.cross_entropy(Y_hat, y, reduction="none") * torch.tensor(w)).mean()
    loss.backward()
    for name, p in zip(params, model.params, strict=True):  # param_shapes = d2l order
        assert_rel(p.grad, want_grads[name], what=f"d{name}")


def test_d2l_scratch_gru_agrees_with_nn_gru_where_the_forms_coincide():
    """d2l's GRU resets before the matmul, (R ⊙ H) W_hh; torch's after, R ⊙ (H W_hn + b_hn).
    With H_0 = 0, b_hn = 0 and one step both are 0, so the gate order z, r, h is checked."""
    cfg = ModelConfig("gru", V, H)
    params = random_params(cfg)
    X = np.arange(B).reshape(B, 1) % V
    Y_hat, _ = nn_map.d2l_rnn_scratch(cfg, params)(torch.tensor(X), (torch.zeros(B, H).double(),))
    torch_cfg = ModelConfig("gru", V, H, gru_form="torch")
    rnn, linear = nn_map.to_nn_module(torch_cfg, {**params, "b_hn": np.zeros(H)})
    with torch.no_grad():
        out, _ = rnn(F.one_hot(torch.tensor(X).T, V).double(), torch.zeros(1, B, H).double())
    assert_rel(Y_hat, linear(out.reshape(-1, H)), what="logits")


def test_misshaped_or_missing_state_dict_entries_are_named():
    cfg = ModelConfig("lstm", V, H, num_layers=2)
    sd = nn_map.to_state_dict(cfg, random_params(cfg))
    bad = {**sd, "rnn.weight_hh_l1": sd["rnn.weight_hh_l1"][:, :2]}
    with pytest.raises(ParamError, match="'rnn.weight_hh_l1'"):
        nn_map.from_state_dict(cfg, bad)
    with pytest.raises(ParamError, match="'rnn.bias_ih_l1'"):
        nn_map.from_state_dict(cfg, {k: v for k, v in sd.items() if k != "rnn.bias_ih_l1"})
    with pytest.raises(ParamError, match="'linear.weight'"):
        nn_map.from_state_dict(cfg, {**sd, "linear.weight": sd["linear.weight"].T})


def test_modules_that_compute_something_else_are_refused():
    cfg = ModelConfig("rnn", V, H)
    linear = torch.nn.Linear(H, V)
    with pytest.raises(ConfigError, match="relu"):
        nn_map.from_nn_module(cfg, torch.nn.RNN(V, H, nonlinearity="relu"), linear)
    with pytest.raises(ConfigError, match="nn.RNN"):
        nn_map.from_nn_module(cfg, torch.nn.LSTM(V, H), linear)
    with pytest.raises(ConfigError, match="num_layers"):
        nn_map.from_nn_module(cfg, torch.nn.RNN(V, H, num_layers=2), linear)
    with pytest.raises(ConfigError, match="proj_size"):
        nn_map.from_nn_module(ModelConfig("lstm", V, H), torch.nn.LSTM(V, H, proj_size=2), linear)
    with pytest.raises(ConfigError, match="d2l form"):
        nn_map.to_nn_module(ModelConfig("gru", V, H), random_params(ModelConfig("gru", V, H)))
    params = nn_map.from_nn_module("lstm", torch.nn.LSTM(V, H, num_layers=2), linear)
    assert "W_hc_l1" in params  # sizes read off the module when the cell is a name
