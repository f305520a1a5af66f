"""The JAX engine: ``vmap`` over the members of a population, a compiled loop over the steps
of a chunk, ``jit``. One engine for ``sample()`` (members are chains) and SMC (particles).

* The kernel's ``step_math`` is twinned with ``xp = jax_ops`` and traced; the chunk runner is
  jitted once per (kernel class, adaptation component, target form). Step sizes, parameters
  (pytrees), the target's data (tempering's exponent included), the number of steps and
  the noise are runtime arguments: another value compiles nothing. Chunks have a fixed
  length; a shorter one runs through a dynamic trip count, not a new shape.
* Noise is drawn in blocks of the chunk length, one block per member from
  ``fold_in(key_m, b)`` for the block ``b`` of absolute steps (one large draw instead of
  small ones every step; a step's noise does not depend on where chunks start), each noise
  kind drawing itself
  (:mod:`langevin.spec`). Explicit noise arrays can be passed instead (agreement tests,
  common random numbers, SMC's host noise).
* No per-step bookkeeping for divergence: a member whose state turns non-finite stays so
  without affecting the others, and the first such step is found in the recorded buffers.
* The dtype follows the positions the user passes: float32 stays float32. Global JAX
  flags are never changed: to sample in float64, enable ``jax_enable_x64`` yourself.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from langevin.adaptation.dual_averaging import DualAveraging
from langevin.backends import jax_ops
from langevin.backends.base import ChunkResult, check_kernel_and_target
from langevin.backends.portable import make_twin
from langevin.spec import check_noise
from langevin.targets.capabilities import BASE_FORM, SLOTS, TargetForm

__all__ = [
    "name", "bind_target", "prepare", "init", "init_population", "run", "chain_keys",
    "chunk_length", "broadcast_params", "noise_sources", "default_float", "canonical_float",
    "first_chunk", "aligned_chunks", "next_chunk", "map_members", "member_mesh",
    "place_members", "to_host", "mesh_failure", "failures_named",
]  # fmt: skip

name = "jax"

_TWINS: dict = {}
#: compiled runners, keyed on what they compute; the oldest are dropped past this many
_RUNNERS: OrderedDict = OrderedDict()
_MAX_RUNNERS = 64


class Prepared(NamedTuple):
    kernel: Any
    form: TargetForm
    runner: Any
    init: Any
    dim: int
    dtype: Any
    adaptation_cls: type
    #: a one-axis mesh the member axis is sharded over (None: one device, the usual path)
    mesh: Any = None
    #: the target's data replicated on every device of ``mesh`` (None without a mesh)
    data: Any = None


# -- the target's JAX form ----------------------------------------------------------------------
def _value_and_grad_of(fn):
    """``(x, *args) -> (fn(x, *args), ∇_x fn)``."""
    return jax.value_and_grad(fn, argnums=0)


def bind_target(target, dim: int | None = None, dtype=None) -> TargetForm:
    """The JAX form of a :class:`~langevin.targets.Target`: its functions, gradients by
    autodiff where it gives none (see :mod:`langevin.targets.capabilities`)."""
    if isinstance(target, TargetForm):
        return target
    if not target.has_jax:
        raise TypeError(
            f"{target!r} has no JAX form, so it cannot run on backend='jax'. Build it with "
            "Target.from_jax(logdensity), or use backend='numba' for numba functions."
        )
    key = ("jax-form",)
    if key not in target._cache:
        given = dict(target.jax_functions)
        fns = dict(given)
        if "logdensity" in given:
            fns.setdefault("value_and_grad", jax.value_and_grad(given["logdensity"]))
            fns.setdefault("grad", jax.grad(given["logdensity"]))
        for cap in ("loglik", "logprior"):  # given as values on JAX; gradients by autodiff
            if cap in given:
                fns[cap] = _value_and_grad_of(given[cap])
        functions = tuple(fns.get(n) for n in SLOTS)
        target._cache[key] = TargetForm(
            key=("jax", functions),
            data=None,
            build=lambda data: (BASE_FORM, *functions, data),
            numba_type=None,
            capabilities=target.capabilities("jax"),
        )
    form = target._cache[key]
    if dim is not None and dtype is not None and "logdensity" in target.jax_functions:
        checked = ("jax-dtype-checked", dim, jnp.dtype(dtype))
        if checked not in target._cache:
            _check_dtypes(target.jax_functions["logdensity"], dim, jnp.dtype(dtype))
            target._cache[checked] = True
    return form


def _check_dtypes(logdensity, dim, dtype):
    """Refuse a log-density whose output dtype differs from the position's (mixed dtypes)."""
    try:
        out = jax.eval_shape(logdensity, jax.ShapeDtypeStruct((dim,), dtype))
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


