"""A run read back from its checkpoint: how it cut text into tokens, the prefix it sampled
from, a one-line summary, and the runs inside a folder of run directories.

``rnnlab generate`` uses these so that a checkpoint alone is enough to generate the way
the run did: a word-level run generates words, a Chinese run trained with ``--prefix 时间``
starts from 时间, and ``rnnlab generate runs`` lists what ``runs/`` holds.
"""

from __future__ import annotations

from pathlib import Path

from .checkpoint import CHECKPOINT_NAME, Checkpoint, load_checkpoint
from .data import Tokenizer, Vocab, tokenizer_for
from .errors import RnnlabError

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


def default_prefix(corpus, vocab: Vocab, tokenizer: Tokenizer) -> str:
    """d2l's 'time traveller' on The Time Machine, else the corpus's most frequent token."""
    if tokenizer.time_machine and all(w in vocab.token_to_idx
                                      for w in tokenizer.prefix_tokens(TIME_MACHINE_PREFIX)):
        return TIME_MACHINE_PREFIX
    return vocab.idx_to_token[1] if len(vocab) > 1 else vocab.idx_to_token[0]


def run_prefix(ckpt: Checkpoint) -> str:
    """The prefix the run sampled from: ``train --prefix`` (or its default), as recorded;
    for an older checkpoint, its recorded option, else the corpus's default."""
    for prefix in (ckpt.extra.get("prefix"), run_options(ckpt).get("prefix")):
        if isinstance(prefix, str) and prefix:
            return prefix
    return default_prefix(ckpt.extra.get("corpus"), ckpt.vocab, run_tokenizer(ckpt))


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


def find_runs(folder) -> list[Path]:
    """Run directories inside ``folder`` (its subdirectories holding a checkpoint), sorted."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if (p / CHECKPOINT_NAME).is_file())


def runs_table(folder) -> str:
    """A table of the runs in ``folder``: cell, sizes, token level, epochs, perplexities,
    corpus; a checkpoint that does not load is listed with the reason."""
    header = ("run", "cell", "H", "layers", "tokens", "vocab", "epochs", "train ppl", "val ppl",
              "corpus")
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
                     fmt(last.get("train_ppl")), fmt(last.get("val_ppl")),
                     Path(str(c.extra.get("corpus", "?"))).name))
    full = [r for r in rows if len(r) == len(header)]
    widths = [max(len(r[i]) for r in [header, *full]) for i in range(len(header))]
    lines = ["  ".join(f"{cell:<{w}}" for cell, w in zip(header, widths)).rstrip()]
    for r in rows:
        lines.append("  ".join(f"{cell:<{w}}" for cell, w in zip(r, widths)).rstrip()
                     if len(r) == len(header) else f"{r[0]:<{widths[0]}}  {r[1]}")
    return "\n".join(lines)
