"""Kinetic (underdamped) Langevin kernels: randomized midpoint, exponential Euler, splittings.

**The diffusion.** Position ``x`` and momentum ``p`` in R^d, friction γ > 0 and a diagonal
*inverse mass* ``u`` (a positive vector; the mass matrix is M = diag(1/u)):

    dx = u ⊙ p dt,
    dp = ∇log π(x) dt − γ p dt + √(2γ/u) ⊙ dW.

Its stationary law is π(x) ⊗ N(0, M): x ~ π exactly and p ~ N(0, diag(1/u)), independent of
x (the Hamiltonian part preserves H = −log π(x) + ½ pᵀ diag(u) p, the Ornstein–Uhlenbeck
part preserves N(0, M)). In the *velocity* v = u ⊙ p this is the form of ALGORITHMS.md §2b
and of Cheng et al. (2018), ``dv = −γ v dt − u∇U dt + √(2γu) dW`` with v ~ N(0, u);
with u = 1 (the default) p = v and it is the unit-mass form of Yu, Karagulyan & Dalalyan
(2023). The kernels store the momentum p. Only the *position* marginal of the stationary
law is the target; the momentum is auxiliary.

**Discretizations** (``KineticLangevin(..., discretization=...)``; each one is its own kernel
class, see :data:`DISCRETIZATIONS`). All are *unadjusted* (no Metropolis–Hastings step), so
the law they sample differs from π by a bias that vanishes as h → 0:

``"randomized_midpoint"`` (Shen & Lee 2019; Yu, Karagulyan & Dalalyan 2023)
    The Ornstein–Uhlenbeck part is integrated exactly; the force integrals of the
    variation-of-constants formula over [0, h] are estimated at one uniformly random time
    a = αh, α ~ U[0, 1), at a midpoint x_mid predicted with the force frozen at x:

        x_mid = x + A(a) u p + a² φ₂(γa) u ∇log π(x) + W₁
        x'    = x + A(h) u p + h A(h − a) u ∇log π(x_mid) + W₂
        p'    = e^{−γh} p + h e^{−γ(h−a)} ∇log π(x_mid) + W₃ / u

    with A(t) = (1 − e^{−γt})/γ and φ₂(y) = (y − 1 + e^{−y})/y². (W₁, W₂, W₃) are the exact
    Brownian integrals of ALGORITHMS.md §2b (W₁ at the midpoint time, W₂, W₃ at h, all from
    *one* Brownian path, so they are correlated), sampled exactly by splitting [0, h] at a
    into two independent pieces
    (:func:`~langevin.kernels.ou_integrals.rm_brownian_integrals`). Two gradient evaluations
    per step (at x_mid and at x'; the one at x is the state's). Noise: one U[0, 1) and four
    N(0, I_d). With ∇log π ≡ 0 the step is the exact transition of the diffusion.
``"euler"`` (kinetic Langevin Monte Carlo, KLMC: Cheng et al. 2018; Dalalyan & Riou-Durand
    2020; the "kinetic Langevin process with Euler discretization" whose guarantees Yu,
    Karagulyan & Dalalyan 2023 improve)
    The *exponential* (stochastic exponential) Euler scheme, not plain Euler–Maruyama: the
    force is frozen at the start of the step and everything else is integrated exactly,
    the kinetic counterpart of LMC, which freezes the force of the overdamped diffusion,

        x' = x + A(h) u p + h² φ₂(γh) u ∇log π(x) + W₂,    p' = e^{−γh} p + A(h) ∇log π(x) + W₃/u,

    with (W₂, W₃) the exact pair of Brownian integrals over [0, h]. One gradient evaluation
    per step; noise: two N(0, I_d).
Splittings ``"baoab"``, ``"obabo"``, ``"aboba"`` (Leimkuhler & Matthews 2013; Bussi &
    Parrinello 2007 for OBABO)
    Compositions of three exactly solvable pieces, given as *data*: a string of letters in
    :data:`SPLITTINGS` (``A``: drift x ← x + τ u p; ``B``: kick p ← p + τ ∇log π(x); ``O``:
    exact OU p ← e^{−γτ} p + √((1 − e^{−2γτ})/u) ξ). Each letter's sub-steps share the step
    equally (in BAOAB each B and A lasts h/2 and O lasts h; in OBABO each O and B lasts h/2
    and A lasts h). The gradient is evaluated only after an A has moved the position (one
    evaluation per step for BAOAB and OBABO, two for ABOBA, whose step ends on a drift).
    One N(0, I_d) per O.

**Bias** (``bias_order``: the order p of the W2 bias O(h^p) that theory gives):

* randomized midpoint: 1.5, the order of the W2 upper bounds (Shen & Lee 2019; Yu et al.
  2023): Shen & Lee's gradient complexity Õ(κ^{7/6}/ε^{1/3} + κ/ε^{2/3}) is dominated for
  small ε by the second term, from the variance of the random midpoint, which corresponds
  to an error O(h^{3/2}). On Gaussian targets the stationary variance is off by O(h³)
  only: for λ = 1, γ = 2, u = 1, λ·Var x = 1.00016739, 1.00262385, 1.02046507 at
  h = 0.2, 0.5, 1 (ALGORITHMS.md §2b; the tests reproduce these from the kernel's step).
* euler: 1 (Cheng et al. 2018; Dalalyan & Riou-Durand 2020; Yu et al. 2023).
* palindromic splittings: 2 (symmetric Strang splittings are weak order 2; Leimkuhler &
  Matthews 2013). On a Gaussian N(0, 1/λ) BAOAB and ABOBA have *exactly* Var x = 1/λ at any
  stable h, with Var p = (1 − h²uλ/4)/u (BAOAB) and 1/(u(1 − h²uλ/4)) (ABOBA); OBABO has
  Var x = 1/(λ(1 − h²uλ/4)) and exactly Var p = 1/u (ALGORITHMS.md §2c; OBABO: its
  Verlet part preserves the Gaussian with that position variance, its O part preserves
  N(0, 1/u) independent of x).

**Choosing the step size and the friction.** Write L for the largest and m for the smallest
eigenvalue of the Hessian of −log π (its smoothness and strong convexity). With unit mass:

* Friction. Shen & Lee (2019) and Cheng et al. (2018) take γ = 2 with u = 1/L, which by the
  time change t → √L t is unit mass with γ = 2√L (ALGORITHMS.md §2b); their guarantees
  need γ of order √L. γ = 2√m critically damps the flattest direction, which mixes faster on
  well-conditioned Gaussian-like targets but is outside those guarantees. Too small a
  friction makes the chain oscillate (slow, Hamiltonian-like); too large a friction makes it
  diffusive (the high-friction limit is overdamped Langevin slowed down by γ).
* Step size, in units of 1/√L (the period of the stiffest oscillation is 2π/√(uL)). The
  splittings are stable iff h √(u L) < 2, at any friction (their drift-kick part is the
  leapfrog integrator). The limits of the other two depend on the friction (computed from
  the kernels' own linear recursion on a Gaussian with curvature L, unit mass; the
  randomized midpoint in mean square):

  ==========================  ========  ========  ==========  ==========
  γ / √L                      2         1         0.5         0.1
  ==========================  ========  ========  ==========  ==========
  exponential Euler: h √L <   5.0       3.93      1.11        0.21
  randomized midpoint: h √L < 4.03      2.57      1.82        1.13
  ==========================  ========  ========  ==========  ==========

  (the exponential Euler scheme needs roughly h < 2γ/L when γ ≪ √L). Accuracy needs much
  less than stability: Shen & Lee's analysis uses h ≤ 1/√L, and smaller for a target
  accuracy.
* :func:`~langevin.kernels.kinetic_tuning.suggest_kinetic_parameters` estimates L and m and
  suggests γ and h inside every limit above (:mod:`langevin.kernels.kinetic_tuning`).

**Initial momentum.** ``init`` draws it from its stationary law, p = ξ/√u ~ N(0, 1/u)
(``init_noise`` declares ξ ~ N(0, I)), so only the position has to travel to stationarity.

References:
    Shen, R. and Lee, Y. T. (2019). The randomized midpoint method for log-concave sampling.
    NeurIPS.
    Yu, L., Karagulyan, A. and Dalalyan, A. (2023). Langevin Monte Carlo for strongly
    log-concave distributions: randomized midpoint revisited. arXiv:2306.08494.
    Cheng, X., Chatterji, N. S., Bartlett, P. L. and Jordan, M. I. (2018). Underdamped
    Langevin MCMC: a non-asymptotic analysis. COLT.
    Dalalyan, A. and Riou-Durand, L. (2020). On sampling from a log-concave density using
    kinetic Langevin diffusions. Bernoulli 26(3).
    Leimkuhler, B. and Matthews, C. (2013). Rational construction of stochastic numerical
    methods for molecular sampling. Appl. Math. Res. Express 2013(1).
    Bussi, G. and Parrinello, M. (2007). Accurate sampling using Langevin dynamics.
    Phys. Rev. E 75, 056707.
"""

