"""Flow layers (langevin.flows): for every layer and the composite flow, on NumPy, Numba and
JAX: f⁻¹(f(z)) = z, log|det J| against the log-determinant of JAX's autodiff Jacobian, and the
hand-written pullback against jax.vjp plus the autodiff gradient of log|det J|. Then the
flow-transformed target (identity flow: HMC on it is HMC on the target, draw for draw; a
trained-looking flow: the same value and gradient on both backends), fitting by reverse and
forward KL, saving and loading."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import langevin
from langevin.backends import jax_backend, jax_ops, numba_backend
from langevin.flows import (
    check_flow,
    fit_forward_kl,
    fit_reverse_kl,
    flow_log_density,
    flow_transformed,
    identity_flow,
    latent_to_x,
    load_flow,
    realnvp_init,
    save_flow,
)
from langevin.flows import layers as L
from langevin.nn import jax_twin, numba_twin, numpy_twin, params_to_jax

D = 5


def _flow(seed=1):
    """A RealNVP far from the identity (large conditioner weights, a non-trivial affine)."""
    p = realnvp_init(D, 3, (8, 8), seed=seed, init_scale=0.8, activation="silu")
    return p._replace(final=L.ElementwiseAffine(np.linspace(-1, 1, D), np.linspace(-0.4, 0.5, D)))


def _layers():
    flow = _flow()
    rng = np.random.default_rng(3)
    perm = rng.permutation(D)
    inv = np.argsort(perm)
    block = flow.blocks[1]
    return {
        "permutation": ((L.permutation_forward, L.permutation_inverse, L.permutation_log_det,
                         L.permutation_pullback), L.Permutation(perm, inv)),
        "elementwise_affine": ((L.affine_forward, L.affine_inverse, L.affine_log_det,
                                L.affine_pullback), flow.final),
        "affine_coupling": ((L.coupling_forward, L.coupling_inverse, L.coupling_log_det,
                             L.coupling_pullback), block.coupling),
        "realnvp": ((L.flow_forward, L.flow_inverse, L.flow_log_det, L.flow_pullback), flow),
    }  # fmt: skip


LAYERS = list(_layers())


def _twin(backend):
    return {"numpy": numpy_twin, "numba": numba_twin, "jax": jax_twin}[backend]


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_inverse_log_det_and_pullback(layer, x64):
    """On NumPy, Numba and JAX: f⁻¹(f(z)) = z; log|det J| = the autodiff Jacobian's
    log-determinant; pullback = jax.vjp of f plus the autodiff gradient of log|det J|."""
    (fwd, inv, log_det, pull), p = _layers()[layer]
    rng = np.random.default_rng(7)
    z = rng.standard_normal(D) * 1.5
    g = rng.standard_normal(D)
    # the reference: JAX's autodiff of the JAX twin of the forward map
    pj = params_to_jax(p)
    jac, vjp = jax.jacfwd(lambda u: jax_twin(fwd)(pj, u)), None
    jac = np.asarray(jac(jnp.asarray(z)))
    sign, logabs = np.linalg.slogdet(jac)
    assert sign != 0
    assert np.any(np.abs(jac - np.eye(D)) > 1e-3)  # the layer is not the identity
    _, vjp = jax.vjp(lambda u: jax_twin(fwd)(pj, u), jnp.asarray(z))
    grad_log_det = jax.grad(lambda u: jax_twin(log_det)(pj, u))(jnp.asarray(z))
    ref = np.asarray(vjp(jnp.asarray(g))[0] + grad_log_det)
    for backend in ("numpy", "numba", "jax"):
        twin = _twin(backend)
        if backend == "jax":
            pp, zz, gg = pj, jnp.asarray(z), jnp.asarray(g)
        else:
            pp, zz, gg = p, z, g
        x = np.asarray(twin(fwd)(pp, zz))
        back = np.asarray(twin(inv)(pp, jnp.asarray(x) if backend == "jax" else x))
        np.testing.assert_allclose(back, z, rtol=0, atol=1e-12, err_msg=backend)
        np.testing.assert_allclose(float(twin(log_det)(pp, zz)), logabs, rtol=0, atol=1e-12,
                                   err_msg=backend)  # fmt: skip
        np.testing.assert_allclose(np.asarray(twin(pull)(pp, zz, gg)), ref, rtol=0, atol=1e-12,
                                   err_msg=backend)  # fmt: skip


@pytest.mark.slow
def test_flow_density_is_a_density(x64):
    """log q(x) is the change of variables of N(0, I): ∫ q = 1 on a 2-D grid (quadrature),
    and log q(f(u)) = log φ(u) − log|det J_f(u)|."""
    p = realnvp_init(2, 3, (8, 8), seed=0, init_scale=0.6)
    logq = jax.jit(jax.vmap(lambda x: jax_twin(flow_log_density)(params_to_jax(p), x)))
    grid = np.linspace(-12, 12, 601)
    xx, yy = np.meshgrid(grid, grid)
    pts = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], axis=1))
    mass = float(np.sum(np.exp(np.asarray(logq(pts)))) * (grid[1] - grid[0]) ** 2)
    assert abs(mass - 1.0) < 1e-3
    u = np.array([0.3, -1.2])
    x, ld = numpy_twin(L.flow_forward_and_log_det)(p, u)
    expected = -0.5 * u @ u - np.log(2 * np.pi) - ld
    np.testing.assert_allclose(numpy_twin(flow_log_density)(p, x), expected, atol=1e-12)


def test_identity_flow_is_the_identity(x64):
    p = identity_flow(D)
    z = np.random.default_rng(0).standard_normal(D)
    g = np.random.default_rng(1).standard_normal(D)
    x, ld = numba_twin(L.flow_forward_and_log_det)(p, z)
    np.testing.assert_array_equal(x, z)
    assert ld == 0.0
    np.testing.assert_array_equal(numba_twin(L.flow_pullback)(p, z, g), g)


# -- the flow-transformed target ------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numba", pytest.param("jax", marks=pytest.mark.slow)])
def test_identity_flow_hmc_equals_hmc(backend, x64):
    """ftHMC with the identity flow is HMC on the target: the same draws to 1e-12, on each
    backend (the same seed gives the same noise on a backend)."""
    from tests.conftest import correlated_gaussian

    target = correlated_gaussian(4, seed=3)[0]
    latent = flow_transformed(target, identity_flow(4))
    kernel = langevin.HMC(0.15, n_leapfrog=4)
    kw = dict(chains=2, warmup=30, draws=40, seed=5, backend=backend, progress=False,
              initial_position=np.full(4, 0.2))  # fmt: skip
    a = langevin.sample(target, kernel, **kw)
    b = langevin.sample(latent, kernel, **kw)
    np.testing.assert_allclose(b.draws, a.draws, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.sample_stats["lp"], a.sample_stats["lp"], atol=1e-12)
    assert np.ptp(a.draws[:, :, 0]) > 0.1  # the chains moved


def _vg_both(latent, z):
    nb_form = numba_backend.bind_target(latent, D)  # compiles the Numba function, checked
    v_nb, g_nb = latent.numba_value_and_grad(z, nb_form.data)
    jx_form = jax_backend.bind_target(latent, D, jnp.float64)
    v_jx, g_jx = jax_ops.value_and_grad(jx_form.build(jx_form.data), jnp.asarray(z))
    return (v_nb, g_nb), (float(v_jx), np.asarray(g_jx))


def test_flow_transformed_value_and_gradient(x64):
    """log π(f(z)) + log|det J_f(z)| and its gradient, the same on Numba and JAX (1e-12), and
    equal to an independent computation (the target's JAX log-density of f(z) plus the
    log-determinant; the gradient by jax.grad of the whole, not the hand-written pullback)."""
    target = langevin.targets.neals_funnel(D)
    flow = _flow(2)
    latent = flow_transformed(target, flow)
    rng = np.random.default_rng(11)
    pj = params_to_jax(flow)
    fwd, log_det = jax_twin(L.flow_forward), jax_twin(L.flow_log_det)

    def reference(u):  # log|det J| itself is checked against autodiff above
        return target.jax_logdensity(fwd(pj, u)) + log_det(pj, u)

    for _ in range(1):
        z = rng.standard_normal(D) * 0.7
        (v_nb, g_nb), (v_jx, g_jx) = _vg_both(latent, z)
        np.testing.assert_allclose(v_nb, v_jx, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g_nb, g_jx, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(v_nb, float(reference(jnp.asarray(z))), rtol=1e-10)
        g_ref = np.asarray(jax.grad(reference)(jnp.asarray(z)))
        np.testing.assert_allclose(g_nb, g_ref, rtol=1e-9, atol=1e-9)
    # constrain maps latent draws to the target's parameters
    draws = rng.standard_normal((2, 3, D))
    x = latent_to_x(flow, draws)
    out = latent.constrain(draws)
    np.testing.assert_allclose(out["v"], x[..., 0])
    np.testing.assert_allclose(out["x"], x[..., 1:])


@pytest.mark.slow
def test_flow_transformed_runs_in_float32_on_jax():
    from tests.conftest import correlated_gaussian

    target = correlated_gaussian(3, seed=1)[0]
    latent = flow_transformed(target, realnvp_init(3, 2, (4, 4), seed=0, init_scale=0.3))
    trace = langevin.sample(latent, langevin.HMC(0.2, n_leapfrog=3), chains=2, warmup=20,
                            draws=20, backend="jax", seed=0, progress=False,
                            initial_position=np.zeros(3, np.float32))  # fmt: skip
    assert trace.draws.dtype == np.float32 and np.all(np.isfinite(trace.draws))


def test_bad_flows_are_refused_by_name():
    target = langevin.targets.gaussian(3)
    with pytest.raises(TypeError, match="params"):
        flow_transformed(target, {"not": "a flow"})
    with pytest.raises(ValueError, match="dimension 4"):
        flow_transformed(target, realnvp_init(4, 1, (4,)))
    bad = realnvp_init(3, 1, (4,))
    block = bad.blocks[0]
    broken = bad._replace(blocks=(block._replace(permutation=L.Permutation(
        np.array([0, 0, 1]), np.array([0, 1, 2]))),))  # fmt: skip
    with pytest.raises(ValueError, match="permutation"):
        check_flow(broken)
    with pytest.raises(ValueError, match="steps"):
        fit_reverse_kl(target, realnvp_init(3, 1, (4,)), steps=0)
    with pytest.raises(ValueError, match="draws"):
        fit_forward_kl(np.zeros((5, 2)), realnvp_init(3, 1, (4,)))


def test_save_and_load_a_flow(tmp_path):
    flow = _flow(4)
    path = tmp_path / "flow.npz"
    save_flow(path, flow, {"target": "funnel"})
    back, meta = load_flow(path)
    assert meta == {"target": "funnel"} and type(back) is L.RealNVP
    z = np.random.default_rng(0).standard_normal(D)
    np.testing.assert_array_equal(numpy_twin(L.flow_forward)(back, z),
                                  numpy_twin(L.flow_forward)(flow, z))  # fmt: skip


# -- fitting ---------------------------------------------------------------------------------------
@pytest.mark.slow  # training
def test_reverse_kl_fits_a_gaussian():
    """A short reverse-KL fit to N(m, diag(s²)) (2-D): the loss approaches −log Z and the
    pushed-forward base has the target's mean and scales."""
    m, s = np.array([2.0, -1.0]), np.array([3.0, 0.5])
    target = langevin.targets.gaussian(2, mean=m, cov=s**2)
    flow, hist = fit_reverse_kl(target, realnvp_init(2, 2, (8, 8), seed=0), steps=120,
                                batch_size=64, learning_rate=5e-2, progress=False)  # fmt: skip
    log_z = np.log(2 * np.pi) + np.sum(np.log(s))  # the built-in Gaussian drops its constant
    assert abs(np.mean(hist[-30:]) + log_z) < 0.05  # KL(q‖π) < 0.05 nats
    x = latent_to_x(flow, np.random.default_rng(0).standard_normal((4000, 2)))
    np.testing.assert_allclose(x.mean(0), m, atol=0.15)
    np.testing.assert_allclose(x.std(0), s, rtol=0.06)


