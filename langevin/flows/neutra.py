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
the default. Those pilot runs are separate runs; a refit *inside one warm-up* is
``flow_transformed(target, flow, refits=k)`` (:class:`FlowRefit`: a warm-up component of
the target, which replaces the target's runtime data, the flow's weights, between warm-up
chunks without recompiling; :meth:`langevin.adaptation.WarmupComponent.update_target`).

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

from langevin.adaptation.base import WarmupComponent
from langevin.flows.layers import realnvp_init
from langevin.flows.spline import flow_functions
from langevin.flows.training import fit_forward_kl, fit_reverse_kl
from langevin.flows.transformed import (
    FlowTransformedTarget,
    check_flow,
    constrain_through,
    flow_transformed,
    latent_to_x,
)
from langevin.nn import numpy_twin
from langevin.targets.base import Target

__all__ = ["neutra", "NeuTraResult", "FlowRefit"]


def _like(template: Any, new: Any) -> Any:
    """``new`` (a pytree of NumPy arrays) with ``template``'s structure, array types and
    dtypes: the runtime data a compiled target was built with, so nothing recompiles."""
    if isinstance(template, tuple):
        items = [_like(t, n) for t, n in zip(template, new)]
        return type(template)(*items) if hasattr(template, "_fields") else tuple(items)
    if type(template).__module__.startswith("jax"):
        import jax.numpy as jnp

        return jnp.asarray(np.asarray(new), dtype=template.dtype)
    # a writable copy: arrays from JAX are read-only, and Numba types those differently
    return np.array(new, dtype=np.asarray(template).dtype, order="C", copy=True)


