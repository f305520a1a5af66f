"""The posteriordb densities against their model.md, the shipped reference draws and JAX.

* Each Numba log density equals an independent one written here with SciPy in posteriordb's
  constrained parameters plus the log-Jacobian of the unconstrained coordinates, up to one
  additive constant, on 20 reference draws: a density that drops a Jacobian term (or a prior,
  or a likelihood term) differs from it by a non-constant amount and fails.
* Stein identities on the 10 000 reference draws (model.md's self-check): E[∇log p] = 0 and
  E[∇log p (z − z̄)ᵀ] = −I within the Monte Carlo error (the draws are thinned Stan output
  with ESS ≈ N, so i.i.d. standard errors apply), with a Bonferroni threshold at
  family-wise level 1e-3 per posterior.
* The hand-written gradients equal JAX autodiff of the JAX forms (float64: the ``x64``
  fixture), and the two forms' log densities differ by a constant.
* The shipped reference: every posterior's files, the draws' shape and dtype, the
  constrained means of the unconstrained draws (mapped back by ``target.constrain``) equal
  posteriordb's own summary, and the start is finite.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import langevin
from langevin.targets.posteriordb_models import POSTERIORDB_NAMES, posteriordb
from tests.stats_helpers import stein_z

DATA = Path(langevin.__file__).parent / "targets" / "data" / "posteriordb"
NEW = [
    "arma-arma11",
    "diamonds-diamonds",
    "eight_schools-eight_schools_centered",
    "gp_pois_regr-gp_pois_regr",
    "kidiq-kidscore_interaction",
    "kilpisjarvi_mod-kilpisjarvi",
    "low_dim_gauss_mix-low_dim_gauss_mix",
    "nes1972-nes",
    "sblrc-blr",
]
FAMILY_LEVEL = 1e-3


@functools.cache
def _raw(name: str) -> dict:
    return json.loads((DATA / name / "data.json").read_text())


@functools.cache
def _target(name: str) -> langevin.Target:
    """One target per posterior for the whole module (diamonds' data.json is 2.4 MB)."""
    return posteriordb(name)


@functools.cache
def _design(name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """(X, y, raw data) of a regression, built here from data.json as its model.md says."""
    raw = _raw(name)
    if name == "kidiq-kidscore_interaction":
        hs, iq = np.array(raw["mom_hs"], float), np.array(raw["mom_iq"], float)
        return (
            np.column_stack([np.ones_like(iq), hs, iq, hs * iq]),
            np.array(raw["kid_score"], float),
            raw,
        )
    if name == "kilpisjarvi_mod-kilpisjarvi":
        x = np.array(raw["x"], float)
        return np.column_stack([np.ones_like(x), x]), np.array(raw["y"], float), raw
    if name == "nes1972-nes":
        age = np.array(raw["age_discrete"])
        cols = [raw[k] for k in ("real_ideo", "race_adj")] + [age == 2, age == 3, age == 4]
        cols += [raw[k] for k in ("educ1", "gender", "income")]
        X = np.column_stack([np.ones(len(age)), *[np.asarray(c, float) for c in cols]])
        return X, np.array(raw["partyid7"], float), raw
    if name == "sblrc-blr":
        return np.array(raw["X"], float), np.array(raw["y"], float), raw
    if name == "diamonds-diamonds":
        full = np.array(raw["X"], float)
        X = np.column_stack([full[:, 1:] - full[:, 1:].mean(0), np.ones(len(full))])
        return X, np.array(raw["Y"], float), raw
    raise KeyError(name)


# -- independent densities: constrained parameters (SciPy) + log-Jacobian, from model.md ------


def _normal_regression(y, X, beta, sigma):
    return float(np.sum(stats.norm.logpdf(y, X @ beta, sigma)))


def _linreg_parts(name: str, z: np.ndarray) -> float:
    X, y, raw = _design(name)
    beta, s = z[:-1], z[-1]
    sigma = math.exp(s)
    if name == "kidiq-kidscore_interaction":
        prior = stats.halfcauchy.logpdf(sigma, scale=2.5)
    elif name == "kilpisjarvi_mod-kilpisjarvi":
        prior = stats.norm.logpdf(beta[0], raw["pmualpha"], raw["psalpha"])
        prior += stats.norm.logpdf(beta[1], raw["pmubeta"], raw["psbeta"])
    elif name == "nes1972-nes":
        prior = 0.0
    elif name == "sblrc-blr":
        prior = np.sum(stats.norm.logpdf(beta, 0, 10)) + stats.halfnorm.logpdf(sigma, scale=10)
    else:  # diamonds
        prior = np.sum(stats.norm.logpdf(beta[:-1], 0, 1))
        prior += stats.t.logpdf(beta[-1], 3, 8, 10) + stats.t.logpdf(sigma, 3, 0, 10)
    return _normal_regression(y, X, beta, sigma) + prior + s  # + s: log-Jacobian of e^s


def _arma(z: np.ndarray) -> float:
    y = np.array(_raw("arma-arma11")["y"], float)
    mu, phi, theta, s = z
    sigma = math.exp(s)
    err = np.empty(len(y))
    err[0] = y[0] - (mu + phi * mu)
    for t in range(1, len(y)):
        err[t] = y[t] - (mu + phi * y[t - 1] + theta * err[t - 1])
    prior = stats.norm.logpdf(mu, 0, 10) + stats.norm.logpdf([phi, theta], 0, 2).sum()
    prior += stats.halfcauchy.logpdf(sigma, scale=2.5)
    return float(np.sum(stats.norm.logpdf(err, 0, sigma)) + prior + s)


def _eight_schools(z: np.ndarray) -> float:
    raw = _raw("eight_schools-eight_schools_centered")
    theta, mu, s = z[:8], z[8], z[9]
    tau = math.exp(s)
    value = np.sum(stats.norm.logpdf(raw["y"], theta, raw["sigma"]))
    value += np.sum(stats.norm.logpdf(theta, mu, tau)) + stats.norm.logpdf(mu, 0, 5)
    return float(value + stats.halfcauchy.logpdf(tau, scale=5) + s)


def _gp_pois(z: np.ndarray) -> float:
    raw = _raw("gp_pois_regr-gp_pois_regr")
    x, k = np.array(raw["x"], float), np.array(raw["k"])
    rho, alpha = math.exp(z[0]), math.exp(z[1])
    K = alpha**2 * np.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * rho**2)) + 1e-10 * np.eye(11)
    f = np.linalg.cholesky(K) @ z[2:]
    value = stats.gamma.logpdf(rho, 25, scale=1 / 4) + stats.halfnorm.logpdf(alpha, scale=2)
    value += np.sum(stats.norm.logpdf(z[2:])) + np.sum(stats.poisson.logpmf(k, np.exp(f)))
    return float(value + z[0] + z[1])  # log-Jacobian log ρ + log α


