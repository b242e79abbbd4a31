"""Every sandwich figure against its peers: R (sandwich 3.0-2, clubSandwich 0.5.8; fixtures in
hlmlib/datasets/r_reference.json, calls in /shared/reference/README.md) to relative 1e-8, and
statsmodels where it computes the same estimator.
"""

import numpy as np
import pytest
import statsmodels.api as sm

import hlmlib
from hlmlib.inference import term_index

FIXTURES = hlmlib.datasets.load_r_reference()
RTOL = 1e-8

# fixture key -> (kind, cluster) in hlmlib's terms
PETERSEN_KEYS = {
    "se_classical": ("classical", None),
    "se_HC0": ("HC0", None),
    "se_HC1": ("HC1", None),
    "se_HC2": ("HC2", None),
    "se_HC3": ("HC3", None),
    "se_CL_firm_HC0": ("CR0", "firm"),
    "se_CL_firm_stata": ("CR1", "firm"),
    "se_CL_year_stata": ("CR1", "year"),
    "se_CL_twoway": ("CR1", ("firm", "year")),
    "se_CR2_firm": ("CR2", "firm"),
    "se_CR3_firm": ("CR3", "firm"),
}
HSB_KEYS = {
    "se_classical": ("classical", None),
    "se_HC0": ("HC0", None),
    "se_HC1": ("HC1", None),
    "se_HC2": ("HC2", None),
    "se_HC3": ("HC3", None),
    "se_HC4": ("HC4", None),
    "se_CR0": ("CR0", "school"),
    "se_CR1_stata": ("CR1", "school"),
    "se_CR2": ("CR2", "school"),
    "se_CR3": ("CR3", "school"),
}


@pytest.fixture(scope="module")
def petersen():
    return hlmlib.ols("y ~ x", data=hlmlib.datasets.load_petersen())


@pytest.fixture(scope="module")
def hsb():
    return hlmlib.ols("mathach ~ catholic*cses + meanses*cses", data=hlmlib.datasets.load_hsb())


def in_r_order(result, entry):
    """Positions of R's terms among hlmlib's (formulaic writes 'Intercept' and may order
    interaction factors differently, e.g. 'meanses:cses' for R's 'cses:meanses')."""
    return [term_index("Intercept" if t == "(Intercept)" else t, result.names) for t in entry["terms"]]


@pytest.mark.parametrize("model, entry_name, keys", [
    ("petersen", "petersen_ols", PETERSEN_KEYS), ("hsb", "hsb_ols", HSB_KEYS)])
def test_coefficients_and_every_se_match_r(model, entry_name, keys, request):
    result = request.getfixturevalue(model)
    entry = FIXTURES[entry_name]
    order = in_r_order(result, entry)
    np.testing.assert_allclose(result.params.to_numpy()[order], entry["coef"], rtol=RTOL)
    assert set(keys) == {k for k in entry if k.startswith("se_")}, "every se entry of the fixture is checked"
    for key, (kind, cluster) in keys.items():
        np.testing.assert_allclose(result.se(kind, cluster).to_numpy()[order], entry[key], rtol=RTOL,
                                   err_msg=f"{entry_name} {key}")


@pytest.mark.parametrize("model, entry_name, cluster", [
    ("petersen", "petersen_ols", "firm"), ("hsb", "hsb_ols", "school")])
def test_cr2_satterthwaite_df_match_clubsandwich(model, entry_name, cluster, request):
    result = request.getfixturevalue(model)
    entry = FIXTURES[entry_name]
    order = in_r_order(result, entry)
    table = result.summary("CR2", cluster)
    np.testing.assert_allclose(table["df"].to_numpy()[order], entry["CR2_satt_df"], rtol=RTOL)
    # the same df for the coefficient written as a contrast, and the t-based interval uses it
    first = result.names[order[1]]
    one = result.contrast({first: 1.0}, "CR2", cluster)
    np.testing.assert_allclose(one["df"].iloc[0], entry["CR2_satt_df"][1], rtol=RTOL)
    np.testing.assert_allclose(one["se"].iloc[0], table.loc[first, "se"], rtol=1e-12)


