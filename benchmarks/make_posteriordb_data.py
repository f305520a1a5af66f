"""How the shipped posteriordb data was made (provenance; run from the repository root).

Copies the posteriordb folders used by ``langevin.targets.posteriordb`` into the package and
converts the reference draws to float64 arrays ``(10, 1000, dim)`` in the unconstrained
coordinates (``log sigma``), with the MCSE of each mean from ArviZ's ESS (method "mean").

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
DST.mkdir(parents=True, exist_ok=True)
shutil.copy(SRC / "LICENCE.md", DST / "LICENCE.md")
for name in ["earnings-logearn_interaction_z", "arK-arK", "kidiq-kidscore_momiq"]:
    out = DST / name
    out.mkdir(exist_ok=True)
    for f in [
        "data.json",
        "exact_summary.json",
        "reference_summary.json",
        "model.md",
        "posterior_info.json",
        "reference_draws_info.json",
    ]:
        shutil.copy(SRC / name / f, out / f)
    chains = json.loads((SRC / name / "reference_draws.json").read_text())
    keys = list(chains[0])
    assert keys[-1] == "sigma", keys
    draws = np.array([[c[k] for k in keys] for c in chains], dtype=np.float64)  # (10, dim, 1000)
    draws = np.ascontiguousarray(draws.transpose(0, 2, 1))
    draws[..., -1] = np.log(draws[..., -1])
    ess = arviz.ess(arviz.convert_to_dataset({"z": draws}), method="mean")["z"].values
    sd = draws.reshape(-1, draws.shape[-1]).std(axis=0, ddof=1)
    mcse = sd / np.sqrt(ess)
    np.savez(out / "reference_draws.npz", draws=draws, mean_mcse=mcse, ess_mean=ess)
    flat = draws.reshape(-1, draws.shape[-1])
    print(name, draws.shape, keys, "mean", flat.mean(0), "sd", sd)
    print("  ess", ess.round(0), "mcse", mcse)
