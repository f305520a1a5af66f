"""Chain health: what the driver checks while and after it runs, and how it reports it.

A target's Numba functions are probed once from Python before compiling (wrong shapes and
dtypes named there); during the run a chain stops when its state turns non-finite, when its
log-density collapses (an explosion under way) or when the target's code raises; after the
run, divergent transitions and chains that never or barely moved are reported. Nothing is
dropped silently: stopped chains keep the draws they made and the trace says why they
stopped.
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass

import numpy as np

from langevin.kernels.base import Kernel
from langevin.targets.base import Target
from langevin.trace import Trace

__all__ = [
    "COLLAPSE_THRESHOLD",
    "ChainFailure",
    "MovementMonitor",
    "DivergenceWarning",
    "DivergentTransitionWarning",
    "SamplingError",
    "StuckChainWarning",
    "TargetCodeWarning",
]

#: A chain whose log-density falls this far (plus ``dim``) below the best it has reached is
#: unstable and stopped: at stationarity log π sits within O(dim) of its maximum (for a
#: Gaussian, dim/2 ± √(dim/2) below the mode), so such a fall is a blow-up under way, caught
#: long before it overflows (the analogue of Stan's energy-error threshold of 1000).
COLLAPSE_THRESHOLD = 1000.0


class DivergenceWarning(UserWarning):
    """A chain's state became non-finite and that chain was stopped."""


class StuckChainWarning(UserWarning):
    """Chains barely moved, or one chain's adapted step size collapsed far below the others'."""


class TargetCodeWarning(UserWarning):
    """The target's code raised an exception in some chains; those chains stopped."""


@dataclass
class ChainFailure:
    """Where a chain stopped because the target's code raised.

    Attributes:
        step: the step (counted from the first warm-up step, 1-based) that raised.
        position: the position that step started from.
        error: the exception.
    """

    step: int
    position: np.ndarray
    error: BaseException


class SamplingError(RuntimeError):
    """Every chain stopped because the target's code raised; ``.trace`` holds the draws made
    before, ``.failures`` each chain's :class:`ChainFailure`."""

    def __init__(self, message: str, *, trace: Trace, failures: dict[int, ChainFailure]):
        super().__init__(message)
        self.trace = trace
        self.failures = failures


class DivergentTransitionWarning(UserWarning):
    """Transitions of a Hamiltonian kernel diverged (energy error above the threshold).

    The chains went on (those proposals were rejected), but a divergence means the
    integrator could not follow the dynamics somewhere in the posterior, so that region may
    be under-explored and estimates biased (Betancourt 2017, §6.2).
    """


def warn_divergent_transitions(kernel: Kernel, stats: dict, stopped: dict) -> None:
    """Stan-style report of divergent transitions after warm-up, for kernels that declare
    what one is (``Kernel.divergent_transition``: Hamiltonian kernels). Chains that stopped
    are reported separately."""
    what = kernel.divergent_transition()
    if what is None or "diverging" not in stats:
        return
    running = [c for c in range(stats["diverging"].shape[0]) if c not in stopped]
    flags = stats["diverging"][running]
    n_div = int(flags.sum())
    if n_div == 0:
        return
    per_chain = {c: int(f.sum()) for c, f in zip(running, flags) if f.any()}
    warnings.warn(
        f"{n_div} of {flags.size} transitions after warm-up were divergent ({what}; per "
        f"chain: {per_chain}). The chains went on, but the sampler "
        "could not follow the dynamics somewhere: the draws may miss part of the posterior. "
        "Raise target_acceptance (a smaller step size) or reparametrise the model.",
        DivergentTransitionWarning,
        stacklevel=3,
    )


