"""Resampling: from N weighted particles to N equally weighted ones, written once for both backends.

A resampling scheme takes normalised weights ``W`` (N,) and returns N *ancestor indices*
``A`` such that the number of offspring of particle n, ``O_n = #{m : A_m = n}``, is unbiased:

    E[O_n] = N W_n        for every n.

Every scheme here is a *portable* function (see :mod:`langevin.backends.portable`) of the
weights and of **given uniforms**: randomness is declared, like every kernel's noise, and
the caller draws it. :func:`uniforms_needed` says how many U[0, 1) draws each scheme
consumes (ALGORITHMS.md §7b); the same uniforms give the same offspring on the Numba, JAX
and NumPy backends. All schemes are O(N) on the CPU and none sorts anything.

**Inverse CDF.** Given sorted points ``s_0 ≤ … ≤ s_{N−1}`` in [0, 1) and the cumulative
weights ``C_j = W_0 + … + W_j``, the ancestor of point m is

    A_m = min{ j : C_j > s_m },

the particle whose half-open interval ``[C_{j−1}, C_j)`` contains ``s_m``. One merge pass
over both sorted arrays finds all of them in O(N) (Numba); JAX runs the same comparisons as
a parallel bisection (``searchsorted``), which suits accelerators. The half-open intervals
mean a particle of weight zero is never chosen, whatever the uniforms; a point that
round-off puts at or above ``C_{N−1}`` goes to the last particle of positive weight. The
schemes differ only in how the points are made:

============ ============ ==========================================================
scheme        uniforms     points / construction
============ ============ ==========================================================
multinomial   N + 1        sorted i.i.d. uniforms by *uniform spacings*: with
                           ``E_k = −log(1 − U_k)`` i.i.d. Exp(1) and partial sums
                           ``Z_k``, ``s_m = Z_m / Z_N`` are distributed as the order
                           statistics of N uniforms (Devroye 1986, §V.2) — O(N), no sort
stratified    N            ``s_m = (m + U_m) / N``: one uniform per stratum
                           (Kitagawa 1996)
systematic    1            ``s_m = (m + U) / N``: one uniform shared by all strata
                           (Carpenter, Clifford & Fearnhead 1999)
residual      N + 1        ``⌊N W_n⌋`` copies of particle n, then the
                           ``R = N − Σ⌊N W⌋`` remaining offspring multinomially from the
                           residual weights ``N W_n − ⌊N W_n⌋`` (Liu & Chen 1998); the
                           multinomial part uses R + 1 of the uniforms (R ≤ N)
ssp           N − 1        Srinivasan's sampling process (Gerber, Chopin & Whiteley
                           2019): the fractional parts ``ξ_n = N W_n − ⌊N W_n⌋`` are
                           rounded to 0 or 1 by N − 1 pairwise moves that keep every
                           expectation; one uniform per move
============ ============ ==========================================================

The output of every scheme is *sorted* (ancestors in increasing order). Where order
matters downstream (it does not for the SMC loops here), permute it.

**Offspring counts.** Multinomial: ``O ~ Multinomial(N, W)``, the noisiest. Stratified:
``Var(O_n) ≤`` multinomial's, and the empirical measure converges whatever the order of
the particles (Gerber, Chopin & Whiteley 2019, via negative association). Systematic:
``O_n ∈ {⌊N W_n⌋, ⌈N W_n⌉}`` always, the least noisy in practice and the default, but its
errors for different particles are strongly dependent and it can fail to converge for
adversarial orderings (same reference). SSP: also ``O_n ∈ {⌊N W_n⌋, ⌈N W_n⌉}``, with
negative association, hence consistent for any ordering. Residual: ``O_n ≥ ⌊N W_n⌋``.
With equal weights every scheme but multinomial returns each index exactly once
(systematic: ``0, …, N−1``; residual relies on ``N · (1/N)`` rounding to 1, which holds
exactly when N is a power of 2 and may fail by one ulp otherwise).

**When not to use which.** Multinomial only as a baseline (more noise, no benefit).
Systematic when particles come in an arbitrary but not adversarial order (SMC samplers,
particle filters: fine in practice). SSP when you want the systematic-like variance with a
convergence guarantee. Residual/SSP are sequential: on JAX they run as a loop over N,
correct but slower on a GPU than the others.

The SSP move (Gerber, Chopin & Whiteley 2019, §4, after Srinivasan 2001), for the current
pair of fractional parts ``(x, y)`` of particles ``(a, j)``: with ``δ↑ = min(1 − x, y)`` and
``δ↓ = min(x, 1 − y)``, with probability ``δ↓ / (δ↑ + δ↓)`` set ``(x, y) ← (x + δ↑, y − δ↑)``,
else ``(x, y) ← (x − δ↓, y + δ↓)``. Both moves keep ``x + y`` and ``E[x]``, ``E[y]``, and
after either one of the two values is 0 or 1: that particle's rounding is final, and the
other is paired with the next particle. Checked against the authors' implementation
(PFoptim's ``SSP_Resampler``, Gerber) and ``particles.resampling.ssp`` (Chopin).

References:
    Carpenter, J., Clifford, P. and Fearnhead, P. (1999). Improved particle filter for
    nonlinear problems. IEE Proc. Radar, Sonar Navig. 146(1).
    Devroye, L. (1986). Non-Uniform Random Variate Generation. Springer.
    Gerber, M., Chopin, N. and Whiteley, N. (2019). Negative association, ordering and
    convergence of resampling methods. Ann. Statist. 47(4), 2236–2260.
    Kitagawa, G. (1996). Monte Carlo filter and smoother for non-Gaussian nonlinear state
    space models. J. Comput. Graph. Statist. 5(1).
    Liu, J. S. and Chen, R. (1998). Sequential Monte Carlo methods for dynamic systems.
    JASA 93(443).
    Srinivasan, A. (2001). Distributions on level-sets with applications to approximation
    algorithms. FOCS 2001.
    Chopin, N. and Papaspiliopoulos, O. (2020). An Introduction to Sequential Monte Carlo,
    Chapter 9. Springer.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from langevin.backends.portable import portable
from langevin.smc._compile import BACKENDS, twin

__all__ = [
    "SCHEMES",
    "uniforms_needed",
    "resample",
    "multinomial",
    "stratified",
    "systematic",
    "residual",
    "ssp",
    "counts_to_indices",
    "normalise",
    "log_sum_exp",
    "ess",
    "offspring_counts",
    "population_step",
    "reweight",
    "gather",
]

xp: Any = None  # bound by each backend (see langevin.backends.portable)


# -- weights ----------------------------------------------------------------------------------
@portable
def log_sum_exp(log_weights):
    """``log Σ_n exp(log_weights[n])``, shifted by the maximum (−inf when all are −inf)."""
    m = xp.max(log_weights)
    shift = xp.select(xp.isfinite(m), m, 0.0)
    return shift + xp.log(xp.sum(xp.exp(log_weights - shift)))


@portable
def normalise(log_weights):
    """Normalised weights ``W_n = exp(lw_n) / Σ exp(lw)`` from log-weights."""
    m = xp.max(log_weights)
    w = xp.exp(log_weights - m)
    return w / xp.sum(w)


@portable
def ess(log_weights):
    """Effective sample size ``1 / Σ W_n²`` ∈ [1, N] of log-weights (Kong, Liu & Wong 1994)."""
    w = normalise(log_weights)
    return 1.0 / xp.sum(w * w)


@portable
def counts_to_indices(counts):
    """Sorted ancestor indices from offspring counts (``counts`` sums to N; O(N), no search).

    Particle n's offspring occupy the output slots ``[E_{n−1}, E_n)`` with ``E = cumsum(counts)``:
    mark +1 at every ``E_n`` and the running sum of the marks is the index. Integer arithmetic
    only, so every backend gives the same indices.
    """
    n = counts.shape[0]
    ends = xp.cumsum(counts)
    marks = xp.scatter_add(xp.to_int(xp.zeros(n + 1)), ends, counts * 0 + 1)
    return xp.cumsum(marks)[:n]


# -- the schemes (normalised weights, given uniforms) ------------------------------------------
@portable
def multinomial(weights, uniforms):
    """Multinomial resampling: N i.i.d. draws from ``W``, from N + 1 uniforms (sorted output)."""
    n = weights.shape[0]
    exponentials = -xp.log1p(-uniforms)  # −log(1 − U) ~ Exp(1), finite for U ∈ [0, 1)
    partial = xp.cumsum(exponentials)
    # all-zero uniforms (probability zero) would give 0/0: points 0, the first weighted index
    points = partial[:n] / xp.select(partial[n] > 0.0, partial[n], 1.0)
    return xp.inverse_cdf(xp.cumsum(weights), points)


@portable
def stratified(weights, uniforms):
    """Stratified resampling: one uniform in each stratum ``[m/N, (m+1)/N)`` (N uniforms)."""
    n = weights.shape[0]
    points = (xp.arange(n) + uniforms) / n
    return xp.inverse_cdf(xp.cumsum(weights), points)


@portable
def systematic(weights, uniforms):
    """Systematic resampling: the points ``(m + U)/N`` for one uniform ``U`` (1 uniform)."""
    n = weights.shape[0]
    points = (xp.arange(n) + uniforms[0]) / n
    return xp.inverse_cdf(xp.cumsum(weights), points)


@portable
def residual(weights, uniforms):
    """Residual resampling: ``⌊N W_n⌋`` copies, the rest multinomial on the residuals.

    The ``R = N − Σ⌊N W⌋`` multinomial draws use the first ``R + 1`` of the N + 1 uniforms
    (uniform spacings), so the shapes do not depend on R: the points past R are computed
    and discarded.
    """
    n = weights.shape[0]
    scaled = n * weights
    floors = xp.floor(scaled)
    counts = xp.to_int(floors)
    n_rest = n - xp.sum(counts)
    cdf = xp.cumsum(scaled - floors)
    partial = xp.cumsum(-xp.log1p(-uniforms))
    # sorted uniforms Z_k / Z_R (k < R), scaled to the residuals' total mass cdf[n − 1]
    points = partial[:n] * (cdf[n - 1] / xp.select(partial[n_rest] > 0.0, partial[n_rest], 1.0))
    drawn = xp.inverse_cdf(cdf, points)
    used = xp.to_int(xp.arange(n) < n_rest)  # the first R points are the draws
    return counts_to_indices(counts + xp.scatter_add(counts * 0, drawn, used))


@portable
def _ssp_move(j, carry, args):
    """One SSP move between the open particle ``a`` (fractional part ``x``) and particle ``j``."""
    x, a, rounded = carry
    fractions, uniforms = args
    y = fractions[j]
    up = xp.minimum(1.0 - x, y)  # x + up, y − up: x reaches 1 or y reaches 0
    down = xp.minimum(x, 1.0 - y)  # x − down, y + down: x reaches 0 or y reaches 1
    total = up + down
    p_up = xp.select(total > 0.0, down / xp.select(total > 0.0, total, 1.0), 0.0)
    go_up = uniforms[j - 1] < p_up
    # which of the two is settled, and at which value; the other stays open
    a_settled = xp.select(go_up, 1.0 - x <= y, x <= 1.0 - y)
    settled_value = xp.select(a_settled, xp.select(go_up, 1, 0), xp.select(go_up, 0, 1))
    rounded = xp.set_at(rounded, xp.select(a_settled, a, j), settled_value)
    x_new = xp.select(go_up, x + up, x - down)
    y_new = xp.select(go_up, y - up, y + down)
    return xp.select(a_settled, y_new, x_new), xp.select(a_settled, j, a), rounded


@portable
def ssp(weights, uniforms):
    """SSP resampling (Gerber, Chopin & Whiteley 2019): N − 1 uniforms; every count is
    ``⌊N W_n⌋`` or ``⌈N W_n⌉``, and the counts are negatively associated."""
    n = weights.shape[0]
    scaled = n * weights
    floors = xp.floor(scaled)
    counts = xp.to_int(floors)
    if n == 1:  # a shape, not a value: static on every backend; no uniform to read
        return counts * 0
    fractions = scaled - floors
    rounded = counts * 0
    _, last, rounded = xp.fori_loop(1, n, _ssp_move, (fractions[0], 0, rounded),
                                    (fractions, uniforms))  # fmt: skip
    # The last open particle takes what is left: the fractional parts sum to the whole
    # number N − Σ⌊N W⌋, so this is its rounding (0 or 1) without round-off drift.
    rest = n - xp.sum(counts) - xp.sum(rounded)
    rounded = xp.set_at(rounded, last, rest)
    return counts_to_indices(counts + rounded)


#: name -> portable scheme ``scheme(weights, uniforms) -> ancestors``
SCHEMES: dict[str, Callable] = {
    "multinomial": multinomial,
    "stratified": stratified,
    "systematic": systematic,
    "residual": residual,
    "ssp": ssp,
}


def _check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(SCHEMES)}; got {scheme!r}")
    return scheme


def uniforms_needed(scheme: str, n: int) -> int:
    """How many U[0, 1) draws ``scheme`` consumes to resample ``n`` particles.

    multinomial: n + 1; stratified: n; systematic: 1; residual: n + 1 (it uses
    ``n − Σ⌊n W⌋ + 1`` of them); ssp: n − 1 (0 for n = 1).

    Example:
        >>> uniforms_needed("systematic", 100), uniforms_needed("multinomial", 100)
        (1, 101)
    """
    _check_scheme(scheme)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be an int >= 1; got {n!r}")
    n = int(n)
    return {
        "multinomial": n + 1,
        "stratified": n,
        "systematic": 1,
        "residual": n + 1,
        "ssp": n - 1,
    }[scheme]


def _normalised_weights(weights, log: bool) -> np.ndarray:
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"weights must be an array of floats; got {type(weights)}") from exc
    if w.ndim != 1 or w.shape[0] < 1:
        raise ValueError(f"weights must be a non-empty 1-D array; got shape {w.shape}")
    if log:
        if np.any(np.isnan(w)) or np.any(w == np.inf):
            raise ValueError("log-weights must not be NaN or +inf")
        if not np.any(np.isfinite(w)):
            raise ValueError("every log-weight is -inf: no particle has positive weight")
        w = np.exp(w - w.max())
    else:
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("weights must be finite and non-negative")
        if not w.sum() > 0:
            raise ValueError("weights must have a positive sum")
    return np.ascontiguousarray(w / w.sum())


def resample(
    scheme: str, weights, uniforms, *, log: bool = False, backend: str = "numba"
) -> np.ndarray:
    """Ancestor indices of ``scheme`` for ``weights`` from the given ``uniforms``.

    Args:
        scheme: one of :data:`SCHEMES` (``"systematic"`` is the usual choice).
        weights: (N,) non-negative weights (normalised here), or log-weights with ``log=True``.
        uniforms: (``uniforms_needed(scheme, N)``,) draws from U[0, 1).
        log: ``weights`` are unnormalised log-weights.
        backend: ``"numba"``, ``"jax"`` or ``"numpy"`` (the portable code run by Python);
            the same uniforms give the same indices on each.

    Returns:
        (N,) sorted int64 ancestor indices; particle n has ``#{m : A_m = n}`` offspring,
        with expectation ``N W_n``.

    Example:
        >>> import numpy as np
        >>> resample("systematic", np.array([0.1, 0.6, 0.3]), np.array([0.5]))
        array([1, 1, 2])
    """
    _check_scheme(scheme)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    w = _normalised_weights(weights, log)
    n = w.shape[0]
    u = np.ascontiguousarray(np.asarray(uniforms, dtype=np.float64).reshape(-1))
    needed = uniforms_needed(scheme, n)
    if u.shape[0] != needed:
        raise ValueError(
            f"uniforms: {scheme} resampling of {n} particles needs {needed} uniforms "
            f"(uniforms_needed({scheme!r}, {n})); got {u.shape[0]}"
        )
    if u.size and not (np.all(u >= 0.0) and np.all(u < 1.0)):
        raise ValueError("uniforms must lie in [0, 1)")
    fn = twin(SCHEMES[scheme], backend, jit=True)
    return np.asarray(fn(w, u), dtype=np.int64)


# -- the population step: ESS-triggered resampling, written once -------------------------------
_scheme: Any = None  # bound to a scheme by population_step() (a global of the twin, per scheme)


@portable
def _resample_branch(args):
    weights, uniforms, log_weights = args
    return _scheme(weights, uniforms), xp.zeros_like(log_weights)


@portable
def _keep_branch(args):
    weights, _, log_weights = args
    return xp.arange(weights.shape[0]), log_weights


@portable
def _population_step(log_weights, uniforms, threshold):
    n = log_weights.shape[0]
    weights = normalise(log_weights)
    ess_value = 1.0 / xp.sum(weights * weights)
    resampled = ess_value < threshold * n
    ancestors, new_log_weights = xp.cond(
        resampled, _resample_branch, _keep_branch, (weights, uniforms, log_weights)
    )
    return ancestors, new_log_weights, ess_value, resampled


@portable
def reweight(log_weights, log_potentials):
    """``(log_weights + log_potentials, ℓ, ESS)`` with the log-evidence increment

        ℓ = log Σ_n W_n G_n = LSE(lw + log G) − LSE(lw),

    W the normalised weights before the update (Chopin & Papaspiliopoulos 2020, Ch. 10).
    """
    new = log_weights + log_potentials
    return new, log_sum_exp(new) - log_sum_exp(log_weights), ess(new)


@portable
def gather(particles, ancestors):
    """Every field of the particles NamedTuple taken at the ancestors (rows of (N, ...) arrays)."""
    return xp.take_tree(particles, ancestors)


def population_step(scheme: str, backend: str) -> Callable:
    """The compiled ESS-triggered resampling step of ``scheme`` on ``backend``.

    ``step(log_weights, uniforms, threshold) -> (ancestors, log_weights, ess, resampled)``:
    with normalised weights ``W`` and ``ESS = 1 / Σ W²``, if ``ESS < threshold · N`` the
    ancestors are ``scheme(W, uniforms)`` and the log-weights are reset to 0; otherwise the
    ancestors are ``0, …, N−1`` and the log-weights are returned unchanged. ``uniforms`` has
    ``uniforms_needed(scheme, N)`` entries either way (the same noise layout every step).
    Only the branch taken runs (``xp.cond``). Numba: a dispatcher (float64); JAX: jitted.

    Example:
        >>> import numpy as np
        >>> step = population_step("systematic", "numba")
        >>> anc, lw, ess_value, done = step(np.log([0.7, 0.1, 0.1, 0.1]), np.array([0.3]), 0.9)
        >>> anc.tolist(), lw.tolist(), bool(done)
        ([0, 0, 0, 2], [0.0, 0.0, 0.0, 0.0], True)
    """
    _check_scheme(scheme)
    fn = SCHEMES[scheme]
    branch = twin(_resample_branch, backend, overrides={"_scheme": twin(fn, backend)}, key=scheme)
    return twin(_population_step, backend, jit=True, overrides={"_resample_branch": branch},
                key=scheme)  # fmt: skip


def offspring_counts(ancestors, n: int) -> np.ndarray:
    """``O_j = #{m : A_m = j}`` for ``j < n``: how many offspring each particle has."""
    return np.bincount(np.asarray(ancestors), minlength=n)
