"""Structured SG-MCMC (Alexos, Boyd & Mandt 2022): agreement across backends, an exact
identity (no cross-group coupling + full batch = ULA), the mean-field law on a block
Gaussian, and the dropout variant's unbiased rescaling."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import langevin
from langevin.backends import jax_backend, numba_backend, numpy_ops
from langevin.backends.portable import make_twin
from langevin.kernels.structured_sgmcmc import (
    StructuredSGLD,
    group_by_blocks,
    group_randomly,
    structured_gradient,
)
from langevin.spec import draw_numpy
from langevin.targets.data_targets import linear_regression_data


def coupled_regression(n=200, seed=0):
    """d = 4 in two groups of two, strongly coupled across groups: the true marginal
    variances are 2–3× the mean-field ones."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 4))
    X = Z.copy()
    X[:, 2] = 0.8 * Z[:, 0] + 0.6 * Z[:, 2]
    X[:, 3] = 0.7 * Z[:, 1] + 0.7 * Z[:, 3]
    X *= 3 / np.sqrt(n)
    y = X @ np.array([1.0, -1.0, 0.5, 0.2]) + rng.normal(size=n)
    return linear_regression_data(X, y, noise_sd=1.0, prior_sd=3.0)


def mean_field_cov(target, groups):
    """The structured mean-field covariance of N(m, A⁻¹): block-diagonal, (A_gg)⁻¹ per group."""
    A = np.linalg.inv(target.reference.cov)
    groups = np.asarray(groups)
    out = np.zeros_like(A)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        out[np.ix_(idx, idx)] = np.linalg.inv(A[np.ix_(idx, idx)])
    return out


def _run(backend, kernel, target, noise, init_noise, x0):
    be = numba_backend if backend == "numba" else jax_backend
    dim = x0.shape[1]
    p = be.prepare(kernel, target, dim, np.float64)
    s = be.init(p, x0, noise=init_noise)
    return be.run(p, s, noise.normal.shape[1], np.full(x0.shape[0], kernel.step_size), noise=noise)


@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
def test_same_noise_same_chain(dropout):
    target = coupled_regression()
    kernel = StructuredSGLD(0.01, groups=(0, 1, 0, 1), batch_size=20, n_data=200,
                            buffer_size=16, dropout=dropout, composites=3)  # fmt: skip
    noise = draw_numpy(kernel.noise(4), np.random.default_rng(0), (3, 60))
    init_noise = draw_numpy(kernel.init_noise(4), np.random.default_rng(1), (3,))
    x0 = np.random.default_rng(2).normal(size=(3, 4))
    with jax.enable_x64(True):
        r_nb = _run("numba", kernel, target, noise, init_noise, x0)
        r_jx = _run("jax", kernel, target, noise, init_noise, x0)
    np.testing.assert_allclose(r_nb.position, r_jx.position, rtol=0, atol=1e-12)
    for name in r_nb.info:
        np.testing.assert_allclose(r_nb.info[name], r_jx.info[name], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(r_nb.state.buffer), np.asarray(r_jx.state.buffer),
                               rtol=0, atol=1e-12)  # fmt: skip
    # the ring buffer holds the last 16 positions (count = 61 pushes: x0 and 60 steps)
    np.testing.assert_array_equal(np.asarray(r_nb.state.count), 61)
    last = r_nb.position[:, -16:]  # positions 45..60 sit in rows (45..60) mod 16
    rows = np.arange(45, 61) % 16
    np.testing.assert_allclose(r_nb.state.buffer[:, rows], last, rtol=0, atol=0)


def test_gradient_noise_is_opt_in_and_changes_no_draw():
    """``gradient_noise=True`` picks the class whose step estimates tr Cov(ĝ) from the
    batch's halves (two half-batch ``loglik`` calls per composite); by default the step
    makes one whole-batch call and reports NaN. Same noise, b < n, dropout (so groups are
    live in several composites): the two chains agree up to the order of summation, on
    both backends, and only the opted-in one reports a finite, non-negative estimate."""
    target = coupled_regression()
    kernel = StructuredSGLD(0.01, groups=(0, 1, 0, 1), batch_size=20, n_data=200,
                            buffer_size=16, dropout=True, composites=3)  # fmt: skip
    noisy = dataclasses.replace(kernel, gradient_noise=True)
    assert not kernel.gradient_noise and noisy.gradient_noise
    assert type(noisy) is not type(kernel) and noisy.name == kernel.name
    assert type(dataclasses.replace(noisy, step_size=0.02)) is type(noisy)
    assert dataclasses.replace(noisy, gradient_noise=False) == kernel
    assert type(dataclasses.replace(noisy, gradient_noise=False)) is type(kernel)
    assert type(StructuredSGLD(0.01, groups=(0, 1), batch_size=2, n_data=10, buffer_size=16,
                               gradient_noise=True)) is type(noisy)  # fmt: skip
    with pytest.raises(TypeError, match="gradient_noise"):
        StructuredSGLD(0.01, groups=(0, 1), batch_size=2, n_data=10, gradient_noise=1)
    noise = draw_numpy(kernel.noise(4), np.random.default_rng(0), (2, 30))
    init_noise = draw_numpy(kernel.init_noise(4), np.random.default_rng(1), (2,))
    x0 = np.random.default_rng(2).normal(size=(2, 4))
    with jax.enable_x64(True):
        for backend in ("numba", "jax"):
            a = _run(backend, kernel, target, noise, init_noise, x0)
            b = _run(backend, noisy, target, noise, init_noise, x0)
            np.testing.assert_allclose(a.position, b.position, rtol=0, atol=1e-12)
            np.testing.assert_allclose(a.logdensity, b.logdensity, rtol=1e-12, atol=1e-12)
            assert np.all(np.isnan(a.info["gradient_noise"]))
            est = b.info["gradient_noise"]
            # 0 exactly at a step whose masks leave every group dead (no likelihood term)
            assert np.all(np.isfinite(est) & (est >= 0)) and np.median(est) > 0


