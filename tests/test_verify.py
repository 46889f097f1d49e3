"""rnnlab.testing: the spec, the conventions, the properties and the report, on subjects
correct and wrong in every convention (the planted catalogue is in test_mutants.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from rnnlab.errors import ConfigError, SubjectError
from rnnlab.gradcheck import numeric_grad, relative_error
from rnnlab.numpy_backend.reference import REFERENCES
from rnnlab.testing import (CATALOGUE, Example, Progress, Protocol, assert_conforms, fused,
                            make_problem, verify)
from rnnlab.testing import conventions as cv
from rnnlab.testing.compare import tolerance
from rnnlab.testing.diagnosis import diagnose
from rnnlab.testing.loader import load
from rnnlab.testing.mistakes import combine
from rnnlab.testing.planted import planted
from rnnlab.testing.module_args import parse_options, split_call
from rnnlab.testing.rules import SPEC
from rnnlab.testing.spec import irnn_forward, run
from rnnlab.testing.strategies import Constraints, examples

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "verify"
SUBJECTS = ROOT / "tests" / "verify_subjects"
FAST = dict(max_examples=8)

CASES = [("rnn", "d2l"), ("lstm", "d2l"), ("gru", "d2l"), ("gru", "torch")]


def _loss(cell, p, params, X, state, rules=SPEC, split=None):
    r = run(cell, params, X, state, head=p.cons.head, dOut=p.dOut, dState=p.dState,
            targets=p.targets, rules=rules, split=split)
    L = r.loss if r.loss is not None else float(((r.Y if r.Y is not None else r.Hs) * p.dOut).sum())
    return L + sum(float((s * d).sum()) for s, d in zip(r.state, p.dState))


def _fd_check(cell, p, rules=SPEC):
    """Every gradient the spec gives (parameters, inputs, initial state) against central
    differences of its own forward under the same rules."""
    r = run(cell, p.params, p.X, p.state0, head=p.cons.head, dOut=p.dOut, dState=p.dState,
            targets=p.targets, rules=rules, split=p.split)
    params = {k: v.copy() for k, v in p.params.items()}
    X, state = p.X.copy(), [s.copy() for s in p.state0]
    split = {k: v.copy() for k, v in p.split.items()}

    def f():
        return _loss(cell, p, params, X, tuple(state), rules, split)

    # on the problem's gradient scale: a gradient of 1e-7 carries the same ~1e-12 of
    # finite-difference noise as the others
    G = max(np.abs(g).max() for g in [*r.grads.values(), r.dX, *r.dstate0])
    for k in params:
        # a bias kept in two arrays, b = b_ih + b_hh with b_hh = split[k]: b_ih moves b alone
        got = r.grads.get(f"{k}@ih", r.grads[k])
        assert np.abs(got - numeric_grad(f, params[k])).max() < 1e-7 * G, k
    for k in split:  # b_hh moves b and its half together
        moved = [numeric_grad(f, params[k]), numeric_grad(f, split[k])]
        got = r.grads.get(f"{k}@hh", r.grads[k])
        assert np.abs(got - moved[0] - moved[1]).max() < 1e-7 * G, f"{k} (its b_hh half)"
    assert np.abs(r.dX - numeric_grad(f, X)).max() < 1e-7 * G
    for k, s in enumerate(state):
        assert np.abs(r.dstate0[k] - numeric_grad(f, s)).max() < 1e-7 * G, f"state {k}"


@pytest.mark.parametrize("head", [None, "linear", "softmax", "logsoftmax"])
@pytest.mark.parametrize("cell,form", CASES)
@settings(max_examples=4)
@given(data=st.data())
def test_spec_gradients_are_its_own_derivatives(cell, form, head, data):
    """The spec's BPTT equals finite differences of its forward, for every parameter,
    the inputs and the initial state, under random upstream gradients."""
    cons = Constraints(cell, gru_form=form, head=head, one_hot=head is not None,
                       B=(1, 1) if head == "softmax" else (1, 3), T=(1, 4), H=(1, 3))
    _fd_check(cell, make_problem(cons, data.draw(examples(cons))))


@pytest.mark.parametrize("cell,form", CASES)
def test_spec_equals_the_numpy_backends_reference(cell, form):
    """The verify spec (dense inputs) and the backend's per-gate reference (token ids)
    compute the same numbers on one-hot inputs."""
    cons = Constraints(cell, gru_form=form, one_hot=True, head="linear")
    p = make_problem(cons, Example(3, 4, 5, 4, 1, True))
    r = run(cell, p.params, p.X, p.state0, head="linear", dOut=p.dOut)
    forward, backward = REFERENCES[cell]
    logits, _, cache = forward(p.params, p.ids.T, p.state0)
    assert relative_error(logits, r.Y.reshape(-1, r.Y.shape[-1])) < 1e-14
    g, ds = backward(p.params, p.dOut.reshape(-1, p.dOut.shape[-1]), cache)
    for k in g:
        assert relative_error(g[k], r.grads[k]) < 1e-13, k
    for a, b in zip(ds, r.dstate0):
        assert relative_error(a, b) < 1e-13


FORWARD_MISTAKES = [(m.name, c) for m in CATALOGUE.values() if m.kind == "forward"
                    and m.perm is None for c in sorted(m.cells)] + [
    ("lstm-gates-o-c-swapped", "lstm"), ("gru-gates-z-r-swapped", "gru")]


@pytest.mark.parametrize("name,cell", FORWARD_MISTAKES)
def test_a_forward_mistakes_gradients_are_the_true_gradients_of_its_forward(name, cell):
    """A subject with a wrong forward and a backward true to it (autograd, or CS231n code
    consistent with its own forward) is diagnosed by the mistake's gradients: they must be
    the derivatives of the mistaken forward."""
    m = CATALOGUE[name]
    form = "torch" if m.forms == frozenset({"torch"}) else "d2l"  # the form it is made in
    head = None if None in m.heads else min(m.heads, key=str)  # an output-layer mistake needs one
    cons = Constraints(cell, gru_form=form, head=head, one_hot=head is not None, bias_split=m.split)
    _fd_check(cell, make_problem(cons, Example(2, 3, 3, 2, 5)), m.rules)


@pytest.mark.parametrize("name,cell", [(n, c) for n, c in FORWARD_MISTAKES
                                       if "linear" in CATALOGUE[n].heads])
def test_a_forward_mistakes_gradients_hold_with_an_output_layer(name, cell):
    """The same under d2l's output layer, Y_t = (what is collected) W_hq + b_q: the
    layer's own gradients read what the mistaken forward collects."""
    m = CATALOGUE[name]
    form = "torch" if m.forms == frozenset({"torch"}) else "d2l"
    cons = Constraints(cell, gru_form=form, head="linear", one_hot=True, bias_split=m.split)
    _fd_check(cell, make_problem(cons, Example(2, 3, 3, 2, 5)), m.rules)


