"""Exact independent draws of the 2-D U(1) gauge field on the torus (NumPy).

The model of :mod:`langevin.lattice.u1` is solvable: on the ``L × L`` torus the map from links
to plaquette angles, ``x ↦ x_P`` (the lattice curl ``C``, a ``V × 2V`` matrix with entries
``±1``, ``V = L²``), has image ``{θ ∈ U(1)^V : Σ_P θ_P ≡ 0 (mod 2π)}`` (every link enters one
plaquette with ``+`` and one with ``−``, so ``Σ_P x_P = 0`` identically, and nothing else is
lost: ``dim ker C = V + 1`` — the ``V − 1`` non-trivial gauge directions and the two
holonomies). Under ``π(x) ∝ exp(β Σ_P cos x_P)`` on ``U(1)^{2V}`` (Haar measure) this gives:

1. **The plaquettes** have the density ``∏_P e^{β cos θ_P}`` on that subgroup: in the
   coordinates ``θ_1 … θ_{V−1}`` (free) and ``θ_V = −Σ_{P<V} θ_P`` (mod 2π),

       p(θ_1, …, θ_{V−1}) ∝ ∏_{P<V} e^{β cos θ_P} · e^{β cos θ_V}.

   *Rejection sampler* (exact): draw ``θ_1 … θ_{V−1}`` iid von Mises ``(0, β)``, set
   ``θ_V = wrap(−Σ_{P<V} θ_P)`` and accept with probability ``e^{β(cos θ_V − 1)} ≤ 1``; the
   proposal has the first ``V − 1`` factors, the acceptance the last. The acceptance rate is
   ``E[e^{β(cos θ_V − 1)}]``, which tends to ``I_0(β) e^{−β}`` when ``θ_V`` is close to uniform
   on the circle (large ``V``): 0.31 at β = 2 and 0.17 at β = 6 on ``L = 8``.
2. **The links given the plaquettes** are uniform (Haar) on the coset
   ``x* + ker(C mod 2π)``, where ``x*`` is any solution of ``C x* ≡ θ`` and the kernel (the
   flat connections) is ``{gauge transformations x_μ(n) ↦ x_μ(n) + α(n) − α(n + μ̂)} +
   {constant holonomies x_μ ↦ x_μ + c_μ}`` (``H¹(T², U(1)) = U(1)²`` is connected, and
   constant links of direction ``μ`` wind ``L c_μ`` around the cycle). Haar on the kernel is the
   image of ``α ~ U(−π, π)^V``, ``c ~ U(−π, π)²`` (a surjective homomorphism of compact groups
   pushes Haar to Haar). ``x*``: shift ``θ_V`` by the multiple of ``2π`` that makes the real
   vector ``θ'`` sum to exactly 0 (it is then in the image of the real ``C``) and take the
   least-squares (pseudo-inverse) solution of ``C x* = θ'``.

The returned fields are wrapped into ``[−π, π)``; their plaquettes equal ``θ`` mod 2π to
round-off, so ``Q = (1/2π) Σ_P wrap(x_P) = (1/2π) Σ_P θ_P`` (with every ``θ_P ∈ [−π, π)``) has
its exact law, and so has every gauge-invariant and every gauge-variant observable.

This is the reference for tests that cannot rely on mixing: chains started from exact draws
are stationary from the first step, so the average of any observable over independent chains
is unbiased whatever the autocorrelation of a frozen topological charge
(``tests/test_u1_exact.py``).

References:
    Best, D. J. and Fisher, N. I. (1979). Efficient simulation of the von Mises distribution.
    Applied Statistics 28, 152 (NumPy's von Mises sampler).
    The exact solution of the model: ``ALGORITHMS.md`` §6 and :mod:`langevin.lattice.u1`.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from scipy.special import i0e

from langevin.lattice.u1 import _check_beta, _check_size, lattice_indices, wrap

__all__ = ["exact_u1_samples", "exact_plaquette_angles"]


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an int >= 1 (the number of draws); got {n!r}")
    return int(n)


def _rng(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative int or a numpy Generator; got {seed!r}")
    return np.random.default_rng(int(seed))


def exact_plaquette_angles(beta: float, L: int, n: int, seed: Any = 0) -> np.ndarray:
    """``n`` independent draws of the ``V = L²`` plaquette angles of 2-D U(1) on the torus.

    The law is ``∝ ∏_P e^{β cos θ_P}`` on ``{Σ_P θ_P ≡ 0 mod 2π}``, drawn exactly by
    rejection: ``θ_1 … θ_{V−1}`` iid von Mises ``(0, β)`` (``numpy.random.Generator.vonmises``),
    ``θ_V = wrap(−Σ_{P<V} θ_P)``, accepted with probability ``e^{β(cos θ_V − 1)}`` (see the
    module docstring). The topological charge of a draw is ``Σ_P θ_P / 2π`` (an integer).

    Args:
        beta: the gauge coupling β >= 0.
        L: the lattice size (``V = L²`` plaquettes), an int >= 2.
        n: the number of draws, an int >= 1.
        seed: an int or a ``numpy.random.Generator``.

    Returns:
        ``(n, V)`` float64 angles in ``[−π, π]``, plaquette ``p = n_0 L + n_1`` in the order of
        :func:`~langevin.lattice.plaquette_angles`.
    """
    beta = _check_beta(beta)
    V = _check_size(L) ** 2
    n = _check_n(n)
    rng = _rng(seed)
    # I_0(β)e^{−β} as scipy's exponentially scaled i0e: np.exp(−β)·np.i0(β) is inf·0 = NaN
    # past β ≈ 700
    rate = max(float(i0e(beta)), 1e-3)
    out, have = [], 0
    while have < n:
        m = min(int(1.2 * (n - have) / rate) + 16, max(1024, 4_000_000 // V))
        free = rng.vonmises(0.0, beta, (m, V - 1)) if beta > 0 else rng.uniform(
            -np.pi, np.pi, (m, V - 1))  # fmt: skip
        last = wrap(-np.sum(free, axis=1))
        keep = rng.random(m) < np.exp(beta * (np.cos(last) - 1.0))
        out.append(np.concatenate([free[keep], last[keep, None]], axis=1))
        have += int(np.count_nonzero(keep))
    return np.concatenate(out)[:n]


@functools.lru_cache(maxsize=16)
def _curl_pinv(L: int) -> tuple[np.ndarray, np.ndarray]:
    """The curl ``C`` (``V × 2V``) of :func:`~langevin.lattice.plaquette_angles` and its
    Moore–Penrose pseudo-inverse (``2V × V``)."""
    plaq = lattice_indices(L).plaq
    V = L * L
    C = np.zeros((V, 2 * V))
    rows = np.arange(V)
    for k, sign in enumerate((1.0, 1.0, -1.0, -1.0)):
        np.add.at(C, (rows, plaq[k]), sign)
    return C, np.linalg.pinv(C)


def exact_u1_samples(beta: float, L: int, n: int, seed: Any = 0) -> np.ndarray:
    """``n`` exact independent draws of the 2-D U(1) field at coupling ``beta`` on ``L × L``.

    Plaquettes from :func:`exact_plaquette_angles`; links ``x*`` solving ``C x* = θ'`` by least
    squares (``θ'`` = the plaquettes with ``θ_V`` shifted by a multiple of 2π to sum to exactly
    0); then a uniform random gauge transformation ``x_μ(n) += α(n) − α(n + μ̂)`` and uniform
    random constant holonomies ``x_μ += c_μ`` (the action is flat in both); wrapped into
    ``[−π, π)``. Every draw has exactly the law ``π(x) ∝ exp(β Σ_P cos x_P)`` of
    :func:`~langevin.lattice.u1_lattice` (module docstring), so chains started from these are
    stationary from the first step. NumPy only: about 0.5 s per 10⁴ draws at β = 6,
    ``L = 8``.

    Args:
        beta: the gauge coupling β >= 0.
        L: the lattice size, an int >= 2.
        n: the number of draws, an int >= 1.
        seed: an int or a ``numpy.random.Generator``.

    Returns:
        ``(n, 2L²)`` float64 link angles in the flat layout of ``u1_lattice`` (``[μ, n_0, n_1]``
        row-major; reshape to ``(n, 2, L, L)`` for the field).

    Example:
        >>> from langevin.lattice import exact_q2, exact_u1_samples, topological_charge
        >>> x = exact_u1_samples(6.0, 8, 4000, seed=0)
        >>> q = topological_charge(x, 8)
        >>> bool(abs((q**2).mean() - exact_q2(6.0, 8)) < 0.05)
        True
    """
    beta = _check_beta(beta)
    L = _check_size(L)
    n = _check_n(n)
    rng = _rng(seed)
    V = L * L
    theta = exact_plaquette_angles(beta, L, n, rng)
    winding = np.rint(np.sum(theta, axis=1) / (2.0 * math.pi))
    theta_real = theta.copy()
    theta_real[:, -1] -= 2.0 * math.pi * winding  # Σ θ' = 0 to round-off: in the image of C
    _C, pinv = _curl_pinv(L)
    x = theta_real @ pinv.T
    # a uniform gauge transformation and uniform constant holonomies (the flat directions)
    alpha = rng.uniform(-math.pi, math.pi, (n, L, L))
    hol = rng.uniform(-math.pi, math.pi, (n, 2))
    f = x.reshape(n, 2, L, L)
    f[:, 0] += alpha - np.roll(alpha, -1, axis=1) + hol[:, 0, None, None]
    f[:, 1] += alpha - np.roll(alpha, -1, axis=2) + hol[:, 1, None, None]
    return wrap(f.reshape(n, 2 * V))
