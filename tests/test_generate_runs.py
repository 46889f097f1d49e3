"""Generation that remembers its run, and word-level models end to end.

* ``rnnlab generate`` reads the token level and the prefix from the checkpoint, says on
  stderr which model and epoch it uses, explains a prefix outside the vocabulary, lists
  a folder of runs, and never generates ``<unk>`` unless asked.
* ``--token word`` is d2l's ``tokenize(lines, 'word')``, held to d2l's own code; it
  trains, validates, checkpoints, resumes and generates like the character level.
"""

from __future__ import annotations

import collections
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli_run import run
from rnnlab import get_backend, init_params
from rnnlab.checkpoint import load_checkpoint, save_checkpoint
from rnnlab.config import ModelConfig
from rnnlab.data import Tokenizer, Vocab, load_corpus
from rnnlab.errors import ConfigError, VocabError
from rnnlab.generate import choose, describe_vocab, predict, prefix_ids
from rnnlab.runs import choose_prefix

TINY = ["--hidden", "8", "--max-tokens", "600", "--batch-size", "4", "--num-steps", "8",
        "--no-plot", "--no-progress", "--num-preds", "5", "--epochs", "2"]
ZH = "时间是一切的开始。时间过得很快，时间就是生命。我们的时间不多了。\n" * 40
WORDS = ("The cat sat on the mat. The dog sat on the log! A cat, a dog, and the mat.\n") * 30


@pytest.fixture(autouse=True)
def _data(monkeypatch, time_machine_dir):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))


# --------------------------------------------------------------------- d2l's word level


def d2l_word_corpus(path, min_freq=0):
    """d2l's read_time_machine + tokenize(lines, 'word') + Vocab + corpus, as d2l writes
    them (Vocab sorts by frequency, ties in first-seen order; <unk> first)."""
    with open(path) as f:
        lines = f.readlines()
    lines = [re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in lines]
    tokens = [line.split() for line in lines]
    counter = collections.Counter(tok for line in tokens for tok in line)
    token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
    idx_to_token = ["<unk>"]
    token_to_idx = {"<unk>": 0}
    for token, freq in token_freqs:
        if freq < min_freq:
            break
        if token not in token_to_idx:
            idx_to_token.append(token)
            token_to_idx[token] = len(idx_to_token) - 1
    corpus = [token_to_idx.get(tok, 0) for line in tokens for tok in line]
    return corpus, idx_to_token


@pytest.mark.parametrize("min_freq", [0, 2])
def test_word_level_time_machine_is_d2ls(time_machine_dir, min_freq):
    corpus, vocab = load_corpus("timemachine", token="word", min_freq=min_freq)
    want_corpus, want_vocab = d2l_word_corpus(time_machine_dir / "timemachine.txt", min_freq)
    assert vocab.idx_to_token == want_vocab
    assert corpus.tolist() == want_corpus
    assert len(corpus) == 32775 and len(vocab) == (4580 if min_freq == 0 else 2183)


