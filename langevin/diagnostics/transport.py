"""Wasserstein distances for checking samplers against a reference law.

Three estimators of the 2-Wasserstein distance between two clouds of points, all through
POT (Python Optimal Transport), and the closed form between two Gaussians:

* :func:`wasserstein` with ``method="exact"`` solves the optimal-transport linear programme
  (network simplex). Exact for the two empirical measures; needs the ``n x m`` cost matrix.
* ``method="sinkhorn"``: the debiased Sinkhorn divergence (entropic OT). Smooth, but slower
  than the simplex on a CPU at a small regularisation, and it still needs ``n x m`` memory.
* ``method="sliced"``: the average of 1-D W2 over random directions. Any size, but a
  different (smaller) quantity than W2; compare sliced values only with sliced values.
* :func:`gaussian_w2`: W2 between ``N(m1, S1)`` and ``N(m2, S2)`` in closed form.
* :func:`w2_to_reference`: W2 between a sampler's draws and reference draws, with the
  finite-sample *noise floor* that says how small that number can possibly get.

All distances are between empirical measures with uniform weights, ``(1/n) sum_i delta_{x_i}``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from langevin import _arviz

__all__ = [
    "MAX_EXACT",
    "SINKHORN_REG_FRACTION",
    "W2Result",
    "gaussian_w2",
    "w2_to_reference",
    "wasserstein",
]

#: Largest sample size ``method="exact"`` accepts by default: a 5000 x 5000 cost matrix is
#: 200 MB, and the network simplex on it takes from seconds to a minute.
MAX_EXACT = 5000

#: Default Sinkhorn regularisation, as a fraction of the median entry of the squared-distance
#: cost matrix (so the default does not depend on the units of the data).
SINKHORN_REG_FRACTION = 0.05

_METHODS = ("exact", "sinkhorn", "sliced")
_METHOD_LABELS = {"exact": "exact OT", "sinkhorn": "debiased Sinkhorn", "sliced": "sliced W2"}

# The network simplex's default cap (100 000 pivots) is hit already at a few thousand points
# in moderate dimension, and then stops without a transport plan; pivots are cheap, so allow
# many (a 5000-point problem needs a few million).
_EMD_MAX_ITER = 1_000_000_000

# Sinkhorn stops when the column-marginal violation ||P^T 1 - b||_2 falls below
# _SINKHORN_RTOL * ||b||_2. The value is read from the dual potentials, whose error shrinks
# faster than that violation: at 1e-3 the divergence is good to ~1e-4 relative or better
# (1e-4 changed W2 by ~3e-6 on 500 points in 2-D and 5-D, at 3-4 times the cost), far below
# the sampling noise of any W2 estimate and the entropic bias. Sinkhorn's convergence rate
# degrades like exp(-max C / eps), so small reg needs many iterations.
_SINKHORN_RTOL = 1e-3
_SINKHORN_MAX_ITER = 10_000


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _as_real_array(name: str, value: Any) -> np.ndarray:
    """``np.asarray(value)`` for real numbers, refusing strings, objects, booleans, complex."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested lists, unconvertible objects
        raise TypeError(
            f"{name} must be an array of real numbers; got {type(value).__name__} "
            f"that NumPy cannot convert ({exc})"
        ) from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(
            f"{name} must be an array of real numbers (int or float); got dtype {arr.dtype}"
        )
    return arr


def _check_finite(name: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"{name} must contain only finite values; got {int(bad.sum())} "
            f"NaN or inf entries (first at index {np.argwhere(bad)[0].tolist()})"
        )


def _as_points(name: str, value: Any, *, allow_chains: bool = False) -> np.ndarray:
    """Samples as a C-contiguous float64 ``(n, d)`` array (POT is fastest, and silent, so)."""
    arr = _as_real_array(name, value)
    if arr.ndim == 1:
        arr = arr[:, None]
    elif allow_chains and arr.ndim == 3:
        arr = arr.reshape(-1, arr.shape[-1])
    elif arr.ndim != 2:
        expected = "(n, d), (chains, draws, d)" if allow_chains else "(n, d)"
        raise ValueError(
            f"{name} must have shape {expected}, or (n,) for d = 1; got shape {arr.shape}"
        )
    n, d = arr.shape
    if d < 1:
        raise ValueError(f"{name} must have at least one coordinate; got shape {arr.shape}")
    if n < 2:
        raise ValueError(f"{name} needs at least 2 points; got {n} (shape {arr.shape})")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    _check_finite(name, arr)
    return arr


