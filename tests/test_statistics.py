"""Statistical correctness of ULA and MALA against exact laws (z-tests on MCSE).

Each backend is checked against the other bit for bit in ``test_conformance.py``, so the
statistical tests here run on the Numba backend only (it is the faster one on the CPU).
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

import langevin
from langevin.backends import numba_backend
from langevin.kernels.overdamped import MALANoise
from tests.conftest import correlated_gaussian
from tests.stats_helpers import assert_z_ok, moment_z_scores, z_score


def ula_stationary_cov(precision: np.ndarray, h: float) -> np.ndarray:
    """Exact stationary covariance of ULA on N(m, A⁻¹): (A − (h/2)A²)⁻¹ (ALGORITHMS.md §1)."""
    return np.linalg.inv(precision - 0.5 * h * precision @ precision)


@numba.njit(cache=True)
def _normal_1d_vg(x, data):
    (variance,) = data
    return -0.5 * x[0] * x[0] / variance, -x / variance


def normal_1d(variance: float):
    import jax.numpy as jnp

    return langevin.Target(
        dim=1,
        jax={"logdensity": lambda x: -0.5 * jnp.sum(x * x) / variance},
        numba={"value_and_grad": _normal_1d_vg},
        data=(float(variance),),
        name="normal_1d",
    )


@numba.njit(cache=True)
def _quartic_vg(x):
    # U(x) = Σ x⁴/4 + x²/2: smooth, non-Gaussian, strongly log-concave
    return -np.sum(0.25 * x**4 + 0.5 * x**2), -(x**3) - x


# -- ULA: the exact biased law ---------------------------------------------------------------
def check_ula_variance_1d(h: float, seed: int) -> None:
    sigma2 = 1.0
    target = normal_1d(sigma2)
    trace = langevin.sample(target, langevin.ULA(h), chains=8, warmup=200, draws=40_000,
                            seed=seed, progress=False, initial_position=np.zeros(1))  # fmt: skip
    x = trace.draws[..., 0]
    biased = sigma2 / (1.0 - h / (2.0 * sigma2))
    assert_z_ok({"E[x^2]": z_score(x**2, biased)})
    # ...and the test has power: the unbiased variance σ² is rejected.
    assert abs(z_score(x**2, sigma2)) > 10


@pytest.mark.parametrize("h", [0.2, 0.5])
def test_ula_stationary_variance_1d(h):
    check_ula_variance_1d(h, seed=11)


def test_ula_stationary_covariance_correlated():
    target, mean, cov = correlated_gaussian(4, seed=0)
    precision = np.linalg.inv(cov)
    h = 0.08  # h·λ_max = 0.8 < 2
    trace = langevin.sample(target, langevin.ULA(h), chains=8, warmup=500, draws=30_000,
                            seed=12, progress=False, initial_position=mean)  # fmt: skip
    biased = ula_stationary_cov(precision, h)
    assert_z_ok(moment_z_scores(trace.draws, mean, biased))
    exact = moment_z_scores(trace.draws, mean, cov)
    assert max(abs(v) for v in exact.values()) > 10, "the bias of ULA must be detectable"


def test_ula_one_step_is_euler_maruyama(gaussian4):
    """ULA's step is x + h∇log π(x) + √(2h) ξ exactly, for given ξ."""
    target, mean, cov = gaussian4
    precision = np.linalg.inv(cov)
    kernel = langevin.ULA(0.1)
    prepared = numba_backend.prepare(kernel, target, 4, np.float64)
    x0 = np.random.default_rng(0).standard_normal((2, 4))
    states = numba_backend.init(prepared, x0)
    xi = np.random.default_rng(1).standard_normal((2, 1, 4))
    noise = kernel.Noise(xi)
    out = numba_backend.run(prepared, states, 1, np.full(2, 0.1), noise=noise)
    expected = x0 - 0.1 * (x0 - mean) @ precision.T + np.sqrt(0.2) * xi[:, 0]
    np.testing.assert_allclose(out.position[:, 0], expected, rtol=1e-13, atol=1e-13)


# -- MALA: exact invariance ----------------------------------------------------------------
def check_mala_gaussian(dim: int, target_seed: int, seed: int) -> None:
    target, mean, cov = correlated_gaussian(dim, seed=target_seed)
    trace = langevin.sample(target, langevin.MALA(0.1), chains=4, warmup=1000, draws=20_000,
                            seed=seed, progress=False)  # fmt: skip
    assert trace.diverged == {}
    assert 0.45 < trace.sample_stats["acceptance_rate"].mean() < 0.7
    assert_z_ok(moment_z_scores(trace.draws, mean, cov))


