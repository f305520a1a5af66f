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

import dis
import functools
import hashlib
import os
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np

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
    # Numba names compiled symbols by qualified name and a per-process counter, and loads
    # every disk-cached library into one symbol table, where the first definition of a name
    # wins: a twin named after its content never shares a symbol with different code compiled
    # in another process (a same-named class of a model factory, an edited notebook cell).
    twin.__qualname__ = f"{fn.__qualname__}__{source_fingerprint(fn)}"
    twin.__module__ = fn.__module__
    twin.__doc__ = fn.__doc__
    compiled = compile_fn(twin)
    if not overrides:
        memo[fn] = compiled
    return compiled


_BOUND: dict = {}

#: the longest name :func:`bind_globals` gives a bound copy: Numba's disk cache names its
#: files after the qualified name (module, name, line, Python version), and nested bindings
#: (a binding of bindings) would otherwise exceed the file system's 255-byte file names
MAX_BOUND_NAME = 96


def _capped_name(name: str) -> str:
    """``name`` as an identifier of at most :data:`MAX_BOUND_NAME` characters: a long one keeps
    its start and ends in a hash of the whole (distinct names stay distinct)."""
    name = name.replace(".", "_").replace("<", "").replace(">", "")
    if len(name) <= MAX_BOUND_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name[: MAX_BOUND_NAME - 18]}__{digest}"


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
        bound.__qualname__ = _capped_name(f"{fn.__qualname__}__{suffix}")
        bound.__module__ = fn.__module__
        bound.__doc__ = fn.__doc__
        _BOUND[key] = portable(bound)
    return _BOUND[key]


# -- fingerprints: compiled code keyed on what it computes ------------------------------------
#
# Numba's disk cache finds a compiled function by its qualified name and the timestamp of its
# own file, not of its callees. A compiled loop therefore carries, in its name, a fingerprint
# of *what it computes*: the code of every function it reaches and the values it freezes in
# (referenced globals, closure cells, defaults). Names alone are never enough: two classes
# with one name (an edited notebook cell run again, a model factory) must not share code,
# and no source file is read, so code from a notebook cell, ``exec`` or stdin works.

_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"})
#: objects with no content digest, each given a serial for the process (kept alive, so an
#: id is never reused by another object)
_OPAQUE: dict[int, tuple[Any, int]] = {}


@functools.lru_cache(maxsize=4096)
def _code_digest(code: types.CodeType) -> tuple[bytes, tuple[str, ...]]:
    """``(digest of the code object, the global names it reads)``, nested code included.

    The filename and line numbers are left out: moving code does not change what it does.
    """
    h = hashlib.sha256()
    names: list[str] = []
    for part in (code.co_name, code.co_argcount, code.co_posonlyargcount,
                 code.co_kwonlyargcount, code.co_flags, code.co_names, code.co_varnames,
                 code.co_freevars, code.co_cellvars):  # fmt: skip
        h.update(repr(part).encode())
    h.update(code.co_code)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            digest, inner = _code_digest(const)
            h.update(digest)
            names.extend(inner)
        else:
            h.update(_const_repr(const).encode())
    for ins in dis.get_instructions(code):
        if ins.opname in _GLOBAL_OPS and ins.argval not in names:
            names.append(ins.argval)
    return h.digest(), tuple(names)


def _const_repr(c: Any) -> str:
    if isinstance(c, (tuple, frozenset)):
        items = [_const_repr(x) for x in c]
        items = sorted(items) if isinstance(c, frozenset) else items
        return f"{type(c).__name__}({', '.join(items)})"
    return f"{type(c).__name__}:{c!r}"


@functools.cache
def _file_digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _module_digest(module: types.ModuleType) -> str:
    """A module by name, and by its file's content where it has one (the package's own
    modules: editing ``numba_ops`` invalidates the loops that use it)."""
    name = getattr(module, "__name__", "?")
    path = getattr(module, "__file__", None)
    if name.split(".")[0] == "langevin" and path and os.path.isfile(path):
        return f"module:{name}:{_file_digest(path)}"
    return f"module:{name}:{getattr(module, '__version__', '')}"


