"""Learned-diffusion samplers: the path integral sampler (PIS) with the log-variance loss.

Richter & Berner (ICLR 2024) train the control of a generative SDE

    dX_t = σ u(X_t, t) dt + σ dW_t,        X_0 = 0,   t ∈ [0, T],

so that ``X_T ~ γ/Z``, by minimising a divergence between the controlled path measure and a
*reference* path measure that ends at γ (the PIS/DDS "reference-process" losses;
ALGORITHMS.md §9b). For PIS (Zhang & Chen 2022) the reference is the uncontrolled process
(Brownian motion from 0, marginal ``N(0, σ² t I)``), whose time reversal is the Brownian
bridge to 0. Discretised on the grid ``t_k = kΔ`` (Δ = T/K) this is a path sampler of
:mod:`langevin.diffusion.paths`, with the same weight code as CMCD:

    forward:   F_k(x_k | x_{k−1}) = N(x_{k−1} + σ u(x_{k−1}, t_{k−1}) Δ, σ²Δ I)
    backward:  B_k(x_{k−1} | x_k) = N((t_{k−1}/t_k) x_k, σ²Δ (t_{k−1}/t_k) I),   k ≥ 2
               (k = 1: x_0 = 0 under both, no factor)
    log w = log γ(x_K) + Σ_{k≥2} log B_k − Σ_{k≥1} log F_k.

The backward chain is the exact Brownian bridge from ``x_K`` to 0, so ``E[w] = Z`` exactly for
every control and every K (with u ≡ 0, ``log w = log γ(x_K) − log N(x_K; 0, σ²T I)``: importance
sampling from the reference marginal). ``−log w`` is the discrete ``rnd`` of the
reference-process loss of Richter & Berner (``sde_sampler/losses/oc.py``) up to the
discretisation of its Itô integral.

The control is score-informed (Zhang & Chen 2022): ``u(x, t) = φ(x, t) + (a + b t)
clip(∇log γ(x))`` with φ a :class:`~langevin.diffusion.paths.ControlNet` and ``(a, b)``
learnable (``params.score_weight``); initially φ = 0 and a = b = 0.

**Training: the log-variance loss, off-policy.** ``train(loss="logvar", exploration=…)``
simulates the batch with the *detached* control and forward noise scaled by
``1 + exploration``, then minimises ``Var(log w)`` with gradients only through the transition
densities of those fixed paths (no differentiation through the SDE). The loss vanishes iff
``w`` is constant, i.e. the forward and reference path laws agree, whichever law simulated
the paths — so exploring paths are allowed, which Richter & Berner show avoids the mode
collapse of the reverse KL. ``loss="kl"`` (−ELBO, reparameterised) is also available.

Sampling with trained params is :meth:`~langevin.diffusion.paths.PathSampler.sample` on
either backend, through :func:`langevin.smc.smc` (the intermediate weights here carry no
target information, so resampling is of no use: keep ``ess_threshold=0``).

References:
    Richter, L. and Berner, J. (2024). Improved sampling via learned diffusions. ICLR 2024,
    arXiv:2307.01198; code github.com/juliusberner/sde_sampler.
    Zhang, Q. and Chen, Y. (2022). Path integral sampler: a stochastic control approach for
    sampling. ICLR 2022, arXiv:2111.15141.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from langevin.backends.portable import portable
from langevin.diffusion.paths import (
    LOG_2PI,
    ControlNet,
    PathSampler,
    _check_int,
    _check_positive,
    control_apply,
    init_control,
)

__all__ = ["PIS", "PISParams", "pis_propose", "pis_increment"]

xp: Any = None  # bound by each backend

# Columns of a PIS coefficient row (step k = 1..K): t_{k−1}, t_k, Δ, σ, first-step flag,
# final-step flag, gradient clip.


class PISParams(NamedTuple):
    """PIS's learnable parameters: the control network and the score weights ``(a, b)``."""

    net: ControlNet
    score_weight: Any


@portable
def pis_start_position(normal, params):
    """``x_0 = 0`` (the noise is not used)."""
    return 0.0 * normal


