"""The array namespace ``xp`` as the Numba backend binds it.

The names are those of :mod:`langevin.backends.namespace` (one table for every backend);
this module defines the ones the table marks custom. Helpers that must look at the *type* of their
arguments (a state NamedTuple, the target's function tuple) are Numba ``@overload``s that
generate their implementation per type at compile time.

Rule for this file and for the loops: never assign an array into an array slice
(``out[t] = vec``). Numba then compiles its shape-mismatch error formatting, which costs
about 3.5 s of first-compile time; element loops cost nothing.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types as nt
from numba.extending import overload

name = "numba"


@numba.njit(cache=True)
def all_finite(x):
    """True when every entry of the 1-D array ``x`` is finite.

    An index loop: iterating ``x.ravel()`` costs 0.4 s more of first compilation.
    """
    for i in range(x.shape[0]):
        if not np.isfinite(x[i]):
            return False
    return True


@numba.njit(cache=True)
def select(cond, a, b):
    """``a`` if scalar ``cond`` else ``b`` (scalars or arrays of one shape)."""
    return a if cond else b


def where(cond, a, b):  # pragma: no cover - replaced by the overload
    """Elementwise ``where``; a scalar ``cond`` selects whole arrays (as ``jnp.where``)."""
    raise NotImplementedError


@overload(where)
def _where(cond, a, b):
    if isinstance(cond, (nt.Boolean, nt.Number)):
        return lambda cond, a, b: a if cond else b
    return lambda cond, a, b: np.where(cond, a, b)


def clip(a, lo, hi):  # pragma: no cover - replaced by the overload
    """Elementwise ``min(max(a, lo), hi)`` (scalars included: ``np.clip`` is arrays-only)."""
    raise NotImplementedError


def _bound_at(b, i, n):  # pragma: no cover - replaced by the overload
    """Entry ``i`` of a clip bound: a scalar, or a 1-D array of length 1 or ``n``."""
    raise NotImplementedError


@overload(_bound_at)
def _bound_at_impl(b, i, n):
    if isinstance(b, nt.Array):
        def at(b, i, n):
            if b.shape[0] != 1 and b.shape[0] != n:
                raise ValueError("clip: bounds do not broadcast to the array")
            return b[0 if b.shape[0] == 1 else i]

        return at
    return lambda b, i, n: b


def _is_float_vector(t) -> bool:
    return isinstance(t, nt.Array) and t.ndim == 1 and t.dtype == nt.float64


@overload(clip)
def _clip(a, lo, hi):
    if not (_is_float_vector(a)
            and all(t == nt.float64 or _is_float_vector(t) for t in (lo, hi))):  # fmt: skip
        return lambda a, lo, hi: np.minimum(np.maximum(a, lo), hi)

    # A 1-D float64 array with scalar or 1-D bounds (length 1 or len(a), broadcast as NumPy
    # does): one loop and one allocation, where the ufunc form allocates max(a, lo) and
    # broadcasts through the generic ufunc loop (0.39 against 0.21 µs for a soft threshold
    # at d = 100, benchmarks/results/proximal_myula.md). Each entry is the same
    # np.minimum(np.maximum(a_i, lo_i), hi_i), NaN propagating, so the values are identical.
    def impl(a, lo, hi):
        n = a.shape[0]
        out = np.empty(n, dtype=np.float64)
        for i in range(n):
            out[i] = np.minimum(np.maximum(a[i], _bound_at(lo, i, n)), _bound_at(hi, i, n))
        return out

    return impl


def select_tree(cond, a, b):  # pragma: no cover - replaced by the overload
    """Field-wise ``select`` over two NamedTuples of the same type."""
    raise NotImplementedError


@overload(select_tree)
def _select_tree(cond, a, b):
    if not isinstance(a, nt.BaseNamedTuple):
        return None
    cls = a.instance_class
    fields = ", ".join(f"select(cond, a[{i}], b[{i}])" for i in range(len(a)))
    src = f"def impl(cond, a, b):\n    return cls({fields})\n"
    scope = {"cls": cls, "select": select}
    exec(src, scope)  # one tiny impl per NamedTuple type, generated at compile time
    return scope["impl"]


@numba.njit(inline="always")
def fori_loop(lower, upper, body, carry, args):
    """``carry = body(i, carry, args)`` for ``i`` in ``range(lower, upper)``.

    Inlined at the IR level, so ``body`` is called directly: passed as a run-time value, the
    dispatcher would become a pointer to a Python object (a "dynamic global"), which Numba's
    disk cache refuses, and every loop using ``fori_loop`` would recompile in every process.

    ``body`` must be a module-level portable function, and everything it needs besides the
    loop index and the carry comes in ``args`` (a tuple; it may hold the target): Numba
    cannot pass a closure that captures runtime values to another compiled function.
    """
    for i in range(lower, upper):
        carry = body(i, carry, args)
    return carry


# -- population (SMC) helpers ----------------------------------------------------------------
# Used by langevin.smc: resampling, the population step of the Feynman–Kac loop. Each has a
# twin of the same meaning in jax_ops and numpy_ops; integer results are int64 here.


@numba.njit(cache=True)
def to_int(a):
    """``a`` (whole, non-negative floats, or booleans) as an int64 array."""
    return a.astype(np.int64)


@numba.njit(cache=True)
def inverse_cdf(cdf, u):
    """``A[m] = min{j : cdf[j] > u[m]}`` for **sorted** ``u`` and non-decreasing ``cdf``.

    One merge pass over both sorted arrays: O(n + m), no search. Ties go to the next index
    (the intervals ``[cdf[j−1], cdf[j])`` are half-open), so an index whose weight is zero
    is never returned. A point at or past the top ``cdf[n−1]`` (round-off) gets the first
    index where the top is reached, the last one with positive weight. The JAX twin runs
    the same comparisons as ``searchsorted``, hence returns the same indices.
    """
    n = cdf.shape[0]
    top = cdf[n - 1]
    out = np.empty(u.shape[0], dtype=np.int64)
    j = 0
    for m in range(u.shape[0]):
        while j < n - 1 and cdf[j] <= u[m] and cdf[j] < top:
            j += 1
        out[m] = j
    return out


@numba.njit(cache=True)
def scatter_add(a, idx, values):
    """A copy of ``a`` with ``values[k]`` added at ``idx[k]`` for every k (repeats add up)."""
    out = a.copy()
    for k in range(idx.shape[0]):
        out[idx[k]] += values[k]
    return out


@numba.njit(cache=True)
def set_at(a, i, value):
    """``a`` with ``a[i] = value``. Writes into ``a`` and returns it (no copy; the JAX twin
    returns an updated copy): use it only on an array the calling function created, and use
    only the returned array afterwards."""
    a[i] = value
    return a


def take(a, idx):  # pragma: no cover - replaced by the overload
    """``a[idx]`` along the first axis (1-D or 2-D ``a``, integer array ``idx``)."""
    raise NotImplementedError


@overload(take)
def _take(a, idx):
    if not isinstance(a, nt.Array):
        return None
    if a.ndim == 1:

        def impl1(a, idx):
            out = np.empty(idx.shape[0], dtype=a.dtype)
            for k in range(idx.shape[0]):
                out[k] = a[idx[k]]
            return out

        return impl1
    if a.ndim == 2:

        def impl2(a, idx):
            # element loops: no array-into-slice assignment (see the module docstring)
            out = np.empty((idx.shape[0], a.shape[1]), dtype=a.dtype)
            for k in range(idx.shape[0]):
                row = idx[k]
                for j in range(a.shape[1]):
                    out[k, j] = a[row, j]
            return out

        return impl2
    return None


def take_tree(tree, idx):  # pragma: no cover - replaced by the overload
    """``take`` applied to every field of a NamedTuple of arrays with a leading axis."""
    raise NotImplementedError


@overload(take_tree)
def _take_tree(tree, idx):
    if not isinstance(tree, nt.BaseNamedTuple):
        return None
    cls = tree.instance_class
    fields = ", ".join(
        f"take_tree(tree[{i}], idx)"
        if isinstance(t, nt.BaseNamedTuple)
        else f"take(tree[{i}], idx)"
        for i, t in enumerate(tree)
    )
    src = f"def impl(tree, idx):\n    return cls({fields})\n"
    scope = {"cls": cls, "take": take, "take_tree": take_tree}
    exec(src, scope)  # one tiny impl per NamedTuple type, generated at compile time
    return scope["impl"]


def index_tree(tree, i):  # pragma: no cover - replaced by the overload
    """``cls(tree[0][i], tree[1][i], ...)``: entry ``i`` of every field of a (nested)
    NamedTuple or plain tuple of arrays."""
    raise NotImplementedError


@overload(index_tree)
def _index_tree(tree, i):
    if not isinstance(tree, nt.BaseTuple):
        return None
    nested = (nt.BaseTuple,)
    fields = "".join(
        (f"index_tree(tree[{k}], i), " if isinstance(t, nested) else f"tree[{k}][i], ")
        for k, t in enumerate(tree)
    )
    if isinstance(tree, nt.BaseNamedTuple):
        src = f"def impl(tree, i):\n    return cls({fields})\n"
        scope = {"cls": tree.instance_class, "index_tree": index_tree}
    else:  # a plain tuple
        src = f"def impl(tree, i):\n    return ({fields})\n"
        scope = {"index_tree": index_tree}
    exec(src, scope)
    return scope["impl"]


def cond(pred, true_fn, false_fn, args):  # pragma: no cover - replaced by the overload
    """``true_fn(args)`` if scalar ``pred`` else ``false_fn(args)``; only the branch taken
    runs. Both must be module-level portable functions returning values of the same types.

    An overload inlined into its caller that calls the two functions as constants: passed
    as runtime values, Numba would embed their addresses ("dynamic globals") and refuse to
    cache the caller whenever a branch allocates an array.
    """
    raise NotImplementedError


@overload(cond, inline="always")
def _cond(pred, true_fn, false_fn, args):
    if not (isinstance(true_fn, nt.Dispatcher) and isinstance(false_fn, nt.Dispatcher)):
        return None
    on_true, on_false = true_fn.dispatcher, false_fn.dispatcher

    def impl(pred, true_fn, false_fn, args):
        if pred:
            return on_true(args)
        return on_false(args)

    return impl


def while_loop(cond_fn, body_fn, carry, args):  # pragma: no cover - replaced by the overload
    """``while cond_fn(carry, args): carry = body_fn(carry, args)``; returns ``carry``.

    ``cond_fn`` and ``body_fn`` are module-level portable functions; everything they need
    besides the carry comes in ``args``; ``body_fn`` returns a carry of the same types. As
    for :func:`cond`, an overload inlined into its caller calls the two functions as
    constants, so a caller whose body allocates arrays stays cacheable on disk.
    """
    raise NotImplementedError


@overload(while_loop, inline="always")
def _while_loop(cond_fn, body_fn, carry, args):
    if not (isinstance(cond_fn, nt.Dispatcher) and isinstance(body_fn, nt.Dispatcher)):
        return None
    keep_going, body = cond_fn.dispatcher, body_fn.dispatcher

    def impl(cond_fn, body_fn, carry, args):
        while keep_going(carry, args):
            carry = body(carry, args)
        return carry

    return impl


# -- the target's capabilities, and the table ---------------------------------------------------
def _bind() -> None:
    import sys

    from langevin.backends.namespace import bind
    from langevin.backends.target_access import numba_accessors

    module = sys.modules[__name__]
    globals().update(numba_accessors(module, _ACCESSOR_TWINS))
    bind(globals(), "numba")


_ACCESSOR_TWINS: dict = {}
_bind()
