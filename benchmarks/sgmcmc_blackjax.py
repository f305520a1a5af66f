"""SG-MCMC: langevin's SGLD and SGHMC (Numba, JAX) against ``blackjax.sgld``/``blackjax.sghmc``.

Run from the repository root::

    python -m benchmarks.sgmcmc_blackjax            # full (~3 min on 2 cores)
    python -m benchmarks.sgmcmc_blackjax --quick    # fewer runs, smaller scaling sweep
    python -m benchmarks.sgmcmc_blackjax --tiny     # smoke test
    python -m benchmarks.sgmcmc_blackjax --rounds 11  # more interleaved rounds (default 7)

The model: Bayesian logistic regression on **synthetic** data (no data set of ≥ 5000 rows
ships with the project or with scikit-learn's bundled loaders — ``load_digits`` has 1797 rows,
``load_breast_cancer`` 569 — and the benchmark machine has no network): ``X`` n × d with
entries N(0, 1/d), coefficients from the prior N(0, I), labels from the model;
n = 100 000, d = 20, batch b = 100, float64 everywhere, one chain, the same start.

Timed (median of interleaved runs after one untimed warm-up call that compiles; see
:func:`benchmarks._common.time_interleaved`), per 1000 steps:

1. ``numba sgld`` / ``jax sgld``: ``langevin.sample(target, SGLD(h, batch_size=b, n_data=n),
   warmup=0, draws=1000)`` on :func:`~langevin.targets.data_targets.logistic_regression_data`
   (minibatches without replacement, Floyd; no gradient-noise estimate, which is opt-in);
2. ``blackjax sgld``: ``blackjax.sgld(grad_estimator(logprior, loglik, n))`` in a jitted
   ``lax.scan`` over 1000 steps, the data passed as arguments (not constants), minibatch
   indices ``jax.random.randint`` (with replacement: the cheapest draw, favouring
   BlackJAX; ``jax.random.choice(..., replace=False)`` permutes all n indices per step);
3. the same for SGHMC. BlackJAX's ``sghmc`` step resamples the momentum and runs
   ``num_integration_steps`` leapfrog-like updates on *one* minibatch; langevin's SGHMC
   keeps its momentum and draws a minibatch per update. Equal work is per gradient
   evaluation: BlackJAX 100 steps × 10 integration steps vs langevin 1000 steps.

Scaling: time per step of langevin SGLD at fixed b = 100 against n = 10³ … 10⁶ (10⁷ × 20
float64 = 1.6 GB also runs with ``--big``); it must be flat: a step touches only its b rows.
Memory per chain: the state (position, gradient estimate: 2d + 2 numbers; SGHMC adds d) and
the step's minibatch (b int64 indices and b·d gathered floats on JAX); the data set is held
once, shared by every chain, on both backends.

Writes ``benchmarks/results/sgmcmc_blackjax.csv`` and ``.md`` (``_quick``/``_tiny``
variants; ``--out DIR`` elsewhere).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from benchmarks._common import (
    RESULTS,
    Timed,
    load_at_end,
    load_warning,
    log,
    machine_at_start,
    time_interleaved,
)


def make_data(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=1.0 / np.sqrt(d), size=(n, d))
    beta = rng.normal(size=d)
    y = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-(X @ beta)))).astype(np.float64)
    return X, y


def langevin_timed(name, target, kernel, backend, steps, x0):
    """``langevin.sample(..., draws=steps)``: what a user calls."""
    import langevin

    def call(run, draws):
        trace = langevin.sample(target, kernel, backend=backend, chains=1, warmup=0,
                                draws=draws, seed=run, progress=False,
                                initial_position=x0)  # fmt: skip
        if np.any(trace.diverged):
            raise RuntimeError(f"{name}: a chain diverged; the timing would be meaningless")
        return trace.draws

    return Timed(name, lambda run: call(run, steps))


def engine_timed(name, target, kernel, backend, steps, x0):
    """The engine alone (``prepare``/``init`` once, untimed): ``run`` of ``steps`` steps from
    the same state, noise drawn in the loop (Numba) or from keys (JAX) — what BlackJAX's
    jitted scan does, without ``sample()``'s checks, chunking and trace."""
    from langevin.backends import jax_backend, numba_backend

    be = numba_backend if backend == "numba" else jax_backend
    p = be.prepare(kernel, target, x0.shape[0], np.float64)
    state = be.init(p, x0[None, :])
    h = np.full(1, kernel.step_size)

    def fn(run):
        if backend == "numba":
            out = be.run(p, state, steps, h, rngs=[np.random.default_rng(run)])
        else:
            out = be.run(p, state, steps, h, keys=jax_backend.chain_keys(run, 1))
        if np.any(out.diverged):
            raise RuntimeError(f"{name}: the chain diverged; the timing would be meaningless")
        return out.position

    return Timed(name, fn)


