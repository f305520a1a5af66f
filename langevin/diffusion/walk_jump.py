"""Walk-jump sampling (Saremi & Hyvärinen 2019) and the chain of log-concave Markov chains
(Saremi, Park & Bach 2024), composed from the package's kernels.

**Smoothing.** For a law p on R^d and one noise level σ, the smoothed density is
``p_σ = p * N(0, σ² I)``, the law of ``y = x + σ ε``. It is much smoother than p: its modes
are wider and the valleys between them shallower, so Langevin chains on p_σ cross between
modes that a chain on p never leaves.

**Jump (empirical Bayes; Tweedie–Miyasawa).** The posterior mean of x given y is

    x̂(y) = E[x | y] = y + σ² ∇log p_σ(y),

which needs only the score of the *smoothed* density. A denoiser gives the score back as
``∇log p_σ(y) = (x̂(y) − y)/σ²``.

**Walk.** Any kernel of the package (MALA, ULA, kinetic Langevin, Barker, HMC, ...) run on
p_σ: :class:`WalkJump` calls the inner kernel's ``init_math``/``step_math`` unchanged (its
twins compose with the outer step on both backends) and adds the jump. The score of p_σ
comes from the target the walk runs on:

(i)  an analytic smoothed target: :func:`smoothed` (a Gaussian mixture smoothed by
     N(0, σ²I) is the mixture with every covariance increased by σ² I);
(ii) a trained denoiser (:mod:`langevin.diffusion.denoisers`): score ``(x̂(y) − y)/σ²``;
     a score-only target, walked by an unadjusted kernel (``WalkJump(...,
     score_only=True)``: Metropolis–Hastings needs a log-density, which a denoiser does
     not give);
(iii) a trained energy ``f_θ`` with ``log p_σ ≈ −f_θ`` (DEEN): an ordinary log-density
     target, walked by any kernel.

**What is recorded.** A :class:`WalkJump` chain's *draws are the jumps* x̂(y_t), one per
walk step (the trace's log-density column is log p_σ at the walk position y_t, or 0 for a
score-only walk whose log-density is unknown). The walk itself is the inner kernel on p_σ:
run the inner kernel directly on the smoothed target to record the y's, and denoise any
array of them with :func:`jump`. Both are therefore available; the jump of a walk draw is
exactly the ``WalkJump`` draw at the same step on the same noise.

**The law of the jumps is not p.** The jumps are posterior means: for Gaussian data
p = N(μ, s² I), x̂(y) = μ + s²/(s² + σ²) (y − μ) and x̂(Y) ~ N(μ, s⁴/(s² + σ²) I) for
Y ~ p_σ (variance shrinkage; tested). Walk-jump samples p only as σ → 0, where p_σ loses
its smoothness: σ trades mixing against fidelity. :func:`chain_of_log_concave` removes the
trade-off by accumulating m measurements.

**Chain of log-concave Markov chains (§8c).** With m noisy measurements
``y_k = x + σ ε_k`` (one σ) and their running mean ``ȳ_k = (1/k) Σ_{j≤k} y_j``,

    log p(y_k | y_{1:k−1}) = −Σ_{j≤k} ‖y_j − ȳ_k‖²/(2σ²) + log p_{σ/√k}(ȳ_k) + const,
    ∇_{y_k} log p(y_k | y_{1:k−1}) = (ȳ_k − y_k)/σ² + (1/k) ∇log p_{σ/√k}(ȳ_k),

(the quadratic's derivative in ȳ_k vanishes because ȳ_k is the mean), so the history enters
only through the running sum. Stage k runs any kernel on this conditional (each is
log-concave for σ large enough: the paper's main theorem), keeps its final y_k, and after m
stages the jump is

    x̂(y_{1:m}) = E[x | y_{1:m}] = ȳ_m + (σ²/m) ∇log p_{σ/√m}(ȳ_m).

For Gaussian data the jump's variance is s⁴/(s² + σ²/m) → s² as m → ∞ (tested). The
conditional is a target combinator (:class:`Conditional`) built inside the step around the
target at level σ/√k; the running sum is a per-chain runtime parameter of the kernel, so a
new stage compiles nothing. On JAX the level target itself is runtime data too
(:func:`_jax_level_forms`): smoothed Gaussian mixtures pass the level's (means, precisions,
constants) to one compiled mixture density; any other level targets are the branches of one
``lax.switch`` on the level index. Either way all m stages share one compiled loop.

References:
    Saremi, S. and Hyvärinen, A. (2019). Neural empirical Bayes. JMLR 20(181), 1–23.
    Saremi, S., Park, J. W. and Bach, F. (2024). Chain of log-concave Markov chains. ICLR
    2024, arXiv:2305.19473.
    Robbins, H. (1956). An empirical Bayes approach to statistics; Miyasawa, K. (1961). An
    empirical Bayes estimator of the mean of a normal population (Tweedie's formula).
    Reference code read: github.com/Genentech/walk-jump (``sampling/_langevin.py``,
    ``sampling/_walkjump.py``): the walk there is ``KineticLangevin(discretization="aboba")``
    here, up to its per-step friction e^{−γ} (ours is e^{−γh}).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from langevin.adaptation.base import StepSizeAdaptation
from langevin.backends.portable import bind_globals, portable
from langevin.kernels.base import Kernel, Vector
from langevin.spec import field_kinds
from langevin.targets.base import Target
from langevin.targets.capabilities import register_combinator
from langevin.targets.mixture import gaussian_mixture

__all__ = [
    "smoothed", "mixture_components", "sample_mixture", "posterior_mean_mixture", "jump",
    "WalkJump", "ChainOfLogConcave", "Conditional", "chain_of_log_concave", "CLMCResult",
]  # fmt: skip

xp: Any = None  # bound by each backend (see langevin.backends.portable)


# -- checks ------------------------------------------------------------------------------------
def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive float; got {value!r}")
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be positive and finite; got {value!r}")
    return value


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


# -- analytic smoothed mixtures ---------------------------------------------------------------
def mixture_components(target: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(weights (K,), means (K, d), covs (K, d, d))`` of a Gaussian mixture given as a
    :func:`langevin.targets.gaussian_mixture` target or a
    :class:`langevin.smc.GaussianMixture`.

    Raises:
        TypeError: ``target`` is neither.
    """
    comps = getattr(target, "components", None)
    if isinstance(comps, dict) and {"weights", "means", "covs"} <= set(comps):
        return (np.asarray(comps["weights"], float), np.asarray(comps["means"], float),
                np.asarray(comps["covs"], float))  # fmt: skip
    if all(hasattr(target, a) for a in ("weights", "means", "covs")):
        return (np.asarray(target.weights, float), np.asarray(target.means, float),
                np.asarray(target.covs, float))  # fmt: skip
    raise TypeError(
        "target must be a Gaussian mixture: langevin.targets.gaussian_mixture(...) or "
        f"langevin.smc.GaussianMixture(...); got {type(target).__name__}"
    )


