"""Benchmark hlmlib.mixed against statsmodels' MixedLM (and lme4 when Rscript with lme4 is available).

    python benchmarks/bench_mixed.py            # HSB + synthetic N = 1e6 (statsmodels at N = 1e5)
    python benchmarks/bench_mixed.py --full     # also statsmodels at N = 1e6 (about 30 s)
    python benchmarks/bench_mixed.py --single-thread   # BLAS pinned to one thread (set before numpy loads)

Prints wall times and ratios measured in this run (machines are shared and noisy; never compare with
absolute times from elsewhere), and checks that the estimates agree.

1. The Raudenbush-Bryk HSB model, REML: mathach ~ catholic*cses + meanses*cses + (1 + cses | school).
2. The synthetic design of /work/shared/reference/performance_baselines.md (np.random.default_rng(1)):
   g sorted uniform in [0, J); z_j, x_ij ~ N(0, 1); u0_j ~ N(0, 1); u1_j = 0.3 u0_j + N(0, 0.5^2);
   e_ij ~ N(0, 2^2); y = 1 + 0.5 x + 0.8 z + 0.3 x z + u0 + u1 x + e; REML y ~ x*z + (1 + x | g).
   hlmlib's time includes everything from arrays to result: group coding, checks, the one pass over
   the data (cross-products), the optimisation and the result.

Why a BLAS thread option: the per-group matrices are 2 x 2, far too small for threads, but OpenBLAS's
threads (NumPy's and SciPy's copies) can cost milliseconds per call when the machine is oversubscribed.
"""
from __future__ import annotations

import os
import sys

if "--single-thread" in sys.argv:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"

import shutil
import subprocess
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

import hlmlib
from hlmlib.datasets import load_hsb

HSB_FORMULA = "mathach ~ catholic + meanses + cses + cses:catholic + cses:meanses"


