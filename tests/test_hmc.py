"""HMC and its warm-up: integrators, exactness, energy-error order, divergences, mass matrix.

The conformance suite runs HMC like every exported kernel (both backends, same noise, same
chain); here: the integrators' coefficients against their error expansion, one transition
against a textbook implementation, backend agreement with per-chain parameters, MCSE z-tests
(Numba; JAX in the slow job), the O(h²) energy error, divergence reporting, and Stan's
windowed mass-matrix adaptation piece by piece and end to end.
"""

from __future__ import annotations

import math
import warnings

import arviz as az
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm, logm

import langevin
from langevin.adaptation.mass_matrix import (
    WelfordVariance,
    regularized_variance,
    window_schedule,
)
from langevin.backends import jax_backend, numba_backend, numpy_ops
from langevin.driver import DivergentTransitionWarning
from langevin.kernels.hmc import HMC, HMCNoise, HMCParams
from langevin.kernels.integrators import (
    INTEGRATORS,
    MAX_STAGES,
    get_integrator,
    padded_coefficients,
)
from tests.conftest import correlated_gaussian
from tests.stats_helpers import assert_z_ok, moment_z_scores, z_score

LAMBDA = INTEGRATORS["minimal_norm"].kick[0]


# -- integrators as data -------------------------------------------------------------------
def error_coefficients(kick, drift, h=1e-2, seed=0):
    """``(c_A, c_B)`` of ``log Ψ_h = h(A+B) + h³(c_A[A,[A,B]] + c_B[B,[B,A]]) + O(h⁵)`` for the
    splitting ``e^{b₁hB} e^{a₁hA} ⋯ e^{b_{s+1}hB}``, read off with random 6×6 matrices."""
    rng = np.random.default_rng(seed)
    A, B = 0.5 * rng.standard_normal((2, 6, 6))
    step = expm(kick[0] * h * B)
    for a, b in zip(drift, kick[1:]):
        step = step @ expm(a * h * A) @ expm(b * h * B)
    err = (logm(step).real - h * (A + B)) / h**3
    AAB = A @ (A @ B - B @ A) - (A @ B - B @ A) @ A
    BBA = B @ (B @ A - A @ B) - (B @ A - A @ B) @ B
    basis = np.stack([AAB.ravel(), BBA.ravel()], axis=1)
    coef, *_ = np.linalg.lstsq(basis, err.ravel(), rcond=None)
    return coef


def test_integrator_registry_is_consistent_data():
    assert set(INTEGRATORS) == {"leapfrog", "minimal_norm"}
    for name, integ in INTEGRATORS.items():
        assert integ.name == name and integ.order == 2
        assert integ.kick == integ.kick[::-1] and integ.drift == integ.drift[::-1]
        assert math.isclose(sum(integ.kick), 1.0) and math.isclose(sum(integ.drift), 1.0)
        assert len(integ.kick) == integ.n_stages + 1 <= MAX_STAGES + 1
        kick, drift = padded_coefficients(integ)
        assert kick.shape == (MAX_STAGES + 1,) and drift.shape == (MAX_STAGES,)
        np.testing.assert_array_equal(kick[: integ.n_stages + 1], integ.kick)
        np.testing.assert_array_equal(kick[integ.n_stages + 1 :], 0.0)
    assert INTEGRATORS["leapfrog"].n_stages == 1 and INTEGRATORS["minimal_norm"].n_stages == 2
    # McLachlan's (1995) constant as quoted in the literature (BlackJAX: 0.1931833275037836)
    assert abs(LAMBDA - 0.1931833275037836) < 1e-15
    with pytest.raises(ValueError, match=r"\['leapfrog', 'minimal_norm'\]"):
        get_integrator("yoshida")


def test_error_coefficients_and_minimal_norm():
    """Leapfrog's h³ coefficients are (1/12, −1/24); the two-stage family's are
    ((6λ−1)/24, (6λ²−6λ+1)/12), and λ ≈ 0.19318 minimises their norm (McLachlan 1995)."""
    lf = INTEGRATORS["leapfrog"]
    np.testing.assert_allclose(error_coefficients(lf.kick, lf.drift), [1 / 12, -1 / 24], rtol=1e-4)

    def two_stage(lam):
        return error_coefficients((lam, 1 - 2 * lam, lam), (0.5, 0.5))

    for lam in (0.15, LAMBDA, 0.25):
        expected = [(6 * lam - 1) / 24, (6 * lam**2 - 6 * lam + 1) / 12]
        np.testing.assert_allclose(two_stage(lam), expected, rtol=1e-3, atol=1e-7)
    norm = {lam: np.linalg.norm(two_stage(lam)) for lam in (LAMBDA - 0.01, LAMBDA, LAMBDA + 0.01)}
    assert norm[LAMBDA] < min(norm[LAMBDA - 0.01], norm[LAMBDA + 0.01])
    assert np.linalg.norm([1 / 12, 1 / 24]) / norm[LAMBDA] > 10


