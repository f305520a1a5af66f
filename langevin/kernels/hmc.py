"""Hamiltonian Monte Carlo with a diagonal or dense mass matrix and a choice of splitting
integrator.

Augment the position ``x`` with a momentum ``p`` and sample the joint law with density
``exp(−H(x, p))``, where

    H(x, p) = U(x) + K(p),    U(x) = −log π(x),    K(p) = ½ pᵀ M⁻¹ p,

``M = diag(1 / inverse_mass)`` (or, with ``metric="dense"``, ``M⁻¹`` a symmetric
positive-definite matrix: see "Dense metric" below). One transition (Duane et al. 1987;
Neal 2011, §5.3.2):

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

**Dense metric.** ``HMC(..., metric="dense")`` (and NUTS's) takes ``M⁻¹ = A`` a full
symmetric positive-definite matrix. With its Cholesky factorisation ``A = L Lᵀ`` the
momentum is ``p = L⁻ᵀ ξ`` (``Cov p = L⁻ᵀ L⁻¹ = A⁻¹ = M``), the velocity ``A p`` and the kinetic
energy ``½ pᵀ A p``: in the coordinates ``y = L⁻¹ x`` this is unit-metric HMC, so a metric
equal to the posterior covariance whitens a Gaussian completely, whatever its correlations
(Neal 2011, §5.4.1). The three operations are portable functions (:func:`velocity`,
:func:`draw_momentum`, :func:`kinetic_energy`) and :func:`dense_metric` makes the dense copy
of a kernel's math; ``L⁻ᵀ`` is computed on the host once per params value
(:func:`momentum_factor`). Warm-up estimates ``A`` by Stan's windowed, regularised sample
covariance (:class:`~langevin.adaptation.mass_matrix.DenseMassMatrix`).

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from langevin.adaptation.dual_averaging import DualAveraging
from langevin.adaptation.mass_matrix import DenseMassMatrix, DiagonalMassMatrix
from langevin.backends.portable import bind_globals, is_portable, portable
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

__all__ = [
    "HMC", "DenseHMC", "DenseHMCParams", "HMCInfo", "HMCNoise", "HMCParams",
    "METRICS", "dense_metric",
    "momentum_factor", "check_dense_inverse_mass", "check_hamiltonian_settings",
]  # fmt: skip

xp: Any = None


# -- the metric: diagonal (the default) or dense -----------------------------------------------
#: The metrics a Hamiltonian kernel takes (``metric=``): the shape of ``M⁻¹``.
METRICS = ("diagonal", "dense")


@portable
def velocity(inverse_mass, momentum):
    """``M⁻¹ p``, diagonal metric: ``inverse_mass`` is the diagonal of ``M⁻¹``."""
    return inverse_mass * momentum


@portable
def dense_velocity(inverse_mass, momentum):
    """``M⁻¹ p``, dense metric: ``inverse_mass`` is the symmetric (d, d) matrix ``M⁻¹``."""
    return xp.dot(inverse_mass, momentum)


@portable
def draw_momentum(params, normal):
    """``p ~ N(0, M)`` from ``ξ ~ N(0, I)``, diagonal metric: ``p = ξ / √m⁻¹``."""
    return normal / xp.sqrt(params.inverse_mass)


@portable
def dense_draw_momentum(params, normal):
    """``p ~ N(0, M)`` from ``ξ ~ N(0, I)``, dense metric. With the Cholesky factorisation
    ``M⁻¹ = L Lᵀ``, ``p = L⁻ᵀ ξ`` has covariance ``L⁻ᵀ L⁻¹ = (L Lᵀ)⁻¹ = M``. The factor
    ``L⁻ᵀ`` is ``params.momentum_factor``, computed once per params value on the host
    (:func:`momentum_factor`), not per step."""
    return xp.dot(params.momentum_factor, normal)


@portable
def kinetic_energy(momentum, inverse_mass):
    """``K(p) = ½ pᵀ M⁻¹ p``, diagonal metric."""
    return 0.5 * xp.sum(inverse_mass * momentum * momentum)


@portable
def dense_kinetic_energy(momentum, inverse_mass):
    """``K(p) = ½ pᵀ M⁻¹ p``, dense metric."""
    return 0.5 * xp.dot(dense_velocity(inverse_mass, momentum), momentum)


#: The diagonal metric's operations and their dense counterparts (:func:`dense_metric`).
_DENSE_OPS: dict[Callable, Callable] = {
    velocity: dense_velocity,
    draw_momentum: dense_draw_momentum,
    kinetic_energy: dense_kinetic_energy,
}
_DENSE_COPIES: dict[Callable, Callable] = {}


def dense_metric(fn: Callable) -> Callable:
    """The dense-metric copy of a Hamiltonian kernel's portable math ``fn``.

    Every portable function ``fn`` reaches (through the globals it reads, the bodies of its
    loops included) that calls one of the diagonal metric's operations (:func:`velocity`,
    :func:`draw_momentum`, :func:`kinetic_energy`) is copied with the dense operation bound
    in its place (:func:`langevin.backends.portable.bind_globals`); the rest is shared. So
    NUTS's tree building and HMC's trajectory are written once, for both metrics, and each
    backend compiles the copy like any portable function.
    """
    if fn in _DENSE_COPIES:
        return _DENSE_COPIES[fn]
    _DENSE_COPIES[fn] = fn  # a function that reaches itself: no copy needed for the cycle
    names = {}
    for name in fn.__code__.co_names:
        value = fn.__globals__.get(name)
        if not is_portable(value):
            continue
        new = _DENSE_OPS.get(value) or dense_metric(value)
        if new is not value:
            names[name] = new
    out = bind_globals(fn, **names) if names else fn
    _DENSE_COPIES[fn] = out
    return out


def momentum_factor(inverse_mass: np.ndarray) -> np.ndarray:
    """``L⁻ᵀ`` for ``M⁻¹ = L Lᵀ`` (lower Cholesky factor ``L``) of a (d, d) matrix or of a
    stack (..., d, d) of them: what :func:`dense_draw_momentum` multiplies ``ξ`` by.

    Example:
        >>> a = np.array([[2.0, 0.5], [0.5, 1.0]])
        >>> f = momentum_factor(a)
        >>> bool(np.allclose(f @ f.T, np.linalg.inv(a)))  # Cov(L⁻ᵀ ξ) = M
        True
    """
    from scipy.linalg import solve_triangular

    a = np.asarray(inverse_mass, dtype=np.float64)
    out = np.empty_like(a)
    eye = np.eye(a.shape[-1])
    for idx in np.ndindex(a.shape[:-2]):
        lower = np.linalg.cholesky(a[idx])
        out[idx] = solve_triangular(lower, eye, lower=True).T
    return np.ascontiguousarray(out)


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
    position = position + (step_size * drift[i]) * velocity(inverse_mass, momentum)
    logdensity, grad = xp.value_and_grad(target, position)
    end_of_step = kick[n_stages] + xp.select(k == n_total - 1, 0.0 * kick[0], kick[0])
    coefficient = xp.select(i == n_stages - 1, end_of_step, kick[i + 1])
    momentum = momentum + (step_size * coefficient) * grad
    return position, momentum, logdensity, grad


@portable
def hmc_step(state, noise, step_size, params, target):
    """One HMC transition: fresh momentum, ``L`` integrator steps, MH correction."""
    inverse_mass = params.inverse_mass
    momentum0 = draw_momentum(params, noise.normal)  # p ~ N(0, M)
    n_total = params.n_leapfrog * params.n_stages
    momentum = momentum0 + (step_size * params.kick[0]) * state.grad
    position, momentum, logdensity, grad = xp.fori_loop(
        0,
        n_total,
        hmc_trajectory_body,
        (state.position, momentum, state.logdensity, state.grad),
        (step_size, inverse_mass, params.kick, params.drift, params.n_stages, n_total, target),
    )
    energy0 = kinetic_energy(momentum0, inverse_mass) - state.logdensity
    energy1 = kinetic_energy(momentum, inverse_mass) - logdensity
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


def check_dense_inverse_mass(owner: str, value) -> tuple[tuple[float, ...], ...] | None:
    """A dense ``M⁻¹``: None (the identity), a symmetric positive-definite (d, d) matrix, or
    a 1-D array of positive floats (its diagonal). ValueError (TypeError for what is no
    array of numbers) naming ``inverse_mass`` otherwise. Returns the matrix as nested tuples
    (a frozen kernel's fields are hashable)."""
    if value is None:
        return None
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{owner}: inverse_mass must be a symmetric positive-definite (d, d) matrix (M⁻¹) "
            f"or None; got {value!r}"
        ) from exc
    if arr.ndim == 1:
        arr = np.diag(np.asarray(_check_inverse_mass(owner, arr)))
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 1:
        raise ValueError(
            f"{owner}: inverse_mass must be a square (d, d) matrix (M⁻¹) for metric='dense'; "
            f"got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{owner}: inverse_mass must be finite; got {arr.tolist()}")
    asymmetry = float(np.max(np.abs(arr - arr.T)))
    if asymmetry > 1e-12 * max(float(np.max(np.abs(arr))), 1e-300):
        raise ValueError(
            f"{owner}: inverse_mass must be symmetric (M⁻¹ = M⁻ᵀ); the largest |A − Aᵀ| is "
            f"{asymmetry:.3g}"
        )
    arr = 0.5 * (arr + arr.T)
    try:
        np.linalg.cholesky(arr)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"{owner}: inverse_mass must be positive definite; its smallest eigenvalue is "
            f"{float(np.linalg.eigvalsh(arr)[0]):.3g}"
        ) from None
    return tuple(tuple(float(v) for v in row) for row in arr)