def smoothed(target: Any, sigma: float) -> Target:
    """The smoothed density ``p_σ = p * N(0, σ² I)`` of a Gaussian mixture ``p``, exactly.

    ``Σ_k w_k N(μ_k, Σ_k) * N(0, σ² I) = Σ_k w_k N(μ_k, Σ_k + σ² I)``: a mixture again, with
    both backend forms (Saremi & Hyvärinen 2019, §2; the convolution of Gaussians).

    Args:
        target: a :func:`langevin.targets.gaussian_mixture` target or a
            :class:`langevin.smc.GaussianMixture`.
        sigma: the noise level σ > 0.

    Returns:
        A :func:`~langevin.targets.gaussian_mixture` target (exact mean and covariance as
        its reference) with ``.sigma = σ`` and ``.unsmoothed`` the components of ``p``.

    Example:
        >>> import langevin
        >>> from langevin.diffusion import smoothed
        >>> p = langevin.targets.gaussian_mixture([[-4.0], [4.0]], sds=[0.5, 0.5])
        >>> p_s = smoothed(p, 1.0)
        >>> float(p_s.components["covs"][0, 0, 0])
        1.25
    """
    weights, means, covs = mixture_components(target)
    sigma = _positive("sigma", sigma)
    dim = means.shape[1]
    out = gaussian_mixture(means, covs + sigma**2 * np.eye(dim), weights)
    out.sigma = sigma
    out.unsmoothed = {"weights": weights, "means": means, "covs": covs}
    return out


