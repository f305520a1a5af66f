"""Contract 2: the open vocabulary (field and noise kinds), targets as named capabilities,
pytree parameters, backend declarations, noise at init and the namespace table.

Each test uses a toy kernel written here, as a user would write one in a notebook cell.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax.numpy as jnp
import numba
import numpy as np
import pytest

import langevin
from langevin.backends import jax_backend, jax_ops, numba_backend, numba_ops, numpy_ops
from langevin.backends.namespace import NAMES, TABLE
from langevin.backends.portable import make_twin, portable
from langevin.kernels.base import GradientState, Kernel, init_gradient_state
from langevin.kernels.mh import MHInfo
from langevin.spec import Array, Flag, Index, Normal, Scalar, Uniform, Vector, draw_numpy
from tests.stats_helpers import SUITE_FALSE_ALARM, SUITE_Z_TESTS, Z_CRIT

P_CRIT = SUITE_FALSE_ALARM / SUITE_Z_TESTS
xp: Any = None


class ToyInfo(NamedTuple):
    acceptance_rate: Scalar
    diverging: Flag


# -- capabilities --------------------------------------------------------------------------------
class ProxNoise(NamedTuple):
    normal: Vector


@portable
def prox_step(state, noise, step_size, params, target):
    """A MYULA-like move: x' = prox_{h g}(x + h ∇f(x) + √(2h) ξ) (the test needs only the call)."""
    y = state.position + step_size * state.grad + xp.sqrt(2.0 * step_size) * noise.normal
    x = xp.prox(target, y, step_size)
    lp, g = xp.value_and_grad(target, x)
    return GradientState(x, lp, g), ToyInfo(1.0, False)


@dataclasses.dataclass(frozen=True)
class ProxToy(Kernel):
    step_size: float
    State = GradientState
    Info = ToyInfo
    Noise = ProxNoise
    exact = False
    bias_order = 1.0
    requires = frozenset({"value_and_grad", "prox"})
    init_math = staticmethod(init_gradient_state)
    step_math = staticmethod(prox_step)

    def noise(self, dim):
        return ProxNoise(Normal((dim,)))


@numba.njit
def _l1_prox(x, lam, data):
    """prox of g = w‖x‖₁: soft-thresholding at λw."""
    t = lam * data[0]
    return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


@numba.njit
def _quad_vg(x, data):
    return -0.5 * np.dot(x, x), -x


def _prox_target():
    def jax_prox(x, lam):
        return jnp.sign(x) * jnp.maximum(jnp.abs(x) - lam * 0.3, 0.0)

    return langevin.Target(
        dim=3,
        numba={"value_and_grad": _quad_vg, "prox": _l1_prox},
        jax={"logdensity": lambda x: -0.5 * jnp.sum(x * x), "prox": jax_prox},
        data=(0.3,),
    )


def test_a_required_capability_is_called_on_both_backends(x64):
    target = _prox_target()
    assert "prox" in target.capabilities("numba") and "prox" in target.capabilities("jax")
    kernel = ProxToy(0.2)
    noise = draw_numpy(kernel.noise(3), np.random.default_rng(1), (2, 30))
    x0 = np.random.default_rng(2).standard_normal((2, 3))
    out = []
    for be in (numba_backend, jax_backend):
        p = be.prepare(kernel, target, 3, np.float64)
        out.append(be.run(p, be.init(p, x0), 30, np.full(2, 0.2), noise=noise))
    np.testing.assert_allclose(out[0].position, out[1].position, rtol=0, atol=1e-12)
    assert np.any(out[0].position == 0.0)  # the soft threshold did act


