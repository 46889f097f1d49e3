"""A run read back from its checkpoint: how it cut text into tokens, the prefix it sampled
from, a one-line summary, and the runs inside a folder of run directories.

``rnnlab generate`` uses these so that a checkpoint alone is enough to generate the way
the run did: a word-level run generates words, a Chinese run trained with ``--prefix 时间``
starts from 时间, and ``rnnlab generate runs`` lists what ``runs/`` holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .checkpoint import CHECKPOINT_NAME, Checkpoint, load_checkpoint
from .data import Tokenizer, Vocab, tokenizer_for
from .errors import RnnlabError
from .schedule import best_epoch, val_history

TIME_MACHINE_PREFIX = "time traveller"  # d2l's predict_ch8('time traveller', ...)


def run_options(ckpt: Checkpoint) -> dict:
    """The options ``rnnlab train`` recorded (empty for a checkpoint written from Python)."""
    options = ckpt.extra.get("options")
    return options if isinstance(options, dict) else {}


def run_token(ckpt: Checkpoint) -> str:
    """``"char"`` or ``"word"``: the run's token level (checkpoints from before word-level
    models existed are character-level)."""
    token = ckpt.train.get("token", run_options(ckpt).get("token", "char"))
    return token if token in ("char", "word") else "char"


def run_tokenizer(ckpt: Checkpoint) -> Tokenizer:
    return tokenizer_for(str(ckpt.extra.get("corpus", "")), run_token(ckpt))


PREFIX_WORDS = 2  # a default prefix is the first two words of a sentence or line...
PREFIX_CHARS = 16  # ...of at most this many characters (a Chinese line has no spaces)
SENTENCE_ENDS = ".!?。！？"


def default_prefix(tokens: Sequence[str] | None, vocab: Vocab, tokenizer: Tokenizer) -> str:
    """The prefix of the samples when --prefix is not given (see :func:`choose_prefix`)."""
    return choose_prefix(tokens, vocab, tokenizer)[0]


def choose_prefix(tokens: Sequence[str] | None, vocab: Vocab,
                  tokenizer: Tokenizer) -> tuple[str, str]:
    """(prefix, where it comes from, in words) for the samples of a run on ``tokens``, the
    training corpus's tokens in order (None: only the vocabulary is known).

    d2l's 'time traveller' on The Time Machine. On any other text, a prefix that shows
    something: the first words of the corpus's first sentence (a letter after a sentence's
    end, a blank line or the start), else of its first line that starts with a letter; a
    prefix of the most frequent token would be a space on most texts, and a sample from
    it a line of spaces. Without the tokens (or without a sentence in them): the most
    frequent token that is not whitespace."""
    if tokenizer.time_machine and all(w in vocab.token_to_idx
                                      for w in tokenizer.prefix_tokens(TIME_MACHINE_PREFIX)):
        return TIME_MACHINE_PREFIX, "d2l's prefix on The Time Machine"
    if tokens is not None:
        for starts, where in ((_sentence_starts, "the start of the corpus's first sentence"),
                              (_line_starts, "the start of the corpus's first line")):
            for i in starts(tokens, tokenizer.token == "char"):
                prefix = _words_from(tokens, i, vocab, tokenizer)
                if prefix:
                    return prefix, where
    shown = [t for t in vocab.idx_to_token[1:] if t.strip()]  # by descending frequency
    if shown:
        return shown[0], "the corpus's most frequent token"
    return (vocab.idx_to_token[1] if len(vocab) > 1 else vocab.idx_to_token[0],
            "the corpus's most frequent token")


def _sentence_starts(tokens: Sequence[str], chars: bool):
    """Indices of tokens that begin a sentence with a letter: the first letter of the text,
    and a letter after whitespace that follows a sentence's end (. ! ?) or a blank line."""
    ended = True  # the text's start counts as a sentence's end
    for i, tok in enumerate(tokens):
        if chars:
            if tok.isalpha() and ended and (i == 0 or not tokens[i - 1].isalnum()):
                yield i
            if not tok.isspace():
                ended = tok in SENTENCE_ENDS or (ended and not tok.isalnum())
            elif tok == "\n" and i > 0 and tokens[i - 1] == "\n":
                ended = True  # a blank line ends a paragraph
        else:
            if ended and tok[:1].isalpha():
                yield i
            ended = tok[-1:] in SENTENCE_ENDS


def _line_starts(tokens: Sequence[str], chars: bool):
    """Indices of tokens that begin a line with a letter (words: any word with a letter)."""
    for i, tok in enumerate(tokens):
        if chars and tok.isalpha() and (i == 0 or tokens[i - 1] == "\n"):
            yield i
        elif not chars and any(c.isalpha() for c in tok):
            yield i
            return


