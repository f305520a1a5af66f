"""How often NeuTra's banana moment test (tests/test_neutra.py) fails, over fits and seeds.

Usage::

    python -m benchmarks.neutra_banana_seeds                       # the test's settings
    python -m benchmarks.neutra_banana_seeds --fit-steps 4000 --batch 256

For each fit seed, a RealNVP (4 blocks, widths 32, 32) is fitted to the banana
``x1 ~ N(0, 4)``, ``x2 | x1 ~ N(0.5 (x1² − 4), 1)`` by reverse KL on JAX, then NeuTra-HMC
(Numba, 4 chains, 500 warm-up, 2000 draws, target acceptance 0.95) runs with each sampling
seed. Per run: the largest |z| of the test's moment z-scores, z of cov[1,1] (var x2 = 9
exactly), the estimate of var x2 and the divergent transitions. The test's threshold is
|z| < 4.56 (stats_helpers.Z_CRIT). Results: ``benchmarks/results/neutra_banana_seeds.md``.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit-steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--fit-seeds", default="0,1,2")
    ap.add_argument("--seeds", default="3,4,5")
    ap.add_argument("--draws", type=int, default=2000)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from langevin.flows import fit_reverse_kl, neutra, realnvp_init
    from tests.stats_helpers import moment_z_scores
    from tests.test_neutra import S2, B, banana

    cov = np.diag([S2, 1 + 2 * B**2 * S2**2])
    print("| fit seed | final loss | seed | max abs z | z cov[1,1] | var x2 | divergent |")
    print("|---|---|---|---|---|---|---|")
    for fs in (int(s) for s in args.fit_seeds.split(",")):
        flow, hist = fit_reverse_kl(banana(), realnvp_init(2, 4, (32, 32), seed=fs),
                                    steps=args.fit_steps, batch_size=args.batch,
                                    learning_rate=3e-3, seed=fs, progress=False)  # fmt: skip
        for seed in (int(s) for s in args.seeds.split(",")):
            r = neutra(banana(), flow=flow, fit_steps=0, chains=4, warmup=500, draws=args.draws,
                       seed=seed, target_acceptance=0.95, progress=False)  # fmt: skip
            z = moment_z_scores(r.x, np.zeros(2), cov)
            div = int(np.sum(r.trace.sample_stats["diverging"]))
            print(f"| {fs} | {np.mean(hist[-50:]):.3f} | {seed} | "
                  f"{max(abs(v) for v in z.values()):.2f} | {z['cov[1,1]']:.2f} | "
                  f"{r.x[..., 1].var():.2f} | {div} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
