"""Checkpoints of a running sampler and :func:`resume`.

``sample(..., checkpoint="run.ckpt.npz")`` writes the run's whole state as it goes: the
settings and the seed, each chain's kernel state, the step-size adaptation's state and the
warm-up components' (Stan's mass-matrix windows), the per-chain parameters, the generators'
states (Numba; JAX's keys follow from the seed), the statistics and the draws kept so far
(unless they are streamed to a ``store``), and what the health checks have seen. One
``.npz`` file of arrays and a JSON record, no pickle, written to a temporary file and moved
into place (``os.replace``), so a run killed at any moment leaves the last complete one.

:func:`resume` continues the run. Because a step's noise never depends on where a chunk
starts (Numba: each chain's generator; JAX: noise blocks at absolute step counts) and the
warm-up's estimates are fed one draw at a time, the resumed run makes, bit for bit, the draws
the uninterrupted run would have made. The kernel's compiled loop is the one Numba cached on
disk in the first process: nothing recompiles.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import numpy as np

from langevin.health import ChainFailure

__all__ = ["resume", "CHECKPOINT_FORMAT"]

#: Bumped when the layout changes; :func:`resume` refuses other versions.
CHECKPOINT_FORMAT = 1


def _leaves(tree) -> list:
    if isinstance(tree, tuple):
        return [leaf for item in tree for leaf in _leaves(item)]
    return [tree]


def _rebuild(template, leaves: list):
    """``template``'s structure (nested (named) tuples) with ``leaves`` in order, each in the
    template leaf's array type and dtype."""
    it = iter(leaves)

    def build(t):
        if isinstance(t, tuple):
            items = [build(x) for x in t]
            return type(t)(*items) if hasattr(t, "_fields") else type(t)(items)
        value = next(it)
        if type(t).__module__.startswith("jax"):
            import jax.numpy as jnp

            return jnp.asarray(value, dtype=t.dtype)
        return np.asarray(value, dtype=np.asarray(t).dtype).reshape(np.shape(t))

    out = build(template)
    if next(it, None) is not None:
        raise ValueError("the checkpoint holds more values than this run's state")
    return out


def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write(path: str, run) -> None:
    """Write ``run`` (a :class:`langevin.driver.Run`) to ``path``, atomically."""
    from langevin.io import _kernel_record

    s = run.settings
    arrays: dict[str, np.ndarray] = {
        "start": run.start,
        "step_size": np.asarray(run.step_size),
        "best_lp": run.best_lp,
        "alive": run.alive,
    }
    for group, tree in (("state", run.state), ("ad_state", run.ad_state),
                        ("params", run.params)):  # fmt: skip
        if tree is not None:
            for i, leaf in enumerate(_leaves(tree)):
                arrays[f"{group}/{i}"] = np.asarray(leaf)
    for j, component in enumerate(run.components):
        for name, value in component.state_dict().items():
            arrays[f"component{j}/{name}"] = np.asarray(value)
    for name, value in run.movement.state_dict().items():
        arrays[f"movement/{name}"] = value
    for k, v in run.stats_out.items():
        arrays[f"stats/{k}"] = v[:, : run.kept]
    for k, v in run.warm_stats.items():
        arrays[f"warm/{k}"] = v
    if run.draw_store is None:
        arrays["draws"] = run.position_out[:, : run.kept]
    rng_states = run.generator_states()
    record = {
        "format": CHECKPOINT_FORMAT,
        "settings": {
            **{k: getattr(s, k) for k in s.__dataclass_fields__ if k != "seed"},
            "seed": s.seed if isinstance(s.seed, (int, type(None))) else str(s.seed),
        },
        "kernel": _kernel_record(run.kernel),
        "target_name": run.target.name,
        "dim": run.dim,
        "done": run.done,
        "kept": run.kept,
        "elapsed": run.elapsed,
        "interrupted": run.interrupted,
        "diverged": {str(c): int(v) for c, v in run.diverged.items()},
        "failures": {
            str(c): {
                "step": int(f.step),
                "position": np.asarray(f.position).tolist(),
                "error": f"{type(f.error).__name__}: {f.error}",
            }
            for c, f in run.failures.items()
        },
        "rng_states": rng_states,
    }
    arrays["record"] = np.asarray(json.dumps(record, default=_json_default))
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON record and the arrays of a checkpoint."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    if "record" not in arrays:
        raise ValueError(f"{path!r} is not a langevin checkpoint (no record)")
    record = json.loads(str(arrays.pop("record")))
    if record.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path!r}: checkpoint format {record.get('format')}; this version reads "
            f"{CHECKPOINT_FORMAT}"
        )
    return record, arrays


def _group(arrays: dict, prefix: str) -> list:
    keys = sorted((k for k in arrays if k.startswith(prefix + "/")),
                  key=lambda k: int(k.split("/")[1]))  # fmt: skip
    return [arrays[k] for k in keys]


def _named(arrays: dict, prefix: str) -> dict:
    return {k[len(prefix) + 1 :]: v for k, v in arrays.items() if k.startswith(prefix + "/")}


