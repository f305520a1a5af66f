"""Flow-transformed targets: the latent law of ``z`` with ``x = f(z)`` and ``x ~ π``.

For a target density ``π`` on ``x`` and a bijection ``f`` (a trained normalizing flow), the
latent variable ``z = f⁻¹(x)`` has the density (change of variables)

    log π_f(z) = log π(f(z)) + log|det J_f(z)|,
    ∇_z log π_f(z) = J_f(z)ᵀ ∇_x log π(f(z)) + ∇_z log|det J_f(z)|.

Sampling ``π_f`` with HMC and pushing the draws through ``f`` is *flow-transformed HMC*
(ftHMC: Foreman, Izubuchi, Jin, Jin, Osborn & Tomiya 2021, the action
``S_FT(z) = S(f(z)) − log|det J_f(z)|``) and, with a flow fitted to ``π``, *neural
transport* HMC (NeuTra: Hoffman, Sountsov, Dillon, Langmore, Tran & Vasudevan 2019): when
``f`` pushes N(0, I) close to ``π``, ``π_f`` is close to N(0, I), which HMC samples well
whatever the geometry of ``π`` (funnels, bananas).

:func:`flow_transformed` builds ``π_f`` as an ordinary :class:`~langevin.targets.Target` on
both backends: the gradient uses the flow's hand-written pullback
(:mod:`langevin.flows.layers`), so Numba needs only the target's own value and gradient.
The flow's parameters are runtime *data* of the target form on both backends: a retrained
flow of the same architecture reuses the compiled sampling loop. ``constrain`` maps latent
draws to ``x`` (``trace.to_arviz(constrained=True)``, :func:`latent_to_x`).

References:
    Hoffman, M., Sountsov, P., Dillon, J. V., Langmore, I., Tran, D. and Vasudevan, S.
    (2019). NeuTra-lizing bad geometry in Hamiltonian Monte Carlo using neural transport.
    arXiv:1903.03704.
    Foreman, S., Izubuchi, T., Jin, L., Jin, X.-Y., Osborn, J. C. and Tomiya, A. (2021).
    HMC with normalizing flows. LATTICE 2021, arXiv:2112.01586.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from langevin.flows.layers import AffineCoupling, CouplingBlock, RealNVP
from langevin.flows.spline import (
    ComposedFlow,
    SplineBlock,
    SplineCoupling,
    SplineFlow,
    flow_dim,
    flow_functions,
)
from langevin.nn import jax_twin, numba_twin, numpy_twin, params_to_jax, params_to_numpy
from langevin.targets.base import Target
from langevin.targets.capabilities import BASE_FORM, SLOTS, TargetForm
from langevin.targets.data_targets import _JaxFormCache

__all__ = ["flow_transformed", "check_flow", "latent_to_x", "FlowTransformedTarget",
           "constrain_through"]  # fmt: skip


def check_flow(params: Any, dim: int | None = None, argname: str = "params") -> Any:
    """``params`` as float64/int64 flow parameters, checked (shapes, permutations, masks,
    spline bounds, finiteness), or a ``TypeError``/``ValueError`` naming ``argname``: a
    :class:`~langevin.flows.RealNVP`, a :class:`~langevin.flows.SplineFlow` or a
    :class:`~langevin.flows.ComposedFlow` of them."""
    if isinstance(params, ComposedFlow):
        inner = check_flow(params.inner, dim, f"{argname}.inner")
        outer = check_flow(params.outer, flow_dim(inner), f"{argname}.outer")
        return ComposedFlow(inner, outer)
    if not isinstance(params, (RealNVP, SplineFlow)):
        raise TypeError(
            f"{argname} must be flow parameters (langevin.flows.realnvp_init(dim), "
            f"spline_flow_init(dim) or a trained flow); got {type(params).__name__}"
        )
    spline = isinstance(params, SplineFlow)
    params = params_to_numpy(params)
    if not params.blocks:
        raise ValueError(f"{argname}: a flow needs at least one block")
    d = params.final.shift.shape[0]
    if dim is not None and d != dim:
        raise ValueError(f"{argname}: the flow has dimension {d} but the target has dim={dim}")
    if params.final.shift.shape != (d,) or params.final.log_scale.shape != (d,):
        raise ValueError(f"{argname}.final: shift and log_scale must have shape ({d},)")
    first = params.blocks[0]
    block_type = SplineBlock if spline else CouplingBlock
    coupling_type = SplineCoupling if spline else AffineCoupling
    for k, block in enumerate(params.blocks):
        if type(block) is not block_type or type(block.coupling) is not coupling_type:
            raise TypeError(f"{argname}.blocks[{k}] must be a {block_type.__name__} with a "
                            f"{coupling_type.__name__}")  # fmt: skip
        perm, inv = block.permutation.perm, block.permutation.inv_perm
        if perm.shape != (d,) or not np.array_equal(np.sort(perm), np.arange(d)):
            raise ValueError(f"{argname}.blocks[{k}].permutation.perm is not a permutation of "
                             f"0..{d - 1}")  # fmt: skip
        if inv.shape != (d,) or not np.array_equal(perm[inv], np.arange(d)):
            raise ValueError(f"{argname}.blocks[{k}].permutation.inv_perm is not perm's inverse")
        mask = block.coupling.mask
        if mask.shape != (d,) or not np.all((mask == 0.0) | (mask == 1.0)):
            raise ValueError(f"{argname}.blocks[{k}].coupling.mask must be d zeros and ones")
        net = block.coupling.net
        n_out = net.weights[-1].shape[0]
        if spline:
            if n_out % d or (n_out // d + 1) % 3 or n_out // d < 5:
                raise ValueError(f"{argname}.blocks[{k}].coupling.net must map {d} inputs to "
                                 f"{d}(3K - 1) outputs (K >= 2 bins); got {n_out}")  # fmt: skip
            bound = block.coupling.bound
            if bound.shape != (d,) or not np.all((bound > 0) & np.isfinite(bound)):
                raise ValueError(f"{argname}.blocks[{k}].coupling.bound must be {d} positive "
                                 "finite floats")  # fmt: skip
        elif n_out != 2 * d:
            raise ValueError(f"{argname}.blocks[{k}].coupling.net must map {d} inputs to "
                             f"{2 * d} outputs")  # fmt: skip
        if net.weights[0].shape[1] != d:
            raise ValueError(f"{argname}.blocks[{k}].coupling.net must take {d} inputs")
        shapes = [w.shape for w in net.weights]
        if shapes != [w.shape for w in first.coupling.net.weights]:
            raise ValueError(f"{argname}: every block's conditioner must have the same widths")
        for a in (*net.weights, *net.biases):
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{argname}.blocks[{k}]: the conditioner has non-finite weights")
    for a in params.final:
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{argname}.final has non-finite entries")
    return params


def latent_to_x(params: Any, draws: Any) -> np.ndarray:
    """``f(z)`` for latent draws of shape ``(..., d)`` (NumPy, via the Numba twin)."""
    params = params_to_numpy(params)
    draws = np.asarray(draws, dtype=np.float64)
    d = flow_dim(params)
    if draws.shape[-1:] != (d,):
        raise ValueError(f"draws must have a last axis of length {d}; got {draws.shape}")
    fwd = numba_twin(flow_functions(params).forward_and_log_det)
    flat = draws.reshape(-1, d)
    out = np.empty_like(flat)
    for i in range(flat.shape[0]):
        out[i] = fwd(params, np.ascontiguousarray(flat[i]))[0]
    return out.reshape(draws.shape)


#: JAX form functions per child form key: one function object per (child), so equal keys
#: mean equal code (the JAX runner cache keys on the form's key)
_JAX_FUNCTIONS: dict = {}


def _jax_form(child: Target, params: Any, dim: int) -> TargetForm:
    import jax
    import jax.numpy as jnp

    from langevin.backends import jax_backend, jax_ops

    child_form = jax_backend.bind_target(child, dim, jnp.zeros(()).dtype)
    fns = flow_functions(params)
    key = (f"jax-flow-{fns.kind}", child_form.key)
    if key not in _JAX_FUNCTIONS:
        fwd = jax_twin(fns.forward_and_log_det)
        pull = jax_twin(fns.pullback)
        child_build = child_form.build

        # The form's data is bound in JAX's default dtype (float64 with x64 on); a float32
        # chain computes the flow in float32 and returns float32, as its loop carry must be.
        def _in_dtype_of(z, p):
            return jax.tree_util.tree_map(
                lambda a: a.astype(z.dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, p
            )

        def logdensity(z, data):
            p, child_data = data
            x, log_det = fwd(_in_dtype_of(z, p), z)
            value = jax_ops.logdensity(child_build(child_data), x) + log_det
            return value.astype(z.dtype)

        def value_and_grad(z, data):
            p, child_data = data
            p = _in_dtype_of(z, p)
            x, log_det = fwd(p, z)
            value, g = jax_ops.value_and_grad(child_build(child_data), x)
            return (value + log_det).astype(z.dtype), pull(p, z, g.astype(z.dtype))

        by_slot = {"logdensity": logdensity, "value_and_grad": value_and_grad}
        functions = tuple(by_slot.get(n) for n in SLOTS)
        _JAX_FUNCTIONS[key] = (functions, lambda data: (BASE_FORM, *functions, data))
    _functions, build = _JAX_FUNCTIONS[key]
    return TargetForm(
        key=key,
        data=(params_to_jax(params), child_form.data),
        build=build,
        numba_type=None,
        capabilities=frozenset({"logdensity", "grad", "value_and_grad", "score"}),
    )


def _numba_value_and_grad(child: Target, fns: Any):
    """An ``njit`` ``(z, data) -> (log π_f(z), ∇ log π_f(z))`` with ``data = (params,
    child data)`` for a flow with the functions ``fns``; the child's Numba functions are
    compile-time constants of it."""
    import numba

    fwd = numba_twin(fns.forward_and_log_det)
    pull = numba_twin(fns.pullback)
    vg = child.numba_functions.get("value_and_grad")
    ld = child.numba_functions.get("logdensity")
    gr = child.numba_functions.get("grad")
    if vg is None and (ld is None or gr is None):
        raise TypeError(
            f"{child!r} has no Numba value_and_grad (or logdensity and grad), so its flow-"
            "transformed target cannot run on backend='numba'"
        )
    with_data = child.data is not None
    if vg is not None and with_data:

        def child_vg(x, d):
            return vg(x, d)
    elif vg is not None:

        def child_vg(x, d):
            return vg(x)
    elif with_data:

        def child_vg(x, d):
            return ld(x, d), gr(x, d)
    else:

        def child_vg(x, d):
            return ld(x), gr(x)

    child_vg = numba.njit(child_vg)

    @numba.njit
    def value_and_grad(z, data):
        p = data[0]
        x, log_det = fwd(p, z)
        value, g = child_vg(x, data[1])
        return value + log_det, pull(p, z, g)

    return value_and_grad


class FlowTransformedTarget(Target):
    """A :class:`~langevin.targets.Target` on the latent ``z`` of a flow (see
    :func:`flow_transformed`); ``base`` is the target on ``x``, ``flow_params`` the flow."""

    base: Target
    flow_params: Any  # RealNVP or SplineFlow

    def to_x(self, draws: Any) -> np.ndarray:
        """Latent draws ``(..., d)`` mapped to ``x = f(z)``."""
        return latent_to_x(self.flow_params, draws)

    def to_z(self, x: Any) -> np.ndarray:
        """One point ``x`` (shape ``(d,)``) mapped to its latent ``z = f⁻¹(x)`` (e.g. to start
        chains at given points of ``x``)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.shape != (self.dim,):
            raise ValueError(f"x must have shape ({self.dim},); got {x.shape}")
        inverse = flow_functions(self.flow_params).inverse
        return np.asarray(numpy_twin(inverse)(self.flow_params, x))


