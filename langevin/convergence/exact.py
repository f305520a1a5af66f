"""Exact laws of linear chains on Gaussian targets, and the W2 distances that follow.

A kernel that is affine on a Gaussian target (see :mod:`.twin`), ``z' = M z + c + B ξ``,
maps a Gaussian law of ``z`` to a Gaussian law: from ``N(μ, C)``,

    μ' = M μ + c,        C' = M C Mᵀ + B Bᵀ,

and its stationary law is ``N(μ∞, S)`` with ``(I − M) μ∞ = c`` and the discrete Lyapunov
equation ``S = M S Mᵀ + B Bᵀ``. The law of the position after ``k`` steps is the
``x``-block of that Gaussian, so its distance to ``π = N(m, Σ)`` is the closed form
:func:`langevin.diagnostics.gaussian_w2` (exact; no sampling).

**Random coefficients** (the randomized midpoint: ``M = M(α)``, ``B = B(α)`` with a fresh
``α ~ U[0, 1]`` each step, independent of the state). The law is then a mixture of Gaussians,
but its first two moments still propagate exactly (ALGORITHMS.md §0):

    μ' = E[M] μ + E[c],        R' = E[M R Mᵀ] + E[M μ cᵀ + c μᵀ Mᵀ + c cᵀ] + E[B Bᵀ]

for the second moment ``R = E[z zᵀ]``; in vectorised form the stationary ``R`` solves
``(I − E[M ⊗ M]) vec R = vec E[B Bᵀ]`` (centred target, ``c = 0``). The expectations over
``α`` are Gauss–Legendre quadratures on ``[0, 1]`` with :data:`N_NODES` nodes; the
coefficients are analytic in ``α`` (exponentials of ``γαh``), so the quadrature is exact
to rounding. The Gaussian formula applied to these exact moments is **not** the W2 of the
mixture but a lower bound on it (Gelbrich 1990: for any laws with these means and
covariances, ``W2 ≥`` the Gaussian formula); it is reported as such.

**Per-eigendirection form.** For ``π = N(m, Q diag(1/λ) Qᵀ)`` and a kernel with isotropic
parameters, the chain in eigen-coordinates ``y = Qᵀ(x − m)`` moves coordinate by coordinate
(:func:`.twin.extract_blocks` reads the blocks and checks this), so ``k``-step laws and
stationary laws are computed per coordinate with ``nf × nf`` blocks for any ``k`` by matrix
powers. For deterministic coefficients the position's law is then a product of 1-D
Gaussians, and ``W2² = Σ_i (μ_i² + (√C_i − 1/√λ_i)²)`` exactly. For random coefficients
(shared ``α`` across coordinates) the same sum of per-coordinate Gaussian formulas is a lower
bound: ``W2²(μ, π) ≥ Σ_i W2²(μ_i, π_i)`` for the marginals (project any coupling) and each
term is bounded below as above.

Reference: Gelbrich, M. (1990). On a formula for the L2 Wasserstein metric between
measures on Euclidean and Hilbert spaces. Math. Nachr. 147, 185–203.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from langevin.convergence.twin import AffineMap, extract_affine, extract_blocks, uniform_fields
from langevin.diagnostics import gaussian_w2
from langevin.kernels.base import Kernel

__all__ = [
    "N_NODES",
    "BlockOperator",
    "FullChain",
    "block_operator",
    "full_chain",
    "gauss_legendre_01",
    "grads_to_accuracy",
]

#: Gauss–Legendre nodes for expectations over the midpoint's uniform.
N_NODES = 64


def gauss_legendre_01(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``n``-point Gauss–Legendre quadrature on ``[0, 1]``."""
    t, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (t + 1.0), 0.5 * w


def _quadrature(kernel: Kernel, dim: int, n_nodes: int) -> list[tuple[dict, float]]:
    """``[(uniforms, weight)]``: one point for a kernel without uniforms, else the nodes."""
    names = uniform_fields(kernel, dim)
    if not names:
        return [({}, 1.0)]
    if len(names) > 1:
        raise NotImplementedError(
            f"{type(kernel).__name__} draws {len(names)} uniforms per step; the exact moment "
            "propagation handles one (the randomized midpoint's α)"
        )
    nodes, weights = gauss_legendre_01(n_nodes)
    return [({names[0]: float(a)}, float(w)) for a, w in zip(nodes, weights)]


