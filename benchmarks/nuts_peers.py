"""NUTS against the samplers users would pick: nutpie, NumPyro and BlackJAX, on posteriordb.

Run from the repository root, in an environment with PyMC, nutpie and NumPyro (Python >= 3.12;
PyMC 5.20+ / 6, nutpie 0.16, NumPyro 0.22, BlackJAX 1.7)::

    python -m benchmarks.nuts_peers            # 4 chains x (1000 + 1000), median of 3 runs
    python -m benchmarks.nuts_peers --quick    # 4 chains x (300 + 300), 1 run
    python -m benchmarks.nuts_peers --tiny     # gp_regr only, 2 chains x (50 + 50) (smoke test)

Options: ``--models arK gp_regr ...``, ``--samplers ...``, ``--runs R``, ``--no-latency``,
``--out DIR``, ``--tag T``; ``--latency-only`` (the latency subprocesses alone, into the
existing report); ``--amend LATENCY_JSON [--recost]`` (re-render an existing report's goal
tables from its CSV, add the CPU-second tables, put in a latency JSON, measure the gradient
costs again).

**Models.** Six posteriordb posteriors (``langevin/targets/data/posteriordb/<name>``), each
written twice here, as a PyMC model and as a NumPyro model, with the same parameter names,
priors and likelihood (model.md of each posterior): ``arK`` (AR(5), 7-D), ``earnings``
(``logearn_interaction_z``, flat priors, 5-D), ``gp_regr`` (marginal GP, 3-D), ``kidiq_momiq``
(uncentred regression, 3-D), ``kidiq_interaction`` (uncentred interaction, 5-D, correlations
0.99) and ``eight_schools`` (centred: a funnel, 10-D). Before any timing the two versions are
checked to be the same density: the PyMC log-density (``Target.from_pymc``) minus NumPyro's
(``Target.from_numpyro``, = −``potential_fn``) at five random unconstrained points must be one
constant (to 1e-8); the script stops otherwise.

**Samplers** (NUTS everywhere; 4 chains; the same warm-up length and number of draws; diagonal
mass matrix; target acceptance 0.8; float64):

* ``langevin numba``: ``langevin.sample(Target.from_pymc(model), langevin.NUTS(0.1),
  backend="numba")``: PyTensor's Numba-compiled log-density and gradient, chains on the
  machine's threads, Stan's windowed warm-up;
* ``langevin jax``: the same PyMC target on ``backend="jax"`` (PyTensor's JAX linker,
  ``jax.grad``), chains ``vmap``-ed;
* ``langevin jax/numpyro``: ``Target.from_numpyro(model)`` on ``backend="jax"`` (NumPyro's own
  potential: the same log-density NumPyro's NUTS runs);
* ``nutpie``: ``nutpie.compile_pymc_model(model)`` (PyTensor's Numba backend) then
  ``nutpie.sample(..., tune=warmup, draws=draws, chains=4)`` with its defaults (its own
  gradient-based diagonal mass adaptation, ``cores`` = all CPUs);
* ``NumPyro``: ``MCMC(NUTS(model), chain_method="vectorized")`` (one CPU device: the chains
  are ``vmap``-ed, as langevin's and BlackJAX's JAX chains), its default warm-up (Stan's
  windows);
* ``BlackJAX``: ``blackjax.window_adaptation(blackjax.nuts)`` on the NumPyro model's
  log-density, ``vmap`` over chains, jitted ahead of time (:func:`benchmarks.ess_table.make_nuts`).

**Timing.** Every sampler first runs once to compile (its "first call" time, compilation
included, reported separately), then ``runs`` times with different seeds; each run gives the
warm-up seconds and the sampling seconds separately (langevin and nutpie: a run of
``warm-up + 1`` draws timed apart from the run of ``warm-up + draws`` with the same seed, the
difference being the sampling; NumPyro: ``MCMC.warmup`` then ``MCMC.run``; BlackJAX: the two
compiled functions), wall time and this process's CPU time (all threads; nutpie's sampler
threads are in the same process). **ESS** is ArviZ's bulk and tail ESS of every scalar of
the constrained posterior (the model's parameters on their own support, the same names for
every sampler), the minimum over them; ESS per second is that minimum over the sampling
seconds (and over warm-up + sampling); the table gives the median over the runs. Gradients
are each sampler's own count of integrator steps (``n_grad``, nutpie's ``n_steps``,
NumPyro's ``num_steps``, BlackJAX's ``num_integration_steps``), so ESS / s = (ESS / gradient)
× (gradients / s): the first factor is the sampler's tuning and trajectory, the second the
cost of a gradient plus the sampler's overhead.

**Accuracy.** The largest |z| of the posterior means against posteriordb's reference
(``reference_summary.json``; z = (mean − reference) / √(MCSE² + reference MCSE²)), first run.

**Latency** (not with ``--tiny``, or with ``--no-latency``): in fresh subprocesses on
``kidiq_interaction``, with a new empty ``NUMBA_CACHE_DIR`` and PyTensor ``compiledir``
("fresh") and then again in a later process with the same directories ("later"): the first
``langevin.sample(Target.from_pymc(model), NUTS, backend="numba")`` call (4 chains, 100 + 100)
and ``nutpie.compile_pymc_model(model)`` plus its first ``nutpie.sample`` (the same sizes).

Writes ``benchmarks/results/nuts_peers.md`` and ``.csv`` (``--quick``/``--tiny``:
``nuts_peers_quick.*`` / ``nuts_peers_tiny.*``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import (
    clock,
    ess,
    load_at_end,
    load_warning,
    log,
    machine_at_start,
    parse_sized,
    size_parser,
)

DATA = Path(__file__).resolve().parents[1] / "langevin" / "targets" / "data" / "posteriordb"
#: short name -> posteriordb posterior
POSTERIORS = {  # the cheapest first
    "gp_regr": "gp_pois_regr-gp_regr",
    "earnings": "earnings-logearn_interaction_z",
    "arK": "arK-arK",
    "kidiq_momiq": "kidiq-kidscore_momiq",
    "eight_schools": "eight_schools-eight_schools_centered",
    "kidiq_interaction": "kidiq-kidscore_interaction",
}
SAMPLERS = ("langevin numba", "langevin jax", "langevin jax/numpyro", "nutpie", "NumPyro",
            "BlackJAX")  # fmt: skip
#: goals of the issue: (sampler, peer, ratio of ESS_min per second to reach)
GOALS = (("langevin numba", "nutpie", 1.0), ("langevin numba", "BlackJAX", 1.5),
         ("langevin jax", "NumPyro", 1.0), ("langevin jax/numpyro", "NumPyro", 1.0))  # fmt: skip
LATENCY_MODEL = "kidiq_interaction"
LATENCY_SIZE = (100, 100)  # warm-up, draws of the latency probe's first call
TOL_SAME_DENSITY = 1e-8
#: floor of a sampling time found as a difference of two timings (a run too short to time)
MIN_S = 1e-3
#: sampling seconds below this are left out of the ratios (not measurable on a loaded machine)
MIN_MEASURED = 0.05


def load_data(short: str) -> dict[str, Any]:
    with open(DATA / POSTERIORS[short] / "data.json") as f:
        return {k: np.asarray(v, dtype=np.float64) for k, v in json.load(f).items()}


def load_reference(short: str) -> dict[str, dict[str, float]]:
    with open(DATA / POSTERIORS[short] / "reference_summary.json") as f:
        return json.load(f)["params"]


# -- the models, twice ------------------------------------------------------------------------
def _design(short: str, d: dict) -> tuple[np.ndarray, np.ndarray]:
    """Design matrix and response of the regression posteriors (model.md of each)."""
    if short == "arK":
        k, y = int(d["K"]), d["y"]
        x = np.column_stack([y[k - j - 1 : len(y) - j - 1] for j in range(k)])
        return x, y[k:]
    if short == "earnings":
        zh = (d["height"] - d["height"].mean()) / d["height"].std(ddof=1)
        m = d["male"]
        return np.column_stack([np.ones_like(zh), zh, m, zh * m]), np.log(d["earn"])
    if short == "kidiq_momiq":
        return np.column_stack([np.ones_like(d["mom_iq"]), d["mom_iq"]]), d["kid_score"]
    if short == "kidiq_interaction":
        hs, iq = d["mom_hs"], d["mom_iq"]
        return np.column_stack([np.ones_like(iq), hs, iq, hs * iq]), d["kid_score"]
    raise KeyError(short)


def pymc_model(short: str):
    """The posterior as a PyMC model (float64 constants: ``np.float64``)."""
    import pymc as pm

    d = load_data(short)
    f = np.float64
    with pm.Model(name="") as model:
        if short == "arK":
            x, y = _design(short, d)
            alpha = pm.Normal("alpha", f(0), f(10))
            beta = pm.Normal("beta", f(0), f(10), shape=x.shape[1])
            sigma = pm.HalfCauchy("sigma", f(2.5))
            pm.Normal("y", alpha + x @ beta, sigma, observed=y)
        elif short == "earnings":
            x, y = _design(short, d)
            beta = pm.Flat("beta", shape=4)
            sigma = pm.HalfFlat("sigma")
            pm.Normal("y", x @ beta, sigma, observed=y)
        elif short in ("kidiq_momiq", "kidiq_interaction"):
            x, y = _design(short, d)
            beta = pm.Flat("beta", shape=x.shape[1])
            sigma = pm.HalfCauchy("sigma", f(2.5))
            pm.Normal("y", x @ beta, sigma, observed=y)
        elif short == "gp_regr":
            xs, y = d["x"], d["y"]
            rho = pm.Gamma("rho", alpha=f(25), beta=f(4))
            alpha = pm.HalfNormal("alpha", f(2))
            sigma = pm.HalfNormal("sigma", f(1))
            sq = (xs[:, None] - xs[None, :]) ** 2
            cov = alpha**2 * pm.math.exp(-sq / (2 * rho**2)) + sigma * np.eye(len(xs))
            pm.MvNormal("y", mu=np.zeros(len(xs)), cov=cov, observed=y)
        elif short == "eight_schools":
            mu = pm.Normal("mu", f(0), f(5))
            tau = pm.HalfCauchy("tau", f(5))
            theta = pm.Normal("theta", mu, tau, shape=int(d["J"]))
            pm.Normal("y", theta, d["sigma"], observed=d["y"])
        else:
            raise KeyError(short)
    return model


def numpyro_model(short: str) -> tuple[Callable, tuple]:
    """The posterior as a NumPyro model and its arguments (the data)."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    d = load_data(short)
    if short in ("arK", "earnings", "kidiq_momiq", "kidiq_interaction"):
        x, y = _design(short, d)

        def regression(x, y):
            p = x.shape[1]
            if short == "arK":
                alpha = numpyro.sample("alpha", dist.Normal(0.0, 10.0))
                beta = numpyro.sample("beta", dist.Normal(0.0, 10.0).expand([p]).to_event(1))
                sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
                mean = alpha + x @ beta
            else:
                beta = numpyro.sample(
                    "beta", dist.ImproperUniform(constraints.real, (), event_shape=(p,))
                )
                if short == "earnings":
                    sigma = numpyro.sample(
                        "sigma", dist.ImproperUniform(constraints.positive, (), event_shape=())
                    )
                else:
                    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
                mean = x @ beta
            numpyro.sample("y", dist.Normal(mean, sigma), obs=y)

        regression.__name__ = short
        return regression, (x, y)
    if short == "gp_regr":

        def gp_regr(xs, y):
            rho = numpyro.sample("rho", dist.Gamma(25.0, 4.0))
            alpha = numpyro.sample("alpha", dist.HalfNormal(2.0))
            sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
            sq = (xs[:, None] - xs[None, :]) ** 2
            cov = alpha**2 * jnp.exp(-sq / (2 * rho**2)) + sigma * jnp.eye(xs.shape[0])
            numpyro.sample("y", dist.MultivariateNormal(jnp.zeros(xs.shape[0]), cov), obs=y)

        return gp_regr, (d["x"], d["y"])
    if short == "eight_schools":

        def eight_schools(sigma, y):
            mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
            tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
            theta = numpyro.sample("theta", dist.Normal(mu, tau).expand([y.shape[0]]).to_event(1))
            numpyro.sample("y", dist.Normal(theta, sigma), obs=y)

        return eight_schools, (d["sigma"], d["y"])
    raise KeyError(short)


