"""Mass-matrix adaptation: Stan's warm-up windows and streamed (co)variance estimates.

HMC mixes best when the momentum's covariance ``M`` matches the posterior's precision, i.e.
when the inverse mass ``M⁻¹`` is the posterior covariance: the dynamics then sees a target
of unit scale in every direction (Neal 2011, §5.4.1). A diagonal ``M⁻¹`` is estimated from the
warm-up draws themselves, in Stan's three-stage schedule (Stan Reference Manual, "HMC
algorithm parameters — Automatic parameter tuning"; ``stan/mcmc/windowed_adaptation.hpp``):

1. an *initial fast* buffer (default 75 steps): only the step size adapts, while the chains
   travel from their starting points to the typical set;
2. *slow* windows of doubling length (25, 50, 100, …): at the end of each, the inverse mass
   becomes the regularised variance of the draws *in that window* and the dual averaging of
   the step size restarts (μ = log(10 h)). The last slow window is stretched to the start of
   the terminal buffer when its successor would not fit;
3. a *terminal fast* buffer (default 50): the step size adapts to the final metric.

For ``warmup = 1000`` the slow windows are [75, 100), [100, 150), [150, 250), [250, 450),
[450, 950). When ``75 + 25 + 50 > warmup`` Stan shrinks the stages to 15% / 75% / 10% of the
warm-up (one slow window), and for ``warmup < 20`` it adapts no metric at all; this module
does the same. (Stan's own code omits restarting its window counter in the shrunken case,
stan-dev/stan#3380; the schedule here is the one its documentation and log message state.)

The variance of window ``n`` draws is regularised toward a small multiple of the identity,
exactly as Stan does (``var_adaptation.hpp``):

    M⁻¹ = (n / (n + 5)) · var + 10⁻³ · (5 / (n + 5)),

with ``var`` the unbiased sample variance. The estimate is streamed chunk by chunk (the
driver aligns its chunks to the window boundaries) with the pairwise update of Chan, Golub &
LeVeque (1979), which for one draw at a time is Welford's (1962): memory is ``O(chains · dim)``
whatever the window length, and the result is identical on both backends (NumPy, after the
compiled chunk).

**Dense metric** (:class:`DenseMassMatrix`, opted into by ``NUTS(..., metric="dense")`` and
``HMC(..., metric="dense")``): the same windows, but ``M⁻¹`` becomes the regularised sample
*covariance* of the window, again exactly as Stan does (``covar_adaptation.hpp``):

    M⁻¹ = (n / (n + 5)) · Σ̂ + 10⁻³ · (5 / (n + 5)) · I,

with ``Σ̂`` the unbiased sample covariance, streamed one draw at a time with Welford's
covariance update ``C ← C + δ (x − m)ᵀ`` (:class:`WelfordCovariance`). A dense ``M⁻¹``
undoes correlations a diagonal one cannot (a Gaussian's whole covariance: the dynamics then
sees N(0, I)), at the cost of a d × d matrix-vector product per gradient and of estimating
d(d + 1)/2 entries from each window's draws.

References:
    Welford, B. P. (1962). Note on a method for calculating corrected sums of squares and
    products. Technometrics 4(3), 419–420.
    Chan, T. F., Golub, G. H. and LeVeque, R. J. (1979). Updating formulae and a pairwise
    algorithm for computing sample variances. Stanford CS report STAN-CS-79-773.
    Stan Development Team. Stan Reference Manual (HMC adaptation) and
    ``src/stan/mcmc/windowed_adaptation.hpp``, ``var_adaptation.hpp``,
    ``covar_adaptation.hpp``, ``stan/math/prim/fun/welford_covar_estimator.hpp``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from langevin.adaptation.base import WarmupComponent

__all__ = [
    "DenseMassMatrix",
    "DiagonalMassMatrix",
    "WelfordCovariance",
    "regularized_covariance",
    "WindowSchedule",
    "window_schedule",
    "WelfordVariance",
    "regularized_variance",
]

#: Stan's defaults: initial fast buffer, first slow window, terminal fast buffer.
INIT_BUFFER, BASE_WINDOW, TERM_BUFFER = 75, 25, 50
#: Below this many warm-up steps no metric is adapted (Stan).
MIN_WARMUP = 20


@dataclass(frozen=True)
class WindowSchedule:
    """Where the slow windows of a warm-up lie (0-based step indices, ends exclusive).

    Attributes:
        warmup: number of warm-up steps.
        init_buffer: steps of the initial fast buffer.
        term_buffer: steps of the terminal fast buffer.
        windows: ``((start, end), ...)`` of the slow windows; consecutive, from
            ``init_buffer`` to ``warmup - term_buffer``. Empty when no metric is adapted.
    """

    warmup: int
    init_buffer: int
    term_buffer: int
    windows: tuple[tuple[int, int], ...]

    @property
    def ends(self) -> tuple[int, ...]:
        """Steps after which the inverse mass is updated (the number of steps done then)."""
        return tuple(end for _, end in self.windows)

    @property
    def boundaries(self) -> tuple[int, ...]:
        """Every step count at which a chunk must end: the start of the first window and
        each window's end."""
        if not self.windows:
            return ()
        return (self.windows[0][0], *self.ends)

    def collecting(self, step: int) -> bool:
        """Whether step ``step`` (0-based) is inside a slow window (its draw is recorded)."""
        return any(start <= step < end for start, end in self.windows)


