"""The GPU check: ``bash benchmarks/gpu_check.sh`` (this script with ``--device cuda``).

On a machine with a CUDA GPU, in one command and a few minutes:

1. **the CUDA tests**: every test marked ``cuda`` (``pytest -m cuda``), in a process of
   their own, with ``CUBLAS_WORKSPACE_CONFIG`` set so the deterministic-mode test runs too;
   a skipped CUDA test counts as a failure here (on a GPU machine none may skip);
2. **the GPU against the CPU**: loss, every gradient and the final state of the scratch
   path and of the nn path (cuDNN) on the GPU against the same path on the CPU and
   against the NumPy backend, for the RNN, LSTM and GRU (both forms on the scratch path),
   one layer, two stacked layers with dropout masks, and bidirectional, in float64
   (relative 1e-10) and in float32 with TF32 off (relative 1e-5, on the scale of the
   largest gradient); then two epochs of d2l's LSTM through ``rnnlab.train`` on each
   device, float64, whose perplexities must agree to 1e-9;
3. **the GPU benchmark**: training tokens/s of d2l's LSTM (V 28, B 32, T 35) at H = 256
   and 1024: rnnlab's scratch and nn paths through ``rnnlab.train.train_epoch``, d2l's
   concise ``torch.nn`` model and d2l's scratch model trained by d2l's loop, all on the
   same GPU, float32 with PyTorch's TF32 defaults (what a user gets).

It prints one table and exits 0 when everything agreed and passed, 1 on any failure or
mismatch, and 3 (with a message) on a machine without CUDA. ``--device cpu`` runs parts
2 and 3 on the CPU (the GPU column is then the CPU again): the test suite runs it that
way, quickly, so this script cannot rot on machines without a GPU.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # import rnnlab from this checkout
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

EXIT_NO_CUDA = 3
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}


class Report:
    """The rows of the one table, and whether anything failed."""

    def __init__(self):
        self.rows, self.failed = [], 0

    def add(self, part: str, what: str, result: str, ok: bool | None = True) -> None:
        """``ok``: True passed, False failed, None a measurement (nothing to pass)."""
        self.rows.append((part, what, result, "" if ok is None else ("ok" if ok else "FAIL")))
        self.failed += ok is False

    def print(self, out=None) -> None:
        out = out or sys.stdout
        widths = [max(len(r[i]) for r in self.rows + [("part", "check", "result", "")])
                  for i in range(4)]
        line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
        print(line(("part", "check", "result", "")), file=out)
        print("  ".join("-" * w for w in widths), file=out)
        for r in self.rows:
            print(line(r), file=out)


# ------------------------------------------------------------------ 1. the CUDA tests


def run_cuda_tests(report: Report, timeout: float) -> None:
    """``pytest -m cuda`` in its own process; a skip is a failure on a GPU machine."""
    env = dict(os.environ, CUBLAS_WORKSPACE_CONFIG=os.environ.get("CUBLAS_WORKSPACE_CONFIG",
                                                                   ":4096:8"))
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-rs", "-p", "no:cacheprovider",
           str(ROOT / "tests")]
    start = time.perf_counter()
    try:
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        report.add("1 tests", "pytest -m cuda", f"did not finish in {timeout:.0f} s", False)
        return
    counts = pytest_counts(r.stdout)
    ok = (r.returncode == 0 and counts["passed"] > 0 and counts["skipped"] == 0
          and counts["failed"] == 0 and counts["errors"] == 0)
    report.add("1 tests", "pytest -m cuda",
               f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} "
               f"skipped, {counts['errors']} errors ({time.perf_counter() - start:.0f} s)", ok)
    if not ok:
        print(r.stdout[-4000:], r.stderr[-2000:], sep="\n", file=sys.stderr)


def pytest_counts(stdout: str) -> dict:
    """passed / failed / skipped / errors from pytest's last summary line ("3 passed,
    1 skipped, 2 deselected in 4.1s"); all 0 when there is none (nothing ran)."""
    counts = {k: 0 for k in ("passed", "failed", "skipped", "errors")}
    summary = next((line for line in reversed(stdout.splitlines()) if " in " in line), "")
    for part in summary.replace("=", " ").split(","):
        words = part.split()
        if len(words) >= 2 and words[0].isdigit():
            key = {"error": "errors"}.get(words[1], words[1])
            if key in counts:
                counts[key] = int(words[0])
    return counts


# ------------------------------------------------------------ 2. the GPU against the CPU


