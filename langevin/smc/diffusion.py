"""Diffusion models: the forward noising process and the scores of its marginals.

**Forward process.** :class:`VPProcess`, the variance-preserving SDE of Song et al. (2021),
``dx = f_t(x) dt + g_t dW_t`` on ``[0, T]`` with ``f_t(x) = −½ b(t) x``, ``g_t² = b(t)`` and
``b`` linear from ``b_min`` to ``b_max`` (constant: the Ornstein–Uhlenbeck process). Then
``x_t | x_0 ~ N(α_t x_0, (1 − α_t²) I)``, ``log α_t = −½ ∫_0^t b``, ``f_t(x) = (∂_t log α_t) x``
and ``∇·f = d ∂_t log α_t``, which does not depend on x.

**Scores** are user functions ``s(x, t) -> ∇log q_t(x)`` of the marginals ``q_t`` of the
noised data (:class:`Score`): a JAX form for ``backend="jax"`` and a ``numba.njit`` form
(optionally with ``data``) for ``backend="numba"``, as for :class:`~langevin.targets.Target`.
Exact ones for a Gaussian-mixture data law:
:class:`~langevin.targets.gaussian_mixture_diffusion.GaussianMixture`. The Feynman–Kac
correctors (:mod:`langevin.smc.correctors`) compose them.

References:
    Song, Y., Sohl-Dickstein, J., Kingma, D. P., Kumar, A., Ermon, S. and Poole, B. (2021).
    Score-based generative modeling through stochastic differential equations. ICLR.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numba import types as nt
from numba.core.errors import NumbaExperimentalFeatureWarning

from langevin.backends.portable import portable

__all__ = ["VPProcess", "Score"]

xp: Any = None  # bound by each backend (see langevin.backends.portable)


# -- the forward process -------------------------------------------------------------------------
def _check_real(name: str, value, *, positive: bool = False, nonnegative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be positive; got {value!r}")
    if nonnegative and not value >= 0:
        raise ValueError(f"{name} must be non-negative; got {value!r}")
    return value


@dataclass(frozen=True)
class VPProcess:
    """The variance-preserving forward SDE ``dx = −½ b(t) x dt + √b(t) dW`` on ``[0, T]``.

    ``b(t) = b_min + (b_max − b_min) t / T`` (Song et al. 2021; the defaults 0.1 and 20 on
    ``[0, 1]`` are theirs). ``x_t | x_0 ~ N(α_t x_0, σ_t² I)`` with

        log α_t = −½ (b_min t + (b_max − b_min) t² / (2T)),      σ_t² = 1 − α_t²,

    and ``f_t(x) = (∂_t log α_t) x = −½ b(t) x``, ``g_t² = b(t)``. With ``b_min = b_max = b``
    it is the Ornstein–Uhlenbeck process ``dx = −(b/2) x dt + √b dW`` (:meth:`ou`).

    Args:
        T: the final time, > 0.
        b_min, b_max: the rate at t = 0 and t = T (non-negative, not both 0).

    Example:
        >>> p = VPProcess()
        >>> round(float(p.alpha(1.0) ** 2), 7)       # q_T is N(0, I) up to α_T²
        4.32e-05
    """

    T: float = 1.0
    b_min: float = 0.1
    b_max: float = 20.0

    def __post_init__(self) -> None:
        _check_real("T", self.T, positive=True)
        _check_real("b_min", self.b_min, nonnegative=True)
        _check_real("b_max", self.b_max, nonnegative=True)
        if not self.b_min + self.b_max > 0:
            raise ValueError("b_min and b_max must not both be 0 (no noise is added)")

    @classmethod
    def ou(cls, rate: float = 2.0, T: float = 5.0) -> VPProcess:
        """The OU process ``dx = −(rate/2) x dt + √rate dW`` on ``[0, T]`` (default:
        ``dx = −x dt + √2 dW``, α_T = e^{−5})."""
        return cls(T=T, b_min=rate, b_max=rate)

    def rate(self, t):
        """``b(t) = g_t²``."""
        return self.b_min + (self.b_max - self.b_min) * np.asarray(t) / self.T

    def log_alpha(self, t):
        """``log α_t``."""
        t = np.asarray(t, dtype=np.float64)
        return -0.5 * (self.b_min * t + 0.5 * (self.b_max - self.b_min) * t * t / self.T)

    def alpha(self, t):
        """``α_t``: the mean of ``x_t`` given ``x_0`` is ``α_t x_0``."""
        return np.exp(self.log_alpha(t))

    def sigma2(self, t):
        """``σ_t² = 1 − α_t²``: the variance of ``x_t`` given ``x_0``."""
        return -np.expm1(2.0 * self.log_alpha(t))

    def params(self) -> np.ndarray:
        """``(b_min, b_max, T)``: what portable code needs (see ``_log_alpha``)."""
        return np.array([self.b_min, self.b_max, self.T], dtype=np.float64)


@portable
def _log_alpha(t, process):
    """``log α_t`` of the VP process with ``process = (b_min, b_max, T)``."""
    return -0.5 * (process[0] * t + 0.5 * (process[1] - process[0]) * t * t / process[2])


# -- scores ----------------------------------------------------------------------------------------
_F64 = nt.float64
_VEC = nt.float64[::1]


class Score:
    """A score ``s(x, t) = ∇log q_t(x)`` of a noised law, in a JAX and/or a Numba form.

    * JAX: ``fn(x, t) -> array`` of the shape of ``x``, traceable (``x`` a 1-D array, ``t`` a
      scalar); runs on ``backend="jax"``.
    * Numba: a ``numba.njit`` function ``fn(x, t) -> array`` or, with ``data``,
      ``fn(x, t, data) -> array``: ``x`` a C-contiguous float64 vector, ``t`` a float, the
      result a new float64 vector. ``data`` (any value Numba can type) is an argument of the
      compiled loop, not a constant frozen into it; the loop is compiled once per *form*
      (the Numba types of the scores and their data) and cached on disk.

    Build one with :meth:`from_jax` / :meth:`from_numba`, or take an exact one from
    :meth:`GaussianMixture.score` (both forms).

    Example:
        >>> import numba, numpy as np
        >>> @numba.njit
        ... def standard(x, t):      # q_t = N(0, I) for every t under a VP process
        ...     return -x
        >>> s = Score.from_numba(standard)
        >>> s.has_numba, s.has_jax
        (True, False)
    """

    def __init__(
        self,
        *,
        jax_fn: Callable | None = None,
        numba_fn: Callable | None = None,
        numba_data: Any = None,
        name: str = "score",
    ) -> None:
        self.jax_fn = jax_fn
        self.numba_fn = numba_fn
        self.numba_data = numba_data
        self.name = name
        self._numba_checked: dict = {}

    @classmethod
    def from_jax(cls, fn: Callable, *, name: str = "score") -> Score:
        """A score from a JAX function ``fn(x, t) -> ∇log q_t(x)``."""
        if not callable(fn):
            raise TypeError(f"fn must be callable; got {type(fn).__name__}")
        return cls(jax_fn=fn, name=name)

    @classmethod
    def from_numba(cls, fn: Callable, *, data: Any = None, name: str = "score") -> Score:
        """A score from a ``numba.njit`` function ``fn(x, t)`` (or ``fn(x, t, data)``)."""
        from numba.core.registry import CPUDispatcher

        if not isinstance(fn, CPUDispatcher):
            raise TypeError(
                "fn must be a numba.njit function (the Numba backend calls it from compiled "
                f"code); got {type(fn).__name__}. Decorate it with @numba.njit, or use "
                "Score.from_jax for a JAX function."
            )
        return cls(numba_fn=fn, numba_data=data, name=name)

    @property
    def has_jax(self) -> bool:
        return self.jax_fn is not None

    @property
    def has_numba(self) -> bool:
        return self.numba_fn is not None

    def _numba_entry(self):
        """``((fn,) or (fn, data), its Numba type)``, the function compiled for its signature."""
        data = self.numba_data
        args = (_VEC, _F64) if data is None else (_VEC, _F64, numba.typeof(data))
        sig = _VEC(*args)
        if sig not in self._numba_checked:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NumbaExperimentalFeatureWarning)
                    self.numba_fn.compile(sig)
            except Exception as exc:
                raise TypeError(
                    f"score {self.name!r}: the numba function could not be compiled for the "
                    f"signature {sig} (x: 1-D C-contiguous float64 array, t: float64"
                    + ("" if data is None else f", data: {numba.typeof(data)}")
                    + f"; it must return a float64 array). Numba said: {exc}"
                ) from exc
            self._numba_checked[sig] = True
        if data is None:
            return (self.numba_fn,), nt.Tuple((nt.FunctionType(sig),))
        return (self.numba_fn, data), nt.Tuple((nt.FunctionType(sig), numba.typeof(data)))

    def __repr__(self) -> str:
        forms = [f for f, ok in (("jax", self.has_jax), ("numba", self.has_numba)) if ok]
        return f"Score({self.name!r}, backends={forms})"
