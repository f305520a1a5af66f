"""SG-MCMC kernels: exact stationary laws on the conjugate linear regression, exact
identities (full batch = ULA; SGHMC with exact gradients = its deterministic recursion;
pSGLD and SGNHT = the papers' updates), the gradient-noise estimate, and the conformance
checks of the suite run here on a data target (the suite's Gaussian target has no
``loglik``).

Exact laws (ALGORITHMS.md §4a, generalised): on linear regression every minibatch gradient
is affine in θ, ``ĝ_B(θ) = −K_B θ + k_B`` with ``(K_B, k_B)`` affine in the batch sums
``Z_B = Σ_{i∈B} z_i`` of per-datum statistics. A kernel step is then ``z' = M_B z + c_B +
L ξ`` with ``(M_B, c_B)`` affine in ``Z_B`` and independent of the state, so its stationary
law is Gaussian with mean ``μ = (I − E M)⁻¹ E c`` and covariance solving
``vec S = (I − E[M⊗M])⁻¹ vec(E[u uᵀ] + L Lᵀ)``, ``u = M_B μ + c_B − μ``; the batch-sum
moments are the finite-population ones, ``E Z_B = b z̄`` and
``Cov Z_B = b (1 − b/n) S_z`` (``S_z`` with an ``n − 1`` denominator). Everything below is
derived here in NumPy, independently of the kernel code.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import langevin
from langevin.backends import jax_backend, numba_backend, numpy_ops
from langevin.backends.portable import make_twin
from langevin.kernels.sgmcmc import (
    PSGLD,
    SGHMC,
    SGHMCCV,
    SGLD,
    SGLDCV,
    SGNHT,
    SGLDWithGradientNoise,
    find_mode,
    minibatch_estimate_with_noise,
)
from langevin.kernels.structured_sgmcmc import StructuredSGLD
from langevin.spec import Index, NoiseKind, draw_numpy
from langevin.targets.data_targets import linear_regression_data
from tests.stats_helpers import Z_CRIT, assert_z_ok, moment_z_scores

ALL = [SGLD, SGLDCV, SGHMC, SGHMCCV, PSGLD, SGNHT, StructuredSGLD]


# -- the conjugate model --------------------------------------------------------------------------
def regression(n=40, d=2, seed=0, noise_sd=1.0, prior_sd=2.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.array([1.0, 0.6, 1.3][:d])
    y = X @ np.array([1.0, -0.5, 0.3][:d]) + noise_sd * rng.normal(size=n)
    return linear_regression_data(X, y, noise_sd=noise_sd, prior_sd=prior_sd), X, y


def per_datum_stats(X, y, noise_sd):
    """z_i = (vec(x_i x_iᵀ)/σ², x_i y_i/σ²): H_B and q_B are the two blocks of Σ_B z_i."""
    outer = np.einsum("ni,nj->nij", X, X).reshape(len(X), -1) / noise_sd**2
    return np.hstack([outer, X * y[:, None] / noise_sd**2])


def affine_law(affine, Z, b, n, noise_chol):
    """Stationary (mean, cov) of z' = M_B z + c_B + L ξ with (M, c) = affine(Z_B)."""
    zbar = Z.mean(0)
    cov_batch = b * (1.0 - b / n) * np.cov(Z.T, ddof=1)
    M0, c0 = affine(b * zbar)
    coefs = []
    for k in range(Z.shape[1]):
        e = np.zeros(Z.shape[1])
        e[k] = 1.0
        Mk, ck = affine(b * zbar + e)
        coefs.append((Mk - M0, ck - c0))
    m = M0.shape[0]
    mu = np.linalg.solve(np.eye(m) - M0, c0)
    EMM = np.kron(M0, M0)
    Euu = np.zeros((m, m))
    for k, (Mk, ck) in enumerate(coefs):
        uk = Mk @ mu + ck
        for j, (Mj, cj) in enumerate(coefs):
            EMM += cov_batch[k, j] * np.kron(Mk, Mj)
            Euu += cov_batch[k, j] * np.outer(uk, Mj @ mu + cj)
    Q = Euu + noise_chol @ noise_chol.T
    S = np.linalg.solve(np.eye(m * m) - EMM, Q.ravel()).reshape(m, m)
    return mu, 0.5 * (S + S.T)


def split(Z, d):
    return Z[: d * d].reshape(d, d), Z[d * d :]


