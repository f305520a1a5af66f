"""Field-transformation HMC (ftHMC) for 2-D U(1): HMC in the latent variable of a flow.

With a flow ``x = f(z)`` (:class:`~langevin.lattice.flow.U1Flow`) the law of ``z`` that makes
``f(z) ~ π`` has the *field-transformed action* (Foreman et al. 2021, §2)

    S_FT(z) = S(f(z)) − log|det J_f(z)|,      log π_FT(z) = −S_FT(z),

the change-of-variables formula. :func:`flow_transformed_u1` is this target; any kernel of the
package samples it (``langevin.HMC`` gives ftHMC: ALGORITHMS §6's trajectory with the
package's leapfrog), and measurements are taken on ``x = f(z)`` (``target.to_field``,
``target.topological_charge``). ``S_FT`` is 2π-periodic in every latent link (see
:mod:`~langevin.lattice.flow`), so the reference's wrapping of ``z`` after a trajectory is not
needed. With the identity flow (zero output weights) ``π_FT = π`` and ftHMC is HMC on the same
noise (the tests check 1e-12).

Backends: the gradient of ``log π_FT`` is the pullback ``J_fᵀ ∇log π(f(z)) + ∇log|det J_f|``
through the coupling layers and their CNNs, written by hand once against ``xp``
(:func:`~langevin.lattice.flow.flow_transformed_value_and_grad`), so Numba samples it; the JAX
form differentiates the same portable forward map by autodiff (faster to compile than tracing
the hand-written reverse pass, which runs on JAX too), and the tests check the two against each
other (1e-11 on one gradient, 1e-12 on ftHMC chains on the same noise). The flow's parameters
are the target's runtime data on Numba (a retrained flow of the same shape compiles nothing).
The first Numba compilation of the flow is long (30 s to 4 minutes on this 2-core machine; cached on
disk after).

Training (:func:`train_u1_flow`) minimises, with Adam (optax) on JAX, either the reverse KL
divergence from the uniform prior, ``KL(q‖π) = E_{z~U}[S(f(z)) − log|det J_f(z)|]`` (+ const;
mode-seeking, needs no data), or the forward KL divergence ``KL(π‖q) = −E_{x~π}[log q(x)]``
(+ const; mass-covering) on exact draws of π (:func:`~langevin.lattice.exact_u1_samples`,
fresh every step), with ``log q(x) = log p₀(f⁻¹(x)) + log|det J_{f⁻¹}(x)|`` and ``p₀`` uniform:
the loss is ``E_{x~π}[Σ_layers Σ_active log h'(φ_in)]`` along the inverse pass. The inverse
bisects each layer's tan mixture; to differentiate it in the parameters without
differentiating the bisection, each inverted plaquette angle gets one Newton step
``φ ← φ₀ − (h(φ₀) + t − φ_out)/h'(φ₀)`` from the (gradient-stopped) bisection root ``φ₀``: its
value is ``φ₀`` (the residual is zero to round-off) and its derivative is the implicit-function
one, ``dφ = (dφ_out − dt − ∂_s h · ds)/h'``.

References:
    Foreman, S., Izubuchi, T., Jin, L., Jin, X.-Y., Osborn, J. C. and Tomiya, A. (2021).
    HMC with normalizing flows. LATTICE 2021, arXiv:2112.01586.
    Albergo, M. S., Kanwar, G. and Shanahan, P. E. (2019). Flow-based generative models for
    Markov chain Monte Carlo in lattice field theory. Phys. Rev. D 100, 034515.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from langevin.lattice._ops import twin
from langevin.lattice.exact import exact_u1_samples
from langevin.lattice.flow import (
    FlowLayout,
    FlowParams,
    U1Flow,
    _bisection_body,
    _coefficients,
    _mixture,
    flow_transformed_value_and_grad,
)
from langevin.lattice.u1 import (
    _check_beta,
    exact_plaquette,
    exact_q2,
    plaquette,
    topological_charge,
    u1_logdensity,
)

__all__ = ["flow_transformed_u1", "train_u1_flow", "flow_ess"]


def _check_flow(flow: Any, params: Any) -> FlowParams:
    if not isinstance(flow, U1Flow):
        raise TypeError(f"flow must be a langevin.lattice.U1Flow; got {type(flow).__name__}")
    return flow.check_params(params)


def flow_transformed_u1(beta: float, flow: U1Flow, params: Any):
    """The latent target ``log π_FT(z) = −S(f(z)) + log|det J_f(z)|`` of ftHMC.

    Args:
        beta: the gauge coupling β.
        flow: a :class:`U1Flow` on the lattice to sample (``flow.at(L)`` for a transferred
            flow).
        params: its :class:`FlowParams` (trained by :func:`train_u1_flow`, or
            ``flow.init()`` for the identity).

    Returns:
        A :class:`~langevin.Target` on the latent field (block ``"z"``, shape ``(2, L, L)``)
        for both backends, started at ``z = 0``, with ``to_field(draws)`` (``x = f(z)``),
        ``plaquette(draws)`` and ``topological_charge(draws)`` measured on ``x``, and
        ``exact_plaquette``/``exact_q2``.

    Example:
        >>> import langevin
        >>> import langevin.lattice
        >>> from langevin.lattice import U1Flow, flow_transformed_u1
        >>> flow = U1Flow(L=8, n_layers=4)
        >>> target = flow_transformed_u1(2.0, flow, flow.init())   # identity flow
        >>> target.dim, target.exact_plaquette == langevin.lattice.exact_plaquette(2.0, 8)
        (128, True)
        >>> # the first Numba compilation of a flow takes minutes (then cached on disk)
        >>> trace = langevin.sample(target, langevin.HMC(0.2, n_leapfrog=5), backend="jax",
        ...                         chains=2, warmup=50, draws=100, seed=0)  # doctest: +SKIP
        >>> q = target.topological_charge(trace.draws)  # on x = f(z)  # doctest: +SKIP
    """
    from langevin.targets.base import Target

    beta = _check_beta(beta)
    params = _check_flow(flow, params)
    layout = flow.layout
    forward, _inverse = flow.jax_functions()
    ld = twin(u1_logdensity, "jax")

    def logdensity(z):
        # JAX differentiates this (compiles about 3x faster than tracing the hand-written
        # pullback, which the tests check against it)
        import jax.numpy as jnp

        x, log_det = forward(z, params)
        return ld(x, jnp.asarray(beta, z.dtype), jnp.asarray(layout.plaq)) + log_det

    L = flow.L
    target = Target(
        names={"z": (2, L, L)},
        numba={"value_and_grad": twin(flow_transformed_value_and_grad, "numba")},
        jax={"logdensity": logdensity},
        data=(beta, params, layout),
        initial_position=np.zeros(flow.dim),
        name=f"flow_transformed_u1_L{L}_beta{beta:g}",
    )
    target.beta, target.L, target.flow, target.params = beta, L, flow, params

    def to_field(draws: Any) -> np.ndarray:
        """``x = f(z)`` for latent draws ``(..., 2L²)`` (Numba, float64)."""
        return flow.forward(draws, params)[0]

    target.to_field = to_field
    target.plaquette = lambda draws: plaquette(to_field(draws), L)
    target.topological_charge = lambda draws: topological_charge(to_field(draws), L)
    target.exact_plaquette = exact_plaquette(beta, L)
    target.exact_q2 = exact_q2(beta, L)
    return target


def flow_ess(log_w: Any) -> float:
    """The flow's effective sample size fraction ``(Σw)² / (N Σw²)`` from ``log w``."""
    log_w = np.asarray(log_w, dtype=np.float64)
    log_w = log_w - np.max(log_w)
    w = np.exp(log_w)
    return float(np.sum(w) ** 2 / (log_w.size * np.sum(w * w)))


