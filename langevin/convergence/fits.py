"""Least-squares orders on log-log axes, and their comparison with the declared theory."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

__all__ = ["agreement", "fit_slope"]


def fit_slope(x: Iterable[float], y: Iterable[float]) -> tuple[float, float, int]:
    """Least-squares slope of ``log y`` on ``log x``: ``(slope, standard error, points)``.

    Non-positive or non-finite ``y`` are left out. The standard error is the usual OLS one
    (it measures the scatter about a straight line, i.e. curvature for exact curves and
    noise for Monte Carlo ones); ``nan`` with fewer than 3 points.
    """
    x = np.asarray(list(x), dtype=float)
    y = np.asarray(list(y), dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly = np.log(x[ok]), np.log(y[ok])
    n = int(ok.sum())
    if n < 2:
        return math.nan, math.nan, n
    a = np.vstack([lx, np.ones(n)]).T
    coef, *_ = np.linalg.lstsq(a, ly, rcond=None)
    if n < 3:
        return float(coef[0]), math.nan, n
    resid = ly - a @ coef
    s2 = float(resid @ resid) / (n - 2)
    se = math.sqrt(s2 / float(((lx - lx.mean()) ** 2).sum()))
    return float(coef[0]), se, n


def agreement(
    fit: float,
    se: float,
    theory: float | None,
    *,
    direction: str,
    tolerance: float = 0.1,
    z: float = 2.0,
) -> str:
    """How a fitted exponent compares with theory.

    ``allowed = z·se + tolerance`` (``se = 0`` when it is not available: fewer than three
    points); ``tolerance`` absorbs the finite-h (finite-d) curvature of an exact curve, for
    which the OLS standard error is no measure.

    Args:
        fit, se: the fitted exponent and its standard error.
        theory: the declared exponent (``None``/``nan``: nothing to compare).
        direction: ``"at_least"`` (a rate the theory guarantees, e.g. a bias order, which an
            upper-bound theorem allows to be beaten: only a shallower fit disagrees),
            ``"at_most"`` (a growth, e.g. a dimension exponent of the cost: only a steeper
            fit disagrees) or ``"equal"`` (an exact order: both ways).

    Returns:
        ``"agrees"``, ``"better than theory"``, ``"disagrees"`` or ``"no theory"`` /
        ``"no fit"``.
    """
    if theory is None or not math.isfinite(theory):
        return "no theory"
    if not math.isfinite(fit):
        return "no fit"
    allowed = z * (se if math.isfinite(se) else 0.0) + tolerance
    diff = fit - theory
    if abs(diff) <= allowed:
        return "agrees"
    if direction == "equal":
        return "disagrees"
    if direction == "at_least":
        return "better than theory" if diff > 0 else "disagrees"
    if direction == "at_most":
        return "better than theory" if diff < 0 else "disagrees"
    raise ValueError(f"direction must be 'at_least', 'at_most' or 'equal'; got {direction!r}")
