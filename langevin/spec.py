"""The vocabulary below kernels and backends: what a field holds, what noise a step draws.

Kernels declare, backends implement, and nothing else re-lists these kinds.

**Field kinds** annotate the fields of a kernel's ``State`` and ``Info`` NamedTuples (one
value per chain or particle):

=================  =================================  ===============
kind               holds (per member)                 dtype
=================  =================================  ===============
:data:`Vector`     a float vector of the position's   float
                   length ``dim``
:data:`Scalar`     a float                            float
:data:`Flag`       a boolean                          bool
:data:`Integer`    an integer                         int
``Array(*shape)``  a float array of a fixed shape     float
                   (entries ints, or ``"dim"``)
=================  =================================  ===============

**Noise kinds** declare the randomness one step (or ``init``) consumes; the kernel's
``noise(dim)`` returns a NamedTuple of them and the backend draws it:

* :class:`Normal` ``(shape)``: standard normal draws;
* :class:`Uniform` ``(shape)``: U[0, 1) draws;
* :class:`Index` ``(n, size)``: ``size`` distinct integers from ``{0, …, n − 1}``, drawn
  uniformly *without replacement* (minibatch indices), by Floyd's algorithm (Bentley &
  Floyd 1987): for ``j = n − size, …, n − 1`` draw ``t ~ U{0, …, j}`` and take ``t`` unless
  already taken, else ``j``. Every subset of ``size`` items is equally likely. The bounded
  integers ``t`` come from a NumPy/Numba ``Generator`` by Lemire's exact multiply-shift
  (:func:`floyd_draws`: one ``rng.random(size)`` call per draw) and from a JAX key by
  ``jax.random.randint``; Floyd's step is the same function of ``t`` on every backend
  (:func:`floyd_indices`; a hashed membership test in the Numba loop; on JAX a whole block
  of rows at once, iterating only the rows where a clash can occur:
  :func:`floyd_indices_block`).

Each noise kind carries what every backend does with it, in one place: draw it with a NumPy
``Generator`` (the noise arrays of agreement tests, SMC's host noise), draw it inside a
Numba loop from the same ``Generator`` (the same numbers, in the same order), and draw it
with a JAX key. A declaration that is not one of these kinds is refused by
:func:`check_noise` with a clear error on both backends.

References:
    Bentley, J. and Floyd, R. (1987). Programming pearls: a sample of brilliance.
    Communications of the ACM 30(9).
    Lemire, D. (2019). Fast random integer generation in an interval. ACM Transactions on
    Modeling and Computer Simulation 29(1).
"""

from __future__ import annotations

import abc
import math
import sys
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "FieldKind", "Vector", "Scalar", "Flag", "Integer", "Array", "field_kinds",
    "NoiseKind", "Normal", "Uniform", "Index", "check_noise", "draw_numpy", "empty_noise",
    "floyd_indices",
    "floyd_indices_hashed",
    "floyd_indices_block",
    "floyd_draws",
]  # fmt: skip


# -- field kinds -------------------------------------------------------------------------------
class FieldKind:
    """What one field of a State or Info holds, per chain: a shape (in terms of ``dim``) and
    a dtype class (``"float"``, ``"bool"`` or ``"int"``)."""

    def __init__(self, name: str, dtype: str, shape: tuple = ()):
        if dtype not in ("float", "bool", "int"):
            raise ValueError(f"dtype must be 'float', 'bool' or 'int'; got {dtype!r}")
        for s in shape:
            if not (s == "dim" or (isinstance(s, int) and s >= 1)):
                raise ValueError(f"{name}: shape entries are positive ints or 'dim'; got {s!r}")
        self.name = name
        self.dtype = dtype
        self.template = tuple(shape)

    def shape(self, dim: int) -> tuple[int, ...]:
        """The per-member shape for a position of length ``dim``."""
        return tuple(dim if s == "dim" else s for s in self.template)

    @property
    def ndim(self) -> int:
        return len(self.template)

    def numpy_dtype(self, float_dtype=np.float64) -> np.dtype:
        return np.dtype({"float": float_dtype, "bool": np.bool_, "int": np.int64}[self.dtype])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldKind) and (self.dtype, self.template) == (
            other.dtype,
            other.template,
        )

    def __hash__(self) -> int:
        return hash((self.dtype, self.template))

    def __repr__(self) -> str:
        return self.name


