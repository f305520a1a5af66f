"""Data targets: a log-prior and a per-datum log-likelihood over a data set held as arrays.

A Bayesian posterior over ``n`` data points ``d_1, …, d_n``,

    log π(θ) = log p(θ) + Σ_{i=1}^{n} log p(d_i | θ)          (up to a constant),

is what stochastic-gradient kernels (:mod:`langevin.kernels.sgmcmc`) sample. They never
evaluate the full sum: each step draws minibatch indices ``B`` (the kernel's ``Index`` noise,
drawn identically by both backends) and calls the target's ``loglik`` capability,
``Σ_{i∈B} log p(d_i | θ)`` and its gradient, then rescales by ``n/|B|``.

A :class:`DataTarget` provides

* ``loglik(x, idx)``: the minibatch sum and its gradient,
* ``logprior(x)``: ``log p(θ)`` and its gradient,
* ``value_and_grad(x)``: the full-data log posterior (so full-batch kernels — ULA, MALA,
  HMC — run on the same object, e.g. for a reference, and :func:`find_mode` can use it).

**The data is an argument, never a constant.** On Numba the data tuple is the ``data``
argument of the compiled loop (one copy, shared by every chain); on JAX it is converted once
to device arrays and passed to the jitted chunk runner as a traced argument, so neither
backend bakes it into compiled code, a new data set of the same shapes compiles nothing,
and no chain holds a copy. A step touches only the ``|B|`` rows it gathers.

Build one with :func:`data_target` from

* JAX: ``loglik_datum(theta, *row) -> scalar`` for one datum (``row`` = the i-th entry of
  each data array); it is ``vmap``-ed over the minibatch and differentiated by JAX. Or
  ``loglik_batch(theta, *rows) -> scalar``, the minibatch sum written directly (faster when
  it is a matrix product);
* Numba (which cannot differentiate): ``numba_loglik_datum(theta, *row) -> (float, grad)``,
  or the minibatch ``numba_loglik(theta, idx, data) -> (float, grad)`` that reads the rows
  ``data[k][idx[j]]`` itself and allocates only its gradient (the fastest form).

Built-ins: :func:`linear_regression_data` (conjugate: exact posterior in
``target.reference``) and :func:`logistic_regression_data`.

Memory: the Numba form holds the arrays given (C-contiguous float64/int64; no copy when
they already are); the JAX form makes one device copy, per float precision, the first time
the target is used on JAX (``jax_enable_x64`` decides float32 or float64).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numba
import numpy as np

from langevin.targets.base import Reference, Target
from langevin.targets.capabilities import BASE_FORM, SLOTS, TargetForm

__all__ = [
    "DataTarget",
    "data_target",
    "linear_regression_data",
    "logistic_regression_data",
    "linear_regression_posterior",
]

_JAX_FORM_KEY = ("jax-form",)


class _JaxFormCache(dict):
    """The target's cache, building the JAX form on first use, once per float precision.

    ``jax_backend.bind_target`` looks up ``("jax-form",)`` in ``target._cache``; a data
    target answers with a form whose data (the device arrays) is a traced argument of the
    compiled runner, instead of constants closed over by the target's functions.
    """

    def __init__(self, builder: Callable[[], TargetForm]):
        super().__init__()
        self._builder = builder
        self._forms: dict = {}

    def __contains__(self, key: object) -> bool:
        return key == _JAX_FORM_KEY or dict.__contains__(self, key)

    def __getitem__(self, key: Any) -> Any:
        if key == _JAX_FORM_KEY:
            import jax

            wide = jax.dtypes.canonicalize_dtype(np.float64) == np.float64
            if wide not in self._forms:
                self._forms[wide] = self._builder()
            return self._forms[wide]
        return dict.__getitem__(self, key)


def _as_data_tuple(data: Any, argname: str) -> tuple[np.ndarray, ...]:
    """``data`` as a tuple of C-contiguous float64 / int64 arrays with one common length."""
    if isinstance(data, np.ndarray):
        data = (data,)
    if not isinstance(data, (tuple, list)) or not data:
        raise TypeError(f"{argname} must be an array or a non-empty tuple of arrays; got "
                        f"{type(data).__name__}")  # fmt: skip
    out = []
    for k, a in enumerate(data):
        a = np.asarray(a)
        if a.ndim < 1:
            raise ValueError(f"{argname}[{k}] must have a leading data axis; got a scalar")
        if np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
            a = np.ascontiguousarray(a, dtype=np.int64)
        elif np.issubdtype(a.dtype, np.floating):
            a = np.ascontiguousarray(a, dtype=np.float64)
        else:
            raise TypeError(f"{argname}[{k}] must hold numbers; got dtype {a.dtype}")
        if not _all_finite(a):
            raise ValueError(f"{argname}[{k}] must be finite (no NaN or inf)")
        out.append(a)
    n = out[0].shape[0]
    for k, a in enumerate(out):
        if a.shape[0] != n:
            raise ValueError(
                f"{argname}: every array needs the same number of rows (data points); "
                f"{argname}[0] has {n}, {argname}[{k}] has {a.shape[0]}"
            )
    if n < 1:
        raise ValueError(f"{argname} has no data points")
    return tuple(out)


class DataTarget(Target):
    """A posterior over a data set: ``log p(θ) + Σ_i log p(d_i | θ)`` with minibatch access.

    Usually built by :func:`data_target` or a built-in; this constructor takes the backend
    functions already in their final form (each takes the data tuple as its last argument).

    Args:
        n_data: the number of data points ``n``.
        dim, names: the position's size / parameter names (see :class:`Target`).
        numba: ``{"loglik": f(x, idx, data) -> (float, grad), "logprior": f(x, data) ->
            (float, grad), "value_and_grad": f(x, data) -> (float, grad)}`` (``numba.njit``).
        numba_data: the Numba functions' data (a tuple of arrays).
        jax: ``{"loglik": f(x, idx, data) -> scalar, "logprior": f(x, data) -> scalar,
            "logdensity": f(x, data) -> scalar}``; gradients by autodiff.
        jax_data: the JAX functions' data (a tuple of NumPy arrays, converted on first use).
    """

    def __init__(
        self,
        *,
        n_data: int,
        dim: int | None = None,
        names: Mapping[str, int | tuple[int, ...]] | None = None,
        numba: Mapping[str, Callable] | None = None,
        numba_data: Any = None,
        jax: Mapping[str, Callable] | None = None,
        jax_data: Any = None,
        initial_position: np.ndarray | None = None,
        reference: Reference | None = None,
        name: str = "data_target",
    ) -> None:
        if isinstance(n_data, bool) or not isinstance(n_data, (int, np.integer)) or n_data < 1:
            raise ValueError(f"n_data must be a positive int; got {n_data!r}")
        jax = dict(jax or {})
        for need in ("loglik", "logprior", "logdensity"):
            if jax and need not in jax:
                raise TypeError(f"DataTarget: jax functions need {need!r}")
        # The Python-level JAX view (capabilities, has_jax): closures over the data. The
        # backend never calls these; it uses the form built by _jax_form.
        views = {}
        if jax:
            views = {
                "loglik": _bind_last(jax["loglik"], self, "loglik"),
                "logprior": _bind_last(jax["logprior"], self, "logprior"),
                "value_and_grad": _bind_last(jax["logdensity"], self, "value_and_grad"),
            }
        super().__init__(
            dim=dim, names=names, numba=numba, jax=views, data=numba_data,
            initial_position=initial_position, reference=reference, name=name,
        )  # fmt: skip
        self.n_data = int(n_data)
        self._jax_given = jax
        self._jax_data_np = jax_data
        self._cache = _JaxFormCache(self._jax_form)

    # -- the JAX form: data as a traced argument --------------------------------------------
    def _jax_form(self) -> TargetForm:
        import jax

        functions = _jax_wrappers(self._jax_given)
        # device_put: one copy owned by the device. jnp.asarray aliases the NumPy buffer on
        # the CPU, and the first compiled call then copied it again: a transient second
        # copy of the whole data set (7.4 GB above the arrays at 10⁷ × 50 instead of 3.7).
        data = jax.tree_util.tree_map(jax.device_put, self._jax_data_np)
        return TargetForm(
            key=("jax", functions),
            data=data,
            build=lambda d: (BASE_FORM, *functions, d),
            numba_type=None,
            capabilities=self.capabilities("jax"),
        )

    def jax_data(self):
        """The device arrays the JAX form passes to compiled code (built on first use)."""
        return self._cache[_JAX_FORM_KEY].data

    # -- host-side helpers (mode search, references, tests) ---------------------------------
    def full_loglik(self, x: np.ndarray, backend: str | None = None) -> tuple[float, np.ndarray]:
        """``(Σ_i log p(d_i | x), its gradient)`` over all the data, evaluated on the host."""
        backend = self._host_backend(backend)
        x = np.ascontiguousarray(x, dtype=np.float64)
        if backend == "numba":
            idx = np.arange(self.n_data, dtype=np.int64)
            v, g = self.numba_functions["loglik"](x, idx, self.data)
            return float(v), np.asarray(g)
        import jax.numpy as jnp

        form = self._cache[_JAX_FORM_KEY]
        fn = form.build(form.data)[1 + SLOTS.index("loglik")]
        xj = jnp.asarray(x)
        v, g = fn(xj, jnp.arange(self.n_data), form.data)
        return float(v), np.asarray(g, dtype=np.float64)

    def full_value_and_grad(self, x: np.ndarray, backend: str | None = None):
        """``(log π(x), ∇log π(x))`` over all the data, evaluated on the host."""
        backend = self._host_backend(backend)
        x = np.ascontiguousarray(x, dtype=np.float64)
        if backend == "numba":
            v, g = self.numba_functions["value_and_grad"](x, self.data)
            return float(v), np.asarray(g)
        import jax.numpy as jnp

        form = self._cache[_JAX_FORM_KEY]
        fn = form.build(form.data)[1 + SLOTS.index("value_and_grad")]
        v, g = fn(jnp.asarray(x), form.data)
        return float(v), np.asarray(g, dtype=np.float64)

    def _host_backend(self, backend: str | None) -> str:
        if backend is None:
            return "numba" if self.has_numba else "jax"
        if backend not in ("numba", "jax"):
            raise ValueError(f"backend must be 'numba' or 'jax'; got {backend!r}")
        if (backend == "numba" and not self.has_numba) or (backend == "jax" and not self.has_jax):
            raise TypeError(f"{self!r} has no {backend} form")
        return backend

    def __repr__(self) -> str:
        forms = [f for f, ok in (("jax", self.has_jax), ("numba", self.has_numba)) if ok]
        return f"DataTarget({self.name!r}, dim={self.dim}, n_data={self.n_data}, backends={forms})"


_WRAPPERS: dict = {}


def _jax_wrappers(given: Mapping[str, Callable]) -> tuple:
    """The JAX form's function slots, memoised on the given functions: targets made of the
    same functions share one form key, hence one compiled runner, whatever their data."""
    key = tuple(given[n] for n in ("loglik", "logprior", "logdensity"))
    if key not in _WRAPPERS:
        import jax

        fns = {
            "loglik": jax.value_and_grad(given["loglik"], argnums=0),
            "logprior": jax.value_and_grad(given["logprior"], argnums=0),
            "logdensity": given["logdensity"],
            "grad": jax.grad(given["logdensity"], argnums=0),
            "value_and_grad": jax.value_and_grad(given["logdensity"], argnums=0),
        }
        _WRAPPERS[key] = tuple(fns.get(n) for n in SLOTS)
    return _WRAPPERS[key]


def _bind_last(fn: Callable, target: DataTarget, label: str) -> Callable:
    """``fn`` with the target's JAX data bound as its last argument (a user-level view)."""

    def view(x, *args):
        import jax

        data = target.jax_data()
        if label == "value_and_grad":
            return jax.value_and_grad(fn)(x, data)
        if label in ("loglik", "logprior"):
            return jax.value_and_grad(fn)(x, *args, data)
        return fn(x, *args, data)

    view.__name__ = label
    return view


