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
# # Sequential Monte Carlo: evidence by tempering, and a particle filter
#
# MCMC gives draws from a posterior; it does not tell you how well the model explains the
# data. The **evidence** (marginal likelihood) ``Z = ∫ p(x) L(x) dx`` does, and sequential
# Monte Carlo estimates it as a by-product. This notebook
#
# 1. estimates ``log Z`` of a conjugate Gaussian model, whose exact evidence we know, by
#    adaptive tempering with MALA as the mutation kernel, and checks the estimate;
# 2. looks at what the sampler did stage by stage, and at its posterior draws;
# 3. runs particle filters: first on a linear Gaussian model against the exact Kalman filter,
#    then on the stochastic volatility model (log-likelihood estimate, filtered volatility).
#
# Vocabulary (Chopin & Papaspiliopoulos 2020): an SMC algorithm propagates N weighted
# *particles* through a Feynman–Kac model — an initial law ``M_0``, Markov kernels ``M_t``
# that move the particles, and potentials ``G_t`` that reweight them; resampling
# (duplicating heavy particles, dropping light ones) keeps the weights from degenerating. The
# product of the average potentials estimates the normalising constant, and its exponential
# is *unbiased*.

# %%
import math
import os

import arviz as az
import jax
import jax.numpy as jnp
import matplotlib
import numba
import numpy as np

import langevin
from langevin.diagnostics import gaussian_w2
from langevin.smc import (
    TemperedTarget,
    kalman_filter,
    linear_gaussian_example,
    particle_filter,
    stochastic_volatility,
    tempered_smc,
)

if os.environ.get("MPLBACKEND") is None:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt

# The JAX cell below compares the two backends in float64. A script may turn this on; the
# library itself never changes JAX's global flags.
jax.config.update("jax_enable_x64", True)

QUICK = os.environ.get("LANGEVIN_TUTORIAL_QUICK") == "1"  # the test suite runs a short version
N_PARTICLES = 500 if QUICK else 2000
REPEATS = 8 if QUICK else 20

# %% [markdown]
# ## 1. A model whose evidence we know
# ``θ ∈ R^d`` with prior ``N(0, τ² I)``, and ``n`` observations ``y_i ~ N(θ, σ² I)``. Each
# coordinate is a conjugate normal model, so the evidence has a closed form: for one
# coordinate with ``S = Σ_i y_i`` and ``Q = Σ_i y_i²``, the data are jointly
# ``N(0, σ² I + τ² 1 1ᵀ)`` and
#
#     log Z_j = −(n/2) log(2π σ²) − ½ log(1 + n τ²/σ²) − (Q − τ² S² / (σ² + n τ²)) / (2σ²).
#
# The posterior is ``N(τ² S / (σ² + n τ²), σ² τ² / (σ² + n τ²))`` per coordinate.

# %%
d, n_obs, sigma, tau = 10, 20, 1.0, 1.0
rng = np.random.default_rng(0)
theta_true = tau * rng.standard_normal(d)
Y = theta_true + sigma * rng.standard_normal((n_obs, d))
S, Q = Y.sum(axis=0), (Y**2).sum(axis=0)

log_z_exact = float(np.sum(
    -0.5 * n_obs * math.log(2 * math.pi * sigma**2)
    - 0.5 * math.log(1 + n_obs * tau**2 / sigma**2)
    - (Q - tau**2 * S**2 / (sigma**2 + n_obs * tau**2)) / (2 * sigma**2)
))  # fmt: skip
post_mean = tau**2 * S / (sigma**2 + n_obs * tau**2)
post_var = sigma**2 * tau**2 / (sigma**2 + n_obs * tau**2)
print(f"exact log Z = {log_z_exact:.4f}")

