"""The Numba backend: each chain a compiled loop on its own thread.

How a kernel runs here:

* The kernel's ``step_math`` is twinned with ``xp = numba_ops`` and compiled into
  :func:`_chain_loop`, a single-chain loop over the steps of one chunk. The loop is compiled
  **once per kernel and per target form** with an explicit signature in which the target's
  functions are *first-class function values* (``numba.types.FunctionType``) and its data an
  ordinary argument. A new target, data set, step size, seed or number of draws therefore
  compiles nothing, and ``cache=True`` lets a later process load the loop from disk.
* Chains run on a thread pool; the loop is ``nogil``. This replaced a ``prange`` loop over
  chains: ``parallel=True`` made the first compilation take 8.5 s instead of 2.6 s
  (measured on the 2-core CI machine), for the same run-time parallelism.
* Noise is drawn inside the compiled loop, step by step, from one ``numpy.random.Generator``
  per chain (streams spawned from one ``SeedSequence``; Numba's generator methods reproduce
  NumPy's streams exactly). A second variant of the loop reads given noise arrays instead
  (cross-backend tests, common random numbers); ``draw_noise`` draws such arrays with the
  same generators, step by step, so both variants give the same chain.
* The chain's state is initialised by the plain-NumPy twin of ``init_math``: one target
  evaluation in Python, nothing compiled.

The backend runs in float64, the dtype of the compiled signatures.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numba
import numpy as np
from numba import types as nt
from numba.core.errors import NumbaExperimentalFeatureWarning
from numba.extending import overload

from langevin.adaptation.dual_averaging import (
    DualAveragingParams,
    DualAveragingState,
    dual_averaging_update,
)
from langevin.backends import numba_ops, numpy_ops
from langevin.backends.base import ChunkResult
from langevin.backends.portable import make_twin, source_fingerprint
from langevin.kernels.base import Flag, Normal, Scalar, Uniform, Vector, field_kinds

__all__ = ["name", "prepare", "init", "run", "draw_noise"]

name = "numba"
xp: Any = numba_ops

_NUMBA_TWINS: dict = {}
_NUMPY_TWINS: dict = {}
_LOOPS: dict = {}
_POOL: ThreadPoolExecutor | None = None

_F64 = nt.float64
_VEC = nt.float64[::1]


# -- types ------------------------------------------------------------------------------------
def _field_type(kind, per_step: bool):
    """Numba type of one NamedTuple field (``per_step``: a chunk of them, leading axis T)."""
    if kind is Vector:
        return nt.float64[:, ::1] if per_step else _VEC
    if kind is Scalar:
        return nt.float64[::1] if per_step else _F64
    if kind is Flag:
        return nt.boolean[::1] if per_step else nt.boolean
    raise TypeError(f"unknown field annotation {kind!r}")


def _tuple_type(cls, per_step: bool = False):
    types_ = [_field_type(k, per_step) for k in field_kinds(cls)]
    if types_ and all(t == types_[0] for t in types_):
        return nt.NamedUniTuple(types_[0], len(types_), cls)  # how numba types homogeneous ones
    return nt.NamedTuple(types_, cls)


def _target_form(target, dim: int):
    """``(functions tuple, numba type of it)`` for the target's Numba form."""
    data = target.numba_data
    x_args = (_VEC,) if data is None else (_VEC, numba.typeof(data))
    vg_sig = nt.Tuple((_F64, _VEC))(*x_args)
    if target.numba_value_and_grad is not None:
        fns = [(target.numba_value_and_grad, vg_sig, "value_and_grad")]
    else:
        fns = [
            (target.numba_logdensity, _F64(*x_args), "logdensity"),
            (target.numba_grad, _VEC(*x_args), "grad"),
        ]
    values, types_ = [], []
    for fn, sig, label in fns:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NumbaExperimentalFeatureWarning)
                fn.compile(sig)
        except Exception as exc:
            raise TypeError(
                f"the target's numba {label} function could not be compiled for the signature "
                f"{sig} (position: 1-D C-contiguous float64 array"
                + ("" if data is None else f", data: {numba.typeof(data)}")
                + f"). Numba said: {exc}"
            ) from exc
        values.append(fn)
        types_.append(nt.FunctionType(sig))
    if data is not None:
        values.append(data)
        types_.append(numba.typeof(data))
    return tuple(values), nt.Tuple(types_)


