"""SMC samplers for static targets: tempering from a reference to the posterior.

For a posterior ``π(x) ∝ p(x) L(x)`` (prior times likelihood) and a reference law ``ρ``
that we can sample (the prior itself, or a Gaussian), the tempered targets

    π_β(x) ∝ ρ(x) exp(β ℓ(x)),    ℓ(x) = log p(x) + log L(x) − log ρ(x),    0 = β_0 < … < β_T = 1

bridge ``ρ`` (β = 0) and ``π`` (β = 1); with ``ρ = p``, ``π_β ∝ p L^β`` and ``ℓ = log L``.
The SMC sampler of Del Moral, Doucet & Jasra (2006) is the Feynman–Kac model
(Chopin & Papaspiliopoulos 2020, Ch. 17; ALGORITHMS.md §7a)

    M_0 = ρ,    M_t = K_t^k  (k steps of an MCMC kernel leaving π_{β_{t−1}} invariant),
    G_t(x) = exp((β_t − β_{t−1}) ℓ(x)),

run by the generic loop :func:`langevin.smc.smc` (ESS-triggered resampling). With ``K_t``
π_{t−1}-invariant and the backward kernel its time reversal, the incremental weight is
``π_t(x)/π_{t−1}(x)`` evaluated at the moved particle, i.e. ``G_t``. The product of the
log-evidence increments estimates ``Z = ∫ p(x) L(x) dx`` (the *evidence*, when ``p`` and
``L`` are normalised densities), and ``Ẑ`` is unbiased for a fixed schedule.

**Any langevin kernel is the move.** The kernel's ``step_math`` runs per particle on the
tempered target ``π_β``, written once as a portable function of ``(β, reference, prior,
likelihood)`` (Numba: a target form the namespace's ``value_and_grad`` understands; JAX: a
callable). MALA or HMC (exact) keep ``π_β`` invariant; ULA or unadjusted kinetic kernels
leave an O(h) bias in the particles *and* in ``Ẑ``.

**Adaptive schedule** (Jasra, Stephens, Doucet & Tsagaris 2011; Zhou, Johansen & Aston
2016): the next exponent is ``β_t = β_{t−1} + δ`` with δ the largest value such that the
conditional ESS of the incremental weights

    CESS(δ) = N (Σ_n W_n e^{δ ℓ_n})² / Σ_n W_n e^{2 δ ℓ_n}     (∈ [1, N]; = ESS when W = 1/N)

is at least ``target_ess · N``, found by bisection (CESS decreases in δ). The schedule then
depends on the particles, which adds an O(1/N) bias to ``Ẑ``; a fixed ``schedule`` keeps
it exactly unbiased.

**Step size per stage.** Before each mutation the step size is re-tuned from the
population (documented choice, two ingredients):

* *scale*: ``h_t = h_{t−1} · v_t / v_{t−1}`` with ``v`` the mean over coordinates of the
  weighted particle variances — the tempered targets contract as β grows and a
  position-scale step size must follow (Chopin 2002 and Jasra et al. 2011 scale their
  random-walk proposals by the particle covariance). Kernels that declare
  ``adapts_inverse_mass`` (HMC) get ``inverse_mass = `` the weighted variances instead, and
  no scale factor (the metric absorbs the scale);
* *acceptance feedback*: for exact kernels with a ``target_acceptance`` (MALA 0.574, HMC
  0.8), ``log h_t += κ (ᾱ_{t−1} − α*)`` with ``κ = 2`` and the step clipped to ±1, where
  ``ᾱ`` is the mean acceptance rate of the previous stage's moves — a per-stage
  Robbins–Monro update in the spirit of Fearnhead & Taylor (2013).

**Log evidence and its variance.** ``log_evidence`` is ``log Ẑ``; its variance is
estimated from ``repeats`` independent runs (``repeats >= 2``): the reported evidence is
the mean of the ``Ẑ_r`` (still unbiased) and ``log_evidence_var`` the delta-method
variance of its logarithm, ``s²(Ẑ_r) / (R · Z̄²)``. (The single-run estimators of
Chan & Lai 2013 / Lee & Whiteley 2018 are not implemented.)

References:
    Del Moral, P., Doucet, A. and Jasra, A. (2006). Sequential Monte Carlo samplers.
    JRSS B 68(3).
    Chopin, N. (2002). A sequential particle filter method for static models.
    Biometrika 89(3).
    Jasra, A., Stephens, D. A., Doucet, A. and Tsagaris, T. (2011). Inference for Lévy-driven
    stochastic volatility models via adaptive sequential Monte Carlo. Scand. J. Stat. 38(1).
    Fearnhead, P. and Taylor, B. M. (2013). An adaptive sequential Monte Carlo sampler.
    Bayesian Analysis 8(2).
    Zhou, Y., Johansen, A. M. and Aston, J. A. D. (2016). Toward automatic model comparison:
    an adaptive sequential Monte Carlo approach. JCGS 25(3).
    Chopin, N. and Papaspiliopoulos, O. (2020). An Introduction to Sequential Monte Carlo,
    Ch. 17. Springer.
"""

