"""log Z of CMCD vs ULA-AIS vs tempered SMC on the funnel and the 40-mode mixture.

For each target and K ∈ {8, 32, 256}:

* **ULA-AIS** (:func:`langevin.diffusion.cmcd.ula_ais`): no training, the same ``q_0`` and ε
  as CMCD starts from;
* **CMCD** (:class:`langevin.diffusion.cmcd.CMCD`): the control network, the annealing
  schedule β (``learn=``) and, on the funnel, ``q_0`` trained on JAX (optax Adam, KL loss =
  −ELBO) with the authors' funnel settings (ε_0 = 0.1, ``cos_sq`` steps, ε not trained, lr
  5e-3; ``CMCD_SETTINGS``) — training time reported — then sampled on Numba;
* **SMC** (:func:`langevin.smc.tempered_smc`): tempered SMC from the same Gaussian reference
  to the target with K equally spaced exponents, one MALA step per stage (step size adapted
  per stage), resampling at every stage.

Each row: ``log Ẑ − log Z`` mean ± sd over the seeds (N particles each), CMCD's ELBO, and
wall times, next to the CMCD authors' numbers (ALGORITHMS.md §9a; their runs used 2000
evaluation samples and long training). ``--many-well`` adds many-well d = 32 (log Z by
quadrature). ``--ks 256`` runs only the K listed (same settings and seeds 0..S−1 as in the
full run, so its rows replace those of a full run); ``--npz`` also saves the per-seed values.
``--quick`` cuts seeds, particles, training steps and trains CMCD only for
K ≤ 32 (the report says so). ``--ablation`` instead trains CMCD at K = 32 on the funnel with
one setting changed at a time (learned β, learned ε, the loss, the width, steps, batch) and
prints log Ẑ over 30 seeds × 2000 paths (evaluated on JAX). Results:
``benchmarks/results/cmcd_logz.md``.

Run:  python -m benchmarks.cmcd_logz --quick
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"

# ALGORITHMS.md §9a (CMCD repo's rebuttal notebook outputs): log Ẑ (mean ± sd over 30 seeds)
AUTHORS = {
    ("funnel", "CMCD"): {8: "−0.304 ± 0.151", 32: "−0.181 ± 0.078", 256: "−0.019 ± 0.064"},
    ("funnel", "CMCD ELBO"): {8: "−1.063", 32: "−0.681", 256: "−0.230"},
    ("funnel", "SMC"): {8: "−0.424", 32: "−0.222", 256: "−0.184"},
    ("gmm40", "CMCD"): {8: "−0.136 ± 0.083", 32: "0.010 ± 0.050", 256: "−0.008 ± 0.052"},
    ("gmm40", "SMC"): {8: "−0.0003", 32: "0.0019", 256: "0.0019"},
}


def zero_likelihood(dim: int):
    """log L ≡ 0 (so tempered SMC's prior × likelihood is the target itself)."""
    import numba

    from langevin.targets.base import Target

    @numba.njit(cache=True)
    def vg(x):
        return 0.0, np.zeros(x.shape[0])

    def logdensity(x):
        return 0.0 * x[0]

    return Target(dim=dim, numba={"value_and_grad": vg}, jax={"logdensity": logdensity},
                  name="zero")  # fmt: skip


# CMCD's training per target: constructor and train() settings, and (steps, batch) for
# K ≤ 32 and for K = 256 (8× the cost per step). Funnel: the authors' README command and
# FUNNEL_EPS_DICT (init_eps 0.1, lr 5e-3 at K = 32, cos_sq, q_0 trained, ε not, β trained);
# mixture: q_0 and ε fixed as in the authors' 40-GMM commands.
CMCD_SETTINGS = {
    "funnel": dict(make=dict(step_size=0.1, schedule="cos_sq", learn=("q0", "schedule", "control")),
                   lr=5e-3, small=(2000, 300), large=(300, 64)),
    "gmm40": dict(make=dict(step_size=0.3, schedule="constant", learn=("schedule", "control")),
                  lr=5e-3, small=(1000, 128), large=(200, 64)),
    "manywell32": dict(make=dict(step_size=0.02, schedule="constant"),
                       lr=3e-3, small=(300, 128), large=(100, 64)),
}  # fmt: skip


def problems(many_well: bool):
    import langevin
    from langevin.diffusion.targets import forty_mode_mixture, funnel_log_z
    from langevin.diffusion.targets import many_well as mw

    out = [
        # name, target, log Z, q_0 scale, ε_0, SMC MALA step
        ("funnel", langevin.targets.neals_funnel(10), funnel_log_z(10), 1.0, 0.05, 0.5),
        ("gmm40", forty_mode_mixture(0), 0.0, 20.0, 0.3, 2.0),
    ]
    if many_well:
        t = mw(32)
        out.append(("manywell32", t, t.log_z, 1.8, 0.02, 0.3))
    return out


def smc_log_z(target, log_z, scale, step, k, n, seed):
    import langevin
    from langevin.smc import GaussianReference, TemperedTarget, tempered_smc

    d = target.dim
    model = TemperedTarget(target, zero_likelihood(d))
    ref = GaussianReference(np.zeros(d), scale**2 * np.eye(d))
    trace = tempered_smc(model, langevin.MALA(step), n_particles=n, n_steps=1,
                         schedule=np.linspace(0.0, 1.0, k + 1)[1:], reference=ref, seed=seed,
                         progress=False)  # fmt: skip
    return trace.log_evidence - log_z


def run(
    quick: bool,
    many_well: bool,
    seeds: int,
    n: int,
    train_steps: int | None,
    max_train_k: int,
    ks: tuple[int, ...],
    seeds_large: int,
) -> tuple[list[dict], dict]:
    from langevin.diffusion.cmcd import CMCD, ula_ais

    rows = []
    t_total = time.perf_counter()
    cpu_total = time.process_time()
    for name, target, log_z, scale, eps, mala_step in problems(many_well):
        for k in ks:
            row = {"target": name, "K": k}
            n_seeds = seeds if k <= 32 else min(seeds, seeds_large)
            row["seeds"] = n_seeds
            # ULA-AIS
            sampler = ula_ais(target, k, step_size=eps, init_scale=scale)
            t0 = time.perf_counter()
            res = [sampler.sample(None, n, seed=s) for s in range(n_seeds)]
            row["ula"] = np.array([r.log_Z - log_z for r in res])
            row["ula_elbo"] = np.array([r.elbo - log_z for r in res])
            row["ula_s"] = (time.perf_counter() - t0) / n_seeds
            # CMCD (trained)
            if k <= max_train_k:
                cfg = CMCD_SETTINGS[name]
                steps, batch = cfg["small"] if k <= 32 else cfg["large"]
                steps = train_steps or steps
                sampler = CMCD(target, k, init_scale=scale, hidden=32, **cfg["make"])
                c0 = time.process_time()
                trained = sampler.train(loss="kl", steps=steps, batch=batch,
                                        learning_rate=cfg["lr"], seed=0)  # fmt: skip
                row["train_s"] = trained.elapsed
                row["train_cpu"] = time.process_time() - c0
                row["train_cfg"] = f"{steps}×{batch}"
                t0 = time.perf_counter()
                res = [sampler.sample(trained.params, n, seed=s) for s in range(n_seeds)]
                row["cmcd"] = np.array([r.log_Z - log_z for r in res])
                row["cmcd_elbo"] = np.array([r.elbo - log_z for r in res])
                row["cmcd_s"] = (time.perf_counter() - t0) / n_seeds
            # tempered SMC
            t0 = time.perf_counter()
            row["smc"] = np.array([smc_log_z(target, log_z, scale, mala_step, k, n, s)
                                   for s in range(n_seeds)])  # fmt: skip
            row["smc_s"] = (time.perf_counter() - t0) / n_seeds
            rows.append(row)
            print(_line(row), flush=True)
    meta = {"wall": time.perf_counter() - t_total, "cpu": time.process_time() - cpu_total}
    return rows, meta


def _ms(a) -> str:
    return f"{np.mean(a):+.3f} ± {np.std(a, ddof=1):.3f}" if len(a) > 1 else f"{a[0]:+.3f}"


def _line(row) -> str:
    parts = [f"{row['target']} K={row['K']}", f"ULA-AIS {_ms(row['ula'])}"]
    if "cmcd" in row:
        parts.append(
            f"CMCD {_ms(row['cmcd'])} (ELBO {np.mean(row['cmcd_elbo']):+.3f}, "
            f"train {row['train_s']:.0f}s wall / {row['train_cpu']:.0f}s CPU)"
        )
    parts.append(f"SMC {_ms(row['smc'])}")
    return " | ".join(parts)


def report(rows, meta, args) -> str:
    lines = [
        "# log Z: CMCD vs ULA-AIS vs tempered SMC (`benchmarks/cmcd_logz.py`)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()}-core CPU, "
        "no GPU, loaded by other jobs (load average at the end of the run: "
        f"{os.getloadavg()[0]:.1f}). Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"Settings: {'--quick' if args.quick else 'full'}"
        f"{' (' + args.overridden + ')' if args.overridden else ''}; "
        f"{args.seeds} seeds (K = 256: {min(args.seeds, args.seeds_large)}) × N = {args.n} "
        "particles per estimate; CMCD trained with the KL loss (Adam, float32 JAX; "
        "`CMCD_SETTINGS`: steps × batch per row below) "
        f"for K ≤ {args.max_train_k}; sampled on Numba (float64). "
        "Entries are log Ẑ − log Z (mean ± sd over seeds); log Z is exact (funnel: the "
        "normalising constant of the unnormalised density; 40-mode mixture: normalised, 0; "
        "many-well: 1-D quadrature). Wall times per estimate (the first K of each target "
        "includes Numba's compilation of the new target form); training time once per "
        "K, JAX compilation included, wall / CPU seconds. The machine was loaded by other "
        "agents' jobs, so every wall time is an upper bound. "
        f"Total wall {meta['wall']:.0f} s, CPU {meta['cpu']:.0f} s.",
        "",
        "| target | K | seeds | ULA-AIS log Ẑ | CMCD log Ẑ | CMCD ELBO | SMC log Ẑ "
        "| CMCD training (steps×batch, wall s / CPU s) | s/estimate ULA / CMCD / SMC "
        "| authors CMCD log Ẑ | authors CMCD ELBO | authors SMC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        key = r["target"]
        a_cmcd = AUTHORS.get((key, "CMCD"), {}).get(r["K"], "—")
        a_elbo = AUTHORS.get((key, "CMCD ELBO"), {}).get(r["K"], "—")
        a_smc = AUTHORS.get((key, "SMC"), {}).get(r["K"], "—")
        cm = _ms(r["cmcd"]) if "cmcd" in r else "not trained"
        ce = f"{np.mean(r['cmcd_elbo']):+.3f}" if "cmcd" in r else "—"
        tr = (f"{r['train_cfg']}, {r['train_s']:.0f} / {r['train_cpu']:.0f}"
              if "cmcd" in r else "—")  # fmt: skip
        cs = f"{r['cmcd_s']:.2f}" if "cmcd" in r else "—"
        lines.append(
            f"| {key} | {r['K']} | {r['seeds']} | {_ms(r['ula'])} | {cm} | {ce} | {_ms(r['smc'])} "
            f"| {tr} | {r['ula_s']:.2f} / {cs} / {r['smc_s']:.2f} | {a_cmcd} | {a_elbo} | {a_smc} |"
        )
    return "\n".join(lines) + "\n"


# -- ablation at K = 32 on the funnel -------------------------------------------------------------
ABLATION = [
    # label, CMCD kwargs, train kwargs
    ("A: ε_0 = 0.05 constant, ε and q_0 learned, β fixed (the former benchmark), 300 × 128",
     dict(step_size=0.05, learn=("q0", "step", "control")),
     dict(steps=300, batch=128, learning_rate=3e-3)),
    ("B: A + β learned",
     dict(step_size=0.05, learn=("q0", "step", "schedule", "control")),
     dict(steps=300, batch=128, learning_rate=3e-3)),
    ("C0: authors' ε_0 = 0.1 cos_sq (ε fixed), q_0 learned, β fixed, lr 5e-3, 1000 × 128",
     dict(step_size=0.1, schedule="cos_sq", learn=("q0", "control")),
     dict(steps=1000, batch=128, learning_rate=5e-3)),
    ("C: C0 + β learned",
     dict(step_size=0.1, schedule="cos_sq", learn=("q0", "schedule", "control")),
     dict(steps=1000, batch=128, learning_rate=5e-3)),
    ("C + ε learned",
     dict(step_size=0.1, schedule="cos_sq"),
     dict(steps=1000, batch=128, learning_rate=5e-3)),
    ("C with the log-variance loss",
     dict(step_size=0.1, schedule="cos_sq", learn=("q0", "schedule", "control")),
     dict(steps=1000, batch=128, learning_rate=5e-3, loss="logvar")),
    ("C with hidden = 64",
     dict(step_size=0.1, schedule="cos_sq", learn=("q0", "schedule", "control"), hidden=64),
     dict(steps=1000, batch=128, learning_rate=5e-3)),
    ("C with 3000 steps",
     dict(step_size=0.1, schedule="cos_sq", learn=("q0", "schedule", "control")),
     dict(steps=3000, batch=128, learning_rate=5e-3)),
    ("D: C with 2000 steps × batch 300 (the benchmark's setting)",
     dict(step_size=0.1, schedule="cos_sq", learn=("q0", "schedule", "control")),
     dict(steps=2000, batch=300, learning_rate=5e-3)),
    ("D again, training seed 1 (the spread between trainings)",
     dict(step_size=0.1, schedule="cos_sq", learn=("q0", "schedule", "control")),
     dict(steps=2000, batch=300, learning_rate=5e-3, seed=1)),
]  # fmt: skip


def ablation(seeds: int = 30, n: int = 2000) -> None:
    """Funnel d = 10, K = 32: one setting changed at a time; log Ẑ over ``seeds`` × ``n``
    paths evaluated on JAX (float32) with the trained params."""
    import jax
    import jax.numpy as jnp

    import langevin
    from langevin.diffusion.cmcd import CMCD
    from langevin.diffusion.paths import path_log_weights
    from langevin.diffusion.targets import funnel_log_z

    target, log_z = langevin.targets.neals_funnel(10), funnel_log_z(10)
    for label, make, fit in ABLATION:
        make = {"init_scale": 1.0, "hidden": 32, **make}
        sampler = CMCD(target, 32, **make)
        c0 = time.process_time()
        trained = sampler.train(**{"seed": 0, **fit})
        cpu = time.process_time() - c0
        f = jax.jit(path_log_weights(sampler, n, "kl"))
        p = jax.tree_util.tree_map(jnp.asarray, trained.params)
        errs, elbos = [], []
        for s in range(seeds):
            lw = np.asarray(f(p, jax.random.PRNGKey(1000 + s)), dtype=np.float64)
            top = lw.max()
            errs.append(top + np.log(np.mean(np.exp(lw - top))) - log_z)
            elbos.append(lw.mean() - log_z)
        print(f"| {label} | {_ms(np.array(errs))} | {np.mean(elbos):+.3f} | "
              f"{trained.elapsed:.0f} / {cpu:.0f} |", flush=True)  # fmt: skip


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--many-well", action="store_true")
    parser.add_argument("--ablation", action="store_true", help="the K = 32 funnel ablation")
    parser.add_argument("--out", default=str(RESULTS / "cmcd_logz.md"))
    parser.add_argument("--seeds", type=int, help="override the number of seeds")
    parser.add_argument("--seeds-large", type=int, default=30, help="seeds at K = 256")
    parser.add_argument("--n", type=int, help="override the particles per estimate")
    parser.add_argument("--train-steps", type=int, help="override the training steps")
    parser.add_argument("--max-train-k", type=int, help="train CMCD only for K up to this")
    parser.add_argument(
        "--ks",
        type=int,
        nargs="+",
        choices=(8, 32, 256),
        default=None,
        help="run only these K (default: 8 32 256); settings per K unchanged",
    )
    parser.add_argument("--npz", help="also save the per-seed log Ẑ − log Z arrays here")
    args = parser.parse_args(argv)
    if args.ablation:
        ablation(args.seeds or 30, args.n or 2000)
        return
    args.overridden = " ".join(
        f"--{k.replace('_', '-')} {getattr(args, k)}"
        for k in ("seeds", "n", "train_steps", "max_train_k", "seeds_large")
        if getattr(args, k) is not None and not (k == "seeds_large" and args.seeds_large == 30)
    )
    if args.ks is not None:
        args.overridden = " ".join(
            filter(None, [args.overridden, "--ks " + " ".join(map(str, args.ks))])
        )
    defaults = (5, 1000, 200, 32) if args.quick else (30, 2000, None, 256)
    for name, value in zip(("seeds", "n", "train_steps", "max_train_k"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.ks = tuple(sorted(set(args.ks))) if args.ks else (8, 32, 256)
    rows, meta = run(args.quick, args.many_well, args.seeds, args.n, args.train_steps,
                     args.max_train_k, args.ks, args.seeds_large)  # fmt: skip
    if args.npz:
        arrays = {f"{r['target']}_K{r['K']}_{m}": r[m] for r in rows
                  for m in ("ula", "ula_elbo", "cmcd", "cmcd_elbo", "smc") if m in r}  # fmt: skip
        Path(args.npz).parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.npz, **arrays)
    text = report(rows, meta, args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