def blackjax_timed(name, X, y, algo, steps, b, h, x0, integration_steps=None, *,
                   draw="randint", friction=10.0):  # fmt: skip
    """BlackJAX in a jitted ``lax.scan``, the data passed as arguments (not constants).

    ``draw``: the minibatch indices, ``"randint"`` (``jax.random.randint`` per step: with
    replacement, the cheapest draw, favouring BlackJAX) or ``"floyd"`` (langevin's draw, the
    same scheme as langevin's chains: ``Index(n, b).draw_jax`` for all steps at once, as the
    engine draws a chunk's noise; ``jax.random.choice(replace=False)`` permutes all n).

    ``algo``: ``"sgld"`` (``blackjax.sgld``), ``"sghmc"`` (``blackjax.sghmc``'s API: per
    step, momentum resampled and ``integration_steps`` updates on *one* minibatch) or
    ``"sghmc_equal"`` (BlackJAX's SGHMC update, ``blackjax.sgmcmc.diffusions.sghmc``, with
    its momentum kept and a fresh minibatch per gradient: langevin's algorithm and work).
    """
    import blackjax
    import jax
    import jax.numpy as jnp
    from blackjax.sgmcmc.diffusions import sghmc as sghmc_update

    from langevin.spec import Index

    n = X.shape[0]

    def logprior(beta):
        return -0.5 * jnp.sum(beta * beta)

    def loglik(beta, batch):
        xb, yb = batch
        eta = xb @ beta
        return yb * eta - jnp.logaddexp(0.0, eta)  # per datum: grad_estimator sums

    grad = blackjax.sgmcmc.gradients.grad_estimator(logprior, loglik, n)
    if algo == "sgld":
        sampler = blackjax.sgld(grad)
    elif algo == "sghmc":
        sampler = blackjax.sghmc(grad, num_integration_steps=integration_steps, alpha=friction)
    update = sghmc_update(alpha=friction)

    def indices(key):
        if draw == "floyd":
            return Index(n, b).draw_jax(key, (steps,), jnp.float64)
        return jax.vmap(lambda k: jax.random.randint(k, (b,), 0, n))(jax.random.split(key, steps))

    @jax.jit
    def run(key, position, Xd, yd):
        k_idx, k_steps = jax.random.split(key)
        batches = indices(k_idx)  # (steps, b)
        keys = jax.random.split(k_steps, steps)
        if algo == "sghmc_equal":

            def body(carry, xs):
                pos, mom = carry
                k, idx = xs
                g = grad(pos, (Xd[idx], yd[idx]))
                pos, mom = update(k, pos, mom, g, h)
                return (pos, mom), pos

            mom0 = jax.random.normal(key, position.shape, position.dtype)
            return jax.lax.scan(body, (position, mom0), (keys, batches))[1]

        def body(pos, xs):
            k, idx = xs
            pos = sampler.step(k, pos, (Xd[idx], yd[idx]), h)
            return pos, pos

        return jax.lax.scan(body, position, (keys, batches))[1]

    Xd, yd = jnp.asarray(X), jnp.asarray(y)

    def fn(r):
        out = run(jax.random.key(r), jnp.asarray(x0), Xd, yd)
        return np.asarray(out.block_until_ready())

    return Timed(name, fn)


def scaling(sizes, d, b, steps, log_fn):
    """Engine seconds per step of langevin SGLD (Numba, JAX) at each n, fixed b: median of
    5 runs of ``steps`` steps after a warm-up run (wall and CPU)."""
    from langevin.kernels.sgmcmc import SGLD
    from langevin.targets.data_targets import logistic_regression_data

    rows = []
    for n in sizes:
        X, y = make_data(n, d, seed=1)
        target = logistic_regression_data(X, y)
        kernel = SGLD(1.0 / n, batch_size=b, n_data=n)  # h·n fixed: stable
        for backend in ("numba", "jax"):
            item = engine_timed(f"{backend} n={n}", target, kernel, backend, steps, np.zeros(d))
            item.fn(0)
            times, cpus = [], []
            for r in range(1, 6):
                t0, c0 = time.perf_counter(), time.process_time()
                item.fn(r)
                times.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
            per_step = float(np.median(times)) / steps
            rows.append(
                {
                    "n": n,
                    "backend": backend,
                    "seconds_per_step": per_step,
                    "cpu_seconds_per_step": float(np.median(cpus)) / steps,
                }
            )
            log_fn(f"  scaling n={n:>9} {backend:5s} {per_step * 1e6:9.2f} µs/step")
        del X, y, target
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--big", action="store_true", help="add n = 10⁷ to the scaling sweep")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved timing rounds (default 7; --quick 3, --tiny 1)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    _run(args)


