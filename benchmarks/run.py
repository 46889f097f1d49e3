"""Training speed of every implementation, in one run: ``python benchmarks/run.py``.

Each measurement is its own process (``worker.py``): NumPy's OpenBLAS threads and torch's
OpenMP pool slow each other when they share one. Processes alternate, A B C A B C ...,
over ``--repeats`` rounds (the order rotated each round), so a neighbour's burst of work
on this shared machine hits every implementation alike; a ratio is taken between the two
measurements of one round and the reported figure is the median over rounds, with the
smallest and largest round beside it. Every process gets the same thread count
(``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``,
``torch.set_num_threads``, ``rnnlab train --threads``) and glibc's malloc set as
``rnnlab train`` sets it (``rnnlab.memory.retain_freed_memory``).

The NumPy measurements run twice: with the environment as it is and with
``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` removed (older OpenBLAS builds needed them on
some machines; they force a slower kernel on a current one); each records the kernel
OpenBLAS ran (threadpoolctl). ``--busy`` adds one round beside a competing busy process.

The results go, raw, to ``benchmarks/results.json`` and, as tables, to
``docs/benchmarks.md`` (``report.py`` writes the page: everything above its "End-to-end"
section is rewritten; that section and what follows it are kept; ``benchmarks/notes.md``
is the hand-written analysis placed at the end of the generated part).

``--quick``: one round, short windows, for a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from report import DOC, NUMPY_IMPLS, RESULTS, ROOT, print_partial, render

OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def plan(quick: bool) -> list:
    """(cell, H, impls) measured, in order. The full set at d2l's LSTM; the nn path
    against torch.nn for every cell at H = 256 and 1024; the numpy LSTM against its limit."""
    lstm256 = ["numpy", "bare-numpy", "cli-numpy", "cli4-numpy", "torch-scratch",
               "bare-torch-scratch", "cli-torch-scratch", "cli4-torch-scratch", "torch-nn",
               "bare-torch-nn", "cli-torch-nn", "cli4-torch-nn", "nn", "nn-native", "d2l",
               "gemm-numpy", "limit-numpy", "gemm-torch"]
    lstm1024 = ["numpy", "limit-numpy", "gemm-numpy", "torch-scratch", "d2l", "torch-nn",
                "bare-torch-nn", "cli-torch-nn", "cli4-torch-nn", "nn"]
    nn_only = ["torch-nn", "bare-torch-nn", "cli-torch-nn", "cli4-torch-nn", "nn"]
    if quick:
        return [("lstm", 256, lstm256)]
    return ([("lstm", 256, lstm256), ("lstm", 1024, lstm1024)]
            + [(c, h, nn_only) for c in ("rnn", "gru") for h in (256, 1024)])


def env_for_workers(threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("RNNLAB_DATA", str(ROOT.parent / "shared" / "data"))
    env["RNNLAB_BENCH_ALLOC"] = "retain"
    return env


def without_openblas_vars(env: dict) -> dict:
    return {k: v for k, v in env.items() if k not in OPENBLAS_VARS}


def run_worker(impl, cell, hidden, args, env) -> dict:
    epochs = args.cli_epochs if hidden <= 256 else max(11, args.cli_epochs // 2)
    cmd = [sys.executable, str(ROOT / "benchmarks" / "worker.py"), "--impl", impl,
           "--cell", cell, "--hidden", str(hidden), "--seconds", str(args.seconds),
           "--warmup", str(args.warmup), "--threads", str(args.threads), "--epochs", str(epochs)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_profile(cell, hidden, env, torch_impl=None) -> dict:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "profile_step.py"), "--cell", cell,
           "--hidden", str(hidden), "--json"] + (["--torch", torch_impl] if torch_impl else [])
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def machine_info(env) -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    code = ("import numpy, json, torch; c = numpy.show_config(mode='dicts'); "
            "b = c['Build Dependencies']['blas']; "
            "print(json.dumps({'numpy': numpy.__version__, 'blas': b.get('name', '?') + ' ' + "
            "str(b.get('version', '')), 'torch': torch.__version__, "
            "'torch_blas': 'MKL' if torch.backends.mkl.is_available() else 'other', "
            "'cuda': torch.cuda.is_available()}))")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    info = json.loads(r.stdout) if r.returncode == 0 else {}
    info.update(cpu=cpu, cores=os.cpu_count(), python=platform.python_version(),
                platform=platform.platform())
    return info



def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="rnnlab training benchmarks (see module docstring)")
    ap.add_argument("--quick", action="store_true", help="one round of d2l's LSTM, short windows")
    ap.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--seconds", type=float, default=None, help="timed seconds per process")
    ap.add_argument("--warmup", type=float, default=None, help="warm-up seconds per process")
    ap.add_argument("--threads", type=int, default=2, help="threads per process (default 2)")
    ap.add_argument("--cli-epochs", type=int, default=21,
                    help="epochs of each `rnnlab train` run at H = 256 (default 21: the "
                         "first is warm-up, two checkpoints fall in the other 20)")
    ap.add_argument("--busy", action="store_true",
                    help="add one round of d2l's LSTM beside a competing busy process")
    ap.add_argument("--cells", nargs="+", default=None, help="only these cells (a partial "
                    "run: prints its ratios, writes neither the page nor results.json)")
    ap.add_argument("--hiddens", nargs="+", type=int, default=None, help="only these H (partial)")
    ap.add_argument("--impls", nargs="+", default=None,
                    help="only these implementations (partial); ratios are printed against "
                         "the last one, e.g. --impls torch-scratch d2l")
    ap.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--from-results", action="store_true",
                    help="measure nothing: rewrite docs/benchmarks.md from benchmarks/results.json "
                         "(after editing benchmarks/notes.md)")
    args = ap.parse_args(argv)
    if args.from_results:
        render(json.loads(RESULTS.read_text()))
        print(f"rewrote {DOC.relative_to(ROOT)} from {RESULTS.relative_to(ROOT)}")
        return 0
    if args.quick:
        args.repeats = 1
    args.seconds = args.seconds if args.seconds is not None else (1.0 if args.quick else 2.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if args.quick else 0.5)

    env = env_for_workers(args.threads)
    envs = {"env": env, "unset": without_openblas_vars(env)}
    configs = plan(args.quick)
    partial = any(x is not None for x in (args.cells, args.hiddens, args.impls))
    if partial:
        configs = [(c, h, [i for i in impls if args.impls is None or i in args.impls])
                   for c, h, impls in plan(False)
                   if (args.cells is None or c in args.cells)
                   and (args.hiddens is None or h in args.hiddens)]
        configs = [(c, h, impls) for c, h, impls in configs if impls]
        if not configs:
            ap.error("no measurement matches --cells / --hiddens / --impls")
    runs, start = [], time.time()
    kernels = {}

    def measure(rnd, cell, H, impl, blas, busy=False):
        r = run_worker(impl, cell, H, args, envs[blas])
        r.update(round=rnd, blas_env=blas, busy=busy)
        runs.append(r)
        if impl in NUMPY_IMPLS and r.get("blas"):
            kernels["environment as set" if blas == "env" else "OpenBLAS variables unset"] = r["blas"]
        key = "whole_tokens_per_s" if impl.startswith(("cli-", "cli4-")) else "tokens_per_s"
        print(f"round {rnd + 1}/{args.repeats}{' busy' if busy else ''} {cell:4s} H={H:<5d} "
              f"{impl:19s} {blas:5s} {r[key]:>10,.0f} tokens/s  ({time.time() - start:5.0f} s)",
              flush=True)

    for rnd in range(args.repeats):
        for cell, H, impls in configs:
            order = impls[rnd % len(impls):] + impls[:rnd % len(impls)]  # rotate the start
            for impl in order:
                for blas in (("env", "unset") if impl in NUMPY_IMPLS else ("env",)):
                    measure(rnd, cell, H, impl, blas)
    if partial:
        print_partial(runs, configs, args.impls)
        return 0
    if args.busy:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for impl in ("numpy", "torch-scratch", "torch-nn", "cli-torch-nn", "nn", "d2l",
                         "limit-numpy"):
                measure(0, "lstm", 256, impl, "env", busy=True)
        finally:
            spinner.kill()
            spinner.wait()
    profiles = {"numpy": {}, "torch": {}}
    profiles["numpy"]["LSTM, H = 256"] = run_profile("lstm", 256, env)
    profiles["numpy"]["LSTM, H = 256, OpenBLAS variables unset"] = run_profile(
        "lstm", 256, envs["unset"])
    for impl in ("scratch", "nn"):
        profiles["torch"][f"{impl}, LSTM, H = 256"] = run_profile("lstm", 256, env, impl)
    meta = {"quick": args.quick, "date": time.strftime("%Y-%m-%d %H:%M"),
            "repeats": args.repeats, "seconds": args.seconds, "warmup": args.warmup,
            "threads": args.threads, "cli_epochs": args.cli_epochs, "kernels": kernels,
            "plan": configs, "machine": machine_info(env)}
    data = {"meta": meta, "runs": runs, "profiles": profiles}
    RESULTS.write_text(json.dumps(data, indent=1))
    if not args.no_doc:
        DOC.parent.mkdir(exist_ok=True)
        render(data)
        print(f"wrote {DOC.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