def check_hamiltonian_settings(kernel) -> None:
    """Check and normalise what every Hamiltonian kernel (HMC, NUTS) shares: the ``metric``
    and its ``inverse_mass`` (a diagonal, or a dense matrix), the ``integrator`` name and the
    ``divergence_threshold`` (frozen dataclass fields, set in place); errors name the
    kernel."""
    owner = kernel.name
    metric = kernel.metric
    if metric is not None and metric not in METRICS:
        raise ValueError(f"{owner}: metric must be one of {METRICS} or None; got {metric!r}")
    metric = metric or kernel.metric_kind
    if metric != kernel.metric_kind:  # the class of the other metric, built directly
        raise ValueError(f"{owner}: {type(kernel).__name__} has metric={kernel.metric_kind!r}, "
                         f"not {metric!r}; use {owner}(..., metric={metric!r})")  # fmt: skip
    object.__setattr__(kernel, "metric", metric)
    if metric == "dense":
        inverse_mass = check_dense_inverse_mass(owner, kernel.inverse_mass)
    else:
        if kernel.inverse_mass is not None and _ndim(kernel.inverse_mass) == 2:
            raise ValueError(
                f"{owner}: inverse_mass is a matrix but metric='diagonal' takes its diagonal; "
                "pass metric='dense' (or leave metric out) for a dense M⁻¹"
            )
        inverse_mass = _check_inverse_mass(owner, kernel.inverse_mass)
    object.__setattr__(kernel, "inverse_mass", inverse_mass)
    get_integrator(kernel.integrator)  # a ValueError listing the valid names
    t = kernel.divergence_threshold
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not t > 0:
        raise ValueError(f"{owner}: divergence_threshold must be a positive float; got {t!r}")
    object.__setattr__(kernel, "divergence_threshold", float(t))


