"""Twins of the lattice's portable functions (one memo per backend).

The lattice code uses the shared namespace ``xp`` of :mod:`langevin.backends.namespace`
(its trigonometry rows ``sin``, ``cos`` and ``arctan`` were added for it) through the same
write-once mechanism as every other module, :func:`langevin.backends.portable.make_twin`.
"""

from __future__ import annotations

import types
from collections.abc import Callable

from langevin.backends.portable import make_twin

__all__ = ["namespace", "twin"]

_MEMOS: dict[str, dict] = {"numpy": {}, "numba": {}, "jax": {}}


def namespace(backend: str) -> types.ModuleType:
    """The backend's ``xp`` module."""
    if backend == "numba":
        from langevin.backends import numba_ops as ops
    elif backend == "jax":
        from langevin.backends import jax_ops as ops
    elif backend == "numpy":
        from langevin.backends import numpy_ops as ops
    else:
        raise ValueError(f"backend must be 'numba', 'jax' or 'numpy'; got {backend!r}")
    return ops


def twin(fn: Callable, backend: str) -> Callable:
    """The ``backend`` twin of the portable function ``fn``: ``numba.njit`` (disk-cached)
    on Numba, the plain Python function on NumPy and JAX (traced by ``jax.jit``)."""
    if backend == "numba":
        import numba

        compile_fn: Callable = numba.njit(cache=True)
    else:
        compile_fn = lambda f: f  # noqa: E731
    return make_twin(fn, namespace(backend), compile_fn, _MEMOS[backend])