# -- compile-time generated helpers -----------------------------------------------------------
def index_fields(tup, t):  # pragma: no cover - replaced by the overload
    """``cls(tup[0][t], tup[1][t], ...)``: step ``t`` of a chunk of noise."""
    raise NotImplementedError


@overload(index_fields)
def _index_fields(tup, t):
    cls = tup.instance_class
    src = (
        "def impl(tup, t):\n    return cls("
        + "".join(f"tup[{i}][t], " for i in range(len(tup)))
        + ")\n"
    )
    scope = {"cls": cls}
    exec(src, scope)
    return scope["impl"]


def store_fields(buffers, t, values):  # pragma: no cover - replaced by the overload
    """``buffers[i][t] = values[i]`` for every field of a NamedTuple of scalars."""
    raise NotImplementedError


@overload(store_fields)
def _store_fields(buffers, t, values):
    body = "".join(f"    buffers[{i}][t] = values[{i}]\n" for i in range(len(values)))
    src = "def impl(buffers, t, values):\n" + (body or "    pass\n")
    scope: dict = {}
    exec(src, scope)
    return scope["impl"]


@numba.njit
def _noise_from_arrays(noise, t, dim):
    """Step ``t`` of a chunk of noise given as arrays."""
    return index_fields(noise, t)


def _noise_drawer(kernel_cls):
    """``draw_step(rng, t, dim)``: one step of the kernel's noise from a NumPy ``Generator``.

    Generated from the kernel's declared noise. Numba's ``Generator`` methods reproduce
    NumPy's streams exactly, so drawing inside the compiled loop changes no draw.
    """
    spec = kernel_cls.example().noise(3)
    args = []
    for kind, d in zip(field_kinds(kernel_cls.Noise), spec):
        size = "dim" if kind is Vector else ""
        method = "standard_normal" if isinstance(d, Normal) else "random"
        args.append(f"rng.{method}({size})")
    src = f"def draw_step(rng, t, dim):\n    return cls({', '.join(args)})\n"
    scope = {"cls": kernel_cls.Noise}
    exec(src, scope)
    return numba.njit(scope["draw_step"])


def _chain_loop(
    state, noise, n_steps, step_size, params, target, adapt, da, da_params,
    out_position, out_logdensity, out_info,
):  # fmt: skip
    """Run one chain for ``n_steps`` steps of a chunk; stop early if its state turns non-finite.

    ``step`` is bound to the kernel's compiled step and ``noise_at`` to the source of its noise
    (arrays, or the chain's generator) by :func:`_loop_for`.
    """
    h = step_size
    dim = out_position.shape[1]
    for t in range(n_steps):
        if adapt:
            h = np.exp(da.log_step)
        nz = noise_at(noise, t, dim)  # noqa: F821
        state, info = step(state, nz, h, params, target)  # noqa: F821
        position = state.position
        for j in range(dim):
            out_position[t, j] = position[j]
        out_logdensity[t] = state.logdensity
        store_fields(out_info, t, info)
        if adapt:
            da = da_update(da, info.acceptance_rate, da_params)  # noqa: F821
        if not (np.isfinite(state.logdensity) and numba_ops.all_finite(position)):
            return t + 1, True, state, da
    return n_steps, False, state, da


_GENERATOR_TYPE = numba.typeof(np.random.default_rng(0))


