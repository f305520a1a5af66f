"""Exact Ornstein–Uhlenbeck integrals of kinetic Langevin, stable at small γτ.

The kinetic kernels (:mod:`langevin.kernels.kinetic`) integrate the Ornstein–Uhlenbeck part
of the diffusion exactly over a time τ. With y = γτ its coefficients are

    φ₁(y) = (1 − e^{−y})/y,      φ₂(y) = (y − 1 + e^{−y})/y²,
    G(y)  = [(1 − e^{−2y})/2 − (1 − e^{−y})²/y]/y³

(``A(τ) = (1 − e^{−γτ})/γ = τ φ₁(γτ)``; the frozen-force integral ``(τ − A(τ))/γ = τ² φ₂(γτ)``),
and its noise is Gaussian: Brownian integrals over one path, correlated, sampled exactly from
independent standard normals: :func:`ou_brownian_pair` on one interval (the exponential Euler
step), :func:`rm_brownian_integrals` the three integrals of a randomized-midpoint step, from
the path split at the random midpoint time (ALGORITHMS.md §2b).

**Stability.** φ₁ = −expm1(−y)/y is accurate for every y > 0. φ₂ and G cancel: their closed
forms lose ~ε/y and ~12ε/y² relative, and are 0/0 at y = 0; below ``_SERIES_BELOW`` their
Taylor series (exact coefficients from fractions, highest power first for Horner) are used
instead. At the switch the closed forms are good to ~4e-14 relative and the truncated series
to 2e-19.

Every function here is portable (written once against ``xp``, compiled by each backend).

References:
    Cheng, X., Chatterji, N. S., Bartlett, P. L. and Jordan, M. I. (2018). Underdamped
    Langevin MCMC: a non-asymptotic analysis. COLT.
    Shen, R. and Lee, Y. T. (2019). The randomized midpoint method for log-concave sampling.
    NeurIPS.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from langevin.backends.portable import portable

__all__ = ["ou_brownian_pair", "rm_brownian_integrals"]

xp: Any = None  # bound by each backend (see langevin.backends.portable)

_SERIES_BELOW = 0.25


def _horner(coefficients: list[Fraction]) -> tuple[float, ...]:
    return tuple(float(c) for c in reversed(coefficients))


#: φ₂(y) = Σ (−y)^k/(k+2)!
_PHI2_SERIES = _horner([Fraction((-1) ** k, math.factorial(k + 2)) for k in range(13)])
#: G(y) = Σ_{k≥3} (−1)^{k+1} (2^{k−1}(k−3) + 2)/(k+1)! y^{k−3} = 1/12 − y/12 + 17y²/360 − …
#: (ALGORITHMS.md §2b writes the third term of y³G(y) as y⁵/24; it is 17y⁵/360.)
_GAP_SERIES = _horner(
    [
        Fraction((-1) ** (k + 1) * (2 ** (k - 1) * (k - 3) + 2), math.factorial(k + 1))
        for k in range(3, 18)
    ]
)


@portable
def _phi1(y):
    """(1 − e^{−y})/y for a scalar y ≥ 0 (1 at y = 0)."""
    positive = y > 0.0
    safe = xp.select(positive, y, 1.0)  # no 0/0 in the branch not taken
    return xp.select(positive, -xp.expm1(-safe) / safe, 1.0)


@portable
def _ou_functions(y):
    """``(φ₁(y), φ₂(y), G(y))`` for a scalar y ≥ 0 (see above)."""
    small = y < _SERIES_BELOW
    ys = xp.minimum(y, _SERIES_BELOW)
    phi2_series = 0.0
    for c in _PHI2_SERIES:
        phi2_series = phi2_series * ys + c
    gap_series = 0.0
    for c in _GAP_SERIES:
        gap_series = gap_series * ys + c
    positive = y > 0.0
    safe = xp.select(positive, y, 1.0)
    m = -xp.expm1(-safe)  # 1 − e^{−y}, accurately
    phi1 = xp.select(positive, m / safe, 1.0)
    phi2 = xp.select(small, phi2_series, (safe - m) / (safe * safe))
    # (1 − E)[(1 + E)/2 − (1 − E)/y] with E = e^{−y}, 1 + E = 2 − m
    gap = xp.select(small, gap_series, m * (1.0 - 0.5 * m - m / safe) / (safe * safe * safe))
    return phi1, phi2, gap


@portable
def _pair(tau, y, phi1, phi2, gap, z1, z2):
    """``(I − J, J)`` on an interval of length τ, y = γτ (see :func:`ou_brownian_pair`)."""
    root = xp.sqrt(tau)
    s = y * root * xp.sqrt(gap)
    return (root * y * phi2) * z1 - s * z2, (root * phi1) * z1 + s * z2


@portable
def ou_brownian_pair(tau, friction, z1, z2):
    """``(I − J, J)`` for ``I = ∫₀^τ dW_s`` and ``J = ∫₀^τ e^{−γ(τ−s)} dW_s`` (exact joint law).

    ``Var I = τ``, ``Var J = (1 − e^{−2γτ})/(2γ)``, ``Cov(I, J) = (1 − e^{−γτ})/γ``. With
    y = γτ: ``I = √τ z₁`` and ``J = √τ φ₁(y) z₁ + y √τ √G(y) z₂`` from two independent
    standard normals ``z1, z2``, where y²τ G(y) = Var J − Cov²/τ (ALGORITHMS.md §2b,
    "numerically robust way"). ``I − J = √τ y φ₂(y) z₁ − y √τ √G(y) z₂`` is returned
    directly rather than as a difference, which would cancel when γτ is small. Exact at
    τ = 0 (both zero).
    """
    y = friction * tau
    phi1, phi2, gap = _ou_functions(y)
    return _pair(tau, y, phi1, phi2, gap, z1, z2)


@portable
def _rm_integrals(a, b, ya, yb, fa, fb, z1, z2, z3, z4):
    """:func:`rm_brownian_integrals` from a = αh, b = (1 − α)h, y = γ·(a, b) and the
    ``_ou_functions`` of ya, yb (which the step needs too)."""
    d1, j1 = _pair(a, ya, fa[0], fa[1], fa[2], z1, z2)
    d2, j2 = _pair(b, yb, fb[0], fb[1], fb[2], z3, z4)
    # 1 − e^{−γ(h−a)} = yb φ₁(yb), without cancellation
    return d1, d1 + (yb * fb[0]) * j1 + d2, xp.exp(-yb) * j1 + j2


@portable
def rm_brownian_integrals(step_size, alpha, friction, z1, z2, z3, z4):
    """The Brownian integrals of one randomized-midpoint step, ``(B₁, B₂, B₃)``.

    With a = αh and c_x = √(2u/γ), c_v = √(2γu) (ALGORITHMS.md §2b):

        W₁ = c_x ∫₀^a (1 − e^{−γ(a−s)}) dW_s = c_x B₁,
        W₂ = c_x ∫₀^h (1 − e^{−γ(h−s)}) dW_s = c_x B₂,
        W₃ = c_v ∫₀^h e^{−γ(h−s)} dW_s       = c_v B₃,

    one Brownian path for all three. Built from two independent pieces, (I₁, J₁) on [0, a]
    and (I₂, J₂) on [a, h] (:func:`ou_brownian_pair`), as B₁ = I₁ − J₁,
    B₂ = (I₁ − J₁) + (1 − e^{−γ(h−a)}) J₁ + (I₂ − J₂), B₃ = e^{−γ(h−a)} J₁ + J₂: no
    Cholesky factor of the 3 × 3 covariance, which degenerates as α → 0 and α → 1.
    ``z1 … z4`` are independent standard normals (any common shape).
    """
    # b = (1 − α)h, not h − a: one rounding, and no fused multiply-add that one backend's
    # compiler may form and another not (b is tiny as α → 1, where h − αh cancels)
    a = alpha * step_size
    b = (1.0 - alpha) * step_size
    ya = friction * a
    yb = friction * b
    fa = _ou_functions(ya)
    fb = _ou_functions(yb)
    return _rm_integrals(a, b, ya, yb, fa, fb, z1, z2, z3, z4)
