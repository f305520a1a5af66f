"""Discrete walk-jump on one-hot sequences (ALGORITHMS.md §8b) on a Markov-chain law over 3
letters, length 4 (81 sequences, d = 12), whose law is known exactly.

The smoothed density of one-hot data is exactly a mixture with one component per sequence;
walk-jump on it must give the law of argmax x̂(Y), Y ~ p_σ (estimated from 200 000 exact
draws), checked on every position's letter frequencies and on a pair statistic of the chain
with MCSE z-tests; that law is close to p (total variation, exact computation).
"""

from __future__ import annotations

import numpy as np
import pytest

import langevin
from langevin.backends import numba_backend
from langevin.diffusion import WalkJump
from langevin.diffusion.discrete import (
    decode,
    frequencies,
    markov_chain_law,
    one_hot,
    sequence_codes,
    total_variation,
)
from langevin.spec import draw_numpy
from tests.stats_helpers import assert_z_ok, z_score

INITIAL = [0.6, 0.3, 0.1]
TRANSITION = [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]]
L, V = 4, 3


def law():
    return markov_chain_law(INITIAL, TRANSITION, L)


def test_markov_law_and_one_hot_coding():
    p = law()
    assert p.probabilities.shape == (V**L,)
    np.testing.assert_allclose(p.probabilities.sum(), 1.0, atol=1e-14)
    # P(a = (0, 0, 1, 2)) = 0.6 · 0.7 · 0.2 · 0.3
    code = sequence_codes(np.array([0, 0, 1, 2]), V)
    np.testing.assert_allclose(p.probabilities[code], 0.6 * 0.7 * 0.2 * 0.3, rtol=1e-14)
    seqs = p.sample(1000, np.random.default_rng(0))
    np.testing.assert_array_equal(decode(one_hot(seqs, V), L, V), seqs)
    with pytest.raises(ValueError, match="transition"):
        markov_chain_law(INITIAL, np.eye(2), L)
    with pytest.raises(ValueError, match="sequences"):
        one_hot(np.array([[0, 3]]), V)
    with pytest.raises(ValueError, match="sigma"):
        p.smoothed(0.0)


def _features(seqs: np.ndarray) -> dict[str, np.ndarray]:
    out = {f"a{l}={v}": (seqs[..., l] == v).astype(float) for l in range(L) for v in range(V - 1)}
    out["a0=a1"] = (seqs[..., 0] == seqs[..., 1]).astype(float)
    out["a2=a3"] = (seqs[..., 2] == seqs[..., 3]).astype(float)
    return out


def test_discrete_walk_jump_gives_the_law_of_the_denoised_argmax():
    """MALA walk (h = 0.1) on the exact p_σ (σ = 0.6), jumps decoded by argmax: letter
    frequencies per position and pair statistics equal those of argmax x̂(Y), Y ~ p_σ exact
    (z-tests with the chains' MCSE and the reference's own standard error)."""
    p, sigma = law(), 0.6
    rng = np.random.default_rng(1)
    n_ref = 200_000
    # exact reference draws of the procedure's output (argmax of the exact posterior mean)
    ref_law = p.procedure_law(sigma, n_ref, rng)
    ref = p.sequences()[rng.choice(V**L, size=n_ref, p=ref_law)]
    # the Numba engine on drawn noise, fixed step (the loop tests/test_walk_jump.py compiles)
    kernel, chains, steps, burn = WalkJump(langevin.MALA(0.1), sigma), 4, 3300, 300
    noise = draw_numpy(kernel.noise(L * V), np.random.default_rng(2), (chains, steps))
    prepared = numba_backend.prepare(kernel, p.smoothed(sigma), L * V, np.float64)
    state = numba_backend.init(prepared, np.full((chains, L * V), 1.0 / V))
    run = numba_backend.run(prepared, state, steps, np.full(chains, 0.1), noise=noise)
    seqs = decode(run.position[:, burn:], L, V)
    got, want = _features(seqs), _features(ref)
    # the reference is itself a Monte Carlo estimate: its s.e. is that of 2 × n_ref draws
    # (the law is estimated from n_ref draws, then resampled n_ref times)
    zs = {k: z_score(got[k], want[k].mean(), want[k].std() * np.sqrt(2.0 / n_ref)) for k in got}
    assert_z_ok(zs)
    # and the procedure's law is close to p itself at this σ (exact TV of the estimate)
    assert total_variation(ref_law, p.probabilities) < 0.06
    assert total_variation(frequencies(seqs, V), p.probabilities) < 0.12


@pytest.mark.slow
def test_discrete_walk_jump_with_a_trained_denoiser():
    """A denoiser trained on 20 000 one-hot samples (σ = 0.6, 1500 Adam steps) drives a
    score-only kinetic walk; the decoded sequences' law is within 0.12 total variation of p
    (the exact-score procedure is within 0.04; the rest is training error and Monte
    Carlo)."""
    from langevin.diffusion.denoisers import denoiser_target, train_denoiser

    p, sigma = law(), 0.6
    rng = np.random.default_rng(3)
    data = one_hot(p.sample(20_000, rng), V)
    params, _ = train_denoiser(data, sigma, steps=1500, batch=512, hidden=(64, 64), seed=0)
    inner = langevin.KineticLangevin(0.1, friction=1.0, discretization="aboba")
    trace = langevin.sample(denoiser_target(params, sigma), WalkJump(inner, sigma,
                            score_only=True), chains=4, warmup=300, draws=3000, seed=4,
                            progress=False, initial_position=np.full(L * V, 1.0 / V))  # fmt: skip
    f = frequencies(decode(trace.draws, L, V), V)
    assert total_variation(f, p.probabilities) < 0.12
