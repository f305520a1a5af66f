"""Rational-quadratic spline couplings (Neural Spline Flows), written once against ``xp``.

Durkan, Bekasov, Murray & Papamakarios (2019), §3. A coupling layer with a binary mask ``m``
passes the masked coordinates unchanged and maps each free coordinate ``y_i`` through a
monotone rational-quadratic spline ``g_i`` whose ``K`` bins are set by an MLP conditioner
``N`` of ``m ⊙ y`` (:mod:`langevin.nn`; output ``d (3K − 1)``: for coordinate ``i`` the
unnormalised widths ``θ^w_{k,i}``, heights ``θ^h_{k,i}`` (``k < K``) and interior
derivatives ``θ^δ_{k,i}`` (``1 ≤ k ≤ K − 1``), stored block-wise: entry ``j d + i``).

**Parametrisation** (the paper's §3.1 and nflows' defaults, minimum bin width ``w_min``,
height ``h_min`` and derivative ``δ_min``, all 10⁻³): on the interval ``[−B, B]``

    w_k = w_min + (1 − K w_min) softmax_k(θ^w),   W_k = 2B w_k,   x_0 = −B,  x_{k+1} = x_k + W_k,
    h_k = h_min + (1 − K h_min) softmax_k(θ^h),   H_k = 2B h_k,   y_0 = −B,  y_{k+1} = y_k + H_k,
    δ_k = δ_min + softplus(θ^δ_k + c),   c = log(e^{1 − δ_min} − 1)   (1 ≤ k ≤ K − 1),
    δ_0 = δ_K = 1.

The shift ``c`` (nflows pads the boundary derivatives with the same constant) makes a zero
conditioner output give uniform bins with unit derivatives: the identity, which is how
:func:`spline_flow_init` with ``init_scale=0`` starts. Outside ``[−B, B]`` the map is the
identity (linear tails of slope 1, matching the boundary derivatives: ``g`` is ``C¹``).

**Forward** (eq. 4 and 5 of the paper, with ``s_k = H_k / W_k``): in bin ``k``, with
``ξ = (y − x_k)/W_k`` and ``ξ₁ = ξ(1 − ξ)``,

    g(y) = y_k + H_k [s_k ξ² + δ_k ξ₁] / [s_k + (δ_{k+1} + δ_k − 2 s_k) ξ₁],
    g'(y) = s_k² [δ_{k+1} ξ² + 2 s_k ξ₁ + δ_k (1 − ξ)²] / [s_k + (δ_{k+1} + δ_k − 2 s_k) ξ₁]²,

and ``log|det J| = Σ_free log g'(y_i)`` (the Jacobian is triangular).

**Inverse** (§3.2, eq. 6–8): in the bin of ``x`` by the ``y_k`` knots, ``ξ`` is the root in
``[0, 1]`` of ``a ξ² + b ξ + c = 0`` with ``r = x − y_k``, ``Δ = δ_{k+1} + δ_k − 2 s_k``,

    a = H_k (s_k − δ_k) + r Δ,   b = H_k δ_k − r Δ,   c = −s_k r,

taken in the numerically stable form ``ξ = 2c / (−b − √(b² − 4ac))`` (no cancellation when
``a → 0``), then ``y = x_k + ξ W_k``.

**Pullback** (by hand, so Numba samples spline-transformed targets): for a cotangent ``G``
of the output, the gradient of ``L = Gᵀ f(y) + log|det J_f(y)|``. Per free coordinate in
``[−B, B]``, with ``R = Q / D``, ``Q = s ξ² + δ_k ξ₁``, ``D = s + Δ ξ₁`` and
``N = δ_{k+1} ξ² + 2 s ξ₁ + δ_k (1 − ξ)²`` (``ℓ = log g' = 2 log s + log N − 2 log D``),

    ∂R/∂v = (∂Q/∂v − R ∂D/∂v) / D,   ∂ℓ/∂v = ∂N/∂v / N − 2 ∂D/∂v / D  (+ 2/s for v = s),
    L_ξ = G H ∂R/∂ξ + ∂ℓ/∂ξ,  L_s = G H ∂R/∂s + ∂ℓ/∂s,  L_δk = G H ∂R/∂δ_k + ∂ℓ/∂δ_k, …

then through ``ξ = (y − x_k)/W_k`` and ``s = H_k/W_k`` to ``y`` (the direct part), to the
knots (``x_k`` is a cumulative sum of the widths: bin ``j < k`` gets ``∂L/∂x_k``), to the
softmax (``∂θ_j = p_j (∂p_j − Σ_l p_l ∂p_l)``) and softplus (``σ(θ^δ + c)``), and finally
through the conditioner with :func:`langevin.nn.mlp_vjp` to the masked coordinates.

**The flow** (:class:`SplineFlow`): blocks of a permutation then a spline coupling, then an
elementwise affine, as :class:`~langevin.flows.RealNVP`; its composite functions are the
RealNVP composites with the coupling functions rebound (:func:`flow_functions` picks them
for a flow's type, so every consumer handles both).

References:
    Durkan, C., Bekasov, A., Murray, I. and Papamakarios, G. (2019). Neural spline flows.
    NeurIPS 32.
    Gregory, J. A. and Delbourgo, R. (1982). Piecewise rational quadratic interpolation to
    monotonic data. IMA Journal of Numerical Analysis 2(2).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from langevin.backends.portable import bind_globals, portable
from langevin.flows import layers as _layers
from langevin.flows.layers import ElementwiseAffine, Permutation, RealNVP
from langevin.nn import MLP, mlp_apply, mlp_init, mlp_vjp

__all__ = [
    "MIN_BIN_WIDTH",
    "MIN_BIN_HEIGHT",
    "MIN_DERIVATIVE",
    "SplineCoupling",
    "SplineBlock",
    "SplineFlow",
    "spline_forward",
    "spline_inverse",
    "spline_log_det",
    "spline_forward_and_log_det",
    "spline_inverse_and_log_det",
    "spline_pullback",
    "spline_flow_init",
    "ComposedFlow",
    "FlowFunctions",
    "flow_functions",
    "flow_dim",
    "n_bins",
]

xp: Any = None  # bound by each backend

#: the smallest bin width, height and knot derivative, as fractions / values (nflows' defaults)
MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3
#: ``c = log(e^{1 − δ_min} − 1)``: a zero pre-activation gives a unit derivative
_DERIV_SHIFT = float(np.log(np.expm1(1.0 - MIN_DERIVATIVE)))


class SplineCoupling(NamedTuple):
    """A rational-quadratic spline coupling: ``mask`` (d floats, 1 = passed through), ``net``
    (an :class:`~langevin.nn.MLP` from d to ``d (3K − 1)`` outputs) and ``bound`` (d floats:
    ``B`` per coordinate, the spline acts on ``[−B, B]``, the identity outside)."""

    mask: Any
    net: MLP
    bound: Any


class SplineBlock(NamedTuple):
    """One block of :class:`SplineFlow`: a permutation, then a spline coupling."""

    permutation: Permutation
    coupling: SplineCoupling


class SplineFlow(NamedTuple):
    """The parameters of a neural spline flow: ``blocks`` (a tuple of :class:`SplineBlock`),
    then ``final`` (an :class:`~langevin.flows.ElementwiseAffine`)."""

    blocks: tuple
    final: ElementwiseAffine


# -- helpers -------------------------------------------------------------------------------------
@portable
def _softplus(a):
    return xp.maximum(a, 0.0) + xp.log1p(xp.exp(-xp.abs(a)))


@portable
def _sigmoid(a):
    t = xp.exp(-xp.abs(a))
    return xp.where(a >= 0.0, 1.0 / (1.0 + t), t / (1.0 + t))


@portable
def _bins(p, y, v, by_height):
    """The spline bin of each coordinate of ``v`` and its quantities, with the conditioner
    fed ``m ⊙ y``; ``by_height`` 0.0 finds bins by the ``x_k`` knots (forward), 1.0 by the
    ``y_k`` knots (inverse). Returns ``(b, x_k, W_k, y_k, H_k, δ_k, δ_{k+1})``, ``b`` a float
    vector of bin indices."""
    return _bins_of(p, mlp_apply(p.net, p.mask * y), v, by_height)


@portable
def _softmax_normalisers(out, d, n_k):
    """``(m_w, m_h, s_w, s_h)``: per coordinate, the largest of the ``n_k`` width logits and
    height logits in the conditioner's output ``out`` and the sums of their exponentials
    shifted by it (the softmax denominators, computed without overflow)."""
    mw = out[0:d]
    mh = out[n_k * d : (n_k + 1) * d]
    for k in range(1, n_k):
        mw = xp.maximum(mw, out[k * d : (k + 1) * d])
        mh = xp.maximum(mh, out[(n_k + k) * d : (n_k + k + 1) * d])
    sw = 0.0 * mw
    sh = 0.0 * mh
    for k in range(n_k):
        sw = sw + xp.exp(out[k * d : (k + 1) * d] - mw)
        sh = sh + xp.exp(out[(n_k + k) * d : (n_k + k + 1) * d] - mh)
    return mw, mh, sw, sh


@portable
def _bins_of(p, out, v, by_height):
    """:func:`_bins` from the conditioner's output ``out``."""
    d = v.shape[0]
    n_k = (out.shape[0] // d + 1) // 3
    bound = p.bound
    vc = xp.clip(v, -bound, bound)
    # softmax normalisers of widths and heights
    mw, mh, sw, sh = _softmax_normalisers(out, d, n_k)
    cw = 1.0 - n_k * MIN_BIN_WIDTH
    ch = 1.0 - n_k * MIN_BIN_HEIGHT
    # first pass: the bin of each coordinate (knots 1..K−1)
    xk = -bound + 0.0 * vc
    yk = -bound + 0.0 * vc
    b = 0.0 * vc
    for k in range(n_k - 1):
        wk = 2.0 * bound * (MIN_BIN_WIDTH + cw * xp.exp(out[k * d : (k + 1) * d] - mw) / sw)
        uh = out[(n_k + k) * d : (n_k + k + 1) * d]
        hk = 2.0 * bound * (MIN_BIN_HEIGHT + ch * xp.exp(uh - mh) / sh)
        xk = xk + wk
        yk = yk + hk
        knot = by_height * yk + (1.0 - by_height) * xk
        b = b + xp.where(vc >= knot, 1.0, 0.0)
    # second pass: gather the bin's quantities
    x_lo = -bound + 0.0 * vc
    y_lo = -bound + 0.0 * vc
    xs = -bound + 0.0 * vc
    ys = -bound + 0.0 * vc
    w_b = 0.0 * vc
    h_b = 0.0 * vc
    d_lo = 0.0 * vc + 1.0
    d_hi = 0.0 * vc + 1.0
    for k in range(n_k):
        wk = 2.0 * bound * (MIN_BIN_WIDTH + cw * xp.exp(out[k * d : (k + 1) * d] - mw) / sw)
        uh = out[(n_k + k) * d : (n_k + k + 1) * d]
        hk = 2.0 * bound * (MIN_BIN_HEIGHT + ch * xp.exp(uh - mh) / sh)
        here = b == k
        x_lo = xp.where(here, xs, x_lo)
        y_lo = xp.where(here, ys, y_lo)
        w_b = xp.where(here, wk, w_b)
        h_b = xp.where(here, hk, h_b)
        xs = xs + wk
        ys = ys + hk
        if k >= 1:  # interior knot k: δ_k is the lower derivative of bin k, the upper of k − 1
            dk = MIN_DERIVATIVE + _softplus(out[(2 * n_k + k - 1) * d : (2 * n_k + k) * d]
                                            + _DERIV_SHIFT)  # fmt: skip
            d_lo = xp.where(here, dk, d_lo)
            d_hi = xp.where(b == k - 1, dk, d_hi)
    return b, x_lo, w_b, y_lo, h_b, d_lo, d_hi


@portable
def _rq_forward(y, x_lo, w_b, y_lo, h_b, d_lo, d_hi):
    """``(g(y), log g'(y))`` in the bin (module docstring)."""
    xi = (y - x_lo) / w_b
    s = h_b / w_b
    xi1 = xi * (1.0 - xi)
    den = s + (d_hi + d_lo - 2.0 * s) * xi1
    g = y_lo + h_b * (s * xi * xi + d_lo * xi1) / den
    num = d_hi * xi * xi + 2.0 * s * xi1 + d_lo * (1.0 - xi) * (1.0 - xi)
    return g, 2.0 * xp.log(s) + xp.log(num) - 2.0 * xp.log(den)


@portable
def _inside(p, v):
    """1.0 on the free coordinates inside ``[−B, B]``, else 0.0."""
    return xp.where(xp.abs(v) < p.bound, 1.0, 0.0) * (1.0 - p.mask)


# -- the layer's functions -----------------------------------------------------------------------
@portable
def spline_forward_and_log_det(p, z):
    """``(f(z), log|det J_f(z)|)`` of a spline coupling."""
    _b, x_lo, w_b, y_lo, h_b, d_lo, d_hi = _bins(p, z, z, 0.0)
    zc = xp.clip(z, -p.bound, p.bound)
    g, log_gp = _rq_forward(zc, x_lo, w_b, y_lo, h_b, d_lo, d_hi)
    inside = _inside(p, z) > 0.5
    return xp.where(inside, g, z), xp.sum(xp.where(inside, log_gp, 0.0))


@portable
def spline_inverse_and_log_det(p, x):
    """``(z, log|det J_f(z)|)`` with ``z = f⁻¹(x)`` (the forward map's log-determinant at the
    preimage); the closed-form root of the module docstring."""
    _b, x_lo, w_b, y_lo, h_b, d_lo, d_hi = _bins(p, x, x, 1.0)
    xc = xp.clip(x, -p.bound, p.bound)
    s = h_b / w_b
    delta = d_hi + d_lo - 2.0 * s
    r = xc - y_lo
    qa = h_b * (s - d_lo) + r * delta
    qb = h_b * d_lo - r * delta
    qc = -s * r
    disc = xp.maximum(qb * qb - 4.0 * qa * qc, 0.0)
    xi = xp.clip(2.0 * qc / (-qb - xp.sqrt(disc)), 0.0, 1.0)
    z = x_lo + xi * w_b
    _g, log_gp = _rq_forward(z, x_lo, w_b, y_lo, h_b, d_lo, d_hi)
    inside = _inside(p, x) > 0.5
    return xp.where(inside, z, x), xp.sum(xp.where(inside, log_gp, 0.0))


@portable
def spline_forward(p, z):
    x, _ld = spline_forward_and_log_det(p, z)
    return x


@portable
def spline_inverse(p, x):
    z, _ld = spline_inverse_and_log_det(p, x)
    return z


@portable
def spline_log_det(p, z):
    _x, ld = spline_forward_and_log_det(p, z)
    return ld


@portable
def spline_pullback(p, z, g):
    """``J_f(z)ᵀ g + ∇_z log|det J_f(z)|`` of a spline coupling (module docstring)."""
    d = z.shape[0]
    out = mlp_apply(p.net, p.mask * z)
    n_out = out.shape[0]
    n_k = (n_out // d + 1) // 3
    bound = p.bound
    b, x_lo, w_b, _y_lo, h_b, d_lo, d_hi = _bins_of(p, out, z, 0.0)
    zc = xp.clip(z, -bound, bound)
    inside = _inside(p, z) > 0.5
    # local partials (ξ, s, H, y_k, δ_k, δ_{k+1})
    xi = (zc - x_lo) / w_b
    s = h_b / w_b
    xi1 = xi * (1.0 - xi)
    delta = d_hi + d_lo - 2.0 * s
    den = s + delta * xi1
    q = s * xi * xi + d_lo * xi1
    rr = q / den
    num = d_hi * xi * xi + 2.0 * s * xi1 + d_lo * (1.0 - xi) * (1.0 - xi)
    dden_xi = delta * (1.0 - 2.0 * xi)
    dden_s = 1.0 - 2.0 * xi1
    gh = g * h_b
    l_xi = (gh * ((2.0 * s * xi + d_lo * (1.0 - 2.0 * xi)) - rr * dden_xi) / den
            + (2.0 * d_hi * xi + 2.0 * s * (1.0 - 2.0 * xi) - 2.0 * d_lo * (1.0 - xi)) / num
            - 2.0 * dden_xi / den)  # fmt: skip
    l_s = (gh * (xi * xi - rr * dden_s) / den + 2.0 / s + 2.0 * xi1 / num
           - 2.0 * dden_s / den)  # fmt: skip
    l_dlo = gh * (xi1 - rr * xi1) / den + (1.0 - xi) * (1.0 - xi) / num - 2.0 * xi1 / den
    l_dhi = -gh * rr * xi1 / den + xi * xi / num - 2.0 * xi1 / den
    l_h = g * rr + l_s / w_b
    l_ylo = g
    l_y = l_xi / w_b
    l_xlo = -l_xi / w_b
    l_w = -(l_xi * xi + l_s * s) / w_b
    zero = 0.0 * z
    l_h = xp.where(inside, l_h, zero)
    l_ylo = xp.where(inside, l_ylo, zero)
    l_xlo = xp.where(inside, l_xlo, zero)
    l_w = xp.where(inside, l_w, zero)
    l_dlo = xp.where(inside, l_dlo, zero)
    l_dhi = xp.where(inside, l_dhi, zero)
    # to the softmax probabilities: W_j = 2B (w_min + c_w p_j), x_k = −B + Σ_{j<k} W_j
    mw, mh, sw, sh = _softmax_normalisers(out, d, n_k)
    cw = 2.0 * bound * (1.0 - n_k * MIN_BIN_WIDTH)
    ch = 2.0 * bound * (1.0 - n_k * MIN_BIN_HEIGHT)
    dot_w = zero
    dot_h = zero
    for k in range(n_k):
        pw = xp.exp(out[k * d : (k + 1) * d] - mw) / sw
        ph = xp.exp(out[(n_k + k) * d : (n_k + k + 1) * d] - mh) / sh
        lw_k = cw * (xp.where(b == k, l_w, zero) + xp.where(b > k, l_xlo, zero))
        lh_k = ch * (xp.where(b == k, l_h, zero) + xp.where(b > k, l_ylo, zero))
        dot_w = dot_w + pw * lw_k
        dot_h = dot_h + ph * lh_k
    # the cotangent of the conditioner's output, block j at entries j d .. j d + d − 1
    idx = xp.arange(n_out)
    blk = idx // d
    col = idx - blk * d
    cot = 0.0 * out
    for k in range(n_k):
        pw = xp.exp(out[k * d : (k + 1) * d] - mw) / sw
        ph = xp.exp(out[(n_k + k) * d : (n_k + k + 1) * d] - mh) / sh
        lw_k = cw * (xp.where(b == k, l_w, zero) + xp.where(b > k, l_xlo, zero))
        lh_k = ch * (xp.where(b == k, l_h, zero) + xp.where(b > k, l_ylo, zero))
        cot = cot + xp.where(blk == k, xp.take(pw * (lw_k - dot_w), col), 0.0)
        cot = cot + xp.where(blk == n_k + k, xp.take(ph * (lh_k - dot_h), col), 0.0)
        if k >= 1:
            a = out[(2 * n_k + k - 1) * d : (2 * n_k + k) * d] + _DERIV_SHIFT
            ld_k = xp.where(b == k, l_dlo, zero) + xp.where(b == k - 1, l_dhi, zero)
            cot = cot + xp.where(blk == 2 * n_k + k - 1, xp.take(_sigmoid(a) * ld_k, col), 0.0)
    v = mlp_vjp(p.net, p.mask * z, cot)
    return xp.where(inside, l_y, g) + p.mask * v


# -- the composite flow: RealNVP's composites with the coupling rebound ---------------------------
_SPLINE_NAMES = {
    "coupling_forward_and_log_det": spline_forward_and_log_det,
    "coupling_inverse_and_log_det": spline_inverse_and_log_det,
    "coupling_forward": spline_forward,
    "coupling_pullback": spline_pullback,
}

# (bind_globals caps the names of these bindings of bindings: Numba's cache files carry them)
spline_flow_forward_and_log_det = bind_globals(_layers.flow_forward_and_log_det, **_SPLINE_NAMES)
spline_flow_inverse_and_log_det = bind_globals(_layers.flow_inverse_and_log_det, **_SPLINE_NAMES)
spline_flow_pullback = bind_globals(_layers.flow_pullback, **_SPLINE_NAMES)
_COMPOSITE = {
    "flow_forward_and_log_det": spline_flow_forward_and_log_det,
    "flow_inverse_and_log_det": spline_flow_inverse_and_log_det,
}
spline_flow_forward = bind_globals(_layers.flow_forward, **_COMPOSITE)
spline_flow_inverse = bind_globals(_layers.flow_inverse, **_COMPOSITE)
spline_flow_log_det = bind_globals(_layers.flow_log_det, **_COMPOSITE)
spline_flow_log_density = bind_globals(_layers.flow_log_density, **_COMPOSITE)


class ComposedFlow(NamedTuple):
    """The flow ``f = outer ∘ inner`` of two flows (each a :class:`~langevin.flows.RealNVP`,
    a :class:`SplineFlow` or a ``ComposedFlow``): stacks that mix affine and spline blocks."""

    inner: Any
    outer: Any


# the composition's functions, with the parts' functions bound by name (flow_functions)
@portable
def _composed_forward_and_log_det(p, z):
    y, ld_inner = _inner_forward_and_log_det(p.inner, z)  # noqa: F821 (bound by name)
    x, ld_outer = _outer_forward_and_log_det(p.outer, y)  # noqa: F821
    return x, ld_inner + ld_outer


@portable
def _composed_inverse_and_log_det(p, x):
    y, ld_outer = _outer_inverse_and_log_det(p.outer, x)  # noqa: F821
    z, ld_inner = _inner_inverse_and_log_det(p.inner, y)  # noqa: F821
    return z, ld_inner + ld_outer


@portable
def _composed_pullback(p, z, g):
    y, _ld = _inner_forward_and_log_det(p.inner, z)  # noqa: F821
    return _inner_pullback(p.inner, z, _outer_pullback(p.outer, y, g))  # noqa: F821


class FlowFunctions(NamedTuple):
    """The portable functions of one flow type (see :func:`flow_functions`)."""

    kind: str
    forward_and_log_det: Any
    inverse_and_log_det: Any
    pullback: Any
    forward: Any
    inverse: Any
    log_det: Any
    log_density: Any


_REALNVP_FUNCTIONS = FlowFunctions(
    "realnvp",
    _layers.flow_forward_and_log_det,
    _layers.flow_inverse_and_log_det,
    _layers.flow_pullback,
    _layers.flow_forward,
    _layers.flow_inverse,
    _layers.flow_log_det,
    _layers.flow_log_density,
)
_SPLINE_FUNCTIONS = FlowFunctions(
    "spline",
    spline_flow_forward_and_log_det,
    spline_flow_inverse_and_log_det,
    spline_flow_pullback,
    spline_flow_forward,
    spline_flow_inverse,
    spline_flow_log_det,
    spline_flow_log_density,
)


_COMPOSED: dict = {}


def _composed_functions(inner: FlowFunctions, outer: FlowFunctions) -> FlowFunctions:
    key = (inner.kind, outer.kind)
    if key not in _COMPOSED:
        names = {"_inner_forward_and_log_det": inner.forward_and_log_det,
                 "_inner_inverse_and_log_det": inner.inverse_and_log_det,
                 "_inner_pullback": inner.pullback,
                 "_outer_forward_and_log_det": outer.forward_and_log_det,
                 "_outer_inverse_and_log_det": outer.inverse_and_log_det,
                 "_outer_pullback": outer.pullback}  # fmt: skip
        kind = f"composed({inner.kind},{outer.kind})"
        fld = bind_globals(_composed_forward_and_log_det, **names)
        inv = bind_globals(_composed_inverse_and_log_det, **names)
        pull = bind_globals(_composed_pullback, **names)
        comp = {"flow_forward_and_log_det": fld, "flow_inverse_and_log_det": inv}
        _COMPOSED[key] = FlowFunctions(
            kind, fld, inv, pull,
            bind_globals(_layers.flow_forward, **comp),
            bind_globals(_layers.flow_inverse, **comp),
            bind_globals(_layers.flow_log_det, **comp),
            bind_globals(_layers.flow_log_density, **comp),
        )  # fmt: skip
    return _COMPOSED[key]


def flow_functions(params: Any) -> FlowFunctions:
    """The portable composite functions (forward, inverse, log-det, pullback, density) of a
    flow's parameters: :class:`~langevin.flows.RealNVP`, :class:`SplineFlow` or a
    :class:`ComposedFlow` of them."""
    if isinstance(params, SplineFlow):
        return _SPLINE_FUNCTIONS
    if isinstance(params, RealNVP):
        return _REALNVP_FUNCTIONS
    if isinstance(params, ComposedFlow):
        return _composed_functions(flow_functions(params.inner), flow_functions(params.outer))
    raise TypeError(
        "a flow must be RealNVP, SplineFlow or ComposedFlow parameters (langevin.flows."
        f"realnvp_init, spline_flow_init); got {type(params).__name__}"
    )


def flow_dim(params: Any) -> int:
    """The dimension of a flow (RealNVP, SplineFlow or ComposedFlow)."""
    if isinstance(params, ComposedFlow):
        return flow_dim(params.outer)
    return int(np.shape(params.final.shift)[0])


def n_bins(coupling: SplineCoupling) -> int:
    """The number of bins ``K`` of a spline coupling (from its conditioner's output size)."""
    d = int(np.shape(coupling.mask)[0])
    return (int(np.shape(coupling.net.biases[-1])[0]) // d + 1) // 3


# -- construction --------------------------------------------------------------------------------
def spline_flow_init(
    dim: int,
    n_blocks: int = 4,
    hidden: tuple[int, ...] = (32, 32),
    *,
    bins: int = 8,
    bound: float = 5.0,
    activation: str = "tanh",
    seed: int = 0,
    permute: str = "random",
    init_scale: float = 0.01,
) -> SplineFlow:
    """Parameters of a neural spline flow on ``ℝ^dim`` (float64 / int64 NumPy arrays).

    Args:
        dim: the dimension, an int >= 2.
        n_blocks: the number of (permutation, spline coupling) blocks.
        hidden: the conditioner MLPs' hidden widths.
        bins: ``K``, the number of spline bins (an int >= 2).
        bound: ``B``: each spline acts on ``[−B, B]`` (the identity outside); a float > 0.
        activation: the conditioners' hidden activation (``"tanh"``, ``"silu"``, ``"relu"``).
        seed: the random seed of the weights and permutations.
        permute: ``"random"``, ``"reverse"`` or ``"none"`` (as :func:`~langevin.flows.
            realnvp_init`).
        init_scale: the scale of the conditioners' last-layer weights; 0 gives the identity
            (uniform bins with unit derivatives).

    Returns:
        A :class:`SplineFlow`, its masks as :func:`~langevin.flows.realnvp_init`'s.

    Example:
        >>> from langevin.flows import spline_flow_init, flow_functions
        >>> from langevin.nn import numpy_twin
        >>> import numpy as np
        >>> p = spline_flow_init(3, 2, (8,), bins=4, init_scale=0.0)
        >>> x, log_det = numpy_twin(flow_functions(p).forward_and_log_det)(p, np.ones(3))
        >>> bool(np.allclose(x, 1.0)), abs(float(log_det)) < 1e-12
        (True, True)
    """
    dim = _layers._check_int("dim", dim, 2)
    bins = _layers._check_int("bins", bins, 2)
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not 0 < bound < np.inf:
        raise ValueError(f"bound must be a positive float; got {bound!r}")
    base = _layers.realnvp_init(dim, n_blocks, hidden, activation=activation, seed=seed,
                                permute=permute, init_scale=init_scale)  # fmt: skip
    rng = np.random.default_rng([seed, 1])
    hidden_t = tuple(w.shape[0] for w in base.blocks[0].coupling.net.weights[:-1])
    blocks = []
    for block in base.blocks:
        net = mlp_init(rng, (dim, *hidden_t, dim * (3 * bins - 1)), activation,
                       last_scale=float(init_scale))  # fmt: skip
        coupling = SplineCoupling(block.coupling.mask, net, np.full(dim, float(bound)))
        blocks.append(SplineBlock(block.permutation, coupling))
    return SplineFlow(tuple(blocks), base.final)
