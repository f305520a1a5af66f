"""Overdamped Langevin kernels: ULA and MALA.

Both discretise the Langevin diffusion ``dX = ∇log π(X) dt + √2 dW`` by one Euler–Maruyama
step of size h,

    y = x + h ∇log π(x) + √(2h) ξ,        ξ ~ N(0, I_d).

**ULA** (unadjusted Langevin algorithm) takes ``y`` as the next state. It is *biased*: its
stationary law is not π. On a Gaussian target N(m, A⁻¹) it is N(m, (A − (h/2) A²)⁻¹), so
in one dimension with variance σ² the stationary variance is σ² / (1 − h/(2σ²)); the bias
is O(h) (Durmus & Moulines 2017; Dalalyan 2017), and the chain is unstable for
h ≥ 2/L with L the Lipschitz constant of ∇log π. Use it for convergence studies, or when an
O(h) error is acceptable; do not use it when you need the exact posterior.

**MALA** (Metropolis-adjusted Langevin algorithm) treats ``y`` as a proposal and accepts it
with probability min(1, r),

    log r = log π(y) − log π(x) − [‖x − y − h∇log π(y)‖² − ‖y − x − h∇log π(x)‖²] / (4h),

which makes π exactly invariant (Roberts & Tweedie 1996). Its optimal acceptance rate in
high dimension is about 0.574 (Roberts & Rosenthal 1998), the default target of warm-up.

Randomness per step: ULA one N(0, I_d); MALA one N(0, I_d) and one U[0, 1).

References:
    Roberts, G. O. and Tweedie, R. L. (1996). Exponential convergence of Langevin
    distributions and their discrete approximations. Bernoulli 2(4).
    Roberts, G. O. and Rosenthal, J. S. (1998). Optimal scaling of discrete approximations
    to Langevin diffusions. JRSS B 60(1).
    Durmus, A. and Moulines, É. (2017). Nonasymptotic convergence analysis for the
    unadjusted Langevin algorithm. Ann. Appl. Probab. 27(3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from langevin.adaptation.dual_averaging import DualAveraging
from langevin.backends.portable import portable
from langevin.kernels.base import (
    Flag,
    GradientState,
    Kernel,
    Normal,
    Scalar,
    Uniform,
    Vector,
    init_gradient_state,
)
from langevin.kernels.mh import MHInfo, metropolis_hastings

__all__ = ["ULA", "MALA"]

xp: Any = None


class ULANoise(NamedTuple):
    normal: Vector


class MALANoise(NamedTuple):
    normal: Vector
    uniform: Scalar


class ULAInfo(NamedTuple):
    acceptance_rate: Scalar
    diverging: Flag


@portable
def euler_maruyama(state, normal, step_size):
    """One Euler–Maruyama step of the overdamped Langevin diffusion from ``state``."""
    return state.position + step_size * state.grad + xp.sqrt(2.0 * step_size) * normal


@portable
def ula_step(state, noise, step_size, params, target):
    """ULA: move to the Euler–Maruyama point, always."""
    position = euler_maruyama(state, noise.normal, step_size)
    logdensity, grad = xp.value_and_grad(target, position)
    diverging = xp.logical_not(xp.isfinite(logdensity))
    return GradientState(position, logdensity, grad), ULAInfo(1.0 + 0.0 * step_size, diverging)


@portable
def mala_step(state, noise, step_size, params, target):
    """MALA: Euler–Maruyama proposal, Metropolis–Hastings correction."""
    x = state.position
    y = euler_maruyama(state, noise.normal, step_size)
    logdensity, grad = xp.value_and_grad(target, y)
    forward = y - x - step_size * state.grad
    backward = x - y - step_size * grad
    log_ratio = (
        logdensity
        - state.logdensity
        + (xp.sum(forward * forward) - xp.sum(backward * backward)) / (4.0 * step_size)
    )
    accepted, probability = metropolis_hastings(log_ratio, noise.uniform)
    proposal = GradientState(y, logdensity, grad)
    diverging = xp.logical_not(xp.isfinite(logdensity))
    return xp.select_tree(accepted, proposal, state), MHInfo(probability, accepted, diverging)


@dataclass(frozen=True)
class ULA(Kernel):
    """Unadjusted Langevin algorithm: ``x' = x + h∇log π(x) + √(2h) ξ``. **Biased.**

    The stationary law differs from π by O(h) (see the module docstring); warm-up does not
    change ``step_size``. Needs h < 2/L for stability.

    Args:
        step_size: h > 0.

    Example:
        >>> import langevin
        >>> trace = langevin.sample(langevin.targets.gaussian(2), langevin.ULA(0.1),
        ...                         warmup=100, draws=200, progress=False, seed=0)
    """

    step_size: float

    State = GradientState
    Info = ULAInfo
    Noise = ULANoise
    init_math = staticmethod(init_gradient_state)
    step_math = staticmethod(ula_step)
    exact = False
    stability_advice = (
        "reduce the step size: ULA is stable only for h < 2/L, L the largest curvature of "
        "-log π (the Lipschitz constant of its gradient)"
    )
    bias_order = 1.0

    def noise(self, dim: int) -> ULANoise:
        return ULANoise(Normal((dim,)))


@dataclass(frozen=True)
class MALA(Kernel):
    """Metropolis-adjusted Langevin algorithm: an Euler–Maruyama proposal, MH-corrected.

    Exactly π-invariant. During warm-up ``step_size`` is the starting point of dual
    averaging toward ``target_acceptance`` (default 0.574).

    Args:
        step_size: h > 0 (the initial value when warm-up adapts it).

    Example:
        >>> import langevin
        >>> trace = langevin.sample(langevin.targets.gaussian(2), langevin.MALA(0.5),
        ...                         warmup=100, draws=200, progress=False, seed=0)
    """

    step_size: float

    State = GradientState
    Info = MHInfo
    Noise = MALANoise
    init_math = staticmethod(init_gradient_state)
    step_math = staticmethod(mala_step)
    exact = True
    bias_order = None
    adaptation = (DualAveraging,)
    target_acceptance = 0.574

    def noise(self, dim: int) -> MALANoise:
        return MALANoise(Normal((dim,)), Uniform(()))