from __future__ import annotations

import math
import numbers
import os
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, NamedTuple

import numpy as np

from langevin.backends.portable import make_twin, portable, source_fingerprint
from langevin.kernels.base import Kernel
from langevin.smc import resampling
from langevin.smc._compile import twin
from langevin.smc.feynman_kac import FeynmanKac, GeneratorNoise, smc
from langevin.smc.resampling import log_sum_exp
from langevin.smc.trace import SMCTrace
from langevin.spec import empty_noise
from langevin.targets.base import Target
from langevin.targets.capabilities import register_combinator

__all__ = ["TemperedTarget", "GaussianReference", "tempered_smc", "next_increment"]

xp: Any = None

#: acceptance feedback gain κ of the per-stage step-size update (see the module docstring)
FEEDBACK_GAIN = 2.0
_BISECTION_STEPS = 60


# -- the tempered target, written once: a target combinator --------------------------------
# π_β is the form tuple (tag, reference, likelihood) when the reference is the prior, and
# (tag, reference, prior, likelihood) for a Gaussian reference; the tag carries β (a runtime
# value) and its class selects the portable implementations registered below, which the
# namespaces of both backends dispatch to (langevin.targets.capabilities).
class PriorTempered(NamedTuple):
    """Tag of ``log π_β = log p + β log L`` (reference = prior)."""

    beta: float


class ReferenceTempered(NamedTuple):
    """Tag of ``log π_β = (1 − β) log ρ + β (log p + log L)``."""

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
def prior_log_increment(target, x):
    """``ℓ(x) = log L(x)``, or −inf where x or ℓ is not finite (the particle gets weight 0)."""
    ll, _ = xp.value_and_grad(target[2], x)
    ok = xp.all_finite(x) & xp.isfinite(ll)
    return xp.select(ok, ll, -xp.inf)


@portable
def reference_log_increment(target, x):
    """``ℓ(x) = log p(x) + log L(x) − log ρ(x)``, −inf where not finite."""
    lr, _ = xp.value_and_grad(target[1], x)
    lp, _ = xp.value_and_grad(target[2], x)
    ll, _ = xp.value_and_grad(target[3], x)
    value = lp + ll - lr
    ok = xp.all_finite(x) & xp.isfinite(value)
    return xp.select(ok, value, -xp.inf)


# -- the adaptive exponent ---------------------------------------------------------------------
@portable
def _log_cess_fraction(log_weights, ell, delta):
    """``log(CESS(δ) / N)`` for log-weights ``lw`` and increments ``ℓ`` (module docstring)."""
    a = log_sum_exp(log_weights + delta * ell)
    b = log_sum_exp(log_weights + 2.0 * delta * ell)
    return 2.0 * a - b - log_sum_exp(log_weights)


@portable
def next_increment(log_weights, ell, beta, target_ess):
    """The next exponent step δ ∈ (0, 1 − β]: ``1 − β`` if its CESS is at least
    ``target_ess · N``, else the largest δ with that property, by bisection (60 halvings:
    a static loop, so Numba caches it; the JAX backend runs the NumPy twin on the host).
    """
    room = 1.0 - beta
    log_target = xp.log(target_ess)
    lo = 0.0 * room
    hi = room
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        ok = _log_cess_fraction(log_weights, ell, mid) >= log_target
        lo = xp.select(ok, mid, lo)
        hi = xp.select(ok, hi, mid)
    delta = xp.select(lo > 0.0, lo, hi)
    done = _log_cess_fraction(log_weights, ell, room) >= log_target
    return xp.select(done, room, delta)


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