def _gauss_mix(z: np.ndarray) -> float:
    y = np.array(_raw("low_dim_gauss_mix-low_dim_gauss_mix")["y"], float)
    u1, u2, v1, v2, w = z
    mu = np.array([u1, u1 + math.exp(u2)])
    sigma = np.exp([v1, v2])
    theta = 1.0 / (1.0 + math.exp(-w))
    a = math.log(theta) + stats.norm.logpdf(y, mu[0], sigma[0])
    b = math.log1p(-theta) + stats.norm.logpdf(y, mu[1], sigma[1])
    value = np.sum(logsumexp(np.stack([a, b]), axis=0))
    value += np.sum(stats.norm.logpdf(mu, 0, 2)) + np.sum(stats.halfnorm.logpdf(sigma, scale=2))
    value += stats.beta.logpdf(theta, 5, 5)
    return float(value + u2 + v1 + v2 + math.log(theta) + math.log1p(-theta))


INDEPENDENT = {
    "arma-arma11": _arma,
    "eight_schools-eight_schools_centered": _eight_schools,
    "gp_pois_regr-gp_pois_regr": _gp_pois,
    "low_dim_gauss_mix-low_dim_gauss_mix": _gauss_mix,
}


def _independent(name: str, z: np.ndarray) -> float:
    if name in INDEPENDENT:
        return INDEPENDENT[name](z)
    return _linreg_parts(name, z)


