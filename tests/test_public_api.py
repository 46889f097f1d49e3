"""Every public function and config, every argument, values of the wrong type and range.

The property: a call with one argument replaced by any value either raises an rnnlab error
(``RnnlabError``, with a message) or returns a result of the kind the valid call returns
(a finite loss, a string that starts with the prefix, ...). Never a TypeError, ValueError,
AttributeError or KeyError from inside NumPy or PyTorch, and never a hang: sizes that
cannot fit are refused before anything is allocated.

Each call is a row of ``CALLS``: a name, a function of the context building the call, and
the valid keyword arguments. Hypothesis draws the argument to replace and its value (the
``ci`` profile: 25 draws per row; ``thorough``: 600), from ``BAD``: None, booleans,
strings, bytes, containers, objects, complex numbers, NaN and the infinities, negative,
zero, huge and fractional numbers, NumPy scalars, arrays of the wrong rank and dtype.
"""

from __future__ import annotations

import math
import os
import signal
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rnnlab
from rnnlab import ModelConfig, TrainConfig, Vocab, get_backend, init_params, predict
from rnnlab import data, dropout, gradcheck, memory, params as P
from rnnlab.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from rnnlab.errors import RnnlabError

BAD = st.one_of(
    st.sampled_from([None, True, False, "1", "", "lstm", b"x", [], {}, (), object(),
                     np.bool_(True), 1j, math.nan, math.inf, -math.inf, -1, 0, 1, 2**70,
                     -(2**70), 0.5, -0.5, 1e-320, np.float32(0.5), np.int64(-3), np.int64(2),
                     np.array([1, 2]), np.zeros((2, 2)), np.zeros((2, 2), dtype=object),
                     [[1, 2], [3]], ["a", 1], {"W_xi": None}, (None,), print]),
    st.integers(-5, 5), st.floats(), st.text(max_size=3),
    st.lists(st.integers(-2, 5), max_size=4),
)


@dataclass
class Ctx:
    """A tiny model on one backend: V = 4 (a, b, c, d), H = 3, an LSTM."""

    be: Any
    vocab: Vocab
    cfg: ModelConfig
    params: dict  # the backend's arrays
    np_params: dict  # NumPy float32
    corpus: np.ndarray  # (28,) ids
    X: np.ndarray  # (2, 3) ids
    state: tuple
    tmp: Any


def make_ctx(backend: str, tmp) -> Ctx:
    be = get_backend(backend) if backend == "numpy" else get_backend("torch", device="cpu")
    vocab = Vocab([list("abcdab")])
    cfg = ModelConfig(cell="lstm", vocab_size=len(vocab), num_hiddens=3)
    np_params = init_params(cfg, seed=0)
    corpus = np.array(vocab[list("abcd" * 7)])  # (28,)
    X = np.array([[0, 1, 2], [1, 2, 3]])  # (2, 3)
    return Ctx(be, vocab, cfg, be.from_numpy(np_params), np_params, corpus, X,
               be.begin_state(cfg, 2), tmp)


@dataclass
class Call:
    name: str
    fn: Callable[[Ctx], Callable]  # the function under test, from the context
    kwargs: Callable[[Ctx], dict]  # its valid keyword arguments
    ok: Callable[[Any, Ctx], bool] = lambda r, c: True  # what an accepted result must be


def _finite(r, c) -> bool:
    return isinstance(r, float) and math.isfinite(r)


def _grads(c: Ctx) -> dict:
    return c.be.loss_and_grads(c.cfg, c.params, c.be.tokens(c.X), c.be.tokens(c.X), c.state)[1]


def _tiny_train() -> TrainConfig:
    return TrainConfig(num_epochs=1, batch_size=2, num_steps=3, threads=1)


