"""hlmlib.gls: within = LSDV, RE-GLS limits and Swamy-Arora, Mundlak = within, Hausman, FWLS = WLS."""
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import hlmlib
from hlmlib import datasets, simulate as S
from hlmlib.design import InputError
from hlmlib.gls import fwls, hausman, mundlak, re_gls, within


@pytest.fixture(scope="module")
def petersen():
    return datasets.load_petersen()


@pytest.fixture(scope="module")
def hsb():
    return datasets.load_hsb()


CASES = [("petersen", "y ~ x", "firm", ["x"]), ("hsb", "mathach ~ ses + female", "school", ["ses", "female"])]


@pytest.mark.parametrize("name, formula, group, slopes", CASES)
def test_within_equals_dummy_variable_regression(name, formula, group, slopes, request):
    df = request.getfixturevalue(name)
    df = df[df[group].isin(df[group].unique()[:30])]   # 30 groups keep the dummy regression quick
    fe = within(formula, data=df, groups=group)
    lsdv = smf.ols(f"{formula} + C({group})", data=df).fit()
    N, G, k = len(df), df[group].nunique(), len(slopes)
    assert fe.df_resid == N - G - k
    np.testing.assert_allclose(fe.params[slopes], lsdv.params[slopes], rtol=1e-10)
    np.testing.assert_allclose(fe.se()[slopes], lsdv.bse[slopes], rtol=1e-10)            # classical, df N-G-k
    pos = [list(lsdv.params.index).index(s) for s in slopes]
    np.testing.assert_allclose(fe.se("HC1")[slopes], lsdv.get_robustcov_results("HC1").bse[pos], rtol=1e-9)
    cr0 = lsdv.get_robustcov_results("cluster", groups=pd.factorize(df[group])[0], use_correction=False).bse[pos]
    np.testing.assert_allclose(fe.se("CR0", group)[slopes], cr0, rtol=1e-9)
    # CR1 as Stata's xtreg, fe vce(cluster): G/(G-1) (N-1)/(N-k-1), the nested fixed effects not counted
    factor = G / (G - 1) * (N - 1) / (N - k - 1)
    np.testing.assert_allclose(fe.se("CR1", group)[slopes], cr0 * np.sqrt(factor), rtol=1e-9)
    assert fe.summary("CR1", group)["df"].iloc[-1] == G - 1


