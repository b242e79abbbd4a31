"""Every public function and result method of hlmlib (the gls module's have their own tests) refuses a
bad argument with hlmlib.InputError: never a raw NumPy/pandas/SciPy/formulaic exception, a silent
coercion (reml="no", B=2.5, term=1.7, a numeric-valued Categorical) or a NaN without a warning.

``BAD`` lists, for each public callable, calls with bad values; ``test_every_public_callable_is_walked``
checks that the list covers every public function and method that takes arguments, so a new one must
come with its cases.
"""
import inspect
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

import hlmlib
from hlmlib import InputError, plots, simulate as sim
from hlmlib.bootstrap import (WildBootstrapMC, WildBootstrapResult, bootstrap_weights, wild_cluster_bootstrap,
                              wild_cluster_bootstrap_mc)
from hlmlib.inference import CoefTable
from hlmlib.mixed import MixedResult, MixedSummary, lrtest
from hlmlib.ols import OLSResult
from hlmlib.simulate import MonteCarloOLS
from hlmlib.tables import ETable

NAN, INF = float("nan"), float("inf")

rng = np.random.default_rng(11)
DF = sim.cgm(G=8, n=6, seed=3)
DF["g"] = pd.Categorical(np.where(DF.cluster % 2 == 0, "a", "b"))
DF["xz"] = DF.x * rng.normal(size=len(DF))
N = len(DF)
Y = DF.y.to_numpy()
X = np.column_stack([np.ones(N), DF.x.to_numpy()])
CL = DF.cluster.to_numpy()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    FIT = hlmlib.ols("y ~ x * xz", data=DF)
    CAT_FIT = hlmlib.ols("y ~ x + g", DF)
    ARRAY_FIT = hlmlib.ols(Y, X)
    MIXED = hlmlib.mixed("y ~ x * xz", data=DF, groups="cluster")
    SLOPES = hlmlib.mixed("y ~ x", data=DF, groups="cluster", re="~ x")
    NULL_MIXED = hlmlib.mixed("y ~ x", data=DF, groups="cluster")
    ARRAY_MIXED = hlmlib.mixed(Y, X, CL, Z=X)
    WCB = wild_cluster_bootstrap(Y, X, cluster=CL, term=1, null=1.0, B=99, seed=1)
    MC = sim.ols_mc(sim.cgm_batch(20, G=6, n=5, seed=2))
    WCB_BATCH = sim.cgm_batch(5, G=6, n=5, seed=2)
    WCB_MC = wild_cluster_bootstrap_mc(WCB_BATCH.X, WCB_BATCH.Y, WCB_BATCH.cluster, term=1, B=19, seed=1)
    TABLE = hlmlib.etable([FIT, MIXED])
RATES = pd.DataFrame({"A": [0.1, 0.2], "B": [0.05, 0.04]}, index=[5, 10])


def wcb_mc_with(**changes):
    """wild_cluster_bootstrap_mc on WCB_BATCH with some arguments changed."""
    args = dict(X=WCB_BATCH.X, Y=WCB_BATCH.Y, cluster=WCB_BATCH.cluster, term=1) | changes
    return lambda: wild_cluster_bootstrap_mc(**args)


def ols_with(**columns):
    return lambda: hlmlib.ols("y ~ x", data=DF.assign(**columns))


