"""Prediction: warm up on a prefix, then greedy, temperature, top-k or top-p decoding.

``predict`` is d2l's ``predict_ch8``: the prefix is fed through the network to build
the state (its outputs are ignored), then each new token is chosen from the logits of
the last one and fed back in. Sampling draws from an explicit seeded Generator on NumPy
logits, so either backend gives the same text for the same seed.

Tokens are characters or words (``rnnlab.data.Tokenizer``): a word-level prefix is cut
into words as the corpus was, and the text comes back with the words joined by spaces.
``<unk>`` stands for what the vocabulary left out; it is never *generated* unless
``allow_unk=True`` (its logit is set to -inf before the choice, greedy or sampled).
"""

from __future__ import annotations

import re
from typing import Annotated, NamedTuple

import numpy as np

from .arguments import Choice, Flag, Instance, Number, Seed, checked
from .backend import AnyBackend
from .checks import (
    check_choice,
    check_fits,
    check_int,
    check_number,
    is_int,
    refuse,
)
from .config import ModelConfig
from .data import UNK, Tokenizer, Vocab
from .errors import ConfigError, VocabError


def choose(logits: np.ndarray, strategy: str, temperature: float, top_k: int | None,
           rng: np.random.Generator | None, allow_unk: bool = True, unk: int = 0,
           top_p: float | None = None) -> int:
    """Pick the next token id from one (V,) row of logits; ``allow_unk=False`` never
    picks ``unk`` (its logit becomes -inf, the others keep their order and ratios).

    Sampling divides the logits by ``temperature`` (0: the limit, greedy), keeps the
    ``top_k`` largest, then the nucleus of ``top_p`` (Holtzman et al.): the fewest most
    likely tokens whose probabilities sum to at least top_p, the one that crosses it
    included; the rest get probability 0 and the kept ones are renormalised."""
    z = np.asarray(logits, dtype=np.float64)  # (V,)
    if not allow_unk and len(z) > 1:
        z = z.copy()
        z[unk] = -np.inf  # (V,): a probability of exactly 0
    if strategy == "greedy" or temperature == 0:  # T -> 0: all the mass on the top logit
        return int(np.argmax(z))
    with np.errstate(over="ignore"):  # a tiny temperature overflows the rest to -inf: meant
        zt = z / temperature  # (V,)
        if not np.isfinite(zt.max()):  # so small a temperature (1e-320) that z / T overflows:
            zt = (z - z.max()) / temperature  # shift first; the top logit stays 0, no inf - inf
    z = zt
    if top_k is not None:
        kth = np.partition(z, -top_k)[-top_k]  # the k-th largest logit
        z = np.where(z >= kth, z, -np.inf)  # (V,): keep the top k (ties at the edge kept)
    z -= z.max()
    p = np.exp(z)  # (V,)
    p /= p.sum()
    if top_p is not None and top_p < 1:
        order = np.argsort(-p, kind="stable")  # (V,): most likely first, ties by id
        mass = np.cumsum(p[order])  # (V,)
        keep = order[:int(np.searchsorted(mass, top_p)) + 1]  # through the crossing token
        nucleus = np.zeros_like(p)
        nucleus[keep] = p[keep]
        p = nucleus / nucleus.sum()  # (V,)
    return int(rng.choice(len(p), p=p))


def check_decoding(strategy: str, temperature: float, top_k: int | None, vocab_size: int,
                   top_p: float | None = None) -> None:
    """The decoding options: a known strategy, a finite temperature >= 0 (0: greedy; a
    bool or a string is not one), an integer top_k in [1, V], a top_p in (0, 1]."""
    check_choice("strategy", strategy, ("greedy", "sample"))
    check_number("temperature", temperature, lo=0)
    if top_p is not None:
        check_number("top_p", top_p, lo=0, hi=1, lo_open=True)
    if top_k is not None and not (is_int(top_k) and 1 <= top_k <= vocab_size):
        raise refuse("top_k", top_k, f"None or an integer between 1 and the vocabulary size "
                                     f"{vocab_size}")