from __future__ import annotations

import numbers
import types
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from langevin.backends.portable import portable
from langevin.kernels.base import Flag, Kernel, Normal, Scalar, Uniform, Vector
from langevin.kernels.ou_integrals import _ou_functions, _pair, _phi1, _rm_integrals

__all__ = ["KineticLangevin", "DISCRETIZATIONS", "SPLITTINGS"]

xp: Any = None  # bound by each backend (see langevin.backends.portable)

#: The splittings, as data: name -> letters (A: drift, B: kick, O: exact OU). Each letter's
#: sub-steps share the step equally. A new splitting is one line here.
SPLITTINGS: dict[str, str] = {
    "baoab": "BAOAB",
    "obabo": "OBABO",
    "aboba": "ABOBA",
}

_DEFAULT_DISCRETIZATION = "randomized_midpoint"
_DEFAULT_FRICTION = 2.0


# -- state, info, params ---------------------------------------------------------------------
class KineticState(NamedTuple):
    """Position, log-density and gradient there, and the momentum."""

    position: Vector
    logdensity: Scalar
    grad: Vector
    momentum: Vector


class KineticInfo(NamedTuple):
    acceptance_rate: Scalar
    diverging: Flag


class KineticInitNoise(NamedTuple):
    """The randomness of ``init``: ξ ~ N(0, I) for the first momentum ξ/√u."""

    normal: Vector


