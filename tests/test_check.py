"""``check_target``: the checks a user runs on a target (issue 17, "checks users can run").

Every check is shown to pass on correct targets (built-ins and user functions, both
backends, JAX in its default float and in float64) and to fail, naming the problem, on a
target broken in exactly that way.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numba
import numpy as np
import pytest

import langevin
from langevin.targets.check import TargetCheck, check_target

X = np.array([0.3, -1.2, 0.8])


@numba.njit
def _logp(x):
    return -0.5 * np.dot(x, x) - 0.1 * np.sum(x**4)


@numba.njit
def _grad(x):
    return -x - 0.4 * x**3


def _jax_logp(x):
    return -0.5 * jnp.dot(x, x) - 0.1 * jnp.sum(x**4)


def _failed(report: TargetCheck) -> set[tuple[str, str]]:
    return {(r.backend, r.check) for r in report.failures}


@pytest.mark.parametrize(
    "make",
    [
        lambda: langevin.targets.gaussian(3, mean=[1.0, 0.0, -1.0]),
        lambda: langevin.targets.neals_funnel(3),
        lambda: langevin.targets.gaussian_mixture(means=[[0.0, 1.0, 0.0], [1.0, -1.0, 0.5]]),
        lambda: langevin.Target.from_numba(_logp, _grad, dim=3),
        lambda: langevin.Target.from_jax(_jax_logp, dim=3),
    ],
    ids=["gaussian", "funnel", "mixture", "user-numba", "user-jax"],
)
def test_correct_targets_pass(make):
    target = make()
    report = check_target(target, X)
    assert report.ok, str(report)
    backends = {r.backend for r in report.rows}
    assert backends >= {b for b, ok in (("numba", target.has_numba), ("jax", target.has_jax))
                        if ok}  # fmt: skip
    assert "gradient vs finite differences" in str(report)


def test_jax_runs_in_the_dtype_of_x():
    """float32 positions check in float32 (with float32 tolerances), float64 in float64."""
    target = langevin.Target.from_jax(_jax_logp, dim=3)
    r32 = check_target(target, X.astype(np.float32))
    assert r32.ok, str(r32)
    assert r32.gradients["jax"]["float32"]
    with jax.enable_x64(True):
        r64 = check_target(target, X)
        assert r64.ok, str(r64)
        assert not r64.gradients["jax"]["float32"]


@pytest.mark.parametrize("relative_error", [1e-3, 0.1])
def test_a_wrong_gradient_coordinate_is_found_on_numba(relative_error):
    """One coordinate off by a relative 1e-3 (float64) is named; the others pass."""

    @numba.njit
    def grad(x):
        g = -x - 0.4 * x**3
        g[1] *= 1.0 + relative_error
        return g

    report = check_target(langevin.Target.from_numba(_logp, grad, dim=3), X)
    assert _failed(report) == {("numba", "gradient vs finite differences")}, str(report)
    assert "x[1]" in report.failures[0].detail
    with pytest.raises(ValueError, match="gradient vs finite differences"):
        report.raise_if_failed()


def test_a_wrong_gradient_is_found_on_jax_in_float32():
    """A JAX gradient given by hand with a 10% error in one coordinate fails, in float32."""

    def grad(x):
        return (-x - 0.4 * x**3) * jnp.asarray([1.0, 1.0, 1.1], x.dtype)

    target = langevin.Target.from_jax(_jax_logp, grad=grad, dim=3)
    report = check_target(target, X.astype(np.float32))
    assert ("jax", "gradient vs finite differences") in _failed(report), str(report)
    assert "x[2]" in str(report)


def test_numba_and_jax_forms_that_disagree_are_reported():
    target = langevin.Target(
        dim=3,
        numba={"logdensity": _logp, "grad": _grad},
        jax={"logdensity": lambda x: _jax_logp(x) + 0.5 * x[0]},
    )
    with jax.enable_x64(True):
        report = check_target(target, X)
    assert ("both", "numba and jax agree") in _failed(report), str(report)


def test_in_place_modification_and_aliasing_are_found():
    @numba.njit
    def grad_in_place(x):
        for i in range(x.shape[0]):
            x[i] = -x[i]
        return x

    report = check_target(langevin.Target.from_numba(_logp, grad_in_place, dim=3), X)
    failed = _failed(report)
    assert ("numba", "logdensity, grad leaves x unchanged") in failed, str(report)
    assert ("numba", "logdensity, grad returns a new gradient") in failed, str(report)
    np.testing.assert_array_equal(X, [0.3, -1.2, 0.8])  # the caller's x is untouched


def test_shapes_dtypes_and_finiteness():
    @numba.njit
    def short_grad(x):
        return -x[:-1]

    @numba.njit
    def f32_grad(x):
        return (-x).astype(np.float32)

    @numba.njit
    def vector_value(x):
        return -0.5 * x * x

    @numba.njit
    def inf_value(x):
        return -np.inf

    cases = {
        "gradient has shape (2,)": (_logp, short_grad),
        "gradient is float32": (_logp, f32_grad),
        "not a scalar": (vector_value, _grad),
    }
    for message, (logp, grad) in cases.items():
        report = check_target(langevin.Target.from_numba(logp, grad, dim=3), X)
        assert ("numba", "logdensity, grad shapes and dtypes") in _failed(report), message
        assert message in str(report)
    report = check_target(langevin.Target.from_numba(inf_value, _grad, dim=3), X)
    assert ("numba", "logdensity, grad finite at x") in _failed(report), str(report)


def test_exceptions_and_randomness_are_reported_not_raised():
    @numba.njit
    def raising(x):
        if x[0] > 0:
            raise ValueError("negative variance")
        return -x

    @numba.njit
    def noisy(x):
        return -x + 1e-3 * np.random.standard_normal(x.shape[0])  # noqa: NPY002

    report = check_target(langevin.Target.from_numba(_logp, raising, dim=3), X)
    assert ("numba", "logdensity, grad runs") in _failed(report)
    assert "negative variance" in str(report)
    report = check_target(langevin.Target.from_numba(_logp, noisy, dim=3), X)
    assert ("numba", "logdensity, grad repeatable") in _failed(report), str(report)


def test_bad_arguments_are_refused():
    target = langevin.Target.from_numba(_logp, _grad, dim=3)
    with pytest.raises(ValueError, match="x must have shape"):
        check_target(target, np.zeros(4))
    with pytest.raises(ValueError, match="x must be finite"):
        check_target(target, np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="backend"):
        check_target(target, X, backend="jax")
    with pytest.raises(ValueError, match="backend must be"):
        check_target(target, X, backend="torch")
    with pytest.raises(TypeError, match="target must be"):
        check_target(_logp, X)
    with pytest.raises(ValueError, match="coordinates"):
        check_target(target, X, coordinates=[5])
    with pytest.raises(ValueError, match="rtol"):
        check_target(target, X, rtol=-1.0)
    assert check_target(langevin.targets.gaussian(4)).x.shape == (4,)  # default x
