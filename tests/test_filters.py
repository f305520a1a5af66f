"""Particle filters: exactness against the Kalman filter, backend agreement, the stochastic
volatility model.

The log-likelihood tests rest on unbiasedness: for any N, ``E[L̂] = L`` exactly (Del Moral
2004, Ch. 7), also with ESS-triggered resampling. So over R independent runs the ratio
``L̂_r / L`` has mean exactly 1, and its sample mean is z-tested with its own standard error
``sd / √R``. (``log L̂`` is biased low by about ``Var(log L̂) / 2``; the ratio avoids that.)
The runs here keep ``Var(log L̂)`` small (≲ 0.1), so the ratio has light enough tails for
the normal approximation.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import f as f_dist
from scipy.stats import multivariate_normal, norm

from langevin import smc
from langevin.smc import filters
from tests.stats_helpers import SUITE_FALSE_ALARM, SUITE_Z_TESTS, Z_CRIT

T = 30
R = 100


@pytest.fixture(scope="module")
def lg():
    return smc.linear_gaussian_example(T=T, seed=3)


@pytest.fixture(scope="module")
def kalman(lg):
    return smc.kalman_filter(lg)


def ratio_z(log_l_hat: np.ndarray, log_l: float) -> float:
    """z of the mean of ``L̂ / L`` against 1."""
    ratio = np.exp(np.asarray(log_l_hat) - log_l)
    return (ratio.mean() - 1.0) / (ratio.std(ddof=1) / np.sqrt(len(ratio)))


def lognormal_z(log_l_hat: np.ndarray, log_l: float) -> float:
    """z of ``mean(log L̂) + s²/2`` against ``log L``.

    ``log L̂`` is asymptotically normal with mean ``log L − σ²/2`` and variance σ² (Bérard,
    Del Moral & Doucet 2014), which is what unbiasedness of ``L̂`` means for a log-normal.
    This check has power in both directions; the ratio test alone has little against an
    estimate that is too *large* and very variable (its sd then explodes with its mean).
    """
    v = np.asarray(log_l_hat)
    return (v.mean() + 0.5 * v.var(ddof=1) - log_l) / (v.std(ddof=1) / np.sqrt(len(v)))


def test_kalman_filter_is_the_joint_gaussian(lg):
    """The Kalman log-likelihood equals the log density of the stacked Gaussian y_{0:T}."""
    model = smc.linear_gaussian_example(T=6, seed=1)
    A, C, Q, R_, P0 = model.A, model.C, model.Q, model.R, model.P0
    n, d = model.n_observations, model.dim
    cov_x = np.zeros((n * d, n * d))
    # Cov(X_s, X_t) = A^{t−s} Var(X_s) for s <= t
    var = [P0]
    for _ in range(1, n):
        var.append(A @ var[-1] @ A.T + Q)
    for s in range(n):
        for t in range(s, n):
            block = np.linalg.matrix_power(A, t - s) @ var[s]
            cov_x[t * d : (t + 1) * d, s * d : (s + 1) * d] = block
            cov_x[s * d : (s + 1) * d, t * d : (t + 1) * d] = block.T
    big_c = np.kron(np.eye(n), C)
    cov_y = big_c @ cov_x @ big_c.T + np.kron(np.eye(n), R_)
    exact = multivariate_normal(np.zeros(n), cov_y).logpdf(model.data.y.ravel())
    assert abs(smc.kalman_filter(model).log_likelihood - exact) < 1e-10


# -- backends ----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["bootstrap", "guided"])
def test_backends_agree(lg, method, x64):
    """The same seed gives the same filter on Numba, JAX and NumPy: same noise, same
    resampling decisions and ancestors, same weights (to rounding)."""
    out = {
        b: smc.particle_filter(lg, 64, method=method, seed=7, backend=b, keep_ancestors=True)
        for b in ("numba", "jax", "numpy")
    }
    ref = out["numba"]
    assert ref.resampled.any()
    for b in ("jax", "numpy"):
        r = out[b]
        np.testing.assert_array_equal(r.resampled, ref.resampled)
        for a, c in zip(r.ancestors, ref.ancestors):
            np.testing.assert_array_equal(a, c)
        np.testing.assert_allclose(r.particles.x, ref.particles.x, rtol=0, atol=1e-12)
        np.testing.assert_allclose(r.log_weights, ref.log_weights, rtol=0, atol=1e-10)
        np.testing.assert_allclose(r.log_evidence_increments, ref.log_evidence_increments,
                                   rtol=0, atol=1e-10)  # fmt: skip
        np.testing.assert_allclose(r.means, ref.means, rtol=0, atol=1e-10)


def test_stochastic_volatility_backends_agree(x64):
    model = smc.stochastic_volatility(T=60, seed=2)
    a = smc.particle_filter(model, 64, seed=3, backend="numba")
    b = smc.particle_filter(model, 64, seed=3, backend="jax")
    np.testing.assert_array_equal(a.resampled, b.resampled)
    np.testing.assert_allclose(a.log_evidence_increments, b.log_evidence_increments,
                               rtol=0, atol=1e-10)  # fmt: skip


# -- exactness against the Kalman filter -------------------------------------------------------
@pytest.fixture(scope="module")
def repeats(lg):
    """R independent runs of each filter (N = 400: Var log L̂ ≈ 0.1)."""
    out = {}
    for method in ("bootstrap", "guided"):
        out[method] = [smc.particle_filter(lg, 400, method=method, seed=1000 + r) for r in range(R)]
    return out


@pytest.mark.parametrize("method", ["bootstrap", "guided"])
def test_log_likelihood_is_unbiased(method, repeats, kalman):
    """mean of L̂/L over R runs is 1 within its standard error (z-test)."""
    log_l = np.array([r.log_likelihood for r in repeats[method]])
    assert abs(ratio_z(log_l, kalman.log_likelihood)) < Z_CRIT, (method, log_l.mean())
    assert abs(lognormal_z(log_l, kalman.log_likelihood)) < Z_CRIT, (method, log_l.mean())
    assert log_l.std() < 0.4  # the regime where the log-normal approximation is good


def test_guided_filter_has_lower_variance():
    """With informative observations (R = 0.05 ≪ Q) the locally optimal proposal makes
    log L̂ far less variable than the bootstrap filter's: an F-test on the variances."""
    model = smc.linear_gaussian_example(T=15, seed=8, state_var=0.5, obs_var=0.05)
    k = 40
    boot = [smc.particle_filter(model, 100, seed=r).log_likelihood for r in range(k)]
    guided = [smc.particle_filter(model, 100, method="guided", seed=r).log_likelihood
              for r in range(k)]  # fmt: skip
    ratio = np.var(boot, ddof=1) / np.var(guided, ddof=1)
    assert ratio > f_dist.isf(SUITE_FALSE_ALARM / SUITE_Z_TESTS, k - 1, k - 1), ratio


