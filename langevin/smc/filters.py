"""Particle filters for state-space models: bootstrap and guided, on both backends.

A state-space (hidden Markov) model has a latent Markov chain and conditionally independent
observations,

    X_0 ~ p(x_0),    X_t | X_{t−1} = x ~ p(x_t | x),    Y_t | X_t = x ~ p(y_t | x),

t = 0, …, T. The likelihood ``p(y_{0:T}) = ∫ p(x_0) Π_t p(x_t | x_{t−1}) Π_t p(y_t | x_t) dx``
is the normalising constant of two Feynman–Kac models (Chopin & Papaspiliopoulos 2020,
Ch. 5), run by :func:`langevin.smc.smc`:

* **bootstrap** (Gordon, Salmond & Smith 1993): ``M_0 = p(x_0)``, ``M_t = p(x_t | x_{t−1})``,
  ``G_t(x_t) = p(y_t | x_t)``;
* **guided**: ``M_t = q_t(x_t | x_{t−1})`` a proposal that may look at ``y_t``, and

      G_t(x_{t−1}, x_t) = p(x_t | x_{t−1}) p(y_t | x_t) / q_t(x_t | x_{t−1})

  (``G_0 = p(x_0) p(y_0 | x_0) / q_0(x_0)``). With the locally optimal proposal
  ``q_t = p(x_t | x_{t−1}, y_t)`` the weights depend on ``x_{t−1}`` only and the
  log-likelihood estimate is much less noisy.

Either way ``exp(log L̂)`` is an unbiased estimate of ``p(y_{0:T})`` (Del Moral 2004).

A model is a :class:`StateSpaceModel`: per-particle *portable* functions of one state
(written once, run by both backends) and a ``data`` NamedTuple of runtime arrays
(parameters and observations, indexed by ``t`` inside the math). Built in:

* :func:`linear_gaussian`: ``X_t = A X_{t−1} + W_t``, ``Y_t = C X_t + V_t`` with its exact
  log-likelihood by the Kalman (1960) filter (:func:`kalman_filter`) and the locally optimal
  proposal for the guided filter;
* :func:`stochastic_volatility`: the log-volatility model of Kim, Shephard & Chib (1998),
  ``X_t = μ + φ (X_{t−1} − μ) + σ η_t``, ``Y_t = exp(X_t / 2) ε_t``, on a simulated data set.

References:
    Gordon, N. J., Salmond, D. J. and Smith, A. F. M. (1993). Novel approach to
    nonlinear/non-Gaussian Bayesian state estimation. IEE Proc. F 140(2).
    Kalman, R. E. (1960). A new approach to linear filtering and prediction problems.
    J. Basic Eng. 82(1).
    Kim, S., Shephard, N. and Chib, S. (1998). Stochastic volatility: likelihood inference
    and comparison with ARCH models. Rev. Econ. Stud. 65(3).
    Chopin, N. and Papaspiliopoulos, O. (2020). An Introduction to Sequential Monte Carlo.
    Springer.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar, NamedTuple

import numpy as np

from langevin.backends.base import get_backend
from langevin.backends.portable import bind_globals, portable
from langevin.kernels.base import Normal, Vector
from langevin.smc._compile import BACKENDS
from langevin.smc.feynman_kac import FeynmanKac, SMCResult, _check_positive_int, smc

__all__ = [
    "StateSpaceModel",
    "particle_filter",
    "BootstrapFeynmanKac",
    "GuidedFeynmanKac",
    "LinearGaussian",
    "linear_gaussian",
    "linear_gaussian_example",
    "kalman_filter",
    "StochasticVolatility",
    "stochastic_volatility",
]

xp: Any = None

_LOG_2PI = math.log(2.0 * math.pi)


class StateNoise(NamedTuple):
    """One standard normal vector per particle per step (the usual state noise)."""

    normal: Vector


class StateSpaceModel:
    """A state-space model: per-particle portable math and a ``data`` NamedTuple.

    Subclasses set ``dim`` (state dimension), ``data`` (runtime arrays: parameters and the
    observations, leading time axis), ``n_observations`` (T + 1) and the portable
    functions, as class attributes wrapped in ``staticmethod``:

    * ``initial_math(noise, data) -> x_0`` (a draw from ``p(x_0)``),
    * ``transition_math(t, x_prev, noise, data) -> x_t`` (a draw from ``p(x_t | x_prev)``),
    * ``log_observation_math(t, x, data) -> log p(y_t | x)``;

    and, for the guided filter (``has_proposal = True``):

    * ``log_initial_math(x, data)``, ``log_transition_math(t, x_prev, x, data)``,
    * ``proposal0_math(noise, data)``, ``log_proposal0_math(x, data)``,
    * ``proposal_math(t, x_prev, noise, data)``, ``log_proposal_math(t, x_prev, x, data)``.

    ``noise()`` declares the per-particle noise of one draw (default: N(0, I_dim)).
    """

    dim: int
    data: Any
    n_observations: int
    has_proposal: ClassVar[bool] = False
    initial_math: ClassVar[Any]
    transition_math: ClassVar[Any]
    log_observation_math: ClassVar[Any]

    def noise(self) -> NamedTuple:
        return StateNoise(Normal((self.dim,)))

    @property
    def name(self) -> str:
        return type(self).__name__


# -- the two Feynman–Kac models of a state-space model -----------------------------------------
_log_transition: Any = None  # bound per model (twin overrides)
_log_observation: Any = None
_log_proposal: Any = None
_log_initial: Any = None
_log_proposal0: Any = None


@portable
def _guided_logg(t, x_prev, x, data):
    """``log p(x | x_prev) + log p(y_t | x) − log q_t(x | x_prev)``."""
    return (
        _log_transition(t, x_prev, x, data)
        + _log_observation(t, x, data)
        - _log_proposal(t, x_prev, x, data)
    )


@portable
def _guided_logg0(x, data):
    """``log p(x_0) + log p(y_0 | x_0) − log q_0(x_0)``."""
    return _log_initial(x, data) + _log_observation(0, x, data) - _log_proposal0(x, data)


@portable
def _observation_logg0(x, data):
    return _log_observation(0, x, data)


@portable
def _observation_logg(t, x_prev, x, data):
    return _log_observation(t, x, data)


class Particles(NamedTuple):
    """The particles of a filter: states ``(N, dim)``."""

    x: Any


class _SSMFeynmanKac(FeynmanKac):
    def __init__(self, ssm: StateSpaceModel, backend: str, dtype) -> None:
        self.ssm = ssm
        self.backend = backend
        self.T = ssm.n_observations - 1
        self.dtype = np.dtype(dtype)
        self.data = _data_for(ssm.data, backend, self.dtype)
        self._noise = ssm.noise()

    def particle_noise(self, t: int):
        return self._noise

    def _noise_arrays(self, noise):
        if self.backend == "jax":
            import jax.numpy as jnp

            return type(noise)(*(jnp.asarray(a, self.dtype) for a in noise))
        return noise

    def progress_total(self) -> float:
        return float(self.T)


def _data_for(data, backend: str, dtype):
    """The model's data as the backend wants it (JAX arrays in ``dtype`` for floats)."""
    if backend != "jax":
        return data
    import jax.numpy as jnp

    def conv(v):
        a = np.asarray(v)
        if np.issubdtype(a.dtype, np.floating):
            return jnp.asarray(a, dtype)
        return jnp.asarray(a)

    return type(data)(*(conv(v) for v in data))


