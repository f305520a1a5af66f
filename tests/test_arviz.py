"""ArviZ output is the same on ArviZ 0.x (InferenceData, Python 3.11) and 1.x (DataTree, 3.12+).

Everything here goes through ``langevin._arviz``, the one module that knows which ArviZ is
installed; ``.ci/run`` runs this file under both. The expected groups, names, dimensions and
coordinates are written out, not read from ArviZ, so a version that builds them differently
fails here.
"""

from __future__ import annotations

import importlib.metadata
import warnings

import numba
import numpy as np
import pytest
import xarray as xr

import langevin
from langevin import _arviz
from langevin.smc.trace import SMCTrace


@numba.njit(cache=True)
def _normal_vg(x):
    return -0.5 * np.dot(x, x), -x


NAMES = {"beta": 2, "log_sigma": (), "w": (2, 2)}


@pytest.fixture(scope="module")
def mala_trace():
    target = langevin.Target.from_numba(value_and_grad=_normal_vg, names=NAMES)
    return langevin.sample(target, langevin.MALA(0.8), chains=3, warmup=50, draws=40, seed=2,
                           progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def hmc_trace():
    target = langevin.Target.from_numba(value_and_grad=_normal_vg, dim=3)
    return langevin.sample(target, langevin.HMC(0.5, n_leapfrog=5), chains=2, warmup=120,
                           draws=30, seed=4, progress=False)  # fmt: skip


def test_the_container_is_the_installed_versions():
    major = int(importlib.metadata.version("arviz").split(".")[0])
    assert _arviz.USES_DATATREE == (major >= 1)
    data = _arviz.build({"posterior": _arviz.dataset({"a": np.zeros((2, 5))})})
    assert type(data).__name__ == ("DataTree" if major >= 1 else "InferenceData")
    assert _arviz.is_arviz_data(data) and not _arviz.is_arviz_data(np.zeros(3))


def test_trace_groups_names_dims_and_coordinates(mala_trace):
    trace = mala_trace
    data = trace.to_arviz()
    assert _arviz.group_names(data) == ["posterior", "sample_stats"]
    post = _arviz.group(data, "posterior")
    assert list(post.data_vars) == ["beta", "log_sigma", "w"]
    assert post["beta"].dims == ("chain", "draw", "beta_dim_0")
    assert post["log_sigma"].dims == ("chain", "draw")
    assert post["w"].dims == ("chain", "draw", "w_dim_0", "w_dim_1")
    for dim, size in {"chain": 3, "draw": 40, "beta_dim_0": 2, "w_dim_0": 2, "w_dim_1": 2}.items():
        np.testing.assert_array_equal(post[dim].values, np.arange(size))
    np.testing.assert_array_equal(post["beta"].values, trace.draws[..., :2])
    np.testing.assert_array_equal(post["log_sigma"].values, trace.draws[..., 2])
    np.testing.assert_array_equal(post["w"].values.reshape(3, 40, 4), trace.draws[..., 3:])
    stats = _arviz.group(data, "sample_stats")
    assert set(stats.data_vars) == {"lp", "acceptance_rate", "is_accepted", "diverging",
                                    "step_size"}  # fmt: skip
    assert all(stats[k].dims == ("chain", "draw") for k in stats.data_vars)
    assert stats["diverging"].dtype == bool
    np.testing.assert_array_equal(stats["lp"].values, trace.sample_stats["lp"])
    for group in (post, stats):
        assert group.attrs["inference_library"] == "langevin"
        assert group.attrs["kernel"] == repr(trace.kernel)
        assert group.attrs["stopped_chains"] == "[]"


def test_posterior_array_gives_back_the_draws(mala_trace):
    np.testing.assert_array_equal(_arviz.posterior_array(mala_trace.to_arviz()), mala_trace.draws)
    post = _arviz.group(mala_trace.to_arviz(), "posterior")
    np.testing.assert_array_equal(_arviz.posterior_array(post, ["w"]), mala_trace.draws[..., 3:])


def test_hmc_inverse_mass_is_per_chain(hmc_trace):
    stats = _arviz.group(hmc_trace.to_arviz(), "sample_stats")
    assert stats["inverse_mass"].dims == ("chain", "inverse_mass_dim_0")
    np.testing.assert_array_equal(stats["inverse_mass"].values, hmc_trace.inverse_mass)
    np.testing.assert_array_equal(stats["inverse_mass_dim_0"].values, [0, 1, 2])
    assert {"energy", "energy_error", "n_grad", "diverging"} <= set(stats.data_vars)


def test_summary_has_the_common_columns_and_rows(mala_trace):
    table = mala_trace.summary()
    assert list(table.index) == ["beta[0]", "beta[1]", "log_sigma", "w[0, 0]", "w[0, 1]",
                                 "w[1, 0]", "w[1, 1]"]  # fmt: skip
    assert {"mean", "sd", "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat"} <= set(table)
    raw = mala_trace.summary(round_to="none")
    means = mala_trace.draws.mean(axis=(0, 1))
    np.testing.assert_allclose(raw["mean"].astype(float).values, means, rtol=1e-12)


def test_smc_trace_groups_and_attributes():
    rng = np.random.default_rng(0)
    runs, n, stages = 2, 30, 4
    trace = SMCTrace(
        draws=rng.standard_normal((runs, n, 3)),
        particles=rng.standard_normal((runs, n, 3)),
        log_weights=np.zeros((runs, n)),
        log_evidence=-1.25,
        log_evidence_runs=np.array([-1.2, -1.3]),
        log_evidence_var=0.01,
        stages={"beta": rng.random((runs, stages)), "ess": rng.random((runs, stages))},
        n_stages=np.array([4, 4]),
        names={"mu": (slice(0, 1), ()), "theta": (slice(1, 3), (2,))},
        kernel=langevin.MALA(0.1),
        backend="numba",
        seed=0,
    )
    data = trace.to_arviz()
    assert _arviz.group_names(data) == ["posterior", "smc_stages"]
    post = _arviz.group(data, "posterior")
    assert post["mu"].dims == ("chain", "draw") and post["theta"].shape == (2, 30, 2)
    np.testing.assert_array_equal(_arviz.posterior_array(data), trace.draws)
    st = _arviz.group(data, "smc_stages")
    assert st["beta"].dims == ("chain", "stage")
    np.testing.assert_array_equal(st["stage"].values, np.arange(stages))
    np.testing.assert_array_equal(st["ess"].values, trace.stages["ess"])
    assert post.attrs["log_evidence"] == -1.25 and st.attrs["log_evidence"] == -1.25
    assert list(trace.summary().index) == ["mu", "theta[0]", "theta[1]"]


def test_trace_plot_is_drawn(mala_trace, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = _arviz.plot_trace(mala_trace.to_arviz(), compact=False, figsize=(6, 8))
    assert isinstance(figure, matplotlib.figure.Figure)
    # density and trace for each of the 7 coordinates (compact=False: one row each)
    assert len([ax for ax in figure.axes if ax.has_data()]) == 14
    figure.savefig(tmp_path / "t.png")
    plt.close(figure)
    assert (tmp_path / "t.png").stat().st_size > 5_000
    # the trace's own method: compact, one row per variable (beta, log_sigma, w)
    figure = mala_trace.plot_trace(figsize=(6, 6))
    assert len([ax for ax in figure.axes if ax.has_data()]) == 6
    plt.close(figure)


def test_netcdf_round_trip_and_plain_xarray(mala_trace, tmp_path):
    path = str(tmp_path / "trace.nc")
    data = mala_trace.to_arviz()
    _arviz.to_netcdf(data, path)
    back = _arviz.from_netcdf(path)
    assert _arviz.group_names(back) == ["posterior", "sample_stats"]
    for name in ("posterior", "sample_stats"):
        xr.testing.assert_identical(
            _arviz.group(back, name).drop_attrs(), _arviz.group(data, name).drop_attrs()
        )
    assert _arviz.group(back, "posterior").attrs["kernel"] == repr(mala_trace.kernel)
    # readable without this package or ArviZ: one netCDF group per ArviZ group
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with xr.open_dataset(path, group="posterior") as post:
            np.testing.assert_array_equal(post["beta"].values, mala_trace.draws[..., :2])


def test_dataset_checks_its_input():
    with pytest.raises(ValueError, match="leading dimensions"):
        _arviz.dataset({"a": np.zeros(3)})
    with pytest.raises(ValueError, match="coordinate 'chain' has 2 values"):
        _arviz.dataset({"a": np.zeros((3, 4))}, chains=[0, 1])
    with pytest.raises(KeyError, match="no group 'prior'"):
        _arviz.group(_arviz.build({"posterior": _arviz.dataset({"a": np.zeros((1, 2))})}),
                     "prior")  # fmt: skip


def test_psislw_separates_light_and_heavy_tails():
    """Importance ratios w = U^(-k) have a Pareto tail of shape k exactly. PSIS's k̂ (fit to
    the largest 3√S ratios, shrunk toward 0.5) is 0.18 for k = 0.3 and 0.62 for k = 0.8 on
    both ArviZ versions with this seed; what is checked is the side of 0.5 (PSIS's
    reliability threshold, what the benchmarks read) with a margin, and that the smoothed
    log-weights are normalised and keep the ratios' order (a sign error reverses it)."""
    rng = np.random.default_rng(7)
    khats = []
    for k in (0.3, 0.8):
        lw = -k * np.log(rng.random(4000))
        smoothed, khat = _arviz.psislw(lw)
        khats.append(khat)
        assert np.logaddexp.reduce(smoothed) == pytest.approx(0.0, abs=1e-9)
        order = np.argsort(lw)
        assert np.all(np.diff(smoothed[order]) >= -1e-12)
    assert 0.0 < khats[0] < 0.4 and khats[1] > 0.55, khats
    with pytest.raises(ValueError, match="log_weights must be 1-D"):
        _arviz.psislw(np.zeros((2, 3)))
