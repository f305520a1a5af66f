"""A small Bayesian neural network as a data target: a one-hidden-layer classifier.

The model, for inputs ``x ∈ R^p`` and labels ``y ∈ {0, …, K−1}``, with ``H`` hidden units::

    a = W1ᵀ x + b1  (H),   h = tanh(a),   z = W2ᵀ h + b2  (K),
    log p(y | x, θ) = z_y − log Σ_k e^{z_k}            (softmax / categorical likelihood),
    θ = (W1 (p × H), b1 (H), W2 (H × K), b2 (K)) ~ N(0, s² I)

(row-major blocks in that order in the flat position; ``target.names`` names them). The
per-datum gradient is back-propagation written out by hand for Numba:

    ∂/∂z = e_y − softmax(z),      ∂/∂W2 = h (∂/∂z)ᵀ,   ∂/∂b2 = ∂/∂z,
    ∂/∂a = (W2 ∂/∂z) ⊙ (1 − h²),  ∂/∂W1 = x (∂/∂a)ᵀ,   ∂/∂b1 = ∂/∂a,

and JAX differentiates the same log-likelihood written in ``jax.numpy``. The posterior is
multimodal (hidden units can be permuted and their signs flipped), so there is no reference
law: what is checked is predictive accuracy and calibration against the same network
trained by SGD (``benchmarks/sgmcmc_bnn_digits.py``).

:func:`digits_data` gives scikit-learn's bundled handwritten digits (1797 8 × 8 images, 10
classes; BSD-3 licence, the UCI "Optical Recognition of Handwritten Digits" test set)
scaled to ``[0, 1]`` and split at random; :func:`mlp_classifier_data` builds the target;
:func:`mlp_layer_groups` the per-layer groups of structured SG-MCMC.

References:
  Neal, R. M. (1996). *Bayesian Learning for Neural Networks*. Springer.
  Welling, M. and Teh, Y. W. (2011). Bayesian learning via stochastic gradient Langevin
  dynamics. ICML (the stochastic-gradient samplers used on it).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from langevin.targets.data_targets import DataTarget

__all__ = [
    "digits_data",
    "mlp_classifier_data",
    "mlp_init",
    "mlp_layer_groups",
    "mlp_predict_proba",
    "mlp_sizes",
]


def mlp_sizes(n_inputs: int, hidden: int, n_classes: int) -> tuple[int, int, int, int]:
    """Sizes of the blocks ``(W1, b1, W2, b2)`` of the flat position."""
    return n_inputs * hidden, hidden, hidden * n_classes, n_classes


# -- Numba: minibatch value and gradient by hand-written back-propagation ---------------------
@numba.njit(cache=True)
def _mlp_loglik(theta, idx, data):
    """``Σ_{i∈idx} log softmax(z_i)[y_i]`` and its gradient; ``data = (X, y, hyper, layout)``
    with ``layout`` an empty ``(H, K)`` array that carries the layer sizes."""
    X, y, _, layout = data
    p = X.shape[1]
    H, K = layout.shape
    o_b1 = p * H
    o_w2 = o_b1 + H
    o_b2 = o_w2 + H * K
    grad = np.zeros(theta.shape[0])
    a = np.empty(H)
    h = np.empty(H)
    z = np.empty(K)
    dz = np.empty(K)
    value = 0.0
    for k in range(idx.shape[0]):
        i = idx[k]
        # forward
        for u in range(H):
            a[u] = theta[o_b1 + u]
        for j in range(p):  # row-major W1: contiguous inner loop; skip zero inputs
            xij = X[i, j]
            if xij != 0.0:
                for u in range(H):
                    a[u] += xij * theta[j * H + u]
        for u in range(H):
            h[u] = math.tanh(a[u])
        zmax = -np.inf
        for c in range(K):
            t = theta[o_b2 + c]
            for u in range(H):
                t += h[u] * theta[o_w2 + u * K + c]
            z[c] = t
            if t > zmax:
                zmax = t
        total = 0.0
        for c in range(K):
            total += math.exp(z[c] - zmax)
        lse = zmax + math.log(total)
        label = y[i]
        value += z[label] - lse
        # backward
        for c in range(K):
            dz[c] = -math.exp(z[c] - lse)
        dz[label] += 1.0
        for c in range(K):
            grad[o_b2 + c] += dz[c]
        for u in range(H):
            dh = 0.0
            for c in range(K):
                w = o_w2 + u * K + c
                grad[w] += h[u] * dz[c]
                dh += theta[w] * dz[c]
            a[u] = dh * (1.0 - h[u] * h[u])  # a now holds ∂/∂a
            grad[o_b1 + u] += a[u]
        for j in range(p):
            xij = X[i, j]
            if xij != 0.0:
                for u in range(H):
                    grad[j * H + u] += xij * a[u]
    return value, grad


@numba.njit(cache=True)
def _mlp_logprior(theta, data):
    prec = data[2][0]
    return -0.5 * prec * np.dot(theta, theta), -prec * theta


@numba.njit(cache=True)
def _mlp_full(theta, data):
    idx = np.arange(data[0].shape[0])
    v, g = _mlp_loglik(theta, idx, data)
    pv, pg = _mlp_logprior(theta, data)
    return v + pv, g + pg


# -- JAX: the same log-likelihood in jax.numpy (gradients by autodiff) ------------------------
def _mlp_jax_sum(theta, X, y, H, K):
    import jax
    import jax.numpy as jnp

    p = X.shape[1]
    o_b1 = p * H
    o_w2 = o_b1 + H
    o_b2 = o_w2 + H * K
    W1 = theta[:o_b1].reshape(p, H)
    W2 = theta[o_w2:o_b2].reshape(H, K)
    hidden = jnp.tanh(X @ W1 + theta[o_b1:o_w2])
    z = hidden @ W2 + theta[o_b2:]
    picked = jnp.take_along_axis(z, y[:, None], axis=1)[:, 0]
    return jnp.sum(picked - jax.nn.logsumexp(z, axis=1))


def _mlp_jax_loglik(theta, idx, data):
    X, y, _, layout = data
    Xb = X[idx].astype(theta.dtype)
    return _mlp_jax_sum(theta, Xb, y[idx], *layout.shape)


def _mlp_jax_logprior(theta, data):
    prec = data[2].astype(theta.dtype)[0]
    return -0.5 * prec * (theta @ theta)


def _mlp_jax_logdensity(theta, data):
    X, y, _, layout = data
    return _mlp_jax_sum(theta, X.astype(theta.dtype), y, *layout.shape) + _mlp_jax_logprior(
        theta, data
    )


_MLP_JAX = {"loglik": _mlp_jax_loglik, "logprior": _mlp_jax_logprior,
            "logdensity": _mlp_jax_logdensity}  # fmt: skip


# -- builders -----------------------------------------------------------------------------------
def _check_int(argname: str, value: object, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{argname} must be an int >= {least}; got {value!r}")
    return int(value)


def mlp_classifier_data(
    X: np.ndarray,
    y: np.ndarray,
    hidden: int = 32,
    n_classes: int | None = None,
    prior_scale: float = 1.0,
    name: str = "mlp_classifier",
) -> DataTarget:
    """A one-hidden-layer (tanh) softmax classifier with a N(0, prior_scale² I) prior, as a
    data target: minibatch log-likelihood on Numba (hand-written back-propagation) and JAX.

    Args:
        X: inputs ``(n, p)``; y: integer labels ``(n,)`` in ``0..n_classes−1``.
        hidden: H, the number of hidden units.
        n_classes: K (default ``max(y) + 1``).
        prior_scale: s > 0, the prior sd of every weight and bias.

    Returns:
        A :class:`~langevin.targets.data_targets.DataTarget` of dimension
        ``pH + H + HK + K`` with names ``W1 (p, H)``, ``b1``, ``W2 (H, K)``, ``b2`` and a
        random start (:func:`mlp_init`, seed 0).

    Example:
        >>> X = np.random.default_rng(0).normal(size=(50, 4))
        >>> target = mlp_classifier_data(X, (X[:, 0] > 0).astype(int), hidden=3)
        >>> target.dim, target.n_data
        (23, 50)
    """
    X = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must be a non-empty 2-D array (n, p); got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite (no NaN or inf)")
    y_arr = np.asarray(y)
    if y_arr.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X; got {y_arr.shape}")
    if not np.issubdtype(y_arr.dtype, np.integer) and not np.all(y_arr == np.round(y_arr)):
        raise ValueError("y must hold integer class labels")
    y_arr = np.ascontiguousarray(y_arr, dtype=np.int64)
    hidden = _check_int("hidden", hidden, 1)
    if n_classes is None:
        n_classes = int(y_arr.max()) + 1
    n_classes = _check_int("n_classes", n_classes, 2)
    if y_arr.min() < 0 or y_arr.max() >= n_classes:
        raise ValueError(f"y must hold labels in 0..{n_classes - 1}; got {y_arr.min()}.."
                         f"{y_arr.max()}")  # fmt: skip
    prior_scale = float(prior_scale)
    if not (math.isfinite(prior_scale) and prior_scale > 0):
        raise ValueError(f"prior_scale must be a positive finite number; got {prior_scale}")
    n, p = X.shape
    data = (X, y_arr, np.array([1.0 / prior_scale**2]), np.zeros((hidden, n_classes)))
    names = {"W1": (p, hidden), "b1": hidden, "W2": (hidden, n_classes), "b2": n_classes}
    return DataTarget(
        n_data=n, names=names,
        numba={"loglik": _mlp_loglik, "logprior": _mlp_logprior, "value_and_grad": _mlp_full},
        numba_data=data, jax=_MLP_JAX, jax_data=data,
        initial_position=mlp_init(p, hidden, n_classes, seed=0), name=name,
    )  # fmt: skip


def mlp_init(n_inputs: int, hidden: int, n_classes: int, seed: int = 0) -> np.ndarray:
    """A random start: weights ``N(0, 1/fan_in)`` (LeCun), biases 0, in the flat layout."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=n_inputs * hidden) / math.sqrt(n_inputs)
    w2 = rng.normal(size=hidden * n_classes) / math.sqrt(hidden)
    return np.concatenate([w1, np.zeros(hidden), w2, np.zeros(n_classes)])


