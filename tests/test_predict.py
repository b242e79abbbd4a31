"""Predictions against R: OLSResult.predict against predict.lm (fit, confidence and prediction intervals, se.fit)
to 1e-8, MixedResult.predict against lme4's predict (re.form = NULL with new groups, re.form = NA) to 1e-6.
Reference values: tests/fixtures/predict_reference.R (its JSON beside it); the fitting data are the package's."""
import json
import pathlib
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import hlmlib
from hlmlib import InputError

REF = json.loads((pathlib.Path(__file__).parent / "fixtures" / "predict_reference.json").read_text())
NEW_HSB = pd.DataFrame(REF["newdata_hsb"])
NEW_SLEEP = pd.DataFrame(REF["newdata_sleep"])
EVERY = slice(0, None, 97)                       # the rows whose fitted values the fixture keeps


@pytest.fixture(scope="module")
def hsb():
    """HSB with the derived columns the R script makes: sector (text), sizecat (three levels), school as text."""
    df = hlmlib.datasets.load_hsb()
    df["sector"] = np.where(df.catholic == 1, "catholic", "public")
    df["sizecat"] = np.select([df["size"] < 800, df["size"] < 1400], ["small", "medium"], "large")
    df["school"] = df.school.astype(str)
    return df


@pytest.fixture(scope="module")
def sleep():
    return hlmlib.datasets.load_sleepstudy()


def close(actual, expected, rtol):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=0)


# ---------------------------------------------------------------------------------------------------------------
# OLS: R's predict.lm


@pytest.mark.parametrize("model", ["lm_scale", "lm_poly"])
def test_ols_predictions_and_intervals_match_predict_lm(hsb, model):
    ref = REF[model]
    fit = hlmlib.ols(ref["formula"], hsb)           # the same formula text: scale() and poly() are stateful
    close(fit.predict(NEW_HSB), ref["confidence_0.95"]["fit"], 1e-8)
    close(fit.predict()[EVERY], ref["fitted"], 1e-8)
    for level in (0.95, 0.9):
        for interval in ("confidence", "prediction"):
            r = ref[f"{interval}_{level:g}"]
            p = fit.predict(NEW_HSB, interval=interval, alpha=1 - level)
            assert list(p.columns) == ["fit", "se_fit", "df", "lwr", "upr"]
            assert p.index.equals(NEW_HSB.index) and (p["df"] == fit.df_resid).all()
            for column in ("fit", "lwr", "upr"):
                close(p[column], r[column], 1e-8)
            close(p["se_fit"], r["se_fit"], 1e-8)
            assert p.attrs["caption"].startswith("OLS") and "interval" in p.attrs["caption"]


def test_array_fit_predicts_from_a_matrix_as_the_formula_fit(hsb):
    ref = REF["lm_scale"]
    formula_fit = hlmlib.ols(ref["formula"], hsb)
    X = pd.DataFrame(formula_fit.design.X, columns=formula_fit.names)
    X_new = pd.DataFrame(hlmlib.design.new_model_matrix(formula_fit.design.spec, NEW_HSB, formula_fit.names)[0],
                         columns=formula_fit.names)
    array_fit = hlmlib.ols(hsb.mathach, X)
    r = ref["prediction_0.95"]
    close(array_fit.predict(X_new.to_numpy(), interval="prediction")["upr"], r["upr"], 1e-8)
    by_name = array_fit.predict(X_new[X_new.columns[::-1]], interval="prediction")     # matched by column name
    close(by_name["lwr"], r["lwr"], 1e-8)


def test_robust_confidence_interval_uses_the_covariance_and_its_df(hsb):
    fit = hlmlib.ols("mathach ~ ses * sector + sizecat", hsb)
    X_new = hlmlib.design.new_model_matrix(fit.design.spec, NEW_HSB, fit.names)[0]
    for kind, cluster in (("HC1", None), (None, "school"), ("CR2", "school")):
        p = fit.predict(NEW_HSB, interval="confidence", alpha=0.1, kind=kind, cluster=cluster)
        contrast = fit.contrast(X_new, kind=kind, cluster=cluster, alpha=0.1)   # x0'b as a linear contrast
        close(p["fit"], contrast["estimate"], 1e-12)
        close(p["se_fit"], contrast["se"], 1e-12)
        close(p["df"], contrast["df"], 1e-12)
        close(p["lwr"], contrast["ci_low"], 1e-12)
        close(p["upr"], contrast["ci_high"], 1e-12)
    assert (fit.predict(NEW_HSB, interval="confidence", cluster="school")["df"] == 159).all()   # CR1: G - 1
    # statsmodels' cluster-robust get_prediction (CR1, normal reference) gives the same standard errors
    peer = smf.ols("mathach ~ ses * sector + sizecat", hsb).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(hsb.school)[0]})
    close(fit.predict(NEW_HSB, interval="confidence", cluster="school")["se_fit"],
          peer.get_prediction(NEW_HSB).se_mean, 1e-8)


