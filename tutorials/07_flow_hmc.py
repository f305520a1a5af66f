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

# test: slow (it trains networks: the default suite leaves it to the slow job)

# %% [markdown]
# # HMC with normalizing flows: NeuTra on Neal's funnel
#
# Neal's funnel, `v ~ N(0, 3²)`, `x_i | v ~ N(0, e^v)` (d = 10), is the textbook case of a
# geometry no single HMC step size fits: the scale of `x` changes by a factor of ~400 from the
# neck (v ≪ 0) to the mouth (v ≫ 0). Plain HMC either diverges in the neck or never enters it.
#
# *Neural transport* (NeuTra, Hoffman et al. 2019) fits a normalizing flow `f` so that
# `f(u)`, `u ~ N(0, I)`, is close to the target, and runs HMC on the latent density
# `log π(f(z)) + log|det J_f(z)|`, which is then close to a standard normal. The draws are
# exact whatever the fit (an ordinary MH-corrected chain on the latent target); the flow only
# changes how well it mixes.
#
# This notebook
#
# 1. fits a RealNVP flow to the funnel by reverse KL (JAX, optax),
# 2. samples with plain HMC and with NeuTra-HMC at the same number of gradient evaluations
#    (Numba), and compares `var(v)` (exact: 9) and the effective sample sizes,
# 3. shows the same flow used as an independent proposal mixed with MALA steps
#    (`FlowProposal`, the flowMC scheme).
#
# The API and the math are in `docs/flows.md`.

# %%
import os

import arviz as az
import matplotlib
import numpy as np

import langevin
from langevin.flows import fit_reverse_kl, flow_transformed, latent_to_x, realnvp_init

if os.environ.get("MPLBACKEND") is None:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt

QUICK = os.environ.get("LANGEVIN_TUTORIAL_QUICK") == "1"  # the test suite runs a short version
FIT_STEPS = 100 if QUICK else 1500
DRAWS = 200 if QUICK else 2000
WARMUP = 150 if QUICK else 1000
N_LEAPFROG = 10

target = langevin.targets.neals_funnel(10)

# %% [markdown]
# ## 1. Fit a flow by reverse KL
#
# Six RealNVP blocks (a permutation, then an affine coupling whose scale and shift come from
# a small MLP of the other half of the coordinates), then an elementwise affine. The loss is
# the negative ELBO, `E_u[log φ(u) − log|det J_f(u)| − log π(f(u))]`; it approaches
# `−log Z = −10.29` for this funnel as the fit improves.

# %%
flow, history = fit_reverse_kl(target, realnvp_init(10, 6, (32, 32), seed=0), steps=FIT_STEPS,
                               batch_size=128, progress=not QUICK)  # fmt: skip
log_z = 0.5 * np.log(18 * np.pi) + 4.5 * np.log(2 * np.pi)  # the funnel's constant
print(f"final loss {history[-50:].mean():.3f} (−log Z = {-log_z:.3f})")

fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
ax[0].plot(history)
ax[0].set(xlabel="step", ylabel="negative ELBO", title="reverse-KL fit")
u = np.random.default_rng(0).standard_normal((3000, 10))
x_flow = latent_to_x(flow, u)
exact_v = 3 * np.random.default_rng(1).standard_normal(3000)
exact_x1 = np.exp(exact_v / 2) * np.random.default_rng(2).standard_normal(3000)
ax[1].scatter(exact_x1, exact_v, s=2, alpha=0.3, label="exact draws")
ax[1].scatter(x_flow[:, 1], x_flow[:, 0], s=2, alpha=0.3, label="flow draws f(u)")
ax[1].set(xlim=(-30, 30), xlabel="x₁", ylabel="v", title="the flow against the funnel")
ax[1].legend(markerscale=4)
fig.tight_layout()
fig.savefig("flow_fit.png", dpi=100)

# %% [markdown]
# ## 2. HMC against NeuTra-HMC, same gradient budget
#
# Both use `n_leapfrog = 10` and the same number of draws, so the same number of gradient
# evaluations after warm-up; warm-up adapts the step size and a diagonal mass matrix in each.
# NeuTra samples the latent target; `latent.to_x` (or `trace.to_arviz(constrained=True)`)
# maps its draws back to `(v, x)`.

# %%
hmc = langevin.HMC(0.1, n_leapfrog=N_LEAPFROG)
plain = langevin.sample(target, hmc, chains=4, warmup=WARMUP, draws=DRAWS, seed=1,
                        progress=False)  # fmt: skip
latent = flow_transformed(target, flow)
neutra = langevin.sample(latent, langevin.HMC(0.5, n_leapfrog=N_LEAPFROG), chains=4,
                         warmup=WARMUP, draws=DRAWS, seed=1, progress=False)  # fmt: skip
x_neutra = latent.to_x(neutra.draws)


def summary(name, x):
    v = x[..., 0]
    ess = float(az.ess(np.ascontiguousarray(v)))
    se = float(np.std(v**2) / np.sqrt(max(float(az.ess(np.ascontiguousarray(v**2))), 1.0)))
    print(f"{name:12s} var(v) = {np.mean(v**2):6.2f} ± {se:.2f} (exact 9)   ESS(v) = {ess:7.0f}")


