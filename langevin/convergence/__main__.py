"""``python -m langevin.convergence``: a convergence study from the shell.

Examples::

    python -m langevin.convergence --kernels ULA MALA kinetic_baoab --quick --out results
    python -m langevin.convergence --kernels ULA kinetic_euler --dim 20 --kappa 100 \\
        --step-sizes 0.01 0.02 0.05 0.1 --iterations 1000 --dims 10 100 1000 --coupling
    python -m langevin.convergence --problem quartic --kernels ULA MALA --quick --out q
    python -m langevin.convergence --suite --quick --out suite   # the fixed benchmark suite

Writes ``convergence.csv`` (every number, long format), ``convergence.md`` (fitted orders
beside the theory) and the PNG figures into ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from pathlib import Path

import numpy as np

DEFAULT_KERNELS = ("ULA", "MALA", "kinetic_randomized_midpoint", "kinetic_baoab")


def _parser() -> argparse.ArgumentParser:
    from .theory import builtin_names

    p = argparse.ArgumentParser(
        prog="python -m langevin.convergence",
        description="Convergence-rate study of langevin kernels (W2 to the target).",
        epilog=f"Kernel names: {', '.join(builtin_names())} (HMC_L<n> for any n).",
    )
    p.add_argument("--kernels", nargs="+", default=list(DEFAULT_KERNELS), metavar="NAME")
    p.add_argument("--problem", choices=("gaussian", "quartic"), default="gaussian")
    p.add_argument("--dim", type=int, default=None, help="dimension (default 10; quick: 4)")
    p.add_argument("--kappa", type=float, default=10.0, help="condition number (Gaussian)")
    p.add_argument("--step-sizes", nargs="+", type=float, default=None, metavar="H")
    p.add_argument("--iterations", type=int, default=None, help="horizon of W2 vs iterations")
    p.add_argument("--dims", nargs="*", type=int, default=None,
                   help="dimensions of the cost curve (Gaussian; empty: none)")  # fmt: skip
    p.add_argument("--eps", type=float, default=0.1, help="W2 accuracy of the cost")
    p.add_argument("--n-chains", type=int, default=None)
    p.add_argument("--backend", choices=("jax", "numba"), default="jax")
    p.add_argument("--coupling", action="store_true", help="add synchronous-coupling bounds")
    p.add_argument("--friction", type=float, default=2.0, help="γ of the kinetic kernels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="small grids (a minute or two)")
    p.add_argument("--x64", action="store_true",
                   help="run JAX in float64 for this run (jax.enable_x64 around it)")  # fmt: skip
    p.add_argument("--suite", action="store_true",
                   help="run the fixed suite of langevin.convergence.suite instead")  # fmt: skip
    p.add_argument("--out", default="convergence_results", help="output folder")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> list[Path]:
    args = _parser().parse_args(argv)
    out = Path(args.out)
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, flush=True))
    scope = contextlib.nullcontext()
    if args.x64:
        import jax

        scope = jax.enable_x64(True)
    with scope:
        if args.suite:
            from .suite import FULL, QUICK, run

            result = run(QUICK if args.quick else FULL, out, verbose=not args.quiet)
            return list(result["files"])
        return _study(args, out, log)


def _study(args, out: Path, log) -> list[Path]:
    import matplotlib

    from . import GaussianProblem, QuarticProblem, study
    from .theory import TheoryMismatchWarning

    matplotlib.use("Agg")  # files only: no window from a shell run
    quick = args.quick
    dim = args.dim if args.dim is not None else (4 if quick else 10)
    if args.problem == "gaussian":
        problem = GaussianProblem(dim, kappa=args.kappa, seed=args.seed)
        default_dims = [4, 16, 64] if quick else [10, 100, 1000]
    else:
        problem = QuarticProblem(dim if args.dim is not None else 1)
        default_dims = None
    hs = args.step_sizes or [float(h) for h in np.geomspace(0.02, 0.4, 5 if quick else 9)]
    dims = default_dims if args.dims is None else (args.dims or None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TheoryMismatchWarning)
        s = study(
            args.kernels,
            problem,
            step_sizes=hs,
            iterations=args.iterations or (200 if quick else 2000),
            dims=dims,
            eps=args.eps,
            backend=args.backend,
            n_chains=args.n_chains or (5000 if quick else 20_000),
            coupling=args.coupling,
            friction=args.friction,
            seed=args.seed,
            progress=log,
        )
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    paths = s.save(out)
    log(s.to_markdown().split("\n* *kind*")[0])
    log("wrote " + ", ".join(str(p) for p in paths))
    return paths


if __name__ == "__main__":
    main()
