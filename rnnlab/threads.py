"""How many cores a step may use, on both backends: ``--threads N|auto``.

With d2l's small matrices (B = 32, H = 256), one matrix product split over two threads
ends when the slower half ends. On a quiet machine the second core helps a little; on
a busy one, the half that has to wait for a core holds up every product of every step,
and a run is ten or more times slower than with one thread (measured:
docs/benchmarks.md, the Threads section). No fixed count is right on every machine, so
``auto`` (the default of ``rnnlab train``, ``generate``, ``inspect`` and ``gradcheck``,
and of :class:`rnnlab.TrainConfig`) measures:

* **measure**: first screen the candidate counts (1, all usable cores, and a few
  between on a larger machine) with a ``probe``, a small piece of the same work (the
  training loop gives the forward pass over 4 time steps of a batch): a count whose
  probe is ``screen_ratio`` times slower than the best is dropped without ever running
  a full step, which on a busy machine can take seconds. Then run the next steps of
  the actual work at each remaining count in turn, ``rounds`` times, and keep the count
  with the shortest median step. A count whose step takes more than ``drop_ratio``
  times the best median so far is dropped at once.
* **steady**: keep that count, and compare every ``window`` steps' median with the
  measured median. When the steps are ``slow_ratio`` times slower (another job
  started), measure again. After ``recheck_s`` seconds of steady work, measure again
  anyway (a passing job may have decided the last measurement, or the other job may
  have ended and freed the cores): the interval doubles each time the choice holds,
  up to ``max_recheck_s``, and starts again from ``recheck_s`` when it changes.
  Measuring again also waits until what the last measuring cost (the probes, and the
  time full steps at other counts took beyond the chosen count's pace) is at most
  ``max_overhead`` (2%) of the steady time since then, or ``max_overhead_slower``
  (10%) when the steps have slowed down; and it keeps the count in use unless another
  is ``switch_ratio`` (10%) faster, so a burst of other work cannot make it flap. The per-step cost of all this
  is one addition and one comparison.

Which numbers change. A thread count changes only the order in which a matrix
product's partial sums are added, never what is computed: with OpenBLAS 0.3, float64
training gave the same bits with 1 and 2 threads; float32 differed in the last bits
(parameters 4e-9 apart after two epochs of d2l's LSTM), because OpenBLAS blocks the
product differently for another split. The torch backend on the CPU gave the same bits
in both dtypes. So a run that must repeat bit for bit (or resume bit for bit) in float32
on the numpy backend takes a fixed ``--threads N``: docs/determinism.md.

``auto`` never uses more threads than the environment allows: the CPUs this process may
run on (``os.sched_getaffinity``, which respects ``taskset`` and container limits) and
``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` when set. A fixed
count is used as given.

NumPy's BLAS (OpenBLAS, MKL, BLIS...) is limited through ``threadpoolctl``; torch, when
it has been imported, through ``torch.set_num_threads``. Importing this module imports
neither torch nor threadpoolctl's library scan; both happen on first use.
"""

from __future__ import annotations

import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from .errors import ConfigError

AUTO = "auto"
ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


MAX_THREADS = 4096  # far past any CPU's cores; BLAS keeps the count in a C int


def check_threads(threads) -> "int | str":
    """``"auto"`` or a positive int up to MAX_THREADS; anything else (a bool, a float,
    "4", 10**20, which the BLAS libraries cannot even hold) is refused."""
    if isinstance(threads, str) and threads == AUTO:
        return AUTO
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be 'auto' or a positive integer, got {threads!r}")
    if threads > MAX_THREADS:
        raise ConfigError(f"threads={threads} is more than the {MAX_THREADS:,} threads rnnlab "
                          f"sets (this machine has {usable_cores()} usable cores; more threads "
                          "than cores only wait for each other); use 'auto' or a smaller count")
    return int(threads)


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask), else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def environment_limit() -> int | None:
    """The smallest of OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS that is set
    to a positive integer; None when none is."""
    limits = []
    for var in ENV_VARS:
        text = os.environ.get(var, "").strip().split(",")[0]  # OMP allows "4,2" (nested)
        if text.isdigit() and int(text) > 0:
            limits.append(int(text))
    return min(limits) if limits else None


