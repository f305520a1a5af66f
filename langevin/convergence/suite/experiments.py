"""The experiments. Each returns rows (dicts with the columns of :data:`COLUMNS`).

``bias_gaussian``  (exact)
    Stationary W2 between the position law and π on the rotated Gaussian (d = ``cfg.dim``,
    κ = ``cfg.kappa``) against h, for every unadjusted kernel. Linear kernels: exact, from
    the affine map read off the kernel on the *rotated* target (discrete Lyapunov equation),
    cross-checked against the per-eigendirection computation (``w2_check``). Randomized
    midpoint: the exact-moment lower bound (per eigendirection).
``path_gaussian``  (exact)
    W2 after k steps from ``δ_{x₀}`` (⊗ N(0, I) for the velocity) on the rotated target, at
    the step sizes ``cfg.path_h``.
``cost_dimension`` (exact)
    For each d in ``cfg.dims`` (same κ and start rule, diagonal form of the target), the
    fewest gradient evaluations to reach ``W2 ≤ cfg.eps`` over step sizes, and the best h
    (``quantity = "grads_to_eps"``); and the stationary W2 at the fixed step size
    ``cfg.dim_fixed_h`` (``quantity = "w2_stationary"``), whose growth in d is the √d of
    Li, Zha & Tao for ULA.
``mc_gaussian``    (Monte Carlo, 1-D N(m, 1), ``cfg.mc_chains`` chains on JAX)
    W2 after k steps with its noise floor (``quantity = "w2"``) for the randomized midpoint,
    the Metropolis-corrected kernels and ULA as a control with a known answer, from the
    point mass ``m + start_sd``; the stationary variance from per-chain time averages of a
    second set of chains started at exact draws of π (``quantity = "var"``, with its MCSE
    and, where known, the exact value read off the kernel: a check of the JAX runs against
    the NumPy twin).
``cost_1d``        (exact, same 1-D problem)
    Gradient evaluations to ``W2 ≤ cfg.mc_eps`` for the kernels with exact laws or moments
    (fine step-size grid), comparable with the Monte Carlo costs of ``mc_gaussian``.
``quartic``        (Monte Carlo, U = x²/2 + x⁴/4 in 1-D)
    From exact draws of π, ``cfg.quartic_time/h`` steps: W2 of the last step to exact draws
    (with floor) and the bias of ``E[x²]``, ``E[x⁴]`` from per-chain time averages (MCSE)
    against quadrature.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable

import numpy as np

from ..exact import block_operator, full_chain, grads_to_accuracy
from ..montecarlo import W2Estimate, run_chains, w2_estimate
from ..problems import GaussianProblem, QuarticProblem
from ..theory import KernelSpec
from ..twin import gradient_evaluations
from .config import Config

__all__ = [
    "COLUMNS",
    "bias_gaussian",
    "cost_1d",
    "cost_dimension",
    "mc_gaussian",
    "path_gaussian",
    "quartic",
]

COLUMNS = (
    "experiment",
    "kernel",
    "kind",
    "method",
    "dim",
    "kappa",
    "step_size",
    "steps",
    "grads",
    "quantity",
    "value",
    "value_se",
    "exact_value",
    "w2",
    "noise_floor",
    "resolved",
    "w2_check",
    "n_chains",
    "acceptance",
    "diverged",
    "seconds",
    "note",
)

Log = Callable[[str], None]


def _row(**kw) -> dict:
    row = dict.fromkeys(COLUMNS, "")
    unknown = set(kw) - set(COLUMNS)
    if unknown:
        raise KeyError(f"unknown columns {unknown}")
    row.update(kw)
    return row


def _exact_specs(specs: list[KernelSpec]) -> list[KernelSpec]:
    return [s for s in specs if s.kind in ("linear", "random")]


def _method(spec: KernelSpec) -> str:
    return "exact" if spec.kind == "linear" else "moment_lower_bound"


def _start_state(problem: GaussianProblem, nf: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the start δ_{x₀} (⊗ N(0, I) velocity) in the full state."""
    d = problem.dim
    z0 = np.concatenate([problem.start, np.zeros(d * (nf - 1))])
    cov0 = np.zeros((nf * d, nf * d))
    if nf == 2:
        cov0[d:, d:] = np.eye(d)
    return z0, cov0