# -- arguments -------------------------------------------------------------------------------
@pytest.fixture
def no_compile(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the backend was reached: the check came too late")

    monkeypatch.setattr(numba_backend, "prepare", boom)
    monkeypatch.setattr(jax_backend, "prepare", boom)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(n_leapfrog=0), ValueError, "n_leapfrog"),
        (dict(n_leapfrog=2.5), TypeError, "n_leapfrog"),
        (dict(n_leapfrog=True), TypeError, "n_leapfrog"),
        (dict(inverse_mass=np.ones((2, 2))), ValueError, "inverse_mass"),
        (dict(inverse_mass=[1.0, -1.0]), ValueError, "inverse_mass"),
        (dict(inverse_mass=[1.0, 0.0]), ValueError, "inverse_mass"),
        (dict(inverse_mass=[1.0, np.nan]), ValueError, "inverse_mass"),
        (dict(inverse_mass=[]), ValueError, "inverse_mass"),
        (dict(inverse_mass=["a", "b"]), TypeError, "inverse_mass"),
        (dict(integrator="euler"), ValueError, "leapfrog.*minimal_norm"),
        (dict(divergence_threshold=0.0), ValueError, "divergence_threshold"),
        (dict(step_size=-0.1), ValueError, "step_size"),
    ],
)
def test_bad_hmc_arguments(kwargs, exc, match, no_compile):
    kwargs = {"step_size": 0.1, **kwargs}
    with pytest.raises(exc, match=match):
        HMC(**kwargs)


def test_bad_sample_arguments_for_hmc_raise_before_compiling(no_compile):
    target = langevin.targets.gaussian(3)
    with pytest.raises(ValueError, match="inverse_mass has 2 entries.*dim=3"):
        langevin.sample(target, HMC(0.1, inverse_mass=[1.0, 2.0]), progress=False)
    with pytest.raises(ValueError, match="adapt_mass_matrix"):
        langevin.sample(target, langevin.MALA(0.1), adapt_mass_matrix=True, progress=False)
    with pytest.raises(TypeError, match="adapt_mass_matrix"):
        langevin.sample(target, HMC(0.1), adapt_mass_matrix="yes", progress=False)


def test_hmc_declares_itself():
    assert "HMC" in langevin.kernels.__all__ and langevin.HMC is HMC
    assert HMC.exact and HMC.adapts_step_size and HMC.adapts_inverse_mass
    assert HMC.target_acceptance == 0.8  # Stan's adapt_delta
    assert not langevin.MALA.adapts_inverse_mass
    params = HMC(0.1, n_leapfrog=7, inverse_mass=[1.0, 2.0], integrator="minimal_norm").params()
    assert params.n_leapfrog == 7 and params.n_stages == 2
    np.testing.assert_array_equal(params.inverse_mass, [1.0, 2.0])
    np.testing.assert_array_equal(HMC(0.1).params().inverse_mass, [1.0])  # broadcasts


# -- one transition, exactly -----------------------------------------------------------------
def textbook_transition(x, xi, u, h, n_leapfrog, inverse_mass, integrator, mean, precision):
    """HMC as written in Neal (2011), every kick with its own gradient: (x', ΔH, accepted)."""
    integ = get_integrator(integrator)

    def logp(q):
        return -0.5 * (q - mean) @ precision @ (q - mean)

    def grad(q):
        return -precision @ (q - mean)

    p0 = xi / np.sqrt(inverse_mass)
    q, p = x.copy(), p0.copy()
    for _ in range(n_leapfrog):
        for b, a in zip(integ.kick, integ.drift):
            p = p + b * h * grad(q)
            q = q + a * h * inverse_mass * p
        p = p + integ.kick[-1] * h * grad(q)
    h0 = 0.5 * np.sum(inverse_mass * p0**2) - logp(x)
    h1 = 0.5 * np.sum(inverse_mass * p**2) - logp(q)
    accepted = np.log(u) < h0 - h1
    return (q if accepted else x), h1 - h0, accepted


