"""``study``: the convergence of one or more kernels on a problem, as a tidy table.

For each kernel and step size ``h`` (and each dimension of ``dims``):

* **stationary bias** ``W2(π_h, π)`` (``quantity="w2_stationary"``): exact from the affine map
  read off the kernel (discrete Lyapunov equation) when its step is affine on a Gaussian
  problem (detected, :func:`langevin.convergence.twin.classify`); the exact-moment lower bound
  (Gelbrich) for random coefficients; otherwise Monte Carlo: ``n_chains`` chains started at
  exact draws of π, run ``ceil(stationary_time/h)`` steps, W2 of their last positions to
  fresh draws of π, with its noise floor;
* **W2 against iterations** from the problem's start (``quantity="w2"``): exact, or Monte
  Carlo with its noise floor, at the checkpoints of ``iterations``;
* **coupling bound** (``coupling=True``; ``quantity="coupling_bound"``): the synchronous
  coupling bound of :mod:`langevin.convergence.coupling`, by Monte Carlo, and in closed form
  beside it where the step is affine;
* **cost against dimension** (``dims``; Gaussian problems): the fewest gradient evaluations
  (steps × evaluations per step, counted on the kernel's own code) to reach and keep
  ``W2 ≤ eps``, minimised over the step sizes (``quantity="grads_to_eps"``).

The table's columns are :data:`COLUMNS`; :attr:`Study.fits` holds per-kernel fitted orders
with the kernel's theory beside them, and a :class:`~.theory.TheoryMismatchWarning` is
issued when a fit disagrees with the theory beyond its standard error
(:func:`langevin.convergence.fits.agreement`).
"""

from __future__ import annotations

import csv
import math
import numbers
import time
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .coupling import coupling_bound, exact_coupling_bound, exact_pair_w2
from .exact import block_operator, full_chain, grads_to_accuracy, start_blocks
from .fits import agreement, fit_slope
from .montecarlo import BACKENDS, FLOOR_FACTOR, run_chains, w2_estimate
from .problems import GaussianProblem
from .theory import KernelSpec, KernelTheory, TheoryMismatchWarning, resolve_kernels
from .twin import NotAffineError, gradient_evaluations

__all__ = ["COLUMNS", "METHODS", "Study", "study"]

#: The columns of :attr:`Study.table`, in order.
COLUMNS = (
    "kernel",
    "kind",
    "method",
    "quantity",
    "dim",
    "step_size",
    "iteration",
    "grads",
    "value",
    "value_se",
    "noise_floor",
    "resolved",
    "n_chains",
    "acceptance",
    "note",
)

#: ``method=`` values of :func:`study`.
METHODS = ("auto", "monte_carlo")

#: Largest dimension where exact laws use the full (rotated) map; above it, the
#: per-eigendirection blocks (same W2 for kernels with isotropic parameters, checked there).
FULL_MAP_MAX_DIM = 64

#: Below this a stationary W2 is rounding error: no position bias (BAOAB on Gaussians).
ZERO_BIAS = 1e-10


def _row(**kw) -> dict:
    row = {
        "kernel": "",
        "kind": "",
        "method": "",
        "quantity": "",
        "dim": 0,
        "step_size": math.nan,
        "iteration": -1,
        "grads": math.nan,
        "value": math.nan,
        "value_se": math.nan,
        "noise_floor": math.nan,
        "resolved": True,
        "n_chains": 0,
        "acceptance": math.nan,
        "note": "",
    }
    unknown = set(kw) - set(row)
    if unknown:
        raise KeyError(f"unknown columns {unknown}")
    row.update(kw)
    return row


def checkpoints(k_max: int, ratio: float = 1.15, dense: int = 10) -> list[int]:
    """``0 … dense`` then geometric steps of ``ratio`` up to ``k_max`` (included)."""
    ks = set(range(0, min(dense, k_max) + 1))
    k = float(dense)
    while k < k_max:
        k *= ratio
        ks.add(min(math.ceil(k), k_max))
    ks.add(k_max)
    return sorted(ks)


