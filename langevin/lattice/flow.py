"""Gauge-equivariant normalizing flows for 2-D U(1), written once against ``xp``.

A flow ``f`` maps a latent field ``z`` (``2L²`` link angles, prior uniform on the torus) to a
field ``x = f(z)``; it is a composition of coupling layers acting on *plaquettes* (Kanwar et
al. 2020; Foreman et al. 2021, ``GaugeEquivCouplingLayer`` + ``NCPPlaqCouplingLayer``). Layer
``i`` has a direction ``μ = i mod 2`` and an offset ``o = ⌊i/2⌋ mod 4``; with ``c`` the lattice
coordinate ``n_1`` (``μ = 0``) or ``n_0`` (``μ = 1``), the plaquettes at ``c ≡ o`` are *active*,
at ``c ≡ o + 1, o + 2`` *frozen* and at ``c ≡ o + 3`` *passive* (mod 4; ``L`` must be a multiple
of 4). One layer:

1. ``φ = x_P(z)`` (all plaquettes); the frozen ones' ``(cos φ, sin φ)`` (zero elsewhere) go
   through a CNN of three 3×3 circular-padded convolutions (SiLU between them), giving per
   plaquette ``n_mix`` scales ``s_k`` and a shift ``t``.
2. Each active plaquette moves by the mixture of "tan" transforms
   ``h(φ) = (1/n_mix) Σ_k t_{s_k}(φ)``, ``t_s(φ) = 2 atan(e^s tan(φ/2))``, then by ``t``:
   ``φ ↦ h(φ) + t``. We write the displacement in a form with no branch cut,

       t_s(φ) − φ = 2 atan[(e^s − 1) sin φ / ((1 + cos φ) + e^s (1 − cos φ))],

   smooth and 2π-periodic in φ (the phase of ``(cos(φ/2) + i e^s sin(φ/2)) e^{−iφ/2}``,
   whose real part is positive), so ``Δ(φ) = h(φ) − φ + t`` needs no wrapping, and
   ``t_s'(φ) = 2e^s / ((1 + cos φ) + e^{2s}(1 − cos φ))``.
3. The active links (direction μ, at active sites) move by ``(+Δ, −Δ)`` for ``μ = (0, 1)``:
   each active plaquette changes by exactly ``Δ`` and only passive ones absorb the rest, so
   frozen plaquettes (the CNN's input) are unchanged and the layer is invertible.
   ``log|det J| = Σ_active log h'(φ)``.

Because the update reads plaquettes only, a gauge transformation
``x_μ(n) ↦ x_μ(n) + α(n) − α(n + μ̂)`` commutes with every layer (gauge equivariance), and a
shift of ``z`` by ``2π`` on a link shifts ``f(z)`` by the same: ``S(f(z)) − log|det J_f(z)|`` is
periodic, so the latent chain needs no wrapping (ALGORITHMS §6 step 3 wraps ``z``; doing so
changes nothing here). Our ``f`` equals the reference's up to multiples of 2π per link.

The inverse solves ``h(φ) = wrap(φ' − t)`` per active plaquette by bisection on ``[−π, π]``
(``h`` is increasing with ``h(±π) = ±π``), 64 halvings (below float64 resolution).

The convolutions are translation-equivariant and the masks are defined for every ``L ≡ 0 mod
4``: weights trained at ``L = 8`` run unchanged at ``L = 16`` (:meth:`U1Flow.at`; the
reference's ``transfer_to_new_lattice``).

Forward, inverse, log-determinant and the pullback ``z ↦ J_f(z)ᵀ g + ∇_z log|det J_f(z)|``
(reverse mode written by hand through the mixtures, the CNNs and the plaquettes:
:func:`flow_pullback`, :func:`flow_transformed_value_and_grad`) are portable: NumPy, Numba
and JAX run the same code, so flow-transformed HMC samples on both backends
(:mod:`langevin.lattice.fthmc`); the tests check the pullback against JAX autodiff.

References:
    Kanwar, G., Albergo, M. S., Boyda, D., Cranmer, K., Hackett, D. C., Racanière, S.,
    Rezende, D. J. and Shanahan, P. E. (2020). Equivariant flow-based sampling for lattice
    gauge theory. Phys. Rev. Lett. 125, 121601, arXiv:2003.06413.
    Albergo, M. S. et al. (2021). Introduction to normalizing flows for lattice field theory.
    arXiv:2101.08176.
    Foreman, S., Izubuchi, T., Jin, L., Jin, X.-Y., Osborn, J. C. and Tomiya, A. (2021).
    HMC with normalizing flows. LATTICE 2021, arXiv:2112.01586.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from langevin.backends.portable import portable
from langevin.lattice._ops import twin
from langevin.lattice.u1 import lattice_indices, u1_plaquettes, u1_value_and_grad

__all__ = ["U1Flow", "FlowParams", "FlowLayout", "flow_forward", "flow_inverse"]

xp: Any = None  # bound by each backend (langevin.backends.portable)

_BISECTIONS = 64


class FlowParams(NamedTuple):
    """The weights of every coupling layer's CNN, stacked on a leading layer axis:
    ``w1 (layers, 9, 2, h1)``, ``w2 (layers, 9, h1, h2)``, ``w3 (layers, 9, h2, n_mix + 1)``
    (the 9 taps of a 3×3 kernel, in the order of :class:`~langevin.lattice.u1.LatticeIndex`
    ``nbr``) and biases ``b1, b2, b3``. A pytree of arrays: JAX trains it; any ``L`` uses it."""

    w1: Any
    b1: Any
    w2: Any
    b2: Any
    w3: Any
    b3: Any


class FlowLayout(NamedTuple):
    """What depends on ``L`` (not trained): gather indices and per-layer masks
    ``active, frozen (layers, V)`` and ``link_sign (layers, 2V)`` (+1/−1 on the active links of
    direction 0/1, 0 elsewhere)."""

    plaq: np.ndarray
    nbr: np.ndarray
    site: np.ndarray
    plus: np.ndarray
    minus: np.ndarray
    active: np.ndarray
    frozen: np.ndarray
    link_sign: np.ndarray


# -- portable math -----------------------------------------------------------------------------
@portable
def _silu(a):
    return a / (1.0 + xp.exp(-a))


@portable
def _conv(h, w, b, nbr):
    """3×3 circular convolution of ``h (V, C_in)`` with ``w (9, C_in, C_out)``, plus ``b``."""
    out = xp.dot(xp.take(h, nbr[0]), w[0])
    for k in range(1, 9):
        out = out + xp.dot(xp.take(h, nbr[k]), w[k])
    return out + b


@portable
def _network(z, i, params, layout):
    """Layer ``i``'s plaquettes ``φ``, the CNN's pre-activations ``u1, u2`` and its output
    ``(V, n_mix + 1)`` (``n_mix`` scales, then the shift) from the frozen ``(cos φ, sin φ)``."""
    phi = u1_plaquettes(z, layout.plaq)
    frozen = layout.frozen[i]
    c = frozen * xp.cos(phi)
    s = frozen * xp.sin(phi)
    w1 = params.w1[i]
    nbr = layout.nbr
    # the first convolution from the two input channels, as outer products (no stacking)
    u1 = xp.take(c, nbr[0])[:, None] * w1[0, 0][None, :]
    u1 = u1 + xp.take(s, nbr[0])[:, None] * w1[0, 1][None, :]
    for k in range(1, 9):
        u1 = u1 + xp.take(c, nbr[k])[:, None] * w1[k, 0][None, :]
        u1 = u1 + xp.take(s, nbr[k])[:, None] * w1[k, 1][None, :]
    u1 = u1 + params.b1[i]
    u2 = _conv(_silu(u1), params.w2[i], params.b2[i], nbr)
    return phi, u1, u2, _conv(_silu(u2), params.w3[i], params.b3[i], nbr)


@portable
def _coefficients(z, i, params, layout):
    """The plaquettes ``φ`` of ``z`` and layer ``i``'s CNN output ``(V, n_mix + 1)``."""
    phi, _u1, _u2, out = _network(z, i, params, layout)
    return phi, out


