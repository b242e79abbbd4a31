"""Chapter 15's fits against lme4 (tests/fixtures/hsb_case_study.json, written by hsb_case_study.R).

The chapter sets its null and final models beside lme4 and its OLS fit beside sandwich and clubSandwich in the
text (hlmlib/datasets/r_reference.json). Every other mixed model it or its exercise solutions fit is checked here,
fitted with the chapter's own calls: the means-as-outcomes and random-coefficient models, the random-intercept and
random-slope-only fits behind the R^2 table and the likelihood-ratio tests, the centring fits, the refit without the
most influential school and the exercises' fits; and the likelihood-ratio statistics the chapter reports, computed
the chapter's way.

Tolerances: fixed effects to 1e-5 relative and standard errors to 1e-4, as in test_mixed_reference.py; the criterion
(-2 llf) within 1e-6 of lme4's either way (both programs reach the same optimum); variance components to 5e-5
relative, looser than there because the likelihood is flat in the small slope variances: with criteria equal to 1e-9,
the two optimisers' slope variances differ by up to 2e-5 relative (ex_disclim_ml, ex_minority)."""
import json
import pathlib
import warnings

import numpy as np
import pytest

import hlmlib
from hlmlib.inference import term_index

REF = json.loads((pathlib.Path(__file__).parent / "fixtures" / "hsb_case_study.json").read_text())

FINAL = "mathach ~ catholic + meanses + cses + cses:catholic + cses:meanses"      # the chapter's `formula`
MINORITY = FINAL + " + c_minority + c_female + p_minority"
DISCLIM = FINAL + " + disclim + cses:disclim"
CASES = {   # key of the fixture: (formula, re, reml), as the chapter calls hlmlib.mixed (on the data without the
            # fixture's dropped_school, if it names one)
    "means": ("mathach ~ meanses", "~ 1", True),
    "random_coef": ("mathach ~ cses", "~ cses", True),
    "random_coef_ri": ("mathach ~ cses", "~ 1", True),
    "random_coef_slope_only": ("mathach ~ cses", "~ 0 + cses", True),
    "final": (FINAL, "~ cses", True),
    "final_ri": (FINAL, "~ 1", True),
    "final_slope_only": (FINAL, "~ 0 + cses", True),
    "final_without_most_influential": (FINAL, "~ cses", True),
    "null_ml": ("mathach ~ 1", "~ 1", False),
    "means_ml": ("mathach ~ meanses", "~ 1", False),
    "grand": ("mathach ~ ses_grand", "~ 1", True),
    "grand_school_mean": ("mathach ~ ses_grand + mean_ses", "~ 1", True),
    "group_school_mean": ("mathach ~ cses + mean_ses", "~ 1", True),
    "ex_minority": (MINORITY, "~ cses", True),
    "ex_minority_slope": (MINORITY, "~ cses + c_minority", True),
    "ex_disclim": (DISCLIM, "~ cses", True),
    "ex_disclim_small_ml": (FINAL + " + disclim", "~ cses", False),
    "ex_disclim_ml": (DISCLIM, "~ cses", False),
    "ex_raw_ses": ("mathach ~ ses", "~ 1", True),
    "ex_context": ("mathach ~ ses + meanses", "~ 1", True),
    "ex_catholic_grand": ("mathach ~ catholic + ses_grand", "~ 1", True),
    "ex_catholic_group": ("mathach ~ catholic + cses", "~ 1", True),
    "ex_catholic_group_mean": ("mathach ~ catholic + cses + mean_ses", "~ 1", True),
}


def chapter_data():
    """HSB with the columns the chapter and its exercise solutions derive."""
    hsb = hlmlib.datasets.load_hsb()
    school_mean = lambda column: hsb.groupby("school")[column].transform("mean")
    hsb["ses_grand"] = hsb["ses"] - hsb["ses"].mean()
    hsb["mean_ses"] = school_mean("ses")
    hsb["c_minority"] = hsb["minority"] - school_mean("minority")
    hsb["c_female"] = hsb["female"] - school_mean("female")
    hsb["p_minority"] = school_mean("minority")
    return hsb


HSB = chapter_data()


@pytest.fixture(scope="module")
def fits():
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)        # the random-slope-only fits are boundary fits
        for key, (formula, re, reml) in CASES.items():
            dropped = REF["fits"][key]["dropped_school"]
            data = HSB if dropped is None else HSB[HSB["school"] != dropped]
            out[key] = hlmlib.mixed(formula, data=data, groups="school", re=re, reml=reml)
    return out


def test_every_fixture_entry_is_a_case():
    assert set(REF["fits"]) == set(CASES)
    for key, (_, _, reml) in CASES.items():
        assert REF["fits"][key]["reml"] == reml, key