def sgld_law(h, b, n, X, y, noise_sd, prior_sd, centre=None):
    """SGLD (or SGLD-CV around ``centre``) on linear regression: exact stationary law."""
    d = X.shape[1]
    P0 = np.eye(d) / prior_sd**2
    full_grad_at_centre = None
    if centre is not None:
        full_grad_at_centre = X.T @ (y - X @ centre) / noise_sd**2

    def affine(Zb):
        H, q = split(Zb, d)
        if centre is None:
            K, k = P0 + (n / b) * H, (n / b) * q
        else:  # ĝ = −P0 θ + ∇ℓ(θ̂) − (n/b) H_B (θ − θ̂)
            K, k = P0 + (n / b) * H, full_grad_at_centre + (n / b) * H @ centre
        return np.eye(d) - h * K, h * k

    return affine_law(affine, per_datum_stats(X, y, noise_sd), b, n, np.sqrt(2 * h) * np.eye(d))


def sghmc_law(h, friction, b, n, X, y, noise_sd, prior_sd, b_hat=0.0):
    """SGHMC on linear regression: exact stationary law of (θ, r)."""
    d = X.shape[1]
    P0 = np.eye(d) / prior_sd**2
    a = 1.0 - h * friction
    s = np.sqrt(2.0 * (friction - b_hat) * h)

    def affine(Zb):
        H, q = split(Zb, d)
        K, k = P0 + (n / b) * H, (n / b) * q
        M = np.block([[np.eye(d) - h * h * K, h * a * np.eye(d)], [-h * K, a * np.eye(d)]])
        return M, np.concatenate([h * h * k, h * k])

    L = np.vstack([h * s * np.eye(d), s * np.eye(d)])
    return affine_law(affine, per_datum_stats(X, y, noise_sd), b, n, L)


def run_chains(target, kernel, backend, chains, draws, seed, warmup=500):
    """Chains from the posterior mean, in the backend's default precision (float32 on JAX
    unless x64 is on: its round-off is far below these tests' Monte Carlo errors)."""
    dtype = jax_backend.default_float() if backend == "jax" else np.float64
    return langevin.sample(target, kernel, backend=backend, chains=chains, draws=draws,
                           warmup=warmup, seed=seed, progress=False,
                           initial_position=target.reference.mean.astype(dtype))  # fmt: skip


def test_the_exact_law_is_far_from_the_posterior_and_from_ula():
    """The closed form is informative: minibatch noise inflates the covariance well beyond
    ULA's O(h) inflation (so the test below would see a wrong noise scaling)."""
    target, X, y = regression()
    h, b, n = 0.01, 4, 40
    mu, S = sgld_law(h, b, n, X, y, 1.0, 2.0)
    np.testing.assert_allclose(mu, target.reference.mean, rtol=1e-10)
    A = np.linalg.inv(target.reference.cov)
    S_ula = np.linalg.inv(A - 0.5 * h * A @ A)
    _, S_full = sgld_law(h, n, n, X, y, 1.0, 2.0)  # b = n: ULA's law
    np.testing.assert_allclose(S_full, S_ula, rtol=1e-10)
    assert np.all(np.diag(S) > 1.3 * np.diag(S_ula))


@pytest.mark.parametrize("backend", ["numba", pytest.param("jax", marks=pytest.mark.slow)])
def test_sgld_stationary_law_on_linear_regression(backend):
    """Mean and covariance of SGLD at a fixed step and batch size against the exact law, in
    MCSE units (z-tests of every mean, variance and covariance)."""
    target, X, y = regression()
    h, b, n = 0.01, 4, 40
    mu, S = sgld_law(h, b, n, X, y, 1.0, 2.0)
    trace = run_chains(target, SGLD(h, batch_size=b, n_data=n), backend, 8, 10000, 1)
    assert_z_ok(moment_z_scores(trace.draws, mu, S))
    # the minibatch-noise term is visible: the law without it (ULA's, the O(h) term alone)
    # and the posterior itself are rejected by the same draws
    _, S_ula = sgld_law(h, n, n, X, y, 1.0, 2.0)
    for wrong in (S_ula, target.reference.cov):
        zs = moment_z_scores(trace.draws, mu, wrong)
        assert max(abs(zs[f"cov[{i},{i}]"]) for i in range(2)) > 3 * Z_CRIT, zs


def test_sgldcv_stationary_law_on_linear_regression():
    """SGLD-CV around a point off the mode: the exact law has the posterior mean and a
    covariance inflated by the centred noise (n/b)H_B(θ − θ̂) only."""
    target, X, y = regression()
    h, b, n = 0.01, 4, 40
    centre = target.reference.mean + np.array([0.3, -0.2])
    v, g = target.full_loglik(centre)
    kernel = SGLDCV(h, batch_size=b, n_data=n, centre=tuple(centre), centre_grad=tuple(g),
                    centre_loglik=v)  # fmt: skip
    mu, S = sgld_law(h, b, n, X, y, 1.0, 2.0, centre=centre)
    _, S_plain = sgld_law(h, b, n, X, y, 1.0, 2.0)
    assert np.all(np.diag(S) < 0.9 * np.diag(S_plain))  # control variates reduce the noise
    trace = run_chains(target, kernel, "numba", 8, 10000, 2)
    assert_z_ok(moment_z_scores(trace.draws, mu, S))