# -- the user-level constructor ---------------------------------------------------------------
_NUMBA_WRAPPERS: dict = {}


def _memo(kind: str, *key: Any):
    """Memoise the generated Numba wrappers on the user's functions: a target rebuilt from
    the same functions (new data) reuses their compiled code."""

    def wrap(make: Callable) -> Callable:
        full = (kind, *key)
        if full not in _NUMBA_WRAPPERS:
            _NUMBA_WRAPPERS[full] = make(*key)
        return _NUMBA_WRAPPERS[full]

    return wrap


def _numba_from_datum(datum: Callable, n_arrays: int) -> Callable:
    """A Numba minibatch ``loglik(x, idx, data)`` summing ``datum(x, *row)`` over ``idx``."""
    return _memo("datum", datum, n_arrays)(_make_numba_from_datum)


def _make_numba_from_datum(datum: Callable, n_arrays: int) -> Callable:
    row = ", ".join(f"data[{k}][i]" for k in range(n_arrays))
    src = (
        "def loglik(x, idx, data):\n"
        "    value = 0.0\n"
        "    grad = np.zeros(x.shape[0])\n"
        "    for k in range(idx.shape[0]):\n"
        "        i = idx[k]\n"
        f"        v, g = datum(x, {row})\n"
        "        value += v\n"
        "        for j in range(x.shape[0]):\n"
        "            grad[j] += g[j]\n"
        "    return value, grad\n"
    )
    scope = {"np": np, "datum": datum}
    exec(src, scope)
    return numba.njit(scope["loglik"])


