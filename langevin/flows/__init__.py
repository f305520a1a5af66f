"""Normalizing flows written once against ``xp``: trained on JAX, sampled on both backends.

* :mod:`langevin.flows.layers` — permutations, elementwise affine, RealNVP affine couplings
  with MLP conditioners (:mod:`langevin.nn`), and their composition :class:`RealNVP`: forward,
  inverse, log|det J| and the hand-written pullback of each.
* :mod:`langevin.flows.spline` — rational-quadratic spline couplings (neural spline flows)
  and their composition :class:`SplineFlow`, usable wherever :class:`RealNVP` is
  (:func:`flow_functions` gives a flow's portable functions); :class:`ComposedFlow` chains
  two flows (stacks mixing affine and spline blocks).
* :mod:`langevin.flows.transformed` — :func:`flow_transformed`: the latent target
  ``log π(f(z)) + log|det J_f(z)|`` (flow-transformed HMC, NeuTra) on both backends.
* :mod:`langevin.flows.training` — :func:`fit_reverse_kl`, :func:`fit_forward_kl` (optax),
  :func:`save_flow`, :func:`load_flow` (no pickle).
* :mod:`langevin.flows.neutra` — :func:`neutra`: fit a flow, then sample in its latent space.
* :mod:`langevin.flows.interop` — :func:`from_flowjax`: a flowjax bijection as the flow (JAX).

The flow-proposal kernel (the flowMC scheme) is :class:`langevin.kernels.FlowProposal`. See
``docs/flows.md``.
"""

from langevin.flows.interop import from_flowjax
from langevin.flows.layers import (
    AffineCoupling,
    CouplingBlock,
    ElementwiseAffine,
    Permutation,
    RealNVP,
    flow_forward,
    flow_forward_and_log_det,
    flow_inverse,
    flow_inverse_and_log_det,
    flow_log_density,
    flow_log_det,
    flow_pullback,
    identity_flow,
    realnvp_init,
)
from langevin.flows.neutra import NeuTraResult, neutra
from langevin.flows.spline import (
    ComposedFlow,
    SplineBlock,
    SplineCoupling,
    SplineFlow,
    flow_functions,
    spline_flow_init,
)
from langevin.flows.training import fit_forward_kl, fit_reverse_kl, load_flow, save_flow
from langevin.flows.transformed import (
    FlowTransformedTarget,
    check_flow,
    flow_transformed,
    latent_to_x,
)

__all__ = [
    "AffineCoupling",
    "CouplingBlock",
    "ElementwiseAffine",
    "FlowTransformedTarget",
    "NeuTraResult",
    "Permutation",
    "RealNVP",
    "check_flow",
    "fit_forward_kl",
    "fit_reverse_kl",
    "flow_forward",
    "flow_forward_and_log_det",
    "flow_inverse",
    "flow_inverse_and_log_det",
    "flow_log_density",
    "flow_log_det",
    "flow_pullback",
    "flow_transformed",
    "from_flowjax",
    "identity_flow",
    "latent_to_x",
    "load_flow",
    "neutra",
    "realnvp_init",
    "save_flow",
    "ComposedFlow",
    "SplineBlock",
    "SplineCoupling",
    "SplineFlow",
    "flow_functions",
    "spline_flow_init",
]
