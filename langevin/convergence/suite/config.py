"""Run configurations: ``FULL`` (committed results), ``QUICK`` (``--quick``), ``TINY`` (tests).

Units: the Gaussian precisions lie in ``[1/κ, 1]`` (L = 1), so step sizes are in units of
``1/L`` (``1/√L`` for the kinetic kernels, which coincide here).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["Config", "FULL", "QUICK", "TINY", "PRESETS"]


def _geom(lo: float, hi: float, n: int) -> tuple[float, ...]:
    return tuple(float(v) for v in np.geomspace(lo, hi, n))


@dataclass(frozen=True)
class Config:
    """Everything a run depends on (written into the report).

    Gaussian exact experiments (rotated ``N(m, Σ)``, dimension ``dim``, condition number
    ``kappa``, start ``start_sd`` standard deviations away along every eigendirection):

    * ``bias_h``: step sizes of the stationary-bias curves; slopes are fitted on
      ``fit_h_max >= h``;
    * ``path_h``, ``path_k_max``: step sizes and horizon of the exact W2-vs-steps curves;
    * ``dims``, ``eps``, ``cost_h``, ``cost_refine``: dimensions, accuracy and step-size grid
      of the cost to reach ``W2 <= eps`` (minimised over the grid, then ``cost_refine``
      more values around the best); ``dim_fixed_h``: the step size of the stationary W2
      against d.

    Monte Carlo (1-D, JAX backend, ``mc_chains`` independent chains):

    * Gaussian ``N(m, 1)``: ``mc_h`` step sizes, each run ``mc_time / h`` steps from the
      point mass ``m + start_sd``; ``mc_eps`` the accuracy for the cost column; the
      stationary variance from a second set of chains started at exact draws of π, run
      ``max(mc_time / h, mc_min_average_steps)`` steps and averaged over the second half;
    * quartic: ``quartic_h``, each run ``quartic_time / h`` steps from exact draws of π.
    """

    name: str
    dim: int = 10
    kappa: float = 10.0
    seed: int = 0
    start_sd: float = 3.0
    friction: float = 2.0
    n_leapfrog: int = 5
    bias_h: tuple[float, ...] = _geom(0.01, 1.0, 13)
    fit_h_max: float = 0.1
    path_h: tuple[float, ...] = (0.05, 0.2)
    path_k_max: int = 2000
    dims: tuple[int, ...] = (10, 100, 1000, 10000)
    eps: float = 0.1
    cost_h: tuple[float, ...] = _geom(1e-3, 2.3, 20)
    cost_refine: int = 6
    dim_fixed_h: float = 0.1
    mc_chains: int = 200_000
    mc_h: tuple[float, ...] = (0.25, 0.5, 1.0, 1.5)
    mc_time: float = 15.0
    mc_eps: float = 0.1
    mc_min_average_steps: int = 40
    quartic_h: tuple[float, ...] = (0.025, 0.05, 0.1, 0.2, 0.4)
    quartic_time: float = 8.0
    kernels: tuple[str, ...] | None = None
    mc_kernels: tuple[str, ...] | None = None

    def with_(self, **changes) -> Config:
        return replace(self, **changes)


FULL = Config("full")

QUICK = Config(
    "quick",
    bias_h=_geom(0.01, 1.0, 9),
    dims=(10, 100, 1000),
    cost_h=_geom(1e-3, 2.3, 14),
    cost_refine=4,
    mc_chains=20_000,
    mc_h=(0.5, 1.0, 1.5),
    quartic_h=(0.05, 0.1, 0.2, 0.4),
    # every kernel of the brief; ABOBA (an extra splitting) has its Monte Carlo only in FULL
    mc_kernels=(
        "ULA",
        "MALA",
        "kinetic_randomized_midpoint",
        "kinetic_euler",
        "kinetic_baoab",
        "kinetic_obabo",
        "HMC_L5",
    ),
)

TINY = Config(
    "tiny",
    dim=3,
    bias_h=_geom(0.02, 0.5, 4),
    path_h=(0.2,),
    path_k_max=60,
    dims=(4, 16),
    cost_h=_geom(0.01, 1.5, 6),
    cost_refine=2,
    mc_chains=2000,
    mc_h=(0.5, 1.0),
    mc_time=4.0,
    mc_eps=0.3,
    quartic_h=(0.2, 0.4),
    quartic_time=4.0,
    kernels=("ULA", "kinetic_baoab"),
    mc_kernels=("ULA",),
)

PRESETS = {"full": FULL, "quick": QUICK, "tiny": TINY}
