"""log Z of CMCD vs ULA-AIS vs tempered SMC on the funnel and the 40-mode mixture.

For each target and K ∈ {8, 32, 256}:

* **ULA-AIS** (:func:`langevin.diffusion.cmcd.ula_ais`): no training, the same ``q_0`` and ε
  as CMCD starts from;
* **CMCD** (:class:`langevin.diffusion.cmcd.CMCD`): the control network, ``q_0`` and the
  step scale trained on JAX (optax Adam, KL loss = −ELBO) — training time reported — then
  sampled on Numba;
* **SMC** (:func:`langevin.smc.tempered_smc`): tempered SMC from the same Gaussian reference
  to the target with K equally spaced exponents, one MALA step per stage (step size adapted
  per stage), resampling at every stage.

Each row: ``log Ẑ − log Z`` mean ± sd over the seeds (N particles each), CMCD's ELBO, and
wall times, next to the CMCD authors' numbers (ALGORITHMS.md §9a; their runs used 2000
evaluation samples and long training). ``--many-well`` adds many-well d = 32 (log Z by
quadrature). ``--quick`` cuts seeds, particles, training steps and trains CMCD only for
K ≤ 32 (the report says so). Results: ``benchmarks/results/cmcd_logz.md``.

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


def run(quick: bool, many_well: bool, seeds: int, n: int, train_steps: int, max_train_k: int,
        ks: tuple[int, ...]) -> tuple[list[dict], dict]:  # fmt: skip
    from langevin.diffusion.cmcd import CMCD, ula_ais

    rows = []
    t_total = time.perf_counter()
    cpu_total = time.process_time()
    for name, target, log_z, scale, eps, mala_step in problems(many_well):
        for k in ks:
            row = {"target": name, "K": k}
            # ULA-AIS
            sampler = ula_ais(target, k, step_size=eps, init_scale=scale)
            t0 = time.perf_counter()
            res = [sampler.sample(None, n, seed=s) for s in range(seeds)]
            row["ula"] = np.array([r.log_Z - log_z for r in res])
            row["ula_elbo"] = np.array([r.elbo - log_z for r in res])
            row["ula_s"] = (time.perf_counter() - t0) / seeds
            # CMCD (trained)
            if k <= max_train_k:
                sampler = CMCD(target, k, step_size=eps, init_scale=scale, hidden=32)
                trained = sampler.train(loss="kl", steps=train_steps, batch=128,
                                        learning_rate=3e-3, seed=0)  # fmt: skip
                row["train_s"] = trained.elapsed
                t0 = time.perf_counter()
                res = [sampler.sample(trained.params, n, seed=s) for s in range(seeds)]
                row["cmcd"] = np.array([r.log_Z - log_z for r in res])
                row["cmcd_elbo"] = np.array([r.elbo - log_z for r in res])
                row["cmcd_s"] = (time.perf_counter() - t0) / seeds
            # tempered SMC
            t0 = time.perf_counter()
            row["smc"] = np.array([smc_log_z(target, log_z, scale, mala_step, k, n, s)
                                   for s in range(seeds)])  # fmt: skip
            row["smc_s"] = (time.perf_counter() - t0) / seeds
            rows.append(row)
            print(_line(row), flush=True)
    meta = {"wall": time.perf_counter() - t_total, "cpu": time.process_time() - cpu_total}
    return rows, meta


def _ms(a) -> str:
    return f"{np.mean(a):+.3f} ± {np.std(a, ddof=1):.3f}" if len(a) > 1 else f"{a[0]:+.3f}"


def _line(row) -> str:
    parts = [f"{row['target']} K={row['K']}", f"ULA-AIS {_ms(row['ula'])}"]
    if "cmcd" in row:
        parts.append(f"CMCD {_ms(row['cmcd'])} (ELBO {np.mean(row['cmcd_elbo']):+.3f}, "
                     f"train {row['train_s']:.0f}s)")  # fmt: skip
    parts.append(f"SMC {_ms(row['smc'])}")
    return " | ".join(parts)


def report(rows, meta, args) -> str:
    lines = [
        "# log Z: CMCD vs ULA-AIS vs tempered SMC (`benchmarks/cmcd_logz.py`)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()}-core CPU, "
        "no GPU, loaded by other jobs (load average during the run: "
        f"{os.getloadavg()[0]:.1f}). Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"Settings: {'--quick' if args.quick else 'full'}"
        f"{' (' + args.overridden + ')' if args.overridden else ''}; "
        f"{args.seeds} seeds × N = {args.n} "
        f"particles per estimate; CMCD trained with the KL loss (Adam, lr 3e-3, batch 128, "
        f"{args.train_steps} steps, float32 JAX) for K ≤ {args.max_train_k}"
        + (
            " only (K = 256 training did not fit the CPU time of this run)"
            if args.max_train_k < max(args.ks)
            else ""
        )
        + "; sampled on Numba (float64). "
        "Entries are log Ẑ − log Z (mean ± sd over seeds); log Z is exact (funnel: the "
        "normalising constant of the unnormalised density; 40-mode mixture: normalised, 0; "
        "many-well: 1-D quadrature). Wall times per estimate (the first K of each target "
        "includes Numba's compilation of the "
        "new target form; the SMC column's first entry the SMC loop's); training time once per "
        "K, JAX compilation included. The machine was loaded by other agents' jobs, so every "
        "time is an upper bound. "
        f"Total wall {meta['wall']:.0f} s, CPU {meta['cpu']:.0f} s.",
        "",
        "| target | K | ULA-AIS log Ẑ | CMCD log Ẑ | CMCD ELBO | SMC log Ẑ | CMCD train s "
        "| s/estimate ULA / CMCD / SMC | authors CMCD log Ẑ | authors CMCD ELBO | authors SMC |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        key = r["target"]
        a_cmcd = AUTHORS.get((key, "CMCD"), {}).get(r["K"], "—")
        a_elbo = AUTHORS.get((key, "CMCD ELBO"), {}).get(r["K"], "—")
        a_smc = AUTHORS.get((key, "SMC"), {}).get(r["K"], "—")
        cm = _ms(r["cmcd"]) if "cmcd" in r else "not trained"
        ce = f"{np.mean(r['cmcd_elbo']):+.3f}" if "cmcd" in r else "—"
        tr = f"{r['train_s']:.0f}" if "cmcd" in r else "—"
        cs = f"{r['cmcd_s']:.2f}" if "cmcd" in r else "—"
        lines.append(
            f"| {key} | {r['K']} | {_ms(r['ula'])} | {cm} | {ce} | {_ms(r['smc'])} | {tr} | "
            f"{r['ula_s']:.2f} / {cs} / {r['smc_s']:.2f} | {a_cmcd} | {a_elbo} | {a_smc} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--many-well", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "cmcd_logz.md"))
    parser.add_argument("--seeds", type=int, help="override the number of seeds")
    parser.add_argument("--n", type=int, help="override the particles per estimate")
    parser.add_argument("--train-steps", type=int, help="override the training steps")
    parser.add_argument("--max-train-k", type=int, help="train CMCD only for K up to this")
    args = parser.parse_args(argv)
    args.overridden = " ".join(
        f"--{k.replace('_', '-')} {getattr(args, k)}"
        for k in ("seeds", "n", "train_steps", "max_train_k")
        if getattr(args, k) is not None
    )
    defaults = (5, 1000, 200, 32) if args.quick else (30, 2000, 1000, 256)
    for name, value in zip(("seeds", "n", "train_steps", "max_train_k"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.ks = (8, 32, 256)
    rows, meta = run(args.quick, args.many_well, args.seeds, args.n, args.train_steps,
                     args.max_train_k, args.ks)  # fmt: skip
    text = report(rows, meta, args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
