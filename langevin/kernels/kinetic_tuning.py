"""Step size and friction for the kinetic Langevin kernels, from the estimated curvature.

Write L for the largest and m for the smallest eigenvalue of the Hessian of −log π.
:func:`suggest_kinetic_parameters` estimates L and m at one or more points by Lanczos
iterations on Hessian-vector products and returns γ by either rule (``2√L``, Shen & Lee
2019 and Cheng et al. 2018; ``2√m``, critical damping of the flattest direction) and
h = ``step_fraction`` · min(1, γ/√L)/√L (default ``step_fraction`` 0.5), inside every
stability limit of the kernels (the table in :mod:`langevin.kernels.kinetic`). The Lanczos
iterations reorthogonalise fully; their Ritz values lie inside the spectrum, so L is under-
and m over-estimated until the Krylov space is invariant (after dim steps on a Gaussian).

This is the warm-up the theory supports: without an acceptance rate there is nothing for dual
averaging to aim at, so ``sample`` runs a kinetic kernel's warm-up at a fixed step size
(burn-in only).

References:
    Shen, R. and Lee, Y. T. (2019). The randomized midpoint method for log-concave sampling.
    NeurIPS.
    Cheng, X., Chatterji, N. S., Bartlett, P. L. and Jordan, M. I. (2018). Underdamped
    Langevin MCMC: a non-asymptotic analysis. COLT.
    Lanczos, C. (1950). An iteration method for the solution of the eigenvalue problem of
    linear differential and integral operators. J. Res. Nat. Bur. Standards 45(4).
    Parlett, B. N. (1998). The Symmetric Eigenvalue Problem. SIAM (reorthogonalisation:
    "twice is enough", Kahan–Parlett).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import numpy as np

from langevin.kernels.kinetic import (
    _DEFAULT_DISCRETIZATION,
    KineticLangevin,
    _check_positive_float,
)

__all__ = ["KineticSuggestion", "suggest_kinetic_parameters"]


class KineticSuggestion(NamedTuple):
    """What :func:`suggest_kinetic_parameters` found and suggests."""

    step_size: float
    friction: float
    #: estimated largest eigenvalue of the Hessian of −log π (smoothness L)
    smoothness: float
    #: estimated smallest eigenvalue of that Hessian (strong convexity m; ≤ 0: not convex)
    strong_convexity: float
    gradient_evaluations: int

    def kernel(
        self, discretization: str = _DEFAULT_DISCRETIZATION, **kwargs: Any
    ) -> KineticLangevin:
        """A :class:`KineticLangevin` with the suggested step size and friction."""
        return KineticLangevin(
            self.step_size, friction=self.friction, discretization=discretization, **kwargs
        )


_FRICTION_RULES = ("shen_lee", "critical")


def _hessian_vector_product(target, backend: str | None):
    """``(hvp(x, v), evaluations per call)``: v ↦ ∇²(−log π)(x) v for the target's form."""
    use_numba = target.has_numba if backend is None else backend == "numba"
    if use_numba:
        if not target.has_numba:
            raise TypeError(f"{target!r} has no Numba form; use backend='jax'")
        from langevin.backends import numba_backend, numpy_ops

        form = numba_backend.bind_target(target)
        fns = form.build(form.data)

        def grad(x):
            return np.asarray(numpy_ops.grad(fns, x), dtype=np.float64)

        def hvp(x, v):
            # central difference of the gradient: exact for quadratics up to rounding
            eps = 1e-4 * (1.0 + float(np.max(np.abs(x))))
            return -(grad(x + eps * v) - grad(x - eps * v)) / (2.0 * eps)

        return hvp, 2
    if not target.has_jax:
        raise TypeError(f"{target!r} has no JAX form; use backend='numba'")
    import jax
    import jax.numpy as jnp

    grad_fn = jax.grad(target.jax_logdensity)

    @jax.jit
    def jax_hvp(x, v):
        return -jax.jvp(grad_fn, (x,), (v,))[1]

    def hvp(x, v):
        x = jnp.asarray(x)
        return np.asarray(jax_hvp(x, jnp.asarray(v, dtype=x.dtype)), dtype=np.float64)

    return hvp, 1


def _lanczos_extremes(hvp, x: np.ndarray, iterations: int, rng) -> tuple[float, float, int]:
    """Largest and smallest Ritz values of the Hessian at x after ``iterations`` Lanczos steps
    (full reorthogonalisation); exact once the Krylov space is invariant (e.g. dim steps on a
    Gaussian). Ritz values lie inside the spectrum: L is under-, m over-estimated."""
    dim = x.shape[0]
    v = rng.standard_normal(dim)
    v /= np.linalg.norm(v)
    basis = [v]
    alphas: list[float] = []
    betas: list[float] = []
    calls = 0
    for _ in range(min(iterations, dim)):
        w = hvp(x, basis[-1])
        calls += 1
        if not np.all(np.isfinite(w)):
            raise ValueError("position: the gradient is not finite near this point")
        alpha = float(basis[-1] @ w)
        alphas.append(alpha)
        q = np.array(basis)
        w = w - q.T @ (q @ w)
        w = w - q.T @ (q @ w)  # twice is enough (Kahan–Parlett)
        beta = float(np.linalg.norm(w))
        scale = max(abs(a) for a in alphas) + (max(betas) if betas else 0.0)
        if beta <= 1e-10 * max(scale, 1e-300) or len(basis) == dim:
            break
        betas.append(beta)
        basis.append(w / beta)
    t = (
        np.diag(alphas)
        + np.diag(betas[: len(alphas) - 1], 1)
        + np.diag(betas[: len(alphas) - 1], -1)
    )
    eig = np.linalg.eigvalsh(t)
    return float(eig[-1]), float(eig[0]), calls


