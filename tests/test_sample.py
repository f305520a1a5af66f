"""The driver and the trace: checks before compiling, divergence, interruption, caching, ArviZ."""

from __future__ import annotations

import jax.numpy as jnp
import numba
import numpy as np
import pytest

import langevin
from langevin import _arviz, driver
from langevin.backends import jax_backend, numba_backend
from langevin.driver import DivergenceWarning


@numba.njit(cache=True)
def _std_normal_vg(x):
    return -0.5 * np.dot(x, x), -x


@numba.njit(cache=True)
def _std_normal_logp(x):
    return -0.5 * np.dot(x, x)


@numba.njit(cache=True)
def _std_normal_grad(x):
    return -x


@numba.njit(cache=True)
def _quartic_vg(x):
    return -0.25 * np.sum(x**4), -(x**3)


def std_normal(dim=3):
    return langevin.Target.from_numba(value_and_grad=_std_normal_vg, dim=dim)


def run(target=None, kernel=None, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("warmup", 50)
    kw.setdefault("draws", 100)
    kw.setdefault("seed", 0)
    return langevin.sample(target or std_normal(), kernel or langevin.MALA(0.5), **kw)


# -- bad input is refused before anything compiles ------------------------------------------
@pytest.fixture
def no_compile(monkeypatch):
    """Fail the test if a backend is asked to prepare (compile) anything."""

    def boom(*a, **k):
        raise AssertionError("the backend was reached: the check came too late")

    monkeypatch.setattr(numba_backend, "prepare", boom)
    monkeypatch.setattr(jax_backend, "prepare", boom)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(chains=0), ValueError, "chains"),
        (dict(chains=2.5), TypeError, "chains"),
        (dict(draws=0), ValueError, "draws"),
        (dict(warmup=-1), ValueError, "warmup"),
        (dict(thin=0), ValueError, "thin"),
        (dict(backend="torch"), ValueError, "backend"),
        (dict(seed=-3), TypeError, "seed"),
        (dict(initial_position=np.zeros(4)), ValueError, "initial_position"),
        (dict(initial_position=np.zeros((3, 3))), ValueError, "initial_position"),
        (dict(initial_position=np.zeros((4, 2))), ValueError, "initial_position"),
        (dict(initial_position=np.array([0.0, np.nan, 0.0])), ValueError, "initial_position"),
        (dict(initial_position=np.array(["a", "b", "c"])), TypeError, "initial_position"),
        (dict(initial_position=np.zeros((1, 1, 3))), ValueError, "initial_position"),
        (dict(target_acceptance=1.5), ValueError, "target_acceptance"),
    ],
)
def test_bad_arguments_raise_before_compiling(kwargs, exc, match, no_compile):
    with pytest.raises(exc, match=match):
        run(**kwargs)


def test_bad_step_size_and_kernel_and_target(no_compile):
    with pytest.raises(ValueError, match="step_size"):
        langevin.MALA(0.0)
    with pytest.raises(ValueError, match="step_size"):
        langevin.ULA(float("inf"))
    with pytest.raises(TypeError, match="kernel"):
        run(kernel="mala")
    with pytest.raises(TypeError, match="Target.from_jax"):
        langevin.sample(lambda x: -x @ x, langevin.MALA(0.1))
    with pytest.raises(TypeError, match="callable"):
        langevin.Target.from_jax(3.0)


def test_missing_numba_gradient_is_explained():
    with pytest.raises(TypeError, match="needs the gradient"):
        langevin.Target.from_numba(_std_normal_logp)
    with pytest.raises(TypeError, match="numba.njit"):
        langevin.Target.from_numba(lambda x: 0.0, lambda x: x)


def test_target_backend_mismatch_is_explained():
    jax_only = langevin.Target.from_jax(lambda x: -0.5 * jnp.sum(x**2), dim=2)
    with pytest.raises(TypeError, match="no Numba form"):
        run(jax_only, backend="numba")
    with pytest.raises(TypeError, match="no JAX form"):
        run(std_normal(), backend="jax")


def test_mixed_dtypes_are_refused_on_jax(x64):
    target = langevin.Target.from_jax(lambda x: -0.5 * jnp.sum(x.astype(jnp.float64) ** 2))
    with pytest.raises(TypeError, match="mixed dtypes"):
        run(target, backend="jax", initial_position=np.zeros(2, np.float32))


def test_float32_on_numba_is_refused_with_advice():
    with pytest.raises(TypeError, match="float64"):
        run(initial_position=np.zeros(3, np.float32))