def mlp_layer_groups(n_inputs: int, hidden: int, n_classes: int) -> tuple[int, ...]:
    """Group ids for structured SG-MCMC by layer: ``(W1, b1)`` is group 0, ``(W2, b2)``
    group 1 (:class:`langevin.kernels.structured_sgmcmc.StructuredSGLD`'s ``groups``)."""
    s1, s2, s3, s4 = mlp_sizes(n_inputs, hidden, n_classes)
    return (0,) * (s1 + s2) + (1,) * (s3 + s4)


def mlp_predict_proba(theta: np.ndarray, X: np.ndarray, hidden: int, n_classes: int,
                      chunk: int = 100) -> np.ndarray:  # fmt: skip
    """Class probabilities ``(m, K)`` averaged over the positions ``theta`` (``(d,)`` or
    ``(draws, d)``): the posterior predictive of the draws (NumPy)."""
    theta = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    X = np.asarray(X, dtype=np.float64)
    p = X.shape[1]
    s1, s2, s3, _ = mlp_sizes(p, hidden, n_classes)
    if theta.shape[1] != sum(mlp_sizes(p, hidden, n_classes)):
        raise ValueError(f"theta has {theta.shape[1]} coordinates; the network needs "
                         f"{sum(mlp_sizes(p, hidden, n_classes))}")  # fmt: skip
    out = np.zeros((X.shape[0], n_classes))
    for k in range(0, theta.shape[0], chunk):
        t = theta[k : k + chunk]
        W1 = t[:, :s1].reshape(-1, p, hidden)
        b1 = t[:, s1 : s1 + s2]
        W2 = t[:, s1 + s2 : s1 + s2 + s3].reshape(-1, hidden, n_classes)
        b2 = t[:, s1 + s2 + s3 :]
        h = np.tanh(np.einsum("mp,dph->dmh", X, W1) + b1[:, None, :])
        z = np.einsum("dmh,dhk->dmk", h, W2) + b2[:, None, :]
        z -= z.max(axis=2, keepdims=True)
        e = np.exp(z)
        out += (e / e.sum(axis=2, keepdims=True)).sum(axis=0)
    return out / theta.shape[0]


def digits_data(test_size: int = 497, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """scikit-learn's handwritten digits (1797 × 64 pixels in 0..16, 10 classes), pixels
    scaled to ``[0, 1]``, split at random into ``(X_train, y_train, X_test, y_test)``
    (``test_size`` test rows; default 1300 train / 497 test). Needs scikit-learn (in the
    ``test`` extra; the data ship with it).

    Example:
        >>> X_train, y_train, X_test, y_test = digits_data()
        >>> X_train.shape, X_test.shape
        ((1300, 64), (497, 64))
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = np.asarray(digits.data, dtype=np.float64) / 16.0
    y = np.asarray(digits.target, dtype=np.int64)
    test_size = _check_int("test_size", test_size, 1)
    if test_size >= len(y):
        raise ValueError(f"test_size must be below {len(y)}; got {test_size}")
    perm = np.random.default_rng(seed).permutation(len(y))
    test, train = np.sort(perm[:test_size]), np.sort(perm[test_size:])
    return (np.ascontiguousarray(X[train]), y[train], np.ascontiguousarray(X[test]),
            y[test])  # fmt: skip
