"""Tests of langevin.diagnostics: Wasserstein distances (exact, Sinkhorn, sliced, Gaussian).

Tolerances rest on identities that hold exactly for empirical measures (sorting in 1-D,
translations, maps that are gradients of convex functions) or on proved bounds, so that
each assertion fails for a wrong formula rather than for bad luck.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize

from langevin import Trace
from langevin.diagnostics import (
    MAX_EXACT,
    SINKHORN_REG_FRACTION,
    W2Result,
    gaussian_w2,
    w2_to_reference,
    wasserstein,
)


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cov = q @ np.diag(rng.uniform(0.2, 3.0, d)) @ q.T
    return 0.5 * (cov + cov.T)


def _bures_trace_form(mean1, cov1, mean2, cov2) -> float:
    """The textbook formula, with scipy's general matrix square root (an independent path)."""
    root2 = scipy.linalg.sqrtm(cov2).real
    cross = scipy.linalg.sqrtm(root2 @ cov1 @ root2).real
    value = np.sum((mean1 - mean2) ** 2) + np.trace(cov1 + cov2 - 2 * cross)
    return math.sqrt(max(value, 0.0))


# --------------------------------------------------------------------------------------------
# gaussian_w2
# --------------------------------------------------------------------------------------------


def test_gaussian_equal_covariances_is_mean_distance():
    rng = np.random.default_rng(1)
    cov = _random_spd(rng, 4)
    m1, m2 = rng.standard_normal(4), rng.standard_normal(4)
    assert gaussian_w2(m1, cov, m2, cov) == pytest.approx(np.linalg.norm(m1 - m2), rel=1e-12)


def test_gaussian_one_dimensional_scalars():
    # cov is a variance: sd 2 and 0.5, means 1 and -0.5.
    expected = math.hypot(1.5, 1.5)
    assert gaussian_w2(1.0, 4.0, -0.5, 0.25) == pytest.approx(expected, rel=1e-14)
    assert gaussian_w2([1.0], [[4.0]], [-0.5], [[0.25]]) == pytest.approx(expected, rel=1e-14)


def test_gaussian_commuting_covariances():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.1, 5.0, 5), rng.uniform(0.1, 5.0, 5)
    m1, m2 = rng.standard_normal(5), rng.standard_normal(5)
    expected = math.sqrt(np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    assert gaussian_w2(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_gaussian_general_symmetric_and_matches_trace_formula(seed):
    rng = np.random.default_rng(seed)
    d = 5
    m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    w12 = gaussian_w2(m1, s1, m2, s2)
    assert w12 == pytest.approx(gaussian_w2(m2, s2, m1, s1), rel=1e-10)
    # Non-commuting covariances: the Procrustes evaluation must equal the trace formula.
    assert w12 == pytest.approx(_bures_trace_form(m1, s1, m2, s2), rel=1e-8)
    assert w12 > np.linalg.norm(m1 - m2)  # s1 != s2 adds a positive covariance term


def test_gaussian_identical_inputs_give_zero():
    rng = np.random.default_rng(3)
    mean, cov = rng.standard_normal(6), _random_spd(rng, 6)
    # The sum-of-squares evaluation keeps full precision here (the trace form would give
    # ~sqrt(machine eps) instead of ~machine eps).
    assert gaussian_w2(mean, cov, mean, cov) < 1e-12


def test_gaussian_singular_covariances():
    # Degenerate Gaussians on a line: W2 is the 1-D distance along it.
    assert gaussian_w2([0, 0], np.diag([1.0, 0.0]), [0, 0], np.diag([4.0, 0.0])) == pytest.approx(
        1.0, rel=1e-12
    )


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (([0, 0], np.eye(2), [0, 0, 0], np.eye(3)), ValueError, "mean2 must have the same length"),
        (([0, 0], np.eye(3), [0, 0], np.eye(2)), ValueError, r"cov1 must be a \(2, 2\)"),
        (([0, 0], 1.0, [0, 0], np.eye(2)), ValueError, "cov1 is a scalar"),
        (([0, 0], np.eye(2), [0, 0], [[1.0, 0.5], [0.0, 1.0]]), ValueError, "cov2 must be symm"),
        (([0, 0], np.diag([1.0, -0.1]), [0, 0], np.eye(2)), ValueError, "cov1 must be positive"),
        (([0, np.nan], np.eye(2), [0, 0], np.eye(2)), ValueError, "mean1 must contain only fin"),
        ((np.zeros((2, 2)), np.eye(2), [0, 0], np.eye(2)), ValueError, "mean1 must be a scalar"),
        ((["a", "b"], np.eye(2), [0, 0], np.eye(2)), TypeError, "mean1 must be an array of real"),
    ],
)
def test_gaussian_bad_inputs(args, error, match):
    with pytest.raises(error, match=match):
        gaussian_w2(*args)


