"""The kernel conformance suite: every kernel exported from ``langevin.kernels`` goes through it.

Checks, on both backends: the same noise gives the same chain (to 1e-12 in float64); the
state keeps its structure across steps; the info fields the driver relies on are present;
float32 stays float32 on JAX; warm-up adaptation agrees across backends too; the kernel's
declared properties are consistent.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import chi2

import langevin
from langevin.adaptation.dual_averaging import DualAveraging, DualAveragingParams
from langevin.backends import jax_backend, numba_backend
from langevin.backends.portable import portable
from langevin.kernels.base import GradientState, Kernel, init_gradient_state
from langevin.spec import Flag, Index, NoiseKind, Scalar, Vector, draw_numpy
from tests.stats_helpers import SUITE_FALSE_ALARM, SUITE_Z_TESTS

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
P_CRIT = SUITE_FALSE_ALARM / SUITE_Z_TESTS
xp: Any = None  # bound by each backend (the toy kernels below are portable)
# 1e-12 agreement is a float64 property: JAX runs in float64 here (float32 is checked by
# test_float32_is_kept_on_jax, which passes float32 explicitly).
pytestmark = pytest.mark.usefixtures("x64")


def make_kernel(cls, step_size=0.05):
    """A kernel instance with a small step size (other parameters at their defaults); a kernel
    with its own example target (``example_target``) takes its ``example_step_size``, and a
    kernel whose parameters depend on the target (a minibatch kernel's ``n_data``) is built by
    its ``for_conformance(step_size, target)``."""
    step_size = getattr(cls, "example_step_size", step_size)
    build = getattr(cls, "for_conformance", None)
    if build is not None:
        return build(step_size, cls.example_target(DIM))
    return cls(step_size=step_size)


def problem(kernel_cls, gaussian4, seed=1):
    """The target and starts a kernel runs on: the Gaussian, or the kernel's own example
    target (a composite with a prox, a constrained support), started at its initial position."""
    make = getattr(kernel_cls, "example_target", None)
    if make is None:
        return gaussian4[0], starts(seed)
    target = make(DIM)
    return target, np.broadcast_to(target.initial_position, (CHAINS, DIM)).copy()


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
    r_nb = numba_backend.run(
        p_nb,
        s_nb,
        steps,
        step,
        noise=noise_nb,
        adapt=adapt,
        adaptation=da,
        adaptation_params=da_params,
    )
    p_jx = jax_backend.prepare(kernel, target, DIM, np.float64)
    s_jx = jax_backend.init(p_jx, x0, noise=init_noise)
    r_jx = jax_backend.run(
        p_jx,
        s_jx,
        steps,
        step,
        noise=noise_jax,
        adapt=adapt,
        adaptation=da,
        adaptation_params=da_params,
    )
    return (s_nb, r_nb), (s_jx, r_jx)


@pytest.mark.parametrize("kernel_cls", KERNELS, ids=lambda k: k.__name__)
@pytest.mark.parametrize("adapt", [False, True], ids=["fixed", "adapting"])
def test_same_noise_same_chain(kernel_cls, adapt, gaussian4):
    target, x0 = problem(kernel_cls, gaussian4)
    # h·λ_max = 1: inside the stability region, so round-off is not amplified step by step
    kernel = make_kernel(kernel_cls, step_size=0.1)
    if adapt and not kernel_cls.adapts_step_size:
        pytest.skip("kernel does not adapt its step size")
    noise_nb, noise_jax = shared_noise(kernel)
    steps, tol = STEPS, 1e-12
    info_tol = tol
    if adapt:
        # An adapting chain feeds each acceptance back into the next h, which amplifies a
        # last-bit difference between the backends' evaluations of the target (measured over
        # 12 noise seeds: Barker up to 1.3e-14 after 8 steps, 4e-8 after 60; MALA 7.5e-15 and
        # 1.3e-10; MALA 3e-12 after 55 steps under JAX 0.12). Compare 8 steps, at the same
        # 1e-12.
        steps = 8
    if adapt and "n_grad" in kernel_cls.Info._fields:
        # Trajectory kernels (HMC): dual averaging drives h onto the integrator's stability
        # limit, where a trajectory's end point is extremely sensitive to h, and feeds each
        # acceptance back into the next h. A last-bit difference between the backends' dot
        # products then grows along an adapting chain (measured over 12 noise seeds: up to
        # 3e-11 after 5 steps, 2e-9 after 10, O(1) after 60). Compare 8 steps to 1e-8; the
        # energy error of a divergent trajectory (~5e16) to 1e-7 relative (1.09e-8 seen under
        # JAX 0.12).
        steps, tol, info_tol = 8, 1e-8, 1e-7
    (_, r_nb), (_, r_jx) = _run_both(kernel, target, noise_nb, noise_jax, x0, adapt=adapt,
                                     steps=steps)  # fmt: skip
    np.testing.assert_allclose(r_nb.position, r_jx.position, rtol=0, atol=tol)
    np.testing.assert_allclose(r_nb.logdensity, r_jx.logdensity, rtol=tol, atol=tol)
    assert set(r_nb.info) == set(r_jx.info) == set(kernel_cls.Info._fields)
    for name in r_nb.info:  # relative too: a divergent trajectory's energy error is ~1e30
        np.testing.assert_allclose(r_nb.info[name], r_jx.info[name], rtol=info_tol, atol=tol)
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
    target, x0 = problem(kernel_cls, gaussian4)
    kernel = make_kernel(kernel_cls)
    noise_nb, noise_jax = shared_noise(kernel)
    (s0_nb, r_nb), (s0_jx, r_jx) = _run_both(kernel, target, noise_nb, noise_jax, x0)
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
    target, x0 = problem(kernel_cls, gaussian4)
    kernel = make_kernel(kernel_cls)
    x0 = x0.astype(np.float32)
    # a warm-up long enough for dual averaging to settle: after 20 steps one HMC chain (float32
    # noise, jax 0.12) kept a step size past the leapfrog's stability limit and diverged on
    # every draw, which the driver reports as it should (DivergentTransitionWarning)
    trace = langevin.sample(
        target,
        kernel,
        backend="jax",
        chains=CHAINS,
        warmup=200,
        draws=30,
        initial_position=x0,
        seed=0,
        progress=False,
    )
    assert trace.draws.dtype == np.float32
    assert trace.sample_stats["lp"].dtype == np.float32
    assert np.all(np.isfinite(trace.draws))
    p = jax_backend.prepare(kernel, target, DIM, np.float32)
    state = jax_backend.init(p, x0)
    for leaf in jax.tree_util.tree_leaves(state):  # integer leaves (an iteration count) aside
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert leaf.dtype == jnp.float32


@pytest.mark.parametrize("kernel_cls", KERNELS, ids=lambda k: k.__name__)
def test_numba_draws_in_loop_as_draw_noise_does(kernel_cls, gaussian4):
    """The loop that draws its own noise and the loop fed ``draw_noise`` arrays agree exactly."""
    target, x0 = problem(kernel_cls, gaussian4)
    kernel = make_kernel(kernel_cls, step_size=0.1)
    prepared = numba_backend.prepare(kernel, target, DIM, np.float64)
    states = numba_backend.init(prepared, x0)
    step = np.full(CHAINS, kernel.step_size)

    def rngs():
        return [np.random.default_rng(s) for s in np.random.SeedSequence(9).spawn(CHAINS)]

    own = numba_backend.run(prepared, states, STEPS, step, rngs=rngs())
    given = numba_backend.run(
        prepared, states, STEPS, step, noise=numba_backend.draw_noise(kernel, DIM, STEPS, rngs())
    )
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


# -- a minibatch toy: integer-index noise (langevin.spec.Index) --------------------------------
class ToyInfo(NamedTuple):
    acceptance_rate: Scalar
    diverging: Flag


class CountNoise(NamedTuple):
    batch: Vector  # annotations document; the declaration (Index) types the field


@portable
def count_step(state, noise, step_size, params, target):
    """position[i] += 1 for every index i in the minibatch: positions count inclusions."""
    ones = noise.batch * 0.0 + 1.0
    position = xp.scatter_add(state.position, noise.batch, ones)
    return GradientState(position, state.logdensity, state.grad), ToyInfo(1.0, False)


@dataclasses.dataclass(frozen=True)
class MinibatchCounter(Kernel):
    """Declares Index(n, size) noise: n = the dimension, ``batch`` items per step."""

    step_size: float
    batch: int = 3
    State = GradientState
    Info = ToyInfo
    Noise = CountNoise
    exact = False
    bias_order = 1.0
    init_math = staticmethod(init_gradient_state)
    step_math = staticmethod(count_step)

    def noise(self, dim):
        return CountNoise(Index(dim, self.batch))


def _counts(result) -> np.ndarray:
    """Per-step inclusions (members, steps, n) from the recorded positions."""
    pos = result.position
    start = np.zeros_like(pos[:, :1])
    return np.diff(np.concatenate([start, pos], axis=1), axis=1)


def test_index_noise_same_indices_on_both_backends():
    """The same seed gives the same index arrays (each noise kind's NumPy hook), and both
    backends consume them identically; every step's batch is distinct items."""
    n, steps, members = 10, 200, 3
    kernel = MinibatchCounter(1.0, batch=4)
    target = langevin.targets.gaussian(n)
    noise = draw_numpy(kernel.noise(n), np.random.default_rng(5), (members, steps))
    assert noise.batch.dtype == np.int64
    x0 = np.zeros((members, n))
    out = []
    for be in (numba_backend, jax_backend):
        p = be.prepare(kernel, target, n, np.float64)
        out.append(be.run(p, be.init(p, x0), steps, np.ones(members), noise=noise))
    np.testing.assert_array_equal(out[0].position, out[1].position)
    inc = _counts(out[0])
    assert np.all((inc == 0) | (inc == 1)) and np.all(inc.sum(-1) == 4)  # without replacement
    for m in range(members):  # and they are the declared indices
        for t in range(steps):
            assert set(np.flatnonzero(inc[m, t])) == set(noise.batch[m, t])


@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_index_noise_drawn_in_the_loop_is_uniform_without_replacement(backend):
    """Each backend's own in-loop draw: distinct items every step, inclusion frequencies
    uniform (chi-square test of the counts, per-test level P_CRIT)."""
    n, batch, steps, chains = 12, 5, 3000, 2
    trace = langevin.sample(langevin.targets.gaussian(n), MinibatchCounter(1.0, batch=batch),
                            chains=chains, warmup=0, draws=steps, seed=3, backend=backend,
                            initial_position=np.zeros((chains, n)), progress=False)  # fmt: skip
    pos = trace.draws
    inc = np.diff(np.concatenate([np.zeros_like(pos[:, :1]), pos], axis=1), axis=1)
    assert np.all((inc == 0) | (inc == 1)) and np.all(inc.sum(-1) == batch)
    counts = inc.sum(axis=(0, 1))
    expected = chains * steps * batch / n
    # Per step an item is included with p = b/n, Var p(1 − p), and two items have covariance
    # −p(1 − p)/(n − 1) (the b items are distinct): the counts' covariance is
    # T p (1 − p) n/(n − 1) (I − J/n), so Σ (O − E)² / E · (n − 1)/(n (1 − p)) ~ χ²_{n−1}.
    p = batch / n
    stat = np.sum((counts - expected) ** 2 / expected) * (n - 1) / (n * (1 - p))
    assert chi2.sf(stat, n - 1) > P_CRIT, (stat, counts)


def test_index_noise_draws_are_floyd_uniform_over_subsets():
    """All C(5, 2) = 10 subsets equally likely from the NumPy hook (which the Numba loop
    reproduces draw for draw): chi-square over subsets."""
    rng = np.random.default_rng(0)
    d = Index(5, 2)
    draws = [tuple(sorted(d.draw_numpy(rng))) for _ in range(20000)]
    _, counts = np.unique(np.array(draws), axis=0, return_counts=True)
    assert counts.size == 10
    stat = np.sum((counts - 2000) ** 2 / 2000)
    assert chi2.sf(stat, 9) > P_CRIT


def test_unknown_noise_kind_is_refused_on_both_backends():
    class Strange(NamedTuple):
        shape: tuple

    @dataclasses.dataclass(frozen=True)
    class Bad(MinibatchCounter):
        def noise(self, dim):
            return CountNoise(Strange((dim,)))

    for be in (numba_backend, jax_backend):
        with pytest.raises(TypeError, match="batch.*not a noise kind"):
            be.prepare(Bad(1.0), langevin.targets.gaussian(3), 3, np.float64)


def test_the_hashed_floyd_step_gives_floyd_s_indices():
    """The Numba drawer's O(size) membership test picks exactly what Floyd's O(size²) loop
    picks, for every draw (small n forces many clashes; large n almost none)."""
    import numba

    from langevin.spec import floyd_indices, floyd_indices_hashed

    hashed = numba.njit(floyd_indices_hashed)
    rng = np.random.default_rng(5)
    for n, size in [(5, 5), (10, 7), (64, 33), (1000, 100), (10**7, 500)]:
        for _ in range(200):
            t = np.array([rng.integers(0, n - size + k + 1) for k in range(size)])
            expected = floyd_indices(t, n)
            np.testing.assert_array_equal(floyd_indices_hashed(t, n), expected)
            np.testing.assert_array_equal(hashed(t, n), expected)
            assert len(set(expected.tolist())) == size
