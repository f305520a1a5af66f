"""Denoisers and energies trained by denoising score matching (ALGORITHMS.md §8a, §8c).

Exact answers: on Gaussian data N(μ, s²I) at one level σ, the DSM loss E‖n(y) + ε‖² is
minimised over *linear* networks by the Bayes rule n*(y) = −σ(Σ̂ + σ²I)⁻¹(y − x̄) (x̄, Σ̂ the
training data's moments), which a linear network represents exactly: training must find it.
The network runs on both backends with the same numbers (1e-12, float64), the energy's
hand-written input gradient equals JAX's autodiff, and a saved network loads unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest

import langevin
from langevin.backends import jax_backend, numba_backend
from langevin.diffusion import WalkJump, chain_of_log_concave, jump, smoothed
from langevin.diffusion.denoisers import (
    clmc_levels,
    denoise,
    denoiser_init,
    denoiser_target,
    energy_init,
    energy_target,
    load,
    save,
    train_denoiser,
    train_energy,
)
from langevin.spec import draw_numpy

MU, S = np.array([1.0, -1.0]), 0.7


def gaussian_data(n=2000, seed=0):
    return MU + S * np.random.default_rng(seed).standard_normal((n, 2))


@pytest.mark.slow  # training
def test_dsm_finds_the_bayes_denoiser_of_gaussian_data():
    """A linear network trained by DSM at one σ equals the exact minimiser (computed from the
    data's moments) and its jump is the Bayes posterior mean (to the training tolerance)."""
    import optax

    data, sigma, steps = gaussian_data(), 0.8, 1000
    schedule = optax.exponential_decay(2e-2, steps, 1e-2)
    params, history = train_denoiser(data, sigma, steps=steps, batch=512, hidden=(),
                                     optimizer=optax.adam(schedule), seed=1)  # fmt: skip
    xbar, cov = data.mean(0), np.cov(data.T, bias=True)
    w_exact = -sigma * np.linalg.inv(cov + sigma**2 * np.eye(2))
    w = params.net.weights[0][:, :2]
    b = params.net.biases[0] + sigma * params.net.weights[0][:, 2]
    # Training tolerance: 0.02 is ~10 least-squares standard errors of the final phase (the
    # errors seen are below 0.004); a sign error in the loss gives w ≈ +0.7, a wrong level
    # scaling w off by a factor σ.
    np.testing.assert_allclose(w, w_exact, atol=0.02)
    np.testing.assert_allclose(b, -w_exact @ xbar, atol=0.02)
    np.testing.assert_array_equal(params.embed, np.vstack([np.eye(2), np.zeros((1, 2))]))
    assert history[:20].mean() > history[-100:].mean()
    y = np.random.default_rng(3).normal(size=(20, 2)) + MU
    exact = xbar + (cov @ np.linalg.solve(cov + sigma**2 * np.eye(2), (y - xbar).T)).T
    np.testing.assert_allclose(denoise(params, y, sigma), exact, atol=0.03)
    got = jump(denoiser_target(params, sigma), y, sigma, backend="jax")
    np.testing.assert_allclose(got, denoise(params, y, sigma), atol=1e-5)  # float32 on JAX


def _run(engine, kernel, target, x0, noise, init_noise):
    prepared = engine.prepare(kernel, target, x0.shape[1], np.float64)
    state = engine.init(prepared, x0, noise=init_noise)
    steps = np.asarray(next(iter(noise))).shape[1]
    return engine.run(prepared, state, steps, np.full(x0.shape[0], kernel.step_size),
                      noise=noise)  # fmt: skip


def test_a_network_runs_the_same_on_both_backends(x64):
    """An (untrained, random) denoiser: the JAX jump equals the host denoiser, and a score-only
    walk-jump chain on it is the same on Numba and JAX (1e-12); the energy's hand-written
    gradient equals JAX's autodiff (the Numba energy target runs in the slow DEEN test)."""
    params = denoiser_init(3, 2, hidden=(8, 8))
    sigma = 0.5
    t = denoiser_target(params, sigma)
    y = np.random.default_rng(0).normal(size=(7, 2))
    host = denoise(params, y, sigma)
    np.testing.assert_allclose(jump(t, y, sigma, backend="jax"), host, rtol=0, atol=1e-12)
    assert np.abs(host - y).max() > 1e-3

    inner = langevin.ULA(0.05)
    wj = WalkJump(inner, sigma, score_only=True)
    chains, steps = 2, 15
    noise = draw_numpy(inner.noise(2), np.random.default_rng(1), (chains, steps))
    x0 = np.zeros((chains, 2))
    a = _run(numba_backend, wj, t, x0, noise, None)
    b = _run(jax_backend, wj, t, x0, noise, None)
    np.testing.assert_allclose(a.position, b.position, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a.logdensity, 0.0)  # unknown for a score-only walk
    assert np.abs(np.diff(a.position, axis=1)).max() > 0.01

    # the energy's hand-written input gradient (what Numba runs: the same portable code)
    # against JAX's autodiff of its value
    import jax

    from langevin.diffusion.denoisers import energy_value_and_grad
    from langevin.nn import numpy_twin

    e = energy_target(energy_init(4, 2, hidden=(8,)), sigma)
    vg_jax = jax.value_and_grad(e.jax_functions["logdensity"])
    vg_host = numpy_twin(energy_value_and_grad)
    for row in y:
        v1, g1 = vg_host(row, e.data)
        v2, g2 = vg_jax(jax.numpy.asarray(row))
        np.testing.assert_allclose(v1, float(v2), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g1, np.asarray(g2), rtol=1e-12, atol=1e-12)
        assert np.abs(g1).max() > 1e-4


def test_save_and_load_without_pickle(tmp_path):
    params = denoiser_init(5, 3, hidden=(4,))
    path = tmp_path / "den.npz"
    save(path, params, sigma=0.7)
    loaded, meta = load(path)
    assert meta == {"sigma": 0.7}
    y = np.random.default_rng(1).normal(size=(3, 3))
    np.testing.assert_array_equal(denoise(loaded, y, 0.7), denoise(params, y, 0.7))
    from langevin.nn import save_params

    save_params(tmp_path / "other.npz", params.net)
    with pytest.raises(ValueError, match="Denoiser"):
        load(tmp_path / "other.npz")


def test_bad_input_is_named():
    data = gaussian_data(20)
    with pytest.raises(ValueError, match="data"):
        train_denoiser(data[:, 0], 1.0, steps=1)
    with pytest.raises(ValueError, match="levels"):
        train_denoiser(data, -1.0, steps=1)
    with pytest.raises(ValueError, match="steps"):
        train_denoiser(data, 1.0, steps=0)
    with pytest.raises(ValueError, match="denoiser"):
        denoiser_target(energy_init(0, 2), 1.0)
    with pytest.raises(ValueError, match="energy"):
        energy_target(denoiser_init(0, 2), 1.0)
    with pytest.raises(ValueError, match="sigma"):
        denoiser_target(denoiser_init(0, 2), 0.0)
    with pytest.raises(TypeError, match="Denoiser"):
        denoiser_target({"w": 1}, 1.0)
    with pytest.raises(ValueError, match="m must"):
        clmc_levels(1.0, 0)


@pytest.mark.slow
def test_conditional_denoiser_drives_the_chain_of_log_concave_chains():
    """One network conditioned on the level σ/√k (k = 1..4) trained on Gaussian data: at
    every level its DSM loss is within 0.03 of the exact minimum d·s²/(s² + s_k²) (fresh
    draws, MCSE < 0.005), and the chain of log-concave chains driven by it (score-only,
    kinetic walk) gives jumps whose variance matches s⁴/(s² + σ²/m) within 4 MCSE + 0.03."""
    data, sigma, m = gaussian_data(4000), 1.5, 4
    levels = clmc_levels(sigma, m)
    params, _ = train_denoiser(data, levels, steps=2000, batch=512, hidden=(32, 32), seed=0)
    rng = np.random.default_rng(7)
    for s_k in levels:
        x = MU + S * rng.standard_normal((20000, 2))
        eps = rng.standard_normal(x.shape)
        y = x + s_k * eps
        n = (denoise(params, y, s_k) - y) / s_k
        loss = np.sum((n + eps) ** 2, axis=1)
        exact_min = 2 * S**2 / (S**2 + s_k**2)
        assert abs(loss.mean() - exact_min) < 0.03 + 4 * loss.std() / np.sqrt(loss.size)
    inner = langevin.KineticLangevin(0.2, friction=2.0, discretization="aboba")
    r = chain_of_log_concave(lambda k: denoiser_target(params, sigma / np.sqrt(k)), inner,
                             sigma=sigma, m=m, steps=150, chains=300, score_only=True,
                             initial_position=MU, seed=2)  # fmt: skip
    v = S**4 / (S**2 + sigma**2 / m)
    got = np.mean((r.jumps - MU) ** 2)
    assert abs(got - v) < 4 * np.sqrt(2 * v * v / r.jumps.size) + 0.03


@pytest.mark.slow
def test_deen_energy_score_matches_the_smoothed_gaussian():
    """DEEN on Gaussian data at one σ: the trained energy's score is within 10% (RMS) of the
    exact smoothed score on draws of p_σ, and walk-jump with MALA on it shrinks as the
    exact law says (variance s⁴/(s² + σ²) within 15%)."""
    data, sigma = gaussian_data(4000), 0.8
    params, _ = train_energy(data, sigma, steps=1200, batch=512, hidden=(32,), seed=0)
    t = energy_target(params, sigma)
    y = MU + np.sqrt(S**2 + sigma**2) * np.random.default_rng(2).standard_normal((2000, 2))
    got = np.stack([t.numba_functions["value_and_grad"](row, t.data)[1] for row in y])
    exact = -(y - MU) / (S**2 + sigma**2)
    assert np.sqrt(np.mean((got - exact) ** 2)) < 0.1 * np.sqrt(np.mean(exact**2))
    p_true = langevin.targets.gaussian_mixture([MU], sds=[S])
    trace = langevin.sample(t, WalkJump(langevin.MALA(0.5), sigma), chains=4, warmup=200,
                            draws=2000, seed=1, progress=False, initial_position=MU)  # fmt: skip
    v = S**4 / (S**2 + sigma**2)
    assert abs(trace.draws.var(axis=(0, 1)).mean() / v - 1) < 0.15
    assert smoothed(p_true, sigma).sigma == sigma
