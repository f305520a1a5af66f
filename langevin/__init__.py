"""langevin: Langevin-family samplers written once, compiled by Numba (CPU) and JAX (GPU).

Quick start::

    import langevin
    trace = langevin.sample(langevin.targets.gaussian(5), langevin.MALA(0.5), seed=0)
    print(trace.summary())
"""

from langevin import diagnostics, kernels, smc, targets
from langevin.driver import sample
from langevin.kernels import HMC, MALA, ULA, Kernel, KineticLangevin, suggest_kinetic_parameters
from langevin.targets.base import Reference, Target
from langevin.trace import Trace

__version__ = "0.1.0"

__all__ = [
    "HMC",
    "KineticLangevin",
    "MALA",
    "ULA",
    "Kernel",
    "Reference",
    "Target",
    "Trace",
    "diagnostics",
    "kernels",
    "sample",
    "smc",
    "suggest_kinetic_parameters",
    "targets",
    "__version__",
]