def _loop_for(kernel_cls, target_type, draws_noise: bool):
    """The compiled chain loop of ``kernel_cls`` for a target form; ``draws_noise``: the loop
    draws its noise from a generator (sampling) rather than reading given arrays (tests,
    common random numbers)."""
    key = (kernel_cls, target_type, draws_noise)
    if key in _LOOPS:
        return _LOOPS[key]
    state_t = _tuple_type(kernel_cls.State)
    params_t = numba.typeof(_as_params(kernel_cls.example().params()))
    da_t = _tuple_type(DualAveragingState)
    sig = nt.Tuple((nt.int64, nt.boolean, state_t, da_t))(
        state_t,
        _GENERATOR_TYPE if draws_noise else _tuple_type(kernel_cls.Noise, per_step=True),
        nt.int64,
        _F64,
        params_t,
        target_type,
        nt.boolean,
        da_t,
        _tuple_type(DualAveragingParams),
        nt.float64[:, ::1],
        nt.float64[::1],
        _tuple_type(kernel_cls.Info, per_step=True),
    )
    fingerprint = source_fingerprint(
        kernel_cls.step_math, dual_averaging_update, extra_modules=(numba_ops, _this_module())
    )
    step = make_twin(kernel_cls.step_math, numba_ops, numba.njit, _NUMBA_TWINS)
    da_update = make_twin(dual_averaging_update, numba_ops, numba.njit, _NUMBA_TWINS)

    def compile_loop(fn):
        # A unique name per kernel and source version keys Numba's on-disk cache (see
        # langevin.backends.portable.source_fingerprint).
        variant = "rng" if draws_noise else "arrays"
        fn.__qualname__ = f"_chain_loop_{kernel_cls.__name__}_{variant}_{fingerprint}"
        return numba.njit(sig, cache=True, nogil=True)(fn)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaExperimentalFeatureWarning)
        loop = make_twin(
            _chain_loop,
            numba_ops,
            compile_loop,
            _NUMBA_TWINS,
            overrides={
                "step": step,
                "da_update": da_update,
                "noise_at": _noise_drawer(kernel_cls) if draws_noise else _noise_from_arrays,
            },
        )
    _LOOPS[key] = loop
    return loop


def _this_module():
    import sys

    return sys.modules[__name__]


# -- the backend interface --------------------------------------------------------------------
class Prepared(NamedTuple):
    kernel: Any
    target_fns: tuple
    target_type: Any
    init: Any
    dim: int

    def loop(self, draws_noise: bool):
        """The compiled loop (compiled on first use; the variant without noise arrays is what
        ``sample`` uses)."""
        return _loop_for(type(self.kernel), self.target_type, draws_noise)


def prepare(kernel, target, dim: int, dtype) -> Prepared:
    """Check the target can run here and fetch (or compile) the kernel's loop."""
    if not target.has_numba:
        raise TypeError(
            f"{target!r} has no Numba form, so it cannot run on backend='numba'. Build it with "
            "Target.from_numba(logdensity, grad) (numba.njit functions), or use backend='jax' "
            "for a JAX log-density."
        )
    if np.dtype(dtype) != np.float64:
        raise TypeError(
            f"the Numba backend runs in float64; initial_position has dtype {np.dtype(dtype)}. "
            "Pass float64 positions, or use backend='jax' to sample in float32."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaExperimentalFeatureWarning)
        fns, target_type = _target_form(target, dim)
    init_fn = make_twin(type(kernel).init_math, numpy_ops, lambda f: f, _NUMPY_TWINS)
    return Prepared(kernel, fns, target_type, init_fn, dim)


def init(prepared: Prepared, positions: np.ndarray) -> list:
    """Initial state of each chain (positions ``(chains, dim)``), evaluated in Python."""
    params = _as_params(prepared.kernel.params())
    states = []
    for x in positions:
        x = np.ascontiguousarray(x, dtype=np.float64)
        state = prepared.init(x, params, prepared.target_fns)
        states.append(_as_state(type(prepared.kernel).State, state))
    return states


def _as_state(cls, state):
    """Cast every field to the exact type the compiled signature expects."""
    out = []
    for kind, value in zip(field_kinds(cls), state):
        if kind is Vector:
            out.append(np.ascontiguousarray(value, dtype=np.float64))
        elif kind is Scalar:
            out.append(float(value))
        else:
            out.append(bool(value))
    return cls(*out)


def _as_params(params):
    """Cast params to what the compiled signature expects: float arrays C-contiguous float64,
    integers int, other numbers float."""
    out = []
    for v in params:
        if np.ndim(v) > 0:
            a = np.asarray(v)
            dtype = np.int64 if np.issubdtype(a.dtype, np.integer) else np.float64
            out.append(np.ascontiguousarray(a, dtype=dtype))
        elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            out.append(int(v))
        else:
            out.append(float(v))
    return type(params)(*out)


def draw_noise(kernel, dim: int, n_steps: int, rngs: list[np.random.Generator]) -> list:
    """One chunk of noise per chain as arrays, drawn from that chain's generator.

    Drawn step by step in the order the compiled loop draws (field by field within a step),
    so running the loop on these arrays gives the chain the loop would draw for itself.
    """
    spec = kernel.noise(dim)
    out = []
    for rng in rngs:
        fields = [np.empty((n_steps, *d.shape)) for d in spec]
        for t in range(n_steps):
            for buffer, d in zip(fields, spec):
                if isinstance(d, Normal):
                    buffer[t] = rng.standard_normal(d.shape or None)
                elif isinstance(d, Uniform):
                    buffer[t] = rng.random(d.shape or None)
                else:
                    raise TypeError(f"unknown noise distribution {d!r}")
        out.append(type(spec)(*fields))
    return out


