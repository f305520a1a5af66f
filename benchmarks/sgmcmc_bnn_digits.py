"""A Bayesian neural network on the digits: SGLD, pSGLD and structured SGLD against SGD.

Run from the repository root::

    python -m benchmarks.sgmcmc_bnn_digits           # ~3 min on 2 cores
    python -m benchmarks.sgmcmc_bnn_digits --tiny    # smoke test

The model (:func:`langevin.targets.neural.mlp_classifier_data`): a one-hidden-layer tanh
network with ``HIDDEN`` units and a softmax output on scikit-learn's digits (64 pixels in
[0, 1], 10 classes; :func:`~langevin.targets.neural.digits_data`: 1300 training and 497
test images), prior N(0, I) on every weight and bias (d = 2410 for 32 hidden units).

* ``SGD``: the same network and loss (the negative log posterior, i.e. cross-entropy plus
  the prior's weight decay) trained by ``optax.sgd`` with momentum 0.9, batch 100, the same
  number of gradient evaluations as a sampler chain, from the same start; the prediction is
  the softmax at the final weights (a point estimate).
* ``SGLD``, ``pSGLD`` (RMSprop preconditioner), ``structured SGLD`` (Alexos et al. 2022:
  groups by layer, W1/b1 and W2/b2, 2 composites per step, hence 2 likelihood gradients per
  step; it samples the layer-wise mean-field approximation): langevin, Numba backend,
  ``CHAINS`` chains from the same start (LeCun-scaled random weights), batch 100,
  ``WARMUP`` steps dropped, then ``DRAWS`` steps kept every ``THIN``-th; the prediction is
  the posterior predictive (softmax averaged over the kept draws of all chains).

Reported on the test images: accuracy, negative log-likelihood (mean ``−log p(y | x)``) and
the expected calibration error (10 equal-width bins of the top-class confidence; Guo et al.
2017), and the wall time. Writes ``benchmarks/results/sgmcmc_bnn_digits.md`` and ``.csv``
(``_tiny`` with ``--tiny``).
"""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS, load_at_end, load_warning, log, machine_at_start
from benchmarks.sgmcmc_rand_hie import multiclass_ece

HIDDEN = 32
BATCH = 100
CHAINS = 4
WARMUP = 10000
DRAWS = 20000
THIN = 200
N_CLASSES = 10


@dataclass(frozen=True)
class Digits:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    target: Any
    hidden: int


def digits_problem(hidden: int = HIDDEN) -> Digits:
    from langevin.targets.neural import digits_data, mlp_classifier_data

    X_train, y_train, X_test, y_test = digits_data()
    target = mlp_classifier_data(X_train, y_train, hidden=hidden, n_classes=N_CLASSES)
    return Digits(X_train, y_train, X_test, y_test, target, hidden)


def scores(problem: Digits, probs: np.ndarray) -> dict[str, float]:
    """Accuracy, mean negative log-likelihood, ECE and mean top-class confidence of class
    probabilities on the test set (confidence below accuracy: under-confident)."""
    y = problem.y_test
    p_true = np.clip(probs[np.arange(len(y)), y], 1e-300, None)
    return {
        "accuracy": float(np.mean(probs.argmax(axis=1) == y)),
        "nll": float(-np.mean(np.log(p_true))),
        "ece": multiclass_ece(probs, y),
        "confidence": float(np.mean(probs.max(axis=1))),
    }


def sgd(problem: Digits, steps: int, lr: float = 0.05, seed: int = 0) -> tuple[np.ndarray, float]:
    """``optax.sgd(lr, momentum=0.9)`` on the mean negative log posterior (per datum) with
    minibatches of ``BATCH`` (without replacement within a batch); returns the final weights
    and the wall time."""
    import jax
    import jax.numpy as jnp
    import optax

    from langevin.targets.neural import _mlp_jax_loglik, _mlp_jax_logprior

    target = problem.target
    n = target.n_data
    data = tuple(jnp.asarray(a) for a in target.data)

    def loss(theta, idx):
        lik = _mlp_jax_loglik(theta, idx, data) * (n / idx.shape[0])
        return -(lik + _mlp_jax_logprior(theta, data)) / n

    opt = optax.sgd(lr, momentum=0.9)

    @jax.jit
    def run(theta, batches):
        def body(carry, idx):
            theta, state = carry
            g = jax.grad(loss)(theta, idx)
            updates, state = opt.update(g, state, theta)
            return (optax.apply_updates(theta, updates), state), None

        (theta, _), _ = jax.lax.scan(body, (theta, opt.init(theta)), batches)
        return theta

    rng = np.random.default_rng(seed)
    batches = np.stack([rng.choice(n, BATCH, replace=False) for _ in range(steps)])
    theta0 = jnp.asarray(target.initial_position)
    t0 = time.perf_counter()
    theta = np.asarray(run(theta0, jnp.asarray(batches)).block_until_ready())
    return theta, time.perf_counter() - t0