# -- per-particle stages on each backend -------------------------------------------------------
def _stage_chunk(lo, hi, positions, init_noise, noise, n_steps, step_size, params, target,
                 out_position, out_ell, out_acceptance, out_diverging):  # fmt: skip
    """Numba loop template: particles ``lo..hi−1``: init at π_β, ``n_steps`` kernel steps,
    ℓ at the end. ``kernel_init``, ``kernel_step`` and ``log_increment`` are bound per kernel
    and target variant (twin overrides)."""
    dim = positions.shape[1]
    for n in range(lo, hi):
        state = kernel_init(positions[n], xp.index_tree(init_noise, n), params,  # noqa: F821
                            target)  # fmt: skip
        particle_noise = xp.index_tree(noise, n)
        acceptance = 0.0
        diverging = False
        for s in range(n_steps):
            state, info = kernel_step(state, xp.index_tree(particle_noise, s), step_size,  # noqa: F821
                                      params, target)  # fmt: skip
            acceptance += info.acceptance_rate
            diverging = diverging or info.diverging
        position = state.position
        for j in range(dim):
            out_position[n, j] = position[j]
        out_ell[n] = log_increment(target, position)  # noqa: F821
        out_acceptance[n] = acceptance / max(n_steps, 1)
        out_diverging[n] = diverging


def _numba_array(ndim: int):
    from numba import types as nt

    return nt.Array(nt.float64, ndim, "C")


