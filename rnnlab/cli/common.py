"""What every ``rnnlab`` command shares: one-line usage errors, option types, backends."""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from ..backend import get_backend
from ..distributed import launch_rank
from ..errors import EXIT_ERROR, ConfigError
from ..threads import MAX_THREADS, usable_cores


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (status 2), naming the option
    and the value: ``rnnlab train: error: argument --hidden: expected a positive ...``."""

    def error(self, message: str):
        if launch_rank() != 0:  # under torchrun every process parses alike: rank 0 says it
            self.exit(EXIT_ERROR)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {one_line(message)} "
                              f"(see {self.prog} --help)\n")


# The Python names of rnnlab's functions and configs, and the flags the commands give
# them: an error raised inside the library speaks Python, the command speaks flags.
FLAGS = {
    "batch_size": "--batch-size", "num_steps": "--num-steps", "num_hiddens": "--hidden",
    "num_layers": "--num-layers", "gru_form": "--gru-form", "val_fraction": "--val-fraction",
    "max_tokens": "--max-tokens", "clip_theta": "--clip", "num_epochs": "--epochs",
    "num_preds": "--num-preds", "top_k": "--top-k", "use_random_iter": "--random",
    "lr_decay": "--lr-decay", "lr_decay_after": "--lr-decay-after", "min_freq": "--min-freq",
    "lr_schedule": "--lr-schedule",
    # plain words too, so only in the name=value form
    "device": "--device", "impl": "--impl", "dtype": "--dtype", "lr": "--lr",
    "temperature": "--temperature", "dropout": "--dropout", "seed": "--seed",
    "threads": "--threads", "optimizer": "--optimizer", "init": "--init",
    "patience": "--patience", "strategy": "--strategy", "prefix": "--prefix",
}
_VALUE = r"""(?:'([^']*)'|"([^"]*)"|([^\s,;:)]+))"""
_ASSIGN = re.compile(r"\b(" + "|".join(FLAGS) + r")=" + _VALUE)
_BARE = r"(?<![\w.-])(?P<bare>" + "|".join(k for k in FLAGS if "_" in k) + r")\b(?!=)"
_TOKENS = re.compile(  # name=value, else a quoted string (repr), else a bare name
    _ASSIGN.pattern + r"|(?P<quoted>'[^']*')|" + _BARE)
_REPEATED = re.compile(r"(--[a-z-]+(?: [^\s()]+)?) \(\1\)")


def flag_names(message: str) -> str:
    """A library message in the command's words: ``batch_size=32`` -> ``--batch-size 32``,
    ``device='cpu'`` -> ``--device cpu``, ``use_random_iter=True`` -> ``--random``, and a
    bare ``num_steps`` -> ``--num-steps``; ``--gru-form torch (--gru-form torch)`` is
    said once."""
    def assign(m):
        flag, value = FLAGS[m.group(1)], next(v for v in m.groups()[1:] if v is not None)
        if value in ("True", "False") and m.group(1) == "use_random_iter":
            return flag if value == "True" else f"no {flag}"
        return f"{flag} {value}"

    def one(m):  # one left-to-right pass: a quoted part is the user's own text (a file
        if m.group("quoted"):  # name, an --example), never rewritten
            return m.group("quoted")
        if m.group("bare"):
            return FLAGS[m.group("bare")]
        return assign(m)

    message = _TOKENS.sub(one, message)
    return _REPEATED.sub(r"\1", message)


def one_line(message) -> str:
    """A message as exactly one line (a file name may hold a newline)."""
    return " ".join(str(message).splitlines()) or type(message).__name__


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {v}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return v


def nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    if not (math.isfinite(v) and v >= 0):
        raise argparse.ArgumentTypeError(f"expected a non-negative finite number, got {text}")
    return v


def clip_threshold(text: str) -> float | None:
    """--clip: a positive number, or ``none`` (also ``off``, ``inf``) for no clipping."""
    if text.strip().lower() in ("none", "off", "inf", "infinity", "+inf"):
        return None
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, or 'none' for no "
                                         f"clipping, got {text!r}")
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, or 'none' for no "
                                         f"clipping, got {text}")
    return v


def fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    if not (0.0 <= v < 1.0):
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return v


