"""Clients: a data target's rows split over sites that never pool them.

A :class:`Clients` holds, for every client ``c``, its shard of the target's data (the rows
it owns) and the sizes ``n_c`` of *all* clients (which the server knows: they set the
weights ``p_c = n_c / N``). In a multi-process run a process holds only its own clients'
shards (:meth:`Clients.subset`); the other shards are never loaded there.

Shards of different sizes run in **one compiled program**: each is padded to the largest
size ``n_max`` with copies of its own first row and carries its true size. Minibatch
indices are drawn in ``[0, n_c)`` (so padded rows are never read), and a full-shard sum
reads all ``n_max`` rows and subtracts the ``n_max − n_c`` copies of row 0 (exact up to
round-off; see :mod:`langevin.federated.kernels`).

Which arrays of the target's data are per-row: those whose leading axis has the target's
``n_data`` entries (``X``, ``y``); the others (a hyper-parameter vector) are shared, and
every client gets the same copy.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Clients", "split", "partition_sorted", "shard_type"]

# One NamedTuple class per arity, defined at module level: the shard reaches compiled code
# as a NamedTuple (a params leaf on both backends), and a module-level class keeps Numba's
# disk cache valid across processes.
_SHARD_TYPES: dict[int, type] = {}
for _k in range(1, 13):
    _cls = namedtuple(f"Shard{_k}", [f"a{i}" for i in range(_k)])
    _cls.__module__ = __name__
    globals()[f"Shard{_k}"] = _cls
    _SHARD_TYPES[_k] = _cls
del _k, _cls


def shard_type(n_arrays: int) -> type:
    """The NamedTuple class of a shard of ``n_arrays`` arrays."""
    if n_arrays not in _SHARD_TYPES:
        raise ValueError(f"a data target with {n_arrays} data arrays is not supported "
                         f"(at most {max(_SHARD_TYPES)})")  # fmt: skip
    return _SHARD_TYPES[n_arrays]


@dataclass
class Clients:
    """The shards of a data target's rows, one per client.

    Attributes:
        sizes: ``n_c`` of every client (all clients, also in a process holding a few).
        shards: ``{client: tuple of arrays}``, the target's data tuple restricted to the
            client's rows (row arrays) plus the shared arrays; only the clients held here.
        row_arrays: which entries of the data tuple are per-row.
        rows: ``{client: row indices into the pooled data}`` where known (None otherwise).
    """

    sizes: tuple[int, ...]
    shards: dict[int, tuple[np.ndarray, ...]]
    row_arrays: tuple[bool, ...]
    rows: dict[int, np.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.sizes = tuple(int(s) for s in self.sizes)
        if len(self.sizes) < 1 or min(self.sizes) < 1:
            raise ValueError(f"clients: every client needs at least one row; sizes {self.sizes}")
        for c, shard in self.shards.items():
            if not 0 <= c < len(self.sizes):
                raise ValueError(f"clients: shard of client {c} but only {len(self.sizes)} "
                                 "clients")  # fmt: skip
            for k, (a, is_row) in enumerate(zip(shard, self.row_arrays)):
                if is_row and a.shape[0] != self.sizes[c]:
                    raise ValueError(f"clients: client {c}'s array {k} has {a.shape[0]} rows, "
                                     f"its size is {self.sizes[c]}")  # fmt: skip

    @property
    def n_clients(self) -> int:
        return len(self.sizes)

    @property
    def n_data(self) -> int:
        return int(sum(self.sizes))

    @property
    def n_max(self) -> int:
        return int(max(self.sizes))

    @property
    def weights(self) -> np.ndarray:
        """``p_c = n_c / N``."""
        s = np.asarray(self.sizes, dtype=np.float64)
        return s / s.sum()

    def subset(self, ids: Sequence[int]) -> Clients:
        """The same clients with only the shards of ``ids`` held (a process's own)."""
        ids = [int(i) for i in ids]
        missing = [i for i in ids if i not in self.shards]
        if missing:
            raise ValueError(f"clients.subset: shards of clients {missing} are not held here")
        rows = None if self.rows is None else {i: self.rows[i] for i in ids}
        return Clients(self.sizes, {i: self.shards[i] for i in ids}, self.row_arrays, rows)

    def padded(self, c: int) -> tuple[np.ndarray, ...]:
        """Client ``c``'s shard with row arrays padded to ``n_max`` rows by copies of row 0."""
        if c not in self.shards:
            raise ValueError(f"the shard of client {c} is not held in this process")
        out = []
        for a, is_row in zip(self.shards[c], self.row_arrays):
            if is_row and a.shape[0] < self.n_max:
                pad = np.repeat(a[:1], self.n_max - a.shape[0], axis=0)
                a = np.concatenate([a, pad], axis=0)
            out.append(np.ascontiguousarray(a))
        return tuple(out)

    def template(self) -> tuple[np.ndarray, ...]:
        """A one-row shard of the right types (what the engine's target is typed with)."""
        c = min(self.shards)
        return tuple(np.ascontiguousarray(a[:1]) if is_row else np.ascontiguousarray(a)
                     for a, is_row in zip(self.shards[c], self.row_arrays))  # fmt: skip

    def __repr__(self) -> str:
        return (f"Clients({self.n_clients} clients, sizes {list(self.sizes)}, held "
                f"{sorted(self.shards)})")  # fmt: skip


def _data_tuple(target) -> tuple[np.ndarray, ...]:
    from langevin.targets.data_targets import DataTarget

    if not isinstance(target, DataTarget):
        raise TypeError(f"target must be a DataTarget (langevin.targets.data_targets); got "
                        f"{type(target).__name__}")  # fmt: skip
    data = target.data if target.data is not None else target._jax_data_np
    if isinstance(data, np.ndarray):
        data = (data,)
    return tuple(np.asarray(a) for a in data)


def split(target, parts: Any) -> Clients:
    """Split a :class:`~langevin.targets.data_targets.DataTarget`'s rows over clients.

    Args:
        target: the pooled data target (its data is split; its functions are reused).
        parts: either a sequence of index arrays (client ``c`` owns the rows ``parts[c]``;
            disjoint, covering every row once) or an integer label per row (``(n,)``,
            client ids ``0..C−1``, every id used).

    Returns:
        :class:`Clients` holding every shard.

    Example:
        >>> clients = split(target, partition_sorted(X[:, 1], 8))   # doctest: +SKIP
    """
    data = _data_tuple(target)
    n = target.n_data
    parts_arr = None
    if isinstance(parts, np.ndarray) and parts.ndim == 1 and parts.shape[0] == n and \
            np.issubdtype(parts.dtype, np.integer):  # fmt: skip
        labels = parts
        if labels.min() < 0:
            raise ValueError("parts: client labels must be >= 0")
        n_clients = int(labels.max()) + 1
        parts_arr = [np.flatnonzero(labels == c) for c in range(n_clients)]
    else:
        if not isinstance(parts, (list, tuple)) or not parts:
            raise TypeError("parts must be a non-empty sequence of index arrays or an (n,) "
                            "integer array of client labels")  # fmt: skip
        parts_arr = [np.asarray(p) for p in parts]
        for c, p in enumerate(parts_arr):
            if p.ndim != 1 or not np.issubdtype(p.dtype, np.integer):
                raise TypeError(f"parts[{c}] must be a 1-D integer index array")
    seen = np.zeros(n, dtype=np.int64)
    for c, p in enumerate(parts_arr):
        if p.size == 0:
            raise ValueError(f"parts: client {c} has no rows")
        if p.min() < 0 or p.max() >= n:
            raise ValueError(f"parts[{c}] has indices outside [0, {n})")
        np.add.at(seen, p, 1)
    if not np.all(seen == 1):
        raise ValueError(
            f"parts must cover every row exactly once: {int(np.sum(seen == 0))} rows unowned, "
            f"{int(np.sum(seen > 1))} owned twice"
        )
    row_arrays = tuple(a.ndim >= 1 and a.shape[0] == n for a in data)
    if not row_arrays[0]:
        raise ValueError("the target's first data array must hold one row per data point")
    shards = {}
    for c, p in enumerate(parts_arr):
        p = np.sort(p).astype(np.int64)
        shards[c] = tuple(np.ascontiguousarray(a[p]) if r else a for a, r in zip(data, row_arrays))
    sizes = tuple(int(p.size) for p in parts_arr)
    return Clients(sizes, shards, row_arrays, {c: np.sort(p) for c, p in enumerate(parts_arr)})


def partition_sorted(
    values: np.ndarray,
    n_clients: int,
    *,
    sizes: Sequence[float] | None = None,
    imbalance: float = 0.0,
    seed: int = 0,
) -> list[np.ndarray]:
    """A non-IID split: rows sorted by ``values`` (a covariate, a label, a score), cut into
    ``n_clients`` contiguous blocks, so each client sees a different range of ``values``.

    Args:
        values: ``(n,)`` the sorting key (ties broken by a seeded random order).
        n_clients: C >= 1.
        sizes: relative block sizes (default equal, or random when ``imbalance > 0``).
        imbalance: block sizes ∝ Dirichlet(1/imbalance) draws (0: equal blocks).
        seed: ties and sizes.

    Returns:
        C index arrays (the ``parts`` of :func:`split`).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError("values must be 1-D (one key per row)")
    n = values.shape[0]
    if isinstance(n_clients, bool) or not isinstance(n_clients, (int, np.integer)) or \
            not 1 <= n_clients <= n:  # fmt: skip
        raise ValueError(f"n_clients must be an int in [1, {n}]; got {n_clients!r}")
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(n), values))
    if sizes is None:
        if imbalance > 0:
            sizes = rng.dirichlet(np.full(n_clients, 1.0 / imbalance))
        else:
            sizes = np.ones(n_clients)
    sizes = np.asarray(sizes, dtype=np.float64)
    if sizes.shape != (n_clients,) or np.any(sizes <= 0):
        raise ValueError("sizes must hold n_clients positive numbers")
    counts = np.maximum(1, np.floor(sizes / sizes.sum() * n).astype(int))
    counts[-1] = n - counts[:-1].sum()
    if counts[-1] < 1:
        raise ValueError("sizes leave the last client empty")
    edges = np.concatenate([[0], np.cumsum(counts)])
    return [np.sort(order[edges[c] : edges[c + 1]]) for c in range(n_clients)]
