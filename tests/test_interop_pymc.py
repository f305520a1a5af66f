"""Targets from PyMC models: the unconstrained log-density (Jacobian included) on both backends
against a hand-written one, the posterior against exact conjugate ones, the constrained view,
models defined in a cell, and the errors for models gradient samplers cannot sample."""

from __future__ import annotations

import builtins
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import langevin
from tests.stats_helpers import assert_z_ok, z_score

pm = pytest.importorskip("pymc")

A, B = 2.0, 0.5  # Gamma(shape, rate) prior of the Poisson rate
MU0, TAU0, SIGMA = 0.0, 3.0, 1.5  # Normal prior of the mean, known noise sd
COUNTS = np.array([3, 5, 2, 4, 6, 1, 3, 4])
VALUES = np.random.default_rng(0).normal(1.0, SIGMA, 20)
Y = np.array([0.8, -0.3, 1.9, 0.4, 1.1])  # data of the scale-and-location model
# sigma ~ HalfNormal(SCALE), mu ~ Normal(0, LOC_SD); float64 scalars, since PyTensor makes a
# Python float that is exact in float32 (2.0, 3.0) a float32 constant and takes its log in
# float32 (a relative error of ~1e-8 in the log-density against scipy's)
SCALE, LOC_SD = np.float64(2.0), np.float64(3.0)


def scale_location_model():
    with pm.Model() as model:
        sigma = pm.HalfNormal("sigma", SCALE)
        mu = pm.Normal("mu", 0.0, LOC_SD)
        pm.Normal("y", mu, sigma, observed=Y)
    return model


def hand_written(x: np.ndarray) -> float:
    """log π(u, m) on (u = log σ, m): HalfNormal(σ) + the Jacobian u + Normal(m) + likelihood."""
    u, m = x
    sigma = np.exp(u)
    return float(
        stats.halfnorm.logpdf(sigma, scale=SCALE) + u + stats.norm.logpdf(m, 0.0, LOC_SD)
        + stats.norm.logpdf(Y, m, sigma).sum()
    )  # fmt: skip


def conjugate_model():
    with pm.Model(name="conjugate") as model:
        rate = pm.Gamma("rate", alpha=A, beta=B)
        mu = pm.Normal("mu", MU0, TAU0)
        pm.Deterministic("log_rate", pm.math.log(rate))
        pm.Poisson("counts", rate, observed=COUNTS)
        pm.Normal("values", mu, SIGMA, observed=VALUES)
    return model


POINTS = [np.array([0.3, 1.1]), np.array([-0.7, -2.0]), np.array([1.2, 0.4])]


