"""Bayesian logistic regression: a generic builder, a synthetic problem and a real data set.

The model, for a design matrix ``X`` (n × p) and labels ``y ∈ {0, 1}ⁿ``::

    β ~ N(0, s² I),        y_i | β ~ Bernoulli(σ(x_iᵀβ)),       σ(t) = 1 / (1 + e^{−t})

so that, with the linear predictor ``η = Xβ`` and dropping constants,

    log π(β) = Σ_i [y_i η_i − log(1 + e^{η_i})] − |β|² / (2 s²)
    ∇log π(β) = Xᵀ (y − σ(η)) − β / s²

``log(1 + e^η)`` (the softplus) is evaluated as ``max(η, 0) + log1p(e^{−|η|})``, which neither
overflows for large ``η`` nor loses the small term for very negative ``η``; ``σ(η)`` is
evaluated on the side where the exponential is at most 1 for the same reason.

The posterior is log-concave, smooth, and has no closed form. When *not* to use it as a test
target: as a check of exactness against a known law (there is none; the breast-cancer target
carries a long NUTS reference, the synthetic one only its generating coefficients).
"""

from __future__ import annotations

import math
from pathlib import Path

import numba
import numpy as np

from .base import Reference, Target

__all__ = [
    "logistic_regression",
    "synthetic_logistic_regression",
    "breast_cancer_logistic_regression",
    "rand_hie_design",
]

_DATA_DIR = Path(__file__).parent / "data" / "breast_cancer"
_RAND_HIE_DIR = Path(__file__).parent / "data" / "rand_hie"


@numba.njit(cache=True)
def _logistic_value_and_grad(beta, data):
    """Log density and gradient of the logistic-regression posterior (Numba form).

    ``data = (X, y, prior_precision)`` with ``prior_precision = 1 / s²``.
    """
    X, y, prior_precision = data
    eta = np.dot(X, beta)
    n = eta.shape[0]
    value = 0.0
    # residual y − σ(η), written into a fresh array element by element
    resid = np.empty(n)
    for i in range(n):
        t = eta[i]
        if t > 0.0:
            e = math.exp(-t)
            value += y[i] * t - (t + math.log1p(e))
            resid[i] = y[i] - 1.0 / (1.0 + e)
        else:
            e = math.exp(t)
            value += y[i] * t - math.log1p(e)
            resid[i] = y[i] - e / (1.0 + e)
    grad = np.dot(X.T, resid) - prior_precision * beta
    value -= 0.5 * prior_precision * np.dot(beta, beta)
    return value, grad


def _logistic_jax(X: np.ndarray, y: np.ndarray, prior_precision: float):
    """The JAX log density closing over the data; it computes in the dtype of ``beta``."""

    def logdensity(beta):
        import jax.numpy as jnp  # at trace time: the Numba form never imports JAX

        Xc = jnp.asarray(X, dtype=beta.dtype)
        yc = jnp.asarray(y, dtype=beta.dtype)
        eta = Xc @ beta
        loglik = jnp.sum(yc * eta - jnp.logaddexp(0.0, eta))
        return loglik - 0.5 * prior_precision * jnp.dot(beta, beta)

    return logdensity


