"""The local step every federated algorithm runs on its clients: one kernel, written once.

A client ``c`` holds its shard (in the kernel's per-member ``params``, so that on a device
mesh the shard lives on the client's device) and takes ordinary kernel steps

    x' = x + h g_c(x) + √(2h) (a_c ξ_c + b ζ),                                     (L)

    g_c(x) = s_p ∇log p(x) + s_c Σ_{i∈B} ∇log p(d_i | x) + r_c − Q_c x,

with ξ_c ~ N(0, I) the client's own normals, ζ ~ N(0, I) normals shared by the clients of one
federation (the ``common`` noise field: the same numbers in every client's noise), ``B`` the
minibatch (``b`` indices drawn uniformly **with replacement** from the client's ``n_c`` rows:
``i = ⌊u n_c⌋`` from uniforms ``u``, so every client draws from its own size in one compiled
program), or the whole shard (the full-batch variants). The coefficients are per-client
runtime values (:class:`FedParams`); each algorithm of :mod:`langevin.federated.algorithms`
chooses them:

* DSGLD (Ahn, Shahbaba & Welling 2014; El Mekkaoui et al. 2021, §3): ``s_p = 1``,
  ``s_c = N_c/(f_c b)``, ``a_c = 1``, ``b = 0``, ``Q_c = 0``, ``r_c = 0``.
* FSGLD (El Mekkaoui et al. 2021): DSGLD plus the conducive gradient of Gaussian surrogates,
  ``Q_c = Σ_k P_k − P_c/f_c``, ``r_c = Σ_k P_k μ_k − P_c μ_c/f_c``.
* FA-LD (Deng et al. 2021/2024): ``s_p = 1``, ``s_c = n_c/(p_c b)`` (``1/p_c`` full-batch),
  ``a_c = √(T(1−ρ)/p_c)``, ``b = √(Tρ)`` (T the temperature, ρ the noise correlation).

The state keeps no gradient: the gradient is taken at the current position at the start of
each step, so the communication step (a population step between engine calls) may replace
positions without re-evaluating anything. The state's ``logdensity`` is the step's estimate
``s_p log p(x) + s_c Σ_B log p(d_i | x)`` at the position the step *started* from (a noisy
diagnostic, as for every SG-MCMC kernel).

Full-shard sums with padding: a shard padded to ``n_max`` rows by copies of its row 0 gives
``Σ_{i<n_c} ℓ_i = Σ_{i<n_max} ℓ_i − (n_max − n_c) ℓ_0`` (exact up to round-off).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from langevin.backends.portable import bind_globals, portable
from langevin.kernels.base import Flag, Kernel, Normal, Scalar, Uniform, Vector
from langevin.targets.capabilities import SLOTS

__all__ = ["FedState", "FedInfo", "FedParams", "local_kernel"]

xp: Any = None


class FedState(NamedTuple):
    position: Vector
    logdensity: Scalar


class FedInfo(NamedTuple):
    acceptance_rate: Scalar
    diverging: Flag


class FedNoise(NamedTuple):
    batch: Vector  # Uniform((b,)): minibatch i = ⌊u n_c⌋
    normal: Vector
    common: Vector


class FedFullNoise(NamedTuple):
    normal: Vector
    common: Vector


class FedParams(NamedTuple):
    """Per-client coefficients of (L) and the client's padded shard."""

    shard: Any  # a ShardK NamedTuple of the client's (padded) data arrays
    n_local: Any  # n_c (float)
    pad: Any  # n_max − n_c (float)
    prior_scale: Any  # s_p
    lik_scale: Any  # s_c
    noise_own: Any  # a_c
    noise_common: Any  # b
    cond_prec: Any  # Q_c (d, d)
    cond_shift: Any  # r_c (d,)


# ``with_data(target, data)``: the target's form tuple ``(tag, f_0, …, f_K, data)`` with the
# client's shard as its data. Generated for the number of capability slots (a constant).
_N_FORM = len(SLOTS) + 2
_scope: dict[str, Any] = {}
exec(
    "def with_data(target, data):\n    return ("
    + ", ".join(f"target[{i}]" for i in range(_N_FORM - 1))
    + ", data)\n",
    _scope,
)
with_data = portable(_scope["with_data"])
with_data.__module__ = __name__


