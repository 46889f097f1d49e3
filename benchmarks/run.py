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

The results go to ``docs/benchmarks.md`` (everything above its "End-to-end" section is
rewritten; that section and what follows it are kept; ``benchmarks/notes.md`` is the
hand-written analysis placed at the end of the generated part) and, raw, to
``benchmarks/results.json``.

``--quick``: one round, short windows, for a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "benchmarks" / "results.json"
E2E_HEADING = "## End-to-end: d2l's LSTM run"
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

LABELS = {
    "numpy": "rnnlab numpy, train_epoch",
    "bare-numpy": "rnnlab numpy, bare loop",
    "cli-numpy": "rnnlab numpy, `rnnlab train`",
    "torch-scratch": "rnnlab torch scratch, train_epoch",
    "bare-torch-scratch": "rnnlab torch scratch, bare loop",
    "cli-torch-scratch": "rnnlab torch scratch, `rnnlab train`",
    "torch-nn": "rnnlab torch nn, train_epoch",
    "bare-torch-nn": "rnnlab torch nn, bare loop",
    "cli-torch-nn": "rnnlab torch nn, `rnnlab train`",
    "cli4-numpy": "rnnlab numpy, `rnnlab train --val-every 4`",
    "cli4-torch-scratch": "rnnlab torch scratch, `rnnlab train --val-every 4`",
    "cli4-torch-nn": "rnnlab torch nn, `rnnlab train --val-every 4`",
    "nn": "torch.nn (d2l's concise model and loop)",
    "nn-native": "torch.nn, oneDNN off (ATen)",
    "d2l": "d2l's scratch loop",
    "gemm-numpy": "GEMMs alone, NumPy",
    "limit-numpy": "GEMMs + tanh passes alone, NumPy (the limit)",
    "gemm-torch": "GEMMs alone, torch/MKL",
}
NUMPY_IMPLS = ("numpy", "bare-numpy", "cli-numpy", "cli4-numpy", "gemm-numpy", "limit-numpy")
LOOP = ("bare", "", "cli")  # bare loop, train_epoch, rnnlab train


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


# ------------------------------------------------------------------------- analysis


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def select(runs, cell, H, impl, blas="env", busy=False, key="tokens_per_s") -> dict:
    """round -> value of ``key`` for one implementation and configuration."""
    return {r["round"]: r[key] for r in runs
            if (r["cell"], r["hidden"], r["impl"]) == (cell, H, impl)
            and r.get("blas_env", "env") == blas and r.get("busy", False) == busy and key in r}


def paired(runs, cell, H, a, b, blas="env", busy=False, key_a="tokens_per_s",
           key_b="tokens_per_s") -> tuple:
    """(median, min, max) over rounds of a / b, both measured in the same round."""
    xa, xb = select(runs, cell, H, a, blas, busy, key_a), select(runs, cell, H, b, blas, busy, key_b)
    ratios = [xa[k] / xb[k] for k in xa if k in xb]
    if not ratios:
        return (float("nan"),) * 3
    return median(ratios), min(ratios), max(ratios)


def fmt_rate(x) -> str:
    return f"{x:,.0f}" if x == x else "n/a"


def fmt_ratio(t) -> str:
    m, lo, hi = t
    if m != m:
        return "n/a"
    return f"{m:.2f}x" if lo == hi else f"{m:.2f}x ({lo:.2f}-{hi:.2f})"


def val_share(runs, cell, H, impl) -> tuple:
    """(median, min, max) over rounds of the share of a `rnnlab train` run's wall time
    spent in its validation passes: 1 - whole / whole-without-validation."""
    whole = select(runs, cell, H, impl, key="whole_tokens_per_s")
    without = select(runs, cell, H, impl, key="whole_without_val_tokens_per_s")
    shares = [1 - whole[k] / without[k] for k in whole if k in without]
    if not shares:
        return (float("nan"),) * 3
    return median(shares), min(shares), max(shares)


def fmt_share(t) -> str:
    m, lo, hi = t
    if m != m:
        return "n/a"
    return f"{m:.1%}" if lo == hi else f"{m:.1%} ({lo:.1%}-{hi:.1%})"


def fmt_frac(t) -> str:
    m, lo, hi = t
    if m != m:
        return "n/a"
    return f"{m:.2f}" if lo == hi else f"{m:.2f} ({lo:.2f}-{hi:.2f})"


