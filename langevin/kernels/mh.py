"""The Metropolis–Hastings acceptance block shared by every exact kernel.

Given the log of the acceptance ratio

    log r = log π(y) − log π(x) + log q(x | y) − log q(y | x)

the move is accepted iff ``log u < log r`` with ``u ~ U[0, 1)``, and the acceptance
probability ``min(1, r)`` is reported for step-size adaptation. A non-finite ``log r``
(a proposal where the density is zero or undefined, or an overflow) is a rejection,
never a NaN state; the kernel reports it as ``diverging``.

Reference: Metropolis et al. (1953); Hastings (1970).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from langevin.backends.portable import portable
from langevin.kernels.base import Flag, Scalar

__all__ = ["MHInfo", "metropolis_hastings"]

xp: Any = None


class MHInfo(NamedTuple):
    """Per-step statistics of an MH-corrected kernel."""

    acceptance_rate: Scalar
    is_accepted: Flag
    diverging: Flag


@portable
def metropolis_hastings(log_ratio, uniform):
    """``(accepted, acceptance probability)`` for log acceptance ratio ``log_ratio``."""
    finite = xp.isfinite(log_ratio)
    safe = xp.select(finite, log_ratio, -xp.inf)
    accepted = xp.log(uniform) < safe
    probability = xp.exp(xp.minimum(safe, 0.0))
    return accepted, probability
