"""MALA on synthetic logistic regression: langevin (Numba, JAX) against BlackJAX and bare gradients.

Run from the repository root::

    python -m benchmarks.mala_logistic            # full: 4 chains x 5000 steps, 5 timed runs
    python -m benchmarks.mala_logistic --quick    # smoke test: 500 steps, 2 timed runs

The problem: ``langevin.targets.synthetic_logistic_regression(n=1000, dim=50)``, 4 chains of
MALA with one fixed step size (``STEP_SIZE`` in :mod:`benchmarks._latency_probe`, acceptance
about 0.6), no warm-up, float64 everywhere, every chain started from the same points in every
implementation. What is timed (each: one untimed warm-up call, which includes compilation and
is reported as "first call", then the median of the timed runs; runs of the implementations
are interleaved so that slow drifts of a noisy machine hit them alike):

1. ``numba``: ``langevin.sample(..., backend="numba")`` (chains on threads, one per core);
2. ``numba 1 thread``: ``numba_backend.prepare/init/run(..., threads=1)``: the 4 chains one
   after the other on one thread;
3. ``jax``: ``langevin.sample(..., backend="jax")``;
4. ``blackjax``: ``blackjax.mala`` vmapped over the chains inside a ``lax.scan`` over the
   steps, jitted, keys split per step the way the BlackJAX documentation does;
5. ``bare numba vg``: a compiled loop doing nothing but the ``chains * steps``
   value-and-gradient calls of the target's Numba form that MALA makes, on one thread (the
   floor for MALA on one thread), and ``bare jax vg``: the jitted, vmapped
   ``jax.value_and_grad`` in a ``lax.scan`` over the same points.

The bare loops evaluate the target at the *proposals of an actual MALA run* (recorded once).
An earlier version moved one point by tiny gradient steps; evaluating nearly the same point
every call let the branch predictor and libm's fast paths flatter it: 42.9 µs per call
against 46.6 µs at the states a chain visits and 48.6 µs at its proposals (measured on this
machine), which made langevin's loop look 19% slower than the gradients it needs instead of
5%.

Then the first-call latency in fresh processes (:mod:`benchmarks._latency_probe`): Numba with
an empty ``NUMBA_CACHE_DIR`` ("first time") and again with the same directory ("later
process"); JAX twice (no persistent compilation cache by default).

Also timed, to say where the time goes: the parts of a Numba run (``prepare``, ``init``,
drawing the noise in NumPy, the compiled loop on 1 and on all threads, given the noise), and
the JAX noise generation alone (``fold_in`` + normal + uniform per chain and step, as the JAX
backend draws it).

Writes ``benchmarks/results/mala_logistic.csv`` (every run) and ``mala_logistic.md`` (medians,
ratios, goals, machine); ``--quick`` writes ``mala_logistic_quick.*`` instead.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import blackjax
import jax
import jax.numpy as jnp
import numba
import numpy as np

import langevin
from benchmarks._common import (
    RESULTS,
    Timed,
    blackjax_chains,
    blackjax_timed,
    langevin_timed,
    log,
    logistic_target,
    machine_at_start,
    numba_one_thread_timed,
    ratios,
    report_head,
    start_points,
    time_interleaved,
    timing_rows,
)
from benchmarks._common import fmt_goal as _fmt_goal
from benchmarks._common import loadavg as _loadavg
from benchmarks._latency_probe import (
    CHAINS,
    DIM,
    N_OBS,
    PROBE_DRAWS,
    STEP_SIZE,
)
from langevin.backends import numba_backend

GOALS = {  # ratio name -> (numerator, denominator, goal: ratio <= goal)
    "numba / blackjax": ("numba", "blackjax", 0.5),
    "jax / blackjax": ("jax", "blackjax", 0.9),
    "numba 1 thread / bare numba vg": ("numba 1 thread", "bare numba vg", 1.05),
    "jax / bare jax vg": ("jax", "bare jax vg", None),
    "numba / bare numba vg": ("numba", "bare numba vg", None),
    "blackjax / bare jax vg": ("blackjax", "bare jax vg", None),
}
LATENCY_GOALS = {"numba first time": 2.0, "numba later process": 0.5}


# -- the implementations ----------------------------------------------------------------------
@numba.njit(cache=True)
def _bare_numba_vg(vg, data, points):
    """``vg(x, data)`` at every point of ``points`` (chains, steps, dim), on this thread.

    ``vg`` is a Numba dispatcher, so this loop is specialised on it (and, since a dispatcher's
    type is unique to the object, Numba's on-disk cache never hits: it compiles every process).
    """
    total = 0.0
    for c in range(points.shape[0]):
        for t in range(points.shape[1]):
            value, grad = vg(points[c, t], data)
            total += value + grad[0]
    return total


def mala_proposals(target, starts: np.ndarray, steps: int, seed: int = 5) -> np.ndarray:
    """The ``(chains, steps, dim)`` points a MALA run evaluates the target at: its proposals
    ``y_t = x_{t-1} + h∇log π(x_{t-1}) + √(2h) ξ_t``, from one recorded run."""
    kernel = langevin.MALA(STEP_SIZE)
    prepared = numba_backend.prepare(kernel, target, DIM, np.float64)
    states = numba_backend.init(prepared, starts)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(starts))]
    noise = numba_backend.draw_noise(kernel, DIM, steps, rngs)
    out = numba_backend.run(prepared, states, steps, np.full(len(starts), STEP_SIZE),
                            noise=noise)  # fmt: skip
    vg, data = target.numba_value_and_grad, target.numba_data
    proposals = np.empty((len(starts), steps, DIM))
    for c in range(len(starts)):
        previous = np.vstack([starts[c][None, :], out.position[c, :-1]])
        grads = np.array([vg(np.ascontiguousarray(x), data)[1] for x in previous])
        proposals[c] = previous + STEP_SIZE * grads + np.sqrt(2 * STEP_SIZE) * noise.normal[c]
    return proposals


def make_bare_jax_vg(logdensity: Callable, steps: int) -> Callable:
    """Jitted ``scan`` over steps of vmapped value-and-grad calls at given points
    ``(steps, chains, dim)``."""
    vg = jax.vmap(jax.value_and_grad(logdensity))

    @jax.jit
    def run(points):
        def body(total, x):
            value, grad = vg(x)
            return total + jnp.sum(value) + jnp.sum(grad[:, 0]), None

        total, _ = jax.lax.scan(body, jnp.zeros((), points.dtype), points)
        return total

    return run


def make_blackjax_mala(logdensity: Callable, step_size: float, steps: int, chains: int):
    """BlackJAX MALA: ``vmap`` over chains inside ``lax.scan`` over steps, jitted."""
    algorithm = blackjax.mala(logdensity, step_size)
    return blackjax_chains(
        algorithm, steps, chains, lambda states, info: (states.position, states.logdensity, info)
    )


def make_jax_noise_only(steps: int, chains: int, dim: int) -> Callable:
    """The JAX backend's per-step noise (fold_in, split, normal(dim), uniform) and nothing else."""

    @jax.jit
    def run(keys):
        def body(t, acc):
            def draw(key):
                k1, k2 = jax.random.split(jax.random.fold_in(key, t))
                return jnp.sum(jax.random.normal(k1, (dim,))) + jax.random.uniform(k2, ())

            return acc + jax.vmap(draw)(keys)

        return jax.lax.fori_loop(0, steps, body, jnp.zeros(chains))

    return run


# -- timing -----------------------------------------------------------------------------------
def _acceptance(rate, accepted) -> dict:
    return {
        "acceptance_rate": float(np.mean(np.asarray(rate))),
        "accepted_fraction": float(np.mean(np.asarray(accepted))),
    }


# -- latency ----------------------------------------------------------------------------------
def run_probe(backend: str, env_extra: dict, log) -> dict:
    env = dict(os.environ, **env_extra)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks._latency_probe", backend],
        capture_output=True, text=True, env=env, check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        log(proc.stderr)
        raise RuntimeError(f"latency probe for {backend} failed (exit {proc.returncode})")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = wall
    return out


def measure_latency(log) -> dict[str, dict]:
    results = {}
    with tempfile.TemporaryDirectory(prefix="langevin-numba-cache-") as cache_dir:
        env = {"NUMBA_CACHE_DIR": cache_dir}
        for label in ("numba first time", "numba later process"):
            results[label] = run_probe("numba", env, log)
            log(f"  {label}: {results[label]}")
    for label in ("jax process 1", "jax process 2"):
        results[label] = run_probe("jax", {}, log)
        log(f"  {label}: {results[label]}")
    return results


# -- the benchmark ----------------------------------------------------------------------------
def build(target, starts: np.ndarray, steps: int) -> list[Timed]:
    kernel = langevin.MALA(STEP_SIZE)
    step_sizes = np.full(CHAINS, STEP_SIZE)

    def sample(backend):
        return langevin_timed(target, kernel, starts, steps, backend)

    def trace_summary(trace):
        s = trace.sample_stats
        return _acceptance(s["acceptance_rate"], s["is_accepted"])

    numba_one_thread = numba_one_thread_timed(kernel, target, starts, steps, step_sizes)

    def chunk_summary(result):
        return _acceptance(result.info["acceptance_rate"], result.info["is_accepted"])

    blackjax_run = make_blackjax_mala(target.jax_logdensity, STEP_SIZE, steps, CHAINS)
    blackjax_fn = blackjax_timed(blackjax_run, starts)

    def blackjax_summary(out):
        _, _, info = out
        return _acceptance(info.acceptance_rate, info.is_accepted)

    vg, data = target.numba_value_and_grad, target.numba_data
    proposals = mala_proposals(target, starts, steps)
    proposals_jax = jnp.asarray(proposals.transpose(1, 0, 2))

    def bare_numba(r):
        return _bare_numba_vg(vg, data, proposals)

    bare_jax_run = make_bare_jax_vg(target.jax_logdensity, steps)

    def bare_jax(r):
        return jax.block_until_ready(bare_jax_run(proposals_jax))

    return [
        Timed("numba", sample("numba"), trace_summary),
        Timed("numba 1 thread", numba_one_thread, chunk_summary),
        Timed("jax", sample("jax"), trace_summary),
        Timed("blackjax", blackjax_fn, blackjax_summary),
        Timed("bare numba vg", bare_numba),
        Timed("bare jax vg", bare_jax),
    ]


def breakdown(target, starts: np.ndarray, steps: int, runs: int) -> list[Timed]:
    """The parts of a Numba run, and the JAX backend's noise generation alone."""
    kernel = langevin.MALA(STEP_SIZE)
    step_sizes = np.full(CHAINS, STEP_SIZE)
    prepared = numba_backend.prepare(kernel, target, DIM, np.float64)
    states = numba_backend.init(prepared, starts)

    def rngs(r):
        return [np.random.default_rng(s) for s in np.random.SeedSequence(4000 + r).spawn(CHAINS)]

    noise = numba_backend.draw_noise(kernel, DIM, steps, rngs(0))
    noise_only = make_jax_noise_only(steps, CHAINS, DIM)
    keys = jax.random.split(jax.random.key(5), CHAINS)
    return [
        Timed("numba prepare", lambda r: numba_backend.prepare(kernel, target, DIM, np.float64)),
        Timed("numba init", lambda r: numba_backend.init(prepared, starts)),
        Timed("numba draw noise", lambda r: numba_backend.draw_noise(kernel, DIM, steps, rngs(r))),
        Timed("numba loop 1 thread", lambda r: numba_backend.run(
            prepared, states, steps, step_sizes, noise=noise, threads=1)),
        Timed("numba loop threads", lambda r: numba_backend.run(
            prepared, states, steps, step_sizes, noise=noise)),
        Timed("jax noise only", lambda r: jax.block_until_ready(noise_only(keys))),
    ]  # fmt: skip


def _to_first_draws(rec: dict) -> float:
    keys = ("import_langevin_s", "import_jax_s", "build_target_s", "first_sample_s")
    return sum(rec.get(k, 0.0) for k in keys)


def write_csv(path: Path, config: dict, main_items, parts, latency) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["section", "name", "run", "seconds", "cpu_seconds", "steps", "chains"])
        for section, items in (("throughput", main_items), ("breakdown", parts)):
            for it in items:
                base = [section, it.name]
                tail = [config["steps"], CHAINS]
                for run, t, c in timing_rows(it):
                    w.writerow([*base, run, f"{t:.6f}", f"{c:.6f}", *tail])
        for label, rec in latency.items():
            for key, value in rec.items():
                if key.endswith("_s") and not key.endswith("_cpu_s"):
                    cpu = rec.get(key[:-2] + "_cpu_s")
                    cpu_txt = "" if cpu is None else f"{cpu:.6f}"
                    w.writerow(
                        ["latency", label, key, f"{value:.6f}", cpu_txt, PROBE_DRAWS, CHAINS]
                    )


