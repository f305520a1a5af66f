"""Finite mixtures of Gaussians: multimodal targets with exact moments.

For weights ``w_k``, means ``μ_k`` and covariances ``Σ_k`` (precisions ``A_k = Σ_k⁻¹``),

    π(x) = Σ_k w_k N(x; μ_k, Σ_k)
    log π(x) = logsumexp_k ℓ_k(x),     ℓ_k(x) = log w_k − ½ log det Σ_k − ½ (x − μ_k)ᵀ A_k (x − μ_k)
    ∇log π(x) = −Σ_k r_k(x) A_k (x − μ_k),     r_k = exp(ℓ_k − log π)   (responsibilities)

dropping the common ``−(d/2) log 2π``. The log-sum-exp subtracts ``max_k ℓ_k`` before
exponentiating, so far from every mode (where each ``ℓ_k`` is hugely negative) the value and
the responsibilities stay finite.

Exact moments (law of total expectation and covariance):

    E[x] = Σ_k w_k μ_k,        Cov[x] = Σ_k w_k (Σ_k + μ_k μ_kᵀ) − E[x] E[x]ᵀ.

Well-separated modes are a test of mixing *between* modes, which local gradient samplers do
poorly: a chain that never leaves its starting mode reports a confident, wrong answer. Look
at the mixture weights recovered across chains, not at one chain's R-hat.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .base import Reference, Target

__all__ = ["gaussian_mixture"]

# The default: three overlapping-but-distinct modes in 2-D with unequal weights and
# correlated, differently shaped components.
_DEFAULT_MEANS = np.array([[-3.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
_DEFAULT_COVS = np.array(
    [
        [[1.0, 0.0], [0.0, 1.0]],
        [[0.5, 0.3], [0.3, 1.0]],
        [[1.5, -0.5], [-0.5, 0.5]],
    ]
)
_DEFAULT_WEIGHTS = np.array([0.5, 0.3, 0.2])


@numba.njit(cache=True)
def _mixture_value_and_grad(x, data):
    """Log density and gradient; ``data = (means (K, d), precisions (K, d, d), log_c (K,))``
    with ``log_c_k = log w_k − ½ log det Σ_k``."""
    means, precisions, log_c = data
    n_comp = means.shape[0]
    dim = x.shape[0]
    ell = np.empty(n_comp)
    # component gradients −A_k (x − μ_k), kept row by row for the weighted sum below
    comp_grads = np.empty((n_comp, dim))
    for k in range(n_comp):
        diff = x - means[k]
        g = -np.dot(precisions[k], diff)
        ell[k] = log_c[k] + 0.5 * np.dot(diff, g)
        for i in range(dim):
            comp_grads[k, i] = g[i]
    top = ell.max()
    total = 0.0
    for k in range(n_comp):
        total += math.exp(ell[k] - top)
    value = top + math.log(total)
    grad = np.zeros(dim)
    for k in range(n_comp):
        r = math.exp(ell[k] - value)
        for i in range(dim):
            grad[i] += r * comp_grads[k, i]
    return value, grad


def _mixture_jax(means: np.ndarray, precisions: np.ndarray, log_c: np.ndarray):
    """The JAX log density; it computes in the dtype of ``x``."""

    def logdensity(x):
        # at trace time: the Numba form never imports JAX
        import jax.numpy as jnp
        from jax.scipy.special import logsumexp

        diff = x - jnp.asarray(means, dtype=x.dtype)  # (K, d)
        quad = jnp.einsum("ki,kij,kj->k", diff, jnp.asarray(precisions, dtype=x.dtype), diff)
        return logsumexp(jnp.asarray(log_c, dtype=x.dtype) - 0.5 * quad)

    return logdensity


def _component_covs(
    covs: np.ndarray | None, sds: np.ndarray | None, n_comp: int, dim: int
) -> np.ndarray:
    """Covariances (K, d, d) from ``covs`` or ``sds`` (identity when neither is given)."""
    if covs is not None and sds is not None:
        raise ValueError("give covs or sds, not both")
    if sds is not None:
        sds = np.asarray(sds, dtype=np.float64)
        if sds.shape == (n_comp,):
            sds = np.repeat(sds[:, None], dim, axis=1)
        if sds.shape != (n_comp, dim):
            raise ValueError(
                f"sds must have shape ({n_comp},) or ({n_comp}, {dim}); got {sds.shape}"
            )
        if not np.all(np.isfinite(sds) & (sds > 0.0)):
            raise ValueError("sds must be positive and finite")
        return np.stack([np.diag(s**2) for s in sds])
    if covs is None:
        return np.repeat(np.eye(dim)[None], n_comp, axis=0)
    covs = np.asarray(covs, dtype=np.float64)
    if covs.shape != (n_comp, dim, dim):
        raise ValueError(f"covs must have shape ({n_comp}, {dim}, {dim}); got {covs.shape}")
    return covs


def gaussian_mixture(
    means: np.ndarray | None = None,
    covs: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    *,
    sds: np.ndarray | None = None,
) -> Target:
    """A mixture ``Σ_k w_k N(μ_k, Σ_k)`` of K Gaussians in d dimensions.

    With no arguments: a 2-D mixture of three components, means (−3, 0), (3, 0), (0, 3),
    covariances ``I``, ``[[0.5, 0.3], [0.3, 1]]``, ``[[1.5, −0.5], [−0.5, 0.5]]`` and weights
    (0.5, 0.3, 0.2).

    Args:
        means: component means, shape ``(K, d)``.
        covs: component covariances, symmetric positive definite, shape ``(K, d, d)``.
        weights: mixture weights, shape ``(K,)``, positive and summing to 1; equal by default.
        sds: instead of ``covs``, component standard deviations: ``(K,)`` for isotropic or
            ``(K, d)`` for diagonal components. With neither, every ``Σ_k = I``.

    Returns:
        A :class:`Target` with names ``{"x": d}``, started at the mean of the heaviest
        component, with the exact mean and covariance as its reference. The components are
        kept as ``target.components = {"weights", "means", "covs"}`` (for exact sampling).

    Raises:
        ValueError: shapes that do not match, a covariance that is not symmetric positive
            definite (``covs``), or weights that are not positive or do not sum to 1.
    """
    if means is None and covs is None and weights is None and sds is None:
        means, covs, weights = _DEFAULT_MEANS, _DEFAULT_COVS, _DEFAULT_WEIGHTS
    if means is None:
        raise ValueError("means must be given when covs, sds or weights are")
    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
        raise ValueError(f"means must be a non-empty 2-D array (K, d); got shape {means.shape}")
    if not np.all(np.isfinite(means)):
        raise ValueError("means must be finite")
    n_comp, dim = means.shape
    covs = _component_covs(covs, sds, n_comp, dim)
    if weights is None:
        weights = np.full(n_comp, 1.0 / n_comp)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n_comp,):
        raise ValueError(f"weights must have shape ({n_comp},); got {weights.shape}")
    if not np.all(np.isfinite(weights) & (weights > 0.0)):
        raise ValueError(f"weights must be positive and finite; got {weights}")
    if abs(weights.sum() - 1.0) > 1e-10:
        raise ValueError(f"weights must sum to 1; they sum to {weights.sum()!r}")

    precisions = np.empty_like(covs)
    log_c = np.empty(n_comp)
    for k in range(n_comp):
        cov = covs[k]
        if not np.all(np.isfinite(cov)) or not np.allclose(cov, cov.T, rtol=1e-10, atol=0.0):
            raise ValueError(f"covs[{k}] must be finite and symmetric")
        try:
            chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise ValueError(f"covs[{k}] must be positive definite (Cholesky failed)") from None
        inv_chol = np.linalg.solve(chol, np.eye(dim))
        precision = inv_chol.T @ inv_chol
        precisions[k] = 0.5 * (precision + precision.T)
        # log det Σ_k = 2 Σ log diag(L)
        log_c[k] = math.log(weights[k]) - np.sum(np.log(np.diag(chol)))

    mean = weights @ means
    second = np.einsum("k,kij->ij", weights, covs + means[:, :, None] * means[:, None, :])
    cov = second - np.outer(mean, mean)
    cov = 0.5 * (cov + cov.T)
    means = np.ascontiguousarray(means)
    precisions = np.ascontiguousarray(precisions)
    target = Target(
        dim=dim,
        names={"x": dim},
        jax={"logdensity": _mixture_jax(means, precisions, log_c)},
        numba={"value_and_grad": _mixture_value_and_grad},
        data=(means, precisions, log_c),
        initial_position=means[np.argmax(weights)].copy(),
        reference=Reference(
            mean=mean,
            cov=cov,
            sd=np.sqrt(np.diag(cov)),
            source="exact: mixture mean and law of total covariance",
        ),
        name=f"gaussian_mixture_{n_comp}x{dim}d",
    )
    target.components = {"weights": weights.copy(), "means": means.copy(), "covs": covs.copy()}
    return target