# (what is covered, a call with a bad argument)
BAD = [
    # ---- ols: the data
    ("ols", lambda: hlmlib.ols(Y, np.empty((N, 0)))),
    ("ols", lambda: hlmlib.ols("y ~ 0", data=DF)),
    ("ols", lambda: hlmlib.ols(Y, X.astype(complex))),
    ("ols", lambda: hlmlib.ols(Y + 1j, X)),
    ("ols", lambda: hlmlib.ols(Y, X.astype(str))),
    ("ols", lambda: hlmlib.ols(Y, pd.DataFrame({"c": pd.Categorical(np.arange(N) % 3)}))),
    ("ols", lambda: hlmlib.ols(pd.Series(Y, index=np.arange(N)[::-1]), pd.DataFrame(X))),
    ("ols", lambda: hlmlib.ols(Y, X[None])),
    ("ols", lambda: hlmlib.ols(Y[:, None, None], X)),
    ("ols", lambda: hlmlib.ols(Y, X, data=DF)),
    ("ols", lambda: hlmlib.ols(Y)),
    ("ols", lambda: hlmlib.ols("y ~ x +", data=DF)),
    ("ols", lambda: hlmlib.ols("y ~ (x", data=DF)),
    ("ols", lambda: hlmlib.ols("y ~ undefined_function(x)", data=DF)),
    ("ols", lambda: hlmlib.ols("y ~ x", data=DF.to_numpy())),
    ("ols", lambda: hlmlib.ols("y x", data=DF)),
    ("ols", lambda: hlmlib.ols("y ~ nothere", data=DF)),
    ("ols", ols_with(y="a")),                                       # a single-level string response
    ("ols", ols_with(y=pd.Categorical(["u", "v"] * (N // 2)))),
    ("ols", lambda: hlmlib.ols("y ~ x", data=pd.concat([DF[["y", "x"]], DF[["x"]]], axis=1))),
    ("ols", lambda: hlmlib.ols(Y * 1e300, X * 1e-300)),             # units of b beyond the double range
    ("ols", lambda: hlmlib.ols(3, 4)),
    ("ols", lambda: hlmlib.ols("y ~ x | cluster", DF)),                 # a grouping bar: within or mixed
    ("ols", lambda: hlmlib.ols("y ~ x", X)),                            # an array where the data go
    ("ols", lambda: hlmlib.ols("y ~ x", DF, data=DF)),                  # the data twice
    # ---- OLSResult
    ("OLSResult.from_design", lambda: OLSResult.from_design(FIT.design, df_resid=0)),
    ("OLSResult.from_design", lambda: OLSResult.from_design(FIT.design, df_resid=NAN)),
    ("OLSResult.from_design", lambda: OLSResult.from_design(FIT.design, df_resid="ten")),
    ("OLSResult.covariance", lambda: FIT.covariance("HC9")),
    ("OLSResult.covariance", lambda: FIT.covariance(3)),
    ("OLSResult.covariance", lambda: FIT.covariance("CR1")),
    ("OLSResult.covariance", lambda: FIT.covariance("HC1", "cluster")),
    ("OLSResult.vcov", lambda: FIT.vcov("CR1", "nothere")),
    ("OLSResult.vcov", lambda: FIT.vcov("CR1", np.full(N, NAN))),
    ("OLSResult.vcov", lambda: FIT.vcov("CR1", np.ones(N) + 1j)),
    ("OLSResult.se", lambda: FIT.se("CR1", CL[:-1])),
    ("OLSResult.se", lambda: FIT.se("CR1", np.zeros((N, 2)))),
    ("OLSResult.se", lambda: FIT.se("CR1", pd.DataFrame({"a": CL}))),
    ("OLSResult.se", lambda: FIT.se("CR1", pd.Series(CL, index=np.arange(N) + 1000))),
    ("OLSResult.se", lambda: FIT.se("CR1", pd.Series(CL, index=np.zeros(N)))),
    ("OLSResult.se", lambda: FIT.se("CR1", (CL, CL, CL))),
    ("OLSResult.se", lambda: FIT.se("CR2", (CL, CL))),
    ("OLSResult.se", lambda: FIT.se("CR1", np.zeros(N))),
    ("OLSResult.se", lambda: ARRAY_FIT.se("CR1", "cluster")),
    ("OLSResult.wald_test", lambda: FIT.wald_test(["nothere"])),
    ("OLSResult.wald_test", lambda: FIT.wald_test([[0, 0]])),
    ("OLSResult.wald_test", lambda: FIT.wald_test([[1, 0, 0]])),
    ("OLSResult.wald_test", lambda: FIT.wald_test(["x"], kind="CR1")),
    ("OLSResult.wald_test", lambda: FIT.wald_test(["x"], kind="HC1", test="HTZ")),
    ("OLSResult.wald_test", lambda: FIT.wald_test(["x"], test="nonsense")),
    ("OLSResult.wald_test", lambda: FIT.wald_test([[NAN, 1]])),
    ("OLSResult.summary", lambda: FIT.summary(alpha=0)),
    ("OLSResult.summary", lambda: FIT.summary(alpha=1.5)),
    ("OLSResult.summary", lambda: FIT.summary(alpha=NAN)),
    ("OLSResult.summary", lambda: FIT.summary(alpha="5%")),
    ("OLSResult.summary", lambda: FIT.summary(alpha=True)),
    ("OLSResult.contrast", lambda: FIT.contrast([])),
    ("OLSResult.contrast", lambda: FIT.contrast({})),
    ("OLSResult.contrast", lambda: FIT.contrast([NAN, 1, 0, 0])),
    ("OLSResult.contrast", lambda: FIT.contrast([[1, 0, 0, INF]])),
    ("OLSResult.contrast", lambda: FIT.contrast([0, 0, 0, 0])),
    ("OLSResult.contrast", lambda: FIT.contrast([1, 2])),
    ("OLSResult.contrast", lambda: FIT.contrast("x")),
    ("OLSResult.contrast", lambda: FIT.contrast({"x": "one"})),
    ("OLSResult.contrast", lambda: FIT.contrast({"x": 1j})),
    ("OLSResult.contrast", lambda: FIT.contrast({"nothere": 1})),
    ("OLSResult.contrast", lambda: FIT.contrast({1: 1})),
    ("OLSResult.contrast", lambda: FIT.contrast([1j, 0, 0, 0])),
    ("OLSResult.contrast", lambda: FIT.contrast([1, 0, 0, 0], alpha=-0.1)),
    ("OLSResult.marginal_effect", lambda: FIT.marginal_effect("x", "xz", at=[])),
    ("OLSResult.marginal_effect", lambda: FIT.marginal_effect("x", "xz", at=[NAN])),
    ("OLSResult.marginal_effect", lambda: FIT.marginal_effect("x", "xz", at="low")),
    ("OLSResult.marginal_effect", lambda: FIT.marginal_effect("x", "xz", at=[[0.0, 1.0]])),
    ("OLSResult.marginal_effect", lambda: FIT.marginal_effect(1, "xz")),
    ("OLSResult.marginal_effect", lambda: FIT.marginal_effect("x", ["xz"])),
    ("OLSResult.marginal_effect", lambda: FIT.marginal_effect("x", "g")),      # a categorical moderator
    ("OLSResult.marginal_effect", lambda: FIT.marginal_effect("x", "cluster", at=[1.0])),
    ("OLSResult.marginal_effect", lambda: FIT.marginal_effect("x", "nothere")),
    ("OLSResult.marginal_effect", lambda: FIT.marginal_effect("x", "xz", alpha=2)),
    ("OLSResult.marginal_effect", lambda: FIT.marginal_effect("x", "xz", given="xz")),
    ("OLSResult.marginal_effect", lambda: FIT.marginal_effect("x", "xz", given={"g": "a"})),   # no term uses it
    ("OLSResult.predict", lambda: FIT.predict(DF, interval="conf")),
    ("OLSResult.predict", lambda: FIT.predict(DF, interval="confidence", alpha=0)),
    ("OLSResult.predict", lambda: FIT.predict(DF.to_numpy())),                    # a formula fit needs a DataFrame
    ("OLSResult.predict", lambda: FIT.predict(DF.drop(columns="xz"))),            # a variable missing
    ("OLSResult.predict", lambda: CAT_FIT.predict(DF.assign(g="c"))),             # a level the fit did not see
    ("OLSResult.predict", lambda: CAT_FIT.predict(DF.assign(g=1))),               # numbers for text levels
    ("OLSResult.predict", lambda: FIT.predict(DF.assign(x=np.inf))),
    ("OLSResult.predict", lambda: FIT.predict(DF, interval="prediction", kind="HC1")),
    ("OLSResult.predict", lambda: FIT.predict(DF, kind="HC1")),                   # a kind without an interval
    ("OLSResult.predict", lambda: FIT.predict(DF, interval="confidence", kind="HC9")),
    ("OLSResult.predict", lambda: ARRAY_FIT.predict(np.ones((3, 3)))),
    ("OLSResult.predict", lambda: ARRAY_FIT.predict(np.ones(2))),
    ("OLSResult.predict", lambda: ARRAY_FIT.predict(np.full((2, 2), NAN))),
    ("OLSResult.predict", lambda: ARRAY_FIT.predict(np.ones((2, 2), dtype=complex))),
    ("OLSResult.tidy", lambda: FIT.tidy(kind="HC9")),
    ("OLSResult.tidy", lambda: FIT.tidy(alpha=1.2)),
    ("OLSResult.tidy", lambda: FIT.tidy(kind="CR1", cluster="nothere")),
    # ---- wild cluster bootstrap
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=1, null=NAN)),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=1, null=INF)),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=1, null="0")),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=1.7)),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=True)),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=2)),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=None)),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term="z")),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=1, B=2.5)),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=1, B=0)),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=1, B=True)),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=1, B="99")),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=1, distribution="normal")),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap("y ~ x", X, cluster=CL, term=1)),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=1, seed=-1)),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=1, seed="a")),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=1, seed=1.5)),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL, term=1, chunk=0)),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=np.zeros(N), term=1)),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap(Y, X, cluster=CL[:-1], term=1)),
    ("wild_cluster_bootstrap", lambda: wild_cluster_bootstrap("y ~ x", data=DF, cluster="nothere", term="x")),
    ("WildBootstrapResult.pvalue_at", lambda: WCB.pvalue_at(NAN)),
    ("WildBootstrapResult.pvalue_at", lambda: WCB.pvalue_at("1")),
    ("WildBootstrapResult.ci", lambda: WCB.ci(level=1.5)),
    ("WildBootstrapResult.ci", lambda: WCB.ci(level=0)),
    ("WildBootstrapResult.ci", lambda: WCB.ci(level=NAN)),
    ("WildBootstrapResult.ci", lambda: WCB.ci(tol=0)),
    ("WildBootstrapResult.ci", lambda: WCB.ci(tol=-1)),
    ("wild_cluster_bootstrap_mc", wcb_mc_with(term=2)),
    ("wild_cluster_bootstrap_mc", wcb_mc_with(term=0.5)),
    ("wild_cluster_bootstrap_mc", wcb_mc_with(X=WCB_BATCH.X[:4])),
    ("wild_cluster_bootstrap_mc", wcb_mc_with(Y=WCB_BATCH.Y[:, :-1])),
    ("wild_cluster_bootstrap_mc", wcb_mc_with(Y=WCB_BATCH.Y * NAN)),
    ("wild_cluster_bootstrap_mc", wcb_mc_with(cluster=WCB_BATCH.cluster[:-1])),
    ("wild_cluster_bootstrap_mc", wcb_mc_with(cluster=np.zeros(30))),
    ("wild_cluster_bootstrap_mc", wcb_mc_with(null=[0.0, 1.0])),
    ("wild_cluster_bootstrap_mc", wcb_mc_with(null=INF)),
    ("wild_cluster_bootstrap_mc", wcb_mc_with(B=0)),
    ("wild_cluster_bootstrap_mc", wcb_mc_with(distribution="normal")),
    ("wild_cluster_bootstrap_mc", wcb_mc_with(seed=-1)),
    ("wild_cluster_bootstrap_mc", wcb_mc_with(chunk=0)),
    ("wild_cluster_bootstrap_mc", wcb_mc_with(X=np.repeat(WCB_BATCH.X[..., 1:], 2, -1))),       # collinear columns
    ("WildBootstrapMC.reject", lambda: WCB_MC.reject(1.5)),
    ("WildBootstrapMC.rejection_rate", lambda: WCB_MC.rejection_rate(NAN)),
    ("WildBootstrapMC.pvalue_at", lambda: WCB_MC.pvalue_at(NAN)),
    ("WildBootstrapMC.pvalue_at", lambda: WCB_MC.pvalue_at([0.0, 1.0])),
    ("WildBootstrapMC.ci", lambda: WCB_MC.ci(level=0)),
    ("WildBootstrapMC.ci", lambda: WCB_MC.ci(tol=-1)),
    ("bootstrap_weights", lambda: bootstrap_weights(0, 10)),
    ("bootstrap_weights", lambda: bootstrap_weights(5, 2.5)),
    ("bootstrap_weights", lambda: bootstrap_weights(5, 10, "normal")),
    ("bootstrap_weights", lambda: bootstrap_weights(5, 10, distribution="mammen")),
    ("bootstrap_weights", lambda: bootstrap_weights(5, 10, rng="seed")),
    # ---- etable
    ("etable", lambda: hlmlib.etable([FIT], stars={"a": "*"})),
    ("etable", lambda: hlmlib.etable([FIT], stars={0.05: 1})),
    ("etable", lambda: hlmlib.etable([FIT], stars={1.5: "*"})),
    ("etable", lambda: hlmlib.etable([FIT], stars="yes")),
    ("etable", lambda: hlmlib.etable([FIT], digits=2.5)),
    ("etable", lambda: hlmlib.etable([FIT], digits=-1)),
    ("etable", lambda: hlmlib.etable([FIT], digits="3")),
    ("etable", lambda: hlmlib.etable([FIT, FIT], names="ab")),
    ("etable", lambda: hlmlib.etable([FIT, FIT], names=["a", "a"])),
    ("etable", lambda: hlmlib.etable([FIT], names=["a", "b"])),
    ("etable", lambda: hlmlib.etable([])),
    ("etable", lambda: hlmlib.etable([1.0])),
    ("etable", lambda: hlmlib.etable([FIT], kind="HC9")),
    ("etable", lambda: hlmlib.etable([FIT, FIT], kind=["HC1"])),
    ("etable", lambda: hlmlib.etable([FIT], kind="CR1", cluster="nothere")),
    ("etable", lambda: hlmlib.etable([FIT], cluster="nothere")),                 # CR1 by default with a cluster
    ("etable", lambda: hlmlib.etable([FIT, FIT], cluster=["cluster"])),           # a list is one per model
    ("etable", lambda: hlmlib.etable([FIT], kind="HC1", kinds="HC1")),            # the old and new name at once
    ("etable", lambda: hlmlib.etable({"a": (FIT, {"kind": "HC1", "bad": 1})})),
    ("etable", lambda: hlmlib.etable([MIXED], kind=["HC1"])),
    ("ETable.to_latex", lambda: TABLE.to_latex(caption=3)),
    ("ETable.to_latex", lambda: TABLE.to_latex(label=["tab"])),
    ("CoefTable.to_latex", lambda: FIT.summary().to_latex(digits=0)),
    ("CoefTable.to_latex", lambda: FIT.summary().to_latex(caption="yes")),
    ("CoefTable.to_latex", lambda: FIT.summary().to_latex(label=3)),
    ("CoefTable.to_markdown", lambda: FIT.summary().to_markdown(digits=2.5)),
    ("CoefTable.to_markdown", lambda: FIT.summary().to_markdown(digits="4")),
    ("MixedSummary.to_latex", lambda: MIXED.summary().to_latex(digits=-1)),
    ("MixedSummary.to_latex", lambda: MIXED.summary().to_latex(label=1.0)),
    ("MixedSummary.to_markdown", lambda: MIXED.summary().to_markdown(digits=True)),
    # ---- mixed
    ("mixed", lambda: hlmlib.mixed(Y, X, CL, reml="no")),
    ("mixed", lambda: hlmlib.mixed(Y, X, CL, reml=1)),
    ("mixed", lambda: hlmlib.mixed(Y, X, CL, start=[NAN])),
    ("mixed", lambda: hlmlib.mixed(Y, X, CL, start=[1.0, 0.0])),
    ("mixed", lambda: hlmlib.mixed(Y, X, CL, start=[-1.0])),
    ("mixed", lambda: hlmlib.mixed(Y, X, CL, start="one")),
    ("mixed", lambda: hlmlib.mixed(Y, X)),
    ("mixed", lambda: hlmlib.mixed(Y, X, CL[:-1])),
    ("mixed", lambda: hlmlib.mixed(Y, X, CL, Z=X.astype(complex))),
    ("mixed", lambda: hlmlib.mixed(Y * 1e300, X, CL)),
    ("mixed", lambda: hlmlib.mixed(Y * 1e-300, X, CL)),
    ("mixed", lambda: hlmlib.mixed(Y, X * 1e-200, CL)),
    ("mixed", lambda: hlmlib.mixed("y ~ x", data=DF, groups="cluster", re="x")),
    ("mixed", lambda: hlmlib.mixed("y ~ x", data=DF, groups="cluster", re=3)),
    ("mixed", lambda: hlmlib.mixed("y ~ x", data=DF, groups="cluster", re="~ (x")),
    ("mixed", lambda: hlmlib.mixed("y ~ x", data=DF.to_numpy(), groups="cluster")),
    ("mixed", lambda: hlmlib.mixed("y ~ x", data=DF, groups=np.zeros((N, 2)))),
    ("mixed", lambda: hlmlib.mixed("y ~ x + (x || cluster)", DF)),                # lme4's uncorrelated effects
    ("mixed", lambda: hlmlib.mixed("y ~ x + (1 | cluster) + (1 | g)", DF)),       # crossed factors
    ("mixed", lambda: hlmlib.mixed("y ~ x + (1 | cluster) + (0 + x | cluster)", DF)),
    ("mixed", lambda: hlmlib.mixed("y ~ x + (1 | g/cluster)", DF)),               # nested factors
    ("mixed", lambda: hlmlib.mixed("y ~ x + (1 | g:cluster)", DF)),
    ("mixed", lambda: hlmlib.mixed("y ~ x + (1 | factor(cluster))", DF)),         # a grouping expression
    ("mixed", lambda: hlmlib.mixed("y ~ x | cluster", DF)),
    ("mixed", lambda: hlmlib.mixed("y ~ x - (1 | cluster)", DF)),
    ("mixed", lambda: hlmlib.mixed("y ~ x + ( | cluster)", DF)),
    ("mixed", lambda: hlmlib.mixed("y ~ x + (1 | cluster)", DF, groups="cluster")),
    ("mixed", lambda: hlmlib.mixed("y ~ x + (1 | nothere)", DF)),
    ("mixed", lambda: hlmlib.mixed("y ~ x", DF)),                                 # no grouping factor
    ("MixedResult.predict", lambda: SLOPES.predict(DF, random_effects="yes")),
    ("MixedResult.predict", lambda: SLOPES.predict(DF.to_numpy())),
    ("MixedResult.predict", lambda: SLOPES.predict(DF.drop(columns="cluster"))),
    ("MixedResult.predict", lambda: SLOPES.predict(DF.assign(cluster=DF.cluster.astype(str)))),
    ("MixedResult.predict", lambda: SLOPES.predict(DF, groups=CL[:-1])),
    ("MixedResult.predict", lambda: SLOPES.predict(groups=CL)),
    ("MixedResult.predict", lambda: ARRAY_MIXED.predict(X)),                       # no groups for its BLUPs
    ("MixedResult.predict", lambda: ARRAY_MIXED.predict(X, groups=CL)),            # no Z (random slope)
    ("MixedResult.predict", lambda: ARRAY_MIXED.predict(X, groups=CL, Z=X[:, :1])),
    ("MixedResult.predict", lambda: ARRAY_MIXED.predict(X[:, :1], random_effects=False)),
    ("MixedResult.predict", lambda: ARRAY_MIXED.predict(X * NAN, random_effects=False)),
    ("MixedResult.tidy", lambda: MIXED.tidy(alpha=0)),
    ("MixedResult.tidy", lambda: MIXED.tidy(df=-1)),
    ("MixedResult.tidy", lambda: MIXED.tidy(kind="HC1")),
    ("MixedResult.summary", lambda: MIXED.summary(df=0)),
    ("MixedResult.summary", lambda: MIXED.summary(df=-3)),
    ("MixedResult.summary", lambda: MIXED.summary(df="ten")),
    ("MixedResult.summary", lambda: MIXED.summary(df=NAN)),
    ("MixedResult.summary", lambda: MIXED.summary(alpha=1)),
    ("MixedResult.coef_table", lambda: MIXED.coef_table(df=0)),
    ("MixedResult.coef_table", lambda: MIXED.coef_table(alpha=NAN)),
    ("MixedResult.contrast", lambda: MIXED.contrast([])),
    ("MixedResult.contrast", lambda: MIXED.contrast({"x": NAN})),
    ("MixedResult.contrast", lambda: MIXED.contrast([1, 0, 0, 0], df=-1)),
    ("MixedResult.marginal_effect", lambda: MIXED.marginal_effect("x", "xz", at=[])),
    ("MixedResult.marginal_effect", lambda: MIXED.marginal_effect("x", "xz", at=[INF])),
    ("MixedResult.marginal_effect", lambda: MIXED.marginal_effect("x", "nothere", at=[0.0])),
    ("MixedResult.marginal_effect", lambda: MIXED.marginal_effect("x", "xz", at=[0.0], df=0)),
    ("MixedResult.marginal_effect", lambda: MIXED.marginal_effect("x", "nothere")),
    ("MixedResult.marginal_effect", lambda: MIXED.marginal_effect(["x"], "xz")),
    ("MixedResult.marginal_effect", lambda: MIXED.marginal_effect("x", "xz", given=[0])),
    ("MixedResult.vcov", lambda: MIXED.vcov(kind="HC1")),
    ("MixedResult.vcov", lambda: MIXED.vcov(kind=3)),
    ("MixedResult.se", lambda: MIXED.se(kind="robust")),
    ("MixedResult.coef_table", lambda: MIXED.coef_table(df="kr", kind="CR2")),
    ("MixedResult.wald_test", lambda: MIXED.wald_test(["nothere"])),
    ("MixedResult.wald_test", lambda: MIXED.wald_test([[0, 0, 0, 0]])),
    ("MixedResult.wald_test", lambda: MIXED.wald_test([[1, 0]])),
    ("MixedResult.wald_test", lambda: MIXED.wald_test(["x"], df=-2)),
    ("MixedResult.wald_test", lambda: MIXED.wald_test(["x"], df=NAN)),
    ("MixedResult.wald_test", lambda: MIXED.wald_test(["x"], kind="HC3")),
    ("lrtest", lambda: lrtest(MIXED, "big")),
    ("lrtest", lambda: lrtest(FIT, MIXED)),
    ("lrtest", lambda: lrtest(SLOPES, MIXED)),
    ("lrtest", lambda: lrtest(NULL_MIXED, SLOPES, bootstrap=0, seed=1)),
    ("lrtest", lambda: lrtest(NULL_MIXED, SLOPES, bootstrap=2.5, seed=1)),
    ("lrtest", lambda: lrtest(NULL_MIXED, SLOPES, bootstrap=99, seed="one")),
    ("MixedResult.confint", lambda: MIXED.confint(level=1.5)),
    ("MixedResult.confint", lambda: MIXED.confint(level=NAN)),
    ("MixedResult.confint", lambda: MIXED.confint(method="bootstrap")),
    ("MixedResult.confint", lambda: MIXED.confint(parm="nothere")),
    ("MixedResult.confint", lambda: MIXED.confint(parm=1)),                          # lme4's positions: not taken
    ("MixedResult.confint", lambda: MIXED.confint(parm=[".sigma", 2])),
    ("MixedResult.confint", lambda: MIXED.confint(method="wald", parm="theta_")),
    ("MixedResult.confint", lambda: MIXED.confint(method="profile", df=10)),
    ("MixedResult.confint", lambda: MIXED.confint(method="wald", df=-1)),
    ("MixedResult.icc", lambda: SLOPES.icc()),
    ("MixedResult.shrinkage_factor", lambda: SLOPES.shrinkage_factor()),
    ("MixedResult.reliability", lambda: SLOPES.reliability(per_group="yes")),
    ("MixedResult.reliability", lambda: SLOPES.reliability(per_group=1)),
    ("MixedResult.ranef_se", lambda: SLOPES.ranef_se(kind="postVar")),
    ("MixedResult.ranef_se", lambda: SLOPES.ranef_se(kind=2)),
    ("MixedResult.residuals", lambda: SLOPES.residuals(kind="pearson")),
    ("MixedResult.residuals", lambda: SLOPES.residuals(kind=None)),
    ("MixedResult.residuals", lambda: SLOPES.residuals(scaled="yes")),
    ("MixedResult.level1_variance_test", lambda: NULL_MIXED.level1_variance_test(min_df=0)),
    ("MixedResult.level1_variance_test", lambda: NULL_MIXED.level1_variance_test(min_df=2.5)),
    ("MixedResult.level1_variance_test", lambda: NULL_MIXED.level1_variance_test(min_df=50)),    # no group has 50 df
    ("MixedResult.level1_variance_test", lambda: NULL_MIXED.level1_variance_test(min_df=2, by="x")),  # varies within
    ("MixedResult.level1_variance_test", lambda: NULL_MIXED.level1_variance_test(min_df=2, by="nothere")),
    ("MixedResult.level1_variance_test", lambda: NULL_MIXED.level1_variance_test(min_df=2, by=3)),
    ("MixedResult.level1_variance_test", lambda: NULL_MIXED.level1_variance_test(min_df=2, by=pd.Series({1: "a"}))),
    ("MixedResult.level1_variance_test", lambda: ARRAY_MIXED.level1_variance_test(min_df=2, by="g")),   # no data
    ("MixedResult.level1_variance_test",                                                 # a group labelled twice
     lambda: NULL_MIXED.level1_variance_test(min_df=2, by=pd.Series([0, 1, 1], index=[CL[0], CL[0], CL[-1]]))),
    ("variance_explained", lambda: hlmlib.variance_explained(NULL_MIXED, FIT)),
    ("variance_explained", lambda: hlmlib.variance_explained("null", MIXED)),
    ("variance_explained", lambda: hlmlib.variance_explained(NULL_MIXED, hlmlib.mixed("y ~ x + (1 | cluster)", DF.iloc[:-6]))),
    ("variance_explained", lambda: hlmlib.variance_explained(NULL_MIXED, hlmlib.mixed("y ~ x + (1 | cluster)", DF, reml=False))),
    ("snijders_bosker_r2", lambda: hlmlib.snijders_bosker_r2(NULL_MIXED, MIXED, n=0)),
    ("snijders_bosker_r2", lambda: hlmlib.snijders_bosker_r2(NULL_MIXED, MIXED, n="harmonic")),
    ("snijders_bosker_r2", lambda: hlmlib.snijders_bosker_r2(NULL_MIXED, MIXED, n=NAN)),
    ("snijders_bosker_r2", lambda: hlmlib.snijders_bosker_r2(NULL_MIXED, SLOPES)),
    ("snijders_bosker_r2", lambda: hlmlib.snijders_bosker_r2(NULL_MIXED, FIT)),
    # ---- plots
    ("plots.coef_plot", lambda: plots.coef_plot([])),
    ("plots.coef_plot", lambda: plots.coef_plot(FIT, terms=["nothere"])),
    ("plots.coef_plot", lambda: plots.coef_plot(FIT, terms=[])),
    ("plots.coef_plot", lambda: plots.coef_plot(FIT, kind="HC9")),
    ("plots.coef_plot", lambda: plots.coef_plot([FIT, FIT], kind=["HC1"])),
    ("plots.coef_plot", lambda: plots.coef_plot(MIXED, cluster="cluster")),
    ("plots.coef_plot", lambda: plots.coef_plot(FIT.summary(), kind="HC1")),
    ("plots.coef_plot", lambda: plots.coef_plot([FIT, FIT], names=["one"])),
    ("plots.coef_plot", lambda: plots.coef_plot(FIT, alpha=2)),
    ("plots.coef_plot", lambda: plots.coef_plot("fit")),
    ("plots.coef_plot", lambda: plots.coef_plot(pd.DataFrame({"estimate": [1.0]}))),
    ("plots.coef_plot", lambda: plots.coef_plot(FIT, ax="left")),
    ("plots.marginal_effect_plot", lambda: plots.marginal_effect_plot(FIT.summary())),
    ("plots.marginal_effect_plot", lambda: plots.marginal_effect_plot([1, 2])),
    ("plots.marginal_effect_plot", lambda: plots.marginal_effect_plot(FIT.marginal_effect("x", "xz"), band="dots")),
    ("plots.marginal_effect_plot", lambda: plots.marginal_effect_plot(FIT.marginal_effect("x", "xz"), zero_line="no")),
    ("plots.marginal_effect_plot", lambda: plots.marginal_effect_plot(FIT.marginal_effect("x", "xz"), color="nocolor")),
    ("plots.caterpillar_plot", lambda: plots.caterpillar_plot(FIT)),
    ("plots.caterpillar_plot", lambda: plots.caterpillar_plot(SLOPES, effect="xz")),
    ("plots.caterpillar_plot", lambda: plots.caterpillar_plot(SLOPES, level=95)),
    ("plots.caterpillar_plot", lambda: plots.caterpillar_plot(SLOPES, level=NAN)),
    ("plots.pooling_plot", lambda: plots.pooling_plot(SLOPES, "nothere")),
    ("plots.pooling_plot", lambda: plots.pooling_plot(SLOPES, "x", groups=["nothere"])),
    ("plots.pooling_plot", lambda: plots.pooling_plot(SLOPES, "x", groups=[])),
    ("plots.pooling_plot", lambda: plots.pooling_plot(SLOPES, "x", max_groups=0)),
    ("plots.pooling_plot", lambda: plots.pooling_plot(ARRAY_MIXED, "x")),                # no data to read x from
    ("plots.pooling_plot", lambda: plots.pooling_plot(MIXED, "x")),                      # xz: another level-1 variable
    ("plots.pooling_plot", lambda: plots.pooling_plot(FIT, "x")),
    ("plots.pooling_plot", lambda: plots.pooling_plot(NULL_MIXED, "g")),                 # a categorical column
    ("plots.qq_plot", lambda: plots.qq_plot(SLOPES, kind="pearson")),
    ("plots.qq_plot", lambda: plots.qq_plot(SLOPES, kind="mahalanobis", effect="x")),
    ("plots.qq_plot", lambda: plots.qq_plot(SLOPES, effect="xz")),
    ("plots.qq_plot", lambda: plots.qq_plot(FIT)),
    ("plots.residual_plot", lambda: plots.residual_plot(SLOPES, by="nothere")),
    ("plots.residual_plot", lambda: plots.residual_plot(ARRAY_MIXED, by="g")),
    ("plots.residual_plot", lambda: plots.residual_plot("fit")),
    ("plots.plotting_positions", lambda: plots.plotting_positions(0)),
    ("plots.plotting_positions", lambda: plots.plotting_positions(2.5)),
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES, 100, nominal=5)),
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES)),                                # band needs R
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES, 2.5)),
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES * 10, 100)),                       # not rates
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES, 100, intervals="exact")),
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES, 100, styles={"C": {"color": "red"}})),
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES, 100, styles={"A": {"colour": "red"}})),
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES, 100, styles={"A": {"color": "nocolor"}})),
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES.set_axis(["a", "b"]), 100)),
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES.set_axis([-1, 2]), 100, logx=True)),
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot([0.1, 0.2], 100)),
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES.assign(A="x"), 100)),
    ("plots.mc_estimate_plot", lambda: plots.mc_estimate_plot(RATES, se=RATES[["A"]])),
    ("plots.mc_estimate_plot", lambda: plots.mc_estimate_plot(RATES, se=-RATES)),
    ("plots.mc_estimate_plot", lambda: plots.mc_estimate_plot(RATES, level=95)),
    ("plots.mc_estimate_plot", lambda: plots.mc_estimate_plot(RATES, reference="1")),
    ("plots.mc_estimate_plot", lambda: plots.mc_estimate_plot(RATES, theory=[1, 2])),
    ("plots.mc_estimate_plot", lambda: plots.mc_estimate_plot(RATES, connect="yes")),
    ("plots.mc_estimate_plot", lambda: plots.mc_estimate_plot(RATES, dodge=NAN)),
    # round 4: line properties checked when the call is made, not when the figure is drawn; empty or text data
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES, 100, styles={"A": {"linewidth": "thick"}})),
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES, 100, styles={"A": {"marker": "notamarker"}})),
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES, 100, styles={"A": {"linestyle": "zz"}})),
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES, 100, styles={"A": {"alpha": 2}})),
    ("plots.coef_plot", lambda: plots.coef_plot({"a": FIT}, styles={"a": {"marker": "nope"}})),
    ("plots.sampling_plot", lambda: plots.sampling_plot(np.ones(50), kind="kde")),
    ("plots.sampling_plot", lambda: plots.sampling_plot(Y, truth=0, truth_style={"lw": "x"})),
    ("plots.marginal_effect_plot", lambda: plots.marginal_effect_plot(FIT.marginal_effect("x", "xz"), band_style={"lw": "x"})),
    ("plots.marginal_effect_plot", lambda: plots.marginal_effect_plot(FIT.marginal_effect("x", "xz", at=[0, 1])
                                                                      .assign(xz=["a", "b"]))),
    ("plots.group_lines_plot", lambda: plots.group_lines_plot(DF.iloc[:0], "x", "y", "cluster")),
    ("plots.mc_rate_plot", lambda: plots.mc_rate_plot(RATES, 100, dodge="0.1")),
    ("plots.mc_estimate_plot", lambda: plots.mc_estimate_plot(RATES.replace(0.1, INF))),
    ("plots.sampling_plot", lambda: plots.sampling_plot({"a": [1.0, NAN, 2.0]})),
    ("plots.sampling_plot", lambda: plots.sampling_plot({"a": [1.0, 2.0]}, kind="violin")),
    ("plots.sampling_plot", lambda: plots.sampling_plot({})),
    ("plots.sampling_plot", lambda: plots.sampling_plot({"a": [1.0]})),
    ("plots.sampling_plot", lambda: plots.sampling_plot({"a": [1.0, 2.0]}, bins=0)),
    ("plots.sampling_plot", lambda: plots.sampling_plot({"a": [1.0, 2.0]}, bins=[1.0, 0.0])),
    ("plots.sampling_plot", lambda: plots.sampling_plot({"a": [1.0, 2.0]}, range=(2, 1))),
    ("plots.sampling_plot", lambda: plots.sampling_plot({"a": [1.0, 2.0]}, truth="0")),
    ("plots.sampling_plot", lambda: plots.sampling_plot({"a": [1.0, 2.0]}, reference=1.0)),
    ("plots.sampling_plot", lambda: plots.sampling_plot({"a": [1.0, 2.0]}, reference=lambda x: x[:1])),
    ("plots.sampling_plot", lambda: plots.sampling_plot({"a": [1.0, 2.0]}, truth_style={"width": 2})),
    ("plots.sampling_plot", lambda: plots.sampling_plot({"a": [1.0, 2.0]}, means=1)),
    ("plots.group_lines_plot", lambda: plots.group_lines_plot(DF, "x", "y", "nothere")),
    ("plots.group_lines_plot", lambda: plots.group_lines_plot(DF.values, "x", "y", "cluster")),
    ("plots.group_lines_plot", lambda: plots.group_lines_plot(DF, "g", "y", "cluster")),
    ("plots.group_lines_plot", lambda: plots.group_lines_plot(DF.assign(y=NAN), "x", "y", "cluster")),
    ("plots.group_lines_plot", lambda: plots.group_lines_plot(DF, "x", "y", "cluster", groups=[99])),
    ("plots.group_lines_plot", lambda: plots.group_lines_plot(DF, "x", "y", "cluster", lines=pd.DataFrame({"a": [1.0]}))),
    ("plots.group_lines_plot", lambda: plots.group_lines_plot(DF, "x", "y", "cluster", span="some")),
    ("plots.group_lines_plot", lambda: plots.group_lines_plot(DF, "x", "y", "cluster", pooled=1)),
    ("plots.group_lines_plot", lambda: plots.group_lines_plot(DF, "x", "y", "cluster", color="nocolor")),
    ("plots.group_lines_plot", lambda: plots.group_lines_plot(DF, "x", "y", "cluster", color={0: "red"})),
    ("plots.group_lines_plot", lambda: plots.group_lines_plot(DF.assign(x=1.0), "x", "y", "cluster")),
    ("plots.shrinkage_plot", lambda: plots.shrinkage_plot(FIT)),
    ("plots.shrinkage_plot", lambda: plots.shrinkage_plot(SLOPES, effect="xz")),
    ("plots.shrinkage_plot", lambda: plots.shrinkage_plot(SLOPES, against="n")),
    ("plots.coef_plot", lambda: plots.coef_plot(FIT, reference="1")),
    ("plots.coef_plot", lambda: plots.coef_plot(FIT, styles={"other": {"color": "red"}})),
    ("plots.marginal_effect_plot", lambda: plots.marginal_effect_plot(FIT.marginal_effect("x", "xz"), show_estimate=0)),
    ("plots.marginal_effect_plot", lambda: plots.marginal_effect_plot(FIT.marginal_effect("x", "xz"), band_style={"dash": 1})),
    # ---- simulate: data-generating processes
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(J=0)),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(J=2.5)),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(J="30")),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(n=0)),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(n=2.5)),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(J=2, n=[3, 2.5])),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(J=2, n=[3, 4, 5])),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(sigma=-1)),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(sigma=NAN)),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(a0=INF)),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(a0="2")),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(corr_u0_lfrt=1.5)),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(tau=[[1, NAN], [NAN, 1]])),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(tau=[[1, 2], [2, 1]])),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(tau=[1.0, 2.0, 3.0])),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(unknown=1)),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(seed=-1)),
    ("simulate.hlm_eusup", lambda: sim.hlm_eusup(seed="a")),
    ("simulate.hlm_eusup_batch", lambda: sim.hlm_eusup_batch(0)),
    ("simulate.hlm_eusup_batch", lambda: sim.hlm_eusup_batch(2.5)),
    ("simulate.hlm_eusup_batch", lambda: sim.hlm_eusup_batch(5, fixed_x="no")),
    ("simulate.hlm_eusup_batch", lambda: sim.hlm_eusup_batch(5, lfrt_within_sd=-2)),
    ("simulate.random_coefficient", lambda: sim.random_coefficient(n=0)),
    ("simulate.random_coefficient", lambda: sim.random_coefficient(n=10.5)),
    ("simulate.random_coefficient", lambda: sim.random_coefficient(s0=-1)),
    ("simulate.random_coefficient", lambda: sim.random_coefficient(b0=NAN)),
    ("simulate.random_coefficient_batch", lambda: sim.random_coefficient_batch(-1)),
    ("simulate.random_coefficient_batch", lambda: sim.random_coefficient_batch(5, fixed_x=1)),
    ("simulate.random_coefficient_batch", lambda: sim.random_coefficient_batch(5, n=0)),
    ("simulate.cgm", lambda: sim.cgm(G=0)),
    ("simulate.cgm", lambda: sim.cgm(n=-1)),
    ("simulate.cgm", lambda: sim.cgm(G=2.5)),
    ("simulate.cgm", lambda: sim.cgm(b1=NAN)),
    ("simulate.cgm", lambda: sim.cgm(heteroskedastic="yes")),
    ("simulate.cgm", lambda: sim.cgm(seed=[1.5])),
    ("simulate.cgm_batch", lambda: sim.cgm_batch(0)),
    ("simulate.cgm_batch", lambda: sim.cgm_batch(5, fixed_x="yes")),
    ("simulate.cgm_batch", lambda: sim.cgm_batch(5, n=0)),
    ("simulate.mhe_811", lambda: sim.mhe_811(sigma=NAN)),
    ("simulate.mhe_811", lambda: sim.mhe_811(sigma=-0.5)),
    ("simulate.mhe_811", lambda: sim.mhe_811(n_treated=0)),
    ("simulate.mhe_811", lambda: sim.mhe_811(n_treated=2.5)),
    ("simulate.mhe_811", lambda: sim.mhe_811(n=1)),
    ("simulate.mhe_811", lambda: sim.mhe_811(b1=INF)),
    ("simulate.mhe_811_batch", lambda: sim.mhe_811_batch(0)),
    ("simulate.mhe_811_batch", lambda: sim.mhe_811_batch(5, sigma="half")),
    # ---- simulate: population quantities
    ("simulate.error_variance", lambda: sim.error_variance(np.full((4, 1), NAN), [[1.0]])),
    ("simulate.error_variance", lambda: sim.error_variance(np.ones((4, 1)), [[NAN]])),
    ("simulate.error_variance", lambda: sim.error_variance(np.ones((4, 1)), [[1.0]], sigma2=-1)),
    ("simulate.error_variance", lambda: sim.error_variance(np.ones((4, 2)), [[1.0]])),
    ("simulate.error_variance", lambda: sim.error_variance(np.ones((4, 1, 1)), [[1.0]])),
    ("simulate.error_covariance", lambda: sim.error_covariance(np.ones((4, 1)), [[1.0]], max_n=0)),
    ("simulate.error_covariance", lambda: sim.error_covariance(np.ones((4, 1)), [[1.0]], cluster=[1, 1, NAN, 2])),
    ("simulate.error_covariance", lambda: sim.error_covariance(np.ones((4, 1)), [[1.0]], cluster=[1, 2])),
    ("simulate.error_covariance", lambda: sim.error_covariance(np.ones((4, 1)), [[1.0]], sigma2=NAN)),
    ("simulate.population_vcov", lambda: sim.population_vcov(np.ones((6, 2)), np.ones((6, 1)), [[1.0]])),
    ("simulate.population_vcov", lambda: sim.population_vcov(X, np.ones((N - 1, 1)), [[1.0]])),
    ("simulate.population_vcov", lambda: sim.population_vcov(X, np.ones((N, 1)), [[1.0]], sigma2=NAN)),
    ("simulate.population_vcov", lambda: sim.population_vcov(X * NAN, np.ones((N, 1)), [[1.0]])),
    ("simulate.expected_classical_vcov", lambda: sim.expected_classical_vcov(np.ones((6, 2)), np.ones((6, 1)), [[1.0]])),
    ("simulate.expected_classical_vcov", lambda: sim.expected_classical_vcov(X, np.ones((N, 1)), [[-1.0]])),
    ("simulate.expected_classical_vcov", lambda: sim.expected_classical_vcov(X, np.ones((N - 2, 1)), [[1.0]])),
    # ---- simulate: batched OLS
    ("simulate.ols_mc", lambda: sim.ols_mc(X, np.ones((2, 3, N)))),
    ("simulate.ols_mc", lambda: sim.ols_mc(X, Y[None], contrasts=[[NAN, 1.0]])),
    ("simulate.ols_mc", lambda: sim.ols_mc(X, Y[None], contrasts=[[0.0, 0.0]])),
    ("simulate.ols_mc", lambda: sim.ols_mc(X, Y[None], contrasts=[1.0, 2.0, 3.0])),
    ("simulate.ols_mc", lambda: sim.ols_mc(X, Y[None], kinds=["HC9"])),
    ("simulate.ols_mc", lambda: sim.ols_mc(X, Y[None], kinds=[])),
    ("simulate.ols_mc", lambda: sim.ols_mc(X, Y[None], kinds=["CR1"])),
    ("simulate.ols_mc", lambda: sim.ols_mc(X, Y[None], cluster=np.zeros(N), kinds=["CR1"])),
    ("simulate.ols_mc", lambda: sim.ols_mc(X, Y[None], chunk=0)),
    ("simulate.ols_mc", lambda: sim.ols_mc(X, Y[None], chunk=1.5)),
    ("simulate.ols_mc", lambda: sim.ols_mc(X, Y[None] * NAN)),
    ("simulate.ols_mc", lambda: sim.ols_mc(X.astype(complex), Y[None])),
    ("simulate.ols_mc", lambda: sim.ols_mc(X)),
    ("simulate.ols_mc", lambda: sim.ols_mc(X[:, :0], Y[None])),
    ("simulate.ols_mc", lambda: sim.ols_mc(X, Y[None, :-1])),
    ("MonteCarloOLS.tstat", lambda: MC.tstat("HC9")),
    ("MonteCarloOLS.tstat", lambda: MC.tstat(["CR1"])),
    ("MonteCarloOLS.tstat", lambda: MC.tstat("CR1", null=[1.0, 2.0, 3.0])),
    ("MonteCarloOLS.tstat", lambda: MC.tstat("CR1", null=NAN)),
    ("MonteCarloOLS.reject", lambda: MC.reject("CR1", alpha=2)),
    ("MonteCarloOLS.reject", lambda: MC.reject("CR1", dist="z")),
    ("MonteCarloOLS.rejection_rate", lambda: MC.rejection_rate("CR1", null={"x": 1.0})),
    ("MonteCarloOLS.rejection_rate", lambda: MC.rejection_rate("CR1", null={"Intercept": 0, "x": "one"})),
    ("MonteCarloOLS.ci", lambda: MC.ci("CR1", level=0)),
    ("MonteCarloOLS.ci", lambda: MC.ci("CR1", level="95%")),
    ("MonteCarloOLS.coverage", lambda: MC.coverage("CR1", truth=[NAN, 1.0])),
    ("MonteCarloOLS.coverage", lambda: MC.coverage("CR1", truth=[0.0, 1.0], level=1.0)),
    ("MonteCarloOLS.summary", lambda: MC.summary({"Intercept": 0, "x": 1}, term="zz")),
    ("MonteCarloOLS.summary", lambda: MC.summary({"Intercept": 0, "x": 1}, alpha=0)),
    ("MonteCarloOLS.summary", lambda: MC.summary([NAN, 1.0])),
]


