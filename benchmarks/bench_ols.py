"""Benchmark: hlmlib's OLS + cluster-robust covariances against peers measured in the same run.

    python benchmarks/bench_ols.py            # the sizes of the issue (about a minute)
    python benchmarks/bench_ols.py --quick    # a tenth of the rows, for a smoke test

Tasks (targets from the issue; the machine is shared and noisy, so only same-run ratios count):
1. OLS + CR1 (Stata's factor) at N = 2,000,000, G = 10,000, k = 6: hlmlib at least 2x faster than
   statsmodels ``OLS(y, X).fit(cov_type="cluster", ...)``; a plain NumPy QR + bincount is shown
   as the floor, pyfixest if installed.
2. OLS + CR2 with Bell-McCaffrey/Satterthwaite df for every coefficient at N = 100,000, G = 1,000,
   k = 4: under 0.2 s; clubSandwich's ``coef_test(..., "Satterthwaite")`` is run through Rscript
   when R and clubSandwich are installed (else the row says it was skipped).

Data: the synthetic design of /shared/reference/performance_baselines.md with
np.random.default_rng(1): g = sorted uniform integers in [0, G); z_j, x_ij ~ N(0, 1); u0_j ~ N(0, 1);
u1_j = 0.3 u0_j + N(0, 0.5^2); e_ij ~ N(0, 2^2); y = 1 + 0.5 x + 0.8 z + 0.3 x z + u0 + u1 x + e;
X = [1, x, z, x z] (k = 4), and for k = 6 two more N(0, 1) regressors drawn after those.
Each time is the best of ``--repeat`` runs (peers in R: one run).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hlmlib  # noqa: E402


def synthetic(N: int, G: int, k: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    g = np.sort(rng.integers(0, G, N))
    z = rng.standard_normal(G)[g]
    x = rng.standard_normal(N)
    u0 = rng.standard_normal(G)
    u1 = 0.3 * u0 + rng.normal(0.0, 0.5, G)
    e = rng.normal(0.0, 2.0, N)
    y = 1 + 0.5 * x + 0.8 * z + 0.3 * x * z + u0[g] + u1[g] * x + e
    columns = [np.ones(N), x, z, x * z]
    if k > 4:
        columns += list(rng.standard_normal((k - 4, N)))
    return y, np.column_stack(columns), g


def best_time(fn, repeat: int):
    best, value = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def max_relative_difference(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def plain_numpy_cr1(y, X, g):
    """The floor: QR solve, residuals, bincount scores, Stata's CR1 factor. No checks, no names."""
    Q, R = np.linalg.qr(X)
    b = np.linalg.solve(R, Q.T @ y)
    e = y - X @ b
    G = g.max() + 1
    scores = np.column_stack([np.bincount(g, weights=X[:, j] * e, minlength=G) for j in range(X.shape[1])])
    R_inv = np.linalg.inv(R)
    n, k = X.shape
    return R_inv @ R_inv.T @ (scores.T @ scores) @ R_inv @ R_inv.T * G / (G - 1) * (n - 1) / (n - k)


def cr1_task(N, G, k, repeat, rows):
    import statsmodels.api as sm

    y, X, g = synthetic(N, G, k)
    task = f"OLS + CR1, N={N:,}, G={G:,}, k={k}"
    t_h, V_h = best_time(lambda: hlmlib.ols(y, X).vcov("CR1", g).to_numpy(), repeat)
    rows.append((task, "hlmlib ols(y, X).vcov('CR1', g)", t_h, 1.0, "-"))
    t_s, V_s = best_time(lambda: sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": g}).cov_params(), repeat)
    rows.append((task, "statsmodels OLS.fit(cov_type='cluster')", t_s, t_s / t_h,
                 f"max rel diff {max_relative_difference(V_h, V_s):.1e}"))
    t_n, V_n = best_time(lambda: plain_numpy_cr1(y, X, g), repeat)
    rows.append((task, "plain NumPy QR + bincount (floor)", t_n, t_n / t_h,
                 f"max rel diff {max_relative_difference(V_h, V_n):.1e}"))
    try:
        import pandas as pd
        import pyfixest

        frame = pd.DataFrame(X[:, 1:], columns=[f"x{j}" for j in range(1, k)]).assign(y=y, g=g)
        formula = "y ~ " + " + ".join(f"x{j}" for j in range(1, k))
        t_p, _ = best_time(lambda: pyfixest.feols(formula, data=frame, vcov={"CRV1": "g"}).vcov(), repeat)
        rows.append((task, "pyfixest feols(vcov CRV1)", t_p, t_p / t_h, "-"))
    except ImportError:
        rows.append((task, "pyfixest", np.nan, np.nan, "skipped: not installed"))
    return t_s / t_h


R_SCRIPT = r"""
suppressMessages(library(clubSandwich))
d <- read.csv("{csv}")
d$g <- factor(d$g)
timing <- system.time({{
  m <- lm(y ~ x * z, data = d)
  ct <- coef_test(m, vcov = "CR2", cluster = d$g, test = "Satterthwaite")
}})
cat(timing[["elapsed"]], "\n")
cat(sprintf("%.17g", ct$df_Satt), "\n")
"""


def cr2_task(N, G, repeat, rows):
    y, X, g = synthetic(N, G, 4)
    task = f"OLS + CR2 + Satterthwaite df, N={N:,}, G={G:,}, k=4"
    t_h, table = best_time(lambda: hlmlib.ols(y, X).summary("CR2", g), repeat)
    rows.append((task, "hlmlib ols(y, X).summary('CR2', g)", t_h, 1.0, "target < 0.2 s: "
                 + ("met" if t_h < 0.2 else "NOT met")))
    rscript = shutil.which("Rscript")
    has_club = rscript and subprocess.run([rscript, "-e", "library(clubSandwich)"],
                                          capture_output=True).returncode == 0
    if not has_club:
        rows.append((task, "clubSandwich coef_test (R)", np.nan, np.nan, "skipped: R/clubSandwich not installed"))
        return
    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "d.csv")
        np.savetxt(csv, np.column_stack([y, X[:, 1], X[:, 2], g]), delimiter=",", header="y,x,z,g",
                   comments="", fmt="%.17g")
        script = os.path.join(tmp, "bench.R")
        Path(script).write_text(R_SCRIPT.format(csv=csv))
        out = subprocess.run([rscript, script], capture_output=True, text=True, check=True).stdout.split("\n")
    t_r = float(out[0])
    df_r = np.array(out[1].split(), dtype=float)
    # R orders the coefficients (Intercept), x, z, x:z, as hlmlib's columns here
    rows.append((task, "clubSandwich coef_test (R, lm + CR2 + df)", t_r, t_r / t_h,
                 f"df max rel diff {max_relative_difference(table['df'].to_numpy(), df_r):.1e}"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shrink = 10 if args.quick else 1
    rows: list[tuple] = []
    speedup = cr1_task(2_000_000 // shrink, 10_000 // shrink, 6, args.repeat, rows)
    cr2_task(100_000 // shrink, 1_000 // shrink, args.repeat, rows)
    width = max(len(r[1]) for r in rows)
    print(f"{'task':52s} {'implementation':{width}s} {'time (s)':>9s} {'peer/hlmlib':>11s}  note")
    for task, impl, seconds, ratio, note in rows:
        print(f"{task:52s} {impl:{width}s} {seconds:9.3f} {ratio:11.2f}  {note}")
    print(f"\nCR1 target (statsmodels / hlmlib >= 2): {'met' if speedup >= 2 else 'NOT met'} ({speedup:.2f}x)")
    print(f"BLAS threads: OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