#: A float vector of the position's length.
Vector = FieldKind("Vector", "float", ("dim",))
#: A float scalar.
Scalar = FieldKind("Scalar", "float")
#: A boolean scalar.
Flag = FieldKind("Flag", "bool")
#: An integer scalar (int64 on Numba; JAX's default integer type).
Integer = FieldKind("Integer", "int")


def Array(*shape: int | str) -> FieldKind:
    """A float array of a fixed shape per member, e.g. ``Array("dim", "dim")`` or ``Array(3)``."""
    return FieldKind(f"Array{tuple(shape)!r}", "float", tuple(shape))


def field_kinds(cls: type) -> tuple[FieldKind, ...]:
    """The :class:`FieldKind` annotation of each field of the NamedTuple class ``cls``."""
    # Postponed (string) annotations are resolved in the class's module and, failing that,
    # here, where the field kinds live: a NamedTuple made by exec() or in a notebook may sit
    # in a namespace its __module__ does not name.
    owner = sys.modules.get(cls.__module__)
    module = {**globals(), **(vars(owner) if owner is not None else {})}
    kinds = []
    for field in cls._fields:
        kind = cls.__annotations__.get(field)
        name = getattr(kind, "__forward_arg__", kind)  # postponed annotations are strings
        if isinstance(name, str):
            try:
                kind = eval(name, module, {})
            except Exception:
                kind = None
        if not isinstance(kind, FieldKind):
            raise TypeError(
                f"{cls.__name__}.{field} must be annotated with a field kind of langevin.spec "
                f"(Vector, Scalar, Flag, Integer or Array(...)); got {kind!r}"
            )
        kinds.append(kind)
    return tuple(kinds)


# -- noise kinds -------------------------------------------------------------------------------
class NoiseKind(abc.ABC):
    """A declaration of randomness, with what each backend does with it.

    ``shape`` is the per-step, per-member shape; ``dtype`` is ``"float"`` or ``"int"``.
    """

    dtype: str = "float"

    @property
    @abc.abstractmethod
    def shape(self) -> tuple[int, ...]: ...

    @abc.abstractmethod
    def draw_numpy(self, rng: np.random.Generator) -> Any:
        """One draw (per step, per member) from a NumPy ``Generator``: a float, an int or an
        array of ``shape``. The Numba in-loop drawer gives the same numbers in the same order."""

    @abc.abstractmethod
    def numba_drawer(self) -> tuple[Any, Any]:
        """``(draw, arg)``: an ``njit`` function ``draw(rng, arg)`` giving what
        :meth:`draw_numpy` gives, and its runtime argument (so one compiled loop serves
        every size)."""

    @abc.abstractmethod
    def draw_jax(self, key, lead: tuple[int, ...], dtype) -> Any:
        """Draws of shape ``lead + shape`` from one JAX key, floats in ``dtype``."""

    def numpy_dtype(self) -> np.dtype:
        return np.dtype(np.float64 if self.dtype == "float" else np.int64)

    def draw_numpy_block(self, rng: np.random.Generator, lead: tuple[int, ...]) -> np.ndarray:
        """Draws of shape ``lead + shape`` in one go (host noise of a whole population)."""
        count = math.prod(lead)
        out = np.empty((count, *self.shape), dtype=self.numpy_dtype())
        for i in range(count):
            out[i] = self.draw_numpy(rng)
        return out.reshape(*lead, *self.shape)


def _as_shape(shape) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        out = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"a noise shape must be a tuple of ints; got {shape!r}") from None
    if any(s < 0 for s in out):
        raise ValueError(f"a noise shape must have non-negative sizes; got {out}")
    return out


class _Continuous(NoiseKind):
    """Normal and Uniform: float draws of a shape."""

    _numpy_method = ""

    def __init__(self, shape=()) -> None:
        self._shape = _as_shape(shape)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    def draw_numpy(self, rng):
        return getattr(rng, self._numpy_method)(self._shape or None)

    def numba_drawer(self):
        return _numba_drawers()[(self._numpy_method, len(self._shape))], self._shape

    def draw_numpy_block(self, rng, lead):
        return getattr(rng, self._numpy_method)((*lead, *self._shape))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.shape == self.shape

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._shape))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._shape})"


