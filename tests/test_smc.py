"""The generic SMC loop and tempering SMC samplers.

Evidence tests use the unbiasedness of ``Ẑ`` (Del Moral 2004, Ch. 7): over R
independent runs the ratio ``Ẑ_r / Z`` has mean exactly 1 for a fixed schedule, so its
sample mean is z-tested with its own standard error. (The mean of ``log Ẑ`` is biased low by
about ``Var(log Ẑ)/2``; the ratio has no such bias.) With the adaptive schedule the
exponents depend on the particles, which adds an O(1/N) bias; at the N used here it is far
below the Monte Carlo error (the same test passes, and a slow test checks it over seeds).
Posterior moments are z-tested against exact (Gaussian) or quadrature (2-D logistic)
values, with standard errors from the spread over independent runs.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numba
import numpy as np
import pytest
from scipy import integrate

import langevin
from langevin import smc
from langevin.backends import jax_backend, numba_backend
from langevin.kernels.base import Normal
from langevin.smc import GaussianReference, TemperedTarget, tempered_smc
from tests.stats_helpers import Z_CRIT


def ratio_z(log_z_hat, log_z: float) -> float:
    ratio = np.exp(np.asarray(log_z_hat) - log_z)
    return (ratio.mean() - 1.0) / (ratio.std(ddof=1) / np.sqrt(len(ratio)))


def lognormal_z(log_z_hat, log_z: float) -> float:
    """z of ``mean(log Ẑ) + s²/2`` against ``log Z`` (log Ẑ is asymptotically normal with
    mean ``log Z − σ²/2``; this has power against estimates that are too large, where the
    ratio test has little). See tests/test_filters.py."""
    v = np.asarray(log_z_hat)
    return (v.mean() + 0.5 * v.var(ddof=1) - log_z) / (v.std(ddof=1) / np.sqrt(len(v)))


def evidence_ok(log_z_hat, log_z: float) -> bool:
    return abs(ratio_z(log_z_hat, log_z)) < Z_CRIT and abs(lognormal_z(log_z_hat, log_z)) < Z_CRIT


def runs_z(per_run: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """z of the mean over runs (axis 0) against ``truth``, SE from the runs' spread."""
    se = per_run.std(axis=0, ddof=1) / np.sqrt(per_run.shape[0])
    return (per_run.mean(axis=0) - truth) / se


@pytest.fixture(scope="module")
def gauss():
    return smc.gaussian_model(np.zeros(3), [1.0, 2.0, 0.5], [1.0, 2.0, -1.0], [0.3, 0.5, 0.2])


def run(model, **kw):
    kw.setdefault("n_particles", 300)
    kw.setdefault("n_steps", 5)
    kw.setdefault("progress", False)
    kw.setdefault("seed", 0)
    return tempered_smc(model, kw.pop("kernel", langevin.MALA(0.5)), **kw)


# -- the generic loop on a user-written model --------------------------------------------------
class _X(NamedTuple):
    x: np.ndarray


class _Noise(NamedTuple):
    normal: object


class AR1(smc.FeynmanKac):
    """A user-written Feynman–Kac model in plain NumPy: X_0 ~ N(0, 1), X_t = 0.5 X_{t−1} + ε,
    G_t = N(y_t; X_t, 1). Its normalising constant is a Gaussian likelihood (Kalman)."""

    backend = "numpy"

    def __init__(self, y):
        self.y = y
        self.T = len(y) - 1

    def particle_noise(self, t):
        return _Noise(Normal(()))

    def M0(self, n, noise):
        return _X(noise.normal)

    def M(self, t, particles, log_weights, noise):
        return _X(0.5 * particles.x + noise.normal)

    def logG(self, t, previous, particles, log_weights):
        return -0.5 * (self.y[t] - particles.x) ** 2 - 0.5 * math.log(2 * math.pi)


