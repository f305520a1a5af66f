"""Feynman–Kac models and the one generic SMC loop that runs them.

A Feynman–Kac model (Del Moral 2004; Chopin & Papaspiliopoulos 2020, Ch. 5) is

* an initial law ``M_0(dx_0)``,
* Markov kernels ``M_t(x_{t−1}, dx_t)``, t = 1, …, T,
* log-potentials ``log G_t(x_{t−1}, x_t)`` (``log G_0(x_0)`` at t = 0),

defining the path measures ``Q_t(dx_{0:t}) ∝ M_0(dx_0) G_0(x_0) Π_{s≤t} M_s(x_{s−1}, dx_s)
G_s(x_{s−1}, x_s)`` with normalising constants ``L_t``. The generic SMC algorithm
(Chopin & Papaspiliopoulos 2020, Ch. 10; ALGORITHMS.md §7a) approximates them with
N weighted particles:

    X_0^n ~ M_0,                       log w_0^n = log G_0(X_0^n)
    for t = 1, …, T:
        W = normalised weights, ESS = 1 / Σ W²
        if ESS < threshold · N:  A ~ scheme(W),  log w ← 0      (resample)
        else:                    A = (0, …, N−1)
        X_t^n ~ M_t(X_{t−1}^{A_n}, ·)
        log w_t^n = log w^n + log G_t(X_{t−1}^{A_n}, X_t^n)

and the log-evidence increments ``ℓ_t = log Σ_n W_{t−1}^n G_t^n`` (after the reset, if any)
give ``log L̂_T = Σ_t ℓ_t``, an estimate whose exponential is **unbiased**,
``E[L̂_T] = L_T`` (Del Moral 2004, Ch. 7), also with ESS-triggered resampling.

Two families are instances of :class:`FeynmanKac` and run through :func:`smc`:

* particle filters (:mod:`langevin.smc.filters`): bootstrap (``M_t`` the state transition,
  ``G_t`` the observation density) and guided (``M_t`` a proposal, ``G_t`` the importance
  ratio);
* SMC samplers (:mod:`langevin.smc.tempering`): ``M_t`` a few steps of any langevin kernel
  invariant for the current tempered target, ``G_t = exp((β_t − β_{t−1}) ℓ(x))``, with the
  next exponent chosen from the particles (a *population-dependent* potential, which is why
  models act on the whole population).

**Division of labour.** A model acts on the whole population: particles are a NamedTuple of
arrays whose first axis is the particle index, and ``M``/``logG`` are backend-compiled loops
over particles (Numba) or ``vmap`` (JAX) of the model's per-particle portable math. The loop
here owns the rest — weights, ESS, resampling, the gather of the ancestors and the evidence
— as compiled portable code (:mod:`langevin.smc.resampling`) on the model's backend. All
noise is passed in: ``M_0``/``M_t`` receive arrays drawn by a noise source from the
per-particle declarations of :meth:`FeynmanKac.particle_noise`, and the resampling step its
uniforms, so the same source gives the same run on both backends (to rounding).

References:
    Del Moral, P. (2004). Feynman–Kac Formulae: Genealogical and Interacting Particle
    Systems with Applications. Springer.
    Chopin, N. and Papaspiliopoulos, O. (2020). An Introduction to Sequential Monte Carlo.
    Springer.
"""

from __future__ import annotations

import abc
import numbers
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from langevin.smc import resampling
from langevin.smc._compile import BACKENDS, twin
from langevin.spec import check_noise

__all__ = [
    "FeynmanKac", "SMCResult", "GeneratorNoise", "StepsNoise", "smc", "draw_particle_noise",
]  # fmt: skip


