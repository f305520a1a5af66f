"""``sample_federated``: rounds of local steps on the clients and a communication step.

The clients are members of one population of the engine (``members = C × M``, client-major:
member ``c·M + m`` is client ``c``'s copy of federation / chain layer ``m``), each with its
padded shard in its per-member ``params``. A round is

1. ``K`` steps of the local kernel (:mod:`langevin.federated.kernels`) on every member: the
   engine's compiled loop — ``numba_backend.run`` on Numba; on JAX the engine's jitted chunk
   runner, called inside a ``lax.scan`` over a block of rounds so that a run of many short
   rounds is one compiled program;
2. the communication step, a *population step*: new positions ``G_r · X`` and the recorded
   server iterates ``R_r · X`` for host-drawn matrices ``G_r`` (averaging weights for FA-LD,
   a permutation moving chains between clients for DSGLD/FSGLD) and ``R_r``.

**Same seed, same chain on both backends.** All randomness (minibatch uniforms, normals,
the shared normals, client choices) is drawn on the host from one NumPy generator, round by
round in a fixed order, and handed to both engines as explicit noise: the chains agree to
round-off (1e-12 in float64). Cutting the run into blocks of rounds changes nothing.

**Devices and processes (JAX).** With ``mesh=`` (a one-axis :class:`jax.sharding.Mesh`), the
member axis of the state, the noise and the params — the shards — is split over the mesh's
devices with a ``NamedSharding``, so a client's shard lives only on its device, and XLA runs
each device's clients there; the population step gathers the positions (``d`` numbers per
client), never the data. Under ``jax.distributed`` (several processes) the same call runs in
every process; each process builds only the parts of the global arrays on its own devices
(``jax.make_array_from_callback``), so it needs only its own clients' shards
(:meth:`Clients.subset`). See docs/federated.md for the multi-host GPU launch.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from langevin.federated.algorithms import FALD, FSGLD, _Algorithm, fit_surrogates
from langevin.federated.clients import Clients, shard_type
from langevin.federated.kernels import FedParams, FedState, local_kernel
from langevin.trace import Trace

__all__ = ["sample_federated", "FederatedTrace", "local_clients"]

_NOISE_BYTES = 32 * 2**20  # host noise per block of rounds (JAX)
_MAX_BLOCK = 500  # rounds per compiled block (JAX)
_NUMBA_PROGRESS_SECONDS = 0.25


@dataclass
class FederatedTrace(Trace):
    """A :class:`~langevin.trace.Trace` of the server iterates, one draw per round.

    Besides the draws ``(chains, rounds, dim)`` (FA-LD: the averaged iterate of each
    federation after the round's synchronisation; DSGLD/FSGLD: each chain when it leaves
    its client), ``sample_stats`` holds per round ``bytes_sent`` (the bytes that crossed the
    network for that chain in that round: uploads and downloads of ``d`` numbers) and
    ``participants`` (clients averaged / 1 for a moving chain).

    Attributes:
        communication: ``rounds``, ``local_steps``, ``clients``, ``bytes_per_round`` (mean
            over rounds, all chains), ``total_bytes``, ``setup_bytes`` (FSGLD's surrogate
            exchange), ``itemsize``; :meth:`communication_summary` adds the rounds and bytes
            per effective sample.
    """

    communication: dict = field(default_factory=dict)

    def communication_summary(self) -> dict:
        """``communication`` plus ``ess`` (the smallest bulk ESS over coordinates, all
        chains), ``rounds_per_effective_sample`` and ``bytes_per_effective_sample``."""
        import warnings

        import arviz as az

        out = dict(self.communication)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            draws = self.draws[self.running_chains]
            ess = min(float(az.ess(draws[..., i], method="bulk")) for i in range(self.dim))
        out["ess"] = ess
        out["rounds_per_effective_sample"] = self.n_draws / ess
        out["bytes_per_effective_sample"] = float(np.sum(self.sample_stats["bytes_sent"])) / ess
        return out


def local_clients(mesh, n_clients: int) -> list[int]:
    """The clients whose shards this process must hold when ``sample_federated`` runs with
    ``mesh`` (its devices' blocks of the client axis; all clients in a single process)."""
    import jax

    devices = list(np.asarray(mesh.devices).ravel())
    if n_clients % len(devices):
        raise ValueError(f"the number of clients ({n_clients}) must be a multiple of the "
                         f"number of devices ({len(devices)})")  # fmt: skip
    per = n_clients // len(devices)
    me = jax.process_index()
    return [i * per + k for i, dev in enumerate(devices) if dev.process_index == me
            for k in range(per)]  # fmt: skip


# -- argument checks (before anything compiles) --------------------------------------------------
def _check_args(target, algorithm, clients, rounds, warmup_rounds, chains, backend, seed, mesh):
    from langevin.targets.data_targets import DataTarget

    if not isinstance(target, DataTarget):
        raise TypeError(f"target must be a DataTarget (langevin.targets.data_targets); got "
                        f"{type(target).__name__}")  # fmt: skip
    if not isinstance(algorithm, _Algorithm):
        raise TypeError(f"algorithm must be langevin.federated.DSGLD, FSGLD or FALD; got "
                        f"{type(algorithm).__name__}")  # fmt: skip
    if not isinstance(clients, Clients):
        raise TypeError(f"clients must be a Clients (langevin.federated.split(target, parts)); "
                        f"got {type(clients).__name__}")  # fmt: skip
    data = target.data if target.data is not None else target._jax_data_np
    n_arrays = 1 if isinstance(data, np.ndarray) else len(data)
    if len(clients.row_arrays) != n_arrays:
        raise ValueError(f"clients: shards hold {len(clients.row_arrays)} arrays but the "
                         f"target's data has {n_arrays}")  # fmt: skip
    if not clients.shards:
        raise ValueError("clients: no shard is held in this process")
    for argname, v, least in (("rounds", rounds, 1), ("warmup_rounds", warmup_rounds, 0)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < least:
            raise ValueError(f"{argname} must be an int >= {least}; got {v!r}")
    if backend not in ("numba", "jax"):
        raise ValueError(f"backend must be 'numba' or 'jax'; got {backend!r}")
    if backend == "numba" and not target.has_numba:
        raise TypeError(f"{target!r} has no Numba form; use backend='jax'")
    if backend == "jax" and not target.has_jax:
        raise TypeError(f"{target!r} has no JAX form; use backend='numba'")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or seed < 0):  # fmt: skip
        raise ValueError(f"seed must be a non-negative int or None; got {seed!r}")
    C = clients.n_clients
    if chains is not None and (isinstance(chains, bool) or not isinstance(chains, numbers.Integral)
                               or chains < 1):  # fmt: skip
        raise ValueError(f"chains must be an int >= 1; got {chains!r}")
    if isinstance(algorithm, FALD):
        M = 1 if chains is None else int(chains)
        if algorithm.participation is not None and algorithm.participation > C and \
                algorithm.scheme == "II":  # fmt: skip
            raise ValueError(f"FALD: participation ({algorithm.participation}) must be at most "
                             f"the number of clients ({C}) under scheme II")  # fmt: skip
        algorithm.client_weights(clients)
    else:
        chains = C if chains is None else int(chains)
        if chains % C:
            raise ValueError(f"chains must be a multiple of the number of clients ({C}) for "
                             f"{algorithm.name} (each client hosts one chain of each layer); "
                             f"got {chains}")  # fmt: skip
        M = chains // C
        if isinstance(algorithm, FSGLD) and algorithm.surrogates is not None:
            algorithm.surrogates.check(C, target.dim)
    if algorithm.batch_size is not None and algorithm.batch_size > 10**7:
        raise ValueError("batch_size is unreasonably large")
    if mesh is not None:
        if backend != "jax":
            raise ValueError("mesh= places clients on JAX devices: use backend='jax'")
        import jax

        if not isinstance(mesh, jax.sharding.Mesh) or len(mesh.axis_names) != 1:
            raise TypeError("mesh must be a one-axis jax.sharding.Mesh, e.g. "
                            "jax.make_mesh((n_devices,), ('clients',))")  # fmt: skip
        if C % mesh.size:
            raise ValueError(f"mesh: the number of clients ({C}) must be a multiple of the "
                             f"number of devices ({mesh.size})")  # fmt: skip
    needed = range(C) if mesh is None else local_clients(mesh, C)
    missing = [c for c in needed if c not in clients.shards]
    if missing:
        where = "this process's devices" if mesh is not None else "a run without mesh="
        raise ValueError(f"clients: the shards of clients {missing} are needed on {where} "
                         "but not held here")  # fmt: skip
    return M


def _initial(target, initial_position, chains: int) -> np.ndarray:
    d = target.dim
    if initial_position is None:
        x = np.zeros(d) if target.initial_position is None else target.initial_position
        initial_position = np.asarray(x, dtype=np.float64)
    x = np.asarray(initial_position, dtype=np.float64)
    if x.shape == (d,):
        x = np.broadcast_to(x, (chains, d))
    if x.shape != (chains, d) or not np.all(np.isfinite(x)):
        raise ValueError(f"initial_position must be a finite ({d},) or ({chains}, {d}) array; "
                         f"got shape {x.shape}")  # fmt: skip
    return np.array(x)


# -- the host plan: params, noise and the population step -----------------------------------------
class _Plan:
    """Everything of a run that lives on the host: per-member coefficients, the round's
    noise and mixing matrices, all drawn from one generator in a fixed order."""

    def __init__(self, target, algorithm, clients: Clients, M: int, surrogates, itemsize: int):
        self.alg = algorithm
        self.clients = clients
        C = clients.n_clients
        self.C, self.M, self.members = C, M, C * M
        self.d = d = target.dim
        self.K = algorithm.local_steps
        self.fald = isinstance(algorithm, FALD)
        self.chains = M if self.fald else C * M
        self.itemsize = itemsize
        b = algorithm.batch_size
        sizes = np.asarray(clients.sizes, dtype=np.float64)
        n_max = clients.n_max
        if self.fald:
            p = algorithm.client_weights(clients)
            self.p = p
            T, rho = algorithm.temperature, algorithm.rho
            lik = 1.0 / p if b is None else sizes / (p * b)
            # Deng et al. (2024), Alg. 1 / eq. (7): √(2ηTρ²) ζ + √(2ηT(1 − ρ²)/p_c) ξ_c
            own = np.sqrt(T * (1.0 - rho**2) / p)
            common = np.full(C, math.sqrt(T) * rho)
        else:
            f = 1.0 / C
            lik = np.full(C, 1.0 / f) if b is None else sizes / (f * b)
            own = np.ones(C)
            common = np.zeros(C)
        Q = np.zeros((C, d, d))
        r = np.zeros((C, d))
        if algorithm.conducive:
            mu, P = surrogates.means, surrogates.precisions
            P_tot = P.sum(axis=0)
            h_tot = np.einsum("cij,cj->i", P, mu)
            for c in range(C):
                Q[c] = P_tot - C * P[c]
                r[c] = h_tot - C * P[c] @ mu[c]
        self.rho = common[0] > 0
        self.coeffs = dict(n_local=sizes, pad=n_max - sizes, prior_scale=np.ones(C),
                           lik_scale=lik, noise_own=own, noise_common=common, cond_prec=Q,
                           cond_shift=r)  # fmt: skip
        self.placement = None
        self.assign = None  # DSGLD/FSGLD: (M, C) client of chain j of layer m

    # member-level arrays -------------------------------------------------------------------
    def member_clients(self, members: slice | None = None) -> np.ndarray:
        idx = np.arange(self.members)[members if members is not None else slice(None)]
        return idx // self.M

    def params_for(self, members: np.ndarray) -> FedParams:
        """Host FedParams of the given members (stacked), shards from this process."""
        cl = members // self.M
        Shard = shard_type(len(self.clients.row_arrays))
        padded = {c: self.clients.padded(c) for c in np.unique(cl)}
        shard = Shard(*(np.ascontiguousarray(np.stack([padded[c][k] for c in cl]))
                        for k in range(len(Shard._fields))))  # fmt: skip
        co = {k: np.ascontiguousarray(v[cl]) for k, v in self.coeffs.items()}
        return FedParams(shard=shard, **co)

    def initial_positions(self, x0: np.ndarray, rng) -> np.ndarray:
        pos = np.empty((self.members, self.d))
        if self.fald:
            for c in range(self.C):
                pos[c * self.M : (c + 1) * self.M] = x0
        else:
            self.assign = np.stack([rng.permutation(self.C) for _ in range(self.M)])
            for m in range(self.M):
                for j in range(self.C):
                    pos[self.assign[m, j] * self.M + m] = x0[m * self.C + j]
        return pos

    # one round ------------------------------------------------------------------------------
    def draw_noise(self, rng, lead: int = 0):
        """The round's noise: arrays ``(members, K, ...)``."""
        K, d, n = self.K, self.d, self.members
        b = self.alg.batch_size
        batch = rng.random((n, K, b)) if b is not None else None
        normal = rng.standard_normal((n, K, d))
        if self.rho:
            common = np.repeat(rng.standard_normal((1, self.M, K, d)), self.C, axis=0)
            common = common.reshape(n, K, d)
        else:
            common = np.zeros((n, K, d))
        return batch, normal, common

    def draw_mixing(self, rng):
        """``(G, R, bytes, participants)`` of the round's communication step."""
        C, M, n, d = self.C, self.M, self.members, self.d
        G = np.zeros((n, n))
        R = np.zeros((self.chains, n))
        sent = np.zeros(self.chains)
        part = np.zeros(self.chains)
        if self.fald:
            alg = self.alg
            for m in range(M):
                if alg.participation is None:
                    w = self.p
                elif alg.scheme == "I":
                    chosen = rng.choice(C, size=alg.participation, replace=True, p=self.p)
                    w = np.bincount(chosen, minlength=C) / alg.participation
                else:
                    chosen = rng.choice(C, size=alg.participation, replace=False)
                    w = np.zeros(C)
                    w[chosen] = C / alg.participation * self.p[chosen]
                cols = np.arange(C) * M + m
                G[np.ix_(cols, cols)] = w[None, :]
                R[m, cols] = w
                up = int(np.count_nonzero(w))
                part[m] = up
                sent[m] = (up + C) * d * self.itemsize
        else:
            new = np.stack([rng.permutation(C) for _ in range(M)])
            for m in range(M):
                for j in range(C):
                    src = self.assign[m, j] * M + m
                    dst = new[m, j] * M + m
                    k = m * C + j
                    G[dst, src] = 1.0
                    R[k, src] = 1.0
                    moved = new[m, j] != self.assign[m, j]
                    sent[k] = 2 * d * self.itemsize * moved
                    part[k] = 1
            self.assign = new
        return G, R, sent, part

    def setup_bytes(self) -> int:
        if not self.alg.conducive:
            return 0
        d = self.d
        return int(self.C * 2 * (d + d * (d + 1) // 2) * self.itemsize)


def _engine_target(target, clients: Clients, backend: str):
    """A DataTarget with the pooled target's functions, typed by a one-row shard (the data
    each step actually reads is the client's shard in its params)."""
    from langevin.targets.data_targets import DataTarget

    Shard = shard_type(len(clients.row_arrays))
    tmpl = Shard(*clients.template())
    if backend == "numba":
        fns = {k: target.numba_functions[k] for k in ("loglik", "logprior", "value_and_grad")}
        return DataTarget(n_data=1, dim=target.dim, numba=fns, numba_data=tmpl,
                          name=target.name)  # fmt: skip
    return DataTarget(n_data=1, dim=target.dim, jax=target._jax_given, jax_data=tmpl,
                      name=target.name)  # fmt: skip


# -- Numba: a Python loop over rounds around numba_backend.run -------------------------------------
def _run_numba(plan: _Plan, target, kernel, pos0, rng, total, warmup, bar):
    from langevin.backends import numba_backend as be

    prepared = be.prepare(kernel, _engine_target(target, plan.clients, "numba"), plan.d)
    params = be._cast_tree(plan.params_for(np.arange(plan.members)))
    state = FedState(np.ascontiguousarray(pos0), np.zeros(plan.members))
    h = np.full(plan.members, float(kernel.step_size))
    keep = total - warmup
    draws = np.full((plan.chains, keep, plan.d), np.nan)
    sent = np.zeros((plan.chains, keep))
    part = np.zeros((plan.chains, keep))
    b = plan.alg.batch_size
    t_last = time.perf_counter()
    done_bar = 0
    for r in range(total):
        batch, normal, common = plan.draw_noise(rng)
        G, R, s, p = plan.draw_mixing(rng)
        noise = (kernel.Noise(batch, normal, common) if b is not None
                 else kernel.Noise(normal, common))  # fmt: skip
        res = be.run(prepared, state, plan.K, h, noise=noise, params=params)
        x = res.state.position
        if r >= warmup:
            draws[:, r - warmup] = R @ x
            sent[:, r - warmup] = s
            part[:, r - warmup] = p
        state = FedState(np.ascontiguousarray(G @ x), res.state.logdensity)
        if bar is not None and time.perf_counter() - t_last > _NUMBA_PROGRESS_SECONDS:
            bar.update(r + 1 - done_bar)
            done_bar = r + 1
            t_last = time.perf_counter()
    if bar is not None:
        bar.update(total - done_bar)
    return draws, sent, part


# -- JAX: blocks of rounds in one lax.scan around the engine's chunk runner -----------------------
_SCANS: dict = {}


def _jax_block_fn(prepared, K: int, mesh):
    import jax
    import jax.numpy as jnp

    key = (id(prepared.runner), K, None if mesh is None else (mesh.devices.tobytes(),
                                                              mesh.axis_names))  # fmt: skip
    if key in _SCANS:
        return _SCANS[key]
    runner = prepared.runner
    hi = jax.lax.Precision.HIGHEST

    def block(state, params, h, ad, ad_params, data, noise, G, R, valid):
        def one(state, xs):
            nz, g, rr, ok = xs

            def go(state):
                new, _, (_, _lp, _) = runner(state, ad, nz, 0, K, h, params, False, ad_params,
                                            data, length=K, explicit=True)  # fmt: skip
                x = new.position
                rec = jnp.matmul(rr, x, precision=hi)
                x = jnp.matmul(g, x, precision=hi)
                if mesh is not None:
                    x = jax.lax.with_sharding_constraint(x, _member_sharding(mesh, 2))
                return FedState(x, new.logdensity), rec

            def skip(state):
                return state, jnp.zeros((rr.shape[0], state.position.shape[1]),
                                        state.position.dtype)  # fmt: skip

            return jax.lax.cond(ok, go, skip, state)

        return jax.lax.scan(one, state, (noise, G, R, valid))

    if mesh is None:
        fn = jax.jit(block)
    else:
        from jax.sharding import NamedSharding, PartitionSpec

        rep = NamedSharding(mesh, PartitionSpec())
        fn = jax.jit(block, out_shardings=(FedState(_member_sharding(mesh, 2),
                                                    _member_sharding(mesh, 1)), rep))  # fmt: skip
    _SCANS[key] = fn
    return fn


def _member_sharding(mesh, ndim: int, axis: int = 0):
    from jax.sharding import NamedSharding, PartitionSpec

    spec = [None] * ndim
    spec[axis] = mesh.axis_names[0]
    return NamedSharding(mesh, PartitionSpec(*spec))


def _to_device(host_fn, shape, dtype, mesh, axis: int = 0):
    """A global array of ``shape``: ``host_fn(member_slice)`` builds the part of the member
    axis ``axis`` on each of this process's devices (all of it without a mesh)."""
    import jax
    import jax.numpy as jnp

    if mesh is None:
        return jnp.asarray(host_fn(slice(None)), dtype)
    sharding = _member_sharding(mesh, len(shape), axis)

    def cb(index):
        part = host_fn(index[axis])
        rest = tuple(s for i, s in enumerate(index) if i != axis)
        if rest and any(s != slice(None) for s in rest):
            full = [slice(None)] * len(shape)
            for i, s in enumerate(index):
                if i != axis:
                    full[i] = s
            full[axis] = slice(None)
            part = part[tuple(full)]
        return np.asarray(part, dtype=dtype)

    return jax.make_array_from_callback(shape, sharding, cb)


def _replicated(a, mesh, dtype=None):
    import jax
    import jax.numpy as jnp

    a = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
    if mesh is None:
        return jnp.asarray(a)
    from jax.sharding import NamedSharding, PartitionSpec

    return jax.make_array_from_callback(a.shape, NamedSharding(mesh, PartitionSpec()),
                                        lambda idx: a[idx])  # fmt: skip


def _run_jax(plan: _Plan, target, kernel, pos0, rng, total, warmup, bar, mesh):
    import jax

    from langevin.backends import jax_backend as be

    dtype = np.dtype(be.default_float())
    eng_target = _engine_target(target, plan.clients, "jax")
    prepared = be.prepare(kernel, eng_target, plan.d, dtype)
    n = plan.members
    members = np.arange(n)

    def host_params(sl):
        return plan.params_for(members[sl])

    example = plan.params_for(np.array([min(plan.clients.shards) * plan.M]))
    leaves, treedef = jax.tree_util.tree_flatten(example)

    def leaf_dtype(v):
        return np.int32 if np.issubdtype(np.asarray(v).dtype, np.integer) else dtype

    params = jax.tree_util.tree_unflatten(treedef, [
        _to_device(lambda sl, i=i: jax.tree_util.tree_leaves(host_params(sl))[i],
                   (n, *np.shape(v)[1:]), leaf_dtype(v), mesh)
        for i, v in enumerate(leaves)
    ])  # fmt: skip
    state = FedState(
        _to_device(lambda sl: pos0[sl], (n, plan.d), dtype, mesh),
        _to_device(lambda sl: np.zeros(n)[sl], (n,), dtype, mesh),
    )
    h = _to_device(lambda sl: np.full(n, kernel.step_size)[sl], (n,), dtype, mesh)
    ad_cls = prepared.adaptation_cls
    ad = ad_cls.State(*(_to_device(lambda sl: np.zeros(n)[sl], (n,), dtype, mesh)
                        for _ in ad_cls.State._fields))  # fmt: skip
    ad_params = type(ad_cls(kernel, None).params())(
        *(np.asarray(v, dtype) for v in ad_cls(kernel, None).params())
    )
    data = jax.tree_util.tree_map(np.asarray, jax.device_get(prepared.form.data))
    b = plan.alg.batch_size
    per_round = n * plan.K * ((b or 0) + 2 * plan.d) * dtype.itemsize + n * n * dtype.itemsize
    L = int(max(1, min(_MAX_BLOCK, total, _NOISE_BYTES // max(per_round, 1))))
    if mesh is not None:  # where each client's shard lives: {device: clients}
        per = plan.M
        placement = {}
        for s in params.shard[0].addressable_shards:
            sl = s.index[0]
            start, stop = sl.start or 0, n if sl.stop is None else sl.stop
            placement[str(s.device)] = sorted({m // per for m in range(start, stop)})
        plan.placement = placement
    fn = _jax_block_fn(prepared, plan.K, mesh)
    keep = total - warmup
    draws = np.full((plan.chains, keep, plan.d), np.nan)
    sent = np.zeros((plan.chains, keep))
    part = np.zeros((plan.chains, keep))
    done = 0
    while done < total:
        cnt = min(L, total - done)
        batch = np.zeros((L, n, plan.K, b or 1))
        normal = np.zeros((L, n, plan.K, plan.d))
        common = np.zeros((L, n, plan.K, plan.d))
        Gs = np.zeros((L, n, n))
        Rs = np.zeros((L, plan.chains, n))
        valid = np.zeros(L, dtype=bool)
        for i in range(cnt):
            bt, nm, cm = plan.draw_noise(rng)
            G, R, s, p = plan.draw_mixing(rng)
            if b is not None:
                batch[i] = bt
            normal[i], common[i], Gs[i], Rs[i], valid[i] = nm, cm, G, R, True
            r = done + i
            if r >= warmup:
                sent[:, r - warmup] = s
                part[:, r - warmup] = p
        fields = ((batch,) if b is not None else ()) + (normal, common)
        noise = kernel.Noise(*(
            _to_device(lambda sl, a=a: a[:, sl], a.shape, dtype, mesh, axis=1) for a in fields
        ))  # fmt: skip
        state, rec = fn(state, params, h, ad, ad_params, data, noise,
                        _replicated(Gs, mesh, dtype), _replicated(Rs, mesh, dtype),
                        _replicated(valid, mesh))  # fmt: skip
        rec = np.asarray(rec if mesh is None else rec.addressable_data(0), dtype=np.float64)
        for i in range(cnt):
            r = done + i
            if r >= warmup:
                draws[:, r - warmup] = rec[i]
        done += cnt
        if bar is not None:
            bar.update(cnt)
    return draws, sent, part


def sample_federated(
    target,
    algorithm,
    clients: Clients,
    *,
    rounds: int,
    warmup_rounds: int = 0,
    chains: int | None = None,
    backend: str = "numba",
    seed: int | None = None,
    initial_position: Any = None,
    progress: bool = True,
    mesh: Any = None,
) -> FederatedTrace:
    """Sample the pooled posterior of data split over clients that never share it.

    Each round runs ``algorithm.local_steps`` local steps on every client, then the
    communication step (:mod:`langevin.federated.algorithms`); the trace holds one draw per
    round of the server iterate.

    Args:
        target: the pooled :class:`~langevin.targets.data_targets.DataTarget` (its functions;
            the data each client reads is its shard in ``clients``).
        algorithm: :class:`~langevin.federated.DSGLD`, :class:`~langevin.federated.FSGLD` or
            :class:`~langevin.federated.FALD`.
        clients: :class:`~langevin.federated.Clients` from :func:`~langevin.federated.split`.
        rounds: kept rounds (draws per chain). warmup_rounds: rounds run first and dropped.
        chains: FA-LD: independent federations (default 1). DSGLD/FSGLD: chains, a multiple
            of the number of clients (default: one per client).
        backend: ``"numba"`` or ``"jax"`` (float64 with ``jax_enable_x64``, else float32).
        seed: one seed gives one chain, the same on both backends (None: fresh entropy).
        initial_position: ``(dim,)`` for every chain, or ``(chains, dim)``; default the
            target's ``initial_position`` (else 0), no jitter.
        progress: a tqdm bar over rounds.
        mesh: JAX only: a one-axis ``jax.sharding.Mesh``; clients are split over its devices
            (the number of clients a multiple of the devices), also across processes under
            ``jax.distributed``.

    Returns:
        :class:`FederatedTrace` (``to_arviz()`` like any trace; ``communication`` and
        ``communication_summary()`` for the network cost).

    Example:
        >>> import numpy as np, langevin
        >>> from langevin.federated import FALD, sample_federated, split, partition_sorted
        >>> X, y = langevin.targets.rand_hie_design()
        >>> target = langevin.targets.logistic_regression_data(X, y)
        >>> clients = split(target, partition_sorted(X[:, 1], 8))
        >>> trace = sample_federated(target, FALD(1e-5, local_steps=10, batch_size=64),
        ...                          clients, rounds=20, seed=1, progress=False)
        >>> trace.draws.shape
        (1, 20, 10)
    """
    M = _check_args(target, algorithm, clients, rounds, warmup_rounds, chains, backend, seed,
                    mesh)  # fmt: skip
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    n_chains = M if isinstance(algorithm, FALD) else M * clients.n_clients
    x0 = _initial(target, initial_position, n_chains)
    surrogates = None
    if algorithm.conducive:
        surrogates = algorithm.surrogates
        if surrogates is None:
            surrogates = _fit_everywhere(target, clients, backend)
        surrogates = surrogates.check(clients.n_clients, target.dim)
    if backend == "jax":
        from langevin.backends import jax_backend

        if mesh is not None:
            mesh = jax_backend.member_mesh(mesh)
        itemsize = np.dtype(jax_backend.default_float()).itemsize
    else:
        itemsize = 8
    plan = _Plan(target, algorithm, clients, M, surrogates, itemsize)
    kernel = local_kernel(algorithm.step_size, algorithm.batch_size, algorithm.conducive)
    rng = np.random.default_rng(seed)
    pos0 = plan.initial_positions(x0, rng)
    total = warmup_rounds + rounds
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="round", leave=True, dynamic_ncols=True,
                   desc=f"{algorithm.name} (K={algorithm.local_steps})")  # fmt: skip
    t0 = time.perf_counter()
    try:
        if backend == "numba":
            draws, sent, part = _run_numba(plan, target, kernel, pos0, rng, total,
                                           warmup_rounds, bar)  # fmt: skip
        else:
            draws, sent, part = _run_jax(plan, target, kernel, pos0, rng, total,
                                         warmup_rounds, bar, mesh)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    bad = ~np.all(np.isfinite(draws), axis=-1)
    diverged = {int(c): int((np.argmax(bad[c]) + 1 + warmup_rounds) * plan.K)
                for c in range(n_chains) if bad[c].any()}  # fmt: skip
    communication = {
        "algorithm": algorithm.name,
        "rounds": int(rounds),
        "warmup_rounds": int(warmup_rounds),
        "local_steps": int(plan.K),
        "clients": int(clients.n_clients),
        "itemsize": int(itemsize),
        "bytes_per_round": float(np.sum(sent) / max(rounds, 1)),
        "total_bytes": float(np.sum(sent)),
        "setup_bytes": plan.setup_bytes(),
    }
    if plan.placement is not None:
        communication["placement"] = plan.placement
    return FederatedTrace(
        draws=draws,
        sample_stats={"bytes_sent": sent, "participants": part},
        warmup_stats={},
        step_size=np.full(n_chains, float(algorithm.step_size)),
        names=target.names_or_default(),
        kernel=algorithm,
        backend=backend,
        seed=seed,
        target_name=target.name,
        diverged=diverged,
        elapsed=elapsed,
        communication=communication,
    )


def _fit_everywhere(target, clients: Clients, backend: str):
    """Laplace surrogates of the held clients; under ``jax.distributed`` the processes
    exchange theirs (each client's row comes from the process holding its shard)."""
    # The Numba form when the target has one, whatever the sampling backend: both backends
    # then run from the same surrogates (the same chain for the same seed).
    sur = fit_surrogates(target, clients)
    if backend == "jax":
        import jax

        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            from langevin.federated.algorithms import GaussianSurrogates

            m = np.asarray(multihost_utils.process_allgather(sur.means))
            p = np.asarray(multihost_utils.process_allgather(sur.precisions))
            means = np.nanmax(np.where(np.isnan(m), -np.inf, m), axis=0)
            precs = np.nanmax(np.where(np.isnan(p), -np.inf, p), axis=0)
            sur = GaussianSurrogates(means, precs, sur.prior_fraction)
    return sur
