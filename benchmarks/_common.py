"""Helpers shared by the benchmark scripts: interleaved timing, machine description, load,
the timed implementations every peer benchmark has, the reports' common parts, and the
command line and main loop of the per-problem peer benchmarks.

Moved here from :mod:`benchmarks.mala_logistic` (which imports some of them under their old
names), :mod:`benchmarks.hmc_blackjax` and :mod:`benchmarks.barker_blackjax` so that the
scripts time and report the same way, each rule in one place; :mod:`benchmarks.smc_peers` and
:mod:`benchmarks.ess_table` share the machine description, the report heading, the size and
output options and the writing of the result files. This module imports nothing heavy at the
top: JAX, BlackJAX, ArviZ, Numba and langevin are imported inside the functions that need
them, so a script can turn on float64 (``jax_enable_x64``) before any JAX array exists,
whatever the order of its imports.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._latency_probe import CHAINS, DATA_SEED, DIM, N_OBS

__all__ = [
    "RESULTS",
    "INIT_SEED",
    "Z_CONSISTENT",
    "COUNT_DRAWS",
    "Timed",
    "clock",
    "log",
    "time_interleaved",
    "machine",
    "machine_at_start",
    "load_at_end",
    "loadavg",
    "load_warning",
    "fmt_goal",
    "logistic_target",
    "ark_target",
    "start_points",
    "langevin_timed",
    "numba_one_thread_timed",
    "blackjax_timed",
    "blackjax_chains",
    "acceptance_stats",
    "acceptance_z",
    "ratios",
    "counting_numba_target",
    "counting_jax_logdensity",
    "counted_gradients_per_step",
    "counted_gradients",
    "ProblemResult",
    "timing_rows",
    "report_head",
    "timing_cells",
    "acceptance_cells",
    "equal_work",
    "size_parser",
    "parse_sized",
    "Plan",
    "parse_plan",
    "quiet_warnings",
    "run_problems",
    "write_report_files",
    "write_reports",
]

RESULTS = Path(__file__).resolve().parent / "results"
INIT_SEED = 12345  # starting points, shared by every implementation
#: |z| below this: acceptance rates consistent within Monte Carlo error.
Z_CONSISTENT = 3.0
COUNT_DRAWS = 5  # extra draws of the gradient-counting runs


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


def log(msg: str) -> None:
    """Print a progress line at once (the scripts' log)."""
    print(msg, flush=True)


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


def ess(x: np.ndarray, method: str) -> float:
    """ArviZ's ESS of ``x`` (chains, draws): ``"bulk"``, ``"tail"`` or ``"mean"``, on ArviZ
    0.2x and 1.x (where the tail's quantiles must be given: Vehtari et al. 2021's 5% and 95%)."""
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(az.ess(x, method=method))
        except TypeError:  # ArviZ 1.x asks for the tail's quantiles
            return float(az.ess(x, method=method, prob=(0.05, 0.95)))


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


def machine_at_start(headline: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """:func:`machine`, then ``extra`` (more lines of the machine section), then the load
    average now; logged after ``headline``."""
    info = machine()
    info.update(extra or {})
    info["load average (1, 5, 15 min) at start"] = loadavg()
    log(headline)
    log("  " + "; ".join(f"{k}={v}" for k, v in info.items()))
    return info


def load_at_end(info: dict[str, str]) -> None:
    """Add the load average now to ``info`` (a :func:`machine_at_start` description)."""
    info["load average (1, 5, 15 min) at end"] = loadavg()


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


# -- problems ---------------------------------------------------------------------------------
def logistic_target() -> Any:
    """``synthetic_logistic_regression(n=1000, dim=50)``: the problem every benchmark runs."""
    import langevin

    return langevin.targets.synthetic_logistic_regression(n=N_OBS, dim=DIM, seed=DATA_SEED)


def ark_target() -> Any:
    """posteriordb ``arK-arK`` (7-D, 195 rows): cheap gradients."""
    import langevin

    return langevin.targets.posteriordb("arK-arK")


def start_points(target: Any, chains: int) -> tuple[np.ndarray, bool]:
    """The chains' starting points, shared by every implementation, and whether they are
    reference draws: ``chains`` distinct reference posterior draws when the target has them,
    else its initial position plus U(−0.1, 0.1) jitter; float64, C order, from ``INIT_SEED``."""
    rng = np.random.default_rng(INIT_SEED)
    if target.reference is not None and target.reference.draws is not None:
        rows = rng.choice(len(target.reference.draws), size=chains, replace=False)
        return np.ascontiguousarray(target.reference.draws[rows], dtype=np.float64), True
    jitter = rng.uniform(-0.1, 0.1, (chains, target.dim))
    return np.ascontiguousarray(target.initial_position + jitter, dtype=np.float64), False


# -- the timed implementations every peer benchmark has ----------------------------------------
# Run r of each is seeded by 1000 + r (langevin.sample), 2000 + r (Numba on one thread) and
# 3000 + r (BlackJAX); r = 0 is the warm-up call.
def langevin_timed(target: Any, kernel: Any, starts: np.ndarray, draws: int, backend: str,
                   **kwargs: Any) -> Callable[[int], Any]:  # fmt: skip
    """``fn(r)``: ``langevin.sample(..., backend=backend, warmup=0)`` from ``starts``."""
    import langevin

    def fn(r: int) -> Any:
        return langevin.sample(
            target, kernel, chains=len(starts), warmup=0, draws=draws, backend=backend,
            progress=False, seed=1000 + r, initial_position=starts, **kwargs,
        )  # fmt: skip

    return fn


def numba_one_thread_timed(
    kernel: Any, target: Any, starts: np.ndarray, draws: int, step_sizes: np.ndarray, **kwargs: Any
) -> Callable[[int], Any]:
    """``fn(r)``: ``numba_backend.prepare/init/run(..., threads=1)`` from ``starts``: the
    chains one after the other on one thread (``kwargs`` go to ``numba_backend.run``)."""
    from langevin.backends import numba_backend

    chains, dim = starts.shape

    def fn(r: int) -> Any:
        prepared = numba_backend.prepare(kernel, target, dim, np.float64)
        states = numba_backend.init(prepared, starts)
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(2000 + r).spawn(chains)]
        return numba_backend.run(prepared, states, draws, step_sizes, rngs=rngs, threads=1,
                                 **kwargs)  # fmt: skip

    return fn


def blackjax_timed(run: Callable, starts: np.ndarray) -> Callable[[int], Any]:
    """``fn(r)``: ``run(key, starts)`` (a :func:`blackjax_chains` run), blocked until done."""
    import jax
    import jax.numpy as jnp

    starts_jax = jnp.asarray(starts)

    def fn(r: int) -> Any:
        return jax.block_until_ready(run(jax.random.key(3000 + r), starts_jax))

    return fn


def blackjax_chains(algorithm: Any, draws: int, chains: int, record: Callable) -> Callable:
    """A BlackJAX ``algorithm`` ``vmap``-ed over the chains inside a jitted ``lax.scan`` over
    the draws, keys split per step the way the BlackJAX documentation does.

    ``record(states, info)`` is what each step keeps. Returns ``run(key, starts) -> records``,
    each with leading axes ``(draws, chains)``.
    """
    import jax

    @jax.jit
    def run(key, starts):
        states = jax.vmap(algorithm.init)(starts)

        def one_step(states, step_key):
            keys = jax.random.split(step_key, chains)
            states, info = jax.vmap(algorithm.step)(keys, states)
            return states, record(states, info)

        _, records = jax.lax.scan(one_step, states, jax.random.split(key, draws))
        return records

    return run


# -- equal work and ratios ---------------------------------------------------------------------
def acceptance_stats(rate: Any) -> dict[str, float]:
    """Mean acceptance probability with its MCSE (ArviZ ESS of the mean, over chains);
    ``rate`` is ``(chains, draws)``."""
    import arviz as az

    rate = np.asarray(rate, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ess = float(az.ess(rate, method="mean"))
    sd = float(np.std(rate, ddof=1))
    return {"acceptance_rate": float(np.mean(rate)),
            "acceptance_mcse": sd / np.sqrt(max(ess, 1.0))}  # fmt: skip


def acceptance_z(item: Timed, reference: Timed) -> float:
    """z of the difference of two mean acceptance probabilities (independent runs)."""
    a, b = item.summary, reference.summary
    se = np.hypot(a["acceptance_mcse"], b["acceptance_mcse"])
    return float((a["acceptance_rate"] - b["acceptance_rate"]) / se) if se > 0 else float("nan")


def ratios(items: dict[str, Timed],
           spec: dict[str, tuple]) -> list[tuple[str, float, float, float | None]]:  # fmt: skip
    """``(label, wall-time ratio, CPU-time ratio, goal)`` of medians, for each ``label ->
    (numerator, denominator)`` or ``(numerator, denominator, goal: ratio <= goal)`` of
    ``spec`` whose two implementations are in ``items`` (goal ``None`` without one)."""
    out = []
    for label, (num, den, *goal) in spec.items():
        if num in items and den in items:
            a, b = items[num], items[den]
            out.append((label, a.median / b.median, a.cpu_median / b.cpu_median,
                        goal[0] if goal else None))  # fmt: skip
    return out


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
                               extra: int = COUNT_DRAWS) -> float:  # fmt: skip
    """Value-and-gradient evaluations per step of ``langevin.sample`` with ``kernel``, counted:
    (calls in a run of ``1 + extra`` draws − calls in a run of 1 draw) / ``extra``, one chain
    started at ``start``, no warm-up (so initialisation cancels out), after an uncounted
    first call (which alone checks the target's outputs)."""
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

    calls(1)  # the first sample() of a target also checks its outputs once (health.py)
    return (calls(1 + extra) - calls(1)) / extra


def counted_gradients(kernel: Any, target: Any, start: np.ndarray,
                      make_blackjax_run: Callable[[Callable, int], Callable],
                      extra: int = COUNT_DRAWS) -> dict[str, float]:  # fmt: skip
    """Counted value-and-gradient evaluations per draw of langevin's ``numba`` and ``jax``
    backends (:func:`counted_gradients_per_step`) and of ``blackjax``, one chain from
    ``start``: (calls in a run of ``1 + extra`` draws − calls in a run of 1 draw) / ``extra``.

    ``make_blackjax_run(logdensity, draws)`` builds the BlackJAX run of one chain
    (``run(key, starts)``, a :func:`blackjax_chains` run).
    """
    import jax
    import jax.numpy as jnp

    out = {
        backend: counted_gradients_per_step(kernel, target, start, backend, extra)
        for backend in ("numba", "jax")
    }
    logdensity, calls = counting_jax_logdensity(target)

    def blackjax_calls(draws: int) -> int:
        run = make_blackjax_run(logdensity, draws)
        calls[0] = 0
        jax.block_until_ready(run(jax.random.key(0), jnp.asarray(start[None, :])))
        jax.effects_barrier()
        return calls[0]

    out["blackjax"] = (blackjax_calls(1 + extra) - blackjax_calls(1)) / extra
    return out


# -- reports ----------------------------------------------------------------------------------
@dataclass
class ProblemResult:
    """One problem of a per-problem peer benchmark: its timed implementations and counted
    gradient evaluations per draw."""

    problem: Any
    chains: int
    draws: int
    items: list[Timed]
    counted: dict[str, float]

    @property
    def by_name(self) -> dict[str, Timed]:
        return {it.name: it for it in self.items}


def timing_rows(it: Timed) -> Iterator[tuple[str, float, float]]:
    """``(run, wall seconds, CPU seconds)`` of ``it``'s CSV rows: the first call (``"first"``),
    each timed run (``"1"``, ``"2"``, …) and the medians (``"median"``)."""
    yield "first", it.first, it.first_cpu
    for i, (t, c) in enumerate(zip(it.runs, it.cpu_runs), 1):
        yield str(i), t, c
    yield "median", it.median, it.cpu_median


def report_head(title: str, command: str, info: dict, description: str) -> list[str]:
    """A Markdown report's first lines: title, how it was made, ``description`` (paragraphs
    separated by a blank line, ``"\\n\\n"``), the machine (and a warning if it was busy)."""
    return [
        f"# {title}",
        "",
        f"Made by `{command}` on {info['date']}.",
        "",
        description,
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in info.items()),
        "",
        *load_warning(info),
    ]


