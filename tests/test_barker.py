"""The Barker proposal: its step is the paper's, its MH ratio is exact, its chains are right.

* The step's math, evaluated by NumPy through a twin of the portable step (a small batched
  NumPy namespace, below), is checked against an independent NumPy transcription of the
  paper: the proposal mechanism for given noise, the law of the proposal (KS test against
  the density q(x, y) = Π 2 φ_σ(y − x) s((y − x)∇log π(x))), the acceptance probability
  against min(1, π(y)q(y, x) / π(x)q(x, y)), and detailed balance
  π(x)q(x, y)α(x, y) = π(y)q(y, x)α(y, x) with α read from the kernel both ways.
* Through ``langevin.sample`` on both backends: MCSE z-tests of the means and variances on
  a correlated Gaussian (exact moments), and (slow) of the posterior means of a shipped
  posteriordb posterior against its reference draws, with both MCSEs combined.

Bit-for-bit agreement of the two backends is ``test_conformance.py``'s job.
"""

from __future__ import annotations

import types
import warnings

import arviz as az
import numpy as np
import pytest
from scipy import integrate, special, stats

import langevin
from langevin.backends.portable import make_twin
from langevin.kernels.barker import Barker, BarkerNoise, barker_step
from langevin.kernels.base import GradientState
from tests.stats_helpers import SUITE_FALSE_ALARM, SUITE_Z_TESTS, assert_z_ok, z_score


# -- the step's math in NumPy, batched over a leading axis ------------------------------------
class _BatchedNumPy(types.ModuleType):
    """``xp`` for a batch of independent steps: NumPy, with reductions over the last axis.

    Every name the kernel math uses falls through to NumPy except the few whose meaning
    must follow the batch: ``sum`` (over a position vector), ``select``/``select_tree`` (a
    per-member condition), ``value_and_grad`` (the target is a batched NumPy function).
    """

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def sum(a):
        return np.sum(a, axis=-1)

    @staticmethod
    def select(cond, a, b):
        return np.where(cond, a, b)

    @staticmethod
    def select_tree(cond, a, b):
        def pick(u, v):
            c = np.reshape(cond, np.shape(cond) + (1,) * (np.ndim(u) - np.ndim(cond)))
            return np.where(c, u, v)

        return type(a)(*(pick(u, v) for u, v in zip(a, b)))

    @staticmethod
    def value_and_grad(target, x):
        return target(x)


NUMPY_STEP = make_twin(barker_step, _BatchedNumPy("batched_numpy"), lambda f: f, {})


def banana_vg(x):
    """A smooth, non-Gaussian, non-product 2-D log-density and its gradient, batched:
    log π(x) = −x₁⁴/4 − x₁²/2 − (x₂ − x₁²)²/2."""
    x1, x2 = x[..., 0], x[..., 1]
    r = x2 - x1**2
    logp = -0.25 * x1**4 - 0.5 * x1**2 - 0.5 * r**2
    grad = np.stack([-(x1**3) - x1 + 2.0 * x1 * r, -r], axis=-1)
    return logp, grad


def kernel_step(x, normal, sign, uniform, sigma):
    """One Barker step of the kernel's own math from each row of ``x``: (new state, info)."""
    logp, grad = banana_vg(x)
    state = GradientState(x, logp, grad)
    noise = BarkerNoise(normal, sign, uniform)
    with np.errstate(divide="ignore"):  # log(0) = −inf: a uniform of 0 always accepts
        return NUMPY_STEP(state, noise, sigma, (), banana_vg)


def log_q(x, y, sigma):
    """log q(x, y): the paper's proposal density, written directly (no simplification)."""
    w = y - x
    _, g = banana_vg(x)
    terms = np.log(2.0) + stats.norm.logpdf(w, scale=sigma) + special.log_expit(w * g)
    return np.sum(terms, axis=-1)


SIGMA = 0.8


