"""Warm-up adaptation as components a kernel opts into (:mod:`langevin.adaptation.base`):
dual averaging of the step size (portable, inside the compiled loops) and Stan's windowed
diagonal mass-matrix estimates (NumPy, between chunks)."""

from langevin.adaptation.base import StepSizeAdaptation, WarmupComponent
from langevin.adaptation.dual_averaging import (
    DualAveraging,
    DualAveragingParams,
    DualAveragingState,
    dual_averaging_init,
    dual_averaging_update,
)
from langevin.adaptation.mass_matrix import (
    DiagonalMassMatrix,
    WelfordVariance,
    WindowSchedule,
    regularized_variance,
    window_schedule,
)

__all__ = [
    "DiagonalMassMatrix",
    "DualAveraging",
    "DualAveragingParams",
    "DualAveragingState",
    "StepSizeAdaptation",
    "WarmupComponent",
    "dual_averaging_init",
    "dual_averaging_update",
    "WelfordVariance",
    "WindowSchedule",
    "regularized_variance",
    "window_schedule",
]
