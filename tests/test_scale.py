"""Scale: every estimator is equivariant, so y anywhere in 1e-250..1e250 and a column of X anywhere in
1e-150..1e150 give the well-scaled fit's numbers, rescaled; never se = 0, inf or NaN silently (hypothesis
draws the data and the powers of ten). mixed, which works with cross-products, is right wherever its
variances fit in double precision and refuses clearly beyond. The reference is computed independently on
the well-scaled copy: NumPy's closed forms for classical, HC1 and CR1, hlmlib's well-scaled fit (checked
against R elsewhere) for the rest.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import hlmlib
from hlmlib import simulate as sim

FAST = settings(max_examples=30, deadline=None, derandomize=True)
KINDS = ["classical", "HC0", "HC1", "HC2", "HC3", "HC4", "CR0", "CR1", "CR2", "CR3"]


def data(seed, G=8, n=6, k=3):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(G), n)
    X = np.column_stack([np.ones(G * n), rng.normal(size=(G * n, k - 1)) + rng.normal(size=(G, k - 1))[g]])
    y = X @ rng.normal(size=k) + rng.normal(size=G)[g] + rng.normal(size=G * n) * (1 + X[:, 1] ** 2)
    return y, X, g


def dense_reference(y, X, g):
    """Classical, HC1 and CR1 standard errors by their textbook formulas (well-scaled data)."""
    n, k = X.shape
    M = np.linalg.inv(X.T @ X)
    b = M @ X.T @ y
    e = y - X @ b
    classical = np.sqrt(e @ e / (n - k) * np.diag(M))
    hc1 = np.sqrt(n / (n - k) * np.diag(M @ (X.T * e ** 2) @ X @ M))
    G = np.unique(g).size
    S = np.vstack([X[g == c].T @ e[g == c] for c in np.unique(g)])
    cr1 = np.sqrt(G / (G - 1) * (n - 1) / (n - k) * np.diag(M @ S.T @ S @ M))
    return b, {"classical": classical, "HC1": hc1, "CR1": cr1}


def check_equivariant(scaled, reference, factor, g):
    """scaled's numbers = reference's times factor (per coefficient); t, p and df unchanged; all finite."""
    np.testing.assert_allclose(scaled.params / factor, reference.params, rtol=1e-9,
                               atol=1e-9 * np.abs(reference.params).max())
    for kind in KINDS:
        cluster = g if kind.startswith("CR") else None
        a, b = scaled.summary(kind, cluster), reference.summary(kind, cluster)
        assert np.isfinite(a[["estimate", "se", "t", "p", "df"]].to_numpy()).all() and (a.se > 0).all(), kind
        np.testing.assert_allclose(a.se / factor, b.se, rtol=1e-9, err_msg=kind)
        np.testing.assert_allclose(a[["t", "p", "df"]], b[["t", "p", "df"]], rtol=1e-8, atol=1e-12, err_msg=kind)


@FAST
@given(seed=st.integers(0, 2**32 - 1), power=st.floats(-250, 250))
def test_y_anywhere_in_the_double_range(seed, power):
    y, X, g = data(seed)
    c = 10.0 ** power
    reference = hlmlib.ols(y, X)
    b, se = dense_reference(y, X, g)
    np.testing.assert_allclose(reference.params, b, rtol=1e-10)
    for kind, value in se.items():
        np.testing.assert_allclose(reference.se(kind, g if kind == "CR1" else None), value, rtol=1e-10)
    scaled = hlmlib.ols(y * c, X)
    check_equivariant(scaled, reference, np.full(X.shape[1], c), g)
    assert scaled.sigma / c == pytest.approx(reference.sigma, rel=1e-10)
    assert scaled.rsquared == pytest.approx(reference.rsquared, rel=1e-10)


@FAST
@given(seed=st.integers(0, 2**32 - 1), power=st.floats(-150, 150), column=st.integers(1, 2))
def test_a_column_anywhere_in_the_double_range(seed, power, column):
    y, X, g = data(seed)
    c = 10.0 ** power
    Xc = X.copy()
    Xc[:, column] *= c
    factor = np.ones(X.shape[1])
    factor[column] = 1 / c
    check_equivariant(hlmlib.ols(y, Xc), hlmlib.ols(y, X), factor, g)
    two_way = (g, np.arange(len(y)) % 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")              # the two-way sum need not be positive semi-definite
        np.testing.assert_allclose(hlmlib.ols(y, Xc).se("CR1", two_way) / factor,
                                   hlmlib.ols(y, X).se("CR1", two_way), rtol=1e-9)


@FAST
@given(seed=st.integers(0, 2**32 - 1), y_power=st.floats(-100, 100), x_power=st.floats(-100, 100))
def test_y_and_a_column_together(seed, y_power, x_power):
    y, X, g = data(seed)
    Xc = X.copy()
    Xc[:, 1] *= 10.0 ** x_power
    factor = np.full(X.shape[1], 10.0 ** y_power)
    factor[1] /= 10.0 ** x_power
    check_equivariant(hlmlib.ols(y * 10.0 ** y_power, Xc), hlmlib.ols(y, X), factor, g)


def test_the_issue_examples():
    y, X, g = data(3)
    reference = hlmlib.ols(y, X).se("HC1")
    for c in (1e200, 1e-170):
        se = hlmlib.ols(y * c, X).se("HC1")
        np.testing.assert_allclose(se / c, reference, rtol=1e-10)
    for c in (1e160, 1e-200):           # once reported "all zeros"
        Xc = X.copy()
        Xc[:, 2] *= c
        fit = hlmlib.ols(y, Xc)
        assert fit.se("HC1").iloc[2] * c == pytest.approx(reference.iloc[2], rel=1e-10)
    with pytest.warns(UserWarning, match="leaves the double range"):
        V = hlmlib.ols(y * 1e200, X).vcov()                  # 1e400 is not a double: said, not hidden
    assert np.isinf(V.to_numpy()).any()


@FAST
@given(seed=st.integers(0, 2**32 - 1), power=st.floats(-200, 200))
def test_wild_bootstrap_and_monte_carlo_are_scale_free(seed, power):
    y, X, g = data(seed)
    c = 10.0 ** power
    a = hlmlib.wild_cluster_bootstrap(y, X, cluster=g, term=1, null=0.5, B=99, seed=1)
    b = hlmlib.wild_cluster_bootstrap(y * c, X, cluster=g, term=1, null=0.5 * c, B=99, seed=1)
    assert b.tstat == pytest.approx(a.tstat, rel=1e-9) and b.pvalue == a.pvalue
    assert b.se / c == pytest.approx(a.se, rel=1e-9)
    Y = np.vstack([y, y[::-1]])
    m, s = sim.ols_mc(X, Y, cluster=g, kinds=KINDS), sim.ols_mc(X, Y * c, cluster=g, kinds=KINDS)
    for kind in KINDS:
        np.testing.assert_allclose(s.se[kind] / c, m.se[kind], rtol=1e-9, err_msg=kind)
        np.testing.assert_allclose(s.tstat(kind), m.tstat(kind), rtol=1e-9, err_msg=kind)
    Xc = X.copy()
    Xc[:, 2] *= c ** 0.6
    s = sim.ols_mc(Xc, Y, cluster=g, kinds=KINDS)
    for kind in KINDS:
        np.testing.assert_allclose(s.tstat(kind), m.tstat(kind), rtol=1e-8, err_msg=kind)


# ---------------------------------------------------------------------------------------------
# mixed


def mixed_data(seed, J=12):
    rng = np.random.default_rng(seed)
    n = rng.integers(3, 9, size=J)
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=g.size)
    X = np.column_stack([np.ones(g.size), x])
    y = 1 + 0.5 * x + rng.normal(size=J)[g] + rng.normal(size=J)[g] * 0.3 * x + rng.normal(size=g.size)
    return y, X, g


def quiet_mixed(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hlmlib.mixed(*args, **kwargs)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), power=st.floats(-100, 100), reml=st.booleans())
def test_mixed_is_right_where_its_variances_fit_in_double_precision(seed, power, reml):
    y, X, g = mixed_data(seed)
    c = 10.0 ** power
    a, b = quiet_mixed(y, X, g, X, reml=reml), quiet_mixed(y * c, X, g, X, reml=reml)
    np.testing.assert_allclose(b.params / c, a.params, rtol=1e-6, atol=1e-6 * a.se().max())
    np.testing.assert_allclose(b.se() / c, a.se(), rtol=1e-5)
    np.testing.assert_allclose(b.tau.to_numpy() / c ** 2, a.tau.to_numpy(), rtol=1e-5,
                               atol=1e-6 * np.abs(a.tau.to_numpy()).max())
    assert b.boundary == a.boundary and b.converged and a.converged


@pytest.mark.parametrize("c", [1e300, 1e-300, 1e200, 1e-200])
def test_mixed_refuses_clearly_beyond(c):
    y, X, g = mixed_data(1)
    with pytest.raises(hlmlib.InputError, match="rescale"):
        hlmlib.mixed(y * c, X, g)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), power=st.floats(-4, 4), reml=st.booleans())
def test_boundary_does_not_depend_on_the_units_of_z(seed, power, reml):
    y, X, g = mixed_data(seed, J=8)
    c = 10.0 ** power
    Xc = X * [1.0, c]
    a, b = quiet_mixed(y, X, g, X, reml=reml), quiet_mixed(y, Xc, g, Xc, reml=reml)
    assert a.boundary == b.boundary
    shift = np.log(c) if reml else 0.0          # REML's log|X'V^-1 X| has the units of X
    assert b.llf == pytest.approx(a.llf - shift, abs=1e-6)
    np.testing.assert_allclose(b.tau.to_numpy() * np.outer([1, c], [1, c]), a.tau.to_numpy(), rtol=1e-4,
                               atol=1e-6 * a.sigma2)
