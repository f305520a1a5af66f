"""Warm-up adaptation as components a kernel opts into (:mod:`langevin.adaptation.base`):
dual averaging of the step size (portable, inside the compiled loops) and Stan's windowed
diagonal or dense mass-matrix estimates (NumPy, between chunks)."""

from langevin.adaptation.base import StepSizeAdaptation, WarmupComponent
from langevin.adaptation.dual_averaging import (
    DualAveraging,
    DualAveragingParams,
    DualAveragingState,
    dual_averaging_init,
    dual_averaging_update,
)
from langevin.adaptation.mass_matrix import (
    DenseMassMatrix,
    DiagonalMassMatrix,
    WelfordCovariance,
    WelfordVariance,
    WindowSchedule,
    regularized_covariance,
    regularized_variance,
    window_schedule,
)

__all__ = [
    "DenseMassMatrix",
    "DiagonalMassMatrix",
    "DualAveraging",
    "DualAveragingParams",
    "DualAveragingState",
    "StepSizeAdaptation",
    "WarmupComponent",
    "dual_averaging_init",
    "dual_averaging_update",
    "WelfordCovariance",
    "WelfordVariance",
    "WindowSchedule",
    "regularized_covariance",
    "regularized_variance",
    "window_schedule",
]
