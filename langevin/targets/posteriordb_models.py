"""Posteriors from posteriordb, with their reference moments.

Source: posteriordb (Magnusson, Bürkner & Vehtari 2023, "posteriordb: a set of posteriors for
Bayesian inference and probabilistic programming"; BSD 3-Clause), snapshot 2025-04-29. The
files kept under ``data/posteriordb/<name>/`` are described in that folder's README.md; each
``model.md`` states its model, its unconstrained parametrisation with the log-Jacobian, the
log density and its gradient. Every posterior has a Numba value-and-gradient (hand-written,
checked against JAX autodiff in the tests) and a JAX log density.

**The Gaussian linear regressions** (earnings, arK, kidiq ×2, kilpisjarvi, nes, sblrc,
diamonds) share one family (see any of their ``model.md``): with a design matrix
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

``diamonds`` adds a Student-t(ν, m, c) prior on its intercept,
``−(ν+1)/2 · log(1 + (x−m)²/(ν c²))``, and a half-Student-t(ν, 0, c) prior on σ,
``−(ν+1)/2 · log(1 + σ²/(ν c²))`` with ``σ·d/dσ = −(ν+1) σ²/(ν c² + σ²)``
(:func:`_diamonds_value_and_grad`).

**The others** (each function's docstring has its math): ``arma-arma11`` (ARMA(1,1) by the
error recursion, Box & Jenkins 1970), ``eight_schools-eight_schools_centered`` (the centred
hierarchical model of Rubin 1981, a funnel), ``gp_pois_regr-gp_pois_regr`` (a latent GP with
Poisson counts, non-centred ``f = L f̃``; the Cholesky derivative of Murray 2016),
``low_dim_gauss_mix-low_dim_gauss_mix`` (a two-component normal mixture with Stan's
ordered, log and logit transforms).

References: where posteriordb gives near-exact quadrature moments (``exact_summary.json``:
the regression coefficients, and every coordinate of eight_schools including ``log_tau``)
the mean and sd are those, with MCSE 0; every other coordinate's mean and sd come from
posteriordb's Stan reference draws (10 chains × 1000 draws) mapped to the unconstrained
coordinates (``benchmarks/make_posteriordb_data.py``), with MCSE ``sd / √ESS`` (ESS of the
mean, from ArviZ, over the 10 chains). ``Reference.constrained`` holds posteriordb's summary
of the constrained parameters (``beta[1]``, ..., ``sigma``: mean and sd): the exact one where
there is one, else the reference draws' (``reference_summary.json``).
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

__all__ = [
    "posteriordb",
    "POSTERIORDB_NAMES",
    "earnings_logearn_interaction_z",
    "arK",
    "kidiq_kidscore_momiq",
]

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


# -- diamonds: the family plus Student-t priors on the intercept and σ -------------------------


@numba.njit(cache=True)
def _diamonds_value_and_grad(z, data):
    """The regression family (``data[0]``, flat σ prior there) plus a Student-t(ν, m, c) prior
    on coefficient ``k`` and a half-Student-t(ν_σ, 0, c_σ) prior on σ (module docstring).

    ``data = (family_data, k, nu, loc, scale, sigma_nu, sigma_scale)``. With ``σ = e^s``,
    ``log(1 + σ²/(ν c²)) = softplus(2s − log(ν c²))``, whose s-derivative is
    ``2 sigmoid(2s − log(ν c²))``: finite for any s.
    """
    family, k, nu, loc, scale, sigma_nu, sigma_scale = data
    value, grad = _linreg_value_and_grad(z, family)
    dev = z[k] - loc
    q = nu * scale * scale
    value -= 0.5 * (nu + 1.0) * math.log1p(dev * dev / q)
    grad[k] -= (nu + 1.0) * dev / (q + dev * dev)
    p = z.shape[0] - 1
    u = 2.0 * z[p] - math.log(sigma_nu * sigma_scale * sigma_scale)
    value -= 0.5 * (sigma_nu + 1.0) * _softplus(u)
    grad[p] -= (sigma_nu + 1.0) * _sigmoid(u)
    return value, grad


def _diamonds_logdensity_jax(z, data):
    """:func:`_diamonds_value_and_grad`'s log density in JAX, in the dtype of ``z``."""
    import jax.numpy as jnp

    family, k, nu, loc, scale, sigma_nu, sigma_scale = data
    value = _linreg_logdensity_jax(z, family)
    dev = z[k] - loc
    value = value - 0.5 * (nu + 1.0) * jnp.log1p(dev * dev / (nu * scale * scale))
    u = 2.0 * z[-1] - math.log(sigma_nu * sigma_scale * sigma_scale)
    return value - 0.5 * (sigma_nu + 1.0) * jnp.logaddexp(0.0, u)


# -- arma-arma11 ---------------------------------------------------------------------------