@pytest.mark.parametrize("layout", [
    cv.cs231n_layout("rnn"), cv.cs231n_layout("lstm"), cv.torch_nn_layout("rnn"),
    cv.torch_nn_layout("lstm"), cv.torch_nn_layout("gru"), cv.d2l_layout("gru"),
    cv.min_char_layout(), cv.rnnlab_layout("gru", "torch")], ids=lambda l: ",".join(l))
def test_convention_mappings_round_trip_both_ways(layout):
    """spec -> subject -> spec and subject -> spec -> subject are the identity."""
    rng = np.random.default_rng(0)
    parts = {p for b in layout.values() for p in b.parts}
    cell = "gru" if "W_xz" in parts or any("rzn" == "".join(b.labels) for b in layout.values()) else (
        "lstm" if any(len(b.parts) == 4 for b in layout.values()) else "rnn")
    D, H, V = 3, 2, 5
    params = {}
    for p in parts:
        params[p] = rng.standard_normal((D if p.startswith("W_x") else H, H) if p.startswith("W_x")
                                        or p.startswith("W_h") and p != "W_hq" else
                                        (H, V) if p == "W_hq" else (V,) if p == "b_q" else (H,))
    shared = {p for b in layout.values() for k, p in enumerate(b.parts) if b.shared and b.shared[k]}
    split = {p: rng.standard_normal(params[p].shape) for p in shared}
    subject = cv.to_subject(layout, params, split)
    back, split2 = cv.from_subject(layout, subject)
    assert set(back) == set(params)
    for k in params:
        np.testing.assert_allclose(back[k], params[k], rtol=0, atol=1e-15)
    again = cv.to_subject(layout, back, split2)
    for k in subject:
        np.testing.assert_allclose(again[k], subject[k], rtol=0, atol=1e-15)
    del cell


def test_torch_layout_reads_torch_nn_modules_exactly():
    """The torch.nn layout is torch.nn.LSTM's: its forward on mapped weights is the spec's."""
    torch = pytest.importorskip("torch")
    p = make_problem(Constraints("lstm", bias_split=True), Example(2, 3, 3, 4, 2))
    m = torch.nn.LSTM(3, 4).double()
    with torch.no_grad():
        for k, v in cv.to_subject(cv.torch_nn_layout("lstm"), p.params, p.split).items():
            getattr(m, k).copy_(torch.from_numpy(v))
    out, _ = m(torch.from_numpy(p.X), tuple(torch.from_numpy(s[None]) for s in p.state0))
    r = run("lstm", p.params, p.X, p.state0, dOut=p.dOut)
    assert relative_error(out.detach().numpy(), r.Hs) < 1e-13


def test_examples_replay_from_their_line():
    ex = Example(2, 3, 4, 5, 77)
    assert Example.parse(str(ex)) == ex
    assert Example.parse("B=1, T=2, V=3, H=1, seed=0", one_hot=True) == Example(1, 2, 3, 1, 0, True)
    cons = Constraints("lstm")
    a, b = make_problem(cons, ex), make_problem(cons, ex)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    for bad in ("B=1", "B=0 T=1 D=1 H=1 seed=0", "B=1 T=1 D=1 H=1 seed=0 Q=3"):
        with pytest.raises(ConfigError):
            Example.parse(bad)


