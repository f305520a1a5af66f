"""The result of a run: draws and per-step statistics as NumPy arrays, and ArviZ output."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Trace"]


def quiet_arviz_summary(idata, **kwargs):
    """``arviz.summary(idata)`` without ArviZ's warnings about short or few chains (the
    summary itself reports ESS and R-hat, which say the same with numbers)."""
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return az.summary(idata, **kwargs)


@dataclass
class Trace:
    """Draws ``(chains, draws, dim)`` and sample statistics ``(chains, draws)`` of one run.

    Attributes:
        draws: positions after warm-up (thinned), shape ``(chains, draws, dim)``. A chain
            that diverged holds NaN after the step where it did.
        sample_stats: ``lp`` (log-density), ``step_size`` and the kernel's per-step info
            (``acceptance_rate``, ``diverging``, ...), each ``(chains, draws)``.
        warmup_stats: the same statistics for the warm-up steps (not thinned).
        step_size: ``(chains,)`` step size used for sampling (adapted, or the kernel's).
        diverged: ``{chain: step}`` for chains whose state became non-finite (steps count
            from the first warm-up step). These chains stopped; the others finished.
        interrupted: True when the run was stopped (Ctrl-C) before it finished.
        names: ``{name: (slice, shape)}`` blocks of the flat position.
        kernel, backend, seed, target_name: how the run was made.
        elapsed: seconds spent sampling (warm-up included), excluding set-up.
        inverse_mass: ``(chains, dim)`` diagonal inverse mass matrix each chain sampled with
            (adapted during warm-up, or the kernel's), for kernels with a mass matrix (HMC);
            None otherwise. ``langevin.HMC(h, inverse_mass=trace.inverse_mass[c])`` reuses it.
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

    @property
    def n_chains(self) -> int:
        return self.draws.shape[0]

    @property
    def n_draws(self) -> int:
        return self.draws.shape[1]

    @property
    def dim(self) -> int:
        return self.draws.shape[2]

    def flat(self) -> np.ndarray:
        """All draws of the chains that did not diverge, as ``(n, dim)``."""
        keep = [c for c in range(self.n_chains) if c not in self.diverged]
        return self.draws[keep].reshape(-1, self.dim)

    def parameters(self) -> dict[str, np.ndarray]:
        """Draws split into the target's named parameters, ``(chains, draws, *shape)``."""
        lead = self.draws.shape[:2]
        return {n: self.draws[..., s].reshape(lead + shape) for n, (s, shape) in self.names.items()}

    def to_arviz(self, constrained: bool = False):
        """An ``arviz.InferenceData`` with ``posterior`` and ``sample_stats`` groups.

        Parameters keep the target's names; vector parameters get a dimension
        ``<name>_dim_0`` with integer coordinates. ``sample_stats`` holds the per-draw
        statistics (``lp``, ``acceptance_rate``, ``diverging`` — which ArviZ's plots mark —
        ``step_size``, and for HMC ``energy``, ``energy_error``, ``n_grad``) and, for kernels
        with a mass matrix, ``inverse_mass`` with dimensions ``(chain, inverse_mass_dim_0)``.
        ``constrained=True`` reports the parameters the target maps its flat coordinates to
        (e.g. ``sigma`` rather than ``log_sigma``), when the target defines that map.

        Example:
            >>> idata = trace.to_arviz()                      # doctest: +SKIP
            >>> import arviz as az; az.summary(idata)          # doctest: +SKIP
        """
        import arviz as az

        if constrained:
            if self.constrain is None:
                raise ValueError("this target has no constrained parametrisation")
            posterior = {k: np.asarray(v) for k, v in self.constrain(self.draws).items()}
        else:
            posterior = self.parameters()
        stats = {k: np.asarray(v) for k, v in self.sample_stats.items()}
        attrs = {
            "kernel": repr(self.kernel),
            "backend": self.backend,
            "seed": str(self.seed),
            "target": self.target_name,
            "interrupted": int(self.interrupted),
            "diverged_chains": str(self.diverged),
            "sampling_time": self.elapsed,
            "inference_library": "langevin",
        }
        with warnings.catch_warnings():
            # ArviZ warns when a group has few draws; a short run is the user's choice.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            idata = az.from_dict(posterior=posterior, sample_stats=stats, attrs=attrs)
        if self.inverse_mass is not None:
            # per chain, not per draw: a variable without the draw dimension
            idata.sample_stats["inverse_mass"] = (
                ("chain", "inverse_mass_dim_0"),
                np.asarray(self.inverse_mass),
            )
            idata.sample_stats = idata.sample_stats.assign_coords(
                inverse_mass_dim_0=np.arange(self.dim)
            )
        return idata

    def summary(self, **kwargs):
        """``arviz.summary`` of the posterior (means, sds, MCSE, ESS, R-hat)."""
        return quiet_arviz_summary(self.to_arviz(), **kwargs)

    def __repr__(self) -> str:
        acc = self.sample_stats.get("acceptance_rate")
        acc_s = f", mean acceptance {np.nanmean(acc):.3f}" if acc is not None and acc.size else ""
        div = f", diverged chains {sorted(self.diverged)}" if self.diverged else ""
        intr = ", INTERRUPTED" if self.interrupted else ""
        return (
            f"Trace({self.kernel!r} on {self.target_name!r}, backend={self.backend!r}: "
            f"{self.n_chains} chains x {self.n_draws} draws x {self.dim} dims{acc_s}{div}{intr})"
        )
