"""Nothing lost, nothing silent (issue 17): interrupts, user-code failures, wrong shapes,
instability, stuck chains, NaN weights, and the messages users meet first.

Each test reproduces a defect found by trying the package as a new user would; each failed
before the fix it guards.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import warnings

import jax.numpy as jnp
import numba
import numpy as np
import pytest

import langevin
from langevin import smc
from langevin.driver import (
    DivergenceWarning,
    SamplingError,
    StuckChainWarning,
    TargetCodeWarning,
)
from langevin.smc.feynman_kac import NaNWeightWarning


@numba.njit
def _std_normal_logp(x):
    return -0.5 * np.dot(x, x)


def _run(target, kernel=None, **kw):
    kw = {"chains": 2, "warmup": 50, "draws": 200, "progress": False, "seed": 0, **kw}
    return langevin.sample(target, kernel or langevin.MALA(0.5), **kw)


# -- Ctrl-C ------------------------------------------------------------------------------------
_INTERRUPTED = """
import sys, langevin, numpy as np
chains, kernel, warm = int(sys.argv[1]), getattr(langevin, sys.argv[2]), sys.argv[3] == "1"
target = langevin.targets.gaussian(2)
if warm:  # compile (or load) first, so that the interrupt lands in the sampling loop
    langevin.sample(target, kernel(0.1), chains=chains, warmup=10, draws=10, progress=False)
print("start", flush=True)
tr = langevin.sample(target, kernel(0.1), chains=chains, warmup=100, draws=1_000_000,
                     thin=200, progress=False, seed=0)
print("returned", tr.draws.shape[1], bool(np.isfinite(tr.draws).all()), tr.interrupted,
      flush=True)
"""


def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_after(delay: float, chains: int, kernel: str, warm: bool):
    """(exit code, output, seconds from the signal to the end) of a run sent SIGINT."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED, str(chains), kernel, str(int(warm))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # as in a terminal: a shell script's background job (CI runs its jobs so) starts
        # with SIGINT ignored, and Python then keeps it ignored in the child
        preexec_fn=_sigint_as_in_a_terminal,
    )  # fmt: skip
    try:
        before = []
        for line in proc.stdout:  # warnings of the warming run may come first
            if line.strip() == "start":
                break
            before.append(line)
        else:
            raise AssertionError("the run ended before it started: " + "".join(before)[-2000:])
        time.sleep(delay)
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
        return proc.returncode, out, time.perf_counter() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("chains", [1, 3])
def test_ctrl_c_returns_the_draws_made_so_far(chains):
    """Ctrl-C during sampling returns a trace of finite draws marked interrupted, with one
    chain too (it segfaulted: exit 139), for a kernel with and without momentum."""
    for kernel in ("MALA", "KineticLangevin"):
        rc, out, _ = _interrupt_after(2.0, chains, kernel, warm=True)
        assert rc == 0, out[-2000:]
        line = out.strip().splitlines()[-1].split()
        assert line[0] == "returned" and int(line[1]) > 0, out[-2000:]
        assert line[2:] == ["True", "True"], out[-2000:]
        assert "sampling interrupted" in out


def test_ctrl_c_while_compiling_is_not_swallowed():
    """Ctrl-C during compilation or loading used to be lost inside a ctypes callback
    ("Exception ignored on calling ctypes callback") and the run went on to the end (about
    a minute here); now it stops as soon as the compiled code is ready."""
    _, out, waited = _interrupt_after(0.05, 1, "KineticLangevin", warm=False)
    assert "KeyboardInterrupt" in out or "sampling interrupted" in out, out[-2000:]
    assert "returned 5000" not in out
    assert waited < 60


# -- the target's functions, checked at the first evaluation -----------------------------------
def _numba_target(grad, **kw):
    return langevin.Target.from_numba(_std_normal_logp, grad, dim=3, **kw)


