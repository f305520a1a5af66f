"""Federated Langevin (DSGLD, FSGLD, FA-LD): exact identities, closed-form stationary laws,
backend agreement, communication accounting and argument checks.

Models (both linear in θ, so every chain here is a linear recursion with an exact law):

* the *location model* ``z_i ~ N(θ, I)``, prior ``N(0, I/τ0)``, split non-IID over 8
  clients of different sizes and centres: minibatch gradients have additive noise
  (``Σ_B (z_i − θ)``), so FSGLD's and DSGLD's stationary means and covariances are closed
  forms (ALGORITHMS.md §4a–4b);
* conjugate linear regression (``linear_regression_data``) split by a sorted covariate, with
  full-shard gradients: FA-LD's round map is affine-Gaussian, its stationary law the solution
  of a discrete Lyapunov equation over one round (clients stacked: after each
  synchronisation they share one state).
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from benchmarks.federated_bounds import fald_round_law, linreg_clients
from benchmarks.federated_bounds import main as federated_bounds_main
from langevin.federated import (
    DSGLD,
    FALD,
    FSGLD,
    GaussianSurrogates,
    fit_surrogates,
    partition_sorted,
    sample_federated,
    split,
)
from langevin.targets.base import Reference
from langevin.targets.data_targets import DataTarget
from tests.stats_helpers import assert_z_ok, moment_z_scores

C = 8


# -- the location model ----------
@numba.njit
def _loc_loglik(theta, idx, data):
    Z = data[0]
    d = theta.shape[0]
    value = 0.0
    grad = np.zeros(d)
    for k in range(idx.shape[0]):
        i = idx[k]
        for j in range(d):
            r = Z[i, j] - theta[j]
            value -= 0.5 * r * r
            grad[j] += r
    return value, grad


@numba.njit
def _loc_prior(theta, data):
    prec = data[1][0]
    return -0.5 * prec * np.dot(theta, theta), -prec * theta


@numba.njit
def _loc_full(theta, data):
    v, g = _loc_loglik(theta, np.arange(data[0].shape[0]), data)
    pv, pg = _loc_prior(theta, data)
    return v + pv, g + pg


def _jloglik(theta, idx, data):
    Z = data[0][idx].astype(theta.dtype)
    return -0.5 * ((Z - theta) ** 2).sum()


def _jprior(theta, data):
    return -0.5 * data[1][0].astype(theta.dtype) * (theta @ theta)


def _jdensity(theta, data):
    return _jloglik(theta, slice(None), data) + _jprior(theta, data)


def location_model(seed: int = 3, dim: int = 2, prec0: float = 1.0):
    """400 points in 8 non-IID clusters of sizes 20..100; the exact posterior as reference."""
    rng = np.random.default_rng(seed)
    sizes = np.array([20, 35, 50, 65, 80, 100, 30, 20])
    centres = rng.normal(scale=1.0, size=(C, dim))
    Z = np.concatenate([c + rng.normal(size=(n, dim)) * (0.5 + 0.1 * k)
                        for k, (c, n) in enumerate(zip(centres, sizes))])  # fmt: skip
    labels = np.repeat(np.arange(C), sizes)
    N = Z.shape[0]
    A = N + prec0
    mean = Z.sum(axis=0) / A
    data = (np.ascontiguousarray(Z), np.array([prec0]))
    target = DataTarget(
        n_data=N, dim=dim,
        numba={"loglik": _loc_loglik, "logprior": _loc_prior, "value_and_grad": _loc_full},
        numba_data=data,
        jax={"loglik": _jloglik, "logprior": _jprior, "logdensity": _jdensity},
        jax_data=data, initial_position=np.zeros(dim),
        reference=Reference(mean=mean, cov=np.eye(dim) / A, source="exact"),
        name="location",
    )  # fmt: skip
    return target, split(target, labels), Z, labels, prec0


def exact_surrogates(Z, labels, dim):
    """The local likelihoods exactly: q_c = N(z̄_c, I/n_c)."""
    means = np.stack([Z[labels == c].mean(axis=0) for c in range(C)])
    precs = np.stack([np.eye(dim) * np.sum(labels == c) for c in range(C)])
    return GaussianSurrogates(means, precs, 0.0)


def shard_noise_cov(Z, labels, b):
    """V_s = C² n_s² Σ_s / b: the covariance of C n_s (z̄_B − z̄_s), B with replacement."""
    out = []
    for c in range(C):
        zc = Z[labels == c]
        n = zc.shape[0]
        out.append(C**2 * n**2 * np.cov(zc.T, bias=True) / b)
    return np.stack(out)


# -- closed forms ----------
def fsgld_law(Z, labels, prec0, h, b):
    """FSGLD with exact surrogates: θ' = (1 − hA)θ + h N z̄ + h ε_s + √(2h) ξ, s uniform;
    stationary mean N z̄/A (the posterior mean), covariance (2h I + h² V̄)/(1 − (1 − hA)²)."""
    N, d = Z.shape
    A = N + prec0
    Vbar = shard_noise_cov(Z, labels, b).mean(axis=0)
    return Z.sum(axis=0) / A, (2 * h * np.eye(d) + h**2 * Vbar) / (1 - (1 - h * A) ** 2)


def dsgld_law(Z, labels, prec0, h, b, K):
    """DSGLD at round ends: on client s, K steps of θ' = (1 − h a_s)θ + h C n_s z̄_s + noise,
    a_s = τ0 + C n_s; round map x' = α_s x + β_s + η_s with s uniform and independent."""
    d = Z.shape[1]
    V = shard_noise_cov(Z, labels, b)
    alphas, betas, noises = [], [], []
    for s in range(C):
        zs = Z[labels == s]
        n = zs.shape[0]
        a = prec0 + C * n
        F = 1 - h * a
        c_s = C * n * zs.mean(axis=0) / a
        alphas.append(F**K)
        betas.append((1 - F**K) * c_s)
        noises.append(sum(F ** (2 * i) for i in range(K)) * (2 * h * np.eye(d) + h**2 * V[s]))
    alpha, beta, noise = np.array(alphas), np.stack(betas), np.stack(noises)
    m = beta.mean(axis=0) / (1 - alpha.mean())
    cross = np.mean([alpha[s] * (np.outer(m, beta[s]) + np.outer(beta[s], m)) for s in range(C)],
                    axis=0)  # fmt: skip
    bb = np.mean([np.outer(beta[s], beta[s]) for s in range(C)], axis=0)
    second = (cross + bb + noise.mean(axis=0)) / (1 - np.mean(alpha**2))
    return m, second - np.outer(m, m)


