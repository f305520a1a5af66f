"""NUTS: langevin (Numba, JAX) against BlackJAX NUTS, ESS per second and per gradient.

Run from the repository root::

    python -m benchmarks.nuts_blackjax            # full: 4 chains x (1000 + 2000), 3 runs
    python -m benchmarks.nuts_blackjax --quick    # 4 chains x (500 + 1000), 2 runs
    python -m benchmarks.nuts_blackjax --tiny     # Gaussian only, 2 chains x (100 + 100), 1 run

Problems:

* ``gaussian``: a 20-D correlated Gaussian, eigenvalues of Σ from 1 to 0.01 (condition
  number 100) in a random rotation, so a diagonal mass matrix cannot undo it; exact moments.
* ``gp_regr``: posteriordb ``gp_pois_regr-gp_regr`` (3-D), the target of
  :mod:`benchmarks.ess_table`, with its reference moments.

Samplers, every one with 4 chains (the same starts: the target's initial position plus
U(−0.1, 0.1)), the same warm-up length, float64:

* ``langevin NUTS numba`` and ``langevin NUTS jax``: ``langevin.NUTS(0.1)`` (leapfrog, max
  depth 10) through ``langevin.sample``: Stan's windowed warm-up (dual averaging toward 0.8,
  diagonal mass per chain);
* ``BlackJAX NUTS``: ``blackjax.window_adaptation(blackjax.nuts, target_acceptance_rate=0.8)``
  (diagonal mass), ``vmap`` over chains, jitted ahead of time (the runner of
  :mod:`benchmarks.ess_table`).

Each sampler runs ``runs`` times (same seeds: the same draws; only the clock differs) and the
median of the times is reported, compilation excluded (langevin: a short compiling call
first, then the sampling phase = ``sample(warm-up + draws)`` − ``sample(warm-up + 1)``;
BlackJAX: ahead-of-time compiled warm-up and sampling timed separately). ESS is ArviZ's
bulk ESS, the minimum over coordinates; gradients are the recorded integrator steps
(langevin's ``n_grad``, BlackJAX's ``num_integration_steps``). Accuracy: the largest |z| of
the means and sds against the reference (see :mod:`benchmarks.ess_table`).

Writes ``benchmarks/results/nuts_blackjax.md`` and ``.csv`` (``--quick``/``--tiny``:
``nuts_blackjax_quick.*``/``nuts_blackjax_tiny.*``).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import warnings
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np

import langevin
from benchmarks._common import load_at_end, load_warning, log, machine_at_start
from benchmarks.ess_table import metrics, reference_sd_mcse, run_langevin, run_nuts
from langevin.driver import DivergenceWarning, DivergentTransitionWarning

INIT_SEED = 2024
RESULTS = Path(__file__).parent / "results"


def gaussian_problem(dim: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    cov = q @ np.diag(np.geomspace(1.0, 0.01, dim)) @ q.T
    cov = 0.5 * (cov + cov.T)
    mean = rng.standard_normal(dim)
    target = langevin.targets.gaussian(dim, mean=mean, cov=cov)
    reference = SimpleNamespace(mean=mean, sd=np.sqrt(np.diag(cov)), mean_mcse=np.zeros(dim))
    return target, reference, np.zeros(dim)


def gp_regr_problem():
    target = langevin.targets.posteriordb("gp_pois_regr-gp_regr")
    return target, target.reference, reference_sd_mcse(target.reference)


PROBLEMS = {"gaussian": gaussian_problem, "gp_regr": gp_regr_problem}


def main(argv: list[str] | None = None) -> None:
    jax.config.update("jax_enable_x64", True)  # float64 everywhere (the user's choice here)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    tag = "_tiny" if args.tiny else "_quick" if args.quick else ""
    chains = 2 if args.tiny else 4
    warmup, draws = (100, 100) if args.tiny else (500, 1000) if args.quick else (1000, 2000)
    runs = 1 if args.tiny else 2 if args.quick else 3
    info = machine_at_start(f"NUTS vs BlackJAX: {chains} chains x ({warmup} + {draws}), "
                            f"{runs} runs")  # fmt: skip
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergentTransitionWarning)
        warnings.simplefilter("ignore", DivergenceWarning)
        # --tiny (the smoke test) runs the first problem only: every code path of the script
        # once, without a second set of compilations
        problems = list(PROBLEMS)[:1] if args.tiny else list(PROBLEMS)
        for name in problems:
            make = PROBLEMS[name]
            target, reference, ref_sd_mcse = make()
            rng = np.random.default_rng(INIT_SEED)
            starts = target.initial_position + rng.uniform(-0.1, 0.1, (chains, target.dim))
            starts = np.ascontiguousarray(starts, dtype=np.float64)
            jobs = {
                "langevin NUTS numba": lambda: run_langevin(
                    name, "NUTS", langevin.NUTS(0.1), "h0=0.1, Stan warm-up", target, starts,
                    warmup, draws, "numba"),
                "langevin NUTS jax": lambda: run_langevin(
                    name, "NUTS", langevin.NUTS(0.1), "h0=0.1, Stan warm-up", target, starts,
                    warmup, draws, "jax"),
                "BlackJAX NUTS": lambda: run_nuts(name, target, starts, warmup, draws),
            }  # fmt: skip
            results = {k: [] for k in jobs}
            for r in range(runs):  # interleaved: drifts of a shared machine hit all alike
                for sampler, job in jobs.items():
                    results[sampler].append(job())
                    log(f"  {name} {sampler} run {r + 1}: sampling "
                        f"{results[sampler][-1].seconds_sampling:.3f} s")  # fmt: skip
            for sampler, rs in results.items():
                m = metrics(rs[0], reference, ref_sd_mcse)
                samp = statistics.median(x.seconds_sampling for x in rs)
                warm = statistics.median(x.seconds_warmup for x in rs)
                comp = statistics.median(x.seconds_compile for x in rs)
                row = {
                    "problem": name, "sampler": sampler, "chains": chains, "warmup": warmup,
                    "draws": draws, "ess_bulk_min": m["ess_bulk_min"],
                    "grads_per_draw": m["grads_per_draw"],
                    "ess_min_per_1k_grads": m["ess_min_per_1k_grads"],
                    "seconds_sampling": samp, "seconds_warmup": warm, "seconds_compile": comp,
                    "ess_min_per_s": m["ess_bulk_min"] / samp,
                    "ess_min_per_s_incl_warmup": m["ess_bulk_min"] / (samp + warm),
                    "acceptance": rs[0].acceptance, "divergences": rs[0].divergences,
                    "max_abs_z_mean": m["max_abs_z_mean"], "max_abs_z_sd": m["max_abs_z_sd"],
                    "tuning": rs[0].tuning,
                    "sampling_runs_s": " ".join(f"{x.seconds_sampling:.3f}" for x in rs),
                }  # fmt: skip
                rows.append(row)
                log(f"  {name:<9} {sampler:<20} ESS min {row['ess_bulk_min']:7.0f} "
                    f"/1k grads {row['ess_min_per_1k_grads']:6.1f} "
                    f"/s {row['ess_min_per_s']:8.0f}")  # fmt: skip
    load_at_end(info)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / f"nuts_blackjax{tag}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [
        "# NUTS: langevin (Numba, JAX) against BlackJAX NUTS",
        "",
        f"`python -m benchmarks.nuts_blackjax{' --' + tag[1:] if tag else ''}`: {chains} chains "
        f"× ({warmup} warm-up + {draws} draws), median of {runs} runs (times; the draws are "
        "the same in every run). Compilation excluded. See the module docstring for the method.",
        "",
        *load_warning(info),
        "| problem | sampler | ESS_min | grads/draw | ESS_min / 1k grads | sampling s "
        "| ESS_min / s | ESS_min / s incl. warm-up | warm-up s | first-call s | accept | div "
        "| max abs z mean | max abs z sd |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['problem']} | {r['sampler']} | {r['ess_bulk_min']:.0f} | "
            f"{r['grads_per_draw']:.1f} | {r['ess_min_per_1k_grads']:.1f} | "
            f"{r['seconds_sampling']:.3f} | {r['ess_min_per_s']:.0f} | "
            f"{r['ess_min_per_s_incl_warmup']:.0f} | {r['seconds_warmup']:.3f} | "
            f"{r['seconds_compile']:.2f} | {r['acceptance']:.3f} | {r['divergences']} | "
            f"{r['max_abs_z_mean']:.2f} | {r['max_abs_z_sd']:.2f} |"
        )
    lines += ["", "Ratios (langevin / BlackJAX) of ESS_min per second of sampling:", ""]
    for name in problems:
        by = {r["sampler"]: r for r in rows if r["problem"] == name}
        bj = by["BlackJAX NUTS"]["ess_min_per_s"]
        for s in ("langevin NUTS numba", "langevin NUTS jax"):
            lines.append(f"* {name}, {s}: {by[s]['ess_min_per_s'] / bj:.2f}×")
    lines += ["", "## Machine", ""] + [f"* {k}: {v}" for k, v in info.items()]
    (args.out / f"nuts_blackjax{tag}.md").write_text("\n".join(lines) + "\n")
    log(f"wrote {args.out / f'nuts_blackjax{tag}.md'}")


if __name__ == "__main__":
    main()