class KineticParams(NamedTuple):
    """Runtime parameters: friction γ and the diagonal inverse mass u (length 1 or dim)."""

    friction: float
    inverse_mass: np.ndarray


@portable
def kinetic_init(position, noise, params, target):
    """State at ``position`` with momentum ``p = ξ/√u ~ N(0, M)`` from ``noise.normal = ξ``."""
    n = params.inverse_mass.shape[0]
    if n != 1 and n != position.shape[0]:
        # shapes are static on every backend: this runs in Python, before any compilation
        raise ValueError(
            f"inverse_mass has {n} entries but the position has {position.shape[0]} "
            "coordinates; give one entry per coordinate, or a scalar"
        )
    logdensity, grad = xp.value_and_grad(target, position)
    momentum = noise.normal / xp.sqrt(params.inverse_mass)
    return KineticState(position, logdensity, grad, momentum)


@portable
def _finish(position, momentum, logdensity, grad, step_size):
    diverging = xp.logical_not(xp.isfinite(logdensity) & xp.all_finite(momentum))
    return KineticState(position, logdensity, grad, momentum), KineticInfo(
        1.0 + 0.0 * step_size, diverging
    )


# -- randomized midpoint ---------------------------------------------------------------------
class RandomizedMidpointNoise(NamedTuple):
    midpoint: Scalar
    normal1: Vector
    normal2: Vector
    normal3: Vector
    normal4: Vector


@portable
def randomized_midpoint_step(state, noise, step_size, params, target):
    """One randomized-midpoint step (module docstring; ALGORITHMS.md §2b)."""
    h = step_size
    gamma = params.friction
    u = params.inverse_mass
    x, p = state.position, state.momentum
    a = noise.midpoint * h
    b = (1.0 - noise.midpoint) * h  # as in rm_brownian_integrals
    ya = gamma * a
    yb = gamma * b
    fa = _ou_functions(ya)
    fb = _ou_functions(yb)
    b1, b2, b3 = _rm_integrals(
        a, b, ya, yb, fa, fb, noise.normal1, noise.normal2, noise.normal3, noise.normal4
    )
    cx = xp.sqrt(2.0 * u / gamma)
    cp = xp.sqrt(2.0 * gamma / u)
    up = u * p
    # A(a) = a φ₁(γa); the frozen-force integral (a − A(a))/γ = a² φ₂(γa)
    x_mid = x + (a * fa[0]) * up + (a * a * fa[1]) * (u * state.grad) + cx * b1
    _, g_mid = xp.value_and_grad(target, x_mid)
    # h (1 − e^{−γ(h−a)})/γ = h b φ₁(γb)
    x_new = x + (h * _phi1(gamma * h)) * up + (h * b * fb[0]) * (u * g_mid) + cx * b2
    p_new = xp.exp(-gamma * h) * p + (h * xp.exp(-yb)) * g_mid + cp * b3
    logdensity, grad = xp.value_and_grad(target, x_new)
    return _finish(x_new, p_new, logdensity, grad, step_size)


