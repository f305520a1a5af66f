"""User code defined in a notebook cell, IPython, ``exec`` or stdin (issue 17, defect 12).

Such code has no source file: the fingerprint that keys compiled code used to open the
function's file and failed with ``FileNotFoundError``. Each test runs the same user cells
(a kernel, a state-space model, scores, targets: every kind of user code the package
compiles) in a fresh process, through IPython's own cell machinery
(``InteractiveShell.run_cell``), through ``exec`` of a string, and from stdin
(``python -``), on both backends, and checks what the code computes:

* the user's state-space model, a copy of the built-in linear Gaussian model's math, gives
  *the same* particle filter as the built-in model for the same seed; the cell is then edited
  (the observation matrix doubled) and run again under the same class name, and the filter
  must follow the edit exactly (the fingerprints change with the code: defect 11);
* user scores (Numba and JAX) reproduce the built-in score's corrector run for the same seed;
* the user's kernel (the random-walk example of ``langevin.kernels.base``) and user targets
  sample N(0, I): z-tests of means and variances in MCSE units.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.stats_helpers import Z_CRIT, z_score

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# -- the cells -------------------------------------------------------------------------------
SETUP = """
import json
import numpy as np
import langevin
from langevin import smc
from langevin.backends.portable import portable

def report(name, value):
    print("RESULT " + json.dumps({name: value}), flush=True)
"""

# A user state-space model: the linear Gaussian model's math written by the user, with its
# own portable functions (``SCALE`` multiplies the observation matrix; the edited cell
# changes it).
MODEL = """
SCALE = {scale}

@portable
def my_initial(noise, data):
    return data.vectors[0] + xp.dot(data.square[1], noise.normal)

@portable
def my_transition(t, x_prev, noise, data):
    return xp.dot(data.square[0], x_prev) + xp.dot(data.square[3], noise.normal)

@portable
def my_log_observation(t, x, data):
    r = data.y[t] - SCALE * xp.dot(data.C, x)
    return -0.5 * xp.dot(r, xp.dot(data.R_prec, r)) - 0.5 * data.logdets[2]

class Model(smc.StateSpaceModel):
    initial_math = staticmethod(my_initial)
    transition_math = staticmethod(my_transition)
    log_observation_math = staticmethod(my_log_observation)

    def __init__(self, reference):
        self.dim = reference.dim
        self.n_observations = reference.n_observations
        self.data = reference.data

base = smc.linear_gaussian_example(T=20, seed=5)
reference = smc.linear_gaussian(base.A, SCALE * base.C, base.Q, base.R, base.m0, base.P0,
                                base.y)
for backend in BACKENDS:
    mine = smc.particle_filter(Model(base), 200, seed=3, backend=backend)
    ref = smc.particle_filter(reference, 200, seed=3, backend=backend)
    report(f"filter_{{SCALE}}_{{backend}}", [float(mine.log_likelihood),
                                          float(ref.log_likelihood)])
"""

SCORES = """
import numba
from langevin.smc import GaussianMixture, Score, fkc_sample

@numba.njit
def my_score(x, t):
    return -x  # N(0, I) data stays N(0, I) under a VP process

def my_jax_score(x, t):
    return -x

builtin = GaussianMixture([1.0], [[0.0]], [[[1.0]]]).score()
for backend, mine in (("numba", Score.from_numba(my_score)), ("jax", Score.from_jax(my_jax_score))):
    if backend in BACKENDS:
        a = fkc_sample(mine, 1.0, 200, dim=1, n_steps=20, seed=4, backend=backend)
        b = fkc_sample(builtin, 1.0, 200, dim=1, n_steps=20, seed=4, backend=backend)
        report(f"score_{backend}", float(np.max(np.abs(np.asarray(a.particles.x)
                                                       - np.asarray(b.particles.x)))))
"""

KERNEL = """
from dataclasses import dataclass
from typing import NamedTuple
from langevin.kernels.base import Kernel, GradientState, init_gradient_state
from langevin.kernels.mh import MHInfo, metropolis_hastings
from langevin.spec import Normal, Scalar, Uniform, Vector

class RWNoise(NamedTuple):
    normal: Vector
    uniform: Scalar

@portable
def rw_step(state, noise, step_size, params, target):
    y = state.position + step_size * noise.normal
    lp, g = xp.value_and_grad(target, y)
    accepted, prob = metropolis_hastings(lp - state.logdensity, noise.uniform)
    proposal = GradientState(y, lp, g)
    return xp.select_tree(accepted, proposal, state), MHInfo(prob, accepted, False)

@dataclass(frozen=True)
class RandomWalk(Kernel):
    step_size: float
    Noise = RWNoise
    Info = MHInfo
    State = GradientState
    exact = True
    init_math = staticmethod(init_gradient_state)
    step_math = staticmethod(rw_step)

    def noise(self, dim):
        return RWNoise(Normal((dim,)), Uniform(()))

