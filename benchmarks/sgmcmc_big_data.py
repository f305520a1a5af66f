"""SGLD on 10⁷ × 50 float64 data (4 GB): time per step and peak memory per chain.

Run from the repository root (needs ~10 GB of free memory; refuses to start below that)::

    python -m benchmarks.sgmcmc_big_data                 # Numba; ~2 min
    python -m benchmarks.sgmcmc_big_data --jax           # also JAX (one more 4 GB device copy)
    python -m benchmarks.sgmcmc_big_data --rows 1000000  # a smaller data set

The data: ``X`` (n × 50, entries N(0, 1/50)) is written in blocks into one preallocated
array (no temporaries of its size), labels from a logistic model with N(0, I) coefficients;
:func:`langevin.targets.data_targets.logistic_regression_data` holds it without a copy.
Each measurement runs in its own process (``multiprocessing`` with ``spawn``) so that peak
resident memory (``ru_maxrss``) is that of one configuration:

* ``rss_data``: peak RSS after the data and the target exist (before any sampling; the
  data's generation included);
* ``rss_peak``: peak RSS while sampling — the peak is reset after the data exist (Linux
  ``/proc/self/clear_refs``) — over four ``langevin.sample(..., chains=C, warmup=0,
  draws=steps)`` calls with SGLD (b = 100);
* memory per chain: ``(rss_peak(C=4) − rss_peak(C=1)) / 3``; the data itself is shared.

Time per step: the median over 3 ``sample()`` calls after a compiling one, divided by the
steps (one chain), and the engine alone (``numba_backend.run``, as ``sgmcmc_blackjax.py``).

Writes ``benchmarks/results/sgmcmc_big_data.md``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import subprocess
import time
from pathlib import Path

import numpy as np

from benchmarks._common import RESULTS, load_at_end, load_warning, log, machine_at_start

D = 50
BATCH = 100
STEPS = 2000


def _rss_mib() -> float:
    """Peak resident memory of this process since start (or since :func:`_reset_peak`)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _reset_peak() -> bool:
    """Reset the peak (VmHWM) to the current RSS (Linux ``clear_refs`` 5); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def make_data(n: int, d: int = D, seed: int = 0, block: int = 1_000_000):
    """``X`` (n, d) and labels ``y``, written block by block into preallocated arrays."""
    rng = np.random.default_rng(seed)
    beta = rng.normal(size=d)
    X = np.empty((n, d))
    y = np.empty(n)
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        X[lo:hi] = rng.standard_normal((hi - lo, d))
        X[lo:hi] *= 1.0 / np.sqrt(d)
        eta = X[lo:hi] @ beta
        y[lo:hi] = rng.uniform(size=hi - lo) < 1.0 / (1.0 + np.exp(-eta))
    return X, y


def _measure(n: int, chains: int, backend: str, queue) -> None:
    """One configuration in a fresh process: RSS after the data, time per step, peak RSS."""
    if backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    import langevin
    from langevin.kernels.sgmcmc import SGLD
    from langevin.targets.data_targets import logistic_regression_data

    X, y = make_data(n)
    target = logistic_regression_data(X, y)
    del X, y  # the target holds them
    rss_data = _rss_mib()
    reset = _reset_peak()  # from here on the peak is that of sampling, not of making the data
    kernel = SGLD(1.0 / n, batch_size=BATCH, n_data=n)
    x0 = np.zeros(D)
    times = []
    for r in range(4):  # the first compiles (and, on JAX, makes the device copy)
        t0 = time.perf_counter()
        trace = langevin.sample(target, kernel, backend=backend, chains=chains, warmup=0,
                                draws=STEPS, seed=r, initial_position=x0,
                                progress=False)  # fmt: skip
        times.append(time.perf_counter() - t0)
        if trace.diverged:
            raise RuntimeError("a chain diverged")
    t0 = time.perf_counter()  # one full-data log posterior and gradient (a pass over X)
    target.full_value_and_grad(x0, "numba")
    full_pass = time.perf_counter() - t0
    engine = float("nan")
    if backend == "numba" and chains == 1:
        from langevin.backends import numba_backend as be

        p = be.prepare(kernel, target, D, np.float64)
        state = be.init(p, x0[None, :])
        h = np.full(1, kernel.step_size)
        be.run(p, state, 10, h, rngs=[np.random.default_rng(0)])
        runs = []
        for r in range(3):
            t0 = time.perf_counter()
            be.run(p, state, STEPS, h, rngs=[np.random.default_rng(r)])
            runs.append(time.perf_counter() - t0)
        engine = float(np.median(runs)) / STEPS
    queue.put({"n": n, "chains": chains, "backend": backend, "rss_data_mib": rss_data,
               "rss_peak_mib": _rss_mib(), "peak_reset": reset, "first_call_s": times[0],
               "seconds_per_step": float(np.median(times[1:])) / STEPS,
               "engine_seconds_per_step": engine, "full_pass_s": full_pass})  # fmt: skip


def measure(n: int, chains: int, backend: str) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(n, chains, backend, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def _us(seconds: float) -> str:
    return "—" if np.isnan(seconds) else f"{seconds * 1e6:.1f} µs"


def free_gib() -> float:
    out = subprocess.run(["free", "-b"], capture_output=True, text=True, check=True).stdout
    fields = out.splitlines()[1].split()
    return int(fields[6]) / 2**30  # "available"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10**7)
    parser.add_argument("--jax", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    n = args.rows
    data_gib = n * (D + 1) * 8 / 2**30
    need = 2.5 * data_gib if not args.jax else 3.5 * data_gib
    available = free_gib()
    if available < max(need, 10.0 if n >= 10**7 else 0.0):
        raise SystemExit(f"only {available:.1f} GiB available; this run needs ~{need:.1f}")
    info = machine_at_start("SGLD on big data", {"rows": str(n), "d": str(D),
                                                  "available_gib": f"{available:.1f}"})  # fmt: skip
    rows = []
    for backend in ("numba", "jax") if args.jax else ("numba",):
        for chains in (1, 4):
            rows.append(measure(n, chains, backend))
            log(f"  {rows[-1]}")
    load_at_end(info)
    lines = ["# SGLD on big data", ""]
    lines += load_warning(info)
    lines += [
        f"Logistic regression, n = {n} rows × d = {D} float64 ({n * D * 8 / 2**30:.2f} GiB of "
        f"X), SGLD with batch {BATCH}, {STEPS} steps per call (module docstring of "
        "`benchmarks/sgmcmc_big_data.py`).",
        "",
        "| backend | chains | RSS after data (MiB) | peak RSS (MiB) | s / step (sample, per "
        "chain-step) | engine s / step | first call (s) | one full pass (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['chains']} | {r['rss_data_mib']:.0f} | "
            f"{r['rss_peak_mib']:.0f} | {r['seconds_per_step'] / r['chains'] * 1e6:.1f} µs | "
            f"{_us(r['engine_seconds_per_step'])} | {r['first_call_s']:.2f} | "
            f"{r['full_pass_s']:.2f} |"
        )
    lines.append("")
    for backend in ("numba", "jax"):
        one = [r for r in rows if r["backend"] == backend and r["chains"] == 1]
        four = [r for r in rows if r["backend"] == backend and r["chains"] == 4]
        if one and four:
            per_chain = (four[0]["rss_peak_mib"] - one[0]["rss_peak_mib"]) / 3
            value = f"{per_chain:.1f} MiB" if abs(per_chain) >= 1.0 else "below 1 MiB"
            kept = STEPS * D * 8 / 2**20
            lines.append(f"- {backend}: peak memory per additional chain {value} (the data is "
                         "held once and shared; a chain's state is 2d + 2 numbers, its kept "
                         f"draws {STEPS} × {D} floats = {kept:.2f} MiB).")  # fmt: skip
    jax_rows = [r for r in rows if r["backend"] == "jax"]
    if jax_rows:
        lines.append(f"- jax: the peak above the NumPy data is the one device copy of the data "
                     f"({n * (D + 1) * 8 / 2**20:.0f} MiB) and XLA's compile workspace; the "
                     "data target puts the arrays with `jax.device_put` (with `jnp.asarray` the "
                     "first call made a second, transient copy: 11 972 MiB peak at 10⁷ rows "
                     "instead of 8490).")  # fmt: skip
    lines += [
        "",
        "`sample()` costs more per step than the engine because each call evaluates the "
        "full-data log posterior and gradient once at the start (`health.probe_numba_target` "
        "checks the target's Numba `value_and_grad`; an SG kernel never uses it): one pass "
        "over X, the last column. The engine's time per step does not depend on n "
        "(`sgmcmc_blackjax.md`, scaling table).",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sgmcmc_big_data.md").write_text("\n".join(lines) + "\n")
    log(f"wrote {args.out / 'sgmcmc_big_data.md'}")


if __name__ == "__main__":
    main()
