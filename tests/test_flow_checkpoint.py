"""Checkpoints of runs whose warm-up retrains a flow (FlowProposal's FlowRetraining): the
component's state_dict round trip, and resume, bit for bit, from a checkpoint taken before
the refit (the pooled draws are restored and the same refit is made) and after it (the
refitted flow comes back with the per-chain params)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import langevin
import langevin.checkpoint
from langevin.flows import realnvp_init
from langevin.kernels.flow_mcmc import FlowProposal, FlowRetraining


def _target():
    return langevin.targets.gaussian(2, mean=[1.0, -0.5], cov=[1.0, 0.5])


def _kernel():
    return FlowProposal(0.3, flow=realnvp_init(2, 2, (4, 4), seed=0, init_scale=0.1),
                        retrain=1, train_steps=5, learning_rate=1e-2)  # fmt: skip


def test_flow_retraining_state_dict_round_trip():
    a = FlowRetraining(_kernel(), chains=2, dim=2, warmup=100)
    rng = np.random.default_rng(0)
    a.observe(10, rng.standard_normal((2, 20, 2)))
    a.observe(30, rng.standard_normal((2, 20, 2)))
    a.rounds, a.losses = 3, [1.5, 1.25]
    b = FlowRetraining(_kernel(), chains=2, dim=2, warmup=100)
    b.load_state_dict({k: np.array(v) for k, v in a.state_dict().items()})
    np.testing.assert_array_equal(np.concatenate(b.buffer, 1), np.concatenate(a.buffer, 1))
    assert np.concatenate(a.buffer, 1).shape == (2, 10 + 20, 2)  # the burn-in left out
    assert (b.rounds, b.losses) == (3, [1.5, 1.25])
    empty = FlowRetraining(_kernel(), chains=2, dim=2, warmup=100)
    empty.load_state_dict(empty.state_dict())
    assert empty.buffer == [] and empty.rounds == 0


@pytest.mark.slow  # compiles the flow proposal's loop and its retraining: 18 CPU-s cold
def test_resume_across_a_flow_refit_is_bit_for_bit(tmp_path, monkeypatch):
    """warm-up 60 refits the flow once, at step 36; checkpoints every 20 steps: the copy at
    20 precedes the refit, the copy at 40 follows it. Each copy resumes to the run's draws
    and statistics exactly (the resumed run is cut into other chunks: the pooled draws'
    order must not depend on them), and the refit changed the flow."""
    kernel = _kernel()
    kw = dict(chains=2, warmup=60, draws=30, seed=4, progress=False)
    path = tmp_path / "run.npz"
    copies = {}
    write = langevin.checkpoint.write

    def write_and_copy(p, run):  # keep every checkpoint, as a kill would find it
        write(p, run)
        copies[run.done] = tmp_path / f"copy{run.done}.npz"
        shutil.copy(p, copies[run.done])

    monkeypatch.setattr(langevin.checkpoint, "write", write_and_copy)
    full = langevin.sample(_target(), kernel, checkpoint=path, checkpoint_every=20, **kw)
    monkeypatch.undo()
    assert {20, 40} <= set(copies)
    with np.load(copies[20]) as before, np.load(copies[40]) as after:
        flow_keys = [k for k in before.files if k.startswith("params/")]
        assert any(not np.array_equal(before[k], after[k]) for k in flow_keys)  # refitted
    for done in (20, 40):
        resumed = langevin.resume(copies[done], _target(), kernel=kernel, progress=False)
        np.testing.assert_array_equal(resumed.draws, full.draws)
        for k, v in full.sample_stats.items():
            np.testing.assert_array_equal(resumed.sample_stats[k], v)
        for k, v in full.warmup_stats.items():
            np.testing.assert_array_equal(resumed.warmup_stats[k], v)