def write_md(path: Path, config: dict, info: dict, main_items, parts, latency) -> None:
    by_name = {it.name: it for it in main_items}
    lines = report_head(
        "MALA on synthetic logistic regression: langevin vs BlackJAX",
        f"python -m benchmarks.mala_logistic{' --quick' if config['quick'] else ''}",
        info,
        f"Problem: `synthetic_logistic_regression(n={N_OBS}, dim={DIM})`, MALA step size "
        f"{STEP_SIZE}, {CHAINS} chains x {config['steps']} steps, no warm-up, float64, the same "
        "starting points everywhere. Times: median of "
        f"{config['runs']} runs after one warm-up call (the warm-up call, with compilation, is "
        '"first call"). Wall-clock times are what the goals are about; CPU is the CPU time '
        "of the whole process (all threads) during the run, a guide to the work done when "
        "other processes compete for the cores (see the load averages below).",
    )
    lines += [
        "## Throughput",
        "",
        "| implementation | median (s) | min (s) | max (s) | CPU median (s) | first call (s) "
        "| µs per chain-step | mean acceptance | accepted fraction |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    n_steps = config["steps"] * CHAINS
    for it in main_items:
        acc = it.summary.get("acceptance_rate")
        frac = it.summary.get("accepted_fraction")
        lines.append(
            f"| {it.name} | {it.median:.3f} | {min(it.runs):.3f} | {max(it.runs):.3f} | "
            f"{it.cpu_median:.3f} | {it.first:.3f} | {1e6 * it.median / n_steps:.1f} | "
            + (f"{acc:.3f} | {frac:.3f} |" if acc is not None else "— | — |")
        )
    lines += [
        "",
        "## Ratios (of medians)",
        "",
        "| ratio | wall | CPU | goal (wall) |",
        "|---|---|---|---|",
        *(
            f"| {label} | {wall:.3f} | {cpu:.3f} | {_fmt_goal(wall, goal)} |"
            for label, wall, cpu, goal in ratios(by_name, GOALS)
        ),
    ]
    if latency:
        lines += [
            "",
            "## First-call latency (fresh processes)",
            "",
            f"`langevin.sample(..., chains={CHAINS}, warmup=0, draws={PROBE_DRAWS})` in a new "
            "process (`python -m benchmarks._latency_probe BACKEND`); CPU = that process's CPU "
            "time for the same step.",
            "",
            "| process | import langevin (s) | import jax (s) | build target (s) "
            "| first sample (s) | first sample CPU (s) | second sample (s) "
            "| import to first draws (s) | process wall (s) | goal |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for label, rec in latency.items():
            goal = LATENCY_GOALS.get(label)
            ij = rec.get("import_jax_s")
            lines.append(
                f"| {label} | {rec['import_langevin_s']:.3f} | "
                + (f"{ij:.3f}" if ij is not None else "—")
                + f" | {rec['build_target_s']:.3f} | {rec['first_sample_s']:.3f} | "
                f"{rec['first_sample_cpu_s']:.3f} | {rec['second_sample_s']:.3f} | "
                f"{_to_first_draws(rec):.3f} | {rec['process_wall_s']:.3f} | "
                + (f"first sample {_fmt_goal(rec['first_sample_s'], goal)}" if goal else "—")
                + " |"
            )
        later = latency.get("numba later process", {})
        lines += [
            "",
            "Numba: the first probe runs with an empty `NUMBA_CACHE_DIR`, the second reuses it "
            f"(chain-loop cache hits/misses in the later process: {later.get('loop_cache_hits')}"
            f"/{later.get('loop_cache_misses')}). JAX has no persistent compilation cache by "
            'default, so both JAX processes compile. "Import to first draws" = import langevin '
            "(+ import jax) + build target + first sample: what a user waits for; work moves "
            "between its parts (e.g. a module that `import langevin` pulls in may import SciPy, "
            "which Numba otherwise imports on its first compile or cache load).",
        ]
    lines += [
        "",
        "## Where the time goes",
        "",
        f"Same problem ({CHAINS} chains x {config['steps']} steps); median of "
        f"{config['runs']} runs. The Numba loop rows are `numba_backend.run` given the noise "
        "(so without drawing it); `jax noise only` is the JAX backend's way of drawing the "
        "noise (`fold_in` per step, normal + uniform per chain) alone, in a jitted loop.",
        "",
        "| part | median (s) | CPU median (s) |",
        "|---|---|---|",
        *(f"| {it.name} | {it.median:.4f} | {it.cpu_median:.4f} |" for it in parts),
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    # float64 for every implementation, switched on by the benchmark (the user here), never
    # by the package
    jax.config.update("jax_enable_x64", True)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 steps, 2 runs (smoke test)")
    parser.add_argument("--steps", type=int, default=None, help="steps per chain")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per implementation")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency probes")
    parser.add_argument("--tag", default=None, help="suffix of the result file names")
    args = parser.parse_args(argv)
    steps = args.steps or (500 if args.quick else 5000)
    runs = args.runs or (2 if args.quick else 5)
    tag = args.tag or ("quick" if args.quick else None)
    config = {"steps": steps, "runs": runs, "quick": args.quick}

    info = machine_at_start(
        f"MALA logistic benchmark: {CHAINS} chains x {steps} steps, {runs} runs, h={STEP_SIZE}"
    )
    target = logistic_target()
    starts, _ = start_points(target, CHAINS)

    log("throughput (first call = warm-up, includes compilation):")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", numba.core.errors.NumbaExperimentalFeatureWarning)
        main_items = build(target, starts, steps)
        time_interleaved(main_items, runs, log)
        log("breakdown:")
        parts = breakdown(target, starts, steps, runs)
        time_interleaved(parts, runs, log)

    info["load average (1, 5, 15 min) after throughput"] = _loadavg()
    latency: dict[str, dict] = {}
    if not args.no_latency:
        log("first-call latency (fresh processes):")
        latency = measure_latency(log)

    # -- report -------------------------------------------------------------------------------
    by_name = {it.name: it for it in main_items}
    log("")
    log(f"{'implementation':<16} {'median s':>9} {'min s':>8} {'CPU s':>8} {'first s':>8} "
        f"{'us/chain-step':>14} {'acceptance':>10}")  # fmt: skip
    for it in main_items:
        acc = it.summary.get("acceptance_rate")
        log(f"{it.name:<16} {it.median:9.3f} {min(it.runs):8.3f} {it.cpu_median:8.3f} "
            f"{it.first:8.3f} {1e6 * it.median / (steps * CHAINS):14.1f} "
            f"{'' if acc is None else f'{acc:10.3f}'}")  # fmt: skip
    log("")
    for label, wall, cpu, goal in ratios(by_name, GOALS):
        log(f"{label:<32} {wall:7.3f}  (CPU {cpu:6.3f})   {_fmt_goal(wall, goal)}")
    log("")
    accs = {k: by_name[k].summary["acceptance_rate"] for k in ("numba", "numba 1 thread",
                                                               "jax", "blackjax")}  # fmt: skip
    log("mean acceptance: " + ", ".join(f"{k} {v:.3f}" for k, v in accs.items()))
    for it in parts:
        log(f"  part {it.name:<22} {it.median:8.4f} s")
    for label, rec in latency.items():
        log(
            f"  latency {label:<20} first sample {rec['first_sample_s']:.3f} s (import "
            f"{rec['import_langevin_s']:.3f} s, target {rec['build_target_s']:.3f} s; "
            f"import to first draws {_to_first_draws(rec):.3f} s)"
        )

    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "mala_logistic" + (f"_{tag}" if tag else "")
    write_csv(RESULTS / f"{stem}.csv", config, main_items, parts, latency)
    write_md(RESULTS / f"{stem}.md", config, info, main_items, parts, latency)
    log(f"wrote {RESULTS / (stem + '.csv')} and {RESULTS / (stem + '.md')}")


if __name__ == "__main__":
    main()
