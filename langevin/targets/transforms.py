"""Constrained parameters: named transforms and targets sampled on the unconstrained space.

A user writes the log-density ``log p(x)`` of parameters ``x`` on their constrained support
(σ > 0, p ∈ (a, b), a probability vector, an ordered vector, the Cholesky factor of a
correlation matrix) and samples ``u ∈ ℝ^n`` with ``x = f(u)``; the density of ``u`` is

    log π(u) = log p(f(u)) + log |det J_f(u)|,

the change-of-variables formula, as in Stan (Stan Development Team, *Stan Reference Manual*,
"Constraint transforms"; Carpenter et al. 2017). Each transform's forward map, log-Jacobian
and *pullback* ``u ↦ J_f(u)ᵀ g + ∇_u log |det J_f(u)|`` (the gradient of ``log π`` from the
gradient ``g`` of ``log p``) are portable functions written once against ``xp``: the Numba
and the JAX target compute the same numbers, and a Numba user needs only the gradient of
``log p`` on the constrained space.

* :func:`positive` — ``x = exp(u)``; ``log|J| = Σ u``.
* :func:`interval` ``(a, b)`` — ``x = a + (b − a) σ(u)`` with the logistic ``σ``;
  ``log|J| = Σ [log(b − a) + log σ(u) + log(1 − σ(u))]``.
* :func:`ordered` ``(n)`` — ``x_0 = u_0``, ``x_k = x_{k−1} + exp(u_k)``; ``log|J| = Σ_{k≥1} u_k``.
* :func:`simplex` ``(K)`` — stick-breaking from ``K − 1`` coordinates:
  ``z_k = σ(u_k − log(K − 1 − k))``, ``x_k = z_k (1 − Σ_{j<k} x_j)``, ``x_{K−1}`` the
  remainder; ``log|J| = Σ_k [log z_k + log(1 − z_k) + log(1 − Σ_{j<k} x_j)]`` (the density is
  with respect to the first ``K − 1`` coordinates of ``x``).
* :func:`cholesky_corr` ``(K)`` — the Cholesky factor ``L`` of a K×K correlation matrix from
  ``K(K − 1)/2`` coordinates (Lewandowski, Kurowicka & Joe 2009; Stan's transform):
  canonical partial correlations ``z = tanh(u)``, row by row ``L_ij = z_ij (1 − Σ_{k<j}
  L_ik²)^{1/2}`` for ``j < i`` and ``L_ii = (1 − Σ_{k<i} L_ik²)^{1/2}``;
  ``log|J| = Σ_{i>j} [log(1 − z_ij²) + ½ log(1 − Σ_{k<j} L_ik²)]`` (with respect to the
  strictly lower entries of ``L``). ``x`` is ``L`` flattened row-major (K² entries).
* :func:`real` — the identity (unconstrained parameters among constrained ones).

:func:`constrained` wraps a constrained log-density (a JAX function and/or a Numba
``value_and_grad``) into a :class:`~langevin.targets.Target` on the unconstrained space whose
``constrain`` maps draws back to the named constrained values (``trace.to_arviz(
constrained=True)``).

References:
    Carpenter, B. et al. (2017). Stan: a probabilistic programming language. J. Stat. Softw.
    76(1).
    Lewandowski, D., Kurowicka, D. and Joe, H. (2009). Generating random correlation matrices
    based on vines and extended onion method. J. Multivariate Anal. 100(9).
    Stan Development Team. Stan Reference Manual, "Constraint transforms".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from langevin.backends.portable import make_twin, portable

__all__ = [
    "Transform",
    "positive",
    "interval",
    "ordered",
    "simplex",
    "cholesky_corr",
    "real",
    "constrained",
    "layout",
]

xp: Any = None  # bound by each backend (langevin.backends.portable)


# -- portable pieces ---------------------------------------------------------------------------
@portable
def _softplus(z):
    """``log(1 + e^z)`` without overflow."""
    return xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))


@portable
def _sigmoid(z):
    return xp.exp(-_softplus(-z))


@portable
def _exclusive_cumsum(v):
    return xp.cumsum(v) - v


# identity
@portable
def _real_forward(u, p):
    return u + 0.0


@portable
def _real_log_det(u, p):
    return 0.0 * xp.sum(u)


@portable
def _real_pullback(u, p, g):
    return g + 0.0 * u


# positive: x = exp(u)
@portable
def _positive_forward(u, p):
    return xp.exp(u)


@portable
def _positive_log_det(u, p):
    return xp.sum(u)


@portable
def _positive_pullback(u, p, g):
    return g * xp.exp(u) + 1.0


# interval: x = a + (b − a) σ(u), p = (a, b)
@portable
def _interval_forward(u, p):
    return p[0] + (p[1] - p[0]) * _sigmoid(u)


@portable
def _interval_log_det(u, p):
    return xp.sum(xp.log(p[1] - p[0]) - _softplus(-u) - _softplus(u))


@portable
def _interval_pullback(u, p, g):
    s = _sigmoid(u)
    return g * (p[1] - p[0]) * s * (1.0 - s) + (1.0 - 2.0 * s)


# ordered: x = cumsum(u_0, e^{u_1}, …)
@portable
def _ordered_steps(u):
    first = xp.arange(u.shape[0]) == 0
    return xp.where(first, u, xp.exp(u)), first


@portable
def _ordered_forward(u, p):
    steps, _first = _ordered_steps(u)
    return xp.cumsum(steps)


@portable
def _ordered_log_det(u, p):
    _steps, first = _ordered_steps(u)
    return xp.sum(xp.where(first, 0.0, u))


@portable
def _ordered_pullback(u, p, g):
    steps, first = _ordered_steps(u)
    tail = xp.sum(g) - xp.cumsum(g) + g  # Σ_{m ≥ k} g_m
    return xp.where(first, tail, tail * steps + 1.0)


# simplex: stick-breaking, K − 1 → K
@portable
def _stick(u):
    """``(z, log z, log(1 − z), E)`` with ``E_k = Σ_{j<k} log(1 − z_j)`` (log of the stick
    left before piece k)."""
    n = u.shape[0]
    shifted = u - xp.log(1.0 * (n - xp.arange(n)))  # log(K − 1 − k)
    log_z = -_softplus(-shifted)
    log_1mz = -_softplus(shifted)
    return xp.exp(log_z), log_z, log_1mz, _exclusive_cumsum(log_1mz)


@portable
def _simplex_forward(u, p):
    z, _log_z, log_1mz, e = _stick(u)
    n = u.shape[0]
    pieces = z * xp.exp(e)
    last = xp.exp(xp.sum(log_1mz))
    k = xp.arange(n + 1)
    return xp.where(k == n, last, xp.take(pieces, xp.minimum(k, n - 1)))


@portable
def _simplex_log_det(u, p):
    _z, log_z, log_1mz, e = _stick(u)
    return xp.sum(log_z + log_1mz + e)


@portable
def _simplex_pullback(u, p, g):
    z, _log_z, log_1mz, e = _stick(u)
    n = u.shape[0]
    r = xp.exp(e)
    a = g[:n]
    a_last = g[n]
    x_last = xp.exp(xp.sum(log_1mz))
    c = a * z * r
    after = xp.sum(c) - xp.cumsum(c)  # Σ_{m>k} a_m x_m
    k = 1.0 * xp.arange(n)
    # ∂/∂u_k of Σ a·x, then of log|J| (see the module docstring)
    return z * (a * r * (1.0 - z) - after - a_last * x_last) + 1.0 - 2.0 * z - (n - 1.0 - k) * z


# Cholesky factor of a correlation matrix: K(K − 1)/2 → K², row-major
@portable
def _corr_index(u):
    """Per free coordinate ``e`` (row-major over the strictly lower triangle): its row ``i``,
    the first and last coordinates of that row, and ``K``."""
    n = u.shape[0]
    e = 1.0 * xp.arange(n)
    row = xp.floor(0.5 * (1.0 + xp.sqrt(1.0 + 8.0 * e)))
    start = 0.5 * row * (row - 1.0)
    # K from n = K(K − 1)/2 in plain arithmetic: a static int on every backend
    k = int(0.5 + (0.25 + 2.0 * n) ** 0.5 + 0.5)
    return row, start, start + row - 1.0, k


@portable
def _corr_parts(u):
    """``(z, w, E, C)``: ``z = tanh u``, ``w = log(1 − z²)``, ``E`` the within-row exclusive
    cumulative sum of ``w`` and ``C`` the cumulative sum of ``w``."""
    t = xp.exp(-2.0 * xp.abs(u))
    z = xp.sign(u) * (1.0 - t) / (1.0 + t)
    w = 1.3862943611198906 - 2.0 * xp.abs(u) - 2.0 * xp.log1p(t)  # log 4t/(1+t)²
    _row, start, _end, _k = _corr_index(u)
    c = xp.cumsum(w)
    cx = c - w
    e = cx - xp.take(cx, xp.to_int(start))
    return z, w, e, c


@portable
def _corr_forward(u, p):
    z, w, e, c = _corr_parts(u)
    _row, _start, _end, k = _corr_index(u)
    lower = z * xp.exp(0.5 * e)
    q = 1.0 * xp.arange(k * k)
    i = xp.floor((q + 0.5) / k)
    j = q - i * k
    s = 0.5 * i * (i - 1.0)  # first free coordinate of row i
    n = u.shape[0]
    at = xp.to_int(xp.clip(s + j, 0.0, n - 1.0))
    row_w = xp.take(c, xp.to_int(xp.clip(s + i - 1.0, 0.0, n - 1.0))) - xp.take(
        c - w, xp.to_int(xp.clip(s, 0.0, n - 1.0))
    )
    diag = xp.where(i > 0.0, xp.exp(0.5 * row_w), 1.0)
    return xp.where(j < i, xp.take(lower, at), xp.where(j == i, diag, 0.0))


@portable
def _corr_log_det(u, p):
    _z, w, e, _c = _corr_parts(u)
    return xp.sum(w + 0.5 * e)


@portable
def _corr_pullback(u, p, g):
    z, w, e, c = _corr_parts(u)
    row, start, end, k = _corr_index(u)
    col = 1.0 * xp.arange(u.shape[0]) - start
    lower = z * xp.exp(0.5 * e)
    g_lower = xp.take(g, xp.to_int(row * k + col))
    g_diag = xp.take(g, xp.to_int(row * k + row))
    diag = xp.exp(0.5 * (xp.take(c, xp.to_int(end)) - xp.take(c - w, xp.to_int(start))))
    v = 0.5 * g_lower * lower
    cv = xp.cumsum(v)
    later = xp.take(cv, xp.to_int(end)) - cv  # Σ over the row's later coordinates
    e_index = 1.0 * xp.arange(u.shape[0])
    d_w = later + 0.5 * g_diag * diag + 1.0 + 0.5 * (end - e_index)
    return g_lower * xp.exp(0.5 * e) * (1.0 - z * z) - 2.0 * z * d_w


# -- the transforms ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Transform:
    """A named constraint: ``size`` unconstrained coordinates ↦ a constrained value of
    ``shape``; portable ``forward(u, p)``, ``log_det(u, p)``, ``pullback(u, p, g)`` and a
    NumPy ``inverse(x)``; ``params`` are ``p`` (e.g. an interval's ends)."""

    name: str
    size: int
    shape: tuple[int, ...]
    forward: Callable = field(repr=False)
    log_det: Callable = field(repr=False)
    pullback: Callable = field(repr=False)
    inverse_fn: Callable = field(repr=False)
    params: tuple[float, ...] = (0.0, 0.0)

    @property
    def constrained_size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def p(self) -> np.ndarray:
        return np.asarray(self.params, dtype=np.float64)

    def constrain(self, u) -> np.ndarray:
        """``f(u)`` for one unconstrained vector (NumPy), shaped ``shape``."""
        u = np.ascontiguousarray(u, dtype=np.float64).reshape(self.size)
        return np.asarray(_numpy(self.forward)(u, self.p())).reshape(self.shape)

    def unconstrain(self, x) -> np.ndarray:
        """``f⁻¹(x)`` (NumPy); ``x`` must lie in the open support."""
        x = np.asarray(x, dtype=np.float64)
        if x.size != self.constrained_size:
            raise ValueError(f"{self.name}: the value must have shape {self.shape}; got {x.shape}")
        with np.errstate(all="ignore"):  # outside the support: nan, refused below
            u = np.asarray(self.inverse_fn(x.reshape(-1), self.p()), dtype=np.float64)
        if not np.all(np.isfinite(u)):
            raise ValueError(f"{self.name}: the value {x!r} is not inside the support")
        return u

    def log_det_jacobian(self, u) -> float:
        u = np.ascontiguousarray(u, dtype=np.float64).reshape(self.size)
        return float(_numpy(self.log_det)(u, self.p()))


def _shape(shape) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in shape):
        raise ValueError(f"shape must be a tuple of positive ints; got {shape!r}")
    return tuple(int(s) for s in shape)


