"""Make the full-batch NUTS reference posterior of a logistic regression on the RAND HIE data.

The problem (:func:`benchmarks.sgmcmc_rand_hie.rand_hie_problem`): the design of
:func:`langevin.targets.rand_hie_design` (20 190 rows, an intercept and 9 standardised
covariates; label = any doctor visit in the year), split at random (seed ``SPLIT_SEED``)
into 16 152 training rows and 4038 test rows; prior ``β ~ N(0, I)``; the posterior given the
*training* rows.

Writes ``langevin/targets/data/rand_hie/reference.npz`` with, in the position
``(intercept, lncoins, idp, lpi, fmde, physlm, disea, hlthg, hlthf, hlthp)``:

* ``test_index``: the sorted row indices of the test split (the rest is the training set);
* ``prior_scale``: 1.0;
* ``mean``, ``sd``: over all 4 × 5000 draws; ``mean_mcse``: ``sd / sqrt(ESS_mean)``;
* ``draws``: shape (4, 1000, 10), every 5th draw of each chain;
* ``rhat``, ``ess_bulk``, ``ess_tail``, ``ess_mean``, ``n_divergent``, ``step_size``,
  ``mean_steps``, ``seed``, ``runtime_s``.

Method (as ``make_breast_cancer_reference.py``): 4 chains of BlackJAX NUTS, each started
from an independent N(0, I) draw, tuned by ``blackjax.window_adaptation`` (step size by dual
averaging to acceptance 0.8, dense mass matrix) for 1000 steps, then 5000 draws; float64.
The log density is :func:`langevin.targets.logistic_regression`'s JAX form on the training
rows. The script refuses to write the file when max R-hat >= 1.01 or a divergence occurred.

Run from the repository root: ``python -m benchmarks.make_rand_hie_reference`` (about 2 min
on 2 CPU cores).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import jax

# x64 is set here, in the script, before any array is made; the package never sets it.
jax.config.update("jax_enable_x64", True)

import blackjax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

with warnings.catch_warnings():
    # arviz announces an upcoming refactor with a FutureWarning on import
    warnings.simplefilter("ignore", FutureWarning)
    import arviz

import langevin  # noqa: E402
from langevin.targets import rand_hie_design  # noqa: E402

SEED = 20261206
SPLIT_SEED = 11
TEST_FRACTION = 0.2
PRIOR_SCALE = 1.0
N_CHAINS = 4
N_WARMUP = 1000
N_DRAWS = 5000
THIN = 5
OUT = Path(__file__).resolve().parents[1] / "langevin/targets/data/rand_hie/reference.npz"


def split_index(n: int) -> np.ndarray:
    """The sorted test-row indices: a random ``TEST_FRACTION`` of the rows (``SPLIT_SEED``)."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    return np.sort(perm[: round(TEST_FRACTION * n)]).astype(np.int64)


def run_chain(logdensity, key, position):
    """Window adaptation then NUTS draws for one chain; returns draws, steps, divergences."""
    warmup_key, sample_key = jax.random.split(key)
    warmup = blackjax.window_adaptation(
        blackjax.nuts, logdensity, is_mass_matrix_diagonal=False, target_acceptance_rate=0.8
    )
    (state, parameters), _ = warmup.run(warmup_key, position, num_steps=N_WARMUP)
    step = blackjax.nuts(logdensity, **parameters).step

    def one(state, key):
        state, info = step(key, state)
        return state, (state.position, info.num_integration_steps, info.is_divergent)

    keys = jax.random.split(sample_key, N_DRAWS)
    _, (positions, steps, divergent) = jax.lax.scan(one, state, keys)
    return positions, steps, divergent, parameters["step_size"]


def main() -> None:
    X, y = rand_hie_design()
    test_index = split_index(len(y))
    train = np.ones(len(y), dtype=bool)
    train[test_index] = False
    target = langevin.targets.logistic_regression(X[train], y[train], PRIOR_SCALE)
    logdensity = target.jax_logdensity
    dim = target.dim
    key = jax.random.key(SEED)
    init_key, chain_key = jax.random.split(key)
    starts = jax.random.normal(init_key, (N_CHAINS, dim), dtype=jnp.float64)
    chain = jax.jit(lambda k, x: run_chain(logdensity, k, x))

    t0 = time.perf_counter()
    draws, steps, divergent, step_sizes = [], [], [], []
    for c, k in enumerate(jax.random.split(chain_key, N_CHAINS)):
        positions, n_steps, div, step_size = chain(k, starts[c])
        positions.block_until_ready()
        draws.append(np.asarray(positions))
        steps.append(np.asarray(n_steps))
        divergent.append(np.asarray(div))
        step_sizes.append(float(step_size))
        print(
            f"chain {c}: step size {step_sizes[-1]:.3f}, mean leapfrog steps "
            f"{steps[-1].mean():.1f}, divergent {int(divergent[-1].sum())}, "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    runtime = time.perf_counter() - t0
    draws = np.stack(draws)  # (chain, draw, dim)

    dataset = arviz.convert_to_dataset({"x": draws})
    rhat = arviz.rhat(dataset)["x"].values
    ess_bulk = arviz.ess(dataset, method="bulk")["x"].values
    ess_tail = arviz.ess(dataset, method="tail")["x"].values
    ess_mean = arviz.ess(dataset, method="mean")["x"].values
    flat = draws.reshape(-1, dim)
    mean = flat.mean(axis=0)
    sd = flat.std(axis=0, ddof=1)
    mean_mcse = sd / np.sqrt(ess_mean)
    n_divergent = int(np.sum(divergent))

    print(f"runtime {runtime:.1f} s (sampling incl. compilation)")
    print(
        f"max R-hat {rhat.max():.4f}; min ESS bulk {ess_bulk.min():.0f}, "
        f"tail {ess_tail.min():.0f}, mean {ess_mean.min():.0f}; divergences {n_divergent}"
    )
    print(f"min ESS bulk per draw {ess_bulk.min() / (N_CHAINS * N_DRAWS):.2f}")
    print("mean", np.round(mean, 4))
    print("sd  ", np.round(sd, 4))
    if rhat.max() >= 1.01 or n_divergent > 0:
        raise SystemExit("R-hat >= 1.01 or divergences: reference NOT written")

    np.savez(
        OUT,
        test_index=test_index,
        prior_scale=np.float64(PRIOR_SCALE),
        mean=mean,
        sd=sd,
        mean_mcse=mean_mcse,
        draws=np.ascontiguousarray(draws[:, THIN - 1 :: THIN, :]),
        rhat=rhat,
        ess_bulk=ess_bulk,
        ess_tail=ess_tail,
        ess_mean=ess_mean,
        n_divergent=np.int64(n_divergent),
        step_size=np.asarray(step_sizes),
        mean_steps=np.asarray([s.mean() for s in steps]),
        seed=np.int64(SEED),
        runtime_s=np.float64(runtime),
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
