"""Monte Carlo z-tests with a suite-wide false-alarm budget (see STYLE: testing statistical code).

Each statistical assertion compares an estimate with the truth in units of its Monte Carlo
standard error, ``z = (estimate − truth) / MCSE`` with ``MCSE = sd(f) / sqrt(ESS(f))`` from
ArviZ's rank-normalised ESS estimator across chains. The whole default suite makes at most
``SUITE_Z_TESTS`` such assertions and is allowed a false-alarm probability of
``SUITE_FALSE_ALARM`` in total, so each two-sided test uses the Bonferroni level
``SUITE_FALSE_ALARM / SUITE_Z_TESTS`` (|z| < 4.56 for the numbers below).
"""

from __future__ import annotations

import math
import warnings

import arviz as az
import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t

SUITE_FALSE_ALARM = 1e-3
SUITE_Z_TESTS = 200
Z_CRIT = float(norm.isf(SUITE_FALSE_ALARM / SUITE_Z_TESTS / 2))


def mcse_mean(values: np.ndarray) -> tuple[float, float, float]:
    """``(mean, MCSE, ESS)`` of ``values`` shaped ``(chains, draws)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ess = float(az.ess(np.asarray(values, dtype=float), method="mean"))
    sd = float(np.std(values, ddof=1))
    return float(np.mean(values)), sd / np.sqrt(ess), ess


def z_score(values: np.ndarray, truth: float, truth_se: float = 0.0) -> float:
    """z of the mean of ``values`` (chains, draws) against ``truth`` (± its own s.e.)."""
    mean, se, _ = mcse_mean(values)
    return (mean - truth) / np.sqrt(se**2 + truth_se**2)


def moment_z_scores(draws: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> dict[str, float]:
    """z-scores of every mean, variance and cross-moment of ``draws`` (chains, draws, dim).

    With the exact mean ``m`` known, the centred products ``(x_i − m_i)(x_j − m_j)`` have
    expectation ``Σ_ij`` exactly, so no plug-in mean enters the test.
    """
    out = {}
    r = draws - mean
    d = draws.shape[-1]
    for i in range(d):
        out[f"mean[{i}]"] = z_score(draws[..., i], mean[i])
        for j in range(i, d):
            out[f"cov[{i},{j}]"] = z_score(r[..., i] * r[..., j], cov[i, j])
    return out


def between_chain_z(per_chain: np.ndarray, truth: float) -> float:
    """The z-equivalent of Student's t of the mean of independent per-chain means.

    ``t = (mean − truth) / (sd/√N)`` has ``N − 1`` degrees of freedom when the chain means are
    iid normal; it is mapped to the normal quantile of the same two-sided p-value, so the
    suite's Bonferroni threshold ``Z_CRIT`` applies unchanged. Valid for any autocorrelation
    within a chain: only the chains' independence is used (independent exact starts and
    independent noise). Means of a nearly discrete quantity (a frozen Q²: mostly 0) are far
    from normal, so the level is then approximate (the central limit over N chains)."""
    per_chain = np.asarray(per_chain, dtype=float)
    n = per_chain.size
    t = (per_chain.mean() - truth) / (per_chain.std(ddof=1) / np.sqrt(n))
    return float(np.sign(t) * norm.isf(student_t.sf(abs(t), n - 1)))


def assert_z_ok(zs: dict[str, float], z_crit: float = Z_CRIT) -> None:
    bad = {k: round(v, 2) for k, v in zs.items() if not abs(v) < z_crit}
    everything = {k: round(v, 2) for k, v in zs.items()}
    assert not bad, f"|z| >= {z_crit:.2f} for {bad} (all: {everything})"


def stein_z(grads: np.ndarray, centred: np.ndarray) -> np.ndarray:
    """z-scores of the Stein identities E[∇log p] = 0 and E[∇log p (x − m)ᵀ] = −I from
    (near-)independent draws: ``grads`` the gradients at the draws, ``centred`` the draws
    minus the mean (both ``(n, dim)``); ``dim + dim²`` values."""
    n, dim = grads.shape
    first = grads.mean(0) / (grads.std(0, ddof=1) / math.sqrt(n))
    prod = grads[:, :, None] * centred[:, None, :]
    second = (prod.mean(0) + np.eye(dim)) / (prod.std(0, ddof=1) / math.sqrt(n))
    return np.concatenate([first, second.ravel()])
