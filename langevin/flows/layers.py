"""Flow layers written once against ``xp``: forward, inverse, log|det J| and the pullback.

Every layer is a bijection ``f: ℝ^d → ℝ^d`` with parameters ``p`` (a NamedTuple of arrays)
and five portable functions (:mod:`langevin.backends.portable`), as the constraint
transforms of :mod:`langevin.targets.transforms`:

* ``forward(p, z) -> x = f(z)``,
* ``inverse(p, x) -> z = f⁻¹(x)``,
* ``log_det(p, z) -> log|det J_f(z)|``,
* ``pullback(p, z, g) -> J_f(z)ᵀ g + ∇_z log|det J_f(z)|``: the gradient of
  ``z ↦ log p(f(z)) + log|det J_f(z)|`` from the gradient ``g`` of ``log p`` at ``x = f(z)``,
  written by hand, so that Numba (which cannot differentiate) samples a flow-transformed
  target with the same numbers as JAX.

**Layers.**

* Permutation (:class:`Permutation`): ``x = z[π]``; ``log|det| = 0``; the pullback is
  ``g[π⁻¹]``.
* Elementwise affine (:class:`ElementwiseAffine`): ``x = μ + e^{ℓ} ⊙ z``; ``log|det| = Σ ℓ``;
  the pullback ``e^{ℓ} ⊙ g``.
* Affine coupling, RealNVP (Dinh, Sohl-Dickstein & Bengio 2017) (:class:`AffineCoupling`):
  with a binary mask ``m`` and an MLP conditioner ``N`` (:mod:`langevin.nn`, output of size
  ``2d``: ``(r, t')``),

      s = (1 − m) ⊙ B tanh(r / B),   t = (1 − m) ⊙ t',   (r, t') = N(m ⊙ z),
      x = z ⊙ e^{s} + t,    log|det J| = Σ s,

  where the masked coordinates pass unchanged (``s = t = 0`` there) and the log-scale is
  softly bounded by ``B`` (:data:`SCALE_BOUND`) for stability. Inverse:
  ``z = (x − t) ⊙ e^{−s}`` with ``(r, t')`` from ``N(m ⊙ x)`` (``m ⊙ x = m ⊙ z``). Pullback
  (the network's input vector-Jacobian product :func:`langevin.nn.mlp_vjp` carries the
  dependence of ``s, t`` on ``m ⊙ z``):

      c_r = (1 − m) ⊙ (g ⊙ z ⊙ e^{s} + 1) ⊙ (1 − tanh²(r / B)),   c_t = (1 − m) ⊙ g,
      J_fᵀ g + ∇ log|det J_f| = g ⊙ e^{s} + m ⊙ N_vjp(m ⊙ z; (c_r, c_t)).

**The flow** (:class:`RealNVP`): ``K`` blocks, each a permutation followed by an affine
coupling, then an elementwise affine: ``f = A ∘ C_{K−1} ∘ P_{K−1} ∘ … ∘ C_0 ∘ P_0``. Its
parameters are one pytree (a tuple of :class:`CouplingBlock` of one type, so Numba types it
as a homogeneous tuple and loops over it at run time), and the composite's functions
(:func:`flow_forward`, :func:`flow_inverse`, :func:`flow_log_det`, :func:`flow_pullback`)
are portable too: the pullback stores each block's input on the way forward and applies the
layers' pullbacks in reverse order (reverse-mode differentiation of the composition; every
layer adds the gradient of its own log-determinant).

With zero conditioner output weights, identity permutations and a zero elementwise affine
the flow is exactly the identity, and so is its pullback (:func:`identity_flow`).

References:
    Dinh, L., Sohl-Dickstein, J. and Bengio, S. (2017). Density estimation using Real NVP.
    ICLR.
    Papamakarios, G., Nalisnick, E., Rezende, D. J., Mohamed, S. and Lakshminarayanan, B.
    (2021). Normalizing flows for probabilistic modeling and inference. JMLR 22(57).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from langevin.backends.portable import portable
from langevin.nn import MLP, mlp_apply, mlp_init, mlp_vjp

__all__ = [
    "SCALE_BOUND",
    "Permutation",
    "ElementwiseAffine",
    "AffineCoupling",
    "CouplingBlock",
    "RealNVP",
    "permutation_forward",
    "permutation_inverse",
    "permutation_log_det",
    "permutation_pullback",
    "affine_forward",
    "affine_inverse",
    "affine_log_det",
    "affine_pullback",
    "coupling_forward",
    "coupling_inverse",
    "coupling_log_det",
    "coupling_pullback",
    "coupling_forward_and_log_det",
    "coupling_inverse_and_log_det",
    "flow_forward",
    "flow_inverse",
    "flow_log_det",
    "flow_forward_and_log_det",
    "flow_inverse_and_log_det",
    "flow_pullback",
    "flow_log_density",
    "realnvp_init",
    "identity_flow",
]

xp: Any = None  # bound by each backend

#: The bound ``B`` of a coupling layer's log-scale ``B tanh(r/B)``.
SCALE_BOUND = 6.0


class Permutation(NamedTuple):
    """``x = z[perm]``; ``inv_perm`` is the inverse permutation (int arrays of length d)."""

    perm: Any
    inv_perm: Any


class ElementwiseAffine(NamedTuple):
    """``x = shift + exp(log_scale) ⊙ z``."""

    shift: Any
    log_scale: Any


class AffineCoupling(NamedTuple):
    """A RealNVP coupling: ``mask`` (d floats, 1 = passed through) and ``net`` (an
    :class:`~langevin.nn.MLP` from d to 2d inputs: log-scale pre-activations, shifts)."""

    mask: Any
    net: MLP


class CouplingBlock(NamedTuple):
    """One block of :class:`RealNVP`: a permutation, then an affine coupling."""

    permutation: Permutation
    coupling: AffineCoupling


class RealNVP(NamedTuple):
    """The parameters of a RealNVP flow: ``blocks`` (a tuple of :class:`CouplingBlock`),
    then ``final`` (an :class:`ElementwiseAffine`)."""

    blocks: tuple
    final: ElementwiseAffine


# -- helpers -------------------------------------------------------------------------------------
@portable
def _tanh(a):
    t = xp.exp(-2.0 * xp.abs(a))
    return xp.sign(a) * (1.0 - t) / (1.0 + t)


@portable
def _join(a, b):
    """``(a, b)`` as one vector of length ``2d`` (no ``concatenate`` in ``xp``)."""
    d = a.shape[0]
    k = xp.arange(2 * d)
    return xp.where(k < d, xp.take(a, xp.minimum(k, d - 1)), xp.take(b, xp.maximum(k - d, 0)))


# -- permutation ---------------------------------------------------------------------------------
@portable
def permutation_forward(p, z):
    return xp.take(z, p.perm)


@portable
def permutation_inverse(p, x):
    return xp.take(x, p.inv_perm)


@portable
def permutation_log_det(p, z):
    return 0.0 * z[0]


@portable
def permutation_pullback(p, z, g):
    return xp.take(g, p.inv_perm)


# -- elementwise affine --------------------------------------------------------------------------
@portable
def affine_forward(p, z):
    return p.shift + xp.exp(p.log_scale) * z


@portable
def affine_inverse(p, x):
    return (x - p.shift) * xp.exp(-p.log_scale)


@portable
def affine_log_det(p, z):
    return xp.sum(p.log_scale) + 0.0 * z[0]


@portable
def affine_pullback(p, z, g):
    return xp.exp(p.log_scale) * g


# -- affine coupling (RealNVP) -------------------------------------------------------------------
@portable
def _coupling_parts(p, y):
    """``(s, t, r)`` of the coupling at ``y`` (``y`` or ``x``: they agree on the mask)."""
    d = y.shape[0]
    out = mlp_apply(p.net, p.mask * y)
    free = 1.0 - p.mask
    r = out[:d]
    s = free * (SCALE_BOUND * _tanh(r / SCALE_BOUND))
    t = free * out[d:]
    return s, t, r


@portable
def coupling_forward(p, z):
    s, t, _r = _coupling_parts(p, z)
    return z * xp.exp(s) + t


@portable
def coupling_inverse(p, x):
    s, t, _r = _coupling_parts(p, x)
    return (x - t) * xp.exp(-s)


@portable
def coupling_log_det(p, z):
    s, _t, _r = _coupling_parts(p, z)
    return xp.sum(s)


@portable
def coupling_forward_and_log_det(p, z):
    """``(f(z), log|det J_f(z)|)`` of an affine coupling (one conditioner evaluation)."""
    s, t, _r = _coupling_parts(p, z)
    return z * xp.exp(s) + t, xp.sum(s)


@portable
def coupling_inverse_and_log_det(p, x):
    """``(f⁻¹(x), log|det J_f|)`` at the preimage, of an affine coupling."""
    s, t, _r = _coupling_parts(p, x)
    return (x - t) * xp.exp(-s), xp.sum(s)


@portable
def coupling_pullback(p, z, g):
    s, _t, r = _coupling_parts(p, z)
    free = 1.0 - p.mask
    es = xp.exp(s)
    th = _tanh(r / SCALE_BOUND)
    c_r = free * (g * z * es + 1.0) * (1.0 - th * th)
    c_t = free * g
    v = mlp_vjp(p.net, p.mask * z, _join(c_r, c_t))
    return g * es + p.mask * v


# -- the composite flow --------------------------------------------------------------------------
@portable
def flow_forward_and_log_det(params, z):
    """``(f(z), log|det J_f(z)|)`` of a :class:`RealNVP`."""
    x = z + 0.0
    log_det = 0.0 * z[0]
    for k in range(len(params.blocks)):
        block = params.blocks[k]
        y = permutation_forward(block.permutation, x)
        x, ld = coupling_forward_and_log_det(block.coupling, y)
        log_det = log_det + ld
    log_det = log_det + affine_log_det(params.final, x)
    return affine_forward(params.final, x), log_det


@portable
def flow_forward(params, z):
    """``x = f(z)``."""
    x, _ld = flow_forward_and_log_det(params, z)
    return x


@portable
def flow_log_det(params, z):
    """``log|det J_f(z)|``."""
    _x, ld = flow_forward_and_log_det(params, z)
    return ld


@portable
def flow_inverse_and_log_det(params, x):
    """``(z, log|det J_f(z)|)`` with ``z = f⁻¹(x)``: the log-determinant of the *forward*
    map at the preimage, so the flow's density is ``log q(x) = log φ(z) − log|det J_f(z)|``."""
    y = affine_inverse(params.final, x)
    log_det = affine_log_det(params.final, y)
    n = len(params.blocks)
    for j in range(n):
        block = params.blocks[n - 1 - j]
        w, ld = coupling_inverse_and_log_det(block.coupling, y)
        log_det = log_det + ld
        y = permutation_inverse(block.permutation, w)
    return y, log_det


