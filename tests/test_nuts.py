"""NUTS: its trees are Stan's, it leaves π invariant, its chains are right, its caps hold.

* **Stan's trees, exactly.** An independent transcription of Stan's recursive transition
  (``base_nuts.hpp``, 2.26+, with the checks across merged subtrees) in plain NumPy, fed the
  same momentum and direction bits, builds the same trajectory: the same tree depth, number
  of integrator steps, mean Metropolis acceptance and divergence flag, and the kernel's
  sample is one of the points of the kept subtrees. (Which point is drawn depends on how the
  multinomial choices consume uniforms, which differs from Stan's recursion by design.)
  Run through the kernel's NumPy twin on an anisotropic Gaussian with a mismatched mass.
* **Invariance of one transition.** Many independent single transitions, each started from
  an exact draw of the target, must again be exact draws: KS test of the result against the
  exact law, and z-tests of its second moments (exact: χ²₁ has variance 2). 1-D and 2-D
  Gaussians, several step sizes and masses. This fails when the multinomial weights, the
  biased progressive choice or the U-turn checks are broken (see the report in docs/nuts.md).
* **Chains.** MCMC z-tests (MCSE from ArviZ's ESS) of all means, variances and covariances
  on a correlated Gaussian and on an ill-conditioned one (condition number 100, rotated so a
  diagonal mass cannot undo it), with Stan's warm-up, on Numba; JAX too (float32 unless the
  run enables x64).
* **Caps and divergences.** ``max_depth`` bounds the tree and the gradients; a step beyond
  the stability limit of a stiff direction is flagged as divergent and warned about, and the
  chains go on.

Same noise, same chain on both backends: ``test_conformance.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

import langevin
from langevin.backends import jax_backend, numba_backend, numpy_ops
from langevin.backends.portable import make_twin
from langevin.health import DivergentTransitionWarning
from langevin.kernels.base import GradientState
from langevin.kernels.nuts import NUTS, NUTSNoise, nuts_step
from langevin.spec import Normal, Uniform, draw_numpy
from tests.conftest import correlated_gaussian
from tests.stats_helpers import (
    SUITE_FALSE_ALARM,
    SUITE_Z_TESTS,
    Z_CRIT,
    assert_z_ok,
    moment_z_scores,
    z_score,
)

P_CRIT = SUITE_FALSE_ALARM / SUITE_Z_TESTS


# -- arguments and declarations ----------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(max_depth=0), ValueError, "max_depth"),
        (dict(max_depth=17), ValueError, "max_depth"),
        (dict(max_depth=2.0), TypeError, "max_depth"),
        (dict(max_depth=True), TypeError, "max_depth"),
        (dict(inverse_mass=np.ones((2, 2))), ValueError, "NUTS: inverse_mass"),
        (dict(inverse_mass=[1.0, 0.0]), ValueError, "NUTS: inverse_mass"),
        (dict(integrator="euler"), ValueError, "integrator"),
        (dict(divergence_threshold=-1.0), ValueError, "divergence_threshold"),
    ],
)
def test_bad_arguments_are_refused(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        NUTS(0.1, **kwargs)


def test_nuts_declares_itself():
    kernel = NUTS(0.1, max_depth=4)
    assert kernel.noise(3) == NUTSNoise(Normal((3,)), Uniform((4,)), Uniform((4,)),
                                        Uniform((15,)))  # fmt: skip
    assert NUTS.exact and NUTS.target_acceptance == 0.8
    assert NUTS.adapts_step_size and NUTS.adapts_inverse_mass
    assert {"acceptance_rate", "diverging", "energy", "tree_depth", "n_grad"} == set(
        NUTS.Info._fields
    )
    assert langevin.NUTS is NUTS and "NUTS" in langevin.kernels.__all__


# -- Stan's trajectories, from an independent transcription -------------------------------------
def _log_sum_exp(a: float, b: float) -> float:
    return float(np.logaddexp(a, b))


def stan_transition(x0, xi, directions, h, inverse_mass, value_and_grad, max_depth,
                    threshold=1000.0):  # fmt: skip
    """Stan's ``base_nuts::transition`` (2.26+) with leapfrog, recursively, in NumPy.

    Returns ``(depth, n_leapfrog, accept_prob, divergent, points)``; ``points`` are the
    positions of the subtrees kept. ``directions[j] < 0.5`` extends forward (the kernel's
    convention). The multinomial choices are left out: they do not change the tree.
    """
    state = {"divergent": False, "n_leapfrog": 0, "sum_metro": 0.0}

    def hamiltonian(z):
        return 0.5 * np.sum(inverse_mass * z[1] ** 2) - z[2]

    def leapfrog(z, eps):
        x, p, _, g = z
        p = p + 0.5 * eps * g
        x = x + eps * inverse_mass * p
        lp, g = value_and_grad(x)
        return (x, p + 0.5 * eps * g, lp, g)

    def criterion(v_minus, v_plus, rho):
        return v_plus @ rho > 0 and v_minus @ rho > 0

    def build_tree(depth, z, sign, H0, points):
        """Returns ``(valid, z_end, rho, p_beg, p_end, log_sum_weight)``."""
        if depth == 0:
            z = leapfrog(z, sign * h)
            state["n_leapfrog"] += 1
            H = hamiltonian(z)
            if np.isnan(H):
                H = np.inf
            if H - H0 > threshold:
                state["divergent"] = True
            state["sum_metro"] += 1.0 if H0 - H > 0 else np.exp(H0 - H)
            points.append(z[0])
            return not state["divergent"], z, z[1].copy(), z[1], z[1], H0 - H
        valid, z, rho_init, p_beg, p_init_end, w_init = build_tree(depth - 1, z, sign, H0,
                                                                    points)  # fmt: skip
        if not valid:
            return False, z, None, None, None, None
        valid, z, rho_final, p_final_beg, p_end, w_final = build_tree(depth - 1, z, sign, H0,
                                                                       points)  # fmt: skip
        if not valid:
            return False, z, None, None, None, None
        rho = rho_init + rho_final
        ok = criterion(inverse_mass * p_beg, inverse_mass * p_end, rho)
        ok &= criterion(inverse_mass * p_beg, inverse_mass * p_final_beg, rho_init + p_final_beg)
        ok &= criterion(inverse_mass * p_init_end, inverse_mass * p_end, rho_final + p_init_end)
        return ok, z, rho, p_beg, p_end, _log_sum_exp(w_init, w_final)

    p0 = xi / np.sqrt(inverse_mass)
    lp0, g0 = value_and_grad(x0)
    z0 = (x0, p0, lp0, g0)
    H0 = hamiltonian(z0)
    z_fwd = z_bck = z0
    p_fwd_fwd = p_fwd_bck = p_bck_fwd = p_bck_bck = p0
    rho = p0.copy()
    kept = [x0]
    depth = 0
    while depth < max_depth:
        points: list = []
        if directions[depth] < 0.5:  # forward: the old trajectory is the backward part
            rho_bck, p_bck_fwd = rho, p_fwd_fwd
            valid, z_fwd, rho_fwd, p_fwd_bck, p_fwd_fwd, _ = build_tree(depth, z_fwd, 1.0, H0,
                                                                        points)  # fmt: skip
        else:
            rho_fwd, p_fwd_bck = rho, p_bck_bck
            valid, z_bck, rho_bck, p_bck_fwd, p_bck_bck, _ = build_tree(depth, z_bck, -1.0, H0,
                                                                        points)  # fmt: skip
        if not valid:
            break
        depth += 1
        kept += points
        rho = rho_bck + rho_fwd
        v = {k: inverse_mass * p for k, p in
             dict(bb=p_bck_bck, bf=p_bck_fwd, fb=p_fwd_bck, ff=p_fwd_fwd).items()}  # fmt: skip
        ok = criterion(v["bb"], v["ff"], rho)
        ok &= criterion(v["bb"], v["fb"], rho_bck + p_fwd_bck)
        ok &= criterion(v["bf"], v["ff"], rho_fwd + p_bck_fwd)
        if not ok:
            break
    n = state["n_leapfrog"]
    return depth, n, state["sum_metro"] / n, state["divergent"], np.array(kept)


def compare_with_stan(target, draw, step_sizes, mass_spread, trials, seed):
    """Transitions of the kernel's NumPy twin against :func:`stan_transition`, from
    ``draw(rng)`` starts, random masses ``exp(U(−spread, spread))`` and fresh noise; returns
    what was seen."""
    dim = target.dim
    rng = np.random.default_rng(seed)
    form = numba_backend.bind_target(target, dim)
    target_tuple = form.build(form.data)

    def value_and_grad(x):
        lp, g = numpy_ops.value_and_grad(target_tuple, x)
        return float(lp), np.asarray(g)

    step = make_twin(nuts_step, numpy_ops, lambda f: f, {})
    seen = {"divergent": 0, "capped": 0, "depths": set()}
    for trial in range(trials):
        h = step_sizes[trial % len(step_sizes)]
        max_depth = [10, 4][trial % 2]
        inverse_mass = np.exp(rng.uniform(-mass_spread, mass_spread, dim))
        kernel = NUTS(h, max_depth=max_depth, inverse_mass=inverse_mass)
        noise = draw_numpy(kernel.noise(dim), rng)
        x0 = draw(rng)
        lp, g = value_and_grad(x0)
        new, info = step(GradientState(x0, lp, g), noise, h, kernel.params(), target_tuple)
        depth, n, accept, divergent, kept = stan_transition(
            x0, noise.normal, noise.direction, h, inverse_mass, value_and_grad, max_depth
        )
        assert info.tree_depth == depth, trial
        assert info.n_grad == n, trial
        assert bool(info.diverging) == divergent, trial
        np.testing.assert_allclose(info.acceptance_rate, accept, rtol=1e-10)
        assert np.min(np.max(np.abs(kept - new.position), axis=1)) < 1e-12
        seen["divergent"] += divergent
        seen["capped"] += depth == max_depth
        seen["depths"].add(depth)
    return seen


def test_trees_are_stans():
    """Depth, integrator steps, acceptance statistic and divergence equal an independent
    transcription of Stan's recursive NUTS, transition by transition; the sample is a point
    of the kept trajectory. An anisotropic, correlated 3-D Gaussian with a mass that does
    not match it (so velocity ≠ momentum), step sizes from careful to unstable."""
    rng = np.random.default_rng(11)
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    cov = q @ np.diag([4.0, 1.0, 0.04]) @ q.T
    chol = np.linalg.cholesky(cov)
    seen = compare_with_stan(langevin.targets.gaussian(3, cov=cov),
                             lambda r: chol @ r.standard_normal(3), [0.05, 0.2, 0.35, 0.45],
                             mass_spread=1.0, trials=120, seed=12)  # fmt: skip
    # the comparison covered trees at the cap and a range of depths
    assert seen["capped"] > 0 and len(seen["depths"]) >= 4, seen


def test_divergent_trees_are_stans():
    """The same on Neal's funnel (5-D), from exact draws: in the neck the curvature e^{−v}
    exceeds what the step allows, and trajectories diverge part-way through a subtree, which
    must stop the doubling there."""

    def funnel_draw(r):
        v = 3.0 * r.standard_normal()
        return np.concatenate([[v], np.exp(v / 2) * r.standard_normal(4)])

    seen = compare_with_stan(langevin.targets.neals_funnel(5), funnel_draw, [0.3, 0.6, 1.0],
                             mass_spread=0.5, trials=80, seed=13)  # fmt: skip
    assert seen["divergent"] >= 10 and len(seen["depths"]) >= 3, seen


# -- invariance of one transition -----------------------------------------------------------------
N_TRANSITIONS = 40_000


def one_transition_from_the_target(kernel, cov, backend, seed=0):
    """``N_TRANSITIONS`` independent transitions from exact draws of N(0, cov), whitened."""
    dim = cov.shape[0]
    chol = np.linalg.cholesky(cov)
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((N_TRANSITIONS, dim)) @ chol.T
    noise = draw_numpy(kernel.noise(dim), np.random.default_rng(seed + 1), (N_TRANSITIONS, 1))
    be = {"numba": numba_backend, "jax": jax_backend}[backend]
    x0 = x0.astype(be.default_float())  # float32 on JAX without x64
    prepared = be.prepare(kernel, langevin.targets.gaussian(dim, cov=cov), dim, x0.dtype)
    out = be.run(prepared, be.init(prepared, x0), 1, np.full(N_TRANSITIONS, kernel.step_size),
                 noise=noise)  # fmt: skip
    x1 = np.asarray(out.position, dtype=np.float64)[:, 0]
    assert np.mean(np.any(x1 != x0, axis=1)) > 0.5  # it moved
    return np.linalg.solve(chol, x1.T).T, out.info


def assert_exact_draws(w):
    """KS of each whitened coordinate against N(0, 1); z of E w_i² = 1 (Var w² = 2) and of
    E w_i w_j = 0 (Var 1)."""
    n, dim = w.shape
    for i in range(dim):
        assert stats.kstest(w[:, i], "norm").pvalue > P_CRIT, i
        z = (np.mean(w[:, i] ** 2) - 1.0) / np.sqrt(2.0 / n)
        assert abs(z) < Z_CRIT, (i, z)
        for j in range(i + 1, dim):
            z = np.mean(w[:, i] * w[:, j]) / np.sqrt(1.0 / n)
            assert abs(z) < Z_CRIT, (i, j, z)


INVARIANCE_CASES = {
    # (step size, inverse mass, covariance): careful and coarse steps, matched and
    # mismatched masses; the 2-D case correlated, where the U-turn checks see directions
    "1d-h0.3": (0.3, [1.0], np.eye(1)),
    "1d-h1.0": (1.0, [1.0], np.eye(1)),
    "1d-h1.5-mass0.3": (1.5, [0.3], np.eye(1)),
    "2d-corr-h0.3": (0.3, [1.0, 0.2], np.array([[1.0, 0.9], [0.9, 1.0]])),
}


@pytest.mark.parametrize("case", list(INVARIANCE_CASES))
def test_one_transition_from_the_target_stays_on_the_target(case):
    """The exact law of one transition from π is π (JAX: float32 unless x64 is on)."""
    h, inverse_mass, cov = INVARIANCE_CASES[case]
    w, info = one_transition_from_the_target(NUTS(h, inverse_mass=inverse_mass), cov, "jax")
    assert not np.any(info["diverging"])
    assert_exact_draws(w)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(INVARIANCE_CASES))
def test_one_transition_from_the_target_stays_on_the_target_numba(case):
    h, inverse_mass, cov = INVARIANCE_CASES[case]
    w, _ = one_transition_from_the_target(NUTS(h, inverse_mass=inverse_mass), cov, "numba")
    assert_exact_draws(w)


# -- chains: MCMC z-tests ------------------------------------------------------------------------
def ill_conditioned_gaussian(dim: int = 5, seed: int = 3):
    """N(m, Σ) with eigenvalues of Σ from 1 to 0.01 (condition number 100), rotated."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    cov = q @ np.diag(np.geomspace(1.0, 0.01, dim)) @ q.T
    cov = 0.5 * (cov + cov.T)
    mean = rng.standard_normal(dim)
    return langevin.targets.gaussian(dim, mean=mean, cov=cov), mean, cov