class BootstrapFeynmanKac(_SSMFeynmanKac):
    """The bootstrap filter's model: ``M_t = p(x_t | x_{t−1})``, ``G_t = p(y_t | x_t)``.

    Every per-particle function runs through the backend engine's population map."""

    def __init__(self, ssm: StateSpaceModel, backend: str = "numba", dtype=np.float64):
        super().__init__(ssm, backend, dtype)
        cls = type(ssm)
        self._map = get_backend(backend).map_members
        self._m0_math, self._m_math = cls.initial_math, cls.transition_math
        obs = {"_log_observation": cls.log_observation_math}
        self._g0_math = bind_globals(_observation_logg0, **obs)
        self._g_math = bind_globals(_observation_logg, **obs)

    def M0(self, n, noise):
        return Particles(self._map(self._m0_math, (self._noise_arrays(noise), self.data),
                                   (0, None)))  # fmt: skip

    def M(self, t, particles, log_weights, noise):
        x = self._map(self._m_math, (t, particles.x, self._noise_arrays(noise), self.data),
                      (None, 0, 0, None))  # fmt: skip
        return Particles(x)

    def logG(self, t, previous, particles, log_weights):
        if previous is None:
            return self._map(self._g0_math, (particles.x, self.data), (0, None))
        return self._map(self._g_math, (t, previous.x, particles.x, self.data),
                         (None, 0, 0, None))  # fmt: skip


