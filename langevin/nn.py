"""Small portable neural networks: multilayer perceptrons written once against ``xp``.

A network here is *kernel math*: its forward pass and its input vector-Jacobian product are
portable functions (:mod:`langevin.backends.portable`), so a network trained on JAX runs
inside compiled Numba loops too (drift networks, denoisers, flow conditioners), and the two
backends compute the same numbers (to rounding: 1e-12 in float64).

**Parameters are a pytree of fixed-shape arrays** (docs/design.md, "Contract 2"): an
:class:`MLP` NamedTuple of a tuple of weight matrices, a tuple of bias vectors and the
activation's one-hot code. On Numba it is typed as a NamedTuple of homogeneous tuples of
C-contiguous float64 arrays (a runtime argument: new weights compile nothing); on JAX it is
a pytree whose leaves are traced. ``jax.tree_util`` maps over it (optax updates it).

The network with ``L`` layers, weights ``W_l`` (``n_{l+1} × n_l``) and biases ``b_l``:

    h_0 = x,   h_{l+1} = σ(W_l h_l + b_l)  (l < L − 1),   y = W_{L−1} h_{L−1} + b_{L−1},

with the activation ``σ`` one of ``tanh``, ``silu`` (``a·s(a)``, ``s`` the logistic
function; Elfwing, Uchibe & Doya 2018; Hendrycks & Gimpel 2016) and ``relu``, the output
layer linear. Its input vector-Jacobian product, for a cotangent ``g`` of the output
(reverse-mode differentiation by hand, so that Numba, which cannot differentiate, can use
gradients through the network):

    ḡ_{L−1} = W_{L−1}ᵀ g,   ḡ_l = W_lᵀ (σ'(a_l) ⊙ ḡ_{l+1}),   (J_x y)ᵀ g = ḡ_0,

with ``a_l = W_l h_l + b_l`` the pre-activations, ``tanh' = 1 − tanh²``,
``silu'(a) = s(a) (1 + a (1 − s(a)))`` and ``relu'(a) = 1[a > 0]``.

Initialisation is Glorot/Xavier uniform for ``tanh`` (Glorot & Bengio 2010) and He uniform
for ``silu``/``relu`` (He et al. 2015); biases start at zero; the last layer's weights are
scaled by ``last_scale`` (small values make a residual network start near the identity).

Parameters are saved without pickle (:func:`save_params`, :func:`load_params`): one ``.npz``
holding the arrays and a JSON description of the pytree's structure. :func:`train` fits
parameters on JAX with optax, given a loss.

References:
    Glorot, X. and Bengio, Y. (2010). Understanding the difficulty of training deep
    feedforward neural networks. AISTATS.
    He, K., Zhang, X., Ren, S. and Sun, J. (2015). Delving deep into rectifiers. ICCV.
    Elfwing, S., Uchibe, E. and Doya, K. (2018). Sigmoid-weighted linear units for neural
    network function approximation in reinforcement learning. Neural Networks 107.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from langevin.backends.portable import make_twin, portable

__all__ = [
    "MLP",
    "ACTIVATIONS",
    "mlp_init",
    "mlp_apply",
    "mlp_vjp",
    "activation_name",
    "save_params",
    "load_params",
    "params_to_numpy",
    "params_to_jax",
    "train",
    "numpy_twin",
    "jax_twin",
    "numba_twin",
]

xp: Any = None  # bound by each backend (langevin.backends.portable)

#: activation name -> its index in :attr:`MLP.activation` (a one-hot code)
ACTIVATIONS: dict[str, int] = {"tanh": 0, "silu": 1, "relu": 2}


class MLP(NamedTuple):
    """The parameters of a multilayer perceptron (a pytree of fixed-shape arrays).

    Attributes:
        weights: ``L`` matrices, ``weights[l]`` of shape ``(n_{l+1}, n_l)``.
        biases: ``L`` vectors, ``biases[l]`` of shape ``(n_{l+1},)``.
        activation: shape ``(3,)``, the one-hot code of the hidden activation in the order
            of :data:`ACTIVATIONS` (``tanh``, ``silu``, ``relu``). A runtime value, so one
            compiled loop serves every activation; σ = Σ_k c_k σ_k costs three elementwise
            maps instead of one, which is small next to the matrix products.
    """

    weights: tuple
    biases: tuple
    activation: Any


# -- portable math -----------------------------------------------------------------------------
@portable
def _logistic(a):
    """``s(a) = 1/(1 + e^{−a})`` without overflow: ``exp(−softplus(−a))``."""
    return xp.exp(-(xp.maximum(-a, 0.0) + xp.log1p(xp.exp(-xp.abs(a)))))


@portable
def _tanh(a):
    """``tanh a = sign(a) (1 − e^{−2|a|}) / (1 + e^{−2|a|})`` (no ``tanh`` in ``xp``)."""
    t = xp.exp(-2.0 * xp.abs(a))
    return xp.sign(a) * (1.0 - t) / (1.0 + t)


@portable
def _activate(code, a):
    """σ(a) = c_0 tanh(a) + c_1 silu(a) + c_2 relu(a) for the one-hot ``code``."""
    return code[0] * _tanh(a) + code[1] * (a * _logistic(a)) + code[2] * xp.maximum(a, 0.0)


@portable
def _activate_derivative(code, a):
    """σ'(a) for the one-hot ``code`` (module docstring)."""
    th = _tanh(a)
    s = _logistic(a)
    relu_d = xp.where(a > 0.0, 1.0, 0.0)
    return code[0] * (1.0 - th * th) + code[1] * (s * (1.0 + a * (1.0 - s))) + code[2] * relu_d