class Normal(_Continuous):
    """Declares standard normal draws of ``shape`` (per member, per step)."""

    _numpy_method = "standard_normal"

    def draw_jax(self, key, lead, dtype):
        import jax

        return jax.random.normal(key, (*lead, *self._shape), dtype)


class Uniform(_Continuous):
    """Declares U[0, 1) draws of ``shape`` (per member, per step)."""

    _numpy_method = "random"

    def draw_jax(self, key, lead, dtype):
        import jax

        return jax.random.uniform(key, (*lead, *self._shape), dtype)


def floyd_indices(t: np.ndarray, n: int) -> np.ndarray:
    """Floyd's combination step: ``size`` distinct indices from draws ``t[k] ~ U{0..n−size+k}``.

    Written for NumPy, Numba (compiled as is) and, vectorised, JAX (:meth:`Index.draw_jax`).
    """
    size = t.shape[0]
    out = np.empty(size, dtype=np.int64)
    for k in range(size):
        j = n - size + k
        pick = t[k]
        for i in range(k):
            if out[i] == pick:
                pick = j
                break
        out[k] = pick
    return out


def floyd_indices_hashed(t: np.ndarray, n: int) -> np.ndarray:
    """:func:`floyd_indices` with an open-addressing hash set for the membership test.

    The same output for the same draws, in O(size) instead of O(size²): the Numba drawer's
    form (at b = 100 the quadratic test was 2.2 µs of a 15 µs SGLD step). The table has at
    least 4·size slots, so probes stay short; the picks are uniform integers, so their low
    bits serve as the hash. Numba-only (a sequential loop; JAX vectorises Floyd's step
    differently, :meth:`Index.draw_jax`).
    """
    size = t.shape[0]
    slots = 1
    while slots < 4 * size:
        slots *= 2
    mask = slots - 1
    table = np.full(slots, -1, dtype=np.int64)
    out = np.empty(size, dtype=np.int64)
    for k in range(size):
        pick = t[k]
        h = pick & mask
        while table[h] != -1 and table[h] != pick:
            h = (h + 1) & mask
        if table[h] == pick:  # taken: Floyd takes j = n − size + k, never taken before
            pick = n - size + k
            h = pick & mask
            while table[h] != -1:
                h = (h + 1) & mask
        table[h] = pick
        out[k] = pick
    return out


_TWO32 = 4294967296.0
#: Bounds up to this use the 32-bit draw of :func:`floyd_draws` (``x · m < 2⁶³``).
_LEMIRE_MAX = 2**31


def floyd_draws(rng, n: int, size: int) -> np.ndarray:
    """Floyd's draws ``t[k] ~ U{0, …, n − size + k}``, exactly uniform, from a ``Generator``.

    Lemire's multiply-and-shift with rejection (Lemire 2019, Alg. 5) on 32-bit words: ``x``
    uniform on ``{0, …, 2³² − 1}`` is the top 32 bits of a uniform double (``rng.random()``
    is ``k/2⁵³`` with ``k`` a uniform 53-bit integer, so ``⌊2³² u⌋ = k >> 21`` exactly);
    with ``m`` the bound, ``t = (x m) >> 32`` unless the low word ``(x m) mod 2³²`` falls
    below ``(2³² − m) mod m``, in which case ``x`` is drawn again. Every ``t`` then has the
    same number of accepted ``x``: exactly uniform. The ``size`` doubles come in one call
    (``rng.random(size)``), the rare redraws (probability < m/2³² each) after them, in
    order of ``k``. Compiled as is into the Numba loop; host draws use its vectorised form
    :func:`floyd_draws_numpy`, which consumes the generator identically (tested against the
    loop, rejections included: ``tests/test_sgmcmc.py``); bounds above 2³¹ (``n`` past 2·10⁹) use
    ``rng.integers`` per draw instead. One call of ``rng.random(size)`` replaced ``size``
    calls of ``rng.integers``: the Numba minibatch draw went from 3.0-3.5 to 0.7-0.8 µs
    (CPU) at b = 100 (``benchmarks/results/sgmcmc_profile.md``).

    Reference: Lemire, D. (2019). Fast random integer generation in an interval. ACM
    Transactions on Modeling and Computer Simulation 29(1).
    """
    base = n - size
    t = np.empty(size, dtype=np.int64)
    if n > _LEMIRE_MAX:
        for k in range(size):
            t[k] = rng.integers(0, base + k + 1)
        return t
    u = rng.random(size)
    for k in range(size):
        m = base + k + 1
        prod = np.int64(u[k] * _TWO32) * m
        low = prod & 0xFFFFFFFF
        if low < m:
            threshold = (4294967296 - m) % m
            while low < threshold:
                prod = np.int64(rng.random() * _TWO32) * m
                low = prod & 0xFFFFFFFF
        t[k] = prod >> 32
    return t