def test_sghmc_stationary_law_on_linear_regression():
    """SGHMC's (θ, r) chain is linear too: θ-moments against its exact law, with the
    noise correction B̂ > 0 in the injected noise."""
    target, X, y = regression()
    h, friction, b, n, v_hat = 0.05, 4.0, 4, 40, 60.0
    kernel = SGHMC(h, batch_size=b, n_data=n, friction=friction, noise_estimate=v_hat)
    mu, S = sghmc_law(h, friction, b, n, X, y, 1.0, 2.0, b_hat=0.5 * h * v_hat)
    trace = run_chains(target, kernel, "numba", 8, 10000, 3)
    assert_z_ok(moment_z_scores(trace.draws, mu[:2], S[:2, :2]))


# -- exact identities ----------------------------------------------------------------------------
def _run(backend, kernel, target, noise, init_noise, x0, dim):
    be = numba_backend if backend == "numba" else jax_backend
    p = be.prepare(kernel, target, dim, np.float64)
    state = be.init(p, x0, noise=init_noise)
    steps = noise.normal.shape[1]
    return be.run(p, state, steps, np.full(x0.shape[0], kernel.step_size), noise=noise)


@pytest.mark.parametrize("backend", ["numba", "jax"])
@pytest.mark.parametrize("gradient_noise", [False, True])
def test_sgld_with_the_full_batch_is_ula(backend, gradient_noise):
    """b = n: every minibatch is the whole data set, and SGLD equals ULA on the same normals
    to 1e-12 (the gradients differ only by the order of summation), with and without the
    gradient-noise estimate (which is then 0: the factor 1 − b/n; NaN when not asked for)."""
    target, _, _ = regression(n=30, d=3)
    kernel = SGLD(0.01, batch_size=30, n_data=30, gradient_noise=gradient_noise)
    noise = draw_numpy(kernel.noise(3), np.random.default_rng(4), (2, 50))
    init_noise = draw_numpy(kernel.init_noise(3), np.random.default_rng(5), (2,))
    x0 = np.random.default_rng(6).normal(size=(2, 3))
    with jax.enable_x64(True):
        sg = _run(backend, kernel, target, noise, init_noise, x0, 3)
        ula_kernel = langevin.ULA(0.01)
        ula_noise = type(ula_kernel.noise(3))(noise.normal)
        ula = _run(backend, ula_kernel, target, ula_noise, None, x0, 3)
    np.testing.assert_allclose(sg.position, ula.position, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sg.logdensity, ula.logdensity, rtol=1e-12)
    if gradient_noise:
        np.testing.assert_allclose(sg.info["gradient_noise"], 0.0, atol=1e-9)  # (1 − b/n) = 0
    else:
        assert np.all(np.isnan(sg.info["gradient_noise"]))


def _full_grad(target, x):
    return target.full_value_and_grad(x)[1]


@pytest.mark.parametrize("backend", ["numba", "jax"])
@pytest.mark.parametrize("noise_estimate", [False, True])
def test_sghmc_without_gradient_noise_is_its_deterministic_recursion(backend, noise_estimate):
    """b = n: SGHMC is r' = (1 − hC) r + h∇log π(θ) + √(2(C − B̂)h) ξ, θ' = θ + h r' with
    exact gradients and B̂ = ½hV̂, written here in NumPy (1e-12 on the same noise); with
    V̂ = 0 (no gradient noise) it is the deterministic-gradient SGHMC of Chen et al."""
    target, _, _ = regression(n=25, d=2)
    h, C, v_hat = 0.05, 2.0, 8.0 if noise_estimate else 0.0
    kernel = SGHMC(h, batch_size=25, n_data=25, friction=C, noise_estimate=v_hat)
    noise = draw_numpy(kernel.noise(2), np.random.default_rng(7), (2, 40))
    init_noise = draw_numpy(kernel.init_noise(2), np.random.default_rng(8), (2,))
    x0 = np.random.default_rng(9).normal(size=(2, 2))
    with jax.enable_x64(True):
        out = _run(backend, kernel, target, noise, init_noise, x0, 2)
    for c in range(2):
        x, r = x0[c].copy(), init_noise.normal[c].copy()
        for t in range(40):
            kick = (
                h * _full_grad(target, x)
                + np.sqrt(2 * (C - 0.5 * h * v_hat) * h) * noise.normal[c, t]
            )
            r = (1 - h * C) * r + kick
            x = x + h * r
            np.testing.assert_allclose(out.position[c, t], x, rtol=0, atol=1e-12)