class GuidedFeynmanKac(BootstrapFeynmanKac):
    """The guided filter's model: ``M_t = q_t``, ``G_t = p(x_t|x_{t−1}) p(y_t|x_t) / q_t``."""

    def __init__(self, ssm: StateSpaceModel, backend: str = "numba", dtype=np.float64):
        if not ssm.has_proposal:
            raise ValueError(
                f"{ssm.name} supplies no proposal (has_proposal is False): use the bootstrap "
                "filter, or define proposal0_math/proposal_math and their log-densities"
            )
        super().__init__(ssm, backend, dtype)
        cls = type(ssm)
        self._m0_math, self._m_math = cls.proposal0_math, cls.proposal_math
        self._g0_math = bind_globals(
            _guided_logg0,
            _log_initial=cls.log_initial_math,
            _log_observation=cls.log_observation_math,
            _log_proposal0=cls.log_proposal0_math,
        )
        self._g_math = bind_globals(
            _guided_logg,
            _log_transition=cls.log_transition_math,
            _log_observation=cls.log_observation_math,
            _log_proposal=cls.log_proposal_math,
        )


def particle_filter(
    model: StateSpaceModel,
    n_particles: int = 1000,
    *,
    method: str = "bootstrap",
    scheme: str = "systematic",
    ess_threshold: float = 0.5,
    backend: str = "numba",
    seed: int | None = None,
    noise: Any = None,
    dtype=None,
    collect_means: bool = True,
    keep_ancestors: bool = False,
    progress: bool = False,
) -> SMCResult:
    """Run a particle filter on a state-space model.

    Args:
        model: a :class:`StateSpaceModel` (e.g. :func:`linear_gaussian`,
            :func:`stochastic_volatility`).
        n_particles: N.
        method: ``"bootstrap"`` or ``"guided"`` (the model must supply a proposal).
        scheme: resampling scheme; ``ess_threshold``: resample when ESS < threshold · N.
        backend: ``"numba"`` (float64), ``"jax"`` or ``"numpy"``.
        seed: seed of the noise (the same seed gives the same filter on every backend, to
            rounding); ``noise``: a noise source instead (see :func:`langevin.smc.smc`).
        dtype: float dtype of the particles and data; default the backend's (float64 on
            Numba and NumPy; on JAX its default float, float32 unless ``jax_enable_x64``).
        collect_means: record the filtering means ``E[X_t | y_{0:t}]`` estimates.

    Returns:
        An :class:`~langevin.smc.SMCResult`: ``log_likelihood`` (= ``log_evidence``), its
        increments ``log p̂(y_t | y_{0:t−1})``, ``means`` (T+1, dim), ESS and resampling
        history, final particles and weights.

    Example:
        >>> model = linear_gaussian_example(T=50, seed=0)
        >>> result = particle_filter(model, 500, seed=1)
        >>> exact = kalman_filter(model).log_likelihood
        >>> bool(abs(result.log_likelihood - exact) < 2.0)
        True
    """
    if not isinstance(model, StateSpaceModel):
        raise TypeError(f"model must be a StateSpaceModel; got {type(model).__name__}")
    if method not in ("bootstrap", "guided"):
        raise ValueError(f"method must be 'bootstrap' or 'guided'; got {method!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    if dtype is None:
        dtype = get_backend(backend).default_float()
    if backend != "jax" and np.dtype(dtype) != np.float64:
        raise TypeError(f"backend={backend!r} runs in float64; got dtype={np.dtype(dtype)}")
    _check_positive_int("n_particles", n_particles)
    if method == "guided" and not model.has_proposal:
        raise ValueError(
            f"{model.name} supplies no proposal: method='guided' needs proposal0_math, "
            "proposal_math and their log-densities (has_proposal = True)"
        )
    fk_cls = BootstrapFeynmanKac if method == "bootstrap" else GuidedFeynmanKac
    fk = fk_cls(model, backend, dtype)
    return smc(fk, n_particles, scheme=scheme, ess_threshold=ess_threshold, seed=seed,
               noise=noise, collect_means=collect_means, keep_ancestors=keep_ancestors,
               progress=progress, progress_label=f"{method} filter")  # fmt: skip


# -- linear Gaussian model and the Kalman filter -----------------------------------------------
class LinearGaussianData(NamedTuple):
    """The arrays of a linear Gaussian model, packed into a few homogeneous fields (Numba
    compiles functions of a small tuple of arrays several times faster than of a 22-field
    one). Index constants name the entries."""

    #: (10, d, d): A, P0_chol, P0_prec, Q_chol, Q_prec, Bx, S_chol, S_prec, S0_chol, S0_prec
    square: np.ndarray
    C: np.ndarray  # (p, d)
    R_prec: np.ndarray  # (p, p)
    gains: np.ndarray  # (2, d, p): By, By0
    vectors: np.ndarray  # (2, d): m0, c0
    logdets: np.ndarray  # (5,): log det(2π ·) of P0, Q, R, S, S0
    y: np.ndarray  # (T+1, p)


# entries of LinearGaussianData.square / .gains / .vectors / .logdets
_A, _P0_CHOL, _P0_PREC, _Q_CHOL, _Q_PREC, _BX, _S_CHOL, _S_PREC, _S0_CHOL, _S0_PREC = range(10)
_BY, _BY0 = 0, 1
_M0, _C0 = 0, 1
_LD_P0, _LD_Q, _LD_R, _LD_S, _LD_S0 = range(5)


@portable
def _gaussian_logpdf(r, prec, logdet):
    """``log N(r; 0, Σ)`` with ``prec = Σ⁻¹`` and ``logdet = log det(2π Σ)``."""
    return -0.5 * xp.dot(r, xp.dot(prec, r)) - 0.5 * logdet


@portable
def _lg_initial(noise, data):
    return data.vectors[_M0] + xp.dot(data.square[_P0_CHOL], noise.normal)


@portable
def _lg_transition(t, x_prev, noise, data):
    return xp.dot(data.square[_A], x_prev) + xp.dot(data.square[_Q_CHOL], noise.normal)


@portable
def _lg_log_observation(t, x, data):
    return _gaussian_logpdf(data.y[t] - xp.dot(data.C, x), data.R_prec, data.logdets[_LD_R])


@portable
def _lg_log_initial(x, data):
    return _gaussian_logpdf(x - data.vectors[_M0], data.square[_P0_PREC], data.logdets[_LD_P0])


@portable
def _lg_log_transition(t, x_prev, x, data):
    r = x - xp.dot(data.square[_A], x_prev)
    return _gaussian_logpdf(r, data.square[_Q_PREC], data.logdets[_LD_Q])


@portable
def _lg_proposal0_mean(data):
    return data.vectors[_C0] + xp.dot(data.gains[_BY0], data.y[0])


@portable
def _lg_proposal0(noise, data):
    return _lg_proposal0_mean(data) + xp.dot(data.square[_S0_CHOL], noise.normal)


@portable
def _lg_log_proposal0(x, data):
    r = x - _lg_proposal0_mean(data)
    return _gaussian_logpdf(r, data.square[_S0_PREC], data.logdets[_LD_S0])


@portable
def _lg_proposal_mean(t, x_prev, data):
    return xp.dot(data.square[_BX], x_prev) + xp.dot(data.gains[_BY], data.y[t])


@portable
def _lg_proposal(t, x_prev, noise, data):
    return _lg_proposal_mean(t, x_prev, data) + xp.dot(data.square[_S_CHOL], noise.normal)


@portable
def _lg_log_proposal(t, x_prev, x, data):
    r = x - _lg_proposal_mean(t, x_prev, data)
    return _gaussian_logpdf(r, data.square[_S_PREC], data.logdets[_LD_S])


class LinearGaussian(StateSpaceModel):
    """``X_0 ~ N(m0, P0)``, ``X_t = A X_{t−1} + W_t``, ``Y_t = C X_t + V_t``,
    ``W_t ~ N(0, Q)``, ``V_t ~ N(0, R)``; exact answers from :func:`kalman_filter`.

    The guided filter uses the locally optimal proposal ``p(x_t | x_{t−1}, y_t) =
    N(S (Q⁻¹ A x_{t−1} + Cᵀ R⁻¹ y_t), S)``, ``S = (Q⁻¹ + Cᵀ R⁻¹ C)⁻¹`` (and
    ``p(x_0 | y_0)`` at t = 0). Build it with :func:`linear_gaussian`.
    """

    has_proposal = True
    initial_math = staticmethod(_lg_initial)
    transition_math = staticmethod(_lg_transition)
    log_observation_math = staticmethod(_lg_log_observation)
    log_initial_math = staticmethod(_lg_log_initial)
    log_transition_math = staticmethod(_lg_log_transition)
    proposal0_math = staticmethod(_lg_proposal0)
    log_proposal0_math = staticmethod(_lg_log_proposal0)
    proposal_math = staticmethod(_lg_proposal)
    log_proposal_math = staticmethod(_lg_log_proposal)

    def __init__(self, A, C, Q, R, m0, P0, y) -> None:
        self.A, self.C, self.Q, self.R, self.m0, self.P0, self.y = A, C, Q, R, m0, P0, y
        self.dim = A.shape[0]
        self.n_observations = y.shape[0]
        self.data = _linear_gaussian_data(A, C, Q, R, m0, P0, y)


def _spd(name: str, M: np.ndarray, size: int) -> np.ndarray:
    M = np.asarray(M, dtype=np.float64)
    if M.ndim == 0:
        M = M.reshape(1, 1)
    if M.shape != (size, size):
        raise ValueError(f"{name} must have shape ({size}, {size}); got {M.shape}")
    if not np.all(np.isfinite(M)) or not np.allclose(M, M.T, atol=1e-12 * max(1.0, abs(M).max())):
        raise ValueError(f"{name} must be finite and symmetric")
    try:
        np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name} must be positive definite") from None
    return np.ascontiguousarray(0.5 * (M + M.T))


