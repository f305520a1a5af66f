"""Walk-jump sampling and the chain of log-concave Markov chains (ALGORITHMS.md §8a, §8c).

Exact answers: the Tweedie jump of an analytic smoothed mixture is the Bayes posterior mean
(computed independently, without a score); for Gaussian data p = N(μ, s²I) the jumps are
N(μ, s⁴/(s² + σ²)) (shrinkage) and, after m measurements, N(μ, s⁴/(s² + σ²/m)); on a mixture
the walk has the exact smoothed law and the jumps the exact law of x̂(Y), Y ~ p_σ (sampled
exactly). Tolerances are Monte Carlo standard errors (tests/stats_helpers.py). Same noise,
same chain on Numba and JAX (1e-12, float64).
"""

from __future__ import annotations

import numpy as np
import pytest

import langevin
from langevin.backends import jax_backend, numba_backend
from langevin.diffusion import (
    ChainOfLogConcave,
    WalkJump,
    chain_of_log_concave,
    jump,
    posterior_mean_mixture,
    sample_mixture,
    smoothed,
)
from langevin.spec import draw_numpy
from tests.stats_helpers import Z_CRIT, assert_z_ok, moment_z_scores, z_score

MIX = dict(means=[[-2.0, 0.0], [2.0, 1.0]], sds=[0.5, 0.7], weights=[0.3, 0.7])


def mixture():
    return langevin.targets.gaussian_mixture(**MIX)


# -- the jump ----------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_tweedie_jump_is_the_bayes_posterior_mean(backend, x64):
    """x̂(y) = y + σ²∇log p_σ(y) on the analytic smoothed mixture equals E[x | y] computed
    from the component posteriors (no score involved)."""
    p, sigma = mixture(), 0.8
    y = np.random.default_rng(0).normal(scale=3.0, size=(50, 2))
    got = jump(smoothed(p, sigma), y, sigma, backend=backend)
    np.testing.assert_allclose(got, posterior_mean_mixture(p, sigma, y), rtol=0, atol=1e-12)
    assert np.abs(got - y).max() > 0.5  # the jump moves


def test_smoothed_mixture_is_the_law_of_x_plus_noise():
    """p_σ's exact moments equal those of x + σε (the convolution), and bad input is named."""
    p, sigma = mixture(), 0.6
    ps = smoothed(p, sigma)
    np.testing.assert_allclose(ps.reference.mean, p.reference.mean, atol=1e-14)
    np.testing.assert_allclose(ps.reference.cov, p.reference.cov + sigma**2 * np.eye(2),
                               atol=1e-14)  # fmt: skip
    assert ps.sigma == sigma
    with pytest.raises(ValueError, match="sigma"):
        smoothed(p, -1.0)
    with pytest.raises(TypeError, match="sigma"):
        smoothed(p, "1")
    with pytest.raises(TypeError, match="Gaussian mixture"):
        smoothed(langevin.targets.gaussian(2), 1.0)


def test_bad_arguments_are_named_before_compiling():
    with pytest.raises(TypeError, match="inner"):
        WalkJump("MALA", 1.0)
    with pytest.raises(ValueError, match="sigma"):
        WalkJump(langevin.MALA(0.1), 0.0)
    with pytest.raises(ValueError, match="score-only"):
        WalkJump(langevin.MALA(0.1), 1.0, score_only=True)
    with pytest.raises(ValueError, match="step_size"):
        WalkJump(langevin.MALA(0.1), 1.0, step_size=-1.0)
    with pytest.raises(ValueError, match="m must"):
        chain_of_log_concave(lambda k: smoothed(mixture(), 1.0), langevin.MALA(0.1), sigma=1.0,
                             m=0, steps=10, chains=2, initial_position=np.zeros(2))  # fmt: skip
    with pytest.raises(ValueError, match="initial_position"):
        chain_of_log_concave(lambda k: smoothed(mixture(), 1.0), langevin.MALA(0.1), sigma=1.0,
                             m=2, steps=10, chains=2, initial_position=np.zeros(3))  # fmt: skip
    with pytest.raises(ValueError, match="y must"):
        jump(smoothed(mixture(), 1.0), np.zeros((4, 3)), 1.0)


