"""Diffusion-based samplers.

* :mod:`.walk_jump`: walk-jump sampling (Saremi & Hyvärinen 2019) with any kernel of the
  package as the walk, analytic smoothed mixtures, the Tweedie jump, and the chain of
  log-concave Markov chains (Saremi, Park & Bach 2024);
* :mod:`.denoisers`: denoisers and energies trained by denoising score matching on JAX
  (networks of :mod:`langevin.nn`, so a trained one runs on both backends);
* :mod:`.discrete`: discrete walk-jump on one-hot sequences (Frey et al. 2024);
* :mod:`.cmcd`: controlled Monte Carlo diffusions (Vargas, Padhy, Blessing & Nüsken 2024),
  with ULA-AIS and MCD as its special cases: exact path weights, log Ẑ and the ELBO;
* :mod:`.learned`: the path integral sampler trained with the log-variance loss (Richter &
  Berner 2024), on the same path and weight code (:mod:`.paths`);
* :mod:`.targets`: targets with exact log Z (the 40-mode mixture, many-well, the funnel).

See ``docs/walk_jump.md`` and ``docs/cmcd.md``.
"""

from langevin.diffusion import cmcd, denoisers, discrete, learned, paths, targets
from langevin.diffusion.cmcd import CMCD, CMCDParams, mcd, ula_ais
from langevin.diffusion.learned import PIS, PISParams
from langevin.diffusion.paths import (
    ControlNet,
    PathResult,
    PathSampler,
    TrainResult,
    learned_betas,
)
from langevin.diffusion.targets import forty_mode_mixture, funnel_log_z, many_well, many_well_log_z
from langevin.diffusion.walk_jump import (
    ChainOfLogConcave,
    CLMCResult,
    WalkJump,
    chain_of_log_concave,
    jump,
    mixture_components,
    posterior_mean_mixture,
    sample_mixture,
    smoothed,
)

__all__ = [
    "CMCD",
    "CMCDParams",
    "ControlNet",
    "PIS",
    "PISParams",
    "PathResult",
    "PathSampler",
    "TrainResult",
    "cmcd",
    "forty_mode_mixture",
    "funnel_log_z",
    "learned",
    "learned_betas",
    "many_well",
    "many_well_log_z",
    "mcd",
    "paths",
    "targets",
    "ula_ais",
    "CLMCResult",
    "ChainOfLogConcave",
    "WalkJump",
    "chain_of_log_concave",
    "denoisers",
    "discrete",
    "jump",
    "mixture_components",
    "posterior_mean_mixture",
    "sample_mixture",
    "smoothed",
]
