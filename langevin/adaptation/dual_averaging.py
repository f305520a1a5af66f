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

import math
from typing import Any, NamedTuple

import numpy as np

from langevin.adaptation.base import StepSizeAdaptation
from langevin.backends.portable import portable
from langevin.spec import Scalar

__all__ = [
    "DualAveraging",
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


@portable
def dual_averaging_step(state, info, params):
    """The in-loop update: dual averaging on the step's acceptance statistic."""
    return dual_averaging_update(state, info.acceptance_rate, params)


@portable
def dual_averaging_step_size(state):
    """The step size the next step uses during warm-up."""
    return xp.exp(state.log_step)


class DualAveraging(StepSizeAdaptation):
    """Step size by dual averaging toward the kernel's ``target_acceptance`` (module docstring).

    After warm-up each chain samples with its averaged step size ``h̄``. When a between-chunk
    component changes the metric (HMC's mass matrix), :meth:`rescale` moves the step size with
    it and restarts the averaging, as Stan does.
    """

    State = DualAveragingState
    Params = DualAveragingParams
    update_math = staticmethod(dual_averaging_step)
    step_size_math = staticmethod(dual_averaging_step_size)

    def initial_state(self, step_sizes: np.ndarray) -> DualAveragingState:
        rows = [dual_averaging_init(float(h)) for h in np.asarray(step_sizes, float)]
        return DualAveragingState(*(np.array([r[i] for r in rows]) for i in range(5)))

    def params(self) -> DualAveragingParams:
        return DualAveragingParams(self.target_acceptance or 0.8, 0.05, 10.0, 0.75)

    def final_step_size(self, state: DualAveragingState) -> np.ndarray:
        return np.exp(np.asarray(state.log_step_avg, dtype=float))

    def rescale(self, state: DualAveragingState, log_factor: np.ndarray,
                steps_left: int) -> DualAveragingState:  # fmt: skip
        """Each chain's adaptation after its metric changed by a factor ``f = exp(log_factor)``
        in the step size (see ``DiagonalMassMatrix.update``).

        Then, as Stan does, dual averaging restarts from ``h̄·f`` (μ = log(10 h̄ f)) — when at
        least ``t₀`` (= 10) warm-up steps remain: its first iterates overshoot by design (up to
        ~14× at μ) and need about ``t₀`` steps to settle, so with fewer steps left (warm-ups
        under 100 steps, where Stan's buffers are 10% of the warm-up) the running adaptation
        is only shifted by ``log f`` instead.
        """
        restart = steps_left >= self.params().t0
        rows = []
        for c, shift in enumerate(np.asarray(log_factor, float)):
            row = DualAveragingState(*(float(np.asarray(field)[c]) for field in state))
            if not np.isfinite(shift) or not np.isfinite(row.log_step_avg):
                rows.append(row)  # a stopped chain: leave it
            elif restart:
                rows.append(dual_averaging_init(math.exp(row.log_step_avg + shift)))
            else:
                rows.append(row._replace(log_step=row.log_step + shift,
                                         log_step_avg=row.log_step_avg + shift,
                                         mu=row.mu + shift))  # fmt: skip
        return DualAveragingState(*(np.array([r[i] for r in rows]) for i in range(5)))
