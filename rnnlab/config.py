"""Frozen configuration dataclasses: one per concern, every default explained.

The CLI maps onto these one to one (``--hidden`` -> ``ModelConfig.num_hiddens`` ...).
Unknown keys are refused by :func:`replace_checked`, as minGPT's config overrides do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .checks import check_bool, check_choice, check_int, check_number
from .errors import ConfigError

CELLS = ("rnn", "lstm", "gru", "irnn")
# softmax: cross-entropy over V classes (language models, the copy task); mse: one real
# per step, squared error (the adding problem)
HEADS = ("softmax", "mse")
GRU_FORMS = ("d2l", "torch")
# sgd: d2l's sgd; adam, adagrad: torch.optim's rules; adagrad-minchar: min-char-rnn's update
OPTIMIZERS = ("sgd", "adam", "adagrad", "adagrad-minchar")


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"  # "rnn" | "lstm" | "gru" | "irnn" (ReLU, W_hh = I at init: Le et al. 2015)
    vocab_size: int = 28  # V: logits width, and the one-hot input width unless input_size is set
    num_hiddens: int = 256  # H: width of every hidden state (d2l uses 256 for ch. 8/9)
    num_layers: int = 1  # stacked layers; layer k+1 reads layer k's hidden states
    gru_form: str = "d2l"  # "d2l": (R*H) @ W_hh;  "torch": R * (H @ W_hh + b_hn)
    dropout: float = 0.0  # dropout on the outputs of every layer but the last (training only); needs num_layers >= 2
    bidirectional: bool = False  # a reverse-time pass per layer, outputs concatenated
    input_size: int | None = None  # None: token ids (B, T) read one-hot; In: real inputs (B, T, In)
    head: str = "softmax"  # "softmax": cross-entropy; "mse": squared error on one real (V = 1)

    def __post_init__(self) -> None:
        check_choice("cell", self.cell, CELLS)
        for name in ("vocab_size", "num_hiddens", "num_layers"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), lo=1))
        check_choice("gru_form", self.gru_form, GRU_FORMS)
        object.__setattr__(self, "dropout",
                           check_number("dropout", self.dropout, lo=0, hi=1, hi_open=True))
        object.__setattr__(self, "bidirectional", check_bool("bidirectional", self.bidirectional))
        if self.input_size is not None:
            object.__setattr__(self, "input_size", check_int("input_size", self.input_size, lo=1))
        check_choice("head", self.head, HEADS)
        if self.head == "mse" and self.vocab_size != 1:  # one real per step, as the targets
            exc = ConfigError(
                f"head='mse' regresses one real number per step, so the output width "
                f"vocab_size must be 1, got {self.vocab_size}")
            exc.argument = "vocab_size"
            raise exc
        if self.dropout > 0 and self.num_layers == 1:  # refused, not ignored as torch.nn does
            exc = ConfigError(
                f"dropout={self.dropout:g} acts between stacked layers, and a model with "
                "num_layers=1 has none, so it would never be applied; use num_layers >= 2, "
                "or dropout=0")
            exc.argument = "dropout"
            raise exc

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def num_states(self) -> int:
        """Arrays in the state per layer and direction: (H, C) for lstm, (H,) otherwise."""
        return 2 if self.cell == "lstm" else 1

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict; ``input_size`` and ``head`` only where they differ from
        their defaults, so a language model's record (a checkpoint's metadata) is the same
        as before those fields existed and older rnnlab versions still read it."""
        d = dataclasses.asdict(self)
        for name, default in _QUIET_DEFAULTS.items():
            if d[name] == default:
                del d[name]
        return d


_QUIET_DEFAULTS = {"input_size": None, "head": "softmax"}  # left out of to_dict() at these


def replace_checked(cfg: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` that names an unknown key instead of a TypeError."""
    fields = {f.name for f in dataclasses.fields(cfg)}
    unknown = sorted(set(changes) - fields)
    if unknown:
        raise ConfigError(
            f"unknown {type(cfg).__name__} option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(fields))}"
        )
    return dataclasses.replace(cfg, **changes)
