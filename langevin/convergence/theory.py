"""What a kernel under study is, how to build it at a step size, and what theory says.

A study takes kernels in any of these forms (:func:`resolve_kernels`): a built-in name
(``"ULA"``, ``"MALA"``, ``"HMC_L5"``, ``"kinetic_baoab"``, … :func:`builtin_names`), a
:class:`~langevin.kernels.base.Kernel` instance (rebuilt at each step size with
``dataclasses.replace``), a kernel class or any callable ``h -> Kernel`` (a user's own
kernel written as in :mod:`langevin.kernels.base`, in a module, a notebook cell or an
``exec``), or a ready :class:`KernelSpec`.

What the kernel's step *is* on a Gaussian (affine or not) is detected by probing
(:func:`langevin.convergence.twin.classify`). What theory *says* (:class:`KernelTheory`) comes
from the kernel: ``exact`` (no stationary bias) and ``bias_order`` are class attributes of the
contract, and a kernel may declare ``dimension_exponent`` (the exponent of d in the cost to a
fixed W2 accuracy); the built-in kernels carry the table below, with its sources. A study's
``theory=`` argument overrides either.

Theory beside the measurements (a claim we could not check against the paper is marked
**[unverified]**; the numbers are *upper-bound* orders from the papers unless "Gaussian"
says it is the exact order on Gaussian targets):

ULA — W2 bias O(h) under a Lipschitz Hessian (Durmus & Moulines 2019, *High-dimensional
    Bayesian inference via the unadjusted Langevin algorithm*, Bernoulli 25(4); Dalalyan
    2017, JRSS B 79(3) gives O(√h) from smoothness alone). Gaussian, exact: on
    N(0, I_d/λ) the stationary bias is √(d/λ)(1/√(1 − hλ/2) − 1) ≈ √d h√λ/4 (ALGORITHMS.md
    §1, §10a). Dimension: Õ(√d/ε) iterations to W2 ≤ ε without warm start (Li, Zha & Tao,
    ICLR 2022, abstract checked), so exponent 1/2.
MALA — exact (no stationary bias). Mixing Θ̃(d^{1/2}) from a warm start (Chewi, Lu, Ahn,
    Cheng, Le Gouic & Rigollet, COLT 2021, abstract checked); not measured here (needs
    Monte Carlo in high dimension, where the W2 noise floor is too high).
kinetic, randomized midpoint — Shen & Lee (NeurIPS 2019, abstract checked): W2 error
    ε·√(d/m) after Õ(κ^{7/6}/ε^{1/3} + κ/ε^{2/3}) gradient evaluations. Reading a bias order
    off that count (number of steps ∝ 1/h at fixed time, so the leading term h ∝ ε^{2/3})
    gives W2 bias O(h^{3/2}); the kernel declares ``bias_order = 1.5``. At fixed *absolute*
    accuracy ε_abs = ε√(d/m) the leading term grows like d^{1/3} (the other like d^{1/6}).
    Yu, Karagulyan & Dalalyan (2023, arXiv:2306.08494, abstract checked) give an easily
    computable nonasymptotic W2 bound with improved κ-dependence; its exact rates are
    **[unverified]**. Gaussian: the stationary *variance* is off by O(h³) (ALGORITHMS.md
    §2b table), so a moment-based W2 bias is O(h³); the law is a Gaussian mixture whose
    exact W2 is not available.
kinetic, exponential Euler (KLMC) — W2 bias O(h) and Õ(√d/ε) steps (Cheng, Chatterji,
    Bartlett & Jordan, COLT 2018; Dalalyan & Riou-Durand, Bernoulli 2020) **[unverified]**.
kinetic, BAOAB / ABOBA / OBABO — symmetric (Strang) splittings: weak order 2 for
    configurational averages (Leimkuhler & Matthews 2013, AMRX, abstract checked: 2nd
    order "expected", 4th order in the high-friction limit for BAOAB). Gaussian, exact:
    BAOAB and ABOBA have the exact position variance at every stable h (ALGORITHMS.md §2c),
    so zero position bias and no dimension dependence beyond the log of the start's
    distance; OBABO has Var x = 1/(λ(1 − h²λ/4)), a bias √d·O(h²), hence a dimension
    exponent 1/4 at fixed accuracy.
HMC — exact. Optimal step size ∝ d^{−1/4} (Beskos, Pillai, Roberts, Sanz-Serna & Stuart,
    Bernoulli 2013) **[unverified here]**; not measured.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import langevin
from langevin.kernels.base import Kernel

from .twin import Linearity, classify

__all__ = [
    "KernelSpec",
    "KernelTheory",
    "TheoryMismatchWarning",
    "builtin_names",
    "kernel_specs",
    "resolve_kernels",
    "theory_of",
]


class TheoryMismatchWarning(UserWarning):
    """A fitted order or exponent disagrees with the kernel's declared theory by more than
    its standard error allows (see :func:`langevin.convergence.study`)."""


@dataclass(frozen=True)
class KernelTheory:
    """What theory says about a kernel, shown beside every fitted number.

    Attributes:
        bias_order: the order p of the W2 stationary bias O(h^p) (an upper-bound rate);
            ``None`` for an exact (Metropolis-corrected) kernel, which has no bias.
        bias_order_gaussian: the exact order on Gaussian targets where it is known (``0``:
            no position bias); ``None``: not known.
        dim_exponent: exponent of d in the gradient evaluations to reach a fixed W2
            accuracy (``nan``: none stated).
        note: the source, in one line.
    """

    bias_order: float | None
    bias_order_gaussian: float | None = None
    dim_exponent: float = math.nan
    note: str = ""

    @property
    def exact(self) -> bool:
        return self.bias_order is None


_KINETIC_THEORY = {
    "randomized_midpoint": (
        1.5,
        3.0,
        1 / 3,
        "Shen & Lee 2019 (h^1.5 from the step count; d^1/3 leading term); Gaussian variance O(h^3)",
    ),
    "euler": (1.0, None, 0.5, "Cheng et al. 2018; Dalalyan & Riou-Durand 2020 [unverified]"),
    "baoab": (2.0, 0.0, 0.0, "Leimkuhler & Matthews 2013; exact position variance on Gaussians"),
    "aboba": (2.0, 0.0, 0.0, "Leimkuhler & Matthews 2013; exact position variance on Gaussians"),
    "obabo": (2.0, 2.0, 0.25, "Strang splitting, weak order 2; Gaussian Var x = 1/(λ(1-h²λ/4))"),
}

_CLASS_THEORY = {
    "ULA": KernelTheory(1.0, 1.0, 0.5, "Durmus & Moulines 2019; Li, Zha & Tao 2022 (sqrt d)"),
    "MALA": KernelTheory(
        None, None, math.nan, "exact (MH); warm-start mixing d^1/2 (Chewi et al. 2021)"
    ),
    "HMC": KernelTheory(None, None, math.nan, "exact (MH); step size d^-1/4 (Beskos et al. 2013)"),
}


def theory_of(kernel: Kernel) -> KernelTheory:
    """The theory ``kernel`` declares (class attributes), or the built-in table's entry.

    ``exact = True`` means no bias (``bias_order = None``); otherwise ``bias_order`` (may be
    None: not stated, shown as such). ``dimension_exponent`` is read if the class has it.
    """
    cls = type(kernel)
    disc = getattr(cls, "discretization_name", None)
    if disc in _KINETIC_THEORY and cls.__module__.startswith("langevin."):
        bias, gauss, dim_exp, note = _KINETIC_THEORY[disc]
        return KernelTheory(bias, gauss, dim_exp, note)
    if cls.__name__ in _CLASS_THEORY and cls.__module__.startswith("langevin."):
        return _CLASS_THEORY[cls.__name__]
    exact = bool(getattr(kernel, "exact", False))
    bias = None if exact else getattr(kernel, "bias_order", None)
    dim_exp = getattr(kernel, "dimension_exponent", None)
    return KernelTheory(
        None if exact else (math.nan if bias is None else float(bias)),
        0.0 if exact else None,
        math.nan if dim_exp is None else float(dim_exp),
        "declared by the kernel" + (" (exact: MH-corrected)" if exact else ""),
    )


@dataclass(frozen=True)
class KernelSpec:
    """One kernel under study.

    Attributes:
        name: label in tables and plots.
        make: ``h -> kernel``.
        kind: ``"linear"`` (affine with fixed coefficients on a Gaussian: exact laws),
            ``"random"`` (affine with a random coefficient: exact moments, W2 by Monte
            Carlo), or ``"mc"`` (not affine: Monte Carlo only); detected by probing.
        bias_theory: the W2 bias order theory gives (``None``: exact kernel).
        bias_gaussian: the exact order on Gaussians where it is known (``0``: no bias).
        dim_theory: dimension exponent of the cost to a fixed W2 accuracy (``nan``: none
            stated).
        note: the source, in one line.
        linearity: what probing the step found (:func:`~langevin.convergence.twin.classify`).
    """

    name: str
    make: Callable[[float], Kernel]
    kind: str
    bias_theory: float | None
    bias_gaussian: float | None
    dim_theory: float
    note: str
    linearity: Linearity | None = field(default=None, compare=False, repr=False)

    @property
    def theory(self) -> KernelTheory:
        return KernelTheory(self.bias_theory, self.bias_gaussian, self.dim_theory, self.note)


def _kind(linearity: Linearity) -> str:
    return {"linear": "linear", "random": "random"}.get(linearity.kind, "mc")


def spec_for(
    name: str, make: Callable[[float], Kernel], theory: KernelTheory | None = None
) -> KernelSpec:
    """A :class:`KernelSpec` for ``make``: the kind detected by probing ``make(0.1)``, the
    theory from the kernel (or ``theory``)."""
    probe = make(0.1)
    if not isinstance(probe, Kernel):
        raise TypeError(
            f"kernels: {name!r} built {type(probe).__name__} at step size 0.1, not a "
            "langevin Kernel"
        )
    lin = classify(probe)
    th = theory or theory_of(probe)
    return KernelSpec(
        name, make, _kind(lin), th.bias_order, th.bias_order_gaussian, th.dim_exponent,
        th.note, lin,
    )  # fmt: skip


def builtin_names(friction: float = 2.0, n_leapfrog: int = 5) -> list[str]:
    """Names :func:`resolve_kernels` understands: ``ULA``, ``MALA``, ``kinetic_<disc>`` for
    every discretization of :class:`langevin.KineticLangevin`, ``HMC_L<n>`` (any n)."""
    names = ["ULA", "MALA"]
    names += [f"kinetic_{c.discretization_name}" for c in langevin.KineticLangevin.variants()]
    return [*names, f"HMC_L{n_leapfrog}"]


def _builtin_factory(name: str, friction: float) -> Callable[[float], Kernel]:
    if name in ("ULA", "MALA"):
        cls = getattr(langevin, name)
        return lambda h: cls(h)
    if name.startswith("kinetic_"):
        disc = name[len("kinetic_") :]
        known = [c.discretization_name for c in langevin.KineticLangevin.variants()]
        if disc in known:
            return lambda h: langevin.KineticLangevin(h, friction=friction, discretization=disc)
    m = re.fullmatch(r"HMC_L(\d+)", name)
    if m:
        n = int(m.group(1))
        return lambda h: langevin.HMC(h, n_leapfrog=n)
    raise ValueError(
        f"kernels: unknown kernel name {name!r}; known: {builtin_names(friction)} (or pass a "
        "Kernel instance, a kernel class or a callable h -> Kernel)"
    )


def _label(obj) -> str:
    if isinstance(obj, Kernel):
        return obj.name
    if isinstance(obj, type):
        return obj.__name__
    return getattr(obj, "__name__", type(obj).__name__)


def _item_label(obj) -> str:
    if isinstance(obj, KernelSpec):
        return obj.name
    return obj if isinstance(obj, str) else _label(obj)


def _factory(obj, friction: float) -> Callable[[float], Kernel]:
    if isinstance(obj, str):
        return _builtin_factory(obj, friction)
    if isinstance(obj, Kernel):
        return lambda h: dataclasses.replace(obj, step_size=float(h))
    if callable(obj):
        return obj
    raise TypeError(
        f"kernels: expected a name, a Kernel, a kernel class or a callable h -> Kernel; "
        f"got {type(obj).__name__}"
    )


def resolve_kernels(
    kernels,
    *,
    friction: float = 2.0,
    theory: Mapping[str, KernelTheory | Mapping] | None = None,
) -> list[KernelSpec]:
    """Turn what the user passed into :class:`KernelSpec` s (kind detected, theory read).

    Args:
        kernels: one kernel (name, instance, class, callable or spec), a list of them, or a
            mapping ``{label: kernel}``.
        friction: γ of the built-in kinetic kernels named by string.
        theory: ``{label: KernelTheory or dict of its fields}`` overriding what the kernel
            declares.

    Raises:
        TypeError, ValueError: naming the ``kernels`` entry that is not understood.
    """
    if isinstance(kernels, Mapping):
        items = list(kernels.items())
    else:
        if isinstance(kernels, (str, Kernel, KernelSpec, type)) or not isinstance(
            kernels, Iterable
        ):
            kernels = [kernels]
        items = [(_item_label(obj), obj) for obj in kernels]
    if not items:
        raise ValueError("kernels: give at least one kernel")
    labels = [label for label, _ in items]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ValueError(f"kernels: duplicate labels {dup}; pass a dict {{label: kernel}}")
    theory = dict(theory or {})
    unknown = set(theory) - set(labels)
    if unknown:
        raise ValueError(f"theory: no kernel labelled {sorted(unknown)}; labels are {labels}")
    specs = []
    for label, obj in items:
        th = theory.get(label)
        if isinstance(th, Mapping):
            th = KernelTheory(**th)
        if isinstance(obj, KernelSpec):
            specs.append(obj if th is None else dataclasses.replace(
                obj, bias_theory=th.bias_order, bias_gaussian=th.bias_order_gaussian,
                dim_theory=th.dim_exponent, note=th.note))  # fmt: skip
            continue
        specs.append(spec_for(str(label), _factory(obj, friction), th))
    return specs


def kernel_specs(friction: float = 2.0, n_leapfrog: int = 5) -> list[KernelSpec]:
    """Every built-in kernel of the convergence suite, with its theory.

    Args:
        friction: γ of the kinetic kernels (2: Shen & Lee's choice for L = 1).
        n_leapfrog: HMC's integrator steps per transition.
    """
    return resolve_kernels(builtin_names(friction, n_leapfrog), friction=friction)
