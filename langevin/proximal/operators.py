"""Proximity operators written once against ``xp`` (compiled by Numba and traced by JAX).

Every operator here has the signature ``prox(x, lam, p)``: the proximity operator

    prox_{λg}(x) = argmin_u  g(u) + ‖u − x‖² / (2λ)

of a convex function ``g`` whose parameters are the NamedTuple ``p`` (runtime values), and a
value function ``value(x, p) = g(x)`` (``+∞`` outside the domain of an indicator). For a
*separable* ``g`` (L1, box, orthant, elastic net) ``lam`` may be a vector (one threshold per
coordinate): that is what a diagonal-metric envelope needs (prox in the norm ‖·‖_M is the
separable prox with ``λ/m_i``). For the others ``lam`` is a scalar.

Closed forms (Parikh & Boyd 2014, "Proximal Algorithms", §6; Combettes & Pesquet 2011):

* weighted L1, ``g = Σ w_i |x_i|``: soft-thresholding ``x − clip(x, −λw, λw)``, exactly 0 in
  the dead zone |x_i| ≤ λ w_i;
* box indicator ``ι_{[a, b]}``: ``clip(x, a, b)``; nonnegative orthant: ``max(x, 0)``;
* elastic net ``g = α‖x‖₁ + (β/2)‖x‖²``: ``soft(x, λα) / (1 + λβ)``;
* group L1 (L2,1) ``g = Σ_G w_G ‖x_G‖₂``: block soft-thresholding
  ``x_G max(1 − λ w_G / ‖x_G‖, 0)``;
* simplex ``{u ≥ 0, Σ u = r}``: ``max(x − τ, 0)`` with τ the root of ``Σ max(x_i − τ, 0) = r``
  (Held, Wolfe & Crowder 1974; Michelot 1986; Condat 2016). The namespace has no sort and
  no data-dependent loop, so τ is found by bisection of this monotone piecewise-linear
  equation on the bracket [max x − r, max x] (a fixed number of halvings, enough to reach the
  float's resolution), then made exact by Michelot's fixed-point
  ``τ = (Σ_{x_i > τ} x_i − r) / #{x_i > τ}`` started from the lower end of the bracket: that
  start has a superset of the final support, and Michelot's iteration then reaches the
  exact τ in at most (extra support elements + 1) steps; a few steps are run.

The 1-D total variation has its own module (:mod:`langevin.proximal.tv`): Condat's direct
algorithm needs a data-dependent loop.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from langevin.backends.portable import portable

__all__ = [
    "L1Params",
    "BoxParams",
    "NonnegativeParams",
    "SimplexParams",
    "ElasticNetParams",
    "GroupL1Params",
    "soft_threshold",
    "l1_prox",
    "l1_value",
    "box_prox",
    "box_value",
    "nonnegative_prox",
    "nonnegative_value",
    "simplex_prox",
    "simplex_value",
    "elastic_net_prox",
    "elastic_net_value",
    "group_l1_prox",
    "group_l1_value",
    "zero_prox",
    "zero_value",
    "SIMPLEX_BISECTIONS",
    "SIMPLEX_TOLERANCE",
]

xp: Any = None

#: Halvings of the simplex bracket: 2^-80 of the radius is below float64's resolution.
SIMPLEX_BISECTIONS = 80
#: Relative tolerance of Σu = r when the simplex indicator is evaluated (round-off of a sum).
SIMPLEX_TOLERANCE = 1e-4


class L1Params(NamedTuple):
    weights: Any  # (d,) or (1,): w_i > 0


class BoxParams(NamedTuple):
    lower: Any  # (d,) or (1,), may be −∞
    upper: Any  # (d,) or (1,), may be +∞


class NonnegativeParams(NamedTuple):
    """No parameters (a placeholder field keeps the tuple typable everywhere)."""

    unused: Any


class SimplexParams(NamedTuple):
    radius: Any  # scalar r > 0


class ElasticNetParams(NamedTuple):
    l1: Any  # (d,) or (1,): α ≥ 0
    l2: Any  # (d,) or (1,): β ≥ 0


class GroupL1Params(NamedTuple):
    groups: Any  # (d,) int: the group of each coordinate, 0 … G − 1
    weights: Any  # (G,): w_G > 0


@portable
def soft_threshold(x, t):
    """``sign(x) max(|x| − t, 0)``, written ``x − clip(x, −t, t)``: exactly 0 for |x| ≤ t."""
    return x - xp.clip(x, -t, t)


@portable
def zero_prox(x, lam, p):
    """prox of g ≡ 0: the identity."""
    return x + 0.0 * lam


@portable
def zero_value(x, p):
    return 0.0 * xp.sum(x)


@portable
def l1_prox(x, lam, p):
    """Soft-thresholding at λ w (weighted L1)."""
    return soft_threshold(x, lam * p.weights)


@portable
def l1_value(x, p):
    return xp.sum(p.weights * xp.abs(x))


@portable
def box_prox(x, lam, p):
    """Projection on the box [lower, upper] (any λ)."""
    return xp.clip(x, p.lower, p.upper) + 0.0 * lam


@portable
def box_value(x, p):
    """0 inside the box, +∞ outside."""
    return xp.sum(xp.where(x < p.lower, xp.inf, 0.0) + xp.where(x > p.upper, xp.inf, 0.0))


@portable
def nonnegative_prox(x, lam, p):
    """Projection on the nonnegative orthant (any λ)."""
    return xp.maximum(x, 0.0) + 0.0 * lam


@portable
def nonnegative_value(x, p):
    return xp.sum(xp.where(x < 0.0, xp.inf, 0.0))


@portable
def _simplex_excess(x, tau, r):
    return xp.sum(xp.maximum(x - tau, 0.0)) - r


@portable
def _simplex_bisect(i, carry, args):
    lo, hi = carry
    x, r = args
    mid = 0.5 * (lo + hi)
    above = _simplex_excess(x, mid, r) > 0.0  # the root is above mid
    return xp.select(above, mid, lo), xp.select(above, hi, mid)


@portable
def _simplex_michelot(i, tau, args):
    x, r = args
    active = x > tau
    ones = 0.0 * x + 1.0  # x's dtype (float32 stays float32 on JAX)
    count = xp.sum(xp.where(active, ones, 0.0 * x))
    return (xp.sum(xp.where(active, x, 0.0 * x)) - r) / xp.maximum(count, 1.0)


@portable
def simplex_prox(x, lam, p):
    """Euclidean projection on {u ≥ 0, Σu = r}: bisection for the support, then Michelot's
    exact fixed point (module docstring)."""
    r = p.radius + 0.0 * x[0]
    top = xp.max(x)
    bracket = xp.fori_loop(0, SIMPLEX_BISECTIONS, _simplex_bisect, (top - r, top), (x, r))
    tau = xp.fori_loop(0, 4, _simplex_michelot, bracket[0], (x, r))
    return xp.maximum(x - tau, 0.0) + 0.0 * lam


@portable
def simplex_value(x, p):
    """0 on the simplex (Σu = r up to a relative :data:`SIMPLEX_TOLERANCE`), +∞ off it."""
    r = p.radius
    negative = xp.sum(xp.where(x < 0.0, 1.0, 0.0)) > 0.0
    off = xp.abs(xp.sum(x) - r) > SIMPLEX_TOLERANCE * (r + xp.sum(xp.abs(x)))
    return xp.select(negative, xp.inf, xp.select(off, xp.inf, 0.0 * r))


@portable
def elastic_net_prox(x, lam, p):
    """``soft(x, λα) / (1 + λβ)``."""
    return soft_threshold(x, lam * p.l1) / (1.0 + lam * p.l2)


@portable
def elastic_net_value(x, p):
    return xp.sum(p.l1 * xp.abs(x) + 0.5 * p.l2 * x * x)


@portable
def _group_norms(x, p):
    """‖x_G‖ for every coordinate's group G (one value per coordinate)."""
    sq = xp.scatter_add(0.0 * p.weights, p.groups, x * x)
    return xp.sqrt(xp.take(sq, p.groups))


@portable
def group_l1_prox(x, lam, p):
    """Block soft-thresholding: ``x_G max(1 − λ w_G / ‖x_G‖, 0)``; exactly 0 when
    ‖x_G‖ ≤ λ w_G."""
    norms = _group_norms(x, p)
    w = xp.take(p.weights, p.groups)
    safe = xp.where(norms > 0.0, norms, 1.0)
    return x * xp.maximum(1.0 - lam * w / safe, 0.0)


@portable
def group_l1_value(x, p):
    sq = xp.scatter_add(0.0 * p.weights, p.groups, x * x)
    return xp.sum(p.weights * xp.sqrt(sq))
