"""The peer benchmarks run end to end in their tiny configurations, so that they do not rot.

Each script's ``main(["--tiny", "--out", DIR])`` runs in this process (JAX and the compiled
Numba loops are shared with the rest of the suite) and must write its CSV and Markdown
reports with finite numbers where numbers belong. These are smoke tests of the scripts, not
of the samplers: the timings of a tiny run mean nothing, and the samplers' correctness is
tested elsewhere. What they do check beyond "it ran": the equal-work checks of the HMC
benchmark agree (the same counted gradient evaluations per draw: n_leapfrog) and no sampler
of the ESS table failed.

The three peer benchmarks' runs are marked ``slow``: each compiles every sampler it compares
(12–19 CPU-s apiece on the 2-core machine), they test scripts rather than the package, and the
slow job runs them once per CI run, where the default suite runs on three Python setups.
"""

from __future__ import annotations

import csv
import math

import pytest

from benchmarks import ess_table, hmc_blackjax, nuts_blackjax


def _rows(path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _finite(row: dict[str, str], columns: list[str]) -> None:
    bad = {c: row[c] for c in columns if not math.isfinite(float(row[c]))}
    assert not bad, f"non-finite {bad} in {row}"


@pytest.mark.slow
def test_hmc_blackjax_tiny(tmp_path):
    hmc_blackjax.main(["--tiny", "--out", str(tmp_path)])
    rows = _rows(tmp_path / "hmc_blackjax_tiny.csv")
    md = (tmp_path / "hmc_blackjax_tiny.md").read_text()
    samplers = {"numba", "numba 1 thread", "jax", "blackjax"}
    assert {r["name"] for r in rows} == samplers | {"bare numba vg", "bare jax vg"}
    for r in rows:
        _finite(r, ["seconds", "cpu_seconds", "step_size"])
        assert float(r["seconds"]) > 0
    medians = [r for r in rows if r["run"] == "median" and r["name"] in samplers]
    assert len(medians) == len(samplers)
    for r in medians:
        _finite(r, ["acceptance_rate", "acceptance_mcse", "grads_per_draw_declared",
                    "grads_per_draw_counted"])  # fmt: skip
        assert 0.0 < float(r["acceptance_rate"]) <= 1.0
        # HMC with a cached gradient: n_leapfrog evaluations per draw, declared and counted
        assert float(r["grads_per_draw_counted"]) == float(r["n_leapfrog"])
        assert float(r["grads_per_draw_declared"]) == float(r["n_leapfrog"])
    assert "numba / blackjax" in md and "jax / blackjax" in md
    assert "counted gradient evaluations per draw equal" in md


@pytest.mark.slow
def test_nuts_blackjax_tiny(tmp_path):
    nuts_blackjax.main(["--tiny", "--out", str(tmp_path)])
    rows = _rows(tmp_path / "nuts_blackjax_tiny.csv")
    assert {(r["problem"], r["sampler"]) for r in rows} == {
        ("gaussian", s) for s in ("langevin NUTS numba", "langevin NUTS jax", "BlackJAX NUTS")
    }  # fmt: skip
    for r in rows:
        _finite(r, ["ess_bulk_min", "grads_per_draw", "ess_min_per_s", "seconds_sampling"])
        assert float(r["grads_per_draw"]) >= 1.0


@pytest.mark.slow
def test_ess_table_tiny(tmp_path):
    ess_table.main(["--tiny", "--out", str(tmp_path)])
    rows = _rows(tmp_path / "ess_table_tiny.csv")
    md = (tmp_path / "ess_table_tiny.md").read_text()
    methods = {r["method"] for r in rows}
    assert {"MALA", "HMC", "NUTS (BlackJAX)"} <= methods
    assert any(m.startswith("KL randomized_midpoint") for m in methods)
    assert any(m.startswith("KL baoab") for m in methods)
    numeric = [c for c in ess_table.COLUMNS if c not in ("posterior", "method", "backend",
                                                         "tuning")]  # fmt: skip
    for r in rows:
        assert not r["tuning"].startswith("FAILED"), r
        _finite(r, numeric)
        assert float(r["ess_bulk_min"]) > 0 and float(r["grads_sampling"]) > 0
        assert float(r["seconds_sampling"]) > 0
    assert md.count("| earnings |") == 2 * len(rows)  # the table and the costs


def test_convergence_script_is_a_thin_wrapper_of_the_installed_suite(tmp_path):
    """``python -m benchmarks.convergence --tiny --only ...`` runs the installed suite
    (:mod:`langevin.convergence.suite`, exact experiments only here: seconds) and writes its
    CSV and Markdown; the numbers are the suite's own (same rows as calling it directly)."""
    from benchmarks.convergence.__main__ import main
    from langevin.convergence.suite import TINY, run

    main(["--tiny", "--only", "bias_gaussian", "path_gaussian", "--out", str(tmp_path / "a")])
    rows = _rows(tmp_path / "a" / "convergence.csv")
    assert {r["experiment"] for r in rows} == {"bias_gaussian", "path_gaussian"}
    direct = run(TINY, tmp_path / "b", experiments=("bias_gaussian", "path_gaussian"),
                 verbose=False)  # fmt: skip
    assert [r["w2"] for r in rows] == [
        "" if r["w2"] == "" else repr(float(r["w2"])) for r in direct["rows"]
    ]
    md = (tmp_path / "a" / "convergence.md").read_text()
    assert "python -m benchmarks.convergence --tiny" in md
