"""Running worker scripts as processes in tests (fake devices, jax.distributed)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

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
