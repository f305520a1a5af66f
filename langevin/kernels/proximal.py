"""Moreau–Yosida proximal Langevin: MYULA and its Metropolis-corrected MYMALA.

For a composite target π ∝ exp(−f − g) (f smooth, g convex and possibly nonsmooth: an L1
prior, the indicator of a box; :func:`langevin.targets.composite.composite`), g is replaced by
its Moreau–Yosida envelope

    g_λ(x) = min_u g(u) + ‖u − x‖²/(2λ) = g(p) + ‖x − p‖²/(2λ),   p = prox_{λg}(x),
    ∇g_λ(x) = (x − p)/λ,

which is convex with a (1/λ)-Lipschitz gradient, and the kernels target the smoothed law

    π_λ ∝ exp(−f − g_λ),        π_λ → π as λ → 0

(Durmus, Moulines & Pereyra 2018; Pereyra 2016). **π_λ, not π, is what these kernels
sample**; its bias against π is O(λ) in total variation for a Lipschitz g (their
Prop. 3.1: 0 ≤ g − g_λ ≤ λ‖g‖²_Lip/2) and O(√λ) for the indicator of a convex set (Brosse,
Durmus, Moulines & Pereyra 2017): see ``smoothing_bias_order`` on the penalty, and
:func:`langevin.proximal.smoothing_for_bias` to choose λ from a tolerated bias. On a product
Laplace the bias of the moments is in fact O(λ²) (the envelope differs from g by the constant
λt²/2 outside a band of width O(λ)); the tests measure both orders.

**MYULA** (Durmus, Moulines & Pereyra 2018, eq. (13)) is the unadjusted Langevin step on
π_λ:

    x' = x + h ∇log π_λ(x) + √(2h) ξ = x − h∇f(x) − (h/λ)(x − prox_{λg}(x)) + √(2h) ξ.

It is biased in h as well (ULA's O(h^{1/2}) W2 bound for gradient-Lipschitz potentials,
Durmus & Moulines 2019; O(h) with a Lipschitz Hessian, which −log π_λ lacks at the kinks of
g_λ). Durmus et al. recommend h ≤ λ/(λL_f + 1) for stability. With g ≡ 0 it is ULA exactly.

**MYMALA** (P-MALA of Pereyra 2016 with the Moreau–Yosida envelope) takes the same point as
a proposal and accepts it with MALA's Metropolis–Hastings ratio on π_λ: it leaves π_λ
*exactly* invariant (its ``exact`` declaration refers to π_λ), with no bias in h, and only the
smoothing bias in λ remains.

The state caches log π_λ and ∇log π_λ at the position (``logdensity``, ``grad``): one
value-and-gradient of f, one prox and one evaluation of g per step. The target needs the
capabilities ``value_and_grad`` (of f), ``prox`` and ``nonsmooth`` (g).

Randomness per step: MYULA one N(0, I_d); MYMALA one N(0, I_d) and one U[0, 1).

References:
    Durmus, A., Moulines, É. and Pereyra, M. (2018). Efficient Bayesian computation by
    proximal Markov chain Monte Carlo: when Langevin meets Moreau. SIAM J. Imaging Sci.
    11(1), 473–506.
    Pereyra, M. (2016). Proximal Markov chain Monte Carlo algorithms. Stat. Comput. 26.
    Brosse, N., Durmus, A., Moulines, É. and Pereyra, M. (2017). Sampling from a log-concave
    distribution with compact support with proximal Langevin Monte Carlo. COLT.
    Durmus, A. and Moulines, É. (2019). High-dimensional Bayesian inference via the
    unadjusted Langevin algorithm. Bernoulli 25(4A).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from langevin.adaptation.dual_averaging import DualAveraging
from langevin.backends.portable import portable
from langevin.kernels.base import GradientState, Kernel, Normal, Scalar, Uniform, Vector
from langevin.kernels.mh import MHInfo, metropolis_hastings
from langevin.kernels.overdamped import ULAInfo

__all__ = ["MYULA", "MYMALA", "SmoothingParams", "moreau_yosida", "check_smoothing"]

xp: Any = None


class SmoothingParams(NamedTuple):
    smoothing: Scalar  # λ > 0


class MYULANoise(NamedTuple):
    normal: Vector


class MYMALANoise(NamedTuple):
    normal: Vector
    uniform: Scalar


@portable
def moreau_yosida(target, x, lam):
    """``(log π_λ(x), ∇log π_λ(x))`` with log π_λ = log e^{−f} − g_λ (up to a constant)."""
    logf, gradf = xp.value_and_grad(target, x)
    p = xp.prox(target, x, lam)
    r = x - p
    value = logf - xp.nonsmooth(target, p) - xp.sum(r * r) / (2.0 * lam)
    return value, gradf - r / lam


@portable
def init_smoothed_state(position, noise, params, target):
    lp, grad = moreau_yosida(target, position, params.smoothing)
    return GradientState(position, lp, grad)


@portable
def myula_step(state, noise, step_size, params, target):
    """MYULA: the Euler–Maruyama step on π_λ, always taken."""
    y = state.position + step_size * state.grad + xp.sqrt(2.0 * step_size) * noise.normal
    lp, grad = moreau_yosida(target, y, params.smoothing)
    diverging = xp.logical_not(xp.isfinite(lp))
    return GradientState(y, lp, grad), ULAInfo(1.0 + 0.0 * step_size, diverging)


@portable
def mymala_step(state, noise, step_size, params, target):
    """MYMALA: MYULA's point as a proposal, MALA's Metropolis–Hastings ratio on π_λ."""
    x = state.position
    y = x + step_size * state.grad + xp.sqrt(2.0 * step_size) * noise.normal
    lp, grad = moreau_yosida(target, y, params.smoothing)
    forward = y - x - step_size * state.grad
    backward = x - y - step_size * grad
    log_ratio = (
        lp
        - state.logdensity
        + (xp.sum(forward * forward) - xp.sum(backward * backward)) / (4.0 * step_size)
    )
    accepted, probability = metropolis_hastings(log_ratio, noise.uniform)
    diverging = xp.logical_not(xp.isfinite(lp))
    proposal = GradientState(y, lp, grad)
    return xp.select_tree(accepted, proposal, state), MHInfo(probability, accepted, diverging)


def check_smoothing(owner: str, value: Any) -> float:
    """``value`` as a positive finite float, or an error naming ``smoothing``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: smoothing must be a positive float; got {value!r}")
    if not (value > 0 and value < float("inf")):
        raise ValueError(f"{owner}: smoothing must be positive and finite; got {value!r}")
    return float(value)


