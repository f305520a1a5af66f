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

import argparse
import csv
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax

# float64 for every implementation; set by this script before any array exists (the package
# never changes JAX's global flags).
jax.config.update("jax_enable_x64", True)

import arviz as az  # noqa: E402
import blackjax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402

import langevin  # noqa: E402
from benchmarks._common import (  # noqa: E402
    Timed,
    counted_gradients_per_step,
    counting_jax_logdensity,
    fmt_goal,
    load_warning,
    loadavg,
    machine,
    time_interleaved,
)
from benchmarks._latency_probe import CHAINS, DATA_SEED, DIM, N_OBS  # noqa: E402
from benchmarks.mala_logistic import (  # noqa: E402
    INIT_SEED,
    _bare_numba_vg,
    make_bare_jax_vg,
)
from langevin.backends import numba_backend  # noqa: E402
from langevin.driver import DivergentTransitionWarning  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
GOALS = {  # ratio name -> (numerator, denominator, goal: ratio <= goal)
    "numba / blackjax": ("numba", "blackjax", 0.5),
    "jax / blackjax": ("jax", "blackjax", 0.9),
    "numba 1 thread / blackjax": ("numba 1 thread", "blackjax", None),
    "numba 1 thread / bare numba vg": ("numba 1 thread", "bare numba vg", None),
    "jax / bare jax vg": ("jax", "bare jax vg", None),
    "blackjax / bare jax vg": ("blackjax", "bare jax vg", None),
    "bare numba vg / bare jax vg": ("bare numba vg", "bare jax vg", None),
}
#: |z| below this: acceptance rates consistent within Monte Carlo error.
Z_CONSISTENT = 3.0
COUNT_DRAWS = 5  # extra draws of the gradient-counting runs


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

    def starts(self, target: langevin.Target, chains: int) -> np.ndarray:
        """The chains' starting points, shared by every implementation."""
        rng = np.random.default_rng(INIT_SEED)
        if target.reference is not None and target.reference.draws is not None:
            rows = rng.choice(len(target.reference.draws), size=chains, replace=False)
            return np.ascontiguousarray(target.reference.draws[rows], dtype=np.float64)
        jitter = rng.uniform(-0.1, 0.1, (chains, target.dim))
        return np.ascontiguousarray(target.initial_position + jitter, dtype=np.float64)


def _logistic() -> langevin.Target:
    return langevin.targets.synthetic_logistic_regression(n=N_OBS, dim=DIM, seed=DATA_SEED)


def _ark() -> langevin.Target:
    return langevin.targets.posteriordb("arK-arK")


