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
# # Quickstart: your own log-density, MALA, two backends, and a check against the truth
#
# `langevin` samples any distribution you can write a log-density for. This notebook
#
# 1. writes a log-density twice — once with Numba (CPU), once with JAX (autodiff, GPUs);
# 2. samples it with MALA on both backends;
# 3. reads the ArviZ summary and trace plot;
# 4. measures the Wasserstein-2 distance between the draws and exact draws from the target.
#
# The target is a correlated 2-D Gaussian: simple enough that we know the answer, so every
# number below can be checked. Run the notebook top to bottom (`jupytext --to notebook`
# turns this file into a notebook; it also runs as a plain script).

# %%
import os

import jax.numpy as jnp
import matplotlib
import numba
import numpy as np

import langevin
from langevin.diagnostics import gaussian_w2, w2_to_reference

if os.environ.get("MPLBACKEND") is None:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt

QUICK = os.environ.get("LANGEVIN_TUTORIAL_QUICK") == "1"  # the test suite runs a short version
DRAWS = 3000 if QUICK else 10000

# %% [markdown]
# ## 1. The target
# π(x) ∝ exp(−½ (x − m)ᵀ A (x − m)) with mean m and precision A = Σ⁻¹.

# %%
mean = np.array([1.0, -2.0])
cov = np.array([[1.0, 0.8], [0.8, 1.0]])
precision = np.linalg.inv(cov)

# %% [markdown]
# ### With Numba
# Numba cannot differentiate, so give the gradient too, here in one `value_and_grad`
# function. Data (here m and A) goes in a second argument, given once as `data=`: the
# compiled sampler then works for any data of the same types without compiling again.

# %%
@numba.njit(cache=True)
def gaussian_value_and_grad(x, data):
    m, a = data
    r = x - m
    g = -np.dot(a, r)
    return 0.5 * np.dot(r, g), g


numba_target = langevin.Target.from_numba(
    value_and_grad=gaussian_value_and_grad, data=(mean, precision), names={"x": 2}
)

# %% [markdown]
# ### With JAX
# Just the log-density; the gradient comes from `jax.grad`. Write it so it follows the dtype
# of `x` (float32 in, float32 out).

# %%
def gaussian_logdensity(x):
    r = x - jnp.asarray(mean, x.dtype)
    return -0.5 * r @ (jnp.asarray(precision, x.dtype) @ r)


jax_target = langevin.Target.from_jax(gaussian_logdensity, names={"x": 2})

# %% [markdown]
# ## 2. Sample with MALA
# Warm-up (1000 steps) tunes the step size per chain toward an acceptance rate of 0.574.

# %%
trace_numba = langevin.sample(numba_target, langevin.MALA(step_size=0.5), chains=4,
                              warmup=1000, draws=DRAWS, seed=1, backend="numba")
trace_numba

# %% [markdown]
# On the JAX backend the dtype follows your starting point. We pass float32, JAX's default:

# %%
trace_jax = langevin.sample(jax_target, langevin.MALA(step_size=0.5), chains=4, warmup=1000,
                            draws=DRAWS, seed=1, backend="jax",
                            initial_position=np.zeros(2, np.float32))
print(trace_jax, trace_jax.draws.dtype)

# %% [markdown]
# ## 3. ArviZ
# `to_arviz()` gives an `InferenceData` with `posterior` and `sample_stats`: R-hat, ESS and
# plots as usual.

# %%
summary = trace_numba.summary()  # ArviZ's summary of the draws
summary

# %%
assert (summary["r_hat"] < 1.01).all()  # the usual bar (Vehtari et al. 2021)
assert (np.abs((summary["mean"].to_numpy() - mean) / summary["mcse_mean"].to_numpy()) < 4).all()
z = (summary["mean"].to_numpy() - mean) / summary["mcse_mean"].to_numpy()
print("z-scores of the means against the truth:", z.round(2))

# %%
trace_numba.plot_trace()  # ArviZ's trace plot, on ArviZ 0.x and 1.x
plt.tight_layout()

# %% [markdown]
# ## 4. How close are the draws to π?
# W2 between the draws and exact draws from π (computed by exact optimal transport on a
# subsample). Two finite samples of the *same* law are at a positive distance too; the
# "noise floor" printed beside the estimate is that distance between two halves of the
# reference. A sampler is as good as this check can tell when it is near the floor.

# %%
reference = np.random.default_rng(0).multivariate_normal(mean, cov, size=4000)
for name, trace in (("numba", trace_numba), ("jax", trace_jax)):
    print(name, w2_to_reference(trace, reference, max_points=1000))

# %% [markdown]
# Gaussian summaries have a closed-form W2, too: here between the sample moments and π.

# %%
flat = trace_numba.flat()
print("W2(N(sample moments), π) =",
      gaussian_w2(flat.mean(0), np.cov(flat.T), mean, cov))

# %% [markdown]
# ULA, the unadjusted version, is biased: its stationary covariance is (A − (h/2)A²)⁻¹, not
# Σ. With a fixed step it shows up directly in the W2 distance:

# %%
trace_ula = langevin.sample(numba_target, langevin.ULA(step_size=0.3), chains=4, warmup=1000,
                            draws=DRAWS, seed=1)
biased_cov = np.linalg.inv(precision - 0.15 * precision @ precision)
flat = trace_ula.flat()
print("ULA sample covariance:\n", np.cov(flat.T).round(3))
print("theory (A − (h/2)A²)⁻¹:\n", biased_cov.round(3))
print("W2 of ULA's exact stationary law to π:", gaussian_w2(mean, biased_cov, mean, cov))
