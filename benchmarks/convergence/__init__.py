"""Convergence-rate benchmarks: W2 to the target against steps, step size and dimension.

Run from the repository root::

    python -m benchmarks.convergence --quick      # a few minutes on 2 cores
    python -m benchmarks.convergence              # the full run (results committed)
    python -m benchmarks.convergence --out DIR    # write elsewhere

Writes ``convergence.csv`` (every number, long format), ``convergence.md`` (the summary
table: fitted bias orders, theory, dimension exponents, gradient evaluations to reach an
accuracy; Monte Carlo checks; run metadata) and three PNG figures into
``benchmarks/results/convergence/`` (``--quick``: ``benchmarks/results/convergence/quick/``).

Modules: :mod:`.problems` (targets), :mod:`.twin` (affine maps read off each kernel's own
step code), :mod:`.exact` (exact laws and moments of linear chains), :mod:`.montecarlo`
(many chains on JAX, W2 with its noise floor), :mod:`.kernels` (what runs, and the theory),
:mod:`.experiments`, :mod:`.report`, :mod:`.config`. The entry point is :func:`run`.
"""

from __future__ import annotations

from .config import FULL, PRESETS, QUICK, TINY, Config
from .runner import run

__all__ = ["FULL", "PRESETS", "QUICK", "TINY", "Config", "run"]
