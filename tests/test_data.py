"""Tests of rnnlab.data: text, Vocab, the time-machine corpus, download, minibatches."""

from __future__ import annotations

import hashlib
import os
import pathlib
import tempfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnlab import data
from rnnlab.data import (
    SeqDataLoader,
    Vocab,
    count_corpus,
    download,
    find_time_machine,
    load_corpus,
    load_corpus_text,
    load_corpus_time_machine,
    num_batches,
    preprocess_time_machine,
    read_text,
    seq_data_iter_random,
    seq_data_iter_sequential,
    tokenize,
    train_val_split,
)
from rnnlab.errors import (
    ChecksumError,
    ConfigError,
    CorpusError,
    CorpusNotFoundError,
    ShapeError,
    VocabError,
)


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch, tmp_path):
    """No test reads the user's real cache / data directory (conftest keeps every test
    off the network)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg_cache"))
    monkeypatch.delenv("RNNLAB_DATA", raising=False)


class FixedRng(np.random.Generator):
    """A Generator whose offset and shuffle are chosen by the test, for hand-worked cases."""

    def __init__(self, offset: int, order=None):
        super().__init__(np.random.PCG64(0))
        self.offset, self.order = offset, order

    def integers(self, low, high=None, *args, **kwargs):
        assert high is not None and low <= self.offset < high
        return self.offset

    def permutation(self, x):
        x = np.asarray(x)
        return x if self.order is None else x[self.order]


def write_bytes(tmp_path, name: str, content: bytes) -> pathlib.Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


# --------------------------------------------------------------------------- text to tokens


def test_preprocess_time_machine_keeps_letters_lowercase_and_empty_lines():
    text = "The Time-Machine, 1895!\n\nBy H. G. Wells  \n42"
    assert preprocess_time_machine(text) == ["the time machine", "", "by h g wells", ""]


def test_preprocess_time_machine_splits_lines_like_readlines():
    # \f is not a line break for a text file; \r\n and \r are; a final newline adds no line
    assert preprocess_time_machine("a\x0cb\r\nC\rd\n") == ["a b", "c", "d"]
    assert preprocess_time_machine("") == []


def test_tokenize_char_and_word():
    lines = ["the cat", "", "a b"]
    assert tokenize(lines, "char") == [["t", "h", "e", " ", "c", "a", "t"], [], ["a", " ", "b"]]
    assert tokenize(lines) == tokenize(lines, "char")
    assert tokenize(lines, "word") == [["the", "cat"], [], ["a", "b"]]


def test_tokenize_unknown_kind_names_value_and_choices():
    with pytest.raises(ConfigError, match=r"'bytes'.*'char'.*'word'"):
        tokenize(["abc"], "bytes")


def test_count_corpus_flattens_lines():
    assert count_corpus([["a", "b"], ["b"]]) == {"a": 1, "b": 2}
    assert count_corpus(["a", "b", "b"]) == {"a": 1, "b": 2}
    assert count_corpus([]) == {}


# --------------------------------------------------------------------------- Vocab

# the x3, dog x2, sat x1, cat x2, a x1, end x1 (first-seen order)
WORD_LINES = ["the dog sat", "the cat", "a cat dog", "the end"]


def test_vocab_orders_by_frequency_then_first_seen():
    vocab = Vocab(tokenize(WORD_LINES, "word"))
    # dog before cat and sat, a, end in that order: ties keep first-seen order
    assert vocab.idx_to_token == ["<unk>", "the", "dog", "cat", "sat", "a", "end"]
    assert vocab.token_to_idx == {
        "<unk>": 0, "the": 1, "dog": 2, "cat": 3, "sat": 4, "a": 5, "end": 6
    }
    assert vocab.token_freqs == [
        ("the", 3), ("dog", 2), ("cat", 2), ("sat", 1), ("a", 1), ("end", 1)
    ]
    assert len(vocab) == 7
    assert vocab.unk == 0


def test_vocab_min_freq_and_reserved_tokens():
    vocab = Vocab(tokenize(WORD_LINES, "word"), min_freq=2, reserved_tokens=["<pad>", "<bos>"])
    assert vocab.idx_to_token == ["<unk>", "<pad>", "<bos>", "the", "dog", "cat"]
    assert vocab["sat"] == 0  # dropped by min_freq: maps to <unk>
    assert len(vocab.token_freqs) == 6  # the counts still list every token


def test_vocab_char_level():
    vocab = Vocab(tokenize(["hello", "world"], "char"))
    # l x3, o x2, then h e w r d once each, in first-seen order
    assert vocab.idx_to_token == ["<unk>", "l", "o", "h", "e", "w", "r", "d"]


def test_vocab_lookups_and_to_tokens():
    vocab = Vocab(tokenize(WORD_LINES, "word"))
    assert vocab["dog"] == 2
    assert vocab[["the", "end", "zebra"]] == [1, 6, 0]
    assert vocab[("a", "cat")] == [5, 3]
    assert vocab["zebra"] == 0
    assert vocab.to_tokens(3) == "cat"
    assert vocab.to_tokens([1, 2, 0]) == ["the", "dog", "<unk>"]
    assert vocab.to_tokens(np.array([6, 5])) == ["end", "a"]
    with pytest.raises(VocabError, match="index 7 is out of range for a vocabulary of 7"):
        vocab.to_tokens(7)
    with pytest.raises(VocabError, match="index -1"):
        vocab.to_tokens([1, -1])


def test_vocab_lookup_strict_names_the_missing_token():
    vocab = Vocab(tokenize(WORD_LINES, "word"))
    assert vocab.lookup_strict(["the", "cat"]) == [1, 3]
    assert vocab.lookup_strict("end") == 6
    missing = r"token 'zebra' at position 1 is not in the vocabulary \(7 tokens\)"
    with pytest.raises(VocabError, match=missing):
        vocab.lookup_strict(["the", "zebra", "yak"])
    with pytest.raises(VocabError, match="'Q'"):
        Vocab(list("abc")).lookup_strict(list("aQ"))


def test_vocab_from_list_round_trip():
    vocab = Vocab(tokenize(WORD_LINES, "word"), reserved_tokens=["<pad>"])
    items = vocab.to_list()
    assert items == ["<unk>", "<pad>", "the", "dog", "cat", "sat", "a", "end"]
    rebuilt = Vocab.from_list(items)
    assert rebuilt == vocab
    assert rebuilt.token_to_idx == vocab.token_to_idx
    assert rebuilt[["dog", "zebra"]] == [3, 0]
    items.append("extra")  # to_list is a copy
    assert len(vocab) == 8
    assert Vocab(list("ab")) != Vocab(list("abb"))


@pytest.mark.parametrize(
    "bad, match",
    [
        ([], "start with '<unk>'"),
        (["a", "<unk>"], "start with '<unk>', got 'a'"),
        (["<unk>", "a", "b", "a"], "entry 3 'a' repeats entry 1"),
        (["<unk>", "a", 3], "entry 2 is 3 of type int"),
        ("<unk>ab", "list of str, got str"),
    ],
)
def test_vocab_from_list_rejects_bad_lists(bad, match):
    with pytest.raises(VocabError, match=match):
        Vocab.from_list(bad)


def test_vocab_rejects_duplicate_reserved_tokens():
    with pytest.raises(VocabError, match="'<unk>'"):
        Vocab(["a"], reserved_tokens=["<unk>"])


# --------------------------------------------------------------------------- the time machine


def test_time_machine_full_book(time_machine_dir):
    corpus, vocab = load_corpus_time_machine(data_dir=time_machine_dir)
    assert corpus.shape == (170_580,)
    assert corpus.dtype == np.int64
    assert len(vocab) == 28
    assert vocab.idx_to_token[:10] == ["<unk>", " ", "e", "t", "a", "i", "n", "o", "s", "h"]
    assert vocab.idx_to_token[10:] == list("rdlmucfwgypbvkxzjq")
    # the book opens with "The Time Machine, by H. G. Wells [1898]"
    assert "".join(vocab.to_tokens(corpus[:20].tolist())) == "the time machine by "


def test_time_machine_max_tokens_keeps_the_whole_book_vocab(time_machine_dir):
    corpus, vocab = load_corpus("timemachine", max_tokens=10_000, data_dir=time_machine_dir)
    full, _ = load_corpus("time_machine", data_dir=time_machine_dir)
    assert corpus.shape == (10_000,)
    assert len(vocab) == 28
    np.testing.assert_array_equal(corpus, full[:10_000])


def test_time_machine_found_through_rnnlab_data(time_machine_dir, monkeypatch):
    monkeypatch.setenv("RNNLAB_DATA", str(time_machine_dir))
    assert find_time_machine(download=False) == time_machine_dir / "timemachine.txt"


def test_rnnlab_data_may_name_the_file_itself(time_machine_dir, tmp_path, monkeypatch):
    """RNNLAB_DATA is the folder holding timemachine.txt, or the file itself, by any name;
    a file that is not d2l's is refused whatever its name."""
    book = tmp_path / "d2l-time-machine.txt"
    book.write_bytes((time_machine_dir / "timemachine.txt").read_bytes())
    monkeypatch.setenv("RNNLAB_DATA", str(book))
    assert find_time_machine(download=False) == book
    assert load_corpus("timemachine", 20)[0].shape == (20,)
    monkeypatch.setenv("RNNLAB_DATA", str(write_bytes(tmp_path, "other.txt", b"a novel\n")))
    with pytest.raises(ChecksumError, match="other.txt"):
        find_time_machine(download=False)