def test_unseen_level_missing_value_and_stateful_transform(hsb):
    fit = hlmlib.ols("mathach ~ center(ses) + C(sizecat) + sector", hsb)
    with pytest.raises(InputError, match=r"'sizecat' has level\(s\) 'huge'"):
        fit.predict(NEW_HSB.assign(sizecat=["huge"] + list(NEW_HSB.sizecat[1:])))
    with pytest.raises(InputError, match=r"'sector' has level\(s\)"):
        fit.predict(NEW_HSB.assign(sector="Catholic"))
    new = NEW_HSB.copy()
    new.loc[3, "ses"] = np.nan
    new.loc[5, "sector"] = None
    with pytest.warns(UserWarning, match="2 of 30 rows of newdata have missing values") as caught:
        p = fit.predict(new, interval="prediction")
    assert caught[0].filename == __file__                       # the warning points at the caller's line
    assert p.iloc[[3, 5]].isna().all().all() and p.drop(index=[3, 5]).notna().all().all()
    close(p.drop(index=[3, 5])["fit"], fit.predict(NEW_HSB.drop(index=[3, 5])), 1e-15)
    # center() keeps the fit's mean: one new row predicts as in the whole data set
    b = fit.params
    row = NEW_HSB.iloc[[0]]
    expected = (b["Intercept"] + b["center(ses)"] * (row.ses.iloc[0] - hsb.ses.mean())
                + b.get(f"C(sizecat)[T.{row.sizecat.iloc[0]}]", 0.0) + b.get(f"sector[T.{row.sector.iloc[0]}]", 0.0))
    close(fit.predict(row), [expected], 1e-12)


def test_predict_of_derived_estimators_is_refused(hsb):
    within = hlmlib.within("mathach ~ ses", hsb, groups="school")
    with pytest.raises(InputError, match="predict"):
        within.predict(NEW_HSB)


# ---------------------------------------------------------------------------------------------------------------
# mixed models: lme4's predict


@pytest.mark.parametrize("model", ["lmer_slope", "lmer_intercept_ml", "lmer_sleep"])
def test_mixed_predictions_match_lme4(hsb, sleep, model):
    ref = REF[model]
    data, new = (hsb, NEW_HSB) if ref["data"] == "hsb" else (sleep, NEW_SLEEP)
    fit = hlmlib.mixed(ref["formula"], data, reml=ref["reml"])
    # the same optimum: the criterion to 1e-9, the fixed effects to 1e-5 of their standard errors (the likelihood
    # is that flat there: both optimisers stop within it)
    close(fit.deviance, ref["deviance"], 1e-9)
    assert np.all(np.abs(fit.params - ref["beta"]) <= 1e-5 * fit.se())
    close(fit.predict(new), ref["with_random_effects"], 1e-6)
    close(fit.predict(new, random_effects=False), ref["population"], 1e-6)
    close(fit.predict()[EVERY], ref["fitted"], 1e-6)
    close(fit.predict(random_effects=False)[EVERY], ref["fitted_population"], 1e-6)


def test_new_groups_get_the_population_prediction(hsb):
    fit = hlmlib.mixed("mathach ~ ses * sector + sizecat + (1 + cses | school)", hsb)
    with_re, population = fit.predict(NEW_HSB), fit.predict(NEW_HSB, random_effects=False)
    new_group = ~NEW_HSB.school.isin(fit.group_labels)
    assert new_group.sum() == 10
    np.testing.assert_array_equal(with_re[new_group], population[new_group])
    assert (with_re[~new_group] != population[~new_group]).all()
    # a missing group label is a new group too (lme4's allow.new.levels)
    missing = NEW_HSB.assign(school=[None] + list(NEW_HSB.school[1:]))
    assert fit.predict(missing).iloc[0] == population.iloc[0]
    # the BLUP part is z0'b_j
    j = fit.group_labels.get_loc(NEW_HSB.school[0])
    b = fit.ranef.iloc[j]
    assert with_re[0] - population[0] == pytest.approx(b["Intercept"] + b["cses"] * NEW_HSB.cses[0], rel=1e-12)


