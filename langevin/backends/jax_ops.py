"""The array namespace ``xp`` as the JAX backend binds it.

The names are those of :mod:`langevin.backends.namespace`; this module defines the ones
the table marks custom. ``select`` is ``jnp.where``, which
broadcasts a scalar condition over arrays; ``select_tree`` maps it over a NamedTuple.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

name = "jax"


def all_finite(x):
    return jnp.all(jnp.isfinite(x))


def select(cond, a, b):
    return jnp.where(cond, a, b)


def select_tree(cond, a, b):
    return jax.tree_util.tree_map(lambda u, v: jnp.where(cond, u, v), a, b)


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


def while_loop(cond_fn, body_fn, carry, args):
    """``lax.while_loop``: a dynamic trip count. Under ``vmap`` the batched loop runs until
    every member's ``cond_fn`` is false, and a member that is done keeps its carry."""
    return jax.lax.while_loop(lambda c: cond_fn(c, args), lambda c: body_fn(c, args), carry)


# -- the target's capabilities, and the table ---------------------------------------------------
def _bind() -> None:
    import sys

    from langevin.backends.namespace import bind
    from langevin.backends.target_access import python_accessors

    globals().update(python_accessors(sys.modules[__name__], _ACCESSOR_TWINS))
    bind(globals(), "jax")


_ACCESSOR_TWINS: dict = {}
_bind()
