"""NUTS (and HMC) with a dense metric: its math is the diagonal kernel's in whitened
coordinates, the backends agree, the warm-up learns the covariance, resume is bit for bit.

* **Arguments.** A non-square, non-symmetric, non-positive-definite, non-finite or
  wrong-size ``inverse_mass`` is a ValueError naming it, before anything compiles.
* **The identity metric is the diagonal kernel.** With ``inverse_mass = I`` the dense step
  (NumPy twin) gives the diagonal step's chain on the same noise, exactly.
* **A dense metric is a change of variables** (exact, not statistical). With
  ``M⁻¹ = A = L Lᵀ``, Hamiltonian dynamics on ``x`` with metric ``A`` and momentum
  ``p = L⁻ᵀ ξ`` is unit-metric dynamics on ``y = L⁻¹ x`` with momentum ``ξ``
  (``ẏ = L⁻¹ A p = Lᵀ p = ξ``): dense NUTS on π from ``x₀`` and identity-metric NUTS on
  ``π_y(y) = π(L y)`` from ``L⁻¹ x₀``, fed the same noise, give ``x_t = L y_t`` (1e-10),
  with the same tree depths, acceptance statistics and energies. A wrong momentum draw
  (``L⁻¹ξ``, a dropped transpose), a velocity with ``M`` for ``M⁻¹`` or a U-turn criterion
  without the metric breaks it.
* **Same noise, same chain**: Numba and JAX agree to 1e-12 (float64) for dense NUTS with
  a non-trivial metric.
* **Chains**: MCMC z-tests (MCSE from ArviZ's ESS) of means and covariances on a strongly
  correlated Gaussian (d = 5, correlation 0.99, scales 1 … 3) with the dense metric learnt
  in warm-up, on both backends (JAX: slow-marked, a ~25 s compilation); the chains' mean
  learnt ``M⁻¹`` is within the sampling error of a regularised window covariance of the
  target covariance (the Gaussian's fourth moments give ``Var Σ̂_ij = (Σ_ij² + Σ_ii Σ_jj) /
  n_eff``), and the same numbers reject 1.3 × Σ. HMC's dense metric: slow-marked z-tests.
* **Resume** from a checkpoint inside a dense mass-matrix window is bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import langevin
import langevin.checkpoint
from langevin.adaptation.mass_matrix import (
    DenseMassMatrix,
    WelfordCovariance,
    regularized_covariance,
    window_schedule,
)
from langevin.backends import jax_backend, numba_backend, numpy_ops
from langevin.backends.portable import make_twin
from langevin.kernels.base import GradientState
from langevin.kernels.hmc import HMC, DenseHMC, hmc_step, momentum_factor
from langevin.kernels.nuts import NUTS, DenseNUTS, nuts_step
from langevin.spec import draw_numpy
from tests.stats_helpers import Z_CRIT, assert_z_ok, mcse_mean, moment_z_scores

DIM = 4


def spd(dim: int = DIM, seed: int = 0, spread: float = 10.0) -> np.ndarray:
    """A random symmetric positive-definite matrix, eigenvalues 1 … 1/spread, rotated."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    a = q @ np.diag(np.geomspace(1.0, 1.0 / spread, dim)) @ q.T
    return 0.5 * (a + a.T)


def correlated(dim: int = 5, rho: float = 0.99):
    """N(m, Σ): correlation ``rho`` between every pair, standard deviations 1 … 3."""
    sd = np.geomspace(1.0, 3.0, dim)
    cov = (rho * np.ones((dim, dim)) + (1.0 - rho) * np.eye(dim)) * np.outer(sd, sd)
    mean = np.linspace(-1.0, 2.0, dim)
    return langevin.targets.gaussian(dim, mean=mean, cov=cov), mean, cov


# -- arguments ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [NUTS, HMC])
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(inverse_mass=np.ones((2, 3))), "inverse_mass must be a square"),
        (dict(inverse_mass=np.ones((2, 2, 2)), metric="dense"), "inverse_mass must be a square"),
        (dict(inverse_mass=[[1.0, 0.5], [0.4, 1.0]]), "inverse_mass must be symmetric"),
        (dict(inverse_mass=np.ones((2, 2))), "inverse_mass must be positive definite"),
        (dict(inverse_mass=[[1.0, 0.0], [0.0, -1.0]]), "inverse_mass must be positive definite"),
        (dict(inverse_mass=[[1.0, np.nan], [np.nan, 1.0]]), "inverse_mass must be finite"),
        (dict(inverse_mass=[1.0, -1.0], metric="dense"), "inverse_mass must be positive"),
        (dict(inverse_mass=np.eye(2), metric="diagonal"), "inverse_mass is a matrix"),
        (dict(metric="full"), "metric must be one of"),
    ],
)
def test_bad_dense_arguments_are_refused(cls, kwargs, match):
    with pytest.raises(ValueError, match=f"{cls.__name__}: {match}"):
        cls(0.1, **kwargs)


