"""Bad input to hlmlib.mixed: a clear InputError naming what and where, or a documented boundary result,
never a NumPy traceback or a silently wrong answer."""
import numpy as np
import pandas as pd
import pytest

from hlmlib import InputError, mixed
from hlmlib.mixed import BoundaryFitWarning

RNG = np.random.default_rng(0)
J, n = 12, 5
g = np.repeat(np.arange(J), n)
N = J * n
x = RNG.normal(size=N)
X = np.column_stack([np.ones(N), x])
y = 1 + 0.5 * x + RNG.normal(size=J)[g] + RNG.normal(size=N)


def test_groups_with_one_observation_are_allowed():
    """Singletons inform beta and tau (not sigma^2); the fit equals the one without them only in N."""
    y2 = np.r_[y, 3.0, -1.0]
    X2 = np.r_[X, [[1, 0.3], [1, -0.2]]]
    g2 = np.r_[g, 100, 101]
    r = mixed(y2, X2, g2)
    assert r.ngroups == J + 2 and r.nobs == N + 2 and r.converged
    assert r.shrinkage_factor().loc[100] == pytest.approx(r.tau.iloc[0, 0] / (r.tau.iloc[0, 0] + r.sigma2))


def test_only_singleton_groups_with_a_random_intercept_is_not_identifiable():
    with pytest.raises(InputError, match="not separately identifiable"):
        mixed(y[:J], X[:J], np.arange(J))


@pytest.mark.parametrize("n_groups", [1, 2])
def test_fewer_groups_than_random_effects(n_groups):
    Z = np.column_stack([X, x ** 2])                              # q = 3
    labels = np.arange(N) % n_groups
    with pytest.raises(InputError, match=f"{n_groups} group\\(s\\) for 3 random effect"):
        mixed(y, X, labels, Z)


def test_one_group_random_intercept():
    with pytest.raises(InputError, match="1 group\\(s\\) for 1 random effect"):
        mixed(y, X, np.zeros(N))


def test_random_slope_constant_within_every_group():
    w = RNG.normal(size=J)[g]                                     # a school-level variable
    with pytest.raises(InputError, match="'z1' are constant within every group .*cannot be told apart from it"):
        mixed(y, np.column_stack([X, w]), g, np.column_stack([np.ones(N), w]))
    df = pd.DataFrame({"y": y, "x": x, "w": w, "g": g})
    with pytest.raises(InputError, match="'w' are constant within every group .*with a random intercept"):
        mixed("y ~ x + w", data=df, groups="g", re="~ w")
    with pytest.raises(InputError, match="'w' are constant within every group .*no random intercept.*lme4 fits"):
        mixed("y ~ x + w + (0 + w | g)", df)


def test_random_effects_by_category_of_a_group_level_factor_name_the_real_reason():
    """Round 6, finding 4: (0 + s | g) with s a group-level factor has no random intercept; it is refused
    because no group has both columns (their covariance is not identified), with lme4's spelling of the model
    with one variance per category."""
    df = pd.DataFrame({"y": y, "x": x, "s": np.where(np.arange(J) % 3 == 0, "cat", "pub")[g], "team": g})
    with pytest.raises(InputError) as error:
        mixed("y ~ x + s + (0 + s | team)", df)
    message = str(error.value)
    assert "'s[cat]', 's[pub]'" in message and "each group has only one of them" in message
    assert "covariances are not identified" in message and "cannot be told apart" not in message
    assert '(0 + dummy(s, "cat") | team) + (0 + dummy(s, "pub") | team)' in message


@pytest.mark.parametrize("where", ["y", "X", "Z"])
def test_nan_is_reported_with_column_and_row(where):
    yy, XX, ZZ = y.copy(), X.copy(), X.copy()
    {"y": yy, "X": XX[:, 1], "Z": ZZ[:, 1]}[where][7] = np.nan
    name = {"y": "'y'", "X": "'x1'", "Z": "'z1'"}[where]
    with pytest.raises(InputError, match=f"{name} has 1 NaN value\\(s\\), at row\\(s\\) 7"):
        mixed(yy, XX, g, ZZ)