@portable
def mlp_apply(params, x):
    """The network's output ``y(x)`` for one input vector ``x`` (portable).

    Args:
        params: an :class:`MLP`.
        x: shape ``(n_0,)``.

    Returns:
        shape ``(n_L,)``.
    """
    n = len(params.weights)
    h = x + 0.0  # a fresh contiguous vector whatever x's layout (Numba's dot wants one)
    for i in range(n - 1):
        h = _activate(params.activation, xp.dot(params.weights[i], h) + params.biases[i])
    return xp.dot(params.weights[n - 1], h) + params.biases[n - 1]


@portable
def mlp_vjp(params, x, g):
    """The input vector-Jacobian product ``(∂y/∂x)ᵀ g`` at ``x`` (portable; module docstring).

    Args:
        params: an :class:`MLP`.
        x: shape ``(n_0,)``, where the Jacobian is taken.
        g: shape ``(n_L,)``, the cotangent of the output.

    Returns:
        shape ``(n_0,)``.
    """
    n = len(params.weights)
    h = x + 0.0
    pre = [h]  # pre[i + 1]: the pre-activation of hidden layer i
    for i in range(n - 1):
        a = xp.dot(params.weights[i], h) + params.biases[i]
        pre.append(a)
        h = _activate(params.activation, a)
    gh = xp.dot(g + 0.0, params.weights[n - 1])
    for j in range(n - 2, -1, -1):
        ga = gh * _activate_derivative(params.activation, pre[j + 1])
        gh = xp.dot(ga, params.weights[j])
    return gh


