"""hlmlib.lmm_diagnostics and the MixedResult methods built on it: Raudenbush & Bryk's reliabilities and
homogeneity tests against HLM's published output and against group-by-group least squares written out here,
independently of hlmlib's helpers."""
import json
import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hlmlib
from hlmlib import mixed
from hlmlib.datasets import load_hsb, load_sleepstudy

HSB = load_hsb()


def quiet_mixed(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mixed(*args, **kwargs)


@pytest.fixture(scope="module")
def hsb_fits():
    return {
        "null": quiet_mixed("mathach ~ 1 + (1 | school)", HSB),
        "means": quiet_mixed("mathach ~ meanses + (1 | school)", HSB),
        "random_coef": quiet_mixed("mathach ~ cses + (cses | school)", HSB),
        "slopes_as_outcomes": quiet_mixed("mathach ~ cses * catholic + cses * meanses + (cses | school)", HSB),
        "fixed_female": quiet_mixed("mathach ~ cses + female + meanses + (cses | school)", HSB),
    }


def per_school_ols(fit, z_columns, f_columns=()):
    """School by school: regress y - X beta-hat on [Z_j F_j] with np.linalg.lstsq; return the Z coefficients
    and the Z block of sigma^2 (D'D)^-1, both indexed by school, NaN where D_j is rank deficient (a column of
    F_j that is zero in the school is dropped: a single-sex school has no female coefficient of its own)."""
    resid = HSB["mathach"].to_numpy() - fit.fitted["marginal"].to_numpy()
    q = len(z_columns)
    est, var = {}, {}
    for school, rows in HSB.groupby("school").indices.items():
        D = np.column_stack([np.ones(rows.size) if c == "1" else HSB[c].to_numpy()[rows]
                             for c in list(z_columns) + list(f_columns)])
        D = D[:, (np.arange(D.shape[1]) < q) | (np.abs(D).max(axis=0) > 0)]
        if np.linalg.matrix_rank(D) < D.shape[1]:
            est[school], var[school] = np.full(q, np.nan), np.full((q, q), np.nan)
            continue
        est[school] = np.linalg.lstsq(D, resid[rows], rcond=None)[0][:q]
        var[school] = fit.sigma2 * np.linalg.inv(D.T @ D)[:q, :q]
    return est, var


# ---------------------------------------------------------------------------------------------------------------
# reliability

def test_null_model_reliability_is_hlms(hsb_fits):
    # HLM 6, REML, the unconditional model of HSB (UCLA's annotated HLM output of Singer 1998's models,
    # https://stats.oarc.ucla.edu/other/hlm/output/annotated-hlm-outputunconditional-model/): reliability 0.901
    fit = hsb_fits["null"]
    n = HSB.groupby("school").size().to_numpy()
    tau, s2 = fit.tau.iloc[0, 0], fit.sigma2
    assert fit.reliability()["Intercept"] == pytest.approx(np.mean(tau / (tau + s2 / n)), rel=1e-12)
    assert fit.reliability()["Intercept"] == pytest.approx(0.901, abs=5e-4)
    per_group = fit.reliability(per_group=True)
    np.testing.assert_allclose(per_group["Intercept"], fit.shrinkage_factor(), rtol=1e-10)
    assert list(per_group.index) == list(fit.group_labels)


@pytest.mark.parametrize("key, z, f", [("random_coef", ["1", "cses"], []),
                                       ("slopes_as_outcomes", ["1", "cses"], []),
                                       ("fixed_female", ["1", "cses"], ["female"])])
def test_reliability_from_each_schools_ols(hsb_fits, key, z, f):
    fit = hsb_fits[key]
    _, var = per_school_ols(fit, z, f)
    tau = np.diag(fit.tau.to_numpy())
    expected = pd.DataFrame({school: tau / (tau + np.diag(v)) for school, v in var.items()}).T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_group = fit.reliability(per_group=True)
    np.testing.assert_allclose(per_group.to_numpy(), expected.loc[per_group.index].to_numpy(), rtol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # the all-girls schools of the female model have no OLS fit
        mean = fit.reliability()
    np.testing.assert_allclose(mean.to_numpy(), expected.mean().to_numpy(), rtol=1e-9)
    assert list(mean.index) == fit.re_names


def test_fixed_level1_predictors_are_estimated_per_group(hsb_fits):
    # female has a fixed coefficient only: each school's OLS regression estimates it too (as HLM's), so its
    # V_j is not sigma^2 (Z_j'Z_j)^-1 and the reliabilities differ from a model without female
    fit = hsb_fits["fixed_female"]
    assert fit._unit_ols.level1_fixed == ["female"]
    assert list(fit._unit_ols.n_level2) == [2, 1]            # Intercept, meanses | cses
    Z = np.column_stack([np.ones(len(HSB)), HSB["cses"]])
    ZtZ_only = fit.sigma2 * np.linalg.inv(Z[:20].T @ Z[:20])
    assert not np.allclose(fit._unit_ols.cov[0], ZtZ_only)


def unbalanced_data(seed=4, J=25):
    """Groups of 1 to 12 rows, one of them with x constant (no OLS slope), random intercepts and slopes."""
    rng = np.random.default_rng(seed)
    n = rng.integers(3, 13, size=J)
    n[:3] = [1, 2, 8]
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=g.size)
    x[g == 2] = 0.5                                   # group 2: x constant, so no slope of its own
    u = rng.normal(size=(J, 2)) * [1.0, 0.5]
    y = 1 + 2 * x + u[g, 0] + u[g, 1] * x + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def test_groups_without_an_ols_fit_are_left_out_with_a_warning():
    data = unbalanced_data()
    fit = quiet_mixed("y ~ x + (x | g)", data)
    with pytest.warns(UserWarning, match=r"2 of 25 groups .* uses the other 23"):
        per_group = fit.reliability(per_group=True)
    assert per_group.loc[[0, 2]].isna().all().all() and per_group.drop([0, 2]).notna().all().all()
    with pytest.warns(UserWarning, match="2 of 25 groups"):
        mean = fit.reliability()
    np.testing.assert_allclose(mean.to_numpy(), per_group.dropna().mean().to_numpy(), rtol=1e-12)
    # a group of two rows has an exact OLS fit: it has a V_j and is used, as R&B's formula allows
    assert per_group.loc[1].notna().all()
    # a random intercept with no level-1 predictor needs only one row per group: none is left out, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert quiet_mixed("y ~ 1 + (1 | g)", data).reliability(per_group=True).notna().all().all()
    # with x's coefficient fixed, each group's regression still estimates it (as HLM's): the group of one row
    # and the group with x constant have no intercept of their own
    with pytest.warns(UserWarning, match="2 of 25 groups"):
        assert quiet_mixed("y ~ x + (1 | g)", data).reliability(per_group=True).isna().sum().item() == 2


# ---------------------------------------------------------------------------------------------------------------
# homogeneity tests of tau_qq = 0

def test_null_model_chi_square_is_hlms(hsb_fits):
    # HLM 6 (REML), HSB unconditional model: chi-square 1660.23264 on 159 df (UCLA's annotated HLM output, as above);
    # the statistic is sum_j n_j (ybar_j - gamma00)^2 / sigma^2 with the fit's gamma00 and sigma^2
    fit = hsb_fits["null"]
    table = fit.homogeneity_test()
    g = HSB.groupby("school")["mathach"]
    hand = (g.size() * (g.mean() - fit.params["Intercept"]) ** 2).sum() / fit.sigma2
    assert table.loc["Intercept", "chi2"] == pytest.approx(hand, rel=1e-10)
    assert table.loc["Intercept", "chi2"] == pytest.approx(1660.23264, abs=2e-3)
    assert table.loc["Intercept", "df"] == 159 and table.loc["Intercept", "groups"] == 160


@pytest.mark.parametrize("key, z, f, df", [("means", ["1"], [], [158]),
                                           ("random_coef", ["1", "cses"], [], [159, 159]),
                                           ("slopes_as_outcomes", ["1", "cses"], [], [157, 157]),
                                           ("fixed_female", ["1", "cses"], ["female"], [None, None])])
def test_chi_square_from_each_schools_ols(hsb_fits, key, z, f, df):
    fit = hsb_fits[key]
    est, var = per_school_ols(fit, z, f)
    used = [s for s in fit.group_labels if not np.isnan(est[s]).any()]
    chi2 = sum(est[s] ** 2 / np.diag(var[s]) for s in used)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = fit.homogeneity_test()
    np.testing.assert_allclose(table["chi2"].to_numpy(), chi2, rtol=1e-9)
    expected_df = [len(used) - 2, len(used) - 1] if df[0] is None else df     # female: Intercept, meanses | cses
    assert list(table["df"]) == expected_df and (table["groups"] == len(used)).all()
    np.testing.assert_allclose(table["p"], stats.chi2.sf(chi2, expected_df), rtol=1e-10)
    assert list(table.index) == fit.re_names


def test_homogeneity_test_with_a_slope_but_no_fixed_slope():
    # y ~ 1 + (x | g): the slope's level-2 model has no fixed effect, so its chi-square has J' df
    data = unbalanced_data(seed=9)
    data = data[data.g != 2]
    fit = quiet_mixed("y ~ 1 + (x | g)", data)
    with pytest.warns(UserWarning, match="1 of 24 groups"):        # the group of one row
        table = fit.homogeneity_test()
    assert list(table["df"]) == [table["groups"].iloc[0] - 1, table["groups"].iloc[0]]


def test_as_many_level2_coefficients_as_groups_is_refused_at_the_fit():
    """J = 4 groups and 4 group-level columns (intercept, w, w2, w3): they span every group's indicator, so
    the random intercept is confounded with the fixed effects (the criterion is flat in tau) and mixed
    refuses the fit; homogeneity_test's df would be J - 4 = 0."""
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(4), 6)
    w = rng.normal(size=4)[g]
    w2 = rng.normal(size=4)[g]
    w3 = rng.normal(size=4)[g]
    y = w + rng.normal(size=4)[g] + rng.normal(size=g.size)
    with pytest.raises(hlmlib.InputError, match=r"column\(s\) \[.Intercept.\] are confounded with the fixed effects"):
        quiet_mixed("y ~ w + w2 + w3 + (1 | g)", pd.DataFrame({"y": y, "w": w, "w2": w2, "w3": w3, "g": g}))