@portable
def _mixture(phi, out):
    """``(h(φ) − φ, h'(φ))`` of the tan mixture with scales ``out[:, :n_mix]``."""
    n_mix = out.shape[1] - 1
    cp = xp.cos(phi)
    sp = xp.sin(phi)
    delta = 0.0 * phi
    deriv = 0.0 * phi
    for m in range(n_mix):
        es = xp.exp(out[:, m])
        delta = delta + 2.0 * xp.arctan((es - 1.0) * sp / ((1.0 + cp) + es * (1.0 - cp)))
        deriv = deriv + 2.0 * es / ((1.0 + cp) + es * es * (1.0 - cp))
    return delta / n_mix, deriv / n_mix


@portable
def _forward_body(i, carry, args):
    z, log_det = carry
    params, layout = args
    phi, out = _coefficients(z, i, params, layout)
    delta, deriv = _mixture(phi, out)
    n_mix = out.shape[1] - 1
    shift = delta + out[:, n_mix]
    z = z + layout.link_sign[i] * xp.take(shift, layout.site)
    log_det = log_det + xp.sum(layout.active[i] * xp.log(deriv))
    return z, log_det


@portable
def flow_forward(z, params, layout):
    """``(f(z), log|det J_f(z)|)``: the coupling layers in order."""
    n_layers = params.w1.shape[0]
    return xp.fori_loop(0, n_layers, _forward_body, (z + 0.0, 0.0 * z[0]), (params, layout))


