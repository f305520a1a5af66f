"""The array namespace ``xp`` as plain NumPy, run by the Python interpreter.

Used where compiling is not worth it: the Numba backend builds each chain's initial state
with the NumPy twin of the kernel's ``init_math`` (one evaluation of the target, no
compilation). It is also the easiest way to step through kernel math in a debugger.
"""

from __future__ import annotations

import numpy as np

name = "numpy"

sqrt = np.sqrt
exp = np.exp
log = np.log
log1p = np.log1p
expm1 = np.expm1
abs = np.abs
sum = np.sum
dot = np.dot
minimum = np.minimum
maximum = np.maximum
logical_not = np.logical_not
isfinite = np.isfinite
zeros_like = np.zeros_like
inf = np.inf
nan = np.nan
cumsum = np.cumsum
floor = np.floor
arange = np.arange
zeros = np.zeros
max = np.max


def all_finite(x):
    return bool(np.all(np.isfinite(x)))


def select(cond, a, b):
    return a if cond else b


def select_tree(cond, a, b):
    return a if cond else b


def value_and_grad(target, x):
    """Call the Numba form of a target from Python (see ``numba_ops.value_and_grad``)."""
    if len(target) == 1:
        value, grad = target[0](x)
    elif len(target) == 2 and callable(target[1]):
        value, grad = target[0](x), target[1](x)
    elif len(target) == 2:
        value, grad = target[0](x, target[1])
    else:
        value, grad = target[0](x, target[2]), target[1](x, target[2])
    return float(value), grad


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
    return type(tree)(*(a[idx] for a in tree))


def index_tree(tree, i):
    return type(tree)(*(a[i] for a in tree))


def cond(pred, true_fn, false_fn, args):
    return true_fn(args) if pred else false_fn(args)
