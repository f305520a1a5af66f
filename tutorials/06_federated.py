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
# # Federated Langevin: one posterior from data that never leaves its clients
#
# Hospitals, phones or shards of a data set too large for one machine each hold part of
# the data; they may send parameters, never rows. This notebook
#
# 1. splits a real data set (the RAND Health Insurance Experiment, 20 190 people) over 8
#    clients **non-IID**: sorted by the individual-deductible plan indicator `idp`, so five
#    clients hold only people without it, two only people with it, one a mix;
# 2. places the clients on a JAX **device mesh** (8 CPU devices here; GPUs or hosts in
#    production), each client's shard on its own device;
# 3. samples the pooled posterior of a logistic regression with **DSGLD**, **FSGLD** and
#    **FA-LD**, with 1 and with 20 local steps between communications: DSGLD drifts,
#    FSGLD does not, and FA-LD sits in between (its client drift grows with K·η).
#
# The math and the papers are in `docs/federated.md`.

# %%
import os
import sys

# Eight fake CPU devices for the mesh, set before JAX starts (only when this file runs as a
# script and JAX is not imported yet; in a notebook started with JAX, one device is used).
if "jax" not in sys.modules and "--xla_force_host_platform_device_count" not in os.environ.get(
    "XLA_FLAGS", ""
):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()

import jax
import matplotlib
import numpy as np

import langevin
from langevin.federated import (
    DSGLD,
    FALD,
    FSGLD,
    fit_surrogates,
    partition_sorted,
    sample_federated,
    split,
)

if os.environ.get("MPLBACKEND") is None:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt

jax.config.update("jax_enable_x64", True)  # a notebook-level choice: sample in float64
QUICK = os.environ.get("LANGEVIN_TUTORIAL_QUICK") == "1"  # the test suite runs a short version
STEPS = 2000 if QUICK else 30000  # local steps per client per run
print(len(jax.devices()), "devices")

# %% [markdown]
# ## 1. The data and its non-IID split
# `split(target, parts)` gives each client its rows; `partition_sorted` sorts the rows by a
# covariate and cuts them into blocks of random sizes, so the clients differ both in size
# and in what they see — the hard case for federated learning. Here the covariate is the
# binary `idp` (column 2): most clients cannot tell its coefficient from the intercept on
# their own data.

# %%
X, y = langevin.targets.rand_hie_design()
target = langevin.targets.logistic_regression_data(X, y, prior_scale=2.0)
parts = partition_sorted(X[:, 2], 8, imbalance=0.5, seed=1)
clients = split(target, parts)
print(clients)
print("label rate per client:", [round(float(y[p].mean()), 2) for p in parts])
print("share with idp = 1 per client:", [round(float((X[p, 2] > 0).mean()), 2) for p in parts])

# %% [markdown]
# ## 2. A reference
# With 20 190 rows the posterior is close to Gaussian; we use MALA on the pooled data (in
# quick mode the Laplace approximation) as the answer the federated samplers should give.

# %%
from langevin.kernels.sgmcmc import find_mode

mode = find_mode(target).position
if QUICK:
    H = np.empty((10, 10))
    for j in range(10):
        e = np.zeros(10)
        e[j] = 1e-5
        H[:, j] = (
            target.full_value_and_grad(mode + e)[1] - target.full_value_and_grad(mode - e)[1]
        ) / 2e-5
    ref_mean, ref_cov = mode, np.linalg.inv(-0.5 * (H + H.T))
else:
    ref = langevin.sample(
        target,
        langevin.MALA(0.005),
        chains=4,
        warmup=1000,
        draws=4000,
        seed=0,
        initial_position=mode,
        progress=False,
    ).flat()
    ref_mean, ref_cov = ref.mean(axis=0), np.cov(ref.T)
ref_sd = np.sqrt(np.diag(ref_cov))