def _words_from(tokens: Sequence[str], i: int, vocab: Vocab, tokenizer: Tokenizer) -> str:
    """The first PREFIX_WORDS words from token i, within one line, at most PREFIX_CHARS
    characters, ending before punctuation; '' when one of them is not in the vocabulary
    (left out by --min-freq, it would read as <unk>)."""
    if tokenizer.token == "word":
        words = list(tokens[i:i + PREFIX_WORDS])
        return tokenizer.join(words) if all(_known(w, vocab) for w in words) else ""
    text, words = "", 0
    for tok in tokens[i:i + PREFIX_CHARS]:
        if tok == " " and text and text[-1] != " ":
            words += 1
            if words == PREFIX_WORDS:
                break
        elif not (tok.isalnum() or tok in "'-" or tok == " "):
            break  # a newline, a comma, a full stop: the phrase ends there
        text += tok
    text = text.rstrip(" '-")
    return text if text and all(_known(c, vocab) for c in text) else ""


def _known(token: str, vocab: Vocab) -> bool:
    return vocab.token_to_idx.get(token, vocab.unk) != vocab.unk


def run_prefix(ckpt: Checkpoint) -> str:
    """The prefix the run sampled from: ``train --prefix`` (or its default), as recorded;
    for an older checkpoint, its recorded option, else the corpus's default."""
    for prefix in (ckpt.extra.get("prefix"), run_options(ckpt).get("prefix")):
        if isinstance(prefix, str) and prefix:
            return prefix
    return default_prefix(None, ckpt.vocab, run_tokenizer(ckpt))


def summary(ckpt: Checkpoint) -> str:
    """One line: model, token level, epochs, last perplexities and the best validation."""
    m = ckpt.model
    layers = f", {m.num_layers} layers" if m.num_layers > 1 else ""
    what = f"{m.cell} H={m.num_hiddens}{layers}, {run_token(ckpt)}-level, vocab {m.vocab_size}"
    total = ckpt.train.get("num_epochs")
    epochs = f"epoch {ckpt.epoch}" + (f"/{total}" if isinstance(total, int) else "")
    last = ckpt.history[-1] if ckpt.history and isinstance(ckpt.history[-1], dict) else {}
    ppl = ""
    if isinstance(last.get("train_ppl"), (int, float)):
        ppl = f", train ppl {last['train_ppl']:.2f}"
    if isinstance(last.get("val_ppl"), (int, float)):
        ppl += f", val ppl {last['val_ppl']:.2f}"
        vals = [(h["val_ppl"], h["epoch"]) for h in ckpt.history
                if isinstance(h, dict) and isinstance(h.get("val_ppl"), (int, float))]
        best, at = min(vals)
        if at != last.get("epoch"):
            ppl += f" (best {best:.2f} at epoch {at})"
    return f"{what}; {epochs}{ppl}"


def best_val(history: list) -> str:
    """'7.15 (epoch 12)': the lowest validation perplexity of a history and its epoch."""
    at = best_epoch(val_history(history))
    if at is None:
        return "-"
    best = history[at - 1]
    return f"{best['val_ppl']:.2f} (epoch {best.get('epoch', at)})"


def find_runs(folder) -> list[Path]:
    """Run directories inside ``folder`` (its subdirectories holding a checkpoint), sorted."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if (p / CHECKPOINT_NAME).is_file())


def runs_table(folder) -> str:
    """A table of the runs in ``folder``: cell, sizes, token level, epochs, the last
    training perplexity, the best validation perplexity and its epoch (the model
    best.safetensors holds, which ``rnnlab generate <run>`` uses), corpus; a checkpoint
    that does not load is listed with the reason."""
    header = ("run", "cell", "H", "layers", "tokens", "vocab", "epochs", "train ppl",
              "best val ppl", "corpus")
    rows = []
    for run in find_runs(folder):
        try:
            c = load_checkpoint(run)
        except RnnlabError as exc:
            rows.append((str(run), f"unreadable: {exc}"))
            continue
        last = c.history[-1] if c.history and isinstance(c.history[-1], dict) else {}
        fmt = (lambda v: f"{v:.2f}" if isinstance(v, (int, float)) else "-")
        total = c.train.get("num_epochs")
        rows.append((str(run), c.model.cell, str(c.model.num_hiddens), str(c.model.num_layers),
                     run_token(c), str(c.model.vocab_size),
                     f"{c.epoch}/{total}" if isinstance(total, int) else str(c.epoch),
                     fmt(last.get("train_ppl")), best_val(c.history),
                     Path(str(c.extra.get("corpus", "?"))).name))
    full = [r for r in rows if len(r) == len(header)]
    widths = [max(len(r[i]) for r in [header, *full]) for i in range(len(header))]
    lines = ["  ".join(f"{cell:<{w}}" for cell, w in zip(header, widths)).rstrip()]
    for r in rows:
        lines.append("  ".join(f"{cell:<{w}}" for cell, w in zip(r, widths)).rstrip()
                     if len(r) == len(header) else f"{r[0]:<{widths[0]}}  {r[1]}")
    return "\n".join(lines)
