"""Lattice field theory: the 2-D U(1) gauge theory, gauge-equivariant flows, ftHMC.

See ``docs/lattice.md``. :mod:`.u1` is the model (Wilson action, plaquette, topological charge,
exact finite-volume answers); :mod:`.exact` draws the field exactly (iid, NumPy); :mod:`.flow`
the gauge-equivariant coupling layers on plaquettes (Kanwar et al. 2020; Foreman et al. 2021)
written once against ``xp``, their training by reverse KL on JAX and their transfer to larger
lattices; :mod:`.fthmc` the field-transformed target ``S_FT(z) = S(f(z)) − log|det J_f(z)|``
that HMC samples in the latent variable.
"""

from .exact import exact_plaquette_angles, exact_u1_samples
from .flow import FlowParams, U1Flow
from .fthmc import flow_ess, flow_transformed_u1, train_u1_flow
from .u1 import (
    exact_plaquette,
    exact_q2,
    exact_susceptibility,
    lattice_indices,
    plaquette,
    plaquette_angles,
    topological_charge,
    u1_lattice,
    wrap,
)

__all__ = [
    "U1Flow",
    "FlowParams",
    "flow_transformed_u1",
    "train_u1_flow",
    "flow_ess",
    "u1_lattice",
    "lattice_indices",
    "plaquette",
    "plaquette_angles",
    "topological_charge",
    "wrap",
    "exact_plaquette",
    "exact_q2",
    "exact_susceptibility",
    "exact_u1_samples",
    "exact_plaquette_angles",
]