@numba.njit(cache=True, error_model="numpy")
def _arma_value_and_grad(z, data):
    """ARMA(1,1) by the error recursion with ``e_0 = 0`` (Box & Jenkins 1970, §7.1; Stan's
    ``arma11`` benchmark), ``z = (μ, φ, θ, s)``, ``σ = e^s``, ``data = (y,)``:

        ν_1 = μ + φ μ,   ν_t = μ + φ y_{t−1} + θ e_{t−1},   e_t = y_t − ν_t,
        log p(z) = −μ²/200 − φ²/8 − θ²/8 − log(1 + σ²/6.25) − T s − Σ e_t²/(2σ²) + s.

    The gradient runs the recursion forward for ``d_t = ∂e_t/∂(μ, φ, θ)``:
    ``d_1 = (−(1+φ), −μ, 0)``, ``d_t = (−1, −y_{t−1}, −e_{t−1}) − θ d_{t−1}``, and
    ``∂/∂(μ,φ,θ) = −Σ e_t d_t / σ² + prior``, ``∂/∂s = −T + Σ e_t²/σ² − 2 sigmoid(2s −
    2 log 2.5) + 1``. For |θ| > 1 the errors grow like |θ|^T; where they overflow the density
    is reported as −inf (a rejection), not an exception.
    """
    (y,) = data
    mu, phi, theta, s = z[0], z[1], z[2], z[3]
    n = y.shape[0]
    inv_var = math.exp(-2.0 * s)
    e = y[0] - (mu + phi * mu)
    d0, d1, d2 = -(1.0 + phi), -mu, 0.0
    sse = e * e
    g0, g1, g2 = e * d0, e * d1, e * d2
    for t in range(1, n):
        # d_t uses e_{t−1} and d_{t−1}: update the derivatives before the error
        d0, d1, d2 = -1.0 - theta * d0, -y[t - 1] - theta * d1, -e - theta * d2
        e = y[t] - (mu + phi * y[t - 1] + theta * e)
        sse += e * e
        g0 += e * d0
        g1 += e * d1
        g2 += e * d2
    grad = np.empty(4)
    if not math.isfinite(sse) or not math.isfinite(g0 + g1 + g2):
        grad[:] = 0.0
        return -np.inf, grad
    u = 2.0 * (s - math.log(2.5))
    value = -mu * mu / 200.0 - phi * phi / 8.0 - theta * theta / 8.0 - _softplus(u)
    value += -n * s - 0.5 * sse * inv_var + s
    grad[0] = -g0 * inv_var - mu / 100.0
    grad[1] = -g1 * inv_var - phi / 4.0
    grad[2] = -g2 * inv_var - theta / 4.0
    grad[3] = -n + sse * inv_var - 2.0 * _sigmoid(u) + 1.0
    return value, grad


def _arma_logdensity_jax(z, data):
    """:func:`_arma_value_and_grad`'s log density in JAX (``lax.scan`` over the errors)."""
    import jax
    import jax.numpy as jnp

    y = jnp.asarray(data[0], dtype=z.dtype)
    mu, phi, theta, s = z[0], z[1], z[2], z[3]
    e1 = y[0] - (mu + phi * mu)

    def step(e_prev, ys):
        y_t, y_prev = ys
        e = y_t - (mu + phi * y_prev + theta * e_prev)
        return e, e * e

    _, sq = jax.lax.scan(step, e1, (y[1:], y[:-1]))
    sse = e1 * e1 + jnp.sum(sq)
    value = -mu * mu / 200.0 - phi * phi / 8.0 - theta * theta / 8.0
    value = value - jnp.logaddexp(0.0, 2.0 * (s - math.log(2.5)))
    return value - y.shape[0] * s - 0.5 * sse * jnp.exp(-2.0 * s) + s


# -- eight_schools-eight_schools_centered --------------------------------------------------


@numba.njit(cache=True)
def _eight_schools_value_and_grad(z, data):
    """The centred eight-schools model (Rubin 1981; Gelman et al. 2013, BDA3 §5.5),
    ``z = (θ_1..θ_J, μ, s)``, ``τ = e^s``, ``data = (y, sd)``:

        log p(z) = −Σ (y_j − θ_j)²/(2 sd_j²) − Σ (θ_j − μ)²/(2τ²) − J s − μ²/50
                   − log(1 + τ²/25) + s,

    ``∂/∂θ_j = (y_j − θ_j)/sd_j² − (θ_j − μ)/τ²``, ``∂/∂μ = Σ (θ_j − μ)/τ² − μ/25``,
    ``∂/∂s = Σ (θ_j − μ)²/τ² − J − 2 sigmoid(2s − 2 log 5) + 1``. A funnel: the curvature
    in θ grows as 1/τ² (Neal 2003; Betancourt & Girolami 2015).
    """
    y, sd = data
    J = y.shape[0]
    mu, s = z[J], z[J + 1]
    inv_tau2 = math.exp(-2.0 * s)
    grad = np.empty(J + 2)
    value = 0.0
    g_mu = 0.0
    ss = 0.0
    for j in range(J):
        r = y[j] - z[j]
        c = z[j] - mu
        value -= 0.5 * r * r / (sd[j] * sd[j])
        ss += c * c
        grad[j] = r / (sd[j] * sd[j]) - c * inv_tau2
        g_mu += c * inv_tau2
    u = 2.0 * (s - math.log(5.0))
    value += -0.5 * ss * inv_tau2 - J * s - mu * mu / 50.0 - _softplus(u) + s
    grad[J] = g_mu - mu / 25.0
    grad[J + 1] = ss * inv_tau2 - J - 2.0 * _sigmoid(u) + 1.0
    return value, grad