def _count(name: str, value, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be an int >= {least}; got {value!r}")
    return int(value)


def real(shape: int | tuple[int, ...] = ()) -> Transform:
    """Unconstrained real values of ``shape`` (the identity)."""
    shape = _shape(shape)
    n = int(np.prod(shape, dtype=np.int64))
    return Transform("real", n, shape, _real_forward, _real_log_det, _real_pullback,
                     lambda x, p: x.copy())  # fmt: skip


def positive(shape: int | tuple[int, ...] = ()) -> Transform:
    """Values in (0, ∞): ``x = exp(u)``."""
    shape = _shape(shape)
    n = int(np.prod(shape, dtype=np.int64))
    return Transform("positive", n, shape, _positive_forward, _positive_log_det,
                     _positive_pullback, lambda x, p: np.log(x))  # fmt: skip


def interval(a: float, b: float, shape: int | tuple[int, ...] = ()) -> Transform:
    """Values in (a, b): ``x = a + (b − a) σ(u)``."""
    for name, v in (("a", a), ("b", b)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"interval: {name} must be a finite number; got {v!r}")
    if not a < b:
        raise ValueError(f"interval: a must be < b; got a={a!r}, b={b!r}")
    shape = _shape(shape)
    n = int(np.prod(shape, dtype=np.int64))

    def inverse(x, p):
        t = (x - p[0]) / (p[1] - p[0])
        with np.errstate(all="ignore"):
            return np.where((t > 0) & (t < 1), np.log(t) - np.log1p(-t), np.nan)

    return Transform(f"interval({a}, {b})", n, shape, _interval_forward, _interval_log_det,
                     _interval_pullback, inverse, (float(a), float(b)))  # fmt: skip


def ordered(n: int) -> Transform:
    """Increasing vectors of length ``n``: ``x_0 = u_0``, ``x_k = x_{k−1} + exp(u_k)``."""
    n = _count("ordered: n", n, 1)

    def inverse(x, p):
        with np.errstate(all="ignore"):
            return np.concatenate([x[:1], np.log(np.diff(x))])

    return Transform("ordered", n, (n,), _ordered_forward, _ordered_log_det, _ordered_pullback,
                     inverse)  # fmt: skip


def simplex(k: int) -> Transform:
    """Probability vectors of length ``k`` (``k − 1`` coordinates, stick-breaking)."""
    k = _count("simplex: k", k, 2)

    def inverse(x, p):
        if np.any(x <= 0) or abs(x.sum() - 1.0) > 1e-8:
            return np.full(k - 1, np.nan)
        left = 1.0 - np.concatenate([[0.0], np.cumsum(x[:-1])])[:-1]
        z = x[:-1] / left
        return np.log(z) - np.log1p(-z) + np.log(k - 1.0 - np.arange(k - 1))

    return Transform("simplex", k - 1, (k,), _simplex_forward, _simplex_log_det,
                     _simplex_pullback, inverse)  # fmt: skip


def cholesky_corr(k: int) -> Transform:
    """Cholesky factors ``L`` (lower triangular, positive diagonal, unit-norm rows) of K×K
    correlation matrices ``L Lᵀ``, from ``k(k − 1)/2`` coordinates; the value is ``L``."""
    k = _count("cholesky_corr: k", k, 2)

    def inverse(x, p):
        m = x.reshape(k, k)
        out = []
        ok = np.allclose(m, np.tril(m)) and np.all(np.diag(m) > 0)
        ok = ok and np.allclose(np.sum(m * m, axis=1), 1.0, atol=1e-8)
        for i in range(1, k):
            left = 1.0
            for j in range(i):
                z = m[i, j] / math.sqrt(left) if left > 0 else np.nan
                out.append(np.arctanh(z) if ok and abs(z) < 1 else np.nan)
                left -= m[i, j] ** 2
        return np.asarray(out)

    return Transform("cholesky_corr", k * (k - 1) // 2, (k, k), _corr_forward, _corr_log_det,
                     _corr_pullback, inverse)  # fmt: skip


# -- backend twins -----------------------------------------------------------------------------
_TWINS: dict[str, dict] = {"numpy": {}, "jax": {}, "numba": {}}


def _numpy(fn: Callable) -> Callable:
    from langevin.backends import numpy_ops

    return make_twin(fn, numpy_ops, lambda f: f, _TWINS["numpy"])


def _jax(fn: Callable) -> Callable:
    from langevin.backends import jax_ops

    return make_twin(fn, jax_ops, lambda f: f, _TWINS["jax"])


def _numba(fn: Callable) -> Callable:
    import numba

    from langevin.backends import numba_ops

    # cached on disk: a twin's name carries the fingerprint of its code (make_twin)
    return make_twin(fn, numba_ops, numba.njit(cache=True), _TWINS["numba"])


# -- a constrained log-density as a target -------------------------------------------------------
def layout(transforms: Mapping[str, Transform]) -> dict[str, dict[str, Any]]:
    """Where each parameter lives: ``{name: {"u": slice, "x": slice, "shape": shape}}`` in the
    unconstrained vector ``u`` and in the flat constrained vector ``x`` (the blocks in the
    mapping's order, each flattened row-major)."""
    out, iu, ix = {}, 0, 0
    for name, t in transforms.items():
        out[name] = {"u": slice(iu, iu + t.size), "x": slice(ix, ix + t.constrained_size),
                     "shape": t.shape}  # fmt: skip
        iu += t.size
        ix += t.constrained_size
    return out


def _check_transforms(transforms) -> dict[str, Transform]:
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError(
            "transforms must be a non-empty mapping of parameter name -> Transform "
            f"(positive(), interval(a, b), simplex(k), ...); got {transforms!r}"
        )
    out = {}
    for name, t in transforms.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"transforms: parameter names must be identifiers; got {name!r}")
        if not isinstance(t, Transform):
            raise TypeError(
                f"transforms[{name!r}] must be a Transform (positive(), interval(a, b), "
                f"ordered(n), simplex(k), cholesky_corr(k), real(shape)); got {t!r}"
            )
        out[name] = t
    return out


