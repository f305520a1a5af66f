"""Stochastic-gradient MCMC: SGLD, SGHMC, pSGLD, SGNHT and their control-variate versions.

The target is a posterior over ``n`` data points (a :class:`~langevin.targets.data_targets.
DataTarget`, or any target with the ``loglik`` and ``logprior`` capabilities):

    log π(θ) = log p(θ) + Σ_{i=1}^{n} log p(d_i | θ).

Each step draws a minibatch ``B`` of ``b`` distinct indices (``Index(n, b)`` noise: uniform
without replacement, Floyd's algorithm, the same numbers on both backends) and uses the
unbiased estimate

    ĝ(θ) = ∇log p(θ) + (n/b) Σ_{i∈B} ∇log p(d_i | θ)                               (1)

in place of ∇log π. The chain is a deterministic function of its noise, so the backends
agree to round-off on the same noise. The state keeps ĝ at its own position (computed with
the batch drawn at the step that moved there; ``init`` draws its own batch), exactly as
ULA keeps ∇log π: with ``b = n`` SGLD *is* ULA.

**Control variates** (Baker, Fearnhead, Fox & Nemeth 2019). Around a fixed point θ̂ near the
mode (:func:`find_mode`), with the full-data ``∇ℓ(θ̂) = Σ_i ∇log p(d_i | θ̂)`` computed once,

    ĝ_cv(θ) = ∇log p(θ) + ∇ℓ(θ̂) + (n/b) Σ_{i∈B} [∇log p(d_i | θ) − ∇log p(d_i | θ̂)],     (2)

unbiased too, with a variance that vanishes as θ → θ̂: two per-datum gradients per datum
instead of one, but the posterior-scale noise of (1) (O(n²/b)) drops to O(n²‖θ − θ̂‖²/b).

**Step-size schedules.** ``h_t = step_size · (1 + t/decay)^(−gamma)`` at iteration ``t``
(``t`` counts steps since ``init`` and lives in the state); ``gamma = 0`` is a constant
step. Welling & Teh's ``ε_t = a (b + t)^(−γ)`` is ``decay = b``, ``step_size = a b^(−γ)/2``
(their ε is 2h: their update is θ + (ε/2)ĝ + N(0, ε)); they use γ = 0.55.

**Kernels** (all with the conventions ∇log π, not ∇U, and unit mass):

* :class:`SGLD` (Welling & Teh 2011): ``θ' = θ + h ĝ(θ) + √(2h) ξ``.
* :class:`SGHMC` (Chen, Fox & Guestrin 2014, Alg. 2 with M = I): friction ``C`` and the
  noise-estimate correction ``B̂ = ½ h V̂``, with ``V̂`` the user's estimate of the per-
  coordinate variance of ĝ:

      r' = (1 − hC) r + h ĝ(θ) + √(2 (C − B̂) h) ξ,        θ' = θ + h r'.

  (This is the paper's Alg. 2 relabelled by half a step: it stores r after the kick.)
  As ``h → 0`` with ``B̂`` matching the gradient noise, π is invariant. The paper's
  "SGD with momentum" parametrisation is ``η = h²``, ``α = hC``, ``v = h r``.
* :class:`PSGLD` (Li, Chen, Carlson & Carin 2016, Alg. 1): RMSprop preconditioner in the
  state, ``V ← α V + (1 − α) ḡ ⊙ ḡ`` with ``ḡ = (1/b) Σ_{i∈B} ∇log p(d_i | θ)`` the mean
  per-datum gradient, ``G = diag(1 / (λ + √V))``, and

      θ' = θ + h G ĝ(θ) + √(2h) G^{1/2} ξ.

  The correction term ``Γ(θ) = Σ_j ∂G_ij/∂θ_j`` is **dropped, as the paper does in its
  experiments** (its §3: with α close to 1, G changes slowly and Γ is small; keeping it needs
  second derivatives). The stationary law therefore carries an extra bias besides O(h).
* :class:`SGNHT` (Ding, Fang, Babbush, Chen, Skeel & Neven 2014, Alg. 2): a thermostat ξ
  that adapts the friction to the unknown gradient noise:

      p' = p − ξ p h + h ĝ(θ) + √(2 A h) η,   θ' = θ + h p',   ξ' = ξ + h (p'ᵀp'/d − 1).

* :class:`SGLDCV`, :class:`SGHMCCV`: SGLD and SGHMC with the estimate (2).

**Gradient-noise statistics.** Built with ``gradient_noise=True``, a kernel reports in its
info field ``gradient_noise`` an estimate of ``tr Cov(ĝ | θ)``, the total variance of the
minibatch gradient at the step's new position (by default the field is NaN and the step
does not compute it: it is a diagnostic, and on JAX its two half-batch ``loglik`` calls
cost 1.3-1.7× one whole-batch call; the chain is the same either way, up to the order of
summation). The batch is split into its even and odd positions (``b₁ = ⌈b/2⌉``,
``b₂ = ⌊b/2⌋`` items); with ``ḡ_k`` the mean per-datum gradient (or gradient difference,
for control variates) of half k,

    S² = ‖ḡ₁ − ḡ₂‖² / (1/b₁ + 1/b₂),       tr Cov(ĝ) ≈ n² (1 − b/n) S² / b,

the finite-population variance of a without-replacement sample mean. For a uniformly random
split of the batch ``E[S²]`` is the population variance of the per-datum gradients; Floyd's
algorithm does not order the batch uniformly (position k excludes the last ``b − k − 1``
indices), which leaves an O(b/n) relative bias when the data are sorted — negligible for
b ≪ n. With ``b = 1`` the estimate is NaN.

Randomness per step: the minibatch ``Index(n, b)`` and ``d`` normals (all kernels).

When **not** to use these kernels: when the full gradient is affordable (use MALA/HMC:
exact), or when you need unbiased posterior expectations — at a fixed step size every
kernel here is biased (O(h) plus a term proportional to the gradient noise; §4a of
ALGORITHMS.md gives the closed form on a conjugate Gaussian model).

References:
    Welling, M. and Teh, Y. W. (2011). Bayesian learning via stochastic gradient Langevin
    dynamics. ICML.
    Chen, T., Fox, E. B. and Guestrin, C. (2014). Stochastic gradient Hamiltonian Monte
    Carlo. ICML.
    Ding, N., Fang, Y., Babbush, R., Chen, C., Skeel, R. D. and Neven, H. (2014). Bayesian
    sampling using stochastic gradient thermostats. NeurIPS.
    Li, C., Chen, C., Carlson, D. and Carin, L. (2016). Preconditioned stochastic gradient
    Langevin dynamics for deep neural networks. AAAI.
    Baker, J., Fearnhead, P., Fox, E. B. and Nemeth, C. (2019). Control variates for
    stochastic gradient MCMC. Statistics and Computing 29.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np

from langevin.backends.portable import bind_globals, portable
from langevin.kernels.base import Flag, Index, Integer, Kernel, Normal, Scalar, Vector

__all__ = [
    "SGLD", "SGLDCV", "SGHMC", "SGHMCCV", "PSGLD", "SGNHT", "Mode", "find_mode",
    "SGState", "SGInfo",
]  # fmt: skip

xp: Any = None


# -- states, infos, noise ----------------------------------------------------------------------
class SGState(NamedTuple):
    """Position, the minibatch estimates of log π and ∇log π there, the iteration count."""

    position: Vector
    logdensity: Scalar
    grad: Vector
    iteration: Integer


class SGHMCState(NamedTuple):
    position: Vector
    momentum: Vector
    logdensity: Scalar
    grad: Vector
    iteration: Integer


class PSGLDState(NamedTuple):
    position: Vector
    square_avg: Vector  # V: the RMSprop average of ḡ ⊙ ḡ
    logdensity: Scalar
    grad: Vector
    iteration: Integer


class SGNHTState(NamedTuple):
    position: Vector
    momentum: Vector
    thermostat: Scalar
    logdensity: Scalar
    grad: Vector
    iteration: Integer


class SGInfo(NamedTuple):
    """``scheduled_step``: the step size used; ``gradient_noise``: the estimate of
    tr Cov(ĝ) at the new position (see the module docstring)."""

    acceptance_rate: Scalar
    diverging: Flag
    scheduled_step: Scalar
    gradient_noise: Scalar


class SGNoise(NamedTuple):
    batch: Vector  # the declaration (Index) types it: b int64 indices
    normal: Vector


class SGInitNoise(NamedTuple):
    batch: Vector


class MomentumInitNoise(NamedTuple):
    batch: Vector
    normal: Vector


# -- params --------------------------------------------------------------------------------------
class SGLDParams(NamedTuple):
    n_data: Any
    decay: Any
    gamma: Any


class CVParams(NamedTuple):
    n_data: Any
    decay: Any
    gamma: Any
    centre: Any  # θ̂ (dim,)
    centre_grad: Any  # Σ_i ∇log p(d_i | θ̂) (dim,)
    centre_loglik: Any  # Σ_i log p(d_i | θ̂)


class SGHMCParams(NamedTuple):
    n_data: Any
    decay: Any
    gamma: Any
    friction: Any
    noise_estimate: Any


class SGHMCCVParams(NamedTuple):
    n_data: Any
    decay: Any
    gamma: Any
    friction: Any
    noise_estimate: Any
    centre: Any
    centre_grad: Any
    centre_loglik: Any


class PSGLDParams(NamedTuple):
    n_data: Any
    decay: Any
    gamma: Any
    alpha: Any
    lam: Any


class SGNHTParams(NamedTuple):
    n_data: Any
    decay: Any
    gamma: Any
    diffusion: Any


class Estimate(NamedTuple):
    logdensity: Any
    grad: Any
    prior_grad: Any
    noise: Any


# -- the gradient estimators ---------------------------------------------------------------------
@portable
def batch_halves(batch):
    """The batch's even and odd positions (two index arrays of ⌈b/2⌉ and ⌊b/2⌋ items)."""
    b = batch.shape[0]
    b1 = (b + 1) // 2
    first = xp.take(batch, 2 * xp.arange(b1))
    second = xp.take(batch, 2 * xp.arange(b - b1) + 1)
    return first, second