def window_schedule(
    warmup: int,
    init_buffer: int = INIT_BUFFER,
    base_window: int = BASE_WINDOW,
    term_buffer: int = TERM_BUFFER,
) -> WindowSchedule:
    """Stan's windowed-adaptation schedule for ``warmup`` steps (module docstring).

    Example:
        >>> window_schedule(1000).windows
        ((75, 100), (100, 150), (150, 250), (250, 450), (450, 950))
        >>> window_schedule(100).windows
        ((15, 90),)
    """
    if warmup < MIN_WARMUP:
        return WindowSchedule(warmup, warmup, 0, ())
    if init_buffer + base_window + term_buffer > warmup:
        # Stan's shrunken schedule (truncating to integers as its unsigned ints do)
        init_buffer = int(0.15 * warmup)
        term_buffer = int(0.10 * warmup)
        base_window = warmup - (init_buffer + term_buffer)
    last = warmup - term_buffer  # the slow phase is [init_buffer, last)
    # Stan's compute_next_window, in half-open intervals: each window doubles the previous
    # one, and a window whose successor would end past `last` is stretched to `last`. (The
    # first window is never stretched.)
    start, size = init_buffer, base_window
    end = start + size
    windows = [(start, end)]
    while end < last:
        start, size = end, 2 * size
        end = start + size
        if end + 2 * size > last:  # Stan: next_window + 2·size >= last, next_window = end − 1
            end = last
        windows.append((start, end))
    return WindowSchedule(warmup, init_buffer, term_buffer, tuple(windows))


def regularized_variance(variance: np.ndarray, n: int) -> np.ndarray:
    """Stan's shrinkage of a window's sample variance toward 10⁻³:
    ``(n/(n+5))·var + 10⁻³·(5/(n+5))``."""
    n = float(n)
    return (n / (n + 5.0)) * np.asarray(variance) + 1e-3 * (5.0 / (n + 5.0))


class WelfordVariance:
    """Running mean and variance per chain and coordinate (Welford 1962), fed blocks of draws.

    ``update(block)`` with ``block`` shaped ``(chains, n, dim)`` adds its draws one at a time,

        n ← n + 1,   δ = x − m,   m ← m + δ / n,   S ← S + δ (x − m),

    and ``variance()`` is ``S / (n − 1)``. One draw at a time (not by merging block
    statistics) so the result does not depend on how the draws were split into blocks: the
    driver's chunks follow the machine's speed, and a run resumed from a checkpoint must
    adapt exactly as the uninterrupted one did.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(2, 30, 3))
        >>> w = WelfordVariance(2, 3)
        >>> for block in np.split(x, [7, 19], axis=1):
        ...     w.update(block)
        >>> bool(np.allclose(w.variance(), x.var(axis=1, ddof=1)))
        True
    """

    def __init__(self, chains: int, dim: int):
        self.chains, self.dim = int(chains), int(dim)
        self.reset()

    def reset(self) -> None:
        """Forget every draw (the start of a new window)."""
        self.count = 0
        self.mean = np.zeros((self.chains, self.dim))
        self.m2 = np.zeros(self._m2_shape())

    def _m2_shape(self) -> tuple[int, ...]:
        return (self.chains, self.dim)

    @staticmethod
    def _m2_increment(delta: np.ndarray, centred: np.ndarray) -> np.ndarray:
        return delta * centred

    def update(self, block: np.ndarray) -> None:
        """Add draws ``block`` shaped ``(chains, n, dim)``."""
        block = np.asarray(block, dtype=np.float64)
        if block.ndim != 3 or block.shape[0] != self.chains or block.shape[2] != self.dim:
            raise ValueError(
                f"block must have shape ({self.chains}, n, {self.dim}); got {block.shape}"
            )
        for t in range(block.shape[1]):
            x = block[:, t]
            self.count += 1
            delta = x - self.mean
            self.mean = self.mean + delta / self.count
            self.m2 = self.m2 + self._m2_increment(delta, x - self.mean)

    def variance(self) -> np.ndarray:
        """``(chains, dim)`` unbiased sample variances (NaN with fewer than two draws)."""
        if self.count < 2:
            return np.full((self.chains, self.dim), np.nan)
        return self.m2 / (self.count - 1)


