"""Satterthwaite and Kenward-Roger inference and cluster-robust covariances of mixed models, against their peers.

1. R (tests/fixtures/mixed_inference_reference.json, written by the R script beside it: lmerTest 3.1-3,
   pbkrtest 0.5.2, clubSandwich 0.5.8 on lme4 1.1-31 fits with a tightened optimiser) on HSB with a random
   intercept and with (1 + cses | school), sleepstudy, two unbalanced simulated data sets with random slopes
   (J = 10; J = 30 with singletons and three random effects) and a boundary fit; REML and ML.
   Tolerances (issue 12): df and F 1e-4 relative, standard errors 1e-6, p-values 1e-5 (relative, or 1e-10
   absolute for p-values below that, such as HSB's 1e-112, whose relative error is the t statistic's times
   t^2).
2. Brute-force versions of the peers' algorithms on small data R never saw (tests/_dense_reference.py: N x N
   covariance matrices, numerical derivatives of the deviance, pbkrtest's and clubSandwich's code line by line)
   against the per-group formulas of hlmlib.lmm_inference, to rounding.
3. Properties that must hold whatever the data (exact df in a balanced design, invariance to how L is written,
   one-restriction tests equal to t tests), and argument validation.
"""
import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import _dense_reference as dense
from hlmlib import BoundaryFitWarning, InputError, mixed
from hlmlib.datasets import load_hsb, load_sleepstudy
from hlmlib.inference import term_index

REF = json.loads((Path(__file__).parent / "fixtures" / "mixed_inference_reference.json").read_text())
MIXED = REF["mixed"]
DF_RTOL, F_RTOL, SE_RTOL, P_RTOL, P_ATOL = 1e-4, 1e-4, 1e-6, 1e-5, 1e-10
CR_KINDS = ["CR0", "CR1", "CR2", "CR3"]


def frame(name: str) -> pd.DataFrame:
    if name == "hsb":
        return load_hsb()
    if name == "sleepstudy":
        return load_sleepstudy()
    return pd.DataFrame(REF["data"][name])


def split_formula(formula: str):
    """'y ~ x + (1 + x | g)' -> ('y ~ x', '~ 1 + x', 'g')."""
    fixed, random = formula.split("+ (")
    terms, group = random.rstrip(")").split("|")
    return fixed.strip(), "~ " + terms.strip(), group.strip()