def _minibatch_grad(target, x, idx, n):
    lik = target.numba_functions["loglik"](x, idx, target.data)[1]
    prior = target.numba_functions["logprior"](x, target.data)[1]
    return prior, lik, prior + (n / len(idx)) * lik


def test_psgld_is_li_et_al_algorithm_1():
    """pSGLD against a NumPy transcription of Li et al. (2016), Alg. 1 without Γ: V ← αV +
    (1 − α) ḡ⊙ḡ (ḡ the mean per-datum gradient), G = 1/(λ + √V),
    θ ← θ + (ε/2) G ĝ + N(0, ε G) with ε = 2h."""
    target, _, _ = regression(n=40, d=2)
    h, alpha, lam, b, n = 0.01, 0.9, 1e-3, 5, 40
    kernel = PSGLD(h, batch_size=b, n_data=n, alpha=alpha, lam=lam)
    noise = draw_numpy(kernel.noise(2), np.random.default_rng(10), (1, 30))
    init_noise = draw_numpy(kernel.init_noise(2), np.random.default_rng(11), (1,))
    x0 = np.array([[0.5, -0.5]])
    out = _run("numba", kernel, target, noise, init_noise, x0, 2)
    eps = 2 * h
    x, V = x0[0].copy(), np.zeros(2)
    batches = [init_noise.batch[0]] + [noise.batch[0, t] for t in range(30)]
    for t in range(30):
        _, lik, ghat = _minibatch_grad(target, x, batches[t], n)
        V = alpha * V + (1 - alpha) * (lik / b) ** 2
        G = 1.0 / (lam + np.sqrt(V))
        x = x + 0.5 * eps * G * ghat + np.sqrt(eps * G) * noise.normal[0, t]
        np.testing.assert_allclose(out.position[0, t], x, rtol=0, atol=1e-12)


def test_sgnht_is_ding_et_al_algorithm_2():
    """SGNHT against a NumPy transcription of Ding et al. (2014), Alg. 2 (∇Ũ = −ĝ)."""
    target, _, _ = regression(n=40, d=2)
    h, A, b, n = 0.02, 1.5, 5, 40
    kernel = SGNHT(h, batch_size=b, n_data=n, diffusion=A)
    noise = draw_numpy(kernel.noise(2), np.random.default_rng(12), (1, 30))
    init_noise = draw_numpy(kernel.init_noise(2), np.random.default_rng(13), (1,))
    x0 = np.array([[0.5, -0.5]])
    out = _run("numba", kernel, target, noise, init_noise, x0, 2)
    x, p, xi = x0[0].copy(), init_noise.normal[0].copy(), A
    batches = [init_noise.batch[0]] + [noise.batch[0, t] for t in range(30)]
    for t in range(30):
        grad_u = -_minibatch_grad(target, x, batches[t], n)[2]
        p = p - xi * p * h - grad_u * h + np.sqrt(2 * A) * np.sqrt(h) * noise.normal[0, t]
        x = x + p * h
        xi = xi + (p @ p / 2 - 1) * h
        np.testing.assert_allclose(out.position[0, t], x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.state.thermostat[0], xi, rtol=1e-12)


def test_polynomial_schedule_is_applied_on_both_backends():
    target, _, _ = regression()
    kernel = SGLD(0.02, batch_size=4, n_data=40, decay=10.0, gamma=0.55)
    noise = draw_numpy(kernel.noise(2), np.random.default_rng(14), (2, 25))
    init_noise = draw_numpy(kernel.init_noise(2), np.random.default_rng(15), (2,))
    expected = 0.02 * (1 + np.arange(25) / 10.0) ** -0.55
    with jax.enable_x64(True):
        for backend in ("numba", "jax"):
            out = _run(backend, kernel, target, noise, init_noise, np.zeros((2, 2)), 2)
            np.testing.assert_allclose(out.info["scheduled_step"], np.tile(expected, (2, 1)),
                                       rtol=1e-12)  # fmt: skip
            np.testing.assert_array_equal(np.asarray(out.state.iteration), 25)