@dataclass
class Problem:
    """One posterior: its two targets, the map between their flat positions, its reference."""

    short: str
    model: Any  # pymc.Model
    pymc_target: Any
    numpyro_target: Any
    to_numpyro: np.ndarray  # x_numpyro = x_pymc[to_numpyro]
    reference: dict
    params: list[str]  # the constrained parameters, PyMC's (and NumPyro's) names
    density_offset: float = float("nan")
    density_spread: float = float("nan")


def _base_name(block: str) -> str:
    """PyMC's value-variable name without its transform suffix (``sigma_log__`` -> ``sigma``)."""
    return re.sub(r"_[a-z]+__$", "", block)


def make_problem(short: str) -> Problem:
    """Both targets of ``short``, and the check that they are the same density (module
    docstring): raises if the PyMC and NumPyro log-densities differ by more than a constant."""
    import jax
    import jax.numpy as jnp

    import langevin

    model = pymc_model(short)
    pm_target = langevin.Target.from_pymc(model, name=short)
    fn, args = numpyro_model(short)
    np_target = langevin.Target.from_numpyro(fn, *args, name=short)
    pm_blocks = {_base_name(k): v[0] for k, v in pm_target.names_or_default().items()}
    np_blocks = np_target.names_or_default()
    if set(pm_blocks) != set(np_blocks):
        raise ValueError(f"{short}: PyMC parameters {sorted(pm_blocks)} != NumPyro's "
                         f"{sorted(np_blocks)}")  # fmt: skip
    perm = np.empty(np_target.dim, dtype=np.int64)
    for name, (sl, _) in np_blocks.items():
        perm[sl] = np.arange(pm_target.dim)[pm_blocks[name]]
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        pm_fn = jax.jit(pm_target.jax_logdensity)
        np_fn = jax.jit(np_target.jax_logdensity)
        diffs = []
        for _ in range(5):
            x = pm_target.initial_position + rng.normal(0.0, 0.5, pm_target.dim)
            a = float(pm_fn(jnp.asarray(x)))
            b = float(np_fn(jnp.asarray(x[perm])))
            diffs.append(a - b)
    spread = max(diffs) - min(diffs)
    if not spread <= TOL_SAME_DENSITY * max(1.0, abs(statistics.mean(diffs))):
        raise ValueError(f"{short}: the PyMC and NumPyro log-densities differ by more than a "
                         f"constant: differences {diffs}")  # fmt: skip
    reference = load_reference(short)
    params = sorted(pm_blocks)
    return Problem(short, model, pm_target, np_target, perm, reference, params,
                   float(statistics.mean(diffs)), float(spread))  # fmt: skip


