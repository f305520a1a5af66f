"""The proximity-operator registry (langevin.proximal): optimality conditions on random inputs,
the same numbers on NumPy, Numba and JAX, agreement with pyproximal (a test-only oracle), the
left Bregman proximity operators of t|·| (closed forms, dead zone exactly 0, optimality, a
numerical argmin) and the gradient of the Bregman–Moreau envelope against finite differences.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numba
import numpy as np
import pyproximal
import pytest
from scipy.optimize import minimize_scalar

from langevin.backends.portable import portable
from langevin.proximal import bregman
from langevin.proximal.penalties import (
    Penalty,
    box,
    elastic_net,
    group_l1,
    l1,
    nonnegative,
    penalty,
    register_penalty,
    simplex,
    total_variation,
)
from langevin.proximal.tv import tv_dual_gap

DIM = 9
GROUPS = np.array([0, 0, 1, 1, 1, 2, 3, 3, 2])
LAMS = (0.3, 1.7)


def _penalties():
    rng = np.random.default_rng(11)
    return {
        "l1": l1(0.8),
        "weighted_l1": l1(rng.uniform(0.2, 2.0, DIM)),
        "box": box(-rng.uniform(0.1, 1.0, DIM), rng.uniform(0.1, 1.0, DIM)),
        "half_box": box(-np.inf, 0.5),
        "nonnegative": nonnegative(),
        "simplex": simplex(1.0),
        "simplex_r3": simplex(3.0),
        "elastic_net": elastic_net(rng.uniform(0.1, 1.0, DIM), rng.uniform(0.1, 2.0, DIM)),
        "group_l1": group_l1(GROUPS, [0.5, 1.0, 2.0, 0.7]),
        "total_variation": total_variation(0.6),
    }


PENALTIES = _penalties()


def _inputs(seed):
    rng = np.random.default_rng(seed)
    xs = [2.0 * rng.standard_normal(DIM) for _ in range(6)]
    xs.append(np.zeros(DIM))
    xs.append(np.repeat(rng.standard_normal(3), 3))  # ties (simplex, TV plateaus)
    return xs


def _expand(a):
    return np.broadcast_to(np.asarray(a, dtype=np.float64), (DIM,))


def check_optimality(name, pen, x, lam, p, tol=1e-10):
    """The subgradient condition (x − p)/λ ∈ ∂g(p), operator by operator."""
    r = (x - p) / lam
    scale = 1.0 + np.max(np.abs(x))
    if name in ("l1", "weighted_l1", "elastic_net"):
        w = _expand(pen.params.weights if name != "elastic_net" else pen.params.l1)
        if name == "elastic_net":
            r = r - _expand(pen.params.l2) * p
        nz = p != 0.0
        np.testing.assert_allclose(r[nz], w[nz] * np.sign(p[nz]), atol=tol * scale)
        assert np.all(np.abs(r[~nz]) <= w[~nz] + tol * scale)
    elif name in ("box", "half_box", "nonnegative"):
        lo = _expand(pen.params.lower) if name != "nonnegative" else np.zeros(DIM)
        hi = _expand(pen.params.upper) if name != "nonnegative" else np.full(DIM, np.inf)
        assert np.all(p >= lo) and np.all(p <= hi)
        inside = (p > lo) & (p < hi)
        np.testing.assert_allclose(r[inside], 0.0, atol=tol * scale)
        assert np.all(r[p == lo] <= tol) and np.all(r[p == hi] >= -tol)
    elif name.startswith("simplex"):
        radius = float(pen.params.radius)
        assert np.all(p >= 0.0)
        np.testing.assert_allclose(p.sum(), radius, rtol=1e-12)
        support = p > 0.0
        tau = (x - p)[support]  # x − p = τ on the support, x ≤ τ off it
        np.testing.assert_allclose(tau, tau[0], atol=tol * scale)
        assert np.all(x[~support] <= tau[0] + tol * scale)
    elif name == "group_l1":
        w = pen.params.weights
        for g in range(w.size):
            idx = GROUPS == g
            norm = np.linalg.norm(p[idx])
            if norm > 0:
                np.testing.assert_allclose(r[idx], w[g] * p[idx] / norm, atol=tol * scale)
            else:
                assert np.linalg.norm(x[idx]) <= lam * w[g] + tol * scale
    elif name == "total_variation":
        assert tv_dual_gap(p, x, lam * pen.params.weight) < tol * scale * DIM
    else:  # pragma: no cover
        raise AssertionError(name)
    # and p is no worse than nearby points (of the constraint set, for an indicator)
    rng = np.random.default_rng(3)

    def objective(u):
        return pen.value(u) + np.sum((u - x) ** 2) / (2 * lam)

    best = objective(p)
    assert np.isfinite(best)
    for _ in range(20):
        u = p + 1e-3 * rng.standard_normal(DIM)
        if pen.indicator:
            u = pen.prox(u, 1.0)
        assert objective(u) >= best - 1e-12 * (1 + abs(best))


@pytest.mark.parametrize("name", list(PENALTIES))
def test_prox_satisfies_its_optimality_condition(name):
    pen = PENALTIES[name]
    for x in _inputs(5):
        for lam in LAMS:
            check_optimality(name, pen, x, lam, pen.prox(x, lam))


@pytest.mark.parametrize("name", list(PENALTIES))
def test_same_prox_on_numba_and_jax(name):
    """One portable operator, three compilations: NumPy, Numba and JAX (float64) agree to
    1e-12; JAX in float32 to float32 accuracy."""
    pen = PENALTIES[name]
    prox_nb, value_nb = pen.numba_functions()
    prox_jx, value_jx = pen.jax_functions()
    jit_prox = jax.jit(prox_jx)
    for x in _inputs(6)[-3:]:  # a random point, 0 and ties
        for lam in LAMS:
            ref = pen.prox(x, lam)
            np.testing.assert_allclose(prox_nb(x, lam, pen.numba_params()), ref, atol=1e-12)
            with jax.enable_x64(True):
                out = jit_prox(jnp.asarray(x), lam)
                assert out.dtype == jnp.float64
                np.testing.assert_allclose(np.asarray(out), ref, atol=1e-12)
                assert float(value_jx(jnp.asarray(ref))) == pytest.approx(pen.value(ref))
            out32 = jit_prox(jnp.asarray(x, dtype=jnp.float32), np.float32(lam))
            assert out32.dtype == jnp.float32
            np.testing.assert_allclose(np.asarray(out32), ref, atol=2e-5 * (1 + np.abs(x).max()))
            assert value_nb(ref, pen.numba_params()) == pytest.approx(pen.value(ref))


def test_numba_clip_is_numpys_clip_bit_for_bit():
    """The Numba namespace's one-loop ``clip`` (1-D float64 arrays with scalar, length-1 or
    full-length bounds) gives NumPy's min(max(a, lo), hi) exactly, NaN and infinities
    included, and refuses bounds that do not broadcast."""
    from langevin.backends import numba_ops

    @numba.njit
    def clip(a, lo, hi):
        return numba_ops.clip(a, lo, hi)

    a = np.array([-3.0, -0.5, 0.0, 0.2, 0.7, 4.0, np.nan, np.inf, -np.inf])
    lo = np.array([-1.0, 0.0, -0.1, 0.3, -2.0, 1.0, 0.0, -np.inf, -1.0])
    hi = np.array([1.0, 2.0, 0.1, 0.5, 0.0, np.inf, 1.0, 5.0, 0.0])
    for lo_, hi_ in [(lo, hi), (lo[:1], hi), (lo, hi[:1]), (lo[:1], hi[:1])]:
        want = np.minimum(np.maximum(a, lo_), hi_)
        np.testing.assert_array_equal(clip(a, lo_, hi_), want)
    np.testing.assert_array_equal(clip(a, -0.25, 0.5), np.minimum(np.maximum(a, -0.25), 0.5))
    np.testing.assert_array_equal(clip(a, -0.25, hi), np.minimum(np.maximum(a, -0.25), hi))
    np.testing.assert_array_equal(clip(a, lo, 0.5), np.minimum(np.maximum(a, lo), 0.5))
    with pytest.raises(ValueError, match="broadcast"):
        clip(a, lo[:2], hi)


def test_dead_zones_are_exactly_zero():
    x = np.array([0.1, -0.2, 0.79, -0.8, 3.0, 0.0, 1e-300, -2.0, 0.5])
    p = l1(0.8).prox(x, 1.0)
    assert np.all(p[np.abs(x) <= 0.8] == 0.0) and np.all(p[np.abs(x) > 0.8] != 0.0)
    g = group_l1(GROUPS, 10.0).prox(x, 1.0)
    assert np.all(g == 0.0)


# -- pyproximal as an outside oracle --------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["l1", "weighted_l1", "box", "half_box", "simplex_r3", "group_l1", "total_variation"]
)
def test_agrees_with_pyproximal(name):
    """pyproximal implements L1, Box, Simplex (bisection, xtol), L21 and TV (iterative); it has
    no elastic net. Tolerances are pyproximal's own accuracy."""
    pen = PENALTIES[name]
    if name in ("l1", "weighted_l1"):
        oracle, tol = pyproximal.L1(sigma=pen.params.weights), 1e-12
    elif name in ("box", "half_box"):
        oracle, tol = pyproximal.Box(pen.params.lower, pen.params.upper), 1e-12
    elif name == "simplex_r3":
        oracle = pyproximal.Simplex(DIM, 3.0, maxiter=500, xtol=1e-13, ftol=1e-13)
        tol = 1e-8
    elif name == "group_l1":
        # pyproximal's L21(ndim) groups the columns of x reshaped to (ndim, n/ndim)
        ndim, cols = 3, 3
        groups = np.tile(np.arange(cols), ndim)
        pen = group_l1(groups, 0.7)
        oracle, tol = pyproximal.L21(ndim=ndim, sigma=0.7), 1e-12
    else:
        oracle = pyproximal.TV(dims=(DIM,), sigma=pen.params.weight, niter=5000, rtol=1e-15)
        tol = 1e-8
    for x in _inputs(7)[:-2]:
        for lam in LAMS:
            np.testing.assert_allclose(pen.prox(x, lam), oracle.prox(x, lam), atol=tol)
            # values (pyproximal's TV value is a 2-D isotropic one; its indicators return
            # True/False for in/out, ours 0/+∞)
            if pen.indicator:
                u = pen.prox(x, lam)
                assert pen.value(u) == 0.0 and bool(oracle(u))
                assert (pen.value(x) == 0.0) == bool(oracle(x))
            elif name != "total_variation":
                assert pen.value(x) == pytest.approx(float(oracle(x)), rel=1e-12)


