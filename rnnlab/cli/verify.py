"""``rnnlab verify``: hold someone's RNN, LSTM or GRU code to rnnlab's specification."""

from __future__ import annotations

import sys

from ..errors import SubjectError
from .common import nonneg_int, positive_int

CONVENTIONS = ("cs231n", "d2l", "torch.nn", "min-char-rnn", "deeplearning.ai", "protocol")


def add_parser(sub) -> None:
    """Register ``rnnlab verify`` on the subcommand parsers ``sub``."""
    v = sub.add_parser(
        "verify", help="check your own RNN/LSTM/GRU code against the spec and say what is wrong",
        description="Import FILE, adapt what it defines to the convention, and check it against "
                    "rnnlab's specification with Hypothesis property tests: outputs, final state, "
                    "every gradient, finite differences of a hand-written backward, step by step, "
                    "carried state, batch rows. A failure is shrunk to the smallest example and "
                    "localised (array, gate block, time step, worst error); known mistakes are "
                    "named. Exit 0 when every property holds, 1 when one fails, 2 when FILE does "
                    "not fit the convention.")
    v.add_argument("target", metavar="FILE[:NAME]",
                   help="the target: the Python file to check, optionally one name in it (a function, class, "
                        "factory or Protocol object)")
    v.add_argument("--convention", required=True, choices=CONVENTIONS,
                   help="how FILE lays out weights, inputs and states: cs231n (assignment 3's "
                        "rnn/lstm step and sequence functions), d2l (rnn|lstm|gru(inputs, state, "
                        "params)), torch.nn (an nn.Module class like nn.LSTM), min-char-rnn "
                        "(lossFun), protocol (an rnnlab.testing.Protocol)")
    v.add_argument("--cell", choices=("rnn", "lstm", "gru"), default=None,
                   help="check only this cell (default: every cell found)")
    v.add_argument("--max-examples", type=positive_int, default=None,
                   help="Hypothesis examples per property (default 30): more finds rarer bugs, "
                        "fewer is faster")
    v.add_argument("--seed", type=nonneg_int, default=0,
                   help="seed of the example search; the same seed gives the same report (default 0)")
    v.add_argument("--example", metavar="SIZES", default=None,
                   help="replay one example from a report instead of searching, e.g. "
                        "'B=1 T=2 D=1 H=1 seed=0'")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.add_argument("--no-progress", action="store_true",
                   help="no progress lines on stderr (shown once a run takes over 3 s)")
    v.set_defaults(func=cmd_verify)


def cmd_verify(args) -> int:
    try:
        from ..testing import DEFAULT_MAX_EXAMPLES, Progress, verify
    except ImportError as exc:  # Hypothesis is an optional dependency
        raise SubjectError(f"rnnlab verify needs Hypothesis ({exc}): pip install hypothesis") from None
    progress = Progress(None if args.no_progress else sys.stderr)
    report = verify(args.target, args.convention, args.cell,
                    max_examples=args.max_examples or DEFAULT_MAX_EXAMPLES, seed=args.seed,
                    example=args.example, progress=progress)
    print(report.to_json() if args.json else report.render())
    return report.exit_status