def _check_same_dim(name_x: str, x: np.ndarray, name_y: str, y: np.ndarray) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{name_y} must have the same dimension d as {name_x}; got "
            f"{name_x} with d = {x.shape[1]} and {name_y} with d = {y.shape[1]}"
        )


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}")
    return int(value)


def _check_seed(value: Any) -> int | None:
    if value is None:
        return None
    return _check_int("seed", value, 0)


def _check_method(value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"method must be one of {options}; got {value!r}")
    return value


def _check_p(value: Any, method: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"p must be a finite real number >= 1; got {value!r}")
    if value < 1:
        # For p < 1, |x - y|^p is not a metric cost of a convex type and W_p^p itself is the
        # distance; keep the family unambiguous.
        raise ValueError(f"p must be >= 1; got p = {value}")
    if method == "sinkhorn" and value != 2:
        raise ValueError(
            f"p: method='sinkhorn' supports p = 2 only; got p = {value} "
            "(use method='exact' or 'sliced' for other p)"
        )
    return float(value)


# --------------------------------------------------------------------------------------------
# Empirical W_p
# --------------------------------------------------------------------------------------------


def wasserstein(
    x: Any,
    y: Any,
    method: str = "exact",
    *,
    p: float = 2,
    reg: float | None = None,
    n_projections: int = 200,
    seed: int | None = 0,
    max_exact: int = MAX_EXACT,
) -> float:
    r"""Wasserstein distance ``W_p`` between two point clouds with uniform weights.

    For :math:`\mu = \frac1n\sum_i \delta_{x_i}` and :math:`\nu = \frac1m\sum_j \delta_{y_j}`,

    .. math::

      W_p(\mu, \nu) = \Big(\min_{P \in U(a, b)} \sum_{ij} P_{ij} \|x_i - y_j\|^p\Big)^{1/p},
      \qquad U(a, b) = \{P \ge 0 : P 1 = a, P^\top 1 = b\},

    with :math:`a = 1/n`, :math:`b = 1/m`. Three ways to compute it:

    * ``"exact"``: the linear programme above, solved by POT's network simplex
      (``ot.emd2``). Exact; memory and time grow like :math:`n m` (and worse), so samples
      larger than ``max_exact`` are refused.
    * ``"sinkhorn"`` (``p = 2`` only): entropic OT,
      :math:`\mathrm{OT}_\varepsilon = \min_P \langle P, C\rangle
      + \varepsilon\,\mathrm{KL}(P \,\|\, a \otimes b)`, solved by log-domain Sinkhorn
      iterations (POT's ``ot.sinkhorn``, ``method="sinkhorn_log"``). On its own it is biased
      upward: :math:`W_2^2 \le \mathrm{OT}_\varepsilon \le W_2^2 + \varepsilon\log\min(n, m)`
      (the KL term is a mutual information, at most :math:`\log\min(n, m)`), and
      :math:`\mathrm{OT}_\varepsilon(\mu, \mu) > 0`. The value returned is the square root of
      the debiased *Sinkhorn divergence*

      .. math::

        S_\varepsilon(\mu, \nu) = \mathrm{OT}_\varepsilon(\mu, \nu)
          - \tfrac12\big(\mathrm{OT}_\varepsilon(\mu, \mu) + \mathrm{OT}_\varepsilon(\nu, \nu)\big),

      which is zero for :math:`\mu = \nu`, non-negative, and by the bound above within
      :math:`\varepsilon\log\min(n, m)` of :math:`W_2^2` (much closer in practice). Round-off
      below zero is clipped. The default ``reg`` is :math:`\varepsilon = 0.05 \times`
      the median entry of the cost matrix :math:`C_{ij} = \|x_i - y_j\|^2`
      (:data:`SINKHORN_REG_FRACTION`); smaller values are closer to W2 but need many more
      iterations. At the default the value often comes out below the exact W2 of the same
      points (about 12% below on 500 points in 5-D): the smoothing also removes part of the
      finite-sample inflation of W2. Compare Sinkhorn values with Sinkhorn values. The value
      is read from the dual potentials, which converge faster than the marginals; a
      :class:`RuntimeWarning` says when Sinkhorn stopped before converging. Builds three cost
      matrices (:math:`nm`, :math:`n^2`, :math:`m^2`); on a CPU the exact solver is usually
      faster up to a few thousand points.
    * ``"sliced"``: sliced Wasserstein,
      :math:`SW_p^p = \frac1L\sum_{l=1}^L W_p^p(\theta_l\#\mu, \theta_l\#\nu)` over
      ``n_projections`` random unit directions (POT's ``ot.sliced_wasserstein_distance``),
      each 1-D problem solved by sorting. Any size. Since a projection is 1-Lipschitz,
      :math:`SW_p \le W_p` always; in ``d`` dimensions it is typically smaller by about
      :math:`\sqrt d` (a shift ``v`` gives :math:`SW_2 \approx |v|/\sqrt d`), so it is a
      different scale: compare sliced values with sliced values only.

    Args:
      x: samples ``(n, d)``; a 1-D array is ``n`` points in one dimension. NumPy or JAX
        arrays (converted to float64 NumPy).
      y: samples ``(m, d)`` with the same ``d``.
      method: ``"exact"``, ``"sinkhorn"`` or ``"sliced"``.
      p: the order of the distance, ``>= 1``; ``"sinkhorn"`` supports ``p = 2`` only.
      reg: entropic regularisation :math:`\varepsilon` (``"sinkhorn"`` only), in the units of
        the squared distance; None for the default described above.
      n_projections: number of random directions (``"sliced"`` only).
      seed: seed of the random directions (``"sliced"`` only); None for fresh randomness.
      max_exact: largest ``n`` or ``m`` that ``"exact"`` accepts.

    Returns:
      The distance, a float ``>= 0`` in the units of ``x``.

    Example:
      >>> import numpy as np
      >>> from langevin.diagnostics import wasserstein
      >>> x = np.random.default_rng(0).standard_normal((300, 2))
      >>> round(wasserstein(x, x + [3.0, 4.0]), 12)      # a translation moves W2 by |v|
      5.0
      >>> wasserstein(x, x + [3.0, 4.0], "sliced") < 5.0
      True

    References:
      Flamary et al., *POT: Python Optimal Transport*, JMLR 22(78), 2021.
      Cuturi, *Sinkhorn distances: lightspeed computation of optimal transport*, NeurIPS 2013.
      Feydy et al., *Interpolating between optimal transport and MMD using Sinkhorn
      divergences*, AISTATS 2019.
      Bonneel et al., *Sliced and Radon Wasserstein barycenters of measures*, J. Math.
      Imaging Vis. 51, 2015.
    """
    method = _check_method(method, _METHODS)
    x = _as_points("x", x)
    y = _as_points("y", y)
    _check_same_dim("x", x, "y", y)
    p = _check_p(p, method)
    n_projections = _check_int("n_projections", n_projections, 1)
    seed = _check_seed(seed)
    max_exact = _check_int("max_exact", max_exact, 2)
    if reg is not None:
        if method != "sinkhorn":
            raise ValueError(
                f"reg is only used by method='sinkhorn'; got reg={reg!r} with method={method!r}"
            )
        if isinstance(reg, bool) or not isinstance(reg, numbers.Real):
            raise TypeError(f"reg must be a positive real number or None; got {reg!r}")
        if not (math.isfinite(reg) and reg > 0):
            raise ValueError(f"reg must be a positive finite number or None; got {reg}")

    if method == "exact":
        return _exact(x, y, p, max_exact)
    if method == "sinkhorn":
        return _sinkhorn_divergence(x, y, None if reg is None else float(reg))
    import ot

    value = ot.sliced_wasserstein_distance(x, y, n_projections=n_projections, p=p, seed=seed)
    return float(value)


