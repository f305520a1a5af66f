"""SMC across devices: the particle axis split over a JAX mesh, the population step global.

With ``tempered_smc(..., backend="jax", mesh=mesh)`` the ``N`` particles are split over the
``D`` devices of a one-axis :class:`jax.sharding.Mesh`, ``k = N / D`` consecutive particles
per device (device ``d`` holds particles ``d k … (d + 1) k − 1``), placed with
``NamedSharding(mesh, PartitionSpec(axis))``. What is per particle runs on each device on
its own block, with no communication: the kernel's moves (the engine's chunk runner under
``shard_map``), the increments ``ℓ`` and ``∇ℓ``. What couples the particles is computed
**globally** here, under ``shard_map`` with collectives over the mesh axis:

* the log-sum-exp of the log-weights, ``LSE(lw) = m + log Σ_d Σ_{n ∈ d} exp(lw_n − m)``
  with ``m = max_d max_{n ∈ d} lw_n`` (``pmax`` then ``psum``), hence the normalised
  weights ``W_n = exp(lw_n − m) / Σ exp(lw − m)``, the ESS ``1 / Σ W²``
  (Kong, Liu & Wong 1994) and the log-evidence increment ``LSE(lw + log G) − LSE(lw)``
  (Chopin & Papaspiliopoulos 2020, Ch. 10);
* the adaptive exponent: the largest δ whose conditional ESS reaches the target
  (Zhou, Johansen & Aston 2016; :mod:`langevin.smc.exponent`). The log-weights and the
  increments ``ℓ`` are all-gathered (2N numbers, one collective: less than a resampling
  moves) and every device runs the single-device bisection on them, so every device finds
  the same δ with no collective inside the 60 sequential halvings. (Evaluating each
  halving's CESS by ``pmax``/``psum`` instead, 360 scalar collectives per stage, was
  latency-bound: 80 ms per stage on 8 fake CPU devices and 0.9 s over 2 gloo processes,
  against 5 ms and 21 ms for the whole gather of the particles; benchmarks/scaling.py.)
* the weighted particle variances the step size is tuned from (:mod:`.stage_tuning`);
* resampling by a **global inverse CDF**: each device sums its weights cumulatively,
  ``C_n = O_d + Σ_{j ≤ n, j ∈ d} W_j`` with ``O_d`` the total weight of the devices before
  ``d`` (an all-gather of one number per device), and the cumulative weights are
  all-gathered (N numbers); each device makes the points of its own output slots (the same
  uniforms on every device: systematic ``(m + U)/N``, stratified ``(m + U_m)/N``,
  multinomial by uniform spacings, as in :mod:`.resampling`) and finds
  ``A_m = min{j : C_j > s_m}`` by the same bisection as one device. Residual and SSP
  resampling are sequential over the particles and are refused with a mesh.
* the gather of the ancestors: each device needs the rows ``A_m`` of its own slots, which
  may live on any device: the particles are all-gathered (every leaf of the state) and each
  device takes its rows. This moves ``N`` particle states to every device per resampling,
  the simplest exchange that handles every pattern of offspring (with systematic resampling
  the ancestors are sorted, so most rows come from the device itself or its neighbours;
  an exchange of only those is not implemented).

The noise is the single-device run's (drawn on the host from the run's generator, each
device given its rows), so the run is the single-device run up to the order of the global
sums: the same particles and ``log Ẑ`` to ~1e-15 in float64 (``tests/test_smc_sharded.py``).

References:
    Chopin, N. and Papaspiliopoulos, O. (2020). An Introduction to Sequential Monte Carlo,
    Ch. 9–10 and 17. Springer.
    Kong, A., Liu, J. S. and Wong, W. H. (1994). Sequential imputations and Bayesian missing
    data problems. JASA 89(425).
    Zhou, Y., Johansen, A. M. and Aston, J. A. D. (2016). Toward automatic model comparison:
    an adaptive sequential Monte Carlo approach. JCGS 25(3).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from langevin.smc.exponent import _BISECTION_STEPS

__all__ = ["MESH_SCHEMES", "check_mesh", "ShardedOps", "sharded_ops"]

#: resampling schemes that run across devices (global inverse CDF)
MESH_SCHEMES = ("systematic", "stratified", "multinomial")


def check_mesh(mesh, n_particles: int, backend: str, scheme: str):
    """``mesh``: a one-axis JAX mesh whose size divides ``n_particles``; JAX backend and an
    inverse-CDF scheme. Raises before anything compiles, naming the argument."""
    if backend != "jax":
        raise ValueError(f"mesh= splits the particles over JAX devices: use backend='jax' "
                         f"(got backend={backend!r})")  # fmt: skip
    import jax

    if not isinstance(mesh, jax.sharding.Mesh) or len(mesh.axis_names) != 1:
        raise TypeError("mesh must be a one-axis jax.sharding.Mesh, e.g. "
                        f"jax.make_mesh((n_devices,), ('particles',)); got {mesh!r}")  # fmt: skip
    if n_particles % mesh.size:
        raise ValueError(
            f"n_particles={n_particles} must be a multiple of the number of devices in mesh "
            f"({mesh.size}): each device holds the same number of particles"
        )
    if scheme not in MESH_SCHEMES:
        raise ValueError(
            f"scheme={scheme!r} is sequential over the particles and does not run across "
            f"devices; with mesh= use one of {list(MESH_SCHEMES)}"
        )
    from langevin.backends.jax_backend import member_mesh

    return member_mesh(mesh)


# -- global reductions (inside shard_map, over the mesh axis) ----------------------------------
def _lse(lw, axis):
    """Global ``log Σ exp(lw)`` (−inf when every weight is zero), shifted by the global max."""
    import jax
    import jax.numpy as jnp

    m = jax.lax.pmax(jnp.max(lw), axis)
    shift = jnp.where(jnp.isfinite(m), m, 0.0)
    return shift + jnp.log(jax.lax.psum(jnp.sum(jnp.exp(lw - shift)), axis))


def _lse_local(lw):
    """``log Σ exp(lw)`` of one device's array (as :func:`.resampling.log_sum_exp`)."""
    import jax.numpy as jnp

    m = jnp.max(lw)
    shift = jnp.where(jnp.isfinite(m), m, 0.0)
    return shift + jnp.log(jnp.sum(jnp.exp(lw - shift)))