# -- the compiled pieces ----------------------------------------------------------------------
def _draw(spec, key, dtype, length):
    """``length`` steps of the declared noise from one key, time-major."""
    keys = jax.random.split(key, len(spec))
    return type(spec)(*(d.draw_jax(k, (length,), dtype) for d, k in zip(spec, keys)))


def chunk_length(chains: int, dim: int, kernel) -> int:
    """Steps per compiled chunk: up to 1000, fewer when the chunk's noise would pass ~32 MiB."""
    per_step = chains * sum(max(1, int(np.prod(d.shape))) for d in kernel.noise(dim))
    return int(max(10, min(1000, (32 * 2**20) // (8 * per_step))))


def _build_runner(kernel_cls, adaptation_cls, build_target, spec):
    step = make_twin(kernel_cls.step_math, jax_ops, lambda f: f, _TWINS)
    ad_update = make_twin(adaptation_cls.update_math, jax_ops, lambda f: f, _TWINS)
    ad_step_size = make_twin(adaptation_cls.step_size_math, jax_ops, lambda f: f, _TWINS)

    def one_step(state, noise, h, params, adapt, ad, target):
        h = jnp.where(adapt, ad_step_size(ad), h)
        return step(state, noise, h, params, target)

    step_members = jax.vmap(one_step, in_axes=(0, 0, 0, 0, None, 0, None))
    update_members = jax.vmap(ad_update, in_axes=(0, 0, None))

    def batched_step(state, noise, h, params, adapt, ad, ad_params, target):
        new_state, info = step_members(state, noise, h, params, adapt, ad, target)
        # `adapt` is one flag for all members, so this stays a branch under vmap: sampling
        # steps skip the adaptation arithmetic instead of computing and discarding it.
        new_ad = jax.lax.cond(adapt, lambda: update_members(ad, info, ad_params), lambda: ad)
        return new_state, new_ad, info

    def chunk(state, ad, noise_or_keys, start, n_steps, step_size, params, adapt, ad_params,
              data, length, explicit):  # fmt: skip
        target = build_target(data)
        dtype = state.position.dtype
        if explicit:
            noise = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), noise_or_keys)
        else:
            # Noise in blocks of `length` steps, one draw per member and block (one large
            # threefry call instead of a fold_in, a split and small draws per member per
            # step), time-major. Block b covers steps [b·length, (b+1)·length) and is drawn
            # from fold_in(key, b): the noise of a step does not depend on where chunks
            # start (checkpoints, warm-up windows, a resumed run), so one seed gives one chain.
            def block(b):
                keys = jax.vmap(lambda k: jax.random.fold_in(k, b))(noise_or_keys)
                return jax.vmap(lambda k: _draw(spec, k, dtype, length), out_axes=1)(keys)

            first_block = start // length
            offset = start - first_block * length
            first = block(first_block)

            def within():  # the chunk lies in one block, from row `offset` on
                return jax.tree_util.tree_map(lambda a: jnp.roll(a, -offset, axis=0), first)

            def spanning():
                both = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), first,
                                              block(first_block + 1))  # fmt: skip
                return jax.tree_util.tree_map(
                    lambda a: jax.lax.dynamic_slice_in_dim(a, offset, length, axis=0), both
                )

            def unaligned():
                return jax.lax.cond(offset + n_steps <= length, within, spanning)

            # aligned (the usual chunk): the block as drawn, no copy
            noise = jax.lax.cond(offset == 0, lambda: first, unaligned)
        info_shape = jax.eval_shape(
            lambda: batched_step(state, jax.tree_util.tree_map(lambda a: a[0], noise),
                                 step_size, params, adapt, ad, ad_params, target)[2]
        )  # fmt: skip
        members = step_size.shape[0]
        buffers = (
            jnp.full((length, members, state.position.shape[1]), jnp.nan, dtype),
            jnp.full((length, members), jnp.nan, dtype),
            jax.tree_util.tree_map(lambda s: jnp.zeros((length, members), s.dtype), info_shape),
        )

        def body(t, carry):
            state, ad, (pos_buf, lp_buf, info_buf) = carry
            nz = jax.tree_util.tree_map(lambda a: a[t], noise)
            state, ad, info = batched_step(state, nz, step_size, params, adapt, ad, ad_params,
                                           target)  # fmt: skip
            pos_buf = pos_buf.at[t].set(state.position)
            lp_buf = lp_buf.at[t].set(state.logdensity)
            info_buf = jax.tree_util.tree_map(lambda b, v: b.at[t].set(v), info_buf, info)
            return state, ad, (pos_buf, lp_buf, info_buf)

        return jax.lax.fori_loop(0, n_steps, body, (state, ad, buffers))

    return jax.jit(chunk, static_argnames=("length", "explicit"))


