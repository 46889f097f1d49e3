"""Central finite differences in float64, for every parameter and the initial state.

    ∂L/∂θ_i ≈ (L(θ + h e_i) - L(θ - h e_i)) / 2h,   error O(h²) + O(ε_machine / h)

With h = 1e-5 in float64 both terms are near 1e-11, well below the 1e-6 the checks
require. The loss weights every token's cross-entropy differently (random weights),
so a gradient that is right only on average cannot pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import check_backend
from .checks import check_fits, check_instance, check_int, check_seed
from .config import ModelConfig
from .params import init_params


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max_i |a_i - n_i| / max(max_i |a_i|, max_i |n_i|): the error on the array's scale.

    Element-wise ratios blow up on entries that are zero up to round-off; scaling by the
    array's largest entry does not, and still sees a single wrong element.
    """
    a, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    scale = max(float(np.abs(a).max(initial=0)), float(np.abs(n).max(initial=0)))
    return 0.0 if scale == 0 else float(np.abs(a - n).max() / scale)


def numeric_grad(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of the scalar f() with respect to every entry of x (in place)."""
    g = np.zeros_like(x)  # same shape as x
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = f()
        flat[i] = old - h
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * h)
    return g


@dataclass
class GradcheckResult:
    errors: dict  # name -> relative error (parameters, then "state[i]")
    loss: float

    @property
    def worst(self) -> float:
        return max(self.errors.values())


def gradcheck(backend, cfg: ModelConfig, params: dict, X, Y, state: tuple, weights=None,
              h: float = 1e-5) -> GradcheckResult:
    """Compare ``backend.loss_and_grads`` with finite differences of its own loss.

    ``backend`` must be float64; ``params`` and ``state`` are NumPy float64 arrays.
    """
    backend = check_backend(backend)
    check_instance("cfg", cfg, ModelConfig)
    p = backend.from_numpy(params)
    st = backend.state_from_numpy(state)
    loss, grads, _, dstate = backend.loss_and_grads(cfg, p, X, Y, st, weights=weights,
                                                    state_grads=True)
    grads = backend.to_numpy(grads)
    dstate = backend.state_to_numpy(dstate)
    work = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    work_state = [np.array(s, dtype=np.float64) for s in state]

    def f():
        return backend.loss_and_grads(cfg, backend.from_numpy(work), X, Y,
                                      backend.state_from_numpy(tuple(work_state)),
                                      weights=weights)[0]

    errors = {k: relative_error(grads[k], numeric_grad(f, work[k], h)) for k in work}
    for i, s in enumerate(work_state):
        errors[f"state[{i}]"] = relative_error(dstate[i], numeric_grad(f, s, h))
    return GradcheckResult(errors, loss)


def random_problem(cfg: ModelConfig, batch_size: int, num_steps: int, seed: int = 0):
    """Random params (non-zero biases, weights of scale 0.5), inputs, targets, state and
    weights: token ids X and Y (B, T), or, for a model with ``input_size``, real inputs X
    (B, T, In) ~ N(0, 1), and, for ``head="mse"``, real targets Y (B, T) ~ N(0, 1)."""
    check_instance("cfg", cfg, ModelConfig)
    batch_size = check_int("batch_size", batch_size, 1)
    num_steps = check_int("num_steps", num_steps, 1)
    seed = check_seed("seed", seed)
    n = cfg.num_layers * cfg.num_directions * cfg.num_states
    check_fits(8 * batch_size * (3 * num_steps + n * cfg.num_hiddens),
               f"a problem of batch_size={batch_size}, num_steps={num_steps}",
               "use a smaller batch_size or num_steps")
    rng = np.random.default_rng(seed)
    params = init_params(cfg, seed=seed, dtype=np.float64)
    for k in params:
        params[k] = rng.standard_normal(params[k].shape) * 0.5  # (shape of k)
    if cfg.input_size is None:
        X = rng.integers(0, cfg.vocab_size, (batch_size, num_steps))  # (B, T)
    else:
        X = rng.standard_normal((batch_size, num_steps, cfg.input_size))  # (B, T, In)
    if cfg.head == "softmax":
        Y = rng.integers(0, cfg.vocab_size, (batch_size, num_steps))  # (B, T)
    else:
        Y = rng.standard_normal((batch_size, num_steps))  # (B, T)
    n = cfg.num_layers * cfg.num_directions * cfg.num_states
    state = tuple(rng.standard_normal((batch_size, cfg.num_hiddens)) for _ in range(n))
    weights = rng.uniform(0.1, 2.0, batch_size * num_steps)  # (T*B,)
    return params, X, Y, state, weights
