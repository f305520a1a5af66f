"""Kernel Stein discrepancy (langevin.diagnostics.ksd): the chunked statistic against a direct
double loop over a Stein kernel built by autodiff; its exact mean for exact Gaussian draws
(E[KSD_V²] = E_π k0(x, x)/n, so the KSD falls like n^{-1/2}; E[KSD_U²] = 0); a clear margin
for draws from a wrong law; scores from targets on both backends; traces; bad input."""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import langevin
from langevin.diagnostics import (
    KSDResult,
    kernel_stein_discrepancy,
    ksd_squared,
    target_scores,
)
from langevin.targets.data_targets import logistic_regression_data
from langevin.trace import Trace
from tests.stats_helpers import Z_CRIT


# -- the statistic against an independent double loop ---------------------------------------------
def _stein_kernel_autodiff(c, beta):
    """k0(x, y; s_x, s_y) from the IMQ base kernel by JAX autodiff (no hand derivatives)."""

    def k(x, y):
        return (c**2 + jnp.sum((x - y) ** 2)) ** beta

    grad_x = jax.grad(k, argnums=0)
    grad_y = jax.grad(k, argnums=1)

    def k0(x, y, sx, sy):
        mixed = jax.jacfwd(grad_y, argnums=0)(x, y)  # ∂²k/∂x_a∂y_b
        return (sx @ sy) * k(x, y) + sx @ grad_y(x, y) + sy @ grad_x(x, y) + jnp.trace(mixed)

    return jax.jit(k0)


@pytest.mark.parametrize("c, beta, use_scale", [(1.0, -0.5, False), (0.7, -0.3, True)])
def test_equals_a_direct_double_loop(x64, c, beta, use_scale):
    rng = np.random.default_rng(3)
    n, d = 23, 3
    x = rng.normal(size=(n, d)) * 2.0 + 5.0  # far from 0: centring must not change anything
    s = rng.normal(size=(n, d))  # any vector field: k0's formula does not need a gradient
    scale = np.array([0.5, 1.0, 2.0]) if use_scale else None
    xs, ss = (x / scale, s * scale) if use_scale else (x, s)
    k0 = _stein_kernel_autodiff(c, beta)
    matrix = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            matrix[i, j] = float(k0(xs[i], xs[j], ss[i], ss[j]))
    v_loop = matrix.sum() / n**2
    u_loop = (matrix.sum() - np.trace(matrix)) / (n * (n - 1))
    for chunk in (1, 7, 23, 1000):
        v = ksd_squared(x, s, c=c, beta=beta, scale=scale, chunk_size=chunk)
        u = ksd_squared(x, s, c=c, beta=beta, scale=scale, statistic="u", chunk_size=chunk)
        assert v == pytest.approx(v_loop, rel=1e-12, abs=1e-14)
        assert u == pytest.approx(u_loop, rel=1e-12, abs=1e-14)


# -- exact laws ------------------------------------------------------------------------------------
def _replicates(n, d, reps, seed, statistic="v", shift=0.0, spread=1.0):
    """KSD² of ``reps`` independent sets of n draws from N(shift, spread² I) against N(0, I)."""
    rng = np.random.default_rng(seed)
    out = np.empty(reps)
    for r in range(reps):
        x = shift + spread * rng.standard_normal((n, d))
        out[r] = ksd_squared(x, -x, statistic=statistic)
    return out


def _z(values, truth):
    return (values.mean() - truth) / (values.std(ddof=1) / np.sqrt(len(values)))


@pytest.mark.parametrize("n", [50, 400])
def test_v_statistic_of_exact_draws_has_mean_e_k0_over_n(n):
    # For iid x_i ~ π = N(0, I): E[k0(x_i, x_j)] = 0 (i ≠ j) and k0(x, x) = |s(x)|² c^{2β}
    # − 2βd c^{2β−2} = |x|² + d at c = 1, β = −1/2, so E[KSD_V²] = 2d/n exactly: n·KSD² has
    # mean 2d at every n, i.e. the KSD falls like n^{−1/2}.
    d = 3
    values = n * _replicates(n, d, 200, seed=n)
    assert abs(_z(values, 2.0 * d)) < Z_CRIT


def test_u_statistic_of_exact_draws_has_mean_zero():
    values = _replicates(200, 2, 200, seed=11, statistic="u")
    assert abs(_z(values, 0.0)) < Z_CRIT


@pytest.mark.parametrize("shift, spread", [(0.3, 1.0), (0.0, 1.3)])
def test_draws_from_a_wrong_law_have_a_clearly_larger_ksd(shift, spread):
    n, d, reps = 400, 3, 30
    exact = _replicates(n, d, reps, seed=1)
    wrong = _replicates(n, d, reps, seed=2, shift=shift, spread=spread)
    se = np.sqrt(exact.var(ddof=1) / reps + wrong.var(ddof=1) / reps)
    assert wrong.mean() - exact.mean() > 10.0 * se
    assert wrong.min() > exact.max()
    # The U-statistic is unbiased for the population KSD², which is > 0 for q ≠ π.
    u_wrong = _replicates(n, d, reps, seed=3, statistic="u", shift=shift, spread=spread)
    assert _z(u_wrong, 0.0) > 10.0


# -- scores from targets, traces -------------------------------------------------------------------
def _gaussian():
    mean = np.array([1.0, -2.0])
    cov = np.array([[2.0, 0.6], [0.6, 0.5]])
    return langevin.targets.gaussian(2, mean=mean, cov=cov), mean, cov