def resume(
    path: str | os.PathLike,
    target: Any,
    *,
    draws: int | None = None,
    kernel: Any = None,
    progress: bool = True,
    checkpoint_every: int | None = None,
):
    """Continue the run checkpointed at ``path`` (see :func:`langevin.sample`'s ``checkpoint``).

    The draws are, bit for bit, those the uninterrupted run makes with the same seed; the
    run goes on writing checkpoints to ``path``.

    Args:
        path: the checkpoint file.
        target: the run's target. Its code cannot be stored without pickle, so it is passed
            again; the log-density at the checkpoint's positions is recomputed and compared
            with the recorded one, and a different target is refused.
        draws: kept draws per chain wanted in all (default: the run's own); more extends a
            finished run, continuing its chains.
        kernel: the run's kernel, needed only when it is not one of ``langevin.kernels``
            (a user's kernel class); compared with the recorded one.
        progress: show a progress bar.
        checkpoint_every: steps between checkpoints from here on (default: as before).

    Returns:
        The :class:`langevin.Trace` of the whole run, the steps before the checkpoint
        included.

    Example:
        >>> import langevin, tempfile, os, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
        >>> target = langevin.targets.gaussian(2)
        >>> full = langevin.sample(target, langevin.MALA(0.5), chains=2, warmup=50,
        ...                        draws=100, seed=3, progress=False, checkpoint=path)
        >>> more = langevin.resume(path, target, draws=150, progress=False)
        >>> bool(np.array_equal(more.draws[:, :100], full.draws)), more.draws.shape
        (True, (2, 150, 2))
    """
    from langevin.driver import RunSettings, _check_count, execute
    from langevin.io import _kernel_record, _rebuild_kernel
    from langevin.targets.base import Target

    record, arrays = read(path)
    if not isinstance(target, Target):
        raise TypeError(f"target must be the run's langevin.Target; got {type(target).__name__}")
    if draws is not None:
        draws = _check_count("draws", draws, 1)
    if checkpoint_every is not None:
        checkpoint_every = _check_count("checkpoint_every", checkpoint_every, 1)
    saved_kernel = record["kernel"]
    if kernel is None:
        kernel = _rebuild_kernel(saved_kernel)
        if isinstance(kernel, str):
            raise ValueError(
                f"the checkpoint's kernel {saved_kernel['repr']} is not one of langevin.kernels; "
                "pass it again: resume(path, target, kernel=...)"
            )
    elif _kernel_record(kernel)["repr"] != saved_kernel["repr"]:
        raise ValueError(f"kernel {kernel!r} is not the checkpoint's kernel "
                         f"{saved_kernel['repr']}")  # fmt: skip
    dim = int(record["dim"])
    target = target.with_dim(dim)
    if target.name != record["target_name"]:
        raise ValueError(f"target {target.name!r} is not the checkpoint's target "
                         f"{record['target_name']!r}")  # fmt: skip
    settings = RunSettings(**record["settings"])

    def restore(run) -> None:
        be = run.backend
        run.state = _rebuild(run.state, _group(arrays, "state"))
        if run.ad_state is not None:
            run.ad_state = _rebuild(run.ad_state, _group(arrays, "ad_state"))
        run.params = _rebuild(run.params, _group(arrays, "params"))
        for j, component in enumerate(run.components):
            component.load_state_dict(_named(arrays, f"component{j}"))
            data = component.restored_target_data(run.prepared.form.data)
            if data is not None:  # e.g. the flow a warm-up refit had reached
                run.set_target_data(data)
        run.movement.load_state_dict(_named(arrays, "movement"))
        run.step_size = np.array(arrays["step_size"])
        run.best_lp = np.array(arrays["best_lp"])
        run.alive = np.array(arrays["alive"])
        run.done, run.kept = int(record["done"]), int(record["kept"])
        run.elapsed = float(record["elapsed"])
        run.diverged = {int(c): int(v) for c, v in record["diverged"].items()}
        run.failures = {
            int(c): ChainFailure(step=f["step"], position=np.asarray(f["position"]),
                                 error=RuntimeError(f["error"]))
            for c, f in record["failures"].items()
        }  # fmt: skip
        for k, v in _named(arrays, "warm").items():
            run.warm_stats[k] = np.array(v)
        for k, v in _named(arrays, "stats").items():
            out = np.zeros((settings.chains, settings.draws), v.dtype)
            out[:, : run.kept] = v
            run.stats_out[k] = out
        if run.draw_store is None:
            run.position_out[:, : run.kept] = arrays["draws"]
        if record["rng_states"] is not None:
            for g, state in zip(run.sources, record["rng_states"]):
                g.bit_generator.state = state
        _check_same_target(run, be)

    start = np.asarray(arrays["start"])
    return execute(target, kernel, settings, start, progress=progress, checkpoint=os.fspath(path),
                   checkpoint_every=checkpoint_every, restore=restore, draws=draws,
                   reopen_store=True)  # fmt: skip


def _check_same_target(run, be) -> None:
    """Recompute the log-density at the checkpoint's positions and compare it with the
    state's: a different target (or different data) is refused before any step."""
    if run.kernel.logdensity_is_estimate or not run.alive.any():
        return
    position = np.asarray(run.state.position, dtype=np.float64)
    where = np.where(run.alive[:, None], position, run.start)
    fresh = be.init(run.prepared, where, run.params, None,
                    be.noise_sources(np.random.SeedSequence(0), len(where)))  # fmt: skip
    a = np.asarray(fresh.logdensity, dtype=np.float64)[run.alive]
    b = np.asarray(run.state.logdensity, dtype=np.float64)[run.alive]
    tol = 1e-6 if np.dtype(run.settings.dtype) == np.float64 else 1e-3
    if not np.allclose(a, b, rtol=tol, atol=tol):
        raise ValueError(
            "target: its log-density at the checkpoint's positions is "
            f"{np.array2string(a, precision=6)}, but the run recorded "
            f"{np.array2string(b, precision=6)}: resume needs the target the run was started "
            "with (same function and data)"
        )