def _numba_prior(prior: Callable) -> Callable:
    return _memo("prior", prior)(_make_numba_prior)


def _make_numba_prior(prior: Callable) -> Callable:
    @numba.njit
    def logprior(x, data):
        return prior(x)

    return logprior


def _numba_full(loglik: Callable, prior: Callable) -> Callable:
    return _memo("full", loglik, prior)(_make_numba_full)


def _make_numba_full(loglik: Callable, prior: Callable) -> Callable:
    @numba.njit
    def value_and_grad(x, data):
        idx = np.arange(data[0].shape[0])
        v, g = loglik(x, idx, data)
        pv, pg = prior(x, data)
        return v + pv, g + pg

    return value_and_grad


def _jax_cast(a, dtype):
    import jax.numpy as jnp

    return a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a


_JAX_FUNCTIONS: dict = {}


def _jax_functions(loglik_datum, loglik_batch, logprior):
    """The JAX ``loglik(x, idx, data)``, ``logprior(x, data)`` and ``logdensity(x, data)``
    (memoised on the user's functions, so that equal functions give one form key)."""
    key = (loglik_datum, loglik_batch, logprior)
    if key not in _JAX_FUNCTIONS:
        _JAX_FUNCTIONS[key] = _make_jax_functions(loglik_datum, loglik_batch, logprior)
    return _JAX_FUNCTIONS[key]