# -- Gaussian data: the law of the jumps -------------------------------------------------------
def test_walk_jump_shrinks_gaussian_data():
    """p = N(μ, s²I): the jumps are N(μ, s⁴/(s² + σ²) I), not p (walk-jump shrinks). Numba
    engine on drawn noise (the loop the agreement test compiles), chains started at μ."""
    mu, s, sigma = np.array([1.0, -0.5]), 0.8, 1.2
    p = langevin.targets.gaussian_mixture([mu], sds=[s])
    kernel, chains, steps = WalkJump(langevin.MALA(0.8), sigma), 8, 1500
    noise = draw_numpy(kernel.noise(2), np.random.default_rng(3), (chains, steps))
    x0 = np.broadcast_to(mu, (chains, 2)).copy()
    draws = _run("numba", kernel, smoothed(p, sigma), x0, noise, None, steps).position
    v = s**4 / (s**2 + sigma**2)
    assert_z_ok(moment_z_scores(draws[:, 100:], mu, v * np.eye(2)))
    # the shrinkage is seen: the variance is far below s² in units of its MCSE
    r2 = (draws[:, 100:, 0] - mu[0]) ** 2
    assert z_score(r2, s**2) < -Z_CRIT


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_walk_jump_shrinks_gaussian_data_through_sample(backend):
    """The same law through ``sample`` with warm-up (dual averaging of the inner MALA step),
    on both backends (JAX in its default precision)."""
    mu, s, sigma = np.array([1.0, -0.5]), 0.8, 1.2
    p = langevin.targets.gaussian_mixture([mu], sds=[s])
    kernel = WalkJump(langevin.MALA(0.8), sigma)
    trace = langevin.sample(smoothed(p, sigma), kernel, chains=4, warmup=200, draws=1500,
                            backend=backend, seed=3, progress=False)  # fmt: skip
    v = s**4 / (s**2 + sigma**2)
    assert_z_ok(moment_z_scores(trace.draws.astype(float), mu, v * np.eye(2)))


# -- the walk composes the inner kernel --------------------------------------------------------
def _run(backend, kernel, target, x0, noise, init_noise, steps):
    engine = numba_backend if backend == "numba" else jax_backend
    prepared = engine.prepare(kernel, target, x0.shape[1], np.float64)
    state = engine.init(prepared, x0, noise=init_noise)
    return engine.run(prepared, state, steps, np.full(x0.shape[0], kernel.step_size),
                      noise=noise)  # fmt: skip


