"""Compiled code is keyed on what it computes, never on a name alone (issue 17, defect 11).

Two user classes with one name in one process (a model factory; a notebook cell edited and
run again) must not share compiled code: before the fix, Numba's disk cache found the second
model's filter under the first model's loop name (the class and function names and the source
*file*, unchanged) and returned the first model's likelihood without a word.

The exactness checks use the Kalman filter: ``E[L̂] = L`` exactly for a particle filter, so
over R independent runs ``mean(log L̂) + s²/2`` estimates ``log L`` with standard error
``s / √R`` (the log-normal check of ``tests/test_filters.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pytest

import langevin
from langevin import smc
from langevin.backends.portable import portable, source_fingerprint
from langevin.kernels.base import GradientState, Kernel, init_gradient_state
from langevin.smc.filters import _LD_R, LinearGaussian, _gaussian_logpdf
from langevin.spec import Flag, Normal, Scalar, Vector
from tests.stats_helpers import Z_CRIT

T = 30
N_PARTICLES = 300
REPLICATES = 12


# -- the fingerprint itself ------------------------------------------------------------------
def _exec(src: str, name: str, **scope):
    """A function defined by ``exec`` (as a notebook cell defines it: no source file)."""
    scope = {"portable": portable, **scope}
    exec(compile(src, "<cell>", "exec"), scope)
    return scope[name]


BASE = """
@portable
def f(x, data):
    return xp.sum(x * x) * 0.5
"""


def test_fingerprint_is_content_not_name():
    """Same name, different math: different fingerprints; identical code defined twice (a
    cell run again, another process): the same one, so Numba's disk cache still serves it."""
    f1 = _exec(BASE, "f")
    assert source_fingerprint(f1) == source_fingerprint(_exec(BASE, "f"))
    variants = {
        "code": BASE.replace("0.5", "2.0"),
        "operation": BASE.replace("x * x", "x * x * x"),
        "global": BASE.replace("0.5", "SCALE"),
        "default": BASE.replace("(x, data)", "(x, data, c=1.0)").replace("0.5", "c"),
    }
    prints = {source_fingerprint(f1)}
    for what, src in variants.items():
        fp = source_fingerprint(_exec(src, "f", SCALE=3.0))
        assert fp not in prints, what
        prints.add(fp)
    # a global constant frozen into compiled code: its value keys the code
    g = variants["global"]
    assert source_fingerprint(_exec(g, "f", SCALE=3.0)) != source_fingerprint(
        _exec(g, "f", SCALE=4.0)
    )
    # a closure cell (model factory) and an array global
    make = _exec("def make(c):\n    def f(x):\n        return c * x\n    return f\n", "make")
    assert source_fingerprint(make(1.0)) != source_fingerprint(make(2.0))
    assert source_fingerprint(make(1.0)) == source_fingerprint(make(1.0))
    h = "@portable\ndef h(x):\n    return W @ x\n"
    assert source_fingerprint(_exec(h, "h", W=np.eye(2))) != source_fingerprint(
        _exec(h, "h", W=2 * np.eye(2))
    )


def test_fingerprint_follows_callees():
    """An edit to a portable callee (not to the root) changes the root's fingerprint."""
    callee_a = _exec("@portable\ndef g(x):\n    return x + 1.0\n", "g")
    callee_b = _exec("@portable\ndef g(x):\n    return x + 2.0\n", "g")
    root = "@portable\ndef f(x):\n    return g(x) * 2.0\n"
    fa = _exec(root, "f", g=callee_a)
    fb = _exec(root, "f", g=callee_b)
    assert fa.__qualname__ == fb.__qualname__
    assert source_fingerprint(fa) != source_fingerprint(fb)


@portable
def _nested_leaf_with_a_long_descriptive_name_as_model_parts_have(x):
    return x + 1.0


@portable
def _nested_wrapper_with_a_long_descriptive_name_too(x):
    return _inner_part_bound_by_name(x) * 2.0  # noqa: F821 (bound by bind_globals)


def test_nested_bindings_have_short_distinct_names():
    """Bindings of bindings (spline flows bind RealNVP's composites to spline couplings,
    then compose those) name their copies after every bound value: uncapped, the names grew
    past the 255-byte file names of Numba's disk cache ("OSError: File name too long"). The
    cap keeps them short and distinct, and a deep binding compiles and caches on disk."""
    from langevin.backends.portable import MAX_BOUND_NAME, bind_globals
    from langevin.nn import numba_twin

    fn = _nested_leaf_with_a_long_descriptive_name_as_model_parts_have
    chain = []
    for _ in range(8):
        fn = bind_globals(_nested_wrapper_with_a_long_descriptive_name_too,
                          _inner_part_bound_by_name=fn)  # fmt: skip
        chain.append(fn)
    names = [f.__qualname__ for f in chain]
    assert max(len(n) for n in names) <= MAX_BOUND_NAME
    assert len(set(names)) == len(names)  # a distinct name per binding
    assert all(n.isidentifier() for n in names)
    # the deepest binding compiles (its twin cached on disk, named after it): 2^8 (x + 1)
    assert numba_twin(chain[-1])(1.5) == 2.0**8 * 2.5


