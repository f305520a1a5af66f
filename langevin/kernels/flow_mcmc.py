"""Flow-proposal MCMC (the flowMC scheme): independent proposals from a normalizing flow mixed
with local MALA steps, both Metropolis–Hastings corrected, the flow retrained during warm-up.

Gabrié, Rotskoff & Vanden-Eijnden (2022) and Wong, Gabrié & Foreman-Mackey (2023, flowMC)
alternate *local* gradient-based steps, which explore a mode, with *global* independent
Metropolis–Hastings proposals from a normalizing flow ``q = f_# N(0, I)`` trained on the
chain's own draws, which jump between modes and across badly scaled regions. One transition
here is one of each:

1. **local** — a MALA step (Roberts & Tweedie 1996) with step size ``h``:
   ``y = x + h ∇log π(x) + √(2h) ξ``, accepted with the usual MALA ratio
   (:func:`langevin.kernels.overdamped.mala_step`);
2. **global** — ``u ∼ N(0, I)``, ``y = f(u)``, with the flow's density
   ``log q(y) = log φ(u) − log|det J_f(u)|``, accepted with the independence-sampler ratio

       log r = log π(y) − log π(x) + log q(x) − log q(y),

   where ``log q(x) = log φ(f⁻¹(x)) − log|det J_f(f⁻¹(x))|`` is kept in the state (the
   coupling layers' inverses are exact, :mod:`langevin.flows.layers`).

Each half leaves ``π`` invariant, so their composition does: the kernel is exact for any
flow. The flow is a runtime parameter (a pytree of arrays in ``params``), so a retrained
flow compiles nothing. Warm-up adapts the MALA step size by dual averaging (toward the
local acceptance 0.574) and, through the between-chunk component :class:`FlowRetraining`,
refits the flow by maximum likelihood (forward KL, :func:`langevin.flows.fit_forward_kl`,
on JAX with optax) to the warm-up draws of all chains pooled, ``retrain`` times; the flow is
fixed after warm-up, so the kept draws come from a fixed exact kernel.

Per transition: two target evaluations with gradient (the MALA proposal and the flow
proposal), one flow forward pass and one flow inverse pass.

The flow's parameters are held *stacked* (:class:`StackedFlow`: every block's arrays along a
leading block axis, conditioners with two hidden layers) because per-chain kernel parameters
are batched as NamedTuples of arrays on both backends; :func:`stack_flow` and
:func:`unstack_flow` convert from and to :class:`langevin.flows.RealNVP`.

References:
    Gabrié, M., Rotskoff, G. M. and Vanden-Eijnden, E. (2022). Adaptive Monte Carlo augmented
    with normalizing flows. PNAS 119(10), e2109420119.
    Wong, K. W. K., Gabrié, M. and Foreman-Mackey, D. (2023). flowMC: Normalizing flow
    enhanced sampling package for probabilistic inference in JAX. JOSS 8(83), 5021.
    Roberts, G. O. and Tweedie, R. L. (1996). Exponential convergence of Langevin
    distributions and their discrete approximations. Bernoulli 2(4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from langevin.adaptation.base import WarmupComponent
from langevin.adaptation.dual_averaging import DualAveraging
from langevin.backends.portable import bind_globals, portable
from langevin.flows.layers import (
    AffineCoupling,
    CouplingBlock,
    ElementwiseAffine,
    Permutation,
    RealNVP,
    _coupling_parts,
    realnvp_init,
)
from langevin.flows.spline import (
    SplineBlock,
    SplineCoupling,
    SplineFlow,
    spline_flow_init,
    spline_forward_and_log_det,
    spline_inverse_and_log_det,
)
from langevin.kernels.base import (
    Flag,
    GradientState,
    Kernel,
    Normal,
    Scalar,
    Uniform,
    Vector,
)
from langevin.kernels.mh import metropolis_hastings
from langevin.kernels.overdamped import MALANoise, mala_step
from langevin.nn import MLP

__all__ = [
    "FlowProposal",
    "FlowProposalState",
    "FlowProposalNoise",
    "FlowProposalInfo",
    "FlowProposalParams",
    "FlowRetraining",
    "StackedFlow",
    "stack_flow",
    "unstack_flow",
    "SplineFlowProposal",
    "is_spline",
]

xp: Any = None


class StackedFlow(NamedTuple):
    """A :class:`~langevin.flows.RealNVP` with ``K`` blocks and conditioners ``d → h → h → 2d``
    (or a :class:`~langevin.flows.SplineFlow`, conditioners ``d → h → h → d(3B − 1)`` for
    ``B`` bins), its arrays stacked along a leading block axis (kernel params are NamedTuples
    of arrays)."""

    perm: Any  # (K, d) int
    inv_perm: Any  # (K, d) int
    mask: Any  # (K, d)
    w_in: Any  # (K, h, d)
    b_in: Any  # (K, h)
    w_hidden: Any  # (K, h, h)
    b_hidden: Any  # (K, h)
    w_out: Any  # (K, 2d, h)
    b_out: Any  # (K, 2d)
    activation: Any  # (3,)
    shift: Any  # (d,)
    log_scale: Any  # (d,)
    bound: Any  # (K, d): a spline flow's bounds B (zeros for a RealNVP, unused)


class FlowProposalParams(NamedTuple):
    flow: StackedFlow


class FlowProposalState(NamedTuple):
    position: Vector
    logdensity: Scalar
    grad: Vector
    log_q: Scalar  # the flow's log-density at the position


class FlowProposalNoise(NamedTuple):
    normal: Vector  # the MALA proposal's ξ
    uniform: Scalar  # the MALA acceptance
    base: Vector  # the flow proposal's u ~ N(0, I)
    flow_uniform: Scalar  # the flow proposal's acceptance


class FlowProposalInfo(NamedTuple):
    acceptance_rate: Scalar  # the local (MALA) acceptance probability: what warm-up tunes
    is_accepted: Flag  # the local move was accepted
    diverging: Flag
    flow_acceptance_rate: Scalar  # the global (flow) acceptance probability
    flow_accepted: Flag


def stack_flow(params: Any) -> StackedFlow:
    """A :class:`~langevin.flows.RealNVP` or :class:`~langevin.flows.SplineFlow` as a
    :class:`StackedFlow` (float64/int64 NumPy); its conditioners must have exactly two hidden
    layers (``realnvp_init(dim, K, (h, h))``, ``spline_flow_init(dim, K, (h, h))``)."""
    from langevin.flows.transformed import check_flow

    params = check_flow(params, argname="flow")
    if not isinstance(params, (RealNVP, SplineFlow)):
        raise TypeError("flow: FlowProposal takes a RealNVP or a SplineFlow (one coupling "
                        f"type); got {type(params).__name__}")  # fmt: skip
    spline = isinstance(params, SplineFlow)
    nets = [b.coupling.net for b in params.blocks]
    if len(nets[0].weights) != 3:
        raise ValueError(
            "flow: FlowProposal needs conditioners with exactly two hidden layers "
            f"(realnvp_init(dim, n_blocks, (h, h))); got {len(nets[0].weights) - 1}"
        )

    def stack(get):
        return np.ascontiguousarray(np.stack([get(b) for b in params.blocks]))

    return StackedFlow(
        perm=stack(lambda b: b.permutation.perm),
        inv_perm=stack(lambda b: b.permutation.inv_perm),
        mask=stack(lambda b: b.coupling.mask),
        w_in=stack(lambda b: b.coupling.net.weights[0]),
        b_in=stack(lambda b: b.coupling.net.biases[0]),
        w_hidden=stack(lambda b: b.coupling.net.weights[1]),
        b_hidden=stack(lambda b: b.coupling.net.biases[1]),
        w_out=stack(lambda b: b.coupling.net.weights[2]),
        b_out=stack(lambda b: b.coupling.net.biases[2]),
        activation=np.asarray(nets[0].activation, dtype=np.float64),
        shift=params.final.shift.copy(),
        log_scale=params.final.log_scale.copy(),
        bound=(
            stack(lambda b: b.coupling.bound)
            if spline
            else np.zeros((len(params.blocks), params.final.shift.shape[0]))
        ),
    )


def is_spline(s: StackedFlow) -> bool:
    """Whether a :class:`StackedFlow` holds spline couplings (its conditioners' output size
    is not ``2d``)."""
    return int(np.shape(s.w_out)[-2]) != 2 * int(np.shape(s.shift)[-1])


def unstack_flow(s: StackedFlow) -> Any:
    """The inverse of :func:`stack_flow` (one chain's :class:`StackedFlow`, host arrays): a
    :class:`~langevin.flows.RealNVP` or a :class:`~langevin.flows.SplineFlow`."""
    s = StackedFlow(*(np.asarray(a) for a in s))
    spline = is_spline(s)
    blocks = []
    for k in range(s.perm.shape[0]):
        net = MLP((s.w_in[k], s.w_hidden[k], s.w_out[k]), (s.b_in[k], s.b_hidden[k], s.b_out[k]),
                  s.activation)  # fmt: skip
        perm = Permutation(s.perm[k], s.inv_perm[k])
        if spline:
            blocks.append(SplineBlock(perm, SplineCoupling(s.mask[k], net, s.bound[k])))
        else:
            blocks.append(CouplingBlock(perm, AffineCoupling(s.mask[k], net)))
    from langevin.nn import params_to_numpy

    flow_type = SplineFlow if spline else RealNVP
    return params_to_numpy(flow_type(tuple(blocks), ElementwiseAffine(s.shift, s.log_scale)))


@portable
def _block(s, k):
    """Block ``k`` of a stacked flow as a :class:`CouplingBlock` (views, no copies)."""
    net = MLP((s.w_in[k], s.w_hidden[k], s.w_out[k]), (s.b_in[k], s.b_hidden[k], s.b_out[k]),
              s.activation)  # fmt: skip
    return CouplingBlock(Permutation(s.perm[k], s.inv_perm[k]), AffineCoupling(s.mask[k], net))


@portable
def stacked_forward_and_log_det(s, z):
    """``(f(z), log|det J_f(z)|)`` of a :class:`StackedFlow` (as
    :func:`langevin.flows.flow_forward_and_log_det`)."""
    x = z + 0.0
    log_det = 0.0 * z[0]
    for k in range(s.perm.shape[0]):
        b = _block(s, k)
        y = xp.take(x, b.permutation.perm)
        out = _coupling(b.coupling, y)
        x = out[0]
        log_det = log_det + out[1]
    return s.shift + xp.exp(s.log_scale) * x, log_det + xp.sum(s.log_scale)


@portable
def _coupling(c, y):
    """``(x, Σ s)`` of an affine coupling at ``y`` (:mod:`langevin.flows.layers`)."""
    parts = _coupling_parts(c, y)
    return y * xp.exp(parts[0]) + parts[1], xp.sum(parts[0])


@portable
def _coupling_inverse(c, x):
    """``(f⁻¹(x), log|det J_f|)`` of an affine coupling."""
    parts = _coupling_parts(c, x)
    return (x - parts[1]) * xp.exp(-parts[0]), xp.sum(parts[0])


@portable
def _spline_block(s, k):
    """Block ``k`` of a stacked spline flow as a :class:`~langevin.flows.SplineBlock`."""
    net = MLP((s.w_in[k], s.w_hidden[k], s.w_out[k]), (s.b_in[k], s.b_hidden[k], s.b_out[k]),
              s.activation)  # fmt: skip
    return SplineBlock(Permutation(s.perm[k], s.inv_perm[k]),
                       SplineCoupling(s.mask[k], net, s.bound[k]))  # fmt: skip


@portable
def stacked_log_density(s, x):
    """The stacked flow's density ``log q(x)`` (as :func:`langevin.flows.flow_log_density`)."""
    y = (x - s.shift) * xp.exp(-s.log_scale)
    log_det = xp.sum(s.log_scale)
    n = s.perm.shape[0]
    for j in range(n):
        b = _block(s, n - 1 - j)
        w, ld = _coupling_inverse(b.coupling, y)
        log_det = log_det + ld
        y = xp.take(w, b.permutation.inv_perm)
    d = x.shape[0]
    return -0.5 * xp.sum(y * y) - 0.9189385332046727 * d - log_det


@portable
def flow_proposal_init(position, noise, params, target):
    logdensity, grad = xp.value_and_grad(target, position)
    return FlowProposalState(position, logdensity, grad,
                             stacked_log_density(params.flow, position))  # fmt: skip


@portable
def flow_proposal_step(state, noise, step_size, params, target):
    """One local MALA step, then one independent flow proposal (module docstring)."""
    flow = params.flow
    local, local_info = mala_step(
        GradientState(state.position, state.logdensity, state.grad),
        MALANoise(noise.normal, noise.uniform),
        step_size,
        params,
        target,
    )
    log_q_local = stacked_log_density(flow, local.position)
    log_q_x = xp.select(local_info.is_accepted, log_q_local, state.log_q)
    # global: y = f(u), log q(y) = log φ(u) − log|det J_f(u)|
    u = noise.base
    y, log_det = stacked_forward_and_log_det(flow, u)
    d = u.shape[0]
    log_q_y = -0.5 * xp.sum(u * u) - 0.9189385332046727 * d - log_det
    logdensity, grad = xp.value_and_grad(target, y)
    log_ratio = logdensity - local.logdensity + log_q_x - log_q_y
    accepted, probability = metropolis_hastings(log_ratio, noise.flow_uniform)
    here = FlowProposalState(local.position, local.logdensity, local.grad, log_q_x)
    there = FlowProposalState(y, logdensity, grad, log_q_y)
    new = xp.select_tree(accepted, there, here)
    info = FlowProposalInfo(local_info.acceptance_rate, local_info.is_accepted,
                            local_info.diverging, probability, accepted)  # fmt: skip
    return new, info


# -- the same with spline couplings: the stacked functions with the layer functions rebound ----
def _renamed(fn: Any, name: str, **names: Any) -> Any:
    bound = bind_globals(fn, **names)
    bound.__qualname__ = bound.__name__ = name  # short: Numba's cache files are named after it
    return bound


_SPLINE = {"_block": _spline_block, "_coupling": spline_forward_and_log_det,
           "_coupling_inverse": spline_inverse_and_log_det}  # fmt: skip
stacked_spline_forward_and_log_det = _renamed(
    stacked_forward_and_log_det, "stacked_spline_forward_and_log_det", **_SPLINE
)
stacked_spline_log_density = _renamed(stacked_log_density, "stacked_spline_log_density",
                                      **_SPLINE)  # fmt: skip
_STACKED_SPLINE = {"stacked_forward_and_log_det": stacked_spline_forward_and_log_det,
                   "stacked_log_density": stacked_spline_log_density}  # fmt: skip
spline_flow_proposal_init = _renamed(flow_proposal_init, "spline_flow_proposal_init",
                                     **_STACKED_SPLINE)  # fmt: skip
spline_flow_proposal_step = _renamed(flow_proposal_step, "spline_flow_proposal_step",
                                     **_STACKED_SPLINE)  # fmt: skip


# -- warm-up: retraining the flow -----------------------------------------------------------------
class FlowRetraining(WarmupComponent):
    """Refits the flow to the pooled warm-up draws of all chains (forward KL, on JAX), at
    ``kernel.retrain`` evenly spaced warm-up boundaries (none when warm-up is under 50 steps);
    every chain gets the new flow. Draws of the first 20% of warm-up are left out (burn-in)."""

    def __init__(self, kernel, chains: int, dim: int, warmup: int) -> None:
        self.kernel, self.chains, self.dim, self.warmup = kernel, chains, dim, warmup
        n = int(getattr(kernel, "retrain", 0))
        if warmup < 50 or n < 1:
            self._boundaries: tuple[int, ...] = ()
        else:
            start = int(0.2 * warmup)
            span = warmup - start
            self._boundaries = tuple(sorted({start + (span * (k + 1)) // (n + 1)
                                             for k in range(n)}))  # fmt: skip
        self.buffer: list[np.ndarray] = []
        self.rounds = 0
        self.losses: list[float] = []

    @property
    def boundaries(self) -> tuple[int, ...]:
        return self._boundaries

    def initial_params(self, params):
        return params

    def observe(self, done: int, positions: np.ndarray) -> None:
        if not self._boundaries:
            return
        steps = positions.shape[1]
        keep = np.arange(steps) + done >= int(0.2 * self.warmup)
        if np.any(keep):  # (chains, steps, dim): the pooled order never depends on the chunks
            self.buffer.append(np.asarray(positions[:, keep], dtype=np.float64))

    def update(self, done: int, params):
        if done not in self._boundaries or not self.buffer:
            return params, None
        from langevin.flows.training import fit_forward_kl

        # step-major (step 0 of every chain, then step 1, ...): the most recent draws last
        draws = np.concatenate(self.buffer, axis=1).swapaxes(0, 1).reshape(-1, self.dim)
        draws = draws[np.all(np.isfinite(draws), axis=1)]
        cap = 4096
        if draws.shape[0] > cap:  # the most recent draws
            draws = draws[-cap:]
        current = unstack_flow(StackedFlow(*(np.asarray(a)[0] for a in params.flow)))
        new, history = fit_forward_kl(draws, current, steps=int(self.kernel.train_steps),
                                      learning_rate=float(self.kernel.learning_rate),
                                      seed=self.rounds, progress=False)  # fmt: skip
        self.rounds += 1
        self.losses.append(float(np.mean(history[-20:])))
        stacked = stack_flow(new)
        if not all(np.all(np.isfinite(a)) for a in stacked):
            return params, None  # a failed fit keeps the old flow
        per_chain = StackedFlow(*(np.ascontiguousarray(np.broadcast_to(a, (self.chains, *a.shape)))
                                  for a in stacked))  # fmt: skip
        return params._replace(flow=per_chain), None

    def result(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, np.ndarray]:
        """The pooled warm-up draws seen so far, the number of refits made (which seeds the
        next one) and their losses; the flow itself is in the run's per-chain params, which
        the checkpoint stores. A resumed run refits on the same draws with the same seed, so
        it gets the same flow (JAX's CPU training is deterministic)."""
        buffer = (np.concatenate(self.buffer, axis=1) if self.buffer
                  else np.zeros((self.chains, 0, self.dim)))  # fmt: skip
        return {
            "buffer": buffer,
            "rounds": np.asarray(self.rounds, dtype=np.int64),
            "losses": np.asarray(self.losses, dtype=np.float64),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        buffer = np.asarray(state["buffer"], dtype=np.float64).reshape(self.chains, -1, self.dim)
        self.buffer = [buffer] if buffer.shape[1] else []
        self.rounds = int(state["rounds"])
        self.losses = [float(v) for v in np.asarray(state["losses"]).ravel()]


# -- the kernel ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlowProposal(Kernel):
    """Flow-proposal MCMC (flowMC's scheme): a MALA step then an independent MH proposal from
    a normalizing flow, per transition; exact for any flow (module docstring).

    Args:
        step_size: the MALA step size ``h`` (``x + h∇log π + √(2h) ξ``); the initial value
            when warm-up adapts it.
        flow: the proposal flow: a :class:`~langevin.flows.RealNVP` whose conditioners have
            two hidden layers (``langevin.flows.realnvp_init(dim, K, (h, h))``, possibly
            fitted first with ``fit_reverse_kl``), a :class:`~langevin.flows.SplineFlow`
            likewise (``spline_flow_init(dim, K, (h, h))``: the kernel is then a
            :class:`SplineFlowProposal`, compiled with the spline couplings), or a
            :class:`StackedFlow`.
        retrain: how many times warm-up refits the flow to the chains' draws (0: never).
        train_steps: optimiser steps per refit.
        learning_rate: Adam's rate for the refits.

    Example:
        >>> import langevin
        >>> from langevin.flows import realnvp_init
        >>> kernel = langevin.kernels.FlowProposal(0.1, flow=realnvp_init(2, 2, (8, 8)))
        >>> kernel.n_grad_per_step
        2
    """

    step_size: float
    flow: Any = field(default=None, repr=False)
    retrain: int = 3
    train_steps: int = 300
    learning_rate: float = 3e-3

    State = FlowProposalState
    Info = FlowProposalInfo
    Noise = FlowProposalNoise
    init_math = staticmethod(flow_proposal_init)
    step_math = staticmethod(flow_proposal_step)
    exact = True
    bias_order = None
    adaptation = (DualAveraging, FlowRetraining)
    target_acceptance = 0.574
    #: target evaluations with gradient per transition (for budgets at equal cost)
    n_grad_per_step = 2

    def __new__(cls, *args: Any, **kwargs: Any) -> FlowProposal:
        # a spline flow's kernel is the subclass whose step functions use spline couplings
        flow = kwargs.get("flow", args[1] if len(args) > 1 else None)
        spline = isinstance(flow, SplineFlow) or (isinstance(flow, StackedFlow)
                                                  and is_spline(flow))  # fmt: skip
        if cls in (FlowProposal, SplineFlowProposal):
            cls = SplineFlowProposal if spline else FlowProposal
        return object.__new__(cls)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.flow is None:
            raise TypeError("FlowProposal: flow is required: FlowProposal(step_size, "
                            "flow=langevin.flows.realnvp_init(dim, 4, (32, 32)))")  # fmt: skip
        flow = self.flow if isinstance(self.flow, StackedFlow) else stack_flow(self.flow)
        if isinstance(self.flow, StackedFlow):
            flow = stack_flow(unstack_flow(flow))  # checks it
        object.__setattr__(self, "flow", flow)
        for name in ("retrain", "train_steps"):
            v = getattr(self, name)
            least = 0 if name == "retrain" else 1
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
                raise ValueError(f"FlowProposal: {name} must be an int >= {least}; got {v!r}")
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise ValueError(f"FlowProposal: learning_rate must be a positive float; got {lr!r}")

    @property
    def dim(self) -> int:
        return int(self.flow.shift.shape[0])

    def params(self) -> FlowProposalParams:
        return FlowProposalParams(self.flow)

    def noise(self, dim: int) -> FlowProposalNoise:
        if dim != self.dim:
            raise ValueError(f"FlowProposal: the flow has dimension {self.dim} but the target "
                             f"has dim={dim}")  # fmt: skip
        return FlowProposalNoise(Normal((dim,)), Uniform(()), Normal((dim,)), Uniform(()))

    def flow_params(self) -> Any:
        """The kernel's flow as :class:`~langevin.flows.RealNVP` (or ``SplineFlow``)
        parameters."""
        return unstack_flow(self.flow)

    @classmethod
    def example(cls) -> FlowProposal:
        return cls(step_size=0.1, flow=realnvp_init(2, 2, (4, 4), seed=0, init_scale=0.3),
                   retrain=0)  # fmt: skip

    # the conformance suite runs the kernel on its own target, with a flow of its dimension
    @staticmethod
    def example_target(dim: int):
        """A correlated Gaussian away from the origin, started at 0."""
        from langevin.targets.gaussians import gaussian

        rng = np.random.default_rng(5)
        q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        cov = q @ np.diag(np.geomspace(1.0, 0.2, dim)) @ q.T
        target = gaussian(dim, mean=0.5 * rng.standard_normal(dim), cov=0.5 * (cov + cov.T))
        target.initial_position = np.zeros(dim)
        return target

    @classmethod
    def for_conformance(cls, step_size: float, target) -> FlowProposal:
        flow = realnvp_init(target.dim, 2, (6, 6), seed=1, init_scale=0.3)
        return cls(step_size=step_size, flow=flow, retrain=0)


@dataclass(frozen=True)
class SplineFlowProposal(FlowProposal):
    """:class:`FlowProposal` with a :class:`~langevin.flows.SplineFlow` (rational-quadratic
    spline couplings): ``FlowProposal(step_size, flow=spline_flow_init(...))`` makes one. The
    same scheme and arguments; its compiled step uses the spline layers."""

    init_math = staticmethod(spline_flow_proposal_init)
    step_math = staticmethod(spline_flow_proposal_step)
    public_name = "FlowProposal"

    @classmethod
    def example(cls) -> FlowProposal:
        return cls(step_size=0.1, flow=spline_flow_init(2, 2, (4, 4), bins=3, seed=0,
                                                        init_scale=0.3), retrain=0)  # fmt: skip

    @classmethod
    def for_conformance(cls, step_size: float, target) -> FlowProposal:
        flow = spline_flow_init(target.dim, 2, (6, 6), bins=4, seed=1, init_scale=0.3)
        return cls(step_size=step_size, flow=flow, retrain=0)
