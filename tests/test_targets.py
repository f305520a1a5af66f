"""Tests of the built-in targets: both forms agree, gradients are right, references are exact.

Statistical tests are z-tests with a fixed seed; a check of m entries at once uses the
Bonferroni threshold ``Φ⁻¹(1 − α/(2m))`` with family-wise level α = 1e-3, so that a correct
target fails a check about once in a thousand seeds.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from langevin.targets import (
    Target,
    arK,
    breast_cancer_logistic_regression,
    earnings_logearn_interaction_z,
    gaussian,
    gaussian_mixture,
    gp_pois_regr_gp_regr,
    ill_conditioned_gaussian,
    kidiq_kidscore_momiq,
    logistic_regression,
    neals_funnel,
    posteriordb,
    synthetic_logistic_regression,
)
from langevin.targets.posteriordb_models import _linreg_logdensity_jax, _linreg_value_and_grad
from tests.stats_helpers import stein_z

DATA = Path(__file__).resolve().parents[1] / "langevin" / "targets" / "data"
FAMILY_LEVEL = 1e-3


@pytest.fixture(scope="module", autouse=True)
def _x64():
    """Float64 JAX for this module only (the package never switches it on)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


def _threshold(n_entries: int) -> float:
    return float(stats.norm.isf(FAMILY_LEVEL / (2 * n_entries)))


def _spd(dim: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(dim, dim))
    return a @ a.T / dim + 0.5 * np.eye(dim)


def _small_logistic() -> Target:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3))
    y = (rng.uniform(size=40) < 0.4).astype(float)
    return logistic_regression(X, y, prior_scale=2.0, intercept=True)


BUILDERS = {
    "gaussian_iso": lambda: gaussian(3),
    "gaussian_full": lambda: gaussian(4, mean=[1.0, -2.0, 0.5, 3.0], cov=_spd(4, 1)),
    "gaussian_diag": lambda: gaussian(2, cov=[0.25, 4.0]),
    "ill_conditioned": lambda: ill_conditioned_gaussian(10, condition_number=1000.0),
    "ill_conditioned_axes": lambda: ill_conditioned_gaussian(5, rotate=False),
    "funnel": lambda: neals_funnel(),
    "funnel_small": lambda: neals_funnel(dim=4, scale=1.0),
    "mixture": lambda: gaussian_mixture(),
    "mixture_sds": lambda: gaussian_mixture(
        [[0.0, 0.0, 0.0], [4.0, -1.0, 2.0]], weights=[0.7, 0.3], sds=[0.5, 2.0]
    ),
    "logistic": _small_logistic,
    "synthetic_logistic": lambda: synthetic_logistic_regression(),
    "breast_cancer": breast_cancer_logistic_regression,
    "earnings": earnings_logearn_interaction_z,
    "arK": arK,
    "kidiq": kidiq_kidscore_momiq,
    "gp_regr": gp_pois_regr_gp_regr,
}


@functools.cache
def _target(key: str) -> Target:
    return BUILDERS[key]()


@functools.cache
def _jax_value_and_grad(key: str):
    """The JAX form's value and gradient, compiled once per target (eager autodiff would
    compile every primitive separately, which costs more than one jit)."""
    return jax.jit(jax.value_and_grad(_target(key).jax_logdensity))


def _scale(target: Target) -> np.ndarray:
    ref = target.reference
    if ref is not None and ref.sd is not None:
        return ref.sd
    return np.ones(target.dim)


def _points(target: Target, n: int = 3) -> list[np.ndarray]:
    """Typical points: reference draws where shipped, else mean ± a few sds, else near x0."""
    ref = target.reference
    if ref is not None and ref.draws is not None:
        idx = np.linspace(0, ref.draws.shape[0] - 1, n).astype(int)
        return [np.ascontiguousarray(ref.draws[i]) for i in idx]
    rng = np.random.default_rng(11)
    centre = ref.mean if ref is not None and ref.mean is not None else target.initial_position
    return [centre + _scale(target) * rng.normal(size=target.dim) for _ in range(n)]


