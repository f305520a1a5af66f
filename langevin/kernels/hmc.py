"""Hamiltonian Monte Carlo with a diagonal mass matrix and a choice of splitting integrator.

Augment the position ``x`` with a momentum ``p`` and sample the joint law with density
``exp(−H(x, p))``, where

    H(x, p) = U(x) + K(p),    U(x) = −log π(x),    K(p) = ½ pᵀ M⁻¹ p,

``M = diag(1 / inverse_mass)``. One transition (Duane et al. 1987; Neal 2011, §5.3.2):

1. draw a fresh momentum ``p ~ N(0, M)``, i.e. ``p = ξ / √inverse_mass`` with ``ξ ~ N(0, I)``;
2. integrate Hamilton's equations ``ẋ = M⁻¹ p``, ``ṗ = ∇log π(x)`` for ``L = n_leapfrog``
   steps of size ``h`` with a palindromic splitting integrator
   (:mod:`langevin.kernels.integrators`: leapfrog, or McLachlan's two-stage minimal-norm
   scheme), giving ``(x*, p*)``;
3. accept ``x*`` with probability ``min(1, exp(−ΔH))``, ``ΔH = H(x*, p*) − H(x, p)``
   (the block in :mod:`langevin.kernels.mh`), else stay at ``x``.

The integrator is volume preserving and reversible, so step 3 makes π exactly invariant
(Neal 2011, §5.3.2); the integration error only lowers the acceptance rate, by an energy
error ``ΔH = O(h²)`` over a trajectory of fixed length (the tests fit this order).

**Divergences.** Where the step size is too large for the local curvature (``h ω > 2`` for a
Gaussian direction of frequency ``ω`` with leapfrog) the trajectory is unstable and ``ΔH``
explodes. A transition whose ``ΔH`` exceeds ``divergence_threshold`` (Stan's default 1000),
or is not finite, is flagged ``diverging`` (except a proposal outside the support, where
log π = −inf: a rejection at a hard constraint, not a failure of the integrator); the
proposal is rejected by the MH step anyway and the chain goes on, as in Stan. ``sample``
warns with the number of divergent transitions after warm-up: divergences mean the sampler
cannot explore part of the posterior (Betancourt 2017, §6.2), so results from such a run are
suspect.

**Cost.** ``s·L`` gradient evaluations per transition (leapfrog ``s = 1``, minimal-norm
``s = 2``), reported per step in ``Info.n_grad``: the gradient at the current point is cached in
the state, and consecutive kicks share one gradient.

**Tuning.** Warm-up adapts the step size by dual averaging toward an acceptance of 0.8
(Stan's default ``adapt_delta``; Hoffman & Gelman 2014, §3.2) and the diagonal inverse mass
matrix to the posterior variances (Stan's windowed scheme:
:mod:`langevin.adaptation.mass_matrix`). ``n_leapfrog`` is not adapted: choose it so that the
trajectory length ``h L`` is of the order of the widest posterior scale (after
preconditioning: a few units), neither so short that HMC becomes a random walk nor so long
that it wastes gradients turning back (Neal 2011, §5.4.2).

References:
    Duane, S., Kennedy, A. D., Pendleton, B. J. and Roweth, D. (1987). Hybrid Monte Carlo.
    Phys. Lett. B 195(2), 216–222.
    Neal, R. M. (2011). MCMC using Hamiltonian dynamics. Handbook of MCMC, ch. 5.
    Betancourt, M. (2017). A conceptual introduction to Hamiltonian Monte Carlo.
    arXiv:1701.02434.
    Hoffman, M. D. and Gelman, A. (2014). The No-U-Turn sampler. JMLR 15, 1593–1623.
    Stan Development Team. Stan Reference Manual, "MCMC sampling" (HMC, adaptation,
    divergent transitions).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from langevin.adaptation.dual_averaging import DualAveraging
from langevin.adaptation.mass_matrix import DiagonalMassMatrix
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
from langevin.kernels.integrators import get_integrator, padded_coefficients
from langevin.kernels.mh import metropolis_hastings

__all__ = ["HMC", "HMCInfo", "HMCNoise", "HMCParams"]

xp: Any = None


class HMCNoise(NamedTuple):
    normal: Vector  # the momentum before scaling by the mass
    uniform: Scalar  # the MH decision


class HMCInfo(NamedTuple):
    """Per-transition statistics.

    ``energy`` is ``H`` at the state the chain keeps (with the momentum drawn for this
    transition), as ArviZ's E-BFMI expects; ``energy_error`` is ``H(x*, p*) − H(x, p)`` of
    the proposal, accepted or not; ``n_grad`` counts gradient evaluations.
    """

    acceptance_rate: Scalar
    is_accepted: Flag
    diverging: Flag
    energy: Scalar
    energy_error: Scalar
    n_grad: Scalar


class HMCParams(NamedTuple):
    """Runtime parameters (per chain). Coefficient arrays are padded (see integrators)."""

    n_leapfrog: int
    inverse_mass: np.ndarray
    kick: np.ndarray
    drift: np.ndarray
    n_stages: int
    divergence_threshold: float


@portable
def hmc_trajectory_body(k, carry, args):
    """Sub-step ``k`` of a trajectory: drift ``a_i``, a gradient, then the next kick.

    ``i = k mod s`` is the stage. The kick after the last stage of a step is ``b_{s+1}``
    merged with the first kick ``b_1`` of the next step — one kick, one shared gradient —
    except at the end of the trajectory, where it is ``b_{s+1}`` alone.
    """
    position, momentum, logdensity, grad = carry
    step_size, inverse_mass, kick, drift, n_stages, n_total, target = args
    i = k % n_stages
    position = position + (step_size * drift[i]) * (inverse_mass * momentum)
    logdensity, grad = xp.value_and_grad(target, position)
    end_of_step = kick[n_stages] + xp.select(k == n_total - 1, 0.0 * kick[0], kick[0])
    coefficient = xp.select(i == n_stages - 1, end_of_step, kick[i + 1])
    momentum = momentum + (step_size * coefficient) * grad
    return position, momentum, logdensity, grad


@portable
def hmc_step(state, noise, step_size, params, target):
    """One HMC transition: fresh momentum, ``L`` integrator steps, MH correction."""
    inverse_mass = params.inverse_mass
    momentum0 = noise.normal / xp.sqrt(inverse_mass)  # p ~ N(0, M), M = diag(1/inverse_mass)
    n_total = params.n_leapfrog * params.n_stages
    momentum = momentum0 + (step_size * params.kick[0]) * state.grad
    position, momentum, logdensity, grad = xp.fori_loop(
        0,
        n_total,
        hmc_trajectory_body,
        (state.position, momentum, state.logdensity, state.grad),
        (step_size, inverse_mass, params.kick, params.drift, params.n_stages, n_total, target),
    )
    energy0 = 0.5 * xp.sum(inverse_mass * momentum0 * momentum0) - state.logdensity
    energy1 = 0.5 * xp.sum(inverse_mass * momentum * momentum) - logdensity
    energy_error = energy1 - energy0
    accepted, probability = metropolis_hastings(-energy_error, noise.uniform)
    # A proposal outside the support (log π = −inf: a hard constraint) is rejected, not a
    # divergence: the integrator did not fail, the trajectory left the support.
    diverging = xp.select(
        xp.isfinite(energy_error),
        energy_error > params.divergence_threshold,
        xp.logical_not(logdensity == -xp.inf),
    )
    proposal = GradientState(position, logdensity, grad)
    info = HMCInfo(
        probability,
        accepted,
        diverging,
        xp.select(accepted, energy1, energy0),
        energy_error,
        n_total * (1.0 + 0.0 * step_size),  # a float in the dtype of the chain
    )
    return xp.select_tree(accepted, proposal, state), info


def _check_inverse_mass(owner: str, value) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{owner}: inverse_mass must be a 1-D array of positive floats (the diagonal of "
            f"M⁻¹) or None; got {value!r}"
        ) from exc
    if arr.ndim != 1 or arr.shape[0] < 1:
        raise ValueError(
            f"{owner}: inverse_mass must be a 1-D array with one entry per coordinate (the "
            f"diagonal of M⁻¹); got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ValueError(f"{owner}: inverse_mass must be positive and finite; got {arr.tolist()}")
    return tuple(float(v) for v in arr)


def check_hamiltonian_settings(kernel) -> None:
    """Check and normalise what every Hamiltonian kernel (HMC, NUTS) shares: the diagonal
    ``inverse_mass``, the ``integrator`` name and the ``divergence_threshold`` (frozen
    dataclass fields, set in place); errors name the kernel."""
    owner = kernel.name
    object.__setattr__(kernel, "inverse_mass", _check_inverse_mass(owner, kernel.inverse_mass))
    get_integrator(kernel.integrator)  # a ValueError listing the valid names
    t = kernel.divergence_threshold
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not t > 0:
        raise ValueError(f"{owner}: divergence_threshold must be a positive float; got {t!r}")
    object.__setattr__(kernel, "divergence_threshold", float(t))


@dataclass(frozen=True)
class HMC(Kernel):
    """Hamiltonian Monte Carlo with a fixed number of integrator steps (Neal 2011).

    Each transition draws ``p ~ N(0, M)``, integrates ``n_leapfrog`` steps of size ``h`` of
    ``H(x, p) = −log π(x) + ½ pᵀ M⁻¹ p`` and accepts with probability
    ``min(1, exp(H(x, p) − H(x*, p*)))``: exactly π-invariant. Module docstring: the math,
    divergences, cost and tuning.

    Args:
        step_size: h > 0 (the initial value when warm-up adapts it).
        n_leapfrog: integrator steps per transition, an int >= 1.
        inverse_mass: the diagonal of ``M⁻¹`` (one positive float per coordinate);
            None means the identity. Warm-up adapts it (per chain) to the posterior
            variances unless ``sample(..., adapt_mass_matrix=False)``.
        integrator: ``"leapfrog"`` (1 gradient per step) or ``"minimal_norm"`` (McLachlan's
            two-stage scheme, 2 gradients per step, a ten times smaller error constant);
            see :data:`langevin.kernels.integrators.INTEGRATORS`.
        divergence_threshold: an energy error above this flags the transition as divergent.

    Example:
        >>> import langevin
        >>> kernel = langevin.HMC(0.3, n_leapfrog=8, integrator="minimal_norm")
        >>> trace = langevin.sample(langevin.targets.gaussian(2), kernel, chains=2,
        ...                         warmup=200, draws=200, progress=False, seed=0)
        >>> trace.inverse_mass.shape, int(trace.sample_stats["n_grad"][0, 0])
        ((2, 2), 16)
    """

    step_size: float
    n_leapfrog: int = 10
    inverse_mass: Any = None
    integrator: str = "leapfrog"
    divergence_threshold: float = 1000.0

    State = GradientState
    Info = HMCInfo
    Noise = HMCNoise
    init_math = staticmethod(init_gradient_state)
    step_math = staticmethod(hmc_step)
    exact = True
    bias_order = None
    adaptation = (DualAveraging, DiagonalMassMatrix)
    target_acceptance = 0.8  # Stan's adapt_delta default

    def __post_init__(self) -> None:
        super().__post_init__()
        n = self.n_leapfrog
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"HMC: n_leapfrog must be an int >= 1; got {n!r}")
        if n < 1:
            raise ValueError(f"HMC: n_leapfrog must be an int >= 1; got {n}")
        object.__setattr__(self, "n_leapfrog", int(n))
        check_hamiltonian_settings(self)

    def divergent_transition(self) -> str:
        return (f"energy error above divergence_threshold={self.divergence_threshold:g} or "
                "not finite")  # fmt: skip

    def noise(self, dim: int) -> HMCNoise:
        return HMCNoise(Normal((dim,)), Uniform(()))

    def params(self) -> HMCParams:
        """Runtime parameters. Without an ``inverse_mass`` it is ``[1.0]``, which broadcasts
        to any dimension; the driver expands it to the target's dimension."""
        integrator = get_integrator(self.integrator)
        kick, drift = padded_coefficients(integrator)
        inverse_mass = np.ones(1) if self.inverse_mass is None else np.array(self.inverse_mass)
        return HMCParams(
            self.n_leapfrog,
            inverse_mass,
            kick,
            drift,
            integrator.n_stages,
            self.divergence_threshold,
        )
