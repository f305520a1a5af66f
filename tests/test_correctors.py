"""Feynman–Kac correctors (:mod:`langevin.smc.correctors`) against exact laws.

* Exact pieces first: the noised mixture score against finite differences of the noised
  mixture's log-density (both forms), the product of mixtures against the pointwise product,
  the rejection sampler of ``q^β`` against quadrature, the VP process's closed forms.
* 1-D Gaussian cases of ALGORITHMS.md §7c (annealing β = 3, product of two experts,
  guidance w = 1.5 with nearby experts): the weighted mean and variance of the particles
  against the closed-form target. The estimator's standard deviation is not σ/√N: resampling
  at every step correlates the particles. It and the discretisation bias at the tested step
  count were measured over 40 seeds (``_GAUSSIAN_CASES``), and each test is a z-test with the
  suite's Bonferroni constant around the measured bias; the slow test re-measures both.
* Gaussian mixtures: W2 (exact OT, POT) between the corrector's particles and exact samples of
  the annealed / product law, compared with the W2 noise floor between exact samples of the
  same size; and the same run without the weights is clearly worse.
* Both backends give the same run for the same noise; ESS-triggered resampling; bad input.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from scipy import integrate

from langevin.diagnostics import wasserstein
from langevin.smc import SMCResult, smc
from langevin.smc.correctors import (
    FKCorrector,
    equally_weighted,
    fkc_anneal,
    fkc_guidance,
    fkc_product,
    fkc_sample,
)
from langevin.smc.diffusion import Score, VPProcess
from langevin.smc.resampling import SCHEMES
from langevin.targets.gaussian_mixture_diffusion import GaussianMixture
from tests.stats_helpers import Z_CRIT


def _gaussian(mean: float, var: float) -> GaussianMixture:
    return GaussianMixture([1.0], [[mean]], [[[var]]])


def _weighted_moments(result: SMCResult) -> tuple[float, float]:
    x = np.asarray(result.particles.x)[:, 0]
    w = result.weights
    m = float(w @ x)
    return m, float(w @ (x - m) ** 2)


# -- exact pieces -------------------------------------------------------------------------------
_MIX2 = GaussianMixture(
    [0.5, 0.3, 0.2],
    [[-2.0, 0.0], [2.0, 0.5], [0.0, 3.0]],
    [np.eye(2), [[0.5, 0.3], [0.3, 1.0]], [[1.5, -0.5], [-0.5, 0.5]]],
)


@pytest.mark.parametrize("t", [0.0, 0.05, 0.3, 1.0])
def test_mixture_score_is_gradient_of_noised_log_density(t, x64):
    """Both forms of the exact score equal central differences of ``log q_t`` (q_t from
    :meth:`GaussianMixture.noised`, an independent route through NumPy/SciPy)."""
    import jax.numpy as jnp

    process = VPProcess()
    score = _MIX2.score(process)
    law = _MIX2.noised(process, t)
    rng = np.random.default_rng(3)
    eps = 1e-5
    for x in rng.normal(0.0, 2.5, size=(6, 2)):
        fd = np.array(
            [(law.logpdf(x + e)[0] - law.logpdf(x - e)[0]) / (2 * eps) for e in np.eye(2) * eps]
        )
        nb = score.numba_fn(np.ascontiguousarray(x), float(t), score.numba_data)
        jx = np.asarray(score.jax_fn(jnp.asarray(x), jnp.asarray(t)))
        np.testing.assert_allclose(nb, fd, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(jx, nb, rtol=1e-12, atol=1e-12)


def test_mixture_score_far_from_every_mode_is_finite():
    score = _MIX2.score()
    x = np.array([300.0, -400.0])
    s = score.numba_fn(x, 0.0, score.numba_data)
    assert np.all(np.isfinite(s))
    # far away the nearest component (in its own metric) dominates: a Gaussian score there
    k = int(np.argmax(_MIX2._component_logpdf(x)[0] + np.log(_MIX2.weights)))
    expected = -np.linalg.solve(_MIX2.covs[k], x - _MIX2.means[k])
    np.testing.assert_allclose(s, expected, rtol=1e-10)


def test_product_of_mixtures_is_the_normalised_pointwise_product():
    other = GaussianMixture([0.4, 0.6], [[1.0, 1.0], [-1.0, 2.0]], [np.eye(2) * 0.7] * 2)
    prod = _MIX2.product(other)
    x = np.random.default_rng(0).normal(0.0, 2.0, size=(50, 2))
    gap = prod.logpdf(x) - (_MIX2.logpdf(x) + other.logpdf(x))
    np.testing.assert_allclose(gap, gap[0], atol=1e-10)  # proportional ...
    # normalised: a Riemann sum on a fine grid (the density is smooth and negligible
    # outside [−12, 12]², so the sum is the integral to far below the tolerance)
    step = 0.04
    g = np.arange(-12.0, 12.0, step) + step / 2
    grid = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    total = float(np.exp(prod.logpdf(grid)).sum() * step * step)
    assert abs(total - 1.0) < 1e-6  # ... and normalised


@pytest.mark.parametrize("beta", [3.0, 0.5])
def test_power_sampler_matches_quadrature(beta):
    """Exact draws of ``q^β / Z`` (rejection) against the quadrature mean, variance and mass
    of the right mode; z-tests of i.i.d. draws (standard errors sd/√n)."""
    q = GaussianMixture([0.7, 0.3], [[-1.0], [2.0]], [[[0.3]], [[0.3]]])
    dens = lambda x: math.exp(beta * q.logpdf(np.array([[x]]))[0])  # noqa: E731
    z, _ = integrate.quad(dens, -12, 12, points=[-1.0, 2.0], limit=200)
    m1 = integrate.quad(lambda x: x * dens(x), -12, 12, points=[-1.0, 2.0], limit=200)[0] / z
    m2 = integrate.quad(lambda x: x * x * dens(x), -12, 12, points=[-1.0, 2.0], limit=200)[0] / z
    p_right = integrate.quad(dens, 0.5, 12, limit=200)[0] / z
    n = 40_000
    x = q.sample_power(beta, n, seed=11)[:, 0]
    var = m2 - m1 * m1
    fourth = np.mean((x - m1) ** 4)
    zs = {
        "mean": (x.mean() - m1) / math.sqrt(var / n),
        "var": (np.mean((x - m1) ** 2) - var) / math.sqrt((fourth - var**2) / n),
        "right mode": (np.mean(x > 0.5) - p_right) / math.sqrt(p_right * (1 - p_right) / n),
    }
    assert all(abs(v) < Z_CRIT for v in zs.values()), zs


def test_vp_process_closed_forms():
    p = VPProcess(T=2.0, b_min=0.3, b_max=7.0)
    for t in (0.0, 0.4, 1.3, 2.0):
        integral, _ = integrate.quad(p.rate, 0.0, t)
        assert abs(p.log_alpha(t) - (-0.5 * integral)) < 1e-12
        assert abs(p.sigma2(t) - (1.0 - p.alpha(t) ** 2)) < 1e-14
    ou = VPProcess.ou(rate=2.0, T=5.0)
    assert abs(ou.alpha(5.0) - math.exp(-5.0)) < 1e-15


# -- 1-D Gaussian cases: closed-form targets -------------------------------------------------------
# (scores as (mean, var) of N(m, v) data laws, betas, exact target mean, var).
_W = 1.5
_CFG_PREC = (1 - _W) / 1.0 + _W / 0.8
_GAUSSIAN_TARGETS = {
    # annealing N(0.5, 0.49)^3 ∝ N(0.5, 0.49/3)
    "anneal": ([(0.5, 0.49)], [3.0], 0.5, 0.49 / 3),
    # product of experts N(−1, 1) N(1.5, 0.5) ∝ N(2/3, 1/3)
    "product": ([(-1.0, 1.0), (1.5, 0.5)], [1.0, 1.0], 2 / 3, 1 / 3),
    # guidance w = 1.5: N(0, 1)^{−0.5} N(−0.4, 0.8)^{1.5}: precision 1.375
    "cfg": ([(0.0, 1.0), (-0.4, 0.8)], [1 - _W, _W], (_W * -0.4 / 0.8) / _CFG_PREC, 1 / _CFG_PREC),
    # guidance w = 2 with experts further apart: N(0, 1)^{−1} N(−0.8, 0.6)^2: precision 7/3.
    # With nearby experts (above) the weights move the mean by only 0.026, about 2 s.d. of
    # one run; here by 0.14 (the unweighted sampler gives −1.290 for −1.143)
    "cfg_w2": ([(0.0, 1.0), (-0.8, 0.6)], [-1.0, 2.0], (2 * -0.8 / 0.6) / (7 / 3), 3 / 7),
}
_N_GAUSS = 20_000
_K_GAUSS = 100
_N_SEEDS_MEASURED = 40
# Measured over 40 seeds (1000..1039) at N = 20 000, K = 100, VPProcess(), c = 1, systematic
# resampling at every step: the bias of the weighted mean and of the relative variance
# (discretisation, O(1/K); within ± sd/√40 of these numbers) and the standard deviations of
# the one-run estimates. The s.d. of the mean is 2–6× the i.i.d. σ/√N (annealing 6×,
# product 4×, guidance 2×): the weights and every resampling correlate the particles.
_GAUSSIAN_CASES = {
    # case: (mean bias, mean sd, relative var bias, relative var sd)
    "anneal": (-0.0050, 0.0178, -0.0070, 0.0399),
    "product": (0.0047, 0.0155, 0.0180, 0.0273),
    "cfg": (-0.0057, 0.0119, 0.0122, 0.0096),
    "cfg_w2": (-0.0077, 0.0074, 0.0145, 0.0108),
}


def _gaussian_run(case: str, seed: int, **kwargs) -> tuple[float, float, float, float]:
    laws, betas, m0, v0 = _GAUSSIAN_TARGETS[case]
    scores = [_gaussian(m, v).score() for m, v in laws]
    result = fkc_sample(scores, betas, _N_GAUSS, dim=1, n_steps=_K_GAUSS, seed=seed, **kwargs)
    m, v = _weighted_moments(result)
    return m, v, m0, v0


@pytest.mark.parametrize("case", sorted(_GAUSSIAN_TARGETS))
def test_gaussian_target_mean_and_variance(case):
    """z-tests of the weighted mean and variance around the measured O(1/K) bias, in units
    of the measured one-run standard deviations (``_GAUSSIAN_CASES``)."""
    m, v, m0, v0 = _gaussian_run(case, seed=7)
    b_m, sd_m, b_v, sd_v = _GAUSSIAN_CASES[case]
    # the measured biases carry their own error, sd/√40
    inflate = math.sqrt(1 + 1 / _N_SEEDS_MEASURED)
    z_mean = (m - m0 - b_m) / (sd_m * inflate)
    z_var = (v / v0 - 1 - b_v) / (sd_v * inflate)
    assert abs(z_mean) < Z_CRIT and abs(z_var) < Z_CRIT, (m, v, m0, v0, z_mean, z_var)


# -- both backends, user score functions, noise layout, resampling control -------------------------
@numba.njit(cache=True)
def _gauss_score_data(x, t, data):
    """Score of N(m, v) data noised by the VP process ``(b_min, b_max, T)``: user code."""
    m, v, b0, b1, big_t = data
    log_alpha = -0.5 * (b0 * t + 0.5 * (b1 - b0) * t * t / big_t)
    a = math.exp(log_alpha)
    return -(x - a * m) / (a * a * v + 1.0 - a * a)


@numba.njit(cache=True)
def _standard_score(x, t):
    """N(0, I) data stays N(0, I) under a VP process."""
    return -x


def _gauss_score_jax(m, v, process):
    import jax.numpy as jnp

    def fn(x, t):
        a = jnp.exp(-0.5 * (process.b_min * t + 0.5 * (process.b_max - process.b_min) * t * t
                            / process.T))  # fmt: skip
        return -(x - a * m) / (a * a * v + 1.0 - a * a)

    return fn


def test_backends_agree_for_shared_noise(x64):
    """Same seed, same draws: Numba and JAX give the same particles, weights and ESS history
    (2-D product of two mixtures, resampling every step)."""
    q1 = GaussianMixture([0.5, 0.5], [[-2.0, 0.0], [2.0, 0.0]], [np.eye(2) * 0.5] * 2)
    q2 = GaussianMixture([0.3, 0.7], [[-2.0, 1.0], [2.0, 1.0]], [np.eye(2) * 0.5] * 2)
    runs = {
        b: fkc_product([q1.score(), q2.score()], 300, dim=2, n_steps=40, seed=5, backend=b)
        for b in ("numba", "jax")
    }
    a, b = runs["numba"], runs["jax"]
    np.testing.assert_allclose(np.asarray(b.particles.x), a.particles.x, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(b.log_weights, a.log_weights, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(b.ess, a.ess, rtol=1e-9)
    # Step 1 follows equal weights (G_0 = 1): ESS = N up to round-off, so whether
    # ``ESS < 1 · N`` holds there depends on the summation order of each backend; systematic
    # resampling of equal weights is the identity, so the particles agree either way.
    assert np.array_equal(a.resampled[2:], b.resampled[2:]) and a.resampled[2:].all()


def test_user_scores_with_and_without_data_match_the_builtin(x64):
    """User Numba scores (with ``data``, and without) and a user JAX score reproduce the run of
    the built-in mixture score exactly for the same noise (guidance, w = 1.5)."""
    process = VPProcess()
    data = (-0.4, 0.8, process.b_min, process.b_max, process.T)
    user_nb = [Score.from_numba(_standard_score), Score.from_numba(_gauss_score_data, data=data)]
    user_jx = [Score.from_jax(_gauss_score_jax(0.0, 1.0, process)),
               Score.from_jax(_gauss_score_jax(-0.4, 0.8, process))]  # fmt: skip
    builtin = [_gaussian(0.0, 1.0).score(process), _gaussian(-0.4, 0.8).score(process)]
    kw = dict(dim=1, n_steps=30, seed=2)
    ref = fkc_guidance(*builtin, 1.5, 400, **kw)
    for scores, backend in ((user_nb, "numba"), (user_jx, "jax")):
        run = fkc_guidance(*scores, 1.5, 400, backend=backend, **kw)
        np.testing.assert_allclose(np.asarray(run.particles.x), ref.particles.x, rtol=1e-9,
                                   atol=1e-9)  # fmt: skip
        np.testing.assert_allclose(run.log_weights, ref.log_weights, rtol=1e-9, atol=1e-9)


class _RecordingNoise:
    """A noise source that records what the loop asks for."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.calls = []

    def uniforms(self, t, k):
        self.calls.append(("u", t, k))
        return self.rng.random(k)

    def particles(self, t, spec, n):
        self.calls.append(("x", t, tuple(type(d).__name__ for d in spec), spec[0].shape, n))
        return type(spec)(self.rng.standard_normal((n, *spec[0].shape)))


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_noise_layout_for_every_scheme(scheme):
    """Per step: the scheme's resampling uniforms, then d normals per particle (and the run
    stays finite with every registered scheme)."""
    from langevin.smc.resampling import uniforms_needed

    n, k_steps = 64, 12
    source = _RecordingNoise(0)
    result = fkc_anneal(_gaussian(0.5, 0.49).score(), 2.0, n, dim=1, n_steps=k_steps,
                        scheme=scheme, noise=source)  # fmt: skip
    expected = [("x", 0, ("Normal",), (1,), n)]
    for t in range(1, k_steps + 1):
        expected += [("u", t, uniforms_needed(scheme, n)), ("x", t, ("Normal",), (1,), n)]
    assert source.calls == expected
    assert np.all(np.isfinite(result.particles.x)) and result.n_steps == k_steps + 1


