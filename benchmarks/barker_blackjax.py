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

import argparse
import csv
import statistics
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
    load_warning,
    loadavg,
    machine,
    time_interleaved,
)
from benchmarks._latency_probe import CHAINS, DATA_SEED, DIM, N_OBS  # noqa: E402
from langevin.kernels import Barker  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
INIT_SEED = 12345  # starting points, shared by every implementation
RATIOS = {  # ratio name -> (numerator, denominator)
    "numba / blackjax": ("numba", "blackjax"),
    "jax / blackjax": ("jax", "blackjax"),
    "numba / jax": ("numba", "jax"),
}
#: |z| below this: acceptance rates consistent within Monte Carlo error.
Z_CONSISTENT = 3.0
COUNT_DRAWS = 5  # extra draws of the gradient-counting runs


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
        rng = np.random.default_rng(INIT_SEED)
        if target.reference is not None and target.reference.draws is not None:
            rows = rng.choice(len(target.reference.draws), size=chains, replace=False)
            return np.ascontiguousarray(target.reference.draws[rows], dtype=np.float64)
        jitter = rng.uniform(-0.1, 0.1, (chains, target.dim))
        burn = langevin.sample(target, Barker(self.step_size), chains=chains, warmup=0,
                               draws=1000, seed=INIT_SEED, progress=False,
                               initial_position=target.initial_position + jitter)  # fmt: skip
        return np.ascontiguousarray(burn.draws[:, -1], dtype=np.float64)


def _logistic() -> langevin.Target:
    return langevin.targets.synthetic_logistic_regression(n=N_OBS, dim=DIM, seed=DATA_SEED)


def _ark() -> langevin.Target:
    return langevin.targets.posteriordb("arK-arK")


