"""Shared fixtures. Tests may enable float64 in JAX; the package itself never does."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import langevin

jax.config.update("jax_enable_x64", True)


def correlated_gaussian(dim: int = 4, seed: int = 0):
    """The built-in N(m, Σ) with a random SPD Σ (eigenvalues 1 … 0.1) and a random mean.

    Returns ``(target, m, Σ)``; the target carries both backend forms.
    """
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    cov = q @ np.diag(np.geomspace(1.0, 0.1, dim)) @ q.T
    cov = 0.5 * (cov + cov.T)
    mean = rng.standard_normal(dim)
    return langevin.targets.gaussian(dim, mean=mean, cov=cov), mean, cov


@pytest.fixture(scope="session")
def gaussian4():
    return correlated_gaussian(4, seed=0)
