"""Effective samples per gradient evaluation and per second on posteriordb posteriors.

Run from the repository root::

    python -m benchmarks.ess_table                # full: 4 x (1000 + 10000), ~15 min
    python -m benchmarks.ess_table --quick        # 4 chains x (500 + 2000), Numba only
    python -m benchmarks.ess_table --tiny         # earnings only, 2 x (100 + 200) (test suite)

Samplers (rows), every one with the same number of chains, warm-up steps and kept draws, all
chains of all samplers started from the same points (the target's ``initial_position`` plus
U(−0.1, 0.1) jitter per coordinate). A sampler that raises is recorded as a FAILED row (with
the error) and the others go on:

* ``MALA``: ``langevin.MALA(1e-3)``; warm-up: ``langevin.sample``'s dual averaging of the step
  size per chain toward acceptance 0.574. Identity preconditioning.
* ``HMC``: ``langevin.HMC(1e-2, n_leapfrog=10)`` (leapfrog; the number of steps is not
  tuned); warm-up: dual averaging toward 0.8 and a diagonal mass matrix in Stan's windows.
* ``KL randomized_midpoint`` and ``KL baoab``: ``langevin.KineticLangevin``, unit mass, with
  the step size and friction of ``langevin.suggest_kinetic_parameters`` (the kinetic
  module's tuning function: Lanczos estimates of the largest and smallest curvature, L and
  m, at the chains' starting points), under both friction rules it offers: ``shen_lee``
  (γ = 2√L, the choice of the theory) and ``critical`` (γ = 2√m, critical damping of the
  flattest direction); its step size is h = 0.5·min(1, γ/√L)/√L. Warm-up is burn-in at that
  fixed step size (there is no acceptance rate to adapt to). These kernels are
  *unadjusted*: their stationary law is not the posterior, so their ESS must be read with
  their bias (the error columns).
* ``NUTS (BlackJAX)``: ``blackjax.nuts`` after ``blackjax.window_adaptation`` (Stan's
  windows: step size toward acceptance 0.8, diagonal mass), per chain (``vmap``), jitted.

What is reported per posterior and sampler (and backend: ``numba``, and ``jax`` when asked):

* bulk ESS (ArviZ, rank-normalised, over chains) of every coordinate of the unconstrained
  position: the minimum and the mean over coordinates;
* gradient evaluations of the sampling phase (all chains) and of the warm-up:
  MALA 1 per step, randomized midpoint 2, BAOAB 1 (checked by counting, see
  ``--check-grads``), HMC its recorded ``n_grad``, NUTS its ``num_integration_steps``;
  ESS_min per 1000 gradient evaluations of the sampling phase;
* wall-clock and CPU seconds of the warm-up and of the sampling phase, compilation excluded
  (langevin: a short compiling call first; the sampling phase is the time of ``sample(warm-up
  + draws)`` minus that of ``sample(warm-up + 1 draw)`` with the same seed; BlackJAX: ahead-of-
  time compiled warm-up and sampling functions timed separately); ESS_min per second of the
  sampling phase, and of warm-up + sampling;
* accuracy, so that the ESS of a biased sampler is not mistaken for quality: for every
  coordinate, the error of the posterior mean and of the posterior sd against posteriordb's
  reference in units of the combined Monte Carlo standard error,
  ``z = (estimate − reference) / √(MCSE² + MCSE_ref²)``, and the largest |z| over
  coordinates; MCSE of a mean = sd/√ESS (ArviZ's ESS of the mean), of an sd by ArviZ's
  delta-method formula (:func:`mcse_sd`); the reference's own MCSE is 0 for posteriordb's
  exact quadrature moments and, for moments from its Stan draws, computed the same way over
  its 10 chains of 1000. Also the bias in units of the posterior sd,
  ``max_i |mean_i − ref_i| / sd_ref_i`` and ``max_i |sd_i / sd_ref_i − 1|``. An unbiased
  sampler gives |z| of order 1 (the largest of 2·dim values rarely above 3.5); a larger |z|
  means the error exceeds the Monte Carlo noise of this run: a bias, or a chain too short
  to trust its MCSE.

Writes ``benchmarks/results/ess_table.csv`` and ``ess_table.md`` (``--quick``/``--tiny``:
``ess_table_quick.*``/``ess_table_tiny.*``; ``--out DIR``: another directory).
"""