@portable
def noise_from_halves(g1, g2, b, n_data):
    """tr Cov(ĝ) ≈ n² (1 − b/n) S²/b from the half sums ``g1``, ``g2`` (module docstring)."""
    b1 = (b + 1) // 2
    b2 = b - b1
    b2_safe = xp.maximum(b2, 1) + 0.0
    diff = g1 / b1 - g2 / b2_safe
    s2 = xp.sum(diff * diff) / (1.0 / b1 + 1.0 / b2_safe)
    value = n_data * n_data * (1.0 - b / n_data) * s2 / b
    return xp.where(b2 > 0, value, xp.nan)


@portable
def minibatch_estimate(target, x, batch, params):
    """Estimate (1): ``∇log p(θ) + (n/b) Σ_B ∇log p(d_i | θ)`` and the matching log π, from
    one ``loglik`` call on the whole batch (no gradient-noise estimate: ``noise`` is NaN)."""
    b = batch.shape[0]
    lb, gb = xp.loglik(target, x, batch)
    lp, gp = xp.logprior(target, x)
    scale = params.n_data / b
    return Estimate(lp + scale * lb, gp + scale * gb, gp, xp.nan + 0.0 * lb)


@portable
def minibatch_estimate_with_noise(target, x, batch, params):
    """Estimate (1) from the batch's two halves, and the gradient-noise estimate (module
    docstring) from their difference."""
    b = batch.shape[0]
    first, second = batch_halves(batch)
    l1, g1 = xp.loglik(target, x, first)
    l2, g2 = xp.loglik(target, x, second)
    lp, gp = xp.logprior(target, x)
    scale = params.n_data / b
    grad = gp + scale * (g1 + g2)
    return Estimate(lp + scale * (l1 + l2), grad, gp, noise_from_halves(g1, g2, b, params.n_data))


