"""The convergence-rate suite: the experiments behind ``benchmarks/results/convergence``.

Six experiments on fixed problems (a rotated Gaussian in d = 10 with κ = 10, the same
Gaussian in d up to 10⁴, a 1-D Gaussian and the 1-D quartic target), every built-in kernel,
one CSV, one Markdown summary with the theory beside every fitted number, three PNGs::

    from langevin.convergence.suite import QUICK, run
    result = run(QUICK, "convergence_results")

``python -m benchmarks.convergence`` (from the repository) runs it with JAX in float64.
:func:`langevin.convergence.study` is the general front end (any kernel, any problem); the
suite is a fixed study with its own report.

Modules: :mod:`.config` (the FULL, QUICK and TINY grids), :mod:`.experiments`,
:mod:`.report`, :mod:`.runner`.
"""

from __future__ import annotations

from .config import FULL, PRESETS, QUICK, TINY, Config
from .runner import EXPERIMENTS, report_only, run

__all__ = ["EXPERIMENTS", "FULL", "PRESETS", "QUICK", "TINY", "Config", "report_only", "run"]
