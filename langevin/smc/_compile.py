"""Backend twins of the portable SMC functions (see :mod:`langevin.backends.portable`).

``twin(fn, backend)`` returns ``fn`` bound to the backend's namespace: a Numba dispatcher
(the root cached on disk under a name that carries the source fingerprint of its call
graph, as the chain loops are), a jitted JAX function, or plain Python over NumPy. One twin
per (function, backend, overrides), memoised for the process.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from langevin.backends.portable import make_twin, source_fingerprint

__all__ = ["BACKENDS", "twin", "namespace"]

BACKENDS = ("numba", "jax", "numpy")

_MEMO: dict[str, dict] = {"numba": {}, "jax": {}, "numpy": {}}
_ROOTS: dict[Any, Callable] = {}


def namespace(backend: str) -> types.ModuleType:
    """The ``xp`` module of ``backend``."""
    if backend == "numba":
        from langevin.backends import numba_ops

        return numba_ops
    if backend == "jax":
        from langevin.backends import jax_ops

        return jax_ops
    if backend == "numpy":
        from langevin.backends import numpy_ops

        return numpy_ops
    raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")


def twin(
    fn: Callable,
    backend: str,
    *,
    jit: bool = False,
    overrides: dict[str, Any] | None = None,
    key: Any = None,
    static_argnums: tuple[int, ...] = (),
    cache: bool = True,
    extra_roots: tuple[Callable, ...] = (),
) -> Callable:
    """``fn`` compiled for ``backend``.

    Args:
        fn: a portable function.
        backend: ``"numba"``, ``"jax"`` or ``"numpy"``.
        jit: on JAX, wrap the twin in ``jax.jit`` (an entry point called from Python);
            on Numba every twin is compiled anyway.
        overrides: global names to bind in ``fn`` only (e.g. the scheme a population step
            uses); ``key`` must then identify them for memoisation.
        static_argnums: JAX static arguments of the jitted twin.
        cache: Numba: cache the root on disk. Numba refuses to cache a function that calls a
            function passed as a *value* (``xp.cond`` branches, ``xp.fori_loop`` bodies)
            which allocates an array ("dynamic globals"); such roots must say
            ``cache=False`` and compile once per process.
        extra_roots: portable functions bound through ``overrides`` whose source files
            must also key the Numba cache (the fingerprint does not see overrides).
    """
    memo_key = (fn, backend, jit, key, static_argnums)
    if memo_key in _ROOTS:
        return _ROOTS[memo_key]
    ns = namespace(backend)
    memo = _MEMO[backend]
    if backend == "numba":
        import numba

        root_code = fn.__code__
        suffix = "" if key is None else "_" + "_".join(str(k) for k in _flat(key))
        fingerprint = source_fingerprint(fn, *extra_roots, extra_modules=(ns,))
        name = f"{fn.__qualname__}{suffix}_{fingerprint}"

        def compile_fn(f):
            if f.__code__ is root_code:
                # Numba's disk cache only checks the root's own file: the fingerprint in the
                # name covers every portable callee (langevin.backends.portable).
                f.__qualname__ = name
                return numba.njit(cache=cache)(f)
            return numba.njit(f)

        out = make_twin(fn, ns, compile_fn, memo, overrides=overrides)
    else:
        out = make_twin(fn, ns, lambda f: f, memo, overrides=overrides)
        if backend == "jax" and jit:
            import jax

            out = jax.jit(out, static_argnums=static_argnums)
    _ROOTS[memo_key] = out
    return out


def _flat(key) -> list:
    if isinstance(key, tuple):
        return [k for part in key for k in _flat(part)]
    return [getattr(key, "__name__", key)]
