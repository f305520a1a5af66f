"""Warm-up adaptation as small pieces: dual averaging of the step size (portable, inside the
compiled loops) and Stan's windowed diagonal mass-matrix estimates (NumPy, between chunks)."""

from langevin.adaptation.dual_averaging import (
    DualAveragingParams,
    DualAveragingState,
    dual_averaging_init,
    dual_averaging_update,
)
from langevin.adaptation.mass_matrix import (
    WelfordVariance,
    WindowSchedule,
    regularized_variance,
    window_schedule,
)

__all__ = [
    "DualAveragingParams",
    "DualAveragingState",
    "dual_averaging_init",
    "dual_averaging_update",
    "WelfordVariance",
    "WindowSchedule",
    "regularized_variance",
    "window_schedule",
]
