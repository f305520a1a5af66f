"""Discrete walk-jump sampling on one-hot sequences (Frey et al. 2024, ALGORITHMS.md §8b).

A sequence ``a = (a_1, ..., a_L)`` over an alphabet of V letters is embedded as the one-hot
array ``x ∈ {0, 1}^{L×V}`` (flattened to d = L·V), smoothed with one noise level,
``y = x + σ ε``, walked on with any kernel of the package (:class:`~.walk_jump.WalkJump`)
and mapped back by the jump and an argmax per position:

    â_l = argmax_v x̂(y)_{l, v},    x̂(y) = y + σ² ∇log p_σ(y) = E[x | y].

For a law p on sequences the smoothed density is *exactly* a Gaussian mixture with one
component per sequence, ``p_σ = Σ_a p(a) N(onehot(a), σ² I)``
(:meth:`SequenceLaw.smoothed`); a trained denoiser (:mod:`.denoisers`, trained on one-hot
samples) replaces it when only samples are known, as in the paper (antibody sequences there;
here a small synthetic family whose law is known exactly: a Markov chain over a short
alphabet, :func:`markov_chain_law`).

The law of the output ``â(Y)``, Y ~ p_σ, is not p (the argmax of a posterior mean is a
decision, not a draw), but it converges to p as σ → 0; :meth:`SequenceLaw.procedure_law`
estimates it from exact draws of Y so that a walk-jump run can be checked against what it
should give, and :func:`total_variation` measures the distance to p itself.

References:
    Frey, N. C., Berenberg, D., Zadorozhny, K., Kleinhenz, J., Lafrance-Vanasse, J., Hotzel,
    I., Wu, Y., Ra, S., Bonneau, R., Cho, K., Loukas, A., Gligorijevic, V. and Saremi, S.
    (2024). Protein discovery with discrete walk-jump sampling. ICLR 2024, arXiv:2306.12360.
    Saremi, S. and Hyvärinen, A. (2019). Neural empirical Bayes. JMLR 20(181).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from langevin.targets.base import Target
from langevin.targets.mixture import gaussian_mixture

__all__ = [
    "one_hot", "decode", "SequenceLaw", "markov_chain_law", "sequence_codes",
    "frequencies", "total_variation",
]  # fmt: skip


def _positive_int(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive int; got {v!r}")
    return int(v)


def one_hot(sequences: np.ndarray, vocab: int) -> np.ndarray:
    """``(n, L)`` integer sequences → ``(n, L·V)`` flattened one-hot float64 arrays."""
    vocab = _positive_int("vocab", vocab)
    seqs = np.asarray(sequences)
    if seqs.ndim != 2 or not np.issubdtype(seqs.dtype, np.integer):
        raise ValueError(f"sequences must be an (n, L) integer array; got {seqs.shape} "
                         f"{seqs.dtype}")  # fmt: skip
    if seqs.size and (seqs.min() < 0 or seqs.max() >= vocab):
        raise ValueError(f"sequences must hold letters 0..{vocab - 1}")
    out = np.zeros((*seqs.shape, vocab))
    np.put_along_axis(out, seqs[..., None], 1.0, axis=-1)
    return out.reshape(seqs.shape[0], -1)


def decode(x: np.ndarray, length: int, vocab: int) -> np.ndarray:
    """The argmax per position: ``(..., L·V)`` → ``(..., L)`` integer sequences."""
    length, vocab = _positive_int("length", length), _positive_int("vocab", vocab)
    x = np.asarray(x)
    if x.shape[-1] != length * vocab:
        raise ValueError(f"x must have last axis L·V = {length * vocab}; got {x.shape}")
    return np.argmax(x.reshape(*x.shape[:-1], length, vocab), axis=-1)


def sequence_codes(sequences: np.ndarray, vocab: int) -> np.ndarray:
    """Each sequence as its index in lexicographic order (base-V number), ``(...,)``."""
    seqs = np.asarray(sequences)
    powers = vocab ** np.arange(seqs.shape[-1] - 1, -1, -1)
    return seqs @ powers


def frequencies(sequences: np.ndarray, vocab: int) -> np.ndarray:
    """Empirical probabilities of the V^L sequences (lexicographic order)."""
    seqs = np.asarray(sequences).reshape(-1, np.shape(sequences)[-1])
    codes = sequence_codes(seqs, vocab)
    return np.bincount(codes, minlength=vocab ** seqs.shape[-1]) / max(len(codes), 1)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """``½ Σ |p − q|``."""
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())


@dataclass(frozen=True)
class SequenceLaw:
    """An exactly known law on the V^L sequences of length L over V letters.

    Attributes:
        probabilities: ``(V^L,)`` in lexicographic order (:func:`sequence_codes`).
        length, vocab: L and V.
    """

    probabilities: np.ndarray
    length: int
    vocab: int

    @property
    def dim(self) -> int:
        return self.length * self.vocab

    def sequences(self) -> np.ndarray:
        """All V^L sequences, ``(V^L, L)``, lexicographic order."""
        return np.array(list(itertools.product(range(self.vocab), repeat=self.length)))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` exact draws, ``(n, L)``."""
        idx = rng.choice(len(self.probabilities), size=_positive_int("n", n),
                         p=self.probabilities)  # fmt: skip
        return self.sequences()[idx]

    def smoothed(self, sigma: float) -> Target:
        """The exact smoothed density ``p_σ = Σ_a p(a) N(onehot(a), σ² I)`` (a Gaussian
        mixture; sequences of probability 0 are left out), with ``.sigma``."""
        if not (isinstance(sigma, (int, float)) and sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"sigma must be positive and finite; got {sigma!r}")
        keep = self.probabilities > 0
        means = one_hot(self.sequences()[keep], self.vocab)
        w = self.probabilities[keep] / self.probabilities[keep].sum()
        t = gaussian_mixture(means, sds=np.full(len(w), float(sigma)), weights=w)
        t.sigma = float(sigma)
        return t

    def procedure_law(self, sigma: float, n: int, rng: np.random.Generator) -> np.ndarray:
        """Monte Carlo estimate (``n`` exact draws of Y ~ p_σ) of the law of the walk-jump
        output ``argmax x̂(Y)``, with the exact posterior mean x̂ (what an exact walk on
        the exact p_σ gives)."""
        means = one_hot(self.sequences(), self.vocab)
        logw = np.log(np.where(self.probabilities > 0, self.probabilities, 1e-300))
        x = one_hot(self.sample(n, rng), self.vocab)
        y = x + sigma * rng.standard_normal(x.shape)
        # r_a(y) ∝ p(a) exp(−‖y − onehot(a)‖²/(2σ²)); ‖onehot(a)‖² = L for every a
        logr = logw + (y @ means.T) / sigma**2
        logr -= logr.max(axis=1, keepdims=True)
        r = np.exp(logr)
        xhat = (r @ means) / r.sum(axis=1, keepdims=True)
        return frequencies(decode(xhat, self.length, self.vocab), self.vocab)


