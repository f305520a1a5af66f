"""NUTS with a dense against a diagonal mass matrix: ESS per gradient and per second.

Run from the repository root::

    python -m benchmarks.nuts_dense            # 4 chains x (1000 + 2000), 2 runs
    python -m benchmarks.nuts_dense --quick    # 4 chains x (1000 + 1000), 1 run
    python -m benchmarks.nuts_dense --tiny     # Gaussian only, 2 chains x (100 + 100), 1 run

Problems:

* ``correlated``: a 5-D Gaussian with correlation 0.99 between every pair of coordinates
  and standard deviations 1 … 3 (the target of ``tests/test_nuts_dense.py``): one direction
  is 70 times wider than the narrowest, and no diagonal metric can undo the rotation; exact
  moments.
* ``gp_regr``: posteriordb ``gp_pois_regr-gp_regr`` (3-D), with its reference moments.
* ``earnings``: posteriordb ``earnings-logearn_interaction_z`` (4-D linear regression with
  an interaction: correlated coefficients), with its reference moments.

Samplers, every one with 4 chains (the target's initial position plus U(−0.1, 0.1)), the
same warm-up, float64: ``langevin.NUTS(0.1)`` (diagonal metric, Stan's windowed variance
estimate) and ``langevin.NUTS(0.1, metric="dense")`` (Stan's windowed covariance estimate),
each on Numba and on JAX, through ``langevin.sample``.

Times: compilation excluded (a short compiling call first). The sampling phase of these
small problems takes about as long as the jitter of a shared machine, so the difference of
two runs (``ess_table``'s method) is unreliable (it came out negative); instead the cost of
a gradient evaluation in sampling (the gradient, plus the metric's products: one
matrix-vector product per integrator step for the dense metric) is measured on its own:
``sample`` with the adapted step size and chain 0's adapted metric fixed, no warm-up, for
``draws`` and for 1 draw; the difference of their times (wall and CPU, per-call overheads
cancel) over the difference of their recorded gradients is the cost per gradient, and the
sampling seconds are that times the gradients the adapted run spent sampling. Median over
``runs``. ESS is ArviZ's
bulk ESS, the minimum over coordinates; gradients are the recorded ``n_grad``. Accuracy: the
largest |z| of the means and sds against the reference
(:func:`benchmarks.ess_table.metrics`).

**Cost per gradient, same trajectories.** A second table isolates what the dense metric
costs per integrator step: NUTS with step 0.3, ``max_depth=4`` on N(0, I_d), d = 5 and 50,
the identity as a diagonal and as a dense metric (the same trajectories: the tests check
it to 1e-12), Numba, 2 chains, CPU µs per gradient of ``sample(draws=4001) −
sample(draws=1)``, median of 3.

Writes ``benchmarks/results/nuts_dense.md`` (``--quick`` too: the file says which run it was;
``--tiny``: ``nuts_dense_tiny.md``).
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np

import langevin
from benchmarks._common import clock, load_at_end, load_warning, log, machine_at_start
from benchmarks.ess_table import SEED, Run, metrics, reference_sd_mcse
from langevin.driver import DivergenceWarning, DivergentTransitionWarning

INIT_SEED = 2024
RESULTS = Path(__file__).parent / "results"


def correlated_problem(dim: int = 5, rho: float = 0.99):
    sd = np.geomspace(1.0, 3.0, dim)
    cov = (rho * np.ones((dim, dim)) + (1.0 - rho) * np.eye(dim)) * np.outer(sd, sd)
    mean = np.linspace(-1.0, 2.0, dim)
    target = langevin.targets.gaussian(dim, mean=mean, cov=cov)
    reference = SimpleNamespace(mean=mean, sd=sd, mean_mcse=np.zeros(dim))
    return target, reference, np.zeros(dim)


def posteriordb_problem(name: str):
    def make():
        target = langevin.targets.posteriordb(name)
        return target, target.reference, reference_sd_mcse(target.reference)

    return make


PROBLEMS = {
    "correlated": correlated_problem,
    "gp_regr": posteriordb_problem("gp_pois_regr-gp_regr"),
    "earnings": posteriordb_problem("earnings-logearn_interaction_z"),
}
METRICS = ("diagonal", "dense")
BACKENDS = ("numba", "jax")


def run_nuts(name: str, metric: str, target, starts: np.ndarray, warmup: int, draws: int,
             backend: str, runs: int) -> Run:  # fmt: skip
    """``langevin.sample`` with NUTS and Stan's warm-up; sampling seconds from the measured
    cost per gradient (module docstring)."""
    chains = starts.shape[0]

    def sample(kernel, w: int, d: int, adapt: bool = True):
        return langevin.sample(target, kernel, chains=chains, warmup=w, draws=d,
                               backend=backend, seed=SEED, initial_position=starts,
                               adapt_mass_matrix=adapt, progress=False)  # fmt: skip

    kernel = langevin.NUTS(0.1, metric=metric)
    compile_s, _, _ = clock(lambda: sample(kernel, min(warmup, 20), 2))
    warm_s, _, trace = clock(lambda: sample(kernel, warmup, draws))
    h = np.asarray(trace.step_size)
    fixed = langevin.NUTS(float(np.median(h)), metric=metric, inverse_mass=trace.inverse_mass[0])
    sample(fixed, 0, 2, adapt=False)  # compiles the fixed-metric runs (JAX: no adaptation)
    wall, cpu = [], []
    for _ in range(runs):
        t1, c1, one = clock(lambda: sample(fixed, 0, 1, adapt=False))
        tn, cn, many = clock(lambda: sample(fixed, 0, draws, adapt=False))
        grads = float(np.sum(many.sample_stats["n_grad"]) - np.sum(one.sample_stats["n_grad"]))
        wall.append((tn - t1) / grads)
        cpu.append((cn - c1) / grads)
    g_s = float(np.sum(trace.sample_stats["n_grad"]))
    g_w = float(np.sum(trace.warmup_stats["n_grad"]))
    per_grad, per_grad_cpu = statistics.median(wall), statistics.median(cpu)
    return Run(name, f"NUTS {metric}", backend, np.asarray(trace.draws, dtype=np.float64), g_w,
               g_s, warm_s, per_grad * g_s, per_grad_cpu * g_w, per_grad_cpu * g_s, compile_s,
               float(np.mean(trace.sample_stats["acceptance_rate"])),
               f"h∈[{h.min():.3g}, {h.max():.3g}]",
               int(np.sum(trace.sample_stats["diverging"])) + len(trace.diverged))  # fmt: skip


def cost_per_gradient(dims: tuple[int, ...] = (5, 50), runs: int = 3,
                      draws: int = 4000) -> list[dict]:  # fmt: skip
    """CPU µs per gradient of diagonal- and dense-metric NUTS on the same trajectories."""
    rows = []
    for d in dims:
        target = langevin.targets.gaussian(d)
        for metric in METRICS:
            kernel = langevin.NUTS(0.3, metric=metric, max_depth=4)

            def sample(n: int, target=target, kernel=kernel):
                return langevin.sample(target, kernel, chains=2, warmup=0, draws=n, seed=1,
                                       adapt_mass_matrix=False, backend="numba",
                                       progress=False)  # fmt: skip

            sample(2)  # compiles
            per = []
            for _ in range(runs):
                _, c1, one = clock(lambda: sample(1))
                _, cn, many = clock(lambda: sample(draws + 1))
                grads = float(many.sample_stats["n_grad"].sum() - one.sample_stats["n_grad"].sum())
                per.append(1e6 * (cn - c1) / grads)
            rows.append({"dim": d, "metric": metric, "us_per_grad": statistics.median(per)})
            log(f"  cost d={d} {metric}: {rows[-1]['us_per_grad']:.2f} CPU µs per gradient")
    return rows


def main(argv: list[str] | None = None) -> None:
    jax.config.update("jax_enable_x64", True)  # float64 everywhere (the user's choice here)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    tag = "_tiny" if args.tiny else "_quick" if args.quick else ""
    chains = 2 if args.tiny else 4
    warmup, draws = (100, 100) if args.tiny else (1000, 1000) if args.quick else (1000, 2000)
    runs = 1 if args.tiny or args.quick else 2
    info = machine_at_start(f"NUTS dense vs diagonal metric: {chains} chains x ({warmup} + "
                            f"{draws}), {runs} runs")  # fmt: skip
    rows = []
    problems = list(PROBLEMS)[:1] if args.tiny else list(PROBLEMS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergentTransitionWarning)
        warnings.simplefilter("ignore", DivergenceWarning)
        for name in problems:
            target, reference, ref_sd_mcse = PROBLEMS[name]()
            rng = np.random.default_rng(INIT_SEED)
            starts = target.initial_position + rng.uniform(-0.1, 0.1, (chains, target.dim))
            starts = np.ascontiguousarray(starts, dtype=np.float64)
            for backend in BACKENDS:
                for metric in METRICS:
                    r = run_nuts(name, metric, target, starts, warmup, draws, backend, runs)
                    rs = [r]
                    log(f"  {name} {backend} {metric}: run {r.seconds_warmup:.3f} s, compile "
                        f"{r.seconds_compile:.2f} s, "
                        f"{1e6 * r.seconds_sampling / r.grads_sampling:.2f} µs/grad")  # fmt: skip
                    m = metrics(rs[0], reference, ref_sd_mcse)
                    samp = statistics.median(x.seconds_sampling for x in rs)
                    row = {
                        "problem": name, "backend": backend, "metric": metric,
                        "ess_bulk_min": m["ess_bulk_min"], "grads_per_draw": m["grads_per_draw"],
                        "ess_min_per_1k_grads": m["ess_min_per_1k_grads"],
                        "seconds_sampling": samp, "seconds_run": rs[0].seconds_warmup,
                        "us_per_grad": 1e6 * samp / rs[0].grads_sampling,
                        "seconds_compile": rs[0].seconds_compile,
                        "ess_min_per_cpu_s": m["ess_bulk_min"] / rs[0].cpu_sampling,
                        "ess_min_per_s": m["ess_bulk_min"] / samp,
                        "acceptance": rs[0].acceptance, "divergences": rs[0].divergences,
                        "max_abs_z_mean": m["max_abs_z_mean"], "max_abs_z_sd": m["max_abs_z_sd"],
                        "tuning": rs[0].tuning,
                    }  # fmt: skip
                    rows.append(row)
                    log(f"  {name:<10} {backend:<5} {metric:<8} ESS min {row['ess_bulk_min']:7.0f}"
                        f" /1k grads {row['ess_min_per_1k_grads']:7.1f}"
                        f" /s {row['ess_min_per_s']:8.0f}")  # fmt: skip
    cost = [] if args.tiny else cost_per_gradient()
    load_at_end(info)
    lines = [
        "# NUTS: dense against diagonal mass matrix",
        "",
        f"`python -m benchmarks.nuts_dense{' --' + tag[1:] if tag else ''}`: {chains} chains × "
        f"({warmup} warm-up + {draws} draws), median of {runs} run(s), float64. Compilation "
        "excluded; sampling seconds = the measured cost per gradient × the gradients spent "
        "sampling (module docstring). "
        "Machine: 2-core CPU, no GPU, shared with other jobs (load below). See the module "
        "docstring for the method.",
        "",
        *load_warning(info),
        "| problem | backend | metric | ESS_min | grads/draw | ESS_min / 1k grads | sampling s "
        "| ESS_min / s | ESS_min / CPU s | µs / grad | whole run s | first-call s | accept | div "
        "| max abs z mean | max abs z sd | step sizes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['problem']} | {r['backend']} | {r['metric']} | {r['ess_bulk_min']:.0f} | "
            f"{r['grads_per_draw']:.1f} | {r['ess_min_per_1k_grads']:.1f} | "
            f"{r['seconds_sampling']:.3f} | {r['ess_min_per_s']:.0f} | "
            f"{r['ess_min_per_cpu_s']:.0f} | {r['us_per_grad']:.2f} | {r['seconds_run']:.3f} | "
            f"{r['seconds_compile']:.2f} | {r['acceptance']:.3f} | "
            f"{r['divergences']} | {r['max_abs_z_mean']:.2f} | {r['max_abs_z_sd']:.2f} | "
            f"{r['tuning']} |"
        )
    lines += ["", "Dense / diagonal ratios (ESS_min per 1k gradients; per second of sampling):", ""]
    for name in problems:
        for backend in BACKENDS:
            by = {r["metric"]: r for r in rows if r["problem"] == name and r["backend"] == backend}
            g = by["dense"]["ess_min_per_1k_grads"] / by["diagonal"]["ess_min_per_1k_grads"]
            s = by["dense"]["ess_min_per_s"] / by["diagonal"]["ess_min_per_s"]
            lines.append(f"* {name}, {backend}: {g:.2f}× per gradient, {s:.2f}× per second")
    if cost:
        lines += ["", "Cost per gradient on the same trajectories (Numba, 2 chains, N(0, I_d), "
                  "identity metric as diagonal and as dense; CPU µs per gradient, median of 3):",
                  "", "| d | diagonal | dense | dense / diagonal |",
                  "|---|---|---|---|"]  # fmt: skip
        for d in sorted({r["dim"] for r in cost}):
            by = {r["metric"]: r["us_per_grad"] for r in cost if r["dim"] == d}
            lines.append(f"| {d} | {by['diagonal']:.2f} | {by['dense']:.2f} | "
                         f"{by['dense'] / by['diagonal']:.2f} |")  # fmt: skip
    lines += ["", "## Machine", ""] + [f"* {k}: {v}" for k, v in info.items()]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"nuts_dense{'_tiny' if args.tiny else ''}.md"
    path.write_text("\n".join(lines) + "\n")
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
