"""Saving and loading traces: netCDF-4 files any netCDF reader opens, no pickle.

``langevin.save(trace, path)`` (or ``trace.save(path)``) writes one netCDF-4 file through
xarray: the draws as ``draws(chain, draw, coordinate)``, every sample statistic as
``sample_stats__<name>(chain, draw)``, every warm-up statistic as
``warmup_stats__<name>(chain, warmup_draw)``, the adapted ``step_size(chain)`` and
``inverse_mass(chain, coordinate)`` (``(chain, coordinate, coordinate_2)`` for a dense
metric), and, as attributes (JSON text where they are
structured), the kernel (class and parameters), backend, seed, the generators' states at the
end (Numba), target name, parameter names and shapes, stopped chains and why, whether the run
was interrupted, and the time spent. ``langevin.load(path)`` gives the
:class:`~langevin.Trace` back, equal array for array; the kernel is rebuilt from its
parameters when its class is one of :mod:`langevin.kernels`.

Readable without this package, e.g. ``xarray.open_dataset(path)`` or any HDF5/netCDF tool.
A target's ``constrain`` map is code, so it is not saved (``to_arviz(constrained=True)``
on a loaded trace needs the target's map passed back: ``trace.constrain = target.constrain``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np

__all__ = ["save", "load", "FORMAT_VERSION"]

#: Bumped when the layout changes incompatibly; ``load`` refuses newer files.
FORMAT_VERSION = 1


def _kernel_record(kernel: Any) -> dict:
    if dataclasses.is_dataclass(kernel):
        values = {}
        for f in dataclasses.fields(kernel):
            v = getattr(kernel, f.name)
            values[f.name] = np.asarray(v).tolist() if isinstance(v, np.ndarray) else v
        try:
            json.dumps(values)
        except TypeError:
            values = None
        return {
            "class": type(kernel).__name__,
            "public": kernel.name,
            "params": values,
            "repr": repr(kernel),
        }
    return {"class": None, "params": None, "repr": repr(kernel)}


def _rebuild_kernel(record: dict) -> Any:
    import langevin.kernels as kernels

    name = record.get("public") or record.get("class")
    cls = getattr(kernels, name, None) if name else None
    if cls is None or record.get("params") is None:
        return record["repr"]  # an unknown kernel class: its description
    params = {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in record["params"].items()}
    try:
        return cls(**params)
    except (TypeError, ValueError):
        return record["repr"]


def save(trace, path: str | os.PathLike, *, draws_file: str | None = None) -> None:
    """Write ``trace`` to ``path`` (netCDF-4; see the module docstring for the layout).

    Example:
        >>> import langevin, tempfile, os, numpy as np
        >>> trace = langevin.sample(langevin.targets.gaussian(2), langevin.MALA(0.5),
        ...                         chains=2, warmup=50, draws=100, seed=0, progress=False)
        >>> path = os.path.join(tempfile.mkdtemp(), "run.nc")
        >>> langevin.save(trace, path)
        >>> again = langevin.load(path)
        >>> bool(np.array_equal(again.draws, trace.draws)), again.kernel
        (True, MALA(step_size=0.5))
    """
    import xarray as xr

    data: dict[str, Any] = {}
    if draws_file is None:
        data["draws"] = (("chain", "draw", "coordinate"), trace.draws)
    for k, v in trace.sample_stats.items():
        data[f"sample_stats__{k}"] = (("chain", "draw"), np.asarray(v))
    for k, v in trace.warmup_stats.items():
        data[f"warmup_stats__{k}"] = (("chain", "warmup_draw"), np.asarray(v))
    data["step_size"] = (("chain",), np.asarray(trace.step_size, dtype=float))
    if trace.inverse_mass is not None:
        inverse_mass = np.asarray(trace.inverse_mass)  # (chain, d), or (chain, d, d) dense
        dims = ("chain", "coordinate") + (("coordinate_2",) if inverse_mass.ndim == 3 else ())
        data["inverse_mass"] = (dims, inverse_mass)
    failures = getattr(trace, "failures", {}) or {}
    attrs = {
        "langevin_format": FORMAT_VERSION,
        "kernel": json.dumps(_kernel_record(trace.kernel)),
        "backend": trace.backend,
        "seed": json.dumps(
            trace.seed if isinstance(trace.seed, (int, type(None))) else str(trace.seed)
        ),
        "target_name": trace.target_name,
        "names": json.dumps(
            {n: [s.start, s.stop, list(shape)] for n, (s, shape) in trace.names.items()}
        ),
        "diverged": json.dumps({str(c): int(s) for c, s in trace.diverged.items()}),
        "failures": json.dumps(
            {
                str(c): {
                    "step": int(f.step),
                    "position": np.asarray(f.position).tolist(),
                    "error": f"{type(f.error).__name__}: {f.error}",
                }
                for c, f in failures.items()
            }
        ),
        "interrupted": int(bool(trace.interrupted)),
        "n_chains": int(trace.draws.shape[0]),
        "n_draws": int(trace.draws.shape[1]),
        "elapsed": float(trace.elapsed),
    }
    if getattr(trace, "generator_states", None) is not None:
        attrs["generator_states"] = json.dumps(trace.generator_states)
    if draws_file is not None:  # the draws are in a .npy file beside (a streamed run)
        attrs["draws_file"] = draws_file
    ds = xr.Dataset(data, attrs=attrs)
    ds.to_netcdf(os.fspath(path), engine="h5netcdf")


def load(path: str | os.PathLike):
    """Read a trace written by :func:`save`, or the directory of a run that streamed its
    draws (``sample(..., store=directory)``: its ``draws`` are memory-mapped again)."""
    import xarray as xr

    from langevin.health import ChainFailure
    from langevin.store import TRACE_FILE
    from langevin.trace import Trace

    directory = None
    if os.path.isdir(path):
        directory = os.fspath(path)
        path = os.path.join(directory, TRACE_FILE)
        if not os.path.exists(path):
            raise ValueError(f"{directory}: no {TRACE_FILE} (the run that streamed its draws "
                             "here did not finish; langevin.resume continues it from its "
                             "checkpoint)")  # fmt: skip
    with xr.open_dataset(os.fspath(path), engine="h5netcdf") as ds:
        ds = ds.load()
    version = int(ds.attrs.get("langevin_format", -1))
    if version < 1 or version > FORMAT_VERSION:
        raise ValueError(
            f"{path}: not a langevin trace of a format this version reads (format {version}; "
            f"this version reads 1 to {FORMAT_VERSION})"
        )

    def stats(prefix: str) -> dict[str, np.ndarray]:
        return {
            name[len(prefix) :]: ds[name].values for name in ds.data_vars if name.startswith(prefix)
        }

    names = {
        n: (slice(a, b), tuple(shape)) for n, (a, b, shape) in json.loads(ds.attrs["names"]).items()
    }
    failures = {
        int(c): ChainFailure(
            step=f["step"], position=np.asarray(f["position"]), error=RuntimeError(f["error"])
        )
        for c, f in json.loads(ds.attrs.get("failures", "{}")).items()
    }
    if "draws_file" in ds.attrs:
        draws_path = os.path.join(os.path.dirname(os.path.abspath(path)), ds.attrs["draws_file"])
        draws = np.load(draws_path, mmap_mode="r")[:, : int(ds.attrs["n_draws"])]
    else:
        draws = ds["draws"].values
    trace = Trace(
        draws=draws,
        sample_stats=stats("sample_stats__"),
        warmup_stats=stats("warmup_stats__"),
        step_size=ds["step_size"].values,
        names=names,
        kernel=_rebuild_kernel(json.loads(ds.attrs["kernel"])),
        backend=str(ds.attrs["backend"]),
        seed=json.loads(ds.attrs["seed"]),
        target_name=str(ds.attrs["target_name"]),
        diverged={int(c): int(s) for c, s in json.loads(ds.attrs["diverged"]).items()},
        interrupted=bool(int(ds.attrs["interrupted"])),
        elapsed=float(ds.attrs["elapsed"]),
        inverse_mass=ds["inverse_mass"].values if "inverse_mass" in ds else None,
        failures=failures,
        generator_states=json.loads(ds.attrs["generator_states"])
        if "generator_states" in ds.attrs
        else None,
    )
    return trace