def test_inf_and_missing_group_labels():
    with pytest.raises(InputError, match="NaN or inf"):
        mixed(np.where(np.arange(N) == 2, np.inf, y), X, g)
    labels = g.astype(float)
    labels[3] = np.nan
    with pytest.raises(InputError, match="groups labels has 1 missing value\\(s\\), at row\\(s\\) 3"):
        mixed(y, X, labels)


def test_non_numeric_columns():
    with pytest.raises(InputError, match="column 'b' is not numeric"):
        mixed(y, pd.DataFrame({"a": x, "b": ["u"] * N}), g)
    with pytest.raises(InputError, match="column 'slope' is not numeric"):
        mixed(y, X, g, pd.DataFrame({"slope": ["u"] * N}))


def test_string_group_labels_are_fine():
    labels = np.array([f"school {j}" for j in g])
    a, b = mixed(y, X, labels), mixed(y, X, g)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12)
    assert a.ranef.index[0] == "school 0"


@pytest.mark.parametrize("which, message", [
    ("y", "y has 59 rows but X has 60"),
    ("groups", "groups labels have length 59, expected 60"),
    ("Z", "Z has 59 rows but y has 60"),
])
def test_mismatched_lengths(which, message):
    args = {"y": y, "X": X, "groups": g, "Z": X}
    args[which] = args[which][:-1]
    with pytest.raises(InputError, match=message):
        mixed(args["y"], args["X"], args["groups"], args["Z"])


def test_rank_deficient_designs():
    with pytest.raises(InputError, match="fixed-effects design is rank deficient.*: column\\(s\\) \\['x2'\\]"):
        mixed(y, np.column_stack([X, 2 * x]), g)
    with pytest.raises(InputError, match="random-effects design Z is rank deficient.*: column\\(s\\) \\['z2'\\]"):
        mixed(y, X, g, np.column_stack([X, 2 * x]))
    with pytest.raises(InputError, match="Z has no columns"):
        mixed(y, X, g, np.empty((N, 0)))


@pytest.mark.parametrize("response", ["constant", "exact", "group-level"])
def test_zero_residual_variance_is_refused(response):
    yy = {"constant": np.ones(N), "exact": X @ [1.0, 2.0], "group-level": RNG.normal(size=J)[g]}[response]
    with pytest.raises(InputError, match="residual variance sigma\\^2 would be zero"):
        mixed(yy, X, g)


def test_calling_form_mistakes():
    df = pd.DataFrame({"y": y, "x": x, "g": g})
    with pytest.raises(InputError, match="needs groups"):
        mixed(y, X)
    with pytest.raises(InputError, match="needs a grouping factor"):
        mixed("y ~ x", data=df)
    with pytest.raises(InputError, match="right-hand-side formula"):
        mixed("y ~ x", data=df, groups="g", re="x")
    with pytest.raises(InputError, match="not found among the data's columns"):
        mixed("y ~ x", data=df, groups="school")
    with pytest.raises(InputError, match="re='~ x' or in lme4's notation, not Z="):
        mixed("y ~ x", data=df, groups="g", Z=X)
    with pytest.raises(InputError, match="go with a formula"):
        mixed(y, X, g, re="~ x")


def test_no_group_variation_is_a_documented_boundary_result():
    """Residuals with exactly zero group means: tau = 0, flagged and warned, converged, beta = OLS (V = sigma^2 I)."""
    rng = np.random.default_rng(5)
    xc = x - (np.bincount(g, x) / n)[g]
    e = rng.normal(size=N)
    e -= (np.bincount(g, e) / n)[g]
    Xc = np.column_stack([np.ones(N), xc])
    with pytest.warns(BoundaryFitWarning, match="boundary"):
        r = mixed(2 + 0.5 * xc + e, Xc, g)
    assert r.boundary and r.converged and r.tau.iloc[0, 0] == 0
    np.testing.assert_allclose(r.params, np.linalg.lstsq(Xc, 2 + 0.5 * xc + e, rcond=None)[0], rtol=1e-10)
    np.testing.assert_allclose(r.ranef.to_numpy(), 0, atol=1e-12)
