"""Denoisers and energies trained by denoising score matching, as targets on both backends.

**Denoiser.** For data x ~ p and y = x + s ε (ε ~ N(0, I)), the Bayes denoiser
x̂(y) = E[x | y] minimises E‖x̂(y) − x‖², and Tweedie's formula gives the smoothed score
∇log p_s(y) = (x̂(y) − y)/s² (Miyasawa 1961; Saremi & Hyvärinen 2019, "neural empirical
Bayes"). We parametrise the denoiser by a noise-prediction network (Vincent 2011's denoising
score matching with the weight s², as in Ho et al. 2020):

    x̂_θ(y) = y + s n_θ(y, s),      ∇log p_s(y) ≈ n_θ(y, s)/s,
    loss(θ) = E_{x, s, ε} ‖n_θ(x + s ε, s) + ε‖²,

with n_θ (the negated noise prediction −ε̂_θ) an :class:`~langevin.nn.MLP` whose input is
``(y, s)``: the noise level is an input, so one network serves *one* level σ (train with
``levels=[σ]``) or *all* the levels σ/√k, k = 1..m, of the chain of log-concave Markov
chains (train with :func:`clmc_levels`; the network is then conditioned on k through
s = σ/√k). The loss is minimised exactly by n(y, s) = −E[ε | y] = s ∇log p_s(y).

**Energy (DEEN).** A scalar network f_θ(y, s) with log p_s ≈ −f_θ, trained by
E‖x − y + s² ∇_y f_θ(y, s)‖² / s² (Saremi et al. 2018; the same minimiser through Tweedie):
an ordinary log-density target (value and gradient on both backends: the gradient through
the network is :func:`langevin.nn.mlp_vjp`, written by hand so Numba runs it), which any
kernel — MALA included — can walk on.

The input ``(y, s)`` is assembled without concatenation (which ``xp`` does not have):
``u = E y + s a`` with the fixed embedding ``E = [I_d; 0]`` and ``a = e_{d+1}`` stored in
the parameters. Training is on JAX with optax (:func:`langevin.nn.train`); the trained
parameters are a pytree that runs unchanged on Numba (:func:`denoiser_target`), and
:func:`save` / :func:`load` store them without pickle.

References:
    Vincent, P. (2011). A connection between score matching and denoising autoencoders.
    Neural Computation 23(7).
    Saremi, S., Mehrjou, A., Schölkopf, B. and Hyvärinen, A. (2018). Deep energy estimator
    networks. arXiv:1805.08306.
    Saremi, S. and Hyvärinen, A. (2019). Neural empirical Bayes. JMLR 20(181).
    Ho, J., Jain, A. and Abbeel, P. (2020). Denoising diffusion probabilistic models. NeurIPS.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from langevin.backends.portable import portable
from langevin.nn import (
    MLP,
    jax_twin,
    load_params,
    mlp_apply,
    mlp_init,
    mlp_vjp,
    numba_twin,
    params_to_numpy,
    save_params,
    train,
)
from langevin.targets.base import Target

__all__ = [
    "Denoiser", "denoiser_init", "energy_init", "clmc_levels", "train_denoiser",
    "train_energy", "denoiser_target", "energy_target", "denoise", "save", "load",
    "denoiser_apply", "energy_value_and_grad",
]  # fmt: skip

xp: Any = None  # bound by each backend (see langevin.backends.portable)


class Denoiser(NamedTuple):
    """Parameters of a level-conditioned network: the MLP on ``u = embed·y + s·axis``.

    Attributes:
        net: the :class:`~langevin.nn.MLP` (input width d + 1; output d for a denoiser,
            1 for an energy).
        embed: ``(d + 1, d)``, ``[I_d; 0]``.
        axis: ``(d + 1,)``, ``e_{d+1}`` (where the level s enters).
    """

    net: MLP
    embed: np.ndarray
    axis: np.ndarray


# -- portable math (both backends) -------------------------------------------------------------
@portable
def _net_input(params, y, s):
    return xp.dot(params.embed, y) + s * params.axis


@portable
def denoiser_apply(params, y, s):
    """The network output n_θ(y, s) ≈ s ∇log p_s(y) (the negated noise prediction)."""
    return mlp_apply(params.net, _net_input(params, y, s))


@portable
def denoiser_score(x, data):
    """``∇log p_s(x) ≈ n_θ(x, s)/s``; ``data = (params, s)``."""
    params, s = data
    return denoiser_apply(params, x, s) / s


@portable
def energy_value_and_grad(x, data):
    """``(−f_θ(x, s), −∇_x f_θ(x, s))``; ``data = (params, s)``."""
    params, s = data
    u = _net_input(params, x, s)
    value = mlp_apply(params.net, u)[0]
    one = xp.zeros(1) + 1.0
    g = mlp_vjp(params.net, u, one)
    return -value, -xp.dot(g, params.embed)


# -- construction ------------------------------------------------------------------------------
def _wrap(net: MLP, dim: int) -> Denoiser:
    embed = np.vstack([np.eye(dim), np.zeros((1, dim))])
    axis = np.zeros(dim + 1)
    axis[-1] = 1.0
    return Denoiser(net, np.ascontiguousarray(embed), axis)


def _check_dim(dim: Any) -> int:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be a positive int; got {dim!r}")
    return int(dim)


def denoiser_init(seed: int, dim: int, hidden: Sequence[int] = (64, 64),
                  activation: str = "silu") -> Denoiser:  # fmt: skip
    """A fresh denoiser network for d-dimensional data (input d + 1: y and the level s)."""
    dim = _check_dim(dim)
    return _wrap(mlp_init(seed, (dim + 1, *hidden, dim), activation, last_scale=0.1), dim)


def energy_init(seed: int, dim: int, hidden: Sequence[int] = (64, 64),
                activation: str = "silu") -> Denoiser:  # fmt: skip
    """A fresh scalar energy network f_θ(y, s) for d-dimensional data."""
    dim = _check_dim(dim)
    return _wrap(mlp_init(seed, (dim + 1, *hidden, 1), activation, last_scale=0.1), dim)


def clmc_levels(sigma: float, m: int) -> np.ndarray:
    """The levels σ/√k, k = 1..m, of the chain of log-concave Markov chains."""
    if not (isinstance(sigma, (int, float)) and sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be positive and finite; got {sigma!r}")
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"m must be a positive int; got {m!r}")
    return float(sigma) / np.sqrt(np.arange(1, int(m) + 1))


def _check_training(data: Any, levels: Any, steps: Any, batch: Any) -> tuple:
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] < 2 or not np.all(np.isfinite(data)):
        raise ValueError(f"data must be a finite (n, d) array with n >= 2; got shape {data.shape}")
    levels = np.atleast_1d(np.asarray(levels, dtype=np.float64))
    if levels.ndim != 1 or not np.all(np.isfinite(levels) & (levels > 0)):
        raise ValueError(f"levels must be positive noise levels (σ, or σ/√k); got {levels}")
    for name, v in (("steps", steps), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    return data, levels


def _draws(key: Any, data: Any, levels: Any, batch: int) -> tuple:
    import jax
    import jax.numpy as jnp

    k1, k2, k3 = jax.random.split(key, 3)
    x = data[jax.random.randint(k1, (batch,), 0, data.shape[0])]
    s = levels[jax.random.randint(k2, (batch,), 0, levels.shape[0])]
    eps = jax.random.normal(k3, x.shape, x.dtype)
    return x, jnp.asarray(s, x.dtype), eps


def _frozen_embedding(p: Denoiser) -> Denoiser:
    """The fixed input embedding and the activation's one-hot code are data, not parameters:
    no gradient reaches them (Adam then leaves them exactly unchanged)."""
    import jax

    stop = jax.lax.stop_gradient
    net = p.net._replace(activation=stop(p.net.activation))
    return p._replace(net=net, embed=stop(p.embed), axis=stop(p.axis))


def train_denoiser(
    data: np.ndarray,
    levels: float | Sequence[float],
    *,
    steps: int = 2000,
    batch: int = 256,
    hidden: Sequence[int] = (64, 64),
    activation: str = "silu",
    learning_rate: float = 2e-3,
    seed: int = 0,
    params: Denoiser | None = None,
    optimizer: Any = None,
    progress: bool = False,
) -> tuple[Denoiser, np.ndarray]:
    """Fit a denoiser to ``data`` by denoising score matching on JAX (optax Adam).

    Each example gets a level s drawn uniformly from ``levels`` and noise y = x + s ε; the
    loss is ``E‖n_θ(y, s) + ε‖²`` (see the module docstring), minimised by
    ``n = s ∇log p_s``.

    Args:
        data: ``(n, d)`` samples of p.
        levels: one σ, or the levels to condition on (``clmc_levels(σ, m)``).
        steps, batch: optimiser steps and minibatch size.
        hidden, activation: the network (ignored when ``params`` is given).
        learning_rate: Adam's step.
        seed: initialisation and minibatch seed.
        params: start from these parameters instead of a fresh network.
        optimizer: an optax optimizer (default ``optax.adam(learning_rate)``).
        progress: show a progress bar.

    Returns:
        ``(params, loss history)``; params with NumPy float64 leaves (both backends).
    """
    import jax
    import jax.numpy as jnp
    import optax

    data, levels = _check_training(data, levels, steps, batch)
    dim = data.shape[1]
    start = denoiser_init(seed, dim, hidden, activation) if params is None else params
    apply = jax.vmap(jax_twin(denoiser_apply), in_axes=(None, 0, 0))
    data_j, levels_j = jnp.asarray(data), jnp.asarray(levels)

    def loss(p, key):
        p = _frozen_embedding(p)
        x, s, eps = _draws(key, data_j.astype(p.embed.dtype), levels_j, batch)
        out = apply(p, x + s[:, None] * eps, s)
        return jnp.mean(jnp.sum((out + eps) ** 2, axis=1))

    trained, history = train(loss, start, steps, optimizer=optimizer or optax.adam(learning_rate),
                             seed=seed, progress=progress, description="denoiser")  # fmt: skip
    return params_to_numpy(trained), history


def train_energy(
    data: np.ndarray,
    levels: float | Sequence[float],
    *,
    steps: int = 2000,
    batch: int = 256,
    hidden: Sequence[int] = (64, 64),
    activation: str = "silu",
    learning_rate: float = 2e-3,
    seed: int = 0,
    params: Denoiser | None = None,
    optimizer: Any = None,
    progress: bool = False,
) -> tuple[Denoiser, np.ndarray]:
    """Fit an energy f_θ(y, s) (DEEN) by ``E‖x − y + s²∇_y f_θ(y, s)‖²/s²`` on JAX; the
    arguments are those of :func:`train_denoiser`. Returns ``(params, loss history)``."""
    import jax
    import jax.numpy as jnp
    import optax

    data, levels = _check_training(data, levels, steps, batch)
    dim = data.shape[1]
    start = energy_init(seed, dim, hidden, activation) if params is None else params
    net = jax_twin(mlp_apply)
    inp = jax_twin(_net_input)

    def energy(p, y, s):
        return net(p.net, inp(p, y, s))[0]

    grad_y = jax.vmap(jax.grad(energy, argnums=1), in_axes=(None, 0, 0))
    data_j, levels_j = jnp.asarray(data), jnp.asarray(levels)

    def loss(p, key):
        p = _frozen_embedding(p)
        x, s, eps = _draws(key, data_j.astype(p.embed.dtype), levels_j, batch)
        y = x + s[:, None] * eps
        r = x - y + (s * s)[:, None] * grad_y(p, y, s)
        return jnp.mean(jnp.sum(r * r, axis=1) / (s * s))

    trained, history = train(loss, start, steps, optimizer=optimizer or optax.adam(learning_rate),
                             seed=seed, progress=progress, description="energy")  # fmt: skip
    return params_to_numpy(trained), history


# -- as targets --------------------------------------------------------------------------------
def _level(s: Any) -> float:
    if isinstance(s, bool) or not isinstance(s, (int, float, np.floating)):
        raise TypeError(f"sigma must be a positive float; got {s!r}")
    s = float(s)
    if not (s > 0 and math.isfinite(s)):
        raise ValueError(f"sigma must be positive and finite; got {s!r}")
    return s


def _check_params(params: Any, want_out: int | None) -> tuple[Denoiser, int]:
    if not isinstance(params, Denoiser):
        raise TypeError(f"params must be a Denoiser (denoiser_init / train_denoiser); got "
                        f"{type(params).__name__}")  # fmt: skip
    params = params_to_numpy(params)
    params = Denoiser(MLP(tuple(params.net.weights), tuple(params.net.biases),
                          params.net.activation), params.embed, params.axis)  # fmt: skip
    dim = params.embed.shape[1]
    out = params.net.weights[-1].shape[0]
    if want_out is not None and out != (dim if want_out == -1 else want_out):
        kind = "a denoiser (output d)" if want_out == -1 else "an energy (output 1)"
        raise ValueError(f"params must be {kind}; the network outputs {out} values")
    return params, dim


def _jax_data(params: Denoiser, s: float, dtype: Any) -> tuple:
    import jax
    import jax.numpy as jnp

    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params), jnp.asarray(s, dtype)


def denoiser_target(params: Denoiser, sigma: float, *, name: str = "denoiser") -> Target:
    """The smoothed density p_σ as a score-only target: ``∇log p_σ(y) = (x̂(y) − y)/σ²``.

    Both backends (the network is portable). Walk it with an unadjusted kernel:
    ``WalkJump(ULA(h), σ, score_only=True)`` or ``KineticLangevin``.

    Args:
        params: a trained denoiser (:func:`train_denoiser`).
        sigma: the level (one of those it was trained on; for the chain of log-concave
            Markov chains, ``lambda k: denoiser_target(params, σ/√k)``).
    """
    params, dim = _check_params(params, -1)
    s = _level(sigma)
    score_nb = numba_twin(denoiser_score)
    score_jx = jax_twin(denoiser_score)

    def score(x):
        return score_jx(x, _jax_data(params, s, x.dtype))

    t = Target(dim=dim, numba={"score": score_nb}, jax={"score": score}, data=(params, s),
               name=name)  # fmt: skip
    t.sigma = s
    return t


def energy_target(params: Denoiser, sigma: float, *, name: str = "energy") -> Target:
    """The smoothed density p_σ ∝ exp(−f_θ(·, σ)) of a trained energy: value and gradient on
    both backends (any kernel, MALA included, can walk on it)."""
    params, dim = _check_params(params, 1)
    s = _level(sigma)
    vg_nb = numba_twin(energy_value_and_grad)
    vg_jx = jax_twin(energy_value_and_grad)

    def logdensity(x):
        return vg_jx(x, _jax_data(params, s, x.dtype))[0]

    t = Target(dim=dim, numba={"value_and_grad": vg_nb}, jax={"logdensity": logdensity},
               data=(params, s), name=name)  # fmt: skip
    t.sigma = s
    return t


def denoise(params: Denoiser, y: np.ndarray, sigma: float) -> np.ndarray:
    """x̂(y) = y + σ n_θ(y, σ) for rows of ``y`` (NumPy, on the host)."""
    from langevin.nn import numpy_twin

    params, dim = _check_params(params, -1)
    s = _level(sigma)
    y = np.asarray(y, dtype=np.float64)
    if y.shape[-1] != dim:
        raise ValueError(f"y must have shape (..., {dim}); got {y.shape}")
    f = numpy_twin(denoiser_apply)
    flat = y.reshape(-1, dim)
    out = np.stack([f(params, row, s) for row in flat]) if flat.size else flat
    return (flat + s * out).reshape(y.shape)


def save(path: str | os.PathLike, params: Denoiser, **metadata: Any) -> None:
    """Save a denoiser or energy (no pickle; :func:`langevin.nn.save_params`), with JSON
    ``metadata`` (e.g. ``sigma=1.0``)."""
    if not isinstance(params, Denoiser):
        raise TypeError(f"params must be a Denoiser; got {type(params).__name__}")
    save_params(path, params_to_numpy(params), {"kind": "langevin.diffusion.Denoiser",
                                                **metadata})  # fmt: skip


def load(path: str | os.PathLike) -> tuple[Denoiser, dict]:
    """Load what :func:`save` wrote: ``(params, metadata)``."""
    params, meta = load_params(path)
    if not isinstance(meta, dict) or meta.get("kind") != "langevin.diffusion.Denoiser":
        raise ValueError(f"{os.fspath(path)!r} does not hold a langevin.diffusion.Denoiser")
    net = params.net
    params = Denoiser(MLP(tuple(net.weights), tuple(net.biases), net.activation),
                      params.embed, params.axis)  # fmt: skip
    return params, {k: v for k, v in meta.items() if k != "kind"}
