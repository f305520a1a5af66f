"""The test problems: rotated Gaussians of chosen dimension and condition number, and a
non-Gaussian strongly log-concave product target with an exact (quadrature) law, and any
target whose law is known through reference draws or an exact sampler.

Gaussian ``N(m, Σ)`` (:class:`GaussianProblem`)
    Precision ``A = Q diag(λ) Qᵀ`` with eigenvalues ``λ_i`` log-spaced from ``L = 1`` down to
    ``m = 1/κ`` (so ``∇log π`` is 1-Lipschitz and the step sizes of every experiment are in
    units of ``1/L``), ``Q`` a Haar-random rotation and ``m`` a standard normal vector, both
    drawn from ``numpy.random.default_rng(seed)``. The chains start from the point mass at

        x₀ = m + s · Q λ^{−1/2}            (s = ``start_sd``, 3 by default),

    ``s`` standard deviations away from the mean along every eigendirection, so that
    ``W2(δ_{x₀}, π)² = (s² + 1) tr Σ`` grows like the dimension. Kinetic kernels start with
    the velocity at equilibrium, ``v₀ ~ N(0, I)`` (unit mass), independent of ``x₀``.

Quartic product target (:class:`QuarticProblem`)
    ``U(x) = Σ_i (x_i²/2 + x_i⁴/4)``: strongly log-concave (``∇²U ⪰ I``) but with an unbounded
    Hessian, so neither Gaussian nor globally Lipschitz. It factorises, so its exact law is
    the product of the 1-D law with density ``exp(−x²/2 − x⁴/4)/Z``: the normalising constant,
    the moments and the quantile function come from adaptive quadrature (``scipy.integrate``)
    and a fine tabulated CDF, and exact draws come from the inverse CDF.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Protocol, runtime_checkable

import numpy as np

import langevin


@runtime_checkable
class Problem(Protocol):
    """What a convergence study needs of a problem.

    ``dim``; ``name``; ``gaussian`` (True: exact laws are available for kernels whose step
    is affine, through ``numpy_value_and_grad``, ``mean``, ``cov``, ``eigenvalues``);
    ``start`` (the point every chain starts from); ``target()`` (a fresh
    :class:`langevin.Target` for the Monte Carlo runs); ``exact_draws(n, rng)`` (independent
    draws of π, shape ``(n, dim)``).
    """

    dim: int

    @property
    def name(self) -> str: ...

    @property
    def gaussian(self) -> bool: ...

    @property
    def start(self) -> np.ndarray: ...

    def target(self) -> langevin.Target: ...

    def exact_draws(self, n: int, rng: np.random.Generator) -> np.ndarray: ...


__all__ = ["GaussianProblem", "Problem", "QuarticProblem", "ReferenceProblem"]


def haar_rotation(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed orthogonal matrix (QR of a Gaussian matrix, signs fixed by ``R``)."""
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


