"""``tempered_smc(..., backend="jax", mesh=...)``: the particles split over 8 fake CPU devices,
against the run without a mesh in the same process, same seed (one subprocess: the device
count must be set before JAX starts, and each process costs JAX's start-up).

* The global population step (:mod:`langevin.smc.sharded`) on log-weights whose blocks differ
  by orders of magnitude from device to device (so a per-device normalisation is far off):
  the log-evidence increment, the ESS, the ancestors of systematic, stratified and
  multinomial resampling (the same indices as the host's :func:`resample`, exactly), the
  exponent search, the weighted variances and the gather of the ancestors.
* Adaptive tempering with MALA, 64 particles over 8 devices: the same exponents, ``log Ẑ``,
  weighted particles and posterior draws as one device, to 1e-12 in float64 and to float32
  rounding in JAX's default float32; a fixed schedule resampling only when the ESS falls
  (both branches of the step) likewise. The particles really live on 8 devices.
* An ``n_particles`` not a multiple of the devices, a sequential scheme, a mesh on Numba and
  a mesh that is not one are refused before anything runs, naming the argument.
* Slow (more processes): Ctrl-C during ``sample(..., mesh=...)`` returns the draws made so
  far, marked interrupted; two processes (``jax.distributed``, gloo, 4 fake devices each)
  give every process the single-device run, and when one of them dies during
  ``sample(..., mesh=...)`` the other raises an error naming it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.process_helpers import (
    DEVICE_MESH_SOURCE,
    REPO,
    free_port,
    needs_multiprocess_jax,
    run_processes,
)

# one pytest-xdist worker for the module: its tests share one worker process (module fixture)
pytestmark = pytest.mark.xdist_group("smc_sharded")

WORKER = DEVICE_MESH_SOURCE + textwrap.dedent("""
    import json, sys
    import numpy as np
    import jax
    import langevin
    from langevin.smc import gaussian_model, resampling, stage_tuning, tempered_smc
    from langevin.smc._compile import twin
    from langevin.smc.exponent import next_increment
    from langevin.smc.sharded import sharded_ops
    from langevin.backends.jax_backend import member_mesh

    assert len(jax.devices()) == 8
    mesh = device_mesh(8, "particles")
    model = gaussian_model([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 2.0, -1.0],
                           [0.3, 0.3, 0.3])
    out = {}

    def smc_case(name, **kw):
        kw = dict(n_particles=64, n_steps=5, seed=1, progress=False, backend="jax", **kw)
        one = tempered_smc(model, langevin.MALA(0.5), **kw)
        many = tempered_smc(model, langevin.MALA(0.5), mesh=mesh, **kw)
        out[name] = {
            "dtype": str(many.draws.dtype),
            "stages": [int(one.n_stages[0]), int(many.n_stages[0])],
            "resampled": [float(np.nansum(t.stages["resampled"])) for t in (one, many)],
            "log_z": [one.log_evidence, many.log_evidence],
            "beta": float(np.nanmax(np.abs(one.stages["beta"] - many.stages["beta"]))),
            "particles": float(np.max(np.abs(one.particles - many.particles))),
            "log_weights": float(np.max(np.abs(one.log_weights - many.log_weights))),
            "draws": float(np.max(np.abs(one.draws - many.draws))),
            "spread": float(np.ptp(one.draws[0, :, 0])),
        }

    smc_case("f32_default")  # JAX's default float32 (x64 off, as the process started)
    jax.config.update("jax_enable_x64", True)  # this process only
    smc_case("f64")
    smc_case("f64_fixed", schedule=np.linspace(0, 1, 6)[1:], resample_threshold=0.5)

    # the population step on its own, float64: blocks of weights 1e±10 apart
    rng = np.random.default_rng(0)
    lw = rng.normal(size=64) + np.repeat(rng.normal(size=8) * 10.0, 8)
    log_g = rng.normal(size=64)
    ops = {s: sharded_ops(member_mesh(mesh), s) for s in ("systematic", "stratified",
                                                          "multinomial")}
    new, inc, ess = ops["systematic"].reweight(lw, log_g)
    w = np.exp(lw + log_g - np.max(lw + log_g)); w /= w.sum()
    host_inc = np.logaddexp.reduce(lw + log_g) - np.logaddexp.reduce(lw)
    out["reweight"] = [abs(float(inc) - host_inc), abs(float(ess) - 1.0 / np.sum(w * w)),
                       float(np.max(np.abs(np.asarray(new) - (lw + log_g))))]
    same, moved = {}, {}
    for s, op in ops.items():
        u = rng.random(resampling.uniforms_needed(s, 64))
        anc, reset, _, done = op.step(lw, u, 1.0)
        host = resampling.resample(s, lw, u, log=True)
        same[s] = bool(done) and np.asarray(anc).tolist() == host.tolist()
        moved[s] = int(len(set(host.tolist())))
        assert float(np.max(np.abs(np.asarray(reset)))) == 0.0
    anc, kept, _, done = ops["systematic"].step(lw, rng.random(1), 0.0)
    out["step"] = {"same": same, "distinct": moved,
                   "keep": (not bool(done)) and np.asarray(anc).tolist() == list(range(64))
                   and np.array_equal(np.asarray(kept), lw),
                   "anc_devices": len({s.device for s in anc.addressable_shards})}
    ell = rng.normal(size=64) * 5.0
    numpy_next = twin(next_increment, "numpy")
    out["exponent"] = [ops["systematic"].next_increment(lw, ell, 0.3, 0.5),
                       float(numpy_next(lw, ell, 0.3, 0.5))]
    x = rng.normal(size=(64, 3)) * np.array([1.0, 2.0, 3.0])
    out["variances"] = float(np.max(np.abs(ops["systematic"].weighted_variances(x, lw)
                                           - stage_tuning.weighted_variances(x, lw))))
    host = resampling.resample("systematic", lw, np.array([0.5]), log=True)
    gathered = ops["systematic"].gather((x, ell), host)
    out["gather"] = {"same": bool(np.array_equal(np.asarray(gathered[0]), x[host])
                                  and np.array_equal(np.asarray(gathered[1]), ell[host])),
                     "devices": len({s.device for s in gathered[0].addressable_shards}),
                     "rows": sorted(s.data.shape[0] for s in gathered[0].addressable_shards)}

    errors = {}
    for name, kw in {"uneven": dict(n_particles=60), "scheme": dict(scheme="ssp"),
                     "numba": dict(backend="numba"), "not_a_mesh": dict(mesh=jax.devices())
                     }.items():
        kw = {"n_particles": 64, "backend": "jax", "mesh": mesh, **kw}
        try:
            tempered_smc(model, langevin.MALA(0.5), progress=False, **kw)
        except (ValueError, TypeError) as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
    out["errors"] = errors
    json.dump(out, open(sys.argv[1], "w"))
