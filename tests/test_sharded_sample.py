"""``sample(..., backend="jax", mesh=...)``: the chains split over 8 fake CPU devices (a
subprocess: the device count must be set before JAX starts), against the run without a mesh
in the same process, same seed.

* MALA and HMC with warm-up (step size and HMC's mass matrix adapted per chain: nothing is
  reduced across chains), 16 chains (two per device), float64 and float32: the same draws,
  step sizes and inverse masses as one device, bit for bit.
* MALA and HMC without warm-up, 8 chains (one per device), float64: the same draws to 1e-12.
* Two processes on 127.0.0.1 (``jax.distributed``, gloo), 4 fake devices each, one mesh
  over the 8: each process holds and runs half the chains and gets the whole trace, bit for
  bit the single-process one (MALA and HMC with warm-up, float64).
* The state and the keys really live on 8 devices, one block of chains each; ``chains`` not a
  multiple of the devices, a mesh on Numba and a mesh that is not one are refused.

The subprocess runs XLA's CPU code without AVX (``--xla_cpu_max_isa=SSE4_2``): with AVX2,
XLA's CPU compiler fuses multiply-adds (FMA) in the vectorised body of a loop but not in its
scalar remainder, so which of a chain's coordinates get an FMA depends on how many chains a
device holds, and the last bit of a step can differ from one device's run; warm-up's
adaptation and the accept/reject steps then amplify it (docs/scaling.md). With one chain per
device XLA also drops the chain axis and sums a chain's coordinates in another order, so
there the warm-up-free runs are compared to 1e-12.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

import langevin
from tests.process_helpers import (
    DEVICE_MESH_SOURCE,
    device_mesh,
    free_port,
    needs_multiprocess_jax,
    run_processes,
    xla_cpu_isa_flag,
)

WORKER = DEVICE_MESH_SOURCE + textwrap.dedent("""
    import json, sys
    import numpy as np
    import jax
    import langevin
    from langevin.backends import jax_backend as be

    assert len(jax.devices()) == 8
    mesh = device_mesh(8, "chains")
    target = langevin.targets.gaussian(3, mean=np.array([1.0, -1.0, 0.5]),
                                       cov=np.array([1.0, 0.5, 2.0]))
    out, reference = {}, {}
    cases = {  # (kernel, warm-up, chains, float dtype)
        "mala_warmup_f64": (langevin.MALA(0.5), 100, 16, np.float64),
        "mala_warmup_f32": (langevin.MALA(0.5), 100, 16, np.float32),
        "hmc_warmup_f64": (langevin.HMC(0.3, 5), 100, 16, np.float64),
        "hmc_warmup_f32": (langevin.HMC(0.3, 5), 100, 16, np.float32),
        "mala_one_per_device": (langevin.MALA(0.5), 0, 8, np.float64),
        "hmc_one_per_device": (langevin.HMC(0.3, 5), 0, 8, np.float64),
    }
    for name, (kernel, warmup, chains, dtype) in cases.items():
        kw = dict(chains=chains, warmup=warmup, draws=100, seed=3, progress=False,
                  backend="jax", initial_position=np.zeros(3, dtype))
        one = langevin.sample(target, kernel, **kw)
        many = langevin.sample(target, kernel, mesh=mesh, **kw)
        r = {
            "dtype": str(many.draws.dtype),
            "diff": float(np.max(np.abs(one.draws - many.draws))),
            "step_diff": float(np.max(np.abs(one.step_size - many.step_size))),
            "steps_differ": float(np.ptp(one.step_size)),
            "moved": float(np.max(np.abs(one.draws[:, -1] - one.draws[:, 0]))),
        }
        if one.inverse_mass is not None:
            r["mass_diff"] = float(np.max(np.abs(one.inverse_mass - many.inverse_mass)))
        out[name] = r
        if name.endswith("warmup_f64"):  # the reference of the two-process test
            kind = name.split("_")[0]
            reference[kind], reference[kind + "_step"] = one.draws, one.step_size

    # where the state lives: one block of chains on each of the 8 devices
    kernel = langevin.MALA(0.5)
    prepared = be.prepare(kernel, target, 3, np.float64, mesh=mesh)
    start = np.zeros((16, 3))
    state = be.init(prepared, start, keys=be.place_members(be.chain_keys(0, 16), prepared.mesh))
    keys = be.place_members(be.chain_keys(1, 16), prepared.mesh)
    result = be.run(prepared, state, 5, np.full(16, 0.5), keys=keys)
    shards = result.state.position.addressable_shards
    out["shards"] = {
        "devices": len({s.device for s in shards}),
        "rows": sorted(s.data.shape[0] for s in shards),
        "starts": sorted(s.index[0].start or 0 for s in shards),
        "keys": len({s.device for s in keys.addressable_shards}),
    }

    errors = {}
    try:
        langevin.sample(target, kernel, chains=12, backend="jax", mesh=mesh, progress=False)
    except ValueError as exc:
        errors["uneven"] = str(exc)
    out["errors"] = errors
    json.dump(out, open(sys.argv[1], "w"))
    np.savez(sys.argv[2], **reference)