def _make_jax_functions(loglik_datum, loglik_batch, logprior):

    def batch_sum(x, rows):
        import jax
        import jax.numpy as jnp

        rows = tuple(_jax_cast(r, x.dtype) for r in rows)  # only the gathered rows are cast
        if loglik_batch is not None:
            return loglik_batch(x, *rows)
        per_datum = jax.vmap(loglik_datum, in_axes=(None,) + (0,) * len(rows))(x, *rows)
        return jnp.sum(per_datum)

    def loglik(x, idx, data):
        return batch_sum(x, tuple(r[idx] for r in data))

    def prior(x, data):
        return logprior(x)

    def logdensity(x, data):
        return logprior(x) + batch_sum(x, data)

    return {"loglik": loglik, "logprior": prior, "logdensity": logdensity}


def data_target(
    data: Any,
    *,
    dim: int | None = None,
    names: Mapping[str, int | tuple[int, ...]] | None = None,
    logprior: Callable | None = None,
    loglik_datum: Callable | None = None,
    loglik_batch: Callable | None = None,
    numba_logprior: Callable | None = None,
    numba_loglik_datum: Callable | None = None,
    numba_loglik: Callable | None = None,
    initial_position: np.ndarray | None = None,
    reference: Reference | None = None,
    name: str = "data_target",
) -> DataTarget:
    """A posterior ``log p(θ) + Σ_i log p(d_i | θ)`` over a data set held as arrays.

    Args:
        data: an array or a tuple of arrays with a common leading axis of length ``n`` (the
            data points); row ``i`` of each array is datum ``i``. Held once (C-contiguous
            float64 / int64; no copy when already so), shared by every chain.
        dim, names: the parameter's size (or names and shapes, see :class:`Target`).
        logprior: JAX ``logprior(theta) -> scalar``.
        loglik_datum: JAX ``loglik_datum(theta, *row) -> scalar``, the log-likelihood of one
            datum (``row[k]`` = ``data[k][i]``); vmapped over the minibatch, gradient by JAX.
        loglik_batch: JAX ``loglik_batch(theta, *rows) -> scalar``, the *sum* over the rows
            given (instead of ``loglik_datum``; e.g. with a matrix product).
        numba_logprior: ``numba.njit`` ``logprior(theta) -> (float, grad)``.
        numba_loglik_datum: ``numba.njit`` ``f(theta, *row) -> (float, grad)`` for one datum.
        numba_loglik: ``numba.njit`` ``f(theta, idx, data) -> (float, grad)``, the sum over
            the rows ``idx`` (instead of ``numba_loglik_datum``; it allocates nothing per
            datum). ``data`` is the tuple of arrays.
        initial_position, reference, name: as for :class:`Target`.

    Returns:
        A :class:`DataTarget` with the capabilities ``loglik``, ``logprior`` and the
        full-data ``value_and_grad`` on each backend whose functions were given.

    Example:
        >>> import numpy as np, numba, jax.numpy as jnp
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(1000, 3))
        >>> y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=1000)
        >>> @numba.njit
        ... def datum_vg(theta, x, y):          # log N(y; xᵀθ, 1) and its gradient
        ...     r = y - np.dot(x, theta)
        ...     return -0.5 * r * r, r * x
        >>> @numba.njit
        ... def prior_vg(theta):
        ...     return -0.5 * np.dot(theta, theta), -theta
        >>> target = data_target(
        ...     (X, y), dim=3,
        ...     logprior=lambda t: -0.5 * jnp.sum(t * t),
        ...     loglik_datum=lambda t, x, y: -0.5 * (y - jnp.dot(x, t)) ** 2,
        ...     numba_logprior=prior_vg, numba_loglik_datum=datum_vg)
        >>> target.n_data
        1000
    """
    arrays = _as_data_tuple(data, "data")
    n = arrays[0].shape[0]
    if loglik_datum is not None and loglik_batch is not None:
        raise TypeError("give loglik_datum= or loglik_batch=, not both")
    if numba_loglik_datum is not None and numba_loglik is not None:
        raise TypeError("give numba_loglik_datum= or numba_loglik=, not both")
    has_jax_lik = loglik_datum is not None or loglik_batch is not None
    has_numba_lik = numba_loglik_datum is not None or numba_loglik is not None
    if has_jax_lik != (logprior is not None):
        raise TypeError("the JAX form needs both logprior= and loglik_datum= (or loglik_batch=)")
    if has_numba_lik != (numba_logprior is not None):
        raise TypeError(
            "the Numba form needs both numba_logprior= and numba_loglik_datum= (or numba_loglik=)"
        )
    if not (has_jax_lik or has_numba_lik):
        raise TypeError(
            "data_target needs a log-likelihood: loglik_datum= (JAX) and/or "
            "numba_loglik_datum= / numba_loglik= (Numba), each with its log-prior"
        )
    for argname, fn in (("logprior", logprior), ("loglik_datum", loglik_datum),
                        ("loglik_batch", loglik_batch)):  # fmt: skip
        if fn is not None and not callable(fn):
            raise TypeError(f"{argname} must be callable; got {type(fn).__name__}")
    numba_fns = None
    if has_numba_lik:
        from numba.core.registry import CPUDispatcher

        for argname, fn in (("numba_logprior", numba_logprior),
                            ("numba_loglik_datum", numba_loglik_datum),
                            ("numba_loglik", numba_loglik)):  # fmt: skip
            if fn is not None and not isinstance(fn, CPUDispatcher):
                raise TypeError(f"{argname} must be a numba.njit function; got "
                                f"{type(fn).__name__}")  # fmt: skip
        lik = numba_loglik or _numba_from_datum(numba_loglik_datum, len(arrays))
        prior = _numba_prior(numba_logprior)
        numba_fns = {"loglik": lik, "logprior": prior, "value_and_grad": _numba_full(lik, prior)}
    jax_fns = _jax_functions(loglik_datum, loglik_batch, logprior) if has_jax_lik else None
    return DataTarget(
        n_data=n, dim=dim, names=names, numba=numba_fns, numba_data=arrays if numba_fns else None,
        jax=jax_fns, jax_data=arrays if jax_fns else None, initial_position=initial_position,
        reference=reference, name=name,
    )  # fmt: skip


