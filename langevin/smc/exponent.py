"""The adaptive tempering exponent: the next β from the particles' conditional ESS.

The next exponent is ``β_t = β_{t−1} + δ`` with δ the largest value such that the
conditional ESS of the incremental weights (Jasra, Stephens, Doucet & Tsagaris 2011;
Zhou, Johansen & Aston 2016)

    CESS(δ) = N (Σ_n W_n e^{δ ℓ_n})² / Σ_n W_n e^{2 δ ℓ_n}     (∈ [1, N]; = ESS when W = 1/N)

is at least ``target_ess · N``, found by bisection (CESS decreases in δ). The schedule then
depends on the particles, which adds an O(1/N) bias to ``Ẑ``; a fixed schedule keeps it
exactly unbiased.

References:
    Jasra, A., Stephens, D. A., Doucet, A. and Tsagaris, T. (2011). Inference for Lévy-driven
    stochastic volatility models via adaptive sequential Monte Carlo. Scand. J. Stat. 38(1).
    Zhou, Y., Johansen, A. M. and Aston, J. A. D. (2016). Toward automatic model comparison:
    an adaptive sequential Monte Carlo approach. JCGS 25(3).
"""

from __future__ import annotations

from typing import Any

from langevin.backends.portable import portable
from langevin.smc.resampling import log_sum_exp

__all__ = ["next_increment"]

xp: Any = None

_BISECTION_STEPS = 60


@portable
def _log_cess_fraction(log_weights, ell, delta):
    """``log(CESS(δ) / N)`` for log-weights ``lw`` and increments ``ℓ`` (module docstring)."""
    a = log_sum_exp(log_weights + delta * ell)
    b = log_sum_exp(log_weights + 2.0 * delta * ell)
    return 2.0 * a - b - log_sum_exp(log_weights)


@portable
def next_increment(log_weights, ell, beta, target_ess):
    """The next exponent step δ ∈ (0, 1 − β]: ``1 − β`` if its CESS is at least
    ``target_ess · N``, else the largest δ with that property, by bisection (60 halvings:
    a static loop, so Numba caches it; the JAX backend runs the NumPy twin on the host).
    """
    room = 1.0 - beta
    log_target = xp.log(target_ess)
    lo = 0.0 * room
    hi = room
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        ok = _log_cess_fraction(log_weights, ell, mid) >= log_target
        lo = xp.select(ok, mid, lo)
        hi = xp.select(ok, hi, mid)
    delta = xp.select(lo > 0.0, lo, hi)
    done = _log_cess_fraction(log_weights, ell, room) >= log_target
    return xp.select(done, room, delta)