def timing_cells(it: Timed, n_draws: int) -> str:
    """The first cells of an implementation's row of a per-problem table, up to and with the
    separator after the last: name, median, min, max, spread (max−min)/median, CPU median,
    first call (seconds) and µs per draw (``n_draws`` draws in all chains)."""
    spread = (max(it.runs) - min(it.runs)) / it.median if it.runs else float("nan")
    return (
        f"| {it.name} | {it.median:.3f} | {min(it.runs):.3f} | {max(it.runs):.3f} | "
        f"{spread:.1%} | {it.cpu_median:.3f} | {it.first:.3f} | "
        f"{1e6 * it.median / n_draws:.1f} | "
    )


def acceptance_cells(it: Timed, reference: Timed) -> str:
    """``mean acceptance ± MCSE | z`` of ``it`` against ``reference`` (a dash for itself)."""
    s = it.summary
    z = "—" if it is reference else f"{acceptance_z(it, reference):+.2f}"
    return f"{s['acceptance_rate']:.4f} ± {s['acceptance_mcse']:.4f} | {z}"


def equal_work(res: ProblemResult) -> list[str]:
    """The paragraph checking equal work against BlackJAX: acceptance rates consistent (every
    sampler's |z| below ``Z_CONSISTENT``) and counted gradient evaluations per draw equal."""
    reference = res.by_name["blackjax"]
    zs = [abs(acceptance_z(it, reference)) for it in res.items
          if it.summary and it is not reference]  # fmt: skip
    grads = {round(v, 6) for v in res.counted.values()}
    return [
        "Equal work: acceptance rates "
        + ("consistent" if max(zs) < Z_CONSISTENT else "**NOT consistent**")
        + f" with BlackJAX's (max |z| = {max(zs):.2f}, threshold {Z_CONSISTENT:g}); counted "
        "gradient evaluations per draw "
        + ("equal" if len(grads) == 1 else "**differ**")
        + f" ({', '.join(f'{k} {v:g}' for k, v in res.counted.items())}).",
        "",
    ]


