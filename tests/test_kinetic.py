"""Kinetic Langevin (``langevin.KineticLangevin``): exact laws of every discretization.

Numba and JAX run the same source and agree to 1e-12 on shared noise (the conformance suite
runs every discretization), so each statistical check here runs on one backend, except the
free-particle transition, which runs on both.

Statistical checks use exactly independent draws (many chains, the final state of each, or
one step each from a fixed state), so their standard errors are plain sample ones:
z-tests at the suite's Bonferroni level (``tests/stats_helpers.py``), and χ² tests of a
whole Gaussian law at the same per-test level. Exact checks (linear algebra on the kernels'
own step functions) carry no Monte Carlo error at all.
"""

from __future__ import annotations

import functools
from decimal import Decimal, localcontext

import jax
import jax.numpy as jnp
import numba
import numpy as np
import pytest
from scipy.linalg import solve_discrete_lyapunov
from scipy.stats import chi2

import langevin
from langevin.backends import jax_ops, numba_backend, numba_ops, numpy_ops
from langevin.backends.portable import make_twin
from langevin.kernels import kinetic
from langevin.kernels.base import Normal
from langevin.kernels.kinetic import DISCRETIZATIONS, KineticInitNoise, KineticLangevin
from langevin.kernels.ou_integrals import rm_brownian_integrals
from langevin.targets.capabilities import form_of
from tests.stats_helpers import SUITE_FALSE_ALARM, SUITE_Z_TESTS, Z_CRIT

#: Per-test false-alarm level, the same as each z-test's (|z| < Z_CRIT).
P_CRIT = SUITE_FALSE_ALARM / SUITE_Z_TESTS

RM = DISCRETIZATIONS["randomized_midpoint"]
SPLITTING_NAMES = tuple(kinetic.SPLITTINGS)


# -- targets ----------------------------------------------------------------------------------
@numba.njit(cache=True)
def _zero_vg(x):
    return 0.0, np.zeros_like(x)


@functools.cache
def free_particle(dim: int) -> langevin.Target:
    """log π ≡ 0 (a free particle): the kinetic diffusion is then exactly linear."""
    return langevin.Target(
        dim=dim,
        jax={"logdensity": lambda x: 0.0 * jnp.sum(x)},
        numba={"value_and_grad": _zero_vg},
        name="free_particle",
    )


@numba.njit(cache=True)
def _normal_vg(x, data):
    (precision,) = data
    return -0.5 * precision * np.dot(x, x), -precision * x


def isotropic_normal(dim: int, precision: float) -> langevin.Target:
    """N(0, I/λ) with λ = ``precision``, both backend forms."""
    return langevin.Target(
        dim=dim,
        jax={"logdensity": lambda x: -0.5 * precision * jnp.sum(x * x)},
        numba={"value_and_grad": _normal_vg},
        data=(float(precision),),
        name="isotropic_normal",
    )


def _numpy_gaussian(precision: float, counter: list | None = None):
    """The Numba-form tuple of N(0, 1/λ) as plain Python (for the NumPy twins), counting
    gradient evaluations in ``counter``."""

    def vg(x):
        if counter is not None:
            counter.append(1)
        return -0.5 * precision * float(x @ x), -precision * x

    return form_of(value_and_grad=vg)


#: zero init noise: the momentum starts at 0 (these tests set it themselves)
_NO_INIT_NOISE = KineticInitNoise(np.zeros(1))  # broadcasts: 0 / √u in any dimension


def _numpy_twins(cls):
    memo: dict = {}
    return (
        make_twin(cls.init_math, numpy_ops, lambda f: f, memo),
        make_twin(cls.step_math, numpy_ops, lambda f: f, memo),
    )


