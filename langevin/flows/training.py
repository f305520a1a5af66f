"""Fitting flows on JAX (optax), saving and loading them without pickle.

Two objectives, for a flow ``f`` pushing the base ``φ = N(0, I)`` to ``q = f_# φ``
(Papamakarios et al. 2021, §2.3):

* **Reverse KL** to a target ``π`` known up to its constant (:func:`fit_reverse_kl`):

      KL(q ‖ π) + log Z = E_{u∼φ}[ log φ(u) − log|det J_f(u)| − log π̃(f(u)) ],

  estimated with ``batch_size`` fresh base draws per step (the reparameterisation
  gradient); the value is an upper bound on ``−log Z`` (the negative ELBO). Mode-seeking:
  the flow may miss modes, which is why samplers built on it stay MH-exact.
* **Forward KL** from draws ``x_i ∼ π`` (:func:`fit_forward_kl`): the negative
  log-likelihood ``−(1/n) Σ log q(x_i)`` on minibatches (maximum likelihood); mass-covering,
  the flowMC choice for retraining on a chain's draws.

Only the conditioners' weights and the final elementwise affine are trained; permutations and
masks stay as built. The fitted parameters come back as float64 NumPy arrays (the form both
backends sample with).

References:
    Papamakarios, G., Nalisnick, E., Rezende, D. J., Mohamed, S. and Lakshminarayanan, B.
    (2021). Normalizing flows for probabilistic modeling and inference. JMLR 22(57).
    Rezende, D. J. and Mohamed, S. (2015). Variational inference with normalizing flows. ICML.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from langevin.flows.layers import RealNVP
from langevin.flows.spline import ComposedFlow, SplineFlow, flow_dim, flow_functions
from langevin.nn import jax_twin, load_params, params_to_jax, params_to_numpy, save_params, train
from langevin.targets.base import Target

__all__ = ["fit_reverse_kl", "fit_forward_kl", "save_flow", "load_flow", "split_trainable",
           "merge_trainable"]  # fmt: skip


def split_trainable(params: Any) -> tuple[Any, Any]:
    """``(trainable, fixed)``: the conditioners and the final affine; the rest of the flow
    (permutations, masks, spline bounds: the flow itself, whose conditioners and final
    affine :func:`merge_trainable` replaces)."""
    if isinstance(params, ComposedFlow):
        return (split_trainable(params.inner)[0], split_trainable(params.outer)[0]), params
    nets = tuple(b.coupling.net for b in params.blocks)
    return (nets, params.final), params


def merge_trainable(trainable: Any, fixed: Any) -> Any:
    """The inverse of :func:`split_trainable`: ``fixed`` with the trained conditioners and
    final affine (a flow of ``fixed``'s type)."""
    if isinstance(fixed, ComposedFlow):
        return ComposedFlow(merge_trainable(trainable[0], fixed.inner),
                            merge_trainable(trainable[1], fixed.outer))  # fmt: skip
    nets, final = trainable
    blocks = tuple(b._replace(coupling=b.coupling._replace(net=net))
                   for b, net in zip(fixed.blocks, nets))  # fmt: skip
    return type(fixed)(blocks, final)


def _check_common(params, steps, batch_size, learning_rate):
    from langevin.flows.transformed import check_flow

    params = check_flow(params)
    for name, v in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    if (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, (int, float))
        or not (0 < learning_rate < float("inf"))
    ):
        raise ValueError(f"learning_rate must be a positive float; got {learning_rate!r}")
    return params


def _optimizer(optimizer, learning_rate, steps):
    import optax

    if optimizer is not None:
        return optimizer
    schedule = optax.cosine_decay_schedule(float(learning_rate), int(steps), alpha=0.05)
    return optax.chain(optax.clip_by_global_norm(10.0), optax.adam(schedule))


