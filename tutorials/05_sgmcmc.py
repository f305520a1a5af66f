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
# # Stochastic-gradient MCMC: SGLD, pSGLD and structured SG-MCMC on real data
#
# When the data set is large, one gradient of the log posterior costs a pass over all of
# it. Stochastic-gradient kernels use a random minibatch per step instead, rescaled by
# n/b: cheap steps, at the price of a bias (they never accept or reject). This notebook
#
# 1. builds a **data target** from a data set (a log-prior and a per-datum log-likelihood);
# 2. samples a Bayesian logistic regression with SGLD, pSGLD and structured SGLD;
# 3. compares them with a long full-batch NUTS reference: posterior means, and the
#    calibration of the predicted probabilities (a reliability diagram and the expected
#    calibration error).
#
# The data: the Wisconsin breast-cancer data shipped with `langevin` (569 cases, 30
# standardised features and an intercept; CC BY 4.0), whose posterior has a NUTS reference.
# 569 rows are few for SG-MCMC — its point is data sets of 10⁵–10⁷ rows — but only here can
# every number be checked against a trustworthy answer.

# %%
import os

import matplotlib
import numpy as np

import langevin
from langevin.kernels.sgmcmc import PSGLD, SGLD, find_mode
from langevin.kernels.structured_sgmcmc import StructuredSGLD, group_randomly
from langevin.targets.data_targets import logistic_regression_data

if os.environ.get("MPLBACKEND") is None:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt

QUICK = os.environ.get("LANGEVIN_TUTORIAL_QUICK") == "1"  # the test suite runs a short version
DRAWS = 4000 if QUICK else 40000
THIN = 4 if QUICK else 20

# %% [markdown]
# ## 1. A data target
# `logistic_regression_data(X, y)` is a built-in data target: it holds the arrays once
# (shared by every chain, never copied into compiled code) and provides the minibatch
# log-likelihood `Σ_{i∈B} log p(y_i | x_i, β)` with its gradient on both backends, the
# log-prior, and the full-data log posterior. Your own model is one call of
# `langevin.targets.data_targets.data_target` with a per-datum log-likelihood (JAX: a
# function of one row, vmapped and differentiated for you; Numba: the value and gradient
# of one row).

# %%
reference_target = langevin.targets.breast_cancer_logistic_regression()
X, y, _ = reference_target.data  # the standardised design with its intercept column, labels
target = logistic_regression_data(X, y, prior_scale=1.0)
reference = reference_target.reference  # NUTS: 4 x 5000 draws
n, d = X.shape
print(target, "reference:", reference.source)

# %% [markdown]
# ## 2. Three stochastic-gradient samplers
# The largest curvature of this posterior is about 2000 (nearly collinear features), so
# SGLD needs a step h well below 2/2000. pSGLD rescales each coordinate by
# G = 1/(λ + √V), V an RMSprop average of the squared mean per-datum gradient; near the mode
# that gradient is small, so G is large and pSGLD's h must be smaller (λ caps G at 1/λ:
# with λ = 10⁻³ and h = 2·10⁻³ the chains blow up within a few steps). Structured SGLD samples the
# *mean-field* approximation over parameter groups (here four random groups): it mixes
# faster where the posterior couples groups, but it is not the posterior — expect
# under-dispersed marginals.

# %%
batch = 32
mode = find_mode(target)  # L-BFGS on the full data: a good place to start
start = mode.position
kernels = {
    "SGLD": SGLD(2e-4, batch_size=batch, n_data=n),
    "pSGLD": PSGLD(5e-5, batch_size=batch, n_data=n, alpha=0.99, lam=1e-2),
    "structured SGLD": StructuredSGLD(2e-4, groups=group_randomly(d, 4, seed=0),
                                      batch_size=batch, n_data=n, buffer_size=200),
}  # fmt: skip
traces = {}
for name, kernel in kernels.items():
    traces[name] = langevin.sample(target, kernel, backend="numba", chains=4, warmup=1000,
                                   draws=DRAWS, seed=1, initial_position=start,
                                   progress=False)  # fmt: skip
    print(f"{name:16s} mean estimated gradient noise tr Cov(ĝ) = "
          f"{np.mean(traces[name].sample_stats['gradient_noise']):.3g}")  # fmt: skip

# %% [markdown]
# ## 3. Posterior means against NUTS
# The error of each posterior mean in units of the reference posterior sd.

# %%
ref_draws = reference.draws
for name, trace in traces.items():
    draws = trace.draws[:, ::THIN].reshape(-1, d)
    err = (draws.mean(0) - reference.mean) / reference.sd
    sd_ratio = draws.std(0) / reference.sd
    print(
        f"{name:16s} |mean error|/sd: median {np.median(np.abs(err)):.2f}, "
        f"max {np.abs(err).max():.2f};  sd ratio: median {np.median(sd_ratio):.2f}"
    )

# %% [markdown]
# ## 4. Calibration of the predictive probabilities
# For each case, the posterior predictive probability `p_i = E[σ(x_iᵀβ)]` averaged over the
# draws. A calibrated model has, among cases with `p_i ≈ p`, a fraction `p` of positives;
# the expected calibration error (ECE) is the bin-weighted mean gap over 10 bins. The NUTS
# reference gives the answer the exact posterior gives.


# %%
def predictive(draws: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-(draws @ X.T)))).mean(axis=0)


def calibration(p: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray, float]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    conf, freq, ece = [], [], 0.0
    for k in range(bins):
        mask = which == k
        if mask.any():
            conf.append(p[mask].mean())
            freq.append(y[mask].mean())
            ece += mask.mean() * abs(p[mask].mean() - y[mask].mean())
    return np.array(conf), np.array(freq), ece


results = {"NUTS (full batch)": predictive(ref_draws[:: 4 if QUICK else 1])}
for name, trace in traces.items():
    results[name] = predictive(trace.draws[:, ::THIN].reshape(-1, d))
fig, ax = plt.subplots(figsize=(5, 5))
ax.plot([0, 1], [0, 1], "k:", lw=1)
for name, p in results.items():
    conf, freq, ece = calibration(p)
    loglik = np.mean(y * np.log(p) + (1 - y) * np.log1p(-p))
    print(f"{name:18s} ECE {ece:.4f}   mean log predictive {loglik:.4f}")
    ax.plot(conf, freq, "o-", label=f"{name} (ECE {ece:.3f})")
ax.set_xlabel("predicted probability")
ax.set_ylabel("observed frequency")
ax.legend(fontsize=8)
ax.set_title("Reliability diagram (in-sample)")
fig.savefig("sgmcmc_calibration.png", dpi=100)

# %% [markdown]
# ## 5. Same noise, same chain — on JAX too
# Every kernel here runs on both backends from the same code; the minibatch indices are
# part of the noise (drawn without replacement by Floyd's algorithm), so a chain is a
# deterministic function of its seed on each backend. On JAX the data target passes the
# arrays to the compiled loop as an argument: a new data set of the same shape compiles
# nothing.

# %%
trace_jax = langevin.sample(target, kernels["SGLD"], backend="jax", chains=2, warmup=200,
                            draws=500, seed=1, initial_position=start.astype(np.float32),
                            progress=False)  # fmt: skip
print("JAX SGLD draws:", trace_jax.draws.shape, trace_jax.draws.dtype)
