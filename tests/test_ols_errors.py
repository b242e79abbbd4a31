"""Bad input to OLS gets a clear InputError naming the column, row or cluster; incomplete rows of a
formula fit are dropped listwise, counted, and the cluster labels stay aligned with the rows kept."""
import numpy as np
import pandas as pd
import pytest

import hlmlib
from hlmlib import InputError


def design(seed=0, n=40):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, 2))])
    return rng.standard_normal(n), X


@pytest.fixture(scope="module")
def fit():
    return hlmlib.ols(*design())


# ---------------------------------------------------------------------------------------------
# data


def test_nan_in_y_names_the_row():
    y, X = design()
    y[3] = np.nan
    with pytest.raises(InputError, match=r"'y' has 1 NaN.*row\(s\) 3"):
        hlmlib.ols(y, X)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_X_names_the_column_and_row(bad):
    y, X = design()
    X[5, 1] = bad
    with pytest.raises(InputError, match=r"column 'x1' .*row\(s\) 5"):
        hlmlib.ols(y, X)


def test_inf_made_by_a_formula_names_the_term_and_the_row_label():
    data = pd.DataFrame({"y": [1.0, 2.0, 3.0, 5.0], "x": [1.0, 0.0, 2.0, 3.0]}, index=list("abcd"))
    with np.errstate(divide="ignore"), pytest.raises(InputError, match=r"column 'np.log\(x\)' .*row\(s\) b$"):
        hlmlib.ols("y ~ np.log(x)", data=data)


def test_nan_made_by_a_formula_names_the_term_and_the_row_label():
    data = pd.DataFrame({"y": [1.0, 2.0, 3.0, 5.0], "x": [1.0, -1.0, 2.0, 3.0]}, index=list("abcd"))
    with np.errstate(invalid="ignore"):
        with pytest.raises(InputError, match=r"column 'np.log\(x\)' has 1 NaN value\(s\), at row\(s\) b$"):
            hlmlib.ols("y ~ np.log(x)", data=data)
        with pytest.raises(InputError, match=r"column 'np.log\(x\)' has 1 NaN value\(s\), at row\(s\) b$"):
            hlmlib.fwls("y ~ x", data=data, variance="~ np.log(x)")


def test_mismatched_lengths():
    y, X = design()
    with pytest.raises(InputError, match="y has 39 rows but X has 40"):
        hlmlib.ols(y[:-1], X)


@pytest.mark.parametrize("n", [2, 3])
def test_too_few_observations(n):
    y, X = design()
    with pytest.raises(InputError, match=f"{n} observations but 3 coefficients"):
        hlmlib.ols(y[:n], X[:n])


def test_non_numeric_column_is_named():
    y, X = design()
    frame = pd.DataFrame({"a": X[:, 1], "school_name": ["u", "v"] * 20})
    with pytest.raises(InputError, match="'school_name' is not numeric"):
        hlmlib.ols(y, frame)


@pytest.mark.parametrize("extra, message", [
    (lambda X: X[:, 1] + X[:, 2], r"'extra' is a linear combination of 'a', 'b' \(extra = 1\*a \+ 1\*b\)"),
    (lambda X: X[:, 2].copy(), r"'extra' duplicates 'b'"),
    (lambda X: -3 * X[:, 0], r"'extra' duplicates 'const' up to a factor \(extra = -3\*const\)"),
    (lambda X: np.zeros(len(X)), "'extra' is all zeros"),
])
def test_rank_deficient_X_names_the_collinear_columns(extra, message):
    y, X = design()
    frame = pd.DataFrame({"const": X[:, 0], "a": X[:, 1], "b": X[:, 2], "extra": extra(X)})
    with pytest.raises(InputError, match="rank-deficient.*" + message):
        hlmlib.ols(y, frame)


def test_rank_deficient_formula_names_terms():
    y, X = design()
    data = pd.DataFrame({"y": y, "x1": X[:, 1], "x2": X[:, 2], "x3": X[:, 1] + X[:, 2]})
    with pytest.raises(InputError, match="'x3' is a linear combination of 'x1', 'x2'"):
        hlmlib.ols("y ~ x1 + x2 + x3", data=data)


