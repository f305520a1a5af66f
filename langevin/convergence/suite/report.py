"""Fits, the summary table, plots and files (CSV, Markdown, PNG)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..fits import fit_slope
from ..montecarlo import FLOOR_FACTOR
from ..theory import KernelSpec
from .config import Config
from .experiments import COLUMNS

__all__ = [
    "Summary",
    "fit_slope",
    "read_csv",
    "summarise",
    "write_csv",
    "write_markdown",
    "write_plots",
]

#: Below this a stationary W2 on the d = 10 problem is rounding error: the kernel is
#: unbiased for the position on Gaussians (BAOAB, ABOBA).
ZERO_BIAS = 1e-10


def _f(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _sel(rows, **kw):
    return [r for r in rows if all(r[k] == v for k, v in kw.items())]


def _truthy(v) -> bool:
    return v is True or v == "True"


def mc_cost(rows: list[dict], kernel: str, eps: float, grads_per_step: float) -> dict:
    """Fewest gradient evaluations over the Monte Carlo step sizes until W2 stays ≤ eps
    (only where eps is at least ``FLOOR_FACTOR`` noise floors, else unmeasurable)."""
    best = {"grads": math.inf, "h": math.nan, "steps": math.nan, "measurable": True}
    for h in sorted({r["step_size"] for r in _sel(rows, experiment="mc_gaussian", kernel=kernel)}):
        curve = sorted(
            _sel(rows, experiment="mc_gaussian", kernel=kernel, step_size=h, quantity="w2"),
            key=lambda r: r["steps"],
        )
        if not curve:
            continue
        if eps < FLOOR_FACTOR * _f(curve[0]["noise_floor"]):
            best["measurable"] = False
            continue
        w = np.array([_f(r["w2"]) for r in curve])
        above = np.nonzero(~(w <= eps))[0]
        i = 0 if above.size == 0 else above[-1] + 1
        if i < len(curve) and curve[i]["steps"] * grads_per_step < best["grads"]:
            best.update(grads=curve[i]["steps"] * grads_per_step, h=h, steps=curve[i]["steps"])
    return best


class Summary:
    """The fitted orders and costs per kernel (one row of the Markdown table each)."""

    def __init__(self, cfg: Config, specs: list[KernelSpec], rows: list[dict], grads: dict):
        self.cfg = cfg
        self.rows = rows
        self.table = []
        for spec in specs:
            self.table.append(self._kernel_line(spec, grads[spec.name]))

    def _kernel_line(self, spec: KernelSpec, g: float) -> dict:
        cfg, rows = self.cfg, self.rows
        line = {"kernel": spec.name, "kind": spec.kind, "grads_per_step": g, "spec": spec}
        # stationary bias on the rotated Gaussian (exact, or moment lower bound)
        bias = [
            r for r in _sel(rows, experiment="bias_gaussian", kernel=spec.name) if r["w2"] != ""
        ]
        if bias:
            w = np.array([_f(r["w2"]) for r in bias])
            fit = [r for r in bias if _f(r["step_size"]) <= cfg.fit_h_max * (1 + 1e-12)]
            if np.nanmax(w) < ZERO_BIAS:
                line["gauss_order"] = "exact (W2 < 1e-10)"
                line["gauss_slope"] = (math.nan, math.nan, 0)
            else:
                line["gauss_slope"] = fit_slope(
                    [r["step_size"] for r in fit], [r["w2"] for r in fit]
                )
        # quartic: W2 (resolved only) and E[x^2] bias (resolved only)
        for q, key in (("w2", "quartic_w2"), ("x2_bias", "quartic_x2")):
            pts = [
                r
                for r in _sel(rows, experiment="quartic", kernel=spec.name, quantity=q)
                if _truthy(r["resolved"])
            ]
            allpts = _sel(rows, experiment="quartic", kernel=spec.name, quantity=q)
            if allpts:
                line[key] = fit_slope(
                    [r["step_size"] for r in pts], [abs(_f(r["value"])) for r in pts]
                )
                line[key + "_n"] = (len(pts), len(allpts))
        # Gaussian 1-D Monte Carlo: stationary W2 (last checkpoint of each h) and variance
        mcs = _sel(rows, experiment="mc_gaussian", kernel=spec.name, quantity="var")
        if mcs:
            pts = [r for r in mcs if abs(_f(r["value"]) - 1.0) > 4 * _f(r["value_se"])]
            line["mc_var"] = fit_slope(
                [r["step_size"] for r in pts], [abs(_f(r["value"]) - 1.0) for r in pts]
            )
            line["mc_var_n"] = (len(pts), len(mcs))
        # dimension
        dim_rows = _sel(
            rows, experiment="cost_dimension", kernel=spec.name, quantity="grads_to_eps"
        )
        fixed = _sel(rows, experiment="cost_dimension", kernel=spec.name, quantity="w2_stationary")
        if fixed and np.nanmax([_f(r["w2"]) for r in fixed]) > ZERO_BIAS:
            line["dim_w2_slope"] = fit_slope([r["dim"] for r in fixed], [r["w2"] for r in fixed])
        if dim_rows:
            line["dim_slope"] = fit_slope(
                [r["dim"] for r in dim_rows], [r["grads"] for r in dim_rows]
            )
            at = [r for r in dim_rows if r["dim"] == cfg.dim] or dim_rows[:1]
            line["cost_d"] = (_f(at[0]["grads"]), _f(at[0]["step_size"]), at[0]["dim"])
        c1 = _sel(rows, experiment="cost_1d", kernel=spec.name, note="fine grid")
        if c1:
            line["cost_1d"] = (_f(c1[0]["grads"]), _f(c1[0]["step_size"]))
        if _sel(rows, experiment="mc_gaussian", kernel=spec.name):
            line["cost_mc"] = mc_cost(rows, spec.name, cfg.mc_eps, g)
        return line


def _slope_text(fit, n_used=None) -> str:
    if fit is None:
        return "—"
    s, se, _n = fit
    if not math.isfinite(s):
        extra = f" ({n_used[0]}/{n_used[1]} resolved)" if n_used else ""
        return "not resolved" + extra
    txt = f"{s:.2f}" + (f" ± {se:.2f}" if math.isfinite(se) else "")
    if n_used:
        txt += f" ({n_used[0]}/{n_used[1]} pts)"
    return txt


def _theory_bias(spec: KernelSpec) -> str:
    if spec.bias_theory is None:
        return "0 (exact, MH)"
    txt = f"{spec.bias_theory:g}"
    if spec.bias_gaussian is not None and spec.bias_gaussian != spec.bias_theory:
        txt += f"; Gaussian {spec.bias_gaussian:g}" if spec.bias_gaussian else "; Gaussian: 0 bias"
    return txt


def _cost_text(c) -> str:
    if c is None:
        return "—"
    g, h = c[0], c[1]
    return "never (bias ≥ ε)" if not math.isfinite(g) else f"{g:,.0f} (h={h:.3g})"


def _mc_cost_text(c) -> str:
    if c is None:
        return "—"
    if not math.isfinite(c["grads"]):
        return "ε below floor" if not c["measurable"] else "not reached"
    return f"{c['grads']:,.0f} (h={c['h']:.3g})"


def summarise(cfg: Config, specs: list[KernelSpec], rows: list[dict], grads: dict) -> Summary:
    return Summary(cfg, specs, rows, grads)


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(float(v)) if isinstance(v, float) else v) for k, v in r.items()})


_INT_COLUMNS = ("dim", "n_chains", "diverged")


def read_csv(path: Path) -> list[dict]:
    """Rows as :func:`write_csv` wrote them, numbers and flags converted back (for
    re-plotting and re-tabulating a finished run)."""
    rows = []
    with open(path, newline="") as f:
        for raw in csv.DictReader(f):
            row = {}
            for k, v in raw.items():
                if v in ("", None) or k in (
                    "experiment",
                    "kernel",
                    "kind",
                    "method",
                    "quantity",
                    "note",
                ):
                    row[k] = v if v is not None else ""
                elif v in ("True", "False"):
                    row[k] = v == "True"
                else:
                    x = float(v)
                    row[k] = int(x) if k in _INT_COLUMNS and x.is_integer() else x
            rows.append(row)
    return rows


def markdown_table(summary: Summary) -> str:
    cfg = summary.cfg
    head = (
        f"| kernel | grads/step | bias order, Gaussian d={cfg.dim} (exact) "
        "| bias order, quartic W2 (MC) | quartic E[x²] bias order (MC) | bias order, theory "
        "| dim. exponent of the cost (exact) | dim. exponent, theory "
        f"| stationary W2 ∝ d^x at h={cfg.dim_fixed_h:g} (exact) "
        f"| grads to W2 ≤ {cfg.eps} (d={cfg.dim}, κ={cfg.kappa:g}, exact) "
        f"| grads to W2 ≤ {cfg.mc_eps} (1-D, exact) | grads to W2 ≤ {cfg.mc_eps} (1-D, MC) |"
    )
    lines = [head, "|" + "---|" * 12]
    for t in summary.table:
        spec = t["spec"]
        gauss = t.get("gauss_order") or _slope_text(t.get("gauss_slope"))
        if spec.kind == "random" and "gauss_slope" in t:
            gauss += " (moment bound)"
        if spec.kind == "mc":
            gauss = "— (MC: see 1-D var.)"
        dim_fit = _slope_text(t.get("dim_slope")) if "dim_slope" in t else "not measured"
        if spec.kind == "random" and "dim_slope" in t:
            dim_fit += " (moment bound)"
        dim_theory = "—" if math.isnan(spec.dim_theory) else f"{spec.dim_theory:.3g}"
        if "dim_w2_slope" in t:
            dim_w2 = _slope_text(t["dim_w2_slope"])
        elif "dim_slope" in t:
            dim_w2 = "0 (exact)"
        else:
            dim_w2 = "—"
        cd = t.get("cost_d")
        cost_d = _cost_text(cd)
        if spec.kind == "random" and cd:
            cost_d = "≥ " + cost_d
        c1 = t.get("cost_1d")
        cost_1 = _cost_text(c1) if c1 else "—"
        if spec.kind == "random" and c1:
            cost_1 = "≥ " + cost_1
        lines.append(
            f"| {spec.name} | {t['grads_per_step']:g} | {gauss} "
            f"| {_slope_text(t.get('quartic_w2'), t.get('quartic_w2_n'))} "
            f"| {_slope_text(t.get('quartic_x2'), t.get('quartic_x2_n'))} "
            f"| {_theory_bias(spec)} | {dim_fit} | {dim_theory} | {dim_w2} | {cost_d} | {cost_1} "
            f"| {_mc_cost_text(t.get('cost_mc'))} |"
        )
    return "\n".join(lines)


def write_markdown(summary: Summary, path: Path, meta: dict) -> None:
    cfg = summary.cfg
    rows = summary.rows
    out = [f"# Convergence rates of the samplers ({cfg.name} run)", ""]
    out.append(
        "Generated by `python -m benchmarks.convergence"
        + (f" --{cfg.name}" if cfg.name in ("quick", "tiny") else "")
        + "`. What is measured and how: `benchmarks/README.md` (section *Convergence-rate "
        "benchmarks*), `docs/convergence.md` and the docstrings of `langevin/convergence/`. "
        "Every number comes "
        "from the kernels' own step code: exact laws from the affine maps read off their "
        "NumPy twins, Monte Carlo from the JAX backend."
    )
    out += ["", "## Summary", "", markdown_table(summary), ""]
    out += [
        "Reading the table:",
        "",
        f"* *bias order*: least-squares slope of log W2(π_h, π) against log h, with its OLS "
        f"standard error and, for Monte Carlo, the points used / tried. Gaussian: rotated "
        f"N(m, Σ), d = {cfg.dim}, κ = {cfg.kappa:g}, h ≤ {cfg.fit_h_max:g}. Quartic: "
        f"U = x²/2 + x⁴/4 in 1-D, {cfg.mc_chains:,} chains, h ∈ {list(cfg.quartic_h)}; a "
        f"point counts only if W2 > {FLOOR_FACTOR:g} noise floors (E[x²]: bias > 4 MCSE) "
        "and no chain diverged.",
        "* *(moment bound)*: the randomized midpoint's law on a Gaussian is a Gaussian "
        "mixture; its exact first two moments give a lower bound on W2 (Gelbrich), not W2.",
        f"* *dim. exponent*: slope of log(gradient evaluations to reach W2 ≤ {cfg.eps}) against "
        f"log d for d ∈ {list(cfg.dims)}, κ = {cfg.kappa:g}, start {cfg.start_sd:g} standard "
        "deviations from the mean along every eigendirection, the step size optimised for "
        "each d. *stationary W2 ∝ d^x*: slope of log W2(π_h, π) on log d at the fixed h "
        f"= {cfg.dim_fixed_h:g} (ULA theory: exactly 1/2 here, since W2² sums one term per "
        "eigendirection).",
        "* *grads to W2 ≤ ε*: gradient evaluations (steps × evaluations per step, counted on "
        "the kernel's own code) at the best step size. 1-D: N(m, 1) from m + "
        f"{cfg.start_sd:g}; MC: minimum over h ∈ {list(cfg.mc_h)} of the first recorded step "
        f"after which W2 stays ≤ ε ({cfg.mc_chains:,} chains); '≥' marks a lower bound.",
        "",
    ]
    # theory with citations
    out += ["## Theory beside the measurements", ""]
    for t in summary.table:
        spec = t["spec"]
        out.append(f"* **{spec.name}** ({spec.kind}): {spec.note}.")
    out += [
        "",
        "Sources: Durmus & Moulines (2019), Bernoulli 25(4); Dalalyan (2017), JRSS B 79(3); "
        "Li, Zha & Tao (2022), ICLR, arXiv:2109.03839 (√d for LMC; ALGORITHMS.md §10a); "
        "Shen & Lee (2019), NeurIPS, arXiv:1909.05503 (randomized midpoint: ε·√(d/m) error in "
        "Õ(κ^{7/6}/ε^{1/3} + κ/ε^{2/3}) steps); Yu, Karagulyan & Dalalyan (2023), "
        "arXiv:2306.08494 (computable W2 bounds for the randomized midpoint and kinetic "
        "Euler; rates not checked here); Cheng, Chatterji, Bartlett & Jordan (2018), COLT; "
        "Leimkuhler & Matthews (2013), Appl. Math. Res. Express (BAOAB); Chewi et al. (2021), "
        "COLT (MALA d^{1/2}); Beskos et al. (2013), Bernoulli (HMC d^{−1/4} step size). See "
        "the docstring of `langevin/convergence/theory.py` for which claims were checked.",
        "",
    ]
    # Monte Carlo checks against exact values
    checks = [r for r in rows if r["experiment"] == "mc_gaussian" and r["quantity"] == "var"]
    if checks:
        out += [
            "## Monte Carlo against exact values (1-D Gaussian N(m, 1))",
            "",
            "Stationary variance from per-chain time averages (chains started at exact "
            "draws of π, second half of each run) "
            "against the exact value read off the kernel (unadjusted kernels) or 1 "
            "(Metropolis-corrected); z = (MC − exact)/MCSE.",
            "",
            "The last columns compare the Monte Carlo W2 of the stationary law with the "
            "Gaussian formula on the exact variance: W2 itself for linear kernels, a lower "
            "bound for the randomized midpoint (a Gaussian mixture); the MC value includes "
            "the noise floor (roughly in quadrature).",
            "",
            "| kernel | h | MC variance | MCSE | exact | z | W2 at end (MC) | noise floor | "
            "W2 from exact moments | acceptance |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in checks:
            ends = sorted(
                _sel(
                    rows,
                    experiment="mc_gaussian",
                    kernel=r["kernel"],
                    step_size=r["step_size"],
                    quantity="w2",
                ),
                key=lambda q: q["steps"],
            )
            end = ends[-1] if ends else {"w2": math.nan, "noise_floor": math.nan}
            z = (_f(r["value"]) - _f(r["exact_value"])) / _f(r["value_se"])
            gauss = abs(math.sqrt(_f(r["exact_value"])) - 1.0)
            gauss_txt = "0 (exact kernel)" if r["kind"] == "mc" else f"{gauss:.4f}"
            if r["kind"] == "random":
                gauss_txt = "≥ " + gauss_txt
            out.append(
                f"| {r['kernel']} | {r['step_size']:g} | {_f(r['value']):.5f} "
                f"| {_f(r['value_se']):.5f} | {_f(r['exact_value']):.6f} | {z:+.2f} "
                f"| {_f(end['w2']):.4f} | {_f(end['noise_floor']):.4f} | {gauss_txt} "
                f"| {r['acceptance']} |"
            )
        out.append("")
    # quartic details
    qrows = [r for r in rows if r["experiment"] == "quartic"]
    if qrows:
        out += [
            "## Quartic target U = x²/2 + x⁴/4 (1-D, Monte Carlo from exact draws)",
            "",
            f"E_π[x²] = {_f(qrows[1]['exact_value']):.10f} by quadrature.",
            "",
            "| kernel | h | W2 | noise floor | resolved | E[x²] bias | MCSE | diverged chains |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in _sel(qrows, quantity="w2"):
            b = _sel(qrows, kernel=r["kernel"], step_size=r["step_size"], quantity="x2_bias")[0]
            out.append(
                f"| {r['kernel']} | {r['step_size']:g} | {_f(r['w2']):.4f} "
                f"| {_f(r['noise_floor']):.4f} | {r['resolved']} | {_f(b['value']):+.5f} "
                f"| {_f(b['value_se']):.5f} | {r['diverged']} |"
            )
        out.append("")
    # checks of the extraction
    checks = [r for r in rows if r["experiment"] == "bias_gaussian" and r["w2_check"] != ""]
    if checks:
        worst = max(
            abs(_f(r["w2"]) - _f(r["w2_check"])) / max(_f(r["w2"]), 1e-300)
            for r in checks
            if _f(r["w2"]) > ZERO_BIAS
        )
        out += [
            "## Consistency",
            "",
            f"Stationary W2 on the rotated target (full affine map, Lyapunov equation) against "
            f"the per-eigendirection computation: largest relative difference {worst:.2e}.",
            "",
        ]
    out += ["## Run", ""]
    for k, v in meta.items():
        out.append(f"* {k}: {v}")
    out.append("")
    path.write_text("\n".join(out))


def _legend(ax, **kw) -> None:
    """A legend when something is labelled (a partial run, ``--only``, leaves panels empty)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kw)