def _grads(target: Target, xs: np.ndarray) -> np.ndarray:
    vg, data = target.numba_value_and_grad, target.numba_data
    return np.array([vg(np.ascontiguousarray(x), data)[1] for x in xs])


# -- both forms, gradients -----------------------------------------------------------------


@pytest.mark.parametrize("key", BUILDERS)
def test_numba_matches_jax(key):
    target = _target(key)
    assert target.has_jax and target.has_numba
    for x in _points(target):
        value, grad = target.numba_value_and_grad(x, target.numba_data)
        value_jax, expected = _jax_value_and_grad(key)(jnp.asarray(x))
        assert isinstance(value, float) and value_jax.dtype == jnp.float64
        assert abs(value - float(value_jax)) <= 1e-10 * max(1.0, abs(float(value_jax)))
        expected = np.asarray(expected)
        np.testing.assert_allclose(grad, expected, rtol=1e-8, atol=1e-8 * np.abs(expected).max())


@pytest.mark.parametrize("key", BUILDERS)
def test_gradient_matches_finite_differences(key):
    target = _target(key)
    vg, data = target.numba_value_and_grad, target.numba_data
    scale = _scale(target)
    h = 1e-4  # in units of each coordinate's scale: truncation ~h², rounding ~1e-16 |f| / h
    for x in _points(target, 2):
        value, grad = vg(x, data)
        for i in range(target.dim):
            step = np.zeros(target.dim)
            step[i] = h * scale[i]
            fd = (vg(x + step, data)[0] - vg(x - step, data)[0]) / (2 * h)
            exact = grad[i] * scale[i]
            tol = 1e-6 * (1.0 + abs(exact)) + 1e-12 * abs(value) / h
            assert abs(fd - exact) <= tol, (i, fd, exact)


@pytest.mark.parametrize("key", BUILDERS)
def test_gradient_is_a_fresh_array(key):
    target = _target(key)
    x = _points(target, 1)[0]
    x_before = x.copy()
    value, grad = target.numba_value_and_grad(x, target.numba_data)
    assert grad.shape == (target.dim,) and grad.dtype == np.float64 and grad.flags.c_contiguous
    assert not np.shares_memory(grad, x)
    data = target.numba_data if isinstance(target.numba_data, tuple) else (target.numba_data,)
    for item in data:
        if isinstance(item, np.ndarray):
            assert not np.shares_memory(grad, item)
    grad[:] = np.nan  # scribbling on the result must change nothing the next call sees
    value2, grad2 = target.numba_value_and_grad(x, target.numba_data)
    assert grad2 is not grad and np.all(np.isfinite(grad2)) and value2 == value
    np.testing.assert_array_equal(x, x_before)


@pytest.mark.parametrize("key", BUILDERS)
def test_jax_form_follows_float32(key):
    target = _target(key)
    x = jnp.asarray(_points(target, 1)[0], dtype=jnp.float32)
    value, grad = _jax_value_and_grad(key)(x)
    assert value.dtype == jnp.float32 and grad.dtype == jnp.float32
    assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))


@pytest.mark.parametrize("key", BUILDERS)
def test_target_is_consistent(key):
    target = _target(key)
    ref = target.reference
    assert target.initial_position.shape == (target.dim,)
    assert sum(math.prod(shape) for _, shape in target.blocks.values()) == target.dim
    assert np.isfinite(target.numba_value_and_grad(target.initial_position, target.numba_data)[0])
    if key == "logistic":  # the generic builder on user data has nothing to refer to
        assert ref is None
        return
    assert ref.source
    for arr in (ref.mean, ref.sd, ref.mean_mcse):
        assert arr is None or arr.shape == (target.dim,)
    assert ref.cov is None or ref.cov.shape == (target.dim, target.dim)
    assert ref.draws is None or ref.draws.shape[1] == target.dim


# -- exactness of the references -------------------------------------------------------------


