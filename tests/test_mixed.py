"""hlmlib.mixed: the profiled criterion against the dense likelihood, the result's pieces against their
textbook formulas, boundary fits, likelihood-ratio tests. Reference values from R are in
test_mixed_reference.py; bad input in test_mixed_errors.py; invariances in test_mixed_properties.py."""
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hlmlib
from hlmlib import InputError, lrtest, mixed
from hlmlib.lmm_objective import (blocked_cholesky, cross_products, lower_triangle, objective,
                                  profiled_deviance, theta_of)
from hlmlib.mixed import BoundaryFitWarning, fit_theta


def simulate(seed, J=30, n_range=(2, 12), q=2, tau_sd=(1.0, 0.5), corr=0.3, sigma=1.0, p_extra=1):
    """A random-intercept (q=1) or random-slope (q=2, 3) data set with unequal group sizes."""
    rng = np.random.default_rng(seed)
    n = rng.integers(*n_range, size=J)
    g = np.repeat(np.arange(J), n)
    N = n.sum()
    Z = np.column_stack([np.ones(N)] + [rng.normal(size=N) for _ in range(q - 1)])
    X = np.column_stack([Z] + [rng.normal(size=N) for _ in range(p_extra)])
    sd = np.resize(np.asarray(tau_sd, float), q)
    C = np.full((q, q), corr) + (1 - corr) * np.eye(q)
    b = rng.multivariate_normal(np.zeros(q), C * np.outer(sd, sd), size=J)
    beta = np.arange(1, X.shape[1] + 1, dtype=float)
    y = X @ beta + np.einsum("na,na->n", Z, b[g]) + sigma * rng.normal(size=N)
    return y, X, Z, g


def dense_loglik(y, X, Z, g, beta, tau, sigma2, reml):
    """The (RE)ML log-likelihood summed group by group from V_j = Z_j tau Z_j' + sigma^2 I (no profiling)."""
    ll, XtVX = 0.0, np.zeros((X.shape[1], X.shape[1]))
    for j in np.unique(g):
        rows = g == j
        V = Z[rows] @ tau @ Z[rows].T + sigma2 * np.eye(rows.sum())
        ll += stats.multivariate_normal(X[rows] @ beta, V).logpdf(y[rows])
        XtVX += X[rows].T @ np.linalg.solve(V, X[rows])
    if reml:
        ll += -0.5 * np.linalg.slogdet(XtVX)[1] + 0.5 * X.shape[1] * np.log(2 * np.pi)
    return ll


# ---------------------------------------------------------------------------------------------
# the criterion and its gradient
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("q", [1, 2, 3])
@pytest.mark.parametrize("reml", [True, False])
def test_llf_equals_dense_likelihood_at_the_estimates(q, reml):
    y, X, Z, g = simulate(q, q=q)
    r = mixed(y, X, g, Z, reml=reml)
    dense = dense_loglik(y, X, Z, g, r.params.to_numpy(), r.tau.to_numpy(), r.sigma2, reml)
    assert r.llf == pytest.approx(dense, rel=1e-10)


@pytest.mark.parametrize("q", [1, 2, 3])
@pytest.mark.parametrize("reml", [True, False])
def test_gradient_matches_finite_differences(q, reml):
    y, X, Z, g = simulate(10 + q, q=q)
    cp = cross_products(y, X, Z, g, g.max() + 1)
    rng = np.random.default_rng(q)
    theta = theta_of(np.tril(rng.normal(size=(q, q))) + np.eye(q))
    _, grad = objective(theta, cp, reml)
    h = 1e-6
    numeric = [(objective(theta + h * e, cp, reml)[0] - objective(theta - h * e, cp, reml)[0]) / (2 * h)
               for e in np.eye(theta.size)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6)


