"""Diagnostics: Wasserstein distances between draws, reference draws and Gaussians (via POT),
and the kernel Stein discrepancy of draws against a target's score (:mod:`.ksd`)."""

from langevin.diagnostics.ksd import (
    KSDResult,
    kernel_stein_discrepancy,
    ksd_squared,
    target_scores,
)
from langevin.diagnostics.transport import (
    MAX_EXACT,
    SINKHORN_REG_FRACTION,
    W2Result,
    gaussian_w2,
    w2_to_reference,
    wasserstein,
)

__all__ = [
    "KSDResult",
    "kernel_stein_discrepancy",
    "ksd_squared",
    "target_scores",
    "MAX_EXACT",
    "SINKHORN_REG_FRACTION",
    "W2Result",
    "gaussian_w2",
    "w2_to_reference",
    "wasserstein",
]
