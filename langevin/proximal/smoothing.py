"""Choosing the smoothing λ: the bias of π_λ against π, by quadrature per coordinate.

For a product target π(x) ∝ Π_i exp(−f_i(x_i) − g_i(x_i)) with a separable penalty g
(weighted L1, a box), the Moreau–Yosida smoothed law π_λ ∝ exp(−f − g_λ) is a product too,
and each coordinate's bias is a 1-D integral:

* L1, g_i = t|x|: g_λ is the Huber function, x²/(2λ) for |x| ≤ λt and t|x| − λt²/2 beyond;
* box [a, b]: g_λ = dist²(x, [a, b])/(2λ) (Gaussian tails of width √λ outside the box).

``f_i`` is taken Gaussian, f_i = (x − m_i)²/(2 s_i²) (a Gaussian likelihood or prior per
coordinate), or absent (``mean=None``: π is the penalty's own law, which needs a box or an L1).
The bias of a coordinate is measured as the total-variation distance ``"tv"`` (½∫|π_λ − π|),
the error of the mean ``"mean"`` or of the standard deviation ``"sd"`` (both in units of π's
standard deviation of that coordinate); :func:`smoothing_for_bias` returns the largest λ on a
fine geometric grid whose worst coordinate is within the tolerance (the bias grows with λ:
order 1 or 2 for L1, order 1/2 for a box; :class:`langevin.proximal.Penalty`'s
``smoothing_bias_order``).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from scipy import integrate

__all__ = ["smoothing_bias", "smoothing_for_bias", "coordinate_densities"]


def _expand(a, d):
    return np.broadcast_to(np.asarray(a, dtype=np.float64), (d,))


def _entry(a, i):
    a = np.atleast_1d(np.asarray(a, dtype=np.float64))
    return float(a[i] if a.size > 1 else a[0])


def _pieces(penalty, i, lam):
    """(g_i, g_λ,i, support of π_i, breakpoints) for coordinate i."""
    name = penalty.name
    if name == "l1":
        t = _entry(penalty.params.weights, i)

        def g(x):
            return t * np.abs(x)

        def g_lam(x):
            a = np.abs(x)
            return np.where(a <= lam * t, x * x / (2 * lam), t * a - lam * t * t / 2)

        return g, g_lam, (-np.inf, np.inf), [-lam * t, 0.0, lam * t]
    if name == "box":
        lo = _entry(penalty.params.lower, i)
        hi = _entry(penalty.params.upper, i)

        def g(x):
            return np.where((x >= lo) & (x <= hi), 0.0, np.inf)

        def g_lam(x):
            dist = np.maximum(lo - x, 0.0) + np.maximum(x - hi, 0.0)
            return dist * dist / (2 * lam)

        return g, g_lam, (lo, hi), [v for v in (lo, hi) if np.isfinite(v)]
    raise ValueError(
        f"the smoothing bias is computed for the penalties 'l1' and 'box'; got {name!r}"
    )


def coordinate_densities(penalty, lam: float, i: int, mean=None, sd=None):
    """Unnormalised 1-D log-densities ``(log π_i, log π_λ,i)``, π_i's support and the
    breakpoints, for coordinate ``i``."""
    g, g_lam, support, breaks = _pieces(penalty, i, lam)
    if mean is None:

        def f(x):
            return 0.0 * x

    else:
        m, s = float(mean[i]), float(sd[i])
        breaks = [*breaks, m]

        def f(x):
            return (x - m) ** 2 / (2 * s * s)

    # points where the integrands change on the scale √λ (the envelope's tails and band)
    root = np.sqrt(lam)
    breaks = [*breaks, *(b + s * k * root for b in breaks for s in (-1, 1) for k in (1, 3, 10))]
    return (lambda x: -f(x) - g(x)), (lambda x: -f(x) - g_lam(x)), support, breaks


def _moments(logp, support, breaks, scale):
    """(Z, mean, second moment) of exp(logp) by adaptive quadrature, split at breakpoints."""
    lo, hi = support
    lo = lo if np.isfinite(lo) else min(breaks) - 60 * scale
    hi = hi if np.isfinite(hi) else max(breaks) + 60 * scale
    pts = sorted({p for p in breaks if lo < p < hi})
    edges = [lo, *pts, hi]
    ref = max(logp(np.array(p)) for p in [*pts, 0.5 * (lo + hi)])
    out = np.zeros(3)
    for a, b in pairwise(edges):
        for k in range(3):
            out[k] += integrate.quad(
                lambda x: x**k * np.exp(logp(x) - ref), a, b, epsabs=1e-14, epsrel=1e-11, limit=400
            )[0]
    return out[0], out[1] / out[0], out[2] / out[0], ref


def smoothing_bias(penalty, lam: float, *, mean=None, sd=None, metric: str = "tv") -> np.ndarray:
    """The bias of π_λ against π for every coordinate (see the module docstring).

    Args:
        penalty: ``langevin.proximal.l1(...)`` or ``box(...)``.
        lam: the smoothing λ > 0.
        mean, sd: the Gaussian smooth part per coordinate (None: no smooth part).
        metric: ``"tv"``, ``"mean"`` or ``"sd"``.

    Returns:
        ``(d,)`` biases (``d`` from the penalty's or the Gaussian's parameters).
    """
    if metric not in ("tv", "mean", "sd"):
        raise ValueError(f"metric must be 'tv', 'mean' or 'sd'; got {metric!r}")
    lam = float(lam)
    if not (np.isfinite(lam) and lam > 0):
        raise ValueError(f"lam must be positive and finite; got {lam!r}")
    d = penalty.dim or (np.size(mean) if mean is not None else 1)
    if mean is not None:
        mean, sd = _expand(mean, d), _expand(sd, d)
        if not np.all(sd > 0):
            raise ValueError("sd must be positive")
    elif penalty.name == "box":
        lo, hi = _expand(penalty.params.lower, d), _expand(penalty.params.upper, d)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError("a box with an infinite side needs a smooth part (mean=, sd=)")
    out = np.zeros(d)
    for i in range(d):
        logp, logq, support, breaks = coordinate_densities(penalty, lam, i, mean, sd)
        scale = float(sd[i]) if mean is not None else 1.0 + max(abs(b) for b in breaks)
        if penalty.name == "l1" and mean is None:
            scale = 1.0 / _entry(penalty.params.weights, i)
        z0, m0, s0, r0 = _moments(logp, support, breaks, scale)
        z1, m1, s1, r1 = _moments(logq, (-np.inf, np.inf), breaks, scale + np.sqrt(lam))
        sd0, sd1 = np.sqrt(s0 - m0 * m0), np.sqrt(s1 - m1 * m1)
        if metric == "mean":
            out[i] = abs(m1 - m0) / sd0
        elif metric == "sd":
            out[i] = abs(sd1 - sd0) / sd0
        else:
            lo, hi = support
            lo_q = min(breaks) - 60 * (scale + np.sqrt(lam))
            hi_q = max(breaks) + 60 * (scale + np.sqrt(lam))

            def diff(x):
                p = np.exp(logp(x) - r0) / z0 if lo <= x <= hi else 0.0
                return abs(p - np.exp(logq(x) - r1) / z1)

            pts = sorted({p for p in [*breaks, lo, hi] if np.isfinite(p)})
            edges = [lo_q, *pts, hi_q]
            out[i] = 0.5 * sum(
                integrate.quad(diff, a, b, epsabs=1e-13, limit=400)[0] for a, b in pairwise(edges)
            )
    return out


def smoothing_for_bias(
    penalty,
    tolerance: float,
    *,
    mean=None,
    sd=None,
    metric: str = "tv",
    lam_max: float = 10.0,
    lam_min: float = 1e-8,
) -> float:
    """The largest λ (on a geometric grid of 8 points per decade, refined by bisection) whose
    worst coordinate bias (:func:`smoothing_bias`) is at most ``tolerance``.

    Example:
        >>> from langevin.proximal import l1
        >>> lam = smoothing_for_bias(l1(1.0), 0.01)     # Laplace(1): TV(π_λ, π) ≤ 1%
        >>> float(smoothing_bias(l1(1.0), lam)[0]) <= 0.01
        True
    """
    tolerance = float(tolerance)
    if not (np.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be positive; got {tolerance!r}")

    def worst(lam):
        return float(np.max(smoothing_bias(penalty, lam, mean=mean, sd=sd, metric=metric)))

    grid = np.geomspace(lam_max, lam_min, int(8 * np.log10(lam_max / lam_min)) + 1)
    prev = None
    for lam in grid:
        if worst(lam) <= tolerance:
            if prev is None:
                return float(lam)
            lo, hi = lam, prev  # worst(lo) ≤ tol < worst(hi): bisect in log λ
            for _ in range(20):
                mid = np.sqrt(lo * hi)
                lo, hi = (mid, hi) if worst(mid) <= tolerance else (lo, mid)
            return float(lo)
        prev = lam
    raise ValueError(f"no λ ≥ {lam_min} reaches a bias of {tolerance} ({metric})")