def _cdist(*args, **kwargs):
    # Imported on first use, like POT: `import langevin` stays free of scipy.spatial.
    from scipy.spatial.distance import cdist

    return cdist(*args, **kwargs)


def _cost(x: np.ndarray, y: np.ndarray, p: float) -> np.ndarray:
    # cdist forms the differences x_i - y_j, so equal points give exactly 0 (the expansion
    # |x|^2 + |y|^2 - 2 x.y used by ot.dist leaves round-off, even negative entries).
    if p == 2:
        return _cdist(x, y, "sqeuclidean")
    return _cdist(x, y, "euclidean") ** p


def _exact(x: np.ndarray, y: np.ndarray, p: float, max_exact: int) -> float:
    n, m = len(x), len(y)
    if max(n, m) > max_exact:
        gib = 8 * n * m / 2**30
        raise ValueError(
            f"max_exact: method='exact' needs the {n} x {m} cost matrix ({gib:.2g} GiB) and a "
            f"network simplex on it, and refuses samples larger than max_exact={max_exact}; "
            "subsample, use method='sliced' (any size) or method='sinkhorn', or raise max_exact"
        )
    a = np.full(n, 1.0 / n)
    b = np.full(m, 1.0 / m)
    with warnings.catch_warnings():
        # POT reports the solver status as a UserWarning; read the status code instead and
        # say what it means for this estimate.
        warnings.simplefilter("ignore", UserWarning)
        import ot

        value, log = ot.emd2(a, b, _cost(x, y, p), numItermax=_EMD_MAX_ITER, log=True)
    code = log["result_code"]
    if code == 3:  # MAX_ITER_REACHED
        # The flow is then not a transport plan (its cost can be far below the optimum), so
        # there is no number worth returning.
        raise RuntimeError(
            f"exact OT did not reach optimality within {_EMD_MAX_ITER} simplex pivots; "
            "subsample, or use method='sliced'"
        )
    if code != 1:  # infeasible or unbounded: impossible for uniform weights, finite costs
        raise RuntimeError(f"POT's network simplex failed: {log['warning']}")
    return float(max(float(value), 0.0) ** (1.0 / p))


