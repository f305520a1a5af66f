"""Every tutorial runs top to bottom (short versions: LANGEVIN_TUTORIAL_QUICK=1).

A tutorial that needs optional packages says so in a line of its own, e.g.
``# requires: pymc, nutpie``; where one of them cannot be imported, its test is skipped and
says which (PyMC, for instance, needs Python >= 3.12), instead of failing. A tutorial whose
short version still trains networks says ``# test: slow (why)``: its run is marked ``slow``
(the slow job runs it once per CI run; the default suite runs on three Python setups)."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

TUTORIALS = sorted((pathlib.Path(__file__).parents[1] / "tutorials").glob("[0-9]*.py"))
_REQUIRES = re.compile(r"^#\s*requires:\s*(?P<modules>[\w., ]+?)\s*$", re.MULTILINE)
_SLOW = re.compile(r"^#\s*test:\s*slow\b", re.MULTILINE)


def required_modules(source: str) -> list[str]:
    """The modules a tutorial's ``# requires: a, b`` lines name, in order, without repeats."""
    names: list[str] = []
    for match in _REQUIRES.finditer(source):
        for name in match.group("modules").split(","):
            name = name.strip()
            if not re.fullmatch(r"[A-Za-z_][\w.]*", name):
                raise ValueError(f"not a module name in a '# requires:' line: {name!r}")
            if name not in names:
                names.append(name)
    return names


def missing_modules(names: list[str]) -> list[str]:
    """Those of ``names`` that cannot be imported here (found without importing them)."""
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent package missing, or a broken one
            found = False
        if not found:
            missing.append(name)
    return missing


def test_there_are_tutorials():
    assert TUTORIALS


def test_requires_lines_are_read():
    source = "# %%\n# requires: pymc, nutpie\nimport os\n#requires: numpyro,pymc\nx = 1\n"
    assert required_modules(source) == ["pymc", "nutpie", "numpyro"]
    assert required_modules("import os  # requires: pymc\n") == []  # a line of its own only
    assert missing_modules(["os", "json"]) == []
    assert missing_modules(["os", "no_such_module_xyz", "no_such_pkg_xyz.sub"]) == [
        "no_such_module_xyz",
        "no_such_pkg_xyz.sub",
    ]
    with pytest.raises(ValueError, match="not a module name"):
        required_modules("# requires: pymc, 3d\n")


def is_slow(source: str) -> bool:
    """Whether a tutorial asks, in a ``# test: slow`` line of its own, to run in the slow job."""
    return _SLOW.search(source) is not None


def test_slow_lines_are_read():
    assert is_slow("# %%\n# test: slow (it trains networks)\nx = 1\n")
    assert not is_slow("x = 1  # test: slow\n")  # a line of its own only
    assert not is_slow("# test: slowly\n")


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=pytest.mark.slow) if is_slow(p.read_text()) else p for p in TUTORIALS],
    ids=lambda p: p.stem,
)
def test_tutorial_runs(path, tmp_path):
    missing = missing_modules(required_modules(path.read_text()))
    if missing:
        pytest.skip(f"{path.name} needs {', '.join(missing)}, not importable here (optional "
                    f"extras; PyMC needs Python >= 3.12)")  # fmt: skip
    env = dict(os.environ, LANGEVIN_TUTORIAL_QUICK="1", MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
