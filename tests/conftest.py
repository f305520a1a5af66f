"""Shared fixtures. Tests may enable float64 in JAX; the package itself never does."""

from __future__ import annotations

import jax
import numba
import numpy as np
import pytest

import langevin

jax.config.update("jax_enable_x64", True)


@numba.njit(cache=True)
def _gaussian_vg(x, data):
    precision, mean = data
    r = x - mean
    g = -np.dot(precision, r)
    return 0.5 * np.dot(r, g), g


def correlated_gaussian(dim: int = 4, seed: int = 0):
    """N(m, Σ) with a random SPD Σ (condition number ~10), in both backend forms."""
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    cov = q @ np.diag(np.geomspace(1.0, 0.1, dim)) @ q.T
    cov = 0.5 * (cov + cov.T)
    precision = np.ascontiguousarray(np.linalg.inv(cov))
    mean = rng.standard_normal(dim)

    def logdensity(x):
        r = x - jnp.asarray(mean, x.dtype)
        return -0.5 * r @ (jnp.asarray(precision, x.dtype) @ r)

    target = langevin.Target(
        dim=dim,
        jax_logdensity=logdensity,
        numba_value_and_grad=_gaussian_vg,
        numba_data=(precision, mean),
        reference=langevin.Reference(mean=mean, cov=cov, source="exact"),
        name="correlated_gaussian",
    )
    return target, mean, cov


@pytest.fixture(scope="session")
def gaussian4():
    return correlated_gaussian(4, seed=0)