@portable
def minibatch_sum(target, x, noise, params):
    """``Σ_{i∈B} log p(d_i | x)`` and gradient, ``i = ⌊u n_c⌋`` (with replacement)."""
    n = params.n_local
    idx = xp.to_int(xp.minimum(xp.floor(noise.batch * n), n - 1.0))
    return xp.loglik(target, x, idx)


@portable
def full_sum(target, x, noise, params):
    """The whole shard: all ``n_max`` padded rows minus the ``pad`` copies of row 0."""
    n_max = params.shard[0].shape[0]
    v_all, g_all = xp.loglik(target, x, xp.arange(n_max))
    v_0, g_0 = xp.loglik(target, x, xp.arange(1))
    return v_all - params.pad * v_0, g_all - params.pad * g_0


@portable
def no_conducive(x, params):
    return 0.0 * x


@portable
def gaussian_conducive(x, params):
    """``r_c − Q_c x``: the conducive gradient of Gaussian surrogates (FSGLD)."""
    return params.cond_shift - xp.dot(params.cond_prec, x)


@portable
def fed_init(position, noise, params, target):
    return FedState(position, 0.0 * xp.sum(position))


@portable
def fed_step(state, noise, step_size, params, target):
    """Step (L) of the module docstring."""
    x = state.position
    local = with_data(target, params.shard)
    lp, gp = xp.logprior(local, x)
    ll, gl = likelihood_sum(local, x, noise, params)  # noqa: F821 (bound per variant)
    g = params.prior_scale * gp + params.lik_scale * gl + conducive(x, params)  # noqa: F821
    kick = params.noise_own * noise.normal + params.noise_common * noise.common
    x_new = x + step_size * g + xp.sqrt(2.0 * step_size) * kick
    logdensity = params.prior_scale * lp + params.lik_scale * ll
    bad = xp.logical_not(xp.isfinite(logdensity) & xp.all_finite(x_new))
    return FedState(x_new, logdensity), FedInfo(1.0 + 0.0 * logdensity, bad)


@dataclass(frozen=True)
class _FedLocal(Kernel):
    """The local step (L) (abstract; one subclass per gradient and conducive variant)."""

    step_size: float
    batch_size: int | None = None

    exact: ClassVar[bool] = False
    bias_order: ClassVar[float] = 1.0
    requires: ClassVar[frozenset[str]] = frozenset({"loglik", "logprior"})
    target_fields: ClassVar[tuple[str, ...]] = ()
    logdensity_is_estimate: ClassVar[bool] = True
    State = FedState
    Info = FedInfo
    init_math = staticmethod(fed_init)

    def noise(self, dim: int):
        if self.batch_size is None:
            return FedFullNoise(Normal((dim,)), Normal((dim,)))
        return FedNoise(Uniform((self.batch_size,)), Normal((dim,)), Normal((dim,)))

    @classmethod
    def example(cls) -> Kernel:
        return cls(1e-3, None if cls.full else 2)


def _variant(name: str, full: bool, conducive: bool) -> type:
    step = bind_globals(fed_step, likelihood_sum=full_sum if full else minibatch_sum,
                        conducive=gaussian_conducive if conducive else no_conducive)  # fmt: skip
    cls = dataclass(frozen=True)(type(name, (_FedLocal,), {
        "__module__": __name__, "__qualname__": name, "full": full, "conducive": conducive,
        "Noise": FedFullNoise if full else FedNoise, "step_math": staticmethod(step),
        "__doc__": f"Local step (L): {'full shard' if full else 'minibatch'}, "
                   f"{'Gaussian conducive term' if conducive else 'no conducive term'}.",
    }))  # fmt: skip
    globals()[name] = cls
    return cls


_VARIANTS = {
    (False, False): _variant("FedLocalMinibatch", False, False),
    (True, False): _variant("FedLocalFull", True, False),
    (False, True): _variant("FedLocalMinibatchConducive", False, True),
    (True, True): _variant("FedLocalFullConducive", True, True),
}


def local_kernel(step_size: float, batch_size: int | None, conducive: bool) -> Kernel:
    """The local-step kernel: minibatch of ``batch_size`` (None: the whole shard), with or
    without the Gaussian conducive term."""
    return _VARIANTS[(batch_size is None, bool(conducive))](step_size, batch_size)
