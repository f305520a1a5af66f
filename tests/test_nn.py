"""Portable MLPs (langevin.nn): one forward pass on NumPy, Numba and JAX; the hand-written input
VJP against JAX's autodiff; saving and loading without pickle; training with optax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from langevin.nn import (
    ACTIVATIONS,
    MLP,
    activation_name,
    jax_twin,
    load_params,
    mlp_apply,
    mlp_init,
    mlp_vjp,
    numba_twin,
    numpy_twin,
    params_to_jax,
    params_to_numpy,
    save_params,
    train,
)

SIZES = (3, 7, 5, 4)


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(3) * 2.0, rng.standard_normal(4)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_forward_agrees_on_numpy_numba_jax(activation, x64):
    """The same output on the three backends (1e-12), equal to a plain NumPy transcription."""
    p = mlp_init(1, SIZES, activation)
    # non-zero biases, so every term of the layer is exercised
    rng = np.random.default_rng(2)
    p = p._replace(biases=tuple(rng.standard_normal(b.shape) for b in p.biases))
    x, _ = _inputs()
    y_np = numpy_twin(mlp_apply)(p, x)
    y_nb = numba_twin(mlp_apply)(p, x)
    y_jx = np.asarray(jax_twin(mlp_apply)(params_to_jax(p), jnp.asarray(x)))
    # an independent transcription of the network
    act = {"tanh": np.tanh, "silu": lambda a: a / (1 + np.exp(-a)),
           "relu": lambda a: np.maximum(a, 0)}[activation]  # fmt: skip
    h = x
    for w, b in zip(p.weights[:-1], p.biases[:-1]):
        h = act(w @ h + b)
    ref = p.weights[-1] @ h + p.biases[-1]
    np.testing.assert_allclose(y_np, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(y_nb, y_np, rtol=0, atol=1e-12)
    np.testing.assert_allclose(y_jx, y_np, rtol=0, atol=1e-12)
    assert activation_name(p) == activation


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_vjp_matches_jax_autodiff(activation, x64):
    p = mlp_init(3, SIZES, activation)
    x, g = _inputs(1)
    pj = params_to_jax(p)
    _, pullback = jax.vjp(lambda z: jax_twin(mlp_apply)(pj, z), jnp.asarray(x))
    ref = np.asarray(pullback(jnp.asarray(g))[0])
    np.testing.assert_allclose(numpy_twin(mlp_vjp)(p, x, g), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(numba_twin(mlp_vjp)(p, x, g), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(jax_twin(mlp_vjp)(pj, jnp.asarray(x), jnp.asarray(g))),
                               ref, rtol=0, atol=1e-12)  # fmt: skip


def test_float32_forward_on_jax():
    """With JAX's default float32 the network computes in float32 (no silent upcast)."""
    p = mlp_init(0, SIZES, "silu")
    x, _ = _inputs()
    pj = params_to_jax(p, jnp.float32)
    y = jax_twin(mlp_apply)(pj, jnp.asarray(x, jnp.float32))
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(y), numpy_twin(mlp_apply)(p, x), rtol=1e-4, atol=1e-5)


def test_save_load_round_trip(tmp_path):
    p = mlp_init(4, SIZES, "relu")
    path = tmp_path / "net.npz"
    save_params(path, p, {"epochs": 3})
    q, meta = load_params(path)
    assert type(q) is MLP and meta == {"epochs": 3}
    for a, b in zip(p.weights + p.biases, q.weights + q.biases):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(q.activation, p.activation)
    # no pickle inside: the file loads with allow_pickle=False and holds only arrays
    with np.load(path, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_load_refuses_other_files(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, a=np.zeros(2))
    with pytest.raises(ValueError, match="save_params"):
        load_params(path)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="activation"):
        mlp_init(0, (2, 3), "sigmoid")
    with pytest.raises(ValueError, match="sizes"):
        mlp_init(0, (2,))
    with pytest.raises(ValueError, match="sizes"):
        mlp_init(0, (2, 0, 1))
    with pytest.raises(ValueError, match="steps"):
        train(lambda p, k: jnp.sum(p[0]), (jnp.zeros(1),), 0)
    with pytest.raises(TypeError, match="loss"):
        train(None, (jnp.zeros(1),), 3)


@pytest.mark.slow
def test_train_fits_a_regression():
    """A least-squares fit of y = sin(x) with a tanh network: the loss falls by 10x and the
    fitted curve is within 0.1 of the truth on the training range."""
    xs = jnp.linspace(-2.0, 2.0, 64)
    ys = jnp.sin(xs)
    apply = jax.vmap(jax_twin(mlp_apply), in_axes=(None, 0))

    def loss(p, key):
        return jnp.mean((apply(p, xs[:, None])[:, 0] - ys) ** 2)

    import optax

    p0 = mlp_init(0, (1, 16, 1), "tanh")
    p, hist = train(loss, p0, 600, optimizer=optax.adam(1e-2), progress=False)
    assert hist.shape == (600,) and hist[-1] < 0.1 * hist[0]
    fitted = np.asarray(apply(p, xs[:, None])[:, 0])
    assert np.max(np.abs(fitted - np.sin(np.asarray(xs)))) < 0.1
    back = params_to_numpy(p)
    assert back.weights[0].dtype == np.float64
    # the activation code is not a weight: training leaves it one-hot (Adam had moved it)
    np.testing.assert_array_equal(np.asarray(p.activation), np.asarray(p0.activation))


def test_ctrl_c_returns_the_parameters_reached(monkeypatch):
    """Ctrl-C during training (as during sampling) warns and keeps what was trained."""
    import jax.random

    fold_in = jax.random.fold_in

    def interrupting(key, t):
        if int(t) == 5:
            raise KeyboardInterrupt
        return fold_in(key, t)

    monkeypatch.setattr(jax.random, "fold_in", interrupting)
    p0 = (jnp.zeros(2),)
    with pytest.warns(RuntimeWarning, match="interrupted after 5 of 100 steps"):
        p, hist = train(lambda p, key: jnp.sum((p[0] - 3.0) ** 2), p0, 100, progress=False)
    assert hist.shape == (5,) and np.all(np.diff(hist) < 0)
    assert np.all(np.asarray(p[0]) > 0)  # five Adam steps towards 3 were kept