def bias_gaussian(cfg: Config, specs: list[KernelSpec], log: Log) -> list[dict]:
    prob = GaussianProblem(cfg.dim, cfg.kappa, cfg.seed, cfg.start_sd)
    rows = []
    for spec in _exact_specs(specs):
        t0 = time.perf_counter()
        for h in cfg.bias_h:
            kernel = spec.make(h)
            op = block_operator(kernel, prob.eigenvalues)
            common = dict(
                experiment="bias_gaussian",
                kernel=spec.name,
                kind=spec.kind,
                method=_method(spec),
                dim=cfg.dim,
                kappa=cfg.kappa,
                step_size=h,
                quantity="w2_stationary",
            )
            if op.spectral_radius() >= 1.0:
                rows.append(_row(**common, note="unstable (moment recursion diverges)"))
                continue
            w2_eigen = op.stationary_w2()
            if spec.kind == "linear":
                w2 = full_chain(kernel, prob).stationary_w2()  # on the rotated target
                rows.append(_row(**common, value=w2, w2=w2, w2_check=w2_eigen))
            else:
                rows.append(
                    _row(
                        **common,
                        value=w2_eigen,
                        w2=w2_eigen,
                        note="lower bound (Gelbrich) from exact moments",
                    )
                )
        log(f"  bias_gaussian {spec.name}: {time.perf_counter() - t0:.1f} s")
    return rows


def _k_checkpoints(k_max: int, ratio: float = 1.15, dense: int = 10) -> list[int]:
    ks = set(range(0, min(dense, k_max) + 1))
    k = float(dense)
    while k < k_max:
        k *= ratio
        ks.add(min(math.ceil(k), k_max))
    ks.add(k_max)
    return sorted(ks)


def path_gaussian(cfg: Config, specs: list[KernelSpec], log: Log) -> list[dict]:
    prob = GaussianProblem(cfg.dim, cfg.kappa, cfg.seed, cfg.start_sd)
    ks = _k_checkpoints(cfg.path_k_max, ratio=1.1)
    rows = []
    for spec in _exact_specs(specs):
        t0 = time.perf_counter()
        grads = gradient_evaluations(spec.make(0.1))
        for h in cfg.path_h:
            chain = full_chain(spec.make(h), prob)
            nf = len(chain.maps[0].fields)
            z0, cov0 = _start_state(prob, nf)
            w2 = chain.w2_path(z0, cov0, ks)
            for k, w in zip(ks, w2):
                rows.append(
                    _row(
                        experiment="path_gaussian",
                        kernel=spec.name,
                        kind=spec.kind,
                        method=_method(spec),
                        dim=cfg.dim,
                        kappa=cfg.kappa,
                        step_size=h,
                        steps=k,
                        grads=k * grads,
                        quantity="w2",
                        value=w,
                        w2=w,
                    )
                )
        log(f"  path_gaussian {spec.name}: {time.perf_counter() - t0:.1f} s")
    return rows


def cost_dimension(cfg: Config, specs: list[KernelSpec], log: Log) -> list[dict]:
    rows = []
    for spec in _exact_specs(specs):
        grads = gradient_evaluations(spec.make(0.1))
        for d in cfg.dims:
            t0 = time.perf_counter()
            prob = GaussianProblem(d, cfg.kappa, cfg.seed, cfg.start_sd, rotate=False)
            res = grads_to_accuracy(
                spec.make,
                prob.eigenvalues,
                prob.start_eigen,
                cfg.eps,
                grads,
                cfg.cost_h,
                refine=cfg.cost_refine,
            )
            # the stationary bias itself at one fixed step size, against d
            w2_fixed = block_operator(spec.make(cfg.dim_fixed_h), prob.eigenvalues).stationary_w2()
            seconds = time.perf_counter() - t0
            rows.append(
                _row(
                    experiment="cost_dimension",
                    kernel=spec.name,
                    kind=spec.kind,
                    method=_method(spec),
                    dim=d,
                    kappa=cfg.kappa,
                    step_size=cfg.dim_fixed_h,
                    quantity="w2_stationary",
                    value=w2_fixed,
                    w2=w2_fixed,
                )
            )
            rows.append(
                _row(
                    experiment="cost_dimension",
                    kernel=spec.name,
                    kind=spec.kind,
                    method=_method(spec),
                    dim=d,
                    kappa=cfg.kappa,
                    step_size=res["h"],
                    steps=res["steps"],
                    grads=res["grads"],
                    quantity="grads_to_eps",
                    value=res["grads"],
                    w2=cfg.eps,
                    exact_value=res["stationary_w2"],
                    seconds=round(seconds, 2),
                    note=f"eps={cfg.eps}; exact_value = stationary W2 at best h",
                )
            )
            log(
                f"  cost_dimension {spec.name} d={d}: h*={res['h']:.4g} grads={res['grads']:.4g}"
                f" ({seconds:.1f} s)"
            )
    return rows


