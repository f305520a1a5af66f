"""What every backend returns, and the names they are looked up by."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ChunkResult", "get_backend", "BACKENDS"]

BACKENDS = ("numba", "jax")


@dataclass
class ChunkResult:
    """The output of running every chain for one chunk of steps.

    Attributes:
        state: the backend's batched kernel state after the chunk (opaque to the driver).
        adaptation: the batched dual-averaging state after the chunk.
        position: ``(chains, steps, dim)`` positions after each step.
        logdensity: ``(chains, steps)``.
        info: per-step statistics, name -> ``(chains, steps)`` array.
        n_done: ``(chains,)`` steps each chain completed (fewer than asked when it diverged).
        diverged: ``(chains,)`` True for a chain whose state became non-finite.
    """

    state: Any
    adaptation: Any
    position: np.ndarray
    logdensity: np.ndarray
    info: dict[str, np.ndarray]
    n_done: np.ndarray
    diverged: np.ndarray


def get_backend(name: str):
    """The backend module called ``name`` (``"numba"`` or ``"jax"``)."""
    if name == "numba":
        from langevin.backends import numba_backend

        return numba_backend
    if name == "jax":
        from langevin.backends import jax_backend

        return jax_backend
    raise ValueError(f"backend must be one of {BACKENDS}; got {name!r}")
