"""Feynman–Kac correctors: SMC-weighted annealed, product and guided diffusion sampling.

A *forward noising* SDE turns data into noise,

    dx = f_t(x) dt + g_t dW_t,        t ∈ [0, T],

with marginals ``q_t`` (one per pretrained model ``i``: ``q_t^i``, scores
``s_i(x, t) = ∇log q_t^i(x)``). Reversing it in time samples ``q_0``. Feynman–Kac correctors
(Skreta, Akhound-Sadegh, Ohanesian, …, Neklyudov 2025) sample instead the *composed* family

    p_t ∝ Π_i (q_t^i)^{β_i},      S = Σ_i β_i s_i = ∇log p_t,      B = Σ_i β_i,

(annealing ``q^β``: one model; product of experts ``q¹ q²``: β = (1, 1); classifier-free
guidance, a geometric mixture ``(q¹)^{1−w} (q²)^w``: β = (1 − w, w)), whose score is known but
whose reverse SDE is not: the marginals of ``p_t`` are not those of any diffusion with that
score. They simulate in reverse time ``τ = T − t`` the SDE and the log-weight

    dx     = [ −f_t(x) + ((1 + c)/2) g_t² S(x) ] dτ + √c g_t dW̄_τ
    d log w = [ (B − 1) ∇·f_t(x) + (g_t²/2) (‖S‖² − Σ_i β_i ‖s_i‖²) ] dτ

for any noise scale ``c > 0``: the weighted particles ``Σ_n w_n δ_{x_n}`` then represent
``p_{T−τ}`` at every τ (ALGORITHMS.md §7c; derivation: with the Fokker–Planck equation of the
x-SDE, ``G = ∂_τ log p + ∇·u + u·S − (c g²/2)(∇·S + ‖S‖²)`` is the rate at which log-weights
must grow for ``ρ w ∝ p``; substituting ``∂_τ log q^i`` from the forward Fokker–Planck
equation, every ``f·S`` and ``∇·S`` term cancels). The weights do not depend on ``c``; the
special cases of the paper are

* annealing, c = 1: drift ``−f + β g² s``, ``d log w = [(β − 1)∇·f + (g²/2) β(β − 1)‖s‖²] dτ``;
* product of two experts, c = 1: drift ``−f + g²(s₁ + s₂)``, ``d log w = [∇·f + g²⟨s₁, s₂⟩] dτ``;
* guidance (1 − w, w): ``d log w = −(g²/2) w(1 − w) ‖s₁ − s₂‖² dτ`` (positive for w > 1).

**Noise scale.** Use the default ``c = 1``. The paper's "tempered noise" ``c = 1/β`` for
annealing is consistent in continuous time but, with finitely many particles, clearly
biased: at β = 3 on a Gaussian (1-D OU, 3000 steps, N = 2·10⁵) the variance came out 0.084
for an exact 0.163, also with 20 000 steps; a linear analysis of the Gaussian case shows
the weighted dynamics is stable around the target only when ``β(1 − c) < 2``
(ALGORITHMS.md §7c, checked numerically).

**Discretisation.** One Euler–Maruyama step of size ``h`` of the pair ``(x, log w)``: the
scores, drift and log-weight rate are evaluated at the current point ``(x_k, t_k)``, so the
scores are evaluated once per particle and step. Particles start at ``N(0, I/B)`` at t = T
(``p_T ∝ Π N(0, I)^{β_i}`` when ``q_T ≈ N(0, I)``, the standard-normal prior), with weight
1. Between steps the population is resampled (any scheme of
:data:`langevin.smc.resampling.SCHEMES`, systematic by default) at every step, or when the
effective sample size falls below a threshold, and the log-weights are reset to zero: the
generic SMC loop :func:`langevin.smc.smc` runs it, with the model :class:`FKCorrector`
(``M_t`` the Euler step, ``log G_t`` the log-weight increment). The error is O(h) in the
step and O(N^{-1/2}) in the particles; without resampling the weights degenerate (at
N = 2·10⁵ on a 1-D Gaussian, ALGORITHMS.md §7c).

**Variance.** The weights move mass toward regions the drift under-serves, often the far
tails of the current population, so the particles are far from independent: on the 1-D
Gaussian cases of the tests (N = 20 000, 100 steps, resampling every step) the one-run
standard deviation of the mean is about 6× the i.i.d. ``σ/√N`` for annealing at β = 3 and
4× for a product; on a 2-D product of two mixtures whose experts disagree, about 1 run in
10 at N = 20 000 (1 in 28 at N = 50 000) misplaced ~10% of the mass between the product's
components. Use many particles, and check the spread over a few seeds.

**Forward process and scores** (:mod:`langevin.smc.diffusion`): the forward SDE is a
:class:`~langevin.smc.diffusion.VPProcess`, whose ``∇·f`` does not depend on x (the
``(B − 1)∇·f`` term changes the evidence, not the normalised weights); the scores are
:class:`~langevin.smc.diffusion.Score` objects, user functions in a JAX and/or a Numba form.
A Gaussian-mixture data law has exact ones and exact samples of the composed laws
(:class:`~langevin.targets.gaussian_mixture_diffusion.GaussianMixture`).

References:
    Skreta, M., Akhound-Sadegh, T., Ohanesian, V., Bondesan, R., Aspuru-Guzik, A., Doucet,
    A., Brekelmans, R., Tong, A. and Neklyudov, K. (2025). Feynman–Kac correctors in
    diffusion: annealing, guidance, and product of experts. ICML 2025 (PMLR 267);
    arXiv:2503.02819.
    Del Moral, P. (2004). Feynman–Kac Formulae. Springer.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import numba
import numpy as np
from numba import types as nt
from numba.extending import overload

from langevin.backends.base import get_backend
from langevin.backends.portable import bind_globals, portable
from langevin.kernels.base import Normal, Vector
from langevin.smc import resampling
from langevin.smc.diffusion import Score, VPProcess, _check_real
from langevin.smc.feynman_kac import (
    FeynmanKac,
    SMCResult,
    _check_positive_int,
    _check_threshold,
    smc,
)
from langevin.targets.capabilities import TargetForm

__all__ = [
    "FKCorrector",
    "fkc_sample",
    "fkc_anneal",
    "fkc_product",
    "fkc_guidance",
    "equally_weighted",
]

xp: Any = None  # bound by each backend (see langevin.backends.portable)

_BACKENDS = ("numba", "jax")


def _combined_score_py(scores, betas, x, t):
    """``(S, ‖S‖², Σ_i β_i ‖s_i‖²)`` with ``S = Σ_i β_i s_i``; JAX/NumPy: scores are callables."""
    total = 0.0 * x
    weighted_sq = 0.0
    for i, fn in enumerate(scores):
        s = fn(x, t)
        total = total + betas[i] * s
        weighted_sq = weighted_sq + betas[i] * (s * s).sum()
    return total, (total * total).sum(), weighted_sq


def _combined_score_numba(scores, betas, x, t):
    """The Numba twin of :func:`_combined_score_py`: ``scores`` is a tuple of entries
    ``(fn,)`` or ``(fn, data)`` of first-class functions. Compiled code uses the overload
    below; this Python body serves the NumPy twin (the engine reads output shapes with it)."""
    return _combined_score_py(tuple(
        (lambda x, t, e=e: e[0](x, t, *e[1:])) for e in scores), betas, x, t)  # fmt: skip


@numba.njit(cache=True)
def _sq_norm(v):
    total = 0.0
    for j in range(v.shape[0]):
        total += v[j] * v[j]
    return total


@overload(_combined_score_numba)
def _combined_score_overload(scores, betas, x, t):
    if not isinstance(scores, nt.BaseTuple):
        return None
    lines = ["def impl(scores, betas, x, t):"]
    for i, entry in enumerate(scores):
        call = (
            f"scores[{i}][0](x, t)" if len(entry) == 1 else f"scores[{i}][0](x, t, scores[{i}][1])"
        )
        lines.append(f"    s{i} = {call}")
    k = len(scores)
    lines.append("    total = " + " + ".join(f"betas[{i}] * s{i}" for i in range(k)))
    lines.append("    sq = " + " + ".join(f"betas[{i}] * sq_norm(s{i})" for i in range(k)))
    lines.append("    return total, sq_norm(total), sq")
    scope = {"sq_norm": _sq_norm}
    exec("\n".join(lines) + "\n", scope)  # one tiny impl per tuple of score forms
    return scope["impl"]


_combined_score: Any = _combined_score_py  # the backends bind their own (twin overrides)


# -- one Euler–Maruyama step of (x, log w), per particle (portable) --------------------------------
@portable
def fkc_move(x, normal, coeffs, betas, scores):
    """One Euler–Maruyama step of the weighted reverse SDE from ``(x, t)`` (module docstring).

    ``coeffs = (t, h, a, g², c, B)`` with ``a = ∂_t log α_t`` (so ``f_t(x) = a x``) and
    ``g² = g_t²``, one row per step. Returns ``(x', Δ log w)``:
    ``x' = x + h [−a x + ((1 + c)/2) g² S] + √(c g² h) ξ`` and
    ``Δ log w = h [(B − 1) d a + (g²/2)(‖S‖² − Σ β_i ‖s_i‖²)]``, all at ``(x, t)``.
    """
    t = coeffs[0]
    h = coeffs[1]
    a = coeffs[2]
    g2 = coeffs[3]
    c = coeffs[4]
    total_beta = coeffs[5]
    total, total_sq, weighted_sq = _combined_score(scores, betas, x, t)
    # one expression: Numba fuses it into a single loop and allocation
    new_x = x + h * (0.5 * (1.0 + c) * g2 * total - a * x) + xp.sqrt(c * g2 * h) * normal
    rate = (total_beta - 1.0) * a * x.shape[0] + 0.5 * g2 * (total_sq - weighted_sq)
    return new_x, h * rate


# The population step runs through the backend engine's map: `fkc_move` bound to each
# backend's combined score (an overload on Numba, Python over callables on JAX), and the scores
# as a target form (first-class functions with their Numba type; JAX callables, static).
_MOVES: dict = {}


def _move_for(backend: str):
    if backend not in _MOVES:
        combined = _combined_score_numba if backend == "numba" else _combined_score_py
        _MOVES[backend] = bind_globals(fkc_move, _combined_score=combined)
    return _MOVES[backend]


def _scores_form(scores, backend: str) -> TargetForm:
    """The scores tuple as a :class:`TargetForm` (``build`` returns it; no runtime data)."""
    if backend == "numba":
        entries, types_ = zip(*(s._numba_entry() for s in scores))
        value = tuple(entries)
        numba_type = nt.Tuple(tuple(types_))
        return TargetForm(key=("scores", numba_type), data=None, build=lambda _: value,
                          numba_type=numba_type, capabilities=frozenset())  # fmt: skip
    fns = tuple(s.jax_fn for s in scores)
    return TargetForm(key=("scores", fns), data=None, build=lambda _: fns, numba_type=None,
                      capabilities=frozenset())  # fmt: skip


# -- the Feynman–Kac model -------------------------------------------------------------------------
class FKCParticles(NamedTuple):
    """Particles of the corrector: positions ``(N, d)`` and the log-weight increment of the
    step that produced them ``(N,)`` (kept with the particle so a resampling gathers it)."""

    x: Any
    log_g: Any


class FKCNoise(NamedTuple):
    """d standard normals per particle per step."""

    normal: Vector


def _check_scores_betas(scores, betas) -> tuple[tuple, np.ndarray]:
    if isinstance(scores, Score):
        scores = (scores,)
    if not isinstance(scores, Sequence) or len(scores) == 0:
        raise TypeError(f"scores must be a non-empty sequence of Score; got {scores!r}")
    for i, s in enumerate(scores):
        if not isinstance(s, Score):
            raise TypeError(
                f"scores[{i}] must be a langevin.smc.Score (Score.from_jax, "
                f"Score.from_numba or GaussianMixture.score); got {type(s).__name__}"
            )
    if isinstance(betas, numbers.Real) and not isinstance(betas, bool):
        betas = (betas,)
    try:
        b = np.asarray(betas, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"betas must be a sequence of real numbers; got {betas!r}") from None
    if b.shape[0] != len(scores):
        raise ValueError(
            f"betas must have one exponent per score: {len(scores)} scores, {b.shape[0]} betas"
        )
    if not np.all(np.isfinite(b)):
        raise ValueError(f"betas must be finite; got {b}")
    if not b.sum() > 0:
        raise ValueError(
            f"betas must have a positive sum B = Σβ_i (the particles start at N(0, I/B)); "
            f"got B = {b.sum()!r}"
        )
    return tuple(scores), b


class FKCorrector(FeynmanKac):
    """The Feynman–Kac model of the corrector, run by :func:`langevin.smc.smc`.

    ``M_0``: ``x ~ N(0, I/B)`` at t = T. ``M_k``: one Euler–Maruyama step of the weighted
    reverse SDE from ``t_{k−1}`` to ``t_k`` (uniform grid from T to ``t_min``, ``n_steps``
    steps); ``log G_k``: its log-weight increment (0 with ``correct=False``, which is plain
    annealed Langevin with the same drift and no weights). See the module docstring.

    Args:
        scores, betas: the models and their exponents (``p ∝ Π (q^i)^{β_i}``).
        dim: the dimension d.
        process: the forward :class:`VPProcess`.
        n_steps: number of Euler steps K.
        noise_scale: c > 0 (default 1).
        t_min: the time the reverse simulation stops at (0: the data).
        correct: accumulate the weights (False: no weights, for comparison only).
        backend: ``"numba"`` (float64) or ``"jax"``.
        dtype: JAX: the float dtype (None: JAX's default float).
    """

    def __init__(
        self,
        scores: Sequence[Score],
        betas: Sequence[float],
        *,
        dim: int,
        process: VPProcess | None = None,
        n_steps: int = 500,
        noise_scale: float = 1.0,
        t_min: float = 0.0,
        correct: bool = True,
        backend: str = "numba",
        dtype: Any = None,
    ) -> None:
        scores, betas = _check_scores_betas(scores, betas)
        self.dim = _check_positive_int("dim", dim)
        self.process = VPProcess() if process is None else process
        if not isinstance(self.process, VPProcess):
            raise TypeError(f"process must be a VPProcess; got {type(self.process).__name__}")
        self.T = _check_positive_int("n_steps", n_steps)
        c = _check_real("noise_scale", noise_scale, positive=True)
        t_min = _check_real("t_min", t_min, nonnegative=True)
        if not t_min < self.process.T:
            raise ValueError(f"t_min must be below the process's T = {self.process.T}; got {t_min}")
        if backend not in _BACKENDS:
            raise ValueError(
                f"backend must be one of {_BACKENDS}; got {backend!r} (the corrector's scores "
                "are user functions in a Numba or a JAX form)"
            )
        form = "has_numba" if backend == "numba" else "has_jax"
        for i, s in enumerate(scores):
            if not getattr(s, form):
                other = "Score.from_numba" if backend == "numba" else "Score.from_jax"
                raise ValueError(
                    f"scores[{i}] ({s.name!r}) has no {backend} form: build it with {other}, "
                    f"or run with the backend it has"
                )
        if backend == "numba" and dtype is not None and np.dtype(dtype) != np.float64:
            raise TypeError(f"backend='numba' runs in float64; got dtype={np.dtype(dtype)}")
        self.scores = scores
        self.betas = betas
        self.noise_scale = c
        self.t_min = t_min
        self.correct = bool(correct)
        self.backend = backend
        self.total_beta = float(betas.sum())

        # the grid t_0 = T > t_1 > … > t_K = t_min and every step's coefficients
        self.times = np.linspace(self.process.T, t_min, self.T + 1)
        t = self.times[:-1]
        h = self.times[:-1] - self.times[1:]
        rate = self.process.rate(t)
        self.coefficients = np.ascontiguousarray(
            np.stack(
                [t, h, -0.5 * rate, rate, np.full_like(t, c), np.full_like(t, self.total_beta)],
                axis=1,
            )
        )
        self._map = get_backend(backend).map_members
        self._move = _move_for(backend)
        self._scores = _scores_form(scores, backend)
        if backend == "numba":
            self.dtype = np.dtype(np.float64)
            self._betas, self._coefficients = self.betas, self.coefficients
        else:
            import jax.numpy as jnp

            self.dtype = np.dtype(jnp.zeros(()).dtype if dtype is None else dtype)
            self._betas = jnp.asarray(betas, self.dtype)
            self._coefficients = jnp.asarray(self.coefficients, self.dtype)

    def particle_noise(self, t: int) -> FKCNoise:
        return FKCNoise(Normal((self.dim,)))

    def M0(self, n: int, noise: FKCNoise) -> FKCParticles:
        scale = 1.0 / math.sqrt(self.total_beta)
        if self.backend == "jax":
            import jax.numpy as jnp

            x = jnp.asarray(noise.normal, self.dtype) * scale
            return FKCParticles(x, jnp.zeros(n, self.dtype))
        return FKCParticles(np.ascontiguousarray(noise.normal * scale), np.zeros(n))

    def M(self, t: int, particles: FKCParticles, log_weights, noise: FKCNoise) -> FKCParticles:
        normals = noise.normal
        if self.backend == "jax":
            import jax.numpy as jnp

            normals = jnp.asarray(normals, self.dtype)
        x, log_g = self._map(
            self._move,
            (particles.x, normals, self._coefficients[t - 1], self._betas, self._scores),
            (0, 0, None, None, None),
        )
        return FKCParticles(x, log_g)

    def logG(self, t: int, previous, particles: FKCParticles, log_weights):
        if previous is None or not self.correct:
            return 0.0 * particles.log_g
        return particles.log_g


# -- the entry points ------------------------------------------------------------------------------
def fkc_sample(
    scores: Sequence[Score] | Score,
    betas: Sequence[float] | float,
    n_particles: int = 1000,
    *,
    dim: int,
    process: VPProcess | None = None,
    n_steps: int = 500,
    noise_scale: float = 1.0,
    t_min: float = 0.0,
    scheme: str = "systematic",
    ess_threshold: float = 1.0,
    correct: bool = True,
    backend: str = "numba",
    seed: int | None = None,
    noise: Any = None,
    dtype: Any = None,
    progress: bool = False,
) -> SMCResult:
    """Sample ``p ∝ Π_i (q_{t_min}^i)^{β_i}`` with the Feynman–Kac corrector (module docstring).

    Args:
        scores: one :class:`Score` per model (``s_i(x, t) = ∇log q_t^i(x)``).
        betas: the exponents ``β_i`` (one per score; ``B = Σβ_i > 0``).
        n_particles: N.
        dim: the dimension d of x.
        process: the forward :class:`VPProcess` the scores belong to (default ``VPProcess()``).
        n_steps: number of reverse-time Euler–Maruyama steps (the error is O(1/n_steps)).
        noise_scale: c > 0; keep the default 1 (``c = 1/β`` is biased, module docstring).
        t_min: stop the reverse simulation at this time (0: the data law).
        scheme: resampling scheme (:data:`langevin.smc.resampling.SCHEMES`).
        ess_threshold: resample when ``ESS < ess_threshold · N``; the default 1 resamples at
            every step (as in the paper), 0 never.
        correct: False drops the weights (plain annealed Langevin with the same drift; biased,
            for comparison).
        backend: ``"numba"`` or ``"jax"`` (the scores must have that form).
        seed: seed of the noise (resampling uniforms and d normals per particle per step,
            drawn in a fixed order: the same seed gives the same run on both backends, to
            rounding); ``noise``: a noise source instead (see :func:`langevin.smc.smc`).
        dtype: JAX: the float dtype (default: JAX's default float).
        progress: show a progress bar.

    Returns:
        An :class:`~langevin.smc.SMCResult`: weighted final particles ``particles.x`` (N, d)
        with ``log_weights`` (use :func:`equally_weighted` for an unweighted sample), the ESS
        after each step's reweighting and the resampling history; ``extras`` holds ``times``
        (the grid), ``betas``, ``noise_scale`` and ``correct``. ``log_evidence`` estimates
        ``log ∫ Π_i q_{t_min}^i(x)^{β_i} dx − log ∫ Π_i q_T^i(x)^{β_i} dx`` as h → 0 (the
        weights keep their x-independent terms), but its O(h) discretisation error is large
        in practice (0.75 in one run at 200 steps, β = 3, 1-D Gaussian): not validated.

    Example:
        >>> from langevin.smc import GaussianMixture
        >>> data = GaussianMixture([0.7, 0.3], [[-1.0], [2.0]], [[[0.3]], [[0.3]]])
        >>> result = fkc_anneal(data.score(), 2.0, 500, dim=1, n_steps=100, seed=0)
        >>> x = equally_weighted(result, seed=1)
        >>> x.shape
        (500, 1)
    """
    # everything smc() would check, checked before the model compiles anything
    _check_positive_int("n_particles", n_particles)
    resampling._check_scheme(scheme)
    _check_threshold(ess_threshold)
    model = FKCorrector(
        scores, betas, dim=dim, process=process, n_steps=n_steps, noise_scale=noise_scale,
        t_min=t_min, correct=correct, backend=backend, dtype=dtype,
    )  # fmt: skip
    result = smc(model, n_particles, scheme=scheme, ess_threshold=ess_threshold, seed=seed,
                 noise=noise, progress=progress, progress_label="FK corrector")  # fmt: skip
    result.extras.update(
        times=model.times, betas=model.betas, noise_scale=model.noise_scale, correct=model.correct
    )
    return result


def fkc_anneal(score: Score, beta: float, n_particles: int = 1000, **kwargs) -> SMCResult:
    """Annealing: sample ``q^β / Z`` from one model's score (``fkc_sample(score, beta)``).

    β > 1 sharpens the law (a lower temperature), β < 1 flattens it. Keyword arguments as
    :func:`fkc_sample`.
    """
    return fkc_sample((score,), (beta,), n_particles, **kwargs)


def fkc_product(scores: Sequence[Score], n_particles: int = 1000, **kwargs) -> SMCResult:
    """Product of experts: sample ``Π_i q^i / Z`` (every β_i = 1). Keyword arguments as
    :func:`fkc_sample`."""
    n_models = len(scores) if isinstance(scores, Sequence) else 1
    return fkc_sample(scores, np.ones(n_models), n_particles, **kwargs)


def fkc_guidance(
    unconditional: Score, conditional: Score, w: float, n_particles: int = 1000, **kwargs
) -> SMCResult:
    """Classifier-free guidance: sample ``q_u^{1−w} q_c^w / Z`` (β = (1 − w, w), B = 1).

    ``w > 1`` extrapolates away from the unconditional model (the usual guidance). The
    weighted SDE corrects the plain CFG sampler, whose drift has the right score but whose
    law is not the geometric mixture. Keyword arguments as :func:`fkc_sample`.
    """
    w = _check_real("w", w)
    return fkc_sample((unconditional, conditional), (1.0 - w, w), n_particles, **kwargs)


def equally_weighted(
    result: SMCResult, *, scheme: str = "systematic", seed: int | None = None
) -> np.ndarray:
    """The final particles resampled once by their weights: an (N, d) equally weighted sample.

    With ``ess_threshold = 1`` the last step's weights are still attached to the particles;
    this applies them (``scheme`` from :data:`langevin.smc.resampling.SCHEMES`).
    """
    if not isinstance(result, SMCResult):
        raise TypeError(f"result must be an SMCResult; got {type(result).__name__}")
    x = np.asarray(result.particles[0])
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    u = rng.random(resampling.uniforms_needed(scheme, n))
    ancestors = resampling.resample(scheme, result.log_weights, u, log=True)
    return x[ancestors]
