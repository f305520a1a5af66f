"""The Numba engine: k steps of a kernel on every member of a population, compiled once.

One engine serves ``sample()`` (members are chains) and SMC (members are particles):

* The kernel's ``step_math`` is twinned with ``xp = numba_ops`` and compiled into
  :func:`_population_loop`, which runs members ``lo..hi−1`` of a *batched* state (a NamedTuple
  of arrays with a leading member axis, the layout JAX uses too) for the steps of one chunk.
  It is compiled **once per kernel, adaptation component and target form**, with an explicit
  signature in which the target's functions are *first-class function values* and its data
  an ordinary argument (:mod:`langevin.targets.capabilities`). A new target, data set, step
  size, parameter value, seed or number of draws compiles nothing, and ``cache=True`` lets a
  later process load the loop from disk.
* Blocks of members run on a thread pool; the loop is ``nogil``. (A ``prange`` loop made the
  first compilation take 8.5 s instead of 2.6 s on the 2-core CI machine.) ``sample()`` runs
  one chain per block, each drawing its own noise inside the loop from its own
  ``numpy.random.Generator`` (Numba's generator methods reproduce NumPy's streams exactly);
  the other variant of the loop reads given noise arrays (SMC's host noise, agreement tests,
  common random numbers). :func:`draw_noise` draws such arrays in the loop's order, so both
  variants give the same chain.
* Step-size adaptation is the kernel's declared component (``Kernel.adaptation``), whose
  portable update is bound into the loop; the loop knows no particular adaptation.
* Initial states come from the plain-NumPy twin of ``init_math``: one target evaluation per
  member in Python, nothing compiled.

The backend runs in float64, the dtype of the compiled signatures.
"""

from __future__ import annotations

import hashlib
import itertools
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numba
import numpy as np
from numba import types as nt
from numba.core.errors import NumbaError, NumbaExperimentalFeatureWarning, NumbaWarning
from numba.extending import overload

from langevin.adaptation.dual_averaging import DualAveraging
from langevin.backends import numba_ops, numpy_ops
from langevin.backends.base import ChunkResult, check_kernel_and_target
from langevin.backends.portable import make_twin, source_fingerprint
from langevin.spec import check_noise, draw_numpy, field_kinds
from langevin.targets.capabilities import (
    BASE_FORM,
    CAPABILITIES,
    SLOTS,
    TargetForm,
)

__all__ = [
    "name", "bind_target", "prepare", "init", "init_population", "run", "draw_noise",
    "broadcast_params", "noise_sources", "default_float", "canonical_float", "first_chunk",
    "next_chunk", "aligned_chunks", "map_members",
]  # fmt: skip

name = "numba"
xp: Any = numba_ops

_NUMBA_TWINS: dict = {}
_NUMPY_TWINS: dict = {}
_LOOPS: dict = {}
_POOL: ThreadPoolExecutor | None = None

_F64 = nt.float64
_VEC = nt.float64[::1]
_GENERATOR_TYPE = numba.typeof(np.random.default_rng(0))

#: Chunks: at most this many bytes of recorded positions per chunk...
_CHUNK_BYTES = 16 * 2**20
#: ...and about this many seconds each (progress updates, Ctrl-C response), once the first,
#: short chunk has measured the cost of a step. Draws do not depend on the chunking.
_CHUNK_SECONDS = 0.25
_FIRST_CHUNK = 50


# -- the target's Numba form ------------------------------------------------------------------
def _capability_signature(cap_name: str, data_type):
    cap = CAPABILITIES[cap_name]
    extra = {"lam": _F64, "idx": nt.int64[::1]}
    args = [_VEC, *(extra[a] for a in cap.args)]
    if data_type is not None:
        args.append(data_type)
    returns = {"scalar": _F64, "vector": _VEC, "value_and_grad": nt.Tuple((_F64, _VEC))}
    return returns[cap.returns](*args)


def _build_base(data, functions):
    return (BASE_FORM, *functions, data)