# -- user penalties --------------------------------------------------------------------------------
@portable
def _scaled_abs_prox(x, lam, p):
    return x - xp.clip(x, -lam * p[0], lam * p[0])  # noqa: F821


@portable
def _scaled_abs_value(x, p):
    return p[0] * xp.sum(xp.abs(x))  # noqa: F821


class _Scale(tuple):
    pass


def test_user_penalties_on_each_backend():
    from typing import NamedTuple

    class P(NamedTuple):
        w: float

    mine = Penalty.from_portable(_scaled_abs_prox, _scaled_abs_value, P(0.8), name="mine")
    x = _inputs(8)[0]
    np.testing.assert_allclose(mine.prox(x, 0.5), l1(0.8).prox(x, 0.5), atol=0)
    prox_nb, _ = mine.numba_functions()
    np.testing.assert_allclose(prox_nb(x, 0.5, mine.numba_params()), l1(0.8).prox(x, 0.5))

    jx = Penalty.from_jax(lambda x, lam: x - jnp.clip(x, -lam, lam), lambda x: jnp.sum(jnp.abs(x)))
    with jax.enable_x64(True):
        np.testing.assert_allclose(jx.prox(x, 0.5), l1(1.0).prox(x, 0.5), atol=1e-15)
    assert not jx.has_numba
    with pytest.raises(TypeError, match="no Numba form"):
        jx.numba_functions()

    @numba.njit
    def nb_prox(x, lam):
        return np.maximum(x, 0.0)

    @numba.njit
    def nb_value(x):
        return 0.0 if np.all(x >= 0) else np.inf

    nb = Penalty.from_numba(nb_prox, nb_value, name="orthant")
    np.testing.assert_array_equal(nb.prox(x, 1.0), np.maximum(x, 0.0))
    register_penalty("my_orthant", lambda: nb)
    assert penalty("my_orthant") is nb
    with pytest.raises(ValueError, match="unknown penalty 'nope'"):
        penalty("nope")
    with pytest.raises(TypeError, match="prox must be a function marked @portable"):
        Penalty.from_portable(lambda x, lam, p: x, _scaled_abs_value, P(1.0))
    with pytest.raises(TypeError, match="numba.njit"):
        Penalty.from_numba(lambda x, lam: x, nb_value)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="weights must be positive"):
        l1([1.0, -1.0])
    with pytest.raises(ValueError, match="lower bound must be below"):
        box(1.0, 0.0)
    with pytest.raises(ValueError, match="radius"):
        simplex(0.0)
    with pytest.raises(ValueError, match="no empty group"):
        group_l1(np.array([0, 2]))
    with pytest.raises(ValueError, match="weight"):
        total_variation(-1.0)