# --------------------------------------------------------------------------------------------
# Per-eigendirection blocks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockOperator:
    """The moment recursions of a chain on ``N(0, diag(1/λ))``, coordinate by coordinate.

    Attributes:
        precisions: λ, shape ``(d,)``.
        mean_op: ``E[M]``, ``(d, nf, nf)``.
        second_op: ``E[M ⊗ M]``, ``(d, nf², nf²)`` (acts on row-major ``vec R``).
        noise_second: ``E[B Bᵀ]``, ``(d, nf, nf)``.
        random: True when the coefficients are random (moments only; W2 a lower bound).
        residual: worst affinity residual of the extractions.
    """

    precisions: np.ndarray
    mean_op: np.ndarray
    second_op: np.ndarray
    noise_second: np.ndarray
    random: bool
    residual: float
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def nf(self) -> int:
        return self.mean_op.shape[-1]

    def spectral_radius(self) -> float:
        """Largest spectral radius of the second-moment operator over coordinates (< 1:
        the moments converge; its distance to 1 sets how fast)."""
        return float(np.max(np.abs(np.linalg.eigvals(self.second_op))))

    def stationary_second(self) -> np.ndarray:
        """Stationary second moment ``R∞`` per coordinate, ``(d, nf, nf)`` (the stationary
        covariance: the stationary mean is 0)."""
        if "r_inf" not in self._cache:
            nf = self.nf
            eye = np.eye(nf * nf)
            b = self.noise_second.reshape(-1, nf * nf, 1)
            vec = np.linalg.solve(eye - self.second_op, b)
            r = vec.reshape(-1, nf, nf)
            self._cache["r_inf"] = 0.5 * (r + np.swapaxes(r, 1, 2))
        return self._cache["r_inf"]

    def stationary_w2(self) -> float:
        """``W2`` (exact) or its lower bound (random coefficients) between the stationary
        position law and π."""
        var = self.stationary_second()[:, 0, 0]
        sd = 1.0 / np.sqrt(self.precisions)
        return float(np.sqrt(np.sum((np.sqrt(var) - sd) ** 2)))

    def w2_path(self, y0: np.ndarray, cov0: np.ndarray, ks: Sequence[int]) -> np.ndarray:
        """``W2`` (or its lower bound) between the law after each ``k`` in ``ks`` and π.

        Args:
            y0: the start's mean per coordinate, ``(d, nf)``.
            cov0: its covariance per coordinate, ``(d, nf, nf)``.
            ks: non-decreasing step counts.
        """
        nf = self.nf
        d = self.precisions.shape[0]
        sd = 1.0 / np.sqrt(self.precisions)
        # Batch axis last: NumPy's batched matmul on thousands of 2×2 matrices is ~20 times
        # slower than these broadcast products.
        mean_op = np.moveaxis(self.mean_op, 0, -1)
        y = y0.T  # (nf, d)
        r_inf = self.stationary_second()
        if not self.random:
            # Gaussian laws: C_k = S + M^k (C_0 − S) M^kᵀ needs only the powers of M, and
            # only its position row.
            gap = np.moveaxis(cov0 - r_inf, 0, -1)
        else:
            second_op = np.moveaxis(self.second_op, 0, -1)
            r_inf = r_inf.reshape(d, nf * nf).T
            r0 = (cov0 + y0[:, :, None] * y0[:, None, :]).reshape(d, nf * nf).T
            sec_pow = _eye_batch(nf * nf, d)
        mean_pow = _eye_batch(nf, d)
        out, last = [], 0
        for k in ks:
            k = int(k)
            if k < last:
                raise ValueError("ks must be non-decreasing")
            if k > last:
                mean_pow = _mm(_mpow(mean_op, k - last), mean_pow)
                if self.random:
                    sec_pow = _mm(_mpow(second_op, k - last), sec_pow)
                last = k
            row = mean_pow[0]  # (nf, d): position row of M^k
            mu = np.sum(row * y, axis=0)
            if self.random:
                r = r_inf + np.sum(sec_pow * (r0 - r_inf)[None, :, :], axis=1)
                var = r[0] - mu**2
            else:
                var = r_inf[:, 0, 0] + np.sum(row[:, None, :] * gap * row[None, :, :], axis=(0, 1))
            var = np.maximum(var, 0.0)
            out.append(math.sqrt(float(np.sum(mu**2 + (np.sqrt(var) - sd) ** 2))))
        return np.array(out)