# -- construction ------------------------------------------------------------------------------
def _check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(f"sizes must be a sequence of layer widths, e.g. (2, 32, 2); got {sizes!r}")
    sizes = tuple(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output width; got {sizes!r}")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise ValueError(f"sizes must hold positive ints; got {sizes!r}")
    return tuple(int(s) for s in sizes)


def _activation_code(activation: str) -> np.ndarray:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {activation!r}")
    code = np.zeros(len(ACTIVATIONS))
    code[ACTIVATIONS[activation]] = 1.0
    return code


def activation_name(params: MLP) -> str:
    """The name of ``params``' hidden activation (``"tanh"``, ``"silu"`` or ``"relu"``)."""
    k = int(np.argmax(np.asarray(params.activation)))
    return next(name for name, i in ACTIVATIONS.items() if i == k)


def mlp_init(
    seed: int | np.random.Generator,
    sizes: Sequence[int],
    activation: str = "tanh",
    *,
    last_scale: float = 1.0,
) -> MLP:
    """Random parameters of an MLP with layer widths ``sizes`` (float64 NumPy arrays).

    Args:
        seed: an int seed or a ``numpy.random.Generator``.
        sizes: ``(n_0, n_1, …, n_L)``: input width, hidden widths, output width.
        activation: ``"tanh"`` (Glorot uniform), ``"silu"`` or ``"relu"`` (He uniform).
        last_scale: factor on the last layer's weights (0 makes the output start at the
            bias: zero).

    Returns:
        An :class:`MLP`; use it on Numba as is, on JAX after :func:`params_to_jax` (or
        ``jnp.asarray`` leaves: any pytree map).

    Example:
        >>> import numpy as np
        >>> from langevin.nn import mlp_init, mlp_apply, numpy_twin
        >>> p = mlp_init(0, (3, 16, 2), "silu")
        >>> numpy_twin(mlp_apply)(p, np.ones(3)).shape
        (2,)
    """
    sizes = _check_sizes(sizes)
    code = _activation_code(activation)
    if isinstance(last_scale, bool) or not isinstance(last_scale, (int, float)):
        raise TypeError(f"last_scale must be a float; got {last_scale!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    weights, biases = [], []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        if activation == "tanh":
            bound = np.sqrt(6.0 / (n_in + n_out))
        else:
            bound = np.sqrt(6.0 / n_in)
        w = rng.uniform(-bound, bound, size=(n_out, n_in))
        if i == len(sizes) - 2:
            w = w * float(last_scale)
        weights.append(np.ascontiguousarray(w, dtype=np.float64))
        biases.append(np.zeros(n_out))
    return MLP(tuple(weights), tuple(biases), code)


# -- twins (direct use outside kernels) --------------------------------------------------------
_TWINS: dict[str, dict] = {"numpy": {}, "jax": {}, "numba": {}}


def numpy_twin(fn: Callable) -> Callable:
    """The plain-NumPy twin of a portable function (tests, host-side evaluation)."""
    from langevin.backends import numpy_ops

    return make_twin(fn, numpy_ops, lambda f: f, _TWINS["numpy"])


def jax_twin(fn: Callable) -> Callable:
    """The JAX twin of a portable function (traceable: ``jax.jit``, ``jax.vmap``, ``grad``)."""
    from langevin.backends import jax_ops

    return make_twin(fn, jax_ops, lambda f: f, _TWINS["jax"])


def numba_twin(fn: Callable) -> Callable:
    """The Numba twin of a portable function (``njit``; cached on disk by content when its
    code lives in a file: code from a notebook cell or ``exec`` compiles once per process,
    since Numba's disk cache needs a source file to key on)."""
    import numba

    from langevin.backends import numba_ops

    def compile_fn(f: Callable) -> Callable:
        return numba.njit(cache=os.path.isfile(f.__code__.co_filename))(f)

    return make_twin(fn, numba_ops, compile_fn, _TWINS["numba"])


# -- pytrees: conversion, saving, loading ------------------------------------------------------
def _map_leaves(tree: Any, fn: Callable) -> Any:
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_map_leaves(c, fn) for c in tree))
    if isinstance(tree, (tuple, list)):
        return tuple(_map_leaves(c, fn) for c in tree)
    return fn(tree)


def params_to_numpy(params: Any) -> Any:
    """Every leaf as a C-contiguous NumPy array (float leaves float64, integer ones int64): the
    form the Numba backend takes."""

    def leaf(a):
        a = np.asarray(a)
        dtype = np.int64 if np.issubdtype(a.dtype, np.integer) else np.float64
        return np.ascontiguousarray(a, dtype=dtype)

    return _map_leaves(params, leaf)


