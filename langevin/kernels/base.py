"""The kernel contract: frozen parameters, declared noise, portable ``init`` and ``step``.

A kernel is a frozen dataclass of parameters plus two *portable* functions (see
:mod:`langevin.backends.portable`), written once against the array namespace ``xp``
(:mod:`langevin.backends.namespace`):

``init_math(position, noise, params, target) -> State``
    What a step reuses (position, log-density, gradient, momentum, ...). ``noise`` is what
    :meth:`Kernel.init_noise` declares (kinetic kernels draw their first momentum), or an
    empty NamedTuple.
``step_math(state, noise, step_size, params, target) -> (State, Info)``
    A deterministic function of its inputs. ``noise`` is a NamedTuple of draws whose
    layout the kernel declares with :meth:`Kernel.noise`; the backend draws it.

``step_size`` is its own argument, separate from ``params``, because warm-up adapts it per
chain and per iteration inside compiled loops, and because a new step size must not mean a
new compilation. ``params`` holds the kernel's other numbers as a NamedTuple (possibly
nested: a pytree of fixed-shape arrays, e.g. a network's weights); they are runtime
arguments too.

States and infos are NamedTuples whose field *annotations* are field kinds of
:mod:`langevin.spec` (``Vector``, ``Scalar``, ``Flag``, ``Integer``, ``Array(...)``); noise is
declared with its noise kinds (``Normal``, ``Uniform``, ``Index``). Every ``Info`` has at
least ``acceptance_rate`` (1 for kernels without a Metropolis–Hastings correction) and
``diverging``.

A kernel also declares what it needs and offers, as class attributes: ``requires`` (target
capabilities, :mod:`langevin.targets.capabilities`), ``backends`` (where it runs),
``adaptation`` (the warm-up components it opts into, :mod:`langevin.adaptation`) and
``target_fields`` (the State fields that depend on the target, which a change of target —
the next tempering stage — recomputes).

Example (a complete toy kernel: a random-walk Metropolis step)::

    from typing import NamedTuple
    from dataclasses import dataclass
    from langevin.backends.portable import portable
    from langevin.kernels.base import Kernel, GradientState, init_gradient_state
    from langevin.kernels.mh import MHInfo, metropolis_hastings
    from langevin.spec import Normal, Scalar, Uniform, Vector

    class RWNoise(NamedTuple):
        normal: Vector
        uniform: Scalar

    @portable
    def rw_step(state, noise, step_size, params, target):
        y = state.position + step_size * noise.normal
        lp, g = xp.value_and_grad(target, y)
        accepted, prob = metropolis_hastings(lp - state.logdensity, noise.uniform)
        proposal = GradientState(y, lp, g)
        return xp.select_tree(accepted, proposal, state), MHInfo(prob, accepted, False)

    @dataclass(frozen=True)
    class RandomWalk(Kernel):
        step_size: float
        Noise = RWNoise
        Info = MHInfo
        State = GradientState
        exact = True
        init_math = staticmethod(init_gradient_state)
        step_math = staticmethod(rw_step)

        def noise(self, dim):
            return RWNoise(Normal((dim,)), Uniform(()))
"""

from __future__ import annotations

import abc
import numbers
from dataclasses import dataclass, fields
from typing import Any, ClassVar, NamedTuple

from langevin.backends.portable import portable
from langevin.spec import (  # re-exported: kernels import their vocabulary from here or spec
    Array,
    Flag,
    Index,
    Integer,
    Normal,
    Scalar,
    Uniform,
    Vector,
    field_kinds,
)

__all__ = [
    "Kernel", "GradientState", "Vector", "Scalar", "Flag", "Integer", "Array", "Normal",
    "Uniform", "Index", "init_gradient_state", "NoParams", "NoNoise", "field_kinds",
]  # fmt: skip

xp: Any = None  # bound by each backend (see langevin.backends.portable)


class GradientState(NamedTuple):
    """The state of every first-order kernel: where it is, and what it knows there."""

    position: Vector
    logdensity: Scalar
    grad: Vector


class NoParams(NamedTuple):
    """The ``params`` of a kernel whose only parameter is its step size."""


class NoNoise(NamedTuple):
    """The noise of an ``init`` that draws nothing."""