# ---------------------------------------------------------------------------------------------
# covariance requests


def test_unknown_kind_lists_the_kinds(fit):
    with pytest.raises(InputError, match="unknown covariance kind 'HC6'; choose one of classical, HC0"):
        fit.se("HC6")


def test_cluster_with_a_non_cluster_kind_and_cr_without_cluster(fit):
    with pytest.raises(InputError, match="cluster= was given but kind='HC1'"):
        fit.se("HC1", np.arange(40) % 5)
    with pytest.raises(InputError, match="kind='CR1' is cluster-robust: give cluster="):
        fit.se("CR1")


@pytest.mark.parametrize("bad, message", [(np.nan, "missing value"), (np.inf, "inf")])
def test_nan_or_inf_cluster_labels_name_the_row(fit, bad, message):
    labels = (np.arange(40) % 5).astype(float)
    labels[7] = bad
    with pytest.raises(InputError, match=message + r".*row\(s\) 7"):
        fit.se("CR1", labels)


def test_cluster_labels_of_wrong_length(fit):
    with pytest.raises(InputError, match="cluster labels have length 39, expected 40"):
        fit.se("CR1", np.arange(39))


def test_cluster_labels_of_two_dimensions(fit):
    with pytest.raises(InputError, match=r"cluster labels must be one-dimensional, got shape \(40, 2\)"):
        fit.se("CR1", np.zeros((40, 2)))


def test_one_cluster(fit):
    with pytest.raises(InputError, match=r"one cluster \('all'\).*at least 2 clusters"):
        fit.se("CR1", np.array(["all"] * 40))


def test_two_way_with_cr2_or_three_variables(fit):
    a, b = np.arange(40) % 5, np.arange(40) % 3
    with pytest.raises(InputError, match="two-way clustering is implemented for CR0 and CR1.*not CR2"):
        fit.se("CR2", (a, b))
    with pytest.raises(InputError, match="exactly two cluster variables, got 3"):
        fit.se("CR1", (a, b, a))


def test_column_name_on_an_array_fit(fit):
    with pytest.raises(InputError, match="names a column, but this fit was made from arrays"):
        fit.se("CR1", "school")


@pytest.mark.parametrize("kind", ["CR2", "CR3"])
def test_cluster_that_alone_determines_a_coefficient_is_named(kind):
    y, X = design()
    school = np.array([f"s{i % 5}" for i in range(40)])
    only_in_s3 = (school == "s3").astype(float)           # a dummy non-zero only in cluster s3
    result = hlmlib.ols(y, np.column_stack([X, only_in_s3]))
    with pytest.raises(InputError, match=f"{kind} is undefined: I - H_gg is singular for cluster 's3'"):
        result.se(kind, school)
    assert np.isfinite(result.se("CR1", school)).all()    # CR1 needs no inverse of I - H_gg


def test_observation_with_leverage_one_under_hc2():
    y, X = design()
    single = np.zeros(40)
    single[4] = 1.0
    result = hlmlib.ols(y, np.column_stack([X, single]))
    with pytest.raises(InputError, match=r"HC3 is undefined: observation\(s\) at row\(s\) 4"):
        result.se("HC3")


def test_bad_alpha_contrast_and_marginal_effect_requests(fit):
    with pytest.raises(InputError, match="alpha must be between 0 and 1"):
        fit.summary(alpha=1.5)
    with pytest.raises(InputError, match="term 'zz' is not among the coefficients"):
        fit.contrast({"zz": 1})
    with pytest.raises(InputError, match="a contrast needs 3 weights"):
        fit.contrast([1.0, 2.0])
    with pytest.raises(InputError, match="no interaction of 'x1' and 'x2'"):
        fit.marginal_effect("x1", "x2", at=[0.0])


# ---------------------------------------------------------------------------------------------
# listwise deletion in formula fits


