"""The array namespace ``xp`` as the Numba backend binds it.

Every name here has a twin of the same meaning in :mod:`langevin.backends.jax_ops`; kernel
math may use only names defined in both. Helpers that must look at the *type* of their
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

__all__ = [
    "sqrt", "exp", "log", "log1p", "expm1", "abs", "sum", "dot", "minimum", "maximum",
    "isfinite", "logical_not", "all_finite", "select", "select_tree", "value_and_grad", "fori_loop",
    "inf", "nan", "zeros_like",
]  # fmt: skip

name = "numba"

sqrt = np.sqrt
exp = np.exp
log = np.log
log1p = np.log1p
expm1 = np.expm1
abs = np.abs
sum = np.sum
dot = np.dot
minimum = min
maximum = max
logical_not = np.logical_not
isfinite = np.isfinite
zeros_like = np.zeros_like
inf = np.inf
nan = np.nan


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


def value_and_grad(target, x):  # pragma: no cover - replaced by the overload
    """``(log π(x), ∇log π(x))`` for the Numba form of a target.

    The target is a tuple whose layout says which functions the user gave:
    ``(vg,)``, ``(vg, data)``, ``(logp, grad)`` or ``(logp, grad, data)``.
    """
    raise NotImplementedError


@overload(value_and_grad)
def _value_and_grad(target, x):
    n = len(target)
    if n == 1:
        return lambda target, x: target[0](x)
    if n == 2 and isinstance(target[1], nt.FunctionType):
        return lambda target, x: (target[0](x), target[1](x))
    if n == 2:
        return lambda target, x: target[0](x, target[1])
    if n == 3:
        return lambda target, x: (target[0](x, target[2]), target[1](x, target[2]))
    return None


@numba.njit
def fori_loop(lower, upper, body, carry, args):
    """``carry = body(i, carry, args)`` for ``i`` in ``range(lower, upper)``.

    ``body`` must be a module-level portable function, and everything it needs besides the
    loop index and the carry comes in ``args`` (a tuple; it may hold the target): Numba
    cannot pass a closure that captures runtime values to another compiled function.
    """
    for i in range(lower, upper):
        carry = body(i, carry, args)
    return carry