def _eight_schools_logdensity_jax(z, data):
    """:func:`_eight_schools_value_and_grad`'s log density in JAX."""
    import jax.numpy as jnp

    y, sd = (jnp.asarray(a, dtype=z.dtype) for a in data)
    J = y.shape[0]
    theta, mu, s = z[:J], z[J], z[J + 1]
    value = -0.5 * jnp.sum(((y - theta) / sd) ** 2)
    value = value - 0.5 * jnp.sum((theta - mu) ** 2) * jnp.exp(-2.0 * s) - J * s
    value = value - mu * mu / 50.0 - jnp.logaddexp(0.0, 2.0 * (s - math.log(5.0)))
    return value + s


# -- gp_pois_regr-gp_pois_regr -------------------------------------------------------------

_GP_JITTER = 1e-10  # Stan's model adds 1e-10 to the diagonal of K


@numba.njit(cache=True, error_model="numpy")
def _gp_pois_value_and_grad(z, data):
    """A latent GP with Poisson counts, non-centred (posteriordb ``gp_pois_regr``):
    ``z = (log ρ, log α, f̃)``, ``f = L f̃``, ``L = chol(K)``,
    ``K_ij = α² exp(−(x_i − x_j)²/(2ρ²)) + 1e-10 δ_ij``, ``data = (x, k)``:

        log p(z) = 24 log ρ − 4ρ − α²/8 − ½|f̃|² + Σ (k_i f_i − e^{f_i}) + log ρ + log α

    (ρ ~ Gamma(25, 4), α ~ half-Normal(0, 2), f̃ ~ N(0, I), log-Jacobian log ρ + log α).
    With ``g = k − e^f``: ``∂/∂f̃ = −f̃ + Lᵀ g``, and for θ ∈ {ρ, α}
    ``∂f/∂θ = dL(∂K/∂θ) f̃`` with the Cholesky derivative ``dL(dK) = L Φ(L⁻¹ dK L⁻ᵀ)``
    (Φ: the lower triangle with the diagonal halved; Murray 2016, "Differentiation of the
    Cholesky decomposition", eq. 10), ``∂K/∂ρ = α² E ⊙ D²/ρ³``, ``∂K/∂α = 2αE``. Where K is
    not positive definite or the density not finite the density is −inf (a rejection).
    """
    x, counts = data
    n = x.shape[0]
    rho, alpha = math.exp(z[0]), math.exp(z[1])
    ft = z[2:]
    grad = np.zeros(n + 2)
    K = np.empty((n, n))
    dK_rho = np.empty((n, n))
    dK_alpha = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            d2 = (x[i] - x[j]) ** 2
            e = math.exp(-d2 / (2.0 * rho * rho))
            K[i, j] = alpha * alpha * e + (_GP_JITTER if i == j else 0.0)
            dK_rho[i, j] = alpha * alpha * e * d2 / (rho * rho * rho)
            dK_alpha[i, j] = 2.0 * alpha * e
    if not np.all(np.isfinite(K)):
        return -np.inf, grad
    # np.linalg.cholesky raises on a matrix that is not positive definite: test the pivots
    # first (an exception would stop the chain)
    L = np.zeros((n, n))
    for j in range(n):
        acc = K[j, j]
        for m in range(j):
            acc -= L[j, m] * L[j, m]
        if not acc > 0.0:
            return -np.inf, grad
        L[j, j] = math.sqrt(acc)
        for i in range(j + 1, n):
            acc = K[i, j]
            for m in range(j):
                acc -= L[i, m] * L[j, m]
            L[i, j] = acc / L[j, j]
    f = L @ ft
    g = counts - np.exp(f)
    value = 24.0 * z[0] - 4.0 * rho - alpha * alpha / 8.0 - 0.5 * np.dot(ft, ft)
    value += np.dot(counts, f) - np.sum(np.exp(f)) + z[0] + z[1]
    if not math.isfinite(value):
        return -np.inf, grad
    grad[2:] = -ft + L.T @ g
    Linv = np.linalg.inv(L)
    for which in range(2):
        dK = dK_rho if which == 0 else dK_alpha
        A = Linv @ dK @ Linv.T
        for i in range(n):
            A[i, i] *= 0.5
            for j in range(i + 1, n):
                A[i, j] = 0.0
        df = L @ (A @ ft)
        if which == 0:
            grad[0] = rho * (np.dot(g, df) + 24.0 / rho - 4.0) + 1.0
        else:
            grad[1] = alpha * (np.dot(g, df) - alpha / 4.0) + 1.0
    return value, grad