def _normalise(lw, axis):
    """This device's block of the globally normalised weights."""
    import jax
    import jax.numpy as jnp

    w = jnp.exp(lw - jax.lax.pmax(jnp.max(lw), axis))
    return w / jax.lax.psum(jnp.sum(w), axis)


def _ess(w, axis):
    import jax
    import jax.numpy as jnp

    return 1.0 / jax.lax.psum(jnp.sum(w * w), axis)


def _points(scheme: str, uniforms, n: int):
    """The N sorted points of an inverse-CDF scheme (:mod:`langevin.smc.resampling`)."""
    import jax.numpy as jnp

    if scheme == "systematic":
        return (jnp.arange(n) + uniforms[0]) / n
    if scheme == "stratified":
        return (jnp.arange(n) + uniforms) / n
    partial = jnp.cumsum(-jnp.log1p(-uniforms))  # multinomial: uniform spacings
    return partial[:n] / jnp.where(partial[n] > 0.0, partial[n], 1.0)


class ShardedOps:
    """The population step of :func:`langevin.smc.smc` over a mesh (module docstring):
    ``reweight``, ``step``, ``gather`` as in :class:`~langevin.smc.feynman_kac._PopulationOps`,
    plus the exponent search and the weighted variances. Arrays with a particle axis come
    back split over the mesh; scalars replicated."""

    def __init__(self, mesh, scheme: str) -> None:
        import jax
        import jax.numpy as jnp
        from jax.sharding import PartitionSpec

        from langevin.backends import jax_ops
        from langevin.backends.jax_backend import _shard_map

        self.mesh = mesh
        self.scheme = scheme
        axis = mesh.axis_names[0]
        self.axis = axis
        devices = mesh.size
        member, rep = PartitionSpec(axis), PartitionSpec()
        normalise = _normalise

        def smap(fn, in_specs, out_specs):
            return jax.jit(_shard_map(fn, mesh, in_specs=in_specs, out_specs=out_specs))

        def reweight(lw, log_g):
            new = lw + log_g
            return new, _lse(new, axis) - _lse(lw, axis), _ess(normalise(new, axis), axis)

        def step(lw, uniforms, threshold, device_index):
            k = lw.shape[0]
            n = k * devices
            # the device's position on the axis, from a sharded arange: jax.lax.axis_index
            # lowers to a PartitionId that JAX < 0.5 cannot partition under jit
            d = device_index[0]
            w = normalise(lw, axis)
            ess = _ess(w, axis)
            resampled = ess < threshold * n

            def resample():
                local = jnp.cumsum(w)
                totals = jax.lax.all_gather(local[-1], axis)  # (D,)
                offset = jnp.sum(jnp.where(jnp.arange(devices) < d, totals, 0.0))
                cdf = jax.lax.all_gather(local + offset, axis, tiled=True)  # (N,) global
                points = jax.lax.dynamic_slice_in_dim(_points(scheme, uniforms, n), d * k, k)
                return jax_ops.inverse_cdf(cdf, points), jnp.zeros_like(lw)

            def keep():
                return (d * k + jnp.arange(k)).astype(int), lw

            anc, new_lw = jax.lax.cond(resampled, resample, keep)
            return anc, new_lw, ess, resampled

        def gather(particles, ancestors):
            def take(a):
                return jax.lax.all_gather(a, axis, tiled=True)[ancestors]

            return jax.tree_util.tree_map(take, particles)

        def next_increment(lw, ell, beta, target_ess):
            # every device gets every log-weight and increment (one all-gather of 2N numbers)
            # and runs the single-device bisection on them: the same δ everywhere, and no
            # collective inside the 60 sequential halvings (module docstring)
            both = jax.lax.all_gather(jnp.stack([lw, ell]), axis, axis=1, tiled=True)
            lw_all, ell_all = both[0], both[1]
            room = 1.0 - beta
            log_target = jnp.log(target_ess)
            base = _lse_local(lw_all)

            def log_cess(delta):
                a = _lse_local(lw_all + delta * ell_all)
                return 2.0 * a - _lse_local(lw_all + 2.0 * delta * ell_all) - base

            def halve(_, bounds):
                lo, hi = bounds
                mid = 0.5 * (lo + hi)
                ok = log_cess(mid) >= log_target
                return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)

            lo, hi = jax.lax.fori_loop(0, _BISECTION_STEPS, halve, (0.0 * room, room))
            delta = jnp.where(lo > 0.0, lo, hi)
            return jnp.where(log_cess(room) >= log_target, room, delta)

        def variances(x, lw):
            w = normalise(lw, axis)
            finite = jnp.all(jnp.isfinite(x), axis=1)
            w = jnp.where(finite, w, 0.0)
            w = w / jax.lax.psum(jnp.sum(w), axis)
            xs = jnp.where(finite[:, None], x, 0.0)
            mean = jax.lax.psum(w @ xs, axis)
            return jax.lax.psum(w @ (xs - mean) ** 2, axis)

        self._reweight = smap(reweight, (member, member), (member, rep, rep))
        self._step = smap(step, (member, rep, rep, member), (member, member, rep, rep))
        self._gather = smap(gather, (member, member), member)
        self._next_increment = smap(next_increment, (member, member, rep, rep), rep)
        self._variances = smap(variances, (member, member), rep)

    # each entry point places its per-particle arguments (no copy where they already are)
    def _place(self, *arrays):
        from langevin.backends.jax_backend import place_members

        return place_members(arrays, self.mesh)

    def _replicate(self, value, dtype=None):
        """A host value as one array replicated on every device (of every process)."""
        import jax
        from jax.sharding import NamedSharding, PartitionSpec

        host = np.asarray(value, dtype=dtype)
        sharding = NamedSharding(self.mesh, PartitionSpec())
        if sharding.is_fully_addressable:
            return jax.device_put(host, sharding)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    def reweight(self, log_weights, log_potentials):
        """``(log_weights + log_potentials, log-evidence increment, ESS)``, global."""
        return self._reweight(*self._place(log_weights, log_potentials))

    def step(self, log_weights, uniforms, threshold):
        """``(ancestors, log_weights, ESS, resampled)``: ESS-triggered resampling by the
        global inverse CDF; the ancestors are global indices, each device holding its slots'."""
        lw, device_index = self._place(log_weights, np.arange(self.mesh.size))
        u = self._replicate(uniforms, lw.dtype)
        return self._step(lw, u, self._replicate(threshold, lw.dtype), device_index)

    def gather(self, particles, ancestors):
        """Every field of ``particles`` taken at the (global) ancestors, split as they are."""
        particles, ancestors = self._place(particles, ancestors)
        return self._gather(particles, ancestors)

    def next_increment(self, log_weights, ell, beta: float, target_ess: float) -> float:
        """The next exponent step δ (:func:`langevin.smc.exponent.next_increment`), global."""
        lw, ell = self._place(log_weights, ell)
        dtype = lw.dtype
        return float(self._next_increment(lw, ell, self._replicate(beta, dtype),
                                          self._replicate(target_ess, dtype)))  # fmt: skip

    def weighted_variances(self, x, log_weights) -> np.ndarray:
        """Per-coordinate weighted variances (:func:`.stage_tuning.weighted_variances`)."""
        x, lw = self._place(x, log_weights)
        return np.asarray(self._variances(x, lw), dtype=np.float64)


_OPS: OrderedDict = OrderedDict()


def sharded_ops(mesh, scheme: str) -> ShardedOps:
    """The compiled :class:`ShardedOps` of ``mesh`` and ``scheme`` (memoised)."""
    key = (mesh.devices.tobytes(), mesh.axis_names, scheme)
    if key not in _OPS:
        _OPS[key] = ShardedOps(mesh, scheme)
        while len(_OPS) > 16:
            _OPS.popitem(last=False)
    return _OPS[key]
