"""One benchmark measurement: one implementation, one configuration, in this process only.

``python benchmarks/worker.py --impl numpy --cell lstm --hidden 256 --seconds 3`` trains on
real time-machine batches (d2l's ``load_data_time_machine(32, 35)``: the first 10,000
tokens, sequential partitioning, state carried and detached) and prints one JSON line:
tokens/s over timed windows after a warm-up, and the process's memory. ``run.py`` starts
one of these per measurement, so no two thread pools (NumPy's OpenBLAS, torch's OpenMP)
ever share a process. Thread counts come from the environment ``run.py`` sets
(``OMP_NUM_THREADS`` ...); torch also gets ``torch.set_num_threads``.

Implementations (``--impl``):

====================  ================================================================
numpy                 rnnlab's numpy backend through ``rnnlab.train.train_epoch``
torch-scratch         rnnlab's torch backend, ``impl="scratch"``, same loop
torch-nn              rnnlab's torch backend, ``impl="nn"``, same loop
nn                    d2l's concise ``RNNModel`` on ``torch.nn.RNN/LSTM`` + d2l's loop
nn-native             the same with oneDNN switched off: PyTorch's own ATen kernels
d2l                   d2l's scratch code, as written (``d2l_baseline.py``), d2l's loop
gemm-numpy            the matrix products of one training step alone, NumPy (OpenBLAS)
gemm-torch            the same products alone, torch (MKL)
====================  ================================================================

A training step is forward, BPTT, global-norm clipping at θ = 1 and an SGD update with
lr = 1, d2l's settings. tokens/s = B*T per step / seconds per step.
"""

from __future__ import annotations

import argparse
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

TORCH_IMPLS = ("torch-scratch", "torch-nn", "nn", "nn-native", "d2l", "gemm-torch")
IMPLS = ("numpy",) + TORCH_IMPLS + ("gemm-numpy",)


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
    from rnnlab.config import ModelConfig
    from rnnlab.data import SeqDataLoader
    from rnnlab.train import TrainConfig, train_epoch

    corpus, V = load_data()
    cfg = ModelConfig(cell, V, H)
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


def d2l_window(kind, cell, H, B, T, dtype):
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
        net = d2l.make_scratch(cell, V, H)
        updater = lambda batch_size: d2l.sgd(net.params, lr, batch_size)  # noqa: E731
    else:
        layer = (nn.LSTM if cell == "lstm" else nn.RNN)(V, H)
        net = d2l.RNNModel(layer, vocab_size=V)
        updater = torch.optim.SGD(net.parameters(), lr)
    loss = nn.CrossEntropyLoss()
    epoch = [0]

    def window():
        it = d2l.torch_batches(seq_data_iter_sequential(corpus, B, T, np.random.default_rng(epoch[0])))
        epoch[0] += 1
        with torch.backends.mkldnn.flags(enabled=kind != "nn-native"):
            _, n = d2l.train_epoch_ch8(net, it, loss, updater, "cpu", False)
        return n

    return window


def gemm_shapes(cell, V, H, B, T):
    """The matrix products of one training step that a fused implementation cannot avoid.

    Forward: T recurrent products H_{t-1} W_h, then the output layer Hs W_hq.
    Backward: T products dZ_t W_hᵀ (into H_{t-1}), one Hs_prevᵀ dZ over all steps (dW_h),
    the output layer's dlogits W_hqᵀ and Hsᵀ dlogits. The input side (one-hot X_t W_x)
    is a row gather for token inputs and is not counted. Returns (m, k, n, repeats).
    """
    G = 4 if cell == "lstm" else 1
    N = T * B
    return [
        (B, H, G * H, T),  # H_{t-1} @ W_h, every step
        (N, H, V, 1),  # Hs @ W_hq
        (N, V, H, 1),  # dlogits @ W_hq^T
        (H, N, V, 1),  # Hs^T @ dlogits
        (B, G * H, H, T),  # dZ_t @ W_h^T, every step
        (H, N, G * H, 1),  # H_prev^T @ dZ (dW_h)
    ]


def gemm_window(lib, cell, V, H, B, T, dtype):
    """Time only the GEMMs of one step: preallocated outputs, contiguous operands."""
    shapes = gemm_shapes(cell, V, H, B, T)
    rng = np.random.default_rng(0)
    ops = []
    for m, k, n, reps in shapes:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        c = np.empty((m, n), dtype=dtype)
        ops.append((a, b, c, reps))
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
        return 4 * B * T

    return window


def main(argv=None) -> int:
    if os.environ.get("RNNLAB_BENCH_ALLOC") == "retain":
        from rnnlab.memory import retain_freed_memory

        retain_freed_memory()  # what `rnnlab train` does; run.py sets it for every impl alike
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impl", choices=IMPLS, required=True)
    ap.add_argument("--cell", choices=("rnn", "lstm"), default="lstm")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--num-steps", type=int, default=35)
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds after warm-up")
    ap.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32")
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
    if args.impl == "numpy":
        window = rnnlab_window("numpy", cell, H, B, T, dt)
    elif args.impl in ("torch-scratch", "torch-nn"):
        window = rnnlab_window("torch", cell, H, B, T, dt, device="cpu",
                               impl=args.impl.split("-")[1])
    elif args.impl in ("d2l", "nn", "nn-native"):
        window = d2l_window(args.impl, cell, H, B, T, dt)
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
    )
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
