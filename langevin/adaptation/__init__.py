"""Warm-up adaptation as small portable pieces (dual averaging of the step size)."""

from langevin.adaptation.dual_averaging import (
    DualAveragingParams,
    DualAveragingState,
    dual_averaging_init,
    dual_averaging_update,
)

__all__ = [
    "DualAveragingParams",
    "DualAveragingState",
    "dual_averaging_init",
    "dual_averaging_update",
]
