"""The JAX backend: ``vmap`` over chains, a compiled loop over the steps of a chunk, ``jit``.

* The kernel's ``step_math`` is twinned with ``xp = jax_ops`` and traced; the chunk runner is
  jitted once per (kernel class, target) and cached on the target. Step sizes, kernel
  parameters, the number of steps in a chunk and the noise are runtime arguments, so another
  step size, seed or number of draws compiles nothing. Chunks have a fixed length; the last
  one runs fewer steps through a dynamic trip count (``fori_loop``), not a new shape.
* Noise is drawn one chunk at a time, one block per chain from ``fold_in(key_c, start)``
  (one large draw instead of small ones every step). Explicit noise arrays can be passed
  instead (cross-backend tests, common random numbers).
* No per-step bookkeeping for divergence: a chain whose state turns non-finite stays so
  without affecting the others, and the first such step is found in the recorded buffers.
* The dtype follows the positions the user passes: float32 stays float32. Global JAX
  flags are never changed: to sample in float64, enable ``jax_enable_x64`` yourself.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from langevin.adaptation.dual_averaging import (
    DualAveragingParams,
    DualAveragingState,
    dual_averaging_update,
)
from langevin.backends import jax_ops
from langevin.backends.base import ChunkResult
from langevin.backends.portable import make_twin
from langevin.kernels.base import Normal, Uniform

__all__ = ["name", "prepare", "init", "run", "chain_keys", "chunk_length"]

name = "jax"

_TWINS: dict = {}


class Prepared(NamedTuple):
    kernel: Any
    runner: Any
    init: Any
    dim: int
    dtype: Any


def _draw(spec, key, dtype, length):
    """``length`` steps of the kernel's noise from one key, time-major."""
    keys = jax.random.split(key, len(spec))
    fields = []
    for d, k in zip(spec, keys):
        shape = (length, *d.shape)
        if isinstance(d, Normal):
            fields.append(jax.random.normal(k, shape, dtype))
        elif isinstance(d, Uniform):
            fields.append(jax.random.uniform(k, shape, dtype))
        else:
            raise TypeError(f"unknown noise distribution {d!r}")
    return type(spec)(*fields)