@portable
def flow_inverse(params, x):
    """``z = f⁻¹(x)``."""
    z, _ld = flow_inverse_and_log_det(params, x)
    return z


@portable
def flow_pullback(params, z, g):
    """``J_f(z)ᵀ g + ∇_z log|det J_f(z)|`` (reverse-mode through the blocks)."""
    n = len(params.blocks)
    x = z + 0.0
    inputs = [x]  # inputs[k + 1]: the input of block k's coupling
    for k in range(n):
        block = params.blocks[k]
        y = permutation_forward(block.permutation, x)
        inputs.append(y)
        x = coupling_forward(block.coupling, y)
    gz = affine_pullback(params.final, x, g)
    for j in range(n):
        k = n - 1 - j
        block = params.blocks[k]
        gy = coupling_pullback(block.coupling, inputs[k + 1], gz)
        gz = permutation_pullback(block.permutation, inputs[k], gy)
    return gz


# -- construction --------------------------------------------------------------------------------
def _check_int(name: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be an int >= {least}; got {value!r}")
    return int(value)


def realnvp_init(
    dim: int,
    n_blocks: int = 4,
    hidden: tuple[int, ...] = (32, 32),
    *,
    activation: str = "tanh",
    seed: int = 0,
    permute: str = "random",
    init_scale: float = 0.01,
) -> RealNVP:
    """Parameters of a RealNVP flow on ``ℝ^dim`` (float64 / int64 NumPy arrays).

    Args:
        dim: the dimension, an int >= 2.
        n_blocks: the number of (permutation, coupling) blocks.
        hidden: the conditioner MLPs' hidden widths.
        activation: their hidden activation (``"tanh"``, ``"silu"``, ``"relu"``).
        seed: the random seed of the weights and permutations.
        permute: ``"random"`` (a random permutation per block), ``"reverse"`` (reverse the
            order), or ``"none"`` (identity permutations; the masks alternate halves).
        init_scale: the scale of the conditioners' last-layer weights: near zero starts the
            flow near the identity (0 gives the identity exactly).

    Returns:
        A :class:`RealNVP`. Each coupling's mask passes the first ``⌊d/2⌋`` coordinates of
        its (permuted) input, alternating with the last ``⌈d/2⌉`` between blocks.
    """
    dim = _check_int("dim", dim, 2)
    n_blocks = _check_int("n_blocks", n_blocks, 1)
    if permute not in ("random", "reverse", "none"):
        raise ValueError(f"permute must be 'random', 'reverse' or 'none'; got {permute!r}")
    if isinstance(hidden, (int, np.integer)):
        hidden = (int(hidden),)
    hidden = tuple(hidden)
    rng = np.random.default_rng(seed)
    blocks = []
    half = dim // 2
    for k in range(n_blocks):
        if permute == "random":
            perm = rng.permutation(dim)
        elif permute == "reverse":
            perm = np.arange(dim)[::-1].copy()
        else:
            perm = np.arange(dim)
        inv = np.empty(dim, dtype=np.int64)
        inv[perm] = np.arange(dim)
        mask = np.zeros(dim)
        if k % 2 == 0:
            mask[:half] = 1.0
        else:
            mask[half:] = 1.0
        net = mlp_init(rng, (dim, *hidden, 2 * dim), activation, last_scale=float(init_scale))
        blocks.append(CouplingBlock(Permutation(perm.astype(np.int64), inv),
                                    AffineCoupling(mask, net)))  # fmt: skip
    final = ElementwiseAffine(np.zeros(dim), np.zeros(dim))
    return RealNVP(tuple(blocks), final)


def identity_flow(dim: int, n_blocks: int = 2, hidden: tuple[int, ...] = (8,)) -> RealNVP:
    """A :class:`RealNVP` that is exactly the identity (zero output weights, identity
    permutations, zero affine), with the structure of a trainable one."""
    return realnvp_init(dim, n_blocks, hidden, permute="none", init_scale=0.0)


@portable
def flow_log_density(params, x):
    """The flow's density at ``x``: ``log q(x) = log φ(f⁻¹(x)) − log|det J_f(f⁻¹(x))|`` with
    ``φ`` the standard normal density on ``ℝ^d`` (the base)."""
    z, log_det = flow_inverse_and_log_det(params, x)
    d = x.shape[0]
    return -0.5 * xp.sum(z * z) - 0.9189385332046727 * d - log_det