@portable
def control_variate_estimate(target, x, batch, params):
    """Estimate (2) around ``params.centre``: ``∇log p(θ) + ∇ℓ(θ̂) + (n/b) Σ_B [∇ℓ_i(θ) −
    ∇ℓ_i(θ̂)]``, and the matching log π (whole batch; ``noise`` is NaN)."""
    b = batch.shape[0]
    lb, gb = xp.loglik(target, x, batch)
    cb, hb = xp.loglik(target, params.centre, batch)
    lp, gp = xp.logprior(target, x)
    scale = params.n_data / b
    grad = gp + params.centre_grad + scale * (gb - hb)
    logdensity = lp + params.centre_loglik + scale * (lb - cb)
    return Estimate(logdensity, grad, gp, xp.nan + 0.0 * lb)


@portable
def control_variate_estimate_with_noise(target, x, batch, params):
    """Estimate (2) from the batch's two halves, and the gradient-noise estimate."""
    b = batch.shape[0]
    first, second = batch_halves(batch)
    l1, g1 = xp.loglik(target, x, first)
    l2, g2 = xp.loglik(target, x, second)
    c1, h1 = xp.loglik(target, params.centre, first)
    c2, h2 = xp.loglik(target, params.centre, second)
    lp, gp = xp.logprior(target, x)
    scale = params.n_data / b
    d1 = g1 - h1
    d2 = g2 - h2
    grad = gp + params.centre_grad + scale * (d1 + d2)
    logdensity = lp + params.centre_loglik + scale * (l1 + l2 - c1 - c2)
    return Estimate(logdensity, grad, gp, noise_from_halves(d1, d2, b, params.n_data))


@portable
def scheduled_step(step_size, iteration, params):
    """``h_t = step_size · (1 + t/decay)^(−gamma)``."""
    return step_size * xp.exp(-params.gamma * xp.log1p(iteration / params.decay))


@portable
def diverged(logdensity, position):
    return xp.logical_not(xp.isfinite(logdensity) & xp.all_finite(position))


# -- SGLD -------------------------------------------------------------------------------------
@portable
def sg_init(position, noise, params, target):
    """State at ``position`` with the estimate from the init batch."""
    est = estimate(target, position, noise.batch, params)  # noqa: F821 (bound per kernel)
    return SGState(position, est.logdensity, est.grad, 0)


@portable
def sgld_step(state, noise, step_size, params, target):
    """SGLD: ``θ' = θ + h ĝ(θ) + √(2h) ξ``, then ĝ at θ' from this step's batch."""
    h = scheduled_step(step_size, state.iteration, params)
    x = state.position + h * state.grad + xp.sqrt(2.0 * h) * noise.normal
    est = estimate(target, x, noise.batch, params)  # noqa: F821 (bound per kernel)
    info = SGInfo(1.0 + 0.0 * h, diverged(est.logdensity, x), h, est.noise)
    return SGState(x, est.logdensity, est.grad, state.iteration + 1), info


# -- SGHMC -----------------------------------------------------------------------------------
@portable
def sghmc_init(position, noise, params, target):
    """State at ``position``; momentum r ~ N(0, I) from the init noise."""
    est = estimate(target, position, noise.batch, params)  # noqa: F821 (bound per kernel)
    return SGHMCState(position, noise.normal, est.logdensity, est.grad, 0)


@portable
def sghmc_step(state, noise, step_size, params, target):
    """SGHMC: ``r' = (1 − hC) r + h ĝ + √(2(C − B̂)h) ξ``, ``θ' = θ + h r'``, B̂ = ½ h V̂."""
    h = scheduled_step(step_size, state.iteration, params)
    b_hat = 0.5 * h * params.noise_estimate
    scale = xp.sqrt(2.0 * xp.maximum(params.friction - b_hat, 0.0) * h)
    r = (1.0 - h * params.friction) * state.momentum + h * state.grad + scale * noise.normal
    x = state.position + h * r
    est = estimate(target, x, noise.batch, params)  # noqa: F821 (bound per kernel)
    info = SGInfo(1.0 + 0.0 * h, diverged(est.logdensity, x), h, est.noise)
    return SGHMCState(x, r, est.logdensity, est.grad, state.iteration + 1), info


