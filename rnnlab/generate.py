"""Prediction: warm up on a prefix, then greedy, temperature or top-k decoding.

``predict`` is d2l's ``predict_ch8``: the prefix is fed through the network to build
the state (its outputs are ignored), then each new character is chosen from the
logits of the last one and fed back in. Sampling draws from an explicit seeded
Generator on NumPy logits, so either backend gives the same text for the same seed.
"""

from __future__ import annotations

import numpy as np

from .config import ModelConfig
from .data import Vocab
from .errors import ConfigError


def choose(logits: np.ndarray, strategy: str, temperature: float, top_k: int | None,
           rng: np.random.Generator | None) -> int:
    """Pick the next token id from one (V,) row of logits."""
    if strategy == "greedy":
        return int(np.argmax(logits))
    z = np.asarray(logits, dtype=np.float64) / temperature  # (V,)
    if top_k is not None:
        kth = np.partition(z, -top_k)[-top_k]  # the k-th largest logit
        z = np.where(z >= kth, z, -np.inf)  # (V,): keep the top k (ties at the edge kept)
    z -= z.max()
    p = np.exp(z)  # (V,)
    p /= p.sum()
    return int(rng.choice(len(p), p=p))


def check_decoding(strategy: str, temperature: float, top_k: int | None, vocab_size: int) -> None:
    if strategy not in ("greedy", "sample"):
        raise ConfigError(f"unknown decoding strategy {strategy!r}; expected greedy or sample")
    if not (np.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature must be > 0, got {temperature!r}")
    if top_k is not None and not (1 <= top_k <= vocab_size):
        raise ConfigError(f"top_k must be between 1 and the vocabulary size {vocab_size}, got {top_k!r}")


def predict(prefix: str, num_preds: int, backend, cfg: ModelConfig, params: dict, vocab: Vocab,
            strategy: str = "greedy", temperature: float = 1.0, top_k: int | None = None,
            seed: int | None = 0) -> str:
    """``prefix`` followed by ``num_preds`` generated characters."""
    if not prefix:
        raise ConfigError("the prefix must hold at least one character")
    if isinstance(num_preds, bool) or not isinstance(num_preds, int) or num_preds < 0:
        raise ConfigError(f"num_preds must be a non-negative integer, got {num_preds!r}")
    check_decoding(strategy, temperature, top_k, len(vocab))
    if cfg.bidirectional:
        raise ConfigError("a bidirectional model reads the future, so it cannot generate text "
                          "one character at a time; train a unidirectional one")
    ids = vocab.lookup_strict(list(prefix))  # a character outside the vocabulary is an error
    rng = np.random.default_rng(seed)
    state = backend.begin_state(cfg, 1)
    if len(ids) > 1:  # warm-up: stepwise equals whole sequence, so feed it in one call
        _, state = backend.forward(cfg, params, backend.tokens(np.array([ids[:-1]])), state)
    outputs = list(ids)
    for _ in range(num_preds):
        logits, state = backend.forward(cfg, params, backend.tokens(np.array([[outputs[-1]]])), state)
        row = np.asarray(backend.to_numpy({"l": logits})["l"])[0]  # (V,)
        outputs.append(choose(row, strategy, temperature, top_k, rng))
    return "".join(vocab.to_tokens(outputs))