# ------------------------------------------------------------- subjects, end to end

CORRECT = [
    (EX / "cs231n_correct.py", "cs231n"), (EX / "d2l_correct.py", "d2l"),
    (EX / "torch_nn_correct.py", "torch.nn"), (EX / "min_char_rnn.py", "min-char-rnn"),
    (SUBJECTS / "cs231n_float32.py", "cs231n"), (SUBJECTS / "d2l_variants.py", "d2l"),
    (f"{SUBJECTS / 'torch_nn_variants.py'}:GRUCellLoop", "torch.nn"),
    (f"{SUBJECTS / 'torch_nn_variants.py'}:RNN64", "torch.nn"),
    (f"{SUBJECTS / 'torch_nn_variants.py'}:LinearLSTM", "torch.nn"),
    (f"{SUBJECTS / 'torch_nn_builtin.py'}:TorchLSTM", "torch.nn"),
    (f"{SUBJECTS / 'torch_nn_builtin.py'}:TorchGRU", "torch.nn"),
    (f"{SUBJECTS / 'torch_nn_builtin.py'}:rnn_factory", "torch.nn"),
    (SUBJECTS / "min_char_rnn_py2.py", "min-char-rnn"),
    (EX / "d2l_classes_correct.py", "d2l"),
    (SUBJECTS / "students" / "min_char_args.py", "min-char-rnn"),
    (EX / "torch_gru_gates_correct.py", "torch.nn"),
    (f"{SUBJECTS / 'torch_nn_gates.py'}:D2LFormGRU", "torch.nn"),
    (f"{SUBJECTS / 'torch_nn_gates.py'}:DocsNamesGRU", "torch.nn"),
    (f"{SUBJECTS / 'torch_nn_gates.py'}:GateLSTM", "torch.nn"),
    (SUBJECTS / "students" / "torch_lstm_gate_params.py", "torch.nn"),
    (SUBJECTS / "students" / "torch_gru_gate_params.py", "torch.nn"),
    (f"{EX / 'torch_batch_first_correct.py'}:BatchLSTM(batch_first=True)", "torch.nn"),
    (f"{SUBJECTS / 'torch_nn_options.py'}:BatchFirstGRU", "torch.nn"),
    (f"{SUBJECTS / 'torch_nn_options.py'}:BatchFirstLoopLSTM(batch_first=True)", "torch.nn"),
    (f"{SUBJECTS / 'torch_nn_options.py'}:TaggerRNN(output_size=4)", "torch.nn"),
    (f"{SUBJECTS / 'torch_nn_options.py'}:DefaultBatchFirstRNN", "torch.nn"),
    (EX / "torch_tutorial_correct.py", "torch-tutorial"),
    (EX / "torch_tutorial_charrnn.py", "torch-tutorial"),
]


@pytest.mark.parametrize("target,convention", CORRECT, ids=lambda x: Path(str(x)).name)
def test_correct_implementations_conform(target, convention):
    """Independent correct implementations, float32 and float64, vectorised and looped,
    torch.nn's own modules, Karpathy's Python 2 script: every property holds."""
    if convention in ("torch.nn", "d2l", "torch-tutorial"):
        pytest.importorskip("torch")
    r = verify(str(target), convention, **FAST)
    assert r.ok, r.render()
    assert r.exit_status == 0


BUGGY = [  # file, convention, the mistake(s) the diagnosis must name, the arrays at fault
    ("cs231n_buggy.py", "cs231n", {"dropped-hidden-carry", "lstm-forgot-c-path"}, {"dh0", "dWh"}),
    ("d2l_buggy.py", "d2l", {"gru-update-swapped"}, {"outputs", "H_T"}),
    ("torch_nn_buggy.py", "torch.nn", {"lstm-gates-o-c-swapped"}, {"output", "weight_ih_l0.grad"}),
    ("min_char_rnn_buggy.py", "min-char-rnn", {"tanh-derivative-one-minus-y"}, {"dWxh"}),
    ("d2l_classes_buggy.py", "d2l", {"lstm-forget-gate-on-H"}, {"outputs", "C_T"}),
    ("torch_gru_gates_buggy.py", "torch.nn", {"gru-r-from-z-weights"}, {"output", "x2r.weight.grad"}),
    ("torch_tutorial_buggy.py", "torch-tutorial", {"tutorial-linear-recurrence-late-output"},
     {"output", "i2h.weight.grad", "i2o.weight.grad", "hidden_0.grad"}),
]


@pytest.mark.parametrize("name,convention,mistakes,arrays", BUGGY, ids=[b[0] for b in BUGGY])
def test_buggy_examples_fail_with_the_mistake_named(name, convention, mistakes, arrays):
    if convention in ("torch.nn", "d2l", "torch-tutorial"):
        pytest.importorskip("torch")
    r = verify(str(EX / name), convention, **FAST)
    assert not r.ok and r.exit_status == 1
    named = {n for u in r.units for m in u.diagnosis if m.full for n in m.mistakes}
    assert named == mistakes, r.render()
    differing = {d.quantity for u in r.units for p in u.properties for d in p.differences}
    assert arrays <= differing, r.render()
    text = r.render()
    assert "smallest failing example: B=" in text and "known mistake" in text