def _exact_gaussian_draws(target: Target, n: int, seed: int) -> np.ndarray:
    ref = target.reference
    chol = np.linalg.cholesky(ref.cov)
    return ref.mean + np.random.default_rng(seed).normal(size=(n, target.dim)) @ chol.T


def _funnel_draws(dim: int, scale: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = scale * rng.normal(size=n)
    x = np.exp(0.5 * v)[:, None] * rng.normal(size=(n, dim - 1))
    return np.column_stack([v, x])


def _mixture_draws(target: Target, n: int, seed: int) -> np.ndarray:
    comp = target.components
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(comp["weights"]), size=n, p=comp["weights"])
    chols = np.linalg.cholesky(comp["covs"])
    z = rng.normal(size=(n, target.dim))
    return comp["means"][labels] + np.einsum("nij,nj->ni", chols[labels], z)


EXACT_SAMPLERS = {
    "gaussian_iso": lambda t: _exact_gaussian_draws(t, 20_000, 1),
    "gaussian_full": lambda t: _exact_gaussian_draws(t, 20_000, 2),
    "ill_conditioned": lambda t: _exact_gaussian_draws(t, 20_000, 3),
    "ill_conditioned_axes": lambda t: _exact_gaussian_draws(t, 20_000, 4),
    "funnel": lambda t: _funnel_draws(10, 3.0, 50_000, 5),
    "funnel_small": lambda t: _funnel_draws(4, 1.0, 50_000, 6),
    "mixture": lambda t: _mixture_draws(t, 50_000, 7),
    "mixture_sds": lambda t: _mixture_draws(t, 50_000, 8),
}


@pytest.mark.parametrize("key", EXACT_SAMPLERS)
def test_stein_identities_on_exact_draws(key):
    """Draws from the exact law satisfy E[∇log p] = 0 and E[∇log p (x − m)ᵀ] = −I."""
    target = _target(key)
    draws = EXACT_SAMPLERS[key](target)
    z = stein_z(_grads(target, draws), draws - target.reference.mean)
    assert np.max(np.abs(z)) < _threshold(z.size), np.abs(z).max()


@pytest.mark.parametrize("key", ["funnel_small", "mixture", "mixture_sds"])
def test_exact_moments_match_monte_carlo(key):
    """The Reference's mean and covariance agree with exact sampling (z-tests on E[x], E[xxᵀ]).

    The default funnel (scale 3) is left out: var(x_i²) = 3e^{2·scale²} − e^{scale²} is about
    2e8 there, too heavy-tailed for a z-test of var(x_i) at any affordable sample size.
    """
    target = _target(key)
    ref = target.reference
    draws = EXACT_SAMPLERS[key](target)
    n, dim = draws.shape
    z_mean = (draws.mean(0) - ref.mean) / (draws.std(0, ddof=1) / math.sqrt(n))
    iu = np.triu_indices(dim)
    prod = (draws[:, :, None] * draws[:, None, :])[:, iu[0], iu[1]]
    second = (ref.cov + np.outer(ref.mean, ref.mean))[iu]
    z_second = (prod.mean(0) - second) / (prod.std(0, ddof=1) / math.sqrt(n))
    z = np.concatenate([z_mean, z_second])
    assert np.max(np.abs(z)) < _threshold(z.size), np.abs(z).max()
    np.testing.assert_allclose(ref.sd, np.sqrt(np.diag(ref.cov)))


def test_funnel_reference_formula():
    target = neals_funnel(dim=6, scale=2.0)
    expected = np.diag([4.0] + [math.exp(2.0)] * 5)
    np.testing.assert_allclose(target.reference.cov, expected)
    np.testing.assert_array_equal(target.reference.mean, np.zeros(6))
    assert list(target.blocks) == ["v", "x"]