# -- exact laws -------------------------------------------------------------------------------
def ou_transition(x, p, h, gamma, u):
    """Mean and covariance of (x', p') after time h of the free kinetic diffusion from (x, p),
    coordinates in the order (x_1, p_1, x_2, p_2, ...) (ALGORITHMS.md §2b, written for the
    momentum p = v/u: Var W₂, Var W₃/u², Cov(W₂, W₃)/u)."""
    e1, e2 = np.exp(-gamma * h), np.exp(-2.0 * gamma * h)
    decay_time = (1.0 - e1) / gamma
    mean, blocks = [], []
    for xi, pi, ui in zip(x, p, u):
        mean += [xi + decay_time * ui * pi, e1 * pi]
        vxx = 2.0 * ui / gamma * (h - 2.0 * (1.0 - e1) / gamma + (1.0 - e2) / (2.0 * gamma))
        vpp = (1.0 - e2) / ui
        vxp = (1.0 - e1) ** 2 / gamma
        blocks.append(np.array([[vxx, vxp], [vxp, vpp]]))
    cov = np.zeros((2 * len(x), 2 * len(x)))
    for i, b in enumerate(blocks):
        cov[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = b
    return np.array(mean), cov


def gaussian_law_pvalues(samples: np.ndarray, mean: np.ndarray, cov: np.ndarray):
    """p-values of two χ² tests that the rows of ``samples`` are iid N(mean, cov).

    After whitening, w = L⁻¹(y − mean) is iid N(0, I_k): n‖w̄‖² ~ χ²(k) exactly, and the
    second moments S = wᵀw/n (known mean) have independent asymptotically normal entries
    with Var S_jj = 2/n, Var S_jk = 1/n, so n[Σ(S_jj − 1)²/2 + Σ_{j<k} S_jk²] ~ χ²(k(k+1)/2).
    """
    n, k = samples.shape
    w = np.linalg.solve(np.linalg.cholesky(cov), (samples - mean).T).T
    t_mean = n * float(np.sum(w.mean(axis=0) ** 2))
    s = w.T @ w / n
    iu = np.triu_indices(k, 1)
    t_cov = n * (float(np.sum((np.diag(s) - 1.0) ** 2)) / 2.0 + float(np.sum(s[iu] ** 2)))
    return float(chi2.sf(t_mean, k)), float(chi2.sf(t_cov, k * (k + 1) // 2))


def iid_z(values: np.ndarray, truth: float) -> float:
    """z of the mean of independent ``values`` against ``truth``."""
    return float((values.mean() - truth) / (values.std(ddof=1) / np.sqrt(values.size)))


def assert_moments(x, p, expected: dict[str, float]) -> dict[str, float]:
    """z-tests of E[x²], E[p²], E[xp] (zero means known) from independent draws."""
    zs = {
        "E[x^2]": iid_z(x * x, expected["xx"]),
        "E[p^2]": iid_z(p * p, expected["pp"]),
        "E[xp]": iid_z(x * p, expected["xp"]),
    }
    bad = {k: round(v, 2) for k, v in zs.items() if not abs(v) < Z_CRIT}
    assert not bad, f"|z| >= {Z_CRIT:.2f}: {bad} (all {zs})"
    return zs


# -- running many independent chains --------------------------------------------------------
_JAX_STEPS: dict = {}


def _jax_step(cls, logdensity):
    """The kernel's JAX step, vmapped over chains and jitted (compiled once per class and
    log-density)."""
    key = (cls, logdensity)
    if key not in _JAX_STEPS:
        step = make_twin(cls.step_math, jax_ops, lambda f: f, {})
        target = form_of(value_and_grad=jax.value_and_grad(logdensity))
        _JAX_STEPS[key] = jax.jit(
            jax.vmap(lambda s, nz, h, prm: step(s, nz, h, prm, target),
                     in_axes=(0, 0, None, None))
        )  # fmt: skip
    return _JAX_STEPS[key]


def _standard_normal_logdensity(x):
    return -0.5 * jnp.sum(x * x)


def _zero_logdensity(x):
    return 0.0 * jnp.sum(x)


def jax_final_states(kernel, logdensity, x0, p0, steps, seed):
    """(positions, momenta) of ``len(x0)`` independent chains after ``steps`` steps of the
    kernel's JAX step from (x0, p0), each chain with its own noise (drawn with NumPy)."""
    step = _jax_step(type(kernel), logdensity)
    vg = jax.vmap(jax.value_and_grad(logdensity))
    lp, grad = vg(jnp.asarray(x0))
    state = kinetic.KineticState(jnp.asarray(x0), lp, grad, jnp.asarray(p0))
    rng = np.random.default_rng(seed)
    spec = kernel.noise(x0.shape[1])
    n = x0.shape[0]
    for _ in range(steps):
        noise = type(spec)(
            *(jnp.asarray(rng.standard_normal((n, *d.shape)) if isinstance(d, Normal)
                          else rng.random((n, *d.shape))) for d in spec)
        )  # fmt: skip
        state, _ = step(state, noise, kernel.step_size, kernel.params())
    return np.asarray(state.position), np.asarray(state.momentum)


@numba.njit
def _one_step_each(step, state, noise, h, params, target, out_x, out_p):
    """``out[t]`` = one step of ``step`` from the same ``state`` with noise row ``t``."""
    for t in range(out_x.shape[0]):
        new, _ = step(state, numba_ops.index_tree(noise, t), h, params, target)
        for j in range(out_x.shape[1]):
            out_x[t, j] = new.position[j]
            out_p[t, j] = new.momentum[j]


def numba_one_step(kernel, target, x, p, n, seed):
    """n independent one-step transitions from (x, p), by the kernel's compiled Numba step
    (the twin the backend's chain loop calls)."""
    dim = len(x)
    step = make_twin(type(kernel).step_math, numba_ops, numba.njit, numba_backend._NUMBA_TWINS)
    prepared = numba_backend.prepare(kernel, target, dim, np.float64)
    batched = numba_backend.init(prepared, np.asarray(x, dtype=np.float64)[None, :])
    state = numpy_ops.index_tree(batched, 0)._replace(momentum=np.asarray(p, dtype=np.float64))
    rng = np.random.default_rng(seed)
    spec = kernel.noise(dim)
    noise = type(spec)(
        *(
            rng.standard_normal((n, *d.shape)) if isinstance(d, Normal)
            else rng.random((n, *d.shape))
            for d in spec
        )
    )  # fmt: skip
    out_x, out_p = np.empty((n, dim)), np.empty((n, dim))
    params = numba_backend._cast_tree(kernel.params())
    _one_step_each(step, state, noise, kernel.step_size, params, prepared.target, out_x, out_p)
    return out_x, out_p


# -- linear recursions read off the kernels' own step ----------------------------------------
def linear_recursion(cls, h, gamma, u, precision, alpha=None):
    """(M, G) with (x', p') = M (x, p) + G z for the 1-D Gaussian N(0, 1/λ), read off the
    NumPy twin of the kernel's step: columns of M from basis states with zero noise, columns
    of G from the zero state with unit normals (``alpha``: the midpoint's uniform)."""
    kernel = cls(h, friction=gamma, inverse_mass=u)
    init, step = _numpy_twins(cls)
    target = _numpy_gaussian(precision)
    spec = kernel.noise(1)
    n_normal = sum(1 for d in spec if d.shape)

    def apply(x, p, z):
        state = init(np.array([x]), _NO_INIT_NOISE, kernel.params(), target)
        state = state._replace(momentum=np.array([p]))
        normals = iter(z)
        fields = [alpha if not d.shape else np.array([next(normals)]) for d in spec]
        new, _ = step(state, type(spec)(*fields), h, kernel.params(), target)
        return np.array([new.position[0], new.momentum[0]])

    zero = np.zeros(n_normal)
    m = np.column_stack([apply(1.0, 0.0, zero), apply(0.0, 1.0, zero)])
    g = np.column_stack([apply(0.0, 0.0, e) for e in np.eye(n_normal)])
    return m, g


def stationary_law(cls, h, gamma, u, precision, nodes=64):
    """Exact stationary covariance S of (x, p) on N(0, 1/λ), and the factor by which the
    distance of a covariance from S shrinks per step: the discrete Lyapunov equation
    S = M S Mᵀ + G Gᵀ, or for the randomized midpoint (M random through the uniform α)
    vec S = (I − E[M⊗M])⁻¹ vec E[G Gᵀ] with E over α by Gauss–Legendre (ALGORITHMS.md §0)."""
    if cls is not RM:
        m, g = linear_recursion(cls, h, gamma, u, precision)
        radius = float(np.max(np.abs(np.linalg.eigvals(m)))) ** 2
        assert radius < 1
        return solve_discrete_lyapunov(m, g @ g.T), radius
    t, w = np.polynomial.legendre.leggauss(nodes)
    e_mm, e_q = np.zeros((4, 4)), np.zeros((2, 2))
    for alpha, weight in zip(0.5 * (t + 1.0), 0.5 * w):
        m, g = linear_recursion(cls, h, gamma, u, precision, alpha)
        e_mm += weight * np.kron(m, m)
        e_q += weight * (g @ g.T)
    radius = float(np.max(np.abs(np.linalg.eigvals(e_mm))))
    assert radius < 1
    return np.linalg.solve(np.eye(4) - e_mm, e_q.reshape(-1)).reshape(2, 2), radius


def steps_to_forget(radius: float) -> int:
    """Steps after which a start at covariance diag(1/λ, 1/u) (off S by the bias, < 0.1) is
    within 1e-9 of S: far below any standard error here."""
    return int(np.ceil(np.log(1e-8) / np.log(radius)))


# =============================================================================================
# 1. Randomized midpoint, free particle: one step is the exact OU transition.
# =============================================================================================
# (h, γ): γh = 0.6, 0.02 (every γτ in the series branch), 2 (every γτ past it but the
# smallest); the law of the whitened draws depends on γh only
FREE_CASES = [(0.3, 2.0), (0.1, 0.2), (0.05, 40.0)]
X0, P0, U = np.array([0.5, -1.0]), np.array([1.0, 2.0]), np.array([1.0, 0.25])


def check_free_particle(backend, h, gamma, seed, n=100_000):
    kernel = KineticLangevin(h, friction=gamma, inverse_mass=U)
    if backend == "jax":
        start = (np.tile(X0, (n, 1)), np.tile(P0, (n, 1)))
        x, p = jax_final_states(kernel, _zero_logdensity, *start, 1, seed)
    else:
        x, p = numba_one_step(kernel, free_particle(2), X0, P0, n, seed)
    samples = np.column_stack([x[:, 0], p[:, 0], x[:, 1], p[:, 1]])
    mean, cov = ou_transition(X0, P0, h, gamma, U)
    p_mean, p_cov = gaussian_law_pvalues(samples, mean, cov)
    assert p_mean > P_CRIT and p_cov > P_CRIT, (p_mean, p_cov)


@pytest.mark.parametrize("h,gamma", FREE_CASES)
def test_rm_free_particle_step_is_exact_jax(h, gamma):
    check_free_particle("jax", h, gamma, seed=1)


@pytest.mark.parametrize("h,gamma", FREE_CASES[:2])
def test_rm_free_particle_step_is_exact_numba(h, gamma):
    check_free_particle("numba", h, gamma, seed=2)


# =============================================================================================
# 2. The Brownian integrals (W₁, W₂, W₃): their exact covariance, for every α and small γτ.
# =============================================================================================
def _brownian_covariance_exact(h: float, alpha: float, gamma: float) -> np.ndarray:
    """The closed-form covariance of (W₁/c_x, W₂/c_x, W₃/c_v) of ALGORITHMS.md §2b, in
    150-digit decimal arithmetic (the closed form cancels catastrophically at small γτ, down
    to 1e-54 from terms of 1e-13 in the cases below, which is why the kernel does not use
    it)."""
    with localcontext() as ctx:
        ctx.prec = 150
        h_, g_ = Decimal(h), Decimal(gamma)
        a = Decimal(alpha) * h_

        def e(t):
            return (-g_ * t).exp()

        v1 = a - 2 * (1 - e(a)) / g_ + (1 - e(2 * a)) / (2 * g_)
        v2 = h_ - 2 * (1 - e(h_)) / g_ + (1 - e(2 * h_)) / (2 * g_)
        v3 = (1 - e(2 * h_)) / (2 * g_)
        c12 = a - (1 - e(a)) / g_ - (e(h_ - a) - e(h_)) / g_ + (e(h_ - a) - e(h_ + a)) / (2 * g_)
        # the covariances with W₃ divided by c_x c_v
        c13 = (e(h_ - a) - e(h_)) / g_ - (e(h_ - a) - e(h_ + a)) / (2 * g_)
        c23 = (1 - e(h_)) ** 2 / (2 * g_)
    return np.array([[v1, c12, c13], [c12, v2, c23], [c13, c23, v3]], dtype=object).astype(float)


ONE_MINUS = float(np.nextafter(1.0, 0.0))
BROWNIAN_CASES = [
    # (h, γ, α): α → 0 and α → 1 (the degenerate ends), and γτ small (series) and large
    (h, gamma, alpha)
    for h, gamma in [(0.5, 2.0), (0.1, 1e-7), (1.0, 50.0), (1e-6, 1.0), (2.0, 0.3)]
    for alpha in [0.0, 1e-12, 1e-5, 0.3, 0.77, 1.0 - 1e-9, ONE_MINUS]
]


@pytest.mark.parametrize("h,gamma,alpha", BROWNIAN_CASES)
def test_brownian_integrals_have_the_exact_covariance(h, gamma, alpha):
    """The integrals are linear in the four normals, (B₁, B₂, B₃) = G z, so their law is
    N(0, G Gᵀ) exactly: G read off the sampler with unit vectors z is compared with the
    closed form. No Monte Carlo error; any α and γτ, no NaN."""
    sampler = make_twin(rm_brownian_integrals, numpy_ops, lambda f: f, {})
    g = np.column_stack([np.array(sampler(h, alpha, gamma, *e)) for e in np.eye(4)])
    assert np.all(np.isfinite(g))
    exact = _brownian_covariance_exact(h, alpha, gamma)
    got = g @ g.T
    scale = np.sqrt(np.outer(np.diag(exact), np.diag(exact)))
    # entries relative to their correlation scale √(Σ_ii Σ_jj); at α = 0, W₁ ≡ 0 exactly
    assert np.all(np.abs(got - exact) <= 1e-12 * scale + 1e-300), (got, exact)


def test_brownian_integrals_sampled_on_every_backend_agree(x64):
    """The JAX twin (float64 and float32) gives the NumPy twin's numbers, near α = 0, 1."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 1000))
    numpy_sampler = make_twin(rm_brownian_integrals, numpy_ops, lambda f: f, {})
    jax_sampler = jax.jit(make_twin(rm_brownian_integrals, jax_ops, lambda f: f, {}))
    for alpha in (0.0, 1e-7, 0.5, ONE_MINUS):
        for gamma in (1e-6, 2.0):
            ref = np.array(numpy_sampler(0.3, alpha, gamma, *z))
            got64 = np.array(jax_sampler(0.3, alpha, gamma, *jnp.asarray(z)))
            np.testing.assert_allclose(got64, ref, rtol=1e-13, atol=1e-15)
            z32 = jnp.asarray(z, dtype=jnp.float32)
            got32 = jax_sampler(jnp.float32(0.3), jnp.float32(alpha), jnp.float32(gamma), *z32)
            assert all(b.dtype == jnp.float32 for b in got32)
            assert np.all(np.isfinite(np.array(got32)))
            np.testing.assert_allclose(np.array(got32), ref, rtol=2e-4, atol=2e-5)


# =============================================================================================
# 3. Randomized midpoint: the exact stationary law on a 1-D Gaussian (ALGORITHMS.md §2b).
# =============================================================================================
#: h -> (λ Var x, Var v / u, Cov(x, v)) for γ = 2, u = 1, λ = 1 (ALGORITHMS.md §2b table)
RM_TABLE = {
    0.2: (1.00016739, 1.00076728, -3.2668e-4),
    0.5: (1.00262385, 1.01059516, -4.6754e-3),
    1.0: (1.02046507, 1.07193647, -2.93210e-2),
}


@pytest.mark.parametrize("h", sorted(RM_TABLE))
def test_rm_stationary_law_from_its_own_step(h):
    """The random-coefficient Lyapunov solve on the kernel's own step reproduces the table
    (which was computed independently from the update formulas) to its printed digits."""
    s, _ = stationary_law(RM, h, 2.0, 1.0, 1.0)
    var_x, var_v, cov_xv = RM_TABLE[h]
    np.testing.assert_allclose([s[0, 0], s[1, 1]], [var_x, var_v], rtol=0, atol=6e-9)
    np.testing.assert_allclose(s[0, 1], cov_xv, rtol=2e-5)


#: chains per step size: enough at h = 1 for the 2% excess variance to be detected
RM_CHAINS = {0.2: 50_000, 0.5: 50_000, 1.0: 400_000}


def check_rm_stationary_sampling(h: float, seed: int) -> dict:
    """Independent chains from N(0, 1) ⊗ N(0, 1), run until the start is forgotten, final
    states against the exact biased law."""
    kernel = KineticLangevin(h, friction=2.0)
    _, radius = stationary_law(RM, h, 2.0, 1.0, 1.0, nodes=16)
    start = np.random.default_rng(seed).standard_normal((2, RM_CHAINS[h], 1))
    x, p = jax_final_states(kernel, _standard_normal_logdensity, *start,
                            steps_to_forget(radius), seed)  # fmt: skip
    var_x, var_v, cov_xv = RM_TABLE[h]
    zs = assert_moments(x[:, 0], p[:, 0], {"xx": var_x, "pp": var_v, "xp": cov_xv})
    return {**zs, "E[x^2] vs 1": iid_z(x[:, 0] ** 2, 1.0)}


@pytest.mark.parametrize("h", sorted(RM_TABLE))
def test_rm_stationary_law_by_sampling(h):
    zs = check_rm_stationary_sampling(h, seed=3)
    if h == 1.0:
        # the test has power: the target's variance (1, not 1.0205) is rejected (expected
        # z ≈ 9 with 4e5 chains)
        assert abs(zs["E[x^2] vs 1"]) > Z_CRIT, zs


# =============================================================================================
# 4. Splittings and exponential Euler on a Gaussian: exact stationary laws.
# =============================================================================================
LINEAR_CASES = [(1.0, 0.5, 2.0, 1.0), (4.0, 0.3, 0.5, 0.7), (0.3, 2.5, 1.3, 2.0)]  # λ, h, γ, u


def splitting_law(name, precision, h, u):
    """(Var x, Var p) of a splitting on N(0, 1/λ), q = 1 − h²uλ/4 (ALGORITHMS.md §2c in the
    momentum p = v/u; OBABO: the leapfrog part preserves N(0, 1/(λq)) ⊗ N(0, 1/u) and the
    exact O part preserves N(0, 1/u) independently of x)."""
    q = 1.0 - h * h * u * precision / 4.0
    return {
        "baoab": (1.0 / precision, q / u),
        "aboba": (1.0 / precision, 1.0 / (u * q)),
        "obabo": (1.0 / (precision * q), 1.0 / u),
    }[name]


@pytest.mark.parametrize("precision,h,gamma,u", LINEAR_CASES)
@pytest.mark.parametrize("name", SPLITTING_NAMES)
def test_splitting_stationary_law_from_its_own_step(name, precision, h, gamma, u):
    s, _ = stationary_law(DISCRETIZATIONS[name], h, gamma, u, precision)
    var_x, var_p = splitting_law(name, precision, h, u)
    np.testing.assert_allclose([s[0, 0], s[1, 1]], [var_x, var_p], rtol=1e-12)
    assert abs(s[0, 1]) < 1e-12 * np.sqrt(var_x * var_p)


@pytest.mark.parametrize("precision,h,gamma,u", LINEAR_CASES)
@pytest.mark.parametrize("name", SPLITTING_NAMES)
def test_splitting_step_is_the_composition_of_its_substeps(name, precision, h, gamma, u):
    """On N(0, 1/λ) each sub-step is linear: A = [[1, τu], [0, 1]], B = [[1, 0], [−τλ, 1]],
    O: p ← e^{−γτ} p + √((1 − e^{−2γτ})/u) ξ, each letter's τ being h over its count. The
    kernel's step is their product, noise included (the stationary variances alone do not
    see everything: BAOAB's are the same for any O coefficient in (−1, 1))."""
    letters = kinetic.SPLITTINGS[name]
    tau = {c: h / letters.count(c) for c in "ABO"}
    m, g_columns = np.eye(2), []
    for c in letters:
        if c == "A":
            sub = np.array([[1.0, tau["A"] * u], [0.0, 1.0]])
        elif c == "B":
            sub = np.array([[1.0, 0.0], [-tau["B"] * precision, 1.0]])
        else:
            decay = np.exp(-gamma * tau["O"])
            sub = np.diag([1.0, decay])
            g_columns = [sub @ col for col in g_columns]
            g_columns.append(np.array([0.0, np.sqrt((1.0 - decay**2) / u)]))
            m = sub @ m
            continue
        m = sub @ m
        g_columns = [sub @ col for col in g_columns]
    m_kernel, g_kernel = linear_recursion(DISCRETIZATIONS[name], h, gamma, u, precision)
    np.testing.assert_allclose(m_kernel, m, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(g_kernel, np.column_stack(g_columns), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("precision,h,gamma,u", LINEAR_CASES)
def test_euler_is_the_exponential_euler_recursion(precision, h, gamma, u):
    """The kernel's linear recursion is KLMC's, built here from the formulas: force frozen
    at x, OU part exact (so the noise is the exact OU transition's), and its stationary law
    is biased (position variance ≠ 1/λ)."""
    m, g = linear_recursion(DISCRETIZATIONS["euler"], h, gamma, u, precision)
    e1 = np.exp(-gamma * h)
    decay_time = (1.0 - e1) / gamma
    frozen = (h - decay_time) / gamma  # ∫₀^h (1 − e^{−γ(h−s)}) ds / γ
    m_exact = np.array([[1.0 - u * precision * frozen, decay_time * u],
                        [-precision * decay_time, e1]])  # fmt: skip
    _, q_exact = ou_transition([0.0], [0.0], h, gamma, [u])
    np.testing.assert_allclose(m, m_exact, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g @ g.T, q_exact, rtol=1e-12, atol=1e-15)
    s = solve_discrete_lyapunov(m, g @ g.T)
    assert abs(s[0, 0] * precision - 1.0) > 0.01


SAMPLING_CASES = {
    # name: (h, γ, u) on N(0, 1); the steps are large so that the biases are large
    "baoab": (1.0, 1.0, 1.0),
    "obabo": (1.0, 1.0, 1.0),
    "aboba": (0.8, 1.5, 0.5),
    "euler": (0.5, 2.0, 1.0),
}


def check_stationary_sampling(name, seed, n=50_000):
    h, gamma, u = SAMPLING_CASES[name]
    precision = 1.0
    s, radius = stationary_law(DISCRETIZATIONS[name], h, gamma, u, precision)
    kernel = KineticLangevin(h, friction=gamma, discretization=name, inverse_mass=u)
    start = np.random.default_rng(seed).standard_normal((2, n, 1))
    start[1] /= np.sqrt(u)  # p ~ N(0, 1/u)
    x, p = jax_final_states(kernel, _standard_normal_logdensity, *start,
                            steps_to_forget(radius), seed)  # fmt: skip
    zs = assert_moments(x[:, 0], p[:, 0], {"xx": s[0, 0], "pp": s[1, 1], "xp": s[0, 1]})
    zs["E[p^2] vs 1/u"] = iid_z(p[:, 0] ** 2, 1.0 / u)
    zs["E[x^2] vs 1/λ"] = iid_z(x[:, 0] ** 2, 1.0 / precision)
    return zs


@pytest.mark.parametrize("name", [*SPLITTING_NAMES, "euler"])
def test_stationary_law_by_sampling(name):
    zs = check_stationary_sampling(name, seed=4)
    # power: the biased coordinate is told apart from the target's (momentum) law
    if name in ("baoab", "aboba"):
        assert abs(zs["E[p^2] vs 1/u"]) > Z_CRIT + 2.0, zs
    else:
        assert abs(zs["E[x^2] vs 1/λ"]) > Z_CRIT + 2.0, zs


# =============================================================================================
# Gradient reuse, state consistency, the public constructor, sample() on both backends.
# =============================================================================================
@pytest.mark.parametrize(
    "name,evaluations",
    [("randomized_midpoint", 2), ("euler", 1), ("baoab", 1), ("obabo", 1), ("aboba", 2)],
)
def test_gradient_evaluations_per_step(name, evaluations):
    """The splittings evaluate the gradient only after a drift moved the position; the state
    always holds the log-density and gradient at its position."""
    cls = DISCRETIZATIONS[name]
    kernel = cls(0.3, friction=1.0, inverse_mass=[1.0, 0.5])
    init, step = _numpy_twins(cls)
    calls: list = []
    target = _numpy_gaussian(1.5, calls)
    state = init(np.array([0.4, -0.3]), _NO_INIT_NOISE, kernel.params(), target)
    rng = np.random.default_rng(0)
    for _ in range(3):
        noise = type(kernel.noise(2))(
            *(rng.random() if not d.shape else rng.standard_normal(2) for d in kernel.noise(2))
        )
        calls.clear()
        state, info = step(state, noise, 0.3, kernel.params(), target)
        assert len(calls) == evaluations
        lp, grad = numpy_ops.value_and_grad(_numpy_gaussian(1.5), state.position)
        np.testing.assert_allclose(state.logdensity, lp, rtol=1e-15)
        np.testing.assert_allclose(state.grad, grad, rtol=1e-15)
        assert info.acceptance_rate == 1.0 and not info.diverging


def test_constructor_dispatches_to_one_class_per_discretization():
    classes = KineticLangevin.variants()
    assert len(classes) == len(set(classes)) == len(DISCRETIZATIONS)
    for name, cls in DISCRETIZATIONS.items():
        kernel = KineticLangevin(0.1, discretization=name)
        assert type(kernel) is cls and isinstance(kernel, KineticLangevin)
        assert f"discretization={name!r}" in repr(kernel)
        assert cls(step_size=0.1) == kernel  # the class alone builds the same kernel
        assert not kernel.exact and kernel.bias_order > 0
    assert type(KineticLangevin(0.1)) is RM
    # positional discretization; inverse mass kept in the repr and the params
    kernel = KineticLangevin(0.2, 1.5, "obabo", [1.0, 2.0])
    assert repr(kernel) == (
        "KineticLangevin(step_size=0.2, friction=1.5, discretization='obabo', "
        "inverse_mass=(1.0, 2.0))"
    )
    np.testing.assert_array_equal(kernel.params().inverse_mass, [1.0, 2.0])
    assert DISCRETIZATIONS["baoab"].bias_order == 2.0 and RM.bias_order == 1.5


def test_numba_cache_keys_are_distinct_per_splitting():
    """The Numba backend names (and caches on disk) a compiled loop by the kernel class name:
    each splitting's class is named after its letters, so no two share a loop, and its step
    is its own function object with its own program."""
    names = [cls.__name__ for cls in KineticLangevin.variants()]
    assert len(set(names)) == len(names)
    for name, letters in kinetic.SPLITTINGS.items():
        cls = DISCRETIZATIONS[name]
        assert cls.__name__ == f"Kinetic{letters}"
        program = cls.step_math.__globals__["_PROGRAM"]
        assert program == tuple("ABO".index(c) for c in letters)
    steps = {cls.step_math for cls in KineticLangevin.variants()}
    assert len(steps) == len(names)


@pytest.mark.parametrize("backend", ["numba", "jax"])
@pytest.mark.parametrize("name", list(DISCRETIZATIONS))
def test_sample_runs_every_discretization(name, backend, gaussian4):
    target, mean, _ = gaussian4
    kernel = KineticLangevin(0.2, discretization=name, inverse_mass=np.full(4, 0.8))
    trace = langevin.sample(target, kernel, backend=backend, chains=2, warmup=50, draws=100,
                            seed=5, progress=False, initial_position=mean)  # fmt: skip
    assert trace.draws.shape == (2, 100, 4) and np.all(np.isfinite(trace.draws))
    assert np.all(trace.sample_stats["acceptance_rate"] == 1.0)
    assert not np.any(trace.sample_stats["diverging"])
    np.testing.assert_array_equal(trace.step_size, 0.2)  # not adapted


# =============================================================================================
# 6. Bad arguments: clear errors naming the argument, before anything compiles.
# =============================================================================================
@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(discretization="leapfrog"), ValueError,
         "discretization must be one of 'randomized_midpoint', 'euler', 'baoab'"),
        (dict(discretization=3), TypeError, "discretization must be a string"),
        (dict(friction=0.0), ValueError, "friction"),
        (dict(friction=-1.0), ValueError, "friction"),
        (dict(friction=float("nan")), ValueError, "friction"),
        (dict(friction=float("inf")), ValueError, "friction"),
        (dict(friction=True), TypeError, "friction"),
        (dict(friction="2"), TypeError, "friction"),
        (dict(inverse_mass=[1.0, 0.0]), ValueError, "inverse_mass"),
        (dict(inverse_mass=-1.0), ValueError, "inverse_mass"),
        (dict(inverse_mass=[1.0, np.nan]), ValueError, "inverse_mass"),
        (dict(inverse_mass=np.ones((2, 2))), ValueError, "inverse_mass"),
        (dict(inverse_mass=[]), ValueError, "inverse_mass"),
        (dict(inverse_mass="big"), (TypeError, ValueError), "inverse_mass"),
    ],
)  # fmt: skip
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        KineticLangevin(0.1, **kwargs)


def test_bad_step_size_and_mismatched_class():
    for name in DISCRETIZATIONS:
        with pytest.raises(ValueError, match="step_size"):
            KineticLangevin(0.0, discretization=name)
    with pytest.raises(ValueError, match="discretization='euler'"):
        DISCRETIZATIONS["baoab"](0.1, discretization="euler")


@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_inverse_mass_of_the_wrong_length(backend, monkeypatch):
    """Known only with the target's dimension: refused at initialisation, before the Numba
    chain loop is compiled."""

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before checking the arguments")

    monkeypatch.setattr(numba_backend, "_loop_for", no_compile)
    kernel = KineticLangevin(0.1, discretization="baoab", inverse_mass=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="inverse_mass has 3 entries but the position has 2"):
        langevin.sample(isotropic_normal(2, 1.0), kernel, backend=backend, chains=1, warmup=1,
                        draws=1, progress=False)  # fmt: skip


# =============================================================================================
# suggest_kinetic_parameters: the curvature estimate and the theory's step size and friction.
# =============================================================================================
EIGENVALUES = np.array([0.2, 0.7, 1.0, 3.0, 12.0, 50.0])


def _gaussian_with_eigenvalues(seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((6, 6)))
    precision = q @ np.diag(EIGENVALUES) @ q.T
    cov = np.linalg.inv(0.5 * (precision + precision.T))
    return langevin.targets.gaussian(6, mean=np.ones(6), cov=0.5 * (cov + cov.T))


@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_suggestion_on_a_gaussian_with_known_eigenvalues(backend, x64):
    target = _gaussian_with_eigenvalues()
    points = np.random.default_rng(1).standard_normal((2, 6))
    s = langevin.suggest_kinetic_parameters(target, points, backend=backend)
    L, m = EIGENVALUES[-1], EIGENVALUES[0]
    np.testing.assert_allclose([s.smoothness, s.strong_convexity], [L, m], rtol=1e-7)
    np.testing.assert_allclose(s.friction, 2.0 * np.sqrt(L), rtol=1e-7)
    np.testing.assert_allclose(s.step_size, 0.5 / np.sqrt(L), rtol=1e-7)
    # Lanczos on a 6-dimensional quadratic: 6 Hessian-vector products per point
    assert s.gradient_evaluations == 2 * 6 * (2 if backend == "numba" else 1)
    c = langevin.suggest_kinetic_parameters(target, points[0], friction_rule="critical",
                                            step_fraction=0.8, backend=backend)  # fmt: skip
    np.testing.assert_allclose(c.friction, 2.0 * np.sqrt(m), rtol=1e-7)
    # γ = 2√m < √L: the step shrinks by γ/√L (the stability limits of Euler and RM shrink)
    np.testing.assert_allclose(c.step_size, 0.8 * (2.0 * np.sqrt(m) / np.sqrt(L)) / np.sqrt(L),
                               rtol=1e-7)  # fmt: skip
    kernel = c.kernel("baoab")
    assert type(kernel) is DISCRETIZATIONS["baoab"]
    assert (kernel.step_size, kernel.friction) == (c.step_size, c.friction)


def test_suggestion_on_a_non_gaussian_target():
    """U = Σ x⁴/4 + x²/2 has the Hessian diag(3x² + 1): the local estimate is exact."""

    @numba.njit
    def vg(x):
        return -np.sum(0.25 * x**4 + 0.5 * x**2), -(x**3) - x

    target = langevin.Target.from_numba(value_and_grad=vg, dim=3)
    x = np.array([0.3, -1.2, 2.0])
    s = langevin.suggest_kinetic_parameters(target, x, friction_rule="critical")
    np.testing.assert_allclose([s.smoothness, s.strong_convexity], [13.0, 1.27], rtol=1e-6)


def test_suggestion_bad_arguments():
    target = langevin.targets.gaussian(2)
    with pytest.raises(ValueError, match="friction_rule"):
        langevin.suggest_kinetic_parameters(target, np.zeros(2), friction_rule="fast")
    with pytest.raises(ValueError, match="step_fraction"):
        langevin.suggest_kinetic_parameters(target, np.zeros(2), step_fraction=0.0)
    with pytest.raises(ValueError, match="iterations"):
        langevin.suggest_kinetic_parameters(target, np.zeros(2), iterations=0)
    with pytest.raises(ValueError, match="position"):
        langevin.suggest_kinetic_parameters(target, np.zeros(3))
    with pytest.raises(ValueError, match="position"):
        langevin.suggest_kinetic_parameters(target, np.array([0.0, np.inf]))
    with pytest.raises(TypeError, match="target"):
        langevin.suggest_kinetic_parameters(lambda x: x, np.zeros(2))

    @numba.njit
    def concave_up(x):  # log π = +x²/2: no log-concavity anywhere
        return 0.5 * np.dot(x, x), x.copy()

    bad = langevin.Target.from_numba(value_and_grad=concave_up, dim=2)
    with pytest.raises(ValueError, match="log-concave"):
        langevin.suggest_kinetic_parameters(bad, np.zeros(2))


# =============================================================================================
# Tolerances over many seeds (slow).
# =============================================================================================
SEEDS = range(100, 120)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_many_seeds(seed):
    for h, gamma in FREE_CASES:
        check_free_particle("jax", h, gamma, seed=seed)
    for h in RM_TABLE:
        check_rm_stationary_sampling(h, seed=seed)
    for name in SAMPLING_CASES:
        check_stationary_sampling(name, seed=seed)