@pytest.fixture(scope="module")
def fits():
    out = {}
    for key, case in MIXED.items():
        fixed, re, group = split_formula(case["formula"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # the boundary case warns, as it should
            fit = mixed(fixed, data=frame(case["data"]), groups=group, re=re, reml=case["reml"])
        order = [term_index("Intercept" if t == "(Intercept)" else t, fit.params.index) for t in case["terms"]]
        out[key] = (fit, order)
    return out


def in_r_order(table, order):
    return table.iloc[order]


def check(actual, expected, rtol, what, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=rtol, atol=atol,
                               err_msg=what)


def check_table(table, ref, order, se_key="se"):
    table = in_r_order(table, order)
    check(table["se"], ref[se_key], SE_RTOL, "se")
    check(table["df"], ref["df"], DF_RTOL, "df")
    check(table["p"], ref["p"], P_RTOL, "p", atol=P_ATOL)


def restriction(case, order, test):
    """R's L (columns in R's term order) in hlmlib's column order."""
    return np.asarray(test["L"], float) @ np.eye(len(order))[order]


REML_KEYS = [k for k, c in MIXED.items() if c["reml"]]
CR_CASES = [(k, kind) for k, c in MIXED.items() for kind in CR_KINDS if kind in c]
TEST_CASES = [(k, i) for k, c in MIXED.items() for i in range(len(c["tests"]))]


# ------------------------------------------------------------------------------------------------------------
# 1. against R
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", list(MIXED))
def test_fits_are_those_r_used(fits, key):
    fit, order = fits[key]
    check(fit.params.to_numpy()[order], MIXED[key]["beta"], 1e-6, "beta")
    check(fit.se().to_numpy()[order], np.sqrt(np.diag(MIXED[key]["vcov"])), SE_RTOL, "model-based se")


@pytest.mark.parametrize("key", list(MIXED))
def test_satterthwaite_table_and_contrast_match_lmertest(fits, key):
    fit, order = fits[key]
    ref = MIXED[key]["satterthwaite"]
    check_table(fit.coef_table(df="satterthwaite"), ref, order)
    check(in_r_order(fit.coef_table(df="satterthwaite"), order)["t"], ref["t"], SE_RTOL, "t")
    c = np.asarray(MIXED[key]["contrast"]) @ np.eye(len(order))[order]
    row = fit.contrast(c, df="satterthwaite").iloc[0]
    check(row["se"], ref["contrast"]["se"], SE_RTOL, "contrast se")
    check(row["df"], ref["contrast"]["df"], DF_RTOL, "contrast df")


@pytest.mark.parametrize("key", REML_KEYS)
def test_kenward_roger_covariance_table_and_contrast_match_pbkrtest(fits, key):
    fit, order = fits[key]
    ref = MIXED[key]["kenward_roger"]
    V = fit.vcov(kind="kenward-roger").to_numpy()[np.ix_(order, order)]
    scale = np.sqrt(np.outer(np.diag(V), np.diag(V)))
    np.testing.assert_allclose(V / scale, np.asarray(ref["vcov"]) / scale, atol=SE_RTOL)
    check_table(fit.coef_table(df="kenward-roger"), ref, order)
    check_table(fit.coef_table(kind="kenward-roger"), ref, order)          # the kind's own df: Kenward-Roger
    c = np.asarray(MIXED[key]["contrast"]) @ np.eye(len(order))[order]
    row = fit.contrast(c, df="kenward-roger").iloc[0]
    check(row["se"], ref["contrast"]["se"], SE_RTOL, "contrast se")
    check(row["df"], ref["contrast"]["df"], DF_RTOL, "contrast df")


@pytest.mark.parametrize("key,kind", CR_CASES)
def test_cluster_robust_matches_clubsandwich(fits, key, kind):
    fit, order = fits[key]
    ref = MIXED[key][kind]
    V = fit.vcov(kind=kind).to_numpy()[np.ix_(order, order)]
    scale = np.sqrt(np.outer(np.diag(V), np.diag(V)))
    np.testing.assert_allclose(V / scale, np.asarray(ref["vcov"]) / scale, atol=SE_RTOL)
    check_table(fit.coef_table(kind=kind), ref, order)                     # default df: clubSandwich's Satterthwaite
    check_table(fit.coef_table(kind=kind, df="satterthwaite"), ref, order)
    c = np.asarray(MIXED[key]["contrast"]) @ np.eye(len(order))[order]
    row = fit.contrast(c, kind=kind).iloc[0]
    check(row["se"], ref["contrast"]["se"], SE_RTOL, "contrast se")
    check(row["df"], ref["contrast"]["df"], DF_RTOL, "contrast df")


@pytest.mark.parametrize("key,i", TEST_CASES)
def test_joint_tests_match_lmertest_pbkrtest_clubsandwich(fits, key, i):
    fit, order = fits[key]
    test = MIXED[key]["tests"][i]
    L = restriction(MIXED[key], order, test)

    def same(result, ref, what):
        check(result.F, ref["F"], F_RTOL, f"{what} F")
        check(result.df_denom, ref["df_denom"], DF_RTOL, f"{what} df")
        check(result.p, ref["p"], P_RTOL, f"{what} p", atol=P_ATOL)
        assert result.df_num == L.shape[0]

    same(fit.wald_test(L, df="satterthwaite"), test["satterthwaite"], "Satterthwaite")
    if "kenward_roger" in test:
        kr = fit.wald_test(L, df="kenward-roger")
        same(kr, test["kenward_roger"], "Kenward-Roger")
        same(fit.wald_test(L, kind="kenward-roger"), test["kenward_roger_lmerTest"], "Kenward-Roger (lmerTest)")
        check(kr.F / (kr.statistic / L.shape[0]), test["kenward_roger"]["scaling"], F_RTOL, "F scaling")
    for kind in CR_KINDS:
        if f"HTZ_{kind}" in test:
            ref = test[f"HTZ_{kind}"]
            htz = fit.wald_test(L, kind=kind)
            same(htz, ref, f"HTZ {kind}")
            check(htz.statistic, ref["Q"], F_RTOL, f"Wald statistic {kind}")


def test_boundary_fit_satterthwaite_df_is_that_of_sigma_alone(fits):
    """At tau = 0 the covariance of beta does not move with theta, so the df come from sigma alone: N - p (REML),
    as lmerTest's numerical derivatives give (the fixture has 60.99999999792)."""
    fit, order = fits["sim_boundary_reml"]
    assert fit.boundary
    df = fit.coef_table(df="satterthwaite")["df"].to_numpy()
    np.testing.assert_allclose(df, fit.nobs - len(fit.params), rtol=1e-10)


def test_satterthwaite_warns_when_the_hessian_is_not_positive_definite():
    """As lmerTest ("Model failed to converge with 1 negative eigenvalue"): at a theta that is not a maximum the
    deviance is concave in some direction; the df use the pseudo-inverse over the positive eigenvalues."""
    fit = mixed("Reaction ~ Days", data=load_sleepstudy(), groups="Subject")
    off = dataclasses.replace(fit, theta=np.array([5.0]))
    with pytest.warns(RuntimeWarning, match="negative eigenvalue"):
        df = off.coef_table(df="satterthwaite")["df"]
    assert np.isfinite(df).all() and (df > 0).all()


# ------------------------------------------------------------------------------------------------------------
# 1b. against R in other units: the df, t and F of lmerTest, pbkrtest and clubSandwich do not depend on the units
#     of y or of a regressor (the same model rescaled), so the fits of rescaled data must give R's unscaled values
# ------------------------------------------------------------------------------------------------------------

UNITS = [("y", 1e-8), ("y", 1e-4), ("y", 1e8), ("x", 1e-8), ("x", 1e8), ("x1", 1e-8), ("x1", 1e8), ("w", 1e-7)]
UNIT_CASES = [(key, column, factor) for key in ["sim_small_reml", "sim_small_ml", "sim_q3_reml", "sim_q3_ml"]
              for column, factor in UNITS if column in frame(MIXED[key]["data"]).columns]


@pytest.mark.parametrize("key,column,factor", UNIT_CASES)
def test_df_and_joint_tests_do_not_depend_on_units(key, column, factor):
    """Issue: lmerTest's absolute 1e-8 cut on the eigenvalues of H in (theta, sigma) dropped sigma's direction
    for y in large units (df 2004 for 171) and kept rounding noise for y or x in small units (13% off, no
    warning); pbkrtest's absolute 1e-10 cut on its information matrix did the same for x in small units;
    and a joint test of coefficients whose variances differ by 1e12 was refused as singular. hlmlib's df and
    tests must be R's unscaled values whatever the units, without a warning."""
    case = MIXED[key]
    data = frame(case["data"])
    data[column] = data[column] * factor
    fixed, re, group = split_formula(case["formula"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")                          # no Hessian or optimiser warning either
        fit = mixed(fixed, data=data, groups=group, re=re, reml=case["reml"])
        order = [term_index("Intercept" if t == "(Intercept)" else t, fit.params.index) for t in case["terms"]]
        # a coefficient of a term made of the rescaled regressor is in other units: beta = diag(units) beta_scaled
        units = np.array([factor if column in t.split(":") else 1.0 for t in case["terms"]])
        rules = [("satterthwaite", "satterthwaite")] + ([("kenward-roger", "kenward_roger")] if case["reml"] else [])
        for df, name in rules:
            table = in_r_order(fit.coef_table(df=df), order)
            check(table["df"], case[name]["df"], DF_RTOL, f"{df} df")
            # the rescaled problem is optimised anew: beta-hat agrees to the optimiser's tolerance, ~1e-6
            check(table["t"], case[name]["t"], 1e-5, f"{df} t")
        for test in case["tests"]:
            L = restriction(case, order, test)
            same_hypothesis = L * units[np.argsort(order)]                 # the same L beta, in the new units
            # rows rescaled by 1e6 and 1e-6 too: the hypothesis is unchanged, its covariance far from unit scale
            rows = np.diag(10.0 ** (6 * (-1) ** np.arange(L.shape[0])))
            satt = fit.wald_test(same_hypothesis, df="satterthwaite")
            check([satt.F, satt.df_denom], [test["satterthwaite"]["F"], test["satterthwaite"]["df_denom"]], F_RTOL,
                  "Satterthwaite F")
            # lmerTest's df of a joint test depend on how the rows are scaled; its statistic does not
            check(fit.wald_test(rows @ same_hypothesis, df="satterthwaite").F, test["satterthwaite"]["F"], F_RTOL,
                  "Satterthwaite F, rows rescaled")
            checks = [("kenward-roger", "model", "kenward_roger")] if case["reml"] else []
            checks += [(None, kind, f"HTZ_{kind}") for kind in CR_KINDS if f"HTZ_{kind}" in test]
            for df, kind, name in checks:
                for R in (same_hypothesis, rows @ same_hypothesis):
                    result = fit.wald_test(R, df=df, kind=kind)
                    check([result.F, result.df_denom], [test[name]["F"], test[name]["df_denom"]], F_RTOL, name)


# ------------------------------------------------------------------------------------------------------------
# 2. against brute-force versions of the peers' algorithms, on data R never saw
# ------------------------------------------------------------------------------------------------------------

def small_data(case: str, seed: int = 5):
    """Unbalanced, with a singleton group, a group-level covariate and its cross-level interaction."""
    rng = np.random.default_rng(seed)
    sizes = np.array([1, 2, 3, 5, 8, 4, 6, 3])
    J = sizes.size
    g = np.repeat(np.arange(J), sizes)
    N = g.size
    w = rng.normal(size=J)[g]
    x = rng.normal(size=N) + 0.3 * w
    x2 = rng.uniform(-1, 1, size=N)
    u = rng.normal(size=(J, 3)) * [1.0, 0.6, 0.5]
    y = 1 + 0.5 * x - 0.4 * w + 0.3 * x * w + u[g, 0] + u[g, 1] * x + u[g, 2] * x2 + rng.normal(size=N) * 0.7
    data = pd.DataFrame({"y": y, "x": x, "x2": x2, "w": w, "g": g})
    spec = {"slope": ("y ~ x * w", "~ x"),                    # Z's columns are X's
            "other_slope": ("y ~ x + w", "~ x2"),             # a random slope on a variable not in X
            "three": ("y ~ x * w + x2", "~ x + x2"),          # q = 3
            "intercept": ("y ~ x * w", "~ 1")}[case]
    return data, spec


def dense_pieces(fit):
    return fit._y, fit._X, fit._Z, fit._codes


def fit_quietly(formula, data, re, reml=True):
    """Some of the small fits are on the boundary (a zero slope variance): they are tested as they are."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        return mixed(formula, data=data, groups="g", re=re, reml=reml)


DENSE_CASES = ["slope", "other_slope", "three", "intercept"]


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("case", DENSE_CASES)
def test_satterthwaite_matches_numerical_derivatives_of_dense_deviance(case, reml):
    data, (formula, re) = small_data(case)
    fit = fit_quietly(formula, data, re, reml)
    y, X, Z, codes = dense_pieces(fit)
    L = np.vstack([np.eye(len(fit.params)), np.arange(1, len(fit.params) + 1)])
    df, Phi, Jac, A = dense.satterthwaite_df(L, fit.theta, np.sqrt(fit.sigma2), y, X, Z, codes, reml)
    stt = fit._inference.satterthwaite
    # hlmlib's coordinates: theta for Z's columns at unit root mean square and sigma / sigma-hat, i.e.
    # d(lmerTest's psi)/d(hlmlib's psi) = diag(1 / z_scale of theta's row, sigma-hat)
    rows = np.triu_indices(Z.shape[1])[1]                     # the row of each theta (lower triangle, by column)
    unit = np.r_[1 / fit._cp.z_scale[rows], np.sqrt(fit.sigma2)]
    Jac, A = Jac * unit[:, None, None], A / np.outer(unit, unit)
    np.testing.assert_allclose(stt.vcov, Phi, rtol=1e-10)
    np.testing.assert_allclose(stt.jacobian, Jac, rtol=1e-6, atol=1e-8 * np.abs(Jac).max())
    np.testing.assert_allclose(stt.vcov_varpar, A, rtol=1e-6, atol=1e-8 * np.abs(A).max())
    np.testing.assert_allclose(fit.contrast(L, df="satterthwaite")["df"], df, rtol=1e-6)


@pytest.mark.parametrize("case", DENSE_CASES)
def test_kenward_roger_matches_pbkrtest_algorithm(case):
    data, (formula, re) = small_data(case)
    fit = fit_quietly(formula, data, re)
    y, X, Z, codes = dense_pieces(fit)
    PhiA, Phi, P, W = dense.kenward_roger(X, Z, codes, fit.tau.to_numpy(), fit.sigma2)
    np.testing.assert_allclose(fit.vcov(kind="kenward-roger").to_numpy(), PhiA, rtol=1e-9,
                               atol=1e-12 * np.abs(PhiA).max())
    beta = fit.params.to_numpy()
    k = len(beta)
    table = fit.coef_table(df="kenward-roger")
    for i in range(k):
        ddf = dense.kr_test(np.eye(k)[i], beta, PhiA, Phi, P, W)[1]
        np.testing.assert_allclose(table["df"].iloc[i], ddf, rtol=1e-9)
    L = np.eye(k)[1:]
    F, ddf, scaling = dense.kr_test(L, beta, PhiA, Phi, P, W)
    kr = fit.wald_test(L, df="kenward-roger")
    assert kr.F == pytest.approx(F, rel=1e-9) and kr.df_denom == pytest.approx(ddf, rel=1e-9)
    assert kr.p == pytest.approx(stats.f.sf(F, k - 1, ddf), rel=1e-8)


@pytest.mark.parametrize("kind", CR_KINDS)
@pytest.mark.parametrize("case", DENSE_CASES)
def test_cluster_robust_matches_clubsandwich_algorithm(case, kind):
    data, (formula, re) = small_data(case)
    fit = fit_quietly(formula, data, re)
    y, X, Z, codes = dense_pieces(fit)
    beta = fit.params.to_numpy()
    Lam = dense.lower_from_theta(fit.theta, Z.shape[1])
    Theta = [np.eye(int(np.sum(codes == j))) + Z[codes == j] @ Lam @ Lam.T @ Z[codes == j].T
             for j in range(codes.max() + 1)]
    V, M, E = dense.club_sandwich(X, y - X @ beta, codes, Theta, kind)
    np.testing.assert_allclose(fit.vcov(kind=kind).to_numpy(), V, rtol=1e-8, atol=1e-11 * np.abs(V).max())
    k = len(beta)
    C = np.vstack([np.eye(k), np.linspace(-1, 1, k)])
    P = dense.club_p_array(C, X, codes, Theta, M, E)
    np.testing.assert_allclose(fit.contrast(C, kind=kind)["df"], dense.club_satterthwaite_df(P), rtol=1e-8)
    R = np.eye(k)[[1, k - 1]]
    PR = dense.club_p_array(R, X, codes, Theta, M, E)
    F, df, _ = dense.club_htz(PR, dense.wald(R, beta, V))
    htz = fit.wald_test(R, kind=kind)
    assert htz.F == pytest.approx(F, rel=1e-8) and htz.df_denom == pytest.approx(df, rel=1e-8)


def test_cluster_robust_refuses_a_group_that_determines_a_coefficient():
    """CR2 and CR3 divide by I - H_jj; a dummy non-zero in one group only makes it singular (as OLS's CR2)."""
    data, (formula, re) = small_data("slope")
    data["only_in_4"] = (data["g"] == 4).astype(float) * np.linspace(1, 2, len(data))
    fit = mixed(formula + " + only_in_4", data=data, groups="g", re=re)
    for kind in ("CR2", "CR3"):
        with pytest.raises(InputError, match="group.*4"):
            fit.vcov(kind=kind)
    assert np.isfinite(fit.vcov(kind="CR1").to_numpy()).all()


# ------------------------------------------------------------------------------------------------------------
# 3. properties
# ------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def balanced():
    """Balanced random intercept, a group-level w and a group-mean-centred x: F tests are exact here, with
    J - 2 df for w and N - J - 1 for x, and Kenward-Roger and Satterthwaite reproduce them."""
    rng = np.random.default_rng(11)
    J, n = 9, 5
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    x -= pd.Series(x).groupby(g).transform("mean").to_numpy()
    w = rng.normal(size=J)[g]
    y = 1 + 0.5 * w + 0.3 * x + rng.normal(size=J)[g] + rng.normal(size=J * n)
    fit = mixed("y ~ w + x", data=pd.DataFrame({"y": y, "w": w, "x": x, "g": g}), groups="g")
    return fit, J, J * n


def test_balanced_design_gives_the_exact_df(balanced):
    fit, J, N = balanced
    exact = [J - 2, J - 2, N - J - 1]
    np.testing.assert_allclose(fit.coef_table(df="kenward-roger")["df"], exact, rtol=1e-8)
    np.testing.assert_allclose(fit.coef_table(df="satterthwaite")["df"], exact, rtol=1e-5)   # at hlmlib's optimum
    np.testing.assert_allclose(fit.se(kind="kenward-roger"), fit.se(), rtol=1e-8)        # no adjustment needed


def test_one_restriction_tests_are_the_t_tests(fits):
    fit, _ = fits["sim_small_reml"]
    for kind, df in [("model", "satterthwaite"), ("CR2", None), ("CR0", None)]:
        table = fit.coef_table(kind=kind, df=df)
        for term in fit.params.index:
            w = fit.wald_test([term], kind=kind, df=df)
            assert w.F == pytest.approx(table.loc[term, "t"] ** 2, rel=1e-10)
            assert w.df_denom == pytest.approx(table.loc[term, "df"], rel=1e-10)
            assert w.p == pytest.approx(table.loc[term, "p"], rel=1e-8)


@pytest.mark.parametrize("kind,df", [("model", "kenward-roger"), ("CR2", None), ("CR1", None), ("model", None),
                                     ("CR3", 9)])
def test_joint_tests_do_not_depend_on_how_the_restrictions_are_written(fits, kind, df):
    fit, _ = fits["sim_q3_reml"]
    L = np.eye(len(fit.params))[[1, 2, 4]]
    K = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0], [0.0, 1.0, 1.0]])
    a = fit.wald_test(L, kind=kind, df=df)
    for rewritten in (K @ L, np.diag([1e-8, 1.0, 1e8]) @ K @ L):        # rows 1e16 apart in scale too
        b = fit.wald_test(rewritten, kind=kind, df=df)
        assert (a.F, a.df_denom, a.p) == pytest.approx((b.F, b.df_denom, b.p), rel=1e-9)


def test_satterthwaite_f_keeps_its_statistic_but_not_its_df_under_rewritten_restrictions(fits):
    """lmerTest's denominator df come from the eigen-contrasts of L Phi L', which change when the rows of L are
    rescaled or mixed: W is invariant, the df are not (a property of lmerTest's method, reproduced here)."""
    fit, _ = fits["sim_q3_reml"]
    L = np.eye(len(fit.params))[[1, 2, 4]]
    K = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0], [0.0, 1.0, 1.0]])
    a, b = fit.wald_test(L, df="satterthwaite"), fit.wald_test(K @ L, df="satterthwaite")
    assert a.F == pytest.approx(b.F, rel=1e-10) and a.df_denom != pytest.approx(b.df_denom, rel=1e-3)