class FeynmanKac(abc.ABC):
    """A Feynman–Kac model ``(M_0, log G_0; M_t, log G_t, t = 1..T)`` on one backend.

    Subclasses implement the population-level methods below; each receives and returns
    particles as a NamedTuple of arrays with leading axis N (NumPy arrays on Numba, JAX
    arrays on JAX). They may keep per-run state (the tempering model records its exponents).

    Attributes:
        backend: ``"numba"``, ``"jax"`` or ``"numpy"``: where the population step runs.
        T: the final time (the loop runs t = 0, …, T), or None when :meth:`done` decides.
    """

    backend: str = "numba"
    T: int | None = None

    def particle_noise(self, t: int) -> NamedTuple | None:
        """Per-particle noise of ``M_t`` (``M_0`` at t = 0): a NamedTuple of
        :class:`~langevin.kernels.base.Normal` / :class:`~langevin.kernels.base.Uniform`
        declarations (shapes per particle), or None."""
        return None

    @abc.abstractmethod
    def M0(self, n: int, noise: Any) -> NamedTuple:
        """``X_0^n ~ M_0`` for n < ``n``, from the declared noise (arrays of shape (n, ...))."""

    @abc.abstractmethod
    def M(self, t: int, particles: NamedTuple, log_weights: Any, noise: Any) -> NamedTuple:
        """``X_t^n ~ M_t(X_{t−1}^{A_n}, ·)``; ``particles`` are the resampled ``X_{t−1}^{A}``
        and ``log_weights`` their (possibly reset) log-weights."""

    @abc.abstractmethod
    def logG(self, t: int, previous: NamedTuple | None, particles: NamedTuple,
             log_weights: Any) -> Any:  # fmt: skip
        """``log G_t(X_{t−1}^{A_n}, X_t^n)`` for every n, shape (N,) (``previous`` is None
        at t = 0). ``log_weights`` are those the potentials multiply."""

    def done(self, t: int) -> bool:
        """Whether time ``t`` was the last one (default: ``t >= T``)."""
        if self.T is None:
            raise NotImplementedError("a model without T must define done()")
        return t >= self.T

    def progress_total(self) -> float:
        """The progress bar's total (default: T)."""
        return float(self.T or 0)

    def progress_position(self, t: int) -> float:
        """Where the progress bar stands after time ``t`` (default: t)."""
        return float(t)

    def population_ops(self, scheme: str) -> Any:
        """The compiled population step (``reweight``, ``step``, ``gather``) :func:`smc` runs:
        by default the backend's (:mod:`langevin.smc.resampling`); a model whose particles
        are split over devices returns global ones (:mod:`langevin.smc.sharded`)."""
        return _PopulationOps(self.backend, scheme)


class StepsNoise(NamedTuple):
    """A per-particle noise declaration for ``steps`` kernel steps: arrays
    ``(n, steps, *shape)`` per field of ``spec`` (a mutation by an MCMC kernel)."""

    spec: Any
    steps: int


def draw_particle_noise(spec, n: int, rng: np.random.Generator):
    """Arrays ``(n, *shape)`` for each declared field of ``spec`` (``(n, steps, *shape)`` for a
    :class:`StepsNoise`), field by field, each noise kind drawing itself (langevin.spec)."""
    if spec is None:
        return None
    lead = (n,)
    if isinstance(spec, StepsNoise):
        spec, lead = spec.spec, (n, spec.steps)
    check_noise(spec, "particle_noise")
    return type(spec)(*(d.draw_numpy_block(rng, lead) for d in spec))


class GeneratorNoise:
    """The default noise source: one ``numpy.random.Generator``, consumed in a fixed order
    (at each t ≥ 1 the resampling uniforms, then the particles' noise), so a seed gives the
    same draws whatever the backend."""

    def __init__(self, seed=None) -> None:
        if not isinstance(seed, (type(None), np.random.SeedSequence, np.random.Generator)) and (
            isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0
        ):
            raise TypeError(f"seed must be a non-negative int or None; got {seed!r}")
        self.rng = np.random.default_rng(seed)

    def uniforms(self, t: int, k: int) -> np.ndarray:
        return self.rng.random(k)

    def particles(self, t: int, spec: NamedTuple | None, n: int):
        return draw_particle_noise(spec, n, self.rng)


