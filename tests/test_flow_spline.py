"""Rational-quadratic spline couplings (langevin.flows.spline): on NumPy, Numba and JAX,
f⁻¹(f(z)) = z, log|det J| against the log-determinant of JAX's autodiff Jacobian, the
hand-written pullback against jax.vjp plus the autodiff gradient of log|det J| (all to
1e-12 in float64, so Numba = JAX), monotonicity and C¹ tails, the identity at
initialisation, and the spline flow wherever a RealNVP goes: flow_transformed (same value
and gradient on both backends), fitting, saving and loading."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import langevin
from langevin.backends import jax_backend, jax_ops, numba_backend
from langevin.flows import (
    ComposedFlow,
    SplineFlow,
    check_flow,
    fit_forward_kl,
    flow_functions,
    flow_transformed,
    latent_to_x,
    load_flow,
    realnvp_init,
    save_flow,
    spline_flow_init,
)
from langevin.flows import spline as S
from langevin.nn import jax_twin, numba_twin, numpy_twin, params_to_jax

D = 5


def _flow(seed=2):
    """A spline flow far from the identity (large conditioner weights, a non-trivial affine)."""
    p = spline_flow_init(D, 2, (6,), bins=4, bound=3.0, init_scale=0.8, seed=seed,
                         activation="silu")  # fmt: skip
    final = p.final._replace(shift=np.linspace(-1, 1, D), log_scale=np.linspace(-0.4, 0.5, D))
    return p._replace(final=final)


def _composed():
    """Spline blocks, then RealNVP blocks: one flow mixing the two coupling types."""
    nvp = realnvp_init(D, 2, (6,), seed=3, init_scale=0.6)
    return ComposedFlow(_flow(), nvp)


def _cases():
    flow = _flow()
    fns = flow_functions(flow)
    comp = flow_functions(_composed())
    return {
        "coupling": ((S.spline_forward_and_log_det, S.spline_inverse_and_log_det,
                      S.spline_pullback), flow.blocks[1].coupling),
        "flow": ((fns.forward_and_log_det, fns.inverse_and_log_det, fns.pullback), flow),
        "composed": ((comp.forward_and_log_det, comp.inverse_and_log_det, comp.pullback),
                     _composed()),
    }  # fmt: skip


def _points():
    """Points in several bins of each coordinate, one coordinate beyond the bound (a tail)."""
    rng = np.random.default_rng(7)
    z = rng.standard_normal((3, D)) * 1.5
    z[0, 2] = 4.0  # outside [−3, 3]
    z[1, 0] = -3.5
    return z


@pytest.mark.parametrize(
    "case",
    [
        "coupling",  # one coupling layer: the spline's math, compiled in seconds
        pytest.param("flow", marks=pytest.mark.slow),  # blocks of them: 47 CPU-s to compile
        pytest.param("composed", marks=pytest.mark.slow),
    ],
)
def test_inverse_log_det_and_pullback_on_every_backend(case, x64):
    """f⁻¹(f(z)) = z; log|det J| = slogdet of jax.jacfwd; pullback = vjp + ∇ log|det J|;
    NumPy, Numba and JAX agree with the autodiff reference to 1e-12 (the round trip through
    steep blocks to 1e-10, 1e-9 through the composition of four: the inverse's rounding is
    amplified by the Jacobians)."""
    (fld, inv, pull), p = _cases()[case]
    pj = params_to_jax(p)
    g = np.random.default_rng(1).standard_normal(D)
    fwd = jax_twin(fld)

    @jax.jit
    def on_jax(u, gg):  # the autodiff reference and the JAX twins, in one compiled program
        def forward(v):
            return fwd(pj, v)[0]

        _, vjp = jax.vjp(forward, u)
        ref = vjp(gg)[0] + jax.grad(lambda v: fwd(pj, v)[1])(u)
        x, ld = fwd(pj, u)
        back, ld_back = jax_twin(inv)(pj, x)
        return jax.jacfwd(forward)(u), ref, (x, ld, back, ld_back, jax_twin(pull)(pj, u, gg))

    # the inverse's rounding grows with each steep block it passes back through
    tol_back = {"coupling": 1e-12, "flow": 1e-10, "composed": 1e-9}[case]
    tol_ld = {"coupling": 1e-11, "flow": 1e-11, "composed": 1e-9}[case]  # relative
    for z in _points():
        jac, ref, on_jax_out = on_jax(jnp.asarray(z), jnp.asarray(g))
        jac, ref = np.asarray(jac), np.asarray(ref)
        sign, logabs = np.linalg.slogdet(jac)
        assert sign != 0 and (case != "coupling" or sign > 0)  # couplings are increasing
        assert np.max(np.abs(jac - np.diag(np.diag(jac)))) > 1e-3  # not elementwise: coupled
        for name, twin in (("numpy", numpy_twin), ("numba", numba_twin), ("jax", None)):
            if twin is None:
                x, ld, back, ld_back, pulled = on_jax_out
            else:
                x, ld = twin(fld)(p, z)
                back, ld_back = twin(inv)(p, x)
                pulled = twin(pull)(p, z, g)
            np.testing.assert_allclose(np.asarray(back), z, rtol=0, atol=tol_back, err_msg=name)
            np.testing.assert_allclose(float(ld), logabs, rtol=0, atol=1e-12, err_msg=name)
            # log|det J| at the round trip's point: off by ∇ log|det J| times its error
            np.testing.assert_allclose(float(ld_back), logabs, rtol=tol_ld, atol=1e-12,
                                       err_msg=name)  # fmt: skip
            np.testing.assert_allclose(np.asarray(pulled), ref, rtol=1e-12, atol=1e-12,
                                       err_msg=name)  # fmt: skip


def test_monotone_and_continuous_with_linear_tails(x64):
    """Each free coordinate's spline is strictly increasing and continuous across knots and at
    ±B, with slope 1 in the tails; the mask's coordinates pass unchanged."""
    c = _flow().blocks[0].coupling
    fwd = numba_twin(S.spline_forward_and_log_det)
    free = np.where(c.mask == 0)[0]
    base = np.random.default_rng(3).standard_normal(D)
    grid = np.linspace(-4.0, 4.0, 4001)
    for i in free:
        xs = np.empty_like(grid)
        for j, t in enumerate(grid):
            z = base.copy()
            z[i] = t
            x = fwd(c, z)[0]
            np.testing.assert_array_equal(x[c.mask == 1], z[c.mask == 1])
            xs[j] = x[i]
        steps = np.diff(xs)
        assert np.all(steps > 0)  # strictly increasing
        h = grid[1] - grid[0]
        # no jumps: the largest steps shrink when their cell is refined (a jump would not)
        for j in np.argsort(steps)[-3:]:
            fine = np.linspace(grid[j], grid[j + 1], 201)
            sub = np.diff([fwd(c, np.where(np.arange(D) == i, t, base))[0][i] for t in fine])
            assert np.all(sub > 0) and np.max(sub) < 0.05 * steps[j]
        tails = np.abs(grid) > 3.0 + h
        np.testing.assert_allclose(xs[tails], grid[tails], atol=1e-12)  # identity beyond ±B
        # continuous with slope 1 at ±B from inside (C¹: the boundary derivatives are 1)
        for edge in (-3.0, 3.0):
            inward = -np.sign(edge)
            a, b = (fwd(c, np.where(np.arange(D) == i, edge + inward * e, base))[0][i]
                    for e in (1e-7, 2e-7))  # fmt: skip
            assert abs(a - edge) < 1e-6
            assert abs((b - a) / (inward * 1e-7) - 1.0) < 1e-4