def _eye_batch(n: int, d: int) -> np.ndarray:
    return np.repeat(np.eye(n)[:, :, None], d, axis=2)


def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched matrix product with the batch axis last: ``(n, m, d) @ (m, p, d)``.

    Loops over the (at most 4 × 4) entries, each a contiguous vector operation over the batch.
    """
    n, m, _ = a.shape
    p = b.shape[1]
    out = np.empty((n, p, a.shape[2]))
    for i in range(n):
        for j in range(p):
            acc = a[i, 0] * b[0, j]
            for l in range(1, m):
                acc += a[i, l] * b[l, j]
            out[i, j] = acc
    return out


def _mpow(a: np.ndarray, k: int) -> np.ndarray:
    """``a^k`` for a batch ``(n, n, d)`` of matrices, by repeated squaring."""
    result = None
    base = a
    while k:
        if k & 1:
            result = base if result is None else _mm(result, base)
        k >>= 1
        if k:
            base = _mm(base, base)
    return _eye_batch(a.shape[0], a.shape[2]) if result is None else result


def block_operator(kernel: Kernel, precisions: np.ndarray, n_nodes: int = N_NODES) -> BlockOperator:
    """Read ``kernel``'s per-coordinate maps on ``N(0, diag(1/precisions))`` off its twin and
    average over its uniform (if any) by quadrature."""
    lam = np.asarray(precisions, dtype=np.float64)
    d = lam.shape[0]
    points = _quadrature(kernel, d, n_nodes)
    mean_op = second_op = noise_second = None
    residual = 0.0
    for uniforms, w in points:
        maps = extract_blocks(kernel, lam, uniforms)
        scale = max(1.0, float(np.max(np.abs(maps.M))))
        if np.max(np.abs(maps.c)) > 1e-10 * scale:
            raise RuntimeError(
                f"{type(kernel).__name__}: a centred Gaussian should give c = 0 "
                f"(translation equivariance); got max |c| = {np.max(np.abs(maps.c)):.3g}"
            )
        m = maps.M
        kron = np.einsum("iab,icd->iacbd", m, m).reshape(d, m.shape[1] ** 2, m.shape[1] ** 2)
        bbt = np.einsum("iaj,ibj->iab", maps.B, maps.B)
        mean_op = w * m if mean_op is None else mean_op + w * m
        second_op = w * kron if second_op is None else second_op + w * kron
        noise_second = w * bbt if noise_second is None else noise_second + w * bbt
        residual = max(residual, maps.residual)
    return BlockOperator(lam, mean_op, second_op, noise_second, len(points) > 1, residual)


def start_blocks(eigen_start: np.ndarray, nf: int, velocity_var: float = 1.0):
    """Mean and covariance per coordinate of the start ``δ_{x₀} ⊗ N(0, velocity_var)``."""
    d = eigen_start.shape[0]
    y0 = np.zeros((d, nf))
    y0[:, 0] = eigen_start
    cov0 = np.zeros((d, nf, nf))
    if nf == 2:
        cov0[:, 1, 1] = velocity_var
    return y0, cov0


# --------------------------------------------------------------------------------------------
# Full maps on a rotated Gaussian
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FullChain:
    """A linear chain on a (rotated) Gaussian ``N(m, Σ)``: one affine map per quadrature
    node of its uniform (one map when it has none)."""

    maps: tuple[AffineMap, ...]
    weights: tuple[float, ...]
    mean: np.ndarray
    cov: np.ndarray

    @property
    def random(self) -> bool:
        return len(self.maps) > 1

    @property
    def dim(self) -> int:
        return self.maps[0].dim

    def stationary_w2(self) -> float:
        """Exact stationary ``W2`` (deterministic coefficients only)."""
        if self.random:
            raise ValueError("random coefficients: use the per-eigendirection BlockOperator")
        a = self.maps[0]
        n = a.M.shape[0]
        mu = np.linalg.solve(np.eye(n) - a.M, a.c)
        s = scipy.linalg.solve_discrete_lyapunov(a.M, a.noise_cov)
        s = 0.5 * (s + s.T)
        d = self.dim
        return gaussian_w2(mu[:d], s[:d, :d], self.mean, self.cov)

    def moments(
        self, z0: np.ndarray, cov0: np.ndarray, ks: Sequence[int]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Mean and covariance of the full state after each ``k`` in ``ks`` (non-decreasing)
        from ``N(z0, cov0)``, by stepping the moment recursions (module docstring): the law
        itself for deterministic coefficients, its first two moments otherwise."""
        w = np.asarray(self.weights)
        m = np.stack([a.M for a in self.maps])  # (Q, n, n)
        mt = np.swapaxes(m, 1, 2)
        c = np.stack([a.c for a in self.maps])  # (Q, n)
        q_bar = np.einsum("q,qab->ab", w, np.stack([a.noise_cov for a in self.maps]))
        m_bar = np.einsum("q,qab->ab", w, m)
        c_bar = w @ c
        cc_bar = np.einsum("q,qa,qb->ab", w, c, c)
        mu, second = z0.astype(float).copy(), cov0 + np.outer(z0, z0)
        out, last = [], 0
        for k in ks:
            if int(k) < last:
                raise ValueError("ks must be non-decreasing")
            for _ in range(int(k) - last):
                mc = (w[:, None] * (m @ mu)).T @ c  # E[M mu c^T]
                new_second = ((w[:, None, None] * (m @ second)) @ mt).sum(axis=0) + mc + mc.T
                mu = m_bar @ mu + c_bar
                second = new_second + cc_bar + q_bar
                second = 0.5 * (second + second.T)
            last = int(k)
            cov = second - np.outer(mu, mu)
            out.append((mu.copy(), 0.5 * (cov + cov.T)))
        return out

    def w2_path(self, z0: np.ndarray, cov0: np.ndarray, ks: Sequence[int]) -> np.ndarray:
        """``W2`` (exact; a lower bound for random coefficients) after each ``k`` in ``ks``,
        from ``N(z0, cov0)``, by stepping the moment recursions (module docstring)."""
        d = self.dim
        return np.array(
            [
                gaussian_w2(mu[:d], cov[:d, :d], self.mean, self.cov)
                for mu, cov in self.moments(z0, cov0, ks)
            ]
        )

    def coupling_path(self, second0: np.ndarray, ks: Sequence[int]) -> np.ndarray:
        """``√E‖P D_k‖²`` after each ``k`` in ``ks`` for the difference ``D = Z − Z̃`` of two
        copies of the chain driven by the same noise (and the same uniform), where ``P``
        keeps the position and ``second0 = E[D_0 D_0ᵀ]``.

        Shared noise cancels: ``D_{k+1} = M D_k`` (``c`` and ``B ξ`` are the same for both
        copies), so ``E[D_{k+1} D_{k+1}ᵀ] = E[M E[D_k D_kᵀ] Mᵀ]``, the expectation over the
        shared uniform by quadrature. Exact for deterministic and random coefficients.
        """
        d = self.dim
        w = np.asarray(self.weights)
        m = np.stack([a.M for a in self.maps])
        mt = np.swapaxes(m, 1, 2)
        r = np.array(second0, dtype=float)
        out, last = [], 0
        for k in ks:
            if int(k) < last:
                raise ValueError("ks must be non-decreasing")
            for _ in range(int(k) - last):
                r = ((w[:, None, None] * (m @ r)) @ mt).sum(axis=0)
                r = 0.5 * (r + r.T)
            last = int(k)
            out.append(math.sqrt(max(float(np.trace(r[:d, :d])), 0.0)))
        return np.array(out)


