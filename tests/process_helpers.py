"""Running worker scripts as processes in tests (fake devices, jax.distributed)."""

from __future__ import annotations

import functools
import inspect
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_processes(args: list[list[str]], env: dict, timeout: float) -> list[str]:
    """Start every command at once (the processes of one distributed job wait for each
    other), return their outputs; kill every one on a timeout or a failure."""
    procs = [subprocess.Popen(a, cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for a in args]  # fmt: skip
    outs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=timeout)
            outs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    return outs


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for jax.distributed's coordinator)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def device_mesh(n: int, axis: str):
    """A one-axis mesh of the first ``n`` devices: ``jax.make_mesh`` as users make it
    (explicit axes in recent JAX), or ``jax.sharding.Mesh`` where JAX predates it (0.4.30,
    the declared floor)."""
    import jax
    import numpy as np

    if hasattr(jax, "make_mesh"):
        return jax.make_mesh((n,), (axis,))
    return jax.sharding.Mesh(np.array(jax.devices()[:n]), (axis,))


DEVICE_MESH_SOURCE = inspect.getsource(device_mesh)  # for worker scripts run as processes


@functools.cache
def xla_cpu_isa_flag() -> str:
    """``--xla_cpu_max_isa=SSE4_2`` where this jaxlib knows the flag (an unknown XLA flag
    aborts the process), else ``""``: see tests/test_sharded_sample.py for why."""
    flag = "--xla_cpu_max_isa=SSE4_2"
    code = "import jax.numpy as jnp; jnp.zeros(1).block_until_ready()"
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120,
                           env=dict(os.environ, XLA_FLAGS=flag, JAX_PLATFORMS="cpu"))  # fmt: skip
    return flag if probe.returncode == 0 else ""


def _jax_version() -> tuple[int, ...]:
    import jax

    return tuple(int(p) for p in jax.__version__.split(".")[:3] if p.isdigit())


# jax.distributed on CPU (gloo collectives) with fake devices: on JAX 0.4.30, the declared
# floor, gloo's context never initialises (GetKeyValue times out after 30 s, with either of
# its config flags); MULTIPROCESS_JAX is the first version seen working.
MULTIPROCESS_JAX = (0, 5, 0)
needs_multiprocess_jax = pytest.mark.skipif(
    _jax_version() < MULTIPROCESS_JAX,
    reason="jax.distributed's gloo CPU collectives fail to initialise on this JAX "
    f"(works from {'.'.join(map(str, MULTIPROCESS_JAX))})",
)
