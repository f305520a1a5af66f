"""One place that knows which ArviZ is installed: 0.x (``InferenceData``) or 1.x (``DataTree``).

ArviZ 1.0 split into arviz-base, arviz-stats and arviz-plots and replaced ``InferenceData``
by :class:`xarray.DataTree`; ``az.from_dict(posterior=...)`` became ``az.from_dict({...})``,
``plot_trace`` became the trace-only plot (the old density-and-trace plot is
``plot_trace_dist``), and ArviZ 1.x needs Python >= 3.12. Everything in this package that
builds, reads, summarises, plots or saves ArviZ data goes through the functions here, so
that both give the same groups, variable names, dimensions and coordinates:

* :func:`build` makes the container from ``xarray.Dataset`` groups built here by
  :func:`dataset` (never by ``az.from_dict``, whose defaults differ between versions);
* :func:`group` / :func:`group_names` read it back on either version;
* :func:`summary` and :func:`plot_trace` call the installed version's functions;
* :func:`posterior_array` turns a posterior group (of either container, or an
  ``xarray.Dataset``) into a ``(chain, draw, d)`` array;
* :func:`psislw`: Pareto-smoothed importance weights and k̂ (moved in 1.x);
* :func:`to_netcdf` / :func:`from_netcdf` write and read the same netCDF layout (one
  netCDF group per ArviZ group) on both versions.
"""

from __future__ import annotations

import contextlib
import datetime
import warnings
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

__all__ = [
    "ARVIZ_VERSION",
    "USES_DATATREE",
    "build",
    "dataset",
    "from_netcdf",
    "group",
    "group_names",
    "is_arviz_data",
    "plot_trace",
    "posterior_array",
    "psislw",
    "summary",
    "to_netcdf",
]


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


try:
    #: The installed ArviZ version as a tuple, e.g. ``(0, 23, 4)`` or ``(1, 3, 0)``.
    ARVIZ_VERSION: tuple[int, ...] = _version_tuple(version("arviz"))
except PackageNotFoundError:  # pragma: no cover - arviz is a dependency
    ARVIZ_VERSION = (0, 0, 0)

#: True for ArviZ >= 1 (containers are ``xarray.DataTree``), False for ``InferenceData``.
USES_DATATREE: bool = ARVIZ_VERSION >= (1,)

SAMPLE_DIMS = ("chain", "draw")


