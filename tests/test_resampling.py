"""Resampling schemes: unbiased offspring, the floor/ceil property, variance ordering, equal
weights, zero weights, SSP against an independent transcription, and backend agreement.

Statistical tests use R independent calls with fixed seeds. Each scheme's unbiasedness test
is a max-|z| test over the N particles with a Bonferroni level, so that the whole test has a
false-alarm probability of at most ``SUITE_FALSE_ALARM / SUITE_Z_TESTS`` (the suite's
budget for one z-test, tests/stats_helpers.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from langevin.smc import SCHEMES, resample, resampling, uniforms_needed
from langevin.smc._compile import twin
from tests.stats_helpers import SUITE_FALSE_ALARM, SUITE_Z_TESTS

R = 20_000  # resampling calls per scheme
N = 16
#: per-particle two-sided level of a max-|z| test over N particles within one budget unit
Z_CRIT_N = float(norm.isf(SUITE_FALSE_ALARM / SUITE_Z_TESTS / (2 * N)))
#: one-sided level for a single comparison
Z_CRIT_1 = float(norm.isf(SUITE_FALSE_ALARM / SUITE_Z_TESTS))


def _uneven_weights():
    """Uneven weights: a zero, tiny ones, a dominant one, none with N·W a whole number."""
    rng = np.random.default_rng(42)
    w = rng.gamma(0.7, size=N)
    w[3] = 0.0
    w[11] = 4.0 * w.sum() / N  # N·W ≈ 3.x
    w[7] = 0.0
    w *= (1.0 - 0.02 / N) / w.sum()
    w[7] = 0.02 / N  # a tiny weight: N·W = 0.02, about 400 offspring over R calls
    return w


W = _uneven_weights()


@pytest.fixture(scope="module")
def counts():
    """``{scheme: (R, N) offspring counts}`` for the weights ``W``, fresh uniforms per call."""
    out = {}
    for i, scheme in enumerate(SCHEMES):
        fn = twin(SCHEMES[scheme], "numba")
        u = np.random.default_rng(100 + i).random((R, uniforms_needed(scheme, N)))
        anc = np.empty((R, N), dtype=np.int64)
        for r in range(R):
            anc[r] = fn(W, u[r])
        flat = anc + N * np.arange(R)[:, None]
        out[scheme] = np.bincount(flat.ravel(), minlength=R * N).reshape(R, N)
    return out


# -- unbiasedness and the floor/ceil property ------------------------------------------------
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_offspring_counts_unbiased(scheme, counts):
    """E[O_n] = N W_n for every particle: max-|z| over particles, Bonferroni level."""
    c = counts[scheme]
    assert np.all(c.sum(axis=1) == N)
    expected = N * W
    mean = c.mean(axis=0)
    if scheme == "multinomial":
        sd = np.sqrt(N * W * (1 - W))  # exact: O ~ Multinomial(N, W)
    else:
        sd = c.std(axis=0, ddof=1)
    random = sd > 0
    # a particle whose count never varies must have exactly its expected count
    np.testing.assert_allclose(mean[~random], expected[~random], rtol=0, atol=1e-12)
    z = (mean[random] - expected[random]) / (sd[random] / np.sqrt(R))
    assert np.max(np.abs(z)) < Z_CRIT_N, (scheme, np.round(z, 2))
    # a particle of weight zero never has offspring
    assert np.all(c[:, 3] == 0)


@pytest.mark.parametrize("scheme", ["systematic", "ssp"])
def test_counts_are_floor_or_ceil(scheme, counts):
    c = counts[scheme]
    scaled = N * W
    assert np.all(c >= np.floor(scaled)) and np.all(c <= np.ceil(scaled))


def test_residual_keeps_the_whole_part(counts):
    assert np.all(counts["residual"] >= np.floor(N * W))


# -- variance ordering -------------------------------------------------------------------------
def _total_squared_error(c):
    """Per call Σ_n (O_n − N W_n)²: its mean is Σ_n Var(O_n) exactly (the mean is known)."""
    return np.sum((c - N * W) ** 2, axis=1)


def test_multinomial_total_variance_is_exact(counts):
    """Sanity check of the variance test itself: multinomial's Σ Var(O_n) = N(1 − Σ W²)."""
    q = _total_squared_error(counts["multinomial"])
    exact = N * (1 - np.sum(W**2))
    z = (q.mean() - exact) / (q.std(ddof=1) / np.sqrt(R))
    assert abs(z) < Z_CRIT_1


