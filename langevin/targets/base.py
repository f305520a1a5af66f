"""What to sample: a log-density, its gradient, and how to report the parameters.

A :class:`Target` is the only thing a user must bring. It holds the log-density
``log π(x)`` (up to an additive constant) of a flat float vector ``x`` of length ``dim``,
in one or both of two forms:

* a **JAX** function ``logdensity(x) -> scalar``; the gradient comes from ``jax.grad``.
  Runs on the JAX backend.
* **Numba** functions: ``logdensity(x) -> float`` with ``grad(x) -> array``, or one
  ``value_and_grad(x) -> (float, array)``. Runs on the Numba backend. Numba cannot
  differentiate, so a Numba target without a gradient is refused.

Numba functions may take a last argument ``data`` (any value Numba can type: an array,
a tuple of arrays, ...), given once as ``Target.from_numba(..., data=...)``. Data passed
this way is an *argument* of the compiled chain loop, not a constant frozen into it, so
a new data set of the same types reuses the compiled loop (and its on-disk cache).

Besides the log-density a target may carry more **capabilities** that some kernels require
(the proximity operator of a nonsmooth part, a mirror map, per-datum log-likelihoods, a
score without a log-density): :mod:`langevin.targets.capabilities` lists them. Built-in and
user targets have the same structure: per backend, a mapping from capability name to function.

Positions are flat vectors inside the kernels; ``names`` maps blocks of the vector to
parameter names and shapes (``{"beta": 5, "log_sigma": ()}``), which the trace and
ArviZ use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from langevin.targets.capabilities import CAPABILITIES, derivable

__all__ = ["Target", "Reference", "parse_names"]


@dataclass(frozen=True)
class Reference:
    """What is known about a target's law, for tests and diagnostics.

    Attributes:
        mean: exact (or near-exact) mean of the flat position, shape ``(dim,)``, or None.
        cov: exact covariance ``(dim, dim)``, or None.
        draws: independent or well-mixed reference draws ``(n, dim)`` from outside the
            project (e.g. posteriordb's Stan runs), or None.
        mean_mcse: Monte Carlo standard error of ``mean`` when it comes from draws.
        source: where the numbers come from (a citation or a method).
    """

    mean: np.ndarray | None = None
    cov: np.ndarray | None = None
    draws: np.ndarray | None = None
    mean_mcse: np.ndarray | None = None
    sd: np.ndarray | None = None
    source: str = ""
    constrained: Mapping[str, Any] = field(default_factory=dict)


def parse_names(names: Mapping[str, int | tuple[int, ...]] | None, dim: int | None):
    """Turn ``{"beta": 5, "log_sigma": ()}`` into ``(dim, {name: (slice, shape)})``.

    A name maps to an int (a vector of that length), a tuple (an array of that shape; ``()``
    is a scalar). With ``names=None`` the whole position is one vector called ``"x"``.
    """
    if names is None:
        if dim is None:
            return None, None
        return dim, {"x": (slice(0, dim), (dim,))}
    if not isinstance(names, Mapping) or not names:
        raise TypeError(
            "names must be a non-empty mapping from parameter name to shape, e.g. "
            f"{{'beta': 5, 'log_sigma': ()}}; got {names!r}"
        )
    blocks = {}
    start = 0
    for name, shape in names.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"names: parameter name {name!r} must be a valid identifier")
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        try:
            shape = tuple(int(s) for s in shape)
        except TypeError:
            raise TypeError(
                f"names[{name!r}] must be an int or a tuple of ints; got {shape!r}"
            ) from None
        if any(s < 1 for s in shape):
            raise ValueError(f"names[{name!r}] has a non-positive size: {shape}")
        size = math.prod(shape)
        blocks[name] = (slice(start, start + size), shape)
        start += size
    if dim is not None and dim != start:
        raise ValueError(f"names describe {start} coordinates but dim={dim}")
    return start, blocks


_VG_HELP = (
    "Target.from_numba needs the gradient: pass numba.njit functions as\n"
    "    Target.from_numba(logdensity, grad)          # logdensity(x) -> float, grad(x) -> array\n"
    "or  Target.from_numba(value_and_grad=vg)         # vg(x) -> (float, array)\n"
    "Numba cannot differentiate a function; if you have a JAX log-density, use "
    "Target.from_jax(logdensity) with backend='jax'."
)
#: What kernels that need no log-density can run on (score-based samplers, minibatches).
_GRADIENT_FREE = frozenset({"score", "loglik"})


def _check_functions(backend: str, functions: Mapping[str, Callable | None]) -> dict:
    """The given capability functions (None dropped), checked by name and kind."""
    out = {}
    for name, fn in functions.items():
        if fn is None:
            continue
        if name not in CAPABILITIES:
            raise TypeError(f"unknown target capability {name!r}; known: {', '.join(CAPABILITIES)}")
        if not callable(fn):
            raise TypeError(f"{name} must be callable; got {type(fn).__name__}")
        if backend == "numba":
            from numba.core.registry import CPUDispatcher

            if not isinstance(fn, CPUDispatcher):
                raise TypeError(
                    f"{name} must be a numba.njit function (the Numba backend calls it from "
                    f"compiled code); got a plain {type(fn).__name__}. Decorate it with "
                    "@numba.njit, or use Target.from_jax for a JAX function."
                )
        out[name] = fn
    return out


def _check_numba_data(data: Any) -> None:
    """Refuse, with what is accepted, a ``data=`` that Numba cannot pass to compiled code."""
    import numba

    help_ = (
        "data= is passed to the Numba functions as their last argument, so it must be a NumPy "
        "array, a number, or a tuple or NamedTuple of those (e.g. "
        "Data = NamedTuple('Data', [('X', np.ndarray), ('y', np.ndarray)]))"
    )
    if isinstance(data, (dict, list, set)):
        raise TypeError(f"{help_}; got a {type(data).__name__}")
    try:
        numba.typeof(data)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{help_}; got {type(data).__name__}: {exc}") from None
    if isinstance(data, tuple):
        for item in data:
            _check_numba_data(item)


class Target:
    """A distribution known up to a constant: the thing a sampler samples.

    Build one with :meth:`from_jax` or :meth:`from_numba` (or take a built-in from
    :mod:`langevin.targets`). Built-ins carry both forms and run on either backend.

    Args:
        numba: capability name -> ``numba.njit`` function (see
            :mod:`langevin.targets.capabilities`), e.g. ``{"value_and_grad": vg}``.
        jax: capability name -> JAX function, e.g. ``{"logdensity": f}``.
        data: the Numba functions' last argument (None: they take none).

    Example:
        >>> import numba, numpy as np, langevin
        >>> @numba.njit
        ... def logp(x):
        ...     return -0.5 * np.dot(x, x)
        >>> @numba.njit
        ... def grad(x):
        ...     return -x
        >>> target = langevin.Target.from_numba(logp, grad, dim=3)
        >>> sorted(target.capabilities("numba"))
        ['grad', 'logdensity', 'score', 'value_and_grad']
    """

    def __init__(
        self,
        *,
        dim: int | None = None,
        names: Mapping[str, int | tuple[int, ...]] | None = None,
        numba: Mapping[str, Callable] | None = None,
        jax: Mapping[str, Callable] | None = None,
        data: Any = None,
        initial_position: np.ndarray | None = None,
        reference: Reference | None = None,
        name: str = "target",
        constrain: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None,
    ) -> None:
        if dim is not None:
            if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 1:
                raise ValueError(f"dim must be a positive int; got {dim!r}")
            dim = int(dim)
        dim, blocks = parse_names(names, dim)
        self.dim: int | None = dim
        self.blocks = blocks
        self.name = name
        self.numba_functions = _check_functions("numba", numba or {})
        self.jax_functions = _check_functions("jax", jax or {})
        if self.numba_functions and data is not None:
            _check_numba_data(data)
        self.data = data
        self.reference = reference
        self.constrain = constrain
        if initial_position is not None:
            initial_position = np.asarray(initial_position, dtype=np.float64)
            if dim is not None and initial_position.shape != (dim,):
                raise ValueError(
                    f"initial_position must have shape ({dim},); got {initial_position.shape}"
                )
        self.initial_position = initial_position
        self._cache: dict[Any, Any] = {}

    # -- constructors ---------------------------------------------------------------------
    @classmethod
    def from_jax(
        cls,
        logdensity: Callable | None = None,
        *,
        dim: int | None = None,
        names: Mapping[str, int | tuple[int, ...]] | None = None,
        name: str = "target",
        **capabilities: Callable,
    ) -> Target:
        """A target from a JAX log-density ``logdensity(x) -> scalar`` (gradient by autodiff).

        Runs on ``backend="jax"``. ``dim`` (or ``names``) may be left out when
        ``sample`` gets an ``initial_position``. More capabilities (``prox=``, ``score=``,
        ``loglik=``, ...; see :mod:`langevin.targets.capabilities`) go in as keywords.
        """
        if logdensity is not None and not callable(logdensity):
            raise TypeError(f"logdensity must be callable; got {type(logdensity).__name__}")
        if logdensity is None and not capabilities:
            raise TypeError("Target.from_jax needs a log-density (or another capability)")
        return cls(dim=dim, names=names, jax={"logdensity": logdensity, **capabilities},
                   name=name)  # fmt: skip

    @classmethod
    def from_numba(
        cls,
        logdensity: Callable | None = None,
        grad: Callable | None = None,
        *,
        value_and_grad: Callable | None = None,
        data: Any = None,
        dim: int | None = None,
        names: Mapping[str, int | tuple[int, ...]] | None = None,
        name: str = "target",
        **capabilities: Callable,
    ) -> Target:
        """A target from ``numba.njit`` functions: ``(logdensity, grad)`` or ``value_and_grad``.

        Each takes the flat position ``x`` (float64, C-contiguous) and, when ``data`` is
        given, ``data`` as its last argument. ``grad`` returns a new float64 array of the
        shape of ``x``; ``value_and_grad`` returns ``(float, array)``. Runs on
        ``backend="numba"``. More capabilities (``prox=``, ``score=``, ``loglik=``, ...;
        see :mod:`langevin.targets.capabilities`) go in as keywords.

        Give ``value_and_grad`` (it can share work between value and gradient) decorated
        with ``cache=True`` for the fastest start-up in later processes.
        """
        if value_and_grad is not None and (logdensity is not None or grad is not None):
            raise TypeError("give either (logdensity, grad) or value_and_grad=, not both")
        has_gradient = value_and_grad is not None or (logdensity is not None and grad is not None)
        if not has_gradient and not (_GRADIENT_FREE & set(capabilities)):
            raise TypeError(_VG_HELP)
        functions = {"logdensity": logdensity, "grad": grad, "value_and_grad": value_and_grad,
                     **capabilities}  # fmt: skip
        return cls(dim=dim, names=names, numba=functions, data=data, name=name)

    @classmethod
    def from_numpyro(cls, model: Callable, *args: Any, seed: int = 0, name: str | None = None,
                     **kwargs: Any) -> Target:  # fmt: skip
        """A NumPyro model on its unconstrained space, for ``backend="jax"`` (see
        :func:`langevin.targets.interop.from_numpyro`; ``pip install "langevin[numpyro]"``).

        ``*args, **kwargs`` are the model's arguments (its data); ``trace.to_arviz(
        constrained=True)`` shows every site on its support."""
        from langevin.targets.interop import from_numpyro

        return from_numpyro(model, *args, seed=seed, name=name, **kwargs)

    @classmethod
    def from_pymc(cls, model: Any, *, name: str | None = None) -> Target:
        """A PyMC model on its unconstrained space, for ``backend="numba"`` and ``"jax"``
        (see :func:`langevin.targets.interop.from_pymc`; ``pip install "langevin[pymc]"``).

        PyTensor compiles the model's log-density (Jacobians included) to Numba and to JAX;
        ``trace.to_arviz(constrained=True)`` shows every free random variable and
        deterministic on its support."""
        from langevin.targets.interop import from_pymc

        return from_pymc(model, name=name)

    # -- capabilities ---------------------------------------------------------------------
    def capabilities(self, backend: str) -> frozenset[str]:
        """The capabilities this target provides on ``backend``, derived ones included."""
        given = self.numba_functions if backend == "numba" else self.jax_functions
        return derivable(frozenset(given), backend) if given else frozenset()

    @property
    def has_jax(self) -> bool:
        return bool(self.jax_functions)

    @property
    def has_numba(self) -> bool:
        return bool(self.numba_functions)

    # Read-only views of the common functions (tests, benchmarks, diagnostics).
    @property
    def jax_logdensity(self) -> Callable | None:
        return self.jax_functions.get("logdensity")

    @property
    def numba_value_and_grad(self) -> Callable | None:
        return self.numba_functions.get("value_and_grad")

    @property
    def numba_logdensity(self) -> Callable | None:
        return self.numba_functions.get("logdensity")

    @property
    def numba_grad(self) -> Callable | None:
        return self.numba_functions.get("grad")

    @property
    def numba_data(self) -> Any:
        return self.data

    def with_dim(self, dim: int) -> Target:
        """This target with its dimension fixed (used when it was inferred from a start)."""
        if self.dim == dim:
            return self
        if self.dim is not None:
            raise ValueError(
                f"initial_position has {dim} coordinates but the target has dim={self.dim}"
            )
        new = Target.__new__(Target)
        new.__dict__.update(self.__dict__)
        new.dim, new.blocks = parse_names(None, dim)
        new._cache = self._cache
        return new

    def check(self, x: Any = None, **kwargs: Any):
        """Check this target's functions at ``x`` (default: its starting point, or zeros):
        the gradient against finite differences (as Stan's ``diagnose``), shapes, dtypes,
        finiteness, repeatability, writes into ``x``, agreement of the Numba and JAX forms.
        Returns a printable report; see :func:`langevin.targets.check.check_target`.

        Example:
            >>> import langevin
            >>> langevin.targets.gaussian(3).check().ok
            True
        """
        from langevin.targets.check import check_target

        return check_target(self, x, **kwargs)

    def checked(self) -> Target:
        """This target with its Numba functions compiled again in a checked mode: bounds
        checks on (an out-of-range index raises ``IndexError`` instead of reading or writing
        outside the array, which can crash the process) and Python's error model (division
        by zero raises ``ZeroDivisionError`` instead of giving inf). Slower; for finding what
        a misbehaving target does (``sample(..., checked=True)`` uses it). Only the given
        functions are recompiled, not other ``njit`` functions they call.
        """
        import numba

        new = Target.__new__(Target)
        new.__dict__.update(self.__dict__)
        new.numba_functions = {
            k: numba.njit(boundscheck=True, error_model="python")(fn.py_func)
            for k, fn in self.numba_functions.items()
        }
        new._cache = {}
        return new

    def names_or_default(self) -> dict[str, tuple[slice, tuple[int, ...]]]:
        if self.blocks is None:
            raise ValueError("the target's dimension is unknown; pass dim= or initial_position=")
        return self.blocks

    def __repr__(self) -> str:
        forms = [f for f, ok in (("jax", self.has_jax), ("numba", self.has_numba)) if ok]
        return f"Target({self.name!r}, dim={self.dim}, backends={forms})"