def test_non_finite_start_names_the_chain():
    @numba.njit
    def vg(x):
        return (-np.inf if x[0] > 5 else -0.5 * np.dot(x, x)), -x

    target = langevin.Target.from_numba(value_and_grad=vg, dim=2)
    starts = np.zeros((3, 2))
    starts[2, 0] = 10.0
    with pytest.raises(ValueError, match="chain 2"):
        run(target, chains=3, initial_position=starts)


# -- divergence, interruption ----------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_diverging_chain_is_reported_and_others_finish(backend):
    target = langevin.Target(
        dim=1,
        numba={"value_and_grad": _quartic_vg},
        jax={"logdensity": lambda x: -0.25 * jnp.sum(x**4)},
        name="quartic",
    )
    starts = np.array([[0.5], [-0.3], [30.0], [0.1]])  # ULA explodes from x = 30 with h = 0.01
    with pytest.warns(DivergenceWarning, match="chain"):
        trace = run(target, langevin.ULA(0.01), chains=4, initial_position=starts, warmup=10,
                    backend=backend)  # fmt: skip
    assert set(trace.diverged) == {2}
    assert 0 < trace.diverged[2] <= 10
    healthy = np.delete(trace.draws, 2, axis=0)
    assert np.all(np.isfinite(healthy))
    assert np.all(np.isnan(trace.draws[2]))
    assert trace.flat().shape == (3 * 100, 1)


