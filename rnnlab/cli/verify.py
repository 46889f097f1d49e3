"""``rnnlab verify``: hold someone's RNN, LSTM or GRU code to rnnlab's specification.

One file: its report (or ``--json``). Several files (course staff checking submissions):
each is checked by its own ``rnnlab verify FILE --json`` process, ``-j N`` at a time, and
the run ends with one table (file, verdict, seconds, the mistakes named) or one JSON line
per file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from ..errors import EXIT_ERROR, NoConventionFitsError, SubjectError
from .common import nonneg_int, positive_float, positive_int

DEFAULT_TIMEOUT = 10.0  # the same as rnnlab.testing.isolation.DEFAULT_TIMEOUT (a test holds them equal)


def add_parser(sub) -> None:
    """Register ``rnnlab verify`` on the subcommand parsers ``sub``."""
    v = sub.add_parser(
        "verify", help="check your own RNN/LSTM/GRU code against the spec and say what is wrong",
        description="Import FILE, adapt what it defines to the convention, and check it against "
                    "rnnlab's specification with Hypothesis property tests: outputs, final state, "
                    "every gradient, finite differences of a hand-written backward, step by step, "
                    "carried state, batch rows, inputs left unchanged. A failure is shrunk to the "
                    "smallest example and localised (array, gate block, time step, worst error); "
                    "known mistakes are named. FILE runs in a process of its own, each call into "
                    "it limited to --timeout seconds; what it prints is kept out of the report. "
                    "Exit 0 when every property ran and holds, 1 when one fails (also when your "
                    "code exits, is killed or runs past the time limit), 2 when FILE cannot be "
                    "imported or does not fit the convention (or, --convention left out, any). "
                    "Several files: each is checked on its own and a table ends the run; the "
                    "exit status is the worst of theirs.")
    v.add_argument("target", metavar="FILE[:NAME]", nargs="+",
                   help="the target: the Python file to check, optionally one name in it (a function, class, "
                        "factory or Protocol object); several files are checked one by one")
    v.add_argument("--convention", metavar="NAME", default=None,
                   help="how FILE lays out weights, inputs and states: cs231n (assignment 3's "
                        "rnn/lstm step and sequence functions), d2l (rnn|lstm|gru(inputs, state, "
                        "params)), torch.nn (an nn.Module class like nn.LSTM), min-char-rnn "
                        "(lossFun), deeplearning.ai (rnn_cell_forward...), protocol (an "
                        "rnnlab.testing.Protocol), torch-tutorial (PyTorch's char-RNN tutorial "
                        "module, RNN(input_size, hidden_size, output_size)). Left out, each is "
                        "tried on FILE and the most specific that fits is taken (the report says "
                        "which); when none fits, each one's reason is listed and a Protocol "
                        "skeleton calling FILE's functions is printed, to edit")
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
    v.add_argument("--timeout", metavar="SECONDS", type=positive_float, default=DEFAULT_TIMEOUT,
                   help=f"time limit of each call into your code, importing it included "
                        f"(default {DEFAULT_TIMEOUT:g}); a call past it fails the run")
    v.add_argument("-j", "--jobs", metavar="N", type=positive_int, default=1,
                   help="with several files, check N at a time (default 1)")
    v.add_argument("--json", action="store_true",
                   help="print the report as JSON; with several files, one JSON line per file")
    v.add_argument("--no-progress", action="store_true",
                   help="no progress lines on stderr (shown once a run takes over 3 s)")
    v.set_defaults(func=cmd_verify)


def cmd_verify(args) -> int:
    try:
        from ..testing import DEFAULT_MAX_EXAMPLES, Progress, verify
        from ..testing.loader import check_convention
    except ImportError as exc:  # Hypothesis is an optional dependency
        raise SubjectError(f"rnnlab verify needs Hypothesis ({exc}): pip install hypothesis") from None
    check_convention(args.convention)  # the registry's names, before any file is read
    if len(args.target) > 1:
        return verify_many(args)
    progress = Progress(None if args.no_progress else sys.stderr)
    try:
        report = verify(args.target[0], args.convention, args.cell,
                        max_examples=args.max_examples or DEFAULT_MAX_EXAMPLES, seed=args.seed,
                        example=args.example, progress=progress, timeout=args.timeout)
    except NoConventionFitsError as exc:
        return none_fits(args.target[0], exc, skeleton=not args.json)
    print(report.to_json() if args.json else report.render())
    return report.exit_status


def none_fits(target: str, exc: NoConventionFitsError, skeleton: bool) -> int:
    """A file that fits no convention: on stderr, what each looked for, one line each, and
    how to wrap the file; on stdout (unless ``skeleton`` is false: --json), a Protocol
    skeleton that calls the file's functions, read off its source, never run here."""
    # imported here: Hypothesis is optional, and rnnlab.testing needs it
    from ..testing.loader import split_target
    from ..testing.skeleton import protocol_skeleton

    path, _ = split_target(target)
    print(f"rnnlab: error: {path.name} fits none of rnnlab's conventions:", file=sys.stderr)
    for convention, why in exc.tried:
        print(f"  {convention}: {why}", file=sys.stderr)
    if not skeleton:
        print("Wrap your code in an rnnlab.testing.Protocol and give --convention protocol "
              "(docs/verify.md, 'Wrap your code in a Protocol'); without --json, a skeleton "
              "to edit is printed.", file=sys.stderr)
        return EXIT_ERROR
    print(f"Wrap your code in an rnnlab.testing.Protocol and give --convention protocol: a "
          f"skeleton that calls {path.name}'s functions is on stdout (rnnlab verify {path.name} "
          f"> {path.stem}_protocol.py, then edit its TODOs; docs/verify.md, 'Wrap your code in "
          "a Protocol').", file=sys.stderr)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    print(protocol_skeleton(path, text), end="")
    return EXIT_ERROR


