"""Gaussian targets: the one law where every quantity of interest is known exactly.

For ``N(m, Σ)`` with precision ``A = Σ⁻¹`` the log density and its gradient are, up to a
constant,

    log π(x) = −½ (x − m)ᵀ A (x − m),        ∇log π(x) = −A (x − m).

Both forms store the precision ``A`` (computed once from ``Σ`` by a Cholesky solve), so a
step costs one matrix-vector product and no triangular solve. The reference is exact:
``Reference(mean=m, cov=Σ)``.

:func:`ill_conditioned_gaussian` is the standard stress test for step-size and
preconditioner adaptation: the covariance eigenvalues are log-spaced over
``[1/condition_number, 1]``, so an isotropic sampler must take steps of order
``1/√condition_number`` and needs ``~condition_number`` steps to cross the widest direction.
"""

from __future__ import annotations

import numba
import numpy as np

from .base import Reference, Target

__all__ = ["gaussian", "ill_conditioned_gaussian"]


@numba.njit(cache=True)
def _gaussian_value_and_grad(x, data):
    """``−½ (x − m)ᵀ A (x − m)`` and ``−A (x − m)`` with ``data = (m, A)``."""
    mean, precision = data
    diff = x - mean
    grad = -np.dot(precision, diff)
    return 0.5 * np.dot(diff, grad), grad


def _gaussian_jax(mean: np.ndarray, precision: np.ndarray):
    """The JAX log density closing over ``(m, A)``; it computes in the dtype of ``x``."""

    def logdensity(x):
        # imported when traced, so that building a target and using its Numba form never
        # imports JAX
        import jax.numpy as jnp

        diff = x - jnp.asarray(mean, dtype=x.dtype)
        return -0.5 * jnp.dot(diff, jnp.asarray(precision, dtype=x.dtype) @ diff)

    return logdensity


def _check_dim(dim: int) -> int:
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 1:
        raise ValueError(f"dim must be an int >= 1; got {dim!r}")
    return int(dim)


def _precision_from_cov(cov: np.ndarray, argname: str = "cov") -> np.ndarray:
    """``Σ⁻¹`` for a symmetric positive-definite ``Σ``, or a ValueError naming ``argname``."""
    if not np.all(np.isfinite(cov)):
        raise ValueError(f"{argname} must be finite")
    if not np.allclose(cov, cov.T, rtol=1e-10, atol=1e-12 * np.abs(cov).max()):
        raise ValueError(f"{argname} must be symmetric")
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"{argname} must be positive definite (its Cholesky factorisation failed)"
        ) from None
    # A = L⁻ᵀ L⁻¹, from the triangular factor rather than a general inverse
    inv_chol = np.linalg.solve(chol, np.eye(cov.shape[0]))
    precision = inv_chol.T @ inv_chol
    return np.ascontiguousarray(0.5 * (precision + precision.T))


def _make(
    mean: np.ndarray, cov: np.ndarray, precision: np.ndarray, name: str, source: str
) -> Target:
    mean = np.ascontiguousarray(mean, dtype=np.float64)
    cov = np.ascontiguousarray(cov, dtype=np.float64)
    return Target(
        dim=mean.shape[0],
        names={"x": mean.shape[0]},
        jax={"logdensity": _gaussian_jax(mean, precision)},
        numba={"value_and_grad": _gaussian_value_and_grad},
        data=(mean, precision),
        initial_position=mean.copy(),
        reference=Reference(mean=mean, cov=cov, sd=np.sqrt(np.diag(cov)), source=source),
        name=name,
    )