# -- the command line and main loop of the per-problem peer benchmarks --------------------------
@dataclass(frozen=True)
class Plan:
    """What the command line of a per-problem peer benchmark asks for (:func:`parse_plan`)."""

    names: list[str]  # the problems
    runs: int  # timed runs per implementation
    chains: int
    draws: int | None  # --draws: per chain, every problem
    quick: bool
    tiny: bool
    out: Path
    tag: str | None  # suffix of the result file names
    flag: str  # " --tiny", " --quick" or "": how the report says it was made

    def draws_of(self, full: int) -> int:
        """Draws per chain of a problem whose full run has ``full``."""
        return self.draws or (20 if self.tiny else full // (10 if self.quick else 1))

    @property
    def config(self) -> dict:
        """What the Markdown report needs: ``runs`` and ``flag``."""
        return {"runs": self.runs, "flag": self.flag}


def size_parser(doc: str, quick: str, tiny: str) -> argparse.ArgumentParser:
    """An argument parser described by the first line of ``doc`` (the script's docstring),
    with the mutually exclusive sizes ``--quick`` and ``--tiny`` (``quick``, ``tiny``: their
    help). The script adds its own options, then :func:`parse_sized` parses."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help=quick)
    size.add_argument("--tiny", action="store_true", help=tiny)
    return parser


def parse_sized(parser: argparse.ArgumentParser,
                argv: list[str] | None) -> tuple[argparse.Namespace, str | None, str]:  # fmt: skip
    """Add ``--out`` and ``--tag`` to a :func:`size_parser` parser and parse ``argv``: returns
    the arguments, the suffix of the result file names (``--tag``, else ``"tiny"`` or
    ``"quick"``, else ``None``) and how the report says it was made (``" --tiny"``,
    ``" --quick"`` or ``""``)."""
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of the results")
    parser.add_argument("--tag", default=None, help="suffix of the result file names")
    args = parser.parse_args(argv)
    size = "tiny" if args.tiny else "quick" if args.quick else None
    return args, args.tag or size, f" --{size}" if size else ""


def parse_plan(argv: list[str] | None, doc: str, problems: Sequence[str]) -> Plan:
    """Parse the options of a per-problem peer benchmark (``doc``: the script's docstring)."""
    parser = size_parser(doc, quick="1/10 of the draws, 2 timed runs",
                         tiny="logistic only, 2 chains x 20 draws, 1 run (smoke test)")  # fmt: skip
    parser.add_argument("--problems", nargs="+", choices=sorted(problems), default=None)
    parser.add_argument("--draws", type=int, default=None, help="draws per chain (all problems)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per implementation")
    args, tag, flag = parse_sized(parser, argv)
    return Plan(
        names=args.problems or (["logistic"] if args.tiny else list(problems)),
        runs=args.runs or (1 if args.tiny else 2 if args.quick else 5),
        chains=2 if args.tiny else CHAINS,
        draws=args.draws,
        quick=args.quick,
        tiny=args.tiny,
        out=args.out,
        tag=tag,
        flag=flag,
    )


@contextlib.contextmanager
def quiet_warnings(ignore: Sequence[type[Warning]] = ()) -> Iterator[None]:
    """Within: Numba's warnings and those of the categories ``ignore`` silenced."""
    import numba

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", numba.core.errors.NumbaExperimentalFeatureWarning)
        warnings.simplefilter("ignore", numba.core.errors.NumbaWarning)
        for category in ignore:
            warnings.simplefilter("ignore", category)
        yield


def run_problems(plan: Plan, problems: dict[str, Any], headline: str,
                 bench: Callable[..., ProblemResult],
                 ignore: Sequence[type[Warning]] = ()) -> tuple[dict, list]:  # fmt: skip
    """Run ``bench(problem, target, starts, draws, runs)`` on each problem of ``plan``, Numba's
    warnings (and ``ignore``) silenced; returns the machine description with the load
    averages at start and end, and the results."""
    info = machine_at_start(f"{headline} benchmark: problems {plan.names}, {plan.chains} "
                            f"chains, {plan.runs} timed runs")  # fmt: skip
    results = []
    with quiet_warnings(ignore):
        for name in plan.names:
            problem = problems[name]
            draws = plan.draws_of(problem.draws)
            target = problem.make_target()
            starts = problem.starts(target, plan.chains)
            results.append(bench(problem, target, starts, draws, plan.runs))
    load_at_end(info)
    return info, results


def write_report_files(out: Path, name: str, tag: str | None, write_csv: Callable[[Path], None],
                       write_md: Callable[[Path], None]) -> None:  # fmt: skip
    """``write_csv(path)`` and ``write_md(path)`` to ``name[_tag].csv`` and ``.md`` in the
    directory ``out`` (made if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    stem = name + (f"_{tag}" if tag else "")
    write_csv(out / f"{stem}.csv")
    write_md(out / f"{stem}.md")
    log(f"wrote {out / (stem + '.csv')} and {out / (stem + '.md')}")


def write_reports(plan: Plan, name: str, info: dict, results: list,
                  write_csv: Callable, write_md: Callable) -> None:  # fmt: skip
    """``write_csv(path, results)`` and ``write_md(path, config, info, results)`` to
    ``name[_tag].csv`` and ``.md`` in the plan's directory (:func:`write_report_files`)."""
    write_report_files(plan.out, name, plan.tag, lambda path: write_csv(path, results),
                       lambda path: write_md(path, plan.config, info, results))  # fmt: skip