CALLS = [
    Call("ModelConfig", lambda c: ModelConfig,
         lambda c: dict(cell="lstm", vocab_size=5, num_hiddens=3, num_layers=1, dropout=0.0,
                        bidirectional=False, gru_form="d2l"),
         lambda r, c: isinstance(r, ModelConfig)),
    Call("TrainConfig", lambda c: TrainConfig,
         lambda c: dict(num_epochs=1, lr=1.0, batch_size=2, num_steps=3, clip_theta=1.0,
                        use_random_iter=False, optimizer="sgd", seed=0, threads=1),
         lambda r, c: isinstance(r, TrainConfig)),
    Call("get_backend", lambda c: get_backend, lambda c: dict(name="numpy", dtype="float32")),
    Call("init_params", lambda c: init_params, lambda c: dict(cell=c.cfg, seed=0, dtype="float32"),
         lambda r, c: isinstance(r, dict) and all(np.isfinite(v).all() for v in r.values())),
    Call("predict", lambda c: predict,
         lambda c: dict(prefix="ab", num_preds=3, backend=c.be, cfg=c.cfg, params=c.params,
                        vocab=c.vocab, strategy="sample", temperature=1.0, top_k=None, seed=0,
                        tokenizer=None, allow_unk=False),
         lambda r, c: isinstance(r, str)),
    Call("evaluate", lambda c: rnnlab.evaluate,
         lambda c: dict(backend=c.be, cfg=c.cfg, params=c.params, corpus=c.corpus, batch_size=2,
                        num_steps=3), _finite),
    Call("train", lambda c: rnnlab.train,
         lambda c: dict(backend=c.be, cfg=c.cfg, params=c.be.from_numpy(c.np_params),
                        corpus=c.corpus, tcfg=_tiny_train(), val_corpus=None, start_epoch=0,
                        optimizer=None, on_epoch=None, on_batch=None, tuner=None, parallel=None,
                        past=()),
         lambda r, c: isinstance(r, list)),
    Call("begin_state", lambda c: c.be.begin_state,
         lambda c: dict(cell="lstm", batch_size=2, num_hiddens=3),
         lambda r, c: isinstance(r, tuple) and len(r) == 2),
    Call("forward", lambda c: c.be.forward,
         lambda c: dict(cell=c.cfg, params=c.params, X=c.be.tokens(c.X), state=c.state),
         lambda r, c: isinstance(r, tuple) and len(r) == 2),
    Call("loss_and_grads", lambda c: c.be.loss_and_grads,
         lambda c: dict(cell=c.cfg, params=c.params, X=c.be.tokens(c.X), Y=c.be.tokens(c.X),
                        state=c.state, weights=None, state_grads=False, dropout_masks=None),
         lambda r, c: isinstance(r, tuple) and math.isfinite(r[0]) and r[0] >= 0),
    Call("clip_grads", lambda c: c.be.clip_grads, lambda c: dict(grads=_grads(c), theta=1.0),
         _finite),
    Call("sgd", lambda c: c.be.sgd,
         lambda c: dict(params=c.be.from_numpy(c.np_params), grads=_grads(c), lr=0.1)),
    Call("make_optimizer", lambda c: c.be.make_optimizer,
         lambda c: dict(name="adam", params=c.be.from_numpy(c.np_params), lr=0.1)),
    Call("tokens", lambda c: c.be.tokens, lambda c: dict(X=c.X)),
    Call("from_numpy", lambda c: c.be.from_numpy, lambda c: dict(params=c.np_params)),
    Call("to_numpy", lambda c: c.be.to_numpy, lambda c: dict(params=c.params)),
    Call("state_to_numpy", lambda c: c.be.state_to_numpy, lambda c: dict(state=c.state)),
    Call("state_from_numpy", lambda c: c.be.state_from_numpy,
         lambda c: dict(state=c.be.state_to_numpy(c.state))),
    Call("Vocab", lambda c: Vocab,
         lambda c: dict(tokens=[list("abc")], min_freq=0, reserved_tokens=None),
         lambda r, c: isinstance(r, Vocab)),
    Call("Vocab.getitem", lambda c: c.vocab.__getitem__, lambda c: dict(tokens="a")),
    Call("Vocab.to_tokens", lambda c: c.vocab.to_tokens, lambda c: dict(indices=[0, 1])),
    Call("Vocab.from_list", lambda c: Vocab.from_list,
         lambda c: dict(idx_to_token=["<unk>", "a", "b"])),
    Call("load_corpus_text", lambda c: data.load_corpus_text,
         lambda c: dict(path=str(_text_file(c)), max_tokens=-1, token="char", min_freq=0)),
    Call("load_corpus", lambda c: rnnlab.load_corpus,
         lambda c: dict(name_or_path=str(_text_file(c)), max_tokens=100, data_dir=None,
                        token="char", min_freq=0)),
    Call("seq_data_iter_random", lambda c: (lambda **k: list(data.seq_data_iter_random(**k))),
         lambda c: dict(corpus=c.corpus, batch_size=2, num_steps=3, rng=np.random.default_rng(0))),
    Call("seq_data_iter_sequential",
         lambda c: (lambda **k: list(data.seq_data_iter_sequential(**k))),
         lambda c: dict(corpus=c.corpus, batch_size=2, num_steps=3, rng=np.random.default_rng(0))),
    Call("SeqDataLoader", lambda c: data.SeqDataLoader,
         lambda c: dict(corpus=c.corpus, batch_size=2, num_steps=3, use_random_iter=False)),
    Call("train_val_split", lambda c: data.train_val_split,
         lambda c: dict(corpus=c.corpus, val_fraction=0.1)),
    Call("tokenize", lambda c: data.tokenize, lambda c: dict(lines=["ab c"], token="char")),
    Call("estimate_memory", lambda c: memory.estimate_memory,
         lambda c: dict(cfg=c.cfg, batch_size=2, num_steps=3, backend="torch", optimizer="adam",
                        dtype="float64", impl="nn")),
    Call("gradcheck", lambda c: gradcheck.gradcheck,
         lambda c: dict(backend=get_backend("numpy", dtype="float64"), cfg=c.cfg,
                        params=init_params(c.cfg, seed=0, dtype="float64"), X=c.X, Y=c.X,
                        state=get_backend("numpy", dtype="float64").begin_state(c.cfg, 2))),
    Call("random_problem", lambda c: gradcheck.random_problem,
         lambda c: dict(cfg=c.cfg, batch_size=2, num_steps=3, seed=0)),
    Call("dropout_masks", lambda c: dropout.dropout_masks,
         lambda c: dict(cfg=ModelConfig("lstm", 4, 3, num_layers=2, dropout=0.5), num_steps=3,
                        batch_size=2, rng=np.random.default_rng(0))),
    Call("to_d2l_list", lambda c: P.to_d2l_list, lambda c: dict(cfg=c.cfg, params=c.np_params)),
    Call("from_d2l_list", lambda c: P.from_d2l_list,
         lambda c: dict(cfg=c.cfg, arrays=P.to_d2l_list(c.cfg, c.np_params))),
    Call("to_torch_nn", lambda c: P.to_torch_nn, lambda c: dict(cfg=c.cfg, params=c.np_params)),
    Call("from_torch_nn", lambda c: P.from_torch_nn,
         lambda c: dict(cfg=c.cfg, state_dict=P.to_torch_nn(c.cfg, c.np_params))),
    Call("save_checkpoint", lambda c: save_checkpoint,
         lambda c: dict(path=c.tmp / "run" / "checkpoint.safetensors",
                        ckpt=Checkpoint(c.cfg, c.np_params, c.vocab))),
    Call("Checkpoint", lambda c: (lambda **k: save_checkpoint(c.tmp / "c.safetensors",
                                                              Checkpoint(**k))),
         lambda c: dict(model=c.cfg, params=c.np_params, vocab=c.vocab, epoch=0, train={},
                        optimizer=None, history=[], rng={}, extra={}, arrays={})),
    Call("load_checkpoint", lambda c: load_checkpoint,
         lambda c: dict(path=_checkpoint(c), cell="lstm", vocab=None)),
]


