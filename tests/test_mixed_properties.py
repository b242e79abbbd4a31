"""Invariances of hlmlib.mixed (hypothesis): the row order and the group labels change nothing; y + X b
shifts beta by b; c y scales beta and se by c (|c|), tau and sigma^2 by c^2, and the log-likelihood by
-dof log|c| (dof = N - p for REML, N for ML)."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hlmlib import mixed

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)


def data(seed: int, J: int, q: int):
    rng = np.random.default_rng(seed)
    n = rng.integers(2, 9, size=J)
    g = np.repeat(np.arange(J), n)
    N = n.sum()
    Z = np.column_stack([np.ones(N)] + [rng.normal(size=N) for _ in range(q - 1)])
    X = np.column_stack([Z, rng.normal(size=N)])
    b = rng.normal(size=(J, q)) * rng.uniform(0.2, 2, size=q)
    y = X @ rng.normal(size=X.shape[1]) + np.einsum("na,na->n", Z, b[g]) + rng.normal(size=N)
    return y, X, Z, g


def fit(y, X, g, Z, reml):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                       # boundary fits are fine here
        return mixed(y, X, g, Z, reml=reml)


def assert_same_fit(a, b, beta_shift=0.0, scale=1.0, llf_shift=0.0):
    """b is a's fit after the transformation; tolerances relative to the estimates' own scale."""
    se = a.se().to_numpy()
    np.testing.assert_allclose(b.params.to_numpy(), scale * a.params.to_numpy() + beta_shift,
                               rtol=1e-6, atol=1e-5 * abs(scale) * se.max())
    np.testing.assert_allclose(b.se().to_numpy(), abs(scale) * se, rtol=1e-4)
    size = scale ** 2 * (a.sigma2 + np.abs(a.tau.to_numpy()).max())
    np.testing.assert_allclose(b.tau.to_numpy(), scale ** 2 * a.tau.to_numpy(), rtol=1e-5, atol=1e-6 * size)
    assert b.sigma2 == pytest.approx(scale ** 2 * a.sigma2, rel=1e-6)
    assert b.llf == pytest.approx(a.llf + llf_shift, abs=1e-6)


problems = st.tuples(st.integers(0, 10_000), st.integers(6, 14), st.sampled_from([1, 2]), st.booleans())


@SETTINGS
@given(problems, st.integers(0, 10_000))
def test_row_order_and_group_labels_change_nothing(problem, perm_seed):
    seed, J, q, reml = problem
    y, X, Z, g = data(seed, J, q)
    rng = np.random.default_rng(perm_seed)
    order = rng.permutation(len(y))
    new_labels = np.array([f"g{v}" for v in rng.permutation(J) * 7 + 3])   # shuffled, renamed labels
    a = fit(y, X, g, Z, reml)
    b = fit(y[order], X[order], new_labels[g[order]], Z[order], reml)
    assert_same_fit(a, b)
    np.testing.assert_allclose(b.ranef.loc[new_labels].to_numpy(), a.ranef.to_numpy(), rtol=1e-4,
                               atol=1e-5 * np.sqrt(a.sigma2))


@SETTINGS
@given(problems, st.lists(st.floats(-50, 50), min_size=3, max_size=3))
def test_adding_X_b_to_y_shifts_beta_by_b(problem, shift):
    seed, J, q, reml = problem
    y, X, Z, g = data(seed, J, q)
    b = np.array(shift[:X.shape[1]])
    assert_same_fit(fit(y, X, g, Z, reml), fit(y + X @ b, X, g, Z, reml), beta_shift=b)


@SETTINGS
@given(problems, st.floats(0.01, 100), st.booleans())
def test_scaling_y_scales_estimates(problem, c, negative):
    seed, J, q, reml = problem
    y, X, Z, g = data(seed, J, q)
    c = -c if negative else c
    a, b = fit(y, X, g, Z, reml), fit(c * y, X, g, Z, reml)
    dof = a.nobs - len(a.params) if reml else a.nobs
    assert_same_fit(a, b, scale=c, llf_shift=-dof * np.log(abs(c)))
