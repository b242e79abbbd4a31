"""HC4m and HC5 (and the rest of the HC family) against R sandwich's vcovHC, to 1e-10 relative.

Fixture: tests/fixtures/hc4m_hc5.json, written by tests/fixtures/hc4m_hc5.R (sandwich 3.0-2): Petersen's
panel, HSB, Greene's public-school expenditures (Alaska's hat value 0.65, Cribari-Neto's 2004 example)
and a heavy-tailed design with several high-leverage rows, where HC4m and HC5 differ most from HC3/HC4.
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hlmlib
from hlmlib import InputError
from hlmlib.inference import term_index

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "hc4m_hc5.json").read_text())
TYPES = ["HC0", "HC1", "HC2", "HC3", "HC4", "HC4m", "HC5"]
RTOL = 1e-10


def _fit(name):
    entry = FIXTURE[name]
    if name == "petersen":
        return hlmlib.ols("y ~ x", data=hlmlib.datasets.load_petersen())
    if name == "hsb":
        return hlmlib.ols("mathach ~ catholic*cses + meanses*cses", data=hlmlib.datasets.load_hsb())
    data = pd.DataFrame(entry["data"])
    if name == "public_schools":
        return hlmlib.ols("Expenditure ~ Income + I(Income**2)", data=data)
    return hlmlib.ols("y ~ x1 + x2", data=data)


@pytest.fixture(scope="module", params=["petersen", "hsb", "public_schools", "heavy_tails"])
def case(request):
    fit = _fit(request.param)
    entry = FIXTURE[request.param]
    r_terms = [{"(Intercept)": "Intercept", "I(Income^2)": "I(Income ** 2)"}.get(t, t) for t in entry["terms"]]
    order = [term_index(t, fit.names) for t in r_terms]
    return fit, entry, order


def test_coefficients_and_leverage_match_r(case):
    fit, entry, order = case
    np.testing.assert_allclose(fit.params.to_numpy()[order], entry["coef"], rtol=RTOL)
    assert fit.leverage.max() == pytest.approx(entry["hat_max"], rel=RTOL)


@pytest.mark.parametrize("kind", TYPES)
def test_every_hc_covariance_matches_sandwich(case, kind):
    fit, entry, order = case
    V = fit.vcov(kind).to_numpy()[np.ix_(order, order)]
    V_r = np.array(entry[f"vcov_{kind}"])
    np.testing.assert_allclose(V, V_r, rtol=RTOL, atol=RTOL * np.abs(V_r).max(), err_msg=kind)
    np.testing.assert_allclose(fit.se(kind).to_numpy()[order], entry[f"se_{kind}"], rtol=RTOL, err_msg=kind)


def test_high_leverage_data_tell_the_estimators_apart():
    # where a row has h_ii = 0.65 the discounts differ by far more than the tolerance: the fixture can tell
    # HC4m and HC5 from HC3, HC4 and each other
    se = {kind: np.array(FIXTURE["public_schools"][f"se_{kind}"]) for kind in TYPES}
    for a, b in [("HC4m", "HC4"), ("HC5", "HC4"), ("HC4m", "HC5"), ("HC4m", "HC3"), ("HC5", "HC3")]:
        assert np.abs(se[a] / se[b] - 1).min() > 0.05, (a, b)


def test_weights_follow_the_published_formulas():
    # direct transcription of Cribari-Neto & da Silva (2011, eq. 6) and Cribari-Neto, Souza & Vasconcellos
    # (2007, eq. 4), independent of the table in hlmlib.sandwich
    h = np.array([0.02, 0.1, 0.3, 0.65, 0.05])
    n, k = 5 * 6, 3      # as if the other rows had small leverage
    ratio = n * h / k
    hc4m = (1 - h) ** -(np.minimum(1, ratio) + np.minimum(1.5, ratio))
    alpha = np.minimum(ratio, np.maximum(4, 0.7 * n * h.max() / k))
    hc5 = 1 / np.sqrt((1 - h) ** alpha)
    np.testing.assert_allclose(hlmlib.sandwich.hc_weights("HC4m", h, n, k), hc4m, rtol=1e-14)
    np.testing.assert_allclose(hlmlib.sandwich.hc_weights("HC5", h, n, k), hc5, rtol=1e-14)
    assert hlmlib.sandwich.HC4M_GAMMA == (1.0, 1.5) and hlmlib.sandwich.HC5_K == 0.7


def test_kinds_are_accepted_everywhere_hc_kinds_are():
    fit = _fit("public_schools")
    se = fit.se("HC5")
    assert fit.se("hc5").equals(se) and fit.se("hc4M").equals(fit.se("HC4m"))
    table = fit.summary("HC4m")
    np.testing.assert_allclose(table["se"], fit.se("HC4m"), rtol=1e-15)
    assert "HC4m" in table.attrs["caption"] and "Cribari-Neto & da Silva" in table.attrs["caption"]
    assert (table["df"] == fit.df_resid).all()
    contrast = fit.contrast({"Income": 1.0}, kind="HC5")
    assert contrast["se"].iloc[0] == pytest.approx(se["Income"], rel=1e-14)
    interacted = hlmlib.ols("y ~ x1 * x2", data=pd.DataFrame(FIXTURE["heavy_tails"]["data"]))
    effect = interacted.marginal_effect("x1", by="x2", at=[0.0], kind="HC5")     # at x2 = 0: b_x1 alone
    assert effect["se"].iloc[0] == pytest.approx(interacted.se("HC5")["x1"], rel=1e-14)
    table = hlmlib.etable([fit, fit], kinds=["HC4m", "HC5"])
    np.testing.assert_allclose(table.se.iloc[:, 1].dropna().to_numpy(), se.to_numpy(), rtol=1e-14)


def test_leverage_one_is_refused():
    # the last row alone determines the dummy's coefficient: h = 1, so (1 - h)^-delta is infinite
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(12), rng.standard_normal(12), np.r_[np.zeros(11), 1.0]])
    fit = hlmlib.ols(rng.standard_normal(12), X)
    for kind in ("HC4m", "HC5"):
        with pytest.raises(InputError, match=rf"{kind} is undefined: .*row\(s\) 11 .*leverage h_ii = 1"):
            fit.se(kind)