# --------------------------------------------------------------------------------------------
# wasserstein: exact
# --------------------------------------------------------------------------------------------


def test_exact_one_dimensional_equals_sorted_matching():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(60)
    y = rng.exponential(size=60)
    expected = math.sqrt(np.mean((np.sort(x) - np.sort(y)) ** 2))
    assert wasserstein(x, y) == pytest.approx(expected, rel=1e-10)
    assert wasserstein(x[:, None], y[:, None]) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("p", [1.0, 3.0])
def test_exact_one_dimensional_other_p(p):
    # Sorting is optimal for every convex cost |x - y|^p, p >= 1.
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal(40), 2 * rng.standard_normal(40) + 0.3
    expected = np.mean(np.abs(np.sort(x) - np.sort(y)) ** p) ** (1 / p)
    assert wasserstein(x, y, p=p) == pytest.approx(expected, rel=1e-10)


def test_exact_translation_is_shift_length():
    # W2(x, x + v) = |v|: the identity coupling gives |v|^2, and no coupling does better
    # since W2^2 >= |mean(x) - mean(y)|^2. Shuffled so that the answer is not the diagonal.
    rng = np.random.default_rng(6)
    x = rng.standard_normal((50, 3))
    v = np.array([1.0, -2.0, 0.5])
    y = (x + v)[rng.permutation(50)]
    assert wasserstein(x, y) == pytest.approx(np.linalg.norm(v), rel=1e-10)


def test_exact_monotone_map_is_optimal():
    # y_i = A z_i + c with A SPD is the gradient of a convex function, so the coupling
    # z_i -> y_i is cyclically monotone, hence optimal: W2^2 = mean |A z + c - z|^2 exactly.
    rng = np.random.default_rng(7)
    z = rng.standard_normal((70, 3))
    a = _random_spd(rng, 3)
    y = z @ a + np.array([0.5, 0.0, -1.0])
    expected = math.sqrt(np.mean(np.sum((y - z) ** 2, axis=1)))
    assert wasserstein(z, y[rng.permutation(70)]) == pytest.approx(expected, rel=1e-10)


def test_exact_large_samples_approach_gaussian_closed_form():
    # x ~ N(0, I), y = z + m with z ~ N(0, I). By the triangle inequality and W2(z, z + m) = |m|,
    # |W2(x, y) - |m|| <= W2(x, z): the distance between two samples of one law (the noise
    # floor) bounds the error exactly. The floor must also be small for the test to say much.
    rng = np.random.default_rng(8)
    m = np.array([1.0, 0.5])
    x, z = rng.standard_normal((800, 2)), rng.standard_normal((800, 2))
    exact = gaussian_w2(np.zeros(2), np.eye(2), m, np.eye(2))
    floor = wasserstein(x, z)
    assert 0 < floor < 0.25 * exact
    assert abs(wasserstein(x, z + m) - exact) <= floor


def test_exact_refuses_large_samples():
    x = np.zeros((30, 2))
    with pytest.raises(ValueError, match=r"max_exact=20.*'sliced'.*'sinkhorn'"):
        wasserstein(x, x + 1.0, max_exact=20)
    assert MAX_EXACT == 5000  # documented default


