"""Posteriors from posteriordb: Gaussian linear regressions with exact reference moments.

Source: posteriordb (Magnusson, Bürkner & Vehtari 2023, "posteriordb: a set of posteriors for
Bayesian inference and probabilistic programming"; BSD 3-Clause), snapshot 2025-04-29. The
files kept under ``data/posteriordb/<name>/`` are described in that folder's README.md; each
``model.md`` states its model.

All three posteriors here belong to one family (see any ``model.md``): with a design matrix
``X`` (n × p), a response ``y``, coefficients ``β`` and noise scale ``σ = e^s``, the position
is ``z = (β, s)`` and, up to a constant (Stan's ``~`` drops constants),

    log p(z) = log p_β(β) + log p_σ(e^s) − n·s − RSS / (2 e^{2s}) + s,     RSS = |y − Xβ|²

where ``+ s`` is the log-Jacobian of ``σ = e^s``. The gradient is

    ∂/∂β = Xᵀ(y − Xβ) / σ² + ∇log p_β(β)
    ∂/∂s = −n + RSS / σ² + σ · (d/dσ) log p_σ(σ) + 1.

Priors (as the model.md files list them), passed through the data so that one compiled
function serves every member:

* on each ``β_k``: flat (precision 0) or Normal(m_k, c_k): ``−(β_k − m_k)² / (2 c_k²)``;
* on ``σ``: flat, half-Cauchy(0, c): ``−log(1 + σ²/c²)``, or half-Normal(0, c):
  ``−σ² / (2c²)``. The half-Cauchy term is evaluated as ``−softplus(2s − 2 log c)`` and its
  ``σ·d/dσ = −2σ²/(c² + σ²)`` as ``−2 sigmoid(2s − 2 log c)``, which stay finite for any s.

References: the coefficient means and sds are posteriordb's near-exact quadrature values
(``exact_summary.json``: 1-D quadrature over log σ, β | σ Gaussian); ``log_sigma``'s mean
and sd come from posteriordb's Stan reference draws (10 chains × 1000 draws) mapped to
``s = log σ``, with MCSE ``sd / √ESS`` (ESS of the mean, from ArviZ, over the 10 chains).
``Reference.constrained`` holds the exact summary of the constrained parameters
(``beta[1]``, ..., ``sigma``: mean and sd).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numba
import numpy as np

from .base import Reference, Target

__all__ = ["posteriordb", "earnings_logearn_interaction_z", "arK", "kidiq_kidscore_momiq"]

_DATA_DIR = Path(__file__).parent / "data" / "posteriordb"

# codes of the prior on σ (an int in the Numba data; a static branch in JAX)
_SIGMA_FLAT, _SIGMA_HALF_CAUCHY, _SIGMA_HALF_NORMAL = 0, 1, 2


@numba.njit(cache=True)
def _softplus(u):
    """``log(1 + e^u)`` without overflow for large u or lost digits for very negative u."""
    if u > 0.0:
        return u + math.log1p(math.exp(-u))
    return math.log1p(math.exp(u))


@numba.njit(cache=True)
def _sigmoid(u):
    """``1 / (1 + e^{−u})``, exponentiating only non-positive numbers."""
    if u >= 0.0:
        return 1.0 / (1.0 + math.exp(-u))
    e = math.exp(u)
    return e / (1.0 + e)


@numba.njit(cache=True)
def _linreg_value_and_grad(z, data):
    """The regression family's log density and gradient (see the module docstring).

    ``data = (X, y, beta_loc, beta_precision, sigma_code, sigma_scale)``; a flat prior on
    ``β_k`` has ``beta_precision[k] = 0``.
    """
    X, y, beta_loc, beta_prec, sigma_code, sigma_scale = data
    p = X.shape[1]
    n = X.shape[0]
    beta = z[:p]
    s = z[p]
    resid = y - np.dot(X, beta)
    rss = np.dot(resid, resid)
    inv_var = math.exp(-2.0 * s)
    xt_r = np.dot(X.T, resid)
    grad = np.empty(p + 1)
    value = 0.0
    for k in range(p):
        dev = beta[k] - beta_loc[k]
        value -= 0.5 * beta_prec[k] * dev * dev
        grad[k] = xt_r[k] * inv_var - beta_prec[k] * dev
    # σ · d/dσ log p_σ(σ), the prior's contribution to ∂/∂s
    prior_ds = 0.0
    if sigma_code == _SIGMA_HALF_CAUCHY:
        u = 2.0 * (s - math.log(sigma_scale))
        value -= _softplus(u)
        prior_ds = -2.0 * _sigmoid(u)
    elif sigma_code == _SIGMA_HALF_NORMAL:
        ratio = math.exp(2.0 * s) / (sigma_scale * sigma_scale)
        value -= 0.5 * ratio
        prior_ds = -ratio
    value += -n * s - 0.5 * rss * inv_var + s
    grad[p] = -n + rss * inv_var + prior_ds + 1.0
    return value, grad


def _linreg_logdensity_jax(z, data):
    """The regression family's log density in JAX, in the dtype of ``z``; ``data`` as for
    Numba, with ``sigma_code`` a Python int (a static branch)."""
    import jax.numpy as jnp

    X, y, beta_loc, beta_prec, sigma_code, sigma_scale = data
    p = X.shape[1]
    n = X.shape[0]
    beta, s = z[:p], z[p]
    resid = jnp.asarray(y, dtype=z.dtype) - jnp.asarray(X, dtype=z.dtype) @ beta
    dev = beta - jnp.asarray(beta_loc, dtype=z.dtype)
    value = -0.5 * jnp.sum(jnp.asarray(beta_prec, dtype=z.dtype) * dev * dev)
    if sigma_code == _SIGMA_HALF_CAUCHY:
        value = value - jnp.logaddexp(0.0, 2.0 * (s - math.log(sigma_scale)))
    elif sigma_code == _SIGMA_HALF_NORMAL:
        value = value - 0.5 * jnp.exp(2.0 * s) / sigma_scale**2
    return value - n * s - 0.5 * jnp.dot(resid, resid) * jnp.exp(-2.0 * s) + s


# -- the members: how each data.json becomes (X, y), and the priors from its model.md ----------


def _earnings(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """y = log(earn); zh = standardised height (sample sd, N−1); X = [1, zh, male, zh·male]."""
    height = np.asarray(data["height"], dtype=np.float64)
    male = np.asarray(data["male"], dtype=np.float64)
    zh = (height - height.mean()) / height.std(ddof=1)
    X = np.column_stack([np.ones_like(zh), zh, male, zh * male])
    return X, np.log(np.asarray(data["earn"], dtype=np.float64))


def _ark(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """Rows t = K+1..T (1-based): X_t = [1, y_{t−1}, ..., y_{t−K}], response y_t."""
    K, T = int(data["K"]), int(data["T"])
    series = np.asarray(data["y"], dtype=np.float64)
    lags = [series[K - k : T - k] for k in range(1, K + 1)]
    X = np.column_stack([np.ones(T - K), *lags])
    return X, series[K:]


def _kidiq(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """X = [1, mom_iq], y = kid_score."""
    mom_iq = np.asarray(data["mom_iq"], dtype=np.float64)
    X = np.column_stack([np.ones_like(mom_iq), mom_iq])
    return X, np.asarray(data["kid_score"], dtype=np.float64)


class _Member(NamedTuple):
    """One posterior of the family: how its data.json becomes (X, y), and its priors."""

    design: Callable[[dict], tuple[np.ndarray, np.ndarray]]
    # coefficient blocks: posteriordb's name and the shape (() for a scalar, n for a vector)
    blocks: tuple[tuple[str, int | tuple[()]], ...]
    beta_sd: float  # sd of the Normal(0, sd) prior on every coefficient; inf = flat
    sigma_prior: int  # a _SIGMA_* code
    sigma_scale: float


_MEMBERS = {
    "earnings-logearn_interaction_z": _Member(
        _earnings, (("beta", 4),), math.inf, _SIGMA_FLAT, 0.0
    ),
    "arK-arK": _Member(_ark, (("alpha", ()), ("beta", 5)), 10.0, _SIGMA_HALF_CAUCHY, 2.5),
    "kidiq-kidscore_momiq": _Member(_kidiq, (("beta", 2),), math.inf, _SIGMA_HALF_CAUCHY, 2.5),
}


def _coefficient_labels(blocks: tuple) -> list[str]:
    """posteriordb's labels of the coefficients, e.g. ``alpha``, ``beta[1]``, ``beta[2]``."""
    labels = []
    for block, shape in blocks:
        labels += [block] if shape == () else [f"{block}[{i}]" for i in range(1, shape + 1)]
    return labels