def test_a_fused_weight_is_localised_to_its_gate_block_and_steps(tmp_path):
    """Only the forget gate's σ' wrong: in one step, dWx, dWh and db differ in block f
    alone. A dropped carry: dx differs at every step but the last."""
    src = (EX / "cs231n_correct.py").read_text()
    f = tmp_path / "sol.py"
    f.write_text(src.replace("df * f * (1 - f)", "df * f"))
    r = verify(str(f), "cs231n", "lstm", **FAST)
    step, seq = r.units
    grads = {d.quantity: d for p in step.properties if p.name == "gradients" for d in p.differences}
    assert grads["dWx"].gates == ["f"] and grads["db"].gates == ["f"] and grads["dWh"].gates == ["f"]
    assert [m.mistakes for m in step.diagnosis if m.full] == [["lstm-f-sigmoid-derivative-s"]]
    # a dropped carry: the backward is right at the last step and wrong before it
    r = verify(str(EX / "cs231n_buggy.py"), "cs231n", "rnn", **FAST)
    seq = r.units[1]
    grads = {d.quantity: d for p in seq.properties if p.name == "gradients" for d in p.differences}
    T = grads["dx"].T
    assert T >= 2 and grads["dx"].steps == list(range(T - 1)), grads["dx"]
    assert f"first differs at step {T - 2}" in grads["dx"].detail


def test_an_exception_in_the_subject_is_a_failure_with_its_place(tmp_path):
    f = tmp_path / "sol.py"
    f.write_text((EX / "cs231n_correct.py").read_text().replace(
        "    N, T, D = x.shape\n    H = h0.shape[1]\n    h = np.zeros((N, T, H))",
        "    N, T, D = x.shape\n    H = h0.shape[1]\n    assert N > 1, 'one row'\n    h = np.zeros((N, T, H))"))
    r = verify(str(f), "cs231n", "rnn", **FAST)
    fwd = next(p for p in r.units[1].properties if p.name == "forward")
    assert fwd.verdict == "FAIL" and fwd.example.startswith("B=1 ")
    assert "AssertionError: one row (at sol.py:" in fwd.error and "in rnn_forward" in fwd.error


def test_usage_problems_are_one_line_subject_errors(tmp_path):
    (tmp_path / "sig.py").write_text("def rnn_step_forward(x, h):\n    return x\n")
    (tmp_path / "imp.py").write_text("import numpy\nx = undefined_name\n")
    (tmp_path / "mc.py").write_text("def lossFun(a, b, c):\n    return 1, 2\n")
    cases = [
        (str(tmp_path / "missing.py"), "cs231n", "missing.py: no such file"),
        (str(tmp_path / "sig.py"), "cs231n", "rnn_step_forward(x, prev_h, Wx, Wh, b) expected"),
        (str(tmp_path / "imp.py"), "d2l", "cannot import imp.py: NameError: name 'undefined_name'"),
        (str(tmp_path / "mc.py"), "cs231n", "mc.py has none of rnn_step_forward"),
        (str(tmp_path / "mc.py"), "min-char-rnn", "lossFun returned 2 values, expected (loss, dWxh"),
        (str(tmp_path / "sig.py"), "min-char-rnn", "lossFun(inputs, targets, hprev) not found"),
    ]
    for target, conv, msg in cases:
        with pytest.raises(SubjectError) as e:
            verify(target, conv)
        assert msg in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_assert_conforms_raises_the_report_and_returns_it_on_success():
    report = assert_conforms(planted("protocol", "gru"), max_examples=3)
    assert report.ok
    with pytest.raises(AssertionError) as e:
        assert_conforms(planted("protocol", "lstm", "lstm-dropped-cell-carry"), max_examples=3)
    assert "known mistake lstm-dropped-cell-carry" in str(e.value)


def test_the_report_is_deterministic_and_serialises():
    a = verify(str(EX / "min_char_rnn_buggy.py"), "min-char-rnn", max_examples=10, seed=3)
    b = verify(str(EX / "min_char_rnn_buggy.py"), "min-char-rnn", max_examples=10, seed=3)
    assert a.render() == b.render()
    d = json.loads(a.to_json())
    assert d["ok"] is False and d["units"][0]["diagnosis"][0]["mistakes"] == ["tanh-derivative-one-minus-y"]
    # the smallest example replays: the same failure on that one example
    ex = next(p.example for p in a.units[0].properties if p.verdict == "FAIL")
    c = verify(str(EX / "min_char_rnn_buggy.py"), "min-char-rnn", example=ex)
    assert not c.ok and all(p.example in (None, ex) for p in c.units[0].properties)


