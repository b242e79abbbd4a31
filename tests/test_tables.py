"""hlmlib.tables.etable: numbers come from each fit's own params/se, layout, stars, options, errors."""
import numpy as np
import pandas as pd
import pytest

import hlmlib
from hlmlib import datasets
from hlmlib.design import InputError
from hlmlib.tables import etable


@pytest.fixture(scope="module")
def hsb():
    return datasets.load_hsb()


@pytest.fixture(scope="module")
def fits(hsb):
    return hlmlib.ols("mathach ~ cses * catholic", data=hsb), hlmlib.ols("mathach ~ cses + meanses", data=hsb)


class ModelBased:
    """A stand-in for a mixed-model result: model-based se(), variance components, REML criterion."""

    def __init__(self):
        self.params = pd.Series({"Intercept": 12.5, "cses": 2.1})
        self.nobs, self.ngroups, self.llf, self.reml = 100, 10, -250.25, True
        self.variance_components = pd.Series({"var(Intercept)": 4.0, "residual variance": 36.0})

    def se(self):
        return pd.Series({"Intercept": 0.5, "cses": 0.0004})

    def summary(self):
        return pd.DataFrame({"p": [1e-6, 0.2]}, index=self.params.index)


def test_numbers_are_each_fits_own(fits):
    m1, m2 = fits
    t = etable([m1, m1, m2], kind=["classical", "CR1", "HC3"], cluster="school")
    pd.testing.assert_series_equal(t.estimates["(2)"].dropna(), m1.params, check_names=False)
    np.testing.assert_allclose(t.se["(1)"].dropna(), m1.se("classical").to_numpy())
    np.testing.assert_allclose(t.se["(2)"].dropna(), m1.se("CR1", "school").to_numpy())
    np.testing.assert_allclose(t.se["(3)"].dropna(), m2.se("HC3").to_numpy())
    assert t.covariances.tolist() == ["classical", "CR1 by school", "HC3"]
    # terms are the union in order of appearance; missing cells are blank
    assert list(t.estimates.index) == ["Intercept", "cses", "catholic", "cses:catholic", "meanses"]
    assert t.frame.loc[("meanses", "estimate"), "(1)"] == ""
    assert t.frame.loc[("cses", "se"), "(2)"] == f"({m1.se('CR1', 'school')['cses']:.3f})"
    assert t.frame.loc[("Clusters / groups", ""), "(2)"] == "160"
    assert t.frame.loc[("N", ""), "(3)"] == "7,185"


def test_dict_form_equals_list_form(fits):
    m1, _ = fits
    a = etable({"OLS": m1, "CR2": (m1, dict(kind="CR2", cluster="school"))})
    b = etable([m1, m1], kind=["classical", "CR2"], cluster="school", names=["OLS", "CR2"])
    pd.testing.assert_frame_equal(a.frame, b.frame)


def test_text_and_html_rendering(fits):
    m1, _ = fits
    t = etable([m1], kind="HC1", digits=4)
    text = str(t)
    assert f"{m1.params['cses']:.4f}" in text and f"({m1.se('HC1')['cses']:.4f})" in text
    assert "Standard errors in parentheses" in text
    page = t._repr_html_()
    assert page.startswith("<table") and f"({m1.se('HC1')['cses']:.4f})" in page


def test_model_based_column_footer_and_stars(fits):
    m1, _ = fits
    t = etable({"OLS": m1, "HLM": ModelBased()}, kind="CR1", cluster="school", stars=True)
    assert t.covariances["HLM"] == "model-based"     # the table-wide kind does not apply to it
    assert t.frame.loc[("Intercept", "estimate"), "HLM"] == "12.500***"
    assert t.frame.loc[("cses", "estimate"), "HLM"] == "2.100"          # p = 0.2: no star
    assert t.frame.loc[("cses", "se"), "HLM"] == "(0.000)"
    assert t.frame.loc[("tau: var(Intercept)", ""), "HLM"] == "4.000"
    assert t.frame.loc[("sigma^2 (residual)", ""), "HLM"] == "36.000"
    assert t.frame.loc[("-2 log-likelihood", ""), "HLM"] == "500.500 (REML)"
    assert t.frame.loc[("Clusters / groups", ""), "HLM"] == "10"
    p = m1.summary("CR1", "school")["p"]
    marks = ["***" if v < 0.001 else "**" if v < 0.01 else "*" if v < 0.05 else "" for v in p]
    for term, mark in zip(p.index, marks):
        assert t.frame.loc[(term, "estimate"), "OLS"] == f"{m1.params[term]:.3f}{mark}"
    assert "*** p < 0.001" in t.note


def test_with_a_real_mixed_fit(hsb):
    mixed = pytest.importorskip("hlmlib.mixed").mixed
    m = mixed("mathach ~ cses", data=hsb, groups="school", re="~ 1")
    t = etable({"HLM": m})
    np.testing.assert_allclose(t.se["HLM"], m.se().to_numpy())
    assert t.frame.loc[("-2 log-likelihood", ""), "HLM"] == f"{-2 * m.llf:.3f} (REML)"
    assert ("sigma^2 (residual)", "") in t.frame.index


def test_errors(fits):
    m1, _ = fits
    with pytest.raises(InputError, match="2 entries for 1 models"):
        etable([m1], kind=["classical", "HC1"])
    with pytest.raises(InputError, match="no params/se"):
        etable([object()])
    with pytest.raises(InputError, match="model-based"):
        etable({"HLM": (ModelBased(), dict(kind="CR1"))})
    with pytest.raises(InputError, match="unknown option"):
        etable({"OLS": (m1, dict(kinds="CR1"))})
    with pytest.raises(InputError, match="at least one"):
        etable([])


def test_a_robust_column_computes_its_covariance_once(fits, monkeypatch):
    m1, _ = fits
    calls = []
    original = type(m1).covariance
    monkeypatch.setattr(type(m1), "covariance", lambda self, *a, **k: calls.append(a) or original(self, *a, **k))
    t = etable([m1], kind="CR2", cluster="school")
    assert len(calls) == 1
    assert t.frame.loc[("Clusters / groups", ""), "(1)"] == "160"
    np.testing.assert_allclose(t.se["(1)"], np.sqrt(np.diag(original(m1, "CR2", "school").matrix)), rtol=0, atol=0)