@pytest.mark.parametrize("dim,seed", [(4, 0), (2, 3)])
def test_mala_moments_correlated_gaussian(dim, seed):
    check_mala_gaussian(dim, seed, seed=21 + seed)


def test_mala_detects_wrong_target_variance():
    """Power check: the same z-test rejects a covariance 10% off."""
    target, mean, cov = correlated_gaussian(4, seed=0)
    trace = langevin.sample(target, langevin.MALA(0.1), chains=4, warmup=1000, draws=20_000,
                            seed=21, progress=False)  # fmt: skip
    zs = moment_z_scores(trace.draws, mean, 1.1 * cov)
    assert max(abs(v) for v in zs.values()) > 4.56


def test_mala_detailed_balance_identity():
    """π(x) q(y|x) α(x,y) = π(y) q(x|y) α(y,x) on a non-Gaussian target, pair by pair.

    The forward move uses noise ξ (y = x + h∇log π(x) + √(2h)ξ); the reverse move from y uses
    the ξ' that proposes x. log q(y|x) = −‖ξ‖²/2 + const on both sides.
    """
    dim, h, n = 3, 0.4, 50
    target = langevin.Target.from_numba(value_and_grad=_quartic_vg, dim=dim)
    kernel = langevin.MALA(h)
    prepared = numba_backend.prepare(kernel, target, dim, np.float64)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, dim))
    xi = rng.standard_normal((n, dim))
    never = np.ones((1,))  # u = 1: log u = 0 rejects nothing that matters; we read α only

    def alpha_and_proposal(points, normals):
        states = numba_backend.init(prepared, points)
        noise = MALANoise(normals[:, None, :], np.full((len(points), 1), never))
        out = numba_backend.run(prepared, states, 1, np.full(len(points), h), noise=noise)
        grads = np.asarray(states.grad)
        lps = np.asarray(states.logdensity)
        proposals = points + h * grads + np.sqrt(2 * h) * normals
        return out.info["acceptance_rate"][:, 0], proposals, lps, grads

    a_xy, y, lp_x, _ = alpha_and_proposal(x, xi)
    states_y = numba_backend.init(prepared, y)
    grad_y = np.asarray(states_y.grad)
    xi_back = (x - y - h * grad_y) / np.sqrt(2 * h)
    a_yx, x_back, lp_y, _ = alpha_and_proposal(y, xi_back)
    np.testing.assert_allclose(x_back, x, atol=1e-12)
    ok = (a_xy > 1e-200) & (a_yx > 1e-200)  # pairs where both logs are representable
    assert ok.mean() > 0.8
    lhs = lp_x - 0.5 * np.sum(xi**2, axis=1) + np.log(a_xy, where=ok, out=np.zeros(n))
    rhs = lp_y - 0.5 * np.sum(xi_back**2, axis=1) + np.log(a_yx, where=ok, out=np.zeros(n))
    assert np.mean((a_xy > 0.05) & (a_xy < 0.95)) > 0.2  # the identity is not trivially 1 = 1
    np.testing.assert_allclose(lhs[ok], rhs[ok], rtol=0, atol=1e-9)


def test_mala_rejection_rate_order():
    """1 − E[α] = O(h^{3/2}) on a smooth target (ALGORITHMS.md §1): slope of log-log fit."""
    target = langevin.Target.from_numba(value_and_grad=_quartic_vg, dim=1)
    hs = np.array([0.04, 0.02, 0.01, 0.005])
    rejection = []
    for h in hs:
        trace = langevin.sample(target, langevin.MALA(float(h)), chains=4, warmup=0,
                                draws=50_000, seed=3, progress=False,
                                initial_position=np.zeros(1))  # fmt: skip
        rejection.append(1.0 - trace.sample_stats["acceptance_rate"].mean())
    slope = np.polyfit(np.log(hs), np.log(rejection), 1)[0]
    # Reference values (ALGORITHMS.md, checked numerically): 0.00783, 0.00283, 0.00101,
    # 0.00036 — slope 1.48. The Monte Carlo error of each rate is < 3% here.
    np.testing.assert_allclose(rejection, [0.00783, 0.00283, 0.00101, 0.00036], rtol=0.12)
    assert 1.35 < slope < 1.65