# -- exponential Euler (KLMC) ----------------------------------------------------------------
class EulerNoise(NamedTuple):
    normal1: Vector
    normal2: Vector


@portable
def kinetic_euler_step(state, noise, step_size, params, target):
    """One exponential-Euler (KLMC) step: force frozen at x, the rest exact."""
    h = step_size
    gamma = params.friction
    u = params.inverse_mass
    x, p = state.position, state.momentum
    y = gamma * h
    f = _ou_functions(y)
    difference, j = _pair(h, y, f[0], f[1], f[2], noise.normal1, noise.normal2)
    decay_time = h * f[0]  # A(h) = (1 − e^{−γh})/γ
    x_new = (
        x
        + decay_time * (u * p)
        + (h * h * f[1]) * (u * state.grad)
        + xp.sqrt(2.0 * u / gamma) * difference
    )
    p_new = xp.exp(-y) * p + decay_time * state.grad + xp.sqrt(2.0 * gamma / u) * j
    logdensity, grad = xp.value_and_grad(target, x_new)
    return _finish(x_new, p_new, logdensity, grad, step_size)


# -- splittings ------------------------------------------------------------------------------
_LETTER_CODES = {"A": 0, "B": 1, "O": 2}


@portable
def _splitting_step(state, noise, step_size, params, target):
    """Template of a splitting step. Each splitting runs a *copy* of this function whose
    globals hold its own ``_PROGRAM`` (letter codes) and ``_FRACTIONS`` (the share of the step
    each A, B, O sub-step takes). JAX unrolls the loop over the constant tuple when tracing;
    Numba runs it as a loop over a compile-time constant."""
    h = step_size
    gamma = params.friction
    u = params.inverse_mass
    x, p = state.position, state.momentum
    logdensity, grad = state.logdensity, state.grad
    drift = _FRACTIONS[0] * h  # noqa: F821
    kick = _FRACTIONS[1] * h  # noqa: F821
    ou_time = _FRACTIONS[2] * h  # noqa: F821
    decay = xp.exp(-gamma * ou_time)
    spread = xp.sqrt(-xp.expm1(-2.0 * gamma * ou_time) / u)
    fresh = True  # grad is the gradient at x
    k = 0
    for code in _PROGRAM:  # noqa: F821
        if code == 0:  # A: drift
            x = x + drift * (u * p)
            fresh = False
        elif code == 1:  # B: kick, with the gradient at the current x
            if not fresh:
                logdensity, grad = xp.value_and_grad(target, x)
                fresh = True
            p = p + kick * grad
        else:  # O: exact Ornstein–Uhlenbeck step of the momentum
            p = decay * p + spread * noise[k]
            k += 1
    if not fresh:
        logdensity, grad = xp.value_and_grad(target, x)
    return _finish(x, p, logdensity, grad, step_size)


