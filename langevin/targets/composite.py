"""Composite targets π ∝ exp(−f − g): a smooth part f and a nonsmooth convex part g.

``composite(smooth, penalty)`` combines

* any :class:`~langevin.targets.Target` the user already has (JAX and/or Numba forms; its
  log-density is −f up to a constant) and
* a :class:`~langevin.proximal.Penalty` g (from the registry, :mod:`langevin.proximal`, or
  the user's own)

into a target whose capabilities are the smooth part's (``logdensity``, ``value_and_grad``,
...: **of f only**, the part with a gradient) plus ``prox`` (prox_{λg}) and ``nonsmooth``
(g). The proximal kernels (:class:`~langevin.kernels.proximal.MYULA`, MYMALA, the
Bregman–Moreau mirror kernels) sample π_λ ∝ exp(−f − g_λ) from it; a plain gradient kernel
(MALA, HMC) would sample exp(−f) alone and ignore g, so do not give it a composite target.

On Numba the functions are wrapped so that they all take the composite data
``(smooth data, penalty params)``: the penalty's parameters are runtime data (a new weight
vector compiles nothing) and the compiled loops are shared by every composite of the same
form. On JAX the penalty's functions close over its parameters, cast to the position's dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from langevin.targets.base import Target
from langevin.targets.capabilities import CAPABILITIES

__all__ = ["CompositeTarget", "composite", "flat"]


class CompositeTarget(Target):
    """A :class:`Target` U = f + g with its parts: ``smooth`` (f's target) and ``penalty``
    (g). Built by :func:`composite`."""

    smooth: Target
    penalty: Any

    def with_dim(self, dim: int) -> Target:
        if self.dim != dim:
            raise ValueError(
                f"initial_position has {dim} coordinates but the target has dim={self.dim}"
            )
        return self


def _numba_wrappers(smooth: Target, penalty) -> tuple[dict, Any]:
    """The composite's Numba functions and data ``(smooth data, params)`` or ``(params,)``."""
    import numba

    has_data = smooth.data is not None
    params = penalty.numba_params()
    data = (smooth.data, params) if has_data else (params,)
    functions: dict[str, Any] = {}
    for name, fn in smooth.numba_functions.items():
        args = "".join(f", {a}" for a in CAPABILITIES[name].args)
        inner = ", data[0]" if has_data else ""
        scope = {"fn": fn}
        exec(f"def {name}(x{args}, data):\n    return fn(x{args}{inner})\n", scope)
        functions[name] = numba.njit(scope[name])
    prox, value = penalty.numba_functions()
    scope = {"prox_fn": prox, "value_fn": value}
    exec(
        "def prox(x, lam, data):\n    return prox_fn(x, lam, data[-1])\n"
        "def nonsmooth(x, data):\n    return value_fn(x, data[-1])\n",
        scope,
    )
    functions["prox"] = numba.njit(scope["prox"])
    functions["nonsmooth"] = numba.njit(scope["nonsmooth"])
    return functions, data


def composite(smooth: Target, penalty, *, name: str | None = None) -> CompositeTarget:
    """The target π ∝ exp(−f − g) with f from ``smooth`` and g = ``penalty``.

    Args:
        smooth: a :class:`~langevin.targets.Target` for exp(−f) (e.g. a likelihood times a
            smooth prior, or :func:`flat` for f ≡ 0).
        penalty: a :class:`~langevin.proximal.Penalty` (``langevin.proximal.l1(w)``,
            ``box(a, b)``, ``simplex()``, ..., or ``Penalty.from_jax/from_numba/
            from_portable``).
        name: a label (default ``"<smooth>+<penalty>"``).

    Returns:
        A :class:`CompositeTarget` with the smooth part's capabilities plus ``prox`` and
        ``nonsmooth``, on each backend where both parts have a form. Its start is the
        smooth part's, projected on the constraint set for an indicator g.

    Example (a Bayesian LASSO posterior: Gaussian likelihood, Laplace prior):
        >>> import numpy as np, langevin
        >>> from langevin.proximal import l1
        >>> from langevin.targets.composite import composite
        >>> lik = langevin.targets.gaussian(3, mean=[1.0, 0.0, -2.0])
        >>> target = composite(lik, l1(2.0))
        >>> sorted(target.capabilities("numba"))  # doctest: +NORMALIZE_WHITESPACE
        ['grad', 'logdensity', 'nonsmooth', 'prox', 'score', 'value_and_grad']
    """
    from langevin.proximal.penalties import Penalty

    if not isinstance(smooth, Target):
        raise TypeError(
            f"smooth must be a langevin.Target (Target.from_jax / Target.from_numba, or a "
            f"built-in); got {type(smooth).__name__}"
        )
    if not isinstance(penalty, Penalty):
        raise TypeError(
            "penalty must be a langevin.proximal.Penalty (e.g. langevin.proximal.l1(1.0), or "
            f"Penalty.from_jax(prox, value)); got {type(penalty).__name__}"
        )
    overlap = {"prox", "nonsmooth"} & (set(smooth.numba_functions) | set(smooth.jax_functions))
    if overlap:
        raise ValueError(f"smooth already has {sorted(overlap)}: compose a smooth target only")
    dim = smooth.dim
    if penalty.dim is not None:
        if dim is not None and dim != penalty.dim:
            raise ValueError(
                f"penalty {penalty.name!r} has parameters for {penalty.dim} coordinates but "
                f"smooth has dim={dim}"
            )
        dim = penalty.dim
    if dim is None:
        raise ValueError(
            "the dimension is unknown: give smooth a dim= (or per-coordinate penalty parameters)"
        )
    numba_fns: dict = {}
    data = None
    if smooth.has_numba and penalty.has_numba:
        numba_fns, data = _numba_wrappers(smooth, penalty)
    jax_fns: dict = {}
    if smooth.has_jax and penalty.has_jax:
        prox, value = penalty.jax_functions()
        jax_fns = {**smooth.jax_functions, "prox": prox, "nonsmooth": value}
    if not numba_fns and not jax_fns:
        raise TypeError(
            f"smooth ({smooth!r}) and penalty {penalty.name!r} share no backend: give both a "
            "Numba form or both a JAX form"
        )
    start = smooth.initial_position
    if start is None:
        start = np.zeros(dim)
    if penalty.indicator:
        start = penalty.prox(start, 1.0)
        if penalty.name == "simplex":
            start = 0.9 * start + 0.1 * penalty.prox(np.zeros(dim), 1.0)  # off the boundary
    target = CompositeTarget(
        dim=dim,
        names=dict((k, v[1]) for k, v in smooth.blocks.items()) if smooth.blocks else None,
        numba=numba_fns,
        jax=jax_fns,
        data=data,
        initial_position=start,
        name=name or f"{smooth.name}+{penalty.name}",
        constrain=smooth.constrain,
    )
    target.smooth = smooth
    target.penalty = penalty
    return target


def flat(dim: int) -> Target:
    """f ≡ 0 on ℝ^dim: the smooth part of a target that is all penalty (a Laplace prior
    alone, a uniform law on a box)."""
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 1:
        raise ValueError(f"dim must be a positive int; got {dim!r}")

    def logdensity(x):
        return 0.0 * x.sum()

    return Target(
        dim=int(dim),
        numba={"value_and_grad": _flat_vg},
        jax={"logdensity": logdensity},
        initial_position=np.zeros(int(dim)),
        name=f"flat_{int(dim)}d",
    )


def _flat_vg_py(x):
    return 0.0, np.zeros_like(x)


def _make_flat_vg():
    import numba

    return numba.njit(cache=True)(_flat_vg_py)


_flat_vg = _make_flat_vg()