@pytest.mark.parametrize("call", [c for _, c in BAD], ids=[f"{what}-{i}" for i, (what, _) in enumerate(BAD)])
def test_bad_argument_is_an_input_error(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)      # NumPy's overflow/invalid warnings must not leak
        warnings.filterwarnings("ignore", "essentially perfect fit")
        warnings.filterwarnings("ignore", "boundary")
        with pytest.raises(InputError) as caught:
            call()
    assert str(caught.value).strip(), "an InputError must say what is wrong"


def _public_callables():
    """Every public function of hlmlib (outside the gls module) and every public method of its result
    classes that takes arguments, as the names BAD uses."""
    names = set()
    for name in hlmlib.__all__:
        obj = getattr(hlmlib, name)
        if inspect.isfunction(obj) and obj.__module__ != "hlmlib.gls":
            names.add(name)
    for module, prefix in ((sim, "simulate"), (plots, "plots")):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj) and inspect.signature(obj).parameters:
                names.add(f"{prefix}.{name}")
    names |= {"bootstrap_weights", "lrtest", "wild_cluster_bootstrap_mc"}
    for cls in (OLSResult, MixedResult, WildBootstrapResult, WildBootstrapMC, MonteCarloOLS, ETable, CoefTable,
                MixedSummary):
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") or not callable(member):
                continue
            if cls is CoefTable and name not in CoefTable.__dict__:
                continue                                        # pandas' own DataFrame methods
            params = list(inspect.signature(member).parameters)
            if len(params) > (0 if isinstance(inspect.getattr_static(cls, name), classmethod) else 1):
                names.add(f"{cls.__name__}.{name}")
    return names