@pytest.mark.parametrize("scheme", ["stratified", "systematic", "residual", "ssp"])
def test_no_noisier_than_multinomial(scheme, counts):
    """Σ_n Var(O_n) is significantly below multinomial's exact N(1 − Σ W²), and no particle's
    count variance exceeds multinomial's N W_n (1 − W_n) beyond Monte Carlo error."""
    c = counts[scheme]
    q = _total_squared_error(c)
    multinomial_total = N * (1 - np.sum(W**2))
    z = (multinomial_total - q.mean()) / (q.std(ddof=1) / np.sqrt(R))
    assert z > Z_CRIT_1, (scheme, q.mean(), multinomial_total)
    sq = (c - N * W) ** 2
    per_particle = sq.mean(axis=0)
    se = sq.std(axis=0, ddof=1) / np.sqrt(R)
    bound = N * W * (1 - W)
    assert np.all(per_particle <= bound + Z_CRIT_N * se + 1e-12), (scheme, per_particle, bound)


# -- deterministic properties ------------------------------------------------------------------
@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s != "multinomial"])
@pytest.mark.parametrize("n", [8, 64, 10, 333])
def test_equal_weights_give_each_index_once(scheme, n):
    """With equal weights every scheme but multinomial keeps each particle exactly once.

    Residual needs ``n · (1/n) == 1`` in floating point: true for powers of 2, not always
    otherwise (ALGORITHMS.md §7b), so it is checked on n = 8, 64 only.
    """
    if scheme == "residual" and n & (n - 1):
        pytest.skip("residual needs n·(1/n) == 1 exactly (n a power of 2)")
    rng = np.random.default_rng(n)
    fn = twin(SCHEMES[scheme], "numba")
    w = np.full(n, 1.0 / n)
    for _ in range(50):
        anc = fn(w, rng.random(uniforms_needed(scheme, n)))
        np.testing.assert_array_equal(np.sort(anc), np.arange(n))
        if scheme == "systematic":
            np.testing.assert_array_equal(anc, np.arange(n))


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_zero_weights_are_never_chosen(scheme):
    """Half-open intervals of the inverse CDF: a zero weight is never selected, even at the
    ends and for uniforms at the edges of [0, 1)."""
    n = 9
    w = np.array([0.0, 0.2, 0.0, 0.0, 0.3, 0.1, 0.0, 0.4, 0.0])
    rng = np.random.default_rng(1)
    k = uniforms_needed(scheme, n)
    edges = [np.zeros(k), np.full(k, np.nextafter(1.0, 0.0))]
    for u in [*edges, *(rng.random(k) for _ in range(300))]:
        for backend in ("numba", "jax"):
            anc = resample(scheme, w, u, backend=backend)
            assert np.all(w[anc] > 0), (scheme, backend, anc)
            assert anc.shape == (n,) and np.all(np.diff(anc) >= 0)


def test_single_particle():
    for scheme in SCHEMES:
        u = np.random.default_rng(0).random(uniforms_needed(scheme, 1))
        for backend in ("numba", "jax", "numpy"):
            np.testing.assert_array_equal(resample(scheme, [2.5], u, backend=backend), [0])


def _inverse_cdf_reference(w, points):
    """``min{j : C_j > s}`` by binary search, the top going to the last positive weight."""
    cdf = np.cumsum(w)
    idx = np.searchsorted(cdf, points, side="right")
    return np.minimum(idx, np.searchsorted(cdf, cdf[-1], side="left"))