# %% [markdown]
# ### Prior and likelihood, separately
# Tempering needs the log prior and the log-likelihood *separately*: it moves from the prior
# (β = 0) to the posterior (β = 1) through ``p(θ) L(θ)^β``. The evidence is ``∫ p L``, so the
# likelihood must keep its normalising constants; the prior's do not matter, because the
# sampler starts from exact prior draws (``sample_prior``).
#
# The likelihood below has a Numba form (value and gradient, the data given once as
# sufficient statistics) and a JAX form (gradient by autodiff), so it runs on both backends.


# %%
@numba.njit(cache=True)
def gaussian_loglik(theta, data):
    sum_y, sum_y2, n, sigma = data
    squares = sum_y2 - 2.0 * theta * sum_y + n * theta * theta  # Σ_i (y_ij − θ_j)²
    value = (-0.5 * n * theta.size * math.log(2.0 * math.pi * sigma * sigma)
             - 0.5 * np.sum(squares) / (sigma * sigma))  # fmt: skip
    return value, (sum_y - n * theta) / (sigma * sigma)


def gaussian_loglik_jax(theta):
    r = jnp.asarray(Y, theta.dtype) - theta
    return -0.5 * Y.size * math.log(2 * math.pi * sigma**2) - 0.5 * jnp.sum(r * r) / sigma**2


likelihood = langevin.Target(
    dim=d, jax={"logdensity": gaussian_loglik_jax}, numba={"value_and_grad": gaussian_loglik},
    data=(S, Q, float(n_obs), sigma), name="gaussian likelihood",
)  # fmt: skip
prior = langevin.targets.gaussian(d, cov=np.full(d, tau**2))
model = TemperedTarget(prior, likelihood, lambda rng, n: tau * rng.standard_normal((n, d)),
                       names={"theta": d}, name="conjugate gaussian")  # fmt: skip

# %% [markdown]
# ## 2. Adaptive tempering with MALA
# Each stage picks the next exponent by bisection so that the reweighting keeps an ESS of
# ``target_ess · N`` (here half the particles), resamples, and moves every particle
# ``n_steps`` MALA steps on the current tempered target. The step size is re-tuned before
# every stage from the particles (their spread and the last acceptance rate), so the
# initial ``MALA(0.5)`` only needs to suit the prior. Any langevin kernel can be the move
# (``langevin.HMC``, ``langevin.ULA`` — the last one biased).
#
# ``repeats`` runs independent samplers; their spread gives a standard error for ``log Ẑ``.

# %%
trace = tempered_smc(model, langevin.MALA(0.5), n_particles=N_PARTICLES, n_steps=5,
                     target_ess=0.5, repeats=REPEATS, seed=1, progress=False)  # fmt: skip
trace

# %% [markdown]
# ``log_evidence`` is the log of the mean of the ``Ẑ_r`` (the mean of unbiased estimates is
# unbiased); ``log_evidence_var`` its delta-method variance. Against the exact value:

# %%
se = math.sqrt(trace.log_evidence_var)
z = (trace.log_evidence - log_z_exact) / se
print(f"log Ẑ = {trace.log_evidence:.4f} ± {se:.4f}   exact {log_z_exact:.4f}   z = {z:+.2f}")
print("runs:", trace.log_evidence_runs.round(3))
assert abs(z) < 4, z

# %% [markdown]
# Each single ``log Ẑ_r`` is slightly biased *low* (Jensen: ``E[log Ẑ] ≤ log E[Ẑ]``, by
# about half its variance) and the adaptive schedule adds an O(1/N) bias; both are far below
# the spread here.
#
# ### What happened, stage by stage
# ``trace.stages`` holds one row per run: the exponent each stage reweighted to, the ESS after
# reweighting, the acceptance rate and step size of the moves before it.

# %%
st = trace.stages
fig, axes = plt.subplots(1, 4, figsize=(14, 3))
for name, ax in zip(["beta", "ess", "acceptance_rate", "step_size"], axes):
    ax.plot(st[name].T, color="C0", alpha=0.4)
    ax.set_title(name)
    ax.set_xlabel("stage")