summary("HMC", np.asarray(plain.draws))
summary("NeuTra-HMC", x_neutra)

fig, ax = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for a, (name, x) in zip(ax, [("HMC", np.asarray(plain.draws)), ("NeuTra-HMC", x_neutra)]):
    a.plot(x[0, :, 0], lw=0.6)
    a.axhline(-6, color="k", ls=":")
    a.set(title=f"{name}: trace of v (chain 0)", xlabel="draw")
ax[0].set_ylabel("v")
fig.tight_layout()
fig.savefig("funnel_traces.png", dpi=100)

# %% [markdown]
# Plain HMC rarely goes below `v ≈ −4`: the neck needs a step size far smaller than the
# mouth's, so its `var(v)` comes out too small, with divergent transitions to show it. NeuTra
# moves through both ends because in the latent space the funnel is nearly a standard normal.

# %% [markdown]
# ## 3. The same flow as an independent proposal (flowMC's scheme)
#
# `FlowProposal` alternates a MALA step with an independent Metropolis–Hastings proposal
# `y = f(u)`, accepted with the flow's own density, and refits the flow to the chains' draws
# during warm-up. It is exact for any flow; a good flow makes the global moves succeed.

# %%
kernel = langevin.kernels.FlowProposal(0.05, flow=flow, retrain=0 if QUICK else 2)
fp = langevin.sample(target, kernel, chains=4, warmup=WARMUP, draws=DRAWS * N_LEAPFROG // 2,
                     seed=1, progress=False)  # fmt: skip
summary("FlowProposal", np.asarray(fp.draws))
print(f"flow proposals accepted: {float(np.mean(fp.sample_stats['flow_accepted'])):.2f}")

# %% [markdown]
# The benchmark `benchmarks/flow_hmc_funnel.py` compares the three, and flowMC, at equal
# gradient evaluations with the training time included (`benchmarks/results/flow_hmc_funnel.md`).

# %% [markdown]
# ## ftHMC on a small U(1) lattice: topological freezing
#
# The 2-D U(1) gauge theory (`langevin.lattice`, `docs/lattice.md`) has a topological charge
# `Q` that HMC stops changing as β grows. ftHMC (Foreman et al. 2021) trains a
# gauge-equivariant flow `x = f(z)` by reverse KL and runs HMC on the latent field `z`, with
# `S_FT(z) = S(f(z)) − log|det J_f(z)|`; measurements are taken on `x = f(z)`. Both runs
# below have the same trajectory length (τ = 1).

# %%
from langevin.lattice import U1Flow, flow_transformed_u1, train_u1_flow, u1_lattice

BETA, L = 4.0, 8
U1_STEPS = 40 if QUICK else 300
U1_DRAWS = 60 if QUICK else 1000
u1_flow = U1Flow(L=L, n_layers=8)
u1_params, u1_history = train_u1_flow(u1_flow, BETA, steps=U1_STEPS, batch=32)
ft_target = flow_transformed_u1(BETA, u1_flow, u1_params)
u1_target = u1_lattice(BETA, L)
u1_kw = dict(chains=1, warmup=0, draws=U1_DRAWS, seed=2, progress=False, adapt_mass_matrix=False)
# JAX here (the first Numba compilation of a flow takes minutes; backend="numba" works too)
ft_trace = langevin.sample(ft_target, langevin.HMC(0.025, n_leapfrog=40), backend="jax", **u1_kw)
hmc_trace = langevin.sample(u1_target, langevin.HMC(0.1, n_leapfrog=10), **u1_kw)
q_ft = ft_target.topological_charge(ft_trace.draws)[0]  # on x = f(z)
q_hmc = u1_target.topological_charge(hmc_trace.draws)[0]
fig, ax = plt.subplots(figsize=(8, 3))
ax.plot(q_hmc, drawstyle="steps-mid", label="HMC (τ = 1)")
ax.plot(q_ft, drawstyle="steps-mid", label="ftHMC (τ = 1)")
ax.set(xlabel="trajectory", ylabel="Q", title=f"2-D U(1), β = {BETA:g}, L = {L}")
ax.legend()
rate_hmc, rate_ft = np.abs(np.diff(q_hmc)).mean(), np.abs(np.diff(q_ft)).mean()
print(f"training: {u1_history['seconds']:.0f} s; tunnelling ⟨|ΔQ|⟩ per trajectory: "
      f"HMC {rate_hmc:.3f}, ftHMC {rate_ft:.3f}")  # fmt: skip
print(f"⟨cos x_P⟩: ftHMC {ft_target.plaquette(ft_trace.draws).mean():.4f}, "
      f"exact {ft_target.exact_plaquette:.4f}")  # fmt: skip

# %% [markdown]
# `benchmarks/fthmc_u1.py` measures the integrated autocorrelation time of `Q` and the
# tunnelling rate for HMC and ftHMC at β ∈ {4, 6, 8}, L ∈ {8, 16}, with and without transfer
# of a flow trained at L = 8 (`benchmarks/results/fthmc_u1.md`).