def test_jax_arrays_are_accepted():
    import jax.numpy as jnp

    rng = np.random.default_rng(9)
    # values exact in float32, so that JAX arrays hold them with x64 off as well as on
    x = rng.standard_normal((30, 2)).astype(np.float32).astype(np.float64)
    y = rng.standard_normal((25, 2)).astype(np.float32).astype(np.float64)
    assert wasserstein(jnp.asarray(x), jnp.asarray(y)) == pytest.approx(
        wasserstein(x, y), rel=1e-12
    )


# --------------------------------------------------------------------------------------------
# wasserstein: Sinkhorn and sliced
# --------------------------------------------------------------------------------------------


def test_sinkhorn_translation_is_exact_for_any_reg():
    # With C_ij = |x_i - x_j - v|^2 the cross term -2 v.(x_i - x_j) is separable, so it adds
    # 0 under the marginal constraints: OT_eps(x, x + v) = OT_eps(x, x) + |v|^2 and the
    # debiased divergence is exactly |v|^2. Without debiasing it would be > |v|^2.
    rng = np.random.default_rng(10)
    x = rng.standard_normal((40, 2))
    v = np.array([0.6, -0.8])
    assert wasserstein(x, x + v, "sinkhorn") == pytest.approx(1.0, rel=1e-3)


def test_sinkhorn_close_to_exact():
    # W2^2 <= OT_eps <= W2^2 + eps log n for n = m (the KL term is a mutual information,
    # at most log n), and 0 <= OT_eps(x, x) <= eps log n; so |S_eps - W2^2| <= eps log n.
    rng = np.random.default_rng(11)
    n = 40
    x = rng.standard_normal((n, 2))
    y = rng.standard_normal((n, 2)) * [1.5, 0.7] + [1.0, 0.0]
    exact2 = wasserstein(x, y) ** 2
    default_eps = SINKHORN_REG_FRACTION * np.median(np.sum((x[:, None] - y[None]) ** 2, axis=-1))
    for reg, eps in [(0.02, 0.02), (None, default_eps)]:
        value2 = wasserstein(x, y, "sinkhorn", reg=reg) ** 2
        assert abs(value2 - exact2) <= eps * math.log(n)
    # A small reg is close in absolute terms too (eps log n = 0.074 here).
    assert wasserstein(x, y, "sinkhorn", reg=0.02) == pytest.approx(math.sqrt(exact2), rel=0.05)


def _entropic_ot_two_points(x, y, eps):
    """OT_eps between two 2-point clouds by brute force: the plan has one free entry q."""
    cost = (np.asarray(x)[:, None] - np.asarray(y)[None, :]) ** 2

    def objective(q):
        plan = np.array([[q, 0.5 - q], [0.5 - q, q]])
        return np.sum(plan * cost) + eps * np.sum(plan * np.log(plan / 0.25))

    res = scipy.optimize.minimize_scalar(
        objective, bounds=(1e-15, 0.5 - 1e-15), method="bounded", options={"xatol": 1e-13}
    )
    return res.fun


def test_sinkhorn_matches_brute_force_definition():
    # S_eps = OT_eps(x, y) - (OT_eps(x, x) + OT_eps(y, y)) / 2 with the KL term included,
    # checked against a direct minimisation over all couplings of two 2-point clouds.
    x, y, eps = np.array([0.0, 1.0]), np.array([0.3, 2.0]), 0.5
    expected = _entropic_ot_two_points(x, y, eps) - 0.5 * (
        _entropic_ot_two_points(x, x, eps) + _entropic_ot_two_points(y, y, eps)
    )
    # Sinkhorn stops at a relative marginal error of 1e-3; the value, read from the dual, is
    # much closer (4e-7 here). Leaving out the KL term would change the result by 2%.
    assert wasserstein(x, y, "sinkhorn", reg=eps) == pytest.approx(math.sqrt(expected), rel=1e-4)


def test_sinkhorn_same_cloud_is_zero():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((40, 3))
    assert wasserstein(x, x, "sinkhorn") == 0.0
    # A permuted copy is the same measure, solved in a different order.
    assert wasserstein(x, x[rng.permutation(40)], "sinkhorn") < 1e-3