def samplers(problem: Digits) -> dict[str, tuple[Any, int]]:
    """``{name: (kernel, likelihood gradients per step)}``; step sizes tuned once by hand."""
    from langevin.kernels.sgmcmc import PSGLD, SGLD
    from langevin.kernels.structured_sgmcmc import StructuredSGLD
    from langevin.targets.neural import mlp_layer_groups

    n = problem.target.n_data
    p = problem.X_train.shape[1]
    groups = mlp_layer_groups(p, problem.hidden, N_CLASSES)
    return {
        "SGLD": (SGLD(2e-4, batch_size=BATCH, n_data=n), 1),
        "pSGLD": (PSGLD(2e-5, batch_size=BATCH, n_data=n, alpha=0.99, lam=1e-3), 1),
        "structured SGLD (by layer)": (StructuredSGLD(2e-4, groups=groups, batch_size=BATCH,
                                                      n_data=n, buffer_size=100), 2),
    }  # fmt: skip


def run_sampler(problem: Digits, kernel: Any, warmup: int, draws: int, thin: int,
                chains: int = CHAINS, seed: int = 1) -> tuple[np.ndarray, float]:  # fmt: skip
    """``draws`` steps after ``warmup``, every ``thin``-th kept: the kept draws
    ``(chains·draws/thin, d)`` and the wall time of ``langevin.sample``."""
    import langevin

    t0 = time.perf_counter()
    trace = langevin.sample(problem.target, kernel, backend="numba", chains=chains,
                            warmup=warmup, draws=max(1, draws // thin), thin=thin, seed=seed,
                            initial_position=problem.target.initial_position,
                            progress=False)  # fmt: skip
    seconds = time.perf_counter() - t0
    if trace.diverged:
        raise RuntimeError(f"{type(kernel).__name__}: chains {sorted(trace.diverged)} diverged")
    return trace.flat(), seconds


def predict(problem: Digits, draws: np.ndarray) -> np.ndarray:
    from langevin.targets.neural import mlp_predict_proba

    return mlp_predict_proba(draws, problem.X_test, problem.hidden, N_CLASSES)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    suffix = "_tiny" if args.tiny else ""
    warmup, draws, thin = (200, 400, 100) if args.tiny else (WARMUP, DRAWS, THIN)
    info = machine_at_start("Bayesian neural network on the digits",
                            {"hidden": str(HIDDEN), "batch": str(BATCH)})  # fmt: skip
    problem = digits_problem()
    rows = []
    theta, seconds = sgd(problem, warmup + draws)
    rows.append({"method": "SGD (optax, momentum 0.9)", "seconds": seconds,
                 "gradients_per_step": 1, **scores(problem, predict(problem, theta))})  # fmt: skip
    log(f"  SGD: {rows[-1]}")
    for name, (kernel, grads) in samplers(problem).items():
        kept, seconds = run_sampler(problem, kernel, warmup, draws, thin)
        rows.append({"method": name, "seconds": seconds, "gradients_per_step": grads,
                     **scores(problem, predict(problem, kept))})  # fmt: skip
        log(f"  {name}: {rows[-1]}")
    load_at_end(info)

    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / f"sgmcmc_bnn_digits{suffix}.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    lines = [f"# Bayesian neural network on the digits{' (tiny)' if suffix else ''}", ""]
    lines += load_warning(info)
    lines += [
        f"One hidden layer of {HIDDEN} tanh units, softmax output, prior N(0, I), d = "
        f"{problem.target.dim}; 1300 training and 497 test images; batch {BATCH}; every "
        f"method makes {warmup + draws} steps from the same start (samplers: {CHAINS} "
        f"chains, {warmup} warm-up steps dropped, every {thin}-th of {draws} draws kept). "
        "Module docstring of `benchmarks/sgmcmc_bnn_digits.py`. Time: wall seconds "
        "(samplers: all chains, compilation included; SGD: one jitted scan).",
        "",
        "| method | test accuracy | mean confidence | test NLL | ECE | time (s) | likelihood "
        "gradients / step |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['method']} | {r['accuracy']:.4f} | {r['confidence']:.4f} | {r['nll']:.4f} | "
        f"{r['ece']:.4f} | "
        f"{r['seconds']:.1f} | {r['gradients_per_step']} |"
        for r in rows
    ]
    lines += ["", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    (args.out / f"sgmcmc_bnn_digits{suffix}.md").write_text("\n".join(lines) + "\n")
    log(f"wrote {args.out / f'sgmcmc_bnn_digits{suffix}.md'}")


if __name__ == "__main__":
    main()