# -------------------------------------------------------------------------- report


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


def rate_row(runs, cell, H, impl, blas="env", busy=False) -> str:
    v = select(runs, cell, H, impl, blas, busy)
    vals = list(v.values())
    if not vals:
        return ""
    spread = f"{min(vals):,.0f}-{max(vals):,.0f}" if len(vals) > 1 else ""
    return f"{fmt_rate(median(vals))} | {spread}"


def write_report(meta, runs, profiles) -> str:
    L = []
    m = meta["machine"]
    kernels = meta.get("kernels", {})
    L.append("# Benchmarks: training speed\n")
    L.append("Generated by `python benchmarks/run.py` "
             f"({'quick' if meta['quick'] else 'full'} run, {meta['date']}, "
             f"{meta['repeats']} rounds); raw numbers in `benchmarks/results.json`. Do not edit "
             "above the end-to-end section by hand: the next run rewrites it.\n")
    L.append("## Machine and method\n")
    L.append(f"- CPU: {m.get('cpu')}, {m.get('cores')} cores seen by the OS, a shared virtual "
             "machine (other jobs ran beside the benchmark; see the spread columns).")
    L.append(f"- Python {m.get('python')}, NumPy {m.get('numpy')} with {m.get('blas')}, torch "
             f"{m.get('torch')} (BLAS: {m.get('torch_blas')}); CUDA available: {m.get('cuda')}.")
    L.append(f"- Threads: {meta['threads']} in every process; glibc's malloc as `rnnlab train` "
             "sets it (freed memory kept for reuse).")
    if kernels:
        L.append("- NumPy's BLAS kernel (threadpoolctl): "
                 + "; ".join(f"{k}: `{v}`" for k, v in kernels.items()) + ".")
    L.append("")
    L.append(
        "Training tokens/s of full training steps (forward, BPTT, global-norm clipping at "
        "θ = 1, SGD at lr = 1, float32) on d2l's batches: `load_data_time_machine(32, 35)`, "
        "the first 10,000 characters of *The Time Machine*, V = 28, B = 32, T = 35, "
        "sequential partitioning with the state carried. A window is one epoch (8 batches); "
        f"each process warms up for {meta['warmup']} s, then times windows for "
        f"{meta['seconds']} s and reports its median window. Every implementation runs in "
        "its own process; processes alternate over the rounds, and a ratio is the median "
        "over rounds of the ratios measured in the same round, with the lowest and highest "
        "round in brackets.\n")
    L.append("- **bare loop**: `loss_and_grads`, `clip_grads` and the optimiser's step in a "
             "plain Python loop over the batches: what a user would write around a backend.")
    L.append("- **train_epoch**: `rnnlab.train.train_epoch`, the loop `rnnlab train` runs.")
    L.append("- **`rnnlab train`**: the command as a user runs it, in the process: d2l's "
             "defaults, validation perplexity on the 1,000 held-out characters every epoch, "
             "the epoch line, the progress bar (stderr made a terminal), a checkpoint every "
             f"10 epochs, `--threads {meta['threads']}`. *printed*: the tokens/s it prints "
             "(its training loop, bar included); *whole*: the wall time from one epoch line "
             f"to the next over {meta['cli_epochs'] - 1} epochs (H = 256; fewer at 1024) after "
             "a first one, validation, logging and checkpoints included. **`--val-every 4`**: "
             "the same command validating after every 4th epoch and the last.")
    L.append("- **torch.nn**: d2l's concise `RNNModel` (`nn.RNN` / `nn.LSTM` / `nn.GRU` and "
             "`nn.Linear`, one-hot inputs) trained by d2l's `train_epoch_ch8` with "
             "`torch.optim.SGD` and `grad_clipping` (`benchmarks/d2l_baseline.py`); on a CPU "
             "`nn.LSTM` and `nn.GRU` run oneDNN's fused kernels. **ATen**: the same with "
             "oneDNN off. **d2l scratch**: d2l's own LSTM code, per-gate matmuls on one-hot "
             "inputs, autograd, d2l's clipping and SGD, same loop. The GRU is torch.nn's form "
             "on every path.")
    L.append("- **The limit NumPy sets**: the matrix products of one step (T products "
             "H_{t-1} W_h, T products dZ_t W_hᵀ, one H_prevᵀ dZ over all steps, the output "
             "layer's three) and the step's unavoidable elementwise passes (the LSTM's tanh "
             "over (B, 4H) and over (B, H) at every step), each run alone on preallocated "
             "arrays laid out as the step has them; `limit` = B·T / (their time).\n")

    # ---------------------------------------------------------------- target tables
    L.append("## 1. The training loop's own cost\n")
    L.append("d2l's LSTM (H = 256). Ratios to the bare loop of the same backend, measured in "
             "the same round: 1.00x means the loop costs nothing.\n")
    L.append("| backend | bare loop tokens/s | train_epoch / bare | `rnnlab train` printed / bare "
             "| `rnnlab train` whole / bare | its validation passes, share of its time "
             "| `rnnlab train` whole without the validation passes / bare "
             "| `rnnlab train --val-every 4` whole / bare |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for be in ("numpy", "torch-scratch", "torch-nn"):
        bare = select(runs, "lstm", 256, f"bare-{be}")
        if not bare:
            continue
        L.append(f"| {be} | {fmt_rate(median(list(bare.values())))} | "
                 f"{fmt_ratio(paired(runs, 'lstm', 256, be, f'bare-{be}'))} | "
                 f"{fmt_ratio(paired(runs, 'lstm', 256, f'cli-{be}', f'bare-{be}', key_a='printed_tokens_per_s'))} | "
                 f"{fmt_ratio(paired(runs, 'lstm', 256, f'cli-{be}', f'bare-{be}', key_a='whole_tokens_per_s'))} | "
                 f"{fmt_share(val_share(runs, 'lstm', 256, f'cli-{be}'))} | "
                 f"{fmt_ratio(paired(runs, 'lstm', 256, f'cli-{be}', f'bare-{be}', key_a='whole_without_val_tokens_per_s'))} | "
                 f"{fmt_ratio(paired(runs, 'lstm', 256, f'cli4-{be}', f'bare-{be}', key_a='whole_tokens_per_s'))} |")
    L.append("")
    L.append("*whole without the validation passes*: the same runs' wall time less the time "
             "their validation passes took (each timed as it ran): what the command adds to "
             "the bare loop besides validating, i.e. the progress bar, the epoch lines, the "
             "checkpoints, the parameter check after each epoch.\n")
    L.append("The nn path against torch.nn (d2l's concise model and loop), every cell:\n")
    L.append("| cell | H | torch.nn tokens/s | bare loop / torch.nn | train_epoch / torch.nn "
             "| `rnnlab train` printed / torch.nn | `rnnlab train` whole / torch.nn "
             "| `rnnlab train` whole without the validation passes / torch.nn "
             "| `rnnlab train --val-every 4` whole / torch.nn |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for cell, H, impls in meta["plan"]:
        if "nn" not in impls or "torch-nn" not in impls:
            continue
        nn = select(runs, cell, H, "nn")
        L.append(f"| {cell} | {H} | {fmt_rate(median(list(nn.values())))} | "
                 f"{fmt_ratio(paired(runs, cell, H, 'bare-torch-nn', 'nn'))} | "
                 f"{fmt_ratio(paired(runs, cell, H, 'torch-nn', 'nn'))} | "
                 f"{fmt_ratio(paired(runs, cell, H, 'cli-torch-nn', 'nn', key_a='printed_tokens_per_s'))} | "
                 f"{fmt_ratio(paired(runs, cell, H, 'cli-torch-nn', 'nn', key_a='whole_tokens_per_s'))} | "
                 f"{fmt_ratio(paired(runs, cell, H, 'cli-torch-nn', 'nn', key_a='whole_without_val_tokens_per_s'))} | "
                 f"{fmt_ratio(paired(runs, cell, H, 'cli4-torch-nn', 'nn', key_a='whole_tokens_per_s'))} |")
    L.append("")
    L.append("d2l's loop (the torch.nn column) validates nothing; `rnnlab train` measures the "
             "validation perplexity on the 1,000 held-out characters after every epoch, one "
             "forward pass over them, as `--val-fraction 0.1` (the default) asks. The "
             "column without the validation passes compares the same training without "
             "that pass; the last, the command as a user runs it with `--val-every 4`.\n")

    L.append("## 2. The torch scratch path against d2l's scratch loop\n")
    L.append("| H | d2l scratch tokens/s | rnnlab scratch, train_epoch / d2l | bare loop / d2l "
             "| vs ATen's LSTM | fraction of the MKL GEMM limit |")
    L.append("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for cell, H, impls in meta["plan"]:
        if cell != "lstm" or "d2l" not in impls:
            continue
        d2l = select(runs, cell, H, "d2l")
        L.append(f"| {H} | {fmt_rate(median(list(d2l.values())))} | "
                 f"{fmt_ratio(paired(runs, cell, H, 'torch-scratch', 'd2l'))} | "
                 f"{fmt_ratio(paired(runs, cell, H, 'bare-torch-scratch', 'd2l'))} | "
                 f"{fmt_ratio(paired(runs, cell, H, 'torch-scratch', 'nn-native'))} | "
                 f"{fmt_frac(paired(runs, cell, H, 'torch-scratch', 'gemm-torch'))} |")
    L.append("")

    L.append("## 3. The numpy LSTM against the limit NumPy sets\n")
    L.append("| H | OpenBLAS kernel | limit tokens/s | GEMMs alone tokens/s | rnnlab numpy "
             "tokens/s | fraction of the limit | fraction of the GEMMs alone |")
    L.append("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for cell, H, impls in meta["plan"]:
        if cell != "lstm" or "limit-numpy" not in impls:
            continue
        for blas in ("env", "unset"):
            lim = select(runs, cell, H, "limit-numpy", blas)
            if not lim:
                continue
            kern = kernels.get("environment as set" if blas == "env" else "OpenBLAS variables unset", "?")
            L.append(f"| {H} | `{kern}` | {fmt_rate(median(list(lim.values())))} | "
                     f"{fmt_rate(median(list(select(runs, cell, H, 'gemm-numpy', blas).values())))} | "
                     f"{fmt_rate(median(list(select(runs, cell, H, 'numpy', blas).values())))} | "
                     f"{fmt_frac(paired(runs, cell, H, 'numpy', 'limit-numpy', blas))} | "
                     f"{fmt_frac(paired(runs, cell, H, 'numpy', 'gemm-numpy', blas))} |")
    L.append("")

    # ---------------------------------------------------------------- all rows
    L.append("## Every measurement\n")
    L.append("Median tokens/s over the rounds, and the lowest-highest round.\n")
    for cell, H, impls in meta["plan"]:
        L.append(f"### {cell.upper()}, H = {H}" + (" (d2l's configuration)" if
                                                     (cell, H) == ("lstm", 256) else "") + "\n")
        L.append("| implementation | tokens/s | rounds' range | vs torch.nn | vs d2l scratch |")
        L.append("| --- | ---: | --- | ---: | ---: |")
        for impl in impls:
            for blas in (("env", "unset") if impl in NUMPY_IMPLS else ("env",)):
                row = rate_row(runs, cell, H, impl, blas)
                if not row:
                    continue
                label = LABELS[impl] + (" (OpenBLAS variables unset)" if blas == "unset" else "")
                key = "whole_tokens_per_s" if impl.startswith(("cli-", "cli4-")) else "tokens_per_s"
                L.append(f"| {label} | {row} | "
                         f"{fmt_ratio(paired(runs, cell, H, impl, 'nn', blas, key_a=key))} | "
                         f"{fmt_ratio(paired(runs, cell, H, impl, 'd2l', blas, key_a=key))} |")
        L.append("")
    L.append("`rnnlab train` rows give the whole wall-clock rate (validation and checkpoints "
             "included).\n")

    busy = [r for r in runs if r.get("busy")]
    if busy:
        L.append("## Beside a competing busy process\n")
        L.append("One round with a process spinning on one of the two cores for the whole "
                 "round (`python -c 'while True: pass'`), as another user's job would; "
                 f"threads still {meta['threads']}.\n")
        L.append("| implementation | tokens/s busy | tokens/s quiet (median) | vs torch.nn busy "
                 "| vs d2l scratch busy |")
        L.append("| --- | ---: | ---: | ---: | ---: |")
        for impl in dict.fromkeys(r["impl"] for r in busy):
            b = select(runs, "lstm", 256, impl, busy=True)
            q = select(runs, "lstm", 256, impl)
            key = "whole_tokens_per_s" if impl.startswith(("cli-", "cli4-")) else "tokens_per_s"
            L.append(f"| {LABELS[impl]} | {fmt_rate(median(list(b.values())))} | "
                     f"{fmt_rate(median(list(q.values())))} | "
                     f"{fmt_ratio(paired(runs, 'lstm', 256, impl, 'nn', busy=True, key_a=key))} | "
                     f"{fmt_ratio(paired(runs, 'lstm', 256, impl, 'd2l', busy=True, key_a=key))} |")
        L.append("")

    # ---------------------------------------------------------------- profiles
    if profiles.get("numpy"):
        L.append("## Where the time goes: one numpy training step\n")
        L.append("`python benchmarks/profile_step.py --cell lstm --hidden 256`: each phase of "
                 "one step timed on its own, the fastest of many runs. The GEMMs of the two cell "
                 "loops are timed inside the loops as they run (every `np.matmul`); `full step` "
                 "is `loss_and_grads` + clipping + SGD timed whole.\n")
        for key, prof in profiles["numpy"].items():
            L.append(f"### {key}\n")
            L.append("| phase | ms | of which GEMMs, ms |")
            L.append("| --- | ---: | ---: |")
            for name, ms, gemm in prof["phases"]:
                L.append(f"| {name} | {ms:.3f} | {'' if gemm is None else f'{gemm:.2f}'} |")
            L.append(f"| **sum of phases** | **{prof['total_ms']:.3f}** | **{prof['gemm_ms']:.2f}** |")
            L.append(f"| full step, timed whole | {prof['full_step_ms']:.3f} | |")
            L.append(f"\n{fmt_rate(prof['tokens_per_s'])} tokens/s for the full step; GEMMs "
                     f"are {prof['gemm_ms'] / prof['full_step_ms']:.0%} of it.\n")
    if profiles.get("torch"):
        L.append("## Where the time goes: the torch backend\n")
        L.append("`python benchmarks/profile_step.py --torch scratch|nn --cell lstm`: "
                 "`torch.profiler` over five training steps; self CPU time of the GEMM "
                 "kernels, of all other ATen kernels, and the rest (Python, the autograd "
                 "engine, dispatch). The profiler adds its own cost per op.\n")
        L.append("| path | step ms (no profiler) | profiled step ms | GEMM kernels ms "
                 "| other kernels ms | rest ms | ATen calls per step |")
        L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for key, p in profiles["torch"].items():
            L.append(f"| {key} | {p['step_ms']:.1f} | {p['profiled_step_ms']:.1f} "
                     f"| {p['gemm_ms']:.1f} | {p['other_kernels_ms']:.1f} | {p['overhead_ms']:.1f} "
                     f"| {p['aten_calls_per_step']:.0f} |")
        L.append("")
    L.append(meta.get("notes", ""))
    return "\n".join(L) + "\n"


def print_partial(runs, configs, impls) -> None:
    """A partial run's medians, and each implementation against the last one named."""
    for cell, H, measured in configs:
        ref = (impls or measured)[-1]
        print(f"\n{cell} H={H}: median tokens/s over the rounds, ratio to {ref} "
              "(median of the rounds' ratios, lowest-highest round)")
        for impl in measured:
            for blas in (("env", "unset") if impl in NUMPY_IMPLS else ("env",)):
                key = "whole_tokens_per_s" if impl.startswith(("cli-", "cli4-")) else "tokens_per_s"
                v = select(runs, cell, H, impl, blas, key=key)
                if not v:
                    continue
                ratio = fmt_ratio(paired(runs, cell, H, impl, ref, blas, key_a=key))
                print(f"  {impl:19s} {blas:5s} {fmt_rate(median(list(v.values()))):>10s}  "
                      f"{ratio}")


def kept_tail() -> str:
    """The end-to-end section of the existing doc and what follows it (written by hand)."""
    if DOC.exists():
        old = DOC.read_text()
        if E2E_HEADING in old:
            return old[old.index(E2E_HEADING):]
    return f"{E2E_HEADING}\n\n_To be filled in with d2l's 500-epoch LSTM run on each backend._\n"


def render(data) -> None:
    meta = dict(data["meta"])
    notes_file = ROOT / "benchmarks" / "notes.md"
    meta["notes"] = notes_file.read_text() if notes_file.exists() else ""
    report = write_report(meta, data["runs"], data["profiles"])
    DOC.write_text(report + "\n" + kept_tail())


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
