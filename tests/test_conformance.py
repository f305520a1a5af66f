"""The kernel conformance suite: every kernel exported from ``langevin.kernels`` goes through it.

Checks, on both backends: the same noise gives the same chain (to 1e-12 in float64); the
state keeps its structure across steps; the info fields the driver relies on are present;
float32 stays float32 on JAX; warm-up adaptation agrees across backends too; the kernel's
declared properties are consistent.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import langevin
from langevin.adaptation.dual_averaging import DualAveraging, DualAveragingParams
from langevin.backends import jax_backend, numba_backend
from langevin.kernels.base import Kernel
from langevin.spec import NoiseKind, draw_numpy

KERNELS = [
    # A constructor that dispatches to one kernel class per variant (KineticLangevin: one
    # per discretization) is checked through every variant.
    variant
    for name in langevin.kernels.__all__
    if isinstance(getattr(langevin.kernels, name), type)
    and issubclass(getattr(langevin.kernels, name), Kernel)
    and getattr(langevin.kernels, name) is not Kernel
    for variant in getattr(getattr(langevin.kernels, name), "variants", lambda: None)()
    or (getattr(langevin.kernels, name),)
]
CHAINS, STEPS, DIM = 3, 60, 4


def make_kernel(cls, step_size=0.05):
    """A kernel instance with a small step size (other parameters at their defaults)."""
    return cls(step_size=step_size)


def shared_noise(kernel, seed=0, steps=STEPS, chains=CHAINS, dim=DIM):
    """The kernel's noise for every chain, (C, T, ...) arrays from one seed, drawn by each
    noise kind's own NumPy hook: the same numbers go to both backends."""
    noise = draw_numpy(kernel.noise(dim), np.random.default_rng(seed), (chains, steps))
    return noise, noise


def shared_init_noise(kernel, seed=2, chains=CHAINS, dim=DIM):
    return draw_numpy(kernel.init_noise(dim), np.random.default_rng(seed), (chains,))


def starts(seed=1):
    return np.random.default_rng(seed).standard_normal((CHAINS, DIM))


def test_every_kernel_is_covered():
    assert {k.__name__ for k in KERNELS} >= {"ULA", "MALA"}


@pytest.mark.parametrize("kernel_cls", KERNELS, ids=lambda k: k.__name__)
def test_declared_properties(kernel_cls):
    kernel = make_kernel(kernel_cls)
    assert dataclasses.is_dataclass(kernel) and kernel.__dataclass_params__.frozen
    if kernel_cls.exact:
        assert kernel_cls.bias_order is None
    else:
        assert kernel_cls.bias_order is not None and kernel_cls.bias_order > 0
    assert {"acceptance_rate", "diverging"} <= set(kernel_cls.Info._fields)
    assert isinstance(kernel_cls.example(), kernel_cls)
    for d in (*kernel.noise(DIM), *kernel.init_noise(DIM)):
        assert isinstance(d, NoiseKind)
    with pytest.raises(ValueError, match="step_size"):
        kernel_cls(step_size=0.0)
    with pytest.raises(ValueError, match="step_size"):
        kernel_cls(step_size=-1.0)
    with pytest.raises(TypeError, match="step_size"):
        kernel_cls(step_size="0.1")


def _run_both(kernel, target, noise_nb, noise_jax, x0, *, adapt=False, steps=STEPS):
    step = np.full(CHAINS, kernel.step_size)
    da_params = DualAveragingParams(0.6, 0.05, 10.0, 0.75)
    da = DualAveraging(kernel, 0.6).initial_state(step)
    init_noise = shared_init_noise(kernel)
    p_nb = numba_backend.prepare(kernel, target, DIM, np.float64)
    s_nb = numba_backend.init(p_nb, x0, noise=init_noise)
    r_nb = numba_backend.run(p_nb, s_nb, steps, step, noise=noise_nb, adapt=adapt,
                             adaptation=da, adaptation_params=da_params)
    p_jx = jax_backend.prepare(kernel, target, DIM, np.float64)
    s_jx = jax_backend.init(p_jx, x0, noise=init_noise)
    r_jx = jax_backend.run(p_jx, s_jx, steps, step, noise=noise_jax, adapt=adapt,
                           adaptation=da, adaptation_params=da_params)
    return (s_nb, r_nb), (s_jx, r_jx)


