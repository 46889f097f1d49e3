"""One benchmark measurement: one implementation, one configuration, in this process only.

``python benchmarks/worker.py --impl numpy --cell lstm --hidden 256 --seconds 3`` trains on
real time-machine batches (d2l's ``load_data_time_machine(32, 35)``: the first 10,000
tokens, sequential partitioning, state carried and detached) and prints one JSON line:
tokens/s over timed windows after a warm-up, and the process's memory. ``run.py`` starts
one of these per measurement, so no two thread pools (NumPy's OpenBLAS, torch's OpenMP)
ever share a process. Thread counts come from the environment ``run.py`` sets
(``OMP_NUM_THREADS`` ...); torch also gets ``torch.set_num_threads``.

Implementations (``--impl``):

=====================  ================================================================
numpy                  rnnlab's numpy backend through ``rnnlab.train.train_epoch``
torch-scratch          rnnlab's torch backend, ``impl="scratch"``, same loop
torch-nn               rnnlab's torch backend, ``impl="nn"``, same loop
bare-<backend>         the bare loop: ``loss_and_grads``, ``clip_grads``, optimiser step
cli-<backend>          ``rnnlab train`` as a user runs it (validation, checkpoints, plots,
                       epoch lines, the progress bar), in this process, ``--epochs`` epochs
cli4-<backend>         the same with ``--val-every 4``: validation after every 4th epoch
nn                     d2l's concise ``RNNModel`` on ``torch.nn.RNN/LSTM/GRU`` + d2l's loop
nn-native              the same with oneDNN switched off: PyTorch's own ATen kernels
d2l                    d2l's scratch code as the book has it (``d2l_baseline.py``), d2l's loop
gemm-numpy             the matrix products of one training step alone, NumPy (OpenBLAS)
gemm-torch             the same products alone, torch (MKL)
limit-numpy            gemm-numpy plus the step's tanh passes, each alone: NumPy's limit
=====================  ================================================================

The GRU is torch.nn's form everywhere (``gru_form="torch"``), so every path computes
the function torch.nn.GRU computes.

A training step is forward, BPTT, global-norm clipping at θ = 1 and an SGD update with
lr = 1, d2l's settings. tokens/s = B*T per step / seconds per step.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # import rnnlab from this checkout
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

TORCH_IMPLS = ("torch-scratch", "torch-nn", "nn", "nn-native", "d2l", "gemm-torch",
               "bare-torch-scratch", "bare-torch-nn", "cli-torch-scratch", "cli-torch-nn",
               "cli4-torch-scratch", "cli4-torch-nn")
IMPLS = ("numpy", "bare-numpy", "cli-numpy", "cli4-numpy") + TORCH_IMPLS + (
    "gemm-numpy", "limit-numpy")
CLI_EXTRA = {"cli": (), "cli4": ("--val-every", "4")}  # the command's options beyond d2l's


def rss_bytes() -> int:
    """Resident set size now, from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """High-water mark of the resident set size (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def time_windows(run_window, seconds: float, warmup: float, min_windows: int = 3):
    """Warm up for ``warmup`` s, then time windows until ``seconds`` have passed.

    ``run_window()`` runs some training steps and returns the tokens it trained on.
    Returns tokens/s per timed window; their median resists a neighbour's burst of work.
    """
    start = time.perf_counter()
    while time.perf_counter() - start < warmup:
        run_window()
    rates, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(rates) < min_windows:
        t0 = time.perf_counter()
        n = run_window()
        rates.append(n / (time.perf_counter() - t0))
    return rates


# ------------------------------------------------------------------- implementations


def load_data():
    from rnnlab.data import load_corpus_time_machine

    corpus, vocab = load_corpus_time_machine(10_000)  # d2l: load_data_time_machine(32, 35)
    return corpus, len(vocab)


def rnnlab_window(backend_name, cell, H, B, T, dtype, **options):
    """rnnlab's own training loop (``train_epoch``): one window = one epoch (8 batches)."""
    import rnnlab
    from rnnlab.data import SeqDataLoader
    from rnnlab.train import TrainConfig, train_epoch

    corpus, V = load_data()
    cfg = model_config(cell, V, H)
    be = rnnlab.get_backend(backend_name, dtype=dtype, **options)
    params = be.from_numpy(rnnlab.init_params(cfg, seed=0, dtype=dtype))
    tcfg = TrainConfig(batch_size=B, num_steps=T, lr=1.0, clip_theta=1.0)
    optimizer = be.make_optimizer("sgd", params, tcfg.lr)
    loader = SeqDataLoader(corpus, B, T, False)
    epoch = [0]

    def window():
        stats = train_epoch(be, cfg, params, optimizer, loader, tcfg, epoch[0])
        epoch[0] += 1
        return stats.num_tokens

    return window