@portable
def _bisection_body(k, carry, args):
    lo, hi = carry
    u, out = args
    mid = 0.5 * (lo + hi)
    delta, _deriv = _mixture(mid, out)
    below = mid + delta < u
    return xp.where(below, mid, lo), xp.where(below, hi, mid)


@portable
def _inverse_body(j, z, args):
    params, layout, n_layers = args
    i = n_layers - 1 - j
    phi, out = _coefficients(z, i, params, layout)  # the frozen plaquettes are unchanged
    n_mix = out.shape[1] - 1
    t = out[:, n_mix]
    a = phi - t + 3.141592653589793
    u = a - 6.283185307179586 * xp.floor(a / 6.283185307179586) - 3.141592653589793
    lo = 0.0 * u - 3.141592653589793
    hi = 0.0 * u + 3.141592653589793
    lo, hi = xp.fori_loop(0, 64, _bisection_body, (lo, hi), (u, out))
    delta, _deriv = _mixture(0.5 * (lo + hi), out)
    return z - layout.link_sign[i] * xp.take(delta + t, layout.site)


@portable
def flow_inverse(x, params, layout):
    """``f⁻¹(x)``: the layers in reverse, each by bisection on the tan mixture."""
    n_layers = params.w1.shape[0]
    return xp.fori_loop(0, n_layers, _inverse_body, x + 0.0, (params, layout, n_layers))


# -- the hand-written pullback -----------------------------------------------------------------
@portable
def _silu_grad(a):
    sig = 1.0 / (1.0 + xp.exp(-a))
    return sig * (1.0 + a * (1.0 - sig))


@portable
def _conv_transpose(g, w, nbr):
    """The adjoint of :func:`_conv` in its input: ``g (V, C_out) -> (V, C_in)``. Tap ``k``
    reads site ``n + d_k``, so its adjoint gathers from ``m − d_k``, tap ``8 − k``."""
    out = xp.dot(xp.take(g, nbr[8]), w[0].T)
    for k in range(1, 9):
        out = out + xp.dot(xp.take(g, nbr[8 - k]), w[k].T)
    return out


