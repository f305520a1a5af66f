"""Tempered targets: π_β ∝ ρ^{1−β} π^β as a target combinator, written once.

For a posterior ``π(x) ∝ p(x) L(x)`` and a reference law ``ρ`` that we can sample (the prior
itself, or a Gaussian), the tempered targets

    π_β(x) ∝ ρ(x) exp(β ℓ(x)),    ℓ(x) = log p(x) + log L(x) − log ρ(x),    0 ≤ β ≤ 1,

bridge ``ρ`` (β = 0) and ``π`` (β = 1); with ``ρ = p``, ``π_β ∝ p L^β`` and ``ℓ = log L``.

π_β is a *target combinator* (:mod:`langevin.targets.capabilities`): the form tuple
``(PriorTempered(β), prior, likelihood)`` or ``(ReferenceTempered(β), reference, prior,
likelihood)``, whose tag carries β as a runtime value and whose class selects the portable
``value_and_grad`` registered below. Any kernel runs on it on either backend, and a new β
compiles nothing.

Because ``log π_β = log ρ + β ℓ`` is affine in β, a kernel state cached at ``β`` (its
``target_fields``, log-density and gradient) moves to ``β'`` without evaluating anything,
given ``ℓ`` and ``∇ℓ`` there (:func:`rebase`); and ``ℓ`` and ``∇ℓ`` at a state cached at
β > 0 follow from one evaluation of the reference alone (:func:`stage_increment`):
``ℓ = (log π_β − log ρ)/β``, ``∇ℓ = (∇log π_β − ∇log ρ)/β``. Tempered SMC therefore
evaluates the likelihood only inside the kernel's own steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from langevin.backends.portable import portable
from langevin.targets.base import Target
from langevin.targets.capabilities import TargetForm, register_combinator

__all__ = [
    "TemperedTarget", "GaussianReference", "PriorTempered", "ReferenceTempered",
    "tempered_form", "with_beta", "full_increment", "stage_increment", "rebase",
]  # fmt: skip

xp: Any = None


# -- the combinator ----------------------------------------------------------------------------
class PriorTempered(NamedTuple):
    """Tag of ``log π_β = log p + β log L`` (reference = prior): ``(tag, prior, likelihood)``."""

    beta: float


class ReferenceTempered(NamedTuple):
    """Tag of ``log π_β = (1 − β) log ρ + β (log p + log L)``: ``(tag, ρ, prior, likelihood)``."""

    beta: float


@portable
def prior_tempered_value_and_grad(target, x):
    """``log p(x) + β log L(x)`` and its gradient (reference = prior)."""
    lp, gp = xp.value_and_grad(target[1], x)
    ll, gl = xp.value_and_grad(target[2], x)
    beta = target[0].beta
    return lp + beta * ll, gp + beta * gl


@portable
def reference_tempered_value_and_grad(target, x):
    """``(1 − β) log ρ(x) + β (log p(x) + log L(x))`` and its gradient."""
    lr, gr = xp.value_and_grad(target[1], x)
    lp, gp = xp.value_and_grad(target[2], x)
    ll, gl = xp.value_and_grad(target[3], x)
    beta = target[0].beta
    return (1.0 - beta) * lr + beta * (lp + ll), (1.0 - beta) * gr + beta * (gp + gl)


register_combinator(PriorTempered, value_and_grad=prior_tempered_value_and_grad)
register_combinator(ReferenceTempered, value_and_grad=reference_tempered_value_and_grad)


@portable
def _guarded(x, ell, grad_ell):
    """``(ℓ, ∇ℓ)``, with ℓ = −∞ where x is not finite (a particle that diverged gets weight
    0). A NaN ℓ at a finite x stays NaN: the sampler reports it before giving it weight 0
    (``tempering._zero_weight_for_nan``), instead of hiding a failure of the model's code."""
    finite_x = xp.all_finite(x)
    ok = finite_x & xp.isfinite(ell)
    return xp.select(finite_x, ell, -xp.inf), xp.select(ok, grad_ell, 0.0 * grad_ell)


@portable
def prior_full_increment(target, x):
    """``(ℓ(x), ∇ℓ(x)) = (log L(x), ∇log L(x))`` (reference = prior; used once, at β = 0)."""
    ll, gl = xp.value_and_grad(target[2], x)
    return _guarded(x, ll, gl)


