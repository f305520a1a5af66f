"""``xp.while_loop``: a dynamic trip count, written once, the same result on every backend.

Checked on NumPy, Numba (inside compiled code, cacheable although the body allocates) and
JAX (under ``jit`` and under ``vmap``, where members need different numbers of iterations),
against plain-Python loops: Collatz stopping times (integer carry, data-dependent trip
count) and Newton's square root to a tolerance (array carry, arguments through ``args``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numba
import numpy as np
import pytest

from langevin.backends import jax_ops, numba_ops, numpy_ops
from langevin.backends.portable import make_twin, portable

xp: Any = None


@portable
def _collatz_continues(carry, args):
    n, _ = carry
    return n != 1


@portable
def _collatz_body(carry, args):
    n, steps = carry
    even = n % 2 == 0
    return xp.select(even, n // 2, 3 * n + 1), steps + 1


@portable
def collatz_steps(n):
    """Steps of the Collatz map from ``n`` down to 1."""
    return xp.while_loop(_collatz_continues, _collatz_body, (n, 0 * n), ())[1]


@portable
def _newton_continues(carry, args):
    x, _ = carry
    a, tol = args
    return xp.max(xp.abs(x * x - a) / a) > tol


@portable
def _newton_body(carry, args):
    x, count = carry
    a, _ = args
    return 0.5 * (x + a / x), count + 1


@portable
def newton_sqrt(a, tol):
    """√a elementwise by Newton's iteration from a, and the iterations it took."""
    return xp.while_loop(_newton_continues, _newton_body, (a + 0.0, 0), (a, tol))


def _python_collatz(n: int) -> int:
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def _python_newton(a: np.ndarray, tol: float) -> tuple[np.ndarray, int]:
    x, count = a + 0.0, 0
    while np.max(np.abs(x * x - a) / a) > tol:
        x, count = 0.5 * (x + a / x), count + 1
    return x, count


BACKENDS = {
    "numpy": (numpy_ops, lambda f: f),
    "numba": (numba_ops, numba.njit(cache=True)),  # cacheable: no "cannot cache" warning
    "jax": (jax_ops, jax.jit),
}


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_while_loop_runs_a_dynamic_trip_count(backend):
    ns, compile_fn = BACKENDS[backend]
    collatz = make_twin(collatz_steps, ns, compile_fn, {})
    for n in (1, 2, 6, 7, 27, 97):  # 1: the body never runs
        assert int(collatz(n)) == _python_collatz(n)
    assert _python_collatz(27) == 111
    newton = make_twin(newton_sqrt, ns, compile_fn, {})
    # JAX without x64 computes in float32: the same iterations, in its precision
    a = np.asarray(jnp.array([2.0, 9.0, 1e4])) if backend == "jax" else np.array([2.0, 9.0, 1e4])
    rtol = 10 * np.finfo(a.dtype).eps
    x, count = newton(a, 1e-5)
    want_x, want_count = _python_newton(a, 1e-5)
    assert int(count) == want_count > 5
    np.testing.assert_allclose(np.asarray(x), want_x, rtol=rtol)
    np.testing.assert_allclose(np.asarray(x), np.sqrt(a), rtol=1e-5)
    x, count = newton(np.array([4.0], a.dtype), 13.0)  # within tol: zero iterations
    assert int(count) == 0 and float(np.asarray(x)[0]) == 4.0


def test_while_loop_under_vmap_runs_each_member_to_its_own_end():
    """Batched: the loop runs until every member is done; a done member keeps its carry."""
    collatz = make_twin(collatz_steps, jax_ops, lambda f: f, {})
    ns = np.array([1, 3, 7, 27, 97, 871])
    got = jax.jit(jax.vmap(collatz))(jnp.asarray(ns))
    np.testing.assert_array_equal(np.asarray(got), [_python_collatz(int(n)) for n in ns])