# %% [markdown]
# ## 3. Clients on a device mesh
# A one-axis mesh over the devices; `sample_federated(..., mesh=mesh)` puts each client's
# shard on one device (the trace's `communication["placement"]` says where). On a GPU
# cluster the same call runs under `jax.distributed` in every process (docs/federated.md).
# FSGLD needs each client's Gaussian surrogate of its local likelihood: a Laplace fit,
# computed once, whose mean and precision are all a client ever sends besides the chain.

# %%
n_dev = len(jax.devices())
# (`jax.make_mesh((n_dev,), ("clients",))` does the same where JAX has it)
mesh = jax.sharding.Mesh(np.array(jax.devices()), ("clients",)) if 8 % n_dev == 0 else None
surrogates = fit_surrogates(target, clients)
h, b = 1e-5, 500


def run(alg, steps=STEPS):
    rounds = max(10, steps // alg.local_steps)
    return sample_federated(
        target,
        alg,
        clients,
        rounds=rounds,
        warmup_rounds=rounds // 10,
        seed=1,
        backend="jax",
        mesh=mesh,
        initial_position=mode,
        progress=False,
    )


runs = {}
for K in (1, 20):
    runs[("DSGLD", K)] = run(DSGLD(h, local_steps=K, batch_size=b))
    runs[("FSGLD", K)] = run(FSGLD(h, local_steps=K, batch_size=b, surrogates=surrogates))
    runs[("FA-LD", K)] = run(FALD(h, local_steps=K, batch_size=b))
if mesh is not None:
    print("placement:", runs[("FA-LD", 20)].communication["placement"])

# %% [markdown]
# ## 4. Who drifts
# The error of the posterior mean in posterior standard deviations, and the variance
# relative to the reference. With K = 20 local steps DSGLD's chain walks toward each
# client's own posterior between moves: its draws scatter over the clients' posteriors.
# FSGLD's conducive gradient removes that pull whatever K is. FA-LD averages the clients
# every K steps; between averages each client drifts toward its own posterior, a bias that
# grows with K·η on non-IID clients (Deng et al.'s bound has such a term) — small at
# K = 20 here, several posterior sds at K = 100 (see the benchmark).

# %%
rows = []
for (name, K), tr in runs.items():
    d = tr.draws.reshape(-1, 10)
    err = np.max(np.abs(d.mean(axis=0) - ref_mean) / ref_sd)
    var = np.mean(d.var(axis=0) / ref_sd**2)
    kb = tr.communication["bytes_per_round"] / 1024
    rows.append((name, K, err, var, tr.n_draws, kb))
    print(
        f"{name:6s} K={K:3d}: max mean error {err:5.2f} sd, variance ratio {var:6.2f}, "
        f"{tr.n_draws} rounds, {kb:.1f} KiB per round"
    )

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
j = 2  # idp, the covariate the clients were split by
grid = np.linspace(ref_mean[j] - 6 * ref_sd[j], ref_mean[j] + 6 * ref_sd[j], 200)
for ax, K in zip(axes, (1, 20)):
    ax.plot(
        grid,
        np.exp(-0.5 * ((grid - ref_mean[j]) / ref_sd[j]) ** 2) / (ref_sd[j] * np.sqrt(2 * np.pi)),
        "k",
        lw=2,
        label="reference",
    )
    for name in ("DSGLD", "FSGLD", "FA-LD"):
        ax.hist(
            runs[(name, K)].draws[..., j].ravel(),
            bins=40,
            density=True,
            alpha=0.4,
            range=(grid[0], grid[-1]),
            label=name,
        )
    ax.set(title=f"coefficient {j}, K = {K} local steps", xlabel="value")
    ax.legend()
fig.tight_layout()
fig.savefig("federated_marginals.png", dpi=100)

# %% [markdown]
# DSGLD's spread grows with K while FSGLD stays on the reference (up to the minibatch-noise
# inflation every SG-MCMC sampler at a fixed step has, larger for FSGLD and DSGLD, whose
# step uses one client's minibatch scaled by C, than for FA-LD, which averages C of them).
# In quick mode the runs are short and the numbers noisy. The benchmark
# `benchmarks/federated_rand_hie.py` measures this on the same data in detail (W2 against
# K and participation, rounds and wall time to a threshold, device scaling).
