# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Convergence rates: how fast, and how biased, is each sampler?
#
# An *unadjusted* sampler (ULA, kinetic Langevin) does not sample π exactly: with step size
# h its chain settles on a law π_h whose distance to π, the **stationary bias**, shrinks
# like h^p. A Metropolis-corrected sampler (MALA, HMC) has no bias, and pays for it in
# rejections. This notebook measures both sides in the Wasserstein-2 distance W2:
#
# 1. reads the one-step map of ULA off its own code and recovers the textbook bias law;
# 2. runs the convergence benchmark (`python -m benchmarks.convergence --quick` does the
#    same from a shell);
# 3. shows its three plots and reads the fitted orders off next to what theory says.
#
# Everything on a Gaussian target is *exact* (no sampling noise): on N(m, Σ) every
# unadjusted kernel here is an affine map of its state and its Gaussian noise, so the law
# after k steps is Gaussian with moments we can propagate, and W2 has a closed form.
# Metropolis-corrected kernels and the non-Gaussian target need many chains; there the
# benchmark reports each W2 next to its *noise floor*, the W2 two exact samples of π of the
# same size already have.

# %%
import os
import sys
from pathlib import Path

import matplotlib
import numpy as np

if os.environ.get("MPLBACKEND") is None:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt

try:  # the benchmark lives in the repository, next to tutorials/
    ROOT = Path(__file__).resolve().parents[1]
except NameError:  # in a notebook started from the repository or from tutorials/
    ROOT = next(
        p for p in (Path.cwd(), *Path.cwd().parents) if (p / "benchmarks" / "convergence").is_dir()
    )
sys.path.insert(0, str(ROOT))

import langevin
from benchmarks.convergence import QUICK, TINY, run
from benchmarks.convergence.exact import block_operator
from benchmarks.convergence.problems import GaussianProblem
from benchmarks.convergence.report import fit_slope
from benchmarks.convergence.twin import extract_affine

QUICK_TUTORIAL = os.environ.get("LANGEVIN_TUTORIAL_QUICK") == "1"  # the tests run it short
CONFIG = TINY if QUICK_TUTORIAL else QUICK

# %% [markdown]
# ## 1. ULA's one-step map, read off its code
#
# ULA's step is x' = x + h∇log π(x) + √(2h) ξ. On π = N(m, A⁻¹) the gradient is −A(x − m),
# so the step is affine: x' = M x + c + B ξ. `extract_affine` runs ULA's own `step_math`
# (in plain NumPy) at the origin, at each basis vector and with unit noise, and reads off
# M, c and B — then checks the map at random points.

# %%
problem = GaussianProblem(dim=3, kappa=10.0, seed=0)
h = 0.1
step = extract_affine(langevin.ULA(h), problem.numpy_value_and_grad(), problem.dim)
print("M == I − hA:", np.allclose(step.M, np.eye(3) - h * problem.precision))
print("B == √(2h) I:", np.allclose(step.B, np.sqrt(2 * h) * np.eye(3)))

# %% [markdown]
# The stationary law then solves S = M S Mᵀ + B Bᵀ. On the 1-D N(0, 1) it is
# N(0, 1/(1 − h/2)), so the stationary bias is W2 = 1/√(1 − h/2) − 1 ≈ h/4: order 1
# (Durmus & Moulines 2019). The same computation from the extracted map:

# %%
hs = np.geomspace(0.01, 0.2, 6)
w2 = np.array([block_operator(langevin.ULA(h), np.array([1.0])).stationary_w2() for h in hs])
closed_form = 1 / np.sqrt(1 - hs / 2) - 1
print("largest difference to the closed form:", np.max(np.abs(w2 - closed_form)))
slope, se, _ = fit_slope(hs, w2)
print(f"fitted bias order {slope:.3f} (theory: 1; the excess is the h² term of the curve)")

