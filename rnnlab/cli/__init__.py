"""The ``rnnlab`` command: one module per subcommand, around this small entry point.

Each command module has ``add_parser(sub)``, whose options map one to one onto a field of
ModelConfig / TrainConfig, and a ``cmd_<name>(args) -> int`` that its parser dispatches to.
Errors of rnnlab's own types print one line on stderr and exit with status 2 (3 for a run
that stopped on a NaN / infinite loss); a traceback means a bug.

Under torchrun every process runs this; rank 0 speaks for all of them. The others print
only what is theirs alone (a lost peer, a full disk, memory), naming their rank: an
rnnlab error there is one every process met alike, or one rank 0 reports for them.
Only ``train`` is data-parallel: any other command started by torchrun runs in process 0
alone, and the others exit at once (status 0).
"""

from __future__ import annotations

import argparse
import signal
import sys

import numpy as np

from ..distributed import launch_rank
from ..errors import (
    EXIT_ERROR,
    DistributedError,
    RnnlabError,
    SubjectError,
    exit_status,
)
from ..version import __version__
from . import compare, generate, gradcheck, inspect, memory, train, verify
from .common import OneLineParser, flag_names, is_out_of_memory, one_line
from .signals import (
    describe,
    detach_from_lost_terminal,
    interrupt_status,
    say,
    stop_signals_as_interrupts,
)

COMMANDS = (train, generate, compare, gradcheck, inspect, memory, verify)  # in the order --help lists them


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="rnnlab",
        description="Recurrent language models with hand-written BPTT (NumPy) and autograd (PyTorch).",
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def explicit_options(argv) -> set:
    """The dests of the options given on the command line (not left to their defaults).

    The same parser with every default suppressed parses the same argv: only what was
    typed lands in the namespace (abbreviations and ``--opt=value`` included)."""
    parser = build_parser()
    for action in _all_actions(parser):
        if action.dest not in ("help", "version", "command"):
            action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def _all_actions(parser):
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_actions(sub)


def main(argv=None) -> int:
    """Run the command; every failure is one line on stderr and an exit status:
    2 an rnnlab error or an OS error (disk full...), 3 a NaN / infinite run, 128 + the
    signal's number when stopped by one: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the subcommand's parser: its --help lists the options it has
        command = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        command.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    args.explicit = explicit_options(argv)  # what was typed: --resume checks it
    with stop_signals_as_interrupts():  # SIGTERM, SIGHUP: as Ctrl-C (cli/signals.py)
        status = _run(args)
    if status == 128 + getattr(signal, "SIGHUP", -128):  # the terminal is gone
        detach_from_lost_terminal()
    return status


def _run(args) -> int:
    rank = launch_rank()  # 0 unless torchrun started this process
    if rank != 0 and args.command != "train":  # generate, verify ...: one process's work,
        return 0  # done by process 0 alone, printed once; the others leave at once
    me = "rnnlab" if rank == 0 else f"rnnlab (process {rank})"
    try:
        # rnnlab checks losses, norms and parameters itself and names the epoch and batch;
        # NumPy's overflow warnings would only add lines to stderr
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            return args.func(args)
    except RnnlabError as exc:
        if rank == 0 or isinstance(exc, DistributedError):
            # a library message speaks in Python arguments: say them as the flags typed; a
            # message about the user's own code (rnnlab verify) quotes that code, unchanged
            text = one_line(exc) if isinstance(exc, SubjectError) else flag_names(one_line(exc))
            print(f"{me}: error: {text}", file=sys.stderr)
        return exit_status(exc)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP
        if rank == 0:
            say(f"rnnlab: {describe(exc)}")
        return interrupt_status(exc)
    except BrokenPipeError:  # `rnnlab generate ... | head`: the reader left, not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # silence the flush
        return 0
    except OSError as exc:  # a full disk or a vanished directory while saving
        print(f"{me}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except (MemoryError, RuntimeError) as exc:  # --hidden 100000000: NumPy's MemoryError,
        if not (isinstance(exc, MemoryError) or is_out_of_memory(exc)):  # torch's (CPU/CUDA)
            raise  # any other RuntimeError is a bug: keep its traceback
        print(f"{me}: error: out of memory ({one_line(exc)[:200]}); use a smaller --hidden, "
              "--batch-size, --num-steps or --num-layers", file=sys.stderr)
        return EXIT_ERROR



__all__ = ["build_parser", "explicit_options", "main"]