def check_nuts_gaussian(make, backend, seed, draws=2000, warmup=1000, **kernel_args):
    target, mean, cov = make()
    trace = langevin.sample(target, NUTS(0.5, **kernel_args), chains=4, warmup=warmup,
                            draws=draws, seed=seed, backend=backend, progress=False)  # fmt: skip
    stats_ = trace.sample_stats
    assert trace.diverged == {} and not stats_["diverging"].any()
    assert np.all(stats_["tree_depth"] <= 10) and np.all(stats_["n_grad"] <= 1023)
    # dual averaging aims at 0.8; sampling uses the averaged (smaller) step. With the
    # minimal-norm integrator a Gaussian's acceptance stays near 1 up to the stability limit,
    # where it falls off a cliff: the averaged step sits below it, at up to 0.99+ (seed 23)
    assert stats_["acceptance_rate"].mean() > 0.7
    if kernel_args.get("integrator", "leapfrog") == "leapfrog":
        assert stats_["acceptance_rate"].mean() < 0.99
    assert_z_ok(moment_z_scores(np.asarray(trace.draws, dtype=np.float64), mean, cov))
    return trace


def test_nuts_moments_correlated_gaussian():
    trace = check_nuts_gaussian(lambda: correlated_gaussian(4, seed=0), "numba", seed=5,
                                draws=4000)  # fmt: skip
    # power: the same draws reject a covariance 10% off
    _, mean, cov = correlated_gaussian(4, seed=0)
    zs = moment_z_scores(trace.draws, mean, 1.1 * cov)
    assert max(abs(v) for v in zs.values()) > Z_CRIT


