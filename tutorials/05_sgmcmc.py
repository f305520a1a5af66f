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
# 3. compares them with a long full-batch NUTS reference: posterior means, the kernel Stein
#    discrepancy, and the calibration of the predicted probabilities on held-out rows (a
#    reliability diagram and the expected calibration error).
#
# The data: the RAND Health Insurance Experiment shipped with `langevin` (20 190 person-years,
# public domain): did the person see a doctor in the year, given their insurance plan and
# health (an intercept and 9 standardised covariates). 16 152 rows train the model, 4038 are
# held out; a long NUTS run on the training rows is the reference
# (`benchmarks/make_rand_hie_reference.py`).

# %%
import os
from pathlib import Path

import matplotlib
import numpy as np

import langevin
from langevin.diagnostics import kernel_stein_discrepancy
from langevin.kernels.sgmcmc import PSGLD, SGLD
from langevin.kernels.structured_sgmcmc import StructuredSGLD, group_randomly
from langevin.targets.data_targets import logistic_regression_data

if os.environ.get("MPLBACKEND") is None:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt

QUICK = os.environ.get("LANGEVIN_TUTORIAL_QUICK") == "1"  # the test suite runs a short version
DRAWS = 4000 if QUICK else 40000
THIN = 4 if QUICK else 40

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
X, y = langevin.targets.rand_hie_design()  # intercept + 9 standardised columns; any visit
data_dir = Path(langevin.targets.__file__).parent / "data" / "rand_hie"
reference = dict(np.load(data_dir / "reference.npz"))  # NUTS on the training rows; the split
train = np.ones(len(y), dtype=bool)
train[reference["test_index"]] = False
X_test, y_test = X[~train], y[~train]
target = logistic_regression_data(X[train], y[train], prior_scale=float(reference["prior_scale"]))
ref_draws = reference["draws"].reshape(-1, X.shape[1])  # 4 x 1000 NUTS draws
ref_mean, ref_sd = reference["mean"], reference["sd"]
n, d = target.n_data, target.dim
print(target, "test rows:", len(y_test))

# %% [markdown]
# ## 2. Three stochastic-gradient samplers
# With n = 16 152 the posterior is narrow (sds about 0.02) and its largest curvature is about
# 6600, so a full-gradient Langevin step must stay below 2/6600. The minibatch gradient
# (b = 100) adds noise whose variance grows like h·n²/b: at h = 2·10⁻⁶, SGLD's stationary law
# is already 10-30 % wider than the posterior (the linearised chain predicts it exactly; see
# `benchmarks/sgmcmc_rand_hie.py`, which also runs SGLD with control variates and SGHMC).
# pSGLD rescales each coordinate by G = 1/(λ + √V), V an RMSprop average of the squared mean
# per-datum gradient; that gradient is small near the mode, so G is large (~20 here) and
# pSGLD's h must be smaller. Structured SGLD samples the *mean-field* approximation over
# parameter groups (four random groups here; each step evaluates the minibatch four times):
# it mixes faster where the posterior couples groups, but it is not the posterior: its
# marginals are narrower where the covariates are correlated (the covariates here are only
# mildly correlated, and the minibatch noise's inflation dominates).

# %%
batch = 100
kernels = {
    # gradient_noise=True: each step also estimates tr Cov(ĝ) (two half-batch likelihood
    # calls instead of one; off by default)
    "SGLD": SGLD(2e-6, batch_size=batch, n_data=n, gradient_noise=True),
    "pSGLD": PSGLD(1e-7, batch_size=batch, n_data=n, alpha=0.99, lam=1e-3, gradient_noise=True),
    "structured SGLD": StructuredSGLD(2e-6, groups=group_randomly(d, 4, seed=0),
                                      batch_size=batch, n_data=n, buffer_size=200),
}  # fmt: skip
traces = {}
for name, kernel in kernels.items():
    traces[name] = langevin.sample(target, kernel, backend="numba", chains=4, warmup=2000,
                                   draws=DRAWS, seed=1, initial_position=np.zeros(d),
                                   progress=False)  # fmt: skip
    print(f"{name:16s} mean estimated gradient noise tr Cov(ĝ) = "
          f"{np.mean(traces[name].sample_stats['gradient_noise']):.3g}")  # fmt: skip