def test_satterthwaite_f_df_are_accurate_when_the_restrictions_differ_in_scale(fits):
    """lmerTest's df of a joint test come from the eigenvectors of L Phi L'. With rows 1e8 apart in scale (a
    coefficient on income in dollars beside one in thousands), LAPACK's eigen-decomposition of L Phi L' loses the
    small eigenvectors below the large ones' rounding (6e-4 off here); hlmlib takes them from the graded factor
    of L Phi L', and must agree with the eigenvectors computed to 50 digits (mpmath)."""
    import mpmath
    from hlmlib.lmm_inference import _fstat_ddf

    fit, _ = fits["sim_q3_reml"]
    stt = fit._inference.satterthwaite
    L = np.diag([1.0, 1e8, 1e-8]) @ np.eye(len(fit.params))[[1, 2, 4]]
    with mpmath.workdps(50):
        _, Q = mpmath.eigsy(mpmath.matrix((L @ stt.vcov @ L.T).tolist()))
        PtL = np.array((Q.T * mpmath.matrix(L.tolist())).tolist(), dtype=float)
    assert fit.wald_test(L, df="satterthwaite").df_denom == pytest.approx(_fstat_ddf(stt(PtL)), rel=1e-9)


def test_cr1_is_cr0_times_j_over_j_minus_1(fits):
    fit, _ = fits["hsb_rs_reml"]
    J = fit.ngroups
    np.testing.assert_allclose(fit.vcov(kind="CR1"), fit.vcov(kind="CR0") * J / (J - 1), rtol=1e-12)
    np.testing.assert_allclose(fit.coef_table(kind="CR1")["df"], fit.coef_table(kind="CR0")["df"], rtol=1e-10)


