"""The array namespace ``xp`` as the JAX backend binds it.

Mirrors :mod:`langevin.backends.numba_ops` name for name. ``select`` is ``jnp.where``, which
broadcasts a scalar condition over arrays; ``select_tree`` maps it over a NamedTuple.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "sqrt", "exp", "log", "log1p", "expm1", "abs", "sum", "dot", "minimum", "maximum",
    "isfinite", "logical_not", "all_finite", "select", "select_tree", "value_and_grad", "fori_loop",
    "inf", "nan", "zeros_like",
    # population (SMC) helpers: langevin.smc
    "cumsum", "floor", "arange", "zeros", "max", "to_int", "inverse_cdf", "scatter_add",
    "set_at", "take", "take_tree", "index_tree", "cond",
]  # fmt: skip

name = "jax"

sqrt = jnp.sqrt
exp = jnp.exp
log = jnp.log
log1p = jnp.log1p
expm1 = jnp.expm1
abs = jnp.abs
sum = jnp.sum
dot = jnp.dot
minimum = jnp.minimum
maximum = jnp.maximum
logical_not = jnp.logical_not
isfinite = jnp.isfinite
zeros_like = jnp.zeros_like
inf = jnp.inf
nan = jnp.nan
cumsum = jnp.cumsum
floor = jnp.floor
arange = jnp.arange
zeros = jnp.zeros
max = jnp.max


def all_finite(x):
    return jnp.all(jnp.isfinite(x))


def select(cond, a, b):
    return jnp.where(cond, a, b)


def select_tree(cond, a, b):
    return jax.tree_util.tree_map(lambda u, v: jnp.where(cond, u, v), a, b)


def value_and_grad(target, x):
    """``(log π(x), ∇log π(x))``: on JAX the target is the jitted value-and-grad function."""
    return target(x)


def fori_loop(lower, upper, body, carry, args):
    """``carry = body(i, carry, args)`` for ``i`` in ``range(lower, upper)`` (bounds may be
    traced: a dynamic trip count compiles once)."""
    return jax.lax.fori_loop(lower, upper, lambda i, c: body(i, c, args), carry)


# -- population (SMC) helpers (see numba_ops for the contract of each) -----------------------
def to_int(a):
    """``a`` (whole, non-negative floats) as integers (int32, or int64 under ``jax_enable_x64``)."""
    return a.astype(int)  # the default integer type: no warning without x64


def inverse_cdf(cdf, u):
    """``min{j : cdf[j] > u[m]}``, capped at the first index reaching the top ``cdf[n−1]``:
    the same comparisons as the Numba merge pass, as a parallel bisection (``searchsorted``),
    which suits accelerators."""
    idx = jnp.searchsorted(cdf, u, side="right")
    cap = jnp.searchsorted(cdf, cdf[-1], side="left")
    return jnp.minimum(idx, cap).astype(int)  # searchsorted gives int32 even under x64


def scatter_add(a, idx, values):
    return a.at[idx].add(values)


def set_at(a, i, value):
    return a.at[i].set(value)


def take(a, idx):
    return a[idx]


def take_tree(tree, idx):
    return jax.tree_util.tree_map(lambda a: a[idx], tree)


def index_tree(tree, i):
    return jax.tree_util.tree_map(lambda a: a[i], tree)


def cond(pred, true_fn, false_fn, args):
    """``lax.cond``: only the branch taken runs (outside ``vmap``)."""
    return jax.lax.cond(pred, true_fn, false_fn, args)