def test_ill_conditioned_spectrum():
    target = ill_conditioned_gaussian(8, condition_number=500.0, seed=3)
    eig = np.linalg.eigvalsh(target.reference.cov)
    np.testing.assert_allclose(np.sort(eig), np.geomspace(1 / 500.0, 1.0, 8), rtol=1e-10)
    assert np.abs(target.reference.cov - np.diag(np.diag(target.reference.cov))).max() > 0.01
    axes = ill_conditioned_gaussian(8, condition_number=500.0, rotate=False)
    np.testing.assert_allclose(axes.reference.cov, np.diag(np.geomspace(1.0, 1 / 500.0, 8)))
    again = ill_conditioned_gaussian(8, condition_number=500.0, seed=3)
    np.testing.assert_array_equal(again.reference.cov, target.reference.cov)


def test_gaussian_mixture_default_and_stability():
    target = gaussian_mixture()
    assert target.dim == 2 and len(target.components["weights"]) == 3
    far = np.array([1e3, -1e3])
    value, grad = target.numba_value_and_grad(far, target.numba_data)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    value_jax, grad_jax = _jax_value_and_grad("mixture")(jnp.asarray(far))
    assert np.isfinite(float(value_jax)) and np.all(np.isfinite(np.asarray(grad_jax)))
    # one component: the mixture is that Gaussian, up to a constant
    single = gaussian_mixture([[1.0, 2.0]], covs=[_spd(2, 4)], weights=[1.0])
    plain = gaussian(2, mean=[1.0, 2.0], cov=_spd(2, 4))
    for x in _points(plain):
        g1 = single.numba_value_and_grad(x, single.numba_data)[1]
        g2 = plain.numba_value_and_grad(x, plain.numba_data)[1]
        np.testing.assert_allclose(g1, g2, rtol=1e-12)


def test_logistic_is_stable_for_large_logits():
    target = _target("logistic")
    beta = np.full(target.dim, 300.0)  # logits of order ±1000: e^η overflows if done naively
    value, grad = target.numba_value_and_grad(beta, target.numba_data)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    value_jax, grad_jax = _jax_value_and_grad("logistic")(jnp.asarray(beta))
    assert abs(value - float(value_jax)) <= 1e-10 * abs(value)
    np.testing.assert_allclose(grad, grad_jax, rtol=1e-10)


def test_synthetic_logistic_generator():
    target = synthetic_logistic_regression(n=300, dim=7, seed=4, prior_scale=2.0)
    X, y, prior_precision = target.numba_data
    assert X.shape == (300, 7) and target.true_coefficients.shape == (7,)
    assert prior_precision == 0.25 and set(np.unique(y)) <= {0.0, 1.0}
    again = synthetic_logistic_regression(n=300, dim=7, seed=4, prior_scale=2.0)
    np.testing.assert_array_equal(again.true_coefficients, target.true_coefficients)
    # rows have expected squared norm 1 (entries N(0, 1/dim))
    assert abs(np.mean(np.sum(X**2, axis=1)) - 1.0) < 0.05


# -- posteriordb ----------------------------------------------------------------------------

PDB = {
    "earnings-logearn_interaction_z": ("earnings", (1192, 4), ["beta", "sigma"]),
    "arK-arK": ("arK", (195, 6), ["alpha", "beta", "sigma"]),
    "kidiq-kidscore_momiq": ("kidiq", (434, 2), ["beta", "sigma"]),
}


@pytest.mark.parametrize("name", PDB)
def test_posteriordb_stein_identities_on_reference_draws(name):
    """Stein identities on posteriordb's 10 000 Stan draws, mapped to (β, log σ).

    The draws are thinned Stan output with ESS ≈ N, so i.i.d. standard errors apply. The file
    is fixed, so the test is deterministic; 4.5 bounds the largest |z| of at most 56 entries
    (arK: 7 + 7²) at a family-wise false-alarm rate of 56 · P(|Z| > 4.5) ≈ 4e-4.
    """
    target = posteriordb(name)
    draws = target.reference.draws
    assert draws.shape == (10_000, target.dim)
    z = stein_z(_grads(target, draws), draws - draws.mean(0))
    assert np.max(np.abs(z)) < 4.5, np.abs(z).max()