def bare_window(backend_name, cell, H, B, T, dtype, **options):
    """The bare backend loop a user would write: ``loss_and_grads``, ``clip_grads`` and
    the optimiser's step over the same batches as ``train_epoch``, nothing else."""
    import rnnlab
    from rnnlab.data import SeqDataLoader
    from rnnlab.train import epoch_rng

    corpus, V = load_data()
    cfg = model_config(cell, V, H)
    be = rnnlab.get_backend(backend_name, dtype=dtype, **options)
    params = be.from_numpy(rnnlab.init_params(cfg, seed=0, dtype=dtype))
    optimizer = be.make_optimizer("sgd", params, 1.0)
    loader = SeqDataLoader(corpus, B, T, False)
    epoch = [0]

    def window():
        state, tokens = None, 0
        for X, Y in loader.epoch(epoch_rng(0, epoch[0])):
            if state is None:
                state = be.begin_state(cfg, X.shape[0])
            loss, grads, state = be.loss_and_grads(cfg, params, X, Y, state)
            be.clip_grads(grads, 1.0)
            optimizer.step(grads)
            tokens += X.size
        epoch[0] += 1
        return tokens

    return window


class _Terminal(io.TextIOBase):
    """stderr for ``rnnlab train``: says it is a terminal (so the progress bar is drawn,
    as a user sees it) and discards what it is sent."""

    def __init__(self):
        self._sink = open(os.devnull, "w")

    def write(self, text):
        return self._sink.write(text)

    def flush(self):
        self._sink.flush()

    def isatty(self):
        return True


class _EpochClock(io.TextIOBase):
    """stdout for ``rnnlab train``: the time each ``epoch N/M`` line is printed, and the
    tokens/s it prints (the training loop's own, validation and checkpoints excluded)."""

    def __init__(self):
        self.times, self.printed, self.lines = [], [], []

    def write(self, text):
        now = time.perf_counter()
        for line in text.splitlines():
            self.lines.append(line)
            if line.startswith("epoch "):
                self.times.append(now)
                self.printed.append(float(line.split("tokens/s")[0].split()[-1].replace(",", "")))
        return len(text)

    def flush(self):
        pass


