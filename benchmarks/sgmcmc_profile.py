"""Where an SGLD step's time goes (logistic model of ``sgmcmc_blackjax.py``), against BlackJAX.

Run from the repository root::

    python -m benchmarks.sgmcmc_profile           # ~3 min on 2 cores
    python -m benchmarks.sgmcmc_profile --tiny    # smoke test

Same model as :mod:`benchmarks.sgmcmc_blackjax` (n = 100 000, d = 20, b = 100, float64).
On a shared machine the wall-clock medians of single runs swing by 2× between runs, so
every comparison here is *paired*: the items run one after the other in each of ``ROUNDS``
rounds; the tables give the minimum and the median over rounds of the CPU time (this
process, all threads) beside the wall time, and the median of the per-round ratios.

1. Engine time per 1000 steps (compiled loop alone, as in ``sgmcmc_blackjax.py``): langevin
   SGLD on Numba and JAX (with and without ``gradient_noise=True``), langevin's JAX step in
   a bare ``lax.scan`` (:func:`bare_scan_timed`: what the engine's own per-step work
   costs), and ``blackjax.sgld`` (indices by ``randint``, with replacement, and by
   langevin's draw).
2. Components of one Numba step, each in its own compiled loop over 20 000 steps: the
   minibatch draw as it was (``size`` calls of ``rng.integers``) and as it is
   (:func:`langevin.spec.floyd_draws`: one ``rng.random(size)`` and Lemire's
   multiply-shift), each with the hashed Floyd step; the likelihood of a batch before
   (``_two_pass_loglik`` below, the code before the touch pass) and now, at n = 10⁵ and
   at n = 10³ (data in cache: the difference is memory latency); d normals.
3. Components of one JAX step inside ``lax.scan``: the likelihood value-and-gradient on the
   whole batch and on two halves (the ``gradient_noise=True`` estimate), and on a data set
   in cache (n = 10³); the gather of the batch's rows alone (n = 10⁵ and 10³: the memory
   latency of b scattered rows); langevin's step and BlackJAX's step with their noise
   given (no draw); the chunk's minibatch draw (1000 steps) as it was (Floyd's row loop
   vmapped over the rows; :func:`position_loop_floyd`, one loop over positions acting on
   every row, with 64-bit bounded integers under x64) and as it is
   (:func:`langevin.spec.floyd_indices_block`: the rows with a repeated draw found by a
   sort, only those iterated; 32-bit bounded integers), identical outputs.

Writes ``benchmarks/results/sgmcmc_profile.md``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from benchmarks._common import RESULTS, load_at_end, load_warning, log, machine_at_start

N, D, B = 100_000, 20, 100


def _two_pass_loglik_py(beta, idx, data):
    """The Numba logistic minibatch likelihood as it was before the touch pass."""
    X, y, _ = data
    d = beta.shape[0]
    b = idx.shape[0]
    eta = np.empty(b)
    for k in range(b):
        i = idx[k]
        t = 0.0
        for j in range(d):
            t += X[i, j] * beta[j]
        eta[k] = t
    value = 0.0
    grad = np.zeros(d)
    for k in range(b):
        i = idx[k]
        t = eta[k]
        if t > 0.0:
            e = math.exp(-t)
            value += y[i] * t - (t + math.log1p(e))
            r = y[i] - 1.0 / (1.0 + e)
        else:
            e = math.exp(t)
            value += y[i] * t - math.log1p(e)
            r = y[i] - e / (1.0 + e)
        for j in range(d):
            grad[j] += r * X[i, j]
    return value, grad


def vmapped_floyd(t, n: int):
    """The JAX draw as it was: Floyd's row loop, vmapped over the rows (same output)."""
    import jax
    import jax.numpy as jnp

    size = t.shape[-1]

    def combine(row):
        def body(k, out):
            clash = jnp.any((out == row[k]) & (jnp.arange(size) < k))
            return out.at[k].set(jnp.where(clash, n - size + k, row[k]))

        return jax.lax.fori_loop(0, size, body, jnp.zeros(size, row.dtype))

    return jax.vmap(combine)(t)


