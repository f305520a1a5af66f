"""Shared fixtures.

JAX runs in its default precision (float32) unless the environment sets ``JAX_ENABLE_X64``:
the README's test command runs the suite both ways, as users run it. A test that needs
float64 on JAX (1e-12 agreement with Numba) asks for the ``x64`` fixture, which switches it
on for that test only; no test may leave the flag changed (``_restore_jax_x64``).
"""

from __future__ import annotations

import importlib.util
import os
import pathlib

# JAX's persistent compilation cache, for the test processes and the subprocesses they start
# (tutorials, notebook code, multi-process runs inherit the environment). Many tests build the
# same program through a new closure (a new target, a new `sample` call), which JAX's
# in-process cache, keyed on the function object, misses; the persistent cache is keyed on
# the compiled program itself, so each program compiles once per run and the x64 pass and
# the slow job reuse what the default run compiled (measured on four files' JAX tests: 89
# CPU-s without, 51 with an empty cache at the start). It changes no result: a hit loads
# the executable XLA compiled for the same program. Test runs only: the package never sets
# it (JAX's flags are the user's). `max_size` makes JAX lock the directory (`filelock`, in
# the test extra) so that the two xdist workers never read a half-written entry; without
# filelock the cache stays off. Set JAX_ENABLE_COMPILATION_CACHE=false to turn it off.
_JAX_CACHE = importlib.util.find_spec("filelock") is not None
if _JAX_CACHE:
    _ROOT = pathlib.Path(__file__).resolve().parents[1]
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_ROOT / ".pytest_cache" / "jax"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(4 * 2**30))

import jax  # noqa: E402  (after the environment above, which JAX reads at import)
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import langevin  # noqa: E402

if _JAX_CACHE:  # the same again, in case JAX was imported before (by a plugin) and read nothing
    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs",
                      float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))  # fmt: skip
    jax.config.update("jax_compilation_cache_max_size",
                      int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]))  # fmt: skip

if not hasattr(jax, "enable_x64"):  # JAX < 0.8 (the lowest-versions CI job): the same
    from jax.experimental import enable_x64 as _enable_x64  # context manager, older home

    jax.enable_x64 = _enable_x64


# How pytest-xdist's two workers share the tests. Tests of one file mostly compile the same
# programs (kernel, target, dtype), and a worker compiles a program once and reuses it (JAX's
# compilation cache lives in the process; Numba's loops are cached in memory once loaded), so a
# file's tests go to one worker: with xdist's default, which spreads single tests over both,
# each worker compiled them (measured on five files, cold caches: 267 CPU-s spread, 205 by
# file). Exceptions: the conformance suites, one unit per kernel (each kernel compiles its own
# programs, and there are dozens), and files of independent subprocess runs (tutorials,
# benchmark scripts), one unit per test, so both workers share them. (xdist's own
# `--dist loadgroup` does not group under pytest 9, which moved the node id that xdist
# rewrites; hence a scheduler here.)
_UNIT_PER_KERNEL = ("tests/test_conformance.py", "tests/test_prox_conformance.py")
_UNIT_PER_TEST = (
    "tests/test_tutorials.py",
    "tests/test_benchmarks_smoke.py",
    "tests/test_smc_benchmark_smoke.py",
    "tests/test_notebook_code.py",
    "tests/test_nothing_lost.py",
    "tests/test_fuzz.py",
)


def xdist_work_unit(nodeid: str) -> str:
    """The unit of work a test belongs to: its file; a conformance test's kernel (its
    parameter id's last part, e.g. ``adapting-MALA`` -> ``MALA``); or, in a file of
    independent runs, the test itself."""
    path, _, rest = nodeid.partition("::")
    if path in _UNIT_PER_KERNEL and rest.endswith("]") and "[" in rest:
        return f"{path}::{rest[rest.index('[') + 1 : -1].split('-')[-1]}"
    if path in _UNIT_PER_TEST:
        return nodeid
    return path


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown without xdist
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "load":
        return None  # a --dist the user chose
    if (config.getoption("markexpr") or "").strip() == "slow":
        return None  # the slow job: long runs, where compiling is a small part; spread them
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_work_unit(nodeid)

    return WorkUnits(config, log)


@pytest.fixture(autouse=True)
def _restore_jax_x64():
    """Whatever a test (or a benchmark's ``main`` run in-process) does to JAX's x64 flag is
    undone after it, so the rest of the suite runs in the precision the run was started in."""
    before = jax.config.jax_enable_x64
    yield
    if jax.config.jax_enable_x64 != before:
        jax.config.update("jax_enable_x64", before)


@pytest.fixture
def x64():
    """Float64 JAX for one test (for 1e-12 comparisons with the float64 Numba backend)."""
    with jax.enable_x64(True):
        yield


def correlated_gaussian(dim: int = 4, seed: int = 0):
    """The built-in N(m, Σ) with a random SPD Σ (eigenvalues 1 … 0.1) and a random mean.

    Returns ``(target, m, Σ)``; the target carries both backend forms.
    """
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    cov = q @ np.diag(np.geomspace(1.0, 0.1, dim)) @ q.T
    cov = 0.5 * (cov + cov.T)
    mean = rng.standard_normal(dim)
    return langevin.targets.gaussian(dim, mean=mean, cov=cov), mean, cov


@pytest.fixture(scope="session")
def gaussian4():
    return correlated_gaussian(4, seed=0)