# -- built-in: conjugate linear regression -----------------------------------------------------
@numba.njit(cache=True)
def _linreg_loglik(theta, idx, data):
    """``Σ_{i∈idx} −(y_i − x_iᵀθ)² / (2σ²)`` and its gradient; ``data = (X, y, hyper)``."""
    X, y, hyper = data
    inv_var = hyper[0]
    d = theta.shape[0]
    value = 0.0
    grad = np.zeros(d)
    for k in range(idx.shape[0]):
        i = idx[k]
        r = y[i]
        for j in range(d):
            r -= X[i, j] * theta[j]
        value -= 0.5 * inv_var * r * r
        s = inv_var * r
        for j in range(d):
            grad[j] += s * X[i, j]
    return value, grad


@numba.njit(cache=True)
def _linreg_logprior(theta, data):
    """``−½ (θ − μ0)ᵀ Λ0 (θ − μ0)`` with ``Λ0 = hyper[1]·I`` and ``μ0 = hyper[2:]``."""
    hyper = data[2]
    prec = hyper[1]
    d = theta.shape[0]
    value = 0.0
    grad = np.empty(d)
    for j in range(d):
        diff = theta[j] - hyper[2 + j]
        value -= 0.5 * prec * diff * diff
        grad[j] = -prec * diff
    return value, grad


