"""Saved traces: netCDF-4 files that load back equal, array for array, and open without
this package."""

from __future__ import annotations

import warnings

import h5py
import numba
import numpy as np
import pytest
import xarray as xr

import langevin


def _assert_same(a, b):
    np.testing.assert_array_equal(a.draws, b.draws)
    assert a.draws.dtype == b.draws.dtype
    for group in ("sample_stats", "warmup_stats"):
        ga, gb = getattr(a, group), getattr(b, group)
        assert set(ga) == set(gb)
        for k in ga:
            np.testing.assert_array_equal(ga[k], gb[k])
            assert np.asarray(ga[k]).dtype == np.asarray(gb[k]).dtype, k
    np.testing.assert_array_equal(a.step_size, b.step_size)
    if a.inverse_mass is None:
        assert b.inverse_mass is None
    else:
        np.testing.assert_array_equal(a.inverse_mass, b.inverse_mass)
    assert a.names == b.names and a.diverged == b.diverged and a.seed == b.seed
    assert a.backend == b.backend and a.interrupted == b.interrupted
    assert repr(a.kernel) == repr(b.kernel)
    assert a.generator_states == b.generator_states


@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_a_saved_trace_loads_back_equal(tmp_path, backend):
    target = langevin.targets.gaussian(3)
    trace = langevin.sample(target, langevin.HMC(0.3), chains=2, warmup=100, draws=50, seed=4,
                            backend=backend, progress=False)  # fmt: skip
    path = tmp_path / "hmc.nc"
    langevin.save(trace, path)
    again = langevin.load(path)
    _assert_same(trace, again)
    assert isinstance(again.kernel, langevin.HMC)
    if backend == "numba":  # a generator set to a chain's saved state goes on where it stopped
        assert len(again.generator_states) == 2
        g = np.random.default_rng()
        g.bit_generator.state = again.generator_states[1]
        assert np.isfinite(g.standard_normal())
    else:
        assert again.generator_states is None
    # the loaded trace works as the original does
    assert again.summary().shape == trace.summary().shape


def test_stopped_chains_and_failures_survive(tmp_path):
    @numba.njit
    def logp(x):
        return -0.5 * np.dot(x, x)

    @numba.njit
    def grad(x):
        if x[0] > 2.05:
            raise ValueError("the model's code raised")
        return -x

    target = langevin.Target.from_numba(logp, grad, dim=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trace = langevin.sample(target, langevin.ULA(1e-3), chains=2, warmup=0, draws=300,
                                seed=0, progress=False,
                                initial_position=np.array([[2.0, 0.0], [-2.0, 0.0]]))  # fmt: skip
        unstable = langevin.sample(langevin.targets.gaussian(2), langevin.ULA(2.05), chains=2,
                                   warmup=0, draws=300, seed=0, progress=False)  # fmt: skip
    assert set(trace.failures) == {0} and unstable.diverged
    langevin.save(trace, tmp_path / "t.nc")
    again = langevin.load(tmp_path / "t.nc")
    _assert_same(trace, again)
    assert again.failures[0].step == trace.failures[0].step
    np.testing.assert_array_equal(again.failures[0].position, trace.failures[0].position)
    assert "ValueError: the model's code raised" in str(again.failures[0].error)
    langevin.save(unstable, tmp_path / "u.nc")
    _assert_same(unstable, langevin.load(tmp_path / "u.nc"))


def test_the_file_opens_without_langevin(tmp_path):
    trace = langevin.sample(langevin.targets.gaussian(2), langevin.MALA(0.5), chains=2,
                            warmup=20, draws=30, seed=1, progress=False)  # fmt: skip
    path = tmp_path / "mala.nc"
    langevin.save(trace, path)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds["draws"].dims == ("chain", "draw", "coordinate")
        np.testing.assert_array_equal(ds["draws"].values, trace.draws)
        assert "sample_stats__acceptance_rate" in ds
    with h5py.File(path, "r") as f:  # plain HDF5, no netCDF layer
        np.testing.assert_array_equal(f["draws"][...], trace.draws)


def test_a_file_of_another_kind_is_refused(tmp_path):
    path = tmp_path / "other.nc"
    xr.Dataset({"x": ("i", np.arange(3))}).to_netcdf(path, engine="h5netcdf")
    with pytest.raises(ValueError, match="not a langevin trace"):
        langevin.load(path)