def _text_file(c: Ctx):
    path = c.tmp / "corpus.txt"
    if not path.exists():
        path.write_text("hello world, hello rnnlab\n", encoding="utf-8")
    return path


def _checkpoint(c: Ctx):
    path = c.tmp / "good" / "checkpoint.safetensors"
    if not path.exists():
        save_checkpoint(path, Checkpoint(c.cfg, c.np_params, c.vocab))
    return path


class Hang(Exception):
    pass


def _alarm(*_):
    raise Hang


@pytest.fixture(scope="module")
def tmp_module(tmp_path_factory):
    """A folder that is also the working directory: a path argument drawn as "1" writes
    there, not in the checkout."""
    tmp = tmp_path_factory.mktemp("api")
    cwd = os.getcwd()
    os.chdir(tmp)
    yield tmp
    os.chdir(cwd)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("call", CALLS, ids=[c.name for c in CALLS])
@given(data=st.data())
def test_wrong_types_and_ranges_get_an_rnnlab_error(call, backend, data, tmp_module):
    """One argument of a valid call replaced by any value: an RnnlabError with a message,
    or a result of the valid call's kind; nothing else, and never a hang."""
    if backend == "torch":
        pytest.importorskip("torch")
    c = make_ctx(backend, tmp_module)
    kwargs = call.kwargs(c)
    arg = data.draw(st.sampled_from(sorted(kwargs)), label="argument")
    value = data.draw(BAD, label="value")
    kwargs[arg] = value
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(20)  # a generous bound: every valid call here takes milliseconds
    try:
        with np.errstate(all="ignore"):
            result = call.fn(c)(**kwargs)
    except RnnlabError as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return
    except Hang:
        pytest.fail(f"{call.name}({arg}={value!r}) ran for 20 s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert call.ok(result, c), f"{call.name}({arg}={value!r}) returned {result!r}"


def test_the_table_is_valid_as_written(tmp_path):
    """Every row's valid call succeeds and passes its own result check, on both backends,
    so a refusal in the property above is the bad value's doing."""
    for backend in ("numpy", "torch"):
        c = make_ctx(backend, tmp_path)
        for call in CALLS:
            result = call.fn(c)(**call.kwargs(c))
            assert call.ok(result, c), call.name