@pytest.mark.parametrize("extra", [-1, 5, "one"])
def test_gradient_of_the_wrong_length_is_named(extra):
    """A gradient of length d−1 or d+5 failed with numba's "unable to broadcast" from a
    worker thread; length 1 broadcast silently and gave plausible, wrong draws."""
    if extra == "one":

        @numba.njit
        def grad(x):
            return np.ones(1)

        got = "(1,)"
    else:
        n = 3 + extra

        @numba.njit
        def grad(x):
            return np.zeros(n)

        got = f"({n},)"
    with pytest.raises(ValueError, match=rf"grad must return the gradient as an array of shape "
                       rf"\(3,\).*returned {re.escape(got)}"):  # fmt: skip
        _run(_numba_target(grad))


def test_gradient_dtype_and_value_and_grad_arity_are_named():
    @numba.njit
    def grad_int(x):
        return np.zeros(x.shape[0], dtype=np.int64)

    @numba.njit
    def grad_f32(x):
        return (-x).astype(np.float32)

    @numba.njit
    def vg_one(x):
        return -x

    for grad, dtype in ((grad_int, "int64"), (grad_f32, "float32")):
        with pytest.raises(TypeError, match=f"float64 gradient.*{dtype}"):
            _run(_numba_target(grad))
    with pytest.raises(TypeError, match=r"value_and_grad must return \(logdensity, gradient\)"):
        _run(langevin.Target.from_numba(value_and_grad=vg_one, dim=3))


def test_the_start_probe_runs_once_per_target_and_data():
    """The probe's pass over the data (0.5-0.9 s at 10^7 rows) is not repeated by every
    sample() of the same target; new data (or a new dimension) is probed again."""
    from langevin import health

    calls = []

    def value_and_grad(x, data):
        calls.append(data)
        return -0.5 * float(x @ x), -x

    class Fake:  # the two attributes the probe reads
        def __init__(self):
            self.numba_functions = {"value_and_grad": value_and_grad}
            self.data = (np.ones(3),)

    target, x = Fake(), np.zeros(2)
    health.probe_numba_target(target, x)
    health.probe_numba_target(target, x)
    assert len(calls) == 1
    target.data = (np.ones(4),)
    health.probe_numba_target(target, x)
    health.probe_numba_target(target, np.zeros(3))
    assert len(calls) == 3
    assert health.probe_numba_target(Fake(), x) is None and len(calls) == 4

    class Unhashable(Fake):  # e.g. a dataclass subclass with eq=True: probed every time
        __hash__ = None

    odd = Unhashable()
    health.probe_numba_target(odd, x)
    health.probe_numba_target(odd, x)
    assert len(calls) == 6


def test_exception_at_the_start_names_the_function_and_point():
    @numba.njit
    def grad(x):
        raise ValueError("no gradient here")

    with pytest.raises(ValueError, match=r"the target's grad raised ValueError at the start"):
        _run(_numba_target(grad))


# -- an exception inside the user's code, mid-run -----------------------------------------------
@numba.njit
def _grad_raises_right_of_2(x):
    if x[0] > 2.05:
        raise ValueError("the model's code raised")
    return -x


@pytest.mark.filterwarnings("ignore::langevin.driver.StuckChainWarning")  # tiny steps, far apart
def test_exception_in_some_chains_keeps_every_draw():
    """The run lost every draw when the user's Numba code raised. Now the chain that raised
    stops (its draws before kept; where it failed recorded) and the others finish."""
    target = _numba_target(_grad_raises_right_of_2)
    starts = np.array([[2.0, 0.0, 0.0], [-2.0, 0.0, 0.0], [-2.0, 0.5, 0.0]])
    with pytest.warns(TargetCodeWarning, match=r"chain\(s\) \[0\].*ValueError"):
        trace = _run(target, langevin.ULA(1e-3), chains=3, warmup=0, draws=1000,
                     initial_position=starts)  # fmt: skip
    failure = trace.failures[0]
    assert set(trace.failures) == {0}
    assert isinstance(failure.error, ValueError)
    k = failure.step - 1  # steps made before the failing one
    assert 0 < k < 1000
    assert np.isfinite(trace.draws[0, :k]).all() and np.isnan(trace.draws[0, k:]).all()
    np.testing.assert_array_equal(failure.position, trace.draws[0, k - 1])
    assert failure.position[0] <= 2.05
    assert np.isfinite(trace.draws[1:]).all()


