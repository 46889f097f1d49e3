"""``rnnlab gradcheck``: a backend's gradients against central finite differences."""

from __future__ import annotations

from ..backend import get_backend
from ..config import CELLS, GRU_FORMS, ModelConfig
from ..errors import ConfigError
from ..gradcheck import gradcheck, random_problem
from ..params import param_count
from ..threads import thread_tuner
from .common import (
    add_threads_option,
    check_backend_options,
    nonneg_int,
    positive_float,
    positive_int,
)


def add_parser(sub) -> None:
    """Register ``rnnlab gradcheck`` on the subcommand parsers ``sub``."""
    c = sub.add_parser("gradcheck", help="finite-difference check of a cell's gradients",
                       description="Compare the backend's gradients of every parameter and the "
                                   "initial state with central finite differences in float64, "
                                   "on random small shapes, and print the worst relative error "
                                   "per parameter.")
    c.add_argument("--cell", choices=CELLS, default="lstm", help="cell to check (default lstm)")
    c.add_argument("--backend", choices=("numpy", "torch"), default="numpy", help="backend (default numpy)")
    c.add_argument("--impl", choices=("scratch", "nn"), default="scratch",
                   help="torch backend only: scratch or nn (torch.nn kernels) (default scratch)")
    c.add_argument("--vocab", type=positive_int, default=5, help="vocabulary size V (default 5)")
    c.add_argument("--hidden", type=positive_int, default=4, help="hidden units H (default 4)")
    c.add_argument("--batch-size", type=positive_int, default=2, help="batch size B (default 2)")
    c.add_argument("--num-steps", type=positive_int, default=3, help="steps T (default 3)")
    c.add_argument("--num-layers", type=positive_int, default=1, help="stacked layers (default 1)")
    c.add_argument("--gru-form", choices=GRU_FORMS, default="d2l", help="GRU form (default d2l)")
    c.add_argument("--bidirectional", action="store_true",
                   help="check a bidirectional model (both directions, outputs concatenated)")
    c.add_argument("--seed", type=nonneg_int, default=0,
                   help="seed of the random problem (default 0)")
    c.add_argument("--tol", type=positive_float, default=1e-6,
                   help="fail (exit 1) if any relative error exceeds this (default 1e-6)")
    add_threads_option(c)
    c.set_defaults(func=cmd_gradcheck)


MAX_CHECKED = 100_000  # numbers perturbed by `rnnlab gradcheck`: about a minute at H=128


def cmd_gradcheck(args) -> int:
    check_backend_options(args.backend, args.impl, None, args.cell, args.gru_form)
    cfg = ModelConfig(args.cell, args.vocab, args.hidden, num_layers=args.num_layers,
                      gru_form=args.gru_form, bidirectional=args.bidirectional)
    # finite differences cost two loss evaluations per number checked: refuse, with the
    # count, a model whose check would run for hours instead of starting it
    numbers = param_count(cfg) + (cfg.num_layers * cfg.num_directions * cfg.num_states
                                  * args.batch_size * cfg.num_hiddens)
    if numbers > MAX_CHECKED:
        raise ConfigError(
            f"gradcheck perturbs every number of the model and the state, two loss evaluations "
            f"each: {numbers:,} numbers here, {2 * numbers:,} evaluations (hours); it is meant "
            f"for small models, up to {MAX_CHECKED:,} numbers: use a smaller --hidden, "
            "--vocab, --num-layers or --batch-size (the maths does not depend on the size)")
    options = {"dtype": "float64"}
    if args.backend == "torch":
        options.update(device="cpu", impl=args.impl)
    be = get_backend(args.backend, **options)
    params, X, Y, state, weights = random_problem(cfg, args.batch_size, args.num_steps, args.seed)
    with thread_tuner(args.threads, be) as tuner:
        # auto: time one loss evaluation, the unit finite differences repeat
        p, st = be.from_numpy(params), be.state_from_numpy(state)
        tuner.calibrate(lambda: be.loss_and_grads(cfg, p, X, Y, st, weights=weights))
        result = gradcheck(be, cfg, params, X, Y, state, weights)
    print(f"gradcheck {cfg.cell} on {args.backend}: V={cfg.vocab_size} H={cfg.num_hiddens} "
          f"B={args.batch_size} T={args.num_steps} layers={cfg.num_layers}, float64, h=1e-5")
    width = max(len(k) for k in result.errors)
    for name, err in result.errors.items():
        flag = "" if err <= args.tol else "   <-- above tolerance"
        print(f"  {name:<{width}}  {err:.2e}{flag}")
    ok = result.worst <= args.tol
    print(f"worst relative error {result.worst:.2e} ({'ok' if ok else 'FAILED'}, tolerance {args.tol:g})")
    return 0 if ok else 1