# -- the gradient-noise estimate ---------------------------------------------------------------
@pytest.mark.parametrize("b", [6, 7])
def test_gradient_noise_estimate_is_unbiased(b):
    """E[gradient_noise] = tr Cov(ĝ) = n²(1 − b/n) S²/b over minibatches (S² the population
    variance of the per-datum gradients), z-test over 4000 batches; even and odd b."""
    target, X, y = regression(n=60, d=2, seed=3)
    n = 60
    x = np.array([0.2, 0.4])
    per_datum = X * ((y - X @ x) / 1.0)[:, None]
    s2 = np.sum(np.var(per_datum, axis=0, ddof=1))
    truth = n * n * (1 - b / n) * s2 / b
    estimate = make_twin(minibatch_estimate_with_noise, numpy_ops, lambda f: f, {})
    form = numba_backend.bind_target(target)
    params = SGLD(0.1, batch_size=b, n_data=n).params()
    rng = np.random.default_rng(16)
    draws, grads = [], []
    for _ in range(4000):
        est = estimate(form.build(form.data), x, Index(n, b).draw_numpy(rng), params)
        draws.append(est.noise)
        grads.append(est.grad)
    draws = np.array(draws)
    z = (draws.mean() - truth) / (draws.std(ddof=1) / np.sqrt(len(draws)))
    assert abs(z) < Z_CRIT, (draws.mean(), truth, z)
    # and the realised variance of the gradient estimate is that truth
    realised = np.sum(np.var(np.array(grads), axis=0, ddof=1))
    assert abs(realised / truth - 1) < 0.15, (realised, truth)


# -- the mode search ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_find_mode_reaches_the_posterior_mean(method):
    target, X, y = regression(n=200, d=2)
    kw = {"max_iter": 4000, "learning_rate": 0.01, "batch_size": 50} if method == "adam" else {}
    mode = find_mode(target, method=method, **kw)
    tol = 1e-6 if method == "lbfgs" else 0.1 * np.sqrt(np.diag(target.reference.cov)).min()
    np.testing.assert_allclose(mode.position, target.reference.mean, atol=tol)
    np.testing.assert_allclose(mode.loglik_grad, X.T @ (y - X @ mode.position), rtol=1e-10)
    if method == "lbfgs":
        with jax.enable_x64(True):
            mode_jax = find_mode(target, backend="jax")
        np.testing.assert_allclose(mode_jax.position, mode.position, atol=1e-6)


# -- the conformance checks, on a data target (the suite's Gaussian has no loglik) --------------
CHAINS, STEPS, DIM = 3, 60, 4


def make(cls, step_size=0.05):
    """The kernel's ``for_conformance`` instance on the data target (the hook proposed for
    the conformance suite)."""
    target = conformance_target()
    return cls.for_conformance(step_size, target), target


def conformance_target():
    return SGLD.example_target(DIM)


@pytest.mark.parametrize("cls", ALL, ids=lambda k: k.__name__)
def test_declared_properties(cls):
    kernel, _ = make(cls)
    assert dataclasses.is_dataclass(kernel) and kernel.__dataclass_params__.frozen
    assert not cls.exact and cls.bias_order > 0
    assert {"acceptance_rate", "diverging", "gradient_noise"} <= set(cls.Info._fields)
    assert isinstance(cls.example(), cls)
    for d in (*kernel.noise(DIM), *kernel.init_noise(DIM)):
        assert isinstance(d, NoiseKind)
    for bad, err in ((0.0, ValueError), (-1.0, ValueError), ("0.1", TypeError)):
        with pytest.raises(err, match="step_size"):
            dataclasses.replace(kernel, step_size=bad)


@pytest.mark.parametrize("cls", ALL, ids=lambda k: k.__name__)
def test_same_noise_same_chain(cls):
    # the suite's step size (h·λ_max ≈ 1 on this target)
    kernel, target = make(cls, 0.1)
    noise = draw_numpy(kernel.noise(DIM), np.random.default_rng(0), (CHAINS, STEPS))
    init_noise = draw_numpy(kernel.init_noise(DIM), np.random.default_rng(2), (CHAINS,))
    x0 = np.random.default_rng(1).standard_normal((CHAINS, DIM))
    with jax.enable_x64(True):
        r_nb = _run("numba", kernel, target, noise, init_noise, x0, DIM)
        r_jx = _run("jax", kernel, target, noise, init_noise, x0, DIM)
    np.testing.assert_allclose(r_nb.position, r_jx.position, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r_nb.logdensity, r_jx.logdensity, rtol=1e-12, atol=1e-12)
    assert set(r_nb.info) == set(r_jx.info) == set(type(kernel).Info._fields)
    for name in r_nb.info:
        np.testing.assert_allclose(r_nb.info[name], r_jx.info[name], rtol=1e-12, atol=1e-12)
    assert np.all(np.abs(r_nb.position[:, -1] - x0) > 0)
    assert np.abs(r_nb.position).max() < 50
    for a, b in zip(r_nb.state, r_jx.state):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)