def test_nuts_moments_ill_conditioned_gaussian():
    trace = check_nuts_gaussian(ill_conditioned_gaussian, "numba", seed=7)
    # the trajectory length adapts to the widest scale over the step the narrowest allows
    assert trace.sample_stats["tree_depth"].mean() > 2.5


def test_nuts_moments_ill_conditioned_gaussian_jax():
    check_nuts_gaussian(ill_conditioned_gaussian, "jax", seed=8, draws=1000)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [21, 22, 23])
@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_nuts_moments_many_seeds(seed, backend):
    check_nuts_gaussian(ill_conditioned_gaussian, backend, seed=seed, draws=4000)
    check_nuts_gaussian(lambda: correlated_gaussian(6, seed=seed), backend, seed=seed,
                        draws=4000, integrator="minimal_norm")  # fmt: skip


# -- caps, divergences, warm-up ------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_tree_depth_cap_is_respected(backend):
    """A tiny step wants a deep tree: every transition stops at max_depth, with exactly
    2^max_depth − 1 integrator steps (× the stages of the integrator)."""
    target = langevin.targets.gaussian(2)
    kw = dict(chains=2, warmup=0, draws=50, seed=1, backend=backend, progress=False)
    # (on JAX each max_depth is a new noise shape, hence a new compilation: one there)
    cases = [(3, "leapfrog", 1), (3, "minimal_norm", 2)]
    if backend == "numba":
        cases.append((1, "leapfrog", 1))
    for max_depth, integrator, stages in cases:
        kernel = NUTS(0.001, max_depth=max_depth, integrator=integrator)
        trace = langevin.sample(target, kernel, **kw)
        np.testing.assert_array_equal(trace.sample_stats["tree_depth"], max_depth)
        np.testing.assert_array_equal(trace.sample_stats["n_grad"],
                                      (2**max_depth - 1) * stages)  # fmt: skip
    # and a reasonable step stops earlier (the U-turn criterion, not the cap)
    trace = langevin.sample(target, NUTS(0.3, max_depth=3), **kw)
    assert trace.sample_stats["tree_depth"].min() < 3