def _make_constrain(blocks: tuple, p: int) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    def constrain(x: np.ndarray) -> dict[str, np.ndarray]:
        """Flat unconstrained positions ``(..., dim)`` to posteriordb's parameters."""
        x = np.asarray(x)
        if x.shape[-1] != p + 1:
            raise ValueError(f"x must have last axis of length {p + 1}; got shape {x.shape}")
        out = {}
        start = 0
        for block, shape in blocks:
            if shape == ():
                out[block] = x[..., start]
                start += 1
            else:
                out[block] = x[..., start : start + shape]
                start += shape
        out["sigma"] = np.exp(x[..., p])
        return out

    return constrain


def posteriordb(name: str) -> Target:
    """A posteriordb posterior by its name (``<data>-<model>``), as a :class:`Target`.

    Available: ``earnings-logearn_interaction_z`` (5-D), ``arK-arK`` (7-D) and
    ``kidiq-kidscore_momiq`` (3-D), all Gaussian linear regressions (module docstring), and
    ``gp_pois_regr-gp_regr`` (3-D GP hyper-parameters, :mod:`.gp_regression`).

    The position is unconstrained: the coefficients, then ``log_sigma = log σ``; names as in
    posteriordb (``beta``, ``alpha``) plus ``log_sigma``. ``target.constrain(x)`` maps
    positions ``(..., dim)`` to ``{"beta": ..., "sigma": e^{log_sigma}}`` (and ``alpha``).
    The start is the least-squares fit with ``σ`` the residual root-mean-square, near the
    posterior mode.

    Raises:
        ValueError: an unknown ``name``.
    """
    if name == "gp_pois_regr-gp_regr":
        from .gp_regression import gp_pois_regr_gp_regr

        return gp_pois_regr_gp_regr()
    if name not in _MEMBERS:
        known = sorted([*_MEMBERS, "gp_pois_regr-gp_regr"])
        raise ValueError(f"name must be one of {known}; got {name!r}")
    member = _MEMBERS[name]
    blocks = member.blocks
    folder = _DATA_DIR / name
    X, y = member.design(json.loads((folder / "data.json").read_text()))
    X, y = np.ascontiguousarray(X), np.ascontiguousarray(y)
    n, p = X.shape
    beta_prec = np.full(p, 1.0 / member.beta_sd**2)  # 0 for a flat prior (sd = inf)
    data = (X, y, np.zeros(p), beta_prec, member.sigma_prior, float(member.sigma_scale))

    exact = json.loads((folder / "exact_summary.json").read_text())["params"]
    with np.load(folder / "reference_draws.npz") as ref:
        chains = ref["draws"]
        draws_mcse = ref["mean_mcse"]
    draws = np.ascontiguousarray(chains.reshape(-1, p + 1))
    labels = _coefficient_labels(blocks)
    mean = np.array([exact[label]["mean"] for label in labels] + [draws[:, p].mean()])
    sd = np.array([exact[label]["sd"] for label in labels] + [draws[:, p].std(ddof=1)])
    # exact (quadrature) coefficient means carry no Monte Carlo error
    mean_mcse = np.zeros(p + 1)
    mean_mcse[p] = draws_mcse[p]

    beta_ls, *_ = np.linalg.lstsq(X, y, rcond=None)
    rms = math.sqrt(float(np.sum((y - X @ beta_ls) ** 2)) / n)
    names: dict[str, int | tuple[int, ...]] = {**dict(blocks), "log_sigma": ()}

    def jax_logdensity(z):
        return _linreg_logdensity_jax(z, data)

    return Target(
        dim=p + 1,
        names=names,
        jax={"logdensity": jax_logdensity},
        numba={"value_and_grad": _linreg_value_and_grad},
        data=data,
        initial_position=np.append(beta_ls, math.log(rms)),
        reference=Reference(
            mean=mean,
            sd=sd,
            draws=draws,
            mean_mcse=mean_mcse,
            source=(
                f"posteriordb {name} (snapshot 2025-04-29): coefficient mean/sd by exact "
                "quadrature; log_sigma mean/sd from the Stan reference draws (10 x 1000)"
            ),
            constrained=exact,
        ),
        name=name,
        constrain=_make_constrain(blocks, p),
    )


def earnings_logearn_interaction_z() -> Target:
    """posteriordb ``earnings-logearn_interaction_z``: log earnings on standardised height, sex
    and their interaction (N = 1192), flat priors; 5-D, well conditioned."""
    return posteriordb("earnings-logearn_interaction_z")


def arK() -> Target:
    """posteriordb ``arK-arK``: AR(5) regression (195 rows), Normal(0, 10) priors on the
    coefficients, half-Cauchy(0, 2.5) on σ; 7-D, correlated lags."""
    return posteriordb("arK-arK")


def kidiq_kidscore_momiq() -> Target:
    """posteriordb ``kidiq-kidscore_momiq``: child test score on (uncentred) mother's IQ
    (N = 434), flat β, half-Cauchy(0, 2.5) on σ; 3-D, corr(β₁, β₂) ≈ −0.99."""
    return posteriordb("kidiq-kidscore_momiq")
