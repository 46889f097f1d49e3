"""How far back does a gradient reach? Per-timestep ||dL/dH_t|| for rnn, lstm and gru.

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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .backend import get_backend
from .config import ModelConfig
from .data.batches import _min_length
from .errors import ConfigError, CorpusError
from .numpy_backend.cells import CELLS as NUMPY_CELLS
from .numpy_backend.model import (  # importing it registers every cell
    model_backward,
    model_forward,
)
from .params import init_params
from .threads import thread_tuner
from .train import TrainConfig, train


def available_cells() -> tuple[str, ...]:
    """The cells the NumPy backend implements, in the order rnn, lstm, gru."""
    return tuple(c for c in ("rnn", "lstm", "gru") if c in NUMPY_CELLS)


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
        k1 = min(k1, len(n) - 1)
        if n is None or k1 <= k0:
            return float("nan")
        with np.errstate(divide="ignore"):
            return float(np.exp((np.log(n[k1]) - np.log(n[k0])) / (k1 - k0)))


def mean_forget_gate(cfg: ModelConfig, params: dict, X: np.ndarray) -> float:
    """Mean of the LSTM's forget gate F over the probe windows: the per-step factor of dC."""
    B, H = X.shape[0], cfg.num_hiddens
    zeros = (np.zeros((B, H)), np.zeros((B, H)))  # (B, H) each
    _, _, cache = model_forward(cfg, {k: np.asarray(v, np.float64) for k, v in params.items()},
                                X, zeros)
    gates = cache.layers[0].cell.gates  # (T, B, 4H): [I | F | O | C_tilda]
    return float(gates[..., H:2 * H].mean())


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

    Every cell starts from the same seed. ``forget_bias`` != 0 adds a variant labelled
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
                flow.extra["mean_F_init"] = mean_forget_gate(cfg, params, X)
            if epochs > 0:
                p = be.from_numpy(params)
                tcfg = TrainConfig(num_epochs=epochs, lr=lr, batch_size=train_batch_size,
                                   num_steps=num_steps, optimizer=optimizer, seed=seed)
                history = train(be, cfg, p, train_corpus, tcfg, tuner=tuner)
                flow.train_ppl = history[-1].train_ppl
                flow.trained, flow.trained_C = state_gradient_norms(cfg, p, X, y_last)
                if cell == "lstm":
                    flow.extra["mean_F_trained"] = mean_forget_gate(cfg, p, X)
            out[label] = flow
            if on_cell is not None:
                on_cell(label, flow)
        return out
