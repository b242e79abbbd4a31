"""The data sets the book uses, shipped inside the package so that every reader has them.

- ``load_hsb()``: High School and Beyond (1982), 7,185 students in 160 schools, the two-level example
  of Raudenbush & Bryk (2002), *Hierarchical Linear Models*, 2nd ed., ch. 4; from the ``MathAchieve``
  and ``MathAchSchool`` tables of R's nlme package (Pinheiro & Bates 2000), merged.
- ``load_petersen()``: Petersen's (2009) simulated panel of 500 firms x 10 years for testing clustered
  standard errors, *Review of Financial Studies* 22(1), 435-480; ``PetersenCL`` in R's sandwich package.
- ``load_r_reference()``: the peer values the book and the tests compare with: R 4.2.2 with sandwich 3.0-2,
  clubSandwich 0.5.8 and lme4 1.1-31 (tightened optimiser) on these data sets.
- ``load_sleepstudy()``: reaction times of 18 subjects on days 0-9 of a sleep-restriction study (days 0-1
  training, day 2 baseline, sleep restricted from the night after day 2), Belenky et al. (2003), *Journal of
  Sleep Research* 12, 1-12; ``sleepstudy`` in R's lme4 package.
"""
from __future__ import annotations

from importlib import resources

import json

import pandas as pd

__all__ = ["load_hsb", "load_petersen", "load_sleepstudy", "load_r_reference"]


def _read(name: str, **kwargs) -> pd.DataFrame:
    with resources.files(__name__).joinpath(name).open("rb") as fh:
        return pd.read_csv(fh, **kwargs)


def load_hsb() -> pd.DataFrame:
    """High School and Beyond: one row per student.

    Columns: ``school`` (id), ``minority``, ``female`` (0/1), ``ses`` (student socio-economic status),
    ``mathach`` (math achievement), and the school-level ``meanses`` (school mean SES *as published in
    the school file*, the variable Raudenbush & Bryk use), ``size``, ``catholic`` (1 = Catholic sector),
    ``pracad``, ``disclim``, ``himinty``. Added here: ``cses = ses - mean(ses in the school)``, SES
    centred on the mean of the sampled students of its school (group-mean centring, as in R&B).
    """
    df = _read("hsb.csv")
    df["cses"] = df["ses"] - df.groupby("school")["ses"].transform("mean")
    return df


def load_petersen() -> pd.DataFrame:
    """Petersen's panel: ``firm`` (1-500), ``year`` (1-10), regressor ``x``, response ``y``."""
    return _read("petersen.csv")


def load_sleepstudy() -> pd.DataFrame:
    """lme4's sleepstudy: ``Reaction`` (ms), ``Days`` (0-9; days 0-1 training, day 2 baseline, sleep restricted
    after day 2, as lme4's ``?sleepstudy`` says), ``Subject`` (id, as text)."""
    return _read("sleepstudy.csv", dtype={"Subject": str})


def load_r_reference() -> dict:
    """Reference values from R for the shipped data, keyed by model (``petersen_ols``, ``hsb_ols``, ``hsb_reml``,
    ``hsb_ml``, ``hsb_null_reml``, ``sleepstudy_reml``, ``sleepstudy_ri_ml``).

    Each entry names its R call (``formula``), the order of its vectors (``terms``, ``vc_order``) and holds
    coefficients, standard errors (``se_HC1``, ``se_CR1_stata``, ``se_CR2``, ... as R's sandwich and clubSandwich
    compute them), CR2 Satterthwaite df, variance components and the REML criterion or log-likelihood of lme4.
    """
    with resources.files(__name__).joinpath("r_reference.json").open("r", encoding="utf-8") as fh:
        return json.load(fh)