# what one generated token costs in memory, at least: its id in a list, its token in a
# list, the text (a pointer each, a small int, up to 4 bytes per character, a word...)
BYTES_PER_TOKEN = 64


def check_num_preds(num_preds) -> int:
    """A non-negative int whose text fits in memory: 10**23 is refused at once, with the
    number, instead of generating until the process is killed."""
    num_preds = check_int("num_preds", num_preds, lo=0)
    check_fits(num_preds * BYTES_PER_TOKEN, f"generating num_preds={num_preds:,} tokens",
               "ask for fewer")
    return num_preds


# ------------------------------------------------------------------------------ the prefix


class Prefix(NamedTuple):
    ids: list  # token ids fed to the network
    tokens: list  # the prefix's tokens as they will be printed
    unknown: list  # words not in the vocabulary, fed as <unk> (word level only)


def _shown(ch: str) -> str:
    return {" ": "space", "\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, ch if ch.isprintable()
                                                                      else repr(ch)[1:-1])


def describe_vocab(vocab: Vocab, limit: int = 80) -> str:
    """The vocabulary in a few words: characters sorted, runs of consecutive code points
    as ranges (``<unk>, space, a-z``); words, the most frequent first. At most about
    ``limit`` characters, then how many more."""
    tokens = vocab.idx_to_token[1:]
    if all(len(tok) == 1 for tok in tokens):
        chars, parts, i = sorted(tokens), [], 0
        while i < len(chars):
            j = i
            while j + 1 < len(chars) and ord(chars[j + 1]) == ord(chars[j]) + 1:
                j += 1
            if j - i >= 2:
                parts.append(f"{_shown(chars[i])}-{_shown(chars[j])}")
            else:
                parts.extend(_shown(c) for c in chars[i:j + 1])
            i = j + 1
    else:
        parts = list(tokens)  # by descending frequency: the ones a user most likely wants
    shown, length = [UNK], len(UNK)
    for part in parts:
        if length + len(part) + 2 > limit:
            break
        shown.append(part)
        length += len(part) + 2
    more = len(parts) - (len(shown) - 1)
    return ", ".join(shown) + (f", ... ({more} more)" if more else "")


def _unknown_chars_message(prefix: str, vocab: Vocab, tokenizer: Tokenizer) -> str:
    bad = [(i, ch) for i, ch in enumerate(prefix) if ch not in vocab.token_to_idx]
    distinct = list(dict.fromkeys(ch for _, ch in bad))
    where = ", ".join(f"{ch!r} (position {next(i for i, c in bad if c == ch)})"
                      for ch in distinct[:8]) + (f" and {len(distinct) - 8} more" if len(distinct) > 8 else "")
    msg = (f"the prefix {prefix!r} has characters that are not in the vocabulary: {where}; "
           f"the vocabulary's {len(vocab)} tokens are {describe_vocab(vocab)}")
    if tokenizer.time_machine:
        msg += ("; d2l's time-machine pipeline lower-cases the text and turns every "
                "non-letter into a space")
        candidate = re.sub("[^A-Za-z]+", " ", prefix).lower()
    else:
        candidate = prefix.lower()
    if candidate != prefix and candidate.strip() and all(c in vocab.token_to_idx for c in candidate):
        msg += f": try the prefix {candidate!r}"
    return msg


