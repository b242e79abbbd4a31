"""Benchmark the parametric-bootstrap LRT and the profile intervals of hlmlib against pbkrtest and lme4.

    python benchmarks/bench_lmm_bootstrap_profile.py                  # B = 1000 for hlmlib, 40 draws for pbkrtest
    python benchmarks/bench_lmm_bootstrap_profile.py --single-thread  # BLAS pinned to one thread

Prints wall times and ratios measured in this run (the machine is shared and noisy).

1. lrtest(small, big, bootstrap=B) vs pbkrtest's PBmodcomp(big, small, nsim): HSB, ML fits,
   mathach ~ catholic*cses + meanses*cses with (1 | school) vs (1 + cses | school); and the 8-school subset of
   tests/fixtures/pbmodcomp.json. pbkrtest is timed on fewer draws (its time is linear in them) and compared per
   draw.
2. MixedResult.confint() (profile, every parameter) vs lme4's confint(m) (profile, every parameter): sleepstudy
   (Reaction ~ Days + (Days | Subject)) and HSB (the model above, REML), both profiling the ML deviance.
"""
from __future__ import annotations

import json
import os
import sys

if "--single-thread" in sys.argv:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"

import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import hlmlib
from bench_mixed import lme4_available, row

ROOT = Path(__file__).resolve().parents[1]
HSB = "mathach ~ catholic*cses + meanses*cses"
R_SETUP = """suppressPackageStartupMessages({library(lme4); library(pbkrtest)})
hsb <- read.csv("%(root)s/hlmlib/datasets/hsb.csv"); hsb$cses <- hsb$ses - ave(hsb$ses, hsb$school)
sleep <- read.csv("%(root)s/hlmlib/datasets/sleepstudy.csv")
few <- hsb[hsb$school %%in%% c(%(schools)s), ]
"""
R_TIMES = """
pb_time <- function(small, big, nsim) { set.seed(1); system.time(PBmodcomp(big, small, nsim = nsim))[["elapsed"]] / nsim }
out <- list(
  pb_hsb = pb_time(lmer(mathach ~ catholic * cses + meanses * cses + (1 | school), hsb, REML = FALSE),
                   lmer(mathach ~ catholic * cses + meanses * cses + (1 + cses | school), hsb, REML = FALSE), %(nsim)d),
  pb_few = pb_time(lmer(mathach ~ cses + (1 | school), few, REML = FALSE),
                   lmer(mathach ~ cses + (1 + cses | school), few, REML = FALSE), %(nsim)d),
  ci_sleep = system.time(suppressWarnings(confint(lmer(Reaction ~ Days + (Days | Subject), sleep), quiet = TRUE)))[["elapsed"]],
  ci_hsb = system.time(suppressWarnings(confint(lmer(mathach ~ catholic * cses + meanses * cses + (1 + cses | school), hsb),
                                                quiet = TRUE)))[["elapsed"]])
cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA))
"""


def peer_times(nsim: int) -> dict:
    schools = json.loads((ROOT / "tests" / "fixtures" / "pbmodcomp.json").read_text())["schools"]
    script = R_SETUP % {"root": ROOT, "schools": ", ".join(map(str, schools))} + R_TIMES % {"nsim": nsim}
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as f:
        f.write(script)
    try:
        done = subprocess.run(["Rscript", f.name], capture_output=True, text=True, timeout=3600)
    finally:
        os.unlink(f.name)
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    B, nsim = 1000, 40
    print(f"hlmlib {hlmlib.__version__}, numpy {np.__version__}, "
          f"BLAS threads: OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}")
    peers = peer_times(nsim) if lme4_available() else {}
    if not peers:
        print("pbkrtest/lme4: skipped (Rscript with lme4 and pbkrtest is not available here)")
    warnings.simplefilter("ignore", hlmlib.BoundaryFitWarning)
    hsb = hlmlib.datasets.load_hsb()
    schools = json.loads((ROOT / "tests" / "fixtures" / "pbmodcomp.json").read_text())["schools"]
    few = hsb[hsb.school.isin(schools)]

    print(f"\n1. parametric-bootstrap LRT, ML fits, random slope of cses (hlmlib B = {B}; pbkrtest {nsim} draws, "
          "compared per draw)")
    cases = [("HSB, N = 7185, J = 160", hsb, HSB, "pb_hsb"), ("8 schools, N = 414", few, "mathach ~ cses", "pb_few")]
    for label, data, formula, key in cases:
        small = hlmlib.mixed(formula, data=data, groups="school", reml=False)
        big = hlmlib.mixed(formula, data=data, groups="school", re="~ cses", reml=False)
        seconds, result = timed(lambda: hlmlib.lrtest(small, big, bootstrap=B, seed=1))
        boot = result.bootstrap
        per_draw = seconds / B
        row(f"{label}: hlmlib, per draw", per_draw, [("pbkrtest", peers.get(key))])
        print(f"    hlmlib B = {B} in {seconds:.2f} s: p = {boot.pvalue:.4f} (MC s.e. {boot.mc_se:.4f}), "
              f"big refits on the boundary {boot.n_boundary_big}, failed {boot.n_failed}"
              + (f"; pbkrtest would take {peers[key] * B:.0f} s for B = {B}" if key in peers else ""))

    print("\n2. profile confidence intervals, every parameter (variance components and fixed effects)")
    sleep = hlmlib.mixed("Reaction ~ Days", data=hlmlib.datasets.load_sleepstudy(), groups="Subject", re="~ Days")
    hsb_fit = hlmlib.mixed(HSB, data=hsb, groups="school", re="~ cses")
    for label, fit, key in [("sleepstudy", sleep, "ci_sleep"), ("HSB", hsb_fit, "ci_hsb")]:
        seconds, _ = timed(fit.confint)
        row(f"{label}: hlmlib confint()", seconds, [("lme4", peers.get(key))])


if __name__ == "__main__":
    main()