class FlowRefit(WarmupComponent):
    """NeuTra refit inside one warm-up: a flow-transformed target's own warm-up component
    (``flow_transformed(target, flow, refits=k)``).

    The chains' warm-up draws of ``z`` are mapped to ``x = f(z)`` with the flow they were
    drawn under and pooled over chains (the first 20% of warm-up left out). At ``k`` evenly
    spaced warm-up steps in 20–60% of the warm-up, the flow is refitted to the pooled ``x``
    by forward KL (:func:`~langevin.flows.fit_forward_kl`, from the current flow), the
    target's runtime data takes the new weights (same structure: nothing recompiles), every
    chain restarts at ``z' = f_new⁻¹(f_old(z))`` (the same point ``x``), and the step-size
    adaptation restarts (the latent geometry changed). The mass-matrix windows go on; their
    estimates use the draws of their own windows, so the last windows (which end at the
    terminal buffer) see only the last flow when the refits end before them. The flow is fixed after
    the last refit, so the kept draws come from one fixed MH-exact kernel on one latent
    target, and the trace's ``constrain`` maps them through that flow.
    """

    changes_target = True

    def __init__(self, kernel: Any, chains: int, dim: int, warmup: int, *, latent: Any,
                 rounds: int, train_steps: int, learning_rate: float,
                 seed: int) -> None:  # fmt: skip
        self.chains, self.dim, self.warmup = chains, dim, warmup
        self.latent = latent
        self.initial_flow = latent.flow_params
        self.flow = latent.flow_params
        self.train_steps, self.learning_rate, self.seed = train_steps, learning_rate, seed
        self.start = int(0.2 * warmup)
        if warmup < 50 or rounds < 1:
            self._boundaries: tuple[int, ...] = ()
        else:
            end = int(0.6 * warmup)
            self._boundaries = tuple(sorted({self.start + ((end - self.start) * (k + 1)) // rounds
                                             for k in range(rounds)}))  # fmt: skip
        self.buffer: list[np.ndarray] = []
        self.rounds = 0
        self.losses: list[float] = []
        self._restart_at = -1

    @staticmethod
    def check_settings(train_steps: Any, learning_rate: Any, seed: Any) -> None:
        for name, v, least in (("refit_steps", train_steps, 1), ("refit_seed", seed, 0)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
                raise ValueError(f"{name} must be an int >= {least}; got {v!r}")
        lr = learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < np.inf:
            raise ValueError(f"refit_learning_rate must be a positive float; got {lr!r}")

    @property
    def boundaries(self) -> tuple[int, ...]:
        return self._boundaries

    def initial_params(self, params: Any) -> Any:
        return params

    def observe(self, done: int, positions: np.ndarray) -> None:
        if not self._boundaries or done >= self._boundaries[-1]:
            return
        keep = np.arange(positions.shape[1]) + done >= self.start
        if np.any(keep):  # (chains, steps, dim) of x: the pooled order never depends on chunks
            self.buffer.append(latent_to_x(self.flow, np.asarray(positions[:, keep])))

    def update_target(self, done: int, data: Any, positions: np.ndarray):
        if done not in self._boundaries or not self.buffer:
            return None
        draws = np.concatenate(self.buffer, axis=1).swapaxes(0, 1).reshape(-1, self.dim)
        draws = draws[np.all(np.isfinite(draws), axis=1)]
        if draws.shape[0] > 4096:  # the most recent draws
            draws = draws[-4096:]
        if draws.shape[0] < 2:
            return None
        new, history = fit_forward_kl(draws, self.flow, steps=self.train_steps,
                                      learning_rate=self.learning_rate,
                                      seed=self.seed + self.rounds, progress=False)  # fmt: skip
        self.rounds += 1
        self.losses.append(float(np.mean(history[-20:])))
        x_now = latent_to_x(self.flow, np.asarray(positions, dtype=np.float64))
        inverse = numpy_twin(flow_functions(new).inverse)
        z_new = np.stack([np.asarray(inverse(new, np.ascontiguousarray(x))) for x in x_now])
        leaves_ok = all(np.all(np.isfinite(a)) for a in _leaves(new))
        if not leaves_ok or not np.all(np.isfinite(z_new)):
            return None  # a failed fit keeps the old flow
        self.flow = new
        self._restart_at = done
        return (_like(data[0], new), *data[1:]), z_new

    def update(self, done: int, params: Any) -> tuple[Any, np.ndarray | None]:
        if done == self._restart_at:  # restart the step-size adaptation (factor 1)
            return params, np.zeros(self.chains)
        return params, None

    def result(self) -> dict[str, Any]:
        return {"constrain": constrain_through(self.latent.base, self.flow)}

    def state_dict(self) -> dict[str, np.ndarray]:
        buffer = (np.concatenate(self.buffer, axis=1) if self.buffer
                  else np.zeros((self.chains, 0, self.dim)))  # fmt: skip
        out = {
            "buffer": buffer,
            "rounds": np.asarray(self.rounds, dtype=np.int64),
            "losses": np.asarray(self.losses, dtype=np.float64),
            "restart_at": np.asarray(self._restart_at, dtype=np.int64),
        }
        for i, leaf in enumerate(_leaves(self.flow)):
            out[f"flow{i}"] = np.asarray(leaf)
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        buffer = np.asarray(state["buffer"], dtype=np.float64).reshape(self.chains, -1, self.dim)
        self.buffer = [buffer] if buffer.shape[1] else []
        self.rounds = int(state["rounds"])
        self.losses = [float(v) for v in np.asarray(state["losses"]).ravel()]
        self._restart_at = int(state["restart_at"])
        n = len(_leaves(self.initial_flow))
        self.flow = _like(
            self.initial_flow, _unflatten(self.initial_flow, [state[f"flow{i}"] for i in range(n)])
        )

    def restored_target_data(self, data: Any) -> Any:
        if self.rounds == 0:
            return None
        return (_like(data[0], self.flow), *data[1:])


def _leaves(tree: Any) -> list:
    if isinstance(tree, tuple):
        return [leaf for item in tree for leaf in _leaves(item)]
    return [tree]


def _unflatten(template: Any, leaves: list) -> Any:
    it = iter(leaves)

    def build(t):
        if isinstance(t, tuple):
            items = [build(x) for x in t]
            return type(t)(*items) if hasattr(t, "_fields") else tuple(items)
        return next(it)

    return build(template)


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
    flow: Any  # RealNVP or SplineFlow
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
    flow: Any = None,
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
    """Fit a flow (RealNVP, or a spline flow given as ``flow``) to ``target`` by reverse KL
    (on JAX), then sample its latent target.

    Args:
        target: a :class:`~langevin.targets.Target` with a JAX log-density (the fit runs on
            JAX) and the form of the sampling backend.
        kernel: the latent kernel (default ``langevin.HMC(0.5, n_leapfrog=8)``; its warm-up
            adapts the step size and mass matrix as usual).
        flow: starting flow parameters (default ``realnvp_init(dim, 4, (32, 32))``; a
            :class:`~langevin.flows.SplineFlow` from ``spline_flow_init`` works as well).
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