def test_user_defined_model_runs_through_the_generic_loop():
    y = np.array([0.3, -1.0, 2.0, 0.5])
    lg = smc.linear_gaussian([[0.5]], [[1.0]], [[1.0]], [[1.0]], [0.0], [[1.0]], y[:, None])
    exact = smc.kalman_filter(lg).log_likelihood
    log_z = [smc.smc(AR1(y), 50, seed=r).log_evidence for r in range(300)]
    assert evidence_ok(log_z, exact)
    res = smc.smc(AR1(y), 50, seed=1, keep_ancestors=True, collect_means=True)
    assert res.means.shape == (4, 1) and len(res.ancestors) == 3
    with pytest.raises(TypeError, match="FeynmanKac"):
        smc.smc(object(), 10)


# -- agreement across backends -----------------------------------------------------------------
@pytest.mark.parametrize("variant", ["adaptive", "fixed"])
def test_tempering_agrees_across_backends(gauss, variant, x64):
    """The full SMC loop (population step, mutation, adaptive exponents, evidence) gives the
    same run on Numba and JAX for the same seed."""
    kw = {
        "adaptive": {},
        "fixed": {"schedule": np.linspace(0, 1, 6), "resample_threshold": 0.5},
    }[variant]
    nb = run(gauss, n_particles=64, seed=3, backend="numba", **kw)
    jx = run(gauss, n_particles=64, seed=3, backend="jax", **kw)
    assert nb.n_stages.tolist() == jx.n_stages.tolist()
    for name in nb.stages:
        np.testing.assert_allclose(nb.stages[name], jx.stages[name], rtol=1e-9, atol=1e-10,
                                   equal_nan=True, err_msg=name)  # fmt: skip
    np.testing.assert_allclose(nb.particles, jx.particles, rtol=0, atol=1e-9)
    np.testing.assert_allclose(nb.draws, jx.draws, rtol=0, atol=1e-9)
    assert abs(nb.log_evidence - jx.log_evidence) < 1e-9
    if variant == "fixed":
        assert 0 < np.nansum(nb.stages["resampled"]) < nb.n_stages[0]


def test_float32_is_kept_on_jax(gauss):
    tr = run(gauss, n_particles=64, backend="jax", dtype=np.float32)
    assert tr.draws.dtype == np.float32 and np.all(np.isfinite(tr.draws))
    assert abs(tr.log_evidence - gauss.log_evidence) < 1.0


# -- evidence ----------------------------------------------------------------------------------
def test_log_evidence_fixed_schedule_is_unbiased(gauss):
    tr = run(gauss, schedule=np.linspace(0, 1, 11), repeats=60, seed=10)
    assert evidence_ok(tr.log_evidence_runs, gauss.log_evidence)
    # power: the estimate is sharp enough that a wrong Z by 5% would be rejected
    assert abs(ratio_z(tr.log_evidence_runs, gauss.log_evidence + math.log(1.05))) > Z_CRIT
    assert np.all(tr.stages["beta"][:, :10] == np.linspace(0, 1, 11)[1:])


def test_log_evidence_adaptive(gauss):
    tr = run(gauss, repeats=60, seed=11)
    assert evidence_ok(tr.log_evidence_runs, gauss.log_evidence)
    # the variance estimate from the repeats matches the spread of log Ẑ_r / R
    spread = np.var(tr.log_evidence_runs, ddof=1) / 60
    assert 0.5 < tr.log_evidence_var / spread < 2.0
    # every stage reweights with conditional ESS target_ess·N (up to bisection precision),
    # the last one with at least that
    assert np.all(tr.stages["ess"][:, :-1][np.isfinite(tr.stages["ess"][:, :-1])] > 0.499 * 300)


def test_log_evidence_from_gaussian_reference(gauss):
    ref = GaussianReference(gauss.posterior_mean + 0.3, 3 * gauss.posterior_cov)
    tr = run(gauss, reference=ref, repeats=60, seed=12)
    assert evidence_ok(tr.log_evidence_runs, gauss.log_evidence)
    assert tr.n_stages.max() >= 2


def test_log_evidence_adaptive_cess_rule(gauss):
    """The previous default schedule (CESS of the moved particles only) stays unbiased, and
    every stage keeps its ESS at the target."""
    tr = run(gauss, repeats=60, seed=14, exponent_rule="cess")
    assert evidence_ok(tr.log_evidence_runs, gauss.log_evidence)
    assert np.all(tr.stages["ess"][:, :-1][np.isfinite(tr.stages["ess"][:, :-1])] > 0.499 * 300)