def random_pairs(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    return x, rng.standard_normal((n, 2)), rng.random((n, 2))


# -- the step ---------------------------------------------------------------------------------
def test_proposal_is_the_papers_mechanism():
    """y_i = x_i + b_i σ ξ_i with b_i = +1 iff u_i < 1/(1 + exp(−σ ξ_i ∂_i log π(x))).

    With the MH uniform at 0 every finite proposal is accepted, so the new state is it."""
    n = 2000
    x, xi, u = random_pairs(n, seed=1)
    new, info = kernel_step(x, xi, u, np.zeros(n), SIGMA)
    z = SIGMA * xi
    _, g = banana_vg(x)
    b = np.where(u < special.expit(z * g), 1.0, -1.0)
    assert np.all(info.is_accepted)
    np.testing.assert_allclose(new.position, x + b * z, rtol=0, atol=1e-15)
    uphill = np.mean(b * z * g > 0)  # the increment leans towards the gradient
    assert 0.6 < uphill < 0.95, uphill


@pytest.mark.parametrize("g", [0.0, 0.7, -2.5, 8.0])
def test_proposal_density_integrates_to_one(g):
    """The density the tests below use is a probability density for every gradient."""
    sigma = 0.6
    total, err = integrate.quad(
        lambda w: 2.0 * stats.norm.pdf(w, scale=sigma) * special.expit(w * g), -np.inf, np.inf
    )
    assert abs(total - 1.0) < 1e-9 and err < 1e-8


def test_proposal_law_is_q():
    """KS test: the increments the kernel proposes from a fixed x follow q(x, ·) per
    coordinate (they are independent given x). Level: the suite's per-test false alarm."""
    n = 20_000
    x0 = np.array([0.9, -0.4])  # ∇log π(x0) = (−3.05, 1.21): strongly skewed signs
    rng = np.random.default_rng(2)
    x = np.tile(x0, (n, 1))
    new, _ = kernel_step(x, rng.standard_normal((n, 2)), rng.random((n, 2)), np.zeros(n), SIGMA)
    _, g = banana_vg(x0)
    grid = np.linspace(-8 * SIGMA, 8 * SIGMA, 40_001)
    for i in range(2):
        density = 2.0 * stats.norm.pdf(grid, scale=SIGMA) * special.expit(grid * g[i])
        cdf = integrate.cumulative_trapezoid(density, grid, initial=0.0)
        assert abs(cdf[-1] - 1.0) < 1e-8
        w = new.position[:, i] - x0[i]
        result = stats.kstest(w, lambda t, cdf=cdf: np.interp(t, grid, cdf))
        assert result.pvalue > SUITE_FALSE_ALARM / SUITE_Z_TESTS, (i, result)
        # ...and the test has power: the mirrored law (sign towards −∇log π) is rejected.
        assert stats.kstest(-w, lambda t, cdf=cdf: np.interp(t, grid, cdf)).pvalue < 1e-10


def test_acceptance_matches_independent_numpy():
    """α = min(1, π(y) q(y, x) / (π(x) q(x, y))), q written directly from the paper."""
    n = 2000
    x, xi, u = random_pairs(n, seed=3)
    new, info = kernel_step(x, xi, u, np.zeros(n), SIGMA)
    y = new.position
    log_r = banana_vg(y)[0] - banana_vg(x)[0] + log_q(y, x, SIGMA) - log_q(x, y, SIGMA)
    expected = np.exp(np.minimum(log_r, 0.0))
    np.testing.assert_allclose(info.acceptance_rate, expected, rtol=1e-12, atol=1e-300)
    assert np.mean((expected > 0.05) & (expected < 0.95)) > 0.2  # the ratio is not trivial


def test_detailed_balance_identity():
    """π(x) q(x, y) α(x, y) = π(y) q(y, x) α(y, x) pair by pair, α read from the kernel in
    both directions: the move back from y uses ξ' = (x − y)/σ with sign uniform 0 (b = +1)."""
    n = 2000
    x, xi, u = random_pairs(n, seed=4)
    new, forward = kernel_step(x, xi, u, np.zeros(n), SIGMA)
    y = new.position
    back, backward = kernel_step(y, (x - y) / SIGMA, np.zeros((n, 2)), np.zeros(n), SIGMA)
    np.testing.assert_allclose(back.position, x, rtol=0, atol=1e-13)
    a_xy, a_yx = forward.acceptance_rate, backward.acceptance_rate
    ok = (a_xy > 1e-200) & (a_yx > 1e-200)  # pairs where both logs are representable
    assert ok.mean() > 0.9
    lhs = (banana_vg(x)[0] + log_q(x, y, SIGMA))[ok] + np.log(a_xy[ok])
    rhs = (banana_vg(y)[0] + log_q(y, x, SIGMA))[ok] + np.log(a_yx[ok])
    assert np.mean((a_xy > 0.05) & (a_xy < 0.95)) > 0.2  # not trivially 1 = 1
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-10)


# -- chains -----------------------------------------------------------------------------------
def ess_ok(values: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(az.ess(values, method="bulk"))


@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_moments_correlated_gaussian(gaussian4, backend):
    """Means and variances of N(m, Σ) (eigenvalues 1 … 0.1, correlated) by MCSE z-tests."""
    target, mean, cov = gaussian4
    trace = langevin.sample(target, Barker(0.3), chains=4, warmup=1000, draws=20_000,
                            backend=backend, seed=31, progress=False)  # fmt: skip
    assert trace.diverged == {}
    assert abs(trace.sample_stats["acceptance_rate"].mean() - Barker.target_acceptance) < 0.1
    draws = trace.draws
    zs = {}
    for i in range(target.dim):
        centred2 = (draws[..., i] - mean[i]) ** 2  # E = Σ_ii exactly: no plug-in mean
        assert min(ess_ok(draws[..., i]), ess_ok(centred2)) >= 400, "MCSE not trustworthy"
        zs[f"mean[{i}]"] = z_score(draws[..., i], mean[i])
        zs[f"var[{i}]"] = z_score(centred2, cov[i, i])
    assert_z_ok(zs)


@pytest.mark.slow
def test_posteriordb_ark_means():
    """posteriordb arK-arK (7-D): posterior means against the Stan reference draws, the
    reference's own MCSE combined with the chain's (as ``test_posteriordb_mala.py``)."""
    target = langevin.targets.arK()
    ref = target.reference
    trace = langevin.sample(target, Barker(0.01), chains=4, warmup=2000, draws=20_000,
                            thin=2, seed=7, progress=False)  # fmt: skip
    assert not trace.diverged
    ess = np.array([ess_ok(trace.draws[..., i]) for i in range(target.dim)])
    assert np.all(ess >= 400), f"run too short to trust its MCSE: ESS {ess.round(0)}"
    zs = {
        f"mean[{i}]": z_score(trace.draws[..., i], ref.mean[i], ref.mean_mcse[i])
        for i in range(target.dim)
    }
    assert_z_ok(zs)
