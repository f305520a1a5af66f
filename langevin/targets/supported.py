"""Targets on constrained supports with exact laws: a Dirichlet on the simplex and a product
of Gammas on the orthant (for the mirror-Langevin kernels, whose steps never leave them).

* :func:`dirichlet`: Dirichlet(α_1, …, α_K) in its first d = K − 1 coordinates
  (x_K = 1 − Σx): log π = Σ_{i<K} (α_i − 1) log x_i + (α_K − 1) log(1 − Σx);
  exact mean α_i/α₀ and covariance (α_i δ_ij α₀ − α_i α_j)/(α₀²(α₀ + 1)), α₀ = Σα; the
  marginals are Beta(α_i, α₀ − α_i).
* :func:`gamma`: independent Gamma(a_i, rate b_i) on (0, ∞)^d: log π = Σ (a − 1) log x − b x;
  mean a/b, variance a/b².

Outside the open support the log-density is −∞ (gradient 0).
"""

from __future__ import annotations

import numba
import numpy as np

from .base import Reference, Target

__all__ = ["dirichlet", "gamma"]


@numba.njit(cache=True)
def _dirichlet_vg(x, data):
    alpha = data
    d = x.shape[0]
    last = 1.0 - np.sum(x)
    grad = np.zeros(d)
    if last <= 0.0 or np.min(x) <= 0.0:
        return -np.inf, grad
    value = (alpha[d] - 1.0) * np.log(last)
    for i in range(d):
        value += (alpha[i] - 1.0) * np.log(x[i])
        grad[i] = (alpha[i] - 1.0) / x[i] - (alpha[d] - 1.0) / last
    return value, grad


@numba.njit(cache=True)
def _gamma_vg(x, data):
    shape, rate = data
    grad = np.zeros(x.shape[0])
    if np.min(x) <= 0.0:
        return -np.inf, grad
    value = np.sum((shape - 1.0) * np.log(x) - rate * x)
    grad = (shape - 1.0) / x - rate
    return value, grad


def _vector(name, value, size=None):
    a = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if a.ndim != 1 or not np.all(np.isfinite(a)) or not np.all(a > 0):
        raise ValueError(f"{name} must be a 1-D array of positive finite numbers; got {value!r}")
    if size is not None and a.size not in (1, size):
        raise ValueError(f"{name} must have {size} entries (or one); got {a.size}")
    return np.ascontiguousarray(np.broadcast_to(a, (size or a.size,)).copy())


def dirichlet(alpha) -> Target:
    """Dirichlet(α) with K = len(α) ≥ 2 categories, as a target on its first K − 1
    coordinates (the open simplex {x > 0, Σx < 1}); exact mean and covariance in
    ``reference``. Started at the mean."""
    alpha = _vector("alpha", alpha)
    if alpha.size < 2:
        raise ValueError("alpha must have at least 2 entries (categories)")
    d = alpha.size - 1
    a0 = alpha.sum()
    mean = alpha / a0
    cov = (np.diag(alpha) * a0 - np.outer(alpha, alpha)) / (a0**2 * (a0 + 1.0))

    def logdensity(x):
        import jax.numpy as jnp

        a = jnp.asarray(alpha, dtype=x.dtype)
        last = 1.0 - jnp.sum(x)
        ok = (last > 0) & (jnp.min(x) > 0)
        safe_x = jnp.where(ok, x, 0.5 / d)
        safe_last = jnp.where(ok, last, 0.5)
        value = jnp.sum((a[:d] - 1.0) * jnp.log(safe_x)) + (a[d] - 1.0) * jnp.log(safe_last)
        return jnp.where(ok, value, -jnp.inf)

    return Target(
        dim=d,
        jax={"logdensity": logdensity},
        numba={"value_and_grad": _dirichlet_vg},
        data=alpha,
        initial_position=mean[:d].copy(),
        reference=Reference(
            mean=mean[:d],
            cov=cov[:d, :d],
            sd=np.sqrt(np.diag(cov))[:d],
            source="exact: the Dirichlet law",
        ),
        name=f"dirichlet_{alpha.size}",
    )


def gamma(shape, rate) -> Target:
    """Independent Gamma(shape_i, rate_i) on the open orthant; exact mean and variance in
    ``reference``. Started at the mean."""
    shape = _vector("shape", shape)
    rate = _vector("rate", rate, shape.size if shape.size > 1 else None)
    if rate.size > 1 and shape.size == 1:
        shape = np.full(rate.size, shape[0])
    d = shape.size

    def logdensity(x):
        import jax.numpy as jnp

        a = jnp.asarray(shape, dtype=x.dtype)
        b = jnp.asarray(rate, dtype=x.dtype)
        ok = jnp.min(x) > 0
        safe = jnp.where(ok, x, 1.0)
        return jnp.where(ok, jnp.sum((a - 1.0) * jnp.log(safe) - b * safe), -jnp.inf)

    mean = shape / rate
    var = shape / rate**2
    return Target(
        dim=d,
        jax={"logdensity": logdensity},
        numba={"value_and_grad": _gamma_vg},
        data=(shape, rate),
        initial_position=mean.copy(),
        reference=Reference(
            mean=mean, cov=np.diag(var), sd=np.sqrt(var), source="exact: independent Gamma laws"
        ),
        name=f"gamma_{d}d",
    )