def test_homogeneity_test_without_a_usable_group_is_refused():
    # three rows per group, four level-1 coefficients: no group has its own OLS estimate
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(20), 3)
    data = pd.DataFrame({"y": rng.normal(size=g.size), "x": rng.normal(size=g.size), "x2": rng.normal(size=g.size),
                         "x3": rng.normal(size=g.size), "g": g})
    fit = quiet_mixed("y ~ x + x2 + x3 + (1 + x | g)", data)
    with pytest.raises(hlmlib.InputError, match="none of the 20 groups has its own OLS estimate"):
        fit.homogeneity_test()


# ---------------------------------------------------------------------------------------------------------------
# variance explained

def test_proportion_reduction_in_variance(hsb_fits):
    base, fit = hsb_fits["random_coef"], hsb_fits["slopes_as_outcomes"]
    table = hlmlib.variance_explained(base, fit)
    assert list(table.index) == ["residual variance", "var(Intercept)", "var(cses)"]
    T0, T1 = np.diag(base.tau.to_numpy()), np.diag(fit.tau.to_numpy())
    np.testing.assert_allclose(table["reduction"], [(base.sigma2 - fit.sigma2) / base.sigma2, *((T0 - T1) / T0)],
                               rtol=1e-12)
    np.testing.assert_allclose(table["base"], [base.sigma2, *T0], rtol=1e-12)
    np.testing.assert_allclose(table["fit"], [fit.sigma2, *T1], rtol=1e-12)
    # null -> random coefficients: cses explains level-1 variance, and the intercept variance rises (a negative
    # "reduction"), as Snijders & Bosker warn; the cses row is absent (not in the null model)
    table = hlmlib.variance_explained(hsb_fits["null"], base)
    assert list(table.index) == ["residual variance", "var(Intercept)"]
    assert table.loc["residual variance", "reduction"] > 0 > table.loc["var(Intercept)", "reduction"]