# the conjugate linear-regression clients and FA-LD's closed-form round law live with the
# benchmark that tabulates them against Deng et al.'s bound
fald_law = fald_round_law


# -- exact identities ----------
@pytest.mark.parametrize("noise", ["independent", "correlated"])
def test_fald_one_local_step_is_ula_on_the_pooled_posterior(noise):
    """K = 1, full participation, full-shard gradients: the averaged iterate is ULA with step
    η on the pooled posterior, driven by ζ = Σ_c √p_c ξ_c (independent) or ξ (correlated):
    reproduced to 1e-12 from the run's own noise stream (drawn per round: the clients'
    normals (C, 1, d), then the shared normals when used)."""
    target, clients, _X, _y, _parts = linreg_clients()
    h, rounds, seed = 1e-3, 200, 7
    trace = sample_federated(target, FALD(h, local_steps=1, batch_size=None, noise=noise),
                             clients, rounds=rounds, seed=seed, progress=False)  # fmt: skip
    p = clients.weights
    rng = np.random.default_rng(seed)
    x = np.zeros(2)
    ref = np.empty((rounds, 2))
    for r in range(rounds):
        xi = rng.standard_normal((C, 1, 2))[:, 0]
        zeta = rng.standard_normal((1, 1, 1, 2))[0, 0, 0] if noise == "correlated" else \
            (np.sqrt(p)[:, None] * xi).sum(axis=0)  # fmt: skip
        g = target.full_value_and_grad(x)[1]
        x = x + h * g + np.sqrt(2 * h) * zeta
        ref[r] = x
    np.testing.assert_allclose(trace.draws[0], ref, rtol=0, atol=1e-12)