# -- pSGLD -----------------------------------------------------------------------------------
@portable
def psgld_init(position, noise, params, target):
    """State at ``position``: V = (1 − α) ḡ ⊙ ḡ from the init batch (V starts at 0)."""
    est = estimate(target, position, noise.batch, params)  # noqa: F821 (bound per kernel)
    gbar = (est.grad - est.prior_grad) / params.n_data
    v = (1.0 - params.alpha) * gbar * gbar
    return PSGLDState(position, v, est.logdensity, est.grad, 0)


@portable
def psgld_step(state, noise, step_size, params, target):
    """pSGLD: ``θ' = θ + h G ĝ + √(2h) G^{1/2} ξ``, G = 1/(λ + √V); then V updated at θ'."""
    h = scheduled_step(step_size, state.iteration, params)
    g = 1.0 / (params.lam + xp.sqrt(state.square_avg))
    x = state.position + h * g * state.grad + xp.sqrt(2.0 * h * g) * noise.normal
    est = estimate(target, x, noise.batch, params)  # noqa: F821 (bound per kernel)
    gbar = (est.grad - est.prior_grad) / params.n_data
    v = params.alpha * state.square_avg + (1.0 - params.alpha) * gbar * gbar
    info = SGInfo(1.0 + 0.0 * h, diverged(est.logdensity, x), h, est.noise)
    return PSGLDState(x, v, est.logdensity, est.grad, state.iteration + 1), info


# -- SGNHT -----------------------------------------------------------------------------------
@portable
def sgnht_init(position, noise, params, target):
    """State at ``position``: p ~ N(0, I) from the init noise, ξ = A."""
    est = estimate(target, position, noise.batch, params)  # noqa: F821 (bound per kernel)
    return SGNHTState(position, noise.normal, params.diffusion + 0.0 * est.logdensity,
                      est.logdensity, est.grad, 0)  # fmt: skip


@portable
def sgnht_step(state, noise, step_size, params, target):
    """SGNHT: ``p' = p − ξph + hĝ + √(2Ah) η``, ``θ' = θ + hp'``, ``ξ' = ξ + h(p'ᵀp'/d − 1)``."""
    h = scheduled_step(step_size, state.iteration, params)
    p = (state.momentum - state.thermostat * h * state.momentum + h * state.grad
         + xp.sqrt(2.0 * params.diffusion * h) * noise.normal)  # fmt: skip
    x = state.position + h * p
    xi = state.thermostat + h * (xp.sum(p * p) / p.shape[0] - 1.0)
    est = estimate(target, x, noise.batch, params)  # noqa: F821 (bound per kernel)
    info = SGInfo(1.0 + 0.0 * h, diverged(est.logdensity, x), h, est.noise)
    return SGNHTState(x, p, xi, est.logdensity, est.grad, state.iteration + 1), info


# The plain and control-variate kernels share their step; the estimator is a bound global,
# with or without the gradient-noise estimate (``gradient_noise=True``: one class each, so
# that the compiled step computes only what is asked for).
_ESTIMATORS = {
    ("plain", False): minibatch_estimate,
    ("plain", True): minibatch_estimate_with_noise,
    ("cv", False): control_variate_estimate,
    ("cv", True): control_variate_estimate_with_noise,
}


def _bound(fn, kind: str, noise: bool):
    return bind_globals(fn, estimate=_ESTIMATORS[(kind, noise)])


_sg_init_plain = _bound(sg_init, "plain", False)
_sg_init_cv = _bound(sg_init, "cv", False)
_sgld_step_plain = _bound(sgld_step, "plain", False)
_sgld_step_cv = _bound(sgld_step, "cv", False)
_sghmc_init_plain = _bound(sghmc_init, "plain", False)
_sghmc_init_cv = _bound(sghmc_init, "cv", False)
_sghmc_step_plain = _bound(sghmc_step, "plain", False)
_sghmc_step_cv = _bound(sghmc_step, "cv", False)