def test_schemes_match_their_definition():
    """Each inverse-CDF scheme against a direct NumPy transcription of its construction
    (module docstring; ALGORITHMS.md §7b), with binary search instead of the merge pass."""
    rng = np.random.default_rng(17)
    for n in (1, 7, 100):
        for _ in range(20):
            w = rng.gamma(0.5, size=n)
            w /= w.sum()
            u = {s: rng.random(uniforms_needed(s, n)) for s in SCHEMES}
            z = np.cumsum(-np.log1p(-u["multinomial"]))
            expected = {
                "multinomial": _inverse_cdf_reference(w, z[:n] / z[n]),
                "stratified": _inverse_cdf_reference(w, (np.arange(n) + u["stratified"]) / n),
                "systematic": _inverse_cdf_reference(w, (np.arange(n) + u["systematic"][0]) / n),
            }
            for scheme, anc in expected.items():
                np.testing.assert_array_equal(resample(scheme, w, u[scheme]), anc, err_msg=scheme)
            # residual: ⌊N W⌋ copies plus R multinomial draws on the residuals (R + 1 uniforms)
            floors = np.floor(n * w)
            rest = n - int(floors.sum())
            zr = np.cumsum(-np.log1p(-u["residual"]))
            frac = n * w - floors
            drawn = _inverse_cdf_reference(frac, zr[:rest] / zr[rest] * np.cumsum(frac)[-1])
            counts = floors.astype(int) + np.bincount(drawn, minlength=n)
            np.testing.assert_array_equal(
                resample("residual", w, u["residual"]), np.repeat(np.arange(n), counts)
            )


def _ssp_reference(w, u):
    """SSP by the pairwise description of Gerber, Chopin & Whiteley (2019), §4, written on the
    scaled weights J = N W directly (not on fractional parts), as plain Python: the pair
    (n, m), n rounded up by δ = min(⌈J_n⌉ − J_n, J_m − ⌊J_m⌋) with probability
    ε / (δ + ε), ε = min(J_n − ⌊J_n⌋, ⌈J_m⌉ − J_m), else down by ε; whichever becomes whole
    is final and the other meets the next particle."""
    import math

    n_part = len(w)
    J = [n_part * x for x in w]
    n, m = 0, 1
    k = 0
    while m < n_part:
        d_up = min(math.ceil(J[n]) - J[n], J[m] - math.floor(J[m]))
        d_down = min(J[n] - math.floor(J[n]), math.ceil(J[m]) - J[m])
        p_up = d_down / (d_up + d_down) if d_up + d_down > 0 else 0.0
        if u[k] < p_up:
            J[n], J[m] = J[n] + d_up, J[m] - d_up
        else:
            J[n], J[m] = J[n] - d_down, J[m] + d_down
        k += 1
        if abs(J[n] - round(J[n])) < 1e-9:  # n is whole: final
            n, m = m, m + 1
        else:
            m += 1
    total = [round(x) for x in J]
    total[n] += n_part - sum(total)  # round-off drift goes to the last open particle
    return np.repeat(np.arange(n_part), total)


def test_ssp_matches_independent_transcription():
    rng = np.random.default_rng(7)
    for n in (2, 3, 10, 57):
        for _ in range(100):
            w = rng.gamma(0.5, size=n)
            w /= w.sum()
            u = rng.random(n - 1)
            np.testing.assert_array_equal(resample("ssp", w, u), _ssp_reference(w, u))


# -- backends ----------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_backends_give_identical_offspring(scheme):
    rng = np.random.default_rng(3)
    for n in (5, 300):
        for trial in range(5):
            w = rng.gamma(0.5, size=n)
            w[rng.integers(n)] = 0.0
            if trial == 0:
                w[0] = 50 * w.sum()  # one dominant particle
            u = rng.random(uniforms_needed(scheme, n))
            out = [resample(scheme, w, u, backend=b) for b in ("numba", "jax", "numpy")]
            np.testing.assert_array_equal(out[0], out[1])
            np.testing.assert_array_equal(out[0], out[2])
            with np.errstate(divide="ignore"):
                log_w = np.log(w)
            log_out = resample(scheme, log_w, u, log=True)
            np.testing.assert_array_equal(out[0], log_out)