def test_formula_fit_drops_incomplete_rows_and_keeps_cluster_labels_aligned():
    data = hlmlib.datasets.load_hsb()
    rng = np.random.default_rng(11)
    holes = rng.choice(len(data), 25, replace=False)
    with_nan = data.copy()
    with_nan.loc[with_nan.index[holes], "cses"] = np.nan
    with pytest.warns(UserWarning, match="25 of 7185 rows dropped listwise"):
        dropped = hlmlib.ols("mathach ~ cses * catholic", data=with_nan)
    complete = hlmlib.ols("mathach ~ cses * catholic", data=data.drop(index=data.index[holes]))
    assert dropped.n_dropped == 25 and dropped.nobs == 7185 - 25
    assert "25 incomplete row(s) dropped listwise" in dropped.summary().attrs["caption"]
    for kind in ("CR1", "CR2", "CR3"):
        pd.testing.assert_frame_equal(dropped.summary(kind, "school"), complete.summary(kind, "school"),
                                      rtol=1e-12)
        # labels given as an array over all rows of the data are aligned to the rows kept
        np.testing.assert_allclose(dropped.se(kind, with_nan["school"].to_numpy()),
                                   complete.se(kind, "school"), rtol=1e-12)


def test_missing_cluster_label_in_a_kept_row_is_an_error_not_a_drop():
    data = hlmlib.datasets.load_petersen()
    data.loc[17, "firm"] = np.nan
    result = hlmlib.ols("y ~ x", data=data)
    with pytest.raises(InputError, match=r"cluster column 'firm' has 1 missing value.*row\(s\) 17"):
        result.se("CR1", "firm")


# ---------------------------------------------------------------------------------------------
# categorical variables in formula fits


def test_unused_categorical_levels_are_dropped_as_r_does():
    data = hlmlib.simulate.cgm(G=6, n=5, seed=1)
    data["g"] = pd.Categorical(np.where(data.cluster < 3, "a", "b"), categories=["a", "b", "zzz"])
    fit = hlmlib.ols("y ~ x + g", data=data)                 # once "column g[T.zzz] is all zeros"
    assert fit.names == ["Intercept", "x", "g[T.b]"]
    plain = hlmlib.ols("y ~ x + g", data=data.assign(g=data.g.astype(str)))
    np.testing.assert_allclose(fit.params, plain.params, rtol=1e-12)
    # a level whose rows are all dropped listwise goes too
    data["g"] = pd.Categorical(np.where(data.cluster < 3, "a", np.where(data.cluster == 5, "c", "b")))
    data.loc[data.cluster == 5, "x"] = np.nan
    with pytest.warns(UserWarning, match="5 of 30 rows dropped"):
        assert hlmlib.ols("y ~ x + g", data=data).names == ["Intercept", "x", "g[T.b]"]


@pytest.mark.parametrize("response", [["a"] * 4, pd.Categorical(["u", "v", "u", "v"]), ["1", "2", "3", "4"]])
def test_a_non_numeric_response_is_refused(response):
    data = pd.DataFrame({"y": response, "x": [1.0, 2.0, 4.0, 3.0]})
    with pytest.raises(InputError, match="the response 'y' is not numeric"):
        hlmlib.ols("y ~ x", data=data)


def test_formula_errors_are_input_errors_without_colour_codes():
    data = pd.DataFrame({"y": [1.0, 2.0, 4.0], "x": [1.0, 2.0, 4.0]})
    with pytest.raises(InputError, match=r"formula 'y ~ x \+' could not be parsed: Operator `\+`") as caught:
        hlmlib.ols("y ~ x +", data=data)
    assert "\x1b" not in str(caught.value)
    with pytest.raises(InputError, match="could not be evaluated on the data: Unable to evaluate factor `np.nope"):
        hlmlib.ols("y ~ np.nope(x)", data=data)
    with pytest.raises(InputError, match=r"variable\(s\) \['nope'\] not found"):
        hlmlib.ols("y ~ nope(x)", data=data)


def test_a_numeric_valued_categorical_in_an_array_fit_is_refused():
    y, X = design()
    frame = pd.DataFrame({"const": X[:, 0], "level": pd.Categorical(np.arange(40) % 3)})
    with pytest.raises(InputError, match="'level' is a pandas Categorical"):
        hlmlib.ols(y, frame)
