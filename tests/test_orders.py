"""Orders of the stationary bias, the affine maps read off the kernels, and the
convergence suite end to end, through the installed API (:mod:`langevin.convergence`).

Every exact number here comes from the kernels' own ``step_math``, run by NumPy
(:func:`langevin.convergence.extract_affine` reads the one-step affine map off it on a
Gaussian target); nothing is Monte Carlo except the end-to-end smoke run, so the tolerances
below are set by the finite-h curvature of exact curves and by rounding, not by sampling
noise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import langevin
from langevin.convergence import (
    GaussianProblem,
    NotAffineError,
    QuarticProblem,
    block_operator,
    classify,
    extract_affine,
    extract_blocks,
    fit_slope,
    full_chain,
    gradient_evaluations,
    grads_to_accuracy,
    w2_estimate,
)
from langevin.convergence.exact import start_blocks, steps_to_accuracy
from langevin.convergence.suite import TINY, run

GAMMA = 2.0


def kinetic(h: float, disc: str):
    return langevin.KineticLangevin(h, friction=GAMMA, discretization=disc)


def ula_stationary_w2_1d(h: float, lam: float = 1.0) -> float:
    """Stationary W2 of ULA on the 1-D ``N(0, 1/λ)`` from its exact stationary variance
    ``1/(λ(1 − hλ/2))`` (ALGORITHMS.md §1): ``|1/√(1 − hλ/2) − 1| / √λ``."""
    return abs(1.0 / math.sqrt(1.0 - 0.5 * h * lam) - 1.0) / math.sqrt(lam)


# ---------------------------------------------------------------------------------------------
# Orders
# ---------------------------------------------------------------------------------------------


def ula_bias_slope(make_kernel=langevin.ULA) -> float:
    hs = np.geomspace(0.01, 0.2, 6)
    w2 = [block_operator(make_kernel(h), np.array([1.0])).stationary_w2() for h in hs]
    return fit_slope(hs, w2)[0]


def test_ula_bias_slope_is_one():
    """ULA's stationary W2 bias on the 1-D Gaussian N(0, 1) has slope 1 ± 0.15 in h.

    The stationary law comes from the affine map read off ULA's own step (exact moment
    recursion, no sampling), so the only departure from slope 1 is the curvature of the
    log-log curve at finite h: W2(h) = 1/√(1 − h/2) − 1 = h/4 + 3h²/32 + …, whose local
    slope d log W2 / d log h = 1 + 3h/8 + O(h²) runs from 1.004 at h = 0.01 to 1.07 at
    h = 0.2 (1.005 … 1.061 between consecutive grid points). The least-squares slope over
    h ∈ [0.01, 0.2] is therefore in [1, 1.07] (it is 1.023); ± 0.15 leaves room for that
    and nothing else. A ULA whose drift coefficient is off by 10% (x' = x + 1.1 h∇log π +
    √(2h) ξ) has a bias that does not vanish as h → 0 (variance 1/(1.1(1 − 0.55h))): slope
    ≈ 0.1, and the test fails.
    """
    slope = ula_bias_slope()
    assert abs(slope - 1.0) < 0.15, slope


def test_ula_stationary_bias_matches_closed_form():
    """The extracted chain's stationary W2 is the closed form (ALGORITHMS.md §1, §10a),
    per eigendirection and on a rotated 4-D target (W2² sums over eigendirections)."""
    for h in (0.01, 0.1, 0.5):
        got = block_operator(langevin.ULA(h), np.array([1.0])).stationary_w2()
        assert got == pytest.approx(ula_stationary_w2_1d(h), rel=1e-10)
    prob = GaussianProblem(4, kappa=10.0, seed=3)
    h = 0.3
    want = math.sqrt(sum(ula_stationary_w2_1d(h, lam) ** 2 for lam in prob.eigenvalues))
    assert full_chain(langevin.ULA(h), prob).stationary_w2() == pytest.approx(want, rel=1e-9)


# Stationary (λ Var x, Var v, Cov(x, v)) of the randomized midpoint for λ = 1, γ = 2, u = 1,
# from ALGORITHMS.md §2b (64-point Gauss–Legendre random-coefficient Lyapunov solve there,
# checked there by a 4·10⁶-chain simulation).
RM_TABLE = {
    0.2: (1.00016739, 1.00076728, -3.2668e-4),
    0.5: (1.00262385, 1.01059516, -4.6754e-3),
    1.0: (1.02046507, 1.07193647, -2.93210e-2),
}


def test_randomized_midpoint_stationary_moments_match_table():
    """Exact stationary moments of the randomized midpoint, from its extracted maps averaged
    over α by quadrature, reproduce the independently computed table to the digits it
    prints (half a unit of the last digit: 5e-9 for the variances, 5e-8 for the covariances
    printed to 5 significant digits)."""
    for h, (var_x, var_v, cov) in RM_TABLE.items():
        r = block_operator(kinetic(h, "randomized_midpoint"), np.array([1.0]))
        s = r.stationary_second()[0]
        assert s[0, 0] == pytest.approx(var_x, abs=5e-9)
        assert s[1, 1] == pytest.approx(var_v, abs=5e-9)
        assert s[0, 1] == pytest.approx(cov, abs=5e-8)


def test_randomized_midpoint_bias_slope_against_theory():
    """The randomized midpoint's stationary bias on N(0, 1) shrinks like h³, steeper than
    the h^{3/2} of the general W2 bounds (Shen & Lee 2019; the kernel's ``bias_order``).

    Measured quantity: |λ Var x − 1| from the exact random-coefficient Lyapunov equation of
    ALGORITHMS.md §0/§2b, ``(I − E[M⊗M]) vec S = vec E[BBᵀ]``, with M(α), B(α) read off the
    kernel at 64 Gauss–Legendre nodes in α (quadrature error ~1e-16: the coefficients are
    analytic in α). Theory on Gaussians: the variance bias is c₃h³ + O(h⁴) (ALGORITHMS.md
    §2b; the table above decreases by 7.8 = 2^{2.97} per halving of h from 1 to 0.5). No
    sampling noise: the tolerance is the curvature of the curve over h ∈ [0.025, 0.4]; the
    local slopes there are 3.0003 … 3.0062, so the fitted slope is within 0.01 of 3. The
    test allows ± 0.05. The Gaussian W2 of these moments (a lower bound on the W2 of the
    mixture law) has the same slope; and it must not be shallower than the 1.5 the kernel
    declares as its (upper-bound) order.
    """
    hs = np.geomspace(0.025, 0.4, 9)
    ops = [block_operator(kinetic(h, "randomized_midpoint"), np.array([1.0])) for h in hs]
    bias = [abs(op.stationary_second()[0, 0, 0] - 1.0) for op in ops]
    slope, _, _ = fit_slope(hs, bias)
    assert abs(slope - 3.0) < 0.05, slope
    w2_slope, _, _ = fit_slope(hs, [op.stationary_w2() for op in ops])
    assert abs(w2_slope - 3.0) < 0.05, w2_slope
    assert w2_slope >= kinetic(0.1, "randomized_midpoint").bias_order


def test_splitting_orders_on_gaussians():
    """BAOAB and ABOBA: exact position variance (zero bias) at every stable h; OBABO: bias
    slope 2 (Var x = 1/(λ(1 − h²λ/4)), ALGORITHMS.md §2c)."""
    for disc in ("baoab", "aboba"):
        for h in (0.1, 0.7, 1.5):
            var = block_operator(kinetic(h, disc), np.array([1.0])).stationary_second()[0, 0, 0]
            assert var == pytest.approx(1.0, abs=1e-12)
    hs = np.geomspace(0.02, 0.3, 6)
    ops = [block_operator(kinetic(h, "obabo"), np.array([1.0])) for h in hs]
    for h, op in zip(hs, ops):
        assert op.stationary_second()[0, 0, 0] == pytest.approx(1 / (1 - h * h / 4), rel=1e-12)
    # W2 = 1/√(1 − h²/4) − 1 = h²/8 + O(h⁴): local slopes 2.0001 … 2.02 on this range
    assert abs(fit_slope(hs, [op.stationary_w2() for op in ops])[0] - 2.0) < 0.05


# ---------------------------------------------------------------------------------------------
# The extracted maps are the textbook recursions
# ---------------------------------------------------------------------------------------------


def test_ula_map_is_textbook_on_rotated_gaussian():
    """x' = (I − hA)x + hAm + √(2h) ξ on N(m, A⁻¹)."""
    prob = GaussianProblem(5, kappa=30.0, seed=1)
    h = 0.17
    a = extract_affine(langevin.ULA(h), prob.numpy_value_and_grad(), prob.dim)
    assert np.allclose(a.M, np.eye(5) - h * prob.precision, atol=1e-13)
    assert np.allclose(a.c, h * prob.precision @ prob.mean, atol=1e-13)
    assert np.allclose(a.B, math.sqrt(2 * h) * np.eye(5), atol=1e-13)
    b = extract_blocks(langevin.ULA(h), prob.eigenvalues)
    assert np.allclose(b.M[:, 0, 0], 1 - h * prob.eigenvalues, atol=1e-14)
    assert np.allclose(b.B[:, 0, 0], math.sqrt(2 * h), atol=1e-14)


def _kick(h, lam):
    return np.array([[1.0, 0.0], [-h * lam, 1.0]])


def _drift(h):
    return np.array([[1.0, h], [0.0, 1.0]])


def _ou(h, gamma):
    c = math.exp(-gamma * h)
    return np.diag([1.0, c]), np.array([0.0, math.sqrt(1 - c * c)])


@pytest.mark.parametrize("lam", [1.0, 0.3])
def test_splitting_maps_are_textbook(lam):
    """BAOAB = B(h/2) A(h/2) O(h) A(h/2) B(h/2), OBABO = O(h/2) B(h/2) A(h) B(h/2) O(h/2),
    with B: p += τ(−λx), A: x += τp, O: p ← e^{−γτ}p + √(1 − e^{−2γτ}) ξ (unit mass). Maps
    compose right to left; each O's noise column is pushed through what follows it."""
    h = 0.4
    kb, ka, (om, on) = _kick(h / 2, lam), _drift(h / 2), _ou(h, GAMMA)
    want_m = kb @ ka @ om @ ka @ kb
    want_b = (kb @ ka @ on)[:, None]
    got = extract_blocks(kinetic(h, "baoab"), np.array([lam]))
    assert np.allclose(got.M[0], want_m, atol=1e-14)
    assert np.allclose(got.B[0], want_b, atol=1e-14)

    kb, ka, (om, on) = _kick(h / 2, lam), _drift(h), _ou(h / 2, GAMMA)
    verlet = kb @ ka @ kb
    want_m = om @ verlet @ om
    want_b = np.stack([om @ verlet @ on, on], axis=1)
    got = extract_blocks(kinetic(h, "obabo"), np.array([lam]))
    assert np.allclose(got.M[0], want_m, atol=1e-14)
    assert np.allclose(got.B[0], want_b, atol=1e-14)


def _brownian_cov(a: float, h: float, gamma: float) -> np.ndarray:
    """Covariance of (W1, W2, W3) of ALGORITHMS.md §2b (u = 1, E = exp)."""
    E = math.exp
    g = gamma
    cx2, cxcv, cv2 = 2 / g, 2.0, 2 * g
    v1 = cx2 * (a - 2 * (1 - E(-g * a)) / g + (1 - E(-2 * g * a)) / (2 * g))
    v2 = cx2 * (h - 2 * (1 - E(-g * h)) / g + (1 - E(-2 * g * h)) / (2 * g))
    v3 = cv2 * (1 - E(-2 * g * h)) / (2 * g)
    c12 = cx2 * (
        a
        - (1 - E(-g * a)) / g
        - (E(-g * (h - a)) - E(-g * h)) / g
        + (E(-g * (h - a)) - E(-g * (h + a))) / (2 * g)
    )
    c13 = cxcv * ((E(-g * (h - a)) - E(-g * h)) / g - (E(-g * (h - a)) - E(-g * (h + a))) / (2 * g))
    c23 = cxcv * (1 - E(-g * h)) ** 2 / (2 * g)
    return np.array([[v1, c12, c13], [c12, v2, c23], [c13, c23, v3]])


def test_kinetic_euler_map_is_textbook():
    """Exponential Euler (Cheng et al. 2018): x' = x + A(h)p + (h − A(h))/γ ∇log π(x) + W2,
    p' = e^{−γh}p + A(h)∇log π(x) + W3, A(t) = (1 − e^{−γt})/γ, and the noise covariance of
    (W2, W3) is the §2b closed form."""
    lam, h, g = 0.7, 0.3, GAMMA
    a_h = (1 - math.exp(-g * h)) / g
    want_m = np.array([[1 - lam * (h - a_h) / g, a_h], [-lam * a_h, math.exp(-g * h)]])
    got = extract_blocks(kinetic(h, "euler"), np.array([lam]))
    assert np.allclose(got.M[0], want_m, atol=1e-14)
    cov = _brownian_cov(h, h, g)[1:, 1:]
    assert np.allclose(got.B[0] @ got.B[0].T, cov, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("alpha", [0.0, 0.13, 0.5, 0.97])
def test_randomized_midpoint_map_is_textbook(alpha):
    """At a fixed α (a = αh), ALGORITHMS.md §2b with u = 1:
    x_mid = x + A(a)p − (a − A(a))/γ λx + W1, x' = x + A(h)p − k_x λ x_mid + W2,
    p' = e^{−γh}p − k_p λ x_mid + W3, k_x = h(1 − e^{−γ(h−a)})/γ, k_p = h e^{−γ(h−a)}; the
    noise of (x', p') is (W2 − k_x λ W1, W3 − k_p λ W1) with the §2b covariance of
    (W1, W2, W3)."""
    lam, h, g = 1.3, 0.6, GAMMA
    a = alpha * h
    A = lambda t: (1 - math.exp(-g * t)) / g  # noqa: E731
    m1, m2 = 1 - lam * (a - A(a)) / g, A(a)
    kx, kp = h * (1 - math.exp(-g * (h - a))) / g, h * math.exp(-g * (h - a))
    want_m = np.array(
        [
            [1 - kx * lam * m1, A(h) - kx * lam * m2],
            [-kp * lam * m1, math.exp(-g * h) - kp * lam * m2],
        ]
    )
    load = np.array([[-kx * lam, 1.0, 0.0], [-kp * lam, 0.0, 1.0]])
    want_q = load @ _brownian_cov(a, h, g) @ load.T
    got = extract_blocks(kinetic(h, "randomized_midpoint"), np.array([lam]), {"midpoint": alpha})
    assert np.allclose(got.M[0], want_m, atol=1e-14)
    assert np.allclose(got.B[0] @ got.B[0].T, want_q, rtol=1e-10, atol=1e-15)


def test_metropolis_kernels_are_detected_as_not_affine():
    """Nothing is declared: probing the step finds the accept/reject step piecewise (at a
    uniform next to 1 only density-raising moves are accepted), so MALA and HMC get Monte
    Carlo; the unadjusted kernels are affine, the randomized midpoint with a random
    coefficient."""
    prob = GaussianProblem(2)
    for kernel in (langevin.MALA(0.1), langevin.HMC(0.1, n_leapfrog=3)):
        assert classify(kernel).kind == "nonlinear"
        with pytest.raises(NotAffineError, match="not affine"):
            extract_affine(kernel, prob.numpy_value_and_grad(), 2, {"uniform": 1.0 - 1e-6})
    assert classify(langevin.ULA(0.1)).kind == "linear"
    for disc in ("euler", "baoab", "obabo", "aboba"):
        assert classify(kinetic(0.1, disc)).kind == "linear"
    assert classify(kinetic(0.1, "randomized_midpoint")).kind == "random"


def test_gradient_evaluations_counted_on_the_kernels():
    assert gradient_evaluations(langevin.ULA(0.1)) == 1
    assert gradient_evaluations(langevin.MALA(0.1)) == 1
    assert gradient_evaluations(langevin.HMC(0.1, n_leapfrog=7)) == 7
    assert gradient_evaluations(kinetic(0.1, "randomized_midpoint")) == 2
    assert gradient_evaluations(kinetic(0.1, "baoab")) == 1


# ---------------------------------------------------------------------------------------------
# Propagation and costs against textbook recursions
# ---------------------------------------------------------------------------------------------


def test_exact_paths_match_ula_closed_form_and_rotation():
    """W2 after k steps from a point mass: per-eigendirection matrix powers, the rotated
    step-by-step recursion and the 1-D closed form (mean (1 − hλ)^k y₀, variance
    S(1 − (1 − hλ)^{2k}), S = 1/(λ(1 − hλ/2))) agree."""
    prob = GaussianProblem(4, kappa=10.0, seed=2)
    h = 0.2
    ks = [0, 1, 3, 10, 50, 200]
    lam, y0 = prob.eigenvalues, prob.start_eigen
    rho = 1 - h * lam
    s = 1 / (lam * (1 - h * lam / 2))
    want = [
        math.sqrt(
            np.sum((rho**k * y0) ** 2 + (np.sqrt(s * (1 - rho ** (2 * k))) - 1 / np.sqrt(lam)) ** 2)
        )
        for k in ks
    ]
    op = block_operator(langevin.ULA(h), lam)
    assert np.allclose(op.w2_path(*start_blocks(y0, 1), ks), want, rtol=1e-10)
    rotated = full_chain(langevin.ULA(h), prob).w2_path(prob.start, np.zeros((4, 4)), ks)
    assert np.allclose(rotated, want, rtol=1e-9)
    # a kinetic kernel: rotated and per-eigendirection forms agree too (isotropic friction)
    chain = full_chain(kinetic(h, "obabo"), prob)
    z0 = np.concatenate([prob.start, np.zeros(4)])
    cov0 = np.diag([0.0] * 4 + [1.0] * 4)
    op = block_operator(kinetic(h, "obabo"), lam)
    assert np.allclose(chain.w2_path(z0, cov0, ks), op.w2_path(*start_blocks(y0, 2), ks), rtol=1e-9)


def test_steps_to_accuracy_is_the_first_crossing():
    h, eps, y = 0.05, 0.1, 3.0
    op = block_operator(langevin.ULA(h), np.array([1.0]))
    k = steps_to_accuracy(op, *start_blocks(np.array([y]), 1), eps)
    w = op.w2_path(*start_blocks(np.array([y]), 1), [int(k) - 1, int(k)])
    assert w[0] > eps >= w[1]
    best = grads_to_accuracy(
        langevin.ULA, np.array([1.0]), np.array([y]), eps, 1.0, np.geomspace(0.01, 1.5, 10)
    )
    assert best["stationary_w2"] < eps and best["grads"] <= k


def test_noise_floor_flags_indistinguishable_samples():
    rng = np.random.default_rng(0)
    prob = QuarticProblem(1)
    same = w2_estimate(prob.exact_draws(20000, rng), prob.exact_draws, rng)
    assert not same.resolved
    shifted = w2_estimate(prob.exact_draws(20000, rng) + 0.2, prob.exact_draws, rng)
    assert shifted.resolved and shifted.w2 == pytest.approx(0.2, abs=0.03)
    # the quadrature law: E[x²] against the inverse-CDF sampler (z-test, 2·10⁵ draws)
    x = prob.exact_draws(200_000, rng)[:, 0]
    z = (np.mean(x * x) - prob.moment(2)) / (np.std(x * x) / math.sqrt(x.size))
    assert abs(z) < 4.5


# ---------------------------------------------------------------------------------------------
# The benchmark end to end
# ---------------------------------------------------------------------------------------------


def test_suite_tiny_run_writes_outputs(tmp_path):
    """The installed suite's ``TINY`` runs every experiment (two small JAX Monte Carlo runs,
    in JAX's precision) and writes CSV, MD and the three PNGs; the summary carries ULA's
    fitted orders."""
    result = run(TINY, tmp_path, verbose=False)
    names = {p.name for p in result["files"]}
    assert {
        "convergence.csv",
        "convergence.md",
        "bias_vs_step_size.png",
        "w2_vs_steps.png",
        "cost_vs_dimension.png",
    } <= names
    for p in result["files"]:
        assert p.stat().st_size > 500, p
    experiments = {r["experiment"] for r in result["rows"]}
    assert experiments == {
        "bias_gaussian",
        "path_gaussian",
        "cost_dimension",
        "cost_1d",
        "mc_gaussian",
        "quartic",
    }
    md = (tmp_path / "convergence.md").read_text()
    assert "| ULA | 1 |" in md and "| kinetic_baoab | 1 | exact" in md
    ula = next(t for t in result["summary"].table if t["kernel"] == "ULA")
    assert abs(ula["gauss_slope"][0] - 1.0) < 0.15
    assert abs(ula["dim_slope"][0] - 0.5) < 0.25
    # the Monte Carlo control: ULA's stationary variance on JAX against the twin's exact one
    for r in result["rows"]:
        if r["experiment"] == "mc_gaussian" and r["quantity"] == "var":
            assert abs(r["value"] - r["exact_value"]) < 4.6 * r["value_se"], r


@pytest.mark.slow
def test_monte_carlo_stationary_variance_matches_extracted_moments(x64):
    """The JAX backend's chains agree with the moments read off the NumPy twins: stationary
    variance of the randomized midpoint (exact random-coefficient Lyapunov value) and of
    MALA (exactly 1) on N(m, 1), from per-chain time averages of 20 000 independent chains
    (independent chains: the MCSE is the spread of the per-chain averages over √n), z-tested
    at the suite's Bonferroni level."""
    from langevin.convergence import run_chains
    from tests.stats_helpers import Z_CRIT

    prob = GaussianProblem(1, 1.0, seed=0)
    rng = np.random.default_rng(5)
    n, steps = 20_000, 40
    for kernel, exact in (
        (kinetic(1.0, "randomized_midpoint"), RM_TABLE[1.0][0]),
        (langevin.MALA(1.0), 1.0),
    ):
        mom = rng.standard_normal((n, 1)) if "momentum" in type(kernel).State._fields else None
        run_ = run_chains(
            kernel,
            prob.target(),
            np.tile(prob.start, (n, 1)),
            [steps],
            seed=7,
            momentum0=mom,
            average_from=steps // 2,
            powers=(2,),
            center=prob.mean,
        )
        var, se = run_.moment(2)
        assert abs(var - exact) < Z_CRIT * se, (type(kernel).__name__, var, exact, se)