# %% [markdown]
# ## 2. The benchmark
#
# `run(config, folder)` runs six experiments (see `benchmarks/README.md`):
#
# * stationary W2 bias against h on a rotated Gaussian (d = 10, condition number κ = 10),
#   exact;
# * W2 against the number of steps from a point mass, exact;
# * the fewest gradient evaluations to reach W2 ≤ ε as the dimension grows, exact;
# * the same cost on a 1-D Gaussian, exact and by Monte Carlo (many chains on JAX);
# * Monte Carlo W2 and stationary variance for the randomized midpoint and the
#   Metropolis-corrected kernels (ULA rides along as a control with a known answer);
# * stationary bias on the non-Gaussian quartic target U(x) = x²/2 + x⁴/4 (exact law by
#   quadrature), by Monte Carlo.
#
# This notebook runs the `QUICK` configuration (a few minutes on two cores); the test suite
# runs the `TINY` one (seconds), whose numbers are only a smoke test.

# %%
out_dir = Path("convergence_results")
result = run(CONFIG, out_dir, verbose=False)
print(
    f"{CONFIG.name} run: {result['seconds']:.0f} s; files:",
    ", ".join(p.name for p in result["files"]),
)

# %% [markdown]
# ## 3. The plots
#
# Left: stationary bias against step size (log-log; the slope is the order). Middle and
# right: the quartic target by Monte Carlo; crosses are values within 3 noise floors
# (E[x²]: within 4 standard errors) and do not enter the fits.


# %%
def show(name: str, width: float = 15.0) -> None:
    img = plt.imread(out_dir / name)
    _fig, ax = plt.subplots(figsize=(width, width * img.shape[0] / img.shape[1]))
    ax.imshow(img)
    ax.axis("off")
    plt.show()


show("bias_vs_step_size.png")

# %% [markdown]
# W2 against the number of steps: exact on the 10-D Gaussian (left), by Monte Carlo on the
# 1-D one (right; the dotted line is the noise floor — the curves flatten there because
# the estimate cannot go lower, not because the chains stop converging).

# %%
show("w2_vs_steps.png", 13.0)

# %% [markdown]
# The cost to reach W2 ≤ ε as the dimension grows, with the step size re-optimised for
# every d. For ULA, Li, Zha & Tao (2022) prove Õ(√d/ε) iterations: exponent 1/2.

# %%
show("cost_vs_dimension.png", 7.0)

# %% [markdown]
# ## 4. Measured orders next to theory

# %%
for line in result["summary"].table:
    spec = line["spec"]
    gauss = line.get("gauss_order") or line.get("gauss_slope")
    if isinstance(gauss, tuple):
        gauss = f"{gauss[0]:.2f}" if np.isfinite(gauss[0]) else "—"
    dim = line.get("dim_slope")
    dim = f"{dim[0]:.2f}" if dim and np.isfinite(dim[0]) else "not measured"
    theory = "exact (MH)" if spec.bias_theory is None else f"{spec.bias_theory:g}"
    print(
        f"{spec.name:32s} bias order: measured {gauss!s:>20s}, theory {theory:>10s};"
        f" dimension exponent: measured {dim:>12s}, theory {spec.dim_theory:.3g}"
    )

# %% [markdown]
# How to read it:
#
# * **ULA**: order 1 and dimension exponent about 1/2 — both as theory says (the
#   exponent comes out a little above 1/2 because the start moves away as √d, which adds
#   a log d).
# * **Randomized midpoint**: its law on a Gaussian is a mixture of Gaussians (the
#   midpoint is random), so what is computed exactly is a *lower bound* on W2 from its
#   first two moments. That bias shrinks like h³ — steeper than the h^{3/2} of the
#   general bounds (Shen & Lee 2019), which cover all strongly log-concave targets.
# * **BAOAB** (and ABOBA): no position bias at all on Gaussians (Leimkuhler & Matthews
#   2013), so their cost barely depends on d. On the quartic target theory gives order 2
#   with a small constant; whether Monte Carlo resolves it at this number of chains is in
#   the table ("not resolved" is an honest answer, not a failure).
# * **OBABO**: bias O(h²) even on Gaussians, so a dimension exponent near 1/4.
# * **MALA, HMC**: exact; the Monte Carlo table in `convergence.md` checks their
#   stationary variance against 1 in units of its standard error.
#
# The full run (`python -m benchmarks.convergence`, about 20 minutes) goes to d = 10⁴ and
# 2·10⁵ chains; its results are in `benchmarks/results/convergence/`.

# %%
print((out_dir / "convergence.md").read_text().split("## Theory")[0])