def best_time(fn, repeat):
    """Median wall time of ``repeat`` runs after one warm-up run; returns (seconds, last result)."""
    out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def synthetic(N: int, J: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    g = np.sort(rng.integers(0, J, size=N))
    z = rng.normal(size=J)
    x = rng.normal(size=N)
    u0 = rng.normal(size=J)
    u1 = 0.3 * u0 + rng.normal(scale=0.5, size=J)
    e = rng.normal(scale=2.0, size=N)
    y = 1 + 0.5 * x + 0.8 * z[g] + 0.3 * x * z[g] + u0[g] + u1[g] * x + e
    X = np.column_stack([np.ones(N), x, z[g], x * z[g]])
    return y, X, g, X[:, :2]


def statsmodels_fit(y, X, g, Z):
    import statsmodels.api as sm
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sm.MixedLM(y, X, groups=g, exog_re=Z).fit(reml=True)


def agreement(ours, theirs) -> dict:
    """Largest relative differences: fixed effects, tau, sigma^2, and the log-likelihood difference."""
    fe = np.asarray(theirs.fe_params)
    tau_rel = np.abs(ours.tau.to_numpy() - theirs.cov_re) / np.abs(ours.tau.to_numpy()).max()
    return {"beta": np.abs(ours.params.to_numpy() / fe - 1).max(), "tau": float(np.max(tau_rel)),
            "sigma2": abs(ours.sigma2 / theirs.scale - 1), "llf(ours - sm)": ours.llf - theirs.llf}


def lme4_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    try:
        done = subprocess.run(["Rscript", "-e", "suppressMessages(library(lme4))"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def lme4_time(frame: pd.DataFrame, formula: str, repeat: int = 3) -> float:
    """Median lmer() time measured inside R (data already loaded), default optimiser settings."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.csv")
        frame.to_csv(path, index=False)
        script = (f"suppressMessages(library(lme4)); d <- read.csv('{path}'); m <- lmer({formula}, d); "
                  f"t <- replicate({repeat}, system.time(lmer({formula}, d))[['elapsed']]); cat(median(t))")
        done = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, timeout=3600)
    return float(done.stdout.strip().split()[-1])


def row(label, seconds, peers=()):
    ratios = "   ".join(f"{name} / hlmlib = {t / seconds:7.1f}x" for name, t in peers if t is not None)
    print(f"  {label:<44s} {1000 * seconds:10.1f} ms   {ratios}")


def main():
    full = "--full" in sys.argv
    print(f"hlmlib {hlmlib.__version__}, numpy {np.__version__}, "
          f"BLAS threads: OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}")
    have_lme4 = lme4_available()
    if not have_lme4:
        print("lme4: skipped (Rscript with lme4 is not available here)")

    # --- 1. HSB ---------------------------------------------------------------------------------
    df = load_hsb()
    X = np.column_stack([np.ones(len(df)), df.catholic, df.meanses, df.cses, df.cses * df.catholic,
                         df.cses * df.meanses])
    Z = X[:, [0, 3]]
    y, g = df.mathach.to_numpy(), df.school.to_numpy()
    t_arr, ours = best_time(lambda: hlmlib.mixed(y, X, g, Z), repeat=30)
    t_formula, _ = best_time(lambda: hlmlib.mixed(HSB_FORMULA, data=df, groups="school", re="~ cses"), repeat=5)
    t_sm, sm_fit = best_time(lambda: statsmodels_fit(y, X, g, Z), repeat=3)
    t_lme4 = lme4_time(df, HSB_FORMULA + " + (1 + cses | school)") if have_lme4 else None
    print(f"\n1. HSB REML (N = {len(y)}, J = {ours.ngroups}); hlmlib converged={ours.converged}, "
          f"-2 llf = {ours.deviance:.6f}")
    peers = [("statsmodels", t_sm), ("lme4", t_lme4)]
    row("hlmlib.mixed, arrays (target < 10 ms)", t_arr, peers)
    row("hlmlib.mixed, formula", t_formula, peers)
    row("statsmodels MixedLM", t_sm)
    if t_lme4 is not None:
        row("lme4 lmer", t_lme4)
    print("  agreement with statsmodels:", {k: f"{v:.2e}" for k, v in agreement(ours, sm_fit).items()})

    # --- 2. synthetic ---------------------------------------------------------------------------
    print("\n2. synthetic y ~ x*z + (1 + x | g), REML")
    results = {}
    for N, J in [(100_000, 1_000), (1_000_000, 10_000)]:
        y, X, g, Z = synthetic(N, J)
        t_ours, ours = best_time(lambda: hlmlib.mixed(y, X, g, Z), repeat=3 if N > 100_000 else 5)
        run_sm = N <= 100_000 or full
        t_sm, sm_fit = best_time(lambda: statsmodels_fit(y, X, g, Z), repeat=1) if run_sm else (None, None)
        t_lme4 = None
        if have_lme4:
            frame = pd.DataFrame({"y": y, "x": X[:, 1], "z": X[:, 2], "g": g})
            t_lme4 = lme4_time(frame, "y ~ x*z + (1 + x | g)", repeat=1)
        results[N] = (t_ours, t_sm)
        print(f"  N = {N:,}, J = {J:,}: hlmlib converged={ours.converged}, boundary={ours.boundary}, "
              f"{ours.n_evaluations} criterion evaluations")
        row("hlmlib.mixed (target < 1 s at N = 1e6)", t_ours, [("statsmodels", t_sm), ("lme4", t_lme4)])
        if t_sm is not None:
            row("statsmodels MixedLM", t_sm)
            print("    agreement with statsmodels:", {k: f"{v:.2e}" for k, v in agreement(ours, sm_fit).items()})
        else:
            print("    statsmodels at this size: skipped (about 30 s; run with --full)")
        if t_lme4 is not None:
            row("lme4 lmer", t_lme4)
    t_ours_big = results[1_000_000][0]
    t_sm_small = results[100_000][1]
    if results[1_000_000][1] is None:
        print(f"  ratio statsmodels(N = 1e5) / hlmlib(N = 1e6) = {t_sm_small / t_ours_big:.1f}x "
              "(statsmodels on a ten times smaller problem)")


if __name__ == "__main__":
    main()