def _default_reg(x: np.ndarray, y: np.ndarray, cost: np.ndarray | None = None) -> float:
    cost = _cdist(x, y, "sqeuclidean") if cost is None else cost
    scale = float(np.median(cost))
    if scale == 0.0:  # more than half the pairs coincide: fall back on the mean
        scale = float(np.mean(cost))
    return SINKHORN_REG_FRACTION * scale


def _entropic_ot(cost: np.ndarray, reg: float) -> float:
    """``OT_eps`` with the KL term, from the dual potentials of log-domain Sinkhorn."""
    n, m = cost.shape
    a = np.full(n, 1.0 / n)
    b = np.full(m, 1.0 / m)
    stop = _SINKHORN_RTOL / math.sqrt(m)  # ||b||_2 = 1/sqrt(m)
    import ot

    plan, log = ot.sinkhorn(
        a,
        b,
        cost,
        reg,
        method="sinkhorn_log",
        numItermax=_SINKHORN_MAX_ITER,
        stopThr=stop,
        log=True,
        warn=False,
    )
    err = float(log["err"][-1])
    if not err < stop:
        warnings.warn(
            f"Sinkhorn did not converge in {_SINKHORN_MAX_ITER} iterations (marginal error "
            f"{err:.2g} > {stop:.2g}) at reg={reg:.3g}; the Sinkhorn divergence may be "
            "inaccurate. Use a larger reg, or method='exact'.",
            RuntimeWarning,
            stacklevel=4,
        )
    # POT's plan is P_ij = exp(u_i + v_j - C_ij/eps); the dual potentials of
    # min <P, C> + eps KL(P | a x b) are f = eps (u - log a), g = eps (v - log b), and the dual
    # objective <f, a> + <g, b> - eps (sum P - 1) equals OT_eps at the fixed point.
    f = reg * (log["log_u"] - np.log(a))
    g = reg * (log["log_v"] - np.log(b))
    return float(f @ a + g @ b - reg * (plan.sum() - 1.0))


