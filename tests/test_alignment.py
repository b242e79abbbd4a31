"""Rows are matched by position, never by repeated index labels; pandas Series are aligned by their
index; results own their arrays (hypothesis draws the data, the index and the mutation).

The reference is computed independently on the same data with a clean 0..n-1 index: statsmodels for the
classical, HC1 and CR1 standard errors, and hlmlib's fit of the reset-index frame (whose CR2/CR3 are
checked against R in test_sandwich_reference) for the rest.
"""
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings, strategies as st

import hlmlib
from hlmlib import simulate as sim

FAST = settings(max_examples=15, deadline=None, derandomize=True)
KINDS = [("classical", False), ("HC1", False), ("HC3", False), ("CR1", True), ("CR2", True), ("CR3", True)]


def frame(seed: int, G: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = sim.cgm(G=G, n=n, seed=rng, heteroskedastic=True)
    df["z"] = rng.normal(size=len(df))
    return df


def index_for(kind: str, n: int, rng) -> pd.Index:
    """A shuffled, a duplicated (pd.concat without ignore_index), a relabelled (strings) or a constant index."""
    if kind == "shuffled":
        return pd.Index(rng.permutation(n))
    if kind == "duplicated":
        return pd.Index(np.r_[np.arange(n // 2), np.arange(n - n // 2)])
    if kind == "strings":
        return pd.Index([f"row {v}" for v in rng.permutation(10 * n)[:n]])
    return pd.Index(np.zeros(n, dtype=int))


def table(fit, cluster):
    return np.vstack([fit.summary(kind, cluster if robust else None).to_numpy() for kind, robust in KINDS])


def statsmodels_se(df: pd.DataFrame) -> np.ndarray:
    X = sm.add_constant(df[["x", "z"]].to_numpy())
    y, g = df.y.to_numpy(), df.cluster.to_numpy()
    return np.vstack([sm.OLS(y, X).fit().bse, sm.OLS(y, X).fit(cov_type="HC1").bse,
                      sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": g}).bse])


index_kinds = st.sampled_from(["shuffled", "duplicated", "strings", "constant"])


@FAST
@given(seed=st.integers(0, 2**32 - 1), G=st.integers(4, 12), n=st.integers(2, 6), kind=index_kinds)
def test_any_index_gives_the_reset_index_fit(seed, G, n, kind):
    df = frame(seed, G, n)
    rng = np.random.default_rng(seed)
    odd = df.set_axis(index_for(kind, len(df), rng))
    fit, clean = hlmlib.ols("y ~ x + z", data=odd), hlmlib.ols("y ~ x + z", data=df)
    np.testing.assert_allclose(table(fit, "cluster"), table(clean, "cluster"), rtol=1e-10)
    ours = np.vstack([fit.se(k, "cluster" if k == "CR1" else None) for k in ("classical", "HC1", "CR1")])
    np.testing.assert_allclose(ours, statsmodels_se(df), rtol=1e-9)
    # the cluster given as the data's own Series, as an array, and as a Series in another order
    shuffled = odd["cluster"].iloc[rng.permutation(len(df))]
    for labels in (odd["cluster"], odd["cluster"].to_numpy()) + ((shuffled,) if odd.index.is_unique else ()):
        np.testing.assert_allclose(table(fit, labels), table(clean, "cluster"), rtol=1e-10)
    assert fit.resid.index.equals(odd.index)       # residuals keep the caller's labels, in order


@FAST
@given(seed=st.integers(0, 2**32 - 1), G=st.integers(4, 12), n=st.integers(2, 6), kind=index_kinds,
       holes=st.integers(1, 5))
def test_rows_dropped_listwise_stay_aligned_with_any_index(seed, G, n, kind, holes):
    df = frame(seed, G, n)
    rng = np.random.default_rng(seed)
    missing = rng.choice(len(df), holes, replace=False)
    with_nan = df.copy()
    with_nan.loc[with_nan.index[missing], "z"] = np.nan
    odd = with_nan.set_axis(index_for(kind, len(df), rng))
    with pytest.warns(UserWarning, match="dropped listwise"):
        fit = hlmlib.ols("y ~ x + z", data=odd)
    clean = hlmlib.ols("y ~ x + z", data=df.drop(index=df.index[missing]).reset_index(drop=True))
    reference = table(clean, "cluster")
    # a column name, a Series over all rows of the data, an array over all rows: the same rows
    for labels in ("cluster", odd["cluster"], odd["cluster"].to_numpy()):
        np.testing.assert_allclose(table(fit, labels), reference, rtol=1e-10)


@FAST
@given(seed=st.integers(0, 2**32 - 1), G=st.integers(4, 10), n=st.integers(2, 5))
def test_array_fits_align_series_by_index(seed, G, n):
    df = frame(seed, G, n)
    rng = np.random.default_rng(seed)
    labels = pd.Index([f"r{v}" for v in rng.permutation(len(df))])
    y, X = df.y.set_axis(labels), df[["x", "z"]].assign(one=1.0).set_axis(labels)
    fit = hlmlib.ols(y, X)
    reference = table(hlmlib.ols(df.y.to_numpy(), X.to_numpy()), df.cluster.to_numpy())
    permuted = pd.Series(df.cluster.to_numpy(), index=labels).iloc[rng.permutation(len(df))]
    np.testing.assert_allclose(table(fit, permuted), reference, rtol=1e-10)
    with pytest.raises(hlmlib.InputError, match="different indices"):
        hlmlib.ols(y.iloc[::-1], X)


def test_the_issue_example_duplicated_label():
    df = sim.cgm(G=10, n=20, seed=1)
    df.index = [0] + list(range(len(df) - 1))
    fit = hlmlib.ols("y ~ x", data=df)
    np.testing.assert_allclose(fit.se("CR1", "cluster"), fit.se("CR1", df.cluster.to_numpy()), rtol=1e-12)
    np.testing.assert_allclose(fit.se("CR1", "cluster"),
                               hlmlib.ols("y ~ x", data=df.reset_index(drop=True)).se("CR1", "cluster"), rtol=1e-12)


def test_mixed_and_bootstrap_with_duplicated_labels():
    df = sim.cgm(G=12, n=6, seed=5)
    clean = df.copy()
    df.index = np.repeat(np.arange(len(df) // 2), 2)          # every label twice
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = hlmlib.mixed("y ~ x", data=df, groups="cluster")
        b = hlmlib.mixed("y ~ x", data=clean, groups="cluster")
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10)
    np.testing.assert_allclose(a.se(), b.se(), rtol=1e-8)
    p = [hlmlib.wild_cluster_bootstrap("y ~ x", data=d, cluster="cluster", term="x", null=1.0, B=199, seed=3)
         for d in (df, clean)]
    assert p[0].tstat == pytest.approx(p[1].tstat, rel=1e-10) and p[0].pvalue == p[1].pvalue


# ---------------------------------------------------------------------------------------------
# ownership: changing the inputs after the fit changes nothing


@FAST
@given(seed=st.integers(0, 2**32 - 1), G=st.integers(4, 10), n=st.integers(2, 5), value=st.floats(-1e3, 1e3))
def test_mutating_inputs_after_the_fit_changes_nothing(seed, G, n, value):
    df = frame(seed, G, n)
    y, X, cluster = df.y.to_numpy().copy(), np.column_stack([np.ones(len(df)), df.x, df.z]), df.cluster.to_numpy().copy()
    array_fit, formula_fit = hlmlib.ols(y, X), hlmlib.ols("y ~ x + z", data=df)
    before, y_before = (table(array_fit, cluster), table(formula_fit, "cluster")), y.copy()
    y[:], X[:, 1] = value, value
    df["cluster"], df["x"], df["y"] = 0, value, value
    np.testing.assert_array_equal(table(array_fit, cluster), before[0])
    np.testing.assert_array_equal(table(formula_fit, "cluster"), before[1])
    np.testing.assert_array_equal(array_fit.design.y, y_before)


def test_mixed_result_owns_its_arrays():
    df = sim.cgm(G=10, n=5, seed=2)
    y, X, g = df.y.to_numpy().copy(), np.column_stack([np.ones(len(df)), df.x]), df.cluster.to_numpy().copy()
    fit = hlmlib.mixed(y, X, g, X[:, :1].copy())
    fitted, resid, se = fit.fitted.copy(), fit.resid.copy(), fit.se().copy()
    y[:], X[:] = 7.0, 3.0
    fit.__dict__.pop("fitted", None)                           # recompute from what the result kept
    pd.testing.assert_frame_equal(fit.fitted, fitted)
    pd.testing.assert_frame_equal(fit.resid, resid)
    pd.testing.assert_series_equal(fit.se(), se)
