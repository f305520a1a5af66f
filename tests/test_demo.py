"""The README's main job, `python -m langevin.demo`, runs and reports what it promises.

CI runs this on Python 3.11 (ArviZ 0.x), 3.12/3.13 (ArviZ 1.x) and the lowest versions."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_runs_and_writes_the_plot(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, "-m", "langevin.demo", "--no-progress", "--warmup", "1000",
         "--draws", "10000", "--out", "trace.png"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "exact mean" in out and "r_hat" in out
    # every coefficient's row, under ArviZ 0.x and 1.x alike (the exit code says |z| <= 4)
    rows = [line.split()[0] for line in out.splitlines() if line.startswith(("beta[", "sigma"))]
    assert rows == ["beta[0]", "beta[1]", "beta[2]", "beta[3]", "sigma"], out[-3000:]
    assert "W2 = " in out and "noise floor" in out
    assert (tmp_path / "trace.png").stat().st_size > 10_000
