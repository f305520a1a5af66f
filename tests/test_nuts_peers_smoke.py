"""The NUTS peer benchmark (``benchmarks/nuts_peers.py``): its PyMC and NumPyro versions of
each posterior are one density (the check that guards every timing, shown to catch a wrong
model), and a tiny end-to-end run (slow) writes a complete report.

Skipped where PyMC, nutpie or NumPyro is missing (PyMC needs Python >= 3.12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymc")
pytest.importorskip("nutpie")
numpyro = pytest.importorskip("numpyro")
pytest.importorskip("blackjax")

from benchmarks import nuts_peers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_pymc_and_numpyro_gp_regr_are_one_density_and_a_wrong_one_is_caught(monkeypatch):
    """gp_regr's two versions differ by a constant (spread ≤ 1e-8) and their constrained
    parameters map onto each other; the same check stops the benchmark when the NumPyro
    version adds σ² to the diagonal instead of σ (the posteriordb quirk)."""
    problem = nuts_peers.make_problem("gp_regr")
    assert problem.params == ["alpha", "rho", "sigma"]
    assert problem.density_spread <= 1e-8
    assert sorted(problem.to_numpyro.tolist()) == list(range(problem.pymc_target.dim))
    import jax.numpy as jnp
    import numpyro.distributions as dist

    def wrong(short):
        def gp_regr(xs, y):
            rho = numpyro.sample("rho", dist.Gamma(25.0, 4.0))
            alpha = numpyro.sample("alpha", dist.HalfNormal(2.0))
            sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
            sq = (xs[:, None] - xs[None, :]) ** 2
            cov = alpha**2 * jnp.exp(-sq / (2 * rho**2)) + sigma**2 * jnp.eye(xs.shape[0])
            numpyro.sample("y", dist.MultivariateNormal(jnp.zeros(xs.shape[0]), cov), obs=y)

        data = nuts_peers.load_data(short)
        return gp_regr, (data["x"], data["y"])

    monkeypatch.setattr(nuts_peers, "numpyro_model", wrong)
    with pytest.raises(ValueError, match="differ by more than a constant"):
        nuts_peers.make_problem("gp_regr")


def test_scalars_are_named_as_posteriordb_names_them():
    post = {"beta": np.zeros((2, 3, 4)), "sigma": np.ones((2, 3))}
    names = list(nuts_peers.scalars(post))
    assert names == ["beta[1]", "beta[2]", "beta[3]", "beta[4]", "sigma"]


@pytest.mark.slow
def test_every_model_pair_is_one_density():
    """All six posteriors: PyMC − NumPyro log-density constant over random points."""
    for short in nuts_peers.POSTERIORS:
        problem = nuts_peers.make_problem(short)
        assert problem.density_spread <= 1e-8 * max(1.0, abs(problem.density_offset)), short
        assert set(problem.params) == {k.split("[")[0] for k in problem.reference}, short


@pytest.mark.slow
def test_tiny_run_writes_a_complete_report(tmp_path):
    """``--tiny`` (gp_regr, 2 chains × (50 + 50)): a row per sampler with a positive ESS
    and posterior means within 5 combined MCSE of posteriordb's reference, the ratio table
    against every goal, and the same-density table."""
    env = dict(os.environ)
    env.pop("JAX_ENABLE_X64", None)  # the script turns float64 on itself
    samplers = ["langevin numba", "langevin jax", "nutpie", "NumPyro", "BlackJAX"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.nuts_peers", "--tiny", "--out", str(tmp_path),
         "--samplers", *samplers],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    import csv

    with open(tmp_path / "nuts_peers_tiny.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["sampler"] for r in rows] == samplers
    for r in rows:
        assert r["model"] == "gp_regr"
        assert float(r["ess_bulk_min"]) > 0 and float(r["ess_tail_min"]) > 0, r
        assert float(r["grads_per_draw"]) >= 1, r
        assert float(r["max_abs_z_mean"]) < 5, r
    md = (tmp_path / "nuts_peers_tiny.md").read_text()
    expected = ("langevin numba / nutpie (bulk, ≥ 1)", "langevin numba / BlackJAX (bulk, ≥ 1.5)",
                "langevin jax / NumPyro (bulk, ≥ 1)", "| gp_regr | 3 |", "2-core CPU")  # fmt: skip
    for text in expected:
        assert text in md, text
