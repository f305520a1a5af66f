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
# # Nonsmooth and constrained posteriors: proximal and mirror Langevin
#
# Two kinds of posteriors that gradient samplers cannot take as they are:
#
# 1. a **sparse regression**: a Gaussian likelihood with a Laplace (LASSO) prior, whose
#    log-density has a kink at every β_j = 0;
# 2. **constrained parameters**: a law on a box, and a law on the simplex.
#
# `langevin.proximal.composite(smooth, penalty)` builds the target U = f + g from the smooth
# part you already have and a nonsmooth part g from a registry; MYULA / MYMALA replace g by
# its Moreau–Yosida envelope g_λ and sample the smoothed law **π_λ ∝ exp(−f − g_λ)**, which
# tends to π as λ → 0. Mirror-Langevin kernels move in the dual coordinates of a mirror map
# and never leave the support. Every comparison below is against an exact answer: a Gibbs
# sampler for the LASSO, closed-form marginals for the box and the simplex.

# %%
import os

import matplotlib
import numpy as np
from scipy import stats

import langevin
from langevin.kernels.mirror import BregmanMoreauMirrorLangevin, MirroredLangevin
from langevin.kernels.proximal import MYMALA, MYULA
from langevin.proximal import box, composite, flat, smoothing_bias, smoothing_for_bias
from langevin.targets.lasso import diabetes_data, diabetes_lasso, lasso_gibbs
from langevin.targets.supported import dirichlet

if os.environ.get("MPLBACKEND") is None:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt

QUICK = os.environ.get("LANGEVIN_TUTORIAL_QUICK") == "1"  # the test suite runs a short version
DRAWS = 3000 if QUICK else 20000

# %% [markdown]
# ## 1. The Bayesian LASSO on the diabetes data
#
# y | β ~ N(Xβ, σ²), p(β) ∝ exp(−r‖β‖₁) with σ = 0.7 and r = 5 on the standardised data
# (442 patients, 10 covariates, shipped with scikit-learn). The posterior is
# π(β) ∝ exp(−‖y − Xβ‖²/(2σ²) − r‖β‖₁): f is the Gaussian log-likelihood, g = r‖·‖₁.

# %%
RATE, SIGMA = 5.0, 0.7
target = diabetes_lasso(RATE, SIGMA)
print(target, sorted(target.capabilities("numba")))

# %% [markdown]
# How small must λ be? The bias of π_λ against π is computable per coordinate when the
# posterior is a product; here it is not, but the prior alone gives the scale: λ with a
# total-variation error of 10⁻⁴ for a Laplace(5) coordinate.

# %%
lam = smoothing_for_bias(langevin.proximal.l1(RATE), 1e-4)
print(
    f"lambda = {lam:.2e}; TV bias of the prior coordinate: "
    f"{smoothing_bias(langevin.proximal.l1(RATE), lam)[0]:.1e}"
)

# %% [markdown]
# MYMALA is MALA on π_λ (exact for π_λ: the only bias left is the smoothing's); warm-up
# tunes its step size. The reference is Park & Casella's Gibbs sampler (σ fixed), an exact
# MCMC for π.

# %%
trace = langevin.sample(
    target, MYMALA(1e-4, smoothing=lam), chains=4, warmup=2000, draws=DRAWS, seed=0, progress=False
)
X, y = diabetes_data()
gibbs = lasso_gibbs(X, y, RATE, SIGMA, 4 * DRAWS, seed=1)
draws = trace.draws.reshape(-1, X.shape[1])
print("coef   MYMALA mean   Gibbs mean   MYMALA 90% interval    Gibbs 90% interval")
for j in range(X.shape[1]):
    lo, hi = np.quantile(draws[:, j], [0.05, 0.95])
    glo, ghi = np.quantile(gibbs[:, j], [0.05, 0.95])
    print(
        f"{j:4d}   {draws[:, j].mean():+.3f}        {gibbs[:, j].mean():+.3f}"
        f"       [{lo:+.3f}, {hi:+.3f}]       [{glo:+.3f}, {ghi:+.3f}]"
    )

# %%
fig, axes = plt.subplots(2, 2, figsize=(10, 6))
for col, j in enumerate((0, 4)):
    axes[0, col].plot(trace.draws[0, :, j], lw=0.5)
    axes[0, col].set_title(f"MYMALA trace, beta[{j}]")
    axes[1, col].hist(draws[:, j], bins=60, density=True, alpha=0.6, label="MYMALA")
    axes[1, col].hist(gibbs[:, j], bins=60, density=True, histtype="step", label="Gibbs")
    axes[1, col].legend()