@pytest.mark.parametrize("name", NEW)
def test_density_equals_model_md_with_its_jacobian(name):
    """Numba log density − (SciPy density of the constrained parameters + log-Jacobian) is
    one constant on 20 reference draws. Dropping the Jacobian (e.g. the ``+ s`` of σ = e^s)
    makes the difference vary with s across the draws by ≫ the tolerance (measured: the
    check fails for it)."""
    target = _target(name)
    draws = target.reference.draws[::500]
    vg, data = target.numba_value_and_grad, target.numba_data
    diff = np.array([vg(np.ascontiguousarray(z), data)[0] - _independent(name, z) for z in draws])
    values = np.array([abs(vg(np.ascontiguousarray(z), data)[0]) for z in draws])
    # rounding: the densities are sums of up to 5 000 terms of size ~|value|/N
    tol = 1e-10 * max(1.0, values.max()) + (1e-7 if name.startswith("gp_pois") else 0.0)
    assert np.ptp(diff) < tol, (np.ptp(diff), diff)


@pytest.mark.parametrize("name", NEW)
def test_stein_identities_on_reference_draws(name):
    """model.md's self-check on all 10 000 reference draws; threshold: Bonferroni over the
    dim + dim² entries at family-wise level 1e-3 (4.1 for 3-D … 4.7 for diamonds' 702)."""
    target = _target(name)
    draws = target.reference.draws
    assert draws.shape == (10_000, target.dim)
    vg, data = target.numba_value_and_grad, target.numba_data
    grads = np.array([vg(np.ascontiguousarray(z), data)[1] for z in draws])
    z = stein_z(grads, draws - draws.mean(0))
    threshold = float(stats.norm.isf(FAMILY_LEVEL / (2 * z.size)))
    assert np.max(np.abs(z)) < threshold, (np.abs(z).max(), threshold)


@pytest.mark.parametrize("name", NEW)
def test_gradient_equals_jax_autodiff(name, x64):
    """Hand-written Numba gradients = ``jax.grad`` of the JAX form (float64) at 10 reference
    draws; the two log densities differ by a constant. gp_pois: the Numba form's Cholesky
    and the JAX one round differently on K with condition number up to 1e10 (model.md
    measured 1e-7 between NumPy and JAX), hence its looser tolerance."""
    import jax
    import jax.numpy as jnp

    target = _target(name)
    vg, data = target.numba_value_and_grad, target.numba_data
    jax_vg = jax.jit(jax.value_and_grad(target.jax_logdensity))
    rtol = 1e-6 if name.startswith("gp_pois") else 1e-9
    offsets = []
    for z in target.reference.draws[::1000]:
        value, grad = vg(np.ascontiguousarray(z), data)
        value_jax, grad_jax = jax_vg(jnp.asarray(z, dtype=jnp.float64))
        scale = np.max(np.abs(grad)) + 1.0
        np.testing.assert_allclose(grad, np.asarray(grad_jax), rtol=rtol, atol=rtol * scale)
        offsets.append(value - float(value_jax))
    assert np.ptp(offsets) < rtol * (1.0 + abs(value))


@pytest.mark.parametrize("name", NEW)
def test_jax_forms_in_float32(name):
    """JAX's default precision: the JAX form runs in float32 and agrees with the float64 Numba
    form up to a constant within float32 rounding (relative 1e-4 of the density's size) at 5
    reference draws, except gp_pois, which needs float64 and says so (a TypeError naming
    float64, at trace time) instead of giving NaN."""
    import jax
    import jax.numpy as jnp

    target = _target(name)
    draws = target.reference.draws[::2000]
    with jax.enable_x64(False):
        z = jnp.asarray(draws, dtype=jnp.float32)
        f = jax.vmap(jax.value_and_grad(target.jax_logdensity))
        if name.startswith("gp_pois"):
            with pytest.raises(TypeError, match="float64"):
                f(z)
            return
        values, grads = f(z)
        assert values.dtype == jnp.float32 and grads.dtype == jnp.float32
    vg, data = target.numba_value_and_grad, target.numba_data
    numba_values = np.array([vg(np.ascontiguousarray(x), data)[0] for x in draws])
    assert np.all(np.isfinite(np.asarray(grads)))
    offset = np.asarray(values, dtype=np.float64) - numba_values
    assert np.ptp(offset) < 1e-4 * (1.0 + np.abs(numba_values).max()), offset