def constrain_through(target: Target, params: Any):
    """The map from latent draws ``(..., d)`` to ``target``'s parameters: ``x = f(z)``, then
    the target's own ``constrain`` when it has one (its blocks otherwise). The function's
    ``flow`` attribute is ``params``."""
    blocks = target.names_or_default()

    def constrain(draws: Any) -> dict[str, np.ndarray]:
        x = latent_to_x(params, draws)
        if target.constrain is not None:
            return target.constrain(x)
        return {k: x[..., sl].reshape(x.shape[:-1] + shape) for k, (sl, shape) in blocks.items()}

    constrain.flow = params
    return constrain


def flow_transformed(
    target: Target,
    params: Any,
    *,
    name: str | None = None,
    refits: int = 0,
    refit_steps: int = 300,
    refit_learning_rate: float = 1e-3,
    refit_seed: int = 0,
) -> FlowTransformedTarget:
    """The latent target ``log π(f(z)) + log|det J_f(z)|`` of ``target`` under the flow
    ``params``, on every backend ``target`` has.

    Args:
        target: a :class:`~langevin.targets.Target` with a known ``dim`` (its Numba form
            needs a value and gradient; its JAX form a log-density).
        params: :class:`~langevin.flows.RealNVP` or :class:`~langevin.flows.SplineFlow`
            parameters (``realnvp_init``, ``spline_flow_init``, a trained flow from
            :func:`~langevin.flows.fit_reverse_kl`, or ``load_flow``).
        name: the new target's name (default ``"flow(<target name>)"``).
        refits: how many times the warm-up of each run on this target refits the flow to
            the chains' warm-up draws (NeuTra refit inside one warm-up:
            :class:`~langevin.flows.neutra.FlowRefit`; forward KL from the current flow, at
            evenly spaced steps in 20–60% of the warm-up; the flow is fixed after). The
            trace's ``constrain`` then maps through the last flow (``trace.constrain.flow``).
            0 (the default): the flow is fixed.
        refit_steps, refit_learning_rate, refit_seed: each refit's optimiser steps, Adam
            rate and seed (the seed of refit ``k`` is ``refit_seed + k``).

    Returns:
        A :class:`FlowTransformedTarget` on ``z`` (one block ``"z"``), started at
        ``f⁻¹(x₀)`` for the target's initial position ``x₀`` (0 if it has none); its
        ``constrain`` maps latent draws to the target's parameters (``x = f(z)``, then the
        target's own ``constrain`` when it has one), so ``trace.to_arviz(constrained=True)``
        reports ``x``; ``to_x(draws)`` returns ``f(z)`` as an array.

    Example:
        >>> import langevin
        >>> from langevin.flows import flow_transformed, identity_flow
        >>> latent = flow_transformed(langevin.targets.gaussian(3), identity_flow(3))
        >>> latent.dim, latent.base.dim
        (3, 3)
    """
    if not isinstance(target, Target):
        raise TypeError(f"target must be a langevin.Target; got {type(target).__name__}")
    if target.dim is None:
        raise ValueError("target: its dimension is unknown; build it with dim= (or names=)")
    dim = target.dim
    params = check_flow(params, dim, "params")
    x0 = target.initial_position
    fns = flow_functions(params)
    z0 = (np.zeros(dim) if x0 is None
          else np.asarray(numpy_twin(fns.inverse)(params, np.asarray(x0, float))))  # fmt: skip
    if not np.all(np.isfinite(z0)):
        z0 = np.zeros(dim)
    constrain = constrain_through(target, params)
    numba_fns = None
    if target.has_numba:
        numba_fns = {"value_and_grad": _numba_value_and_grad(target, fns)}
    jax_fns = None
    if target.has_jax:
        fwd_j = jax_twin(fns.forward_and_log_det)

        def logdensity(z):
            from langevin.backends import jax_backend, jax_ops

            p = params_to_jax(params, z.dtype)
            form = jax_backend.bind_target(target, dim)
            x, log_det = fwd_j(p, z)
            return jax_ops.logdensity(form.build(form.data), x) + log_det

        jax_fns = {"logdensity": logdensity}
    new = FlowTransformedTarget(
        dim=dim,
        names={"z": dim},
        numba=numba_fns,
        jax=jax_fns,
        data=(params, target.data) if target.has_numba else None,
        initial_position=z0,
        name=name or f"flow({target.name})",
        constrain=constrain,
    )
    if target.has_jax:
        new._cache = _JaxFormCache(lambda: _jax_form(target, params, dim))
    new.base = target
    new.flow_params = params
    if isinstance(refits, bool) or not isinstance(refits, (int, np.integer)) or refits < 0:
        raise ValueError(f"refits must be an int >= 0; got {refits!r}")
    if refits:
        import functools

        from langevin.flows.neutra import FlowRefit

        FlowRefit.check_settings(refit_steps, refit_learning_rate, refit_seed)
        new.warmup_components = (functools.partial(
            FlowRefit, latent=new, rounds=int(refits), train_steps=int(refit_steps),
            learning_rate=float(refit_learning_rate), seed=int(refit_seed)),)  # fmt: skip
    return new