_PROBED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def probe_numba_target(target: Target, x: np.ndarray) -> None:
    """Call the target's Numba functions once from Python at the first chain's start and
    check what they return, so a wrong shape or type is named here rather than failing (or,
    for a length-1 gradient, broadcasting silently) inside the compiled loop. Done once per
    target, data object and dimension (a later ``sample`` of the same target skips it)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    # Once per target and data object: what is checked is the functions' output types and
    # shapes, and a pass over a large data set costs (0.5-0.9 s at 10^7 rows) at every call.
    key = (id(target.data), x.shape[0])
    try:
        if _PROBED.get(target) == key:
            return
    except TypeError:  # a target subclass that is not hashable: probe every time
        pass
    args = (x,) if target.data is None else (x, target.data)
    dim = x.shape[0]

    def call(name: str):
        try:
            return target.numba_functions[name](*args)
        except Exception as exc:
            raise type(exc)(
                f"the target's {name} raised {type(exc).__name__} at the start of chain 0 "
                f"(x = {np.array2string(x, precision=6)}): {exc}"
            ).with_traceback(exc.__traceback__) from exc

    def check_value(name: str, value) -> None:
        if not isinstance(value, (float, int, np.floating, np.integer)) or isinstance(value, bool):
            raise TypeError(
                f"the target's {name} must return a float (the log-density); got "
                f"{type(value).__name__} {value!r}"
            )

    def check_grad(name: str, g) -> None:
        if not isinstance(g, np.ndarray) or g.shape != (dim,):
            shape = getattr(g, "shape", type(g).__name__)
            raise ValueError(
                f"the target's {name} must return the gradient as an array of shape ({dim},), "
                f"the shape of x; it returned {shape} at the start of chain 0"
            )
        if g.dtype != np.float64:
            raise TypeError(
                f"the target's {name} must return a float64 gradient (the Numba backend "
                f"samples in float64); it returned {g.dtype}"
            )

    given = target.numba_functions
    if "logdensity" in given:
        check_value("logdensity", call("logdensity"))
    if "grad" in given:
        check_grad("grad", call("grad"))
    if "value_and_grad" in given:
        out = call("value_and_grad")
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(
                f"the target's value_and_grad must return (logdensity, gradient); got "
                f"{type(out).__name__}"
            )
        check_value("value_and_grad (its first output)", out[0])
        check_grad("value_and_grad (its second output)", out[1])
    try:
        _PROBED[target] = key
    except TypeError:
        pass


def warn_stopped_chains(kernel: Kernel, diverged: dict[int, int]) -> None:
    """The :class:`DivergenceWarning` for chains that became unstable, with the kernel's
    advice."""
    if diverged:
        warnings.warn(
            "chain(s) "
            + ", ".join(f"{c} (step {s})" for c, s in sorted(diverged.items()))
            + " became unstable (the state became non-finite, or the log-density fell more "
            f"than {COLLAPSE_THRESHOLD:g} + dim below the best the chain had reached), so those "
            f"chains stopped; their draws after that step are NaN. {kernel.name}: "
            f"{kernel.stability_advice}.",
            DivergenceWarning,
            stacklevel=3,
        )


def record_failures(result, start_state, done: int, alive, failures: dict) -> None:
    """Chains whose step raised inside the user's code stop, like diverged ones; what each
    drew is kept, and where it failed is recorded."""
    for c, exc in result.failed.items():
        k = int(result.n_done[c])
        where = result.position[c, k - 1] if k else np.asarray(start_state.position)[c]
        failures[int(c)] = ChainFailure(step=done + k + 1, position=np.array(where), error=exc)
        alive[c] = False


def raise_or_warn_failures(failures: dict, chains: int, trace: Trace, checked: bool) -> None:
    if not failures:
        return
    c, first = min(failures.items())
    hint = (
        ""
        if checked
        else "; if the target indexes arrays, sample(..., checked=True) compiles "
        "it with bounds checks"
    )
    detail = (
        f"chain {c}'s step {first.step} raised {type(first.error).__name__}: {first.error} "
        f"(the step started from position {np.array2string(first.position, precision=6)})"
    )
    if len(failures) == chains:
        raise SamplingError(
            f"every chain stopped: the target's code raised an exception; {detail}. The draws "
            f"made before are in this exception's .trace{hint}",
            trace=trace,
            failures=failures,
        ) from first.error
    warnings.warn(
        f"chain(s) {sorted(failures)} stopped because the target's code raised an exception; "
        f"{detail}. The other chains finished; Trace.failures has each chain's error.",
        TargetCodeWarning,
        stacklevel=3,
    )


def flag_collapses(result, best_lp: np.ndarray, threshold: float, alive) -> None:
    """Stop a chain at the first step whose log-density falls ``threshold`` below the best
    it has reached (an explosion under way): it is marked diverged there, and its outputs
    after that step are dropped, as for a non-finite state. ``best_lp`` is updated."""
    lp = np.where(np.isnan(result.logdensity), -np.inf, result.logdensity)
    running = np.maximum(np.maximum.accumulate(lp, axis=1), best_lp[:, None])
    collapsed = (lp < running - threshold) & np.isfinite(running)
    n_steps = lp.shape[1]
    for c in np.where(collapsed.any(axis=1) & alive & ~result.diverged)[0]:
        t = int(np.argmax(collapsed[c]))
        if t >= int(result.n_done[c]):
            continue
        result.position[c, t + 1 :] = np.nan
        result.logdensity[c, t + 1 :] = np.nan
        result.n_done[c] = t + 1
        result.diverged[c] = True
    best_lp[:] = np.maximum(best_lp, running[:, n_steps - 1] if n_steps else best_lp)


#: The checks need this many draws per chain: an exact kernel at its target acceptance
#: (0.574 for MALA) rejects 50 proposals in a row with probability below 1e-18, and the
#: reach below is a diffusive estimate that needs a run of some length.
STUCK_MIN_DRAWS = 50
#: A chain "barely moves" when its diffusive reach over the run (mean step × √draws) is
#: below this fraction of the spread of all chains' draws: it explored almost nothing.
STUCK_REACH = 0.1
#: An adapted step size this many times below the median of the chains' is a collapse.
STEP_COLLAPSE_RATIO = 20.0


class MovementMonitor:
    """How far each chain moved, accumulated chunk by chunk as the draws are kept (the
    stuck-chain check never re-reads the trace, which may be gigabytes or on disk).

    Per chain: the sum of the largest-coordinate steps ``|x_{t+1} − x_t|_∞`` between kept
    draws, and the sum and sum of squares of the draws shifted by the chain's first draw (no
    cancellation), from which the pooled per-coordinate spread of the running chains follows.
    ``state_dict``/``load_state_dict``: a checkpoint carries it.
    """

    _FIELDS = ("count", "jump_sum", "last", "ref", "total", "total_sq")

    def __init__(self, chains: int, dim: int) -> None:
        self.count = np.zeros((), np.int64)  # kept draws so far (the same for every chain)
        self.jump_sum = np.zeros(chains)
        self.last = np.zeros((chains, dim))
        self.ref = np.zeros((chains, dim))
        self.total = np.zeros((chains, dim))
        self.total_sq = np.zeros((chains, dim))

    def observe(self, kept: np.ndarray) -> None:
        """Kept draws ``(chains, m, dim)`` in order."""
        if kept.shape[1] == 0:
            return
        kept = np.asarray(kept, dtype=np.float64)
        chains, m = kept.shape[:2]
        if self.count == 0:
            self.ref = kept[:, 0].copy()
            self.last = kept[:, 0].copy()
        # One scratch array of the chunk's size serves the steps and then the shifted draws
        # (a chunk of a 100-D run is 16 MiB: each temporary costs its page faults and a pass;
        # five of them were ~1 µs per chain-step). The values are those of
        # abs(diff(concatenate([last, kept]))) and (kept − ref)², summed in the same order.
        scratch = np.empty_like(kept)
        jumps = np.empty((chains, m))
        jumps[:, 0] = np.abs(kept[:, 0] - self.last).max(axis=1)
        if m > 1:
            steps = np.subtract(kept[:, 1:], kept[:, :-1], out=scratch[:, : m - 1])
            jumps[:, 1:] = np.abs(steps, out=steps).max(axis=2)
        self.jump_sum += jumps.sum(axis=1)
        body = np.subtract(kept, self.ref[:, None], out=scratch)
        self.total += body.sum(axis=1)
        self.total_sq += np.multiply(body, body, out=body).sum(axis=1)
        self.last = kept[:, -1].copy()
        self.count = self.count + m

    def mean_jumps_and_scale(self, chains: list[int]) -> tuple[dict[int, float], float]:
        """Each chain's mean step, and the largest per-coordinate standard deviation of these
        chains' draws pooled."""
        n = int(self.count)
        mean_jump = {c: float(self.jump_sum[c]) / max(n - 1, 1) for c in chains}
        means = self.ref[chains] + self.total[chains] / n
        # each chain's centred sum of squares, then pooled about the grand mean
        m2 = self.total_sq[chains] - self.total[chains] ** 2 / n
        grand = means.mean(axis=0)
        pooled = (m2.sum(axis=0) + n * ((means - grand) ** 2).sum(axis=0)) / (n * len(chains))
        return mean_jump, float(np.sqrt(np.maximum(pooled, 0.0)).max())

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f: np.asarray(getattr(self, f)) for f in self._FIELDS}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for f in self._FIELDS:
            setattr(self, f, np.array(state[f]))