def prefix_ids(prefix, vocab: Vocab, tokenizer: Tokenizer | None = None) -> Prefix:
    """Token ids of a prefix (a string, or a list of tokens), tokenised as the corpus was.

    A character the vocabulary lacks is a ``VocabError`` that lists the vocabulary and,
    on d2l's corpus, suggests the lower-cased prefix. A word the vocabulary lacks is read
    as ``<unk>``, as d2l's ``vocab[tokens]`` does and as the corpus's rare words were
    during training; ``Prefix.unknown`` names them.
    """
    tokenizer = tokenizer or Tokenizer()
    if isinstance(prefix, (list, tuple)):
        if not all(isinstance(tok, str) for tok in prefix):
            raise ConfigError(f"a prefix given as a list must hold str tokens, got {prefix!r}")
        tokens = list(prefix)
    elif isinstance(prefix, str):
        tokens = tokenizer.prefix_tokens(prefix)
    else:
        raise ConfigError(f"the prefix must be a str or a list of tokens, got "
                          f"{type(prefix).__name__}")
    if not tokens:
        raise ConfigError(f"the prefix must hold at least one {tokenizer.unit}, got {prefix!r}")
    if tokenizer.token == "char":
        if any(tok not in vocab.token_to_idx for tok in tokens):
            text = prefix if isinstance(prefix, str) else "".join(tokens)
            raise VocabError(_unknown_chars_message(text, vocab, tokenizer))
        return Prefix([vocab.token_to_idx[t] for t in tokens], tokens, [])
    unknown = list(dict.fromkeys(t for t in tokens if t not in vocab.token_to_idx))
    return Prefix(vocab[tokens], tokens, unknown)


def _num_preds(name: str, value) -> int:  # check_num_preds as a declared check
    return check_num_preds(value)


def _top_p(name: str, value) -> float | None:  # None (no nucleus cut) or a share in (0, 1]
    return None if value is None else check_number(name, value, lo=0, hi=1, lo_open=True)


# What predict() takes, declared (rnnlab.arguments)
NumPreds = Annotated[int, _num_preds]
Model = Annotated[ModelConfig, Instance(ModelConfig, "a ModelConfig", got="type")]
AVocab = Annotated[Vocab, Instance(Vocab, "a rnnlab Vocab", got="type")]
Strategy = Annotated[str, Choice(("greedy", "sample"))]
Temperature = Annotated[float, Number(lo=0)]
TopP = Annotated[float | None, _top_p]
ATokenizer = Annotated[Tokenizer | None, Instance(Tokenizer, "a rnnlab Tokenizer", optional=True,
                                                 got="type")]


@checked
def predict(prefix, num_preds: NumPreds, backend: AnyBackend, cfg: Model, params: dict,
            vocab: AVocab, strategy: Strategy = "greedy", temperature: Temperature = 1.0,
            top_k: int | None = None, seed: Annotated[int | None, Seed(optional=True)] = 0,
            tokenizer: ATokenizer = None, allow_unk: Flag = False, top_p: TopP = None) -> str:
    """``prefix`` followed by ``num_preds`` generated tokens, as text.

    ``strategy="sample"`` draws from softmax(logits / ``temperature``) (0: greedy), cut to
    the ``top_k`` most likely tokens and to the nucleus of ``top_p`` when given.

    ``tokenizer`` says how the corpus was cut (default: characters); a word-level
    model's text comes back with its words joined by spaces. ``<unk>`` is never
    generated unless ``allow_unk``.
    """
    tokenizer = tokenizer or Tokenizer()
    if len(vocab) != cfg.vocab_size:  # ids past either end would be fed or produced
        raise ConfigError(f"the vocabulary has {len(vocab)} tokens but the model's vocab_size "
                          f"is {cfg.vocab_size}: they come from different runs")
    check_decoding(strategy, temperature, top_k, len(vocab), top_p)  # top_k <= V
    if cfg.bidirectional:
        raise ConfigError("a bidirectional model reads the future, so it cannot generate text "
                          "one token at a time; train a unidirectional one")
    ids, tokens, _ = prefix_ids(prefix, vocab, tokenizer)
    rng = np.random.default_rng(seed)
    state = backend.begin_state(cfg, 1)
    if len(ids) > 1:  # warm-up: stepwise equals whole sequence, so feed it in one call
        _, state = backend.forward(cfg, params, backend.tokens(np.array([ids[:-1]])), state)
    last, generated = ids[-1], []
    for _ in range(num_preds):
        logits, state = backend.forward(cfg, params, backend.tokens(np.array([[last]])), state)
        row = np.asarray(backend.to_numpy({"l": logits})["l"])[0]  # (V,)
        last = choose(row, strategy, temperature, top_k, rng, allow_unk, vocab.unk, top_p)
        generated.append(last)
    return tokenizer.join(tokens + vocab.to_tokens(generated))
