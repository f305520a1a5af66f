"""Barker proposal: langevin (Numba, JAX) against ``blackjax.barker_proposal``, same σ.

Run from the repository root::

    python -m benchmarks.barker_blackjax            # full: both problems, 5 timed runs (~1 min)
    python -m benchmarks.barker_blackjax --quick    # 1/10 of the draws, 2 timed runs
    python -m benchmarks.barker_blackjax --tiny     # 2 chains x 20 draws (smoke test)

The problems (``PROBLEMS``), each run with one fixed step size σ (the scale of the proposal,
which is BlackJAX's ``step_size`` too), identity preconditioning, no warm-up, float64
everywhere, the same starting points in every implementation:

* ``logistic``: ``synthetic_logistic_regression(n=1000, dim=50)``, the target of
  :mod:`benchmarks.mala_logistic`: costly gradients, so the time is mostly arithmetic.
  The chains start where an untimed langevin run of 1000 steps from the target's initial
  position ended (past the transient, so that every implementation's ESS is about the
  stationary chain).
* ``arK``: posteriordb ``arK-arK`` (7-D, 195 rows): cheap gradients, so the time shows the
  per-step overhead of each implementation. The chains start at reference draws.

Timed for each problem (each: one untimed warm-up call, which includes compilation and is
reported as "first call", then the median of the timed runs; the implementations run
interleaved round by round, so slow drifts of a noisy machine hit them alike; see
:func:`benchmarks._common.time_interleaved`):

1. ``numba``: ``langevin.sample(..., backend="numba", warmup=0)`` (chains on threads);
2. ``jax``: ``langevin.sample(..., backend="jax", warmup=0)``;
3. ``blackjax``: ``blackjax.barker_proposal(logdensity, step_size)``, ``vmap`` over the
   chains inside a jitted ``lax.scan`` over the draws, recording the positions as langevin
   does, keys split per step the way the BlackJAX documentation does.

Efficiency: the bulk ESS (ArviZ, rank-normalised, over chains) of every coordinate of each
timed run's draws; the report gives the median over runs of the smallest and of the mean
ESS, and ESS per second (each run's min ESS over its own wall time, median over runs).

Equal work is checked, not assumed: the three implement the same Markov chain (the same
proposal and the same acceptance ratio, the Barker kernel's module docstring), so with the
same σ their mean acceptance probabilities must agree within Monte Carlo error (z of the
difference from BlackJAX's, |z| < 3: consistent), and each makes one value-and-gradient
evaluation per draw (*counted*: the target wrapped in a counter, one chain, the difference
between runs of 1 and 1 + k draws divided by k; :mod:`benchmarks._common`).

Writes ``benchmarks/results/barker_blackjax.csv`` (every run) and ``barker_blackjax.md``
(medians, spread, ratios, ESS, the equal-work checks, machine); ``--quick``/``--tiny``
write ``barker_blackjax_quick.*``/``barker_blackjax_tiny.*``, ``--out DIR`` another
directory.
"""

from __future__ import annotations

import csv
import statistics
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import arviz as az
import blackjax
import jax
import numpy as np

import langevin
from benchmarks._common import (
    INIT_SEED,
    ProblemResult,
    Timed,
    acceptance_cells,
    acceptance_stats,
    ark_target,
    blackjax_chains,
    blackjax_timed,
    counted_gradients,
    equal_work,
    langevin_timed,
    log,
    logistic_target,
    parse_plan,
    ratios,
    report_head,
    run_problems,
    start_points,
    time_interleaved,
    timing_cells,
    timing_rows,
    write_reports,
)
from benchmarks._latency_probe import DIM, N_OBS
from langevin.kernels import Barker

RATIOS = {  # ratio name -> (numerator, denominator)
    "numba / blackjax": ("numba", "blackjax"),
    "jax / blackjax": ("jax", "blackjax"),
    "numba / jax": ("numba", "jax"),
}


@dataclass(frozen=True)
class Problem:
    """One benchmark problem: a target, a fixed step size, how the chains start."""

    name: str
    description: str
    make_target: Callable[[], langevin.Target]
    step_size: float
    draws: int  # per chain, full run

    def starts(self, target: langevin.Target, chains: int) -> np.ndarray:
        """The chains' starting points, shared by every implementation."""
        starts, at_reference = start_points(target, chains)
        if at_reference:
            return starts
        burn = langevin.sample(target, Barker(self.step_size), chains=chains, warmup=0,
                               draws=1000, seed=INIT_SEED, progress=False,
                               initial_position=starts)  # fmt: skip
        return np.ascontiguousarray(burn.draws[:, -1], dtype=np.float64)