def test_identity_at_initialisation(x64):
    """With zero output weights the spline flow is the identity (uniform bins, unit
    derivatives), log|det J| = 0 and the pullback passes the gradient through: the whole
    flow on NumPy, one coupling on Numba (the whole flow's Numba twins cost ~16 CPU-s to
    compile; the slow whole-flow case above compiles them)."""
    p = spline_flow_init(D, 2, (6,), bins=4, init_scale=0.0, permute="none")
    fns = flow_functions(p)
    coupling = p.blocks[1].coupling
    rng = np.random.default_rng(0)
    for twin, fld, pull, params in (
        (numpy_twin, fns.forward_and_log_det, fns.pullback, p),
        (numba_twin, S.spline_forward_and_log_det, S.spline_pullback, coupling),
    ):
        z, g = rng.standard_normal(D) * 2, rng.standard_normal(D)
        z[0] = 7.0  # a tail
        x, ld = twin(fld)(params, z)
        np.testing.assert_allclose(x, z, atol=1e-12)
        assert abs(float(ld)) < 1e-12
        np.testing.assert_allclose(twin(pull)(params, z, g), g, atol=1e-12)
    # with a random permutation it is a permutation of the coordinates, the same otherwise
    q = spline_flow_init(D, 2, (6,), bins=4, init_scale=0.0, permute="random", seed=1)
    assert np.any(q.blocks[0].permutation.perm != np.arange(D))
    x = numpy_twin(flow_functions(q).forward)(q, z)
    np.testing.assert_allclose(np.sort(x), np.sort(z), atol=1e-12)