def _example_target(dim: int):
    """A composite on which the proximal kernels run: a correlated Gaussian f and an L1 g."""
    import numpy as np

    from langevin.proximal.penalties import l1
    from langevin.targets.composite import composite
    from langevin.targets.gaussians import gaussian

    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    cov = q @ np.diag(np.geomspace(1.0, 0.1, dim)) @ q.T
    return composite(
        gaussian(dim, mean=rng.standard_normal(dim), cov=0.5 * (cov + cov.T)),
        l1(np.linspace(0.5, 2.0, dim)),
        name=f"gaussian_l1_{dim}d",
    )


@dataclass(frozen=True)
class MYULA(Kernel):
    """Moreau–Yosida unadjusted Langevin (Durmus, Moulines & Pereyra 2018). **Biased.**

    ``x' = x − h∇f(x) − (h/λ)(x − prox_{λg}(x)) + √(2h) ξ`` on a composite target
    (:func:`langevin.targets.composite.composite`). It samples (approximately, with an
    O(h^{bias_order}) error) the *smoothed* π_λ ∝ exp(−f − g_λ), not π: the smoothing adds
    a bias of order λ^p, p = the penalty's ``smoothing_bias_order`` (1 for a Lipschitz g,
    1/2 for an indicator). See the module docstring.

    Args:
        step_size: h > 0 (not adapted during warm-up). Keep h ≤ λ/(λL_f + 1).
        smoothing: λ > 0, the Moreau–Yosida parameter (a runtime value: changing it
            compiles nothing). :func:`langevin.proximal.smoothing_for_bias` picks it from a
            tolerated bias for L1 and box penalties.

    Example:
        >>> import langevin
        >>> from langevin.proximal import l1
        >>> from langevin.targets.composite import composite, flat
        >>> laplace = composite(flat(2), l1(1.0))        # π ∝ exp(−|x₁| − |x₂|)
        >>> trace = langevin.sample(laplace, MYULA(0.05, smoothing=0.1), warmup=100,
        ...                         draws=200, progress=False, seed=0)
    """

    step_size: float
    smoothing: float = 0.1

    State = GradientState
    Info = ULAInfo
    Noise = MYULANoise
    init_math = staticmethod(init_smoothed_state)
    step_math = staticmethod(myula_step)
    exact = False
    bias_order = 0.5
    #: the law the kernel targets: π_λ, not π
    samples: ClassVar[str] = "pi_lambda"
    #: order of π_λ's bias in λ: 1 for a Lipschitz g, 1/2 for an indicator (the penalty's
    #: ``smoothing_bias_order`` says which).
    smoothing_bias_order: ClassVar[dict] = {"lipschitz": 1.0, "indicator": 0.5}
    requires = frozenset({"value_and_grad", "prox", "nonsmooth"})

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "smoothing", check_smoothing(self.name, self.smoothing))

    def noise(self, dim: int) -> MYULANoise:
        return MYULANoise(Normal((dim,)))

    def params(self) -> SmoothingParams:
        return SmoothingParams(self.smoothing)

    #: a step size that is stable on :meth:`example_target` (h (L_f + 1/λ) < 1)
    example_step_size: ClassVar[float] = 0.02

    @classmethod
    def example_target(cls, dim: int):
        """A target this kernel runs on (a Gaussian f with an L1 g), for docs and tests."""
        return _example_target(dim)