def gaussian(dim: int, mean: np.ndarray | None = None, cov: np.ndarray | None = None) -> Target:
    """The Gaussian ``N(mean, cov)`` in ``dim`` dimensions; ``N(0, I)`` by default.

    ``log π(x) = −½ (x − m)ᵀ Σ⁻¹ (x − m)`` (constant dropped), gradient ``−Σ⁻¹ (x − m)``.

    Args:
        dim: dimension, an int >= 1.
        mean: the mean ``m``, shape ``(dim,)``; zeros by default.
        cov: the covariance ``Σ``, a symmetric positive-definite ``(dim, dim)`` array, or a
            ``(dim,)`` array of variances for a diagonal ``Σ``; the identity by default.

    Returns:
        A :class:`Target` with names ``{"x": dim}``, started at the mean, with the exact
        reference ``Reference(mean=m, cov=Σ, sd=√diag Σ)``.

    Raises:
        ValueError: ``dim`` < 1, a mean or covariance of the wrong shape, or a covariance
            that is not symmetric positive definite.

    Example:
        >>> target = gaussian(3, mean=[1.0, 0.0, -1.0], cov=[1.0, 2.0, 0.5])
    """
    dim = _check_dim(dim)
    if mean is None:
        mean = np.zeros(dim)
    mean = np.asarray(mean, dtype=np.float64)
    if mean.shape != (dim,):
        raise ValueError(f"mean must have shape ({dim},); got {mean.shape}")
    if not np.all(np.isfinite(mean)):
        raise ValueError("mean must be finite")
    if cov is None:
        cov = np.eye(dim)
    cov = np.asarray(cov, dtype=np.float64)
    if cov.shape == (dim,):
        if not np.all(cov > 0.0) or not np.all(np.isfinite(cov)):
            raise ValueError("cov given as variances must be positive and finite")
        cov = np.diag(cov)
    if cov.shape != (dim, dim):
        raise ValueError(f"cov must have shape ({dim}, {dim}) or ({dim},); got {cov.shape}")
    precision = _precision_from_cov(cov)
    return _make(mean, cov, precision, f"gaussian_{dim}d", "exact: the Gaussian law itself")


def ill_conditioned_gaussian(
    dim: int, condition_number: float = 100.0, rotate: bool = True, seed: int = 0
) -> Target:
    """A centred Gaussian whose covariance has condition number ``condition_number``.

    The covariance eigenvalues are ``λ_i = condition_number^{−i/(dim−1)}``, i = 0..dim−1:
    log-spaced from 1 down to ``1/condition_number`` (``λ = 1`` when ``dim = 1``). With
    ``rotate`` the eigenvectors are the columns of a Haar-random orthogonal matrix ``Q``
    (QR of a Gaussian matrix drawn with ``numpy.random.default_rng(seed)``, signs fixed so
    that ``R`` has a positive diagonal), so that no coordinate axis is special and a
    diagonal preconditioner cannot undo the conditioning: ``Σ = Q diag(λ) Qᵀ``,
    ``A = Q diag(1/λ) Qᵀ``. Without ``rotate``, ``Σ = diag(λ)``.

    Args:
        dim: dimension, an int >= 1.
        condition_number: ratio of the largest to the smallest covariance eigenvalue, >= 1.
        rotate: rotate the eigenbasis randomly.
        seed: seed of the rotation.

    Returns:
        A :class:`Target` with names ``{"x": dim}``, started at 0, with the exact reference
        ``Reference(mean=0, cov=Σ)``.
    """
    dim = _check_dim(dim)
    condition_number = float(condition_number)
    if not (np.isfinite(condition_number) and condition_number >= 1.0):
        raise ValueError(f"condition_number must be a finite number >= 1; got {condition_number}")
    eigenvalues = np.geomspace(1.0, 1.0 / condition_number, dim)
    if rotate:
        q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
        q = q * np.sign(np.diag(r))
    else:
        q = np.eye(dim)
    cov = (q * eigenvalues) @ q.T
    precision = (q / eigenvalues) @ q.T
    cov = 0.5 * (cov + cov.T)
    precision = np.ascontiguousarray(0.5 * (precision + precision.T))
    return _make(
        np.zeros(dim),
        cov,
        precision,
        f"ill_conditioned_gaussian_{dim}d_k{condition_number:g}",
        "exact: the Gaussian law itself",
    )
