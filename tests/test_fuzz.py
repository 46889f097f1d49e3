"""Hypothesis fuzzing (issue 7): any text, any sizes, any malformed array.

The invariant everywhere: a call either returns a result with its documented properties
or raises an rnnlab error (``RnnlabError``) that names the cause. Never an IndexError,
ValueError, TypeError or AttributeError from deep inside NumPy or PyTorch, and never a
silent NaN. Strategies are named ``@composite`` helpers at the top; the ci profile keeps
every test to 25 examples, ``RNNLAB_HYPOTHESIS_PROFILE=thorough`` runs 600.
"""

from __future__ import annotations

import math
import pathlib
import tempfile

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import rnnlab
from rnnlab.config import ModelConfig
from rnnlab.data import (
    SeqDataLoader,
    Vocab,
    load_corpus_text,
    num_batches,
    preprocess_time_machine,
    read_text,
    tokenize,
    train_val_split,
)
from rnnlab.errors import RnnlabError
from rnnlab.params import init_params, param_shapes

BACKENDS = ["numpy", "torch"]


def backend(name: str, dtype: str = "float32"):
    if name == "torch":
        pytest.importorskip("torch")
        return rnnlab.get_backend("torch", dtype=dtype, device="cpu")
    return rnnlab.get_backend("numpy", dtype=dtype)


def call(fn, *args, **kwargs):
    """Run ``fn``: its result, or None when it raised an rnnlab error (anything else
    propagates and fails the test, with Hypothesis's shrunk example)."""
    try:
        with np.errstate(all="ignore"):  # NaN inputs warn on their way to the named error
            return fn(*args, **kwargs)
    except RnnlabError as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return None


# ------------------------------------------------------------------- strategies


any_text = st.text(st.characters(), max_size=300)  # every code point, surrogates included
small_sizes = st.one_of(st.integers(-3, 40), st.sampled_from([0, 1, 2.0, True, None, "4"]))
sizes = st.one_of(small_sizes, st.just(2**40))


@st.composite
def text_files(draw):
    """Bytes of any Unicode text (UTF-8; surrogates written as the invalid bytes
    ``surrogatepass`` makes), sometimes followed by arbitrary bytes."""
    text = draw(any_text)
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        data += draw(st.binary(max_size=8))
    return data


dtypes_any = st.sampled_from([np.int8, np.int32, np.int64, np.uint8, np.uint64, np.float32,
                              np.float64, np.bool_, np.complex64, np.float16])


@st.composite
def token_arrays(draw, V: int, B: int, T: int):
    """Mostly malformed token ids: any dtype, 0-3 dims, empty dims, ids out of range,
    plus ragged lists, None, scalars and strings. Sometimes valid."""
    kind = draw(st.sampled_from(["array", "array", "array", "valid", "list", "other"]))
    if kind == "valid":
        return draw(hnp.arrays(np.int64, (B, T), elements=st.integers(0, V - 1)))
    if kind == "list":
        return draw(st.lists(st.lists(st.integers(-2, V + 2), max_size=4), max_size=3))
    if kind == "other":
        return draw(st.sampled_from([None, 3, "abc", 2.5, [[0.5]], [[[]]], {"a": 1}]))
    dtype = np.dtype(draw(dtypes_any))
    shape = draw(st.one_of(st.just((B, T)), hnp.array_shapes(min_dims=0, max_dims=3,
                                                              min_side=0, max_side=4)))
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        elements = st.integers(max(int(info.min), -5), min(int(info.max), V + 5))
    elif dtype.kind == "b":
        elements = st.booleans()
    else:
        elements = st.sampled_from([0.0, 1.0, 0.5, -1.0, float("nan"), float("inf"), V + 0.0])
    return draw(hnp.arrays(dtype, shape, elements=elements))


