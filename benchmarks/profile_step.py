"""Where the time of one numpy training step goes, phase by phase.

``python benchmarks/profile_step.py --cell lstm --hidden 256`` times the phases of one
training step of rnnlab's numpy backend, each on its own, and reports the fastest of
many repetitions of each (on a shared machine the minimum is the measurement least
disturbed by other work). The two cell loops are timed as they run, with every
``np.matmul`` they call timed inside them (the cell module's ``np`` is swapped for a
proxy that times ``matmul``), so the GEMM share of a loop is measured, not estimated:

- fuse: the per-gate weights concatenated into W_x, W_h, b
- forward, input projection: the row gather ``(W_x + b)[Xᵀ]``
- forward, recurrence: the cell's loop over time (its GEMMs: T products H_{t-1} W_h)
- forward, output layer: ``Hs W_hq + b_q``
- loss: softmax cross-entropy and its gradient
- backward, output layer: dW_hq, db_q and dHs
- backward, recurrence: the cell's BPTT (its GEMMs: T products dZ_t W_hᵀ and dW_h)
- backward, input side: dW_x (a scatter-add of rows) and db (the sum of dW_x's rows)
- unfuse + contiguous gradients, global-norm clipping, SGD update

The phases outside the cells repeat the few lines of ``numpy_backend/model.py`` that
make them; ``full step`` times the real ``loss_and_grads`` + clipping + SGD as a check
on the sum. Runs in its own process with the environment's thread count.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def best_time(f, reps=25, min_batch_s=0.01):
    """Fastest mean seconds per call over ``reps`` batches of calls of ``f``."""
    f()
    n, t0 = 1, time.perf_counter()
    f()
    once = time.perf_counter() - t0
    n = max(1, int(min_batch_s / max(once, 1e-7)))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


class TimedNumpy:
    """Stands in for the ``np`` module inside cells.py: ``matmul`` is timed, all else passes."""

    def __init__(self):
        self.gemm_s = 0.0

    def matmul(self, *args, **kwargs):
        t0 = time.perf_counter()
        out = np.matmul(*args, **kwargs)
        self.gemm_s += time.perf_counter() - t0
        return out

    def __getattr__(self, name):
        return getattr(np, name)


def timed_loop(run, proxy, reps=25):
    """Fastest run of ``run()`` and the matmul time inside that same run."""
    best, best_gemm = float("inf"), 0.0
    run()
    for _ in range(reps):
        proxy.gemm_s = 0.0
        t0 = time.perf_counter()
        run()
        dt = time.perf_counter() - t0
        if dt < best:
            best, best_gemm = dt, proxy.gemm_s
    return best, best_gemm


def profile(cell, H, B=32, T=35, V=28, dtype=np.float32):
    import rnnlab
    from rnnlab.config import ModelConfig
    from rnnlab.numpy_backend import cells as cells_module
    from rnnlab.numpy_backend.functional import (clip_grads, softmax_cross_entropy,
                                                 softmax_cross_entropy_backward)
    from rnnlab.numpy_backend.model import loss_and_grads, scatter_add_rows
    from rnnlab.numpy_backend.optim import SGD
    from rnnlab.params import fuse, unfuse

    cfg = ModelConfig(cell, V, H)
    params = rnnlab.init_params(cfg, seed=0, dtype=dtype)
    rng = np.random.default_rng(0)
    X = rng.integers(0, V, (B, T))  # (B, T)
    Y = rng.integers(0, V, (B, T))  # (B, T)
    state = tuple(np.zeros((B, H), dtype) for _ in range(cfg.num_states))
    forward, backward = cells_module.CELLS[cell]
    W_x, W_h, b = fuse(cfg, params)
    XW = (W_x + b)[X.T]  # (T, B, G*H)
    Hs, state_T, cell_cache = forward(XW, W_h, state)
    Hs2 = Hs.reshape(T * B, H)  # (T*B, H)
    logits = Hs2 @ params["W_hq"] + params["b_q"]  # (T*B, V)
    targets = Y.T.reshape(-1)  # (T*B,)
    _, ce = softmax_cross_entropy(logits, targets)
    dlogits = softmax_cross_entropy_backward(ce)  # (T*B, V)
    dHs = (dlogits @ params["W_hq"].T).reshape(T, B, H)  # (T, B, H)
    zeros = tuple(np.zeros_like(s) for s in state_T)
    dZ, dW_h, _ = backward(dHs, zeros, cell_cache)
    dZ2 = dZ.reshape(T * B, -1)  # (T*B, G*H)
    ids = X.T.reshape(-1)  # (T*B,)
    _, grads, _, _ = loss_and_grads(cfg, params, X, Y, state)
    opt = SGD({k: v.copy() for k, v in params.items()}, lr=1e-9)
    step_params = {k: v.copy() for k, v in params.items()}
    step_opt = SGD(step_params, lr=1e-9)

    def output_backward():
        return Hs2.T @ dlogits, dlogits.sum(axis=0), dlogits @ params["W_hq"].T

    def unfuse_grads():
        dW_x = scatter_add_rows(ids, dZ2, V)  # (V, G*H)
        g = unfuse(cfg, 0, 0, dW_x, dW_h, dW_x.sum(axis=0))
        return {k: np.ascontiguousarray(v) for k, v in g.items()}

    def full_step():
        _, g, _, _ = loss_and_grads(cfg, step_params, X, Y, state)
        clip_grads(g, 1.0)
        step_opt.step(g)

    proxy = TimedNumpy()
    cells_module.np = proxy  # time the matmuls inside the cell loops
    try:
        t_fwd, g_fwd = timed_loop(lambda: forward(XW, W_h, state), proxy)
        t_bwd, g_bwd_steps = timed_loop(lambda: backward(dHs, zeros, cell_cache), proxy)
    finally:
        cells_module.np = np
    # dW_h = H_prevᵀ dZ is one `@` after the loop (not np.matmul): timed alone
    H_prev = np.ascontiguousarray(cell_cache.Hs[:-1].reshape(-1, H))  # (T*B, H)
    g_dW = best_time(lambda: H_prev.T @ dZ2)
    ms = 1e3
    phases = [
        ("fuse per-gate weights", best_time(lambda: fuse(cfg, params)) * ms, None),
        ("forward, input projection (row gather)", best_time(lambda: (W_x + b)[X.T]) * ms, None),
        ("forward, recurrence (cell loop)", t_fwd * ms, g_fwd * ms),
        ("forward, output layer", best_time(lambda: Hs2 @ params["W_hq"] + params["b_q"]) * ms,
         best_time(lambda: Hs2 @ params["W_hq"]) * ms),
        ("loss: softmax cross-entropy + gradient", best_time(
            lambda: softmax_cross_entropy_backward(softmax_cross_entropy(logits, targets)[1])) * ms,
         None),
        ("backward, output layer", best_time(output_backward) * ms,
         best_time(lambda: (Hs2.T @ dlogits, dlogits @ params["W_hq"].T)) * ms),
        ("backward, recurrence (cell BPTT incl. dW_h)", t_bwd * ms, (g_bwd_steps + g_dW) * ms),
        ("backward, input side (dW_x scatter-add, db)",
         best_time(lambda: scatter_add_rows(ids, dZ2, V).sum(axis=0)) * ms, None),
        ("unfuse + contiguous gradients (incl. dW_x again)", best_time(unfuse_grads) * ms, None),
        ("global-norm clipping", best_time(lambda: clip_grads(grads, 1e9)) * ms, None),
        ("SGD update", best_time(lambda: opt.step(grads)) * ms, None),
    ]
    total = sum(p[1] for p in phases)
    gemm = sum(p[2] for p in phases if p[2] is not None)
    full = best_time(full_step, reps=15) * ms
    return {"cell": cell, "hidden": H, "phases": phases, "total_ms": total, "gemm_ms": gemm,
            "full_step_ms": full, "tokens": B * T, "tokens_per_s": B * T / (full / ms)}


GEMM_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul")


def profile_torch(cell, H, impl="scratch", B=32, T=35, V=28, steps=5):
    """torch.profiler over a few training steps of rnnlab's torch backend, by kind of op.

    Self CPU time of the GEMM kernels (mm, addmm), of every other ATen kernel, and the
    rest of the wall time (Python, the autograd engine, dispatch). The profiler adds its
    own overhead per op, so the shares matter more than the absolute times.
    """
    import torch

    import rnnlab
    from rnnlab.config import ModelConfig

    torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "2")))
    cfg = ModelConfig(cell, V, H)
    be = rnnlab.get_backend("torch", device="cpu", impl=impl)
    params = be.from_numpy(rnnlab.init_params(cfg, seed=0))
    opt = be.make_optimizer("sgd", params, 1.0)
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, V, (B, T), generator=g)
    Y = torch.randint(0, V, (B, T), generator=g)
    state = [be.begin_state(cfg, B)]

    def step():
        loss, grads, state[0] = be.loss_and_grads(cfg, params, X, Y, state[0])
        be.clip_grads(grads, 1.0)
        opt.step(grads)

    for _ in range(3):
        step()
    plain = best_time(step, reps=10)
    with torch.profiler.profile() as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        wall = (time.perf_counter() - t0) / steps
    gemm = other = 0.0
    calls = 0
    for ev in prof.key_averages():
        if not ev.key.startswith("aten::"):
            continue
        self_s = ev.self_cpu_time_total / 1e6 / steps
        calls += ev.count
        if ev.key in GEMM_OPS:
            gemm += self_s
        else:
            other += self_s
    ms = 1e3
    return {"cell": cell, "hidden": H, "impl": impl, "step_ms": plain * ms,
            "profiled_step_ms": wall * ms, "gemm_ms": gemm * ms, "other_kernels_ms": other * ms,
            "overhead_ms": (wall - gemm - other) * ms, "aten_calls_per_step": calls / steps,
            "tokens_per_s": B * T / plain}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", choices=("rnn", "lstm"), default="lstm")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--torch", choices=("scratch", "nn"), default=None,
                    help="profile rnnlab's torch backend (this path) instead of numpy")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    args = ap.parse_args(argv)
    if __import__("os").environ.get("RNNLAB_BENCH_ALLOC") == "retain":
        from rnnlab.memory import retain_freed_memory

        retain_freed_memory()  # as run.py's "retain" setting and `rnnlab train`
    if args.torch:
        prof = profile_torch(args.cell, args.hidden, args.torch)
        if args.json:
            print(json.dumps(prof))
        else:
            print(json.dumps(prof, indent=1))
        return 0
    prof = profile(args.cell, args.hidden)
    if args.json:
        print(json.dumps(prof))
        return 0
    print(f"{args.cell}, H={args.hidden}: one training step, B=32, T=35 (fastest of many runs)")
    for name, t, g in prof["phases"]:
        gs = f"   GEMMs {g:7.3f} ms" if g is not None else ""
        print(f"  {name:52s} {t:7.3f} ms{gs}")
    print(f"  {'sum of phases':52s} {prof['total_ms']:7.3f} ms   GEMMs {prof['gemm_ms']:7.3f} ms")
    print(f"  {'full step (loss_and_grads + clip + SGD)':52s} {prof['full_step_ms']:7.3f} ms"
          f"   -> {prof['tokens_per_s']:,.0f} tokens/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
