"""Targets from the modelling libraries users already write in: NumPyro.

``Target.from_numpyro(model, *args, **kwargs)`` samples a NumPyro model on its unconstrained
space, as NumPyro's own NUTS does: every latent site is mapped to ℝ^k by the bijection of its
support (``biject_to``), and the log-density on ℝ^n is the model's joint log-density at the
constrained values plus the log-Jacobian of the map (NumPyro's ``potential_fn`` is its
negative). The flat position is the sites' unconstrained values in the order of their names
(sorted, as ``jax.flatten_util.ravel_pytree`` orders a dict), one named block per site; the
trace's ``to_arviz(constrained=True)`` shows every site (and every ``numpyro.deterministic``)
on its own support, with its own shape, through the model's ``postprocess_fn``.

NumPyro is an optional extra: ``pip install "langevin[numpyro]"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["from_numpyro"]


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f'this needs {module}, an optional extra: pip install "langevin[{extra}]"'
        ) from exc


def from_numpyro(model: Callable, *args: Any, seed: int = 0, name: str | None = None,
                 **kwargs: Any):  # fmt: skip
    """A NumPyro model as a target on its unconstrained space (``backend="jax"``).

    Args:
        model: a NumPyro model function (``numpyro.sample`` statements; observed data
            passed through ``obs=``).
        *args, **kwargs: the model's arguments (its data); they are fixed in the target.
        seed: the seed of NumPyro's initialisation (``init_to_uniform``: each unconstrained
            coordinate uniform on (−2, 2)), which is the target's ``initial_position``.
        name: the target's name (default: the model function's name).

    Returns:
        A :class:`~langevin.targets.Target` with one named block per latent site (its
        unconstrained shape), its ``constrain`` map (every site and deterministic on its
        support, by NumPyro's ``postprocess_fn``) and a starting point.

    Example:
        >>> import numpy as np, numpyro, numpyro.distributions as dist, langevin
        >>> def model(y):
        ...     sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
        ...     numpyro.sample("y", dist.Normal(0.0, sigma), obs=y)
        >>> target = langevin.Target.from_numpyro(model, np.array([0.3, -1.2, 0.8]))
        >>> target.names_or_default()
        {'sigma': (slice(0, 1, None), ())}
    """
    _require("numpyro", "numpyro")
    import jax
    import jax.numpy as jnp
    from numpyro.infer.util import initialize_model

    from langevin.targets.base import Target

    if not callable(model):
        raise TypeError(f"model must be a NumPyro model function; got {type(model).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative int; got {seed!r}")
    try:
        info = initialize_model(jax.random.PRNGKey(int(seed)), model, model_args=args,
                                model_kwargs=kwargs, dynamic_args=False)  # fmt: skip
    except Exception as exc:
        raise ValueError(
            f"NumPyro could not initialise the model {getattr(model, '__name__', model)!r}: {exc}"
        ) from exc
    z = info.param_info.z
    if not z:
        raise ValueError("the model has no latent sites to sample (every site is observed)")
    sites = sorted(z)  # the order ravel_pytree gives a dict's leaves
    shapes = {s: tuple(np.shape(z[s])) for s in sites}
    sizes = {s: int(np.prod(shapes[s], dtype=int)) for s in sites}
    starts = np.cumsum([0] + [sizes[s] for s in sites])
    dim = int(starts[-1])
    potential_fn, postprocess_fn = info.potential_fn, info.postprocess_fn

    def unflatten(x):
        return {s: x[starts[i] : starts[i + 1]].reshape(shapes[s]) for i, s in enumerate(sites)}

    def logdensity(x):
        # the position's dtype is the computation's (JAX's default float unless x64 is on)
        return (-potential_fn(unflatten(x))).astype(x.dtype)

    constrain_all = jax.jit(jax.vmap(lambda x: postprocess_fn(unflatten(x))))

    def constrain(draws: np.ndarray) -> dict[str, np.ndarray]:
        draws = np.asarray(draws)
        lead = draws.shape[:-1]
        out = constrain_all(jnp.asarray(draws.reshape(-1, dim)))
        return {k: np.asarray(v).reshape(*lead, *np.shape(v)[1:]) for k, v in out.items()}

    start = np.concatenate([np.asarray(z[s], dtype=np.float64).reshape(-1) for s in sites])
    target = Target(
        names={s: shapes[s] for s in sites},
        jax={"logdensity": logdensity},
        initial_position=start,
        name=name or getattr(model, "__name__", "numpyro_model"),
        constrain=constrain,
    )
    return target