@portable
def init_gradient_state(position, noise, params, target):
    """State at ``position``: one value-and-gradient evaluation."""
    logdensity, grad = xp.value_and_grad(target, position)
    return GradientState(position, logdensity, grad)


@dataclass(frozen=True)
class Kernel(abc.ABC):
    """Base of all kernels. Subclasses are frozen dataclasses and final.

    Class attributes each kernel sets:
        State, Info, Noise: NamedTuple classes with fields annotated by field kinds.
        init_math, step_math: portable functions (the kernel's math).
        exact: True when the kernel leaves the target exactly invariant (MH-corrected).
        bias_order: for inexact kernels, the order p of the stationary bias in the step
            size h that theory gives (W2 bias O(h^p)); None for exact kernels.
        target_acceptance: default target of the acceptance rate during warm-up.

    Declarations with defaults:
        requires: target capabilities the math calls (default: ``value_and_grad``);
            a target without one is refused before compiling, naming it.
        backends: the backends the kernel runs on (default both); the other refuses it.
        adaptation: warm-up components the kernel opts into, e.g.
            ``(DualAveraging,)`` or ``(DualAveraging, DiagonalMassMatrix)``
            (:mod:`langevin.adaptation`). ``adapts_step_size`` and ``adapts_inverse_mass``
            are read off it.
        target_fields: the State fields that are functions of the target at the position
            (recomputed, not re-evaluated, when the target changes: tempering stages).
    """

    State: ClassVar[type]
    Info: ClassVar[type]
    Noise: ClassVar[type]
    init_math: ClassVar[Any]
    step_math: ClassVar[Any]
    exact: ClassVar[bool]
    bias_order: ClassVar[float | None] = None
    target_acceptance: ClassVar[float | None] = None
    requires: ClassVar[frozenset[str]] = frozenset({"value_and_grad"})
    backends: ClassVar[frozenset[str]] = frozenset({"numba", "jax"})
    adaptation: ClassVar[tuple[type, ...]] = ()
    target_fields: ClassVar[tuple[str, ...]] = ("logdensity", "grad")
    #: The name users type (a constructor that dispatches to one class per variant, like
    #: KineticLangevin, sets its own): used in error messages and warnings.
    public_name: ClassVar[str | None] = None
    #: What to do when a chain becomes unstable (its log-density collapses or overflows).
    stability_advice: ClassVar[str] = "reduce the step size"
    #: True when the state's log-density is a noisy estimate (a minibatch sum scaled by
    #: n/b): its fluctuations say nothing about stability, so the driver's collapse check
    #: (a fall of 1000 + dim below the best) does not apply.
    logdensity_is_estimate: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        from langevin.adaptation.base import StepSizeAdaptation, WarmupComponent

        cls.adapts_step_size = any(issubclass(c, StepSizeAdaptation) for c in cls.adaptation)
        cls.adapts_inverse_mass = any(
            issubclass(c, WarmupComponent) and getattr(c, "adapts_inverse_mass", False)
            for c in cls.adaptation
        )

    step_size: float

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "step_size":
                if isinstance(value, bool) or not isinstance(value, numbers.Real):
                    raise TypeError(
                        f"{self.name}: step_size must be a positive float; got {value!r}"
                    )
                if not (value > 0 and value < float("inf")):
                    raise ValueError(
                        f"{self.name}: step_size must be positive and finite; got {value!r}"
                    )

    @abc.abstractmethod
    def noise(self, dim: int) -> NamedTuple:
        """The randomness one step consumes: a ``Noise`` of noise kinds (:mod:`langevin.spec`)."""

    def divergent_transition(self) -> str | None:
        """What a *divergent transition* is for this kernel (a step whose info says
        ``diverging`` while the chain goes on), for the driver's warning after sampling;
        None (the default) when the kernel has no such notion."""
        return None

    def init_noise(self, dim: int) -> NamedTuple:
        """The randomness ``init_math`` consumes (default: none)."""
        return NoNoise()

    def params(self) -> NamedTuple:
        """The kernel's parameters other than the step size (runtime values)."""
        return NoParams()

    @classmethod
    def example(cls) -> Kernel:
        """An instance with valid parameters. Backends build it to read the *types* of
        ``params()`` and ``noise()`` when compiling; kernels with required parameters besides
        ``step_size`` override it."""
        return cls(step_size=1.0)

    @property
    def name(self) -> str:
        return self.public_name or type(self).__name__
