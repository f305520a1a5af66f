"""First-call latency of ``langevin.sample`` in a fresh process; prints one JSON line.

Run by :mod:`benchmarks.mala_logistic` as ``python -m benchmarks._latency_probe numba|jax``.
It times, inside the process:

* ``import_langevin_s``: ``import langevin`` (Numba and NumPy come with it; JAX does not);
* ``import_jax_s`` (JAX only): ``import jax`` and turning on float64 (``jax_enable_x64``);
* ``build_target_s``: ``synthetic_logistic_regression(n=1000, dim=50)``;
* ``first_sample_s``: the first ``langevin.sample(..., warmup=0, draws=10)``, i.e. compiling
  (or loading from Numba's on-disk cache) plus 10 steps of 4 chains;
* ``second_sample_s``: the same call again, so ``first - second`` is the compile/load cost;
* ``*_cpu_s``: the process's CPU time for the same steps (all threads), a guide to the cost
  when other processes compete for the cores.

Numba's cache directory is whatever ``NUMBA_CACHE_DIR`` says (the caller sets a fresh one to
measure a first-ever run, then reuses it to measure a later process).

This module keeps its top-level imports light, so that :mod:`benchmarks.mala_logistic` can
import the benchmark's constants from it without changing what the probe measures.
"""

from __future__ import annotations

import json
import os
import sys
import time

# The problem every benchmark in this directory runs: synthetic logistic regression.
N_OBS = 1000
DIM = 50
DATA_SEED = 0
CHAINS = 4
# MALA step size, fixed for every implementation. Found once with short runs of
# langevin.sample(..., warmup=0, draws=5000, backend="numba") from the target's starting point:
# h = 0.05 -> acceptance 0.73, 0.06 -> 0.65, 0.065 -> 0.61, 0.07 -> 0.57, 0.08 -> 0.49.
STEP_SIZE = 0.065
PROBE_DRAWS = 10


def probe(backend: str) -> dict:
    """Time import, target construction and the first two ``sample`` calls on ``backend``."""
    out: dict = {"backend": backend, "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR")}
    t0 = time.perf_counter()
    import langevin

    out["import_langevin_s"] = time.perf_counter() - t0
    if backend == "jax":
        t0 = time.perf_counter()
        import jax

        jax.config.update("jax_enable_x64", True)  # float64, as in the throughput benchmark
        out["import_jax_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    target = langevin.targets.synthetic_logistic_regression(n=N_OBS, dim=DIM, seed=DATA_SEED)
    out["build_target_s"] = time.perf_counter() - t0
    kernel = langevin.MALA(STEP_SIZE)
    for label in ("first_sample", "second_sample"):
        c0, t0 = time.process_time(), time.perf_counter()
        trace = langevin.sample(
            target, kernel, chains=CHAINS, warmup=0, draws=PROBE_DRAWS, backend=backend,
            progress=False, seed=0,
        )  # fmt: skip
        out[f"{label}_s"] = time.perf_counter() - t0
        out[f"{label}_cpu_s"] = time.process_time() - c0
    out["draws_dtype"] = str(trace.draws.dtype)
    if backend == "numba":
        from langevin.backends import numba_backend

        hits = misses = 0
        for loop in numba_backend._LOOPS.values():
            hits += sum(loop.stats.cache_hits.values())
            misses += sum(loop.stats.cache_misses.values())
        out["loop_cache_hits"], out["loop_cache_misses"] = hits, misses
    return out


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ("numba", "jax"):
        raise SystemExit("usage: python -m benchmarks._latency_probe numba|jax")
    print(json.dumps(probe(args[0])), flush=True)


if __name__ == "__main__":
    main()
