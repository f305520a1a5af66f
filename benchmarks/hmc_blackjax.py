"""HMC: langevin (Numba, JAX) against ``blackjax.hmc``, same step size, steps, mass and chains.

Run from the repository root::

    python -m benchmarks.hmc_blackjax             # full: both problems, 5 timed runs (~5 min)
    python -m benchmarks.hmc_blackjax --quick     # 1/10 of the draws, 2 timed runs
    python -m benchmarks.hmc_blackjax --tiny      # 2 chains x 20 draws (the test suite)

The problems (``PROBLEMS``), each run with fixed HMC parameters, no warm-up, float64
everywhere, the same starting points in every implementation:

* ``logistic``: ``synthetic_logistic_regression(n=1000, dim=50)``, the target of
  :mod:`benchmarks.mala_logistic`, identity mass, step size 0.28, 10 leapfrog steps
  (acceptance about 0.8), starts as in that benchmark (the target's start plus U(−0.1, 0.1)).
  Gradients are costly (a 1000 × 50 matrix-vector product each way): the time is mostly
  arithmetic.
* ``arK``: posteriordb ``arK-arK`` (7-D, 195 rows), diagonal inverse mass = the reference
  posterior variances, step size 0.18, 10 leapfrog steps (acceptance about 0.8), chains
  started at reference draws (no transient). Gradients are cheap: the time shows the
  per-step overhead of each implementation.

Timed for each problem (each: one untimed warm-up call, which includes compilation and is
reported as "first call", then the median of the timed runs; the implementations
interleaved round by round, so slow drifts of a noisy machine hit them alike):

1. ``numba``: ``langevin.sample(..., backend="numba", warmup=0, adapt_mass_matrix=False)``
   (chains on threads, one per core);
2. ``numba 1 thread``: ``numba_backend.prepare/init/run(..., threads=1)``: the chains one
   after the other on one thread;
3. ``jax``: ``langevin.sample(..., backend="jax", ...)``;
4. ``blackjax``: ``blackjax.hmc`` (velocity Verlet, the same inverse mass), ``vmap`` over
   the chains inside a jitted ``lax.scan`` over the draws, recording the positions as
   langevin does, keys split per step the way the BlackJAX documentation does;
5. ``bare numba vg`` and ``bare jax vg``: only the ``chains · draws · L`` value-and-gradient
   calls HMC makes, the floor of each backend (the loops of :mod:`benchmarks.mala_logistic`),
   evaluated at the states of the first ``numba`` run, each L times, in a shuffled order so
   that consecutive calls are at different points (re-evaluating one point flatters a loop;
   see that module). They say whether a ratio comes from the sampler or from the target's
   gradient on each backend.

Equal work is checked, not assumed:

* mean acceptance probability of every implementation with its Monte Carlo standard error
  (ESS of the per-draw acceptance probabilities, ArviZ), and the z-score of the difference
  from BlackJAX's (|z| < 3: consistent);
* gradient evaluations per draw, *declared* (langevin's ``n_grad``, BlackJAX's
  ``num_integration_steps`` × 1 for velocity Verlet) and *counted*: the target wrapped in a
  counter (a Numba function incrementing an array passed as data; a ``jax.debug.callback``
  in the JAX log-density), one chain, the difference between runs of 1 and 1 + k draws
  divided by k. Both implementations cache the gradient at the current point, so a
  trajectory of L leapfrog steps costs L gradients.

Writes ``benchmarks/results/hmc_blackjax.csv`` (every run) and ``hmc_blackjax.md`` (medians,
spread, ratios, goals, the equal-work checks, machine); ``--quick``/``--tiny`` write
``hmc_blackjax_quick.*``/``hmc_blackjax_tiny.*``, ``--out DIR`` another directory.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import blackjax
import jax
import jax.numpy as jnp
import numpy as np

import langevin
from benchmarks._common import (
    ProblemResult,
    Timed,
    acceptance_cells,
    acceptance_stats,
    ark_target,
    blackjax_chains,
    blackjax_timed,
    counted_gradients,
    equal_work,
    fmt_goal,
    langevin_timed,
    log,
    logistic_target,
    numba_one_thread_timed,
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
from benchmarks.mala_logistic import _bare_numba_vg, make_bare_jax_vg
from langevin.backends import numba_backend
from langevin.driver import DivergentTransitionWarning

GOALS = {  # ratio name -> (numerator, denominator, goal: ratio <= goal)
    "numba / blackjax": ("numba", "blackjax", 0.5),
    "jax / blackjax": ("jax", "blackjax", 0.9),
    "numba 1 thread / blackjax": ("numba 1 thread", "blackjax", None),
    "numba 1 thread / bare numba vg": ("numba 1 thread", "bare numba vg", None),
    "jax / bare jax vg": ("jax", "bare jax vg", None),
    "blackjax / bare jax vg": ("blackjax", "bare jax vg", None),
    "bare numba vg / bare jax vg": ("bare numba vg", "bare jax vg", None),
}


@dataclass(frozen=True)
class Problem:
    """One benchmark problem: a target, fixed HMC parameters, starting points."""

    name: str
    description: str
    make_target: Callable[[], langevin.Target]
    step_size: float
    n_leapfrog: int
    draws: int  # per chain, full run
    mass: str  # "identity" or "reference variances"

    def inverse_mass(self, target: langevin.Target) -> np.ndarray:
        if self.mass == "identity":
            return np.ones(target.dim)
        return np.asarray(target.reference.sd, dtype=np.float64) ** 2

    def kernel(self, target: langevin.Target) -> langevin.HMC:
        return langevin.HMC(self.step_size, n_leapfrog=self.n_leapfrog,
                            inverse_mass=self.inverse_mass(target))  # fmt: skip

    def starts(self, target: langevin.Target, chains: int) -> np.ndarray:
        """The chains' starting points, shared by every implementation."""
        return start_points(target, chains)[0]


