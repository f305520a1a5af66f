"""The SG-MCMC benchmarks run end to end in its tiny configuration (a smoke test of the
script, not of the samplers: tiny timings mean nothing)."""

from __future__ import annotations

import csv
import math

import pytest

from benchmarks import sgmcmc_blackjax, sgmcmc_profile


@pytest.mark.slow
def test_sgmcmc_blackjax_tiny(tmp_path):
    sgmcmc_blackjax.main(["--tiny", "--out", str(tmp_path)])
    with (tmp_path / "sgmcmc_blackjax_tiny.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    medians = {r["name"]: float(r["seconds"]) for r in rows if r["run"] == "median"}
    assert {
        "numba sgld",
        "jax sgld engine",
        "blackjax sgld",
        "blackjax sgld floyd",
        "blackjax sghmc",
        "blackjax sghmc 100x10",
        "jax sgld engine +noise",
    } <= set(medians)
    assert all(math.isfinite(v) and v > 0 for v in medians.values())
    scaling = [float(r["seconds"]) for r in rows if r["name"].startswith("scaling")]
    assert scaling and all(v > 0 for v in scaling)
    text = (tmp_path / "sgmcmc_blackjax_tiny.md").read_text()
    assert "| jax sgld engine / blackjax sgld floyd |" in text
    assert "| numba sghmc engine / blackjax sghmc |" in text


@pytest.mark.slow
def test_sgmcmc_profile_tiny(tmp_path):
    """The profile runs (its JAX block draws are checked equal inside) and reads its tables."""
    sgmcmc_profile.main(["--tiny", "--out", str(tmp_path)])
    text = (tmp_path / "sgmcmc_profile_tiny.md").read_text()
    for row in ("| chunk draw now: sort, repeated rows only (int32 bounds) |",
                "| BlackJAX sgld step, indices and keys given |",
                "| gather of the batch's rows alone, n = 10⁵ |"):  # fmt: skip
        assert row in text
    assert "0.7× leaves" in text
