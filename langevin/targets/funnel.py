"""Neal's funnel: a hierarchical prior whose scale varies by orders of magnitude.

From Neal (2003), "Slice sampling", Annals of Statistics 31(3), section 8::

    v ~ N(0, scale²),        x_i | v ~ N(0, e^v),   i = 1..dim−1,

with the position ``(v, x_1..x_{dim−1})``. Up to a constant,

    log π(v, x) = −v² / (2 scale²) − (dim−1) v / 2 − ½ e^{−v} Σ x_i²
    ∂/∂v  = −v / scale² − (dim−1)/2 + ½ e^{−v} Σ x_i²
    ∂/∂x_i = −e^{−v} x_i

The scale of the ``x_i`` is ``e^{v/2}``: between v = −2·scale and v = +2·scale it changes by
a factor ``e^{2·scale}`` (about 400 for scale = 3), so no single step size suits both the
narrow neck (v ≪ 0) and the wide mouth (v ≫ 0); fixed-step gradient samplers either
diverge in the neck or crawl through the mouth, and rarely enter the neck at all. It is
*not* a test of a sampler's accuracy in the bulk; use it to see whether a method notices
that it fails (divergences, R-hat, a biased ``var(v)``).

Exact moments: every coordinate has mean 0 and the coordinates are uncorrelated (each ``x_i``
is symmetric given ``v``); ``var(v) = scale²`` and ``var(x_i) = E[e^v] = exp(scale²/2)``.
Exact sampling is direct: draw ``v``, then the ``x_i``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .base import Reference, Target

__all__ = ["neals_funnel"]


@numba.njit(cache=True)
def _funnel_value_and_grad(z, data):
    """Funnel log density and gradient; ``data = (1 / scale²,)``."""
    inv_scale2 = data[0]
    v = z[0]
    n = z.shape[0] - 1
    w = math.exp(-v)
    grad = np.empty(n + 1)
    sq = 0.0
    for i in range(n):
        xi = z[i + 1]
        sq += xi * xi
        grad[i + 1] = -w * xi
    grad[0] = -v * inv_scale2 - 0.5 * n + 0.5 * w * sq
    value = -0.5 * v * v * inv_scale2 - 0.5 * n * v - 0.5 * w * sq
    return value, grad


def _funnel_jax(inv_scale2: float):
    """The JAX log density; it computes in the dtype of ``z``."""

    def logdensity(z):
        import jax.numpy as jnp  # at trace time: the Numba form never imports JAX

        v, x = z[0], z[1:]
        n = z.shape[0] - 1
        return -0.5 * v * v * inv_scale2 - 0.5 * n * v - 0.5 * jnp.exp(-v) * jnp.dot(x, x)

    return logdensity


def neals_funnel(dim: int = 10, scale: float = 3.0) -> Target:
    """Neal's funnel in ``dim`` dimensions: ``v ~ N(0, scale²)``, ``x_i | v ~ N(0, e^v)``.

    Source: R. M. Neal (2003), "Slice sampling", Ann. Statist. 31(3), 705-767 (dim = 10,
    scale = 3 there).

    Args:
        dim: total dimension (``v`` and ``dim − 1`` coordinates ``x``), an int >= 2.
        scale: standard deviation of ``v``, > 0.

    Returns:
        A :class:`Target` with names ``{"v": (), "x": dim − 1}``, started at 0 (the mean),
        with the exact reference: mean 0, covariance
        ``diag(scale², exp(scale²/2), ..., exp(scale²/2))``.
    """
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 2:
        raise ValueError(f"dim must be an int >= 2 (v and at least one x); got {dim!r}")
    scale = float(scale)
    if not (np.isfinite(scale) and scale > 0.0):
        raise ValueError(f"scale must be a positive finite number; got {scale}")
    dim = int(dim)
    variances = np.full(dim, math.exp(0.5 * scale**2))
    variances[0] = scale**2
    inv_scale2 = 1.0 / scale**2
    return Target(
        dim=dim,
        names={"v": (), "x": dim - 1},
        jax={"logdensity": _funnel_jax(inv_scale2)},
        numba={"value_and_grad": _funnel_value_and_grad},
        data=(inv_scale2,),
        initial_position=np.zeros(dim),
        reference=Reference(
            mean=np.zeros(dim),
            cov=np.diag(variances),
            sd=np.sqrt(variances),
            source="exact: var(v) = scale^2, var(x_i) = E[e^v] = exp(scale^2/2) (Neal 2003)",
        ),
        name=f"neals_funnel_{dim}d_scale{scale:g}",
    )