@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_uncoupled_groups_with_the_full_batch_are_ula(backend):
    """Orthogonal design blocks (X₁ᵀX₂ = 0) and b = n: a group's full-batch gradient does not
    depend on the other group, so stored samples change nothing and structured SGLD is ULA
    on the same normals (to round-off)."""
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(60, 4)))
    X = q * np.array([3.0, 2.0, 2.5, 1.5])
    target = linear_regression_data(X, X @ np.ones(4) + rng.normal(size=60), prior_sd=2.0)
    kernel = StructuredSGLD(0.05, groups=(0, 0, 1, 1), batch_size=60, n_data=60,
                            buffer_size=8)  # fmt: skip
    noise = draw_numpy(kernel.noise(4), np.random.default_rng(4), (2, 40))
    init_noise = draw_numpy(kernel.init_noise(4), np.random.default_rng(5), (2,))
    x0 = rng.normal(size=(2, 4))
    ula = langevin.ULA(0.05)
    with jax.enable_x64(True):
        out = _run(backend, kernel, target, noise, init_noise, x0)
        be = numba_backend if backend == "numba" else jax_backend
        p = be.prepare(ula, target, 4, np.float64)
        ref = be.run(p, be.init(p, x0), 40, np.full(2, 0.05),
                     noise=type(ula.noise(4))(noise.normal))  # fmt: skip
    np.testing.assert_allclose(out.position, ref.position, rtol=0, atol=1e-11)


def test_coupled_groups_do_see_the_stored_samples():
    """The same check on the coupled model fails: the identity above is not vacuous."""
    target = coupled_regression()
    kernel = StructuredSGLD(0.01, groups=(0, 0, 1, 1), batch_size=200, n_data=200,
                            buffer_size=8)  # fmt: skip
    noise = draw_numpy(kernel.noise(4), np.random.default_rng(4), (1, 40))
    init_noise = draw_numpy(kernel.init_noise(4), np.random.default_rng(5), (1,))
    x0 = np.zeros((1, 4))
    out = _run("numba", kernel, target, noise, init_noise, x0)
    ula = langevin.ULA(0.01)
    p = numba_backend.prepare(ula, target, 4, np.float64)
    ref = numba_backend.run(p, numba_backend.init(p, x0), 40, np.full(1, 0.01),
                            noise=type(ula.noise(4))(noise.normal))  # fmt: skip
    assert np.abs(out.position - ref.position).max() > 1e-3


@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
def test_the_gradient_is_the_modified_energy_gradient_on_average(dropout):
    """Over the stored-sample picks, E[ĝ] at a fixed θ with a fixed buffer equals
    ∇log p(θ) + Σ_i ∇_i log p(D | θ_i, θ̃_{−i}) averaged over the buffer: the modified
    energy's gradient. Dropout: over the masks too, with the 1/(pL) rescaling, each other
    group enters at its current value with probability p (full batch; z-tests per
    coordinate)."""
    target = coupled_regression()
    groups = (0, 0, 1, 1)
    kernel = StructuredSGLD(0.01, groups=groups, batch_size=200, n_data=200, buffer_size=5,
                            dropout=dropout, composites=3, keep_prob=0.6)  # fmt: skip
    rng = np.random.default_rng(6)
    buffer = rng.normal(size=(5, 4))
    theta = rng.normal(size=4)
    X, y, _ = target.data
    gp = -theta / 9.0
    # dropout: in a composite where group g is live, the other group is live too with
    # probability p (current values) and stored otherwise
    p_other = 0.6 if dropout else 0.0
    expected = gp + p_other * (X.T @ (y - X @ theta))
    for g in (0, 1):
        idx = np.flatnonzero(np.asarray(groups) == g)
        grads = []
        for row in buffer:
            comp = row.copy()
            comp[idx] = theta[idx]
            grads.append(X.T @ (y - X @ comp))
        expected[idx] += (1 - p_other) * np.mean(grads, axis=0)[idx]
    fn = make_twin(structured_gradient, numpy_ops, lambda f: f, {})
    form = numba_backend.bind_target(target)
    params = kernel.params()
    spec = kernel.noise(4)
    draws = []
    for _ in range(3000):
        pick = spec.pick.draw_numpy(rng)
        mask = spec.mask.draw_numpy(rng)
        est = fn(form.build(form.data), theta, np.arange(200), pick, mask, buffer, 5, params)
        draws.append(est.grad)
    draws = np.array(draws)
    z = (draws.mean(0) - expected) / (draws.std(0, ddof=1) / np.sqrt(len(draws)))
    assert np.all(np.abs(z) < 4.56), z
    assert np.all(draws.std(0) > 0)  # the picks do make it random


