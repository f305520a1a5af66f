"""The No-U-Turn sampler: multinomial trajectory sampling with the generalised U-turn criterion.

With potential ``U = −log π`` and kinetic energy ``K(p) = ½ pᵀ M⁻¹ p``, NUTS (Hoffman &
Gelman 2014) removes HMC's fixed trajectory length: it builds the trajectory by *doubling*,
each time in a random direction, until the trajectory starts to turn back on itself, and
then draws the next state from all the points it visited. This module implements the
variant Stan and BlackJAX use, as described by Betancourt (2017, §A.3–A.4 and appendix):

**Transition.** From ``x`` draw ``p ~ N(0, M)`` (``p = ξ / √m⁻¹`` with ``ξ ~ N(0, I)``;
``p = L⁻ᵀ ξ`` for a dense ``M⁻¹ = L Lᵀ``, ``metric="dense"``: :class:`DenseNUTS`) and
set ``H₀ = H(x, p)``. The trajectory ``T₀ = {z₀}`` is the single point ``z₀ = (x, p)``. At
depth ``j = 0, 1, …, max_depth − 1``:

1. draw a direction ``v_j = ±1`` (fair coin: ``noise.direction[j] < ½`` means forward) and
   integrate ``2ʲ`` integrator steps of size ``v_j h`` from the end of ``T_j`` on that
   side: the *new subtree* ``S_j``; (``2ʲ`` is the size of ``T_j``, so ``T_{j+1} = T_j ∪ S_j``
   has ``2^{j+1}`` points and is a complete binary tree.)
2. each point ``z`` gets the weight ``w(z) = exp(H₀ − H(z))`` (``∝ π(x) N(p; 0, M)``);
3. *within* ``S_j`` one point ``z_S`` is drawn with probability ``w(z) / Σ_{S_j} w``
   (multinomial sampling, progressively: point ``n`` of the subtree replaces the running
   candidate with probability ``w(z_n) / Σ_{k ≤ n} w(z_k)``, one uniform per point);
4. the sample of ``T_{j+1}`` is ``z_S`` with probability ``min(1, W(S_j) / W(T_j))`` (``W``
   the total weight), else the sample of ``T_j``: *biased progressive sampling* (Betancourt
   2017, A.3.2), which favours the new subtree, the farther half, and so moves farther than
   uniform multinomial sampling would, while keeping π invariant;
5. stop if ``S_j`` contains a *divergence* (an energy error ``H(z) − H₀`` above
   ``divergence_threshold``, Stan's 1000, or a non-finite energy) or a U-turn *inside* it
   (below): then ``S_j`` is discarded, its sample and weight unused; stop too if ``T_{j+1}``
   makes a U-turn, or when ``j + 1 = max_depth``.

The next state is the final sample's position.

**The generalised U-turn criterion** (Betancourt 2013; 2017, A.4.2). A (sub)trajectory
from ``z⁻`` to ``z⁺`` with summed momentum ``ρ = Σ_z p(z)`` keeps going while

    M⁻¹p(z⁻) · ρ > 0   and   M⁻¹p(z⁺) · ρ > 0,

(the velocities at both ends still point along the trajectory's total momentum). It is
checked on every subtree of the binary tree — every aligned block of ``2ᵏ`` consecutive
points, ``k ≥ 1``, of the new subtree as soon as its last point is integrated (that is
what makes the stopping rule symmetric, hence the sampler reversible), and on ``T_{j+1}``
itself. Stan 2.26 added two more checks at every merge of a left half ``L`` and a right half
``R`` (stan-dev/stan#3005), which catch U-turns that fall between the halves: the criterion
on ``L`` plus the first point of ``R``, and on the last point of ``L`` plus ``R``. They are
done here at every merge too, inside subtrees and at the top.

**Iterative, fixed memory.** No recursion: a subtree is one dynamic loop over its points
(``xp.while_loop``) and the whole transition one loop over depths (the iterative
formulation of NumPyro and BlackJAX, with checkpoints). The checks of the blocks that end
at point ``n`` need, per level ``k``: the momentum and the running momentum sum at the first
point of the block (written when it was integrated), and the momentum at the last point of
its left half. They are kept in three arrays of one row per level (``max_depth + 1`` rows,
``max_depth`` for the left-half ends), allocated once per transition: a point with ``n``
divisible by ``2ᵏ`` opens a block at level ``k``; a block at level ``k`` ends at ``n`` when
``2ᵏ`` divides ``n + 1``; its right half is the level-``k−1`` block ending at ``n``; and
``n`` ends the left half of the level-``tz(n + 1) + 1`` block. Memory is ``O(max_depth · d)``
per chain, whatever the tree.

**Statistics.** ``acceptance_rate`` is Stan's: the mean over every point integrated (also
those of a discarded subtree) of ``min(1, exp(H₀ − H(z)))``; warm-up adapts the step size by
dual averaging to make it 0.8 (Hoffman & Gelman 2014, §3.2). ``tree_depth`` is the number of
doublings kept (the ``j`` of the last ``T_j``; at most ``max_depth``), ``n_grad`` the
gradient evaluations (integrator steps × stages: at most ``2^max_depth − 1`` steps),
``energy`` ``H`` at the sample (for E-BFMI), ``diverging`` whether the transition hit a
divergence (not a point outside the support, where log π = −inf, which stops the
trajectory as a divergence does but is a hard constraint, as for HMC).

**Noise (fixed shapes).** A step consumes ``ξ ~ N(0, I_d)``, ``max_depth`` direction
uniforms, ``max_depth`` uniforms for the biased progressive choices and ``2^max_depth − 1``
uniforms for the multinomial choices inside subtrees (indexed by integrator step), whatever
the tree it builds; the same noise gives the same chain on both backends.

**Cost.** Under JAX's ``vmap`` a member's loop runs until every member of the population is
done (a done member computes nothing new that it keeps), so a chunk costs the largest tree of
the chains in each step; on Numba each chain runs its own tree.

References:
    Hoffman, M. D. and Gelman, A. (2014). The No-U-Turn sampler: adaptively setting path
    lengths in Hamiltonian Monte Carlo. JMLR 15, 1593–1623.
    Betancourt, M. (2017). A conceptual introduction to Hamiltonian Monte Carlo.
    arXiv:1701.02434 (multinomial and biased progressive sampling: appendix A.3; the
    generalised No-U-Turn criterion: A.4).
    Betancourt, M. (2013). Generalizing the No-U-Turn sampler to Riemannian manifolds.
    arXiv:1304.1920.
    Stan Development Team. Stan Reference Manual, "Hamiltonian Monte Carlo" and
    ``src/stan/mcmc/hmc/nuts/base_nuts.hpp`` (2.26+: the checks across merged subtrees).
    Phan, D., Pradhan, N. and Jankowiak, M. (2019). Composable effects for flexible and
    accelerated probabilistic programming in NumPyro. arXiv:1912.11554 (iterative NUTS).
    Cabezas, A. et al. (2024). BlackJAX: composable Bayesian inference in JAX.
    arXiv:2402.10797.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from langevin.adaptation.dual_averaging import DualAveraging
from langevin.adaptation.mass_matrix import DenseMassMatrix, DiagonalMassMatrix
from langevin.backends.portable import portable
from langevin.kernels.base import (
    Flag,
    GradientState,
    Kernel,
    Normal,
    Scalar,
    Uniform,
    Vector,
    init_gradient_state,
)
from langevin.kernels.hmc import (
    check_hamiltonian_settings,
    dense_metric,
    draw_momentum,
    momentum_factor,
    velocity,
    wants_dense,
)
from langevin.kernels.integrators import get_integrator, padded_coefficients

__all__ = ["NUTS", "DenseNUTS", "NUTSInfo", "NUTSNoise", "NUTSParams", "DenseNUTSParams",
           "MAX_TREE_DEPTH"]  # fmt: skip

xp: Any = None

#: The largest ``max_depth`` accepted (2^max_depth − 1 uniforms per step are drawn).
MAX_TREE_DEPTH = 16


class NUTSNoise(NamedTuple):
    # (annotations document; the declarations in NUTS.noise type the fields)
    normal: Vector  # ξ ~ N(0, I_d): the momentum before scaling by the mass
    direction: Vector  # U[0, 1)^max_depth: doubling j goes forward iff direction[j] < ½
    merge: Vector  # U[0, 1)^max_depth: the biased progressive choice after doubling j
    leaf: Vector  # U[0, 1)^(2^max_depth − 1): the multinomial choice at integrator step n


class NUTSInfo(NamedTuple):
    """Per-transition statistics (module docstring)."""

    acceptance_rate: Scalar
    diverging: Flag
    energy: Scalar
    tree_depth: Scalar
    n_grad: Scalar


class NUTSParams(NamedTuple):
    """Runtime parameters (per chain). Coefficient arrays are padded (see integrators)."""

    inverse_mass: np.ndarray
    kick: np.ndarray
    drift: np.ndarray
    n_stages: int
    divergence_threshold: float


class DenseNUTSParams(NamedTuple):
    """Runtime parameters of NUTS with a dense metric (per chain)."""

    inverse_mass: np.ndarray  # (d, d): M⁻¹
    momentum_factor: np.ndarray  # (d, d): L⁻ᵀ with M⁻¹ = L Lᵀ (p = L⁻ᵀ ξ ~ N(0, M))
    kick: np.ndarray
    drift: np.ndarray
    n_stages: int
    divergence_threshold: float


class _Point(NamedTuple):
    position: Any
    momentum: Any
    logdensity: Any
    grad: Any


class _Sample(NamedTuple):
    position: Any
    logdensity: Any
    grad: Any
    energy: Any


class _Checkpoints(NamedTuple):
    start: Any  # (K + 1, d): momentum at the first point of the open block of level k
    start_sum: Any  # (K + 1, d): momentum sum of the subtree up to that point, inclusive
    left_end: Any  # (K, d): row k − 1: momentum at the last point of level k's left half


class _Subtree(NamedTuple):
    end: Any  # _Point: the last point integrated
    first_momentum: Any  # momentum of the subtree's first point
    sample: Any  # _Sample: the subtree's multinomial candidate
    log_weight: Any  # log Σ w over the subtree
    rho: Any  # Σ p over the subtree
    checkpoints: Any
    n: Any  # points integrated in this subtree
    n_leaf: Any  # points integrated in this transition (indexes noise.leaf)
    sum_accept: Any  # Σ min(1, w) over every point of the transition
    stop: Any  # a divergence or a non-finite energy: the subtree is discarded
    diverging: Any  # a divergence proper (not a point outside the support)
    turning: Any  # a U-turn inside the subtree: the subtree is discarded


class _Tree(NamedTuple):
    left: Any  # _Point: the backward end
    right: Any  # _Point: the forward end
    sample: Any
    log_weight: Any
    rho: Any
    checkpoints: Any
    depth: Any
    n_leaf: Any
    sum_accept: Any
    stop: Any
    diverging: Any
    turning: Any


# -- pieces -----------------------------------------------------------------------------------
@portable
def log_add_exp(a, b):
    """``log(exp(a) + exp(b))``, with ``−inf`` for two zero weights."""
    top = xp.maximum(a, b)
    safe = xp.select(xp.isfinite(top), top, 0.0)
    return safe + xp.log(xp.exp(a - safe) + xp.exp(b - safe))


@portable
def _kinetic(momentum, inverse_mass):
    return 0.5 * xp.dot(velocity(inverse_mass, momentum), momentum)


@portable
def _no_uturn(momentum_minus, momentum_plus, rho, inverse_mass):
    """The generalised criterion, True while the trajectory keeps going:
    ``M⁻¹p⁻ · ρ > 0`` and ``M⁻¹p⁺ · ρ > 0``, computed as ``p · (M⁻¹ρ)`` (M⁻¹ symmetric)."""
    direction = velocity(inverse_mass, rho)
    return (xp.dot(momentum_minus, direction) > 0.0) & (xp.dot(momentum_plus, direction) > 0.0)


@portable
def _stage(i, carry, args):
    """Stage ``i`` of one integrator step: drift ``a_i``, a gradient, kick ``b_{i+1}``."""
    position, momentum, logdensity, grad = carry
    eps, inverse_mass, kick, drift, target = args
    position = position + (eps * drift[i]) * velocity(inverse_mass, momentum)
    logdensity, grad = xp.value_and_grad(target, position)
    momentum = momentum + (eps * kick[i + 1]) * grad
    return position, momentum, logdensity, grad


@portable
def integrator_step(point, eps, params, target):
    """One step of signed size ``eps`` of the palindromic splitting in ``params``
    (:mod:`langevin.kernels.integrators`): ``n_stages`` gradient evaluations."""
    momentum = point.momentum + (eps * params.kick[0]) * point.grad
    position, momentum, logdensity, grad = xp.fori_loop(
        0,
        params.n_stages,
        _stage,
        (point.position, momentum, point.logdensity, point.grad),
        (eps, params.inverse_mass, params.kick, params.drift, target),
    )
    return _Point(position, momentum, logdensity, grad)


@portable
def _opens_block(carry, args):
    level = carry[0]
    n, powers = args[0], args[1]
    top = powers.shape[0] - 1  # K = max_depth
    return (level <= top) & (n % powers[xp.minimum(level, top)] == 0)


@portable
def _open_block(carry, args):
    """Point ``n`` opens the block of level ``level``: checkpoint its momentum and sum."""
    level, start, start_sum = carry
    momentum, rho = args[2], args[3]
    return level + 1, xp.set_at(start, level, momentum), xp.set_at(start_sum, level, rho)


@portable
def _block_ends_here(carry, args):
    level, turning = carry
    n, powers = args[0], args[1]
    # stops at the first level whose block does not end at n: level ≤ tz(n + 1) + 1 ≤ K
    return ((n + 1) % powers[level] == 0) & xp.logical_not(turning)


@portable
def _check_block(carry, args):
    """The block of ``2^level`` points ending at point ``n`` (module docstring): the
    criterion on ``[a, n]``, on its left half plus the first point ``m`` of its right half
    ``[a, m]``, and on the last point of its left half plus its right half ``[m − 1, n]``."""
    level, _ = carry
    _, _, momentum, rho, checkpoints, inverse_mass = args
    start = checkpoints.start[level]  # p(a)
    start_sum = checkpoints.start_sum[level]  # Σ p up to a, inclusive
    mid = checkpoints.start[level - 1]  # p(m): the right half is the block one level down
    mid_sum = checkpoints.start_sum[level - 1]
    left_end = checkpoints.left_end[level - 1]  # p(m − 1)
    keeps = (
        _no_uturn(start, momentum, rho - start_sum + start, inverse_mass)
        & _no_uturn(start, mid, mid_sum - start_sum + start, inverse_mass)
        & _no_uturn(left_end, momentum, rho - mid_sum + mid + left_end, inverse_mass)
    )
    return level + 1, xp.logical_not(keeps)


@portable
def _subtree_continues(sub, args):
    size = args[2]
    return (sub.n < size) & xp.logical_not(sub.stop) & xp.logical_not(sub.turning)


@portable
def _subtree_body(sub, args):
    """Integrate point ``n`` of the subtree: weight, multinomial candidate, checks."""
    eps, energy0, _, params, target, leaf_uniforms, powers = args
    inverse_mass = params.inverse_mass
    point = integrator_step(sub.end, eps, params, target)
    energy = _kinetic(point.momentum, inverse_mass) - point.logdensity
    finite = xp.isfinite(energy)
    log_w = xp.select(finite, energy0 - energy, -xp.inf)
    divergent = energy - energy0 > params.divergence_threshold
    stop = xp.logical_not(finite) | divergent
    # a point outside the support (log π = −inf) stops the trajectory but is no divergence
    diverging = xp.select(finite, divergent, xp.logical_not(point.logdensity == -xp.inf))
    log_weight = log_add_exp(sub.log_weight, log_w)
    first = sub.n == 0
    take = first | (xp.log(leaf_uniforms[sub.n_leaf]) < log_w - log_weight)
    sample = xp.select_tree(
        take, _Sample(point.position, point.logdensity, point.grad, energy), sub.sample
    )
    accept = xp.select(finite, xp.exp(xp.minimum(log_w, 0.0)), 0.0 * energy0)
    rho = sub.rho + point.momentum
    momentum = point.momentum
    # checkpoints (rows written in place on Numba, a copy on JAX): point n opens a block at
    # every level k with 2ᵏ | n; then the blocks ending at n are checked; n ends the left
    # half of the level-k block for k − 1 = tz(n + 1), the number of trailing ones of n.
    _, start, start_sum = xp.while_loop(
        _opens_block,
        _open_block,
        (0 * sub.n, sub.checkpoints.start, sub.checkpoints.start_sum),
        (sub.n, powers, momentum, rho),
    )
    ckpt = _Checkpoints(start, start_sum, sub.checkpoints.left_end)
    level, turning = xp.while_loop(
        _block_ends_here,
        _check_block,
        (1 + 0 * sub.n, False),
        (sub.n, powers, momentum, rho, ckpt, inverse_mass),
    )
    # level = tz(n + 1) + 1 unless a U-turn stopped the checks (then the subtree is dropped)
    row = xp.minimum(level - 1, powers.shape[0] - 2)
    ckpt = _Checkpoints(start, start_sum, xp.set_at(ckpt.left_end, row, momentum))
    return _Subtree(
        point,
        xp.select(first, momentum, sub.first_momentum),
        sample,
        log_weight,
        rho,
        ckpt,
        sub.n + 1,
        sub.n_leaf + 1,
        sub.sum_accept + accept,
        stop,
        diverging,
        turning & xp.logical_not(stop),
    )


@portable
def _tree_continues(tree, args):
    max_depth = args[4]
    return (tree.depth < max_depth) & xp.logical_not(tree.stop) & xp.logical_not(tree.turning)


@portable
def _tree_body(tree, args):
    """Double the trajectory once: a new subtree, biased progressive sampling, the checks."""
    step_size, energy0, params, target, _, noise, powers = args
    inverse_mass = params.inverse_mass
    forward = noise.direction[tree.depth] < 0.5
    eps = xp.select(forward, step_size, -step_size)
    start = xp.select_tree(forward, tree.right, tree.left)
    outer = xp.select_tree(forward, tree.left, tree.right)
    zero = 0.0 * tree.rho
    sub = xp.while_loop(
        _subtree_continues,
        _subtree_body,
        _Subtree(
            start,
            zero,
            tree.sample,
            -xp.inf + 0.0 * energy0,
            zero,
            tree.checkpoints,
            0 * tree.depth,
            tree.n_leaf,
            tree.sum_accept,
            tree.stop,
            tree.diverging,
            tree.turning,
        ),
        (eps, energy0, powers[tree.depth], params, target, noise.leaf, powers),
    )
    valid = xp.logical_not(sub.stop) & xp.logical_not(sub.turning)
    # biased progressive sampling: the new subtree's candidate w.p. min(1, W_new / W_old)
    take = valid & (xp.log(noise.merge[tree.depth]) < sub.log_weight - tree.log_weight)
    sample = xp.select_tree(take, sub.sample, tree.sample)
    log_weight = xp.select(valid, log_add_exp(tree.log_weight, sub.log_weight),
                           tree.log_weight)  # fmt: skip
    extend_right = valid & forward
    extend_left = valid & xp.logical_not(forward)
    right = xp.select_tree(extend_right, sub.end, tree.right)
    left = xp.select_tree(extend_left, sub.end, tree.left)
    rho = tree.rho + sub.rho
    # the U-turn criterion on the merged trajectory, and Stan's two checks across the merge
    keeps = (
        _no_uturn(outer.momentum, sub.end.momentum, rho, inverse_mass)
        & _no_uturn(outer.momentum, sub.first_momentum, tree.rho + sub.first_momentum,
                    inverse_mass)
        & _no_uturn(start.momentum, sub.end.momentum, sub.rho + start.momentum, inverse_mass)
    )  # fmt: skip
    return _Tree(
        left,
        right,
        sample,
        log_weight,
        xp.select(valid, rho, tree.rho),
        sub.checkpoints,
        tree.depth + xp.select(valid, 1, 0),
        sub.n_leaf,
        sub.sum_accept,
        sub.stop | sub.turning,
        sub.diverging,
        valid & xp.logical_not(keeps),
    )


@portable
def nuts_step(state, noise, step_size, params, target):
    """One NUTS transition (module docstring)."""
    inverse_mass = params.inverse_mass
    momentum = draw_momentum(params, noise.normal)  # p ~ N(0, M)
    energy0 = _kinetic(momentum, inverse_mass) - state.logdensity
    max_depth = noise.direction.shape[0]
    powers = 2 ** xp.arange(max_depth + 1)
    # (K + 1, d) zeros of the position's dtype
    # three distinct (K + 1, d), (K + 1, d), (K, d) arrays of the position's dtype: their rows
    # are overwritten in place on Numba (xp.set_at), so they must not share memory
    checkpoints = _Checkpoints(
        (xp.arange(max_depth + 1) * 0)[:, None] + xp.zeros_like(momentum)[None, :],
        (xp.arange(max_depth + 1) * 0)[:, None] + xp.zeros_like(momentum)[None, :],
        (xp.arange(max_depth) * 0)[:, None] + xp.zeros_like(momentum)[None, :],
    )
    start = _Point(state.position, momentum, state.logdensity, state.grad)
    tree = xp.while_loop(
        _tree_continues,
        _tree_body,
        _Tree(
            start,
            start,
            _Sample(state.position, state.logdensity, state.grad, energy0),
            0.0 * energy0,
            momentum,
            checkpoints,
            0 * max_depth,
            0 * max_depth,
            0.0 * energy0,
            False,
            False,
            False,
        ),
        (step_size, energy0, params, target, max_depth, noise, powers),
    )
    n_steps = tree.n_leaf * (1.0 + 0.0 * energy0)
    info = NUTSInfo(
        tree.sum_accept / n_steps,
        tree.diverging,
        tree.sample.energy,
        tree.depth * (1.0 + 0.0 * energy0),
        n_steps * params.n_stages,
    )
    sample = tree.sample
    return GradientState(sample.position, sample.logdensity, sample.grad), info


# -- the kernel -------------------------------------------------------------------------------
@dataclass(frozen=True)
class NUTS(Kernel):
    """The No-U-Turn sampler (Hoffman & Gelman 2014) with multinomial sampling and the
    generalised U-turn criterion (Betancourt 2017), as in Stan and BlackJAX.

    Exactly π-invariant. Module docstring: the math, the checks, the statistics, the noise.

    Args:
        step_size: h > 0 (the initial value when warm-up adapts it).
        max_depth: the largest number of doublings, an int in 1..16 (Stan's default 10):
            at most ``2^max_depth − 1`` integrator steps per transition.
        inverse_mass: the diagonal of ``M⁻¹`` (one positive float per coordinate); None
            means the identity. Warm-up adapts it (per chain) to the posterior variances
            (Stan's windows) unless ``sample(..., adapt_mass_matrix=False)``.
        integrator: ``"leapfrog"`` (the default, 1 gradient per step) or ``"minimal_norm"``
            (2 per step; :data:`langevin.kernels.integrators.INTEGRATORS`).
        divergence_threshold: an energy error above this stops the trajectory and flags
            the transition as divergent (Stan's 1000).
        metric: ``"diagonal"`` (``inverse_mass`` is the diagonal of ``M⁻¹``) or ``"dense"``
            (``inverse_mass`` is a symmetric positive-definite (d, d) matrix ``M⁻¹``; None
            is the identity; warm-up adapts the whole matrix to the posterior covariance,
            :class:`~langevin.adaptation.mass_matrix.DenseMassMatrix`). None (the
            default): dense when ``inverse_mass`` is a matrix, else diagonal. The dense
            metric costs a d × d matrix-vector product per gradient and undoes
            correlations a diagonal one cannot (``docs/nuts.md``, "Dense mass matrix").

    Example:
        >>> import langevin
        >>> trace = langevin.sample(langevin.targets.gaussian(3), langevin.NUTS(0.5),
        ...                         chains=2, warmup=300, draws=300, progress=False, seed=0)
        >>> sorted(k for k in trace.sample_stats if k in ("tree_depth", "n_grad"))
        ['n_grad', 'tree_depth']
    """

    step_size: float
    max_depth: int = 10
    inverse_mass: Any = None
    integrator: str = "leapfrog"
    divergence_threshold: float = 1000.0
    metric: str | None = None

    State = GradientState
    Info = NUTSInfo
    Noise = NUTSNoise
    init_math = staticmethod(init_gradient_state)
    step_math = staticmethod(nuts_step)
    exact = True
    bias_order = None
    adaptation = (DualAveraging, DiagonalMassMatrix)
    target_acceptance = 0.8  # Stan's adapt_delta default
    metric_kind = "diagonal"
    public_name = "NUTS"

    def __new__(cls, *args: Any, **kwargs: Any) -> NUTS:
        if cls is NUTS and wants_dense(args, kwargs, inverse_mass_at=2, metric_at=5):
            cls = DenseNUTS
        return object.__new__(cls)

    def __post_init__(self) -> None:
        super().__post_init__()
        depth = self.max_depth
        if isinstance(depth, bool) or not isinstance(depth, numbers.Integral):
            raise TypeError(f"NUTS: max_depth must be an int in 1..{MAX_TREE_DEPTH}; got {depth!r}")
        if not 1 <= depth <= MAX_TREE_DEPTH:
            raise ValueError(f"NUTS: max_depth must be in 1..{MAX_TREE_DEPTH}; got {depth}")
        object.__setattr__(self, "max_depth", int(depth))
        check_hamiltonian_settings(self)

    def divergent_transition(self) -> str:
        return (f"energy error above divergence_threshold={self.divergence_threshold:g} or "
                "not finite along the trajectory")  # fmt: skip

    def noise(self, dim: int) -> NUTSNoise:
        k = self.max_depth
        return NUTSNoise(Normal((dim,)), Uniform((k,)), Uniform((k,)), Uniform((2**k - 1,)))

    def params(self) -> NUTSParams:
        """Runtime parameters. Without an ``inverse_mass`` it is ``[1.0]``, which broadcasts
        to any dimension; the driver expands it to the target's dimension."""
        integrator = get_integrator(self.integrator)
        kick, drift = padded_coefficients(integrator)
        inverse_mass = np.ones(1) if self.inverse_mass is None else np.array(self.inverse_mass)
        return NUTSParams(inverse_mass, kick, drift, integrator.n_stages,
                          self.divergence_threshold)  # fmt: skip


@dataclass(frozen=True, repr=False)
class DenseNUTS(NUTS):
    """NUTS with a dense metric: what ``NUTS(..., metric="dense")`` (or a (d, d)
    ``inverse_mass``) builds; see :class:`NUTS`.

    The tree building is :func:`nuts_step`'s, with the metric's three operations dense
    (:func:`langevin.kernels.hmc.dense_metric`): the velocity ``M⁻¹ p`` (drifts and the U-turn
    criterion's ``M⁻¹ρ``) is a matrix-vector product, the momentum ``p = L⁻ᵀ ξ`` with
    ``M⁻¹ = L Lᵀ`` (``L⁻ᵀ`` computed once per params value, on the host) and the kinetic
    energy ``½ pᵀ M⁻¹ p``. Warm-up adapts the whole matrix (Stan's windows:
    :class:`~langevin.adaptation.mass_matrix.DenseMassMatrix`). Without an ``inverse_mass``
    it starts at the identity.
    """

    metric: str | None = "dense"

    step_math = staticmethod(dense_metric(nuts_step))
    adaptation = (DualAveraging, DenseMassMatrix)
    metric_kind = "dense"

    def __repr__(self) -> str:  # the name users type: NUTS(..., metric='dense')
        text = NUTS.__repr__(self)
        return self.name + text[text.index("(") :]

    def params(self) -> DenseNUTSParams:
        """Runtime parameters. Without an ``inverse_mass`` it is the 1 × 1 identity, which
        the warm-up component expands to the target's dimension (``sample`` does this)."""
        integrator = get_integrator(self.integrator)
        kick, drift = padded_coefficients(integrator)
        inverse_mass = np.eye(1) if self.inverse_mass is None else np.array(self.inverse_mass)
        return DenseNUTSParams(inverse_mass, momentum_factor(inverse_mass), kick, drift,
                               integrator.n_stages, self.divergence_threshold)  # fmt: skip