# Each case compiles more loops (JAX runners, the Numba loop drawing its own noise; about
# 5 s): two kernels by default, all when slow.
_SLOW_REST = [c if c in (SGLD, SGHMC) else pytest.param(c, marks=pytest.mark.slow) for c in ALL]


@pytest.mark.parametrize("cls", _SLOW_REST, ids=lambda k: k.__name__)
def test_state_structure_is_stable_and_float32_is_kept(cls):
    kernel, target = make(cls, 0.05)
    p = numba_backend.prepare(kernel, target, DIM, np.float64)
    s0 = numba_backend.init(p, np.zeros((CHAINS, DIM)))
    rngs = [np.random.default_rng(s) for s in range(CHAINS)]
    r = numba_backend.run(p, s0, 20, np.full(CHAINS, kernel.step_size), rngs=rngs)
    assert type(r.state) is type(s0) is type(kernel).State
    for a, b in zip(s0, r.state):
        assert np.shape(a) == np.shape(b) and np.asarray(a).dtype == np.asarray(b).dtype
    x0 = np.zeros((CHAINS, DIM), np.float32)
    trace = langevin.sample(target, kernel, backend="jax", chains=CHAINS, warmup=20, draws=30,
                            initial_position=x0, seed=0, progress=False)  # fmt: skip
    assert trace.draws.dtype == np.float32 and np.all(np.isfinite(trace.draws))
    pj = jax_backend.prepare(kernel, target, DIM, np.float32)
    sj = jax_backend.init(pj, x0)
    rj = jax_backend.run(pj, sj, 10, np.full(CHAINS, kernel.step_size),
                         keys=jax_backend.chain_keys(0, CHAINS))  # fmt: skip
    assert jax.tree_util.tree_structure(rj.state) == jax.tree_util.tree_structure(sj)
    for a, b in zip(jax.tree_util.tree_leaves(sj), jax.tree_util.tree_leaves(rj.state)):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert a.dtype in (np.float32, np.int32, np.int64)


@pytest.mark.parametrize("cls", _SLOW_REST, ids=lambda k: k.__name__)
def test_numba_draws_in_loop_as_draw_noise_does(cls):
    kernel, target = make(cls)
    p = numba_backend.prepare(kernel, target, DIM, np.float64)
    states = numba_backend.init(p, np.zeros((CHAINS, DIM)))

    def rngs():
        return [np.random.default_rng(s) for s in np.random.SeedSequence(9).spawn(CHAINS)]

    step = np.full(CHAINS, kernel.step_size)
    own = numba_backend.run(p, states, STEPS, step, rngs=rngs())
    given = numba_backend.run(
        p, states, STEPS, step, noise=numba_backend.draw_noise(kernel, DIM, STEPS, rngs())
    )
    np.testing.assert_array_equal(own.position, given.position)


# -- input checks -----------------------------------------------------------------------------
def test_bad_input_is_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="batch_size"):
        SGLD(0.1, batch_size=0, n_data=10)
    with pytest.raises(ValueError, match=r"batch_size \(20\) must be at most n_data"):
        SGLD(0.1, batch_size=20, n_data=10)
    with pytest.raises(ValueError, match="needs n_data"):
        SGLD(0.1).noise(2)
    with pytest.raises(ValueError, match="gamma"):
        SGLD(0.1, n_data=10, batch_size=2, gamma=-1.0)
    with pytest.raises(ValueError, match="friction"):
        SGHMC(0.1, n_data=10, batch_size=2, friction=0.0)
    with pytest.raises(ValueError, match="alpha"):
        PSGLD(0.1, n_data=10, batch_size=2, alpha=1.0)
    with pytest.raises(ValueError, match="centre"):
        SGLDCV(0.1, n_data=10, batch_size=2).params()
    gauss = langevin.targets.gaussian(2)
    for backend in ("numba", "jax"):
        with pytest.raises(TypeError, match="SGLD requires the target capability 'loglik'"):
            langevin.sample(gauss, SGLD(0.1, batch_size=2, n_data=10), backend=backend,
                            progress=False)  # fmt: skip