def bind_target(target, dim: int | None = None) -> TargetForm:
    """The Numba form of a :class:`~langevin.targets.Target` (each function compiled for its
    capability's signature, checked here with a clear error)."""
    if isinstance(target, TargetForm):
        return target
    key = ("numba-form",)
    if key in target._cache:
        return target._cache[key]
    if not target.has_numba:
        raise TypeError(
            f"{target!r} has no Numba form, so it cannot run on backend='numba'. Build it with "
            "Target.from_numba(logdensity, grad) (numba.njit functions), or use backend='jax' "
            "for a JAX log-density."
        )
    data = target.data
    data_type = None if data is None else numba.typeof(data)
    functions, types_ = [], [numba.typeof(BASE_FORM)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaExperimentalFeatureWarning)
        for cap_name in SLOTS:
            fn = target.numba_functions.get(cap_name)
            if fn is None:
                functions.append(None)
                types_.append(nt.none)
                continue
            sig = _capability_signature(cap_name, data_type)
            try:
                fn.compile(sig)
            except Exception as exc:
                raise TypeError(
                    f"the target's numba {cap_name} function could not be compiled for the "
                    f"signature {sig} (position: 1-D C-contiguous float64 array"
                    + ("" if data is None else f", data: {data_type}")
                    + f"). Numba said: {exc}"
                ) from exc
            functions.append(fn)
            types_.append(nt.FunctionType(sig))
    types_.append(nt.none if data is None else data_type)
    functions = tuple(functions)
    form = TargetForm(
        key=("numba", nt.Tuple(types_)),
        data=data,
        build=lambda d: _build_base(d, functions),
        numba_type=nt.Tuple(types_),
        capabilities=target.capabilities("numba"),
    )
    target._cache[key] = form
    return form


# -- calling an explicitly typed loop ---------------------------------------------------------
class _Typed:
    """A dispatcher compiled for one explicit signature, called with values it accepts.

    Numba's dispatcher sometimes refuses a call whose arguments only *convert* to the
    signature — a tuple holding dispatchers where the signature has first-class function
    types — after other conversions were registered in the process ("No matching
    definition", although ``can_convert`` says safe). Then the compiled entry point is called
    directly, once every argument was checked convertible."""

    def __init__(self, dispatcher, sig):
        self.dispatcher = dispatcher
        self.sig = sig

    def __getattr__(self, name: str):
        return getattr(self.dispatcher, name)  # signatures, stats, ... of the dispatcher

    def __call__(self, *args):
        try:
            return self.dispatcher(*args)
        except TypeError:
            ctx = self.dispatcher.typingctx
            for arg, want in zip(args, self.sig.args):
                if ctx.can_convert(self.dispatcher.typeof_pyval(arg), want) is None:
                    raise
            return self.dispatcher.overloads[self.sig.args].entry_point(*args)


# -- compile-time generated helpers -----------------------------------------------------------
def store_fields(buffers, m, t, values):  # pragma: no cover - replaced by the overload
    """``buffers[i][m, t] = values[i]`` for every field of a NamedTuple of scalars."""
    raise NotImplementedError


@overload(store_fields)
def _store_fields(buffers, m, t, values):
    body = "".join(f"    buffers[{i}][m, t] = values[{i}]\n" for i in range(len(values)))
    src = "def impl(buffers, m, t, values):\n" + (body or "    pass\n")
    scope: dict = {}
    exec(src, scope)
    return scope["impl"]


def store_member(batched, m, value):  # pragma: no cover - replaced by the overload
    """``batched[i][m] = value[i]`` for every field (element loops; nested NamedTuples too)."""
    raise NotImplementedError


@overload(store_member)
def _store_member(batched, m, value):
    lines = []
    for i, t in enumerate(batched):
        if isinstance(t, nt.BaseNamedTuple):
            lines.append(f"    store_member(batched[{i}], m, value[{i}])")
        elif t.ndim == 1:
            lines.append(f"    batched[{i}][m] = value[{i}]")
        elif t.ndim == 2:
            lines.append(f"    v = value[{i}]\n    for j in range(v.shape[0]):\n"
                         f"        batched[{i}][m, j] = v[j]")  # fmt: skip
        elif t.ndim == 3:
            lines.append(f"    v = value[{i}]\n    for j in range(v.shape[0]):\n"
                         f"        for k in range(v.shape[1]):\n"
                         f"            batched[{i}][m, j, k] = v[j, k]")  # fmt: skip
        else:
            raise TypeError("state fields may have at most 2 dimensions per member")
    src = "def impl(batched, m, value):\n" + ("\n".join(lines) or "    pass") + "\n"
    scope: dict = {"store_member": store_member}
    exec(src, scope)
    return scope["impl"]