@pytest.mark.parametrize("backend", ["numba", "jax"])
@pytest.mark.filterwarnings("ignore::langevin.health.StuckChainWarning")
def test_divergent_transitions_are_flagged_reported_and_chains_go_on(backend):
    """A step past the leapfrog's stability limit in the stiff direction (h ω = 3 > 2,
    ω = 100): energy errors grow geometrically along the trajectory, the tree stops at the
    first error above 1000 and the transition is flagged; the driver warns with the count."""
    target = langevin.targets.gaussian(2, cov=np.diag([1.0, 1e-4]))
    kw = dict(chains=3, warmup=0, draws=60, seed=2, backend=backend, progress=False)
    with pytest.warns(DivergentTransitionWarning, match=r"(\d+) of 180 transitions") as rec:
        trace = langevin.sample(target, NUTS(0.03), **kw)
    flags = trace.sample_stats["diverging"]
    assert flags.sum() > 0
    assert f"{int(flags.sum())} of 180" in str(rec[0].message)
    assert trace.diverged == {} and np.all(np.isfinite(trace.draws))
    # a divergent trajectory stops early, far below the cap
    assert np.all(trace.sample_stats["n_grad"][flags] < 1023)
    assert int(trace.to_arviz().sample_stats["diverging"].sum()) == int(flags.sum())
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergentTransitionWarning)
        fine = langevin.sample(target, NUTS(0.01), **kw)  # h ω = 1: stable
    assert not fine.sample_stats["diverging"].any()


