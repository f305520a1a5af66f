"""Sequential Monte Carlo: resampling, Feynman–Kac models, SMC samplers, particle filters.

* :mod:`langevin.smc.resampling`: resampling schemes written once for both backends
  (multinomial, stratified, systematic, residual, SSP) and the ESS-triggered population step.
* :mod:`langevin.smc.feynman_kac`: the Feynman–Kac model abstraction (``M0``, ``M``,
  ``logG``) and the one generic SMC loop, :func:`smc`.
* :mod:`langevin.smc.tempering`: SMC samplers for static targets: :func:`tempered_smc`
  from the prior (or a Gaussian) to the posterior with any langevin kernel as the move (run
  by the backend's engine, its state carried across stages), fixed or adaptive schedule,
  log evidence; results as an :class:`SMCTrace`. The tempered target is a combinator
  (:mod:`langevin.smc.tempered_target`); the exponent search :mod:`langevin.smc.exponent`;
  the per-stage tuning :mod:`langevin.smc.stage_tuning`; across the devices of a JAX mesh
  (``mesh=``) the population step is global (:mod:`langevin.smc.sharded`).
* :mod:`langevin.smc.filters`: bootstrap and guided particle filters; linear Gaussian model
  with its Kalman filter; stochastic volatility model.
* :mod:`langevin.smc.models`: tempering models with both backend forms (a conjugate
  Gaussian one with exact evidence; logistic regression as prior × likelihood).

Example (log evidence of a conjugate Gaussian model by adaptive tempering with MALA)::

    import langevin
    model = langevin.smc.gaussian_model([0.0, 0.0], [1.0, 1.0], [1.0, 2.0], [0.5, 0.5])
    trace = langevin.smc.tempered_smc(model, langevin.MALA(0.5), n_particles=1000)
    print(trace.log_evidence, model.log_evidence)
"""

from langevin.smc import (
    exponent,
    feynman_kac,
    filters,
    models,
    resampling,
    sharded,
    stage_tuning,
    tempered_target,
    tempering,
)
from langevin.smc.feynman_kac import FeynmanKac, GeneratorNoise, SMCResult, smc
from langevin.smc.filters import (
    LinearGaussian,
    StateSpaceModel,
    StochasticVolatility,
    kalman_filter,
    linear_gaussian,
    linear_gaussian_example,
    particle_filter,
    stochastic_volatility,
)
from langevin.smc.models import gaussian_model, logistic_regression_model, normal_target
from langevin.smc.resampling import SCHEMES, resample, uniforms_needed
from langevin.smc.tempered_target import GaussianReference, TemperedTarget
from langevin.smc.tempering import tempered_smc
from langevin.smc.trace import SMCTrace

__all__ = [
    "SCHEMES",
    "exponent",
    "stage_tuning",
    "tempered_target",
    "FeynmanKac",
    "GaussianReference",
    "GeneratorNoise",
    "LinearGaussian",
    "SMCResult",
    "SMCTrace",
    "StateSpaceModel",
    "StochasticVolatility",
    "TemperedTarget",
    "feynman_kac",
    "filters",
    "gaussian_model",
    "kalman_filter",
    "linear_gaussian",
    "linear_gaussian_example",
    "logistic_regression_model",
    "models",
    "normal_target",
    "particle_filter",
    "resample",
    "resampling",
    "sharded",
    "smc",
    "stochastic_volatility",
    "tempered_smc",
    "tempering",
    "uniforms_needed",
]

# Feynman–Kac correctors (annealed, product and guided diffusion sampling)
from langevin.smc import correctors, diffusion
from langevin.smc.correctors import (
    equally_weighted,
    fkc_anneal,
    fkc_guidance,
    fkc_product,
    fkc_sample,
)
from langevin.smc.diffusion import Score, VPProcess
from langevin.targets.gaussian_mixture_diffusion import GaussianMixture

__all__ += [
    "GaussianMixture",
    "Score",
    "VPProcess",
    "correctors",
    "diffusion",
    "equally_weighted",
    "fkc_anneal",
    "fkc_guidance",
    "fkc_product",
    "fkc_sample",
]