def test_filtering_means_match_kalman(lg, kalman):
    """E[X_t | y_{0:t}] from the filter vs Kalman, every t and coordinate: max-|z| over
    them with a Bonferroni level. N = 1000 keeps the O(1/N) bias of the self-normalised
    means well below the standard error of their average over runs."""
    runs = [smc.particle_filter(lg, 1000, seed=500 + r) for r in range(30)]
    means = np.stack([r.means for r in runs])  # (runs, T+1, d)
    se = means.std(axis=0, ddof=1) / np.sqrt(len(runs))
    z = (means.mean(axis=0) - kalman.means) / se
    k = z.size
    z_crit = float(norm.isf(SUITE_FALSE_ALARM / SUITE_Z_TESTS / (2 * k)))
    assert np.max(np.abs(z)) < z_crit, np.round(z, 2)


def test_resampling_follows_the_ess(lg):
    res = smc.particle_filter(lg, 200, seed=5, ess_threshold=0.5, keep_ancestors=True)
    # step t resamples iff the ESS after step t − 1 was below N / 2
    np.testing.assert_array_equal(res.resampled[1:], res.ess[:-1] < 0.5 * 200)
    assert res.resampled.any() and not res.resampled.all()
    never = smc.particle_filter(lg, 200, seed=5, ess_threshold=0.0)
    assert not never.resampled.any()
    always = smc.particle_filter(lg, 200, seed=5, ess_threshold=1.0)
    assert always.resampled[1:].all()