def _pool(n: int) -> ThreadPoolExecutor:
    global _POOL
    workers = max(1, min(n, os.cpu_count() or 1))
    if _POOL is None or _POOL._max_workers < workers:
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="langevin-chain")
    return _POOL


def run(
    prepared: Prepared,
    states: list,
    n_steps: int,
    step_size: np.ndarray,
    *,
    adapt: bool = False,
    adaptation: list | None = None,
    adaptation_params: DualAveragingParams | None = None,
    noise: list | None = None,
    rngs: list | None = None,
    threads: int | None = None,
    active: np.ndarray | None = None,
    params: list | None = None,
) -> ChunkResult:
    """Run every chain ``n_steps`` steps from ``states``.

    Args:
        noise: per chain, the kernel's ``Noise`` of arrays with leading axis ``n_steps``;
            drawn from ``rngs`` when None.
        step_size: ``(chains,)`` step sizes (ignored by chains while ``adapt``).
        adaptation: per chain ``DualAveragingState`` (required when ``adapt``).
        threads: at most this many chains at once (default: one per core).
        active: ``(chains,)`` mask; chains that are not active (stopped after a divergence)
            are not run, and their outputs are NaN.
        params: per chain, the kernel's params (e.g. a mass matrix adapted during warm-up);
            default the kernel's ``params()`` for every chain.
    """
    kernel = prepared.kernel
    n_chains = len(states)
    if noise is not None:
        noise = [type(nz)(*(np.ascontiguousarray(a, dtype=np.float64) for a in nz)) for nz in noise]
    if adaptation is None:
        adaptation = [DualAveragingState(0.0, 0.0, 0.0, 0.0, 0.0)] * n_chains
    if adaptation_params is None:
        adaptation_params = DualAveragingParams(0.8, 0.05, 10.0, 0.75)
    adaptation_params = DualAveragingParams(*(float(v) for v in adaptation_params))
    info_cls = type(kernel).Info
    position = np.empty((n_chains, n_steps, prepared.dim))
    position.fill(np.nan)
    logdensity = np.full((n_chains, n_steps), np.nan)
    info = info_cls(
        *(
            np.zeros((n_chains, n_steps), dtype=bool if kind is Flag else float)
            for kind in field_kinds(info_cls)
        )
    )
    params = [kernel.params()] * n_chains if params is None else params
    params = [_as_params(p) for p in params]
    n_done = np.zeros(n_chains, dtype=np.int64)
    diverged = np.zeros(n_chains, dtype=bool)
    new_states = list(states)
    new_adaptation = list(adaptation)

    loop = prepared.loop(draws_noise=noise is None)

    def one_chain(c: int) -> None:
        if active is not None and not active[c]:
            return
        out_info = info_cls(*(a[c] for a in info))
        # Without given noise each chain draws its own inside the compiled loop, on its own
        # thread, from its own generator.
        chain_noise = rngs[c] if noise is None else noise[c]
        done, div, st, da = loop(
            states[c], chain_noise, n_steps, float(step_size[c]), params[c], prepared.target_fns,
            adapt, DualAveragingState(*(float(v) for v in adaptation[c])), adaptation_params,
            position[c], logdensity[c], out_info,
        )  # fmt: skip
        n_done[c], diverged[c] = done, div
        new_states[c], new_adaptation[c] = st, da

    workers = threads or os.cpu_count() or 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaExperimentalFeatureWarning)
        if n_chains == 1 or workers == 1:
            for c in range(n_chains):
                one_chain(c)
        else:
            futures = [_pool(min(n_chains, workers)).submit(one_chain, c) for c in range(n_chains)]
            for f in futures:
                f.result()
    return ChunkResult(
        state=new_states,
        adaptation=new_adaptation,
        position=position,
        logdensity=logdensity,
        info={f: getattr(info, f) for f in info_cls._fields},
        n_done=n_done,
        diverged=diverged,
    )