def _gp_pois_logdensity_jax(z, data):
    """:func:`_gp_pois_value_and_grad`'s log density in JAX (autodiff through the Cholesky
    factor). K's condition number reaches 1e6–1e10 over the posterior: float64 is needed
    (model.md): in float32 the Cholesky factor is NaN, so a float32 ``z`` is refused here, at
    trace time, rather than left to stop every chain."""
    import jax.numpy as jnp

    if z.dtype != jnp.float64:
        raise TypeError(
            "gp_pois_regr-gp_pois_regr needs float64 on JAX (its kernel matrix has condition "
            "number up to 1e10; the float32 Cholesky factor is NaN): switch JAX's x64 on "
            f"(jax.config.update('jax_enable_x64', True)); got a position of dtype {z.dtype}"
        )
    x, counts = (jnp.asarray(a, dtype=z.dtype) for a in data)
    rho, alpha = jnp.exp(z[0]), jnp.exp(z[1])
    ft = z[2:]
    d2 = (x[:, None] - x[None, :]) ** 2
    K = alpha**2 * jnp.exp(-d2 / (2.0 * rho**2)) + _GP_JITTER * jnp.eye(x.shape[0], dtype=z.dtype)
    f = jnp.linalg.cholesky(K) @ ft
    value = 24.0 * z[0] - 4.0 * rho - alpha**2 / 8.0 - 0.5 * jnp.dot(ft, ft)
    return value + jnp.dot(counts, f) - jnp.sum(jnp.exp(f)) + z[0] + z[1]


# -- low_dim_gauss_mix-low_dim_gauss_mix ---------------------------------------------------


@numba.njit(cache=True, error_model="numpy")
def _mix_value_and_grad(z, data):
    """Two-component normal mixture, ``y_n ~ θ N(μ_1, σ_1) + (1−θ) N(μ_2, σ_2)``, μ ordered,
    priors μ_k ~ N(0, 2), σ_k ~ half-N(0, 2), θ ~ Beta(5, 5); Stan's transforms
    ``z = (u_1, u_2, v_1, v_2, w)``: ``μ_1 = u_1``, ``μ_2 = u_1 + e^{u_2}``, ``σ_k = e^{v_k}``,
    ``θ = logistic(w)``, ``log|J| = u_2 + v_1 + v_2 + log θ + log(1−θ)``; ``data = (y,)``.
    With ``a_n = log θ − log σ_1 − (y_n−μ_1)²/(2σ_1²)``, ``b_n`` likewise for component 2:

        log p(z) = Σ logsumexp(a_n, b_n) − (μ_1² + μ_2²)/8 − (σ_1² + σ_2²)/8
                   + 4 log θ + 4 log(1−θ) + log|J|.

    The gradient uses the responsibilities ``r_n = exp(a_n − logsumexp(a_n, b_n))`` (the
    E-step weights of Dempster, Laird & Rubin 1977), chained through the transforms. Far out
    (σ_k = e^{v_k} under- or overflowing, as a warm-up trajectory can reach) the density is
    −inf (a rejection), not an exception or NaN.
    """
    (y,) = data
    u1, u2, v1, v2, w = z[0], z[1], z[2], z[3], z[4]
    mu1 = u1
    gap = math.exp(u2)
    mu2 = u1 + gap
    s1, s2 = math.exp(v1), math.exp(v2)
    log_t = -_softplus(-w)  # log θ
    log_1mt = -_softplus(w)  # log(1 − θ)
    theta = _sigmoid(w)
    value = 0.0
    g_mu1 = g_mu2 = g_s1 = g_s2 = g_t = 0.0
    for n in range(y.shape[0]):
        r1 = (y[n] - mu1) / s1
        r2 = (y[n] - mu2) / s2
        a = log_t - v1 - 0.5 * r1 * r1
        b = log_1mt - v2 - 0.5 * r2 * r2
        m = max(a, b)
        lse = m + math.log(math.exp(a - m) + math.exp(b - m))
        value += lse
        resp = math.exp(a - lse)
        g_mu1 += resp * r1 / s1
        g_mu2 += (1.0 - resp) * r2 / s2
        g_s1 += resp * (r1 * r1 - 1.0)  # σ_1 · ∂/∂σ_1
        g_s2 += (1.0 - resp) * (r2 * r2 - 1.0)
        g_t += resp  # θ(1−θ) · (r/θ − (1−r)/(1−θ)) = r − θ
    n_obs = y.shape[0]
    value += -(mu1 * mu1 + mu2 * mu2) / 8.0 - (s1 * s1 + s2 * s2) / 8.0
    value += 5.0 * log_t + 5.0 * log_1mt + u2 + v1 + v2
    g_mu1 -= mu1 / 4.0
    g_mu2 -= mu2 / 4.0
    grad = np.empty(5)
    grad[0] = g_mu1 + g_mu2
    grad[1] = g_mu2 * gap + 1.0
    grad[2] = g_s1 - s1 * s1 / 4.0 + 1.0
    grad[3] = g_s2 - s2 * s2 / 4.0 + 1.0
    # Σ(r_n − θ) from the likelihood, 4(1−θ) − 4θ from the prior, 1 − 2θ from the Jacobian
    grad[4] = (g_t - n_obs * theta) + 5.0 * (1.0 - 2.0 * theta)
    if not (math.isfinite(value) and np.all(np.isfinite(grad))):
        grad[:] = 0.0
        return -np.inf, grad
    return value, grad