def train_u1_flow(
    flow: U1Flow,
    beta: float,
    *,
    steps: int = 500,
    batch: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 0,
    params: Any = None,
    log_every: int = 50,
    objective: str = "reverse",
    max_seconds: float | None = None,
) -> tuple[FlowParams, dict[str, Any]]:
    """Train ``flow`` toward the U(1) law at ``beta`` by reverse or forward KL.

    ``objective="reverse"`` minimises ``E_{z~U(−π,π)^{2V}}[S(f(z)) − log|det J_f(z)|]``
    (``KL(q‖π)`` up to a constant); ``objective="forward"`` minimises
    ``−E_{x~π}[log q(x)] = E_{x~π}[−log|det J_{f⁻¹}(x)|]`` (``KL(π‖q)`` up to a constant) on
    ``batch`` fresh exact draws per step (:func:`~langevin.lattice.exact_u1_samples`, NumPy),
    differentiating the bisection inverse implicitly (module docstring). Adam (optax) on JAX,
    in JAX's current default precision.

    Args:
        flow: the :class:`U1Flow`.
        beta: the gauge coupling.
        steps: Adam steps (>= 1).
        batch: prior (reverse) or exact (forward) draws per step (>= 2).
        learning_rate: Adam's step size.
        seed: seeds the prior draws (and the exact draws of ``"forward"``).
        params: where to start (default ``flow.init(seed)``, the identity flow); pass trained
            parameters to continue (or to retrain a transferred flow).
        log_every: record the loss and the flow ESS every this many steps.
        objective: ``"reverse"`` (from the prior, no data) or ``"forward"`` (exact draws).
        max_seconds: stop after the step that exceeds this wall time (compilation included),
            for comparisons at equal training time; ``None``: run all ``steps``.

    Returns:
        ``(params, history)``: float64 NumPy :class:`FlowParams` and
        ``{"step", "loss", "ess", "seconds", "first_step_seconds"}``: ``ess`` the flow ESS
        ``(Σw)²/(NΣw²)`` of a batch of prior draws, ``log w = −S(f(z)) + log|det J_f(z)|``
        (the training batch for ``"reverse"``, a fresh one for ``"forward"``); ``loss`` the
        objective up to its constant; ``seconds`` the wall time, compilation included;
        ``first_step_seconds`` the time to the end of the first step (mostly compilation).
    """
    import jax
    import jax.numpy as jnp
    import optax

    beta = _check_beta(beta)
    for name, value, least in (("steps", steps, 1), ("batch", batch, 2),
                               ("log_every", log_every, 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"train_u1_flow: {name} must be an int >= {least}; got {value!r}")
    if not (isinstance(learning_rate, (int, float)) and learning_rate > 0):
        raise ValueError(f"train_u1_flow: learning_rate must be > 0; got {learning_rate!r}")
    if objective not in ("reverse", "forward"):
        raise ValueError(f"train_u1_flow: objective must be 'reverse' or 'forward'; got "
                         f"{objective!r}")  # fmt: skip
    if max_seconds is not None and not (
        isinstance(max_seconds, (int, float)) and not isinstance(max_seconds, bool)
        and max_seconds > 0
    ):  # fmt: skip
        raise ValueError(f"train_u1_flow: max_seconds must be > 0 or None; got {max_seconds!r}")
    start_params = flow.init(seed) if params is None else params
    start_params = _check_flow(flow, start_params)
    t0 = time.perf_counter()
    dtype = jnp.zeros(()).dtype
    forward, _ = flow.jax_functions()
    ld = twin(u1_logdensity, "jax")
    plaq_index = jnp.asarray(flow.layout.plaq)

    def log_w(p, z):
        x, log_det = forward(z, p)
        return ld(x, jnp.asarray(beta, z.dtype), plaq_index) + log_det

    def loss_fn(p, z):
        lw = jax.vmap(log_w, in_axes=(None, 0))(p, z)
        return -jnp.mean(lw), lw

    optimizer = optax.adam(learning_rate)
    p = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), start_params)
    state = optimizer.init(p)

    @jax.jit
    def update(p, state, key):
        z = jax.random.uniform(key, (batch, flow.dim), dtype, -jnp.pi, jnp.pi)
        (loss, lw), g = jax.value_and_grad(loss_fn, has_aux=True)(p, z)
        updates, state = optimizer.update(g, state, p)
        return optax.apply_updates(p, updates), state, loss, lw

    if objective == "forward":
        inverse = _jax_inverse_with_log_det(flow)

        def forward_loss(p, x):
            log_q = jax.vmap(lambda v: inverse(v, p)[1])(x)  # log|det J_{f⁻¹}(x)|
            return -jnp.mean(log_q)

        @jax.jit
        def update_forward(p, state, x):
            loss, g = jax.value_and_grad(forward_loss)(p, x)
            updates, state = optimizer.update(g, state, p)
            return optax.apply_updates(p, updates), state, loss

        @jax.jit
        def prior_log_w(p, key):
            z = jax.random.uniform(key, (batch, flow.dim), dtype, -jnp.pi, jnp.pi)
            return jax.vmap(log_w, in_axes=(None, 0))(p, z)

        data_rng = np.random.default_rng(seed)

    key = jax.random.PRNGKey(seed)
    history: dict[str, Any] = {"step": [], "loss": [], "ess": []}
    for step in range(int(steps)):
        key, sub = jax.random.split(key)
        if objective == "reverse":
            p, state, loss, lw = update(p, state, sub)
        else:
            x = exact_u1_samples(beta, flow.L, batch, data_rng)
            p, state, loss = update_forward(p, state, jnp.asarray(x, dtype))
        if step == 0:
            loss.block_until_ready()
            history["first_step_seconds"] = time.perf_counter() - t0
        last = step == steps - 1 or (
            max_seconds is not None and time.perf_counter() - t0 > max_seconds
        )
        if step % log_every == 0 or last:
            if objective == "forward":
                lw = prior_log_w(p, jax.random.fold_in(sub, 1))
            history["step"].append(step)
            history["loss"].append(float(loss))
            history["ess"].append(flow_ess(np.asarray(lw)))
        if last:
            break
    history["seconds"] = time.perf_counter() - t0
    out = FlowParams(*(np.asarray(a, dtype=np.float64) for a in p))
    if not all(np.all(np.isfinite(a)) for a in out):
        raise FloatingPointError("train_u1_flow: the parameters became non-finite; lower "
                                 "learning_rate")  # fmt: skip
    return out, history