def test_fsgld_exact_surrogates_gradient_is_pooled_for_every_client():
    """With exact surrogates, FSGLD's full-shard drift on every client equals ∇log π (the
    pooled posterior): one local step from the same point with the noise set to 0 lands on
    the same point whatever the client (checked through the kernel itself)."""
    import langevin.federated.driver as drv
    from langevin.backends import numba_backend as be
    from langevin.federated.kernels import FedState, local_kernel

    target, clients, Z, labels, _prec0 = location_model()
    alg = FSGLD(1e-3, local_steps=1, batch_size=None, surrogates=exact_surrogates(Z, labels, 2))
    plan = drv._Plan(target, alg, clients, 1, alg.surrogates.check(C, 2), 8)
    kernel = local_kernel(1e-3, None, True)
    prepared = be.prepare(kernel, drv._engine_target(target, clients, "numba"), 2)
    x0 = np.array([0.3, -0.2])
    state = FedState(np.tile(x0, (C, 1)), np.zeros(C))
    zeros = kernel.Noise(np.zeros((C, 1, 2)), np.zeros((C, 1, 2)))
    res = be.run(prepared, state, 1, np.full(C, 1e-3), noise=zeros,
                 params=plan.params_for(np.arange(C)))  # fmt: skip
    expected = x0 + 1e-3 * target.full_value_and_grad(x0)[1]
    np.testing.assert_allclose(res.state.position, np.tile(expected, (C, 1)), atol=1e-12)


def test_laplace_surrogates_are_exact_on_gaussian_likelihoods():
    """fit_surrogates on the location model: μ_c, P_c of ℓ_c + κ log p in closed form."""
    target, clients, Z, labels, prec0 = location_model()
    sur = fit_surrogates(target, clients)
    kappa = 1.0 / C
    for c in range(C):
        n = np.sum(labels == c)
        np.testing.assert_allclose(sur.means[c], Z[labels == c].sum(axis=0) / (n + kappa * prec0),
                                   atol=1e-7)  # fmt: skip
        np.testing.assert_allclose(sur.precisions[c], (n + kappa * prec0) * np.eye(2), rtol=1e-6,
                                   atol=1e-6)  # fmt: skip


# -- backends ----------
@pytest.mark.parametrize("algorithm", [
    FALD(1e-3, local_steps=3, batch_size=5, correlation=0.5, participation=3, scheme="II"),
    FALD(1e-3, local_steps=2, batch_size=None, participation=5, scheme="I"),
    DSGLD(1e-3, local_steps=3, batch_size=4),
    FSGLD(1e-3, local_steps=2, batch_size=None),
], ids=["fald-mb-rho-II", "fald-full-I", "dsgld", "fsgld-full"])  # fmt: skip
def test_same_seed_same_chain_on_both_backends(algorithm, x64):
    target, clients, _X, _y, _parts = linreg_clients()
    a = sample_federated(target, algorithm, clients, rounds=60, warmup_rounds=5, seed=3,
                         progress=False)  # fmt: skip
    b = sample_federated(target, algorithm, clients, rounds=60, warmup_rounds=5, seed=3,
                         progress=False, backend="jax")  # fmt: skip
    assert a.draws.shape == b.draws.shape
    np.testing.assert_allclose(a.draws, b.draws, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a.sample_stats["bytes_sent"], b.sample_stats["bytes_sent"])


def test_jax_float32_runs():
    """JAX's default precision: float32 draws near the float64 chain (no x64 needed)."""
    import jax

    target, clients, _X, _y, _parts = linreg_clients()
    alg = FALD(1e-3, local_steps=2, batch_size=8)
    a = sample_federated(target, alg, clients, rounds=40, seed=2, progress=False)
    b = sample_federated(target, alg, clients, rounds=40, seed=2, progress=False, backend="jax")
    if not jax.config.jax_enable_x64:
        assert b.communication["itemsize"] == 4
    np.testing.assert_allclose(a.draws, b.draws, atol=1e-3)


