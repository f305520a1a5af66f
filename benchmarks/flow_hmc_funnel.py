"""NeuTra-HMC and flow-proposal MCMC against plain HMC (and flowMC, when installed), at equal
gradient evaluations, on Neal's funnel (d = 10) and a 2-D two-mode mixture.

Usage::

    python -m benchmarks.flow_hmc_funnel            # the full run (several minutes)
    python -m benchmarks.flow_hmc_funnel --quick    # a short run (smoke test; numbers noisy)

Every sampler gets the same budget of target gradient evaluations *for sampling* per chain
(``--budget``): plain HMC and NeuTra-HMC ``budget / n_leapfrog`` draws, FlowProposal
``budget / 2`` transitions (a MALA step and a flow proposal, one gradient each), flowMC
``budget / (n_local + n_global)`` loops of ``n_local`` MALA steps and ``n_global`` flow
proposals (its flow proposals evaluate the log-density without gradient; counted as one
evaluation each). Training is reported separately: gradient evaluations (reverse KL: one per
base draw per step) and wall time. Reported per sampler: the bulk ESS of ``v`` (funnel) or of
``x₀`` (mixture) and the minimum over coordinates, ESS per 1000 sampling gradient evaluations,
ESS per second of the whole call (training, warm-up, compilation and sampling), and the
accuracy check against the exact law (funnel: var(v) = 9; mixture: P(x₀ > 0) = 0.7) with its
MCSE. Sampling runs on Numba (float64, 4 chains); training on JAX (CPU).

The results go to ``benchmarks/results/flow_hmc_funnel.md`` (``--quick``:
``flow_hmc_funnel_quick.md``).
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
CHAINS = 4


def _ess(draws: np.ndarray) -> np.ndarray:
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray([float(az.ess(np.ascontiguousarray(draws[..., i]), method="bulk"))
                           for i in range(draws.shape[-1])])  # fmt: skip


def _mean_mcse(values: np.ndarray) -> tuple[float, float]:
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ess = float(az.ess(np.asarray(values, float), method="mean"))
    return float(np.mean(values)), float(np.std(values, ddof=1) / np.sqrt(ess))


def _check(problem: str, x: np.ndarray) -> tuple[str, float, float, float]:
    if problem == "funnel":
        name, values, truth = "var(v) = 9", x[..., 0] ** 2, 9.0
    else:
        name, values, truth = "P(x0 > 0) = 0.7", (x[..., 0] > 0).astype(float), 0.7
    m, se = _mean_mcse(values)
    z = (m - truth) / se if se > 0 else float("inf") * np.sign(m - truth)
    return name, m, se, z


def _targets():
    import langevin

    funnel = langevin.targets.neals_funnel(10)
    mixture = langevin.targets.gaussian_mixture(
        means=np.array([[-4.0, 0.0], [4.0, 0.0]]), sds=np.array([0.7, 0.7]),
        weights=np.array([0.3, 0.7]),
    )  # fmt: skip
    return {"funnel": funnel, "mixture": mixture}


def run_langevin(problem, target, budget, warmup, fit_steps, seed):
    import langevin
    from langevin.flows import fit_reverse_kl, flow_transformed, realnvp_init

    rows = []
    dim = target.dim
    n_leap = 10
    starts = _starts(problem, dim, seed)
    # plain HMC
    t0 = time.perf_counter()
    trace = langevin.sample(target, langevin.HMC(0.1, n_leapfrog=n_leap), chains=CHAINS,
                            warmup=warmup, draws=budget // n_leap, seed=seed,
                            initial_position=starts, progress=False)  # fmt: skip
    rows.append(_row(problem, "HMC", np.asarray(trace.draws), budget, 0, 0.0,
                     time.perf_counter() - t0))  # fmt: skip
    # the flow, fitted once by reverse KL, shared by NeuTra and FlowProposal
    t0 = time.perf_counter()
    blocks = 6 if problem == "funnel" else 4
    flow, _ = fit_reverse_kl(target, realnvp_init(dim, blocks, (32, 32), seed=seed),
                             steps=fit_steps, batch_size=128, progress=False)  # fmt: skip
    fit_seconds = time.perf_counter() - t0
    fit_grads = fit_steps * 128
    # NeuTra-HMC
    t0 = time.perf_counter()
    latent = flow_transformed(target, flow)
    z0 = None if starts is None else np.stack([latent.to_z(x) for x in starts])
    trace = langevin.sample(latent, langevin.HMC(0.5, n_leapfrog=n_leap), chains=CHAINS,
                            warmup=warmup, draws=budget // n_leap, seed=seed,
                            initial_position=z0, progress=False)  # fmt: skip
    x = latent.to_x(np.asarray(trace.draws))
    rows.append(_row(problem, "NeuTra-HMC", x, budget, fit_grads, fit_seconds,
                     fit_seconds + time.perf_counter() - t0))  # fmt: skip
    # flow-proposal MCMC with the fitted flow (funnel: no retraining, since refits on the
    # warm-up draws of MALA, which never reach the neck, made the flow worse in the first
    # runs; mixture: retrained three times on the chains' warm-up draws, flowMC's loop)
    t0 = time.perf_counter()
    retrain = 0 if problem == "funnel" else 3
    kernel = langevin.kernels.FlowProposal(0.05, flow=flow, retrain=retrain, train_steps=300)
    trace = langevin.sample(target, kernel, chains=CHAINS, warmup=warmup, draws=budget // 2,
                            seed=seed, initial_position=starts, progress=False)  # fmt: skip
    acc = float(np.mean(trace.sample_stats["flow_acceptance_rate"]))
    label = "FlowProposal (fitted flow)" if retrain == 0 else "FlowProposal (fit + 3 refits)"
    rows.append(_row(problem, label, np.asarray(trace.draws), budget, fit_grads, fit_seconds,
                     fit_seconds + time.perf_counter() - t0, flow_acc=acc))  # fmt: skip
    return rows


def _starts(problem, dim, seed):
    """Funnel: the target's own start (jittered); mixture: overdispersed starts, uniform on
    [−6, 6]², so that chains begin in both modes (every sampler gets the same ones)."""
    if problem == "funnel":
        return None
    return np.random.default_rng(seed + 7).uniform(-6.0, 6.0, (CHAINS, dim))


def run_flowmc(problem, target, budget, seed, quick):
    try:
        import jax
        import jax.numpy as jnp
        from flowMC.resource_strategy_bundle.RQSpline_MALA import RQSpline_MALA_Bundle
        from flowMC.Sampler import Sampler
    except ImportError as exc:
        return [{"problem": problem, "sampler": "flowMC", "note": f"not installed ({exc})"}]
    import tempfile

    logdensity = target.jax_logdensity
    dim = target.dim
    n_local, n_global = 50, 50
    loops = max(1, budget // (n_local + n_global))
    t0 = time.perf_counter()
    bundle = RQSpline_MALA_Bundle(
        jax.random.PRNGKey(seed), CHAINS, dim, lambda x, data: logdensity(x),
        n_local_steps=n_local, n_global_steps=n_global,
        n_training_loops=5 if quick else 20, n_production_loops=loops,
        n_epochs=5 if quick else 20, mala_step_size=0.05, batch_size=2000,
        rq_spline_hidden_units=(32, 32), rq_spline_n_layers=4,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        sampler = Sampler(n_dim=dim, n_chains=CHAINS, rng_key=jax.random.PRNGKey(seed + 1),
                          resource_strategy_bundles=bundle, outdir=out,
                          checkpoint_interval=0)  # fmt: skip
        starts = _starts(problem, dim, seed)
        if starts is None:
            starts = np.random.default_rng(seed).uniform(-1, 1, (CHAINS, dim))
        start = jnp.asarray(starts)
        sampler.sample(start, {})
        draws = np.asarray(sampler.resources["positions_production"].data)
    seconds = time.perf_counter() - t0
    row = _row(problem, "flowMC (RQSpline + MALA)", draws, loops * (n_local + n_global), 0,
               float("nan"), seconds)  # fmt: skip
    # (its acceptance buffers mix local and global steps: no flow acceptance is reported)
    row["note"] = "training inside the run (its 'training loops'); not separable"
    return [row]


def _row(problem, sampler, x, grads, train_grads, train_seconds, seconds, flow_acc=None):
    ess = _ess(x)
    name, est, se, z = _check(problem, x)
    chains = x.shape[0]
    return {
        "problem": problem, "sampler": sampler, "draws": x.shape[1],
        "grads_per_chain": grads, "train_grads": train_grads,
        "train_seconds": train_seconds, "seconds": seconds,
        "ess_0": float(ess[0]), "ess_min": float(ess.min()),
        "ess_0_per_1000_grads": 1000 * float(ess[0]) / (grads * chains),
        "ess_0_per_second": float(ess[0]) / seconds,
        "check": name, "estimate": est, "mcse": se, "z": z, "flow_acc": flow_acc,
    }  # fmt: skip


def _fmt(v, spec=".3g"):
    if v is None:
        return "–"
    if isinstance(v, float) and np.isnan(v):
        return "–"
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def write(rows, path, args, wall):
    lines = [
        "# NeuTra-HMC and flow-proposal MCMC against HMC and flowMC (funnel d = 10, 2-D mixture)",
        "",
        f"`python -m benchmarks.flow_hmc_funnel{' --quick' if args.quick else ''}` — machine: "
        f"{platform.machine()}, {os.cpu_count()} cores, no GPU, shared with other jobs (numbers "
        f"vary with the load); Python {platform.python_version()}; total wall time "
        f"{wall:.0f} s.",
        "",
        f"Equal sampling budget: {args.budget} gradient evaluations per chain, {CHAINS} chains, "
        f"warm-up {args.warmup} steps (not counted in the budget), reverse-KL fit "
        f"{args.fit_steps} steps × 128 base draws. `ESS₀`: bulk ESS of v (funnel) or x₀ "
        "(mixture), summed over chains; `ESS/s`: over the whole call (training, warm-up, "
        "compilation, sampling).",
        "",
        "| problem | sampler | draws/chain | train grads | train s | total s | ESS₀ | ESS min | "
        "ESS₀ / 1000 grads | ESS₀ / s | flow acc. | check | estimate ± MCSE | z |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "ess_0" not in r:
            lines.append(f"| {r['problem']} | {r['sampler']} | {r.get('note', '')} |"
                         + " |" * 11)  # fmt: skip
            continue
        lines.append(
            f"| {r['problem']} | {r['sampler']} | {r['draws']} | {r['train_grads']} | "
            f"{_fmt(r['train_seconds'], '.1f')} | {r['seconds']:.1f} | {r['ess_0']:.0f} | "
            f"{r['ess_min']:.0f} | {r['ess_0_per_1000_grads']:.3g} | "
            f"{r['ess_0_per_second']:.3g} | {_fmt(r['flow_acc'], '.2f')} | {r['check']} | "
            f"{r['estimate']:.3f} ± {r['mcse']:.3f} | {r['z']:.1f} |"
        )
    notes = [r for r in rows if r.get("note")]
    if notes:
        lines += ["", *(f"- {r['sampler']} ({r['problem']}): {r['note']}" for r in notes)]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--budget", type=int, default=None,
                        help="sampling gradient evaluations per chain")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--fit-steps", type=int, default=None)
    parser.add_argument("--no-flowmc", action="store_true")
    parser.add_argument("--problems", default="funnel,mixture",
                        help="comma-separated subset of funnel,mixture")  # fmt: skip
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    args.budget = args.budget or (4000 if args.quick else 20000)
    args.warmup = args.warmup or (300 if args.quick else 1000)
    args.fit_steps = args.fit_steps or (300 if args.quick else 1500)
    t0 = time.perf_counter()
    rows = []
    chosen = [p.strip() for p in args.problems.split(",")]
    for problem, target in _targets().items():
        if problem not in chosen:
            continue
        rows += run_langevin(problem, target, args.budget, args.warmup, args.fit_steps, seed=1)
        if not args.no_flowmc:
            rows += run_flowmc(problem, target, args.budget, 1, args.quick)
        for r in rows[-4:]:
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "flow_hmc_funnel_quick.md" if args.quick else "flow_hmc_funnel.md"
    if chosen != ["funnel", "mixture"]:
        name = name.replace(".md", f"_{'_'.join(chosen)}.md")
    write(rows, out / name, args, time.perf_counter() - t0)
    print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
