"""Nonsmooth parts g of a composite target U = f + g: a registry of penalties.

A :class:`Penalty` is a convex function g given by its proximity operator and its value,
each **written once** against ``xp`` (:mod:`langevin.proximal.operators`), with its
parameters as runtime values; :meth:`Penalty.numba_functions` and
:meth:`Penalty.jax_functions` compile it for each backend, :meth:`Penalty.prox` and
:meth:`Penalty.value` evaluate the NumPy twin (tests, projections of a start). A user's own
g enters the same way: :meth:`Penalty.from_portable` (written once), :meth:`Penalty.from_jax`
or :meth:`Penalty.from_numba` (one backend each); :func:`register_penalty` names it so that
:func:`penalty` builds it by name.

Declarations each penalty carries (the kernels and helpers read them):

* ``separable``: g(x) = Σ g_i(x_i);
* ``sign_invariant``: ∂g(u) depends on u only through the signs of its coordinates (weighted
  L1, the nonnegative orthant). For such g and a separable Legendre ψ, the left Bregman prox
  is the Euclidean prox *transported* by h(u) = ∇ψ(u) − ∇ψ(0):
  P_λ^ψ g(x) = h⁻¹(prox_{λg}(h(x))) (:mod:`langevin.proximal.bregman`), which is how the
  Bregman–Moreau kernels use a target's ``prox``;
* ``smoothing_bias_order``: the order p of the bias of π_λ ∝ exp(−f − g_λ) against π in the
  smoothing λ that theory gives: 1 for a Lipschitz g (total variation distance O(λ);
  Durmus, Moulines & Pereyra 2018, Prop. 3.1), 1/2 for the indicator of a convex set
  (Brosse, Durmus, Moulines & Pereyra 2017, "Sampling from a log-concave distribution with
  compact support with proximal Langevin Monte Carlo", COLT).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from langevin.proximal import operators as ops
from langevin.proximal import tv as tv_mod

__all__ = [
    "Penalty",
    "register_penalty",
    "penalty",
    "PENALTIES",
    "l1",
    "weighted_l1",
    "box",
    "nonnegative",
    "simplex",
    "elastic_net",
    "group_l1",
    "total_variation",
    "zero",
]

_NUMBA_MEMO: dict = {}
_NUMPY_MEMO: dict = {}


def _identity(f):
    return f


class _NoParams(NamedTuple):
    """The params of a user penalty that takes none (functions called without them)."""


@dataclass(frozen=True, eq=False)
class Penalty:
    """A convex, possibly nonsmooth g with its proximity operator, on one or both backends.

    Attributes:
        name: a label (``"l1"``, ``"box"``, ...).
        params: a NamedTuple of arrays/scalars, the runtime parameters of the functions.
        prox_math, value_math: portable ``prox(x, lam, params)`` and ``value(x, params)``
            (None for a penalty given per backend).
        numba_prox, numba_value: ``numba.njit`` functions with the same signatures
            (override the portable ones on Numba).
        jax_prox, jax_value: JAX functions with the same signatures.
        numpy_prox: a NumPy ``prox(x, lam, params)`` where the portable one is absent.
        separable, sign_invariant, smoothing_bias_order: declarations (module docstring).
        dim: the dimension the parameters imply (None when they broadcast to any).
        lipschitz: a Lipschitz constant of g when known (None otherwise).
        indicator: g is the indicator of a closed convex set (its prox is a projection).
    """

    name: str
    params: Any
    prox_math: Callable | None = None
    value_math: Callable | None = None
    numba_prox: Callable | None = None
    numba_value: Callable | None = None
    jax_prox: Callable | None = None
    jax_value: Callable | None = None
    numpy_prox: Callable | None = None
    separable: bool = False
    sign_invariant: bool = False
    smoothing_bias_order: float | None = None
    dim: int | None = None
    lipschitz: float | None = None
    indicator: bool = False
    _cache: dict = field(default_factory=dict, repr=False)

    # -- user penalties ------------------------------------------------------------------------
    @classmethod
    def from_portable(
        cls,
        prox: Callable,
        value: Callable,
        params: Any = None,
        *,
        name: str = "custom",
        separable: bool = False,
        sign_invariant: bool = False,
        smoothing_bias_order: float | None = None,
        dim: int | None = None,
    ) -> Penalty:
        """A penalty written once against ``xp``: ``prox(x, lam, params)`` and
        ``value(x, params)`` marked :func:`~langevin.backends.portable.portable`, ``params``
        a NamedTuple (runtime values on both backends)."""
        from langevin.backends.portable import is_portable

        for argname, fn in (("prox", prox), ("value", value)):
            if not is_portable(fn):
                raise TypeError(
                    f"Penalty.from_portable: {argname} must be a function marked @portable "
                    f"(written against xp); got {fn!r}. For one backend use Penalty.from_jax "
                    "or Penalty.from_numba."
                )
        return cls(
            name,
            _check_params(params),
            prox_math=prox,
            value_math=value,
            separable=separable,
            sign_invariant=sign_invariant,
            smoothing_bias_order=smoothing_bias_order,
            dim=dim,
        )

    @classmethod
    def from_jax(
        cls,
        prox: Callable,
        value: Callable,
        params: Any = None,
        *,
        name: str = "custom",
        separable: bool = False,
        sign_invariant: bool = False,
        smoothing_bias_order: float | None = None,
        dim: int | None = None,
    ) -> Penalty:
        """A JAX-only penalty: ``prox(x, lam)`` and ``value(x)`` (or with a last argument
        ``params`` when ``params`` is given)."""
        _check_callables("Penalty.from_jax", prox, value)
        return cls(
            name,
            _check_params(params),
            jax_prox=prox,
            jax_value=value,
            separable=separable,
            sign_invariant=sign_invariant,
            smoothing_bias_order=smoothing_bias_order,
            dim=dim,
        )

    @classmethod
    def from_numba(
        cls,
        prox: Callable,
        value: Callable,
        params: Any = None,
        *,
        name: str = "custom",
        separable: bool = False,
        sign_invariant: bool = False,
        smoothing_bias_order: float | None = None,
        dim: int | None = None,
    ) -> Penalty:
        """A Numba-only penalty: ``numba.njit`` functions ``prox(x, lam)`` and ``value(x)``
        (or with a last argument ``params`` when ``params`` is given). ``prox`` returns a new
        float64 array."""
        from numba.core.registry import CPUDispatcher

        _check_callables("Penalty.from_numba", prox, value)
        for argname, fn in (("prox", prox), ("value", value)):
            if not isinstance(fn, CPUDispatcher):
                raise TypeError(
                    f"Penalty.from_numba: {argname} must be a numba.njit function; got a plain "
                    f"{type(fn).__name__}"
                )
        return cls(
            name,
            _check_params(params),
            numba_prox=prox,
            numba_value=value,
            separable=separable,
            sign_invariant=sign_invariant,
            smoothing_bias_order=smoothing_bias_order,
            dim=dim,
        )

    # -- per backend ---------------------------------------------------------------------------
    @property
    def has_numba(self) -> bool:
        return (self.prox_math is not None or self.numba_prox is not None) and (
            self.value_math is not None or self.numba_value is not None
        )

    @property
    def has_jax(self) -> bool:
        return (self.prox_math is not None or self.jax_prox is not None) and (
            self.value_math is not None or self.jax_value is not None
        )

    def numba_functions(self) -> tuple[Callable, Callable]:
        """``(prox(x, lam, params), value(x, params))`` as ``numba.njit`` functions."""
        if "numba" not in self._cache:
            if not self.has_numba:
                raise TypeError(
                    f"the penalty {self.name!r} has no Numba form (it was given with "
                    "Penalty.from_jax); use backend='jax', or give it with Penalty.from_numba "
                    "or Penalty.from_portable"
                )
            import numba

            from langevin.backends import numba_ops
            from langevin.backends.portable import make_twin

            def twin(fn):
                return make_twin(fn, numba_ops, numba.njit, _NUMBA_MEMO)

            prox = self.numba_prox if self.numba_prox is not None else twin(self.prox_math)
            value = self.numba_value if self.numba_value is not None else twin(self.value_math)
            if isinstance(self.params, _NoParams):
                prox, value = _numba_drop_params(prox, value)
            self._cache["numba"] = (prox, value)
        return self._cache["numba"]

    def numba_params(self) -> Any:
        """The params as Numba sees them (float64 / int64 arrays)."""
        return _cast_tree(self.params, np.float64)

    def jax_functions(self) -> tuple[Callable, Callable]:
        """``(prox(x, lam), value(x))`` in JAX, closing over the params cast to x's dtype."""
        if "jax" not in self._cache:
            if not self.has_jax:
                raise TypeError(
                    f"the penalty {self.name!r} has no JAX form (it was given with "
                    "Penalty.from_numba); use backend='numba', or give it with Penalty.from_jax "
                    "or Penalty.from_portable"
                )
            from langevin.backends import jax_ops
            from langevin.backends.portable import make_twin

            memo = self._cache.setdefault("jax-memo", {})

            def twin(fn):
                return make_twin(fn, jax_ops, _identity, memo)

            raw_prox = self.jax_prox if self.jax_prox is not None else twin(self.prox_math)
            raw_value = self.jax_value if self.jax_value is not None else twin(self.value_math)
            params = self.params
            no_params = isinstance(params, _NoParams)

            def prox(x, lam):
                if no_params:
                    return raw_prox(x, lam)
                return raw_prox(x, lam, _cast_tree(params, x.dtype, jax=True))

            def value(x):
                if no_params:
                    return raw_value(x)
                return raw_value(x, _cast_tree(params, x.dtype, jax=True))

            self._cache["jax"] = (prox, value)
        return self._cache["jax"]

    # -- NumPy evaluations (tests, starts, helpers) ----------------------------------------------
    def prox(self, x: np.ndarray, lam: float) -> np.ndarray:
        """prox_{λg}(x) in NumPy (float64)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if self.numpy_prox is not None:
            return np.asarray(self.numpy_prox(x, float(lam), self.params))
        if self.prox_math is not None:
            from langevin.backends import numpy_ops
            from langevin.backends.portable import make_twin

            fn = make_twin(self.prox_math, numpy_ops, _identity, _NUMPY_MEMO)
            return np.asarray(fn(x, float(lam), _cast_tree(self.params, np.float64)))
        if self.numba_prox is not None:
            prox, _ = self.numba_functions()
            return np.asarray(prox(x, float(lam), self.numba_params()))
        prox, _ = self.jax_functions()
        return np.asarray(prox(x, lam))

    def value(self, x: np.ndarray) -> float:
        """g(x) in NumPy (float64)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if self.value_math is not None:
            from langevin.backends import numpy_ops
            from langevin.backends.portable import make_twin

            fn = make_twin(self.value_math, numpy_ops, _identity, _NUMPY_MEMO)
            return float(fn(x, _cast_tree(self.params, np.float64)))
        if self.numba_value is not None:
            _, value = self.numba_functions()
            return float(value(x, self.numba_params()))
        _, value = self.jax_functions()
        return float(value(x))

    def __repr__(self) -> str:
        return f"Penalty({self.name!r})"