def test_snijders_bosker_r2_by_hand(hsb_fits):
    base = hsb_fits["null"]
    fit = quiet_mixed("mathach ~ cses * catholic + cses * meanses + (1 | school)", HSB)
    n_j = HSB.groupby("school").size().to_numpy()
    harmonic = len(n_j) / np.sum(1 / n_j)
    r2 = hlmlib.snijders_bosker_r2(base, fit)
    s2b, tb, s2f, tf = base.sigma2, base.tau.iloc[0, 0], fit.sigma2, fit.tau.iloc[0, 0]
    assert r2["n"] == pytest.approx(harmonic, rel=1e-12)
    assert r2["R2_1"] == pytest.approx(1 - (s2f + tf) / (s2b + tb), rel=1e-12)
    assert r2["R2_2"] == pytest.approx(1 - (s2f / harmonic + tf) / (s2b / harmonic + tb), rel=1e-12)
    r2_mean = hlmlib.snijders_bosker_r2(base, fit, n=n_j.mean())
    assert r2_mean["R2_2"] == pytest.approx(1 - (s2f / n_j.mean() + tf) / (s2b / n_j.mean() + tb), rel=1e-12)
    assert r2_mean["R2_1"] == r2["R2_1"]
    # a within-group predictor lowers sigma^2, so R2_1 > 0, and leaves the group means' variance: R2_2 ~ 0
    within = hlmlib.snijders_bosker_r2(base, quiet_mixed("mathach ~ cses + (1 | school)", HSB))
    assert within["R2_1"] > 0.03 and abs(within["R2_2"]) < 0.01