def test_scores_from_a_target_on_both_backends():
    target, mean, cov = _gaussian()
    x = np.random.default_rng(0).normal(size=(50, 2))
    expected = -(x - mean) @ np.linalg.inv(cov)
    np.testing.assert_allclose(target_scores(target, x, "numba"), expected, rtol=1e-12)
    tol = 1e-12 if jax.config.jax_enable_x64 else 1e-5
    np.testing.assert_allclose(target_scores(target, x, "jax"), expected, rtol=tol, atol=tol)
    res = kernel_stein_discrepancy(x, target)
    assert isinstance(res, KSDResult) and res.n == 50 and res.statistic == "v"
    assert res.ksd_squared == pytest.approx(ksd_squared(x, expected), rel=1e-12)
    assert float(res) == res.ksd == pytest.approx(np.sqrt(res.ksd_squared), rel=1e-15)
    assert "KSD = " in str(res)


def test_data_target_scores_are_the_full_data_gradient_on_both_backends(x64):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    y = (rng.uniform(size=300) < 0.5).astype(float)
    target = logistic_regression_data(X, y, prior_scale=2.0)
    beta = rng.normal(size=(20, 3))
    p = 1.0 / (1.0 + np.exp(-(beta @ X.T)))
    expected = (y - p) @ X - beta / 4.0
    np.testing.assert_allclose(target_scores(target, beta, "numba"), expected, rtol=1e-12)
    np.testing.assert_allclose(target_scores(target, beta, "jax"), expected, rtol=1e-12)


def _trace(draws, diverged):
    chains = draws.shape[0]
    return Trace(draws=draws, sample_stats={}, warmup_stats={}, step_size=np.ones(chains),
                 names={}, kernel=None, backend="numba", seed=0, diverged=diverged)  # fmt: skip


def test_a_trace_is_thinned_per_chain_and_stopped_chains_are_left_out():
    target, mean, cov = _gaussian()
    rng = np.random.default_rng(2)
    draws = mean + rng.normal(size=(3, 40, 2))
    draws[1, 10:] = np.nan  # chain 1 diverged at its 11th draw
    trace = _trace(draws, {1: 11})
    kept = draws[[0, 2], ::3].reshape(-1, 2)
    res = kernel_stein_discrepancy(trace, target, thin=3)
    assert res.n == len(kept)
    assert res.ksd_squared == ksd_squared(kept, target_scores(target, kept))
    # Given scores laid out like the trace: the same chains and draws are used.
    scores = np.zeros_like(draws)
    scores[[0, 2]] = -(draws[[0, 2]] - mean) @ np.linalg.inv(cov)
    by_scores = kernel_stein_discrepancy(trace, scores=scores, thin=3)
    assert by_scores.ksd_squared == pytest.approx(res.ksd_squared, rel=1e-12)
    # Arrays (chains, draws, d) thin per chain too; a duck-typed trace works.
    arr = kernel_stein_discrepancy(draws[[0, 2]], target, thin=3)
    duck = kernel_stein_discrepancy(types.SimpleNamespace(draws=draws, diverged={1: 11}),
                                    target, thin=3)  # fmt: skip
    assert arr.ksd_squared == duck.ksd_squared == res.ksd_squared
    # A random subsample of max_points draws.
    sub = kernel_stein_discrepancy(trace, target, max_points=20, seed=4)
    assert sub.n == 20


def test_bad_input_is_refused_naming_the_argument():
    x = np.random.default_rng(0).normal(size=(10, 2))
    target, _, _ = _gaussian()
    cases = [
        (lambda: ksd_squared(x, -x, beta=0.5), ValueError, "beta"),
        (lambda: ksd_squared(x, -x, beta=-1.0), ValueError, "beta"),
        (lambda: ksd_squared(x, -x, c=0.0), ValueError, "c must"),
        (lambda: ksd_squared(x, -x, c="1"), TypeError, "c must"),
        (lambda: ksd_squared(x, -x, statistic="w"), ValueError, "statistic"),
        (lambda: ksd_squared(x, -x[:5]), ValueError, "scores"),
        (lambda: ksd_squared(x, -x, scale=[1.0, -1.0]), ValueError, "scale"),
        (lambda: ksd_squared(x, -x, scale=[1.0, 1.0, 1.0]), ValueError, "scale"),
        (lambda: ksd_squared(x, -x, chunk_size=0), ValueError, "chunk_size"),
        (lambda: ksd_squared(np.full((10, 2), np.nan), -x), ValueError, "draws"),
        (lambda: kernel_stein_discrepancy(x), TypeError, "target= and scores="),
        (lambda: kernel_stein_discrepancy(x, target, scores=-x), TypeError, "target="),
        (lambda: kernel_stein_discrepancy(x, target, thin=0), ValueError, "thin"),
        (lambda: kernel_stein_discrepancy(x, target, max_points=1), ValueError, "max_points"),
        (lambda: kernel_stein_discrepancy(x, scores=-x[:4]), ValueError, "scores"),
        (lambda: kernel_stein_discrepancy(x[:, :1], target), ValueError, "dim"),
        (lambda: target_scores(object(), x), TypeError, "target"),
        (lambda: target_scores(target, x, "torch"), ValueError, "backend"),
    ]
    for call, exc, text in cases:
        with pytest.raises(exc, match=text):
            call()
