"""Gaussian mixtures as the data law of a diffusion model: exact noised scores and samples.

A Gaussian mixture ``q_0 = Σ_k w_k N(μ_k, Σ_k)`` noised by the variance-preserving process
(:class:`~langevin.smc.diffusion.VPProcess`: ``x_t | x_0 ~ N(α_t x_0, σ_t² I)``,
``σ_t² = 1 − α_t²``; Song et al. 2021) stays a Gaussian mixture,

    q_t = Σ_k w_k N(α_t μ_k, α_t² Σ_k + σ_t² I),

so :class:`GaussianMixture` gives the exact score ``∇log q_t`` (a
:class:`~langevin.smc.diffusion.Score` with both backend forms) at every t. It also samples
the composed targets of the Feynman–Kac correctors (:mod:`langevin.smc.correctors`; Skreta
et al. 2025) exactly: the product of two mixtures is a mixture (:meth:`GaussianMixture.product`,
the Gaussian product rule of Petersen & Pedersen), and the annealed law ``q^β / Z`` is drawn
by rejection from a mixture envelope (:meth:`GaussianMixture.sample_power`).

This is not the target :func:`langevin.targets.gaussian_mixture` (:mod:`.mixture`), a plain
log density for MCMC kernels: this one is the data law of a diffusion, whose *noised* scores
are exact; :meth:`GaussianMixture.from_target` converts one into the other. It is public as
``langevin.smc.GaussianMixture`` and is not imported by :mod:`langevin.targets` (it builds on
:mod:`langevin.smc.diffusion`, and ``langevin.smc`` imports it).

References:
    Song et al. (2021), the VP process: see :mod:`langevin.smc.diffusion`.
    Skreta et al. (2025), the composed laws: see :mod:`langevin.smc.correctors`.
    Petersen, K. B. and Pedersen, M. S. (2012). The Matrix Cookbook, §8.1.8 (product of
    Gaussian densities).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from langevin.smc.diffusion import Score, VPProcess, _check_real
from langevin.smc.feynman_kac import _check_positive_int

__all__ = ["GaussianMixture"]


class MixtureData(NamedTuple):
    """The Numba/JAX data of a mixture score: log-weights, means, eigenvectors and
    eigenvalues of the covariances, the process's ``(b_min, b_max, T)``."""

    log_weights: np.ndarray
    means: np.ndarray
    eigvecs: np.ndarray
    eigvals: np.ndarray
    process: np.ndarray


@numba.njit(cache=True)
def _mixture_score_numba(x, t, data):
    """``∇log q_t(x)`` for ``q_t = Σ_k w_k N(α_t μ_k, α_t² Σ_k + σ_t² I)`` (VP-noised mixture).

    With ``Σ_k = V_k diag(λ_k) V_kᵀ`` the noised covariance is ``V_k diag(α² λ_k + σ²) V_kᵀ``:
    ``z = V_kᵀ (x − α μ_k)``, ``ℓ_k = log w_k − ½ Σ log(α² λ + σ²) − ½ Σ z² / (α² λ + σ²)``,
    score ``Σ_k r_k (−V_k (z / (α² λ + σ²)))`` with responsibilities ``r_k = softmax(ℓ)_k``,
    accumulated by a running log-sum-exp (one pass; finite far from every mode). Element
    loops: for the small d of these targets, BLAS calls and temporaries cost more than the
    arithmetic (1.15 µs per call with ``np.dot`` at d = 1, K = 1).
    """
    log_weights, means, eigvecs, eigvals, process = data
    log_alpha = -0.5 * (process[0] * t + 0.5 * (process[1] - process[0]) * t * t / process[2])
    alpha = math.exp(log_alpha)
    sigma2 = -math.expm1(2.0 * log_alpha)
    n_comp, dim = means.shape
    u = np.empty(dim)
    out = np.zeros(dim)
    top = -np.inf
    total = 0.0
    for k in range(n_comp):
        ell = log_weights[k]
        for j in range(dim):
            z = 0.0
            for i in range(dim):
                z += eigvecs[k, i, j] * (x[i] - alpha * means[k, i])
            var = alpha * alpha * eigvals[k, j] + sigma2
            u[j] = z / var
            ell -= 0.5 * (math.log(var) + z * u[j])
        new_top = max(top, ell)
        shrink = math.exp(top - new_top)
        e = math.exp(ell - new_top)
        total = total * shrink + e
        for i in range(dim):
            g = 0.0
            for j in range(dim):
                g += eigvecs[k, i, j] * u[j]
            out[i] = out[i] * shrink - e * g
        top = new_top
    for i in range(dim):
        out[i] /= total
    return out


