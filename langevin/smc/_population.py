"""Population-level maps of per-particle portable math, per backend.

A model's per-particle functions (portable, written once) become functions of the whole
population: on Numba a compiled loop over particles (element writes, no array-into-slice
assignment), on JAX ``jit(vmap(...))``, on NumPy a Python loop. Four shapes cover the
particle filters:

* ``sample0(noise_row, data) -> x``                      → ``(noise (N, ...), data) -> X (N, d)``
* ``sample(t, x_prev, noise_row, data) -> x``            → ``(t, X_prev, noise, data) -> X``
* ``scalar0(x, data) -> float``                          → ``(X, data) -> (N,)``
* ``scalar(t, x_prev, x, data) -> float``                → ``(t, X_prev, X, data) -> (N,)``

The per-particle function is bound into a loop template as the global ``fn`` (a *twin*
override), so Numba compiles one loop per function, cached on disk under a name that
carries the function's source fingerprint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from langevin.smc._compile import twin

__all__ = ["population_map"]

xp: Any = None
fn: Any = None  # bound per use (twin override)


# -- Numba / NumPy loop templates --------------------------------------------------------------
def _sample0_loop(noise, data, out):
    for n in range(out.shape[0]):
        x = fn(xp.index_tree(noise, n), data)
        for j in range(out.shape[1]):
            out[n, j] = x[j]
    return out


def _sample_loop(t, prev, noise, data, out):
    for n in range(out.shape[0]):
        x = fn(t, prev[n], xp.index_tree(noise, n), data)
        for j in range(out.shape[1]):
            out[n, j] = x[j]
    return out


def _scalar0_loop(x, data, out):
    for n in range(out.shape[0]):
        out[n] = fn(x[n], data)
    return out


def _scalar_loop(t, prev, x, data, out):
    for n in range(out.shape[0]):
        out[n] = fn(t, prev[n], x[n], data)
    return out


_TEMPLATES = {
    "sample0": _sample0_loop,
    "sample": _sample_loop,
    "scalar0": _scalar0_loop,
    "scalar": _scalar_loop,
}


def population_map(
    kind: str,
    math: Callable,
    backend: str,
    *,
    name: str,
    bind: dict[str, Callable] | None = None,
) -> Callable:
    """The population-level version of the per-particle portable function ``math``.

    Returns ``f(*args, dim)`` for the ``sample`` kinds (``dim`` the state dimension) and
    ``f(*args)`` for the ``scalar`` kinds, returning arrays of the backend.

    Args:
        kind: ``"sample0"``, ``"sample"``, ``"scalar0"`` or ``"scalar"``.
        math: a portable function with the signature of its kind.
        backend: ``"numba"``, ``"jax"`` or ``"numpy"``.
        name: distinguishes the compiled loop (e.g. the model class and the role).
        bind: portable functions to bind to global names of ``math`` (``math`` is then a
            combinator such as "log p(x|x') + log p(y|x) − log q(x|x')" of a model's parts).
    """
    roots: tuple = (math,)
    if bind:
        overrides = {g: twin(f, backend) for g, f in bind.items()}
        roots = (math, *bind.values())
        per_particle = twin(math, backend, overrides=overrides, key=name, extra_roots=roots)
    else:
        per_particle = twin(math, backend)
    if backend == "jax":
        import jax

        axes = {
            "sample0": (0, None),
            "sample": (None, 0, 0, None),
            "scalar0": (0, None),
            "scalar": (None, 0, 0, None),
        }[kind]
        mapped = jax.jit(jax.vmap(per_particle, in_axes=axes))
        if kind.startswith("sample"):
            return lambda *args, dim: mapped(*args)
        return mapped

    loop = twin(_TEMPLATES[kind], backend, overrides={"fn": per_particle}, key=(name, kind),
                extra_roots=roots)  # fmt: skip
    if kind == "sample0":
        return lambda noise, data, dim: loop(noise, data, np.empty((noise[0].shape[0], dim)))
    if kind == "sample":
        return lambda t, prev, noise, data, dim: loop(
            t, prev, noise, data, np.empty((prev.shape[0], dim))
        )
    if kind == "scalar0":
        return lambda x, data: loop(x, data, np.empty(x.shape[0]))
    return lambda t, prev, x, data: loop(t, prev, x, data, np.empty(x.shape[0]))
