"""The NumPy engine: portable math run by the Python interpreter, member by member.

The reference implementation of the engines' population map, for debugging and for SMC
models run with ``backend="numpy"`` (particle filters); ``sample()`` does not run here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from langevin.backends import numpy_ops
from langevin.backends.portable import make_twin
from langevin.targets.capabilities import TargetForm

__all__ = ["name", "map_members", "default_float"]

name = "numpy"

_TWINS: dict = {}


def default_float() -> np.dtype:
    """float64, as on Numba."""
    return np.dtype(np.float64)


def map_members(fn, args: tuple, axes: tuple, *, threads: int | None = None) -> Any:
    """``fn`` on every member, in a Python loop (see ``numba_backend.map_members``)."""
    twin = make_twin(fn, numpy_ops, lambda f: f, _TWINS)
    values = tuple(a.build(a.data) if isinstance(a, TargetForm) else a for a in args)
    members = next(
        int(np.shape(v[0] if isinstance(v, tuple) else v)[0]) for v, ax in zip(values, axes)
        if ax == 0
    )  # fmt: skip
    rows = []
    for m in range(members):
        member_args = (
            (numpy_ops.index_tree(v, m) if isinstance(v, tuple) else v[m]) if ax == 0 else v
            for v, ax in zip(values, axes)
        )
        rows.append(twin(*member_args))
    if isinstance(rows[0], tuple):
        return tuple(np.stack([np.asarray(r[i]) for r in rows]) for i in range(len(rows[0])))
    return np.stack([np.asarray(r) for r in rows])