class _Ell(NamedTuple):
    ell: np.ndarray


@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_lookback_rule_takes_the_smaller_step(gauss, backend):
    """``exponent_rule="lookback"``: δ is the smaller of the CESS steps of the moved population
    and of the population the previous exponent was chosen from; ``"cess"`` ignores the
    latter. A wide previous population (ℓ ~ N(0, 10²)) then a narrow one (N(0, 1)): the
    lookback step is the wide one's, and both keep the moved particles' CESS ≥ target."""
    from langevin.smc import exponent
    from langevin.smc._compile import twin
    from langevin.smc.tempered_target import tempered_form
    from langevin.smc.tempering import _TemperingFK

    next_increment = twin(exponent.next_increment, "numpy")
    log_cess_fraction = twin(exponent._log_cess_fraction, "numpy")
    rng = np.random.default_rng(3)
    n, target = 500, 0.5
    wide, narrow = 10.0 * rng.standard_normal(n), rng.standard_normal(n)
    zeros = np.zeros(n)
    dtype = np.dtype(np.float64) if backend == "numba" else jax_backend.default_float()
    form = tempered_form(gauss, None, backend, dtype)
    steps = {}
    for rule in ("lookback", "cess"):
        fk = _TemperingFK(gauss, langevin.MALA(0.5), form, backend=backend, n_steps=1,
                          schedule=None, target_ess=target, adapt_step_size=True,
                          reference=None, dtype=dtype, rng=rng,
                          exponent_rule=rule)  # fmt: skip
        fk.logG(0, None, _Ell(wide), zeros)
        beta1 = fk.beta
        fk.logG(1, None, _Ell(narrow), zeros)
        steps[rule] = fk.beta - beta1
    from_wide = next_increment(zeros, wide, beta1, target)
    from_narrow = next_increment(zeros, narrow, beta1, target)
    assert from_wide < 0.5 * from_narrow  # the two rules differ here
    assert steps["lookback"] == pytest.approx(from_wide, rel=1e-12)
    assert steps["cess"] == pytest.approx(from_narrow, rel=1e-12)
    for delta in steps.values():  # the moved particles' CESS is at least the target
        assert log_cess_fraction(zeros, narrow, delta, math.log(n)) >= math.log(target) - 1e-12


def test_model_densities_match_direct_formulas():
    """The Numba forms of :func:`logistic_regression_model`'s likelihood (one logarithm per
    ~900 rows) and of a diagonal :func:`normal_target` against direct NumPy/SciPy sums: far
    tails (|η| up to ~700), and 3000 rows at η ≈ 0, whose product of ``1 + e^{−|η|}`` = 2³⁰⁰⁰
    must be flushed before it overflows."""
    from scipy import special, stats

    rng = np.random.default_rng(4)
    for n, scale in ((7, 100.0), (500, 3.0), (3000, 1e-9)):
        X = rng.standard_normal((n, 4))
        y = (rng.random(n) < 0.5).astype(float)
        lik = smc.logistic_regression_model(X, y).likelihood
        for beta in (scale * rng.standard_normal(4), np.zeros(4)):
            value, grad = lik.numba_value_and_grad(beta, lik.numba_data)
            eta = X @ beta
            direct = np.sum(y * eta - np.logaddexp(0.0, eta))
            assert value == pytest.approx(direct, rel=1e-13, abs=1e-12)
            np.testing.assert_allclose(grad, X.T @ (y - special.expit(eta)), rtol=1e-12,
                                       atol=1e-12)  # fmt: skip
    var = np.array([0.5, 2.0, 1.5])
    mean = np.array([0.1, -0.2, 0.3])
    prior = smc.normal_target(mean, var)
    x = np.array([0.3, 1.0, -2.0])
    value, grad = prior.numba_value_and_grad(x, prior.numba_data)
    assert value == pytest.approx(stats.multivariate_normal(mean, np.diag(var)).logpdf(x), 1e-13)
    np.testing.assert_allclose(grad, -(x - mean) / var, rtol=1e-14)
    with pytest.raises(ValueError, match="cov"):
        smc.normal_target(mean, np.array([1.0, 0.0, 1.0]))