def decay_factor(text: str) -> float:
    """A number in (0, 1]: a multiplier (--lr-decay: 1 keeps the rate, 0.97 takes 3% off
    each time) or a share of a whole (--top-p)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    if not (0.0 < v <= 1.0):
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text}")
    return v


def threads_arg(text: str):
    """``--threads``: "auto" or a positive integer."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got {text!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got {v}")
    if v > MAX_THREADS:  # a count the BLAS libraries cannot even hold
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or at most {MAX_THREADS:,} threads (this machine has "
            f"{usable_cores()} usable cores), got {v}")
    return v


def finite_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return v


def add_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=threads_arg, default="auto", metavar="N|auto",
                   help="CPU threads for the matrix products (NumPy's BLAS and torch); auto "
                        "(default) times the first steps with 1 thread and with all cores, "
                        "keeps the faster, and measures again if the speed falls (on a busy "
                        "machine one thread is often many times faster)")


def describe_choice(m, work: float = 1.0, unit: str = "steps/s") -> str:
    """One line for a ThreadTuner Measurement: what ``--threads auto`` chose and why."""
    def threads(n):
        return f"{n} thread{'s' if n > 1 else ''}"

    parts = []
    rates = m.rates(work)
    if rates:
        parts.append(f"{unit}: "
                     + ", ".join(f"{threads(n)} {rates[n]:,.0f}" for n in sorted(rates)))
    screened = {n: r for n, r in m.probe_ratios().items() if n not in rates and r > 1}
    if screened:  # what left them out, and the usual reason: not a fault of this machine
        parts.append(", ".join(f"{threads(n)} {r:.0f}x slower" for n, r in sorted(screened.items()))
                     + " on a short probe, as when other programs keep the cores busy")
    why = {"slower": " after the speed fell", "recheck": " on a periodic recheck"}.get(m.reason, "")
    return f"threads: {m.chosen}, the fastest on this machine now (auto{why}; {'; '.join(parts)})"


def add_backend_options(p: argparse.ArgumentParser, dtype_default: str | None = "float32") -> None:
    p.add_argument("--backend", choices=("numpy", "torch"), default="numpy",
                   help="numpy: hand-written BPTT (default); torch: autograd, CPU or GPU")
    p.add_argument("--device", default=None,
                   help="torch backend only: cpu, cuda, cuda:N (default: cuda if available)")
    p.add_argument("--impl", choices=("scratch", "nn"), default="scratch",
                   help="torch backend only: scratch (d2l's equations in torch ops) or nn "
                        "(torch.nn.RNN/LSTM/GRU with the same weights, cuDNN on GPU)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=dtype_default,
                   help="floating-point type of parameters and activations (default "
                        + (dtype_default or "the checkpoint's") + ")")


def check_backend_options(backend: str, impl: str, device=None, cell: str | None = None,
                          gru_form: str | None = None, gru_form_option: bool = True) -> None:
    """Refuse, before anything runs or prints, an option the chosen backend would ignore
    or a combination that cannot run: the numpy backend has one implementation and runs
    on the CPU; torch.nn.GRU computes the torch form of the GRU only."""
    if backend != "torch":
        if impl not in (None, "scratch"):
            raise ConfigError(f"--impl {impl} needs --backend torch (the numpy backend has "
                              "one implementation, its hand-written BPTT)")
        if device not in (None, "cpu"):
            raise ConfigError(f"--device {device} needs --backend torch")
    elif impl == "nn" and cell == "gru" and gru_form not in (None, "torch"):
        fix = ("add --gru-form torch, or use --impl scratch" if gru_form_option else
               "this checkpoint holds d2l's form: use --impl scratch")
        raise ConfigError("--impl nn runs torch.nn.GRU, which computes the torch form of the "
                          f"GRU, R * (H W_hh + b_hn), not d2l's (R * H) W_hh; {fix}")


def make_backend(args, cell: str | None = None, gru_form: str | None = None,
                 gru_form_option: bool = True):
    check_backend_options(args.backend, args.impl, args.device, cell, gru_form, gru_form_option)
    options = {"dtype": args.dtype}
    if args.backend == "torch":
        options.update(device=args.device, impl=args.impl)
    return get_backend(args.backend, **options)


def check_run_dir(out: Path) -> None:
    """The run directory exists (made if needed) and a file can be written in it."""
    import tempfile

    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise ConfigError(f"--out {str(out)!r}: cannot write a checkpoint there "
                          f"({exc.strerror or exc})") from None



def is_out_of_memory(exc: BaseException) -> bool:
    """torch's allocation failures: torch.OutOfMemoryError (CUDA) or the CPU allocator's."""
    text = str(exc)
    return (type(exc).__name__ == "OutOfMemoryError" or "out of memory" in text
            or "can't allocate memory" in text)

