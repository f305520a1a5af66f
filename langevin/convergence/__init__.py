"""Convergence-rate studies of any kernel, a user's own included.

How fast does a sampler approach its target, how biased is it, and how does its cost grow
with the dimension? ``langevin.convergence`` measures it in the Wasserstein-2 distance::

    import langevin.convergence as lc

    s = lc.study(["ULA", "MALA", "kinetic_randomized_midpoint"],
                 lc.GaussianProblem(dim=10, kappa=10.0),
                 step_sizes=[0.02, 0.05, 0.1, 0.2], iterations=500, dims=[10, 100, 1000],
                 coupling=True)
    s.fits                         # fitted orders beside the kernels' theory (xarray)
    s.table                        # every number, one row each (xarray; .to_dataframe())
    lc.plot_bias(s); lc.plot_w2_vs_iterations(s); lc.plot_cost_vs_dimension(s)
    s.save("results")              # CSV, Markdown, PNGs

From a shell: ``python -m langevin.convergence --kernels ULA MALA --quick --out DIR``.

* **Exact laws, detected.** On a Gaussian target, a kernel's step is probed on its NumPy
  twin (:func:`classify`); where it is affine in (state, noise), its linear recursion
  ``z' = M z + c + B ξ`` is read off (:func:`extract_affine`) and the law after k steps, the
  stationary law and their W2 to π follow in closed form (:mod:`.exact`). A step affine
  with a random coefficient (the randomized midpoint) gets exact moments and a W2 lower
  bound; anything else gets Monte Carlo (:mod:`.montecarlo`: many chains on JAX or Numba,
  each W2 beside its noise floor).
* **Coupling bounds.** Two chains on one noise stream, one from the start and one from π:
  √E‖X_k − Y_k‖² bounds W2 of their laws (:mod:`.coupling`).
* **Theory beside every fit**, from the kernel's declarations (``exact``, ``bias_order``,
  optionally ``dimension_exponent``) or the built-in table (:mod:`.theory`), with a
  :class:`TheoryMismatchWarning` when a fit disagrees beyond its standard error.
* :mod:`.suite` is the fixed study behind ``benchmarks/results/convergence``.

See ``docs/convergence.md`` for the mathematics and the references.
"""

from __future__ import annotations

from .coupling import CouplingBound, coupling_bound, exact_coupling_bound, exact_pair_w2
from .exact import BlockOperator, FullChain, block_operator, full_chain, grads_to_accuracy
from .fits import agreement, fit_slope
from .montecarlo import FLOOR_FACTOR, MCRun, W2Estimate, run_chains, w2_estimate
from .plots import plot_bias, plot_cost_vs_dimension, plot_w2_vs_iterations
from .problems import GaussianProblem, Problem, QuarticProblem, ReferenceProblem
from .study import COLUMNS, Study, study
from .theory import (
    KernelSpec,
    KernelTheory,
    TheoryMismatchWarning,
    builtin_names,
    kernel_specs,
    resolve_kernels,
    theory_of,
)
from .twin import (
    AffineMap,
    Linearity,
    NotAffineError,
    classify,
    extract_affine,
    extract_blocks,
    gradient_evaluations,
)

__all__ = [
    "COLUMNS",
    "FLOOR_FACTOR",
    "AffineMap",
    "BlockOperator",
    "CouplingBound",
    "FullChain",
    "GaussianProblem",
    "KernelSpec",
    "KernelTheory",
    "Linearity",
    "MCRun",
    "NotAffineError",
    "Problem",
    "QuarticProblem",
    "ReferenceProblem",
    "Study",
    "TheoryMismatchWarning",
    "W2Estimate",
    "agreement",
    "block_operator",
    "builtin_names",
    "classify",
    "coupling_bound",
    "exact_coupling_bound",
    "exact_pair_w2",
    "extract_affine",
    "extract_blocks",
    "fit_slope",
    "full_chain",
    "gradient_evaluations",
    "grads_to_accuracy",
    "kernel_specs",
    "plot_bias",
    "plot_cost_vs_dimension",
    "plot_w2_vs_iterations",
    "resolve_kernels",
    "run_chains",
    "study",
    "theory_of",
    "w2_estimate",
]