@pytest.mark.parametrize("kernel_cls", KERNELS, ids=lambda k: k.__name__)
@pytest.mark.parametrize("adapt", [False, True], ids=["fixed", "adapting"])
def test_same_noise_same_chain(kernel_cls, adapt, gaussian4):
    target, _, _ = gaussian4
    # h·λ_max = 1: inside the stability region, so round-off is not amplified step by step
    kernel = make_kernel(kernel_cls, step_size=0.1)
    if adapt and not kernel_cls.adapts_step_size:
        pytest.skip("kernel does not adapt its step size")
    noise_nb, noise_jax = shared_noise(kernel)
    x0 = starts()
    steps, tol = STEPS, 1e-12
    if adapt and kernel_cls.__name__ == "Barker":
        # An adapting chain feeds each acceptance back into the next h, which amplifies a
        # last-bit difference between the backends' evaluations of the target (measured over
        # 12 noise seeds: Barker up to 1.3e-14 after 8 steps, 4e-8 after 60; MALA 7.5e-15 and
        # 1.3e-10). Barker's sign choice makes it the most sensitive: compare 8 steps, at the
        # same 1e-12.
        steps = 8
    if adapt and "n_grad" in kernel_cls.Info._fields:
        # Trajectory kernels (HMC): dual averaging drives h onto the integrator's stability
        # limit, where a trajectory's end point is extremely sensitive to h, and feeds each
        # acceptance back into the next h. A last-bit difference between the backends' dot
        # products then grows along an adapting chain (measured over 12 noise seeds: up to
        # 3e-11 after 5 steps, 2e-9 after 10, O(1) after 60). Compare 8 steps to 1e-8.
        steps, tol = 8, 1e-8
    (_, r_nb), (_, r_jx) = _run_both(kernel, target, noise_nb, noise_jax, x0, adapt=adapt,
                                     steps=steps)  # fmt: skip
    np.testing.assert_allclose(r_nb.position, r_jx.position, rtol=0, atol=tol)
    np.testing.assert_allclose(r_nb.logdensity, r_jx.logdensity, rtol=tol, atol=tol)
    assert set(r_nb.info) == set(r_jx.info) == set(kernel_cls.Info._fields)
    for name in r_nb.info:  # relative too: a divergent trajectory's energy error is ~1e30
        np.testing.assert_allclose(r_nb.info[name], r_jx.info[name], rtol=tol, atol=tol)
    np.testing.assert_array_equal(r_nb.n_done, steps)
    np.testing.assert_array_equal(r_jx.n_done, steps)
    # The chain actually moved (a kernel that did nothing would also "agree").
    assert np.all(np.abs(r_nb.position[:, -1] - x0) > 0)
    if adapt:
        log_nb = np.asarray(r_nb.adaptation.log_step_avg)
        np.testing.assert_allclose(log_nb, np.asarray(r_jx.adaptation.log_step_avg), atol=tol)
        assert np.all(log_nb != np.log(kernel.step_size))


@pytest.mark.parametrize("kernel_cls", KERNELS, ids=lambda k: k.__name__)
def test_state_structure_is_stable(kernel_cls, gaussian4):
    target, _, _ = gaussian4
    kernel = make_kernel(kernel_cls)
    noise_nb, noise_jax = shared_noise(kernel)
    (s0_nb, r_nb), (s0_jx, r_jx) = _run_both(kernel, target, noise_nb, noise_jax, starts())
    assert type(s0_nb) is type(r_nb.state) is kernel_cls.State
    for a, b in zip(s0_nb, r_nb.state):
        assert np.shape(a) == np.shape(b)
        assert np.asarray(a).dtype == np.asarray(b).dtype
    assert type(r_jx.state) is type(s0_jx) is kernel_cls.State
    assert jax.tree_util.tree_structure(r_jx.state) == jax.tree_util.tree_structure(s0_jx)
    for a, b in zip(jax.tree_util.tree_leaves(s0_jx), jax.tree_util.tree_leaves(r_jx.state)):
        assert a.shape == b.shape and a.dtype == b.dtype


@pytest.mark.parametrize("kernel_cls", KERNELS, ids=lambda k: k.__name__)
def test_float32_is_kept_on_jax(kernel_cls, gaussian4):
    target, _, _ = gaussian4
    kernel = make_kernel(kernel_cls)
    x0 = starts().astype(np.float32)
    trace = langevin.sample(target, kernel, backend="jax", chains=CHAINS, warmup=20, draws=30,
                            initial_position=x0, seed=0, progress=False)
    assert trace.draws.dtype == np.float32
    assert trace.sample_stats["lp"].dtype == np.float32
    assert np.all(np.isfinite(trace.draws))
    p = jax_backend.prepare(kernel, target, DIM, np.float32)
    state = jax_backend.init(p, x0)
    for leaf in jax.tree_util.tree_leaves(state):
        assert leaf.dtype == jnp.float32


@pytest.mark.parametrize("kernel_cls", KERNELS, ids=lambda k: k.__name__)
def test_numba_draws_in_loop_as_draw_noise_does(kernel_cls, gaussian4):
    """The loop that draws its own noise and the loop fed ``draw_noise`` arrays agree exactly."""
    target, _, _ = gaussian4
    kernel = make_kernel(kernel_cls, step_size=0.1)
    prepared = numba_backend.prepare(kernel, target, DIM, np.float64)
    states = numba_backend.init(prepared, starts())
    step = np.full(CHAINS, kernel.step_size)

    def rngs():
        return [np.random.default_rng(s) for s in np.random.SeedSequence(9).spawn(CHAINS)]

    own = numba_backend.run(prepared, states, STEPS, step, rngs=rngs())
    given = numba_backend.run(prepared, states, STEPS, step,
                              noise=numba_backend.draw_noise(kernel, DIM, STEPS, rngs()))
    np.testing.assert_array_equal(own.position, given.position)
    for name in own.info:
        np.testing.assert_array_equal(own.info[name], given.info[name])


def test_namespaces_define_the_same_names():
    """Kernel math may use only names every backend's ``xp`` defines (write once, run twice)."""
    from langevin.backends import jax_ops, numba_ops, numpy_ops

    assert set(numba_ops.__all__) == set(jax_ops.__all__)
    for namespace in (numba_ops, jax_ops, numpy_ops):
        missing = [n for n in numba_ops.__all__ if not hasattr(namespace, n)]
        assert not missing, (namespace.__name__, missing)