# -- Bregman proximity operators of t|·| ---------------------------------------------------------
PSIS = ("euclidean", "diagonal", "hypentropy", "exp")


def _transported(x, t, psi, s):
    """P = h⁻¹(soft(h(x), t)): the kernels' route, through the registry's L1 prox."""
    shift, unshift, _, _ = bregman.envelope_functions(psi)
    return unshift(l1(t).prox(shift(x, s), 1.0), s)


def _psi(u, psi, s):
    if psi == "euclidean":
        return 0.5 * u * u
    if psi == "diagonal":
        return 0.5 * s * u * u
    if psi == "hypentropy":
        return u * np.arcsinh(u / s) - np.sqrt(u * u + s * s)
    return np.exp(u)


def _grad_psi(u, psi, s):
    return {"euclidean": u, "diagonal": s * u, "hypentropy": np.arcsinh(u / s), "exp": np.exp(u)}[
        psi
    ]


def _divergence(u, x, psi, s):
    return _psi(u, psi, s) - _psi(x, psi, s) - _grad_psi(x, psi, s) * (u - x)


def _argmin(x, t, psi, s):
    """The 1-D left Bregman prox by numerical minimisation (bounded Brent)."""
    res = minimize_scalar(
        lambda u: t * abs(u) + _divergence(u, x, psi, s),
        bounds=(min(x, 0.0) - 1.0, max(x, 0.0) + 1.0),
        method="bounded",
        options={"xatol": 1e-12},
    )
    candidates = [res.x, 0.0]  # Brent may stop a hair away from the kink at 0
    return min(candidates, key=lambda u: t * abs(u) + _divergence(u, x, psi, s))


