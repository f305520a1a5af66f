"""The kernel contract: frozen parameters, declared noise, portable ``init`` and ``step``.

A kernel is a frozen dataclass of parameters plus two *portable* functions (see
:mod:`langevin.backends.portable`), written once against the array namespace ``xp``:

``init_math(position, params, target) -> State``
    What a step reuses (position, log-density, gradient, momentum, ...).
``step_math(state, noise, step_size, params, target) -> (State, Info)``
    A deterministic function of its inputs. ``noise`` is a NamedTuple of draws whose
    layout the kernel declares with :meth:`Kernel.noise`; the backend draws it.

``step_size`` is its own argument, separate from ``params``, because warm-up adapts it per
chain and per iteration inside compiled loops, and because a new step size must not mean a
new compilation. ``params`` holds the kernel's other numbers as a NamedTuple (possibly
empty); they are runtime arguments too.

States, infos and noises are NamedTuples whose field *annotations* say what each field is
(:data:`Vector`, :data:`Scalar`, :data:`Flag`): the Numba backend builds its compiled
signatures from them, the JAX backend needs nothing. Every ``Info`` has at least
``acceptance_rate`` (1 for kernels without a Metropolis–Hastings correction) and
``diverging``.

Example (a complete toy kernel: a random-walk Metropolis step)::

    from typing import NamedTuple
    from dataclasses import dataclass
    from langevin.backends.portable import portable
    from langevin.kernels.base import Kernel, GradientState, Normal, Uniform, Vector, Scalar
    from langevin.kernels.mh import MHInfo, metropolis_hastings

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

__all__ = [
    "Kernel", "GradientState", "Vector", "Scalar", "Flag", "Normal", "Uniform",
    "init_gradient_state", "NoParams", "field_kinds",
]  # fmt: skip

xp: Any = None  # bound by each backend (see langevin.backends.portable)


class _FieldKind:
    """A marker used as a NamedTuple field annotation: what a field holds, per chain."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: A float vector of the position's length.
Vector = _FieldKind("Vector")
#: A float scalar.
Scalar = _FieldKind("Scalar")
#: A boolean scalar.
Flag = _FieldKind("Flag")


def field_kinds(cls: type) -> tuple[_FieldKind, ...]:
    """The :data:`Vector`/:data:`Scalar`/:data:`Flag` annotation of each field of ``cls``."""
    import sys

    module = vars(sys.modules[cls.__module__])
    kinds = []
    for field in cls._fields:
        kind = cls.__annotations__[field]
        name = getattr(kind, "__forward_arg__", kind)  # postponed annotations are names
        if isinstance(name, str):
            kind = module.get(name, globals().get(name))
        if not isinstance(kind, _FieldKind):
            raise TypeError(
                f"{cls.__name__}.{field} must be annotated Vector, Scalar or Flag; got {kind!r}"
            )
        kinds.append(kind)
    return tuple(kinds)


class Normal(NamedTuple):
    """Declares standard normal draws of ``shape`` (per chain, per step)."""

    shape: tuple


class Uniform(NamedTuple):
    """Declares U[0, 1) draws of ``shape`` (per chain, per step)."""

    shape: tuple


class GradientState(NamedTuple):
    """The state of every first-order kernel: where it is, and what it knows there."""

    position: Vector
    logdensity: Scalar
    grad: Vector


class NoParams(NamedTuple):
    """The ``params`` of a kernel whose only parameter is its step size."""


@portable
def init_gradient_state(position, params, target):
    """State at ``position``: one value-and-gradient evaluation."""
    logdensity, grad = xp.value_and_grad(target, position)
    return GradientState(position, logdensity, grad)


@dataclass(frozen=True)
class Kernel(abc.ABC):
    """Base of all kernels. Subclasses are frozen dataclasses and final.

    Class attributes each kernel sets:
        State, Info, Noise: NamedTuple classes with annotated fields.
        init_math, step_math: portable functions (the kernel's math).
        exact: True when the kernel leaves the target exactly invariant (MH-corrected).
        bias_order: for inexact kernels, the order p of the stationary bias in the step
            size h that theory gives (W2 bias O(h^p)); None for exact kernels.
        needs_gradient: whether the target must provide a gradient.
        adapts_step_size: whether warm-up tunes the step size (dual averaging).
        target_acceptance: default target of the acceptance rate during warm-up.
        adapts_inverse_mass: whether warm-up adapts a diagonal inverse mass matrix per chain
            (Stan's windowed variance estimates, :mod:`langevin.adaptation.mass_matrix`).
            Such a kernel's ``params()`` has an ``inverse_mass`` field (a float vector; the
            driver replaces it per chain) and the kernel has ``inverse_mass_for(dim)``.
    """

    State: ClassVar[type]
    Info: ClassVar[type]
    Noise: ClassVar[type]
    init_math: ClassVar[Any]
    step_math: ClassVar[Any]
    exact: ClassVar[bool]
    bias_order: ClassVar[float | None] = None
    needs_gradient: ClassVar[bool] = True
    adapts_step_size: ClassVar[bool] = False
    target_acceptance: ClassVar[float | None] = None
    adapts_inverse_mass: ClassVar[bool] = False

    step_size: float

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "step_size":
                if isinstance(value, bool) or not isinstance(value, numbers.Real):
                    raise TypeError(
                        f"{type(self).__name__}: step_size must be a positive float; got {value!r}"
                    )
                if not (value > 0 and value < float("inf")):
                    raise ValueError(
                        f"{type(self).__name__}: step_size must be positive and finite; "
                        f"got {value!r}"
                    )

    @abc.abstractmethod
    def noise(self, dim: int) -> NamedTuple:
        """The randomness one step consumes: a ``Noise`` of :class:`Normal`/:class:`Uniform`."""

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
        return type(self).__name__