def test_rnnlabs_own_fused_cells_conform_through_the_protocol():
    """The backends are subjects too: the fused NumPy cells (one matmul for every gate),
    through the Protocol with their own fused layout."""
    from rnnlab.numpy_backend.cells import CELLS

    for cell, order in (("rnn", "h"), ("irnn", "h"), ("lstm", "ifoc"), ("gru", "zrh")):
        fwd, bwd = CELLS[cell]

        def forward(p, X, state, fwd=fwd):
            Hs, sT, _ = fwd(X @ p["W_x"] + p["b"], p["W_h"], tuple(state))
            return Hs, sT

        def backward(p, X, state, dHs, dstate, fwd=fwd, bwd=bwd):
            _, _, cache = fwd(X @ p["W_x"] + p["b"], p["W_h"], tuple(state))
            dXW, dW_h, ds = bwd(dHs, dstate, cache)[:3]
            return ({"W_x": np.einsum("tbd,tbg->dg", X, dXW), "W_h": dW_h,
                     "b": dXW.sum((0, 1))}, dXW @ p["W_x"].T, ds)

        layout = {"W_x": fused("W_x", order, cell), "W_h": fused("W_h", order, cell),
                  "b": fused("b_", order, cell)}
        assert_conforms(Protocol(cell, forward, backward, layout=layout, name=f"fused {cell}"),
                        max_examples=10)


def _one_layer_rnn(act, dact):
    """A hand-written one-layer rnn in rnnlab's names, H_t = act(X_t W_xh + H_{t-1} W_hh +
    b_h), with its BPTT: a Protocol subject as a student would write one."""
    def forward(p, X, state):
        (H,) = state
        Hs = []
        for X_t in X:
            H = act(X_t @ p["W_xh"] + H @ p["W_hh"] + p["b_h"])  # (B, H)
            Hs.append(H)
        return np.stack(Hs), (H,)

    def backward(p, X, state, dHs, dstate):
        (H0,) = state
        Hs, _ = forward(p, X, state)  # (T, B, H)
        prev = np.concatenate([H0[None], Hs[:-1]])  # (T, B, H): H_{t-1}
        g = {k: np.zeros_like(v) for k, v in p.items()}
        dX, (dH_next,) = np.zeros_like(X), dstate  # (T, B, D), (B, H)
        for t in reversed(range(len(X))):
            A = X[t] @ p["W_xh"] + prev[t] @ p["W_hh"] + p["b_h"]  # (B, H)
            dA = (dHs[t] + dH_next) * dact(A, Hs[t])  # (B, H)
            g["W_xh"] += X[t].T @ dA
            g["W_hh"] += prev[t].T @ dA
            g["b_h"] += dA.sum(0)
            dX[t] = dA @ p["W_xh"].T  # (B, D)
            dH_next = dA @ p["W_hh"].T  # (B, H)
        return g, dX, (dH_next,)

    return forward, backward


def test_the_irnn_is_verified_through_the_protocol():
    """A Protocol subject declaring cell "irnn" is held to ReLU (Le, Jaitly & Hinton 2015):
    a ReLU subject conforms, the same code with tanh (the rnn) fails its forward."""
    relu = _one_layer_rnn(lambda A: np.maximum(A, 0.0), lambda A, H: (A > 0).astype(A.dtype))
    assert_conforms(Protocol("irnn", *relu, name="my irnn"), max_examples=10)
    tanh = _one_layer_rnn(np.tanh, lambda A, H: 1 - H * H)
    assert_conforms(Protocol("rnn", *tanh, name="my rnn"), max_examples=10)  # a correct rnn
    report = verify(Protocol("irnn", *tanh, name="tanh irnn"), max_examples=10)
    assert not report.ok and report.exit_status == 1
    verdicts = {p.name: p.verdict for p in report.units[0].properties}
    assert verdicts["forward"] == "FAIL", report.render()


@pytest.mark.parametrize("dtype,margin", [("float64", 1e-4), ("float32", 3e-2)])
def test_irnn_problems_keep_away_from_relus_kink(dtype, margin):
    """Central differences across ReLU's kink disagree with a correct backward: verify
    draws the irnn's problems with every pre-activation farther from 0 than ten of their
    steps, the same problem for the same seed."""
    cons = Constraints("irnn")
    for seed in range(150):
        p = make_problem(cons, Example(4, 6, 5, 5, seed), dtype)
        A = irnn_forward(p.params, p.X, p.state0)[2].A  # (T, B, H)
        assert np.abs(A).min() > margin, seed
    again = make_problem(cons, Example(4, 6, 5, 5, 7), dtype)
    first = make_problem(cons, Example(4, 6, 5, 5, 7), dtype)
    assert all(np.array_equal(first.params[k], again.params[k]) for k in first.params)


def test_progress_appears_only_after_a_few_seconds():
    t = [0.0]
    out = io.StringIO()
    p = Progress(out, after=3.0, clock=lambda: t[0])
    p.step("lstm", "forward", 1, 6)
    t[0] = 4.0
    p.step("lstm", "gradients", 2, 6)
    p.done()
    lines = out.getvalue().splitlines()
    assert lines == ["rnnlab verify: lstm: gradients (2/6), 4 s so far", "rnnlab verify: done in 4 s"]