# Step sizes found once with short runs (4 chains x 1000 draws, langevin Numba, 10 leapfrog
# steps): logistic h = 0.25 -> acceptance 0.86, 0.28 -> ~0.8, 0.30 -> 0.74, 0.35 -> 0.65;
# arK (inverse mass = reference variances) h = 0.15 -> 0.90, 0.2 -> 0.76, 0.25 -> unstable
# (1034 of 4000 transitions divergent), so h = 0.18.
PROBLEMS = {
    "logistic": Problem(
        "logistic",
        f"synthetic_logistic_regression(n={N_OBS}, dim={DIM}), identity mass",
        logistic_target, 0.28, 10, 2000, "identity",
    ),
    "arK": Problem(
        "arK",
        "posteriordb arK-arK (7-D, 195 rows), inverse mass = reference posterior variances",
        ark_target, 0.18, 10, 10000, "reference variances",
    ),
}  # fmt: skip


# -- the implementations ----------------------------------------------------------------------
def make_blackjax_hmc(logdensity: Callable, step_size: float, inverse_mass: np.ndarray,
                      n_leapfrog: int, draws: int, chains: int) -> Callable:  # fmt: skip
    """BlackJAX HMC: ``vmap`` over chains inside a jitted ``lax.scan`` over draws.

    Returns ``run(key, starts) -> (positions, acceptance_rate, is_accepted,
    num_integration_steps)``, each with leading axes ``(draws, chains)``.
    """
    algorithm = blackjax.hmc(logdensity, step_size, jnp.asarray(inverse_mass), n_leapfrog)

    def record(states, info):
        return (states.position, info.acceptance_rate, info.is_accepted,
                info.num_integration_steps)  # fmt: skip

    return blackjax_chains(algorithm, draws, chains, record)


def acceptance_summary(rate: np.ndarray, accepted: np.ndarray, n_grad: np.ndarray) -> dict:
    """Mean acceptance probability with its MCSE (from ArviZ's ESS of the mean, over chains),
    fraction accepted, mean declared gradient evaluations per draw. Arrays ``(chains, draws)``.
    """
    return {
        **acceptance_stats(rate),
        "accepted_fraction": float(np.mean(np.asarray(accepted))),
        "grads_per_draw_declared": float(np.mean(np.asarray(n_grad))),
    }


