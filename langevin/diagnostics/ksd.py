r"""Kernel Stein discrepancy (KSD) with the inverse multiquadric kernel.

The KSD measures how far the empirical law of draws :math:`x_1, \dots, x_n` is from a target
:math:`\pi` using only the draws and the target's *scores* :math:`s(x) = \nabla\log\pi(x)`:
no normalising constant, no reference sample. With a base kernel :math:`k` and the Langevin
Stein operator, the *Stein kernel* is

.. math::

  k_0(x, y) = s(x)^\top s(y)\, k(x, y) + s(x)^\top \nabla_y k(x, y)
            + s(y)^\top \nabla_x k(x, y) + \nabla_x \cdot \nabla_y k(x, y),

which has :math:`E_{x \sim \pi}[k_0(x, y)] = 0` for every :math:`y`. The squared KSD of the
empirical measure is the V-statistic

.. math::

  \mathrm{KSD}^2 = \frac{1}{n^2} \sum_{i, j} k_0(x_i, x_j) \ \ge 0,

and the U-statistic :math:`\frac{1}{n(n-1)} \sum_{i \ne j} k_0(x_i, x_j)` is an unbiased
estimate of the population :math:`\mathrm{KSD}^2(q, \pi) = E_{x, x' \sim q}[k_0(x, x')]`
for i.i.d. draws from :math:`q` (it is 0 in expectation when :math:`q = \pi`, and can be
negative). For i.i.d. draws from :math:`\pi` the V-statistic has expectation
:math:`E_\pi[k_0(x, x)]/n`: the KSD of exact draws falls like :math:`n^{-1/2}`.

**The kernel.** The inverse multiquadric (IMQ)
:math:`k(x, y) = (c^2 + \|x - y\|^2)^\beta` with :math:`\beta \in (-1, 0)`: Gorham & Mackey
(2017, Thm. 8) show that for distantly dissipative targets (e.g. strongly log-concave ones
outside a ball) the IMQ KSD *detects non-convergence* — KSD → 0 implies weak convergence to
:math:`\pi` — while Gaussian and Matérn kernels fail in dimension ≥ 3. With
:math:`r = x - y`, :math:`u = c^2 + \|r\|^2`:

.. math::

  \nabla_x k = 2\beta u^{\beta-1} r = -\nabla_y k, \qquad
  \nabla_x \cdot \nabla_y k = -2\beta d\, u^{\beta-1} - 4\beta(\beta-1) u^{\beta-2}\|r\|^2,

  k_0(x, y) = s_x^\top s_y\, u^\beta + 2\beta u^{\beta-1} (s_y - s_x)^\top r
            - 2\beta d\, u^{\beta-1} - 4\beta(\beta-1) u^{\beta-2} \|r\|^2.

Defaults :math:`c = 1`, :math:`\beta = -1/2` (Gorham & Mackey's experiments). The IMQ kernel
has length scale ``c`` in the units of ``x``: for a posterior whose sd is far from 1, pass
``scale`` (e.g. the posterior sd): the KSD is then that of ``z = x / scale``, whose scores
are ``scale * s(x)`` (a linear change of variables, which keeps the convergence-control
property). Compare KSD values only at the same ``c``, ``beta``, ``scale`` and ``n``: the
natural yardstick is the KSD of as many exact (or reference) draws.

**Cost.** :math:`O(n^2 d)` time and :math:`O(\text{chunk} \cdot n)` memory: the pairs are
summed in blocks of rows against the columns from the block on (the Stein kernel is
symmetric), each block from four ``(chunk, n)`` matrix products; 10⁴ draws in 10-D take a
few seconds. Thin (``thin``) or subsample (``max_points``) longer traces: successive MCMC
draws carry little new information for the KSD.

References:
  Gorham, J. and Mackey, L. (2017). Measuring sample quality with kernels. ICML.
  Liu, Q., Lee, J. and Jordan, M. (2016). A kernelized Stein discrepancy for
  goodness-of-fit tests. ICML.
  Chwialkowski, K., Strathmann, H. and Gretton, A. (2016). A kernel test of goodness of fit.
  ICML.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from langevin.diagnostics.transport import _as_points, _as_real_array, _check_finite, _check_int

__all__ = ["KSDResult", "kernel_stein_discrepancy", "ksd_squared", "target_scores"]

_STATISTICS = ("v", "u")


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _check_positive_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive real number; got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0.0):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")
    return v


def _check_beta(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"beta must be a real number in (-1, 0); got {value!r}")
    v = float(value)
    if not -1.0 < v < 0.0:
        raise ValueError(
            f"beta must lie in (-1, 0) (the IMQ range where the KSD controls convergence, "
            f"Gorham & Mackey 2017); got {value!r}"
        )
    return v


def _check_statistic(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in _STATISTICS:
        raise ValueError(f"statistic must be 'v' (V-statistic) or 'u' (U-statistic); got "
                         f"{value!r}")  # fmt: skip
    return value.lower()


def _check_scale(value: Any, d: int) -> np.ndarray | None:
    if value is None:
        return None
    arr = _as_real_array("scale", value).astype(np.float64)
    if arr.ndim == 0:
        arr = np.full(d, float(arr))
    if arr.shape != (d,):
        raise ValueError(f"scale must be a positive scalar or a vector of length d = {d}; got "
                         f"shape {arr.shape}")  # fmt: skip
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ValueError("scale must hold positive finite numbers")
    return arr


# --------------------------------------------------------------------------------------------
# The statistic
# --------------------------------------------------------------------------------------------


def _stein_block(xi, si, xj, sj, sqi, sqj, sxi, sxj, c2, beta, d):
    """The block ``k0(x_i, x_j)`` of the Stein kernel matrix, rows ``i`` against columns
    ``j`` (centred ``x``; ``sq = |x|²``, ``sx = s·x`` per point), with few temporaries."""
    # |r|² = |x_i|² + |x_j|² − 2 x_i·x_j (x centred, so no large cancellation); clip the
    # round-off below 0 on the diagonal.
    r2 = xi @ xj.T
    r2 *= -2.0
    r2 += sqi[:, None]
    r2 += sqj[None, :]
    np.maximum(r2, 0.0, out=r2)
    # (s_j − s_i)·(x_i − x_j) = s_j·x_i − s_j·x_j − s_i·x_i + s_i·x_j
    cross = xi @ sj.T
    cross += si @ xj.T
    cross -= sxj[None, :]
    cross -= sxi[:, None]
    inv_u = r2 + c2
    ub1 = np.log(inv_u)
    ub1 *= beta - 1.0
    np.exp(ub1, out=ub1)  # u^(β−1)
    np.reciprocal(inv_u, out=inv_u)  # 1/u
    # k0 = u^(β−1) [ s_i·s_j u + 2β cross − 2βd − 4β(β−1) |r|²/u ]
    k0 = si @ sj.T
    k0 *= r2 + c2
    cross *= 2.0 * beta
    k0 += cross
    k0 -= 2.0 * beta * d
    r2 *= inv_u
    r2 *= 4.0 * beta * (beta - 1.0)
    k0 -= r2
    k0 *= ub1
    return k0


def ksd_squared(
    draws: Any,
    scores: Any,
    *,
    c: float = 1.0,
    beta: float = -0.5,
    scale: Any = None,
    statistic: str = "v",
    chunk_size: int = 256,
) -> float:
    r"""The squared kernel Stein discrepancy of ``draws`` given their ``scores`` (IMQ kernel).

    .. math::

      \text{V: } \frac{1}{n^2}\sum_{i,j} k_0(x_i, x_j), \qquad
      \text{U: } \frac{1}{n(n-1)}\sum_{i \ne j} k_0(x_i, x_j),

    with the IMQ Stein kernel :math:`k_0` of the module docstring.

    Args:
      draws: ``(n, d)`` array of points (a 1-D array is ``n`` points in one dimension).
      scores: ``(n, d)``, :math:`\nabla\log\pi` at each point.
      c: the IMQ offset ``c > 0`` (kernel length scale), default 1.
      beta: the IMQ exponent in ``(-1, 0)``, default ``-1/2``.
      scale: None, a positive scalar or a ``(d,)`` vector: the KSD of ``z = x / scale``
        (scores ``scale * s``), i.e. the kernel measured in units of ``scale``.
      statistic: ``"v"`` (V-statistic, ``>= 0``, the KSD² of the empirical measure) or
        ``"u"`` (U-statistic, unbiased for the population KSD², may be negative).
      chunk_size: rows per block; a block's temporaries take about
        ``56 * chunk_size * n`` bytes (140 MB for 10⁴ draws at the default 256).

    Returns:
      The squared KSD (a float).

    Example:
      >>> import numpy as np
      >>> x = np.random.default_rng(0).standard_normal((2000, 2))
      >>> v = ksd_squared(x, -x)             # exact N(0, I) draws: E[V] = 2d/n = 0.002
      >>> 0.001 < v < 0.004
      True
      >>> abs(ksd_squared(x + 1.0, -x) - v) < 1e-15   # shifted together with their law
      True
    """
    x = _as_points("draws", draws)
    s = _as_points("scores", scores)
    if s.shape != x.shape:
        raise ValueError(f"scores must have the shape of draws {x.shape}; got {s.shape}")
    c = _check_positive_real("c", c)
    beta = _check_beta(beta)
    statistic = _check_statistic(statistic)
    chunk_size = _check_int("chunk_size", chunk_size, 1)
    n, d = x.shape
    scale_arr = _check_scale(scale, d)
    if scale_arr is not None:
        x = x / scale_arr
        s = s * scale_arr
    # The Stein kernel depends on x only through differences: centring loses nothing and
    # keeps |x_i|² + |x_j|² − 2 x_i·x_j free of cancellation when the draws sit far from 0.
    x = x - x.mean(axis=0)
    sq = np.einsum("ij,ij->i", x, x)
    sx = np.einsum("ij,ij->i", s, x)
    c2 = c * c
    total = 0.0
    trace = 0.0
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        rows, cols = slice(start, stop), slice(start, n)
        k0 = _stein_block(x[rows], s[rows], x[cols], s[cols], sq[rows], sq[cols], sx[rows],
                          sx[cols], c2, beta, d)  # fmt: skip
        # Columns from `start` on (k0 is symmetric): the square [start, stop)² counted once,
        # the rectangle to its right twice.
        m = stop - start
        square = float(k0[:, :m].sum())
        total += square + 2.0 * float(k0[:, m:].sum())
        trace += float(np.trace(k0[:, :m]))
    if statistic == "v":
        return max(total, 0.0) / (n * n)  # a PSD kernel's quadratic form; clip round-off
    if n < 2:
        raise ValueError("statistic='u' needs at least 2 draws")
    return (total - trace) / (n * (n - 1))


# --------------------------------------------------------------------------------------------
# Scores from a target
# --------------------------------------------------------------------------------------------


def target_scores(target: Any, draws: Any, backend: str | None = None) -> np.ndarray:
    r"""``∇log π`` of ``target`` at each row of ``draws`` ``(n, d)``, as float64 ``(n, d)``.

    Uses the target's Numba form (``value_and_grad`` or ``grad``; with its data) one draw
    at a time, or its JAX form (``grad``/``value_and_grad``, or autodiff of ``logdensity``)
    vmapped and jitted over the draws. For a data target
    (:class:`~langevin.targets.data_targets.DataTarget`) it is the *full-data* gradient.
    On JAX the precision is JAX's (float32 unless ``jax_enable_x64`` is on).

    Args:
      target: a :class:`~langevin.targets.Target`.
      draws: points ``(n, d)``.
      backend: ``"numba"`` or ``"jax"``; default Numba when the target has a Numba form.
    """
    from langevin.targets.base import Target

    if not isinstance(target, Target):
        raise TypeError(f"target must be a langevin Target; got {type(target).__name__}")
    x = _as_points("draws", draws)
    if target.dim is not None and x.shape[1] != target.dim:
        raise ValueError(f"draws have d = {x.shape[1]} coordinates but target has dim = "
                         f"{target.dim}")  # fmt: skip
    if backend is None:
        backend = "numba" if target.has_numba else "jax"
    if backend not in ("numba", "jax"):
        raise ValueError(f"backend must be 'numba' or 'jax'; got {backend!r}")
    if backend == "numba":
        return _numba_scores(target, x)
    return _jax_scores(target, x)


def _numba_scores(target: Any, x: np.ndarray) -> np.ndarray:
    fns = target.numba_functions
    if "value_and_grad" in fns:
        vg = fns["value_and_grad"]

        def grad(p, *data):
            return vg(p, *data)[1]
    elif "grad" in fns:
        grad = fns["grad"]
    else:
        raise TypeError(
            f"target {target.name!r} has no Numba gradient (value_and_grad or grad); "
            "pass scores= or backend='jax'"
        )
    extra = () if target.data is None else (target.data,)
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = np.asarray(grad(np.ascontiguousarray(x[i]), *extra), dtype=np.float64)
    return out


def _jax_scores(target: Any, x: np.ndarray) -> np.ndarray:
    import jax
    import jax.numpy as jnp

    from langevin.targets.data_targets import DataTarget

    dtype = jax.dtypes.canonicalize_dtype(np.float64)
    xs = jnp.asarray(x, dtype=dtype)
    if isinstance(target, DataTarget):
        if not target.has_jax:
            raise TypeError(f"target {target.name!r} has no JAX form; use backend='numba'")
        from langevin.targets.capabilities import SLOTS

        form = target._cache[("jax-form",)]
        vg = form.build(form.data)[1 + SLOTS.index("value_and_grad")]
        fn = jax.jit(jax.vmap(lambda p, data: vg(p, data)[1], in_axes=(0, None)))
        return np.asarray(fn(xs, form.data), dtype=np.float64)
    fns = target.jax_functions
    if "grad" in fns:
        g = fns["grad"]
    elif "value_and_grad" in fns:
        vg = fns["value_and_grad"]

        def g(p):
            return vg(p)[1]
    elif "logdensity" in fns:
        g = jax.grad(fns["logdensity"])
    else:
        raise TypeError(f"target {target.name!r} has no JAX log-density or gradient; pass "
                        "scores= or backend='numba'")  # fmt: skip
    return np.asarray(jax.jit(jax.vmap(g))(xs), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# The user-facing diagnostic
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KSDResult:
    """The kernel Stein discrepancy of a set of draws.

    Attributes:
      ksd: the KSD, ``sqrt(max(ksd_squared, 0))``, in units of the (scaled) score.
      ksd_squared: the V- or U-statistic.
      n: the number of draws used (after thinning and subsampling).
      statistic: ``"v"`` or ``"u"``.
      c, beta: the IMQ kernel's parameters.
    """

    ksd: float
    ksd_squared: float
    n: int
    statistic: str
    c: float
    beta: float

    def __float__(self) -> float:
        return self.ksd

    def __str__(self) -> str:
        return (f"KSD = {self.ksd:.4g} ({self.statistic.upper()}-statistic, IMQ c = {self.c:g}, "
                f"beta = {self.beta:g}, {self.n} draws)")  # fmt: skip


def _thinned_draws(samples: Any, thin: int) -> np.ndarray:
    """``(n, d)`` draws from an array ``(n, d)`` / ``(chains, draws, d)`` or a trace, every
    ``thin``-th draw of each chain; chains listed in a trace's ``diverged``/``failures`` are
    left out (as ``Trace.flat()`` does)."""
    if hasattr(samples, "draws") and not hasattr(samples, "__array__"):
        draws = _as_real_array("samples.draws", samples.draws)
        if draws.ndim != 3:
            raise ValueError(f"samples.draws must have shape (chains, draws, d); got shape "
                             f"{draws.shape}")  # fmt: skip
        running = getattr(samples, "running_chains", None)
        if running is None:
            stopped = set(getattr(samples, "diverged", None) or {})
            running = [c for c in range(draws.shape[0]) if c not in stopped]
        if not running:
            raise ValueError(f"samples: all {draws.shape[0]} chains stopped; no draws")
        return _as_points("samples.draws", draws[list(running), ::thin], allow_chains=True)
    arr = _as_real_array("samples", samples)
    if arr.ndim == 3:
        return _as_points("samples", arr[:, ::thin], allow_chains=True)
    if arr.ndim in (1, 2):
        return _as_points("samples", arr[::thin])
    raise ValueError(f"samples must have shape (n, d), (chains, draws, d) or (n,); got shape "
                     f"{arr.shape}")  # fmt: skip


def kernel_stein_discrepancy(
    samples: Any,
    target: Any = None,
    *,
    scores: Any = None,
    backend: str | None = None,
    thin: int = 1,
    max_points: int | None = None,
    seed: int | None = 0,
    c: float = 1.0,
    beta: float = -0.5,
    scale: Any = None,
    statistic: str = "v",
    chunk_size: int = 256,
) -> KSDResult:
    r"""Kernel Stein discrepancy of a trace or of draws against a target (IMQ kernel).

    A sample-quality diagnostic for biased samplers — stochastic-gradient MCMC, ULA — whose
    draws cannot be checked by R-hat or ESS (those see mixing, not bias): the KSD compares
    the draws with :math:`\pi` itself through its score (module docstring; Gorham & Mackey
    2017). Read it against the KSD of as many exact or reference draws (the finite-sample
    level, :math:`\approx\sqrt{E_\pi k_0(x,x)/n}`), and compare samplers at equal ``n``,
    ``c``, ``beta`` and ``scale``.

    Args:
      samples: draws ``(n, d)`` or ``(chains, draws, d)`` (chains pooled), or a
        :class:`~langevin.trace.Trace` (stopped chains left out).
      target: the target whose scores are used (:func:`target_scores`); for a data target the
        full-data gradient. Not needed when ``scores`` is given.
      scores: ``∇log π`` at the draws, of the shape of ``samples`` (before thinning);
        instead of ``target``.
      backend: where the target's gradient is evaluated (``"numba"``/``"jax"``).
      thin: keep every ``thin``-th draw of each chain.
      max_points: after thinning, a random subsample of at most this many draws (None: all).
      seed: the subsample's seed.
      c, beta, scale, statistic, chunk_size: as in :func:`ksd_squared`.

    Returns:
      A :class:`KSDResult` (``float(result)`` is the KSD).

    Example:
      >>> import numpy as np, langevin
      >>> from langevin.diagnostics import kernel_stein_discrepancy
      >>> target = langevin.targets.gaussian(2)
      >>> rng = np.random.default_rng(1)
      >>> good = kernel_stein_discrepancy(rng.standard_normal((1000, 2)), target)
      >>> bad = kernel_stein_discrepancy(rng.standard_normal((1000, 2)) + 0.5, target)
      >>> good.ksd < 0.1 < bad.ksd
      True
    """
    thin = _check_int("thin", thin, 1)
    if max_points is not None:
        max_points = _check_int("max_points", max_points, 2)
    if seed is not None:
        seed = _check_int("seed", seed, 0)
    if (target is None) == (scores is None):
        raise TypeError("kernel_stein_discrepancy needs exactly one of target= and scores=")
    x = _thinned_draws(samples, thin)
    if scores is not None:
        s_all = _as_real_array("scores", scores)
        shape = np.shape(getattr(samples, "draws", samples))
        if s_all.shape != shape:
            raise ValueError(f"scores must have the shape of the draws {shape}; got "
                             f"{s_all.shape}")  # fmt: skip
        s = _thinned_draws(s_all if not hasattr(samples, "draws") else _Like(samples, s_all),
                           thin)  # fmt: skip
    else:
        s = None
    if max_points is not None and len(x) > max_points:
        pick = np.sort(np.random.default_rng(seed).choice(len(x), max_points, replace=False))
        x = x[pick]
        s = None if s is None else s[pick]
    if s is None:
        s = target_scores(target, x, backend)
    _check_finite("scores", s)
    value = ksd_squared(x, s, c=c, beta=beta, scale=scale, statistic=statistic,
                        chunk_size=chunk_size)  # fmt: skip
    return KSDResult(math.sqrt(max(value, 0.0)), value, len(x), _check_statistic(statistic),
                     float(c), float(beta))  # fmt: skip


class _Like:
    """Scores laid out like a trace's draws (so that the same chains are left out)."""

    def __init__(self, trace: Any, draws: np.ndarray):
        self.draws = draws
        self.running_chains = getattr(trace, "running_chains", None)
        self.diverged = getattr(trace, "diverged", None)