def test_two_linear_layers_are_read_as_torch_nn_weights():
    """A module of two nn.Linear layers (a tutorial's LSTM) is checked with them as
    weight_ih_l0/bias_ih_l0 and weight_hh_l0/bias_hh_l0, and the report says so."""
    pytest.importorskip("torch")
    r = verify(f"{SUBJECTS / 'torch_nn_variants.py'}:LinearLSTM", "torch.nn", **FAST)
    assert r.ok, r.render()
    assert "ih (nn.Linear(" in r.render() and "as weight_ih_l0 and bias_ih_l0" in r.render()


TUTORIAL = [  # PyTorch's char-RNN tutorial module as published and half mended: what is named
    (EX / "torch_tutorial_buggy.py", "tutorial-linear-recurrence-late-output",
     ("a linear recurrence: no tanh on the new hidden state; the output is computed from the "
      "input and the previous hidden state, one step late")),
    (SUBJECTS / "students" / "tutorial_tanh_only.py", "output-one-step-late",
     "the output is computed from the input and the previous hidden state, one step late"),
    (SUBJECTS / "students" / "tutorial_no_tanh.py", "linear-recurrence",
     "a linear recurrence: no tanh on the new hidden state"),
]


@pytest.mark.parametrize("target,mistake,words", TUTORIAL, ids=lambda x: Path(str(x)).name)
def test_the_char_rnn_tutorial_module_is_told_what_it_computes(target, mistake, words):
    """The tutorial's first form is a linear recurrence whose output reads the previous
    hidden state: named so, and each half alone by its own name, because the numbers of
    that mistake (and of no other) reproduce every array the module returns."""
    pytest.importorskip("torch")
    r = verify(str(target), "torch-tutorial", **FAST)
    assert not r.ok and r.exit_status == 1
    (unit,) = r.units
    assert [m.mistakes for m in unit.diagnosis if m.full] == [[mistake]], r.render()
    assert words in r.render()


def test_the_newer_char_rnn_reading_the_first_step_fails_on_its_output_and_names_nothing():
    pytest.importorskip("torch")
    r = verify(str(EX / "torch_tutorial_charrnn_buggy.py"), "torch-tutorial", **FAST)
    assert not r.ok and r.exit_status == 1
    fwd = next(p for u in r.units for p in u.properties if p.name == "forward")
    assert [d.quantity for d in fwd.differences] == ["output"], r.render()
    assert not any(m.full for u in r.units for m in u.diagnosis), r.render()
    assert "no known mistake reproduces every array" in r.render()


def test_a_module_that_is_not_the_tutorials_is_refused_with_its_layers():
    pytest.importorskip("torch")
    with pytest.raises(SubjectError) as e:
        verify(str(EX / "torch_gru_gates_correct.py"), "torch-tutorial")
    msg = str(e.value)
    assert "defines no nn.Module class built as (input_size, hidden_size, output_size)" in msg, msg
    with pytest.raises(SubjectError) as e:
        verify(f"{SUBJECTS / 'torch_nn_options.py'}:TaggerLSTM", "torch-tutorial")
    msg = str(e.value)
    assert "TaggerLSTM(3, 2, 3) is not the tutorial's module (torch-tutorial convention: " in msg, msg
    assert "it has h2o = nn.Linear(2, 3), lstm = nn.LSTM" in msg and "\n" not in msg, msg


BATCH_FIRST = [  # a module built batch-first, and what says so
    (f"{EX / 'torch_batch_first_correct.py'}:BatchLSTM(batch_first=True)", "its batch_first is True"),
    (f"{SUBJECTS / 'torch_nn_options.py'}:BatchFirstGRU", "its gru has batch_first=True"),
    (f"{SUBJECTS / 'torch_nn_options.py'}:DefaultBatchFirstRNN",
     "its constructor's batch_first defaults to True"),
]


@pytest.mark.parametrize("target,why", BATCH_FIRST, ids=lambda x: Path(str(x)).name)
def test_a_batch_first_module_is_read_as_batch_first(target, why):
    """Built with batch_first=True (its attribute, or an inner nn.GRU's): called with x
    (B, T, D), its output read as (B, T, H); the report says so (both pass in CORRECT)."""
    pytest.importorskip("torch")
    loaded = load(target, "torch.nn", None)
    try:
        (unit,) = loaded.units
        assert unit.batch_first and any(f"batch-first ({why})" in n for n in unit.notes), unit.notes
        assert unit.quantities()["output"].time_axis == 1
    finally:
        loaded.close()
    assert "built as BatchLSTM(input_size, hidden_size, batch_first=True)" in load(
        BATCH_FIRST[0][0], "torch.nn", None).units[0].notes