def floyd_draws_numpy(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """:func:`floyd_draws` vectorised in NumPy (the same numbers from the same generator)."""
    base = n - size
    if n > _LEMIRE_MAX:
        return floyd_draws(rng, n, size)
    m = base + 1 + np.arange(size, dtype=np.int64)
    prod = (rng.random(size) * _TWO32).astype(np.int64) * m
    low = prod & 0xFFFFFFFF
    for k in np.flatnonzero(low < m):  # rare: redraw where Lemire's test rejects, in order
        mk = int(m[k])
        threshold = (4294967296 - mk) % mk
        while low[k] < threshold:
            prod[k] = int(rng.random() * _TWO32) * mk
            low[k] = prod[k] & 0xFFFFFFFF
    return prod >> 32


def floyd_indices_block(t, n: int):
    """:func:`floyd_indices` on each row of ``t`` (rows, size), in JAX, iterating only the
    rows where a clash occurs.

    Floyd's output ``out`` is the fixed point of ``F(out)[k] = j_k if t[k] ∈ out[:k] else
    t[k]`` (``j_k = n − size + k``): ``F(out)[k]`` depends only on ``out[:k]``, so the fixed
    point is unique (by induction on ``k``) and is reached from any start after at most
    ``size`` passes; when an iterate is unchanged it is Floyd's output. A row of distinct
    draws is its own fixed point, ``out = t`` (again by induction: ``out[:k] = t[:k]`` does
    not hold ``t[k]``), so a row's first clash is always a repeated draw. Repeats are rare
    when ``size ≪ n`` (a row has one with probability about ``size²/(2n)``): the rows with
    one are found by one sort, and only they are iterated, one row at a time, each pass a
    vectorised ``size × size`` membership test (one or two passes where clashes are few).

    Measured (``benchmarks/results/sgmcmc_profile.md``, n = 10⁵, 1000 rows of 100, x64):
    the chunk's draw 5.7 ms instead of 9.7 ms for the former loop over the ``size``
    positions of every row (which does ``size`` passes whatever the clashes)."""
    import jax
    import jax.numpy as jnp

    rows, size = t.shape
    ar = jnp.arange(size)
    spare = (n - size + ar).astype(t.dtype)  # j_k, never drawn before position k
    ordered = jnp.sort(t, axis=1)
    flagged = jnp.any(ordered[:, 1:] == ordered[:, :-1], axis=1)  # a repeated draw
    which = jnp.nonzero(flagged, size=rows, fill_value=0)[0]
    before = ar[None, :] < ar[:, None]  # [k, i]: i < k

    def fix(row):
        def floyd_map(out):
            return jnp.where(jnp.any((out[None, :] == row[:, None]) & before, axis=1), spare, row)

        def again(carry):
            out = carry[0]
            new = floyd_map(out)
            return new, jnp.any(new != out)

        return jax.lax.while_loop(lambda c: c[1], again, (row, jnp.asarray(True)))[0]

    def body(i, out):
        r = which[i]
        return jax.lax.dynamic_update_index_in_dim(out, fix(t[r]), r, axis=0)

    return jax.lax.fori_loop(0, jnp.sum(flagged), body, t)


class Index(NoiseKind):
    """Declares ``size`` distinct indices drawn uniformly without replacement from
    ``{0, …, n − 1}`` (a minibatch), by Floyd's algorithm (module docstring)."""

    dtype = "int"

    def __init__(self, n: int, size: int) -> None:
        for name, v in (("n", n), ("size", size)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"Index: {name} must be an int; got {v!r}")
        if not (1 <= size <= n):
            raise ValueError(f"Index: need 1 <= size <= n; got n={n}, size={size}")
        self.n, self.size = int(n), int(size)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.size,)

    def draw_numpy(self, rng):
        return floyd_indices(floyd_draws_numpy(rng, self.n, self.size), self.n)

    def numba_drawer(self):
        return _numba_drawers()[("index", 1)], (self.n, self.size)

    def draw_jax(self, key, lead, dtype):
        import jax
        import jax.numpy as jnp

        n, size = self.n, self.size
        # 32-bit draws wherever n allows, x64 on or off: the same indices either way, and
        # under x64 half the random bits and a 32-bit remainder (2.3 instead of 3.3 ms for
        # 1000 × 100 draws; benchmarks/results/sgmcmc_profile.md)
        small = n <= np.iinfo(np.int32).max
        bounds = n - size + jnp.arange(size, dtype=jnp.int32 if small else int) + 1
        t = jax.random.randint(key, (*lead, size), 0, bounds, dtype=bounds.dtype)
        out = floyd_indices_block(t.reshape(-1, size), n).reshape(*lead, size)
        return out.astype(int)  # the default integer, as before

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Index) and (other.n, other.size) == (self.n, self.size)

    def __hash__(self) -> int:
        return hash(("Index", self.n, self.size))

    def __repr__(self) -> str:
        return f"Index(n={self.n}, size={self.size})"


