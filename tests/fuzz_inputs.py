"""Random bad input against ``sample``, ``tempered_smc`` and ``particle_filter``.

Run as a script (``python -m tests.fuzz_inputs SEED COUNT BACKEND``) in a subprocess of its
own, so that a crash, a hang or a segfault is seen by the test (``tests/test_fuzz.py``) as
the process's exit status. Each case changes one argument of a valid call to a bad value
(or makes the target's code fail at a random point) and records the outcome:

* ``refused``: a ``ValueError``/``TypeError`` whose message names the argument;
* ``unnamed``: such an exception that does not name it (a defect);
* ``reported``: a result whose non-finite draws all belong to chains the result reports
  (diverged or failed), or a documented ``SamplingError``;
* ``silent``: a result with NaN draws nobody reported, or any other exception (a defect).

One JSON line per case on stdout; the last line is the count of each outcome.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections import Counter

import numba
import numpy as np

import langevin
from langevin import smc
from langevin.driver import SamplingError

BAD_NUMBERS = [
    -1, 0, -0.5, float("nan"), float("inf"), -float("inf"), "3", None, True, 2.5, 1j, [1], (2,),
]  # fmt: skip
BAD_ARRAYS = [
    lambda d, c: np.zeros(()),
    lambda d, c: np.zeros(d - 1),
    lambda d, c: np.zeros(d + 1),
    lambda d, c: np.zeros((c + 1, d)),
    lambda d, c: np.zeros((c, d, 1)),
    lambda d, c: np.full(d, np.nan),
    lambda d, c: np.full((c, d), np.inf),
    lambda d, c: np.array(["a"] * d),
    lambda d, c: np.zeros(d, dtype=complex),
    lambda d, c: np.array([object()] * d),
    lambda d, c: "start",
    lambda d, c: {"x": 1.0},
]


@numba.njit
def _logp(x):
    return -0.5 * np.dot(x, x)


def _raising_grad(threshold: float):
    @numba.njit
    def grad(x):
        if x[0] > threshold:
            raise ValueError("user code failed")
        return -x

    return grad


def _nan_grad(threshold: float):
    @numba.njit
    def grad(x):
        if x[0] > threshold:
            return np.full(x.shape[0], np.nan)
        return -x

    return grad


def sample_case(rng: np.random.Generator, backend: str):
    """One bad call of ``sample``: (argument name, thunk)."""
    dim, chains = 3, 2
    target = langevin.targets.gaussian(dim)
    kernel_cls = [langevin.MALA, langevin.ULA, langevin.HMC, langevin.KineticLangevin,
                  langevin.Barker][rng.integers(5)]  # fmt: skip
    kw = dict(chains=chains, warmup=20, draws=30, backend=backend, seed=1, progress=False)
    what = rng.integers(7)
    if what == 0:
        arg = ["chains", "warmup", "draws", "thin", "seed", "target_acceptance", "init_jitter",
               "backend", "adapt_mass_matrix"][rng.integers(9)]  # fmt: skip
        kw[arg] = BAD_NUMBERS[rng.integers(len(BAD_NUMBERS))]
        if arg == "backend":
            kw[arg] = ["numpy", "NUMBA", "", None, 3][rng.integers(5)]
        return arg, lambda: langevin.sample(target, kernel_cls(0.1), **kw)
    if what == 1:
        bad = BAD_ARRAYS[rng.integers(len(BAD_ARRAYS))](dim, chains)
        return "initial_position", lambda: langevin.sample(
            target, kernel_cls(0.1), initial_position=bad, **kw
        )
    if what == 2:
        h = BAD_NUMBERS[rng.integers(len(BAD_NUMBERS))]
        return "step_size", lambda: langevin.sample(target, kernel_cls(h), **kw)
    if what == 3:
        bad_target = [lambda x: -x @ x, None, "gaussian", 3, np.zeros(3)][rng.integers(5)]
        return "target", lambda: langevin.sample(bad_target, kernel_cls(0.1), **kw)
    if what == 4:
        return "kernel", lambda: langevin.sample(
            target, [None, "MALA", langevin.MALA, 0.1][rng.integers(4)], **kw
        )
    if backend != "numba":  # the target's code failing mid-run: a Numba-side failure
        return "step_size", lambda: langevin.sample(target, kernel_cls(1e6), **kw)
    threshold = float(rng.uniform(0.5, 2.5))
    grad = (_raising_grad if what == 5 else _nan_grad)(threshold)
    user = langevin.Target.from_numba(_logp, grad, dim=dim)
    starts = rng.uniform(-1, 0, (chains, dim))
    return "target", lambda: langevin.sample(user, kernel_cls(0.3), initial_position=starts, **kw)


def smc_case(rng: np.random.Generator, backend: str):
    model = smc.gaussian_model([0.0, 0.0], [1.0, 1.0], [1.0, 2.0], [0.5, 0.5])
    kw = dict(n_particles=64, n_steps=2, seed=0, backend=backend, progress=False)
    arg = ["n_particles", "n_steps", "target_ess", "seed", "schedule", "kernel"][rng.integers(6)]
    value = BAD_NUMBERS[rng.integers(len(BAD_NUMBERS))]
    if arg == "schedule":
        value = [np.array([0.0, 0.5, 0.3, 1.0]), np.array([0.2, 1.0]), np.array([0.0, np.nan, 1]),
                 np.array([0.0, 0.5]), "linear"][rng.integers(5)]  # fmt: skip
    kernel = langevin.MALA(0.3)
    if arg == "kernel":
        return arg, lambda: smc.tempered_smc(model, value, **kw)
    kw[arg] = value
    return arg, lambda: smc.tempered_smc(model, kernel, **kw)


def filter_case(rng: np.random.Generator, backend: str):
    model = smc.linear_gaussian_example(T=10, seed=0)
    kw = dict(seed=0, backend=backend)
    arg = ["n_particles", "method", "scheme", "ess_threshold", "seed", "model"][rng.integers(6)]
    value = BAD_NUMBERS[rng.integers(len(BAD_NUMBERS))]
    if arg in ("method", "scheme"):
        value = ["", "Bootstrap", None, 3, "stratified!"][rng.integers(5)]
    if arg == "model":
        return arg, lambda: smc.particle_filter(value, 64, **kw)
    if arg == "n_particles":
        return arg, lambda: smc.particle_filter(model, value, **kw)
    kw[arg] = value
    return arg, lambda: smc.particle_filter(model, 64, **kw)


def _reported(result) -> bool:
    """Non-finite draws only where the result says a chain stopped."""
    draws = getattr(result, "draws", None)
    if draws is None:  # SMC results: finite estimates
        value = getattr(result, "log_evidence", getattr(result, "log_likelihood", 0.0))
        return bool(np.isfinite(value))
    stopped = set(getattr(result, "diverged", {})) | set(getattr(result, "failures", {}))
    bad = {int(c) for c in np.where(~np.isfinite(draws).all(axis=(1, 2)))[0]}
    return bad <= stopped


def run_case(arg: str, thunk) -> tuple[str, str]:
    """(outcome, what happened) of one case."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = thunk()
    except SamplingError as exc:
        return "reported", str(exc)[:200]
    except (ValueError, TypeError) as exc:
        return ("refused" if arg in str(exc) else "unnamed"), f"{type(exc).__name__}: {exc}"[:300]
    except Exception as exc:
        return "silent", f"{type(exc).__name__}: {exc}"[:300]
    return ("reported", "result") if _reported(result) else ("silent", "unreported NaN draws")


def main(seed: int, count: int, backend: str) -> Counter:
    rng = np.random.default_rng(seed)
    makers = [sample_case, smc_case, filter_case]
    outcomes: Counter = Counter()
    for i in range(count):
        maker = makers[i % 3]
        arg, thunk = maker(rng, backend)
        outcome, detail = run_case(arg, thunk)
        outcomes[outcome] += 1
        row = {"case": i, "api": maker.__name__, "arg": arg, "outcome": outcome, "detail": detail}
        print(json.dumps(row), flush=True)
    print(json.dumps(dict(outcomes)), flush=True)
    return outcomes


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
