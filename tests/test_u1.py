"""2-D U(1) lattice gauge theory: exact answers, the hand-written force, HMC against the exact
plaquette and topological susceptibility (ALGORITHMS.md §6)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import iv

import langevin
from langevin.backends import jax_backend, numba_backend
from langevin.kernels.hmc import HMC, HMCNoise
from langevin.lattice import (
    exact_plaquette,
    exact_q2,
    exact_susceptibility,
    plaquette,
    topological_charge,
    u1_lattice,
    wrap,
)
from tests.stats_helpers import assert_z_ok, z_score

# ALGORITHMS.md §6, "Reference values [computed here with scipy]"
TABLE = {  # beta: (I1/I0, <cos> L=8, <Q^2> L=8, <Q^2> L=16, chi_inf)
    2.0: (0.6977747, 0.6977747, 1.239299, 4.957196, 1.936405e-2),
    4.0: (0.8635226, 0.8635300, 0.482016, 1.933879, 7.554213e-3),
    6.0: (0.9123593, 0.9124549, 0.279201, 1.194701, 4.666803e-3),
}


@pytest.mark.parametrize("beta", sorted(TABLE))
def test_exact_values_reproduce_the_table(beta):
    i1i0, cos8, q8, q16, chi = TABLE[beta]
    assert iv(1, beta) / iv(0, beta) == pytest.approx(i1i0, abs=1e-7)
    assert exact_plaquette(beta, 8) == pytest.approx(cos8, abs=1e-7)
    assert exact_q2(beta, 8) == pytest.approx(q8, rel=1e-6)
    assert exact_q2(beta, 16) == pytest.approx(q16, rel=1e-6)
    assert exact_susceptibility(beta) == pytest.approx(chi, rel=1e-6)
    # the infinite-volume limits are approached
    assert exact_plaquette(beta, 64) == pytest.approx(i1i0, abs=1e-7)
    assert exact_q2(beta, 64) / 64**2 == pytest.approx(chi, rel=0.05)


def test_exact_plaquette_against_brute_force_on_a_small_torus():
    """L = 2 (V = 4): integrate over 3 free plaquette angles with the 4th fixed by Σ x_P ≡ 0
    (mod 2π) — the law of plaquettes on the torus, independently of the Bessel sums."""
    beta, n = 1.3, 64
    phi = -np.pi + 2 * np.pi * (np.arange(n) + 0.5) / n
    a, b, c = np.meshgrid(phi, phi, phi, indexing="ij")
    d = wrap(-(a + b + c))
    w = np.exp(beta * (np.cos(a) + np.cos(b) + np.cos(c) + np.cos(d)))
    cos_mean = np.sum(w * np.cos(a)) / np.sum(w)
    q = (wrap(a) + wrap(b) + wrap(c) + d) / (2 * np.pi)
    q2 = np.sum(w * np.rint(q) ** 2) / np.sum(w)
    assert exact_plaquette(beta, 2) == pytest.approx(cos_mean, abs=1e-10)
    # the midpoint rule of a periodic function with a kink (the wrap) converges slowly
    assert exact_q2(beta, 2) == pytest.approx(q2, abs=2e-3)


def test_force_is_minus_the_gradient_of_the_action_on_both_backends(x64):
    target = u1_lattice(1.7, 4)
    rng = np.random.default_rng(0)
    x = rng.uniform(-4, 4, target.dim)
    value, grad = target.numba_value_and_grad(x, target.data)
    v_jax, g_jax = jax.value_and_grad(target.jax_logdensity)(jnp.asarray(x))
    assert value == pytest.approx(1.7 * np.sum(np.cos(_plaq_reference(x, 4))), rel=1e-13)
    assert abs(value - float(v_jax)) < 1e-12
    np.testing.assert_allclose(grad, np.asarray(g_jax), rtol=0, atol=1e-12)
    eps = 1e-6
    fd = [(target.numba_value_and_grad(x + eps * e, target.data)[0]
           - target.numba_value_and_grad(x - eps * e, target.data)[0]) / (2 * eps)
          for e in np.eye(target.dim)]  # fmt: skip
    np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-7)


def _plaq_reference(x, L):
    """The plaquettes from the (2, L, L) field with np.roll, as in the reference code."""
    f = x.reshape(2, L, L)
    return (f[0] + np.roll(f[1], -1, axis=0) - np.roll(f[0], -1, axis=1) - f[1]).reshape(-1)


def test_observables():
    L = 4
    rng = np.random.default_rng(1)
    x = rng.uniform(-np.pi, np.pi, (3, 2 * L * L))
    p = _plaq_reference(x[0], L)
    assert plaquette(x, L)[0] == pytest.approx(np.mean(np.cos(p)))
    q = topological_charge(x, L)
    raw = np.sum(wrap(np.stack([_plaq_reference(r, L) for r in x])), axis=-1) / (2 * np.pi)
    np.testing.assert_allclose(raw, q, atol=1e-9)  # an integer on the torus
    # a configuration of charge 1: every plaquette 2π/V (mod 2π), a constant field strength
    V = L * L
    n0, _n1 = np.meshgrid(np.arange(L), np.arange(L), indexing="ij")
    one = np.zeros((2, L, L))
    one[1] = 2 * np.pi * n0 / V
    one[0, L - 1, :] = -2 * np.pi * np.arange(L) / L
    np.testing.assert_allclose(wrap(_plaq_reference(one.reshape(-1), L)), 2 * np.pi / V)
    assert topological_charge(one.reshape(-1), L) == 1.0
    assert topological_charge(-one.reshape(-1), L) == -1.0
    t = u1_lattice(2.0, L)
    assert t.dim == 2 * L * L and t.names_or_default()["links"][1] == (2, L, L)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: u1_lattice(-1.0, 8), "beta"),
        (lambda: u1_lattice("2", 8), "beta"),
        (lambda: u1_lattice(2.0, 1), "L must be"),
        (lambda: u1_lattice(2.0, 8.0), "L must be"),
        (lambda: exact_q2(float("nan"), 8), "beta"),
        (lambda: plaquette(np.zeros(10), 4), "field"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_hmc_agrees_on_both_backends_with_the_same_noise(x64):
    """Same noise, same chain: Numba's hand-written force and JAX's autodiff force."""
    L, chains, steps = 4, 2, 25
    target = u1_lattice(3.0, L)
    dim = target.dim
    rng = np.random.default_rng(5)
    kernel = HMC(0.25, n_leapfrog=6)
    noise = HMCNoise(rng.standard_normal((chains, steps, dim)), rng.random((chains, steps)))
    x0 = rng.uniform(-np.pi, np.pi, (chains, dim))
    step = np.full(chains, 0.25)
    p_nb = numba_backend.prepare(kernel, target, dim, np.float64)
    r_nb = numba_backend.run(p_nb, numba_backend.init(p_nb, x0), steps, step, noise=noise)
    p_jx = jax_backend.prepare(kernel, target, dim, np.float64)
    r_jx = jax_backend.run(p_jx, jax_backend.init(p_jx, x0), steps, step, noise=noise)
    np.testing.assert_allclose(r_nb.position, r_jx.position, rtol=0, atol=1e-12)
    assert 0.2 < r_nb.info["is_accepted"].mean() < 1.0


def _hmc_z_scores(beta, L, backend, chains, warmup, draws, seed):
    target = u1_lattice(beta, L)
    trace = langevin.sample(target, HMC(0.2, n_leapfrog=8), chains=chains, warmup=warmup,
                            draws=draws, seed=seed, progress=False, backend=backend,
                            adapt_mass_matrix=False)  # fmt: skip
    cos_p = target.plaquette(trace.draws)
    q2 = target.topological_charge(trace.draws) ** 2
    return {"cos": z_score(cos_p, target.exact_plaquette), "q2": z_score(q2, target.exact_q2)}


@pytest.mark.parametrize("backend", ["numba", pytest.param("jax", marks=pytest.mark.slow)])
def test_hmc_matches_exact_plaquette_and_q2_at_beta_2(backend):
    """z-tests (MCSE from the integrated autocorrelation time, ArviZ's ESS) of ⟨cos x_P⟩ and
    ⟨Q²⟩ against the exact finite-volume values, L = 8, β = 2."""
    assert_z_ok(_hmc_z_scores(2.0, 8, backend, chains=4, warmup=200, draws=4000, seed=1))


@pytest.mark.slow
@pytest.mark.parametrize("beta", [2.0, 6.0])
def test_hmc_matches_exact_values_long(beta):
    """The long version: β = 2 and 6 on L = 8, Numba (the backends agree on the same noise)."""
    assert_z_ok(_hmc_z_scores(beta, 8, "numba", chains=8, warmup=500, draws=6000, seed=2))