axes[0].set_yscale("log")
axes[3].set_yscale("log")
axes[2].axhline(langevin.MALA.target_acceptance, color="k", lw=0.8, ls="--")
plt.tight_layout()
print("stages per run:", trace.n_stages.tolist())

# %% [markdown]
# The step size shrinks with the tempered posterior (its sd goes from τ = 1 to
# √(post_var) ≈ 0.22), and the acceptance stays near MALA's optimum 0.574.
#
# ### The posterior draws
# ``trace.draws`` are the final particles, resampled and moved once more at β = 1, one set
# per run; ``to_arviz()`` treats the runs as chains. Compare the sample moments with the
# exact posterior in W2, next to the W2 that exact draws of the same size have (the noise
# floor of this check):

# %%
idata = trace.to_arviz()
print(az.summary(idata).head())
draws = trace.draws.reshape(-1, d)
exact_cov = post_var * np.eye(d)
w2 = gaussian_w2(draws.mean(0), np.cov(draws.T), post_mean, exact_cov)
exact_draws = post_mean + math.sqrt(post_var) * rng.standard_normal(draws.shape)
floor = gaussian_w2(exact_draws.mean(0), np.cov(exact_draws.T), post_mean, exact_cov)
print(f"W2(sample moments, posterior) = {w2:.4f}; exact draws of the same size: {floor:.4f}")

# %%
assert w2 < 3 * floor, (w2, floor)

# %% [markdown]
# On this easy posterior the particles are about as good as independent draws. On harder
# ones they are not: resampling duplicates particles and a few MALA steps only partly
# decorrelate them, so N particles can carry much less information than N independent draws
# (raise ``n_steps``).
#
# ### The same run on the JAX backend
# The same seed gives the same run on both backends, to rounding: the noise is drawn by one
# NumPy generator and passed to the compiled code.

# %%
one_numba = tempered_smc(model, langevin.MALA(0.5), n_particles=N_PARTICLES, n_steps=5,
                         seed=7, progress=False)  # fmt: skip
one_jax = tempered_smc(model, langevin.MALA(0.5), n_particles=N_PARTICLES, n_steps=5, seed=7,
                       backend="jax", progress=False)  # fmt: skip
print(f"numba: {one_numba.log_evidence:.10f}\njax:   {one_jax.log_evidence:.10f}")
assert abs(one_numba.log_evidence - one_jax.log_evidence) < 1e-6

# %% [markdown]
# ## 3. Particle filters
# A state-space model has a hidden Markov chain ``X_t`` and observations ``Y_t`` that depend
# on ``X_t`` only. The **bootstrap filter** (Gordon, Salmond & Smith 1993) moves particles
# with the state transition and weights them by the observation density; the product of the
# mean weights estimates the likelihood ``p(y_{0:T})``, unbiasedly. A **guided** filter moves
# them with a proposal that looks at ``y_t`` and corrects in the weights.
#
# ### Check: a linear Gaussian model, where the Kalman filter is exact

# %%
lg = linear_gaussian_example(T=100, seed=0)
exact_ll = kalman_filter(lg).log_likelihood
for method in ("bootstrap", "guided"):
    lls = np.array([particle_filter(lg, 1000, method=method, seed=s).log_likelihood
                    for s in range(20)])  # fmt: skip
    w = np.exp(lls - lls.max())
    mean = lls.max() + math.log(w.mean())  # log of the mean of the unbiased L̂
    se = float(np.std(w, ddof=1) / (math.sqrt(w.size) * w.mean()))
    z = (mean - exact_ll) / se
    print(f"{method:9s}: log L̂ = {mean:.3f} ± {se:.3f} (sd of one run {lls.std(ddof=1):.3f});"
          f" Kalman {exact_ll:.3f}; z = {z:+.2f}")  # fmt: skip
    assert abs(z) < 4, (method, z)

