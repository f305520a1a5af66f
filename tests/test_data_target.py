"""Data targets: per-datum and minibatch log-likelihood forms on both backends, the data as
a runtime argument (no recompilation for new data, no copy per chain), float32 on JAX,
built-ins against independent formulas, and input checks."""

from __future__ import annotations

import jax.numpy as jnp
import numba
import numpy as np
import pytest

import langevin
from langevin.backends import jax_backend, numba_backend
from langevin.kernels.sgmcmc import SGLD
from langevin.spec import draw_numpy
from langevin.targets.data_targets import (
    DataTarget,
    data_target,
    linear_regression_data,
    logistic_regression_data,
)


def _data(n=50, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ np.linspace(1.0, -1.0, d) + 0.5 * rng.normal(size=n)
    return X, y


@numba.njit
def _datum_vg(theta, x, y):
    r = y - np.dot(x, theta)
    return -2.0 * r * r, 4.0 * r * x  # noise_sd = 0.5: 1/(2σ²) = 2


@numba.njit
def _batch_vg(theta, idx, data):
    X, y = data
    value = 0.0
    grad = np.zeros(theta.shape[0])
    for k in range(idx.shape[0]):
        r = y[idx[k]] - np.dot(X[idx[k]], theta)
        value -= 2.0 * r * r
        grad += 4.0 * r * X[idx[k]]
    return value, grad


@numba.njit
def _prior_vg(theta):
    return -0.5 * np.dot(theta, theta), -theta


def _targets(X, y):
    """The same model written four ways, and the built-in."""
    jax_prior = lambda t: -0.5 * jnp.sum(t * t)  # noqa: E731
    datum = lambda t, x, y: -2.0 * (y - jnp.dot(x, t)) ** 2  # noqa: E731
    batch = lambda t, Xb, yb: -2.0 * jnp.sum((yb - Xb @ t) ** 2)  # noqa: E731
    return {
        "datum": data_target((X, y), dim=X.shape[1], logprior=jax_prior, loglik_datum=datum,
                             numba_logprior=_prior_vg, numba_loglik_datum=_datum_vg),
        "batch": data_target((X, y), dim=X.shape[1], logprior=jax_prior, loglik_batch=batch,
                             numba_logprior=_prior_vg, numba_loglik=_batch_vg),
        "builtin": linear_regression_data(X, y, noise_sd=0.5, prior_sd=1.0),
    }  # fmt: skip


def test_every_form_gives_the_same_values_and_gradients(x64):
    X, y = _data()
    idx = np.array([3, 17, 0, 42, 8], dtype=np.int64)
    theta = np.array([0.3, -0.1, 0.7])
    r = y - X @ theta
    expected_lik = (-2.0 * np.sum(r[idx] ** 2), 4.0 * X[idx].T @ r[idx])
    expected_full = (-2.0 * r @ r - 0.5 * theta @ theta, 4.0 * X.T @ r - theta)
    for name, target in _targets(X, y).items():
        assert {"loglik", "logprior", "value_and_grad"} <= target.capabilities("numba")
        assert {"loglik", "logprior", "value_and_grad"} <= target.capabilities("jax")
        for backend in ("numba", "jax"):
            v, g = target.full_value_and_grad(theta, backend)
            np.testing.assert_allclose(v, expected_full[0], rtol=1e-12, err_msg=name)
            np.testing.assert_allclose(g, expected_full[1], rtol=1e-12, err_msg=name)
        v, g = target.numba_functions["loglik"](theta, idx, target.data)
        np.testing.assert_allclose(v, expected_lik[0], rtol=1e-12)
        np.testing.assert_allclose(g, expected_lik[1], rtol=1e-12)
        form = jax_backend.bind_target(target)
        fns = form.build(form.data)
        v, g = fns[1 + langevin.targets.capabilities.SLOTS.index("loglik")](
            jnp.asarray(theta), jnp.asarray(idx), form.data)  # fmt: skip
        np.testing.assert_allclose(float(v), expected_lik[0], rtol=1e-12)
        np.testing.assert_allclose(np.asarray(g), expected_lik[1], rtol=1e-12)


def test_a_chain_on_a_user_target_agrees_across_backends(x64):
    """SGLD on the per-datum (vmapped, autodiff) form: same noise, same chain."""
    X, y = _data()
    target = _targets(X, y)["datum"]
    kernel = SGLD(0.002, batch_size=6, n_data=50)
    noise = draw_numpy(kernel.noise(3), np.random.default_rng(1), (2, 30))
    init_noise = draw_numpy(kernel.init_noise(3), np.random.default_rng(2), (2,))
    out = []
    for be in (numba_backend, jax_backend):
        p = be.prepare(kernel, target, 3, np.float64)
        s = be.init(p, np.zeros((2, 3)), noise=init_noise)
        out.append(be.run(p, s, 30, np.full(2, 0.002), noise=noise))
    np.testing.assert_allclose(out[0].position, out[1].position, rtol=0, atol=1e-12)


def test_the_data_is_a_runtime_argument_on_both_backends():
    """A second data set of the same shapes compiles nothing: JAX traces the likelihood
    once (counted), Numba adds no loop signature; the JAX runner gets the device arrays as
    an argument (not constants), and the Numba form holds the caller's arrays (no copy)."""
    traces = []

    def batch(t, Xb, yb):
        traces.append(1)
        return -2.0 * jnp.sum((yb - Xb @ t) ** 2)

    def prior(t):
        return -0.5 * jnp.sum(t * t)

    targets = []
    for seed in (0, 1):
        X, y = _data(seed=seed)
        targets.append(data_target((X, y), dim=3, logprior=prior, loglik_batch=batch,
                                   numba_logprior=_prior_vg, numba_loglik=_batch_vg))  # fmt: skip
    kernel = SGLD(0.002, batch_size=5, n_data=50)
    finals = []
    for i, target in enumerate(targets):
        p = jax_backend.prepare(kernel, target, 3, jax_backend.default_float())
        assert p.form.data is target.jax_data() and len(p.form.data) == 2
        s = jax_backend.init(p, np.zeros((2, 3)), keys=jax_backend.chain_keys(0, 2))
        finals.append(jax_backend.run(p, s, 20, np.full(2, 0.002),
                                      keys=jax_backend.chain_keys(1, 2)).position)  # fmt: skip
        if i == 0:
            after_first = len(traces)
    assert after_first > 0 and len(traces) == after_first  # the second data set: no trace
    assert not np.allclose(finals[0], finals[1])  # and it did use the new data
    for target in targets:
        p = numba_backend.prepare(kernel, target, 3, np.float64)
        s = numba_backend.init(p, np.zeros((2, 3)))
        numba_backend.run(p, s, 5, np.full(2, 0.002), rngs=[np.random.default_rng(0)] * 2)
        if target is targets[0]:
            loops = {k: len(v.signatures) for k, v in numba_backend._LOOPS.items()}
    assert {k: len(v.signatures) for k, v in numba_backend._LOOPS.items()} == loops


def test_caller_arrays_are_not_copied():
    X, y = _data()
    X = np.ascontiguousarray(X)
    target = linear_regression_data(X, y)
    assert np.shares_memory(target.data[0], X)


def test_float32_positions_on_jax():
    X, y = _data()
    target = _targets(X, y)["datum"]
    trace = langevin.sample(target, SGLD(0.002, batch_size=5, n_data=50), backend="jax",
                            chains=2, draws=50, warmup=10, seed=0, progress=False,
                            initial_position=np.zeros(3, np.float32))  # fmt: skip
    assert trace.draws.dtype == np.float32 and np.all(np.isfinite(trace.draws))


def test_logistic_data_target_matches_the_full_data_builtin(x64):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 4))
    y = (rng.uniform(size=80) < 1 / (1 + np.exp(-X @ np.ones(4)))).astype(float)
    target = logistic_regression_data(X, y, prior_scale=2.0)
    reference = langevin.targets.logistic_regression(X, y, prior_scale=2.0)
    theta = rng.normal(size=4)
    v_ref, g_ref = reference.numba_value_and_grad(theta, reference.data)
    for backend in ("numba", "jax"):
        v, g = target.full_value_and_grad(theta, backend)
        np.testing.assert_allclose(v, v_ref, rtol=1e-12)
        np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12)


