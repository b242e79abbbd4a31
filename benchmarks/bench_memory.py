"""Time and peak memory of OLS on an uncentred design, and of the wild cluster bootstrap.

    python benchmarks/bench_memory.py            # the sizes of issue 11 (about two minutes, ~3 GB)
    python benchmarks/bench_memory.py --quick    # a tenth of the rows, for a smoke test

1. OLS + CR1 at N = 5,000,000, k = 10, G = 100,000, on the same model written two ways: centred
   (intercept and nine centred regressors) and uncentred (the intercept with a calendar-year-like column,
   1990..2020 plus noise, column-scaled condition number about 450). Both fits must take double
   precision's fast path (the extended-precision refinement is for designs whose error bound asks for
   it), so the uncentred fit's time and peak memory should be within 1.5x of the centred one's.
2. The wild cluster bootstrap at G = 10,000 clusters and B = 9,999 draws (N = 200,000, k = 4), and at
   N = 2,000,000, k = 10 (B = 999): its draws are made in chunks, so the peak memory is O(N k + G chunk),
   not the 4 G B doubles (3.2 GB at G = 1e4, B = 9,999) of holding every draw at once.

Each measurement runs in a fresh subprocess: the time is the best of two runs, the peak memory is
tracemalloc's peak (NumPy reports its arrays to it) above what the data already held, as a multiple of
the data's size; ru_maxrss (the process's peak resident set, including Python and the data) is shown
too. Set BENCH_HLMLIB=/path/to/a/checkout to measure another version's hlmlib.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = os.environ.get("BENCH_HLMLIB", str(Path(__file__).resolve().parents[1]))

WORKER = r"""
import json, resource, sys, time, tracemalloc
sys.path.insert(0, {root!r})
import numpy as np
import hlmlib

task, N, k, G, B = {task!r}, {N}, {k}, {G}, {B}
rng = np.random.default_rng(1)
g = np.sort(rng.integers(0, G, N))
Z = rng.standard_normal((N, k - 1))
if task == "uncentred":
    Z[:, 0] = rng.integers(1990, 2021, N) + rng.uniform(0, 1, N)       # a calendar year
y = Z @ np.linspace(0.5, -0.5, k - 1) + rng.standard_normal(G)[g] + 2 * rng.standard_normal(N)
X = np.column_stack([np.ones(N), Z])
del Z
data_bytes = X.nbytes + y.nbytes + g.nbytes

def ols():
    fit = hlmlib.ols(y, X)
    return fit, fit.se("CR1", g)

def bootstrap():
    return hlmlib.wild_cluster_bootstrap(y, X, cluster=g, term=1, null=0.5, B=B, seed=7)

run = bootstrap if task == "bootstrap" else ols
times = []
for _ in range(2):
    start = time.perf_counter()
    out = run()
    times.append(time.perf_counter() - start)
    del out
tracemalloc.start()
base = tracemalloc.get_traced_memory()[0]
out = run()
peak = tracemalloc.get_traced_memory()[1] - base
tracemalloc.stop()
result = dict(seconds=min(times), peak=peak, data=data_bytes,
              maxrss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
if task == "bootstrap":
    result.update(pvalue=out.pvalue, tstat=out.tstat)
else:
    fit, se = out
    result.update(slope=float(fit.params.iloc[2]), se=float(se.iloc[2]), cond=fit.lstsq.cond,
                  steps=fit.lstsq.refinement_steps)
print(json.dumps(result))
"""


def measure(task: str, N: int, k: int, G: int, B: int = 0) -> dict:
    code = WORKER.format(root=ROOT, task=task, N=N, k=k, G=G, B=B)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def mb(n: float) -> str:
    return f"{n / 2 ** 20:8.0f} MB"


def main():
    quick = "--quick" in sys.argv
    scale = 10 if quick else 1
    N, k, G = 5_000_000 // scale, 10, 100_000 // scale
    print(f"hlmlib from {ROOT}; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '1')}")
    print(f"\n1. OLS + CR1, N = {N:,}, k = {k}, G = {G:,} (data {mb(N * (k + 2) * 8).strip()})")
    rows = {}
    for task in ("centred", "uncentred"):
        r = rows[task] = measure(task, N, k, G)
        print(f"  {task:<10} {r['seconds']:7.2f} s   peak {mb(r['peak'])} = {r['peak'] / r['data']:5.2f} x data"
              f"   maxrss {mb(r['maxrss'])}   cond {r['cond']:8.1f}, refinement steps {r['steps']}")
    c, u = rows["centred"], rows["uncentred"]
    print(f"  uncentred / centred: time {u['seconds'] / c['seconds']:.2f}x, peak memory {u['peak'] / c['peak']:.2f}x "
          f"(target: within 1.5x)")

    print("\n2. Wild cluster bootstrap (Rademacher, null imposed)")
    for N_b, k_b, G_b, B_b in [(200_000 // scale, 4, 10_000 // scale, 9_999), (2_000_000 // scale, 10, 10_000 // scale, 999)]:
        r = measure("bootstrap", N_b, k_b, G_b, B_b)
        all_draws = 4 * G_b * B_b * 8
        print(f"  N = {N_b:,}, k = {k_b}, G = {G_b:,}, B = {B_b:,}: {r['seconds']:6.2f} s   peak {mb(r['peak'])} = "
              f"{r['peak'] / r['data']:5.2f} x data ({mb(r['data']).strip()})   maxrss {mb(r['maxrss'])}   "
              f"[4 G B doubles would be {mb(all_draws).strip()}]   p = {r['pvalue']:.4f}")


if __name__ == "__main__":
    main()
