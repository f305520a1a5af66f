"""Federated clients on JAX devices and across processes (subprocesses: the device count
and ``jax.distributed`` must be set before JAX starts).

* 8 fake CPU devices (``--xla_force_host_platform_device_count=8``): clients on a
  one-axis mesh, each device holding only its client's shard; the chain equals the
  single-device run (1e-12, float64).
* 2 processes on 127.0.0.1 (``jax.distributed.initialize``, gloo CPU collectives), 4 fake
  devices each, each process holding only its own 4 clients' shards: the chain equals the
  single-process Numba run on the same seed (1e-12).
"""

from __future__ import annotations

import json
import os
import sys
import textwrap

import numpy as np
import pytest

from langevin.federated import FALD, FSGLD, partition_sorted, sample_federated, split
from langevin.targets.data_targets import linear_regression_data
from tests.process_helpers import (
    DEVICE_MESH_SOURCE,
    device_mesh,
    free_port,
    needs_multiprocess_jax,
    run_processes,
)

ALGORITHMS = {
    "fald": "FALD(1e-3, local_steps=3, batch_size=5, correlation=0.5, participation=3)",
    "fsgld": "FSGLD(1e-3, local_steps=3, batch_size=5)",
}

PROBLEM = DEVICE_MESH_SOURCE + textwrap.dedent("""
    import numpy as np
    from langevin.federated import FALD, FSGLD, partition_sorted, sample_federated, split
    from langevin.targets.data_targets import linear_regression_data
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    y = X @ np.array([1.0, -1.0]) + rng.normal(size=400)
    target = linear_regression_data(X, y)
    clients = split(target, partition_sorted(X[:, 0], 8, imbalance=0.5))
""")


def _problem():
    scope: dict = {}
    exec(PROBLEM, scope)
    return scope["target"], scope["clients"]


def _env(devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_ENABLE_X64"] = "1"
    env["JAX_PLATFORMS"] = "cpu"
    return env


MESH_WORKER = PROBLEM + textwrap.dedent("""
    import json, sys
    import jax
    assert len(jax.devices()) == 8
    mesh = device_mesh(8, "clients")
    out = {}
    for name, alg in ALGS.items():
        one = sample_federated(target, eval(alg), clients, rounds=200, seed=5, progress=False,
                               backend="jax")
        many = sample_federated(target, eval(alg), clients, rounds=200, seed=5,
                                progress=False, backend="jax", mesh=mesh)
        out[name] = {"diff": float(np.max(np.abs(one.draws - many.draws))),
                     "placement": many.communication["placement"]}
    json.dump(out, open(sys.argv[1], "w"))
""")


def test_clients_on_an_8_device_mesh_give_the_single_device_chain(tmp_path):
    script = tmp_path / "mesh_worker.py"
    script.write_text(f"ALGS = {ALGORITHMS!r}\n" + MESH_WORKER)
    result = tmp_path / "mesh.json"
    run_processes([[sys.executable, str(script), str(result)]], _env(8), timeout=240)
    out = json.loads(result.read_text())
    for name in ALGORITHMS:
        assert out[name]["diff"] < 1e-12, name
        placement = out[name]["placement"]
        assert len(placement) == 8  # one client per device, each device a different client
        assert sorted(c for cs in placement.values() for c in cs) == list(range(8))
        assert all(len(cs) == 1 for cs in placement.values())


PROCESS_WORKER = PROBLEM + textwrap.dedent("""
    import sys
    import jax
    pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=pid,
                               initialization_timeout=60)
    from langevin.federated.driver import local_clients
    mesh = device_mesh(8, "clients")
    mine = local_clients(mesh, clients.n_clients)
    assert len(mine) == 4
    local = clients.subset(mine)   # this process never holds the other shards
    draws = {}
    for name, alg in ALGS.items():
        trace = sample_federated(target, eval(alg), local, rounds=200, seed=5,
                                 progress=False, backend="jax", mesh=mesh)
        draws[name] = trace.draws
    np.savez(out, mine=np.array(mine), **draws)
    jax.distributed.shutdown()
""")


@needs_multiprocess_jax
def test_two_processes_give_the_single_process_chain(tmp_path):
    script = tmp_path / "process_worker.py"
    script.write_text(f"ALGS = {ALGORITHMS!r}\n" + PROCESS_WORKER)
    port = free_port()
    outs = [tmp_path / f"p{i}.npz" for i in range(2)]
    workers = [[sys.executable, str(script), str(i), str(port), str(outs[i])] for i in range(2)]
    run_processes(workers, _env(4), timeout=240)
    target, clients = _problem()
    held = []
    for f in outs:
        got = np.load(f)
        held.extend(got["mine"].tolist())
        for name, alg in ALGORITHMS.items():
            ref = sample_federated(target, eval(alg), clients, rounds=200, seed=5, progress=False)
            np.testing.assert_allclose(got[name], ref.draws, rtol=0, atol=1e-12)
    assert sorted(held) == list(range(8))


def test_local_clients_refuses_an_uneven_split():

    from langevin.federated.driver import local_clients

    mesh = device_mesh(1, "clients")
    assert local_clients(mesh, 3) == [0, 1, 2]
    target, clients = _problem()
    with pytest.raises(ValueError, match="not held"):
        sample_federated(
            target, FALD(1e-3), clients.subset([0, 1]), rounds=2, progress=False, backend="jax"
        )
    assert FSGLD and linear_regression_data and partition_sorted and split  # re-exported
