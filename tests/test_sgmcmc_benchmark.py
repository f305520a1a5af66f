"""The SG-MCMC benchmark runs end to end in its tiny configuration (a smoke test of the
script, not of the samplers: tiny timings mean nothing)."""

from __future__ import annotations

import csv
import math

import pytest

from benchmarks import sgmcmc_blackjax


@pytest.mark.slow
def test_sgmcmc_blackjax_tiny(tmp_path):
    sgmcmc_blackjax.main(["--tiny", "--out", str(tmp_path)])
    with (tmp_path / "sgmcmc_blackjax_tiny.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    medians = {r["name"]: float(r["seconds"]) for r in rows if r["run"] == "median"}
    assert {"numba sgld", "jax sgld engine", "blackjax sgld", "blackjax sghmc"} <= set(medians)
    assert all(math.isfinite(v) and v > 0 for v in medians.values())
    scaling = [float(r["seconds"]) for r in rows if r["name"].startswith("scaling")]
    assert scaling and all(v > 0 for v in scaling)
    assert "| jax sgld / blackjax sgld |" in (tmp_path / "sgmcmc_blackjax_tiny.md").read_text()
