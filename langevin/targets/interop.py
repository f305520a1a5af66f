"""Targets from the modelling libraries users already write in: NumPyro and PyMC.

``Target.from_numpyro(model, *args, **kwargs)`` samples a NumPyro model on its unconstrained
space, as NumPyro's own NUTS does: every latent site is mapped to ℝ^k by the bijection of its
support (``biject_to``), and the log-density on ℝ^n is the model's joint log-density at the
constrained values plus the log-Jacobian of the map (NumPyro's ``potential_fn`` is its
negative). The flat position is the sites' unconstrained values in the order of their names
(sorted, as ``jax.flatten_util.ravel_pytree`` orders a dict), one named block per site; the
trace's ``to_arviz(constrained=True)`` shows every site (and every ``numpyro.deterministic``)
on its own support, with its own shape, through the model's ``postprocess_fn``.

``Target.from_pymc(model)`` does the same for a PyMC model, on both backends: PyTensor
compiles the model's log-density on the unconstrained space (``model.logp(jacobian=True)``:
the joint log-density at the back-transformed values plus the log-Jacobian of PyMC's default
transforms) to JAX (its JAX linker; the gradient by ``jax.grad``) and to Numba (its Numba
linker, value and gradient in one function, the gradient by PyTensor's symbolic
differentiation, as nutpie compiles a PyMC model). The flat position is the free random
variables' value variables (``sigma_log__``, ``mu``, ...) in the order the model defines them,
one named block each.

NumPyro and PyMC are optional extras: ``pip install "langevin[numpyro]"``,
``pip install "langevin[pymc]"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["from_numpyro", "from_pymc"]


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f'this needs {module}, an optional extra: pip install "langevin[{extra}]"'
        ) from exc


def from_numpyro(model: Callable, *args: Any, seed: int = 0, name: str | None = None,
                 **kwargs: Any):  # fmt: skip
    """A NumPyro model as a target on its unconstrained space (``backend="jax"``).

    Args:
        model: a NumPyro model function (``numpyro.sample`` statements; observed data
            passed through ``obs=``).
        *args, **kwargs: the model's arguments (its data); they are fixed in the target.
        seed: the seed of NumPyro's initialisation (``init_to_uniform``: each unconstrained
            coordinate uniform on (−2, 2)), which is the target's ``initial_position``.
        name: the target's name (default: the model function's name).

    Returns:
        A :class:`~langevin.targets.Target` with one named block per latent site (its
        unconstrained shape), its ``constrain`` map (every site and deterministic on its
        support, by NumPyro's ``postprocess_fn``) and a starting point.

    Example:
        >>> import numpy as np, numpyro, numpyro.distributions as dist, langevin
        >>> def model(y):
        ...     sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
        ...     numpyro.sample("y", dist.Normal(0.0, sigma), obs=y)
        >>> target = langevin.Target.from_numpyro(model, np.array([0.3, -1.2, 0.8]))
        >>> target.names_or_default()
        {'sigma': (slice(0, 1, None), ())}
    """
    _require("numpyro", "numpyro")
    import jax
    import jax.numpy as jnp
    from numpyro.infer.util import initialize_model

    from langevin.targets.base import Target

    if not callable(model):
        raise TypeError(f"model must be a NumPyro model function; got {type(model).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative int; got {seed!r}")
    try:
        info = initialize_model(jax.random.PRNGKey(int(seed)), model, model_args=args,
                                model_kwargs=kwargs, dynamic_args=False)  # fmt: skip
    except Exception as exc:
        raise ValueError(
            f"NumPyro could not initialise the model {getattr(model, '__name__', model)!r}: {exc}"
        ) from exc
    z = info.param_info.z
    if not z:
        raise ValueError("the model has no latent sites to sample (every site is observed)")
    sites = sorted(z)  # the order ravel_pytree gives a dict's leaves
    shapes = {s: tuple(np.shape(z[s])) for s in sites}
    sizes = {s: int(np.prod(shapes[s], dtype=int)) for s in sites}
    starts = np.cumsum([0] + [sizes[s] for s in sites])
    dim = int(starts[-1])
    potential_fn, postprocess_fn = info.potential_fn, info.postprocess_fn

    def unflatten(x):
        return {s: x[starts[i] : starts[i + 1]].reshape(shapes[s]) for i, s in enumerate(sites)}

    def logdensity(x):
        # the position's dtype is the computation's (JAX's default float unless x64 is on)
        return (-potential_fn(unflatten(x))).astype(x.dtype)

    constrain_all = jax.jit(jax.vmap(lambda x: postprocess_fn(unflatten(x))))

    def constrain(draws: np.ndarray) -> dict[str, np.ndarray]:
        draws = np.asarray(draws)
        lead = draws.shape[:-1]
        out = constrain_all(jnp.asarray(draws.reshape(-1, dim)))
        return {k: np.asarray(v).reshape(*lead, *np.shape(v)[1:]) for k, v in out.items()}

    start = np.concatenate([np.asarray(z[s], dtype=np.float64).reshape(-1) for s in sites])
    target = Target(
        names={s: shapes[s] for s in sites},
        jax={"logdensity": logdensity},
        initial_position=start,
        name=name or getattr(model, "__name__", "numpyro_model"),
        constrain=constrain,
    )
    return target


# -- PyMC -------------------------------------------------------------------------------------
def _block_names(names: list[str]) -> list[str]:
    """Parameter names as identifiers (a nested model's ``outer::x`` becomes ``outer__x``),
    distinct."""
    import re

    out: list[str] = []
    for n in names:
        ident = re.sub(r"\W", "_", n.replace("::", "__")) or "x"
        if ident[0].isdigit():
            ident = "_" + ident
        base, k = ident, 1
        while ident in out:
            ident, k = f"{base}_{k}", k + 1
        out.append(ident)
    return out


def _jax_dispatch_without_x64_flip():
    """``pymc.sampling.jax.get_jaxified_graph``, imported with the user's JAX x64 flag kept.

    Importing PyTensor's JAX dispatch switches ``jax_enable_x64`` on for the whole process
    (when PyTensor's ``floatX`` is float64); a library must not change that flag, so it is put
    back as it was. The import runs in a new thread, where no ``jax.enable_x64(...)`` context
    of the caller's thread applies, so the value read and restored is the global one."""
    import threading

    import jax

    result: dict = {}

    def import_it():
        before = jax.config.jax_enable_x64
        try:
            from pymc.sampling.jax import get_jaxified_graph

            result["fn"] = get_jaxified_graph
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc
        finally:
            if jax.config.jax_enable_x64 != before:
                jax.config.update("jax_enable_x64", before)

    thread = threading.Thread(target=import_it)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["fn"]


def _numba_value_and_grad(build: Callable[[], Callable]):
    """A ``numba.njit`` ``value_and_grad(x) -> (float, array)`` whose body is compiled only
    when Numba first compiles it (``build()`` runs PyTensor's Numba linker then): a target used
    only on the JAX backend never pays for the Numba compilation."""
    import numba
    from numba.extending import overload

    def compiled_logp_dlogp(x):  # pragma: no cover - replaced by the overload
        raise NotImplementedError

    built: list = []  # PyTensor compiles once, however often Numba types the call

    @overload(compiled_logp_dlogp)
    def _impl(x):
        if not built:
            built.append(build())
        jit_fn = built[0]

        def impl(x):
            return jit_fn(x)

        return impl

    @numba.njit
    def value_and_grad(x):
        logp, grad = compiled_logp_dlogp(x)
        return logp[()], np.ascontiguousarray(grad)

    return value_and_grad


def from_pymc(model: Any, *, name: str | None = None):
    """A PyMC model as a target on its unconstrained space (``backend="numba"`` or ``"jax"``).

    The log-density of the flat position ``x`` is PyMC's ``model.logp(jacobian=True)`` at the
    value variables read from ``x``: each free random variable is mapped to ℝ^k by its
    default transform ``T`` (``log`` for positive supports, ``logodds`` for intervals, the
    stick-breaking ``simplex`` transform, ...), and with ``θ = T⁻¹(u)`` the density on the
    unconstrained space is ``log p(θ, y) + log |det ∂T⁻¹(u)/∂u|`` (the change of variables
    every gradient sampler of a constrained model uses; Carpenter et al. 2017, *Stan: A
    probabilistic programming language*, J. Stat. Softw. 76, §"transforms"). PyTensor compiles
    it twice, lazily, for the backend that runs it:

    * JAX: PyTensor's JAX linker (``pymc.sampling.jax.get_jaxified_graph``); the gradient is
      ``jax.grad``'s. The log-density has the dtype of ``x`` (float32 when JAX's x64 is off).
    * Numba: PyTensor's Numba linker compiles the log-density and its symbolic gradient into
      one function (as nutpie does); it is called from the compiled chain loop.

    The model's data (``pm.Data``) and dimensions are frozen into the target
    (``freeze_dims_and_data``): build a new target for new data.

    Args:
        model: a ``pymc.Model`` (the object a ``with pm.Model() as model:`` block binds) with
            at least one free random variable, all continuous.
        name: the target's name (default: the model's name, or ``"pymc_model"``).

    Returns:
        A :class:`~langevin.targets.Target` with both forms, one named block per free random
        variable (its value variable's name and unconstrained shape, e.g. ``sigma_log__``),
        ``initial_position`` the model's initial point (``model.initial_point()``, on the
        unconstrained space) and a ``constrain`` map: ``trace.to_arviz(constrained=True)``
        shows every free random variable and every ``pm.Deterministic`` on its support, with
        its shape, under its own name.

    Raises:
        ImportError: PyMC is not installed (``pip install "langevin[pymc]"``).
        TypeError: ``model`` is not a PyMC model.
        ValueError: the model has no free random variable, or has discrete ones (which
            gradient-based samplers cannot sample; they are named).

    Example:
        >>> import numpy as np, pymc as pm, langevin                    # doctest: +SKIP
        >>> with pm.Model() as model:                                   # doctest: +SKIP
        ...     sigma = pm.HalfNormal("sigma", 1.0)
        ...     pm.Normal("y", 0.0, sigma, observed=np.array([0.3, -1.2, 0.8]))
        >>> target = langevin.Target.from_pymc(model)                   # doctest: +SKIP
        >>> target.names_or_default()                                   # doctest: +SKIP
        {'sigma_log__': (slice(0, 1, None), ())}
        >>> trace = langevin.sample(target, langevin.NUTS(0.5), backend="numba")  # doctest: +SKIP
        >>> trace.to_arviz(constrained=True)                            # doctest: +SKIP
    """
    pm = _require("pymc", "pymc")
    from math import prod

    from langevin.targets.base import Target

    if not isinstance(model, pm.Model):
        raise TypeError(
            "model must be a pymc.Model (the object `with pm.Model() as model:` binds); "
            f"got {type(model).__name__}"
        )
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str; got {type(name).__name__}")
    free = list(model.free_RVs)
    if not free:
        raise ValueError(
            "model has no free random variables to sample (every variable is observed or "
            "deterministic)"
        )
    discrete = [rv.name for rv in free if not rv.type.dtype.startswith("float")]
    if discrete:
        raise ValueError(
            f"model has discrete free random variables {discrete}: gradient-based samplers "
            "cannot sample them. Marginalise them out (e.g. pymc_extras' "
            "marginalize, or a mixture likelihood) or make them observed"
        )
    from pymc.model.transform.optimization import freeze_dims_and_data

    frozen = freeze_dims_and_data(model)
    point = model.initial_point()
    value_names = [model.rvs_to_values[rv].name for rv in free]
    shapes = {v: tuple(int(s) for s in np.shape(point[v])) for v in value_names}
    sizes = [prod(shapes[v]) for v in value_names]
    starts = np.cumsum([0, *sizes]).tolist()
    dim = int(starts[-1])
    frozen_values = {v.name: v for v in frozen.value_vars}
    missing = [v for v in value_names if v not in frozen_values]
    if missing:  # freeze_dims_and_data keeps the names; say so if a PyMC version does not
        raise ValueError(f"PyMC's frozen model lost the value variables {missing}")
    inputs = [frozen_values[v] for v in value_names]
    blocks = dict(zip(_block_names(value_names), (shapes[v] for v in value_names), strict=True))
    start = np.concatenate(
        [np.asarray(point[v], dtype=np.float64).reshape(-1) for v in value_names]
    )

    def flat_graph(outputs):
        """``outputs`` (graphs of the value variables) as graphs of one flat float64 vector."""
        import pytensor.tensor as pt
        from pytensor.graph import clone_replace

        x = pt.TensorType("float64", shape=(dim,))("x")
        replace = {
            var: x[starts[i] : starts[i + 1]].reshape(shapes[v]).astype(var.dtype)
            for i, (v, var) in enumerate(zip(value_names, inputs, strict=True))
        }
        return x, clone_replace(outputs, replace)

    # -- JAX: PyTensor's JAX linker, built at the first trace in each precision (the graph's
    # constants become JAX arrays then, in the precision of the run)
    jax_fns: dict = {}

    def logdensity(x):
        import warnings

        import jax

        with warnings.catch_warnings():
            # PyTensor's graph asks for float64 constants and casts; with x64 off JAX makes
            # them float32 (the dtype of x), which is what a float32 run asks for
            warnings.filterwarnings("ignore", "Explicitly requested dtype float64", UserWarning)
            x64 = bool(jax.config.jax_enable_x64)
            if x64 not in jax_fns:
                get_jaxified_graph = _jax_dispatch_without_x64_flip()
                with jax.ensure_compile_time_eval():  # constants: arrays, not tracers of x's jit
                    jax_fns[x64] = get_jaxified_graph(
                        inputs=inputs, outputs=[frozen.logp(jacobian=True)]
                    )
            parts = [x[starts[i] : starts[i + 1]].reshape(shapes[v])
                     for i, v in enumerate(value_names)]  # fmt: skip
            (out,) = jax_fns[x64](*parts)
        return out.astype(x.dtype)

    # -- Numba: PyTensor's Numba linker, built when the Numba backend compiles the target
    def build_numba():
        import pytensor.tensor as pt

        try:
            from pymc.pytensorf import compile as compile_pymc
        except ImportError:  # PyMC < 5.20
            from pymc.pytensorf import compile_pymc

        logp = frozen.logp(jacobian=True)
        grad = pt.concatenate([g.ravel() for g in pt.grad(logp, inputs)])
        x, (logp_x, grad_x) = flat_graph([logp, grad.astype("float64")])
        fn = compile_pymc([x], [logp_x.astype("float64"), grad_x], mode="NUMBA")
        if fn.get_shared():
            raise ValueError(
                f"the compiled PyMC model still reads shared variables {fn.get_shared()}"
            )
        return fn.vm.jit_fn

    # -- the constrained view: every free RV and deterministic, vectorised over draws
    out_vars = list(frozen.free_RVs) + list(frozen.deterministics)
    out_names = [v.name for v in out_vars]
    constrain_fn: list = []

    def build_constrain():
        import pytensor
        import pytensor.tensor as pt
        from pytensor.compile.mode import Mode
        from pytensor.graph.replace import vectorize_graph

        try:
            from pytensor.graph.traversal import graph_inputs
        except ImportError:  # PyTensor < 2.32
            from pytensor.graph.basic import graph_inputs

        x, outs = flat_graph(frozen.replace_rvs_by_values(out_vars))
        # a deterministic of the data alone has no draw axis: it is broadcast over the draws
        per_draw = [x in set(graph_inputs([o])) for o in outs]
        mode = Mode(linker="py", optimizer="fast_compile")  # no C compiler needed, fast to build
        batch = pt.matrix("draws", dtype="float64")
        try:
            batched = pytensor.function([batch], vectorize_graph(outs, {x: batch}), mode=mode)
            return batched, True, per_draw
        except Exception:  # an Op that does not vectorise: one draw at a time
            return pytensor.function([x], outs, mode=mode), False, per_draw

    def constrain(draws: np.ndarray) -> dict[str, np.ndarray]:
        draws = np.asarray(draws, dtype=np.float64)
        lead = draws.shape[:-1]
        flat = np.ascontiguousarray(draws.reshape(-1, dim))
        if not constrain_fn:
            constrain_fn.append(build_constrain())
        fn, batched, per_draw = constrain_fn[0]
        n = flat.shape[0]
        if batched:
            values = [v if d else np.broadcast_to(v, (n, *np.shape(v)))
                      for v, d in zip(fn(flat), per_draw, strict=True)]  # fmt: skip
        else:
            each = [fn(row) for row in flat]
            values = [np.stack([e[k] for e in each]) for k in range(len(out_names))]
        return {
            k: np.asarray(v).reshape(*lead, *np.shape(v)[1:])
            for k, v in zip(out_names, values, strict=True)
        }

    return Target(
        names=blocks,
        jax={"logdensity": logdensity},
        numba={"value_and_grad": _numba_value_and_grad(build_numba)},
        initial_position=start,
        name=name or model.name or "pymc_model",
        constrain=constrain,
    )
