"""The driver: ``sample(target, kernel, ...)`` — checks, warm-up, draws, progress, interruption.

Every argument is checked before anything is compiled; a bad one raises ``ValueError`` or
``TypeError`` naming it. The run goes chunk by chunk (bounded memory, a moving progress
bar, a place to stop): Ctrl-C returns the draws made so far with a warning, and a chain
whose state becomes non-finite stops while the others finish, reported in
``Trace.diverged``.

For kernels that adapt a mass matrix (HMC) the warm-up follows Stan's windows
(:mod:`langevin.adaptation.mass_matrix`): chunks end at the window boundaries, the draws of
each slow window are streamed into per-chain variance estimates, and at the end of a window
every chain gets its own new inverse mass (a runtime parameter: nothing recompiles) and its
step-size adaptation restarts. After sampling, divergent transitions of Hamiltonian kernels
(energy error above the kernel's threshold; the chain goes on) are counted and reported with
a :class:`DivergentTransitionWarning`, as Stan does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
import os
import time
import warnings
from typing import Any

import numpy as np

from langevin import health
from langevin._interrupts import deferred_interrupts
from langevin.adaptation.base import StepSizeAdaptation, WarmupComponent
from langevin.backends.base import BACKENDS, get_backend
from langevin.health import (
    ChainFailure,
    DivergenceWarning,
    DivergentTransitionWarning,
    SamplingError,
    StuckChainWarning,
    TargetCodeWarning,
)
from langevin.kernels.base import Kernel
from langevin.store import DRAWS_FILE, TRACE_FILE, DrawStore
from langevin.targets.base import Target
from langevin.trace import Trace

__all__ = [
    "sample",
    "INIT_JITTER",
    "ChainFailure",
    "DivergenceWarning",
    "DivergentTransitionWarning",
    "SamplingError",
    "StuckChainWarning",
    "TargetCodeWarning",
]

#: Chains started from one point start at ``point + U(-INIT_JITTER, INIT_JITTER)`` per coordinate.
INIT_JITTER = 0.1
#: Without any starting point, chains start uniformly in ``[-2, 2]^dim`` (Stan's convention).
INIT_RADIUS = 2.0


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}; got {value}")
    return int(value)


def _seed_sequence(seed) -> tuple[np.random.SeedSequence, int]:
    if seed is None:
        ss = np.random.SeedSequence()
    elif isinstance(seed, np.random.SeedSequence):
        ss = seed
    elif isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
        ss = np.random.SeedSequence(int(seed))
    else:
        raise TypeError(f"seed must be a non-negative int or None; got {seed!r}")
    entropy = ss.entropy if isinstance(ss.entropy, int) else int(np.asarray(ss.entropy).sum())
    return ss, entropy


def _initial_positions(target: Target, initial_position, chains: int, rng, jitter: float):
    """``(chains, dim)`` float starting points and the dtype to sample in."""
    if initial_position is None:
        if target.initial_position is not None:
            point = target.initial_position
        elif target.dim is not None:
            return rng.uniform(-INIT_RADIUS, INIT_RADIUS, (chains, target.dim)), None
        else:
            raise ValueError(
                "initial_position is required: the target does not know its dimension "
                "(pass dim= to Target.from_jax/from_numba, or an initial_position)"
            )
    else:
        point = initial_position
    # Follow the dtype of what the user passes, not of the target's own starting point.
    dtype = getattr(initial_position, "dtype", None)
    try:
        arr = np.asarray(point)
    except Exception as exc:
        raise TypeError(f"initial_position must be an array of floats; got {type(point)}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"initial_position must be an array of floats; got dtype {arr.dtype}")
    dtype = np.dtype(dtype) if dtype is not None and np.issubdtype(arr.dtype, np.floating) else None
    # None: the user gave no float dtype; the backend's default applies (float64 on Numba,
    # JAX's default float, float32 unless jax_enable_x64, on JAX)
    if arr.ndim == 1:
        if arr.shape[0] < 1:
            raise ValueError("initial_position must have at least one coordinate")
        if target.dim is not None and arr.shape[0] != target.dim:
            raise ValueError(
                f"initial_position has shape {arr.shape} but the target has dim={target.dim}"
            )
        start = np.broadcast_to(arr.astype(np.float64), (chains, arr.shape[0]))
        start = start + rng.uniform(-jitter, jitter, start.shape)
    elif arr.ndim == 2:
        if arr.shape[0] != chains:
            raise ValueError(
                f"initial_position has {arr.shape[0]} rows but chains={chains}: give one point, "
                "or one row per chain"
            )
        if target.dim is not None and arr.shape[1] != target.dim:
            raise ValueError(
                f"initial_position has shape {arr.shape} but the target has dim={target.dim}; "
                f"expected ({chains}, {target.dim})"
            )
        start = arr.astype(np.float64)
    else:
        raise ValueError(
            f"initial_position must have shape (dim,) or (chains, dim); got {arr.shape}"
        )
    bad = np.where(~np.all(np.isfinite(start), axis=1))[0]
    if bad.size:
        raise ValueError(f"initial_position is not finite for chain(s) {bad.tolist()}")
    return start, dtype


def write_checkpoint(path: str, run) -> None:
    from langevin.checkpoint import write

    write(path, run)


def _check_initial_state(state, n_chains: int) -> None:
    lp = np.asarray(state.logdensity)
    grads = np.asarray(state.grad) if "grad" in state._fields else np.zeros((n_chains, 1))
    for c in range(n_chains):
        if not np.isfinite(lp[c]):
            raise ValueError(
                f"initial_position: the log-density is {lp[c]} at the start of chain {c}; "
                "start where the density is positive and finite"
            )
        if not np.all(np.isfinite(grads[c])):
            raise ValueError(
                f"initial_position: the gradient is not finite at the start of chain {c}"
            )


def sample(
    target: Target,
    kernel: Kernel,
    *,
    chains: int = 4,
    warmup: int = 1000,
    draws: int = 1000,
    backend: str = "numba",
    seed: int | None = None,
    initial_position: Any = None,
    thin: int = 1,
    progress: bool = True,
    target_acceptance: float | None = None,
    init_jitter: float = INIT_JITTER,
    adapt_mass_matrix: bool | None = None,
    checked: bool = False,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    store: str | os.PathLike | None = None,
    store_dtype: Any = None,
    keep: Any = None,
    mesh: Any = None,
) -> Trace:
    """Sample ``target`` with ``kernel``: warm-up (step-size adaptation), then draws.

    Warm-up runs ``warmup`` steps; for kernels that adapt (MALA, HMC) the step size is tuned
    per chain by dual averaging toward ``target_acceptance`` (MALA: 0.574, HMC: 0.8),
    starting from the kernel's ``step_size``. Kernels that do not adapt (ULA) keep their
    step size, and their warm-up only moves the chains toward stationarity. HMC also adapts a
    diagonal inverse mass matrix per chain to the posterior variances, in Stan's windows
    (initial fast buffer 75 steps, doubling slow windows from 25, terminal buffer 50; shrunk
    to 15%/75%/10% for short warm-ups, none below 20 steps; see
    :mod:`langevin.adaptation.mass_matrix`); the result is ``Trace.inverse_mass``.

    One seed gives one set of draws on a backend, however the run is cut into chunks,
    checkpointed or resumed.

    Args:
        target: what to sample (:class:`langevin.Target`).
        kernel: how to move (e.g. ``langevin.MALA(0.1)``).
        chains: number of independent chains (>= 1).
        warmup: steps before the draws are kept (>= 0).
        draws: kept draws per chain, after thinning (>= 1).
        backend: ``"numba"`` (CPU, float64, chains on threads) or ``"jax"`` (vmap, any
            device, dtype of ``initial_position``).
        seed: makes the run reproducible on one backend; None draws fresh entropy (the
            seed used is recorded in ``Trace.seed``).
        initial_position: ``(dim,)`` — chains start at this point plus independent
            ``U(-init_jitter, init_jitter)`` jitter per coordinate — or ``(chains, dim)``,
            one start per chain, used as given. Default: the target's own starting point
            with jitter, else uniform on ``[-2, 2]^dim``.
        thin: keep every ``thin``-th step after warm-up.
        progress: show a tqdm progress bar.
        target_acceptance: override the kernel's default warm-up target.
        init_jitter: half-width of the jitter around a single starting point.
        adapt_mass_matrix: adapt the inverse mass matrix during warm-up; default (None):
            when the kernel supports it (HMC). False keeps the kernel's ``inverse_mass``
            (e.g. one estimated by an earlier run).
        checked: Numba only: compile the target's functions with bounds checks and Python's
            error model (:meth:`Target.checked`), to find a target's out-of-range index or
            division by zero; slower.
        checkpoint: a file to write the run's whole state to as it goes (an ``.npz`` of
            arrays and JSON, no pickle; replaced atomically, so a run killed at any moment
            leaves the last complete checkpoint). :func:`langevin.resume` continues from it
            and gives, bit for bit, the draws the uninterrupted run would have made. Written
            every ``checkpoint_every`` steps and at the end (also after Ctrl-C).
        checkpoint_every: steps (warm-up included) between checkpoints; default: a tenth of
            the run.
        store: a directory to stream the draws to as they are made
            (``<store>/draws.npy``, then ``<store>/trace.nc``; see :mod:`langevin.store`):
            the draws never sit in memory, and the returned trace's ``draws`` is a read-only
            memory map. For runs whose draws would not fit in memory.
        store_dtype: the dtype the draws are kept in (e.g. ``np.float32``: half the
            memory or disk of float64); default the dtype the chains run in. The chains
            themselves always run in their own dtype.
        keep: the coordinates to keep: parameter names (whole blocks, e.g.
            ``["beta", "sigma"]``) or flat coordinate indices; default all. The chains move
            in every coordinate; only the kept ones are stored (the trace's names follow).
        mesh: JAX only: a one-axis :class:`jax.sharding.Mesh` (e.g.
            ``jax.make_mesh((len(jax.devices()),), ("chains",))``) to split the chains over
            its devices: the chain axis of the state, the keys, the step sizes and the
            per-chain parameters is placed with ``NamedSharding(mesh, PartitionSpec(axis))``
            and each device runs its own ``chains / mesh.size`` chains (``chains`` must be a
            multiple of the number of devices). Each chain draws its noise from its own key
            whatever device it is on and nothing is reduced across chains, so the draws are
            those of the run without ``mesh`` (same seed; see docs/scaling.md for the last
            bit on CPUs). The draws are gathered to the host for the trace. Under
            ``jax.distributed`` the mesh may span the devices of every process: each process
            makes the same call, runs its devices' chains and gets the whole trace
            (``checkpoint=`` and ``store=`` are refused there).

    Returns:
        A :class:`langevin.Trace`.

    Raises:
        SamplingError: every chain stopped because the target's code raised; the draws made
            before are in its ``.trace``.

    Warns:
        DivergenceWarning: a chain's state became non-finite; that chain stopped.
        TargetCodeWarning: the target's code raised in some chains; they stopped, the others
            finished (``Trace.failures``).
        DivergentTransitionWarning: transitions of a Hamiltonian kernel after warm-up had an
            energy error above the kernel's ``divergence_threshold`` (the chains went on).

    Example:
        >>> import langevin
        >>> trace = langevin.sample(langevin.targets.gaussian(3), langevin.MALA(0.5),
        ...                         chains=2, warmup=200, draws=300, seed=1, progress=False)
        >>> trace.draws.shape
        (2, 300, 3)
    """
    # -- checks, before anything compiles -------------------------------------------------
    if not isinstance(target, Target):
        if callable(target):
            raise TypeError(
                "target must be a langevin.Target; wrap your log-density with "
                "Target.from_jax(logdensity) or Target.from_numba(logdensity, grad)"
            )
        raise TypeError(f"target must be a langevin.Target; got {type(target).__name__}")
    if not isinstance(kernel, Kernel):
        raise TypeError(
            f"kernel must be a langevin kernel such as langevin.MALA(step_size); got {kernel!r}"
        )
    chains = _check_count("chains", chains, 1)
    warmup = _check_count("warmup", warmup, 0)
    draws = _check_count("draws", draws, 1)
    thin = _check_count("thin", thin, 1)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    if target_acceptance is None:
        target_acceptance = kernel.target_acceptance
    elif isinstance(target_acceptance, bool) or not isinstance(target_acceptance, numbers.Real):
        raise TypeError(
            f"target_acceptance must be a float in (0, 1); got {type(target_acceptance).__name__}"
            f" {target_acceptance!r}"
        )
    elif not (0.0 < float(target_acceptance) < 1.0):
        raise ValueError(f"target_acceptance must be in (0, 1); got {target_acceptance}")
    if isinstance(init_jitter, bool) or not isinstance(init_jitter, numbers.Real):
        raise TypeError(f"init_jitter must be a non-negative float; got {init_jitter!r}")
    if not (0 <= init_jitter < float("inf")):
        raise ValueError(f"init_jitter must be non-negative and finite; got {init_jitter!r}")
    if adapt_mass_matrix is None:
        adapt_mass_matrix = kernel.adapts_inverse_mass
    elif not isinstance(adapt_mass_matrix, bool):
        raise TypeError(f"adapt_mass_matrix must be True, False or None; got {adapt_mass_matrix!r}")
    elif adapt_mass_matrix and not kernel.adapts_inverse_mass:
        from langevin import kernels

        with_mass = sorted(
            name for name in kernels.__all__
            if getattr(getattr(kernels, name), "adapts_inverse_mass", False) is True
        )  # fmt: skip
        raise ValueError(
            f"adapt_mass_matrix=True but {kernel.name} has no mass matrix to adapt "
            f"(kernels with one: {', '.join(with_mass)})"
        )
    if not isinstance(checked, bool):
        raise TypeError(f"checked must be True or False; got {checked!r}")
    if checked and backend != "numba":
        raise ValueError(
            "checked=True applies to the Numba backend (JAX checks indices itself: out-of-range "
            "gathers are clamped; see jax.experimental.checkify for checked JAX code)"
        )
    if mesh is not None:
        _check_mesh(mesh, backend, chains)
    checkpoint = _check_path("checkpoint", checkpoint)
    store = _check_path("store", store)
    if checkpoint_every is not None:
        checkpoint_every = _check_count("checkpoint_every", checkpoint_every, 1)
        if checkpoint is None:
            raise ValueError("checkpoint_every is set but checkpoint (the file) is not")
    _check_multiprocess(mesh, checkpoint, store)
    if store is not None and os.path.exists(store) and not os.path.isdir(store):
        raise ValueError(f"store must be a directory; {store!r} is a file")
    store_dtype = _check_store_dtype(store_dtype)
    seed_seq, seed_value = _seed_sequence(seed)
    seed_record = _seed_record(seed_seq)
    init_ss = seed_seq.spawn(3)[0]
    start, dtype = _initial_positions(
        target, initial_position, chains, np.random.default_rng(init_ss), init_jitter
    )
    dim = start.shape[1]
    target = target.with_dim(dim)
    keep = _check_keep(keep, target.names_or_default(), dim)
    be = get_backend(backend)
    # The user's float dtype where the engine has it (JAX without x64 computes a NumPy
    # float64 start in float32, as jnp.asarray would); the engine's default otherwise.
    dtype = be.default_float() if dtype is None else be.canonical_float(dtype)
    settings = RunSettings(
        chains=chains, warmup=warmup, draws=draws, thin=thin, backend=backend,
        seed=seed_value if seed is None else seed, seed_sequence=seed_record,
        target_acceptance=target_acceptance, adapt_mass_matrix=adapt_mass_matrix,
        checked=checked, dtype=np.dtype(dtype).str, store=store,
        store_dtype=None if store_dtype is None else store_dtype.str, keep=keep,
    )  # fmt: skip
    return execute(target, kernel, settings, start, progress=progress, checkpoint=checkpoint,
                   checkpoint_every=checkpoint_every, mesh=mesh)  # fmt: skip


def _check_mesh(mesh, backend: str, chains: int) -> None:
    """``mesh``: a one-axis JAX mesh of this process's devices whose size divides ``chains``."""
    if backend != "jax":
        raise ValueError(f"mesh= splits the chains over JAX devices: use backend='jax' "
                         f"(got backend={backend!r})")  # fmt: skip
    import jax

    if not isinstance(mesh, jax.sharding.Mesh) or len(mesh.axis_names) != 1:
        raise TypeError("mesh must be a one-axis jax.sharding.Mesh, e.g. "
                        f"jax.make_mesh((n_devices,), ('chains',)); got {mesh!r}")  # fmt: skip
    if chains % mesh.size:
        raise ValueError(f"chains={chains} must be a multiple of the number of devices in mesh "
                         f"({mesh.size}): each device runs the same number of chains")  # fmt: skip


def _check_multiprocess(mesh, checkpoint, store) -> None:
    """A mesh over several processes (``jax.distributed``): no checkpoint or store yet."""
    if mesh is None:
        return
    import jax

    if all(d.process_index == jax.process_index() for d in mesh.devices.flat):
        return
    for name, value in (("checkpoint", checkpoint), ("store", store)):
        if value is not None:
            raise ValueError(f"{name}= is not supported with a mesh over several processes "
                             "(each gets the whole trace: save it from process 0)")  # fmt: skip


@dataclasses.dataclass
class RunSettings:
    """What a run was asked to do, as plain values (a checkpoint stores them as JSON)."""

    chains: int
    warmup: int
    draws: int
    thin: int
    backend: str
    seed: Any  # what Trace.seed records
    seed_sequence: dict  # entropy, spawn key, children spawned before: the SeedSequence
    target_acceptance: float | None
    adapt_mass_matrix: bool
    checked: bool
    dtype: str
    store: str | None = None
    store_dtype: str | None = None
    keep: list[int] | None = None

    @property
    def total(self) -> int:
        return self.warmup + self.draws * self.thin


def _check_path(name: str, value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike); got {value!r}")
    return os.fspath(value)


def _check_store_dtype(value):
    if value is None:
        return None
    try:
        dt = np.dtype(value)
    except TypeError as exc:
        raise TypeError(f"store_dtype must be a float dtype such as np.float32; got {value!r}") \
            from exc  # fmt: skip
    if not np.issubdtype(dt, np.floating):
        raise TypeError(f"store_dtype must be a float dtype such as np.float32; got {dt}")
    return dt


def _check_keep(keep, names: dict, dim: int) -> list[int] | None:
    """``keep`` as sorted flat indices (parameter names expand to their blocks)."""
    if keep is None:
        return None
    if isinstance(keep, (str, numbers.Integral)):
        keep = [keep]
    try:
        items = list(keep)
    except TypeError:
        raise TypeError(f"keep must be a list of parameter names or coordinates; got {keep!r}") \
            from None  # fmt: skip
    if not items:
        raise ValueError("keep is empty: name at least one parameter or coordinate to keep")
    index: set[int] = set()
    for item in items:
        if isinstance(item, str):
            if item not in names:
                raise ValueError(f"keep: {item!r} is not a parameter of the target "
                                 f"(its parameters: {list(names)})")  # fmt: skip
            s, _ = names[item]
            index.update(range(s.start, s.stop))
        elif isinstance(item, numbers.Integral) and not isinstance(item, bool):
            if not 0 <= int(item) < dim:
                raise ValueError(f"keep: coordinate {item} is out of range for dim={dim}")
            index.add(int(item))
        else:
            raise TypeError(f"keep: {item!r} is neither a parameter name nor a coordinate")
    return sorted(index)


def kept_names(names: dict, keep: list[int] | None) -> dict:
    """The trace's ``{name: (slice, shape)}`` for the kept coordinates: a parameter kept
    whole keeps its name and shape; a coordinate kept alone is the scalar ``name[i,j]``."""
    if keep is None:
        return names
    kept = set(keep)
    out, pos = {}, 0
    for name, (s, shape) in names.items():
        idx = [i for i in range(s.start, s.stop) if i in kept]
        if len(idx) == s.stop - s.start:
            out[name] = (slice(pos, pos + len(idx)), shape)
            pos += len(idx)
            continue
        for i in idx:
            where = ",".join(str(int(j)) for j in np.unravel_index(i - s.start, shape))
            out[f"{name}[{where}]"] = (slice(pos, pos + 1), ())
            pos += 1
    return out


def _seed_record(ss: np.random.SeedSequence) -> dict:
    entropy = ss.entropy
    if not isinstance(entropy, int):
        entropy = [int(e) for e in np.atleast_1d(entropy)]
    return {"entropy": entropy, "spawn_key": [int(k) for k in ss.spawn_key],
            "children": int(ss.n_children_spawned)}  # fmt: skip


def seed_sequences(record: dict):
    """The run's three seed sequences (starting points, noise, initial noise), again."""
    ss = np.random.SeedSequence(record["entropy"], spawn_key=tuple(record["spawn_key"]),
                                n_children_spawned=record["children"])  # fmt: skip
    return ss.spawn(3)


class Run:
    """One run of the driver: the compiled kernel and everything that changes as it goes
    (what a checkpoint stores and :func:`langevin.resume` restores)."""

    def __init__(self, target: Target, kernel: Kernel, settings: RunSettings,
                 start: np.ndarray, reopen_store: bool = False, mesh=None) -> None:  # fmt: skip
        self.settings, self.kernel, self.start = settings, kernel, start
        chains, dim = start.shape
        self.dim = dim
        if settings.checked:
            target = target.checked()
        self.target = target
        be = self.backend = get_backend(settings.backend)
        dtype = np.dtype(settings.dtype)
        self.step_adaptation, self.components = _components(
            kernel, settings.target_acceptance, chains, dim, settings.warmup,
            settings.adapt_mass_matrix, target)  # fmt: skip
        if mesh is not None and any(c.changes_target for c in self.components):
            raise ValueError("target: its warm-up components refit it between chunks, which "
                             "is not supported with mesh= yet")  # fmt: skip
        params = be.broadcast_params(kernel.params(), chains)  # per chain: components adapt them
        for component in self.components:
            params = component.initial_params(params)
        self.params = params
        _, noise_ss, init_noise_ss = seed_sequences(settings.seed_sequence)
        if settings.backend == "numba":  # the first call may compile the user's functions
            health.probe_numba_target(target, start[0])
        adaptation_cls = type(self.step_adaptation) if self.step_adaptation else None
        if mesh is None:
            self.prepared = be.prepare(kernel, target, dim, dtype, adaptation_cls)
            self.sources = be.noise_sources(noise_ss, chains)
        else:  # the chains' keys live with their chains (JAX only)
            self.prepared = be.prepare(kernel, target, dim, dtype, adaptation_cls, mesh=mesh)
            self.sources = be.place_members(be.noise_sources(noise_ss, chains),
                                            self.prepared.mesh)  # fmt: skip
        self.state = be.init(self.prepared, start, params, None,
                             be.noise_sources(init_noise_ss, chains))  # fmt: skip
        _check_initial_state(self.state if mesh is None else be.to_host(self.state), chains)

        self.adapting = settings.warmup > 0 and self.step_adaptation is not None
        self.step_size = np.full(chains, float(kernel.step_size))
        sa = self.step_adaptation
        self.ad_state = sa.initial_state(self.step_size) if sa else None
        self.ad_params = sa.params() if sa else None
        self.boundaries = sorted({b for c in self.components for b in c.boundaries})
        self.chunk = be.first_chunk(chains, dim, kernel)

        self.out_dtype = np.dtype(settings.store_dtype or dtype)
        self.keep = None if settings.keep is None else np.asarray(settings.keep)
        k = dim if self.keep is None else len(self.keep)
        self.draw_store = None
        if settings.store is not None:
            self.draw_store = DrawStore(settings.store, (chains, settings.draws, k),
                                        self.out_dtype, create=not reopen_store)  # fmt: skip
            self.position_out = None
        else:
            self.position_out = np.full((chains, settings.draws, k), np.nan, self.out_dtype)
        self.stats_out: dict[str, np.ndarray] = {}
        self.warm_stats: dict[str, np.ndarray] = {}
        self.diverged: dict[int, int] = {}
        self.failures: dict[int, ChainFailure] = {}
        self.best_lp = np.full(chains, -np.inf)  # each chain's highest log-density so far
        self.alive = np.ones(chains, dtype=bool)
        self.movement = health.MovementMonitor(chains, dim)
        self.interrupted = False
        self.done = 0
        self.kept = 0
        self.elapsed = 0.0

    def extend(self, draws: int) -> None:
        """Room for ``draws`` kept draws per chain (a resumed run asking for more)."""
        old = self.settings.draws
        if draws == old:
            return
        if draws < self.kept:
            raise ValueError(f"draws={draws} is fewer than the {self.kept} draws per chain the "
                             "checkpoint already holds")  # fmt: skip
        self.settings = dataclasses.replace(self.settings, draws=draws)
        if self.draw_store is not None:
            self.draw_store = self.draw_store.grow(draws)
        else:
            grown = np.full((*self.position_out.shape[:1], draws, self.position_out.shape[2]),
                            np.nan, self.out_dtype)  # fmt: skip
            n = min(old, draws)
            grown[:, :n] = self.position_out[:, :n]
            self.position_out = grown
        for k, v in self.stats_out.items():
            grown = np.zeros((v.shape[0], draws), v.dtype)
            grown[:, : min(old, draws)] = v[:, : min(old, draws)]
            self.stats_out[k] = grown

    def drive(self, interrupts, progress: bool, checkpoint: str | None,
              checkpoint_every: int | None) -> None:  # fmt: skip
        """Run the remaining steps chunk by chunk (interrupts, checkpoints, progress)."""
        s, be, kernel = self.settings, self.backend, self.kernel
        chains, warmup, total = s.chains, s.warmup, s.total
        if checkpoint is not None and checkpoint_every is None:
            checkpoint_every = max(1, total // 10)
        last_checkpoint = self.done
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(
                total=total,
                initial=self.done,
                unit="step",
                leave=True,
                dynamic_ncols=True,
                desc=f"{kernel.name} warm-up" if self.done < warmup else kernel.name,
            )
        t_start = time.perf_counter()
        try:
            while self.done < total:
                done = self.done
                in_warmup = done < warmup
                n = min(self.chunk, (warmup - done) if in_warmup else (total - done))
                # Chunks end where a warm-up component needs them to (a chunk is in one stage).
                n = min([n, *(b - done for b in self.boundaries if b > done)])
                if be.aligned_chunks:  # one noise block per chunk
                    n = min(n, self.chunk - done % self.chunk)
                if checkpoint is not None:  # and at checkpoints (no step depends on where)
                    n = min(n, last_checkpoint + checkpoint_every - done)
                result = be.run(self.prepared, self.state, n, self.step_size,
                                adapt=in_warmup and self.adapting, adaptation=self.ad_state,
                                adaptation_params=self.ad_params, active=self.alive,
                                params=self.params, rngs=self.sources, start=done)  # fmt: skip
                # sized by the engine's own running time: a first chunk that compiled is not slow
                self.chunk = be.next_chunk(chains, self.dim, kernel, result.seconds / n)
                self._record(result, n)
                if bar is not None:
                    bar.update(n)
                    if self.done == warmup:
                        bar.set_description(kernel.name)
                    if self.diverged:
                        bar.set_postfix(diverged=len(self.diverged))
                if not self.alive.any():
                    break
                if checkpoint is not None and self.done - last_checkpoint >= checkpoint_every \
                        and self.done < total:  # fmt: skip
                    self.elapsed += time.perf_counter() - t_start
                    t_start = time.perf_counter()
                    write_checkpoint(checkpoint, self)
                    last_checkpoint = self.done
                interrupts.check()  # after this chunk's draws are stored
        except KeyboardInterrupt:
            self.interrupted = True
            warnings.warn(
                f"sampling interrupted after {self.done} of {total} steps; returning the "
                f"{self.kept} draws per chain made so far",
                RuntimeWarning,
                stacklevel=3,
            )
        finally:
            if bar is not None:
                bar.close()
        self.elapsed += time.perf_counter() - t_start
        if checkpoint is not None:
            write_checkpoint(checkpoint, self)

    def _record(self, result, n: int) -> None:
        """Take in one chunk's result: health checks, statistics, adaptation, kept draws."""
        s, done = self.settings, self.done
        chains, warmup, thin = s.chains, s.warmup, s.thin
        self.state, self.ad_state = result.state, result.adaptation
        if not self.kernel.logdensity_is_estimate:
            health.flag_collapses(result, self.best_lp, health.COLLAPSE_THRESHOLD + self.dim,
                                  self.alive)  # fmt: skip
        health.record_divergences(result, done, self.alive, self.diverged)
        health.record_failures(result, self.state, done, self.alive, self.failures)
        stats = {"lp": result.logdensity, **result.info}
        if done < warmup:
            for k, v in stats.items():
                self.warm_stats.setdefault(k, _missing((chains, warmup), v.dtype))[
                    :, done : done + n
                ] = v
            for component in self.components:
                component.observe(done, result.position)
            self.done = done = done + n
            for component in self.components:  # a refit target (e.g. a flow's new weights)
                if not component.changes_target:  # (and never under a mesh: refused above)
                    continue
                change = component.update_target(done, self.prepared.form.data,
                                                  np.asarray(self.state.position))  # fmt: skip
                if change is not None:
                    self.set_target_data(change[0], change[1], done)
            for component in self.components:
                self.params, log_factor = component.update(done, self.params)
                if log_factor is not None and self.adapting:
                    self.ad_state = self.step_adaptation.rescale(self.ad_state, log_factor,
                                                                 warmup - done)  # fmt: skip
            if done == warmup and self.adapting:
                self.step_size = self.step_adaptation.final_step_size(self.ad_state)
            return
        offset = done - warmup
        # the kept steps are those with (offset + t + 1) % thin == 0
        first = (thin - 1 - offset) % thin
        # a basic slice: a view of the chunk's buffers (an index array copied them whole)
        sel = slice(first, n, thin)
        size = len(range(first, n, thin))
        if size:
            k0, k1 = self.kept, self.kept + size
            rows = result.position[:, sel]
            self.movement.observe(rows)
            if self.keep is not None:
                rows = rows[:, :, self.keep]
            if self.draw_store is not None:
                self.draw_store.write(k0, rows)
            else:
                self.position_out[:, k0:k1] = rows
            for k, v in stats.items():
                out = self.stats_out.setdefault(k, np.zeros((chains, s.draws), v.dtype))
                out[:, k0:k1] = v[:, sel]
            self.kept = k1
        self.done = done + n

    def set_target_data(self, data: Any, positions: np.ndarray | None = None,
                        done: int = 0) -> None:  # fmt: skip
        """Give the compiled target new runtime data of the same structure (nothing
        recompiles); with ``positions`` (chains, dim), restart every chain's state there."""
        self.prepared = self.prepared._replace(form=self.prepared.form._replace(data=data))
        if positions is None:
            return
        _, _, init_ss = seed_sequences(self.settings.seed_sequence)
        ss = np.random.SeedSequence(init_ss.entropy, spawn_key=(*init_ss.spawn_key, 1, done))
        chains = positions.shape[0]
        self.state = self.backend.init(self.prepared, positions, self.params, None,
                                       self.backend.noise_sources(ss, chains))  # fmt: skip

    def generator_states(self) -> list | None:
        """Each chain's generator state (Numba), None where the noise is keyed (JAX)."""
        if not isinstance(self.sources, (list, tuple)) or not all(
            isinstance(g, np.random.Generator) for g in self.sources
        ):  # JAX's keys (which may live on other processes' devices) are not iterated
            return None
        return [g.bit_generator.state for g in self.sources]

    def draws_so_far(self) -> np.ndarray:
        if self.draw_store is not None:
            return self.draw_store.read(self.kept)
        return self.position_out[:, : self.kept]

    def finish(self) -> Trace:
        """The trace, after the end-of-run reports."""
        s, kernel, kept = self.settings, self.kernel, self.kept
        health.warn_stopped_chains(kernel, self.diverged)
        stats_final = {k: v[:, :kept] for k, v in self.stats_out.items()}
        stats_final["step_size"] = np.broadcast_to(self.step_size[:, None], (s.chains, kept)).copy()
        health.warn_divergent_transitions(kernel, stats_final, self.diverged)
        target = self.target
        # what the components keep; "constrain": a refit target's map to the parameters
        extras = {k: v for c in self.components for k, v in c.result().items()}
        trace = Trace(
            draws=self.draws_so_far(),
            sample_stats=stats_final,
            warmup_stats=self.warm_stats,
            step_size=np.asarray(self.step_size, dtype=float),
            names=kept_names(target.names_or_default(), s.keep),
            kernel=kernel,
            backend=s.backend,
            seed=s.seed,
            target_name=target.name,
            diverged=self.diverged,
            interrupted=self.interrupted,
            elapsed=self.elapsed,
            constrain=extras.pop("constrain", target.constrain) if s.keep is None else None,
            failures=self.failures,
            generator_states=self.generator_states(),
            **{k: v for k, v in extras.items() if k != "constrain"},
        )
        if self.draw_store is not None:
            from langevin.io import save

            save(trace, os.path.join(s.store, TRACE_FILE), draws_file=DRAWS_FILE)
        stopped = set(self.diverged) | set(self.failures)
        health.warn_stuck_chains(kernel, self.movement, self.step_size, stopped, self.adapting)
        health.raise_or_warn_failures(self.failures, s.chains, trace, s.checked)
        return trace


def execute(
    target: Target,
    kernel: Kernel,
    settings: RunSettings,
    start: np.ndarray,
    *,
    progress: bool,
    checkpoint: str | None,
    checkpoint_every: int | None,
    restore=None,
    draws: int | None = None,
    reopen_store: bool = False,
    mesh=None,
) -> Trace:
    """Compile, initialise (or restore from a checkpoint), run and report (the chains split
    over ``mesh``'s devices when one is given; JAX only)."""
    failures = contextlib.nullcontext() if mesh is None else get_backend("jax").failures_named(mesh)
    with deferred_interrupts() as interrupts, failures:
        run = Run(target, kernel, settings, start, reopen_store, mesh)
        if restore is not None:
            restore(run)
        if draws is not None:
            run.extend(draws)
        interrupts.check()  # Ctrl-C while compiling: nothing was drawn yet
        run.drive(interrupts, progress, checkpoint, checkpoint_every)
    return run.finish()


def _missing(shape: tuple[int, ...], dtype) -> np.ndarray:
    """Room for statistics not made yet: NaN for floats, 0 for counts and flags (which have
    no NaN; ``Trace.live`` says which steps a stopped chain did not make)."""
    dtype = np.dtype(dtype)
    fill = np.nan if np.issubdtype(dtype, np.floating) else 0
    return np.full(shape, fill, dtype)


def _components(kernel: Kernel, target_acceptance, chains: int, dim: int, warmup: int,
                adapt_mass_matrix: bool, target: Any = None):  # fmt: skip
    """The step-size component and the between-chunk components of this run: the kernel's,
    then the target's own (``target.warmup_components``: factories called as a kernel's
    component classes are, e.g. a flow-transformed target's refit of its flow)."""
    step, others = None, []
    for cls in kernel.adaptation:
        if issubclass(cls, StepSizeAdaptation):
            step = cls(kernel, target_acceptance)
        elif issubclass(cls, WarmupComponent):
            # adapt_mass_matrix=False: the component still sets up (and checks) the per-chain
            # inverse mass, over a warm-up of 0 steps, so it never changes it
            fixed = cls.adapts_inverse_mass and not adapt_mass_matrix
            others.append(cls(kernel, chains, dim, 0 if fixed else warmup))
        else:
            raise TypeError(f"{kernel.name}.adaptation: {cls!r} is not an adaptation component")
    for factory in getattr(target, "warmup_components", None) or ():
        component = factory(kernel, chains, dim, warmup)
        if not isinstance(component, WarmupComponent):
            raise TypeError(f"target.warmup_components: {factory!r} made {component!r}, not a "
                            "langevin.adaptation.WarmupComponent")  # fmt: skip
        others.append(component)
    return step, others