@portable
def _layer_pullback(z, i, g, params, layout):
    """``J_iᵀ g + ∇ log|det J_i|`` at the layer's input ``z`` (reverse mode by hand).

    With ``D = h(φ) − φ + t`` the active plaquettes' shift, ``d_m = t_{s_m}'(φ)``,
    ``H = mean_m d_m``, ``Q_m = (1 + cos φ) + e^{2 s_m}(1 − cos φ)``:
    ``∂D/∂φ = H − 1``, ``∂D/∂s_m = 2 e^{s_m} sin φ / (M Q_m)``, ``∂D/∂t = 1``,
    ``∂d_m/∂φ = −d_m (e^{2 s_m} − 1) sin φ / Q_m``, ``∂d_m/∂s_m = d_m (1 − 2 e^{2 s_m}(1 − cos φ)
    / Q_m)``; then back through the CNN (SiLU' and transposed convolutions) to the frozen
    plaquettes' (cos, sin), and from plaquettes to links with the signs of ``x_P``.
    """
    phi, u1, u2, out = _network(z, i, params, layout)
    n_mix = out.shape[1] - 1
    n_sites = phi.shape[0]
    sg = layout.link_sign[i] * g
    g_d = sg[:n_sites] + sg[n_sites:]  # cotangent of D (each site has one active link)
    act = layout.active[i]
    cp = xp.cos(phi)
    sp = xp.sin(phi)
    h_mean = 0.0 * phi
    for m in range(n_mix):
        e2 = xp.exp(2.0 * out[:, m])
        h_mean = h_mean + 2.0 * xp.exp(out[:, m]) / ((1.0 + cp) + e2 * (1.0 - cp))
    h_mean = h_mean / n_mix
    a = act / (h_mean * n_mix)  # ∂ log H / ∂ d_m on active plaquettes
    g_phi = g_d * (h_mean - 1.0)
    cols = 1.0 * xp.arange(n_mix + 1)
    g_out = g_d[:, None] * (cols == n_mix)[None, :]
    for m in range(n_mix):
        es = xp.exp(out[:, m])
        e2 = es * es
        q = (1.0 + cp) + e2 * (1.0 - cp)
        d = 2.0 * es / q
        g_phi = g_phi - a * d * (e2 - 1.0) * sp / q
        g_s = g_d * 2.0 * es * sp / (n_mix * q) + a * d * (1.0 - 2.0 * e2 * (1.0 - cp) / q)
        g_out = g_out + g_s[:, None] * (cols == m)[None, :]
    nbr = layout.nbr
    g_u2 = _conv_transpose(g_out, params.w3[i], nbr) * _silu_grad(u2)
    g_u1 = _conv_transpose(g_u2, params.w2[i], nbr) * _silu_grad(u1)
    w1 = params.w1[i]
    g_c = xp.dot(xp.take(g_u1, nbr[8]), w1[0, 0])
    g_s = xp.dot(xp.take(g_u1, nbr[8]), w1[0, 1])
    for k in range(1, 9):
        g_c = g_c + xp.dot(xp.take(g_u1, nbr[8 - k]), w1[k, 0])
        g_s = g_s + xp.dot(xp.take(g_u1, nbr[8 - k]), w1[k, 1])
    g_phi = g_phi + layout.frozen[i] * (cp * g_s - sp * g_c)
    return g + xp.take(g_phi, layout.plus) - xp.take(g_phi, layout.minus)


@portable
def _store_body(i, carry, args):
    z, log_det, zs = carry
    zs = xp.set_at(zs, i, z)
    z, log_det = _forward_body(i, (z, log_det), args)
    return z, log_det, zs


@portable
def _pullback_body(j, g, args):
    zs, params, layout, n_layers = args
    i = n_layers - 1 - j
    return _layer_pullback(zs[i], i, g, params, layout)


@portable
def flow_forward_with_pullback_inputs(z, params, layout):
    """``(f(z), log|det J_f(z)|, zs)`` with ``zs`` the input of every layer."""
    n_layers = params.w1.shape[0]
    zs = xp.zeros((n_layers, z.shape[0])) + 0.0 * z[0]
    return xp.fori_loop(0, n_layers, _store_body, (z + 0.0, 0.0 * z[0], zs), (params, layout))


@portable
def flow_pullback(zs, g, params, layout):
    """``J_f(z)ᵀ g + ∇_z log|det J_f(z)|`` from the stored layer inputs ``zs``."""
    n_layers = params.w1.shape[0]
    return xp.fori_loop(0, n_layers, _pullback_body, g + 0.0, (zs, params, layout, n_layers))


@portable
def flow_transformed_value_and_grad(z, data):
    """``(log π(f(z)) + log|det J_f(z)|, its gradient)`` for the U(1) action;
    ``data = (β, params, layout)``: the value and gradient of ``−S_FT``."""
    beta, params, layout = data
    x, log_det, zs = flow_forward_with_pullback_inputs(z, params, layout)
    value, g = u1_value_and_grad(x, (beta, layout.plaq, layout.plus, layout.minus))
    return value + log_det, flow_pullback(zs, g, params, layout)