from __future__ import annotations

import argparse
import csv
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import arviz as az
import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.adaptation.base import get_filter_adapt_info_fn

import langevin
from benchmarks._common import (
    clock,
    counted_gradients_per_step,
    load_at_end,
    log,
    machine_at_start,
    parse_sized,
    quiet_warnings,
    report_head,
    size_parser,
    write_report_files,
)
from langevin.driver import DivergenceWarning, DivergentTransitionWarning

POSTERIORS = ("earnings-logearn_interaction_z", "arK-arK", "gp_pois_regr-gp_regr")
SHORT = {"earnings-logearn_interaction_z": "earnings", "arK-arK": "arK",
         "gp_pois_regr-gp_regr": "gp_regr"}  # fmt: skip
INIT_SEED = 2024  # starting points, shared by every sampler
SEED = 11
MALA_STEP = 1e-3  # initial step sizes; warm-up adapts them
HMC_STEP = 1e-2
HMC_LEAPFROG = 10
KINETIC = ("randomized_midpoint", "baoab")
FRICTION_RULES = ("shen_lee", "critical")
#: Gradient evaluations per step of langevin's kernels without an ``n_grad`` statistic
#: (langevin/kernels/overdamped.py, kinetic.py); ``--check-grads`` counts them.
GRADS_PER_STEP = {"MALA": 1, "randomized_midpoint": 2, "baoab": 1}
Z_LARGE = 3.5


@dataclass
class Run:
    """One sampler on one posterior: draws, costs, tuning."""

    posterior: str
    method: str
    backend: str
    draws: np.ndarray  # (chains, draws, dim)
    grads_warmup: float
    grads_sampling: float
    seconds_warmup: float
    seconds_sampling: float
    cpu_warmup: float
    cpu_sampling: float
    seconds_compile: float
    acceptance: float
    tuning: str
    divergences: int = 0
    metrics: dict = field(default_factory=dict)


# -- langevin ---------------------------------------------------------------------------------
def kernels_for(target, starts: np.ndarray) -> dict[str, tuple[langevin.Kernel, str]]:
    """``{method name: (kernel, tuning description)}`` of langevin's samplers."""
    out: dict[str, tuple[langevin.Kernel, str]] = {
        "MALA": (langevin.MALA(MALA_STEP), f"h0={MALA_STEP:g}, dual averaging"),
        "HMC": (langevin.HMC(HMC_STEP, n_leapfrog=HMC_LEAPFROG),
                f"L={HMC_LEAPFROG}, dual averaging + diagonal mass"),
    }  # fmt: skip
    suggestions = {
        rule: langevin.suggest_kinetic_parameters(target, starts, friction_rule=rule)
        for rule in FRICTION_RULES
    }
    for disc in KINETIC:
        for rule, s in suggestions.items():
            out[f"KL {disc} ({rule})"] = (
                s.kernel(disc),
                f"h={s.step_size:.3g}, γ={s.friction:.3g} (L≈{s.smoothness:.3g}, "
                f"m≈{s.strong_convexity:.3g})",
            )
    return out


def _grads_per_step(method: str) -> int:
    if method == "MALA":
        return GRADS_PER_STEP["MALA"]
    for disc in KINETIC:
        if method.startswith(f"KL {disc}"):
            return GRADS_PER_STEP[disc]
    raise KeyError(method)