def _mixture_score_jax(x, t, data):
    """The JAX form of :func:`_mixture_score_numba` (vectorised over components)."""
    import jax
    import jax.numpy as jnp

    log_weights, means, eigvecs, eigvals, process = data
    log_alpha = -0.5 * (process[0] * t + 0.5 * (process[1] - process[0]) * t * t / process[2])
    alpha = jnp.exp(log_alpha)
    sigma2 = -jnp.expm1(2.0 * log_alpha)
    z = jnp.einsum("ki,kij->kj", x[None, :] - alpha * means, eigvecs)
    var = alpha * alpha * eigvals + sigma2
    u = z / var
    ell = log_weights - 0.5 * jnp.sum(jnp.log(var) + z * u, axis=1)
    r = jax.nn.softmax(ell)
    return -jnp.einsum("k,kij,kj->i", r, eigvecs, u)


class GaussianMixture:
    """A Gaussian mixture ``q_0 = Σ_k w_k N(μ_k, Σ_k)`` as the data law of a VP diffusion.

    Its noised law ``q_t = Σ_k w_k N(α_t μ_k, α_t² Σ_k + σ_t² I)`` is again a mixture
    (:meth:`noised`), so the score is exact (:meth:`score`, both backends). Exact samples of
    the composed laws the correctors target: :meth:`sample` (``q``), :meth:`product` (the
    normalised product of two mixtures is the mixture of the K₁K₂ pairwise Gaussian
    products), :meth:`sample_power` (``q^β / Z`` by rejection).

    Args:
        weights: (K,) positive, summing to 1.
        means: (K, d).
        covs: (K, d, d) symmetric positive definite.

    Example:
        >>> m = GaussianMixture([0.5, 0.5], [[-2.0], [2.0]], [[[1.0]], [[1.0]]])
        >>> m.dim, m.n_components
        (1, 2)
    """

    def __init__(self, weights, means, covs) -> None:
        weights = np.asarray(weights, dtype=np.float64)
        means = np.asarray(means, dtype=np.float64)
        covs = np.asarray(covs, dtype=np.float64)
        if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
            raise ValueError(f"means must be a non-empty (K, d) array; got shape {means.shape}")
        k, d = means.shape
        if weights.shape != (k,):
            raise ValueError(f"weights must have shape ({k},); got {weights.shape}")
        if not np.all(np.isfinite(weights) & (weights > 0)) or abs(weights.sum() - 1) > 1e-10:
            raise ValueError(f"weights must be positive and sum to 1; got {weights}")
        if covs.shape != (k, d, d):
            raise ValueError(f"covs must have shape ({k}, {d}, {d}); got {covs.shape}")
        if not np.all(np.isfinite(means)) or not np.all(np.isfinite(covs)):
            raise ValueError("means and covs must be finite")
        eigvals = np.empty((k, d))
        eigvecs = np.empty((k, d, d))
        for j in range(k):
            if not np.allclose(covs[j], covs[j].T, rtol=1e-10, atol=1e-14):
                raise ValueError(f"covs[{j}] must be symmetric")
            vals, vecs = np.linalg.eigh(covs[j])
            if not vals.min() > 0:
                raise ValueError(f"covs[{j}] must be positive definite; eigenvalues {vals}")
            eigvals[j], eigvecs[j] = vals, vecs
        self.weights = weights
        self.means = np.ascontiguousarray(means)
        self.covs = np.ascontiguousarray(covs)
        self.eigvals = np.ascontiguousarray(eigvals)
        self.eigvecs = np.ascontiguousarray(eigvecs)

    @classmethod
    def from_target(cls, target) -> GaussianMixture:
        """The mixture of a :func:`langevin.targets.gaussian_mixture` target."""
        comps = getattr(target, "components", None)
        if comps is None:
            raise TypeError("target must come from langevin.targets.gaussian_mixture")
        return cls(comps["weights"], comps["means"], comps["covs"])

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def mean(self) -> np.ndarray:
        return self.weights @ self.means

    def cov(self) -> np.ndarray:
        m = self.mean()
        second = np.einsum("k,kij->ij", self.weights,
                           self.covs + self.means[:, :, None] * self.means[:, None, :])  # fmt: skip
        return second - np.outer(m, m)

    def noised(self, process: VPProcess, t: float) -> GaussianMixture:
        """The law ``q_t`` of ``x_t`` when ``x_0 ~`` this mixture."""
        a, s2 = float(process.alpha(t)), float(process.sigma2(t))
        return GaussianMixture(self.weights, a * self.means,
                               a * a * self.covs + s2 * np.eye(self.dim))  # fmt: skip

    def _component_logpdf(self, x: np.ndarray) -> np.ndarray:
        """``log N(x_n; μ_k, Σ_k)``, shape (n, K)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        z = np.einsum("nkd,kde->nke", x[:, None, :] - self.means[None], self.eigvecs)
        quad = np.sum(z * z / self.eigvals[None], axis=2)
        logdet = np.sum(np.log(self.eigvals), axis=1)
        return -0.5 * (quad + logdet[None] + self.dim * math.log(2 * math.pi))

    def logpdf(self, x) -> np.ndarray:
        """``log q(x_n)`` for points ``x`` (n, d)."""
        from scipy.special import logsumexp

        return logsumexp(self._component_logpdf(x) + np.log(self.weights)[None], axis=1)

    def sample(self, n: int, seed=None) -> np.ndarray:
        """n independent draws (n, d)."""
        n = _check_positive_int("n", n)
        rng = np.random.default_rng(seed)
        k = rng.choice(self.n_components, size=n, p=self.weights)
        z = rng.standard_normal((n, self.dim))
        scale = self.eigvecs * np.sqrt(self.eigvals)[:, None, :]  # V diag(√λ)
        return self.means[k] + np.einsum("nij,nj->ni", scale[k], z)

    def product(self, other: GaussianMixture) -> GaussianMixture:
        """The normalised product ``q · q' / Z`` (exact: a mixture of K·K' Gaussians).

        ``N(μ, Σ) N(μ', Σ') = N(μ; μ', Σ + Σ') N(m, C)`` with ``C = (Σ⁻¹ + Σ'⁻¹)⁻¹``,
        ``m = C (Σ⁻¹ μ + Σ'⁻¹ μ')``; the pair's weight is ``w_k w'_j N(μ_k; μ'_j, Σ_k + Σ'_j)``.
        """
        if not isinstance(other, GaussianMixture) or other.dim != self.dim:
            raise ValueError("other must be a GaussianMixture of the same dimension")
        weights, means, covs = [], [], []
        d = self.dim
        for k in range(self.n_components):
            for j in range(other.n_components):
                pk = np.linalg.inv(self.covs[k])
                pj = np.linalg.inv(other.covs[j])
                c = np.linalg.inv(pk + pj)
                c = 0.5 * (c + c.T)
                means.append(c @ (pk @ self.means[k] + pj @ other.means[j]))
                covs.append(c)
                s = self.covs[k] + other.covs[j]
                r = self.means[k] - other.means[j]
                _, logdet = np.linalg.slogdet(2 * math.pi * s)
                weights.append(math.log(self.weights[k] * other.weights[j])
                               - 0.5 * (logdet + r @ np.linalg.solve(s, r)))  # fmt: skip
        lw = np.array(weights)
        w = np.exp(lw - lw.max())
        return GaussianMixture(w / w.sum(), np.array(means).reshape(-1, d), np.array(covs))

    def _power_envelope(self, beta: float):
        """``(log v_k C_k, component covariances Σ_k/β)`` of the envelope
        ``E(x) = Σ_k v_k N(x; μ_k, Σ_k)^β = Σ_k v_k C_k N(x; μ_k, Σ_k/β) ≥ q(x)^β``."""
        d = self.dim
        logdet = np.sum(np.log(self.eigvals), axis=1)
        # C_k = ∫ N(μ_k, Σ_k)^β = (2π)^{−d(β−1)/2} det Σ_k^{−(β−1)/2} β^{−d/2}
        log_c = -0.5 * d * (beta - 1) * math.log(2 * math.pi) - 0.5 * (beta - 1) * logdet
        log_c = log_c - 0.5 * d * math.log(beta)
        # β ≥ 1: (Σ w f)^β ≤ Σ w f^β (Jensen); β ≤ 1: (Σ a)^β ≤ Σ a^β (subadditivity), a = w f
        log_v = np.log(self.weights) * (1.0 if beta >= 1 else beta)
        return log_v + log_c, log_v

    def sample_power(self, beta: float, n: int, seed=None) -> np.ndarray:
        """n independent exact draws from ``q^β / ∫ q^β`` (the annealed law), by rejection.

        Envelope ``E = Σ_k v_k N(μ_k, Σ_k)^β ≥ q^β`` with ``v_k = w_k`` for β ≥ 1 (Jensen:
        ``(Σ w_k f_k)^β ≤ Σ w_k f_k^β``) and ``v_k = w_k^β`` for β < 1 (subadditivity of
        ``u^β``); ``N(μ, Σ)^β`` is ``C_k N(μ_k, Σ_k/β)``, so E is a mixture to draw from;
        accept with probability ``q(x)^β / E(x) ≤ 1``.
        """
        beta = _check_real("beta", beta, positive=True)
        n = _check_positive_int("n", n)
        rng = np.random.default_rng(seed)
        log_mass, log_v = self._power_envelope(beta)
        probs = np.exp(log_mass - log_mass.max())
        probs /= probs.sum()
        proposal = GaussianMixture(probs, self.means, self.covs / beta)
        from scipy.special import logsumexp

        out: list[np.ndarray] = []
        have = 0
        while have < n:
            m = max(2 * (n - have), 1000)
            x = proposal.sample(m, rng)
            comp = self._component_logpdf(x)
            log_q = logsumexp(comp + np.log(self.weights)[None], axis=1)
            log_env = logsumexp(beta * comp + log_v[None], axis=1)
            keep = np.log(rng.random(m)) < beta * log_q - log_env
            out.append(x[keep])
            have += int(keep.sum())
        return np.concatenate(out)[:n]

    def score(self, process: VPProcess | None = None, *, name: str = "mixture") -> Score:
        """The exact score ``∇log q_t`` of this mixture noised by ``process`` (both forms)."""
        process = VPProcess() if process is None else process
        if not isinstance(process, VPProcess):
            raise TypeError(f"process must be a VPProcess; got {type(process).__name__}")
        data = MixtureData(np.log(self.weights), self.means, self.eigvecs, self.eigvals,
                           process.params())  # fmt: skip

        def jax_fn(x, t):
            import jax.numpy as jnp

            return _mixture_score_jax(x, t, MixtureData(*(jnp.asarray(a, x.dtype) for a in data)))

        score = Score(jax_fn=jax_fn, numba_fn=_mixture_score_numba, numba_data=data, name=name)
        score.mixture = self
        score.process = process
        return score
