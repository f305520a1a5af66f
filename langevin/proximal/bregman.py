"""Legendre functions ψ (envelopes) and φ (mirror maps), and left Bregman proximity operators.

For a Legendre function ψ with Bregman divergence D_ψ(u, w) = ψ(u) − ψ(w) − ⟨∇ψ(w), u − w⟩
(Lau & Liu 2022, §2; Bauschke, Dao & Lindstrom 2018):

    left Bregman prox       P_λ^ψ g(x) = argmin_u g(u) + D_ψ(u, x)/λ,
    Bregman–Moreau envelope g_λ^ψ(x)  = g(P) + D_ψ(P, x)/λ,   P = P_λ^ψ g(x),
    its gradient            ∇g_λ^ψ(x) = ∇²ψ(x) (x − P)/λ       (envelope theorem).

The ψ here are separable, named (:data:`ENVELOPES`), with a scale s (a number or one per
coordinate):

==============  ===============================  ============  =============  ==========
name            ψ(x)                             ∇ψ(x)          ∇²ψ(x)         ∇ψ(0)
==============  ===============================  ============  =============  ==========
euclidean       ½‖x‖²                            x             1              0
diagonal        ½ Σ s_i x_i²  (= ½‖x‖²_M)        s x           s              0
hypentropy      Σ x asinh(x/s) − √(x² + s²)      asinh(x/s)    (x² + s²)^−½   0
exp             Σ e^{x_i}                        e^x           e^x            1
==============  ===============================  ============  =============  ==========

**Transport.** With h(u) = ∇ψ(u) − ∇ψ(0) (odd-monotone through 0, coordinatewise), the
optimality condition of the Bregman prox, ∇ψ(x) − ∇ψ(P) ∈ λ∂g(P), reads
h(x) − h(P) ∈ λ∂g(P). When ∂g(P) depends on P only through the signs of its coordinates
(weighted L1, the nonnegative orthant: *sign-invariant* g), sign(P) = sign(h(P)), so
v = h(P) solves h(x) − v ∈ λ∂g(v): v is the Euclidean prox of h(x). Hence

    P_λ^ψ g(x) = h⁻¹( prox_{λg}( h(x) ) ),

which is how the kernels obtain the Bregman prox from a target's (Euclidean) ``prox``.
For g = t|·| this gives exactly the closed forms of Lau & Liu's experiments
(:func:`l1_bregman_prox`, written branch by branch, independently, for the tests):

* diagonal: soft-threshold at t/s;
* hypentropy: s sinh(asinh(x/s) − t) if x > s sinh t; s sinh(asinh(x/s) + t) if x < −s sinh t;
  **0** otherwise;
* exp: log(e^x − t) if x > log(1 + t); log(e^x + t) if x < log(1 − t); **0** otherwise.

The official notebooks (timlautk/bregman_prox_langevin_mc) return √(x² + s²) − s and
1 − e^x(1 + x) in the dead zone instead of 0; that violates the optimality condition above
(it is not the argmin), and is not reproduced here.

**Mirror maps** φ (:data:`MIRRORS`) for the mirror-Langevin step
y = ∇φ(x) − h∇U(x) + √(2h) [∇²φ(x)]^{1/2} ξ, x' = ∇φ*(y):

* euclidean: φ = ½‖x‖² (the step is ULA's);
* hypentropy: φ = Σ x asinh(x/β) − √(x² + β²) on ℝ^d; ∇φ* (y) = β sinh(y),
  noise scale (x² + β²)^{−1/4} (Lau & Liu 2022; Ghai, Hazan & Singer 2020);
* log_barrier: φ = −Σ β log x on the open orthant; ∇φ = −β/x, ∇φ*(y) = −β/y (y < 0),
  ∇²φ = β/x², noise scale √β/x;
* entropy: the open simplex in its first d coordinates, x_{d+1} = 1 − Σx:
  φ = Σ_{i ≤ d+1} x_i log x_i, ∇φ_i = log(x_i/x_{d+1}), ∇φ*(y) = softmax((y, 0))_{1..d},
  ∇²φ = diag(1/x) + 11ᵀ/x_{d+1}, whose square root acts on (ξ, ζ) ∈ ℝ^{d+1} as
  ξ/√x + ζ/√x_{d+1} (covariance diag(1/x) + 11ᵀ/x_{d+1}: one extra normal per step).

asinh and sinh are written from ``log1p`` and ``expm1`` (the namespace has neither), stably
for small and large arguments, so ∇φ*(∇φ(x)) = x to rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from langevin.backends.portable import portable

__all__ = [
    "asinh",
    "sinh",
    "ENVELOPES",
    "MIRRORS",
    "MIRRORED",
    "l1_bregman_prox",
    "envelope_functions",
    "mirror_functions",
]

xp: Any = None


@portable
def asinh(z):
    """asinh(z) for every z, without overflow or cancellation: for |z| < 1
    log1p(|z| + z²/(1 + √(1 + z²))), for |z| ≥ 1 log|z| + log(1 + √(1 + 1/z²)); odd."""
    a = xp.abs(z)
    big = a >= 1.0
    ab = xp.where(big, a, 1.0 + 0.0 * a)
    asm = xp.where(big, 0.0 * a, a)
    inv = 1.0 / ab
    large = xp.log(ab) + xp.log(1.0 + xp.sqrt(1.0 + inv * inv))
    small = xp.log1p(asm + asm * asm / (1.0 + xp.sqrt(1.0 + asm * asm)))
    return xp.sign(z) * xp.where(big, large, small)


@portable
def sinh(y):
    """sinh(y) = (expm1(y) − expm1(−y))/2, accurate near 0."""
    return 0.5 * (xp.expm1(y) - xp.expm1(-y))


# -- envelopes ψ: (shift h, its inverse, diagonal Hessian, divergence D_ψ(u, x)) ------------------
@portable
def euclidean_shift(x, s):
    return x + 0.0 * s


@portable
def euclidean_unshift(v, s):
    return v + 0.0 * s


@portable
def euclidean_hess(x, s):
    return 0.0 * x + 1.0 + 0.0 * s


@portable
def euclidean_divergence(u, x, s):
    d = u - x
    return 0.5 * xp.sum(d * d) + 0.0 * xp.sum(s)


@portable
def diagonal_shift(x, s):
    return s * x


@portable
def diagonal_unshift(v, s):
    return v / s


@portable
def diagonal_hess(x, s):
    return 0.0 * x + s


@portable
def diagonal_divergence(u, x, s):
    d = u - x
    return 0.5 * xp.sum(s * d * d)


@portable
def hypentropy_shift(x, s):
    return asinh(x / s)


@portable
def hypentropy_unshift(v, s):
    return s * sinh(v)


@portable
def hypentropy_hess(x, s):
    return 1.0 / xp.sqrt(x * x + s * s)


@portable
def hypentropy_psi(u, s):
    return u * asinh(u / s) - xp.sqrt(u * u + s * s)


@portable
def hypentropy_divergence(u, x, s):
    return xp.sum(hypentropy_psi(u, s) - hypentropy_psi(x, s) - asinh(x / s) * (u - x))


@portable
def exp_shift(x, s):
    return xp.expm1(x) + 0.0 * s


@portable
def exp_unshift(v, s):
    return xp.log1p(v) + 0.0 * s


@portable
def exp_hess(x, s):
    return xp.exp(x) + 0.0 * s


@portable
def exp_divergence(u, x, s):
    d = u - x
    return xp.sum(xp.exp(x) * (xp.expm1(d) - d)) + 0.0 * xp.sum(s)


#: name -> (shift, unshift, hessian diagonal, divergence): portable functions of (·, s).
ENVELOPES: dict[str, tuple] = {
    "euclidean": (euclidean_shift, euclidean_unshift, euclidean_hess, euclidean_divergence),
    "diagonal": (diagonal_shift, diagonal_unshift, diagonal_hess, diagonal_divergence),
    "hypentropy": (hypentropy_shift, hypentropy_unshift, hypentropy_hess, hypentropy_divergence),
    "exp": (exp_shift, exp_unshift, exp_hess, exp_divergence),
}


# -- mirror maps φ: (∇φ, ∇φ*, noise [∇²φ]^{1/2}(ξ, ζ)) -------------------------------------------
@portable
def euclidean_mirror(x, s):
    return x + 0.0 * s


@portable
def euclidean_mirror_inverse(y, s):
    return y + 0.0 * s


@portable
def euclidean_mirror_noise(x, s, normal, extra):
    return normal + 0.0 * s


@portable
def hypentropy_mirror(x, s):
    return asinh(x / s)


@portable
def hypentropy_mirror_inverse(y, s):
    return s * sinh(y)


@portable
def hypentropy_mirror_noise(x, s, normal, extra):
    """(x² + β²)^{−1/4} ξ."""
    return normal / xp.sqrt(xp.sqrt(x * x + s * s))


@portable
def log_barrier_mirror(x, s):
    return -s / x


@portable
def log_barrier_mirror_inverse(y, s):
    return -s / y


@portable
def log_barrier_mirror_noise(x, s, normal, extra):
    return xp.sqrt(s) * normal / x


@portable
def entropy_mirror(x, s):
    last = 1.0 - xp.sum(x)
    return xp.log(x) - xp.log(last) + 0.0 * s


@portable
def entropy_mirror_inverse(y, s):
    top = xp.maximum(xp.max(y), 0.0)
    e = xp.exp(y - top)
    return e / (xp.exp(-top) + xp.sum(e)) + 0.0 * s


@portable
def entropy_mirror_noise(x, s, normal, extra):
    last = 1.0 - xp.sum(x)
    return normal / xp.sqrt(x) + extra / xp.sqrt(last) + 0.0 * s


# -- for the mirrored (dual-space ULA) scheme: [∇²φ(x)]⁻¹ v and ∇_x log det ∇²φ*(∇φ(x)) --------
@portable
def euclidean_inverse_hessian(x, s, v):
    return v + 0.0 * s


@portable
def euclidean_logdet_grad(x, s):
    return 0.0 * x + 0.0 * s


@portable
def hypentropy_inverse_hessian(x, s, v):
    return xp.sqrt(x * x + s * s) * v


@portable
def hypentropy_logdet_grad(x, s):
    """log det ∂x/∂y = Σ ½ log(x² + β²)."""
    return x / (x * x + s * s)


@portable
def log_barrier_inverse_hessian(x, s, v):
    return x * x * v / s


@portable
def log_barrier_logdet_grad(x, s):
    """log det ∂x/∂y = Σ log(x²/β)."""
    return 2.0 / x + 0.0 * s


@portable
def entropy_inverse_hessian(x, s, v):
    """(diag(1/x) + 11ᵀ/x_{d+1})⁻¹ v = x∘v − x (xᵀv) (Sherman–Morrison)."""
    return x * v - x * xp.sum(x * v) + 0.0 * s


@portable
def entropy_logdet_grad(x, s):
    """log det ∂x/∂y = Σ_{i ≤ d+1} log x_i."""
    return 1.0 / x - 1.0 / (1.0 - xp.sum(x)) + 0.0 * s


#: name -> ([∇²φ]⁻¹ v, ∇ log det ∂x/∂y): the mirrored scheme's dual-space drift.
MIRRORED: dict[str, tuple] = {
    "euclidean": (euclidean_inverse_hessian, euclidean_logdet_grad),
    "hypentropy": (hypentropy_inverse_hessian, hypentropy_logdet_grad),
    "log_barrier": (log_barrier_inverse_hessian, log_barrier_logdet_grad),
    "entropy": (entropy_inverse_hessian, entropy_logdet_grad),
}

#: name -> (∇φ, ∇φ*, noise): portable functions; ``extra`` is one more N(0, 1) (entropy).
MIRRORS: dict[str, tuple] = {
    "euclidean": (euclidean_mirror, euclidean_mirror_inverse, euclidean_mirror_noise),
    "hypentropy": (hypentropy_mirror, hypentropy_mirror_inverse, hypentropy_mirror_noise),
    "log_barrier": (log_barrier_mirror, log_barrier_mirror_inverse, log_barrier_mirror_noise),
    "entropy": (entropy_mirror, entropy_mirror_inverse, entropy_mirror_noise),
}


def envelope_functions(name: str, backend: str = "numpy") -> tuple:
    """The ψ functions ``(shift, unshift, hess, divergence)`` of ``name`` for a backend
    (``"numpy"`` for tests)."""
    return _twins(ENVELOPES, "envelope", name, backend)


def mirror_functions(name: str, backend: str = "numpy") -> tuple:
    """The φ functions ``(grad, inverse, noise)`` of ``name`` for a backend."""
    return _twins(MIRRORS, "mirror", name, backend)


_MEMOS: dict = {}


def _twins(table, kind, name, backend):
    if name not in table:
        raise ValueError(f"{kind} must be one of {sorted(table)}; got {name!r}")
    from langevin.backends.portable import make_twin

    if backend == "numpy":
        from langevin.backends import numpy_ops as ns

        compile_fn = _identity
    elif backend == "jax":
        from langevin.backends import jax_ops as ns

        compile_fn = _identity
    elif backend == "numba":
        import numba

        from langevin.backends import numba_ops as ns

        compile_fn = numba.njit
    else:
        raise ValueError(f"backend must be 'numpy', 'jax' or 'numba'; got {backend!r}")
    memo = _MEMOS.setdefault(backend, {})
    return tuple(make_twin(f, ns, compile_fn, memo) for f in table[name])


def _identity(f):
    return f


# -- the closed forms of Lau & Liu's experiments (tests compare the transport with them) ---------
def l1_bregman_prox(
    x: np.ndarray, t: float | np.ndarray, psi: str, scale: float | np.ndarray = 1.0
) -> np.ndarray:
    """Left Bregman prox of t|·| coordinatewise, branch by branch (module docstring),
    NumPy. ``scale`` is s of the diagonal (M = diag(s)) and hypentropy ψ; exp needs t < 1
    for its left branch to exist (otherwise it is empty: no x < log(1 − t))."""
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    if psi == "euclidean":
        return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)
    if psi == "diagonal":
        return np.sign(x) * np.maximum(np.abs(x) - t / s, 0.0)
    if psi == "hypentropy":
        edge = s * np.sinh(t)
        return np.where(
            x > edge,
            s * np.sinh(np.arcsinh(x / s) - t),
            np.where(x < -edge, s * np.sinh(np.arcsinh(x / s) + t), 0.0),
        )
    if psi == "exp":
        with np.errstate(invalid="ignore", divide="ignore"):
            right = np.log(np.exp(x) - t)
            left = np.log(np.exp(x) + t)
            low = np.where(t < 1.0, np.log(np.where(t < 1.0, 1.0 - t, 1.0)), -np.inf)
        return np.where(x > np.log1p(t), right, np.where(x < low, left, 0.0))
    raise ValueError(f"psi must be one of {sorted(ENVELOPES)}; got {psi!r}")
