"""The conformance checks of ``tests/test_conformance.py`` for the proximal and mirror kernels.

The suite in ``test_conformance.py`` runs every exported kernel on a plain Gaussian, which has
no ``prox`` and lives on ℝ^d; these kernels need a composite target (MYULA, MYMALA, BMUMLA) or
a constrained support (mirror Langevin with the log barrier or the entropy). Each declares
``example_target(dim)``; the same checks run here on it: the same noise gives the same chain on
Numba and JAX (1e-12, float64; with warm-up adaptation for MYMALA), the state keeps its
structure, float32 stays float32 on JAX, the Numba loop's own draws equal ``draw_noise``'s, and
the declarations are consistent.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

import langevin
from langevin.backends import jax_backend, numba_backend
from langevin.kernels.mirror import BregmanMoreauMirrorLangevin, MirroredLangevin, MirrorLangevin
from langevin.kernels.proximal import MYMALA, MYULA
from langevin.spec import NoiseKind
from tests.test_conformance import CHAINS, DIM, STEPS, _run_both, shared_noise

# Every variant compiles its own loops (about 5-10 s each on a loaded 2-core machine): the
# default run covers the two proximal kernels, BMUMLA with a non-Euclidean mirror and
# envelope, and mirror Langevin with the entropy (the extra noise field); every other
# variant runs with the slow tests (-m slow).
_DEFAULT = {
    "MYULA",
    "MYMALA",
    "BMUMLA_hypentropy_exp",
    "MirrorLangevin_entropy",
    "MirroredLangevin_entropy",
}
KERNELS = [
    k if k.__name__ in _DEFAULT else pytest.param(k, marks=pytest.mark.slow)
    for k in (
        MYULA,
        MYMALA,
        *BregmanMoreauMirrorLangevin.variants(),
        *MirrorLangevin.variants(),
        *MirroredLangevin.variants(),
    )
]


def _step(cls) -> float:
    return cls.example_step_size


def _make(cls, step_size=None):
    return cls(step_size=_step(cls) if step_size is None else step_size)


def _starts(target, seed=1):
    rng = np.random.default_rng(seed)
    x0 = target.initial_position
    if getattr(target, "name", "").startswith(("dirichlet", "gamma")):
        return x0 * (1.0 + 0.2 * rng.uniform(-1, 1, (CHAINS, DIM)))  # inside the support
    return x0 + rng.standard_normal((CHAINS, DIM))


@pytest.mark.parametrize("kernel_cls", KERNELS, ids=lambda k: getattr(k, "__name__", str(k)))
def test_declared_properties(kernel_cls):
    kernel = _make(kernel_cls)
    assert dataclasses.is_dataclass(kernel) and kernel.__dataclass_params__.frozen
    assert type(kernel) is kernel_cls
    if kernel_cls.exact:
        assert kernel_cls.bias_order is None
    else:
        assert kernel_cls.bias_order is not None and kernel_cls.bias_order > 0
    assert {"acceptance_rate", "diverging"} <= set(kernel_cls.Info._fields)
    assert isinstance(kernel_cls.example(), kernel_cls)
    for d in (*kernel.noise(DIM), *kernel.init_noise(DIM)):
        assert isinstance(d, NoiseKind)
    for bad, err in ((0.0, ValueError), (-1.0, ValueError), ("0.1", TypeError)):
        with pytest.raises(err, match="step_size"):
            kernel_cls(step_size=bad)
    if "prox" in kernel_cls.requires:
        assert kernel_cls.samples == "pi_lambda"
        assert kernel_cls.smoothing_bias_order == {"lipschitz": 1.0, "indicator": 0.5}
        with pytest.raises(ValueError, match="smoothing"):
            kernel_cls(step_size=0.1, smoothing=0.0)


@pytest.mark.parametrize("kernel_cls", KERNELS, ids=lambda k: getattr(k, "__name__", str(k)))
@pytest.mark.parametrize("adapt", [False, True], ids=["fixed", "adapting"])
def test_same_noise_same_chain(kernel_cls, adapt):
    if adapt and not kernel_cls.adapts_step_size:
        pytest.skip("kernel does not adapt its step size")
    target = kernel_cls.example_target(DIM)
    kernel = _make(kernel_cls)
    noise_nb, noise_jax = shared_noise(kernel)
    x0 = _starts(target)
    # An adapting chain feeds each acceptance back into the next h, amplifying a last-bit
    # difference between the backends (as for MALA and Barker in test_conformance): 8 steps.
    steps = 8 if adapt else STEPS
    with jax.enable_x64(True):
        (_, r_nb), (_, r_jx) = _run_both(
            kernel, target, noise_nb, noise_jax, x0, adapt=adapt, steps=steps
        )
    tol = 1e-12
    np.testing.assert_allclose(r_nb.position, r_jx.position, rtol=0, atol=tol)
    np.testing.assert_allclose(r_nb.logdensity, r_jx.logdensity, rtol=tol, atol=tol)
    assert set(r_nb.info) == set(r_jx.info) == set(kernel_cls.Info._fields)
    for name in r_nb.info:
        np.testing.assert_allclose(r_nb.info[name], r_jx.info[name], rtol=tol, atol=tol)
    np.testing.assert_array_equal(r_nb.n_done, steps)
    np.testing.assert_array_equal(r_jx.n_done, steps)
    assert np.all(np.abs(r_nb.position[:, -1] - x0) > 0)
    if "prox" in kernel_cls.requires:  # the nonsmooth part acted: some coordinate is past 0
        assert np.all(np.isfinite(r_nb.logdensity))


@pytest.mark.parametrize("kernel_cls", KERNELS, ids=lambda k: getattr(k, "__name__", str(k)))
def test_state_structure_and_float32(kernel_cls):
    target = kernel_cls.example_target(DIM)
    kernel = _make(kernel_cls)
    x0 = _starts(target).astype(np.float32)
    trace = langevin.sample(
        target,
        kernel,
        backend="jax",
        chains=CHAINS,
        warmup=20,
        draws=30,
        initial_position=x0,
        seed=0,
        progress=False,
    )
    assert trace.draws.dtype == np.float32
    assert np.all(np.isfinite(trace.draws))
    p = jax_backend.prepare(kernel, target, DIM, np.float32)
    state = jax_backend.init(p, x0)
    assert type(state) is kernel_cls.State
    for leaf in jax.tree_util.tree_leaves(state):
        assert leaf.dtype == np.float32


@pytest.mark.parametrize("kernel_cls", KERNELS, ids=lambda k: getattr(k, "__name__", str(k)))
def test_numba_draws_in_loop_as_draw_noise_does(kernel_cls):
    target = kernel_cls.example_target(DIM)
    kernel = _make(kernel_cls)
    prepared = numba_backend.prepare(kernel, target, DIM, np.float64)
    states = numba_backend.init(prepared, _starts(target))
    step = np.full(CHAINS, kernel.step_size)

    def rngs():
        return [np.random.default_rng(s) for s in np.random.SeedSequence(9).spawn(CHAINS)]

    own = numba_backend.run(prepared, states, STEPS, step, rngs=rngs())
    given = numba_backend.run(
        prepared, states, STEPS, step, noise=numba_backend.draw_noise(kernel, DIM, STEPS, rngs())
    )
    np.testing.assert_array_equal(own.position, given.position)
    assert type(own.state) is kernel_cls.State


def test_a_target_without_prox_is_refused_before_compiling():
    for backend, how in (("numba", "from_numba"), ("jax", "from_jax")):
        with pytest.raises(TypeError, match=rf"MYULA requires .*'(nonsmooth|prox)'.*{how}"):
            langevin.sample(
                langevin.targets.gaussian(3), MYULA(0.1), backend=backend, progress=False
            )


def test_variant_dispatch_and_bad_names():
    k = BregmanMoreauMirrorLangevin(0.01, smoothing=0.1, mirror="euclidean", envelope="exp")
    assert type(k).__name__ == "BMUMLA_euclidean_exp" and k.envelope == "exp"
    assert isinstance(k, BregmanMoreauMirrorLangevin)
    assert type(MirrorLangevin(0.1, mirror="entropy")).__name__ == "MirrorLangevin_entropy"
    with pytest.raises(ValueError, match="envelope must be one of"):
        BregmanMoreauMirrorLangevin(0.1, envelope="huber")
    with pytest.raises(ValueError, match="mirror must be one of"):
        BregmanMoreauMirrorLangevin(0.1, mirror="entropy")
    with pytest.raises(ValueError, match="mirror must be one of"):
        MirrorLangevin(0.1, mirror="box")
    with pytest.raises(ValueError, match="mirror_scale must be positive"):
        MirrorLangevin(0.1, mirror_scale=-1.0)
    from langevin.proximal.penalties import box
    from langevin.targets.composite import composite, flat

    with pytest.raises(ValueError, match="sign-invariant"):
        BregmanMoreauMirrorLangevin(0.1, envelope="exp").check_target(
            composite(flat(2), box(-1, 1))
        )