def _numba_drop_params(prox, value):
    """Wrap ``prox(x, lam)``/``value(x)`` as ``prox(x, lam, params)``/``value(x, params)``."""
    import numba

    @numba.njit
    def prox3(x, lam, params):
        return prox(x, lam)

    @numba.njit
    def value2(x, params):
        return value(x)

    return prox3, value2


def _check_callables(owner, prox, value):
    for argname, fn in (("prox", prox), ("value", value)):
        if not callable(fn):
            raise TypeError(f"{owner}: {argname} must be callable; got {type(fn).__name__}")


def _check_params(params):
    if params is None:
        return _NoParams()
    if not (isinstance(params, tuple) and hasattr(params, "_fields")):
        raise TypeError(
            f"params must be a NamedTuple of arrays or numbers (a runtime value on both "
            f"backends); got {type(params).__name__}"
        )
    return params


def _cast_tree(tree, dtype, jax: bool = False):
    """Every float leaf as ``dtype`` (ints stay ints: group indices), NumPy or JAX."""
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_cast_tree(v, dtype, jax) for v in tree))
    a = np.asarray(tree)
    if jax:
        import jax.numpy as jnp

        if np.issubdtype(a.dtype, np.integer):
            return jnp.asarray(a, dtype=jnp.int32 if not _x64() else jnp.int64)
        return jnp.asarray(a, dtype=dtype)
    if np.issubdtype(a.dtype, np.integer):
        return np.asarray(a, dtype=np.int64, order="C")
    if a.ndim == 0:
        return float(a)
    return np.asarray(a, dtype=np.float64, order="C")