def constrained(
    transforms: Mapping[str, Transform],
    *,
    jax: Callable | None = None,
    numba: Callable | None = None,
    data: Any = None,
    name: str = "constrained target",
):
    """A target on the unconstrained space from a log-density on the constrained one.

    Args:
        transforms: parameter name -> :class:`Transform`, e.g. ``{"sigma": positive(),
            "w": simplex(3)}``. The constrained vector ``x`` the log-density receives
            concatenates the parameters in this order, each flattened row-major
            (:func:`layout`).
        jax: ``logp(x) -> scalar``, a JAX function of the constrained vector (gradient by
            autodiff); runs on ``backend="jax"``.
        numba: a ``numba.njit`` function ``(x) -> (log p(x), ∇_x log p(x))`` (or ``(x, data)``
            with ``data``), on the constrained vector; runs on ``backend="numba"``.
        data: the Numba function's last argument.
        name: the target's name.

    Returns:
        A :class:`~langevin.targets.Target` on ``u`` (one named block per parameter) with
        ``log π(u) = log p(f(u)) + log|det J_f(u)|``; ``target.constrain(draws)`` maps draws
        ``(..., n)`` to ``{name: (..., *shape)}`` (``trace.to_arviz(constrained=True)``), and
        ``target.unconstrain({name: value})`` maps a constrained point to ``u``. Starts at
        ``u = 0`` by default.

    Example:
        >>> import jax.numpy as jnp
        >>> from langevin.targets.transforms import constrained, positive
        >>> # a Gamma(3, rate 2) on σ > 0
        >>> target = constrained({"sigma": positive()},
        ...                      jax=lambda x: 2.0 * jnp.log(x[0]) - 2.0 * x[0])
        >>> target.dim, sorted(target.constrain(jnp.zeros((2, 1))))
        (1, ['sigma'])
    """
    from langevin.targets.base import Target

    transforms = _check_transforms(transforms)
    if jax is None and numba is None:
        raise TypeError("constrained: give the log-density as jax= and/or numba=")
    if jax is not None and not callable(jax):
        raise TypeError(f"jax must be callable; got {type(jax).__name__}")
    places = layout(transforms)
    n_u = sum(t.size for t in transforms.values())
    n_x = sum(t.constrained_size for t in transforms.values())
    names = {k: (t.size,) if t.shape != () else () for k, t in transforms.items()}
    jax_fns = {} if jax is None else _jax_functions(transforms, places, jax)
    numba_fns = {} if numba is None else {"value_and_grad": _numba_value_and_grad(
        transforms, places, numba, n_u, n_x, data is not None)}  # fmt: skip

    def constrain(draws) -> dict[str, np.ndarray]:
        draws = np.asarray(draws, dtype=np.float64)
        if draws.shape[-1:] != (n_u,):
            raise ValueError(f"draws must have last axis of length {n_u}; got {draws.shape}")
        flat = draws.reshape(-1, n_u)
        out = {}
        for key, t in transforms.items():
            # the Numba twin: a Python call per draw costs microseconds, not a NumPy loop
            fwd, p, sl = _numba(t.forward), t.p(), places[key]["u"]
            values = np.stack([np.asarray(fwd(np.ascontiguousarray(row[sl]), p)) for row in flat])
            out[key] = values.reshape(draws.shape[:-1] + t.shape)
        return out

    target = Target(dim=n_u, names=names, numba=numba_fns or None, jax=jax_fns or None,
                    data=data, initial_position=np.zeros(n_u), name=name,
                    constrain=constrain)  # fmt: skip
    target.transforms = transforms

    def unconstrain(values: Mapping[str, Any]) -> np.ndarray:
        missing = set(transforms) - set(values)
        if missing:
            raise ValueError(f"unconstrain: values for {sorted(missing)} are missing")
        return np.concatenate([t.unconstrain(values[k]) for k, t in transforms.items()])

    target.unconstrain = unconstrain
    return target