@st.composite
def states(draw, cfg: ModelConfig, B: int):
    """A state: valid (random values), or a wrong type, count, shape, dtype, NaN, lists."""
    n = cfg.num_layers * cfg.num_directions * cfg.num_states
    good = [np.random.default_rng(draw(st.integers(0, 99))).uniform(-1, 1, (B, cfg.num_hiddens))
            for _ in range(n)]
    kind = draw(st.sampled_from(["valid", "count", "shape", "dtype", "nan", "list", "type"]))
    if kind == "count":
        good = good[: draw(st.integers(0, n - 1))] if draw(st.booleans()) else good + good[:1]
    elif kind == "shape":
        i = draw(st.integers(0, n - 1))
        good[i] = np.zeros(draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=5)))
    elif kind == "dtype":
        good[0] = good[0].astype(draw(st.sampled_from([np.complex64, np.bool_, object])))
    elif kind == "nan":
        good[-1][0, 0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    elif kind == "list":
        good[0] = good[0].tolist()
    elif kind == "type":
        return draw(st.sampled_from([None, good[0], "state", 0]))
    return tuple(good)


@st.composite
def param_dicts(draw, cfg: ModelConfig):
    """Parameters: valid, or with one key missing, one extra, one misshaped, one of
    another dtype, NaN / inf, or a value that is not an array."""
    params = {k: v + np.random.default_rng(1).standard_normal(v.shape) * 0.1
              for k, v in init_params(cfg, seed=0, dtype=np.float64).items()}
    name = draw(st.sampled_from(sorted(params)))
    kind = draw(st.sampled_from(["valid", "missing", "extra", "shape", "dtype", "nonfinite",
                                 "not-array", "not-dict"]))
    if kind == "missing":
        del params[name]
    elif kind == "extra":
        params[draw(st.sampled_from(["W_xz", "foo", "W_hh_l1", "b_hn"]))] = params[name].copy()
    elif kind == "shape":
        params[name] = np.zeros(draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=6)))
    elif kind == "dtype":
        params[name] = params[name].astype(draw(st.sampled_from([np.int64, np.complex128,
                                                                 np.float16, np.bool_])))
    elif kind == "nonfinite":
        params[name] = params[name].copy()
        params[name].flat[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    elif kind == "not-array":
        params[name] = draw(st.sampled_from([None, "W", 1.5, [[1, 2], [3]]]))
    elif kind == "not-dict":
        return draw(st.sampled_from([None, list(params.values()), "params"]))
    return params


model_cfgs = st.builds(
    lambda cell, V, H, L: ModelConfig(cell, V, H, num_layers=L),
    st.sampled_from(["rnn", "lstm", "gru"]), st.integers(2, 6), st.integers(1, 4),
    st.integers(1, 2))


# ------------------------------------------------------------------- the data pipeline


@given(data=text_files(), max_tokens=st.one_of(st.integers(-5, 400), st.sampled_from([2.5, "9"])))
def test_any_file_loads_or_names_the_problem(data, max_tokens):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "corpus.txt"
        path.write_bytes(data)
        got = call(load_corpus_text, path, max_tokens)
        text = call(read_text, path)
    if got is None:
        return
    corpus, vocab = got
    assert text is not None and corpus.dtype == np.int64 and corpus.ndim == 1
    assert len(corpus) == (min(len(text), max_tokens) if max_tokens > 0 else len(text))
    assert "".join(vocab.to_tokens(list(corpus))) == text[: len(corpus)]  # lossless
    assert len(vocab) == len(set(text)) + 1 and vocab.idx_to_token[0] == "<unk>"


@given(text=any_text)
def test_time_machine_preprocessing_of_any_text(text):
    lines = preprocess_time_machine(text)
    assert all(set(line) <= set("abcdefghijklmnopqrstuvwxyz ") for line in lines)
    assert all(line == line.strip() and "  " not in line for line in lines)
    vocab = Vocab(tokenize(lines, "char"))
    assert Vocab.from_list(vocab.to_list()) == vocab


@given(text=st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=400),
       batch_size=sizes, num_steps=sizes, random=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_batches_of_any_text_and_sizes(text, batch_size, num_steps, random, seed):
    """Either valid batches or an rnnlab error: (B, T) int64 ids in the vocabulary, Y is
    X one token later in the corpus, sequential rows continue, the batch count is d2l's."""
    vocab = Vocab(list(text))
    corpus = np.array(vocab[list(text)], dtype=np.int64)  # (N,)
    loader = call(SeqDataLoader, corpus, batch_size, num_steps, random)
    if loader is None:
        return
    B, T = batch_size, num_steps
    batches = list(loader.epoch(np.random.default_rng(seed)))
    assert 1 <= len(batches) <= loader.max_batches
    assert any(len(batches) == num_batches(len(corpus), B, T, random, off) for off in range(T + 1))
    prev = None
    for X, Y in batches:
        assert X.shape == Y.shape == (B, T) and X.dtype == Y.dtype == np.int64
        assert X.min() >= 0 and X.max() < len(vocab)
        np.testing.assert_array_equal(X[:, 1:], Y[:, :-1])  # Y is X shifted by one token
        if not random and prev is not None:
            np.testing.assert_array_equal(X[:, 0], prev[:, -1])  # rows continue
        prev = Y
    if not random:  # the rows of every batch, joined, are contiguous slices of the corpus
        row = np.concatenate([X[0] for X, _ in batches])
        starts = [i for i in range(len(corpus) - len(row) + 1)
                  if np.array_equal(corpus[i:i + len(row)], row)]
        assert starts


@given(n=st.integers(0, 60), fraction=st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                                  st.sampled_from([0, 1, True, "0.1", None])))
def test_train_val_split_any_fraction(n, fraction):
    got = call(train_val_split, np.arange(n), fraction)
    if got is not None:
        train, val = got
        assert len(train) + len(val) == n and len(val) == math.floor(n * fraction)


