"""Discrete-time path samplers with Gaussian transitions: the weights, the Feynman–Kac model,
the estimators and the JAX training shared by CMCD (:mod:`langevin.diffusion.cmcd`) and the
learned-diffusion samplers (:mod:`langevin.diffusion.learned`).

**The estimator.** A path sampler draws ``x_0 ~ q_0`` and moves it by K Gaussian *forward*
kernels ``F_k(x_k | x_{k−1}) = N(m_k^F(x_{k−1}), s_k^F I)``. Pick any *backward* kernels
``B_k(x_{k−1} | x_k) = N(m_k^B(x_k), s_k^B I)``. For an unnormalised target γ with
``Z = ∫ γ``, the importance weight of the whole path,

    log w = log γ(x_K) − log q_0(x_0)
            + Σ_{k=1}^K [ log B_k(x_{k−1} | x_k) − log F_k(x_k | x_{k−1}) ],

satisfies ``E[w] = Z`` **exactly**, whatever the drifts (controls), step sizes and
discretisation: ``γ(x_K) Π_k B_k`` is γ times a normalised density of ``x_{0:K−1}`` given
``x_K``, so integrating ``w`` against the forward path law gives ∫γ (Del Moral, Doucet &
Jasra 2006; Vargas, Padhy, Blessing & Nüsken 2024). Jensen gives the ELBO
``E[log w] ≤ log Z``, with equality iff the forward path law equals the normalised
backward one (then ``w ≡ Z``). Over S paths the estimators are

    ELBO = mean_s log w_s,          log Ẑ = logsumexp_s log w_s − log S,

the second with ``E[Ẑ] = Z`` (and ``E[log Ẑ] ≤ log Z``, with a bias that vanishes as S grows).

**Feynman–Kac form, resampling.** With intermediate unnormalised densities
``π̃_k`` (``π̃_0 = q_0``; CMCD's annealing path ``π̃_k = q_0^{1−β_k} γ^{β_k}``; 1 where a sampler
has none) the weight factorises into increments

    log G_k = log π̃_k(x_k) − log π̃_{k−1}(x_{k−1}) + log B_k(x_{k−1} | x_k) − log F_k(x_k | x_{k−1})
              (+ log γ(x_K) − log π̃_K(x_K) at k = K),

which telescope to ``log w``. The particles are then the Feynman–Kac model
``(M_0 = q_0, M_k = F_k, G_k)`` of ALGORITHMS.md §7a and run through the one SMC loop,
:func:`langevin.smc.smc`: without resampling (``ess_threshold=0``) it is plain importance
sampling of paths, the SMC loop's evidence is exactly ``log Ẑ`` above; with ESS-triggered
resampling it is an SMC sampler with forward kernels ``F_k`` and backward kernels ``B_k``
(Del Moral, Doucet & Jasra 2006), whose ``Ẑ`` is still unbiased (the CRAFT-like variant of
CMCD; Matthews, Arbel, Rezende & Doucet 2022). Resampling, the ESS and the evidence are
``langevin.smc``'s; a sampler here only gives the per-particle moves.

**Per-particle math, written once.** A sampler supplies portable functions (compiled for
Numba and JAX from the same source, :mod:`langevin.backends.portable`):

* ``start_position(normal, params) -> x_0`` and ``start_log_g(x_0, logp_0, row, params)``,
* ``propose(x, logp, grad, normal, row, params) -> x'`` (one forward step; reads ``row``, the
  step's coefficients, and the control's weights ``params``),
* ``increment(x, logp, grad, x', logp', grad', row, params) -> log G_k``, computed from the
  *positions* (not from the noise), so that the same function weighs a path that some other
  law simulated: off-policy training.

``logp`` and ``grad`` are ``log γ`` and ``∇log γ`` at the particle (one target evaluation
per particle and step; they are carried with the particle). A particle is
:class:`PathParticles`. Time is the step index k: its coefficients (``β_k``, ``ε_k``,
``t_k``) are row ``k − 1`` of the sampler's coefficient table.

**Training (JAX, optax).** The same portable functions, twinned for JAX, run a batch of
paths in a ``lax.scan``; the per-path ``log w`` gives the losses of
:func:`path_log_weights`:

* ``"kl"``: ``−ELBO = KL(forward ‖ backward) − log Z``, with reparameterised gradients
  through the simulated path (Vargas et al. 2024, ``compute_bound``);
* ``"logvar"``: ``Var_s(log w_s)`` over the batch on paths simulated with the *detached*
  control (gradients only through the densities of a fixed path), the log-variance loss of
  Richter & Berner (2024) (ALGORITHMS.md §9b): it is zero iff the forward and backward path
  laws agree up to the constant, for *any* simulating law, so it may be evaluated
  off-policy; ``exploration > 0`` simulates with the forward noise scaled by
  ``1 + exploration``.

A sampler's :meth:`PathSampler.train_mask` says which leaves are trained (CMCD's
``learn=``); the others get zero gradients. The trained parameters are a pytree (nested
NamedTuples of arrays), as every kernel's params: the Numba backend needs only the forward
pass of the network (:func:`control_apply`).

References:
    Del Moral, P., Doucet, A. and Jasra, A. (2006). Sequential Monte Carlo samplers.
    JRSS B 68(3), 411–436.
    Vargas, F., Padhy, S., Blessing, D. and Nüsken, N. (2024). Transport meets variational
    inference: controlled Monte Carlo diffusions. ICLR 2024, arXiv:2307.01050.
    Richter, L. and Berner, J. (2024). Improved sampling via learned diffusions. ICLR 2024,
    arXiv:2307.01198.
    Matthews, A. G. D. G., Arbel, M., Rezende, D. J. and Doucet, A. (2022). Continual
    repeated annealed flow transport Monte Carlo. ICML 2022.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from langevin.backends.portable import portable
from langevin.kernels.base import Normal, Vector
from langevin.smc.feynman_kac import (
    FeynmanKac,
    GeneratorNoise,
    SMCResult,
    _check_threshold,
    smc,
)
from langevin.smc.resampling import _check_scheme

__all__ = [
    "ControlNet", "PathParticles", "PathNoise", "PathResult", "PathSampler", "TrainResult",
    "beta_schedule", "learned_betas", "step_schedule", "control_apply", "init_control", "silu",
    "diag_gaussian_logpdf", "LOSSES",
]  # fmt: skip

xp: Any = None  # bound by each backend

LOG_2PI = math.log(2.0 * math.pi)
LOSSES = ("kl", "logvar")


# -- schedules (ALGORITHMS.md §9a) -------------------------------------------------------------
def beta_schedule(n_steps: int) -> np.ndarray:
    """CMCD's default annealing grid ``β_k = k/(K + 1)``, k = 1..K (uniform ``mgridref``):
    the bridge never reaches β = 1; the target enters through the final ``log γ(x_K)``
    (ALGORITHMS.md §9a, replicated so that numbers compare)."""
    k = np.arange(1, n_steps + 1, dtype=np.float64)
    return k / (n_steps + 1.0)


def learned_betas(logits: Any, np_or_jnp: Any = np) -> Any:
    """The learnable annealing grid: for logits ``u_1..u_{K+1}`` (shape (K + 1,)),

        β_k = Σ_{j≤k} e^{u_j} / Σ_{j=1}^{K+1} e^{u_j},      k = 1..K,

    the normalised cumulative sum of positive increments (the CMCD authors' ``mgridref_y``,
    Vargas et al. 2024, ``src/mcdboundingmachine.py``; their increments are kept positive by
    a projection, ours by the exponential, so every ``u`` is a valid schedule and Adam needs
    no projection). ``0 < β_1 < … < β_K < 1`` for any finite ``u``; ``u = 0`` gives
    :func:`beta_schedule`'s ``k/(K + 1)``. Differentiable in ``u`` with ``np_or_jnp=jnp``.
    Returns the K values ``β_1..β_K`` (the bridge's last step still stops short of 1; the
    target enters through the final ``log γ(x_K)``)."""
    mod = np_or_jnp
    u = logits - mod.max(logits)  # shift: e^u cannot overflow, the ratio is unchanged
    inc = mod.exp(u)
    return mod.cumsum(inc)[:-1] / mod.sum(inc)


def step_schedule(n_steps: int, kind: str = "constant") -> np.ndarray:
    """Relative step sizes ``ε_k / ε_0``, k = 1..K (ALGORITHMS.md §9a).

    ``"constant"``: 1. ``"linear"``: from 1 down to 1e−4 (linear decay).
    ``"cos_sq"``: ``cos²(((k/K) + s)/(1 + s) · π/2)``, s = 0.008 (Nichol & Dhariwal's
    cosine schedule as used by the CMCD code), floored at 1e−4 so no step is zero.
    """
    if kind == "constant":
        return np.ones(n_steps)
    if kind == "linear":
        return np.linspace(1.0, 1e-4, n_steps) if n_steps > 1 else np.ones(n_steps)
    if kind == "cos_sq":
        s = 0.008
        k = np.arange(1, n_steps + 1, dtype=np.float64)
        return np.maximum(np.cos(((k / n_steps) + s) / (1.0 + s) * math.pi / 2.0) ** 2, 1e-4)
    raise ValueError(f"schedule must be 'constant', 'linear' or 'cos_sq'; got {kind!r}")


# -- the control network (portable forward pass) ----------------------------------------------
class ControlNet(NamedTuple):
    """Weights of the control ``φ(x, t)``: a two-hidden-layer SiLU MLP on ``(x, t)``,
    ``h_1 = silu(W_x x + w_t t + b_1)``, ``h_2 = silu(W_h h_1 + b_2)``, ``φ = W_o h_2 + b_o``
    (shapes ``(H, d), (H,), (H,), (H, H), (H,), (d, H), (d,)``). ``W_o = b_o = 0`` is the
    zero control."""

    w_x: Any
    w_t: Any
    b_1: Any
    w_h: Any
    b_2: Any
    w_o: Any
    b_o: Any


@portable
def silu(a):
    """``a · sigmoid(a)`` elementwise, with ``e^{−|a|}`` so nothing overflows (nor its
    gradient)."""
    e = xp.exp(-xp.abs(a))
    return a * xp.where(a >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


@portable
def control_apply(net, x, t):
    """``φ(x, t)`` of :class:`ControlNet` ``net`` at position ``x`` (d,) and time ``t``."""
    h = silu(xp.dot(net.w_x, x) + net.w_t * t + net.b_1)
    h = silu(xp.dot(net.w_h, h) + net.b_2)
    return xp.dot(net.w_o, h) + net.b_o


def init_control(dim: int, hidden: int, seed: int = 0, scale_out: float = 0.0) -> ControlNet:
    """A :class:`ControlNet` with Glorot-scaled hidden layers; the output layer is
    ``scale_out`` times a Glorot draw (0: the zero control, where training starts)."""
    rng = np.random.default_rng(seed)

    def glorot(n_out, n_in):
        return rng.standard_normal((n_out, n_in)) * math.sqrt(2.0 / (n_in + n_out))

    return ControlNet(
        w_x=glorot(hidden, dim),
        w_t=rng.standard_normal(hidden),
        b_1=np.zeros(hidden),
        w_h=glorot(hidden, hidden),
        b_2=np.zeros(hidden),
        w_o=scale_out * glorot(dim, hidden),
        b_o=np.zeros(dim),
    )


@portable
def diag_gaussian_logpdf(x, mean, log_std):
    """``(log N(x; mean, diag(e^{2 log_std})), its gradient in x)``."""
    inv_var = xp.exp(-2.0 * log_std)
    r = x - mean
    value = -0.5 * xp.sum(r * r * inv_var) - xp.sum(log_std) - 0.5 * x.shape[0] * LOG_2PI
    return value, -r * inv_var


@portable
def evaluate_target(x, target):
    """``(log γ(x), ∇log γ(x))``: the one target evaluation per particle and step."""
    return xp.value_and_grad(target, x)


# -- particles and the Feynman–Kac model -------------------------------------------------------
class PathParticles(NamedTuple):
    """Particles: positions ``(N, d)``, ``log γ`` ``(N,)`` and ``∇log γ`` ``(N, d)`` there, and
    the log-potential ``log G_k`` of the step that produced them ``(N,)``."""

    x: Any
    logp: Any
    grad: Any
    log_g: Any


class PathNoise(NamedTuple):
    """d standard normals per particle per step (and for the start)."""

    normal: Vector


# The sampler's per-particle functions, bound by name per sampler class (bind_globals): a
# Numba loop cannot take functions as runtime arguments.
_start_position: Any = None
_start_log_g: Any = None
_propose: Any = None
_increment: Any = None


@portable
def _start_map(normal, row, params, target):
    x = _start_position(normal, params)
    logp, grad = evaluate_target(x, target)
    return x, logp, grad, _start_log_g(x, logp, row, params)


@portable
def _move_map(x, logp, grad, normal, row, params, target):
    new_x = _propose(x, logp, grad, normal, row, params)
    new_logp, new_grad = evaluate_target(new_x, target)
    log_g = _increment(x, logp, grad, new_x, new_logp, new_grad, row, params)
    return new_x, new_logp, new_grad, log_g


class _PathModel(FeynmanKac):
    """The Feynman–Kac model of a :class:`PathSampler` with given params (module docstring)."""

    def __init__(self, sampler: PathSampler, params, backend: str, dtype) -> None:
        from langevin.backends.base import get_backend
        from langevin.backends.portable import bind_globals

        self.sampler = sampler
        self.backend = backend
        self.T = sampler.n_steps
        self.dim = sampler.dim
        be = get_backend(backend)
        self._map = be.map_members
        self._start = bind_globals(
            _start_map, _start_position=sampler.start_position, _start_log_g=sampler.start_log_g
        )
        self._move = bind_globals(_move_map, _propose=sampler.propose, _increment=sampler.increment)
        coefficients = sampler.coefficients(params, np)
        if backend == "numba":
            self.dtype = np.dtype(np.float64)
            self._form = be.bind_target(sampler.target, sampler.dim)
            self._params = _to_numpy(params)
            self._rows = np.ascontiguousarray(coefficients, dtype=np.float64)
        else:
            import jax
            import jax.numpy as jnp

            self.dtype = np.dtype(jnp.zeros(()).dtype if dtype is None else dtype)
            self._form = be.bind_target(sampler.target, sampler.dim, self.dtype)
            self._params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, self.dtype), params)
            self._rows = jnp.asarray(coefficients, self.dtype)

    def particle_noise(self, t: int) -> PathNoise:
        return PathNoise(Normal((self.dim,)))

    def _normals(self, noise):
        if self.backend == "jax":
            import jax.numpy as jnp

            return jnp.asarray(noise.normal, self.dtype)
        return np.ascontiguousarray(noise.normal)

    def M0(self, n: int, noise: PathNoise) -> PathParticles:
        row = self._rows[0]
        out = self._map(
            self._start,
            (self._normals(noise), row, self._params, self._form),
            (0, None, None, None),
        )
        return PathParticles(*out)

    def M(self, t: int, particles: PathParticles, log_weights, noise: PathNoise) -> PathParticles:
        out = self._map(
            self._move,
            (particles.x, particles.logp, particles.grad, self._normals(noise),
             self._rows[t - 1], self._params, self._form),
            (0, 0, 0, 0, None, None, None),
        )  # fmt: skip
        return PathParticles(*out)

    def logG(self, t: int, previous, particles: PathParticles, log_weights):
        return particles.log_g


def _to_numpy(tree):
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_to_numpy(v) for v in tree))
    return np.ascontiguousarray(np.asarray(tree, dtype=np.float64))


# -- results -------------------------------------------------------------------------------------
@dataclass
class PathResult:
    """The output of :meth:`PathSampler.sample`.

    Attributes:
        log_Z: the log-evidence estimate ``log Ẑ`` (the SMC loop's; without resampling
            ``logsumexp(log w) − log N``; ``Ẑ`` is unbiased).
        elbo: ``mean(log w)`` over the particles, a lower bound on ``log Z`` in expectation;
            only defined without resampling (None otherwise).
        log_weights: the final log-weights (the full path weights ``log w`` without
            resampling).
        particles: the final :class:`PathParticles` (``.x``: samples, weighted by
            ``log_weights``).
        smc: the :class:`~langevin.smc.SMCResult` (ESS per step, resampling times, …).
        elapsed: seconds.
    """

    log_Z: float
    elbo: float | None
    log_weights: np.ndarray
    particles: PathParticles
    smc: SMCResult
    elapsed: float

    @property
    def samples(self) -> np.ndarray:
        """The final positions ``(N, d)`` (weighted by ``log_weights``)."""
        return np.asarray(self.particles.x)

    @property
    def ess(self) -> float:
        """ESS of the final weights, ``1 / Σ W²``."""
        lw = self.log_weights - np.max(self.log_weights)
        w = np.exp(lw)
        w /= w.sum()
        return float(1.0 / np.sum(w * w))


@dataclass
class TrainResult:
    """The output of :meth:`PathSampler.train`: the trained ``params`` (a pytree of NumPy
    arrays), the loss of every step, and the wall time (compilation included)."""

    params: Any
    losses: np.ndarray
    elapsed: float
    extras: dict = field(default_factory=dict)


# -- the base class -------------------------------------------------------------------------------
def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _check_positive(name: str, value) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not (0.0 < value < math.inf)
    ):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}")
    return float(value)


class PathSampler:
    """Base of the path samplers (module docstring). Subclasses set ``target``, ``dim``,
    ``n_steps`` and define the portable ``start_position``, ``start_log_g``, ``propose``,
    ``increment`` (as staticmethods), :meth:`coefficients` and :meth:`init_params`."""

    target: Any
    dim: int
    n_steps: int
    start_position: Any
    start_log_g: Any
    propose: Any
    increment: Any

    # -- subclass API ------------------------------------------------------------------------
    def coefficients(self, params, np_or_jnp) -> Any:
        """The ``(K, c)`` table of per-step coefficients (``max(K, 1)`` rows), computed with
        ``np_or_jnp`` from ``params`` (so a learned step size is differentiable)."""
        raise NotImplementedError

    def init_params(self, seed: int = 0) -> Any:
        raise NotImplementedError

    def train_mask(self, params) -> Any:
        """A pytree like ``params`` of Python bools: which leaves :meth:`train` updates
        (default: all). Frozen leaves get zero gradients (so Adam leaves them unchanged)."""
        import jax

        return jax.tree_util.tree_map(lambda _: True, params)

    def _check_target(self, target, dim) -> None:
        from langevin.targets.base import Target

        if not isinstance(target, Target):
            raise TypeError(f"target must be a langevin Target; got {type(target).__name__}")
        self.target = target
        if dim is None:
            dim = target.dim
        if dim is None:
            raise ValueError("dim must be given: the target does not know its dimension")
        self.dim = _check_int("dim", dim, 1)
        if target.dim is not None and target.dim != self.dim:
            raise ValueError(f"dim={dim} does not match the target's dimension {target.dim}")

    def _check_params(self, params) -> None:
        ref = self.init_params(0)

        def walk(a, b, path):
            if isinstance(b, tuple) and hasattr(b, "_fields"):
                if not (isinstance(a, tuple) and len(a) == len(b)):
                    raise TypeError(
                        f"params{path} must be a {type(b).__name__} (see init_params()); "
                        f"got {type(a).__name__}"
                    )
                for name, x, y in zip(b._fields, a, b):
                    walk(x, y, f"{path}.{name}")
                return
            if np.shape(a) != np.shape(b):
                raise ValueError(
                    f"params{path} has shape {np.shape(a)}; this sampler needs {np.shape(b)}"
                )

        walk(params, ref, "")

    # -- sampling ------------------------------------------------------------------------------
    def sample(
        self,
        params: Any = None,
        n_particles: int = 1000,
        *,
        backend: str = "numba",
        ess_threshold: float = 0.0,
        scheme: str = "systematic",
        seed: int | None = None,
        noise: Any = None,
        dtype: Any = None,
    ) -> PathResult:
        """Run the sampler on ``n_particles`` paths with the control ``params`` (default:
        :meth:`init_params`, the zero control) through :func:`langevin.smc.smc`.

        Args:
            params: the (trained) parameters, a pytree like :meth:`init_params`'s.
            n_particles: N >= 1.
            backend: ``"numba"`` (float64) or ``"jax"`` (JAX's default float, or ``dtype``).
            ess_threshold: resample when ESS < threshold · N (0, the default: never, i.e.
                importance sampling of paths; > 0: the SMC sampler with resampling).
            scheme: resampling scheme (``langevin.smc.SCHEMES``).
            seed: seed of the noise (one NumPy generator, the same draws on both backends).
            noise: a noise source for :func:`langevin.smc.smc` instead of ``seed``.
            dtype: JAX only: the float dtype.
        """
        if backend not in ("numba", "jax"):
            raise ValueError(f"backend must be 'numba' or 'jax'; got {backend!r}")
        if backend == "numba" and not self.target.has_numba:
            raise TypeError(
                f"backend='numba': the target {self.target!r} has no Numba form (build it with "
                "Target.from_numba), or sample with backend='jax'"
            )
        if backend == "jax" and not self.target.has_jax:
            raise TypeError(
                f"backend='jax': the target {self.target!r} has no JAX form (build it with "
                "Target.from_jax), or sample with backend='numba'"
            )
        n = _check_int("n_particles", n_particles, 1)
        _check_threshold(ess_threshold)
        _check_scheme(scheme)
        source = noise if noise is not None else GeneratorNoise(seed)  # checks the seed
        params = self.init_params(0) if params is None else params
        self._check_params(params)
        model = _PathModel(self, params, backend, dtype)
        t0 = time.perf_counter()
        result = smc(model, n, scheme=scheme, ess_threshold=ess_threshold, noise=source)
        lw = np.asarray(result.log_weights, dtype=np.float64)
        elbo = float(np.mean(lw)) if not np.any(result.resampled) else None
        return PathResult(
            log_Z=result.log_evidence,
            elbo=elbo,
            log_weights=lw,
            particles=result.particles,
            smc=result,
            elapsed=time.perf_counter() - t0,
        )

    # -- training (JAX) --------------------------------------------------------------------------
    def log_weight_fn(self, batch: int, loss: str = "kl", exploration: float = 0.0):
        """``f(params, key) -> log w`` (batch,) on JAX (jit-able): ``batch`` paths simulated
        with the live params (``loss="kl"``: reparameterised) or with detached params and
        forward noise scaled by ``1 + exploration`` (``loss="logvar"``: off-policy), weighed
        with the live params. See :func:`path_log_weights`."""
        return path_log_weights(self, batch, loss, exploration)

    def train(
        self,
        params: Any = None,
        *,
        loss: str = "kl",
        steps: int = 500,
        batch: int = 256,
        learning_rate: float = 1e-3,
        exploration: float = 0.0,
        clip_norm: float = 10.0,
        seed: int = 0,
        dtype: Any = None,
    ) -> TrainResult:
        """Train the params with Adam (optax) on JAX.

        Args:
            params: where to start (default :meth:`init_params`: the zero control).
            loss: ``"kl"`` (−ELBO, reparameterised) or ``"logvar"`` (variance of ``log w``
                on detached, optionally exploring paths; Richter & Berner 2024).
            steps, batch, learning_rate: Adam steps, paths per step, step size.
            exploration: ``"logvar"`` only: the simulating forward noise is scaled by
                ``1 + exploration`` (0: the current control, detached).
            clip_norm: global gradient-norm clipping. Non-finite gradient entries (a path
                whose weight overflowed) are set to 0 before clipping.
            seed: the JAX key's seed.
            dtype: the float dtype of training (default: JAX's default float).

        Returns:
            A :class:`TrainResult` (params as NumPy float64 arrays).
        """
        import jax
        import jax.numpy as jnp
        import optax

        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}; got {loss!r}")
        if not self.target.has_jax:
            raise TypeError(
                f"training runs on JAX: the target {self.target!r} has no JAX form (build it "
                "with Target.from_jax)"
            )
        steps = _check_int("steps", steps, 1)
        batch = _check_int("batch", batch, 2)
        lr = _check_positive("learning_rate", learning_rate)
        if (
            isinstance(exploration, bool)
            or not isinstance(exploration, numbers.Real)
            or not (0.0 <= exploration < math.inf)
        ):
            raise ValueError(f"exploration must be a number >= 0; got {exploration!r}")
        if exploration and loss != "logvar":
            raise ValueError("exploration > 0 needs loss='logvar' (off-policy)")
        clip = _check_positive("clip_norm", clip_norm)
        params = self.init_params(0) if params is None else params
        self._check_params(params)
        dt = jnp.zeros(()).dtype if dtype is None else jnp.dtype(dtype)
        p = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dt), params)
        log_w = path_log_weights(self, batch, loss, float(exploration), dt)

        def objective(p, key):
            lw = log_w(p, key)
            if loss == "kl":
                return -jnp.mean(lw)
            return jnp.var(lw)

        opt = optax.chain(optax.clip_by_global_norm(clip), optax.adam(lr))
        state = opt.init(p)
        mask = self.train_mask(p)

        @jax.jit
        def update(p, state, key):
            value, grads = jax.value_and_grad(objective)(p, key)
            grads = jax.tree_util.tree_map(
                lambda g, m: jnp.where(jnp.isfinite(g), g, 0.0) if m else jnp.zeros_like(g),
                grads,
                mask,
            )
            upd, state = opt.update(grads, state, p)
            return optax.apply_updates(p, upd), state, value

        t0 = time.perf_counter()
        key = jax.random.PRNGKey(seed)
        losses = np.empty(steps)
        for i in range(steps):
            key, sub = jax.random.split(key)
            p, state, value = update(p, state, sub)
            losses[i] = float(value)
        out = _to_numpy(jax.tree_util.tree_map(np.asarray, p))
        return TrainResult(params=out, losses=losses, elapsed=time.perf_counter() - t0)


def path_log_weights(sampler: PathSampler, batch: int, loss: str = "kl",
                     exploration: float = 0.0, dtype: Any = None):  # fmt: skip
    """``f(params, key) -> log w`` of ``batch`` paths on JAX, from the sampler's portable
    functions twinned for JAX (the same source the Numba backend compiles).

    ``loss="kl"``: the paths are simulated with the live params, so ``∇ mean(log w)`` is the
    reparameterised gradient of the ELBO. ``loss="logvar"``: simulated with
    ``stop_gradient(params)`` and forward noise scaled by ``1 + exploration`` (off-policy),
    then weighed with the live params: the gradient flows only through the transition
    densities of a fixed path.
    """
    import jax
    import jax.numpy as jnp

    from langevin.backends.jax_backend import bind_target
    from langevin.smc._compile import twin

    dt = jnp.zeros(()).dtype if dtype is None else jnp.dtype(dtype)
    start_position = twin(sampler.start_position, "jax")
    start_log_g = twin(sampler.start_log_g, "jax")
    propose = twin(sampler.propose, "jax")
    increment = twin(sampler.increment, "jax")
    evaluate = twin(evaluate_target, "jax")
    form = bind_target(sampler.target, sampler.dim, dt)
    off = loss == "logvar"
    k_steps, d = sampler.n_steps, sampler.dim
    scale = 1.0 + float(exploration)

    def log_weights(params, key):
        target = form.build(form.data)
        sim = jax.lax.stop_gradient(params) if off else params
        rows = sampler.coefficients(params, jnp).astype(dt)
        sim_rows = sampler.coefficients(sim, jnp).astype(dt)
        normals = jax.random.normal(key, (k_steps + 1, batch, d), dt)
        x = jax.vmap(start_position, (0, None))(normals[0], sim)
        if off:
            x = jax.lax.stop_gradient(x)
        logp, grad = jax.vmap(evaluate, (0, None))(x, target)
        lw = jax.vmap(start_log_g, (0, 0, None, None))(x, logp, rows[0], params)

        def body(carry, inputs):
            x, logp, grad, lw = carry
            normal, row, sim_row = inputs
            new_x = jax.vmap(propose, (0, 0, 0, 0, None, None))(
                x, logp, grad, scale * normal, sim_row, sim
            )
            if off:
                new_x = jax.lax.stop_gradient(new_x)
            new_logp, new_grad = jax.vmap(evaluate, (0, None))(new_x, target)
            g = jax.vmap(increment, (0, 0, 0, 0, 0, 0, None, None))(
                x, logp, grad, new_x, new_logp, new_grad, row, params
            )
            return (new_x, new_logp, new_grad, lw + g), None

        if k_steps == 0:
            return lw
        (x, logp, grad, lw), _ = jax.lax.scan(
            body, (x, logp, grad, lw), (normals[1:], rows[:k_steps], sim_rows[:k_steps])
        )
        return lw

    return log_weights