def _build_init(kernel_cls, build_target):
    init_math = make_twin(kernel_cls.init_math, jax_ops, lambda f: f, _TWINS)

    def init_all(x, noise, params, data):
        target = build_target(data)
        return jax.vmap(lambda x1, n1, p1: init_math(x1, n1, p1, target))(x, noise, params)

    return jax.jit(init_all)


def prepare(kernel, target, dim: int, dtype, adaptation_cls: type | None = None,
            mesh=None) -> Prepared:  # fmt: skip
    """Check that ``kernel`` and ``target`` can run here; fetch (or build) the jitted runner.

    With ``mesh`` (a one-axis :class:`jax.sharding.Mesh`), :func:`init` and :func:`run` place
    the member axis of every batched argument on its devices (:func:`place_members`) and the
    same jitted runner runs each device's members there: a member's noise comes from its own
    key whatever device it is on, so the draws are those of one device."""
    check_kernel_and_target(kernel, target, name)
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"initial_position must be a float array; got dtype {dtype}")
    check_noise(kernel.noise(dim), f"{kernel.name}.noise")
    check_noise(kernel.init_noise(dim), f"{kernel.name}.init_noise")
    form = bind_target(target, dim, dtype)
    adaptation_cls = adaptation_cls or DualAveraging
    spec = kernel.noise(dim)
    key = (type(kernel), adaptation_cls, form.key, spec)
    if key not in _RUNNERS:
        _RUNNERS[key] = (_build_runner(type(kernel), adaptation_cls, form.build, spec),
                         _build_init(type(kernel), form.build))  # fmt: skip
        while len(_RUNNERS) > _MAX_RUNNERS:
            _RUNNERS.popitem(last=False)
    runner, init_fn = _RUNNERS[key]
    if mesh is None:
        return Prepared(kernel, form, runner, init_fn, dim, dtype, adaptation_cls)
    mesh = member_mesh(mesh)
    from jax.sharding import NamedSharding, PartitionSpec

    everywhere = NamedSharding(mesh, PartitionSpec())
    if everywhere.is_fully_addressable:
        data = jax.device_put(form.data, everywhere)
    else:  # several processes, each with the whole data: each places its own copies
        data = jax.tree_util.tree_map(lambda a: _everywhere(np.asarray(a), everywhere),
                                      form.data)  # fmt: skip
    runner = _sharded_runner(runner, mesh)
    return Prepared(kernel, form, runner, init_fn, dim, dtype, adaptation_cls, mesh, data)


def _everywhere(host: np.ndarray, sharding):
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


_SHARDED: OrderedDict = OrderedDict()


def _sharded_runner(runner, mesh):
    """The chunk runner run by every device of ``mesh`` on its own block of members
    (``shard_map``): the same compiled loop as one device's, on fewer members, with no
    communication at all (under plain ``jit`` a per-member trip count, HMC's, would make XLA
    agree on the longest loop across devices at every step). Called like the runner."""
    key = (runner, mesh.devices.tobytes(), mesh.axis_names)
    if key in _SHARDED:
        return _SHARDED[key]
    from jax.sharding import PartitionSpec

    axis = mesh.axis_names[0]
    member, step_major, replicated = PartitionSpec(axis), PartitionSpec(None, axis), PartitionSpec()
    compiled: dict = {}

    def call(state, ad, source, start, n_steps, h, params, adapt, ad_params, data, *, length,
             explicit):  # fmt: skip
        if (length, explicit) not in compiled:

            def local(state, ad, source, start, n_steps, h, params, adapt, ad_params, data):
                return runner(state, ad, source, start, n_steps, h, params, adapt, ad_params,
                              data, length=length, explicit=explicit)  # fmt: skip

            compiled[length, explicit] = jax.jit(_shard_map(
                local, mesh,
                in_specs=(member, member, member, replicated, replicated, member, member,
                          replicated, replicated, replicated),
                out_specs=(member, member, step_major),
            ))  # fmt: skip
        return compiled[length, explicit](state, ad, source, start, n_steps, h, params, adapt,
                                          ad_params, data)  # fmt: skip

    _SHARDED[key] = call
    while len(_SHARDED) > _MAX_RUNNERS:
        _SHARDED.popitem(last=False)
    return call