def test_not_found_says_what_rnnlab_data_is_and_gives_the_offline_recipe(tmp_path, monkeypatch):
    (tmp_path / "folder").mkdir()
    for given, why in ((tmp_path / "folder", "is a folder without timemachine.txt"),
                       (tmp_path / "nowhere", "does not exist")):
        monkeypatch.setenv("RNNLAB_DATA", str(given))
        with pytest.raises(CorpusNotFoundError) as info:
            find_time_machine(download=False)
        message = str(info.value)
        assert f"RNNLAB_DATA={str(given)!r} {why}" in message
        cache = tmp_path / "xdg_cache" / "rnnlab"
        assert (f"Offline, copy timemachine.txt into {str(cache)!r}, or set RNNLAB_DATA to "
                "the folder that holds it (or to the file itself)") in message


def test_find_time_machine_downloads_into_cache_then_reuses_it(
    time_machine_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(data.files, "TIME_MACHINE_URL", (time_machine_dir / "timemachine.txt").as_uri())
    cached = tmp_path / "xdg_cache" / "rnnlab" / "timemachine.txt"
    assert find_time_machine(data_dir=tmp_path / "empty") == cached
    assert hashlib.sha1(cached.read_bytes()).hexdigest() == data.TIME_MACHINE_SHA1
    monkeypatch.setattr(data.files, "TIME_MACHINE_URL", "file:///nonexistent/timemachine.txt")
    assert find_time_machine(download=False) == cached  # second time: from the cache


def test_find_time_machine_rejects_a_corrupted_copy(tmp_path):
    bad = write_bytes(tmp_path, "timemachine.txt", b"The Time Machine, abridged\n")
    actual = hashlib.sha1(bad.read_bytes()).hexdigest()
    with pytest.raises(ChecksumError) as info:
        find_time_machine(data_dir=tmp_path)
    message = str(info.value)
    assert str(bad) in message and actual in message and data.TIME_MACHINE_SHA1 in message


def test_find_time_machine_checks_the_cache_copy_too(tmp_path):
    cache = tmp_path / "xdg_cache" / "rnnlab"
    cache.mkdir(parents=True)
    write_bytes(cache, "timemachine.txt", b"not the book\n")
    with pytest.raises(ChecksumError, match=str(cache / "timemachine.txt")):
        find_time_machine(download=False)


def test_find_time_machine_not_found_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "data"))
    with pytest.raises(CorpusNotFoundError) as info:
        find_time_machine(download=False)
    message = str(info.value)
    assert str(tmp_path / "data" / "timemachine.txt") in message
    assert str(tmp_path / "xdg_cache" / "rnnlab" / "timemachine.txt") in message
    assert "download=False" in message