def test_ess_threshold_decides_resampling():
    """With ``ess_threshold = 0.5`` the population is resampled at step t exactly when the
    ESS after step t − 1 fell below N/2, and the log-weights restart from 0 then."""
    n = 2000
    model = FKCorrector([_gaussian(0.5, 0.49).score()], [3.0], dim=1, n_steps=60)
    result = smc(model, n, ess_threshold=0.5, seed=4)
    expected = result.ess[:-1] < 0.5 * n
    assert np.array_equal(result.resampled[1:], expected)
    assert 0 < expected.sum() < len(expected)  # both branches were taken
    # never resampled: the ESS history is that of accumulated weights; with threshold 0 the
    # weights are never reset, so the ESS can only be lower than with resampling at 0.5
    never = smc(model, n, ess_threshold=0.0, seed=4)
    assert not never.resampled.any() and never.ess[-1] < result.ess.min()


# -- bad input -------------------------------------------------------------------------------------
@numba.njit
def _returns_float(x, t):
    return 1.0


_BAD = [
    (dict(scores=[object()]), TypeError, "scores\\[0\\]"),
    (dict(betas=[1.0, 2.0]), ValueError, "one exponent per score"),
    (dict(betas=[-1.0]), ValueError, "positive sum"),
    (dict(betas=[float("nan")]), ValueError, "betas must be finite"),
    (dict(noise_scale=0.0), ValueError, "noise_scale"),
    (dict(n_steps=0), ValueError, "n_steps"),
    (dict(t_min=1.0), ValueError, "t_min"),
    (dict(dim=0), ValueError, "dim"),
    (dict(backend="numpy"), ValueError, "backend"),
    (dict(n_particles=0), ValueError, "n_particles"),
    (dict(scheme="bogus"), ValueError, "scheme"),
    (dict(ess_threshold=1.5), ValueError, "ess_threshold"),
    (dict(process="vp"), TypeError, "process"),
    (dict(scores=[Score.from_jax(lambda x, t: -x)]), ValueError, "no numba form"),
    (dict(dtype=np.float32), TypeError, "float64"),
]