def cost_1d(cfg: Config, specs: list[KernelSpec], log: Log) -> list[dict]:
    prob = GaussianProblem(1, 1.0, cfg.seed, cfg.start_sd)
    rows = []
    for spec in _exact_specs(specs):
        grads = gradient_evaluations(spec.make(0.1))
        for label, grid, refine in (
            ("fine grid", cfg.cost_h, cfg.cost_refine),
            ("mc_h grid", cfg.mc_h, 0),
        ):
            res = grads_to_accuracy(
                spec.make,
                prob.eigenvalues,
                prob.start_eigen,
                cfg.mc_eps,
                grads,
                grid,
                refine=refine,
            )
            rows.append(
                _row(
                    experiment="cost_1d",
                    kernel=spec.name,
                    kind=spec.kind,
                    method=_method(spec),
                    dim=1,
                    kappa=1.0,
                    step_size=res["h"],
                    steps=res["steps"],
                    grads=res["grads"],
                    quantity="grads_to_eps",
                    value=res["grads"],
                    w2=cfg.mc_eps,
                    exact_value=res["stationary_w2"],
                    note=label,
                )
            )
    log("  cost_1d done")
    return rows


def _mc_specs(specs: list[KernelSpec], cfg: Config, gaussian: bool) -> list[KernelSpec]:
    chosen = [s for s in specs if cfg.mc_kernels is None or s.name in cfg.mc_kernels]
    if gaussian:  # Monte Carlo where no exact law exists, plus ULA as a control
        chosen = [s for s in chosen if s.kind in ("random", "mc") or s.name == "ULA"]
    return chosen


def _has_momentum(kernel) -> bool:
    return "momentum" in type(kernel).State._fields


def _stable_seed(*parts) -> int:
    """A seed from text that, unlike ``hash()``, is the same in every process."""
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def mc_gaussian(cfg: Config, specs: list[KernelSpec], log: Log) -> list[dict]:
    prob = GaussianProblem(1, 1.0, cfg.seed, cfg.start_sd)
    n = cfg.mc_chains
    rng = np.random.default_rng([cfg.seed, 101])
    floor = w2_estimate(prob.exact_draws(n, rng), prob.exact_draws, rng).w2
    rows = []
    for spec in _mc_specs(specs, cfg, gaussian=True):
        target = prob.target()  # one per kernel: its compiled runner serves every h
        grads = gradient_evaluations(spec.make(0.1))
        for h in cfg.mc_h:
            t0 = time.perf_counter()
            kernel = spec.make(h)
            steps = math.ceil(cfg.mc_time / h)
            ks = _k_checkpoints(steps)
            x0 = np.tile(prob.start, (n, 1))
            mom = rng.standard_normal((n, 1)) if _has_momentum(kernel) else None
            run = run_chains(
                kernel, target, x0, ks, seed=_stable_seed("g", spec.name, h), momentum0=mom
            )
            # The stationary variance from a second set of chains started at exact draws of
            # π: from the point mass, an HMC run of mc_time/h transitions (each L·h long)
            # still carries its transient in the second half of the run (measured: +4.4
            # standard errors at h = 1.5 with 2·10⁵ chains).
            n_avg = max(steps, cfg.mc_min_average_steps)
            x_pi = prob.exact_draws(n, rng)
            mom = rng.standard_normal((n, 1)) if _has_momentum(kernel) else None
            moments = run_chains(
                kernel,
                target,
                x_pi,
                [n_avg],
                seed=_stable_seed("gm", spec.name, h),
                momentum0=mom,
                average_from=n_avg // 2,
                powers=(2,),
                center=prob.mean,
            )
            seconds = time.perf_counter() - t0
            common = dict(
                experiment="mc_gaussian",
                kernel=spec.name,
                kind=spec.kind,
                method="monte_carlo",
                dim=1,
                kappa=1.0,
                step_size=h,
                n_chains=n,
                acceptance=round(run.acceptance, 4),
                diverged=run.diverged,
            )
            for k in ks:
                est = w2_estimate(run.snapshots[k], prob.exact_draws, rng, floor=floor)
                rows.append(
                    _row(
                        **common,
                        steps=k,
                        grads=k * grads,
                        quantity="w2",
                        value=est.w2,
                        w2=est.w2,
                        noise_floor=est.floor,
                        resolved=est.resolved,
                    )
                )
            var, var_se = moments.moment(2)
            exact_var = ""
            if spec.kind in ("linear", "random"):
                op = block_operator(kernel, prob.eigenvalues)
                exact_var = float(op.stationary_second()[0, 0, 0])
            elif spec.kind == "mc":
                exact_var = 1.0  # π itself: Metropolis-corrected kernels are exact
            rows.append(
                _row(
                    **common,
                    steps=n_avg,
                    quantity="var",
                    value=var,
                    value_se=var_se,
                    exact_value=exact_var,
                    seconds=round(seconds, 2),
                    note=f"from exact draws of π; time average over steps {n_avg // 2}..{n_avg}",
                )
            )
            log(
                f"  mc_gaussian {spec.name} h={h}: {steps} steps, acc={run.acceptance:.3f}, "
                f"W2(end)={rows[-2]['w2']:.4f} (floor {floor:.4f}), "
                f"var={var:.5f}±{var_se:.5f} vs {exact_var} ({seconds:.1f} s)"
            )
    return rows