@numba.njit
def my_logdensity(x):
    return -0.5 * np.sum(x * x)

@numba.njit
def my_grad(x):
    return -x

def my_jax_logdensity(x):
    return -0.5 * (x * x).sum()

targets = {"numba": langevin.Target.from_numba(my_logdensity, my_grad, dim=2),
           "jax": langevin.Target.from_jax(my_jax_logdensity, dim=2)}
for backend in BACKENDS:
    for kernel in (RandomWalk(1.5), langevin.MALA(0.9)):
        trace = langevin.sample(targets[backend], kernel, chains=4, warmup=300, draws=1500,
                                backend=backend, seed=11, progress=False)
        report(f"draws_{kernel.name}_{backend}", np.asarray(trace.draws, float).tolist())
"""


def _cells(backends: tuple[str, ...]) -> list[str]:
    pre = SETUP + f"BACKENDS = {backends!r}\n"
    return [pre, MODEL.format(scale=1.0), SCORES, KERNEL, MODEL.format(scale=2.0)]


# -- the three ways of running cells ---------------------------------------------------------
def _ipython_driver(cells: list[str]) -> str:
    return textwrap.dedent(f"""
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        for cell in {cells!r}:
            result = shell.run_cell(cell, store_history=True)
            result.raise_error()
        """)


def _exec_driver(cells: list[str]) -> str:
    return textwrap.dedent(f"""
        scope = {{"__name__": "__main__"}}
        for i, cell in enumerate({cells!r}):
            exec(compile(cell, f"<cell-{{i}}>", "exec"), scope)
        """)


def _run(argv: list[str], stdin: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    env["JAX_ENABLE_X64"] = "1" if _x64() else "0"  # as in this process (tests/conftest.py)
    proc = subprocess.run(argv, input=stdin, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    out: dict = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            out.update(json.loads(line[len("RESULT ") :]))
    return out


def _check(out: dict, backends: tuple[str, ...]) -> None:
    for backend in backends:
        f32 = backend == "jax" and not _x64()
        for scale in (1.0, 2.0):
            mine, ref = out[f"filter_{scale}_{backend}"]
            # the same math and the same noise: the same filter, to rounding
            assert abs(mine - ref) < (1e-3 if f32 else 1e-9), (backend, scale, mine, ref)
        assert out["filter_1.0_" + backend][0] != out["filter_2.0_" + backend][0]
        assert out[f"score_{backend}"] < (1e-4 if f32 else 1e-9)
        for kernel in ("RandomWalk", "MALA"):
            draws = np.asarray(out[f"draws_{kernel}_{backend}"])
            for i in range(draws.shape[-1]):
                x = draws[..., i]
                assert abs(z_score(x, 0.0)) < Z_CRIT, (kernel, backend, i)
                assert abs(z_score(x * x, 1.0)) < Z_CRIT, (kernel, backend, i)


def _x64() -> bool:
    import jax

    return bool(jax.config.jax_enable_x64)


def _ipython_available() -> bool:
    return importlib.util.find_spec("IPython") is not None


@pytest.mark.skipif(not _ipython_available(), reason="IPython is not installed")
def test_user_code_in_ipython_cells():
    """Every kind of user code, defined and edited in IPython cells, on both backends."""
    backends = ("numba", "jax")
    _check(_run([sys.executable, "-c", _ipython_driver(_cells(backends))]), backends)


def test_user_code_from_exec():
    """The same cells through ``exec`` of strings (no source file), on both backends."""
    backends = ("numba", "jax")
    _check(_run([sys.executable, "-c", _exec_driver(_cells(backends))]), backends)


def test_user_code_from_stdin():
    """The same cells as one script read from stdin (``python -``), on Numba (the backend
    whose compiled code is keyed by fingerprints; JAX runs them in the two tests above)."""
    backends = ("numba",)
    _check(_run([sys.executable, "-"], stdin="\n".join(_cells(backends))), backends)


def test_postponed_annotations_in_exec_resolve():
    """A kernel's NamedTuples written with ``from __future__ import annotations`` inside
    ``exec`` (whose namespace is no module in ``sys.modules``) still give their field kinds
    (they used to raise: the string annotations were looked up only in ``__module__``)."""
    from langevin.spec import Scalar, Vector

    src = (
        "from __future__ import annotations\n"
        "from typing import NamedTuple\n"
        "from langevin.spec import Vector, Scalar, field_kinds\n"
        "class State(NamedTuple):\n"
        "    position: Vector\n"
        "    logdensity: Scalar\n"
        "kinds = field_kinds(State)\n"
    )
    namespace = {"__name__": "a_cell_namespace"}
    exec(compile(src, "<cell>", "exec", dont_inherit=True), namespace)
    assert namespace["kinds"] == (Vector, Scalar)