@dataclass(frozen=True)
class GaussianProblem:
    """``N(m, Σ)`` in ``dim`` dimensions with condition number ``kappa`` (module docstring).

    Args:
        dim: dimension d.
        kappa: condition number κ = L/m of the precision (L = 1).
        seed: seed of the rotation and the mean.
        start_sd: the start is this many standard deviations from the mean along every
            eigendirection.
        rotate: False gives a diagonal precision (the per-eigen form of the same problem).
    """

    dim: int
    kappa: float = 10.0
    seed: int = 0
    start_sd: float = 3.0
    rotate: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.dim, bool) or not isinstance(self.dim, (int, np.integer)):
            raise TypeError(f"dim must be a positive int; got {self.dim!r}")
        if self.dim < 1:
            raise ValueError(f"dim must be a positive int; got {self.dim!r}")
        if not (self.kappa >= 1.0 and math.isfinite(self.kappa)):
            raise ValueError(f"kappa must be a finite number >= 1; got {self.kappa!r}")
        if not math.isfinite(self.start_sd):
            raise ValueError(f"start_sd must be finite; got {self.start_sd!r}")

    #: exact laws are available for kernels whose step is affine on this target
    gaussian = True

    @property
    def name(self) -> str:
        return f"gaussian_d{self.dim}_kappa{self.kappa:g}"

    def with_dim(self, dim: int) -> GaussianProblem:
        """The same construction (κ, seed, start rule) in ``dim`` dimensions."""
        return replace(self, dim=int(dim))

    @cached_property
    def eigenvalues(self) -> np.ndarray:
        """Precision eigenvalues λ_1 = 1 ≥ … ≥ λ_d = 1/κ (log-spaced)."""
        return np.geomspace(1.0, 1.0 / self.kappa, self.dim)

    @cached_property
    def _rotation_and_mean(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        q = haar_rotation(self.dim, rng) if self.rotate else np.eye(self.dim)
        mean = rng.standard_normal(self.dim)
        return q, mean

    @property
    def rotation(self) -> np.ndarray:
        return self._rotation_and_mean[0]

    @property
    def mean(self) -> np.ndarray:
        return self._rotation_and_mean[1]

    @cached_property
    def precision(self) -> np.ndarray:
        q = self.rotation
        a = (q * self.eigenvalues) @ q.T
        return 0.5 * (a + a.T)

    @cached_property
    def cov(self) -> np.ndarray:
        q = self.rotation
        s = (q / self.eigenvalues) @ q.T
        return 0.5 * (s + s.T)

    @property
    def start_eigen(self) -> np.ndarray:
        """``Qᵀ(x₀ − m)``: the start in eigen-coordinates, ``s/√λ_i``."""
        return self.start_sd / np.sqrt(self.eigenvalues)

    @property
    def start(self) -> np.ndarray:
        """The starting point ``x₀`` of every chain."""
        return self.mean + self.rotation @ self.start_eigen

    def numpy_value_and_grad(self):
        """``x ↦ (log π(x), ∇log π(x))`` in NumPy, for the kernels' plain-NumPy twins."""
        mean, precision = self.mean.copy(), self.precision.copy()

        def value_and_grad(x):
            r = x - mean
            g = -(precision @ r)
            return 0.5 * float(r @ g), g

        return value_and_grad

    def target(self) -> langevin.Target:
        """A fresh :class:`langevin.Target` (both backend forms) for sampling."""
        return langevin.targets.gaussian(self.dim, mean=self.mean, cov=self.cov)

    def exact_draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent draws of π, shape ``(n, dim)``."""
        z = rng.standard_normal((n, self.dim)) / np.sqrt(self.eigenvalues)
        return self.mean + z @ self.rotation.T

    def w2_start(self) -> float:
        """``W2(δ_{x₀}, π)``."""
        return float(math.sqrt((self.start_sd**2 + 1.0) * np.sum(1.0 / self.eigenvalues)))


def _quartic_logdensity_jax(x):
    return -(0.5 * (x * x).sum() + 0.25 * (x * x * x * x).sum())


_QUARTIC_NUMBA = []


def _quartic_value_and_grad_numba():
    if not _QUARTIC_NUMBA:
        import numba

        @numba.njit(cache=False)
        def value_and_grad(x):
            x2 = x * x
            return -(0.5 * x2.sum() + 0.25 * (x2 * x2).sum()), -(x + x2 * x)

        _QUARTIC_NUMBA.append(value_and_grad)
    return _QUARTIC_NUMBA[0]


@dataclass(frozen=True)
class QuarticProblem:
    """``U(x) = Σ_i (x_i²/2 + x_i⁴/4)`` in ``dim`` dimensions, exact law by quadrature.

    Args:
        dim: dimension (the law is a product of identical 1-D factors).
        grid_points: points of the tabulated CDF on ``[−grid_half_width, grid_half_width]``.
    """

    dim: int = 1
    grid_points: int = 200_001
    grid_half_width: float = 6.0
    start_value: float = 3.0

    #: no closed-form laws: Monte Carlo only
    gaussian = False

    @property
    def name(self) -> str:
        return f"quartic_d{self.dim}"

    @property
    def start(self) -> np.ndarray:
        """The starting point of the W2-against-iterations runs: ``start_value`` in every
        coordinate."""
        return np.full(self.dim, float(self.start_value))

    def with_dim(self, dim: int) -> QuarticProblem:
        return replace(self, dim=int(dim))

    @staticmethod
    def potential(x: np.ndarray) -> np.ndarray:
        return 0.5 * x * x + 0.25 * x**4

    @cached_property
    def _normaliser(self) -> float:
        from scipy.integrate import quad

        value, _ = quad(
            lambda t: math.exp(-self.potential(t)), -np.inf, np.inf, epsabs=0, epsrel=1e-13
        )
        return value

    def moment(self, p: int) -> float:
        """``E_π[x_1^p]`` by adaptive quadrature (odd moments are 0)."""
        if p % 2:
            return 0.0
        from scipy.integrate import quad

        value, _ = quad(
            lambda t: t**p * math.exp(-self.potential(t)), -np.inf, np.inf, epsabs=0, epsrel=1e-13
        )
        return value / self._normaliser

    @cached_property
    def _cdf_table(self) -> tuple[np.ndarray, np.ndarray]:
        # The tail beyond |x| = 6 has mass exp(-U(6))/U'(6) ~ 1e-151: nothing is lost. The
        # density is integrated by the trapezoid rule on a grid of spacing 6e-5 (error
        # O(spacing²) ~ 1e-10 in the CDF), then inverted by linear interpolation (error below
        # 1e-9 in the quantile): far below any Monte Carlo noise floor here.
        t = np.linspace(-self.grid_half_width, self.grid_half_width, self.grid_points)
        dens = np.exp(-self.potential(t)) / self._normaliser
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(t))])
        cdf /= cdf[-1]
        return t, cdf

    def quantile(self, u: np.ndarray) -> np.ndarray:
        t, cdf = self._cdf_table
        return np.interp(u, cdf, t)

    def exact_draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent draws of π by inverse-CDF sampling, shape ``(n, dim)``."""
        return self.quantile(rng.random((n, self.dim)))

    def target(self) -> langevin.Target:
        """A fresh :class:`langevin.Target` with both backend forms."""
        return langevin.Target(
            dim=self.dim,
            jax={"logdensity": _quartic_logdensity_jax},
            numba={"value_and_grad": _quartic_value_and_grad_numba()},
            name=f"quartic_{self.dim}d",
        )


class ReferenceProblem:
    """Any target whose law is known through reference draws or an exact sampler.

    Only Monte Carlo applies (the study does not assume the target is Gaussian; wrap a
    Gaussian as :class:`GaussianProblem` to get exact laws).

    Args:
        target: a :class:`langevin.Target` with a form for the backend the study runs on.
        start: the point every chain starts from, shape ``(dim,)`` (default: the target's
            ``initial_position``).
        draws: reference draws ``(n, dim)`` of π (default: ``target.reference.draws``);
            W2 estimates resample them with replacement, so their number bounds the
            resolution: the noise floor is computed the same way.
        sampler: ``(n, rng) -> (n, dim)`` exact draws of π (used instead of ``draws``).
        name: label in tables (default: the target's name).

    Raises:
        ValueError: neither draws nor a sampler, a start of the wrong shape.
    """

    gaussian = False

    def __init__(
        self,
        target: langevin.Target,
        *,
        start: np.ndarray | None = None,
        draws: np.ndarray | None = None,
        sampler: Callable[[int, np.random.Generator], np.ndarray] | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(target, langevin.Target):
            raise TypeError(f"target must be a langevin.Target; got {type(target).__name__}")
        if draws is None and sampler is None and target.reference is not None:
            draws = target.reference.draws
        if draws is None and sampler is None:
            raise ValueError(
                "ReferenceProblem needs draws= (reference draws of π) or sampler= (an exact "
                "sampler (n, rng) -> (n, dim)); the target's reference has no draws"
            )
        if sampler is not None and not callable(sampler):
            raise TypeError(f"sampler must be callable; got {type(sampler).__name__}")
        dim = target.dim
        if draws is not None:
            draws = np.asarray(draws, dtype=np.float64)
            if draws.ndim != 2 or (dim is not None and draws.shape[1] != dim):
                raise ValueError(f"draws must have shape (n, {dim}); got {draws.shape}")
            dim = draws.shape[1]
        if start is None:
            start = target.initial_position
        if start is None:
            raise ValueError("start must be given (the target has no initial_position)")
        start = np.asarray(start, dtype=np.float64)
        if dim is None:
            dim = start.shape[0]
        if start.shape != (dim,):
            raise ValueError(f"start must have shape ({dim},); got {start.shape}")
        self._target = target
        self.dim = int(dim)
        self._start = start
        self._draws = draws
        self._sampler = sampler
        self._name = name or target.name

    @property
    def name(self) -> str:
        return self._name

    @property
    def start(self) -> np.ndarray:
        return self._start.copy()

    def target(self) -> langevin.Target:
        return self._target

    def exact_draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self._sampler is not None:
            out = np.asarray(self._sampler(n, rng), dtype=np.float64)
            if out.shape != (n, self.dim):
                raise ValueError(f"sampler returned shape {out.shape}; expected ({n}, {self.dim})")
            return out
        return self._draws[rng.integers(0, self._draws.shape[0], size=n)]