def _gaussian_parts(S: np.ndarray):
    """``(chol, precision, log det(2π S))`` of an SPD matrix."""
    chol = np.linalg.cholesky(S)
    prec = np.linalg.inv(S)
    prec = 0.5 * (prec + prec.T)
    logdet = S.shape[0] * _LOG_2PI + 2.0 * float(np.sum(np.log(np.diag(chol))))
    c = np.ascontiguousarray
    return c(chol), c(prec), logdet


def _linear_gaussian_data(A, C, Q, R, m0, P0, y) -> LinearGaussianData:
    c = np.ascontiguousarray
    P0_chol, P0_prec, P0_logdet = _gaussian_parts(P0)
    Q_chol, Q_prec, Q_logdet = _gaussian_parts(Q)
    _, R_prec, R_logdet = _gaussian_parts(R)
    CtRi = C.T @ R_prec
    S = np.linalg.inv(Q_prec + CtRi @ C)
    S_chol, S_prec, S_logdet = _gaussian_parts(0.5 * (S + S.T))
    S0 = np.linalg.inv(P0_prec + CtRi @ C)
    S0_chol, S0_prec, S0_logdet = _gaussian_parts(0.5 * (S0 + S0.T))
    square = np.stack([A, P0_chol, P0_prec, Q_chol, Q_prec, S @ Q_prec @ A, S_chol, S_prec,
                       S0_chol, S0_prec])  # fmt: skip
    return LinearGaussianData(
        square=c(square),
        C=c(C),
        R_prec=c(R_prec),
        gains=c(np.stack([S @ CtRi, S0 @ CtRi])),
        vectors=c(np.stack([m0, S0 @ P0_prec @ m0])),
        logdets=np.array([P0_logdet, Q_logdet, R_logdet, S_logdet, S0_logdet]),
        y=c(y),
    )


