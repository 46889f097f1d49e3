"""How far back does a gradient reach? Per-timestep ||dL/dH_t|| for rnn, lstm, gru and irnn.

Take one window of T characters and put the loss on the **last** prediction only,
L = CE(softmax(H_T W_hq + b_q), y_T), averaged over the B rows of the batch. Then
||dL/dH_{T-k}|| measures how strongly the state k steps back still moves that one
prediction: the signal BPTT has for learning a dependency k characters long. (With the
loss on every step, each dL/dH_t would be dominated by its own step's loss and the
decay would be hidden.)

Going back one step multiplies the gradient by the step's Jacobian:

    rnn:   dL/dH_{t-1} = (dL/dH_t ⊙ (1 - H_t²)) W_hhᵀ          a product of k such factors
    lstm:  dL/dC_{t-1} = dL/dC_t ⊙ F_t + ...                    F_t ≈ 1 keeps it alive
    gru:   dL/dH_{t-1} = dL/dH_t ⊙ Z_t + ...                    Z_t ≈ 1 keeps it alive

so the plain RNN's gradient shrinks geometrically with the size of W_hh (it vanishes),
while the LSTM's cell and the GRU's interpolation have an additive path whose factor is
a gate the network can learn to hold near 1. That is why the LSTM was invented.

How it is computed, with the NumPy backend's ``model_forward`` / ``model_backward`` and
nothing else: the forward runs one step at a time and keeps every state; the backward
walks back one step at a time, each ``model_backward`` call turning the gradient that
reaches a step's output state into the one reaching its input state (the ``dH_next`` /
``dC_next`` that the cells carry internally, made visible). It works unchanged for any
cell the backend has, and in float64 so that gradients of 1e-60 are still numbers.

A memory task reads its loss elsewhere (the adding problem at the last step, with the
squared error; the copy task on its last ten steps): ``loss_state_gradient_norms``
measures ||dL/dH_t|| for any such weighted loss, the same way, and ``relative_reach``
puts it as a share of the gradient where the loss is read; ``rnnlab train --task``
records it while a cell learns the task.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

import numpy as np

from .arguments import checked
from .backend import get_backend
from .config import ModelConfig
from .data.batches import _min_length
from .errors import ConfigError, CorpusError, NonFiniteError
from .numpy_backend.cells import CELLS as NUMPY_CELLS
from .numpy_backend.functional import (
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
    squared_error,
    squared_error_backward,
)
from .numpy_backend.model import (  # importing it registers every cell
    model_backward,
    model_forward,
)
from .params import init_params
from .threads import thread_tuner
from .train import Model, TrainConfig, train


INSPECT_CELLS = ("rnn", "lstm", "gru")  # rnnlab inspect's panel when no --cells are given


def available_cells() -> tuple[str, ...]:
    """The cells the NumPy backend implements, in the order rnn, lstm, gru, irnn."""
    return tuple(c for c in ("rnn", "lstm", "gru", "irnn") if c in NUMPY_CELLS)


def last_step_dlogits(logits: np.ndarray, y_last: np.ndarray) -> np.ndarray:
    """dL/dlogits for L = mean_b CE(logits of the last step, y_last): zero but the last B rows."""
    B = len(y_last)
    dlogits = np.zeros_like(logits)  # (T*B, V)
    z = logits[-B:] - logits[-B:].max(axis=1, keepdims=True)  # (B, V): the last step's rows
    p = np.exp(z)  # (B, V)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(B), y_last] -= 1  # softmax - one_hot
    dlogits[-B:] = p / B  # (B, V)
    return dlogits


def state_gradient_norms(cfg: ModelConfig, params: dict, X: np.ndarray, y_last: np.ndarray):
    """||dL/dH_t|| (and ||dL/dC_t|| for lstm) for t = T, T-1, ..., 0, loss on the last step.

    ``X`` (B, T) token ids, ``y_last`` (B,) the targets of the last step. Returns arrays
    indexed by k = steps back from the prediction: entry k is the norm at H_{T-k}
    (Frobenius over the (B, H) batch of states). The C norms are None for rnn and gru.

    BPTT one step at a time: the forward is run step by step, keeping every state; then
    walking back, step t is run again from the state before it and ``model_backward``
    takes the gradient reaching its output state (``dstate``) and returns the one
    reaching its input state, dL/dH_{t-1}: the ``dH_next`` of the cells, made visible.
    """
    if cfg.num_layers != 1 or cfg.bidirectional:
        raise ConfigError("state_gradient_norms reads one layer, one direction")
    B, T = X.shape
    params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    zeros = tuple(np.zeros((B, cfg.num_hiddens)) for _ in range(cfg.num_states))  # (B, H) each
    states = [zeros]  # states[t]: the state after reading t tokens, t = 0..T
    for t in range(T):
        _, st, _ = model_forward(cfg, params, X[:, t:t + 1], states[-1])
        states.append(st)
    dH = np.empty(T + 1)  # (T+1,): entry k is ||dL/dH_{T-k}||
    dC = np.empty(T + 1) if cfg.cell == "lstm" else None
    dstate = zeros  # nothing reaches H_T from beyond the prediction but the prediction
    for t in range(T, 0, -1):  # step t reads X[:, t-1] and maps state t-1 to state t
        logits, _, cache = model_forward(cfg, params, X[:, t - 1:t], states[t - 1])  # (B, V)
        if t == T:  # the loss reads the last step's logits only
            dlogits = last_step_dlogits(logits, y_last)  # (B, V)
            dH[0] = np.linalg.norm(dlogits @ params["W_hq"].T)  # dL/dH_T = dlogits W_hqᵀ
            if dC is not None:
                dC[0] = 0.0  # C_T reaches the loss only through H_T, inside this step
        else:
            dlogits = np.zeros_like(logits)  # (B, V): no loss on earlier steps
        _, dstate = model_backward(dlogits, dstate, cache)  # dL/d(state t-1)
        dH[T - t + 1] = np.linalg.norm(dstate[0])
        if dC is not None:
            dC[T - t + 1] = np.linalg.norm(dstate[1])
    return dH, dC


def weighted_dlogits(cfg: ModelConfig, logits: np.ndarray, Y: np.ndarray,
                     step_weights: np.ndarray) -> np.ndarray:
    """dL/dlogits (T*B, V) of the backends' weighted loss, L = (1/(T*B)) Σ_{t,b} w_t ℓ(t, b):
    the cross-entropy (or, ``head="mse"``, the squared error) read at the steps whose
    weight is not 0, exactly as ``loss_and_grads(..., weights=np.repeat(w, B))`` reads it."""
    B = Y.shape[0]
    weights = np.repeat(np.asarray(step_weights, np.float64), B)  # (T*B,): time-major
    targets = Y.T.reshape(-1)  # (T*B,): time-major, as the logits' rows
    if cfg.head == "softmax":
        return softmax_cross_entropy_backward(softmax_cross_entropy(logits, targets, weights)[1])
    return squared_error_backward(squared_error(logits, targets, weights)[1])  # (T*B, 1)


@checked
def loss_state_gradient_norms(cfg: Model, params: dict, X: np.ndarray, Y: np.ndarray,
                              step_weights: np.ndarray) -> np.ndarray:
    """||dL/dH_t|| for t = 0, 1, ..., T (H_t: the state after t steps, H_0 the zero
    start) for a loss read at the steps ``step_weights`` weighs (a memory task's: the
    adding problem's last step, the copy task's last ten), the generalisation of
    :func:`state_gradient_norms` (its loss: the last step's alone) to any weighted loss.

    ``X`` (B, T) ids or (B, T, In) reals, ``Y`` (B, T) targets, ``step_weights`` (T,).
    ``params`` of any backend, as NumPy arrays; computed in float64. Step t's logits are
    read off H_t, so the gradient reaching H_t is its own step's share plus what comes
    back from the later steps:

        dL/dH_t = dL/dlogits_t W_hqᵀ + (dL/dH_{t+1} through step t+1)

    the second term is what ``model_backward`` of step t+1 alone returns as the gradient
    of its input state; the first is added here, so the norm is of the whole gradient.
    """
    if cfg.num_layers != 1 or cfg.bidirectional:
        raise ConfigError("loss_state_gradient_norms reads one layer, one direction")
    X, Y, step_weights = np.asarray(X), np.asarray(Y), np.asarray(step_weights)
    if X.ndim != (2 if cfg.input_size is None else 3) or X.dtype.kind not in "iuf":
        raise ConfigError(f"loss_state_gradient_norms: X must be (B, T) token ids or, for a "
                          f"model with input_size, (B, T, In) reals; got {X.dtype} {X.shape}")
    B, T = X.shape[:2]
    if Y.shape != (B, T) or step_weights.shape != (T,) or step_weights.dtype.kind not in "iuf":
        raise ConfigError(f"loss_state_gradient_norms: X {X.shape} needs Y of shape {(B, T)} "
                          f"and numeric step_weights of shape {(T,)}, got {Y.shape} and "
                          f"{step_weights.dtype} {step_weights.shape}")
    params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    X = X if cfg.input_size is None else np.asarray(X, np.float64)
    zeros = tuple(np.zeros((B, cfg.num_hiddens)) for _ in range(cfg.num_states))  # (B, H) each
    states, logits = [zeros], []  # states[t]: the state after t steps, t = 0..T
    for t in range(T):
        out, st, _ = model_forward(cfg, params, X[:, t:t + 1], states[-1])  # (B, V)
        states.append(st)
        logits.append(out)
    dlogits = weighted_dlogits(cfg, np.concatenate(logits), Y, step_weights)  # (T*B, V)
    norms = np.empty(T + 1)  # (T+1,): entry t is ||dL/dH_t||
    dstate = zeros  # nothing reaches H_T from beyond the last step
    for t in range(T, 0, -1):  # step t reads X[:, t-1] and maps state t-1 to state t
        mine = dlogits[(t - 1) * B:t * B]  # (B, V): this step's share of dL/dlogits
        norms[t] = np.linalg.norm(dstate[0] + mine @ params["W_hq"].T)  # (B, H) summed
        _, _, cache = model_forward(cfg, params, X[:, t - 1:t], states[t - 1])
        _, dstate = model_backward(mine, dstate, cache)  # dL/d(state t-1), all of it
    norms[0] = np.linalg.norm(dstate[0])  # H_0 feeds no logits
    return norms


def relative_reach(norms: np.ndarray, step_weights: np.ndarray) -> np.ndarray:
    """``norms`` (T+1,) by step t as :func:`loss_state_gradient_norms` returns them, as a
    share of the largest one where the loss is read, and by k = steps back from the last
    step: entry k is ||dL/dH_{T-k}|| / max_{t read} ||dL/dH_t||, so k = 0 is 1 for a loss
    on the last step alone, and entry T is the start H_0."""
    norms = np.asarray(norms, np.float64)
    read = np.flatnonzero(np.asarray(step_weights) != 0) + 1  # H_t is read at step t (1-based)
    top = norms[read].max() if len(read) else norms.max()
    return norms[::-1] / top if top > 0 else np.zeros_like(norms)  # (T+1,) by steps back


@dataclass
class GradientFlow:
    """The per-step gradient norms of one cell, at initialisation and after training."""

    cell: str
    init: np.ndarray  # (T+1,) ||dL/dH_{T-k}|| at d2l's initialisation, k = 0..T
    trained: np.ndarray | None = None  # the same after training, None if not trained
    init_C: np.ndarray | None = None  # lstm: ||dL/dC_{T-k}||
    trained_C: np.ndarray | None = None
    train_ppl: float | None = None  # training perplexity reached
    extra: dict = field(default_factory=dict)

    def decay_per_step(self, which: str = "trained", k0: int = 5, k1: int = 30) -> float:
        """Geometric mean factor per step back between k0 and k1: (n[k1] / n[k0])^(1/(k1-k0))."""
        n = getattr(self, which)
        if n is None:
            return float("nan")
        k1 = min(k1, len(n) - 1)
        if k1 <= k0:
            return float("nan")
        with np.errstate(divide="ignore"):
            return float(np.exp((np.log(n[k1]) - np.log(n[k0])) / (k1 - k0)))


SLOW_F = 0.9  # a unit whose mean forget gate is above this keeps its cell ~10+ steps


def mean_forget_gate(cfg: ModelConfig, params: dict, X: np.ndarray) -> float:
    """Mean of the LSTM's forget gate F over the probe windows: the per-step factor of dC."""
    return forget_gate_summary(cfg, params, X)["mean_F"]


def forget_gate_summary(cfg: ModelConfig, params: dict, X: np.ndarray) -> dict:
    """The LSTM's forget gates on the probe windows, and how much gradient enters the cells.

    ``mean_F``: F averaged over steps, windows and units. ``slow_share``: the share of units
    whose mean F is above SLOW_F. Gradient enters a unit's cell from its hidden state as
    dL/dC_t += dL/dH_t ⊙ O_t ⊙ tanh'(C_t), so ``entry_slow`` / ``entry_fast`` are the mean
    of O ⊙ (1 - tanh²(C)) over the slow units and over the others (NaN where there are
    none): a unit can keep F near 1 and still pass no gradient, when its cell has grown
    large enough to saturate tanh."""
    B, H = X.shape[0], cfg.num_hiddens
    zeros = (np.zeros((B, H)), np.zeros((B, H)))  # (B, H) each
    _, _, cache = model_forward(cfg, {k: np.asarray(v, np.float64) for k, v in params.items()},
                                X, zeros)
    layer = cache.layers[0].cell
    gates = layer.gates  # (T, B, 4H): [I | F | O | C_tilda]
    F = gates[..., H:2 * H]  # (T, B, H)
    entry = gates[..., 2 * H:3 * H] * (1 - np.asarray(layer.tanh_C) ** 2)  # (T, B, H): O tanh'(C)
    slow = F.mean(axis=(0, 1)) > SLOW_F  # (H,)
    mean = lambda a: float(a.mean()) if a.size else float("nan")  # noqa: E731
    return {"mean_F": float(F.mean()), "slow_share": float(slow.mean()),
            "entry_slow": mean(entry[..., slow]), "entry_fast": mean(entry[..., ~slow])}


def probe_windows(corpus: np.ndarray, batch_size: int, window: int, seed: int):
    """B windows of T = ``window`` tokens at seeded random places, and each one's next token."""
    corpus = np.asarray(corpus)
    if len(corpus) < window + 2:
        raise CorpusError(f"inspecting a window of {window} steps needs at least {window + 2} "
                          f"tokens; the probe text has {len(corpus)}")
    rng = np.random.default_rng([seed, 2])
    starts = rng.integers(0, len(corpus) - window - 1, batch_size)  # (B,)
    X = corpus[starts[:, None] + np.arange(window)]  # (B, T)
    y_last = corpus[starts + window]  # (B,): the character after each window
    return X, y_last


def check_gradient_flow_inputs(train_tokens: int, probe_tokens: int, window: int, epochs: int,
                               train_batch_size: int = 32, num_steps: int = 35) -> None:
    """Refuse texts too short for the probes or the training, in the terms of what
    inspect does (not of options it does not have), before anything is computed."""
    if probe_tokens < window + 2:
        raise CorpusError(f"inspecting a window of {window} steps needs at least {window + 2} "
                          f"tokens; the probe text has {probe_tokens} (use a smaller --window, "
                          "or a longer corpus)")
    need = _min_length(train_batch_size, num_steps, False)
    if epochs > 0 and train_tokens < need:
        raise CorpusError(
            f"the trained panel trains each cell on batches of {train_batch_size} rows x "
            f"{num_steps} steps, which need at least {need:,} training tokens; the text has "
            f"{train_tokens:,}: use a longer corpus, or --epochs 0 for the panel at "
            "initialisation only")


def gradient_flow(cells, train_corpus: np.ndarray, probe_corpus: np.ndarray, vocab_size: int,
                  num_hiddens: int = 64, window: int = 100, batch_size: int = 16,
                  epochs: int = 20, optimizer: str = "adam", lr: float = 0.01,
                  train_batch_size: int = 32, num_steps: int = 35, forget_bias: float = 0.0,
                  seed: int = 0, on_cell=None, threads="auto") -> dict[str, GradientFlow]:
    """Per-step ||dL/dH|| of each cell on the same probe windows, at d2l's initialisation
    and (``epochs`` > 0) after training each cell the same way on ``train_corpus``
    (sequential partitioning, clipping at 1, float64, the given optimiser).

    Every cell starts from the same seed; one whose training diverges (the IRNN, whose
    ReLU state is unbounded, at a large rate) keeps ``trained`` None and the reason in
    ``extra["diverged"]``. ``forget_bias`` != 0 adds a variant labelled
    ``"lstm, b_f = +<forget_bias>"``: an LSTM whose forget-gate bias starts at that value,
    so F = σ(b_f) starts near 1 and the cell path forgets slowly. Returns {label: flow}.

    ``threads`` (rnnlab.threads): a count, or ``"auto"``, measured on the first training
    steps and kept for the rest, probes included.
    """
    check_gradient_flow_inputs(len(train_corpus), len(probe_corpus), window, epochs,
                               train_batch_size, num_steps)
    unknown = [c for c in cells if c not in available_cells()]
    if unknown:
        raise ConfigError(f"cell(s) {', '.join(unknown)} not available; the numpy backend has "
                          f"{', '.join(available_cells())}")
    variants = [(c, c, 0.0) for c in cells]
    if forget_bias != 0:
        variants.append((f"lstm, b_f = {forget_bias:+g}", "lstm", float(forget_bias)))
    X, y_last = probe_windows(probe_corpus, batch_size, window, seed)
    be = get_backend("numpy", dtype="float64")
    with thread_tuner(threads, be) as tuner:
        if epochs == 0:  # nothing to measure on: time one probe step of the first cell
            cfg = ModelConfig(variants[0][1], vocab_size, num_hiddens)
            p0 = init_params(cfg, seed=seed, dtype=np.float64)
            zeros = tuple(np.zeros((len(X), num_hiddens)) for _ in range(cfg.num_states))
            tuner.calibrate(lambda: model_forward(cfg, p0, X[:, :1], zeros))
        out = {}
        for label, cell, bias in variants:
            cfg = ModelConfig(cell, vocab_size, num_hiddens)
            params = init_params(cfg, seed=seed, dtype=np.float64)  # the same draws for every cell
            if bias:
                params["b_f"] += bias  # F = σ(b_f + ...) starts near σ(bias)
            init_H, init_C = state_gradient_norms(cfg, params, X, y_last)
            flow = GradientFlow(cell, init=init_H, init_C=init_C, extra={"forget_bias": bias})
            if cell == "lstm":
                flow.extra["gates_init"] = forget_gate_summary(cfg, params, X)
                flow.extra["mean_F_init"] = flow.extra["gates_init"]["mean_F"]
            if epochs > 0:
                p = be.from_numpy(params)
                tcfg = TrainConfig(num_epochs=epochs, lr=lr, batch_size=train_batch_size,
                                   num_steps=num_steps, optimizer=optimizer, seed=seed)
                try:
                    history = train(be, cfg, p, train_corpus, tcfg, tuner=tuner)
                except NonFiniteError as exc:  # (the IRNN at Adam's lr 0.01): a result, shown
                    flow.extra["diverged"] = str(exc)  # at initialisation alone, and said
                    history = None
                if history is not None:
                    flow.train_ppl = history[-1].train_ppl
                    flow.trained, flow.trained_C = state_gradient_norms(cfg, p, X, y_last)
                if cell == "lstm" and history is not None:
                    flow.extra["gates_trained"] = forget_gate_summary(cfg, p, X)
                    flow.extra["mean_F_trained"] = flow.extra["gates_trained"]["mean_F"]
            out[label] = flow
            if on_cell is not None:
                on_cell(label, flow)
        return out


def explain(flows: dict, num_steps: int = 35) -> list[str]:
    """The table of ``rnnlab inspect`` in words, read off its own numbers: what the factors
    mean, why each cell starts where it does, what training did to them, and what a
    forget-gate bias does and does not do. Lines of at most 92 characters."""
    trained = any(f.trained is not None for f in flows.values())
    which = "trained" if trained else "init"
    factor = lambda label, w=which: flows[label].decay_per_step(w)  # noqa: E731
    first = next(iter(flows))
    f0 = factor(first)
    paras = [("decay/step", f"the factor the gradient is multiplied by per step back (fitted over "
              f"k = 5..30); k=10 and k=50: the share of dL/dH_T left 10 and 50 steps back. "
              f"×{f0:.2f} per step ({first}) leaves {f0 ** num_steps:.1e} after {num_steps} "
              f"steps, the length of the training windows: what lies further back is never "
              f"learned from anyway.")]
    init = []
    if "rnn" in flows:
        init.append(f"rnn ×{factor('rnn', 'init'):.2f}: each step multiplies by tanh' times a "
                    "small W_hh, so the gradient vanishes")
    gated = [c for c in ("lstm", "gru") if c in flows]
    if gated:
        init.append(" and ".join(f"{c} ×{factor(c, 'init'):.2f}" for c in gated)
                    + ": their gates start at σ(0) = 1/2 and the state has an additive path")
    if "irnn" in flows:
        init.append(f"irnn ×{factor('irnn', 'init'):.2f}: W_hh starts at the identity and "
                    "ReLU' is 1 where a unit is on, so the gradient passes back almost "
                    "unchanged (Le et al. 2015)")
    if init:
        paras.append(("at init", "; ".join(init) + "."))
    if trained and "lstm" in flows and "rnn" in flows:
        lstm, rnn = factor("lstm"), factor("rnn")
        how = ("about as fast as" if abs(lstm - rnn) < 0.05 else
               "faster than" if lstm < rnn else "more slowly than")
        paras.append(("trained", f"lstm ×{lstm:.2f} shrinks the gradient {how} rnn ×{rnn:.2f}. "
                      "A gate can hold the gradient near 1; it does not have to. Trained on "
                      f"{num_steps}-step windows of a text whose next character depends mostly "
                      "on the last few, the gates learned to forget what no prediction needed."))
    for label, f in flows.items():
        bias = f.extra.get("forget_bias", 0.0)
        if not bias or "gates_init" not in f.extra:
            continue
        words = (f"starts every forget gate at F = σ({bias:g}) = {1 / (1 + np.exp(-bias)):.2f}: "
                 f"the cell passes the gradient back ×{factor(label, 'init'):.2f} per step at "
                 "initialisation, the constant error carousel.")
        g = f.extra.get("gates_trained")
        if g is not None:
            words += (f" Trained, {g['slow_share']:.0%} of its units keep F > {SLOW_F:g}, and "
                      f"it shrinks the gradient ×{factor(label):.2f} per step")
            if g["entry_slow"] < 0.25 * g["entry_fast"]:
                words += (f": those cells have grown until tanh saturates, O·tanh'(C) is "
                          f"{g['entry_slow']:.3f} in them against {g['entry_fast']:.3f} in the "
                          "others, so almost no gradient enters where F is near 1, and what "
                          "the prediction sends back runs through the units that forget.")
            else:
                words += "."
        paras.append((label.split(", ", 1)[-1], words))
    width = max(len(head) for head, _ in paras) + 2
    lines = ["how to read it:"]
    for head, text in paras:
        wrapped = textwrap.wrap(text, 92 - width - 2)
        lines += [f"  {head:<{width}}{wrapped[0]}"] + [" " * (width + 2) + w for w in wrapped[1:]]
    return lines