INNERS = [
    pytest.param(lambda: langevin.MALA(0.3), id="MALA"),
    pytest.param(
        lambda: langevin.KineticLangevin(0.3, friction=1.0, discretization="aboba"),
        id="ABOBA",
        marks=pytest.mark.slow,
    ),
    pytest.param(lambda: langevin.Barker(0.5), id="Barker", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("make_inner", INNERS)
def test_same_noise_same_chain_and_the_jumps_of_the_walk(make_inner, x64):
    """WalkJump on Numba and JAX agree to 1e-12 on the same noise; its draws are exactly the
    jumps of the inner kernel's own walk on p_σ (the same noise), so the walk is the inner
    kernel's, not a rewrite."""
    inner, sigma, steps, chains = make_inner(), 0.7, 30, 3
    wj = WalkJump(inner, sigma)
    ps = smoothed(mixture(), sigma)
    x0 = np.random.default_rng(1).normal(size=(chains, 2))
    noise = draw_numpy(inner.noise(2), np.random.default_rng(0), (chains, steps))
    init_noise = draw_numpy(inner.init_noise(2), np.random.default_rng(2), (chains,))
    r_nb = _run("numba", wj, ps, x0, noise, init_noise, steps)
    r_jx = _run("jax", wj, ps, x0, noise, init_noise, steps)
    np.testing.assert_allclose(r_nb.position, r_jx.position, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r_nb.logdensity, r_jx.logdensity, rtol=1e-12, atol=1e-12)
    walk = _run("numba", inner, ps, x0, noise, init_noise, steps)
    np.testing.assert_allclose(r_nb.logdensity, walk.logdensity, rtol=0, atol=1e-13)
    np.testing.assert_allclose(r_nb.position, jump(ps, walk.position, sigma), rtol=0,
                               atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(
        r_nb.position, posterior_mean_mixture(mixture(), sigma, walk.position.reshape(-1, 2))
        .reshape(walk.position.shape), rtol=0, atol=1e-12)  # fmt: skip
    assert np.abs(np.diff(r_nb.position, axis=1)).max() > 0.1  # the chain moved
    np.testing.assert_allclose(np.asarray(r_nb.state.walk), walk.position[:, -1], atol=1e-13)


# -- a mixture: the exact smoothed law and the exact denoised law ------------------------------
@pytest.mark.slow
def test_walk_jump_on_a_mixture_matches_the_exact_smoothed_and_denoised_laws():
    """Kinetic (ABOBA) walk on the analytic p_σ of a 2-mode mixture: the walk's moments and
    mode masses are those of p_σ (exact), the jumps' those of x̂(Y) with Y ~ p_σ drawn exactly
    (a 200 000-draw reference whose own standard error enters each z)."""
    p, sigma = mixture(), 1.0
    ps = smoothed(p, sigma)
    inner = langevin.KineticLangevin(0.4, friction=1.0, discretization="aboba")
    kw = dict(chains=4, warmup=300, draws=4000, seed=11, progress=False)
    walk = langevin.sample(ps, inner, **kw).draws
    jumps = langevin.sample(ps, WalkJump(inner, sigma), **kw).draws
    # same seed, same noise: the jumps are the walk's jumps
    np.testing.assert_allclose(jumps, jump(ps, walk, sigma), atol=1e-12)
    rng = np.random.default_rng(5)
    y_exact = sample_mixture(ps, 200_000, rng)
    x_exact = posterior_mean_mixture(p, sigma, y_exact)
    zs = {}
    for name, draws, ref in (("walk", walk, y_exact), ("jump", jumps, x_exact)):
        feats = {
            "x0": (draws[..., 0], ref[:, 0]),
            "x1": (draws[..., 1], ref[:, 1]),
            "x0^2": (draws[..., 0] ** 2, ref[:, 0] ** 2),
            "mode": (draws[..., 0] > 0, ref[:, 0] > 0),
        }
        for f, (d, r) in feats.items():
            zs[f"{name}:{f}"] = z_score(d.astype(float), r.mean(), r.std() / np.sqrt(r.size))
    assert_z_ok(zs)
    # the exact laws differ: a test that compared the jumps with the walk's law would fail
    assert abs(np.var(x_exact[:, 0]) - np.var(y_exact[:, 0])) > 0.5


# -- the chain of log-concave Markov chains ----------------------------------------------------
def test_clmc_jump_variance_on_gaussian_data():
    """m = 4 measurements of N(μ, s²I): the jumps are N(μ, s⁴/(s² + σ²/m) I), between the
    one-measurement shrinkage s⁴/(s² + σ²) and s². Independent chains: iid z-tests."""
    mu, s, sigma, m, chains = np.array([0.5, -1.0]), 1.0, 2.0, 4, 500
    p = langevin.targets.gaussian_mixture([mu], sds=[s])
    inner = langevin.MALA(0.6)
    rng = np.random.default_rng(1)  # given noise: the loop the agreement test compiles
    noise = [draw_numpy(inner.noise(2), rng, (chains, 100)) for _ in range(m)]
    r = chain_of_log_concave(lambda k: smoothed(p, sigma / np.sqrt(k)), inner, sigma=sigma,
                             m=m, steps=100, chains=chains, initial_position=np.zeros(2),
                             noise=noise)  # fmt: skip
    v = s**4 / (s**2 + sigma**2 / m)
    x = r.jumps
    zs = {}
    for i in range(2):
        zs[f"mean{i}"] = (x[:, i].mean() - mu[i]) / np.sqrt(v / chains)
        # Var of (x − μ)² for a normal is 2v²
        zs[f"var{i}"] = (np.mean((x[:, i] - mu[i]) ** 2) - v) / np.sqrt(2 * v * v / chains)
    assert_z_ok(zs)
    v1 = s**4 / (s**2 + sigma**2)  # m = 1 would give this: the test tells them apart
    assert abs(np.mean((x - mu) ** 2) - v1) / np.sqrt(2 * v1 * v1 / (2 * chains)) > Z_CRIT
    # the stored running means are the means of the kept measurements
    np.testing.assert_allclose(r.means[:, -1], r.measurements.mean(axis=1), atol=1e-12)
    assert r.acceptance.shape == (m,) and np.all(r.acceptance > 0.5)


@pytest.mark.parametrize("make_inner", INNERS[:2])
def test_clmc_same_noise_same_chain(make_inner, x64):
    """All m stages and the final jump agree on Numba and JAX to 1e-12 on the same noise."""
    inner, sigma, m, steps, chains = make_inner(), 1.5, 2, 20, 3
    p = mixture()
    levels = [smoothed(p, sigma / np.sqrt(k)) for k in range(1, m + 1)]
    rng = np.random.default_rng(0)
    noise = [draw_numpy(inner.noise(2), rng, (chains, steps)) for _ in range(m)]
    inits = [draw_numpy(inner.init_noise(2), rng, (chains,)) for _ in range(m)]
    kw = dict(sigma=sigma, m=m, steps=steps, chains=chains, initial_position=np.ones(2),
              noise=noise, init_noise=inits)  # fmt: skip
    a = chain_of_log_concave(levels, inner, backend="numba", **kw)
    b = chain_of_log_concave(levels, inner, backend="jax", **kw)
    np.testing.assert_allclose(a.measurements, b.measurements, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.jumps, b.jumps, rtol=0, atol=1e-12)
    assert np.abs(a.measurements[:, 1] - a.measurements[:, 0]).max() > 0.1


def test_clmc_conditional_score_is_the_gradient_of_its_log_density():
    """The conditional combinator's gradient equals central differences of its value, and its
    score-only form gives the same gradient (k = 3, a random running sum)."""
    from langevin.backends import numpy_ops
    from langevin.diffusion.walk_jump import Conditional

    ps = smoothed(mixture(), 0.9 / np.sqrt(3))
    form = numba_backend.bind_target(ps, 2)
    child = form.build(form.data)
    rng = np.random.default_rng(4)
    total = rng.normal(size=2)
    t = (Conditional(total, 3.0, 0.81), child)
    y = rng.normal(size=2)
    _, grad = numpy_ops.value_and_grad(t, y)
    eps = 1e-6
    value = lambda z: numpy_ops.value_and_grad(t, z)[0]  # noqa: E731
    fd = [(value(y + eps * e) - value(y - eps * e)) / (2 * eps) for e in np.eye(2)]
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(numpy_ops.score(t, y), grad, atol=1e-14)
    ybar = (total + y) / 3.0
    expected = (ybar - y) / 0.81 + numpy_ops.grad(child, ybar) / 3.0
    np.testing.assert_allclose(grad, expected, atol=1e-14)


def test_chain_of_log_concave_kernel_declares_its_inner_kernel():
    k = ChainOfLogConcave(langevin.MALA(0.2), 1.0)
    assert k.inner_class is langevin.MALA and k.requires == langevin.MALA.requires
    assert type(k).example().sigma == 1.0
    wj = WalkJump(langevin.ULA(0.1), 0.5, score_only=True)
    assert wj.requires == frozenset({"score"}) and not wj.adapts_step_size


@pytest.mark.slow
def test_benchmark_runs_tiny(tmp_path):
    """The benchmark script runs end to end (tiny configuration) and writes its report with
    finite numbers; MALA on p stays in its starting mode, walk-jump at σ = 2 leaves it."""
    from benchmarks import walk_jump_mixture

    rows = walk_jump_mixture.main(["--tiny", "--out", str(tmp_path)])
    text = (tmp_path / "walk_jump_mixture.md").read_text()
    assert "noise floor" in text and "| MALA |" in text
    assert all(np.isfinite(r["w2_p"]) and np.isfinite(r["mass_err"]) for r in rows)
    by_name = {r["sampler"]: r for r in rows}
    assert by_name["MALA"]["coverage"] == 0.25
    assert by_name["WJS-MALA σ=2"]["coverage"] > 0.25


USER_CELL = """
from dataclasses import dataclass
from typing import NamedTuple

from langevin.backends.portable import portable
from langevin.kernels.base import GradientState, Kernel, init_gradient_state
from langevin.kernels.mh import MHInfo, metropolis_hastings
from langevin.spec import Normal, Scalar, Uniform, Vector


class RWNoise(NamedTuple):
    normal: Vector
    uniform: Scalar


@portable
def rw_step(state, noise, step_size, params, target):
    y = state.position + step_size * noise.normal
    lp, g = xp.value_and_grad(target, y)
    accepted, prob = metropolis_hastings(lp - state.logdensity, noise.uniform)
    return xp.select_tree(accepted, GradientState(y, lp, g), state), MHInfo(prob, accepted, False)


@dataclass(frozen=True)
class RandomWalk(Kernel):
    step_size: float
    Noise = RWNoise
    Info = MHInfo
    State = GradientState
    exact = True
    init_math = staticmethod(init_gradient_state)
    step_math = staticmethod(rw_step)

    def noise(self, dim):
        return RWNoise(Normal((dim,)), Uniform(()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_a_kernel_written_in_a_notebook_cell_walks(backend):
    """A random-walk Metropolis kernel defined by ``exec`` (as in a notebook cell) composes
    into WalkJump on both backends and gives the Gaussian shrinkage law."""
    scope = {"xp": None, "__name__": "__main__"}  # what a notebook cell or script has
    exec(compile(USER_CELL, "<cell>", "exec", dont_inherit=True), scope)  # no __future__
    mu, s, sigma = np.array([0.0, 1.0]), 0.8, 1.2
    p = langevin.targets.gaussian_mixture([mu], sds=[s])
    kernel = WalkJump(scope["RandomWalk"](1.0), sigma)
    trace = langevin.sample(smoothed(p, sigma), kernel, chains=4, warmup=100, draws=3000,
                            backend=backend, seed=0, progress=False)  # fmt: skip
    v = s**4 / (s**2 + sigma**2)
    assert_z_ok(moment_z_scores(trace.draws.astype(float), mu, v * np.eye(2)))


def _jax_compiles(fn) -> int:
    """The number of programs XLA compiled while ``fn()`` runs (JAX's monitoring events),
    counting those loaded from the persistent compilation cache the tests keep
    (tests/conftest.py) as compiled: a warm cache must not hide a compilation."""
    from jax._src import monitoring

    count = [0]

    def on_duration(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            count[0] += 1

    def on_event(event, **kwargs):
        if event == "/jax/compilation_cache/cache_hits":
            count[0] += 1

    monitoring.register_event_duration_secs_listener(on_duration)
    monitoring.register_event_listener(on_event)
    try:
        fn()
    finally:  # (the public unregister functions are newer than the declared JAX floor)
        unregister_duration = (
            getattr(monitoring, "unregister_event_duration_listener", None)
            or monitoring._unregister_event_duration_listener_by_callback
        )
        unregister_event = (
            getattr(monitoring, "unregister_event_listener", None)
            or monitoring._unregister_event_listener_by_callback
        )
        unregister_duration(on_duration)
        unregister_event(on_event)
    return count[0]


@pytest.mark.slow  # four cold JAX compilations of the CLMC loop
def test_clmc_compiles_once_for_all_levels_on_jax(x64):
    """On JAX the level is runtime data: the compile count of a whole CLMC run does not grow
    with m. Smoothed mixtures (one compiled density, the level's arrays as data) and other
    level targets (one ``lax.switch`` over the levels) alike; each pair of runs is cold (a
    new mixture shape, new target functions). The switch path gives the same chains as the
    mixture path for the same Gaussian levels written both ways (1e-12, same noise).
    Compilations (m = 2, m = 6), mixture and switch: (3, 3) and (3, 3); with the former
    per-level targets (measured without the warm-up run) (12, 13) and (5, 13): it failed."""
    inner, sigma, steps, chains = langevin.MALA(0.3), 1.0, 3, 2

    def run(levels, noise=None, inits=None):
        return chain_of_log_concave(levels, inner, sigma=sigma, m=len(levels), steps=steps,
                                    chains=chains, initial_position=np.zeros(2),
                                    backend="jax", noise=noise, init_noise=inits)  # fmt: skip

    def mixture_levels(n_comp, m):
        p = langevin.targets.gaussian_mixture(np.arange(2.0 * n_comp).reshape(n_comp, 2),
                                              sds=np.full(n_comp, 0.5))  # fmt: skip
        return [smoothed(p, sigma / np.sqrt(k)) for k in range(1, m + 1)]

    def cov(scale, k):
        return np.diag([scale + 1.0 / k, 1.0])

    def gaussian_levels(scale, m):  # not mixtures: the lax.switch path
        return [langevin.targets.gaussian(2, mean=[0.5, -0.5], cov=cov(scale, k))
                for k in range(1, m + 1)]  # fmt: skip

    run(gaussian_levels(0.5, 1))  # warm-up: what any first JAX run compiles
    counts = {}
    for name, make in (("mixture", mixture_levels), ("switch", gaussian_levels)):
        few = _jax_compiles(lambda: run(make(2, 2)))
        many = _jax_compiles(lambda: run(make(3, 6)))
        counts[name] = (few, many)
    print(counts)
    for few, many in counts.values():
        assert few >= 1 and many <= few, counts
    levels = gaussian_levels(3.0, 3)
    same = [langevin.targets.gaussian_mixture([[0.5, -0.5]], covs=[cov(3.0, k)])
            for k in range(1, 4)]  # fmt: skip
    rng = np.random.default_rng(4)
    noise = [draw_numpy(inner.noise(2), rng, (chains, steps)) for _ in levels]
    inits = [draw_numpy(inner.init_noise(2), rng, (chains,)) for _ in levels]
    a = run(levels, noise, inits)
    b = run(same, noise, inits)
    np.testing.assert_allclose(a.measurements, b.measurements, rtol=0, atol=1e-12)
    assert np.abs(a.measurements[:, 2] - a.measurements[:, 1]).max() > 0.05
