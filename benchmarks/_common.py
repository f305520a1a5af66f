"""Helpers shared by the benchmark scripts: interleaved timing, machine description, load.

Moved here from :mod:`benchmarks.mala_logistic` (which imports them under their old names) so
that :mod:`benchmarks.hmc_blackjax` and :mod:`benchmarks.ess_table` time and report the same
way. This module imports nothing heavy at the top: JAX and BlackJAX are imported inside
:func:`machine`, so a script can turn on float64 (``jax_enable_x64``) before any JAX array
exists, whatever the order of its imports.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Timed",
    "clock",
    "time_interleaved",
    "machine",
    "loadavg",
    "load_warning",
    "fmt_goal",
    "counting_numba_target",
    "counting_jax_logdensity",
    "counted_gradients_per_step",
]


@dataclass
class Timed:
    """One implementation to time: ``fn(run_index)`` does the work and returns when finished."""

    name: str
    fn: Callable[[int], object]  # fn(run_index) -> output (blocked: work is finished)
    summarise: Callable[[object], dict] | None = None
    first: float = float("nan")
    first_cpu: float = float("nan")
    runs: list[float] = field(default_factory=list)
    cpu_runs: list[float] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_runs) if self.cpu_runs else float("nan")


def clock(fn: Callable[[], object]) -> tuple[float, float, object]:
    """``(wall seconds, CPU seconds of this process, all threads, output)`` of ``fn()``."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def time_interleaved(items: list[Timed], runs: int, log: Callable[[str], None]) -> None:
    """One warm-up call each (reported as ``first``), then ``runs`` rounds over all of them.

    Interleaving (round r runs every implementation once) makes slow drifts of a shared
    machine hit every implementation alike.
    """
    for it in items:
        it.first, it.first_cpu, out = clock(lambda: it.fn(0))
        if it.summarise is not None:
            it.summary = it.summarise(out)
        log(f"  first call  {it.name:<16} {it.first:8.3f} s  {it.summary or ''}")
    for r in range(1, runs + 1):
        for it in items:
            dt, cpu, _ = clock(lambda: it.fn(r))
            it.runs.append(dt)
            it.cpu_runs.append(cpu)
        log(f"  round {r}/{runs}: " + ", ".join(f"{it.name} {it.runs[-1]:.3f}" for it in items))


def machine() -> dict[str, str]:
    """Date, processor, versions and the environment variables that change timings."""
    import blackjax
    import jax
    import numba
    import numpy as np

    import langevin

    env_keys = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS", "XLA_FLAGS", "NUMBA_CACHE_DIR")  # fmt: skip
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": str(os.cpu_count()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "jax": jax.__version__,
        "jax_devices": ", ".join(str(d) for d in jax.devices()),
        "blackjax": blackjax.__version__,
        "langevin": langevin.__version__,
        "env": ", ".join(f"{k}={os.environ[k]}" for k in env_keys if k in os.environ) or "(none)",
    }


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as text."""
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def load_warning(info: dict) -> list[str]:
    """A warning paragraph when other processes kept the cores busy during the timings."""
    loads = []
    for key, value in info.items():
        if key.startswith("load average"):
            try:
                loads.append(float(value.split(",")[0]))
            except ValueError:
                pass
    cores = os.cpu_count() or 1
    if not loads or max(loads) < 0.5 * cores:
        return []
    return [
        f"**The machine was busy** (1-minute load average up to {max(loads):.2f} on {cores} "
        "cores, other processes included): wall-clock times are inflated and threads cannot "
        "show their speed-up; compare the CPU columns for the work done.",
        "",
    ]


def fmt_goal(value: float, goal: float | None) -> str:
    """``"<= goal: met"`` / ``"NOT met"``, or a dash without a goal."""
    if goal is None:
        return "—"
    return f"<= {goal:g}: {'met' if value <= goal else 'NOT met'}"


# -- counting gradient evaluations ------------------------------------------------------------
def counting_numba_target(target: Any) -> tuple[Any, np.ndarray]:
    """``target``'s Numba form with a call counter: ``(counting target, counter)``.

    The counter is an int64 array passed to the compiled loop as (part of) the target's data,
    incremented on every value-and-gradient call. Not thread-safe: count with one chain.
    """
    import numba

    import langevin

    vg = target.numba_value_and_grad
    if vg is None:
        raise TypeError("counting_numba_target: the target needs a Numba value_and_grad")
    counter = np.zeros(1, dtype=np.int64)
    if target.numba_data is None:

        @numba.njit
        def counted(x, data):
            data[0] += 1
            return vg(x)

        data: Any = counter
    else:

        @numba.njit
        def counted(x, data):
            inner, count = data
            count[0] += 1
            return vg(x, inner)

        data = (target.numba_data, counter)
    wrapped = langevin.Target.from_numba(value_and_grad=counted, data=data, dim=target.dim)
    return wrapped, counter


def counting_jax_logdensity(target: Any) -> tuple[Callable, list[int]]:
    """``target``'s JAX log-density with a host-side call counter: ``(logdensity, [calls])``.

    A ``jax.debug.callback`` in the log-density fires once per evaluation at run time (also
    inside ``jit``, ``scan`` and ``vmap``), i.e. once per value-and-gradient. Call
    ``jax.effects_barrier()`` before reading the count.
    """
    import jax

    calls = [0]

    def bump(_):
        calls[0] += 1

    def logdensity(x):
        jax.debug.callback(bump, x[0])
        return target.jax_logdensity(x)

    return logdensity, calls


def counted_gradients_per_step(kernel: Any, target: Any, start: np.ndarray, backend: str,
                               extra: int = 5) -> float:  # fmt: skip
    """Value-and-gradient evaluations per step of ``langevin.sample`` with ``kernel``, counted:
    (calls in a run of ``1 + extra`` draws − calls in a run of 1 draw) / ``extra``, one chain
    started at ``start``, no warm-up (so initialisation and checks cancel out)."""
    import langevin

    kwargs: dict[str, Any] = {}
    if getattr(kernel, "adapts_inverse_mass", False):
        kwargs["adapt_mass_matrix"] = False
    if backend == "numba":
        counting, counter = counting_numba_target(target)

        def calls(draws: int) -> int:
            counter[0] = 0
            langevin.sample(counting, kernel, chains=1, warmup=0, draws=draws, progress=False,
                            seed=0, initial_position=start[None, :], **kwargs)  # fmt: skip
            return int(counter[0])
    else:
        import jax

        logdensity, count = counting_jax_logdensity(target)
        counting = langevin.Target.from_jax(logdensity, dim=target.dim)

        def calls(draws: int) -> int:
            count[0] = 0
            langevin.sample(counting, kernel, chains=1, warmup=0, draws=draws, backend="jax",
                            progress=False, seed=0, initial_position=start[None, :],
                            **kwargs)  # fmt: skip
            jax.effects_barrier()
            return count[0]

    return (calls(1 + extra) - calls(1)) / extra
