"""Mirror maps and the mirror-Langevin kernels against exact laws.

* ∇φ*(∇φ(x)) = x and the envelopes' transport h⁻¹(h(x)) = x to rounding, on NumPy, Numba
  and JAX.
* Dirichlet(2, 3, 4) on the simplex with the mirrored (dual-space) scheme and the entropy:
  marginal means and variances (z-tests, Beta marginals exact) and a KS test of each marginal
  against its Beta law on draws thinned to about one per effective sample.
* Gamma laws on the orthant with the mirror-Langevin step and the log barrier; a Gaussian on
  ℝ^d with the hypentropy: z-tests of means and variances.
* A uniform law on a box through its composite target (indicator penalty): BMUMLA (hypentropy
  mirror, Euclidean envelope, Lau & Liu's experiment 2) and MYULA sample π_λ, uniform inside
  with Gaussian tails of scale √λ, whose CDF is closed form: KS tests of each marginal.

Step sizes are small enough that the kernels' step bias is far below the Monte Carlo noise of
these runs (measured: the mirrored Dirichlet's variance at h = 0.02 sits 1.5–2 MCSE off, at
h = 0.005 it is within noise; the log-barrier Gamma's variance at h = 0.02 sits 7–9 MCSE off);
the noise floor of a KS test at n thinned draws is its critical value at the suite's per-test
level, about 2.6/√n.
"""

from __future__ import annotations

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import langevin
from langevin.kernels.mirror import BregmanMoreauMirrorLangevin, MirroredLangevin, MirrorLangevin
from langevin.kernels.proximal import MYULA
from langevin.proximal import bregman
from langevin.proximal.penalties import box
from langevin.targets.composite import composite, flat
from langevin.targets.supported import dirichlet, gamma
from tests.stats_helpers import SUITE_FALSE_ALARM, SUITE_Z_TESTS, assert_z_ok, z_score

P_CRIT = SUITE_FALSE_ALARM / SUITE_Z_TESTS


def _points(name):
    rng = np.random.default_rng(0)
    if name == "entropy":
        return rng.dirichlet(np.full(6, 0.7), 200)[:, :5]
    if name == "log_barrier":
        return np.exp(rng.uniform(-20, 20, (200, 5)))
    return np.sinh(rng.uniform(-7, 7, (200, 5))) * 10.0 ** rng.uniform(-3, 3, (200, 5))


@pytest.mark.parametrize("name", list(bregman.MIRRORS))
def test_mirror_round_trip(name):
    s = np.array([0.3, 1.0, 2.0, 5.0, 0.7])
    grads = {b: bregman.mirror_functions(name, b)[:2] for b in ("numpy", "numba", "jax")}
    for x in _points(name):
        for backend, (grad, inverse) in grads.items():
            if backend == "jax":
                with jax.enable_x64(True):
                    back = np.asarray(inverse(grad(jnp.asarray(x), jnp.asarray(s)), jnp.asarray(s)))
            else:
                back = inverse(grad(x, s), s)
            np.testing.assert_allclose(
                back, x, rtol=4e-15 if name != "hypentropy" else 1e-14, atol=0
            )


@pytest.mark.parametrize("name", list(bregman.ENVELOPES))
def test_envelope_transport_round_trip(name):
    s = np.array([0.3, 1.0, 2.0])
    shift, unshift, _, _ = bregman.envelope_functions(name)
    x = np.random.default_rng(1).uniform(-5, 5, (100, 3))
    for xi in x:
        np.testing.assert_allclose(unshift(shift(xi, s), s), xi, rtol=1e-14, atol=1e-15)
    # the transport fixes 0 and preserves signs (what makes it exact for sign-invariant g)
    assert np.all(shift(np.zeros(3), s) == 0.0)
    assert np.all(np.sign(shift(x, s)) == np.sign(x))


def _thinned(x):
    ess = float(az.ess(np.asarray(x, dtype=np.float64)))
    return np.asarray(x)[:, :: max(1, int(np.ceil(x.size / ess)))].ravel()


def _run(target, kernel, backend, draws, seed=0):
    trace = langevin.sample(
        target,
        kernel,
        backend=backend,
        chains=4,
        warmup=1000,
        draws=draws,
        seed=seed,
        progress=False,
    )
    assert not np.any(trace.diverged) if hasattr(trace, "diverged") else True
    d = np.asarray(trace.draws, dtype=np.float64)
    assert np.all(np.isfinite(d))
    return d