def _x64() -> bool:
    import jax

    return bool(jax.config.read("jax_enable_x64"))


# -- argument checks ---------------------------------------------------------------------------
def _vector(
    name: str,
    value: Any,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    allow_inf: bool = False,
) -> np.ndarray:
    try:
        a = np.atleast_1d(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a number or a 1-D array of numbers; got {value!r}"
        ) from None
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty 1-D array; got shape {a.shape}")
    if np.any(np.isnan(a)) or (not allow_inf and not np.all(np.isfinite(a))):
        raise ValueError(f"{name} must be finite; got {value!r}")
    if positive and not np.all(a > 0):
        raise ValueError(f"{name} must be positive; got {value!r}")
    if nonnegative and not np.all(a >= 0):
        raise ValueError(f"{name} must be nonnegative; got {value!r}")
    return np.ascontiguousarray(a)


def _dim_of(*arrays: np.ndarray) -> int | None:
    sizes = {a.size for a in arrays if a.size > 1}
    if len(sizes) > 1:
        raise ValueError(f"parameter arrays have different lengths: {sorted(sizes)}")
    return sizes.pop() if sizes else None


# -- the built-in penalties --------------------------------------------------------------------
def l1(weights: float | np.ndarray = 1.0) -> Penalty:
    """g(x) = Σ w_i |x_i| (a Laplace prior with rates w): soft-thresholding.

    Args:
        weights: w > 0, a number or one per coordinate.

    Example:
        >>> from langevin.proximal import l1
        >>> l1(2.0).prox([3.0, -0.5, 1.0], 0.5)
        array([2., 0., 0.])
    """
    w = _vector("weights", weights, positive=True)
    return Penalty(
        "l1",
        ops.L1Params(w),
        ops.l1_prox,
        ops.l1_value,
        separable=True,
        sign_invariant=True,
        smoothing_bias_order=1.0,
        dim=_dim_of(w),
        lipschitz=float(np.sqrt(np.sum(w * w))) if w.size > 1 else None,
    )