# -- the flow object -------------------------------------------------------------------------------
def _layout(L: int, n_layers: int) -> FlowLayout:
    idx = lattice_indices(L)
    V = L * L
    n0, n1 = np.meshgrid(np.arange(L), np.arange(L), indexing="ij")
    active = np.zeros((n_layers, V))
    frozen = np.zeros((n_layers, V))
    sign = np.zeros((n_layers, 2 * V))
    for i in range(n_layers):
        mu, off = i % 2, (i // 2) % 4
        c = (n1 if mu == 0 else n0).reshape(-1) % 4
        active[i] = c == off
        frozen[i] = (c == (off + 1) % 4) | (c == (off + 2) % 4)
        sign[i, mu * V : (mu + 1) * V] = (1.0 if mu == 0 else -1.0) * active[i]
    return FlowLayout(idx.plaq, idx.nbr, idx.site, idx.plus, idx.minus, active, frozen, sign)


@dataclass(frozen=True)
class U1Flow:
    """A gauge-equivariant flow on the ``L × L`` U(1) lattice (see the module docstring).

    Args:
        L: lattice size, a multiple of 4 (the stripe masks have period 4).
        n_layers: coupling layers (the reference uses 16–24; each direction and offset
            cycles every 8).
        hidden: the CNN's two hidden widths.
        n_mix: tan transforms in each mixture.

    Example:
        >>> import numpy as np
        >>> from langevin.lattice import U1Flow
        >>> flow = U1Flow(L=8, n_layers=8)
        >>> params = flow.init(seed=0, scale=0.1)          # small random weights
        >>> z = np.random.default_rng(1).uniform(-np.pi, np.pi, flow.dim)
        >>> x, log_det = flow.forward(z, params, backend="numpy")  # default: Numba
        >>> bool(np.allclose(flow.inverse(x, params, backend="numpy"), z, atol=1e-10))
        True
        >>> flow16 = flow.at(16)                            # same weights, larger lattice
    """

    L: int
    n_layers: int = 8
    hidden: tuple[int, int] = (8, 8)
    n_mix: int = 2

    def __post_init__(self) -> None:
        L = self.L
        if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or L < 4 or L % 4:
            raise ValueError(f"U1Flow: L must be a positive multiple of 4 (the masks have "
                             f"period 4); got {L!r}")  # fmt: skip
        n = self.n_layers
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"U1Flow: n_layers must be an int >= 0; got {n!r}")
        hidden = tuple(self.hidden) if isinstance(self.hidden, (tuple, list)) else None
        if (
            hidden is None
            or len(hidden) != 2
            or not all(
                isinstance(h, (int, np.integer)) and not isinstance(h, bool) and h >= 1
                for h in hidden
            )
        ):
            raise ValueError(f"U1Flow: hidden must be two positive ints; got {self.hidden!r}")
        m = self.n_mix
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"U1Flow: n_mix must be an int >= 1; got {m!r}")
        object.__setattr__(self, "L", int(L))
        object.__setattr__(self, "n_layers", int(n))
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))
        object.__setattr__(self, "n_mix", int(m))

    @property
    def dim(self) -> int:
        return 2 * self.L * self.L

    @property
    def layout(self) -> FlowLayout:
        return _layout(self.L, self.n_layers)

    def at(self, L: int) -> U1Flow:
        """The same architecture on an ``L × L`` lattice: its parameters are the same arrays
        (translation-equivariant convolutions), so a flow trained at small ``L`` transfers."""
        return U1Flow(L, self.n_layers, self.hidden, self.n_mix)

    def init(self, seed: int = 0, scale: float = 0.0) -> FlowParams:
        """Parameters: hidden weights ~ N(0, 1/fan_in), output weights ~ N(0, scale²/fan_in)
        (``scale = 0``: the identity flow, where training starts), zero biases."""
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale >= 0):
            raise ValueError(f"U1Flow.init: scale must be a float >= 0; got {scale!r}")
        rng = np.random.default_rng(seed)
        n, (h1, h2), m = self.n_layers, self.hidden, self.n_mix
        return FlowParams(
            rng.standard_normal((n, 9, 2, h1)) / math.sqrt(18.0), np.zeros((n, h1)),
            rng.standard_normal((n, 9, h1, h2)) / math.sqrt(9.0 * h1), np.zeros((n, h2)),
            scale * rng.standard_normal((n, 9, h2, m + 1)) / math.sqrt(9.0 * h2),
            np.zeros((n, m + 1)),
        )  # fmt: skip

    def check_params(self, params: Any) -> FlowParams:
        """``params`` as float64 NumPy :class:`FlowParams`, shapes checked against this flow."""
        if not isinstance(params, tuple) or len(params) != 6:
            raise TypeError(f"params must be FlowParams (w1, b1, w2, b2, w3, b3); got "
                            f"{type(params).__name__}")  # fmt: skip
        p = FlowParams(*(np.ascontiguousarray(np.asarray(a, dtype=np.float64)) for a in params))
        n, (h1, h2), m = self.n_layers, self.hidden, self.n_mix
        want = FlowParams((n, 9, 2, h1), (n, h1), (n, 9, h1, h2), (n, h2), (n, 9, h2, m + 1),
                          (n, m + 1))  # fmt: skip
        for name, a, shape in zip(FlowParams._fields, p, want):
            if a.shape != shape:
                raise ValueError(f"params.{name} has shape {a.shape}; this flow ({self}) needs "
                                 f"{shape}")  # fmt: skip
        return p

    def _field(self, z: Any, name: str) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        if z.shape[-3:] == (2, self.L, self.L):
            z = z.reshape((*z.shape[:-3], self.dim))
        if z.shape[-1:] != (self.dim,):
            raise ValueError(f"{name} must have last axis 2*L*L = {self.dim} (or shape (..., 2, "
                             f"{self.L}, {self.L})); got {z.shape}")  # fmt: skip
        return np.ascontiguousarray(z)

    def forward(self, z: Any, params: Any, backend: str = "numba") -> tuple[np.ndarray, Any]:
        """``(f(z), log|det J_f(z)|)`` for fields ``z`` of shape ``(..., 2L²)`` (NumPy).

        ``backend``: ``"numba"`` (compiled, float64) or ``"numpy"`` (interpreted)."""
        p, z = self.check_params(params), self._field(z, "z")
        fn = twin(flow_forward, _host(backend))
        flat = z.reshape(-1, self.dim)
        out = [fn(row, p, self.layout) for row in flat]
        x = np.stack([o[0] for o in out]).reshape(z.shape) if out else z.copy()
        ld = np.asarray([float(o[1]) for o in out]).reshape(z.shape[:-1])
        return x, ld

    def inverse(self, x: Any, params: Any, backend: str = "numba") -> np.ndarray:
        """``f⁻¹(x)`` for fields ``x`` of shape ``(..., 2L²)`` (NumPy)."""
        p, x = self.check_params(params), self._field(x, "x")
        fn = twin(flow_inverse, _host(backend))
        flat = x.reshape(-1, self.dim)
        out = [fn(row, p, self.layout) for row in flat]
        return np.stack(out).reshape(x.shape) if out else x.copy()

    # -- JAX ----------------------------------------------------------------------------------
    def jax_functions(self):
        """``(forward, inverse)``: JAX functions ``(z, params) -> (x, log_det)`` and
        ``(x, params) -> z`` on one field, in the dtype of ``z`` (jit and vmap them)."""
        import jax
        import jax.numpy as jnp

        fwd, inv = twin(flow_forward, "jax"), twin(flow_inverse, "jax")
        layout = self.layout

        def cast(tree, dtype):
            return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), tree)

        def jlayout(dtype):
            ints = (jnp.asarray(a) for a in layout[:5])
            return FlowLayout(*ints, *(jnp.asarray(a, dtype) for a in layout[5:]))

        def forward(z, params):
            return fwd(z, cast(FlowParams(*params), z.dtype), jlayout(z.dtype))

        def inverse(x, params):
            return inv(x, cast(FlowParams(*params), x.dtype), jlayout(x.dtype))

        return forward, inverse


def _host(backend: str) -> str:
    if backend not in ("numba", "numpy"):
        raise ValueError(f"backend must be 'numba' or 'numpy' here (JAX: U1Flow.jax_functions); "
                         f"got {backend!r}")  # fmt: skip
    return backend
