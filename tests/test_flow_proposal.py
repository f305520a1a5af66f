"""Flow-proposal MCMC (langevin.kernels.FlowProposal, the flowMC scheme).

* The step's math, through the kernel's NumPy twin on given noise, against an independent
  NumPy transcription: the MALA half and the independence-sampler half (proposal f(u), the
  flow density of both points, the acceptance probability and decision).
* The stacked flow (the kernel's parameter layout) computes what langevin.flows computes.
* Through ``langevin.sample``: MCSE z-tests of the moments of a two-mode mixture whose modes
  MALA alone does not cross at this budget (default: Numba, an untrained flow, no retraining;
  slow: both backends with the flow retrained during warm-up, and Neal's funnel d = 10).

Cross-backend agreement on the same noise is test_conformance.py's (the kernel is exported).
"""

from __future__ import annotations

import numpy as np
import pytest

import langevin
from langevin.backends import numpy_ops
from langevin.backends.portable import make_twin
from langevin.flows import flow_forward_and_log_det, flow_log_density, realnvp_init
from langevin.kernels.flow_mcmc import (
    FlowProposal,
    FlowProposalNoise,
    FlowProposalParams,
    FlowProposalState,
    flow_proposal_init,
    flow_proposal_step,
    stack_flow,
    stacked_forward_and_log_det,
    stacked_log_density,
    unstack_flow,
)
from langevin.nn import numpy_twin
from langevin.targets.capabilities import form_of
from tests.stats_helpers import Z_CRIT, assert_z_ok, z_score

Z_CRIT_HERE = 4.5  # per-test critical value: P(|z| > 4.5) = 7e-6 per z-test

_TWINS: dict = {}


def _np(fn):
    return make_twin(fn, numpy_ops, lambda f: f, _TWINS)


def _mixture():
    return langevin.targets.gaussian_mixture(
        means=np.array([[-4.0, 0.0], [4.0, 0.0]]), sds=np.array([0.7, 0.7]),
        weights=np.array([0.3, 0.7]),
    )  # fmt: skip


def _mixture_numpy(target):
    comps = target.components
    w, mu, cov = (np.asarray(comps[k]) for k in ("weights", "means", "covs"))
    prec = np.linalg.inv(cov)
    logdet = np.linalg.slogdet(cov)[1]

    def vg(x):
        r = x - mu
        q = np.einsum("ki,kij,kj->k", r, prec, r)
        logs = np.log(w) - 0.5 * q - 0.5 * logdet - np.log(2 * np.pi)
        top = logs.max()
        p = np.exp(logs - top)
        grad = -(p[:, None] * np.einsum("kij,kj->ki", prec, r)).sum(0) / p.sum()
        return top + np.log(p.sum()), grad

    return vg


def test_stacked_flow_is_the_flow():
    flow = realnvp_init(3, 3, (5, 5), seed=2, init_scale=0.7)
    stacked = stack_flow(flow)
    z = np.random.default_rng(0).standard_normal(3)
    x, ld = numpy_twin(flow_forward_and_log_det)(flow, z)
    xs, lds = _np(stacked_forward_and_log_det)(stacked, z)
    np.testing.assert_allclose(xs, x, atol=1e-13)
    np.testing.assert_allclose(lds, ld, atol=1e-13)
    np.testing.assert_allclose(_np(stacked_log_density)(stacked, x),
                               numpy_twin(flow_log_density)(flow, x), atol=1e-12)  # fmt: skip
    back = unstack_flow(stacked)
    np.testing.assert_array_equal(numpy_twin(flow_forward_and_log_det)(back, z)[0], x)