# -- the kernels -----------------------------------------------------------------------------
def _check_positive_float(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a positive float; got {value!r}")
    if not (value > 0 and value < float("inf")):
        raise ValueError(f"{owner}: {name} must be positive and finite; got {value!r}")
    return float(value)


def _check_inverse_mass(owner: str, value: Any) -> float | tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{owner}: inverse_mass must be None, a float or a 1-D array; got bool")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{owner}: inverse_mass must be None, a positive float or a 1-D array of them; "
            f"got {value!r}"
        ) from None
    if arr.ndim > 1 or arr.size == 0:
        raise ValueError(
            f"{owner}: inverse_mass must be a scalar or a non-empty 1-D array (the diagonal "
            f"of M⁻¹); got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)) or not np.all(arr > 0):
        raise ValueError(f"{owner}: inverse_mass must be positive and finite; got {value!r}")
    return float(arr) if arr.ndim == 0 else tuple(float(v) for v in arr)


def _discretization_class(name: Any) -> type:
    if not isinstance(name, str):
        raise TypeError(f"discretization must be a string; got {name!r}")
    try:
        return DISCRETIZATIONS[name]
    except KeyError:
        valid = ", ".join(repr(k) for k in DISCRETIZATIONS)
        raise ValueError(f"discretization must be one of {valid}; got {name!r}") from None


@dataclass(frozen=True, repr=False)
class KineticLangevin(Kernel):
    """Kinetic (underdamped) Langevin: ``dx = u p dt, dp = ∇log π dt − γp dt + √(2γ/u) dW``.

    **Biased** (no MH correction): the stationary law differs from π by O(h^bias_order);
    the module docstring gives the update rules, biases, stability limits and references.
    ``KineticLangevin(...)`` returns an instance of the class of the chosen discretization
    (:data:`DISCRETIZATIONS`), a subclass of ``KineticLangevin``.

    Args:
        step_size: h > 0 (not adapted during warm-up).
        friction: γ > 0. The default 2 is Shen & Lee's choice for targets scaled so that the
            largest Hessian eigenvalue of −log π is about 1; in general γ = 2√L (their
            guarantees) or 2√m (critical damping of the flattest direction).
        discretization: ``"randomized_midpoint"`` (default), ``"euler"`` (exponential Euler,
            KLMC), or a splitting: ``"baoab"``, ``"obabo"``, ``"aboba"``.
        inverse_mass: the diagonal u of M⁻¹: None (unit mass), a positive float, or a
            positive array of length dim. A good choice is the target's marginal variances
            (u_i = Var π(x_i)), which rescales every coordinate to unit scale.

    Step size and friction: h of about 0.5/√L and γ = 2√L are a safe start (the splittings
    are stable for h√(uL) < 2). :func:`~langevin.suggest_kinetic_parameters` estimates L and
    m and returns both.

    The chains start with a momentum drawn from its stationary law N(0, M).

    Example:
        >>> import langevin
        >>> kernel = langevin.KineticLangevin(0.5, friction=2.0, discretization="baoab")
        >>> kernel
        KineticLangevin(step_size=0.5, friction=2.0, discretization='baoab')
        >>> isinstance(kernel, langevin.KineticLangevin)
        True
        >>> trace = langevin.sample(langevin.targets.gaussian(2), kernel, chains=2,
        ...                         warmup=100, draws=200, progress=False, seed=0)
    """

    step_size: float
    friction: float = _DEFAULT_FRICTION
    discretization: str = _DEFAULT_DISCRETIZATION
    inverse_mass: Any = None

    State = KineticState
    Info = KineticInfo
    init_math = staticmethod(kinetic_init)
    exact = False
    #: The discretization a concrete class implements (None on the dispatching base).
    discretization_name: ClassVar[str | None] = None
    public_name = "KineticLangevin"
    stability_advice = (
        "reduce the step size: the splittings are stable only for h·√(u·L) < 2 (u the inverse "
        "mass, L the largest curvature of -log π); langevin.suggest_kinetic_parameters "
        "estimates L"
    )

    def init_noise(self, dim: int) -> KineticInitNoise:
        """The first momentum's standard normal draws (``p = ξ/√u``)."""
        return KineticInitNoise(Normal((dim,)))

    def __new__(cls, *args: Any, **kwargs: Any) -> KineticLangevin:
        if cls is KineticLangevin:
            name = kwargs.get(
                "discretization", args[2] if len(args) > 2 else _DEFAULT_DISCRETIZATION
            )
            cls = _discretization_class(name)
        return object.__new__(cls)

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = "KineticLangevin"
        object.__setattr__(
            self, "friction", _check_positive_float(owner, "friction", self.friction)
        )
        if self.discretization != self.discretization_name:
            _discretization_class(self.discretization)  # an unknown name: list the valid ones
            raise ValueError(
                f"{type(self).__name__} implements discretization="
                f"{self.discretization_name!r}, not {self.discretization!r}; use "
                f"KineticLangevin(..., discretization={self.discretization!r})"
            )
        object.__setattr__(self, "inverse_mass", _check_inverse_mass(owner, self.inverse_mass))

    def __repr__(self) -> str:
        parts = [
            f"step_size={self.step_size!r}",
            f"friction={self.friction!r}",
            f"discretization={self.discretization!r}",
        ]
        if self.inverse_mass is not None:
            parts.append(f"inverse_mass={self.inverse_mass!r}")
        return f"KineticLangevin({', '.join(parts)})"

    def params(self) -> KineticParams:
        u = 1.0 if self.inverse_mass is None else self.inverse_mass
        return KineticParams(self.friction, np.atleast_1d(np.asarray(u, dtype=np.float64)))

    @classmethod
    def variants(cls) -> tuple[type, ...]:
        """The concrete kernel class of every discretization (what the conformance suite
        runs)."""
        return tuple(DISCRETIZATIONS.values())


@dataclass(frozen=True, repr=False)
class KineticRandomizedMidpoint(KineticLangevin):
    """Kinetic Langevin, randomized midpoint (Shen & Lee 2019): see :class:`KineticLangevin`."""

    discretization: str = "randomized_midpoint"

    discretization_name = "randomized_midpoint"
    Noise = RandomizedMidpointNoise
    step_math = staticmethod(randomized_midpoint_step)
    bias_order = 1.5

    def noise(self, dim: int) -> RandomizedMidpointNoise:
        return RandomizedMidpointNoise(Uniform(()), *(Normal((dim,)),) * 4)


@dataclass(frozen=True, repr=False)
class KineticEuler(KineticLangevin):
    """Kinetic Langevin, exponential Euler / KLMC (Cheng et al. 2018; Yu et al. 2023): see
    :class:`KineticLangevin`."""

    discretization: str = "euler"

    discretization_name = "euler"
    Noise = EulerNoise
    step_math = staticmethod(kinetic_euler_step)
    bias_order = 1.0

    def noise(self, dim: int) -> EulerNoise:
        return EulerNoise(Normal((dim,)), Normal((dim,)))


def _splitting_kernel(name: str, letters: str) -> type:
    """The kernel class of splitting ``letters`` (e.g. ``"BAOAB"``), registered under ``name``.

    The class is named after the letters (``KineticBAOAB``): the Numba backend keys its
    compiled loops, in memory and on disk, by the class name, so two splittings never share
    a cached loop.
    """
    if not letters or set(letters) - set(_LETTER_CODES) or set(_LETTER_CODES) - set(letters):
        raise ValueError(f"splitting {name!r}: letters must use each of A, B, O; got {letters!r}")
    n_o = letters.count("O")
    noise_cls = NamedTuple(f"Kinetic{letters}Noise", [(f"ou{i + 1}", Vector) for i in range(n_o)])
    noise_cls.__module__ = __name__
    # The step: the template's code with this splitting's program among its globals.
    step_globals = dict(globals())
    step_globals["_PROGRAM"] = tuple(_LETTER_CODES[c] for c in letters)
    step_globals["_FRACTIONS"] = tuple(1.0 / letters.count(c) for c in "ABO")
    step = types.FunctionType(_splitting_step.__code__, step_globals, f"{name}_step", None, None)
    step.__qualname__ = f"{name}_step"
    step.__doc__ = f"One {letters} step (the splitting template with program {letters!r})."
    portable(step)

    def noise(self: Any, dim: int) -> NamedTuple:
        return noise_cls(*(Normal((dim,)),) * n_o)

    palindrome = letters == letters[::-1]
    namespace = {
        "__module__": __name__,
        "__qualname__": f"Kinetic{letters}",
        "__doc__": (
            f"Kinetic Langevin, {letters} splitting: see :class:`KineticLangevin`. "
            f"Sub-steps {' '.join(letters)}; bias order {2 if palindrome else 1}."
        ),
        "__annotations__": {"discretization": "str"},
        "discretization": name,
        "discretization_name": name,
        "letters": letters,
        "Noise": noise_cls,
        "step_math": staticmethod(step),
        # symmetric (Strang) compositions are weak order 2, others order 1
        "bias_order": 2.0 if palindrome else 1.0,
        "noise": noise,
    }
    cls = dataclass(frozen=True, repr=False)(
        type(f"Kinetic{letters}", (KineticLangevin,), namespace)
    )
    # module attributes, so that pickling (Numba's on-disk cache index) finds them by name
    globals()[noise_cls.__name__] = noise_cls
    globals()[cls.__name__] = cls
    return cls


#: Every discretization: name -> kernel class.
DISCRETIZATIONS: dict[str, type] = {
    "randomized_midpoint": KineticRandomizedMidpoint,
    "euler": KineticEuler,
}
for _name, _letters in SPLITTINGS.items():
    DISCRETIZATIONS[_name] = _splitting_kernel(_name, _letters)
del _name, _letters
