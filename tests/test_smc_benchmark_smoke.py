"""The SMC peer benchmark (``benchmarks/smc_peers.py``): its references and a tiny end-to-end run.

The benchmark's numbers are only as good as its reference evidences and its split of each
posterior into prior and likelihood, so those are checked against independent computations
(SciPy's densities, a dense-covariance quadrature). The tiny run checks that every sampler
runs, that the reports are written with finite numbers, and that the benchmark hands both
langevin backends the same settings (the same seed must give the same run on both). Its
timings and accuracies mean nothing at this size.
"""

from __future__ import annotations

import csv
import math

import jax
import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

from benchmarks import smc_peers


@pytest.fixture(scope="module", autouse=True)
def _float64():
    """The benchmark runs in float64 (its main() switches it on); so do its pieces here,
    module-scoped fixtures included."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def ark():
    return smc_peers.ark_problem()


@pytest.fixture(scope="module")
def logistic():
    return smc_peers.logistic_problem()


def _points(problem, centre, rng, n=5):
    """Points near ``centre`` (prior draws shrunk toward it) and prior draws themselves."""
    draws = problem.sample_prior(rng, n)
    return np.vstack([centre + 0.01 * draws, draws])


def test_ark_densities_keep_their_constants(ark):
    """Prior and likelihood, every form, equal SciPy's normalised densities (a dropped
    constant would shift log Z without changing the posterior, so the split check in the
    script cannot see it)."""
    X, y = ark.data
    p = X.shape[1]
    near_mode = np.append(np.full(ark.dim - 1, 0.1), -1.9)  # σ ≈ 0.15, the posterior's
    for z in _points(ark, near_mode, np.random.default_rng(1)):
        lik = stats.norm.logpdf(y, X @ z[:p], math.exp(z[p])).sum()
        prior = (stats.norm.logpdf(z[:p], 0.0, smc_peers.COEF_SD).sum()
                 + stats.halfcauchy.logpdf(math.exp(z[p]), scale=smc_peers.SIGMA_SCALE)
                 + z[p])  # fmt: skip
        t_lik, t_prior = ark.tempered.likelihood, ark.tempered.prior
        assert t_lik.numba_value_and_grad(z, t_lik.numba_data)[0] == pytest.approx(lik, 1e-12)
        assert t_prior.numba_value_and_grad(z, t_prior.numba_data)[0] == pytest.approx(prior, 1e-12)
        assert float(ark.jax_loglik(z)) == pytest.approx(lik, 1e-12)
        assert ark.np_loglik(z[None])[0] == pytest.approx(lik, 1e-12)


def test_logistic_likelihood_keeps_its_constants(logistic):
    X, y = logistic.data
    t_lik = logistic.tempered.likelihood
    for beta in _points(logistic, np.zeros(logistic.dim), np.random.default_rng(2)):
        exact = stats.bernoulli.logpmf(y, special.expit(X @ beta)).sum()
        assert t_lik.numba_value_and_grad(beta, t_lik.numba_data)[0] == pytest.approx(exact, 1e-10)
        assert float(logistic.jax_loglik(beta)) == pytest.approx(exact, 1e-10)
        assert logistic.np_loglik(beta[None])[0] == pytest.approx(exact, 1e-10)


def test_ark_reference_matches_dense_computation(ark):
    """The Woodbury/eigen quadrature of the script against the dense multivariate normal
    ``N(y; 0, σ² I + 10² X Xᵀ)`` (Cholesky of the full n × n covariance) on a fine grid of
    log σ holding all the mass (the trapezoid rule is spectrally accurate for such a smooth,
    decaying integrand)."""
    log_z, rel_err, _ = smc_peers.ark_reference(ark)
    assert rel_err < 1e-8
    X, y = ark.data
    n = X.shape[0]
    gram = smc_peers.COEF_SD**2 * X @ X.T
    s = np.linspace(-2.6, -1.2, 141)  # spacing 0.01, a sixth of the posterior sd of log σ
    values = np.empty(s.size)
    for i, si in enumerate(s):
        chol = np.linalg.cholesky(math.exp(2 * si) * np.eye(n) + gram)
        r = np.linalg.solve(chol, y)
        log_marginal = -0.5 * (n * math.log(2 * math.pi) + r @ r) - np.sum(np.log(np.diag(chol)))
        log_prior = stats.halfcauchy.logpdf(math.exp(si), scale=smc_peers.SIGMA_SCALE) + si
        values[i] = log_marginal + log_prior
    assert max(values[0], values[-1]) < values.max() - 30  # the grid holds the mass
    dense = values.max() + math.log(integrate.trapezoid(np.exp(values - values.max()), s))
    assert log_z == pytest.approx(dense, abs=1e-7)


def test_logistic_reference_agrees_with_a_second_proposal(logistic):
    """The importance-sampling reference does not depend on its proposal: a Gaussian proposal
    at the mode found by SciPy's optimiser, with 1.3 × the inverse Hessian as covariance
    (another family, scale and seed), gives the same log Z within the two standard errors
    (z-test at 4 standard deviations, fixed seeds)."""
    log_z, se, how = smc_peers.logistic_reference(logistic, 20_000, seed=3)
    assert "Pareto" in how and se < 0.05
    X, y = logistic.data
    d = logistic.dim

    def neg_log_post(b):
        eta = X @ b
        value = -np.sum(y * eta - np.logaddexp(0.0, eta)) + 0.5 * b @ b
        return value, -(X.T @ (y - special.expit(eta))) + b

    mode = optimize.minimize(neg_log_post, np.zeros(d), jac=True, method="BFGS").x
    prob = special.expit(X @ mode)
    hessian = X.T @ (X * (prob * (1 - prob))[:, None]) + np.eye(d)
    proposal = stats.multivariate_normal(mode, 1.3 * np.linalg.inv(hessian))
    x = proposal.rvs(size=20_000, random_state=np.random.default_rng(4))
    lw = (stats.multivariate_normal(np.zeros(d)).logpdf(x) + logistic.np_loglik(x)
          - proposal.logpdf(x))  # fmt: skip
    w = np.exp(lw - lw.max())
    log_z2 = lw.max() + math.log(w.mean())
    se2 = float(np.std(w, ddof=1) / (math.sqrt(w.size) * w.mean()))
    assert se2 < 0.05, "the second proposal is too poor to check anything"
    assert abs(log_z - log_z2) < 4 * math.hypot(se, se2), (log_z, se, log_z2, se2)


def _rows(path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_smc_peers_tiny(tmp_path):
    smc_peers.main(["--tiny", "--problems", "logistic", "--out", str(tmp_path)])
    rows = _rows(tmp_path / "smc_peers_tiny.csv")
    md = (tmp_path / "smc_peers_tiny.md").read_text()
    runs = [r for r in rows if r["run"] != "summary"]
    summaries = {r["method"]: r for r in rows if r["run"] == "summary"}
    expected = {m for m in smc_peers.METHODS
                if smc_peers._has_particles() or "particles" not in m}  # fmt: skip
    assert set(summaries) == expected
    for r in runs:
        assert math.isfinite(float(r["log_z"])) and float(r["seconds"]) > 0, r
        assert int(r["n_stages"]) >= 1 and 0 < float(r["acceptance"]) <= 1, r
    for r in summaries.values():
        for column in ("log_z_mean", "log_z_var", "seconds_mean", "var_x_time",
                       "ratio_to_best_peer", "log_z_reference"):  # fmt: skip
            assert math.isfinite(float(r[column])), (column, r)
    # both langevin backends got the same settings: the same seed gives the same run
    by_method = {m: [float(r["log_z"]) for r in runs if r["method"] == m] for m in summaries}
    np.testing.assert_allclose(by_method["langevin numba"], by_method["langevin jax"],
                               rtol=0, atol=1e-6)  # fmt: skip
    assert "Reference log Z" in md and "ours / best peer" in md
    assert "Where langevin's time goes" in md and "exponent search" in md