def test_a_batch_first_module_returning_time_major_output_fails_on_the_outputs_shape():
    """The module that stacks its outputs time-major all the same fails, the output's
    shape said in the module's own (B, T, H) terms."""
    pytest.importorskip("torch")
    r = verify(f"{EX / 'torch_batch_first_buggy.py'}:BatchLSTM(batch_first=True)", "torch.nn", **FAST)
    assert not r.ok and r.exit_status == 1
    fwd = next(p for u in r.units for p in u.properties if p.name == "forward")
    assert fwd.verdict == "FAIL" and fwd.example == "B=1 T=2 D=1 H=1 seed=0", r.render()
    shape = {d.quantity: d.message for d in fwd.differences}["output"]
    assert shape == "has shape (2, 1, 1), expected (1, 2, 1)", r.render()
    # its numbers are right in the other order, and its gradients those of h_n and c_n alone
    # (an output of the wrong shape is left out of the loss): the layout is named
    assert {n for u in r.units for m in u.diagnosis if m.full for n in m.mistakes} == {
        "time-batch-axes-exchanged"}, r.render()
    assert "left out of the loss the gradients are checked on" in r.render()


BAD_OPTIONS = [  # options in the target, what the one-line refusal says
    ("(output_size=4, num_layers=2)", ("num_layers=2 cannot be checked: rnnlab's spec is one "
                                       "recurrent layer")),
    ("(output_size=4, bidirectional=True)", "rnnlab's spec runs forwards only"),
    ("(4)", "give the constructor's other arguments by keyword"),
    ("(output_size=four)", "output_size=four is not a literal"),
    ("(output_size=4", "not a call rnnlab can read ('(' was never closed)"),
    ("(hidden_size=4)", "rnnlab chooses hidden_size for every example it draws"),
    ("(output_size=__import__('os'))", "is not a literal"),
    ("(**kw)", "** is not read"),
]


@pytest.mark.parametrize("args,msg", BAD_OPTIONS, ids=[b[0] for b in BAD_OPTIONS])
def test_bad_constructor_options_are_refused_in_one_line(args, msg):
    target, found = split_call(f"sol.py:TaggerRNN{args}")
    assert target == "sol.py:TaggerRNN" and found == args
    with pytest.raises(SubjectError) as e:
        parse_options("TaggerRNN", found)
    assert msg in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_constructor_options_reach_the_class_and_what_it_lacks_is_said():
    """Good options parse to their values; a constructor that needs an argument the target
    does not give, or is given one it does not take, is refused saying how to write it."""
    pytest.importorskip("torch")
    assert parse_options("Net", "(output_size=5, batch_first=True, name='a', bias=True)") == {
        "output_size": 5, "batch_first": True, "name": "a", "bias": True}
    for name, msg in [
        ("TaggerRNN", ("missing 1 required positional argument: 'output_size' (torch.nn "
                       "convention: TaggerRNN(input_size, hidden_size); give its other arguments "
                       "in the target, FILE:TaggerRNN(output_size=...))")),
        ("TaggerRNN(outptu_size=4)", ("TaggerRNN takes no argument outptu_size; its constructor "
                                      "is TaggerRNN(input_size, hidden_size, output_size, "
                                      "num_layers=1)"))]:
        with pytest.raises(SubjectError) as e:
            verify(f"{SUBJECTS / 'torch_nn_options.py'}:{name}", "torch.nn")
        assert msg in str(e.value) and "\n" not in str(e.value), str(e.value)
    with pytest.raises(SubjectError, match="constructor arguments are read for a torch.nn module "
                                           "class only, not under the cs231n convention"):
        verify(f"{EX / 'cs231n_correct.py'}:rnn_forward(a=1)", "cs231n")


GATE_FORMS = [  # a module of one nn.Linear per gate and source: the GRU form read, and how
    (EX / "torch_gru_gates_correct.py", "torch.nn's form, tanh(x2n(x) + r * h2n(h))"),
    (f"{SUBJECTS / 'torch_nn_gates.py'}:D2LFormGRU", "d2l's form, tanh(W_xh(x) + W_hh(r * h))"),
    (EX / "torch_gru_gates_buggy.py", "torch.nn's form"),  # its wrong gate r does not decide it
]


@pytest.mark.parametrize("target,form", GATE_FORMS, ids=lambda x: Path(str(x)).name)
def test_per_gate_linear_layers_are_read_in_the_form_the_forward_is_written(target, form):
    pytest.importorskip("torch")
    loaded = load(str(target), "torch.nn", None)
    try:
        (unit,) = loaded.units
        assert unit.cell == "gru" and any(form in n for n in unit.notes), unit.notes
        assert unit.cons.gru_form == ("d2l" if "d2l's" in form else "torch")
    finally:
        loaded.close()


def test_per_gate_layers_whose_names_do_not_say_their_gates_are_refused_with_the_layers():
    pytest.importorskip("torch")
    with pytest.raises(SubjectError) as e:
        verify(f"{SUBJECTS / 'torch_nn_gates.py'}:UnnamedGates", "torch.nn")
    msg = str(e.value)
    assert "one nn.Linear per gate and source named by its gate, x2r/h2r" in msg, msg
    assert "a = nn.Linear(3, 2)" in msg and "b = nn.Linear(2, 2)" in msg and "\n" not in msg