#: (our item, BlackJAX item of the same scheme, goal) for the goal's table; the second
#: BlackJAX item per algorithm (with-replacement draw; SGHMC's API) is shown beside it.
GOALS = [
    ("jax sgld engine", "blackjax sgld floyd", 0.7),
    ("numba sgld engine", "blackjax sgld floyd", 0.5),
    ("jax sghmc engine", "blackjax sghmc", 0.7),
    ("numba sghmc engine", "blackjax sghmc", 0.5),
]
OTHER = {"blackjax sgld floyd": "blackjax sgld", "blackjax sghmc": "blackjax sghmc 100x10"}


def _run(args: argparse.Namespace) -> None:
    from langevin.kernels.sgmcmc import SGHMC, SGLD
    from langevin.targets.data_targets import logistic_regression_data

    suffix = "_tiny" if args.tiny else "_quick" if args.quick else ""
    n, d, b = (2000, 5, 20) if args.tiny else (100_000, 20, 100)
    steps = 50 if args.tiny else 1000
    runs = args.rounds or (1 if args.tiny else 3 if args.quick else 7)
    sizes = [1000, 5000] if args.tiny else [10**3, 10**4, 10**5] if args.quick else [
        10**3, 10**4, 10**5, 10**6]  # fmt: skip
    if args.big:
        sizes.append(10**7)
    info = machine_at_start("SG-MCMC vs BlackJAX", {"n": str(n), "d": str(d), "b": str(b)})
    X, y = make_data(n, d)
    target = logistic_regression_data(X, y)
    x0 = np.zeros(d)
    h, friction = 1e-5, 10.0
    sgld = SGLD(h, batch_size=b, n_data=n)
    sgld_noise = SGLD(h, batch_size=b, n_data=n, gradient_noise=True)
    # SGHMC's ε with η = ε² (Chen et al.'s SGD-with-momentum form) equal to SGLD's h; the
    # same ε and friction (BlackJAX's alpha) for BlackJAX's SGHMC
    eps = float(np.sqrt(h))
    sghmc = SGHMC(eps, batch_size=b, n_data=n, friction=friction)
    bj_steps = max(1, steps // 10)
    items = [
        langevin_timed("numba sgld", target, sgld, "numba", steps, x0),
        langevin_timed("jax sgld", target, sgld, "jax", steps, x0),
        engine_timed("numba sgld engine", target, sgld, "numba", steps, x0),
        engine_timed("jax sgld engine", target, sgld, "jax", steps, x0),
        engine_timed("numba sgld engine +noise", target, sgld_noise, "numba", steps, x0),
        engine_timed("jax sgld engine +noise", target, sgld_noise, "jax", steps, x0),
        blackjax_timed("blackjax sgld", X, y, "sgld", steps, b, h, x0),
        blackjax_timed("blackjax sgld floyd", X, y, "sgld", steps, b, h, x0, draw="floyd"),
        langevin_timed("numba sghmc", target, sghmc, "numba", steps, x0),
        langevin_timed("jax sghmc", target, sghmc, "jax", steps, x0),
        engine_timed("numba sghmc engine", target, sghmc, "numba", steps, x0),
        engine_timed("jax sghmc engine", target, sghmc, "jax", steps, x0),
        blackjax_timed(
            "blackjax sghmc",
            X,
            y,
            "sghmc_equal",
            steps,
            b,
            eps,
            x0,
            draw="floyd",
            friction=friction,
        ),
        blackjax_timed(
            "blackjax sghmc 100x10", X, y, "sghmc", bj_steps, b, eps, x0, 10, friction=friction
        ),
    ]
    time_interleaved(items, runs, log)
    scale_rows = scaling(sizes, d, b, 200 if args.tiny else 1000, log)
    load_at_end(info)

    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / f"sgmcmc_blackjax{suffix}.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "run", "seconds", "cpu_seconds"])
        for it in items:
            for r, (s, c) in enumerate(zip(it.runs, it.cpu_runs)):
                w.writerow([it.name, r, s, c])
            w.writerow([it.name, "median", it.median, it.cpu_median])
        for row in scale_rows:
            w.writerow([f"scaling {row['backend']} n={row['n']}", "per_step",
                        row["seconds_per_step"], row["cpu_seconds_per_step"]])  # fmt: skip
    grads = {it.name: steps for it in items}
    grads["blackjax sghmc 100x10"] = bj_steps * 10
    wall = {it.name: it.median * 1000 / grads[it.name] for it in items}
    cpu = {it.name: it.cpu_median * 1000 / grads[it.name] for it in items}
    by_name = {it.name: it for it in items}

    def paired(a: str, c: str) -> float:
        """Median over rounds of the per-round ratio (rounds are interleaved)."""
        ra = np.asarray(by_name[a].runs) / grads[a]
        rc = np.asarray(by_name[c].runs) / grads[c]
        return float(np.median(ra / rc))

    lines = [f"# SG-MCMC vs BlackJAX{' (' + suffix[1:] + ')' if suffix else ''}", ""]
    lines += load_warning(info)
    lines += [
        f"Logistic regression, synthetic data n = {n}, d = {d}, batch b = {b}, one chain, "
        "float64 (module docstring of `benchmarks/sgmcmc_blackjax.py`). Seconds per 1000 "
        f"gradient evaluations, median of {runs} interleaved rounds after a compiling "
        "warm-up call; wall-clock and CPU time (this process, all threads).",
        "",
        "`sample()` is what a user calls (argument checks, `init`, chunks, the trace); "
        "*engine* is the compiled loop alone (`prepare`/`init` once, then `run` of 1000 "
        "steps), what BlackJAX's jitted `lax.scan` is. `+noise`: the kernel built with "
        "`gradient_noise=True` (the gradient-noise estimate from two half-batch calls; off "
        "by default since 2026-12-06).",
        "",
        "What is compared (see the module docstring): every row draws a minibatch per "
        "gradient except `blackjax sghmc 100x10` (BlackJAX's SGHMC API: 100 steps × 10 "
        "updates on one minibatch, momentum resampled per step: 100 minibatches for 1000 "
        "gradients). `blackjax sghmc` is BlackJAX's SGHMC update with the momentum kept and a "
        "fresh minibatch per gradient, langevin's algorithm. `floyd`: BlackJAX given "
        "langevin's without-replacement draw (the same scheme); `blackjax sgld`: "
        "`jax.random.randint`, with replacement (cheaper, favours BlackJAX).",
        "",
        "| implementation | wall s / 1000 gradients | CPU s / 1000 gradients | first call (s) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {it.name} | {wall[it.name]:.4f} | {cpu[it.name]:.4f} | {it.first:.2f} |"
              for it in items]  # fmt: skip
    lines += ["", "Ratios of the engine to BlackJAX on the same scheme (goal), and to BlackJAX's "
              "cheaper variant: medians of wall, of CPU, and the median of per-round wall "
              "ratios (paired).", "",
              "| ratio | wall | CPU | paired | goal | vs | wall | CPU |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for ours, theirs, goal in GOALS:
        other = OTHER[theirs]
        r_wall, r_cpu = wall[ours] / wall[theirs], cpu[ours] / cpu[theirs]
        ok = "met" if r_wall <= goal and r_cpu <= goal else "NOT met"
        lines.append(
            f"| {ours} / {theirs} | {r_wall:.3f} | {r_cpu:.3f} | {paired(ours, theirs):.3f} | "
            f"<= {goal}: {ok} | {other} | {wall[ours] / wall[other]:.3f} | "
            f"{cpu[ours] / cpu[other]:.3f} |"
        )
    for be in ("numba", "jax"):
        lines.append(f"| {be} sgld (sample) / blackjax sgld floyd | "
                     f"{wall[f'{be} sgld'] / wall['blackjax sgld floyd']:.3f} | "
                     f"{cpu[f'{be} sgld'] / cpu['blackjax sgld floyd']:.3f} | "
                     f"{paired(f'{be} sgld', 'blackjax sgld floyd'):.3f} | — | | | |")  # fmt: skip
    lines += ["", "## Engine time per step against n (SGLD, b fixed)", "",
              "| n | numba µs/step | numba CPU µs/step | jax µs/step | jax CPU µs/step |",
              "|---|---|---|---|---|"]  # fmt: skip
    by_n: dict = {}
    for row in scale_rows:
        by_n.setdefault(row["n"], {})[row["backend"]] = row
    for k, v in by_n.items():
        cells = []
        for be in ("numba", "jax"):
            r = v.get(be, {})
            cells += [f"{r.get('seconds_per_step', float('nan')) * 1e6:.2f}",
                      f"{r.get('cpu_seconds_per_step', float('nan')) * 1e6:.2f}"]  # fmt: skip
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Memory per chain: state {2 * d + 2} numbers (SGLD; SGHMC {3 * d + 2}) plus the "
        f"step's {b} indices (and {b}×{d} gathered floats on JAX); the data "
        f"({n}×{d} float64 = {n * d * 8 / 2**20:.1f} MiB here) is held once for all chains.",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    (args.out / f"sgmcmc_blackjax{suffix}.md").write_text("\n".join(lines) + "\n")
    log(f"wrote {args.out / f'sgmcmc_blackjax{suffix}.md'}")


if __name__ == "__main__":
    main()