def test_variance_explained_refuses_fits_it_cannot_compare(hsb_fits):
    ml = quiet_mixed("mathach ~ meanses + (1 | school)", HSB, reml=False)
    with pytest.raises(hlmlib.InputError, match="REML and the other ML"):
        hlmlib.variance_explained(hsb_fits["null"], ml)
    with pytest.raises(hlmlib.InputError, match="same data"):
        hlmlib.variance_explained(hsb_fits["null"], quiet_mixed("mathach ~ 1 + (1 | school)", HSB.iloc[:-5]))
    with pytest.raises(hlmlib.InputError, match="random-intercept models"):
        hlmlib.snijders_bosker_r2(hsb_fits["null"], hsb_fits["random_coef"])


# ---------------------------------------------------------------------------------------------------------------
# random effects, residuals and model checks against lme4 (tests/fixtures/ranef_condvar.R and its JSON)
LME4 = json.loads((pathlib.Path(__file__).parent / "fixtures" / "ranef_condvar.json").read_text())
LME4_DATA = {"hsb": HSB, "sleep": load_sleepstudy()}


@pytest.fixture(scope="module")
def lme4_fits():
    fits = {}
    for key, ref in LME4.items():
        data = LME4_DATA["hsb" if key.startswith("hsb") else "sleep"]
        fits[key] = quiet_mixed(ref["formula"], data, reml=ref["reml"])
    return fits


def lme4_order(fit, ref):
    """Positions of lme4's groups (labels as text) among the fit's."""
    labels = [str(g) for g in fit.group_labels]
    return [labels.index(g) for g in ref["groups"]]


