"""Where a MYULA step's time goes: the pieces of one step timed in the compiled setting.

Run from the repository root::

    python -m benchmarks.proximal_profile                 # both backends, both problems
    python -m benchmarks.proximal_profile --backend numba --problem sparse100

Numba: every piece runs in an ``njit`` loop of N iterations over one chain, calling the
target through the same form tuple (first-class function values) the engine's loop gets:
the normal draws alone, the likelihood's value-and-gradient, the prox, g, the Moreau–Yosida
pair, MYULA's step on given noise, and the engine (``numba_backend.run``, one chain, one
thread) with its noise drawn inside the loop. JAX: the engine's chunk program
(``jax_backend.run`` on 4 chains, the sizes of ``benchmarks.proximal_myula``) against
stripped-down ``fori_loop``s: an empty body, the RNG alone, the kernel step alone, the step
with the trace writes; and the same loops unrolled.

Times are medians of 5 repetitions, in µs per chain-step, wall and CPU
(``time.process_time``); the load average is printed. Writes nothing: the numbers are
quoted in ``benchmarks/results/proximal_myula.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

REPS = 5


def _time(fn, per: int):
    """(wall µs, CPU µs) per unit, medians over REPS calls of ``fn`` doing ``per`` units."""
    fn()
    walls, cpus = [], []
    for _ in range(REPS):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return 1e6 * statistics.median(walls) / per, 1e6 * statistics.median(cpus) / per


def _problem(name: str):
    from benchmarks.proximal_myula import problems

    return problems()[name]


def profile_numba(pname: str, n: int) -> list[tuple[str, float, float]]:
    import numba

    from langevin.backends import numba_backend as nb
    from langevin.backends import numba_ops
    from langevin.backends.portable import make_twin
    from langevin.kernels.proximal import MYULA, MYULANoise, moreau_yosida, myula_step

    p = _problem(pname)
    target = p["target"]
    d = target.dim
    kernel = MYULA(p["h_ula"], smoothing=p["lam"])
    prepared = nb.prepare(kernel, target, d)
    form = prepared.target
    memo: dict = {}
    my = make_twin(moreau_yosida, numba_ops, numba.njit, memo)
    step = make_twin(myula_step, numba_ops, numba.njit, memo)
    vg = numba_ops.value_and_grad
    prox = numba_ops.prox
    nonsmooth = numba_ops.nonsmooth
    x0 = np.ascontiguousarray(target.initial_position, dtype=np.float64)
    lam, h = p["lam"], p["h_ula"]

    @numba.njit
    def loop_normal(rng, n, d):
        s = 0.0
        for _ in range(n):
            z = rng.standard_normal(d)
            s += z[0]
        return s

    @numba.njit
    def loop_normal_scalar(rng, n, d):
        s = 0.0
        for _ in range(n):
            for _ in range(d):
                s += rng.standard_normal()
        return s

    @numba.njit
    def loop_empty_alloc(n, d):
        s = 0.0
        for _ in range(n):
            z = np.empty(d)
            z[0] = 1.0
            s += z[0]
        return s

    @numba.njit
    def loop_vg(target, x, n):
        s = 0.0
        for _ in range(n):
            v, g = vg(target, x)
            s += v + g[0]
        return s

    @numba.njit
    def loop_prox(target, x, lam, n):
        s = 0.0
        for _ in range(n):
            s += prox(target, x, lam)[0]
        return s

    @numba.njit
    def loop_nonsmooth(target, x, n):
        s = 0.0
        for _ in range(n):
            s += nonsmooth(target, x)
        return s

    @numba.njit
    def loop_my(target, x, lam, n):
        s = 0.0
        for _ in range(n):
            v, g = my(target, x, lam)
            s += v + g[0]
        return s

    @numba.njit
    def loop_proposal(x, g, z, h, n):
        s = 0.0
        for _ in range(n):
            y = x + h * g + np.sqrt(2.0 * h) * z
            s += y[0]
        return s

    @numba.njit
    def loop_step(state, z, h, params, target, n):
        s = 0.0
        for _ in range(n):
            new, _info = step(state, MYULANoise(z), h, params, target)
            s += new.logdensity
        return s

    @numba.njit
    def loop_chain(state, rng, h, params, target, n, d):
        for _ in range(n):
            z = rng.standard_normal(d)
            state, _info = step(state, MYULANoise(z), h, params, target)
        return state.logdensity

    rng = np.random.default_rng(0)
    state = nb.init(prepared, x0[None, :])
    state1 = type(state)(
        np.ascontiguousarray(state.position[0]),
        float(state.logdensity[0]),
        np.ascontiguousarray(state.grad[0]),
    )
    params = kernel.params()
    z = rng.standard_normal(d)
    rows = [
        ("np.empty(d) alone", _time(lambda: loop_empty_alloc(n, d), n)),
        ("normal draws rng.standard_normal(d)", _time(lambda: loop_normal(rng, n, d), n)),
        ("normal draws, d scalar calls", _time(lambda: loop_normal_scalar(rng, n, d), n)),
        ("likelihood value_and_grad", _time(lambda: loop_vg(form, x0, n), n)),
        ("prox (soft threshold)", _time(lambda: loop_prox(form, x0, lam, n), n)),
        ("nonsmooth g", _time(lambda: loop_nonsmooth(form, x0, n), n)),
        ("moreau_yosida (vg + prox + g)", _time(lambda: loop_my(form, x0, lam, n), n)),
        ("proposal y = x + h g + sqrt(2h) z",
         _time(lambda: loop_proposal(x0, state1.grad, z, h, n), n)),
        ("myula_step on given noise", _time(lambda: loop_step(state1, z, h, params, form, n), n)),
        ("chain: draws + step, no trace",
         _time(lambda: loop_chain(state1, rng, h, params, form, n, d), n)),
    ]  # fmt: skip

    # the engine itself: one chain, one thread, noise drawn in the loop, trace recorded
    def engine():
        nb.run(prepared, state, n, np.array([h]), rngs=[np.random.default_rng(1)], threads=1)

    rows.append(("engine run (1 chain, trace + info)", _time(engine, n)))
    return [(name, w, c) for name, (w, c) in rows]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["numba", "jax", "both"], default="both")
    parser.add_argument("--problem", choices=["diabetes", "sparse100", "both"], default="both")
    parser.add_argument("--steps", type=int, default=20000)
    args = parser.parse_args(argv)
    names = ["diabetes", "sparse100"] if args.problem == "both" else [args.problem]
    print(f"load average at start: {os.getloadavg()}")
    for pname in names:
        if args.backend in ("numba", "both"):
            print(f"\n## numba, {pname} (µs per chain-step: wall, CPU)")
            for name, w, c in profile_numba(pname, args.steps):
                print(f"| {name} | {w:.3f} | {c:.3f} |", flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main(sys.argv[1:])