# -- one run of one sampler -------------------------------------------------------------------
@dataclass
class Run:
    posterior: dict[str, np.ndarray]  # name -> (chains, draws, *shape), constrained
    seconds_warmup: float
    seconds_sampling: float
    cpu_warmup: float
    cpu_sampling: float
    grads_sampling: float
    divergences: int
    step_sizes: np.ndarray
    metrics: dict = field(default_factory=dict)


def _posterior(problem: Problem, constrained: dict[str, Any]) -> dict[str, np.ndarray]:
    return {p: np.asarray(constrained[p], dtype=np.float64) for p in problem.params}


def langevin_run(problem: Problem, backend: str, form: str, chains: int, warmup: int,
                 draws: int, seed: int) -> Run:  # fmt: skip
    """``langevin.sample`` with NUTS: warm-up alone, then warm-up + draws (same seed)."""
    import langevin

    target = problem.pymc_target if form == "pymc" else problem.numpyro_target

    def sample(w: int, d: int):
        return langevin.sample(target, langevin.NUTS(0.1), chains=chains, warmup=w, draws=d,
                               backend=backend, seed=seed, progress=False)  # fmt: skip

    warm_s, warm_cpu, _ = clock(lambda: sample(warmup, 1))
    total_s, total_cpu, trace = clock(lambda: sample(warmup, draws))
    stats = trace.sample_stats
    return Run(
        _posterior(problem, target.constrain(np.asarray(trace.draws))),
        warm_s, max(total_s - warm_s, MIN_S), warm_cpu, max(total_cpu - warm_cpu, MIN_S),
        float(np.sum(stats["n_grad"])), int(np.sum(stats["diverging"])),
        np.asarray(trace.step_size, dtype=np.float64).reshape(-1),
    )  # fmt: skip


def _group(tree: Any, name: str) -> Any:
    return tree[name] if not hasattr(tree, name) else getattr(tree, name)


def nutpie_run(compiled: Any, problem: Problem, chains: int, warmup: int, draws: int,
               seed: int) -> Run:  # fmt: skip
    """``nutpie.sample``: warm-up + 1 draw, then warm-up + draws (same seed)."""
    import nutpie

    def sample(w: int, d: int):
        return nutpie.sample(compiled, draws=d, tune=w, chains=chains, seed=seed,
                             progress_bar=False, save_warmup=False)  # fmt: skip

    warm_s, warm_cpu, _ = clock(lambda: sample(warmup, 1))
    total_s, total_cpu, tree = clock(lambda: sample(warmup, draws))
    post = _group(tree, "posterior")
    stats = _group(tree, "sample_stats")
    return Run(
        _posterior(problem, {p: np.asarray(post[p]) for p in problem.params}),
        warm_s, max(total_s - warm_s, MIN_S), warm_cpu, max(total_cpu - warm_cpu, MIN_S),
        float(np.sum(np.asarray(stats["n_steps"]))), int(np.sum(np.asarray(stats["diverging"]))),
        np.asarray(stats["step_size"], dtype=np.float64)[:, -1],
    )  # fmt: skip


class NumPyroRunner:
    """NumPyro's NUTS kernel and warm-up (``numpyro.infer.hmc.hmc(potential_fn, algo="NUTS")``:
    the ``init_kernel`` and ``sample_kernel`` that ``MCMC(NUTS(model))`` runs, adaptation by
    Stan's windows inside ``sample_kernel`` during the first ``warmup`` steps), ``vmap``-ed
    over chains in a ``lax.scan`` and compiled once ahead of time: ``MCMC`` recompiles at
    every ``warmup``/``run`` call of a ``"vectorized"`` run, which would put compilation into
    every timed run."""

    def __init__(self, problem: Problem, chains: int, warmup: int, draws: int) -> None:
        import jax
        import jax.numpy as jnp
        from jax.flatten_util import ravel_pytree
        from numpyro.infer.hmc import hmc
        from numpyro.infer.util import initialize_model

        fn, args = numpyro_model(problem.short)
        info = initialize_model(jax.random.PRNGKey(0), fn, model_args=args, dynamic_args=False)
        _, self.unravel = ravel_pytree(info.param_info.z)
        init_kernel, sample_kernel = hmc(info.potential_fn, algo="NUTS")
        self.problem, self.chains = problem, chains

        def warm_one(key, x0):
            state = init_kernel(self.unravel(x0), num_warmup=warmup, target_accept_prob=0.8,
                                rng_key=key)  # fmt: skip
            return jax.lax.scan(lambda s, _: (sample_kernel(s), None), state, None,
                                length=warmup)[0]  # fmt: skip

        def sample_one(state):
            def step(s, _):
                s = sample_kernel(s)
                return s, (ravel_pytree(s.z)[0], s.num_steps, s.diverging)

            return jax.lax.scan(step, state, None, length=draws)[1]

        keys = jax.random.split(jax.random.PRNGKey(0), chains)
        x0 = jnp.asarray(blackjax_starts(problem, chains, 0))
        self.warm = jax.jit(jax.vmap(warm_one)).lower(keys, x0).compile()
        states = self.warm(keys, x0)
        self.sample = jax.jit(jax.vmap(sample_one)).lower(states).compile()

    def __call__(self, seed: int) -> Run:
        import jax
        import jax.numpy as jnp

        keys = jax.random.split(jax.random.PRNGKey(seed), self.chains)
        x0 = jnp.asarray(blackjax_starts(self.problem, self.chains, seed))
        warm_s, warm_cpu, states = clock(lambda: jax.block_until_ready(self.warm(keys, x0)))
        samp_s, samp_cpu, (positions, steps, divergent) = clock(
            lambda: jax.block_until_ready(self.sample(states)))  # fmt: skip
        constrained = self.problem.numpyro_target.constrain(np.asarray(positions))
        return Run(
            _posterior(self.problem, constrained), warm_s, samp_s, warm_cpu, samp_cpu,
            float(np.sum(np.asarray(steps))), int(np.sum(np.asarray(divergent))),
            np.asarray(states.adapt_state.step_size, dtype=np.float64),
        )  # fmt: skip