def test_petersen_published_figures(petersen):
    """Petersen (2009), Table/website figures for the slope on x, to the 4 decimals published."""
    published = {("classical", None): 0.0286, ("HC0", None): 0.0284, ("CR1", "firm"): 0.0506,
                 ("CR1", "year"): 0.0334, ("CR1", ("firm", "year")): 0.0536}
    for (kind, cluster), value in published.items():
        assert round(petersen.se(kind, cluster)["x"], 4) == value, (kind, cluster)


def test_df_conventions(petersen, hsb):
    n, k = petersen.nobs, petersen.k
    assert (petersen.summary()["df"] == n - k).all()
    assert (petersen.summary("HC3")["df"] == n - k).all()
    assert (petersen.summary("CR1", "firm")["df"] == 500 - 1).all()
    assert (petersen.summary("CR3", "firm")["df"] == 500 - 1).all()
    assert (petersen.summary("CR1", ("firm", "year"))["df"] == min(500, 10) - 1).all()
    assert (hsb.summary("CR0", "school")["df"] == 160 - 1).all()
    caption = petersen.summary("CR1", ("firm", "year")).attrs["caption"]
    assert "two-way" in caption and "min(G_A, G_B) - 1" in caption


# ---------------------------------------------------------------------------------------------
# statsmodels as a second peer


def statsmodels_fit(result, **fit_kwargs):
    return sm.OLS(result.design.y, result.design.X).fit(**fit_kwargs)


@pytest.mark.parametrize("model", ["petersen", "hsb"])
@pytest.mark.parametrize("kind", ["classical", "HC0", "HC1", "HC2", "HC3"])
def test_matches_statsmodels_hc(model, kind, request):
    result = request.getfixturevalue(model)
    peer = statsmodels_fit(result, cov_type="nonrobust" if kind == "classical" else kind)
    np.testing.assert_allclose(result.params.to_numpy(), peer.params, rtol=1e-10)
    scale = np.abs(peer.cov_params()).max()  # entries that are exactly 0 (cses is orthogonal to school means)
    np.testing.assert_allclose(result.vcov(kind).to_numpy(), peer.cov_params(), rtol=1e-9, atol=1e-14 * scale)


@pytest.mark.parametrize("model, cluster", [("petersen", "firm"), ("petersen", "year"), ("hsb", "school")])
def test_cr1_matches_statsmodels_cluster(model, cluster, request):
    result = request.getfixturevalue(model)
    labels = result.design.data.loc[result.design.rows, cluster].to_numpy()
    peer = statsmodels_fit(result, cov_type="cluster", cov_kwds={"groups": labels, "use_correction": True})
    np.testing.assert_allclose(result.vcov("CR1", cluster).to_numpy(), peer.cov_params(), rtol=1e-9)


def test_twoway_matches_statsmodels(petersen):
    groups = petersen.design.data[["firm", "year"]].to_numpy()
    peer = statsmodels_fit(petersen, cov_type="cluster", cov_kwds={"groups": groups, "use_correction": True})
    np.testing.assert_allclose(petersen.vcov("CR1", ("firm", "year")).to_numpy(), peer.cov_params(), rtol=1e-9)


def test_array_fit_and_label_arrays_give_the_formula_results(petersen):
    data = hlmlib.datasets.load_petersen()
    arrays = hlmlib.ols(data["y"].to_numpy(), np.column_stack([np.ones(len(data)), data["x"]]))
    assert arrays.names == ["x0", "x1"]
    for kind, cluster in [("CR1", data["firm"].to_numpy()), ("CR2", data["firm"].to_numpy()),
                          ("CR1", (data["firm"].to_numpy(), data["year"].to_numpy()))]:
        name = "firm" if not isinstance(cluster, tuple) else ("firm", "year")
        np.testing.assert_allclose(arrays.se(kind, cluster).to_numpy(), petersen.se(kind, name).to_numpy(),
                                   rtol=1e-12)