def test_sample_keeps_sg_chains_whose_log_density_estimate_is_noisy():
    """n/b = 1000: the estimate (n/b) Σ_B log p(d_i | θ) fluctuates by thousands at the mode;
    the chains are stable (h·λ_max ≈ 0.1) and must run to the end."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20000, 3))
    y = (rng.uniform(size=20000) < 1 / (1 + np.exp(-X @ np.ones(3)))).astype(float)
    from langevin.targets.data_targets import logistic_regression_data

    target = logistic_regression_data(X, y)
    kernel = SGLD(2e-5, batch_size=20, n_data=20000)
    start = find_mode(target).position
    trace = langevin.sample(target, kernel, backend="numba", chains=2, warmup=0, draws=300,
                            seed=0, progress=False, initial_position=start)  # fmt: skip
    assert not trace.diverged


def test_the_jax_init_draw_compiles_once(monkeypatch):
    """A second ``sample`` of an SG kernel on JAX re-traces nothing at ``init``: run eagerly,
    the minibatch drawer's ``fori_loop`` was traced and compiled at every call (0.5-0.9 s of
    each ``sample``, 13x the time of a 500-step run)."""
    traced = []
    draw = jax_backend._draw

    def counting(spec, key, dtype, length):
        traced.append(length)
        return draw(spec, key, dtype, length)

    monkeypatch.setattr(jax_backend, "_draw", counting)
    target, _, _ = regression(n=7, d=3)
    kernel = SGLD(1e-2, batch_size=3, n_data=7)  # init noise: the minibatch (Index) draw
    prepared = jax_backend.prepare(kernel, target, 3, np.float32)
    keys = jax_backend.chain_keys(0, 2)
    first = jax_backend.init(prepared, np.zeros((2, 3)), keys=keys)
    second = jax_backend.init(prepared, np.zeros((2, 3)), keys=keys)
    assert traced == [1]
    for a, b in zip(jax.tree_util.tree_leaves(first), jax.tree_util.tree_leaves(second)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# -- the gradient-noise option: computed only when asked for ------------------------------------
def test_gradient_noise_option_picks_the_class_and_survives_copies():
    import pickle

    plain = SGLD(0.1, batch_size=2, n_data=10)
    noisy = SGLD(0.1, batch_size=2, n_data=10, gradient_noise=True)
    assert type(plain) is SGLD and not plain.gradient_noise
    assert type(noisy) is SGLDWithGradientNoise and noisy.gradient_noise
    assert noisy.name == "SGLD" and isinstance(noisy, SGLD)
    assert type(dataclasses.replace(noisy, gradient_noise=False)) is SGLD
    # the plain class is no subclass of the noisy one: its instance is still initialised
    assert dataclasses.replace(noisy, gradient_noise=False) == plain
    assert type(dataclasses.replace(plain, gradient_noise=True)) is SGLDWithGradientNoise
    assert type(dataclasses.replace(noisy, step_size=0.2)) is SGLDWithGradientNoise
    back = pickle.loads(pickle.dumps(noisy))
    assert back == noisy and type(back) is SGLDWithGradientNoise
    assert SGLD.step_math is not SGLDWithGradientNoise.step_math
    for cls in (SGHMC, PSGLD, SGNHT):
        k = cls(0.1, batch_size=2, n_data=10, gradient_noise=True)
        assert k.gradient_noise and type(k).computes_gradient_noise and k.name == cls.__name__
    with pytest.raises(TypeError, match="gradient_noise"):
        SGLD(0.1, batch_size=2, n_data=10, gradient_noise="yes")


@pytest.mark.parametrize("cls", [SGLD, pytest.param(SGHMCCV, marks=pytest.mark.slow)],
                         ids=lambda k: k.__name__)  # fmt: skip
def test_gradient_noise_changes_no_draw(cls, x64):
    """Same noise, b < n: the chain with the gradient-noise estimate (two half-batch calls)
    is the chain without it (one whole-batch call) up to the order of summation, on both
    backends; its ``gradient_noise`` is finite and positive, the other's NaN."""
    target = conformance_target()
    kernel = cls.for_conformance(0.1, target)
    noisy = dataclasses.replace(kernel, gradient_noise=True)
    noise = draw_numpy(kernel.noise(DIM), np.random.default_rng(3), (2, 30))
    init_noise = draw_numpy(kernel.init_noise(DIM), np.random.default_rng(4), (2,))
    x0 = np.random.default_rng(5).standard_normal((2, DIM))
    for backend in ("numba", "jax"):
        a = _run(backend, kernel, target, noise, init_noise, x0, DIM)
        b = _run(backend, noisy, target, noise, init_noise, x0, DIM)
        np.testing.assert_allclose(a.position, b.position, rtol=0, atol=1e-12)
        np.testing.assert_allclose(a.logdensity, b.logdensity, rtol=1e-12, atol=1e-12)
        assert np.all(np.isnan(a.info["gradient_noise"]))
        assert np.all(np.isfinite(b.info["gradient_noise"]) & (b.info["gradient_noise"] > 0))