@numba.njit(cache=True)
def _linreg_full(theta, data):
    idx = np.arange(data[0].shape[0])
    v, g = _linreg_loglik(theta, idx, data)
    pv, pg = _linreg_logprior(theta, data)
    return v + pv, g + pg


def _cast_all(data, dtype):
    return tuple(_jax_cast(a, dtype) for a in data)


def _linreg_jax_loglik(theta, idx, data):
    X, y, hyper = data
    Xb, yb, hyper = _cast_all((X[idx], y[idx], hyper), theta.dtype)
    r = yb - Xb @ theta
    return -0.5 * hyper[0] * (r @ r)


def _linreg_jax_logprior(theta, data):
    hyper = _jax_cast(data[2], theta.dtype)
    diff = theta - hyper[2:]
    return -0.5 * hyper[1] * (diff @ diff)


def _linreg_jax_logdensity(theta, data):
    X, y, hyper = _cast_all(data, theta.dtype)
    r = y - X @ theta
    return -0.5 * hyper[0] * (r @ r) + _linreg_jax_logprior(theta, data)


_LINREG_JAX = {"loglik": _linreg_jax_loglik, "logprior": _linreg_jax_logprior,
               "logdensity": _linreg_jax_logdensity}  # fmt: skip


def linear_regression_posterior(
    X: np.ndarray, y: np.ndarray, noise_sd: float, prior_sd: float, prior_mean=0.0
) -> tuple[np.ndarray, np.ndarray]:
    """The exact posterior ``(mean, cov)`` of the conjugate linear regression.

    ``A = I/prior_sd² + XᵀX/noise_sd²``, ``mean = A⁻¹ (μ0/prior_sd² + Xᵀy/noise_sd²)``,
    ``cov = A⁻¹``.
    """
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    mu0 = np.broadcast_to(np.asarray(prior_mean, dtype=np.float64), (d,))
    A = np.eye(d) / prior_sd**2 + X.T @ X / noise_sd**2
    cov = np.linalg.inv(A)
    cov = 0.5 * (cov + cov.T)
    mean = np.linalg.solve(A, mu0 / prior_sd**2 + X.T @ np.asarray(y, float) / noise_sd**2)
    return mean, cov


def _check_positive(argname: str, value: float) -> float:
    value = float(value)
    if not (np.isfinite(value) and value > 0.0):
        raise ValueError(f"{argname} must be a positive finite number; got {value}")
    return value