def quartic(cfg: Config, specs: list[KernelSpec], log: Log) -> list[dict]:
    prob = QuarticProblem(1)
    exact = {2: prob.moment(2), 4: prob.moment(4)}
    n = cfg.mc_chains
    rng = np.random.default_rng([cfg.seed, 202])
    floor = w2_estimate(prob.exact_draws(n, rng), prob.exact_draws, rng).w2
    rows = []
    for spec in _mc_specs(specs, cfg, gaussian=False):
        target = prob.target()
        grads = gradient_evaluations(spec.make(0.1))
        for h in cfg.quartic_h:
            t0 = time.perf_counter()
            kernel = spec.make(h)
            steps = math.ceil(cfg.quartic_time / h)
            x0 = prob.exact_draws(n, rng)
            mom = rng.standard_normal((n, 1)) if _has_momentum(kernel) else None
            run = run_chains(
                kernel,
                target,
                x0,
                [steps],
                seed=_stable_seed("q", spec.name, h),
                momentum0=mom,
                average_from=steps // 3,
                powers=(2, 4),
            )
            seconds = time.perf_counter() - t0
            common = dict(
                experiment="quartic",
                kernel=spec.name,
                kind=spec.kind,
                method="monte_carlo",
                dim=1,
                step_size=h,
                steps=steps,
                grads=steps * grads,
                n_chains=n,
                acceptance=round(run.acceptance, 4),
                diverged=run.diverged,
            )
            note = "chains diverged: not used" if run.diverged else ""
            est: W2Estimate = w2_estimate(run.snapshots[steps], prob.exact_draws, rng, floor=floor)
            if run.diverged:  # what is left is a biased selection of chains
                est = W2Estimate(math.nan, est.floor, est.n)
            rows.append(
                _row(
                    **common,
                    quantity="w2",
                    value=est.w2,
                    w2=est.w2,
                    noise_floor=est.floor,
                    resolved=est.resolved and not run.diverged,
                    note=note,
                )
            )
            for p in (2, 4):
                m, se = run.moment(p) if not run.diverged else (math.nan, math.nan)
                rows.append(
                    _row(
                        **common,
                        quantity=f"x{p}_bias",
                        value=m - exact[p],
                        value_se=se,
                        exact_value=exact[p],
                        resolved=abs(m - exact[p]) > 4 * se and not run.diverged,
                        seconds=round(seconds, 2),
                        note=note,
                    )
                )
            log(
                f"  quartic {spec.name} h={h}: W2={est.w2:.4f} (floor {est.floor:.4f}), "
                f"E[x2] bias={rows[-2]['value']:+.5f}±{rows[-2]['value_se']:.5f}, "
                f"diverged={run.diverged} ({seconds:.1f} s)"
            )
    return rows