@pytest.mark.parametrize("integrator", ["leapfrog", "minimal_norm"])
def test_one_transition_is_textbook_hmc(integrator, gaussian4):
    target, mean, cov = gaussian4
    precision = np.linalg.inv(cov)
    rng = np.random.default_rng(3)
    chains, h, n = 6, 0.5, 7
    inverse_mass = rng.uniform(0.3, 2.0, (chains, 4))
    x0 = rng.standard_normal((chains, 4))
    xi = rng.standard_normal((chains, 1, 4))
    u = np.array([1e-300, 0.5, 0.9, 1 - 1e-16, 0.9, 1 - 1e-16])[:, None]
    kernel = HMC(h, n_leapfrog=n, integrator=integrator)
    params = numba_backend.broadcast_params(kernel.params(), chains)._replace(
        inverse_mass=inverse_mass
    )
    prepared = numba_backend.prepare(kernel, target, 4, np.float64)
    states = numba_backend.init(prepared, x0)
    noise = HMCNoise(xi, u)
    out = numba_backend.run(prepared, states, 1, np.full(chains, h), noise=noise, params=params)
    n_stages = get_integrator(integrator).n_stages
    for c in range(chains):
        x1, dh, acc = textbook_transition(x0[c], xi[c, 0], u[c, 0], h, n, inverse_mass[c],
                                          integrator, mean, precision)  # fmt: skip
        np.testing.assert_allclose(out.position[c, 0], x1, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(out.info["energy_error"][c, 0], dh, rtol=1e-9, atol=1e-12)
        assert out.info["is_accepted"][c, 0] == acc
        np.testing.assert_allclose(out.info["acceptance_rate"][c, 0], min(1.0, np.exp(-dh)))
        assert out.info["n_grad"][c, 0] == n * n_stages
        assert not out.info["diverging"][c, 0]
    # both decisions occur, so the comparison covers acceptance and rejection
    assert 0 < out.info["is_accepted"].sum() < chains


@pytest.mark.parametrize("integrator", ["leapfrog", "minimal_norm"])
def test_backends_agree_with_per_chain_mass_and_steps(integrator, gaussian4, x64):
    """Same noise, same chain on both backends (1e-12) with per-chain inverse masses, numbers
    of steps and step sizes — the per-chain runtime parameters warm-up produces."""
    target, _, _ = gaussian4
    chains, steps = 3, 40
    rng = np.random.default_rng(11)
    kernel = HMC(0.1, integrator=integrator)
    inverse_mass = rng.uniform(0.2, 1.0, (chains, 4))
    n_leapfrog = np.array([3, 7, 10])
    per_chain = [kernel.params()._replace(n_leapfrog=int(n), inverse_mass=m)
                 for n, m in zip(n_leapfrog, inverse_mass)]  # fmt: skip
    stacked = HMCParams(*(np.stack([np.asarray(p[i]) for p in per_chain]) for i in range(6)))
    # large enough for rejections (the minimal-norm scheme is stable to larger steps)
    step = np.array([0.3, 0.5, 0.4]) * (2 if integrator == "minimal_norm" else 1)
    per_chain_noise = [HMCNoise(rng.standard_normal((steps, 4)), rng.random(steps))
                       for _ in range(chains)]  # fmt: skip
    noise_nb = noise_jx = HMCNoise(*(np.stack([nz[i] for nz in per_chain_noise])
                                     for i in range(2)))  # fmt: skip
    x0 = rng.standard_normal((chains, 4))
    p_nb = numba_backend.prepare(kernel, target, 4, np.float64)
    r_nb = numba_backend.run(p_nb, numba_backend.init(p_nb, x0), steps, step, noise=noise_nb,
                             params=stacked)  # fmt: skip
    p_jx = jax_backend.prepare(kernel, target, 4, np.float64)
    r_jx = jax_backend.run(p_jx, jax_backend.init(p_jx, x0), steps, step, noise=noise_jx,
                           params=stacked)  # fmt: skip
    np.testing.assert_allclose(r_nb.position, r_jx.position, rtol=0, atol=1e-12)
    for name in r_nb.info:
        np.testing.assert_allclose(r_nb.info[name], r_jx.info[name], rtol=1e-10, atol=1e-12)
    n_stages = get_integrator(integrator).n_stages
    np.testing.assert_array_equal(
        r_nb.info["n_grad"], np.broadcast_to((n_leapfrog * n_stages)[:, None], (3, steps))
    )
    assert 0.3 < r_nb.info["is_accepted"].mean() < 1.0  # the chains moved and were corrected


def test_changing_integrator_steps_or_size_compiles_nothing():
    target = langevin.targets.gaussian(3)
    kw = dict(chains=2, warmup=30, draws=20, seed=0, progress=False)
    langevin.sample(target, HMC(0.3), **kw)
    loops = dict(numba_backend._LOOPS)
    n_sigs = {k: len(v.signatures) for k, v in loops.items()}
    langevin.sample(target, HMC(0.5, n_leapfrog=3, integrator="minimal_norm"), **kw)
    langevin.sample(langevin.targets.gaussian(3), HMC(0.2, n_leapfrog=20), **kw)
    assert dict(numba_backend._LOOPS) == loops
    assert {k: len(v.signatures) for k, v in loops.items()} == n_sigs

    count = {"n": 0}

    def logdensity(x):
        count["n"] += 1  # runs only while JAX traces
        return -0.5 * jnp.sum(x**2)

    jax_target = langevin.Target.from_jax(logdensity, dim=2)
    langevin.sample(jax_target, HMC(0.3), backend="jax", **kw)
    first = count["n"]
    langevin.sample(jax_target, HMC(0.5, n_leapfrog=3, integrator="minimal_norm"),
                    backend="jax", **kw)  # fmt: skip
    langevin.sample(jax_target, HMC(0.2, n_leapfrog=20), backend="jax", **{**kw, "warmup": 0})
    assert count["n"] == first


# -- exactness: MCSE z-tests -----------------------------------------------------------------
def check_hmc_gaussian(dim, target_seed, integrator, seed, backend="numba", draws=4000):
    target, mean, cov = correlated_gaussian(dim, seed=target_seed)
    kernel = HMC(0.1, n_leapfrog=8, integrator=integrator)
    trace = langevin.sample(target, kernel, chains=4, warmup=500, draws=draws, seed=seed,
                            backend=backend, progress=False)  # fmt: skip
    assert trace.diverged == {} and not trace.sample_stats["diverging"].any()
    # above the 0.8 target: sampling uses the averaged step, below the integrator's
    # stability cliff, where acceptance is near 1 on a low-dimensional Gaussian
    assert 0.6 < trace.sample_stats["acceptance_rate"].mean() < 1.0
    assert_z_ok(moment_z_scores(trace.draws, mean, cov))


@pytest.mark.parametrize("integrator", ["leapfrog", "minimal_norm"])
def test_hmc_moments_correlated_gaussian(integrator):
    check_hmc_gaussian(4, target_seed=0, integrator=integrator, seed=31)


def test_hmc_detects_wrong_target_variance():
    """Power: the same run rejects a covariance 10% off."""
    target, mean, cov = correlated_gaussian(4, seed=0)
    trace = langevin.sample(target, HMC(0.1, n_leapfrog=8), chains=4, warmup=500, draws=4000,
                            seed=31, progress=False)  # fmt: skip
    zs = moment_z_scores(trace.draws, mean, 1.1 * cov)
    assert max(abs(v) for v in zs.values()) > 4.56


def check_hmc_posteriordb(make, draws, seed, backend="numba"):
    """Means against posteriordb (exact quadrature for the coefficients, Stan draws for
    log σ with their own MCSE) and coefficient variances against exact quadrature."""
    target = make()
    ref = target.reference
    trace = langevin.sample(target, HMC(0.01, n_leapfrog=8), chains=4, warmup=1000,
                            draws=draws, seed=seed, backend=backend, progress=False)  # fmt: skip
    assert not trace.diverged and not trace.sample_stats["diverging"].any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ess = np.array([float(az.ess(trace.draws[..., i], method="bulk"))
                        for i in range(target.dim)])  # fmt: skip
    assert np.all(ess >= 400), f"run too short to trust its MCSE: ESS {ess.round(0)}"
    zs = {}
    for i in range(target.dim):
        zs[f"mean[{i}]"] = z_score(trace.draws[..., i], ref.mean[i], ref.mean_mcse[i])
    for i in range(target.dim - 1):  # coefficients: exact quadrature second moments
        zs[f"var[{i}]"] = z_score((trace.draws[..., i] - ref.mean[i]) ** 2, ref.sd[i] ** 2)
    assert_z_ok(zs)
    # warm-up found the posterior scales: the adapted inverse mass is the posterior variance
    ratio = trace.inverse_mass / ref.sd**2
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio.round(2)


def test_hmc_matches_posteriordb_earnings():
    check_hmc_posteriordb(langevin.targets.earnings_logearn_interaction_z, 2000, seed=5)


# -- the energy error is O(h²) ----------------------------------------------------------------
def energy_errors(target, integrator, T, n_leapfrogs, x0):
    """|ΔH| of one trajectory of length T = L·h from each start, same momenta for every h."""
    out = []
    for n in n_leapfrogs:
        kernel = HMC(T / n, n_leapfrog=n, integrator=integrator)
        trace = langevin.sample(target, kernel, chains=len(x0), warmup=0, draws=1, seed=3,
                                initial_position=x0, adapt_mass_matrix=False,
                                progress=False)  # fmt: skip
        out.append(np.abs(trace.sample_stats["energy_error"][:, 0]))
    return np.array(out)


def _order_case(name):
    rng = np.random.default_rng(0)
    if name == "gaussian":
        target, mean, cov = correlated_gaussian(4, seed=0)
        return target, rng.multivariate_normal(mean, cov, size=16), 1.5
    target = langevin.targets.earnings_logearn_interaction_z()  # non-Gaussian in log σ
    ref = target.reference
    return target, ref.draws[rng.choice(len(ref.draws), 16)], 1.5 * ref.sd.min()


@pytest.mark.parametrize("case", ["gaussian", "earnings"])
def test_energy_error_is_second_order(case):
    """Fixed trajectory length T, h = T/L halving: mean |ΔH| over 16 starts ∝ h².

    The errors are deterministic (same starts and momenta for every h), so there is no
    Monte Carlo noise: the fitted slope differs from 2 only through the higher-order terms,
    ΔH = c₂h² + c₄h⁴ + …, which change the local slope by ≈ 2c₄h²/c₂. The h ranges are where
    every local slope is within 0.06 of 2 (measured: leapfrog 2.02 → 2.000, minimal-norm
    1.95 → 1.997 on the Gaussian, whose minimal-norm c₂ is ~100× smaller so its asymptotic
    range starts later); a first- or fourth-order integrator would miss by ≥ 1.
    """
    target, x0, T = _order_case(case)
    constants = {}
    for integrator, n_leapfrogs in [("leapfrog", [16, 32, 64, 128]),
                                    ("minimal_norm", [32, 64, 128, 256])]:  # fmt: skip
        err = energy_errors(target, integrator, T, n_leapfrogs, x0).mean(axis=1)
        h = T / np.array(n_leapfrogs)
        local = np.log2(err[:-1] / err[1:])
        slope = np.polyfit(np.log(h), np.log(err), 1)[0]
        assert abs(slope - 2) < 0.05 and np.all(np.abs(local - 2) < 0.06), (slope, local)
        constants[integrator] = np.mean(err / h**2)
    # the minimal-norm constant is far smaller: measured ~1/100 per step on both targets, so
    # it wins even at equal cost (h twice leapfrog's: ×4) by ~25
    assert constants["minimal_norm"] < constants["leapfrog"] / 25


# -- divergences ------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numba", "jax"])
@pytest.mark.filterwarnings("ignore::langevin.driver.StuckChainWarning")  # they barely move
def test_divergent_transitions_are_flagged_reported_and_chains_go_on(backend):
    """A step past the stability limit of the stiff direction (h ω = 2.05 > 2, ω = 100)
    makes energy errors explode: flagged, warned about with the count, never stopping a
    chain; a far larger step overflows to non-finite energies, flagged the same way."""
    target = langevin.targets.gaussian(2, cov=np.diag([1.0, 1e-4]))
    kw = dict(chains=3, warmup=0, draws=100, seed=2, backend=backend, progress=False)
    with pytest.warns(DivergentTransitionWarning, match=r"(\d+) of 300 transitions") as rec:
        trace = langevin.sample(target, HMC(0.0205, n_leapfrog=6), **kw)
    flags = trace.sample_stats["diverging"]
    assert 0 < flags.sum() < flags.size  # some trajectories blow up, others do not
    assert f"{int(flags.sum())} of 300" in str(rec[0].message)
    ee = trace.sample_stats["energy_error"]
    np.testing.assert_array_equal(flags, ~(ee <= 1000.0))
    assert not trace.sample_stats["is_accepted"][flags].any()
    assert trace.diverged == {} and np.all(np.isfinite(trace.draws))
    assert int(trace.to_arviz().sample_stats["diverging"].sum()) == int(flags.sum())

    with pytest.warns(DivergentTransitionWarning, match="300 of 300"):
        blown = langevin.sample(target, HMC(5.0, n_leapfrog=200), **kw)
    assert not np.all(np.isfinite(blown.sample_stats["energy_error"]))
    assert np.all(blown.sample_stats["acceptance_rate"] == 0.0)
    assert blown.diverged == {} and np.all(np.isfinite(blown.draws))

    with warnings.catch_warnings():
        # a huge threshold flags nothing finite: no divergence warning
        warnings.simplefilter("error", DivergentTransitionWarning)
        loose = langevin.sample(target, HMC(0.0205, n_leapfrog=6, divergence_threshold=1e300),
                                **kw)  # fmt: skip
    assert not loose.sample_stats["diverging"].any()


# -- warm-up: windows, Welford, the driver -----------------------------------------------------
def test_window_schedule_is_stans():
    s = window_schedule(1000)
    assert (s.init_buffer, s.term_buffer) == (75, 50)
    assert s.windows == ((75, 100), (100, 150), (150, 250), (250, 450), (450, 950))
    assert s.boundaries == (75, 100, 150, 250, 450, 950)
    assert s.collecting(75) and s.collecting(949) and not s.collecting(74)
    assert not s.collecting(950)
    # AdvancedHMC's printout of Stan's schedule for 2000 warm-up steps: 75, 100, ..., 1950
    assert window_schedule(2000).ends == (100, 150, 250, 450, 850, 1950)
    # 75 + 25 + 50 > warmup: 15% / 75% / 10%, one slow window (Stan truncates to integers)
    assert window_schedule(100).windows == ((15, 90),)
    assert window_schedule(149).windows == ((22, 135),)
    assert window_schedule(150).windows == ((75, 100),)
    assert window_schedule(160).windows == ((75, 100), (100, 110))  # Stan shrinks, not drops
    assert window_schedule(20).windows == ((3, 18),)
    assert window_schedule(19).windows == () and window_schedule(0).windows == ()
    for warmup in range(20, 3000, 7):
        s = window_schedule(warmup)
        starts, ends = zip(*s.windows)
        assert starts[0] == s.init_buffer and ends[-1] == warmup - s.term_buffer
        assert starts[1:] == ends[:-1]
        sizes = np.diff([starts[0], *ends])
        assert np.all(sizes[1:-1] == 2 * sizes[:-2])  # doubling; the last one runs to the end


def test_welford_matches_numpy_on_streamed_chunks():
    rng = np.random.default_rng(0)
    x = 1e6 + rng.standard_normal((3, 257, 5)) * np.array([1e-3, 1.0, 10.0, 0.1, 5.0])
    w = WelfordVariance(3, 5)
    assert np.all(np.isnan(w.variance()))
    for block in np.split(x, [1, 2, 40, 41, 200], axis=1):
        w.update(block)
    assert w.count == 257
    np.testing.assert_allclose(w.mean, x.mean(axis=1), rtol=1e-14)
    # data at 1e6 ± 1e-3: the ulp of 1e6 (1.2e-10) limits any two estimators' agreement on
    # the smallest variance (1e-6) to ~1e-7 relative; a one-pass E[x²] − E[x]² would be lost
    np.testing.assert_allclose(w.variance(), x.var(axis=1, ddof=1), rtol=1e-7)
    w.reset()
    w.update(x[:, :10])
    # the ulp bound above
    np.testing.assert_allclose(w.variance(), x[:, :10].var(axis=1, ddof=1), rtol=1e-7)
    with pytest.raises(ValueError, match="shape"):
        w.update(x[:2])


def test_welford_does_not_depend_on_the_blocks():
    """Bit for bit the same whatever the chunking: a checkpointed, resumed or differently
    chunked warm-up adapts the same inverse mass."""
    x = np.random.default_rng(1).standard_normal((2, 300, 4)) * 3.0 + 7.0
    results = []
    for cuts in ([], [1, 150], [7, 8, 9, 250], list(range(1, 300))):
        w = WelfordVariance(2, 4)
        for block in np.split(x, cuts, axis=1):
            w.update(block)
        results.append((w.mean, w.m2))
    for mean, m2 in results[1:]:
        np.testing.assert_array_equal(mean, results[0][0])
        np.testing.assert_array_equal(m2, results[0][1])
    n = 25
    shrink, floor = n / (n + 5), 1e-3 * 5 / (n + 5)
    np.testing.assert_allclose(regularized_variance(np.array([2.0, 0.0]), n),
                               [shrink * 2.0 + floor, floor])  # fmt: skip


class _Spy:
    """Records every chunk the driver runs on the Numba backend."""

    def __init__(self, monkeypatch):
        self.chunks = []
        real = numba_backend.run

        def run(prepared, states, n, step_size, **kwargs):
            out = real(prepared, states, n, step_size, **kwargs)
            start = sum(c["n"] for c in self.chunks)
            chains = out.position.shape[0]

            def rows(tree):  # the batched (leading chain axis) values, chain by chain
                return [numpy_ops.index_tree(tree, c) for c in range(chains)]

            self.chunks.append(dict(
                start=start, n=n, position=out.position.copy(), params=rows(kwargs["params"]),
                da=rows(kwargs["adaptation"]), da_out=rows(out.adaptation),
            ))  # fmt: skip
            return out

        monkeypatch.setattr(numba_backend, "run", run)

    def positions(self, lo, hi):
        return np.concatenate([c["position"] for c in self.chunks if lo <= c["start"] < hi], 1)

    def chunk_at(self, start):
        return next(c for c in self.chunks if c["start"] == start)


def test_driver_adapts_the_mass_on_window_draws_and_restarts_step_size(monkeypatch):
    """Every window boundary is a chunk boundary; after each window every chain runs with
    Stan's regularised variance of exactly that window's draws; dual averaging restarts
    from the step size moved with the metric."""
    spy = _Spy(monkeypatch)
    target, _, _ = correlated_gaussian(3, seed=1)
    trace = langevin.sample(target, HMC(0.2, n_leapfrog=5), chains=2, warmup=1000, draws=10,
                            seed=4, progress=False)  # fmt: skip
    starts = {c["start"] for c in spy.chunks}
    assert {75, 100, 150, 250, 450, 950, 1000} <= starts
    previous = np.ones((2, 3))
    for lo, hi in window_schedule(1000).windows:
        draws = spy.positions(lo, hi)
        assert draws.shape[1] == hi - lo
        expected = regularized_variance(draws.var(axis=1, ddof=1), hi - lo)
        after = spy.chunk_at(hi)
        used = np.array([p.inverse_mass for p in after["params"]])
        np.testing.assert_allclose(used, expected, rtol=1e-12)
        # dual averaging restarted (≥ 10 warm-up steps left) at h·max√(old/new), μ = log 10h
        end_state = spy.chunks[spy.chunks.index(after) - 1]["da_out"]
        for c in range(2):
            h = math.exp(end_state[c].log_step_avg) * np.sqrt(np.max(previous[c] / used[c]))
            da = after["da"][c]
            assert da.count == 0 and da.error_avg == 0.0
            assert math.isclose(da.log_step, math.log(h), rel_tol=1e-12, abs_tol=1e-12)
            assert math.isclose(da.mu, math.log(10 * h), rel_tol=1e-12, abs_tol=1e-12)
        previous = used
    np.testing.assert_allclose(trace.inverse_mass, previous, rtol=0)
    for c in spy.chunks[:2]:  # before the first window: the kernel's inverse mass (ones)
        assert all(np.array_equal(p.inverse_mass, np.ones(3)) for p in c["params"])


def test_short_warmup_shifts_rather_than_restarts(monkeypatch):
    """warmup = 60: one window [9, 54), 6 steps left (< t₀ = 10): the running dual averaging
    is shifted by log f instead of restarted, so its count goes on."""
    spy = _Spy(monkeypatch)
    target, _, _ = correlated_gaussian(3, seed=1)
    langevin.sample(target, HMC(0.2, n_leapfrog=5), chains=2, warmup=60, draws=10, seed=4,
                    progress=False)  # fmt: skip
    after = spy.chunk_at(54)
    before = spy.chunks[spy.chunks.index(after) - 1]["da_out"]
    used = np.array([p.inverse_mass for p in after["params"]])
    for c in range(2):
        shift = 0.5 * math.log(np.max(1.0 / used[c]))
        da = after["da"][c]
        assert da.count == before[c].count == 54
        assert math.isclose(da.mu, before[c].mu + shift, rel_tol=1e-12)
        assert math.isclose(da.log_step_avg, before[c].log_step_avg + shift, rel_tol=1e-12)


# JAX in the slow job: the adaptation is NumPy code shared by both backends, whose steps
# agree to 1e-12 (above); the JAX run costs ~15 s of compilation on the CI machine.
@pytest.mark.parametrize("backend", ["numba", pytest.param("jax", marks=pytest.mark.slow)])
def test_warmup_finds_the_variances_of_an_ill_conditioned_gaussian(backend):
    """Diagonal N(0, diag(λ)), λ log-spaced over [0.01, 1]: the adapted inverse mass is the
    variance, and the step size settles at O(1) — far above the 2·min σ = 0.2 an identity
    metric would allow.

    Tolerance: the last window has 500 draws. Measured over 30 seeds, log(M⁻¹/λ) has sd 0.12
    (an ESS of ~150 per variance estimate: √(2/150)) and mean −0.04 (the shrinkage n/(n+5)
    and the log); |log(M⁻¹/λ)| < 0.7 is 5.6 sds from that mean, so the 40 chain-coordinates
    of a run exceed it with probability ~1e-6, while a wrong window or a wrong formula
    (e.g. the precision instead of the variance: |log| up to 4.6) fails.
    """
    target = langevin.targets.ill_conditioned_gaussian(10, 100.0, rotate=False)
    variance = np.diag(target.reference.cov)
    trace = langevin.sample(target, HMC(0.05, n_leapfrog=10), chains=4, warmup=1000,
                            draws=500, seed=9, backend=backend, progress=False)  # fmt: skip
    log_ratio = np.log(trace.inverse_mass / variance)
    assert np.all(np.abs(log_ratio) < 0.7), log_ratio.round(2)
    assert np.all(trace.step_size > 0.4) and trace.step_size.max() < 2 * trace.step_size.min()
    assert 0.6 < trace.sample_stats["acceptance_rate"].mean() < 0.99
    np.testing.assert_array_equal(trace.sample_stats["step_size"][:, 0], trace.step_size)
    idata = trace.to_arviz()
    assert idata.sample_stats["inverse_mass"].dims == ("chain", "inverse_mass_dim_0")
    np.testing.assert_array_equal(idata.sample_stats["inverse_mass"].values, trace.inverse_mass)
    assert {"energy", "energy_error", "n_grad", "diverging"} <= set(idata.sample_stats)


def test_fixed_mass_is_kept_and_recorded():
    target = langevin.targets.gaussian(3)
    mass = [0.5, 1.0, 2.0]
    trace = langevin.sample(target, HMC(0.3, inverse_mass=mass), chains=2, warmup=200,
                            draws=20, seed=0, adapt_mass_matrix=False, progress=False)  # fmt: skip
    np.testing.assert_array_equal(trace.inverse_mass, [mass, mass])
    assert np.all(trace.step_size != 0.3)  # the step size still adapts
    assert langevin.sample(target, langevin.MALA(0.3), chains=2, warmup=10, draws=5, seed=0,
                           progress=False).inverse_mass is None  # fmt: skip


# -- slow: more seeds, the other backend, a harder posterior ------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("integrator", ["leapfrog", "minimal_norm"])
def test_hmc_moments_correlated_gaussian_jax(integrator):
    check_hmc_gaussian(4, target_seed=0, integrator=integrator, seed=41, backend="jax")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_hmc_moments_many_seeds(seed):
    integrator = ["leapfrog", "minimal_norm"][seed % 2]
    check_hmc_gaussian(2 + seed % 4, target_seed=seed, integrator=integrator, seed=100 + seed)


@pytest.mark.slow
def test_hmc_matches_posteriordb_ark():
    check_hmc_posteriordb(langevin.targets.arK, 4000, seed=6)


@pytest.mark.slow
def test_hmc_matches_posteriordb_earnings_jax():
    check_hmc_posteriordb(langevin.targets.earnings_logearn_interaction_z, 2000, seed=8,
                          backend="jax")  # fmt: skip