class _NumbaStage:
    """Compiled mutation stages of one kernel class on one tempered target (Numba)."""

    _LOOPS: ClassVar[dict] = {}

    def __init__(self, target: TemperedTarget, kernel: Kernel, reference) -> None:
        import numba
        from numba import types as nt
        from numba.core.errors import NumbaExperimentalFeatureWarning, NumbaWarning

        from langevin.backends import numba_backend, numba_ops

        dim = target.dim
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumbaExperimentalFeatureWarning)
            parts = [target.prior, target.likelihood]
            if reference is not None:
                parts.insert(0, reference)
            forms = [numba_backend.bind_target(t, dim) for t in parts]
        self.tag = PriorTempered if reference is None else ReferenceTempered
        self.forms = tuple(f.build(f.data) for f in forms)
        target_t = nt.Tuple([numba.typeof(self.tag(0.0)), *(f.numba_type for f in forms)])
        kernel_cls = type(kernel)
        self.init_spec = kernel.init_noise(dim)
        init_noise_t = numba.typeof(empty_noise(self.init_spec, (1,)))
        noise_t = numba.typeof(empty_noise(kernel.noise(dim), (1, 1)))
        params_t = numba.typeof(numba_backend._cast_tree(kernel_cls.example().params()))
        variant = "prior" if reference is None else "reference"
        key = (kernel_cls, variant, target_t, noise_t, params_t)
        if key not in self._LOOPS:
            increment = prior_log_increment if reference is None else reference_log_increment
            memo: dict = {}
            overrides = {
                "kernel_init": make_twin(kernel_cls.init_math, numba_ops, numba.njit, memo),
                "kernel_step": make_twin(kernel_cls.step_math, numba_ops, numba.njit, memo),
                "log_increment": make_twin(increment, numba_ops, numba.njit, memo),
            }
            sig = nt.void(
                nt.int64, nt.int64, _numba_array(2), init_noise_t, noise_t, nt.int64, nt.float64,
                params_t, target_t, _numba_array(2), _numba_array(1), _numba_array(1),
                nt.Array(nt.boolean, 1, "C"),
            )  # fmt: skip
            fingerprint = source_fingerprint(
                kernel_cls.step_math, kernel_cls.init_math, increment,
                prior_tempered_value_and_grad, reference_tempered_value_and_grad,
                extra_modules=(numba_ops, _this_module()),
            )  # fmt: skip

            def compile_loop(fn):
                fn.__qualname__ = f"_stage_{kernel_cls.__name__}_{variant}_{fingerprint}"
                with warnings.catch_warnings():
                    # A kernel whose step passes an allocating function to xp.fori_loop cannot
                    # be cached on disk; it is then compiled once per process, which is fine.
                    warnings.filterwarnings("ignore", message=".*[Cc]annot cache",
                                            category=NumbaWarning)  # fmt: skip
                    warnings.simplefilter("ignore", NumbaExperimentalFeatureWarning)
                    return numba.njit(sig, cache=True, nogil=True)(fn)

            self._LOOPS[key] = make_twin(_stage_chunk, numba_ops, compile_loop, memo,
                                         overrides=overrides)  # fmt: skip
        self.loop = self._LOOPS[key]
        self.kernel = kernel

    def run(self, positions, noise, n_steps, step_size, params, beta):
        n, dim = positions.shape
        positions = np.ascontiguousarray(positions, dtype=np.float64)
        out_position = np.empty((n, dim))
        out_ell = np.empty(n)
        out_acc = np.empty(n)
        out_div = np.zeros(n, dtype=bool)
        target = (self.tag(float(beta)), *self.forms)
        from langevin.backends import numba_backend

        params = numba_backend._cast_tree(params)
        noise = numba_backend._cast_tree(noise)
        # the kernel restarts from init at every stage, with zero init noise (a kinetic
        # kernel's momentum starts at 0)
        init_noise = empty_noise(self.init_spec, (n,))
        workers = min(os.cpu_count() or 1, max(1, n // 64))
        bounds = np.linspace(0, n, workers + 1).astype(int)

        def chunk(i):
            self.loop(int(bounds[i]), int(bounds[i + 1]), positions, init_noise, noise,
                      int(n_steps),
                      float(step_size), params, target, out_position, out_ell, out_acc,
                      out_div)  # fmt: skip

        from numba.core.errors import NumbaExperimentalFeatureWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumbaExperimentalFeatureWarning)
            if workers == 1:
                chunk(0)
            else:
                for f in [_pool(workers).submit(chunk, i) for i in range(workers)]:
                    f.result()
        return out_position, out_ell, out_acc, out_div


_POOL: ThreadPoolExecutor | None = None


def _pool(n: int) -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None or _POOL._max_workers < n:
        _POOL = ThreadPoolExecutor(max_workers=n, thread_name_prefix="langevin-smc")
    return _POOL


def _this_module():
    import sys

    return sys.modules[__name__]


class _JaxStage:
    """Jitted, vmapped mutation stages of one kernel class on one tempered target (JAX)."""

    def __init__(self, target: TemperedTarget, kernel: Kernel, reference, dtype) -> None:
        import jax
        import jax.numpy as jnp

        kernel_cls = type(kernel)
        key = ("jax-stage", kernel_cls, None if reference is None else id(reference),
               np.dtype(dtype).name)  # fmt: skip
        self.dtype = dtype
        if key not in target._cache:
            from langevin.backends import jax_backend

            parts = [target.prior, target.likelihood]
            if reference is not None:
                parts.insert(0, reference)
            forms = tuple(jax_backend.bind_target(t).build(None) for t in parts)
            tag = PriorTempered if reference is None else ReferenceTempered
            increment = twin(prior_log_increment if reference is None
                             else reference_log_increment, "jax")  # fmt: skip
            init = twin(kernel_cls.init_math, "jax")
            step = twin(kernel_cls.step_math, "jax")
            init_spec = kernel.init_noise(target.dim)

            def one(x, noise, step_size, params, beta):
                tempered = (tag(beta), *forms)
                # the kernel restarts from init at every stage, with zero init noise
                init_noise = type(init_spec)(*(jnp.zeros(d.shape, x.dtype) for d in init_spec))
                state = init(x, init_noise, params, tempered)
                n_steps = jax.tree_util.tree_leaves(noise)[0].shape[0]

                def body(s, carry):
                    state, acceptance, diverging = carry
                    nz = jax.tree_util.tree_map(lambda a: a[s], noise)
                    state, info = step(state, nz, step_size, params, tempered)
                    return (state, acceptance + info.acceptance_rate,
                            diverging | info.diverging)  # fmt: skip

                carry = (state, jnp.zeros((), x.dtype), jnp.zeros((), bool))
                if n_steps > 0:  # a shape: static (a zero-length loop would still be traced)
                    carry = jax.lax.fori_loop(0, n_steps, body, carry)
                state, acceptance, diverging = carry
                ell = increment(tempered, state.position)
                return state.position, ell, acceptance / max(n_steps, 1), diverging

            target._cache[key] = jax.jit(jax.vmap(one, in_axes=(0, 0, None, None, None)))
        self.fn = target._cache[key]

    def run(self, positions, noise, n_steps, step_size, params, beta):
        import jax
        import jax.numpy as jnp

        dtype = self.dtype
        noise = type(noise)(*(jnp.asarray(a, dtype) for a in noise))
        params = jax.tree_util.tree_map(lambda v: _jax_leaf(v, dtype), params)
        out = self.fn(jnp.asarray(positions, dtype), noise, jnp.asarray(step_size, dtype),
                      params, jnp.asarray(beta, dtype))  # fmt: skip
        return out


def _jax_leaf(v, dtype):
    import jax.numpy as jnp

    a = np.asarray(v)
    if np.issubdtype(a.dtype, np.integer):
        return jnp.asarray(a.astype(np.int32))
    return jnp.asarray(a, dtype)


# -- the Feynman–Kac model of tempering --------------------------------------------------------
class TemperParticles(NamedTuple):
    """Particles of a tempering SMC sampler: positions (N, d) and ``ℓ`` at them (N,)."""

    x: Any
    ell: Any


class _TemperingFK(FeynmanKac):
    """``M_0 = ρ``; ``M_t`` = ``n_steps`` kernel steps on ``π_{β_{t−1}}``;
    ``log G_t = (β_t − β_{t−1}) ℓ``, β_t from the schedule or by bisection."""

    def __init__(self, target, kernel, *, backend, n_steps, schedule, target_ess,
                 adapt_step_size, reference, reference_target, dtype, rng):  # fmt: skip
        self.backend = backend
        self.target = target
        self.kernel = kernel
        self.n_steps = n_steps
        self.schedule = schedule
        self.target_ess = target_ess
        self.adapt = adapt_step_size
        self.reference = reference
        self.dtype = np.dtype(dtype)
        self.rng = rng
        self.beta = 0.0
        self.betas: list[float] = [0.0]
        self.step_sizes: list[float] = []
        self.acceptance: list[float] = []
        self.diverging: list[int] = []
        self.step_size = float(kernel.step_size)
        self.params = kernel.params()
        if getattr(kernel, "adapts_inverse_mass", False) and "inverse_mass" in self.params._fields:
            self.params = self.params._replace(inverse_mass=np.ones(target.dim))
        self.variance: float | None = None
        if backend == "numba":
            self.stage = _NumbaStage(target, kernel, reference_target)
        else:
            self.stage = _JaxStage(target, kernel, reference_target, self.dtype)
        # JAX: the bisection runs on the host (the NumPy twin; N numbers per stage): unrolled
        # under jit its 60 halvings would cost ~10 s of compilation for no run-time gain.
        self.next_increment = twin(next_increment, "numba" if backend == "numba" else "numpy")
        spec = kernel.noise(target.dim)
        self._noise_spec = type(spec)(*(type(d)((n_steps, *d.shape)) for d in spec))
        self._zero_spec = type(spec)(*(type(d)((0, *d.shape)) for d in spec))

    # noise: t = 0 draws from the reference with the model's own generator
    def particle_noise(self, t):
        return None if t == 0 else self._noise_spec

    def M0(self, n, noise):
        dim = self.target.dim
        if self.reference is None:
            x = np.asarray(self.target.sample_prior(self.rng, n), dtype=np.float64)
            if x.shape != (n, dim):
                raise ValueError(
                    f"sample_prior(rng, {n}) must return an array of shape ({n}, {dim}); "
                    f"got {x.shape}"
                )
            if not np.all(np.isfinite(x)):
                raise ValueError("sample_prior returned non-finite draws")
        else:
            mean, chol = self.reference
            x = mean + self.rng.standard_normal((n, dim)) @ chol.T
        zero_noise = type(self._zero_spec)(*(np.zeros((n, *d.shape)) for d in self._zero_spec))
        pos, ell, _, _ = self.stage.run(x, zero_noise, 0, self.step_size, self.params, 0.0)
        self.variance = _mean_variance(np.asarray(pos), None)
        return TemperParticles(pos, ell)

    def tune(self, x, log_weights) -> None:
        """Re-tune the step size (and a declared inverse mass) from the weighted particles."""
        var = _weighted_variances(np.asarray(x), np.asarray(log_weights))
        mean_var = float(np.mean(var))
        if self.adapt:
            h = self.step_size
            if self.acceptance and self.kernel.exact and self.kernel.target_acceptance:
                gap = self.acceptance[-1] - self.kernel.target_acceptance
                h *= math.exp(float(np.clip(FEEDBACK_GAIN * gap, -1.0, 1.0)))
            if getattr(self.kernel, "adapts_inverse_mass", False) and "inverse_mass" in (
                self.params._fields
            ):
                self.params = self.params._replace(inverse_mass=np.maximum(var, 1e-300))
            elif self.variance and mean_var > 0:
                h *= mean_var / self.variance
            self.step_size = h
        self.variance = mean_var

    def M(self, t, particles, log_weights, noise):
        self.tune(particles.x, log_weights)
        pos, ell, acc, div = self.stage.run(particles.x, noise, self.n_steps, self.step_size,
                                            self.params, self.beta)  # fmt: skip
        self.step_sizes.append(self.step_size)
        self.acceptance.append(float(np.mean(np.asarray(acc))))
        self.diverging.append(int(np.sum(np.asarray(div))))
        return TemperParticles(pos, ell)

    def logG(self, t, previous, particles, log_weights):
        if self.schedule is not None:
            beta = float(self.schedule[t + 1])  # G_0 already reweights to β_1
        else:
            delta = float(self.next_increment(np.asarray(log_weights), np.asarray(particles.ell),
                                              self.beta, self.target_ess))  # fmt: skip
            beta = 1.0 if self.beta + delta >= 1.0 - 1e-12 else self.beta + delta
        delta = beta - self.beta
        self.beta = beta
        self.betas.append(beta)
        return delta * particles.ell

    def done(self, t):
        return self.beta >= 1.0

    def progress_total(self):
        return 1.0

    def progress_position(self, t):
        return self.beta


def _weighted_variances(x: np.ndarray, log_weights: np.ndarray) -> np.ndarray:
    w = np.exp(log_weights - np.max(log_weights))
    w /= w.sum()
    finite = np.all(np.isfinite(x), axis=1)
    w = np.where(finite, w, 0.0)
    w /= w.sum()
    xs = np.where(finite[:, None], x, 0.0)
    mean = w @ xs
    return w @ (xs - mean) ** 2


def _mean_variance(x: np.ndarray, log_weights) -> float:
    lw = np.zeros(x.shape[0]) if log_weights is None else log_weights
    return float(np.mean(_weighted_variances(x, lw)))


# -- the public sampler ------------------------------------------------------------------------
def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _check_fraction(name, value, lo_open=True, hi_open=True):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > 0 if lo_open else value >= 0) and (value < 1 if hi_open else value <= 1)
    if not ok:
        raise ValueError(f"{name} must be a number in {'(' if lo_open else '['}0, 1"
                         f"{')' if hi_open else ']'}; got {value!r}")  # fmt: skip
    return float(value)