def _jax_inverse_with_log_det(flow: U1Flow):
    """``(x, params) -> (f⁻¹(x), log|det J_{f⁻¹}(x)|)`` on JAX for one field, differentiable in
    ``params`` and ``x``: the layers in reverse, each active plaquette inverted by bisection
    (gradient stopped) and one Newton step on ``h(φ) + t = φ_out`` (the implicit derivative;
    see the module docstring). The layer loop is unrolled (``n_layers`` is small)."""
    import jax
    import jax.numpy as jnp

    from langevin.backends import jax_ops

    # the sampler's own pieces (flow.py): the layer's coefficients, the tan mixture and the
    # bisection step of ``flow_inverse``
    coefficients, mixture = twin(_coefficients, "jax"), twin(_mixture, "jax")
    bisect = twin(_bisection_body, "jax")
    layout = flow.layout
    two_pi = 2.0 * np.pi

    def inverse(x, params):
        dtype = x.dtype
        p = FlowParams(*(jnp.asarray(a, dtype) for a in params))
        lay = FlowLayout(*(jnp.asarray(a) for a in layout[:5]),
                         *(jnp.asarray(a, dtype) for a in layout[5:]))  # fmt: skip
        z, log_det = x, jnp.zeros((), dtype)
        for i in reversed(range(flow.n_layers)):
            phi, out = coefficients(z, i, p, lay)  # the frozen plaquettes are unchanged
            t = out[:, -1]
            u = jnp.mod(phi - t + jnp.pi, two_pi) - jnp.pi
            u0, out0 = jax.lax.stop_gradient(u), jax.lax.stop_gradient(out)

            lo, hi = jax_ops.fori_loop(0, 64, bisect, (u0 * 0.0 - jnp.pi, u0 * 0.0 + jnp.pi),
                                       (u0, out0))  # fmt: skip
            root = 0.5 * (lo + hi)
            delta0, deriv0 = mixture(root, out)
            phi_in = root - (root + delta0 - u) / jax.lax.stop_gradient(deriv0)
            delta, deriv = mixture(phi_in, out)
            z = z - lay.link_sign[i] * jnp.take(delta + t, lay.site)
            log_det = log_det - jnp.sum(lay.active[i] * jnp.log(deriv))
        return z, log_det

    return inverse