# -- the kernel classes ----------------------------------------------------------------------
def _check_int(owner: str, argname: str, value, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{owner}: {argname} must be an int >= {least}; got {value!r}")
    return int(value)


def _check_real(owner: str, argname: str, value, *, positive: bool = False,
                nonneg: bool = False, below_one: bool = False) -> float:  # fmt: skip
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {argname} must be a float; got {value!r}")
    v = float(value)
    ok = np.isfinite(v) and (not positive or v > 0) and (not nonneg or v >= 0)
    ok = ok and (not below_one or v < 1)
    if not ok:
        need = "positive" if positive else "non-negative" if nonneg else "finite"
        need += " and below 1" if below_one else ""
        raise ValueError(f"{owner}: {argname} must be {need}; got {value!r}")
    return v


def _instance(called: type, chosen: type, args: tuple, kwargs: dict) -> Any:
    """``__new__``'s result when a constructor dispatches ``called(*args, **kwargs)`` to the
    class ``chosen``. Python runs ``__init__`` only on an instance of ``called``, so an
    instance of a class outside it (``dataclasses.replace(noisy, gradient_noise=False)``
    calls the noisy class and gets the plain one) is initialised here, or it would come
    back with no fields at all."""
    obj = object.__new__(chosen)
    if not isinstance(obj, called):
        obj.__init__(*args, **kwargs)
    return obj


_EXAMPLES: dict[int, Any] = {}


def example_data_target(dim: int) -> Any:
    """Linear regression on 40 rows (``X ~ N(0, 1/4)``, unit noise and prior, seed 5): the
    data target the kernels' ``example_target`` gives (memoised per ``dim``)."""
    if dim not in _EXAMPLES:
        from langevin.targets.data_targets import linear_regression_data

        rng = np.random.default_rng(5)
        X = rng.normal(size=(40, dim)) / 2
        _EXAMPLES[dim] = linear_regression_data(X, X @ np.ones(dim) + rng.normal(size=40))
    return _EXAMPLES[dim]


_NEEDS_DATA = (
    "{owner} needs n_data (the number of data points the minibatch indices range over): "
    "build it as {owner}(step_size, batch_size=b, n_data=target.n_data)"
)


@dataclass(frozen=True)
class _StochasticGradient(Kernel):
    """Shared fields and checks of the SG-MCMC kernels (abstract)."""

    step_size: float
    batch_size: int = 32
    n_data: int | None = None
    decay: float = 1.0
    gamma: float = 0.0
    gradient_noise: bool = field(default=False, kw_only=True)

    exact: ClassVar[bool] = False
    bias_order: ClassVar[float] = 1.0
    requires: ClassVar[frozenset[str]] = frozenset({"loglik", "logprior"})
    target_fields: ClassVar[tuple[str, ...]] = ()
    #: The state's log-density is a minibatch estimate (noisy): a driver must not read a
    #: fall of it as a blow-up (proposed hook for the collapse check; see the report).
    logdensity_is_estimate: ClassVar[bool] = True
    Info = SGInfo
    #: Whether the compiled step estimates the gradient noise (the class decides; the
    #: constructor picks the class from ``gradient_noise``: see :func:`_noise_variant`).
    computes_gradient_noise: ClassVar[bool] = False
    _variants: ClassVar[dict[bool, type]] = {}

    def __new__(cls, *args: Any, **kwargs: Any):
        # gradient_noise=True/False picks the class whose compiled step does (not) estimate
        # the gradient noise; without the keyword (unpickling, classmethods) the class stays.
        want = kwargs.get("gradient_noise")
        chosen = cls._variants[want] if isinstance(want, bool) and cls._variants else cls
        return _instance(cls, chosen, args, kwargs)

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = self.name
        if not isinstance(self.gradient_noise, bool):
            raise TypeError(f"{owner}: gradient_noise must be True or False; got "
                            f"{self.gradient_noise!r}")  # fmt: skip
        object.__setattr__(self, "gradient_noise", type(self).computes_gradient_noise)
        _check_int(owner, "batch_size", self.batch_size, 1)
        if self.n_data is not None:
            _check_int(owner, "n_data", self.n_data, 1)
            if self.batch_size > self.n_data:
                raise ValueError(f"{owner}: batch_size ({self.batch_size}) must be at most "
                                 f"n_data ({self.n_data})")  # fmt: skip
        _check_real(owner, "decay", self.decay, positive=True)
        _check_real(owner, "gamma", self.gamma, nonneg=True)

    def _n(self) -> int:
        if self.n_data is None:
            raise ValueError(_NEEDS_DATA.format(owner=self.name))
        return self.n_data

    def noise(self, dim: int) -> SGNoise:
        return SGNoise(Index(self._n(), self.batch_size), Normal((dim,)))

    def init_noise(self, dim: int) -> SGInitNoise:
        return SGInitNoise(Index(self._n(), self.batch_size))

    def _schedule(self) -> tuple[float, float, float]:
        return float(self._n()), float(self.decay), float(self.gamma)

    @classmethod
    def example(cls) -> Kernel:
        return cls(step_size=1e-3, batch_size=2, n_data=10)

    @classmethod
    def example_target(cls, dim: int) -> Any:
        """A small data target for conformance suites (same object for the same ``dim``)."""
        return example_data_target(dim)

    @classmethod
    def for_conformance(cls, step_size: float, target: Any) -> Kernel:
        """The instance a conformance suite runs on ``target`` (a data target): a batch of
        5 of its ``n_data`` points, other parameters at their defaults."""
        return cls(step_size, batch_size=5, n_data=target.n_data)


def _centre_fields(owner: str, centre, centre_grad, centre_loglik):
    if centre is None or centre_grad is None or centre_loglik is None:
        raise ValueError(
            f"{owner} needs centre, centre_grad and centre_loglik (a point near the mode and "
            "the full-data log-likelihood gradient and value there): build it with "
            f"{owner}.around(mode, ...) where mode = find_mode(target)"
        )
    c = np.asarray(centre, dtype=np.float64)
    g = np.asarray(centre_grad, dtype=np.float64)
    if c.ndim != 1 or g.shape != c.shape:
        raise ValueError(f"{owner}: centre and centre_grad must be vectors of one length; got "
                         f"{c.shape} and {g.shape}")  # fmt: skip
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(g)) and np.isfinite(centre_loglik)):
        raise ValueError(f"{owner}: centre, centre_grad and centre_loglik must be finite")
    return c, g, float(centre_loglik)


