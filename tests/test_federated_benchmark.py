"""The federated RAND HIE benchmark runs end to end in its smoke configuration (``--tiny``)."""

from __future__ import annotations

import csv

import pytest

from benchmarks import federated_rand_hie


@pytest.mark.slow
def test_federated_rand_hie_tiny(tmp_path):
    federated_rand_hie.main(["--tiny", "--out", str(tmp_path)])
    with (tmp_path / "federated_rand_hie_tiny.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    names = {r["algorithm"] for r in rows}
    assert {"DSGLD", "FSGLD", "FA-LD independent", "FA-LD correlated",
            "centralized SGLD"} <= names  # fmt: skip
    assert all(float(r["w2"]) > 0 for r in rows)
    text = (tmp_path / "federated_rand_hie_tiny.md").read_text()
    assert "## C. To W2" in text
    assert (tmp_path / "federated_rand_hie_tiny.png").stat().st_size > 0