@pytest.mark.parametrize("key", list(LME4))
def test_ranef_and_conditional_variances_are_lme4s(lme4_fits, key):
    fit, ref = lme4_fits[key], LME4[key]
    order = lme4_order(fit, ref)
    # lme4 and hlmlib agree on the variance components to 1e-5 relative; BLUPs near zero inherit that on the
    # scale of their standard deviation
    sd = np.sqrt(np.diag(np.array(ref["tau"])))
    np.testing.assert_allclose(fit.ranef.to_numpy()[order] / sd, np.array(ref["ranef"]) / sd, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fit.ranef_cov[order], np.array(ref["condvar"]), rtol=1e-5)
    np.testing.assert_allclose(fit.ranef_se().to_numpy()[order],
                               np.sqrt(np.diagonal(np.array(ref["condvar"]), axis1=1, axis2=2)), rtol=1e-5)
    assert list(fit.ranef_se().columns) == fit.re_names


@pytest.mark.parametrize("key", list(LME4))
def test_residual_kinds_are_lme4s(lme4_fits, key):
    fit, ref = lme4_fits[key], LME4[key]
    rows, atol = ref["rows"], 1e-6 * ref["sigma"]
    np.testing.assert_allclose(fit.residuals().to_numpy()[rows], ref["resid_level1"], rtol=1e-6, atol=atol)
    np.testing.assert_allclose(fit.residuals("level1", scaled=True).to_numpy()[rows], ref["resid_scaled"],
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fit.residuals("marginal").to_numpy()[rows], ref["resid_marginal"], rtol=1e-6,
                               atol=atol)
    # the residuals property keeps its meaning
    np.testing.assert_array_equal(fit.residuals("marginal"), fit.resid["marginal"])
    np.testing.assert_array_equal(fit.residuals(), fit.resid["conditional"])


@pytest.mark.parametrize("key", list(LME4))
def test_mahalanobis_distance_from_lme4s_random_effects(lme4_fits, key):
    # D_j = u_j' (T - condVar_j)^-1 u_j computed from lme4's own BLUPs, postVar and VarCorr
    fit, ref = lme4_fits[key], LME4[key]
    T = np.array(ref["tau"])
    u, post = np.array(ref["ranef"]), np.array(ref["condvar"])
    expected = np.array([uj @ np.linalg.solve(T - Pj, uj) for uj, Pj in zip(u, post)])
    table = fit.mahalanobis()
    np.testing.assert_allclose(table["distance"].to_numpy()[lme4_order(fit, ref)], expected, rtol=1e-4)
    q = T.shape[0]
    assert (table["df"] == q).all()
    np.testing.assert_allclose(table["p"], stats.chi2.sf(table["distance"], q), rtol=1e-12)


def test_mahalanobis_marginal_variance_and_its_chi2_reference():
    # the marginal variance tau - Var(b | y) equals tau Z'V^-1 Z tau (here by dense matrices), and under the model
    # the distances are chi2(q): their mean over 300 simulated groups is q within Monte Carlo error
    rng = np.random.default_rng(12)
    J, n = 300, 8
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=g.size)
    L = np.array([[1.0, 0.0], [0.4, 0.6]])
    u = rng.normal(size=(J, 2)) @ L.T
    y = 2 + x + u[g, 0] + u[g, 1] * x + rng.normal(size=g.size)
    fit = quiet_mixed("y ~ x + (x | g)", pd.DataFrame({"y": y, "x": x, "g": g}))
    T, s2 = fit.tau.to_numpy(), fit.sigma2
    Zj = np.column_stack([np.ones(n), x[:n]])
    Vj = Zj @ T @ Zj.T + s2 * np.eye(n)
    marginal = T @ Zj.T @ np.linalg.solve(Vj, Zj) @ T
    np.testing.assert_allclose(fit.ranef_se("marginal").iloc[0] ** 2, np.diag(marginal), rtol=1e-8)
    b0 = fit.ranef.to_numpy()[0]
    assert fit.mahalanobis()["distance"].iloc[0] == pytest.approx(b0 @ np.linalg.solve(marginal, b0), rel=1e-7)
    d = fit.mahalanobis()["distance"]
    assert abs(d.mean() - 2) < 4 * d.std() / np.sqrt(J)