def test_a_text_files_words_are_cut_as_written(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text(WORDS, encoding="utf-8")
    corpus, vocab = load_corpus(path, token="word")
    assert vocab.to_tokens(corpus[:8].tolist()) == ["The", "cat", "sat", "on", "the", "mat.",
                                                    "The", "dog"]
    counts = collections.Counter(WORDS.split())  # 30 copies: 'The' 60, 'sat' 60, 'mat.' 30...
    corpus, vocab = load_corpus(path, token="word", min_freq=60)
    assert sorted(vocab.idx_to_token) == sorted(["<unk>"] + [w for w, n in counts.items() if n >= 60])
    assert (corpus == 0).sum() == sum(n for n in counts.values() if n < 60) > 0
    with pytest.raises(ConfigError, match="unknown token kind 'bytes'"):
        load_corpus(path, token="bytes")


def test_a_prefix_is_cut_as_the_corpus_was():
    vocab = Vocab([["the", "time", "machine", "the"]])
    book = Tokenizer("word", time_machine=True)
    p = prefix_ids("The Time-Machine, xylophone!", vocab, book)
    assert p.tokens == ["the", "time", "machine", "xylophone"]
    assert p.ids == [vocab["the"], vocab["time"], vocab["machine"], 0] and p.unknown == ["xylophone"]
    text = Tokenizer("word")  # any other text: as written, no case folding
    assert prefix_ids("The time", vocab, text).unknown == ["The"]
    with pytest.raises(ConfigError, match="at least one word"):
        prefix_ids(" ,; ", vocab, book)


# ---------------------------------------------------------------- prefixes outside vocab


def test_an_unknown_character_names_the_vocabulary_and_d2ls_lower_casing():
    vocab = Vocab(list("the time machine"))
    with pytest.raises(VocabError) as info:
        prefix_ids("The Time!", vocab, Tokenizer("char", time_machine=True))
    msg = str(info.value)
    assert "'T' (position 0), '!' (position 8)" in msg
    assert f"the vocabulary's {len(vocab)} tokens are <unk>, space, a, c, e, h, i, m, n, t" in msg
    assert "d2l's time-machine pipeline lower-cases" in msg and "try the prefix 'the time '" in msg
    with pytest.raises(VocabError) as info:  # nothing to suggest when lower case does not fit
        prefix_ids("Tzz", vocab, Tokenizer("char", time_machine=True))
    assert "try" not in str(info.value)
    with pytest.raises(VocabError) as info:  # another text: no d2l note, the lower-cased prefix
        prefix_ids("Time", vocab, Tokenizer("char"))
    assert "d2l" not in str(info.value) and "try the prefix 'time'" in str(info.value)


def test_the_vocabulary_is_described_compactly():
    assert describe_vocab(Vocab(list("abcdefghijklmnopqrstuvwxyz "))) == "<unk>, space, a-z"
    assert describe_vocab(Vocab(list("ab\n"))) == "<unk>, \\n, a, b"
    many = describe_vocab(Vocab([chr(0x4E00 + 2 * i) for i in range(3000)]))  # no runs
    assert len(many) < 120 and many.endswith("more)")
    words = describe_vocab(Vocab([["the"] * 3 + ["cat"] * 2 + ["sat"]]))
    assert words == "<unk>, the, cat, sat"


# ------------------------------------------------------------------------ <unk> masking


def unk_loving_model(vocab):
    """A tiny RNN whose output bias puts almost all probability on <unk>."""
    cfg = ModelConfig("rnn", len(vocab), 4)
    params = init_params(cfg, seed=0)
    params["b_q"][0] = 30.0  # P(<unk>) ≈ 1 - 1e-12
    be = get_backend("numpy")
    return be, cfg, be.from_numpy(params)


@pytest.mark.parametrize("strategy,kw", [("greedy", {}), ("sample", {"temperature": 1.0}),
                                         ("sample", {"temperature": 5.0, "top_k": 2})])
def test_unk_is_never_generated_unless_asked(strategy, kw):
    vocab = Vocab(list("abcab"))
    be, cfg, params = unk_loving_model(vocab)
    text = predict("ab", 200, be, cfg, params, vocab, strategy=strategy, seed=1, **kw)
    assert "<unk>" not in text and len(text) == 202
    asked = predict("ab", 50, be, cfg, params, vocab, strategy=strategy, seed=1,
                    allow_unk=True, **kw)
    assert asked.count("<unk>") >= 45


@given(logits=st.lists(st.floats(-30, 30), min_size=2, max_size=8), seed=st.integers(0, 99),
       temperature=st.floats(0.1, 10))
def test_masking_unk_keeps_the_other_tokens_order_and_ratios(logits, seed, temperature):
    """Without <unk> the draw is exactly a draw from the softmax of the other logits."""
    z = np.array(logits)
    got = choose(z, "sample", temperature, None, np.random.default_rng(seed), allow_unk=False)
    assert got != 0
    rest = z[1:] / temperature
    p = np.exp(rest - rest.max())
    want = 1 + int(np.random.default_rng(seed).choice(len(p), p=p / p.sum()))
    assert got == want
    assert choose(z, "greedy", 1.0, None, None, allow_unk=False) == 1 + int(np.argmax(z[1:]))


@given(logits=st.lists(st.floats(-30, 30), min_size=2, max_size=8), seed=st.integers(0, 99),
       top_p=st.floats(0.01, 1.0))
def test_top_p_draws_from_the_nucleus_renormalised(logits, seed, top_p):
    """top-p: a draw from the fewest most likely tokens whose probabilities reach top_p (the
    crossing one included), renormalised; never a token outside it."""
    z = np.array(logits)
    p = np.exp(z - z.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    n = 1
    while p[order[:n]].sum() < top_p and n < len(p):
        n += 1
    q = np.zeros_like(p)
    q[order[:n]] = p[order[:n]]
    want = int(np.random.default_rng(seed).choice(len(q), p=q / q.sum()))
    got = choose(z, "sample", 1.0, None, np.random.default_rng(seed), top_p=top_p)
    assert got == want and got in order[:n]


def test_top_p_keeps_the_top_token_alone_when_it_holds_the_mass():
    z = np.log(np.array([0.05, 0.6, 0.3, 0.05]))
    rng = np.random.default_rng(0)
    assert {choose(z, "sample", 1.0, None, rng, top_p=0.55) for _ in range(200)} == {1}
    assert {choose(z, "sample", 1.0, None, rng, top_p=0.85) for _ in range(400)} == {1, 2}
    assert {choose(z, "sample", 1.0, None, rng, top_p=1.0) for _ in range(400)} == {0, 1, 2, 3}


def test_temperature_0_is_greedy_in_predict():
    cfg, vocab = ModelConfig("rnn", 5, 4), Vocab(list("abcd"))
    be = get_backend("numpy")
    params = be.from_numpy(init_params(cfg, seed=3))
    greedy = predict("ab", 30, be, cfg, params, vocab)
    assert predict("ab", 30, be, cfg, params, vocab, strategy="sample", temperature=0,
                   seed=None) == greedy
    assert predict("ab", 30, be, cfg, params, vocab, strategy="sample", temperature=0.0,
                   top_k=3, top_p=0.5, seed=9) == greedy


# ------------------------------------------------------------------- the run remembered


def test_generate_starts_from_the_runs_prefix_and_says_what_it_uses(capsys, tmp_path):
    corpus = tmp_path / "zh.txt"
    corpus.write_text(ZH, encoding="utf-8")
    out = tmp_path / "zh"
    assert run(capsys, "train", "--corpus", corpus, "--prefix", "时间", *TINY, "--out", out)[0] == 0
    code, text, err = run(capsys, "generate", out, "--num-preds", "12")
    assert code == 0 and text.startswith("时间") and len(text.rstrip("\n")) == 14
    assert len(err) == 2 and re.fullmatch(
        r".*zh/(checkpoint|best)\.safetensors: lstm H=8, char-level, vocab 24; epoch [12]/2, "
        r"train ppl \d+\.\d\d, val ppl \d+\.\d\d( \(best \d+\.\d\d at epoch 1\))?", err[0]), err
    assert err[1] == "prefix '时间' (the run's; choose another with --prefix)"
    # a checkpoint from before the prefix was recorded: the corpus's most frequent token
    ckpt = load_checkpoint(out)
    del ckpt.extra["prefix"]
    ckpt.extra["options"]["prefix"] = None
    save_checkpoint(out, ckpt)
    code, text, _ = run(capsys, "generate", out, "--which", "latest", "--num-preds", "3")
    assert code == 0 and text.startswith(ckpt.vocab.idx_to_token[1])
    # a prefix the vocabulary lacks: the vocabulary in one line, no d2l note (not the book)
    code, text, err = run(capsys, "generate", out, "--prefix", "The Time")
    assert code == 2 and text == "" and len(err) == 1
    assert "'T' (position 0)" in err[0] and "the vocabulary's 24 tokens are <unk>, \\n, 。" in err[0]
    assert "d2l" not in err[0]


def test_word_level_end_to_end_on_the_time_machine(capsys, tmp_path):
    out = tmp_path / "words"
    base = ["train", "--token", "word", "--min-freq", "2", *TINY, "--out", out]
    code, text, err = run(capsys, *base)
    assert code == 0, err
    assert "vocab 2183 words" in text
    lines = text.splitlines()
    sample = lines[lines.index(next(ln for ln in lines if ln.startswith("perplexity"))) + 1]
    assert sample.startswith("time traveller ") and len(sample.split()) == 2 + 5
    assert "<unk>" not in text
    ckpt = load_checkpoint(out)
    assert ckpt.train["token"] == "word" and ckpt.train["min_freq"] == 2
    assert ckpt.extra["prefix"] == "time traveller" and len(ckpt.vocab) == 2183
    # generate: words joined by spaces, the prefix cut as the corpus was
    code, text, err = run(capsys, "generate", out, "--prefix", "The Time-Machine!",
                          "--num-preds", "6")
    assert code == 0 and len(err) == 1 and "word-level, vocab 2183" in err[0]
    assert text.startswith("the time machine ") and len(text.split()) == 3 + 6
    code, text, err = run(capsys, "generate", out, "--prefix", "time xylophone", "--num-preds", "2")
    assert code == 0 and text.split()[:2] == ["time", "xylophone"]
    assert err[1] == "note: not in the vocabulary, read as <unk>: xylophone"
    # resume: the token level and min-freq come from the checkpoint; another is refused
    code, text, err = run(capsys, "train", "--resume", "--epochs", "3", "--out", out)
    assert code == 0 and "epoch    3/3" in text, err
    assert load_checkpoint(out).train["token"] == "word"
    code, _, err = run(capsys, "train", "--resume", "--epochs", "4", "--token", "char",
                       "--out", out)
    assert code == 2 and "--token char (the checkpoint has word)" in err[0]


def test_word_level_on_a_small_text_and_on_torch(capsys, tmp_path):
    pytest.importorskip("torch")
    corpus = tmp_path / "words.txt"
    corpus.write_text(WORDS, encoding="utf-8")
    out = tmp_path / "w"
    code, text, err = run(capsys, "train", "--corpus", corpus, "--token", "word", *TINY,
                          "--max-tokens", "-1", "--out", out)
    assert code == 0, err
    lines = text.splitlines()
    sample = lines[next(i for i, ln in enumerate(lines) if ln.startswith("saved ")) - 1]
    # the last sample, before "saved ...": from the first sentence's first words, not from
    # the most frequent word ("the"), and the line before it says so
    assert sample.split()[:2] == ["The", "cat"] and len(sample.split()) == 7
    note = lines[lines.index(sample) - 1]
    assert note == ("sample from 'The cat' (the start of the corpus's first sentence; choose "
                    "another with --prefix):")
    a = run(capsys, "generate", out, "--prefix", "The cat", "--temperature", "1", "--seed", "3")
    b = run(capsys, "generate", out, "--prefix", "The cat", "--temperature", "1", "--seed", "3",
            "--backend", "torch", "--device", "cpu")
    assert a[0] == b[0] == 0 and a[1] == b[1] and a[1].startswith("The cat ")
    assert all(w in WORDS.split() for w in a[1].split())


def test_a_checkpoint_from_before_word_level_resumes_as_characters(capsys, tmp_path):
    out = tmp_path / "old"
    assert run(capsys, "train", *TINY, "--out", out)[0] == 0
    ckpt = load_checkpoint(out)
    for section in (ckpt.train, ckpt.extra["options"]):
        del section["token"], section["min_freq"]
    save_checkpoint(out, ckpt)
    code, text, err = run(capsys, "train", "--resume", "--epochs", "3", "--out", out)
    assert code == 0 and "epoch    3/3" in text, err
    assert load_checkpoint(out).train["token"] == "char"


def test_generate_on_a_folder_lists_its_runs(capsys, tmp_path):
    runs = tmp_path / "runs"
    assert run(capsys, "train", "--cell", "gru", *TINY, "--out", runs / "gru")[0] == 0
    assert run(capsys, "train", "--cell", "rnn", "--token", "word", *TINY,
               "--out", runs / "words")[0] == 0
    (runs / "broken").mkdir()
    (runs / "broken" / "checkpoint.safetensors").write_bytes(b"not a checkpoint")
    (runs / "notes").mkdir()  # no checkpoint: not a run
    code, text, err = run(capsys, "generate", runs)
    assert code == 0 and err == []
    lines = text.splitlines()
    assert lines[0].split() == ["run", "cell", "H", "layers", "tokens", "vocab", "epochs",
                                "train", "ppl", "best", "val", "ppl", "corpus"]
    assert lines[1].split()[:2] == [str(runs / "broken"), "unreadable:"]
    gru, words = lines[2].split(), lines[3].split()
    assert gru[1:7] == ["gru", "8", "1", "char", "28", "2/2"] and gru[-1] == "timemachine"
    assert words[1:7] == ["rnn", "8", "1", "word", "4580", "2/2"]
    assert lines[-1] == f"generate from one of them: rnnlab generate {runs / '<run>'}"
    # the best validation perplexity, the model best.safetensors holds, not the last one
    ckpt = load_checkpoint(runs / "gru" / "checkpoint.safetensors")
    ckpt.history[0]["val_ppl"], ckpt.history[1]["val_ppl"] = 7.15, 28.06
    save_checkpoint(runs / "gru" / "checkpoint.safetensors", ckpt)
    gru = run(capsys, "generate", runs)[1].splitlines()[2]
    assert "7.15 (epoch 1)" in gru and "28.06" not in gru
    code, text, err = run(capsys, "generate", runs / "notes")
    assert code == 2 and "holds no checkpoint.safetensors and no run directories" in err[0]


def _prefix(text: str, token: str = "char", min_freq: int = 0, time_machine: bool = False):
    tokenizer = Tokenizer(token, time_machine)
    tokens = tokenizer.corpus_tokens(text)
    return choose_prefix(tokens, Vocab(tokens, min_freq=min_freq), tokenizer)


NOVEL = ("\ufeff\n\n   CHAPTER ONE\n\n\n    \"It was a dark and stormy night,\" she said.   "
         "The rain fell.\n" + " " * 500)


def test_default_prefix_is_the_start_of_a_sentence_not_the_most_frequent_token():
    # the most frequent character of a novel is a space: a sample from it is blank
    assert Vocab(list(NOVEL)).idx_to_token[1] == " "
    assert _prefix(NOVEL) == ("CHAPTER ONE", "the start of the corpus's first sentence")
    assert _prefix("  hello there, world. Bye now.\n") == (
        "hello there", "the start of the corpus's first sentence")
    assert _prefix("Hi! Again and again.")[0] == "Hi"  # a phrase ends at punctuation
    assert _prefix(ZH)[0] == "时间是一切的开始"  # no spaces: up to the punctuation
    assert _prefix(WORDS, "word") == ("The cat", "the start of the corpus's first sentence")
    assert _prefix("--- 12 ---\n" * 3 + "Ok then") == (  # after digits, no sentence starts
        "Ok then", "the start of the corpus's first line")
    # d2l's prefix on d2l's book, at either token level
    assert _prefix("The Time Traveller (for so it will be", "char", time_machine=True)[0] == \
        "time traveller"
    assert _prefix("The Time Traveller (for so it will be", "word", time_machine=True)[0] == \
        "time traveller"


def test_default_prefix_skips_words_the_vocabulary_left_out():
    text = "Zebra quietly. " + "Cat sat. " * 5
    assert _prefix(text, "word", min_freq=2)[0] == "Cat sat."
    assert _prefix(text, "char", min_freq=2)[0] == "Cat sat"  # Z, b, q, ... are <unk>


def test_default_prefix_without_a_sentence_or_without_the_text():
    assert _prefix("1234 5678\n" * 3) == ("1", "the corpus's most frequent token")
    vocab = Vocab(list("a  b   c    "))
    assert choose_prefix(None, vocab, Tokenizer()) == ("a", "the corpus's most frequent token")


def test_train_and_generate_on_a_text_of_spaces_show_words(capsys, tmp_path):
    """The most frequent character is a space; the samples start from the first sentence."""
    corpus = tmp_path / "novel.txt"
    corpus.write_text(NOVEL * 10, encoding="utf-8")
    out = tmp_path / "novel"
    code, text, err = run(capsys, "train", "--corpus", corpus, *TINY, "--out", out)
    assert code == 0, err
    assert ("sample from 'CHAPTER ONE' (the start of the corpus's first sentence; choose "
            "another with --prefix):") in text.splitlines()
    assert load_checkpoint(out).extra["prefix"] == "CHAPTER ONE"
    code, text, err = run(capsys, "generate", out, "--num-preds", "3")
    assert code == 0 and text.startswith("CHAPTER ONE") and len(text.rstrip("\n")) == 14
    assert err[1] == "prefix 'CHAPTER ONE' (the run's; choose another with --prefix)"