def _ndim(value) -> int:
    try:
        return int(np.ndim(value))
    except (TypeError, ValueError):  # a ragged list: the checks that follow say what is wrong
        return 0


def wants_dense(args: tuple, kwargs: dict, inverse_mass_at: int, metric_at: int) -> bool:
    """Whether a Hamiltonian kernel's constructor arguments ask for the dense metric:
    ``metric="dense"``, or no ``metric`` and a 2-D ``inverse_mass`` (positions of the
    arguments in the dataclass's field order)."""
    metric = kwargs.get("metric", args[metric_at] if len(args) > metric_at else None)
    inverse_mass = kwargs.get(
        "inverse_mass", args[inverse_mass_at] if len(args) > inverse_mass_at else None
    )
    if metric is None:
        return inverse_mass is not None and _ndim(inverse_mass) == 2
    return metric == "dense"


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
        metric: ``"diagonal"`` (``inverse_mass`` is the diagonal of ``M⁻¹``) or ``"dense"``
            (``inverse_mass`` is a symmetric positive-definite (d, d) matrix ``M⁻¹``, None
            the identity; warm-up adapts it to the posterior covariance:
            :class:`~langevin.adaptation.mass_matrix.DenseMassMatrix`). None (the default):
            dense when ``inverse_mass`` is a matrix, else diagonal. See ``docs/nuts.md``,
            "Dense mass matrix".

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
    metric: str | None = None

    State = GradientState
    Info = HMCInfo
    Noise = HMCNoise
    init_math = staticmethod(init_gradient_state)
    step_math = staticmethod(hmc_step)
    exact = True
    bias_order = None
    adaptation = (DualAveraging, DiagonalMassMatrix)
    target_acceptance = 0.8  # Stan's adapt_delta default
    metric_kind = "diagonal"
    public_name = "HMC"

    def __new__(cls, *args: Any, **kwargs: Any) -> HMC:
        if cls is HMC and wants_dense(args, kwargs, inverse_mass_at=2, metric_at=5):
            cls = DenseHMC
        return object.__new__(cls)

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