def full_chain(kernel: Kernel, problem, n_nodes: int = N_NODES) -> FullChain:
    """Read ``kernel``'s affine maps on ``problem`` (a GaussianProblem) off its twin."""
    points = _quadrature(kernel, problem.dim, n_nodes)
    vg = problem.numpy_value_and_grad()
    maps = tuple(extract_affine(kernel, vg, problem.dim, u) for u, _ in points)
    return FullChain(maps, tuple(w for _, w in points), problem.mean, problem.cov)


# --------------------------------------------------------------------------------------------
# Cost to reach an accuracy
# --------------------------------------------------------------------------------------------


def _k_grid(k_max: int, ratio: float = 1.2) -> np.ndarray:
    ks = set(range(0, min(k_max, 10) + 1))
    k = 10.0
    while k < k_max:
        k *= ratio
        ks.add(min(math.ceil(k), k_max))
    return np.array(sorted(ks))


def steps_to_accuracy(op: BlockOperator, y0, cov0, eps: float, k_cap: int = 10**8) -> float:
    """The first ``k`` after which ``W2(k) ≤ eps`` for good (``inf`` if never).

    ``W2`` is evaluated on a geometric grid of ``k`` (ratio 1.2, every ``k ≤ 10``) up to where
    the transient has decayed by ``e^{−40}``; the first grid point from which every later one
    is within ``eps`` is then refined by bisection against its predecessor (assuming the
    curve crosses ``eps`` once between two grid points 20% apart; the kernels here are run
    at friction 2 on precisions ≤ 1, where no mode oscillates).
    """
    if op.stationary_w2() >= eps:
        return math.inf
    rho = op.spectral_radius()
    if not rho < 1.0:
        return math.inf
    k_max = int(min(k_cap, math.ceil(40.0 / max(-math.log(rho), 1e-300)) + 20))
    ks = _k_grid(k_max)
    w = op.w2_path(y0, cov0, ks)
    above = np.nonzero(w > eps)[0]
    if above.size == 0:
        return 0.0
    i = above[-1] + 1
    if i >= ks.size:
        return math.inf
    lo, hi = int(ks[i - 1]), int(ks[i])  # W2(lo) > eps >= W2(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if op.w2_path(y0, cov0, [mid])[0] <= eps:
            hi = mid
        else:
            lo = mid
    return float(hi)