def position_loop_floyd(t, n: int):
    """The JAX block draw as it was before the sort: one ``fori_loop`` over the ``size``
    positions acting on every row (same output as :func:`langevin.spec.floyd_indices_block`)."""
    import jax
    import jax.numpy as jnp

    size = t.shape[-1]
    ar = jnp.arange(size)

    def body(k, out):
        col = jax.lax.dynamic_index_in_dim(t, k, axis=1, keepdims=False)
        clash = jnp.any((out == col[:, None]) & (ar < k), axis=1)
        pick = jnp.where(clash, (n - size + k).astype(t.dtype), col)
        return jax.lax.dynamic_update_index_in_dim(out, pick, k, axis=1)

    return jax.lax.fori_loop(0, size, body, jnp.zeros_like(t))


def _paired(items: dict, rounds: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``name -> (wall seconds, CPU seconds)`` per round, rounds interleaved."""
    for fn in items.values():
        fn(0)  # compile
    wall: dict[str, list[float]] = {k: [] for k in items}
    cpu: dict[str, list[float]] = {k: [] for k in items}
    for r in range(1, rounds + 1):
        for name, fn in items.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn(r)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {k: (np.asarray(wall[k]), np.asarray(cpu[k])) for k in items}


def bare_scan_timed(target, kernel, steps: int, x0, draw: bool = True):
    """langevin's JAX step (the kernel's ``step_math`` twinned with ``jax_ops``) in a bare
    jitted ``lax.scan`` over the chunk's noise drawn as the engine draws it, keeping the
    positions, log-densities and infos: the engine's loop without its own work (the member
    vmap, the adaptation ``cond``, the trace buffers, the chunk's block bookkeeping).
    ``draw=False``: the noise drawn once, outside the timed loop (the step alone)."""
    import jax
    import jax.numpy as jnp

    from langevin.backends import jax_backend, jax_ops
    from langevin.backends.portable import make_twin

    d = x0.shape[0]
    p = jax_backend.prepare(kernel, target, d, jnp.float64)
    step = make_twin(type(kernel).step_math, jax_ops, lambda f: f, jax_backend._TWINS)
    state = jax_backend.init(p, x0[None, :], keys=jax_backend.chain_keys(0, 1))
    state = jax.tree_util.tree_map(lambda a: a[0], state)
    params = jax.tree_util.tree_map(jnp.asarray, kernel.params())
    spec, h = kernel.noise(d), jnp.asarray(kernel.step_size)

    def loop(noise, state, data):
        tgt = p.form.build(data)

        def body(s, nz):
            s, info = step(s, nz, h, params, tgt)
            return s, (s.position, s.logdensity, info)

        return jax.lax.scan(body, state, noise)[1]

    if not draw:
        given = jax.jit(lambda key: jax_backend._draw(spec, key, jnp.float64, steps))(
            jax.random.key(0))
        run_given = jax.jit(loop)
        return lambda r: jax.block_until_ready(run_given(given, state, p.form.data))

    @jax.jit
    def run(key, state, data):
        return loop(jax_backend._draw(spec, key, jnp.float64, steps), state, data)

    return lambda r: jax.block_until_ready(run(jax.random.key(r), state, p.form.data))


def engines(X, y, rounds: int, steps: int) -> dict:
    from benchmarks.sgmcmc_blackjax import blackjax_timed, engine_timed
    from langevin.kernels.sgmcmc import SGLD
    from langevin.targets.data_targets import logistic_regression_data

    target = logistic_regression_data(X, y)
    kernel = SGLD(1e-5, batch_size=B, n_data=len(y))
    noisy = SGLD(1e-5, batch_size=B, n_data=len(y), gradient_noise=True)
    x0 = np.zeros(X.shape[1])
    items = {
        "langevin numba": engine_timed("a", target, kernel, "numba", steps, x0).fn,
        "langevin jax": engine_timed("b", target, kernel, "jax", steps, x0).fn,
        "langevin jax, gradient_noise=True": engine_timed("c", target, noisy, "jax", steps,
                                                          x0).fn,
        "langevin jax step in a bare lax.scan (no engine)": bare_scan_timed(target, kernel,
                                                                            steps, x0),
        "blackjax sgld (randint)": blackjax_timed("d", X, y, "sgld", steps, B, 1e-5, x0).fn,
        "blackjax sgld (langevin's draw)": blackjax_timed("e", X, y, "sgld", steps, B, 1e-5,
                                                          x0, draw="floyd").fn,
    }  # fmt: skip
    return _paired(items, rounds)


def numba_components(X, y, steps: int, rounds: int) -> dict:
    import numba

    from benchmarks.sgmcmc_blackjax import make_data
    from langevin.spec import _numba_drawers, floyd_indices_hashed
    from langevin.targets.data_targets import _logistic_loglik, logistic_regression_data

    data = logistic_regression_data(X, y).data
    Xs, ys = make_data(1000, X.shape[1], seed=2)
    small = logistic_regression_data(Xs, ys).data
    hashed = numba.njit(floyd_indices_hashed)
    draw_now = _numba_drawers()[("index", 1)]
    old_lik = numba.njit(fastmath={"reassoc", "contract"})(_two_pass_loglik_py)
    n, b = len(y), B
    rng = np.random.default_rng(0)
    batches = np.stack([rng.choice(n, b, replace=False) for _ in range(steps)])
    small_batches = np.stack([rng.choice(1000, b, replace=False) for _ in range(steps)])
    beta = rng.normal(size=X.shape[1]) * 0.1

    @numba.njit
    def draw_before(g, steps, n, b):
        s = 0
        for _ in range(steps):
            t = np.empty(b, dtype=np.int64)
            for k in range(b):
                t[k] = g.integers(0, n - b + k + 1)
            s += hashed(t, n)[0]
        return s

    @numba.njit
    def draw_after(g, steps, n, b):
        s = 0
        for _ in range(steps):
            s += draw_now(g, (n, b))[0]
        return s

    def lik_loop(f):
        @numba.njit
        def loop(beta, batches, data):
            s = 0.0
            for r in range(batches.shape[0]):
                v, g = f(beta, batches[r], data)
                s += v + g[0]
            return s

        return loop

    @numba.njit
    def normals(g, steps, d):
        s = 0.0
        for _ in range(steps):
            s += g.standard_normal(d)[0]
        return s

    before, now = lik_loop(old_lik), lik_loop(_logistic_loglik)
    items = {
        "minibatch draw before: b × rng.integers, hashed Floyd": lambda r: draw_before(
            np.random.default_rng(r), steps, n, b),
        "minibatch draw now: rng.random(b), Lemire, hashed Floyd": lambda r: draw_after(
            np.random.default_rng(r), steps, n, b),
        "likelihood before (two passes), n = 10⁵": lambda r: before(beta, batches, data),
        "likelihood now (touch pass), n = 10⁵": lambda r: now(beta, batches, data),
        "likelihood before, n = 10³ (in cache)": lambda r: before(beta, small_batches, small),
        "likelihood now, n = 10³ (in cache)": lambda r: now(beta, small_batches, small),
        "d standard normals": lambda r: normals(np.random.default_rng(r), steps, X.shape[1]),
    }  # fmt: skip
    return {k: (w / steps, c / steps) for k, (w, c) in _paired(items, rounds).items()}


def jax_components(X, y, steps: int, rounds: int) -> dict:
    import jax
    import jax.numpy as jnp

    from benchmarks.sgmcmc_blackjax import make_data
    from langevin.kernels.sgmcmc import SGLD
    from langevin.spec import Index, floyd_indices_block
    from langevin.targets.data_targets import (
        _logistic_jax_loglik,
        _logistic_jax_logprior,
        logistic_regression_data,
    )

    n, b = len(y), B
    data = (jax.device_put(X), jax.device_put(y), jnp.asarray([1.0]))
    Xs, ys = make_data(1000, X.shape[1], seed=2)
    small = (jax.device_put(Xs), jax.device_put(ys), jnp.asarray([1.0]))
    rng = np.random.default_rng(0)
    batches = jnp.asarray(np.stack([rng.choice(n, b, replace=False) for _ in range(steps)]))
    small_batches = jnp.asarray(np.stack([rng.choice(1000, b, replace=False)
                                          for _ in range(steps)]))  # fmt: skip
    vg = jax.value_and_grad(_logistic_jax_loglik)
    vgp = jax.value_and_grad(_logistic_jax_logprior)

    @jax.jit
    def halves(x, batches, data):
        def body(x, idx):
            l1, g1 = vg(x, idx[0::2], data)
            l2, g2 = vg(x, idx[1::2], data)
            lp, gp = vgp(x, data)
            return x + 1e-6 * (gp + 1000.0 * (g1 + g2)), l1 + l2 + lp

        return jax.lax.scan(body, x, batches)

    @jax.jit
    def whole(x, batches, data):
        def body(x, idx):
            l1, g1 = vg(x, idx, data)
            lp, gp = vgp(x, data)
            return x + 1e-6 * (gp + 1000.0 * g1), l1 + lp

        return jax.lax.scan(body, x, batches)

    @jax.jit
    def gather_only(x, batches, data):
        def body(x, idx):
            return 0.999 * x + 1e-6 * jnp.sum(data[0][idx], axis=0), x[0]

        return jax.lax.scan(body, x, batches)

    # langevin's step and BlackJAX's, each with its noise given (no draw in the loop)
    target = logistic_regression_data(X, y)
    kernel = SGLD(1e-5, batch_size=b, n_data=n)
    ours = bare_scan_timed(target, kernel, steps, np.zeros(X.shape[1]), draw=False)
    theirs = blackjax_step_given_noise(X, y, steps, b, 1e-5)

    def chunk_draw(combine, dtype):
        @jax.jit
        def draw(key):
            bounds = n - b + jnp.arange(b, dtype=dtype) + 1
            t = jax.random.randint(key, (steps, b), 0, bounds, dtype=dtype)
            return combine(t, n)

        return draw

    rows, positions = chunk_draw(vmapped_floyd, int), chunk_draw(position_loop_floyd, int)

    @jax.jit
    def now(key):
        return Index(n, b).draw_jax(key, (steps,), jnp.float64)

    for r in range(5):
        t = jax.random.randint(jax.random.key(r), (steps, b), 0, n - b + jnp.arange(b) + 1)
        if not (bool(jnp.all(vmapped_floyd(t, n) == position_loop_floyd(t, n)))
                and bool(jnp.all(floyd_indices_block(t, n) == position_loop_floyd(t, n)))):
            raise RuntimeError("the JAX Floyd block draws differ")  # fmt: skip

    def randint(dtype):
        @jax.jit
        def draw(key):
            bounds = n - b + jnp.arange(b, dtype=dtype) + 1
            return jax.random.randint(key, (steps, b), 0, bounds, dtype=dtype)

        return draw

    ri64, ri32 = randint(jnp.int64), randint(jnp.int32)

    def ready(fn, *args):
        return lambda r: jax.block_until_ready(fn(*args))

    def keyed(fn):
        return lambda r: jax.block_until_ready(fn(jax.random.key(r)))

    x0 = jnp.zeros(X.shape[1])
    items = {
        "likelihood value+grad, whole batch (default)": ready(whole, x0, batches, data),
        "likelihood value+grad, two halves (gradient_noise=True)": ready(halves, x0, batches,
                                                                         data),
        "likelihood value+grad, n = 10³ (in cache)": ready(whole, x0, small_batches, small),
        "gather of the batch's rows alone, n = 10⁵": ready(gather_only, x0, batches, data),
        "gather of the batch's rows alone, n = 10³ (in cache)": ready(gather_only, x0,
                                                                      small_batches, small),
        "langevin step, noise given (bare scan)": ours,
        "BlackJAX sgld step, indices and keys given": theirs,
        "chunk draw, Floyd row loop vmapped (int64 bounds)": keyed(rows),
        "chunk draw before: loop over positions, all rows (int64 bounds)": keyed(positions),
        "chunk draw now: sort, repeated rows only (int32 bounds)": keyed(now),
        "bounded integers alone, int64 (before)": keyed(ri64),
        "bounded integers alone, int32 (now)": keyed(ri32),
    }  # fmt: skip
    return {k: (w / steps, c / steps) for k, (w, c) in _paired(items, rounds).items()}


def blackjax_step_given_noise(X, y, steps: int, b: int, h: float):
    """``blackjax.sgld``'s step in a jitted ``lax.scan`` with its minibatch indices and
    per-step keys given: the step without the draw (``sgmcmc_blackjax.blackjax_timed``'s
    loop body)."""
    import blackjax
    import jax
    import jax.numpy as jnp

    n = X.shape[0]

    def loglik(beta, batch):
        xb, yb = batch
        eta = xb @ beta
        return yb * eta - jnp.logaddexp(0.0, eta)

    grad = blackjax.sgmcmc.gradients.grad_estimator(lambda beta: -0.5 * jnp.sum(beta * beta),
                                                    loglik, n)  # fmt: skip
    sampler = blackjax.sgld(grad)

    @jax.jit
    def run(position, keys, batches, Xd, yd):
        def body(pos, xs):
            k, idx = xs
            pos = sampler.step(k, pos, (Xd[idx], yd[idx]), h)
            return pos, pos

        return jax.lax.scan(body, position, (keys, batches))[1]

    rng = np.random.default_rng(1)
    batches = jnp.asarray(np.stack([rng.choice(n, b, replace=False) for _ in range(steps)]))
    keys = jax.random.split(jax.random.key(0), steps)
    Xd, yd, x0 = jnp.asarray(X), jnp.asarray(y), jnp.zeros(X.shape[1])
    return lambda r: jax.block_until_ready(run(x0, keys, batches, Xd, yd))


def _table(rows: dict, scale: float, unit: str) -> list[str]:
    out = [f"| component | CPU {unit} min | CPU {unit} median | wall {unit} median |",
           "|---|---|---|---|"]  # fmt: skip
    for k, (w, c) in rows.items():
        out.append(f"| {k} | {c.min() * scale:.2f} | {np.median(c) * scale:.2f} | "
                   f"{np.median(w) * scale:.2f} |")  # fmt: skip
    return out


def _reading(eng: dict, nb: dict, jx: dict) -> list[str]:
    """The paragraph that reads the tables (CPU medians)."""

    def med(rows: dict, key: str) -> float:
        return float(np.median(rows[key][1]))

    bj = eng["blackjax sgld (langevin's draw)"][1]

    def ratio(key: str) -> float:
        return float(np.median(eng[key][1] / bj))

    nb_keys = list(nb)
    draw_before, draw_now = med(nb, nb_keys[0]) * 1e6, med(nb, nb_keys[1]) * 1e6
    lik_before, lik_now = med(nb, nb_keys[2]) * 1e6, med(nb, nb_keys[3]) * 1e6
    lik_cache = med(nb, nb_keys[5]) * 1e6

    def us(key: str) -> float:
        return med(jx, key) * 1e6

    whole = us("likelihood value+grad, whole batch (default)")
    halves = us("likelihood value+grad, two halves (gradient_noise=True)")
    lik_small = us("likelihood value+grad, n = 10³ (in cache)")
    gather_big = us("gather of the batch's rows alone, n = 10⁵")
    gather_small = us("gather of the batch's rows alone, n = 10³ (in cache)")
    ours, theirs = us("langevin step, noise given (bare scan)"), us(
        "BlackJAX sgld step, indices and keys given")
    chunk_before = us("chunk draw before: loop over positions, all rows (int64 bounds)")
    chunk_now = us("chunk draw now: sort, repeated rows only (int32 bounds)")
    ri64, ri32 = us("bounded integers alone, int64 (before)"), us(
        "bounded integers alone, int32 (now)")
    floor = (gather_big + chunk_now) / (theirs + chunk_now)
    return [
        f"Numba: the minibatch draw went from {draw_before:.2f} to {draw_now:.2f} µs per step "
        "(one `rng.random(b)` call and Lemire's multiply-shift instead of b calls of "
        f"`rng.integers`); the likelihood of a random batch from {lik_before:.2f} to "
        f"{lik_now:.2f} µs (the touch pass overlaps the rows' cache misses). The same "
        f"likelihood on data in cache costs {lik_cache:.2f} µs: the rest, "
        f"{lik_now - lik_cache:.2f} µs, is the memory latency of b scattered rows. The "
        f"Numba engine's step is {ratio('langevin numba'):.2f}× BlackJAX's (CPU, paired).",
        "",
        f"JAX: the chunk's minibatch draw went from {chunk_before:.2f} to {chunk_now:.2f} µs "
        "per step (the rows with a repeated draw found by one sort and only those iterated, "
        f"instead of {B} passes over every row; the bounded integers alone {ri64:.2f} µs "
        f"with 64-bit, {ri32:.2f} µs with 32-bit bounds). The value and gradient on the "
        f"whole batch cost {whole:.2f} µs per step in a bare scan, on two halves "
        f"(`gradient_noise=True`) {halves:.2f} µs, on a data set in cache {lik_small:.2f} µs. "
        f"The gather of the batch's rows alone costs {gather_big:.2f} µs from the "
        f"{N}-row data set against {gather_small:.2f} µs in cache: "
        f"{gather_big - gather_small:.2f} µs of memory latency of b scattered rows, which "
        "BlackJAX's step pays too. langevin's step "
        f"with its noise given costs {ours:.2f} µs, BlackJAX's {theirs:.2f} µs; the engine "
        f"is {ratio('langevin jax'):.2f}× BlackJAX with the same draw (CPU, paired), the "
        f"step in a bare `lax.scan` "
        f"{ratio('langevin jax step in a bare lax.scan (no engine)'):.2f}×. Both pay the "
        "index draw (BlackJAX is given langevin's) and the gather, so a step that did "
        f"nothing else would already be ({gather_big:.2f} + {chunk_now:.2f}) / "
        f"({theirs:.2f} + {chunk_now:.2f}) = {floor:.2f}× BlackJAX's; 0.7× leaves "
        f"{0.7 * (theirs + chunk_now) - chunk_now:.2f} µs for langevin's whole step, which "
        f"takes {ours:.2f} µs.",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    from benchmarks.sgmcmc_blackjax import make_data

    rounds, steps = (2, 100) if args.tiny else (15, 1000)
    info = machine_at_start("SGLD step profile", {"n": str(N), "d": str(D), "b": str(B)})
    X, y = make_data(N, D)
    eng = engines(X, y, rounds, steps)
    log("  engines done")
    nb = numba_components(X, y, 20 * steps, max(3, rounds // 2))
    log("  numba components done")
    jx = jax_components(X, y, steps, max(3, rounds // 2))
    load_at_end(info)

    bj_w, bj_c = eng["blackjax sgld (langevin's draw)"]
    lines = [f"# Where an SGLD step's time goes{' (tiny)' if args.tiny else ''}", ""]
    lines += load_warning(info)
    lines += [
        f"Logistic regression n = {N}, d = {D}, b = {B}, float64, one chain (module docstring "
        "of `benchmarks/sgmcmc_profile.py`). Paired rounds; CPU time of this process beside "
        "the wall time.",
        "",
        f"## Engine, ms per 1000 steps ({rounds} rounds)",
        "",
        "| implementation | CPU min | CPU median | wall median | median of CPU ratios to "
        "BlackJAX (langevin's draw) | of wall ratios |",
        "|---|---|---|---|---|---|",
    ]
    for name, (w, c) in eng.items():
        lines.append(f"| {name} | {c.min() * 1e3:.2f} | {np.median(c) * 1e3:.2f} | "
                     f"{np.median(w) * 1e3:.2f} | {np.median(c / bj_c):.3f} | "
                     f"{np.median(w / bj_w):.3f} |")  # fmt: skip
    lines += ["", "## Numba step components, µs per step", ""]
    lines += _table(nb, 1e6, "µs")
    lines += ["", "## JAX step components inside `lax.scan` (or per chunk), µs per step", ""]
    lines += _table(jx, 1e6, "µs")
    lines += ["", "## Reading it", "", *_reading(eng, nb, jx), "", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"sgmcmc_profile{'_tiny' if args.tiny else ''}.md"
    (args.out / name).write_text("\n".join(lines) + "\n")
    log(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