def max_threads() -> int:
    """The most threads ``auto`` will try: usable cores, capped by the environment."""
    return min(usable_cores(), environment_limit() or sys.maxsize)


def candidate_counts(most: int) -> tuple[int, ...]:
    """1, ``most``, and a few counts between worth trying: 2, 4 and most // 2."""
    return tuple(sorted({n for n in (1, 2, 4, most // 2, most) if 1 <= n <= most}))


# ---------------------------------------------------------------- setting the counts

_BLAS = None  # threadpoolctl's controller over NumPy's BLAS libraries, made on first use


def _blas_libraries() -> list:
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController().select(user_api="blas")
    return _BLAS.lib_controllers


def _torch():
    return sys.modules.get("torch")  # only a torch that is already imported is limited


def get_threads() -> int:
    """The thread count NumPy's BLAS uses now (torch's when NumPy has no BLAS pool)."""
    libs = _blas_libraries()
    if libs:
        return int(libs[0].get_num_threads())
    torch = _torch()
    return int(torch.get_num_threads()) if torch is not None else 1


def set_threads(threads: int) -> None:
    """Use ``threads`` threads in NumPy's BLAS and, when imported, in torch (process-wide)."""
    threads = check_threads(threads)
    if threads == AUTO:
        raise ConfigError("set_threads needs a number; 'auto' is for ThreadTuner and train()")
    for lib in _blas_libraries():
        lib.set_num_threads(threads)
    torch = _torch()
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _snapshot() -> tuple:
    torch = _torch()
    return ([(lib, int(lib.get_num_threads())) for lib in _blas_libraries()],
            torch.get_num_threads() if torch is not None else None)


def _restore(saved: tuple) -> None:
    libs, torch_threads = saved
    for lib, n in libs:
        lib.set_num_threads(n)
    torch = _torch()
    if torch is not None and torch_threads is not None and torch.get_num_threads() != torch_threads:
        torch.set_num_threads(torch_threads)


@contextmanager
def limit_threads(threads: int):
    """``with limit_threads(1): ...``: BLAS and torch use ``threads`` threads inside the
    block; the previous counts come back after it (also on an exception)."""
    saved = _snapshot()
    try:
        set_threads(threads)
        yield
    finally:
        _restore(saved)


# ------------------------------------------------------------------------ auto


def thread_tuner(threads, backend=None, **options) -> "ThreadTuner":
    """The ThreadTuner for ``threads`` on ``backend``. On a GPU the CPU threads only
    launch kernels, and a step's wall time is not its cost (kernels run asynchronously),
    so there ``auto`` keeps the current count instead of measuring."""
    device = str(getattr(backend, "device", "cpu"))
    if check_threads(threads) == AUTO and not device.startswith("cpu"):
        threads = get_threads()
    return ThreadTuner(threads, **options)


@dataclass
class Measurement:
    """One measuring: what each count cost, and the choice."""

    reason: str  # "start", "slower" (the steps slowed down), "recheck" (periodic)
    seconds: dict  # thread count -> median seconds of a full step (counts that ran one)
    chosen: int
    probe: dict = field(default_factory=dict)  # thread count -> median seconds of the probe

    def rates(self, work: float = 1.0) -> dict:
        """Steps (or ``work`` units per step, e.g. tokens) per second, per thread count."""
        return {n: work / s if s > 0 else math.inf for n, s in self.seconds.items()}

    def probe_ratios(self) -> dict:
        """Each count's probe time over the fastest count's (1.0 for the fastest)."""
        best = min(self.probe.values(), default=math.nan)
        return {n: t / best for n, t in self.probe.items()}


@dataclass
class ThreadTuner:
    """Chooses the thread count of a loop of equal steps by timing them (see the module).

    ``ThreadTuner(4)`` fixes 4 threads; ``ThreadTuner("auto")`` measures. Use it as a
    context manager (it sets the count on entry and restores the previous one on exit)
    and call :meth:`step_done` with the duration of every step; it sets the count for
    the next step itself. ``probe``, when set, is a small piece of the same work (the
    training loop gives a forward pass over a few time steps, whose result is thrown
    away): before full steps are timed, each count runs it ``probe_rounds`` times and a
    count ``screen_ratio`` times slower than the best is dropped without ever running a
    full step, which on a busy machine can take seconds. :meth:`calibrate` measures a
    given function instead, for work that is not a loop of steps (generation,
    gradcheck). ``on_choice`` is called with each :class:`Measurement`.
    """

    threads: "int | str" = AUTO
    most: int | None = None  # the largest count tried; default: max_threads()
    rounds: int = 3  # full steps per candidate when measuring
    drop_ratio: float = 1.5  # a candidate this much slower than the best is dropped at once
    probe: Callable[[], object] | None = None  # a cheap piece of the work, to screen counts
    probe_rounds: int = 3  # probe runs per candidate
    screen_ratio: float = 2.0  # a probe this much slower than the best drops the count
    window: int = 16  # steady steps between two checks of the speed
    slow_ratio: float = 1.5  # steady steps this much slower than measured: measure again
    recheck_s: float = 5.0  # steady seconds before measuring again anyway (then doubling)
    max_recheck_s: float = 120.0
    max_overhead: float = 0.02  # measuring again waits until it costs at most this share
    max_overhead_slower: float = 0.10  # ... this share when the steps have slowed down
    switch_ratio: float = 1.1  # measuring again: another count must be this much faster
    on_choice: Callable[[Measurement], None] | None = None
    clock: Callable[[], float] = time.perf_counter  # what times the probe and calibrate
    measurements: list = field(default_factory=list)  # every Measurement so far

    def __post_init__(self) -> None:
        self.threads = check_threads(self.threads)
        self.auto = self.threads == AUTO
        most = max_threads() if self.most is None else check_threads(self.most)
        self.candidates = candidate_counts(most) if self.auto else (self.threads,)
        self.current = 1 if self.auto else self.threads  # until measured: one thread is never
        self._saved = None  # ... far from the best, and all of them can be ten times slower
        self.recheck_after = self.recheck_s  # steady seconds until the next recheck
        self.cost = 0.0  # seconds the last measuring spent beyond the chosen count's pace
        self._reset_measuring("start")

    @property
    def tuning(self) -> bool:
        """Whether there is anything to choose: ``auto`` with more than one candidate."""
        return self.auto and len(self.candidates) > 1

    # -- context
    def __enter__(self) -> "ThreadTuner":
        self._saved = _snapshot()
        set_threads(self.current)
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            _restore(self._saved)
            self._saved = None

    # -- measuring
    def _reset_measuring(self, reason: str) -> None:
        self.reason = reason
        self.warmup = reason == "start"  # the very first step allocates: not timed
        self.samples = {n: [] for n in self.candidates}
        self.probed = {}
        self.dropped = set()
        self.order = [n for _ in range(self.rounds) for n in self.candidates]
        self.measuring = self.tuning
        self.reference = None  # steady step seconds of the chosen count
        self.window_times, self.steady_s = [], 0.0
        self.spent = 0.0  # measuring time at counts other than the one chosen, so far
        if self.measuring and not self.warmup:
            self._begin()

    def _begin(self) -> None:
        """Screen the candidates with the probe, then time full steps of the survivors."""
        if self.probe is not None:
            times = {n: [] for n in self.candidates}
            for _ in range(self.probe_rounds):
                for n in self.candidates:
                    self._use(n)
                    t0 = self.clock()
                    self.probe()
                    times[n].append(self.clock() - t0)
            self.probed = {n: sorted(t)[len(t) // 2] for n, t in times.items()}
            self.spent += sum(sum(t) for t in times.values())
            best = min(self.probed.values())
            for n, t in self.probed.items():
                if t > self.screen_ratio * best:
                    self.dropped.add(n)
            self.order = [n for n in self.order if n not in self.dropped]
        if len(set(self.order)) <= 1:  # the probe left one count: nothing to time
            self._finish_measuring()
        else:
            self._use(self.order[0])

    def _use(self, n: int) -> None:
        if n != self.current:
            self.current = n
            set_threads(n)

    def _score(self, n: int) -> float:
        s = sorted(self.samples[n])
        return s[len(s) // 2] if s else math.inf  # median (the upper one of two)

    def _finish_measuring(self) -> None:
        scores = {n: self._score(n) for n in self.candidates if self.samples[n]}
        kept = {n: t for n, t in scores.items() if n not in self.dropped}
        previous = self.measurements[-1].chosen if self.measurements else None
        if kept:
            best = min(kept.values())
            # fewest threads among those within 5% of the best: the same speed, fewer cores
            chosen = min(n for n, t in kept.items() if t <= 1.05 * best)
            # measuring again, the count in use stays unless another is clearly faster:
            # a few steps beside a passing burst of other work must not flip the choice
            if previous in kept and kept[previous] <= self.switch_ratio * kept[chosen]:
                chosen = previous
        else:  # screened down to one count by the probe alone
            chosen = min(n for n in self.candidates if n not in self.dropped)
        m = Measurement(self.reason, scores, chosen, dict(self.probed))
        self.measurements.append(m)
        self.measuring = False
        self.reference = scores.get(chosen)  # None: the first steady window sets it
        # measuring again will cost about what this one spent beyond the chosen count's
        # pace: the probes, and the excess of the full steps run at other counts
        pace = scores.get(chosen, 0.0)
        self.cost = self.spent + sum(max(0.0, t - pace) * len(self.samples[n])
                                     for n, t in scores.items() if n != chosen)
        if previous is not None and chosen == previous:  # the choice held: look less often
            self.recheck_after = min(2 * self.recheck_after, self.max_recheck_s)
        else:  # a new choice: look again soon
            self.recheck_after = self.recheck_s
        self._use(chosen)
        if self.on_choice is not None:
            self.on_choice(m)

    def step_done(self, seconds: float) -> None:
        """Record one step's duration; choose the count of the next step."""
        if not self.tuning:
            return  # nothing to choose between
        if self.measuring:
            if self.warmup:
                self.warmup = False
                self._begin()
                return
            n = self.order.pop(0)
            self.samples[n].append(seconds)
            best = min((self._score(c) for c in self.candidates
                        if c != n and c not in self.dropped), default=math.inf)
            if self._score(n) > self.drop_ratio * best:  # clearly slower: no more steps at n
                self.order = [c for c in self.order if c != n]
                self.dropped.add(n)
            left = set(self.order)
            if not self.order or (len(left) == 1 and left | self.dropped == set(self.candidates)):
                self._finish_measuring()  # nothing left to measure, or no one left to beat
            else:
                self._use(self.order[0])
            return
        self.window_times.append(seconds)
        self.steady_s += seconds
        if len(self.window_times) < self.window:
            return
        # the window's median: one step held up by a passing hiccup does not move it, a
        # sustained slowdown (another job) does
        pace = sorted(self.window_times)[len(self.window_times) // 2]
        self.window_times = []
        if self.reference is None:  # chosen by the probe alone: this window is the pace
            self.reference = pace
            return
        if pace > self.slow_ratio * self.reference:
            # much slower now: measuring again is worth more, so it may cost more
            if self.steady_s * self.max_overhead_slower >= self.cost:
                self._reset_measuring("slower")
        elif (self.steady_s >= self.recheck_after
              and self.steady_s * self.max_overhead >= self.cost):
            self._reset_measuring("recheck")

    def calibrate(self, step: Callable[[], object]) -> int:
        """Run ``step`` (a representative unit of the work; its result is discarded)
        once to warm up and then at each candidate count until measured; returns, and
        keeps, the chosen count. A fixed count is returned without running anything."""
        if not self.tuning:
            return self.current
        self._reset_measuring("start")
        while self.measuring:
            t0 = self.clock()
            step()
            self.step_done(self.clock() - t0)
        return self.current