def _block_gaussian_run(dropout, buffer_size, step, draws, chains):
    target = coupled_regression()
    groups = group_by_blocks([2, 2])
    kernel = StructuredSGLD(step, groups=groups, batch_size=200, n_data=200,
                            buffer_size=buffer_size, dropout=dropout, composites=4,
                            keep_prob=0.5)  # fmt: skip
    trace = langevin.sample(target, kernel, backend="numba", chains=chains, draws=draws,
                            warmup=max(2000, buffer_size), seed=7, progress=False,
                            initial_position=target.reference.mean)  # fmt: skip
    draws = trace.draws.reshape(-1, 4)
    mf = mean_field_cov(target, groups)
    return target, mf, draws, np.cov(draws.T)


@pytest.mark.parametrize(
    "buffer_size, step, draws, tol",
    [(500, 0.01, 10000, 0.35), pytest.param(4000, 0.005, 40000, 0.2, marks=pytest.mark.slow)],
    ids=["K500", "K4000"],
)
def test_recovers_the_mean_field_law_on_a_block_gaussian(buffer_size, step, draws, tol):
    """On a posterior N(m, A⁻¹) coupling two groups, the chain's per-group variances are
    the structured mean-field ones, diag (A_gg)⁻¹ — 2–3× below the true marginal variances —
    and the cross-group correlations vanish (the posterior's reach 0.8).

    The tolerance is a model error, not Monte Carlo: SGLD's O(h) inflation, the
    stored-sample noise and the finite buffer (its window of the last K positions
    fluctuates with the chain) leave the variances above (A_gg)⁻¹, shrinking as h → 0 and
    K → ∞. Measured (4 chains): K = 500, h = 0.01: ratios 1.06–1.13; K = 2000, h = 0.01:
    1.08–1.10; K = 4000, h = 0.005: 1.04–1.07. The buffer gives the chain a long memory, so
    a variance estimate itself varies by ~10% between seeds (seed 7, 2 chains, K = 500:
    1.12–1.21): the bounds are 0.85 < ratio < 1 + tol, the alternative (the true marginals)
    being ≥ 1.8. The means are exact for a Gaussian mean field and are checked to 0.3
    mean-field sd."""
    target, mf, draws, cov = _block_gaussian_run(False, buffer_size, step, draws, 4)
    assert np.all(np.diag(target.reference.cov) > 1.8 * np.diag(mf))
    ratio = np.diag(cov) / np.diag(mf)
    assert np.all((ratio > 0.85) & (ratio < 1.0 + tol)), ratio
    cross = cov[:2, 2:] / np.sqrt(np.outer(np.diag(cov)[:2], np.diag(cov)[2:]))
    assert np.all(np.abs(cross) < 0.1), cross
    sd = np.sqrt(np.diag(mf))
    assert np.all(np.abs(draws.mean(0) - target.reference.mean) < 0.3 * sd)


@pytest.mark.slow
def test_dropout_lies_between_the_mean_field_and_the_posterior():
    """Dropout with p = 0.5: each other group is current half the time, so the variances
    lie between the mean field's and the posterior's (measured: 1.2–1.3× the mean field,
    the posterior's being 2.3–2.6×)."""
    target, mf, _, cov = _block_gaussian_run(True, 2000, 0.01, 40000, 4)
    ratio = np.diag(cov) / np.diag(mf)
    upper = np.diag(target.reference.cov) / np.diag(mf)
    assert np.all((ratio > 1.1) & (ratio < 0.7 * upper)), (ratio, upper)


def test_bad_input_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match="groups must use every id"):
        StructuredSGLD(0.1, groups=(0, 2), n_data=10, batch_size=2)
    with pytest.raises(ValueError, match="groups has 2 entries but the target has dim=3"):
        StructuredSGLD(0.1, groups=(0, 1), n_data=10, batch_size=2).noise(3)
    with pytest.raises(ValueError, match="keep_prob"):
        StructuredSGLD(0.1, groups=(0, 1), n_data=10, batch_size=2, keep_prob=0.0)
    with pytest.raises(ValueError, match="buffer_size"):
        StructuredSGLD(0.1, groups=(0, 1), n_data=10, batch_size=2, buffer_size=0)
    with pytest.raises(ValueError, match="step_size"):
        StructuredSGLD(0.0, groups=(0, 1), n_data=10, batch_size=2)
    k = StructuredSGLD(0.1, groups=(0, 1), n_data=10, batch_size=2, buffer_size=7)
    assert type(k).__name__ == "StructuredSGLD_K7" and isinstance(k, StructuredSGLD)
    assert dataclasses.replace(k, step_size=0.2).buffer_size == 7
    assert sorted(set(group_randomly(10, 3))) == [0, 1, 2]