@pytest.mark.parametrize("name", PDB)
def test_posteriordb_reference_and_constrain(name):
    target = posteriordb(name)
    ref = target.reference
    p = target.dim - 1
    exact = ref.constrained
    constrained = target.constrain(ref.draws)
    assert sorted(constrained) == sorted(PDB[name][2])
    assert constrained["sigma"].shape == (10_000,)
    # constrained means of the shipped draws agree with the exact quadrature means
    summary = json.loads((DATA / "posteriordb" / name / "reference_summary.json").read_text())[
        "params"
    ]
    flat = np.column_stack(
        [constrained[k].reshape(10_000, -1) for k in PDB[name][2]]
    )  # posteriordb's parameter order
    labels = list(exact)
    assert labels == list(summary)
    for j, label in enumerate(labels):
        z = (flat[:, j].mean() - exact[label]["mean"]) / summary[label]["mcse_mean"]
        assert abs(z) < 4.0, (label, z)
    # the unconstrained reference: exact coefficient moments, log σ from the draws
    np.testing.assert_allclose(ref.mean[:p], [exact[k]["mean"] for k in labels[:p]])
    np.testing.assert_allclose(ref.sd[:p], [exact[k]["sd"] for k in labels[:p]])
    np.testing.assert_allclose(ref.mean[p], ref.draws[:, p].mean())
    assert np.all(ref.mean_mcse[:p] == 0.0) and 0 < ref.mean_mcse[p] < 0.02 * ref.sd[p]
    assert list(target.blocks)[-1] == "log_sigma"
    # the start is near the mode: within a few posterior sds of the mean
    assert np.all(np.abs(target.initial_position - ref.mean) < 3 * ref.sd)


@pytest.mark.parametrize("code", [0, 1, 2])
def test_regression_family_sigma_priors(code):
    """Every σ prior of the shared family (flat, half-Cauchy, half-normal), with mixed flat and
    normal coefficient priors: Numba equals JAX, and the gradient equals finite differences."""
    rng = np.random.default_rng(code)
    X = np.ascontiguousarray(rng.normal(size=(30, 3)))
    y = X @ np.array([1.0, -0.5, 2.0]) + 0.7 * rng.normal(size=30)
    data = (X, y, np.array([0.0, 1.0, -1.0]), np.array([0.0, 0.25, 4.0]), code, 1.5)
    vg = _linreg_value_and_grad
    jax_vg = jax.jit(jax.value_and_grad(lambda z: _linreg_logdensity_jax(z, data)))
    for z in (np.array([0.9, -0.4, 1.8, math.log(0.7)]), np.array([0.0, 0.0, 0.0, 5.0])):
        value, grad = vg(z, data)
        value_jax, grad_jax = jax_vg(jnp.asarray(z))
        assert abs(value - float(value_jax)) <= 1e-10 * max(1.0, abs(value))
        np.testing.assert_allclose(grad, grad_jax, rtol=1e-8, atol=1e-10)
        h = 1e-6
        for i in range(4):
            e = np.zeros(4)
            e[i] = h
            fd = (vg(z + e, data)[0] - vg(z - e, data)[0]) / (2 * h)
            assert abs(fd - grad[i]) <= 1e-5 * (1.0 + abs(grad[i]))


def test_breast_cancer_stein_identities_on_nuts_draws():
    """Stein identities on the shipped NUTS draws (4 × 1000, kept every 5th of draws whose bulk
    ESS per draw is ≥ 1, so the kept draws are near independent). 31 + 31² = 992 entries;
    Bonferroni threshold ≈ 4.9."""
    target = _target("breast_cancer")
    draws = target.reference.draws
    assert draws.shape == (4000, 31)
    z = stein_z(_grads(target, draws), draws - draws.mean(0))
    assert np.max(np.abs(z)) < _threshold(z.size), np.abs(z).max()