def _jax_functions(transforms, places, logp) -> dict[str, Callable]:
    import jax
    import jax.numpy as jnp

    parts = [(places[k]["u"], _jax(t.forward), _jax(t.log_det), _jax(t.pullback), t.p())
             for k, t in transforms.items()]  # fmt: skip

    def forward(u):
        x = jnp.concatenate([fwd(u[sl], jnp.asarray(p, u.dtype)) for sl, fwd, _, _, p in parts])
        log_det = sum(ld(u[sl], jnp.asarray(p, u.dtype)) for sl, _, ld, _, p in parts)
        return x, log_det

    def logdensity(u):
        x, log_det = forward(u)
        return logp(x) + log_det

    def value_and_grad(u):
        x, log_det = forward(u)
        value, g = jax.value_and_grad(logp)(x)
        grads, ix = [], 0
        for (sl, _, _, pull, p), t in zip(parts, transforms.values()):
            gx = g[ix : ix + t.constrained_size]
            grads.append(pull(u[sl], jnp.asarray(p, u.dtype), gx))
            ix += t.constrained_size
        return value + log_det, jnp.concatenate(grads)

    return {"logdensity": logdensity, "value_and_grad": value_and_grad}


def _numba_value_and_grad(transforms, places, vg, n_u, n_x, with_data) -> Callable:
    """An ``njit`` ``(u[, data]) -> (log π(u), ∇ log π(u))`` calling the user's function on
    the constrained vector; generated per list of transforms (element loops, no slice
    assignment: see :mod:`langevin.backends.numba_ops`)."""
    import numba
    from numba.core.registry import CPUDispatcher

    if not isinstance(vg, CPUDispatcher):
        raise TypeError(
            "numba must be a numba.njit function (x[, data]) -> (log p(x), grad) on the "
            f"constrained vector; got {type(vg).__name__}"
        )
    scope: dict[str, Any] = {"np": np, "user": vg}
    lines = [
        "def value_and_grad(u" + (", data" if with_data else "") + "):",
        f"    x = np.empty({n_x})",
        f"    gu = np.empty({n_u})",
        "    log_det = 0.0",
    ]
    for b, (key, t) in enumerate(transforms.items()):
        su, sx = places[key]["u"], places[key]["x"]
        scope[f"fwd{b}"], scope[f"ld{b}"] = _numba(t.forward), _numba(t.log_det)
        scope[f"pull{b}"], scope[f"p{b}"] = _numba(t.pullback), t.p()
        lines += [
            f"    u{b} = np.ascontiguousarray(u[{su.start}:{su.stop}])",
            f"    x{b} = fwd{b}(u{b}, p{b})",
            f"    for i in range({t.constrained_size}):",
            f"        x[{sx.start} + i] = x{b}[i]",
            f"    log_det += ld{b}(u{b}, p{b})",
        ]
    lines.append("    value, g = user(x" + (", data" if with_data else "") + ")")
    for b, (key, t) in enumerate(transforms.items()):
        su, sx = places[key]["u"], places[key]["x"]
        lines += [
            f"    g{b} = pull{b}(u{b}, p{b}, np.ascontiguousarray(g[{sx.start}:{sx.stop}]))",
            f"    for i in range({t.size}):",
            f"        gu[{su.start} + i] = g{b}[i]",
        ]
    lines.append("    return value + log_det, gu")
    exec("\n".join(lines) + "\n", scope)
    return numba.njit(scope["value_and_grad"])