@numba.njit
def _noise_from_arrays(source, m, t):
    """Step ``t`` of member ``m`` of noise given as arrays ``(members, steps, ...)``."""
    return numba_ops.index_tree(numba_ops.index_tree(source, m), t)


def _noise_drawer(spec):
    """``draw(source, m, t)``: one step of the declared noise from ``source = (rng, args)``.

    Generated from the declarations (each noise kind gives its in-loop drawer); the runtime
    ``args`` carry the sizes, so one loop serves every dimension."""
    drawers = [d.numba_drawer()[0] for d in spec]
    calls = ", ".join(f"draw_{i}(source[0], source[1][{i}])" for i in range(len(spec)))
    src = f"def draw_step(source, m, t):\n    return cls({calls}{',' if len(spec) == 1 else ''})\n"
    scope = {"cls": type(spec), **{f"draw_{i}": d for i, d in enumerate(drawers)}}
    exec(src, scope)
    fn = scope["draw_step"]
    # Numba names compiled functions by qualified name: the first library loaded under a
    # name wins, so a generated function is named after what it computes.
    # (the drawers' code included: a changed drawer must not load an old loop from the cache)
    fn.__qualname__ = f"draw_step_{source_fingerprint(*drawers, extra_values=(spec,))}"
    return numba.njit(fn)


def _population_loop(
    lo, hi, states, source, n_steps, step_size, params, target, adapt, ad_state, ad_params,
    out_position, out_logdensity, out_info, n_done, diverged, active,
):  # fmt: skip
    """Members ``lo..hi−1``: ``n_steps`` kernel steps each; a member whose state turns
    non-finite stops there (``diverged``). The batched ``states`` and ``ad_state`` are
    updated in place.

    ``step``, ``noise_at``, ``adapt_update`` and ``adapt_step_size`` are bound per kernel,
    noise variant and adaptation component by :func:`_loop_for`.
    """
    dim = out_position.shape[2]
    for m in range(lo, hi):
        if not active[m]:
            continue
        state = xp.index_tree(states, m)
        p = xp.index_tree(params, m)
        ad = xp.index_tree(ad_state, m)
        h = step_size[m]
        done = n_steps
        stopped = False
        for t in range(n_steps):
            if adapt:
                h = adapt_step_size(ad)  # noqa: F821
            nz = noise_at(source, m, t)  # noqa: F821
            state, info = step(state, nz, h, p, target)  # noqa: F821
            position = state.position
            for j in range(dim):
                out_position[m, t, j] = position[j]
            out_logdensity[m, t] = state.logdensity
            store_fields(out_info, m, t, info)
            if adapt:
                ad = adapt_update(ad, info, ad_params)  # noqa: F821
            if not (np.isfinite(state.logdensity) and numba_ops.all_finite(position)):
                done = t + 1
                stopped = True
                break
        store_member(states, m, state)
        store_member(ad_state, m, ad)
        n_done[m] = done
        diverged[m] = stopped


def _batched_example(cls, dim: int = 2, members: int = 1):
    """A batched instance of the State/Info NamedTuple ``cls`` (for its Numba type)."""
    return cls(*(np.zeros((members, *k.shape(dim)), dtype=k.numpy_dtype())
                 for k in field_kinds(cls)))  # fmt: skip


def _per_step_example(cls, members: int = 1, steps: int = 1):
    return cls(*(np.zeros((members, steps), dtype=k.numpy_dtype()) for k in field_kinds(cls)))


