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

# requires: pymc, nutpie, numpyro

# %% [markdown]
# # Models you already wrote: PyMC and NumPyro, sampled by langevin's NUTS
#
# Most people who fit Bayesian models in Python write them in PyMC or NumPyro. `langevin`
# samples such a model as it is: `Target.from_pymc(model)` and `Target.from_numpyro(model,
# *data)` turn it into a target on its **unconstrained space** (every positive scale is
# sampled as its log, and so on, with the log-Jacobian of the map added to the density), the
# space PyMC's and NumPyro's own samplers work on. This notebook
#
# 1. writes the eight-schools model (Rubin 1981; non-centred, as in Gelman et al. 2013,
#    *Bayesian Data Analysis*, §5.5) in PyMC;
# 2. samples it with langevin's NUTS on the Numba backend and on the JAX backend, and with
#    nutpie (PyMC's fastest sampler, also compiled with Numba), and puts the three ArviZ
#    summaries side by side;
# 3. writes the same model in NumPyro and samples it with langevin's NUTS and NumPyro's
#    NUTS, side by side again;
# 4. checks that the samplers agree, parameter by parameter, within their Monte Carlo errors.
#
# It needs the optional extras: `pip install "langevin[pymc,numpyro]" nutpie` (PyMC needs
# Python ≥ 3.12). Speed against these samplers on six posteriordb models is measured in
# `benchmarks/nuts_peers.py` (`benchmarks/results/nuts_peers.md`).

# %%
import os
import time
import warnings

import arviz as az
import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
import nutpie
import pandas as pd
import pymc as pm
from numpyro.infer import MCMC, NUTS

import langevin

# The comparison runs in float64 on both backends. A script may turn this on; the library
# itself never changes JAX's global flags.
jax.config.update("jax_enable_x64", True)
warnings.filterwarnings("ignore", category=FutureWarning)  # PyMC / ArviZ announcements

QUICK = os.environ.get("LANGEVIN_TUTORIAL_QUICK") == "1"  # the test suite runs a short version
CHAINS = 4
WARMUP, DRAWS = (200, 200) if QUICK else (1000, 1000)
SEED = 1

# %% [markdown]
# ## 1. The model in PyMC
# Eight schools ran the same coaching programme; school `j` reports an estimated effect `y_j`
# with a known standard error `σ_j`. The effects `θ_j` are drawn around a common mean `μ`
# with spread `τ`. Written *non-centred* (`θ_j = μ + τ z_j`, `z_j ~ N(0, 1)`), the posterior
# has no funnel, and NUTS samples it without divergences.

# %%
schools = [f"school {c}" for c in "ABCDEFGH"]
y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
sigma = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])

with pm.Model(coords={"school": schools}) as pymc_model:
    mu = pm.Normal("mu", 0.0, 5.0)
    tau = pm.HalfCauchy("tau", 5.0)
    theta_z = pm.Normal("theta_z", 0.0, 1.0, dims="school")
    theta = pm.Deterministic("theta", mu + tau * theta_z, dims="school")
    pm.Normal("y", theta, sigma, observed=y, dims="school")

# %% [markdown]
# `Target.from_pymc` keeps PyMC's parametrisation: one block per free random variable, named
# by its *value variable* (`tau_log__`: τ is sampled as log τ), in the order of the model.

# %%
target = langevin.Target.from_pymc(pymc_model)
print(target.names_or_default())


# %% [markdown]
# ## 2. langevin's NUTS on both backends, and nutpie
# The same call on both backends. On Numba, PyTensor compiles the log-density and its
# gradient into one Numba function (as nutpie does), and langevin's compiled NUTS loop calls
# it; on JAX, PyTensor's JAX linker gives the log-density and `jax.grad` the gradient. Warm-up
# is Stan's: dual averaging of the step size toward an acceptance of 0.8 and a diagonal mass
# matrix in Stan's windows. `to_arviz(constrained=True)` shows every variable on its own
# support, with PyMC's names and dimensions, deterministics included.


# %%
def timed(fn):
    """``fn()`` and its wall-clock seconds."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run_langevin(target, backend):
    trace = langevin.sample(
        target,
        langevin.NUTS(0.5),
        backend=backend,
        chains=CHAINS,
        warmup=WARMUP,
        draws=DRAWS,
        seed=SEED,
        progress=False,
    )
    return trace


trace_numba, seconds_numba = timed(lambda: run_langevin(target, "numba"))
trace_jax, seconds_jax = timed(lambda: run_langevin(target, "jax"))
print(
    f"langevin numba {seconds_numba:.1f} s, langevin jax {seconds_jax:.1f} s (compilation included)"
)
print(
    "divergent transitions:",
    int(trace_numba.sample_stats["diverging"].sum()),
    int(trace_jax.sample_stats["diverging"].sum()),
)

# %% [markdown]
# nutpie compiles the same PyMC model with PyTensor's Numba backend and runs its own NUTS
# (with a different, gradient-based mass-matrix adaptation) from Rust.

# %%
compiled, seconds_compile = timed(lambda: nutpie.compile_pymc_model(pymc_model))
idata_nutpie, seconds_nutpie = timed(
    lambda: nutpie.sample(
        compiled, draws=DRAWS, tune=WARMUP, chains=CHAINS, seed=SEED, progress_bar=False
    )
)
print(f"nutpie: compile {seconds_compile:.1f} s, sample {seconds_nutpie:.1f} s")

# %% [markdown]
# ### The ArviZ summaries side by side
# Mean, sd, bulk ESS and R-hat of each sampler (Vehtari et al. 2021, *Rank-normalization,
# folding, and localization: an improved R-hat*, Bayesian Analysis 16).

# %%
VARS = ["mu", "tau", "theta"]
COLUMNS = ["mean", "sd", "mcse_mean", "ess_bulk", "r_hat"]


LABELS = ["mu", "tau"] + [f"theta[{s}]" for s in schools]


def summary(data):
    """ArviZ's summary of μ, τ and θ, unrounded, rows labelled by school: langevin's
    constrained view numbers θ's entries 0…7, PyMC's and NumPyro's ArviZ data may name them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.summary(data, var_names=VARS, round_to="none")
    table = table[COLUMNS].astype(float)
    table.index = LABELS  # the same order for every sampler: mu, tau, theta[0..7]
    return table