@dataclass(frozen=True)
class SGLD(_StochasticGradient):
    """Stochastic-gradient Langevin dynamics: ``θ' = θ + h_t ĝ(θ) + √(2h_t) ξ``. **Biased.**

    ĝ is the minibatch estimate (1) of the module docstring; ``h_t`` follows the schedule
    ``step_size · (1 + t/decay)^(−gamma)`` (constant by default).

    Args:
        step_size: h > 0 (at t = 0).
        batch_size: b, the minibatch size.
        n_data: n, the number of data points (``target.n_data``).
        decay, gamma: the polynomial-decay schedule (gamma = 0: constant step).
        gradient_noise: keyword-only; True to estimate tr Cov(ĝ) at every step (the info
            field ``gradient_noise``; NaN when False, the default). All SG kernels take it.

    Example:
        >>> import numpy as np, langevin
        >>> from langevin.targets.data_targets import linear_regression_data
        >>> X = np.random.default_rng(0).normal(size=(1000, 2))
        >>> target = linear_regression_data(X, X @ np.array([1.0, -1.0]))
        >>> kernel = SGLD(1e-4, batch_size=50, n_data=target.n_data)
        >>> trace = langevin.sample(target, kernel, draws=200, warmup=100, progress=False)

    Reference: Welling, M. and Teh, Y. W. (2011). ICML.
    """

    State = SGState
    Noise = SGNoise
    init_math = staticmethod(_sg_init_plain)
    step_math = staticmethod(_sgld_step_plain)

    def params(self) -> SGLDParams:
        return SGLDParams(*self._schedule())


@dataclass(frozen=True)
class SGLDCV(_StochasticGradient):
    """SGLD with control variates around ``centre`` (Baker et al. 2019): estimate (2).

    Build it from :func:`find_mode`'s result with :meth:`around`. Costs two per-datum
    gradients per datum of the batch; the gradient noise shrinks as the chain nears θ̂.

    Example:
        >>> mode = find_mode(target)                      # doctest: +SKIP
        >>> kernel = SGLDCV.around(mode, 1e-4, batch_size=50)   # doctest: +SKIP

    Reference: Baker, J., Fearnhead, P., Fox, E. B. and Nemeth, C. (2019). Control variates
    for stochastic gradient MCMC. Statistics and Computing 29.
    """

    centre: tuple | None = None
    centre_grad: tuple | None = None
    centre_loglik: float | None = None

    State = SGState
    Noise = SGNoise
    init_math = staticmethod(_sg_init_cv)
    step_math = staticmethod(_sgld_step_cv)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.centre is not None:
            _centre_fields(self.name, self.centre, self.centre_grad, self.centre_loglik)

    @classmethod
    def around(cls, mode: Mode, step_size: float, **kwargs: Any) -> SGLDCV:
        """The kernel centred at ``mode`` (from :func:`find_mode`); ``n_data`` from it."""
        kwargs.setdefault("n_data", mode.n_data)
        return cls(step_size, centre=tuple(mode.position), centre_grad=tuple(mode.loglik_grad),
                   centre_loglik=mode.loglik, **kwargs)  # fmt: skip

    def params(self) -> CVParams:
        c, g, v = _centre_fields(self.name, self.centre, self.centre_grad,
                                 self.centre_loglik)  # fmt: skip
        return CVParams(*self._schedule(), c, g, v)

    @classmethod
    def example(cls) -> Kernel:
        return cls(1e-3, batch_size=2, n_data=10, centre=(0.0, 0.0), centre_grad=(0.0, 0.0),
                   centre_loglik=0.0)  # fmt: skip

    @classmethod
    def for_conformance(cls, step_size: float, target: Any) -> Kernel:
        """Centred at the mode of ``target`` (:func:`find_mode`), a batch of 5."""
        return cls.around(find_mode(target), step_size, batch_size=5)


@dataclass(frozen=True)
class SGHMC(_StochasticGradient):
    """Stochastic-gradient HMC with friction ``C`` and noise correction ``B̂ = ½ h V̂``.

    ``r' = (1 − hC) r + h ĝ(θ) + √(2(C − B̂)h) ξ``, ``θ' = θ + h r'`` (unit mass; Chen et
    al. 2014, Alg. 2). ``noise_estimate`` is V̂, the per-coordinate variance of ĝ you expect
    (0: no correction; with ``gradient_noise=True`` the info field ``gradient_noise`` reports
    tr Cov(ĝ) to help choose it);
    the injected noise is clipped at 0 when B̂ > C.

    Args:
        step_size: h > 0. friction: C > 0 (hC < 1 for a stable momentum).
        noise_estimate: V̂ >= 0. Other args as :class:`SGLD`.

    Reference: Chen, T., Fox, E. B. and Guestrin, C. (2014). Stochastic gradient
    Hamiltonian Monte Carlo. ICML.
    """

    friction: float = 1.0
    noise_estimate: float = 0.0

    State = SGHMCState
    Noise = SGNoise
    init_math = staticmethod(_sghmc_init_plain)
    step_math = staticmethod(_sghmc_step_plain)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_real(self.name, "friction", self.friction, positive=True)
        _check_real(self.name, "noise_estimate", self.noise_estimate, nonneg=True)

    def init_noise(self, dim: int) -> MomentumInitNoise:
        return MomentumInitNoise(Index(self._n(), self.batch_size), Normal((dim,)))

    def params(self) -> SGHMCParams:
        return SGHMCParams(*self._schedule(), float(self.friction), float(self.noise_estimate))