# -- the minibatch draw (langevin.spec.Index) ---------------------------------------------------
def test_index_draw_is_the_same_from_numpy_and_from_the_numba_loop():
    """``Index.draw_numpy`` and the Numba in-loop drawer consume one generator identically:
    the common case, Lemire's rejections (at the bound 3·2²⁹ one 32-bit word in four is
    drawn again) and the ``rng.integers`` path of bounds past 2³¹; and each draw is ``size``
    distinct items."""
    from langevin.spec import _numba_drawers

    draw = _numba_drawers()[("index", 1)]
    for n, size in [(5, 5), (12, 5), (100_000, 100), (3 * 2**29 + 2, 3), (2**31 + 5, 4)]:
        r1, r2 = np.random.default_rng(n), np.random.default_rng(n)
        for _ in range(100):
            a, c = Index(n, size).draw_numpy(r1), draw(r2, (n, size))
            np.testing.assert_array_equal(a, c)
            assert len(set(a.tolist())) == size and 0 <= a.min() and a.max() < n
        assert r1.random() == r2.random()  # and both left the generator in one state


def test_index_draw_bounded_integers_are_exactly_uniform():
    """Lemire's rejection is what makes the bounded integers uniform: at the bound
    m = 3·2²⁹ the multiply-and-shift alone gives residues mod 3 in proportions 3:3:2 (a
    pattern of period 8 in the 32-bit word); with the rejection (one word in four) they
    are uniform. Chi-square over 30 000 draws of ``Index(m, 1)``."""
    from scipy.stats import chi2

    from langevin.spec import floyd_draws_numpy

    m = 3 * 2**29
    rng = np.random.default_rng(11)
    t = np.concatenate([floyd_draws_numpy(rng, m, 1) for _ in range(30_000)])
    counts = np.bincount(t % 3, minlength=3)
    stat = np.sum((counts - 10_000) ** 2 / 10_000)
    assert chi2.sf(stat, 2) > 1e-5, counts


def test_the_jax_index_draw_is_the_same_with_x64_on_and_off():
    """A key gives the same minibatches in float32 and float64 runs (32-bit bounded draws
    either way), each row of distinct indices below n, in the default integer type."""
    import jax.numpy as jnp

    spec = Index(10**5, 100)
    draws = {}
    for x64 in (False, True):
        with jax.enable_x64(x64):
            out = jax.jit(lambda k: spec.draw_jax(k, (200,), jnp.float32))(jax.random.key(4))
            assert out.dtype == jnp.zeros((), int).dtype
            draws[x64] = np.asarray(out)
    np.testing.assert_array_equal(draws[False], draws[True])
    assert draws[True].min() >= 0 and draws[True].max() < 10**5
    assert all(len(set(row)) == 100 for row in draws[True].tolist())


def test_the_jax_block_draw_is_floyd_s():
    """``floyd_indices_block`` (JAX, every row at once) gives ``floyd_indices`` (the
    reference loop) row by row, on draws with many clashes (small n) and with none."""
    import jax.numpy as jnp

    from langevin.spec import floyd_indices, floyd_indices_block

    rng = np.random.default_rng(2)
    for n, size in [(5, 5), (10, 7), (64, 33), (10**6, 50)]:
        t = np.stack([[rng.integers(0, n - size + k + 1) for k in range(size)]
                      for _ in range(300)])  # fmt: skip
        got = np.asarray(jax.jit(floyd_indices_block, static_argnums=1)(jnp.asarray(t), n))
        expected = np.stack([floyd_indices(row, n) for row in t])
        np.testing.assert_array_equal(got, expected)
    # n ≫ size with clashes planted in some rows only (the block draw iterates just those):
    # a repeated draw, a draw of a spare j_i = n − size + i (i < k), chains of both
    n, size = 1000, 8
    t = np.stack([[rng.integers(0, n - size + k + 1) for k in range(size)]
                  for _ in range(40)])  # fmt: skip
    t[3, 5] = t[3, 2]  # repeat: position 5 takes j_5
    t[7, 6] = n - size + 4  # j_4 before it was taken: no clash
    t[8, 4], t[8, 6] = t[8, 1], n - size + 4  # j_4 taken at 4, then drawn at 6: takes j_6
    t[9, 2], t[9, 3], t[9, 7] = t[9, 0], n - size + 2, n - size + 3  # a chain of spares
    got = np.asarray(jax.jit(floyd_indices_block, static_argnums=1)(jnp.asarray(t), n))
    expected = np.stack([floyd_indices(row, n) for row in t])
    np.testing.assert_array_equal(got, expected)
    assert expected[8, 6] == n - size + 6 and expected[9, 7] == n - size + 7