@pytest.mark.parametrize("change, error, match", _BAD)
def test_bad_input_is_refused_before_compiling(monkeypatch, change, error, match):
    from langevin.smc import correctors

    def refuse(*args, **kwargs):
        raise AssertionError("compiled before checking the input")

    monkeypatch.setattr(correctors, "_move_for", refuse)
    kwargs = dict(scores=[_gaussian(0.0, 1.0).score()], betas=[2.0], n_particles=10, dim=1)
    kwargs.update(change)
    with pytest.raises(error, match=match):
        fkc_sample(**kwargs)


def test_a_score_of_the_wrong_signature_is_named():
    with pytest.raises(TypeError, match="score 'bad'.*could not be compiled"):
        fkc_sample([Score.from_numba(_returns_float, name="bad")], [1.0], 10, dim=1)
    with pytest.raises(TypeError, match="numba.njit"):
        Score.from_numba(lambda x, t: -x)


# -- Gaussian mixtures: W2 to exact samples --------------------------------------------------------
# The test statistic is W2 between n corrector particles (drawn without replacement from the N
# equally weighted final particles) and n exact draws, against the noise floor: W2 between two
# exact samples of size n. For i.i.d. samples of a smooth law, E W2²(sample_n, π) ≈ V/n, so the
# floor is ≈ 2V/n; the corrector's population adds κV/N (κ: variance inflation from the
# weights and resampling, ≈ 36 for the mean in the Gaussian annealing case above) and its
# bias b²:
#
#     ratio² = W2²(corrector, exact) / floor² ≈ 1 + κ n / (2N) + b² n / (2V).
#
# With N = 50 000, n = 4000 (1-D) or 2000 (2-D) the corrector's ratio was 0.73–1.73 (anneal,
# 12 seeds) and 0.88–1.16 (product, 12 seeds); without the weights 3.3–5.0 and 3.2–4.0. The
# factor 2.5 separates them. The corrector's error has a heavy tail: 1 run in 28 of the
# product (N = 50 000) had ratio 2.8, as bad as no weights (a misplaced ~10% of mass between
# the product's components, built up over many steps from particles in the far tails, whose
# weights grow); at N = 20 000 it was 1 in 10. The slow test allows for it.
_W2_FACTOR = 2.5
_W2_N = 50_000  # particles
_I2 = np.eye(2)
_MIXTURE_CASES = {
    # 1-D annealing β = 2 of a skewed two-component mixture: without weights the modes come
    # out too narrow and the small mode too heavy
    "anneal": ([GaussianMixture([0.7, 0.3], [[-1.0], [1.0]], [[[0.5]], [[0.5]]])], [2.0]),
    # 2-D product of two mixtures that disagree along x (experts centred at x = −1 and 3): the
    # product is a four-component mixture near x = 1.6; without weights it sits too far left
    "product": (
        [
            GaussianMixture([0.6, 0.4], [[-1.0, 0.0], [-1.0, 2.0]], [_I2, 0.8 * _I2]),
            GaussianMixture(
                [0.5, 0.5], [[3.0, 0.0], [3.0, 2.0]], [0.5 * _I2, [[0.5, 0.15], [0.15, 0.4]]]
            ),
        ],
        [1.0, 1.0],
    ),
}


