"""The figures of a study, one function each (matplotlib, imported when a figure is drawn).

* :func:`plot_bias`: stationary W2 against h on log-log axes, the fitted slope and the
  theory in the legend;
* :func:`plot_w2_vs_iterations`: W2 against iterations (exact or Monte Carlo with its noise
  floor), with the synchronous-coupling bounds where computed;
* :func:`plot_cost_vs_dimension`: gradient evaluations to reach W2 ≤ ε against d, with the
  fitted exponents and the theory.

Each takes a :class:`~langevin.convergence.study.Study` and an optional matplotlib ``ax``,
and returns the figure.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .montecarlo import FLOOR_FACTOR

__all__ = ["plot_bias", "plot_cost_vs_dimension", "plot_w2_vs_iterations", "save_figures"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency of langevin
        raise ImportError(
            "the convergence plots need matplotlib (pip install matplotlib); the study "
            "itself, its table and its CSV/Markdown files do not"
        ) from exc
    return plt


def _axes(ax, figsize=(6.4, 4.6)):
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _colors(study) -> dict:
    plt = _pyplot()
    return {s.name: plt.cm.tab10(i % 10) for i, s in enumerate(study.specs)}


def _fit(study, name: str) -> dict:
    return next(f for f in study.fit_records if f["kernel"] == name)


def _num(v: float, digits: int = 2) -> str:
    return f"{v:.{digits}f}" if math.isfinite(v) else "—"


def plot_bias(study, ax=None):
    """Stationary W2 to π against the step size (log-log) for every kernel of ``study``.

    Exact curves are solid (dashed: a moment lower bound), Monte Carlo points carry their
    noise floor (dotted) and unresolved points are crosses. The legend gives the fitted
    order ± its standard error and the theory.
    """
    fig, ax = _axes(ax)
    colors = _colors(study)
    floor = None
    d = study.problem.dim
    for spec in study.specs:
        pts = sorted(
            (r for r in study.select(kernel=spec.name, quantity="w2_stationary", dim=d)
             if math.isfinite(r["value"])),
            key=lambda r: r["step_size"],
        )  # fmt: skip
        if not pts:
            continue
        f = _fit(study, spec.name)
        th = "0 (exact)" if spec.bias_theory is None else _num(f["bias_order_theory"], 3)
        if f["stationary_bias_zero"]:
            ax.plot([], [], " ", label=f"{spec.name}: W2 = 0 (no position bias)")
            continue
        h = np.array([r["step_size"] for r in pts])
        w = np.array([r["value"] for r in pts])
        ok = np.array([bool(r["resolved"]) for r in pts])
        style = "--" if pts[0]["method"] == "moment_lower_bound" else "-"
        label = (
            f"{spec.name}: slope {_num(f['bias_order'])} ± {_num(f['bias_order_se'])} (theory {th})"
        )
        c = colors[spec.name]
        ax.loglog(h[ok], w[ok], style + "o", ms=3, color=c, label=label)
        if (~ok).any():
            ax.loglog(h[~ok], w[~ok], "x", ms=5, color=c)
        if pts[0]["method"] == "monte_carlo":
            floor = pts[0]["noise_floor"]
    if floor is not None and math.isfinite(floor):
        ax.axhline(floor, color="k", lw=0.8, ls=":", label="noise floor")
        ax.axhline(FLOOR_FACTOR * floor, color="0.5", lw=0.8, ls=":",
                   label=f"{FLOOR_FACTOR:g} × floor")  # fmt: skip
    fit_max = study.settings["fit_max_step"]
    if fit_max < max(study.settings["step_sizes"]):
        ax.axvline(fit_max, color="0.7", lw=0.8)
    ax.set(
        xlabel="step size h",
        ylabel="stationary W2(π_h, π)",
        title=f"{study.problem.name}: stationary bias (dashed: lower bound; x: not resolved)",
    )
    ax.legend(fontsize=7)
    return fig


def plot_w2_vs_iterations(study, ax=None, step_size: float | str | None = None):
    """W2 to π against iterations from the problem's start, for every kernel of ``study``
    at ``step_size`` (default: the largest step size studied; ``"all"``: every step size,
    one line style each, without the coupling bounds).

    Coupling bounds (Monte Carlo, with ±2 standard errors) are dashed; the exact W2 between
    the coupled laws (affine kernels) dash-dotted; the Monte Carlo noise floor dotted.
    """
    fig, ax = _axes(ax, (7.2, 4.8))
    colors = _colors(study)
    every = isinstance(step_size, str)
    if every and step_size != "all":
        raise ValueError(f"step_size must be a float, 'all' or None; got {step_size!r}")
    if every:
        hs = study.settings["step_sizes"]
    else:
        hs = [max(study.settings["step_sizes"]) if step_size is None else float(step_size)]
    styles = ["-", "--", ":", "-."] if every else ["-"]
    floor = None
    d = study.problem.dim
    drew = False
    for spec in study.specs:
        c = colors[spec.name]
        for j, h in enumerate(hs):
            pts = sorted(study.select(kernel=spec.name, quantity="w2", dim=d, step_size=h),
                         key=lambda r: r["iteration"])  # fmt: skip
            tag = f"{spec.name}" + (f" h={h:g}" if len(hs) > 1 else "")
            if pts:
                drew = True
                ax.semilogy([r["iteration"] for r in pts], [r["value"] for r in pts],
                            styles[j % len(styles)], color=c, label=tag)  # fmt: skip
                if pts[0]["method"] == "monte_carlo":
                    floor = pts[0]["noise_floor"]
            cb = sorted(
                (r for r in study.select(kernel=spec.name, quantity="coupling_bound",
                                         step_size=h) if r["method"] == "monte_carlo"),
                key=lambda r: r["iteration"],
            )  # fmt: skip
            if cb and not every:
                drew = True
                k = np.array([r["iteration"] for r in cb])
                b = np.array([r["value"] for r in cb])
                se = np.array([r["value_se"] for r in cb])
                ax.semilogy(k, b, "--", color=c, lw=1.0, label=f"{tag}: coupling bound")
                ax.fill_between(k, np.maximum(b - 2 * se, 1e-300), b + 2 * se, color=c, alpha=0.2)
                pair = sorted(study.select(kernel=spec.name, quantity="w2_pair", step_size=h),
                              key=lambda r: r["iteration"])  # fmt: skip
                if pair:
                    ax.semilogy([r["iteration"] for r in pair], [r["value"] for r in pair],
                                "-.", color=c, lw=0.8,
                                label=f"{tag}: W2(law X_k, law Y_k), exact")  # fmt: skip
    if floor is not None and math.isfinite(floor):
        ax.axhline(floor, color="k", lw=0.8, ls=":", label="noise floor")
    if not drew:
        ax.text(0.5, 0.5, "no W2 against iterations in this study (iterations=None)",
                ha="center", va="center", transform=ax.transAxes)  # fmt: skip
    where = "" if every else f", h = {hs[0]:g}"
    ax.set(xlabel="iterations k", ylabel="W2(law after k steps, π)",
           title=f"{study.problem.name}: from the start{where}")  # fmt: skip
    if drew:
        ax.legend(fontsize=6, ncol=2)
    return fig


def plot_cost_vs_dimension(study, ax=None):
    """Gradient evaluations to reach W2 ≤ ε against the dimension (log-log), the step size
    optimised for each d; the legend gives the fitted exponent and the theory."""
    fig, ax = _axes(ax)
    colors = _colors(study)
    drew = False
    for spec in study.specs:
        pts = sorted(
            (r for r in study.select(kernel=spec.name, quantity="grads_to_eps")
             if math.isfinite(r["value"])),
            key=lambda r: r["dim"],
        )  # fmt: skip
        if not pts:
            continue
        drew = True
        f = _fit(study, spec.name)
        style = "--" if pts[0]["method"] == "moment_lower_bound" else "-"
        ax.loglog(
            [r["dim"] for r in pts],
            [r["value"] for r in pts],
            style + "o",
            color=colors[spec.name],
            label=f"{spec.name}: exponent {_num(f['dim_exponent'])} ± "
            f"{_num(f['dim_exponent_se'])} (theory {_num(f['dim_exponent_theory'], 3)})",
        )
    eps = study.settings["eps"]
    if not drew:
        ax.text(0.5, 0.5, "no cost against dimension in this study (dims=None)",
                ha="center", va="center", transform=ax.transAxes)  # fmt: skip
    ax.set(xlabel="dimension d", ylabel=f"gradient evaluations to W2 ≤ {eps:g}",
           title="cost at fixed accuracy (dashed: lower bound)")  # fmt: skip
    if drew:
        ax.legend(fontsize=7)
    return fig


def save_figures(study, out_dir: str | Path) -> list[Path]:
    """Write the figures that have data as PNGs (``bias_vs_step_size.png``,
    ``w2_vs_iterations.png``, ``cost_vs_dimension.png``); returns their paths."""
    plt = _pyplot()
    out = Path(out_dir)
    paths = []
    has = {q for q in (r["quantity"] for r in study.rows)}
    todo = [
        ("bias_vs_step_size.png", plot_bias, "w2_stationary" in has),
        ("w2_vs_iterations.png", plot_w2_vs_iterations, "w2" in has or "coupling_bound" in has),
        ("cost_vs_dimension.png", plot_cost_vs_dimension, "grads_to_eps" in has),
    ]
    for name, fn, wanted in todo:
        if not wanted:
            continue
        fig = fn(study)
        fig.tight_layout()
        p = out / name
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths
