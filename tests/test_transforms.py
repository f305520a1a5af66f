"""Constrained parameters (issue 17, "checks users can run"): the transforms of
``langevin.targets.transforms`` and targets sampled on the unconstrained space.

* each log-Jacobian against ``log|det J|`` of the forward map's Jacobian by ``jax.jacfwd``
  (the square map: a simplex's first K − 1 entries, a Cholesky factor's strictly lower
  entries), and each pullback against ``jax.vjp`` plus the gradient of the log-Jacobian;
* the Numba twins agree with the JAX twins to 1e-12 (float64);
* round trips ``u → x → u`` and the values lie in their supports, far into the tails too;
* a target with one parameter of each kind, sampled with MALA on both backends: its
  constrained marginals against exact laws (Gamma, Beta, Dirichlet, normal order
  statistics, LKJ correlations) in MCSE units.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numba
import numpy as np
import pytest

import langevin
from langevin.targets import transforms as T
from langevin.targets.check import check_target
from tests.stats_helpers import Z_CRIT, z_score

CASES = {
    "positive": T.positive(3),
    "interval": T.interval(-1.0, 2.5, 2),
    "ordered": T.ordered(4),
    "simplex2": T.simplex(2),
    "simplex5": T.simplex(5),
    "cholesky2": T.cholesky_corr(2),
    "cholesky4": T.cholesky_corr(4),
    "real": T.real((2, 2)),
}


def _square_part(t: T.Transform):
    """Indices of the constrained entries the density is with respect to."""
    if t.name == "simplex":
        return np.arange(t.constrained_size - 1)
    if t.name == "cholesky_corr":
        k = t.shape[0]
        return np.array([i * k + j for i in range(k) for j in range(i)])
    return np.arange(t.constrained_size)


@pytest.mark.parametrize("case", sorted(CASES))
def test_log_jacobian_and_pullback_against_autodiff(case):
    t = CASES[case]
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        fwd, ld, pull = T._jax(t.forward), T._jax(t.log_det), T._jax(t.pullback)
        p = jnp.asarray(t.p())
        idx = _square_part(t)
        fwd, ld, pull = jax.jit(fwd), jax.jit(ld), jax.jit(pull)
        jacobian = jax.jit(jax.jacfwd(lambda v: fwd(v, p)[idx]))

        @jax.jit
        def reference_pullback(u, g):
            _, vjp = jax.vjp(lambda v: fwd(v, p), u)
            return vjp(g)[0] + jax.grad(lambda v: ld(v, p))(u)

        for scale in (0.5, 2.0):
            u = jnp.asarray(scale * rng.standard_normal(t.size))
            sign, logdet = jnp.linalg.slogdet(jacobian(u))
            assert sign != 0
            assert abs(float(logdet) - float(ld(u, p))) < 1e-10, (case, scale)
            g = jnp.asarray(rng.standard_normal(t.constrained_size))
            np.testing.assert_allclose(pull(u, p, g), reference_pullback(u, g), rtol=1e-10,
                                       atol=1e-10)  # fmt: skip
            # the Numba twins compute the same numbers
            un, gn, pn = np.asarray(u), np.asarray(g), t.p()
            np.testing.assert_allclose(T._numba(t.forward)(un, pn), fwd(u, p), rtol=0, atol=1e-12)
            assert abs(T._numba(t.log_det)(un, pn) - float(ld(u, p))) < 1e-12
            np.testing.assert_allclose(T._numba(t.pullback)(un, pn, gn), pull(u, p, g), rtol=0,
                                       atol=1e-12)  # fmt: skip


def _in_support(t: T.Transform, x: np.ndarray) -> bool:
    if t.name == "positive":
        return bool(np.all(x > 0))
    if t.name.startswith("interval"):
        a, b = t.params
        return bool(np.all((x > a) & (x < b)))
    if t.name == "ordered":
        return bool(np.all(np.diff(x) > 0))
    if t.name == "simplex":
        return bool(np.all(x > 0) and abs(x.sum() - 1) < 1e-12)
    if t.name == "cholesky_corr":
        return bool(np.allclose(x, np.tril(x)) and np.all(np.diag(x) > 0)
                    and np.allclose(np.diag(x @ x.T), 1.0, atol=1e-12))  # fmt: skip
    return bool(np.all(np.isfinite(x)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trips_and_supports(case):
    t = CASES[case]
    rng = np.random.default_rng(2)
    for _ in range(5):
        u = rng.standard_normal(t.size)
        x = t.constrain(u)
        assert x.shape == t.shape
        assert _in_support(t, x), (case, x)
        np.testing.assert_allclose(t.unconstrain(x), u, rtol=1e-9, atol=1e-9)
    # far in the tails the maps stay finite (no overflow to nan)
    for u in (np.full(t.size, 30.0), np.full(t.size, -30.0), np.linspace(-40, 40, t.size)):
        assert np.all(np.isfinite(t.constrain(u)))
        assert math.isfinite(t.log_det_jacobian(u))
        g = T._numba(t.pullback)(u, t.p(), np.ones(t.constrained_size))
        assert np.all(np.isfinite(g)), (case, u)


def test_bad_transform_arguments_are_refused():
    with pytest.raises(ValueError, match="a must be < b"):
        T.interval(2.0, 1.0)
    with pytest.raises(ValueError, match="simplex: k"):
        T.simplex(1)
    with pytest.raises(ValueError, match="cholesky_corr: k"):
        T.cholesky_corr(1.5)
    with pytest.raises(ValueError, match="not inside the support"):
        T.positive().unconstrain(-1.0)
    with pytest.raises(TypeError, match=r"transforms\['s'\] must be a Transform"):
        T.constrained({"s": "positive"}, jax=lambda x: x[0])
    with pytest.raises(TypeError, match="jax= and/or numba="):
        T.constrained({"s": T.positive()})
    with pytest.raises(TypeError, match="numba must be a numba.njit"):
        T.constrained({"s": T.positive()}, numba=lambda x: (x[0], x))


# -- one target with a parameter of each kind, sampled ---------------------------------------
# sigma ~ Gamma(3, rate 2); q = -1 + 4B, B ~ Beta(2, 5); w ~ Dirichlet(2, 3, 4);
# o = the order statistics of 3 standard normals; L the Cholesky factor of an LKJ(1)
# correlation matrix, K = 3 (log p(L) = Σ_k (K − k) log L_kk, k = 1..K; its correlations
# are Beta(K/2, K/2) on (−1, 1): mean 0, variance 1/(K + 1)).
ALPHA = np.array([2.0, 3.0, 4.0])
TRANSFORMS = {"sigma": T.positive(), "q": T.interval(-1.0, 3.0), "w": T.simplex(3),
              "o": T.ordered(3), "L": T.cholesky_corr(3)}  # fmt: skip


def _logp_jax(x):
    s, q, w, o, chol = x[0], x[1], x[2:5], x[5:8], x[8:17]
    b = (q + 1.0) / 4.0
    return (2.0 * jnp.log(s) - 2.0 * s + jnp.log(b) + 4.0 * jnp.log1p(-b)
            + jnp.sum((jnp.asarray(ALPHA, x.dtype) - 1.0) * jnp.log(w))
            - 0.5 * jnp.sum(o * o) + jnp.log(chol[4]))  # fmt: skip


@numba.njit
def _vg_numba(x):
    g = np.zeros(17)
    s, q = x[0], x[1]
    b = (q + 1.0) / 4.0
    v = 2.0 * np.log(s) - 2.0 * s + np.log(b) + 4.0 * np.log1p(-b) + np.log(x[12])
    g[0] = 2.0 / s - 2.0
    g[1] = (1.0 / b - 4.0 / (1.0 - b)) / 4.0
    for i in range(3):
        v += (ALPHA[i] - 1.0) * np.log(x[2 + i]) - 0.5 * x[5 + i] ** 2
        g[2 + i] = (ALPHA[i] - 1.0) / x[2 + i]
        g[5 + i] = -x[5 + i]
    g[12] = 1.0 / x[12]  # L_11 (0-based): the k = 2 diagonal entry
    return v, g


def _exact_moments():
    """(function of the constrained draws, exact mean) pairs."""
    e1 = 3.0 / (2.0 * math.sqrt(math.pi))  # E of the largest of 3 normals
    e1sq = 1.0 + math.sqrt(3.0) / (2.0 * math.pi)
    a0 = ALPHA.sum()
    return {
        "sigma": (lambda c: c["sigma"], 1.5),
        "sigma^2": (lambda c: c["sigma"] ** 2, 1.5**2 + 0.75),
        "beta": (lambda c: (c["q"] + 1.0) / 4.0, 2.0 / 7.0),
        "beta^2": (lambda c: ((c["q"] + 1.0) / 4.0) ** 2, 2.0 / 7.0 * 3.0 / 8.0),
        "w0": (lambda c: c["w"][..., 0], ALPHA[0] / a0),
        "w2": (lambda c: c["w"][..., 2], ALPHA[2] / a0),
        "w2^2": (lambda c: c["w"][..., 2] ** 2, ALPHA[2] * (ALPHA[2] + 1) / (a0 * (a0 + 1))),
        "o_max": (lambda c: c["o"][..., 2], e1),
        "o_min^2": (lambda c: c["o"][..., 0] ** 2, e1sq),
        "r01": (lambda c: c["L"][..., 1, 0], 0.0),
        "r01^2": (lambda c: c["L"][..., 1, 0] ** 2, 0.25),
        "r12^2": (lambda c: _corr(c["L"], 1, 2) ** 2, 0.25),
    }


def _corr(chol, i, j):
    return np.sum(chol[..., i, :] * chol[..., j, :], axis=-1)


@pytest.fixture(scope="module")
def target():
    return T.constrained(TRANSFORMS, jax=_logp_jax, numba=_vg_numba, name="kinds")


def test_constrained_target_checks_out(target):
    """The wrapped target passes check_target on both backends (its value and gradient
    agree between the backends and with finite differences)."""
    with jax.enable_x64(True):
        report = check_target(target, np.linspace(-1.0, 1.0, target.dim))
    assert report.ok, str(report)
    layout = T.layout(TRANSFORMS)
    assert layout["L"]["x"] == slice(8, 17) and layout["L"]["u"] == slice(7, 10)


@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_constrained_marginals_match_exact_laws(target, backend):
    trace = langevin.sample(target, langevin.MALA(0.5), chains=4, warmup=500, draws=6000,
                            backend=backend, seed=3, progress=False)  # fmt: skip
    draws = np.asarray(trace.draws, dtype=np.float64)
    c = target.constrain(draws)
    assert c["L"].shape == (4, 6000, 3, 3)
    zs = {name: z_score(f(c), exact) for name, (f, exact) in _exact_moments().items()}
    bad = {k: round(v, 2) for k, v in zs.items() if not abs(v) < Z_CRIT}
    assert not bad, (backend, bad, {k: round(v, 2) for k, v in zs.items()})
    idata = trace.to_arviz(constrained=True)
    assert set(idata.posterior.data_vars) == set(TRANSFORMS)
    point = target.unconstrain({k: v[0, -1] for k, v in c.items()})
    np.testing.assert_allclose(point, draws[0, -1], rtol=1e-4, atol=1e-4)
