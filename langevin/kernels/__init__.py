"""Kernels: how to move. One module per kernel family; every kernel here is exported.

The conformance suite (``tests/test_conformance.py``) runs every kernel listed in
``__all__`` through the same checks on both backends.
"""

from langevin.kernels.barker import Barker
from langevin.kernels.base import Kernel
from langevin.kernels.flow_mcmc import FlowProposal
from langevin.kernels.hmc import HMC
from langevin.kernels.kinetic import KineticLangevin
from langevin.kernels.kinetic_tuning import suggest_kinetic_parameters
from langevin.kernels.mirror import BregmanMoreauMirrorLangevin, MirroredLangevin, MirrorLangevin
from langevin.kernels.nuts import NUTS
from langevin.kernels.overdamped import MALA, ULA
from langevin.kernels.proximal import MYMALA, MYULA
from langevin.kernels.sgmcmc import PSGLD, SGHMC, SGHMCCV, SGLD, SGLDCV, SGNHT, find_mode
from langevin.kernels.structured_sgmcmc import StructuredSGLD

__all__ = [
    "Barker",
    "BregmanMoreauMirrorLangevin",
    "FlowProposal",
    "HMC",
    "Kernel",
    "KineticLangevin",
    "MALA",
    "MYMALA",
    "MYULA",
    "MirrorLangevin",
    "MirroredLangevin",
    "NUTS",
    "PSGLD",
    "SGHMC",
    "SGHMCCV",
    "SGLD",
    "SGLDCV",
    "SGNHT",
    "StructuredSGLD",
    "ULA",
    "find_mode",
    "suggest_kinetic_parameters",
]
