"""Built-in tempering models (prior × likelihood) with both backend forms.

* :func:`gaussian_model`: Gaussian prior, Gaussian likelihood ``y ~ N(x, Σ_y)``; the
  posterior and the evidence are known in closed form (conjugacy):

      Σ_post = (Σ_0⁻¹ + Σ_y⁻¹)⁻¹,   m_post = Σ_post (Σ_0⁻¹ m_0 + Σ_y⁻¹ y),
      Z = ∫ N(x; m_0, Σ_0) N(y; x, Σ_y) dx = N(y; m_0, Σ_0 + Σ_y).

* :func:`logistic_regression_model`: ``β ~ N(0, s² I)``, ``y_i ~ Bernoulli(σ(x_iᵀβ))``;
  no closed form (the tests use quadrature in two dimensions).

Both use *normalised* log-densities (constants included), so ``log_evidence`` estimates
the evidence itself.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from langevin.smc.tempered_target import TemperedTarget
from langevin.targets.base import Target

__all__ = ["normal_target", "gaussian_model", "logistic_regression_model"]


@numba.njit(cache=True)
def _normal_value_and_grad(x, data):
    """``log N(x; m, Σ)`` with its constant, and its gradient; ``data = (m, Σ⁻¹, c)``."""
    mean, precision, constant = data
    diff = x - mean
    grad = -np.dot(precision, diff)
    return 0.5 * np.dot(diff, grad) + constant, grad


@numba.njit(cache=True)
def _diagonal_normal_value_and_grad(x, data):
    """``log N(x; m, diag(1/p))`` with its constant, and its gradient; ``data = (m, p, c)``.
    Element loops: a 25-D prior costs ~0.1 µs, where a BLAS matrix-vector call costs more
    than its arithmetic (tempering evaluates the prior at every kernel step)."""
    mean, precision, constant = data
    d = x.shape[0]
    grad = np.empty(d)
    value = constant
    for i in range(d):
        diff = x[i] - mean[i]
        grad[i] = -precision[i] * diff
        value += 0.5 * diff * grad[i]
    return value, grad


def _diagonal_normal_jax(mean, precision, constant):
    def logdensity(x):
        import jax.numpy as jnp

        diff = x - jnp.asarray(mean, x.dtype)
        return -0.5 * jnp.dot(diff, jnp.asarray(precision, x.dtype) * diff) + constant

    return logdensity


@numba.njit(cache=True)
def _logistic_loglik_value_and_grad(beta, data):
    """``log L(β) = Σ_i [y_i η_i − log(1 + e^{η_i})]``, ``η = Xβ``, and
    ``∇log L = Xᵀ(y − σ(η))``; ``data = (X, y)``.

    With ``e_i = e^{−|η_i|} ∈ (0, 1]``, ``log(1 + e^{η_i}) = max(η_i, 0) + log(1 + e_i)`` and
    ``σ(η_i) = 1/(1 + e_i)`` (η_i > 0) or ``e_i/(1 + e_i)``: one exponential per row, none
    that overflows. The ``log(1 + e_i)`` are summed as the logarithm of the product of the
    ``1 + e_i ∈ (1, 2]`` (flushed into the sum before it can overflow), one logarithm per
    ~900 rows instead of one per row: the row loop costs half as much (the transcendental
    functions dominate a 500 × 25 evaluation), for a rounding error of ~1e-16 per row.
    """
    X, y = data
    n = X.shape[0]
    eta = np.dot(X, beta)
    resid = np.empty(n)
    linear = 0.0
    product = 1.0
    log_sum = 0.0
    for i in range(n):
        t = eta[i]
        e = math.exp(-abs(t))
        q = 1.0 + e
        s = 1.0 / q
        linear += y[i] * t - max(t, 0.0)
        resid[i] = y[i] - (s if t > 0.0 else e * s)
        product *= q
        if product > 1e280:  # a product of factors <= 2: flush before 2^1024
            log_sum += math.log(product)
            product = 1.0
    return linear - (log_sum + math.log(product)), np.dot(X.T, resid)


def _normal_jax(mean, precision, constant):
    def logdensity(x):
        import jax.numpy as jnp

        diff = x - jnp.asarray(mean, x.dtype)
        return -0.5 * jnp.dot(diff, jnp.asarray(precision, x.dtype) @ diff) + constant

    return logdensity


def normal_target(mean, cov, name: str = "normal") -> Target:
    """The normalised Gaussian log-density ``log N(x; mean, cov)`` as a Target (both forms).

    Unlike :func:`langevin.targets.gaussian` it keeps the constant
    ``−½ log det(2π Σ)``, as evidence computations need. A diagonal ``cov`` (given as its
    ``(d,)`` diagonal) gets element-wise code, without a matrix.
    """
    mean = np.ascontiguousarray(mean, dtype=np.float64).reshape(-1)
    d = mean.shape[0]
    cov = np.asarray(cov, dtype=np.float64)
    if cov.shape == (d,):
        if not np.all(np.isfinite(cov)) or np.any(cov <= 0):
            raise ValueError("cov: the variances must be positive and finite")
        precision = np.ascontiguousarray(1.0 / cov)
        constant = -0.5 * d * math.log(2 * math.pi) - 0.5 * float(np.sum(np.log(cov)))
        return Target(
            dim=d,
            jax={"logdensity": _diagonal_normal_jax(mean, precision, constant)},
            numba={"value_and_grad": _diagonal_normal_value_and_grad},
            data=(mean, precision, constant),
            name=name,
        )
    if cov.shape != (d, d):
        raise ValueError(f"cov must have shape ({d}, {d}) or ({d},); got {cov.shape}")
    chol = np.linalg.cholesky(cov)
    precision = np.linalg.inv(cov)
    precision = np.ascontiguousarray(0.5 * (precision + precision.T))
    constant = -0.5 * d * math.log(2 * math.pi) - float(np.sum(np.log(np.diag(chol))))
    return Target(
        dim=d,
        jax={"logdensity": _normal_jax(mean, precision, constant)},
        numba={"value_and_grad": _normal_value_and_grad},
        data=(mean, precision, constant),
        name=name,
    )


def gaussian_model(prior_mean, prior_cov, y, noise_cov) -> TemperedTarget:
    """Gaussian prior ``N(m_0, Σ_0)`` and likelihood ``L(x) = N(y; x, Σ_y)``: a tempering
    model with exact answers, kept as ``model.log_evidence``, ``model.posterior_mean`` and
    ``model.posterior_cov`` (module docstring).

    Example:
        >>> model = gaussian_model([0.0, 0.0], [1.0, 1.0], [1.0, 2.0], [0.5, 0.5])
        >>> round(model.log_evidence, 6)
        -3.910009
    """
    m0 = np.asarray(prior_mean, dtype=np.float64).reshape(-1)
    d = m0.shape[0]

    def full(c):
        c = np.asarray(c, dtype=np.float64)
        return np.diag(c) if c.shape == (d,) else c

    S0, Sy = full(prior_cov), full(noise_cov)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    prior = normal_target(m0, S0, name="gaussian_prior")
    likelihood = normal_target(y, Sy, name="gaussian_likelihood")  # N(y; x, Σ_y) = N(x; y, Σ_y)
    chol0 = np.linalg.cholesky(S0)
    model = TemperedTarget(
        prior,
        likelihood,
        lambda rng, n: m0 + rng.standard_normal((n, d)) @ chol0.T,
        name=f"gaussian_model_{d}d",
    )
    P0, Py = np.linalg.inv(S0), np.linalg.inv(Sy)
    post_cov = np.linalg.inv(P0 + Py)
    model.posterior_cov = 0.5 * (post_cov + post_cov.T)
    model.posterior_mean = model.posterior_cov @ (P0 @ m0 + Py @ y)
    S = S0 + Sy
    r = y - m0
    _, logdet = np.linalg.slogdet(2 * math.pi * S)
    model.log_evidence = float(-0.5 * r @ np.linalg.solve(S, r) - 0.5 * logdet)
    return model


def logistic_regression_model(X, y, prior_scale: float = 1.0) -> TemperedTarget:
    """Bayesian logistic regression as prior × likelihood: ``β ~ N(0, s² I)`` (normalised)
    and ``log L(β) = Σ_i [y_i η_i − log(1 + e^{η_i})]``, ``η = Xβ`` (the likelihood of
    :func:`langevin.targets.logistic_regression`, without its prior)."""
    from langevin.targets.logistic import _logistic_jax

    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"X must be (n, p) and y (n,); got {X.shape} and {y.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y must hold only 0 and 1 labels")
    prior_scale = float(prior_scale)
    if not prior_scale > 0:
        raise ValueError(f"prior_scale must be positive; got {prior_scale}")
    p = X.shape[1]
    likelihood = Target(
        dim=p,
        jax={"logdensity": _logistic_jax(X, y, 0.0)},
        numba={"value_and_grad": _logistic_loglik_value_and_grad},
        data=(X, y),
        name="logistic_likelihood",
    )
    prior = normal_target(np.zeros(p), np.full(p, prior_scale**2), name="logistic_prior")
    return TemperedTarget(
        prior,
        likelihood,
        lambda rng, n: prior_scale * rng.standard_normal((n, p)),
        names={"beta": p},
        name=f"logistic_regression_model_{X.shape[0]}x{p}",
    )