def test_float32_round_trip_on_jax():
    """In JAX's default precision (float32 without x64) the inverse still undoes the forward
    map to float32 accuracy."""
    p = _flow()
    fns = flow_functions(p)
    pj = params_to_jax(p, jnp.float32)
    z = jnp.asarray(_points()[1], jnp.float32)

    @jax.jit
    def round_trip(u):
        x, ld = jax_twin(fns.forward_and_log_det)(pj, u)
        return (x, ld, *jax_twin(fns.inverse_and_log_det)(pj, x))

    x, ld, back, ld2 = round_trip(z)
    assert x.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(back), np.asarray(z), atol=5e-5)
    assert abs(float(ld) - float(ld2)) < 1e-3


@pytest.mark.slow  # compiles the target's Numba value-and-gradient around the spline flow
def test_spline_flow_transformed_value_and_gradient(x64):
    """The spline-transformed funnel: value and gradient the same on Numba and JAX (1e-12),
    and equal to jax.grad of log π(f(z)) + log|det J_f(z)| (no hand-written pullback)."""
    target = langevin.targets.neals_funnel(D)
    flow = _flow(4)
    latent = flow_transformed(target, flow)
    fns = flow_functions(flow)
    z = np.random.default_rng(11).standard_normal(D) * 0.7
    nb_form = numba_backend.bind_target(latent, D)
    v_nb, g_nb = latent.numba_value_and_grad(z, nb_form.data)
    jx_form = jax_backend.bind_target(latent, D, jnp.float64)
    vg = jax.jit(lambda u, data: jax_ops.value_and_grad(jx_form.build(data), u))
    v_jx, g_jx = vg(jnp.asarray(z), jx_form.data)
    np.testing.assert_allclose(v_nb, float(v_jx), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g_nb, np.asarray(g_jx), rtol=1e-12, atol=1e-12)
    # the value is log π(f(z)) + log|det J_f(z)| (the pullback is checked against autodiff above)
    x, ld = numpy_twin(fns.forward_and_log_det)(flow, z)
    np.testing.assert_allclose(v_nb, float(target.jax_logdensity(jnp.asarray(x))) + ld,
                               rtol=1e-12)  # fmt: skip
    draws = np.random.default_rng(2).standard_normal((2, 3, D))
    out = latent.constrain(draws)
    np.testing.assert_allclose(out["v"], latent_to_x(flow, draws)[..., 0])
    z_back = latent.to_z(latent_to_x(flow, draws[0, 0]))
    np.testing.assert_allclose(z_back, draws[0, 0], atol=1e-12)