def test_stacked_outputs_are_named_as_the_wrong_shape():
    """d2l's functions return torch.cat(outputs) of shape (T*B, V): a subject returning
    them stacked, (T, B, V), fails with that said, not with a broadcast error."""
    pytest.importorskip("torch")
    r = verify(str(SUBJECTS / "d2l_stacked.py"), "d2l", **FAST)
    assert not r.ok and r.exit_status == 1
    text = r.render()
    assert "concatenated, torch.cat(outputs, dim=0) of shape (T*B, V)" in text, text
    assert {n for u in r.units for m in u.diagnosis if m.full for n in m.mistakes} == {
        "outputs-stacked"}, text


DEFAULT_STATE = [  # a subject that starts elsewhere than zeros when called without a state,
    # and the name it is given: ones are named; 0.5 without a batch axis is not a known start
    (f"{SUBJECTS / 'students' / 'torch_nn_ones_default.py'}:OnesLSTM", "torch.nn",
     "default-state-ones"),
    (SUBJECTS / "students" / "d2l_class_default_shape.py", "d2l", None),
    (SUBJECTS / "students" / "d2l_class_lstm_default_cell_ones.py", "d2l",
     "lstm-default-cell-state-ones"),
    (SUBJECTS / "students" / "d2l_class_rnn_default_ones_on_a_base.py", "d2l", "default-state-ones"),
    # a state of another shape (the call fails, or broadcasts), or a random one (two calls differ)
    (SUBJECTS / "students" / "d2l_class_default_state_steps_for_batch.py", "d2l",
     "default-state-wrong-shape"),
    (SUBJECTS / "students" / "d2l_class_default_state_random.py", "d2l", "default-state-random"),
]


@pytest.mark.parametrize("target,convention,name", DEFAULT_STATE, ids=lambda x: Path(str(x)).name)
def test_a_wrong_default_state_fails_the_default_state_property_alone(target, convention, name):
    """nn.LSTM's contract, and d2l's forward(inputs, state=None), start from zeros: a module
    that starts from ones, or from a state of the wrong shape, is caught, while every
    property run with an explicit state holds; a start of ones is named."""
    pytest.importorskip("torch")
    r = verify(str(target), convention, **FAST)
    verdicts = {p.name: p.verdict for u in r.units for p in u.properties}
    assert verdicts.pop("default-state") == "FAIL", r.render()
    assert "FAIL" not in verdicts.values(), r.render()
    named = {n for u in r.units for m in u.diagnosis if m.full for n in m.mistakes}
    assert named == ({name} if name else set()), r.render()
    if name is None:
        assert "what fails above is the state it starts from when called without one" in r.render()


def test_min_char_rnn_with_its_weights_in_a_dict_is_read_and_diagnosed():
    """lossFun(inputs, targets, hprev, model): the weights as one dict instead of globals,
    said in a note; its dropped carry is named as in Karpathy's own form."""
    r = verify(str(SUBJECTS / "students" / "min_char_dict_buggy.py"), "min-char-rnn", **FAST)
    assert any("one dict, model" in n for u in r.units for n in u.notes), r.render()
    assert {n for u in r.units for m in u.diagnosis if m.full for n in m.mistakes} == {
        "dropped-hidden-carry"}, r.render()


PAIRS = [("protocol", "lstm", "lstm-dF-from-C_t", "bias-grad-mean"),
         ("cs231n", "rnn", "dW_h-from-H_t", "tanh-derivative-one-minus-y"),
         ("protocol", "gru", "gru-update-swapped", "dH0-zero"),
         ("cs231n", "lstm", "lstm-o-sigmoid-derivative-missing", "lstm-dc-prev-without-f")]


@pytest.mark.parametrize("convention,cell,a,b", PAIRS, ids=[f"{p[2]}+{p[3]}" for p in PAIRS])
def test_two_mistakes_at_once_are_named_as_a_pair(convention, cell, a, b):
    """No one mistake reproduces the numbers; the two together do, on both examples, and
    the diagnosis says so with both names (not one of them alone, which would be wrong)."""
    both = combine(CATALOGUE[a], CATALOGUE[b])
    loaded = load(planted(convention, cell, both.rules), convention, cell)
    try:
        unit = loaded.units[-1]  # the sequence functions (CS231n's steps see one of the two)
        matches, _ = diagnose(unit, tolerance(unit.dtype), [])
    finally:
        loaded.close()
    assert [sorted(m.mistakes) for m in matches] == [sorted([a, b])], matches


def test_a_pair_is_reported_as_two_mistakes_both_described():
    both = combine(CATALOGUE["dW_h-from-H_t"], CATALOGUE["tanh-derivative-one-minus-y"])
    text = verify(planted("cs231n", "rnn", both.rules), "cs231n", max_examples=3).render()
    assert ("known mistakes tanh-derivative-one-minus-y + dW_h-from-H_t: every array matches "
            "the spec with both mistakes:") in text, text
    for m in ("dW_h-from-H_t", "tanh-derivative-one-minus-y"):
        assert CATALOGUE[m].title in text, text
