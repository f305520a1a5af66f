"""Interop: a ``flowjax`` bijection as the flow of a flow-transformed target (JAX backend).

Users who already train flows with flowjax (Ward, github.com/danielward27/flowjax) plug a
trained bijection in: :func:`from_flowjax` builds the latent target
``log π(f(z)) + log|det J_f(z)|`` with ``f`` the bijection's ``transform_and_log_det``, on
the JAX backend only (a flowjax bijection is JAX code: Numba cannot run it; for both backends
use :class:`langevin.flows.RealNVP` and :func:`langevin.flows.flow_transformed`). flowjax is
an optional extra: ``pip install flowjax``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from langevin.targets.base import Target

__all__ = ["from_flowjax"]


def from_flowjax(target: Target, bijection: Any, *, name: str | None = None) -> Target:
    """The latent target of ``target`` under a flowjax ``bijection`` (JAX backend only).

    Args:
        target: a :class:`~langevin.targets.Target` with a JAX log-density and a known
            ``dim``.
        bijection: a flowjax bijection of shape ``(dim,)`` (anything with
            ``transform_and_log_det(z) -> (x, log|det J|)``), e.g. a trained flow's
            ``flow.bijection``.
        name: the new target's name.

    Returns:
        A JAX :class:`~langevin.targets.Target` on ``z``; its ``constrain`` maps latent draws
        to the target's parameters, ``to_x(draws)`` to ``x`` as an array.

    Example:
        >>> import jax.numpy as jnp, langevin
        >>> from flowjax.bijections import Affine  # doctest: +SKIP
        >>> latent = from_flowjax(langevin.targets.gaussian(2),
        ...                       Affine(jnp.zeros(2), 2 * jnp.ones(2)))  # doctest: +SKIP
    """
    if not isinstance(target, Target) or not target.has_jax:
        raise TypeError("target must be a langevin.Target with a JAX log-density")
    if target.dim is None:
        raise ValueError("target: its dimension is unknown; build it with dim=")
    transform = getattr(bijection, "transform_and_log_det", None)
    if not callable(transform):
        raise TypeError(
            "bijection must be a flowjax bijection (with transform_and_log_det); got "
            f"{type(bijection).__name__}"
        )
    shape = getattr(bijection, "shape", (target.dim,))
    if tuple(shape) != (target.dim,):
        raise ValueError(f"bijection has shape {tuple(shape)} but the target has dim={target.dim}")
    dim = target.dim
    logp = target.jax_logdensity
    if logp is None:
        raise TypeError("target: from_flowjax needs the target's JAX logdensity")

    def logdensity(z):
        x, log_det = transform(z)
        return logp(x) + log_det.astype(z.dtype)

    def to_x(draws: Any) -> np.ndarray:
        import jax
        import jax.numpy as jnp

        draws = np.asarray(draws)
        flat = jnp.asarray(draws.reshape(-1, dim))
        x = jax.vmap(lambda z: transform(z)[0])(flat)
        return np.asarray(x, dtype=np.float64).reshape(draws.shape)

    blocks = target.names_or_default()

    def constrain(draws: Any) -> dict[str, np.ndarray]:
        x = to_x(draws)
        if target.constrain is not None:
            return target.constrain(x)
        return {k: x[..., sl].reshape(x.shape[:-1] + shp) for k, (sl, shp) in blocks.items()}

    new = Target(dim=dim, names={"z": dim}, jax={"logdensity": logdensity},
                 initial_position=np.zeros(dim), name=name or f"flowjax({target.name})",
                 constrain=constrain)  # fmt: skip
    new.to_x = to_x
    new.base = target
    return new