@portable
def pis_start_log_g(x, logp, row, params):
    """``log G_0 = 0`` (x_0 = 0 under both path laws)."""
    return 0.0 * logp


@portable
def _pis_control(x, grad, t, clip, params):
    w = params.score_weight[0] + params.score_weight[1] * t
    return control_apply(params.net, x, t) + w * xp.clip(grad, -clip, clip)


@portable
def pis_propose(x, logp, grad, normal, row, params):
    """``x + σ u(x, t_{k−1}) Δ + σ √Δ ξ``."""
    dt = row[2]
    sigma = row[3]
    u = _pis_control(x, grad, row[0], row[6], params)
    return x + sigma * dt * u + sigma * xp.sqrt(dt) * normal


@portable
def pis_increment(x, logp, grad, new_x, new_logp, new_grad, row, params):
    """``log B_k(x | new_x) − log F_k(new_x | x)`` (+ ``log γ(x_K)`` at k = K), from the
    positions."""
    t_prev = row[0]
    t = row[1]
    dt = row[2]
    sigma = row[3]
    d = x.shape[0]
    var_f = sigma * sigma * dt
    rf = new_x - x - sigma * dt * _pis_control(x, grad, t_prev, row[6], params)
    log_f = -0.5 * xp.sum(rf * rf) / var_f - 0.5 * d * (LOG_2PI + xp.log(var_f))
    first = row[4] > 0.5
    ratio = t_prev / t
    var_b = xp.where(first, 1.0, var_f * ratio)  # k = 1: no backward factor (x_0 = 0)
    rb = x - ratio * new_x
    log_b = -0.5 * xp.sum(rb * rb) / var_b - 0.5 * d * (LOG_2PI + xp.log(var_b))
    log_b = xp.where(first, 0.0, log_b)
    final = xp.where(row[5] > 0.5, new_logp, 0.0)
    return log_b - log_f + final


class PIS(PathSampler):
    """The path integral sampler on a grid of ``n_steps`` steps over [0, T] (module docstring).

    Args:
        target: a :class:`~langevin.targets.Target`.
        n_steps: K >= 1.
        dim: the dimension (default: the target's).
        sigma: the diffusion coefficient σ > 0 (the reference marginal at T is
            ``N(0, σ² T I)``: choose it to cover the target).
        horizon: T > 0.
        hidden: width of the control network.
        grad_clip: ``∇log γ`` in the control is clipped at ±grad_clip.
    """

    start_position = staticmethod(pis_start_position)
    start_log_g = staticmethod(pis_start_log_g)
    propose = staticmethod(pis_propose)
    increment = staticmethod(pis_increment)

    def __init__(
        self,
        target: Any,
        n_steps: int,
        *,
        dim: int | None = None,
        sigma: float = 1.0,
        horizon: float = 1.0,
        hidden: int = 32,
        grad_clip: float = 1e2,
    ) -> None:
        self._check_target(target, dim)
        self.n_steps = _check_int("n_steps", n_steps, 1)
        self.sigma = _check_positive("sigma", sigma)
        self.horizon = _check_positive("horizon", horizon)
        self.hidden = _check_int("hidden", hidden, 1)
        self.grad_clip = _check_positive("grad_clip", grad_clip)

    def init_params(self, seed: int = 0) -> PISParams:
        """The zero control: φ's output layer 0 and ``(a, b) = (0, 0)``."""
        return PISParams(net=init_control(self.dim, self.hidden, seed), score_weight=np.zeros(2))

    def coefficients(self, params: PISParams, np_or_jnp: Any = np) -> Any:
        """The ``(K, 7)`` table: ``t_{k−1}, t_k, Δ, σ``, first/final flags, gradient clip."""
        k_steps = self.n_steps
        dt = self.horizon / k_steps
        k = np.arange(1, k_steps + 1, dtype=np.float64)
        table = np.stack(
            [
                (k - 1.0) * dt,
                k * dt,
                np.full(k_steps, dt),
                np.full(k_steps, self.sigma),
                (k == 1).astype(np.float64),
                (k == k_steps).astype(np.float64),
                np.full(k_steps, self.grad_clip),
            ],
            axis=1,
        )
        return table if np_or_jnp is np else np_or_jnp.asarray(table)