# Step sizes: the median σ that warm-up (dual averaging toward 0.574, 4 chains x 2000 steps
# from σ = 0.01, langevin Numba) settled on, rounded: logistic 0.280-0.288, arK 0.0169-0.0180;
# 2000 fixed-σ draws from the warm-up's last states then accepted 0.59 and 0.56.
PROBLEMS = {
    "logistic": Problem(
        "logistic", f"synthetic_logistic_regression(n={N_OBS}, dim={DIM})", _logistic,
        0.28, 10000,
    ),
    "arK": Problem(
        "arK", "posteriordb arK-arK (7-D, 195 rows)", _ark, 0.018, 50000,
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

    @jax.jit
    def run(key, starts):
        states = jax.vmap(algorithm.init)(starts)

        def one_step(states, step_key):
            keys = jax.random.split(step_key, chains)
            states, info = jax.vmap(algorithm.step)(keys, states)
            return states, (states.position, info.acceptance_rate)

        _, record = jax.lax.scan(one_step, states, jax.random.split(key, draws))
        return record

    return run


def acceptance_summary(rate: np.ndarray) -> dict:
    """Mean acceptance probability with its MCSE (ArviZ ESS of the mean over chains);
    ``rate`` is ``(chains, draws)``."""
    rate = np.asarray(rate, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ess = float(az.ess(rate, method="mean"))
    sd = float(np.std(rate, ddof=1))
    return {"acceptance_rate": float(np.mean(rate)),
            "acceptance_mcse": sd / np.sqrt(max(ess, 1.0))}  # fmt: skip


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
        def fn(r):
            trace = langevin.sample(target, kernel, chains=chains, warmup=0, draws=draws,
                                    backend=backend, progress=False, seed=1000 + r,
                                    initial_position=starts)  # fmt: skip
            outputs.setdefault(backend, {})[r] = trace.draws
            return trace

        return fn

    def trace_summary(trace):
        return acceptance_summary(trace.sample_stats["acceptance_rate"])

    blackjax_run = make_blackjax_barker(target.jax_logdensity, problem.step_size, draws,
                                        chains)  # fmt: skip
    starts_jax = jnp.asarray(starts)

    def blackjax_fn(r):
        out = jax.block_until_ready(blackjax_run(jax.random.key(3000 + r), starts_jax))
        outputs.setdefault("blackjax", {})[r] = np.asarray(out[0]).transpose(1, 0, 2)
        return out

    def blackjax_summary(out):
        return acceptance_summary(np.asarray(out[1]).T)  # -> (chains, draws)

    return [
        Timed("numba", sample("numba"), trace_summary),
        Timed("jax", sample("jax"), trace_summary),
        Timed("blackjax", blackjax_fn, blackjax_summary),
    ]


def count_gradients(problem: Problem, target, start: np.ndarray) -> dict[str, float]:
    """Counted value-and-gradient evaluations per draw of each implementation (one chain)."""
    kernel = Barker(problem.step_size)
    out = {
        backend: counted_gradients_per_step(kernel, target, start, backend, COUNT_DRAWS)
        for backend in ("numba", "jax")
    }
    logdensity, calls = counting_jax_logdensity(target)

    def blackjax_calls(draws):
        run = make_blackjax_barker(logdensity, problem.step_size, draws, 1)
        calls[0] = 0
        jax.block_until_ready(run(jax.random.key(0), jnp.asarray(start[None, :])))
        jax.effects_barrier()
        return calls[0]

    out["blackjax"] = (blackjax_calls(1 + COUNT_DRAWS) - blackjax_calls(1)) / COUNT_DRAWS
    return out


# -- report -----------------------------------------------------------------------------------
@dataclass
class ProblemResult:
    problem: Problem
    chains: int
    draws: int
    items: list[Timed]
    counted: dict[str, float]
    ess: dict[str, list[np.ndarray]]  # name -> per timed run, the ESS of every coordinate

    def efficiency(self, it: Timed) -> dict[str, float]:
        """Median over the timed runs of min ESS, mean ESS and min ESS per second."""
        runs = self.ess[it.name]
        return {
            "min_ess": statistics.median(float(e.min()) for e in runs),
            "mean_ess": statistics.median(float(e.mean()) for e in runs),
            "min_ess_per_s": statistics.median(float(e.min()) / t for e, t in zip(runs, it.runs)),
        }


def ratios(items: dict[str, Timed]) -> list[tuple[str, float, float]]:
    """``(label, wall-time ratio, CPU-time ratio)`` of medians."""
    return [(label, items[a].median / items[b].median, items[a].cpu_median / items[b].cpu_median)
            for label, (a, b) in RATIOS.items() if a in items and b in items]  # fmt: skip


def acceptance_z(item: Timed, reference: Timed) -> float:
    """z of the difference of two mean acceptance probabilities (independent runs)."""
    a, b = item.summary, reference.summary
    se = np.hypot(a["acceptance_mcse"], b["acceptance_mcse"])
    return float((a["acceptance_rate"] - b["acceptance_rate"]) / se) if se > 0 else float("nan")


def write_csv(path: Path, results: list[ProblemResult]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["problem", "name", "run", "seconds", "cpu_seconds", "draws", "chains",
                    "step_size", "min_ess", "mean_ess", "min_ess_per_s", "acceptance_rate",
                    "acceptance_mcse", "grads_per_draw_counted"])  # fmt: skip
        for res in results:
            p = res.problem
            tail = [res.draws, res.chains, p.step_size]
            for it in res.items:
                w.writerow([p.name, it.name, "first", f"{it.first:.6f}", f"{it.first_cpu:.6f}",
                            *tail, "", "", "", "", "", ""])  # fmt: skip
                for i, (t, c, e) in enumerate(zip(it.runs, it.cpu_runs, res.ess[it.name]), 1):
                    w.writerow([p.name, it.name, str(i), f"{t:.6f}", f"{c:.6f}", *tail,
                                f"{e.min():.1f}", f"{e.mean():.1f}", f"{e.min() / t:.1f}",
                                "", "", ""])  # fmt: skip
                eff, s = res.efficiency(it), it.summary
                w.writerow([p.name, it.name, "median", f"{it.median:.6f}",
                            f"{it.cpu_median:.6f}", *tail, f"{eff['min_ess']:.1f}",
                            f"{eff['mean_ess']:.1f}", f"{eff['min_ess_per_s']:.1f}",
                            f"{s['acceptance_rate']:.6f}", f"{s['acceptance_mcse']:.6f}",
                            f"{res.counted[it.name]:.4f}"])  # fmt: skip


def write_md(path: Path, config: dict, info: dict, results: list[ProblemResult]) -> None:
    lines = [
        "# Barker proposal: langevin vs BlackJAX",
        "",
        f"Made by `python -m benchmarks.barker_blackjax{config['flag']}` on {info['date']}.",
        "",
        "The same fixed step size σ (no warm-up), identity preconditioning, chains, starting "
        "points and float64 in every implementation; BlackJAX is `blackjax.barker_proposal` "
        "vmapped over the chains in a jitted `lax.scan`. Times: median of "
        f"{config['runs']} runs after one warm-up call (the warm-up call, with compilation, is "
        '"first call"); spread = min and max of the timed runs; the implementations ran '
        "interleaved, round by round, in one process. CPU is the CPU time of the whole process "
        "(all threads) during the run. ESS: ArviZ bulk ESS of each coordinate of a run's "
        "draws; min and mean over coordinates, median over the timed runs; ESS/s is each "
        "run's min ESS over its own wall time, median over runs.",
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
            f"Step size σ = {p.step_size}, {res.chains} chains x {res.draws} draws.",
            "",
            "| implementation | median (s) | min (s) | max (s) | spread | CPU median (s) "
            "| first call (s) | µs per draw | min ESS | mean ESS | min ESS / s "
            "| mean acceptance ± MCSE | z vs blackjax | gradients per draw (counted) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for it in res.items:
            s, eff = it.summary, res.efficiency(it)
            spread = (max(it.runs) - min(it.runs)) / it.median if it.runs else float("nan")
            z = "—" if it.name == "blackjax" else f"{acceptance_z(it, by_name['blackjax']):+.2f}"
            lines.append(
                f"| {it.name} | {it.median:.3f} | {min(it.runs):.3f} | {max(it.runs):.3f} | "
                f"{spread:.1%} | {it.cpu_median:.3f} | {it.first:.3f} | "
                f"{1e6 * it.median / n_draws:.1f} | {eff['min_ess']:.0f} | "
                f"{eff['mean_ess']:.0f} | {eff['min_ess_per_s']:.0f} | "
                f"{s['acceptance_rate']:.4f} ± {s['acceptance_mcse']:.4f} | {z} | "
                f"{res.counted[it.name]:g} |"
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
                for label, wall, cpu in ratios(by_name)
            ),
            "",
        ]
        zs = [abs(acceptance_z(it, by_name["blackjax"])) for it in res.items
              if it.name != "blackjax"]  # fmt: skip
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
    log(f"Barker benchmark: problems {names}, {chains} chains, {runs} timed runs")
    log("  " + "; ".join(f"{k}={v}" for k, v in info.items()))
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", numba.core.errors.NumbaExperimentalFeatureWarning)
        warnings.simplefilter("ignore", numba.core.errors.NumbaWarning)
        for name in names:
            problem = PROBLEMS[name]
            draws = args.draws or (20 if args.tiny else problem.draws // (10 if args.quick else 1))
            target = problem.make_target()
            starts = problem.starts(target, chains)
            log(f"{name}: {problem.description}; σ={problem.step_size}, "
                f"{chains} chains x {draws} draws")  # fmt: skip
            outputs: dict[str, dict[int, np.ndarray]] = {}
            items = build(problem, target, starts, draws, outputs)
            time_interleaved(items, runs, log)
            ess = {it.name: [bulk_ess(outputs[it.name][r]) for r in range(1, runs + 1)]
                   for it in items}  # fmt: skip
            counted = count_gradients(problem, target, starts[0])
            log(f"  counted gradient evaluations per draw: {counted}")
            res = ProblemResult(problem, chains, draws, items, counted, ess)
            results.append(res)
            for it in items:
                eff = res.efficiency(it)
                log(
                    f"  {it.name:<9} acceptance {it.summary['acceptance_rate']:.3f}, "
                    f"min ESS {eff['min_ess']:.0f}, min ESS/s {eff['min_ess_per_s']:.0f}"
                )
            for label, wall, cpu in ratios({it.name: it for it in items}):
                log(f"  {label:<18} {wall:7.3f}  (CPU {cpu:6.3f})")
    info["load average (1, 5, 15 min) at end"] = loadavg()

    args.out.mkdir(parents=True, exist_ok=True)
    stem = "barker_blackjax" + (f"_{tag}" if tag else "")
    write_csv(args.out / f"{stem}.csv", results)
    write_md(args.out / f"{stem}.md", config, info, results)
    log(f"wrote {args.out / (stem + '.csv')} and {args.out / (stem + '.md')}")


if __name__ == "__main__":
    main()
