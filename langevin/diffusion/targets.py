"""Benchmark targets of the diffusion-sampler literature with exact normalising constants.

* :func:`forty_mode_mixture`: the 2-D mixture of 40 equally weighted Gaussians with means
  uniform on ``[−40, 40]²`` and per-coordinate scale ``softplus(0.1)`` (Midgley et al. 2023,
  used by CMCD and by Richter & Berner; our means are drawn with NumPy from ``seed``, not
  the papers' PyTorch draw). Normalised: ``log Z = 0``.
* :func:`many_well`: Midgley et al.'s many-well, ``d/2`` independent copies of the 2-D double
  well ``log p(x₁, x₂) = −x₁⁴ + 6x₁² + x₁/2 − x₂²/2`` (``2^{d/2}`` modes). Unnormalised;
  ``log Z = (d/2) [log ∫ exp(−x⁴ + 6x² + x/2) dx + ½ log 2π]``, a 1-D integral
  (:func:`many_well_log_z` computes it by quadrature).
* :func:`funnel_log_z`: the normalising constant of :func:`langevin.targets.neals_funnel`,
  whose log-density drops its Gaussian constants: ``log Z = ½ log(2π s²) + ((d−1)/2) log 2π``
  (the normalised funnel has ``log Z = 0``).

Each target is a :class:`~langevin.targets.Target` with a Numba and a JAX form and carries
its exact ``log Z`` as ``target.log_z``.

References:
    Midgley, L. I., Stimper, V., Simm, G. N. C., Schölkopf, B. and Hernández-Lobato, J. M.
    (2023). Flow annealed importance sampling bootstrap. ICLR 2023, arXiv:2208.01893.
    Vargas, F., Padhy, S., Blessing, D. and Nüsken, N. (2024). ICLR 2024, arXiv:2307.01050.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from langevin.targets.base import Target

__all__ = ["forty_mode_mixture", "many_well", "many_well_log_z", "funnel_log_z"]

_SCALE_40 = math.log1p(math.exp(0.1))  # softplus(0.1)


@numba.njit(cache=True)
def _iso_mixture_value_and_grad(x, data):
    """log Σ_k (1/K) N(x; μ_k, s² I) and its gradient; ``data = (means (K, d), s)``."""
    means, s = data
    n_comp, d = means.shape
    inv = 1.0 / (s * s)
    logs = np.empty(n_comp)
    top = -np.inf
    for k in range(n_comp):
        sq = 0.0
        for i in range(d):
            r = x[i] - means[k, i]
            sq += r * r
        logs[k] = -0.5 * sq * inv
        if logs[k] > top:
            top = logs[k]
    total = 0.0
    for k in range(n_comp):
        logs[k] = math.exp(logs[k] - top)
        total += logs[k]
    grad = np.zeros(d)
    for k in range(n_comp):
        r_k = logs[k] / total
        for i in range(d):
            grad[i] -= r_k * (x[i] - means[k, i]) * inv
    const = -math.log(n_comp) - d * (math.log(s) + 0.5 * math.log(2.0 * math.pi))
    return top + math.log(total) + const, grad


def _iso_mixture_jax(means: np.ndarray, s: float):
    def logdensity(x):
        import jax.numpy as jnp
        from jax.scipy.special import logsumexp

        m = jnp.asarray(means, x.dtype)
        sq = jnp.sum((x[None, :] - m) ** 2, axis=1)
        d = x.shape[0]
        const = -math.log(means.shape[0]) - d * (math.log(s) + 0.5 * math.log(2.0 * math.pi))
        return logsumexp(-0.5 * sq / (s * s)) + const

    return logdensity


def forty_mode_mixture(seed: int = 0, n_modes: int = 40, dim: int = 2, box: float = 40.0) -> Target:
    """The normalised mixture of ``n_modes`` isotropic Gaussians (scale softplus(0.1) ≈ 0.744)
    with means uniform on ``[−box, box]^dim`` drawn from ``seed`` (module docstring).
    ``target.means`` holds the means, ``target.log_z = 0``."""
    rng = np.random.default_rng(seed)
    means = np.ascontiguousarray(rng.uniform(-box, box, size=(n_modes, dim)))
    target = Target(
        dim=dim,
        numba={"value_and_grad": _iso_mixture_value_and_grad},
        jax={"logdensity": _iso_mixture_jax(means, _SCALE_40)},
        data=(means, _SCALE_40),
        name=f"{n_modes}-mode mixture",
    )
    target.means = means
    target.scale = _SCALE_40
    target.log_z = 0.0
    return target


@numba.njit(cache=True)
def _many_well_value_and_grad(x):
    d = x.shape[0]
    grad = np.empty(d)
    value = 0.0
    for j in range(d // 2):
        a = x[2 * j]
        b = x[2 * j + 1]
        value += -(a**4) + 6.0 * a * a + 0.5 * a - 0.5 * b * b
        grad[2 * j] = -4.0 * a**3 + 12.0 * a + 0.5
        grad[2 * j + 1] = -b
    return value, grad


def _many_well_jax(x):
    import jax.numpy as jnp

    a = x[0::2]
    b = x[1::2]
    return jnp.sum(-(a**4) + 6.0 * a * a + 0.5 * a - 0.5 * b * b)


def many_well_log_z(dim: int = 32) -> float:
    """``log Z`` of :func:`many_well` by adaptive quadrature of the 1-D double well."""
    from scipy.integrate import quad

    # exp(−x⁴ + 6x² + x/2) peaks near x ≈ ±1.73 at ~e^{9.4}; factor it out for accuracy.
    shift = 10.0
    value, _ = quad(lambda t: math.exp(-(t**4) + 6.0 * t * t + 0.5 * t - shift), -6.0, 6.0,
                    epsabs=0.0, epsrel=1e-13, limit=200)  # fmt: skip
    return (dim // 2) * (math.log(value) + shift + 0.5 * math.log(2.0 * math.pi))


def many_well(dim: int = 32) -> Target:
    """Midgley et al.'s many-well in ``dim`` (even) dimensions, unnormalised;
    ``target.log_z`` from :func:`many_well_log_z`."""
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2 or dim % 2:
        raise ValueError(f"dim must be an even int >= 2; got {dim!r}")
    target = Target(
        dim=dim,
        numba={"value_and_grad": _many_well_value_and_grad},
        jax={"logdensity": _many_well_jax},
        name=f"many-well d={dim}",
    )
    target.log_z = many_well_log_z(dim)
    return target


def funnel_log_z(dim: int = 10, scale: float = 3.0) -> float:
    """``log Z`` of the unnormalised :func:`langevin.targets.neals_funnel` (module docstring)."""
    return 0.5 * math.log(2.0 * math.pi * scale * scale) + 0.5 * (dim - 1) * math.log(2.0 * math.pi)
