"""SGLD at equal wall time: langevin (Numba, JAX) against ``blackjax.sgld`` on real data.

Run from the repository root::

    python -m benchmarks.sgmcmc_equal_time            # budgets 1, 4, 16 s (~3 min on 2 cores)
    python -m benchmarks.sgmcmc_equal_time --quick    # budgets 0.5, 2 s
    python -m benchmarks.sgmcmc_equal_time --tiny     # smoke test

What a user with a time budget gets: each sampler runs for the same wall-clock time and the
draws it made are scored. The problem is ``benchmarks/sgmcmc_rand_hie.py``'s (RAND HIE
logistic regression, 16 152 training rows, d = 10, N(0, s²I) prior, the BlackJAX NUTS
reference); every sampler is SGLD (Welling & Teh 2011) with the same step h = 2·10⁻⁶, batch
b = 100, one chain from 0, float64:

* ``langevin SGLD (Numba)`` and ``(JAX)``: ``langevin.sample(target, SGLD(h, batch_size=b,
  n_data=n), draws=S)``, minibatches without replacement;
* ``BlackJAX SGLD``: ``blackjax.sgld(grad_estimator(logprior, loglik, n))`` stepped in a
  jitted ``lax.scan`` of 1000 steps called until S steps are done (one compilation for any
  S), minibatch indices ``jax.random.randint`` (with replacement: BlackJAX's cheapest draw).

Protocol per budget T: each sampler's step rate is measured on a calibration run (after an
untimed call that compiles), S = rate · T steps are run twice, and the second (warm) run is
timed and scored: the first 20 % of its draws are dropped as burn-in (the chain starts at 0,
far from the posterior at short budgets), then, on at most 4000 thinned draws,

* test log-likelihood: the mean over the 4038 test rows of ``log E_draws[p(y_i | x_i, β)]``;
* KSD (:func:`langevin.diagnostics.kernel_stein_discrepancy`, IMQ, in units of the reference
  sd), with the full-data score; the reference's own 4000 draws give the finite-sample level.

The step count comes from the calibrated rate, so a long run's measured time can exceed the
budget where keeping the draws costs more than the calibration run showed (BlackJAX's host
copies of each chunk, the JAX trace): both the steps and the measured time are reported.

Writes ``benchmarks/results/sgmcmc_equal_time.md`` (``_quick``/``_tiny`` variants).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks._common import RESULTS, load_at_end, load_warning, log, machine_at_start
from benchmarks.sgmcmc_rand_hie import (
    REFERENCE,
    heldout_log_likelihood,
    predictive,
    rand_hie_problem,
    reference_row,
)

STEP = 2e-6
BATCH = 100
BURN_IN = 0.2
KSD_POINTS = 4000
CHUNK = 1000  # BlackJAX's scan length


def langevin_runner(problem, backend: str):
    """``run(steps, seed) -> draws (steps, d)`` through ``langevin.sample``."""
    import langevin
    from langevin.kernels.sgmcmc import SGLD

    kernel = SGLD(STEP, batch_size=BATCH, n_data=problem.target.n_data)
    x0 = np.zeros(problem.target.dim)

    def run(steps: int, seed: int) -> np.ndarray:
        trace = langevin.sample(problem.target, kernel, backend=backend, chains=1, warmup=0,
                                draws=steps, seed=seed, progress=False,
                                initial_position=x0)  # fmt: skip
        if trace.diverged:
            raise RuntimeError(f"langevin SGLD ({backend}) diverged")
        return trace.draws[0]

    return run


def blackjax_runner(problem):
    """``run(steps, seed) -> draws`` with ``blackjax.sgld``, in chunks of one jitted scan."""
    import blackjax
    import jax
    import jax.numpy as jnp

    X, y = problem.X_train, problem.y_train
    n = X.shape[0]
    with np.load(REFERENCE) as ref:
        prior_scale = float(ref["prior_scale"])

    def logprior(beta):
        return -0.5 * jnp.sum(beta * beta) / prior_scale**2

    def loglik(beta, batch):
        xb, yb = batch
        eta = xb @ beta
        return yb * eta - jnp.logaddexp(0.0, eta)  # per datum: grad_estimator sums

    sampler = blackjax.sgld(blackjax.sgmcmc.gradients.grad_estimator(logprior, loglik, n))

    @jax.jit
    def chunk(key, position, Xd, yd):
        def body(pos, key):
            k_batch, k_step = jax.random.split(key)
            idx = jax.random.randint(k_batch, (BATCH,), 0, n)
            pos = sampler.step(k_step, pos, (Xd[idx], yd[idx]), STEP)
            return pos, pos

        return jax.lax.scan(body, position, jax.random.split(key, CHUNK))

    Xd, yd = jnp.asarray(X, dtype=jnp.float64), jnp.asarray(y, dtype=jnp.float64)

    def run(steps: int, seed: int) -> np.ndarray:
        key = jax.random.key(seed)
        position = jnp.zeros(X.shape[1], dtype=jnp.float64)
        out = []
        for _ in range(-(-steps // CHUNK)):
            key, sub = jax.random.split(key)
            position, draws = chunk(sub, position, Xd, yd)
            out.append(draws)
        return np.asarray(jnp.concatenate(out)[:steps])

    return run


def score(problem, draws: np.ndarray) -> tuple[float, float]:
    """(test log-likelihood, KSD in reference-sd units) of the draws after burn-in."""
    from langevin.diagnostics import kernel_stein_discrepancy

    kept = draws[int(BURN_IN * len(draws)) :]
    kept = kept[:: max(1, len(kept) // KSD_POINTS)]
    p = predictive(kept, problem.X_test)
    ksd = kernel_stein_discrepancy(kept, problem.target, scale=problem.ref_sd,
                                   max_points=KSD_POINTS).ksd  # fmt: skip
    return heldout_log_likelihood(p, problem.y_test), float(ksd)


def timed(run, steps: int, seed: int) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    draws = run(steps, seed)
    return draws, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    import jax

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    budgets = (0.2,) if args.tiny else (0.5, 2.0) if args.quick else (1.0, 4.0, 16.0)
    suffix = "_tiny" if args.tiny else "_quick" if args.quick else ""
    calibration = 2000 if args.tiny else 20000

    jax.config.update("jax_enable_x64", True)  # a script of its own: float64 like the paper
    info = machine_at_start("SGLD at equal wall time: langevin vs BlackJAX (RAND HIE)",
                            {"step": str(STEP), "batch": str(BATCH)})  # fmt: skip
    problem = rand_hie_problem()
    ref = reference_row(problem)
    runners = {
        "langevin SGLD (Numba)": langevin_runner(problem, "numba"),
        "langevin SGLD (JAX)": langevin_runner(problem, "jax"),
        "BlackJAX SGLD": blackjax_runner(problem),
    }
    rates = {}
    for name, run in runners.items():
        run(calibration, 0)  # compiles
        _, seconds = timed(run, calibration, 1)
        rates[name] = calibration / seconds
        log(f"  {name:22s} {rates[name]:10.0f} steps/s")
    rows = []
    for budget in budgets:
        for name, run in runners.items():
            steps = max(100, int(rates[name] * budget))
            run(steps, 2)  # the same chunk lengths compiled: the timed run is warm
            draws, seconds = timed(run, steps, 3)
            ll, ksd = score(problem, draws)
            rows.append((budget, name, steps, seconds, ll, ksd))
            log(f"  T = {budget:5.1f} s  {name:22s} {steps:8d} steps in {seconds:6.2f} s  "
                f"test ll {ll:.5f}  KSD {ksd:.3f}")  # fmt: skip
    load_at_end(info)

    variant = f" ({suffix[1:]})" if suffix else ""
    lines = [f"# SGLD at equal wall time: langevin vs BlackJAX{variant}", ""]
    lines += load_warning(info)
    lines += [
        f"RAND HIE logistic regression ({problem.target.n_data} training rows, "
        f"{len(problem.y_test)} test rows, d = {problem.target.dim}); SGLD h = {STEP:g}, "
        f"b = {BATCH}, one chain from 0, float64; the first {BURN_IN:.0%} of each run "
        "dropped (module docstring of `benchmarks/sgmcmc_equal_time.py`). Steps = calibrated "
        "rate × T; the measured time can exceed T where keeping the draws costs more than in "
        "the calibration run.",
        "",
        "Calibrated step rates (steps per second, warm):",
        "",
        *(f"* {name}: {rate:,.0f}" for name, rate in rates.items()),
        "",
        "| budget T (s) | sampler | steps | measured time (s) | test log-lik | KSD (ref-sd) |",
        "|---|---|---|---|---|---|",
        f"| — | NUTS reference (4000 draws) | — | — | {ref.test_loglik:.5f} | {ref.ksd:.3f} |",
    ]
    for budget, name, steps, seconds, ll, ksd in rows:
        lines.append(f"| {budget:g} | {name} | {steps} | {seconds:.2f} | {ll:.5f} | {ksd:.3f} |")
    lines += ["", "Machine:", "", *(f"* {k}: {v}" for k, v in info.items()), ""]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"sgmcmc_equal_time{suffix}.md"
    path.write_text("\n".join(lines))
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