# -- posterior moments -------------------------------------------------------------------------
def test_posterior_moments_gaussian(gauss):
    tr = run(gauss, repeats=30, seed=13)
    draws = tr.draws  # (R, N, d): the runs are independent, so their means give the MCSE
    mean_runs = draws.mean(axis=1)
    m = gauss.posterior_mean
    centred = draws - m
    cov_runs = np.einsum("rni,rnj->rij", centred, centred) / draws.shape[1]
    z_mean = runs_z(mean_runs, m)
    iu = np.triu_indices(3)
    z_cov = runs_z(cov_runs[:, iu[0], iu[1]], gauss.posterior_cov[iu])
    assert np.max(np.abs(z_mean)) < Z_CRIT, z_mean
    assert np.max(np.abs(z_cov)) < Z_CRIT, z_cov
    np.testing.assert_allclose(tr.posterior_mean(), m, atol=0.05)
    np.testing.assert_allclose(tr.posterior_cov(), gauss.posterior_cov, atol=0.05)


def _logistic_quadrature(X, y, prior_scale=1.0, half_width=6.0, n=301):
    """Posterior mean, covariance and log evidence of a 2-D logistic regression on a grid
    around the mode (trapezoid rule; the posterior is smooth and light-tailed)."""
    from scipy.optimize import minimize

    def neg_log_post(b):
        eta = X @ b
        return -(y @ eta - np.logaddexp(0, eta).sum()) + 0.5 * b @ b / prior_scale**2

    mode = minimize(neg_log_post, np.zeros(2)).x
    g = np.linspace(-half_width, half_width, n) * 0.5
    B1, B2 = np.meshgrid(mode[0] + g, mode[1] + g, indexing="ij")
    pts = np.stack([B1.ravel(), B2.ravel()], axis=1)
    eta = pts @ X.T
    loglik = eta @ y - np.logaddexp(0, eta).sum(axis=1)
    logprior = -0.5 * (pts**2).sum(axis=1) / prior_scale**2 - np.log(2 * np.pi * prior_scale**2)
    lp = loglik + logprior
    shift = lp.max()
    w = np.exp(lp - shift).reshape(n, n)
    h = g[1] - g[0]
    z = integrate.trapezoid(integrate.trapezoid(w, dx=h, axis=1), dx=h)
    W = (w / w.sum()).ravel()
    mean = W @ pts
    cov = (pts - mean).T @ ((pts - mean) * W[:, None])
    return mean, cov, shift + np.log(z)


@pytest.fixture(scope="module")
def logistic2d():
    rng = np.random.default_rng(21)
    X = rng.normal(size=(40, 2))
    y = (rng.random(40) < 1 / (1 + np.exp(-(X @ np.array([1.0, -0.7]))))).astype(float)
    return smc.logistic_regression_model(X, y), _logistic_quadrature(X, y)


def test_posterior_and_evidence_logistic_2d(logistic2d):
    model, (mean, cov, log_z) = logistic2d
    runs = 16
    tr = run(model, n_particles=300, repeats=runs, seed=14)
    draws = tr.draws
    z_mean = runs_z(draws.mean(axis=1), mean)
    centred = draws - mean
    cov_runs = np.einsum("rni,rnj->rij", centred, centred) / draws.shape[1]
    z_cov = runs_z(cov_runs.reshape(runs, -1)[:, [0, 1, 3]], cov.ravel()[[0, 1, 3]])
    assert np.max(np.abs(z_mean)) < Z_CRIT, z_mean
    assert np.max(np.abs(z_cov)) < Z_CRIT, z_cov
    assert evidence_ok(tr.log_evidence_runs, log_z)