@pytest.mark.parametrize("psi", PSIS)
def test_bregman_l1_prox_closed_form_transport_and_argmin(psi):
    rng = np.random.default_rng(21)
    x = np.concatenate([3.0 * rng.standard_normal(40), [0.0, 1e-9, -1e-9]])
    s, t = 1.7, 0.6
    closed = bregman.l1_bregman_prox(x, t, psi, s)
    np.testing.assert_allclose(_transported(x, t, psi, s), closed, rtol=1e-12, atol=1e-14)
    # optimality: h(x) − h(P) = t sign(P) off 0, |h(x) − h(0)| ≤ t at 0
    h = _grad_psi(x, psi, s) - _grad_psi(0.0, psi, s)
    hp = _grad_psi(closed, psi, s) - _grad_psi(0.0, psi, s)
    nz = closed != 0.0
    np.testing.assert_allclose((h - hp)[nz], t * np.sign(closed[nz]), atol=1e-11)
    assert np.all(np.abs(h[~nz]) <= t + 1e-12)
    assert np.any(nz) and np.any(~nz)
    for xi, pi in zip(x[:15], closed[:15]):
        assert pi == pytest.approx(_argmin(xi, t, psi, s), abs=2e-6)


@pytest.mark.parametrize("psi", ["hypentropy", "exp"])
def test_bregman_dead_zone_is_exactly_zero_not_the_notebooks_value(psi):
    """In the dead zone the argmin is 0. The reference notebooks return √(x² + σ²) − σ
    (hypentropy) and 1 − e^x(1 + x) (exp) there, which have a larger objective."""
    s, t = 1.3, 0.4
    if psi == "hypentropy":
        edge = s * np.sinh(t)
        x = np.linspace(-edge, edge, 41)[1:-1]
        notebook = np.sqrt(x * x + s * s) - s
    else:
        x = np.linspace(np.log(1 - t), np.log1p(t), 41)[1:-1]
        notebook = 1.0 - np.exp(x) * (1.0 + x)
    for p in (bregman.l1_bregman_prox(x, t, psi, s), _transported(x, t, psi, s)):
        assert np.all(p == 0.0)
    ours = t * 0.0 + _divergence(0.0, x, psi, s)
    theirs = t * np.abs(notebook) + _divergence(notebook, x, psi, s)
    moved = notebook != 0.0
    assert np.all(theirs[moved] > ours[moved])


