"""Many independent chains on either backend, and W2 to π with its noise floor.

For kernels whose law after ``k`` steps has no closed form (Metropolis-corrected kernels,
and any kernel on a non-Gaussian target) the law is represented by ``n`` independent chains
run side by side (``vmap`` on the JAX backend, in JAX's precision; or the Numba backend's
compiled loop, float64, when JAX is not wanted), and compared with ``n`` exact draws of π
through :func:`langevin.diagnostics.wasserstein`.

``noise_groups`` runs chains on shared noise streams: with ``n = g·m`` chains, chain ``j``
uses stream ``j mod m``, so chains ``j``, ``j + m``, … see the same draws at every step (the
synchronous coupling of :mod:`langevin.convergence.coupling`).

A W2 estimate between two samples of size ``n`` is positive even when the laws agree. Its
**noise floor** is what two independent exact samples of π of the same size give; it is
reported next to every value, and a value below ``FLOOR_FACTOR`` floors is not reported as
a measurement (its ``resolved`` flag is False and no fit uses it).

In one dimension ``wasserstein(..., method="sliced", n_projections=1)`` is exact optimal
transport (the only directions are ±1, and 1-D transport sorts both samples), at the cost
of a sort, so samples of a million points are cheap. In more dimensions exact OT (network
simplex) on at most ``max_points`` points is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from langevin.diagnostics import wasserstein
from langevin.kernels.base import Kernel

__all__ = ["BACKENDS", "FLOOR_FACTOR", "MCRun", "W2Estimate", "run_chains", "w2_estimate"]

#: The backends :func:`run_chains` runs on.
BACKENDS = ("jax", "numba")

#: A Monte Carlo W2 counts as measured only above this many noise floors. At 3 floors the
#: finite-sample inflation is about sqrt(1 + 1/9) - 1 = 5% if the sampling noise adds in
#: quadrature, small against the factors of 2-10 that the fits span.
FLOOR_FACTOR = 3.0


@dataclass
class MCRun:
    """Positions of ``n`` chains at chosen step counts.

    Attributes:
        snapshots: step count k -> positions ``(n_finite, d)`` after k steps (chains whose
            state became non-finite are dropped and counted in ``diverged``).
        acceptance: mean acceptance rate over all chains and steps.
        diverged: number of chains whose state became non-finite.
        n_chains: chains run.
        time_means: power p -> ``(n, d)`` per-chain time averages of ``(x − center)^p`` over
            the steps after ``average_from`` (chains are independent, so their spread gives an
            exact Monte Carlo standard error); empty unless asked for.
    """

    snapshots: dict[int, np.ndarray]
    acceptance: float
    diverged: int
    n_chains: int
    time_means: dict[int, np.ndarray]

    def moment(self, power: int) -> tuple[float, float]:
        """``(estimate, standard error)`` of the stationary ``E[x^power]`` (all coordinates
        pooled; per-chain time averages are i.i.d. across chains, and so are coordinates of
        a product target under a separable kernel — for others the error is indicative)."""
        per_chain = self.time_means[power]
        per_chain = per_chain[np.all(np.isfinite(per_chain), axis=1)].mean(axis=1)
        return float(per_chain.mean()), float(per_chain.std(ddof=1) / np.sqrt(per_chain.size))


def _check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    return backend


def run_chains(
    kernel: Kernel,
    target,
    x0: np.ndarray,
    checkpoints: Sequence[int],
    *,
    seed: int,
    momentum0: np.ndarray | None = None,
    average_from: int | None = None,
    powers: Sequence[int] = (2, 4),
    center: np.ndarray | None = None,
    backend: str = "jax",
    noise_groups: int = 1,
) -> MCRun:
    """Run ``len(x0)`` chains of ``kernel``, independent unless ``noise_groups > 1``.

    Args:
        kernel: the kernel (its step size is used for every chain).
        target: a :class:`langevin.Target` with a form for ``backend``; reuse one object per
            kernel to reuse its compiled runner across step sizes.
        x0: starting positions ``(n, d)``.
        checkpoints: step counts at which to keep the positions (0 allowed).
        seed: seed of the chains' noise.
        momentum0: starting momenta ``(n, d)`` for kernels whose state has a momentum
            (default: what the kernel's ``init`` gives).
        average_from: if given, accumulate per-chain time averages of ``x^p`` (``p`` in
            ``powers``) over the steps ``average_from < t <= last checkpoint``.
        center: time averages are of ``(x − center)^p`` (default ``center = 0``).
        backend: ``"jax"`` (many chains, vectorised; JAX's precision) or ``"numba"``
            (float64, the compiled CPU loop).
        noise_groups: ``g`` groups of ``n/g`` chains that share their noise streams (chain
            ``j`` draws what chain ``j mod (n/g)`` draws).
    """
    _check_backend(backend)
    x0 = np.ascontiguousarray(x0, dtype=np.float64)
    n, d = x0.shape
    if noise_groups < 1 or n % noise_groups:
        raise ValueError(f"noise_groups must divide the {n} chains; got {noise_groups}")
    m_streams = n // noise_groups
    if backend == "jax":
        import jax.numpy as jnp

        from langevin.backends import jax_backend as eng

        dtype = eng.canonical_float(np.float64)
        prepared = eng.prepare(kernel, target, d, dtype)
        keys = eng.chain_keys(seed, m_streams)
        if noise_groups > 1:
            keys = jnp.concatenate([keys] * noise_groups)
        state = eng.init(prepared, x0, keys=keys)
        if momentum0 is not None:
            _check_momentum(kernel, state)
            state = state._replace(momentum=jnp.asarray(momentum0, dtype=dtype))
        source = {"keys": keys}
        length = eng.chunk_length(n, d, kernel)
    else:
        from langevin.backends import numba_backend as eng

        prepared = eng.prepare(kernel, target, d, np.float64)
        seeds = np.random.SeedSequence(seed).spawn(m_streams)
        init_seeds = [s.spawn(1)[0] for s in seeds]
        init_rngs = [np.random.default_rng(t) for _ in range(noise_groups) for t in init_seeds]
        state = eng.init(prepared, x0, rngs=init_rngs)
        if momentum0 is not None:
            _check_momentum(kernel, state)
            state = state._replace(momentum=np.ascontiguousarray(momentum0, dtype=np.float64))
        # one generator object per chain; chains of a group get equal-seeded copies
        rngs = [np.random.default_rng(s) for _ in range(noise_groups) for s in seeds]
        source = {"rngs": rngs}
        length = eng.first_chunk(n, d, kernel)
    step_size = np.full(n, float(kernel.step_size))
    wanted = sorted({int(k) for k in checkpoints})
    total = wanted[-1] if wanted else 0
    snapshots: dict[int, np.ndarray] = {}
    if 0 in wanted:
        snapshots[0] = x0.copy()
    done = 0
    acc_sum = 0.0
    bad = np.zeros(n, dtype=bool)
    sums = {p: np.zeros((n, d)) for p in powers} if average_from is not None else {}
    shift = np.zeros(d) if center is None else np.asarray(center, dtype=np.float64)
    while done < total:
        m = min(length, total - done)
        res = eng.run(prepared, state, m, step_size, start=done, **source)
        for k in wanted:
            if done < k <= done + m:
                snapshots[k] = np.asarray(res.position[:, k - done - 1, :], dtype=np.float64)
        if sums and done + m > average_from:
            tail = res.position[:, max(average_from - done, 0) :, :] - shift
            with np.errstate(over="ignore", invalid="ignore"):  # diverging chains: dropped below
                for p, acc in sums.items():
                    acc += np.sum(tail**p, axis=1)
        acc_sum += float(np.nansum(res.info["acceptance_rate"]))
        bad |= res.diverged
        state = res.state
        done += m
        if backend == "numba":
            length = eng.next_chunk(n, d, kernel, 0.0)
    # A chain that diverged is dropped from every snapshot and average (the run is flagged by
    # ``diverged`` and the experiments do not use it).
    for acc in sums.values():  # a chain that ran off far enough to overflow a power
        bad |= ~np.all(np.isfinite(acc), axis=1)
    keep = {k: ~bad & np.all(np.isfinite(pos), axis=1) for k, pos in snapshots.items()}
    if noise_groups == 1:
        for k, pos in snapshots.items():
            snapshots[k] = pos[keep[k]]
    else:  # keep the pairing: a group member that failed drops its whole group
        for k, pos in snapshots.items():
            ok = np.all(keep[k].reshape(noise_groups, m_streams), axis=0)
            snapshots[k] = pos.reshape(noise_groups, m_streams, d)[:, ok].reshape(-1, d)
    acceptance = acc_sum / max(n * total, 1)
    count = total - average_from if average_from is not None else 0
    time_means = {p: acc[~bad] / count for p, acc in sums.items()} if count > 0 else {}
    return MCRun(snapshots, acceptance, int(bad.sum()), n, time_means)


def _check_momentum(kernel: Kernel, state) -> None:
    if "momentum" not in state._fields:
        raise ValueError(f"{type(kernel).__name__} has no momentum; momentum0 must be None")


@dataclass(frozen=True)
class W2Estimate:
    """A Monte Carlo W2 and its noise floor (see the module docstring)."""

    w2: float
    floor: float
    n: int

    @property
    def resolved(self) -> bool:
        return self.w2 > FLOOR_FACTOR * self.floor


def _w2(x: np.ndarray, y: np.ndarray, max_points: int) -> float:
    if x.shape[1] == 1:
        return wasserstein(x, y, "sliced", n_projections=1, seed=0)
    return wasserstein(x[:max_points], y[:max_points], "exact")


def w2_estimate(
    samples: np.ndarray,
    exact_draws: Callable[[int, np.random.Generator], np.ndarray],
    rng: np.random.Generator,
    *,
    max_points: int = 2000,
    floor: float | None = None,
) -> W2Estimate:
    """W2 between ``samples`` ``(n, d)`` and ``n`` fresh exact draws of π, with the floor.

    Args:
        samples: the chains' positions.
        exact_draws: ``(n, rng) -> (n, d)`` independent draws of π.
        rng: generator for the reference draws.
        max_points: in ``d > 1``, both sets are cut to this many points (exact OT).
        floor: reuse a floor computed before for the same ``n`` and law (else computed
            from two more independent exact samples).
    """
    n = samples.shape[0]
    if n < 2:
        return W2Estimate(math.nan, math.nan, n)
    ref = exact_draws(n, rng)
    w = _w2(samples, ref, max_points)
    if floor is None:
        floor = _w2(exact_draws(n, rng), exact_draws(n, rng), max_points)
    return W2Estimate(
        float(w), float(floor), int(min(n, max_points) if samples.shape[1] > 1 else n)
    )