def test_the_log_density_is_the_hand_written_one_on_both_backends(x64):
    """Value (Jacobian included) to 1e-10 at several points, the gradient against central
    differences of the hand-written density, the two backends' forms to 1e-12, and PyMC's own
    compiled log-density (its default C backend) to 1e-12."""
    model = scale_location_model()
    target = langevin.Target.from_pymc(model)
    pymc_logp = model.compile_logp(jacobian=True)
    assert target.names_or_default() == {
        "sigma_log__": (slice(0, 1), ()),
        "mu": (slice(1, 2), ()),
    }
    assert target.has_numba and target.has_jax
    vg = target.numba_value_and_grad
    jax_vg = jax.jit(jax.value_and_grad(target.jax_logdensity))
    h = 1e-5
    for x in POINTS:
        value, grad = vg(x)
        assert value == pytest.approx(hand_written(x), rel=1e-10, abs=1e-10)
        point = {"sigma_log__": x[0], "mu": x[1]}
        assert value == pytest.approx(float(pymc_logp(point)), rel=1e-12, abs=1e-12)
        fd = [(hand_written(x + h * e) - hand_written(x - h * e)) / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-7)
        jvalue, jgrad = jax_vg(jnp.asarray(x, dtype=jnp.float64))
        assert jvalue.dtype == jnp.float64
        assert float(jvalue) == pytest.approx(value, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(np.asarray(jgrad), grad, rtol=1e-12, atol=1e-12)
    assert target.check().ok


def test_the_log_density_follows_the_dtype_of_x_and_leaves_jax_x64_alone():
    before = jax.config.jax_enable_x64
    target = langevin.Target.from_pymc(scale_location_model())
    out = target.jax_logdensity(jnp.zeros(2))
    assert out.dtype == jnp.zeros(()).dtype  # float32 unless the run has x64 on
    assert jax.config.jax_enable_x64 == before


def test_pytensor_s_x64_switch_is_undone_in_a_fresh_process():
    """PyTensor's JAX dispatch switches x64 on when first imported; the target puts the flag
    back, also when the first use is inside a ``jax.enable_x64(True)`` block."""
    code = textwrap.dedent(
        """
        import jax, jax.numpy as jnp, numpy as np, pymc as pm, langevin
        assert not jax.config.jax_enable_x64
        with pm.Model() as model:
            s = pm.HalfNormal("s", 1.0)
            pm.Normal("y", 0.0, s, observed=np.array([0.5, -1.0]))
        target = langevin.Target.from_pymc(model)
        with jax.enable_x64(True):
            assert target.jax_logdensity(jnp.zeros(1)).dtype == jnp.float64
        assert not jax.config.jax_enable_x64
        assert target.jax_logdensity(jnp.zeros(1)).dtype == jnp.float32
        print("ok")
        """
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "JAX_ENABLE_X64"}
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_posterior_matches_the_conjugate_one(backend):
    """Posterior means and variances of the rate (Gamma(A + Σk, B + n)) and of the mean
    (Normal) from HMC on the unconstrained space, seen through ``to_arviz(constrained=True)``;
    z-tests in MCSE. Without the Jacobian of the log transform the rate's mean is off by
    z ≈ −16 (Numba) and −18 (JAX), checked once by dropping it."""
    target = langevin.Target.from_pymc(conjugate_model())
    assert target.name == "conjugate"
    trace = langevin.sample(target, langevin.HMC(0.2, n_leapfrog=2), backend=backend, chains=4,
                            warmup=500, draws=2000, seed=3, progress=False)  # fmt: skip
    post = trace.to_arviz(constrained=True)["posterior"]
    assert set(post.data_vars) == {"conjugate::rate", "conjugate::mu", "conjugate::log_rate"}
    rate = np.asarray(post["conjugate::rate"])
    mu = np.asarray(post["conjugate::mu"])
    np.testing.assert_allclose(np.asarray(post["conjugate::log_rate"]), np.log(rate), rtol=1e-12)
    a_post, b_post = A + COUNTS.sum(), B + COUNTS.size
    precision = 1 / TAU0**2 + VALUES.size / SIGMA**2
    mu_post = (MU0 / TAU0**2 + VALUES.sum() / SIGMA**2) / precision
    assert_z_ok({
        "E[rate]": z_score(rate, a_post / b_post),
        "E[(rate - m)^2]": z_score((rate - a_post / b_post) ** 2, a_post / b_post**2),
        "E[mu]": z_score(mu, mu_post),
        "E[(mu - m)^2]": z_score((mu - mu_post) ** 2, 1 / precision),
    })  # fmt: skip


def test_the_constrained_view_has_every_variable_on_its_support():
    """Free RVs of every default transform (log, interval, simplex, none) and deterministics:
    names, shapes, supports, and the deterministics computed from the constrained draws."""
    with pm.Model(coords={"group": ["a", "b", "c"]}) as model:
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Dirichlet("w", np.ones(4))
        p = pm.Uniform("p", -1.0, 2.0)
        mu = pm.Normal("mu", 0.0, 1.0, dims="group")
        pm.Deterministic("scaled", sigma * mu, dims="group")
        pm.Deterministic("total", mu.sum() + p)
        pm.Normal("y", mu.sum() + p, sigma, observed=np.array([0.4, -0.2, 1.0]))
    target = langevin.Target.from_pymc(model)
    assert {k: v[1] for k, v in target.names_or_default().items()} == {
        "sigma_log__": (), "w_simplex__": (3,), "p_interval__": (), "mu": (3,),
    }  # fmt: skip
    trace = langevin.sample(target, langevin.MALA(0.05), backend="numba", chains=2, warmup=100,
                            draws=200, seed=1, progress=False)  # fmt: skip
    post = trace.to_arviz(constrained=True)["posterior"]
    shapes = {k: post[k].shape[2:] for k in post.data_vars}
    assert shapes == {"sigma": (), "w": (4,), "p": (), "mu": (3,), "scaled": (3,), "total": ()}
    sigma_, w_, p_, mu_ = (np.asarray(post[k]) for k in ("sigma", "w", "p", "mu"))
    assert (sigma_ > 0).all() and (w_ > 0).all() and (w_ < 1).all()
    np.testing.assert_allclose(w_.sum(axis=-1), 1.0, rtol=1e-12)
    assert (p_ > -1).all() and (p_ < 2).all()
    np.testing.assert_allclose(np.asarray(post["scaled"]), sigma_[..., None] * mu_, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(post["total"]), mu_.sum(-1) + p_, rtol=1e-12)
    # the unconstrained view: the value variables, and the back-transform of each
    raw = trace.to_arviz()["posterior"]
    np.testing.assert_allclose(np.exp(np.asarray(raw["sigma_log__"])), sigma_, rtol=1e-12)
    np.testing.assert_allclose(-1 + 3 / (1 + np.exp(-np.asarray(raw["p_interval__"]))), p_,
                               rtol=1e-12)  # fmt: skip
    np.testing.assert_allclose(np.asarray(raw["mu"]), mu_, rtol=0, atol=0)


def test_a_model_written_in_a_cell_works():
    src = (
        "import numpy as np, pymc as pm\n"
        "with pm.Model(name='cell_model') as cell_model:\n"
        "    s = pm.HalfNormal('s', 1.0)\n"
        "    pm.Normal('y', 0.0, s, observed=np.array([0.5, -0.1]))\n"
    )
    namespace: dict = {"__name__": "cell"}
    exec(compile(src, "<cell>", "exec"), namespace)
    target = langevin.Target.from_pymc(namespace["cell_model"])
    for backend in ("numba", "jax"):
        trace = langevin.sample(target, langevin.MALA(0.3), backend=backend, chains=2,
                                warmup=50, draws=60, seed=0, progress=False)  # fmt: skip
        assert np.isfinite(trace.draws).all() and trace.target_name == "cell_model"


def test_bad_models_are_refused():
    with pm.Model() as discrete:
        pm.Poisson("n_events", 3.0)
        pm.Bernoulli("flag", 0.5)
        pm.Normal("x", 0.0, 1.0)
    with pm.Model() as all_observed:
        pm.Normal("y", 0.0, 1.0, observed=np.zeros(3))

    with pytest.raises(ValueError, match=r"discrete free random variables \['n_events', 'flag'\]"):
        langevin.Target.from_pymc(discrete)
    with pytest.raises(ValueError, match="no free random variables"):
        langevin.Target.from_pymc(all_observed)
    with pytest.raises(TypeError, match=r"model must be a pymc\.Model.*function"):
        langevin.Target.from_pymc(scale_location_model)  # the builder, not the model
    with pytest.raises(TypeError, match=r"model must be a pymc\.Model.*str"):
        langevin.Target.from_pymc("model")
    with pytest.raises(TypeError, match="name must be a str"):
        langevin.Target.from_pymc(scale_location_model(), name=3)


def test_without_pymc_the_error_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_pymc(name, *args, **kwargs):
        if name == "pymc" or name.startswith("pymc."):
            raise ImportError("No module named 'pymc'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pymc)
    monkeypatch.setattr("importlib.import_module", lambda n: no_pymc(n))
    with pytest.raises(ImportError, match=r'pip install "langevin\[pymc\]"'):
        langevin.Target.from_pymc(object())


def test_the_constrained_view_one_draw_at_a_time_and_data_only_deterministics(monkeypatch):
    """When PyTensor cannot vectorise the graph the view is computed draw by draw, with the
    same result; a deterministic of the data alone is repeated over the draws."""
    import pytensor.graph.replace

    def model():
        with pm.Model() as m:
            sigma = pm.HalfNormal("sigma", 1.0)
            w = pm.Dirichlet("w", np.ones(3))
            pm.Deterministic("weighted", sigma * w)
            pm.Deterministic("data_mean", pm.math.constant(Y).mean())
            pm.Normal("y", 0.0, sigma, observed=Y)
        return m

    draws = np.random.default_rng(2).normal(size=(2, 5, 3))
    batched = langevin.Target.from_pymc(model()).constrain(draws)

    def refuse(*args, **kwargs):
        raise NotImplementedError("no vectorisation")

    monkeypatch.setattr(pytensor.graph.replace, "vectorize_graph", refuse)
    one_by_one = langevin.Target.from_pymc(model()).constrain(draws)
    assert {k: v.shape for k, v in batched.items()} == {
        "sigma": (2, 5), "w": (2, 5, 3), "weighted": (2, 5, 3), "data_mean": (2, 5),
    }  # fmt: skip
    for k, v in batched.items():
        np.testing.assert_allclose(one_by_one[k], v, rtol=1e-14, atol=0)
    np.testing.assert_allclose(batched["sigma"], np.exp(draws[..., 0]), rtol=1e-14)
    np.testing.assert_allclose(batched["data_mean"], Y.mean(), rtol=1e-14)