def test_functions_defined_in_a_notebook_cell_work():
    """A user's per-datum functions written in exec'd code (as in a notebook cell)."""
    cell = """
import numba, numpy as np, jax.numpy as jnp
@numba.njit
def datum(theta, x, y):
    r = y - np.dot(x, theta)
    return -0.5 * r * r, r * x
@numba.njit
def prior(theta):
    return -0.5 * np.dot(theta, theta), -theta
target = data_target((X, y), dim=3, logprior=lambda t: -0.5 * jnp.sum(t * t),
                     loglik_datum=lambda t, x, y: -0.5 * (y - jnp.dot(x, t)) ** 2,
                     numba_logprior=prior, numba_loglik_datum=datum)
"""
    X, y = _data()
    scope = {"data_target": data_target, "X": X, "y": y}
    exec(cell, scope)
    for backend in ("numba", "jax"):
        dtype = np.float64 if backend == "numba" else jax_backend.default_float()
        trace = langevin.sample(scope["target"], SGLD(0.002, batch_size=5, n_data=50),
                                backend=backend, chains=1, draws=20, warmup=0, seed=0,
                                progress=False, initial_position=np.zeros(3, dtype))  # fmt: skip
        assert np.all(np.isfinite(trace.draws))


def test_bad_input_is_refused_naming_the_argument():
    X, y = _data()
    with pytest.raises(ValueError, match=r"data\[1\] has 49"):
        data_target((X, y[:-1]), dim=3, numba_logprior=_prior_vg, numba_loglik=_batch_vg)
    with pytest.raises(TypeError, match="numba_loglik must be a numba.njit function"):
        data_target((X, y), dim=3, numba_logprior=_prior_vg, numba_loglik=lambda *a: 0)
    with pytest.raises(TypeError, match="needs both numba_logprior"):
        data_target((X, y), dim=3, numba_loglik=_batch_vg)
    with pytest.raises(TypeError, match="needs a log-likelihood"):
        data_target((X, y), dim=3)
    with pytest.raises(ValueError, match=r"data\[0\] must be finite"):
        data_target((X * np.nan, y), dim=3, numba_logprior=_prior_vg, numba_loglik=_batch_vg)
    with pytest.raises(ValueError, match="noise_sd"):
        linear_regression_data(X, y, noise_sd=0.0)
    with pytest.raises(ValueError, match="y must hold only 0 and 1"):
        logistic_regression_data(X, y)
    with pytest.raises(ValueError, match="n_data"):
        DataTarget(n_data=0, dim=2)