# -- kernels and adaptation --------------------------------------------------------------------
def test_step_size_follows_the_population():
    """A sharp likelihood (posterior sd ≈ 0.1) and a step size 10× too large for the prior:
    acceptance feedback and the particles' contraction bring MALA's acceptance from 0 to a
    useful range, while a fixed step size never recovers."""
    sharp = smc.gaussian_model(np.zeros(3), [1.0, 2.0, 0.5], [1.0, 2.0, -1.0], [0.01, 0.02, 0.01])
    tr = run(sharp, kernel=langevin.MALA(10.0), n_particles=200)
    acc = tr.stages["acceptance_rate"][0]
    h = tr.stages["step_size"][0]
    assert tr.n_stages[0] >= 5
    assert acc[1] < 0.05  # the first moves all fail
    assert 0.3 < acc[-1] < 0.9 and 0.3 < tr.final_acceptance[0] < 0.9
    assert h[-1] < h[1] / 50
    fixed = run(sharp, kernel=langevin.MALA(10.0), n_particles=200, adapt_step_size=False)
    assert np.all(fixed.stages["step_size"][0][1:] == 10.0)
    assert np.all(fixed.stages["acceptance_rate"][0][1:] < 0.05)


@pytest.mark.skipif(not hasattr(langevin, "HMC"), reason="HMC not available")
def test_hmc_is_a_mutation_move_with_adapted_inverse_mass(gauss):
    """Any kernel of the contract is a mutation move: HMC runs without special-casing and
    gets its inverse mass (a declared ``params`` field) from the particles' variances."""
    tr = run(gauss, kernel=langevin.HMC(0.3, n_leapfrog=4), n_particles=200, seed=15)
    assert np.nanmean(tr.stages["acceptance_rate"]) > 0.5
    assert abs(tr.log_evidence - gauss.log_evidence) < 0.3
    np.testing.assert_allclose(tr.posterior_mean(), gauss.posterior_mean, atol=0.1)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(langevin, "HMC"), reason="HMC not available")
def test_hmc_mutation_evidence_is_unbiased(gauss):
    tr = run(gauss, kernel=langevin.HMC(0.3, n_leapfrog=4), repeats=60, seed=15)
    assert evidence_ok(tr.log_evidence_runs, gauss.log_evidence)


@pytest.mark.slow
def test_ula_mutation_is_biased_but_runs(gauss):
    tr = run(gauss, kernel=langevin.ULA(0.05), n_particles=200)
    assert np.all(tr.stages["acceptance_rate"][0][1:] == 1.0)
    assert np.all(np.isfinite(tr.draws)) and np.isfinite(tr.log_evidence)


# -- the trace ---------------------------------------------------------------------------------
def test_trace_and_arviz(logistic2d):
    model, _ = logistic2d
    tr = run(model, n_particles=100, repeats=2)
    idata = tr.to_arviz()
    assert idata.posterior["beta"].shape == (2, 100, 2)
    assert {"beta", "ess", "acceptance_rate", "step_size"} <= set(idata.smc_stages.data_vars)
    assert idata.smc_stages["beta"].dims == ("chain", "stage")
    assert idata.posterior.attrs["log_evidence"] == tr.log_evidence
    assert tr.weights.shape == (2, 100) and np.allclose(tr.weights.sum(axis=1), 1)
    assert "log Z" in repr(tr)
    summary = tr.summary()
    assert summary.shape[0] == 2
    assert np.isnan(run(model, n_particles=50).log_evidence_var)


def test_progress_bar_runs(gauss, capsys):
    tr = run(gauss, n_particles=50, progress=True)
    assert tr.n_stages[0] >= 1


