"""hlmlib.plots: each function draws the fit's own numbers (read back from the Line2D and Collection objects
and compared with the estimates computed here) and returns the Axes it drew on. Bad arguments: in
test_api_validation.py, with every other public callable."""
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

import hlmlib  # noqa: E402
from hlmlib import plots  # noqa: E402
from hlmlib.datasets import load_hsb  # noqa: E402

HSB = load_hsb()


def quiet(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


@pytest.fixture(scope="module")
def fits():
    return {"ols": quiet(hlmlib.ols, "mathach ~ cses * catholic + cses * meanses", HSB),
            "hlm": quiet(hlmlib.mixed, "mathach ~ cses * catholic + cses * meanses + (cses | school)", HSB),
            "rc": quiet(hlmlib.mixed, "mathach ~ cses + (cses | school)", HSB)}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def segments(collection):
    """(y, x_low, x_high) of a LineCollection of horizontal segments."""
    segs = np.array(collection.get_segments())
    return segs[:, 0, 1], segs[:, 0, 0], segs[:, 1, 0]


def test_book_style_is_temporary_and_use_book_style_global():
    before = matplotlib.rcParams["axes.spines.top"]
    with plots.book_style():
        assert matplotlib.rcParams["axes.spines.top"] is False
        assert matplotlib.rcParams["axes.prop_cycle"].by_key()["color"][0] == plots.OKABE_ITO[0]
    assert matplotlib.rcParams["axes.spines.top"] == before
    with matplotlib.rc_context():
        plots.use_book_style()
        assert matplotlib.rcParams["legend.frameon"] is False and matplotlib.rcParams["axes.grid"] is True


def test_coef_plot_draws_each_fits_estimates_and_intervals(fits):
    ols, hlm = fits["ols"], fits["hlm"]
    terms = ["cses", "catholic", "cses:catholic"]
    fig, ax = plt.subplots()
    out = plots.coef_plot([ols, ols, hlm], terms=terms, kind=["classical", "CR2", "kenward-roger"],
                          cluster=[None, "school", None], names=["OLS", "OLS CR2", "HLM KR"], ax=ax)
    assert out is ax
    expected = [ols.summary(), ols.summary("CR2", "school"), hlm.coef_table(kind="kenward-roger")]
    for k, table in enumerate(expected):
        np.testing.assert_allclose(ax.lines[k].get_xdata(), table.loc[terms, "estimate"], rtol=1e-12)
        y, low, high = segments(ax.collections[k])
        np.testing.assert_allclose(low, table.loc[terms, "ci_low"], rtol=1e-12)
        np.testing.assert_allclose(high, table.loc[terms, "ci_high"], rtol=1e-12)
        np.testing.assert_allclose(np.round(y), [0, 1, 2])                     # one row per term, in order
    assert [t.get_text() for t in ax.get_yticklabels()] == terms
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["OLS", "OLS CR2", "HLM KR"]
    # tables and a dict; alpha reaches the intervals
    ax2 = plots.coef_plot({"CR2": ols.summary("CR2", "school", alpha=0.1)}, terms="cses")
    assert segments(ax2.collections[0])[1][0] == pytest.approx(ols.summary("CR2", "school", alpha=0.1).loc["cses", "ci_low"])
    ax3 = plots.coef_plot(hlm, alpha=0.1)
    np.testing.assert_allclose(segments(ax3.collections[0])[2], hlm.coef_table(alpha=0.1)["ci_high"], rtol=1e-12)


def test_marginal_effect_plot_draws_the_table(fits):
    table = fits["hlm"].marginal_effect("cses", "meanses", given={"catholic": 0})
    ax = plots.marginal_effect_plot(table)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), table["meanses"])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), table["estimate"])
    band = ax.collections[0].get_paths()[0].vertices            # the polygon's corners
    for column in ("ci_low", "ci_high"):
        for point in np.column_stack([table["meanses"], table[column]]):
            assert np.isclose(band, point, rtol=1e-12, atol=0).all(axis=1).any(), (column, point)
    assert band[:, 1].min() == pytest.approx(table["ci_low"].min()) and band[:, 1].max() == pytest.approx(table["ci_high"].max())
    crse = fits["ols"].marginal_effect("cses", "meanses", kind="CR2", cluster="school", given={"catholic": 0})
    ax = plots.marginal_effect_plot(crse, band="lines", label="CR2")
    np.testing.assert_allclose(ax.lines[1].get_ydata(), crse["ci_low"])
    np.testing.assert_allclose(ax.lines[2].get_ydata(), crse["ci_high"])
    assert "95% confidence band" in [t.get_text() for t in ax.legend().get_texts()]