def blackjax_starts(problem: Problem, chains: int, seed: int) -> np.ndarray:
    """The PyMC initial point (as NumPyro's flat position) + U(−0.1, 0.1), as langevin's
    default start (``init_jitter=0.1``)."""
    rng = np.random.default_rng(seed)
    x = problem.pymc_target.initial_position[problem.to_numpyro]
    return x + rng.uniform(-0.1, 0.1, (chains, x.size))


class BlackJAXRunner:
    """BlackJAX's window adaptation and NUTS, compiled once (ahead of time) per problem."""

    def __init__(self, problem: Problem, chains: int, warmup: int, draws: int) -> None:
        import jax
        import jax.numpy as jnp

        from benchmarks.ess_table import make_nuts

        self.problem, self.chains = problem, chains
        warm, sample = make_nuts(problem.numpyro_target.jax_logdensity, warmup, draws)
        keys = jax.random.split(jax.random.key(0), chains)
        x0 = jnp.asarray(blackjax_starts(problem, chains, 0))
        self.warm = warm.lower(keys, x0).compile()
        states, params, _ = self.warm(keys, x0)
        self.sample = sample.lower(keys, states, params).compile()

    def __call__(self, seed: int) -> Run:
        import jax
        import jax.numpy as jnp

        keys_w = jax.random.split(jax.random.key(seed), self.chains)
        keys_s = jax.random.split(jax.random.key(seed + 10_000), self.chains)
        x0 = jnp.asarray(blackjax_starts(self.problem, self.chains, seed))
        warm_s, warm_cpu, (states, params, _) = clock(
            lambda: jax.block_until_ready(self.warm(keys_w, x0)))  # fmt: skip
        samp_s, samp_cpu, (positions, steps, _, divergent) = clock(
            lambda: jax.block_until_ready(self.sample(keys_s, states, params)))  # fmt: skip
        constrained = self.problem.numpyro_target.constrain(np.asarray(positions))
        return Run(
            _posterior(self.problem, constrained), warm_s, samp_s, warm_cpu, samp_cpu,
            float(np.sum(np.asarray(steps))), int(np.sum(np.asarray(divergent))),
            np.asarray(params["step_size"], dtype=np.float64),
        )  # fmt: skip