def test_breast_cancer_reference_summary():
    target = _target("breast_cancer")
    ref = target.reference
    with np.load(DATA / "breast_cancer" / "reference.npz") as saved:
        assert saved["rhat"].max() < 1.01 and int(saved["n_divergent"]) == 0
        assert saved["ess_bulk"].min() > 10_000
    # the thinned draws agree with the full-run mean and sd
    z = (ref.draws.mean(0) - ref.mean) / (ref.sd / math.sqrt(ref.draws.shape[0]))
    assert np.max(np.abs(z)) < _threshold(31)
    np.testing.assert_allclose(ref.draws.std(0), ref.sd, rtol=0.1)
    assert "benchmarks/make_breast_cancer_reference.py" in ref.source


# -- data sets and licences -----------------------------------------------------------------


def test_breast_cancer_data():
    target = _target("breast_cancer")
    X, y, prior_precision = target.numba_data
    assert X.shape == (569, 31) and y.shape == (569,) and target.dim == 31
    assert not np.isnan(X).any() and not np.isnan(y).any()
    np.testing.assert_array_equal(X[:, 0], 1.0)
    np.testing.assert_allclose(X[:, 1:].mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(X[:, 1:].std(0), 1.0, rtol=1e-12)
    assert set(np.unique(y)) == {0.0, 1.0} and y.sum() == 357  # 357 benign, 212 malignant
    assert prior_precision == 1.0
    assert list(target.blocks) == ["intercept", "beta"]


@pytest.mark.parametrize("name", PDB)
def test_posteriordb_data(name):
    target = posteriordb(name)
    X, y = target.numba_data[:2]
    assert X.shape == PDB[name][1] and y.shape == (X.shape[0],)
    assert np.all(np.isfinite(X)) and np.all(np.isfinite(y))
    np.testing.assert_array_equal(X[:, 0], 1.0)
    folder = DATA / "posteriordb" / name
    for f in (
        "data.json",
        "exact_summary.json",
        "reference_summary.json",
        "model.md",
        "posterior_info.json",
        "reference_draws.npz",
    ):
        assert (folder / f).is_file(), f
    with np.load(folder / "reference_draws.npz") as saved:
        assert saved["draws"].shape == (10, 1000, target.dim)
        assert saved["draws"].dtype == np.float64


def test_licence_files():
    for folder in ("breast_cancer", "posteriordb"):
        for f in ("LICENCE.md", "README.md"):
            assert (DATA / folder / f).is_file(), (folder, f)
    assert "CC BY 4.0" in (DATA / "breast_cancer" / "LICENCE.md").read_text()
    assert "BSD 3-Clause" in (DATA / "posteriordb" / "LICENCE.md").read_text()
    size = sum(f.stat().st_size for f in DATA.rglob("*") if f.is_file())
    # 13 posteriordb posteriors with their reference draws (diamonds alone 4.4 MB)
    assert size < 13_000_000


def test_shortcuts_match_posteriordb():
    assert earnings_logearn_interaction_z().name == "earnings-logearn_interaction_z"
    assert arK().dim == 7 and kidiq_kidscore_momiq().dim == 3


# -- bad parameters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, argname",
    [
        (lambda: gaussian(0), "dim"),
        (lambda: gaussian(2.5), "dim"),
        (lambda: gaussian(2, mean=[1.0]), "mean"),
        (lambda: gaussian(2, cov=[[1.0, 2.0], [2.0, 1.0]]), "cov"),
        (lambda: gaussian(2, cov=[[1.0, 0.5], [0.0, 1.0]]), "cov"),
        (lambda: gaussian(2, cov=np.eye(3)), "cov"),
        (lambda: ill_conditioned_gaussian(0), "dim"),
        (lambda: ill_conditioned_gaussian(3, condition_number=0.5), "condition_number"),
        (lambda: neals_funnel(dim=1), "dim"),
        (lambda: neals_funnel(scale=0.0), "scale"),
        (lambda: gaussian_mixture([[0.0], [1.0]], weights=[0.5, 0.6]), "weights"),
        (lambda: gaussian_mixture([[0.0], [1.0]], weights=[1.5, -0.5]), "weights"),
        (lambda: gaussian_mixture([[0.0], [1.0]], weights=[1.0]), "weights"),
        (lambda: gaussian_mixture([[0.0], [1.0]], covs=[[[1.0]], [[-1.0]]]), "covs"),
        (lambda: gaussian_mixture([[0.0, 0.0]], covs=np.ones((1, 2, 2))), "covs"),
        (lambda: gaussian_mixture([[0.0], [1.0]], sds=[1.0, 0.0]), "sds"),
        (lambda: gaussian_mixture([0.0, 1.0]), "means"),
        (lambda: logistic_regression(np.ones((3, 2)), [0, 1, 2]), "y"),
        (lambda: logistic_regression(np.ones((3, 2)), [0, 1]), "y"),
        (lambda: logistic_regression(np.ones(3), [0, 1, 1]), "X"),
        (lambda: logistic_regression(np.ones((3, 2)), [0, 1, 1], prior_scale=-1.0), "prior_scale"),
        (lambda: synthetic_logistic_regression(n=0), "n"),
        (lambda: synthetic_logistic_regression(dim=0), "dim"),
        (lambda: posteriordb("garch-garch11"), "name"),  # no reference draws: not shipped
    ],
)
def test_bad_parameters_raise(build, argname):
    with pytest.raises(ValueError, match=argname):
        build()


