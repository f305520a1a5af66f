"""The result of a tempering SMC run: posterior draws, weighted particles, evidence, stages."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from langevin import _arviz

__all__ = ["SMCTrace"]


def _log_mean_exp(v: np.ndarray) -> float:
    m = float(np.max(v))
    return m + math.log(float(np.mean(np.exp(v - m))))


@dataclass
class SMCTrace:
    """Tempering SMC output; one *run* per independent repeat (R runs).

    Attributes:
        draws: posterior draws ``(R, N, dim)``, equally weighted: the final particles
            resampled (and moved at β = 1 when ``final_mutation``).
        particles: the weighted particles at β = 1 before that, ``(R, N, dim)``.
        log_weights: their log-weights ``(R, N)``.
        log_evidence: ``log Ẑ`` (for R > 1 the log of the mean of the ``Ẑ_r``).
        log_evidence_runs: ``log Ẑ_r`` of each run ``(R,)``.
        log_evidence_var: delta-method variance of ``log_evidence`` from the spread of the
            ``Ẑ_r``, ``s²(Ẑ_r) / (R Z̄²)``; NaN when R = 1.
        stages: per-stage statistics, name -> ``(R, S)`` arrays padded with NaN (runs may
            have different numbers of stages ``S``): ``beta`` (the exponent each stage
            reweights to), ``ess`` (after reweighting), ``resampled`` (before the stage's
            move, 1/0), ``acceptance_rate`` and ``step_size`` (of the moves before the
            reweighting; NaN at stage 0, which reweights the reference draws), ``diverging``
            (particles whose move diverged), ``log_evidence_increment``.
        n_stages: ``(R,)`` number of reweighting stages of each run.
        names, kernel, backend, seed, target_name, elapsed: how the run was made.
    """

    draws: np.ndarray
    particles: np.ndarray
    log_weights: np.ndarray
    log_evidence: float
    log_evidence_runs: np.ndarray
    log_evidence_var: float
    stages: dict[str, np.ndarray]
    n_stages: np.ndarray
    names: dict[str, tuple[slice, tuple[int, ...]]]
    kernel: Any
    backend: str
    seed: int | None
    target_name: str = "target"
    n_steps: int = 0
    elapsed: float = 0.0
    final_acceptance: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def from_runs(cls, runs, *, target, kernel, backend, seed, log_norm, n_steps, elapsed):
        """Assemble a trace from ``(model, SMCResult, draws, draw_ell)`` of each run."""
        log_z = np.array([res.log_evidence + log_norm for _, res, _, _ in runs])
        r = len(runs)
        if r > 1:
            mean = _log_mean_exp(log_z)
            rel = np.exp(log_z - mean)
            var = float(np.var(rel, ddof=1) / r)
        else:
            mean, var = float(log_z[0]), float("nan")
        n_stages = np.array([len(res.ess) for _, res, _, _ in runs])
        width = int(n_stages.max())

        def padded(rows):
            out = np.full((r, width), np.nan)
            for i, row in enumerate(rows):
                out[i, : len(row)] = row
            return out

        stages = {
            "beta": padded([m.betas[1:] for m, _, _, _ in runs]),
            "ess": padded([res.ess for _, res, _, _ in runs]),
            "resampled": padded([res.resampled.astype(float) for _, res, _, _ in runs]),
            "acceptance_rate": padded([[np.nan, *m.acceptance] for m, _, _, _ in runs]),
            "step_size": padded([[np.nan, *m.step_sizes] for m, _, _, _ in runs]),
            "diverging": padded([[0.0, *m.diverging] for m, _, _, _ in runs]),
            "log_evidence_increment": padded(
                [res.log_evidence_increments for _, res, _, _ in runs]
            ),
        }
        return cls(
            draws=np.stack([d for _, _, d, _ in runs]),
            particles=np.stack([np.asarray(res.particles.x) for _, res, _, _ in runs]),
            log_weights=np.stack([res.log_weights for _, res, _, _ in runs]),
            log_evidence=float(mean),
            log_evidence_runs=log_z,
            log_evidence_var=var,
            stages=stages,
            n_stages=n_stages,
            names=target.blocks,
            kernel=kernel,
            backend=backend,
            seed=seed,
            target_name=target.name,
            n_steps=n_steps,
            elapsed=elapsed,
            final_acceptance=np.array(
                [getattr(m, "final_acceptance", np.nan) for m, _, _, _ in runs]
            ),
        )

    # -- convenience ---------------------------------------------------------------------------
    @property
    def n_runs(self) -> int:
        return self.draws.shape[0]

    @property
    def n_particles(self) -> int:
        return self.draws.shape[1]

    @property
    def dim(self) -> int:
        return self.draws.shape[2]

    @property
    def betas(self) -> list[np.ndarray]:
        """The exponents of each run (without the leading 0)."""
        b = self.stages["beta"]
        return [row[np.isfinite(row)] for row in b]

    @property
    def weights(self) -> np.ndarray:
        """Normalised weights of ``particles``, ``(R, N)``."""
        lw = self.log_weights - self.log_weights.max(axis=1, keepdims=True)
        w = np.exp(lw)
        return w / w.sum(axis=1, keepdims=True)

    def posterior_mean(self) -> np.ndarray:
        """Weighted mean of the particles, averaged over the runs, ``(dim,)``."""
        return np.mean(np.einsum("rn,rnd->rd", self.weights, self.particles), axis=0)

    def posterior_cov(self) -> np.ndarray:
        """Weighted covariance of the particles, averaged over the runs, ``(dim, dim)``."""
        covs = []
        for w, x in zip(self.weights, self.particles):
            m = w @ x
            covs.append((x - m).T @ ((x - m) * w[:, None]))
        return np.mean(covs, axis=0)

    def parameters(self) -> dict[str, np.ndarray]:
        """Posterior draws split into the target's named parameters, ``(R, N, *shape)``."""
        lead = self.draws.shape[:2]
        return {n: self.draws[..., s].reshape(lead + shape) for n, (s, shape) in self.names.items()}

    def to_arviz(self):
        """ArviZ data (``arviz.InferenceData`` with ArviZ 0.x, ``xarray.DataTree`` with 1.x):
        ``posterior`` = the equally weighted draws (runs as chains, particles as draws),
        ``smc_stages`` = the per-stage statistics (dims ``chain``, ``stage``), and the
        evidence in the attributes of every group."""
        attrs = {
            "kernel": repr(self.kernel),
            "backend": self.backend,
            "seed": str(self.seed),
            "target": self.target_name,
            "log_evidence": self.log_evidence,
            "log_evidence_var": self.log_evidence_var,
            "n_steps_per_stage": self.n_steps,
            "sampling_time": self.elapsed,
            "inference_library": "langevin",
        }
        return _arviz.build(
            {
                "posterior": _arviz.dataset(self.parameters()),
                "smc_stages": _arviz.dataset(self.stages, lead=("chain", "stage")),
            },
            attrs=attrs,
        )

    def summary(self, **kwargs):
        """``arviz.summary`` of the posterior draws (of the installed ArviZ, 0.x or 1.x)."""
        return _arviz.summary(self.to_arviz(), **kwargs)

    def __repr__(self) -> str:
        var = (
            ""
            if math.isnan(self.log_evidence_var)
            else f" ± {math.sqrt(self.log_evidence_var):.3f}"
        )
        return (
            f"SMCTrace({self.kernel!r} on {self.target_name!r}, backend={self.backend!r}: "
            f"{self.n_runs} run(s) x {self.n_particles} particles x {self.dim} dims, "
            f"stages {self.n_stages.tolist()}, log Z = {self.log_evidence:.4f}{var})"
        )