def cases(quick: bool = False):
    """(label, ModelConfig, impls) of the equivalence checks; ``quick``: three of them that
    together cover every cell, stacking with dropout and both directions."""
    from rnnlab.config import ModelConfig

    V, H = 28, 16
    if quick:
        return [("lstm, 1 layer", ModelConfig("lstm", V, H), ("scratch", "nn")),
                ("gru (torch form), 2 layers, dropout",
                 ModelConfig("gru", V, H, num_layers=2, dropout=0.3, gru_form="torch"),
                 ("scratch", "nn")),
                ("rnn, bidirectional", ModelConfig("rnn", V, H, bidirectional=True),
                 ("scratch", "nn"))]
    out = []
    for cell in ("rnn", "lstm", "gru"):
        forms = ("d2l", "torch") if cell == "gru" else ("d2l",)
        for form in forms:
            impls = ("scratch", "nn") if (cell != "gru" or form == "torch") else ("scratch",)
            name = cell + (f" ({form} form)" if cell == "gru" else "")
            out.append((f"{name}, 1 layer", ModelConfig(cell, V, H, gru_form=form), impls))
            out.append((f"{name}, 2 layers, dropout",
                        ModelConfig(cell, V, H, num_layers=2, dropout=0.3, gru_form=form), impls))
            out.append((f"{name}, bidirectional",
                        ModelConfig(cell, V, H, bidirectional=True, gru_form=form), impls))
    return out


def tf32_off():
    """float32 at full precision on the GPU: cuDNN's and cuBLAS's TF32 off for the block."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def block():
        matmul = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        try:
            with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
                yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = matmul

    return block()


def to64(x) -> np.ndarray:
    return np.asarray(x.detach().cpu().double().numpy() if hasattr(x, "detach") else x,
                      dtype=np.float64)


def max_error(got, want) -> float:
    """max |got - want| over every array, on the scale of the largest |want|: a gradient
    that is ~0 (a saturated gate) is compared on the scale of the problem, not its own."""
    got, want = [to64(g) for g in got], [to64(w) for w in want]
    scale = max(float(np.abs(w).max()) for w in want if w.size)
    return max(float(np.abs(g - w).max()) for g, w in zip(got, want) if w.size) / max(scale, 1e-300)


def run_path(cfg, impl, dtype, device, problem):
    """(loss, grads, state_T) of one path on one device, as float64 NumPy."""
    import rnnlab

    params, X, Y, state, masks = problem
    be = rnnlab.get_backend("torch", dtype=dtype, device=device, impl=impl)
    loss, grads, state_T = be.loss_and_grads(
        cfg, be.from_numpy(params), X, Y, be.state_from_numpy(state), dropout_masks=masks)
    return loss, [grads[k] for k in sorted(grads)], list(state_T)


def numpy_path(cfg, dtype, problem):
    import rnnlab

    params, X, Y, state, masks = problem
    be = rnnlab.get_backend("numpy", dtype=dtype)
    cast = {k: v.astype(dtype) for k, v in params.items()}
    loss, grads, state_T = be.loss_and_grads(cfg, cast, X, Y,
                                             tuple(s.astype(dtype) for s in state),
                                             dropout_masks=masks)
    return loss, [grads[k] for k in sorted(grads)], list(state_T)


PERTURB = None  # tests only: f(loss, grads) -> (loss, grads) on the device's result


def compare_paths(report: Report, device: str, quick: bool = False) -> None:
    """Every case, path and dtype: the device against the CPU and against NumPy."""
    from rnnlab.dropout import dropout_masks
    from rnnlab.gradcheck import random_problem

    perturb = PERTURB
    for label, cfg, impls in cases(quick):
        params, X, Y, state, _ = random_problem(cfg, 3, 7, seed=len(label))
        masks = None
        if cfg.dropout > 0:
            masks = dropout_masks(cfg, 7, 3, np.random.default_rng(1))
        problem = (params, X, Y, state, masks)
        for impl in impls:
            for dtype in ("float64", "float32"):
                worst, ref_worst = 0.0, 0.0
                with tf32_off() if device != "cpu" else _nothing():
                    d_loss, d_grads, d_state = run_path(cfg, impl, dtype, device, problem)
                if perturb is not None:
                    d_loss, d_grads = perturb(d_loss, d_grads)
                c_loss, c_grads, c_state = run_path(cfg, impl, dtype, "cpu", problem)
                n_loss, n_grads, n_state = numpy_path(cfg, dtype, problem)
                for other, (o_loss, o_grads, o_state) in (
                        ("cpu", (c_loss, c_grads, c_state)), ("numpy", (n_loss, n_grads, n_state))):
                    err = max(abs(d_loss - o_loss) / max(abs(o_loss), 1e-300),
                              max_error(d_grads, o_grads), max_error(d_state, o_state))
                    if other == "cpu":
                        worst = err
                    else:
                        ref_worst = err
                tol = TOLERANCE[dtype]
                ok = worst <= tol and ref_worst <= tol and math.isfinite(worst + ref_worst)
                report.add("2 GPU = CPU", f"{label}, {impl}, {dtype}",
                           f"max rel. error {worst:.1e} vs CPU torch, {ref_worst:.1e} vs NumPy "
                           f"(<= {tol:g})", ok)


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def compare_training(report: Report, device: str, quick: bool = False) -> None:
    """Two epochs of d2l's LSTM (H 32) through rnnlab.train on the device and on the CPU."""
    import rnnlab
    from rnnlab.config import ModelConfig
    from rnnlab.data import load_corpus_time_machine
    from rnnlab.train import TrainConfig, train

    corpus, vocab = load_corpus_time_machine(1_000 if quick else 3_000)
    cfg = ModelConfig("lstm", len(vocab), 32)
    tcfg = TrainConfig(num_epochs=2, batch_size=8, num_steps=35, threads=1)
    ppl = {}
    for dev in (device, "cpu"):
        be = rnnlab.get_backend("torch", dtype="float64", device=dev, impl="scratch")
        params = be.from_numpy(rnnlab.init_params(cfg, seed=0, dtype="float64"))
        ppl[dev] = [s.train_ppl for s in train(be, cfg, params, corpus, tcfg)]
    err = max(abs(a - b) / b for a, b in zip(ppl[device], ppl["cpu"]))
    report.add("2 GPU = CPU", "2 epochs of d2l's LSTM, scratch, float64",
               f"perplexities {', '.join(f'{p:.6f}' for p in ppl[device])}; max rel. "
               f"difference {err:.1e} (<= 1e-9)", err <= 1e-9)