def _check_design(X, y):
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must be a non-empty 2-D array (n, p); got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},) to match X; got {y.shape}")
    if not (_all_finite(X) and _all_finite(y)):
        raise ValueError("X and y must be finite (no NaN or inf)")
    return np.ascontiguousarray(X), np.ascontiguousarray(y)


def _all_finite(a: np.ndarray, rows: int = 65536) -> bool:
    """``np.all(np.isfinite(a))`` in blocks of rows: no boolean temporary the size of a
    10⁷-row data set (500 MB for 10⁷ × 50)."""
    return all(bool(np.isfinite(a[lo : lo + rows]).all()) for lo in range(0, len(a), rows))


def linear_regression_data(
    X: np.ndarray,
    y: np.ndarray,
    noise_sd: float = 1.0,
    prior_sd: float = 1.0,
    prior_mean: float | np.ndarray = 0.0,
    name: str = "linear_regression_data",
) -> DataTarget:
    """Bayesian linear regression with known noise: the conjugate Gaussian data target.

    ``θ ~ N(μ0, prior_sd² I)``, ``y_i | θ ~ N(x_iᵀθ, noise_sd²)``, so

        log p(y_i | θ) = −(y_i − x_iᵀθ)² / (2 noise_sd²),   ∇ = x_i (y_i − x_iᵀθ) / noise_sd²,

    and the posterior is Gaussian with precision ``A = I/prior_sd² + XᵀX/noise_sd²``
    (:func:`linear_regression_posterior`; in ``target.reference``). Every stochastic
    gradient is affine in θ, so SG-MCMC chains on it are linear recursions with exactly
    computable stationary laws (ALGORITHMS.md §4a; ``tests/test_sgmcmc.py``).

    Args:
        X: design ``(n, p)``; y: responses ``(n,)``; noise_sd, prior_sd: positive;
        prior_mean: scalar or ``(p,)``.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(100, 2))
        >>> target = linear_regression_data(X, X @ np.array([1.0, -1.0]), noise_sd=0.5)
        >>> target.n_data, target.dim
        (100, 2)
    """
    X, y = _check_design(X, y)
    noise_sd = _check_positive("noise_sd", noise_sd)
    prior_sd = _check_positive("prior_sd", prior_sd)
    n, d = X.shape
    mu0 = np.broadcast_to(np.asarray(prior_mean, dtype=np.float64), (d,)).copy()
    inv_var, prior_prec = 1.0 / noise_sd**2, 1.0 / prior_sd**2
    hyper = np.concatenate([[inv_var, prior_prec], mu0])
    mean, cov = linear_regression_posterior(X, y, noise_sd, prior_sd, mu0)
    data = (X, y, hyper)
    return DataTarget(
        n_data=n, dim=d,
        numba={"loglik": _linreg_loglik, "logprior": _linreg_logprior,
               "value_and_grad": _linreg_full},
        numba_data=data, jax=_LINREG_JAX, jax_data=data, initial_position=np.zeros(d),
        reference=Reference(mean=mean, cov=cov, source="exact (conjugate Gaussian posterior)"),
        name=name,
    )  # fmt: skip


