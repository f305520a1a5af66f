"""Targets: what to sample, and the zoo of built-in ones.

Every built-in carries a JAX and a Numba form of its log density and an exact answer or a
reference from outside the project (``target.reference``):

* :func:`gaussian`, :func:`ill_conditioned_gaussian`: exact law;
* :func:`neals_funnel`: exact moments (Neal 2003);
* :func:`gaussian_mixture`: exact mean and covariance;
* :func:`logistic_regression`, :func:`synthetic_logistic_regression`,
  :func:`breast_cancer_logistic_regression`: the last with a long BlackJAX NUTS reference;
* :func:`posteriordb` (:func:`earnings_logearn_interaction_z`, :func:`arK`,
  :func:`kidiq_kidscore_momiq`, :func:`gp_pois_regr_gp_regr`): posteriordb reference draws
  and exact quadrature moments.

Diffusion models have their own data law here: :mod:`.gaussian_mixture_diffusion`, a Gaussian
mixture whose scores under the forward noising process are exact (public as
``langevin.smc.GaussianMixture``; not imported by this package, as it builds on
:mod:`langevin.smc.diffusion`).
"""

from .base import Reference, Target
from .funnel import neals_funnel
from .gaussians import gaussian, ill_conditioned_gaussian
from .gp_regression import gp_pois_regr_gp_regr
from .logistic import (
    breast_cancer_logistic_regression,
    logistic_regression,
    synthetic_logistic_regression,
)
from .mixture import gaussian_mixture
from .posteriordb_models import (
    arK,
    earnings_logearn_interaction_z,
    kidiq_kidscore_momiq,
    posteriordb,
)

__all__ = [
    "Target",
    "Reference",
    "gaussian",
    "ill_conditioned_gaussian",
    "neals_funnel",
    "gaussian_mixture",
    "logistic_regression",
    "synthetic_logistic_regression",
    "breast_cancer_logistic_regression",
    "posteriordb",
    "earnings_logearn_interaction_z",
    "arK",
    "kidiq_kidscore_momiq",
    "gp_pois_regr_gp_regr",
]
