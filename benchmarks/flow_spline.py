"""Spline flows and in-warm-up NeuTra refits on Neal's funnel (d = 10).

Usage::

    python -m benchmarks.flow_spline            # the full run (many minutes on 2 cores)
    python -m benchmarks.flow_spline --quick    # a short run (numbers noisy)

Three measurements (sampling on Numba, float64, 4 chains; training on JAX, CPU):

1. **Cost of one gradient** of the flow-transformed funnel ``log π(f(z)) + log|det J_f(z)|``
   on Numba, RealNVP against a rational-quadratic spline flow of the same blocks and
   conditioner widths (K = 8 bins): paired, interleaved rounds, medians; wall and CPU time.
2. **NeuTra-HMC** with each flow fitted by reverse KL at the same number of optimiser steps:
   the final negative ELBO, training wall/CPU seconds, then HMC in the latent space: bulk ESS
   of ``v`` per 1000 gradient evaluations and the check var(v) = 9 (z against its MCSE).
3. **Refit inside one warm-up** (``flow_transformed(..., refits=2)``) against the same
   fitted RealNVP held fixed: the same HMC run, ESS of ``v`` and var(v).

Results go to ``benchmarks/results/flow_spline.md`` (``--quick``: ``flow_spline_quick.md``).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DIM = 10


def _ess(values: np.ndarray) -> float:
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(az.ess(np.ascontiguousarray(values), method="bulk"))


def _var_check(v: np.ndarray) -> tuple[float, float, float]:
    import arviz as az

    sq = v**2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ess = float(az.ess(np.asarray(sq, float), method="mean"))
    m, se = float(np.mean(sq)), float(np.std(sq, ddof=1) / np.sqrt(ess))
    return m, se, (m - 9.0) / se


def gradient_cost(flows: dict, rounds: int, calls: int) -> dict:
    import langevin
    from langevin.backends import numba_backend
    from langevin.flows import flow_transformed

    target = langevin.targets.neals_funnel(DIM)
    fns = {}
    for name, flow in flows.items():
        latent = flow_transformed(target, flow)
        form = numba_backend.bind_target(latent, DIM)
        vg = latent.numba_value_and_grad
        z = np.full(DIM, 0.3)
        vg(z, form.data)  # compile
        fns[name] = (vg, form.data)
    z = np.random.default_rng(0).standard_normal((calls, DIM)) * 0.8
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(rounds):  # interleaved: each round times every flow once
        for name, (vg, data) in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(calls):
                vg(z[i], data)
            wall[name].append((time.perf_counter() - t0) / calls * 1e6)
            cpu[name].append((time.process_time() - c0) / calls * 1e6)
    return {k: (float(np.median(wall[k])), float(np.median(cpu[k]))) for k in fns}


def neutra_run(flow, fit_steps, warmup, draws, seed, refits=0):
    import langevin
    from langevin.flows import fit_reverse_kl, flow_transformed

    target = langevin.targets.neals_funnel(DIM)
    t0, c0 = time.perf_counter(), time.process_time()
    loss = float("nan")
    if fit_steps:
        flow, hist = fit_reverse_kl(target, flow, steps=fit_steps, batch_size=128,
                                    learning_rate=3e-3, seed=seed, progress=False)  # fmt: skip
        loss = float(np.mean(hist[-50:]))
    train_wall, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    latent = flow_transformed(target, flow, refits=refits, refit_steps=300,
                              refit_learning_rate=1e-3, refit_seed=seed)  # fmt: skip
    kernel = langevin.HMC(0.5, n_leapfrog=8)
    t0 = time.perf_counter()
    trace = langevin.sample(latent, kernel, chains=4, warmup=warmup, draws=draws, seed=seed,
                            progress=False, target_acceptance=0.9)  # fmt: skip
    sample_wall = time.perf_counter() - t0
    x = trace.constrain(trace.draws)
    v = np.asarray(x["v"]).reshape(4, -1)
    n_grad = float(np.sum(trace.sample_stats["n_grad"])) if "n_grad" in trace.sample_stats \
        else 4 * draws * 8.0  # fmt: skip
    m, se, z = _var_check(v)
    return {"loss": loss, "train_wall": train_wall, "train_cpu": train_cpu,
            "sample_wall": sample_wall, "ess_v": _ess(v), "ess_per_1000_grad": 1000 * _ess(v)
            / n_grad, "var_v": m, "var_se": se, "z": z, "flow": flow}  # fmt: skip


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    from langevin.flows import realnvp_init, spline_flow_init

    quick = args.quick
    blocks, hidden = (4, (16, 16)) if quick else (6, (32, 32))
    fit_steps = 300 if quick else 1500
    warmup, draws = (300, 500) if quick else (1000, 2000)
    flows = {
        "RealNVP": realnvp_init(DIM, blocks, hidden, seed=0),
        "spline (K=8)": spline_flow_init(DIM, blocks, hidden, bins=8, bound=5.0, seed=0),
    }
    lines = [f"# Spline flows and in-warm-up refits, Neal's funnel d = {DIM}"
             + (" (--quick)" if quick else ""), ""]  # fmt: skip
    lines += [f"Machine: {platform.machine()}, {os.cpu_count()}-core CPU, no GPU, shared with "
              "other jobs (load average "
              f"{os.getloadavg()[0]:.1f}): wall times are inflated; CPU seconds beside them.",
              f"Flows: {blocks} blocks, conditioners {hidden}; reverse KL {fit_steps} steps "
              f"(batch 128); HMC(0.5, 8 leapfrog), target acceptance 0.9, 4 chains, "
              f"{warmup} warm-up + {draws} draws.", ""]  # fmt: skip
    cost = gradient_cost(flows, rounds=5 if quick else 9, calls=500 if quick else 2000)
    lines += [
        "## 1. One gradient of the flow-transformed funnel (Numba)",
        "",
        "| flow | µs per call, wall (median) | µs per call, CPU (median) |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {w:.1f} | {c:.1f} |" for k, (w, c) in cost.items()]
    lines += ["", "## 2. NeuTra-HMC, each flow fitted by reverse KL", "",
              "| flow | final −ELBO | train wall s | train CPU s | ESS(v) | ESS(v)/1000 grad "
              "| var(v) (exact 9) | z |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    results = {}
    for name, flow in flows.items():
        r = neutra_run(flow, fit_steps, warmup, draws, seed=1)
        results[name] = r
        lines.append(f"| {name} | {r['loss']:.3f} | {r['train_wall']:.1f} | "
                     f"{r['train_cpu']:.1f} | {r['ess_v']:.0f} | {r['ess_per_1000_grad']:.2f} "
                     f"| {r['var_v']:.2f} ± {r['var_se']:.2f} | {r['z']:.1f} |")  # fmt: skip
        print(lines[-1], flush=True)
    lines += [
        "",
        "## 3. Refit inside one warm-up (the fitted RealNVP, refits=2 vs fixed)",
        "",
        "| run | ESS(v) | ESS(v)/1000 grad | var(v) (exact 9) | z |",
        "|---|---|---|---|---|",
    ]
    fitted = results["RealNVP"]["flow"]
    for label, refits in (("fixed flow", 0), ("refits=2 in warm-up", 2)):
        r = neutra_run(fitted, 0, warmup, draws, seed=2, refits=refits)
        lines.append(f"| {label} | {r['ess_v']:.0f} | {r['ess_per_1000_grad']:.2f} | "
                     f"{r['var_v']:.2f} ± {r['var_se']:.2f} | {r['z']:.1f} |")  # fmt: skip
        print(lines[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("flow_spline_quick.md" if quick else "flow_spline.md")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