@dataclass
class SMCResult:
    """The output of :func:`smc`.

    Attributes:
        particles: the final particles ``X_T`` (NamedTuple of NumPy arrays, leading axis N).
        log_weights: their unnormalised log-weights ``log w_T``, shape (N,).
        log_evidence_increments: ``ℓ_t = log Σ_n W_{t−1}^n G_t^n``, t = 0..T.
        ess: effective sample size of the weights after reweighting at each t.
        resampled: whether resampling happened at the start of step t (False at t = 0).
        ancestors: the ancestor indices of each step t ≥ 1 (``keep_ancestors=True``).
        means: weighted means ``Σ W_t^n X_t^n`` of the particles' first field at each t
            (``collect_means=True``).
        elapsed: seconds in the loop.
    """

    particles: Any
    log_weights: np.ndarray
    log_evidence_increments: np.ndarray
    ess: np.ndarray
    resampled: np.ndarray
    n_particles: int
    scheme: str
    backend: str
    ancestors: list[np.ndarray] | None = None
    means: np.ndarray | None = None
    elapsed: float = 0.0
    extras: dict = field(default_factory=dict)

    @property
    def log_evidence(self) -> float:
        """``log L̂_T = Σ_t ℓ_t`` (``L̂_T`` is unbiased for ``L_T``)."""
        return float(np.sum(self.log_evidence_increments))

    @property
    def log_likelihood(self) -> float:
        """For a particle filter: the log-likelihood estimate (same as ``log_evidence``)."""
        return self.log_evidence

    @property
    def weights(self) -> np.ndarray:
        """Normalised final weights ``W_T``."""
        lw = self.log_weights
        w = np.exp(lw - np.max(lw))
        return w / w.sum()

    @property
    def n_steps(self) -> int:
        return len(self.ess)


class _PopulationOps:
    """The compiled population step of one backend and scheme."""

    def __init__(self, backend: str, scheme: str):
        self.step = resampling.population_step(scheme, backend)
        self.reweight = twin(resampling.reweight, backend, jit=True)
        self.gather = twin(resampling.gather, backend, jit=True)


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _check_threshold(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"ess_threshold must be a number in [0, 1]; got {value!r}")
    return float(value)


def _numpy(a) -> np.ndarray:
    """``a`` as a NumPy array, whole: a JAX array split over the devices of several processes
    (``jax.distributed``) is gathered from all of them first."""
    if isinstance(a, np.ndarray):
        return a
    if not getattr(a, "is_fully_addressable", True):
        from langevin.backends.jax_backend import to_host

        return to_host(a)
    return np.asarray(a)


def _host(tree):
    """A (nested) NamedTuple of arrays as NumPy arrays."""
    return type(tree)(*(_host(a) if isinstance(a, tuple) else _numpy(a) for a in tree))


def _first_leaf(tree):
    """The first array of a (nested) NamedTuple: the particles' positions by convention."""
    while isinstance(tree, tuple):
        tree = tree[0]
    return tree


