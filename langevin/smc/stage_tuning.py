"""Per-stage tuning of an SMC sampler's MCMC move from the weighted particles.

Before each mutation the step size is re-tuned from the population (documented choice, two
ingredients):

* *scale*: ``h_t = h_{t−1} · v_t / v_{t−1}`` with ``v`` the mean over coordinates of the
  weighted particle variances — the tempered targets contract as β grows and a
  position-scale step size must follow (Chopin 2002 and Jasra et al. 2011 scale their
  random-walk proposals by the particle covariance). Kernels that adapt an inverse mass
  (``Kernel.adapts_inverse_mass``: HMC) get ``inverse_mass =`` the weighted variances
  instead, and no scale factor (the metric absorbs the scale);
* *acceptance feedback*: for exact kernels with a ``target_acceptance`` (MALA 0.574, HMC
  0.8), ``log h_t += κ (ᾱ_{t−1} − α*)`` with ``κ = 2`` and the step clipped to ±1, where
  ``ᾱ`` is the mean acceptance rate of the previous stage's moves — a per-stage
  Robbins–Monro update in the spirit of Fearnhead & Taylor (2013).

References:
    Chopin, N. (2002). A sequential particle filter method for static models.
    Biometrika 89(3).
    Fearnhead, P. and Taylor, B. M. (2013). An adaptive sequential Monte Carlo sampler.
    Bayesian Analysis 8(2).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["StageTuning", "weighted_variances", "FEEDBACK_GAIN"]

#: acceptance feedback gain κ of the per-stage step-size update (module docstring)
FEEDBACK_GAIN = 2.0


def weighted_variances(x: np.ndarray, log_weights: np.ndarray) -> np.ndarray:
    """Per-coordinate variances of particles ``x`` (N, d) under normalised ``exp(log_weights)``;
    non-finite particles get weight 0."""
    w = np.exp(log_weights - np.max(log_weights))
    w /= w.sum()
    finite = np.all(np.isfinite(x), axis=1)
    w = np.where(finite, w, 0.0)
    w /= w.sum()
    xs = np.where(finite[:, None], x, 0.0)
    mean = w @ xs
    return w @ (xs - mean) ** 2


class StageTuning:
    """The step size and kernel parameters of the next stage (module docstring)."""

    def __init__(self, kernel: Any, dim: int, adapt: bool) -> None:
        self.kernel = kernel
        self.adapt = adapt
        self.step_size = float(kernel.step_size)
        self.params = kernel.params()
        self.mass = bool(kernel.adapts_inverse_mass) and "inverse_mass" in self.params._fields
        if self.mass:
            self.params = self.params._replace(inverse_mass=np.ones(dim))
        self.variance: float | None = None

    def start(self, x: np.ndarray) -> None:
        """Record the reference particles' scale (before the first stage)."""
        self.variance = float(np.mean(weighted_variances(np.asarray(x), np.zeros(len(x)))))

    def tune(self, x: np.ndarray | None, log_weights: np.ndarray | None,
             last_acceptance: float | None, variances: np.ndarray | None = None):  # fmt: skip
        """Re-tune from the weighted particles; returns ``(step_size, params)``. ``variances``:
        their weighted variances when computed elsewhere (across devices), instead of
        ``x`` and ``log_weights``."""
        if variances is None:
            variances = weighted_variances(np.asarray(x), np.asarray(log_weights))
        var = np.asarray(variances)
        mean_var = float(np.mean(var))
        if self.adapt:
            h = self.step_size
            if last_acceptance is not None and self.kernel.exact and self.kernel.target_acceptance:
                gap = last_acceptance - self.kernel.target_acceptance
                h *= math.exp(float(np.clip(FEEDBACK_GAIN * gap, -1.0, 1.0)))
            if self.mass:
                self.params = self.params._replace(inverse_mass=np.maximum(var, 1e-300))
            elif self.variance and mean_var > 0:
                h *= mean_var / self.variance
            self.step_size = h
        self.variance = mean_var
        return self.step_size, self.params