def test_defaults_numbers_and_captions(fits):
    fit, _ = fits["sleepstudy_reml"]
    z = fit.coef_table()
    assert np.isinf(z["df"]).all() and "normal (z)" in z.attrs["caption"]
    assert z["p"].to_numpy() == pytest.approx(2 * stats.norm.sf(np.abs(z["t"])))
    t5 = fit.coef_table(df=5, kind="CR2")
    assert (t5["df"] == 5).all() and "t(5)" in t5.attrs["caption"] and "CR2" in t5.attrs["caption"]
    assert np.isinf(fit.coef_table(df=np.inf, kind="CR2")["df"]).all()
    chi2 = fit.wald_test(["Intercept", "Days"])
    assert chi2.test == "chi2" and np.isinf(chi2.df_denom)
    assert chi2.p == pytest.approx(stats.chi2.sf(chi2.statistic, 2))
    assert "Satterthwaite" in fit.summary(df="satterthwaite").header[-1]
    assert "lmerTest" in fit.coef_table(df="satterthwaite").attrs["caption"]
    assert "pbkrtest" in fit.coef_table(df="kenward-roger").attrs["caption"]
    assert "clubSandwich" in fit.coef_table(kind="CR2").attrs["caption"]


def test_marginal_effect_takes_kind_and_df():
    data, (formula, re) = small_data("slope")
    fit = mixed(formula, data=data, groups="g", re=re)
    at = [-1.0, 0.0, 1.5]
    me = fit.marginal_effect("x", "w", at, df="kenward-roger")
    L = np.zeros((3, len(fit.params)))
    L[:, term_index("x", fit.params.index)] = 1
    L[:, term_index("x:w", fit.params.index)] = at
    ref = fit.contrast(L, df="kenward-roger")
    np.testing.assert_allclose(me[["se", "df"]].to_numpy(), ref[["se", "df"]].to_numpy(), rtol=1e-12)


