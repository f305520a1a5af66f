"""Checks a user can run on a target before sampling it: ``check_target(target, x)``.

The gradient is compared with central finite differences coordinate by coordinate, as Stan's
``diagnose`` method does (Stan Development Team, *CmdStan User's Guide*, "Diagnosis"):

    g̃_i = (log π(x + h_i e_i) − log π(x − h_i e_i)) / (2 h_i),   h_i = ε (1 + |x_i|),

with ε = (machine epsilon)^(1/3) of the target's float type, which balances the truncation
error O(h²) against the rounding error O(ε_mach |log π| / h) (Nocedal & Wright 2006, §8.1).
A coordinate fails when ``|g_i − g̃_i| > atol + rtol · max(|g_i|, |g̃_i|) + r_i`` with
``r_i = 8 ε_mach (1 + |log π(x)|) / h_i`` the rounding allowance.

Besides the gradient, on each backend: the functions run at ``x``; the value is a real
scalar and the gradient an array of ``x``'s shape, both in ``x``'s float type (float64 on
Numba; on JAX the dtype of ``x``), both finite; two calls give the same numbers; no call
modifies ``x`` in place; the gradient is a new array (not ``x`` or a view of it); where the
target gives both ``logdensity`` and ``value_and_grad`` they agree; where it has both backends,
they agree on the value and gradient.

References:
    Nocedal, J. and Wright, S. J. (2006). Numerical Optimization, 2nd ed. Springer.
    Stan Development Team. CmdStan User's Guide: Diagnosis method.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["check_target", "TargetCheck", "CheckRow"]

_BACKENDS = ("numba", "jax")


@dataclass(frozen=True)
class CheckRow:
    """One check on one backend: ``ok`` is True (passed), False (failed) or None (skipped)."""

    backend: str
    check: str
    ok: bool | None
    detail: str = ""


@dataclass
class TargetCheck:
    """The report of :func:`check_target`: one row per check and backend, and the gradient
    comparison (``gradients[backend]``: a dict with ``gradient``, ``finite_difference``,
    ``error``, ``allowed`` and ``step``, one entry per coordinate checked, and
    ``coordinates``). ``str(report)`` is a table; ``report.ok`` says whether every check
    passed; :meth:`raise_if_failed` raises ``ValueError`` with the table otherwise."""

    target_name: str
    x: np.ndarray
    rows: list[CheckRow] = field(default_factory=list)
    gradients: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok is not False for r in self.rows)

    @property
    def failures(self) -> list[CheckRow]:
        return [r for r in self.rows if r.ok is False]

    def raise_if_failed(self) -> None:
        if not self.ok:
            raise ValueError(f"the target failed its checks:\n{self}")

    def __str__(self) -> str:
        head = f"check of {self.target_name} at x (dim {self.x.size})"
        width = max([len(r.check) for r in self.rows] + [5])
        lines = [head, f"{'backend':<8} {'check':<{width}} result  detail"]
        for r in self.rows:
            mark = {True: "ok", False: "FAIL", None: "skip"}[r.ok]
            lines.append(f"{r.backend:<8} {r.check:<{width}} {mark:<7} {r.detail}")
        for backend, g in self.gradients.items():
            order = np.argsort(-(g["error"] / np.maximum(g["allowed"], 1e-300)))[:10]
            lines.append(f"{backend}: worst gradient coordinates (Stan's diagnose table)")
            lines.append(f"  {'param':>6} {'value':>12} {'model':>14} {'finite diff':>14} "
                         f"{'error':>11}")  # fmt: skip
            for k in order:
                i = int(g["coordinates"][k])
                model, fd, err = g["gradient"][k], g["finite_difference"][k], g["error"][k]
                lines.append(f"  {i:>6} {self.x[i]:>12.5g} {model:>14.7g} {fd:>14.7g} {err:>11.3g}")
        lines.append("all checks passed" if self.ok else f"{len(self.failures)} check(s) failed")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _add(self, backend: str, check: str, ok: bool | None, detail: str = "") -> None:
        self.rows.append(CheckRow(backend, check, ok, detail))


def _backends_of(target, backend: str | None) -> tuple[str, ...]:
    have = tuple(b for b, ok in (("numba", target.has_numba), ("jax", target.has_jax)) if ok)
    if backend is None or backend == "both":
        if not have:
            raise ValueError(f"{target!r} has no Numba or JAX functions to check")
        return have
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be 'numba', 'jax', 'both' or None; got {backend!r}")
    if backend not in have:
        raise ValueError(f"backend={backend!r}: {target!r} has no {backend} form")
    return (backend,)


class _Evaluator:
    """``value(x)``, ``grad(x)`` and (where given) ``value_and_grad(x)`` of one backend."""

    def __init__(self, target, backend: str, dtype) -> None:
        self.backend = backend
        self.dtype = np.dtype(dtype)
        self.pairs: dict[str, Callable] = {}
        if backend == "numba":
            fns, data = target.numba_functions, target.data
            extra = () if data is None else (data,)

            def bind(fn):
                return lambda x: fn(x, *extra)

            if fns.get("value_and_grad") is not None:
                self.pairs["value_and_grad"] = bind(fns["value_and_grad"])
            if fns.get("logdensity") is not None and fns.get("grad") is not None:
                ld, gr = bind(fns["logdensity"]), bind(fns["grad"])
                self.pairs["logdensity, grad"] = lambda x: (ld(x), gr(x))
            if fns.get("logdensity") is not None:
                self.value = bind(fns["logdensity"])
            else:
                self.value = lambda x: self.pairs["value_and_grad"](x)[0]
        else:
            import jax

            fns = target.jax_functions
            ld = fns.get("logdensity")
            # jitted, as the sampler runs them (and far faster than op-by-op)
            if fns.get("value_and_grad") is not None:
                self.pairs["value_and_grad"] = jax.jit(fns["value_and_grad"])
            if ld is not None and fns.get("grad") is not None:
                g = fns["grad"]
                self.pairs["logdensity, grad"] = jax.jit(lambda x: (ld(x), g(x)))
            if ld is not None and not self.pairs:
                self.pairs["logdensity (autodiff)"] = jax.jit(jax.value_and_grad(ld))
            if ld is not None:
                self.value = jax.jit(ld)
            else:
                self.value = lambda x: self.pairs["value_and_grad"](x)[0]
        if not self.pairs:
            raise ValueError(
                f"the target's {backend} form has neither value_and_grad nor logdensity with a "
                "gradient: there is nothing to check the gradient of"
            )

    def array(self, x: np.ndarray):
        if self.backend == "jax":
            import jax.numpy as jnp

            return jnp.asarray(x, self.dtype)
        return np.array(x, dtype=np.float64, order="C", copy=True)  # never the caller's x


def _describe(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text.splitlines()[-1][:300]


def check_target(
    target,
    x: Any = None,
    *,
    backend: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    coordinates: Any = None,
    seed: int = 0,
) -> TargetCheck:
    """Check ``target`` at ``x`` on each of its backends (module docstring): values, gradient
    against central finite differences (Stan's ``diagnose``), shapes, dtypes, finiteness,
    repeatability, no in-place modification of ``x``, agreement of its forms.

    Args:
        target: a :class:`langevin.Target`.
        x: the point, shape ``(dim,)``. Default: the target's ``initial_position``, else a
            uniform draw on ``[-2, 2]^dim`` from ``seed``. On JAX the check runs in the
            dtype of ``x`` when it is a floating array, else JAX's default float.
        backend: ``"numba"``, ``"jax"``, or None / ``"both"``: every backend the target has.
        rtol, atol: tolerance of the gradient comparison (default ``1e-5, 1e-6`` in float64,
            ``2e-2, 1e-3`` in float32).
        coordinates: indices of the coordinates to difference (default all: 2·dim
            evaluations).
        seed: seed of the default ``x``.

    Returns:
        A :class:`TargetCheck`; print it for the table, ``.ok`` for the verdict.

    Example:
        >>> import numba, numpy as np, langevin
        >>> from langevin.targets.check import check_target
        >>> @numba.njit
        ... def logp(x):
        ...     return -0.5 * np.dot(x, x)
        >>> @numba.njit
        ... def grad(x):
        ...     return -2.0 * x          # wrong: should be -x
        >>> report = check_target(langevin.Target.from_numba(logp, grad, dim=3), np.ones(3))
        >>> report.ok
        False
        >>> [r.check for r in report.failures]
        ['gradient vs finite differences']
    """
    from langevin.targets.base import Target

    if not isinstance(target, Target):
        raise TypeError(f"target must be a langevin.Target; got {type(target).__name__}")
    backends = _backends_of(target, backend)
    x_dtype = getattr(x, "dtype", None)
    if x is None:
        if target.initial_position is not None:
            x = np.asarray(target.initial_position, dtype=np.float64)
        elif target.dim is not None:
            x = np.random.default_rng(seed).uniform(-2.0, 2.0, target.dim)
        else:
            raise ValueError("x is required: the target does not know its dimension (dim=)")
    try:
        x_host = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"x must be an array of real numbers; got {x!r}") from None
    if x_host.ndim != 1 or x_host.size == 0:
        raise ValueError(f"x must be a non-empty 1-D array (dim,); got shape {x_host.shape}")
    if target.dim is not None and x_host.shape != (target.dim,):
        raise ValueError(f"x must have shape ({target.dim},) for this target; got {x_host.shape}")
    if not np.all(np.isfinite(x_host)):
        raise ValueError("x must be finite")
    for name, v in (("rtol", rtol), ("atol", atol)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                              or not v >= 0 or not math.isfinite(v)):  # fmt: skip
            raise ValueError(f"{name} must be a finite number >= 0; got {v!r}")
    dim = x_host.size
    if coordinates is None:
        coords = np.arange(dim)
    else:
        coords = np.unique(np.asarray(coordinates, dtype=np.int64).reshape(-1))
        if coords.size == 0 or coords.min() < 0 or coords.max() >= dim:
            raise ValueError(f"coordinates must be indices in [0, {dim}); got {coordinates!r}")

    report = TargetCheck(getattr(target, "name", "target"), x_host)
    results: dict[str, tuple[float, np.ndarray]] = {}
    for b in backends:
        dtype = np.float64
        if b == "jax":
            import jax
            import jax.numpy as jnp

            floating = x_dtype is not None and np.issubdtype(np.dtype(x_dtype), np.floating)
            # x's float type as JAX holds it (float64 is float32 unless x64 is on)
            dtype = jax.dtypes.canonicalize_dtype(x_dtype) if floating else jnp.zeros(()).dtype
        out = _check_backend(report, target, b, x_host, dtype, coords, rtol, atol)
        if out is not None:
            results[b] = out
    if len(results) == 2:
        (v1, g1), (v2, g2) = results["numba"], results["jax"]
        f32 = report.gradients.get("jax", {}).get("float32", False)
        tol = 1e-4 if f32 else 1e-9
        dv = abs(v1 - v2)
        dg = float(np.max(np.abs(g1 - g2)))
        ok = dv <= tol * (1 + abs(v1)) and dg <= tol * (1 + float(np.max(np.abs(g1))))
        report._add("both", "numba and jax agree", ok,
                    f"|Δ value| = {dv:.3g}, max |Δ gradient| = {dg:.3g}")  # fmt: skip
    return report


def _check_backend(report, target, b, x_host, dtype, coords, rtol, atol):
    """The checks of one backend; returns ``(value, gradient)`` at x when they ran."""
    try:
        ev = _Evaluator(target, b, dtype)
    except ValueError as exc:
        report._add(b, "capabilities", False, str(exc))
        return None
    f32 = np.dtype(dtype) == np.float32
    eps_mach = float(np.finfo(dtype).eps)
    rtol = (2e-2 if f32 else 1e-5) if rtol is None else rtol
    atol = (1e-3 if f32 else 1e-6) if atol is None else atol

    # -- the functions run, with the right shapes and types, and leave x alone
    values = {}
    for label, fn in ev.pairs.items():
        xa = ev.array(x_host)
        before = np.array(xa, copy=True)
        try:
            v, g = fn(xa)
            v2, g2 = fn(ev.array(x_host))
        except Exception as exc:  # the user's code raised: report it, do not crash
            report._add(b, f"{label} runs", False, _describe(exc))
            continue
        report._add(b, f"{label} runs", True)
        modified = not np.array_equal(np.asarray(xa), before)
        report._add(b, f"{label} leaves x unchanged", not modified,
                    "modified its argument x in place" if modified else "")  # fmt: skip
        values[label] = _check_outputs(report, b, label, v, g, xa, dtype)
        same = np.array_equal(np.asarray(v), np.asarray(v2)) and np.array_equal(
            np.asarray(g), np.asarray(g2)
        )
        report._add(b, f"{label} repeatable", same,
                    "" if same else "two calls at the same x gave different numbers")  # fmt: skip
    values = {k: v for k, v in values.items() if v is not None}
    if not values:
        return None
    labels = list(values)
    v0, g0 = values[labels[0]]
    for other in labels[1:]:
        v1, g1 = values[other]
        tol = 1e-4 if f32 else 1e-10
        ok = abs(v0 - v1) <= tol * (1 + abs(v0)) and np.allclose(g0, g1, rtol=tol, atol=tol)
        report._add(b, f"{labels[0]} = {other}", bool(ok),
                    f"values {v0:.10g} vs {v1:.10g}")  # fmt: skip
    # -- the value function at x (used by the finite differences)
    try:
        value = float(np.asarray(ev.value(ev.array(x_host))))
    except Exception as exc:
        report._add(b, "logdensity runs", False, _describe(exc))
        return v0, g0
    if not math.isfinite(value) or not np.all(np.isfinite(g0)):
        report._add(b, "gradient vs finite differences", None, "skipped: not finite at x")
        return v0, g0
    # -- central finite differences, h_i = ε (1 + |x_i|)
    eps = eps_mach ** (1.0 / 3.0)
    steps = eps * (1.0 + np.abs(x_host[coords]))
    fd = np.empty(coords.size)
    for k, (i, h) in enumerate(zip(coords, steps)):
        xp_, xm_ = x_host.copy(), x_host.copy()
        xp_[i] += h
        xm_[i] -= h
        hi = ev.array(xp_)
        lo = ev.array(xm_)
        # the step actually taken, after rounding to the target's dtype
        h_true = 0.5 * (float(np.asarray(hi)[i]) - float(np.asarray(lo)[i]))
        steps[k] = h_true
        fd[k] = (float(np.asarray(ev.value(hi))) - float(np.asarray(ev.value(lo)))) / (2 * h_true)
    grad = g0[coords]
    error = np.abs(grad - fd)
    rounding = 8 * eps_mach * (1 + abs(value)) / steps
    allowed = atol + rtol * np.maximum(np.abs(grad), np.abs(fd)) + rounding
    bad = np.flatnonzero(~(error <= allowed))
    report.gradients[b] = {"coordinates": coords, "gradient": grad, "finite_difference": fd,
                           "error": error, "allowed": allowed, "step": steps,
                           "float32": f32}  # fmt: skip
    detail = f"max error {error.max():.3g} over {coords.size} coordinate(s)"
    if bad.size:
        shown = ", ".join(f"x[{coords[k]}]: {grad[k]:.6g} vs {fd[k]:.6g}" for k in bad[:5])
        detail = f"{bad.size} coordinate(s) differ: {shown}"
    report._add(b, "gradient vs finite differences", not bad.size, detail)
    return v0, g0


def _check_outputs(report, b, label, v, g, xa, dtype):
    """Shapes, dtypes, finiteness and aliasing of one ``(value, gradient)`` pair."""
    v_arr, g_arr = np.asarray(v), np.asarray(g)
    problems = []
    if v_arr.shape != ():
        problems.append(f"the value has shape {v_arr.shape}, not a scalar")
    elif not np.issubdtype(v_arr.dtype, np.floating):
        problems.append(f"the value has dtype {v_arr.dtype}, not a float")
    elif b == "jax" and v_arr.dtype != dtype:
        problems.append(f"the value is {v_arr.dtype} for x in {np.dtype(dtype)}")
    if g_arr.shape != tuple(np.shape(xa)):
        problems.append(f"the gradient has shape {g_arr.shape}; x has {tuple(np.shape(xa))}")
    elif g_arr.dtype != np.dtype(dtype):
        problems.append(f"the gradient is {g_arr.dtype} for x in {np.dtype(dtype)}")
    report._add(b, f"{label} shapes and dtypes", not problems, "; ".join(problems))
    if b == "numba" and isinstance(g, np.ndarray) and np.shares_memory(g, xa):
        report._add(b, f"{label} returns a new gradient", False,
                    "the gradient array is x itself or a view of it")  # fmt: skip
    if problems:
        return None
    finite = bool(np.isfinite(v_arr)) and bool(np.all(np.isfinite(g_arr)))
    report._add(b, f"{label} finite at x", finite,
                "" if finite else f"value {float(v_arr)!r}, "
                f"{int(np.sum(~np.isfinite(g_arr)))} non-finite gradient entries")  # fmt: skip
    return float(v_arr), g_arr.astype(np.float64)