def chunk_length(chains: int, dim: int, kernel) -> int:
    """Steps per compiled chunk: up to 1000, fewer when the chunk's noise would pass ~32 MiB."""
    per_step = chains * sum(max(1, int(np.prod(d.shape))) for d in kernel.noise(dim))
    return int(max(10, min(1000, (32 * 2**20) // (8 * per_step))))


def _build_runner(kernel_cls, vg, spec):
    step = make_twin(kernel_cls.step_math, jax_ops, lambda f: f, _TWINS)
    da_update = make_twin(dual_averaging_update, jax_ops, lambda f: f, _TWINS)

    def one_step(state, noise, h, params, adapt, da, da_params):
        h = jnp.where(adapt, jnp.exp(da.log_step), h)
        return step(state, noise, h, params, vg)

    step_chains = jax.vmap(one_step, in_axes=(0, 0, 0, 0, None, 0, None))
    update_chains = jax.vmap(da_update, in_axes=(0, 0, None))

    def batched_step(state, noise, h, params, adapt, da, da_params):
        new_state, info = step_chains(state, noise, h, params, adapt, da, da_params)
        # `adapt` is one flag for all chains, so this stays a branch under vmap: sampling
        # steps skip the dual-averaging arithmetic instead of computing and discarding it.
        new_da = jax.lax.cond(
            adapt, lambda: update_chains(da, info.acceptance_rate, da_params), lambda: da
        )
        return new_state, new_da, info

    def chunk(state, da, noise_or_keys, start, n_steps, step_size, params, adapt, da_params,
              length, explicit):  # fmt: skip
        dtype = state.position.dtype
        if explicit:
            noise = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), noise_or_keys)
        else:
            # The whole chunk's noise in one draw per chain (one large threefry call instead of
            # a fold_in, a split and two small draws per chain per step), time-major.
            keys = jax.vmap(lambda k: jax.random.fold_in(k, start))(noise_or_keys)
            noise = jax.vmap(lambda k: _draw(spec, k, dtype, length), out_axes=1)(keys)
        info_shape = jax.eval_shape(
            lambda: batched_step(state, jax.tree_util.tree_map(lambda a: a[0], noise), step_size,
                                 params, adapt, da, da_params)[2]
        )  # fmt: skip
        n_chains = step_size.shape[0]
        buffers = (
            jnp.full((length, n_chains, state.position.shape[1]), jnp.nan, dtype),
            jnp.full((length, n_chains), jnp.nan, dtype),
            jax.tree_util.tree_map(lambda s: jnp.zeros((length, n_chains), s.dtype), info_shape),
        )

        # No per-step bookkeeping for divergence: a chain whose state turns non-finite stays
        # non-finite without touching the others (vmap), and `run` finds the first such step
        # in the recorded buffers afterwards, as the Numba loop would have stopped there.
        def body(t, carry):
            state, da, (pos_buf, lp_buf, info_buf) = carry
            nz = jax.tree_util.tree_map(lambda a: a[t], noise)
            state, da, info = batched_step(state, nz, step_size, params, adapt, da, da_params)
            pos_buf = pos_buf.at[t].set(state.position)
            lp_buf = lp_buf.at[t].set(state.logdensity)
            info_buf = jax.tree_util.tree_map(lambda b, v: b.at[t].set(v), info_buf, info)
            return state, da, (pos_buf, lp_buf, info_buf)

        return jax.lax.fori_loop(0, n_steps, body, (state, da, buffers))

    return jax.jit(chunk, static_argnames=("length", "explicit"))


def prepare(kernel, target, dim: int, dtype) -> Prepared:
    """Check the target can run here; fetch (or build) the jitted chunk runner."""
    if not target.has_jax:
        raise TypeError(
            f"{target!r} has no JAX form, so it cannot run on backend='jax'. Build it with "
            "Target.from_jax(logdensity), or use backend='numba' for numba functions."
        )
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"initial_position must be a float array; got dtype {dtype}")
    if ("jax-dtype-checked", dim, dtype) not in target._cache:
        _check_dtypes(target, dim, dtype)
        target._cache[("jax-dtype-checked", dim, dtype)] = True
    key = ("jax", type(kernel), dim)
    if key not in target._cache:
        # One jitted runner and one jitted init per (kernel class, target): everything else
        # (step size, seed, draws, dtype-preserving values) is a runtime argument.
        vg = jax.value_and_grad(target.jax_logdensity)
        spec = kernel.noise(dim)
        init_math = make_twin(type(kernel).init_math, jax_ops, lambda f: f, _TWINS)
        init_fn = jax.jit(jax.vmap(lambda x, p: init_math(x, p, vg), in_axes=(0, 0)))
        target._cache[key] = (_build_runner(type(kernel), vg, spec), init_fn)
    runner, init_fn = target._cache[key]
    return Prepared(kernel, runner, init_fn, dim, dtype)


def _check_dtypes(target, dim, dtype):
    """Refuse a log-density whose output dtype differs from the position's (mixed dtypes)."""
    try:
        out = jax.eval_shape(target.jax_logdensity, jax.ShapeDtypeStruct((dim,), dtype))
    except Exception as exc:
        raise TypeError(
            f"the target's JAX log-density failed on a position of shape ({dim},) and dtype "
            f"{dtype}: {exc}"
        ) from exc
    if out.shape != ():
        raise ValueError(
            f"the target's log-density must return a scalar; it returned shape {out.shape}"
        )
    if out.dtype != dtype:
        raise TypeError(
            f"mixed dtypes: positions are {dtype} but the log-density returns {out.dtype}. "
            "Make the log-density follow the dtype of its argument (e.g. build constants with "
            "jnp.asarray(c, dtype=x.dtype)), or pass positions of the density's dtype."
        )


def chain_params(params, n_chains: int, dtype, per_chain: bool = False):
    """``params`` with a leading chain axis, float leaves in ``dtype``.

    ``per_chain=False``: one value for every chain (the kernel's own ``params()``), broadcast.
    ``per_chain=True``: the values already have the chain axis (e.g. a mass matrix adapted
    per chain during warm-up). Integer leaves (counts such as a number of leapfrog steps)
    stay integers, so they can bound a loop.
    """

    def one(v):
        a = np.asarray(v)
        if np.issubdtype(a.dtype, np.integer):
            out = jnp.asarray(a.astype(np.int32))
        else:
            out = jnp.asarray(a, dtype)
        return out if per_chain else jnp.broadcast_to(out, (n_chains, *out.shape))

    return type(params)(*(one(v) for v in params))


