"""CMCD, ULA-AIS, MCD and PIS (langevin.diffusion.cmcd / learned): exact properties.

* ``E[w] = Z`` for *any* control (random network weights, random ``q_0``): a z-test of the
  weights' mean against the exact Z of an unnormalised Gaussian, with the i.i.d. standard
  error ``sd(w)/√N`` (the paths are independent without resampling);
* ``ELBO = E[log w] ≤ log Z`` (one-sided z-test) and, with resampling, the SMC estimate;
* K = 0 with no control is plain importance sampling: ``log w = log γ(x_0) − log q_0(x_0)``
  exactly (an independent SciPy formula);
* the same noise gives the same weights on Numba and JAX (1e-12 with the ``x64`` fixture),
  with and without resampling; JAX's default float32 runs too;
* bad arguments are refused, naming them, before anything compiles;
* training (JAX, optax) improves the ELBO on a Gaussian, and the trained params sample on
  both backends.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

import langevin
from langevin.diffusion.cmcd import CMCD, mcd, ula_ais
from langevin.diffusion.learned import PIS
from tests.stats_helpers import Z_CRIT

MEAN = np.array([1.0, -0.5])
COV = np.array([[0.5, 0.2], [0.2, 2.0]])
# langevin.targets.gaussian drops the constant: Z = (2π)^{d/2} det(Σ)^{1/2}
LOG_Z = math.log(2 * math.pi) + 0.5 * math.log(np.linalg.det(COV))


@pytest.fixture(scope="module")
def gauss():
    return langevin.targets.gaussian(2, mean=MEAN, cov=COV)


def random_params(sampler, seed=1, scale_out=3.0):
    """A random, far-from-optimal control (and, for CMCD, a shifted ``q_0``). The output
    scale 3 makes the control matter: with the forward control's sign flipped in the
    proposal only, the unbiasedness z-test reads z ≈ 6.7 (checked), 0.6 when correct."""
    rng = np.random.default_rng(seed)
    p = sampler.init_params(seed)
    net = p.net._replace(
        w_o=scale_out * rng.standard_normal(p.net.w_o.shape),
        b_o=0.3 * rng.standard_normal(p.net.b_o.shape),
    )
    if isinstance(sampler, PIS):
        return p._replace(net=net, score_weight=np.array([0.3, 0.2]))
    return p._replace(net=net, mean=np.array([0.4, 0.3]), log_std=np.log([1.2, 1.5]))


def samplers(target):
    return {
        "cmcd": CMCD(target, 4, step_size=0.1, hidden=8),
        "mcd": mcd(target, 4, step_size=0.1, hidden=8),
        "ula": ula_ais(target, 4, step_size=0.1),
        "pis": PIS(target, 4, sigma=1.5, hidden=8),
    }


@pytest.mark.parametrize("kind", ["cmcd", "mcd", "ula", "pis"])
def test_weights_are_unbiased_for_any_control(gauss, kind):
    sampler = samplers(gauss)[kind]
    n = 40_000
    result = sampler.sample(random_params(sampler), n, seed=11)
    lw = result.log_weights
    w = np.exp(lw - LOG_Z)  # w / Z: mean 1
    z = (w.mean() - 1.0) / (w.std(ddof=1) / math.sqrt(n))
    assert abs(z) < Z_CRIT, (kind, w.mean(), z)
    # the same law seen through log Ẑ (the SMC loop's evidence): Ẑ = mean(w)
    assert result.log_Z == pytest.approx(math.log(w.mean()) + LOG_Z, abs=1e-9)
    # ELBO ≤ log Z (Jensen), one-sided, and strictly below for a poor control
    elbo_se = lw.std(ddof=1) / math.sqrt(n)
    assert (result.elbo - LOG_Z) / elbo_se < Z_CRIT
    assert result.elbo < LOG_Z


def test_k0_is_plain_importance_sampling(gauss):
    sampler = CMCD(gauss, 0, init_mean=[0.3, -0.2], init_scale=[1.5, 0.8], control="ula",
                   hidden=1)  # fmt: skip
    result = sampler.sample(None, 500, seed=3)
    x = result.samples
    log_gamma = multivariate_normal(MEAN, COV).logpdf(x) + LOG_Z
    log_q = norm(0.3, 1.5).logpdf(x[:, 0]) + norm(-0.2, 0.8).logpdf(x[:, 1])
    np.testing.assert_allclose(result.log_weights, log_gamma - log_q, rtol=0, atol=1e-10)


@pytest.mark.parametrize("ess_threshold", [0.0, 0.8])
@pytest.mark.parametrize("kind", ["cmcd", "pis"])
def test_numba_and_jax_give_the_same_weights(gauss, x64, kind, ess_threshold):
    sampler = samplers(gauss)[kind]
    params = random_params(sampler, seed=2)
    a = sampler.sample(params, 64, backend="numba", seed=5, ess_threshold=ess_threshold)
    b = sampler.sample(params, 64, backend="jax", seed=5, ess_threshold=ess_threshold)
    assert np.asarray(b.particles.x).dtype == np.float64
    np.testing.assert_allclose(np.asarray(b.log_weights), a.log_weights, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(b.samples), a.samples, rtol=0, atol=1e-12)
    assert abs(a.log_Z - b.log_Z) < 1e-12
    if ess_threshold:
        assert np.array_equal(a.smc.resampled, b.smc.resampled) and a.smc.resampled.any()


def test_jax_default_precision(gauss):
    """JAX's default float (float32 unless JAX_ENABLE_X64) is kept; results match Numba to
    that precision."""
    sampler = samplers(gauss)["cmcd"]
    params = random_params(sampler, seed=2)
    a = sampler.sample(params, 64, backend="numba", seed=5)
    b = sampler.sample(params, 64, backend="jax", seed=5)
    dtype = jnp.zeros(()).dtype
    assert np.asarray(b.particles.x).dtype == dtype
    tol = 1e-3 if dtype == jnp.float32 else 1e-10
    np.testing.assert_allclose(np.asarray(b.log_weights), a.log_weights, rtol=tol, atol=tol)


def test_resampling_keeps_the_evidence_unbiased(gauss):
    """With ESS-triggered resampling (the SMC sampler of langevin.smc) Ẑ is still unbiased:
    z-test of the mean of Ẑ/Z over 80 independent runs (z = −1.5 here; 6.2 with the forward
    control's sign flipped in the proposal only, checked)."""
    sampler = samplers(gauss)["cmcd"]
    params = random_params(sampler, seed=1)
    runs = [sampler.sample(params, 1000, seed=100 + s, ess_threshold=0.95) for s in range(80)]
    assert sum(r.smc.resampled.any() for r in runs) > 40  # resampling did happen
    z_hat = np.array([math.exp(r.log_Z - LOG_Z) for r in runs])
    z = (z_hat.mean() - 1.0) / (z_hat.std(ddof=1) / math.sqrt(len(z_hat)))
    assert abs(z) < Z_CRIT, (z_hat.mean(), z)


def test_bad_arguments_are_refused(gauss, monkeypatch):
    from langevin.backends import numba_backend

    def fail(*a, **k):  # nothing may compile before the checks
        raise AssertionError("compiled before checking")

    monkeypatch.setattr(numba_backend, "map_members", fail)
    with pytest.raises(ValueError, match="n_steps"):
        CMCD(gauss, -1)
    with pytest.raises(ValueError, match="step_size"):
        CMCD(gauss, 4, step_size=0.0)
    with pytest.raises(ValueError, match="schedule"):
        CMCD(gauss, 4, schedule="cosine")
    with pytest.raises(ValueError, match="control"):
        CMCD(gauss, 4, control="nn")
    with pytest.raises(ValueError, match="learn"):
        CMCD(gauss, 4, learn=("beta",))
    with pytest.raises(ValueError, match="learn"):
        CMCD(gauss, 4, learn="schedule")
    with pytest.raises(ValueError, match="init_scale"):
        CMCD(gauss, 4, init_scale=[1.0, -1.0])
    with pytest.raises(ValueError, match="dim"):
        CMCD(gauss, 4, dim=3)
    with pytest.raises(TypeError, match="target"):
        CMCD(lambda x: x, 4)
    with pytest.raises(ValueError, match="sigma"):
        PIS(gauss, 4, sigma=-1.0)
    s = CMCD(gauss, 4)
    with pytest.raises(ValueError, match="n_particles"):
        s.sample(None, 0)
    with pytest.raises(ValueError, match="backend"):
        s.sample(None, 10, backend="torch")
    with pytest.raises(ValueError, match="ess_threshold"):
        s.sample(None, 10, ess_threshold=2.0)
    with pytest.raises(ValueError, match="scheme"):
        s.sample(None, 10, scheme="best")
    with pytest.raises(TypeError, match="seed"):
        s.sample(None, 10, seed=-1)
    with pytest.raises(ValueError, match=r"params\.mean"):
        s.sample(s.init_params()._replace(mean=np.zeros(3)), 10)
    with pytest.raises(TypeError, match=r"params\.net"):
        s.sample(s.init_params()._replace(net=None), 10)
    with pytest.raises(ValueError, match="loss"):
        s.train(loss="fisher")
    with pytest.raises(ValueError, match="exploration"):
        s.train(loss="kl", exploration=0.5)
    with pytest.raises(ValueError, match="batch"):
        s.train(batch=1)


def test_schedules():
    from langevin.diffusion.paths import beta_schedule, step_schedule

    np.testing.assert_allclose(beta_schedule(3), [0.25, 0.5, 0.75])
    r = step_schedule(8, "cos_sq")
    s = 0.008
    assert r[0] == pytest.approx(math.cos((1 / 8 + s) / (1 + s) * math.pi / 2) ** 2)
    assert np.all(np.diff(r) < 0) and r[-1] == pytest.approx(1e-4)
    lin = step_schedule(5, "linear")
    assert lin[0] == 1.0 and lin[-1] == pytest.approx(1e-4)


@pytest.mark.slow  # network training (the default run keeps the untrained exactness tests)
@pytest.mark.parametrize("loss", ["kl", "logvar"])
def test_training_improves_the_elbo(gauss, loss):
    """A few Adam steps on JAX raise the ELBO and lower Var(log w) of the trained sampler,
    measured on fresh paths on Numba (the trained params are a plain pytree)."""
    sampler = CMCD(gauss, 4, step_size=0.1, hidden=8)
    before = sampler.sample(None, 4000, seed=7)
    x64_before = jax.config.jax_enable_x64
    trained = sampler.train(loss=loss, steps=60, batch=64, learning_rate=2e-2, seed=0)
    assert jax.config.jax_enable_x64 == x64_before  # training never flips JAX's flags
    assert np.all(np.isfinite(trained.losses)) and trained.losses.shape == (60,)
    assert trained.params.log_step.dtype == np.float64
    after = sampler.sample(trained.params, 4000, seed=7)
    n = 4000
    gain = after.elbo - before.elbo
    se = math.sqrt(after.log_weights.var(ddof=1) / n + before.log_weights.var(ddof=1) / n)
    assert gain / se > Z_CRIT, (before.elbo, after.elbo, se)
    assert after.log_weights.var() < before.log_weights.var()
    assert (after.elbo - LOG_Z) < 0.0


@pytest.mark.slow  # network training
def test_pis_logvar_off_policy_training(gauss):
    """PIS trained with the log-variance loss on exploring (off-policy) paths: Var(log w)
    falls and the trained sampler's Ẑ is still unbiased (z-test)."""
    sampler = PIS(gauss, 8, sigma=1.5, hidden=8)
    before = sampler.sample(None, 4000, seed=8)
    trained = sampler.train(loss="logvar", steps=60, batch=64, learning_rate=2e-2,
                            exploration=0.3, seed=1)  # fmt: skip
    n = 20_000
    after = sampler.sample(trained.params, n, seed=9)
    assert after.log_weights.var() < 0.5 * before.log_weights.var()
    w = np.exp(after.log_weights - LOG_Z)
    z = (w.mean() - 1.0) / (w.std(ddof=1) / math.sqrt(n))
    assert abs(z) < Z_CRIT


def test_target_defined_in_exec(x64):
    """A user's target written in a notebook cell (here: exec) samples on both backends."""
    src = """
import numba, numpy as np, jax.numpy as jnp
import langevin

@numba.njit
def vg(x):
    return -0.5 * np.sum((x - 1.0) ** 2), -(x - 1.0)

def logdensity(x):
    return -0.5 * jnp.sum((x - 1.0) ** 2)

user_target = langevin.Target(dim=2, numba={"value_and_grad": vg}, jax={"logdensity": logdensity})
"""
    namespace: dict = {}
    exec(compile(src, "<cell>", "exec"), namespace)
    sampler = ula_ais(namespace["user_target"], 2, step_size=0.1)
    a = sampler.sample(None, 16, backend="numba", seed=0)
    b = sampler.sample(None, 16, backend="jax", seed=0)
    np.testing.assert_allclose(np.asarray(b.log_weights), a.log_weights, rtol=0, atol=1e-12)


# -- the learned annealing schedule -------------------------------------------------------------
def schedule_params(sampler, seed=3):
    """Random control and ``q_0`` (``random_params``, seed 1) and random, far-from-uniform
    schedule logits."""
    rng = np.random.default_rng(seed)
    p = random_params(sampler, seed=1)
    return p._replace(beta_logits=rng.standard_normal(p.beta_logits.shape))


def test_learned_schedule_is_a_valid_increasing_schedule(gauss):
    """Any logits give ``0 = β_0 < β_1 < … < β_K < 1`` in the coefficient table (``β_{k−1}``
    of row k is ``β_k`` of row k − 1); zero logits give the uniform ``k/(K + 1)``; the NumPy
    and JAX tables agree."""
    from langevin.diffusion.paths import beta_schedule, learned_betas

    sampler = CMCD(gauss, 6, step_size=0.1, hidden=4)
    np.testing.assert_allclose(sampler.betas(), beta_schedule(6), rtol=0, atol=1e-15)
    rng = np.random.default_rng(0)
    for scale in (0.5, 3.0, 30.0):
        p = sampler.init_params()._replace(beta_logits=scale * rng.standard_normal(7))
        rows = sampler.coefficients(p, np)
        beta_prev, beta = rows[:, 0], rows[:, 1]
        assert beta_prev[0] == 0.0 and np.all(beta_prev[1:] == beta[:-1])
        assert np.all(np.diff(np.concatenate([[0.0], beta, [1.0]])) > 0), (scale, beta)
        e = np.exp(p.beta_logits)  # the definition, written out independently
        np.testing.assert_allclose(beta, np.cumsum(e)[:-1] / e.sum(), rtol=1e-12)
        jrows = np.asarray(sampler.coefficients(p, jnp), dtype=np.float64)
        np.testing.assert_allclose(jrows, rows, rtol=1e-5, atol=1e-6)
    assert learned_betas(np.zeros(1)).shape == (0,)


def test_weights_stay_exact_with_a_learned_schedule(gauss):
    """E[w] = Z (z-test, as above) with a random, far-from-uniform schedule and a random
    control; the schedule is really used (the weights differ from the uniform grid's under
    the same noise). With the uniform β_{k−1} in the weight's table but the learned β_k,
    z ≈ 131 (checked)."""
    sampler = CMCD(gauss, 4, step_size=0.1, hidden=8)
    params = schedule_params(sampler)
    n = 40_000
    result = sampler.sample(params, n, seed=12)
    w = np.exp(result.log_weights - LOG_Z)
    z = (w.mean() - 1.0) / (w.std(ddof=1) / math.sqrt(n))
    assert abs(z) < Z_CRIT, (w.mean(), z)
    uniform = sampler.sample(params._replace(beta_logits=np.zeros(5)), 64, seed=12)
    assert np.max(np.abs(uniform.log_weights - result.log_weights[:64])) > 1e-2


def test_gradient_reaches_the_schedule(gauss, x64):
    """The reparameterised ELBO gradient flows into the schedule logits and equals a central
    finite difference of the same (fixed-noise) objective. Compiled once, without XLA's
    optimisation passes (they would cost more than the whole check). With the logits
    detached in the coefficient table the gradient is 0 and this fails (checked)."""
    from langevin.diffusion.paths import path_log_weights

    sampler = CMCD(gauss, 3, step_size=0.1, hidden=2)
    params = jax.tree_util.tree_map(jnp.asarray, schedule_params(sampler))
    f = path_log_weights(sampler, 16, "kl")
    key = jax.random.PRNGKey(0)

    def elbo(logits):
        return jnp.mean(f(params._replace(beta_logits=logits), key))

    fast = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
    vg = jax.jit(jax.value_and_grad(elbo)).lower(params.beta_logits).compile(fast)
    g = np.asarray(vg(params.beta_logits)[1])
    assert g.shape == (4,) and np.all(np.isfinite(g)) and np.all(np.abs(g) > 1e-4), g
    h = 1e-6
    for j in range(4):
        e = jnp.zeros(4).at[j].set(h)
        fd = (vg(params.beta_logits + e)[0] - vg(params.beta_logits - e)[0]) / (2 * h)
        assert g[j] == pytest.approx(float(fd), rel=1e-5, abs=1e-9), (j, g, fd)


@pytest.mark.slow  # compiles a training step
def test_learn_freezes_what_it_omits(gauss):
    """``learn=("schedule",)``: :meth:`train` moves the schedule logits and nothing else."""
    frozen = CMCD(gauss, 2, step_size=0.1, hidden=2, learn=("schedule",))
    start = schedule_params(frozen)
    out = frozen.train(start, steps=2, batch=4, learning_rate=0.1).params
    assert np.max(np.abs(out.beta_logits - start.beta_logits)) > 1e-3
    dt = jnp.zeros(()).dtype  # training's float: frozen leaves come back exactly, in it

    def same(a, b):
        np.testing.assert_array_equal(a, np.asarray(np.asarray(b, dt), np.float64))

    for name in ("mean", "log_std", "log_step"):
        same(getattr(out, name), getattr(start, name))
    for a, b in zip(out.net, start.net):
        same(a, b)
