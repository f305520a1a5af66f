"""Topological freezing on 2-D U(1): HMC against flow-transformed HMC (ALGORITHMS.md §6).

For β ∈ {4, 6, 8} and L ∈ {8, 16}, at equal trajectory length τ = 1 (HMC: step 0.1 × 10
leapfrog steps, no adaptation): the integrated autocorrelation time of the topological charge Q
(τ_int = draws / ESS, ArviZ's rank-normalised ESS over chains), the tunnelling rate
⟨|Q_i − Q_{i−1}|⟩ per trajectory, the acceptance, and ⟨cos x_P⟩, ⟨Q²⟩ against the exact
finite-volume values. HMC and ftHMC run on Numba (float64; ftHMC's gradient is the flow's
hand-written pullback; ``--backend jax`` runs ftHMC on JAX). Flows are trained by reverse KL
(JAX) at L = 8 and used at L = 16 unchanged ("transfer"), and also trained at L = 16
directly ("no transfer"; half the steps, the same number of plaquettes per batch). ftHMC's
step size comes from a short warm-up and the number of leapfrog steps is set so the trajectory
length is HMC's (ftHMC's forces are stiffer).

    python -m benchmarks.fthmc_u1 --quick     # the sizes recorded in results/fthmc_u1.md
    python -m benchmarks.fthmc_u1 --kl-compare   # forward vs reverse KL at equal wall time

Writes ``benchmarks/results/fthmc_u1.md`` (the heading says whether ``--quick`` made it).
``--kl-compare`` (β = 6, L = 8) trains one flow by reverse KL and one by forward KL on exact
draws (:func:`langevin.lattice.exact_u1_samples`) for the same wall time, then measures each
flow's ESS on prior draws, its held-out ``−E_π log q`` (forward KL up to a constant) and ftHMC
tunnelling from exact starts; it replaces only the section ``## Forward vs reverse KL`` of the
results file (everything from that heading to the end, the hand-written reading included).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
STEP, N_LEAPFROG = 0.1, 10


def _tau_and_rate(q: np.ndarray) -> tuple[float, float]:
    import warnings

    import arviz as az

    dq = np.abs(np.diff(q, axis=1)).mean()
    if np.all(q == q[:, :1]):
        return float("inf"), float(dq)  # frozen: no estimate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ess = float(az.ess(q.astype(float), method="mean"))
    return float(q.size / ess), float(dq)


def _run(target, backend: str, chains: int, burn: int, draws: int, seed: int,
         tune: bool = False, max_n: int = 1000) -> dict:  # fmt: skip
    """Fixed-τ HMC: with ``tune``, a dual-averaging warm-up finds the step size first and the
    run uses ``n = ceil(τ/h)`` steps of ``τ/n`` (equal trajectory length, more gradients)."""
    import langevin

    t0 = time.perf_counter()
    h, n, start = STEP, N_LEAPFROG, None
    if tune:
        warm = langevin.sample(target, langevin.HMC(STEP, n_leapfrog=N_LEAPFROG), chains=chains,
                               warmup=burn, draws=1, seed=seed + 1000, progress=False,
                               backend=backend, adapt_mass_matrix=False)  # fmt: skip
        tau = STEP * N_LEAPFROG
        n = min(max_n, max(N_LEAPFROG, int(np.ceil(tau / float(np.median(warm.step_size))))))
        h = min(tau / n, float(np.median(warm.step_size)))  # capped n: a shorter trajectory
        start = np.asarray(warm.draws[:, -1], dtype=np.float64)
    trace = langevin.sample(target, langevin.HMC(h, n_leapfrog=n), chains=chains, warmup=0,
                            draws=draws if tune else burn + draws, seed=seed, progress=False,
                            backend=backend, adapt_mass_matrix=False,
                            initial_position=start)  # fmt: skip
    seconds = time.perf_counter() - t0
    z = np.asarray(trace.draws[:, 0 if tune else burn :], dtype=np.float64)
    q = target.topological_charge(z)
    cos_p = target.plaquette(z)
    tau_q, rate = _tau_and_rate(q)
    return {
        "tau_q": tau_q, "dq": rate, "acc": float(np.nanmean(trace.sample_stats["acceptance_rate"])),
        "cos": float(cos_p.mean()), "cos_exact": target.exact_plaquette, "h": h, "n": n,
        "q2": float((q**2).mean()), "q2_exact": target.exact_q2, "seconds": seconds,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (~15 CPU minutes)")
    parser.add_argument("--betas", type=float, nargs="*", default=[4.0, 6.0, 8.0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[8, 16])
    parser.add_argument("--backend", default="numba", help="ftHMC's backend (numba or jax)")
    parser.add_argument("--kl-compare", action="store_true",
                        help="forward vs reverse KL at beta 6, L 8 (own section)")  # fmt: skip
    parser.add_argument("--kl-draws", type=int, default=100,
                        help="--kl-compare: ftHMC trajectories per chain")  # fmt: skip
    parser.add_argument("--train-seconds", type=float, default=None,
                        help="--kl-compare: wall time per flow (default: reverse KL's 200 "
                             "steps)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.kl_compare:
        return kl_compare(args)
    from langevin.lattice import U1Flow, flow_transformed_u1, train_u1_flow, u1_lattice

    if args.quick:
        n_layers, hidden, steps, batch, chains, burn, draws = 8, (8, 8), 200, 32, 2, 100, 400
        draws16, max_n = 100, 60
    else:
        n_layers, hidden, steps, batch, chains, burn, draws = 16, (8, 8), 2000, 64, 4, 200, 4000
        draws16, max_n = draws, 1000
    hmc_draws = max(draws, 2000)
    rows, trains = [], []
    for beta in args.betas:
        flows = {}
        base = U1Flow(L=8, n_layers=n_layers, hidden=hidden)
        params8, hist8 = train_u1_flow(base, beta, steps=steps, batch=batch,
                                       learning_rate=1e-3, seed=0)  # fmt: skip
        trains.append((beta, 8, hist8))
        print(f"trained beta={beta} L=8 in {hist8['seconds']:.1f}s, ess {hist8['ess'][-1]:.3f}",
              flush=True)  # fmt: skip
        flows[8] = {"trained at 8": params8}
        for L in args.sizes:
            if L == 8:
                continue
            flow_l = base.at(L)
            # the same number of plaquettes per step as at L = 8
            params_l, hist_l = train_u1_flow(flow_l, beta, steps=steps // 2,
                                             batch=max(2, batch * 64 // (L * L)),
                                             learning_rate=1e-3, seed=0)  # fmt: skip
            trains.append((beta, L, hist_l))
            print(f"trained beta={beta} L={L} in {hist_l['seconds']:.1f}s", flush=True)
            flows[L] = {"transfer from 8": params8, f"trained at {L}": params_l}
        for L in args.sizes:
            plain = u1_lattice(beta, L)
            r = _run(plain, "numba", 4, burn, hmc_draws, seed=1)
            rows.append((beta, L, "HMC", r))
            print(beta, L, "HMC", r, flush=True)
            for label, params in flows.get(L, {}).items():
                ft = flow_transformed_u1(beta, base.at(L), params)
                r = _run(ft, args.backend, chains, burn if L == 8 else burn // 2,
                         draws if L == 8 else draws16, seed=1, tune=True, max_n=max_n)  # fmt: skip
                rows.append((beta, L, f"ftHMC, flow {label}", r))
                print(beta, L, label, r, flush=True)
    text = _report(args, rows, trains, n_layers, hidden, steps, batch, chains, burn, draws,
                   hmc_draws, draws16, max_n)  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "fthmc_u1.md"
    out.write_text(text)
    print(text)
    return text


def _report(args, rows, trains, n_layers, hidden, steps, batch, chains, burn, draws,
            hmc_draws, draws16, max_n) -> str:  # fmt: skip
    import os

    lines = [
        "# ftHMC vs HMC on 2-D U(1) (`benchmarks/fthmc_u1.py"
        + (" --quick" if args.quick else "")
        + "`)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU, "
        f"loaded by other jobs. HMC: Numba, float64; ftHMC: {args.backend}.",
        f"Trajectory length τ = {STEP * N_LEAPFROG:g} for both. HMC: step {STEP} × {N_LEAPFROG}, "
        f"4 chains × {hmc_draws} trajectories after {burn} discarded. ftHMC: step size from a "
        f"{burn}-step dual-averaging warm-up (acceptance 0.8), then n = ceil(τ/h) steps of τ/n "
        f"(column n: gradients per trajectory; n capped at {max_n}, then τ = n·h is shorter), "
        f"{chains} chains × {draws} trajectories at L = 8, {draws16} at L = 16.",
        f"Flow: {n_layers} gauge-equivariant coupling layers, CNN hidden {list(hidden)}, 2 tan "
        f"components; reverse KL, Adam lr 1e-3, {steps} steps × batch {batch}.",
        "",
        "| β | L | sampler | h × n | τ_int(Q) | ⟨abs ΔQ⟩ / traj | acc | ⟨cos x_P⟩ (exact) | ⟨Q²⟩ "
        "(exact) | s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for beta, L, label, r in rows:
        lines.append(
            f"| {beta:g} | {L} | {label} | {r['h']:.4f} × {r['n']} | {r['tau_q']:.1f} | "
            f"{r['dq']:.4f} | {r['acc']:.3f} | "
            f"{r['cos']:.4f} ({r['cos_exact']:.4f}) | {r['q2']:.3f} ({r['q2_exact']:.3f}) | "
            f"{r['seconds']:.0f} |"
        )
    lines += [
        "",
        "Paper's claim (Foreman et al. 2021, ALGORITHMS.md §6): HMC's Q freezes at large β, while "
        "ftHMC with a trained flow changes topological sector more often at equal trajectory "
        "length, and flows trained on small volumes transfer to large volumes with little "
        "retraining (their δQ numbers were not retrieved). τ_int(Q) = inf: Q never changed.",
    ]
    lines += ["", "Training (wall time on this machine, compilation included):", "",
              "| β | L | seconds | loss first → last | flow ESS first → last |",
              "|---|---|---|---|---|"]  # fmt: skip
    for beta, L, h in trains:
        lines.append(f"| {beta:g} | {L} | {h['seconds']:.0f} | {h['loss'][0]:.1f} → "
                     f"{h['loss'][-1]:.1f} | {h['ess'][0]:.3f} → {h['ess'][-1]:.3f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


KL_HEADING = "## Forward vs reverse KL"


def _fthmc_from_exact_starts(ft, flow, params, chains: int, warmup: int, draws: int,
                             seed: int, max_n: int) -> dict:  # fmt: skip
    """ftHMC from exact starts (``z = f⁻¹(x)``): dual-averaging warm-up for the step size, then
    trajectories of length τ = 1 (``n = ceil(τ/h)`` capped at ``max_n``); the tunnelling count
    and rate, the acceptance, and between-chain ⟨cos x_P⟩, ⟨Q²⟩ (unbiased: exact starts)."""
    import langevin
    from langevin.lattice import exact_u1_samples

    t0 = time.perf_counter()
    z0 = flow.inverse(exact_u1_samples(ft.beta, ft.L, chains, seed=seed), params)
    warm = langevin.sample(ft, langevin.HMC(0.01, n_leapfrog=N_LEAPFROG), chains=chains,
                           warmup=warmup, draws=1, seed=seed + 1, progress=False,
                           backend="numba", adapt_mass_matrix=False,
                           initial_position=z0)  # fmt: skip
    h_med = float(np.median(warm.step_size))
    tau = STEP * N_LEAPFROG
    n = min(max_n, max(N_LEAPFROG, int(np.ceil(tau / h_med))))
    h = min(tau / n, h_med)
    start = np.asarray(warm.draws[:, -1], dtype=np.float64)
    trace = langevin.sample(ft, langevin.HMC(h, n_leapfrog=n), chains=chains, warmup=0,
                            draws=draws, seed=seed + 2, progress=False, backend="numba",
                            adapt_mass_matrix=False, initial_position=start)  # fmt: skip
    z = np.asarray(trace.draws, dtype=np.float64)
    q = ft.topological_charge(z)
    dq = np.abs(np.diff(q, axis=1))
    q2_c = (q**2).mean(1)
    return {
        "h": h, "n": n, "acc": float(np.nanmean(trace.sample_stats["acceptance_rate"])),
        "events": int(np.count_nonzero(dq)), "dq": float(dq.mean()),
        "q2": float(q2_c.mean()), "q2_se": float(q2_c.std(ddof=1) / np.sqrt(chains)),
        "cos": float(ft.plaquette(z).mean()), "seconds": time.perf_counter() - t0,
    }  # fmt: skip


def kl_compare(args) -> str:
    """Forward vs reverse KL at β = 6, L = 8 for the same wall time (``--kl-compare``)."""
    import os

    import jax
    import jax.numpy as jnp

    from langevin.lattice import (
        U1Flow,
        exact_plaquette,
        exact_q2,
        exact_u1_samples,
        flow_ess,
        flow_transformed_u1,
        train_u1_flow,
    )
    from langevin.lattice.fthmc import _jax_inverse_with_log_det

    beta, L = 6.0, 8
    flow = U1Flow(L=L, n_layers=8, hidden=(8, 8))
    steps, batch, lr = 200, 32, 1e-3
    load = [os.getloadavg()[0]]
    if args.train_seconds:  # both for the given time
        budget = args.train_seconds
        rev, hist_r = train_u1_flow(flow, beta, steps=10**9, batch=batch, learning_rate=lr,
                                    seed=0, max_seconds=budget)  # fmt: skip
    else:  # both for reverse KL's time over `steps`
        rev, hist_r = train_u1_flow(flow, beta, steps=steps, batch=batch, learning_rate=lr,
                                    seed=0)  # fmt: skip
        budget = hist_r["seconds"]
    load.append(os.getloadavg()[0])
    fwd, hist_f = train_u1_flow(flow, beta, steps=10**9, batch=batch, learning_rate=lr, seed=0,
                                objective="forward", max_seconds=budget)  # fmt: skip
    load.append(os.getloadavg()[0])
    print("trained", hist_r["seconds"], hist_r["step"][-1], hist_f["seconds"], hist_f["step"][-1],
          flush=True)  # fmt: skip
    forward_map, _ = flow.jax_functions()
    inverse = _jax_inverse_with_log_det(flow)
    from langevin.lattice.u1 import plaquette_angles

    def ess_and_nll(params, seed):
        z = np.random.default_rng(seed).uniform(-np.pi, np.pi, (4096, flow.dim))
        x, log_det = jax.jit(jax.vmap(forward_map, in_axes=(0, None)))(jnp.asarray(z), params)
        log_w = beta * np.sum(np.cos(plaquette_angles(np.asarray(x), L)), -1) + np.asarray(
            log_det)  # fmt: skip
        xs = exact_u1_samples(beta, L, 4096, seed=seed + 1)
        log_q = jax.jit(jax.vmap(lambda v: inverse(v, params)[1]))(jnp.asarray(xs))
        return flow_ess(log_w), float(-np.mean(np.asarray(log_q)))

    rows = []
    for label, params, hist in (("reverse KL", rev, hist_r), ("forward KL", fwd, hist_f)):
        ess, nll = ess_and_nll(params, 7)
        ft = flow_transformed_u1(beta, flow, params)
        r = _fthmc_from_exact_starts(ft, flow, params, chains=8, warmup=100, draws=args.kl_draws,
                                     seed=40, max_n=40)  # fmt: skip
        load.append(os.getloadavg()[0])
        rows.append((label, hist, ess, nll, r))
        print(label, ess, nll, r, flush=True)
    lines = [
        KL_HEADING,
        "",
        "`python -m benchmarks.fthmc_u1 --kl-compare` (run "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): "
        f"β = {beta:g}, L = {L}; flow {flow.n_layers} layers, hidden {list(flow.hidden)}, "
        f"Adam lr {lr:g}, batch {batch}; both trained for the same wall time "
        f"({budget:.0f} s, compilation included — column s, first step in brackets; JAX's "
        "default precision). Reverse KL: prior draws; forward KL: fresh exact draws every "
        "step (`exact_u1_samples`, counted in its time). Flow ESS on 4096 prior draws; "
        "`−E_π log q` on 4096 held-out exact draws "
        "(forward KL up to a constant: lower is better). ftHMC (Numba): 8 chains from exact "
        f"starts, 100-step dual-averaging warm-up, then {args.kl_draws} trajectories of τ = 1 "
        "(n capped at 40); ⟨Q²⟩ ± between-chain s.e. Machine: "
        f"{os.cpu_count()} cores, shared; 1-min load average during the run "
        f"{min(load):.1f}–{max(load):.1f}.",
        "",
        "| objective | steps | s (first step) | flow ESS | −E_π log q | h × n | acc | Q changes "
        "(chain·traj) | ⟨abs ΔQ⟩/traj | ⟨cos x_P⟩ (exact) | ⟨Q²⟩ (exact) | ftHMC s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, hist, ess, nll, r in rows:
        lines.append(
            f"| {label} | {hist['step'][-1] + 1} | {hist['seconds']:.0f} "
            f"({hist['first_step_seconds']:.0f}) | {ess:.4f} | "
            f"{nll:.1f} | {r['h']:.4f} × {r['n']} | {r['acc']:.2f} | {r['events']} / "
            f"{8 * args.kl_draws} | {r['dq']:.4f} | {r['cos']:.4f} "
            f"({exact_plaquette(beta, L):.4f}) | {r['q2']:.3f} ± {r['q2_se']:.3f} "
            f"({exact_q2(beta, L):.3f}) | {r['seconds']:.0f} |"
        )
    section = "\n".join(lines) + "\n"
    out = RESULTS / "fthmc_u1.md"
    text = out.read_text() if out.exists() else ""
    if KL_HEADING in text:
        text = text[: text.index(KL_HEADING)].rstrip("\n") + "\n"
    text = text.rstrip("\n") + "\n\n" + section
    out.write_text(text)
    print(section)
    return section


if __name__ == "__main__":
    main()