def _stable_seed(*parts) -> int:
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def _has_momentum(kernel) -> bool:
    return "momentum" in type(kernel).State._fields


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------


class Study:
    """The result of :func:`study`.

    Attributes:
        rows: the table as a list of dicts (columns :data:`COLUMNS`).
        specs: the kernels (:class:`~.theory.KernelSpec`: label, detected kind, theory).
        problem: the problem.
        settings: the arguments of the study.
        fit_max_step: bias orders are fitted on ``h <= fit_max_step``.
    """

    def __init__(
        self,
        rows: list[dict],
        specs: list[KernelSpec],
        problem,
        settings: dict,
        grads: dict[str, float],
        tolerance: float,
    ) -> None:
        self.rows = rows
        self.specs = specs
        self.problem = problem
        self.settings = settings
        self.grads_per_step = grads
        self.tolerance = tolerance
        self.fit_records = [self._fit(spec) for spec in specs]

    # -- tables ---------------------------------------------------------------------------
    @property
    def table(self):
        """The tidy table as an :class:`xarray.Dataset` (dimension ``row``; one variable per
        column of :data:`COLUMNS`). ``table.to_dataframe()`` gives a pandas DataFrame."""
        import xarray as xr

        data = {c: ("row", np.array([r[c] for r in self.rows])) for c in COLUMNS}
        if not self.rows:
            data = {c: ("row", np.array([])) for c in COLUMNS}
        return xr.Dataset(data, attrs={"problem": self.problem.name})

    @property
    def fits(self):
        """Per-kernel fitted orders beside the theory, as an :class:`xarray.Dataset`
        (dimension ``kernel``)."""
        import xarray as xr

        names = [f["kernel"] for f in self.fit_records]
        cols = [k for k in self.fit_records[0] if k != "kernel"]
        return xr.Dataset(
            {c: ("kernel", np.array([f[c] for f in self.fit_records])) for c in cols},
            coords={"kernel": names},
        )

    def select(self, **where) -> list[dict]:
        """Rows whose columns equal the given values, e.g. ``select(kernel="ULA",
        quantity="w2")``."""
        unknown = set(where) - set(COLUMNS)
        if unknown:
            raise KeyError(f"unknown columns {sorted(unknown)}; columns are {COLUMNS}")
        return [r for r in self.rows if all(r[k] == v for k, v in where.items())]

    # -- fits -----------------------------------------------------------------------------
    def _fit(self, spec: KernelSpec) -> dict:
        prob = self.problem
        fit_max = self.settings["fit_max_step"]
        rec: dict[str, Any] = {
            "kernel": spec.name,
            "kind": spec.kind,
            "grads_per_step": self.grads_per_step[spec.name],
            "note": spec.note,
        }
        stat = [
            r
            for r in self.select(kernel=spec.name, quantity="w2_stationary", dim=prob.dim)
            if math.isfinite(r["value"])
        ]
        used = [r for r in stat if r["resolved"] and r["step_size"] <= fit_max * (1 + 1e-12)]
        zero = bool(stat) and all(
            r["method"] != "monte_carlo" and r["value"] < ZERO_BIAS for r in stat
        )
        if zero:
            slope, se, n = math.nan, math.nan, 0
        else:
            slope, se, n = fit_slope([r["step_size"] for r in used], [r["value"] for r in used])
        gauss = prob.gaussian and spec.bias_gaussian is not None
        theory = spec.bias_gaussian if gauss else spec.bias_theory
        rec.update(
            bias_order=slope,
            bias_order_se=se,
            bias_order_points=f"{n}/{len(stat)}",
            bias_order_theory=math.nan if theory is None else float(theory),
            bias_order_theory_is="exact on Gaussians" if gauss else "upper-bound rate",
            stationary_bias_zero=zero,
        )
        if spec.bias_theory is None:  # exact kernel: no bias at all
            resolved = [r for r in stat if r["resolved"] and r["value"] > ZERO_BIAS]
            rec["bias_agreement"] = "disagrees" if resolved else "agrees"
            rec["bias_order_theory_is"] = "exact kernel: no bias"
        elif zero:
            rec["bias_agreement"] = "agrees" if theory == 0 else "better than theory"
        elif theory == 0:
            rec["bias_agreement"] = "disagrees" if n else "no fit"
        else:
            rec["bias_agreement"] = agreement(
                slope, se, theory, direction="equal" if gauss else "at_least",
                tolerance=self.tolerance,
            )  # fmt: skip
        cost = [
            r
            for r in self.select(kernel=spec.name, quantity="grads_to_eps")
            if math.isfinite(r["value"])
        ]
        dslope, dse, dn = fit_slope([r["dim"] for r in cost], [r["value"] for r in cost])
        n_cost = len(self.select(kernel=spec.name, quantity="grads_to_eps"))
        rec.update(
            dim_exponent=dslope,
            dim_exponent_se=dse,
            dim_exponent_points=f"{dn}/{n_cost}",
            dim_exponent_theory=float(spec.dim_theory),
            dim_agreement=agreement(
                dslope, dse, spec.dim_theory, direction="at_most", tolerance=self.tolerance
            ),
        )
        return rec

    def warn_mismatches(self) -> list[str]:
        """Issue a :class:`TheoryMismatchWarning` per fit that disagrees with the theory;
        returns the messages."""
        messages = []
        for f in self.fit_records:
            if f["bias_agreement"] == "disagrees":
                fit = (
                    f"{f['bias_order']:.3g} ± {f['bias_order_se']:.2g}"
                    if math.isfinite(f["bias_order"])
                    else "a resolved bias"
                )
                messages.append(
                    f"{f['kernel']}: fitted stationary-bias order {fit} on {self.problem.name} "
                    f"disagrees with the declared theory {f['bias_order_theory']:g} "
                    f"({f['bias_order_theory_is']}; allowed: 2 standard errors + "
                    f"{self.tolerance:g})"
                )
            if f["dim_agreement"] == "disagrees":
                messages.append(
                    f"{f['kernel']}: fitted dimension exponent of the cost "
                    f"{f['dim_exponent']:.3g} ± {f['dim_exponent_se']:.2g} exceeds the "
                    f"declared {f['dim_exponent_theory']:g} (allowed: 2 standard errors + "
                    f"{self.tolerance:g})"
                )
        for m in messages:
            warnings.warn(m, TheoryMismatchWarning, stacklevel=3)
        return messages

    # -- files ----------------------------------------------------------------------------
    def to_csv(self, path: str | Path) -> Path:
        """Write the table (one row per number, long format)."""
        path = Path(path)
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            for r in self.rows:
                w.writerow(
                    {k: (repr(float(v)) if isinstance(v, float) else v) for k, v in r.items()}
                )
        return path

    def to_markdown(self) -> str:
        """The summary: fitted orders with the theory beside them, then the settings."""
        p = self.problem
        out = [
            f"# Convergence study on {p.name}",
            "",
            "| kernel | kind | grads/step | bias order (fit ± se, points) | theory "
            "| agreement | dim. exponent (fit ± se) | theory | agreement |",
            "|---|---|---|---|---|---|---|---|---|",
        ]

        def num(v, se=None):
            if not math.isfinite(v):
                return "—"
            return f"{v:.2f}" + (f" ± {se:.2f}" if se is not None and math.isfinite(se) else "")

        for f in self.fit_records:
            bias = (
                "0 (W2 < 1e-10)"
                if f["stationary_bias_zero"]
                else f"{num(f['bias_order'], f['bias_order_se'])} ({f['bias_order_points']})"
            )
            th = (
                "0 (exact kernel)"
                if f["bias_order_theory_is"].startswith("exact kernel")
                else f"{num(f['bias_order_theory'])} ({f['bias_order_theory_is']})"
            )
            out.append(
                f"| {f['kernel']} | {f['kind']} | {f['grads_per_step']:g} | {bias} | {th} "
                f"| {f['bias_agreement']} | {num(f['dim_exponent'], f['dim_exponent_se'])} "
                f"| {num(f['dim_exponent_theory'])} | {f['dim_agreement']} |"
            )
        out += [
            "",
            "* *kind*: `linear` (step affine on a Gaussian: exact laws), `random` (affine with a "
            "random coefficient: exact moments, W2 lower bound), `mc` (Monte Carlo); detected "
            "by probing the kernel's step.",
            f"* *bias order*: slope of log W2(π_h, π) on log h for h ≤ "
            f"{self.settings['fit_max_step']:g}; Monte Carlo points count only above "
            f"{FLOOR_FACTOR:g} noise floors.",
            "* *agreement*: within 2 standard errors + "
            f"{self.tolerance:g} of the theory (bias: an upper-bound rate may be beaten; "
            "dimension: a growth may be slower).",
            "",
            "## Settings",
            "",
        ]
        for k, v in self.settings.items():
            out.append(f"* {k}: {v}")
        return "\n".join(out) + "\n"

    def save(self, out_dir: str | Path, *, stem: str = "convergence", plots: bool = True):
        """Write ``{stem}.csv``, ``{stem}.md`` and the PNG figures that have data; returns
        the paths."""
        from . import plots as _plots

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = [self.to_csv(out / f"{stem}.csv")]
        md = out / f"{stem}.md"
        md.write_text(self.to_markdown())
        paths.append(md)
        if plots:
            paths += _plots.save_figures(self, out)
        return paths

    # -- figures --------------------------------------------------------------------------
    def plot_bias(self, **kw):
        """:func:`langevin.convergence.plot_bias` of this study."""
        from .plots import plot_bias

        return plot_bias(self, **kw)

    def plot_w2_vs_iterations(self, **kw):
        """:func:`langevin.convergence.plot_w2_vs_iterations` of this study."""
        from .plots import plot_w2_vs_iterations

        return plot_w2_vs_iterations(self, **kw)

    def plot_cost_vs_dimension(self, **kw):
        """:func:`langevin.convergence.plot_cost_vs_dimension` of this study."""
        from .plots import plot_cost_vs_dimension

        return plot_cost_vs_dimension(self, **kw)

    def __repr__(self) -> str:
        return (
            f"Study({len(self.specs)} kernels on {self.problem.name}, {len(self.rows)} rows; "
            f"kernels: {', '.join(f'{s.name} [{s.kind}]' for s in self.specs)})"
        )