@pytest.mark.parametrize("cls,dense_cls", [(NUTS, DenseNUTS), (HMC, DenseHMC)])
def test_the_metric_picks_the_kernel(cls, dense_cls):
    a = spd(3)
    for kernel in (cls(0.1, metric="dense"), cls(0.1, inverse_mass=a),
                   cls(0.1, inverse_mass=a, metric="dense"), dense_cls(0.1)):  # fmt: skip
        assert type(kernel) is dense_cls and kernel.metric == "dense"
        assert kernel.name == cls.__name__ and repr(kernel).startswith(f"{cls.__name__}(")
        assert dense_cls.adapts_inverse_mass and isinstance(kernel, cls)
    assert type(cls(0.1)) is cls and cls(0.1).metric == "diagonal"
    assert type(cls(0.1, inverse_mass=[1.0, 2.0])) is cls
    # a 1-D inverse_mass with metric="dense" is the diagonal of the starting matrix
    np.testing.assert_array_equal(cls(0.1, metric="dense", inverse_mass=[1.0, 2.0]).inverse_mass,
                                  np.diag([1.0, 2.0]))  # fmt: skip
    params = cls(0.1, inverse_mass=a).params()
    f = params.momentum_factor  # L⁻ᵀ: upper triangular, Cov(L⁻ᵀ ξ) = f fᵀ = M = A⁻¹
    np.testing.assert_allclose(f @ f.T, np.linalg.inv(a), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(np.tril(f, -1), 0.0)
    # the checkpoint's record rebuilds it (public name NUTS / HMC, metric="dense")
    from langevin.io import _kernel_record, _rebuild_kernel

    again = _rebuild_kernel(_kernel_record(cls(0.1, inverse_mass=a)))
    assert type(again) is dense_cls and again == cls(0.1, inverse_mass=a)


def test_a_wrong_size_inverse_mass_is_refused_before_compiling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("compiled before checking the arguments")

    for be in (numba_backend, jax_backend):
        monkeypatch.setattr(be, "prepare", refuse)
    for backend in ("numba", "jax"):
        for adapt in (True, False):
            with pytest.raises(ValueError, match=r"NUTS: inverse_mass is 3 × 3 .* dim=4"):
                langevin.sample(langevin.targets.gaussian(4), NUTS(0.1, inverse_mass=spd(3)),
                                backend=backend, adapt_mass_matrix=adapt, warmup=10, draws=10,
                                progress=False)  # fmt: skip


# -- exact properties, on the NumPy twins ------------------------------------------------------
def _numpy_chain(step_math, kernel, target, x0, steps, seed, params=None):
    """``steps`` transitions of ``step_math``'s NumPy twin from ``x0``; noise from ``seed``."""
    form = numba_backend.bind_target(target, len(x0))
    target_tuple = form.build(form.data)
    step = make_twin(step_math, numpy_ops, lambda f: f, {})
    lp, g = numpy_ops.value_and_grad(target_tuple, x0)
    state = GradientState(np.asarray(x0, float), lp, g)
    params = kernel.params() if params is None else params
    rng = np.random.default_rng(seed)
    positions, infos = [], []
    for _ in range(steps):
        noise = numpy_ops.index_tree(draw_numpy(kernel.noise(len(x0)), rng, (1,)), 0)
        state, info = step(state, noise, kernel.step_size, params, target_tuple)
        positions.append(np.array(state.position))
        infos.append(info)
    return np.array(positions), infos


@pytest.mark.parametrize("kind", ["NUTS", "HMC"])
def test_the_identity_dense_metric_is_the_diagonal_kernel(kind, gaussian4):
    target = gaussian4[0]
    x0 = np.random.default_rng(3).standard_normal(DIM)
    if kind == "NUTS":
        diag, dense, math = (
            NUTS(0.3, max_depth=6),
            NUTS(0.3, max_depth=6, inverse_mass=np.eye(DIM)),
            nuts_step,
        )
    else:
        diag, dense, math = (
            HMC(0.3, n_leapfrog=7),
            HMC(0.3, n_leapfrog=7, inverse_mass=np.eye(DIM)),
            hmc_step,
        )
    x_diag, info_diag = _numpy_chain(math, diag, target, x0, 30, seed=4)
    x_dense, info_dense = _numpy_chain(type(dense).step_math, dense, target, x0, 30, seed=4)
    np.testing.assert_allclose(x_dense, x_diag, rtol=0, atol=1e-12)
    for a, b in zip(info_dense, info_diag):
        for field in a._fields:
            np.testing.assert_allclose(getattr(a, field), getattr(b, field), rtol=1e-12)
    assert len({tuple(p) for p in x_diag}) > 20  # the chains moved


@pytest.mark.parametrize("kind", ["NUTS", "HMC"])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_dense_metric_is_a_change_of_variables(kind, seed):
    """Dense-metric NUTS/HMC on π(x) with ``M⁻¹ = L Lᵀ`` is unit-metric NUTS/HMC on
    ``π(L y)``: same noise, ``x_t = L y_t`` (module docstring)."""
    _, mean, cov = correlated(DIM, rho=0.9)
    a = spd(DIM, seed=seed + 10, spread=30.0)  # a metric unrelated to the target
    lower = np.linalg.cholesky(a)
    inv = np.linalg.inv(lower)
    target_x = langevin.targets.gaussian(DIM, mean=mean, cov=cov)
    target_y = langevin.targets.gaussian(DIM, mean=inv @ mean, cov=inv @ cov @ inv.T)
    x0 = mean + np.random.default_rng(seed).standard_normal(DIM)
    if kind == "NUTS":
        dense, unit = NUTS(0.2, max_depth=6, inverse_mass=a), NUTS(0.2, max_depth=6)
    else:
        dense, unit = HMC(0.2, n_leapfrog=9, inverse_mass=a), HMC(0.2, n_leapfrog=9)
    x, info_x = _numpy_chain(type(dense).step_math, dense, target_x, x0, 25, seed=seed + 5)
    params = unit.params()._replace(inverse_mass=np.ones(DIM))
    y, info_y = _numpy_chain(type(unit).step_math, unit, target_y, inv @ x0, 25, seed + 5, params)
    np.testing.assert_allclose(x, y @ lower.T, rtol=0, atol=1e-10)
    # (the built-in Gaussian's log-density is unnormalised: log π_y(y) = log π(L y) exactly)
    for a_, b_ in zip(info_x, info_y):
        for field in ("acceptance_rate", "energy"):
            np.testing.assert_allclose(getattr(a_, field), getattr(b_, field), atol=1e-9)
        if kind == "NUTS":
            assert a_.tree_depth == b_.tree_depth and a_.n_grad == b_.n_grad
    assert np.mean([bool(i.acceptance_rate > 0.1) for i in info_x]) > 0.5  # real moves


def test_welford_covariance_does_not_depend_on_the_chunks():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 57, 4)) @ spd(4)
    one, split = WelfordCovariance(3, 4), WelfordCovariance(3, 4)
    one.update(x)
    for block in np.split(x, [1, 20, 21, 40], axis=1):
        split.update(block)
    np.testing.assert_array_equal(one.covariance(), split.covariance())
    np.testing.assert_allclose(one.covariance()[2], np.cov(x[2].T), rtol=1e-12)
    reg = regularized_covariance(one.covariance(), 57)
    np.testing.assert_allclose(reg, 57 / 62 * one.covariance() + 1e-3 * 5 / 62 * np.eye(4))