# ------------------------------------------------------------------- backend entry points


def check_forward(be, cfg, params, X, state, B, T):
    """forward: logits (T*B, V) finite and a state of B rows, or an rnnlab error."""
    out = call(be.forward, cfg, params, X, state)
    if out is not None:
        logits, state_T = out
        logits = be.to_numpy({"l": logits})["l"]
        assert logits.shape[1] == cfg.vocab_size and np.isfinite(logits).all()
        assert len(state_T) == len(state)
    return out


@pytest.mark.parametrize("name", BACKENDS)
@given(cfg=model_cfgs, data=st.data())
def test_malformed_tokens(name, cfg, data):
    be = backend(name)
    B, T = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    params = be.from_numpy(init_params(cfg, seed=0))
    state = be.begin_state(cfg, B)
    X = data.draw(token_arrays(cfg.vocab_size, B, T))
    Y = data.draw(token_arrays(cfg.vocab_size, B, T))
    ok_X = check_forward(be, cfg, params, X, state, B, T) is not None
    out = call(be.loss_and_grads, cfg, params, X, Y, state)
    if out is not None:
        loss, grads, _ = out
        assert ok_X and math.isfinite(loss)
        assert set(grads) == set(params)
    if call(be.tokens, X) is not None:  # tokens() checks what needs no vocabulary
        arr = np.asarray(X)
        assert arr.ndim == 2 and arr.size and np.issubdtype(arr.dtype, np.integer)


@pytest.mark.parametrize("name", BACKENDS)
@given(cfg=model_cfgs, data=st.data())
def test_malformed_states(name, cfg, data):
    be = backend(name, "float64")
    B, T = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    params = be.from_numpy(init_params(cfg, seed=0, dtype=np.float64))
    X = np.random.default_rng(0).integers(0, cfg.vocab_size, (B, T))
    state = data.draw(states(cfg, B))
    if name == "torch" and isinstance(state, tuple):  # lists stay lists: torch checks them
        state = tuple(be.state_from_numpy((s,))[0] if isinstance(s, np.ndarray)
                      and s.dtype.kind == "f" else s for s in state)
    check_forward(be, cfg, params, X, state, B, T)
    out = call(be.loss_and_grads, cfg, params, X, X, state)
    if out is not None:
        assert math.isfinite(out[0])


@pytest.mark.parametrize("name", BACKENDS)
@given(cfg=model_cfgs, data=st.data())
def test_malformed_params(name, cfg, data):
    be = backend(name, "float64")
    B, T = 2, 3
    raw = data.draw(param_dicts(cfg))
    X = np.random.default_rng(0).integers(0, cfg.vocab_size, (B, T))
    state = be.begin_state(cfg, B)
    converted = call(be.from_numpy, raw)  # once, with every check
    if converted is not None:
        assert set(converted) == set(raw)
        check_forward(be, cfg, converted, X, state, B, T)
    for params in ([raw] if converted is None else [raw, converted]):
        check_forward(be, cfg, params, X, state, B, T)  # per call: structure, lazily NaN
        out = call(be.loss_and_grads, cfg, params, X, X, state)
        if out is not None:
            loss, grads, _ = out
            assert math.isfinite(loss) and set(grads) == set(param_shapes(cfg))


