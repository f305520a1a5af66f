"""Targets: what to sample, and the zoo of built-in ones.

Every built-in carries a JAX and a Numba form of its log density and an exact answer or a
reference from outside the project (``target.reference``):

* :func:`gaussian`, :func:`ill_conditioned_gaussian`: exact law;
* :func:`neals_funnel`: exact moments (Neal 2003);
* :func:`gaussian_mixture`: exact mean and covariance;
* :func:`logistic_regression`, :func:`synthetic_logistic_regression`,
  :func:`breast_cancer_logistic_regression`: the last with a long BlackJAX NUTS reference;
  :func:`rand_hie_design` (20 190 rows of the RAND Health Insurance Experiment, for the
  data-scale samplers);
* :func:`posteriordb` (:func:`earnings_logearn_interaction_z`, :func:`arK`,
  :func:`kidiq_kidscore_momiq`, :func:`gp_pois_regr_gp_regr`; every name in
  ``POSTERIORDB_NAMES``: also arma11, diamonds, eight_schools_centered, gp_pois_regr,
  kidscore_interaction, kilpisjarvi, low_dim_gauss_mix, nes1972 and sblrc-blr): the 13
  posteriordb posteriors with reference draws, and exact quadrature moments where
  posteriordb has them.

A small Bayesian neural network: :func:`mlp_classifier_data` (a one-hidden-layer softmax
classifier as a data target, Numba back-propagation and JAX) and :func:`digits_data`
(scikit-learn's digits, split); :mod:`.neural`.

Composite and constrained targets: :func:`composite` (f + a penalty g of
:mod:`langevin.proximal`, for MYULA/MYMALA and the Bregman kernels), :func:`flat`,
:func:`bayesian_lasso`/:func:`diabetes_lasso` (with a Park & Casella Gibbs reference),
:func:`dirichlet` and :func:`gamma` (exact laws on the simplex and the orthant, for mirror
Langevin); :mod:`.transforms` (``positive``, ``interval``, ``simplex``, ``ordered``,
``cholesky_corr`` and ``constrained(...)``: write the log-density on the constrained space,
sample on the unconstrained one).

Diffusion models have their own data law here: :mod:`.gaussian_mixture_diffusion`, a Gaussian
mixture whose scores under the forward noising process are exact (public as
``langevin.smc.GaussianMixture``; not imported by this package, as it builds on
:mod:`langevin.smc.diffusion`).
"""

from . import transforms
from .base import Reference, Target
from .composite import composite, flat
from .data_targets import (
    DataTarget,
    data_target,
    linear_regression_data,
    logistic_regression_data,
)
from .funnel import neals_funnel
from .gaussians import gaussian, ill_conditioned_gaussian
from .gp_regression import gp_pois_regr_gp_regr
from .lasso import bayesian_lasso, diabetes_lasso
from .logistic import (
    breast_cancer_logistic_regression,
    logistic_regression,
    rand_hie_design,
    synthetic_logistic_regression,
)
from .mixture import gaussian_mixture
from .neural import digits_data, mlp_classifier_data
from .posteriordb_models import (
    POSTERIORDB_NAMES,
    arK,
    earnings_logearn_interaction_z,
    kidiq_kidscore_momiq,
    posteriordb,
)
from .supported import dirichlet, gamma

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
    "rand_hie_design",
    "posteriordb",
    "POSTERIORDB_NAMES",
    "earnings_logearn_interaction_z",
    "arK",
    "kidiq_kidscore_momiq",
    "gp_pois_regr_gp_regr",
    "composite",
    "flat",
    "dirichlet",
    "gamma",
    "bayesian_lasso",
    "diabetes_lasso",
    "transforms",
    "DataTarget",
    "data_target",
    "linear_regression_data",
    "logistic_regression_data",
    "mlp_classifier_data",
    "digits_data",
]