def cli_run(backend_name, cell, H, epochs, threads, extra=(), **options):
    """``rnnlab train`` as a user runs it, in this process: d2l's defaults (validation on
    the 1,000 tokens after the training set every epoch, a checkpoint and two plots every
    10 epochs, the epoch line every epoch, the progress bar on a terminal), and ``extra``
    options after them (``--val-every 4``).

    Returns (wall rates per epoch, printed rates, whole-span rate, the whole span's rate
    without the time of its validation passes): epoch k's wall time runs from epoch
    k-1's line to epoch k's, so it holds its training, its validation, its line and the
    checkpoint saved after epoch k-1; the first epoch is warm-up. Each validation pass
    (``rnnlab.train.evaluate``, called before its epoch's line) is timed as it runs.
    """
    import contextlib
    import importlib
    import shutil
    import tempfile

    from rnnlab.cli import main as rnnlab_main

    train_module = importlib.import_module("rnnlab.train")  # (rnnlab.train is the function)
    evaluate, val_passes = train_module.evaluate, []  # (start, seconds) of each pass

    def timed_evaluate(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return evaluate(*args, **kwargs)
        finally:
            val_passes.append((t0, time.perf_counter() - t0))

    out = tempfile.mkdtemp(prefix="rnnlab-bench-")
    argv = ["train", "--cell", cell, "--hidden", str(H), "--epochs", str(epochs),
            "--backend", backend_name, "--threads", str(threads), "--out", out, "--overwrite"]
    if backend_name == "torch":
        argv += ["--device", options.get("device", "cpu"), "--impl", options["impl"]]
    if cell == "gru":
        argv += ["--gru-form", "torch"]
    argv += list(extra)
    clock = _EpochClock()
    train_module.evaluate = timed_evaluate
    try:
        with contextlib.redirect_stdout(clock), contextlib.redirect_stderr(_Terminal()):
            status = rnnlab_main(argv)
    finally:
        train_module.evaluate = evaluate
        shutil.rmtree(out, ignore_errors=True)
    if status != 0:
        raise RuntimeError(f"rnnlab {' '.join(argv)} exited with {status}:\n"
                           + "\n".join(clock.lines[-20:]))
    tokens = 8 * 32 * 35  # d2l's partition: 8 batches of 32 x 35 per epoch
    t = clock.times
    wall = [tokens / (b - a) for a, b in zip(t, t[1:])]
    whole = tokens * (len(t) - 1) / (t[-1] - t[0])
    val_seconds = [s for start, s in val_passes if start > t[0]]  # after the first line
    if not val_seconds:
        raise RuntimeError(f"no validation pass among {len(t)} epoch lines")
    without_val = tokens * (len(t) - 1) / (t[-1] - t[0] - sum(val_seconds))
    return wall, clock.printed[1:], whole, without_val


def model_config(cell, V, H):
    """rnnlab's model for ``cell``; the GRU in torch.nn's form, so every path computes
    the same function as torch.nn.GRU."""
    from rnnlab.config import ModelConfig

    return ModelConfig(cell, V, H, gru_form="torch" if cell == "gru" else "d2l")


def d2l_window(kind, cell, H, B, T, dtype, device="cpu"):
    """d2l's ``train_epoch_ch8`` on its scratch model (``d2l``) or its concise ``nn`` model.

    ``nn-native`` switches oneDNN off (``torch.backends.mkldnn``): on a CPU torch.nn.LSTM
    then runs PyTorch's own ATen LSTM (a matmul per step and a cell kernel) instead of
    oneDNN's fused LSTM primitive. torch.nn.RNN runs ATen's kernels either way.
    """
    import torch
    from torch import nn

    import d2l_baseline as d2l
    from rnnlab.data import seq_data_iter_sequential

    torch.manual_seed(0)
    corpus, V = load_data()
    lr = 1.0
    if kind == "d2l":
        net = d2l.make_scratch(cell, V, H, device=device)
        updater = lambda batch_size: d2l.sgd(net.params, lr, batch_size)  # noqa: E731
    else:
        layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](V, H)
        net = d2l.RNNModel(layer, vocab_size=V).to(device)
        updater = torch.optim.SGD(net.parameters(), lr)
    loss = nn.CrossEntropyLoss()
    epoch = [0]

    def window():
        it = d2l.torch_batches(seq_data_iter_sequential(corpus, B, T, np.random.default_rng(epoch[0])))
        epoch[0] += 1
        with torch.backends.mkldnn.flags(enabled=kind != "nn-native"):
            _, n = d2l.train_epoch_ch8(net, it, loss, updater, device, False)
        return n

    return window


def gemm_shapes(cell, V, H, B, T):
    """The matrix products of one training step that a fused implementation cannot avoid.

    Forward: T recurrent products H_{t-1} W_h, then the output layer Hs W_hq.
    Backward: T products dZ_t W_hᵀ (into H_{t-1}), one Hs_prevᵀ dZ over all steps (dW_h),
    the output layer's dlogits W_hqᵀ and Hsᵀ dlogits. The input side (one-hot X_t W_x)
    is a row gather for token inputs and is not counted. Returns (m, k, n, repeats,
    a transposed, b transposed): the operands laid out as the numpy backend lays them.
    """
    G = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    N = T * B
    return [
        (B, H, G * H, T, False, False),  # H_{t-1} @ W_h, every step
        (N, H, V, 1, False, False),  # Hs @ W_hq
        (N, V, H, 1, False, True),  # dlogits @ W_hq^T
        (H, N, V, 1, True, False),  # Hs^T @ dlogits
        (B, G * H, H, T, False, True),  # dZ_t @ W_h^T, every step
        (H, N, G * H, 1, True, False),  # H_prev^T @ dZ (dW_h)
    ]


def elementwise_limit(cell, H, B):
    """The elementwise passes a step cannot avoid, per time step: the transcendental
    functions of the forward (NumPy's tanh; σ is ½ tanh(z/2) + ½). (rows, cols) each."""
    return {"rnn": [(B, H)], "lstm": [(B, 4 * H), (B, H)], "gru": [(B, 3 * H), (B, H)]}[cell]


