"""Long runs: checkpoints, resume (bit for bit, after a real SIGKILL), draws streamed to disk,
float32 storage and a subset of coordinates."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import langevin
import langevin.checkpoint
from langevin.targets import gaussian

BACKENDS = ["numba", "jax"]


def _run(backend, kernel, **kw):
    args = dict(chains=3, warmup=300, draws=400, seed=5, progress=False, backend=backend)
    args.update(kw)
    return langevin.sample(gaussian(3), kernel, **args)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel", [langevin.MALA(0.5), langevin.HMC(0.3, n_leapfrog=5)],
                         ids=["MALA", "HMC"])  # fmt: skip
def test_resume_from_a_mid_run_checkpoint_is_bit_for_bit(backend, kernel, tmp_path, monkeypatch):
    """A checkpoint taken in the warm-up (HMC: inside a mass-matrix window) and one taken in
    the sampling phase each resume to exactly the uninterrupted run's draws, statistics and
    adaptation; checkpointing itself changes nothing."""
    full = _run(backend, kernel)
    path = tmp_path / "run.npz"
    copies = []
    write = langevin.checkpoint.write

    def write_and_copy(p, run):  # keep every checkpoint the run writes, as a kill would find it
        write(p, run)
        copies.append((run.done, tmp_path / f"copy{len(copies)}.npz"))
        shutil.copy(p, copies[-1][1])

    monkeypatch.setattr(langevin.checkpoint, "write", write_and_copy)
    checkpointed = _run(backend, kernel, checkpoint=path, checkpoint_every=70)
    monkeypatch.undo()
    np.testing.assert_array_equal(checkpointed.draws, full.draws)
    in_warmup = [c for done, c in copies if 0 < done < 300]
    in_sampling = [c for done, c in copies if 300 < done < 700]
    assert in_warmup and in_sampling
    for copy in (in_warmup[len(in_warmup) // 2], in_sampling[0]):
        resumed = langevin.resume(copy, gaussian(3), progress=False)
        np.testing.assert_array_equal(resumed.draws, full.draws)
        np.testing.assert_array_equal(resumed.step_size, full.step_size)
        for k, v in full.sample_stats.items():
            np.testing.assert_array_equal(resumed.sample_stats[k], v)
        for k, v in full.warmup_stats.items():
            np.testing.assert_array_equal(resumed.warmup_stats[k], v)
        if full.inverse_mass is not None:
            np.testing.assert_array_equal(resumed.inverse_mass, full.inverse_mass)


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_with_more_draws_continues_the_chains(backend, tmp_path):
    path = tmp_path / "run.npz"
    short = _run(backend, langevin.MALA(0.5), checkpoint=path)
    longer = langevin.resume(path, gaussian(3), draws=650, progress=False)
    reference = _run(backend, langevin.MALA(0.5), draws=650)
    np.testing.assert_array_equal(longer.draws, reference.draws)
    np.testing.assert_array_equal(longer.draws[:, :400], short.draws)
    # a finished checkpoint resumed as it is gives the same trace back without a step
    again = langevin.resume(tmp_path / "run.npz", gaussian(3), progress=False)
    np.testing.assert_array_equal(again.draws, reference.draws)


def test_resume_refuses_another_target_or_kernel(tmp_path):
    path = tmp_path / "run.npz"
    _run("numba", langevin.MALA(0.5), checkpoint=path, draws=50, warmup=50)
    other = gaussian(3)
    shifted = langevin.targets.gaussian(3, mean=np.ones(3))
    with pytest.raises(ValueError, match="target"):
        langevin.resume(path, shifted, progress=False)
    with pytest.raises(ValueError, match="kernel"):
        langevin.resume(path, other, kernel=langevin.MALA(0.3), progress=False)
    with pytest.raises(TypeError, match="target"):
        langevin.resume(path, "gaussian", progress=False)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        langevin.resume(tmp_path / "missing.npz", other, progress=False)
    with pytest.raises(ValueError, match="draws"):
        langevin.resume(path, other, draws=10, progress=False)


def test_sample_refuses_bad_long_run_arguments(tmp_path):
    t, k = gaussian(3), langevin.MALA(0.5)
    with pytest.raises(ValueError, match="checkpoint_every"):
        langevin.sample(t, k, checkpoint_every=10, progress=False)
    with pytest.raises(ValueError, match="checkpoint_every"):
        langevin.sample(t, k, checkpoint=tmp_path / "c.npz", checkpoint_every=0)
    with pytest.raises(TypeError, match="checkpoint"):
        langevin.sample(t, k, checkpoint=3)
    with pytest.raises(TypeError, match="store_dtype"):
        langevin.sample(t, k, store_dtype=np.int32)
    with pytest.raises(ValueError, match="keep"):
        langevin.sample(t, k, keep=["beta"])
    with pytest.raises(ValueError, match="keep"):
        langevin.sample(t, k, keep=[7])
    with pytest.raises(ValueError, match="keep"):
        langevin.sample(t, k, keep=[])
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="store"):
        langevin.sample(t, k, store=tmp_path / "file")


@pytest.mark.parametrize("backend", BACKENDS)
def test_streamed_float32_subset_is_the_in_memory_run(backend, tmp_path):
    """Draws streamed to disk in float32, two of three coordinates kept: the same numbers as
    the in-memory run, cast; memory-mapped, and loaded back from the directory."""
    full = _run(backend, langevin.MALA(0.5))
    store = tmp_path / "store"
    streamed = _run(backend, langevin.MALA(0.5), store=store, store_dtype=np.float32, keep=[0, 2])
    assert isinstance(streamed.draws, np.memmap)
    assert streamed.draws.dtype == np.float32 and streamed.draws.shape == (3, 400, 2)
    np.testing.assert_array_equal(streamed.draws, full.draws[:, :, [0, 2]].astype(np.float32))
    assert list(streamed.names) == ["x[0]", "x[2]"]
    np.testing.assert_array_equal(np.load(store / "draws.npy"), streamed.draws)
    loaded = langevin.load(store)
    np.testing.assert_array_equal(loaded.draws, streamed.draws)
    np.testing.assert_array_equal(loaded.sample_stats["lp"], full.sample_stats["lp"])
    assert loaded.names == streamed.names
    # the ArviZ view of a streamed trace names the kept coordinates
    idata = streamed.to_arviz()
    assert set(idata["posterior"].data_vars) == {"x[0]", "x[2]"}


def test_keep_by_name_keeps_whole_blocks():
    names = {"a": 2, "b": (2, 2), "c": ()}
    t = langevin.Target.from_jax(lambda x: -0.5 * (x**2).sum(), dim=7, names=names)
    tr = langevin.sample(t, langevin.MALA(0.5), chains=2, warmup=20, draws=30, seed=0,
                         backend="jax", progress=False, keep=["b", 0])  # fmt: skip
    assert tr.draws.shape == (2, 30, 5)
    assert tr.names == {"a[0]": (slice(0, 1), ()), "b": (slice(1, 5), (2, 2))}


@pytest.mark.parametrize("backend", BACKENDS)
def test_resume_of_a_streamed_run(backend, tmp_path, monkeypatch):
    full = _run(backend, langevin.MALA(0.5))
    store, path = tmp_path / "store", tmp_path / "run.npz"
    kept = []
    write = langevin.checkpoint.write

    def write_and_copy(p, run):
        write(p, run)
        if 300 < run.done < 700 and not kept:
            shutil.copy(p, tmp_path / "mid.npz")
            kept.append(run.done)

    monkeypatch.setattr(langevin.checkpoint, "write", write_and_copy)
    _run(backend, langevin.MALA(0.5), checkpoint=path, checkpoint_every=50, store=store)
    monkeypatch.undo()
    assert kept
    resumed = langevin.resume(tmp_path / "mid.npz", gaussian(3), progress=False, draws=450)
    reference = _run(backend, langevin.MALA(0.5), draws=450)
    np.testing.assert_array_equal(resumed.draws, reference.draws)
    np.testing.assert_array_equal(resumed.draws[:, :400], full.draws)


_CHILD = textwrap.dedent(
    """
    import sys, json, numpy as np, numba, langevin

    @numba.njit(cache=True)
    def logp(x):
        return -0.5 * (x @ x)

    @numba.njit(cache=True)
    def grad(x):
        return -x

    def target():
        if BACKEND == "numba":
            return langevin.Target.from_numba(logp, grad, dim=2, name="iso2")
        import jax.numpy as jnp
        return langevin.Target.from_jax(lambda x: -0.5 * jnp.sum(x * x), dim=2, name="iso2")

    mode, BACKEND, path, out = sys.argv[1:5]
    settings = dict(chains=2, warmup=1000, draws=DRAWS, seed=11, progress=False, backend=BACKEND)
    if mode == "run":  # killed mid-way by the test
        langevin.sample(target(), langevin.MALA(0.9), checkpoint=path,
                        checkpoint_every=EVERY, **settings)
    elif mode == "reference":
        np.save(out, langevin.sample(target(), langevin.MALA(0.9), **settings).draws)
    else:
        trace = langevin.resume(path, target(), progress=False)
        np.save(out, trace.draws)
        if BACKEND == "numba":
            from langevin.backends import numba_backend
            loops = list(numba_backend._LOOPS.values())
            misses = sum(sum(l.dispatcher.stats.cache_misses.values()) for l in loops)
            hits = sum(sum(l.dispatcher.stats.cache_hits.values()) for l in loops)
            with open(out + ".json", "w") as f:
                json.dump({"misses": misses, "hits": hits}, f)
    """
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_then_resume_gives_the_uninterrupted_draws(backend, tmp_path):
    """A run killed with SIGKILL at an arbitrary moment after its first checkpoint resumes,
    in a new process, to the draws of the run never killed; on Numba the resumed process
    loads the compiled loop from the disk cache (no recompilation)."""
    draws, every = 300_000, 20_000
    script = tmp_path / "child.py"
    script.write_text(_CHILD.replace("DRAWS", str(draws)).replace("EVERY", str(every)))
    path, env = tmp_path / "run.npz", {**os.environ, "PYTHONPATH": os.getcwd()}

    def child(mode, out="none"):
        return [sys.executable, str(script), mode, backend, str(path), str(tmp_path / out)]

    proc = subprocess.Popen(child("run"), env=env)
    deadline = time.time() + 240
    while not path.exists():  # the first checkpoint
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.time() < deadline, "no checkpoint within 240 s"
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere later: maybe in a chunk, maybe while writing a checkpoint
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = langevin.checkpoint.read(path)[0]["done"]
    assert 0 < done < 1000 + draws, f"the kill came too late to test a resume (done={done})"
    subprocess.run(child("resume", "resumed.npy"), env=env, check=True, timeout=300)
    subprocess.run(child("reference", "reference.npy"), env=env, check=True, timeout=300)
    resumed = np.load(tmp_path / "resumed.npy")
    np.testing.assert_array_equal(resumed, np.load(tmp_path / "reference.npy"))
    assert resumed.shape == (2, draws, 2) and np.isfinite(resumed).all()
    if backend == "numba":
        stats = json.loads((tmp_path / "resumed.npy.json").read_text())
        assert stats["misses"] == 0 and stats["hits"] >= 1, stats


def test_memory_benchmark_runs(capsys):
    """The peak-memory benchmark's quick mode (d = 100): a streamed float32 run reports."""
    from benchmarks import long_run_memory

    long_run_memory.main(["--quick", "--modes", "stream-float32"])
    out = capsys.readouterr().out
    assert "| stream-float32 | 0.01 |" in out