def markov_chain_law(initial: np.ndarray, transition: np.ndarray, length: int) -> SequenceLaw:
    """The law of a Markov chain ``a_1 ~ initial``, ``a_{l+1} | a_l ~ transition[a_l]``.

    Args:
        initial: ``(V,)`` probabilities.
        transition: ``(V, V)`` row-stochastic matrix.
        length: L.
    """
    initial = np.asarray(initial, dtype=np.float64)
    transition = np.asarray(transition, dtype=np.float64)
    length = _positive_int("length", length)
    vocab = initial.shape[0] if initial.ndim == 1 else 0
    if vocab < 2 or transition.shape != (vocab, vocab):
        raise ValueError(f"initial must be (V,) with V >= 2 and transition (V, V); got "
                         f"{initial.shape}, {transition.shape}")  # fmt: skip
    if np.any(initial < 0) or abs(initial.sum() - 1) > 1e-12:
        raise ValueError("initial must be a probability vector")
    if np.any(transition < 0) or np.any(np.abs(transition.sum(axis=1) - 1) > 1e-12):
        raise ValueError("transition must be row-stochastic")
    seqs = np.array(list(itertools.product(range(vocab), repeat=length)))
    prob = initial[seqs[:, 0]].copy()
    for i in range(1, length):
        prob *= transition[seqs[:, i - 1], seqs[:, i]]
    return SequenceLaw(prob, length, vocab)
