"""The array namespace ``xp`` as plain NumPy, run by the Python interpreter.

Used where compiling is not worth it: the Numba backend builds each chain's initial state
with the NumPy twin of the kernel's ``init_math`` (one evaluation of the target, no
compilation). It is also the easiest way to step through kernel math in a debugger.
"""

from __future__ import annotations

import numpy as np

name = "numpy"


def all_finite(x):
    return bool(np.all(np.isfinite(x)))


def select(cond, a, b):
    return a if cond else b


def select_tree(cond, a, b):
    return a if cond else b


def fori_loop(lower, upper, body, carry, args):
    for i in range(int(lower), int(upper)):
        carry = body(i, carry, args)
    return carry


# -- population (SMC) helpers (see numba_ops for the contract of each) -----------------------
def to_int(a):
    return np.asarray(a).astype(np.int64)


def inverse_cdf(cdf, u):
    idx = np.searchsorted(cdf, u, side="right")
    return np.minimum(idx, np.searchsorted(cdf, cdf[-1], side="left"))


def scatter_add(a, idx, values):
    out = np.array(a, copy=True)
    np.add.at(out, idx, values)
    return out


def set_at(a, i, value):
    a[i] = value  # in place, as on Numba
    return a


def take(a, idx):
    return a[idx]


def take_tree(tree, idx):
    return type(tree)(*(take_tree(a, idx) if isinstance(a, tuple) else a[idx] for a in tree))


def index_tree(tree, i):
    values = (index_tree(a, i) if isinstance(a, tuple) else a[i] for a in tree)
    return type(tree)(*values) if hasattr(tree, "_fields") else tuple(values)


def cond(pred, true_fn, false_fn, args):
    return true_fn(args) if pred else false_fn(args)


def while_loop(cond_fn, body_fn, carry, args):
    while cond_fn(carry, args):
        carry = body_fn(carry, args)
    return carry


# -- the target's capabilities, and the table ---------------------------------------------------
def _bind() -> None:
    import sys

    from langevin.backends.namespace import bind
    from langevin.backends.target_access import python_accessors

    globals().update(python_accessors(sys.modules[__name__], _ACCESSOR_TWINS))
    bind(globals(), "numpy")


_ACCESSOR_TWINS: dict = {}
_bind()