def sample_mixture(target: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` exact independent draws ``(n, d)`` of a Gaussian mixture (as
    :func:`mixture_components` reads it)."""
    weights, means, covs = mixture_components(target)
    n = _positive_int("n", n)
    labels = rng.choice(len(weights), size=n, p=weights)
    out = np.empty((n, means.shape[1]))
    for k in range(len(weights)):
        idx = np.flatnonzero(labels == k)
        chol = np.linalg.cholesky(covs[k])
        out[idx] = means[k] + rng.standard_normal((idx.size, means.shape[1])) @ chol.T
    return out


def posterior_mean_mixture(target: Any, sigma: float, y: np.ndarray) -> np.ndarray:
    """The exact Bayes denoiser ``E[x | y]`` for ``x ~ p`` (a Gaussian mixture) and
    ``y = x + σ ε``, computed without any score: component posteriors
    ``r_k(y) ∝ w_k N(y; μ_k, Σ_k + σ²I)`` and per-component Gaussian posterior means
    ``μ_k + Σ_k (Σ_k + σ²I)⁻¹ (y − μ_k)``. An independent check of the Tweedie jump
    (which must equal it)."""
    weights, means, covs = mixture_components(target)
    sigma = _positive("sigma", sigma)
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    dim = means.shape[1]
    logr = np.empty((y.shape[0], len(weights)))
    post = np.empty((y.shape[0], len(weights), dim))
    for k in range(len(weights)):
        c = covs[k] + sigma**2 * np.eye(dim)
        chol = np.linalg.cholesky(c)
        z = np.linalg.solve(chol, (y - means[k]).T)  # (d, n)
        logr[:, k] = np.log(weights[k]) - np.sum(np.log(np.diag(chol))) - 0.5 * np.sum(z * z, 0)
        post[:, k] = means[k] + (covs[k] @ np.linalg.solve(c, (y - means[k]).T)).T
    logr -= logr.max(axis=1, keepdims=True)
    r = np.exp(logr)
    r /= r.sum(axis=1, keepdims=True)
    return np.einsum("nk,nkd->nd", r, post)


# -- the jump on the host ----------------------------------------------------------------------
@portable
def tweedie_jump(target, y, sigma2):
    """``x̂(y) = y + σ² ∇log p_σ(y)`` (Tweedie–Miyasawa) for the target p_σ."""
    return y + sigma2 * xp.score(target, y)


def jump(target: Target, y: np.ndarray, sigma: float, *, backend: str = "numba") -> np.ndarray:
    """Denoise walk samples: ``x̂(y) = y + σ² ∇log p_σ(y)`` for every row of ``y``.

    Args:
        target: the smoothed density p_σ (:func:`smoothed`, a denoiser's or an energy's
            target), any target with a score or gradient.
        y: walk samples, shape ``(..., d)`` (a trace's ``draws``).
        sigma: its noise level σ.
        backend: where to evaluate the score.

    Returns:
        The jumps, shaped like ``y``.
    """
    from langevin.backends.base import get_backend

    sigma = _positive("sigma", sigma)
    y = np.asarray(y, dtype=np.float64)
    if not isinstance(target, Target):
        raise TypeError(f"target must be a langevin Target; got {type(target).__name__}")
    dim = target.dim if target.dim is not None else (y.shape[-1] if y.ndim else 0)
    if y.ndim < 1 or y.shape[-1] != dim:
        raise ValueError(f"y must have shape (..., {dim}); got {y.shape}")
    engine = get_backend(backend)
    form = engine.bind_target(target, dim)
    flat = np.ascontiguousarray(y.reshape(-1, y.shape[-1]))
    out = engine.map_members(tweedie_jump, (form, flat, sigma**2), (None, 0, None))
    return np.asarray(out, dtype=y.dtype if backend == "jax" else np.float64).reshape(y.shape)


# -- composing a kernel: the flattened state ---------------------------------------------------
_CLASSES: dict = {}


def _register(obj: Any) -> Any:
    """Module attribute, so that pickling (Numba's on-disk cache index) finds it by name."""
    globals()[obj.__name__] = obj
    return obj


def _outer_state(inner_cls: type, prefix: str) -> tuple[type, Callable, Callable]:
    """``(State, pack, unpack)``: the inner kernel's State with ``position`` (recorded as the
    trace's draws) holding the jump and a field ``walk`` holding the inner position; ``pack``
    and ``unpack`` are generated portable converters (one per inner State class)."""
    key = ("state", prefix, inner_cls)
    if key in _CLASSES:
        return _CLASSES[key]
    inner_fields = inner_cls._fields
    if "position" not in inner_fields or "walk" in inner_fields:
        raise TypeError(f"cannot wrap {inner_cls.__name__}: its State needs a 'position' field")
    kinds = dict(zip(inner_fields, field_kinds(inner_cls)))
    rest = [f for f in inner_fields if f != "position"]
    fields = [("position", Vector), ("walk", Vector)] + [(f, kinds[f]) for f in rest]
    name = f"{prefix}{inner_cls.__name__}"
    outer = NamedTuple(name, fields)
    outer.__module__ = __name__
    _register(outer)
    scope = {"Outer": outer, "Inner": inner_cls}
    inner_args = ", ".join("state.walk" if f == "position" else f"state.{f}" for f in inner_fields)
    src = (
        f"def pack(inner, jump):\n"
        f"    return Outer(jump, inner.position{''.join(f', inner.{f}' for f in rest)})\n"
        f"def unpack(state):\n"
        f"    return Inner({inner_args})\n"
    )
    exec(src, scope)
    pack, unpack = portable(scope["pack"]), portable(scope["unpack"])
    pack.__qualname__ = f"pack_{name}"
    unpack.__qualname__ = f"unpack_{name}"
    _CLASSES[key] = (outer, pack, unpack)
    return _CLASSES[key]


class WalkJumpParams(NamedTuple):
    """Runtime parameters of :class:`WalkJump`: σ² and the inner kernel's params."""

    sigma2: float
    inner: Any


class ScoreOnly(NamedTuple):
    """Tag of the combinator ``(ScoreOnly(), target)``: a score-only target (a denoiser's)
    seen by an unadjusted kernel, whose log-density is reported as 0 (unknown)."""


@portable
def score_only_value_and_grad(target, x):
    """``(0, ∇log p(x))``: the log-density of a score-only target is unknown; unadjusted
    kernels use only the gradient (and the value's finiteness)."""
    return 0.0 * x[0], xp.score(target[1], x)


@portable
def score_only_score(target, x):
    return xp.score(target[1], x)


register_combinator(ScoreOnly, value_and_grad=score_only_value_and_grad, score=score_only_score)


@portable
def _identity_target(target):
    return target


@portable
def _score_only_target(target):
    return (ScoreOnly(), target)


@portable
def _jump_from_grad(inner_state, params, target):
    """The jump from the gradient the inner state already holds at its position (free)."""
    return inner_state.position + params.sigma2 * inner_state.grad


@portable
def _jump_from_score(inner_state, params, target):
    """The jump from one more score evaluation at the inner position."""
    return inner_state.position + params.sigma2 * xp.score(target, inner_state.position)


@portable
def _walk_jump_init(position, noise, params, target):
    """The inner kernel's initial state at the walk position, and its jump."""
    t = walk_target(target)  # noqa: F821 - bound per class
    inner = inner_init(position, noise, params.inner, t)  # noqa: F821
    return pack(inner, jump_of(inner, params, t))  # noqa: F821


@portable
def _walk_jump_step(state, noise, step_size, params, target):
    """One step of the inner kernel on p_σ from the walk position, then the jump."""
    t = walk_target(target)  # noqa: F821 - bound per class
    inner, info = inner_step(unpack(state), noise, step_size, params.inner, t)  # noqa: F821
    return pack(inner, jump_of(inner, params, t)), info  # noqa: F821


def _inner_check(inner: Any, owner: str) -> Kernel:
    if not isinstance(inner, Kernel):
        raise TypeError(f"{owner}: inner must be a langevin kernel (e.g. MALA(0.1)); got "
                        f"{type(inner).__name__}")  # fmt: skip
    if isinstance(inner, (WalkJump, ChainOfLogConcave)):
        raise TypeError(f"{owner}: inner must be a sampling kernel, not {inner.name}")
    return inner


@dataclass(frozen=True, init=False, repr=False)
class WalkJump(Kernel):
    """Walk-jump sampling (Saremi & Hyvärinen 2019): any kernel walks on p_σ, and every
    walk position y is recorded as its jump ``x̂(y) = y + σ² ∇log p_σ(y)``.

    Run it on the *smoothed* target (:func:`smoothed`, a denoiser's or an energy's target
    at the same σ). The inner kernel's step, noise, warm-up (step-size adaptation) and
    statistics are its own; the jump reuses the gradient in the inner state when it has one
    (MALA, ULA, kinetic Langevin, ...: no extra evaluation), else costs one score call.

    Args:
        inner: the walk, any kernel of the package (``MALA(0.2)``,
            ``KineticLangevin(0.3, friction=1.0, discretization="aboba")``, ...).
        sigma: the noise level σ of the target walked on.
        score_only: the target has only a score (a denoiser's): the walk sees the
            log-density as 0, which only unadjusted kernels (ULA, kinetic Langevin) accept.
        step_size: the walk's step size (default: the inner kernel's).

    Example:
        >>> import langevin
        >>> from langevin.diffusion import WalkJump, smoothed
        >>> p = langevin.targets.gaussian_mixture([[-3.0], [3.0]], sds=[0.5, 0.5])
        >>> trace = langevin.sample(smoothed(p, 1.0), WalkJump(langevin.MALA(0.5), 1.0),
        ...                         chains=2, warmup=100, draws=100, progress=False, seed=0)
        >>> trace.draws.shape          # the jumps x̂(y_t)
        (2, 100, 1)
    """

    inner: Any = None
    sigma: float = 1.0
    score_only: bool = False

    Info: ClassVar[type]
    exact = False
    bias_order: ClassVar[float | None] = 1.0
    public_name = "WalkJump"
    inner_class: ClassVar[type | None] = None

    def __new__(cls, inner: Any = None, sigma: float = 1.0, *args: Any, **kwargs: Any):
        if cls is WalkJump:
            score_only = bool(kwargs.get("score_only", args[0] if args else False))
            cls = _walk_jump_class(type(_inner_check(inner, "WalkJump")), score_only)
        return object.__new__(cls)

    def __init__(self, inner: Kernel, sigma: float, score_only: bool = False,
                 step_size: float | None = None) -> None:  # fmt: skip
        _setup(self, inner, sigma, score_only, step_size)

    def __repr__(self) -> str:
        extra = ", score_only=True" if self.score_only else ""
        return (
            f"WalkJump({self.inner!r}, sigma={self.sigma!r}{extra}, step_size={self.step_size!r})"
        )

    def noise(self, dim: int) -> NamedTuple:
        return self.inner.noise(dim)

    def init_noise(self, dim: int) -> NamedTuple:
        return self.inner.init_noise(dim)

    def params(self) -> WalkJumpParams:
        return WalkJumpParams(self.sigma**2, self.inner.params())

    def divergent_transition(self) -> str | None:
        return self.inner.divergent_transition()

    @classmethod
    def example(cls) -> WalkJump:
        return cls(cls.inner_class.example(), 1.0, cls.requires == frozenset({"score"}))


def _setup(self: Any, inner: Any, sigma: Any, score_only: Any, step_size: Any) -> None:
    """Check and set the fields of a WalkJump or ChainOfLogConcave kernel."""
    owner = self.public_name
    inner = _inner_check(inner, owner)
    object.__setattr__(self, "inner", inner)
    object.__setattr__(self, "sigma", _positive("sigma", sigma))
    if not isinstance(score_only, bool):
        raise TypeError(f"{owner}: score_only must be a bool; got {score_only!r}")
    object.__setattr__(self, "score_only", score_only)
    object.__setattr__(self, "step_size",
                       inner.step_size if step_size is None else step_size)  # fmt: skip
    self.__post_init__()
    if score_only and (inner.exact or inner.adapts_step_size):
        raise ValueError(
            f"{owner}: inner={inner.name} needs the target's log-density (a "
            "Metropolis–Hastings correction or its warm-up), which a score-only target "
            "(a denoiser) does not have; use an unadjusted kernel (ULA, KineticLangevin) "
            "or an energy model's target with score_only=False"
        )


def _step_size_components(inner_cls: type) -> tuple[type, ...]:
    """The inner kernel's step-size adaptation (compiled into the loop; it reads only the
    inner Info); between-chunk components (a mass matrix) would rewrite the inner params."""
    return tuple(c for c in inner_cls.adaptation if issubclass(c, StepSizeAdaptation))


def _walk_jump_class(inner_cls: type, score_only: bool) -> type:
    """The WalkJump class for one inner kernel class (the Numba backend keys compiled loops
    by class, so each inner kernel gets its own, named after it)."""
    key = ("walkjump", inner_cls, score_only)
    if key in _CLASSES:
        return _CLASSES[key]
    outer, pack, unpack = _outer_state(inner_cls.State, "WalkJump")
    reuse = ("grad" in inner_cls.State._fields and "grad" in inner_cls.target_fields
             and not score_only)  # fmt: skip
    names = dict(
        inner_step=inner_cls.step_math,
        inner_init=inner_cls.init_math,
        pack=pack,
        unpack=unpack,
        jump_of=_jump_from_grad if reuse else _jump_from_score,
        walk_target=_score_only_target if score_only else _identity_target,
    )
    init = bind_globals(_walk_jump_init, **names)
    step = bind_globals(_walk_jump_step, **names)
    suffix = "ScoreOnly" if score_only else ""
    namespace = {
        "__module__": __name__,
        "__qualname__": f"WalkJump{inner_cls.__name__}{suffix}",
        "__doc__": f"WalkJump with inner kernel {inner_cls.__name__}: see :class:`WalkJump`.",
        "State": outer,
        "Info": inner_cls.Info,
        "Noise": inner_cls.Noise,
        "init_math": staticmethod(init),
        "step_math": staticmethod(step),
        "requires": frozenset({"score"}) if score_only else inner_cls.requires,
        "backends": inner_cls.backends,
        "adaptation": _step_size_components(inner_cls),
        "target_acceptance": inner_cls.target_acceptance,
        "stability_advice": inner_cls.stability_advice,
        "target_fields": (*inner_cls.target_fields, "position"),
        "inner_class": inner_cls,
    }
    cls = dataclass(frozen=True, init=False, repr=False)(
        type(namespace["__qualname__"], (WalkJump,), namespace)
    )
    _register(cls)
    _CLASSES[key] = cls
    return cls


# -- the chain of log-concave Markov chains ----------------------------------------------------
class Conditional(NamedTuple):
    """Tag of the combinator ``(Conditional(total, k, σ²), p_{σ/√k})``: the law of the k-th
    measurement y_k given the running sum ``total = Σ_{j<k} y_j`` of the previous ones."""

    total: Any
    k: float
    sigma2: float


@portable
def conditional_value_and_grad(target, y):
    """``log p(y_k | y_{1:k−1})`` up to a constant and its gradient in y_k: with
    ``ȳ = (total + y)/k``, ``−(‖y‖² − ‖total + y‖²/k)/(2σ²) + log p_{σ/√k}(ȳ)`` and
    ``(ȳ − y)/σ² + ∇log p_{σ/√k}(ȳ)/k``."""
    tag = target[0]
    s = tag.total + y
    ybar = s / tag.k
    lp, g = xp.value_and_grad(target[1], ybar)
    value = lp - (xp.sum(y * y) - xp.sum(s * s) / tag.k) / (2.0 * tag.sigma2)
    return value, (ybar - y) / tag.sigma2 + g / tag.k


@portable
def conditional_score(target, y):
    """The conditional score ``(ȳ − y)/σ² + ∇log p_{σ/√k}(ȳ)/k`` (no log-density needed)."""
    tag = target[0]
    ybar = (tag.total + y) / tag.k
    return (ybar - y) / tag.sigma2 + xp.score(target[1], ybar) / tag.k


register_combinator(Conditional, value_and_grad=conditional_value_and_grad,
                    score=conditional_score)  # fmt: skip


class CLMCParams(NamedTuple):
    """Per-chain runtime parameters of :class:`ChainOfLogConcave`: the running sum of the
    previous measurements, the stage k (a float), σ², and the inner kernel's params."""

    total: np.ndarray
    k: float
    sigma2: float
    inner: Any


@portable
def _clmc_target(target, params):
    return (Conditional(params.total, params.k, params.sigma2), walk_target(target))  # noqa: F821


@portable
def _clmc_init(position, noise, params, target):
    """The inner kernel's state at y_k on the conditional target."""
    return inner_init(position, noise, params.inner, _clmc_target(target, params))  # noqa: F821


@portable
def _clmc_step(state, noise, step_size, params, target):
    """One inner step on ``log p(y_k | y_{1:k−1})``."""
    return inner_step(state, noise, step_size, params.inner, _clmc_target(target, params))  # noqa: F821


@dataclass(frozen=True, init=False, repr=False)
class ChainOfLogConcave(Kernel):
    """One stage of the chain of log-concave Markov chains (Saremi, Park & Bach 2024): any
    kernel on the conditional law of the k-th measurement y_k given the previous ones.

    Run on the target at level σ/√k (``p_{σ/√k}``); ``params().total`` (per chain) is the
    sum of the previous measurements and ``k`` the stage. :func:`chain_of_log_concave`
    runs all m stages and the final jump; use this class directly only to run a stage.

    Args:
        inner: any kernel of the package.
        sigma: the measurement noise σ.
        score_only: the level targets have only a score (a denoiser's); see
            :class:`WalkJump`.
        step_size: the inner step size (default: the inner kernel's).
    """

    inner: Any = None
    sigma: float = 1.0
    score_only: bool = False

    exact = False
    bias_order: ClassVar[float | None] = 1.0
    public_name = "ChainOfLogConcave"
    inner_class: ClassVar[type | None] = None

    def __new__(cls, inner: Any = None, sigma: float = 1.0, *args: Any, **kwargs: Any):
        if cls is ChainOfLogConcave:
            score_only = bool(kwargs.get("score_only", args[0] if args else False))
            cls = _clmc_class(type(_inner_check(inner, "ChainOfLogConcave")), score_only)
        return object.__new__(cls)

    def __init__(self, inner: Kernel, sigma: float, score_only: bool = False,
                 step_size: float | None = None) -> None:  # fmt: skip
        _setup(self, inner, sigma, score_only, step_size)

    def __repr__(self) -> str:
        return f"ChainOfLogConcave({self.inner!r}, sigma={self.sigma!r})"

    def noise(self, dim: int) -> NamedTuple:
        return self.inner.noise(dim)

    def init_noise(self, dim: int) -> NamedTuple:
        return self.inner.init_noise(dim)

    def params(self) -> CLMCParams:
        """Stage 1 with no previous measurement (a one-element ``total``, broadcast to the
        dimension; :func:`chain_of_log_concave` passes the per-chain sums)."""
        return CLMCParams(np.zeros(1), 1.0, self.sigma**2, self.inner.params())

    @classmethod
    def example(cls) -> ChainOfLogConcave:
        return cls(cls.inner_class.example(), 1.0, cls.requires == frozenset({"score"}))


def _clmc_class(inner_cls: type, score_only: bool) -> type:
    key = ("clmc", inner_cls, score_only)
    if key in _CLASSES:
        return _CLASSES[key]
    names = dict(inner_step=inner_cls.step_math, inner_init=inner_cls.init_math,
                 walk_target=_score_only_target if score_only else _identity_target)  # fmt: skip
    target_fn = bind_globals(_clmc_target, walk_target=names["walk_target"])
    init = bind_globals(_clmc_init, inner_init=names["inner_init"], _clmc_target=target_fn)
    step = bind_globals(_clmc_step, inner_step=names["inner_step"], _clmc_target=target_fn)
    suffix = "ScoreOnly" if score_only else ""
    namespace = {
        "__module__": __name__,
        "__qualname__": f"ChainOfLogConcave{inner_cls.__name__}{suffix}",
        "__doc__": f"ChainOfLogConcave with inner kernel {inner_cls.__name__}.",
        "State": inner_cls.State,
        "Info": inner_cls.Info,
        "Noise": inner_cls.Noise,
        "init_math": staticmethod(init),
        "step_math": staticmethod(step),
        "requires": frozenset({"score"}) if score_only else inner_cls.requires,
        "backends": inner_cls.backends,
        "adaptation": _step_size_components(inner_cls),
        "target_acceptance": inner_cls.target_acceptance,
        "stability_advice": inner_cls.stability_advice,
        "target_fields": inner_cls.target_fields,
        "inner_class": inner_cls,
    }
    cls = dataclass(frozen=True, init=False, repr=False)(
        type(namespace["__qualname__"], (ChainOfLogConcave,), namespace)
    )
    _register(cls)
    _CLASSES[key] = cls
    return cls


@dataclass
class CLMCResult:
    """What :func:`chain_of_log_concave` returns.

    Attributes:
        jumps: ``(chains, d)`` the final jumps x̂(y_{1:m}) (the samples).
        measurements: ``(chains, m, d)`` the measurements y_1, ..., y_m kept.
        means: ``(chains, m, d)`` the running means ȳ_1, ..., ȳ_m.
        acceptance: ``(m,)`` mean acceptance rate of each stage.
        n_grad: score evaluations per chain (stages × steps, plus one for the jump).
    """

    jumps: np.ndarray
    measurements: np.ndarray
    means: np.ndarray
    acceptance: np.ndarray
    n_grad: int


def chain_of_log_concave(
    level_target: Callable[[int], Target] | Sequence[Target],
    kernel: Kernel,
    *,
    sigma: float,
    m: int,
    steps: int,
    chains: int,
    initial_position: np.ndarray,
    seed: int = 0,
    backend: str = "numba",
    score_only: bool = False,
    noise: Sequence[Any] | None = None,
    init_noise: Sequence[Any] | None = None,
) -> CLMCResult:
    """The chain of log-concave Markov chains (Saremi, Park & Bach 2024; ALGORITHMS §8c).

    For k = 1, ..., m: ``steps`` steps of ``kernel`` on ``log p(y_k | y_{1:k−1})`` (the
    conditional score in terms of the running mean, see the module docstring) with the
    previous measurements fixed, starting y_1 at ``initial_position`` and y_k (k > 1) at
    the running mean ȳ_{k−1}; keep the last y_k. Then jump:
    ``x̂ = ȳ_m + (σ²/m) ∇log p_{σ/√m}(ȳ_m)``.

    Args:
        level_target: ``k -> p_{σ/√k}`` (e.g. ``lambda k: smoothed(p, sigma / k**0.5)``, or a
            denoiser conditioned on k), or the sequence of the m targets.
        kernel: the inner kernel (any; its step size is used as given: no warm-up).
        sigma: the measurement noise σ.
        m: the number of measurements.
        steps: inner steps per measurement.
        chains: independent chains.
        initial_position: ``(d,)`` or ``(chains, d)`` starts of y_1.
        seed: the noise seed (each backend draws its own streams; pass ``noise`` for equal
            chains on both).
        backend: ``"numba"`` or ``"jax"``.
        score_only: the level targets have only a score (a denoiser's); the inner kernel
            must then be unadjusted.
        noise, init_noise: per stage, the inner kernel's noise arrays ``(chains, steps,
            ...)`` and init noise ``(chains, ...)`` (agreement tests, common random numbers).

    Returns:
        :class:`CLMCResult`.
    """
    from langevin.backends.base import check_kernel_and_target, get_backend

    sigma = _positive("sigma", sigma)
    m = _positive_int("m", m)
    steps = _positive_int("steps", steps)
    chains = _positive_int("chains", chains)
    if callable(level_target):
        get_level = level_target
    else:
        targets = list(level_target)
        if len(targets) != m:
            raise ValueError(f"level_target: need m = {m} targets; got {len(targets)}")
        get_level = lambda k: targets[k - 1]  # noqa: E731
    stage = ChainOfLogConcave(kernel, sigma, score_only)
    if backend not in ("numba", "jax"):
        raise ValueError(f"backend must be 'numba' or 'jax'; got {backend!r}")
    first = get_level(1)
    if not isinstance(first, Target):
        raise TypeError(f"level_target(1) must be a langevin Target; got {type(first).__name__}")
    dim = first.dim
    x0 = np.asarray(initial_position, dtype=np.float64)
    if x0.shape == (dim,):
        x0 = np.broadcast_to(x0, (chains, dim)).copy()
    if x0.shape != (chains, dim):
        raise ValueError(f"initial_position must have shape ({dim},) or ({chains}, {dim}); "
                         f"got {x0.shape}")  # fmt: skip
    for name, given in (("noise", noise), ("init_noise", init_noise)):
        if given is not None and len(given) != m:
            raise ValueError(f"{name}: need one entry per stage (m = {m}); got {len(given)}")
    engine = get_backend(backend)
    for k in range(1, m + 1):  # every capability checked before anything compiles
        check_kernel_and_target(stage, get_level(k), backend)
    seeds = np.random.SeedSequence(seed).spawn(2 * m)
    total = np.zeros((chains, dim))
    y = x0
    kept, means, acceptance = [], [], []
    inner_params = engine.broadcast_params(kernel.params(), chains)
    forms = None
    if backend == "jax":  # the level as runtime data: one compiled loop for all m stages
        forms = _jax_level_forms([get_level(k) for k in range(1, m + 1)],
                                 engine.default_float())  # fmt: skip
    for k in range(1, m + 1):
        target = get_level(k) if forms is None else forms[k - 1]
        prepared = engine.prepare(stage, target, dim, engine.default_float())
        sources = engine.noise_sources(seeds[2 * k - 2], chains)
        params = CLMCParams(total.copy(), np.full(chains, float(k)), np.full(chains, sigma**2),
                            inner_params)  # fmt: skip
        inits = None if init_noise is None else init_noise[k - 1]
        if backend == "jax":
            state = engine.init(prepared, y, params=params, noise=inits,
                                keys=engine.noise_sources(seeds[2 * k - 1], chains))  # fmt: skip
        else:
            state = engine.init(prepared, y, params=params, noise=inits,
                                rngs=engine.noise_sources(seeds[2 * k - 1], chains))  # fmt: skip
        h = np.full(chains, float(kernel.step_size))
        done, acc = 0, []
        while done < steps:
            if noise is not None:
                n = steps - done
                chunk = _slice_noise(noise[k - 1], done, steps)
                result = engine.run(prepared, state, n, h, params=params, noise=chunk,
                                    start=done)  # fmt: skip
            else:
                cap = engine.chunk_length(chains, dim, stage) if backend == "jax" else 1000
                n = min(steps - done, cap)
                key = "keys" if backend == "jax" else "rngs"
                result = engine.run(prepared, state, n, h, params=params, start=done,
                                    **{key: sources})  # fmt: skip
            if result.diverged.any():
                bad = np.flatnonzero(result.diverged)
                raise FloatingPointError(
                    f"chain_of_log_concave: chains {bad.tolist()} diverged at stage k = {k}; "
                    f"{stage.stability_advice}"
                )
            state = result.state
            acc.append(np.mean(result.info["acceptance_rate"]))
            done += n
        y = np.asarray(state.position, dtype=np.float64)
        total = total + y
        kept.append(y)
        means.append(total / k)
        acceptance.append(float(np.mean(acc)))
        y = total / k  # the next measurement starts at the running mean
    ybar = total / m
    last = get_level(m)
    sigma_m = sigma / math.sqrt(m)
    jumps = jump(last, ybar, sigma_m, backend=backend)
    return CLMCResult(
        jumps=jumps,
        measurements=np.stack(kept, axis=1),
        means=np.stack(means, axis=1),
        acceptance=np.asarray(acceptance),
        n_grad=m * steps + 1,
    )


# -- JAX: the level as a runtime value --------------------------------------------------------
def _mixture_level_logdensity(x, data):
    """The Gaussian-mixture log-density with its (means, precisions, log constants) given
    as runtime ``data`` (the same math as :func:`langevin.targets.gaussian_mixture`'s)."""
    from langevin.targets.mixture import _mixture_jax

    return _mixture_jax(*data)(x)


_MIXTURE_LEVEL_FNS: dict = {}


def _mixture_level_functions() -> tuple:
    """The form slots of :func:`_mixture_level_logdensity` (built once: one identity, one
    compiled loop for every level and every call)."""
    if not _MIXTURE_LEVEL_FNS:
        import jax

        from langevin.targets.capabilities import SLOTS

        fns = {
            "logdensity": _mixture_level_logdensity,
            "value_and_grad": jax.value_and_grad(_mixture_level_logdensity),
            "grad": jax.grad(_mixture_level_logdensity),
        }
        _MIXTURE_LEVEL_FNS["slots"] = tuple(fns.get(n) for n in SLOTS)
    return _MIXTURE_LEVEL_FNS["slots"]


def _is_mixture(target: Any) -> bool:
    return (isinstance(getattr(target, "components", None), dict)
            and isinstance(target.data, tuple) and len(target.data) == 3)  # fmt: skip


def _jax_level_forms(levels: list[Target], dtype: Any) -> list[Any]:
    """One JAX :class:`~langevin.targets.capabilities.TargetForm` per level, all with the
    same key, the level being their runtime ``data``, so that :func:`chain_of_log_concave`
    compiles its loop once, not once per level:

    * Gaussian mixtures of equal shapes (:func:`smoothed` levels): the data is the level's
      (means, precisions, log constants), the density one function of them;
    * otherwise: the data is the level index ``k − 1`` and each capability is a
      ``lax.switch`` over the m levels' functions (one program holding all m branches).
    """
    import jax
    import jax.numpy as jnp

    from langevin.backends import jax_ops
    from langevin.backends.jax_backend import bind_target
    from langevin.targets.capabilities import BASE_FORM, SLOTS, TargetForm

    caps = frozenset.intersection(*(t.capabilities("jax") for t in levels))
    shapes = {tuple(np.shape(a) for a in t.data) for t in levels if _is_mixture(t)}
    if all(_is_mixture(t) for t in levels) and len(shapes) == 1:
        fns = _mixture_level_functions()
        return [
            TargetForm(
                key=("jax", "clmc-mixture-level", fns),
                data=tuple(jnp.asarray(a, dtype) for a in t.data),
                build=lambda d, fns=fns: (BASE_FORM, *fns, d),
                numba_type=None,
                capabilities=caps,
            )
            for t in levels
        ]
    forms = [bind_target(t, t.dim, dtype) for t in levels]

    def switch(name):
        accessor = getattr(jax_ops, name)
        branches = [(lambda x, f=f: accessor(f.build(f.data), x)) for f in forms]

        def fn(x, index):
            return jax.lax.switch(index, branches, x)

        return fn

    wanted = caps & {"logdensity", "value_and_grad", "grad", "score"}
    fns = tuple(switch(n) if n in wanted else None for n in SLOTS)
    key = ("jax", "clmc-switch", tuple(f.key for f in forms))
    return [
        TargetForm(
            key=key,
            data=jnp.asarray(k, jnp.int32),
            build=lambda d, fns=fns: (BASE_FORM, *fns, d),
            numba_type=None,
            capabilities=caps,
        )
        for k in range(len(levels))
    ]


def _slice_noise(noise: Any, lo: int, hi: int) -> Any:
    return type(noise)(*(np.asarray(a)[:, lo:hi] for a in noise))