def logistic_regression(
    X: np.ndarray,
    y: np.ndarray,
    prior_scale: float = 1.0,
    name: str = "logistic_regression",
    *,
    intercept: bool = False,
    reference: Reference | None = None,
) -> Target:
    """Bayesian logistic regression with an isotropic Gaussian prior on the coefficients.

    ``β ~ N(0, prior_scale² I)``, ``y_i ~ Bernoulli(1 / (1 + exp(−x_iᵀβ)))``; the log density
    (up to a constant) is ``Σ_i [y_i η_i − log(1 + e^{η_i})] − |β|²/(2 prior_scale²)`` with
    ``η = Xβ``, and its gradient is ``Xᵀ(y − σ(η)) − β/prior_scale²``.

    Args:
        X: design matrix, shape ``(n, p)``; copied to C-contiguous float64.
        y: labels in ``{0, 1}``, shape ``(n,)``.
        prior_scale: standard deviation ``s > 0`` of the prior on every coefficient.
        name: the target's name.
        intercept: prepend a column of ones to ``X``; the position is then
            ``(intercept, beta_1..beta_p)`` with names ``{"intercept": (), "beta": p}``,
            and the intercept has the same ``N(0, prior_scale²)`` prior.
        reference: what is known about the posterior, if anything.

    Returns:
        A :class:`Target` of dimension ``p`` (``p + 1`` with ``intercept``), starting at the
        prior mean 0, with both a JAX and a Numba form.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(20, 3))
        >>> target = logistic_regression(X, (X[:, 0] > 0).astype(float))
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must be a non-empty 2-D array (n, p); got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite (no NaN or inf)")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X; got {y.shape}")
    if not np.all((y == 0.0) | (y == 1.0)):
        raise ValueError("y must hold only 0 and 1 labels")
    prior_scale = float(prior_scale)
    if not (np.isfinite(prior_scale) and prior_scale > 0.0):
        raise ValueError(f"prior_scale must be a positive finite number; got {prior_scale}")
    p = X.shape[1]
    if intercept:
        X = np.hstack([np.ones((X.shape[0], 1)), X])
        names: dict[str, int | tuple[int, ...]] = {"intercept": (), "beta": p}
    else:
        names = {"beta": p}
    X = np.ascontiguousarray(X)
    y = np.ascontiguousarray(y)
    prior_precision = 1.0 / prior_scale**2
    return Target(
        dim=X.shape[1],
        names=names,
        jax={"logdensity": _logistic_jax(X, y, prior_precision)},
        numba={"value_and_grad": _logistic_value_and_grad},
        data=(X, y, prior_precision),
        initial_position=np.zeros(X.shape[1]),
        reference=reference,
        name=name,
    )


def synthetic_logistic_regression(
    n: int = 1000, dim: int = 50, seed: int = 0, prior_scale: float = 1.0
) -> Target:
    """Logistic regression on data simulated from the model itself (no intercept).

    The generator (``numpy.random.default_rng(seed)``), in this order:

    * ``X``: n × dim, entries i.i.d. ``N(0, 1/dim)``, so each row has expected squared norm 1;
    * ``β*``: dim entries i.i.d. ``N(0, prior_scale²)``, a draw from the prior;
    * ``y_i ~ Bernoulli(σ(x_iᵀβ*))``; since ``x_iᵀβ* ~ N(0, |β*|²/dim) ≈ N(0, prior_scale²)``
      the logits are of order one and the classes are not separable.

    ``β*`` is kept as ``target.true_coefficients``. The posterior has no closed form; with
    ``n / dim`` large it concentrates around ``β*`` at rate ``√(dim/n)``, but that is not an
    exact law, so the reference records only how the target is checked.
    """
    for argname, value, least in (("n", n, 1), ("dim", dim, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
            raise ValueError(f"{argname} must be an int >= {least}; got {value!r}")
    prior_scale = float(prior_scale)
    if not (np.isfinite(prior_scale) and prior_scale > 0.0):
        raise ValueError(f"prior_scale must be a positive finite number; got {prior_scale}")
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=1.0 / math.sqrt(dim), size=(n, dim))
    beta = rng.normal(scale=prior_scale, size=dim)
    prob = 1.0 / (1.0 + np.exp(-(X @ beta)))
    y = (rng.uniform(size=n) < prob).astype(np.float64)
    reference = Reference(
        source=(
            "none exact: data simulated from the model (seed "
            f"{seed}); the log density and gradient are checked against JAX autodiff and "
            "finite differences; target.true_coefficients holds the generating coefficients"
        )
    )
    target = logistic_regression(
        X, y, prior_scale, name=f"synthetic_logistic_regression_{n}x{dim}", reference=reference
    )
    target.true_coefficients = beta
    return target


def _load_breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """The raw Wisconsin Diagnostic Breast Cancer data: features (569, 30) and labels (569,).

    The CSV is scikit-learn's copy: a header line ``569,30,malignant,benign`` then one row per
    case, 30 features and the label (0 = malignant, 1 = benign, as in scikit-learn).
    """
    table = np.loadtxt(_DATA_DIR / "breast_cancer.csv", delimiter=",", skiprows=1)
    return np.ascontiguousarray(table[:, :-1]), np.ascontiguousarray(table[:, -1])


def _breast_cancer_design() -> tuple[np.ndarray, np.ndarray]:
    """Standardised features (569, 30; mean 0, population sd 1 per column) and labels."""
    features, y = _load_breast_cancer()
    X = (features - features.mean(axis=0)) / features.std(axis=0)
    return np.ascontiguousarray(X), y


def breast_cancer_logistic_regression() -> Target:
    """Logistic regression on the Wisconsin Diagnostic Breast Cancer data (569 cases, 31-D).

    Data: Wolberg, Street & Mangasarian (1995), UCI Machine Learning Repository (CC BY 4.0),
    in the copy distributed with scikit-learn (see ``data/breast_cancer/README.md``).
    The label is 1 for a benign and 0 for a malignant tumour (scikit-learn's coding).

    Preprocessing: each of the 30 features is standardised to mean 0 and standard deviation
    1 (population sd, ``ddof=0``), so that one prior scale suits every coefficient; then an
    intercept is added. The position is ``(intercept, beta_1..beta_30)`` with the prior
    ``N(0, 1)`` on each: several features are nearly collinear (radius, perimeter and area;
    the condition number of their correlation matrix is about 1e5), and the unit prior keeps
    the posterior proper and well scaled while the likelihood still dominates the
    well-identified directions.

    Reference: mean, sd, MCSE of the mean and 4000 draws from BlackJAX NUTS (4 chains × 5000
    draws after 1000 warm-up steps, dense mass matrix), made by
    ``benchmarks/make_breast_cancer_reference.py``.
    """
    X, y = _breast_cancer_design()
    with np.load(_DATA_DIR / "reference.npz") as ref:
        draws = ref["draws"]
        reference = Reference(
            mean=ref["mean"].copy(),
            sd=ref["sd"].copy(),
            mean_mcse=ref["mean_mcse"].copy(),
            draws=np.ascontiguousarray(draws.reshape(-1, draws.shape[-1])),
            source="BlackJAX NUTS, 4x5000 draws, see benchmarks/make_breast_cancer_reference.py",
        )
    return logistic_regression(
        X, y, 1.0, name="breast_cancer_logistic_regression", intercept=True, reference=reference
    )


RAND_HIE_COLUMNS = (
    "intercept", "lncoins", "idp", "lpi", "fmde", "physlm", "disea", "hlthg", "hlthf", "hlthp",
)


def rand_hie_design() -> tuple[np.ndarray, np.ndarray]:
    """The RAND Health Insurance Experiment as a logistic-regression design (20 190 × 10).

    Data: the RAND HIE extract distributed with statsmodels (public domain; Cameron &
    Trivedi 2005, *Microeconometrics*; see ``data/rand_hie/README.md``). The label is 1 when
    the person saw a doctor at least once in the year (``mdvis > 0``, 69 % of rows). The
    design is an intercept followed by the 9 covariates standardised to mean 0 and population
    sd 1 (``RAND_HIE_COLUMNS`` names them), so that one prior scale suits every coefficient.

    It is the project's real data set of more than 5000 rows, for the data-scale samplers
    (minibatch SG-MCMC, federated clients). Build a target with
    :func:`langevin.targets.logistic_regression` (full data) or
    :func:`langevin.targets.logistic_regression_data` (minibatches).

    Example:
        >>> X, y = rand_hie_design()
        >>> X.shape, y.shape
        ((20190, 10), (20190,))
    """
    table = np.loadtxt(_RAND_HIE_DIR / "randhie.csv.gz", delimiter=",", skiprows=1)
    y = (table[:, 0] > 0.0).astype(np.float64)
    features = table[:, 1:]
    standardised = (features - features.mean(axis=0)) / features.std(axis=0)
    X = np.concatenate([np.ones((table.shape[0], 1)), standardised], axis=1)
    return np.ascontiguousarray(X), y