def test_mahalanobis_leaves_out_groups_with_a_singular_zz():
    fit = quiet_mixed("y ~ x + (x | g)", unbalanced_data())
    with pytest.warns(UserWarning, match="2 of 25 groups have a singular"):
        table = fit.mahalanobis()
    # group 0: one row; group 2: x constant
    assert table.loc[[0, 2], "distance"].isna().all() and table.drop([0, 2])["distance"].notna().all()


def test_ranef_se_marginal_is_the_spread_of_the_estimates(hsb_fits):
    fit = hsb_fits["null"]
    n = HSB.groupby("school").size().to_numpy()
    tau, s2 = fit.tau.iloc[0, 0], fit.sigma2
    lam = tau / (tau + s2 / n)
    # Var(b_j-hat) = lambda_j tau and Var(b_j | y) = (1 - lambda_j) tau for a random intercept
    np.testing.assert_allclose(fit.ranef_se("marginal")["Intercept"] ** 2, lam * tau, rtol=1e-9)
    np.testing.assert_allclose(fit.ranef_se("conditional")["Intercept"] ** 2, (1 - lam) * tau, rtol=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# homogeneity of the level-1 variance

def per_school_residual_variance(columns, min_df=10):
    out = {}
    for school, rows in HSB.groupby("school").indices.items():
        D = np.column_stack([np.ones(rows.size)] + [HSB[c].to_numpy()[rows] for c in columns])
        y = HSB["mathach"].to_numpy()[rows]
        e = y - D @ np.linalg.lstsq(D, y, rcond=None)[0]
        f = rows.size - np.linalg.matrix_rank(D)
        if f >= min_df:
            out[school] = (e @ e / f, f)
    return pd.DataFrame(out, index=["s2", "f"]).T


def test_level1_variance_test_by_hand(hsb_fits):
    fit = hsb_fits["slopes_as_outcomes"]               # level 1: intercept and cses (catholic, meanses at level 2)
    hand = per_school_residual_variance(["cses"])
    L = np.log(hand["s2"])
    pooled = np.sum(hand["f"] * L) / hand["f"].sum()
    H = np.sum((L - pooled) ** 2 / (2 / hand["f"]))
    test = fit.level1_variance_test()
    assert test.statistic == pytest.approx(H, rel=1e-10) and test.df == len(hand) - 1
    assert test.pvalue == pytest.approx(stats.chi2.sf(H, len(hand) - 1), rel=1e-10)
    np.testing.assert_allclose(test.groups["s2"], hand["s2"].loc[test.groups.index], rtol=1e-10)
    # by sector: the between-sector part of H
    sector = HSB.groupby("school")["catholic"].first()
    by = fit.level1_variance_test(by="catholic")
    c = sector.loc[hand.index]
    F = hand["f"].groupby(c).sum()
    Lc = (hand["f"] * L).groupby(c).sum() / F
    assert by.statistic == pytest.approx(np.sum(F / 2 * (Lc - pooled) ** 2), rel=1e-10) and by.df == 1
    np.testing.assert_allclose(by.categories["s2"], np.exp(Lc), rtol=1e-10)
    # the same categories from a Series indexed by school
    assert fit.level1_variance_test(by=sector.rename("sector")).statistic == pytest.approx(by.statistic, rel=1e-12)


# the level-1 variance by sector against R (tests/fixtures/hsb_level1_sector.R and its JSON): nlme's REML fit with a
# variance per sector (varIdent), the pooled and geometric sector variances, and the slope chi-squares built on them
SECTOR = json.loads((pathlib.Path(__file__).parent / "fixtures" / "hsb_level1_sector.json").read_text())


def test_level1_variance_by_sector_against_nlme(hsb_fits):
    fit = hsb_fits["random_coef"]
    by = fit.level1_variance_test(by="catholic")
    groups = by.groups                                  # s2 on df of each school's own OLS regression
    pooled = (groups["s2"] * groups["df"]).groupby(groups["catholic"]).sum() / groups["df"].groupby(
        groups["catholic"]).sum()
    np.testing.assert_allclose(pooled.loc[[0, 1]], SECTOR["s2_pooled"], rtol=1e-10)          # public, Catholic
    np.testing.assert_allclose(by.categories["s2_pooled"].loc[[0, 1]], SECTOR["s2_pooled"], rtol=1e-10)
    np.testing.assert_allclose(by.categories["s2"].loc[[0, 1]], SECTOR["s2_geometric"], rtol=1e-10)
    assert fit.homogeneity_test().loc["cses", "chi2"] == pytest.approx(SECTOR["chi2"]["common"], rel=1e-6)
    assert fit.homogeneity_test().loc["cses", "df"] == SECTOR["df"]
    # chapter 15 (ex-ch15-sigma-sector): REML with a variance per sector estimates nearly the pooled sector variances
    # (within 0.5%), and the slope chi-square computed with either lies slightly below the common-sigma^2 one and
    # within 0.1% of each other; the geometric means e^{Lbar_c} lie below them and raise the chi-square, one common
    # geometric mean more
    np.testing.assert_allclose(SECTOR["sigma2_varident"], SECTOR["s2_pooled"], rtol=5e-3)
    chi2 = SECTOR["chi2"]
    assert chi2["varident"] < chi2["common"] and chi2["pooled"] < chi2["common"]
    assert chi2["varident"] == pytest.approx(chi2["pooled"], rel=1e-3)
    assert (np.array(SECTOR["s2_geometric"]) < np.array(SECTOR["sigma2_varident"])).all()
    assert chi2["common"] < chi2["geometric"] < chi2["geometric_all"]


def test_level1_variance_test_min_df_and_its_refusals(hsb_fits):
    fit = hsb_fits["null"]
    strict = fit.level1_variance_test(min_df=40)
    assert strict.left_out == (HSB.groupby("school").size() - 1 < 40).sum()
    assert strict.df == len(strict.groups) - 1 and (strict.groups["df"] >= 40).all()
    with pytest.raises(hlmlib.InputError, match="at least min_df"):
        fit.level1_variance_test(min_df=1000)
    with pytest.raises(hlmlib.InputError, match="varies within group"):
        fit.level1_variance_test(by="ses")
    with pytest.raises(hlmlib.InputError, match="no category"):
        fit.level1_variance_test(by=pd.Series({1224: 0}))
    by = HSB.groupby("school")["catholic"].first()
    with pytest.raises(hlmlib.InputError, match=r"more than one category for group label\(s\) \[1224\]"):
        fit.level1_variance_test(by=pd.concat([by, by.loc[[1224]]]))


def test_diagnostics_do_not_depend_on_the_units_of_the_predictors(hsb_fits):
    # female in units of 1e-6 and meanses in units of 1e6: the level-1/level-2 split and every statistic stay
    base = hsb_fits["fixed_female"]
    data = HSB.assign(female=HSB["female"] * 1e6, meanses=HSB["meanses"] * 1e-6)
    fit = quiet_mixed("mathach ~ cses + female + meanses + (cses | school)", data)
    assert fit._unit_ols.level1_fixed == ["female"] and list(fit._unit_ols.n_level2) == [2, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(fit.reliability(), base.reliability(), rtol=1e-6)
        np.testing.assert_allclose(fit.homogeneity_test()["chi2"], base.homogeneity_test()["chi2"], rtol=1e-6)
    assert fit.level1_variance_test().statistic == pytest.approx(base.level1_variance_test().statistic, rel=1e-8)
    np.testing.assert_allclose(fit.mahalanobis()["distance"], base.mahalanobis()["distance"], rtol=1e-5)