def params_to_jax(params: Any, dtype: Any = None) -> Any:
    """Every leaf as a JAX array; float leaves in ``dtype`` (default: JAX's default float,
    float32 unless x64 is on), integer leaves in JAX's default int."""
    import jax.numpy as jnp

    fdtype = jnp.zeros(()).dtype if dtype is None else dtype

    def leaf(a):
        a = np.asarray(a)
        if np.issubdtype(a.dtype, np.integer):
            return jnp.asarray(a.astype(jnp.zeros((), int).dtype))
        return jnp.asarray(a, dtype=fdtype)

    return _map_leaves(params, leaf)


def _structure(tree: Any, leaves: list) -> dict:
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        cls = type(tree)
        return {
            "kind": "namedtuple",
            "module": cls.__module__,
            "name": cls.__qualname__,
            "fields": list(tree._fields),
            "children": [_structure(c, leaves) for c in tree],
        }
    if isinstance(tree, (tuple, list)):
        return {"kind": "tuple", "children": [_structure(c, leaves) for c in tree]}
    a = np.asarray(tree)
    if a.dtype == object:
        raise TypeError(f"params leaves must be numeric arrays; got {type(tree).__name__}")
    leaves.append(a)
    return {"kind": "array", "index": len(leaves) - 1}


def _rebuild(node: dict, arrays: Any) -> Any:
    kind = node.get("kind")
    if kind == "array":
        return np.ascontiguousarray(arrays[f"leaf_{node['index']}"])
    children = [_rebuild(c, arrays) for c in node["children"]]
    if kind == "tuple":
        return tuple(children)
    if kind == "namedtuple":
        cls = None
        if str(node["module"]).split(".")[0] == "langevin":  # only the package's own classes
            try:
                cls = getattr(importlib.import_module(node["module"]), node["name"])
            except (ImportError, AttributeError):
                cls = None
        if cls is None or not (isinstance(cls, type) and getattr(cls, "_fields", None)
                               == tuple(node["fields"])):  # fmt: skip
            from collections import namedtuple

            cls = namedtuple(str(node["name"]).split(".")[-1], node["fields"])
        return cls(*children)
    raise ValueError(f"unknown node kind {kind!r} in the saved structure")


