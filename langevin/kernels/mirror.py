"""Mirror-Langevin kernels: BMUMLA (Bregman–Moreau unadjusted mirror Langevin) and plain
mirror Langevin.

**Mirror Langevin** (Zhang, Peyré, Fadili & Pereyra 2020; Hsieh et al. 2018; Ahn & Chewi
2021) discretises the mirror-Langevin diffusion with a Legendre mirror map φ by one
Euler–Maruyama step in the dual space:

    y  = ∇φ(x) + h ∇log π(x) + √(2h) [∇²φ(x)]^{1/2} ξ,     x' = ∇φ*(y).

x' lies in dom φ by construction, so a constrained support (the orthant with the log
barrier, the simplex with the entropy) is never left. Its bias vanishes as h → 0 (Li, Tao,
Vempala & Wibisono 2022, "The mirror Langevin algorithm converges with vanishing bias",
ALT) — the earlier analysis of Zhang et al. left a non-vanishing term; ``bias_order`` = 1/2
is that of the Euclidean case without a Lipschitz Hessian (ULA, Durmus & Moulines 2019).

**BMUMLA** (Lau & Liu 2022, Algorithm 1) applies the same step to the *smoothed* composite
target π_λ^ψ ∝ exp(−f − g_λ^ψ), where g_λ^ψ is the left Bregman–Moreau envelope of the
nonsmooth part g for a Legendre ψ (:mod:`langevin.proximal.bregman`):

    ∇log π_λ^ψ(x) = −∇f(x) − ∇²ψ(x)(x − P_λ^ψ g(x))/λ.

**π_λ^ψ, not π, is what BMUMLA samples** (its bias against π is the smoothing's, of order λ
for a Lipschitz g, like the Moreau–Yosida one, Lau & Liu 2022 §3; plus the step's bias). The
left Bregman prox comes from the target's Euclidean ``prox`` by transport,
P_λ^ψ g(x) = h⁻¹(prox_{λg}(h(x))) with h = ∇ψ − ∇ψ(0), which is exact for a sign-invariant g
(weighted L1, the nonnegative orthant); with ψ Euclidean any g works. With φ and ψ both
Euclidean BMUMLA is MYULA (Durmus et al. 2018), and with g ≡ 0 it is mirror Langevin.

Mirror maps (``mirror=``): ``"euclidean"``, ``"hypentropy"`` (scale β), ``"log_barrier"``
(the open orthant, scale β: φ = −Σβ log x), ``"entropy"`` (the open simplex in its first d
coordinates, x_{d+1} = 1 − Σx; one extra N(0, 1) per step). Envelopes (``envelope=``):
``"euclidean"``, ``"diagonal"`` (ψ = ½Σ s x², scale s), ``"hypentropy"`` (scale σ), ``"exp"``.
Each (mirror, envelope) pair is its own kernel class (the Numba backend keys compiled loops
by class), built from one step template.

A log-barrier dual point y with a coordinate ≥ 0 has no primal image: the step then reports
``diverging`` and the chain stops (probability ≈ P(ξ > 1/√(2h)), negligible for small h).

The EM step in the primal ("mirrorless", BMMMLA in Lau & Liu 2022) is not implemented: its
form could not be verified against the paper (ALGORITHMS.md marks it unverified; the paper's
algorithm section was not readable here and the authors' code implements BMUMLA only, see
docs/proximal.md).

Randomness per step: one N(0, I_d) (plus one N(0, 1) for the entropy mirror map).

References:
    Lau, T. T.-K. and Liu, H. (2022). Bregman proximal Langevin Monte Carlo via
    Bregman–Moreau envelopes. ICML. arXiv:2207.04387.
    Zhang, K. S., Peyré, G., Fadili, J. and Pereyra, M. (2020). Wasserstein control of
    mirror Langevin Monte Carlo. COLT.
    Ahn, K. and Chewi, S. (2021). Efficient constrained sampling via the mirror-Langevin
    algorithm. NeurIPS.
    Li, R., Tao, M., Vempala, S. S. and Wibisono, A. (2022). The mirror Langevin algorithm
    converges with vanishing bias. ALT.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from langevin.backends.portable import portable
from langevin.kernels.base import GradientState, Kernel, Normal, Vector
from langevin.kernels.overdamped import ULAInfo
from langevin.kernels.proximal import check_smoothing
from langevin.proximal.bregman import ENVELOPES, MIRRORED, MIRRORS

__all__ = [
    "BregmanMoreauMirrorLangevin",
    "MirrorLangevin",
    "MirroredLangevin",
    "MirrorParams",
    "BMUMLA_VARIANTS",
    "MIRROR_VARIANTS",
    "MIRRORED_VARIANTS",
]

xp: Any = None


class MirrorParams(NamedTuple):
    smoothing: Any  # λ (unused without an envelope)
    mirror_scale: Any  # (d,) or (1,): β of the mirror map
    envelope_scale: Any  # (d,) or (1,): s of ψ


class MirrorNoise(NamedTuple):
    normal: Vector


class MirrorSimplexNoise(NamedTuple):
    normal: Vector
    extra: Any  # Scalar: the (d+1)-th normal of the entropy's Hessian square root


# -- templates (their globals are bound per class) -----------------------------------------------
@portable
def _no_extra(noise):
    return 0.0


@portable
def _extra(noise):
    return noise.extra


@portable
def _plain_logdensity(target, x, params):
    """g ≡ 0: ``(log π(x), ∇log π(x))``."""
    return xp.value_and_grad(target, x)


def _smoothed_template(target, x, params):
    """``(log π_λ^ψ(x), ∇log π_λ^ψ(x))``: the Bregman–Moreau envelope by transport."""
    logf, gradf = xp.value_and_grad(target, x)
    s = params.envelope_scale
    lam = params.smoothing
    p = env_unshift(xp.prox(target, env_shift(x, s), lam), s)  # noqa: F821 (bound per class)
    value = logf - xp.nonsmooth(target, p) - env_divergence(p, x, s) / lam  # noqa: F821
    return value, gradf - env_hess(x, s) * (x - p) / lam  # noqa: F821


@portable
def _plain_init(position, noise, params, target):
    lp, grad = xp.value_and_grad(target, position)
    return GradientState(position, lp, grad)


def _init_template(position, noise, params, target):
    lp, grad = smoothed(target, position, params)  # noqa: F821
    return GradientState(position, lp, grad)


def _step_template(state, noise, step_size, params, target):
    """One mirror-Langevin step in the dual: y = ∇φ(x) + h∇log π_λ^ψ(x) + √(2h)[∇²φ]^{1/2}ξ."""
    x = state.position
    s = params.mirror_scale
    kick = mirror_noise(x, s, noise.normal, noise_extra(noise))  # noqa: F821
    y = mirror_grad(x, s) + step_size * state.grad + xp.sqrt(2.0 * step_size) * kick  # noqa: F821
    position = mirror_inverse(y, s)  # noqa: F821
    lp, grad = smoothed(target, position, params)  # noqa: F821
    diverging = xp.logical_not(xp.isfinite(lp))
    return GradientState(position, lp, grad), ULAInfo(1.0 + 0.0 * step_size, diverging)


def _mirrored_step_template(state, noise, step_size, params, target):
    """ULA in the dual on the pushforward π̃(y) = π(x) |det ∂x/∂y|, x = ∇φ*(y):
    ∇_y log π̃ = [∇²φ(x)]⁻¹ (∇log π(x) + ∇_x log det ∂x/∂y)."""
    x = state.position
    s = params.mirror_scale
    drift = inverse_hessian(x, s, state.grad + logdet_grad(x, s))  # noqa: F821
    y = mirror_grad(x, s) + step_size * drift + xp.sqrt(2.0 * step_size) * noise.normal  # noqa: F821
    position = mirror_inverse(y, s)  # noqa: F821
    lp, grad = xp.value_and_grad(target, position)
    diverging = xp.logical_not(xp.isfinite(lp))
    return GradientState(position, lp, grad), ULAInfo(1.0 + 0.0 * step_size, diverging)


def _bind(template, name: str, **names) -> Any:
    g = dict(template.__globals__)
    g.update(names)
    fn = types.FunctionType(template.__code__, g, name, None, None)
    fn.__qualname__ = name
    fn.__doc__ = template.__doc__
    fn.__module__ = __name__
    globals()[name] = portable(fn)
    return fn


def _smoothed_for(envelope: str):
    if envelope == "none":
        return _plain_logdensity
    shift, unshift, hess, divergence = ENVELOPES[envelope]
    return _bind(
        _smoothed_template,
        f"_smoothed_{envelope}",
        env_shift=shift,
        env_unshift=unshift,
        env_hess=hess,
        env_divergence=divergence,
    )


_SMOOTHED = {e: _smoothed_for(e) for e in (*ENVELOPES, "none")}


def _check_scale(owner: str, argname: str, value: Any) -> float | tuple:
    arr = np.asarray(value, dtype=np.float64) if not isinstance(value, bool) else None
    if arr is None or arr.ndim > 1 or arr.size == 0:
        raise TypeError(f"{owner}: {argname} must be a positive float or 1-D array; got {value!r}")
    if not np.all(np.isfinite(arr)) or not np.all(arr > 0):
        raise ValueError(f"{owner}: {argname} must be positive and finite; got {value!r}")
    return float(arr) if arr.ndim == 0 else tuple(float(v) for v in arr)


def _example_gaussian(dim: int):
    from langevin.targets.gaussians import gaussian

    return gaussian(dim, mean=np.linspace(-1.0, 1.0, dim), cov=np.linspace(0.5, 1.5, dim))


# -- BMUMLA ----------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class BregmanMoreauMirrorLangevin(Kernel):
    """Bregman–Moreau unadjusted mirror-Langevin (BMUMLA; Lau & Liu 2022). **Biased**; it
    samples the smoothed π_λ^ψ ∝ exp(−f − g_λ^ψ), not π (module docstring).

    ``BregmanMoreauMirrorLangevin(...)`` returns an instance of the class of the chosen
    (mirror, envelope) pair, a subclass of this one.

    Args:
        step_size: h > 0 (not adapted).
        smoothing: λ > 0 of the Bregman–Moreau envelope.
        mirror: ``"hypentropy"`` (default) or ``"euclidean"``: φ.
        envelope: ``"euclidean"`` (default), ``"diagonal"``, ``"hypentropy"`` or ``"exp"``:
            ψ. Non-Euclidean ψ need a sign-invariant penalty (weighted L1 or the orthant;
            :meth:`check_target`).
        mirror_scale: β of the hypentropy φ (a number or one per coordinate).
        envelope_scale: s of ψ (M = diag(s) for ``"diagonal"``, σ for ``"hypentropy"``).

    Example (Lau & Liu's anisotropic Laplace, small):
        >>> import numpy as np, langevin
        >>> from langevin.proximal import l1
        >>> from langevin.targets.composite import composite, flat
        >>> alpha = np.arange(1.0, 5.0)
        >>> target = composite(flat(4), l1(alpha))
        >>> kernel = BregmanMoreauMirrorLangevin(1e-3, smoothing=1e-2, mirror="hypentropy",
        ...     envelope="diagonal", mirror_scale=2 * np.sqrt(5 - alpha),
        ...     envelope_scale=alpha / 2)
        >>> trace = langevin.sample(target, kernel, warmup=100, draws=100, progress=False)
    """

    step_size: float
    smoothing: float = 0.1
    mirror: str = "hypentropy"
    envelope: str = "euclidean"
    mirror_scale: Any = 1.0
    envelope_scale: Any = 1.0

    State = GradientState
    Info = ULAInfo
    exact = False
    bias_order = 0.5
    samples: ClassVar[str] = "pi_lambda"
    smoothing_bias_order: ClassVar[dict] = {"lipschitz": 1.0, "indicator": 0.5}
    requires = frozenset({"value_and_grad", "prox", "nonsmooth"})
    mirror_name: ClassVar[str | None] = None
    envelope_name: ClassVar[str | None] = None
    MIRROR_CHOICES: ClassVar[tuple[str, ...]] = ("hypentropy", "euclidean")

    def __new__(cls, *args: Any, **kwargs: Any):
        if cls.mirror_name is None:
            mirror = kwargs.get("mirror", args[2] if len(args) > 2 else "hypentropy")
            envelope = kwargs.get("envelope", args[3] if len(args) > 3 else "euclidean")
            cls = _variant(BMUMLA_VARIANTS, "BregmanMoreauMirrorLangevin", (mirror, envelope))
        return object.__new__(cls)

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = "BregmanMoreauMirrorLangevin"
        object.__setattr__(self, "smoothing", check_smoothing(owner, self.smoothing))
        object.__setattr__(
            self, "mirror_scale", _check_scale(owner, "mirror_scale", self.mirror_scale)
        )
        object.__setattr__(
            self, "envelope_scale", _check_scale(owner, "envelope_scale", self.envelope_scale)
        )

    def __repr__(self) -> str:
        return (
            f"BregmanMoreauMirrorLangevin(step_size={self.step_size!r}, "
            f"smoothing={self.smoothing!r}, mirror={self.mirror!r}, "
            f"envelope={self.envelope!r}, mirror_scale={self.mirror_scale!r}, "
            f"envelope_scale={self.envelope_scale!r})"
        )

    def noise(self, dim: int) -> MirrorNoise:
        return MirrorNoise(Normal((dim,)))

    def params(self) -> MirrorParams:
        return MirrorParams(
            self.smoothing,
            np.atleast_1d(np.asarray(self.mirror_scale, dtype=np.float64)),
            np.atleast_1d(np.asarray(self.envelope_scale, dtype=np.float64)),
        )

    def check_target(self, target: Any) -> None:
        """Refuse a composite target whose penalty the envelope cannot transport (a
        non-Euclidean ψ needs a sign-invariant g: weighted L1 or the orthant)."""
        penalty = getattr(target, "penalty", None)
        if self.envelope != "euclidean" and penalty is not None and not penalty.sign_invariant:
            raise ValueError(
                f"envelope={self.envelope!r} needs a sign-invariant penalty (l1, weighted_l1, "
                f"nonnegative): its Bregman prox is the transported Euclidean one; the target's "
                f"penalty {penalty.name!r} is not. Use envelope='euclidean'."
            )

    @classmethod
    def variants(cls) -> tuple[type, ...]:
        """Every (mirror, envelope) class (what the conformance suite runs)."""
        return tuple(BMUMLA_VARIANTS.values())

    #: a step size that is stable on :meth:`example_target`
    example_step_size: ClassVar[float] = 0.02

    @classmethod
    def example_target(cls, dim: int):
        """A target every variant runs on (a Gaussian f with an L1 g), for docs and tests."""
        from langevin.kernels.proximal import _example_target

        return _example_target(dim)


@dataclass(frozen=True, repr=False)
class MirrorLangevin(Kernel):
    """Mirror-Langevin algorithm (g ≡ 0; Zhang et al. 2020, Ahn & Chewi 2021). **Biased.**

    ``x' = ∇φ*(∇φ(x) + h∇log π(x) + √(2h)[∇²φ(x)]^{1/2} ξ)``: with ``mirror="log_barrier"``
    the chain stays in the open orthant, with ``"entropy"`` in the open simplex (the target's
    position is the first d of d + 1 barycentric coordinates), with ``"hypentropy"`` it
    moves in ℝ^d with position-dependent steps (large far from 0 when β is small).

    Args:
        step_size: h > 0 (not adapted).
        mirror: ``"hypentropy"`` (default), ``"log_barrier"`` or ``"entropy"``.
        mirror_scale: β of the hypentropy or the log barrier (a number or one per
            coordinate; unused by the entropy).

    Example (a Dirichlet(2, 3, 4) law, in its first two coordinates):
        >>> import langevin
        >>> from langevin.targets.supported import dirichlet
        >>> trace = langevin.sample(dirichlet([2.0, 3.0, 4.0]),
        ...                         MirrorLangevin(0.01, mirror="entropy"),
        ...                         warmup=100, draws=200, progress=False, seed=0)
    """

    step_size: float
    mirror: str = "hypentropy"
    mirror_scale: Any = 1.0

    State = GradientState
    Info = ULAInfo
    exact = False
    bias_order = 0.5
    mirror_name: ClassVar[str | None] = None
    envelope_name: ClassVar[str | None] = "none"
    MIRROR_CHOICES: ClassVar[tuple[str, ...]] = ("hypentropy", "log_barrier", "entropy")

    def __new__(cls, *args: Any, **kwargs: Any):
        if cls.mirror_name is None:
            mirror = kwargs.get("mirror", args[1] if len(args) > 1 else "hypentropy")
            cls = _variant(MIRROR_VARIANTS, "MirrorLangevin", mirror)
        return object.__new__(cls)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(
            self, "mirror_scale", _check_scale("MirrorLangevin", "mirror_scale", self.mirror_scale)
        )

    def __repr__(self) -> str:
        return (
            f"MirrorLangevin(step_size={self.step_size!r}, mirror={self.mirror!r}, "
            f"mirror_scale={self.mirror_scale!r})"
        )

    def noise(self, dim: int) -> NamedTuple:
        if self.mirror == "entropy":
            return MirrorSimplexNoise(Normal((dim,)), Normal(()))
        return MirrorNoise(Normal((dim,)))

    def params(self) -> MirrorParams:
        one = np.ones(1)
        return MirrorParams(
            1.0, np.atleast_1d(np.asarray(self.mirror_scale, dtype=np.float64)), one
        )

    @classmethod
    def variants(cls) -> tuple[type, ...]:
        return tuple(MIRROR_VARIANTS.values())

    #: a step size that is stable on :meth:`example_target` (small near the boundaries)
    example_step_size: ClassVar[float] = 0.01

    @classmethod
    def example_target(cls, dim: int):
        """A target on this variant's domain: ℝ^d (a Gaussian), the orthant (a product of
        Gammas) or the simplex (a Dirichlet on d + 1 categories)."""
        from langevin.targets.supported import dirichlet, gamma

        if cls.mirror_name == "log_barrier":
            return gamma(np.linspace(2.0, 4.0, dim), np.linspace(1.0, 2.0, dim))
        if cls.mirror_name == "entropy":
            return dirichlet(np.linspace(2.0, 4.0, dim + 1))
        return _example_gaussian(dim)


@dataclass(frozen=True, repr=False)
class MirroredLangevin(Kernel):
    """Mirrored Langevin dynamics (Hsieh, Kavis, Rolland & Cevher 2018): ULA in the dual
    space of φ on the pushforward law. **Biased** (ULA's bias, in the dual coordinates).

    With y = ∇φ(x), the law of y has log-density log π̃(y) = log π(x) + log|det ∂x/∂y|, and

        y' = y + h ∇_y log π̃(y) + √(2h) ξ,      x' = ∇φ*(y'),
        ∇_y log π̃ = [∇²φ(x)]⁻¹ (∇log π(x) + ∇_x log|det ∂x/∂y|).

    Unlike the mirror-Langevin step (:class:`MirrorLangevin`, which needs −log π smooth
    *relative* to φ and is unstable near the boundary otherwise: a Dirichlet with α > 1 and
    the entropy), the dual target is often smooth in the Euclidean sense: for a Dirichlet(α)
    and the entropy, ∇_y log π̃ = α_{1..d} − α₀ x, bounded. x' stays in dom φ.

    Args:
        step_size: h > 0 (not adapted).
        mirror: ``"entropy"`` (default: the simplex) or ``"hypentropy"``: mirror maps whose
            dual space is all of ℝ^d. (Not the log barrier: its dual is the half-space y < 0,
            which a Gaussian step leaves — measured on a Gamma law at h = 0.01 within 10
            steps; use :class:`MirrorLangevin` there.)
        mirror_scale: β of the hypentropy.
    """

    step_size: float
    mirror: str = "entropy"
    mirror_scale: Any = 1.0

    State = GradientState
    Info = ULAInfo
    Noise = MirrorNoise
    init_math = staticmethod(_plain_init)
    exact = False
    bias_order = 1.0
    mirror_name: ClassVar[str | None] = None
    #: mirror maps whose dual space is all of ℝ^d (ULA there cannot leave it; the log
    #: barrier's dual is a half-space, which a Gaussian step can leave)
    MIRROR_CHOICES: ClassVar[tuple[str, ...]] = ("entropy", "hypentropy")

    def __new__(cls, *args: Any, **kwargs: Any):
        if cls.mirror_name is None:
            mirror = kwargs.get("mirror", args[1] if len(args) > 1 else "entropy")
            cls = _variant(MIRRORED_VARIANTS, "MirroredLangevin", mirror)
        return object.__new__(cls)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(
            self,
            "mirror_scale",
            _check_scale("MirroredLangevin", "mirror_scale", self.mirror_scale),
        )

    def __repr__(self) -> str:
        return (
            f"MirroredLangevin(step_size={self.step_size!r}, mirror={self.mirror!r}, "
            f"mirror_scale={self.mirror_scale!r})"
        )

    def noise(self, dim: int) -> MirrorNoise:
        return MirrorNoise(Normal((dim,)))

    def params(self) -> MirrorParams:
        one = np.ones(1)
        return MirrorParams(
            1.0, np.atleast_1d(np.asarray(self.mirror_scale, dtype=np.float64)), one
        )

    @classmethod
    def variants(cls) -> tuple[type, ...]:
        return tuple(MIRRORED_VARIANTS.values())

    example_step_size: ClassVar[float] = 0.01

    @classmethod
    def example_target(cls, dim: int):
        """As :meth:`MirrorLangevin.example_target`."""
        return MirrorLangevin.example_target.__func__(cls, dim)


def _variant(table: dict, owner: str, key: Any) -> type:
    if key not in table:
        if isinstance(key, tuple):
            mirror, envelope = key
            if mirror not in BregmanMoreauMirrorLangevin.MIRROR_CHOICES:
                raise ValueError(
                    f"{owner}: mirror must be one of "
                    f"{list(BregmanMoreauMirrorLangevin.MIRROR_CHOICES)}; "
                    f"got {mirror!r}"
                )
            raise ValueError(
                f"{owner}: envelope must be one of {list(ENVELOPES)}; got {envelope!r}"
            )
        raise ValueError(f"{owner}: mirror must be one of {list(table)}; got {key!r}")
    return table[key]


def _make_class(base: type, mirror: str, envelope: str) -> type:
    grad, inverse, noise_fn = MIRRORS[mirror]
    short = "BMUMLA" if base is BregmanMoreauMirrorLangevin else "MirrorLangevin"
    suffix = f"{mirror}_{envelope}" if envelope != "none" else mirror
    name = f"{short}_{suffix}"
    names = dict(
        mirror_grad=grad,
        mirror_inverse=inverse,
        mirror_noise=noise_fn,
        noise_extra=_extra if mirror == "entropy" else _no_extra,
        smoothed=_SMOOTHED[envelope],
    )
    step = _bind(_step_template, f"{name}_step", **names)
    init = _bind(_init_template, f"{name}_init", **names)
    noise_cls = MirrorSimplexNoise if mirror == "entropy" else MirrorNoise
    namespace = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"{short} with mirror={mirror!r}"
        + (f", envelope={envelope!r}" if envelope != "none" else "")
        + f": see :class:`{base.__name__}`.",
        "__annotations__": {"mirror": "str"} | ({"envelope": "str"} if envelope != "none" else {}),
        "mirror": mirror,
        "mirror_name": mirror,
        "envelope_name": envelope,
        "Noise": noise_cls,
        "init_math": staticmethod(init),
        "step_math": staticmethod(step),
    }
    if envelope != "none":
        namespace["envelope"] = envelope
    cls = dataclass(frozen=True, repr=False)(type(name, (base,), namespace))
    globals()[name] = cls
    return cls


#: (mirror, envelope) -> BMUMLA class.
BMUMLA_VARIANTS: dict[tuple[str, str], type] = {
    (m, e): _make_class(BregmanMoreauMirrorLangevin, m, e)
    for m in BregmanMoreauMirrorLangevin.MIRROR_CHOICES
    for e in ENVELOPES
}


def _make_mirrored(mirror: str) -> type:
    grad, inverse, _ = MIRRORS[mirror]
    inv_hess, logdet = MIRRORED[mirror]
    name = f"MirroredLangevin_{mirror}"
    step = _bind(
        _mirrored_step_template,
        f"{name}_step",
        mirror_grad=grad,
        mirror_inverse=inverse,
        inverse_hessian=inv_hess,
        logdet_grad=logdet,
    )
    namespace = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"MirroredLangevin with mirror={mirror!r}: see :class:`MirroredLangevin`.",
        "__annotations__": {"mirror": "str"},
        "mirror": mirror,
        "mirror_name": mirror,
        "step_math": staticmethod(step),
    }
    cls = dataclass(frozen=True, repr=False)(type(name, (MirroredLangevin,), namespace))
    globals()[name] = cls
    return cls


#: mirror -> mirrored-Langevin class.
MIRRORED_VARIANTS: dict[str, type] = {m: _make_mirrored(m) for m in MirroredLangevin.MIRROR_CHOICES}

#: mirror -> mirror-Langevin class.
MIRROR_VARIANTS: dict[str, type] = {
    m: _make_class(MirrorLangevin, m, "none") for m in MirrorLangevin.MIRROR_CHOICES
}
