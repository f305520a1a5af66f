"""Structured SG-MCMC (Alexos, Boyd & Mandt 2022): SGLD on a structured mean-field family.

The parameters are split into M groups, ``θ = (θ_1, …, θ_M)``. Instead of the posterior,
the chain targets the optimal *structured mean-field* approximation ``q(θ) = Π_i q_i(θ_i)``,
whose factors are ``q_i*(θ_i) ∝ exp(E_{θ_{−i} ~ q_{−i}}[log p(θ_i, θ_{−i}, D)])``: group i
moves by SGLD on the modified energy

    Ũ_i(θ_i) = −E_{θ_{−i} ~ q_{−i}}[log p(D | θ_i, θ_{−i})] − log p(θ_i),

the expectation over the other groups estimated by one of *their own past samples*, kept
in a ring buffer of the last K positions (the chains are the empirical q_{−i}). Dropping
the cross-group dependence lets the chain mix faster where the posterior couples groups.

One step (ALGORITHMS.md §5; the reference implementation is ``mandt-lab/
Structured-SG-MCMC``, ``lvi/components.py``):

1. move ``θ' = θ + h ĝ + √(2h) ξ`` with the gradient ĝ computed at θ (below);
2. at θ', build L *composite* parameter vectors: in composite l, group j is *live* (its
   current value θ'_j) or takes the value of a stored sample, picked uniformly among the
   stored ones independently per composite and group;
3. ``ĝ_k = ∂_k log p(θ') + (n/b) w Σ_l live_{l,g(k)} ∂_k Σ_{i∈B} log p(d_i | composite_l)``:
   each group's likelihood gradient is taken only through the composites where it is
   live;
4. push θ' into the ring buffer.

* **Plain** (``dropout=False``): L = M composites, group l live in composite l only, w = 1:
  group i gets exactly the gradient of its modified energy at one Monte Carlo draw of
  θ_{−i}.
* **Dropout** (``dropout=True``): L composites (``composites``), each group live with
  probability p (``keep_prob``) independently, ``w = 1/(pL)``: the expected number of
  composites where a group is live is pL, so the average is unbiased (the paper's
  ``Σ_l ll_l/(pL)`` rescaling). Scales to many groups: L likelihood evaluations per step
  whatever M. In a composite where group i is live, each other group is live too with
  probability p, so group i's expected gradient is that of
  ``−E[log p(D | θ_i, θ_{−i}^{mix})] − log p(θ_i)`` with every other group at its current
  value w.p. p and at a stored sample w.p. 1 − p: the dropout variant interpolates between
  SGLD on the joint posterior (p = 1) and the mean field (p → 0).

Deviations from the reference code, chosen for correctness: every group moves every step
(prior gradient, likelihood gradient — zero when it is live in no composite — and noise);
the reference code leaves a group that is live in no composite untouched for that step,
which injects less noise than the drift needs (a colder chain). The noise variance is 2h
(the reference SGLD optimiser uses h, sampling exp(−2U); ALGORITHMS.md §4a). The prior is
evaluated at the current position: exact for priors that factorise over groups (the usual
case), which the mean-field fixed point assumes.

Exact law used in the tests: on a Gaussian posterior N(m, A⁻¹) the structured mean-field
solution is ``q_i = N(m_i, (A_ii)⁻¹)`` (same means, each group's covariance the inverse of
its diagonal precision block); the stored sample adds noise ``A_{i,−i}(θ̃_{−i} − m_{−i})``
to the gradient, which inflates the covariance by O(h) like SGLD's minibatch noise.

Randomness per step: minibatch ``Index(n, b)``; d normals; L×M uniforms (which stored
sample); L×M uniforms (dropout masks; drawn but unused by the plain variant).

Buffer: K positions per chain (``buffer_size``, a shape: each K is its own compiled
kernel class); memory K·d floats per chain. Building a composite costs O(d).

Reference: Alexos, A., Boyd, A. J. and Mandt, S. (2022). Structured stochastic gradient MCMC.
ICML (arXiv 2107.09028).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np

from langevin.backends.portable import portable
from langevin.kernels.base import Array, Index, Integer, Kernel, Normal, Scalar, Uniform, Vector
from langevin.kernels.sgmcmc import (
    SGInfo,
    _check_int,
    _check_real,
    _instance,
    batch_halves,
    diverged,
    example_data_target,
    noise_from_halves,
    scheduled_step,
)

__all__ = ["StructuredSGLD", "group_by_blocks", "group_randomly"]

xp: Any = None


class StructuredNoise(NamedTuple):
    batch: Vector
    normal: Vector
    pick: Vector  # Uniform((L, M))
    mask: Vector  # Uniform((L, M))


class StructuredInitNoise(NamedTuple):
    batch: Vector
    pick: Vector
    mask: Vector


class StructuredParams(NamedTuple):
    n_data: Any
    decay: Any
    gamma: Any
    groups: Any  # (dim,) int: the group of each coordinate
    dropout: Any  # 1.0 for the dropout variant, 0.0 for the plain one
    keep_prob: Any


class StructuredGradient(NamedTuple):
    logdensity: Any
    grad: Any
    noise: Any


#: Whether :func:`structured_gradient` estimates the gradient noise: a global bound per kernel
#: class (``gradient_noise=True`` picks the class whose copy has it True), so the compiled step
#: holds one of the two branches; False here, for the function called as it is.
with_noise = False


@portable
def _gather(k, acc, args):
    """acc[k] = buffer[rowsel[k], k]: coordinate k of its group's picked stored sample.

    A loop over coordinates (O(d), no allocation on Numba); a vectorised portable gather
    ``buffer[rowsel, arange(d)]`` would suit JAX on accelerators better."""
    buffer, rowsel = args
    return xp.set_at(acc, k, buffer[rowsel[k], k])


@portable
def structured_gradient(target, x, batch, pick, mask, buffer, count, params):
    """ĝ at ``x`` from L composites of live and stored values (module docstring); the
    gradient-noise estimate from the batch's two halves when the bound ``with_noise`` is
    True (two half-batch ``loglik`` calls per composite), else NaN (one whole-batch call)."""
    n_comp = pick.shape[0]
    n_groups = pick.shape[1]
    capacity = buffer.shape[0]
    stored = xp.minimum(count, capacity)
    b = batch.shape[0]
    one = 0.0 * x[0] + 1.0  # 1 in the position's dtype (float32 stays float32 on JAX)
    zero = 0.0 * one
    eye = xp.where(xp.arange(n_comp)[:, None] == xp.arange(n_groups)[None, :], one, zero)
    live_all = xp.where(params.dropout > 0.5, xp.where(mask < params.keep_prob, one, zero), eye)
    weight = xp.where(params.dropout > 0.5, one / (params.keep_prob * n_comp), one)
    g1 = xp.zeros_like(x)
    g2 = xp.zeros_like(x)
    ll = 0.0 * x[0]
    for c in range(n_comp):
        rows = xp.to_int(xp.floor(pick[c] * xp.maximum(stored, 1)))
        rowsel = xp.take(rows, params.groups)
        past = xp.fori_loop(0, x.shape[0], _gather, xp.zeros_like(x), (buffer, rowsel))
        live = xp.take(live_all[c], params.groups)
        # before anything is stored, every group uses its current value
        use_live = xp.where(stored == 0, live * zero + one, live)
        composite = use_live * x + (1.0 - use_live) * past
        if with_noise:  # a constant bound per class: the compiled step holds one branch
            first, second = batch_halves(batch)
            l1, h1 = xp.loglik(target, composite, first)
            l2, h2 = xp.loglik(target, composite, second)
            g1 = g1 + live * h1
            g2 = g2 + live * h2
            ll = ll + l1 + l2
        else:
            l1, h1 = xp.loglik(target, composite, batch)
            g1 = g1 + live * h1
            ll = ll + l1
    lp, gp = xp.logprior(target, x)
    scale = params.n_data / b
    grad = gp + scale * weight * (g1 + g2)
    if with_noise:
        noise = noise_from_halves(weight * g1, weight * g2, b, params.n_data)
    else:
        noise = xp.nan + 0.0 * ll
    return StructuredGradient(lp + scale * ll / n_comp, grad, noise)


@portable
def push(buffer, count, x):
    """The ring buffer with ``x`` written at row ``count mod K``."""
    capacity = buffer.shape[0]
    slot = count - (count // capacity) * capacity
    one = 0.0 * x[0] + 1.0  # in the position's dtype
    keep = xp.where(xp.arange(capacity) == slot, one, 0.0 * one)[:, None]
    return buffer * (1.0 - keep) + keep * x[None, :]  # exact: x lands unrounded


@portable
def structured_step_template(state, noise, step_size, params, target):
    """One structured-SGLD step (module docstring); the buffer holds past positions."""
    h = scheduled_step(step_size, state.iteration, params)
    x = state.position + h * state.grad + xp.sqrt(2.0 * h) * noise.normal
    est = structured_gradient(target, x, noise.batch, noise.pick, noise.mask, state.buffer,
                              state.count, params)  # fmt: skip
    buffer = push(state.buffer, state.count, x)
    info = SGInfo(1.0 + 0.0 * h, diverged(est.logdensity, x), h, est.noise)
    new = state_cls(x, est.logdensity, est.grad, state.iteration + 1, buffer,  # noqa: F821
                    state.count + 1)  # fmt: skip
    return new, info


@portable
def structured_init_template(position, noise, params, target):
    """State at ``position``: gradient with every group live, the buffer holding x."""
    empty = buffer_zeros(position)  # noqa: F821 (bound per buffer size)
    est = structured_gradient(target, position, noise.batch, noise.pick, noise.mask, empty, 0,
                              params)  # fmt: skip
    buffer = push(empty, 0, position)
    return state_cls(position, est.logdensity, est.grad, 0, buffer, 1)  # noqa: F821


_CLASSES: dict[tuple[int, bool], type] = {}


def _variant(capacity: int, noise: bool = False) -> type:
    """The kernel class with a ring buffer of ``capacity`` positions (a shape: one class,
    hence one compiled loop, per capacity), whose step estimates the gradient noise or not
    (``noise``: one class each, so the default step makes one whole-batch ``loglik`` call
    per composite instead of two half-batch calls)."""
    if (capacity, noise) in _CLASSES:
        return _CLASSES[capacity, noise]
    from langevin.backends.portable import bind_globals

    if (capacity, False) in _CLASSES:
        state_cls = _CLASSES[capacity, False].State
    else:
        state_cls = NamedTuple(  # noqa: UP014 (a class per buffer size, made at run time)
            f"StructuredState{capacity}",
            [("position", Vector), ("logdensity", Scalar), ("grad", Vector),
             ("iteration", Integer), ("buffer", Array(capacity, "dim")), ("count", Integer)],
        )  # fmt: skip
        state_cls.__module__ = __name__
        globals()[state_cls.__name__] = state_cls  # importable by name (pickling, Numba)
    gradient = bind_globals(structured_gradient, with_noise=noise)
    zeros = bind_globals(_buffer_zeros, capacity=capacity)
    step = bind_globals(structured_step_template, state_cls=state_cls,
                        structured_gradient=gradient)  # fmt: skip
    init = bind_globals(structured_init_template, state_cls=state_cls, buffer_zeros=zeros,
                        structured_gradient=gradient)  # fmt: skip
    name = f"StructuredSGLD_K{capacity}" + ("WithGradientNoise" if noise else "")
    cls = type(
        name,
        (StructuredSGLD,),
        {"State": state_cls, "init_math": staticmethod(init), "step_math": staticmethod(step),
         "buffer_capacity": capacity, "computes_gradient_noise": noise,
         "public_name": f"StructuredSGLD_K{capacity}", "__module__": __name__,
         # the class's own buffer size is its default (StructuredSGLD_K16(step_size=h))
         "__annotations__": {"buffer_size": int}, "buffer_size": capacity},
    )  # fmt: skip
    cls = dataclass(frozen=True)(cls)
    globals()[cls.__name__] = cls
    _CLASSES[capacity, noise] = cls
    return cls


@portable
def _buffer_zeros(position):
    # int zeros + the position's zeros: the position's dtype, whatever JAX's default float
    return (xp.arange(capacity) * 0)[:, None] + xp.zeros_like(position)[None, :]  # noqa: F821


def group_by_blocks(sizes: list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """Group ids for consecutive blocks: ``group_by_blocks([2, 3])`` is ``(0, 0, 1, 1, 1)``
    (e.g. one group per layer of a network)."""
    out: list[int] = []
    for g, s in enumerate(sizes):
        _check_int("group_by_blocks", f"sizes[{g}]", s, 1)
        out += [g] * int(s)
    return tuple(out)


def group_randomly(dim: int, n_groups: int, seed: int = 0) -> tuple[int, ...]:
    """Each coordinate assigned to one of ``n_groups`` groups at random (every group
    non-empty; the paper's random grouping)."""
    _check_int("group_randomly", "n_groups", n_groups, 1)
    _check_int("group_randomly", "dim", dim, n_groups)
    rng = np.random.default_rng(seed)
    ids = np.concatenate([np.arange(n_groups), rng.integers(0, n_groups, dim - n_groups)])
    return tuple(int(g) for g in rng.permutation(ids))


@dataclass(frozen=True)
class StructuredSGLD(Kernel):
    """Structured SGLD (Alexos, Boyd & Mandt 2022): samples the structured mean-field
    approximation over parameter ``groups``. **Biased** (by design: a mean-field law; plus
    SGLD's O(h)).

    Args:
        step_size: h > 0.
        groups: the group id of every coordinate (``0..M−1``, each used), e.g. from
            :func:`group_by_blocks` or :func:`group_randomly`.
        batch_size, n_data, decay, gamma: as :class:`~langevin.kernels.sgmcmc.SGLD`.
        buffer_size: K, the number of past positions kept per chain (default 200).
        dropout: use L random composites with live-probability ``keep_prob`` (default:
            False, M composites).
        composites: L for the dropout variant (default 4).
        keep_prob: p in (0, 1] for the dropout variant (default 0.5).
        gradient_noise: keyword-only; True to estimate tr Cov(ĝ) at every step (the info
            field ``gradient_noise``, from the batch's two halves: two half-batch
            ``loglik`` calls per composite); NaN when False, the default (one whole-batch
            call per composite). The chain is the same either way, up to summation order.

    Example:
        >>> kernel = StructuredSGLD(1e-3, groups=group_by_blocks([2, 2]), batch_size=10,
        ...                         n_data=100)
        >>> type(kernel).__name__
        'StructuredSGLD_K200'
    """

    step_size: float
    groups: tuple = ()
    batch_size: int = 32
    n_data: int | None = None
    decay: float = 1.0
    gamma: float = 0.0
    buffer_size: int = 200
    dropout: bool = False
    composites: int = 4
    keep_prob: float = 0.5
    gradient_noise: bool = field(default=False, kw_only=True)

    Info = SGInfo
    Noise = StructuredNoise
    exact: ClassVar[bool] = False
    bias_order: ClassVar[float] = 1.0
    requires: ClassVar[frozenset[str]] = frozenset({"loglik", "logprior"})
    target_fields: ClassVar[tuple[str, ...]] = ()
    #: The state's log-density is a minibatch estimate (noisy): a driver must not read a
    #: fall of it as a blow-up (proposed hook for the collapse check; see the report).
    logdensity_is_estimate: ClassVar[bool] = True
    buffer_capacity: ClassVar[int | None] = None
    #: Whether the compiled step estimates the gradient noise (the class decides; the
    #: constructor picks the class from ``gradient_noise``).
    computes_gradient_noise: ClassVar[bool] = False

    def __new__(cls, *args: Any, **kwargs: Any) -> StructuredSGLD:
        # buffer_size and gradient_noise=True/False pick the class; without the keyword
        # (unpickling, dataclasses.replace of other fields) a concrete class stays
        want = kwargs.get("gradient_noise")
        chosen = cls
        if cls is StructuredSGLD:
            size = kwargs.get("buffer_size", args[6] if len(args) > 6 else 200)
            _check_int("StructuredSGLD", "buffer_size", size, 1)
            chosen = _variant(int(size), want is True)
        elif isinstance(want, bool) and cls.buffer_capacity is not None:
            chosen = _variant(cls.buffer_capacity, want)
        return _instance(cls, chosen, args, kwargs)

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = "StructuredSGLD"
        if not isinstance(self.gradient_noise, bool):
            raise TypeError(f"{owner}: gradient_noise must be True or False; got "
                            f"{self.gradient_noise!r}")  # fmt: skip
        object.__setattr__(self, "gradient_noise", type(self).computes_gradient_noise)
        groups = self.groups
        if not isinstance(groups, tuple):
            try:
                groups = tuple(int(g) for g in np.asarray(groups).ravel())
            except Exception:
                raise TypeError(f"{owner}: groups must be a sequence of ints") from None
            object.__setattr__(self, "groups", groups)
        if groups:
            ids = set(groups)
            if min(ids) < 0 or ids != set(range(max(ids) + 1)):
                raise ValueError(f"{owner}: groups must use every id 0..M−1; got {sorted(ids)}")
        _check_int(owner, "batch_size", self.batch_size, 1)
        if self.n_data is not None:
            _check_int(owner, "n_data", self.n_data, self.batch_size)
        _check_real(owner, "decay", self.decay, positive=True)
        _check_real(owner, "gamma", self.gamma, nonneg=True)
        _check_int(owner, "buffer_size", self.buffer_size, 1)
        if self.buffer_size != self.buffer_capacity:
            raise ValueError(
                f"{type(self).__name__} has a buffer of {self.buffer_capacity}; use "
                f"StructuredSGLD(..., buffer_size={self.buffer_size})"
            )
        if not isinstance(self.dropout, (bool, np.bool_)):
            raise TypeError(f"{owner}: dropout must be True or False; got {self.dropout!r}")
        _check_int(owner, "composites", self.composites, 1)
        if not (isinstance(self.keep_prob, numbers.Real) and 0 < self.keep_prob <= 1):
            raise ValueError(f"{owner}: keep_prob must be in (0, 1]; got {self.keep_prob!r}")

    @property
    def n_groups(self) -> int:
        return max(self.groups) + 1 if self.groups else 1

    def _shape(self, dim: int) -> tuple[int, int]:
        if self.n_data is None:
            raise ValueError(
                "StructuredSGLD needs n_data: build it as StructuredSGLD(step_size, groups=..., "
                "batch_size=b, n_data=target.n_data)"
            )
        if len(self.groups) != dim:
            raise ValueError(f"StructuredSGLD: groups has {len(self.groups)} entries but the "
                             f"target has dim={dim}")  # fmt: skip
        n_comp = self.composites if self.dropout else self.n_groups
        return n_comp, self.n_groups

    def noise(self, dim: int) -> StructuredNoise:
        shape = self._shape(dim)
        return StructuredNoise(Index(self.n_data, self.batch_size), Normal((dim,)),
                               Uniform(shape), Uniform(shape))  # fmt: skip

    def init_noise(self, dim: int) -> StructuredInitNoise:
        shape = self._shape(dim)
        return StructuredInitNoise(Index(self.n_data, self.batch_size), Uniform(shape),
                                   Uniform(shape))  # fmt: skip

    def params(self) -> StructuredParams:
        if self.n_data is None:
            self._shape(len(self.groups))
        return StructuredParams(float(self.n_data), float(self.decay), float(self.gamma),
                                np.asarray(self.groups, dtype=np.int64),
                                1.0 if self.dropout else 0.0, float(self.keep_prob))  # fmt: skip

    @classmethod
    def example_target(cls, dim: int) -> Any:
        """A small data target for conformance suites (same object for the same ``dim``)."""
        return example_data_target(dim)

    @classmethod
    def for_conformance(cls, step_size: float, target: Any) -> Kernel:
        """Two groups (the halves of the position), a batch of 5, this class's buffer (16
        when called on ``StructuredSGLD`` itself)."""
        d = target.dim
        return cls(step_size, groups=group_by_blocks([d // 2, d - d // 2]), batch_size=5,
                   n_data=target.n_data, buffer_size=cls.buffer_capacity or 16)  # fmt: skip

    @classmethod
    def variants(cls) -> tuple[type, ...]:
        """The concrete class a conformance suite runs (``StructuredSGLD(...)`` dispatches
        to one class per buffer size)."""
        return (_variant(16),)

    @classmethod
    def example(cls) -> Kernel:
        return cls(1e-3, groups=(0, 1), batch_size=2, n_data=10,
                   buffer_size=cls.buffer_capacity or 200)  # fmt: skip
