"""Structured SG-MCMC against SGLD: ESS per gradient evaluation on a correlated posterior.

Run from the repository root::

    python -m benchmarks.sgmcmc_structured_ess           # ~1 min
    python -m benchmarks.sgmcmc_structured_ess --tiny    # smoke test

Alexos, Boyd & Mandt (2022) report that structured SG-MCMC mixes faster than SGLD (higher
ESS, lower autocorrelation). Measured here on a Bayesian linear regression whose design
couples two groups of coordinates strongly (the posterior's cross-group correlations reach
±0.8; ``tests/test_sgmcmc_structured.py::coupled_regression`` with a stronger coupling
``rho``), full batch (b = n, so only the structure differs), the same step size for all
(h = 0.5/λ_max of the posterior precision, stable for every kernel), 4 chains from the
posterior mean:

* ``SGLD``;
* ``structured`` (plain: M = 2 composites per step, so 2 likelihood gradients per step);
* ``dropout`` (L = 2 composites, keep probability 0.5).

ESS: ArviZ's bulk ESS of each coordinate (rank-normalised, over chains), min over
coordinates; per gradient evaluation = min ESS / (chains × draws × likelihood gradients per
step). The structured chains sample the *mean-field* approximation, not the posterior: their
marginal sds are reported next to the posterior's — faster mixing for a narrower law.

Writes ``benchmarks/results/sgmcmc_structured_ess.md`` (``_tiny`` with ``--tiny``).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from benchmarks._common import RESULTS, load_at_end, load_warning, log, machine_at_start


def coupled(n: int, rho: float, seed: int = 0):
    from langevin.targets.data_targets import linear_regression_data

    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 4))
    X = Z.copy()
    X[:, 2] = rho * Z[:, 0] + np.sqrt(1 - rho**2) * Z[:, 2]
    X[:, 3] = rho * Z[:, 1] + np.sqrt(1 - rho**2) * Z[:, 3]
    X *= 3 / np.sqrt(n)
    y = X @ np.array([1.0, -1.0, 0.5, 0.2]) + rng.normal(size=n)
    return linear_regression_data(X, y, noise_sd=1.0, prior_sd=3.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import arviz as az

    import langevin
    from langevin.kernels.sgmcmc import SGLD
    from langevin.kernels.structured_sgmcmc import StructuredSGLD, group_by_blocks

    info = machine_at_start("structured SG-MCMC vs SGLD: ESS per gradient")
    n, draws, chains = 200, (2000 if args.tiny else 40000), 4
    rows = []
    for rho in (0.8, 0.95):
        target = coupled(n, rho)
        A = np.linalg.inv(target.reference.cov)
        h = 0.5 / np.linalg.eigvalsh(A).max()
        groups = group_by_blocks([2, 2])
        kernels = {
            "SGLD": (SGLD(h, batch_size=n, n_data=n), 1),
            "structured": (StructuredSGLD(h, groups=groups, batch_size=n, n_data=n,
                                          buffer_size=1000), 2),
            "dropout": (StructuredSGLD(h, groups=groups, batch_size=n, n_data=n,
                                       buffer_size=1000, dropout=True, composites=2,
                                       keep_prob=0.5), 2),
        }  # fmt: skip
        for name, (kernel, grads) in kernels.items():
            trace = langevin.sample(target, kernel, backend="numba", chains=chains,
                                    warmup=2000, draws=draws, seed=3, progress=False,
                                    initial_position=target.reference.mean)  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ess = np.array([float(az.ess(trace.draws[..., j], method="bulk"))
                                for j in range(4)])  # fmt: skip
            per_grad = ess.min() / (chains * draws * grads)
            sd_ratio = trace.draws.reshape(-1, 4).std(0) / np.sqrt(np.diag(target.reference.cov))
            rows.append((rho, name, ess.min(), per_grad, sd_ratio))
            log(f"  rho={rho} {name:11s} min ESS {ess.min():9.1f}  ESS/grad {per_grad:.2e}  "
                f"sd/posterior sd {np.round(sd_ratio, 2)}")  # fmt: skip
    load_at_end(info)
    suffix = "_tiny" if args.tiny else ""
    lines = ["# Structured SG-MCMC vs SGLD: ESS per gradient evaluation", ""]
    lines += load_warning(info)
    lines += [
        f"Linear regression, n = {n}, d = 4 in two groups of two, cross-group coupling rho "
        f"(module docstring), full batch, h = 0.5/λ_max, {chains} chains × {draws} draws "
        "after 2000 warm-up steps, Numba. Likelihood gradients per step: SGLD 1, structured "
        "and dropout 2.",
        "",
        "| rho | kernel | min bulk ESS | ESS per gradient | sd / posterior sd (per coordinate) |",
        "|---|---|---|---|---|",
    ]
    for rho, name, ess, per_grad, sd_ratio in rows:
        lines.append(f"| {rho} | {name} | {ess:.0f} | {per_grad:.2e} | "
                     f"{', '.join(f'{v:.2f}' for v in sd_ratio)} |")  # fmt: skip
    lines += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in info.items()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"sgmcmc_structured_ess{suffix}.md").write_text("\n".join(lines) + "\n")
    log(f"wrote {args.out / f'sgmcmc_structured_ess{suffix}.md'}")


if __name__ == "__main__":
    main()