def _mix_logdensity_jax(z, data):
    """:func:`_mix_value_and_grad`'s log density in JAX."""
    import jax
    import jax.numpy as jnp

    y = jnp.asarray(data[0], dtype=z.dtype)
    u1, u2, v1, v2, w = z[0], z[1], z[2], z[3], z[4]
    mu1, mu2 = u1, u1 + jnp.exp(u2)
    s1, s2 = jnp.exp(v1), jnp.exp(v2)
    log_t, log_1mt = jax.nn.log_sigmoid(w), jax.nn.log_sigmoid(-w)
    a = log_t - v1 - 0.5 * ((y - mu1) / s1) ** 2
    b = log_1mt - v2 - 0.5 * ((y - mu2) / s2) ** 2
    value = jnp.sum(jnp.logaddexp(a, b)) - (mu1**2 + mu2**2) / 8.0 - (s1**2 + s2**2) / 8.0
    return value + 5.0 * log_t + 5.0 * log_1mt + u2 + v1 + v2


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


def _kidiq_interaction(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """X = [1, mom_hs, mom_iq, mom_hs·mom_iq] (uncentred), y = kid_score."""
    hs = np.asarray(data["mom_hs"], dtype=np.float64)
    iq = np.asarray(data["mom_iq"], dtype=np.float64)
    X = np.column_stack([np.ones_like(iq), hs, iq, hs * iq])
    return X, np.asarray(data["kid_score"], dtype=np.float64)


def _kilpisjarvi(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """X = [1, x] with x the uncentred year (≈ 4000), y = temperature."""
    x = np.asarray(data["x"], dtype=np.float64)
    return np.column_stack([np.ones_like(x), x]), np.asarray(data["y"], dtype=np.float64)


def _nes(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """X = [1, real_ideo, race_adj, age30_44, age45_64, age65up, educ1, gender, income],
    the age indicators from ``age_discrete`` = 2, 3, 4; y = partyid7."""
    col = {k: np.asarray(v, dtype=np.float64) for k, v in data.items() if isinstance(v, list)}
    age = col["age_discrete"]
    X = np.column_stack(
        [np.ones_like(age), col["real_ideo"], col["race_adj"], age == 2, age == 3, age == 4,
         col["educ1"], col["gender"], col["income"]]
    )  # fmt: skip
    return X.astype(np.float64), col["partyid7"]


def _sblrc(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """X as given (100 × 5, no intercept), y."""
    return np.asarray(data["X"], dtype=np.float64), np.asarray(data["y"], dtype=np.float64)


def _diamonds(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """X* = [Xc, 1]: columns 2..25 of X centred by their means, then the intercept; y = Y."""
    X = np.asarray(data["X"], dtype=np.float64)
    Xc = X[:, 1:] - X[:, 1:].mean(axis=0)
    return np.column_stack([Xc, np.ones(X.shape[0])]), np.asarray(data["Y"], dtype=np.float64)


def _kilpisjarvi_prior(data: dict, p: int) -> tuple[np.ndarray, np.ndarray]:
    """α ~ N(pmualpha, psalpha), β ~ N(pmubeta, psbeta), as the data file gives them."""
    loc = np.array([data["pmualpha"], data["pmubeta"]], dtype=np.float64)
    sd = np.array([data["psalpha"], data["psbeta"]], dtype=np.float64)
    return loc, 1.0 / sd**2


def _diamonds_prior(data: dict, p: int) -> tuple[np.ndarray, np.ndarray]:
    """b_k ~ N(0, 1) on the 24 slopes; the intercept's Student-t is added separately."""
    prec = np.ones(p)
    prec[-1] = 0.0
    return np.zeros(p), prec


class _Member(NamedTuple):
    """One posterior of the family: how its data.json becomes (X, y), and its priors."""

    design: Callable[[dict], tuple[np.ndarray, np.ndarray]]
    # coefficient blocks: posteriordb's name and the shape (() for a scalar, n for a vector)
    blocks: tuple[tuple[str, int | tuple[()]], ...]
    beta_sd: float  # sd of the Normal(0, sd) prior on every coefficient; inf = flat
    sigma_prior: int  # a _SIGMA_* code
    sigma_scale: float
    # (data, p) -> (loc, precision) of Normal priors on the coefficients, overriding beta_sd
    beta_prior: Callable[[dict, int], tuple[np.ndarray, np.ndarray]] | None = None


_MEMBERS = {
    "earnings-logearn_interaction_z": _Member(
        _earnings, (("beta", 4),), math.inf, _SIGMA_FLAT, 0.0
    ),
    "arK-arK": _Member(_ark, (("alpha", ()), ("beta", 5)), 10.0, _SIGMA_HALF_CAUCHY, 2.5),
    "kidiq-kidscore_momiq": _Member(_kidiq, (("beta", 2),), math.inf, _SIGMA_HALF_CAUCHY, 2.5),
    "kidiq-kidscore_interaction": _Member(
        _kidiq_interaction, (("beta", 4),), math.inf, _SIGMA_HALF_CAUCHY, 2.5
    ),
    "kilpisjarvi_mod-kilpisjarvi": _Member(
        _kilpisjarvi,
        (("alpha", ()), ("beta", ())),
        math.inf,
        _SIGMA_FLAT,
        0.0,
        _kilpisjarvi_prior,
    ),
    "nes1972-nes": _Member(_nes, (("beta", 9),), math.inf, _SIGMA_FLAT, 0.0),
    "sblrc-blr": _Member(_sblrc, (("beta", 5),), 10.0, _SIGMA_HALF_NORMAL, 10.0),
    # σ's half-Student-t and the intercept's Student-t: _diamonds_value_and_grad
    "diamonds-diamonds": _Member(
        _diamonds, (("b", 24), ("Intercept", ())), math.inf, _SIGMA_FLAT, 0.0, _diamonds_prior
    ),
}
# diamonds' Student-t priors (brms defaults): Intercept ~ t(3, 8, 10), σ ~ half-t(3, 0, 10)
_DIAMONDS_T = (3.0, 8.0, 10.0, 3.0, 10.0)

_OTHERS = (
    "arma-arma11",
    "eight_schools-eight_schools_centered",
    "gp_pois_regr-gp_pois_regr",
    "low_dim_gauss_mix-low_dim_gauss_mix",
)
#: Every posteriordb posterior :func:`posteriordb` builds (all have reference draws).
POSTERIORDB_NAMES: tuple[str, ...] = tuple(sorted([*_MEMBERS, *_OTHERS, "gp_pois_regr-gp_regr"]))


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


def _reference(name: str, labels: list[str], what: str) -> Reference:
    """The reference of the unconstrained coordinates labelled ``labels`` (posteriordb's
    names, e.g. ``beta[1]``, ``log_tau``): the exact quadrature mean and sd where
    ``exact_summary.json`` has the label (MCSE 0), else the Stan reference draws' (module
    docstring)."""
    folder = _DATA_DIR / name
    exact_file = folder / "exact_summary.json"
    exact = json.loads(exact_file.read_text())["params"] if exact_file.is_file() else {}
    exact = {k: v for k, v in exact.items() if isinstance(v, dict) and "mean" in v}
    with np.load(folder / "reference_draws.npz") as ref:
        chains = ref["draws"]
        draws_mcse = ref["mean_mcse"]
    dim = chains.shape[-1]
    draws = np.ascontiguousarray(chains.reshape(-1, dim))
    mean, sd = draws.mean(0), draws.std(0, ddof=1)
    mean_mcse = np.array(draws_mcse, dtype=np.float64)
    for i, label in enumerate(labels):
        if label in exact:
            mean[i], sd[i], mean_mcse[i] = exact[label]["mean"], exact[label]["sd"], 0.0
    n_exact = sum(label in exact for label in labels)
    constrained = exact
    if not constrained:
        summary = json.loads((folder / "reference_summary.json").read_text())["params"]
        constrained = {k: {"mean": v["mean"], "sd": v["sd"]} for k, v in summary.items()}
    how = (
        f"{n_exact} of {dim} coordinates' mean/sd by exact quadrature, the rest from the Stan "
        "reference draws (10 x 1000)"
        if n_exact
        else "mean/sd from the Stan reference draws (10 x 1000)"
    )
    return Reference(
        mean=mean,
        sd=sd,
        draws=draws,
        mean_mcse=mean_mcse,
        source=f"posteriordb {name} (snapshot 2025-04-29), {what}: {how}",
        constrained=constrained,
    )


def _mode(value_and_grad: Callable, data: tuple, start: np.ndarray) -> np.ndarray:
    """A local maximum of the log density from ``start`` (SciPy's L-BFGS-B), for a start near
    the bulk of the posterior; ``start`` itself where the search fails."""
    from scipy.optimize import minimize

    def objective(x):
        value, grad = value_and_grad(np.ascontiguousarray(x), data)
        if not np.isfinite(value):
            return 1e300, np.zeros_like(x)
        return -value, -grad

    result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    x = np.asarray(result.x, dtype=np.float64)
    return x if np.isfinite(objective(x)[0]) and objective(x)[0] < 1e300 else start


def _linreg_member(name: str) -> Target:
    member = _MEMBERS[name]
    blocks = member.blocks
    raw = json.loads((_DATA_DIR / name / "data.json").read_text())
    X, y = member.design(raw)
    X, y = np.ascontiguousarray(X), np.ascontiguousarray(y)
    n, p = X.shape
    if member.beta_prior is None:
        beta_loc, beta_prec = np.zeros(p), np.full(p, 1.0 / member.beta_sd**2)  # 0: flat
    else:
        beta_loc, beta_prec = member.beta_prior(raw, p)
    data = (X, y, beta_loc, beta_prec, member.sigma_prior, float(member.sigma_scale))
    numba_vg: Callable = _linreg_value_and_grad

    def jax_logdensity(z):
        return _linreg_logdensity_jax(z, data)

    if name == "diamonds-diamonds":
        data = (data, p - 1, *_DIAMONDS_T)
        numba_vg = _diamonds_value_and_grad

        def jax_logdensity(z):
            return _diamonds_logdensity_jax(z, data)

    labels = _coefficient_labels(blocks)
    reference = _reference(name, [*labels, "log_sigma"], "Gaussian linear regression")
    beta_ls, *_ = np.linalg.lstsq(X, y, rcond=None)
    rms = math.sqrt(float(np.sum((y - X @ beta_ls) ** 2)) / n)
    names: dict[str, int | tuple[int, ...]] = {**dict(blocks), "log_sigma": ()}
    return Target(
        dim=p + 1,
        names=names,
        jax={"logdensity": jax_logdensity},
        numba={"value_and_grad": numba_vg},
        data=data,
        initial_position=np.append(beta_ls, math.log(rms)),
        reference=reference,
        name=name,
        constrain=_make_constrain(blocks, p),
    )


def _check_dim(x: np.ndarray, dim: int) -> np.ndarray:
    x = np.asarray(x)
    if x.shape[-1] != dim:
        raise ValueError(f"x must have last axis of length {dim}; got shape {x.shape}")
    return x


def _arma() -> Target:
    name = "arma-arma11"
    y = np.asarray(json.loads((_DATA_DIR / name / "data.json").read_text())["y"], dtype=float)
    data = (np.ascontiguousarray(y),)
    # the start: the mode from the AR(1) least-squares fit with θ = 0
    A = np.column_stack([np.ones(len(y) - 1), y[:-1]])
    (c, phi), *_ = np.linalg.lstsq(A, y[1:], rcond=None)
    resid = y[1:] - A @ np.array([c, phi])
    start = np.array([c / (1.0 - phi) if abs(1.0 - phi) > 1e-3 else 0.0, phi, 0.0,
                      math.log(float(resid.std()))])  # fmt: skip
    start = _mode(_arma_value_and_grad, data, start)

    def constrain(x: np.ndarray) -> dict[str, np.ndarray]:
        """(μ, φ, θ, log σ) to posteriordb's ``mu``, ``phi``, ``theta``, ``sigma``."""
        x = _check_dim(x, 4)
        return {"mu": x[..., 0], "phi": x[..., 1], "theta": x[..., 2], "sigma": np.exp(x[..., 3])}

    return Target(
        dim=4,
        names={"mu": (), "phi": (), "theta": (), "log_sigma": ()},
        jax={"logdensity": lambda z: _arma_logdensity_jax(z, data)},
        numba={"value_and_grad": _arma_value_and_grad},
        data=data,
        initial_position=start,
        reference=_reference(name, ["mu", "phi", "theta", "log_sigma"], "ARMA(1,1)"),
        name=name,
        constrain=constrain,
    )


def _eight_schools() -> Target:
    name = "eight_schools-eight_schools_centered"
    raw = json.loads((_DATA_DIR / name / "data.json").read_text())
    y = np.asarray(raw["y"], dtype=np.float64)
    sd = np.asarray(raw["sigma"], dtype=np.float64)
    data = (y, sd)
    J = len(y)
    # the start: complete pooling (the precision-weighted mean) with τ = 1. The log density
    # has no maximum (it grows without bound down the funnel's neck), so no mode search.
    pooled = float(np.sum(y / sd**2) / np.sum(1.0 / sd**2))
    start = np.concatenate([np.full(J, pooled), [pooled, 0.0]])

    def constrain(x: np.ndarray) -> dict[str, np.ndarray]:
        """(θ, μ, log τ) to posteriordb's ``theta``, ``mu``, ``tau``."""
        x = _check_dim(x, J + 2)
        return {"theta": x[..., :J], "mu": x[..., J], "tau": np.exp(x[..., J + 1])}

    labels = [f"theta[{j}]" for j in range(1, J + 1)] + ["mu", "log_tau"]
    return Target(
        dim=J + 2,
        names={"theta": J, "mu": (), "log_tau": ()},
        jax={"logdensity": lambda z: _eight_schools_logdensity_jax(z, data)},
        numba={"value_and_grad": _eight_schools_value_and_grad},
        data=data,
        initial_position=start,
        reference=_reference(name, labels, "centred hierarchical normal (funnel)"),
        name=name,
        constrain=constrain,
    )


def _gp_pois() -> Target:
    name = "gp_pois_regr-gp_pois_regr"
    raw = json.loads((_DATA_DIR / name / "data.json").read_text())
    x = np.asarray(raw["x"], dtype=np.float64)
    counts = np.asarray(raw["k"], dtype=np.float64)
    data = (x, counts)
    n = len(x)
    # the start: ρ at its prior mean 25/4, α = 1, f̃ = 0, then the mode
    start = _mode(_gp_pois_value_and_grad, data, np.concatenate([[math.log(6.25), 0.0],
                                                                  np.zeros(n)]))  # fmt: skip
    d2 = (x[:, None] - x[None, :]) ** 2

    def constrain(z: np.ndarray) -> dict[str, np.ndarray]:
        """(log ρ, log α, f̃) to posteriordb's ``rho``, ``alpha`` and ``f = L(ρ, α) f̃``."""
        z = _check_dim(z, n + 2)
        rho, alpha = np.exp(z[..., 0]), np.exp(z[..., 1])
        K = alpha[..., None, None] ** 2 * np.exp(-d2 / (2.0 * rho[..., None, None] ** 2))
        L = np.linalg.cholesky(K + _GP_JITTER * np.eye(n))
        return {"rho": rho, "alpha": alpha, "f": np.einsum("...ij,...j->...i", L, z[..., 2:])}

    labels = ["log_rho", "log_alpha"] + [f"f_tilde[{i}]" for i in range(1, n + 1)]
    return Target(
        dim=n + 2,
        names={"log_rho": (), "log_alpha": (), "f_tilde": n},
        jax={"logdensity": lambda z: _gp_pois_logdensity_jax(z, data)},
        numba={"value_and_grad": _gp_pois_value_and_grad},
        data=data,
        initial_position=start,
        reference=_reference(name, labels, "latent GP, Poisson counts (non-centred)"),
        name=name,
        constrain=constrain,
    )


def _gauss_mix() -> Target:
    name = "low_dim_gauss_mix-low_dim_gauss_mix"
    y = np.asarray(json.loads((_DATA_DIR / name / "data.json").read_text())["y"], dtype=float)
    data = (np.ascontiguousarray(y),)
    # the start: the lower and upper quartiles as the means, unit sds, θ = ½; then the mode
    q1, q3 = np.quantile(y, [0.25, 0.75])
    start = _mode(_mix_value_and_grad, data, np.array([q1, math.log(q3 - q1), 0.0, 0.0, 0.0]))

    def constrain(x: np.ndarray) -> dict[str, np.ndarray]:
        """(μ_1, log(μ_2 − μ_1), log σ_1, log σ_2, logit θ) to ``mu``, ``sigma``, ``theta``."""
        x = _check_dim(x, 5)
        mu = np.stack([x[..., 0], x[..., 0] + np.exp(x[..., 1])], axis=-1)
        return {"mu": mu, "sigma": np.exp(x[..., 2:4]), "theta": 1.0 / (1.0 + np.exp(-x[..., 4]))}

    return Target(
        dim=5,
        names={"mu1": (), "log_mu_gap": (), "log_sigma": 2, "logit_theta": ()},
        jax={"logdensity": lambda z: _mix_logdensity_jax(z, data)},
        numba={"value_and_grad": _mix_value_and_grad},
        data=data,
        initial_position=start,
        reference=_reference(
            name,
            ["mu1", "log_gap", "log_sigma1", "log_sigma2", "logit_theta"],
            "two-component normal mixture",
        ),
        name=name,
        constrain=constrain,
    )


_BUILDERS: dict[str, Callable[[], Target]] = {
    "arma-arma11": _arma,
    "eight_schools-eight_schools_centered": _eight_schools,
    "gp_pois_regr-gp_pois_regr": _gp_pois,
    "low_dim_gauss_mix-low_dim_gauss_mix": _gauss_mix,
}


def posteriordb(name: str) -> Target:
    """A posteriordb posterior by its name (``<data>-<model>``), as a :class:`Target`.

    Available (:data:`POSTERIORDB_NAMES`; dimension in brackets):

    * Gaussian linear regressions (module docstring): ``earnings-logearn_interaction_z`` (5),
      ``arK-arK`` (7), ``kidiq-kidscore_momiq`` (3), ``kidiq-kidscore_interaction`` (5),
      ``kilpisjarvi_mod-kilpisjarvi`` (3), ``nes1972-nes`` (10), ``sblrc-blr`` (6),
      ``diamonds-diamonds`` (26). Position: the coefficients, then ``log_sigma``; the start is
      the least-squares fit with ``σ`` the residual root-mean-square, near the mode.
    * ``arma-arma11`` (4: ``mu``, ``phi``, ``theta``, ``log_sigma``),
      ``eight_schools-eight_schools_centered`` (10: ``theta``, ``mu``, ``log_tau``),
      ``gp_pois_regr-gp_pois_regr`` (13: ``log_rho``, ``log_alpha``, ``f_tilde``),
      ``low_dim_gauss_mix-low_dim_gauss_mix`` (5: ``mu1``, ``log_mu_gap``, ``log_sigma``,
      ``logit_theta``), and ``gp_pois_regr-gp_regr`` (3, :mod:`.gp_regression`). Starts: the
      mode found by L-BFGS (eight_schools, which has none: complete pooling, τ = 1).

    ``target.constrain(x)`` maps positions ``(..., dim)`` to posteriordb's parameters.
    posteriordb's ``garch-garch11`` and ``mesquite-logmesquite`` have no reference draws and
    are not here.

    Raises:
        ValueError: an unknown ``name``.
    """
    if name == "gp_pois_regr-gp_regr":
        from .gp_regression import gp_pois_regr_gp_regr

        return gp_pois_regr_gp_regr()
    if name in _BUILDERS:
        return _BUILDERS[name]()
    if name not in _MEMBERS:
        raise ValueError(f"name must be one of {list(POSTERIORDB_NAMES)}; got {name!r}")
    return _linreg_member(name)


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