""")

INTERRUPTED = DEVICE_MESH_SOURCE + textwrap.dedent("""
    import numpy as np
    import jax
    import langevin

    mesh = device_mesh(8, "chains")
    target = langevin.targets.gaussian(2)
    kw = dict(chains=16, backend="jax", mesh=mesh, progress=False, seed=0)
    # compiled first, so that the signal lands in the sampling loop
    langevin.sample(target, langevin.MALA(0.1), warmup=10, draws=10, **kw)
    print("start", flush=True)
    t = langevin.sample(target, langevin.MALA(0.1), warmup=100, draws=1_000_000, thin=200, **kw)
    print("returned", t.draws.shape[1], bool(np.isfinite(t.draws).all()), t.interrupted,
          flush=True)
""")


def _env() -> dict:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
               JAX_PLATFORMS="cpu")  # fmt: skip
    env.pop("JAX_ENABLE_X64", None)  # the worker starts in JAX's default float32
    return env


def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def mesh_run(tmp_path_factory):
    """The worker's measurements (one process, killed on a timeout)."""
    tmp = tmp_path_factory.mktemp("smc_sharded")
    script, result = tmp / "worker.py", tmp / "out.json"
    script.write_text(WORKER)
    run_processes([[sys.executable, str(script), str(result)]], _env(), timeout=300)
    return json.loads(result.read_text())


def test_population_step_is_global(mesh_run):
    r = mesh_run
    inc_err, ess_err, lw_err = r["reweight"]
    assert inc_err < 1e-12 and ess_err < 1e-10 and lw_err == 0.0
    step = r["step"]
    assert step["same"] == {"systematic": True, "stratified": True, "multinomial": True}
    assert min(step["distinct"].values()) < 40  # the weights are uneven: resampling selects
    assert step["keep"] and step["anc_devices"] == 8
    delta, host_delta = r["exponent"]
    assert 0 < delta < 0.7 and abs(delta - host_delta) < 1e-12
    assert r["variances"] < 1e-12
    g = r["gather"]
    assert g["same"] and g["devices"] == 8 and g["rows"] == [8] * 8


@pytest.mark.parametrize("case", ["f64", "f64_fixed"])
def test_float64_run_on_8_devices_is_the_single_device_run(mesh_run, case):
    r = mesh_run[case]
    assert r["dtype"] == "float64"
    assert r["stages"][0] == r["stages"][1] >= 3
    assert r["resampled"][0] == r["resampled"][1] >= 1
    if case == "f64_fixed":  # resample_threshold=0.5: some stages keep their weights
        assert r["resampled"][0] < r["stages"][0] - 1
    assert r["spread"] > 0.5  # the particles are spread, not collapsed onto one
    a, b = r["log_z"]
    assert abs(a - b) < 1e-12
    assert r["beta"] < 1e-12 and r["log_weights"] < 1e-12
    assert r["particles"] < 1e-12 and r["draws"] < 1e-12


