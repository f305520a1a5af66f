"""The namespace's capability calls, ``xp.<capability>(target, x, ...)``, for every backend.

Generated from :data:`langevin.targets.capabilities.CAPABILITIES`: one function per
capability, which reads the target's *form* tuple (see :mod:`langevin.targets.capabilities`)

* slot present: call it, with the target's ``data`` as last argument when it has data;
* slot absent: derive it from capabilities that are present (``value_and_grad`` from
  ``logdensity`` and ``grad``, ...; :data:`DERIVATIONS`);
* a combinator's tag: call the combinator's registered portable implementation, twinned
  for this backend.

On JAX and NumPy this is Python run at trace time (free under ``jit``); on Numba the same
decisions are made from the form's *types* by ``@overload``, at compile time.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from langevin.backends.portable import make_twin
from langevin.targets.capabilities import (
    CAPABILITIES,
    SLOTS,
    BaseForm,
    combinator_capabilities,
    combinator_impl,
)

__all__ = ["DERIVATIONS", "python_accessors", "numba_accessors", "ACCESSOR_NAMES"]

ACCESSOR_NAMES: tuple[str, ...] = tuple(CAPABILITIES)

#: capability -> ((sources, expression over accessor calls), ...), tried in order.
DERIVATIONS: dict[str, tuple[tuple[frozenset, str], ...]] = {
    "value_and_grad": ((frozenset({"logdensity", "grad"}),
                        "(logdensity(target, x), grad(target, x))"),),
    "logdensity": ((frozenset({"value_and_grad"}), "value_and_grad(target, x)[0]"),),
    "grad": ((frozenset({"value_and_grad"}), "value_and_grad(target, x)[1]"),),
    "score": ((frozenset({"grad"}), "grad(target, x)"),
              (frozenset({"value_and_grad"}), "value_and_grad(target, x)[1]")),
}  # fmt: skip


def _available(direct: frozenset) -> frozenset:
    have = set(direct)
    changed = True
    while changed:
        changed = False
        for name, rules in DERIVATIONS.items():
            if name not in have and any(src <= have for src, _ in rules):
                have.add(name)
                changed = True
    return frozenset(have)


def _derivation(name: str, have: frozenset) -> str | None:
    for sources, expression in DERIVATIONS.get(name, ()):
        if sources <= _available(have):
            return expression
    return None


def _arglist(name: str) -> str:
    return "".join(f", {a}" for a in CAPABILITIES[name].args)


def _missing(name: str) -> Exception:
    return TypeError(
        f"the target has no {name!r} capability (and none it can be derived from): the "
        "kernel should have declared it in Kernel.requires, which is checked before compiling"
    )


# -- JAX and NumPy: decisions in Python, at trace time -----------------------------------------
def python_accessors(namespace: types.ModuleType, memo: dict) -> dict[str, Callable]:
    """The capability functions of a Python-level namespace (JAX, NumPy)."""
    accessors: dict[str, Callable] = {}
    scope: dict[str, Any] = {}  # the globals of derivations: the accessors themselves

    def direct(target) -> frozenset:
        tag = target[0]
        if isinstance(tag, BaseForm):
            return frozenset(n for i, n in enumerate(SLOTS) if target[1 + i] is not None)
        return combinator_capabilities(type(tag))

    def make(name: str) -> Callable:
        slot = 1 + SLOTS.index(name)

        def accessor(target, x, *args):
            tag = target[0]
            if isinstance(tag, BaseForm):
                fn = target[slot]
                if fn is not None:
                    data = target[-1]
                    return fn(x, *args) if data is None else fn(x, *args, data)
            else:
                impl = combinator_impl(type(tag), name)
                if impl is not None:
                    return make_twin(impl, namespace, lambda f: f, memo)(target, x, *args)
            expression = _derivation(name, direct(target))
            if expression is None:
                raise _missing(name)
            return eval(expression, scope, {"target": target, "x": x})

        accessor.__name__ = name
        accessor.__doc__ = f"``{name}`` of the target: {CAPABILITIES[name].meaning}."
        return accessor

    for name in ACCESSOR_NAMES:
        accessors[name] = make(name)
    scope.update(accessors)
    return accessors


# -- Numba: the same decisions from the form's types, at compile time --------------------------
def numba_accessors(namespace: types.ModuleType, memo: dict) -> dict[str, Callable]:
    """The capability functions of the Numba namespace: stubs with ``@overload``s."""
    import numba
    from numba import types as nt
    from numba.extending import overload

    stubs: dict[str, Callable] = {}

    def entries(target) -> list:
        return list(target.types) if hasattr(target, "types") else [target.dtype] * len(target)

    def direct(target) -> frozenset:
        tys = entries(target)
        tag_cls = tys[0].instance_class
        if tag_cls is BaseForm:
            return frozenset(
                n for i, n in enumerate(SLOTS) if not isinstance(tys[1 + i], nt.NoneType)
            )
        return combinator_capabilities(tag_cls)

    def make(name: str) -> Callable:
        extra = _arglist(name)
        scope: dict[str, Any] = {}
        exec(f"def {name}(target, x{extra}):\n    raise NotImplementedError\n", scope)
        stub = scope[name]
        stub.__doc__ = f"``{name}`` of the target: {CAPABILITIES[name].meaning}."
        slot = 1 + SLOTS.index(name)

        def generate(target, x, *args):
            if not isinstance(target, nt.BaseTuple) or isinstance(target, nt.BaseNamedTuple):
                return None
            tys = entries(target)
            if not (tys and isinstance(tys[0], nt.BaseNamedTuple)):
                return None
            tag_cls = tys[0].instance_class
            impl_scope: dict[str, Any] = dict(stubs)
            if tag_cls is BaseForm and not isinstance(tys[slot], nt.NoneType):
                data = "" if isinstance(tys[-1], nt.NoneType) else ", target[-1]"
                body = f"target[{slot}](x{extra}{data})"
            elif tag_cls is not BaseForm and combinator_impl(tag_cls, name) is not None:
                impl_scope["impl"] = make_twin(
                    combinator_impl(tag_cls, name), namespace, numba.njit, memo
                )
                body = f"impl(target, x{extra})"
            else:
                body = _derivation(name, direct(target))
                if body is None:
                    return None
            src = f"def impl_{name}(target, x{extra}):\n    return {body}\n"
            exec(src, impl_scope)
            return impl_scope[f"impl_{name}"]

        # overload needs the stub's exact parameters
        params = f"target, x{extra}"
        gen_scope = {"generate": generate}
        exec(f"def typer({params}):\n    return generate({params})\n", gen_scope)
        overload(stub)(gen_scope["typer"])
        return stub

    for name in ACCESSOR_NAMES:
        stubs[name] = make(name)
    return stubs