def test_dense_mass_matrix_windows_and_step_factor():
    """Stan's windows; at a window end M⁻¹ is the regularised window covariance, the step
    moves by √λ_max(A_new⁻¹ A_old), and a chain with a singular estimate keeps its matrix."""
    kernel = NUTS(0.1, metric="dense")
    comp = DenseMassMatrix(kernel, 2, 3, 1000)
    assert comp.boundaries == window_schedule(1000).boundaries
    params = comp.initial_params(numba_backend.broadcast_params(kernel.params(), 2))
    np.testing.assert_array_equal(params.inverse_mass, np.broadcast_to(np.eye(3), (2, 3, 3)))
    rng = np.random.default_rng(1)
    cov = spd(3, spread=100.0)
    block = rng.multivariate_normal(np.zeros(3), cov, size=(2, 25))
    block[1] = block[1, :1]  # chain 1 stuck at one point: a singular covariance
    comp.observe(75, block)
    params, log_factor = comp.update(100, params)
    want = regularized_covariance(np.cov(block[0].T), 25)
    np.testing.assert_allclose(params.inverse_mass[0], want, rtol=1e-12)
    np.testing.assert_array_equal(params.inverse_mass[1][~np.eye(3, dtype=bool)], 0.0)
    np.testing.assert_allclose(log_factor[0],
                               0.5 * np.log(np.max(np.linalg.eigvals(np.linalg.solve(want,
                                            np.eye(3))).real)), rtol=1e-10)  # fmt: skip
    f = params.momentum_factor[0]
    np.testing.assert_allclose(f @ f.T, np.linalg.inv(params.inverse_mass[0]), rtol=1e-8)
    np.testing.assert_array_equal(params.momentum_factor, momentum_factor(params.inverse_mass))