# -- stationary laws (z-tests with MCSE) ----------
@pytest.mark.parametrize("K", [1, 20])
def test_fsgld_exact_surrogates_stationary_law_is_independent_of_the_delay(K):
    """FSGLD with exact surrogates: the stationary mean is the pooled posterior mean and the
    covariance the SGLD closed form, for K = 1 and K = 20 local steps alike."""
    target, clients, Z, labels, prec0 = location_model()
    h, b = 2e-4, 10
    alg = FSGLD(h, local_steps=K, batch_size=b, surrogates=exact_surrogates(Z, labels, 2))
    rounds = 3000 if K == 1 else 500
    trace = sample_federated(target, alg, clients, rounds=rounds, warmup_rounds=100 // K + 5,
                             seed=10 + K, progress=False,
                             initial_position=target.reference.mean)  # fmt: skip
    mean, cov = fsgld_law(Z, labels, prec0, h, b)
    np.testing.assert_allclose(mean, target.reference.mean, atol=1e-12)
    assert_z_ok(moment_z_scores(trace.draws, mean, cov))


def test_dsgld_variance_grows_with_the_delay():
    """DSGLD at round ends against its exact law (mean and covariance z-tests) for K = 1 and
    K = 20: with K = 20 the chain drifts to each client's own posterior between moves, and
    the variance is many times FSGLD's (and the posterior's)."""
    target, clients, Z, labels, prec0 = location_model()
    h, b = 2e-4, 10
    measured = {}
    for K, rounds in ((1, 3000), (20, 400)):
        trace = sample_federated(target, DSGLD(h, local_steps=K, batch_size=b), clients,
                                 rounds=rounds, warmup_rounds=100 // K + 5, seed=20 + K,
                                 progress=False,
                                 initial_position=target.reference.mean)  # fmt: skip
        mean, cov = dsgld_law(Z, labels, prec0, h, b, K)
        assert_z_ok(moment_z_scores(trace.draws, mean, cov))
        measured[K] = np.trace(np.cov(trace.draws.reshape(-1, 2).T))
    _, fsgld_cov = fsgld_law(Z, labels, prec0, h, b)
    _, dsgld_cov20 = dsgld_law(Z, labels, prec0, h, b, 20)
    assert np.trace(dsgld_cov20) > 20 * np.trace(fsgld_cov)
    assert measured[20] > 10 * measured[1]


@pytest.mark.parametrize("K,noise", [(1, "independent"), (4, "independent"), (4, "correlated"),
                                     (4, 0.6)])  # fmt: skip
def test_fald_stationary_law_matches_the_round_lyapunov_solution(K, noise):
    """FA-LD (full shards, full participation) against the stacked-clients closed form; with
    K = 4 the law differs from the posterior (client drift), and the test sees which."""
    target, clients, X, y, parts = linreg_clients()
    h = 5e-4
    if isinstance(noise, float):  # the interpolated noise, ρ = noise
        rho, algorithm = noise, FALD(h, local_steps=K, batch_size=None, correlation=noise)
    else:
        rho = 1.0 if noise == "correlated" else 0.0
        algorithm = FALD(h, local_steps=K, batch_size=None, noise=noise)
    mean, cov = fald_law(X, y, parts, h, K, rho)
    if K > 1:
        assert np.max(np.abs(mean - target.reference.mean)) > 1e-3  # a real client drift
    trace = sample_federated(target, algorithm,
                             clients, rounds=2500 // K, warmup_rounds=20, chains=4,
                             seed=30 + K, progress=False,
                             initial_position=target.reference.mean)  # fmt: skip
    assert_z_ok(moment_z_scores(trace.draws, mean, cov))


def test_bounds_benchmark_tiny_run_and_the_bound_holds(tmp_path):
    """The bound table's smoke run: the Monte Carlo W2 agrees with the closed form's, and
    Deng et al.'s bound is above both (it is an upper bound; a wrong constant or closed form
    that broke it would show here)."""
    rows = federated_bounds_main(["--tiny", "--out", str(tmp_path)])
    assert (tmp_path / "federated_bounds_tiny.md").exists()
    for r in rows:
        assert r["step_ok"] and r["bound"] >= r["w2_exact"]
        # 4 chains × 200 rounds: the Gaussian fit's own W2 noise is a few 1e-3
        assert abs(r["w2_monte_carlo"] - r["w2_exact"]) < 0.01
    assert rows[1]["w2_exact"] > 2 * rows[0]["w2_exact"]  # K = 4 drifts more than K = 1