def _loop_for(kernel_cls, adaptation_cls, form_type, params_type, noise_type, draws_noise,
              spec):  # fmt: skip
    """The compiled population loop for one kernel, adaptation, target form, params type and
    noise variant (``spec``: the declared noise; its kinds choose the in-loop drawers)."""
    key = (kernel_cls, adaptation_cls, form_type, params_type, noise_type, draws_noise)
    if key in _LOOPS:
        return _LOOPS[key]
    state_t = numba.typeof(_batched_example(kernel_cls.State))
    ad_t = numba.typeof(adaptation_cls.State(*(np.zeros(1) for _ in adaptation_cls.State._fields)))
    ad_params_t = numba.typeof(adaptation_cls.Params(*(0.0 for _ in adaptation_cls.Params._fields)))
    info_t = numba.typeof(_per_step_example(kernel_cls.Info))
    sig = nt.void(
        nt.int64, nt.int64, state_t, noise_type, nt.int64, nt.float64[::1], params_type,
        form_type, nt.boolean, ad_t, ad_params_t, nt.float64[:, :, ::1], nt.float64[:, ::1],
        info_t, nt.int64[::1], nt.boolean[::1], nt.boolean[::1],
    )  # fmt: skip
    fingerprint = source_fingerprint(
        kernel_cls.step_math, adaptation_cls.update_math, adaptation_cls.step_size_math,
        # the in-loop noise drawers (langevin.spec): an edit to one recompiles the loop
        *((d.numba_drawer()[0] for d in spec) if draws_noise else ()),
        extra_modules=(numba_ops, sys.modules[__name__]),
        extra_values=(spec, kernel_cls.State, kernel_cls.Info),
    )  # fmt: skip
    step = make_twin(kernel_cls.step_math, numba_ops, numba.njit, _NUMBA_TWINS)
    overrides = {
        "step": step,
        "adapt_update": make_twin(adaptation_cls.update_math, numba_ops, numba.njit, _NUMBA_TWINS),
        "adapt_step_size": make_twin(adaptation_cls.step_size_math, numba_ops, numba.njit,
                                     _NUMBA_TWINS),
        "noise_at": _noise_drawer(spec) if draws_noise
        else _noise_from_arrays,
    }  # fmt: skip

    def compile_loop(fn):
        # A unique name per kernel, adaptation and source version keys Numba's on-disk cache
        # (see langevin.backends.portable.source_fingerprint).
        variant = "rng" if draws_noise else "arrays"
        fn.__qualname__ = (f"_population_loop_{kernel_cls.__name__}_{adaptation_cls.__name__}_"
                           f"{variant}_{fingerprint}")  # fmt: skip
        with warnings.catch_warnings():
            # A kernel whose step passes an allocating function to xp.fori_loop cannot be
            # cached on disk; it is then compiled once per process.
            warnings.filterwarnings("ignore", message=".*[Cc]annot cache", category=NumbaWarning)
            return _Typed(numba.njit(sig, cache=True, nogil=True)(fn), sig)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaExperimentalFeatureWarning)
        loop = make_twin(_population_loop, numba_ops, compile_loop, _NUMBA_TWINS,
                         overrides=overrides)  # fmt: skip
    _LOOPS[key] = loop
    return loop


# -- population maps: one portable function on every member ------------------------------------
def _map_loop(lo, hi, args, out):
    """Members ``lo..hi−1``: ``out[m] = fn(args at m)``; ``call_member`` is bound per function
    and argument layout (twin override)."""
    for m in range(lo, hi):
        store_member(out, m, call_member(args, m))  # noqa: F821


_MAPS: dict = {}
_STRUCTURES: dict = {}


_TYPES: dict = {}


def _type_key(v):
    """A cheap hashable stand-in for ``numba.typeof(v)`` (arrays by dtype, rank, layout)."""
    if isinstance(v, np.ndarray):
        return (v.dtype.str, v.ndim, v.flags.c_contiguous, v.flags.writeable)
    if isinstance(v, tuple):
        return (type(v), tuple(_type_key(x) for x in v))
    return type(v)


def _typeof(v):
    """``numba.typeof(v)``, memoised on :func:`_type_key` (typeof costs ~50 µs a tuple)."""
    key = _type_key(v)
    if key not in _TYPES:
        _TYPES[key] = numba.typeof(v)
    return _TYPES[key]


def _leaves(v):
    if isinstance(v, tuple):
        for item in v:
            yield from _leaves(item)
    else:
        yield v


