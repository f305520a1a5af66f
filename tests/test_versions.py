"""What pip installs: the declared floors are the versions CI tests, and the Numba target form
works on every Numba from the floor up.

``.ci/run`` runs the suite on Python 3.11 (today's versions), on 3.12/3.13 with the newest
versions (ArviZ 1.x) and on the lowest declared versions (``.ci/lowest.txt``); this file
checks that those pins are the floors of ``pyproject.toml`` and, in that job
(``LANGEVIN_LOWEST_VERSIONS`` set), that pip installed exactly them.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import tomllib
import warnings
from pathlib import Path

import numba
import numpy as np
import pytest
from numba.core import types as nt

import langevin
from langevin.backends import numba_backend

ROOT = Path(__file__).resolve().parents[1]
FLOORED = ("numba", "jax", "numpy", "arviz")


def _release(text: str) -> tuple[int, ...]:
    """``"1.26"`` -> ``(1, 26, 0)``: the release numbers, padded to three."""
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def declared_floors() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = {}
    for dep in deps:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9.]+)\s*", dep)
        if m:
            floors[m.group(1).lower()] = m.group(2)
    return floors


def lowest_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, ver = line.partition("==")
            pins[name.strip().lower()] = ver.strip()
    return pins


def test_ci_pins_the_declared_floors():
    floors = declared_floors()
    pins = lowest_pins(ROOT / ".ci" / "lowest.txt")
    for name in FLOORED:
        assert name in floors, f"pyproject.toml declares no floor for {name}"
        assert _release(pins[name]) == _release(floors[name]), (name, pins[name], floors[name])


def test_installed_versions_meet_the_floors():
    floors = declared_floors()
    for name in FLOORED:
        have = importlib.metadata.version(name)
        assert _release(have) >= _release(floors[name]), (name, have, floors[name])


@pytest.mark.skipif(
    not os.environ.get("LANGEVIN_LOWEST_VERSIONS"), reason="only in CI's lowest-versions job"
)
def test_the_lowest_versions_job_runs_on_the_floors():
    pins = lowest_pins(ROOT / os.environ["LANGEVIN_LOWEST_VERSIONS"])
    for name in FLOORED:
        assert _release(importlib.metadata.version(name)) == _release(pins[name]), name


@numba.njit(cache=True)
def _logdensity(x):
    return -0.5 * np.dot(x, x)


@numba.njit(cache=True)
def _grad(x):
    return -x


def test_arviz_daily_refactor_notice_is_not_an_error():
    """ArviZ 0.23.4 warns of its coming refactor on the first import of each day and writes
    the day's stamp only after the warning returns: with the suite's ``filterwarnings =
    error`` and no exception for it, every module importing ArviZ failed to collect on a
    fresh machine (162 errors). The warning below is ArviZ's own text; it raises here unless
    pyproject.toml's filter lets it through."""
    warnings.warn(
        "\nArviZ is undergoing a major refactor to improve flexibility and extensibility "
        "while maintaining a user-friendly interface.",
        FutureWarning,
        stacklevel=1,
    )


def test_numba_form_is_never_a_tuple_of_function_types_alone():
    """Numba <= 0.65 (0.65.1 is what PyMC's pytensor pins) asserts in
    ``unified_function_type`` when a ``types.Tuple`` holds only first-class function types
    of different signatures — the form ``(logdensity, grad)`` had before contract 2. The
    form now starts with a NamedTuple tag and has ``None`` slots; keep it that way."""
    target = langevin.Target.from_numba(_logdensity, _grad, dim=3)
    form = numba_backend.bind_target(target, 3)
    kinds = [isinstance(t, nt.FunctionType) for t in form.numba_type.types]
    assert any(kinds) and not all(kinds)
    assert not isinstance(form.numba_type.types[0], nt.FunctionType)


def test_from_numba_logdensity_and_grad_samples():
    """The README's ``Target.from_numba(logdensity, grad)`` runs on the installed Numba
    (CI: 0.68 and the floor, 0.59, which has the same assertion as 0.65.1): N(0, I₃) draws
    with the right mean and variance (4 sds of the Monte Carlo error; ESS ≥ 300 of 2000)."""
    target = langevin.Target.from_numba(_logdensity, _grad, dim=3)
    trace = langevin.sample(target, langevin.MALA(0.8), chains=2, warmup=300, draws=1000,
                            seed=5, progress=False)  # fmt: skip
    x = trace.flat()
    assert np.all(np.abs(x.mean(axis=0)) < 4 / np.sqrt(300))
    assert np.all(np.abs(x.var(axis=0) - 1) < 4 * np.sqrt(2 / 300))
