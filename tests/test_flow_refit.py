"""NeuTra refit inside one warm-up (flow_transformed(..., refits=k), the FlowRefit warm-up
component): the refit happens at its warm-up step (the target's runtime data takes the new
weights: nothing recompiles), improves the flow's fit to the target (the negative
log-likelihood of exact draws), the kept draws mapped through the last flow have the
target's moments (MCSE z-tests), and a checkpoint taken after the refit resumes bit for bit.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import langevin
import langevin.checkpoint
from langevin.flows import flow_functions, flow_transformed, realnvp_init
from langevin.flows.neutra import FlowRefit
from langevin.nn import numpy_twin
from tests.stats_helpers import Z_CRIT, assert_z_ok, moment_z_scores

MEAN = np.array([3.0, -2.0])
COV = np.array([[4.0, 0.9], [0.9, 0.5]])


def _target():
    return langevin.targets.gaussian(2, mean=MEAN, cov=COV)


def _latent(refits=1):
    flow = realnvp_init(2, 2, (8, 8), seed=0, init_scale=0.0, permute="none")  # the identity
    return flow_transformed(_target(), flow, refits=refits, refit_steps=150,
                            refit_learning_rate=2e-2)  # fmt: skip


def _nll(flow, x):
    logq = numpy_twin(flow_functions(flow).log_density)
    return -float(np.mean([logq(flow, xi) for xi in x]))


@pytest.mark.slow  # a statistical run with a refit on JAX: 27 CPU-s with cold caches
def test_refit_in_warmup_improves_the_flow_and_sampling_is_exact(tmp_path, monkeypatch):
    latent = _latent()
    kernel = langevin.HMC(0.3, n_leapfrog=4)
    kw = dict(chains=4, warmup=200, draws=500, seed=3, progress=False)
    refits = []
    update = FlowRefit.update_target

    def spy(self, done, data, positions):  # record when the refit replaces the target data
        out = update(self, done, data, positions)
        if out is not None:
            refits.append(done)
        return out

    monkeypatch.setattr(FlowRefit, "update_target", spy)
    copies = {}
    write = langevin.checkpoint.write

    def write_and_copy(p, run):
        write(p, run)
        copies[run.done] = tmp_path / f"copy{run.done}.npz"
        shutil.copy(p, copies[run.done])

    monkeypatch.setattr(langevin.checkpoint, "write", write_and_copy)
    trace = langevin.sample(latent, kernel, checkpoint=tmp_path / "run.npz",
                            checkpoint_every=100, **kw)  # fmt: skip
    monkeypatch.undo()
    assert refits == [120]  # one refit, at 20% + 40% of the warm-up
    flow = trace.constrain.flow
    assert flow is not latent.flow_params
    # the fit improved: exact draws are far more likely under the refitted flow
    exact = np.random.default_rng(0).multivariate_normal(MEAN, COV, 2000)
    before, after = _nll(latent.flow_params, exact), _nll(flow, exact)
    entropy = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * COV))  # the best possible NLL
    assert after < before - 2.0 and after < entropy + 0.25, (before, after, entropy)
    # the kept draws, mapped through the last flow, have the target's moments
    x = trace.constrain(trace.draws)["x"]
    assert x.shape == (4, 500, 2)
    assert_z_ok(moment_z_scores(x, MEAN, COV), Z_CRIT)
    # resumed from the checkpoint after the refit: the same draws, the same flow
    resumed = langevin.resume(copies[200], latent, kernel=kernel, progress=False)
    np.testing.assert_array_equal(resumed.draws, trace.draws)
    z = np.random.default_rng(1).standard_normal((3, 2))
    np.testing.assert_array_equal(resumed.constrain(z)["x"], trace.constrain(z)["x"])


def test_refit_settings_are_checked():
    with pytest.raises(ValueError, match="refits"):
        _latent(refits=-1)
    flow = realnvp_init(2, 2, (4,), seed=0)
    with pytest.raises(ValueError, match="refit_steps"):
        flow_transformed(_target(), flow, refits=1, refit_steps=0)
    with pytest.raises(ValueError, match="refit_learning_rate"):
        flow_transformed(_target(), flow, refits=1, refit_learning_rate=-1.0)
    assert not hasattr(flow_transformed(_target(), flow), "warmup_components")