def _shard_map(fn, mesh, in_specs, out_specs):
    """``jax.shard_map`` without its replication checks (the runner's outputs are all
    per-member); JAX before 0.6 has it as ``jax.experimental.shard_map.shard_map``, where
    the check is named ``check_rep``."""
    if hasattr(jax, "shard_map"):
        return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs,
                             check_vma=False)  # fmt: skip
    from jax.experimental.shard_map import shard_map

    return shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=False)


def member_mesh(mesh):
    """``mesh`` with automatic (compiler-chosen) sharding of its axis: ``jax.make_mesh`` makes
    explicit axes in recent JAX, under which ``vmap`` refuses the engine's unmapped target
    functions; where each member lives is set by :func:`place_members` either way."""
    auto = getattr(jax.sharding, "AxisType", None)
    if auto is None or getattr(mesh, "axis_types", None) is None:
        return mesh
    return jax.sharding.Mesh(mesh.devices, mesh.axis_names,
                             axis_types=(auto.Auto,) * len(mesh.axis_names))  # fmt: skip


def place_members(tree, mesh):
    """Every leaf of ``tree`` (leading member axis) split along that axis over ``mesh``'s
    devices with ``NamedSharding(mesh, PartitionSpec(axis))``; a leaf already placed so is
    not copied. Key arrays are placed like any other."""
    from jax.sharding import NamedSharding, PartitionSpec

    axis = mesh.axis_names[0]

    def put(a):
        sharding = NamedSharding(mesh, PartitionSpec(axis, *[None] * (np.ndim(a) - 1)))
        if isinstance(a, jax.Array) and (sharding.is_fully_addressable
                                         or not a.is_fully_addressable):  # fmt: skip
            return jax.device_put(a, sharding)  # no copy where it already is
        if sharding.is_fully_addressable:
            return jax.device_put(np.asarray(a), sharding)
        # several processes, each holding the whole value: each places its own blocks
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(put(jax.random.key_data(a)),
                                            impl=jax.random.key_impl(a))  # fmt: skip
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree_util.tree_map(put, tree)


def mesh_failure(exc: BaseException, mesh, poll_seconds: float = 3.0) -> RuntimeError | None:
    """A ``RuntimeError`` naming what failed, for a JAX runtime error ``exc`` raised by a
    computation over ``mesh``; None for any other exception (or no mesh).

    What JAX tells: when a process of a ``jax.distributed`` job dies, the others' collectives
    fail at once (gloo on CPU: "Connection closed by peer" with an address, not a process),
    and JAX's coordination service knows which processes still send heartbeats (asked here
    through ``jax._src.distributed``'s client, ``get_live_nodes``, polled for up to
    ``poll_seconds``: it may learn of the death a moment after the collective fails). The
    error names the processes that stopped and the mesh devices they held; the service then
    ends the surviving processes itself after its heartbeat timeout
    (``jax.distributed.initialize(heartbeat_timeout_seconds=...)``, 100 s by default). Within
    one process, XLA's message is all there is (it names a device when XLA does): None, the
    error stands as it is."""
    if mesh is None or not isinstance(exc, getattr(jax.errors, "JaxRuntimeError", RuntimeError)):
        return None
    devices = list(mesh.devices.flat)
    processes = sorted({d.process_index for d in devices})
    if len(processes) == 1:
        return None
    import time

    where = f"a computation over the mesh of {len(devices)} devices ({len(processes)} processes)"
    dead = None
    deadline = time.monotonic() + poll_seconds
    while dead is None or (not dead and time.monotonic() < deadline):
        try:
            from jax._src import distributed

            live = distributed.global_state.client.get_live_nodes(processes)
            dead = [p for p in processes if p not in live]
        except Exception:  # no client, or a JAX without get_live_nodes: nothing to name
            break
        if not dead:
            time.sleep(0.2)
    if dead:
        held = "; ".join(
            f"process {p}: {', '.join(str(d) for d in devices if d.process_index == p)}"
            for p in dead
        )  # fmt: skip
        return RuntimeError(
            f"{where} failed because process(es) {dead} stopped (JAX's coordination service "
            f"has no heartbeat from them; devices {held}). JAX will end this process too after "
            f"its heartbeat timeout. The error: {exc}"
        )
    return RuntimeError(f"{where} failed; JAX did not say which device or process: {exc}")


