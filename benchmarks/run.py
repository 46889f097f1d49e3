"""Training speed and memory of every implementation, in one run: ``python benchmarks/run.py``.

Each measurement is its own process (``worker.py``): NumPy's OpenBLAS threads and torch's
OpenMP pool slow each other when they share one. Processes alternate, A B C A B C ...,
over ``--repeats`` rounds, so a neighbour's burst of work on this shared machine hits
every implementation alike; a ratio is taken between the two measurements of one round
and the reported figure is the median over rounds. Every process gets the same thread
count (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and
``torch.set_num_threads``). The results go to ``docs/benchmarks.md`` (everything above
its "End-to-end" section is rewritten; that section is kept) and, raw, to
``benchmarks/results.json``.

``--quick``: one round, short windows, for a smoke test (about two minutes).
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

TRAINERS = ("numpy", "torch-scratch", "torch-nn", "nn", "nn-native", "d2l")
GEMMS = ("gemm-numpy", "gemm-torch")
LABELS = {
    "numpy": "rnnlab numpy (hand-written BPTT)",
    "torch-scratch": "rnnlab torch, scratch path",
    "torch-nn": "rnnlab torch, nn path",
    "nn": "torch.nn (d2l concise model)",
    "nn-native": "torch.nn, oneDNN off (ATen)",
    "d2l": "d2l scratch loop (as written)",
    "gemm-numpy": "GEMMs alone, NumPy/OpenBLAS",
    "gemm-torch": "GEMMs alone, torch/MKL",
}
# (numerator, denominator, minimum ratio) on the d2l configuration (H = 256)
ALLOC_TITLES = {
    "default": "glibc's defaults",
    "retain": "freed memory kept for reuse (what `rnnlab train` sets)",
}
ALLOC_TEXT = {
    "default": "Every process with glibc malloc's default settings: blocks above 128 KiB are "
               "mmapped and a large free heap top is trimmed, so a step that frees tens of MiB "
               "gets fresh pages, and a page fault per 4 KiB, in the next step.",
    "retain": "Every process (every implementation alike) first calls "
              "`rnnlab.memory.retain_freed_memory()` (glibc `mallopt`: arrays up to 32 MiB from "
              "the heap, free heap kept up to 1 GiB), as `rnnlab train` does, so a step reuses the "
              "memory the previous step freed.",
}
TARGETS = [
    ("lstm", "numpy", "nn", 1.0),
    ("lstm", "numpy", "d2l", 2.5),
    ("lstm", "torch-scratch", "d2l", 1.5),
    ("rnn", "numpy", "nn", 1.0),
]


def env_for_workers(threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("RNNLAB_DATA", str(ROOT.parent / "shared" / "data"))
    return env


def torch_backend_available(env) -> bool:
    code = "import rnnlab; rnnlab.get_backend('torch', device='cpu', impl='scratch')"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True)
    return r.returncode == 0


def run_worker(impl, cell, hidden, args, env) -> dict:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "worker.py"), "--impl", impl,
           "--cell", cell, "--hidden", str(hidden), "--seconds", str(args.seconds),
           "--warmup", str(args.warmup), "--threads", str(args.threads)]
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


def summarise(runs: list[dict], configs, impls) -> dict:
    """Median tokens/s and memory per (cell, H, impl); paired ratios per round."""
    out = {}
    for cell, H in configs:
        for impl in impls:
            rs = [r for r in runs if (r["cell"], r["hidden"], r["impl"]) == (cell, H, impl)]
            if rs:
                out[f"{cell}/{H}/{impl}"] = {
                    "tokens_per_s": median([r["tokens_per_s"] for r in rs]),
                    "best_window": median([max(r["rates"]) for r in rs]),
                    "train_mem": median([r["train_mem"] for r in rs]),
                    "peak_rss": median([r["peak_rss"] for r in rs]),
                    "rounds": len(rs),
                }
    return out


def paired_ratio(runs, cell, H, a, b) -> float:
    """Median over rounds of tokens/s(a) / tokens/s(b), both measured in the same round."""
    by_round = {}
    for r in runs:
        if (r["cell"], r["hidden"]) == (cell, H) and r["impl"] in (a, b):
            by_round.setdefault(r["round"], {})[r["impl"]] = r["tokens_per_s"]
    ratios = [d[a] / d[b] for d in by_round.values() if a in d and b in d]
    return median(ratios)


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


def fmt_rate(x) -> str:
    return f"{x:,.0f}" if x == x else "n/a"


def fmt_ratio(x) -> str:
    return f"{x:.2f}x" if x == x else "n/a"


def fmt_mib(x) -> str:
    return f"{x / 2**20:,.1f}" if x == x else "n/a"


def memory_predictions(configs) -> dict:
    sys.path.insert(0, str(ROOT))
    from rnnlab.config import ModelConfig
    from rnnlab.memory import estimate_memory

    out = {}
    for cell, H in configs:
        cfg = ModelConfig(cell, 28, H)
        for backend in ("numpy", "torch"):
            out[f"{cell}/{H}/{backend}"] = estimate_memory(cfg, 32, 35, backend=backend).total
        out[f"{cell}/{H}/torch-nn"] = estimate_memory(cfg, 32, 35, backend="torch", impl="nn").total
    return out


def write_report(meta, runs, summary, profiles, predictions, configs, impls) -> str:
    L = []
    L.append("# Benchmarks: training speed and memory\n")
    L.append("Generated by `python benchmarks/run.py` "
             f"({'quick' if meta['quick'] else 'full'} run, {meta['date']}); raw numbers in "
             "`benchmarks/results.json`. Do not edit above the end-to-end section by hand: the "
             "next run rewrites it.\n")
    m = meta["machine"]
    L.append("## Machine\n")
    L.append(f"- CPU: {m.get('cpu')}, {m.get('cores')} cores seen by the OS (a shared VM: "
             "other jobs ran beside the benchmark)")
    L.append(f"- Python {m.get('python')}, NumPy {m.get('numpy')} with {m.get('blas')}, "
             f"torch {m.get('torch')} (BLAS: {m.get('torch_blas')})")
    L.append(f"- Threads: {meta['threads']} for every process (`OMP_NUM_THREADS`, "
             "`OPENBLAS_NUM_THREADS`, `MKL_NUM_THREADS`, `torch.set_num_threads`)")
    L.append("- GPU: none on this machine, so no GPU figure is reported. On a machine with "
             "a CUDA GPU, run `benchmarks/gpu_check.sh`.\n")
    L.append("## Method\n")
    L.append(
        "Training tokens/s of a full training step (forward, BPTT, global-norm clipping "
        "at θ = 1, SGD with lr = 1, float32) on real batches: d2l's "
        "`load_data_time_machine(32, 35)`, i.e. the first 10,000 tokens of *The Time "
        "Machine*, sequential partitioning with the state carried and detached. One window "
        "is one epoch (8 batches); each process warms up for "
        f"{meta['warmup']} s, then times windows for {meta['seconds']} s and reports the "
        "median window. Every implementation runs in its own process, and processes "
        f"alternate A B C ... A B C ... over {meta['repeats']} round(s); the table gives "
        "medians over rounds, and a ratio is the median over rounds of the ratio of the "
        "two measurements taken in the same round.\n")
    L.append("- **rnnlab numpy / torch**: `rnnlab.train.train_epoch`, the loop `rnnlab "
             "train` runs (the torch backend through `get_backend('torch', impl=...)`).")
    L.append("- **torch.nn**: d2l's concise `RNNModel` (`nn.LSTM` / `nn.RNN` + `nn.Linear`, "
             "one-hot inputs) trained by d2l's `train_epoch_ch8` with `torch.optim.SGD` and "
             "`grad_clipping` (`benchmarks/d2l_baseline.py`). On a CPU `nn.LSTM` runs "
             "oneDNN's fused LSTM primitive (weights packed once per call, JIT-compiled "
             "AVX-512 kernels); **ATen** is the same model with oneDNN switched off "
             "(`torch.backends.mkldnn.flags(enabled=False)`), i.e. PyTorch's own native LSTM. "
             "`nn.RNN` runs ATen's kernels either way.")
    L.append("- **d2l scratch**: d2l's chapter 8.5 / 9.2 code, as written (per-gate matmuls on "
             "`F.one_hot(X.T, V).float()`, autograd, d2l's `grad_clipping` and `sgd`), "
             "same loop (`benchmarks/d2l_baseline.py`).")
    L.append("- **GEMM limit**: the matrix products one training step cannot avoid, timed "
             "alone with preallocated contiguous outputs: T recurrent products "
             "H_{t-1} W_h forward and T products dZ_t W_hᵀ backward, one H_prevᵀ dZ "
             "over all steps (dW_h), and the output layer's three products. The one-hot input "
             "side (a row gather for token ids) is not counted. `limit` = B·T / (time of "
             "those GEMMs); `fraction` = achieved tokens/s / limit, against the GEMM library "
             "the implementation uses (OpenBLAS for numpy, MKL for torch).")
    L.append("- **Memory**: `train MiB` is the rise of the process's peak resident set "
             "(`ru_maxrss`) over its resident set just before training, i.e. what training "
             "adds on top of the imported libraries, data and parameters; `predicted` is "
             "`rnnlab.memory.estimate_memory` for one BPTT step (parameters, gradients, "
             "SGD state, activations kept for the backward pass). RSS also holds allocator "
             "slack and the libraries' own workspaces, so it is an upper view; "
             "`tests/test_memory.py` checks the prediction against exact measurements "
             "(tracemalloc for numpy, autograd's saved tensors for torch).\n")

    modes = list(dict.fromkeys(r.get("alloc", "default") for r in runs))
    for mode in modes:
        mruns = [r for r in runs if r.get("alloc", "default") == mode]
        msum = summary[mode]
        L.append(f"## Allocator: {ALLOC_TITLES[mode]}\n")
        L.append(ALLOC_TEXT[mode] + "\n")
        for cell, H in configs:
            L.append(f"### {cell.upper()}, V = 28, H = {H}, B = 32, T = 35"
                     + (" (d2l's configuration)" if H == 256 else "") + f", {mode} allocator\n")
            L.append("| implementation | tokens/s (median) | best window | vs torch.nn | vs ATen "
                     "| vs d2l | GEMM-limit fraction | train MiB (RSS) | predicted MiB |")
            L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            for impl in impls:
                s = msum.get(f"{cell}/{H}/{impl}")
                if s is None:
                    continue
                if impl in GEMMS:
                    L.append(f"| {LABELS[impl]} (limit) | {fmt_rate(s['tokens_per_s'])} | "
                             f"{fmt_rate(s['best_window'])} | | | | | | |")
                    continue
                lib = "gemm-numpy" if impl == "numpy" else "gemm-torch"
                vs_nn = paired_ratio(mruns, cell, H, impl, "nn")
                vs_d2l = paired_ratio(mruns, cell, H, impl, "d2l")
                vs_aten = paired_ratio(mruns, cell, H, impl, "nn-native")
                frac = paired_ratio(mruns, cell, H, impl, lib)
                be = "numpy" if impl == "numpy" else ("torch" if impl.startswith("torch") else None)
                if impl == "torch-nn":
                    be = "torch-nn"
                pred = predictions.get(f"{cell}/{H}/{be}", float("nan")) if be else float("nan")
                L.append(f"| {LABELS[impl]} | {fmt_rate(s['tokens_per_s'])} | "
                         f"{fmt_rate(s['best_window'])} | {fmt_ratio(vs_nn)} | {fmt_ratio(vs_aten)} | "
                         f"{fmt_ratio(vs_d2l)} | {frac:.2f} | {fmt_mib(s['train_mem'])} | "
                         f"{fmt_mib(pred)} |")
            L.append("")

    L.append("## Targets (H = 256, ratios measured in this run, each allocator setting)\n")
    L.append("| target | " + " | ".join(f"{m} allocator" for m in modes) + " | met |")
    L.append("| --- | " + " | ".join("---:" for _ in modes) + " | :---: |")
    for cell, a, b, goal in TARGETS:
        rs = [paired_ratio([r for r in runs if r.get("alloc", "default") == m], cell, 256, a, b)
              for m in modes]
        known = [r for r in rs if r == r]
        ok = "n/a" if not known else ("yes" if all(r >= goal for r in known) else
                                      ("partly" if any(r >= goal for r in known) else "**no**"))
        L.append(f"| {cell}: {LABELS[a]} >= {goal}x {LABELS[b]} | "
                 + " | ".join(fmt_ratio(r) for r in rs) + f" | {ok} |")
    L.append("")

    if profiles:
        L.append("## Where the time goes: one numpy training step\n")
        L.append("`python benchmarks/profile_step.py --cell lstm --hidden 256`: each phase of "
                 "one step timed on its own, the fastest of many runs, in its own process. The "
                 "GEMMs of the two cell loops are timed inside the loops as they run (every "
                 "`np.matmul`), dW_h and the output layer's products alone with the same "
                 "shapes; the rest of a phase is elementwise work, allocation and Python. "
                 "`full step` is `loss_and_grads` + clipping + SGD timed whole: what it has above "
                 "the sum of the phases is what the phases miss when run alone, mostly fresh "
                 "memory (page faults) with glibc's default allocator.\n")
        for key, prof in profiles.items():
            if key.startswith("torch-scratch"):
                continue
            L.append(f"### {key}\n")
            L.append("| phase | ms | of which GEMMs, ms |")
            L.append("| --- | ---: | ---: |")
            for name, ms, gemm in prof["phases"]:
                g = f"{gemm:.2f}" if gemm is not None else ""
                L.append(f"| {name} | {ms:.3f} | {g} |")
            L.append(f"| **sum of phases** | **{prof['total_ms']:.3f}** | "
                     f"**{prof['gemm_ms']:.2f}** |")
            L.append(f"| full step, timed whole | {prof['full_step_ms']:.3f} | |")
            L.append(f"\n{prof['tokens']} tokens per step: {fmt_rate(prof['tokens_per_s'])} "
                     f"tokens/s for the full step; GEMMs are "
                     f"{prof['gemm_ms'] / prof['full_step_ms']:.0%} of it.\n")
    torch_profiles = {k: v for k, v in profiles.items() if k.startswith("torch-scratch")}
    if torch_profiles:
        L.append("## Where the time goes: the torch backend's scratch path\n")
        L.append("`python benchmarks/profile_step.py --torch scratch --cell lstm`: "
                 "`torch.profiler` over five training steps of `rnnlab`'s torch backend; self CPU "
                 "time of the GEMM kernels (`aten::mm`, `aten::addmm`), of all other ATen kernels, "
                 "and the rest of the wall time (Python, the autograd engine, dispatch). The "
                 "profiler adds its own cost per op.\n")
        L.append("| model | step ms (no profiler) | profiled step ms | GEMM kernels ms "
                 "| other kernels ms | rest ms | ATen calls per step |")
        L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for key, p in torch_profiles.items():
            L.append(f"| {key.split(' ', 1)[1]} | {p['step_ms']:.1f} | {p['profiled_step_ms']:.1f} "
                     f"| {p['gemm_ms']:.1f} | {p['other_kernels_ms']:.1f} | {p['overhead_ms']:.1f} "
                     f"| {p['aten_calls_per_step']:.0f} |")
        L.append("")
    L.append(meta.get("notes", ""))
    return "\n".join(L) + "\n"


def keep_e2e(text: str) -> str:
    """The end-to-end section of the existing doc (filled in by hand), or a placeholder."""
    if DOC.exists():
        old = DOC.read_text()
        if E2E_HEADING in old:
            return old[old.index(E2E_HEADING):]
    return (f"{E2E_HEADING}\n\n_To be filled in with the end-to-end run of "
            "d2l's LSTM, 500 epochs, on each backend (perplexity, tokens/s)._\n")


def rerender() -> int:
    data = json.loads(RESULTS.read_text())
    meta, runs = data["meta"], data["runs"]
    notes_file = ROOT / "benchmarks" / "notes.md"
    meta["notes"] = notes_file.read_text() if notes_file.exists() else ""
    configs = list(dict.fromkeys((r["cell"], r["hidden"]) for r in runs))
    impls = list(dict.fromkeys(r["impl"] for r in runs))
    impls = [i for i in TRAINERS + GEMMS if i in impls]
    report = write_report(meta, runs, data["summary"], data["profiles"],
                          data["predicted_bytes"], configs, impls)
    DOC.write_text(report + "\n" + keep_e2e(report))
    print(f"rewrote {DOC.relative_to(ROOT)} from {RESULTS.relative_to(ROOT)}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="rnnlab training benchmarks (see module docstring)")
    ap.add_argument("--quick", action="store_true", help="one round, short windows")
    ap.add_argument("--repeats", type=int, default=5, help="rounds of A B C ... (default 5)")
    ap.add_argument("--seconds", type=float, default=None, help="timed seconds per process")
    ap.add_argument("--warmup", type=float, default=None, help="warm-up seconds per process")
    ap.add_argument("--threads", type=int, default=2, help="threads per process (default 2)")
    ap.add_argument("--cells", nargs="+", default=["lstm", "rnn"])
    ap.add_argument("--hiddens", nargs="+", type=int, default=[256, 1024])
    ap.add_argument("--impls", nargs="+", default=None,
                    help=f"subset of {', '.join(TRAINERS + GEMMS)}")
    ap.add_argument("--alloc", choices=("default", "retain", "both"), default="both",
                    help="glibc malloc settings of every worker: defaults, retain_freed_memory(), "
                         "or both in alternation (default both)")
    ap.add_argument("--no-doc", action="store_true", help="print, do not write docs/benchmarks.md")
    ap.add_argument("--from-results", action="store_true",
                    help="measure nothing: rewrite docs/benchmarks.md from benchmarks/results.json "
                         "(after editing benchmarks/notes.md)")
    args = ap.parse_args(argv)
    if args.from_results:
        return rerender()
    if args.quick:
        args.repeats = 1
    args.seconds = args.seconds if args.seconds is not None else (1.0 if args.quick else 2.0)
    args.warmup = args.warmup if args.warmup is not None else (0.3 if args.quick else 0.7)

    env = env_for_workers(args.threads)
    impls = list(args.impls or TRAINERS + GEMMS)
    if any(i.startswith("torch-") for i in impls) and not torch_backend_available(env):
        print("rnnlab's torch backend is not available: skipping torch-scratch, torch-nn")
        impls = [i for i in impls if not i.startswith("torch-")]
    configs = [(c, h) for h in args.hiddens for c in args.cells]
    modes = ["default", "retain"] if args.alloc == "both" else [args.alloc]
    envs = {m: dict(env, RNNLAB_BENCH_ALLOC=m) for m in modes}
    runs, start = [], time.time()
    for rnd in range(args.repeats):
        for mode in modes:
            for cell, H in configs:
                order = impls[rnd % len(impls):] + impls[:rnd % len(impls)]  # rotate the start
                for impl in order:
                    r = run_worker(impl, cell, H, args, envs[mode])
                    r["round"] = rnd
                    runs.append(r)
                    print(f"round {rnd + 1}/{args.repeats} {mode:7s} {cell:4s} H={H:<5d} "
                          f"{impl:14s} {r['tokens_per_s']:>10,.0f} tokens/s  train "
                          f"+{r['train_mem'] / 2**20:7.1f} MiB  ({time.time() - start:5.0f} s)",
                          flush=True)
    profiles = {}
    for cell, H in configs:
        if H == 256:
            for mode in modes:
                profiles[f"{cell.upper()}, H = {H}, {mode} allocator"] = run_profile(
                    cell, H, envs[mode])
            if "torch-scratch" in impls:
                profiles[f"torch-scratch {cell.upper()}, H = {H}"] = run_profile(
                    cell, H, envs[modes[0]], "scratch")
    summary = {m: summarise([r for r in runs if r["alloc"] == m], configs, impls) for m in modes}
    meta = {"quick": args.quick, "date": time.strftime("%Y-%m-%d %H:%M"),
            "repeats": args.repeats, "seconds": args.seconds, "warmup": args.warmup,
            "threads": args.threads, "machine": machine_info(env)}
    notes_file = ROOT / "benchmarks" / "notes.md"
    meta["notes"] = notes_file.read_text() if notes_file.exists() else ""
    predictions = memory_predictions(configs)
    RESULTS.write_text(json.dumps({"meta": {k: v for k, v in meta.items() if k != "notes"},
                                   "runs": runs, "summary": summary, "profiles": profiles,
                                   "predicted_bytes": predictions}, indent=1))
    report = write_report(meta, runs, summary, profiles, predictions, configs, impls)
    if args.no_doc:
        print(report)
    else:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(report + "\n" + keep_e2e(report))
        print(f"wrote {DOC.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
