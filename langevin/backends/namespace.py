"""The array namespace ``xp``: one table of names, with each backend's implementation.

Kernel math may use exactly the names below. A row gives the NumPy, Numba and JAX
implementations: a dotted name resolved here (``np.`` is NumPy, ``jnp.`` is ``jax.numpy``),
or ``CUSTOM`` when the backend's own module (:mod:`~langevin.backends.numba_ops`,
:mod:`~langevin.backends.jax_ops`, :mod:`~langevin.backends.numpy_ops`) defines it, because
it needs an ``@overload`` or ``jax.lax``. The capability calls (``xp.value_and_grad``,
``xp.prox``, ...) are generated from :mod:`langevin.targets.capabilities`.

Elementwise means elementwise on **every** backend, scalars and arrays alike (``maximum``,
``minimum``, ``sign``, ``where``, ``clip``): a soft-threshold written once compiles twice.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from langevin.backends.target_access import ACCESSOR_NAMES

__all__ = ["Op", "TABLE", "NAMES", "CUSTOM", "bind"]

CUSTOM = "custom"


class Op(NamedTuple):
    name: str
    meaning: str
    numpy: str
    numba: str
    jax: str


def _same(name: str, meaning: str, numpy_name: str | None = None) -> Op:
    n = numpy_name or name
    return Op(name, meaning, f"np.{n}", f"np.{n}", f"jnp.{n}")


TABLE: tuple[Op, ...] = (
    # elementwise maths
    _same("sqrt", "elementwise square root"),
    _same("exp", "elementwise exponential"),
    _same("log", "elementwise natural logarithm"),
    _same("log1p", "elementwise log(1 + a)"),
    _same("expm1", "elementwise exp(a) − 1"),
    _same("abs", "elementwise absolute value"),
    _same("sin", "elementwise sine"),
    _same("cos", "elementwise cosine"),
    _same("arctan", "elementwise arctangent"),
    _same("sign", "elementwise sign (−1, 0, 1)"),
    _same("floor", "elementwise floor"),
    _same("maximum", "elementwise maximum of two arrays or scalars"),
    _same("minimum", "elementwise minimum of two arrays or scalars"),
    Op("clip", "elementwise clip(a, lo, hi)", "np.clip", CUSTOM, "jnp.clip"),
    Op("where", "elementwise where(cond, a, b), scalar cond included", "np.where", CUSTOM,
       "jnp.where"),
    _same("isfinite", "elementwise finiteness test"),
    _same("logical_not", "elementwise not"),
    # reductions and constructors
    _same("sum", "sum of all entries"),
    _same("max", "largest entry"),
    _same("dot", "dot product / matrix-vector product"),
    _same("cumsum", "cumulative sum of a 1-D array"),
    _same("arange", "0, 1, …, n − 1"),
    _same("zeros", "an array of zeros"),
    _same("zeros_like", "zeros of the shape and dtype of a"),
    _same("inf", "+∞"),
    _same("nan", "not a number"),
    Op("all_finite", "True when every entry of a 1-D array is finite", CUSTOM, CUSTOM, CUSTOM),
    # control flow
    Op("select", "a if scalar cond else b (a, b scalars or arrays of one shape)", CUSTOM,
       CUSTOM, CUSTOM),
    Op("select_tree", "select over two NamedTuples of the same type", CUSTOM, CUSTOM, CUSTOM),
    Op("fori_loop", "carry = body(i, carry, args) for i in range(lower, upper)", CUSTOM,
       CUSTOM, CUSTOM),
    Op("cond", "true_fn(args) if pred else false_fn(args); only the branch taken runs",
       CUSTOM, CUSTOM, CUSTOM),
    Op("while_loop", "while cond_fn(carry, args): carry = body_fn(carry, args); a dynamic "
       "trip count (under JAX's vmap: until every member is done)", CUSTOM, CUSTOM, CUSTOM),
    # population (SMC) helpers
    Op("to_int", "whole non-negative floats or booleans as integers", CUSTOM, CUSTOM, CUSTOM),
    Op("inverse_cdf", "min{j : cdf[j] > u[m]} for sorted u", CUSTOM, CUSTOM, CUSTOM),
    Op("scatter_add", "a copy of a with values added at idx", CUSTOM, CUSTOM, CUSTOM),
    Op("set_at", "a with a[i] = value", CUSTOM, CUSTOM, CUSTOM),
    Op("take", "a[idx] along the first axis", CUSTOM, CUSTOM, CUSTOM),
    Op("take_tree", "take on every field of a NamedTuple", CUSTOM, CUSTOM, CUSTOM),
    Op("index_tree", "entry i of every field of a (nested) NamedTuple", CUSTOM, CUSTOM, CUSTOM),
    # the target's capabilities (generated: langevin.backends.target_access)
    *(Op(name, f"the target's {name!r} capability", CUSTOM, CUSTOM, CUSTOM)
      for name in ACCESSOR_NAMES),
)  # fmt: skip

NAMES: tuple[str, ...] = tuple(op.name for op in TABLE)


def _resolve(dotted: str) -> Any:
    prefix, attr = dotted.split(".", 1)
    if prefix == "np":
        import numpy

        return getattr(numpy, attr)
    if prefix == "jnp":
        import jax.numpy

        return getattr(jax.numpy, attr)
    raise ValueError(f"cannot resolve {dotted!r}")


def bind(module_globals: dict[str, Any], backend: str) -> None:
    """Fill a backend module's globals with the table's non-custom entries and ``__all__``.

    Call it at the end of the backend's module: a ``CUSTOM`` name the module did not define
    is an error at import, so no backend can fall behind the table.
    """
    missing = []
    for op in TABLE:
        impl = getattr(op, backend)
        if impl == CUSTOM:
            if op.name not in module_globals:
                missing.append(op.name)
        else:
            module_globals[op.name] = _resolve(impl)
    if missing:
        raise ImportError(f"the {backend} namespace does not define {missing}")
    module_globals["__all__"] = list(NAMES)


def describe() -> str:  # pragma: no cover - documentation helper
    """The table as text (for the design notes)."""
    return "\n".join(f"{op.name:14s} {op.meaning}" for op in TABLE)