def linear_gaussian(A, C, Q, R, m0, P0, y) -> LinearGaussian:
    """The linear Gaussian state-space model with observations ``y`` (T+1, p).

    Args:
        A: (d, d) transition matrix; C: (p, d) observation matrix.
        Q: (d, d) state noise covariance; R: (p, p) observation noise covariance.
        m0, P0: mean (d,) and covariance (d, d) of ``X_0``.
        y: observations, shape (T+1, p) (or (T+1,) when p = 1).

    Example:
        >>> import numpy as np
        >>> model = linear_gaussian(np.eye(1) * 0.9, np.eye(1), np.eye(1), np.eye(1),
        ...                         np.zeros(1), np.eye(1), np.zeros((5, 1)))
        >>> model.dim, model.n_observations
        (1, 5)
    """
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    d = A.shape[0]
    if A.shape != (d, d):
        raise ValueError(f"A must be square; got shape {A.shape}")
    C = np.atleast_2d(np.asarray(C, dtype=np.float64))
    if C.shape[1] != d:
        raise ValueError(f"C must have {d} columns (the state dimension); got shape {C.shape}")
    p = C.shape[0]
    Q = _spd("Q", Q, d)
    R = _spd("R", R, p)
    P0 = _spd("P0", P0, d)
    m0 = np.asarray(m0, dtype=np.float64).reshape(-1)
    if m0.shape != (d,):
        raise ValueError(f"m0 must have shape ({d},); got {m0.shape}")
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1 and p == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[1] != p or y.shape[0] < 1:
        raise ValueError(f"y must have shape (T+1, {p}); got {y.shape}")
    for name, v in (("A", A), ("C", C), ("m0", m0), ("y", y)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must be finite")
    return LinearGaussian(A, C, Q, R, m0, P0, y)


def linear_gaussian_example(
    T: int = 100, seed: int = 0, *, state_var: float = 0.1, obs_var: float = 0.5
) -> LinearGaussian:
    """A 2-D damped rotation observed through its first coordinate, simulated with ``seed``.

    ``A = 0.95 R(0.3)`` (a rotation by 0.3 rad scaled by 0.95), ``C = [1, 0]``,
    ``Q = state_var · I``, ``R = obs_var``, ``X_0 ~ N(0, I)``; ``T + 1`` observations drawn
    with ``numpy.random.default_rng(seed)`` (states first, then observations).
    """
    T = _check_positive_int("T", T)
    c, s = math.cos(0.3), math.sin(0.3)
    A = 0.95 * np.array([[c, -s], [s, c]])
    C = np.array([[1.0, 0.0]])
    Q = float(state_var) * np.eye(2)
    R = np.array([[float(obs_var)]])
    m0, P0 = np.zeros(2), np.eye(2)
    rng = np.random.default_rng(seed)
    x = np.empty((T + 1, 2))
    x[0] = rng.multivariate_normal(m0, P0)
    for t in range(1, T + 1):
        x[t] = A @ x[t - 1] + rng.multivariate_normal(np.zeros(2), Q)
    y = x @ C.T + rng.normal(scale=math.sqrt(R[0, 0]), size=(T + 1, 1))
    model = linear_gaussian(A, C, Q, R, m0, P0, y)
    model.true_states = x
    return model


class KalmanResult(NamedTuple):
    """Exact filtering for a linear Gaussian model."""

    log_likelihood: float
    log_likelihood_increments: np.ndarray  # log p(y_t | y_{0:t−1})
    means: np.ndarray  # E[X_t | y_{0:t}], (T+1, d)
    covariances: np.ndarray  # Cov[X_t | y_{0:t}], (T+1, d, d)


def kalman_filter(model: LinearGaussian) -> KalmanResult:
    """The Kalman (1960) filter: exact ``log p(y_{0:T})`` and filtering moments.

    Predict ``m⁻ = A m``, ``P⁻ = A P Aᵀ + Q`` (at t = 0: ``m0, P0``); innovation
    ``e = y_t − C m⁻`` with covariance ``F = C P⁻ Cᵀ + R``, ``log p(y_t | y_{0:t−1}) =
    log N(e; 0, F)``; update with gain ``K = P⁻ Cᵀ F⁻¹``: ``m = m⁻ + K e``,
    ``P = (I − K C) P⁻ (I − K C)ᵀ + K R Kᵀ`` (Joseph form, kept symmetric).
    """
    if not isinstance(model, LinearGaussian):
        raise TypeError(f"kalman_filter needs a LinearGaussian model; got {type(model).__name__}")
    A, C, Q, R, y = model.A, model.C, model.Q, model.R, model.data.y
    d = A.shape[0]
    m, P = model.m0.copy(), model.P0.copy()
    n = y.shape[0]
    means, covs, incs = np.empty((n, d)), np.empty((n, d, d)), np.empty(n)
    eye = np.eye(d)
    for t in range(n):
        if t > 0:
            m, P = A @ m, A @ P @ A.T + Q
        e = y[t] - C @ m
        F = C @ P @ C.T + R
        F = 0.5 * (F + F.T)
        chol = np.linalg.cholesky(F)
        z = np.linalg.solve(chol, e)
        incs[t] = -0.5 * z @ z - np.sum(np.log(np.diag(chol))) - 0.5 * len(e) * _LOG_2PI
        K = np.linalg.solve(F, C @ P).T
        m = m + K @ e
        IKC = eye - K @ C
        P = IKC @ P @ IKC.T + K @ R @ K.T
        P = 0.5 * (P + P.T)
        means[t], covs[t] = m, P
    return KalmanResult(float(incs.sum()), incs, means, covs)


# -- stochastic volatility ---------------------------------------------------------------------
class StochasticVolatilityData(NamedTuple):
    mu: float
    phi: float
    sigma: float
    y: np.ndarray  # (T+1,)


@portable
def _sv_initial(noise, data):
    # the stationary law N(μ, σ²/(1 − φ²))
    return data.mu + data.sigma / xp.sqrt(1.0 - data.phi * data.phi) * noise.normal


@portable
def _sv_transition(t, x_prev, noise, data):
    return data.mu + data.phi * (x_prev - data.mu) + data.sigma * noise.normal


@portable
def _sv_log_observation(t, x, data):
    # y_t ~ N(0, exp(x_t)): −½ [log 2π + x + y² e^{−x}]
    y = data.y[t]
    return -0.5 * (1.8378770664093453 + x[0] + y * y * xp.exp(-x[0]))


class StochasticVolatility(StateSpaceModel):
    """Kim, Shephard & Chib (1998): ``X_0 ~ N(μ, σ²/(1−φ²))``,
    ``X_t = μ + φ (X_{t−1} − μ) + σ η_t``, ``Y_t = exp(X_t / 2) ε_t``, η, ε i.i.d. N(0, 1)
    (KSC's ``y_t = β e^{h_t/2} ε_t`` with ``μ = 2 log β``). State dimension 1.
    Build it with :func:`stochastic_volatility`."""

    dim = 1
    initial_math = staticmethod(_sv_initial)
    transition_math = staticmethod(_sv_transition)
    log_observation_math = staticmethod(_sv_log_observation)

    def __init__(self, mu: float, phi: float, sigma: float, y: np.ndarray) -> None:
        self.mu, self.phi, self.sigma = mu, phi, sigma
        self.data = StochasticVolatilityData(mu, phi, sigma, np.ascontiguousarray(y))
        self.n_observations = y.shape[0]


def stochastic_volatility(
    y=None,
    *,
    mu: float = -1.0,
    phi: float = 0.95,
    sigma: float = 0.25,
    T: int = 500,
    seed: int = 0,
) -> StochasticVolatility:
    """The stochastic volatility model with parameters ``(μ, φ, σ)`` and observations ``y``.

    Without ``y``, ``T + 1`` returns are simulated from the model with
    ``numpy.random.default_rng(seed)`` (the log-volatilities first, then the returns); the
    simulated path is kept as ``model.true_states``. The defaults (``φ = 0.95``,
    ``σ = 0.25``, ``μ = −1``) are of the order of daily exchange-rate fits such as KSC's.

    Example:
        >>> model = stochastic_volatility(T=100, seed=3)
        >>> model.n_observations, model.dim
        (101, 1)
    """
    for name, v in (("mu", mu), ("phi", phi), ("sigma", sigma)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number; got {v!r}")
    if not -1.0 < phi < 1.0:
        raise ValueError(f"phi must lie in (-1, 1) for a stationary volatility; got {phi}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive; got {sigma}")
    states = None
    if y is None:
        T = _check_positive_int("T", T)
        rng = np.random.default_rng(seed)
        x = np.empty(T + 1)
        x[0] = mu + sigma / math.sqrt(1 - phi**2) * rng.standard_normal()
        for t in range(1, T + 1):
            x[t] = mu + phi * (x[t - 1] - mu) + sigma * rng.standard_normal()
        y = np.exp(x / 2) * rng.standard_normal(T + 1)
        states = x
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.shape[0] < 1 or not np.all(np.isfinite(y)):
        raise ValueError("y must be a non-empty 1-D array of finite returns")
    model = StochasticVolatility(float(mu), float(phi), float(sigma), y)
    model.true_states = states
    return model
