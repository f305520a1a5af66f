"""The array namespace ``xp`` of :mod:`langevin.backends.namespace`, plus trigonometry.

The lattice code needs ``sin``, ``cos`` and ``arctan``, which the shared table does not list
(yet). Rather than editing the shared table, the lattice modules twin their portable functions
with a copy of each backend's namespace module that adds these three names (NumPy's on NumPy
and Numba, ``jax.numpy``'s on JAX): the same write-once mechanism
(:func:`langevin.backends.portable.make_twin`), one extra row each.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from langevin.backends.portable import make_twin

__all__ = ["namespace", "twin"]

_EXTRA = ("sin", "cos", "arctan")
_MODULES: dict[str, types.ModuleType] = {}
_MEMOS: dict[str, dict] = {"numpy": {}, "numba": {}, "jax": {}}


def namespace(backend: str) -> types.ModuleType:
    """The backend's ``xp`` module with ``sin``, ``cos`` and ``arctan`` added."""
    if backend in _MODULES:
        return _MODULES[backend]
    if backend == "numba":
        from langevin.backends import numba_ops as base

        lib: Any = np
    elif backend == "jax":
        import jax.numpy as jnp

        from langevin.backends import jax_ops as base

        lib = jnp
    elif backend == "numpy":
        from langevin.backends import numpy_ops as base

        lib = np
    else:
        raise ValueError(f"backend must be 'numba', 'jax' or 'numpy'; got {backend!r}")
    name = f"langevin.lattice._xp_{backend}"
    mod = types.ModuleType(name)
    for key in base.__all__:
        setattr(mod, key, getattr(base, key))
    for key in _EXTRA:
        setattr(mod, key, getattr(lib, key))
    mod.__file__ = __file__  # the fingerprint of compiled code reads this file
    sys.modules[name] = mod
    _MODULES[backend] = mod
    return mod


def twin(fn: Callable, backend: str) -> Callable:
    """The ``backend`` twin of the portable function ``fn``: ``numba.njit`` (disk-cached)
    on Numba, the plain Python function on NumPy and JAX (traced by ``jax.jit``)."""
    if backend == "numba":
        import numba

        compile_fn: Callable = numba.njit(cache=True)
    else:
        compile_fn = lambda f: f  # noqa: E731
    return make_twin(fn, namespace(backend), compile_fn, _MEMOS[backend])