@dataclass(frozen=True)
class SGHMCCV(SGHMC):
    """SGHMC with control variates around ``centre`` (estimate (2); Baker et al. 2019)."""

    centre: tuple | None = None
    centre_grad: tuple | None = None
    centre_loglik: float | None = None

    init_math = staticmethod(_sghmc_init_cv)
    step_math = staticmethod(_sghmc_step_cv)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.centre is not None:
            _centre_fields(self.name, self.centre, self.centre_grad, self.centre_loglik)

    around = classmethod(SGLDCV.around.__func__)

    def params(self) -> SGHMCCVParams:
        c, g, v = _centre_fields(self.name, self.centre, self.centre_grad, self.centre_loglik)
        return SGHMCCVParams(*self._schedule(), float(self.friction),
                             float(self.noise_estimate), c, g, v)  # fmt: skip

    @classmethod
    def example(cls) -> Kernel:
        return SGLDCV.example.__func__(cls)

    for_conformance = classmethod(SGLDCV.for_conformance.__func__)


@dataclass(frozen=True)
class PSGLD(_StochasticGradient):
    """Preconditioned SGLD (RMSprop preconditioner in the state; Li et al. 2016, Alg. 1).

    ``θ' = θ + h G ĝ + √(2h) G^{1/2} ξ``, ``G = diag(1/(λ + √V))``, ``V ← αV + (1 − α)ḡ⊙ḡ``
    with ḡ the mean per-datum log-likelihood gradient of the batch. Γ(θ) is dropped, as in
    the paper's experiments (module docstring).

    Args:
        alpha: RMSprop decay, in [0, 1) (default 0.99). lam: λ > 0 (default 1e-5).
        Others as :class:`SGLD`.

    Reference: Li, C., Chen, C., Carlson, D. and Carin, L. (2016). AAAI.
    """

    alpha: float = 0.99
    lam: float = 1e-5

    State = PSGLDState
    Noise = SGNoise
    init_math = staticmethod(_bound(psgld_init, "plain", False))
    step_math = staticmethod(_bound(psgld_step, "plain", False))

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_real(self.name, "alpha", self.alpha, nonneg=True, below_one=True)
        _check_real(self.name, "lam", self.lam, positive=True)

    def params(self) -> PSGLDParams:
        return PSGLDParams(*self._schedule(), float(self.alpha), float(self.lam))

    @classmethod
    def for_conformance(cls, step_size: float, target: Any) -> Kernel:
        """λ = 1 caps the preconditioner at 1, so the suite's step sizes stay stable."""
        return cls(step_size, batch_size=5, n_data=target.n_data, lam=1.0)


@dataclass(frozen=True)
class SGNHT(_StochasticGradient):
    """Stochastic-gradient Nosé–Hoover thermostat (Ding et al. 2014, Alg. 2).

    ``p' = p − ξph + hĝ + √(2Ah) η``, ``θ' = θ + hp'``, ``ξ' = ξ + h(p'ᵀp'/d − 1)``; ξ starts
    at A, p at N(0, I).

    Args:
        diffusion: A > 0, the injected noise (default 1). Others as :class:`SGLD`.

    Reference: Ding, N. et al. (2014). Bayesian sampling using stochastic gradient
    thermostats. NeurIPS.
    """

    diffusion: float = 1.0

    State = SGNHTState
    Noise = SGNoise
    init_math = staticmethod(_bound(sgnht_init, "plain", False))
    step_math = staticmethod(_bound(sgnht_step, "plain", False))

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_real(self.name, "diffusion", self.diffusion, positive=True)

    def init_noise(self, dim: int) -> MomentumInitNoise:
        return MomentumInitNoise(Index(self._n(), self.batch_size), Normal((dim,)))

    def params(self) -> SGNHTParams:
        return SGNHTParams(*self._schedule(), float(self.diffusion))


def _noise_variant(cls: type, init_fn: Any, step_fn: Any, kind: str) -> type:
    """The class of ``cls`` with ``gradient_noise=True``: the same kernel whose step also
    estimates tr Cov(ĝ) from the batch's two halves (``cls(..., gradient_noise=True)``
    returns an instance of it). A class of its own, so that the compiled steps of the two
    differ and the default one does not pay for the estimate (on JAX two half-batch calls
    cost 1.3-1.7× one whole-batch call)."""
    name = f"{cls.__name__}WithGradientNoise"
    namespace = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"{cls.__name__} with the gradient-noise estimate (``gradient_noise=True``).",
        "init_math": staticmethod(_bound(init_fn, kind, True)),
        "step_math": staticmethod(_bound(step_fn, kind, True)),
        "computes_gradient_noise": True,
        "public_name": cls.public_name or cls.__name__,
    }
    variant = dataclass(frozen=True)(type(name, (cls,), namespace))
    cls._variants = variant._variants = {False: cls, True: variant}
    return variant


