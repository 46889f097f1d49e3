"""A bidirectional GRU sequence tagger, trained with the NumPy backend's hand-written BPTT.

A bidirectional layer reads the window forwards and backwards, so its output at step t
depends on every token, after t as well as before. That is exactly why it cannot be a
language model of the next character (it would read the answer: ``rnnlab.train``
refuses one), and why it makes a good tagger or encoder.

The task needs both sides. Tokens are random digits 0..9; the tag of position t says
how X_t compares with its two neighbours (a missing neighbour counts as -inf)::

    tag_t = 2 * [X_t > X_{t-1}] + [X_t > X_{t+1}]     (0 valley, 1 falling, 2 rising, 3 peak)

A left-to-right model knows X_{t-1} but must guess X_{t+1}: no such model can beat
77% accuracy at T = 12 (``causal_ceiling``). The bidirectional model learns the rule exactly. Tags are ids 0..3 of the
same 10-way output layer (the model's contract has V outputs; 4 of them are used).

    python examples/bidirectional_tagger.py [--cell gru] [--layers 2] [--dropout 0.1] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import rnnlab
from rnnlab.config import ModelConfig
from rnnlab.dropout import dropout_masks
from rnnlab.errors import ConfigError
from rnnlab.train import TrainConfig

V = 10  # digits 0..9 in, tags 0..3 out (read off the first 4 of V logits)


def make_batch(rng: np.random.Generator, batch_size: int, num_steps: int):
    """Random digits X (B, T) and their neighbour-comparison tags Y (B, T)."""
    X = rng.integers(0, V, (batch_size, num_steps))  # (B, T)
    edge = np.full((batch_size, 1), -1)  # (B, 1): the missing neighbour, below every digit
    prev = np.concatenate([edge, X[:, :-1]], axis=1)  # (B, T): X_{t-1}
    nxt = np.concatenate([X[:, 1:], edge], axis=1)  # (B, T): X_{t+1}
    return X, 2 * (X > prev) + (X > nxt)  # (B, T) tags in 0..3


def causal_ceiling(num_steps: int) -> float:
    """The best accuracy of any left-to-right tagger: it knows X_{t-1} and X_t, so the
    first bit exactly, and must bet on [X_t > X_{t+1}], right with probability
    max(x, V - x) / V for X_t = x; the last position has no X_{t+1} and is exact."""
    guess = np.mean([max(x, V - x) / V for x in range(V)])  # 0.75 for V = 10
    return float(((num_steps - 1) * guess + 1) / num_steps)


def fit(cfg: ModelConfig, steps: int, batch_size: int, num_steps: int, lr: float, seed: int):
    """Adam on fresh batches; dropout masks drawn per step when cfg.dropout > 0."""
    be = rnnlab.get_backend("numpy")
    params = be.from_numpy(rnnlab.init_params(cfg, seed=seed))
    opt = be.make_optimizer("adam", params, lr)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        X, Y = make_batch(rng, batch_size, num_steps)
        masks = None
        if cfg.dropout > 0 and cfg.num_layers > 1:  # training only: forward() never drops
            masks = dropout_masks(cfg, num_steps, batch_size, np.random.default_rng([seed, step, 1]))
        state = be.begin_state(cfg, batch_size)  # each window is its own sequence
        loss, grads, _ = be.loss_and_grads(cfg, params, X, Y, state, dropout_masks=masks)
        be.clip_grads(grads, 1.0)
        opt.step(grads)
    return be, params, loss


def accuracy(be, cfg: ModelConfig, params: dict, X, Y) -> float:
    logits, _ = be.forward(cfg, params, X, be.begin_state(cfg, X.shape[0]))  # (T*B, V)
    predicted = logits[:, :4].argmax(axis=1)  # (T*B,): the 4 tag logits
    return float((predicted == Y.T.reshape(-1)).mean())  # time-major rows, as the logits


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="gru")
    ap.add_argument("--gru-form", choices=("d2l", "torch"), default="d2l")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--num-steps", type=int, default=12, help="tokens per sequence T")
    ap.add_argument("--quick", action="store_true", help="a few seconds: smaller model, fewer steps")
    args = ap.parse_args(argv)
    if args.quick:
        args.hidden, args.steps = 16, 150
    batch_size, lr, seed = 32, 0.02, 0
    test_X, test_Y = make_batch(np.random.default_rng(12345), 500, args.num_steps)

    results = {}
    # --quick trains only the bidirectional model; the causal ceiling below is the bar
    for bidirectional in (True,) if args.quick else (False, True):
        cfg = ModelConfig(args.cell, V, args.hidden, num_layers=args.layers,
                          gru_form=args.gru_form, dropout=args.dropout,
                          bidirectional=bidirectional)
        start = time.perf_counter()
        be, params, loss = fit(cfg, args.steps, batch_size, args.num_steps, lr, seed)
        results[bidirectional] = acc = accuracy(be, cfg, params, test_X, test_Y)
        print(f"{'bidirectional' if bidirectional else 'left-to-right'} {args.cell} "
              f"(H={args.hidden}, layers={args.layers}, dropout={args.dropout}): "
              f"train loss {loss:.3f}, held-out tag accuracy {acc:.1%} "
              f"({time.perf_counter() - start:.1f} s)")

    # one held-out sequence, tagged by the bidirectional model (the last one trained)
    logits, _ = be.forward(cfg, params, test_X[:1], be.begin_state(cfg, 1))  # (T, V)
    names = "vfrp"  # valley, falling, rising, peak
    print("digits   ", " ".join(str(d) for d in test_X[0]))
    print("true tags", " ".join(names[t] for t in test_Y[0]))
    print("predicted", " ".join(names[t] for t in logits[:, :4].argmax(axis=1)))

    # the same model as a language model is refused, with the reason
    try:
        rnnlab.train(be, cfg, params, test_X.reshape(-1), TrainConfig(num_epochs=1))
    except ConfigError as exc:
        print(f"rnnlab.train refuses it as a language model: {exc}")
    else:
        print("error: rnnlab.train accepted a bidirectional language model")
        return 1

    ceiling = causal_ceiling(args.num_steps)
    print(f"no left-to-right tagger can beat {ceiling:.1%} here (it cannot see X_(t+1))")
    ok = results[True] > 0.95 and results[True] > ceiling + 0.1
    print("learned: the bidirectional tagger beats every possible left-to-right one"
          if ok else "error: the bidirectional tagger did not learn the rule")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