def run_langevin(posterior: str, method: str, kernel, tuning: str, target, starts: np.ndarray,
                 warmup: int, draws: int, backend: str) -> Run:  # fmt: skip
    """``langevin.sample`` timed: compile call, warm-up alone, warm-up + draws (same seed)."""
    chains = starts.shape[0]

    def sample(w: int, d: int):
        return langevin.sample(target, kernel, chains=chains, warmup=w, draws=d, backend=backend,
                               seed=SEED, initial_position=starts, progress=False)  # fmt: skip

    compile_s, _, _ = clock(lambda: sample(min(warmup, 20), 2))
    warm_s, warm_cpu, _ = clock(lambda: sample(warmup, 1))
    total_s, total_cpu, trace = clock(lambda: sample(warmup, draws))
    stats, wstats = trace.sample_stats, trace.warmup_stats
    if "n_grad" in stats:
        grads_sampling = float(np.sum(stats["n_grad"]))
        grads_warmup = float(np.sum(wstats["n_grad"])) if warmup else 0.0
    else:
        per = _grads_per_step(method)
        grads_sampling = float(per * chains * draws)
        grads_warmup = float(per * chains * warmup)
    divergences = int(np.sum(stats["diverging"])) + len(trace.diverged)
    h = np.asarray(trace.step_size)
    if kernel.adapts_step_size and warmup:
        tuning = f"{tuning} → h∈[{h.min():.3g}, {h.max():.3g}]"
    return Run(
        posterior, method, backend, trace.draws, grads_warmup, grads_sampling,
        warm_s, max(total_s - warm_s, 1e-9), warm_cpu, max(total_cpu - warm_cpu, 1e-9),
        compile_s, float(np.mean(stats["acceptance_rate"])), tuning, divergences,
    )  # fmt: skip


# -- BlackJAX NUTS ----------------------------------------------------------------------------
def make_nuts(logdensity: Callable, warmup: int, draws: int):
    """``(warm(keys, starts), sample(keys, states, params))``, vmapped over chains, jitted.

    ``warm`` runs ``blackjax.window_adaptation`` (NUTS, diagonal mass, target acceptance 0.8)
    for ``warmup`` steps per chain and returns the states, the adapted parameters and the
    integration steps of every warm-up transition; ``sample`` runs ``draws`` NUTS transitions
    with each chain's parameters and returns positions, integration steps, acceptance and
    divergences, each ``(chains, draws, ...)``.
    """
    adaptation = blackjax.window_adaptation(
        blackjax.nuts, logdensity, target_acceptance_rate=0.8,
        adaptation_info_fn=get_filter_adapt_info_fn(info_keys={"num_integration_steps"}),
    )  # fmt: skip

    def warm_one(key, position):
        (state, params), info = adaptation.run(key, position, num_steps=warmup)
        return state, params, info.info.num_integration_steps

    def sample_one(key, state, params):
        nuts = blackjax.nuts(logdensity, params["step_size"], params["inverse_mass_matrix"])

        def one_step(state, step_key):
            state, info = nuts.step(step_key, state)
            return state, (state.position, info.num_integration_steps, info.acceptance_rate,
                           info.is_divergent)  # fmt: skip

        _, out = jax.lax.scan(one_step, state, jax.random.split(key, draws))
        return out

    return jax.jit(jax.vmap(warm_one)), jax.jit(jax.vmap(sample_one))


