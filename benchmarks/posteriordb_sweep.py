"""Every exact kernel on every posteriordb posterior shipped with langevin, against the references.

Run from the repository root::

    python -m benchmarks.posteriordb_sweep --quick     # the table in results/ (~1 h, 2 cores)
    python -m benchmarks.posteriordb_sweep             # longer runs (module docstring)
    python -m benchmarks.posteriordb_sweep --quick --posteriors sblrc-blr --kernels NUTS

Kernels (the exact, MH-corrected or Hamiltonian ones): ``MALA``, ``Barker``, ``HMC`` and
``NUTS``, each on the Numba backend; ``NUTS`` also on the JAX backend (float64: the script
turns JAX's x64 flag on for itself). Posteriors: :data:`langevin.targets.posteriordb_models.
POSTERIORDB_NAMES`, the 13 posteriordb posteriors that have reference draws (posteriordb's
``garch-garch11`` and ``mesquite-logmesquite`` have none and are not in the package).

Settings (:data:`SETTINGS`; 4 chains, seed 1, the chains start at the target's
``initial_position`` plus U(−0.1, 0.1) jitter):

* MALA ``langevin.MALA(1e-3)`` and Barker ``langevin.kernels.Barker(1e-2)``: identity
  preconditioning (neither adapts a mass matrix); warm-up: dual averaging of the step size
  toward acceptance 0.574; draws thinned by 5.
* HMC ``langevin.HMC(1e-2, n_leapfrog=16)`` and NUTS ``langevin.NUTS(1e-1)``: dual
  averaging toward 0.8 and a diagonal mass matrix in Stan's windows.
* ``--quick``: MALA/Barker 4 × (5 000 warm-up + 2 000 kept draws × thin 5); HMC/NUTS
  4 × (1 000 + 1 000). Default: MALA/Barker 4 × (10 000 + 4 000 × 5); HMC/NUTS
  4 × (2 000 + 4 000).

Reported per kernel × posterior (× backend): the largest |z| over coordinates of the error
of the posterior mean and of the posterior sd against the reference (unconstrained
coordinates), ``z = (estimate − reference) / √(MCSE² + MCSE_ref²)`` with our MCSE from
ArviZ's ESS (mean: sd/√ESS_mean; sd: the delta method, ``benchmarks.ess_table.mcse_sd``) and
the reference's own (0 for posteriordb's exact quadrature moments; else from its 10 Stan
chains, ``benchmarks.ess_table.reference_sd_mcse``); the largest rank-normalised split R-hat;
the smallest bulk and tail ESS (ArviZ; Vehtari et al. 2021); divergent transitions after
warm-up (Hamiltonian kernels), as a count and a percentage; the acceptance rate; the wall
time of the run, compilation included (the first run of a kernel × posterior × backend in a
fresh process compiles; Numba's on-disk cache makes later processes faster).

A cell **fails** (and says why; it stays in the table) when any of: the run raised or a chain
stopped; divergences > 0; R-hat > 1.01; bulk or tail ESS < 400 (too few to trust the MCSE the
z-scores use: 100 per chain, Vehtari et al. 2021); max |z| ≥ 4 for a mean or an sd (2·dim
z-scores per cell, so 4 is a false alarm about once in 300 cells of 26-D). The "why" names the
failed criteria with the worst coordinate and, for a posterior whose model.md explains its
difficulty, that explanation (``HARD``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import ess

RESULTS = Path(__file__).resolve().parent / "results"
KERNELS = ("MALA", "Barker", "HMC", "NUTS")
Z_FAIL = 4.0
RHAT_FAIL = 1.01
ESS_FAIL = 400.0
CHAINS = 4
SEED = 1

# (warm-up, kept draws, thin) per kernel, quick and default
SETTINGS = {
    True: {"MALA": (5000, 2000, 5), "Barker": (5000, 2000, 5), "HMC": (1000, 1000, 1),
           "NUTS": (1000, 1000, 1)},
    False: {"MALA": (10000, 4000, 5), "Barker": (10000, 4000, 5), "HMC": (2000, 4000, 1),
            "NUTS": (2000, 4000, 1)},
}  # fmt: skip

# Why a posterior is hard, from its model.md ("Why hard"), quoted in a failing cell's reason
HARD = {
    "eight_schools-eight_schools_centered": "the centred funnel: curvature in θ grows as 1/τ²",
    "kilpisjarvi_mod-kilpisjarvi": "corr(α, β) = −0.99998, cond(cov) 7e11: a diagonal or no "
    "mass matrix leaves the ridge",
    "kidiq-kidscore_interaction": "uncentred interaction: corr up to 0.99, cond(corr) 4e3",
    "kidiq-kidscore_momiq": "corr(β1, β2) = −0.99, sd ratio 175",
    "diamonds-diamonds": "26-D, cond(corr) 2.6e5: very long trajectories (posteriordb's own "
    "Stan run used adapt_delta 0.99, max_treedepth 20)",
    "sblrc-blr": "scale disparity: sd(β) 1e-3 vs sd(log σ) 0.07 (cond(cov) 3e4)",
    "arK-arK": "correlated lags (cond(cov) ~1e3)",
    "earnings-logearn_interaction_z": "sd ratio ~50 between coordinates",
    "nes1972-nes": "cond(corr) 270, sd ratio 20",
    "gp_pois_regr-gp_pois_regr": "Poisson curvature, corr up to 0.97 (posteriordb's own Stan "
    "run used adapt_delta 0.99, max_treedepth 15)",
}


@dataclass
class Cell:
    """One kernel × posterior × backend run and its figures against the reference."""

    posterior: str
    kernel: str
    backend: str
    dim: int = 0
    settings: str = ""
    z_mean: float = math.nan
    z_mean_at: str = ""
    z_sd: float = math.nan
    z_sd_at: str = ""
    rhat: float = math.nan
    rhat_at: str = ""
    ess_bulk: float = math.nan
    ess_tail: float = math.nan
    divergences: int | None = None
    divergent_pct: float | None = None
    max_depth_pct: float | None = None  # NUTS: transitions that hit max_depth
    acceptance: float = math.nan
    seconds: float = math.nan
    error: str = ""
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def failed(self) -> bool:
        return bool(self.reasons)


def make_kernel(name: str) -> Any:
    """The kernel ``name`` (one of :data:`KERNELS`) with the module docstring's settings."""
    import langevin

    if name == "MALA":
        return langevin.MALA(1e-3)
    if name == "Barker":
        return langevin.kernels.Barker(1e-2)
    if name == "HMC":
        return langevin.HMC(1e-2, n_leapfrog=16)
    if name == "NUTS":
        return langevin.NUTS(1e-1)
    raise ValueError(f"kernel must be one of {KERNELS}; got {name!r}")