@portable
def reference_full_increment(target, x):
    """``(ℓ(x), ∇ℓ(x))`` from every part (Gaussian reference; used once, at β = 0)."""
    lr, gr = xp.value_and_grad(target[1], x)
    lp, gp = xp.value_and_grad(target[2], x)
    ll, gl = xp.value_and_grad(target[3], x)
    return _guarded(x, lp + ll - lr, gp + gl - gr)


def full_increment(form: TargetForm):
    """The portable ``(ℓ, ∇ℓ)`` of every part, for this form's variant."""
    return prior_full_increment if form.key[0] is PriorTempered else reference_full_increment


@portable
def stage_increment(target, x, logdensity, grad):
    """``(ℓ(x), ∇ℓ(x))`` from a state cached at β > 0 and one evaluation of the reference:
    ``ℓ = (log π_β − log ρ)/β`` (module docstring)."""
    lr, gr = xp.value_and_grad(target[1], x)
    beta = target[0].beta
    return _guarded(x, (logdensity - lr) / beta, (grad - gr) / beta)


def rebase(state, delta, ell, grad_ell):
    """A batched kernel state cached at β moved to β + δ: its ``logdensity`` and ``grad``
    shift by ``δ ℓ`` and ``δ ∇ℓ`` (exact: log π_β is affine in β). NumPy or JAX arrays."""
    return state._replace(
        logdensity=state.logdensity + delta * ell,
        grad=state.grad + delta * grad_ell,
    )


# -- targets -----------------------------------------------------------------------------------
class GaussianReference(NamedTuple):
    """A Gaussian reference ``ρ = N(mean, cov)`` to temper from (instead of the prior)."""

    mean: Any
    cov: Any


class TemperedTarget:
    """A posterior given as prior × likelihood, with a way to sample the prior.

    ``log π_β(x) = log p(x) + β log L(x)``: the tempering path of :func:`tempered_smc`.
    The evidence ``∫ p L dx`` is what ``log_evidence`` estimates, so give normalised
    log-densities (with their constants) if you want the evidence itself; the sampled
    posterior does not depend on the constants.

    Args:
        prior: the log prior density ``log p`` as a :class:`langevin.Target` (JAX and/or
            Numba forms; the forms must match the backend you run).
        likelihood: the log-likelihood ``log L`` as a :class:`langevin.Target`.
        sample_prior: ``sample_prior(rng, n) -> (n, dim)`` draws from the prior with a
            ``numpy.random.Generator``. Needed unless you temper from a
            :class:`GaussianReference`.
        names: parameter names and shapes (as for :class:`langevin.Target`).
        name: a label.

    Example:
        >>> import numpy as np, langevin
        >>> from langevin.smc import TemperedTarget
        >>> prior = langevin.targets.gaussian(2)            # N(0, I) (unnormalised here)
        >>> lik = langevin.targets.gaussian(2, mean=[1.0, 0.5], cov=[0.5, 0.5])
        >>> model = TemperedTarget(prior, lik, lambda rng, n: rng.standard_normal((n, 2)))
        >>> model.dim
        2
    """

    def __init__(
        self,
        prior: Target,
        likelihood: Target,
        sample_prior: Callable[[np.random.Generator, int], np.ndarray] | None = None,
        *,
        names: dict | None = None,
        name: str = "tempered_target",
    ) -> None:
        for argname, t in (("prior", prior), ("likelihood", likelihood)):
            if not isinstance(t, Target):
                raise TypeError(
                    f"{argname} must be a langevin.Target (Target.from_jax / Target.from_numba); "
                    f"got {type(t).__name__}"
                )
        dims = {t.dim for t in (prior, likelihood) if t.dim is not None}
        if len(dims) > 1:
            raise ValueError(f"prior and likelihood have different dimensions: {sorted(dims)}")
        if not dims:
            raise ValueError("the dimension is unknown: give the prior or likelihood a dim=")
        self.dim = dims.pop()
        if sample_prior is not None and not callable(sample_prior):
            raise TypeError("sample_prior must be callable: sample_prior(rng, n) -> (n, dim)")
        self.prior = prior.with_dim(self.dim)
        self.likelihood = likelihood.with_dim(self.dim)
        self.sample_prior = sample_prior
        self.names = names
        self.name = name
        blocks_from = Target(dim=self.dim, names=names)
        self.blocks = blocks_from.names_or_default()
        self._cache: dict = {}

    def __repr__(self) -> str:
        return f"TemperedTarget({self.name!r}, dim={self.dim})"