def test_every_public_callable_is_walked():
    walked = {what for what, _ in BAD}
    missing = _public_callables() - walked - {"MixedResult.shrinkage", "MixedResult.icc"}
    assert not missing, f"public callables without bad-argument cases: {sorted(missing)}"


# ---------------------------------------------------------------------------------------------
# degenerate but valid data: honest results, and never a NaN without a warning


def perfect_data(seed: int, uncentred: bool):
    """y exactly linear in X (and so fitted with residuals at the rounding level of y)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(8), 6)
    x = rng.normal(size=g.size) + (2000.0 if uncentred else 0.0)
    X = np.column_stack([np.ones(g.size), x, rng.normal(size=g.size)])
    return X @ rng.normal(size=3) * 10.0 ** rng.uniform(-3, 3), X, g


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("uncentred", [False, True])
def test_perfect_fit_warns_and_reports_no_tests(seed, uncentred):
    y, X, g = perfect_data(seed, uncentred)
    for yy in (y, np.full_like(y, 3.5)):
        fit = hlmlib.ols(yy, X if yy is y else X[:, :1])
        for kind, cluster in (("classical", None), ("HC1", None), ("CR1", g), ("CR2", g)):
            with pytest.warns(UserWarning, match="essentially perfect fit: summary may be unreliable"):
                table = fit.summary(kind, cluster)
            assert table[["t", "p"]].isna().all().all() and np.isfinite(table.estimate).all()
        with pytest.warns(UserWarning, match="essentially perfect fit"):
            boot = hlmlib.wild_cluster_bootstrap(yy, X if yy is y else X[:, :1], cluster=g, term=0, B=99, seed=1)
        assert np.isnan(boot.pvalue)                         # not 0.79, as once on a constant y
    with pytest.warns(UserWarning, match="essentially perfect fit in 1 of 2 replication"):
        mc = hlmlib.simulate.ols_mc(X, np.vstack([y, y + np.random.default_rng(seed + 99).normal(size=y.size)]),
                                    cluster=g, kinds=["classical", "HC1", "CR1", "CR2"])
    assert np.isnan(mc.tstat("CR1")[0]).all() and np.isfinite(mc.tstat("CR1")[1]).all()
    assert mc.rejection_rate("CR1").isin([0.0, 1.0]).all()   # from the one defined replication


@pytest.mark.parametrize("noise", [1e-6, 1e-10, 1e-12])
def test_a_tight_but_genuine_fit_is_not_called_perfect(noise):
    y, X, g = perfect_data(1, True)
    y = y + noise * np.abs(y).max() * np.random.default_rng(2).normal(size=y.size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = hlmlib.ols(y, X).summary("CR1", g)
    assert np.isfinite(table.to_numpy()).all()


def test_etable_of_a_perfect_fit_warns_and_shows_no_stars():
    y, X, g = perfect_data(0, False)
    with pytest.warns(UserWarning, match="essentially perfect fit"):
        table = hlmlib.etable([hlmlib.ols(y, X)], stars=True)
    assert "*" not in str(table).split("Standard errors")[0]
