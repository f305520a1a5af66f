"""What a target can do: named capabilities, the one table every layer reads.

A :class:`~langevin.targets.Target` holds, per backend, a set of functions named by
capability. Kernels declare the capabilities they require (``Kernel.requires``); the kernel
math reaches them through the namespace, ``xp.<capability>(target, x, ...)``; a target that
lacks one is refused before anything compiles, with the help text below.

=================  ============================  =====================================
capability         namespace call                returns
=================  ============================  =====================================
logdensity         ``xp.logdensity(t, x)``       log π(x) (up to a constant)
grad               ``xp.grad(t, x)``             ∇log π(x)
value_and_grad     ``xp.value_and_grad(t, x)``   (log π(x), ∇log π(x))
score              ``xp.score(t, x)``            ∇log π(x), for targets known only by
                                                 their score (diffusion samplers)
prox               ``xp.prox(t, x, lam)``        prox_{λg}(x) = argmin_u g(u) + ‖u − x‖²/(2λ)
                                                 of the nonsmooth part g
nonsmooth          ``xp.nonsmooth(t, x)``        g(x), the nonsmooth part's value
mirror_map         ``xp.mirror_map(t, x)``       ∇φ(x), a mirror map
mirror_inverse     ``xp.mirror_inverse(t, y)``   ∇φ*(y), its inverse
mirror_hessian     ``xp.mirror_hessian(t, x)``   the diagonal of ∇²φ(x)
loglik             ``xp.loglik(t, x, idx)``      (Σ_{i ∈ idx} log L_i(x), its gradient):
                                                 per-datum log-likelihoods (minibatches)
logprior           ``xp.logprior(t, x)``         (log p(x), ∇log p(x))
=================  ============================  =====================================

**Derived capabilities.** On both backends ``value_and_grad`` follows from ``logdensity``
with ``grad``, ``logdensity`` and ``grad`` from ``value_and_grad``, and ``score`` from any
gradient. On JAX, ``grad`` and ``value_and_grad`` follow from ``logdensity`` by autodiff,
and ``loglik``/``logprior`` are given as *values* (their gradients by autodiff); on Numba,
which cannot differentiate, ``loglik``/``logprior`` are given as value-and-gradient functions.

**Forms.** On Numba a target reaches compiled code as a plain tuple ``(form, f_0, …, f_K,
data)``: one slot per capability of this table in its order (``None`` where absent; the
functions are first-class function values, so loops compile once per *form* — which slots
are filled, and the type of ``data`` — never per target), and Numba functions take ``data``
as their last argument when the target has data. A tuple, not a NamedTuple: Numba converts
dispatchers to first-class function values inside plain tuples only. On JAX it is the same
tuple of plain callables, built inside the traced function around the traced ``data``.

**Combinators.** A target built from other targets (tempering ``π_β ∝ ρ^{1−β} π^β``) is a
tuple ``(tag, child, …)`` whose first entry is a NamedTuple *tag* of a class registered with
:func:`register_combinator` together with portable implementations of the capabilities it
provides; the tag's fields are runtime values (β). The namespaces dispatch on the tag's class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = [
    "Capability", "CAPABILITIES", "SLOTS", "BASE_FORM", "register_combinator", "combinator_impl",
    "derivable", "missing_message", "TargetForm", "form_of",
]  # fmt: skip


class Capability(NamedTuple):
    """One named capability: its extra arguments after ``x``, what it returns, and how a user
    supplies it on each backend (the text of the error when it is missing)."""

    name: str
    args: tuple[str, ...]
    returns: str  # "scalar", "vector" or "value_and_grad"
    meaning: str
    numba_help: str
    jax_help: str


_NUMBA_VG = (
    "Target.from_numba(logdensity, grad) or Target.from_numba(value_and_grad=vg) with "
    "numba.njit functions (Numba cannot differentiate)"
)
_JAX_LD = "Target.from_jax(logdensity) (the gradient comes from jax.grad)"

CAPABILITIES: dict[str, Capability] = {
    c.name: c
    for c in (
        Capability("logdensity", (), "scalar", "log π(x) up to a constant", _NUMBA_VG, _JAX_LD),
        Capability("grad", (), "vector", "∇log π(x)", _NUMBA_VG, _JAX_LD),
        Capability("value_and_grad", (), "value_and_grad", "(log π(x), ∇log π(x))", _NUMBA_VG,
                   _JAX_LD),
        Capability("score", (), "vector", "∇log π(x) without a log-density",
                   "Target.from_numba(score=fn) with fn(x) -> array", "Target.from_jax(score=fn)"),
        Capability("prox", ("lam",), "vector",
                   "the proximity operator prox_{λg}(x) of the nonsmooth part g",
                   "Target.from_numba(..., prox=fn) with fn(x, lam) -> array",
                   "Target.from_jax(..., prox=fn) with fn(x, lam) -> array"),
        Capability("nonsmooth", (), "scalar", "g(x), the value of the nonsmooth part",
                   "Target.from_numba(..., nonsmooth=fn)", "Target.from_jax(..., nonsmooth=fn)"),
        Capability("mirror_map", (), "vector", "∇φ(x), the mirror map",
                   "Target.from_numba(..., mirror_map=fn)", "Target.from_jax(..., mirror_map=fn)"),
        Capability("mirror_inverse", (), "vector", "∇φ*(y), the inverse mirror map",
                   "Target.from_numba(..., mirror_inverse=fn)",
                   "Target.from_jax(..., mirror_inverse=fn)"),
        Capability("mirror_hessian", (), "vector", "the diagonal of ∇²φ(x)",
                   "Target.from_numba(..., mirror_hessian=fn)",
                   "Target.from_jax(..., mirror_hessian=fn)"),
        Capability("loglik", ("idx",), "value_and_grad",
                   "Σ_{i∈idx} log L_i(x) and its gradient (per-datum log-likelihoods)",
                   "Target.from_numba(..., loglik=fn) with fn(x, idx) -> (float, array)",
                   "Target.from_jax(..., loglik=fn) with fn(x, idx) -> scalar"),
        Capability("logprior", (), "value_and_grad", "log p(x) and its gradient",
                   "Target.from_numba(..., logprior=fn) with fn(x) -> (float, array)",
                   "Target.from_jax(..., logprior=fn) with fn(x) -> scalar"),
    )
}  # fmt: skip

#: Slot order of the Numba/JAX form tuple: ``(form, *SLOTS, data)``.
SLOTS: tuple[str, ...] = tuple(CAPABILITIES)


class BaseForm(NamedTuple):
    """The tag of a target made of functions (not a combinator)."""


BASE_FORM = BaseForm()

#: How a capability follows from others, on every backend: capability -> alternatives.
_DERIVED: dict[str, tuple[frozenset, ...]] = {
    "value_and_grad": (frozenset({"logdensity", "grad"}),),
    "logdensity": (frozenset({"value_and_grad"}),),
    "grad": (frozenset({"value_and_grad"}),),
    "score": (frozenset({"grad"}), frozenset({"value_and_grad"})),
}
#: ...and on JAX by autodiff.
_DERIVED_JAX: dict[str, tuple[frozenset, ...]] = {
    "grad": (frozenset({"logdensity"}),),
    "value_and_grad": (frozenset({"logdensity"}),),
}


def derivable(present: set[str] | frozenset[str], backend: str) -> frozenset[str]:
    """Every capability available from the functions ``present`` on ``backend``."""
    have = set(present)
    rules = [_DERIVED] + ([_DERIVED_JAX] if backend == "jax" else [])
    changed = True
    while changed:
        changed = False
        for table in rules:
            for name, alternatives in table.items():
                if name not in have and any(alt <= have for alt in alternatives):
                    have.add(name)
                    changed = True
    return frozenset(have)


def missing_message(owner: str, name: str, backend: str, target_repr: str) -> str:
    """The error text for a capability ``name`` that ``owner`` requires and the target lacks."""
    cap = CAPABILITIES[name]
    how = cap.numba_help if backend == "numba" else cap.jax_help
    return (
        f"{owner} requires the target capability {name!r} ({cap.meaning}), which {target_repr} "
        f"does not provide on backend={backend!r}. Supply it with {how}."
    )


# -- combinators -------------------------------------------------------------------------------
_COMBINATORS: dict[type, dict[str, Callable]] = {}


def register_combinator(tag_cls: type, **implementations: Callable) -> None:
    """Register a target combinator: ``tag_cls`` (a NamedTuple class) with a portable
    implementation ``impl(target, x, *args)`` for each capability it provides."""
    unknown = set(implementations) - set(CAPABILITIES)
    if unknown:
        raise ValueError(f"unknown capabilities {sorted(unknown)}; known: {list(CAPABILITIES)}")
    _COMBINATORS[tag_cls] = dict(implementations)


def combinator_impl(tag_cls: type, name: str) -> Callable | None:
    """The registered implementation of capability ``name`` for combinator ``tag_cls``."""
    impls = _COMBINATORS.get(tag_cls)
    if impls is None:
        return None
    if name in impls:
        return impls[name]
    return None


def combinator_capabilities(tag_cls: type) -> frozenset[str]:
    return frozenset(_COMBINATORS.get(tag_cls, {}))


def form_of(data: Any = None, **functions: Callable) -> tuple:
    """The form tuple of a target made of ``functions`` (capability name -> callable) and
    ``data`` — what kernel math receives as ``target``. Handy with the NumPy twin of a
    kernel (``make_twin(step_math, numpy_ops, ...)``) on plain Python functions.

    Example:
        >>> import numpy as np
        >>> from langevin.backends import numpy_ops
        >>> t = form_of(value_and_grad=lambda x: (-0.5 * x @ x, -x))
        >>> numpy_ops.grad(t, np.array([1.0, 2.0]))
        array([-1., -2.])
    """
    unknown = set(functions) - set(SLOTS)
    if unknown:
        raise ValueError(f"unknown capabilities {sorted(unknown)}; known: {list(SLOTS)}")
    return (BASE_FORM, *(functions.get(n) for n in SLOTS), data)


class TargetForm(NamedTuple):
    """A target bound to one backend: what compiled code depends on, and its runtime data.

    Attributes:
        key: hashable; equal keys compile to the same code (function identities on JAX, the
            form's Numba type on Numba).
        data: the runtime data (a Numba-typable value, or a pytree of JAX arrays).
        build: ``build(data) -> form tuple`` (see the module docstring); on JAX called
            inside the traced function.
        numba_type: Numba only: the Numba type of the form tuple (for explicit signatures).
        capabilities: what this form provides.
    """

    key: Any
    data: Any
    build: Callable
    numba_type: Any
    capabilities: frozenset