def build(problem: Problem, target, starts: np.ndarray, draws: int) -> list[Timed]:
    """The timed implementations of one problem (the module docstring's list)."""
    chains, _ = starts.shape
    inverse_mass = problem.inverse_mass(target)
    kernel = problem.kernel(target)

    def sample(backend):
        return langevin_timed(target, kernel, starts, draws, backend, adapt_mass_matrix=False)

    visited: dict[str, np.ndarray] = {}  # the numba run's draws, for the bare loops

    def trace_summary(trace):
        s = trace.sample_stats
        visited.setdefault("draws", trace.draws)
        return acceptance_summary(s["acceptance_rate"], s["is_accepted"], s["n_grad"])

    params = numba_backend.broadcast_params(kernel.params(), chains)._replace(
        inverse_mass=np.tile(inverse_mass, (chains, 1))
    )
    numba_one_thread = numba_one_thread_timed(kernel, target, starts, draws,
                                              np.full(chains, problem.step_size),
                                              params=params)  # fmt: skip

    def chunk_summary(result):
        i = result.info
        return acceptance_summary(i["acceptance_rate"], i["is_accepted"], i["n_grad"])

    blackjax_run = make_blackjax_hmc(target.jax_logdensity, problem.step_size, inverse_mass,
                                     problem.n_leapfrog, draws, chains)  # fmt: skip

    def blackjax_summary(out):
        _, rate, accepted, n_steps = (np.asarray(a).T for a in out)  # -> (chains, draws)
        return acceptance_summary(rate, accepted, n_steps)  # velocity Verlet: 1 gradient/step

    vg, data = target.numba_value_and_grad, target.numba_data
    bare_jax_run = make_bare_jax_vg(target.jax_logdensity, draws * problem.n_leapfrog)
    points: dict[str, np.ndarray] = {}

    def bare_points() -> np.ndarray:
        """``(chains, draws·L, dim)``: the states of the first numba run, each L times, in a
        shuffled order (so consecutive calls are at different points, as in a trajectory)."""
        if "numba" not in points:
            x = visited["draws"]
            order = np.random.default_rng(7).permutation(
                np.repeat(np.arange(draws), problem.n_leapfrog)
            )
            points["numba"] = np.ascontiguousarray(x[:, order])
            points["jax"] = jnp.asarray(points["numba"].transpose(1, 0, 2))
        return points

    def bare_numba(r):
        return _bare_numba_vg(vg, data, bare_points()["numba"])

    def bare_jax(r):
        return jax.block_until_ready(bare_jax_run(bare_points()["jax"]))

    return [
        Timed("numba", sample("numba"), trace_summary),
        Timed("numba 1 thread", numba_one_thread, chunk_summary),
        Timed("jax", sample("jax"), trace_summary),
        Timed("blackjax", blackjax_timed(blackjax_run, starts), blackjax_summary),
        Timed("bare numba vg", bare_numba),
        Timed("bare jax vg", bare_jax),
    ]


# -- counting gradient evaluations ------------------------------------------------------------
def count_gradients(problem: Problem, target, start: np.ndarray) -> dict[str, float]:
    """Counted value-and-gradient evaluations per draw of each implementation (one chain;
    :func:`benchmarks._common.counted_gradients`)."""
    inverse_mass = problem.inverse_mass(target)

    def make_run(logdensity, draws):
        return make_blackjax_hmc(logdensity, problem.step_size, inverse_mass,
                                 problem.n_leapfrog, draws, 1)  # fmt: skip

    out = counted_gradients(problem.kernel(target), target, start, make_run)
    out["numba 1 thread"] = out["numba"]  # the same compiled loop
    return out


# -- report -----------------------------------------------------------------------------------
def write_csv(path: Path, results: list[ProblemResult]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["problem", "name", "run", "seconds", "cpu_seconds", "draws", "chains",
                    "step_size", "n_leapfrog", "acceptance_rate", "acceptance_mcse",
                    "grads_per_draw_declared", "grads_per_draw_counted"])  # fmt: skip
        for res in results:
            p = res.problem
            tail = [res.draws, res.chains, p.step_size, p.n_leapfrog]
            for it in res.items:
                s = it.summary
                blank = [""] * 4
                stats = blank
                if s:  # the samplers (the bare loops have no acceptance)
                    stats = [f"{s['acceptance_rate']:.6f}", f"{s['acceptance_mcse']:.6f}",
                             f"{s['grads_per_draw_declared']:.4f}",
                             f"{res.counted.get(it.name, float('nan')):.4f}"]  # fmt: skip
                for run, t, c in timing_rows(it):
                    w.writerow([p.name, it.name, run, f"{t:.6f}", f"{c:.6f}", *tail,
                                *(stats if run == "median" else blank)])  # fmt: skip