# Step sizes found once with short runs (4 chains x 1000 draws, langevin Numba, 10 leapfrog
# steps): logistic h = 0.25 -> acceptance 0.86, 0.28 -> ~0.8, 0.30 -> 0.74, 0.35 -> 0.65;
# arK (inverse mass = reference variances) h = 0.15 -> 0.90, 0.2 -> 0.76, 0.25 -> unstable
# (1034 of 4000 transitions divergent), so h = 0.18.
PROBLEMS = {
    "logistic": Problem(
        "logistic",
        f"synthetic_logistic_regression(n={N_OBS}, dim={DIM}), identity mass",
        _logistic, 0.28, 10, 2000, "identity",
    ),
    "arK": Problem(
        "arK",
        "posteriordb arK-arK (7-D, 195 rows), inverse mass = reference posterior variances",
        _ark, 0.18, 10, 10000, "reference variances",
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

    @jax.jit
    def run(key, starts):
        states = jax.vmap(algorithm.init)(starts)

        def one_step(states, step_key):
            keys = jax.random.split(step_key, chains)
            states, info = jax.vmap(algorithm.step)(keys, states)
            record = (states.position, info.acceptance_rate, info.is_accepted,
                      info.num_integration_steps)  # fmt: skip
            return states, record

        _, record = jax.lax.scan(one_step, states, jax.random.split(key, draws))
        return record

    return run


def acceptance_summary(rate: np.ndarray, accepted: np.ndarray, n_grad: np.ndarray) -> dict:
    """Mean acceptance probability with its MCSE (from ArviZ's ESS of the mean, over chains),
    fraction accepted, mean declared gradient evaluations per draw. Arrays ``(chains, draws)``.
    """
    rate = np.asarray(rate, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ess = float(az.ess(rate, method="mean"))
    sd = float(np.std(rate, ddof=1))
    return {
        "acceptance_rate": float(np.mean(rate)),
        "acceptance_mcse": sd / np.sqrt(max(ess, 1.0)),
        "accepted_fraction": float(np.mean(np.asarray(accepted))),
        "grads_per_draw_declared": float(np.mean(np.asarray(n_grad))),
    }


def build(problem: Problem, target, starts: np.ndarray, draws: int) -> list[Timed]:
    """The timed implementations of one problem (the module docstring's list)."""
    chains, dim = starts.shape
    inverse_mass = problem.inverse_mass(target)
    kernel = langevin.HMC(problem.step_size, n_leapfrog=problem.n_leapfrog,
                          inverse_mass=inverse_mass)  # fmt: skip

    def sample(backend):
        def fn(r):
            return langevin.sample(
                target, kernel, chains=chains, warmup=0, draws=draws, backend=backend,
                progress=False, seed=1000 + r, initial_position=starts,
                adapt_mass_matrix=False,
            )  # fmt: skip

        return fn

    visited: dict[str, np.ndarray] = {}  # the numba run's draws, for the bare loops

    def trace_summary(trace):
        s = trace.sample_stats
        visited.setdefault("draws", trace.draws)
        return acceptance_summary(s["acceptance_rate"], s["is_accepted"], s["n_grad"])

    params = numba_backend.broadcast_params(kernel.params(), chains)._replace(
        inverse_mass=np.tile(inverse_mass, (chains, 1)))
    step_sizes = np.full(chains, problem.step_size)

    def numba_one_thread(r):
        prepared = numba_backend.prepare(kernel, target, dim, np.float64)
        states = numba_backend.init(prepared, starts)
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(2000 + r).spawn(chains)]
        return numba_backend.run(prepared, states, draws, step_sizes, rngs=rngs, threads=1,
                                 params=params)  # fmt: skip

    def chunk_summary(result):
        i = result.info
        return acceptance_summary(i["acceptance_rate"], i["is_accepted"], i["n_grad"])

    blackjax_run = make_blackjax_hmc(target.jax_logdensity, problem.step_size, inverse_mass,
                                     problem.n_leapfrog, draws, chains)  # fmt: skip
    starts_jax = jnp.asarray(starts)

    def blackjax_fn(r):
        return jax.block_until_ready(blackjax_run(jax.random.key(3000 + r), starts_jax))

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
        Timed("blackjax", blackjax_fn, blackjax_summary),
        Timed("bare numba vg", bare_numba),
        Timed("bare jax vg", bare_jax),
    ]


# -- counting gradient evaluations ------------------------------------------------------------
def count_gradients(problem: Problem, target, start: np.ndarray) -> dict[str, float]:
    """Counted value-and-gradient evaluations per draw of each implementation (one chain):
    (calls in a run of 1 + COUNT_DRAWS draws − calls in a run of 1 draw) / COUNT_DRAWS."""
    inverse_mass = problem.inverse_mass(target)
    kernel = langevin.HMC(problem.step_size, n_leapfrog=problem.n_leapfrog,
                          inverse_mass=inverse_mass)  # fmt: skip
    out = {
        backend: counted_gradients_per_step(kernel, target, start, backend, COUNT_DRAWS)
        for backend in ("numba", "jax")
    }
    logdensity, calls = counting_jax_logdensity(target)

    def blackjax_calls(draws):
        run = make_blackjax_hmc(logdensity, problem.step_size, inverse_mass,
                                problem.n_leapfrog, draws, 1)  # fmt: skip
        calls[0] = 0
        jax.block_until_ready(run(jax.random.key(0), jnp.asarray(start[None, :])))
        jax.effects_barrier()
        return calls[0]

    out["blackjax"] = (blackjax_calls(1 + COUNT_DRAWS) - blackjax_calls(1)) / COUNT_DRAWS
    out["numba 1 thread"] = out["numba"]  # the same compiled loop
    return out


# -- report -----------------------------------------------------------------------------------
def ratios(items: dict[str, Timed]) -> list[tuple[str, float, float, float | None]]:
    """``(label, wall-time ratio, CPU-time ratio, goal)`` of medians."""
    out = []
    for label, (num, den, goal) in GOALS.items():
        if num in items and den in items:
            a, b = items[num], items[den]
            out.append((label, a.median / b.median, a.cpu_median / b.cpu_median, goal))
    return out


def acceptance_z(item: Timed, reference: Timed) -> float:
    """z of the difference of two mean acceptance probabilities (independent runs)."""
    a, b = item.summary, reference.summary
    se = np.hypot(a["acceptance_mcse"], b["acceptance_mcse"])
    return float((a["acceptance_rate"] - b["acceptance_rate"]) / se) if se > 0 else float("nan")


@dataclass
class ProblemResult:
    problem: Problem
    chains: int
    draws: int
    items: list[Timed]
    counted: dict[str, float]


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
                w.writerow([p.name, it.name, "first", f"{it.first:.6f}", f"{it.first_cpu:.6f}",
                            *tail, *blank])  # fmt: skip
                for i, (t, c) in enumerate(zip(it.runs, it.cpu_runs), 1):
                    w.writerow([p.name, it.name, str(i), f"{t:.6f}", f"{c:.6f}", *tail, *blank])
                w.writerow([p.name, it.name, "median", f"{it.median:.6f}",
                            f"{it.cpu_median:.6f}", *tail, *stats])  # fmt: skip


def write_md(path: Path, config: dict, info: dict, results: list[ProblemResult]) -> None:
    lines = [
        "# HMC: langevin vs BlackJAX",
        "",
        f"Made by `python -m benchmarks.hmc_blackjax{config['flag']}` on {info['date']}.",
        "",
        "Fixed HMC parameters (no warm-up), the same step size, number of leapfrog steps, "
        "inverse mass, chains, starting points and float64 in every implementation; BlackJAX "
        "is `blackjax.hmc` (velocity Verlet) vmapped over the chains in a jitted `lax.scan`. "
        f"Times: median of {config['runs']} runs after one warm-up call (the warm-up call, "
        'with compilation, is "first call"); spread = min and max of the timed runs; the '
        "implementations ran interleaved, round by round, in one process. Wall-clock times are "
        "what the goals are about; CPU is the CPU time of the whole process (all threads) "
        "during the run, a guide to the work done when other processes compete for the cores.",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        "",
        *load_warning(info),
    ]
    for res in results:
        p = res.problem
        by_name = {it.name: it for it in res.items}
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
            spread = (max(it.runs) - min(it.runs)) / it.median if it.runs else float("nan")
            if not s:  # a bare loop: L value-and-gradient calls per draw by construction
                work = f"— | — | {p.n_leapfrog} (by construction) |"
            else:
                z = acceptance_z(it, by_name["blackjax"])
                work = (
                    f"{s['acceptance_rate']:.4f} ± {s['acceptance_mcse']:.4f} | "
                    + ("—" if it.name == "blackjax" else f"{z:+.2f}")
                    + f" | {s['grads_per_draw_declared']:g} / "
                    f"{res.counted.get(it.name, float('nan')):g} |"
                )
            lines.append(
                f"| {it.name} | {it.median:.3f} | {min(it.runs):.3f} | {max(it.runs):.3f} | "
                f"{spread:.1%} | {it.cpu_median:.3f} | {it.first:.3f} | "
                f"{1e6 * it.median / n_draws:.1f} | {work}"
            )
        lines += [
            "",
            "| ratio (of medians) | wall | CPU | goal (wall) |",
            "|---|---|---|---|",
            *(
                f"| {label} | {wall:.3f} | {cpu:.3f} | {fmt_goal(wall, goal)} |"
                for label, wall, cpu, goal in ratios(by_name)
            ),
            "",
        ]
        zs = [abs(acceptance_z(it, by_name["blackjax"])) for it in res.items
              if it.summary and it.name != "blackjax"]  # fmt: skip
        grads = {round(v, 6) for v in res.counted.values()}
        lines += [
            "Equal work: acceptance rates "
            + ("consistent" if max(zs) < Z_CONSISTENT else "**NOT consistent**")
            + f" with BlackJAX's (max |z| = {max(zs):.2f}, threshold {Z_CONSISTENT:g}); counted "
            "gradient evaluations per draw "
            + ("equal" if len(grads) == 1 else "**differ**")
            + f" ({', '.join(f'{k} {v:g}' for k, v in res.counted.items())}).",
            "",
        ]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="1/10 of the draws, 2 timed runs")
    size.add_argument("--tiny", action="store_true",
                      help="logistic only, 2 chains x 20 draws, 1 run (smoke test)")  # fmt: skip
    parser.add_argument("--problems", nargs="+", choices=sorted(PROBLEMS), default=None)
    parser.add_argument("--draws", type=int, default=None, help="draws per chain (all problems)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per implementation")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of the results")
    parser.add_argument("--tag", default=None, help="suffix of the result file names")
    args = parser.parse_args(argv)
    names = args.problems or (["logistic"] if args.tiny else list(PROBLEMS))
    runs = args.runs or (1 if args.tiny else 2 if args.quick else 5)
    chains = 2 if args.tiny else CHAINS
    tag = args.tag or ("tiny" if args.tiny else "quick" if args.quick else None)
    flag = " --tiny" if args.tiny else " --quick" if args.quick else ""
    config = {"runs": runs, "flag": flag}

    def log(msg: str) -> None:
        print(msg, flush=True)

    info = machine()
    info["load average (1, 5, 15 min) at start"] = loadavg()
    log(f"HMC benchmark: problems {names}, {chains} chains, {runs} timed runs")
    log("  " + "; ".join(f"{k}={v}" for k, v in info.items()))
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", numba.core.errors.NumbaExperimentalFeatureWarning)
        warnings.simplefilter("ignore", numba.core.errors.NumbaWarning)
        warnings.simplefilter("ignore", DivergentTransitionWarning)  # none at these step sizes
        for name in names:
            problem = PROBLEMS[name]
            draws = args.draws or (20 if args.tiny else problem.draws // (10 if args.quick else 1))
            target = problem.make_target()
            starts = problem.starts(target, chains)
            log(f"{name}: {problem.description}; h={problem.step_size}, "
                f"L={problem.n_leapfrog}, {chains} chains x {draws} draws")  # fmt: skip
            items = build(problem, target, starts, draws)
            time_interleaved(items, runs, log)
            counted = count_gradients(problem, target, starts[0])
            log(f"  counted gradient evaluations per draw: {counted}")
            results.append(ProblemResult(problem, chains, draws, items, counted))
            by_name = {it.name: it for it in items}
            for label, wall, cpu, goal in ratios(by_name):
                log(f"  {label:<28} {wall:7.3f}  (CPU {cpu:6.3f})   {fmt_goal(wall, goal)}")
    info["load average (1, 5, 15 min) at end"] = loadavg()

    args.out.mkdir(parents=True, exist_ok=True)
    stem = "hmc_blackjax" + (f"_{tag}" if tag else "")
    write_csv(args.out / f"{stem}.csv", results)
    write_md(args.out / f"{stem}.md", config, info, results)
    log(f"wrote {args.out / (stem + '.csv')} and {args.out / (stem + '.md')}")


if __name__ == "__main__":
    main()
