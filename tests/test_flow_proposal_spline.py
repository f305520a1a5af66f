"""FlowProposal with a spline flow (SplineFlowProposal): the stacked spline flow computes what
langevin.flows computes; the same noise gives the same chain on Numba and JAX (1e-12, as the
conformance suite checks the exported kernels); the chain's moments are the target's (MCSE
z-tests) with the flow retrained during warm-up."""

from __future__ import annotations

import numpy as np
import pytest

import langevin
from langevin.backends import jax_backend, numba_backend
from langevin.flows import SplineFlow, flow_functions, spline_flow_init
from langevin.kernels.flow_mcmc import (
    FlowProposal,
    SplineFlowProposal,
    is_spline,
    stack_flow,
    stacked_spline_forward_and_log_det,
    stacked_spline_log_density,
    unstack_flow,
)
from langevin.nn import numpy_twin
from langevin.spec import draw_numpy
from tests.stats_helpers import Z_CRIT, assert_z_ok, moment_z_scores


def _flow(dim=3):
    return spline_flow_init(dim, 2, (5, 5), bins=4, bound=3.0, seed=2, init_scale=0.5)


def test_stacked_spline_flow_is_the_flow():
    flow = _flow()
    stacked = stack_flow(flow)
    assert is_spline(stacked)
    back = unstack_flow(stacked)
    assert type(back) is SplineFlow
    fns = flow_functions(flow)
    rng = np.random.default_rng(0)
    for _ in range(3):
        u = rng.standard_normal(3) * 2
        x, ld = numpy_twin(stacked_spline_forward_and_log_det)(stacked, u)
        x_ref, ld_ref = numpy_twin(fns.forward_and_log_det)(flow, u)
        np.testing.assert_allclose(x, x_ref, atol=1e-13)
        np.testing.assert_allclose(ld, ld_ref, atol=1e-13)
        np.testing.assert_allclose(numpy_twin(stacked_spline_log_density)(stacked, x),
                                   numpy_twin(fns.log_density)(flow, x), atol=1e-12)  # fmt: skip
    kernel = FlowProposal(0.2, flow=flow, retrain=0)
    assert type(kernel) is SplineFlowProposal and kernel.name == "FlowProposal"
    assert type(FlowProposal(0.2, flow=stacked, retrain=0)) is SplineFlowProposal


@pytest.mark.slow  # compiles the spline kernel on both backends
def test_same_noise_same_chain_on_numba_and_jax(x64):
    dim, chains, steps = 3, 2, 25
    target = FlowProposal.example_target(dim)
    kernel = SplineFlowProposal.for_conformance(0.1, target)
    noise = draw_numpy(kernel.noise(dim), np.random.default_rng(0), (chains, steps))
    x0 = np.broadcast_to(target.initial_position, (chains, dim)).copy()
    h = np.full(chains, 0.1)
    out = []
    for be in (numba_backend, jax_backend):
        prepared = be.prepare(kernel, target, dim, np.float64)
        state = be.init(prepared, x0)
        out.append(be.run(prepared, state, steps, h, noise=noise))
    r_nb, r_jx = out
    np.testing.assert_allclose(r_nb.position, r_jx.position, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r_nb.logdensity, r_jx.logdensity, rtol=1e-12, atol=1e-12)
    for name in r_nb.info:
        np.testing.assert_allclose(r_nb.info[name], r_jx.info[name], rtol=1e-12, atol=1e-12)
    assert np.any(r_nb.info["flow_accepted"])  # the flow proposals are part of the chain


@pytest.mark.slow  # a statistical run with a refit of the flow in warm-up
def test_moments_with_a_retrained_spline_flow():
    mean = np.array([1.0, -2.0])
    cov = np.array([[1.0, 0.6], [0.6, 2.0]])
    target = langevin.targets.gaussian(2, mean=mean, cov=cov)
    flow = spline_flow_init(2, 2, (8, 8), bins=5, bound=5.0, seed=0, init_scale=0.1)
    kernel = FlowProposal(0.3, flow=flow, retrain=1, train_steps=100, learning_rate=1e-2)
    trace = langevin.sample(target, kernel, chains=4, warmup=300, draws=1500, seed=2,
                            progress=False)  # fmt: skip
    assert float(np.mean(trace.sample_stats["flow_accepted"])) > 0.2  # the refit flow fits
    assert_z_ok(moment_z_scores(np.asarray(trace.draws), mean, cov), Z_CRIT)