class _WindowedMassMatrix(WarmupComponent):
    """What the diagonal and dense mass matrices share: Stan's windows, a Welford estimator
    fed one draw at a time inside them (``self.welford``), the current ``inverse_mass`` per
    chain, and its checkpoint state (the estimator's count, mean and M2)."""

    welford: WelfordVariance  # or its subclass WelfordCovariance
    inverse_mass: np.ndarray | None
    schedule: WindowSchedule

    @property
    def boundaries(self) -> tuple[int, ...]:
        return self.schedule.boundaries

    def observe(self, done: int, positions: np.ndarray) -> None:
        if self.schedule.collecting(done):
            self.welford.update(positions)

    def result(self) -> dict:
        return {"inverse_mass": self.inverse_mass}

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "inverse_mass": self.inverse_mass,
            "count": np.asarray(self.welford.count),
            "mean": self.welford.mean,
            "m2": self.welford.m2,
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.inverse_mass = np.ascontiguousarray(state["inverse_mass"], dtype=np.float64)
        self.welford.count = int(state["count"])
        self.welford.mean = np.asarray(state["mean"], dtype=np.float64)
        self.welford.m2 = np.asarray(state["m2"], dtype=np.float64)


class DiagonalMassMatrix(_WindowedMassMatrix):
    """Stan's windowed diagonal inverse mass matrix, per chain (module docstring).

    Opted into by kernels whose ``params()`` have an ``inverse_mass`` field (the diagonal of
    ``M⁻¹``; a length-1 array means "the identity, any dimension"). At the end of each slow
    window every chain gets its own regularised window variance (a runtime parameter: nothing
    recompiles), and its step size moves with the metric: a diagonal metric ``D`` makes HMC on
    ``x`` the same as unit-metric HMC on ``D^{-1/2} x``, so a step ``h`` that was right for the
    old metric is right for the new one times ``f = max_i √(D_old,i / D_new,i)`` (the direction
    whose scale relative to the metric grew most binds). This replaces Stan's
    ``init_stepsize`` search, which would need extra gradient evaluations.
    """

    adapts_inverse_mass = True

    def __init__(self, kernel, chains: int, dim: int, warmup: int) -> None:
        self.chains, self.dim = chains, dim
        self.schedule = window_schedule(warmup)
        self.welford = WelfordVariance(chains, dim)
        self.inverse_mass: np.ndarray | None = None

    def initial_params(self, params):
        start = np.asarray(params.inverse_mass, dtype=np.float64)
        if start.shape[-1] == 1:  # the identity, for any dimension
            start = np.ones((self.chains, self.dim)) * start
        elif start.shape[-1] != self.dim:
            raise ValueError(
                f"inverse_mass has {start.shape[-1]} entries but the target has dim={self.dim}"
            )
        self.inverse_mass = np.ascontiguousarray(np.broadcast_to(start, (self.chains, self.dim)))
        return params._replace(inverse_mass=self.inverse_mass.copy())

    def update(self, done: int, params):
        if done not in self.schedule.ends:
            return params, None
        old = self.inverse_mass
        new = old
        if self.welford.count >= 2:
            estimate = regularized_variance(self.welford.variance(), self.welford.count)
            ok = np.all(np.isfinite(estimate) & (estimate > 0), axis=1)
            new = np.where(ok[:, None], estimate, old)  # a stopped chain keeps its own
        self.welford.reset()
        self.inverse_mass = new
        log_factor = 0.5 * np.log(np.max(old / new, axis=1))
        return params._replace(inverse_mass=new.copy()), log_factor


def regularized_covariance(covariance: np.ndarray, n: int) -> np.ndarray:
    """Stan's shrinkage of a window's sample covariance (``(..., d, d)``) toward 10⁻³ I:
    ``(n/(n+5))·Σ̂ + 10⁻³·(5/(n+5))·I`` (``covar_adaptation.hpp``)."""
    n = float(n)
    covariance = np.asarray(covariance, dtype=np.float64)
    eye = np.eye(covariance.shape[-1])
    return (n / (n + 5.0)) * covariance + 1e-3 * (5.0 / (n + 5.0)) * eye