@pytest.mark.parametrize("backend", ["numba", "jax"])
def test_interrupt_returns_partial_draws(monkeypatch, backend):
    module = numba_backend if backend == "numba" else jax_backend
    real_run = module.run
    calls = {"n": 0}

    def flaky_run(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_run(*args, **kwargs)

    monkeypatch.setattr(module, "run", flaky_run)
    # 100-step chunks on both backends: one warm-up chunk, then two sampling chunks complete
    monkeypatch.setattr(numba_backend, "_CHUNK_BYTES", 8 * 4 * 4 * 100)
    monkeypatch.setattr(numba_backend, "_FIRST_CHUNK", 100)
    monkeypatch.setattr(jax_backend, "chunk_length", lambda chains, dim, kernel: 100)
    target = langevin.targets.gaussian(3)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        trace = run(target, warmup=100, draws=1000, backend=backend)
    assert trace.interrupted
    assert trace.draws.shape == (4, 200, 3)
    assert np.all(np.isfinite(trace.draws))
    assert trace.sample_stats["lp"].shape == (4, 200)


# -- caching: another step size, seed or length compiles nothing ----------------------------
def test_numba_loop_compiles_once():
    target = std_normal(4)
    run(target, langevin.MALA(0.3), draws=50)
    loops = dict(numba_backend._LOOPS)
    n_sigs = {k: len(v.signatures) for k, v in loops.items()}
    run(target, langevin.MALA(0.7), draws=77, seed=5, warmup=13)
    run(std_normal(4), langevin.MALA(0.2), draws=10, seed=9)  # a second target object
    assert dict(numba_backend._LOOPS) == loops
    assert {k: len(v.signatures) for k, v in loops.items()} == n_sigs
    assert all(n == 1 for n in n_sigs.values())


def test_split_numba_form_runs_and_matches_value_and_grad_form():
    split = langevin.Target.from_numba(_std_normal_logp, _std_normal_grad, dim=3)
    a = run(split, seed=4)
    b = run(std_normal(3), seed=4)
    np.testing.assert_array_equal(a.draws, b.draws)


def test_jax_traces_once():
    count = {"n": 0}

    def logdensity(x):
        count["n"] += 1  # runs only while JAX traces
        return -0.5 * jnp.sum(x**2)

    target = langevin.Target.from_jax(logdensity, dim=2)
    run(target, langevin.MALA(0.3), backend="jax", draws=30)
    first = count["n"]
    run(target, langevin.MALA(0.9), backend="jax", draws=1234, warmup=7, seed=3)
    run(target, langevin.MALA(0.1), backend="jax", draws=5, warmup=0, seed=4)
    assert count["n"] == first


# -- results -------------------------------------------------------------------------------
def test_same_seed_same_draws_and_different_seed_differs():
    a, b, c = run(seed=7), run(seed=7), run(seed=8)
    np.testing.assert_array_equal(a.draws, b.draws)
    assert not np.array_equal(a.draws, c.draws)


def test_thinning_keeps_every_kth_step():
    full = run(warmup=0, draws=60, thin=1)
    thinned = run(warmup=0, draws=20, thin=3)
    np.testing.assert_array_equal(thinned.draws, full.draws[:, 2::3])


def test_one_start_is_jittered_and_rows_are_used_as_given():
    trace = run(initial_position=np.ones(3), warmup=0, draws=1, kernel=langevin.ULA(1e-12))
    first = trace.draws[:, 0]
    assert np.all(np.abs(first - 1.0) <= driver.INIT_JITTER + 1e-5)
    assert len({tuple(r) for r in first.round(8)}) == 4
    starts = np.arange(12.0).reshape(4, 3) / 10
    exact = run(initial_position=starts, warmup=0, draws=1, kernel=langevin.ULA(1e-14))
    np.testing.assert_allclose(exact.draws[:, 0], starts, atol=1e-6)


def test_warmup_adapts_mala_and_keeps_ula():
    mala = run(kernel=langevin.MALA(5.0), warmup=500, draws=2000)
    assert np.all(mala.step_size != 5.0)
    assert 0.45 < mala.sample_stats["acceptance_rate"].mean() < 0.7
    ula = run(kernel=langevin.ULA(0.3), warmup=500)
    np.testing.assert_array_equal(ula.step_size, 0.3)
    np.testing.assert_array_equal(ula.sample_stats["step_size"], 0.3)


def test_arviz_groups_shapes_and_names():
    target = langevin.Target.from_numba(
        value_and_grad=_std_normal_vg, names={"beta": 2, "log_sigma": (), "w": (2, 2)}
    )
    trace = run(target, chains=3, draws=40)
    idata = trace.to_arviz()
    assert set(_arviz.group_names(idata)) == {"posterior", "sample_stats"}
    post = idata.posterior
    assert set(post.data_vars) == {"beta", "log_sigma", "w"}
    assert post["beta"].shape == (3, 40, 2)
    assert post["log_sigma"].shape == (3, 40)
    assert post["w"].shape == (3, 40, 2, 2)
    np.testing.assert_array_equal(post["log_sigma"].values, trace.draws[..., 2])
    np.testing.assert_array_equal(post["w"].values.reshape(3, 40, 4), trace.draws[..., 3:])
    stats = idata.sample_stats
    assert {"lp", "acceptance_rate", "diverging", "step_size", "is_accepted"} <= set(stats)
    assert stats["lp"].shape == (3, 40)
    assert stats["diverging"].dtype == bool
    summary = trace.summary()
    assert {"beta[0]", "beta[1]", "log_sigma"} <= set(summary.index)


def test_progress_bar_runs(capsys):
    trace = run(progress=True, warmup=10, draws=20)
    assert trace.n_draws == 20
    assert "MALA" in capsys.readouterr().err


def test_numba_chunks_follow_the_clock(monkeypatch):
    """A slow target gets short chunks (a moving bar, a quick Ctrl-C); draws do not depend on it."""
    sizes = []
    real_run = numba_backend.run

    def spy(prepared, states, n, *args, **kwargs):
        sizes.append(n)
        return real_run(prepared, states, n, *args, **kwargs)

    monkeypatch.setattr(numba_backend, "run", spy)
    fast = run(warmup=0, draws=3000)
    monkeypatch.setattr(numba_backend, "_CHUNK_SECONDS", 1e-5)  # as if each chunk were slow
    sizes.clear()
    slow = run(warmup=0, draws=3000)
    assert sizes[0] == numba_backend._FIRST_CHUNK and max(sizes[1:]) == 10
    np.testing.assert_array_equal(fast.draws, slow.draws)


def test_numba_threads_follow_numbas_thread_setting(monkeypatch):
    """The Numba engine runs chains on at most ``NUMBA_NUM_THREADS`` threads (Numba's default:
    the CPUs in this process's affinity mask, not ``os.cpu_count()``), and the draws do not
    depend on the thread count. With the setting at 1, four chains run without a thread pool;
    at 2 the pool has two workers."""
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 1)
    monkeypatch.setattr(numba_backend, "_POOL", None)
    assert numba_backend.usable_threads() == 1
    one = run(chains=4, seed=3)
    assert numba_backend._POOL is None
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 2)
    two = run(chains=4, seed=3)
    assert numba_backend._POOL is not None and numba_backend._POOL._max_workers == 2
    np.testing.assert_array_equal(one.draws, two.draws)
