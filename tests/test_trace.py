"""Chains that stop (their state became non-finite) are named, and summaries use the others.

Issue 17, defect 5: a stopped chain's draws are NaN after the step it stopped on, so an ArviZ
summary over every chain was all NaN, and its statistics after the stop were zeros (a ULA
trace, acceptance 1 at every real step, reported "mean acceptance 0.667"). The target is
``exp(-|x|^4/4)`` with ULA at h = 0.1: stable near the mode (curvature 3x² < 2/h for |x| < 2.6,
where the chains stay), explosive from x = 50, where one step overshoots to ~1e4, then the
state overflows within a few steps. Only the chain started there stops, on both backends.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numba
import numpy as np
import pytest

import langevin
from langevin import _arviz
from langevin.driver import DivergenceWarning

STARTS = np.array([[0.5, -0.4], [50.0, 50.0], [-0.3, 0.2]])


@numba.njit(cache=True)
def _quartic_vg(x):
    return -0.25 * np.sum(x**4), -(x**3)


def quartic_target(backend: str):
    if backend == "numba":
        return langevin.Target.from_numba(value_and_grad=_quartic_vg, names={"b": 2})
    return langevin.Target.from_jax(lambda x: -0.25 * jnp.sum(x**4), names={"b": 2})


def run_with_a_stopped_chain(backend: str, warmup: int = 20, draws: int = 300, **kw):
    with pytest.warns(DivergenceWarning, match="chain"):
        return langevin.sample(
            quartic_target(backend),
            langevin.ULA(0.1),
            chains=3,
            warmup=warmup,
            draws=draws,
            seed=3,
            backend=backend,
            initial_position=STARTS,
            progress=False,
            **kw,
        )


@pytest.fixture(scope="module", params=["numba", "jax"])
def stopped_in_sampling(request):
    # warm-up 0: the chain stops during the kept draws, so part of its row is real
    return run_with_a_stopped_chain(request.param, warmup=0, draws=300)


def test_only_the_far_chain_stops(stopped_in_sampling):
    trace = stopped_in_sampling
    assert trace.stopped_chains == [1] and trace.running_chains == [0, 2]
    assert np.all(np.isfinite(trace.draws[[0, 2]]))
    live = trace.live
    assert live[[0, 2]].all() and not live[1].all() and live[1, 0]


def test_statistics_of_a_stopped_chain_are_missing_not_zero(stopped_in_sampling):
    trace = stopped_in_sampling
    dead = ~trace.live
    acc = trace.sample_stats["acceptance_rate"]
    # ULA accepts every step: 1 wherever the chain ran, missing where it did not
    assert np.all(acc[trace.live] == 1.0)
    assert np.all(np.isnan(acc[dead]))
    assert np.all(np.isnan(trace.sample_stats["lp"][dead]))
    assert "mean acceptance 1.000" in repr(trace) and "stopped chains [1]" in repr(trace)


def test_warmup_statistics_after_a_stop_are_missing():
    trace = run_with_a_stopped_chain("numba", warmup=30, draws=20)
    step = trace.diverged[1]
    assert 0 < step < 30  # it stopped during warm-up
    acc = trace.warmup_stats["acceptance_rate"]
    assert np.all(acc[1, :step] == 1.0) and np.all(np.isnan(acc[1, step:]))
    assert np.all(acc[[0, 2]] == 1.0)
    assert np.all(np.isnan(trace.sample_stats["acceptance_rate"][1]))


def test_to_arviz_leaves_out_and_names_stopped_chains(stopped_in_sampling):
    trace = stopped_in_sampling
    data = trace.to_arviz()
    post = _arviz.group(data, "posterior")
    stats = _arviz.group(data, "sample_stats")
    np.testing.assert_array_equal(post["chain"].values, [0, 2])
    np.testing.assert_array_equal(stats["chain"].values, [0, 2])
    np.testing.assert_array_equal(post["b"].values, trace.draws[[0, 2]])
    assert np.all(np.isfinite(post["b"].values))
    assert post.attrs["stopped_chains"] == "[1]"
    assert post.attrs["diverged_chains"] == str(trace.diverged)
    everything = _arviz.group(trace.to_arviz(include_stopped=True), "posterior")
    np.testing.assert_array_equal(everything["chain"].values, [0, 1, 2])
    assert np.isnan(everything["b"].values[1]).any()
    assert everything.attrs["stopped_chains_included"] == 1


def test_summary_uses_the_running_chains_and_says_which_stopped(stopped_in_sampling):
    trace = stopped_in_sampling
    with pytest.warns(DivergenceWarning, match=r"2 of 3 chains: chain\(s\) 1 \(step \d+\)"):
        table = trace.summary()
    assert table.attrs["stopped_chains"] == [1]
    assert np.all(np.isfinite(table["mean"].astype(float)))
    assert np.all(np.isfinite(table["r_hat"].astype(float)))
    # the same numbers as ArviZ on the running chains' draws alone
    survivors = _arviz.build({"posterior": _arviz.dataset({"b": trace.draws[[0, 2]]})})
    expected = _arviz.summary(survivors)
    np.testing.assert_array_equal(table["mean"].values, expected["mean"].values)
    np.testing.assert_array_equal(table["ess_bulk"].values, expected["ess_bulk"].values)


def test_all_chains_stopped_is_refused_with_the_way_out():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        trace = langevin.sample(quartic_target("numba"), langevin.ULA(0.1), chains=2,
                                warmup=0, draws=50, seed=0, progress=False,
                                initial_position=np.full((2, 2), 50.0))  # fmt: skip
    assert trace.stopped_chains == [0, 1]
    with pytest.raises(ValueError, match="all 2 chains stopped.*include_stopped=True"):
        trace.to_arviz()
    kept = _arviz.group(trace.to_arviz(include_stopped=True), "posterior")
    assert kept["b"].shape == (2, 50, 2)


def test_a_run_without_stops_is_unchanged():
    trace = langevin.sample(quartic_target("numba"), langevin.ULA(0.1), chains=2, warmup=10,
                            draws=40, seed=0, progress=False)  # fmt: skip
    assert trace.stopped_chains == [] and trace.live.all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = trace.summary()
    assert table.attrs["stopped_chains"] == []
    np.testing.assert_array_equal(_arviz.group(trace.to_arviz(), "posterior")["chain"], [0, 1])