# -- same noise, same chain on both backends ---------------------------------------------------
@pytest.mark.usefixtures("x64")
def test_numba_and_jax_agree_on_the_same_noise():
    """The Numba loop draws its own noise (the loop ``sample`` uses, so nothing extra
    compiles); ``draw_noise`` gives the same numbers as arrays, which JAX is fed."""
    target = correlated()[0]
    chains, steps, dim = 3, 25, 5
    kernel = NUTS(0.25, inverse_mass=spd(dim, seed=2))
    x0 = np.random.default_rng(1).standard_normal((chains, dim))
    step = np.full(chains, kernel.step_size)

    def rngs():
        return [np.random.default_rng(s) for s in np.random.SeedSequence(9).spawn(chains)]

    prepared = numba_backend.prepare(kernel, target, dim, np.float64)
    nb = numba_backend.run(prepared, numba_backend.init(prepared, x0), steps, step, rngs=rngs())
    noise = numba_backend.draw_noise(kernel, dim, steps, rngs())
    prepared = jax_backend.prepare(kernel, target, dim, np.float64)
    jx = jax_backend.run(prepared, jax_backend.init(prepared, x0), steps, step, noise=noise)
    np.testing.assert_allclose(np.asarray(jx.position), nb.position, rtol=0, atol=1e-12)
    for k in ("tree_depth", "n_grad", "acceptance_rate", "energy"):
        np.testing.assert_allclose(np.asarray(jx.info[k]), nb.info[k], rtol=1e-12, atol=1e-12)
    assert nb.info["tree_depth"].min() >= 1 and np.unique(nb.position[:, :, 0]).size > 40


# -- chains ------------------------------------------------------------------------------------
def _window_covariance_z_scores(trace, cov, n_window: int) -> dict[str, float]:
    """z of every entry of the chains' mean learnt M⁻¹ against the regularised target
    covariance. Each chain's M⁻¹ is the regularised sample covariance of its own last window
    (independent across chains), with ``Var Σ̂_ij ≈ (Σ_ij² + Σ_ii Σ_jj) / n_eff`` (Gaussian
    fourth moments), ``n_eff`` the window length times the ESS per draw of
    ``(x_i − m_i)(x_j − m_j)`` measured in the sampling phase (same metric)."""
    x = np.asarray(trace.draws, dtype=np.float64)
    r = x - x.mean(axis=(0, 1))
    chains, n = x.shape[0], n_window
    shrink = n / (n + 5.0)
    learnt = np.asarray(trace.inverse_mass).mean(axis=0)
    zs = {}
    for i in range(cov.shape[0]):
        for j in range(i, cov.shape[0]):
            _, _, ess = mcse_mean(r[..., i] * r[..., j])
            n_eff = n * min(1.0, ess / r[..., 0].size)
            sd = shrink * np.sqrt((cov[i, j] ** 2 + cov[i, i] * cov[j, j]) / (n_eff * chains))
            expected = shrink * cov[i, j] + 1e-3 * (5.0 / (n + 5.0)) * (i == j)
            zs[f"inverse_mass[{i},{j}]"] = (learnt[i, j] - expected) / sd
    return zs