def _envelope(x, t, psi, s, lam):
    """g_λ^ψ(x) = min_u t|u| + D_ψ(u, x)/λ, the argmin found numerically."""
    u = _argmin(x, lam * t, psi, s)
    return t * abs(u) + _divergence(u, x, psi, s) / lam


@pytest.mark.parametrize("psi", PSIS)
def test_envelope_gradient_matches_finite_differences(psi):
    """∇g_λ^ψ(x) = ∇²ψ(x)(x − P)/λ (the formula the kernels use) against central differences
    of the envelope evaluated by numerical minimisation."""
    s, t, lam = 1.4, 0.8, 0.5
    _, _, hess, _ = bregman.envelope_functions(psi)
    for x in (-2.3, -0.7, -0.05, 0.02, 0.45, 1.1, 2.9):  # none at a kink of ∇g_λ
        p = bregman.l1_bregman_prox(np.array([x]), lam * t, psi, s)
        grad = hess(np.array([x]), s)[0] * (x - p[0]) / lam
        eps = 1e-4
        fd = (_envelope(x + eps, t, psi, s, lam) - _envelope(x - eps, t, psi, s, lam)) / (2 * eps)
        assert grad == pytest.approx(fd, abs=1e-5, rel=1e-5), (psi, x)


def test_box_envelope_gradient_matches_finite_differences():
    """ψ Euclidean, g = ι_[a, b]: the envelope is dist²(x, [a, b])/(2λ)."""
    a, b, lam = -0.5, 1.5, 0.3
    pen = box(a, b)
    for x in (-2.0, -0.6, 0.0, 1.4, 1.6, 3.0):
        p = pen.prox(np.array([x]), lam)[0]

        def env(z):
            res = minimize_scalar(
                lambda u: (u - z) ** 2 / (2 * lam),
                bounds=(a, b),
                method="bounded",
                options={"xatol": 1e-12},
            )
            return res.fun

        eps = 1e-5
        fd = (env(x + eps) - env(x - eps)) / (2 * eps)
        assert (x - p) / lam == pytest.approx(fd, abs=1e-5)
