"""Warm-up adaptation as components a kernel opts into (``Kernel.adaptation``).

Two kinds, and the driver knows only these two protocols — no kernel and no backend by name:

* a :class:`StepSizeAdaptation` runs *inside* the compiled loop of either backend, once per
  step: a portable ``update_math(state, info, params)`` after each step and a portable
  ``step_size_math(state)`` before it (dual averaging: :class:`~langevin.adaptation.
  dual_averaging.DualAveraging`). A kernel opts into at most one.
* a :class:`WarmupComponent` runs *between* chunks, on the host: it names the warm-up steps
  at which chunks must end (``boundaries``), sees each warm-up chunk's draws (``observe``)
  and may return new per-chain ``params`` and a per-chain step-size factor at a boundary
  (``update``) (Stan's windowed diagonal mass matrix: :class:`~langevin.adaptation.
  mass_matrix.DiagonalMassMatrix`; room for a preconditioner), and may give the target new
  runtime data of the same structure (``update_target``: a refitted flow's weights, which
  nothing recompiles for: :class:`~langevin.flows.neutra.FlowRefit`). A target opts into
  components of its own through ``target.warmup_components``.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np

__all__ = ["StepSizeAdaptation", "WarmupComponent"]


class StepSizeAdaptation(abc.ABC):
    """A per-step adaptation of the step size, compiled into the loops of both backends.

    Class attributes: ``State`` and ``Params`` (NamedTuples of scalars per chain; the state
    is batched with a leading chain axis), and the portable ``update_math`` and
    ``step_size_math``.
    """

    State: ClassVar[type]
    Params: ClassVar[type]
    update_math: ClassVar[Any]
    step_size_math: ClassVar[Any]

    def __init__(self, kernel: Any, target_acceptance: float | None) -> None:
        self.kernel = kernel
        self.target_acceptance = target_acceptance or kernel.target_acceptance

    @abc.abstractmethod
    def initial_state(self, step_sizes: np.ndarray) -> Any:
        """Batched state (NumPy arrays, leading chain axis) starting at ``step_sizes``."""

    @abc.abstractmethod
    def params(self) -> Any:
        """The component's parameters (NamedTuple of floats)."""

    @abc.abstractmethod
    def final_step_size(self, state: Any) -> np.ndarray:
        """Each chain's step size for sampling, after warm-up."""

    def rescale(self, state: Any, log_factor: np.ndarray, steps_left: int) -> Any:
        """The state after each chain's scale changed by ``exp(log_factor)`` (a new metric)."""
        return state


class WarmupComponent(abc.ABC):
    """A between-chunk warm-up component (runs on the host, backend-agnostic)."""

    #: whether the component adapts an ``inverse_mass`` parameter (read by ``Kernel``)
    adapts_inverse_mass: ClassVar[bool] = False

    @abc.abstractmethod
    def __init__(self, kernel: Any, chains: int, dim: int, warmup: int) -> None: ...

    @property
    @abc.abstractmethod
    def boundaries(self) -> tuple[int, ...]:
        """Warm-up step counts at which a chunk must end."""

    @abc.abstractmethod
    def initial_params(self, params: Any) -> Any:
        """Per-chain params (host arrays, leading chain axis) at the start of warm-up."""

    @abc.abstractmethod
    def observe(self, done: int, positions: np.ndarray) -> None:
        """See a warm-up chunk's positions ``(chains, steps, dim)``, from step ``done`` on."""

    @abc.abstractmethod
    def update(self, done: int, params: Any) -> tuple[Any, np.ndarray | None]:
        """At ``done`` warm-up steps: ``(params, log step-size factor per chain or None)``."""

    def result(self) -> dict[str, Any]:
        """What the trace keeps of this adaptation (e.g. ``{"inverse_mass": ...}``; a
        ``"constrain"`` entry replaces the target's map from draws to parameters)."""
        return {}

    #: whether the component may replace the target's runtime data (:meth:`update_target`)
    changes_target: ClassVar[bool] = False

    def update_target(self, done: int, data: Any, positions: np.ndarray
                      ) -> tuple[Any, np.ndarray] | None:  # fmt: skip
        """At ``done`` warm-up steps, after :meth:`observe`: ``None`` (the default), or
        ``(data, positions)``: new runtime data for the compiled target (the same structure,
        leaf types and dtypes as ``data``, so nothing recompiles: e.g. a flow-transformed
        target's refitted flow weights) and the ``(chains, dim)`` positions every chain
        restarts from (its state is re-initialised there under the new data). Only
        components with ``changes_target = True`` may return data. ``positions`` are the
        chains' current positions."""
        return None

    def restored_target_data(self, data: Any) -> Any:
        """After :meth:`load_state_dict` (a resumed run): the target data the run had reached,
        given the data the target was built with, or ``None`` to keep that."""
        return None

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything the component has learnt so far, as named arrays (a checkpoint stores
        them; :meth:`load_state_dict` puts them back in a fresh component of the same run)."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot be checkpointed: it defines no state_dict()"
        )

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot be checkpointed: it defines no load_state_dict()"
        )