def test_solver_limits_are_reported(monkeypatch):
    # Sinkhorn stopping early must say so, as a RuntimeWarning (the suite turns warnings into
    # errors, so POT's own UserWarnings must not leak in normal use either).
    module = sys.modules["langevin.diagnostics.transport"]
    rng = np.random.default_rng(22)
    x, y = rng.standard_normal((40, 2)), rng.standard_normal((40, 2)) + 1
    monkeypatch.setattr(module, "_SINKHORN_MAX_ITER", 5)
    with pytest.warns(RuntimeWarning, match="Sinkhorn did not converge in 5 iterations"):
        wasserstein(x, y, "sinkhorn", reg=0.01)
    # An unfinished network simplex has no transport plan to report (its partial cost was
    # 0.42 against an optimum of 1.47 here): it must raise rather than return a number.
    monkeypatch.setattr(module, "_EMD_MAX_ITER", 3)
    with pytest.raises(
        RuntimeError, match="exact OT did not reach optimality within 3 simplex pivots"
    ):
        wasserstein(x, y)


@pytest.mark.parametrize("seed", range(5))
def test_sliced_is_below_exact(seed):
    # Each projection is 1-Lipschitz, so W2(proj x, proj y) <= W2(x, y) for every direction:
    # the average over directions is below W2 deterministically.
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((60, 3))
    y = rng.standard_t(4, size=(45, 3)) + rng.standard_normal(3)
    assert wasserstein(x, y, "sliced", seed=seed) <= wasserstein(x, y) + 1e-12


def test_sliced_in_one_dimension_equals_exact():
    # In 1-D every unit direction is +1 or -1, and W2 is invariant under x -> -x.
    rng = np.random.default_rng(13)
    x, y = rng.standard_normal(50), rng.standard_normal(30) + 1
    assert wasserstein(x, y, "sliced", n_projections=7) == pytest.approx(
        wasserstein(x, y), rel=1e-10
    )


def test_sliced_is_reproducible_with_seed():
    rng = np.random.default_rng(14)
    x, y = rng.standard_normal((50, 4)), rng.standard_normal((50, 4)) + 1
    first = wasserstein(x, y, "sliced", n_projections=10, seed=3)
    assert wasserstein(x, y, "sliced", n_projections=10, seed=3) == first
    assert wasserstein(x, y, "sliced", n_projections=10, seed=4) != first


# --------------------------------------------------------------------------------------------
# wasserstein: bad inputs
# --------------------------------------------------------------------------------------------

_X = np.zeros((5, 2))


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "error", "match"),
    [
        (_X, _X, {"method": "emd"}, ValueError, r"method must be one of .*got 'emd'"),
        (np.zeros((2, 3, 2)), _X, {}, ValueError, r"x must have shape \(n, d\).*\(2, 3, 2\)"),
        (_X, np.zeros((5, 3)), {}, ValueError, "y must have the same dimension d as x"),
        (_X, np.r_[_X, [[np.nan, 0]]], {}, ValueError, "y must contain only finite values"),
        (np.zeros((1, 2)), _X, {}, ValueError, "x needs at least 2 points; got 1"),
        (np.zeros((5, 0)), _X, {}, ValueError, "x must have at least one coordinate"),
        (np.array(["a", "b"]), _X, {}, TypeError, "x must be an array of real numbers"),
        (_X + 0j, _X, {}, TypeError, "x must be an array of real numbers"),
        (_X, _X, {"p": 0.5}, ValueError, "p must be >= 1"),
        (_X, _X, {"p": "2"}, TypeError, "p must be a finite real number"),
        (_X, _X, {"method": "sinkhorn", "p": 1}, ValueError, "p: method='sinkhorn' supports"),
        (_X, _X, {"method": "sinkhorn", "reg": -1.0}, ValueError, "reg must be a positive"),
        (_X, _X, {"reg": 0.1}, ValueError, "reg is only used by method='sinkhorn'"),
        (_X, _X, {"method": "sliced", "n_projections": 0}, ValueError, "n_projections must"),
        (_X, _X, {"seed": 1.5}, TypeError, "seed must be an integer"),
        (_X, _X, {"max_exact": 1}, ValueError, "max_exact must be an integer >= 2"),
    ],
)
def test_wasserstein_bad_inputs(x, y, kwargs, error, match):
    with pytest.raises(error, match=match):
        wasserstein(x, y, **kwargs)