SGLDWithGradientNoise = _noise_variant(SGLD, sg_init, sgld_step, "plain")
SGLDCVWithGradientNoise = _noise_variant(SGLDCV, sg_init, sgld_step, "cv")
SGHMCWithGradientNoise = _noise_variant(SGHMC, sghmc_init, sghmc_step, "plain")
SGHMCCVWithGradientNoise = _noise_variant(SGHMCCV, sghmc_init, sghmc_step, "cv")
PSGLDWithGradientNoise = _noise_variant(PSGLD, psgld_init, psgld_step, "plain")
SGNHTWithGradientNoise = _noise_variant(SGNHT, sgnht_init, sgnht_step, "plain")


# -- the mode search for control variates ---------------------------------------------------------
class Mode(NamedTuple):
    """A point near the posterior mode and what control variates need there."""

    position: np.ndarray
    loglik: float  # Σ_i log p(d_i | θ̂)
    loglik_grad: np.ndarray  # Σ_i ∇log p(d_i | θ̂)
    n_data: int
    grad_norm: float  # ‖∇log π(θ̂)‖ (0 at the exact mode)


def find_mode(
    target,
    initial_position: np.ndarray | None = None,
    *,
    backend: str | None = None,
    method: str = "lbfgs",
    max_iter: int = 1000,
    tol: float = 1e-8,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> Mode:
    """The posterior mode θ̂ of a data target, for control variates.

    Args:
        target: a :class:`~langevin.targets.data_targets.DataTarget`.
        initial_position: where to start (default: the target's, else 0).
        backend: whose functions evaluate the target ("numba" or "jax"; default Numba when
            the target has it).
        method: ``"lbfgs"``: SciPy's L-BFGS-B on the full-data log posterior (``max_iter``
            iterations, gradient tolerance ``tol``; each costs one pass over the data).
            ``"adam"``: Adam on minibatch gradients (``max_iter`` steps of ``batch_size``
            items, ``learning_rate``), returning the average of the second half of the
            iterates (Polyak–Ruppert), for data too large for full passes; Baker et al. use
            SGD the same way.
        seed: minibatches of ``"adam"``.

    Returns:
        :class:`Mode` with the full-data log-likelihood value and gradient at θ̂ (one final
        pass over the data).
    """
    from langevin.targets.data_targets import DataTarget

    if not isinstance(target, DataTarget):
        raise TypeError(f"target must be a DataTarget (langevin.targets.data_targets); got "
                        f"{type(target).__name__}")  # fmt: skip
    if method not in ("lbfgs", "adam"):
        raise ValueError(f"method must be 'lbfgs' or 'adam'; got {method!r}")
    _check_int("find_mode", "max_iter", max_iter, 1)
    backend = target._host_backend(backend)
    if initial_position is None:
        initial_position = (target.initial_position if target.initial_position is not None
                            else np.zeros(target.dim))  # fmt: skip
    x0 = np.array(initial_position, dtype=np.float64)
    if x0.shape != (target.dim,) or not np.all(np.isfinite(x0)):
        raise ValueError(f"initial_position must be a finite vector of length {target.dim}")
    if method == "lbfgs":
        from scipy.optimize import minimize

        def negative(x):
            v, g = target.full_value_and_grad(x, backend)
            return -v, -g

        res = minimize(negative, x0, jac=True, method="L-BFGS-B",
                       options={"maxiter": max_iter, "gtol": tol})  # fmt: skip
        x = np.asarray(res.x, dtype=np.float64)
    else:
        _check_int("find_mode", "batch_size", batch_size, 1)
        x = _adam(target, x0, backend, max_iter, min(batch_size, target.n_data),
                  float(learning_rate), seed)  # fmt: skip
    v, g = target.full_loglik(x, backend)
    _, full_grad = target.full_value_and_grad(x, backend)
    return Mode(x, v, g, target.n_data, float(np.linalg.norm(full_grad)))


def _adam(target, x, backend, steps, b, lr, seed):
    """Adam (Kingma & Ba 2015) ascent on the minibatch estimate (1) of ∇log π."""
    rng = np.random.default_rng(seed)
    n = target.n_data
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    if backend == "numba":
        lik = target.numba_functions["loglik"]
        prior = target.numba_functions["logprior"]

        def grad(x, idx):
            return prior(x, target.data)[1] + (n / b) * lik(x, idx, target.data)[1]
    else:
        import jax
        import jax.numpy as jnp

        from langevin.targets.capabilities import SLOTS

        form = target._cache[("jax-form",)]
        fns = form.build(form.data)
        lik = fns[1 + SLOTS.index("loglik")]
        prior = fns[1 + SLOTS.index("logprior")]
        est = jax.jit(lambda x, idx, data: prior(x, data)[1] + (n / b) * lik(x, idx, data)[1])

        def grad(x, idx):
            return np.asarray(est(jnp.asarray(x), jnp.asarray(idx), form.data), dtype=np.float64)

    average = np.zeros_like(x)
    for t in range(1, steps + 1):
        idx = rng.choice(n, size=b, replace=False).astype(np.int64)
        g = grad(x, idx)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        x = x + lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        if t > steps // 2:  # Polyak–Ruppert: the minibatch jitter averages out
            average += (x - average) / (t - steps // 2)
    return average