# ---------------------------------------------------------------- 3. the GPU benchmark


def benchmark(report: Report, device: str, hiddens, seconds: float, warmup: float,
              min_windows: int = 3) -> None:
    """tokens/s of d2l's LSTM on ``device``: rnnlab scratch / nn, torch.nn, d2l scratch."""
    import worker

    B, T = 32, 35
    for H in hiddens:
        rates = {}
        makers = {
            "rnnlab torch, scratch path": lambda: worker.rnnlab_window(
                "torch", "lstm", H, B, T, "float32", device=device, impl="scratch"),
            "rnnlab torch, nn path": lambda: worker.rnnlab_window(
                "torch", "lstm", H, B, T, "float32", device=device, impl="nn"),
            "torch.nn (d2l's concise model)": lambda: worker.d2l_window(
                "nn", "lstm", H, B, T, "float32", device=device),
            "d2l's scratch LSTM": lambda: worker.d2l_window(
                "d2l", "lstm", H, B, T, "float32", device=device),
        }
        for name, make in makers.items():
            window = make()
            rates[name] = float(np.median(worker.time_windows(window, seconds, warmup,
                                                              min_windows)))
        base = rates["torch.nn (d2l's concise model)"]
        for name, rate in rates.items():
            report.add(f"3 speed H={H}", name,
                       f"{rate:,.0f} tokens/s = {rate / base:.2f}x torch.nn", None)


# ------------------------------------------------------------------------------ main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="rnnlab's GPU check (see the module docstring)")
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu to try "
                                                    "the script where there is no GPU")
    ap.add_argument("--quick", action="store_true",
                    help="three equivalence cases, short benchmark windows at H = 256 only")
    ap.add_argument("--skip-tests", action="store_true", help="do not run pytest -m cuda")
    ap.add_argument("--seconds", type=float, default=None, help="timed seconds per benchmark")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
    warnings.filterwarnings("ignore", message="TF32 acceleration")
    try:
        import torch
    except ImportError:
        print("gpu_check: PyTorch is not installed (a CUDA build: the command pytorch.org "
              "gives); nothing was checked", file=sys.stderr)
        return EXIT_NO_CUDA
    device = args.device
    if device != "cpu" and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA GPU here (torch {torch.__version__}, CUDA build "
              f"{torch.version.cuda}); this check needs one, so nothing was checked. On a "
              "machine with a CUDA GPU, run: bash benchmarks/gpu_check.sh", file=sys.stderr)
        return EXIT_NO_CUDA
    os.environ.setdefault("RNNLAB_DATA", str(ROOT.parent / "shared" / "data"))
    start = time.perf_counter()
    report = Report()
    if device == "cpu":
        name = "CPU (a dry run: the GPU column is the CPU)"
    else:
        props = torch.cuda.get_device_properties(torch.device(device))
        name = (f"{props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, "
                f"cuDNN {torch.backends.cudnn.version()}")
    report.add("0 device", "device", name, None)
    report.add("0 device", "torch", f"{torch.__version__}; TF32 by default: cuDNN "
               f"{torch.backends.cudnn.allow_tf32}, matmul {torch.backends.cuda.matmul.allow_tf32}",
               None)
    if device != "cpu" and not args.skip_tests:
        run_cuda_tests(report, timeout=150)
    compare_paths(report, device, args.quick)
    compare_training(report, device, args.quick)
    seconds = args.seconds if args.seconds is not None else (0.3 if args.quick else 3.0)
    benchmark(report, device, (256,) if args.quick else (256, 1024), seconds,
              warmup=0.0 if args.quick else 1.0, min_windows=1 if args.quick else 3)
    report.add("4 total", "wall time", f"{time.perf_counter() - start:.0f} s", None)
    report.print()
    if report.failed:
        print(f"gpu_check: {report.failed} check(s) FAILED", file=sys.stderr)
        return 1
    print("gpu_check: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
