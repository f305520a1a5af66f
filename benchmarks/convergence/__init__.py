"""Convergence-rate benchmarks: a thin script on :mod:`langevin.convergence`.

Run from the repository root::

    python -m benchmarks.convergence --quick      # a few minutes on 2 cores
    python -m benchmarks.convergence              # the full run (results committed)
    python -m benchmarks.convergence --out DIR    # write elsewhere

Everything it runs is the installed suite :mod:`langevin.convergence.suite` (six experiments,
every built-in kernel; exact laws read off the kernels' own steps, Monte Carlo on JAX); this
script only fixes where the results go (``benchmarks/results/convergence/``, ``quick/`` and
``tiny/`` below it) and runs the Monte Carlo in float64 (``jax.enable_x64`` around the run,
as the committed results were made). For any other kernel or problem use
:func:`langevin.convergence.study` or ``python -m langevin.convergence``.
"""

from __future__ import annotations

from pathlib import Path

from langevin.convergence.suite import EXPERIMENTS, FULL, PRESETS, QUICK, TINY, Config
from langevin.convergence.suite import report_only as _report_only
from langevin.convergence.suite import run as _run

__all__ = ["DEFAULT_OUT", "EXPERIMENTS", "FULL", "PRESETS", "QUICK", "TINY", "Config", "run"]

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "results" / "convergence"


def _out(cfg: Config, out_dir) -> Path:
    if out_dir is not None:
        return Path(out_dir)
    return DEFAULT_OUT if cfg is FULL else DEFAULT_OUT / cfg.name


def run(cfg: Config, out_dir=None, **kwargs) -> dict:
    """:func:`langevin.convergence.suite.run` with JAX in float64, writing to
    ``benchmarks/results/convergence`` (its ``quick``/``tiny`` subfolder) by default."""
    import jax

    with jax.enable_x64(True):
        return _run(cfg, _out(cfg, out_dir), **kwargs)


def report_only(cfg: Config, out_dir=None) -> list[Path]:
    """Rewrite the Markdown and PNGs from the CSV of a finished run."""
    return _report_only(cfg, _out(cfg, out_dir))
