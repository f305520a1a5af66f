"""Where an SGLD step's time goes (logistic model of ``sgmcmc_blackjax.py``), against BlackJAX.

Run from the repository root::

    python -m benchmarks.sgmcmc_profile           # ~2 min on 2 cores
    python -m benchmarks.sgmcmc_profile --tiny    # smoke test

Same model as :mod:`benchmarks.sgmcmc_blackjax` (n = 100 000, d = 20, b = 100, float64).
On a shared machine the wall-clock medians of single runs swing by 2× between runs, so
every comparison here is *paired*: the items run one after the other in each of ``ROUNDS``
rounds, and the table gives the minimum over rounds (the least disturbed run) and the median
of the per-round ratios to BlackJAX.

1. Engine time per 1000 steps (compiled loop alone, as in ``sgmcmc_blackjax.py``): langevin
   SGLD on Numba with the current likelihood and with the previous one-pass likelihood
   (``_one_pass_loglik`` below, the code before the two-pass change), on JAX, and
   ``blackjax.sgld``.
2. Components of one Numba step, each in its own compiled loop over 20 000 steps: the
   minibatch draw (its ``b`` bounded integers, and Floyd's O(b²) membership test), the
   likelihood (two halves of 50 rows, current and previous code), d normals.
3. Components of one JAX step inside ``lax.scan``: the likelihood value-and-gradient on the
   two halves (as the kernel does, for its gradient-noise estimate) and on the whole batch;
   the minibatch draw with the engine's sequential Floyd loop (``Index.draw_jax``) and with a
   loop-free equivalent (pointer doubling, identical output; :func:`pointer_floyd`).

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


def _one_pass_loglik_py(beta, idx, data):
    """The logistic minibatch likelihood as it was before the two-pass change."""
    X, y, _ = data
    d = beta.shape[0]
    value = 0.0
    grad = np.zeros(d)
    for k in range(idx.shape[0]):
        i = idx[k]
        t = 0.0
        for j in range(d):
            t += X[i, j] * beta[j]
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


def pointer_floyd(t, n: int, size: int):
    """Floyd's combination step without its sequential loop (JAX), same output as
    ``floyd_indices``. With ``base = n − size`` and ``j_k = base + k``: item k is replaced
    (``clash_k``) iff ``t_k`` is in the set built so far, which is ``{t_i : i < k} ∪ {j_i :
    i < k, clash_i}``; ``t_k = j_i`` happens for one i only, ``i = t_k − base < k``, so
    ``clash_k = dup_k or clash_{t_k − base}``: resolved by pointer doubling in
    ⌈log₂ size⌉ + 1 vector rounds instead of ``size`` sequential ones."""
    import jax.numpy as jnp

    base = n - size
    ar = jnp.arange(size)
    dup = jnp.any((t[:, None] == t[None, :]) & (ar[None, :] < ar[:, None]), axis=1)
    has = t >= base
    ptr = jnp.where(has, t - base, ar)
    clash = dup
    for _ in range(math.ceil(math.log2(max(size, 2))) + 1):
        clash = clash | (has & clash[ptr])
        has = has & has[ptr]
        ptr = ptr[ptr]
    return jnp.where(clash, base + ar, t)


def _paired(items: dict, rounds: int) -> dict[str, np.ndarray]:
    for fn in items.values():
        fn(0)  # compile
    times: dict[str, list[float]] = {k: [] for k in items}
    for r in range(1, rounds + 1):
        for name, fn in items.items():
            t0 = time.perf_counter()
            fn(r)
            times[name].append(time.perf_counter() - t0)
    return {k: np.asarray(v) for k, v in times.items()}


def engines(X, y, rounds: int, steps: int) -> dict[str, np.ndarray]:
    import numba

    from benchmarks.sgmcmc_blackjax import blackjax_timed, engine_timed
    from langevin.kernels.sgmcmc import SGLD
    from langevin.targets.data_targets import (
        _LOGISTIC_JAX,
        DataTarget,
        _logistic_logprior,
        logistic_regression_data,
    )

    one_pass = numba.njit(_one_pass_loglik_py)

    @numba.njit
    def one_pass_full(beta, data):
        v, g = one_pass(beta, np.arange(data[0].shape[0]), data)
        pv, pg = _logistic_logprior(beta, data)
        return v + pv, g + pg

    target = logistic_regression_data(X, y)
    previous = DataTarget(
        n_data=len(y), dim=X.shape[1], numba_data=target.data, jax=_LOGISTIC_JAX,
        numba={"loglik": one_pass, "logprior": _logistic_logprior,
               "value_and_grad": one_pass_full},
        jax_data=target.data,
    )  # fmt: skip
    kernel = SGLD(1e-5, batch_size=B, n_data=len(y))
    x0 = np.zeros(X.shape[1])
    items = {
        "langevin numba (two-pass likelihood)": engine_timed("a", target, kernel, "numba",
                                                             steps, x0).fn,
        "langevin numba (previous one-pass likelihood)": engine_timed("b", previous, kernel,
                                                                      "numba", steps, x0).fn,
        "langevin jax": engine_timed("c", target, kernel, "jax", steps, x0).fn,
        "blackjax sgld": blackjax_timed("d", X, y, "sgld", steps, B, 1e-5, x0).fn,
    }  # fmt: skip
    return _paired(items, rounds)


def numba_components(X, y, steps: int, rounds: int) -> dict[str, np.ndarray]:
    import numba

    from langevin.spec import floyd_indices
    from langevin.targets.data_targets import _logistic_loglik, logistic_regression_data

    data = logistic_regression_data(X, y).data
    floyd = numba.njit(floyd_indices)
    one_pass = numba.njit(_one_pass_loglik_py)
    n, b = len(y), B
    rng = np.random.default_rng(0)
    draws = np.stack([np.array([rng.integers(0, n - b + k + 1) for k in range(b)])
                      for _ in range(steps)])  # fmt: skip
    batches = np.stack([floyd_indices(t, n) for t in draws])
    beta = rng.normal(size=X.shape[1]) * 0.1

    @numba.njit
    def integers(g, steps, n, b):
        s = 0
        for _ in range(steps):
            for k in range(b):
                s += g.integers(0, n - b + k + 1)
        return s

    @numba.njit
    def membership(draws, n):
        s = 0
        for r in range(draws.shape[0]):
            s += floyd(draws[r], n)[0]
        return s

    def lik_loop(f):
        @numba.njit
        def loop(beta, batches, data):
            s = 0.0
            h = batches.shape[1] // 2
            for r in range(batches.shape[0]):
                v1, g1 = f(beta, batches[r, :h], data)
                v2, g2 = f(beta, batches[r, h:], data)
                s += v1 + v2 + g1[0] + g2[0]
            return s

        return loop

    @numba.njit
    def normals(g, steps, d):
        s = 0.0
        for _ in range(steps):
            s += g.standard_normal(d)[0]
        return s

    new_loop, old_loop = lik_loop(_logistic_loglik), lik_loop(one_pass)
    items = {
        "minibatch draw: b bounded integers": lambda r: integers(
            np.random.default_rng(r), steps, n, b
        ),
        "minibatch draw: Floyd membership test (O(b²))": lambda r: membership(draws, n),
        "likelihood, two halves (two-pass, current)": lambda r: new_loop(beta, batches, data),
        "likelihood, two halves (one-pass, previous)": lambda r: old_loop(beta, batches, data),
        "d standard normals": lambda r: normals(np.random.default_rng(r), steps, X.shape[1]),
    }
    return {k: v / steps for k, v in _paired(items, rounds).items()}


def jax_components(X, y, steps: int, rounds: int) -> dict[str, np.ndarray]:
    import jax
    import jax.numpy as jnp

    from langevin.spec import Index
    from langevin.targets.data_targets import _logistic_jax_loglik, _logistic_jax_logprior

    n, b = len(y), B
    data = (jax.device_put(X), jax.device_put(y), jnp.asarray([1.0]))
    rng = np.random.default_rng(0)
    batches = jnp.asarray(np.stack([rng.choice(n, b, replace=False) for _ in range(steps)]))
    vg = jax.value_and_grad(_logistic_jax_loglik)
    vgp = jax.value_and_grad(_logistic_jax_logprior)
    index = Index(n, b)

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

    def draw_loop(draw):
        @jax.jit
        def loop(key):
            def body(c, k):
                return c + draw(k)[0], None

            return jax.lax.scan(body, 0, jax.random.split(key, steps))[0]

        return loop

    def pointer(key):
        t = jax.random.randint(key, (b,), 0, n - b + jnp.arange(b) + 1)
        return pointer_floyd(t, n, b)

    sequential = draw_loop(lambda k: index.draw_jax(k, (), jnp.float64))
    loop_free = draw_loop(pointer)
    keys = jax.random.split(jax.random.key(3), 500)
    same = bool(jnp.all(jax.vmap(lambda k: index.draw_jax(k, (), jnp.float64))(keys)
                        == jax.vmap(pointer)(keys)))  # fmt: skip
    if not same:
        raise RuntimeError("pointer_floyd differs from Index.draw_jax")
    x0 = jnp.zeros(X.shape[1])
    items = {
        "likelihood value+grad, two halves (as the kernel)": lambda r: jax.block_until_ready(
            halves(x0, batches, data)),
        "likelihood value+grad, whole batch": lambda r: jax.block_until_ready(
            whole(x0, batches, data)),
        "minibatch draw, sequential Floyd (Index.draw_jax)": lambda r: jax.block_until_ready(
            sequential(jax.random.key(r))),
        "minibatch draw, loop-free Floyd (pointer doubling)": lambda r: jax.block_until_ready(
            loop_free(jax.random.key(r))),
    }  # fmt: skip
    return {k: v / steps for k, v in _paired(items, rounds).items()}


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
    nb = numba_components(X, y, 20 * steps, max(3, rounds // 3))
    log("  numba components done")
    jx = jax_components(X, y, steps, max(3, rounds // 3))
    load_at_end(info)

    bj = eng["blackjax sgld"]
    lines = [f"# Where an SGLD step's time goes{' (tiny)' if args.tiny else ''}", ""]
    lines += load_warning(info)
    lines += [
        f"Logistic regression n = {N}, d = {D}, b = {B}, float64, one chain (module docstring "
        "of `benchmarks/sgmcmc_profile.py`). Paired rounds: minimum over rounds, and the "
        "median of the per-round ratios.",
        "",
        f"## Engine, ms per 1000 steps ({rounds} rounds)",
        "",
        "| implementation | min | median | min / BlackJAX min | median of ratios to BlackJAX |",
        "|---|---|---|---|---|",
    ]
    for name, t in eng.items():
        lines.append(f"| {name} | {t.min() * 1e3:.2f} | {np.median(t) * 1e3:.2f} | "
                     f"{t.min() / bj.min():.3f} | {np.median(t / bj):.3f} |")  # fmt: skip
    lines += ["", "## Numba step components, µs per step (min over rounds)", "",
              "| component | µs |", "|---|---|"]  # fmt: skip
    lines += [f"| {k} | {v.min() * 1e6:.2f} |" for k, v in nb.items()]
    lines += ["", "## JAX step components inside `lax.scan`, µs per step (min over rounds)", "",
              "| component | µs |", "|---|---|"]  # fmt: skip
    lines += [f"| {k} | {v.min() * 1e6:.2f} |" for k, v in jx.items()]
    lines += [
        "",
        "Reading it. Numba: the likelihood of a random minibatch is bound by memory latency "
        "(rows scattered over 16 MB); computing every η first lets the row loads overlap, "
        "which (with reassociation for vectorised dot products) cut it by half or more. The "
        "other large part is the minibatch draw (engine code, `langevin/spec.py`): its "
        "bounded integers and Floyd's O(b²) membership test. JAX: the two half-batch "
        "likelihood calls the gradient-noise estimate needs cost more than one whole-batch "
        "call; inside the engine the chunk's minibatches are drawn as one vmapped block, "
        "where the sequential Floyd loop is amortised over the chunk.",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"sgmcmc_profile{'_tiny' if args.tiny else ''}.md"
    (args.out / name).write_text("\n".join(lines) + "\n")
    log(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