def _member_caller(fn_twin, axes, tuple_like, single):
    """``call_member(args, m)``: ``fn`` on member ``m`` of the mapped arguments (as a tuple:
    ``single`` wraps a function that returns one value)."""
    parts = []
    for i, (axis, is_tuple) in enumerate(zip(axes, tuple_like)):
        if axis is None:
            parts.append(f"args[{i}]")
        elif is_tuple:
            parts.append(f"index_tree(args[{i}], m)")
        else:
            parts.append(f"args[{i}][m]")
    call = f"fn({', '.join(parts)})"
    src = f"def call_member(args, m):\n    return {'(' + call + ',)' if single else call}\n"
    scope = {"fn": fn_twin, "index_tree": numba_ops.index_tree}
    exec(src, scope)
    fn = scope["call_member"]
    # named after what it computes (see _noise_drawer); the twin's name carries its
    # fingerprint
    key = repr((fn_twin.py_func.__qualname__, axes, tuple_like, single))
    fn.__qualname__ = f"call_member_{hashlib.sha1(key.encode()).hexdigest()[:16]}"
    return numba.njit(fn)


def map_members(fn, args: tuple, axes: tuple, *, threads: int | None = None) -> tuple:
    """``fn`` (portable, returning a scalar, an array or a tuple of them) on every member:
    the population step of SMC models (potentials, transitions, increments).

    Args:
        fn: a portable function.
        args: its arguments; a :class:`~langevin.targets.capabilities.TargetForm` is passed as
            the target it describes.
        axes: per argument, 0 (a leading member axis: member ``m`` gets ``arg[m]``, or
            ``index_tree(arg, m)`` for a tuple of arrays) or None (shared by every member).

    Returns:
        Arrays with a leading member axis: a tuple of them, one per returned value, when
        ``fn`` returns a tuple.
    """
    values, types_ = [], []
    for a in args:
        if isinstance(a, TargetForm):
            values.append(a.build(a.data))
            types_.append(a.numba_type)
        else:
            a = _cast_tree(a) if isinstance(a, tuple) or isinstance(a, np.ndarray) else a
            values.append(a)
            types_.append(_typeof(a))
    values = tuple(values)
    members = next(
        int(np.shape(v[0] if isinstance(v, tuple) else v)[0]) for v, ax in zip(values, axes)
        if ax == 0
    )  # fmt: skip
    args_type = nt.Tuple(types_)
    shapes = tuple(np.shape(leaf) for v in values for leaf in _leaves(v))
    structure_key = (fn, tuple(axes), args_type, shapes)
    if structure_key not in _STRUCTURES:
        # The outputs' structure from member 0, by the NumPy twin (nothing compiled; its
        # values are discarded, so their floating-point warnings are too).
        with np.errstate(all="ignore"):
            first = make_twin(fn, numpy_ops, lambda f: f, _NUMPY_TWINS)(*(
                numpy_ops.index_tree(v, 0) if ax == 0 and isinstance(v, tuple)
                else (v[0] if ax == 0 else v) for v, ax in zip(values, axes)
            ))  # fmt: skip
        single = not isinstance(first, tuple)
        first = (first,) if single else first
        _STRUCTURES[structure_key] = (single, tuple(
            (np.shape(f), np.asarray(f).dtype if np.asarray(f).dtype in (np.bool_, np.int64)
             else np.dtype(np.float64)) for f in first
        ))  # fmt: skip
    single, structure = _STRUCTURES[structure_key]
    out = tuple(np.empty((members, *shape), dtype=dtype) for shape, dtype in structure)
    tuple_like = tuple(isinstance(v, tuple) for v in values)
    key = (fn, tuple(axes), args_type, _typeof(out), single)
    if key not in _MAPS:
        sig = nt.void(nt.int64, nt.int64, args_type, _typeof(out))
        fingerprint = source_fingerprint(fn, extra_modules=(numba_ops, sys.modules[__name__]))
        caller = _member_caller(make_twin(fn, numba_ops, numba.njit, _NUMBA_TWINS), axes,
                                tuple_like, single)  # fmt: skip

        def compile_map(f):
            axes_tag = "".join("m" if a == 0 else "s" for a in axes)
            f.__qualname__ = f"_map_{fn.__qualname__}_{axes_tag}_{fingerprint}"
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*[Cc]annot cache",
                                        category=NumbaWarning)  # fmt: skip
                warnings.simplefilter("ignore", NumbaExperimentalFeatureWarning)
                return _Typed(numba.njit(sig, cache=True, nogil=True)(f), sig)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumbaExperimentalFeatureWarning)
            _MAPS[key] = make_twin(_map_loop, numba_ops, compile_map, _NUMBA_TWINS,
                                   overrides={"call_member": caller})  # fmt: skip
    loop = _MAPS[key]
    # threads pay off only for large populations (a pool submission costs ~50 µs)
    workers = max(1, min(threads or usable_threads(), members // 512 or 1))
    edges = np.linspace(0, members, workers + 1).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaExperimentalFeatureWarning)
        if workers == 1:
            loop(0, members, values, out)
        else:
            futures = [_pool(workers).submit(loop, int(a), int(b), values, out)
                       for a, b in itertools.pairwise(edges)]  # fmt: skip
            for f in futures:
                f.result()
    return out[0] if single else out


# -- values in the types the signatures expect ---------------------------------------------------
def _cast_leaf(v):
    # np.asarray(order="C"), not ascontiguousarray: that one turns a 0-d array into 1-d
    a = np.asarray(v)
    if a.dtype == np.bool_:
        return np.asarray(a, order="C")
    if np.issubdtype(a.dtype, np.integer):
        return np.asarray(a, dtype=np.int64, order="C")
    return np.asarray(a, dtype=np.float64, order="C")


def _cast_tree(tree):
    """Every leaf of a (nested) NamedTuple as a C-contiguous int64/float64/bool array."""
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_cast_tree(v) for v in tree))
    return _cast_leaf(tree)