# -- ESS and accuracy -------------------------------------------------------------------------
def scalars(posterior: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every scalar of the posterior, named as posteriordb does (``beta[1]``, 1-based)."""
    out = {}
    for name, v in posterior.items():
        if v.ndim == 2:
            out[name] = v
        else:
            flat = v.reshape(*v.shape[:2], -1)
            for i in range(flat.shape[-1]):
                out[f"{name}[{i + 1}]"] = flat[..., i]
    return out


def measure(run: Run, reference: dict) -> dict[str, float]:
    """ESS (bulk, tail: minimum over the scalars), and the largest |z| of the means."""
    bulk, tail, zs = [], [], []
    for name, x in scalars(run.posterior).items():
        bulk.append(ess(x, "bulk"))
        tail.append(ess(x, "tail"))
        if name in reference:
            se = float(np.std(x, ddof=1)) / math.sqrt(max(ess(x, "mean"), 1.0))
            ref = reference[name]
            zs.append((float(np.mean(x)) - ref["mean"]) / math.hypot(se, ref["mcse_mean"]))
    n_draws = next(iter(run.posterior.values())).shape[:2]
    return {
        "ess_bulk_min": min(bulk),
        "ess_tail_min": min(tail),
        "ess_bulk_per_s": min(bulk) / run.seconds_sampling,
        "ess_tail_per_s": min(tail) / run.seconds_sampling,
        "ess_bulk_per_s_incl_warmup": min(bulk) / (run.seconds_sampling + run.seconds_warmup),
        "ess_bulk_per_cpu_s": min(bulk) / run.cpu_sampling,
        "ess_tail_per_cpu_s": min(tail) / run.cpu_sampling,
        "grads_per_draw": run.grads_sampling / (n_draws[0] * n_draws[1]),
        "us_per_grad": 1e6 * run.seconds_sampling / max(run.grads_sampling, 1.0),
        "ess_bulk_per_1k_grads": 1000.0 * min(bulk) / max(run.grads_sampling, 1.0),
        "max_abs_z_mean": max(abs(z) for z in zs) if zs else float("nan"),
        "n_ref_params": len(zs),
    }


# -- the benchmark ----------------------------------------------------------------------------
def runners(problem: Problem, samplers: list[str], chains: int, warmup: int,
            draws: int) -> dict[str, tuple[Callable[[], Any], Callable[[int], Run]]]:  # fmt: skip
    """``{sampler: (compile(), run(seed))}``: ``compile`` is the first call (timed as such)."""
    out: dict[str, tuple[Callable[[], Any], Callable[[int], Run]]] = {}
    import langevin

    for backend, form, name in (("numba", "pymc", "langevin numba"),
                                ("jax", "pymc", "langevin jax"),
                                ("jax", "numpyro", "langevin jax/numpyro")):  # fmt: skip
        if name not in samplers:
            continue
        target = problem.pymc_target if form == "pymc" else problem.numpyro_target

        def compile_langevin(target=target, backend=backend):
            return langevin.sample(target, langevin.NUTS(0.1), chains=chains,
                                   warmup=min(warmup, 20), draws=2, backend=backend, seed=0,
                                   progress=False)  # fmt: skip

        def run_langevin(seed, backend=backend, form=form):
            return langevin_run(problem, backend, form, chains, warmup, draws, seed)

        out[name] = (compile_langevin, run_langevin)
    if "nutpie" in samplers:
        holder: dict = {}

        def compile_nutpie():
            import nutpie

            holder["compiled"] = nutpie.compile_pymc_model(problem.model)
            return nutpie.sample(holder["compiled"], draws=2, tune=min(warmup, 20),
                                 chains=chains, seed=0, progress_bar=False)  # fmt: skip

        out["nutpie"] = (compile_nutpie, lambda seed: nutpie_run(
            holder["compiled"], problem, chains, warmup, draws, seed))  # fmt: skip
    if "NumPyro" in samplers:
        npr: dict = {}

        def compile_numpyro():
            npr["runner"] = NumPyroRunner(problem, chains, warmup, draws)

        out["NumPyro"] = (compile_numpyro, lambda seed: npr["runner"](seed))
    if "BlackJAX" in samplers:
        bj: dict = {}

        def compile_blackjax():
            bj["runner"] = BlackJAXRunner(problem, chains, warmup, draws)

        out["BlackJAX"] = (compile_blackjax, lambda seed: bj["runner"](seed))
    return out


def gradient_cost(problem: Problem, calls: int = 20_000) -> dict[str, float]:
    """CPU µs (this process) per value-and-gradient of the model outside any sampler: the
    PyMC target's Numba form (PyTensor's Numba code, the function langevin's loop and, through
    its C callback, nutpie call) in a compiled loop, and the JAX forms of the PyMC and NumPyro
    targets (one jitted call from Python each: Python's dispatch included)."""
    import jax
    import jax.numpy as jnp
    import numba

    vg = problem.pymc_target.numba_value_and_grad
    x0 = np.ascontiguousarray(problem.pymc_target.initial_position)

    @numba.njit
    def loop(x, n):
        s = 0.0
        for _ in range(n):
            v, g = vg(x)
            s += v + g[0]
        return s

    loop(x0, 1)
    t0 = time.process_time()
    loop(x0, calls)
    out = {"langevin numba (compiled loop)": 1e6 * (time.process_time() - t0) / calls}
    for label, target, perm in (("PyTensor JAX form", problem.pymc_target, None),
                                ("NumPyro JAX form", problem.numpyro_target,
                                 problem.to_numpyro)):  # fmt: skip
        f = jax.jit(jax.value_and_grad(target.jax_logdensity))
        x = jnp.asarray(x0 if perm is None else x0[perm])
        jax.block_until_ready(f(x))
        n = calls // 10
        t0 = time.process_time()
        for _ in range(n):
            r = f(x)
        jax.block_until_ready(r)
        out[f"{label} (jitted, one call from Python)"] = 1e6 * (time.process_time() - t0) / n
    return out


def bench_problem(problem: Problem, samplers: list[str], chains: int, warmup: int, draws: int,
                  runs: int) -> list[dict]:  # fmt: skip
    jobs = runners(problem, samplers, chains, warmup, draws)
    first: dict[str, tuple[float, float]] = {}
    for name, (compile_fn, _) in jobs.items():
        t, c, _ = clock(compile_fn)
        first[name] = (t, c)
        log(f"  {problem.short:<18} {name:<21} first call {t:7.2f} s (CPU {c:.2f} s)")
    results: dict[str, list[dict]] = {k: [] for k in jobs}
    runs_of: dict[str, list[Run]] = {k: [] for k in jobs}
    for r in range(runs):  # interleaved: drifts of a shared machine hit all alike
        for name, (_, run_fn) in jobs.items():
            run = run_fn(100 + r)
            m = measure(run, problem.reference)
            runs_of[name].append(run)
            results[name].append(m)
            log(
                f"  {problem.short:<18} {name:<21} run {r + 1}: warm-up "
                f"{run.seconds_warmup:6.2f} s, sampling {run.seconds_sampling:6.2f} s, "
                f"ESS bulk {m['ess_bulk_min']:6.0f} tail {m['ess_tail_min']:6.0f}, "
                f"/s {m['ess_bulk_per_s']:8.1f}, grads/draw {m['grads_per_draw']:5.1f}, "
                f"|z| {m['max_abs_z_mean']:.2f}"
            )
    rows = []
    for name, ms in results.items():
        rs = runs_of[name]

        def med(key, ms=ms):
            return statistics.median(m[key] for m in ms)

        rows.append({
            "model": problem.short, "sampler": name, "runs": len(ms),
            "ess_bulk_min": med("ess_bulk_min"), "ess_tail_min": med("ess_tail_min"),
            "ess_bulk_per_s": med("ess_bulk_per_s"), "ess_tail_per_s": med("ess_tail_per_s"),
            "ess_bulk_per_s_incl_warmup": med("ess_bulk_per_s_incl_warmup"),
            "ess_bulk_per_cpu_s": med("ess_bulk_per_cpu_s"),
            "ess_tail_per_cpu_s": med("ess_tail_per_cpu_s"),
            "seconds_warmup": statistics.median(x.seconds_warmup for x in rs),
            "seconds_sampling": statistics.median(x.seconds_sampling for x in rs),
            "cpu_warmup": statistics.median(x.cpu_warmup for x in rs),
            "cpu_sampling": statistics.median(x.cpu_sampling for x in rs),
            "first_call_s": first[name][0], "first_call_cpu_s": first[name][1],
            "grads_per_draw": med("grads_per_draw"), "us_per_grad": med("us_per_grad"),
            "ess_bulk_per_1k_grads": med("ess_bulk_per_1k_grads"),
            "divergences": rs[0].divergences,
            "step_size": float(np.median(rs[0].step_sizes)),
            "max_abs_z_mean": results[name][0]["max_abs_z_mean"],
            "ess_bulk_per_s_runs": " ".join(f"{m['ess_bulk_per_s']:.0f}" for m in ms),
        })  # fmt: skip
    return rows


# -- first-call latency, in subprocesses ------------------------------------------------------
def probe(which: str) -> dict[str, float]:
    """Run in a fresh process (``--probe langevin|nutpie``): times the steps of a first use."""
    out: dict[str, float] = {}
    c0, t0 = time.process_time(), time.perf_counter()
    import pymc  # noqa: F401

    import langevin

    out["import_s"] = time.perf_counter() - t0
    model = pymc_model(LATENCY_MODEL)
    warmup, draws = LATENCY_SIZE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if which == "langevin":
            c1, t1 = time.process_time(), time.perf_counter()
            target = langevin.Target.from_pymc(model)
            out["target_s"], out["target_cpu_s"] = (
                time.perf_counter() - t1,
                time.process_time() - c1,
            )
            for label in ("first_sample", "second_sample"):
                c1, t1 = time.process_time(), time.perf_counter()
                langevin.sample(target, langevin.NUTS(0.1), chains=4, warmup=warmup, draws=draws,
                                backend="numba", seed=0, progress=False)  # fmt: skip
                out[f"{label}_s"] = time.perf_counter() - t1
                out[f"{label}_cpu_s"] = time.process_time() - c1
        else:
            import nutpie

            c1, t1 = time.process_time(), time.perf_counter()
            compiled = nutpie.compile_pymc_model(model)
            out["target_s"], out["target_cpu_s"] = (
                time.perf_counter() - t1,
                time.process_time() - c1,
            )
            for label in ("first_sample", "second_sample"):
                c1, t1 = time.process_time(), time.perf_counter()
                nutpie.sample(compiled, draws=draws, tune=warmup, chains=4, seed=0,
                              progress_bar=False)  # fmt: skip
                out[f"{label}_s"] = time.perf_counter() - t1
                out[f"{label}_cpu_s"] = time.process_time() - c1
    out["total_s"] = time.perf_counter() - t0
    out["total_cpu_s"] = time.process_time() - c0
    return out


def latency() -> list[dict]:
    """Fresh and later processes of each probe, each with its own new cache directories."""
    rows = []
    for which in ("langevin", "nutpie"):
        with tempfile.TemporaryDirectory(prefix=f"nuts_peers_{which}_") as tmp:
            env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "numba"),
                       PYTENSOR_FLAGS=f"compiledir={os.path.join(tmp, 'pytensor')}")  # fmt: skip
            env.pop("JAX_ENABLE_X64", None)
            for when in ("fresh", "later"):
                t0 = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "benchmarks.nuts_peers", "--probe", which],
                    capture_output=True, text=True, env=env, timeout=1800,
                    cwd=Path(__file__).resolve().parents[1],
                )  # fmt: skip
                wall = time.perf_counter() - t0
                if done.returncode != 0:
                    raise RuntimeError(f"latency probe {which} failed:\n{done.stderr[-3000:]}")
                row = json.loads(done.stdout.strip().splitlines()[-1])
                row.update(which=which, when=when, process_wall_s=wall)
                rows.append(row)
                log(f"  latency {which:<8} {when:<5} " + ", ".join(
                    f"{k} {v:.2f}" for k, v in row.items() if isinstance(v, float)))  # fmt: skip
    return rows