def test_caterpillar_plot_draws_the_blups_and_condvar_intervals(fits):
    hlm = fits["hlm"]
    ax = plots.caterpillar_plot(hlm, effect="Intercept", level=0.9)
    u, se = hlm.ranef["Intercept"].to_numpy(), hlm.ranef_se()["Intercept"].to_numpy()
    z = stats.norm.ppf(0.95)
    order = np.argsort(u, kind="stable")
    drawn = {}
    for k in (0, 1):
        rank, low, high = segments(ax.collections[k])
        np.testing.assert_allclose(ax.lines[k].get_ydata(), rank)
        for r, x, lo, hi in zip(rank, ax.lines[k].get_xdata(), low, high):
            drawn[int(r)] = (x, lo, hi)
    assert sorted(drawn) == list(range(len(u)))
    got = np.array([drawn[r] for r in range(len(u))])
    np.testing.assert_allclose(got[:, 0], u[order], rtol=1e-12)
    np.testing.assert_allclose(got[:, 1], u[order] - z * se[order], rtol=1e-10)
    np.testing.assert_allclose(got[:, 2], u[order] + z * se[order], rtol=1e-10)
    excludes = (u - z * se > 0) | (u + z * se < 0)
    assert len(ax.lines[1].get_xdata()) == excludes.sum() > 0           # the squares: intervals away from 0


def test_pooling_plot_draws_no_partial_and_complete_pooling(fits):
    fit = fits["rc"]
    groups = [1224, 8367]
    ax = plots.pooling_plot(fit, "cses", groups=groups)
    for k, school in enumerate(groups):
        rows = (HSB["school"] == school).to_numpy()
        x, y = HSB.loc[rows, "cses"].to_numpy(), HSB.loc[rows, "mathach"].to_numpy()
        slope, intercept = np.polyfit(x, y, 1)
        own = ax.lines[2 * k]
        np.testing.assert_allclose(own.get_ydata(), intercept + slope * own.get_xdata(), rtol=1e-10)
        np.testing.assert_allclose(own.get_xdata(), [x.min(), x.max()])
        eb = ax.lines[2 * k + 1]
        b = fit.ranef.loc[school]
        line = fit.params["Intercept"] + b["Intercept"] + (fit.params["cses"] + b["cses"]) * eb.get_xdata()
        np.testing.assert_allclose(eb.get_ydata(), line, rtol=1e-10)
        np.testing.assert_allclose(ax.collections[k].get_offsets(), np.column_stack([x, y]))
    slope, intercept = np.polyfit(HSB["cses"], HSB["mathach"], 1)
    pooled = ax.lines[-1]
    np.testing.assert_allclose(pooled.get_ydata(), intercept + slope * pooled.get_xdata(), rtol=1e-10)
    # default groups: spread over the group sizes, smallest and largest included
    sizes = HSB.groupby("school").size()
    ax = plots.pooling_plot(fit, "cses", max_groups=3)
    assert len(ax.collections) == 3
    drawn_sizes = sorted(len(c.get_offsets()) for c in ax.collections)
    assert drawn_sizes[0] == sizes.min() and drawn_sizes[-1] == sizes.max()


def test_qq_plots_draw_sorted_values_against_quantiles(fits):
    hlm = fits["hlm"]
    ax = plots.qq_plot(hlm, "ranef", effect="cses")
    standardised = np.sort((hlm.ranef["cses"] / hlm.ranef_se("marginal")["cses"]).to_numpy())
    np.testing.assert_allclose(ax.lines[0].get_ydata(), standardised, rtol=1e-12)
    n = standardised.size
    np.testing.assert_allclose(ax.lines[0].get_xdata(), stats.norm.ppf((np.arange(1, n + 1) - 0.5) / n))
    ax = plots.qq_plot(hlm, "mahalanobis")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.sort(hlm.mahalanobis()["distance"]), rtol=1e-12)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), stats.chi2(2).ppf((np.arange(1, n + 1) - 0.5) / n))
    ax = plots.qq_plot(hlm, "level1")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.sort(hlm.residuals(scaled=True)), rtol=1e-12)
    # R's ppoints: a = 3/8 up to 10 points
    np.testing.assert_allclose(plots.plotting_positions(5), (np.arange(1, 6) - 3 / 8) / (5 + 1 - 3 / 4))