def _step_ticks(ax, values) -> None:
    """Label a log axis at the step sizes used, and nowhere else."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    ax.xaxis.set_major_locator(FixedLocator(list(values)))
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def write_plots(summary: Summary, out_dir: Path) -> list[Path]:
    """The three PNG figures; returns their paths."""
    # Figures drawn without pyplot: files only, and the user's matplotlib backend untouched.
    import matplotlib
    from matplotlib.figure import Figure

    def subplots(ncols: int, figsize: tuple[float, float]):
        fig = Figure(figsize=figsize)
        return fig, fig.subplots(1, ncols)

    cfg, rows = summary.cfg, summary.rows
    names = [t["kernel"] for t in summary.table]
    colors = {n: matplotlib.colormaps["tab10"](i % 10) for i, n in enumerate(names)}
    paths = []

    # 1. bias against step size
    fig, axes = subplots(3, (16, 4.8))
    ax = axes[0]
    for t in summary.table:
        pts = [
            r for r in _sel(rows, experiment="bias_gaussian", kernel=t["kernel"]) if r["w2"] != ""
        ]
        if not pts:
            continue
        h = np.array([_f(r["step_size"]) for r in pts])
        w = np.array([_f(r["w2"]) for r in pts])
        if np.nanmax(w) < ZERO_BIAS:
            ax.plot([], [], " ", label=f"{t['kernel']}: W2 = 0 (exact in x)")
            continue
        style = "--" if t["kind"] == "random" else "-"
        s = t.get("gauss_slope", (math.nan,))[0]
        ax.loglog(
            h,
            w,
            style + "o",
            ms=3,
            color=colors[t["kernel"]],
            label=f"{t['kernel']} (slope {s:.2f})",
        )
    ax.axvline(cfg.fit_h_max, color="0.7", lw=0.8)
    ax.set(
        xlabel="step size h",
        ylabel="stationary W2 to π",
        title=f"Gaussian d={cfg.dim}, κ={cfg.kappa:g} (exact; dashed: moment bound)",
    )
    _legend(ax, fontsize=7)
    for ax, q, title in (
        (axes[1], "w2", "quartic: W2 (MC)"),
        (axes[2], "x2_bias", "quartic: |E[x²] bias| (MC)"),
    ):
        floor = None
        for t in summary.table:
            pts = _sel(rows, experiment="quartic", kernel=t["kernel"], quantity=q)
            if not pts:
                continue
            h = np.array([_f(r["step_size"]) for r in pts])
            v = np.abs([_f(r["value"]) for r in pts])
            ok = np.array([_truthy(r["resolved"]) for r in pts])
            key = "quartic_w2" if q == "w2" else "quartic_x2"
            s = t.get(key, (math.nan,))[0]
            c = colors[t["kernel"]]
            label = t["kernel"] + (f" (slope {s:.2f})" if math.isfinite(s) else "")
            ax.loglog(h[ok], v[ok], "o-", ms=4, color=c, label=label)
            ax.loglog(h[~ok], v[~ok], "x", ms=5, color=c)
            if q == "w2":
                floor = _f(pts[0]["noise_floor"])
            else:
                se = np.array([_f(r["value_se"]) for r in pts])
                ax.errorbar(h, v, yerr=[np.minimum(se, 0.9 * v), se], fmt="none", color=c, lw=0.8)
        if floor:
            ax.axhline(floor, color="k", lw=0.8, ls=":", label="noise floor")
            ax.axhline(
                FLOOR_FACTOR * floor, color="0.5", lw=0.8, ls=":", label=f"{FLOOR_FACTOR:g} × floor"
            )
        if q != "w2":  # unresolved biases near 0 would stretch the axis down
            ax.set_ylim(1e-4, 2 * ax.get_ylim()[1])
        ax.set(xlabel="step size h", title=title + " (x: not resolved)")
        _step_ticks(ax, cfg.quartic_h)
        _legend(ax, fontsize=7, loc="lower right" if q != "w2" else "best")
    fig.tight_layout()
    p = out_dir / "bias_vs_step_size.png"
    fig.savefig(p, dpi=110)
    paths.append(p)

    # 2. W2 against steps
    fig, axes = subplots(2, (13, 4.8))
    ax = axes[0]
    styles = ["-", "--", ":", "-."]
    for t in summary.table:
        for j, h in enumerate(cfg.path_h):
            pts = sorted(
                _sel(rows, experiment="path_gaussian", kernel=t["kernel"], step_size=h),
                key=lambda r: r["steps"],
            )
            if not pts:
                continue
            ax.semilogy(
                [r["steps"] for r in pts],
                [_f(r["w2"]) for r in pts],
                styles[j % 4],
                color=colors[t["kernel"]],
                label=f"{t['kernel']} h={h:g}",
            )
    ax.set(
        xlabel="steps k",
        ylabel="W2(law after k steps, π)",
        title=f"Gaussian d={cfg.dim}, κ={cfg.kappa:g}, exact",
    )
    _legend(ax, fontsize=6, ncol=2)
    ax = axes[1]
    # h = 1 = 1/L puts ULA's and MALA's mean on m in one step in 1-D: show h near 0.5
    h_mc = min(cfg.mc_h, key=lambda h: abs(math.log(h / 0.5))) if cfg.mc_h else None
    floor = None
    for t in summary.table:
        pts = sorted(
            _sel(rows, experiment="mc_gaussian", kernel=t["kernel"], step_size=h_mc, quantity="w2"),
            key=lambda r: r["steps"],
        )
        if not pts:
            continue
        floor = _f(pts[0]["noise_floor"])
        ax.semilogy(
            [r["steps"] for r in pts],
            [_f(r["w2"]) for r in pts],
            "o-",
            ms=3,
            color=colors[t["kernel"]],
            label=t["kernel"],
        )
    if floor:
        ax.axhline(floor, color="k", ls=":", lw=0.8, label="noise floor")
    ax.set(
        xlabel="steps k",
        ylabel="W2 (Monte Carlo)",
        title=f"1-D N(m, 1), h={h_mc}, {cfg.mc_chains:,} chains",
    )
    _legend(ax, fontsize=7)
    fig.tight_layout()
    p = out_dir / "w2_vs_steps.png"
    fig.savefig(p, dpi=110)
    paths.append(p)

    # 3. cost (and bias) against dimension
    fig, axes = subplots(2, (13, 4.8))
    for ax, quantity in zip(axes, ("grads_to_eps", "w2_stationary")):
        for t in summary.table:
            pts = sorted(
                _sel(rows, experiment="cost_dimension", kernel=t["kernel"], quantity=quantity),
                key=lambda r: r["dim"],
            )
            y = np.array([_f(r["value"]) for r in pts])
            if not pts or not np.any(y > ZERO_BIAS):
                continue
            key = "dim_slope" if quantity == "grads_to_eps" else "dim_w2_slope"
            s = t.get(key, (math.nan,))[0]
            style = "--" if t["kind"] == "random" else "-"
            ax.loglog(
                [r["dim"] for r in pts],
                y,
                style + "o",
                color=colors[t["kernel"]],
                label=f"{t['kernel']} (exponent {s:.2f})",
            )
        _legend(ax, fontsize=7)
    axes[0].set(
        xlabel="dimension d",
        ylabel=f"gradient evaluations to W2 ≤ {cfg.eps}",
        title=f"κ={cfg.kappa:g}, best step size per d (exact; dashed: lower bound)",
    )
    axes[1].set(
        xlabel="dimension d",
        ylabel="stationary W2 to π",
        title=f"κ={cfg.kappa:g}, h={cfg.dim_fixed_h:g} (BAOAB, ABOBA: 0, not shown)",
    )
    fig.tight_layout()
    p = out_dir / "cost_vs_dimension.png"
    fig.savefig(p, dpi=110)
    paths.append(p)
    return paths