# Step sizes: the median σ that warm-up (dual averaging toward 0.574, 4 chains x 2000 steps
# from σ = 0.01, langevin Numba) settled on, rounded: logistic 0.280-0.288, arK 0.0169-0.0180;
# 2000 fixed-σ draws from the warm-up's last states then accepted 0.59 and 0.56.
PROBLEMS = {
    "logistic": Problem(
        "logistic", f"synthetic_logistic_regression(n={N_OBS}, dim={DIM})", logistic_target,
        0.28, 10000,
    ),
    "arK": Problem(
        "arK", "posteriordb arK-arK (7-D, 195 rows)", ark_target, 0.018, 50000,
    ),
}  # fmt: skip


# -- the implementations ----------------------------------------------------------------------
def make_blackjax_barker(logdensity: Callable, step_size: float, draws: int,
                         chains: int) -> Callable:  # fmt: skip
    """BlackJAX Barker: ``vmap`` over chains inside a jitted ``lax.scan`` over draws.

    Returns ``run(key, starts) -> (positions, acceptance_rate)``, with leading axes
    ``(draws, chains)``.
    """
    algorithm = blackjax.barker_proposal(logdensity, step_size)
    return blackjax_chains(
        algorithm, draws, chains, lambda states, info: (states.position, info.acceptance_rate)
    )


def bulk_ess(draws: np.ndarray) -> np.ndarray:
    """Bulk ESS of every coordinate of ``draws`` ``(chains, draws, dim)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([float(az.ess(draws[..., i], method="bulk"))
                         for i in range(draws.shape[-1])])  # fmt: skip


def build(problem: Problem, target, starts: np.ndarray, draws: int,
          outputs: dict[str, dict[int, np.ndarray]]) -> list[Timed]:  # fmt: skip
    """The timed implementations of one problem. Each keeps its draws per run in ``outputs``
    (for the ESS, computed after the timings)."""
    chains, _ = starts.shape
    kernel = Barker(problem.step_size)

    def sample(backend):
        run = langevin_timed(target, kernel, starts, draws, backend)

        def fn(r):
            trace = run(r)
            outputs.setdefault(backend, {})[r] = trace.draws
            return trace

        return fn

    def trace_summary(trace):
        return acceptance_stats(trace.sample_stats["acceptance_rate"])

    blackjax_run = blackjax_timed(
        make_blackjax_barker(target.jax_logdensity, problem.step_size, draws, chains), starts
    )

    def blackjax_fn(r):
        out = blackjax_run(r)
        outputs.setdefault("blackjax", {})[r] = np.asarray(out[0]).transpose(1, 0, 2)
        return out

    def blackjax_summary(out):
        return acceptance_stats(np.asarray(out[1]).T)  # -> (chains, draws)

    return [
        Timed("numba", sample("numba"), trace_summary),
        Timed("jax", sample("jax"), trace_summary),
        Timed("blackjax", blackjax_fn, blackjax_summary),
    ]


def count_gradients(problem: Problem, target, start: np.ndarray) -> dict[str, float]:
    """Counted value-and-gradient evaluations per draw of each implementation (one chain;
    :func:`benchmarks._common.counted_gradients`)."""
    return counted_gradients(
        Barker(problem.step_size), target, start,
        lambda logdensity, draws: make_blackjax_barker(logdensity, problem.step_size, draws, 1),
    )  # fmt: skip


# -- report -----------------------------------------------------------------------------------
@dataclass
class BarkerResult(ProblemResult):
    """A problem's result with the ESS of every timed run."""

    ess: dict[str, list[np.ndarray]]  # name -> per timed run, the ESS of every coordinate

    def efficiency(self, it: Timed) -> dict[str, float]:
        """Median over the timed runs of min ESS, mean ESS and min ESS per second."""
        runs = self.ess[it.name]
        return {
            "min_ess": statistics.median(float(e.min()) for e in runs),
            "mean_ess": statistics.median(float(e.mean()) for e in runs),
            "min_ess_per_s": statistics.median(float(e.min()) / t for e, t in zip(runs, it.runs)),
        }


def write_csv(path: Path, results: list[BarkerResult]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["problem", "name", "run", "seconds", "cpu_seconds", "draws", "chains",
                    "step_size", "min_ess", "mean_ess", "min_ess_per_s", "acceptance_rate",
                    "acceptance_mcse", "grads_per_draw_counted"])  # fmt: skip
        for res in results:
            p = res.problem
            tail = [res.draws, res.chains, p.step_size]
            for it in res.items:
                eff, s = res.efficiency(it), it.summary
                for run, t, c in timing_rows(it):
                    if run == "first":
                        cells = [""] * 6
                    elif run == "median":
                        cells = [f"{eff['min_ess']:.1f}", f"{eff['mean_ess']:.1f}",
                                 f"{eff['min_ess_per_s']:.1f}", f"{s['acceptance_rate']:.6f}",
                                 f"{s['acceptance_mcse']:.6f}",
                                 f"{res.counted[it.name]:.4f}"]  # fmt: skip
                    else:  # timed run number `run`
                        e = res.ess[it.name][int(run) - 1]
                        cells = [f"{e.min():.1f}", f"{e.mean():.1f}", f"{e.min() / t:.1f}",
                                 "", "", ""]  # fmt: skip
                    w.writerow([p.name, it.name, run, f"{t:.6f}", f"{c:.6f}", *tail, *cells])