# -- stochastic volatility ---------------------------------------------------------------------
def test_stochastic_volatility_simulation_is_reproducible():
    a = smc.stochastic_volatility(T=200, seed=4)
    b = smc.stochastic_volatility(T=200, seed=4)
    np.testing.assert_array_equal(a.data.y, b.data.y)
    x = a.true_states
    # the simulated log-volatility is the stationary AR(1): mean μ, variance σ²/(1 − φ²)
    sd = a.sigma / np.sqrt(1 - a.phi**2)
    assert abs(x.mean() - a.mu) < 4 * sd * np.sqrt((1 + a.phi) / (1 - a.phi) / len(x))
    assert smc.stochastic_volatility(y=a.data.y).n_observations == 201


def test_stochastic_volatility_likelihood_consistent_across_n():
    """Both N = 50 and N = 2000 give unbiased L̂ of the same L: the means of L̂ agree within
    their combined standard error (a consistency check; there is no closed form)."""
    model = smc.stochastic_volatility(T=100, seed=6)
    small = np.array([smc.particle_filter(model, 50, seed=r).log_likelihood for r in range(200)])
    big = np.array([smc.particle_filter(model, 2000, seed=900 + r).log_likelihood
                    for r in range(10)])  # fmt: skip
    shift = big.mean()
    a, b = np.exp(small - shift), np.exp(big - shift)
    z = (a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert abs(z) < Z_CRIT
    assert big.std() < 0.5


# -- input -------------------------------------------------------------------------------------
def test_bad_input(lg):
    with pytest.raises(TypeError, match="StateSpaceModel"):
        smc.particle_filter("model", 10)
    with pytest.raises(ValueError, match="method"):
        smc.particle_filter(lg, 10, method="auxiliary")
    with pytest.raises(ValueError, match="n_particles"):
        smc.particle_filter(lg, 0)
    with pytest.raises(ValueError, match="backend"):
        smc.particle_filter(lg, 10, backend="torch")
    with pytest.raises(ValueError, match="scheme"):
        smc.particle_filter(lg, 10, scheme="bogus")
    with pytest.raises(ValueError, match="ess_threshold"):
        smc.particle_filter(lg, 10, ess_threshold=1.5)
    with pytest.raises(ValueError, match="no proposal"):
        smc.particle_filter(smc.stochastic_volatility(T=5), 10, method="guided")
    with pytest.raises(ValueError, match="phi"):
        smc.stochastic_volatility(phi=1.0)
    with pytest.raises(ValueError, match="positive definite"):
        smc.linear_gaussian(np.eye(1), np.eye(1), -np.eye(1), np.eye(1), [0.0], np.eye(1),
                            np.zeros((3, 1)))  # fmt: skip
    with pytest.raises(ValueError, match="y must have shape"):
        smc.linear_gaussian(np.eye(1), np.eye(1), np.eye(1), np.eye(1), [0.0], np.eye(1),
                            np.zeros((3, 2)))  # fmt: skip


def test_all_zero_weights_is_an_error():
    """Observations the model cannot produce (an infinite return) would give every particle
    weight zero: a clear error, not NaNs."""
    model = smc.stochastic_volatility(T=10, seed=0)
    y = model.data.y.copy()
    y[4] = 1e300
    bad = filters.StochasticVolatility(model.mu, model.phi, model.sigma, y)
    with pytest.raises(RuntimeError, match="weight zero"):
        smc.particle_filter(bad, 20, seed=0)
