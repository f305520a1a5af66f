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

Numba times are the fastest of 7 repetitions, JAX times medians of 15 interleaved ones, in µs
per chain-step, wall and CPU (``time.process_time``); the load average is printed. Writes
nothing: the numbers are quoted in ``benchmarks/results/proximal_myula.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

REPS = 7


def _time(fn, per: int):
    """(wall µs, CPU µs) per unit, the fastest of REPS calls of ``fn`` doing ``per`` units
    (on a shared machine the minimum is the piece's own cost; a median measures the
    neighbours too)."""
    fn()
    walls, cpus = [], []
    for _ in range(REPS):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return 1e6 * min(walls) / per, 1e6 * min(cpus) / per


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


def profile_jax(pname: str, reps: int = REPS) -> list[tuple[str, float, float, float]]:
    """The engine's chunk program (4 chains, one chunk of L = 1000 steps) and stripped-down
    copies of it: (name, first call s, wall µs, CPU µs per chain-step), timed interleaved."""
    import jax
    import jax.numpy as jnp

    from langevin.backends import jax_backend as jb
    from langevin.backends import jax_ops
    from langevin.backends.portable import make_twin
    from langevin.kernels.proximal import MYULA, MYULANoise, myula_step

    p = _problem(pname)
    target = p["target"]
    d, members, length = target.dim, 4, 1000
    kernel = MYULA(p["h_ula"], smoothing=p["lam"])
    prepared = jb.prepare(kernel, target, d, jnp.float64)
    x0 = np.broadcast_to(target.initial_position, (members, d)).copy()
    state = jb.init(prepared, x0)
    step = make_twin(myula_step, jax_ops, lambda f: f, jb._TWINS)
    build, data = prepared.form.build, prepared.form.data
    params = jax.tree_util.tree_map(
        lambda a: jnp.broadcast_to(jnp.asarray(a), (members,)), kernel.params()
    )
    h = jnp.full((members,), p["h_ula"])
    keys = jax.random.split(jax.random.key(0), members)

    def noise(keys):  # the engine's form: one block per member, time-major
        return jax.vmap(lambda k: jax.random.normal(k, (length, d)), out_axes=1)(keys)

    def loop(variant: str, unroll: int = 1):
        def chunk(state, keys, n):
            target = build(data)
            z = noise(keys)
            buffers = (
                jnp.full((length, members, d), jnp.nan),
                jnp.full((length, members), jnp.nan),
                jnp.zeros((length, members)),
                jnp.zeros((length, members), bool),
            )
            vstep = jax.vmap(lambda s, nz, hh, pp: step(s, MYULANoise(nz), hh, pp, target))

            def body(i, carry):
                s, (pb, lb, ab, db) = carry
                if variant == "empty":
                    return s._replace(position=s.position + z[i]), (pb, lb, ab, db)
                s, info = vstep(s, z[i], h, params)
                if variant == "trace":
                    pb, lb = pb.at[i].set(s.position), lb.at[i].set(s.logdensity)
                    ab = ab.at[i].set(info.acceptance_rate)
                    db = db.at[i].set(info.diverging)
                return s, (pb, lb, ab, db)

            if unroll == 1:
                return jax.lax.fori_loop(0, n, body, (state, buffers))

            def body_k(j, carry):  # `unroll` steps per iteration, then the remainder
                for u in range(unroll):
                    carry = body(j * unroll + u, carry)
                return carry

            blocks = n // unroll
            carry = jax.lax.fori_loop(0, blocks, body_k, (state, buffers))
            return jax.lax.fori_loop(blocks * unroll, n, body, carry)

        return jax.jit(chunk)

    n = jnp.asarray(length, jnp.int32)
    sources = jb.noise_sources(np.random.SeedSequence(1), members)

    def engine():
        return jb.run(prepared, state, length, np.full(members, p["h_ula"]), rngs=sources).position

    cases = {
        "normal draws alone (the engine's block)": (jax.jit(noise), (keys,)),
        "draws + empty loop": (loop("empty"), (state, keys, n)),
        "draws + step, no trace": (loop("step"), (state, keys, n)),
        "draws + step + trace (the engine's body)": (loop("trace"), (state, keys, n)),
        **{f"... unrolled {k}": (loop("trace", k), (state, keys, n)) for k in (2, 4, 8)},
        "engine run (chunk + host copies)": (engine, ()),
    }
    first, walls, cpus = {}, {k: [] for k in cases}, {k: [] for k in cases}
    for name, (fn, args) in cases.items():
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        first[name] = time.perf_counter() - t0
    for _ in range(reps):
        for name, (fn, args) in cases.items():  # interleaved
            t0, c0 = time.perf_counter(), time.process_time()
            jax.block_until_ready(fn(*args))
            walls[name].append(time.perf_counter() - t0)
            cpus[name].append(time.process_time() - c0)
    per = 1e6 / (length * members)
    return [
        (k, first[k], per * statistics.median(walls[k]), per * statistics.median(cpus[k]))
        for k in cases
    ]


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
        if args.backend in ("jax", "both"):
            import jax

            jax.config.update("jax_enable_x64", True)
            print(f"\n## jax, {pname} (first call s; µs per chain-step: wall, CPU)")
            for name, f, w, c in profile_jax(pname, reps=2 * REPS + 1):
                print(f"| {name} | {f:.2f} | {w:.3f} | {c:.3f} |", flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main(sys.argv[1:])
