"""Step-size adaptation by dual averaging (Nesterov 2009; Hoffman & Gelman 2014, §3.2.1).

Warm-up drives the mean acceptance statistic ᾱ toward a target δ. With iteration t,

    H̄_t   = (1 − 1/(t + t₀)) H̄_{t−1} + (δ − α_t) / (t + t₀)
    log h_t = μ − √t / γ · H̄_t
    log h̄_t = t^{−κ} log h_t + (1 − t^{−κ}) log h̄_{t−1}

with μ = log(10 h₀). Sampling uses the averaged h̄ at the end of warm-up. Defaults are
Stan's: γ = 0.05, t₀ = 10, κ = 0.75.

Portable: the update runs inside the compiled chain loops of both backends, once per step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from langevin.backends.portable import portable
from langevin.kernels.base import Scalar

__all__ = [
    "DualAveragingState",
    "DualAveragingParams",
    "dual_averaging_init",
    "dual_averaging_update",
]

xp: Any = None


class DualAveragingState(NamedTuple):
    log_step: Scalar
    log_step_avg: Scalar
    error_avg: Scalar
    count: Scalar
    mu: Scalar


class DualAveragingParams(NamedTuple):
    target: Scalar
    gamma: Scalar
    t0: Scalar
    kappa: Scalar


def dual_averaging_init(step_size: float) -> DualAveragingState:
    """The state before the first warm-up step, for initial step size ``step_size``."""
    import math

    log_h = math.log(step_size)
    return DualAveragingState(log_h, log_h, 0.0, 0.0, math.log(10.0) + log_h)


@portable
def dual_averaging_update(state, acceptance, params):
    """One dual-averaging step after a move with acceptance statistic ``acceptance``."""
    acceptance = xp.select(xp.isfinite(acceptance), acceptance, 0.0)
    count = state.count + 1.0
    eta = 1.0 / (count + params.t0)
    error_avg = (1.0 - eta) * state.error_avg + eta * (params.target - acceptance)
    log_step = state.mu - xp.sqrt(count) / params.gamma * error_avg
    weight = count ** (-params.kappa)
    log_step_avg = weight * log_step + (1.0 - weight) * state.log_step_avg
    return DualAveragingState(log_step, log_step_avg, error_avg, count, state.mu)