def broadcast_params(params, members: int):
    """The kernel's params (a pytree) with a leading member axis, one copy per member."""
    if isinstance(params, tuple) and hasattr(params, "_fields"):
        return type(params)(*(broadcast_params(v, members) for v in params))
    a = _cast_leaf(params)
    return np.ascontiguousarray(np.broadcast_to(a, (members, *a.shape)))


# -- the engine interface -----------------------------------------------------------------------
class Prepared(NamedTuple):
    kernel: Any
    form: TargetForm
    init: Any
    dim: int
    adaptation_cls: type

    @property
    def target(self):
        """The form tuple the compiled code receives."""
        return self.form.build(self.form.data)


def prepare(kernel, target, dim: int, dtype=np.float64, adaptation_cls: type | None = None):
    """Check that ``kernel`` and ``target`` (a :class:`~langevin.targets.Target` or a bound
    :class:`~langevin.targets.capabilities.TargetForm`) can run here, before compiling."""
    check_kernel_and_target(kernel, target, name)
    if np.dtype(dtype) != np.float64:
        raise TypeError(
            f"the Numba backend runs in float64; initial_position has dtype {np.dtype(dtype)}. "
            "Pass float64 positions, or use backend='jax' to sample in float32."
        )
    check_noise(kernel.noise(dim), f"{kernel.name}.noise")
    check_noise(kernel.init_noise(dim), f"{kernel.name}.init_noise")
    form = bind_target(target, dim)
    init_fn = make_twin(type(kernel).init_math, numpy_ops, lambda f: f, _NUMPY_TWINS)
    return Prepared(kernel, form, init_fn, dim, adaptation_cls or DualAveraging)


def init(prepared: Prepared, positions: np.ndarray, params=None, noise=None, rngs=None):
    """Batched initial state for ``positions`` ``(members, dim)``, evaluated in Python.

    ``params``: batched params (default: the kernel's, broadcast). Init noise (if the kernel
    declares any) comes from ``noise`` (arrays ``(members, ...)``) or is drawn from ``rngs``
    (one generator per member; default: a fixed seed, with a warning-free zero draw)."""
    kernel = prepared.kernel
    positions = np.asarray(positions, dtype=np.float64)
    members = positions.shape[0]
    params = broadcast_params(kernel.params(), members) if params is None else _cast_tree(params)
    spec = kernel.init_noise(prepared.dim)
    if noise is None:
        if rngs is None:
            rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(0).spawn(members)]
        rows = [draw_numpy(spec, rng) for rng in rngs]
        noise = type(spec)(*(np.stack([r[i] for r in rows]) for i in range(len(spec))))
    target = prepared.target
    out = []
    for m in range(members):
        x = np.ascontiguousarray(positions[m])
        state = prepared.init(x, numpy_ops.index_tree(noise, m),
                              numpy_ops.index_tree(params, m), target)  # fmt: skip
        out.append(state)
    cls = type(kernel).State
    kinds = field_kinds(cls)
    return cls(*(
        np.ascontiguousarray(np.stack([np.asarray(s[i]) for s in out]),
                             dtype=k.numpy_dtype())
        for i, k in enumerate(kinds)
    ))  # fmt: skip