def warn_stuck_chains(kernel: Kernel, movement: MovementMonitor, step_size: np.ndarray,
                      stopped: set, adapted: bool) -> None:  # fmt: skip
    """Warn about chains that never moved, barely moved, or whose adapted step size
    collapsed: each makes every estimate from the run wrong (R-hat in the millions, an ESS of
    a few) without any state becoming non-finite."""
    n_draws = int(movement.count)
    running = [c for c in range(movement.jump_sum.shape[0]) if c not in stopped]
    if not running or n_draws < STUCK_MIN_DRAWS:
        return  # a short run says too little (a good MALA chain can reject 5 in a row)
    mean_jump, scale = movement.mean_jumps_and_scale(running)
    n_jumps = n_draws - 1
    problems = []
    never = [c for c in running if mean_jump[c] == 0.0]
    if never:
        problems.append(
            f"chain(s) {never} never moved in {n_draws} draws (every proposal rejected "
            "or a zero step)"
        )
    if scale > 0:
        barely = [
            c for c in running
            if c not in never and mean_jump[c] * np.sqrt(n_jumps) < STUCK_REACH * scale
        ]  # fmt: skip
        if barely:
            problems.append(
                f"chain(s) {barely} barely moved: over the run they could reach (mean step × "
                f"√draws) less than {STUCK_REACH:g} of the spread of all chains' draws"
            )
    if adapted and len(running) > 1:
        h = np.asarray(step_size, float)[running]
        median = np.median(h)
        collapsed = [c for c, hc in zip(running, h) if hc * STEP_COLLAPSE_RATIO < median]
        if collapsed:
            problems.append(
                f"the adapted step size of chain(s) {collapsed} "
                f"({', '.join(f'{v:.3g}' for v in np.asarray(step_size)[collapsed])}) is more than "
                f"{STEP_COLLAPSE_RATIO:g}× below the chains' median ({median:.3g}): warm-up "
                "adapted it near a hard constraint (log π = −inf) or in a narrow region"
            )
    if problems:
        warnings.warn(
            "; ".join(problems)
            + f". Estimates from this run are unreliable ({kernel.name}: check the step size and "
            "the kernel's parameters, the starting points, and whether the target has "
            "regions of zero density the chains cannot leave).",
            StuckChainWarning,
            stacklevel=3,
        )


def record_divergences(result, done: int, alive, diverged: dict) -> None:
    for c in np.where(result.diverged & alive)[0]:
        diverged[int(c)] = done + int(result.n_done[c])
        alive[c] = False