@pytest.mark.slow
def test_forward_kl_fits_draws():
    rng = np.random.default_rng(1)
    m, s = np.array([-1.0, 2.0]), np.array([0.5, 2.0])
    draws = m + s * rng.standard_normal((3000, 2))
    flow, hist = fit_forward_kl(draws, realnvp_init(2, 2, (8, 8), seed=0), steps=300,
                                learning_rate=2e-2, progress=False)  # fmt: skip
    assert hist[-1] < hist[0]
    x = latent_to_x(flow, rng.standard_normal((4000, 2)))
    np.testing.assert_allclose(x.mean(0), m, atol=0.15)
    np.testing.assert_allclose(x.std(0), s, rtol=0.08)


def test_flowjax_bijection_as_the_flow(x64):
    """A flowjax affine bijection x = μ + σ ⊙ z: the latent log-density is
    log π(μ + σ ⊙ z) + Σ log σ, with its gradient by autodiff."""
    bijections = pytest.importorskip("flowjax.bijections")
    from langevin.flows import from_flowjax

    target = langevin.targets.gaussian(3, mean=[1.0, -2.0, 0.5], cov=[1.0, 4.0, 0.25])
    loc, scale = jnp.array([0.5, 1.0, -1.0]), jnp.array([2.0, 0.5, 1.5])
    latent = from_flowjax(target, bijections.Affine(loc, scale))
    z = jnp.array([0.3, -0.7, 1.1])
    expected = target.jax_logdensity(loc + scale * z) + jnp.sum(jnp.log(scale))
    np.testing.assert_allclose(float(latent.jax_logdensity(z)), float(expected), rtol=1e-12)
    np.testing.assert_allclose(latent.to_x(np.asarray(z)), np.asarray(loc + scale * z))
    with pytest.raises(ValueError, match="shape"):
        from_flowjax(target, bijections.Affine(jnp.zeros(2), jnp.ones(2)))