# ------------------------------------------------------------------ several files


def _one_file(target: str, args) -> dict:
    """Check one file in a process of its own: {file, verdict, exit_status, seconds,
    mistakes, reason, report}."""
    cmd = [sys.executable, "-m", "rnnlab", "verify", target, "--json", "--no-progress",
           "--seed", str(args.seed), "--timeout", str(args.timeout)]
    if args.convention:
        cmd += ["--convention", args.convention]
    if args.cell:
        cmd += ["--cell", args.cell]
    if args.max_examples:
        cmd += ["--max-examples", str(args.max_examples)]
    if args.example:
        cmd += ["--example", args.example]
    start = time.monotonic()
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       errors="replace", env=dict(os.environ, PYTHONUNBUFFERED="1"))
    row = {"file": target, "verdict": "ERROR", "exit_status": r.returncode,
           "seconds": round(time.monotonic() - start, 1), "mistakes": [], "reason": None,
           "report": None}
    report = None
    if r.returncode in (0, 1):
        try:
            report = json.loads(r.stdout)
        except ValueError:
            report = None
    if report is None:
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        said = [ln for ln in lines if ln.startswith("rnnlab: error: ")]  # a reason of several lines
        last = said[0] if said else lines[-1] if lines else f"exit status {r.returncode}"
        row["reason"] = last.removeprefix("rnnlab: error: ")
        row["exit_status"] = r.returncode if r.returncode not in (0, 1) else EXIT_ERROR
        return row
    row["report"] = report
    row["verdict"] = "PASS" if report.get("ok") else "FAIL"
    named = []
    for u in report.get("units", []):
        for m in u.get("diagnosis", []):
            if m.get("full"):
                named += [n for n in m.get("mistakes", []) if n not in named]
    row["mistakes"] = named
    if report.get("ended"):
        row["reason"] = report["ended"]
    elif not report.get("ok"):
        failing = sorted({p["name"] for u in report.get("units", []) for p in u.get("properties", [])
                          if p.get("verdict") == "FAIL"})
        row["reason"] = ("" if named else "no known mistake; ") + "fails " + ", ".join(failing)
    return row


def verify_many(args) -> int:
    """Each file on its own, ``args.jobs`` at a time; a table (or JSON lines) at the end."""
    targets = list(args.target)
    rows: dict = {}
    done = [0]

    def run(target):
        row = _one_file(target, args)
        done[0] += 1
        if not args.no_progress:
            print(f"rnnlab verify: {target}: {row['verdict']} ({done[0]}/{len(targets)})",
                  file=sys.stderr, flush=True)
        return row

    with ThreadPoolExecutor(max_workers=min(args.jobs, len(targets))) as pool:
        for target, row in zip(targets, pool.map(run, targets)):
            rows[target] = row
    ordered = [rows[t] for t in targets]
    if args.json:
        for row in ordered:
            print(json.dumps(row, ensure_ascii=False, default=str))
    else:
        print(table(ordered))
    return max(row["exit_status"] for row in ordered)


def table(rows: list) -> str:
    """file | verdict | seconds | mistakes named (or why it failed)."""
    w = max(len("file"), *(len(r["file"]) for r in rows))
    out = [f"{'file':<{w}}  verdict  seconds  mistakes named", f"{'-' * w}  -------  -------  --------------"]
    for r in rows:
        what = ", ".join(r["mistakes"])
        if r["reason"]:
            what = f"{what}; {r['reason']}" if what else r["reason"]
        out.append(f"{r['file']:<{w}}  {r['verdict']:<7}  {r['seconds']:>7.1f}  {what}")
    n = {v: sum(1 for r in rows if r["verdict"] == v) for v in ("PASS", "FAIL", "ERROR")}
    out.append("")
    out.append(f"{len(rows)} files: {n['PASS']} pass, {n['FAIL']} fail, {n['ERROR']} could not be "
               "checked (error)")
    return "\n".join(out)


__all__ = ["add_parser", "cmd_verify", "none_fits", "verify_many", "table"]