def test_residual_plot_draws_residuals_against_fitted_values(fits):
    hlm, ols = fits["hlm"], fits["ols"]
    ax = plots.residual_plot(hlm, by="catholic")
    for k, sector in enumerate([0, 1]):
        rows = (HSB["catholic"] == sector).to_numpy()
        np.testing.assert_allclose(ax.collections[k].get_offsets(),
                                   np.column_stack([hlm.fitted["conditional"][rows], hlm.residuals()[rows]]))
    ax = plots.residual_plot(ols)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), np.column_stack([ols.fitted, ols.resid]))


def test_pooling_plot_refuses_a_model_with_other_level1_variables():
    fit = quiet(hlmlib.mixed, "mathach ~ cses + female + (cses | school)", HSB)
    with pytest.raises(hlmlib.InputError, match="not a line"):
        plots.pooling_plot(fit, "cses", groups=[1224])


def _two_level(seed=2, J=10, n=8, tau=1.0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    y = 1 + 0.5 * x + rng.normal(scale=tau, size=J)[g] + rng.normal(size=J * n)
    return pd.DataFrame({"y": y, "x": x, "g": g, "c": rng.choice(["a", "b", "c"], size=J * n)})


def _points(ax):
    return np.vstack([c.get_offsets() for c in ax.collections])


@pytest.mark.parametrize("model", ["mixed", "ols"])
def test_residual_plot_draws_rows_without_a_by_value_and_says_so(model):
    """NaN in by=: every residual is drawn (the NaN rows in grey, labelled with their count) with a warning,
    and no 'nan' legend entry; the rows line up after a row of the fit is dropped."""
    df = _two_level()
    df["s"] = pd.Series(np.where(df.g < 6, "A", "B"), dtype=object)
    df.loc[df.g < 3, "s"] = np.nan
    df.loc[5, "y"] = np.nan                                       # a dropped row before the by values
    fit = quiet(hlmlib.mixed, "y ~ x + (1 | g)", df) if model == "mixed" else quiet(hlmlib.ols, "y ~ x", df)
    fitted = fit.fitted["conditional"] if model == "mixed" else fit.fitted
    resid = fit.residuals() if model == "mixed" else fit.resid
    kept = df.drop(index=5)
    with pytest.warns(UserWarning, match="23 of 79 rows have no value of 's'"):
        ax = plots.residual_plot(fit, by="s")
    assert len(_points(ax)) == fit.nobs == 79
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["s = A", "s = B", "s missing (23)"]
    for k, rows in enumerate([kept.s == "A", kept.s == "B", kept.s.isna()]):
        rows = rows.to_numpy()
        np.testing.assert_allclose(ax.collections[k].get_offsets(),
                                   np.column_stack([np.asarray(fitted)[rows], np.asarray(resid)[rows]]))


def test_residual_plot_with_mixed_type_categories():
    df = _two_level()
    df["mix"] = pd.Series(np.where(df.g < 5, "a", "b"), dtype=object)
    df.loc[df.g < 3, "mix"] = 1
    ax = plots.residual_plot(quiet(hlmlib.mixed, "y ~ x + (1 | g)", df), by="mix")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["mix = 1", "mix = a", "mix = b"]
    assert [len(c.get_offsets()) for c in ax.collections] == [24, 16, 40]


def test_pooling_plot_refuses_a_string_column():
    fit = quiet(hlmlib.mixed, "y ~ x + (1 | g)", _two_level())
    with pytest.raises(hlmlib.InputError, match="'c' is object"):
        plots.pooling_plot(fit, "c")


def test_qq_plot_of_a_boundary_fit_says_the_variance_is_zero():
    for seed in range(40):
        fit = quiet(hlmlib.mixed, "y ~ x + (1 | g)", _two_level(seed, J=6, n=5, tau=0.0))
        if fit.tau.iloc[0, 0] == 0:
            break
    assert fit.tau.iloc[0, 0] == 0
    with pytest.raises(hlmlib.InputError, match="random-effect variance is 0"):
        plots.qq_plot(fit)