def weighted_l1(weights: np.ndarray) -> Penalty:
    """Alias of :func:`l1` with one weight per coordinate."""
    return l1(weights)


def box(lower: float | np.ndarray, upper: float | np.ndarray) -> Penalty:
    """The indicator of the box Π [lower_i, upper_i] (±∞ allowed): projection by clipping."""
    lo = _vector("lower", lower, allow_inf=True)
    hi = _vector("upper", upper, allow_inf=True)
    dim = _dim_of(lo, hi)
    if not np.all(
        np.broadcast_to(lo, hi.shape if hi.size > lo.size else lo.shape)
        < np.broadcast_to(hi, hi.shape if hi.size > lo.size else lo.shape)
    ):
        raise ValueError("box: every lower bound must be below its upper bound")
    return Penalty(
        "box",
        ops.BoxParams(lo, hi),
        ops.box_prox,
        ops.box_value,
        separable=True,
        sign_invariant=False,
        smoothing_bias_order=0.5,
        dim=dim,
        indicator=True,
    )


def nonnegative() -> Penalty:
    """The indicator of the nonnegative orthant {x ≥ 0}: projection max(x, 0)."""
    return Penalty(
        "nonnegative",
        ops.NonnegativeParams(0.0),
        ops.nonnegative_prox,
        ops.nonnegative_value,
        separable=True,
        sign_invariant=True,
        smoothing_bias_order=0.5,
        indicator=True,
    )


def simplex(radius: float = 1.0) -> Penalty:
    """The indicator of the simplex {u ≥ 0, Σ u = radius}: Euclidean projection
    (:func:`langevin.proximal.operators.simplex_prox`)."""
    r = float(radius)
    if not (np.isfinite(r) and r > 0):
        raise ValueError(f"simplex: radius must be positive and finite; got {radius!r}")
    return Penalty(
        "simplex",
        ops.SimplexParams(r),
        ops.simplex_prox,
        ops.simplex_value,
        smoothing_bias_order=0.5,
        indicator=True,
    )