def write_md(path: Path, config: dict, info: dict, results: list[ProblemResult]) -> None:
    lines = report_head(
        "HMC: langevin vs BlackJAX",
        f"python -m benchmarks.hmc_blackjax{config['flag']}",
        info,
        "Fixed HMC parameters (no warm-up), the same step size, number of leapfrog steps, "
        "inverse mass, chains, starting points and float64 in every implementation; BlackJAX "
        "is `blackjax.hmc` (velocity Verlet) vmapped over the chains in a jitted `lax.scan`. "
        f"Times: median of {config['runs']} runs after one warm-up call (the warm-up call, "
        'with compilation, is "first call"); spread = min and max of the timed runs; the '
        "implementations ran interleaved, round by round, in one process. Wall-clock times are "
        "what the goals are about; CPU is the CPU time of the whole process (all threads) "
        "during the run, a guide to the work done when other processes compete for the cores.",
    )
    for res in results:
        p = res.problem
        by_name = res.by_name
        n_draws = res.draws * res.chains
        lines += [
            f"## {p.name}: {p.description}",
            "",
            f"Step size {p.step_size}, {p.n_leapfrog} leapfrog steps, {res.chains} chains x "
            f"{res.draws} draws.",
            "",
            "| implementation | median (s) | min (s) | max (s) | spread (max−min)/median "
            "| CPU median (s) | first call (s) | µs per draw | mean acceptance ± MCSE "
            "| z vs blackjax | gradients per draw (declared / counted) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for it in res.items:
            s = it.summary
            if not s:  # a bare loop: L value-and-gradient calls per draw by construction
                work = f"— | — | {p.n_leapfrog} (by construction) |"
            else:
                work = (
                    acceptance_cells(it, by_name["blackjax"])
                    + f" | {s['grads_per_draw_declared']:g} / "
                    f"{res.counted.get(it.name, float('nan')):g} |"
                )
            lines.append(timing_cells(it, n_draws) + work)
        lines += [
            "",
            "| ratio (of medians) | wall | CPU | goal (wall) |",
            "|---|---|---|---|",
            *(
                f"| {label} | {wall:.3f} | {cpu:.3f} | {fmt_goal(wall, goal)} |"
                for label, wall, cpu, goal in ratios(by_name, GOALS)
            ),
            "",
            *equal_work(res),
        ]
    path.write_text("\n".join(lines))


def bench(problem: Problem, target, starts: np.ndarray, draws: int, runs: int) -> ProblemResult:
    """Time and count one problem (:func:`benchmarks._common.run_problems`)."""
    chains = len(starts)
    log(f"{problem.name}: {problem.description}; h={problem.step_size}, "
        f"L={problem.n_leapfrog}, {chains} chains x {draws} draws")  # fmt: skip
    items = build(problem, target, starts, draws)
    time_interleaved(items, runs, log)
    counted = count_gradients(problem, target, starts[0])
    log(f"  counted gradient evaluations per draw: {counted}")
    res = ProblemResult(problem, chains, draws, items, counted)
    for label, wall, cpu, goal in ratios(res.by_name, GOALS):
        log(f"  {label:<28} {wall:7.3f}  (CPU {cpu:6.3f})   {fmt_goal(wall, goal)}")
    return res


def main(argv: list[str] | None = None) -> None:
    # float64 for every implementation, switched on by the benchmark (the user here), never
    # by the package
    jax.config.update("jax_enable_x64", True)
    plan = parse_plan(argv, __doc__, PROBLEMS)
    divergent = [DivergentTransitionWarning]  # none at these step sizes
    info, results = run_problems(plan, PROBLEMS, "HMC", bench, ignore=divergent)
    write_reports(plan, "hmc_blackjax", info, results, write_csv, write_md)


if __name__ == "__main__":
    main()
