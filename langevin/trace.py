"""The result of a run: draws and per-step statistics as NumPy arrays, and ArviZ output."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from langevin import _arviz

__all__ = ["Trace"]


def quiet_arviz_summary(idata, **kwargs):
    """``arviz.summary(idata)`` of the installed ArviZ (0.x or 1.x) without its warnings about
    short or few chains (the summary itself reports ESS and R-hat, which say the same with
    numbers)."""
    return _arviz.summary(idata, **kwargs)


def _is_float(a: np.ndarray) -> bool:
    return np.issubdtype(np.asarray(a).dtype, np.floating)


@dataclass
class Trace:
    """Draws ``(chains, draws, dim)`` and sample statistics ``(chains, draws)`` of one run.

    Attributes:
        draws: positions after warm-up (thinned), shape ``(chains, draws, dim)``. A chain
            that diverged holds NaN after the step where it did.
        sample_stats: ``lp`` (log-density), ``step_size`` and the kernel's per-step info
            (``acceptance_rate``, ``diverging``, ...), each ``(chains, draws)``. Float
            statistics of a stopped chain after it stopped are NaN (missing), never 0;
            ``trace.live`` says which draws come from a running chain.
        warmup_stats: the same statistics for the warm-up steps (not thinned), NaN likewise.
        step_size: ``(chains,)`` step size used for sampling (adapted, or the kernel's).
        diverged: ``{chain: step}`` for chains whose state became non-finite (steps count
            from the first warm-up step, and ``step`` is the number of steps the chain made,
            the one that diverged included). These chains stopped; the others finished.
            ``summary()``, ``to_arviz()`` and ``flat()`` summarise the others and say so.
        interrupted: True when the run was stopped (Ctrl-C) before it finished.
        failures: ``{chain: ChainFailure}`` for chains that stopped because the target's
            code raised (the step, the position it started from, the exception); their draws
            before are kept, those after are NaN.
        names: ``{name: (slice, shape)}`` blocks of the flat position.
        kernel, backend, seed, target_name: how the run was made.
        elapsed: seconds spent sampling (warm-up included), excluding set-up.
        inverse_mass: ``(chains, dim)`` diagonal inverse mass matrix each chain sampled with
            (adapted during warm-up, or the kernel's), for kernels with a mass matrix (HMC,
            NUTS), ``(chains, dim, dim)`` for a dense metric (``metric="dense"``);
            None otherwise. ``langevin.HMC(h, inverse_mass=trace.inverse_mass[c])`` reuses it.
        generator_states: Numba: each chain's generator state at the end of the run
            (``numpy.random.Generator.bit_generator.state``; a generator set to it draws what
            the run would have drawn next). JAX: None (its keys follow from the seed).
    """

    draws: np.ndarray
    sample_stats: dict[str, np.ndarray]
    warmup_stats: dict[str, np.ndarray]
    step_size: np.ndarray
    names: dict[str, tuple[slice, tuple[int, ...]]]
    kernel: Any
    backend: str
    seed: int | None
    target_name: str = "target"
    diverged: dict[int, int] = field(default_factory=dict)
    interrupted: bool = False
    elapsed: float = 0.0
    constrain: Any = None
    inverse_mass: np.ndarray | None = None
    failures: dict[int, Any] = field(default_factory=dict)
    generator_states: list | None = None

    def __post_init__(self) -> None:
        # A stopped chain made no steps after it stopped: its statistics there are missing
        # (NaN), not the zeros or fill values the engine leaves in its buffers. Draws: NaN
        # marks them (the driver's rule); warm-up steps: their index against ``diverged``.
        if not self.stop_steps:
            return
        dead = ~self.live
        if dead.any():
            self.sample_stats = {
                k: np.where(dead, np.nan, v) if _is_float(v) and v.shape == dead.shape else v
                for k, v in self.sample_stats.items()
            }
        stopped = np.array([self.stop_steps.get(c, -1) for c in range(self.n_chains)])
        out = {}
        for k, v in self.warmup_stats.items():
            v = np.asarray(v)
            if _is_float(v) and v.ndim == 2 and v.shape[0] == self.n_chains:
                step = np.arange(v.shape[1])[None, :]
                v = np.where((stopped[:, None] >= 0) & (step >= stopped[:, None]), np.nan, v)
            out[k] = v
        self.warmup_stats = out

    @property
    def n_chains(self) -> int:
        return self.draws.shape[0]

    @property
    def n_draws(self) -> int:
        return self.draws.shape[1]

    @property
    def dim(self) -> int:
        return self.draws.shape[2]

    @property
    def stop_steps(self) -> dict[int, int]:
        """``{chain: steps made}`` for every chain that stopped early: diverged
        (:attr:`diverged`) or failed (:attr:`failures`: the target's code raised)."""
        out = {int(c): int(s) for c, s in self.diverged.items()}
        out.update({int(c): int(f.step) - 1 for c, f in self.failures.items()})
        return out

    @property
    def stopped_chains(self) -> list[int]:
        """The chains that stopped early (diverged, or their target code raised), in order."""
        return sorted(self.stop_steps)

    @property
    def running_chains(self) -> list[int]:
        """The chains that ran to the end (all but :attr:`stopped_chains`)."""
        stopped = self.stop_steps
        return [c for c in range(self.n_chains) if c not in stopped]

    @property
    def live(self) -> np.ndarray:
        """``(chains, draws)`` bool: True where the draw comes from a chain still running
        (False from the step a chain diverged on)."""
        live = np.ones(self.draws.shape[:2], dtype=bool)
        for c in self.stop_steps:
            if 0 <= c < self.n_chains:
                live[c] = np.all(np.isfinite(self.draws[c]), axis=-1)
        return live

    def flat(self) -> np.ndarray:
        """All draws of the chains that did not stop, as ``(n, dim)``."""
        return self.draws[self.running_chains].reshape(-1, self.dim)

    def parameters(self) -> dict[str, np.ndarray]:
        """Draws split into the target's named parameters, ``(chains, draws, *shape)``."""
        lead = self.draws.shape[:2]
        return {n: self.draws[..., s].reshape(lead + shape) for n, (s, shape) in self.names.items()}

    def to_arviz(self, constrained: bool = False, include_stopped: bool = False):
        """ArviZ data with ``posterior`` and ``sample_stats`` groups: an
        ``arviz.InferenceData`` with ArviZ 0.x, an ``xarray.DataTree`` with ArviZ 1.x (same
        groups, variables, dimensions and coordinates on both).

        Parameters keep the target's names; vector parameters get a dimension
        ``<name>_dim_0`` with integer coordinates. ``sample_stats`` holds the per-draw
        statistics (``lp``, ``acceptance_rate``, ``diverging`` — which ArviZ's plots mark —
        ``step_size``, and the kernel's own: for HMC ``energy``, ``energy_error``, ``n_grad``;
        for NUTS ``energy``, ``tree_depth``, ``n_grad``) and, for kernels
        with a mass matrix, ``inverse_mass`` with dimensions ``(chain, inverse_mass_dim_0)``.
        ``constrained=True`` reports the parameters the target maps its flat coordinates to
        (e.g. ``sigma`` rather than ``log_sigma``), when the target defines that map.

        Chains that stopped (``trace.diverged``, ``trace.failures``) are left out unless
        ``include_stopped``: a chain's NaN draws would make every ArviZ statistic NaN. The
        ``chain`` coordinate keeps the run's chain numbers (``[0, 2, 3]`` when chain 1
        stopped), and the attributes ``stopped_chains``, ``diverged_chains`` (``{chain:
        step}``) and ``failed_chains`` name them.

        Example:
            >>> idata = trace.to_arviz()                      # doctest: +SKIP
            >>> import arviz as az; az.summary(idata)          # doctest: +SKIP
        """
        if constrained and self.constrain is None:
            raise ValueError("constrained=True: this target has no constrained parametrisation")
        chains = list(range(self.n_chains)) if include_stopped else self.running_chains
        if not chains:
            raise ValueError(
                f"all {self.n_chains} chains stopped (after steps {self.stop_steps}); "
                "there are no draws to summarise. to_arviz(include_stopped=True) keeps their "
                "draws (NaN after the step each chain stopped on)"
            )
        if constrained:
            posterior = {k: np.asarray(v) for k, v in self.constrain(self.draws[chains]).items()}
        else:
            posterior = {k: v[chains] for k, v in self.parameters().items()}
        stats = {k: np.asarray(v)[chains] for k, v in self.sample_stats.items()}
        attrs = {
            "kernel": repr(self.kernel),
            "backend": self.backend,
            "seed": str(self.seed),
            "target": self.target_name,
            "interrupted": int(self.interrupted),
            "diverged_chains": str(self.diverged),
            "failed_chains": str(sorted(self.failures)),
            "stopped_chains": str(self.stopped_chains),
            "stopped_chains_included": int(bool(include_stopped and self.stop_steps)),
            "sampling_time": self.elapsed,
            "inference_library": "langevin",
        }
        stats_ds = _arviz.dataset(stats, chains=chains)
        if self.inverse_mass is not None:
            # per chain, not per draw: a variable without the draw dimension
            mass = _arviz.dataset(
                {"inverse_mass": np.asarray(self.inverse_mass)[chains]},
                chains=chains,
                lead=("chain",),
            )
            stats_ds = stats_ds.merge(mass)
        return _arviz.build(
            {"posterior": _arviz.dataset(posterior, chains=chains), "sample_stats": stats_ds},
            attrs=attrs,
        )

    def summary(self, **kwargs):
        """``arviz.summary`` of the posterior (means, sds, MCSE, ESS, R-hat) of the chains
        that ran to the end.

        Stopped chains are left out, with a ``DivergenceWarning`` naming them; the
        DataFrame's ``attrs["stopped_chains"]`` lists them too. Keyword arguments go to
        ``arviz.summary``.
        """
        data = self.to_arviz()
        if self.stop_steps:
            from langevin.driver import DivergenceWarning

            warnings.warn(
                f"summary of {len(self.running_chains)} of {self.n_chains} chains: chain(s) "
                + ", ".join(f"{c} (step {s})" for c, s in sorted(self.stop_steps.items()))
                + " stopped (their state became non-finite, or the target's code raised) and "
                "are left out",
                DivergenceWarning,
                stacklevel=2,
            )
        table = quiet_arviz_summary(data, **kwargs)
        table.attrs["stopped_chains"] = self.stopped_chains
        return table

    def plot_trace(
        self,
        compact: bool = True,
        figsize: tuple[float, float] | None = None,
        constrained: bool = False,
    ):
        """Density and trace plot of each parameter (ArviZ's ``plot_trace`` on ArviZ 0.x,
        ``plot_trace_dist`` on 1.x) of the chains that ran to the end; returns the
        matplotlib figure. ``compact=False`` gives one row per coordinate.

        Example:
            >>> trace.plot_trace().savefig("trace.png")        # doctest: +SKIP
        """
        return _arviz.plot_trace(self.to_arviz(constrained=constrained), compact=compact,
                                 figsize=figsize)  # fmt: skip

    def __repr__(self) -> str:
        acc = self.sample_stats.get("acceptance_rate")
        acc_s = ""
        if acc is not None and acc.size:
            live = np.asarray(acc, dtype=float)[self.live] if acc.shape == self.live.shape else acc
            if np.isfinite(live).any():
                acc_s = f", mean acceptance {np.nanmean(live):.3f}"
        div = ""
        if self.stop_steps:
            div = f", stopped chains {self.stopped_chains} (left out of summaries)"
        intr = ", INTERRUPTED" if self.interrupted else ""
        return (
            f"Trace({self.kernel!r} on {self.target_name!r}, backend={self.backend!r}: "
            f"{self.n_chains} chains x {self.n_draws} draws x {self.dim} dims{acc_s}{div}{intr})"
        )