def test_a_missing_capability_is_refused_before_compiling(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("compiled before checking")

    monkeypatch.setattr(numba_backend, "_loop_for", fail)
    monkeypatch.setattr(jax_backend, "_build_runner", fail)
    target = langevin.targets.gaussian(3)
    for backend, how in (("numba", "from_numba"), ("jax", "from_jax")):
        with pytest.raises(TypeError, match=rf"ProxToy requires .*'prox'.*{how}"):
            langevin.sample(target, ProxToy(0.1), backend=backend, progress=False)


def test_a_score_only_target_has_only_the_score():
    @numba.njit
    def score(x):
        return -x

    target = langevin.Target.from_numba(score=score, dim=2)
    assert target.capabilities("numba") == {"score"}
    with pytest.raises(TypeError, match="MALA requires the target capability 'value_and_grad'"):
        langevin.sample(target, langevin.MALA(0.1), progress=False)


def test_a_kernel_may_declare_its_backends():
    @dataclasses.dataclass(frozen=True)
    class JaxOnly(ProxToy):
        backends = frozenset({"jax"})
        requires = frozenset({"value_and_grad"})

    with pytest.raises(TypeError, match=r"JaxOnly runs only on backend\(s\) \['jax'\]"):
        numba_backend.prepare(JaxOnly(0.1), langevin.targets.gaussian(2), 2, np.float64)


# -- pytree parameters ---------------------------------------------------------------------------
class Layer(NamedTuple):
    weight: Any  # (dim, dim)
    bias: Any  # (dim,)


class NetParams(NamedTuple):
    layer: Layer
    scale: Any  # a float


class NetNoise(NamedTuple):
    normal: Vector
    uniform: Scalar


class NetState(NamedTuple):
    position: Vector
    logdensity: Scalar
    grad: Vector
    memory: Array("dim", 2)  # a fixed-shape array per member


@portable
def net_init(position, noise, params, target):
    lp, g = xp.value_and_grad(target, position)
    memory = xp.zeros((position.shape[0], 2)) + 0.0 * lp
    return NetState(position, lp, g, memory)


@portable
def net_step(state, noise, step_size, params, target):
    """A random-walk Metropolis step whose proposal passes through a tiny 'network':
    y = x + h · scale · tanh-free affine map (W ξ + b), symmetric because W ξ is."""
    layer = params.layer
    shift = xp.dot(layer.weight, noise.normal) * params.scale
    y = state.position + step_size * shift
    lp, g = xp.value_and_grad(target, y)
    accepted = xp.log(noise.uniform) < lp - state.logdensity
    prob = xp.exp(xp.minimum(lp - state.logdensity, 0.0))
    memory = state.memory + 1.0
    proposal = NetState(y, lp, g, memory)
    stay = NetState(state.position, state.logdensity, state.grad, memory)
    new = xp.select_tree(accepted, proposal, stay)
    return new, MHInfo(prob, accepted, False)


@dataclasses.dataclass(frozen=True)
class NetKernel(Kernel):
    step_size: float
    State = NetState
    Info = MHInfo
    Noise = NetNoise
    exact = True
    init_math = staticmethod(net_init)
    step_math = staticmethod(net_step)

    def noise(self, dim):
        return NetNoise(Normal((dim,)), Uniform(()))

    def params(self):
        return NetParams(Layer(np.eye(3) * 0.5, np.zeros(3)), 1.0)


def _net_params(seed, members):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    one = NetParams(Layer(q, rng.standard_normal(3)), 0.7)
    return numba_backend.broadcast_params(one, members)


def test_pytree_params_agree_across_backends_and_compile_once(gaussian4, x64):
    target = langevin.targets.gaussian(3)
    kernel = NetKernel(0.5)
    noise = draw_numpy(kernel.noise(3), np.random.default_rng(7), (2, 40))
    x0 = np.random.default_rng(8).standard_normal((2, 3))
    out = []
    for be in (numba_backend, jax_backend):
        p = be.prepare(kernel, target, 3, np.float64)
        out.append(be.run(p, be.init(p, x0), 40, np.full(2, 0.5), noise=noise,
                          params=_net_params(0, 2)))  # fmt: skip
    np.testing.assert_allclose(out[0].position, out[1].position, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(out[1].state.memory), 40.0)
    assert 0 < out[0].info["is_accepted"].mean() < 1
    loops = {k: len(v.signatures) for k, v in numba_backend._LOOPS.items()}
    p = numba_backend.prepare(kernel, target, 3, np.float64)
    numba_backend.run(p, numba_backend.init(p, x0), 40, np.full(2, 0.5), noise=noise,
                      params=_net_params(1, 2))  # a new value of the weights  # fmt: skip
    assert {k: len(v.signatures) for k, v in numba_backend._LOOPS.items()} == loops


# -- noise at init -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_kinetic_chains_start_with_momentum_from_n_0_m(backend, x64):
    """init draws p = ξ/√u ~ N(0, diag(1/u)): z-tests of the mean and variance of p·√u."""
    n, u = 4000, np.array([0.25, 1.0, 4.0])
    kernel = langevin.KineticLangevin(0.1, friction=2.0, discretization="baoab", inverse_mass=u)
    be = numba_backend if backend == "numba" else jax_backend
    p = be.prepare(kernel, langevin.targets.gaussian(3), 3, np.float64)
    sources = be.noise_sources(np.random.SeedSequence(4), n)
    state = be.init(p, np.zeros((n, 3)), None, None, sources)
    z = np.asarray(state.momentum) * np.sqrt(u)
    mean_z = z.mean(0) / np.sqrt(1.0 / n)
    var_z = (z.var(0, ddof=1) - 1.0) / np.sqrt(2.0 / (n - 1))
    assert np.all(np.abs(mean_z) < Z_CRIT) and np.all(np.abs(var_z) < Z_CRIT), (mean_z, var_z)


# -- the namespace table -------------------------------------------------------------------------
@portable
def soft_threshold(x, lam):
    """Elementwise on every backend: written once, for scalars and arrays."""
    return xp.sign(x) * xp.maximum(xp.abs(x) - lam, 0.0)


@portable
def elementwise_mix(x, lo, hi):
    return xp.clip(x, lo, hi) + xp.where(x > 0.0, x, 0.0 * x) + xp.minimum(x, 0.5)


def test_elementwise_names_are_elementwise_on_every_backend():
    x = np.array([-2.0, -0.1, 0.0, 0.3, 1.5])
    expected = np.sign(x) * np.maximum(np.abs(x) - 0.2, 0.0)
    mix = np.clip(x, -1.0, 1.0) + np.where(x > 0, x, 0.0) + np.minimum(x, 0.5)
    for ns, compile_fn in ((numba_ops, numba.njit), (jax_ops, lambda f: f),
                           (numpy_ops, lambda f: f)):  # fmt: skip
        st = make_twin(soft_threshold, ns, compile_fn, {})
        np.testing.assert_allclose(np.asarray(st(x, 0.2)), expected)
        assert float(st(-0.5, 0.2)) == pytest.approx(-0.3)  # scalars too
        mx = make_twin(elementwise_mix, ns, compile_fn, {})
        np.testing.assert_allclose(np.asarray(mx(x, -1.0, 1.0)), mix)
        assert float(mx(2.0, -1.0, 1.0)) == pytest.approx(1.0 + 2.0 + 0.5)


def test_every_namespace_defines_exactly_the_table():
    assert len(NAMES) == len(set(NAMES)) == len(TABLE)
    for ns in (numba_ops, jax_ops, numpy_ops):
        assert sorted(ns.__all__) == sorted(NAMES)
        assert all(hasattr(ns, n) for n in NAMES)


# -- per-datum likelihoods with minibatch indices (the SG-MCMC pathway) --------------------------
class SGNoise(NamedTuple):
    batch: Vector
    normal: Vector


@portable
def sg_step(state, noise, step_size, params, target):
    """An SGLD-like step: the minibatch estimate (n/b) Σ_{i∈batch} ∇log L_i + ∇log p."""
    ll, gl = xp.loglik(target, state.position, noise.batch)
    lp, gp = xp.logprior(target, state.position)
    scale = params.n_data / (noise.batch.shape[0] + 0.0)
    grad = gp + scale * gl
    x = state.position + step_size * grad + xp.sqrt(2.0 * step_size) * noise.normal
    return GradientState(x, lp + scale * ll, grad), ToyInfo(1.0, False)


class SGParams(NamedTuple):
    n_data: Any


@portable
def sg_init(position, noise, params, target):
    lp, g = xp.logprior(target, position)
    return GradientState(position, lp, g)


@dataclasses.dataclass(frozen=True)
class SGToy(Kernel):
    step_size: float
    State = GradientState
    Info = ToyInfo
    Noise = SGNoise
    exact = False
    bias_order = 1.0
    requires = frozenset({"loglik", "logprior"})
    init_math = staticmethod(sg_init)
    step_math = staticmethod(sg_step)

    def noise(self, dim):
        return SGNoise(Index(20, 5), Normal((dim,)))

    def params(self):
        return SGParams(20)


@numba.njit
def _gauss_loglik(x, idx, data):
    """Σ_{i∈idx} log N(y_i; x, I) and its gradient."""
    (y,) = data
    value = 0.0
    grad = np.zeros_like(x)
    for k in range(idx.shape[0]):
        d = y[idx[k]] - x
        value -= 0.5 * np.dot(d, d)
        grad += d
    return value, grad


@numba.njit
def _gauss_logprior(x, data):
    return -0.5 * np.dot(x, x), -x


def test_minibatch_likelihood_capabilities_on_both_backends(x64):
    """``loglik`` over minibatch indices and ``logprior``: Numba functions give value and
    gradient, the JAX ones values (gradients by autodiff); same noise, same chain."""
    y = np.random.default_rng(4).standard_normal((20, 2)) + 1.0
    yj = jnp.asarray(y)

    def jax_loglik(x, idx):
        d = yj[idx] - x
        return -0.5 * jnp.sum(d * d)

    target = langevin.Target(
        dim=2,
        numba={"loglik": _gauss_loglik, "logprior": _gauss_logprior},
        jax={"loglik": jax_loglik, "logprior": lambda x: -0.5 * jnp.sum(x * x)},
        data=(y,),
    )
    assert {"loglik", "logprior"} <= target.capabilities("jax") & target.capabilities("numba")
    kernel = SGToy(0.01)
    noise = draw_numpy(kernel.noise(2), np.random.default_rng(6), (2, 40))
    x0 = np.zeros((2, 2))
    out = []
    for be in (numba_backend, jax_backend):
        p = be.prepare(kernel, target, 2, np.float64)
        out.append(be.run(p, be.init(p, x0), 40, np.full(2, 0.01), noise=noise))
    np.testing.assert_allclose(out[0].position, out[1].position, rtol=0, atol=1e-12)
    # the drift is the minibatch estimate: from x = 0 the first step moves toward mean(y)
    first = out[0].position[:, 0] - np.sqrt(0.02) * noise.normal[:, 0]
    expected = 0.01 * (20 / 5) * np.stack([y[b].sum(0) for b in noise.batch[:, 0]])
    np.testing.assert_allclose(first, expected, rtol=1e-12, atol=1e-12)