# %% [markdown]
# The guided filter here uses the locally optimal proposal ``p(x_t | x_{t−1}, y_t)``; compare
# the spread of one run with the bootstrap filter's for the same N. (The z-scores use the
# delta-method standard error of the mean of the ``L̂``, itself noisy with 20 runs.)
#
# ### The stochastic volatility model
# Kim, Shephard & Chib (1998): the log-volatility is an AR(1),
# ``X_t = μ + φ (X_{t−1} − μ) + σ η_t``, and a return is ``Y_t = exp(X_t / 2) ε_t``.
# ``stochastic_volatility()`` simulates a data set from it (the true log-volatilities are
# kept as ``model.true_states``).

# %%
T = 200 if QUICK else 500
sv = stochastic_volatility(T=T, seed=0)
result = particle_filter(sv, 1000, seed=1)
print(
    f"log-likelihood estimate: {result.log_likelihood:.3f}; "
    f"resampled at {result.resampled.mean():.0%} of the steps"
)

# %% [markdown]
# How noisy is one estimate? Ten filters with different seeds:

# %%
lls = np.array([particle_filter(sv, 1000, seed=s).log_likelihood for s in range(10)])
print(f"log L̂: mean {lls.mean():.3f}, sd {lls.std(ddof=1):.3f}")

# %% [markdown]
# The filter also gives the filtering means ``E[X_t | y_{0:t}]`` (``result.means``). Plotted
# as volatilities ``exp(x/2)`` against the simulated truth:

# %%
x_true = sv.true_states
x_filt = result.means[:, 0]
t_axis = np.arange(T + 1)
fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
ax1.plot(t_axis, sv.data.y, lw=0.6, color="0.3")
ax1.set_ylabel("return y_t")
ax2.plot(t_axis, np.exp(x_true / 2), label="true volatility exp(x_t / 2)", color="k", lw=1)
ax2.plot(t_axis, np.exp(x_filt / 2), label="filtered exp(E[x_t | y_0:t] / 2)", color="C1")
ax2.set_ylabel("volatility")
ax2.set_xlabel("t")
ax2.legend()
plt.tight_layout()

# %% [markdown]
# Filtering uses the returns up to t only, so it lags behind sudden changes; still it tracks
# the truth far better than the stationary mean μ does:

# %%
err_filter = np.mean((x_filt - x_true) ** 2)
err_constant = np.mean((sv.mu - x_true) ** 2)
print(
    f"mean squared error of the log-volatility: filter {err_filter:.3f}, "
    f"constant μ {err_constant:.3f}"
)
assert err_filter < err_constant

# %% [markdown]
# ### The likelihood of a parameter
# The log-likelihood estimate is what particle MCMC and SMC² build on. Here it is as a
# function of the persistence φ, the other parameters fixed at their true values
# (``phi=0.95`` simulated the data):

# %%
phis = np.linspace(0.80, 0.99, 5 if QUICK else 12)
profile = [np.mean([particle_filter(stochastic_volatility(sv.data.y, phi=phi), 500, seed=s)
                    .log_likelihood for s in range(3)]) for phi in phis]  # fmt: skip
plt.figure(figsize=(5, 3))
plt.plot(phis, profile, "o-")
plt.axvline(0.95, color="k", ls="--", lw=0.8)
plt.xlabel("φ")
plt.ylabel("log L̂ (mean of 3 filters)")
plt.tight_layout()

# %% [markdown]
# ## Where next
# * `benchmarks/smc_peers.py` compares the evidence estimates and their cost with BlackJAX's
#   and the `particles` package's adaptive tempering.
# * `langevin.smc.smc` runs any Feynman–Kac model you write (``M0``, ``M``, ``logG``).
#
# References: Del Moral, Doucet & Jasra (2006), *Sequential Monte Carlo samplers*, JRSS B;
# Chopin & Papaspiliopoulos (2020), *An Introduction to Sequential Monte Carlo*, Springer;
# Gordon, Salmond & Smith (1993), IEE Proc. F; Kim, Shephard & Chib (1998), Rev. Econ. Stud.
