"""What every engine returns, the checks every engine makes, and the engines' names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ChunkResult", "get_backend", "BACKENDS", "check_kernel_and_target"]

BACKENDS = ("numba", "jax")


@dataclass
class ChunkResult:
    """The output of running every member (chain or particle) for one chunk of steps.

    Attributes:
        state: the batched kernel state after the chunk (leading member axis).
        adaptation: the batched state of the step-size adaptation after the chunk.
        position: ``(members, steps, dim)`` positions after each step.
        logdensity: ``(members, steps)``.
        info: per-step statistics, name -> ``(members, steps)`` array.
        n_done: ``(members,)`` steps each member completed (fewer when it diverged).
        diverged: ``(members,)`` True for a member whose state became non-finite.
        seconds: time spent running the chunk, compilation excluded (what chunk sizing uses).
        failed: ``{member: exception}`` for members whose step raised (an exception in the
            user's target code); such a member stopped after ``n_done`` good steps and its
            state is the one it had before the failing step.
    """

    state: Any
    adaptation: Any
    position: np.ndarray
    logdensity: np.ndarray
    info: dict[str, np.ndarray]
    n_done: np.ndarray
    diverged: np.ndarray
    seconds: float = 0.0
    failed: dict[int, BaseException] = field(default_factory=dict)


def get_backend(name: str):
    """The engine module called ``name`` (``"numba"`` or ``"jax"``; ``"numpy"``: the reference
    interpreter of population maps, for SMC models)."""
    if name == "numba":
        from langevin.backends import numba_backend

        return numba_backend
    if name == "jax":
        from langevin.backends import jax_backend

        return jax_backend
    if name == "numpy":
        from langevin.backends import numpy_backend

        return numpy_backend
    raise ValueError(f"backend must be one of {BACKENDS}; got {name!r}")


def check_kernel_and_target(kernel, target, backend: str) -> None:
    """Refuse, before compiling, a kernel that does not run on ``backend`` or a target that
    lacks a capability the kernel requires (each error names what is missing)."""
    from langevin.targets.capabilities import TargetForm, missing_message

    if backend not in kernel.backends:
        raise TypeError(
            f"{kernel.name} runs only on backend(s) {sorted(kernel.backends)}; got "
            f"backend={backend!r}"
        )
    if isinstance(target, TargetForm):
        have, label = target.capabilities, "the target"
    else:
        has_form = target.has_numba if backend == "numba" else target.has_jax
        if not has_form:
            other = "jax" if backend == "numba" else "numba"
            how = ("Target.from_numba(logdensity, grad) (numba.njit functions)"
                   if backend == "numba" else "Target.from_jax(logdensity)")  # fmt: skip
            raise TypeError(
                f"{target!r} has no {'Numba' if backend == 'numba' else 'JAX'} form, so it "
                f"cannot run on backend={backend!r}. Build it with {how}, or use "
                f"backend={other!r}."
            )
        have, label = target.capabilities(backend), repr(target)
    for cap in sorted(kernel.requires):
        if cap not in have:
            raise TypeError(missing_message(kernel.name, cap, backend, label))
