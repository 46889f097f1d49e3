"""Problems and the named Hypothesis strategies that draw them (array-API-tests style).

An :class:`Example` is what Hypothesis draws and shrinks: the sizes and a seed. Every
number of a :class:`Problem` (weights, biases, inputs, initial state, upstream
gradients) is drawn from ``numpy.random.default_rng(seed)``, so an example replays
exactly from its one line, ``B=2 T=3 D=1 H=2 seed=7``. Biases, states and upstream
gradients are random and non-zero, so that no symmetry can hide a wrong term (all-ones
upstream gradients, zero biases or zero states do).

Sizes: T steps, B batch rows, D input features (V, the vocabulary, where inputs are
one-hot), H hidden units; V is also the output layer's width.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st

from ..checks import check_bool, check_choice, check_instance, check_int, refuse
from ..errors import ConfigError
from .rules import GATES
from .spec import irnn_forward

SEEDS = st.integers(0, 2**32 - 1)


@dataclass(frozen=True)
class Example:
    """The sizes and the seed of one problem: all it takes to replay it."""

    B: int
    T: int
    D: int
    H: int
    seed: int
    one_hot: bool = False  # D is a vocabulary V (inputs one-hot, an output layer of width V)

    def __post_init__(self) -> None:
        for name in ("B", "T", "D", "H"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), lo=1))
        object.__setattr__(self, "seed", check_int("seed", self.seed, lo=0))
        object.__setattr__(self, "one_hot", check_bool("one_hot", self.one_hot))

    def __str__(self) -> str:
        d = "V" if self.one_hot else "D"
        return f"B={self.B} T={self.T} {d}={self.D} H={self.H} seed={self.seed}"

    @classmethod
    def parse(cls, text: str, one_hot: bool = False) -> "Example":
        """``"B=2 T=3 D=1 H=2 seed=7"`` (commas or spaces; V for D) -> Example. Every
        item is ``KEY=INTEGER``: ``B=1.5`` is refused, not read as B=1, and so is a key
        given twice."""
        if not isinstance(text, str):
            raise refuse("example", text, "a string like 'B=2 T=3 D=1 H=2 seed=7'")
        one_hot = check_bool("one_hot", one_hot)
        form = "expected 'B=.. T=.. D=.. H=.. seed=..' (V=.. for D)"
        fields = {}
        for item in re.split(r"[\s,]+", text.strip()):
            m = re.fullmatch(r"([A-Za-z]+)=(-?\d+)", item)
            if not m:
                raise ConfigError(f"example {text!r}: {form}; {item!r} is not KEY=INTEGER"
                                  if item else f"example {text!r}: {form}")
            key = "D" if m[1] == "V" else m[1]
            if key in fields:
                raise ConfigError(f"example {text!r}: {m[1]} is given twice")
            fields[key] = int(m[2])
        missing = [k for k in ("B", "T", "D", "H", "seed") if k not in fields]
        extra = [k for k in fields if k not in ("B", "T", "D", "H", "seed")]
        if missing or extra:
            raise ConfigError(f"example {text!r}: {form}, "
                              + (f"missing {', '.join(missing)}" if missing else
                                 f"unknown {', '.join(extra)}"))
        v = fields
        if min(v["B"], v["T"], v["D"], v["H"]) < 1 or v["seed"] < 0:
            raise ConfigError(f"example {text!r}: sizes must be >= 1 and the seed >= 0")
        return cls(v["B"], v["T"], v["D"], v["H"], v["seed"], one_hot)


@dataclass(frozen=True)
class Constraints:
    """What a subject's convention allows: fixed sizes, one-hot inputs, which state parts it
    takes and returns gradients for. Ranges are (low, high), inclusive."""

    cell: str
    gru_form: str = "d2l"  # gru: "d2l" (reset before the matmul) or "torch" (after, with b_hn)
    B: tuple = (1, 4)  # batch rows
    T: tuple = (1, 6)  # steps
    D: tuple = (1, 5)  # input features, or the vocabulary (2 and up) when one_hot
    H: tuple = (1, 5)  # hidden units
    one_hot: bool = False  # inputs are one-hot rows of width D = V
    head: str | None = None  # None | "linear" (d2l: Y = H W_hq + b_q) | "softmax" (min-char-rnn)
    #                          | "logsoftmax" (PyTorch's char-RNN tutorial: log softmax(Y))
    last_output: bool = False  # only the last step's output is returned (the tutorial's
    #                            newer form): the upstream gradient of the others is zero
    state_in: tuple = (True, True)  # which state parts (H, C) the subject takes (CS231n: C_0 = 0)
    state_upstream: tuple = (True, True)  # which final-state parts can receive a gradient
    bias_split: bool = False  # torch.nn: b = b_ih + b_hh, drawn as two random halves
    split_biases: tuple | None = None  # with bias_split, the biases kept in two arrays (None:
    #                                    each gate's); the others are whole, as where a gate's
    #                                    hidden-side layer has no bias (bias=False)
    predicts: bool = False  # each cell makes its own prediction (deeplearning.ai's yt_pred)

    def __post_init__(self) -> None:
        check_choice("cell", self.cell, tuple(GATES))
        check_choice("gru_form", self.gru_form, ("d2l", "torch"))
        for name in ("B", "T", "D", "H"):
            lo_hi = getattr(self, name)
            if not (isinstance(lo_hi, tuple) and len(lo_hi) == 2):
                raise refuse(name, lo_hi, "a (low, high) pair of sizes")
            low = check_int(f"{name}[0]", lo_hi[0], lo=1)
            object.__setattr__(self, name, (low, check_int(f"{name}[1]", lo_hi[1], lo=low)))
        check_bool("one_hot", self.one_hot)
        if self.head is not None:
            check_choice("head", self.head, ("linear", "softmax", "logsoftmax"))
        for name in ("state_in", "state_upstream"):
            pair = getattr(self, name)
            if not (isinstance(pair, tuple) and self.n_state <= len(pair) <= 2):
                raise refuse(name, pair, "a tuple of True / False, one per state part (H,) or "
                             "(H, C)")
            for k, v in enumerate(pair):
                check_bool(f"{name}[{k}]", v)
        check_bool("bias_split", self.bias_split)
        if self.split_biases is not None and not (
                isinstance(self.split_biases, tuple) and all(isinstance(b, str) for b in self.split_biases)):
            raise refuse("split_biases", self.split_biases, "None or a tuple of bias names ('b_f', ...)")
        check_bool("predicts", self.predicts)
        check_bool("last_output", self.last_output)

    @property
    def n_state(self) -> int:
        return 2 if self.cell == "lstm" else 1


@dataclass(frozen=True)
class Problem:
    """One example, in the spec's terms (float64, already rounded to the subject's dtype)."""

    cons: Constraints
    example: Example
    params: dict  # rnnlab names (per gate), plus W_hq, b_q with an output layer
    X: np.ndarray  # (T, B, D): one-hot rows when cons.one_hot
    ids: np.ndarray | None  # (T, B) token ids when one-hot
    state0: tuple  # (B, H) each
    dOut: np.ndarray | None  # (T, B, H) or (T, B, V): upstream gradient of the outputs
    dState: tuple  # (B, H) each: upstream gradient of the final state
    targets: np.ndarray | None  # (T, B) ids, softmax head
    split: dict  # torch.nn: the bias_hh half of each shared bias
    use_default_state: bool = False  # call the subject without a state (module(x)): what it
    #                                   starts from by itself, for the default-state property

    @property
    def cell(self) -> str:
        return self.cons.cell

    def window(self, t0: int, t1: int, state0: tuple | None = None,
               dState: tuple | None = None) -> "Problem":
        """Steps t0..t1-1 with the given initial state and final-state upstream gradient."""
        zeros = tuple(np.zeros_like(s) for s in self.state0)
        return replace(self, example=replace(self.example, T=t1 - t0), X=self.X[t0:t1],
                       ids=None if self.ids is None else self.ids[t0:t1],
                       state0=self.state0 if state0 is None else state0,
                       dOut=None if self.dOut is None else self.dOut[t0:t1],
                       dState=zeros if dState is None else dState,
                       targets=None if self.targets is None else self.targets[t0:t1])

    def rows(self, b: int) -> "Problem":
        """Batch row b alone."""
        sl = slice(b, b + 1)
        return replace(self, example=replace(self.example, B=1), X=self.X[:, sl],
                       ids=None if self.ids is None else self.ids[:, sl],
                       state0=tuple(s[sl] for s in self.state0),
                       dOut=None if self.dOut is None else self.dOut[:, sl],
                       dState=tuple(s[sl] for s in self.dState),
                       targets=None if self.targets is None else self.targets[:, sl])


def param_shapes(cons: Constraints, D: int, H: int) -> dict:
    shapes = {}
    for g in GATES[cons.cell]:
        shapes[f"W_x{g}"], shapes[f"W_h{g}"], shapes[f"b_{g}"] = (D, H), (H, H), (H,)
    if cons.cell == "gru" and cons.gru_form == "torch":
        shapes["b_hn"] = (H,)
    if cons.head is not None:
        shapes["W_hq"], shapes["b_q"] = (H, D), (D,)
    return shapes


def make_problem(cons: Constraints, ex: Example, dtype="float64") -> Problem:
    """The problem of an example: weights N(0, 0.5²), biases, states and upstream gradients
    random and non-zero, all drawn from ``default_rng(seed)`` and rounded to ``dtype``."""
    check_instance("cons", cons, Constraints)
    check_instance("ex", ex, Example, " (Example(B, T, D, H, seed) or Example.parse('B=.. ...'))")
    dt = np.dtype(check_choice("dtype", str(np.dtype(dtype)) if _is_dtype(dtype) else dtype,
                               ("float32", "float64")))
    rng = np.random.default_rng(ex.seed)
    problem = _draw_problem(cons, ex, dt, rng)
    if cons.cell != "irnn":
        return problem
    # the irnn's ReLU has a kink at 0: a pre-activation nearer to it than the central
    # differences' step (h = 1e-5 in float64, 3e-3 in float32) makes them disagree with a
    # correct backward, so such a draw is drawn again, from the same generator (the seed
    # still names one problem); of many draws of a large example, the farthest is kept
    best = (_relu_margin(problem), problem)
    for _ in range(KINK_REDRAWS):
        if best[0] > KINK_MARGIN[dt.name]:
            break
        problem = _draw_problem(cons, ex, dt, rng)
        best = max(best, (_relu_margin(problem), problem), key=lambda m_p: m_p[0])
    return best[1]


KINK_MARGIN = {"float64": 1e-4, "float32": 3e-2}  # 10 finite-difference steps
KINK_REDRAWS = 200


def _relu_margin(p: Problem) -> float:
    """The smallest |A_t| of the irnn's pre-activations A_t = X_t W_xh + H_{t-1} W_hh + b_h."""
    _, _, cache = irnn_forward(p.params, p.X, p.state0)
    return float(np.abs(cache.A).min())