@pytest.mark.parametrize("backend", ["numba", pytest.param("jax", marks=pytest.mark.slow)])
def test_dirichlet_marginals_with_the_mirrored_entropy_scheme(backend):
    alpha = np.array([2.0, 3.0, 4.0])
    target = dirichlet(alpha)
    d = _run(target, MirroredLangevin(0.005, mirror="entropy"), backend, 40000)
    assert np.all(d > 0) and np.all(d.sum(-1) < 1)  # never leaves the open simplex
    m, cov = target.reference.mean, target.reference.cov
    zs = {}
    for i in range(2):
        zs[f"mean[{i}]"] = z_score(d[..., i], m[i])
        zs[f"var[{i}]"] = z_score((d[..., i] - m[i]) ** 2, cov[i, i])
        marginal = stats.beta(alpha[i], alpha.sum() - alpha[i])
        p = stats.kstest(_thinned(d[..., i]), marginal.cdf).pvalue
        assert p > P_CRIT, (i, p)
    assert_z_ok(zs)


@pytest.mark.parametrize("backend", ["numba", pytest.param("jax", marks=pytest.mark.slow)])
def test_gamma_with_the_log_barrier(backend):
    target = gamma([2.0, 3.0], [1.0, 2.0])
    d = _run(target, MirrorLangevin(0.002, mirror="log_barrier", mirror_scale=2.0), backend, 40000)
    assert np.all(d > 0)
    m, cov = target.reference.mean, target.reference.cov
    zs = {}
    for i in range(2):
        zs[f"mean[{i}]"] = z_score(d[..., i], m[i])
        zs[f"var[{i}]"] = z_score((d[..., i] - m[i]) ** 2, cov[i, i])
    assert_z_ok(zs)


def test_gaussian_with_the_hypentropy():
    target = langevin.targets.gaussian(2, mean=[2.0, -1.0], cov=[0.5, 2.0])
    d = _run(target, MirrorLangevin(0.01, mirror="hypentropy", mirror_scale=0.5), "numba", 40000)
    zs = {}
    for i, (m, v) in enumerate(zip([2.0, -1.0], [0.5, 2.0])):
        zs[f"mean[{i}]"] = z_score(d[..., i], m)
        zs[f"var[{i}]"] = z_score((d[..., i] - m) ** 2, v)
    assert_z_ok(zs)


LOWER, UPPER, LAM = np.array([-1.0, -0.5]), np.array([1.0, 0.5]), 0.05


def smoothed_uniform_cdf(x, a, b, lam):
    """CDF of π_λ ∝ exp(−dist²(x, [a, b])/(2λ)): uniform inside, Gaussian tails."""
    r = np.sqrt(2 * np.pi * lam)
    z = (b - a) + r
    left = r * stats.norm.cdf((x - a) / np.sqrt(lam)) / z
    mid = (r / 2 + (x - a)) / z
    right = (r / 2 + (b - a) + r * (stats.norm.cdf((x - b) / np.sqrt(lam)) - 0.5)) / z
    return np.where(x < a, left, np.where(x <= b, mid, right))


@pytest.mark.parametrize(
    "kernel, backend",
    [
        (
            BregmanMoreauMirrorLangevin(
                0.004, smoothing=LAM, mirror="hypentropy", mirror_scale=0.3
            ),
            "numba",
        ),
        pytest.param(
            BregmanMoreauMirrorLangevin(
                0.004, smoothing=LAM, mirror="hypentropy", mirror_scale=0.3
            ),
            "jax",
            marks=pytest.mark.slow,
        ),
        pytest.param(MYULA(0.004, smoothing=LAM), "numba", marks=pytest.mark.slow),
    ],
    ids=["bmumla-numba", "bmumla-jax", "myula-numba"],
)
def test_uniform_on_a_box_marginals(kernel, backend):
    target = composite(flat(2), box(LOWER, UPPER))
    d = _run(target, kernel, backend, 100000, seed=4)
    for i in range(2):
        xs = _thinned(d[..., i])
        p = stats.kstest(xs, lambda z: smoothed_uniform_cdf(z, LOWER[i], UPPER[i], LAM)).pvalue
        assert p > P_CRIT, (i, p, xs.size)
        assert xs.size > 300  # the test has power: enough effectively independent draws
