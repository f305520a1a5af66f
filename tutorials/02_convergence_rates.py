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
# # Convergence rates: how fast, and how biased, is each sampler — yours included?
#
# An *unadjusted* sampler (ULA, kinetic Langevin) does not sample π exactly: with step size
# h its chain settles on a law π_h whose distance to π, the **stationary bias**, shrinks
# like h^p. A Metropolis-corrected sampler (MALA, HMC) has no bias, and pays for it in
# rejections. `langevin.convergence` measures both in the Wasserstein-2 distance W2, for
# the built-in kernels and for a kernel you write yourself:
#
# 1. it *detects* whether a kernel's step is affine on a Gaussian target, by probing the
#    kernel's own code, and then computes the laws exactly (no sampling noise);
# 2. it runs many chains (JAX or Numba) where no exact law exists, and reports every W2
#    next to its *noise floor*;
# 3. it bounds W2 from above with a *synchronous coupling*: two chains on one noise stream;
# 4. it puts the kernel's declared theory beside every fitted order, and warns when they
#    disagree.
#
# This notebook studies ULA, the randomized-midpoint kinetic kernel and a kernel of our own
# side by side.

# %%
import os

import matplotlib
import numpy as np

if os.environ.get("MPLBACKEND") is None:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt

import langevin
import langevin.convergence as lc

QUICK = os.environ.get("LANGEVIN_TUTORIAL_QUICK") == "1"  # the tests run it short

# %% [markdown]
# ## 1. Your own kernel
#
# A kernel is a step function written once against the portable namespace `xp` (see
# `langevin/kernels/base.py`). Here: ULA with *Heun's* predictor–corrector drift,
#
#   x' = x + (h/2) (∇log π(x) + ∇log π(x + h ∇log π(x))) + √(2h) ξ,
#
# two gradient evaluations per step. We declare what we believe about it (`bias_order`: the
# W2 bias is O(h)); the study will check that.

# %%
from dataclasses import dataclass
from typing import NamedTuple

from langevin.backends.portable import portable
from langevin.kernels.base import GradientState, Kernel, init_gradient_state
from langevin.spec import Flag, Normal, Scalar, Vector


class HeunNoise(NamedTuple):
    normal: Vector


class HeunInfo(NamedTuple):
    acceptance_rate: Scalar
    diverging: Flag


@portable
def heun_step(state, noise, step_size, params, target):
    predictor = state.position + step_size * state.grad
    _, g_pred = xp.value_and_grad(target, predictor)  # noqa: F821 - bound by the backend
    y = (
        state.position
        + 0.5 * step_size * (state.grad + g_pred)
        + xp.sqrt(2.0 * step_size) * noise.normal  # noqa: F821
    )
    lp, g = xp.value_and_grad(target, y)  # noqa: F821
    return GradientState(y, lp, g), HeunInfo(1.0, False)


@dataclass(frozen=True)
class HeunULA(Kernel):
    step_size: float
    Noise = HeunNoise
    Info = HeunInfo
    State = GradientState
    exact = False
    bias_order = 1.0
    init_math = staticmethod(init_gradient_state)
    step_math = staticmethod(heun_step)

    def noise(self, dim):
        return HeunNoise(Normal((dim,)))


# %% [markdown]
# ## 2. What is exact, and what needs Monte Carlo: detected, not declared
#
# `classify` runs a kernel's step in plain NumPy on a generic correlated Gaussian, reads
# off the affine map z' = M z + c + B ξ at several values of each uniform draw (near 0 and
# near 1 too) and checks it at random points. An accept/reject step fails the check; the
# randomized midpoint passes with coefficients that depend on its uniform (exact moments,
# and a W2 lower bound); our kernel passes.

# %%
kinetic_rm = langevin.KineticLangevin(0.1, friction=2.0, discretization="randomized_midpoint")
for kernel in (langevin.ULA(0.1), langevin.MALA(0.1), kinetic_rm, HeunULA(0.1)):
    print(f"{kernel.name:28s} {lc.classify(kernel).kind:10s} {lc.classify(kernel).reason}")

# %% [markdown]
# On N(m, A⁻¹), ULA's map read off its own code is the textbook one, M = I − hA and
# B = √(2h) I:

# %%
problem = lc.GaussianProblem(dim=3, kappa=10.0, seed=0)
step = lc.extract_affine(langevin.ULA(0.1), problem.numpy_value_and_grad(), problem.dim)
print("M == I − hA:", np.allclose(step.M, np.eye(3) - 0.1 * problem.precision))
print("B == √(2h) I:", np.allclose(step.B, np.sqrt(0.2) * np.eye(3)))

# %% [markdown]
# ## 3. One study, three kernels
#
# `study` takes the kernels (built-in names, instances, classes or `h -> kernel`
# callables), a problem (here a rotated Gaussian, d = 10, condition number κ = 10, started
# 3 standard deviations away along every eigendirection), the step sizes, the horizon of
# the W2-against-iterations curves, the dimensions of the cost curve, and whether to add
# coupling bounds (Monte Carlo: left out of the short run the tests make, where compiling
# the chains would dominate; section 5 computes one).

# %%
kernels = {"ULA": "ULA", "randomized midpoint": "kinetic_randomized_midpoint", "Heun": HeunULA}
gaussian = lc.GaussianProblem(dim=10, kappa=10.0)
result = lc.study(
    kernels,
    gaussian,
    step_sizes=np.geomspace(0.01, 0.1, 3 if QUICK else 7),
    iterations=100 if QUICK else 1000,
    dims=[10, 100] if QUICK else [10, 100, 1000],
    coupling=not QUICK,
    n_chains=10_000,
)
print(result)

