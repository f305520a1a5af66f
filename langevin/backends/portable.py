"""Kernel math written once, bound to each backend's array namespace.

Kernel modules write their math against one module-level name, ``xp``, and mark each
function with :func:`portable`. A backend makes a *twin* of a portable function: the same
code object with a copy of its globals in which

* ``xp`` is the backend's namespace module (:mod:`langevin.backends.numba_ops` or
  :mod:`langevin.backends.jax_ops`), and
* every other portable function the code refers to is replaced by *its* twin,

then compiles the twin (``numba.njit`` for Numba; plain tracing under ``jax.jit`` for JAX).
The original function and its module are never mutated, so both backends can hold twins of
the same kernel in one process.

Why globals-rebinding rather than passing ``xp`` as an argument: Numba resolves module
attributes (``xp.sqrt``) at compile time into direct calls, and JAX traces them away, so the
namespace costs nothing at run time on either backend. An argument would have to be a typed
value in Numba, which modules are not.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import sys
import types
from collections.abc import Callable
from typing import Any

__all__ = ["portable", "is_portable", "make_twin", "source_fingerprint", "bind_globals"]

_PORTABLE_ATTR = "__langevin_portable__"


def portable(fn: Callable) -> Callable:
    """Mark ``fn`` as kernel math written against ``xp`` (compiled by every backend).

    A portable function must be pure: no in-place mutation of its array arguments, no Python
    control flow on array values (use ``xp.select`` / ``xp.fori_loop``), and it may call only
    ``xp.*``, other portable functions, and NamedTuple constructors.
    """
    setattr(fn, _PORTABLE_ATTR, True)
    return fn


def is_portable(obj: Any) -> bool:
    return isinstance(obj, types.FunctionType) and getattr(obj, _PORTABLE_ATTR, False)


def make_twin(
    fn: Callable,
    namespace: types.ModuleType,
    compile_fn: Callable[[Callable], Callable],
    memo: dict[Callable, Callable],
    overrides: dict[str, Any] | None = None,
) -> Callable:
    """The backend twin of portable function ``fn`` (see the module docstring).

    Args:
        fn: a portable function (or a backend loop template that refers to portable ones).
        namespace: the backend's namespace module, bound to the name ``xp``.
        compile_fn: what to do with each rebound function (``numba.njit`` or identity).
        memo: cache shared by one backend, so each portable function is twinned once.
        overrides: extra global names to bind in ``fn`` only (e.g. a loop template's step).
    """
    if fn in memo and not overrides:
        return memo[fn]
    new_globals = dict(fn.__globals__)
    new_globals["xp"] = namespace
    for name in fn.__code__.co_names:
        value = new_globals.get(name)
        if is_portable(value) and value is not fn:
            new_globals[name] = make_twin(value, namespace, compile_fn, memo)
    if overrides:
        new_globals.update(overrides)
    twin = types.FunctionType(
        fn.__code__, new_globals, fn.__name__, fn.__defaults__, fn.__closure__
    )
    twin.__qualname__ = fn.__qualname__
    twin.__module__ = fn.__module__
    twin.__doc__ = fn.__doc__
    compiled = compile_fn(twin)
    if not overrides:
        memo[fn] = compiled
    return compiled


_BOUND: dict = {}


def bind_globals(fn: Callable, **names: Any) -> Callable:
    """A portable copy of ``fn`` whose global ``names`` are bound to the given values (model
    parts a combinator calls by name, such as a filter's ``_log_observation``).

    The copy is memoised per ``(fn, names)``, so the backends' compiled code keyed on it is
    reused; its portable callees (bound ones included) key the Numba disk cache, as for any
    portable function (:func:`source_fingerprint`).
    """
    key = (fn, tuple(sorted(names.items(), key=lambda kv: kv[0])))
    if key not in _BOUND:
        new_globals = dict(fn.__globals__)
        new_globals.update(names)
        bound = types.FunctionType(fn.__code__, new_globals, fn.__name__, fn.__defaults__,
                                   fn.__closure__)  # fmt: skip
        suffix = "_".join(getattr(v, "__qualname__", type(v).__name__) for _, v in key[1])
        bound.__qualname__ = f"{fn.__qualname__}__{suffix}".replace(".", "_").replace("<", "")
        bound.__qualname__ = bound.__qualname__.replace(">", "")
        bound.__module__ = fn.__module__
        bound.__doc__ = fn.__doc__
        _BOUND[key] = portable(bound)
    return _BOUND[key]


def _portable_closure(fn: Callable, seen: set) -> None:
    if fn in seen:
        return
    seen.add(fn)
    for name in fn.__code__.co_names:
        value = fn.__globals__.get(name)
        if is_portable(value):
            _portable_closure(value, seen)


@functools.cache
def _file_digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def source_fingerprint(*roots: Callable, extra_modules: tuple[types.ModuleType, ...] = ()) -> str:
    """A short hash of every source file the portable call graph of ``roots`` lives in.

    Numba's on-disk cache only notices edits to the file of the cached function itself, not
    of the functions it calls. Compiled loops therefore carry this fingerprint in their
    names, so an edit to any kernel file invalidates exactly the loops that use it.
    """
    seen: set = set()
    for root in roots:
        _portable_closure(root, seen)
    files = {inspect.getsourcefile(f) for f in seen}
    files |= {inspect.getsourcefile(m) for m in extra_modules}
    h = hashlib.sha256()
    for path in sorted(p for p in files if p):
        h.update(_file_digest(path).encode())
    h.update(sys.version.encode())
    return h.hexdigest()[:12]
