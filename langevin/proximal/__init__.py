"""Nonsmooth and constrained targets: proximity operators, Bregman envelopes, smoothing.

* :mod:`.penalties`: the registry of nonsmooth parts g (:class:`Penalty`): :func:`l1`,
  :func:`weighted_l1`, :func:`box`, :func:`nonnegative`, :func:`simplex`, :func:`elastic_net`,
  :func:`group_l1`, :func:`total_variation`, :func:`zero`; a user's own with
  :meth:`Penalty.from_portable` / :meth:`Penalty.from_jax` / :meth:`Penalty.from_numba`,
  named with :func:`register_penalty`, built by name with :func:`penalty`.
* :func:`composite`: a target U = f + g from any smooth target and a penalty
  (:mod:`langevin.targets.composite`), which the kernels of :mod:`langevin.kernels.proximal`
  (MYULA, MYMALA) and :mod:`langevin.kernels.mirror` (BMUMLA, mirror Langevin) sample.
* :mod:`.operators`, :mod:`.tv`: the operators, written once against ``xp``.
* :mod:`.bregman`: Legendre functions ψ (envelopes) and φ (mirror maps), the left Bregman
  proximity operators of t|·|.
* :mod:`.smoothing`: the bias of π_λ against π by quadrature, and the choice of λ.

Example:
    >>> import numpy as np, langevin
    >>> from langevin.proximal import composite, l1
    >>> from langevin.kernels.proximal import MYULA
    >>> target = composite(langevin.targets.gaussian(3, mean=[2.0, 0.1, -1.0]), l1(1.0))
    >>> trace = langevin.sample(target, MYULA(0.05, smoothing=0.1), warmup=200, draws=500,
    ...                         progress=False, seed=0)
"""

from langevin.proximal.penalties import (
    PENALTIES,
    Penalty,
    box,
    elastic_net,
    group_l1,
    l1,
    nonnegative,
    penalty,
    register_penalty,
    simplex,
    total_variation,
    weighted_l1,
    zero,
)
from langevin.proximal.smoothing import smoothing_bias, smoothing_for_bias
from langevin.targets.composite import CompositeTarget, composite, flat

__all__ = [
    "Penalty",
    "PENALTIES",
    "register_penalty",
    "penalty",
    "l1",
    "weighted_l1",
    "box",
    "nonnegative",
    "simplex",
    "elastic_net",
    "group_l1",
    "total_variation",
    "zero",
    "composite",
    "flat",
    "CompositeTarget",
    "smoothing_bias",
    "smoothing_for_bias",
]