@pytest.mark.parametrize("name", BACKENDS)
@given(cell=st.one_of(st.sampled_from(["rnn", "lstm", "gru", "cnn", ""]), st.none(),
                      st.integers()),
       batch_size=small_sizes, hidden=small_sizes)
def test_begin_state_any_arguments(name, cell, batch_size, hidden):
    """(A size too large for the machine is a MemoryError, a resource and not an input
    error; the CLI reports it on one line: test_bad_input's cli-hidden-huge.)"""
    be = backend(name)
    state = call(be.begin_state, cell, batch_size, hidden)
    if state is not None:
        for s in be.state_to_numpy(state):
            assert s.shape == (batch_size, hidden) and not s.any()


grad_values = st.one_of(
    hnp.arrays(st.sampled_from([np.float32, np.float64]), hnp.array_shapes(max_dims=2, max_side=4),
               elements=st.floats(-1e30, 1e30).map(np.float32)),
    st.sampled_from([None, [1.0, 2.0], "g", np.arange(3), np.array([1 + 2j])]))


@pytest.mark.parametrize("name", BACKENDS)
@given(grads=st.one_of(st.dictionaries(st.sampled_from(["W_xh", "W_hh", "b_q", "g"]), grad_values,
                                       max_size=3),
                       st.sampled_from([None, [np.ones(2)], "grads"])),
       theta=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 5),
                       st.sampled_from([None, "1", True])))
def test_clip_grads_any_arguments(name, grads, theta):
    be = backend(name, "float64")
    if name == "torch" and isinstance(grads, dict):
        import torch  # the torch backend clips tensors; hand it tensors where we can

        grads = {k: torch.from_numpy(v.copy()) if isinstance(v, np.ndarray)
                 and v.dtype.kind == "f" else v for k, v in grads.items()}
    norm = call(be.clip_grads, grads, theta)
    if norm is not None:
        assert math.isfinite(theta) and theta > 0 and norm >= 0
        after = [np.asarray(v) for v in (be.to_numpy(grads) if name == "torch" else grads).values()]
        assert all(np.isfinite(a).all() for a in after) or not math.isfinite(norm)
        if math.isfinite(norm):
            total = math.sqrt(sum(float(np.sum(a.astype(np.float64) ** 2)) for a in after))
            assert total <= theta * (1 + 1e-6) or total <= norm * (1 + 1e-6)


@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([1.0, 30.0, 1e3]),
       cfg=model_cfgs)
def test_backends_agree_on_what_they_refuse(seed, scale, cfg):
    """The same malformed inputs are refused by both backends, with the same type."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    cases = [
        ("float ids", rng.uniform(0, 1, (2, 3)), None),
        ("id >= V", np.full((2, 3), cfg.vocab_size), None),
        ("negative id", -np.ones((2, 3), int), None),
        ("1-D ids", np.zeros(3, int), None),
        ("missing key", np.zeros((2, 3), int), "missing"),
        ("misshaped", np.zeros((2, 3), int), "shape"),
    ]
    for what, X, mutate in cases:
        types = []
        for name in BACKENDS:
            be = backend(name, "float64")
            raw = {k: v * scale for k, v in init_params(cfg, seed=seed % 1000, dtype=np.float64).items()}
            params = be.from_numpy(raw)
            if mutate == "missing":
                params.pop("b_q" if seed % 2 else sorted(params)[seed % len(params)])
            elif mutate == "shape":
                k = sorted(params)[seed % len(params)]
                params[k] = params[k][..., :0] if params[k].ndim else params[k]
                assume(tuple(params[k].shape) != param_shapes(cfg)[k])
            try:
                be.forward(cfg, params, X, be.begin_state(cfg, 2))
                types.append(None)
            except RnnlabError as exc:
                types.append(type(exc))
        assert types[0] is not None and types[0] == types[1], (what, types)
