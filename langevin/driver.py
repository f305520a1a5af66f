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

import numbers
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
        raise ValueError(
            f"adapt_mass_matrix=True but {kernel.name} has no mass matrix to adapt "
            "(kernels with one: HMC)"
        )
    if not isinstance(checked, bool):
        raise TypeError(f"checked must be True or False; got {checked!r}")
    if checked and backend != "numba":
        raise ValueError(
            "checked=True applies to the Numba backend (JAX checks indices itself: out-of-range "
            "gathers are clamped; see jax.experimental.checkify for checked JAX code)"
        )
    if checked:
        target = target.checked()
    seed_seq, seed_value = _seed_sequence(seed)
    init_ss, noise_ss, init_noise_ss = seed_seq.spawn(3)
    start, dtype = _initial_positions(
        target, initial_position, chains, np.random.default_rng(init_ss), init_jitter
    )
    dim = start.shape[1]
    target = target.with_dim(dim)
    be = get_backend(backend)
    # The user's float dtype where the engine has it (JAX without x64 computes a NumPy
    # float64 start in float32, as jnp.asarray would); the engine's default otherwise.
    dtype = be.default_float() if dtype is None else be.canonical_float(dtype)

    # -- adaptation components the kernel opts into (checked before compiling) --------------
    step_adaptation, warmup_components = _components(kernel, target_acceptance, chains, dim,
                                                     warmup, adapt_mass_matrix)  # fmt: skip
    params = be.broadcast_params(kernel.params(), chains)  # per chain: components adapt them
    for component in warmup_components:
        params = component.initial_params(params)

    with deferred_interrupts() as interrupts:
        # -- compile (or load) and initialise -----------------------------------------------
        if backend == "numba":  # the first call may compile the user's functions
            health.probe_numba_target(target, start[0])
        prepared = be.prepare(kernel, target, dim, dtype,
                              type(step_adaptation) if step_adaptation else None)  # fmt: skip
        sources = be.noise_sources(noise_ss, chains)
        state = be.init(prepared, start, params, None, be.noise_sources(init_noise_ss, chains))
        _check_initial_state(state, chains)
        interrupts.check()  # Ctrl-C while compiling: nothing was drawn yet

        adapting = warmup > 0 and step_adaptation is not None
        step_size = np.full(chains, float(kernel.step_size))
        ad_state = step_adaptation.initial_state(step_size) if step_adaptation else None
        ad_params = step_adaptation.params() if step_adaptation else None
        boundaries = sorted({b for c in warmup_components for b in c.boundaries})
        chunk = be.first_chunk(chains, dim, kernel)

        total = warmup + draws * thin
        position_out = np.full((chains, draws, dim), np.nan, dtype=dtype)
        stats_out: dict[str, np.ndarray] = {}
        warm_stats: dict[str, np.ndarray] = {}
        diverged: dict[int, int] = {}
        failures: dict[int, health.ChainFailure] = {}
        best_lp = np.full(chains, -np.inf)  # each chain's highest log-density so far
        alive = np.ones(chains, dtype=bool)
        interrupted = False
        done = 0
        kept = 0

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc=f"{kernel.name} warm-up" if warmup else kernel.name,
                       unit="step", leave=True, dynamic_ncols=True)  # fmt: skip
        t_start = time.perf_counter()
        try:
            while done < total:
                in_warmup = done < warmup
                n = min(chunk, (warmup - done) if in_warmup else (total - done))
                # Chunks end where a warm-up component needs them to (a chunk is in one stage).
                n = min([n, *(b - done for b in boundaries if b > done)])
                result = be.run(prepared, state, n, step_size, adapt=in_warmup and adapting,
                                adaptation=ad_state, adaptation_params=ad_params, active=alive,
                                params=params, rngs=sources, start=done)  # fmt: skip
                # sized by the engine's own running time: a first chunk that compiled is not slow
                chunk = be.next_chunk(chains, dim, kernel, result.seconds / n)
                state, ad_state = result.state, result.adaptation
                if not kernel.logdensity_is_estimate:
                    health.flag_collapses(result, best_lp, health.COLLAPSE_THRESHOLD + dim, alive)
                health.record_divergences(result, done, alive, diverged)
                health.record_failures(result, state, done, alive, failures)
                stats = {"lp": result.logdensity, **result.info}
                if in_warmup:
                    for k, v in stats.items():
                        warm_stats.setdefault(k, np.full((chains, warmup), np.nan, v.dtype))[
                            :, done : done + n
                        ] = v
                    for component in warmup_components:
                        component.observe(done, result.position)
                    done += n
                    for component in warmup_components:
                        params, log_factor = component.update(done, params)
                        if log_factor is not None and adapting:
                            ad_state = step_adaptation.rescale(ad_state, log_factor, warmup - done)
                    if done == warmup and adapting:
                        step_size = step_adaptation.final_step_size(ad_state)
                        if bar is not None:
                            bar.set_description(kernel.name)
                else:
                    offset = done - warmup
                    # the kept steps are those with (offset + t + 1) % thin == 0
                    first = (thin - 1 - offset) % thin
                    sel = np.arange(first, n, thin)
                    if sel.size:
                        k0, k1 = kept, kept + sel.size
                        position_out[:, k0:k1] = result.position[:, sel]
                        for k, v in stats.items():
                            out = stats_out.setdefault(k, np.zeros((chains, draws), v.dtype))
                            out[:, k0:k1] = v[:, sel]
                        kept = k1
                    done += n
                if bar is not None:
                    bar.update(n)
                    if diverged:
                        bar.set_postfix(diverged=len(diverged))
                if not alive.any():
                    break
                interrupts.check()  # after this chunk's draws are stored
        except KeyboardInterrupt:
            interrupted = True
            warnings.warn(
                f"sampling interrupted after {done} of {total} steps; returning the {kept} draws "
                "per chain made so far",
                RuntimeWarning,
                stacklevel=2,
            )
        finally:
            if bar is not None:
                bar.close()
    elapsed = time.perf_counter() - t_start

    health.warn_stopped_chains(kernel, diverged)
    stats_final = {k: v[:, :kept] for k, v in stats_out.items()}
    stats_final["step_size"] = np.broadcast_to(step_size[:, None], (chains, kept)).copy()
    health.warn_divergent_transitions(kernel, stats_final, diverged)
    trace = Trace(
        draws=position_out[:, :kept],
        sample_stats=stats_final,
        warmup_stats=warm_stats,
        step_size=np.asarray(step_size, dtype=float),
        names=target.names_or_default(),
        kernel=kernel,
        backend=backend,
        seed=seed_value if seed is None else seed,
        target_name=target.name,
        diverged=diverged,
        interrupted=interrupted,
        elapsed=elapsed,
        constrain=target.constrain,
        failures=failures,
        **{k: v for c in warmup_components for k, v in c.result().items()},
    )
    health.warn_stuck_chains(kernel, trace.draws, step_size, set(trace.stopped_chains), adapting)
    health.raise_or_warn_failures(failures, chains, trace, checked)
    return trace


def _components(kernel: Kernel, target_acceptance, chains: int, dim: int, warmup: int,
                adapt_mass_matrix: bool):  # fmt: skip
    """The step-size component and the between-chunk components of this run."""
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
    return step, others