# -- input -------------------------------------------------------------------------------------
@pytest.fixture
def no_compile(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("compilation was reached: the check came too late")

    monkeypatch.setattr(numba_backend, "_loop_for", boom)
    monkeypatch.setattr(numba_backend, "map_members", boom)
    monkeypatch.setattr(jax_backend, "_build_runner", boom)
    monkeypatch.setattr(jax_backend, "map_members", boom)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(kernel="MALA"), TypeError, "kernel"),
        (dict(n_particles=1), ValueError, "n_particles"),
        (dict(n_steps=0), ValueError, "n_steps"),
        (dict(repeats=0), ValueError, "repeats"),
        (dict(target_ess=1.0), ValueError, "target_ess"),
        (dict(resample_threshold=1.5), ValueError, "resample_threshold"),
        (dict(resample_threshold=0.5), ValueError, "equals target_ess"),
        (dict(schedule=[0.5, 0.2, 1.0]), ValueError, "schedule"),
        (dict(schedule=[0.5, 0.9]), ValueError, "schedule"),
        (dict(scheme="bogus"), ValueError, "scheme"),
        (dict(backend="numpy"), ValueError, "backend"),
        (dict(dtype=np.float32), TypeError, "float64"),
        (dict(reference=(0.0, 1.0)), TypeError, "GaussianReference"),
        (dict(reference=GaussianReference(np.zeros(2), np.eye(2))), ValueError, "shape"),
        (dict(seed=-1), TypeError, "seed"),
        (dict(exponent_rule="ess"), ValueError, "exponent_rule"),
    ],
)
def test_bad_input_is_refused_before_compiling(gauss, no_compile, kwargs, error, match):
    with pytest.raises(error, match=match):
        run(gauss, **kwargs)


def test_bad_targets(gauss, no_compile):
    with pytest.raises(TypeError, match="TemperedTarget"):
        run(langevin.targets.gaussian(2))
    no_sampler = TemperedTarget(gauss.prior, gauss.likelihood)
    with pytest.raises(ValueError, match="sample_prior"):
        run(no_sampler)
    jax_only = TemperedTarget(
        langevin.Target.from_jax(lambda x: -0.5 * (x**2).sum(), dim=3),
        gauss.likelihood,
        gauss.sample_prior,
    )
    with pytest.raises(TypeError, match="no Numba form"):
        run(jax_only)
    with pytest.raises(TypeError, match="langevin.Target"):
        TemperedTarget(lambda x: x, gauss.likelihood)
    with pytest.raises(ValueError, match="different dimensions"):
        TemperedTarget(langevin.targets.gaussian(2), gauss.likelihood)


# -- slow: longer statistical runs ----------------------------------------------------------------
@pytest.mark.slow
def test_adaptive_evidence_bias_is_negligible(gauss):
    """Over 400 runs at N = 200 the adaptive schedule's O(1/N) bias stays within the
    (4× smaller) Monte Carlo error of the mean of Ẑ/Z."""
    tr = run(gauss, n_particles=200, repeats=400, seed=31)
    assert evidence_ok(tr.log_evidence_runs, gauss.log_evidence)


@pytest.mark.slow
def test_breast_cancer_posterior_matches_nuts_reference():
    """31-D logistic regression (569 cases): posterior means from tempering SMC with MALA
    against the shipped BlackJAX NUTS reference, z per coordinate with both MCSEs
    (the runs' spread for SMC, the reference's own MCSE), Bonferroni over coordinates."""
    from scipy.stats import norm

    from tests.stats_helpers import SUITE_FALSE_ALARM, SUITE_Z_TESTS

    target = langevin.targets.breast_cancer_logistic_regression()
    X, y, _ = target.numba_data
    model = smc.logistic_regression_model(X, y, 1.0)
    ref = target.reference
    runs = 6
    tr = run(model, kernel=langevin.MALA(0.05), n_particles=1000, n_steps=20, repeats=runs,
             seed=41)  # fmt: skip
    means = tr.draws.mean(axis=1)
    se = np.sqrt(means.var(axis=0, ddof=1) / runs + ref.mean_mcse**2)
    z = (means.mean(axis=0) - ref.mean) / se
    z_crit = float(norm.isf(SUITE_FALSE_ALARM / SUITE_Z_TESTS / (2 * len(z))))
    assert np.max(np.abs(z)) < z_crit, np.round(z, 2)
    assert np.isfinite(tr.log_evidence) and tr.log_evidence_var < 1.0


# -- contract 2: tempering through the engine ------------------------------------------------
@numba.njit
def _counting_normal(x, data):
    """log N(x; m, I) up to a constant, counting its evaluations in ``data[0][0]``."""
    counter, mean = data
    counter[0] += 1
    d = x - mean
    return -0.5 * np.dot(d, d), -d


