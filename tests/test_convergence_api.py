"""The installed convergence API (:mod:`langevin.convergence`) on users' kernels, the
synchronous-coupling bounds, the theory warnings, the table, the figures and the command line.

Exact numbers come from the kernels' own steps run by NumPy (no sampling), so they are
compared with closed forms to rounding. Monte Carlo numbers are compared with exact ones at
tolerances set by their standard errors (``Z_CRIT``, the suite's Bonferroni level) or, for a
W2 between two samples, by the noise floor (triangle inequality, module docstring of
:mod:`langevin.convergence.montecarlo`). Fixed seeds throughout.
"""

from __future__ import annotations

import itertools
import math
import textwrap

import numpy as np
import pytest

import langevin
import langevin.convergence as lc
from tests.stats_helpers import Z_CRIT

# The toy kernel of langevin/kernels/base.py's docstring, verbatim, and an unadjusted kernel
# of the test's own (ULA with Heun's predictor-corrector drift), both defined as a notebook
# cell would define them: exec'd in a fresh namespace, no source file.
RANDOM_WALK = """
from typing import NamedTuple
from dataclasses import dataclass
from langevin.backends.portable import portable
from langevin.kernels.base import Kernel, GradientState, init_gradient_state
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
    proposal = GradientState(y, lp, g)
    return xp.select_tree(accepted, proposal, state), MHInfo(prob, accepted, False)

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

HEUN = """
from typing import NamedTuple
from dataclasses import dataclass
from langevin.backends.portable import portable
from langevin.kernels.base import Kernel, GradientState, init_gradient_state
from langevin.spec import Flag, Normal, Scalar, Vector

class HeunNoise(NamedTuple):
    normal: Vector

class HeunInfo(NamedTuple):
    acceptance_rate: Scalar
    diverging: Flag

@portable
def heun_step(state, noise, step_size, params, target):
    # x' = x + (h/2)(∇log π(x) + ∇log π(x + h∇log π(x))) + √(2h) ξ
    predictor = state.position + step_size * state.grad
    _, g_pred = xp.value_and_grad(target, predictor)
    y = (state.position + 0.5 * step_size * (state.grad + g_pred)
         + xp.sqrt(2.0 * step_size) * noise.normal)
    lp, g = xp.value_and_grad(target, y)
    return GradientState(y, lp, g), HeunInfo(1.0, False)

@dataclass(frozen=True)
class HeunULA(Kernel):
    step_size: float
    Noise = HeunNoise
    Info = HeunInfo
    State = GradientState
    exact = False
    bias_order = 1.0
    init_math = staticmethod(init_gradient_state)
    step_math = staticmethod(heun_step)

    def noise(self, dim):
        return HeunNoise(Normal((dim,)))