# -- report -----------------------------------------------------------------------------------
def _rate(row: dict, kind: str, cpu: bool) -> float:
    """ESS_min (``kind``: bulk or tail) per second of sampling, wall or CPU (this process,
    all threads)."""
    if not cpu:
        return float(row[f"ess_{kind}_per_s"])
    if f"ess_{kind}_per_cpu_s" in row:
        return float(row[f"ess_{kind}_per_cpu_s"])
    return float(row[f"ess_{kind}_min"]) / float(row["cpu_sampling"])  # (older CSV files)


def _measured(row: dict, cpu: bool) -> bool:
    """Whether the sampling time is long enough to be timed (at least ``MIN_MEASURED`` s): a
    short sampling phase timed as the difference of two loaded timings can come out ~0."""
    return float(row["cpu_sampling" if cpu else "seconds_sampling"]) >= MIN_MEASURED


def goal_lines(rows: list[dict], cpu: bool = False
               ) -> tuple[list[str], list[tuple[str, str, str, str, float]]]:  # fmt: skip
    """The ratio table of ESS_min per second of sampling (bulk and tail; wall seconds, or
    CPU seconds with ``cpu``) against the goals, per model and as the geometric mean over
    models; returns the lines and the misses."""
    by = {(r["model"], r["sampler"]): r for r in rows}
    models = list(dict.fromkeys(r["model"] for r in rows))
    lines = ["| ratio (goal) | " + " | ".join(models) + " | geometric mean |",
             "|---|" + "---|" * (len(models) + 1)]  # fmt: skip
    misses = []
    for ours, peer, goal in GOALS:
        for kind in ("bulk", "tail"):
            vals = []
            for m in models:
                if (m, ours) in by and (m, peer) in by and _measured(by[(m, ours)], cpu) \
                        and _measured(by[(m, peer)], cpu):  # fmt: skip
                    vals.append(_rate(by[(m, ours)], kind, cpu) / _rate(by[(m, peer)], kind, cpu))
                else:
                    vals.append(float("nan"))
            ok = [v for v in vals if v == v]
            cells = [("—" if v != v else f"{v:.2f}" + ("" if v >= goal else " ✗")) for v in vals]
            if ok:
                gm = math.exp(statistics.fmean(math.log(v) for v in ok))
                mean = f"**{gm:.2f}**{'' if gm >= goal else ' ✗'}"
            else:
                mean = "—"
            lines.append(f"| {ours} / {peer} ({kind}, ≥ {goal:g}) | " + " | ".join(cells)
                         + f" | {mean} |")  # fmt: skip
            for m, v in zip(models, vals, strict=True):
                if v == v and v < goal:
                    misses.append((ours, peer, m, kind, v))
    return lines, misses


MISSES_HEADING = "## Where the goals are missed"