# --------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------


def _positive_floats(name: str, values) -> tuple[float, ...]:
    if isinstance(values, numbers.Real):
        values = [values]
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of positive floats; got {values!r}") from None
    if not out or not all(v > 0 and math.isfinite(v) for v in out):
        raise ValueError(f"{name} must be positive finite numbers; got {values!r}")
    return out


def _iterations(value) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"iterations must be >= 1; got {value}")
        return checkpoints(int(value))
    try:
        ks = sorted({int(k) for k in value})
    except (TypeError, ValueError):
        raise TypeError(
            f"iterations must be an int (the horizon) or a sequence of step counts; got {value!r}"
        ) from None
    if not ks or ks[0] < 0:
        raise ValueError(f"iterations must be step counts >= 0; got {value!r}")
    return ks


def _check_problem(problem) -> None:
    needed = ("dim", "name", "gaussian", "start", "target", "exact_draws")
    missing = [a for a in needed if not hasattr(problem, a)]
    if missing:
        raise TypeError(
            f"problem must be a GaussianProblem, QuarticProblem or ReferenceProblem (or have "
            f"{needed}); {type(problem).__name__} lacks {missing}"
        )


def study(
    kernels,
    problem,
    *,
    step_sizes: Sequence[float],
    iterations: int | Sequence[int] | None = None,
    dims: Sequence[int] | None = None,
    eps: float = 0.1,
    method: str = "auto",
    backend: str = "jax",
    n_chains: int = 10_000,
    coupling: bool = False,
    stationary_time: float = 8.0,
    fit_max_step: float | None = None,
    theory: Mapping[str, KernelTheory | Mapping] | None = None,
    friction: float = 2.0,
    tolerance: float = 0.1,
    seed: int = 0,
    max_points: int = 1000,
    warn: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Study:
    """Study the convergence of ``kernels`` on ``problem`` (module docstring).

    Args:
        kernels: a kernel or a list/dict of them: built-in names (``"ULA"``, ``"MALA"``,
            ``"kinetic_baoab"``, ``"HMC_L5"``, …), Kernel instances, kernel classes, or
            callables ``h -> Kernel`` (your own kernel, written as in
            :mod:`langevin.kernels.base`).
        problem: :class:`~.problems.GaussianProblem` (any dimension and condition number:
            exact laws where the step is affine), :class:`~.problems.QuarticProblem`, or
            :class:`~.problems.ReferenceProblem` (any target with reference draws or an
            exact sampler).
        step_sizes: the step sizes h.
        iterations: W2 against iterations: a horizon (checkpoints ``0…10`` then 15%
            apart) or the step counts; None: not computed.
        dims: dimensions of the cost-against-dimension curve (Gaussian problems; the same
            construction via ``problem.with_dim``); None: not computed.
        eps: the W2 accuracy of the cost.
        method: ``"auto"`` (exact where the step is affine on a Gaussian, Monte Carlo
            otherwise) or ``"monte_carlo"`` (Monte Carlo for every kernel).
        backend: ``"jax"`` (vectorised, for 10⁴–10⁶ chains; JAX's precision: float32
            unless ``jax.enable_x64``) or ``"numba"`` (float64 CPU loop).
        n_chains: Monte Carlo chains (and coupled pairs).
        coupling: also compute the synchronous-coupling bound against iterations.
        stationary_time: Monte Carlo stationary bias: chains from π run
            ``ceil(stationary_time / h)`` steps.
        fit_max_step: bias orders are fitted on ``h <= fit_max_step`` (default: all h).
        theory: ``{label: KernelTheory or dict}`` overriding the kernels' declared theory.
        friction: γ of the built-in kinetic kernels named by string.
        tolerance: slack added to 2 standard errors before a fit disagrees with theory.
        seed: seed of every random draw.
        max_points: Monte Carlo W2 in d > 1 is exact optimal transport between at most this
            many chains and as many draws of π (cost ~ max_points³; the noise floor shrinks
            like max_points^(−1/d)); in 1-D every chain is used (a sort).
        warn: issue :class:`~.theory.TheoryMismatchWarning` for fits that disagree.
        progress: called with one line per finished piece (e.g. ``print``).

    Returns:
        A :class:`Study`.

    Raises:
        TypeError, ValueError: a bad argument, named, before anything is compiled.

    Example:
        >>> import langevin.convergence as lc
        >>> s = lc.study(["ULA"], lc.GaussianProblem(2), step_sizes=[0.05, 0.1, 0.2],
        ...              warn=False)
        >>> round(float(s.fits["bias_order"].sel(kernel="ULA")), 1)
        1.0
    """
    _check_problem(problem)
    hs = _positive_floats("step_sizes", step_sizes)
    ks = _iterations(iterations)
    if dims is not None:
        if not problem.gaussian or not hasattr(problem, "with_dim"):
            raise ValueError(
                "dims: the cost against dimension needs a problem with exact laws and "
                f"with_dim (GaussianProblem); got {type(problem).__name__}"
            )
        try:
            dims = sorted({int(d) for d in dims})
        except (TypeError, ValueError):
            raise TypeError(f"dims must be a sequence of ints; got {dims!r}") from None
        if not dims or dims[0] < 1:
            raise ValueError(f"dims must be positive ints; got {dims!r}")
    if not (isinstance(eps, numbers.Real) and eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a positive float; got {eps!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}")
    if isinstance(n_chains, bool) or not isinstance(n_chains, numbers.Integral) or n_chains < 2:
        raise ValueError(f"n_chains must be an int >= 2; got {n_chains!r}")
    if not (stationary_time > 0 and math.isfinite(stationary_time)):
        raise ValueError(f"stationary_time must be positive; got {stationary_time!r}")
    if (
        isinstance(max_points, bool)
        or not isinstance(max_points, numbers.Integral)
        or max_points < 2
    ):
        raise ValueError(f"max_points must be an int >= 2; got {max_points!r}")
    if fit_max_step is None:
        fit_max_step = max(hs)
    if not (isinstance(tolerance, numbers.Real) and tolerance >= 0):
        raise ValueError(f"tolerance must be a float >= 0; got {tolerance!r}")
    specs = resolve_kernels(kernels, friction=friction, theory=theory)
    log = progress or (lambda msg: None)
    grads = {s.name: gradient_evaluations(s.make(0.1)) for s in specs}
    rng = np.random.default_rng([seed, 31337])
    settings = {
        "problem": problem.name,
        "step_sizes": list(hs),
        "iterations": None if ks is None else f"{len(ks)} checkpoints up to {ks[-1]}",
        "dims": dims,
        "eps": eps,
        "method": method,
        "backend": backend,
        "n_chains": n_chains,
        "coupling": coupling,
        "stationary_time": stationary_time,
        "fit_max_step": fit_max_step,
        "seed": seed,
        "max_points (W2 in d > 1)": max_points,
    }
    ctx = _Context(problem, hs, ks, dims, eps, method, backend, n_chains, coupling,
                   stationary_time, seed, rng, log, max_points)  # fmt: skip
    rows: list[dict] = []
    for spec in specs:
        t0 = time.perf_counter()
        rows += ctx.kernel_rows(spec, grads[spec.name])
        log(f"{spec.name} [{spec.kind}]: {time.perf_counter() - t0:.1f} s")
    result = Study(rows, specs, problem, settings, grads, tolerance)
    if warn:
        result.warn_mismatches()
    return result


class _Context:
    def __init__(self, problem, hs, ks, dims, eps, method, backend, n_chains, coupling,
                 stationary_time, seed, rng, log, max_points):  # fmt: skip
        self.problem = problem
        self.max_points = max_points
        self.hs, self.ks, self.dims, self.eps = hs, ks, dims, eps
        self.method, self.backend, self.n = method, backend, n_chains
        self.coupling, self.stationary_time = coupling, stationary_time
        self.seed, self.rng, self.log = seed, rng, log
        self._floors: dict = {}
        self._targets: dict = {}

    # -- helpers --------------------------------------------------------------------------
    def exact(self, spec: KernelSpec, problem) -> bool:
        return self.method == "auto" and problem.gaussian and spec.kind in ("linear", "random")

    def target(self, spec: KernelSpec, problem):
        key = (spec.name, problem.name)
        if key not in self._targets:  # one per kernel and problem: its compiled runner is reused
            self._targets[key] = problem.target()
        return self._targets[key]

    def floor(self, problem, n: int) -> float:
        key = (problem.name, n)
        if key not in self._floors:
            rng = np.random.default_rng([self.seed, 101, problem.dim])
            self._floors[key] = w2_estimate(
                problem.exact_draws(n, rng), problem.exact_draws, rng, max_points=self.max_points
            ).w2
        return self._floors[key]

    def w2(self, samples, problem, floor):
        return w2_estimate(samples, problem.exact_draws, self.rng, floor=floor,
                           max_points=self.max_points)  # fmt: skip

    def momentum(self, kernel, n: int, d: int):
        return self.rng.standard_normal((n, d)) if _has_momentum(kernel) else None

    # -- per kernel -----------------------------------------------------------------------
    def kernel_rows(self, spec: KernelSpec, grads: float) -> list[dict]:
        rows = []
        prob = self.problem
        for h in self.hs:
            kernel = spec.make(h)
            common = dict(kernel=spec.name, kind=spec.kind, dim=prob.dim, step_size=h)
            if self.exact(spec, prob):
                rows += self.exact_rows(spec, kernel, prob, common, grads)
            else:
                rows += self.mc_rows(spec, kernel, prob, common, grads)
            if self.coupling and self.ks is not None:
                rows += self.coupling_rows(spec, kernel, prob, common, grads)
        if self.dims is not None:
            for d in self.dims:
                rows += self.dim_rows(spec, prob.with_dim(d), grads)
        return rows

    def exact_method(self, spec: KernelSpec) -> str:
        return "exact" if spec.kind == "linear" else "moment_lower_bound"

    def exact_rows(self, spec, kernel, prob: GaussianProblem, common, grads) -> list[dict]:
        method = self.exact_method(spec)
        common = dict(common, method=method)
        op = block_operator(kernel, prob.eigenvalues)
        if op.spectral_radius() >= 1.0:
            return [_row(**common, quantity="w2_stationary", resolved=False,
                         note="unstable (moment recursion diverges)")]  # fmt: skip
        rows = []
        use_full = spec.kind == "linear" and prob.dim <= FULL_MAP_MAX_DIM
        chain = full_chain(kernel, prob) if prob.dim <= FULL_MAP_MAX_DIM else None
        w2 = chain.stationary_w2() if use_full else op.stationary_w2()
        note = "" if spec.kind == "linear" else "lower bound (Gelbrich) from exact moments"
        rows.append(_row(**common, quantity="w2_stationary", value=w2, note=note))
        if self.ks is not None:
            nf = op.nf
            if chain is not None:
                d = prob.dim
                z0 = np.concatenate([prob.start, np.zeros(d * (nf - 1))])
                cov0 = np.zeros((nf * d, nf * d))
                if nf == 2:
                    cov0[d:, d:] = np.eye(d)
                path = chain.w2_path(z0, cov0, self.ks)
            else:
                path = op.w2_path(*start_blocks(prob.start_eigen, nf), self.ks)
            for k, w in zip(self.ks, path):
                rows.append(_row(**common, quantity="w2", iteration=k, grads=k * grads,
                                 value=float(w), note=note))  # fmt: skip
        return rows

    def mc_rows(self, spec, kernel, prob, common, grads) -> list[dict]:
        rows = []
        n, d = self.n, prob.dim
        common = dict(common, method="monte_carlo", n_chains=n)
        floor = self.floor(prob, n)
        target = self.target(spec, prob)
        h = common["step_size"]
        steps = math.ceil(self.stationary_time / h)
        run = run_chains(
            kernel, target, prob.exact_draws(n, self.rng), [steps],
            seed=_stable_seed("stationary", spec.name, h, self.seed),
            momentum0=self.momentum(kernel, n, d), backend=self.backend,
        )  # fmt: skip
        est = self.w2(run.snapshots[steps], prob, floor)
        note = f"from exact draws of π, {steps} steps"
        if run.diverged:
            note += f"; {run.diverged} chains diverged (dropped)"
        rows.append(_row(**common, quantity="w2_stationary", iteration=steps,
                         grads=steps * grads, value=est.w2, noise_floor=est.floor,
                         resolved=est.resolved and not run.diverged,
                         acceptance=run.acceptance, note=note))  # fmt: skip
        if self.ks is not None:
            rows += self._mc_path(spec, kernel, prob, common, grads, target, floor)
        return rows

    def _mc_path(self, spec, kernel, prob, common, grads, target, floor) -> list[dict]:
        n, d = self.n, prob.dim
        h = common["step_size"]
        run = run_chains(
            kernel, target, np.tile(prob.start, (n, 1)), self.ks,
            seed=_stable_seed("path", spec.name, h, prob.dim, self.seed),
            momentum0=self.momentum(kernel, n, d), backend=self.backend,
        )  # fmt: skip
        rows = []
        for k in self.ks:
            est = self.w2(run.snapshots[k], prob, floor)
            rows.append(_row(**dict(common, dim=prob.dim), quantity="w2", iteration=k,
                             grads=k * grads, value=est.w2, noise_floor=est.floor,
                             resolved=est.resolved and not run.diverged,
                             acceptance=run.acceptance))  # fmt: skip
        return rows

    def coupling_rows(self, spec, kernel, prob, common, grads) -> list[dict]:
        rows = []
        h = common["step_size"]
        res = coupling_bound(
            kernel, prob, self.ks, n_pairs=self.n, seed=_stable_seed("coupling", spec.name, h),
            backend=self.backend, target=self.target(spec, prob),
        )  # fmt: skip
        for k, b, se in zip(res.iterations, res.bound, res.se):
            rows.append(_row(**common, method="monte_carlo", quantity="coupling_bound",
                             iteration=int(k), grads=int(k) * grads, value=float(b),
                             value_se=float(se), n_chains=res.n_pairs,
                             acceptance=res.acceptance,
                             note="synchronous coupling: bounds W2(law X_k, law Y_k)"))  # fmt: skip
        if prob.gaussian and spec.kind in ("linear", "random") and prob.dim <= FULL_MAP_MAX_DIM:
            ex = exact_coupling_bound(kernel, prob, self.ks)
            for k, b in zip(ex.iterations, ex.bound):
                rows.append(_row(**common, method="exact", quantity="coupling_bound",
                                 iteration=int(k), grads=int(k) * grads, value=float(b),
                                 note="synchronous coupling, closed form"))  # fmt: skip
            if spec.kind == "linear":
                pair = exact_pair_w2(kernel, prob, self.ks)
                for k, w in zip(self.ks, pair):
                    rows.append(_row(**common, method="exact", quantity="w2_pair",
                                     iteration=k, grads=k * grads, value=float(w),
                                     note="W2(law X_k, law Y_k): X from the start, Y from π"
                                     ))  # fmt: skip
        return rows

    def dim_rows(self, spec, prob: GaussianProblem, grads) -> list[dict]:
        t0 = time.perf_counter()
        common = dict(kernel=spec.name, kind=spec.kind, dim=prob.dim)
        if self.exact(spec, prob):
            try:
                res = grads_to_accuracy(
                    spec.make, prob.eigenvalues, prob.start_eigen, self.eps, grads, self.hs,
                    refine=4,
                )  # fmt: skip
            except NotAffineError as exc:
                return [_row(**common, quantity="grads_to_eps", method="exact",
                             resolved=False, note=f"not separable: {exc}")]  # fmt: skip
            rows = [_row(**common, method=self.exact_method(spec), quantity="grads_to_eps",
                         step_size=res["h"], iteration=-1 if not math.isfinite(res["steps"])
                         else int(res["steps"]), grads=res["grads"], value=res["grads"],
                         resolved=math.isfinite(res["grads"]),
                         note=f"eps={self.eps}; best h over step_sizes (+4 refined)")]  # fmt: skip
        else:
            # Monte Carlo: the first checkpoint after which W2 stays <= eps, at each h
            n = self.n
            floor = self.floor(prob, n)
            ks = self.ks or checkpoints(1000)
            best = (math.inf, math.nan, -1)
            measurable = self.eps >= FLOOR_FACTOR * floor
            if measurable:
                for h in self.hs:
                    kernel = spec.make(h)
                    run = run_chains(
                        kernel, self.target(spec, prob), np.tile(prob.start, (n, 1)), ks,
                        seed=_stable_seed("dim", spec.name, h, prob.dim, self.seed),
                        momentum0=self.momentum(kernel, n, prob.dim), backend=self.backend,
                    )  # fmt: skip
                    w = np.array([self.w2(run.snapshots[k], prob, floor).w2 for k in ks])
                    above = np.nonzero(~(w <= self.eps))[0]
                    i = 0 if above.size == 0 else above[-1] + 1
                    if i < len(ks) and ks[i] * grads < best[0]:
                        best = (ks[i] * grads, h, ks[i])
            if measurable:
                note = f"eps={self.eps}; Monte Carlo: first checkpoint after which W2 <= eps"
            else:
                note = f"eps={self.eps} is below {FLOOR_FACTOR:g} noise floors ({floor:.3g})"
            rows = [_row(**common, method="monte_carlo", quantity="grads_to_eps",
                         step_size=best[1], iteration=best[2], grads=best[0],
                         value=best[0], noise_floor=floor, n_chains=n,
                         resolved=math.isfinite(best[0]), note=note)]  # fmt: skip
        self.log(f"  {spec.name} d={prob.dim}: {rows[0]['value']:.4g} grads to W2 <= {self.eps} "
                 f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip
        return rows