def _check_schedule(schedule) -> np.ndarray:
    try:
        s = np.asarray(schedule, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise TypeError("schedule must be a sequence of floats") from exc
    if s.size < 1 or not np.all(np.isfinite(s)):
        raise ValueError("schedule must be a non-empty sequence of finite exponents")
    if s[0] == 0.0:
        s = s[1:]
    if s.size < 1 or s[-1] != 1.0 or np.any(np.diff(np.concatenate([[0.0], s])) <= 0):
        raise ValueError(
            "schedule must increase strictly from above 0 to exactly 1 (e.g. "
            "np.linspace(0, 1, 21)[1:]); a leading 0 is allowed"
        )
    return np.concatenate([[0.0], s])


def _check_backend_forms(target: TemperedTarget, backend: str, reference) -> None:
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


def _gaussian_reference(reference, target: TemperedTarget):
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


def tempered_smc(
    target: TemperedTarget,
    kernel: Kernel,
    *,
    n_particles: int = 1000,
    n_steps: int = 10,
    schedule: Sequence[float] | None = None,
    target_ess: float = 0.5,
    resample_threshold: float = 1.0,
    scheme: str = "systematic",
    reference: GaussianReference | None = None,
    adapt_step_size: bool = True,
    final_mutation: bool = True,
    repeats: int = 1,
    backend: str = "numba",
    seed: int | None = None,
    dtype=np.float64,
    max_stages: int = 10_000,
    progress: bool = True,
) -> SMCTrace:
    """Sample a posterior and estimate its evidence by tempering SMC with a langevin kernel.

    From ``N`` draws of the reference (the prior, or ``reference``), each stage reweights
    by ``exp((β_t − β_{t−1}) ℓ)``, resamples when the ESS falls below
    ``resample_threshold · N`` and moves every particle ``n_steps`` steps of ``kernel`` on
    the current tempered target, until β = 1 (see the module docstring for the math, the
    adaptive schedule and the step-size rule).

    Args:
        target: a :class:`TemperedTarget` (prior, likelihood, prior sampler).
        kernel: any langevin kernel (``langevin.MALA(h)``, ``langevin.HMC(h, n_leapfrog)``,
            ``langevin.ULA(h)`` — biased); its ``step_size`` is the initial step size, at
            the scale of the reference.
        n_particles: N >= 2 per run.
        n_steps: kernel steps per particle per stage (>= 1).
        schedule: fixed exponents ``0 < β_1 < … < β_T = 1`` (a leading 0 is allowed);
            None chooses them adaptively with ``target_ess``.
        target_ess: adaptive schedule: conditional ESS fraction of each reweighting, in (0, 1).
        resample_threshold: resample when ESS < threshold · N, in [0, 1]. The default 1
            resamples at every stage (as ``particles``' and BlackJAX's adaptive tempering
            do). With the adaptive schedule the ESS after a reweighting of equal weights is
            ``target_ess · N`` up to rounding, so a threshold equal to ``target_ess`` would
            decide on rounding noise: it is refused; take it below ``target_ess`` to
            resample every few stages.
        scheme: resampling scheme (``"systematic"``, ``"ssp"``, ...).
        reference: None to temper from the prior, or a :class:`GaussianReference`.
        adapt_step_size: re-tune the step size (and HMC's inverse mass) at each stage.
        final_mutation: after β = 1, resample and move the particles ``n_steps`` more steps
            for the posterior draws (they are then equally weighted).
        repeats: independent runs (>= 2 gives a variance for log Z, and R-hat-style chains).
        backend: ``"numba"`` (float64, particles on threads) or ``"jax"``.
        seed: reproducibility (the same seed gives the same run on both backends, to
            rounding).
        dtype: JAX: float dtype of the particles.
        max_stages: refuse to run more stages than this.
        progress: tqdm bar over β ∈ [0, 1].

    Returns:
        An :class:`~langevin.smc.SMCTrace`.

    Example:
        >>> import langevin
        >>> from langevin.smc import gaussian_model, tempered_smc
        >>> model = gaussian_model([0.0, 0.0], [1.0, 1.0], [1.0, 2.0], [0.5, 0.5])
        >>> trace = tempered_smc(model, langevin.MALA(0.5), n_particles=200, n_steps=5,
        ...                      seed=0, progress=False)
        >>> trace.draws.shape, bool(trace.betas[0][-1] == 1.0)
        ((1, 200, 2), True)
        >>> bool(abs(trace.log_evidence - model.log_evidence) < 0.2)
        True
    """
    # -- checks, before anything compiles ----------------------------------------------------
    if not isinstance(target, TemperedTarget):
        if isinstance(target, Target):
            raise TypeError(
                "target must be a langevin.smc.TemperedTarget(prior, likelihood, sample_prior): "
                "tempering needs the log prior and the log-likelihood separately"
            )
        raise TypeError(f"target must be a TemperedTarget; got {type(target).__name__}")
    if not isinstance(kernel, Kernel):
        raise TypeError(f"kernel must be a langevin kernel such as langevin.MALA(0.1); got "
                        f"{kernel!r}")  # fmt: skip
    n = _check_int("n_particles", n_particles, 2)
    n_steps = _check_int("n_steps", n_steps, 1)
    repeats = _check_int("repeats", repeats, 1)
    max_stages = _check_int("max_stages", max_stages, 1)
    target_ess = _check_fraction("target_ess", target_ess)
    threshold = _check_fraction("resample_threshold", resample_threshold, False, False)
    resampling._check_scheme(scheme)
    if backend not in ("numba", "jax"):
        raise ValueError(f"backend must be 'numba' or 'jax'; got {backend!r}")
    if backend == "numba" and np.dtype(dtype) != np.float64:
        raise TypeError(f"backend='numba' runs in float64; got dtype={np.dtype(dtype)}")
    sched = None if schedule is None else _check_schedule(schedule)
    if sched is None and abs(threshold - target_ess) < 1e-6:
        raise ValueError(
            f"resample_threshold={threshold} equals target_ess: the adaptive schedule makes the "
            "ESS equal to target_ess·N up to rounding, so whether a stage resamples would be "
            "decided by rounding. Use resample_threshold=1 (every stage) or a value below "
            "target_ess."
        )
    _check_backend_forms(target, backend, reference)
    ref_draw = ref_target = None
    log_norm = 0.0
    if reference is not None:
        ref_draw, ref_target, log_norm = _gaussian_reference(reference, target)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or seed < 0):  # fmt: skip
        raise TypeError(f"seed must be a non-negative int or None; got {seed!r}")
    seed_seq = np.random.SeedSequence(seed)

    runs = []
    t_start = time.perf_counter()
    for r, ss in enumerate(seed_seq.spawn(repeats)):
        prior_ss, noise_ss, final_ss = ss.spawn(3)
        model = _TemperingFK(target, kernel, backend=backend, n_steps=n_steps, schedule=sched,
                             target_ess=target_ess, adapt_step_size=adapt_step_size,
                             reference=ref_draw, reference_target=ref_target, dtype=dtype,
                             rng=np.random.default_rng(prior_ss))  # fmt: skip
        label = f"tempered SMC ({kernel.name})" + (f" {r + 1}/{repeats}" if repeats > 1 else "")
        result = smc(model, n, scheme=scheme, ess_threshold=threshold,
                     noise=GeneratorNoise(noise_ss), max_steps=max_stages, progress=progress,
                     progress_label=label)  # fmt: skip
        draws = np.asarray(result.particles.x)
        draw_ell = np.asarray(result.particles.ell)
        if final_mutation:
            rng = np.random.default_rng(final_ss)
            u = rng.random(resampling.uniforms_needed(scheme, n))
            anc = resampling.resample(scheme, result.log_weights, u, log=True)
            noise = GeneratorNoise(rng).particles(0, model._noise_spec, n)
            model.tune(draws[anc], np.zeros(n))
            pos, ell, acc, _ = model.stage.run(draws[anc], noise, n_steps, model.step_size,
                                               model.params, 1.0)  # fmt: skip
            draws, draw_ell = np.asarray(pos), np.asarray(ell)
            model.final_acceptance = float(np.mean(np.asarray(acc)))
        else:
            u = np.random.default_rng(final_ss).random(resampling.uniforms_needed(scheme, n))
            anc = resampling.resample(scheme, result.log_weights, u, log=True)
            draws, draw_ell = draws[anc], draw_ell[anc]
            model.final_acceptance = float("nan")
        runs.append((model, result, draws, draw_ell))
    elapsed = time.perf_counter() - t_start
    return SMCTrace.from_runs(runs, target=target, kernel=kernel, backend=backend, seed=seed,
                              log_norm=log_norm, n_steps=n_steps, elapsed=elapsed)  # fmt: skip
