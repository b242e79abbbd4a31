"""hlmlib.gls: within = LSDV, RE-GLS limits and Swamy-Arora, Mundlak = within, Hausman, FWLS = WLS; against
linearmodels (a pinned test dependency: a missing one fails collection instead of skipping), plm's swar
(tests/fixtures/plm_swar.json) and clubSandwich (tests/fixtures/fwls_clubsandwich.json)."""
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from linearmodels.panel import PanelOLS, RandomEffects

import hlmlib
from hlmlib import datasets, simulate as S
from hlmlib.design import InputError
from hlmlib.gls import fwls, hausman, moore_penrose, mundlak, re_gls, within

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from make_gls_fixtures import PANELS, all_panels, fwls_clustered, panel_data  # noqa: E402


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


def test_re_gls_matches_linearmodels_on_hsb(hsb):
    df = hsb.assign(i=hsb.groupby("school").cumcount()).set_index(["school", "i"])
    peer = RandomEffects.from_formula("mathach ~ 1 + ses + meanses", df).fit()
    re = re_gls("mathach ~ ses + meanses", data=hsb, groups="school")
    np.testing.assert_allclose(re.params.to_numpy(), peer.params.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(re.se().to_numpy(), peer.std_errors.to_numpy(), rtol=1e-10)


def _indexed(df):
    return df.set_index(["g", "t"])


@pytest.mark.parametrize("panel", PANELS, ids=lambda p: f"seed{p[0]}-n{p[2]}to{p[3]}")
@pytest.mark.parametrize("method, small_sample", [("harmonic", False), ("baltagi-chang", True)])
def test_re_gls_matches_linearmodels_balanced_and_unbalanced(panel, method, small_sample):
    """Both variance-component rules against linearmodels' RandomEffects: the harmonic-mean T (its default)
    and Baltagi-Chang (its small_sample=True), on balanced and unbalanced panels (one has singleton groups)."""
    df = panel_data(*panel)
    peer = RandomEffects.from_formula("y ~ 1 + x1 + x2 + z", _indexed(df)).fit(small_sample=small_sample)
    re = re_gls("y ~ x1 + x2 + z", data=df, groups="g", sigma2_u_method=method)
    assert re.details["sigma2_u"] == pytest.approx(peer.variance_decomposition["Effects"], rel=1e-10)
    assert re.details["sigma2_e"] == pytest.approx(peer.variance_decomposition["Residual"], rel=1e-10)
    np.testing.assert_allclose(re.details["theta"], peer.theta.to_numpy().ravel(), rtol=1e-10)
    np.testing.assert_allclose(re.params.to_numpy(), peer.params.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(re.se().to_numpy(), peer.std_errors.to_numpy(), rtol=1e-10)


def test_fixture_data_are_the_generated_panels():
    on_disk = pd.read_csv(FIXTURES / "gls_panels.csv")
    pd.testing.assert_frame_equal(on_disk, all_panels(), check_dtype=False, rtol=1e-15)
    pd.testing.assert_frame_equal(pd.read_csv(FIXTURES / "fwls_clustered.csv"), fwls_clustered(),
                                  check_dtype=False, rtol=1e-12)


@pytest.mark.parametrize("panel", PANELS, ids=lambda p: f"seed{p[0]}-n{p[2]}to{p[3]}")
def test_baltagi_chang_matches_plm_swar(panel):
    """plm's random.method = "swar" (plm 2.6; R script tests/fixtures/plm_swar.R) is Baltagi-Chang on
    unbalanced panels and the textbook Swamy-Arora on balanced ones, where the harmonic rule agrees."""
    ref = json.loads((FIXTURES / "plm_swar.json").read_text())[str(panel[0])]
    df = panel_data(*panel)
    fit = re_gls("y ~ x1 + x2 + z", data=df, groups="g", sigma2_u_method="baltagi-chang")
    assert fit.details["sigma2_u"] == pytest.approx(ref["sigma2_u"], rel=1e-10)
    assert fit.details["sigma2_e"] == pytest.approx(ref["sigma2_e"], rel=1e-10)
    np.testing.assert_allclose(fit.params.to_numpy(), list(ref["coef"].values()), rtol=1e-10)
    np.testing.assert_allclose(fit.se().to_numpy(), list(ref["se"].values()), rtol=1e-10)
    harmonic = re_gls("y ~ x1 + x2 + z", data=df, groups="g")
    if ref["balanced"]:
        assert harmonic.details["sigma2_u"] == pytest.approx(ref["sigma2_u"], rel=1e-10)
    else:   # the two rules differ on unbalanced panels, by more than rounding
        assert abs(harmonic.details["sigma2_u"] / ref["sigma2_u"] - 1) > 1e-3


@pytest.mark.parametrize("panel", PANELS, ids=lambda p: f"seed{p[0]}-n{p[2]}to{p[3]}")
@pytest.mark.parametrize("method, small_sample", [("harmonic", False), ("baltagi-chang", True)])
def test_mundlak_matches_linearmodels_on_the_augmented_design(panel, method, small_sample):
    """linearmodels' RandomEffects on y ~ x + z + mean(x): the between regression's df count the added means
    once (rank), so sigma_u^2, theta and the classical se agree."""
    df = panel_data(*panel)
    df = df.assign(m1=df.groupby("g").x1.transform("mean"), m2=df.groupby("g").x2.transform("mean"))
    peer = RandomEffects.from_formula("y ~ 1 + x1 + x2 + z + m1 + m2", _indexed(df)).fit(small_sample=small_sample)
    mk = mundlak("y ~ x1 + x2 + z", data=df, groups="g", sigma2_u_method=method)
    assert mk.names[-2:] == ["mean(x1)", "mean(x2)"]
    assert mk.details["sigma2_u"] == pytest.approx(peer.variance_decomposition["Effects"], rel=1e-10)
    np.testing.assert_allclose(mk.details["theta"], peer.theta.to_numpy().ravel(), rtol=1e-10)
    np.testing.assert_allclose(mk.params.to_numpy(), peer.params.to_numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mk.se().to_numpy(), peer.std_errors.to_numpy(), rtol=1e-10)


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


@pytest.mark.parametrize("sigmamore", [False, True])
@pytest.mark.parametrize("panel", PANELS[:3], ids=lambda p: f"seed{p[0]}")
def test_hausman_matches_linearmodels_and_a_hand_computation(panel, sigmamore):
    df = panel_data(*panel)
    fe = within("y ~ x1 + x2", data=df, groups="g")
    re = re_gls("y ~ x1 + x2", data=df, groups="g")
    fe_peer = PanelOLS.from_formula("y ~ 1 + x1 + x2 + EntityEffects", _indexed(df)).fit()
    re_peer = RandomEffects.from_formula("y ~ 1 + x1 + x2", _indexed(df)).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # both warn if the difference is not positive definite
        h = hausman(fe, re, sigmamore=sigmamore)
        peer = re_peer.hausman(fe_peer, sigmamore=sigmamore).statistic
    # by hand, numpy's pinv of the difference of the two classical covariances (V_FE rescaled for sigmamore)
    terms = ["x1", "x2"]
    V_fe = fe.vcov().loc[terms, terms].to_numpy() * (re.sigma ** 2 / fe.sigma ** 2 if sigmamore else 1.0)
    V = V_fe - re.vcov().loc[terms, terms].to_numpy()
    d = (fe.params[terms] - re.params[terms]).to_numpy()
    assert h.terms == terms
    assert h.statistic == pytest.approx(d @ np.linalg.pinv(V) @ d, rel=1e-10)
    assert h.n_negative == int((np.linalg.eigvalsh(V) < 0).sum())
    if sigmamore:
        assert h.n_negative == 0
    if h.statistic >= 0:
        assert h.statistic == pytest.approx(peer.stat, rel=1e-8)
        assert h.df == peer.df == 2 and h.pvalue == pytest.approx(peer.pval, rel=1e-8)
    else:   # own sigmas, indefinite difference: linearmodels declares the statistic invalid (NaN)
        assert h.n_negative >= 1 and np.isnan(peer.stat)


@pytest.mark.parametrize("factor", [1e-8, 1e8])
def test_hausman_does_not_depend_on_the_units_of_a_regressor(factor):
    """x2 in other units: the same test (H, df, p), with linearmodels' unscaled values. Issue: the rank was judged
    against the largest eigenvalue of V_FE - V_RE itself, where x2's variance, 1e16 times smaller, fell below
    the cut: H = 3.02 on 1 df instead of 37.9 on 2."""
    df = panel_data(*PANELS[0])
    re_peer = RandomEffects.from_formula("y ~ 1 + x1 + x2", _indexed(df)).fit()
    fe_peer = PanelOLS.from_formula("y ~ 1 + x1 + x2 + EntityEffects", _indexed(df)).fit()
    peer = re_peer.hausman(fe_peer, sigmamore=True).statistic
    scaled = df.assign(x2=df["x2"] * factor)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # no false "not positive definite" either
        h = hausman(within("y ~ x1 + x2", data=scaled, groups="g"), re_gls("y ~ x1 + x2", data=scaled, groups="g"),
                    sigmamore=True)
    assert (h.statistic, h.df, h.pvalue) == pytest.approx((peer.stat, peer.df, peer.pval), rel=1e-7)


def test_hausman_sigmamore_difference_is_positive_semidefinite_where_own_sigmas_are_not():
    """The common-variance form makes V_FE - V_RE PSD; with each fit's own sigma^2 it need not be. Found by
    scanning seeds (x uncorrelated with u, small within variance): the first seed whose own-sigma difference
    has a negative eigenvalue."""
    for seed in range(200):
        rng = np.random.default_rng(seed)
        g = np.repeat(np.arange(15), 3)
        x = rng.standard_normal((45, 2)) * [1.0, 0.2] + rng.standard_normal((15, 2))[g]
        y = x @ [1.0, -1.0] + rng.standard_normal(15)[g] * 2 + rng.standard_normal(45)
        X = np.column_stack([np.ones(45), x])
        fe, re = within(y, X, groups=g), re_gls(y, X, groups=g)
        V_own = fe.vcov().loc[["x1", "x2"], ["x1", "x2"]].to_numpy() - re.vcov().loc[["x1", "x2"], ["x1", "x2"]].to_numpy()
        if np.linalg.eigvalsh(V_own).min() < 0:
            break
    else:
        pytest.fail("no seed gave a non-PSD own-sigma difference")
    with pytest.warns(UserWarning, match="negative"):
        own = hausman(fe, re)
    assert own.n_negative >= 1 and own.generalized_inverse
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        common = hausman(fe, re, sigmamore=True)
    assert common.n_negative == 0 and common.eigenvalues.min() > 0 and common.df == 2
    # sigmamore by hand: V_FE rescaled to the RE fit's s^2
    terms = ["x1", "x2"]
    V = fe.vcov().loc[terms, terms] * re.sigma ** 2 / fe.sigma ** 2 - re.vcov().loc[terms, terms]
    d = (fe.params[terms] - re.params[terms]).to_numpy()
    assert common.statistic == pytest.approx(d @ np.linalg.solve(V.to_numpy(), d), rel=1e-10)


def _with_covariances(fit, params, V):
    """A real hlmlib result whose params and vcov are replaced, to put chosen matrices through hausman."""
    fit.params = pd.Series(params)
    frame = pd.DataFrame(V, index=list(params), columns=list(params))
    fit.vcov = lambda kind="classical": frame
    return fit


@pytest.fixture
def two_fits(petersen):
    return within("y ~ x", data=petersen, groups="firm"), re_gls("y ~ x", data=petersen, groups="firm")


def test_hausman_moore_penrose_of_an_indefinite_difference(two_fits):
    """diag(1, -2): the Moore-Penrose inverse is diag(1, -1/2) (not diag(1, 0)), df = rank = 2, H can be negative."""
    fe = _with_covariances(two_fits[0], {"a": 1.0, "b": 2.0}, [[2.0, 0.0], [0.0, 1.0]])
    re = _with_covariances(two_fits[1], {"a": 0.5, "b": 1.0}, [[1.0, 0.0], [0.0, 3.0]])
    with pytest.warns(UserWarning, match=r"not positive definite.*1 negative.*sigmamore"):
        h = hausman(fe, re)
    d, V = np.array([0.5, 1.0]), np.diag([1.0, -2.0])
    assert h.statistic == pytest.approx(d @ np.linalg.pinv(V) @ d, rel=1e-14)     # independent numpy
    assert h.statistic == pytest.approx(0.25 - 0.5)
    assert h.df == 2 and h.n_negative == 1 and h.generalized_inverse and h.pvalue == 1.0
    np.testing.assert_allclose(h.eigenvalues, [-2.0, 0.5])     # of S^-1 V S^-1, S^2 = diag(V_FE) = diag(2, 1)
    assert "Moore-Penrose" in repr(h) and "1 negative" in repr(h)


def test_hausman_rank_deficient_difference_counts_rounding_level_eigenvalues_as_zero(two_fits):
    """A difference of rank 1 carrying rounding noise (V_FE - V_RE = a a' + 1e-17 E): df 1, and H equals
    the rank-1 Moore-Penrose statistic (d'a)^2 / (a'a)^2 computed by hand (d in the range of the difference,
    where every generalized inverse gives the same H, hausman's in FE-se units included)."""
    rng = np.random.default_rng(7)
    a = np.array([1.0, 2.0, -1.0])
    noise = rng.standard_normal((3, 3)) * 1e-17
    V_re = np.diag([2.0, 3.0, 4.0])
    V_fe = V_re + np.outer(a, a) + (noise + noise.T)
    names = ["a", "b", "c"]
    d = 0.4 * a
    fe = _with_covariances(two_fits[0], dict(zip(names, d)), V_fe)
    re = _with_covariances(two_fits[1], dict(zip(names, np.zeros(3))), V_re)
    with pytest.warns(UserWarning, match="0 negative"):
        h = hausman(fe, re)
    assert h.df == 1 and h.n_negative == 0
    assert h.statistic == pytest.approx((d @ a) ** 2 / (a @ a) ** 2, rel=1e-12)
    assert h.statistic == pytest.approx(d @ np.linalg.pinv(np.outer(a, a)) @ d, rel=1e-12)
    V_plus, lam, tol = moore_penrose(np.outer(a, a) + noise + noise.T, 1e-10, 4.0)
    np.testing.assert_allclose(V_plus, np.linalg.pinv(np.outer(a, a)), atol=1e-14)


def test_hausman_statistic(petersen):
    fe = within("y ~ x", data=petersen, groups="firm")
    re = re_gls("y ~ x", data=petersen, groups="firm")
    h = hausman(fe, re)
    d = fe.params["x"] - re.params["x"]
    v = fe.vcov().loc["x", "x"] - re.vcov().loc["x", "x"]
    assert h.terms == ["x"] and h.df == 1 and not h.generalized_inverse
    assert h.statistic == pytest.approx(d ** 2 / v, rel=1e-12)
    assert 0 < h.pvalue < 1


def test_hausman_with_a_mixed_model_as_the_efficient_fit(hsb):
    fe = within("mathach ~ ses", data=hsb, groups="school")
    mx = hlmlib.mixed("mathach ~ ses", data=hsb, groups="school")
    h = hausman(fe, mx)
    d = fe.params["ses"] - mx.params["ses"]
    assert h.statistic == pytest.approx(d ** 2 / (fe.vcov().loc["ses", "ses"] - mx.vcov().loc["ses", "ses"]), rel=1e-12)
    common = hausman(fe, mx, sigmamore=True)
    v = fe.vcov().loc["ses", "ses"] * mx.sigma2 / fe.sigma ** 2 - mx.vcov().loc["ses", "ses"]
    assert common.statistic == pytest.approx(d ** 2 / v, rel=1e-12)
    with pytest.raises(InputError, match="model-based"):
        hausman(fe, mx, kind="HC1")
    with pytest.raises(InputError, match="fe must be a within"):
        hausman(mx, fe)


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


def test_fwls_cr2_is_the_transformed_ols_cr2_not_clubsandwichs_weighted_lm():
    """hlmlib's FWLS CR2 equals clubSandwich's CR2 of the transformed lm(sqrt(w) y ~ 0 + sqrt(w) X) and differs
    from clubSandwich's CR2 of lm(y ~ X, weights = w) (default and inverse_var = TRUE) by about 1-2% here; CR1
    equals sandwich's vcovCL(type = "HC1") on the weighted lm (R script tests/fixtures/fwls_clubsandwich.R)."""
    ref = json.loads((FIXTURES / "fwls_clubsandwich.json").read_text())
    df = pd.read_csv(FIXTURES / "fwls_clustered.csv")
    fit = fwls("y ~ x * z", data=df)
    np.testing.assert_allclose(fit.details["weights"], df["w"], rtol=1e-12)
    np.testing.assert_allclose(fit.params.to_numpy(), ref["coef_weighted"], rtol=1e-10)
    cr2 = fit.se("CR2", "cluster").to_numpy()
    np.testing.assert_allclose(cr2, ref["cr2_transformed"], rtol=1e-10)
    np.testing.assert_allclose(fit.se("CR1", "cluster").to_numpy(), ref["cr1_vcovCL_weighted"], rtol=1e-10)
    for other in ("cr2_weighted", "cr2_weighted_inverse_var"):
        gap = np.abs(cr2 / np.array(ref[other]) - 1)
        assert 1e-3 < gap.max() < 0.05, (other, gap)
