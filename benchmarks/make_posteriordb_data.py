"""How the shipped posteriordb data was made (provenance; run from the repository root).

Copies every posteriordb folder that has reference draws into the package and converts the
reference draws to float64 arrays ``(10, 1000, dim)`` in the unconstrained coordinates of the
target (``langevin.targets.posteriordb_models``), with the MCSE of each mean from ArviZ's ESS
(method "mean"), stored compressed (``np.savez_compressed``).

Unconstrained coordinates (each folder's ``model.md``):

* a scale (``sigma``; ``tau`` in eight_schools; ``rho``, ``alpha`` in the GPs): its log;
* ``gp_pois_regr-gp_pois_regr``: the draws hold ``f``; the sampler's coordinates are
  ``f_tilde = L(ρ, α)⁻¹ f`` with ``L`` the Cholesky factor of
  ``K = α² exp(−(x_i − x_j)²/(2ρ²)) + 1e-10 I``;
* ``low_dim_gauss_mix-low_dim_gauss_mix``: Stan's ordered transform
  ``(μ₁, log(μ₂ − μ₁))`` and ``logit θ``;
* everything else unchanged.

``garch-garch11`` and ``mesquite-logmesquite`` have no reference draws in the snapshot: left
out. Folders whose ``data.json`` is already in the package keep it (another reader uses it).

Usage: ``python benchmarks/make_posteriordb_data.py [PATH_TO_POSTERIORDB_SNAPSHOT]``
(default ``../shared/data/posteriordb``, the posteriordb snapshot of 2025-04-29).
"""

import json
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import arviz

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/posteriordb")
DST = Path(__file__).resolve().parents[1] / "langevin" / "targets" / "data" / "posteriordb"
NAMES = [
    "earnings-logearn_interaction_z",
    "arK-arK",
    "kidiq-kidscore_momiq",
    "gp_pois_regr-gp_regr",
    "arma-arma11",
    "diamonds-diamonds",
    "eight_schools-eight_schools_centered",
    "gp_pois_regr-gp_pois_regr",
    "kidiq-kidscore_interaction",
    "kilpisjarvi_mod-kilpisjarvi",
    "low_dim_gauss_mix-low_dim_gauss_mix",
    "nes1972-nes",
    "sblrc-blr",
]
FILES = [
    "data.json",
    "exact_summary.json",
    "reference_summary.json",
    "model.md",
    "posterior_info.json",
    "reference_draws_info.json",
]
# the positive parameters (log-transformed), by posterior; default ``sigma``
SCALES = {
    "eight_schools-eight_schools_centered": {"tau"},
    "gp_pois_regr-gp_regr": {"rho", "alpha", "sigma"},
}


def to_unconstrained(name: str, keys: list[str], draws: np.ndarray) -> np.ndarray:
    """Constrained draws ``(chains, draws, dim)`` in posteriordb's key order to the target's
    unconstrained coordinates (module docstring)."""
    z = draws.copy()
    if name == "low_dim_gauss_mix-low_dim_gauss_mix":
        assert keys == ["mu[1]", "mu[2]", "sigma[1]", "sigma[2]", "theta"], keys
        z[..., 1] = np.log(draws[..., 1] - draws[..., 0])
        z[..., 2:4] = np.log(draws[..., 2:4])
        theta = draws[..., 4]
        z[..., 4] = np.log(theta) - np.log1p(-theta)
        return z
    if name == "gp_pois_regr-gp_pois_regr":
        assert keys[:2] == ["rho", "alpha"], keys
        x = np.asarray(json.loads((SRC / name / "data.json").read_text())["x"], dtype=float)
        d2 = (x[:, None] - x[None, :]) ** 2
        rho, alpha, f = draws[..., 0], draws[..., 1], draws[..., 2:]
        for c in range(z.shape[0]):
            for t in range(z.shape[1]):
                K = alpha[c, t] ** 2 * np.exp(-d2 / (2 * rho[c, t] ** 2)) + 1e-10 * np.eye(len(x))
                L = np.linalg.cholesky(K)
                z[c, t, 2:] = np.linalg.solve(L, f[c, t])
        z[..., :2] = np.log(draws[..., :2])
        return z
    for j, key in enumerate(keys):
        if key in SCALES.get(name, {"sigma"}):
            z[..., j] = np.log(draws[..., j])
    return z


def main() -> None:
    DST.mkdir(parents=True, exist_ok=True)
    shutil.copy(SRC / "LICENCE.md", DST / "LICENCE.md")
    total = 0
    for name in NAMES:
        out = DST / name
        out.mkdir(exist_ok=True)
        for f in FILES:
            if not (SRC / name / f).is_file():
                continue  # exact_summary.json is not in every folder
            if f == "data.json" and (out / f).is_file():
                assert (out / f).read_bytes() == (SRC / name / f).read_bytes(), name
                continue
            shutil.copy(SRC / name / f, out / f)
        chains = json.loads((SRC / name / "reference_draws.json").read_text())
        keys = list(chains[0])
        draws = np.array([[c[k] for k in keys] for c in chains], dtype=np.float64)
        draws = np.ascontiguousarray(draws.transpose(0, 2, 1))  # (10, 1000, dim)
        draws = to_unconstrained(name, keys, draws)
        ess = arviz.ess(arviz.convert_to_dataset({"z": draws}), method="mean")["z"].values
        sd = draws.reshape(-1, draws.shape[-1]).std(axis=0, ddof=1)
        mcse = sd / np.sqrt(ess)
        np.savez_compressed(out / "reference_draws.npz", draws=draws, mean_mcse=mcse, ess_mean=ess)
        size = (out / "reference_draws.npz").stat().st_size
        total += size
        flat = draws.reshape(-1, draws.shape[-1])
        print(name, draws.shape, keys, f"npz {size / 1e6:.2f} MB")
        print("  mean", flat.mean(0).round(5), "\n  sd", sd.round(5))
        print("  ess", ess.round(0))
    print(f"reference_draws.npz total {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
