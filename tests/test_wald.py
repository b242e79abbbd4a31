"""Joint Wald tests of OLS fits (hlmlib.wald) against R and against clubSandwich's algorithm written out.

R values: tests/fixtures/mixed_inference_reference.json ("ols" entries; R script beside it): the classical F
(car::linearHypothesis), Stata's F after ``regress, vce(robust)`` (HC1 on (q, N - k), car::linearHypothesis with
vcovHC "HC1") and after ``regress, vce(cluster)`` (CR1 = clubSandwich "CR1S" on (q, G - 1): Wald_test "Naive-F"),
and clubSandwich's HTZ test for CR2, CR1S and CR3. The mixed-model tests are in test_mixed_inference.py.
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import _dense_reference as dense
from hlmlib import InputError, ols
from hlmlib.datasets import load_hsb
from hlmlib.inference import term_index
from hlmlib.wald import restriction_matrix

REF = json.loads((Path(__file__).parent / "fixtures" / "mixed_inference_reference.json").read_text())["ols"]
DATA = json.loads((Path(__file__).parent / "fixtures" / "mixed_inference_reference.json").read_text())["data"]
CASES = [(key, i) for key, case in REF.items() for i in range(len(case["tests"]))]
PEERS = [("classical", "classical", None), ("HC1", "HC1", None), ("CR1_stata", "CR1", None),
         ("HTZ_CR2", "CR2", None), ("HTZ_CR1S", "CR1", "HTZ"), ("HTZ_CR3", "CR3", "HTZ")]


@pytest.fixture(scope="module")
def fits():
    out = {}
    for key, case in REF.items():
        data = load_hsb() if case["data"] == "hsb" else pd.DataFrame(DATA[case["data"]])
        fit = ols(case["formula"], data=data)
        order = [term_index("Intercept" if t == "(Intercept)" else t, fit.names) for t in case["terms"]]
        out[key] = (fit, np.eye(len(order))[order])
    return out


@pytest.mark.parametrize("key,i", CASES)
@pytest.mark.parametrize("name,kind,test", PEERS)
def test_ols_joint_tests_match_r(fits, key, i, name, kind, test):
    fit, P = fits[key]
    case = REF[key]
    ref = case["tests"][i][name]
    L = np.asarray(case["tests"][i]["L"], float) @ P
    w = fit.wald_test(L, kind=kind, cluster=case["cluster"] if kind.startswith("CR") else None, test=test)
    assert w.F == pytest.approx(ref["F"], rel=1e-10)
    assert w.df_num == ref["df_num"]
    assert w.df_denom == pytest.approx(ref["df_denom"], rel=1e-10)
    assert w.p == pytest.approx(ref["p"], rel=1e-8)
    assert w.test == ("HTZ" if name.startswith("HTZ") else "F")


RESCALED = {"hsb_ols": "cses", "sim_ols": "x"}


@pytest.mark.parametrize("factor", [1e-7, 1e7])
@pytest.mark.parametrize("key,i", CASES)
def test_ols_joint_tests_match_r_with_a_regressor_in_other_units(key, i, factor):
    """A regressor in other units (income in dollars, not thousands) leaves every test unchanged: the
    restrictions on its coefficients are the same hypotheses, each row rescaled. Issues: HTZ returned NaN once a
    restricted coefficient's variance was below 1e-12 (clubSandwich's absolute cut in its inverse square root,
    which clubSandwich 0.5.8 shares), and every joint test refused restrictions whose variances differ by 1e12 as
    singular."""
    case = REF[key]
    data = load_hsb() if case["data"] == "hsb" else pd.DataFrame(DATA[case["data"]])
    data[RESCALED[key]] = data[RESCALED[key]] * factor
    fit = ols(case["formula"], data=data)
    P = np.eye(len(case["terms"]))[[term_index("Intercept" if t == "(Intercept)" else t, fit.names)
                                    for t in case["terms"]]]
    L = np.asarray(case["tests"][i]["L"], float) @ P
    for name, kind, test in PEERS:
        ref = case["tests"][i][name]
        w = fit.wald_test(L, kind=kind, cluster=case["cluster"] if kind.startswith("CR") else None, test=test)
        assert (w.F, w.df_denom, w.p) == pytest.approx((ref["F"], ref["df_denom"], ref["p"]), rel=1e-7), name


@pytest.mark.parametrize("key,i", CASES)
def test_stata_cluster_statistic_and_chi_square(fits, key, i):
    fit, P = fits[key]
    case = REF[key]
    ref = case["tests"][i]["CR1_stata"]
    L = np.asarray(case["tests"][i]["L"], float) @ P
    assert fit.wald_test(L, kind="CR1", cluster=case["cluster"]).F == pytest.approx(ref["F_sandwich"], rel=1e-10)
    chi2 = fit.wald_test(L, kind="CR1", cluster=case["cluster"], test="chi2")
    assert chi2.p == pytest.approx(ref["chisq_p"], rel=1e-8)
    assert np.isinf(chi2.df_denom) and chi2.statistic == pytest.approx(L.shape[0] * ref["F"], rel=1e-10)


def unseen_data(seed=8):
    rng = np.random.default_rng(seed)
    sizes = np.array([2, 7, 3, 12, 5, 1, 9])
    g = np.repeat(np.arange(sizes.size), sizes)
    z = rng.normal(size=sizes.size)[g]
    x = rng.normal(size=g.size) + z
    d = rng.integers(0, 2, size=g.size).astype(float)
    y = 1 + 0.4 * x + 0.2 * d - 0.3 * z + rng.normal(size=sizes.size)[g] + rng.normal(size=g.size) * (1 + d)
    return pd.DataFrame({"y": y, "x": x, "d": d, "z": z, "g": g})


@pytest.mark.parametrize("kind", ["CR0", "CR1", "CR2", "CR3"])
def test_htz_matches_clubsandwich_algorithm_on_unseen_data(kind):
    data = unseen_data()
    fit = ols("y ~ x + d + z", data=data)
    X, e, codes = fit.design.X, fit.resid.to_numpy(), data["g"].to_numpy()
    Theta = [np.eye(int(np.sum(codes == j))) for j in range(codes.max() + 1)]
    V, M, E = dense.club_sandwich(X, e, codes, Theta, kind)
    R = np.eye(4)[[1, 2, 3]]
    F, df, nu = dense.club_htz(dense.club_p_array(R, X, codes, Theta, M, E), dense.wald(R, fit.params.to_numpy(), V))
    w = fit.wald_test(["x", "d", "z"], kind=kind, cluster="g", test="HTZ")
    # hlmlib's CR1 is Stata's (clubSandwich's CR1S): the same HTZ df, the statistic scaled by (N-1)/(N-k)
    scale = (fit.nobs - 1) / (fit.nobs - fit.k) if kind == "CR1" else 1.0
    assert w.F == pytest.approx(F / scale, rel=1e-9) and w.df_denom == pytest.approx(df, rel=1e-9)
    assert w.p == pytest.approx(stats.f.sf(F / scale, 3, df), rel=1e-8)


@pytest.mark.filterwarnings("ignore:two-way cluster covariance")
def test_defaults_and_descriptions():
    data = unseen_data()
    data["h"] = np.arange(len(data)) % 3
    fit = ols("y ~ x + d + z", data=data)
    cr2 = fit.wald_test(["x", "d"], kind="CR2", cluster="g")
    assert cr2.test == "HTZ" and "Hotelling" in cr2.description
    cr1 = fit.wald_test(["x", "d"], kind="CR1", cluster="g")
    assert cr1.test == "F" and cr1.df_denom == 6 and "vce(cluster)" in cr1.description
    hc1 = fit.wald_test(["x", "d"], kind="HC1")
    assert hc1.df_denom == fit.nobs - 4
    classical = fit.wald_test(["x", "d"])
    # the classical F is the F of the nested models' residual sums of squares
    small = ols("y ~ z", data=data)
    F = (small.rss - fit.rss) / 2 / (fit.rss / (fit.nobs - 4))
    assert classical.F == pytest.approx(F, rel=1e-10)
    twoway = fit.wald_test(["x", "d"], kind="CR1", cluster=("g", "h"))
    assert twoway.df_denom == 2 and twoway.test == "F"
    assert "x = 0; d = 0" in repr(cr2)


def test_restriction_forms_agree(fits):
    fit, _ = fits["hsb_ols"]
    names = fit.names
    by_name, _ = restriction_matrix(["catholic", "cses:catholic"], names)   # factors in any order
    by_dict, _ = restriction_matrix([{"catholic": 1}, {"catholic:cses": 1}], names)
    rows = np.zeros((2, len(names)))
    rows[0, names.index("catholic")] = rows[1, term_index("catholic:cses", names)] = 1
    np.testing.assert_array_equal(by_name, rows)
    np.testing.assert_array_equal(by_dict, rows)
    one, labels = restriction_matrix("catholic", names)
    assert one.shape == (1, len(names)) and labels == ["catholic"]
    a = fit.wald_test(["catholic", "cses:catholic"], kind="CR2", cluster="school")
    b = fit.wald_test(rows, kind="CR2", cluster="school")
    assert (a.F, a.df_denom) == (b.F, b.df_denom)


@pytest.mark.filterwarnings("ignore:two-way cluster covariance")
@pytest.mark.parametrize("kwargs,match", [
    (dict(test="Wald"), "unknown test"),
    (dict(kind="HC1", test="HTZ"), "HTZ test is for one-way"),
    (dict(kind="classical", test="HTZ"), "HTZ test is for one-way"),
    (dict(kind="CR1", cluster=("g", "h"), test="HTZ"), "two-way"),
    (dict(kind="HC7"), "unknown covariance kind"),
])
def test_bad_tests_are_refused(kwargs, match):
    data = unseen_data()
    data["h"] = np.arange(len(data)) % 3
    fit = ols("y ~ x + d + z", data=data)
    with pytest.raises(InputError, match=match):
        fit.wald_test(["x"], **kwargs)


@pytest.mark.parametrize("L,match", [
    (np.ones((2, 3)), "4 weights"),
    ([[0, 1, 0, 0], [0, 2, 0, 0]], "rank deficient"),
    (["x", "x"], "rank deficient"),
    (["w"], "not among the coefficients"),
    ([[0, 0, 0, 0]], "all weights 0"),
    (np.zeros((0, 4)), "no restrictions"),
])
def test_bad_restrictions_are_refused(L, match):
    fit = ols("y ~ x + d + z", data=unseen_data())
    with pytest.raises(InputError, match=match):
        fit.wald_test(L)


def test_more_restrictions_than_clusters_can_identify_are_refused():
    """With G - 1 = 2 < q = 3 restrictions the CR1 covariance is singular along them: W is undefined."""
    data = unseen_data()
    data = data[data["g"] < 3]
    fit = ols("y ~ x + d + z", data=data)
    with pytest.raises(InputError, match="singular"):
        fit.wald_test(["Intercept", "x", "d"], kind="CR1", cluster="g")
