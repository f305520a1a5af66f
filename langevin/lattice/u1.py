"""Two-dimensional U(1) lattice gauge theory: the Wilson action, observables, exact answers.

Links ``x_μ(n) ∈ ℝ`` (angles, read modulo 2π), ``μ ∈ {0, 1}``, on an ``L × L`` periodic
lattice; the field has shape ``(2, L, L)`` (index ``[μ, n_0, n_1]``) and is flattened
row-major for the engine (``2L²`` coordinates, named ``"links"`` in traces). The plaquette
angle at site ``n`` is

    x_P(n) = x_0(n) + x_1(n + 0̂) − x_0(n + 1̂) − x_1(n),

the Wilson action ``S(x) = −β Σ_P cos x_P`` (the constant ``βV`` dropped) and the target
``π(x) ∝ e^{−S(x)}``. The force is written by hand (so Numba samples it): a link enters two
plaquettes, with signs ``±1``,

    ∂S/∂x_0(n) = β [sin x_P(n) − sin x_P(n − 1̂)],   ∂S/∂x_1(n) = β [sin x_P(n − 0̂) − sin x_P(n)].

The topological charge is ``Q = (1/2π) Σ_P wrap(x_P)`` with ``wrap(φ) = ((φ + π) mod 2π) − π``,
an integer on the torus.

**Exact answers** (the model is solvable: the ``V = L²`` plaquette angles are independent
von Mises angles but for the one constraint ``Σ_P x_P ≡ 0 mod 2π``). With
``g(ν) = ∫_{−π}^{π} e^{β cos φ + iνφ} dφ`` (``g(k) = 2π I_k(β)`` at integers) and
``Z(w) = Σ_{k∈ℤ} g(k + w)^V``,

    ⟨cos x_P⟩ = Σ_k I_k^{V−1} (I_{k−1} + I_{k+1})/2 / Σ_k I_k^V   →  I_1(β)/I_0(β)  (V → ∞),
    ⟨Q²⟩ = −Z''(0) / ((2π)² Z(0)),
    χ_∞ = lim ⟨Q²⟩/V = (1/4π²) ∫ φ² e^{β cos φ} dφ / ∫ e^{β cos φ} dφ.

:func:`exact_plaquette`, :func:`exact_q2` and :func:`exact_susceptibility` evaluate these with
SciPy (``ive``, adaptive quadrature); the tests reproduce the table of ``ALGORITHMS.md`` §6.

References:
    Wilson, K. G. (1974). Confinement of quarks. Phys. Rev. D 10, 2445.
    Foreman, S., Izubuchi, T., Jin, L., Jin, X.-Y., Osborn, J. C. and Tomiya, A. (2021).
    HMC with normalizing flows. LATTICE 2021, arXiv:2112.01586.
    Kanwar, G. et al. (2020). Equivariant flow-based sampling for lattice gauge theory.
    Phys. Rev. Lett. 125, 121601.
    Bonati, C. and D'Elia, M. (2019). Topological critical slowing down: variations on a toy
    model. Phys. Rev. E 98, 013308 (the exact ⟨Q²⟩ of 2-D U(1) on the torus).
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, NamedTuple

import numpy as np

from langevin.backends.portable import portable
from langevin.lattice._ops import twin

__all__ = [
    "u1_lattice",
    "lattice_indices",
    "plaquette_angles",
    "plaquette",
    "topological_charge",
    "wrap",
    "exact_plaquette",
    "exact_q2",
    "exact_susceptibility",
]

xp: Any = None  # bound by each backend (langevin.backends.portable)


class LatticeIndex(NamedTuple):
    """Gather indices of the flat field (``2L²`` links, ``[μ, n_0, n_1]`` row-major).

    ``plaq``: ``(4, V)``, the links of each plaquette in the order ``+x_0(n), +x_1(n+0̂),
    −x_0(n+1̂), −x_1(n)``. ``plus``/``minus``: ``(2V,)``, the plaquettes where each link enters
    with sign ``+1``/``−1``. ``site``: ``(2V,)``, the site of each link. ``nbr``: ``(9, V)``,
    the site ``n + (d_0, d_1)`` for ``d_0, d_1 ∈ {−1, 0, 1}`` (3×3 circular convolutions).
    """

    plaq: np.ndarray
    plus: np.ndarray
    minus: np.ndarray
    site: np.ndarray
    nbr: np.ndarray


def lattice_indices(L: int) -> LatticeIndex:
    """The :class:`LatticeIndex` of an ``L × L`` periodic lattice."""
    L = _check_size(L)
    V = L * L
    n0, n1 = np.meshgrid(np.arange(L), np.arange(L), indexing="ij")

    def s(a, b):  # flat site index
        return ((a % L) * L + (b % L)).reshape(-1)

    plaq = np.stack([s(n0, n1), V + s(n0 + 1, n1), s(n0, n1 + 1), V + s(n0, n1)])
    plus = np.concatenate([s(n0, n1), s(n0 - 1, n1)])
    minus = np.concatenate([s(n0, n1 - 1), s(n0, n1)])
    site = np.concatenate([s(n0, n1), s(n0, n1)])
    nbr = np.stack([s(n0 + d0, n1 + d1) for d0 in (-1, 0, 1) for d1 in (-1, 0, 1)])
    return LatticeIndex(*(np.ascontiguousarray(a, dtype=np.int64) for a in
                          (plaq, plus, minus, site, nbr)))  # fmt: skip


def _check_size(L: Any) -> int:
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or L < 2:
        raise ValueError(f"L must be an int >= 2 (the lattice is L x L); got {L!r}")
    return int(L)


def _check_beta(beta: Any) -> float:
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.floating, np.integer)):
        raise TypeError(f"beta must be a non-negative float (the gauge coupling); got {beta!r}")
    beta = float(beta)
    if not (math.isfinite(beta) and beta >= 0.0):
        raise ValueError(f"beta must be a non-negative finite float; got {beta!r}")
    return beta


# -- portable math -------------------------------------------------------------------------------
@portable
def u1_plaquettes(x, plaq):
    """The ``V`` plaquette angles ``x_P`` of the flat field ``x`` (not wrapped)."""
    return (xp.take(x, plaq[0]) + xp.take(x, plaq[1]) - xp.take(x, plaq[2])
            - xp.take(x, plaq[3]))  # fmt: skip


@portable
def u1_logdensity(x, beta, plaq):
    """``−S(x) = β Σ_P cos x_P``."""
    return beta * xp.sum(xp.cos(u1_plaquettes(x, plaq)))


@portable
def u1_value_and_grad(x, data):
    """``(−S(x), −∇S(x))`` with the hand-written force; ``data = (β, plaq, plus, minus)``."""
    beta = data[0]
    phi = u1_plaquettes(x, data[1])
    sin_p = xp.sin(phi)
    grad = beta * (xp.take(sin_p, data[3]) - xp.take(sin_p, data[2]))
    return beta * xp.sum(xp.cos(phi)), grad


def _jax_logdensity(beta: float, plaq: np.ndarray):
    ld = twin(u1_logdensity, "jax")

    def logdensity(x):
        import jax.numpy as jnp  # at trace time: the Numba form never imports JAX

        return ld(x, jnp.asarray(beta, x.dtype), jnp.asarray(plaq))

    return logdensity


# -- the target -----------------------------------------------------------------------------------
def u1_lattice(beta: float, L: int):
    """The 2-D U(1) Wilson gauge theory at coupling ``beta`` on an ``L × L`` torus.

    Args:
        beta: the gauge coupling β >= 0 (``S = −β Σ_P cos x_P``).
        L: the lattice size, an int >= 2 (``2L²`` link angles).

    Returns:
        A :class:`~langevin.Target` on the flat field (one block ``"links"`` of shape
        ``(2, L, L)``) with a Numba ``value_and_grad`` (hand-written force) and a JAX
        ``logdensity`` (autodiff force; both written once, :func:`u1_value_and_grad`), started
        at the cold configuration ``x = 0``. Extra attributes: ``beta``, ``L``,
        ``plaquette(draws)``, ``topological_charge(draws)`` (per configuration, on any leading
        axes), ``exact_plaquette`` and ``exact_q2``.

    Example:
        >>> import langevin
        >>> from langevin.lattice import u1_lattice
        >>> target = u1_lattice(beta=2.0, L=8)
        >>> trace = langevin.sample(target, langevin.HMC(0.2, n_leapfrog=5), chains=2,
        ...                         warmup=100, draws=200, seed=0, progress=False)
        >>> q = target.topological_charge(trace.draws)  # (chains, draws) integers
    """
    from langevin.targets.base import Reference, Target

    beta = _check_beta(beta)
    L = _check_size(L)
    idx = lattice_indices(L)
    data = (beta, idx.plaq, idx.plus, idx.minus)
    target = Target(
        names={"links": (2, L, L)},
        numba={"value_and_grad": twin(u1_value_and_grad, "numba")},
        jax={"logdensity": _jax_logdensity(beta, idx.plaq)},
        data=data,
        initial_position=np.zeros(2 * L * L),
        reference=Reference(source="exact: ⟨cos x_P⟩ and ⟨Q²⟩ from Bessel/Fourier sums "
                            "(langevin.lattice.u1.exact_plaquette, exact_q2)"),
        name=f"u1_lattice_L{L}_beta{beta:g}",
    )  # fmt: skip
    target.beta = beta
    target.L = L
    target.plaquette = lambda draws: plaquette(draws, L)
    target.topological_charge = lambda draws: topological_charge(draws, L)
    target.exact_plaquette = exact_plaquette(beta, L)
    target.exact_q2 = exact_q2(beta, L)
    return target


# -- observables (NumPy, on any leading axes) ---------------------------------------------------
def wrap(phi: Any) -> np.ndarray:
    """``((φ + π) mod 2π) − π``: the angle in ``[−π, π)``."""
    return np.mod(np.asarray(phi, dtype=np.float64) + np.pi, 2.0 * np.pi) - np.pi


def plaquette_angles(field: Any, L: int) -> np.ndarray:
    """The plaquette angles ``(..., V)`` of fields ``(..., 2L²)`` or ``(..., 2, L, L)``."""
    L = _check_size(L)
    x = np.asarray(field, dtype=np.float64)
    if x.shape[-3:] == (2, L, L):
        x = x.reshape((*x.shape[:-3], 2 * L * L))
    if x.shape[-1:] != (2 * L * L,):
        raise ValueError(f"field must have last axis 2*L*L = {2 * L * L} or shape (..., 2, L, "
                         f"L); got {np.shape(field)}")  # fmt: skip
    p = lattice_indices(L).plaq
    return x[..., p[0]] + x[..., p[1]] - x[..., p[2]] - x[..., p[3]]


def plaquette(field: Any, L: int) -> np.ndarray:
    """The average plaquette ``(1/V) Σ_P cos x_P`` of each configuration."""
    return np.mean(np.cos(plaquette_angles(field, L)), axis=-1)


def topological_charge(field: Any, L: int) -> np.ndarray:
    """``Q = (1/2π) Σ_P wrap(x_P)`` of each configuration, rounded to the integer it is."""
    q = np.sum(wrap(plaquette_angles(field, L)), axis=-1) / (2.0 * np.pi)
    return np.rint(q)


# -- exact answers ---------------------------------------------------------------------------------
def _k_range(beta: float, V: int) -> np.ndarray:
    # I_k(β)/I_0(β) ≤ (β/2)^k / k!: a window of ±(β + 40) terms is exact to double precision
    # even before the power V.
    kmax = int(beta) + 40
    return np.arange(-kmax, kmax + 1)


@functools.lru_cache(maxsize=64)
def exact_plaquette(beta: float, L: int) -> float:
    """``⟨cos x_P⟩`` on the ``L × L`` torus: ``Σ_k I_k^{V−1}(I_{k−1} + I_{k+1})/2 / Σ_k I_k^V``.

    Exponentially scaled Bessel functions (``scipy.special.ive``) and ratios to ``I_0``
    keep the powers ``I_k^V`` in range.
    """
    from scipy.special import ive

    beta = _check_beta(beta)
    V = _check_size(L) ** 2
    if beta == 0.0:
        return 0.0
    k = _k_range(beta, V)
    i0 = ive(0, beta)
    r = ive(k, beta) / i0
    rm, rp = ive(k - 1, beta) / i0, ive(k + 1, beta) / i0
    num = np.sum(r ** (V - 1) * 0.5 * (rm + rp))
    return float(num / np.sum(r**V))


def _g_derivatives(beta: float, nu: float) -> tuple[float, float, float]:
    """``g(ν), g'(ν), g''(ν)`` of ``g(ν) = ∫_{−π}^{π} e^{β(cos φ − 1)} cos(νφ) dφ`` (the
    constant ``e^{−β}`` cancels in every ratio)."""
    from scipy.integrate import IntegrationWarning, quad

    w = lambda p: math.exp(beta * (math.cos(p) - 1.0))  # noqa: E731
    opts = dict(epsabs=1e-15, epsrel=1e-12, limit=400)
    with warnings.catch_warnings():
        # the oscillatory integrands at large |k| reach the absolute floor; their terms
        # enter Z as g^V and are negligible
        warnings.simplefilter("ignore", IntegrationWarning)
        g0 = 2.0 * quad(lambda p: w(p) * math.cos(nu * p), 0.0, math.pi, **opts)[0]
        g1 = -2.0 * quad(lambda p: p * w(p) * math.sin(nu * p), 0.0, math.pi, **opts)[0]
        g2 = -2.0 * quad(lambda p: p * p * w(p) * math.cos(nu * p), 0.0, math.pi, **opts)[0]
    return g0, g1, g2


@functools.lru_cache(maxsize=64)
def exact_q2(beta: float, L: int) -> float:
    """``⟨Q²⟩`` on the ``L × L`` torus: ``−Z''(0)/((2π)² Z(0))``, ``Z(w) = Σ_k g(k + w)^V``.

    ``Z''(0) = V Σ_k [(V − 1) g_k^{V−2} g_k'² + g_k^{V−1} g_k'']`` with ``g, g', g''`` at the
    integers by quadrature (the sum is taken relative to ``g_0`` to keep the powers in range).
    """
    beta = _check_beta(beta)
    V = _check_size(L) ** 2
    z0 = z2 = 0.0
    g00 = _g_derivatives(beta, 0.0)[0]
    for k in range(0, int(beta) + 40):
        g, g1, g2 = (v / g00 for v in _g_derivatives(beta, float(k)))
        if abs(g) ** (V - 2) < 1e-300:  # this and every later term (g_k decreases in |k|)
            break
        weight = 1.0 if k == 0 else 2.0  # g(−k) = g(k), g'(−k)² = g'(k)², g''(−k) = g''(k)
        z0 += weight * g**V
        z2 += weight * V * ((V - 1) * g ** (V - 2) * g1 * g1 + g ** (V - 1) * g2)
    return float(-z2 / ((2.0 * math.pi) ** 2 * z0))


def exact_susceptibility(beta: float) -> float:
    """``χ_∞ = lim ⟨Q²⟩/V = (1/4π²) ∫φ² e^{β cos φ} dφ / ∫ e^{β cos φ} dφ``."""
    beta = _check_beta(beta)
    g0, _g1, g2 = _g_derivatives(beta, 0.0)
    return float(-g2 / g0 / (4.0 * math.pi**2))