def init_population(prepared: Prepared, positions: np.ndarray, params, noise):
    """Batched initial states of a large population (SMC's particles), with its init noise
    given: ``init_math`` compiled over the members by :func:`map_members`. (:func:`init`
    evaluates it in Python member by member, which compiles nothing: what a few chains want;
    for 1000 particles that was about 5% of a tempered SMC run.)"""
    cls = type(prepared.kernel)
    fields = map_members(
        cls.init_math,
        (np.ascontiguousarray(positions, dtype=np.float64), noise, params, prepared.form),
        (0, 0 if len(noise) else None, 0, None),
    )
    fields = fields if isinstance(fields, tuple) else (fields,)
    return cls.State(*(np.ascontiguousarray(f) for f in fields))


def draw_noise(kernel, dim: int, n_steps: int, rngs: list[np.random.Generator]):
    """One chunk of noise as arrays ``(members, n_steps, ...)``, member ``c`` drawn from
    ``rngs[c]`` step by step in the compiled loop's order (so running the loop on these
    arrays gives the chain the loop would draw for itself)."""
    spec = check_noise(kernel.noise(dim), f"{kernel.name}.noise")
    rows = [draw_numpy(spec, rng, (n_steps,)) for rng in rngs]
    return type(spec)(*(np.stack([r[i] for r in rows]) for i in range(len(spec))))


def noise_sources(seed_sequence: np.random.SeedSequence, members: int) -> list:
    """One independent generator per member."""
    return [np.random.default_rng(s) for s in seed_sequence.spawn(members)]


def default_float():
    """The float dtype of this backend: float64."""
    return np.dtype(np.float64)


def canonical_float(dtype):
    """The dtype the draws are returned in (the engine computes in float64 regardless)."""
    return np.dtype(dtype)


#: Chunks may end anywhere: each chain's generator draws the same numbers however they split.
aligned_chunks = False


def first_chunk(members: int, dim: int, kernel) -> int:
    """Steps in the first chunk (short: it measures the cost of a step)."""
    return min(_chunk_cap(members, dim), _FIRST_CHUNK)


def next_chunk(members: int, dim: int, kernel, seconds_per_step: float) -> int:
    """Steps per chunk: about ``_CHUNK_SECONDS`` of work, at most 16 MiB of positions."""
    return int(min(_chunk_cap(members, dim), max(10, _CHUNK_SECONDS / max(seconds_per_step,
                                                                            1e-9))))  # fmt: skip


