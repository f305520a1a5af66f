"""Targets from NumPyro models: the unconstrained log-density (Jacobian included), names,
the constrained view, and the posterior against an exact conjugate one."""

from __future__ import annotations

import builtins

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import langevin
from tests.stats_helpers import assert_z_ok, z_score

numpyro = pytest.importorskip("numpyro")
dist = pytest.importorskip("numpyro.distributions")

A, B = 2.0, 0.5  # Gamma(shape, rate) prior of the Poisson rate
MU0, TAU0, SIGMA = 0.0, 3.0, 1.5  # Normal prior of the mean, known noise sd
COUNTS = np.array([3, 5, 2, 4, 6, 1, 3, 4])
VALUES = np.random.default_rng(0).normal(1.0, SIGMA, 20)


def conjugate(counts, values):
    rate = numpyro.sample("rate", dist.Gamma(A, B))
    mu = numpyro.sample("mu", dist.Normal(MU0, TAU0))
    numpyro.deterministic("log_rate", jnp.log(rate))
    numpyro.sample("counts", dist.Poisson(rate), obs=counts)
    numpyro.sample("values", dist.Normal(mu, SIGMA), obs=values)


def test_the_log_density_is_the_model_on_the_unconstrained_space(x64):
    """log π(u, m) = log Gamma(e^u) + Σ log Poisson(k | e^u) + u + log N(m) + Σ log N(y | m)."""
    target = langevin.Target.from_numpyro(conjugate, COUNTS, VALUES)
    assert target.names_or_default() == {"mu": (slice(0, 1), ()), "rate": (slice(1, 2), ())}
    logdensity = target.jax_functions["logdensity"]
    for m, u in [(0.3, 1.1), (-2.0, -0.4)]:
        lam = np.exp(u)
        expected = (
            stats.gamma.logpdf(lam, A, scale=1 / B) + stats.poisson.logpmf(COUNTS, lam).sum() + u
            + stats.norm.logpdf(m, MU0, TAU0) + stats.norm.logpdf(VALUES, m, SIGMA).sum()
        )  # fmt: skip
        got = float(logdensity(jnp.array([m, u], dtype=jnp.float64)))
        assert got == pytest.approx(expected, rel=1e-12)


def test_float32_by_default():
    target = langevin.Target.from_numpyro(conjugate, COUNTS, VALUES)
    out = target.jax_functions["logdensity"](jnp.zeros(2))
    assert out.dtype == jnp.zeros(()).dtype


def test_posterior_matches_the_conjugate_one():
    """Posterior means of the rate (Gamma(A + Σk, B + n)) and of the mean (Normal) from HMC on
    the unconstrained space, seen through ``to_arviz(constrained=True)``; z-tests in MCSE."""
    target = langevin.Target.from_numpyro(conjugate, COUNTS, VALUES)
    # 2 leapfrog steps: the adapted step is about 0.8 in the whitened scale, and 8 steps would
    # make trajectories near a full period of the Gaussian (ESS ~ 150 of 8000)
    trace = langevin.sample(target, langevin.HMC(0.2, n_leapfrog=2), backend="jax", chains=4,
                            warmup=500, draws=2000, seed=3, progress=False)  # fmt: skip
    post = trace.to_arviz(constrained=True)["posterior"]
    assert set(post.data_vars) == {"rate", "mu", "log_rate"}
    rate = np.asarray(post["rate"])
    np.testing.assert_allclose(np.asarray(post["log_rate"]), np.log(rate), rtol=1e-5)
    a_post, b_post = A + COUNTS.sum(), B + COUNTS.size
    precision = 1 / TAU0**2 + VALUES.size / SIGMA**2
    mu_post = (MU0 / TAU0**2 + VALUES.sum() / SIGMA**2) / precision
    mu = np.asarray(post["mu"])
    assert_z_ok({
        "E[rate]": z_score(rate, a_post / b_post),
        "E[(rate - m)^2]": z_score((rate - a_post / b_post) ** 2, a_post / b_post**2),
        "E[mu]": z_score(mu, mu_post),
        "E[(mu - m)^2]": z_score((mu - mu_post) ** 2, 1 / precision),
    })  # fmt: skip


def test_a_model_written_in_a_cell_works():
    src = (
        "import numpyro, numpyro.distributions as dist\n"
        "def cell_model(y):\n"
        "    s = numpyro.sample('s', dist.HalfNormal(1.0))\n"
        "    numpyro.sample('y', dist.Normal(0.0, s), obs=y)\n"
    )
    namespace: dict = {"__name__": "cell"}
    exec(compile(src, "<cell>", "exec"), namespace)
    target = langevin.Target.from_numpyro(namespace["cell_model"], np.array([0.5, -0.1]))
    trace = langevin.sample(target, langevin.MALA(0.3), backend="jax", chains=2, warmup=50,
                            draws=60, seed=0, progress=False)  # fmt: skip
    assert np.isfinite(trace.draws).all() and trace.target_name == "cell_model"


def test_bad_models_are_refused():
    def all_observed(y):
        numpyro.sample("y", dist.Normal(0.0, 1.0), obs=y)

    def broken(y):
        raise RuntimeError("the model's code raised")

    with pytest.raises(ValueError, match="no latent sites"):
        langevin.Target.from_numpyro(all_observed, np.zeros(3))
    with pytest.raises(ValueError, match="could not initialise"):
        langevin.Target.from_numpyro(broken, np.zeros(3))
    with pytest.raises(TypeError, match="model"):
        langevin.Target.from_numpyro("model")
    with pytest.raises(TypeError, match="seed"):
        langevin.Target.from_numpyro(conjugate, COUNTS, VALUES, seed=-1)


def test_without_numpyro_the_error_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_numpyro(name, *args, **kwargs):
        if name == "numpyro" or name.startswith("numpyro."):
            raise ImportError("No module named 'numpyro'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_numpyro)
    monkeypatch.setattr("importlib.import_module", lambda n: no_numpyro(n))
    with pytest.raises(ImportError, match=r"langevin\[numpyro\]"):
        langevin.Target.from_numpyro(conjugate, COUNTS, VALUES)
    assert jax is not None
