"""Synchronous-coupling upper bounds on W2, from two chains driven by one noise stream.

Every kernel takes its noise explicitly, so two copies of one kernel can be run on the *same*
draws: ``X`` from the user's start ``μ₀`` and ``Y`` from the target ``π`` (exact draws, or
reference draws), with ``(X₀, Y₀)`` drawn independently and, for kinetic kernels, the same
starting momentum. At every step ``k`` the pair ``(X_k, Y_k)`` is then a coupling of the two
laws ``μ₀Pᵏ`` and ``πPᵏ``, so by the definition of W2 as an infimum over couplings

    W2(μ₀Pᵏ, πPᵏ) ≤ √E‖X_k − Y_k‖²                                          (1)

(the synchronous coupling; e.g. Dalalyan 2017 and Durmus & Moulines 2019 prove their ULA
bounds with it, and Bou-Rabee, Eberle & Zimmer 2020 use it for HMC). The right side is
estimated by Monte Carlo over ``n`` pairs, with a standard error by the delta method:
``se = sd(‖D‖²) / (2√n · √mean‖D‖²)``.

What the bound bounds:

* for an **exact** kernel (``πP = π``), ``πPᵏ = π``: (1) bounds ``W2(μ₀Pᵏ, π)``, the
  distance to the target, with no noise floor (no comparison of two samples is involved);
* for an **unadjusted** kernel, ``πPᵏ → π_h``: (1) bounds the distance to what the same
  kernel does from π; the distance to π itself adds the stationary bias ``W2(π_h, π)``
  (reported separately by a study).

For a kernel that is affine on a Gaussian target (:mod:`.twin`), the shared noise cancels
in the difference, ``D_{k+1} = M D_k``, and the bound is exact (:func:`exact_coupling_bound`);
both laws are Gaussian, so ``W2(μ₀Pᵏ, πPᵏ)`` is exact too (:func:`exact_pair_w2`), and the
tests check (1) between the two.

References:
    Dalalyan, A. S. (2017). Theoretical guarantees for approximate sampling from smooth
    and log-concave densities. JRSS B 79(3), 651–676.
    Durmus, A. and Moulines, É. (2019). High-dimensional Bayesian inference via the
    unadjusted Langevin algorithm. Bernoulli 25(4A), 2854–2882.
    Bou-Rabee, N., Eberle, A. and Zimmer, R. (2020). Coupling and convergence for
    Hamiltonian Monte Carlo. Ann. Appl. Probab. 30(3), 1209–1250.
    Villani, C. (2009). Optimal Transport: Old and New. Springer (W2 as an infimum over
    couplings, Def. 6.1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from langevin.diagnostics import gaussian_w2
from langevin.kernels.base import Kernel

from .exact import full_chain
from .montecarlo import run_chains

__all__ = ["CouplingBound", "coupling_bound", "exact_coupling_bound", "exact_pair_w2"]


@dataclass(frozen=True)
class CouplingBound:
    """``√E‖X_k − Y_k‖²`` at each iteration (module docstring).

    Attributes:
        iterations: the step counts ``k``.
        bound: the estimate at each ``k`` (exact for :func:`exact_coupling_bound`).
        se: its Monte Carlo standard error (0 when exact).
        n_pairs: coupled pairs used (pairs where either chain diverged are dropped).
        acceptance: mean acceptance rate over both chains.
    """

    iterations: np.ndarray
    bound: np.ndarray
    se: np.ndarray
    n_pairs: int
    acceptance: float = 1.0


def _has_momentum(kernel: Kernel) -> bool:
    return "momentum" in type(kernel).State._fields


def _check_iterations(iterations: Sequence[int]) -> list[int]:
    ks = [int(k) for k in iterations]
    if not ks or any(k < 0 for k in ks) or ks != sorted(ks):
        raise ValueError(f"iterations must be non-decreasing counts >= 0; got {iterations!r}")
    return ks


def coupling_bound(
    kernel: Kernel,
    problem,
    iterations: Sequence[int],
    *,
    n_pairs: int = 10_000,
    seed: int = 0,
    start: np.ndarray | None = None,
    backend: str = "jax",
    target=None,
) -> CouplingBound:
    """Monte Carlo synchronous-coupling bound (1) of the module docstring.

    Args:
        kernel: any kernel.
        problem: a problem of :mod:`langevin.convergence.problems` (its ``exact_draws``
            give ``Y₀ ~ π``; its ``start`` is ``X₀`` unless ``start`` is given).
        iterations: non-decreasing step counts at which to report.
        n_pairs: coupled pairs of chains.
        seed: seed of the shared noise (and of the draws of π).
        start: the user's start: one point ``(dim,)`` or ``n_pairs`` points
            ``(n_pairs, dim)``.
        backend: ``"jax"`` or ``"numba"``.
        target: the :class:`langevin.Target` to run on (default ``problem.target()``; pass
            one object to reuse its compiled runner).
    """
    ks = _check_iterations(iterations)
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 2:
        raise ValueError(f"n_pairs must be an int >= 2; got {n_pairs!r}")
    d = problem.dim
    x0 = problem.start if start is None else np.asarray(start, dtype=np.float64)
    if x0.shape == (d,):
        x0 = np.tile(x0, (n_pairs, 1))
    if x0.shape != (n_pairs, d):
        raise ValueError(f"start must have shape ({d},) or ({n_pairs}, {d}); got {x0.shape}")
    rng = np.random.default_rng([seed, 4242])
    y0 = problem.exact_draws(n_pairs, rng)
    mom = None
    if _has_momentum(kernel):
        v0 = rng.standard_normal((n_pairs, d))
        mom = np.concatenate([v0, v0])
    run = run_chains(
        kernel,
        problem.target() if target is None else target,
        np.concatenate([x0, y0]),
        ks,
        seed=seed,
        momentum0=mom,
        backend=backend,
        noise_groups=2,
    )
    bound, se = [], []
    n_used = n_pairs
    for k in ks:
        pos = run.snapshots[k]
        half = pos.shape[0] // 2
        n_used = min(n_used, half)
        sq = np.sum((pos[:half] - pos[half:]) ** 2, axis=1)
        mean = float(np.mean(sq)) if half else math.nan
        b = math.sqrt(mean) if half else math.nan
        s = float(np.std(sq, ddof=1) / math.sqrt(half)) if half > 1 else math.nan
        bound.append(b)
        se.append(s / (2.0 * b) if b > 0 else 0.0)
    return CouplingBound(np.array(ks), np.array(bound), np.array(se), n_used, run.acceptance)


def _gaussian_start(problem, nf: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Means and covariances of ``X₀ = δ_start ⊗ N(0, I)`` and ``Y₀ ~ π ⊗ N(0, I)``."""
    d = problem.dim
    zx = np.concatenate([problem.start, np.zeros(d * (nf - 1))])
    zy = np.concatenate([problem.mean, np.zeros(d * (nf - 1))])
    cx = np.zeros((nf * d, nf * d))
    cy = np.zeros((nf * d, nf * d))
    cy[:d, :d] = problem.cov
    if nf == 2:
        cx[d:, d:] = np.eye(d)
        cy[d:, d:] = np.eye(d)
    return zx, cx, zy, cy