# -- the trace and its statistics ----------
def test_trace_communication_and_arviz():
    target, clients, _X, _y, _parts = linreg_clients()
    d = 2
    full = sample_federated(target, FALD(1e-3, local_steps=5, batch_size=8), clients,
                            rounds=30, chains=2, seed=1, progress=False)  # fmt: skip
    # full participation: C uploads and C downloads of d float64 per federation and round
    assert np.all(full.sample_stats["bytes_sent"] == 2 * C * d * 8)
    assert full.communication["bytes_per_round"] == 2 * 2 * C * d * 8
    part = sample_federated(target, FALD(1e-3, local_steps=5, batch_size=8, participation=3,
                                         scheme="II"), clients, rounds=30, seed=1,
                            progress=False)  # fmt: skip
    assert np.all(part.sample_stats["bytes_sent"] == (3 + C) * d * 8)
    fs = sample_federated(target, FSGLD(1e-3, local_steps=5, batch_size=8), clients,
                          rounds=30, seed=1, progress=False)  # fmt: skip
    assert fs.n_chains == C
    assert fs.communication["setup_bytes"] == C * 2 * (d + d * (d + 1) // 2) * 8
    moves = fs.sample_stats["bytes_sent"]
    assert set(np.unique(moves)) <= {0.0, 2 * d * 8}
    idata = fs.to_arviz()
    assert "bytes_sent" in idata["sample_stats"]
    summary = fs.communication_summary()
    assert summary["rounds_per_effective_sample"] > 0


# -- argument checks (before compiling) ----------
@pytest.fixture
def no_compile(monkeypatch):
    from langevin.backends import jax_backend, numba_backend

    def refuse(*a, **k):
        raise AssertionError("compiled before checking the arguments")

    monkeypatch.setattr(numba_backend, "prepare", refuse)
    monkeypatch.setattr(jax_backend, "prepare", refuse)


@pytest.mark.parametrize("call,match", [
    (lambda t, c: sample_federated(t, FALD(1e-3), c, rounds=0), "rounds"),
    (lambda t, c: sample_federated(t, FALD(1e-3), c, rounds=5, warmup_rounds=-1), "warmup"),
    (lambda t, c: sample_federated(t, FALD(1e-3), c, rounds=5, backend="torch"), "backend"),
    (lambda t, c: sample_federated(t, FALD(1e-3), c, rounds=5, seed=-2), "seed"),
    (lambda t, c: sample_federated(t, DSGLD(1e-3), c, rounds=5, chains=3), "chains"),
    (lambda t, c: sample_federated(t, FALD(1e-3), c, rounds=5, initial_position=np.ones(3)),
     "initial_position"),
    (lambda t, c: sample_federated(t, FALD(1e-3, participation=9, scheme="II"), c, rounds=5),
     "participation"),
    (lambda t, c: sample_federated(t, FALD(1e-3, weights=(0.5,) * 8), c, rounds=5), "weights"),
    (lambda t, c: sample_federated(t, "FALD", c, rounds=5), "algorithm"),
    (lambda t, c: sample_federated(t, FALD(1e-3), [1, 2], rounds=5), "clients"),
    (lambda t, c: sample_federated(t, FALD(1e-3), c, rounds=5, mesh="cpu"), "mesh"),
    (lambda t, c: sample_federated(t, FSGLD(1e-3, surrogates=GaussianSurrogates(
        np.zeros((8, 3)), np.zeros((8, 3, 3)))), c, rounds=5), "surrogates"),
    (lambda t, c: FALD(-1.0), "step_size"),
    (lambda t, c: FALD(1e-3, local_steps=0), "local_steps"),
    (lambda t, c: FALD(1e-3, batch_size=0), "batch_size"),
    (lambda t, c: FALD(1e-3, noise="shared"), "noise"),
    (lambda t, c: FALD(1e-3, correlation=1.5), "correlation"),
    (lambda t, c: FALD(1e-3, scheme="III"), "scheme"),
    (lambda t, c: split(t, [np.arange(10)]), "every row"),
    (lambda t, c: partition_sorted(np.zeros(10), 0), "n_clients"),
])  # fmt: skip
def test_bad_input_is_refused_before_compiling(call, match, no_compile):
    target, clients, _X, _y, _parts = linreg_clients()
    with pytest.raises((ValueError, TypeError), match=match):
        call(target, clients)