def test_exception_in_every_chain_raises_with_the_draws():
    target = _numba_target(_grad_raises_right_of_2)
    starts = np.array([[2.0, 0.0, 0.0], [2.0, 1.0, 0.0]])
    with pytest.raises(SamplingError, match="every chain stopped.*ValueError") as info:
        _run(target, langevin.ULA(1e-3), warmup=0, draws=1000, initial_position=starts)
    err = info.value
    assert set(err.failures) == {0, 1}
    assert isinstance(err.__cause__, ValueError)
    assert err.trace.draws.shape[0] == 2
    for c, f in err.failures.items():
        assert 1 < f.step <= err.trace.draws.shape[1] + 1
        assert np.isfinite(err.trace.draws[c, : f.step - 1]).all()


def test_checked_mode_turns_an_out_of_bounds_read_into_an_error():
    """Numba's bounds checks are off: an out-of-range index reads garbage or segfaults.
    ``checked=True`` recompiles the target with them on and reports the IndexError."""

    @numba.njit
    def grad(x):
        g = -x.copy()
        if x[0] > 2.05:
            g[0] = g[7]  # out of range
        return g

    starts = np.array([[2.0, 0.0, 0.0], [2.0, 1.0, 0.0]])
    with pytest.raises(SamplingError, match="IndexError") as info:
        _run(_numba_target(grad), langevin.ULA(1e-3), warmup=0, initial_position=starts,
             checked=True)  # fmt: skip
    assert "checked=True" not in str(info.value)  # no advice to do what was done
    with pytest.raises(ValueError, match="checked=True applies to the Numba backend"):
        _run(langevin.targets.gaussian(3), backend="jax", checked=True)
    with pytest.raises(TypeError, match="checked must be True or False"):
        _run(langevin.targets.gaussian(3), checked="yes")


# -- instability, stuck chains -----------------------------------------------------------------
def test_unstable_ula_is_stopped_early_with_its_own_advice():
    """ULA at h > 2/L ran to |x| ≈ 1e88 and was flagged only when it overflowed; now the
    collapse of the log-density stops it within a few steps, with ULA's advice."""
    with pytest.warns(DivergenceWarning, match=r"ULA: .*h < 2/L"):
        trace = _run(langevin.targets.gaussian(5), langevin.ULA(2.5), warmup=0, draws=2000)
    assert set(trace.diverged) == {0, 1}
    assert max(trace.diverged.values()) < 30
    assert np.nanmax(np.abs(trace.draws)) < 1e3


def test_unstable_kinetic_langevin_gets_kinetic_advice():
    kernel = langevin.KineticLangevin(2.5, discretization="baoab")
    with pytest.warns(DivergenceWarning, match=r"KineticLangevin: .*h·√\(u·L\) < 2") as rec:
        _run(langevin.targets.gaussian(5), kernel, warmup=0, draws=2000)
    assert "ULA" not in str(rec[0].message)


def test_a_chain_that_never_moves_is_reported():
    with pytest.warns(StuckChainWarning, match=r"never moved"):
        _run(langevin.targets.gaussian(3), langevin.MALA(1e-300), warmup=0)


def test_chains_that_barely_move_are_reported():
    """friction = 1e6: the chains crawl (R-hat 1.7e7 in the report) without a word before."""
    kernel = langevin.KineticLangevin(0.1, friction=1e6)
    starts = np.random.default_rng(0).uniform(-2, 2, (4, 3))  # as for a target without a start
    with pytest.warns(StuckChainWarning, match=r"chain\(s\) \[0, 1, 2, 3\] barely moved"):
        _run(langevin.targets.gaussian(3), kernel, chains=4, warmup=200, draws=1000,
             initial_position=starts)  # fmt: skip