class DenseHMCParams(NamedTuple):
    """Runtime parameters of HMC with a dense metric (per chain)."""

    n_leapfrog: int
    inverse_mass: np.ndarray  # (d, d): M⁻¹
    momentum_factor: np.ndarray  # (d, d): L⁻ᵀ, M⁻¹ = L Lᵀ
    kick: np.ndarray
    drift: np.ndarray
    n_stages: int
    divergence_threshold: float


@dataclass(frozen=True, repr=False)
class DenseHMC(HMC):
    """HMC with a dense metric: what ``HMC(..., metric="dense")`` (or a (d, d)
    ``inverse_mass``) builds. The math is :func:`hmc_step`'s with ``M⁻¹ p`` a matrix-vector
    product, ``p = L⁻ᵀ ξ`` and ``K = ½ pᵀ M⁻¹ p`` (:func:`dense_metric`); warm-up adapts the
    full matrix (:class:`~langevin.adaptation.mass_matrix.DenseMassMatrix`). Without an
    ``inverse_mass`` it starts at the identity."""

    metric: str | None = "dense"

    step_math = staticmethod(dense_metric(hmc_step))
    adaptation = (DualAveraging, DenseMassMatrix)
    metric_kind = "dense"

    def __repr__(self) -> str:  # the name users type: HMC(..., metric='dense')
        text = HMC.__repr__(self)
        return self.name + text[text.index("(") :]

    def params(self) -> DenseHMCParams:
        """Runtime parameters. Without an ``inverse_mass`` it is the 1 × 1 identity, which
        the warm-up component expands to the target's dimension (``sample`` does this)."""
        integrator = get_integrator(self.integrator)
        kick, drift = padded_coefficients(integrator)
        inverse_mass = np.eye(1) if self.inverse_mass is None else np.array(self.inverse_mass)
        return DenseHMCParams(self.n_leapfrog, inverse_mass, momentum_factor(inverse_mass),
                              kick, drift, integrator.n_stages,
                              self.divergence_threshold)  # fmt: skip