@contextlib.contextmanager
def _quiet():
    """Silence ArviZ's warnings that say nothing about the user's run: a few draws or chains,
    a group outside its schema, its announcement of the 1.0 refactor, and deprecations in
    ArviZ's own calls (ArviZ 0.23's plots trigger matplotlib 3.11's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def dataset(
    variables: Mapping[str, np.ndarray],
    *,
    chains: Sequence[int] | None = None,
    lead: tuple[str, ...] = SAMPLE_DIMS,
    attrs: Mapping[str, Any] | None = None,
    dims: Mapping[str, Sequence[str]] | None = None,
    coords: Mapping[str, Sequence[Any]] | None = None,
):
    """An ``xarray.Dataset`` of arrays with leading dimensions ``lead`` (``chain``, ``draw``).

    Trailing dimensions are named ``<name>_dim_<k>`` with integer coordinates (ArviZ's own
    convention in both versions) unless ``dims`` names them. ``chains`` gives the ``chain``
    coordinate (default ``0 .. n-1``): a subset of chains keeps the numbers they had in the
    run. Every other leading dimension gets ``0 .. n-1``.
    """
    import xarray as xr

    dims = dict(dims or {})
    coords = dict(coords or {})
    data_vars = {}
    all_coords: dict[str, Any] = {}
    for name, value in variables.items():
        arr = np.asarray(value)
        if arr.ndim < len(lead):
            raise ValueError(
                f"variable {name!r} has shape {arr.shape}; expected leading dimensions {lead}"
            )
        rest = arr.ndim - len(lead)
        names = tuple(dims.get(name, [f"{name}_dim_{k}" for k in range(rest)]))
        if len(names) != rest:
            raise ValueError(f"dims[{name!r}] names {len(names)} dimensions; the array has {rest}")
        var_dims = (*lead, *names)
        for d, size in zip(var_dims, arr.shape):
            if d == "chain" and chains is not None:
                values = np.asarray(list(chains), dtype=np.int64)
            elif d in coords:
                values = np.asarray(coords[d])
            else:
                values = np.arange(size, dtype=np.int64)
            if len(values) != size:
                raise ValueError(
                    f"coordinate {d!r} has {len(values)} values; variable {name!r} has {size}"
                )
            all_coords.setdefault(d, values)
        data_vars[name] = (var_dims, arr)
    return xr.Dataset(data_vars, coords=all_coords, attrs=dict(attrs or {}))


def _standard_attrs(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    out = {
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(),
        "arviz_version": ".".join(map(str, ARVIZ_VERSION)),
    }
    out.update(attrs or {})
    return out


def build(groups: Mapping[str, Any], attrs: Mapping[str, Any] | None = None):
    """The installed ArviZ's container of ``groups`` (name -> ``xarray.Dataset``):
    ``arviz.InferenceData`` on ArviZ 0.x, ``xarray.DataTree`` on ArviZ 1.x.

    ``attrs`` (strings and numbers, so that netCDF can store them) go on every group, as
    ``az.from_dict(attrs=...)`` did on ArviZ 0.x, with ``created_at`` and ``arviz_version``.
    """
    attrs = _standard_attrs(attrs)
    groups = {k: v.assign_attrs({**attrs, **v.attrs}) for k, v in groups.items()}
    if USES_DATATREE:
        import xarray as xr

        tree = xr.DataTree.from_dict(dict(groups))
        tree.attrs.update(attrs)
        return tree
    import arviz as az

    with _quiet():  # ArviZ 0.x warns about groups outside its schema (smc_stages)
        return az.InferenceData(**groups)


def is_arviz_data(obj: Any) -> bool:
    """True for an ``arviz.InferenceData`` or an ``xarray.DataTree``."""
    kind = type(obj).__name__
    return kind in ("InferenceData", "DataTree") and hasattr(obj, "__getitem__")


def group_names(data: Any) -> list[str]:
    """The group names of an ``InferenceData`` or a ``DataTree`` (its children), in order."""
    if type(data).__name__ == "DataTree":
        return list(data.children)
    if hasattr(data, "groups") and callable(data.groups):
        return list(data.groups())
    raise TypeError(f"expected an ArviZ InferenceData or xarray DataTree; got {type(data)}")


def group(data: Any, name: str):
    """Group ``name`` as an ``xarray.Dataset`` (from an ``InferenceData`` or a ``DataTree``)."""
    names = group_names(data)
    if name not in names:
        raise KeyError(f"no group {name!r}; the groups are {names}")
    if type(data).__name__ == "DataTree":
        return data[name].to_dataset()
    return getattr(data, name)


def summary(data: Any, **kwargs):
    """``arviz.summary`` of the installed version, as a ``pandas.DataFrame``, without
    ArviZ's warnings about short or few chains (the summary reports ESS and R-hat, which say
    the same with numbers).

    Columns on both versions: ``mean``, ``sd``, ``mcse_mean``, ``mcse_sd``, ``ess_bulk``,
    ``ess_tail``, ``r_hat`` and a credible interval, 94% HDI (``hdi_3%``, ``hdi_97%``) on
    ArviZ 0.x and ArviZ 1.x's default interval on 1.x (89% ETI, ``eti89_lb``, ``eti89_ub``).
    Keyword arguments go to ArviZ as they are.
    """
    import arviz as az

    with _quiet():
        return az.summary(data, **kwargs)


def plot_trace(
    data: Any,
    *,
    compact: bool = False,
    figsize: tuple[float, float] | None = None,
    var_names: Sequence[str] | None = None,
):
    """Density and trace of each posterior variable (ArviZ 0.x ``plot_trace``, 1.x
    ``plot_trace_dist``) with matplotlib; returns the matplotlib figure."""
    import arviz as az
    import matplotlib.pyplot as plt

    with _quiet():
        if USES_DATATREE:
            kwargs: dict[str, Any] = {"compact": compact, "backend": "matplotlib"}
            if figsize is not None:
                kwargs["figure_kwargs"] = {"figsize": figsize}
            if var_names is not None:
                kwargs["var_names"] = list(var_names)
            pc = az.plot_trace_dist(data, **kwargs)
            return pc.viz["figure"].item() if "figure" in pc.viz.ds else plt.gcf()
        axes = az.plot_trace(data, compact=compact, figsize=figsize, var_names=var_names)
        return np.asarray(axes).flat[0].figure


def posterior_array(data: Any, var_names: Sequence[str] | None = None) -> np.ndarray:
    """The posterior of an ``InferenceData``, a ``DataTree`` or an ``xarray.Dataset`` as one
    ``(chain, draw, d)`` float array: the variables in order (or those in ``var_names``),
    each flattened over its own dimensions in C order, as ``Trace.parameters()`` splits the
    flat position, so that ``posterior_array(trace.to_arviz())`` equals ``trace.draws``
    (of the chains ``to_arviz`` keeps)."""
    if is_arviz_data(data):
        ds = group(data, "posterior")
    elif type(data).__name__ == "Dataset":
        ds = data
    else:
        raise TypeError(
            f"expected an ArviZ InferenceData, an xarray DataTree or Dataset; got {type(data)}"
        )
    names = list(ds.data_vars) if var_names is None else list(var_names)
    missing = [n for n in names if n not in ds.data_vars]
    if missing:
        raise KeyError(f"no posterior variable(s) {missing}; the variables are {list(ds)}")
    if not names:
        raise ValueError("the posterior has no variables")
    blocks = []
    for n in names:
        var = ds[n]
        lead = [d for d in SAMPLE_DIMS if d in var.dims]
        if lead != list(SAMPLE_DIMS):
            raise ValueError(
                f"posterior variable {n!r} has dimensions {var.dims}; expected ('chain', "
                "'draw', ...)"
            )
        var = var.transpose(*SAMPLE_DIMS, ...)
        arr = np.asarray(var.values)
        blocks.append(arr.reshape(arr.shape[0], arr.shape[1], -1))
    return np.concatenate(blocks, axis=-1)


def psislw(log_weights: Any) -> tuple[np.ndarray, float]:
    """Pareto-smoothed importance-sampling log-weights of a 1-D array and the Pareto shape
    estimate k̂ (Vehtari et al. 2024, *Pareto smoothed importance sampling*, JMLR 25(72)):
    ``az.psislw`` on ArviZ 0.x, arviz-stats' array function on 1.x (same algorithm)."""
    lw = np.asarray(log_weights, dtype=np.float64)
    if lw.ndim != 1:
        raise ValueError(f"log_weights must be 1-D; got shape {lw.shape}")
    with _quiet():
        if USES_DATATREE:
            from arviz_stats.base.array import array_stats

            # arviz-stats takes minus the log-ratios (log-likelihoods, as in PSIS-LOO)
            smoothed, khat = array_stats.psislw(-lw)
        else:
            import arviz as az

            smoothed, khat = az.psislw(lw)
    return np.asarray(smoothed), float(np.asarray(khat))


def to_netcdf(data: Any, path: str) -> None:
    """Write ``data`` to a netCDF file, one netCDF group per ArviZ group (the layout both
    ArviZ 0.x ``InferenceData.to_netcdf`` and ``xarray.DataTree.to_netcdf`` use)."""
    data.to_netcdf(path)


def from_netcdf(path: str):
    """Read a netCDF file written by :func:`to_netcdf` (or by ArviZ 0.x or 1.x) as the
    installed ArviZ's container."""
    import arviz as az

    with _quiet():
        return az.from_netcdf(path)