def test_dropped_school_is_the_most_influential(fits):
    """The chapter refits its final model without the school of largest Cook's distance at the REML variance
    components. Here each deletion is a direct GLS fit on the other 159 schools (the chapter uses the one-step
    formula eq-ch15-deletion), so the fixture's school is checked by a second route."""
    fit = fits["final"]
    X, y, codes, tau = fit._X, fit._y, fit._codes, fit.tau.to_numpy()
    p = X.shape[1]
    xtvx, xtvy = np.zeros((fit.ngroups, p, p)), np.zeros((fit.ngroups, p))
    for j in range(fit.ngroups):
        rows = codes == j
        v = fit._Z[rows] @ tau @ fit._Z[rows].T + fit.sigma2 * np.eye(rows.sum())
        xtvx[j], xtvy[j] = X[rows].T @ np.linalg.solve(v, X[rows]), X[rows].T @ np.linalg.solve(v, y[rows])
    gamma = np.linalg.solve(xtvx.sum(0), xtvy.sum(0))
    assert np.allclose(gamma, fit.params.to_numpy(), rtol=1e-6)
    change = np.array([np.linalg.solve(xtvx.sum(0) - xtvx[j], xtvy.sum(0) - xtvy[j]) - gamma
                       for j in range(fit.ngroups)])
    cooks = np.einsum("ja,ab,jb->j", change, xtvx.sum(0), change) / p
    dropped = [entry["dropped_school"] for entry in REF["fits"].values() if entry["dropped_school"] is not None]
    assert dropped == [fit.group_labels[np.argmax(cooks)]]
    assert fits["final_without_most_influential"].ngroups == fit.ngroups - 1


@pytest.mark.parametrize("key", list(CASES))
def test_fixed_effects_and_standard_errors(fits, key):
    fit, ref = fits[key], REF["fits"][key]
    order = [term_index(t, fit.params.index) for t in ref["terms"]]
    assert sorted(order) == list(range(len(fit.params)))
    np.testing.assert_allclose(fit.params.to_numpy()[order], ref["fixef"], rtol=1e-5)
    np.testing.assert_allclose(fit.se().to_numpy()[order], ref["se"], rtol=1e-4)


@pytest.mark.parametrize("key", list(CASES))
def test_variance_components(fits, key):
    fit, ref = fits[key], REF["fits"][key]
    vc = fit.variance_components
    assert list(vc.index) == ref["vc_order"]
    # a variance to 5e-5 of itself, a covariance to 5e-5 of sqrt(var_a var_b), i.e. its correlation to 5e-5 (the
    # intercept-slope covariances are small, correlations of 0.01 to 0.1); atol for the zero slope variance of
    # final_slope_only (lme4: 1e-12)
    var = dict(zip(vc.index, vc.to_numpy()))
    scale = [np.sqrt(var["var(%s)" % a] * var["var(%s)" % b]) if name.startswith("cov(") else abs(var[name])
             for name in vc.index for a, b in [name[4:-1].split(",") if name.startswith("cov(") else ("", "")]]
    assert np.all(np.abs(vc.to_numpy() - ref["vc"]) <= 5e-5 * np.array(scale) + 1e-8), (vc.to_numpy(), ref["vc"])


@pytest.mark.parametrize("key", list(CASES))
def test_criterion_is_lme4s_or_lower(fits, key):
    fit, lme4 = fits[key], -2 * REF["fits"][key]["loglik"]
    assert fit.reml == CASES[key][2]
    assert fit.deviance == pytest.approx(lme4, abs=1e-6)


def test_boundary_flags_agree_with_lme4(fits):
    """lme4's isSingular and hlmlib's boundary flag, both a diagonal element of the relative Cholesky factor below
    1e-4 (hlmlib's on unit-scaled Z). The slope variance alone is zero once sector and mean SES explain the slopes,
    not in the random-coefficient model. The exercise's three random effects are nearly singular (the cses and
    c_minority effects correlate at -0.999 in both fits) and the likelihood is flat there: lme4 stops with the
    smallest diagonal element at 1.4e-4, hlmlib nearer the boundary at no higher criterion, so only the
    correlation is compared."""
    assert all(fit.converged for fit in fits.values())
    for key, fit in fits.items():
        if key != "ex_minority_slope":
            assert fit.boundary == REF["fits"][key]["singular"], key
    assert fits["final_slope_only"].boundary and not fits["random_coef_slope_only"].boundary
    tau = fits["ex_minority_slope"].tau.loc[["cses", "c_minority"], ["cses", "c_minority"]].to_numpy()
    ref = dict(zip(REF["fits"]["ex_minority_slope"]["vc_order"], REF["fits"]["ex_minority_slope"]["vc"]))
    corr_ref = ref["cov(cses,c_minority)"] / np.sqrt(ref["var(cses)"] * ref["var(c_minority)"])
    assert tau[0, 1] / np.sqrt(tau[0, 0] * tau[1, 1]) == pytest.approx(corr_ref, abs=1e-5) and corr_ref < -0.999