_NUMBA_DRAWERS: dict | None = None


def _numba_drawers() -> dict:
    """The Numba in-loop drawers, compiled lazily (importing this module compiles nothing)."""
    global _NUMBA_DRAWERS
    if _NUMBA_DRAWERS is None:
        import numba

        floyd = numba.njit(cache=True)(floyd_indices_hashed)

        @numba.njit(cache=True)
        def normal0(rng, shape):
            return rng.standard_normal()

        @numba.njit(cache=True)
        def normal_n(rng, shape):
            return rng.standard_normal(shape)

        @numba.njit(cache=True)
        def uniform0(rng, shape):
            return rng.random()

        @numba.njit(cache=True)
        def uniform_n(rng, shape):
            return rng.random(shape)

        bounded = numba.njit(cache=True)(floyd_draws)

        @numba.njit(cache=True)
        def index(rng, arg):
            n, size = arg
            return floyd(bounded(rng, n, size), n)

        drawers: dict = {("standard_normal", 0): normal0, ("random", 0): uniform0,
                         ("index", 1): index}  # fmt: skip
        for ndim in range(1, 4):
            drawers[("standard_normal", ndim)] = normal_n
            drawers[("random", ndim)] = uniform_n
        _NUMBA_DRAWERS = drawers
    return _NUMBA_DRAWERS


def check_noise(spec: Any, owner: str = "noise") -> NamedTuple:
    """``spec`` if it is a NamedTuple of :class:`NoiseKind` declarations, else a clear error."""
    if spec is None:
        return None
    if not (isinstance(spec, tuple) and hasattr(spec, "_fields")):
        raise TypeError(f"{owner} must return a NamedTuple of noise declarations; got {spec!r}")
    for field, d in zip(spec._fields, spec):
        if not isinstance(d, NoiseKind):
            raise TypeError(
                f"{owner}: field {field!r} is {d!r}, which is not a noise kind of "
                "langevin.spec (Normal(shape), Uniform(shape) or Index(n, size))"
            )
    return spec


def draw_numpy(spec: NamedTuple, rng: np.random.Generator, lead: tuple[int, ...] = ()):
    """Arrays ``lead + shape`` for each declared field, drawn member by member in C order of
    ``lead``, field by field within a member — the order of the Numba in-loop drawer when the
    last lead axis is the step."""
    check_noise(spec)
    count = math.prod(lead)
    fields = [np.empty((count, *d.shape), dtype=d.numpy_dtype()) for d in spec]
    for i in range(count):
        for buffer, d in zip(fields, spec):
            buffer[i] = d.draw_numpy(rng)
    return type(spec)(*(f.reshape(*lead, *d.shape) for f, d in zip(fields, spec)))


def empty_noise(spec: NamedTuple | None, lead: tuple[int, ...]):
    """Zero arrays of ``lead + shape`` per declared field (a placeholder where no noise is used)."""
    if spec is None:
        return None
    return type(spec)(*(np.zeros((*lead, *d.shape), dtype=d.numpy_dtype()) for d in spec))