def _exact_sampler(case: str):
    mixtures, betas = _MIXTURE_CASES[case]
    if case == "anneal":
        return lambda n, seed: mixtures[0].sample_power(betas[0], n, seed)
    law = mixtures[0].product(mixtures[1])
    return lambda n, seed: law.sample(n, seed)


def _w2_ratios(case: str, seed: int, correct: bool = True, **kwargs) -> tuple[float, float]:
    """``(W2(corrector, exact) / floor, floor)``. In 1-D W2 is computed by POT's sliced
    distance with one direction, which there *is* W2 (sorting, O(n log n)): n = 4000,
    averaged over 10 exact samples and 10 floor pairs. In 2-D by exact OT: n = 2000, averaged
    over 2 exact samples and 2 floor pairs."""
    mixtures, betas = _MIXTURE_CASES[case]
    dim = mixtures[0].dim
    method, reps, n = ("sliced", 10, 4000) if dim == 1 else ("exact", 2, 2000)
    # in 1-D one projection is the whole distance (the direction is ±1)
    kw = {"n_projections": 1} if method == "sliced" else {}
    # without weights the particles never interact: n of them are n independent draws
    n_particles = _W2_N if correct else n
    result = fkc_sample([m.score() for m in mixtures], betas, n_particles, dim=dim,
                        n_steps=100, seed=seed, correct=correct, **kwargs)  # fmt: skip
    rng = np.random.default_rng(seed)
    x = equally_weighted(result, seed=seed)
    x = x[rng.choice(n_particles, n, replace=False)]
    draw = _exact_sampler(case)
    ys = [draw(n, 10_000 * seed + j) for j in range(3 * reps)]
    floor = np.mean([wasserstein(ys[reps + 2 * j], ys[reps + 2 * j + 1], method, **kw)
                     for j in range(reps)])  # fmt: skip
    w2 = np.mean([wasserstein(x, ys[j], method, **kw) for j in range(reps)])
    return float(w2 / floor), float(floor)