def test_likelihood_ratio_statistics(fits):
    """The chapter's table of LR tests and its exercises' tests: lrtest between mixed fits with the same fixed part,
    and, for the intercept-only models, the ML mixed fit against the OLS log-likelihood (the chapter's
    ml_lrt_random_intercept)."""
    def against_ols(key):
        formula, n = CASES[key][0], len(HSB)
        rss = float(np.sum(hlmlib.ols(formula, data=HSB).resid ** 2))
        return 2 * (fits[key].llf + 0.5 * n * (np.log(2 * np.pi * rss / n) + 1))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours = {"null_intercept": against_ols("null_ml"), "means_intercept": against_ols("means_ml"),
                **{name: hlmlib.lrtest(fits[small], fits[big]).statistic for name, small, big in [
                    ("random_coef_intercept", "random_coef_slope_only", "random_coef"),
                    ("random_coef_cses", "random_coef_ri", "random_coef"),
                    ("final_intercept", "final_slope_only", "final"),
                    ("final_cses", "final_ri", "final"),
                    ("ex_minority_slope", "ex_minority", "ex_minority_slope"),
                    ("ex_disclim", "ex_disclim_small_ml", "ex_disclim_ml")]}}
    assert set(ours) == set(REF["lr"])
    for name, value in ours.items():
        # the statistics are differences of criteria each within 1e-6 of lme4's
        assert value == pytest.approx(REF["lr"][name], abs=2e-6), name


def test_disclim_exercise_ols_cr2_test():
    ref = REF["ex_disclim_ols"]
    row = hlmlib.ols(DISCLIM, data=HSB).summary(kind="CR2", cluster="school").loc[ref["term"]]
    assert row["estimate"] == pytest.approx(ref["estimate"], rel=1e-8)
    assert row["se"] == pytest.approx(ref["se_CR2"], rel=1e-6)
    assert row["df"] == pytest.approx(ref["df_Satt"], rel=1e-6)
    assert row["p"] == pytest.approx(ref["p_Satt"], rel=1e-5)


OLS_CR2 = json.loads((pathlib.Path(__file__).parent / "fixtures" / "hsb_ols_cr2.json").read_text())


def test_final_ols_full_cr2_covariance_against_clubsandwich():
    """The whole CR2 matrix, not only its diagonal: chapter 15's marginal effects of cses by meanses (and their dashed
    intervals in the slopes figure) are linear combinations that use the off-diagonal covariances."""
    ref = OLS_CR2["final_ols"]
    fit = hlmlib.ols(FINAL, data=HSB)
    order = [term_index(t.replace("(Intercept)", "Intercept"), fit.params.index) for t in ref["terms"]]
    np.testing.assert_allclose(fit.params.to_numpy()[order], ref["coef"], rtol=1e-10)
    V = np.asarray(fit.vcov(kind="CR2", cluster="school"))[np.ix_(order, order)]
    np.testing.assert_allclose(V, np.array(ref["vcov_CR2"]), rtol=1e-8, atol=1e-14)
    # the chapter's public-school marginal effect of cses at a meanses value, b_cses + b_cses:meanses z, and its se
    z = 0.5
    me = fit.marginal_effect("cses", by="meanses", at=[z], given={"catholic": 0}, kind="CR2", cluster="school")
    a = np.zeros(len(order))
    a[ref["terms"].index("cses")], a[ref["terms"].index("meanses:cses")] = 1.0, z
    se_r = float(np.sqrt(a @ np.array(ref["vcov_CR2"]) @ a))
    assert float(np.asarray(me["se"])[0]) == pytest.approx(se_r, rel=1e-8)


def test_raw_ses_ols_cr2_se_against_clubsandwich():
    """ex-ch15-raw-ses: the CR2 standard error of ses in mathach ~ ses, behind 'at least ... standard deviations'."""
    ref = OLS_CR2["raw_ses_ols"]
    fit = hlmlib.ols("mathach ~ ses", data=HSB)
    assert fit.params["ses"] == pytest.approx(ref["coef_ses"], rel=1e-10)
    assert fit.se("CR2", cluster="school")["ses"] == pytest.approx(ref["se_CR2_ses"], rel=1e-8)