def test_find_time_machine_failed_download_lists_places_and_url(tmp_path, monkeypatch):
    monkeypatch.setattr(data.files, "TIME_MACHINE_URL", (tmp_path / "missing.txt").as_uri())
    with pytest.raises(CorpusNotFoundError) as info:
        find_time_machine(data_dir=tmp_path / "d")
    message = str(info.value)
    assert str(tmp_path / "d" / "timemachine.txt") in message and "missing.txt" in message
    assert list((tmp_path / "xdg_cache" / "rnnlab").iterdir()) == []  # no partial file


# --------------------------------------------------------------------------- download


def test_download_file_url_verified_and_in_place(tmp_path):
    content = "Time Traveller\n".encode() * 100
    src = write_bytes(tmp_path, "src.txt", content)
    dest = tmp_path / "cache" / "sub" / "book.txt"
    out = download(src.as_uri(), dest, hashlib.sha1(content).hexdigest(), timeout=5)
    assert out == dest
    assert dest.read_bytes() == content
    assert os.listdir(dest.parent) == ["book.txt"]  # no temporary file left over


def test_download_wrong_sha1_leaves_nothing(tmp_path):
    content = b"tampered"
    src = write_bytes(tmp_path, "src.txt", content)
    dest_dir = tmp_path / "cache"
    expected = "0" * 40
    with pytest.raises(ChecksumError) as info:
        download(src.as_uri(), dest_dir / "book.txt", expected)
    message = str(info.value)
    assert expected in message and hashlib.sha1(content).hexdigest() in message
    assert src.as_uri() in message
    assert os.listdir(dest_dir) == []