def test_step_against_an_independent_transcription():
    """Given the noise, the twin's transition equals a NumPy transcription of the scheme."""
    target = _mixture()
    vg = _mixture_numpy(target)
    form = form_of(value_and_grad=vg)
    flow = realnvp_init(2, 2, (6, 6), seed=3, init_scale=0.5)
    params = FlowProposalParams(stack_flow(flow))
    init = _np(flow_proposal_init)
    step = _np(flow_proposal_step)
    logq = numpy_twin(flow_log_density)
    fwd = numpy_twin(flow_forward_and_log_det)
    rng = np.random.default_rng(0)
    h = 0.3
    seen_local, seen_flow = set(), set()
    for _trial in range(60):
        x = rng.standard_normal(2) * 3
        state = init(x, None, params, form)
        assert isinstance(state, FlowProposalState)
        noise = FlowProposalNoise(rng.standard_normal(2), rng.uniform(), rng.standard_normal(2),
                                  rng.uniform())  # fmt: skip
        new, info = step(state, noise, h, params, form)
        # -- transcription: MALA
        lx, gx = vg(x)
        y = x + h * gx + np.sqrt(2 * h) * noise.normal
        ly, gy = vg(y)
        fw = y - x - h * gx
        bw = x - y - h * gy
        log_r = ly - lx + (fw @ fw - bw @ bw) / (4 * h)
        a_local = min(1.0, np.exp(log_r))
        acc_local = np.log(noise.uniform) < log_r
        x1, l1 = (y, ly) if acc_local else (x, lx)
        # -- transcription: independence proposal from the flow
        y2, ld = fwd(flow, noise.base)
        logq_y2 = -0.5 * noise.base @ noise.base - np.log(2 * np.pi) - ld
        l2, _ = vg(y2)
        log_r2 = l2 - l1 + logq(flow, x1) - logq_y2
        a_flow = min(1.0, np.exp(log_r2))
        acc_flow = np.log(noise.flow_uniform) < log_r2
        expected = y2 if acc_flow else x1
        np.testing.assert_allclose(info.acceptance_rate, a_local, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(info.flow_acceptance_rate, a_flow, rtol=1e-10, atol=1e-12)
        assert bool(info.is_accepted) == acc_local and bool(info.flow_accepted) == acc_flow
        np.testing.assert_allclose(new.position, expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(new.log_q, logq(flow, expected), atol=1e-10)
        np.testing.assert_allclose(new.logdensity, vg(expected)[0], atol=1e-10)
        seen_local.add(bool(acc_local))
        seen_flow.add(bool(acc_flow))
    assert seen_local == {True, False} and seen_flow == {True, False}


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="flow"):
        FlowProposal(0.1)
    with pytest.raises(ValueError, match="two hidden layers"):
        FlowProposal(0.1, flow=realnvp_init(2, 2, (4,)))
    with pytest.raises(ValueError, match="retrain"):
        FlowProposal(0.1, flow=realnvp_init(2, 2, (4, 4)), retrain=-1)
    with pytest.raises(ValueError, match="dimension 2"):
        langevin.sample(langevin.targets.gaussian(3), FlowProposal(0.1, flow=realnvp_init(
            2, 1, (4, 4))), warmup=0, draws=2, progress=False)  # fmt: skip


def _mixture_moments(trace, target):
    draws = np.asarray(trace.draws, dtype=np.float64)
    mean = target.reference.mean
    cov = target.reference.cov
    zs = {}
    for i in range(2):
        zs[f"mean[{i}]"] = z_score(draws[..., i], mean[i])
        zs[f"var[{i}]"] = z_score((draws[..., i] - mean[i]) ** 2, cov[i, i])
    zs["P(x0 > 0)"] = z_score((draws[..., 0] > 0).astype(float), 0.7)
    return zs


@pytest.mark.slow  # a long statistical run (the default run keeps the one-transition check)
def test_mixture_moments_numba():
    """An untrained flow (N((−2, 1), 4² I) pushed through small random couplings) proposes
    into both modes, which MALA alone does not cross; the chain's moments and mode weights are
    the mixture's (MCSE z-tests). The flow is off-centre on purpose: a chain that dropped the
    flow density from its acceptance ratio would weight the modes by π·q, not π."""
    from langevin.flows import ElementwiseAffine

    target = _mixture()
    flow = realnvp_init(2, 2, (8, 8), seed=0, init_scale=0.3)
    flow = flow._replace(final=ElementwiseAffine(np.array([-2.0, 1.0]), np.full(2, np.log(4.0))))
    kernel = FlowProposal(0.3, flow=flow, retrain=0)
    trace = langevin.sample(target, kernel, chains=4, warmup=300, draws=3000, seed=4,
                            backend="numba", progress=False,
                            initial_position=np.array([-4.0, 0.0]))  # fmt: skip
    assert float(np.mean(trace.sample_stats["flow_accepted"])) > 0.02
    assert_z_ok(_mixture_moments(trace, target), Z_CRIT_HERE)


@pytest.mark.slow
def test_mixture_with_retraining():
    """flowMC's loop: the flow (random at the start) retrained three times on the warm-up
    draws; after it the flow proposals are accepted often and the moments are exact. (Numba;
    the refit runs on the host for either backend, and the JAX kernel's agreement with the
    Numba one is the conformance suite's.)"""
    target = _mixture()
    kernel = FlowProposal(0.3, flow=realnvp_init(2, 3, (16, 16), seed=0), retrain=3,
                          train_steps=200)  # fmt: skip
    trace = langevin.sample(target, kernel, chains=4, warmup=500, draws=1500, seed=2,
                            progress=False)  # fmt: skip
    assert float(np.mean(trace.sample_stats["flow_acceptance_rate"])) > 0.2
    assert_z_ok(_mixture_moments(trace, target), Z_CRIT_HERE)


@pytest.mark.slow
def test_funnel_moments_after_reverse_kl_fit():
    """Neal's funnel (d = 10): a flow fitted by reverse KL (not retrained: MALA's warm-up draws
    miss the neck, and a refit on them makes the flow worse); the chain's var(v) and E[v]
    against the exact law (z-tests with the MCSE)."""
    from langevin.flows import fit_reverse_kl

    target = langevin.targets.neals_funnel(10)
    flow, _ = fit_reverse_kl(target, realnvp_init(10, 6, (32, 32), seed=0), steps=1500,
                             progress=False)  # fmt: skip
    kernel = FlowProposal(0.05, flow=flow, retrain=0)
    trace = langevin.sample(target, kernel, chains=4, warmup=1000, draws=3000, seed=1,
                            progress=False)  # fmt: skip
    v = np.asarray(trace.draws[..., 0])
    zs = {"E[v]": z_score(v, 0.0), "var(v)": z_score(v**2, 9.0)}
    assert_z_ok(zs, Z_CRIT)
