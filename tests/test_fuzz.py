"""The fuzz test of issue 17: random bad input against ``sample``, ``tempered_smc`` and
``particle_filter`` on both backends, each batch in a subprocess of its own (a crash, hang
or segfault fails the test through the exit status). Every case must be refused with an
exception naming the argument, or give a result whose non-finite draws are reported; never
a crash, a hang, an exception that does not say what was wrong, or a silent NaN.
See ``tests/fuzz_inputs.py`` for the cases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _fuzz(seed: int, count: int, backend: str) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzz_inputs", str(seed), str(count), backend],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, (
        f"the fuzz process crashed ({proc.returncode}): {proc.stderr[-3000:]}"
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    cases = [r for r in rows if "case" in r]
    assert len(cases) == count, proc.stdout[-3000:]
    return cases


def _check(cases: list[dict]) -> None:
    bad = [c for c in cases if c["outcome"] not in ("refused", "reported")]
    assert not bad, "\n".join(json.dumps(c) for c in bad)


@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_fuzz_bad_input(backend):
    _check(_fuzz(seed=17, count=45, backend=backend))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_fuzz_bad_input_many(backend):
    """150 more cases per backend (300 were run for the closing note of issue 17)."""
    cases = _fuzz(seed=2026, count=150, backend=backend)
    _check(cases)