"""


def _cell(code: str, name: str):
    # dont_inherit: a notebook cell does not see this module's ``from __future__ import
    # annotations`` (string annotations would be looked up in a module that is not there)
    namespace = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(code), "<cell>", "exec", dont_inherit=True), namespace)
    return namespace[name]


@pytest.fixture(scope="module")
def random_walk():
    return _cell(RANDOM_WALK, "RandomWalk")


@pytest.fixture(scope="module")
def heun():
    return _cell(HEUN, "HeunULA")


def heun_stationary_w2(h: float, eigenvalues: np.ndarray) -> float:
    """Stationary W2 of the Heun kernel on ``N(m, Q diag(1/λ) Qᵀ)`` from its own linear
    recursion: per eigendirection ``y' = (1 − a + a²/2) y + √(2h) ξ`` (``a = hλ``), so
    ``Var = 2h / (1 − (1 − a + a²/2)²)`` and ``W2² = Σ (√Var − 1/√λ)²``."""
    a = h * eigenvalues
    var = 2 * h / (1 - (1 - a + a * a / 2) ** 2)
    return float(np.sqrt(np.sum((np.sqrt(var) - 1 / np.sqrt(eigenvalues)) ** 2)))


# ---------------------------------------------------------------------------------------------
# Users' kernels
# ---------------------------------------------------------------------------------------------


def test_user_unadjusted_kernel_gets_exact_laws_and_its_own_order(heun):
    """An unadjusted kernel defined in a cell: the study detects that its step is affine,
    takes the exact path, and its stationary W2 is the closed form of its own linear
    recursion (to rounding) at every h; the fitted bias order is the slope of that closed
    form on the same grid, within 1 ± 0.1 (the declared order; the curvature of the exact
    curve over h ∈ [0.01, 0.1] is a few hundredths), so no warning is issued."""
    prob = lc.GaussianProblem(4, kappa=10.0, seed=2)
    hs = list(np.geomspace(0.01, 0.1, 5))
    s = lc.study({"heun": heun}, prob, step_sizes=hs, iterations=40)
    (spec,) = s.specs
    assert spec.kind == "linear" and s.grads_per_step["heun"] == 2
    rows = s.select(kernel="heun", quantity="w2_stationary")
    assert [r["method"] for r in rows] == ["exact"] * 5
    want = [heun_stationary_w2(h, prob.eigenvalues) for h in hs]
    assert np.allclose([r["value"] for r in rows], want, rtol=1e-9)
    fit = s.fits.sel(kernel="heun")
    assert float(fit["bias_order"]) == pytest.approx(lc.fit_slope(hs, want)[0], abs=1e-8)
    assert abs(float(fit["bias_order"]) - 1.0) < 0.1
    assert str(fit["bias_agreement"].values) == "agrees"
    # W2 against iterations: exact, from the start's W2 = sqrt((s² + 1) tr Σ) down
    path = s.select(kernel="heun", quantity="w2", step_size=hs[-1])
    assert path[0]["iteration"] == 0
    assert path[0]["value"] == pytest.approx(prob.w2_start(), rel=1e-9)
    assert all(a["value"] > b["value"] for a, b in itertools.pairwise(path))


def test_declared_theory_that_the_fit_contradicts_warns(heun):
    """Declaring order 2 for a kernel whose bias is O(h) is a TheoryMismatchWarning naming
    the fit and the theory; so is a dimension exponent below what the cost shows."""
    prob = lc.GaussianProblem(3, kappa=10.0)
    with pytest.warns(lc.TheoryMismatchWarning, match=r"heun: fitted stationary-bias order 1"):
        lc.study({"heun": heun}, prob, step_sizes=[0.01, 0.02, 0.05, 0.1],
                 theory={"heun": {"bias_order": 2.0}})  # fmt: skip
    with pytest.warns(lc.TheoryMismatchWarning, match="ULA: fitted dimension exponent"):
        lc.study(["ULA"], prob, step_sizes=list(np.geomspace(0.01, 1.0, 8)), dims=[4, 32, 256],
                 theory={"ULA": {"bias_order": 1.0, "dim_exponent": 0.0}})  # fmt: skip


@pytest.mark.parametrize("backend", ["jax", "numba"])
def test_user_unadjusted_kernel_monte_carlo_matches_its_exact_law(heun, backend):
    """The same cell kernel by Monte Carlo (method="monte_carlo") on either backend: the
    stationary W2 estimated from 4000 chains on N(m, 1) agrees with the exact one read off
    its twin within 3 noise floors (|Ŵ − W| ≤ W2(μ̂, μ) + W2(π̂, π), each about a floor)."""
    prob = lc.GaussianProblem(1, kappa=1.0)
    s = lc.study({"heun": heun}, prob, step_sizes=[0.5], method="monte_carlo",
                 backend=backend, n_chains=4000)  # fmt: skip
    (row,) = s.select(quantity="w2_stationary")
    assert row["method"] == "monte_carlo"
    exact = heun_stationary_w2(0.5, prob.eigenvalues)
    assert exact > 10 * row["noise_floor"]
    assert abs(row["value"] - exact) < 3 * row["noise_floor"], (row["value"], exact)


def test_toy_random_walk_gets_a_full_monte_carlo_study(random_walk):
    """The random-walk kernel of the base class's docstring, defined in a cell: detected as
    not affine (Monte Carlo), W2 from the point mass starts at its exact value
    √((x₀ − m)² + 1) and falls to the noise floor; the stationary bias is unresolved (an
    exact kernel); the coupling bound lies above the Monte Carlo W2 at every k (up to the
    floor and its standard error); the three figures draw."""
    prob = lc.GaussianProblem(1, kappa=1.0)
    s = lc.study(random_walk, prob, step_sizes=[1.0, 2.0], iterations=[0, 1, 2, 5, 10, 40, 80],
                 n_chains=4000, coupling=True)  # fmt: skip
    (spec,) = s.specs
    assert spec.kind == "mc" and spec.bias_theory is None
    for h in (1.0, 2.0):
        path = s.select(quantity="w2", step_size=h)
        floor = path[0]["noise_floor"]
        assert path[0]["value"] == pytest.approx(math.sqrt(3.0**2 + 1), abs=3 * floor)
        assert path[-1]["value"] < 3 * floor  # converged to π at this resolution
        cb = s.select(quantity="coupling_bound", step_size=h)
        for w, b in zip(path, cb):
            assert w["value"] <= b["value"] + Z_CRIT * b["value_se"] + 2 * floor, (w, b)
    assert not any(r["resolved"] for r in s.select(quantity="w2_stationary"))
    assert str(s.fits["bias_agreement"].sel(kernel="RandomWalk").values) == "agrees"
    for fn in (lc.plot_bias, lc.plot_w2_vs_iterations, lc.plot_cost_vs_dimension):
        fig = fn(s)
        assert fig.axes
        import matplotlib.pyplot as plt

        plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Coupling bounds
# ---------------------------------------------------------------------------------------------

COUPLED = {
    "ULA": lambda h: langevin.ULA(h),
    "kinetic_euler": lambda h: langevin.KineticLangevin(h, friction=2.0, discretization="euler"),
    "kinetic_baoab": lambda h: langevin.KineticLangevin(h, friction=2.0, discretization="baoab"),
}


@pytest.mark.parametrize("name", sorted(COUPLED))
def test_coupling_bound_is_above_the_exact_w2(name):
    """On a correlated 4-D Gaussian (rotated, κ = 10) both laws are Gaussian and exact from
    the linear recursion: the closed-form synchronous-coupling bound is ≥ W2(law X_k,
    law Y_k) at every k (a theorem: equality at k = 0, where the coupling is optimal), and
    the Monte Carlo bound from 4000 pairs on one noise stream agrees with the closed form
    within Z_CRIT standard errors (so the bound is above the exact W2 up to its error)."""
    prob = lc.GaussianProblem(4, kappa=10.0, seed=1)
    kernel = COUPLED[name](0.3)
    ks = [0, 1, 2, 5, 10, 20, 50]
    w2 = lc.exact_pair_w2(kernel, prob, ks)
    exact = lc.exact_coupling_bound(kernel, prob, ks).bound
    assert exact[0] == pytest.approx(w2[0], rel=1e-12)
    assert np.all(exact >= w2 * (1 - 1e-12)), (exact, w2)
    assert np.all(exact[1:] > w2[1:] * 1.001)  # strict: the synchronous coupling is not optimal
    mc = lc.coupling_bound(kernel, prob, ks, n_pairs=4000, seed=3)
    z = (mc.bound - exact) / mc.se
    assert np.all(np.abs(z) < Z_CRIT), z
    assert np.all(mc.bound + Z_CRIT * mc.se >= w2)


def test_coupling_bound_for_mala_is_above_monte_carlo_w2_to_the_target():
    """MALA is exact, so Y stays at π and the bound is on W2(law X_k, π). Against the Monte
    Carlo W2 to π (10 000 chains vs as many exact draws, 1-D): Ŵ_k ≤ bound_k + Z_CRIT·se +
    2·floor at every k (Ŵ exceeds the true W2 by at most W2(μ̂, μ) + W2(π̂, π), each about a
    floor); at k = 0 the bound is exact, √((x₀ − m)² + 1); and it is informative: it falls
    below a tenth of its start by k = 40."""
    prob = lc.GaussianProblem(1, kappa=1.0)
    kernel = langevin.MALA(0.8)
    ks = [0, 1, 2, 4, 8, 16, 40]
    n = 10_000
    cb = lc.coupling_bound(kernel, prob, ks, n_pairs=n, seed=11)
    run = lc.run_chains(kernel, prob.target(), np.tile(prob.start, (n, 1)), ks, seed=12)
    rng = np.random.default_rng(13)
    floor = lc.w2_estimate(prob.exact_draws(n, rng), prob.exact_draws, rng).w2
    assert cb.bound[0] == pytest.approx(math.sqrt(3.0**2 + 1), abs=Z_CRIT * cb.se[0])
    for k, b, se in zip(ks, cb.bound, cb.se):
        est = lc.w2_estimate(run.snapshots[k], prob.exact_draws, rng, floor=floor)
        assert est.w2 <= b + Z_CRIT * se + 2 * floor, (k, est.w2, b, se, floor)
    assert cb.bound[-1] < 0.1 * cb.bound[0]


def test_reference_problem_any_target_with_draws_on_numba():
    """A target known only through reference draws (ReferenceProblem: Monte Carlo, even for
    an affine kernel, since the study does not assume the target Gaussian), on the Numba
    backend: ULA's stationary W2 on N(1, 1) at h = 0.5 is the closed form
    √(1/(1 − h/2)) − 1 within 3 noise floors; the W2 of the start δ₄ is √(3² + 1)."""
    rng = np.random.default_rng(0)
    target = langevin.targets.gaussian(1, mean=[1.0])
    prob = lc.ReferenceProblem(target, start=[4.0], draws=1.0 + rng.standard_normal((200_000, 1)))
    s = lc.study(["ULA"], prob, step_sizes=[0.5], iterations=[0, 200], backend="numba",
                 n_chains=4000)  # fmt: skip
    (stat,) = s.select(quantity="w2_stationary")
    assert stat["method"] == "monte_carlo" and stat["resolved"]
    exact = math.sqrt(1 / (1 - 0.25)) - 1
    assert abs(stat["value"] - exact) < 3 * stat["noise_floor"], (stat, exact)
    start, end = s.select(quantity="w2")
    assert start["value"] == pytest.approx(math.sqrt(10.0), abs=3 * start["noise_floor"])
    assert abs(end["value"] - exact) < 3 * end["noise_floor"]


def test_quartic_problem_on_both_backends_agrees():
    """The quartic target's two forms (JAX autodiff, hand-written Numba gradient): ULA's
    stationary W2 at h = 0.1 estimated on each backend from 4000 chains agrees within 3
    noise floors (two estimates of one W2, each off by about a floor; a wrong gradient on
    either side moves it by far more: the quartic law's sd is 0.68, a Gaussian's 1), with no
    chain diverged."""
    prob = lc.QuarticProblem(1)
    got = {}
    for backend in ("jax", "numba"):
        s = lc.study(["ULA"], prob, step_sizes=[0.1], backend=backend, n_chains=4000,
                     stationary_time=4.0)  # fmt: skip
        (row,) = s.select(quantity="w2_stationary")
        assert "diverged" not in row["note"] and math.isfinite(row["value"]), row
        got[backend] = row["value"]
    floor = row["noise_floor"]
    assert abs(got["jax"] - got["numba"]) < 3 * floor, (got, floor)


# ---------------------------------------------------------------------------------------------
# The table, the fits, the figures, the files
# ---------------------------------------------------------------------------------------------


def test_study_of_builtin_kernels_table_fits_and_files(tmp_path):
    """Exact-only study of three built-ins on a rotated Gaussian: the tidy table has the
    documented columns; ULA's order is 1 (closed form W2 ≈ √d h/4 per ALGORITHMS.md §1)
    and its dimension exponent about 1/2 (Li, Zha & Tao 2022), both 'agrees'; BAOAB has no
    position bias; the randomized midpoint is a random-coefficient kernel with a moment
    lower bound of order 3 on Gaussians; the files are written."""
    prob = lc.GaussianProblem(6, kappa=10.0)
    s = lc.study(
        ["ULA", "kinetic_baoab", "kinetic_randomized_midpoint"], prob,
        step_sizes=list(np.geomspace(0.01, 0.1, 5)), iterations=100, dims=[8, 64, 512],
    )  # fmt: skip
    table = s.table
    assert tuple(table.data_vars) == lc.COLUMNS and table.sizes["row"] == len(s.rows)
    fits = s.fits
    ula = fits.sel(kernel="ULA")
    assert abs(float(ula["bias_order"]) - 1.0) < 0.1
    assert abs(float(ula["dim_exponent"]) - 0.5) < 0.2
    assert str(ula["bias_agreement"].values) == str(ula["dim_agreement"].values) == "agrees"
    assert bool(fits["stationary_bias_zero"].sel(kernel="kinetic_baoab"))
    rm = fits.sel(kernel="kinetic_randomized_midpoint")
    assert str(rm["kind"].values) == "random"
    assert abs(float(rm["bias_order"]) - 3.0) < 0.05
    assert {r["method"] for r in s.select(kernel="kinetic_randomized_midpoint")} == {
        "moment_lower_bound"
    }
    paths = s.save(tmp_path)
    assert {p.name for p in paths} == {
        "convergence.csv", "convergence.md", "bias_vs_step_size.png", "w2_vs_iterations.png",
        "cost_vs_dimension.png",
    }  # fmt: skip
    md = (tmp_path / "convergence.md").read_text()
    assert "| ULA | linear | 1 | 1.0" in md and "(exact on Gaussians) | agrees" in md


def test_bad_input_is_refused_naming_the_argument():
    prob = lc.GaussianProblem(2)
    cases = [
        (dict(step_sizes=[-0.1]), "step_sizes"),
        (dict(step_sizes=[0.1], backend="torch"), "backend"),
        (dict(step_sizes=[0.1], method="magic"), "method"),
        (dict(step_sizes=[0.1], iterations="many"), "iterations"),
        (dict(step_sizes=[0.1], n_chains=1), "n_chains"),
        (dict(step_sizes=[0.1], eps=0.0), "eps"),
        (dict(step_sizes=[0.1], theory={"MALA": {"bias_order": 1.0}}), "theory"),
    ]
    for kwargs, name in cases:
        with pytest.raises((TypeError, ValueError), match=name):
            lc.study(["ULA"], prob, **kwargs)
    with pytest.raises(ValueError, match="kernels: unknown kernel name 'NOPE'"):
        lc.study(["NOPE"], prob, step_sizes=[0.1])
    with pytest.raises(ValueError, match="dims"):
        lc.study(["ULA"], lc.QuarticProblem(1), step_sizes=[0.1], dims=[2, 4])
    with pytest.raises(TypeError, match="problem"):
        lc.study(["ULA"], object(), step_sizes=[0.1])
    with pytest.raises(ValueError, match="draws= .* or sampler="):
        lc.ReferenceProblem(langevin.targets.gaussian(2), start=np.zeros(2))


def test_command_line_writes_csv_markdown_and_pngs(tmp_path, capsys):
    """``python -m langevin.convergence --kernels ULA MALA --quick ...`` (run in-process):
    exact laws for ULA, Monte Carlo for MALA, the files in --out."""
    from langevin.convergence.__main__ import main

    paths = main(["--kernels", "ULA", "MALA", "--quick", "--dim", "1", "--iterations", "20",
                  "--n-chains", "2000", "--dims", "--out", str(tmp_path), "--quiet"])  # fmt: skip
    names = {p.name for p in paths}
    assert names == {"convergence.csv", "convergence.md", "bias_vs_step_size.png",
                     "w2_vs_iterations.png"}  # fmt: skip
    text = (tmp_path / "convergence.csv").read_text()
    assert "\nULA,linear,exact,w2_stationary," in text
    assert "\nMALA,mc,monte_carlo,w2," in text
