"""Diagnostics: Wasserstein distances between draws, reference draws and Gaussians (via POT)."""

from langevin.diagnostics.transport import (
    MAX_EXACT,
    SINKHORN_REG_FRACTION,
    W2Result,
    gaussian_w2,
    w2_to_reference,
    wasserstein,
)

__all__ = [
    "MAX_EXACT",
    "SINKHORN_REG_FRACTION",
    "W2Result",
    "gaussian_w2",
    "w2_to_reference",
    "wasserstein",
]
