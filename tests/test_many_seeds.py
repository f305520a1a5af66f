"""Tolerances validated over many seeds (``slow``): the statistical checks of the default suite,
each rerun with 20 further seeds.

Every check uses the suite's Bonferroni level (``tests/stats_helpers.py``: |z| < 4.56, a
per-assertion false-alarm probability of 5e-6), so with about 20 assertions per seed even one
failure among these ~1200 assertions would point at a wrong tolerance or a biased kernel, not
at bad luck (expected false alarms: 1200 × 5e-6 ≈ 0.006).
"""

from __future__ import annotations

import pytest

import langevin
from tests.test_posteriordb_mala import check_mala_posteriordb
from tests.test_statistics import check_mala_gaussian, check_ula_variance_1d

SEEDS = range(100, 120)
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", SEEDS)
def test_mala_gaussian_many_seeds(seed):
    check_mala_gaussian(4, 0, seed=seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_ula_variance_many_seeds(seed):
    check_ula_variance_1d(0.5, seed=seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_mala_earnings_many_seeds(seed):
    check_mala_posteriordb(langevin.targets.earnings_logearn_interaction_z, 10_000, 1, seed)