@contextlib.contextmanager
def failures_named(mesh):
    """Context manager: a JAX runtime error of a computation over ``mesh`` re-raised as the
    :func:`mesh_failure` naming what failed (where JAX tells); other errors unchanged."""
    try:
        yield
    except Exception as exc:
        failure = mesh_failure(exc, mesh)
        if failure is None:
            raise
        raise failure from exc


def to_host(tree):
    """NumPy copies of a tree of (possibly sharded) arrays, whole in every process: gathered
    from the local devices, and from the other processes' devices under ``jax.distributed``."""

    def get(a):
        if not isinstance(a, jax.Array) or a.is_fully_addressable:
            return np.asarray(a)
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(a, tiled=True))

    return jax.tree_util.tree_map(get, tree)


_MAPS: OrderedDict = OrderedDict()


def map_members(fn, args: tuple, axes: tuple, *, threads: int | None = None,
                mesh=None) -> tuple:  # fmt: skip
    """``fn`` (portable) on every member: ``jit(vmap(fn, in_axes=axes))``; a
    :class:`~langevin.targets.capabilities.TargetForm` argument is built inside the trace from
    its (traced) data. See ``numba_backend.map_members``.

    With ``mesh`` (a one-axis mesh), the arguments mapped over (axis 0) are split over its
    devices (:func:`place_members`) and each device maps ``fn`` over its own members under
    ``shard_map`` (no communication); the unmapped ones (a form's data included) must be the
    same on every device, and are replicated."""
    forms = {i: a for i, a in enumerate(args) if isinstance(a, TargetForm)}
    mesh_key = None if mesh is None else (mesh.devices.tobytes(), mesh.axis_names)
    key = (fn, tuple(axes), tuple((i, f.key) for i, f in forms.items()), mesh_key)
    if key not in _MAPS:
        twin = make_twin(fn, jax_ops, lambda f: f, _TWINS)

        def call(*a):
            return twin(*(forms[i].build(v) if i in forms else v for i, v in enumerate(a)))

        mapped = jax.vmap(call, in_axes=tuple(axes))
        if mesh is not None:
            from jax.sharding import PartitionSpec

            member, replicated = PartitionSpec(mesh.axis_names[0]), PartitionSpec()
            specs = tuple(member if ax == 0 else replicated for ax in axes)
            mapped = _shard_map(mapped, mesh, in_specs=specs, out_specs=member)
        _MAPS[key] = jax.jit(mapped)
        while len(_MAPS) > _MAX_RUNNERS:
            _MAPS.popitem(last=False)
    values = tuple(forms[i].data if i in forms else a for i, a in enumerate(args))
    if mesh is not None:
        values = tuple(place_members(v, mesh) if ax == 0 else v for v, ax in zip(values, axes))
    return _MAPS[key](*values)


def _host_leaf(v, dtype):
    """``v`` typed as the engine types its arguments (bools stay bool, integers int32 — they
    count and bound loops, with x64 on or off — floats ``dtype``): a NumPy array, or a JAX
    array where ``v`` is one (no copy to the host). A jitted call converts NumPy arguments
    itself for far less than one dispatched ``jnp.asarray`` per leaf: :func:`run`'s own
    conversions were 2-3 ms of CPU per call (12-15% of a 1000-step SGLD chunk at b = 100)."""
    if isinstance(v, jax.Array):
        if v.dtype == bool:
            return v
        return jnp.asarray(v, jnp.int32 if jnp.issubdtype(v.dtype, jnp.integer) else dtype)
    a = np.asarray(v)
    if a.dtype == bool:
        return a
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int32)
    # a float64 parameter beyond float32's range (a threshold of 1e300) is +-inf there,
    # which is what it means; no overflow warning
    with np.errstate(over="ignore"):
        return a.astype(np.dtype(dtype))