def check_dense_nuts(backend: str, seed: int, draws: int, warmup: int = 1000):
    target, mean, cov = correlated()
    trace = langevin.sample(target, NUTS(0.5, metric="dense"), chains=4, warmup=warmup,
                            draws=draws, seed=seed, backend=backend, progress=False)  # fmt: skip
    assert trace.inverse_mass.shape == (4, 5, 5) and not trace.sample_stats["diverging"].any()
    x = np.asarray(trace.draws, dtype=np.float64)
    assert_z_ok(moment_z_scores(x, mean, cov))
    last = window_schedule(warmup).windows[-1]
    assert_z_ok(_window_covariance_z_scores(trace, cov, last[1] - last[0]))
    # the metric whitens the target: short trees, a step near the unit scale
    assert trace.sample_stats["tree_depth"].mean() < 3.5 and np.all(trace.step_size > 0.4)
    return trace, mean, cov


def test_dense_nuts_moments_strongly_correlated_gaussian_numba(tmp_path):
    trace, mean, cov = check_dense_nuts("numba", seed=11, draws=1500)
    langevin.save(trace, tmp_path / "dense.nc")  # a (chains, d, d) inverse mass saves and loads
    np.testing.assert_array_equal(langevin.load(tmp_path / "dense.nc").inverse_mass,
                                  trace.inverse_mass)  # fmt: skip
    # power: the same draws reject means 0.15 sd off and M⁻¹ = Σ scaled by 1.3
    sd = np.sqrt(np.diag(cov))
    zs = moment_z_scores(np.asarray(trace.draws, dtype=np.float64), mean + 0.15 * sd, cov)
    assert min(abs(zs[f"mean[{i}]"]) for i in range(5)) > Z_CRIT
    wrong = _window_covariance_z_scores(trace, 1.3 * cov, 500)
    assert max(abs(v) for v in wrong.values()) > Z_CRIT


@pytest.mark.slow  # a JAX compilation of NUTS: ~25 s on a 2-core machine
def test_dense_nuts_moments_strongly_correlated_gaussian_jax():
    check_dense_nuts("jax", seed=12, draws=1000)


@pytest.mark.slow
@pytest.mark.parametrize("backend,seed", [("numba", 31), ("jax", 32)])
def test_dense_nuts_moments_other_seeds(backend, seed):
    check_dense_nuts(backend, seed=seed, draws=3000)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_dense_hmc_moments_strongly_correlated_gaussian(backend):
    target, mean, cov = correlated()
    trace = langevin.sample(target, HMC(0.5, n_leapfrog=6, metric="dense"), chains=4,
                            warmup=1000, draws=2000, seed=13, backend=backend,
                            progress=False)  # fmt: skip
    assert trace.inverse_mass.shape == (4, 5, 5)
    assert_z_ok(moment_z_scores(np.asarray(trace.draws, dtype=np.float64), mean, cov))


# -- resume --------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numba", pytest.param("jax", marks=pytest.mark.slow)])
def test_resume_inside_a_dense_window_is_bit_for_bit(backend, tmp_path, monkeypatch):
    """A checkpoint inside a dense mass-matrix window (the Welford covariance half-fed)
    and one in the sampling phase each resume to the uninterrupted run, bit for bit."""
    import shutil

    target = correlated(3, rho=0.9)[0]
    kernel = NUTS(0.3, metric="dense")
    args = dict(chains=2, warmup=200, draws=150, seed=5, progress=False, backend=backend)
    full = langevin.sample(target, kernel, **args)
    path = tmp_path / "run.npz"
    copies = []
    write = langevin.checkpoint.write

    def write_and_copy(p, run):
        write(p, run)
        copies.append((run.done, run.components[0].welford.count, tmp_path / f"c{len(copies)}"))
        shutil.copy(p, copies[-1][2])

    monkeypatch.setattr(langevin.checkpoint, "write", write_and_copy)
    checkpointed = langevin.sample(target, kernel, checkpoint=path, checkpoint_every=45, **args)
    monkeypatch.undo()
    np.testing.assert_array_equal(checkpointed.draws, full.draws)
    in_window = [c for done, count, c in copies if done < 200 and count > 1]
    in_sampling = [c for done, _, c in copies if 200 < done < 350]
    assert in_window and in_sampling
    for copy in (in_window[-1], in_sampling[0]):
        resumed = langevin.resume(copy, target, progress=False)
        np.testing.assert_array_equal(resumed.draws, full.draws)
        np.testing.assert_array_equal(resumed.step_size, full.step_size)
        np.testing.assert_array_equal(resumed.inverse_mass, full.inverse_mass)
        for k, v in full.warmup_stats.items():
            np.testing.assert_array_equal(resumed.warmup_stats[k], v)