@dataclass(frozen=True)
class MYMALA(Kernel):
    """Metropolis-adjusted MYULA (P-MALA; Pereyra 2016, Durmus et al. 2018): exactly
    invariant for the **smoothed** π_λ ∝ exp(−f − g_λ), not for π.

    The bias against π is the smoothing's alone, of order λ^p (p = 1 for a Lipschitz g, 1/2
    for an indicator). During warm-up ``step_size`` is the starting point of dual averaging
    toward ``target_acceptance`` (0.574, MALA's).

    Args:
        step_size: h > 0 (the initial value when warm-up adapts it).
        smoothing: λ > 0, the Moreau–Yosida parameter.
    """

    step_size: float
    smoothing: float = 0.1

    State = GradientState
    Info = MHInfo
    Noise = MYMALANoise
    init_math = staticmethod(init_smoothed_state)
    step_math = staticmethod(mymala_step)
    exact = True  # for π_λ
    bias_order = None
    samples: ClassVar[str] = "pi_lambda"
    smoothing_bias_order: ClassVar[dict] = {"lipschitz": 1.0, "indicator": 0.5}
    adaptation = (DualAveraging,)
    target_acceptance = 0.574
    requires = frozenset({"value_and_grad", "prox", "nonsmooth"})

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "smoothing", check_smoothing(self.name, self.smoothing))

    def noise(self, dim: int) -> MYMALANoise:
        return MYMALANoise(Normal((dim,)), Uniform(()))

    def params(self) -> SmoothingParams:
        return SmoothingParams(self.smoothing)

    #: a step size that is stable on :meth:`example_target` (h (L_f + 1/λ) < 1)
    example_step_size: ClassVar[float] = 0.02

    @classmethod
    def example_target(cls, dim: int):
        """A target this kernel runs on (a Gaussian f with an L1 g), for docs and tests."""
        return _example_target(dim)
