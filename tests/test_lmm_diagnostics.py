"""hlmlib.lmm_diagnostics and the MixedResult methods built on it: Raudenbush & Bryk's reliabilities and
homogeneity tests against HLM's published output and against group-by-group least squares written out here,
independently of hlmlib's helpers."""
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hlmlib
from hlmlib import mixed
from hlmlib.datasets import load_hsb

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


def test_too_few_groups_for_the_level2_model_warns_and_gives_no_p():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(4), 6)
    w = rng.normal(size=4)[g]
    w2 = rng.normal(size=4)[g]
    w3 = rng.normal(size=4)[g]
    y = w + rng.normal(size=4)[g] + rng.normal(size=g.size)
    fit = quiet_mixed("y ~ w + w2 + w3 + (1 | g)", pd.DataFrame({"y": y, "w": w, "w2": w2, "w3": w3, "g": g}))
    with pytest.warns(UserWarning, match="no degrees of freedom"):
        table = fit.homogeneity_test()
    assert table.loc["Intercept", "df"] == 0 and np.isnan(table.loc["Intercept", "p"])


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