def _leaf(v, dtype):
    return jnp.asarray(_host_leaf(v, dtype))


def _tree_to(tree, dtype):
    return jax.tree_util.tree_map(lambda v: _leaf(v, dtype), tree)


def _host_tree(tree, dtype, members: int | None = None):
    """:func:`_host_leaf` on every leaf; with ``members``, each broadcast to a leading
    member axis (one value for all, as :func:`broadcast_params`)."""

    def leaf(v):
        a = _host_leaf(v, dtype)
        if members is None:
            return a
        shape = (members, *np.shape(v))
        return jnp.broadcast_to(a, shape) if isinstance(a, jax.Array) else np.broadcast_to(a, shape)

    return jax.tree_util.tree_map(leaf, tree)


def broadcast_params(params, members: int, dtype=None):
    """The kernel's params (a pytree) with a leading member axis, one value for all."""
    dtype = dtype or jnp.zeros(()).dtype
    return jax.tree_util.tree_map(
        lambda v: jnp.broadcast_to(_leaf(v, dtype), (members, *np.shape(v))), params
    )


_INIT_DRAWS: OrderedDict = OrderedDict()


def _init_noise_draw(spec, dtype):
    """The jitted draw of the init noise from each member's key (its own stream: the key
    folded with 2³¹ − 1). Jitted once per noise declaration and dtype: run eagerly, a loop in
    a drawer (``Index``'s Floyd step is a ``fori_loop``) was traced and compiled again at
    every ``init``, 0.5-0.9 s of every ``sample`` call."""
    key = (spec, np.dtype(dtype).name)
    if key in _INIT_DRAWS:
        return _INIT_DRAWS[key]

    def draw(keys):
        init_keys = jax.vmap(lambda k: jax.random.fold_in(k, 2**31 - 1))(keys)
        noise = jax.vmap(lambda k: _draw(spec, k, dtype, 1))(init_keys)
        return jax.tree_util.tree_map(lambda a: a[:, 0], noise)

    _INIT_DRAWS[key] = fn = jax.jit(draw)
    while len(_INIT_DRAWS) > _MAX_RUNNERS:
        _INIT_DRAWS.popitem(last=False)
    return fn


def init(prepared: Prepared, positions, params=None, noise=None, keys=None):
    """Batched initial state for positions ``(members, dim)``. Init noise (if the kernel
    declares any) comes from ``noise`` (arrays ``(members, ...)``) or ``keys``."""
    x = jnp.asarray(positions, prepared.dtype)
    members = x.shape[0]
    kernel = prepared.kernel
    params = (broadcast_params(kernel.params(), members, prepared.dtype) if params is None
              else _tree_to(params, prepared.dtype))  # fmt: skip
    spec = kernel.init_noise(prepared.dim)
    mesh = prepared.mesh
    if mesh is not None:
        x, params = place_members((x, params), mesh)
    if noise is None:
        if keys is None:
            keys = chain_keys(0, members)
        if mesh is not None:
            keys = place_members(keys, mesh)
        noise = _init_noise_draw(spec, prepared.dtype)(keys)
    else:
        noise = _tree_to(noise, prepared.dtype)
        if mesh is not None:
            noise = place_members(noise, mesh)
    data = prepared.form.data if mesh is None else prepared.data
    return prepared.init(x, noise, params, data)


def init_population(prepared: Prepared, positions, params, noise):
    """Batched initial states of a large population (SMC's particles), with its init noise
    given: :func:`init`, which is compiled over the members already."""
    return init(prepared, positions, params, noise)


def chain_keys(seed: int, n_chains: int):
    """One independent key per member from an integer seed."""
    return jax.random.split(jax.random.key(seed), n_chains)


def noise_sources(seed_sequence: np.random.SeedSequence, members: int):
    """One independent key per member."""
    return chain_keys(int(seed_sequence.generate_state(1)[0]), members)


def default_float():
    """JAX's default float dtype (float32 unless the user enabled ``jax_enable_x64``)."""
    return jnp.zeros(()).dtype


def canonical_float(dtype):
    """The float dtype JAX computes in for positions of ``dtype``: float64 becomes float32
    unless ``jax_enable_x64`` is on (what ``jnp.asarray`` does with a NumPy float64 array)."""
    return np.dtype(jax.dtypes.canonicalize_dtype(dtype))