def _sinkhorn_divergence(x: np.ndarray, y: np.ndarray, reg: float | None) -> float:
    cost_xy = _cost(x, y, 2)
    if reg is None:
        reg = _default_reg(x, y, cost_xy)
        if reg == 0.0:  # every x_i equals every y_j: one common atom
            return 0.0
    value = _entropic_ot(cost_xy, reg)
    value -= 0.5 * (_entropic_ot(_cost(x, x, 2), reg) + _entropic_ot(_cost(y, y, 2), reg))
    return math.sqrt(max(value, 0.0))


# --------------------------------------------------------------------------------------------
# Gaussian closed form
# --------------------------------------------------------------------------------------------


def _as_mean(name: str, value: Any) -> np.ndarray:
    arr = _as_real_array(name, value).astype(np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    elif arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            f"{name} must be a scalar or a non-empty vector (d,); got shape {arr.shape}"
        )
    _check_finite(name, arr)
    return arr


def _as_cov(name: str, value: Any, d: int) -> np.ndarray:
    arr = _as_real_array(name, value).astype(np.float64)
    if arr.ndim == 0:
        if d != 1:
            raise ValueError(
                f"{name} is a scalar (a variance) but the means have length {d}; "
                f"pass a ({d}, {d}) covariance matrix"
            )
        arr = arr.reshape(1, 1)
    elif arr.shape != (d, d):
        raise ValueError(
            f"{name} must be a ({d}, {d}) covariance matrix to match the means; "
            f"got shape {arr.shape}"
        )
    _check_finite(name, arr)
    scale = float(np.abs(arr).max())
    asym = float(np.abs(arr - arr.T).max())
    if asym > 1e-8 * scale:
        raise ValueError(
            f"{name} must be symmetric; got max |S - S^T| = {asym:.3g} (max |S| = {scale:.3g})"
        )
    arr = 0.5 * (arr + arr.T)
    eig = np.linalg.eigvalsh(arr)
    # Eigenvalues of a PSD matrix come out of eigh with errors of order d * eps * |S|; allow
    # that much, refuse anything clearly negative.
    if eig[0] < -1e-10 * max(scale, np.finfo(np.float64).tiny):
        raise ValueError(
            f"{name} must be positive semi-definite; got smallest eigenvalue "
            f"{eig[0]:.3g} (largest {eig[-1]:.3g})"
        )
    return arr


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    eig, vec = np.linalg.eigh(cov)
    return (vec * np.sqrt(np.clip(eig, 0.0, None))) @ vec.T


def gaussian_w2(mean1: Any, cov1: Any, mean2: Any, cov2: Any) -> float:
    r"""Closed-form 2-Wasserstein distance between two Gaussians.

    .. math::

      W_2^2\big(N(m_1, \Sigma_1), N(m_2, \Sigma_2)\big) = \|m_1 - m_2\|^2
        + \operatorname{tr}\Big(\Sigma_1 + \Sigma_2
        - 2\big(\Sigma_2^{1/2}\Sigma_1\Sigma_2^{1/2}\big)^{1/2}\Big).

    The covariance term (the squared Bures distance) is evaluated as
    :math:`\min_{U^\top U = I}\|\Sigma_1^{1/2} - \Sigma_2^{1/2} U\|_F^2`, which equals it
    because :math:`\max_U \operatorname{tr}(\Sigma_1^{1/2}\Sigma_2^{1/2}U)` is the nuclear
    norm of :math:`\Sigma_2^{1/2}\Sigma_1^{1/2}`, i.e. the trace of the matrix square root
    above. The square roots come from symmetric eigendecompositions (eigenvalues clipped at
    0), the optimal ``U`` from an SVD (orthogonal Procrustes). Written as a sum of squares it
    cannot go negative and stays accurate when :math:`\Sigma_1 \approx \Sigma_2`, where the
    trace form loses half the digits to cancellation. Singular (PSD) covariances are fine.

    Args:
      mean1: mean of the first Gaussian, ``(d,)``, or a scalar for ``d = 1``.
      cov1: its covariance ``(d, d)``, symmetric positive semi-definite; for ``d = 1`` a
        scalar *variance* is accepted.
      mean2: mean of the second Gaussian, same length.
      cov2: its covariance.

    Returns:
      :math:`W_2`, a float ``>= 0``.

    Example:
      >>> from langevin.diagnostics import gaussian_w2
      >>> gaussian_w2(0.0, 4.0, 3.0, 4.0)                  # 1-D: sqrt((m1-m2)^2 + (s1-s2)^2)
      3.0
      >>> gaussian_w2([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0], [[4.0, 0.0], [0.0, 9.0]])
      2.23606797749979

    References:
      Dowson & Landau, *The Fréchet distance between multivariate normal distributions*,
      J. Multivariate Anal. 12(3), 1982.
      Givens & Shortt, *A class of Wasserstein metrics for probability distributions*,
      Michigan Math. J. 31(2), 1984.
    """
    m1 = _as_mean("mean1", mean1)
    m2 = _as_mean("mean2", mean2)
    if m1.size != m2.size:
        raise ValueError(f"mean2 must have the same length as mean1; got {m1.size} and {m2.size}")
    d = m1.size
    root1 = _psd_sqrt(_as_cov("cov1", cov1, d))
    root2 = _psd_sqrt(_as_cov("cov2", cov2, d))
    # Orthogonal Procrustes: with root2 @ root1 = P diag(s) Q^T, U = P Q^T maximises
    # tr(root1 root2 U) = sum(s).
    left, _, right_t = np.linalg.svd(root2 @ root1)
    bures = float(np.linalg.norm(root1 - root2 @ (left @ right_t)))
    return math.hypot(float(np.linalg.norm(m1 - m2)), bures)