def test_posteriordb_constrain_checks_shape():
    with pytest.raises(ValueError, match="x"):
        kidiq_kidscore_momiq().constrain(np.zeros(4))


def test_gp_regr_stein_identities_and_exact_moments():
    """gp_regr: Stein identities on posteriordb's 10 000 draws (12 entries, |z| < 4.5), the
    shipped draws' constrained means against posteriordb's quadrature moments, and the
    dispatch from posteriordb(name)."""
    target = posteriordb("gp_pois_regr-gp_regr")
    assert target.dim == 3 and list(target.blocks) == ["log_rho", "log_alpha", "log_sigma"]
    draws = target.reference.draws
    z = stein_z(_grads(target, draws), draws - draws.mean(0))
    assert np.max(np.abs(z)) < 4.5, np.abs(z).max()
    exact = target.reference.constrained
    constrained = target.constrain(draws)
    for name in ("rho", "alpha", "sigma"):
        values = constrained[name]
        se = values.std() / np.sqrt(len(values))  # thinned Stan draws: ESS ≈ N (see above)
        assert abs(values.mean() - exact[name]["mean"]) / se < 4.5, name


@pytest.mark.parametrize("z", [[40.0, 0.0, -40.0], [0.0, 400.0, 0.0], [-800.0, 0.0, 0.0]])
def test_gp_regr_numba_far_tails_give_zero_density_not_an_exception(z):
    """Far in the tails K is not positive definite or not finite; an exception there would
    kill the chain loop (an HMC warm-up trajectory can get there), so the density is 0."""
    target = gp_pois_regr_gp_regr()
    value, grad = target.numba_value_and_grad(np.array(z), target.numba_data)
    assert value == -np.inf
    assert grad.shape == (3,)


def test_rand_hie_design_is_the_shipped_data_as_documented():
    """20 190 rows, an intercept then 9 standardised covariates, and the 'any visit' label."""
    import gzip
    import hashlib

    from langevin.targets import rand_hie_design
    from langevin.targets.logistic import _RAND_HIE_DIR

    raw = gzip.decompress((_RAND_HIE_DIR / "randhie.csv.gz").read_bytes())
    # the file is statsmodels' copy, unchanged (the README states this hash)
    assert hashlib.sha256(raw).hexdigest() == (
        "9f6c87d05aef087a82cc4465310c8cd3f38327be6eafa43bd81fb98c4f3d088c"
    )
    X, y = rand_hie_design()
    assert X.shape == (20190, 10) and y.shape == (20190,)
    np.testing.assert_array_equal(X[:, 0], 1.0)
    np.testing.assert_allclose(X[:, 1:].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(X[:, 1:].std(axis=0), 1.0, rtol=1e-12)
    assert set(np.unique(y)) == {0.0, 1.0}
    assert abs(y.mean() - 0.6876) < 1e-4  # 13 882 of 20 190 rows saw a doctor
