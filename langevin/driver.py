"""The driver: ``sample(target, kernel, ...)`` — checks, warm-up, draws, progress, interruption.

Every argument is checked before anything is compiled; a bad one raises ``ValueError`` or
``TypeError`` naming it. The run goes chunk by chunk (bounded memory, a moving progress
bar, a place to stop): Ctrl-C returns the draws made so far with a warning, and a chain
whose state becomes non-finite stops while the others finish, reported in
``Trace.diverged``.
"""

from __future__ import annotations

import numbers
import time
import warnings
from typing import Any

import numpy as np

from langevin.adaptation.dual_averaging import DualAveragingParams, dual_averaging_init
from langevin.backends.base import BACKENDS, get_backend
from langevin.kernels.base import Kernel
from langevin.targets.base import Target
from langevin.trace import Trace

__all__ = ["sample", "INIT_JITTER"]

#: Chains started from one point start at ``point + U(-INIT_JITTER, INIT_JITTER)`` per coordinate.
INIT_JITTER = 0.1
#: Without any starting point, chains start uniformly in ``[-2, 2]^dim`` (Stan's convention).
INIT_RADIUS = 2.0
#: Numba chunks: at most this many bytes of recorded positions per chunk...
_NUMBA_CHUNK_BYTES = 16 * 2**20
#: ...and about this many seconds each (progress updates, Ctrl-C response), once the first,
#: short chunk has measured the cost of a step. Draws do not depend on the chunking.
_CHUNK_SECONDS = 0.25
_FIRST_CHUNK = 50


class DivergenceWarning(UserWarning):
    """A chain's state became non-finite and that chain was stopped."""


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
            return rng.uniform(-INIT_RADIUS, INIT_RADIUS, (chains, target.dim)), np.float64
        else:
            raise ValueError(
                "initial_position is required: the target does not know its dimension "
                "(pass dim= to Target.from_jax/from_numba, or an initial_position)"
            )
    else:
        point = initial_position
    dtype = getattr(point, "dtype", None)
    try:
        arr = np.asarray(point)
    except Exception as exc:
        raise TypeError(f"initial_position must be an array of floats; got {type(point)}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"initial_position must be an array of floats; got dtype {arr.dtype}")
    dtype = np.dtype(dtype) if dtype is not None and np.issubdtype(arr.dtype, np.floating) else None
    dtype = dtype or np.dtype(np.float64)
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


def _check_initial_state(state, backend_name: str, n_chains: int) -> None:
    lp = np.asarray(state.logdensity if backend_name == "jax" else [s.logdensity for s in state])
    grads = np.asarray(state.grad if backend_name == "jax" else [s.grad for s in state])
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
) -> Trace:
    """Sample ``target`` with ``kernel``: warm-up (step-size adaptation), then draws.

    Warm-up runs ``warmup`` steps; for kernels that adapt (MALA) the step size is tuned per
    chain by dual averaging toward ``target_acceptance`` (MALA: 0.574), starting from the
    kernel's ``step_size``. Kernels that do not adapt (ULA) keep their step size, and their
    warm-up only moves the chains toward stationarity.

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

    Returns:
        A :class:`langevin.Trace`.

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
    elif not (0.0 < float(target_acceptance) < 1.0):
        raise ValueError(f"target_acceptance must be in (0, 1); got {target_acceptance}")
    if not (isinstance(init_jitter, numbers.Real) and init_jitter >= 0):
        raise ValueError(f"init_jitter must be a non-negative float; got {init_jitter!r}")
    seed_seq, seed_value = _seed_sequence(seed)
    init_ss, noise_ss = seed_seq.spawn(2)
    start, dtype = _initial_positions(
        target, initial_position, chains, np.random.default_rng(init_ss), init_jitter
    )
    dim = start.shape[1]
    target = target.with_dim(dim)

    # -- compile (or load) and initialise -----------------------------------------------
    be = get_backend(backend)
    prepared = be.prepare(kernel, target, dim, dtype)
    state = be.init(prepared, start)
    _check_initial_state(state, backend, chains)

    adapting = warmup > 0 and kernel.adapts_step_size
    step_size = np.full(chains, float(kernel.step_size))
    if backend == "numba":
        rngs = [np.random.default_rng(s) for s in noise_ss.spawn(chains)]
        da = [dual_averaging_init(kernel.step_size) for _ in range(chains)]
        chunk_cap = int(max(10, _NUMBA_CHUNK_BYTES // (8 * (dim + 1) * chains)))
        chunk = min(chunk_cap, _FIRST_CHUNK)
    else:
        import jax.numpy as jnp

        from langevin.adaptation.dual_averaging import DualAveragingState

        rngs = be.chain_keys(int(noise_ss.generate_state(1)[0]), chains)
        da0 = dual_averaging_init(kernel.step_size)
        da = DualAveragingState(*(jnp.full(chains, v, dtype) for v in da0))
        chunk = be.chunk_length(chains, dim, kernel)
    da_params = DualAveragingParams(target_acceptance or 0.8, 0.05, 10.0, 0.75)

    total = warmup + draws * thin
    position_out = np.full((chains, draws, dim), np.nan, dtype=dtype)
    stats_out: dict[str, np.ndarray] = {}
    warm_stats: dict[str, np.ndarray] = {}
    diverged: dict[int, int] = {}
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
            kwargs: dict[str, Any] = dict(adapt=in_warmup and adapting, adaptation=da,
                                          adaptation_params=da_params, active=alive)  # fmt: skip
            if backend == "numba":
                t_chunk = time.perf_counter()
                result = be.run(prepared, state, n, step_size, rngs=rngs, **kwargs)
                per_step = (time.perf_counter() - t_chunk) / n
                chunk = int(min(chunk_cap, max(10, _CHUNK_SECONDS / max(per_step, 1e-9))))
            else:
                result = be.run(prepared, state, n, step_size, keys=rngs, start=done, **kwargs)
            state, da = result.state, result.adaptation
            _record_divergences(result, done, alive, diverged)
            stats = {"lp": result.logdensity, **result.info}
            if in_warmup:
                for k, v in stats.items():
                    warm_stats.setdefault(k, np.full((chains, warmup), np.nan, v.dtype))[
                        :, done : done + n
                    ] = v
                done += n
                if done == warmup and adapting:
                    step_size = np.exp(np.asarray(da.log_step_avg if backend == "jax" else
                                                  [d.log_step_avg for d in da]))  # fmt: skip
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
                        stats_out.setdefault(k, np.zeros((chains, draws), v.dtype))[:, k0:k1] = v[
                            :, sel
                        ]
                    kept = k1
                done += n
            if bar is not None:
                bar.update(n)
                if diverged:
                    bar.set_postfix(diverged=len(diverged))
            if not alive.any():
                break
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

    if diverged:
        warnings.warn(
            "chain(s) "
            + ", ".join(f"{c} (step {s})" for c, s in sorted(diverged.items()))
            + " diverged: the state became non-finite, so those chains stopped; their draws "
            "after that step are NaN. Reduce the step size"
            + (" (ULA needs h < 2/L)" if not kernel.exact else "")
            + ".",
            DivergenceWarning,
            stacklevel=2,
        )
    stats_final = {k: v[:, :kept] for k, v in stats_out.items()}
    stats_final["step_size"] = np.broadcast_to(step_size[:, None], (chains, kept)).copy()
    return Trace(
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
    )


def _record_divergences(result, done: int, alive, diverged: dict) -> None:
    for c in np.where(result.diverged & alive)[0]:
        diverged[int(c)] = done + int(result.n_done[c])
        alive[c] = False
