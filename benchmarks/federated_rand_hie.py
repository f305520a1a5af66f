"""Federated Langevin on real data: the RAND Health Insurance Experiment split non-IID.

Logistic regression (prior N(0, 2² I)) on the 20 190 × 10 RAND HIE design
(``langevin.targets.rand_hie_design``), rows sorted by the binary plan indicator ``idp``
(``X[:, 2]``) and cut into 8 clients of unequal sizes (Dirichlet, seed 1): five clients hold
only ``idp = 0``, two only ``idp = 1``, one a mix, with label rates 0.62–0.72. Measured
against a reference posterior (MALA, 4 × 4000 draws, full data; ``--tiny``: the Laplace
approximation):

A. bias against the number of local steps K at a fixed number of local steps per client:
   DSGLD, FSGLD (Laplace surrogates), FA-LD with independent and with correlated noise;
B. FA-LD against the participation S (schemes I and II) at K = 10;
C. rounds, wall time and bytes until the moment-matched W2 of the draws so far falls below a
   threshold, next to centralized SGLD (``langevin.SGLD`` on Numba — its without-replacement
   minibatch of 8 b indices is slow to draw on JAX's CPU —, the pooled minibatch of 8 b);
D. scaling of one FA-LD run from 1 to 8 fake CPU devices and over 2 processes (subprocesses;
   on this 2-core machine the devices share two cores, so this measures the overhead of the
   mesh, not a speed-up).

Metric: W2 between the Gaussians with the draws' and the reference's mean and covariance
(``w2_gauss``), and the largest mean error in posterior sds. Every run is on JAX in float64.

Usage:
    python -m benchmarks.federated_rand_hie            # full (a few minutes)
    python -m benchmarks.federated_rand_hie --tiny     # smoke test (seconds)
Writes ``federated_rand_hie[_tiny].{md,csv}`` and ``federated_rand_hie_*.png`` to
``benchmarks/results/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
C = 8
PRIOR_SCALE = 2.0
STEP = 1e-5
BATCH = 500


def problem():
    import langevin
    from langevin.federated import partition_sorted, split

    X, y = langevin.targets.rand_hie_design()
    target = langevin.targets.logistic_regression_data(X, y, prior_scale=PRIOR_SCALE)
    parts = partition_sorted(X[:, 2], C, imbalance=0.5, seed=1)
    return target, split(target, parts), X, y, parts


def laplace(target):
    from langevin.kernels.sgmcmc import find_mode

    mode = find_mode(target).position
    H = np.empty((target.dim, target.dim))
    for j in range(target.dim):
        e = np.zeros(target.dim)
        e[j] = 1e-5
        H[:, j] = (target.full_value_and_grad(mode + e)[1]
                   - target.full_value_and_grad(mode - e)[1]) / 2e-5  # fmt: skip
    cov = np.linalg.inv(-0.5 * (H + H.T))
    return mode, 0.5 * (cov + cov.T)


def reference(target, tiny: bool):
    mode, cov = laplace(target)
    if tiny:
        return mode, cov, "Laplace approximation"
    import langevin

    trace = langevin.sample(target, langevin.MALA(0.005), chains=4, warmup=1000, draws=4000,
                            seed=0, initial_position=mode, progress=False)  # fmt: skip
    d = trace.flat()
    return d.mean(axis=0), np.cov(d.T), "MALA, 4 x 4000 draws (full data)"


def w2_gauss(m1, S1, m2, S2) -> float:
    from scipy.linalg import sqrtm

    r = np.real(sqrtm(S2))
    cross = np.real(sqrtm(r @ S1 @ r))
    return float(np.sqrt(max(0.0, np.sum((m1 - m2) ** 2) + np.trace(S1 + S2 - 2 * cross))))


def metrics(draws, ref_mean, ref_cov):
    flat = draws.reshape(-1, draws.shape[-1])
    m, S = flat.mean(axis=0), np.cov(flat.T)
    sd = np.sqrt(np.diag(ref_cov))
    return {"w2": w2_gauss(m, S, ref_mean, ref_cov),
            "mean_err_sd": float(np.max(np.abs(m - ref_mean) / sd)),
            "var_ratio": float(np.mean(np.diag(S) / np.diag(ref_cov)))}  # fmt: skip


def run(alg, target, clients, steps: int, start, seed=1):
    from langevin.federated import sample_federated

    K = alg.local_steps
    rounds = max(2, steps // K)
    warm = max(1, rounds // 10)
    t0 = time.perf_counter()
    tr = sample_federated(target, alg, clients, rounds=rounds, warmup_rounds=warm, seed=seed,
                          progress=False, backend="jax", initial_position=start)  # fmt: skip
    return tr, time.perf_counter() - t0


def to_threshold(trace, ref_mean, ref_cov, threshold, seconds, per_round_bytes):
    """First kept round at which the draws so far (all chains) reach W2 <= threshold."""
    n = trace.n_draws
    for r in np.unique(np.linspace(max(10, n // 50), n, 50).astype(int)):
        if metrics(trace.draws[:, :r], ref_mean, ref_cov)["w2"] <= threshold:
            return int(r), seconds * r / n, per_round_bytes * r
    return None, None, None


def scaling_worker(mode: str, devices: int, out: str) -> None:
    """Run in a subprocess: time FA-LD (K = 10) with the clients on ``devices`` devices."""
    import jax

    jax.config.update("jax_enable_x64", True)
    if mode == "process":
        pid, port = devices, os.environ["FED_PORT"]
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=pid)
    from langevin.federated import FALD, sample_federated
    from langevin.federated.driver import local_clients

    target, clients, *_ = problem()
    ndev = len(jax.devices())
    mesh = jax.make_mesh((ndev,), ("clients",)) if ndev > 1 else None
    if mesh is not None:
        clients = clients.subset(local_clients(mesh, C))
    alg = FALD(STEP, local_steps=10, batch_size=BATCH)
    rounds = int(os.environ.get("FED_ROUNDS", "1000"))
    sample_federated(target, alg, clients, rounds=20, seed=1, progress=False, backend="jax",
                     mesh=mesh)  # fmt: skip
    t0 = time.perf_counter()
    tr = sample_federated(target, alg, clients, rounds=rounds, seed=1, progress=False,
                          backend="jax", mesh=mesh)  # fmt: skip
    sec = time.perf_counter() - t0
    if jax.process_index() == 0:
        Path(out).write_text(json.dumps({"devices": ndev, "processes": jax.process_count(),
                                         "seconds": sec, "rounds": rounds,
                                         "last": tr.draws[0, -1].tolist()}))  # fmt: skip
    if mode == "process":
        jax.distributed.shutdown()


def scaling(rounds: int, tmp: Path) -> list[dict]:
    rows = []
    env0 = dict(os.environ, FED_ROUNDS=str(rounds), JAX_PLATFORMS="cpu")
    me = [sys.executable, "-m", "benchmarks.federated_rand_hie", "--worker"]
    for dev in (1, 2, 4, 8):
        env = dict(env0, XLA_FLAGS=f"--xla_force_host_platform_device_count={dev}")
        out = tmp / f"scale_{dev}.json"
        subprocess.run([*me, "device", str(dev), str(out)], env=env, cwd=REPO, check=True,
                       timeout=900)  # fmt: skip
        rows.append(json.loads(out.read_text()))
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(env0, XLA_FLAGS="--xla_force_host_platform_device_count=4", FED_PORT=str(port))
    out = tmp / "scale_proc.json"
    procs = [subprocess.Popen([*me, "process", str(i), str(out)], env=env, cwd=REPO)
             for i in range(2)]  # fmt: skip
    try:
        for p in procs:
            p.wait(timeout=900)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    rows.append(json.loads(out.read_text()))
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="smoke test: seconds, not minutes")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        scaling_worker(args.worker[0], int(args.worker[1]), args.worker[2])
        return {}
    tiny = args.tiny or os.environ.get("LANGEVIN_BENCH_SMOKE") == "1"
    import jax

    jax.config.update("jax_enable_x64", True)
    import langevin
    from langevin.federated import DSGLD, FALD, FSGLD, fit_surrogates

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "_tiny" if tiny else ""
    target, clients, _X, _y, _parts = problem()
    t0 = time.perf_counter()
    ref_mean, ref_cov, ref_src = reference(target, tiny)
    ref_seconds = time.perf_counter() - t0
    sur = fit_surrogates(target, clients)
    steps = 200 if tiny else 40000
    Ks = (1, 10) if tiny else (1, 10, 100)
    start = ref_mean
    rows = []

    def record(exp, name, alg, K, trace, sec, **extra):
        m = metrics(trace.draws, ref_mean, ref_cov)
        rows.append({"experiment": exp, "algorithm": name, "K": K, "rounds": trace.n_draws,
                     "chains": trace.n_chains, "seconds": round(sec, 3),
                     "bytes_per_round": trace.communication["bytes_per_round"],
                     **{k: round(v, 5) for k, v in m.items()}, **extra})  # fmt: skip
        print(
            f"{exp} {name:22s} K={K:<4d} W2={m['w2']:.4f} mean err={m['mean_err_sd']:.2f} sd "
            f"var ratio={m['var_ratio']:.2f} ({sec:.1f} s)",
            flush=True,
        )
        return m

    algs = {
        "DSGLD": lambda K: DSGLD(STEP, local_steps=K, batch_size=BATCH),
        "FSGLD": lambda K: FSGLD(STEP, local_steps=K, batch_size=BATCH, surrogates=sur),
        "FA-LD independent": lambda K: FALD(STEP, local_steps=K, batch_size=BATCH),
        "FA-LD correlated": lambda K: FALD(STEP, local_steps=K, batch_size=BATCH,
                                           noise="correlated"),
    }  # fmt: skip
    traces = {}
    for name, make in algs.items():
        for K in Ks:
            tr, sec = run(make(K), target, clients, steps, start)
            record("A", name, make(K), K, tr, sec)
            traces[(name, K)] = (tr, sec)
    K = 10
    for S, scheme in ((8, None), (4, "I"), (2, "I"), (4, "II"), (2, "II")):
        if tiny and S == 2:
            continue
        alg = FALD(STEP, local_steps=K, batch_size=BATCH, participation=None if scheme is None
                   else S, scheme=scheme or "I")  # fmt: skip
        tr, sec = run(alg, target, clients, steps, start)
        record("B", f"FA-LD S={S} {scheme or 'full'}", alg, K, tr, sec, participation=S,
               scheme=scheme or "full")  # fmt: skip
    # C: to a threshold, with centralized SGLD on the pooled data
    threshold = 0.5 * float(np.sqrt(np.trace(ref_cov)))
    t0 = time.perf_counter()
    sgld = langevin.sample(target, langevin.SGLD(STEP, batch_size=C * BATCH,
                                                 n_data=target.n_data),
                           chains=1, warmup=steps // 10, draws=steps, seed=1, backend="numba",
                           initial_position=start, progress=False)  # fmt: skip
    sgld_sec = time.perf_counter() - t0
    m = metrics(sgld.draws, ref_mean, ref_cov)
    rows.append({"experiment": "A", "algorithm": "centralized SGLD", "K": 1,
                 "rounds": sgld.n_draws, "chains": 1, "seconds": round(sgld_sec, 3),
                 "bytes_per_round": 0.0, **{k: round(v, 5) for k, v in m.items()}})  # fmt: skip
    reach = []
    for name in algs:
        tr, sec = traces[(name, 10)]
        r, s, b = to_threshold(tr, ref_mean, ref_cov, threshold, sec,
                               tr.communication["bytes_per_round"])  # fmt: skip
        reach.append((name + " (K=10)", r, s, b))
    r, s, _ = to_threshold(sgld, ref_mean, ref_cov, threshold, sgld_sec, 0.0)
    reach.append(("centralized SGLD (steps)", r, s, 0.0 if r else None))
    scale_rows = []
    if not tiny and not args.no_scaling:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            scale_rows = scaling(1000, Path(tmp))
    write(out, suffix, rows, reach, scale_rows, threshold, ref_src, ref_seconds, steps, tiny)
    return {"rows": rows, "reach": reach, "scaling": scale_rows}


def write(out, suffix, rows, reach, scale_rows, threshold, ref_src, ref_seconds, steps, tiny):
    with open(out / f"federated_rand_hie{suffix}.csv", "w", newline="") as f:
        keys = sorted({k for r in rows for k in r}, key=lambda k: list(rows[0]).index(k)
                      if k in rows[0] else 99)  # fmt: skip
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    lines = [
        "# Federated Langevin on RAND HIE (20 190 x 10 logistic regression, 8 non-IID clients)",
        "",
        f"Command: `python -m benchmarks.federated_rand_hie{' --tiny' if tiny else ''}`. "
        f"JAX backend, float64. Step h = {STEP}, batch b = {BATCH} per client (indices with "
        f"replacement), {steps} local steps per client per run (10% more as warm-up), "
        f"reference: {ref_src} ({ref_seconds:.0f} s). W2: between the Gaussians with the "
        "draws' and the reference's mean and covariance. Clients: rows sorted by covariate 2, "
        "(the binary plan indicator idp) cut into 8 blocks of Dirichlet sizes.",
        "",
        "## A. Bias against local steps K (equal local work)",
        "",
        "| algorithm | K | rounds | chains | W2 | max mean error (sd) | var ratio | bytes/round "
        "| s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["experiment"] == "A":
            lines.append(f"| {r['algorithm']} | {r['K']} | {r['rounds']} | {r['chains']} | "
                         f"{r['w2']:.4f} | {r['mean_err_sd']:.2f} | {r['var_ratio']:.2f} | "
                         f"{r['bytes_per_round']:.0f} | {r['seconds']:.1f} |")  # fmt: skip
    lines += ["", "## B. FA-LD against participation (K = 10)", "",
              "| participation | W2 | max mean error (sd) | var ratio | bytes/round |",
              "|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if r["experiment"] == "B":
            lines.append(f"| {r['algorithm']} | {r['w2']:.4f} | {r['mean_err_sd']:.2f} | "
                         f"{r['var_ratio']:.2f} | {r['bytes_per_round']:.0f} |")  # fmt: skip
    lines += [
        "",
        f"## C. To W2 <= {threshold:.4f} (half the posterior's scale sqrt(tr Sigma))",
        "",
        "| run | rounds (steps for SGLD) | wall s | bytes |",
        "|---|---|---|---|",
    ]
    for name, r, s, b in reach:
        lines.append(f"| {name} | {r if r else 'not reached'} | "
                     f"{f'{s:.2f}' if s is not None else '-'} | "
                     f"{f'{b:.3g}' if b is not None else '-'} |")  # fmt: skip
    if scale_rows:
        lines += ["", "## D. One FA-LD run (K = 10, 1000 rounds) on 1-8 fake CPU devices and 2 "
                  "processes (2-core machine)", "",
                  "| devices | processes | seconds | rounds/s | same chain as 1 device |",
                  "|---|---|---|---|---|"]  # fmt: skip
        base = np.array(scale_rows[0]["last"])
        for s in scale_rows:
            same = np.max(np.abs(np.array(s["last"]) - base)) < 1e-12
            lines.append(f"| {s['devices']} | {s['processes']} | {s['seconds']:.2f} | "
                         f"{s['rounds'] / s['seconds']:.0f} | {same} |")  # fmt: skip
    (out / f"federated_rand_hie{suffix}.md").write_text("\n".join(lines) + "\n")
    plot(out, suffix, rows)


def plot(out, suffix, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name in ("DSGLD", "FSGLD", "FA-LD independent", "FA-LD correlated"):
        rs = [r for r in rows if r["experiment"] == "A" and r["algorithm"] == name]
        axes[0].plot([r["K"] for r in rs], [r["w2"] for r in rs], "o-", label=name)
    sg = [r for r in rows if r["algorithm"] == "centralized SGLD"]
    if sg:
        axes[0].axhline(sg[0]["w2"], color="k", ls=":", label="centralized SGLD")
    axes[0].set(xscale="log", yscale="log", xlabel="local steps K", ylabel="W2 to reference",
                title="RAND HIE, 8 non-IID clients")  # fmt: skip
    axes[0].legend(fontsize=8)
    rb = [r for r in rows if r["experiment"] == "B"]
    axes[1].bar([r["algorithm"].replace("FA-LD ", "") for r in rb], [r["w2"] for r in rb])
    axes[1].set(ylabel="W2", title="FA-LD (K = 10) against participation")
    axes[1].tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(out / f"federated_rand_hie{suffix}.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