def test_save_load_and_bad_spline_flows(tmp_path):
    flow = _flow(5)
    path = tmp_path / "spline.npz"
    save_flow(path, flow, {"bins": 5})
    back, meta = load_flow(path)
    assert type(back) is SplineFlow and meta == {"bins": 5}
    z = np.random.default_rng(0).standard_normal(D)
    fwd = numpy_twin(flow_functions(flow).forward_and_log_det)
    np.testing.assert_array_equal(fwd(back, z)[0], fwd(flow, z)[0])
    with np.load(path, allow_pickle=False) as f:  # no pickle anywhere in the file
        assert all(f[k].dtype != object for k in f.files)
    c = flow.blocks[0].coupling
    with pytest.raises(ValueError, match=r"params\.blocks\[0\]\.coupling\.bound"):
        check_flow(flow._replace(blocks=(flow.blocks[0]._replace(
            coupling=c._replace(bound=-c.bound)),)), argname="params")  # fmt: skip
    with pytest.raises(ValueError, match="bins must be"):
        spline_flow_init(3, bins=1)
    with pytest.raises(ValueError, match="bound must be"):
        spline_flow_init(3, bound=0.0)
    with pytest.raises(TypeError, match="flow must be"):
        flow_functions({"not": "a flow"})


@pytest.mark.slow  # training compiles the flow's loss and gradient on JAX
def test_forward_kl_trains_a_spline_flow():
    """A few forward-KL steps on JAX (x64 off or on) lower the spline flow's negative
    log-likelihood of skewed draws (the conditioners and final affine train)."""
    rng = np.random.default_rng(1)
    draws = np.stack([rng.gamma(2.0, 1.0, 2000) - 2.0, rng.standard_normal(2000)], axis=1)
    flow = spline_flow_init(2, 2, (8,), bins=4, bound=4.0, seed=0)
    fitted, hist = fit_forward_kl(draws, flow, steps=60, batch_size=256, learning_rate=2e-2,
                                  progress=False)  # fmt: skip
    assert type(fitted) is SplineFlow
    nll = -np.mean([numpy_twin(flow_functions(fitted).log_density)(fitted, x) for x in draws])
    nll0 = -np.mean([numpy_twin(flow_functions(flow).log_density)(flow, x) for x in draws])
    assert nll < nll0 - 0.1, (nll0, nll)
    assert np.mean(hist[-10:]) < np.mean(hist[:10])


def test_composed_flow_is_the_composition(tmp_path):
    """A ComposedFlow (spline blocks, then RealNVP blocks) maps as its parts in sequence, adds
    their log-determinants, saves and loads without pickle, and fits (its split into
    trainable parts and back is the identity)."""
    from langevin.flows.training import merge_trainable, split_trainable

    comp = _composed()
    z = np.random.default_rng(4).standard_normal(D)
    y, ld1 = numpy_twin(flow_functions(comp.inner).forward_and_log_det)(comp.inner, z)
    x, ld2 = numpy_twin(flow_functions(comp.outer).forward_and_log_det)(comp.outer, y)
    xc, ldc = numpy_twin(flow_functions(comp).forward_and_log_det)(comp, z)
    np.testing.assert_array_equal(xc, x)
    assert ldc == ld1 + ld2
    np.testing.assert_allclose(numpy_twin(flow_functions(comp).inverse)(comp, x), z, atol=1e-10)
    save_flow(tmp_path / "c.npz", comp)
    back, _ = load_flow(tmp_path / "c.npz")
    assert type(back) is ComposedFlow and type(back.inner) is SplineFlow
    np.testing.assert_array_equal(numpy_twin(flow_functions(back).forward)(back, z), x)
    again = merge_trainable(*split_trainable(comp))
    np.testing.assert_array_equal(numpy_twin(flow_functions(again).forward)(again, z), x)
    with pytest.raises(ValueError, match=r"params\.outer: the flow has dimension 3"):
        check_flow(ComposedFlow(comp.inner, realnvp_init(3, 1, (4,))), argname="params")