# %% [markdown]
# Every number is a row of a tidy table (an xarray Dataset; `.to_dataframe()` gives pandas):

# %%
table = result.table
print(table.sizes, list(table.data_vars))
print(
    [
        (r["kernel"], r["method"], round(r["value"], 5))
        for r in result.select(
            quantity="w2_stationary", step_size=result.settings["step_sizes"][-1]
        )
    ]
)

# %% [markdown]
# ## 4. Fitted orders beside the theory
#
# `fits` holds, per kernel, the fitted stationary-bias order (slope of log W2 on log h) and
# the dimension exponent of the cost to reach W2 ≤ ε, each with its standard error and the
# theory the kernel declares (built-ins: from the literature, with sources in
# `docs/convergence.md`). Our kernel's order 1 is confirmed; had we declared 2, the study
# would have issued a `TheoryMismatchWarning`.

# %%
fits = result.fits
for name in fits["kernel"].values:
    f = fits.sel(kernel=name)
    print(
        f"{name:20s} bias order {float(f['bias_order']):5.2f} ± {float(f['bias_order_se']):.2f}"
        f" (theory {float(f['bias_order_theory']):g}, {f['bias_agreement'].values!s});"
        f" dimension exponent {float(f['dim_exponent']):5.2f}"
        f" (theory {float(f['dim_exponent_theory']):.3g})"
    )

# %% [markdown]
# * **ULA**: order 1 and dimension exponent about 1/2, as Durmus & Moulines (2019) and
#   Li, Zha & Tao (2022) say.
# * **Randomized midpoint**: its law on a Gaussian is a mixture of Gaussians (the midpoint
#   is random), so what is exact is a *lower bound* on W2 from its first two moments. That
#   bias shrinks like h³, steeper than the h^{3/2} of the general bound (Shen & Lee 2019).
# * **Heun**: order 1, like ULA, but a smaller constant for two gradients per step.

# %% [markdown]
# ## 5. The figures: one call each, and the coupling bound

# %%
fig = lc.plot_bias(result)
plt.show()

# %% [markdown]
# W2 against iterations from the start (exact here), with the synchronous-coupling bound
# where computed: chains X from the start and Y from exact draws of π, driven by the *same*
# noise; √E‖X_k − Y_k‖² bounds W2(law X_k, law Y_k) from above (dashed, with ±2 standard
# errors). For an affine kernel both laws are Gaussian and known, so the exact W2 between
# them is drawn too (dash-dot). For an unadjusted kernel, Y converges to π_h, not π: the
# bias is the separate curve of section 4.

# %%
fig = lc.plot_w2_vs_iterations(result, step_size=result.settings["step_sizes"][-1])
plt.show()

# %% [markdown]
# The coupling bound of our own kernel, three ways: by Monte Carlo (pairs of chains on one
# noise stream, on JAX), in closed form (the shared noise cancels in X − Y, so
# D_{k+1} = M D_k with the M read off the kernel), and the exact W2 it bounds. At k = 0
# the synchronous coupling is optimal (a point mass against π), later it is not.

# %%
ks = [0, 5, 10, 20, 50, 100]
heun = HeunULA(0.1)
mc = lc.coupling_bound(heun, gaussian, ks, n_pairs=1000 if QUICK else 20_000)
closed = lc.exact_coupling_bound(heun, gaussian, ks).bound
w2_pair = lc.exact_pair_w2(heun, gaussian, ks)
print("   k   MC bound ± se      closed form   exact W2(law X_k, law Y_k)")
for k, b, se, c, w in zip(ks, mc.bound, mc.se, closed, w2_pair):
    print(f"{k:4d}   {b:8.4f} ± {se:.4f}   {c:8.4f}      {w:8.4f}")

# %%
fig = lc.plot_cost_vs_dimension(result)
plt.show()

# %% [markdown]
# ## 6. Monte Carlo where nothing is exact
#
# MALA and HMC, or any kernel on a non-Gaussian target, get many chains. On the quartic
# target U(x) = x²/2 + x⁴/4 (exact law by quadrature), each W2 is reported beside its
# noise floor — the W2 two exact samples of the same size already have — and only points
# above 3 floors enter a fit. `backend="numba"` runs the same on the CPU loop.

# %%
quartic = lc.study(
    {"ULA": "ULA", "MALA": "MALA"} if QUICK else {"ULA": "ULA", "MALA": "MALA", "Heun": HeunULA},
    lc.QuarticProblem(1),
    step_sizes=[0.1, 0.2] if QUICK else [0.025, 0.05, 0.1, 0.2],
    n_chains=2000 if QUICK else 100_000,
)
for r in quartic.select(quantity="w2_stationary"):
    print(
        f"{r['kernel']:5s} h={r['step_size']:<5g} W2={r['value']:.4g} "
        f"(floor {r['noise_floor']:.4f}, resolved: {r['resolved']}) {r['note']}"
    )

# %% [markdown]
# A run where chains diverged (the quartic's gradient is not Lipschitz, so an explicit
# step blows up far out) is flagged and kept out of every fit.

# %% [markdown]
# ## 7. From a shell, and the full suite
#
# `python -m langevin.convergence --kernels ULA MALA kinetic_baoab --quick --out results`
# writes the CSV, the Markdown summary and the PNGs. The fixed study behind the committed
# results (`benchmarks/results/convergence/`: every built-in kernel, d up to 10⁴, 2·10⁵
# chains) is `langevin.convergence.suite`, run by `python -m benchmarks.convergence`.

# %%
print(result.to_markdown().split("\n* *kind*")[0])