fig.tight_layout()

# %% [markdown]
# MYULA, the unadjusted version, is cheaper per step and biased in h as well; with the same
# λ it needs a step well inside h ≲ λ.

# %%
trace_u = langevin.sample(
    target, MYULA(2e-4, smoothing=1e-3), chains=4, warmup=2000, draws=DRAWS, seed=0, progress=False
)
print(
    "MYULA - Gibbs means / Gibbs sd:",
    np.round((trace_u.draws.reshape(-1, 10).mean(0) - gibbs.mean(0)) / gibbs.std(0), 2),
)

# %% [markdown]
# ## 2. A uniform law on a box: BMUMLA against the exact smoothed marginals
#
# π uniform on [−1, 1] × [−3, 3]: f ≡ 0, g the indicator of the box. Its Moreau–Yosida
# envelope is dist²(x, box)/(2λ), so π_λ is uniform inside with Gaussian tails of scale √λ,
# and its marginal CDF is in closed form. BMUMLA (Lau & Liu 2022) takes mirror-Langevin steps
# with the hypentropy mirror map, whose steps grow away from 0 — it crosses the wide side
# faster than MYULA.

# %%
LOWER, UPPER, LAM = np.array([-1.0, -3.0]), np.array([1.0, 3.0]), 0.05
box_target = composite(flat(2), box(LOWER, UPPER))
kernel = BregmanMoreauMirrorLangevin(
    0.004, smoothing=LAM, mirror="hypentropy", mirror_scale=np.array([1.0, 2.0])
)
trace_box = langevin.sample(
    box_target, kernel, chains=4, warmup=1000, draws=5 * DRAWS, seed=2, progress=False
)


def smoothed_uniform_pdf(x, a, b, lam):
    z = (b - a) + np.sqrt(2 * np.pi * lam)
    dist = np.maximum(a - x, 0.0) + np.maximum(x - b, 0.0)
    return np.exp(-(dist**2) / (2 * lam)) / z


fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for i in range(2):
    grid = np.linspace(LOWER[i] - 1, UPPER[i] + 1, 400)
    axes[i].hist(trace_box.draws[..., i].ravel(), bins=80, density=True, alpha=0.6, label="BMUMLA")
    axes[i].plot(
        grid, smoothed_uniform_pdf(grid, LOWER[i], UPPER[i], LAM), "k", label="exact pi_lambda"
    )
    axes[i].legend()
fig.tight_layout()
outside = np.mean(np.any((trace_box.draws < LOWER) | (trace_box.draws > UPPER), axis=-1))
tails = np.sqrt(2 * np.pi * LAM) / ((UPPER - LOWER) + np.sqrt(2 * np.pi * LAM))
print(f"fraction outside the box: {outside:.3f} (pi_lambda: {1 - np.prod(1 - tails):.3f})")

# %% [markdown]
# ## 3. A Dirichlet law on the simplex: the mirrored entropy scheme
#
# Dirichlet(2, 3, 4) in its first two coordinates. With the entropic mirror map
# y_i = log(x_i/x_3), ULA in y on the pushforward law (Hsieh et al. 2018) has the bounded
# drift α_{1..2} − α₀x, and x = softmax(y, 0) never leaves the open simplex. Its marginals
# are Beta(α_i, α₀ − α_i).

# %%
alpha = np.array([2.0, 3.0, 4.0])
trace_d = langevin.sample(
    dirichlet(alpha),
    MirroredLangevin(0.005, mirror="entropy"),
    chains=4,
    warmup=1000,
    draws=5 * DRAWS,
    seed=3,
    progress=False,
)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
for i in range(2):
    grid = np.linspace(0, 1, 300)
    axes[i].hist(trace_d.draws[..., i].ravel(), bins=60, density=True, alpha=0.6)
    axes[i].plot(grid, stats.beta(alpha[i], alpha.sum() - alpha[i]).pdf(grid), "k")
    axes[i].set_title(f"x[{i}]: draws and Beta({alpha[i]:g}, {alpha.sum() - alpha[i]:g})")
axes[2].plot(trace_d.draws[0, :2000, 0], trace_d.draws[0, :2000, 1], lw=0.3)
axes[2].plot([0, 1, 0, 0], [0, 0, 1, 0], "k")
axes[2].set_title("a chain in the simplex")
fig.tight_layout()
print("min coordinate, max sum:", trace_d.draws.min(), trace_d.draws.sum(-1).max())
