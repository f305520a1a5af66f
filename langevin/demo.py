"""The main job: sample a real posterior with MALA on the Numba backend, and check it.

Run ``python -m langevin.demo``. It samples the posteriordb posterior
``earnings-logearn_interaction_z`` (a 5-parameter regression of log earnings on height and
sex, Gelman & Hill 2006) with MALA, prints the ArviZ summary next to the exact posterior
moments, the W2 distance from the draws to posteriordb's reference draws (with the
distance between two halves of the reference, the floor a finite sample cannot beat), and
writes a trace plot.

Options: ``--chains``, ``--warmup``, ``--draws``, ``--seed``, ``--out`` (PNG path),
``--backend`` (``numba`` or ``jax``).
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m langevin.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--draws", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--backend", choices=("numba", "jax"), default="numba")
    parser.add_argument("--out", default="langevin_demo_trace.png")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    import pandas as pd

    import langevin
    from langevin import _arviz
    from langevin.diagnostics import w2_to_reference

    target = langevin.targets.earnings_logearn_interaction_z()
    print(f"Target: {target.name} ({target.dim} unconstrained parameters)")
    print(f"Kernel: MALA, {args.chains} chains x ({args.warmup} warm-up + {args.draws} draws), "
          f"backend={args.backend!r}\n")  # fmt: skip
    t0 = time.perf_counter()
    trace = langevin.sample(
        target,
        langevin.MALA(step_size=0.01),
        chains=args.chains,
        warmup=args.warmup,
        draws=args.draws,
        backend=args.backend,
        seed=args.seed,
        progress=not args.no_progress,
    )
    wall = time.perf_counter() - t0
    print(f"\n{trace}")
    print(f"wall time {wall:.2f} s (sampling {trace.elapsed:.2f} s); adapted step sizes "
          f"{np.array2string(trace.step_size, precision=4)}\n")  # fmt: skip

    idata = trace.to_arviz(constrained=True)
    # unrounded numbers on ArviZ 0.x and 1.x alike (1.x rounds to strings by default)
    summary = _arviz.summary(idata, kind="all", round_to="none")
    exact = target.reference.constrained
    summary["exact mean"] = [exact[_posteriordb_label(name)]["mean"] for name in summary.index]
    summary["z"] = (summary["mean"] - summary["exact mean"]) / summary["mcse_mean"]
    with pd.option_context("display.width", 140, "display.max_columns", 20):
        print("Posterior (constrained parameters) vs exact moments (posteriordb quadrature):")
        columns = ["mean", "exact mean", "z", "sd", "mcse_mean", "ess_bulk", "r_hat"]
        print(pd.DataFrame(summary[columns]).astype(float).round(5))

    w2 = w2_to_reference(trace, target.reference.draws, seed=args.seed)
    print(f"\nW2 to posteriordb's reference draws (unconstrained coordinates): {w2}")

    # one panel per coefficient: their scales differ (the intercept is ~9.5, the rest ~0.1)
    figure = _arviz.plot_trace(idata, compact=False, figsize=(11, 10))
    figure.tight_layout()
    figure.savefig(args.out, dpi=90)
    print(f"trace plot written to {args.out}")
    bad = (summary["z"].abs() > 4).sum()
    return 0 if bad == 0 and not trace.diverged else 1


def _posteriordb_label(arviz_label: str) -> str:
    """ArviZ counts from 0 (``beta[0]``), posteriordb from 1 (``beta[1]``)."""
    if "[" not in arviz_label:
        return arviz_label
    name, index = arviz_label[:-1].split("[")
    return f"{name}[{int(index) + 1}]"


if __name__ == "__main__":
    sys.exit(main())
