"""``rnnlab memory``: predict (and optionally measure) one BPTT step's memory."""

from __future__ import annotations

from ..config import CELLS, GRU_FORMS, OPTIMIZERS, ModelConfig
from ..memory import estimate_memory
from ..numpy_backend.measure import measure_numpy_step
from .common import check_backend_options, positive_int


def add_parser(sub) -> None:
    """Register ``rnnlab memory`` on the subcommand parsers ``sub``."""
    m = sub.add_parser("memory", help="predict the memory one BPTT training step needs",
                       description="Parameters, gradients, optimiser state and the activations "
                                   "kept for the backward pass of one training step, per "
                                   "backend, without running it (rnnlab.memory). --measure "
                                   "also runs one numpy step and reports tracemalloc's peak.")
    m.add_argument("--cell", choices=CELLS, default="lstm", help="recurrent cell (default lstm)")
    m.add_argument("--vocab", type=positive_int, default=28, help="vocabulary size V (default 28)")
    m.add_argument("--hidden", type=positive_int, default=256, help="hidden units H (default 256)")
    m.add_argument("--num-layers", type=positive_int, default=1, help="stacked layers (default 1)")
    m.add_argument("--gru-form", choices=GRU_FORMS, default="d2l", help="GRU form (default d2l)")
    m.add_argument("--bidirectional", action="store_true", help="a bidirectional model")
    m.add_argument("--batch-size", type=positive_int, default=32, help="batch size B (default 32)")
    m.add_argument("--num-steps", type=positive_int, default=35, help="BPTT window T (default 35)")
    m.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd",
                   help="optimiser whose state is counted (default sgd)")
    m.add_argument("--backend", choices=("numpy", "torch"), default=None,
                   help="one backend (default: both)")
    m.add_argument("--impl", choices=("scratch", "nn"), default="scratch",
                   help="torch backend path (default scratch)")
    m.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point type (default float32)")
    m.add_argument("--measure", action="store_true",
                   help="also run one numpy loss_and_grads and print tracemalloc's peak")
    m.set_defaults(func=cmd_memory)


def cmd_memory(args) -> int:
    for backend in ([args.backend] if args.backend else ["numpy", "torch"]):
        if backend == "torch" or args.backend:  # --impl is the torch path's, when both
            check_backend_options(backend, args.impl, None, args.cell, args.gru_form)
    cfg = ModelConfig(args.cell, args.vocab, args.hidden, num_layers=args.num_layers,
                      gru_form=args.gru_form, bidirectional=args.bidirectional)
    print(f"one BPTT training step of {cfg.cell} (V={cfg.vocab_size}, H={cfg.num_hiddens}, "
          f"layers={cfg.num_layers}{', bidirectional' if cfg.bidirectional else ''}) on a "
          f"batch of B={args.batch_size} x T={args.num_steps}, {args.dtype}, {args.optimizer}:")
    for backend in ([args.backend] if args.backend else ["numpy", "torch"]):
        est = estimate_memory(cfg, args.batch_size, args.num_steps, backend=backend,
                              optimizer=args.optimizer, dtype=args.dtype, impl=args.impl)
        print(f"{est.backend}")
        print(est.table())
        if args.measure and backend == "numpy":
            peak = measure_numpy_step(cfg, args.batch_size, args.num_steps, args.dtype)
            print(f"  {'measured step peak (tracemalloc)':44s} {peak / 2**20:10.2f} MiB "
                  f"({est.step_peak / peak - 1:+.1%} predicted)")
    return 0