def suggest_kinetic_parameters(
    target: Any,
    position: Any,
    *,
    friction_rule: str = "shen_lee",
    step_fraction: float = 0.5,
    iterations: int = 30,
    backend: str | None = None,
    seed: int = 0,
) -> KineticSuggestion:
    """Step size and friction for :class:`KineticLangevin` from estimated curvature.

    Estimates the smoothness L (largest eigenvalue of ∇²(−log π)) and the strong convexity
    m (smallest) at ``position`` by ``iterations`` Lanczos steps on Hessian-vector products
    (exact ones by ``jax.jvp`` on the JAX form; central differences of the gradient on the
    Numba form, two gradient evaluations each). Given several points (rows of
    ``position``, e.g. draws of a short pilot run) it takes the largest L and the smallest m.
    Then, with unit mass:

    * ``friction = 2√L`` for ``friction_rule="shen_lee"`` (Shen & Lee 2019: γ = 2, u = 1/L,
      which is unit mass with γ = 2√L; also Cheng et al. 2018), or ``2√m`` for
      ``"critical"`` (critical damping of the flattest direction; needs m > 0);
    * ``step_size = step_fraction · min(1, γ/√L) / √L``. With the default 0.5 that is a
      quarter of the splittings' stability limit 2/√L (Shen & Lee's analysis uses
      h ≤ 1/√L); the factor min(1, γ/√L) keeps the exponential Euler and randomized
      midpoint schemes stable when the friction is small against √L (their limits shrink
      with γ; see the module docstring).

    On a Gaussian target with dim ≤ ``iterations`` the estimates are exact. Elsewhere they
    are local: L from one point can be too small where the curvature grows away from it,
    so prefer several points, or a smaller ``step_fraction``.

    Args:
        target: a :class:`langevin.Target`.
        position: ``(dim,)`` or ``(n, dim)`` points where the curvature is measured.
        friction_rule: ``"shen_lee"`` or ``"critical"``.
        step_fraction: h·√L (> 0).
        iterations: Lanczos steps per point (≥ 1).
        backend: ``"numba"`` or ``"jax"``: which form of the target to differentiate
            (default: the Numba form when there is one).
        seed: seed of the Lanczos start vector.

    Returns:
        A :class:`KineticSuggestion`; ``.kernel(discretization)`` builds the kernel.

    Example:
        >>> import numpy as np, langevin
        >>> target = langevin.targets.gaussian(3, cov=np.diag([1.0, 0.25, 0.04]))
        >>> s = langevin.suggest_kinetic_parameters(target, np.zeros(3))
        >>> round(s.smoothness, 6), round(s.strong_convexity, 6)
        (25.0, 1.0)
        >>> round(s.step_size, 6), round(s.friction, 6)
        (0.1, 10.0)
        >>> kernel = s.kernel("baoab")
    """
    from langevin.targets.base import Target

    if not isinstance(target, Target):
        raise TypeError(f"target must be a langevin.Target; got {type(target).__name__}")
    if friction_rule not in _FRICTION_RULES:
        raise ValueError(f"friction_rule must be one of {_FRICTION_RULES}; got {friction_rule!r}")
    step_fraction = _check_positive_float("suggest_kinetic_parameters", "step_fraction",
                                          step_fraction)  # fmt: skip
    if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral):
        raise TypeError(f"iterations must be an int; got {iterations!r}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1; got {iterations}")
    if backend not in (None, "numba", "jax"):
        raise ValueError(f"backend must be None, 'numba' or 'jax'; got {backend!r}")
    points = np.asarray(position, dtype=np.float64)
    if points.ndim == 1:
        points = points[None, :]
    if points.ndim != 2 or points.shape[1] < 1 or points.shape[0] < 1:
        raise ValueError(f"position must have shape (dim,) or (n, dim); got {np.shape(position)}")
    if target.dim is not None and points.shape[1] != target.dim:
        raise ValueError(f"position has {points.shape[1]} coordinates but the target has "
                         f"dim={target.dim}")  # fmt: skip
    if not np.all(np.isfinite(points)):
        raise ValueError("position must be finite")
    hvp, per_call = _hessian_vector_product(target, backend)
    rng = np.random.default_rng(seed)
    largest, smallest, calls = -np.inf, np.inf, 0
    for x in points:
        hi, lo, n = _lanczos_extremes(hvp, np.ascontiguousarray(x), iterations, rng)
        largest, smallest, calls = max(largest, hi), min(smallest, lo), calls + n
    if not largest > 0:
        raise ValueError(
            f"the estimated largest curvature of −log π is {largest:.3g} <= 0 at position; "
            "measure it where the target is log-concave"
        )
    if friction_rule == "critical":
        if not smallest > 0:
            raise ValueError(
                f"friction_rule='critical' needs m > 0, but the estimated smallest curvature is "
                f"{smallest:.3g}; use friction_rule='shen_lee'"
            )
        friction = 2.0 * math.sqrt(smallest)
    else:
        friction = 2.0 * math.sqrt(largest)
    root = math.sqrt(largest)
    return KineticSuggestion(
        step_size=step_fraction * min(1.0, friction / root) / root,
        friction=friction,
        smoothness=largest,
        strong_convexity=smallest,
        gradient_evaluations=calls * per_call,
    )