def test_download_wrong_sha1_keeps_an_existing_good_file(tmp_path):
    src = write_bytes(tmp_path, "src.txt", b"new")
    dest = write_bytes(tmp_path, "book.txt", b"old")
    with pytest.raises(ChecksumError):
        download(src.as_uri(), dest, "0" * 40)
    assert dest.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["book.txt", "src.txt"]


def test_download_unreachable_url(tmp_path):
    url = (tmp_path / "nope.txt").as_uri()
    with pytest.raises(CorpusError, match="could not download .*nope.txt"):
        download(url, tmp_path / "cache" / "book.txt", "0" * 40)
    assert os.listdir(tmp_path / "cache") == []


# --------------------------------------------------------------------------- read_text, any text


def test_load_corpus_text_chinese_char_by_char(tmp_path):
    path = tmp_path / "zh.txt"
    path.write_text("我们的时光机器。\n时间旅行者", encoding="utf-8")
    corpus, vocab = load_corpus_text(path)
    assert corpus.shape == (14,)
    # 时 x2 first, then the others once each in first-seen order, "\n" included
    assert vocab.idx_to_token == [
        "<unk>", "时", "我", "们", "的", "光", "机",
        "器", "。", "\n", "间", "旅", "行", "者",
    ]
    assert corpus.tolist() == [2, 3, 4, 1, 5, 6, 7, 8, 9, 1, 10, 11, 12, 13]
    assert load_corpus(str(path), max_tokens=3)[0].tolist() == [2, 3, 4]


def test_load_corpus_text_keeps_case_punctuation_and_newlines(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"Aa.\r\na")
    corpus, vocab = load_corpus_text(path)
    assert vocab.idx_to_token == ["<unk>", "a", "A", ".", "\r", "\n"]
    assert corpus.tolist() == [2, 1, 3, 4, 5, 1]


def test_read_text_not_utf8_names_path_and_offset(tmp_path):
    path = write_bytes(tmp_path, "latin.txt", b"\xff\xfe abc")
    with pytest.raises(CorpusError, match=r"latin\.txt.*not valid UTF-8: byte 0xff at offset 0"):
        load_corpus_text(path)
    path = write_bytes(tmp_path, "late.txt", "caf\u00e9 ".encode("latin-1"))
    with pytest.raises(CorpusError, match="offset 3"):
        read_text(path)


