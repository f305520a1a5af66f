"""posteriordb ``gp_pois_regr-gp_regr``: Gaussian-process regression over 3 hyper-parameters.

Source: posteriordb (Magnusson, Bürkner & Vehtari 2023; BSD 3-Clause), snapshot 2025-04-29;
the model as ``data/posteriordb/gp_pois_regr-gp_regr/model.md`` states it.

Data: N = 11 points x = (−10, −8, …, 10) with responses y. Parameters ρ, α, σ > 0 with priors
ρ ~ Gamma(25, 4), α ~ half-Normal(0, 2), σ ~ half-Normal(0, 1), and

    y ~ MVN(0, K),   K = α² E + σ I,   E_ij = exp(−(x_i − x_j)² / (2ρ²)).

(posteriordb's model adds σ, not σ², to the diagonal; this is reproduced exactly.) The
position is z = (log ρ, log α, log σ) with log-Jacobian log ρ + log α + log σ:

    log p(z) = −½ yᵀK⁻¹y − ½ log|K| + 24 log ρ − 4ρ − α²/8 − σ²/2 + log ρ + log α + log σ.

Gradient: with a = K⁻¹y and W = a aᵀ − K⁻¹, ∂/∂θ of the likelihood is ½ tr(W ∂K/∂θ), with
∂K/∂ρ = α² E ⊙ D² / ρ³ (D² the squared distances), ∂K/∂α = 2αE, ∂K/∂σ = I; then
∂/∂log θ = θ ∂/∂θ + 1.

Reference: the unconstrained means from posteriordb's Stan draws (10 × 1000) with their
MCSE; ``Reference.constrained`` holds posteriordb's near-exact moments of ρ, α, σ (3-D
tensor-grid quadrature). Nearly independent, mildly skewed coordinates (cond ≈ 2.9).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numba
import numpy as np

from .base import Reference, Target

__all__ = ["gp_pois_regr_gp_regr"]

_FOLDER = Path(__file__).parent / "data" / "posteriordb" / "gp_pois_regr-gp_regr"


@numba.njit(cache=True, error_model="numpy")
def _gp_value_and_grad(z, data):
    """Log density and gradient in z = (log ρ, log α, log σ); ``data = (x, y)``."""
    x, y = data
    rho, alpha, sigma = math.exp(z[0]), math.exp(z[1]), math.exp(z[2])
    n = x.shape[0]
    e = np.empty((n, n))
    d2 = np.empty((n, n))
    k = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            dd = (x[i] - x[j]) ** 2
            d2[i, j] = dd
            e[i, j] = math.exp(-dd / (2.0 * rho * rho))
            k[i, j] = alpha * alpha * e[i, j] + (sigma if i == j else 0.0)
    # Far in the tails (an HMC warm-up trajectory can get there) K is not finite or not
    # positive definite: report density 0, so the proposal is rejected, rather than raise
    # inside the chain loop (the JAX form gives NaN there, with the same effect).
    if not np.all(np.isfinite(k)):
        return -np.inf, np.zeros(3)
    try:
        chol = np.linalg.cholesky(k)
    except Exception:
        return -np.inf, np.zeros(3)
    k_inv = np.linalg.inv(k)
    a = np.dot(k_inv, y)
    logdet = 0.0
    for i in range(n):
        logdet += 2.0 * math.log(chol[i, i])
    value = (
        -0.5 * np.dot(y, a) - 0.5 * logdet
        + 24.0 * math.log(rho) - 4.0 * rho - alpha * alpha / 8.0 - sigma * sigma / 2.0
        + z[0] + z[1] + z[2]
    )  # fmt: skip
    t_rho = 0.0
    t_alpha = 0.0
    t_sigma = 0.0
    for i in range(n):
        for j in range(n):
            w = a[i] * a[j] - k_inv[i, j]
            t_rho += w * alpha * alpha * e[i, j] * d2[i, j] / rho**3
            t_alpha += w * 2.0 * alpha * e[i, j]
            if i == j:
                t_sigma += w
    grad = np.empty(3)
    grad[0] = rho * (0.5 * t_rho + 24.0 / rho - 4.0) + 1.0
    grad[1] = alpha * (0.5 * t_alpha - alpha / 4.0) + 1.0
    grad[2] = sigma * (0.5 * t_sigma - sigma) + 1.0
    return value, grad


def _gp_jax(x: np.ndarray, y: np.ndarray):
    def logdensity(z):
        import jax.numpy as jnp
        import jax.scipy.linalg as jsl

        xs = jnp.asarray(x, z.dtype)
        ys = jnp.asarray(y, z.dtype)
        rho, alpha, sigma = jnp.exp(z[0]), jnp.exp(z[1]), jnp.exp(z[2])
        d2 = (xs[:, None] - xs[None, :]) ** 2
        k = alpha**2 * jnp.exp(-d2 / (2.0 * rho**2)) + sigma * jnp.eye(xs.shape[0], dtype=z.dtype)
        chol = jnp.linalg.cholesky(k)
        a = jsl.cho_solve((chol, True), ys)
        logdet = 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))
        return (
            -0.5 * ys @ a - 0.5 * logdet + 24.0 * jnp.log(rho) - 4.0 * rho - alpha**2 / 8.0
            - sigma**2 / 2.0 + jnp.sum(z)
        )  # fmt: skip

    return logdensity


def gp_pois_regr_gp_regr() -> Target:
    """posteriordb ``gp_pois_regr-gp_regr``: GP regression hyper-parameters (module docstring).

    Position ``(log_rho, log_alpha, log_sigma)``; ``target.constrain`` maps it to
    ``rho``, ``alpha``, ``sigma``.
    """
    data = json.loads((_FOLDER / "data.json").read_text())
    x = np.ascontiguousarray(data["x"], dtype=np.float64)
    y = np.ascontiguousarray(data["y"], dtype=np.float64)
    exact = json.loads((_FOLDER / "exact_summary.json").read_text())["params"]
    with np.load(_FOLDER / "reference_draws.npz") as ref:
        chains, mcse = ref["draws"], ref["mean_mcse"]
    draws = np.ascontiguousarray(chains.reshape(-1, 3))

    def constrain(z: np.ndarray) -> dict[str, np.ndarray]:
        z = np.asarray(z)
        return {"rho": np.exp(z[..., 0]), "alpha": np.exp(z[..., 1]), "sigma": np.exp(z[..., 2])}

    return Target(
        dim=3,
        names={"log_rho": (), "log_alpha": (), "log_sigma": ()},
        jax={"logdensity": _gp_jax(x, y)},
        numba={"value_and_grad": _gp_value_and_grad},
        data=(x, y),
        initial_position=np.log([6.0, 2.0, 1.5]),
        reference=Reference(
            mean=draws.mean(0),
            sd=draws.std(0, ddof=1),
            draws=draws,
            mean_mcse=mcse,
            source=(
                "posteriordb gp_pois_regr-gp_regr (snapshot 2025-04-29): unconstrained "
                "moments from the Stan reference draws (10 x 1000); constrained: 3-D quadrature"
            ),
            constrained=exact,
        ),
        name="gp_pois_regr-gp_regr",
        constrain=constrain,
    )