def write_md(path: Path, config: dict, info: dict, results: list[BarkerResult]) -> None:
    lines = report_head(
        "Barker proposal: langevin vs BlackJAX",
        f"python -m benchmarks.barker_blackjax{config['flag']}",
        info,
        "The same fixed step size σ (no warm-up), identity preconditioning, chains, starting "
        "points and float64 in every implementation; BlackJAX is `blackjax.barker_proposal` "
        "vmapped over the chains in a jitted `lax.scan`. Times: median of "
        f"{config['runs']} runs after one warm-up call (the warm-up call, with compilation, is "
        '"first call"); spread = min and max of the timed runs; the implementations ran '
        "interleaved, round by round, in one process. CPU is the CPU time of the whole process "
        "(all threads) during the run. ESS: ArviZ bulk ESS of each coordinate of a run's "
        "draws; min and mean over coordinates, median over the timed runs; ESS/s is each "
        "run's min ESS over its own wall time, median over runs.",
    )
    for res in results:
        p = res.problem
        by_name = res.by_name
        n_draws = res.draws * res.chains
        lines += [
            f"## {p.name}: {p.description}",
            "",
            f"Step size σ = {p.step_size}, {res.chains} chains x {res.draws} draws.",
            "",
            "| implementation | median (s) | min (s) | max (s) | spread | CPU median (s) "
            "| first call (s) | µs per draw | min ESS | mean ESS | min ESS / s "
            "| mean acceptance ± MCSE | z vs blackjax | gradients per draw (counted) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for it in res.items:
            eff = res.efficiency(it)
            lines.append(
                timing_cells(it, n_draws)
                + f"{eff['min_ess']:.0f} | {eff['mean_ess']:.0f} | {eff['min_ess_per_s']:.0f} | "
                + acceptance_cells(it, by_name["blackjax"])
                + f" | {res.counted[it.name]:g} |"
            )
        ess_s = {it.name: res.efficiency(it)["min_ess_per_s"] for it in res.items}
        lines += [
            "",
            "| ratio | wall time (medians) | CPU time (medians) "
            "| min ESS/s (>1: the first is more efficient) |",
            "|---|---|---|---|",
            *(
                f"| {label} | {wall:.3f} | {cpu:.3f} | "
                f"{ess_s[RATIOS[label][0]] / ess_s[RATIOS[label][1]]:.3f} |"
                for label, wall, cpu, _ in ratios(by_name, RATIOS)
            ),
            "",
            *equal_work(res),
        ]
    path.write_text("\n".join(lines))


def bench(problem: Problem, target, starts: np.ndarray, draws: int, runs: int) -> BarkerResult:
    """Time, count and measure the ESS of one problem (:func:`benchmarks._common.run_problems`)."""
    chains = len(starts)
    log(f"{problem.name}: {problem.description}; σ={problem.step_size}, "
        f"{chains} chains x {draws} draws")  # fmt: skip
    outputs: dict[str, dict[int, np.ndarray]] = {}
    items = build(problem, target, starts, draws, outputs)
    time_interleaved(items, runs, log)
    ess = {it.name: [bulk_ess(outputs[it.name][r]) for r in range(1, runs + 1)]
           for it in items}  # fmt: skip
    counted = count_gradients(problem, target, starts[0])
    log(f"  counted gradient evaluations per draw: {counted}")
    res = BarkerResult(problem, chains, draws, items, counted, ess)
    for it in items:
        eff = res.efficiency(it)
        log(
            f"  {it.name:<9} acceptance {it.summary['acceptance_rate']:.3f}, "
            f"min ESS {eff['min_ess']:.0f}, min ESS/s {eff['min_ess_per_s']:.0f}"
        )
    for label, wall, cpu, _ in ratios(res.by_name, RATIOS):
        log(f"  {label:<18} {wall:7.3f}  (CPU {cpu:6.3f})")
    return res


def main(argv: list[str] | None = None) -> None:
    # float64 for every implementation, switched on by the benchmark (the user here), never
    # by the package
    jax.config.update("jax_enable_x64", True)
    plan = parse_plan(argv, __doc__, PROBLEMS)
    info, results = run_problems(plan, PROBLEMS, "Barker", bench)
    write_reports(plan, "barker_blackjax", info, results, write_csv, write_md)


if __name__ == "__main__":
    main()