def wall_miss_section(rows: list[dict]) -> list[str]:
    """Each missed goal (wall seconds) split into ESS per gradient and gradients per second."""
    misses = goal_lines(rows)[1]
    lines = [MISSES_HEADING, ""]
    if not misses:
        return [*lines, "Every goal is met on every model (wall seconds).", ""]
    lines += [
        "ESS/s = (ESS per gradient) × (gradients per second); each miss (wall seconds) split "
        "into the two ratios (ours / peer): the first is tuning and trajectory length (step "
        "size, tree depth, mass matrix), the second the cost of a gradient plus the sampler's "
        "overhead per integrator step (and, on this 2-core machine, threading and the other "
        "jobs' load). `ESS` says which ESS the ratio is of; the split is of bulk ESS.",
        "",
        "| model | ours / peer | ESS | ESS/s ratio | ESS-per-gradient ratio | gradients-per-s "
        "ratio | grads/draw (ours, peer) | µs/grad (ours, peer) | step (ours, peer) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by = {(r["model"], r["sampler"]): r for r in rows}
    for ours, peer, m, kind, v in misses:
        a, b = by[(m, ours)], by[(m, peer)]

        def f(r: dict, k: str) -> float:
            return float(r[k])

        lines.append(
            f"| {m} | {ours} / {peer} | {kind} | {v:.2f} | "
            f"{f(a, 'ess_bulk_per_1k_grads') / f(b, 'ess_bulk_per_1k_grads'):.2f} | "
            f"{f(b, 'us_per_grad') / f(a, 'us_per_grad'):.2f} | {f(a, 'grads_per_draw'):.1f}, "
            f"{f(b, 'grads_per_draw'):.1f} | {f(a, 'us_per_grad'):.2f}, "
            f"{f(b, 'us_per_grad'):.2f} | {f(a, 'step_size'):.3g}, {f(b, 'step_size'):.3g} |"
        )
    return [*lines, ""]


CPU_GOALS_HEADING = "### The same ratios in CPU seconds"


def cpu_goal_section(rows: list[dict]) -> list[str]:
    """The goal table on CPU seconds of sampling (this process, all threads): the work done,
    less distorted than wall time by the other jobs on a shared machine; a threaded sampler
    (langevin's Numba chains, nutpie) is charged for both cores."""
    return [
        CPU_GOALS_HEADING,
        "",
        "ESS_min per CPU second of sampling (this process, all threads; medians). On a "
        "machine shared with other jobs the wall-clock ratios above mix in the others' load "
        "(and a sampling time found as the difference of two loaded timings can come out "
        "near zero); the CPU ratios measure the work each sampler does for its ESS. Threaded "
        "samplers (langevin Numba, nutpie) are charged for every thread.",
        "",
        *goal_lines(rows, cpu=True)[0],
        "",
    ]


CPU_ANALYSIS_HEADING = "### Where the CPU time goes"


def cpu_analysis_section(rows: list[dict], chains: int, draws: int) -> list[str]:
    """Each goal's pair on each model, in CPU seconds: ESS per CPU second split into ESS per
    gradient (tuning, trajectories) and CPU µs per gradient (gradient + sampler overhead per
    integrator step)."""
    by = {(r["model"], r["sampler"]): r for r in rows}
    models = list(dict.fromkeys(r["model"] for r in rows))

    def cpu_us(r: dict) -> float:
        grads = float(r["grads_per_draw"]) * chains * draws
        return 1e6 * float(r["cpu_sampling"]) / grads

    lines = [
        CPU_ANALYSIS_HEADING,
        "",
        "ESS/CPU-s ratio = ESS-per-gradient ratio × (peer's CPU µs per gradient / ours): the "
        "first factor is warm-up and trajectories (step size, tree depth, mass matrix), the "
        "second the CPU cost of one integrator step (the gradient plus the sampler's own "
        "work per step). What these numbers say, model by model: `docs/interop.md`, "
        "section *Against nutpie, NumPyro and BlackJAX*.",
        "",
        "| model | ours / peer | bulk ESS/CPU-s ratio | ESS-per-gradient ratio | CPU µs/grad "
        "(ours, peer) | grads/draw (ours, peer) | step (ours, peer) |",
        "|---|---|---|---|---|---|---|",
    ]
    for ours, peer, _ in GOALS:
        for m in models:
            if (m, ours) not in by or (m, peer) not in by:
                continue
            a, b = by[(m, ours)], by[(m, peer)]
            lines.append(
                f"| {m} | {ours} / {peer} | "
                f"{_rate(a, 'bulk', True) / _rate(b, 'bulk', True):.2f} | "
                f"{float(a['ess_bulk_per_1k_grads']) / float(b['ess_bulk_per_1k_grads']):.2f} | "
                f"{cpu_us(a):.2f}, {cpu_us(b):.2f} | {float(a['grads_per_draw']):.1f}, "
                f"{float(b['grads_per_draw']):.1f} | {float(a['step_size']):.3g}, "
                f"{float(b['step_size']):.3g} |"
            )
    lines.append("")
    return lines


def amend(out: Path, stem: str, latency_json: Path | None, recost: bool = False) -> None:
    """Add to an existing report the CPU-second goal table (from its CSV) and the latency
    section (from ``latency_json``), where they are missing."""
    path = out / f"{stem}.md"
    with open(out / f"{stem}.csv") as f:
        rows = list(csv.DictReader(f))
    text = path.read_text()
    # the goal tables and the misses again, from the CSV (with this version's rules)
    a = text.find("## Against the goals")
    b = text.find("\n|", a)
    e = text.find("\n\n", b + 1)
    text = text[: b + 1] + "\n".join(goal_lines(rows)[0]) + text[e:]
    text = text.replace(
        "Ratio of ESS_min per second of sampling (medians); ✗: below the goal.\n",
        f"Ratio of ESS_min per second of sampling (medians); ✗: below the goal; —: a sampling "
        f"phase under {MIN_MEASURED:g} s, too short to time here.\n",
    )
    if CPU_GOALS_HEADING in text:
        a = text.find(CPU_GOALS_HEADING)
        e = text.find("\n## ", a)
        text = text[:a] + "\n".join(cpu_goal_section(rows)) + "\n" + text[e + 1 :]
    a = text.find(MISSES_HEADING)
    e = min(i for i in (text.find(CPU_ANALYSIS_HEADING), text.find("## Machine")) if i >= 0)
    text = text[:a] + "\n".join(wall_miss_section(rows)) + "\n" + text[e:]
    path.write_text(text)
    if CPU_GOALS_HEADING not in text:
        at = text.find("## Cost of one value-and-gradient")
        if at < 0:
            at = text.find("## Where the goals are missed")
        text = text[:at] + "\n".join(cpu_goal_section(rows)) + "\n" + text[at:]
        path.write_text(text)
    if CPU_ANALYSIS_HEADING not in text:
        sizes = re.search(r"(\d+) chains × \((\d+) warm-up \+ (\d+) draws\)", text)
        chains, draws = int(sizes.group(1)), int(sizes.group(3))
        at = text.find("## Machine")
        text = text[:at] + "\n".join(cpu_analysis_section(rows, chains, draws)) + "\n" + text[at:]
        path.write_text(text)
    if recost:  # the gradient costs again, in CPU time
        costs = {}
        for short in dict.fromkeys(r["model"] for r in rows):
            costs[short] = gradient_cost(make_problem(short))
            log(f"  {short} CPU µs per value-and-gradient: {costs[short]}")
        text = path.read_text()
        a = text.find(COST_HEADING)
        e = text.find("\n## ", a)
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        note = f"; measured again after the run by `--amend --recost` on {when}"
        text = text[:a] + "\n".join(cost_section(costs, note)) + "\n" + text[e + 1 :]
        path.write_text(text)
    if latency_json is not None:
        insert_latency(path, json.loads(latency_json.read_text()))


def latency_section(lat: list[dict]) -> list[str]:
    """The report's lines on first-call latency (none without measurements)."""
    if not lat:
        return []
    lines = [
        "## First-call latency (PyMC model, Numba backend)",
        "",
        f"`{LATENCY_MODEL}`, fresh subprocesses: *fresh* = new empty `NUMBA_CACHE_DIR` "
        "and PyTensor `compiledir`; *later* = a second process with the same "
        "directories. `target`: `Target.from_pymc(model)` (langevin; lazy: PyTensor "
        "compiles at the first sample) or `nutpie.compile_pymc_model(model)`; "
        f"first/second sample: 4 chains × ({LATENCY_SIZE[0]} + {LATENCY_SIZE[1]}).",
        "",
        "Wall seconds, and in brackets this process's CPU seconds (all threads), the better "
        "guide on a machine shared with other jobs.",
        "",
        "| sampler | process | import s | target s (CPU) | first sample s (CPU) "
        "| second sample s (CPU) | target + first sample s (CPU) | process total s (CPU) |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cell(r: dict, *keys: str) -> str:
        wall = sum(r[f"{k}_s"] for k in keys)
        cpu = [r.get(f"{k}_cpu_s") for k in keys]
        return f"{wall:.2f}" + ("" if None in cpu else f" ({sum(cpu):.2f})")

    for r in lat:
        lines.append(
            f"| {r['which']} | {r['when']} | {r['import_s']:.2f} | {cell(r, 'target')} | "
            f"{cell(r, 'first_sample')} | {cell(r, 'second_sample')} | "
            f"{cell(r, 'target', 'first_sample')} | {r['process_wall_s']:.1f} "
            f"({r['total_cpu_s']:.1f}) |"
        )
    lines.append("")
    return lines


def insert_latency(path: Path, lat: list[dict]) -> None:
    """Put (or replace) the latency section of an existing report ``path``."""
    text = path.read_text()
    section = "\n".join(latency_section(lat)) + "\n"
    start = text.find("## First-call latency")
    end = text.find("## Where the goals are missed")
    if start >= 0:
        text = text[:start] + section + text[end:]
    else:
        text = text[:end] + section + text[end:]
    path.write_text(text)


COST_HEADING = "## Cost of one value-and-gradient outside the samplers"


def cost_section(costs: dict, note: str = "") -> list[str]:
    """The table of :func:`gradient_cost` per model (none without measurements)."""
    if not costs:
        return []
    cols = list(next(iter(costs.values())))
    lines = [COST_HEADING, "", f"CPU µs per call (this process), see `gradient_cost`{note}.", "",
             "| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]  # fmt: skip
    for m, c in costs.items():
        lines.append(f"| {m} | " + " | ".join(f"{v:.2f}" for v in c.values()) + " |")
    return [*lines, ""]


def write_md(path: Path, flag: str, info: dict, config: dict, problems: list[Problem],
             rows: list[dict], costs: dict, lat: list[dict]) -> None:  # fmt: skip
    chains, warmup, draws, runs = (config[k] for k in ("chains", "warmup", "draws", "runs"))
    lines = [
        "# NUTS: langevin against nutpie, NumPyro and BlackJAX on posteriordb models",
        "",
        f"Made by `python -m benchmarks.nuts_peers{flag}` on {info['date']}: {chains} chains × "
        f"({warmup} warm-up + {draws} draws) for every sampler, median of {runs} run(s) with "
        "different seeds; compilation is the separate *first call* column. Method: the "
        "module docstring of `benchmarks/nuts_peers.py`.",
        "",
        "**Machine: a 2-core CPU, no GPU, shared with other agents' jobs** (load averages "
        "below): wall-clock times are inflated and noisy; the CPU-seconds columns "
        "(this process, all threads) are beside them. langevin's Numba chains and nutpie's "
        "run on the 2 cores in threads; the JAX samplers vmap the chains on one device.",
        "",
        *load_warning(info),
        "## Same model in PyMC and NumPyro",
        "",
        "log p_PyMC(x) − log p_NumPyro(x) at 5 random unconstrained points (a constant: "
        "normalising constants PyMC keeps and improper priors): spread (max − min) must be "
        f"≤ {TOL_SAME_DENSITY:g} × max(1, |offset|).",
        "",
        "| model | dim | offset | spread |",
        "|---|---|---|---|",
        *(
            f"| {p.short} | {p.pymc_target.dim} | {p.density_offset:.6g} | {p.density_spread:.1e} |"
            for p in problems
        ),
        "",
        "## ESS per second",
        "",
        "ESS: minimum over every constrained scalar parameter (bulk, tail). `/s`: per second "
        "of sampling (warm-up excluded); `/s incl. warm-up`: bulk ESS per second of warm-up + "
        "sampling; `first call`: the compiling call (compilation + 20 warm-up steps + 2 "
        "draws). `µs/grad`: sampling wall seconds per gradient (all chains); `|z|`: largest "
        "|z| of the posterior means against posteriordb's reference.",
        "",
        "| model | sampler | ESS bulk | ESS tail | bulk/s | tail/s | bulk/s incl. warm-up "
        "| bulk/CPU-s | warm-up s (CPU) | sampling s (CPU) | first call s (CPU) | grads/draw "
        "| µs/grad | ESS/1k grads | div | step | \\|z\\| |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['sampler']} | {r['ess_bulk_min']:.0f} | {r['ess_tail_min']:.0f}"
            f" | {r['ess_bulk_per_s']:.0f} | {r['ess_tail_per_s']:.0f} | "
            f"{r['ess_bulk_per_s_incl_warmup']:.0f} | {r['ess_bulk_per_cpu_s']:.0f} | "
            f"{r['seconds_warmup']:.2f} ({r['cpu_warmup']:.2f}) | {r['seconds_sampling']:.2f} "
            f"({r['cpu_sampling']:.2f}) | {r['first_call_s']:.1f} ({r['first_call_cpu_s']:.1f}) "
            f"| {r['grads_per_draw']:.1f} | {r['us_per_grad']:.2f} | "
            f"{r['ess_bulk_per_1k_grads']:.1f} | {r['divergences']} | {r['step_size']:.3g} | "
            f"{r['max_abs_z_mean']:.2f} |"
        )
    glines = goal_lines(rows)[0]
    lines += ["", "## Against the goals", "",
              "Ratio of ESS_min per second of sampling (medians); ✗: below the goal; —: a "
              f"sampling phase under {MIN_MEASURED:g} s, too short to time here.", "",
              *glines, "", *cpu_goal_section(rows)]  # fmt: skip
    lines += cost_section(costs)
    lines += latency_section(lat)
    lines += wall_miss_section(rows)
    lines += cpu_analysis_section(rows, chains, draws)
    lines += ["## Machine", "", *(f"- {k}: {v}" for k, v in info.items()), ""]
    path.write_text("\n".join(lines) + "\n")


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def main(argv: list[str] | None = None) -> None:
    parser = size_parser(__doc__, quick="4 chains x (300 + 300), 1 run",
                         tiny="gp_regr only, 2 chains x (50 + 50), 1 run (smoke test)")  # fmt: skip
    parser.add_argument("--models", nargs="+", choices=list(POSTERIORS), default=None)
    parser.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=None)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--latency-only", action="store_true",
                        help="measure the latency only, into the existing report")  # fmt: skip
    parser.add_argument("--amend", type=Path, default=None, metavar="LATENCY_JSON",
                        help="add the CPU goal table and this latency to the report")  # fmt: skip
    parser.add_argument("--recost", action="store_true",
                        help="with --amend: measure the gradient costs again")  # fmt: skip
    parser.add_argument("--probe", choices=("langevin", "nutpie"), default=None,
                        help=argparse_suppress())  # fmt: skip
    args, tag, flag = parse_sized(parser, argv)
    if args.probe:  # a latency subprocess
        print(json.dumps(probe(args.probe)), flush=True)
        return
    stem = "nuts_peers" + (f"_{tag}" if tag else "")
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 everywhere (this script's choice)
    if args.amend is not None:
        amend(args.out, stem, args.amend if args.amend.name else None, args.recost)
        return
    if args.latency_only:
        lat = latency()
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{stem}_latency.json").write_text(json.dumps(lat, indent=1) + "\n")
        if (args.out / f"{stem}.md").exists():
            insert_latency(args.out / f"{stem}.md", lat)
        log(f"wrote {args.out / (stem + '_latency.json')}")
        return
    import blackjax  # noqa: F401
    import numba
    import numpyro
    import nutpie
    import pymc

    chains = 2 if args.tiny else 4
    warmup, draws = (50, 50) if args.tiny else (300, 300) if args.quick else (1000, 1000)
    runs = args.runs or (1 if args.tiny or args.quick else 3)
    models = args.models or (["gp_regr"] if args.tiny else list(POSTERIORS))
    samplers = args.samplers or list(SAMPLERS)
    info = machine_at_start(
        f"NUTS peers: {models}, {samplers}, {chains} chains x ({warmup} + {draws}), {runs} runs",
        {"pymc": pymc.__version__, "nutpie": nutpie.__version__,
         "numpyro": numpyro.__version__, "numba threads": str(numba.get_num_threads())},
    )  # fmt: skip
    problems, rows, costs = [], [], {}
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    config = {"chains": chains, "warmup": warmup, "draws": draws, "runs": runs}

    def write(problems, rows, costs, lat):
        write_csv(out / f"{stem}.csv", rows)
        write_md(out / f"{stem}.md", flag, info, config, problems, rows, costs, lat)
        log(f"wrote {out / (stem + '.md')} and .csv")

    from langevin.driver import DivergenceWarning, DivergentTransitionWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergentTransitionWarning)
        warnings.simplefilter("ignore", DivergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", numba.core.errors.NumbaWarning)
        for short in models:
            problem = make_problem(short)
            problems.append(problem)
            log(f"{short}: dim {problem.pymc_target.dim}, PyMC − NumPyro log-density offset "
                f"{problem.density_offset:.6g} (spread {problem.density_spread:.1e})")  # fmt: skip
            rows += bench_problem(problem, samplers, chains, warmup, draws, runs)
            if not args.tiny:
                costs[short] = gradient_cost(problem)
                log(f"  {short} µs per value-and-gradient: {costs[short]}")
            write(problems, rows, costs, [])  # what is done so far, should a later part fail
    lat = [] if args.tiny or args.no_latency else latency()
    load_at_end(info)
    write(problems, rows, costs, lat)
    if lat:
        (out / f"{stem}_latency.json").write_text(json.dumps(lat, indent=1) + "\n")


def argparse_suppress() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