@pytest.mark.parametrize("case", sorted(_MIXTURE_CASES))
def test_mixture_target_w2_within_noise_floor(case):
    ratio, floor = _w2_ratios(case, seed=3)
    assert ratio <= _W2_FACTOR, (ratio, floor)


@pytest.mark.parametrize("case", sorted(_MIXTURE_CASES))
def test_without_weights_the_w2_is_clearly_larger(case):
    """The same drift without the Feynman–Kac weights (plain annealed Langevin / plain
    product sampler) fails the criterion the corrector passes."""
    ratio, floor = _w2_ratios(case, seed=3, correct=False)
    assert ratio > _W2_FACTOR, (ratio, floor)


# -- slow: the tolerances above over many seeds ----------------------------------------------------
_N_SEEDS_NEW = 10


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(_GAUSSIAN_TARGETS))
def test_gaussian_tolerances_over_seeds(case):
    """10 new seeds: every one-run z-test passes, and the 10-run averages agree with the
    measured biases (z-tests with standard error sd·√(1/10 + 1/40)). (10, not 20: the slow
    job runs once per CI run, within its time budget.)"""
    b_m, sd_m, b_v, sd_v = _GAUSSIAN_CASES[case]
    runs = np.array([_gaussian_run(case, seed=2000 + s)[:2] for s in range(_N_SEEDS_NEW)])
    _, _, m0, v0 = _GAUSSIAN_TARGETS[case]
    z_m = (runs[:, 0] - m0 - b_m) / sd_m
    z_v = (runs[:, 1] / v0 - 1 - b_v) / sd_v
    assert np.all(np.abs(z_m) < Z_CRIT) and np.all(np.abs(z_v) < Z_CRIT), (z_m, z_v)
    se = math.sqrt(1 / _N_SEEDS_NEW + 1 / _N_SEEDS_MEASURED)
    assert abs(z_m.mean()) / se < Z_CRIT and abs(z_v.mean()) / se < Z_CRIT, (z_m, z_v)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(_MIXTURE_CASES))