@pytest.mark.parametrize("name", NEW)
def test_shipped_reference_and_constrain(name):
    """The folder's files; draws (10, 1000, dim) float64; ``constrain`` maps the unconstrained
    draws back to posteriordb's parameters, whose means equal posteriordb's reference
    summary (same draws: to rounding, 1e-8 of an sd); a finite start."""
    target = _target(name)
    folder = DATA / name
    for f in ("data.json", "reference_summary.json", "model.md", "posterior_info.json",
              "reference_draws_info.json", "reference_draws.npz"):  # fmt: skip
        assert (folder / f).is_file(), f
    with np.load(folder / "reference_draws.npz") as saved:
        assert saved["draws"].shape == (10, 1000, target.dim)
        assert saved["draws"].dtype == np.float64
        assert np.all(saved["mean_mcse"] > 0)
    summary = json.loads((folder / "reference_summary.json").read_text())["params"]
    constrained = target.constrain(target.reference.draws)
    for label, row in summary.items():
        block, _, index = label.partition("[")
        values = constrained[block]
        if index:
            values = values[..., int(index[:-1]) - 1]
        assert abs(values.mean() - row["mean"]) <= 1e-8 * row["sd"] + 1e-12, label
    ref = target.reference
    assert ref.mean.shape == ref.sd.shape == ref.mean_mcse.shape == (target.dim,)
    assert np.all(ref.sd > 0) and np.all(ref.mean_mcse >= 0)
    value, grad = target.numba_value_and_grad(target.initial_position, target.numba_data)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


def test_exact_moments_used_where_posteriordb_has_them():
    """Regression coefficients and every eight_schools coordinate (log τ included) take
    posteriordb's quadrature moments, with MCSE 0; log σ and the non-regression posteriors
    take the reference draws' moments, with their MCSE."""
    es = posteriordb("eight_schools-eight_schools_centered").reference
    assert np.all(es.mean_mcse == 0)
    assert es.mean[-1] == pytest.approx(0.80213921, abs=1e-8)  # model.md: exact E[log τ]
    kid = posteriordb("kidiq-kidscore_interaction").reference
    assert np.all(kid.mean_mcse[:4] == 0) and kid.mean_mcse[4] > 0
    assert kid.mean[0] == pytest.approx(-11.482021, abs=1e-6)
    arma = posteriordb("arma-arma11").reference
    assert np.all(arma.mean_mcse > 0)
    np.testing.assert_allclose(arma.mean, arma.draws.mean(0))


def test_names_and_unknown_name():
    assert len(POSTERIORDB_NAMES) == 13 and set(NEW) <= set(POSTERIORDB_NAMES)
    assert "garch-garch11" not in POSTERIORDB_NAMES  # no reference draws in posteriordb
    with pytest.raises(ValueError, match="name"):
        posteriordb("garch-garch11")
    with pytest.raises(ValueError, match="x"):
        posteriordb("arma-arma11").constrain(np.zeros(3))


@pytest.mark.parametrize(
    "name, z",
    [
        ("arma-arma11", [0.0, 0.9, 40.0, -1.8]),  # |θ| > 1: the errors overflow
        ("gp_pois_regr-gp_pois_regr", [1.7, 400.0] + [1.0] * 11),  # α = e^400: K not finite
        ("gp_pois_regr-gp_pois_regr", [1.7, 1.0] + [400.0] * 11),  # e^f overflows
        ("low_dim_gauss_mix-low_dim_gauss_mix", [-2.7, 1.7, -800.0, 0.0, 0.5]),  # σ_1 = 0
        ("low_dim_gauss_mix-low_dim_gauss_mix", [-2.7, 800.0, 0.0, 0.0, 0.5]),  # μ_2 = inf
    ],
)
def test_far_tails_give_zero_density_not_an_exception(name, z):
    """Where the density overflows the Numba form returns −inf (a rejection), not NaN or an
    exception that would stop the chain loop."""
    target = _target(name)
    value, grad = target.numba_value_and_grad(np.array(z), target.numba_data)
    assert value == -np.inf and grad.shape == (target.dim,)
