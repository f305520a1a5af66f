"""langevin: Langevin-family samplers written once, compiled by Numba (CPU) and JAX (GPU).

Quick start::

    import langevin
    trace = langevin.sample(langevin.targets.gaussian(5), langevin.MALA(0.5), seed=0)
    print(trace.summary())
"""

from langevin import (
    convergence,
    diagnostics,
    diffusion,
    federated,
    flows,
    kernels,
    lattice,
    nn,
    proximal,
    smc,
    targets,
)
from langevin.checkpoint import resume
from langevin.driver import (
    DivergenceWarning,
    DivergentTransitionWarning,
    SamplingError,
    StuckChainWarning,
    TargetCodeWarning,
    sample,
)
from langevin.io import load, save
from langevin.kernels import *  # noqa: F403 - every exported kernel, without listing it again
from langevin.targets.base import Reference, Target
from langevin.trace import Trace

__version__ = "0.1.0"

__all__ = [
    *kernels.__all__,
    "DivergenceWarning",
    "DivergentTransitionWarning",
    "Reference",
    "SamplingError",
    "StuckChainWarning",
    "Target",
    "TargetCodeWarning",
    "Trace",
    "convergence",
    "diagnostics",
    "diffusion",
    "federated",
    "flows",
    "kernels",
    "lattice",
    "load",
    "nn",
    "proximal",
    "resume",
    "sample",
    "save",
    "smc",
    "targets",
    "__version__",
]