idata_numba = trace_numba.to_arviz(constrained=True)
idata_jax = trace_jax.to_arviz(constrained=True)
pymc_tables = {
    "langevin numba": summary(idata_numba),
    "langevin jax": summary(idata_jax),
    "nutpie": summary(idata_nutpie),
}
side_by_side = pd.concat(pymc_tables, axis=1)
side_by_side.round(2)

# %% [markdown]
# ## 3. The same model in NumPyro
# A NumPyro model is a function; its data are its arguments. `Target.from_numpyro(model,
# *args)` gives the negative of NumPyro's `potential_fn` as the log-density (the same
# density NumPyro's NUTS samples), on the JAX backend.


# %%
def eight_schools(sigma, y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("school", sigma.shape[0]):
        theta_z = numpyro.sample("theta_z", dist.Normal(0.0, 1.0))
        numpyro.deterministic("theta", mu + tau * theta_z)
        numpyro.sample("y", dist.Normal(mu + tau * theta_z, sigma), obs=y)


numpyro_target = langevin.Target.from_numpyro(eight_schools, sigma, y)
trace_np_langevin, seconds_np_langevin = timed(lambda: run_langevin(numpyro_target, "jax"))

mcmc = MCMC(
    NUTS(eight_schools, target_accept_prob=0.8),
    num_warmup=WARMUP,
    num_samples=DRAWS,
    num_chains=CHAINS,
    chain_method="vectorized",
    progress_bar=False,
)
_, seconds_numpyro = timed(lambda: mcmc.run(jax.random.PRNGKey(SEED), sigma, y))
print(
    f"langevin jax {seconds_np_langevin:.1f} s, NumPyro {seconds_numpyro:.1f} s "
    "(compilation included)"
)

# %%
numpyro_tables = {
    "langevin jax": summary(trace_np_langevin.to_arviz(constrained=True)),
    "NumPyro": summary(az.from_numpyro(mcmc)),
}
pd.concat(numpyro_tables, axis=1).round(2)

# %% [markdown]
# ## 4. Do the samplers agree?
# Two independent samplers of the same posterior give means that differ by their Monte Carlo
# errors only: `z = (m₁ − m₂) / √(MCSE₁² + MCSE₂²)` is about standard normal. With 10
# parameters and four pairs of samplers, every |z| should be below 4 (a larger one would
# mean one of them samples a different distribution).


# %%
def z_between(a, b):
    return (a["mean"] - b["mean"]) / np.hypot(a["mcse_mean"], b["mcse_mean"])


pairs = {
    "numba vs nutpie": z_between(pymc_tables["langevin numba"], pymc_tables["nutpie"]),
    "jax vs nutpie": z_between(pymc_tables["langevin jax"], pymc_tables["nutpie"]),
    "numba vs jax": z_between(pymc_tables["langevin numba"], pymc_tables["langevin jax"]),
    "langevin vs NumPyro": z_between(numpyro_tables["langevin jax"], numpyro_tables["NumPyro"]),
}
z_table = pd.DataFrame(pairs)
print(z_table.round(2))
assert (z_table.abs() < 4).all().all(), z_table
for name, table in {
    **pymc_tables,
    **{f"{k} (NumPyro model)": v for k, v in numpyro_tables.items()},
}.items():
    assert (table["r_hat"] < 1.05).all(), (name, table)  # short runs in the quick version

# %% [markdown]
# The samplers agree. What differs is the cost: see `benchmarks/results/nuts_peers.md` for
# ESS per second on six posteriordb models, the first-call latency of a PyMC model (PyTensor
# and langevin's loop are compiled once and cached on disk: a later process starts fast), and
# where the time goes.
#
# ### What to take away
#
# * `Target.from_pymc(model)` and `Target.from_numpyro(model, *data)` sample the model you
#   already have, on its unconstrained space, with every langevin kernel.
# * A PyMC model runs on both backends (PyTensor compiles it for each); a NumPyro model on
#   JAX.
# * `to_arviz(constrained=True)` gives the model's own variables, names and dimensions, so the
#   ArviZ workflow is unchanged.