def elastic_net(l1: float | np.ndarray = 1.0, l2: float | np.ndarray = 1.0) -> Penalty:
    """g(x) = Σ α_i |x_i| + (β_i/2) x_i²: prox ``soft(x, λα)/(1 + λβ)``."""
    a = _vector("l1", l1, nonnegative=True)
    b = _vector("l2", l2, nonnegative=True)
    return Penalty(
        "elastic_net",
        ops.ElasticNetParams(a, b),
        ops.elastic_net_prox,
        ops.elastic_net_value,
        separable=True,
        smoothing_bias_order=1.0,
        dim=_dim_of(a, b),
    )


def group_l1(groups: np.ndarray, weights: float | np.ndarray = 1.0) -> Penalty:
    """The group lasso g(x) = Σ_G w_G ‖x_G‖₂ (the L2,1 norm): block soft-thresholding.

    Args:
        groups: the group of each coordinate, integers 0 … G − 1 (every group non-empty).
        weights: w_G > 0, a number or one per group.
    """
    g = np.asarray(groups)
    if g.ndim != 1 or g.size == 0 or not np.issubdtype(g.dtype, np.integer):
        raise TypeError(f"groups must be a non-empty 1-D integer array; got {groups!r}")
    n_groups = int(g.max()) + 1
    if g.min() < 0 or set(np.unique(g)) != set(range(n_groups)):
        raise ValueError("groups must use every integer 0 … G − 1 (no empty group)")
    w = _vector("weights", weights, positive=True)
    if w.size == 1:
        w = np.full(n_groups, w[0])
    if w.size != n_groups:
        raise ValueError(f"weights must have one entry per group ({n_groups}); got {w.size}")
    return Penalty(
        "group_l1",
        ops.GroupL1Params(np.ascontiguousarray(g, dtype=np.int64), w),
        ops.group_l1_prox,
        ops.group_l1_value,
        smoothing_bias_order=1.0,
        dim=int(g.size),
    )


def total_variation(weight: float = 1.0) -> Penalty:
    """1-D total variation g(x) = w Σ |x_{i+1} − x_i|: Condat's exact direct algorithm
    (:mod:`langevin.proximal.tv`), the same step on both backends."""
    w = float(weight)
    if not (np.isfinite(w) and w > 0):
        raise ValueError(f"total_variation: weight must be positive and finite; got {weight!r}")
    return Penalty(
        "total_variation",
        tv_mod.TVParams(w),
        value_math=tv_mod.tv_value,
        numba_prox=tv_mod.tv_prox_numba(),
        jax_prox=tv_mod.tv_prox_jax,
        numpy_prox=tv_mod.tv_prox_numpy,
        smoothing_bias_order=1.0,
    )


def zero() -> Penalty:
    """g ≡ 0 (prox = identity): a composite target with it is its smooth part."""
    return Penalty(
        "zero",
        ops.NonnegativeParams(0.0),
        ops.zero_prox,
        ops.zero_value,
        separable=True,
        sign_invariant=True,
        smoothing_bias_order=None,
    )


# -- the registry ------------------------------------------------------------------------------
#: name -> factory returning a :class:`Penalty`.
PENALTIES: dict[str, Callable[..., Penalty]] = {
    "l1": l1,
    "weighted_l1": weighted_l1,
    "box": box,
    "nonnegative": nonnegative,
    "simplex": simplex,
    "elastic_net": elastic_net,
    "group_l1": group_l1,
    "total_variation": total_variation,
    "zero": zero,
}


def register_penalty(name: str, factory: Callable[..., Penalty]) -> None:
    """Make ``penalty(name, ...)`` call ``factory(...)`` (which returns a :class:`Penalty`)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string; got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable; got {type(factory).__name__}")
    PENALTIES[name] = factory


def penalty(name: str, *args: Any, **kwargs: Any) -> Penalty:
    """The registered penalty ``name`` built with ``args``/``kwargs``."""
    try:
        factory = PENALTIES[name]
    except KeyError:
        raise ValueError(
            f"unknown penalty {name!r}; registered: {', '.join(sorted(PENALTIES))}"
        ) from None
    out = factory(*args, **kwargs)
    if not isinstance(out, Penalty):
        raise TypeError(f"the factory registered as {name!r} returned {type(out).__name__}")
    return out
