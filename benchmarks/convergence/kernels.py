"""The kernels under test, how to build them, and what theory says about them.

Every entry builds its kernel through the public API (``langevin.ULA``, ``langevin.MALA``,
``langevin.KineticLangevin(..., discretization=...)``, ``langevin.HMC``). Kernels that the
installed ``langevin`` does not have are skipped (and say so in the report).

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

import math
from collections.abc import Callable
from dataclasses import dataclass

import langevin
from langevin.kernels.base import Kernel, Uniform

__all__ = ["KernelSpec", "kernel_specs", "kind_of"]


def kind_of(kernel: Kernel) -> str:
    """``"mc"`` for a Metropolis-corrected kernel, ``"random"`` for an unadjusted kernel that
    draws a uniform (a random coefficient on Gaussians), ``"linear"`` otherwise (affine with
    fixed coefficients on Gaussians; the extraction in :mod:`.twin` checks it)."""
    if kernel.exact:
        return "mc"
    if any(isinstance(d, Uniform) for d in kernel.noise(1)):
        return "random"
    return "linear"


@dataclass(frozen=True)
class KernelSpec:
    """One kernel under test.

    Attributes:
        name: label in tables and plots.
        make: ``h -> kernel``.
        kind: ``"linear"`` (affine with fixed coefficients on a Gaussian: exact laws),
            ``"random"`` (affine with a random coefficient: exact moments, W2 by Monte
            Carlo), or ``"mc"`` (Metropolis-corrected: Monte Carlo only).
        bias_theory: the W2 bias order theory gives (``None``: exact kernel).
        bias_gaussian: the exact order on Gaussians where it is known (``0``: no bias).
        dim_theory: dimension exponent of the cost to a fixed W2 accuracy (``nan``: none
            stated).
        note: the source, in one line.
    """

    name: str
    make: Callable[[float], Kernel]
    kind: str
    bias_theory: float | None
    bias_gaussian: float | None
    dim_theory: float
    note: str


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


def kernel_specs(friction: float = 2.0, n_leapfrog: int = 5) -> list[KernelSpec]:
    """Every kernel the installed ``langevin`` offers, with its theory.

    Args:
        friction: γ of the kinetic kernels (2: Shen & Lee's choice for L = 1).
        n_leapfrog: HMC's integrator steps per transition.
    """
    specs = [
        KernelSpec(
            "ULA",
            lambda h: langevin.ULA(h),
            kind_of(langevin.ULA(0.1)),
            1.0,
            1.0,
            0.5,
            "Durmus & Moulines 2019; Li, Zha & Tao 2022 (sqrt d)",
        ),
        KernelSpec(
            "MALA",
            lambda h: langevin.MALA(h),
            kind_of(langevin.MALA(0.1)),
            None,
            None,
            math.nan,
            "exact (MH); warm-start mixing d^1/2 (Chewi et al. 2021)",
        ),
    ]
    kinetic = getattr(langevin, "KineticLangevin", None)
    if kinetic is not None:
        names = [cls.discretization_name for cls in kinetic.variants()]
        for disc in names:
            bias, gauss, dim_exp, note = _KINETIC_THEORY.get(disc, (None, None, math.nan, ""))
            probe = kinetic(0.1, friction=friction, discretization=disc)
            if bias is None:
                bias = probe.bias_order
            specs.append(
                KernelSpec(
                    f"kinetic_{disc}",
                    lambda h, disc=disc: kinetic(h, friction=friction, discretization=disc),
                    kind_of(probe),
                    bias,
                    gauss,
                    dim_exp,
                    note,
                )
            )
    hmc = getattr(langevin, "HMC", None)
    if hmc is not None:
        specs.append(
            KernelSpec(
                f"HMC_L{n_leapfrog}",
                lambda h: hmc(h, n_leapfrog=n_leapfrog),
                kind_of(hmc(0.1, n_leapfrog=n_leapfrog)),
                None,
                None,
                math.nan,
                "exact (MH); step size d^-1/4 (Beskos et al. 2013)",
            )
        )
    return specs