def tempered_form(target: TemperedTarget, reference_target: Target | None, backend: str,
                  dtype=np.float64) -> TargetForm:  # fmt: skip
    """π_β on ``backend`` as a :class:`TargetForm` whose data is ``(β, parts' data)``; set β
    with :func:`with_beta`."""
    from langevin.backends.base import get_backend

    be = get_backend(backend)
    parts = [target.prior, target.likelihood]
    if reference_target is not None:
        parts.insert(0, reference_target)
    for name, t in zip(("reference", "prior", "likelihood")[3 - len(parts) :], parts):
        has = t.has_numba if backend == "numba" else t.has_jax
        if not has:
            other = "jax" if backend == "numba" else "numba"
            raise TypeError(
                f"the {name} {t!r} has no {backend.capitalize()} form, so backend={backend!r} "
                f"cannot run it; build it with Target.from_{backend}(...) or use "
                f"backend={other!r}"
            )
    forms = [be.bind_target(t, target.dim) if backend == "numba"
             else be.bind_target(t, target.dim, dtype) for t in parts]  # fmt: skip
    tag = PriorTempered if reference_target is None else ReferenceTempered
    builds = tuple(f.build for f in forms)

    def build(data):
        beta, parts_data = data
        return (tag(beta), *(b(d) for b, d in zip(builds, parts_data)))

    numba_type = None
    if backend == "numba":
        import numba
        from numba import types as nt

        numba_type = nt.Tuple([numba.typeof(tag(0.0)), *(f.numba_type for f in forms)])
    return TargetForm(
        key=(tag, tuple(f.key for f in forms)),
        data=(0.0, tuple(f.data for f in forms)),
        build=build,
        numba_type=numba_type,
        capabilities=frozenset({"value_and_grad", "logdensity", "grad", "score"}),
    )


def with_beta(form: TargetForm, beta: float, dtype=None) -> TargetForm:
    """The same tempered form at exponent ``beta`` (a runtime value: nothing recompiles)."""
    value = float(beta)
    if dtype is not None and np.dtype(dtype) != np.float64:
        import jax.numpy as jnp

        value = jnp.asarray(value, dtype)
    return form._replace(data=(value, form.data[1]))


def check_backend_forms(target: TemperedTarget, backend: str, reference) -> None:
    parts = [("prior", target.prior), ("likelihood", target.likelihood)]
    for name, t in parts:
        if backend == "numba" and not t.has_numba:
            raise TypeError(
                f"the {name} {t!r} has no Numba form, so backend='numba' cannot run it; build "
                "it with Target.from_numba(...) or use backend='jax'"
            )
        if backend == "jax" and not t.has_jax:
            raise TypeError(
                f"the {name} {t!r} has no JAX form, so backend='jax' cannot run it; build it "
                "with Target.from_jax(...) or use backend='numba'"
            )
    if reference is None and target.sample_prior is None:
        raise ValueError(
            "tempering from the prior needs draws from it: give TemperedTarget a "
            "sample_prior(rng, n), or temper from reference=GaussianReference(mean, cov)"
        )


def gaussian_reference(reference, target: TemperedTarget):
    """``(mean, chol)`` for the draws, the built-in Gaussian target for log ρ (constant
    dropped), and ``log c`` with ``log ρ = log ρ_target − log c`` (the dropped constant).
    The target is cached on ``target`` by value, so a JAX run compiles once per reference."""
    from langevin.targets.gaussians import gaussian

    dim = target.dim

    if not isinstance(reference, GaussianReference):
        raise TypeError(
            "reference must be None (the prior) or GaussianReference(mean, cov); got "
            f"{type(reference).__name__}"
        )
    mean = np.asarray(reference.mean, dtype=np.float64).reshape(-1)
    cov = np.asarray(reference.cov, dtype=np.float64)
    if mean.shape != (dim,):
        raise ValueError(f"reference.mean must have shape ({dim},); got {mean.shape}")
    if cov.shape == (dim,):
        cov = np.diag(cov)
    key = ("gaussian-reference", mean.tobytes(), cov.tobytes())
    if key not in target._cache:
        target._cache[key] = gaussian(dim, mean=mean, cov=cov)  # validates cov (SPD)
    chol = np.linalg.cholesky(cov)
    log_norm = 0.5 * dim * math.log(2 * math.pi) + float(np.sum(np.log(np.diag(chol))))
    return (mean, chol), target._cache[key], log_norm