def test_array_mixed_fit_predicts_with_groups_and_Z(sleep):
    formula_fit = hlmlib.mixed("Reaction ~ Days + (Days | Subject)", sleep)
    X = np.column_stack([np.ones(len(sleep)), sleep.Days])
    array_fit = hlmlib.mixed(sleep.Reaction.to_numpy(), X, sleep.Subject.to_numpy(), Z=X)
    X0 = np.column_stack([np.ones(len(NEW_SLEEP)), NEW_SLEEP.Days])
    close(array_fit.predict(X0, groups=NEW_SLEEP.Subject, Z=X0), REF["lmer_sleep"]["with_random_effects"], 1e-6)
    close(array_fit.predict(X0, random_effects=False), formula_fit.predict(NEW_SLEEP, random_effects=False), 1e-10)
    intercept_only = hlmlib.mixed(sleep.Reaction.to_numpy(), X, sleep.Subject.to_numpy())   # Z: ones, implied
    formula_intercept = hlmlib.mixed("Reaction ~ Days + (1 | Subject)", sleep)
    close(intercept_only.predict(X0, groups=NEW_SLEEP.Subject.to_numpy()), formula_intercept.predict(NEW_SLEEP), 1e-10)


# ---------------------------------------------------------------------------------------------------------------
# lme4's formula notation


@pytest.mark.parametrize("lme4, groups, re", [
    ("Reaction ~ Days + (1 + Days | Subject)", "Subject", "~ 1 + Days"),
    ("Reaction ~ Days + (Days | Subject)", "Subject", "~ Days"),
    ("Reaction ~ Days + (0 + Days | Subject)", "Subject", "~ 0 + Days"),
    ("Reaction ~ Days + (-1 + Days | Subject)", "Subject", "~ 0 + Days"),
    ("Reaction ~ Days + (1 | Subject)", "Subject", None),
    ("Reaction ~ (1 | Subject) + Days", "Subject", "~ 1"),
])
def test_lme4_notation_gives_the_identical_fit(sleep, lme4, groups, re):
    a = hlmlib.mixed(lme4, sleep)
    b = hlmlib.mixed("Reaction ~ Days", data=sleep, groups=groups, re=re)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.tau, b.tau)
    assert a.llf == b.llf and a.sigma2 == b.sigma2 and list(a.tau.index) == list(b.tau.index)
    assert a.formula.endswith("| Subject)") and b.formula.endswith("| Subject)")      # lme4 notation in the summary


def test_lme4_notation_with_categorical_terms_and_listwise_deletion(hsb):
    data = hsb.assign(cses=hsb.cses.where(np.arange(len(hsb)) % 50 != 0))        # missing only in the slope's variable
    with pytest.warns(UserWarning, match="rows dropped listwise") as caught:
        a = hlmlib.mixed("mathach ~ ses * sector + C(sizecat) + (1 + cses | school)", data)
    assert caught[0].filename == __file__
    with pytest.warns(UserWarning, match="rows dropped listwise"):
        b = hlmlib.mixed("mathach ~ ses * sector + C(sizecat)", data=data, groups="school", re="~ 1 + cses")
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.tau, b.tau)
    assert a.llf == b.llf and a.nobs == b.nobs == len(hsb) - int(np.ceil(len(hsb) / 50))


def test_unsupported_lme4_terms_say_what_and_where_to_go(sleep):
    cases = {
        "Reaction ~ Days + (Days || Subject)": "uncorrelated random effects",
        "Reaction ~ Days + (1 | Subject) + (1 | Days)": "crossed or nested",
        "Reaction ~ Days + (1 | Subject/Days)": "nested grouping",
        "Reaction ~ Days + (1 | Subject:Days)": "nested grouping",
        "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)": "independent blocks",
        "Reaction ~ Days + (1 | as.factor(Subject))": "grouping expression",
        "Reaction ~ Days | Subject": "outside a random-effects term",
    }
    for formula, what in cases.items():
        with pytest.raises(InputError, match=what) as caught:
            hlmlib.mixed(formula, sleep)
        if "Subject/" not in formula and "outside" not in what:
            assert "lme4" in str(caught.value)
    for estimator in (hlmlib.ols, hlmlib.fwls):
        with pytest.raises(InputError, match="within.*mixed"):
            estimator("Reaction ~ Days | Subject", sleep)