# --------------------------------------------------------------------------------------------
# w2_to_reference
# --------------------------------------------------------------------------------------------


def _gaussian_draws(seed: int, shift: float = 0.0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((4, 150, 3)) + shift, rng.standard_normal((2000, 3))


def test_reference_same_law_is_within_noise_floor():
    draws, reference = _gaussian_draws(15)
    res = w2_to_reference(draws, reference, max_points=600, seed=0)
    assert (res.n, res.m, res.method) == (600, 600, "exact")
    assert res.noise_floor > 0
    # Same law and the same sample sizes as the floor: the ratio is near 1 (1.0-1.06 over
    # seeds); 1.5 leaves room for the spread of the floor itself.
    assert res.distance < 1.5 * res.noise_floor


def test_reference_noise_floor_is_at_the_sample_size():
    # 100 draws against 4000 reference draws: the floor is W2 between halves of 100 points
    # each (not 2000), the level that 100 draws from the right law reach (ratio 0.6-0.9 over
    # seeds); halves of 2000 points would give a floor several times smaller.
    rng = np.random.default_rng(21)
    res = w2_to_reference(rng.standard_normal((100, 2)), rng.standard_normal((4000, 2)))
    assert (res.n, res.m) == (100, 2000)
    assert res.distance < res.noise_floor < 2 * res.distance


def test_reference_shifted_law_is_well_above_noise_floor():
    draws, reference = _gaussian_draws(16, shift=1.0)
    res = w2_to_reference(draws, reference, max_points=600, seed=0)
    # True W2 = |(1, 1, 1)| = 1.73 against a floor of about 0.45 at 600 points in 3-D.
    assert res.distance > 3 * res.noise_floor
    assert res.distance == pytest.approx(math.sqrt(3), rel=0.15)


def test_reference_accepts_chains_and_trace_objects():
    draws, reference = _gaussian_draws(17)
    kwargs = {"max_points": 300, "seed": 2}
    flat = w2_to_reference(draws.reshape(-1, 3), reference, **kwargs)
    assert w2_to_reference(draws, reference, **kwargs) == flat
    assert w2_to_reference(SimpleNamespace(draws=draws), reference, **kwargs) == flat
    # A trace leaves diverged chains out (their draws turn NaN at the divergence).
    bad = draws.copy()
    bad[1, 10:] = np.nan
    trace = SimpleNamespace(draws=bad, diverged={1: 10})
    kept = w2_to_reference(draws[[0, 2, 3]], reference, **kwargs)
    assert w2_to_reference(trace, reference, **kwargs) == kept
    with pytest.raises(ValueError, match="samples.draws must contain only finite values"):
        w2_to_reference(SimpleNamespace(draws=bad), reference, **kwargs)


def test_reference_accepts_arviz_data():
    """Issue 17, defect 10: ``w2_to_reference(trace.to_arviz(), ref)`` failed with "got dtype
    <U12" (NumPy read the InferenceData as its group names). ArviZ data of either version,
    or its posterior Dataset, gives the same result as the draws themselves."""
    from langevin import _arviz

    draws, reference = _gaussian_draws(22)
    kwargs = {"max_points": 300, "seed": 2}
    expected = w2_to_reference(draws, reference, **kwargs)
    # two variables side by side, in order: ``(1,)`` + ``(2,)`` blocks of the 3 coordinates
    posterior = _arviz.dataset({"a": draws[..., 0], "b": draws[..., 1:]})
    data = _arviz.build({"posterior": posterior})
    assert w2_to_reference(data, reference, **kwargs) == expected
    assert w2_to_reference(posterior, reference, **kwargs) == expected
    # a real trace, with a chain that stopped: to_arviz leaves it out, as the trace path does
    bad = draws.copy()
    bad[1, 10:] = np.nan
    names = {"x": (slice(0, 3), (3,))}
    trace = Trace(draws=bad, sample_stats={}, warmup_stats={}, step_size=np.ones(4),
                  names=names, kernel=None, backend="numba", seed=0, diverged={1: 10})  # fmt: skip
    assert w2_to_reference(trace.to_arviz(), reference, **kwargs) == w2_to_reference(
        trace, reference, **kwargs
    )
    with pytest.raises(ValueError, match="samples.posterior must contain only finite values"):
        w2_to_reference(trace.to_arviz(include_stopped=True), reference, **kwargs)
    without = _arviz.build({"sample_stats": _arviz.dataset({"lp": draws[..., 0]})})
    with pytest.raises(ValueError, match="samples: cannot read its posterior group"):
        w2_to_reference(without, reference, **kwargs)


def test_reference_subsampling_and_sizes():
    rng = np.random.default_rng(18)
    draws, reference = rng.standard_normal((100, 2)), rng.standard_normal((150, 2))
    res = w2_to_reference(draws, reference, max_points=120, seed=0)
    assert (res.n, res.m) == (100, 120)
    # Reproducible with the seed, different subsamples with another seed.
    assert w2_to_reference(draws, reference, max_points=120, seed=0) == res
    other = w2_to_reference(draws, reference, max_points=120, seed=1)
    assert other.distance != res.distance


def test_reference_auto_switches_to_sliced_for_large_sets():
    rng = np.random.default_rng(19)
    draws, reference = (
        rng.standard_normal((MAX_EXACT + 100, 2)),
        rng.standard_normal((2 * MAX_EXACT + 200, 2)),
    )
    res = w2_to_reference(draws, reference, max_points=MAX_EXACT + 1, seed=0)
    assert (res.method, res.n, res.m) == ("sliced", MAX_EXACT + 1, MAX_EXACT + 1)
    assert 0 < res.noise_floor and res.distance < 3 * res.noise_floor


def test_reference_sinkhorn_method():
    rng = np.random.default_rng(20)
    draws = rng.standard_normal((60, 2)) + np.array([2.0, 0.0])
    reference = rng.standard_normal((200, 2))
    res = w2_to_reference(draws, reference, "sinkhorn", max_points=60, seed=0)
    assert res.method == "sinkhorn"
    assert res.distance > 3 * res.noise_floor > 0


def test_result_is_frozen_and_readable():
    res = W2Result(distance=0.1234, noise_floor=0.0456, n=2000, m=1500, method="exact")
    assert str(res) == "W2 = 0.123 (noise floor 0.0456; exact OT, 2000 vs 1500 points)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.distance = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("samples", "reference", "kwargs", "error", "match"),
    [
        (np.zeros((5, 2)), np.zeros((3, 2)), {}, ValueError, "reference needs at least 4"),
        (np.zeros((5, 2)), np.zeros((8, 3)), {}, ValueError, "reference must have the same dim"),
        (np.zeros((2, 2, 2, 2)), np.zeros((8, 2)), {}, ValueError, r"samples must have shape"),
        (np.zeros((5, 2)), np.zeros((8, 2)), {"max_points": 1}, ValueError, "max_points must"),
        (np.zeros((5, 2)), np.zeros((8, 2)), {"method": "best"}, ValueError, "method must be"),
        (SimpleNamespace(draws=np.zeros((5, 2))), np.zeros((8, 2)), {}, ValueError,
         r"samples.draws must have shape \(chains, draws, d\)"),
        (SimpleNamespace(draws=np.full((2, 3, 2), np.nan), diverged={0: 0, 1: 0}),
         np.zeros((8, 2)), {}, ValueError, "all 2 chains diverged"),
    ],
)  # fmt: skip
def test_reference_bad_inputs(samples, reference, kwargs, error, match):
    with pytest.raises(error, match=match):
        w2_to_reference(samples, reference, **kwargs)