# --------------------------------------------------------------------------------------------
# Draws against reference draws
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class W2Result:
    """W2 between draws and reference draws, with the finite-sample noise floor.

    Attributes:
      distance: the distance between the (subsampled) draws and reference draws.
      noise_floor: the same distance between two disjoint random halves of the reference
        draws: what two finite samples of the *same* law already give. A distance within a
        small multiple of it is indistinguishable from zero at these sample sizes.
      n: number of draws used.
      m: number of reference draws used.
      method: ``"exact"``, ``"sinkhorn"`` or ``"sliced"`` (sliced values are on a smaller
        scale than W2; see :func:`wasserstein`).
    """

    distance: float
    noise_floor: float
    n: int
    m: int
    method: str

    def __str__(self) -> str:
        label = _METHOD_LABELS.get(self.method, self.method)
        return (
            f"W2 = {self.distance:.3g} (noise floor {self.noise_floor:.3g}; {label}, "
            f"{self.n} vs {self.m} points)"
        )


def _draws_of(samples: Any) -> np.ndarray:
    """An ``(n, d)`` array from an array, a trace-like object with ``.draws``, or ArviZ data
    (``InferenceData``, ``xarray.DataTree``, or a posterior ``xarray.Dataset``)."""
    if _arviz.is_arviz_data(samples) or type(samples).__name__ == "Dataset":
        try:
            draws = _arviz.posterior_array(samples)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"samples: cannot read its posterior group: {exc}") from None
        return _as_points("samples.posterior", draws, allow_chains=True)
    if hasattr(samples, "__array__") or not hasattr(samples, "draws"):
        return _as_points("samples", samples, allow_chains=True)
    draws = _as_real_array("samples.draws", samples.draws)
    if draws.ndim != 3:
        raise ValueError(
            f"samples.draws must have shape (chains, draws, d); got shape {draws.shape}"
        )
    # A trace keeps NaN after the step where a chain diverged and lists those chains in
    # ``diverged`` (the driver has already warned); use the other chains, as Trace.flat() does.
    diverged = getattr(samples, "diverged", None) or {}
    keep = [c for c in range(draws.shape[0]) if c not in diverged]
    if not keep:
        raise ValueError(f"samples: all {draws.shape[0]} chains diverged; no draws to compare")
    return _as_points("samples.draws", draws[keep], allow_chains=True)