def test_within_absorbs_group_constant_columns_with_a_warning(hsb):
    with pytest.warns(UserWarning, match=r"meanses.*absorbed"):
        fe = within("mathach ~ ses + meanses", data=hsb, groups="school")
    assert fe.names == ["Intercept", "ses"]
    with pytest.raises(InputError, match="no column of X varies"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            within("mathach ~ meanses", data=hsb, groups="school")


def test_re_gls_limits(hsb):
    formula = "mathach ~ ses + meanses"
    ols = hlmlib.ols(formula, data=hsb)
    pooled = re_gls(formula, data=hsb, groups="school", variance_components=(36.0, 0.0))
    assert np.all(pooled.details["theta"] == 0)
    np.testing.assert_allclose(pooled.params, ols.params, rtol=1e-12)
    np.testing.assert_allclose(pooled.se(), ols.se(), rtol=1e-12)
    np.testing.assert_allclose(pooled.se("CR1", "school"), ols.se("CR1", "school"), rtol=1e-10)
    # n_j sigma_u^2 >> sigma_e^2: theta_j -> 1 and the slope on the within-varying ses -> within's
    fe = within("mathach ~ ses", data=hsb, groups="school")
    big = re_gls("mathach ~ ses", data=hsb, groups="school", variance_components=(36.0, 1e12))
    assert big.details["theta"].min() > 1 - 1e-5
    np.testing.assert_allclose(big.params["ses"], fe.params["ses"], rtol=1e-5)
    mid = re_gls("mathach ~ ses", data=hsb, groups="school")
    lo, hi = sorted([hlmlib.ols("mathach ~ ses", data=hsb).params["ses"],
                     fe.params["ses"]])
    assert lo < mid.params["ses"] < hi      # RE lies between pooled OLS and within


def test_swamy_arora_components_and_theta(hsb):
    re = re_gls("mathach ~ ses + meanses", data=hsb, groups="school")
    fe = within("mathach ~ ses", data=hsb, groups="school")   # meanses is school-level: not in within
    n_j = hsb.groupby("school").size().to_numpy()
    sigma2_e = fe.rss / (len(hsb) - n_j.size - 1)
    means = hsb.groupby("school")[["mathach", "ses", "meanses"]].mean()
    between = smf.ols("mathach ~ ses + meanses", data=means).fit()
    sigma2_u = between.ssr / (n_j.size - 3) - sigma2_e / (n_j.size / np.sum(1 / n_j))
    assert re.details["sigma2_e"] == pytest.approx(sigma2_e, rel=1e-10)
    assert re.details["sigma2_u"] == pytest.approx(sigma2_u, rel=1e-10)
    theta = 1 - np.sqrt(sigma2_e / (sigma2_e + n_j * sigma2_u))
    np.testing.assert_allclose(re.details["theta"], theta, rtol=1e-10)
    # the GLS estimate equals OLS on the quasi-demeaned data, computed here by pandas
    g = hsb.groupby("school")
    th = hsb["school"].map(dict(zip(means.index, theta)))
    y = hsb.mathach - th * g.mathach.transform("mean")
    X = np.column_stack([1 - th, hsb.ses - th * g.ses.transform("mean"), hsb.meanses - th * hsb.meanses])
    np.testing.assert_allclose(re.params, sm.OLS(y, X).fit().params, rtol=1e-10)


def test_re_gls_matches_linearmodels_if_installed(hsb):
    panel = pytest.importorskip("linearmodels.panel")
    df = hsb.assign(i=hsb.groupby("school").cumcount()).set_index(["school", "i"])
    peer = panel.RandomEffects.from_formula("mathach ~ 1 + ses + meanses", df).fit()
    re = re_gls("mathach ~ ses + meanses", data=hsb, groups="school")
    np.testing.assert_allclose(re.params.to_numpy(), peer.params.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(re.se().to_numpy(), peer.std_errors.to_numpy(), rtol=1e-10)


def test_mundlak_slope_equals_within_unbalanced(hsb):
    mk = mundlak("mathach ~ ses + female + meanses", data=hsb, groups="school")
    with pytest.warns(UserWarning, match="absorbed"):
        fe = within("mathach ~ ses + female + meanses", data=hsb, groups="school")
    assert "mean(ses)" in mk.names and "mean(female)" in mk.names and "mean(meanses)" not in mk.names
    np.testing.assert_allclose(mk.params[["ses", "female"]], fe.params[["ses", "female"]], rtol=1e-9)
    # Mundlak's robust test of pi = 0: HSB's compositional effect of school mean SES (Raudenbush &
    # Bryk 2002, ch. 5) is large, so RE's assumption fails for ses
    plain = mundlak("mathach ~ ses + female", data=hsb, groups="school")
    table = plain.contrast({"mean(ses)": 1.0}, kind="CR2", cluster="school")
    assert table["estimate"].iloc[0] == pytest.approx(plain.params["mean(ses)"])
    assert table["se"].iloc[0] == pytest.approx(plain.se("CR2", "school")["mean(ses)"])
    assert table["p"].iloc[0] < 0.001


def test_hausman_statistic(petersen):
    fe = within("y ~ x", data=petersen, groups="firm")
    re = re_gls("y ~ x", data=petersen, groups="firm")
    h = hausman(fe, re)
    d = fe.params["x"] - re.params["x"]
    v = fe.vcov().loc["x", "x"] - re.vcov().loc["x", "x"]
    assert h.terms == ["x"] and h.df == 1 and not h.generalized_inverse
    assert h.statistic == pytest.approx(d ** 2 / v, rel=1e-12)
    assert 0 < h.pvalue < 1


class _Fit:
    def __init__(self, params, V):
        self.names = list(params)
        self.params = pd.Series(params)
        self._V = pd.DataFrame(V, index=self.names, columns=self.names)

    def vcov(self, kind="classical"):
        return self._V


def test_hausman_non_positive_definite_difference_warns_and_uses_pinv():
    fe = _Fit({"a": 1.0, "b": 2.0}, [[2.0, 0.0], [0.0, 1.0]])
    re = _Fit({"a": 0.5, "b": 1.0}, [[1.0, 0.0], [0.0, 3.0]])   # difference diag(1, -2)
    with pytest.warns(UserWarning, match="not positive definite"):
        h = hausman(fe, re)
    assert h.generalized_inverse and h.df == 1
    assert h.statistic == pytest.approx(0.5 ** 2 / 1.0)
    assert "Moore-Penrose" in repr(h)


def test_fwls_equals_wls_with_its_weights_and_recovers_the_variance_function():
    df = S.random_coefficient(n=20000, seed=31, s0=1.0, s1=0.8, s2=0.6)
    for method in ("nnls", "exp"):
        fit = fwls("y ~ x * z", data=df, method=method, variance="~ I(x**2) + I(z**2)")
        w = fit.details["weights"]
        peer = sm.WLS(df.y, sm.add_constant(np.column_stack([df.x, df.z, df.x * df.z])), weights=w).fit()
        np.testing.assert_allclose(fit.params.to_numpy(), peer.params, rtol=1e-10)
        np.testing.assert_allclose(fit.se().to_numpy(), peer.bse, rtol=1e-10)
        np.testing.assert_allclose(fit.se("HC1").to_numpy(), peer.get_robustcov_results("HC1").bse, rtol=1e-9)
        assert (w > 0).all()
    s = fwls("y ~ x * z", data=df).details["variance_params"]     # default: squares of x and z
    assert list(s.index) == ["1", "x^2", "z^2"]
    np.testing.assert_allclose(s.to_numpy(), [1.0, 0.64, 0.36], rtol=0.15)


def test_fwls_is_more_efficient_than_ols_under_random_coefficients():
    # 150 replications, X redrawn: the sd of the x:z estimate, OLS vs FWLS vs GLS with the true weights
    b = S.random_coefficient_batch(150, n=300, seed=5, s0=0.5, s1=1.5, s2=1.5)
    est = {"ols": [], "fwls": [], "gls": []}
    for r in range(b.Y.shape[0]):
        X, y = b.X[r], b.Y[r]
        w = 1 / S.error_variance(b.X[r][:, :3], np.diag([0.25, 2.25, 2.25]))
        est["ols"].append(np.linalg.lstsq(X, y, rcond=None)[0][3])
        est["fwls"].append(fwls(y, X, variance=X[:, 1:3] ** 2).params.iloc[3])
        est["gls"].append(sm.WLS(y, X, weights=w).fit().params[3])
    sd = {k: np.std(v) for k, v in est.items()}
    assert sd["gls"] < sd["fwls"] < sd["ols"]
    assert sd["fwls"] < 1.15 * sd["gls"]      # feasible weights lose little against the true ones


def test_gls_results_in_etable_and_errors(hsb):
    re = re_gls("mathach ~ ses", data=hsb, groups="school")
    fe = within("mathach ~ ses", data=hsb, groups="school")
    t = hlmlib.etable({"RE": re, "FE": (fe, dict(kind="CR1", cluster="school"))})
    assert t.frame.loc[("theta (mean)", ""), "RE"] == f"{np.mean(re.details['theta']):.3f}"
    assert t.frame.loc[("Groups (absorbed)", ""), "FE"] == "160"
    with pytest.raises(InputError, match="single group"):
        re_gls("mathach ~ ses", data=hsb.assign(one=1), groups="one")
    with pytest.raises(InputError, match="method"):
        fwls("mathach ~ ses", data=hsb, method="log")
    with pytest.raises(InputError, match="variance_components"):
        re_gls("mathach ~ ses", data=hsb, groups="school", variance_components=(0.0, 1.0))


def test_re_gls_without_within_degrees_of_freedom_says_so():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(30)
    X = np.column_stack([np.ones(30), x])
    with pytest.raises(InputError, match=r"no residual degrees of freedom \(N - G - k_w = 30 - 30 - 0\)"):
        re_gls(x + rng.standard_normal(30), X, groups=np.arange(30))      # one observation per group


def test_fwls_default_variance_function_is_the_same_for_arrays_and_formulas():
    """The lecture's s0^2 + s1^2 x^2 + s2^2 z^2: the product column x:z is not squared into it, whether it is
    named by a formula or an unnamed array column."""
    df = S.random_coefficient(400, seed=3)
    by_formula = fwls("y ~ x * z", data=df)
    X = np.column_stack([np.ones(len(df)), df["x"], df["z"], df["x"] * df["z"]])
    by_arrays = fwls(df["y"].to_numpy(), X)
    assert list(by_formula.details["variance_params"].index) == ["1", "x^2", "z^2"]
    assert list(by_arrays.details["variance_params"].index) == ["1", "x1^2", "x2^2"]
    np.testing.assert_allclose(by_arrays.params.to_numpy(), by_formula.params.to_numpy(), rtol=1e-12)


def test_hausman_refuses_cluster_robust_covariances():
    hsb = datasets.load_hsb()
    fe = within("mathach ~ ses", data=hsb, groups="school")
    re = re_gls("mathach ~ ses", data=hsb, groups="school")
    with pytest.raises(InputError, match="mundlak"):
        hausman(fe, re, kind="CR1")