def _counting_model(dim=2):
    prior_calls, lik_calls = np.zeros(1, np.int64), np.zeros(1, np.int64)
    prior = langevin.Target.from_numba(value_and_grad=_counting_normal, dim=dim,
                                       data=(prior_calls, np.zeros(dim)))  # fmt: skip
    lik = langevin.Target.from_numba(value_and_grad=_counting_normal, dim=dim,
                                     data=(lik_calls, np.ones(dim)))  # fmt: skip
    model = TemperedTarget(prior, lik, lambda rng, n: rng.standard_normal((n, dim)))
    return model, prior_calls, lik_calls


def test_tempering_evaluates_the_likelihood_only_in_the_kernel_steps():
    """Per particle and stage: k likelihood evaluations (the kernel's steps; the state is
    carried and moved to the next β without evaluating) and one of the prior (for ℓ at the
    moved particles). The first contract spent k + 2 full evaluations."""
    n, k = 16, 3  # 16 particles: one block, one thread (the counter is not atomic)
    schedule = [0.25, 0.5, 0.75, 1.0]
    model, prior_calls, lik_calls = _counting_model()
    for _ in range(2):  # count the second run: the first also probes output shapes once
        prior_calls[0] = lik_calls[0] = 0
        tempered_smc(model, langevin.MALA(0.3), n_particles=n, n_steps=k, schedule=schedule,
                     final_mutation=False, seed=0, progress=False)  # fmt: skip
    stages = len(schedule) - 1  # M_t for t = 1..T−1; M_0 draws from the prior
    # start: init (prior + likelihood) and ℓ at β = 0 (likelihood)
    assert lik_calls[0] == 2 * n + stages * k * n
    assert prior_calls[0] == n + stages * (k + 1) * n


def test_tempering_carries_the_kernel_state_across_stages(monkeypatch):
    """A kinetic kernel's momentum goes on from one stage to the next (gathered with its
    particle), instead of restarting at 0."""
    runs = []
    real = numba_backend.run

    def spy(prepared, state, n, step_size, **kw):
        out = real(prepared, state, n, step_size, **kw)
        runs.append((np.array(state.momentum), np.array(out.state.momentum)))
        return out

    monkeypatch.setattr(numba_backend, "run", spy)
    model = smc.gaussian_model([0.0, 0.0], [1.0, 1.0], [1.0, 2.0], [0.5, 0.5])
    kernel = langevin.KineticLangevin(0.2, friction=1.0, discretization="baoab")
    tempered_smc(model, kernel, n_particles=64, n_steps=2, schedule=np.linspace(0, 1, 6),
                 seed=1, progress=False)  # fmt: skip
    assert len(runs) == 5  # four stages and the final mutation
    for (_, before_out), (after_in, _) in itertools.pairwise(runs):
        assert np.all(after_in != 0.0)
        # every particle's momentum is one of the previous stage's (resampling gathers)
        assert all(np.any(np.all(before_out == row, axis=1)) for row in after_in)


_X64_OFF_SCRIPT = """
import jax, numpy as np, langevin
from langevin import smc
assert not jax.config.jax_enable_x64
model = smc.gaussian_model([0.0, 0.0], [1.0, 1.0], [1.0, 2.0], [0.5, 0.5])
for kernel in (langevin.MALA(0.5), langevin.KineticLangevin(0.2, friction=1.0,
                                                            discretization="baoab")):
    trace = smc.tempered_smc(model, kernel, n_particles=400, n_steps=3, seed=0,
                             progress=False, backend="jax")
    assert trace.draws.dtype == np.float32, trace.draws.dtype
    print(trace.log_evidence - model.log_evidence)
"""


def test_tempering_on_jax_follows_jax_default_float_with_x64_off():
    """A user who never enabled x64 (JAX's default): tempered SMC runs in float32 instead of
    refusing the float32 log-densities as mixed dtypes. A fresh process with x64 off, since
    the README's second test pass switches it on."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "JAX_ENABLE_X64": "0"}  # JAX's default, whatever this run uses
    result = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", _X64_OFF_SCRIPT],
                            capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    errors = [float(v) for v in result.stdout.split()]
    assert len(errors) == 2 and all(abs(e) < 0.5 for e in errors), errors