def gemm_window(lib, cell, V, H, B, T, dtype, with_tanh: bool = False):
    """Time only the GEMMs of one step (and with ``with_tanh`` its unavoidable tanh passes),
    each op alone: preallocated outputs, the operands laid out as the step has them."""
    rng = np.random.default_rng(0)
    ops = []
    for m, k, n, reps, ta, tb in gemm_shapes(cell, V, H, B, T):
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
        ops.append((a.T if ta else a, b.T if tb else b, np.empty((m, n), dtype=dtype), reps))
    tanhs = [rng.standard_normal(shape).astype(dtype) for shape in elementwise_limit(cell, H, B)]
    if lib == "torch":
        import torch

        ops = [(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c), r) for a, b, c, r in ops]
        mm = lambda a, b, c: torch.mm(a, b, out=c)  # noqa: E731
    else:
        mm = lambda a, b, c: np.matmul(a, b, out=c)  # noqa: E731

    def window():
        for _ in range(4):  # four steps per window
            for a, b, c, reps in ops:
                for _ in range(reps):
                    mm(a, b, c)
            if with_tanh:
                for _ in range(T):
                    for x in tanhs:
                        np.tanh(x, out=x)
        return 4 * B * T

    return window


def blas_kernel() -> str:
    """NumPy's BLAS and the kernel it runs (threadpoolctl), e.g. 'openblas SkylakeX x2'."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            return (f"{info.get('internal_api')} {info.get('architecture', '?')} "
                    f"x{info.get('num_threads')}")
    return "unknown"


def main(argv=None) -> int:
    if os.environ.get("RNNLAB_BENCH_ALLOC") == "retain":
        from rnnlab.memory import retain_freed_memory

        retain_freed_memory()  # what `rnnlab train` does; run.py sets it for every impl alike
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impl", choices=IMPLS, required=True)
    ap.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="lstm")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--num-steps", type=int, default=35)
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds after warm-up")
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--device", default="cpu", help="torch implementations: cpu or cuda")
    ap.add_argument("--epochs", type=int, default=21,
                    help="cli-*: epochs of the `rnnlab train` run (the first is warm-up)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
    warnings.filterwarnings("ignore", message="TF32 acceleration")

    info = {"impl": args.impl, "cell": args.cell, "hidden": args.hidden,
            "alloc": os.environ.get("RNNLAB_BENCH_ALLOC", "default")}
    if args.impl in TORCH_IMPLS:
        import torch

        torch.set_num_threads(args.threads)
        info["torch_threads"] = torch.get_num_threads()
    B, T, H, cell, dt = args.batch_size, args.num_steps, args.hidden, args.cell, args.dtype
    kind, _, backend = args.impl.partition("-")  # "bare-torch-nn" -> "bare", "torch-nn"
    torch_opts = {}
    if backend.startswith("torch-"):
        torch_opts = {"device": args.device, "impl": backend.split("-")[1]}
    backend = backend.split("-")[0]
    if kind in CLI_EXTRA:
        wall, printed, whole, without_val = cli_run(backend, cell, H, args.epochs, args.threads,
                                                    CLI_EXTRA[kind], **torch_opts)
        info.update(tokens_per_s=float(np.median(wall)), rates=[round(r, 1) for r in wall],
                    windows=len(wall), printed_tokens_per_s=float(np.median(printed)),
                    printed_rates=[round(r, 1) for r in printed], whole_tokens_per_s=whole,
                    whole_without_val_tokens_per_s=without_val,
                    train_mem=0, peak_rss=peak_rss_bytes(), blas=blas_kernel(),
                    torch_imported="torch" in sys.modules)
        print(json.dumps(info))
        return 0
    if args.impl in ("numpy", "torch-scratch", "torch-nn"):
        window = rnnlab_window(args.impl.split("-")[0], cell, H, B, T, dt,
                               **({"device": args.device, "impl": args.impl.split("-")[1]}
                                  if args.impl != "numpy" else {}))
    elif kind == "bare":
        window = bare_window(backend, cell, H, B, T, dt, **torch_opts)
    elif args.impl in ("d2l", "nn", "nn-native"):
        window = d2l_window(args.impl, cell, H, B, T, dt, device=args.device)
    elif args.impl == "limit-numpy":
        window = gemm_window("numpy", cell, 28, H, B, T, dt, with_tanh=True)
    else:
        window = gemm_window(args.impl.split("-")[1], cell, 28, H, B, T, dt)
    rss0 = rss_bytes()  # after imports, data and parameters: what training adds is on top
    peak0 = peak_rss_bytes()
    rates = time_windows(window, args.seconds, args.warmup)
    info.update(
        tokens_per_s=float(np.median(rates)),
        windows=len(rates),
        rates=[round(r, 1) for r in rates],
        rss_before=rss0,
        peak_rss=peak_rss_bytes(),
        peak_rss_before=peak0,
        train_mem=max(0, peak_rss_bytes() - rss0),  # high-water mark reached while training
        torch_imported="torch" in sys.modules,
        blas=blas_kernel(),
    )
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
