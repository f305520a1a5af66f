"""Kernels: how to move. One module per kernel family; every kernel here is exported.

The conformance suite (``tests/test_conformance.py``) runs every kernel listed in
``__all__`` through the same checks on both backends.
"""

from langevin.kernels.barker import Barker
from langevin.kernels.base import Kernel
from langevin.kernels.hmc import HMC
from langevin.kernels.kinetic import KineticLangevin
from langevin.kernels.kinetic_tuning import suggest_kinetic_parameters
from langevin.kernels.overdamped import MALA, ULA

__all__ = [
    "Barker",
    "HMC",
    "Kernel",
    "KineticLangevin",
    "MALA",
    "ULA",
    "suggest_kinetic_parameters",
]