def test_read_text_binary(tmp_path):
    path = write_bytes(tmp_path, "blob.bin", b"abc\x00def")
    with pytest.raises(CorpusError, match=r"blob\.bin.*binary.*NUL byte at offset 3"):
        read_text(path)


@pytest.mark.parametrize("content, what", [(b"", "is empty"), (b" \n\t\r\n ", "whitespace only")])
def test_read_text_blank(tmp_path, content, what):
    path = write_bytes(tmp_path, "blank.txt", content)
    with pytest.raises(CorpusError, match=rf"blank\.txt.*{what}"):
        load_corpus_text(path)


def test_read_text_directory(tmp_path):
    with pytest.raises(CorpusError, match=rf"{tmp_path.name}.*is a directory"):
        read_text(tmp_path)


def test_read_text_missing_file(tmp_path):
    with pytest.raises(CorpusNotFoundError, match=r"nothere\.txt.*does not exist") as info:
        load_corpus(tmp_path / "nothere.txt")
    assert isinstance(info.value, FileNotFoundError)


def test_read_text_unreadable(tmp_path, monkeypatch):
    path = write_bytes(tmp_path, "secret.txt", b"hidden")
    if os.geteuid() == 0:  # root reads anything: make the read fail by hand instead

        def denied(self):
            raise PermissionError(13, "Permission denied", str(self))

        monkeypatch.setattr(pathlib.Path, "read_bytes", denied)
    else:
        path.chmod(0)
    try:
        with pytest.raises(CorpusError, match=r"secret\.txt.*not readable: Permission denied"):
            read_text(path)
    finally:
        path.chmod(0o644)


# Printable text: no control characters (their newline and tab are added back), no
# surrogates (not encodable), not whitespace only (rejected as blank).
printable_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from("\n\r\t"),
    min_size=2,
).filter(lambda s: s.strip() != "")