def test_mixture_w2_over_seeds(case):
    """10 seeds: the unweighted sampler always fails the criterion; the corrector's median
    ratio is at most 1.5 and at most 2 of 10 runs exceed the factor (measured tail: about 1
    run in 28 for the product; with that rate P(≥ 3 of 10) ≈ 0.5%)."""
    ratios, plains = [], []
    for seed in range(100, 100 + _N_SEEDS_NEW):
        ratios.append(_w2_ratios(case, seed)[0])
        plains.append(_w2_ratios(case, seed, correct=False)[0])
    ratios = np.array(ratios)
    assert min(plains) > _W2_FACTOR, plains
    assert np.median(ratios) <= 1.5 and np.sum(ratios > _W2_FACTOR) <= 2, ratios


@pytest.mark.slow
def test_tempered_noise_is_biased():
    """The paper's tempered noise c = 1/β at β = 3 (ALGORITHMS.md §7c: variance 0.084 for an
    exact 0.163): the variance comes out far too small on every seed."""
    rel = [_gaussian_run("anneal", seed=s, noise_scale=1 / 3)[1] / (0.49 / 3) - 1 for s in range(5)]
    assert max(rel) < -0.25, rel


def test_one_dimensional_sliced_w2_is_w2():
    """The 1-D shortcut used above: POT's sliced distance with one direction equals exact OT."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((400, 1)), 1.3 * rng.standard_normal((300, 1)) + 0.2
    assert abs(wasserstein(x, y, "sliced", n_projections=1) - wasserstein(x, y)) < 1e-12