class _Digester:
    """The digest of a value as compiled code sees it (one fingerprint's walk)."""

    def __init__(self) -> None:
        self.memo: dict[int, str] = {}
        self.keep: list = []  # keeps every memoised object alive during the walk

    def value(self, v: Any) -> str:
        if isinstance(v, _SCALARS):
            return f"{type(v).__name__}:{v!r}"
        key = id(v)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = "<cycle>"  # a function reaching itself
        self.keep.append(v)
        out = self._value(v)
        self.memo[key] = out
        return out

    def _value(self, v: Any) -> str:
        if isinstance(v, types.FunctionType):
            return self.function(v)
        if isinstance(v, types.ModuleType):
            return _module_digest(v)
        if isinstance(v, np.ndarray):
            a = np.ascontiguousarray(v)
            data = hashlib.sha256(a.view(np.uint8).reshape(-1) if a.size else b"").hexdigest()
            return f"ndarray:{a.dtype.str}:{a.shape}:{data}"
        if isinstance(v, np.generic):
            return f"{type(v).__name__}:{v!r}"
        if isinstance(v, (tuple, list)):
            inner = ",".join(self.value(x) for x in v)
            return f"{type(v).__module__}.{type(v).__qualname__}({inner})"
        if isinstance(v, (set, frozenset)):
            return f"{type(v).__name__}({','.join(sorted(self.value(x) for x in v))})"
        if isinstance(v, dict):
            items = sorted(f"{self.value(k)}={self.value(x)}" for k, x in v.items())
            return f"dict({','.join(items)})"
        if isinstance(v, type):
            return self.cls(v)
        if isinstance(v, (staticmethod, classmethod)):
            return f"{type(v).__name__}({self.value(v.__func__)})"
        py_func = getattr(v, "py_func", None)  # a numba dispatcher: its Python function
        if isinstance(py_func, types.FunctionType):
            return f"dispatcher({self.function(py_func)})"
        wrapped = getattr(v, "__wrapped__", None)  # functools.cache, functools.wraps
        if isinstance(wrapped, types.FunctionType):
            return f"wrapped({self.function(wrapped)})"
        if isinstance(v, (types.BuiltinFunctionType, np.ufunc)):
            return f"builtin:{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', v)}"
        text = repr(v)
        if type(v).__repr__ is not object.__repr__ and " at 0x" not in text:
            return f"{type(v).__module__}.{type(v).__qualname__}:{text}"
        # nothing to read the content from: unique for the process (never shared by name)
        if id(v) not in _OPAQUE:
            _OPAQUE[id(v)] = (v, len(_OPAQUE))
        return f"opaque:{type(v).__qualname__}:{os.getpid()}:{_OPAQUE[id(v)][1]}"

    def cls(self, c: type) -> str:
        """A class: its name, NamedTuple fields, and the functions it defines (a portable
        ``staticmethod`` called as ``Model.transition_math`` is compiled code too)."""
        parts = [f"class:{c.__module__}.{c.__qualname__}"]
        if c.__module__ == "builtins":
            return parts[0]
        fields = getattr(c, "_fields", None)
        if isinstance(fields, tuple):
            parts.append(f"fields:{fields}")
        for name, attr in sorted(vars(c).items()):
            fn = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
            if is_portable(fn):
                parts.append(f"{name}={self.function(fn)}")
        return "|".join(parts)

    def function(self, fn: types.FunctionType) -> str:
        """A function: its code, defaults, closure cells and every global it reads."""
        code_digest, names = _code_digest(fn.__code__)
        h = hashlib.sha256(code_digest)
        for d in fn.__defaults__ or ():
            h.update(self.value(d).encode())
        for d in sorted((fn.__kwdefaults__ or {}).items()):
            h.update(self.value(d).encode())
        for cell in fn.__closure__ or ():
            try:
                h.update(self.value(cell.cell_contents).encode())
            except ValueError:  # an empty cell
                h.update(b"<empty>")
        g = fn.__globals__
        for name in names:
            if name == "xp":  # bound per backend (the namespace modules key the caches)
                continue
            h.update(name.encode())
            h.update(self.value(g[name]).encode() if name in g else b"<builtin>")
        return f"fn:{h.hexdigest()}"


def source_fingerprint(
    *roots: Callable,
    extra_modules: tuple[types.ModuleType, ...] = (),
    extra_values: tuple[Any, ...] = (),
) -> str:
    """A short hash of what the compiled code of ``roots`` computes.

    It covers the code of every function ``roots`` reach through the globals they read
    (portable callees, helpers, Numba dispatchers), the values compiled code freezes in
    (numbers, arrays, tuples, NamedTuple classes, closure cells, defaults), the files of
    ``extra_modules`` (the backend's namespace and engine modules) and ``extra_values``
    (anything else the compiled code depends on, such as declared noise kinds). Compiled
    loops carry it in their names, so Numba's disk cache — which only checks the timestamp of
    the cached function's own file — never serves code compiled for other math: not after an
    edit to a callee, nor for a second class or function with the same name (a model
    factory, a notebook cell run again). No source file is read for user code, so functions
    defined in a notebook cell, ``exec`` or stdin work.

    Args:
        roots: functions (usually portable) whose compiled code is keyed.
        extra_modules: modules keyed by the content of their file (by name without one).
        extra_values: further values keyed by content.

    Returns:
        12 hexadecimal characters.
    """
    digester = _Digester()
    h = hashlib.sha256()
    for root in roots:
        h.update(digester.value(root).encode())
    for m in extra_modules:
        h.update(_module_digest(m).encode())
    for v in extra_values:
        h.update(digester.value(v).encode())
    h.update(sys.version.encode())
    return h.hexdigest()[:12]