def test_profiled_estimates_maximise_the_dense_likelihood():
    """Moving beta, sigma^2 or tau away from the estimates lowers the (ML) likelihood."""
    y, X, Z, g = simulate(3)
    r = mixed(y, X, g, Z, reml=False)
    beta, tau, s2 = r.params.to_numpy(), r.tau.to_numpy(), r.sigma2
    best = dense_loglik(y, X, Z, g, beta, tau, s2, False)
    for db, dt, ds in [(1e-3, 0, 0), (-1e-3, 0, 0), (0, 1e-3, 0), (0, -1e-3, 0), (0, 0, 1e-3), (0, 0, -1e-3)]:
        assert dense_loglik(y, X, Z, g, beta + db, tau + dt * np.eye(2), s2 + ds, False) < best


def test_theta_order_is_lme4s_column_major_lower_triangle():
    Lam = lower_triangle(np.arange(1.0, 7.0), 3)
    np.testing.assert_array_equal(Lam, [[1, 0, 0], [2, 4, 0], [3, 5, 6]])
    np.testing.assert_array_equal(theta_of(Lam), np.arange(1.0, 7.0))


def test_cross_products_do_not_depend_on_row_order():
    y, X, Z, g = simulate(4)
    order = np.random.default_rng(0).permutation(len(y))
    a = cross_products(y, X, Z, g, g.max() + 1)
    b = cross_products(y[order], X[order], Z[order], g[order], g.max() + 1)
    np.testing.assert_allclose(a.ZtZW, b.ZtZW, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.WtW, b.WtW, rtol=1e-12)
    zj = Z[g == 5]
    np.testing.assert_allclose(a.ZtZW[5], zj.T @ np.column_stack([zj, X[g == 5], y[g == 5]]), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# the result against dense formulas
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fit2():
    y, X, Z, g = simulate(7, J=25)
    return mixed(y, X, g, Z), (y, X, Z, g)


def test_vcov_is_sigma2_inverse_of_X_Vinv_X(fit2):
    r, (y, X, Z, g) = fit2
    tau, s2 = r.tau.to_numpy(), r.sigma2
    XtVX = sum(X[g == j].T @ np.linalg.solve(Z[g == j] @ tau @ Z[g == j].T + s2 * np.eye((g == j).sum()), X[g == j])
               for j in np.unique(g))
    np.testing.assert_allclose(r.vcov().to_numpy(), np.linalg.inv(XtVX), rtol=1e-9)
    np.testing.assert_allclose(r.se().to_numpy(), np.sqrt(np.diag(np.linalg.inv(XtVX))), rtol=1e-9)
    # beta-hat is the GLS estimate at the estimated V
    XtVy = sum(X[g == j].T @ np.linalg.solve(Z[g == j] @ tau @ Z[g == j].T + s2 * np.eye((g == j).sum()), y[g == j])
               for j in np.unique(g))
    np.testing.assert_allclose(r.params.to_numpy(), np.linalg.solve(XtVX, XtVy), rtol=1e-9)


def test_blups_and_conditional_variances_match_dense_formulas(fit2):
    """b_j = tau Z_j' V_j^-1 (y_j - X_j beta); Var(b_j | y) = tau - tau Z_j' V_j^-1 Z_j tau (beta known)."""
    r, (y, X, Z, g) = fit2
    tau, s2, beta = r.tau.to_numpy(), r.sigma2, r.params.to_numpy()
    for j in [0, 3, 17]:
        Zj, rows = Z[g == j], g == j
        V = Zj @ tau @ Zj.T + s2 * np.eye(rows.sum())
        np.testing.assert_allclose(r.ranef.iloc[j], tau @ Zj.T @ np.linalg.solve(V, y[rows] - X[rows] @ beta),
                                   rtol=1e-8, atol=1e-10)
        cond = tau - tau @ Zj.T @ np.linalg.solve(V, Zj) @ tau
        np.testing.assert_allclose(r.ranef_cov[j], cond, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(r.ranef_var.iloc[j], np.diag(cond), rtol=1e-8)
        # shrinkage: the BLUP is S_j times the group's own least-squares estimate
        b_ols = np.linalg.solve(Zj.T @ Zj, Zj.T @ (y[rows] - X[rows] @ beta))
        np.testing.assert_allclose(r.shrinkage()[j] @ b_ols, r.ranef.iloc[j], rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(r.shrinkage()[j], tau @ np.linalg.inv(tau + s2 * np.linalg.inv(Zj.T @ Zj)),
                                   rtol=1e-8)


def test_random_intercept_shrinkage_factor_and_icc():
    y, X, Z, g = simulate(8, q=1)
    r = mixed(y, X, g)
    n_j = np.bincount(g)
    tau00 = r.tau.iloc[0, 0]
    np.testing.assert_allclose(r.shrinkage_factor().to_numpy(), tau00 / (tau00 + r.sigma2 / n_j), rtol=1e-10)
    assert r.icc() == pytest.approx(tau00 / (tau00 + r.sigma2))
    with pytest.raises(InputError, match="random-intercept"):
        mixed(*simulate(8)[:1], simulate(8)[1], simulate(8)[3], simulate(8)[2]).icc()


def test_fitted_and_residuals(fit2):
    r, (y, X, Z, g) = fit2
    marginal = X @ r.params.to_numpy()
    conditional = marginal + np.einsum("na,na->n", Z, r.ranef.to_numpy()[g])
    np.testing.assert_allclose(r.fitted["marginal"], marginal, rtol=1e-12)
    np.testing.assert_allclose(r.fitted["conditional"], conditional, rtol=1e-12)
    np.testing.assert_allclose(r.resid["conditional"], y - conditional, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r.resid["marginal"], y - marginal, rtol=1e-12, atol=1e-12)


def test_result_fields_names_and_information_criteria(fit2):
    r, (y, X, Z, g) = fit2
    assert list(r.params.index) == ["x0", "x1", "x2"] and list(r.tau.index) == ["z0", "z1"]
    assert r.nobs == len(y) and r.ngroups == 25 and r.reml and r.converged and not r.boundary
    assert list(r.ranef.index) == list(range(25)) and r.ranef.shape == (25, 2)
    assert np.isnan(r.aic) and np.isnan(r.bic)          # REML: not comparable across fixed effects
    ml = mixed(y, X, g, Z, reml=False)
    k = 3 + 3 + 1
    assert ml.aic == pytest.approx(-2 * ml.llf + 2 * k) and ml.bic == pytest.approx(-2 * ml.llf + np.log(len(y)) * k)
    np.testing.assert_allclose(r.tau.to_numpy(), r.sigma2 * lower_triangle(r.theta, 2) @ lower_triangle(r.theta, 2).T)
    vc = r.variance_components
    assert list(vc.index) == ["var(z0)", "var(z1)", "cov(z0,z1)", "residual variance"]
    assert vc["cov(z0,z1)"] == r.tau.iloc[1, 0] and vc["residual variance"] == r.sigma2


def test_summary_and_coef_table(fit2):
    r, _ = fit2
    table = r.coef_table()
    assert list(table.columns) == ["estimate", "se", "df", "t", "p", "ci_low", "ci_high"]
    assert np.isinf(table["df"]).all()
    z = r.params / r.se()
    np.testing.assert_allclose(table["p"], 2 * stats.norm.sf(np.abs(z)))
    np.testing.assert_allclose(table["ci_low"], r.params - stats.norm.ppf(0.975) * r.se())
    t20 = r.coef_table(df=20)
    np.testing.assert_allclose(t20["p"], 2 * stats.t.sf(np.abs(z), 20))
    text = str(r.summary())
    for piece in ["REML", "normal (z) reference", "var(z1)", "residual variance", "x2", "Converged: True"]:
        assert piece in text
    assert "boundary (singular tau): False" in text
    vc = r.summary().variance_components
    T = r.tau.to_numpy()
    assert vc.loc["cov(z0,z1)", "corr"] == pytest.approx(T[1, 0] / np.sqrt(T[0, 0] * T[1, 1]))
    assert vc.loc["residual variance", "sd"] == pytest.approx(np.sqrt(r.sigma2))


def test_dataframe_inputs_give_names_and_formula_equals_arrays():
    df = hlmlib.datasets.load_sleepstudy()
    f = mixed("Reaction ~ Days", data=df, groups="Subject", re="~ Days")
    X = pd.DataFrame({"Intercept": 1.0, "Days": df["Days"]})
    a = mixed(df["Reaction"], X, df["Subject"].to_numpy(), Z=X)
    assert list(a.params.index) == ["Intercept", "Days"] and list(a.tau.index) == ["Intercept", "Days"]
    np.testing.assert_allclose(a.params, f.params, rtol=1e-12)
    np.testing.assert_allclose(a.tau, f.tau, rtol=1e-10)
    assert list(f.ranef.index) == sorted(df["Subject"].unique())


def test_formula_drops_incomplete_rows_listwise_with_a_warning():
    df = hlmlib.datasets.load_sleepstudy()
    holes = df.copy()
    holes.loc[[3, 50], "Days"] = np.nan
    holes.loc[[7], "Subject"] = None
    with pytest.warns(UserWarning, match="3 of 180 rows dropped"):
        r = mixed("Reaction ~ Days", data=holes, groups="Subject", re="~ Days")
    ref = mixed("Reaction ~ Days", data=df.drop(index=[3, 7, 50]), groups="Subject", re="~ Days")
    assert r.nobs == 177 and r.n_dropped == 3
    np.testing.assert_allclose(r.params, ref.params, rtol=1e-12)


def test_icc_defaults_to_random_intercept_formula():
    df = hlmlib.datasets.load_hsb()
    r = mixed("mathach ~ 1", data=df, groups="school")
    assert r.q == 1 and 0 < r.icc() < 1


# ---------------------------------------------------------------------------------------------
# boundary fits
# ---------------------------------------------------------------------------------------------

def no_slope_variance_data(seed=3, J=40):
    """Every group has exactly the same least-squares slope (errors orthogonal to the within-group,
    centred x), so the slope variance is estimated as exactly zero; unequal group sizes."""
    rng = np.random.default_rng(seed)
    n = rng.integers(3, 12, size=J)
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=n.sum())
    x -= (np.bincount(g, x) / n)[g]
    e = rng.normal(size=n.sum())
    e -= x * (np.bincount(g, x * e) / np.bincount(g, x * x))[g]
    w = rng.normal(size=J)[g]                                  # a level-2 covariate
    y = 1 + 2 * x + 0.5 * w + rng.normal(size=J)[g] + e
    X = np.column_stack([np.ones_like(x), x, w])
    return y, X, X[:, :2], g


@pytest.mark.parametrize("reml", [True, False])
def test_boundary_fit_is_flagged_and_equals_the_reduced_model(reml):
    y, X, Z, g = no_slope_variance_data()
    with pytest.warns(BoundaryFitWarning, match="boundary"):
        r = mixed(y, X, g, Z, reml=reml)
    assert r.boundary and r.converged
    assert r.tau.iloc[1, 1] == pytest.approx(0, abs=1e-12)
    reduced = mixed(y, X, g, reml=reml)                        # random intercept only
    assert not reduced.boundary
    np.testing.assert_allclose(r.params, reduced.params, rtol=1e-7)
    np.testing.assert_allclose(r.se(), reduced.se(), rtol=1e-6)
    assert r.tau.iloc[0, 0] == pytest.approx(reduced.tau.iloc[0, 0], rel=1e-6)
    assert r.sigma2 == pytest.approx(reduced.sigma2, rel=1e-8)
    assert r.llf == pytest.approx(reduced.llf, abs=1e-7)
    assert "boundary (singular tau): True" in str(r.summary())


def test_boundary_fit_is_at_least_as_good_as_statsmodels():
    """statsmodels' MixedLM does not reach this boundary (its issue 10239); our criterion is never worse."""
    sm = pytest.importorskip("statsmodels.api")
    y, X, Z, g = no_slope_variance_data()
    with pytest.warns(BoundaryFitWarning):
        r = mixed(y, X, g, Z, reml=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = sm.MixedLM(y, X, groups=g, exog_re=Z).fit(reml=True)
    assert r.llf >= m.llf - 1e-8


def test_singular_rank_one_tau_equals_refit_on_its_range():
    """A rank-one tau = s v v' is the model with the single random effect Z v: same beta and llf."""
    y, X, Z, g = simulate(21, J=12, n_range=(2, 5), tau_sd=(1.0, 0.0), corr=0.0, sigma=1.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        r = mixed(y, X, g, Z)
    w, V = np.linalg.eigh(r.tau.to_numpy())
    if not r.boundary:
        pytest.skip("this draw is not on the boundary")
    single = mixed(y, X, g, Z @ V[:, -1])
    np.testing.assert_allclose(r.params, single.params, rtol=1e-6)
    assert r.llf == pytest.approx(single.llf, abs=1e-7)
    assert w[-1] == pytest.approx(single.tau.iloc[0, 0], rel=1e-5)


@pytest.mark.parametrize("start", [[0.0, 0.5, 0.5], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
def test_optimiser_leaves_a_non_optimal_boundary(start):
    """Started on a zero column of Lambda, where d deviance / d theta vanishes, the fit still reaches the
    interior optimum (the KKT check on G = d deviance / dT restarts it)."""
    y, X, Z, g = simulate(5)
    cp = cross_products(y, X, Z, g, g.max() + 1)
    reference = fit_theta(cp, reml=True)
    fit = fit_theta(cp, reml=True, start=np.array(start))
    assert fit.converged and reference.converged
    assert fit.deviance == pytest.approx(reference.deviance, abs=1e-8)
    np.testing.assert_allclose(fit.theta, reference.theta, rtol=1e-5, atol=1e-7)


def test_criterion_is_inf_not_an_exception_where_the_factorisation_fails():
    """At absurd theta X'V^-1X loses all its digits (a level-2 column); the optimiser gets +inf, not a crash."""
    df = hlmlib.datasets.load_hsb()
    r = mixed("mathach ~ meanses + cses", data=df, groups="school", re="~ cses")
    value, grad = objective(np.array([1e9, 0.0, 1e9]), r._cp, True)
    assert value == np.inf and np.all(grad == 0)
    assert np.isfinite(objective(r.theta, r._cp, True)[0])


def test_badly_scaled_random_slope_columns():
    """Columns of Z in units 1e-3 and 1e3 apart: the fit is the same model (tau rescaled, same llf)."""
    y, X, Z, g = simulate(12, q=3, J=40)
    D = np.array([1.0, 1e-3, 1e3])
    a, b = mixed(y, X, g, Z), mixed(y, X, g, Z * D)
    assert a.converged and b.converged
    assert b.llf == pytest.approx(a.llf, abs=1e-7)
    np.testing.assert_allclose(b.params, a.params, rtol=1e-7)
    np.testing.assert_allclose(b.tau.to_numpy(), a.tau.to_numpy() / np.outer(D, D), rtol=1e-5)


def test_newton_decrement_is_tiny_at_the_returned_optimum():
    y, X, Z, g = simulate(6, q=3, J=40)
    cp = cross_products(y, X, Z, g, g.max() + 1)
    fit = fit_theta(cp, reml=True)
    assert fit.converged and fit.newton_decrement < 1e-8
    d0 = profiled_deviance(blocked_cholesky(fit.theta, cp), cp, True)
    rng = np.random.default_rng(1)
    for _ in range(5):                                         # no nearby point is lower
        step = 1e-4 * rng.normal(size=fit.theta.size)
        assert objective(fit.theta + step, cp, True)[0] >= d0 - 1e-9


# ---------------------------------------------------------------------------------------------
# likelihood-ratio tests
# ---------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::hlmlib.mixed.BoundaryFitWarning")
def test_lrtest_fixed_effects_needs_ml():
    y, X, Z, g = simulate(9)
    small, big = mixed(y, X[:, :2], g, Z, reml=False), mixed(y, X, g, Z, reml=False)
    t = lrtest(small, big)
    assert t.df == 1 and t.statistic == pytest.approx(2 * (big.llf - small.llf))
    assert t.pvalue == pytest.approx(stats.chi2.sf(t.statistic, 1)) and "chi2(1)" in t.reference
    with pytest.raises(InputError, match="reml=False"):
        lrtest(mixed(y, X[:, :2], g, Z), mixed(y, X, g, Z))
    with pytest.raises(InputError, match="smaller"):
        lrtest(big, small)


def test_lrtest_random_slope_uses_the_boundary_mixture():
    y, X, Z, g = simulate(10, tau_sd=(1.0, 0.3))
    small, big = mixed(y, X, g), mixed(y, X, g, Z)             # REML allowed: same fixed effects
    t = lrtest(small, big)
    lr = 2 * (big.llf - small.llf)
    assert t.df == 2 and t.criterion == "REML"
    assert t.pvalue == pytest.approx(0.5 * stats.chi2.sf(lr, 1) + 0.5 * stats.chi2.sf(lr, 2))
    assert "mixture" in t.reference and "Self & Liang" in t.reference


def test_lrtest_refuses_different_data_and_non_nested_models():
    y, X, Z, g = simulate(11)
    a = mixed(y, X, g, reml=False)
    with pytest.raises(InputError, match="same data"):
        lrtest(a, mixed(y + 1, X, g, Z, reml=False))
    other = np.column_stack([X[:, :2], np.random.default_rng(0).normal(size=len(y))])
    with pytest.raises(InputError, match="not nested"):
        lrtest(mixed(y, other, g, reml=False), mixed(y, np.column_stack([X, X[:, 1] ** 2]), g, reml=False))
    with pytest.raises(InputError, match="REML and the other ML"):
        lrtest(mixed(y, X, g), mixed(y, X, g, Z, reml=False))


def test_contrast_and_expected_marginal_effect_use_the_model_based_covariance():
    """b_x + b_xz z with Var = V_xx + 2 z V_x,xz + z^2 V_xz,xz from vcov(), and contrasts c'b with sqrt(c'Vc)."""
    from hlmlib.datasets import load_hsb

    fit = mixed("mathach ~ cses * catholic", data=load_hsb(), groups="school", re="~ cses")
    V, b = fit.vcov(), fit.params
    effect = fit.marginal_effect("cses", "catholic", at=[0.0, 1.0])
    for z, row in zip([0.0, 1.0], effect.itertuples()):
        var = V.loc["cses", "cses"] + 2 * z * V.loc["cses", "cses:catholic"] + z**2 * V.loc["cses:catholic", "cses:catholic"]
        assert np.isclose(row.estimate, b["cses"] + z * b["cses:catholic"], rtol=1e-12)
        assert np.isclose(row.se, np.sqrt(var), rtol=1e-12)
    catholic_slope = fit.contrast({"cses": 1, "catholic:cses": 1})  # factor order of the name does not matter
    assert np.isclose(catholic_slope["estimate"].iloc[0], effect["estimate"].iloc[1], rtol=1e-12)
    assert np.isclose(catholic_slope["se"].iloc[0], effect["se"].iloc[1], rtol=1e-12)
    assert np.isinf(catholic_slope["df"].iloc[0])


@pytest.mark.parametrize("module", ["mixed", "lmm_objective", "simulate", "bootstrap"])
def test_source_has_no_control_characters(module):
    """A backslash escape in a non-raw string (e.g. '\\beta' read as backspace + 'eta') corrupts the
    rendered math; the source keeps only newlines as control characters."""
    import importlib
    import inspect

    source = inspect.getsource(importlib.import_module(f"hlmlib.{module}"))
    bad = [(i + 1, repr(ch)) for i, line in enumerate(source.splitlines())
           for ch in line if ord(ch) < 32]
    assert bad == []