def test_the_movement_monitor_reads_chunks_and_thinned_views_as_one_trace():
    """The stuck-chain statistics, accumulated chunk by chunk from views of the chunks'
    buffers (a thinned one strided), are those of the whole kept trace: the largest
    coordinate step between kept draws summed, and the draws' sums and sums of squares about
    the first draw."""
    from langevin.health import MovementMonitor

    rng = np.random.default_rng(5)
    full = rng.standard_normal((3, 120, 4)).cumsum(axis=1)
    kept = full[:, 2::3]  # thin = 3
    monitor = MovementMonitor(3, 4)
    for a, b in [(0, 1), (1, 2), (2, 17), (17, 40)]:
        monitor.observe(kept[:, a:b])
    ref = kept[:, 0]
    np.testing.assert_allclose(
        monitor.jump_sum, np.abs(np.diff(kept, axis=1)).max(axis=2).sum(axis=1), rtol=1e-13
    )
    np.testing.assert_allclose(monitor.total, (kept - ref[:, None]).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(
        monitor.total_sq, ((kept - ref[:, None]) ** 2).sum(axis=1), rtol=1e-12
    )
    assert int(monitor.count) == 40 and np.array_equal(monitor.last, kept[:, -1])


def test_a_healthy_run_warns_of_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run(langevin.targets.gaussian(3), langevin.HMC(0.3), chains=4, warmup=300, draws=500)


def test_proposals_outside_the_support_are_not_divergences():
    """HMC on a half-space (log π = −inf for x₀ < 0): trajectories that leave the support
    are rejections, not divergent transitions (they were counted as both)."""

    def logp(x):
        return jnp.where(x[0] > 0, -0.5 * jnp.sum(x**2), -jnp.inf)

    target = langevin.Target.from_jax(logp, dim=2)
    trace = _run(target, langevin.HMC(0.5, n_leapfrog=5), backend="jax", warmup=0, draws=300,
                 initial_position=np.array([[0.3, 0.0], [0.5, 0.1]]))  # fmt: skip
    assert trace.sample_stats["acceptance_rate"].min() == 0.0  # some proposals left
    assert not trace.sample_stats["diverging"].any()


# -- SMC: a NaN likelihood is not silently weight zero ------------------------------------------
def test_smc_warns_about_nan_log_likelihoods():
    prior = langevin.Target.from_jax(lambda x: -0.5 * jnp.sum(x**2), dim=1)
    like = langevin.Target.from_jax(
        lambda x: jnp.where(x[0] > 1.5, jnp.nan, -0.5 * jnp.sum((x - 0.5) ** 2)), dim=1
    )
    model = smc.TemperedTarget(prior, like, lambda rng, n: rng.standard_normal((n, 1)))
    with pytest.warns(NaNWeightWarning, match=r"SMC step \d+: \d+ of 200 particles have a NaN"):
        smc.tempered_smc(model, langevin.MALA(0.3), n_particles=200, n_steps=2, seed=0,
                         backend="jax", progress=False)  # fmt: skip


# -- messages ------------------------------------------------------------------------------------
def test_messages_name_what_the_user_typed():
    @numba.njit
    def grad(x, data):
        return -x

    with pytest.raises(TypeError, match=r"data= .* NumPy array, a number, or a tuple.*dict"):
        langevin.Target.from_numba(_std_normal_logp, grad, data={"s": 1.0}, dim=3)
    with pytest.raises(ValueError, match="init_jitter must be non-negative and finite"):
        _run(langevin.targets.gaussian(2), init_jitter=float("inf"))
    with pytest.raises(TypeError, match="target_acceptance must be a float in"):
        _run(langevin.targets.gaussian(2), target_acceptance="0.8")
    with pytest.raises(ValueError, match=r"^KineticLangevin: step_size"):
        langevin.KineticLangevin(-1.0)


def test_particle_filter_follows_the_backends_default_float():
    import jax

    model = smc.linear_gaussian_example(T=10, seed=0)
    result = smc.particle_filter(model, 64, seed=1, backend="jax")
    expected = np.float64 if jax.config.jax_enable_x64 else np.float32
    assert np.asarray(result.log_weights).dtype == expected