class WelfordCovariance(WelfordVariance):
    """Running mean and covariance matrix per chain (Welford 1962), fed blocks of draws.

    ``update(block)`` with ``block`` shaped ``(chains, n, dim)`` adds its draws one at a time,

        n ← n + 1,   δ = x − m,   m ← m + δ / n,   C ← C + δ (x − m)ᵀ,

    and ``covariance()`` is ``(C + Cᵀ) / (2 (n − 1))`` (``C`` is symmetric in exact
    arithmetic; the mean of it and its transpose removes the rounding). One draw at a time,
    for the reason :class:`WelfordVariance` gives: the estimate must not depend on the chunks.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(2, 30, 3))
        >>> w = WelfordCovariance(2, 3)
        >>> for block in np.split(x, [7, 19], axis=1):
        ...     w.update(block)
        >>> bool(np.allclose(w.covariance()[1], np.cov(x[1].T)))
        True
    """

    def _m2_shape(self) -> tuple[int, ...]:
        return (self.chains, self.dim, self.dim)

    @staticmethod
    def _m2_increment(delta: np.ndarray, centred: np.ndarray) -> np.ndarray:
        return delta[:, :, None] * centred[:, None, :]

    def covariance(self) -> np.ndarray:
        """``(chains, dim, dim)`` unbiased sample covariances (NaN with fewer than two
        draws)."""
        if self.count < 2:
            return np.full((self.chains, self.dim, self.dim), np.nan)
        return (self.m2 + np.swapaxes(self.m2, 1, 2)) / (2.0 * (self.count - 1))


def _positive_definite(a: np.ndarray) -> bool:
    if not np.all(np.isfinite(a)):
        return False
    try:
        np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        return False
    return True


class DenseMassMatrix(_WindowedMassMatrix):
    """Stan's windowed dense inverse mass matrix, per chain (module docstring).

    Opted into by kernels whose ``params()`` have an ``inverse_mass`` field holding ``M⁻¹``
    as a (d, d) matrix (a 1 × 1 matrix means "the identity, any dimension") and a
    ``momentum_factor`` field holding ``L⁻ᵀ`` for ``M⁻¹ = L Lᵀ``: both are set together, so
    the compiled step never factorises anything. At the end of each slow window every chain
    gets its own regularised window covariance, and its step size moves with the metric as
    :class:`DiagonalMassMatrix`'s does: HMC with metric ``A`` is unit-metric HMC on
    ``A^{-1/2} x``, so the step that was right for ``A_old`` is right for ``A_new`` times
    ``f = √λ_max(A_new⁻¹ A_old)`` (the direction whose scale relative to the metric grew
    most binds; for diagonal matrices this is ``max_i √(A_old,ii / A_new,ii)``). A chain
    whose estimate is not positive definite (a stopped chain) keeps its matrix.
    """

    adapts_inverse_mass = True

    def __init__(self, kernel, chains: int, dim: int, warmup: int) -> None:
        self.owner = getattr(kernel, "name", type(kernel).__name__)
        self.chains, self.dim = chains, dim
        self.schedule = window_schedule(warmup)
        self.welford = WelfordCovariance(chains, dim)
        self.inverse_mass: np.ndarray | None = None

    def initial_params(self, params):
        start = np.asarray(params.inverse_mass, dtype=np.float64)
        d = self.dim
        if start.shape[-2:] == (1, 1):  # the identity, for any dimension
            start = start[..., :1, :1] * np.eye(d)
        elif start.shape[-2:] != (d, d):
            n = start.shape[-1]
            raise ValueError(
                f"{self.owner}: inverse_mass is {n} × {n} but the target has dim={d}: "
                f"pass a {d} × {d} matrix"
            )
        self.inverse_mass = np.ascontiguousarray(np.broadcast_to(start, (self.chains, d, d)))
        return self._params(params)

    def _params(self, params):
        from langevin.kernels.hmc import momentum_factor

        return params._replace(inverse_mass=self.inverse_mass.copy(),
                               momentum_factor=momentum_factor(self.inverse_mass))  # fmt: skip

    def update(self, done: int, params):
        if done not in self.schedule.ends:
            return params, None
        old = self.inverse_mass
        new = old.copy()
        if self.welford.count >= 2:
            estimate = regularized_covariance(self.welford.covariance(), self.welford.count)
            for c in range(self.chains):
                if _positive_definite(estimate[c]):
                    new[c] = estimate[c]
        self.welford.reset()
        self.inverse_mass = np.ascontiguousarray(new)
        log_factor = np.array([0.5 * np.log(_largest_generalized_eigenvalue(o, n))
                               for o, n in zip(old, new)])  # fmt: skip
        return self._params(params), log_factor


def _largest_generalized_eigenvalue(a: np.ndarray, b: np.ndarray) -> float:
    """``λ_max(B⁻¹ A)`` for symmetric ``A`` and positive-definite ``B``: with ``B = L Lᵀ``,
    the largest eigenvalue of ``L⁻¹ A L⁻ᵀ``."""
    from scipy.linalg import solve_triangular

    lower = np.linalg.cholesky(b)
    half = solve_triangular(lower, a, lower=True)  # L⁻¹ A
    s = solve_triangular(lower, half.T, lower=True)  # L⁻¹ (L⁻¹ A)ᵀ = L⁻¹ A L⁻ᵀ
    return float(np.linalg.eigvalsh(0.5 * (s + s.T))[-1])
