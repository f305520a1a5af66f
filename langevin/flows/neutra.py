"""NeuTra-HMC: fit a flow to the target, then run HMC (or any kernel) in the flow's latent space.

Hoffman et al. (2019): fit ``f`` so that ``f_# N(0, I) ≈ π`` (reverse KL, as NumPyro's
``NeuTraReparam`` does with an autoguide), then sample the latent target
``log π(f(z)) + log|det J_f(z)|`` (:func:`~langevin.flows.flow_transformed`), which is close to
N(0, I) when the fit is good, and report ``x = f(z)``. Every draw is exact whatever the fit
(the latent chain is an ordinary MH-corrected chain of ``π_f``); a poor fit only costs
efficiency.

**Refitting during warm-up** (``refits``): reverse KL is mode-seeking and tends to
under-cover the tails (a funnel's neck). After the first fit, each refit round runs a short
latent chain (``refit_draws`` draws after its own warm-up), maps its draws to ``x`` and
refits the flow to them by forward KL (maximum likelihood, mass-covering), starting from the
current flow. The draws reported come from a final run with the last flow held fixed, so the
adaptation never touches the kept chain. Refits need many pilot draws: on Neal's funnel
(d = 10) one refit on 4 × 500 draws made the flow worse (docs/flows.md), so ``refits=0`` is
the default. (The flow is refit between separate runs rather
than inside one: :mod:`langevin.adaptation`'s between-chunk components return new per-chain
*kernel* parameters, and the flow here is part of the *target*.)

References:
    Hoffman, M., Sountsov, P., Dillon, J. V., Langmore, I., Tran, D. and Vasudevan, S.
    (2019). NeuTra-lizing bad geometry in Hamiltonian Monte Carlo using neural transport.
    arXiv:1903.03704.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from langevin.flows.layers import RealNVP, realnvp_init
from langevin.flows.training import fit_forward_kl, fit_reverse_kl
from langevin.flows.transformed import FlowTransformedTarget, check_flow, flow_transformed
from langevin.targets.base import Target

__all__ = ["neutra", "NeuTraResult"]


@dataclass
class NeuTraResult:
    """What :func:`neutra` returns.

    Attributes:
        trace: the latent chain's :class:`~langevin.Trace` (draws of ``z``;
            ``trace.to_arviz(constrained=True)`` reports ``x``).
        x: the draws mapped to ``x = f(z)``, shape ``(chains, draws, dim)``.
        flow: the fitted flow's parameters.
        latent: the flow-transformed target that was sampled.
        loss_history: the reverse-KL losses, then each refit's forward-KL losses.
        training_seconds: wall time spent fitting (and in refit pilot runs).
        n_grad_training: target gradient evaluations spent training: one per base draw per
            reverse-KL step, plus the pilot chains' gradient evaluations.
    """

    trace: Any
    x: np.ndarray
    flow: RealNVP
    latent: FlowTransformedTarget
    loss_history: np.ndarray
    training_seconds: float
    n_grad_training: int


def _n_grad(trace) -> int:
    stats = getattr(trace, "sample_stats", None)
    if stats is not None and "n_grad" in stats:
        return int(np.sum(stats["n_grad"]))
    return 0


def neutra(
    target: Target,
    kernel: Any = None,
    *,
    flow: RealNVP | None = None,
    fit_steps: int = 1000,
    batch_size: int = 128,
    learning_rate: float = 3e-3,
    refits: int = 0,
    refit_draws: int = 500,
    refit_steps: int = 500,
    fit_seed: int = 0,
    progress: bool = True,
    **sample_kwargs: Any,
) -> NeuTraResult:
    """Fit a RealNVP flow to ``target`` by reverse KL (on JAX), then sample its latent target.

    Args:
        target: a :class:`~langevin.targets.Target` with a JAX log-density (the fit runs on
            JAX) and the form of the sampling backend.
        kernel: the latent kernel (default ``langevin.HMC(0.5, n_leapfrog=8)``; its warm-up
            adapts the step size and mass matrix as usual).
        flow: starting flow parameters (default ``realnvp_init(dim, 4, (32, 32))``).
        fit_steps, batch_size, learning_rate: the reverse-KL fit
            (:func:`~langevin.flows.fit_reverse_kl`); ``fit_steps=0`` keeps ``flow`` as
            given (a flow trained before).
        refits: rounds of forward-KL refitting on short latent chains (module docstring).
        refit_draws: draws per chain of each pilot chain.
        refit_steps: optimiser steps of each refit.
        fit_seed: seeds the fits.
        progress: progress bars.
        **sample_kwargs: passed to :func:`langevin.sample` for the final run and the pilot
            runs (``chains``, ``warmup``, ``draws``, ``backend``, ``seed``, ...).

    Returns:
        A :class:`NeuTraResult`.

    Example:
        >>> import langevin
        >>> from langevin.flows import neutra
        >>> result = neutra(langevin.targets.gaussian(2), fit_steps=20, chains=2, warmup=50,
        ...                 draws=50, seed=0, progress=False)  # doctest: +SKIP
    """
    import langevin

    if not isinstance(target, Target):
        raise TypeError(f"target must be a langevin.Target; got {type(target).__name__}")
    if target.dim is None:
        raise ValueError("target: its dimension is unknown; build it with dim=")
    if not target.has_jax:
        raise TypeError("target: neutra fits the flow on JAX, so the target needs a JAX "
                        "log-density (Target.from_jax, or a built-in)")  # fmt: skip
    if isinstance(fit_steps, bool) or not isinstance(fit_steps, (int, np.integer)) or fit_steps < 0:
        raise ValueError(f"fit_steps must be an int >= 0; got {fit_steps!r}")
    for name, v in (("refits", refits), ("refit_draws", refit_draws),
                    ("refit_steps", refit_steps)):  # fmt: skip
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be an int >= 0; got {v!r}")
    if kernel is None:
        kernel = langevin.HMC(0.5, n_leapfrog=8)
    elif not isinstance(kernel, langevin.kernels.Kernel):
        raise TypeError(f"kernel must be a langevin kernel (e.g. langevin.HMC(0.5)); got "
                        f"{type(kernel).__name__}")  # fmt: skip
    params = realnvp_init(target.dim, 4, (32, 32), seed=fit_seed) if flow is None else flow
    params = check_flow(params, target.dim, "flow")
    sample_kwargs.setdefault("progress", progress)

    t0 = time.perf_counter()
    histories = []
    n_grad = 0
    if fit_steps > 0:
        params, hist = fit_reverse_kl(target, params, steps=int(fit_steps), batch_size=batch_size,
                                      learning_rate=learning_rate, seed=fit_seed,
                                      progress=progress)  # fmt: skip
        histories.append(hist)
        n_grad += int(fit_steps) * int(batch_size)
    for r in range(int(refits)):
        latent = flow_transformed(target, params)
        pilot_kwargs = dict(sample_kwargs)
        pilot_kwargs["draws"] = int(refit_draws)
        if pilot_kwargs.get("seed") is not None:
            pilot_kwargs["seed"] = int(pilot_kwargs["seed"]) + 1000 + r
        pilot = langevin.sample(latent, kernel, **pilot_kwargs)
        n_grad += _n_grad(pilot)
        x = latent.to_x(np.asarray(pilot.draws))
        params, hist = fit_forward_kl(x, params, steps=int(refit_steps),
                                      learning_rate=learning_rate * 0.3, seed=fit_seed + 1 + r,
                                      progress=progress)  # fmt: skip
        histories.append(hist)
    training_seconds = time.perf_counter() - t0

    latent = flow_transformed(target, params)
    trace = langevin.sample(latent, kernel, **sample_kwargs)
    x = latent.to_x(np.asarray(trace.draws))
    history = np.concatenate(histories) if histories else np.zeros(0)
    return NeuTraResult(trace, x, params, latent, history, training_seconds, n_grad)