# -- API ---------------------------------------------------------------------------------------
def test_uniforms_needed():
    assert [uniforms_needed(s, 10) for s in SCHEMES] == [11, 10, 1, 11, 9]
    assert uniforms_needed("ssp", 1) == 0
    with pytest.raises(ValueError, match="scheme"):
        uniforms_needed("bogus", 3)
    with pytest.raises(ValueError, match="n must be"):
        uniforms_needed("systematic", 0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(scheme="bogus"), "scheme"),
        (dict(uniforms=np.zeros(3)), "needs 1 uniforms"),
        (dict(uniforms=np.array([1.0])), r"\[0, 1\)"),
        (dict(weights=np.array([0.5, -0.1, 0.6])), "non-negative"),
        (dict(weights=np.array([0.5, np.nan, 0.6])), "finite"),
        (dict(weights=np.zeros(3)), "positive sum"),
        (dict(weights=np.full(3, -np.inf), log=True), "-inf"),
        (dict(weights=np.ones((2, 2))), "1-D"),
        (dict(backend="torch"), "backend"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(scheme="systematic", weights=np.array([0.2, 0.3, 0.5]), uniforms=np.array([0.3]))
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        resample(args.pop("scheme"), args.pop("weights"), args.pop("uniforms"), **args)


def test_counts_to_indices_and_helpers():
    counts = np.array([2, 0, 1, 0, 2])
    for backend in ("numba", "jax", "numpy"):
        fn = twin(resampling.counts_to_indices, backend)
        np.testing.assert_array_equal(np.asarray(fn(counts)), [0, 0, 2, 4, 4])
    lw = np.log(np.array([0.1, 0.2, 0.7]))
    ess = twin(resampling.ess, "numba")(lw)
    assert abs(ess - 1 / np.sum(np.array([0.1, 0.2, 0.7]) ** 2)) < 1e-12
    lse = twin(resampling.log_sum_exp, "numba")
    assert lse(np.full(3, -np.inf)) == -np.inf
    assert abs(lse(np.array([1000.0, 1000.0])) - (1000 + np.log(2))) < 1e-12


# -- the population step -----------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["systematic", "ssp"])
def test_population_step_resamples_only_below_threshold(scheme, x64):
    rng = np.random.default_rng(11)
    n = 40
    steps = {b: resampling.population_step(scheme, b) for b in ("numba", "jax", "numpy")}
    seen = set()
    for spread in (0.1, 3.0):  # even weights (ESS near N) and uneven ones (ESS small)
        lw = spread * rng.standard_normal(n)
        u = rng.random(uniforms_needed(scheme, n))
        w = np.exp(lw - lw.max())
        w /= w.sum()
        ess = 1 / np.sum(w**2)
        out = {b: [np.asarray(v) for v in f(lw, u, 0.5)] for b, f in steps.items()}
        for b in ("jax", "numpy"):
            np.testing.assert_array_equal(out[b][0], out["numba"][0])
            np.testing.assert_allclose(out[b][1], out["numba"][1], rtol=0, atol=1e-12)
            assert abs(out[b][2] - ess) < 1e-9 * n
        anc, new_lw, _, done = out["numba"]
        assert bool(done) == (ess < 0.5 * n)
        seen.add(bool(done))
        if done:
            np.testing.assert_array_equal(anc, resample(scheme, w, u))
            assert np.all(new_lw == 0)
        else:
            np.testing.assert_array_equal(anc, np.arange(n))
            np.testing.assert_array_equal(new_lw, lw)
    assert seen == {True, False}


def test_reweight_increment_is_log_of_weighted_mean(x64):
    rng = np.random.default_rng(5)
    lw, log_g = rng.standard_normal(30), rng.standard_normal(30)
    w = np.exp(lw) / np.exp(lw).sum()
    for backend in ("numba", "jax"):
        new, inc, ess = twin(resampling.reweight, backend, jit=True)(lw, log_g)
        np.testing.assert_allclose(np.asarray(new), lw + log_g, rtol=1e-15)
        assert abs(float(inc) - np.log(np.sum(w * np.exp(log_g)))) < 1e-12
        v = np.exp(lw + log_g) / np.exp(lw + log_g).sum()
        assert abs(float(ess) - 1 / np.sum(v**2)) < 1e-10