# ------------------------------------------------------------------------------------------------------------
# argument validation
# ------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ml_fit():
    return mixed("Reaction ~ Days", data=load_sleepstudy(), groups="Subject", re="~ Days", reml=False)


@pytest.mark.parametrize("kwargs,match", [
    (dict(kind="CR4"), "unknown covariance kind"),
    (dict(kind=2), "unknown covariance kind"),
    (dict(kind="HC1"), "unknown covariance kind"),
    (dict(df="bell-mccaffrey"), "unknown df"),
    (dict(df=-3), "positive"),
    (dict(df=0), "positive"),
    (dict(df=np.nan), "positive"),
    (dict(df=True), "df must be"),
    (dict(df=[5]), "df must be"),
    (dict(kind="CR2", df="kenward-roger"), "Kenward-Roger df go with"),
    (dict(kind="kenward-roger", df="satterthwaite"), "Kenward-Roger df, not Satterthwaite"),
])
def test_bad_kind_or_df_is_refused(fits, kwargs, match):
    fit, _ = fits["sleepstudy_reml"]
    with pytest.raises(InputError, match=match):
        fit.coef_table(**kwargs)
    with pytest.raises(InputError, match=match):
        fit.wald_test(["Days"], **kwargs)


def test_kenward_roger_is_refused_for_ml_fits(ml_fit):
    for call in (lambda: ml_fit.coef_table(df="kenward-roger"), lambda: ml_fit.vcov(kind="kenward-roger"),
                 lambda: ml_fit.wald_test(["Days"], df="kenward-roger"), lambda: ml_fit.summary(kind="KR")):
        with pytest.raises(InputError, match="REML"):
            call()
    assert np.isfinite(ml_fit.coef_table(df="satterthwaite")["df"]).all()


@pytest.mark.parametrize("L,match", [
    (np.ones((1, 3)), "2 weights"),
    ([[1.0, 0.0], [2.0, 0.0]], "rank deficient"),
    ([[0.0, 0.0]], "all weights 0"),
    (["Days", "Days"], "rank deficient"),
    (["days_squared"], "not among the coefficients"),
    ([], "no restrictions"),
    ([[np.nan, 1.0]], "finite"),
])
def test_bad_restrictions_are_refused(fits, L, match):
    fit, _ = fits["sleepstudy_reml"]
    with pytest.raises(InputError, match=match):
        fit.wald_test(L, df="satterthwaite")