""")


def _env(devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices} {xla_cpu_isa_flag()}"
    env["JAX_ENABLE_X64"] = "1"
    env["JAX_PLATFORMS"] = "cpu"
    return env


@pytest.fixture(scope="module")
def mesh_results(tmp_path_factory):
    """Everything measured on the 8-device mesh, in one subprocess (killed on a timeout)."""
    tmp = tmp_path_factory.mktemp("sharded")
    script, result = tmp / "worker.py", tmp / "out.json"
    script.write_text(WORKER)
    run_processes([[sys.executable, str(script), str(result), str(tmp / "reference.npz")]], _env(8),
         timeout=300)  # fmt: skip
    out = json.loads(result.read_text())
    out["reference"] = str(tmp / "reference.npz")
    return out


@pytest.mark.parametrize("kernel", ["mala", "hmc"])
@pytest.mark.parametrize("dtype", ["f64", "f32"])
def test_warmup_and_draws_on_8_devices_are_the_single_device_ones(mesh_results, kernel, dtype):
    if not xla_cpu_isa_flag():
        pytest.skip("bit-for-bit equality needs XLA's --xla_cpu_max_isa, which this jaxlib lacks")
    r = mesh_results[f"{kernel}_warmup_{dtype}"]
    assert r["dtype"] == {"f64": "float64", "f32": "float32"}[dtype]
    assert r["moved"] > 0.1  # the chains moved: equal draws are not equal starting points
    assert r["steps_differ"] > 0  # each chain adapted its own step size
    assert r["diff"] == 0.0 and r["step_diff"] == 0.0
    if kernel == "hmc":
        assert r["mass_diff"] == 0.0


@pytest.mark.parametrize("kernel", ["mala", "hmc"])
def test_one_chain_per_device_gives_the_single_device_draws(mesh_results, kernel):
    r = mesh_results[f"{kernel}_one_per_device"]
    assert r["dtype"] == "float64" and r["moved"] > 0.1
    assert r["diff"] <= 1e-12


def test_the_state_is_split_over_the_8_devices(mesh_results):
    s = mesh_results["shards"]
    assert s["devices"] == 8 and s["keys"] == 8
    assert s["rows"] == [2] * 8  # 16 chains, two per device
    assert s["starts"] == list(range(0, 16, 2))


def test_chains_not_a_multiple_of_the_devices_is_refused(mesh_results):
    msg = mesh_results["errors"]["uneven"]
    assert "chains=12" in msg and "mesh" in msg and "8" in msg


def test_bad_mesh_arguments_are_refused():
    import jax

    target = langevin.targets.gaussian(2)
    mesh = device_mesh(1, "chains")
    with pytest.raises(ValueError, match="mesh.*backend='jax'"):
        langevin.sample(target, langevin.MALA(0.5), chains=2, mesh=mesh, progress=False)
    with pytest.raises(TypeError, match="mesh must be a one-axis"):
        langevin.sample(target, langevin.MALA(0.5), chains=2, backend="jax",
                        mesh=jax.devices(), progress=False)  # fmt: skip


def test_a_one_device_mesh_gives_the_draws_without_mesh():
    """In this process (one device, x64 as the run was started): ``mesh=`` of one device."""
    import numpy as np

    target = langevin.targets.gaussian(2)
    kw = dict(chains=4, warmup=50, draws=50, seed=1, progress=False, backend="jax")
    one = langevin.sample(target, langevin.MALA(0.5), **kw)
    meshed = langevin.sample(target, langevin.MALA(0.5), mesh=device_mesh(1, "c"), **kw)
    np.testing.assert_array_equal(one.draws, meshed.draws)


PROCESS_WORKER = DEVICE_MESH_SOURCE + textwrap.dedent("""
    import sys
    import numpy as np
    import jax
    pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=pid,
                               initialization_timeout=60)
    import langevin
    from langevin.backends import jax_backend as be

    mesh = device_mesh(8, "chains")
    target = langevin.targets.gaussian(3, mean=np.array([1.0, -1.0, 0.5]),
                                       cov=np.array([1.0, 0.5, 2.0]))
    res = {}
    for name, kernel in (("mala", langevin.MALA(0.5)), ("hmc", langevin.HMC(0.3, 5))):
        t = langevin.sample(target, kernel, chains=16, warmup=100, draws=100, seed=3,
                            progress=False, backend="jax", initial_position=np.zeros(3),
                            mesh=mesh)
        res[name], res[name + "_step"] = t.draws, t.step_size
    prepared = be.prepare(langevin.MALA(0.5), target, 3, np.float64, mesh=mesh)
    state = be.init(prepared, np.zeros((16, 3)), keys=be.chain_keys(0, 16))
    rows = sorted(s.index[0].start or 0 for s in state.position.addressable_shards)
    np.savez(out, rows=np.array(rows), **res)
    jax.distributed.shutdown()
""")


@needs_multiprocess_jax
def test_two_processes_give_the_single_process_draws(tmp_path, mesh_results):
    if not xla_cpu_isa_flag():
        pytest.skip("bit-for-bit equality needs XLA's --xla_cpu_max_isa, which this jaxlib lacks")
    import numpy as np

    script = tmp_path / "process_worker.py"
    script.write_text(PROCESS_WORKER)
    port = free_port()
    outs = [tmp_path / f"p{i}.npz" for i in range(2)]
    workers = [[sys.executable, str(script), str(i), str(port), str(outs[i])] for i in range(2)]
    run_processes(workers, _env(4), timeout=300)
    # the single-process, single-device run (the 8-device worker's run without mesh= on
    # the same problem, with the same CPU code; see the module's doc)
    ref = np.load(mesh_results["reference"])
    got = [np.load(f) for f in outs]
    # each process holds half the chains: blocks of 2 chains on its 4 devices
    assert got[0]["rows"].tolist() == [0, 2, 4, 6]
    assert got[1]["rows"].tolist() == [8, 10, 12, 14]
    for name in ("mala", "hmc"):
        assert np.ptp(ref[name][:, -1]) > 0.1  # the chains moved apart
        for g in got:  # every process has the whole trace, bit for bit the reference
            np.testing.assert_array_equal(g[name + "_step"], ref[name + "_step"])
            np.testing.assert_array_equal(g[name], ref[name])