def _draw_problem(cons: Constraints, ex: Example, dt: np.dtype, rng: np.random.Generator) -> Problem:
    """One draw of :func:`make_problem`'s arrays from ``rng``."""

    def draw(shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(dt).astype(np.float64)  # shape

    B, T, D, H = ex.B, ex.T, ex.D, ex.H
    params = {k: draw(s, 0.5) for k, s in param_shapes(cons, D, H).items()}
    ids = targets = None
    if cons.one_hot:
        ids = rng.integers(0, D, (T, B))  # (T, B)
        X = np.eye(D)[ids]  # (T, B, V)
    else:
        X = draw((T, B, D))  # (T, B, D)
    state0 = tuple(draw((B, H), 0.5) if cons.state_in[k] else np.zeros((B, H))
                   for k in range(cons.n_state))
    width = H if cons.head is None else D
    dOut = None if cons.head == "softmax" else draw((T, B, width))  # (T, B, H or V)
    if cons.last_output:
        dOut[:-1] = 0  # only Y_T is returned: nothing flows back through the others
    if cons.head == "softmax":
        targets = rng.integers(0, D, (T, B))  # (T, B)
    dState = tuple(draw((B, H)) if (cons.state_upstream[k] and cons.head != "softmax")
                   else np.zeros((B, H)) for k in range(cons.n_state))
    split = {}
    if cons.bias_split:
        split = {f"b_{g}": draw((H,), 0.5) for g in GATES[cons.cell]
                 if (f"b_{g}" in cons.split_biases if cons.split_biases is not None
                     else not (cons.cell == "gru" and g == "h"))}  # (torch.nn's GRU: b_h, b_hn apart)
    return Problem(cons, ex, params, X, ids, state0, dOut, dState, targets, split)


# ------------------------------------------------------------------ the strategies


def _is_dtype(dtype) -> bool:
    try:
        np.dtype(dtype)
    except TypeError:
        return False
    return dtype is not None and not isinstance(dtype, bool)


def sizes(low: int, high: int):
    """Integers in [low, high] (sizes: low >= 0); Hypothesis shrinks them towards low."""
    low = check_int("low", low, lo=0)
    return st.integers(low, check_int("high", high, lo=low))


def examples(cons: Constraints, min_T: int = 1, min_B: int = 1):
    """An :class:`Example` within the constraints (and at least ``min_T`` steps, ``min_B``
    rows, for properties that split a window or a batch)."""
    check_instance("cons", cons, Constraints, " (rnnlab.testing.Constraints('lstm', ...))")
    return _examples(cons, check_int("min_T", min_T, lo=1), check_int("min_B", min_B, lo=1))


@st.composite
def _examples(draw, cons: Constraints, min_T: int, min_B: int) -> Example:
    lo_D = 2 if cons.one_hot else cons.D[0]
    B = draw(sizes(max(cons.B[0], min_B), cons.B[1]))
    T = draw(sizes(max(cons.T[0], min_T), cons.T[1]))
    D = draw(sizes(lo_D, cons.D[1]))
    H = draw(sizes(*cons.H))
    return Example(B, T, D, H, draw(SEEDS), cons.one_hot)


def problems(cell: str = "lstm", dtype: str = "float64", **constraints):
    """A :class:`Problem` for ``cell`` (see :class:`Constraints` for the options)."""
    known = set(Constraints.__dataclass_fields__) - {"cell"}
    unknown = sorted(set(constraints) - known)
    if unknown:
        raise ConfigError(f"unknown Constraints option(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(known))}")
    cons = Constraints(cell, **constraints)
    check_choice("dtype", str(np.dtype(dtype)) if _is_dtype(dtype) else dtype,
                 ("float32", "float64"))
    return _problems(cons, dtype)


@st.composite
def _problems(draw, cons: Constraints, dtype) -> Problem:
    return make_problem(cons, draw(_examples(cons, 1, 1)), dtype)
