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
