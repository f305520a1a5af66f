"""Walk-jump and the chain of log-concave Markov chains against MALA and kinetic Langevin on a
well-separated Gaussian mixture: mode coverage and W2 per gradient evaluation.

Run from the repository root::

    python -m benchmarks.walk_jump_mixture            # full (~3 min on 2 loaded cores)
    python -m benchmarks.walk_jump_mixture --quick    # fewer steps and budgets (~1 min)
    python -m benchmarks.walk_jump_mixture --tiny     # smoke test

**Target.** p = Σ_k w_k N(μ_k, 0.5² I) in 2-D, four modes at (±4, ±4) (8 apart, 16 standard
deviations) with weights (0.4, 0.3, 0.2, 0.1). Every chain starts at the *lightest* mode
(worst case: a sampler must leave it to find the mass).

**Samplers** (Numba backend, 8 chains each, step sizes fixed for the walk-jump samplers,
MALA adapted by dual averaging during warm-up):

* ``MALA`` and ``kinetic ABOBA`` (γ = 1) on p;
* ``WJS-MALA σ`` and ``WJS-ABOBA σ``: :class:`langevin.diffusion.WalkJump` on the analytic
  p_σ (:func:`langevin.diffusion.smoothed`) for σ ∈ {1, 2}: one gradient per step (the jump
  reuses the walk's gradient);
* ``CLMC m``: :func:`langevin.diffusion.chain_of_log_concave` with σ = 2 and m ∈ {4, 16}
  measurements, MALA inner chains (step 0.4σ²: each conditional has scale about σ); one
  jump per chain at the end, so it runs as many chains
  as the others keep draws (512 chains; budget = m × inner steps + 1 per chain).

**Metrics**, at several budgets B of gradient evaluations per chain (warm-up included):

* mode coverage: the fraction of the 4 modes visited (a draw within 2 of a mode's mean) per
  chain, averaged over chains;
* per-mode mass: the fraction of draws nearest each mode, against the exact weights (the
  largest absolute error);
* W2 (exact optimal transport, POT; :func:`langevin.diagnostics.wasserstein`) between 1000
  draws (evenly thinned over chains) and 1000 exact draws of p, and, for walk-jump, also
  against exact draws of its own limit law x̂(Y), Y ~ p_σ (walk-jump samples posterior
  means, not p). The W2 of two independent exact samples of p is the noise floor.

Writes ``benchmarks/results/walk_jump_mixture.md`` (``--out`` another directory).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import langevin
from benchmarks._common import load_at_end, machine_at_start
from langevin.diagnostics import wasserstein
from langevin.diffusion import (
    WalkJump,
    chain_of_log_concave,
    posterior_mean_mixture,
    sample_mixture,
    smoothed,
)

RESULTS = Path(__file__).parent / "results"
MEANS = np.array([[-4.0, -4.0], [4.0, -4.0], [-4.0, 4.0], [4.0, 4.0]])
WEIGHTS = np.array([0.4, 0.3, 0.2, 0.1])
SD = 0.5
N_W2 = 1000


def target():
    return langevin.targets.gaussian_mixture(MEANS, sds=np.full(4, SD), weights=WEIGHTS)


def thin(draws: np.ndarray, n: int) -> np.ndarray:
    flat = draws.reshape(-1, draws.shape[-1])
    idx = np.linspace(0, len(flat) - 1, min(n, len(flat))).astype(int)
    return flat[idx]


def metrics(draws: np.ndarray, exact: np.ndarray, limit: np.ndarray | None) -> dict:
    """``draws``: (chains, n, 2)."""
    d2 = ((draws[..., None, :] - MEANS) ** 2).sum(-1)  # (chains, n, 4)
    visited = (d2 < 4.0).any(axis=1).mean(axis=1)  # per chain: fraction of modes within 2
    nearest = d2.argmin(-1).ravel()
    mass = np.bincount(nearest, minlength=4) / nearest.size
    sample = thin(draws, N_W2)
    out = {
        "coverage": float(visited.mean()),
        "mass": mass,
        "mass_err": float(np.abs(mass - WEIGHTS).max()),
        "w2_p": wasserstein(sample, exact[: len(sample)]),
    }
    out["w2_limit"] = wasserstein(sample, limit[: len(sample)]) if limit is not None else np.nan
    return out


def run_chain_sampler(name, tgt, kernel, budgets, chains, warmup, seed, limit, exact):
    t0 = time.perf_counter()
    trace = langevin.sample(tgt, kernel, chains=chains, warmup=warmup,
                            draws=max(budgets) - warmup, seed=seed, progress=False,
                            initial_position=MEANS[3])  # fmt: skip
    seconds = time.perf_counter() - t0
    rows = []
    for b in budgets:
        m = metrics(trace.draws[:, : b - warmup], exact, limit)
        rows.append({"sampler": name, "budget": b, "seconds": seconds, **m})
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    budgets = {"tiny": [200], "quick": [500, 2000], "full": [500, 2000, 8000]}[mode]
    clmc_chains = {"tiny": 64, "quick": 512, "full": 1000}[mode]
    info = machine_at_start(f"walk_jump_mixture ({mode})")
    rng = np.random.default_rng(0)
    p = target()
    exact = sample_mixture(p, N_W2, rng)
    floor = wasserstein(sample_mixture(p, N_W2, rng), exact)
    warmup, chains = 100, 8
    rows = []
    aboba = dict(friction=1.0, discretization="aboba")
    rows += run_chain_sampler("MALA", p, langevin.MALA(0.3), budgets, chains, warmup, 1, None,
                              exact)  # fmt: skip
    rows += run_chain_sampler("kinetic ABOBA", p, langevin.KineticLangevin(0.3, **aboba),
                              budgets, chains, warmup, 2, None, exact)  # fmt: skip
    for sigma in (1.0, 2.0):
        ps = smoothed(p, sigma)
        limit = posterior_mean_mixture(p, sigma, sample_mixture(ps, N_W2, rng))
        h = 0.5 * (SD**2 + sigma**2)  # a fixed step ~ the smoothed mode's variance
        rows += run_chain_sampler(f"WJS-MALA σ={sigma:g}", ps, WalkJump(langevin.MALA(h), sigma),
                                  budgets, chains, warmup, 3, limit, exact)  # fmt: skip
        kin = langevin.KineticLangevin(0.8 * np.sqrt(SD**2 + sigma**2), **aboba)
        rows += run_chain_sampler(f"WJS-ABOBA σ={sigma:g}", ps, WalkJump(kin, sigma), budgets,
                                  chains, warmup, 4, limit, exact)  # fmt: skip
    sigma = 2.0
    for m in (4, 16):
        s_m = sigma / np.sqrt(m)  # the jump's level: its limit law is x̂ at noise σ/√m
        limit = posterior_mean_mixture(p, s_m, sample_mixture(smoothed(p, s_m), N_W2, rng))
        for b in budgets:
            steps = max((b - 1) // m, 1)
            t0 = time.perf_counter()
            r = chain_of_log_concave(
                lambda k: smoothed(p, sigma / np.sqrt(k)),
                langevin.MALA(0.4 * sigma**2), sigma=sigma, m=m, steps=steps,
                chains=clmc_chains, initial_position=MEANS[3], seed=5,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            # one jump per chain: coverage is over chains (did any stage reach the mode)
            met = metrics(r.jumps[None], exact, limit)
            met["coverage"] = float(np.nan)
            rows.append({"sampler": f"CLMC σ=2 m={m}", "budget": m * steps + 1,
                         "seconds": seconds, **met})  # fmt: skip
    load_at_end(info)
    write(args.out / "walk_jump_mixture.md", rows, floor, info, mode, clmc_chains)
    for r in rows:
        print(
            f"{r['sampler']:>20s} B={r['budget']:5d} coverage={r['coverage']:.2f} "
            f"mass_err={r['mass_err']:.3f} W2(p)={r['w2_p']:.3f} W2(limit)={r['w2_limit']:.3f}"
        )
    return rows


def write(path: Path, rows: list[dict], floor: float, info: dict, mode: str,
          clmc_chains: int) -> None:  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Walk-jump vs MALA and kinetic Langevin on a well-separated mixture",
        "",
        f"`python -m benchmarks.walk_jump_mixture{'' if mode == 'full' else ' --' + mode}` "
        "(see the script's docstring for the protocol). Four modes at (±4, ±4), sd 0.5, "
        "weights (0.4, 0.3, 0.2, 0.1); every chain starts at the lightest mode (4, 4). "
        "8 chains per sampler (CLMC: "
        f"{clmc_chains} chains, one jump each). Budget B = gradient evaluations per chain, "
        "warm-up (100) included.",
        "",
        f"W2 noise floor (two independent exact samples of {N_W2}): **{floor:.3f}**.",
        "",
        "| sampler | B | modes visited | mass error (max) | mass per mode | W2 to p "
        "| W2 to its limit law | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mass = ", ".join(f"{m:.2f}" for m in r["mass"])
        cov = "—" if not np.isfinite(r["coverage"]) else f"{r['coverage']:.2f}"
        lim = "—" if not np.isfinite(r["w2_limit"]) else f"{r['w2_limit']:.3f}"
        lines.append(f"| {r['sampler']} | {r['budget']} | {cov} | {r['mass_err']:.3f} | "
                     f"({mass}) | {r['w2_p']:.3f} | {lim} | {r['seconds']:.1f} |")  # fmt: skip
    lines += [
        "",
        'Exact weights: (0.40, 0.30, 0.20, 0.10). "W2 to its limit law": walk-jump\'s draws '
        "are posterior means x̂(Y), Y ~ p_σ, whose law is not p (it is shrunk towards the "
        "modes' centres and smeared between modes); that column compares with exact draws "
        "of that law (for CLMC: x̂ at the level σ/√m, whose law tends to p as m → ∞).",
        "",
        "Reading: on four modes 8 apart, W2 between finite samples is dominated by how the "
        "mass splits between modes (moving 1% of the mass costs about 0.8 in W2), so W2 "
        "values within the noise floor cannot be told apart at this sample size; the mass "
        "errors are the sharper measure. MALA and kinetic Langevin on p never leave the "
        "starting mode (coverage 0.25: the one they start in).",
        "",
        "## Machine",
        "",
        "2-core CPU, no GPU, shared with other jobs (timings are indicative only).",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