def run_nuts(posterior: str, target, starts: np.ndarray, warmup: int, draws: int) -> Run:
    """BlackJAX NUTS, compiled ahead of time; warm-up and sampling timed separately."""
    chains = starts.shape[0]
    warm, sample = make_nuts(target.jax_logdensity, warmup, draws)
    keys_w = jax.random.split(jax.random.key(SEED), chains)
    keys_s = jax.random.split(jax.random.key(SEED + 1), chains)
    x0 = jnp.asarray(starts)
    compile_w, _, warm_c = clock(lambda: warm.lower(keys_w, x0).compile())
    warm_s, warm_cpu, (states, params, warm_steps) = clock(
        lambda: jax.block_until_ready(warm_c(keys_w, x0))
    )
    compile_s, _, sample_c = clock(lambda: sample.lower(keys_s, states, params).compile())
    samp_s, samp_cpu, (positions, steps, acceptance, divergent) = clock(
        lambda: jax.block_until_ready(sample_c(keys_s, states, params))
    )
    h = np.asarray(params["step_size"])
    return Run(
        posterior, "NUTS (BlackJAX)", "jax", np.asarray(positions),
        float(np.sum(np.asarray(warm_steps))), float(np.sum(np.asarray(steps))),
        warm_s, samp_s, warm_cpu, samp_cpu, compile_w + compile_s,
        float(np.mean(np.asarray(acceptance))),
        f"window adaptation → h∈[{h.min():.3g}, {h.max():.3g}]",
        int(np.sum(np.asarray(divergent))),
    )  # fmt: skip


# -- ESS and accuracy ----------------------------------------------------------------------------
def mcse_sd(x: np.ndarray) -> float:
    """MCSE of the sd of ``x`` (chains, draws) by the delta method, ArviZ's formula:
    ``Var(s²) ≈ (E[d⁴] − E[d²]²) / ESS(d²)`` with ``d = x − mean``, and
    ``MCSE(s) = √(Var(s²) / (4 s²))``. (``arviz.mcse(method="sd")`` fails with NumPy 2 when
    ArviZ's Numba flag is on, so it is computed here.)"""
    d2 = (x - x.mean()) ** 2
    ess = float(az.ess(d2, method="mean"))
    var = float(d2.mean())
    var_of_var = (float((d2**2).mean()) - var**2) / ess
    return math.sqrt(var_of_var / var / 4.0)