def _subsample(points: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    if len(points) <= size:
        return points
    return points[rng.choice(len(points), size=size, replace=False)]


def w2_to_reference(
    samples: Any,
    reference: Any,
    method: str = "auto",
    *,
    max_points: int = 2000,
    seed: int | None = 0,
) -> W2Result:
    r"""W2 between a sampler's draws and reference draws, with its finite-sample noise floor.

    Both sets are subsampled at random (without replacement) to at most ``max_points``, then
    :func:`wasserstein` gives :math:`\hat W = W_2(\hat\mu_n, \hat\nu_m)`. Even for draws from
    the reference law itself :math:`\hat W > 0`: the W2 between two finite samples of one
    law shrinks slowly, roughly like :math:`n^{-1/d}` in ``d > 4`` dimensions and not much
    faster below (Fournier & Guillin 2015). The noise floor estimates that level: the same
    distance between two disjoint random halves of the reference draws, each of size
    :math:`k = \min(n, \lfloor m_{\rm all}/2\rfloor)`. Since :math:`k \le n`, it errs on the
    large side. Read :math:`\hat W` relative to it: a few noise floors or less means the
    draws are indistinguishable from the reference at this sample size; well above means a
    real difference (bias, poor mixing, a missed mode). Correlated MCMC draws are worth
    fewer independent ones, which makes :math:`\hat W` larger than the floor by a little even
    for a correct sampler.

    Args:
      samples: draws ``(n, d)`` or ``(chains, draws, d)`` (chains are pooled), or a trace:
        any object with a ``.draws`` array ``(chains, draws, d)``; chains listed in its
        ``diverged`` mapping are left out, as in ``Trace.flat()``. Or ArviZ data, an
        ``InferenceData`` or ``xarray.DataTree`` (``trace.to_arviz()``, which leaves out
        stopped chains) or a posterior ``xarray.Dataset``: its posterior variables, each
        flattened in C order, side by side in their order (for ``trace.to_arviz()``, the
        coordinates of ``trace.draws``).
      reference: reference draws ``(m, d)`` (e.g. exact draws, or a long well-mixed run),
        at least 4 of them.
      method: ``"auto"`` (``"exact"`` if every set compared has at most :data:`MAX_EXACT`
        points, else ``"sliced"``), or ``"exact"``, ``"sinkhorn"``, ``"sliced"``.
      max_points: the most points taken from each set; exact OT costs grow like
        :math:`n^2` memory and faster than :math:`n^2` time.
      seed: seeds the subsampling and the halves (and the sliced directions); None for fresh
        randomness.

    Returns:
      A :class:`W2Result` with ``distance``, ``noise_floor``, the sizes ``n`` and ``m`` used
      and the ``method`` used; ``str()`` gives a one-line summary.

    Example:
      >>> import numpy as np
      >>> from langevin.diagnostics import w2_to_reference
      >>> rng = np.random.default_rng(0)
      >>> res = w2_to_reference(rng.standard_normal((4, 250, 2)), rng.standard_normal((3000, 2)))
      >>> res.n, res.m, res.method
      (1000, 2000, 'exact')
      >>> res.distance < 2 * res.noise_floor
      True

    References:
      Flamary et al., *POT: Python Optimal Transport*, JMLR 22(78), 2021.
      Fournier & Guillin, *On the rate of convergence in Wasserstein distance of the
      empirical measure*, Probab. Theory Relat. Fields 162, 2015.
    """
    method = _check_method(method, ("auto", *_METHODS))
    max_points = _check_int("max_points", max_points, 2)
    seed = _check_seed(seed)
    x = _draws_of(samples)
    ref = _as_points("reference", reference)
    _check_same_dim("samples", x, "reference", ref)
    if len(ref) < 4:
        raise ValueError(
            f"reference needs at least 4 points (two halves of 2 for the noise "
            f"floor); got {len(ref)}"
        )

    rng = np.random.default_rng(seed)
    xs = _subsample(x, max_points, rng)
    refs = _subsample(ref, max_points, rng)
    k = min(len(xs), len(ref) // 2)
    order = rng.permutation(len(ref))
    half1, half2 = ref[order[:k]], ref[order[k : 2 * k]]

    if method == "auto":
        method = "exact" if max(len(xs), len(refs)) <= MAX_EXACT else "sliced"
    # One regularisation for both Sinkhorn values, so that they are on the same footing.
    reg = _default_reg(xs, refs) if method == "sinkhorn" else None
    if reg == 0.0:
        reg = None
    distance = wasserstein(xs, refs, method, reg=reg, seed=seed)
    floor = wasserstein(half1, half2, method, reg=reg, seed=seed)
    return W2Result(distance=distance, noise_floor=floor, n=len(xs), m=len(refs), method=method)