def test_warmup_learns_the_variances_of_an_ill_conditioned_diagonal_gaussian():
    """Stan's windowed warm-up: the inverse mass ends near the posterior variances (within
    the sampling error of the last window), and the step size grows with it."""
    variances = np.geomspace(1.0, 1e-4, 4)
    target = langevin.targets.gaussian(4, cov=np.diag(variances))
    trace = langevin.sample(target, NUTS(0.01), chains=2, warmup=1000, draws=200, seed=4,
                            progress=False)  # fmt: skip
    ratio = trace.inverse_mass / variances
    assert np.all((ratio > 0.6) & (ratio < 1.6)), ratio
    assert np.all(trace.step_size > 0.3)  # unit scale after preconditioning
    assert trace.sample_stats["tree_depth"].mean() < 4


# -- posteriordb (slow: a new target form compiles the Numba loop again, ~20 s) -------------------
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numba", "jax"])
@pytest.mark.parametrize("posterior", ["arK-arK", "gp_pois_regr-gp_regr",
                                       "earnings-logearn_interaction_z"])  # fmt: skip
def test_nuts_matches_posteriordb(posterior, backend):
    """Posterior means and sds against posteriordb's references, in units of the combined
    MCSE (ours from ArviZ's ESS; the reference's own: 0 for exact moments, else from its
    10 Stan chains)."""
    from benchmarks.ess_table import mcse_sd, reference_sd_mcse

    target = langevin.targets.posteriordb(posterior)
    ref = target.reference
    trace = langevin.sample(target, NUTS(0.1), chains=4, warmup=1000, draws=2000, seed=3,
                            backend=backend, progress=False)  # fmt: skip
    assert not trace.sample_stats["diverging"].any()
    x = np.asarray(trace.draws, dtype=np.float64)
    ref_sd_mcse = reference_sd_mcse(ref)
    zs = {}
    for i in range(target.dim):
        zs[f"mean[{i}]"] = z_score(x[..., i], float(ref.mean[i]), float(ref.mean_mcse[i]))
        sd = float(np.std(x[..., i], ddof=1))
        zs[f"sd[{i}]"] = (sd - float(ref.sd[i])) / np.hypot(mcse_sd(x[..., i]), ref_sd_mcse[i])
    assert_z_ok(zs)