def reference_sd_mcse(reference) -> np.ndarray:
    """MCSE of the reference sd: 0 where posteriordb's moments are exact (``mean_mcse == 0``),
    else ArviZ's from the reference draws as their 10 chains (posteriordb: 10 x 1000)."""
    dim = reference.mean.shape[0]
    out = np.zeros(dim)
    draws = np.asarray(reference.draws)
    n_chains = 10 if len(draws) % 10 == 0 else 1  # posteriordb: 10 chains, stored in order
    chains = draws.reshape(n_chains, -1, dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(dim):
            if reference.mean_mcse[i] > 0:
                out[i] = mcse_sd(chains[..., i])
    return out


def metrics(run: Run, reference, ref_sd_mcse: np.ndarray) -> dict[str, float]:
    """ESS (bulk), costs per ESS, and the errors against the reference (module docstring)."""
    x = run.draws
    dim = x.shape[-1]
    ess = np.empty(dim)
    z_mean = np.empty(dim)
    z_sd = np.empty(dim)
    bias_mean = np.empty(dim)
    bias_sd = np.empty(dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(dim):
            xi = x[..., i]
            ess[i] = float(az.ess(xi, method="bulk"))
            mean, sd = float(np.mean(xi)), float(np.std(xi, ddof=1))
            se_mean = sd / math.sqrt(float(az.ess(xi, method="mean")))
            se_sd = mcse_sd(xi)
            ref_mean, ref_sd = float(reference.mean[i]), float(reference.sd[i])
            z_mean[i] = (mean - ref_mean) / math.hypot(se_mean, float(reference.mean_mcse[i]))
            z_sd[i] = (sd - ref_sd) / math.hypot(se_sd, float(ref_sd_mcse[i]))
            bias_mean[i] = abs(mean - ref_mean) / ref_sd
            bias_sd[i] = abs(sd / ref_sd - 1.0)
    ess_min = float(ess.min())
    total_s = run.seconds_warmup + run.seconds_sampling
    return {
        "ess_bulk_min": ess_min,
        "ess_bulk_mean": float(ess.mean()),
        "grads_per_draw": run.grads_sampling / (x.shape[0] * x.shape[1]),
        "ess_min_per_1k_grads": 1000.0 * ess_min / run.grads_sampling,
        "ess_min_per_1k_grads_incl_warmup": 1000.0
        * ess_min
        / (run.grads_sampling + run.grads_warmup),
        "ess_min_per_s": ess_min / run.seconds_sampling,
        "ess_min_per_cpu_s": ess_min / run.cpu_sampling,
        "ess_min_per_s_incl_warmup": ess_min / total_s,
        "max_abs_z_mean": float(np.max(np.abs(z_mean))),
        "max_abs_z_sd": float(np.max(np.abs(z_sd))),
        "max_bias_mean_over_sd": float(bias_mean.max()),
        "max_rel_error_sd": float(bias_sd.max()),
    }


def check_gradient_counts(target, starts: np.ndarray, kernels: dict, backends: list[str],
                          log) -> dict[str, float]:  # fmt: skip
    """Count value-and-gradient calls per step of langevin's kernels whose count is declared in
    GRADS_PER_STEP; raise if a count differs from the declared one."""
    counted = {}
    for method, (kernel, _) in kernels.items():
        if method == "HMC":
            continue  # records its own n_grad
        for backend in backends:
            n = counted_gradients_per_step(kernel, target, starts[0], backend)
            counted[f"{method} [{backend}]"] = n
            if n != _grads_per_step(method):
                raise RuntimeError(f"{method} on {backend}: counted {n} gradient evaluations "
                                   f"per step, declared {_grads_per_step(method)}")  # fmt: skip
    log(f"  counted gradient evaluations per step: {counted}")
    return counted


# -- report -----------------------------------------------------------------------------------
COLUMNS = [
    "posterior", "method", "backend", "tuning", "chains", "warmup", "draws", "acceptance",
    "divergences", "grads_per_draw", "grads_warmup", "grads_sampling", "ess_bulk_min",
    "ess_bulk_mean", "ess_min_per_1k_grads", "ess_min_per_1k_grads_incl_warmup",
    "seconds_compile", "seconds_warmup", "seconds_sampling", "cpu_warmup", "cpu_sampling",
    "ess_min_per_s", "ess_min_per_cpu_s", "ess_min_per_s_incl_warmup", "max_abs_z_mean",
    "max_abs_z_sd", "max_bias_mean_over_sd", "max_rel_error_sd",
]  # fmt: skip


def row(run: Run, warmup: int) -> dict:
    chains, draws = run.draws.shape[:2]
    return {
        "posterior": run.posterior, "method": run.method, "backend": run.backend,
        "tuning": run.tuning, "chains": chains, "warmup": warmup, "draws": draws,
        "acceptance": run.acceptance, "divergences": run.divergences,
        "grads_warmup": run.grads_warmup, "grads_sampling": run.grads_sampling,
        "seconds_compile": run.seconds_compile, "seconds_warmup": run.seconds_warmup,
        "seconds_sampling": run.seconds_sampling, "cpu_warmup": run.cpu_warmup,
        "cpu_sampling": run.cpu_sampling, **run.metrics,
    }  # fmt: skip


def failed_row(posterior: str, method: str, backend: str, chains: int, warmup: int,
               draws: int, exc: BaseException) -> dict:  # fmt: skip
    """A row for a sampler that raised: the error as its tuning, NaN everywhere else."""
    out: dict = dict.fromkeys(COLUMNS, float("nan"))
    out.update(posterior=posterior, method=method, backend=backend, chains=chains,
               warmup=warmup, draws=draws, divergences=-1,
               tuning=f"FAILED: {type(exc).__name__}: {exc}")  # fmt: skip
    return out


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def _z(v: float) -> str:
    return f"**{v:.1f}**" if v >= Z_LARGE else f"{v:.1f}"


def write_md(path: Path, config: dict, info: dict, rows: list[dict], counted: dict) -> None:
    lines = report_head(
        "Effective samples per gradient and per second on posteriordb posteriors",
        f"python -m benchmarks.ess_table{config['flag']}",
        info,
        f"Every sampler: {config['chains']} chains, {config['warmup']} warm-up steps, "
        f"{config['draws']} kept draws per chain, the same starting points. ESS: ArviZ bulk "
        "ESS of the unconstrained coordinates (min and mean over coordinates). Gradients and "
        "seconds: sampling phase (after warm-up), all chains, compilation excluded; *incl. "
        "warm-up* adds the warm-up's. CPU: process CPU time (all threads) of the sampling "
        "phase: the Numba backend runs chains on threads, BlackJAX and the JAX backend vmap "
        "them. Accuracy: largest |z| over coordinates of the error of the posterior mean "
        "and sd against posteriordb's reference, in units of the combined MCSE (bold: "
        f"≥ {Z_LARGE:g}, more than Monte Carlo noise), and the largest error in units of "
        "the posterior sd. Kinetic Langevin (KL) is unadjusted, hence biased: read its ESS "
        "with its error columns. Details of the method: the docstring of "
        "`benchmarks/ess_table.py` and `benchmarks/README.md`.",
    )
    lines += [
        "## Table",
        "",
        "| posterior | method | backend | tuning | accept | grads / draw | ESS min / mean "
        "| ESS_min / 1k grads (incl. warm-up) | ESS_min / s (incl. warm-up) | ESS_min / CPU-s "
        "| max \\|z\\|: mean, sd | max \\|error\\| / sd: mean, sd | divergences |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["tuning"].startswith("FAILED"):
            lines.append(f"| {SHORT.get(r['posterior'], r['posterior'])} | {r['method']} | "
                         f"{r['backend']} | **{r['tuning']}** |" + " — |" * 9)  # fmt: skip
            continue
        lines.append(
            f"| {SHORT.get(r['posterior'], r['posterior'])} | {r['method']} | {r['backend']} | "
            f"{r['tuning']} | {r['acceptance']:.3f} | {r['grads_per_draw']:.3g} | "
            f"{r['ess_bulk_min']:.0f} / {r['ess_bulk_mean']:.0f} | "
            f"{r['ess_min_per_1k_grads']:.3g} ({r['ess_min_per_1k_grads_incl_warmup']:.3g}) | "
            f"{r['ess_min_per_s']:.4g} ({r['ess_min_per_s_incl_warmup']:.4g}) | "
            f"{r['ess_min_per_cpu_s']:.4g} | "
            f"{_z(r['max_abs_z_mean'])}, {_z(r['max_abs_z_sd'])} | "
            f"{r['max_bias_mean_over_sd']:.3f}, {r['max_rel_error_sd']:.3f} | "
            f"{r['divergences']} |"
        )
    lines += ["", "## Costs", "",
              "| posterior | method | backend | compile (s) | warm-up (s) | sampling (s) "
              "| sampling CPU (s) | warm-up grads | sampling grads |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if r["tuning"].startswith("FAILED"):
            continue
        lines.append(
            f"| {SHORT.get(r['posterior'], r['posterior'])} | {r['method']} | {r['backend']} | "
            f"{r['seconds_compile']:.2f} | {r['seconds_warmup']:.3f} | "
            f"{r['seconds_sampling']:.3f} | {r['cpu_sampling']:.3f} | "
            f"{r['grads_warmup']:.0f} | {r['grads_sampling']:.0f} |"
        )
    if counted:
        lines += ["", "Gradient evaluations per step counted (a counting target, one chain): "
                  + ", ".join(f"{k} {v:g}" for k, v in counted.items()) + "."]  # fmt: skip
    lines.append("")
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    # float64 for every implementation, switched on by the benchmark (the user here), never
    # by the package
    jax.config.update("jax_enable_x64", True)
    parser = size_parser(
        __doc__,
        quick="4 chains x (500 + 2000), Numba",
        tiny="earnings only, 2 chains x (100 + 200), Numba (smoke test)",
    )
    parser.add_argument("--posteriors", nargs="+", choices=POSTERIORS, default=None)
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=("numba", "jax"),
        default=None,
        help="langevin's backends (default: numba jax; --quick/--tiny: numba)",
    )
    parser.add_argument("--chains", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--draws", type=int, default=None)
    parser.add_argument(
        "--check-grads",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="count gradient evaluations per step (default: on, off for --tiny)",
    )
    args, tag, flag = parse_sized(parser, argv)
    small = args.tiny or args.quick
    posteriors = args.posteriors or (
        ["earnings-logearn_interaction_z"] if args.tiny else POSTERIORS
    )
    backends = args.backends or (["numba"] if small else ["numba", "jax"])
    chains = args.chains or (2 if args.tiny else 4)
    warmup = args.warmup if args.warmup is not None else (100 if args.tiny else 500 if args.quick
                                                          else 1000)  # fmt: skip
    draws = args.draws or (200 if args.tiny else 2000 if args.quick else 10000)
    check = not args.tiny if args.check_grads is None else args.check_grads
    config = {"flag": flag, "chains": chains, "warmup": warmup, "draws": draws}

    info = machine_at_start(
        f"ESS table: {posteriors}, backends {backends}, {chains} chains x ({warmup} + {draws})"
    )
    rows: list[dict] = []
    counted: dict[str, float] = {}
    # divergences are counted and reported in the table
    with quiet_warnings([DivergentTransitionWarning, DivergenceWarning]):
        for posterior in posteriors:
            target = langevin.targets.posteriordb(posterior)
            rng = np.random.default_rng(INIT_SEED)
            starts = target.initial_position + rng.uniform(-0.1, 0.1, (chains, target.dim))
            starts = np.ascontiguousarray(starts, dtype=np.float64)
            ref_sd_mcse = reference_sd_mcse(target.reference)
            kernels = kernels_for(target, starts)
            if check and not counted:
                counted = check_gradient_counts(target, starts, kernels, backends, log)

            def attempt(method: str, backend: str, job: Callable[[], Run]) -> None:
                """Run one sampler and add its row; a sampler that raises gets a FAILED row."""
                t0 = time.perf_counter()
                try:
                    run = job()
                except Exception as exc:  # a failed sampler is a result: record it, go on
                    rows.append(failed_row(posterior, method, backend, chains, warmup, draws, exc))
                    log(f"  {SHORT[posterior]:<9} {method:<36} {backend:<6} FAILED: {exc!r}")
                    return
                run.metrics = metrics(run, target.reference, ref_sd_mcse)
                r = row(run, warmup)
                rows.append(r)
                log(
                    f"  {SHORT[posterior]:<9} {method:<36} {backend:<6} "
                    f"{time.perf_counter() - t0:6.1f} s  ESS min {r['ess_bulk_min']:7.0f}  "
                    f"/1k grads {r['ess_min_per_1k_grads']:7.3g}  /s {r['ess_min_per_s']:9.4g}  "
                    f"max|z| mean {r['max_abs_z_mean']:4.1f} sd {r['max_abs_z_sd']:4.1f}"
                )

            for method, (kernel, tuning) in kernels.items():
                for backend in backends:
                    attempt(
                        method,
                        backend,
                        partial(
                            run_langevin,
                            posterior,
                            method,
                            kernel,
                            tuning,
                            target,
                            starts,
                            warmup,
                            draws,
                            backend,
                        ),
                    )
            attempt(
                "NUTS (BlackJAX)",
                "jax",
                partial(run_nuts, posterior, target, starts, warmup, draws),
            )
    load_at_end(info)
    write_report_files(args.out, "ess_table", tag, lambda path: write_csv(path, rows),
                       lambda path: write_md(path, config, info, rows, counted))  # fmt: skip


if __name__ == "__main__":
    main()
