"""Controlled Monte Carlo diffusions (CMCD), with ULA-AIS and MCD as its special cases.

Vargas, Padhy, Blessing & Nüsken (ICLR 2024) anneal from a diagonal Gaussian ``q_0`` (its
mean and scales learnable) to an unnormalised target γ along the geometric path

    π̃_β(x) = q_0(x)^{1−β} γ(x)^β,       0 < β_1 < … < β_K < 1,

with a **learnable annealing schedule** (the authors' ``mgridref_y``; ALGORITHMS.md §9a):
logits ``u_1..u_{K+1}`` give positive increments ``e^{u_j}`` and

    β_k = Σ_{j≤k} e^{u_j} / Σ_{j=1}^{K+1} e^{u_j}

(:func:`~langevin.diffusion.paths.learned_betas`); ``u = 0`` is the authors' uniform grid
``β_k = k/(K + 1)`` (the bridge never reaches β = 1: the target enters through the final
``log γ(x_K)``). The path is the *controlled* Langevin SDE
``dY = (∇log π_t(Y) + ∇φ_t(Y)) dt + √2 dW``. Its Euler discretisation with step ``ε_k`` and a
control network ``φ(x, t)`` (:class:`~langevin.diffusion.paths.ControlNet`, ``t_k = k/K``)
gives the forward and backward kernels of the authors' ``evolve_overdamped_cais``:

    forward:   x_k = x_{k−1} + ε_k [∇log π̃_{β_k}(x_{k−1}) − φ(x_{k−1}, t_{k−1})] + √(2ε_k) ξ_k
    backward:  B_k(x_{k−1} | x_k) = N(x_k + ε_k [∇log π̃_{β_k}(x_k) + φ(x_k, t_k)], 2ε_k I)

and the path weight of :mod:`langevin.diffusion.paths` (both variances are 2ε_k, so the
Gaussian normalisers cancel):

    log w = log γ(x_K) − log q_0(x_0)
            + Σ_k [ ‖x_k − m_k^F‖² − ‖x_{k−1} − m_k^B‖² ] / (4 ε_k),

with ``E[w] = Z`` for *every* control, schedule, step size and K (the estimator is exact
importance sampling of paths; the control and the schedule only change its variance: the
intermediate densities telescope away whatever the β_k, as long as the forward and backward
kernels of step k use the same β_k). In the continuous-time limit the
optimal φ makes the forward and backward path laws equal and ``w ≡ Z``.

Special cases (one code path; ``control=``):

* ``"ula"``: φ ≡ 0 in both kernels: **ULA-AIS** (Thin, Kotelevskii, Doucet, Durmus,
  Moulines & Panov 2021; the CMCD code's ``MCD_ULA``): the backward kernel is the forward ULA
  kernel of the same π̃_{β_k}; only ``q_0`` and ε are learnable.
* ``"mcd"``: φ in the backward kernel only (uncontrolled ULA forward, learned backward):
  **MCD** (Doucet, Grathwohl, Matthews & Strathmann 2022) in the parametrisation above
  (the backward drift ``∇log π̃ + φ``; the ideal φ is ``2∇log η_k − 2∇log π̃_{β_k}``, η_k the
  forward marginal).
* ``"cmcd"`` (default): the same φ in both, with opposite signs (``MCD_CAIS_sn``).

The step ``ε_k = ε_0 · e^{λ} · r_k`` has a learnable log-scale λ (params ``log_step``) and a
fixed shape ``r_k`` (``schedule``: constant, linear decay, or the authors' ``cos_sq``;
:func:`~langevin.diffusion.paths.step_schedule`). ``∇log γ`` in the drifts is clipped at
``±grad_clip`` (1e3 in the authors' code); both kernels use the clipped drift, so the weights
stay exact. K = 0 with φ ≡ 0 is plain importance sampling from ``q_0``:
``log w = log γ(x_0) − log q_0(x_0)``.

**What is learned** (``learn=``, :meth:`CMCD.train_mask`): ``q_0``'s mean and scales, λ,
the schedule logits and the control, all by default; the authors' funnel runs keep ε fixed
(``learn=("q0", "schedule", "control")``). On the funnel d = 10 at K = 32 the learned
schedule is what closes most of the gap to the authors' log Ẑ (it moves β quickly towards 1:
β_8 ≈ 0.7 instead of 0.27), see ``benchmarks/results/cmcd_logz.md``.

**Losses** (JAX, optax; :meth:`PathSampler.train`): ``"kl"`` = −ELBO with reparameterised
gradients (``compute_bound``), and ``"logvar"`` = Var(log w) on detached paths (VarGrad /
the log-variance loss; ``MCD_CAIS_var_sn`` uses it on-policy; here it may also explore).
**Sampling** with trained params is :meth:`PathSampler.sample` on either backend: each step
is a portable per-particle function (the Numba backend runs only the network's forward
pass), and the population goes through :func:`langevin.smc.smc` — with
``ess_threshold > 0`` resampling (the CRAFT-like variant) is a population step of that loop.

Example::

    import langevin
    from langevin.diffusion.cmcd import CMCD
    target = langevin.targets.neals_funnel(10)
    sampler = CMCD(target, n_steps=32, step_size=0.1, schedule="cos_sq", init_scale=1.0,
                   learn=("q0", "schedule", "control"))
    trained = sampler.train(loss="kl", steps=2000, batch=300, learning_rate=5e-3)
    sampler.betas(trained.params)   # the learned annealing grid β_1..β_K
    result = sampler.sample(trained.params, 2000, backend="numba", seed=0)
    result.log_Z, result.elbo    # log Ẑ and the ELBO (the funnel's log Z is 0 + its constant)

References:
    Vargas, F., Padhy, S., Blessing, D. and Nüsken, N. (2024). Transport meets variational
    inference: controlled Monte Carlo diffusions. ICLR 2024, arXiv:2307.01050; code
    github.com/shreyaspadhy/CMCD (``src/mcd_cais.py``).
    Thin, A., Kotelevskii, N., Doucet, A., Durmus, A., Moulines, E. and Panov, M. (2021).
    Monte Carlo variational auto-encoders. ICML 2021.
    Doucet, A., Grathwohl, W., Matthews, A. G. D. G. and Strathmann, H. (2022). Score-based
    diffusion meets annealed importance sampling. NeurIPS 2022.
    Richter, L. and Berner, J. (2024). Improved sampling via learned diffusions. ICLR 2024.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from langevin.backends.portable import portable
from langevin.diffusion.paths import (
    ControlNet,
    PathSampler,
    _check_int,
    _check_positive,
    control_apply,
    diag_gaussian_logpdf,
    init_control,
    learned_betas,
    step_schedule,
)

__all__ = [
    "CMCD", "CMCDParams", "CONTROLS", "ula_ais", "mcd", "cmcd_propose", "cmcd_increment",
    "cmcd_start_position", "cmcd_start_log_g",
]  # fmt: skip

xp: Any = None  # bound by each backend

CONTROLS = ("cmcd", "mcd", "ula")
LEARNABLE = ("q0", "step", "schedule", "control")

# Columns of a CMCD coefficient row (one row per step k = 1..K).
_BETA_PREV, _BETA, _EPS, _T_F, _T_B, _FINAL, _FWD, _BWD, _CLIP, _START_FINAL = range(10)


class CMCDParams(NamedTuple):
    """CMCD's learnable parameters: ``q_0 = N(mean, diag(e^{2 log_std}))``, the step
    log-scale λ (shape (1,)), the control network and the annealing schedule's logits
    ``u`` (shape (K + 1,); :func:`~langevin.diffusion.paths.learned_betas`: ``β_k =
    Σ_{j≤k} e^{u_j} / Σ_j e^{u_j}``, so ``u = 0`` is the uniform grid ``k/(K + 1)``)."""

    mean: Any
    log_std: Any
    log_step: Any
    net: ControlNet
    beta_logits: Any


@portable
def cmcd_start_position(normal, params):
    """``x_0 = mean + e^{log_std} ξ ~ q_0`` (reparameterised)."""
    return params.mean + xp.exp(params.log_std) * normal


@portable
def cmcd_start_log_g(x, logp, row, params):
    """``log G_0``: 0, or ``log γ(x_0) − log q_0(x_0)`` when K = 0 (plain importance sampling)."""
    logq, _ = diag_gaussian_logpdf(x, params.mean, params.log_std)
    return xp.where(row[9] > 0.5, logp - logq, 0.0)


@portable
def _annealed_drift(x, grad, beta, clip, params):
    """``∇log π̃_β(x) = (1 − β)∇log q_0(x) + β clip(∇log γ(x))``."""
    _, grad_q = diag_gaussian_logpdf(x, params.mean, params.log_std)
    return (1.0 - beta) * grad_q + beta * xp.clip(grad, -clip, clip)


@portable
def cmcd_propose(x, logp, grad, normal, row, params):
    """The forward kernel: ``x + ε(∇log π̃_β(x) − φ(x, t_{k−1})) + √(2ε) ξ``."""
    eps = row[2]
    drift = _annealed_drift(x, grad, row[1], row[8], params)
    drift = drift - row[6] * control_apply(params.net, x, row[3])
    return x + eps * drift + xp.sqrt(2.0 * eps) * normal


@portable
def cmcd_increment(x, logp, grad, new_x, new_logp, new_grad, row, params):
    """``log G_k`` of the step ``x → new_x`` (module docstring of ``paths``), from the
    positions: ``log π̃_{β_k}(x_k) − log π̃_{β_{k−1}}(x_{k−1}) + log B_k − log F_k`` (+ the final
    ``log γ − log π̃_{β_K}`` at k = K)."""
    beta_prev = row[0]
    beta = row[1]
    eps = row[2]
    clip = row[8]
    mean_f = x + eps * (
        _annealed_drift(x, grad, beta, clip, params) - row[6] * control_apply(params.net, x, row[3])
    )
    mean_b = new_x + eps * (
        _annealed_drift(new_x, new_grad, beta, clip, params)
        + row[7] * control_apply(params.net, new_x, row[4])
    )
    rf = new_x - mean_f
    rb = x - mean_b
    log_ratio = (xp.sum(rf * rf) - xp.sum(rb * rb)) / (4.0 * eps)
    logq, _ = diag_gaussian_logpdf(x, params.mean, params.log_std)
    new_logq, _ = diag_gaussian_logpdf(new_x, params.mean, params.log_std)
    log_pi_prev = (1.0 - beta_prev) * logq + beta_prev * logp
    log_pi = (1.0 - beta) * new_logq + beta * new_logp
    final = xp.where(row[5] > 0.5, new_logp - log_pi, 0.0)
    return log_pi - log_pi_prev + log_ratio + final


class CMCD(PathSampler):
    """Controlled Monte Carlo diffusion from ``q_0`` to ``target`` in ``n_steps`` steps
    (module docstring): ``control="cmcd"``, ``"mcd"`` or ``"ula"`` (ULA-AIS).

    Args:
        target: a :class:`~langevin.targets.Target` (both forms to sample on both backends;
            a JAX form to train).
        n_steps: K >= 0 (K = 0: importance sampling from ``q_0``).
        dim: the dimension (default: the target's).
        step_size: ε_0 > 0 (the learnable log-scale starts at 0).
        schedule: the step shape (``"constant"``, ``"linear"``, ``"cos_sq"``).
        init_mean: ``q_0``'s initial mean (default 0).
        init_scale: ``q_0``'s initial standard deviation(s) (> 0).
        control: ``"cmcd"``, ``"mcd"`` or ``"ula"``.
        hidden: width of the control network's two hidden layers.
        grad_clip: ``∇log γ`` in the drifts is clipped at ±grad_clip (> 0; inf: none).
        learn: which params :meth:`train` updates, a subset of ``("q0", "step",
            "schedule", "control")`` (``q_0``'s mean and scales, the step log-scale λ, the
            annealing schedule's logits, the control network); default all of them
            (``"control"`` is dropped for ``control="ula"``, which has none).

    Raises:
        ValueError / TypeError naming the argument, before anything compiles.
    """

    start_position = staticmethod(cmcd_start_position)
    start_log_g = staticmethod(cmcd_start_log_g)
    propose = staticmethod(cmcd_propose)
    increment = staticmethod(cmcd_increment)

    def __init__(
        self,
        target: Any,
        n_steps: int,
        *,
        dim: int | None = None,
        step_size: float = 0.05,
        schedule: str = "constant",
        init_mean: Any = None,
        init_scale: Any = 1.0,
        control: str = "cmcd",
        hidden: int = 32,
        grad_clip: float = 1e3,
        learn: tuple[str, ...] | None = None,
    ) -> None:
        self._check_target(target, dim)
        self.n_steps = _check_int("n_steps", n_steps, 0)
        self.step_size = _check_positive("step_size", step_size)
        self.schedule = schedule
        self.shape = step_schedule(self.n_steps, schedule)  # checks the name
        if control not in CONTROLS:
            raise ValueError(f"control must be one of {CONTROLS}; got {control!r}")
        self.control = control
        self.hidden = _check_int("hidden", hidden, 1)
        if (
            isinstance(grad_clip, bool)
            or not isinstance(grad_clip, (int, float))
            or not (grad_clip > 0)
        ):
            raise ValueError(f"grad_clip must be a positive number (inf: none); got {grad_clip!r}")
        self.grad_clip = float(grad_clip)
        if learn is None:
            learn = LEARNABLE if control != "ula" else LEARNABLE[:3]
        if not isinstance(learn, (tuple, list)) or not all(name in LEARNABLE for name in learn):
            raise ValueError(f"learn must be a tuple of names from {LEARNABLE}; got {learn!r}")
        self.learn = tuple(learn)
        d = self.dim
        mean = np.zeros(d) if init_mean is None else np.asarray(init_mean, dtype=np.float64)
        if mean.shape == ():
            mean = np.full(d, float(mean))
        if mean.shape != (d,) or not np.all(np.isfinite(mean)):
            raise ValueError(f"init_mean must be finite with shape ({d},); got {mean.shape}")
        scale = np.asarray(init_scale, dtype=np.float64)
        if scale.shape == ():
            scale = np.full(d, float(scale))
        if scale.shape != (d,) or not np.all(np.isfinite(scale) & (scale > 0)):
            raise ValueError(f"init_scale must be positive and finite, a number or ({d},)")
        self.init_mean, self.init_scale = mean, scale

    def init_params(self, seed: int = 0) -> CMCDParams:
        """The initial params: ``q_0 = N(init_mean, init_scale²)``, λ = 0, the zero
        control (a randomly initialised network with a zero output layer) and the uniform
        annealing grid (logits 0: ``β_k = k/(K + 1)``)."""
        return CMCDParams(
            mean=self.init_mean.copy(),
            log_std=np.log(self.init_scale),
            log_step=np.zeros(1),
            net=init_control(self.dim, self.hidden, seed),
            beta_logits=np.zeros(self.n_steps + 1),
        )

    def train_mask(self, params: CMCDParams) -> CMCDParams:
        """Which leaves :meth:`train` updates (the ``learn`` argument)."""
        import jax

        def flag(tree, on):
            return jax.tree_util.tree_map(lambda _: on, tree)

        return CMCDParams(
            mean=flag(params.mean, "q0" in self.learn),
            log_std=flag(params.log_std, "q0" in self.learn),
            log_step=flag(params.log_step, "step" in self.learn),
            net=flag(params.net, "control" in self.learn),
            beta_logits=flag(params.beta_logits, "schedule" in self.learn),
        )

    def betas(self, params: CMCDParams | None = None) -> np.ndarray:
        """The annealing grid ``β_1..β_K`` of ``params`` (default: the initial, uniform
        one); see :func:`~langevin.diffusion.paths.learned_betas`."""
        params = self.init_params(0) if params is None else params
        return learned_betas(np.asarray(params.beta_logits, dtype=np.float64), np)

    def step_sizes(self, params: CMCDParams | None = None) -> np.ndarray:
        """The steps ``ε_1..ε_K = ε_0 e^λ r_k`` of ``params`` (default: the initial ones)."""
        params = self.init_params(0) if params is None else params
        return self.step_size * self.shape * math.exp(float(params.log_step[0]))

    def coefficients(self, params: CMCDParams, np_or_jnp: Any = np) -> Any:
        """The ``(max(K, 1), 10)`` table: ``β_{k−1}, β_k, ε_k, t_{k−1}, t_k``, the final-step
        flag, the forward/backward control switches, the gradient clip, and (row 0) the K = 0
        flag. ``β`` and ``ε`` are computed with ``np_or_jnp`` from the params (differentiable
        on JAX)."""
        mod = np_or_jnp
        k_steps = self.n_steps
        rows = max(k_steps, 1)
        shape = self.shape if k_steps else np.ones(1)
        k = np.arange(1, rows + 1, dtype=np.float64)
        denom = max(k_steps, 1)
        fwd = 1.0 if self.control == "cmcd" else 0.0
        bwd = 0.0 if self.control == "ula" else 1.0
        fixed = np.stack(
            [
                np.zeros(rows),
                np.zeros(rows),
                np.zeros(rows),
                (k - 1.0) / denom,
                k / denom,
                (k == k_steps).astype(np.float64),
                np.full(rows, fwd),
                np.full(rows, bwd),
                np.full(rows, self.grad_clip),
                np.full(rows, 1.0 if k_steps == 0 else 0.0),
            ],
            axis=1,
        )
        eps = self.step_size * shape * mod.exp(params.log_step[0])
        if k_steps:
            beta = learned_betas(params.beta_logits, mod)
            beta_prev = mod.concatenate([mod.zeros(1, dtype=beta.dtype), beta[:-1]])
        else:
            beta = beta_prev = mod.zeros(1)
        if mod is np:
            out = fixed.copy()
            out[:, _EPS] = eps
            out[:, _BETA] = beta
            out[:, _BETA_PREV] = beta_prev
            return out
        return (
            mod.asarray(fixed)
            .at[:, _EPS]
            .set(eps)
            .at[:, _BETA]
            .set(beta)
            .at[:, _BETA_PREV]
            .set(beta_prev)
        )


def ula_ais(target: Any, n_steps: int, **kwargs: Any) -> CMCD:
    """ULA-AIS (Thin et al. 2021): :class:`CMCD` with ``control="ula"`` (no network)."""
    kwargs.setdefault("hidden", 1)
    return CMCD(target, n_steps, control="ula", **kwargs)


def mcd(target: Any, n_steps: int, **kwargs: Any) -> CMCD:
    """MCD (Doucet et al. 2022): :class:`CMCD` with ``control="mcd"`` (learned backward
    kernel, uncontrolled ULA forward)."""
    return CMCD(target, n_steps, control="mcd", **kwargs)
