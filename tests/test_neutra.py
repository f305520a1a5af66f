"""NeuTra-HMC (langevin.flows.neutra): a flow fitted by reverse KL, HMC in its latent space, the
draws mapped back. MCSE z-tests of the moments against the exact law: a correlated Gaussian
(default), a banana and Neal's funnel d = 10 (slow)."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import langevin
from langevin.flows import neutra, realnvp_init
from tests.conftest import correlated_gaussian
from tests.stats_helpers import Z_CRIT, assert_z_ok, moment_z_scores, z_score


@pytest.mark.slow
def test_neutra_gaussian_moments():
    """Short fit, HMC on the latent target (Numba), draws mapped back: every mean, variance
    and covariance of x against the exact ones."""
    target, mean, cov = correlated_gaussian(4, seed=3)
    result = neutra(target, flow=realnvp_init(4, 2, (8,), seed=0), fit_steps=150,
                    batch_size=64, chains=4, warmup=300, draws=1000, seed=2,
                    progress=False)  # fmt: skip
    assert result.x.shape == (4, 1000, 4)
    assert result.loss_history.shape == (150,) and result.n_grad_training == 150 * 64
    x_from_constrain = result.latent.constrain(result.trace.draws)["x"]
    np.testing.assert_allclose(x_from_constrain, result.x)
    assert_z_ok(moment_z_scores(result.x, mean, cov))


def test_neutra_refuses_bad_arguments():
    target = langevin.targets.gaussian(2)
    with pytest.raises(ValueError, match="fit_steps"):
        neutra(target, fit_steps=-1)
    with pytest.raises(TypeError, match="kernel"):
        neutra(target, kernel="hmc")
    with pytest.raises(ValueError, match="dimension 3"):
        neutra(target, flow=realnvp_init(3, 1, (4,)))


# -- a banana: x1 ~ N(0, s²), x2 | x1 ~ N(b (x1² − s²), 1) -------------------------------------
S2, B = 4.0, 0.5


@numba.njit(cache=True)
def _banana_vg(x):
    r = x[1] - B * (x[0] * x[0] - S2)
    value = -0.5 * x[0] * x[0] / S2 - 0.5 * r * r
    grad = np.empty(2)
    grad[0] = -x[0] / S2 + r * 2.0 * B * x[0]
    grad[1] = -r
    return value, grad


def _banana_jax(x):
    r = x[1] - B * (x[0] * x[0] - S2)
    return -0.5 * x[0] * x[0] / S2 - 0.5 * r * r


def banana():
    """Exact law: E x = 0, var x1 = s², var x2 = 1 + 2 b² s⁴, cov(x1, x2) = 0."""
    return langevin.Target(dim=2, numba={"value_and_grad": _banana_vg},
                           jax={"logdensity": _banana_jax}, name="banana",
                           initial_position=np.zeros(2))  # fmt: skip


# a few divergent transitions where the fitted flow is poor (the banana's tips, the funnel's
# neck) are reported by the driver; the chains go on and the moments are what is tested
_DIVERGENCES_REPORTED = pytest.mark.filterwarnings(
    "ignore::langevin.health.DivergentTransitionWarning"
)


@pytest.mark.slow
@_DIVERGENCES_REPORTED
def test_neutra_banana_moments():
    """The banana's law through light-tailed statistics: x1 ~ N(0, s²) and the residual
    r = x2 − b(x1² − s²) ~ N(0, 1), independent (E x1, E x1², E r, E r², E x1 r).

    Not var x2 = E x2²: x2² grows as x1⁴, whose sample mean is so skewed that its z-score is
    far from normal even for exact iid draws (P(z < −4.56) = 0.02–0.44% at n = 8000–500
    against 5e-6 nominal, simulated from the exact law), and a run without a visit to the
    tips reads var x2 ≈ 7 against 9 (issue 13, 2026-12-07: with it this test failed 2 of 10
    fit × sampling seeds; benchmarks/results/neutra_banana_seeds.md). Measured over those 9
    runs with these statistics: largest |z| 1.0–3.6, and E x1² at z −1.2 on average (a small
    shortfall of the tips where the reverse-KL flow is poor and latent HMC diverges; the
    threshold catches gross errors, not that)."""
    target = banana()
    # a smaller step (target acceptance 0.95) follows the latent geometry where the fitted
    # flow is poor (the banana's tips) instead of diverging there
    result = neutra(target, flow=realnvp_init(2, 4, (32, 32), seed=0), fit_steps=1200,
                    chains=4, warmup=500, draws=2000, seed=3, target_acceptance=0.95,
                    progress=False)  # fmt: skip
    x1, x2 = result.x[..., 0], result.x[..., 1]
    r = x2 - B * (x1**2 - S2)
    assert_z_ok({"E x1": z_score(x1, 0.0), "E x1^2": z_score(x1**2, S2),
                 "E r": z_score(r, 0.0), "E r^2": z_score(r**2, 1.0),
                 "E x1 r": z_score(x1 * r, 0.0)})  # fmt: skip


@pytest.mark.slow
@_DIVERGENCES_REPORTED
def test_neutra_funnel_moments():
    """Neal's funnel (d = 10): E[v] = 0 and var(v) = 9 from the mapped draws.

    The flow is fitted 4000 steps and HMC targets acceptance 0.95: with 1500 steps and the
    default 0.8, var(v) fell short in every run (z −4.9, −2.3, −3.1 over sampling seeds 1–3;
    the chains miss the neck). Measured with these settings: z −2.3, −2.5, +0.5 (var(v)
    8.2, 8.2, 9.3), no divergent transitions."""
    target = langevin.targets.neals_funnel(10)
    result = neutra(target, flow=realnvp_init(10, 6, (32, 32), seed=0), fit_steps=4000,
                    chains=4, warmup=500, draws=1500, seed=1, target_acceptance=0.95,
                    progress=False)  # fmt: skip
    v = result.x[..., 0]
    assert_z_ok({"E[v]": z_score(v, 0.0), "var(v)": z_score(v**2, 9.0)}, Z_CRIT)