def _chunk_cap(members: int, dim: int) -> int:
    return int(max(10, _CHUNK_BYTES // (8 * (dim + 1) * members)))


def usable_threads() -> int:
    """Threads the engine runs members on: Numba's ``NUMBA_NUM_THREADS``, which defaults to
    the CPUs this process may run on (its affinity mask, not ``os.cpu_count()``: a container
    or ``taskset`` limited to 2 of 64 CPUs gets 2) and which users set to share a machine.
    More threads than free cores cost more CPU per chain-step, not less (measured on 2 shared
    cores: 4 chains on 2 threads 3.8–9.3 µs per chain-step against 3.2–4.9 on one,
    ``benchmarks/results/proximal_myula.md``)."""
    return max(1, int(numba.config.NUMBA_NUM_THREADS))


def _pool(n: int) -> ThreadPoolExecutor:
    global _POOL
    workers = max(1, min(n, usable_threads()))
    if _POOL is None or _POOL._max_workers < workers:
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="langevin-engine")
    return _POOL


def _copy_tree(tree):
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_copy_tree(v) for v in tree))
    return np.array(tree, copy=True)


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
    rngs: list | None = None,
    threads: int | None = None,
    active: np.ndarray | None = None,
    params=None,
    start: int = 0,
) -> ChunkResult:
    """Run every member ``n_steps`` steps from the batched ``state``.

    Args:
        noise: the kernel's ``Noise`` of arrays ``(members, n_steps, ...)``; drawn inside the
            loop from ``rngs`` (one generator per member) when None.
        step_size: ``(members,)`` step sizes (ignored while ``adapt``).
        adaptation: the batched state of the step-size component (required when ``adapt``).
        threads: at most this many blocks at once (default: one per core).
        active: ``(members,)`` mask; inactive members (stopped after a divergence) do not
            move, and their outputs are NaN.
        params: batched params (leading member axis); default the kernel's, broadcast.
        start: unused here (the JAX engine keys its noise by it).
    """
    kernel = prepared.kernel
    kernel_cls = type(kernel)
    ad_cls = prepared.adaptation_cls
    members = int(np.shape(state.position)[0])
    state = _copy_tree(_cast_tree(state))
    if adaptation is None:
        adaptation = ad_cls.State(*(np.zeros(members) for _ in ad_cls.State._fields))
    adaptation = _copy_tree(_cast_tree(adaptation))
    if adaptation_params is None:
        adaptation_params = ad_cls(kernel, None).params()
    adaptation_params = type(adaptation_params)(*(float(v) for v in adaptation_params))
    params = broadcast_params(kernel.params(), members) if params is None else _cast_tree(params)
    step_size = np.array(np.broadcast_to(np.asarray(step_size, float), (members,)))
    active = np.ones(members, bool) if active is None else np.ascontiguousarray(active, bool)
    position = np.full((members, n_steps, prepared.dim), np.nan)
    logdensity = np.full((members, n_steps), np.nan)
    info = _per_step_example(kernel_cls.Info, members, n_steps)
    n_done = np.zeros(members, dtype=np.int64)
    diverged = np.zeros(members, dtype=bool)
    draws_noise = noise is None
    if draws_noise:
        spec = kernel.noise(prepared.dim)
        args = tuple(d.numba_drawer()[1] for d in spec)
        sources = [(rng, args) for rng in rngs]
        noise_type = numba.typeof(sources[0])
    else:
        noise = _cast_tree(noise)
        noise_type = numba.typeof(noise)
    target = prepared.target
    loop = _loop_for(kernel_cls, ad_cls, prepared.form.numba_type, numba.typeof(params),
                     noise_type, draws_noise, kernel.noise(prepared.dim))  # fmt: skip

    failed: dict[int, BaseException] = {}

    def block(lo: int, hi: int) -> None:
        source = sources[lo] if draws_noise else noise
        while lo < hi:
            try:
                loop(lo, hi, state, source, n_steps, step_size, params, target, adapt,
                     adaptation, adaptation_params, position, logdensity, info, n_done,
                     diverged, active)  # fmt: skip
                return
            except Exception as exc:  # raised by the user's target code inside the loop
                if isinstance(exc, NumbaError) or "No matching definition" in str(exc):
                    raise  # a typing or dispatch error: nothing ran
                # Members run in order and set n_done when they finish: the first active
                # one without it raised. Its good steps are the finite rows it wrote (the
                # buffer starts as NaN); its state stays the one before the chunk.
                m = next(i for i in range(lo, hi) if active[i] and n_done[i] == 0)
                good = np.isfinite(position[m]).all(axis=1)
                n_done[m] = int(np.argmin(good)) if not good.all() else n_steps
                failed[m] = exc
                lo = m + 1  # the members after it in this block still run

    t_start = time.perf_counter()  # after the loop was compiled or loaded
    workers = max(1, min(threads or usable_threads(), members))
    if draws_noise:
        bounds = [(c, c + 1) for c in range(members)]  # each chain its own generator
    else:
        edges = np.linspace(0, members, min(workers, max(1, members // 16)) + 1).astype(int)
        bounds = [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaExperimentalFeatureWarning)
        if len(bounds) == 1 or workers == 1:
            for lo, hi in bounds:
                block(lo, hi)
        else:
            futures = [_pool(workers).submit(block, lo, hi) for lo, hi in bounds]
            for f in futures:
                f.result()
    # What the JAX engine leaves too: nothing recorded after a divergent step.
    after = np.arange(n_steps)[None, :] >= n_done[:, None]
    for v in info:
        v[after] = False if v.dtype == bool else 0
    return ChunkResult(
        state=state,
        adaptation=adaptation,
        position=position,
        logdensity=logdensity,
        info={f: getattr(info, f) for f in kernel_cls.Info._fields},
        n_done=n_done,
        diverged=diverged,
        seconds=time.perf_counter() - t_start,
        failed=failed,
    )
