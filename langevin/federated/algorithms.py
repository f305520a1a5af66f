"""Federated Langevin algorithms: what each client computes and what the server does.

Every algorithm is a *round*: ``K`` (``local_steps``) steps of the local kernel (L) of
:mod:`langevin.federated.kernels` on every client, then a communication step. Notation:
clients ``c = 1..C`` with ``n_c`` rows, ``N = Σ n_c``, weights ``p_c = n_c/N``, prior
``p(θ)``, per-datum likelihood ``p(d_i | θ)``, local log-likelihood
``ℓ_c(θ) = Σ_{i∈c} log p(d_i | θ)``; the target is the pooled posterior
``π(θ) ∝ p(θ) Π_c exp ℓ_c(θ)``. ``b`` is the minibatch size (indices with replacement).

**DSGLD** — distributed SGLD (Ahn, Shahbaba & Welling, ICML 2014), in the form of
El Mekkaoui, Mesquita, Blomstedt & Kaski (UAI 2021, eq. 3). A chain visits one client per
round, chosen with probability ``f_c``, and takes ``K`` SGLD steps there with

    ĝ_c(θ) = ∇log p(θ) + (n_c / (f_c b)) Σ_{i∈B} ∇log p(d_i | θ),   θ' = θ + h ĝ_c + √(2h) ξ

(``h = ε/2`` in Welling & Teh's ε). Unbiased for one step, but with ``K > 1`` the chain
drifts towards the client's own posterior between visits: on non-IID data its bias and
variance grow with ``K``.

**FSGLD** — federated SGLD with conducive gradients (El Mekkaoui et al. 2021, eq. 6–8).
Each client fits once a surrogate ``q_c(θ) ≈ exp ℓ_c(θ)``, Gaussian here,
``log q_c(θ) = −½ (θ − μ_c)ᵀ P_c (θ − μ_c)`` (:func:`fit_surrogates`: a Laplace fit), and
shares ``(μ_c, P_c)``. On client ``s`` the chain adds the conducive gradient

    g_cond,s(θ) = Σ_k ∇log q_k(θ) − (1/f_s) ∇log q_s(θ),     E_s[g_cond,s] = 0,

which corrects the drift towards the client's own posterior: if every ``q_k`` is exact,
``ĝ_s + g_cond,s = ∇log π(θ) + (minibatch noise)`` whatever ``s`` is, so FSGLD is SGLD on the
pooled posterior for any number of local steps ``K`` (their Prop. 2 and §4.1's toy).

*Client schedule.* ``f_c = 1/C`` (the official code's choice). Each round every chain moves
to a client drawn uniformly, all chains of a layer together by a uniformly random
permutation, so each client hosts one chain of each layer at a time and no compute is idle:
``chains`` (a multiple of ``C``) chains run on ``C`` clients. Each chain's client sequence
is i.i.d. uniform, as in the paper. With uniform ``f``, a surrogate fitted to
``ℓ_c + κ log p`` (any fixed κ, e.g. the prior share ``1/C`` that :func:`fit_surrogates` uses
to keep a local fit proper) gives the same conducive gradient as one fitted to ``ℓ_c``:
the ``κ ∇log p`` terms cancel in ``Σ_k − C·(term of s)``.

**FA-LD** — federated averaging Langevin dynamics (Deng, Zhang, Ma, Song & Lin,
arXiv:2112.05120, UAI 2024, Alg. 1). With ``f^c = −log p − ℓ_c/p_c`` (so
``Σ_c p_c f^c = −log π``), temperature ``T``, learning rate ``η``:

    β^c_{k+1} = x^c_k − η ∇f̃^c(x^c_k) + √(2ηT/p_c) ξ^c_k           (independent noise)
    β^c_{k+1} = x^c_k − η ∇f̃^c(x^c_k) + √(2ηT) ξ_k                 (correlated noise)

and every ``K`` steps ``x^c = x := Σ_c p_c β^c`` for all clients (the server averages and
broadcasts). Both noises give the averaged iterate the variance ``2ηT`` per step. Partial
participation (their §4.3; Li, Huang, Yang, Wang & Zhang, ICLR 2020, schemes I and II):
scheme I samples ``S`` clients with replacement with probabilities ``p_c`` and averages
them uniformly, ``x = (1/S) Σ_{c∈S_k} β^c``; scheme II samples ``S`` clients uniformly without
replacement, ``x = Σ_{c∈S_k} (C/S) p_c β^c`` (its weights sum to 1 only in expectation unless
the ``p_c`` are equal: the scheme is meant for balanced clients). Every client takes the
local steps; only the sampled ones are averaged (equal in law to only they computing).

*Interpolated noise* (Deng et al.'s Alg. 1, eq. 7, and Plassier, Durmus & Moulines,
AISTATS 2023): ``correlation = ρ ∈ [0, 1]`` gives client ``c`` the noise
``√(2ηT) (ρ ζ + √((1−ρ²)/p_c) ξ_c)``, ``ζ`` shared: ρ = 0 is the independent scheme, ρ = 1
the correlated one, and the averaged noise keeps variance ``2ηT`` for every ρ (Plassier
et al.'s privacy parameter τ is ρ², with step ``γ = bη`` and ``p_c = 1/b``: their
``√(τ/b) ξ_common + √(1−τ) ξ_i``).

What was checked against the papers: the DSGLD/FSGLD estimators and the conducive term
against El Mekkaoui et al.'s equations and their official notebook (AaltoPML/
Federated-SGLD, "non-IID data and delayed communication"); FA-LD's local update (eq. 7),
the synchronisation (eq. 3), the noise scalings and the participation schemes (§4.4 and
App. D.1: scheme I uniform average of S draws ∝ p_c, scheme II (N/S) p_c weights, stated
for balanced clients) against Deng et al.'s UAI 2024 paper (PMLR 244); the interpolation
against Plassier et al.'s code (fald_np.py). Deng et al.'s W2 bound (Thm 4.10) has an extra
bias term under partial participation, ∝ √(C_S (ρ² + N(1 − ρ²))/S), that does not vanish
as η → 0: measured in ``benchmarks/federated_rand_hie.py``. See docs/federated.md.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = ["DSGLD", "FSGLD", "FALD", "GaussianSurrogates", "fit_surrogates"]


def _check_int(owner: str, argname: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(f"{owner}: {argname} must be an int >= {least}; got {value!r}")
    return int(value)


def _check_real(owner: str, argname: str, value: Any, lo: float | None = None,
                hi: float | None = None, positive: bool = False) -> float:  # fmt: skip
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {argname} must be a float; got {value!r}")
    v = float(value)
    ok = np.isfinite(v) and (not positive or v > 0)
    ok = ok and (lo is None or v >= lo) and (hi is None or v <= hi)
    if not ok:
        rng = "positive" if positive else f"in [{lo}, {hi}]"
        raise ValueError(f"{owner}: {argname} must be finite and {rng}; got {value!r}")
    return v


class GaussianSurrogates(NamedTuple):
    """Client surrogates ``q_c = N(μ_c, P_c⁻¹)`` (un-normalised, as likelihood factors).

    Attributes:
        means: ``(C, d)`` the ``μ_c``. precisions: ``(C, d, d)`` the ``P_c``.
        prior_fraction: the share κ of ``log p`` the fit included (informational).
    """

    means: np.ndarray
    precisions: np.ndarray
    prior_fraction: float = 0.0

    def check(self, n_clients: int, dim: int) -> GaussianSurrogates:
        m = np.asarray(self.means, dtype=np.float64)
        p = np.asarray(self.precisions, dtype=np.float64)
        if m.shape != (n_clients, dim) or p.shape != (n_clients, dim, dim):
            raise ValueError(
                f"surrogates: means must be ({n_clients}, {dim}) and precisions "
                f"({n_clients}, {dim}, {dim}); got {m.shape} and {p.shape}"
            )
        if not (np.all(np.isfinite(m)) and np.all(np.isfinite(p))):
            raise ValueError("surrogates: means and precisions must be finite")
        return GaussianSurrogates(m, 0.5 * (p + np.swapaxes(p, 1, 2)), self.prior_fraction)


@dataclass(frozen=True)
class _Algorithm:
    step_size: float
    local_steps: int = 1
    batch_size: int | None = 32

    conducive = False
    name = "algorithm"

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _check_real(owner, "step_size", self.step_size, positive=True)
        _check_int(owner, "local_steps", self.local_steps, 1)
        if self.batch_size is not None:
            _check_int(owner, "batch_size", self.batch_size, 1)

    @property
    def kind(self) -> str:
        return "fald" if isinstance(self, FALD) else "dsgld"


@dataclass(frozen=True)
class DSGLD(_Algorithm):
    """Distributed SGLD (the baseline that drifts under delayed communication).

    Args:
        step_size: h (Welling & Teh's ε = 2h).
        local_steps: K, SGLD steps on a client between moves (the paper's delay).
        batch_size: b (indices with replacement from the client's rows); None: the whole
            shard (then DSGLD is a full-gradient walk on each client's own rescaled posterior).

    Reference: Ahn, S., Shahbaba, B. and Welling, M. (2014). Distributed stochastic gradient
    MCMC. ICML. El Mekkaoui, K., Mesquita, D., Blomstedt, P. and Kaski, S. (2021).
    Federated stochastic gradient Langevin dynamics. UAI.
    """

    name = "DSGLD"


@dataclass(frozen=True)
class FSGLD(_Algorithm):
    """Federated SGLD with conducive gradients from Gaussian surrogates.

    Args:
        surrogates: :class:`GaussianSurrogates` of every client; None fits them with
            :func:`fit_surrogates` (a Laplace fit per client, before sampling).
        Others as :class:`DSGLD`.

    Reference: El Mekkaoui, K., Mesquita, D., Blomstedt, P. and Kaski, S. (2021). Federated
    stochastic gradient Langevin dynamics. UAI.
    """

    surrogates: GaussianSurrogates | None = None

    conducive = True
    name = "FSGLD"


@dataclass(frozen=True)
class FALD(_Algorithm):
    """Federated averaging Langevin dynamics.

    Args:
        step_size: η, the learning rate of every local step.
        local_steps: K, local steps between synchronisations.
        batch_size: b per client (None: full-shard gradients).
        noise: ``"independent"`` (√(2ηT/p_c) ξ_c) or ``"correlated"`` (√(2ηT) ξ, shared).
        correlation: ρ ∈ [0, 1] interpolating the two (Deng et al.'s ρ, eq. 7: shared
            noise √(2ηTρ²) ζ plus own √(2ηT(1−ρ²)/p_c) ξ_c); overrides ``noise`` when given.
        participation: S, clients averaged per round (None: all).
        scheme: ``"I"`` (S draws with replacement ∝ p_c, uniform average) or ``"II"`` (S
            distinct clients uniformly, weights (C/S) p_c).
        weights: the ``p_c`` (default ``n_c/N``; must sum to 1).
        temperature: T (1 for the Bayesian posterior).

    References: Deng, W., Zhang, Q., Ma, Y.-A., Song, Z. and Lin, G. (2024). On convergence
    of federated averaging Langevin dynamics. UAI (arXiv:2112.05120). Plassier, V., Durmus, A.
    and Moulines, E. (2023). Federated averaging Langevin dynamics: toward a unified theory
    and new algorithms. AISTATS. Li, X., Huang, K., Yang, W., Wang, S. and Zhang, Z. (2020).
    On the convergence of FedAvg on non-IID data. ICLR.
    """

    noise: str = "independent"
    correlation: float | None = None
    participation: int | None = None
    scheme: str = "I"
    weights: tuple | None = None
    temperature: float = 1.0

    name = "FALD"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.noise not in ("independent", "correlated"):
            raise ValueError(f"FALD: noise must be 'independent' or 'correlated'; got "
                             f"{self.noise!r}")  # fmt: skip
        if self.correlation is not None:
            _check_real("FALD", "correlation", self.correlation, 0.0, 1.0)
        if self.participation is not None:
            _check_int("FALD", "participation", self.participation, 1)
        if self.scheme not in ("I", "II"):
            raise ValueError(f"FALD: scheme must be 'I' or 'II'; got {self.scheme!r}")
        _check_real("FALD", "temperature", self.temperature, positive=True)

    @property
    def rho(self) -> float:
        if self.correlation is not None:
            return float(self.correlation)
        return 1.0 if self.noise == "correlated" else 0.0

    def client_weights(self, clients) -> np.ndarray:
        if self.weights is None:
            return clients.weights
        w = np.asarray(self.weights, dtype=np.float64)
        if w.shape != (clients.n_clients,) or np.any(w <= 0) or not np.all(np.isfinite(w)):
            raise ValueError(f"FALD: weights must be {clients.n_clients} positive numbers; got "
                             f"shape {w.shape}")  # fmt: skip
        if abs(w.sum() - 1.0) > 1e-9:
            raise ValueError(f"FALD: weights must sum to 1; they sum to {w.sum()!r}")
        return w


# -- the surrogate fit --------------------------------------------------------------------------
def _host_functions(target, backend: str | None):
    """NumPy-callable ``loglik(x, idx, data)`` and ``logprior(x, data)``, each ``(v, g)``."""
    backend = target._host_backend(backend)
    if backend == "numba":
        lik = target.numba_functions["loglik"]
        prior = target.numba_functions["logprior"]

        def loglik(x, idx, data):
            v, g = lik(x, idx, data)
            return float(v), np.asarray(g, dtype=np.float64)

        def logprior(x, data):
            v, g = prior(x, data)
            return float(v), np.asarray(g, dtype=np.float64)

        return loglik, logprior, lambda d: d
    import jax
    import jax.numpy as jnp

    from langevin.targets.capabilities import SLOTS
    from langevin.targets.data_targets import _jax_wrappers

    fns = _jax_wrappers(target._jax_given)
    lik_j = jax.jit(fns[SLOTS.index("loglik")])
    prior_j = jax.jit(fns[SLOTS.index("logprior")])

    def loglik(x, idx, data):
        v, g = lik_j(jnp.asarray(x), jnp.asarray(idx), data)
        return float(v), np.asarray(g, dtype=np.float64)

    def logprior(x, data):
        v, g = prior_j(jnp.asarray(x), data)
        return float(v), np.asarray(g, dtype=np.float64)

    return loglik, logprior, lambda d: jax.tree_util.tree_map(jnp.asarray, d)


def fit_surrogates(
    target,
    clients,
    *,
    prior_fraction: float | None = None,
    backend: str | None = None,
    max_iter: int = 500,
    tol: float = 1e-9,
) -> GaussianSurrogates:
    """Laplace fits of every held client's local likelihood: FSGLD's surrogates.

    For client ``c``: ``μ_c = argmax_θ ℓ_c(θ) + κ log p(θ)`` (SciPy's L-BFGS-B on the full
    shard), ``P_c = −∇²[ℓ_c + κ log p](μ_c)`` by central differences of the gradient
    (symmetrised; eigenvalues below ``1e-10 · max`` raised to it, with a warning). The prior
    share κ (default ``1/C``) keeps the local problem proper when a shard alone does not
    identify θ (a shard with one label in logistic regression); with FSGLD's uniform client
    choice it cancels from the conducive gradient (:mod:`langevin.federated.algorithms`).

    Args:
        target: the pooled :class:`~langevin.targets.data_targets.DataTarget` (its functions).
        clients: :class:`~langevin.federated.clients.Clients`; clients whose shard is not
            held here get NaN rows (exchange them between processes).
        prior_fraction: κ >= 0 (default ``1/C``).
        backend: which of the target's forms evaluates it (default Numba when present).

    Returns:
        :class:`GaussianSurrogates` with ``(C, d)`` means and ``(C, d, d)`` precisions.
    """
    from scipy.optimize import minimize

    C = clients.n_clients
    kappa = 1.0 / C if prior_fraction is None else _check_real(
        "fit_surrogates", "prior_fraction", prior_fraction, 0.0)  # fmt: skip
    loglik, logprior, convert = _host_functions(target, backend)
    d = target.dim
    x0 = (np.zeros(d) if target.initial_position is None
          else np.asarray(target.initial_position, dtype=np.float64))  # fmt: skip
    means = np.full((C, d), np.nan)
    precs = np.full((C, d, d), np.nan)
    for c in sorted(clients.shards):
        data = convert(clients.shards[c])
        idx = np.arange(clients.sizes[c], dtype=np.int64)

        def grad(x, data=data, idx=idx):
            v, g = loglik(x, idx, data)
            pv, pg = logprior(x, data)
            return v + kappa * pv, g + kappa * pg

        res = minimize(lambda x: tuple(-a for a in grad(x)), x0, jac=True, method="L-BFGS-B",
                       options={"maxiter": max_iter, "gtol": tol})  # fmt: skip
        mu = np.asarray(res.x, dtype=np.float64)
        H = np.empty((d, d))
        for j in range(d):
            e = np.zeros(d)
            e[j] = 1e-4 * max(1.0, abs(mu[j]))
            H[:, j] = (grad(mu + e)[1] - grad(mu - e)[1]) / (2 * e[j])
        P = -0.5 * (H + H.T)
        w, V = np.linalg.eigh(P)
        floor = 1e-10 * max(w.max(), 1e-300)
        if w.min() < floor:
            warnings.warn(f"fit_surrogates: client {c}'s local precision is not positive "
                          f"definite (eigenvalue {w.min():.3g}); raised to {floor:.3g}",
                          RuntimeWarning, stacklevel=2)  # fmt: skip
            P = (V * np.maximum(w, floor)) @ V.T
        means[c] = mu
        precs[c] = P
    return GaussianSurrogates(means, precs, kappa)