def save_params(path: str | os.PathLike, params: Any, metadata: dict | None = None) -> None:
    """Save a pytree of arrays (nested NamedTuples and tuples) to ``path`` (``.npz``) without
    pickle: the leaves as ``leaf_<i>`` arrays, the structure and ``metadata`` (any JSON
    value) as JSON text in the same file.

    Example:
        >>> import os, tempfile
        >>> from langevin.nn import mlp_init, save_params, load_params
        >>> p = mlp_init(0, (2, 8, 1))
        >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
        >>> save_params(path, p, {"note": "demo"})
        >>> q, meta = load_params(path)
        >>> bool((q.weights[0] == p.weights[0]).all()), meta["note"]
        (True, 'demo')
    """
    leaves: list = []
    structure = _structure(params, leaves)
    record = json.dumps({"format": "langevin-params-1", "structure": structure,
                         "metadata": metadata})  # fmt: skip
    arrays = {f"leaf_{i}": np.asarray(a) for i, a in enumerate(leaves)}
    arrays["__structure__"] = np.frombuffer(record.encode("utf-8"), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load_params(path: str | os.PathLike) -> tuple[Any, Any]:
    """Load what :func:`save_params` wrote: ``(params, metadata)``. The package's own
    NamedTuple classes are rebuilt as themselves, others as plain namedtuples with the same
    fields; no pickle is read (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as arrays:
        if "__structure__" not in arrays:
            raise ValueError(f"{os.fspath(path)!r} was not written by save_params")
        record = json.loads(bytes(arrays["__structure__"]).decode("utf-8"))
        if record.get("format") != "langevin-params-1":
            raise ValueError(f"{os.fspath(path)!r}: unknown format {record.get('format')!r}")
        params = _rebuild(record["structure"], arrays)
    return params, record.get("metadata")


# -- training on JAX ---------------------------------------------------------------------------
def train(
    loss: Callable,
    params: Any,
    steps: int,
    *,
    optimizer: Any = None,
    seed: int = 0,
    progress: bool = True,
    description: str = "training",
) -> tuple[Any, np.ndarray]:
    """Minimise ``loss(params, key)`` over ``params`` with optax, on JAX. Every float leaf is
    trained except the activation codes of :class:`MLP` nodes, which stay as given.

    Args:
        loss: ``loss(params, key) -> scalar``, a JAX function (the key gives the step's
            randomness: a minibatch, base draws for a reverse KL).
        params: the starting pytree (NumPy leaves are converted with :func:`params_to_jax`).
        steps: the number of optimiser steps.
        optimizer: an optax ``GradientTransformation`` (default ``optax.adam(1e-3)``).
        seed: seeds the keys passed to ``loss`` (step ``t`` gets ``fold_in(key, t)``).
        progress: show a tqdm progress bar with the running loss.
        description: the progress bar's label.

    Returns:
        ``(params, history)``: the trained parameters (JAX arrays; :func:`params_to_numpy`
        gives the Numba form) and the loss at every step (NumPy, float64). Interrupted by
        Ctrl-C, it warns and returns the parameters reached and the steps' losses so far.

    Example:
        >>> import jax.numpy as jnp
        >>> from langevin.nn import train
        >>> p, hist = train(lambda p, key: jnp.sum((p[0] - 3.0) ** 2), (jnp.zeros(2),), 200,
        ...                 progress=False)  # doctest: +SKIP
        >>> bool(hist[-1] < hist[0])  # doctest: +SKIP
        True

        (Run by ``tests/test_nn.py`` and through the flow fits of ``tests/test_flows.py``.)
    """
    import jax
    import optax

    if not callable(loss):
        raise TypeError(f"loss must be callable: loss(params, key) -> scalar; got {loss!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive int; got {steps!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int; got {seed!r}")
    if optimizer is None:
        optimizer = optax.adam(1e-3)
    elif not hasattr(optimizer, "init") or not hasattr(optimizer, "update"):
        raise TypeError(f"optimizer must be an optax GradientTransformation; got {optimizer!r}")
    params = _map_leaves(params, lambda a: a if isinstance(a, jax.Array) else
                         params_to_jax(np.asarray(a)))  # fmt: skip
    opt_state = optimizer.init(params)

    def frozen(grads):
        # an MLP's activation code is a float leaf (a runtime value) but not a weight
        return jax.tree_util.tree_map(
            lambda n: n._replace(activation=0.0 * n.activation) if isinstance(n, MLP) else n,
            grads, is_leaf=lambda n: isinstance(n, MLP))  # fmt: skip

    @jax.jit
    def update(p, s, key):
        value, grads = jax.value_and_grad(loss)(p, key)
        updates, s = optimizer.update(frozen(grads), s, p)
        return optax.apply_updates(p, updates), s, value

    base = jax.random.PRNGKey(int(seed))
    history = np.empty(int(steps))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(steps), desc=description, leave=False)
    done = 0
    try:
        for t in range(int(steps)):
            params, opt_state, value = update(params, opt_state, jax.random.fold_in(base, t))
            history[t] = float(value)
            done = t + 1
            if bar is not None:
                bar.update(1)
                if t % 20 == 0 or t == steps - 1:
                    bar.set_postfix(loss=f"{history[t]:.4g}")
    except KeyboardInterrupt:  # as sample(): Ctrl-C keeps what was reached
        warnings.warn(f"training interrupted after {done} of {int(steps)} steps; returning "
                      "the parameters reached and their loss history", RuntimeWarning,
                      stacklevel=2)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    return params, history[:done]