def init(prepared: Prepared, positions: np.ndarray):
    """Batched initial state for positions ``(chains, dim)``."""
    x = jnp.asarray(positions, prepared.dtype)
    params = chain_params(prepared.kernel.params(), x.shape[0], prepared.dtype)
    return prepared.init(x, params)


def chain_keys(seed: int, n_chains: int):
    """One independent key per chain from an integer seed."""
    return jax.random.split(jax.random.key(seed), n_chains)


def run(
    prepared: Prepared,
    state,
    n_steps: int,
    step_size: np.ndarray,
    *,
    adapt: bool = False,
    adaptation=None,
    adaptation_params: DualAveragingParams | None = None,
    noise=None,
    keys=None,
    start: int = 0,
    active: np.ndarray | None = None,
    params=None,
) -> ChunkResult:
    """Run every chain ``n_steps`` steps (at most :func:`chunk_length` unless ``noise`` is given).

    Args:
        noise: the kernel's ``Noise`` of arrays shaped ``(chains, n_steps, ...)``; drawn from
            ``keys`` when None (one per chain; a chunk starting at step ``start`` draws its
            noise in one block from ``fold_in(key, start)``).
        active: ``(chains,)`` mask; inactive chains (stopped after a divergence) do not move
            and their outputs are NaN.
        params: the kernel's params, one value per chain (leading chain axis), e.g. a mass
            matrix adapted during warm-up; default the kernel's ``params()`` for every chain.
    """
    dtype = prepared.dtype
    n_chains = int(np.shape(step_size)[0])
    h = jnp.asarray(step_size, dtype)
    if adaptation is None:
        adaptation = DualAveragingState(*(jnp.zeros(n_chains, dtype) for _ in range(5)))
    if adaptation_params is None:
        adaptation_params = DualAveragingParams(0.8, 0.05, 10.0, 0.75)
    da_params = DualAveragingParams(*(jnp.asarray(v, dtype) for v in adaptation_params))
    params = (
        chain_params(prepared.kernel.params(), n_chains, dtype)
        if params is None
        else chain_params(params, n_chains, dtype, per_chain=True)
    )
    explicit = noise is not None
    if explicit:
        source = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), noise)
        length = int(jax.tree_util.tree_leaves(source)[0].shape[1])
    else:
        length = chunk_length(n_chains, prepared.dim, prepared.kernel)
        if n_steps > length:
            raise ValueError(f"n_steps must be at most {length} per chunk; got {n_steps}")
        source = keys
    state, da, (pos, lp, info) = prepared.runner(
        state, adaptation, source, jnp.asarray(start, jnp.int32), jnp.asarray(n_steps, jnp.int32),
        h, params, jnp.asarray(adapt), da_params, length=length, explicit=explicit,
    )  # fmt: skip
    pos = np.asarray(pos)[:n_steps].swapaxes(0, 1).copy()
    lp = np.asarray(lp)[:n_steps].swapaxes(0, 1).copy()
    info = {k: np.asarray(v)[:n_steps].swapaxes(0, 1).copy() for k, v in info._asdict().items()}
    active = np.ones(n_chains, bool) if active is None else np.asarray(active, bool)
    bad = ~(np.isfinite(lp) & np.all(np.isfinite(pos), axis=-1))
    diverged = bad.any(axis=1) & active
    first_bad = np.where(diverged, bad.argmax(axis=1), n_steps)
    n_done = np.where(diverged, first_bad + 1, n_steps)
    n_done[~active] = 0
    # What the Numba loop leaves after a stop: nothing recorded after the divergent step.
    after = np.arange(n_steps)[None, :] >= n_done[:, None]
    pos[after] = np.nan
    lp[after] = np.nan
    for v in info.values():
        v[after] = False if v.dtype == bool else 0
    return ChunkResult(
        state=state,
        adaptation=da,
        position=pos,
        logdensity=lp,
        info=info,
        n_done=n_done.astype(np.int64),
        diverged=diverged,
    )