def grads_to_accuracy(
    make_kernel,
    precisions: np.ndarray,
    eigen_start: np.ndarray,
    eps: float,
    grads_per_step: float,
    h_grid: Sequence[float],
    refine: int = 6,
    n_nodes: int = 32,
) -> dict:
    """Minimise over the step size the gradient evaluations to reach ``W2 ≤ eps``.

    ``make_kernel(h)`` builds the kernel. A coarse log-grid of ``h`` is scanned, then
    ``refine`` log-spaced values between the best grid point's neighbours. Kernels with a
    random coefficient are averaged with ``n_nodes`` Gauss–Legendre nodes (32 agree with 64
    to 1e-12 here).

    Returns:
        ``{"h", "steps", "grads", "stationary_w2", "random"}`` at the best step size
        (``grads = inf`` when no step size reaches ``eps``).
    """

    def cost(h):
        op = block_operator(make_kernel(h), precisions, n_nodes=n_nodes)
        nf = op.nf
        y0, cov0 = start_blocks(eigen_start, nf)
        if op.spectral_radius() >= 1.0:
            return math.inf, math.inf, math.nan, op.random
        k = steps_to_accuracy(op, y0, cov0, eps)
        return k * grads_per_step, k, op.stationary_w2(), op.random

    grid = sorted(float(h) for h in h_grid)
    results = [(h, *cost(h)) for h in grid]
    best = min(range(len(results)), key=lambda i: results[i][1])
    if math.isfinite(results[best][1]) and refine > 0:
        lo = grid[max(best - 1, 0)]
        hi = grid[min(best + 1, len(grid) - 1)]
        for h in np.geomspace(lo, hi, refine + 2)[1:-1]:
            results.append((float(h), *cost(float(h))))
        best = min(range(len(results)), key=lambda i: results[i][1])
    h, grads, steps, w2_inf, random = results[best]
    return {"h": h, "steps": steps, "grads": grads, "stationary_w2": w2_inf, "random": random}
