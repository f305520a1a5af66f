"""Run the experiments of a configuration and write the results."""

from __future__ import annotations

import datetime
import os
import platform
import sys
import time
from pathlib import Path

from ..theory import kernel_specs
from ..twin import gradient_evaluations
from .config import Config
from .experiments import (
    bias_gaussian,
    cost_1d,
    cost_dimension,
    mc_gaussian,
    path_gaussian,
    quartic,
)
from .report import read_csv, summarise, write_csv, write_markdown, write_plots

__all__ = ["EXPERIMENTS", "report_only", "run"]

EXPERIMENTS = {
    "bias_gaussian": bias_gaussian,
    "path_gaussian": path_gaussian,
    "cost_dimension": cost_dimension,
    "cost_1d": cost_1d,
    "mc_gaussian": mc_gaussian,
    "quartic": quartic,
}


def _jax_precision() -> str:
    import jax

    return "float64" if jax.config.jax_enable_x64 else "float32 (JAX's default)"


def run(
    cfg: Config,
    out_dir: Path | str,
    *,
    experiments: tuple[str, ...] | None = None,
    verbose: bool = True,
) -> dict:
    """Run ``cfg``'s experiments and write CSV, Markdown and PNG files to ``out_dir``.

    Args:
        cfg: a :class:`Config` (``FULL``, ``QUICK``, ``TINY`` or your own).
        out_dir: where to write (created).
        experiments: names from ``EXPERIMENTS`` to run (default: all).
        verbose: print progress.

    Returns:
        ``{"rows", "summary", "files", "seconds"}``.

    The Monte Carlo runs use JAX in the precision it is in (``jax.enable_x64(True)`` around
    the call for float64, as ``python -m benchmarks.convergence`` does); the report says
    which.

    Example (the ``TINY`` configuration takes seconds)::

        from langevin.convergence.suite import TINY, run
        result = run(TINY, "/tmp/convergence", verbose=False)
        for line in result["summary"].table:
            print(line["kernel"], line.get("gauss_slope"), line.get("dim_slope"))
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        if verbose:
            print(msg, flush=True)

    specs = [
        s
        for s in kernel_specs(cfg.friction, cfg.n_leapfrog)
        if cfg.kernels is None or s.name in cfg.kernels
    ]
    grads = {s.name: gradient_evaluations(s.make(0.1)) for s in specs}
    log(f"kernels: {', '.join(f'{s.name} [{s.kind}]' for s in specs)}")
    t_start = time.perf_counter()
    rows: list[dict] = []
    timings = {}
    for name, fn in EXPERIMENTS.items():
        if experiments is not None and name not in experiments:
            continue
        log(f"{name} ...")
        t0 = time.perf_counter()
        rows += fn(cfg, specs, log)
        timings[name] = time.perf_counter() - t0
        log(f"{name}: {timings[name]:.1f} s")
    seconds = time.perf_counter() - t_start
    summary = summarise(cfg, specs, rows, grads)
    stem = "convergence"
    csv_path = out / f"{stem}.csv"
    md_path = out / f"{stem}.md"
    write_csv(rows, csv_path)
    pngs = write_plots(summary, out)
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover - not on every platform
        load = ("n/a",)
    meta = {
        "configuration": repr(cfg),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": sys.version.split()[0],
        "Monte Carlo precision (JAX)": _jax_precision(),
        "load average at the end": ", ".join(
            f"{v:.2f}" if isinstance(v, float) else v for v in load
        ),
        "wall-clock seconds": f"{seconds:.0f} ("
        + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
        + ")",
    }
    write_markdown(summary, md_path, meta)
    log(f"wrote {csv_path}, {md_path}, {', '.join(p.name for p in pngs)} in {seconds:.0f} s")
    return {
        "rows": rows,
        "summary": summary,
        "files": [csv_path, md_path, *pngs],
        "seconds": seconds,
    }


def report_only(cfg: Config, out_dir: Path | str) -> list[Path]:
    """Rewrite ``convergence.md`` and the PNGs from the ``convergence.csv`` of a finished run
    of ``cfg`` in ``out_dir`` (nothing is recomputed; the run's metadata lines are kept)."""
    out = Path(out_dir)
    rows = read_csv(out / "convergence.csv")
    specs = [s for s in kernel_specs(cfg.friction, cfg.n_leapfrog)
             if cfg.kernels is None or s.name in cfg.kernels]  # fmt: skip
    grads = {s.name: gradient_evaluations(s.make(0.1)) for s in specs}
    summary = summarise(cfg, specs, rows, grads)
    meta = {}
    md_path = out / "convergence.md"
    if md_path.exists():
        text = md_path.read_text()
        if "## Run" in text:
            for line in text.split("## Run", 1)[1].splitlines():
                if line.startswith("* ") and ": " in line:
                    key, value = line[2:].split(": ", 1)
                    meta[key] = value
    meta["tables and plots rewritten from the CSV"] = datetime.datetime.now().isoformat(
        timespec="seconds"
    )
    pngs = write_plots(summary, out)
    write_markdown(summary, md_path, meta)
    return [md_path, *pngs]