def coordinate_labels(target: Any) -> list[str]:
    """``beta[1]``-style labels of the flat position (1-based, as posteriordb)."""
    labels = []
    for name, (_, shape) in target.blocks.items():
        size = math.prod(shape)
        labels += [name] if shape == () else [f"{name}[{i}]" for i in range(1, size + 1)]
    return labels


def figures(draws: np.ndarray, target: Any) -> dict[str, np.ndarray]:
    """Per unconstrained coordinate of ``draws`` (chains, draws, dim): ``z_mean`` and ``z_sd``
    against ``target.reference`` in units of the combined MCSE (module docstring), ``rhat``,
    ``ess_bulk``, ``ess_tail`` (ArviZ)."""
    import arviz as az

    from benchmarks.ess_table import mcse_sd, reference_sd_mcse

    ref = target.reference
    x = np.asarray(draws, dtype=np.float64)
    dim = x.shape[-1]
    out = {k: np.empty(dim) for k in ("z_mean", "z_sd", "rhat", "ess_bulk", "ess_tail")}
    ref_sd_mcse = reference_sd_mcse(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(dim):
            xi = x[..., i]
            sd = float(np.std(xi, ddof=1))
            se_mean = sd / math.sqrt(float(ess(xi, "mean")))
            out["z_mean"][i] = (float(np.mean(xi)) - ref.mean[i]) / math.hypot(
                se_mean, ref.mean_mcse[i]
            )
            out["z_sd"][i] = (sd - ref.sd[i]) / math.hypot(mcse_sd(xi), ref_sd_mcse[i])
            out["rhat"][i] = float(az.rhat(xi))
            out["ess_bulk"][i] = float(ess(xi, "bulk"))
            out["ess_tail"][i] = float(ess(xi, "tail"))
    for key in ("z_mean", "z_sd", "rhat"):
        out[key][~np.isfinite(out[key])] = np.inf
    for key in ("ess_bulk", "ess_tail"):
        out[key][~np.isfinite(out[key])] = 0.0
    return out


def evaluate(cell: Cell, draws: np.ndarray, target: Any, diverging: np.ndarray | None) -> None:
    """Fill ``cell``'s figures from ``draws`` (chains, draws, dim) and mark its failures."""
    labels = coordinate_labels(target)
    f = cell.figures = figures(draws, target)
    i_mean, i_sd, i_rhat = (int(np.argmax(np.abs(f[k]))) for k in ("z_mean", "z_sd", "rhat"))
    cell.z_mean, cell.z_mean_at = float(f["z_mean"][i_mean]), labels[i_mean]
    cell.z_sd, cell.z_sd_at = float(f["z_sd"][i_sd]), labels[i_sd]
    cell.rhat, cell.rhat_at = float(f["rhat"][i_rhat]), labels[i_rhat]
    cell.ess_bulk, cell.ess_tail = float(f["ess_bulk"].min()), float(f["ess_tail"].min())
    if diverging is not None:
        cell.divergences = int(np.sum(diverging))
        cell.divergent_pct = 100.0 * cell.divergences / diverging.size
    judge(cell)


def judge(cell: Cell) -> None:
    """The failure criteria of the module docstring, as reasons."""
    r = cell.reasons
    if cell.error:
        r.append(cell.error)
    if cell.divergences:
        r.append(f"divergences {cell.divergent_pct:.2g} %")
    if not cell.rhat <= RHAT_FAIL:
        r.append(f"R-hat {cell.rhat:.3g} ({cell.rhat_at})")
    if not min(cell.ess_bulk, cell.ess_tail) >= ESS_FAIL:
        r.append(f"ESS bulk/tail {cell.ess_bulk:.0f}/{cell.ess_tail:.0f} < {ESS_FAIL:.0f}")
    if not abs(cell.z_mean) < Z_FAIL:
        r.append(f"mean z = {cell.z_mean:.1f} ({cell.z_mean_at})")
    if not abs(cell.z_sd) < Z_FAIL:
        r.append(f"sd z = {cell.z_sd:.1f} ({cell.z_sd_at})")


def run_cell(
    posterior: str,
    kernel: str,
    backend: str,
    quick: bool = True,
    settings: tuple[int, int, int] | None = None,
    seed: int = SEED,
    target_acceptance: float | None = None,
) -> Cell:
    """Sample ``posterior`` with ``kernel`` on ``backend`` and evaluate it (:class:`Cell`).

    ``settings``: ``(warm-up, kept draws, thin)``, default :data:`SETTINGS`;
    ``target_acceptance``: the warm-up's, default the kernel's. An exception is caught and
    recorded as the cell's failure.
    """
    import langevin
    from langevin.driver import DivergentTransitionWarning

    warmup, draws, thin = settings or SETTINGS[quick][kernel]
    thinning = f" × {thin}" if thin > 1 else ""
    cell = Cell(posterior, kernel, backend, settings=f"{CHAINS} × ({warmup} + {draws}{thinning})")
    t0 = time.perf_counter()
    try:
        target = langevin.targets.posteriordb(posterior)
        cell.dim = target.dim
        start = np.asarray(target.initial_position, dtype=np.float64)
        rng = np.random.default_rng(seed)
        starts = start + rng.uniform(-0.1, 0.1, size=(CHAINS, target.dim))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergentTransitionWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            the_kernel = make_kernel(kernel)
            trace = langevin.sample(target, the_kernel, chains=CHAINS, warmup=warmup,
                                    draws=draws, thin=thin, backend=backend, seed=seed,
                                    initial_position=starts, progress=False,
                                    target_acceptance=target_acceptance)  # fmt: skip
        cell.seconds = time.perf_counter() - t0
        stats = trace.sample_stats
        cell.acceptance = float(np.mean(stats["acceptance_rate"]))
        if trace.stopped_chains:
            cell.error = f"chains stopped: {trace.stopped_chains}"
        diverging = np.asarray(stats["diverging"]) if kernel in ("HMC", "NUTS") else None
        if kernel == "NUTS":
            depth = np.asarray(stats["tree_depth"])
            cell.max_depth_pct = 100.0 * float(np.mean(depth >= the_kernel.max_depth))
        evaluate(cell, np.asarray(trace.draws), target, diverging)
    except Exception as exc:  # the sweep records a failing kernel and goes on
        cell.seconds = time.perf_counter() - t0
        cell.error = f"raised {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        traceback.print_exc()
        judge(cell)
    return cell


def fmt(v: float | None, spec: str) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else "nan"
    return format(v, spec)


def cell_row(c: Cell) -> str:
    short = c.posterior
    div = "–" if c.divergences is None else f"{c.divergences} ({c.divergent_pct:.2g} %)"
    verdict = "ok" if not c.failed else "**FAIL**: " + "; ".join(c.reasons)
    if c.failed and c.max_depth_pct:
        verdict += f"; {c.max_depth_pct:.2g} % of transitions at max_depth"
    if c.failed and not c.error and c.posterior in HARD:
        verdict += f" — {HARD[c.posterior]}"
    return (f"| {short} | {c.dim} | {c.kernel} | {c.backend} | {c.settings} | "
            f"{fmt(abs(c.z_mean), '.1f')} ({c.z_mean_at}) | "
            f"{fmt(abs(c.z_sd), '.1f')} ({c.z_sd_at}) | "
            f"{fmt(c.rhat, '.3f')} | {fmt(c.ess_bulk, '.0f')} | {fmt(c.ess_tail, '.0f')} | {div} | "
            f"{fmt(c.acceptance, '.2f')} | {fmt(c.seconds, '.0f')} | {verdict} |")  # fmt: skip


def write_report(
    cells: list[Cell], path: Path, command: str, info: dict[str, str], quick: bool
) -> None:
    """The markdown table of every cell, with the machine, the settings and the notes."""
    n_fail = sum(c.failed for c in cells)
    lines = [
        "# posteriordb sweep: every exact kernel on every shipped posterior",
        "",
        f"Made by `{command}` on {info.get('date', '?')}. Method, settings and the failure "
        "criteria: the docstring of `benchmarks/posteriordb_sweep.py`.",
        "",
        "**Machine:** 2-core CPU, no GPU, loaded by other jobs (other agents' tests and "
        "benchmarks ran at the same time): the seconds are wall-clock, compilation included, "
        "and inflated by the load; compare them only loosely.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        "",
        "## Settings",
        "",
        *[
            f"- {k}: {CHAINS} chains × ({w} warm-up + {d} kept draws"
            + (f" × thin {t})" if t > 1 else ")")
            for k, (w, d, t) in SETTINGS[quick].items()
        ],
        "- MALA, Barker: identity preconditioning, dual averaging of the step size (0.574); "
        "HMC (16 leapfrog steps), NUTS: dual averaging (0.8) and a diagonal mass matrix.",
        "- Starts: the target's `initial_position` (least squares or the L-BFGS mode; "
        "eight_schools: complete pooling) + U(−0.1, 0.1) jitter; seed 1.",
        f"- A cell fails on: an error or a stopped chain; divergences > 0; R-hat > {RHAT_FAIL}; "
        f"bulk or tail ESS < {ESS_FAIL:.0f}; max |z| ≥ {Z_FAIL:g} for a mean or an sd.",
        "",
        f"## Table ({len(cells)} cells, {n_fail} failing)",
        "",
        "z: error in units of the combined MCSE (ours and the reference's), the largest over "
        "the unconstrained coordinates (which one in brackets). ESS: the smallest over "
        "coordinates. Seconds: the whole `sample` call, compilation included.",
        "",
        "| posterior | dim | kernel | backend | chains × (warm-up + draws) | max \\|z\\| mean | "
        "max \\|z\\| sd | max R-hat | min bulk ESS | min tail ESS | divergences | accept | s | "
        "verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[cell_row(c) for c in cells],
        "",
        "## Notes",
        "",
        "- Not in the sweep: posteriordb's `garch-garch11` and `mesquite-logmesquite`: the "
        "snapshot has no reference draws for them (only `data.json`), so there is nothing to "
        "compare with; they are not in the package.",
        "- References: exact quadrature moments (MCSE 0) for the regression coefficients and "
        "every eight_schools coordinate; Stan's 10 × 1000 reference draws (with their MCSE) "
        "for the rest (`langevin/targets/posteriordb_models.py`).",
        "- HMC runs a fixed 16 leapfrog steps (no jitter of the trajectory length): where its "
        "adapted step makes the trajectory close to a multiple of a half-period of a "
        "near-Gaussian direction, the chain is near-periodic (the low_dim_gauss_mix cell: per "
        "chain ESS of μ₁ 11–245 from 1000 draws while other coordinates anti-correlate, "
        "ESS > draws; measured separately with the same seed). NUTS has no such failure.",
        "- MALA and Barker have no mass matrix: on the ill-conditioned posteriors (kilpisjarvi, "
        "the kidiq pair, diamonds, sblrc) their failures are the expected outcome of isotropic "
        "proposals, not a defect of the implementation; their figures say how far off a "
        "run of this length is.",
    ]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> list[Cell]:
    from langevin.targets.posteriordb_models import POSTERIORDB_NAMES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the shorter runs (docstring)")
    parser.add_argument("--posteriors", nargs="*", default=list(POSTERIORDB_NAMES))
    parser.add_argument("--kernels", nargs="*", default=list(KERNELS), choices=KERNELS)
    parser.add_argument(
        "--jax-kernels",
        nargs="*",
        default=["NUTS"],
        choices=KERNELS,
        help="kernels also run on the JAX backend (default NUTS)",
    )
    parser.add_argument("--out", type=Path, default=None, help="the report (.md) to write")
    args = parser.parse_args(argv)
    for name in args.posteriors:
        if name not in POSTERIORDB_NAMES:
            parser.error(f"--posteriors: {name!r} is not one of {list(POSTERIORDB_NAMES)}")

    import jax

    jax.config.update("jax_enable_x64", True)  # this script's JAX runs are float64
    from benchmarks._common import load_at_end, machine_at_start

    info = machine_at_start("posteriordb sweep", {"jax x64": "on (set by this script)"})
    out = args.out or RESULTS / "posteriordb_sweep.md"
    given = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m benchmarks.posteriordb_sweep", *given])
    cells = []
    for posterior in args.posteriors:
        for kernel in args.kernels:
            backends = ["numba"] + (["jax"] if kernel in args.jax_kernels else [])
            for backend in backends:
                cell = run_cell(posterior, kernel, backend, quick=args.quick)
                print(cell_row(cell), flush=True)
                cells.append(cell)
                # the report so far, so that a long sweep cut short leaves its table
                write_report(cells, out, command, info, args.quick)
    load_at_end(info)
    write_report(cells, out, command, info, args.quick)
    print(f"wrote {out}")
    return cells


if __name__ == "__main__":
    main()