@given(text=printable_text)
def test_load_corpus_text_round_trips(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "t.txt"
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        corpus, vocab = load_corpus_text(path)
    assert "".join(vocab.to_tokens(list(corpus))) == text
    assert len(vocab) == len(set(text)) + 1


# --------------------------------------------------------------------------- minibatches


def test_sequential_hand_worked():
    corpus = np.arange(12)
    # offset 0: rows [0..4], [5..9]; offset 1: rows [1..5], [6..10]; offset 2: 8 tokens,
    # rows [2..5], [6..9]. Two windows of 2 steps in each case.
    expected = {
        0: [([[0, 1], [5, 6]], [[1, 2], [6, 7]]), ([[2, 3], [7, 8]], [[3, 4], [8, 9]])],
        1: [([[1, 2], [6, 7]], [[2, 3], [7, 8]]), ([[3, 4], [8, 9]], [[4, 5], [9, 10]])],
        2: [([[2, 3], [6, 7]], [[3, 4], [7, 8]]), ([[4, 5], [8, 9]], [[5, 6], [9, 10]])],
    }
    for offset, batches in expected.items():
        got = list(seq_data_iter_sequential(corpus, 2, 2, FixedRng(offset)))
        assert [(X.tolist(), Y.tolist()) for X, Y in got] == batches
        assert all(X.dtype == np.int64 and Y.dtype == np.int64 for X, Y in got)


def test_random_hand_worked():
    corpus = np.arange(9)
    # offset 0: starts 0 2 4 6, shuffled to 6 0 4 2; two batches of two rows
    got = list(seq_data_iter_random(corpus, 2, 2, FixedRng(0, order=[3, 0, 2, 1])))
    assert [(X.tolist(), Y.tolist()) for X, Y in got] == [
        ([[6, 7], [0, 1]], [[7, 8], [1, 2]]),
        ([[4, 5], [2, 3]], [[5, 6], [3, 4]]),
    ]
    # offset 1: corpus[1:] has 8 tokens, (8 - 1) // 2 = 3 starts 1 3 5; one batch of two
    got = list(seq_data_iter_random(corpus, 2, 2, FixedRng(1, order=[2, 0, 1])))
    assert [(X.tolist(), Y.tolist()) for X, Y in got] == [([[5, 6], [1, 2]], [[6, 7], [2, 3]])]


def _check_shifted(X, Y, corpus, B, T):
    assert X.shape == Y.shape == (B, T)
    assert X.dtype == Y.dtype == np.int64
    np.testing.assert_array_equal(Y[:, :-1], X[:, 1:])
    np.testing.assert_array_equal(Y, corpus[X + 1])  # corpus = arange: id == position


@pytest.mark.parametrize("seed", range(10))
def test_random_iterator_starts_and_coverage(seed):
    B, T = 3, 5
    N = T * (6 + 1)  # 35: 6 subsequences (a multiple of B) for every offset 0..4
    corpus = np.arange(N)
    batches = list(seq_data_iter_random(corpus, B, T, np.random.default_rng(seed)))
    assert len(batches) == 2
    starts = []
    for X, Y in batches:
        _check_shifted(X, Y, corpus, B, T)
        np.testing.assert_array_equal(X, X[:, :1] + np.arange(T))  # contiguous rows
        starts += X[:, 0].tolist()
    offset = starts[0] % T
    assert all(s % T == offset for s in starts)  # multiples of T after the offset
    assert len(set(starts)) == len(starts)  # no duplicates
    assert max(starts) + T <= N - 1  # the last Y still inside the corpus
    assert set(starts) == {offset + T * k for k in range(6)}  # every subsequence once


@pytest.mark.parametrize("seed", range(10))
def test_sequential_iterator_rows_continue(seed):
    B, T, N = 2, 5, 53
    corpus = np.arange(N)
    batches = list(seq_data_iter_sequential(corpus, B, T, np.random.default_rng(seed)))
    offset = int(batches[0][0][0, 0])
    row_len = (N - offset - 1) // B
    assert len(batches) == row_len // T
    for k, (X, Y) in enumerate(batches):
        _check_shifted(X, Y, corpus, B, T)
        # row b of batch k holds positions offset + b * row_len + k * T + t
        expected = offset + np.arange(B)[:, None] * row_len + k * T + np.arange(T)
        np.testing.assert_array_equal(X, expected)
        if k > 0:
            prev_X, prev_Y = batches[k - 1]
            np.testing.assert_array_equal(X[:, 0], prev_Y[:, -1])  # row b continues
            np.testing.assert_array_equal(X[:, 0], prev_X[:, -1] + 1)


def test_offsets_cover_the_allowed_range():
    B, T, N = 2, 4, 50
    corpus = np.arange(N)
    random_offsets, sequential_offsets = set(), set()
    for seed in range(100):
        X, _ = next(seq_data_iter_random(corpus, B, T, np.random.default_rng(seed)))
        random_offsets.add(int(X[0, 0]) % T)
        X, _ = next(seq_data_iter_sequential(corpus, B, T, np.random.default_rng(seed)))
        sequential_offsets.add(int(X[0, 0]))
    assert random_offsets == {0, 1, 2, 3}  # d2l: randint(0, T - 1)
    assert sequential_offsets == {0, 1, 2, 3, 4}  # d2l: randint(0, T)


@pytest.mark.parametrize("it", [seq_data_iter_random, seq_data_iter_sequential])
def test_iterators_are_seeded_and_pure(it):
    corpus = np.arange(200)

    def run(seed):
        return [(X.tolist(), Y.tolist()) for X, Y in it(corpus, 4, 6, np.random.default_rng(seed))]

    np.random.seed(1)
    first = run(7)
    np.random.seed(2)  # the global state plays no part
    assert run(7) == first
    assert run(8) != first


def test_minimum_corpus_length_is_exact():
    B, T = 3, 5
    # random: worst offset T-1 needs (N - T) // T >= B, i.e. N >= (B + 1) T = 20
    assert num_batches(20, B, T, True, offset=T - 1) == 1
    assert num_batches(19, B, T, True, offset=T - 1) == 0
    # sequential: worst offset T needs (N - T - 1) // B >= T, i.e. N >= (B + 1) T + 1 = 21
    assert num_batches(21, B, T, False, offset=T) == 1
    assert num_batches(20, B, T, False, offset=T) == 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        assert len(list(seq_data_iter_random(np.arange(20), B, T, rng))) == 1
        assert len(list(seq_data_iter_sequential(np.arange(21), B, T, rng))) == 1
    sizes = "batch_size=3, num_steps=5"
    with pytest.raises(CorpusError, match=rf"corpus of 19 tokens .* {sizes}: random .* least 20"):
        seq_data_iter_random(np.arange(19), B, T, np.random.default_rng(0))
    with pytest.raises(CorpusError, match=rf"of 20 tokens .* {sizes}: sequential .* least 21"):
        seq_data_iter_sequential(np.arange(20), B, T, np.random.default_rng(0))


@pytest.mark.parametrize("bad", [0, -2, 2.0, True, "4", None])
def test_non_positive_or_non_int_batch_size(bad):
    with pytest.raises(ConfigError, match=rf"batch_size must be a positive int, got {bad!r}"):
        seq_data_iter_random(np.arange(100), bad, 5, np.random.default_rng(0))
    with pytest.raises(ConfigError, match=rf"num_steps must be a positive int, got {bad!r}"):
        SeqDataLoader(np.arange(100), 2, bad, use_random_iter=False)


def test_iterator_rejects_bad_rng_and_corpus():
    with pytest.raises(ConfigError, match="numpy.random.Generator.*got int"):
        seq_data_iter_sequential(np.arange(100), 2, 5, 0)
    with pytest.raises(ShapeError, match=r"shape \(10, 10\)"):
        seq_data_iter_random(np.zeros((10, 10), dtype=np.int64), 2, 5, np.random.default_rng(0))


@pytest.mark.parametrize("use_random", [True, False])
def test_seq_data_loader_epochs(use_random):
    corpus = np.arange(103)
    loader = SeqDataLoader(corpus, 4, 5, use_random_iter=use_random)
    # offset 0: random (102 // 5) // 4 = 5; sequential (102 // 4) // 5 = 5
    assert loader.max_batches == 5
    epoch = list(loader.epoch(np.random.default_rng(3)))
    assert len(epoch) in (loader.max_batches - 1, loader.max_batches)
    again = list(loader.epoch(np.random.default_rng(3)))
    assert [X.tolist() for X, _ in epoch] == [X.tolist() for X, _ in again]  # no hidden state
    it = seq_data_iter_random if use_random else seq_data_iter_sequential
    expected_first = next(it(corpus, 4, 5, np.random.default_rng(3)))[0]
    np.testing.assert_array_equal(epoch[0][0], expected_first)


def test_seq_data_loader_too_short():
    with pytest.raises(CorpusError, match="corpus of 10 tokens"):
        SeqDataLoader(np.arange(10), 2, 5, use_random_iter=True)


# --------------------------------------------------------------------------- train / validation


def test_train_val_split_sizes():
    corpus = np.arange(10)
    train, val = train_val_split(corpus, 0.25)  # floor(2.5) = 2 validation tokens
    assert train.tolist() == [0, 1, 2, 3, 4, 5, 6, 7] and val.tolist() == [8, 9]
    train, val = train_val_split(corpus, 0.0)
    assert train.tolist() == list(range(10)) and val.shape == (0,) and val.dtype == np.int64
    train, val = train_val_split(np.arange(1000), 0.1)
    assert train.shape == (900,) and val.shape == (100,) and val[0] == 900


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, float("nan"), True, "0.1"])
def test_train_val_split_bad_fraction(bad):
    message = rf"val_fraction must be a number in \[0, 1\), got {bad!r}"
    with pytest.raises(ConfigError, match=message):
        train_val_split(np.arange(10), bad)
