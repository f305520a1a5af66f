"""Exact iid draws of 2-D U(1) on the torus (``langevin.lattice.exact``), and HMC at β = 6
started from them: stationary chains give unbiased averages whatever the mixing, so ⟨Q²⟩ is
z-tested with error bars from independent chains even where Q is frozen."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import fftconvolve

import langevin
from langevin.kernels.hmc import HMC
from langevin.lattice import (
    exact_plaquette,
    exact_plaquette_angles,
    exact_q2,
    exact_u1_samples,
    plaquette,
    plaquette_angles,
    topological_charge,
    u1_lattice,
    wrap,
)
from tests.stats_helpers import Z_CRIT, assert_z_ok, between_chain_z


def iid_z(values: np.ndarray, truth: float) -> float:
    """z of the mean of iid ``values`` against ``truth`` (standard error sd/√n)."""
    values = np.asarray(values, dtype=float)
    return float((values.mean() - truth) / (values.std(ddof=1) / np.sqrt(values.size)))


def _constraint_dropped(beta, L, n, rng):
    """The broken sampler: θ_1…θ_{V−1} von Mises and θ_V = wrap(−Σ), never rejected (the
    e^{β cos θ_V} factor of the constrained law is dropped)."""
    free = rng.vonmises(0.0, beta, (n, L * L - 1))
    return np.concatenate([free, wrap(-free.sum(1))[:, None]], axis=1)


@pytest.mark.parametrize("beta, L, n", [(2.0, 8, 10000), (6.0, 8, 10000), (1.3, 2, 50000)])
def test_exact_draws_match_the_exact_plaquette_and_q2(beta, L, n):
    """⟨cos x_P⟩ and ⟨Q²⟩ of iid exact draws (links built from the plaquettes, gauge and
    holonomies randomised) against the Bessel/Fourier sums, z from iid standard errors. The
    same statistics of the sampler with its rejection step dropped (``_constraint_dropped``)
    are far off (measured: β = 6, L = 8: z = −75 and +18; β = 2: −19, +3; L = 2: −164, +69).
    Broken on purpose (the rejection removed from ``exact_plaquette_angles``), this test
    printed z(cos, q2) = (−20.9, +4.5) at β = 2, (−75.3, +17.8) at β = 6, (−116.5, +48.5) on
    L = 2; without the 2π shift of θ_V (least squares then projects every winding away, Q ≡ 0)
    q2 gave −737, −1455, −839."""
    x = exact_u1_samples(beta, L, n, seed=11)
    assert x.shape == (n, 2 * L * L) and np.all(np.abs(x) <= np.pi)
    q = topological_charge(x, L)
    zs = {"cos": iid_z(plaquette(x, L), exact_plaquette(beta, L)),
          "q2": iid_z(q**2, exact_q2(beta, L))}  # fmt: skip
    assert_z_ok(zs)
    bad = _constraint_dropped(beta, L, n, np.random.default_rng(12))
    z_bad = iid_z(np.cos(bad).mean(1), exact_plaquette(beta, L))
    assert abs(z_bad) > Z_CRIT, z_bad  # the test has power against the unconstrained law


def test_exact_draws_on_a_small_torus_match_brute_force():
    """L = 2 (V = 4), β = 1.3: the law of Q and ⟨cos x_P⟩ by direct numerical convolution of
    the four plaquette densities (the plaquettes sum to 2πQ; no Bessel sums): P(Q = k) ∝
    (w∗w∗w∗w)(2πk) with w(φ) = e^{β cos φ} on [−π, π), agreeing with ``exact_q2`` to 1e-9.
    Then the sampler's frequencies of Q = ±1, ⟨Q²⟩ and ⟨cos x_P⟩ against it (iid z). Also the
    gauge-variant parts: a link and the Polyakov loop e^{iΣ_{n_0} x_0(n_0, 0)} are uniform on
    the circle (checked: without the random holonomies the test printed z = +675 for the
    Polyakov loop's ⟨cos⟩)."""
    beta, L, n = 1.3, 2, 50000
    m = 20000
    h = 2 * np.pi / m
    phi = -np.pi + h * (np.arange(m) + 0.5)
    w = np.exp(beta * (np.cos(phi) - 1.0))
    f3 = fftconvolve(fftconvolve(w, w) * h, w) * h
    f4, fc = fftconvolve(f3, w) * h, fftconvolve(f3, w * np.cos(phi)) * h

    def at(f, s):  # linear interpolation on the grid of sums 4φ_0 + i h
        i = (s - 4 * phi[0]) / h
        j = int(np.floor(i))
        return (1 - (i - j)) * f[j] + (i - j) * f[j + 1]

    ks = np.array([-1, 0, 1])  # |Q| <= V/2 = 2, and |Q| = 2 has probability 0
    pk = np.array([at(f4, 2 * np.pi * k) for k in ks])
    z_norm = pk.sum()
    p_q, q2, cos_mean = pk / z_norm, float(np.sum(ks**2 * pk) / z_norm), float(
        sum(at(fc, 2 * np.pi * k) for k in ks) / z_norm)  # fmt: skip
    assert q2 == pytest.approx(exact_q2(beta, L), abs=1e-9)
    assert cos_mean == pytest.approx(exact_plaquette(beta, L), abs=1e-9)

    x = exact_u1_samples(beta, L, n, seed=3)
    q = topological_charge(x, L)
    field = x.reshape(n, 2, L, L)
    polyakov = np.sum(field[:, 0, :, 0], axis=1)
    assert_z_ok({
        "P(Q=-1)": iid_z(q == -1, p_q[0]), "P(Q=1)": iid_z(q == 1, p_q[2]),
        "q2": iid_z(q**2, q2), "cos": iid_z(plaquette(x, L), cos_mean),
        "cos link": iid_z(np.cos(x[:, 0]), 0.0), "sin link": iid_z(np.sin(x[:, 5]), 0.0),
        "cos polyakov": iid_z(np.cos(polyakov), 0.0),
        "sin polyakov": iid_z(np.sin(polyakov), 0.0),
    })  # fmt: skip


def test_strong_coupling_draws_are_finite_and_concentrated():
    """β = 900 (past where e^{−β}·I_0(β) is inf·0 in float64): the draws come back, with the
    plaquettes near 0 (⟨cos x_P⟩ against the exact value, iid z)."""
    x = exact_u1_samples(900.0, 4, 2000, seed=5)
    assert np.all(np.isfinite(x))
    assert_z_ok({"cos": iid_z(plaquette(x, 4), exact_plaquette(900.0, 4))})


def test_built_fields_have_the_drawn_plaquettes():
    """The links solve curl(x) ≡ θ (mod 2π) to round-off (least squares on the sum-zero
    subspace), so Q = Σθ/2π exactly (checked: without the 2π shift of θ_V the plaquettes are
    off by 2π·Q/V, 0.196 at most, and this test fails)."""
    beta, L, n = 6.0, 8, 500
    theta = exact_plaquette_angles(beta, L, n, np.random.default_rng(4))
    x = exact_u1_samples(beta, L, n, np.random.default_rng(4))  # draws θ first, same stream
    diff = wrap(plaquette_angles(x, L) - theta)
    assert np.max(np.abs(diff)) < 1e-12
    winding = theta.sum(1) / (2 * np.pi)
    np.testing.assert_allclose(winding, np.rint(winding), atol=1e-12)
    np.testing.assert_array_equal(topological_charge(x, L), np.rint(winding))
    assert np.any(winding != 0)
    # the fields are not the bare least-squares solution: random gauge and holonomies
    assert np.std(x[:, 0]) > 1.5  # a link is uniform on the circle (sd π/√3 = 1.81)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: exact_u1_samples(2.0, 8, 0), "n must"),
        (lambda: exact_u1_samples(2.0, 8, 2.5), "n must"),
        (lambda: exact_u1_samples(-1.0, 8, 10), "beta"),
        (lambda: exact_u1_samples(2.0, 1, 10), "L must"),
        (lambda: exact_u1_samples(2.0, 8, 10, seed="x"), "seed"),
        (lambda: exact_plaquette_angles(2.0, 8, -3), "n must"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def hmc_from_exact_starts(beta, L, chains, draws, seed, step=0.1, n_leapfrog=10):
    """HMC (Numba) on ``u1_lattice(beta, L)`` from ``chains`` exact draws, no warm-up;
    per-chain means of ⟨cos x_P⟩ and Q² (every draw kept: the chains start stationary)."""
    target = u1_lattice(beta, L)
    start = exact_u1_samples(beta, L, chains, seed=seed)
    trace = langevin.sample(target, HMC(step, n_leapfrog=n_leapfrog), chains=chains, warmup=0,
                            draws=draws, seed=seed + 1, progress=False, backend="numba",
                            adapt_mass_matrix=False, initial_position=start)  # fmt: skip
    draws_ = np.asarray(trace.draws, dtype=np.float64)
    return target.plaquette(draws_).mean(1), (target.topological_charge(draws_) ** 2).mean(1)


def test_hmc_at_beta_6_from_exact_starts_matches_the_exact_values():
    """The issue's β = 6, L = 8 z-test for HMC: Q is frozen (τ_int(Q) > 1500), so the error bar
    comes from 64 independent chains started from exact draws (``between_chain_z``), 100
    trajectories of τ = 1 each. Because the starts are exact the chain averages are unbiased
    whatever the mixing; the chain means of Q² are nearly the starts' Q² (Q rarely moves), so
    the Q² test has little power against a kernel error here, while ⟨cos x_P⟩ tests that the
    kernel leaves π invariant. Measured (z of cos, q2; same starts and noise): correct −0.38,
    +0.42; MH sign flipped (a target whose value is negated, force kept) −13.2, +0.58;
    sampling β = 6.3 instead (action scaled by 1.05) +4.1, +0.75 — below Z_CRIT = 4.56: a 5%
    error in β is at the edge of this test's resolution; β × 0.98: −2.5."""
    beta, L = 6.0, 8
    cos_c, q2_c = hmc_from_exact_starts(beta, L, chains=64, draws=100, seed=20)
    assert_z_ok({"cos": between_chain_z(cos_c, exact_plaquette(beta, L)),
                 "q2": between_chain_z(q2_c, exact_q2(beta, L))})  # fmt: skip