#: The driver ends chunks at multiples of the chunk length, so each chunk's noise is one block.
aligned_chunks = True


def first_chunk(members: int, dim: int, kernel) -> int:
    return chunk_length(members, dim, kernel)


def next_chunk(members: int, dim: int, kernel, seconds_per_step: float) -> int:
    return chunk_length(members, dim, kernel)


def run(
    prepared: Prepared,
    state,
    n_steps: int,
    step_size: np.ndarray,
    *,
    adapt: bool = False,
    adaptation=None,
    adaptation_params=None,
    noise=None,
    keys=None,
    rngs=None,
    start: int = 0,
    active: np.ndarray | None = None,
    params=None,
    threads: int | None = None,
) -> ChunkResult:
    """Run every member ``n_steps`` steps (at most :func:`chunk_length` unless ``noise`` is given).

    Args:
        noise: the kernel's ``Noise`` of arrays shaped ``(members, n_steps, ...)``; drawn from
            ``keys`` (alias ``rngs``) when None (one per member; step ``s`` takes row
            ``s % L`` of the block drawn from ``fold_in(key, s // L)``, ``L`` the chunk
            length, wherever the chunk starts).
        active: ``(members,)`` mask; inactive members (stopped after a divergence) do not
            move and their outputs are NaN.
        params: batched params (leading member axis); default the kernel's for every member.
        threads: unused here (XLA schedules the work).
    """
    dtype = prepared.dtype
    kernel = prepared.kernel
    ad_cls = prepared.adaptation_cls
    members = int(np.shape(state.position)[0])
    # the arguments as NumPy arrays where they are not JAX arrays already: the jitted call
    # converts them (see _host_leaf)
    h = (jnp.broadcast_to(jnp.asarray(step_size, dtype), (members,))
         if isinstance(step_size, jax.Array)
         else np.broadcast_to(np.asarray(step_size, np.dtype(dtype)), (members,)))  # fmt: skip
    if adaptation is None:
        adaptation = ad_cls.State(*(np.zeros(members) for _ in ad_cls.State._fields))
    adaptation = _host_tree(adaptation, dtype)
    if adaptation_params is None:
        adaptation_params = ad_cls(kernel, None).params()
    ad_params = type(adaptation_params)(*(
        jnp.asarray(v, dtype) if isinstance(v, jax.Array) else np.asarray(v, np.dtype(dtype))
        for v in adaptation_params))  # fmt: skip
    params = (_host_tree(kernel.params(), dtype, members) if params is None
              else _host_tree(params, dtype))  # fmt: skip
    explicit = noise is not None
    if explicit:
        source = jax.tree_util.tree_map(
            lambda a: jnp.asarray(a) if jnp.issubdtype(np.asarray(a).dtype, jnp.integer)
            else jnp.asarray(a, dtype), noise)  # fmt: skip
        length = int(jax.tree_util.tree_leaves(source)[0].shape[1])
    else:
        length = chunk_length(members, prepared.dim, kernel)
        if n_steps > length:
            raise ValueError(f"n_steps must be at most {length} per chunk; got {n_steps}")
        source = keys if keys is not None else rngs
    data = prepared.form.data
    if prepared.mesh is not None:  # each device runs its members (no copy if already there)
        state, adaptation, h, params, source = place_members(
            (state, adaptation, h, params, source), prepared.mesh)  # fmt: skip
        data = prepared.data
    state, ad, (pos, lp, info) = prepared.runner(
        state, adaptation, source, np.asarray(start, np.int32), np.asarray(n_steps, np.int32),
        h, params, np.asarray(adapt, bool), ad_params, data, length=length, explicit=explicit,
    )  # fmt: skip
    if prepared.mesh is not None:  # every process gets every member's results
        ad, pos, lp, info = to_host((ad, pos, lp, info))
    pos = np.asarray(pos)[:n_steps].swapaxes(0, 1).copy()
    lp = np.asarray(lp)[:n_steps].swapaxes(0, 1).copy()
    info = {k: np.asarray(v)[:n_steps].swapaxes(0, 1).copy() for k, v in info._asdict().items()}
    active = np.ones(members, bool) if active is None else np.asarray(active, bool)
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
        adaptation=ad,
        position=pos,
        logdensity=lp,
        info=info,
        n_done=n_done.astype(np.int64),
        diverged=diverged,
    )
