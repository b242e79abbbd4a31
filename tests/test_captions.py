"""A covariance's caption states the divisor that was used: for estimators whose residual df are not n - k
(the within estimator's N - G - k), the caption's df is the one that reproduces the standard error of the
same coefficient in the dummy-variable (LSDV) regression, and n - k is not."""
import re

import numpy as np
import pytest

import hlmlib


@pytest.fixture(scope="module")
def hsb():
    return hlmlib.datasets.load_hsb()


def _caption_df(cov):
    found = re.search(r"df = (\d+) \(this estimator's residual df, not n - k = (\d+)\)", cov.convention)
    assert found, cov.convention
    return int(found[1]), int(found[2])


def test_within_caption_states_the_divisor_it_used(hsb):
    within = hlmlib.within("mathach ~ ses", data=hsb, groups="school")
    df, n_minus_k = _caption_df(within.covariance("classical"))
    dummies = (hsb["school"].to_numpy()[:, None] == np.unique(hsb["school"])[None, :]).astype(float)
    X = np.column_stack([hsb["ses"].to_numpy(), dummies])
    y = hsb["mathach"].to_numpy()
    b, *_ = np.linalg.lstsq(X, y, rcond=None)
    rss = float(np.sum((y - X @ b) ** 2))
    xtx_inv_ses = np.linalg.inv(X.T @ X)[0, 0]
    assert df == len(y) - X.shape[1] != n_minus_k
    np.testing.assert_allclose(within.se("classical")["ses"], np.sqrt(rss / df * xtx_inv_ses), rtol=1e-8)
    assert abs(within.se("classical")["ses"] / np.sqrt(rss / n_minus_k * xtx_inv_ses) - 1) > 1e-3
    df_hc1, _ = _caption_df(within.covariance("HC1"))
    np.testing.assert_allclose((within.se("HC1")["ses"] / within.se("HC0")["ses"]) ** 2,
                               within.nobs / df_hc1, rtol=1e-10)


def test_ols_caption_keeps_n_minus_k(hsb):
    convention = hlmlib.ols("mathach ~ ses", hsb).covariance("HC1").convention
    assert "n/(n-k)" in convention and "this estimator's residual df" not in convention
