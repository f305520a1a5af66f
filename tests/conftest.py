"""Shared fixtures.

JAX runs in its default precision (float32) unless the environment sets ``JAX_ENABLE_X64``:
the README's test command runs the suite both ways, as users run it. A test that needs
float64 on JAX (1e-12 agreement with Numba) asks for the ``x64`` fixture, which switches it
on for that test only; no test may leave the flag changed (``_restore_jax_x64``).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import langevin

if not hasattr(jax, "enable_x64"):  # JAX < 0.8 (the lowest-versions CI job): the same
    from jax.experimental import enable_x64 as _enable_x64  # context manager, older home

    jax.enable_x64 = _enable_x64


@pytest.fixture(autouse=True)
def _restore_jax_x64():
    """Whatever a test (or a benchmark's ``main`` run in-process) does to JAX's x64 flag is
    undone after it, so the rest of the suite runs in the precision the run was started in."""
    before = jax.config.jax_enable_x64
    yield
    if jax.config.jax_enable_x64 != before:
        jax.config.update("jax_enable_x64", before)


@pytest.fixture
def x64():
    """Float64 JAX for one test (for 1e-12 comparisons with the float64 Numba backend)."""
    with jax.enable_x64(True):
        yield


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