# -- two state-space models with one class name ----------------------------------------------
def _model(scale: float) -> LinearGaussian:
    """A linear Gaussian model whose observation function is written by the user:
    ``y_t = scale · C x_t + v_t``. The class is called ``Model`` whatever the scale."""
    base = smc.linear_gaussian_example(T=T, seed=4)

    @portable
    def log_observation(t, x, data):
        r = data.y[t] - scale * xp.dot(data.C, x)  # noqa: F821 (bound per backend)
        return _gaussian_logpdf(r, data.R_prec, data.logdets[_LD_R])

    class Model(LinearGaussian):
        log_observation_math = staticmethod(log_observation)

    return Model(base.A, base.C, base.Q, base.R, base.m0, base.P0, base.y)


def _exact(model: LinearGaussian, scale: float) -> float:
    """The model's exact log-likelihood (the Kalman filter of ``C → scale · C``)."""
    lg = smc.linear_gaussian(model.A, scale * model.C, model.Q, model.R, model.m0, model.P0,
                             model.y)  # fmt: skip
    return smc.kalman_filter(lg).log_likelihood


def _lognormal_z(log_l_hat, log_l: float) -> float:
    v = np.asarray(log_l_hat, dtype=float)
    return (v.mean() + 0.5 * v.var(ddof=1) - log_l) / (v.std(ddof=1) / np.sqrt(len(v)))


@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_same_named_models_keep_their_own_likelihoods(backend):
    """Two classes named ``Model`` whose observation math differs: each filter's estimate
    matches its *own* Kalman likelihood (z-test over R runs), and the two exact values are
    many standard errors apart, so a filter running the other model's code fails."""
    scales = (1.0, 0.3)
    models = [_model(s) for s in scales]
    assert type(models[0]).__qualname__ == type(models[1]).__qualname__
    exact = [_exact(m, s) for m, s in zip(models, scales)]
    for model, log_l in zip(models, exact):
        est = [smc.particle_filter(model, N_PARTICLES, seed=100 + r, backend=backend).log_likelihood
               for r in range(REPLICATES)]  # fmt: skip
        se = np.std(est, ddof=1) / np.sqrt(REPLICATES)
        assert abs(exact[0] - exact[1]) > 3 * Z_CRIT * se  # the test can tell them apart
        z = _lognormal_z(est, log_l)
        assert abs(z) < Z_CRIT, (backend, type(model).__name__, np.mean(est), log_l, z)


# -- two kernels with one class name ---------------------------------------------------------
class ShiftInfo(NamedTuple):
    acceptance_rate: Scalar
    diverging: Flag


class ShiftNoise(NamedTuple):
    normal: Vector


def _shift_kernel(shift: float) -> type:
    """A deterministic 'kernel' ``x ← x + shift`` (the noise is declared but unused), in a
    class called ``Shift`` whatever the shift."""

    @portable
    def shift_step(state, noise, step_size, params, target):
        y = state.position + shift + 0.0 * noise.normal
        lp, g = xp.value_and_grad(target, y)  # noqa: F821
        return GradientState(y, lp, g), ShiftInfo(1.0, False)

    @dataclass(frozen=True)
    class Shift(Kernel):
        step_size: float = 1.0
        State = GradientState
        Info = ShiftInfo
        Noise = ShiftNoise
        init_math = staticmethod(init_gradient_state)
        step_math = staticmethod(shift_step)

        def noise(self, dim):
            return ShiftNoise(Normal((dim,)))

    return Shift


@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_same_named_kernels_keep_their_own_steps(backend):
    """Two kernel classes named ``Shift`` (x ← x + 1 and x ← x + 2) each run their own step."""
    target = langevin.targets.gaussian(2)
    dtype = np.float64
    if backend == "jax":
        import jax.numpy as jnp

        dtype = jnp.zeros(()).dtype  # JAX's default float (float32 unless x64 is on)
    start = np.zeros((1, 2), dtype=dtype)
    for shift in (1.0, 2.0):
        kernel = _shift_kernel(shift)()
        trace = langevin.sample(target, kernel, chains=1, warmup=0, draws=3, backend=backend,
                                seed=0, initial_position=start, progress=False)  # fmt: skip
        positions = np.asarray(trace.draws)[0, :, 0]
        np.testing.assert_allclose(positions, shift * np.arange(1, 4), rtol=1e-6)


# -- across processes: Numba's disk cache and its symbol names -------------------------------
_CROSS_PROCESS = """
import itertools
from numba.core.bytecode import FunctionIdentity
from langevin import smc
from tests.test_cache_keys import _model
smc.particle_filter(_model(0.5), 100, seed=1)  # the transition maps, compiled once
for scale in (1.0, 0.3):
    model = _model(scale)
    # Numba names compiled symbols by qualified name and a per-process counter: start the
    # counter at the same value for both models, as two processes may
    FunctionIdentity._unique_ids = itertools.count(10_000)
    print(repr(smc.particle_filter(model, 100, seed=1, backend="numba").log_likelihood))
"""


@pytest.mark.slow
def test_same_named_models_across_processes(tmp_path):
    """The first process compiles both models (and writes Numba's disk cache); the second
    loads both. Numba loads every cached library into one symbol table where the first
    definition of a name wins, so two libraries whose helpers share a name (same qualified
    name, same counter) but not their code would make the second model run the first's math.
    The second process must reproduce the first's values exactly."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runs = [
        subprocess.run(
            [sys.executable, "-c", _CROSS_PROCESS],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        for _ in range(2)
    ]
    for r in runs:
        assert r.returncode == 0, r.stderr[-3000:]
    first, second = (r.stdout.split() for r in runs)
    assert first[0] != first[1]  # the two models' filters differ
    assert second == first
