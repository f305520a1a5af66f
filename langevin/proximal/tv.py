"""The proximity operator of 1-D total variation: Condat's direct algorithm, exact.

    prox_{λ w TV}(y) = argmin_x ½‖x − y‖² + λ w Σ_i |x_{i+1} − x_i|

Condat (2013), "A direct algorithm for 1-D total variation denoising", IEEE Signal
Processing Letters 20(11), 1054–1057, doi:10.1109/LSP.2013.2278339: a taut-string method
that runs along the signal keeping the bounds (vmin, vmax) of the current segment's value and
the running sums (umin, umax) of the residuals, writes a segment when a bound is violated and
restarts just after it. Its output is the exact minimiser (up to floating-point rounding); it
costs O(n) in practice (O(n²) in the worst case).

Written once: :func:`condat_step` is one iteration of the algorithm as a state machine over
a carry (every branch computed, the taken one selected with ``xp.select``; the segment
writes recorded as (start, value) marks). Each backend only drives the loop: a ``while``
loop in Numba (:func:`tv_prox_numba`), ``lax.while_loop`` in JAX (:func:`tv_prox_jax`) —
the namespace has no data-dependent loop. The output is filled from the marks at the end
(segments are written left to right, so every coordinate takes the value of the last mark at
or before it).

Optimality (used by the tests): with r = y − x and S_k = Σ_{i≤k} r_i, the point x is the
prox iff |S_k| ≤ λw for k < n − 1, S_{n−1} = 0, and S_k = −λw sign(x_{k+1} − x_k) wherever
x_{k+1} ≠ x_k (the dual of the taut string).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from langevin.backends.portable import portable

__all__ = [
    "TVParams",
    "TVCarry",
    "condat_step",
    "tv_value",
    "tv_prox_numpy",
    "tv_prox_numba",
    "tv_prox_jax",
    "tv_dual_gap",
]

xp: Any = None


class TVParams(NamedTuple):
    weight: Any  # scalar w > 0: g = w Σ |x_{i+1} − x_i|


class TVCarry(NamedTuple):
    k: Any
    k0: Any
    kplus: Any
    kminus: Any
    umin: Any
    umax: Any
    vmin: Any
    vmax: Any
    done: Any
    values: Any  # (n,): the value of the segment starting at i (where marks[i] = 1)
    marks: Any  # (n,): 1.0 where a segment starts


@portable
def tv_value(x, p):
    """``w Σ |x_{i+1} − x_i|``."""
    return p.weight * xp.sum(xp.abs(x[1:] - x[:-1]))


@portable
def condat_init(y, lam):
    """The carry before the first iteration (λ is the full threshold λw)."""
    zero = 0 * y.shape[0]
    return TVCarry(
        zero,
        zero,
        zero,
        zero,
        lam + 0.0 * y[0],
        -lam + 0.0 * y[0],
        y[0] - lam,
        y[0] + lam,
        False,
        xp.zeros_like(y),
        xp.zeros_like(y),
    )


@portable
def condat_step(c, y, lam):
    """One iteration of Condat's algorithm (one branch of his C code's loop body)."""
    n = y.shape[0]
    last = n - 1
    k, k0 = c.k, c.k0
    at_end = k == last
    y_next = y[xp.minimum(k + 1, last)]
    umin_n = c.umin + y_next - c.vmin
    umax_n = c.umax + y_next - c.vmax
    # the six branches
    end_min = at_end & (c.umin < 0.0)
    end_max = at_end & xp.logical_not(c.umin < 0.0) & (c.umax > 0.0)
    end_fin = at_end & xp.logical_not(c.umin < 0.0) & xp.logical_not(c.umax > 0.0)
    go = xp.logical_not(at_end)
    cut_min = go & (umin_n < -lam)
    cut_max = go & xp.logical_not(umin_n < -lam) & (umax_n > lam)
    adv = go & xp.logical_not(umin_n < -lam) & xp.logical_not(umax_n > lam)
    write_min = end_min | cut_min
    write_max = end_max | cut_max
    # a segment [k0, end] with value v is written in every branch but ``adv``
    v_fin = c.vmin + c.umin / (k - k0 + 1)
    v = xp.select(write_min, c.vmin, xp.select(write_max, c.vmax, v_fin))
    write = xp.logical_not(adv)
    seg_end = xp.select(write_min, c.kminus, xp.select(write_max, c.kplus, k))
    values = xp.set_at(c.values, k0, xp.select(write, v, c.values[k0]))
    marks = xp.set_at(c.marks, k0, xp.select(write, 1.0, c.marks[k0]))
    k0_new = xp.select(write, seg_end + 1, k0)
    y0 = y[xp.minimum(k0_new, last)]
    # advancing: k + 1, the bounds tightened where a running sum passed ±λ
    k_a = k + 1
    up = umin_n >= lam
    down = umax_n <= -lam
    vmin_a = xp.select(up, c.vmin + (umin_n - lam) / (k_a - k0 + 1), c.vmin)
    vmax_a = xp.select(down, c.vmax + (umax_n + lam) / (k_a - k0 + 1), c.vmax)
    kminus_a = xp.select(up, k_a, c.kminus)
    kplus_a = xp.select(down, k_a, c.kplus)
    umin_a = xp.select(up, lam, umin_n)
    umax_a = xp.select(down, -lam, umax_n)
    # the new state, branch by branch
    k_new = xp.select(adv, k_a, xp.select(end_fin, k, k0_new))
    kminus_new = xp.select(adv, kminus_a, xp.select(end_max | end_fin, c.kminus, k0_new))
    kplus_new = xp.select(adv, kplus_a, xp.select(end_min | end_fin, c.kplus, k0_new))
    vmin_new = xp.select(
        adv, vmin_a, xp.select(cut_min | end_min, y0, xp.select(cut_max, y0 - 2.0 * lam, c.vmin))
    )
    vmax_new = xp.select(
        adv, vmax_a, xp.select(cut_max | end_max, y0, xp.select(cut_min, y0 + 2.0 * lam, c.vmax))
    )
    umin_new = xp.select(
        adv,
        umin_a,
        xp.select(cut_min | cut_max | end_min, lam, xp.select(end_max, y0 - lam - c.vmin, c.umin)),
    )
    umax_new = xp.select(
        adv,
        umax_a,
        xp.select(cut_min | cut_max | end_max, -lam, xp.select(end_min, y0 + lam - c.vmax, c.umax)),
    )
    return TVCarry(
        k_new,
        k0_new,
        kplus_new,
        kminus_new,
        umin_new,
        umax_new,
        vmin_new,
        vmax_new,
        end_fin,
        values,
        marks,
    )


# -- the drivers: one loop per backend -----------------------------------------------------------
def tv_prox_numpy(y: np.ndarray, lam: float, p: TVParams) -> np.ndarray:
    """NumPy reference driver (the portable step's NumPy twin in a Python loop)."""
    from langevin.backends import numpy_ops
    from langevin.backends.portable import make_twin

    step = make_twin(condat_step, numpy_ops, lambda f: f, _NUMPY_MEMO)
    init = make_twin(condat_init, numpy_ops, lambda f: f, _NUMPY_MEMO)
    y = np.array(y, dtype=np.float64)
    c = init(y, float(lam) * float(p.weight))
    t = float(lam) * float(p.weight)
    while not c.done:
        c = step(c, y, t)
    return _fill_numpy(c.values, c.marks)


_NUMPY_MEMO: dict = {}


def _fill_numpy(values, marks):
    out = np.empty_like(values)
    current = values[0]
    for i in range(values.shape[0]):
        if marks[i] > 0.0:
            current = values[i]
        out[i] = current
    return out


_NUMBA_DRIVER: list = []
_NUMBA_MEMO: dict = {}


def tv_prox_numba():
    """The Numba prox ``prox(y, lam, p)`` (an ``njit`` function driving the step's twin)."""
    if _NUMBA_DRIVER:
        return _NUMBA_DRIVER[0]
    import numba

    from langevin.backends import numba_ops
    from langevin.backends.portable import make_twin

    step = make_twin(condat_step, numba_ops, numba.njit, _NUMBA_MEMO)
    init = make_twin(condat_init, numba_ops, numba.njit, _NUMBA_MEMO)

    @numba.njit
    def tv_prox(y, lam, p):
        y = np.ascontiguousarray(y)
        t = lam * p.weight
        c = init(y, t)
        while not c.done:
            c = step(c, y, t)
        out = np.empty_like(y)
        current = c.values[0]
        for i in range(y.shape[0]):
            if c.marks[i] > 0.0:
                current = c.values[i]
            out[i] = current
        return out

    _NUMBA_DRIVER.append(tv_prox)
    return tv_prox


def tv_prox_jax(y, lam, p):
    """The JAX prox: ``lax.while_loop`` over :func:`condat_step`, then the fill (a cumulative
    max of the marked starts)."""
    import jax
    import jax.numpy as jnp

    from langevin.backends import jax_ops
    from langevin.backends.portable import make_twin

    step = make_twin(condat_step, jax_ops, lambda f: f, _JAX_MEMO)
    init = make_twin(condat_init, jax_ops, lambda f: f, _JAX_MEMO)
    t = jnp.asarray(lam * p.weight, dtype=y.dtype)
    c = init(y, t)
    i0 = jnp.asarray(0, dtype=jnp.int32)  # fixed (not weak) types: the loop's carry
    c = c._replace(k=i0, k0=i0, kplus=i0, kminus=i0, done=jnp.asarray(False))
    c = jax.lax.while_loop(lambda c: jnp.logical_not(c.done), lambda c: step(c, y, t), c)
    idx = jnp.arange(y.shape[0])
    start = jax.lax.cummax(jnp.where(c.marks > 0.0, idx, 0))
    return c.values[start]


_JAX_MEMO: dict = {}


def tv_dual_gap(x: np.ndarray, y: np.ndarray, threshold: float) -> float:
    """How far ``x`` is from satisfying the optimality conditions of the TV prox of ``y`` at
    ``threshold`` = λw (module docstring); 0 at the exact prox (up to rounding)."""
    x = np.asarray(x, dtype=np.float64)
    s = np.cumsum(np.asarray(y, dtype=np.float64) - x)
    gap = abs(s[-1])
    inner = s[:-1]
    gap = max(gap, float(np.max(np.abs(inner)) - threshold) if inner.size else 0.0)
    jumps = np.diff(x)
    moving = jumps != 0.0
    if np.any(moving):
        gap = max(gap, float(np.max(np.abs(inner[moving] + threshold * np.sign(jumps[moving])))))
    return max(gap, 0.0)