def smc(
    model: FeynmanKac,
    n_particles: int,
    *,
    scheme: str = "systematic",
    ess_threshold: float = 0.5,
    seed: int | None = None,
    noise: Any = None,
    max_steps: int = 100_000,
    keep_ancestors: bool = False,
    collect_means: bool = False,
    progress: bool = False,
    progress_label: str = "SMC",
) -> SMCResult:
    """Run the generic SMC algorithm on a Feynman–Kac model (see the module docstring).

    Args:
        model: a :class:`FeynmanKac` (its ``backend`` says where everything runs).
        n_particles: N >= 1.
        scheme: resampling scheme (:data:`langevin.smc.resampling.SCHEMES`).
        ess_threshold: resample when ``ESS < ess_threshold · N`` (0: never, 1: always
            unless the weights are exactly equal).
        seed: seed of the default noise source (:class:`GeneratorNoise`).
        noise: a noise source (``uniforms(t, k)``, ``particles(t, spec, n)``) instead.
        max_steps: refuse to run longer than this (guards models whose ``done`` never holds).
        keep_ancestors: keep every step's ancestor indices.
        collect_means: record the weighted mean of the particles' first field at each t.
        progress: show a tqdm progress bar.

    Returns:
        An :class:`SMCResult`.

    Raises:
        RuntimeError: every particle has weight zero (or a NaN weight) at some step.
    """
    if not isinstance(model, FeynmanKac):
        raise TypeError(f"model must be a FeynmanKac model; got {type(model).__name__}")
    if model.backend not in BACKENDS:
        raise ValueError(f"model.backend must be one of {BACKENDS}; got {model.backend!r}")
    n = _check_positive_int("n_particles", n_particles)
    resampling._check_scheme(scheme)
    threshold = _check_threshold(ess_threshold)
    max_steps = _check_positive_int("max_steps", max_steps)
    source = noise if noise is not None else GeneratorNoise(seed)
    ops = model.population_ops(scheme)
    k = resampling.uniforms_needed(scheme, n)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=model.progress_total(), desc=progress_label, leave=True,
                   dynamic_ncols=True)  # fmt: skip
    t_start = time.perf_counter()
    increments, ess_hist, resampled_hist, ancestors, means = [], [], [], [], []

    def record(t, particles, lw, inc, ess_value, resampled):
        inc = float(inc)
        if not np.isfinite(inc):
            raise RuntimeError(
                f"SMC step {t}: every particle has weight zero or a NaN log-weight "
                f"(log-evidence increment {inc}); the potentials log G_{t} are -inf/NaN on "
                "the whole population"
            )
        increments.append(inc)
        ess_hist.append(float(ess_value))
        resampled_hist.append(bool(resampled))
        if collect_means:
            x = _numpy(_first_leaf(particles))
            w = _numpy(lw)
            w = np.exp(w - np.max(w))
            means.append((w / w.sum()) @ x.reshape(n, -1))

    try:
        particles = model.M0(n, source.particles(0, model.particle_noise(0), n))
        lw0 = _zeros_like_first(particles, model.backend, n)
        log_g = nan_potentials_to_zero_weight(0, model.logG(0, None, particles, lw0), particles)
        lw, inc, ess_value = ops.reweight(lw0, log_g)
        record(0, particles, lw, inc, ess_value, False)
        t = 0
        if bar is not None:
            bar.update(model.progress_position(0) - bar.n)
        while not model.done(t):
            t += 1
            if t > max_steps:
                raise RuntimeError(f"SMC: the model did not finish within max_steps={max_steps}")
            uniforms = source.uniforms(t, k)
            anc, lw_reset, _, resampled = ops.step(lw, uniforms, threshold)
            resampled = bool(resampled)
            previous = ops.gather(particles, anc) if resampled else particles
            if keep_ancestors:
                ancestors.append(_numpy(anc))
            new = model.M(t, previous, lw_reset, source.particles(t, model.particle_noise(t), n))
            log_g = nan_potentials_to_zero_weight(t, model.logG(t, previous, new, lw_reset), new)
            lw, inc, ess_value = ops.reweight(lw_reset, log_g)
            particles = new
            record(t, particles, lw, inc, ess_value, resampled)
            if bar is not None:
                bar.update(model.progress_position(t) - bar.n)
    finally:
        if bar is not None:
            bar.close()
    return SMCResult(
        particles=_host(particles),
        log_weights=_numpy(lw),
        log_evidence_increments=np.asarray(increments),
        ess=np.asarray(ess_hist),
        resampled=np.asarray(resampled_hist, dtype=bool),
        n_particles=n,
        scheme=scheme,
        backend=model.backend,
        ancestors=ancestors if keep_ancestors else None,
        means=np.asarray(means) if collect_means else None,
        elapsed=time.perf_counter() - t_start,
    )


class NaNWeightWarning(UserWarning):
    """Some particles had a NaN log-potential (log-likelihood, tempering increment) and were
    given weight zero."""


def nan_potentials_to_zero_weight(t: int, log_g, particles, what: str = "log G_t"):
    """Particles whose log-potential is NaN get weight zero (log G = −inf), with a warning
    naming how many and where: a NaN is a failure of the model's code at those particles,
    which the estimate must not hide."""
    values = _numpy(log_g)
    bad = np.flatnonzero(np.isnan(values))
    if bad.size == 0:
        return log_g
    x = _numpy(_first_leaf(particles)).reshape(values.shape[0], -1)
    shown = ", ".join(f"{i} at {np.array2string(x[i], precision=4, threshold=6)}" for i in bad[:3])
    warnings.warn(
        f"SMC step {t}: {bad.size} of {values.shape[0]} particles have a NaN log-potential "
        f"({what}), so they were given weight zero; particle(s) {shown}"
        f"{' …' if bad.size > 3 else ''}. Check the model's code where these particles are.",
        NaNWeightWarning,
        stacklevel=4,
    )
    if isinstance(log_g, np.ndarray):
        return np.where(np.isnan(log_g), -np.inf, log_g)
    import jax.numpy as jnp

    return jnp.where(jnp.isnan(log_g), -jnp.inf, log_g)


def _zeros_like_first(particles, backend: str, n: int):
    first = _first_leaf(particles)
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.zeros(n, dtype=first.dtype)
    return np.zeros(n, dtype=np.float64)