def fit_reverse_kl(
    target: Target,
    params: Any,
    *,
    steps: int = 1000,
    batch_size: int = 128,
    learning_rate: float = 3e-3,
    optimizer: Any = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[Any, np.ndarray]:
    """Fit a flow to ``target`` by reverse KL from the standard-normal base (module docstring).

    Args:
        target: a :class:`~langevin.targets.Target` with a JAX log-density.
        params: the starting flow: :class:`~langevin.flows.RealNVP` (``realnvp_init(dim)``)
            or :class:`~langevin.flows.SplineFlow` (``spline_flow_init(dim)``).
        steps: optimiser steps.
        batch_size: base draws per step.
        learning_rate: Adam's initial rate (cosine decay to 5% of it; gradients clipped to
            norm 10) when ``optimizer`` is not given.
        optimizer: an optax ``GradientTransformation`` instead.
        seed: seeds the base draws.
        progress: a tqdm bar with the loss.

    Returns:
        ``(params, history)``: the fitted flow (float64 NumPy) and the loss per step (the
        negative ELBO, ``KL(q‖π) − log Z``).
    """
    import jax
    import jax.numpy as jnp

    from langevin.backends import jax_backend, jax_ops

    if not isinstance(target, Target) or not target.has_jax:
        raise TypeError("target must be a langevin.Target with a JAX log-density "
                        "(Target.from_jax, or a built-in)")  # fmt: skip
    params = _check_common(params, steps, batch_size, learning_rate)
    dim = flow_dim(params)
    if target.dim is not None and target.dim != dim:
        raise ValueError(f"params: the flow has dimension {dim} but the target has "
                         f"dim={target.dim}")  # fmt: skip
    dtype = jnp.zeros(()).dtype
    form = jax_backend.bind_target(target, dim, dtype)
    fwd = jax_twin(flow_functions(params).forward_and_log_det)
    trainable, fixed = split_trainable(params_to_jax(params))
    log_norm = 0.9189385332046727 * dim

    def loss(tr, key):
        p = merge_trainable(tr, fixed)
        u = jax.random.normal(key, (int(batch_size), dim), dtype)
        built = form.build(form.data)

        def one(ui):
            x, log_det = fwd(p, ui)
            return -0.5 * jnp.sum(ui * ui) - log_norm - log_det - jax_ops.logdensity(built, x)

        return jnp.mean(jax.vmap(one)(u))

    opt = _optimizer(optimizer, learning_rate, steps)
    trained, history = train(loss, trainable, int(steps), optimizer=opt, seed=seed,
                             progress=progress, description="flow: reverse KL")  # fmt: skip
    return params_to_numpy(merge_trainable(trained, split_trainable(params)[1])), history


def fit_forward_kl(
    draws: Any,
    params: Any,
    *,
    steps: int = 1000,
    batch_size: int = 256,
    learning_rate: float = 3e-3,
    optimizer: Any = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[Any, np.ndarray]:
    """Fit a flow to draws by maximum likelihood (forward KL; module docstring).

    Args:
        draws: ``(n, d)`` draws (or ``(chains, n, d)``, flattened), e.g. a trace's ``draws``.
        params: the starting flow (RealNVP or SplineFlow).
        steps, batch_size, learning_rate, optimizer, seed, progress: as
            :func:`fit_reverse_kl` (minibatches drawn with replacement).

    Returns:
        ``(params, history)``: the fitted flow and the minibatch negative log-likelihood per
        step.
    """
    import jax
    import jax.numpy as jnp

    params = _check_common(params, steps, batch_size, learning_rate)
    dim = flow_dim(params)
    x = np.asarray(draws, dtype=np.float64)
    if x.ndim < 2 or x.shape[-1] != dim:
        raise ValueError(f"draws must have shape (n, {dim}) or (chains, n, {dim}); got "
                         f"{x.shape}")  # fmt: skip
    x = x.reshape(-1, dim)
    if x.shape[0] < 2 or not np.all(np.isfinite(x)):
        raise ValueError("draws must hold at least 2 finite rows")
    dtype = jnp.zeros(()).dtype
    data = jnp.asarray(x, dtype)
    logq = jax_twin(flow_functions(params).log_density)
    trainable, fixed = split_trainable(params_to_jax(params))
    n = x.shape[0]

    def loss(tr, key):
        p = merge_trainable(tr, fixed)
        idx = jax.random.randint(key, (int(batch_size),), 0, n)
        return -jnp.mean(jax.vmap(lambda xi: logq(p, xi))(data[idx]))

    opt = _optimizer(optimizer, learning_rate, steps)
    trained, history = train(loss, trainable, int(steps), optimizer=opt, seed=seed,
                             progress=progress, description="flow: forward KL")  # fmt: skip
    return params_to_numpy(merge_trainable(trained, split_trainable(params)[1])), history


def save_flow(path: str | os.PathLike, params: Any, metadata: dict | None = None) -> None:
    """Save a flow (:class:`~langevin.flows.RealNVP` or :class:`~langevin.flows.SplineFlow`:
    ``.npz`` of arrays + JSON structure; no pickle)."""
    from langevin.flows.transformed import check_flow

    params = check_flow(params)
    save_params(path, params, {"kind": flow_functions(params).kind, "user": metadata})


_KINDS = {"realnvp": RealNVP, "spline": SplineFlow, "composed": ComposedFlow}


def load_flow(path: str | os.PathLike) -> tuple[Any, Any]:
    """Load a flow saved by :func:`save_flow`: ``(params, metadata)``."""
    from langevin.flows.transformed import check_flow

    params, meta = load_params(path)
    kind = meta.get("kind") if isinstance(meta, dict) else None
    if isinstance(kind, str) and kind.startswith("composed("):
        kind = "composed"
    if kind not in _KINDS:
        raise ValueError(f"{os.fspath(path)!r} does not hold a flow saved by save_flow")
    if not isinstance(params, _KINDS[kind]):
        raise ValueError(f"{os.fspath(path)!r}: the saved structure is not a {kind} flow")
    return check_flow(params, argname=os.fspath(path)), meta.get("user")
