"""Peak resident memory of a long run: d = 1000, 100 000 draws, 4 chains (issue 17).

In memory the draws alone are 4 × 10⁵ × 1000 × 8 B = 3.2 GB in float64; streamed to disk
(``sample(..., store=directory)``) in float32 they never sit in the process. Each
configuration runs in a fresh subprocess, which reports its peak resident set size
(``ru_maxrss``, i.e. VmHWM) and its time; the draws are then summarised from the store
(a memory map) to show the result is usable.

    python -m benchmarks.long_run_memory            # the issue's run (writes results/)
    python -m benchmarks.long_run_memory --quick    # d = 100, 10 000 draws (a smoke test)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

CHILD = """
import json, resource, sys, time
import numpy as np
import langevin

import numba

@numba.njit
def value_and_grad(x):  # N(0, I): O(d) per gradient, so the run measures storage, not algebra
    return -0.5 * (x @ x), -x

dim, draws, mode, store = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
target = langevin.Target.from_numba(value_and_grad=value_and_grad, dim=dim, name="iso")
kwargs = dict(chains=4, warmup=1000, draws=draws, seed=0, progress=False)
if mode == "stream-float32":
    kwargs.update(store=store, store_dtype=np.float32)
elif mode == "stream-float64":
    kwargs.update(store=store)
t0 = time.perf_counter()
trace = langevin.sample(target, langevin.MALA(0.5 / dim ** 0.25), **kwargs)
seconds = time.perf_counter() - t0
peak_run = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
# a summary read block by block from the memory map (what an analysis would do)
means = np.zeros(dim)
for a in range(0, draws, 10_000):
    means += np.asarray(trace.draws[:, a:a + 10_000], dtype=np.float64).sum(axis=(0, 1))
means /= 4 * draws
print(json.dumps({"mode": mode, "seconds": seconds, "peak_gib": peak_run,
                  "draws_gib": trace.draws.nbytes / 2**30,
                  "max_abs_mean": float(np.abs(means).max()),
                  "acceptance": float(np.nanmean(trace.sample_stats["acceptance_rate"]))}))
"""


def run(dim: int, draws: int, mode: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(dim), str(draws), mode, os.path.join(tmp, "s")],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--modes", nargs="+",
                        default=["stream-float32", "stream-float64", "memory"])  # fmt: skip
    args = parser.parse_args(argv)
    dim, draws = (100, 10_000) if args.quick else (1000, 100_000)
    rows = [run(dim, draws, mode) for mode in args.modes]
    lines = [
        f"# Peak memory of a long run: d = {dim}, {draws} draws, 4 chains, MALA (Numba)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{time.strftime('%Y-%m-%d')}. Peak RSS is the subprocess's `ru_maxrss` (VmHWM).",
        "",
        "| how the draws are kept | draws size (GiB) | peak RSS (GiB) | seconds | max |mean| |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['draws_gib']:.2f} | {r['peak_gib']:.2f} | "
                     f"{r['seconds']:.1f} | {r['max_abs_mean']:.3f} |")  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "long_run_memory.md").write_text(text)
        (RESULTS / "long_run_memory.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