# %% [markdown]
# ## 3. Posterior means, sds and the kernel Stein discrepancy against NUTS
# The error of each posterior mean in units of the reference posterior sd, the ratio of the
# sds, and the **kernel Stein discrepancy** (`langevin.diagnostics.kernel_stein_discrepancy`,
# Gorham & Mackey 2017): a distance between the draws and the posterior computed from the
# draws and the full-data score ∇log π alone — no reference needed. Measured in units of
# the reference sd (`scale=`), and read against the KSD of as many NUTS draws.

# %%
n_ksd = 1000 if QUICK else 4000
ksd_ref = kernel_stein_discrepancy(ref_draws, target, scale=ref_sd, max_points=n_ksd)
print(f"{'NUTS reference':16s} {ksd_ref}")
for name, trace in traces.items():
    draws = trace.draws[:, ::THIN].reshape(-1, d)
    err = (draws.mean(0) - ref_mean) / ref_sd
    sd_ratio = draws.std(0) / ref_sd
    ksd = kernel_stein_discrepancy(trace, target, thin=THIN, scale=ref_sd, max_points=n_ksd)
    print(
        f"{name:16s} |mean error|/sd: median {np.median(np.abs(err)):.2f}, "
        f"max {np.abs(err).max():.2f};  sd ratio: median {np.median(sd_ratio):.2f};  "
        f"KSD {ksd.ksd:.3f}"
    )

# %% [markdown]
# ## 4. Calibration of the predictive probabilities on held-out rows
# For each test row, the posterior predictive probability `p_i = E[σ(x_iᵀβ)]` averaged over
# the draws. A calibrated model has, among rows with `p_i ≈ p`, a fraction `p` of positives;
# the expected calibration error (ECE) is the bin-weighted mean gap over 10 bins. The NUTS
# reference gives the answer the exact posterior gives. With 16 152 training rows the
# posterior is so narrow that every sampler predicts almost exactly what NUTS predicts: the
# differences are in the posterior's shape (section 3), not in these predictions.


# %%
def predictive(draws: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * (draws @ X_test.T)))).mean(axis=0)  # mean of σ(η)


def calibration(p: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray, float]:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    conf, freq, ece = [], [], 0.0
    for k in range(bins):
        mask = which == k
        if mask.any():
            conf.append(p[mask].mean())
            freq.append(y_test[mask].mean())
            ece += mask.mean() * abs(p[mask].mean() - y_test[mask].mean())
    return np.array(conf), np.array(freq), ece


results = {"NUTS (full batch)": predictive(ref_draws[:: 4 if QUICK else 1])}
for name, trace in traces.items():
    results[name] = predictive(trace.draws[:, ::THIN].reshape(-1, d))
fig, ax = plt.subplots(figsize=(5, 5))
ax.plot([0, 1], [0, 1], "k:", lw=1)
for name, p in results.items():
    conf, freq, ece = calibration(p)
    loglik = np.mean(y_test * np.log(p) + (1 - y_test) * np.log1p(-p))
    print(f"{name:18s} ECE {ece:.4f}   mean test log predictive {loglik:.5f}")
    ax.plot(conf, freq, "o-", label=f"{name} (ECE {ece:.3f})")
ax.set_xlabel("predicted probability")
ax.set_ylabel("observed frequency")
ax.legend(fontsize=8)
ax.set_title("Reliability diagram (4038 held-out rows)")
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
                            draws=500, seed=1, initial_position=ref_mean.astype(np.float32),
                            progress=False)  # fmt: skip
print("JAX SGLD draws:", trace_jax.draws.shape, trace_jax.draws.dtype)