def test_float32_default_run_on_8_devices_agrees_to_float32_rounding(mesh_run):
    """In float32 the global sums round differently from one device's (~1e-7 relative), and
    the exponent search runs on the device instead of the host: the runs agree to a few
    float32 ulps, amplified by the stages (measured: 7e-7)."""
    r = mesh_run["f32_default"]
    assert r["dtype"] == "float32"
    assert r["stages"][0] == r["stages"][1]
    a, b = r["log_z"]
    assert abs(a - b) < 2e-5 and r["beta"] < 2e-5
    assert r["particles"] < 2e-5 and r["draws"] < 2e-5


def test_bad_mesh_arguments_are_refused(mesh_run):
    e = mesh_run["errors"]
    assert e["uneven"].startswith("ValueError") and "n_particles=60" in e["uneven"]
    assert "mesh" in e["uneven"] and "(8)" in e["uneven"]
    assert e["scheme"].startswith("ValueError") and "scheme='ssp'" in e["scheme"]
    assert "backend='jax'" in e["numba"]
    assert e["not_a_mesh"].startswith("TypeError") and "mesh must be" in e["not_a_mesh"]


@pytest.mark.slow
def test_ctrl_c_under_a_mesh_returns_the_draws_so_far(tmp_path):
    """``sample(..., mesh=...)`` sent SIGINT while it draws: a trace of the finite draws made
    so far, marked interrupted (the driver stops between chunks, as on one device)."""
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=REPO, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_sigint_as_in_a_terminal)  # fmt: skip
    try:
        before = []
        for line in proc.stdout:
            if line.strip() == "start":
                break
            before.append(line)
        else:
            raise AssertionError("the worker ended early: " + "".join(before)[-3000:])
        time.sleep(3.0)  # the run's own set-up (no compilation: the runner is cached) first
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, rest[-3000:]
    last = rest.strip().splitlines()[-1].split()
    assert last[0] == "returned" and int(last[1]) > 0, rest[-3000:]
    assert last[2:] == ["True", "True"], rest[-3000:]
    assert "sampling interrupted" in rest


PROCESS_WORKER = DEVICE_MESH_SOURCE + textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import jax
    pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=pid,
                               initialization_timeout=60, heartbeat_timeout_seconds=20)
    jax.config.update("jax_enable_x64", True)
    import langevin
    from langevin.smc import gaussian_model, tempered_smc

    mesh = device_mesh(8, "particles")
    model = gaussian_model([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 2.0, -1.0],
                           [0.3, 0.3, 0.3])
    kw = dict(n_particles=64, n_steps=5, seed=1, progress=False, backend="jax")
    many = tempered_smc(model, langevin.MALA(0.5), mesh=mesh, **kw)
    one = tempered_smc(model, langevin.MALA(0.5), **kw)  # this process's first device only
    res = {"log_z": [one.log_evidence, many.log_evidence],
           "draws": float(np.max(np.abs(one.draws - many.draws))),
           "particles": float(np.max(np.abs(one.particles - many.particles))),
           "stages": int(many.n_stages[0])}

    # process 1 leaves during a sampling run over both processes
    target = langevin.targets.gaussian(2)
    skw = dict(chains=16, backend="jax", mesh=device_mesh(8, "chains"), progress=False,
               seed=0, warmup=0, thin=100)
    if pid == 1:
        langevin.sample(target, langevin.MALA(0.1), draws=5, **skw)
        json.dump(res, open(out, "w"))
        os._exit(0)  # gone, without jax.distributed.shutdown
    try:
        langevin.sample(target, langevin.MALA(0.1), draws=1_000_000, **skw)
        res["failure"] = "the run went on"
    except RuntimeError as exc:
        res["failure"] = str(exc)
    json.dump(res, open(out, "w"))
    os._exit(0)  # before JAX's coordination service ends this process for its lost peer
""")


@pytest.mark.slow
@needs_multiprocess_jax
def test_two_processes_give_the_single_device_run_and_name_a_process_that_dies(tmp_path):
    script = tmp_path / "process_worker.py"
    script.write_text(PROCESS_WORKER)
    port = free_port()
    outs = [tmp_path / f"p{i}.json" for i in range(2)]
    env = dict(_env(), XLA_FLAGS="--xla_force_host_platform_device_count=4")
    run_processes([[sys.executable, str(script), str(i), str(port), str(outs[i])]
                   for i in range(2)], env, timeout=300)  # fmt: skip
    got = [json.loads(f.read_text()) for f in outs]
    for r in got:  # each process has the whole run, that of one device
        assert r["stages"] >= 3
        assert abs(r["log_z"][0] - r["log_z"][1]) < 1e-12
        assert r["draws"] < 1e-12 and r["particles"] < 1e-12
    failure = got[0]["failure"]
    assert "process(es) [1] stopped" in failure, failure
    assert "2 processes" in failure and "devices process 1:" in failure, failure