def exact_coupling_bound(kernel: Kernel, problem, iterations: Sequence[int]) -> CouplingBound:
    """The synchronous-coupling bound (1) in closed form, for a kernel whose step is affine on
    the Gaussian ``problem`` (fixed or random coefficients; :mod:`.twin`).

    ``D₀ = (start − Y₀, 0)`` (same momentum), so ``E[D₀D₀ᵀ]`` has the position block
    ``(start − m)(start − m)ᵀ + Σ`` and zeros elsewhere; then ``D_{k+1} = M D_k``.

    Raises:
        NotAffineError: the step is not affine on this target.
    """
    ks = _check_iterations(iterations)
    chain = full_chain(kernel, problem)
    nf = len(chain.maps[0].fields)
    d = problem.dim
    r0 = np.zeros((nf * d, nf * d))
    gap = problem.start - problem.mean
    r0[:d, :d] = np.outer(gap, gap) + problem.cov
    bound = chain.coupling_path(r0, ks)
    return CouplingBound(np.array(ks), bound, np.zeros_like(bound), 0)


def exact_pair_w2(kernel: Kernel, problem, iterations: Sequence[int]) -> np.ndarray:
    """``W2(μ₀Pᵏ, πPᵏ)`` exactly, for a kernel affine with fixed coefficients on the Gaussian
    ``problem``: both laws are Gaussian (``μ₀ = δ_start ⊗ N(0, I)``, ``π ⊗ N(0, I)`` for the
    momentum of kinetic kernels), propagated by the moment recursions of :mod:`.exact`.

    Raises:
        ValueError: random coefficients (the laws are Gaussian mixtures).
    """
    ks = _check_iterations(iterations)
    chain = full_chain(kernel, problem)
    if chain.random:
        raise ValueError(
            f"{type(kernel).__name__}: random coefficients, the laws are Gaussian mixtures "
            "(no exact W2)"
        )
    nf = len(chain.maps[0].fields)
    zx, cx, zy, cy = _gaussian_start(problem, nf)
    d = problem.dim
    out = []
    for (mx, sx), (my, sy) in zip(chain.moments(zx, cx, ks), chain.moments(zy, cy, ks)):
        out.append(gaussian_w2(mx[:d], sx[:d, :d], my[:d], sy[:d, :d]))
    return np.array(out)