# -- built-in: logistic regression -------------------------------------------------------------
@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _logistic_loglik(beta, idx, data):
    """``Σ_{i∈idx} [y_i η_i − log(1 + e^{η_i})]``, ``η_i = x_iᵀβ``, and its gradient.

    Three passes over the batch. A random minibatch of a large data set is bound by memory
    latency, so the first pass only *loads* every cache line of each row (and ``y_i``): the
    loads do not depend on each other, so the CPU keeps many rows' misses in flight (a pass
    computing ``η_i`` directly holds fewer: each row's dot product is a chain of adds). The
    second computes every ``η_i`` from rows now in cache, the third the values and the
    gradient. The touched values are folded in as ``0 · m`` with ``m`` a minimum of finite
    data (so exactly 0), which keeps the compiler from dropping the loads. ``fastmath``
    allows only reassociation and fused multiply-adds (vectorised dot products; round-off
    changes at 1e-16), not the no-NaN/no-inf assumptions that would hide a diverging chain.
    (d = 20, b = 100, float64: 6.4 instead of 7.9 µs CPU per call at n = 10⁵, 13 instead
    of 30 µs wall at n = 10⁶, on a loaded machine; ``benchmarks/sgmcmc_profile.py``.)"""
    X, y, _ = data
    d = beta.shape[0]
    b = idx.shape[0]
    eta = np.empty(b)
    for k in range(b):  # touch: one load per cache line (8 float64) of the row, and y_i
        i = idx[k]
        m = min(y[i], X[i, d - 1])
        for j in range(0, d, 8):
            m = min(m, X[i, j])
        eta[k] = m
    for k in range(b):
        i = idx[k]
        t = 0.0 * eta[k]  # exactly ±0: the data are finite (checked when the target is built)
        for j in range(d):
            t += X[i, j] * beta[j]
        eta[k] = t
    value = 0.0
    grad = np.zeros(d)
    for k in range(b):
        i = idx[k]
        t = eta[k]
        if t > 0.0:
            e = math.exp(-t)
            value += y[i] * t - (t + math.log1p(e))
            r = y[i] - 1.0 / (1.0 + e)
        else:
            e = math.exp(t)
            value += y[i] * t - math.log1p(e)
            r = y[i] - e / (1.0 + e)
        for j in range(d):
            grad[j] += r * X[i, j]
    return value, grad


@numba.njit(cache=True)
def _logistic_logprior(beta, data):
    prec = data[2][0]
    return -0.5 * prec * np.dot(beta, beta), -prec * beta


@numba.njit(cache=True)
def _logistic_full(beta, data):
    idx = np.arange(data[0].shape[0])
    v, g = _logistic_loglik(beta, idx, data)
    pv, pg = _logistic_logprior(beta, data)
    return v + pv, g + pg


def _logistic_jax_sum(beta, X, y):
    import jax.numpy as jnp

    eta = X @ beta
    return jnp.sum(y * eta - jnp.logaddexp(0.0, eta))


def _logistic_jax_loglik(beta, idx, data):
    X, y, _ = data
    Xb, yb = _cast_all((X[idx], y[idx]), beta.dtype)
    return _logistic_jax_sum(beta, Xb, yb)


def _logistic_jax_logprior(beta, data):
    prec = _jax_cast(data[2], beta.dtype)[0]
    return -0.5 * prec * (beta @ beta)


def _logistic_jax_logdensity(beta, data):
    X, y = _cast_all(data[:2], beta.dtype)
    return _logistic_jax_sum(beta, X, y) + _logistic_jax_logprior(beta, data)


_LOGISTIC_JAX = {"loglik": _logistic_jax_loglik, "logprior": _logistic_jax_logprior,
                 "logdensity": _logistic_jax_logdensity}  # fmt: skip


def logistic_regression_data(
    X: np.ndarray,
    y: np.ndarray,
    prior_scale: float = 1.0,
    name: str = "logistic_regression_data",
) -> DataTarget:
    """Bayesian logistic regression as a data target (minibatch likelihood on both backends).

    ``β ~ N(0, prior_scale² I)``, ``y_i ~ Bernoulli(σ(x_iᵀβ))``; per datum
    ``log p(y_i | β) = y_i η_i − log(1 + e^{η_i})`` with gradient ``(y_i − σ(η_i)) x_i``
    (the same model as :func:`langevin.targets.logistic_regression`, whose full-data target
    it matches). Add an intercept column to ``X`` yourself if you want one.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(500, 3))
        >>> target = logistic_regression_data(X, (X[:, 0] > 0).astype(float))
    """
    X, y = _check_design(X, y)
    if not np.all((y == 0.0) | (y == 1.0)):
        raise ValueError("y must hold only 0 and 1 labels")
    prior_scale = _check_positive("prior_scale", prior_scale)
    n, d = X.shape
    data = (X, y, np.array([1.0 / prior_scale**2]))
    return DataTarget(
        n_data=n, dim=d,
        numba={"loglik": _logistic_loglik, "logprior": _logistic_logprior,
               "value_and_grad": _logistic_full},
        numba_data=data, jax=_LOGISTIC_JAX, jax_data=data, initial_position=np.zeros(d),
        name=name,
    )  # fmt: skip
