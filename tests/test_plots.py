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


def test_marginal_effect_plot_draws_an_unsorted_table_in_moderator_order(fits):
    """at= in data order (unsorted): the line, the band's edges and the filled polygon follow the moderator, so
    the band is the sorted table's (fill_between in table order would cross itself)."""
    at = HSB["meanses"].unique()[:9]
    assert (np.diff(at) < 0).any()
    table = fits["ols"].marginal_effect("cses", "meanses", at=at, given={"catholic": 0})
    order = np.argsort(at)
    for band in ("fill", "lines"):
        ax = plots.marginal_effect_plot(table, band=band, ax=plt.subplots()[1])
        np.testing.assert_array_equal(ax.lines[0].get_xdata(), at[order])
        np.testing.assert_allclose(ax.lines[0].get_ydata(), table["estimate"].to_numpy()[order], rtol=1e-12)
        if band == "lines":
            for k, column in ((1, "ci_low"), (2, "ci_high")):
                np.testing.assert_array_equal(ax.lines[k].get_xdata(), at[order])
                np.testing.assert_allclose(ax.lines[k].get_ydata(), table[column].to_numpy()[order], rtol=1e-12)
            continue
        polygon = ax.collections[0].get_paths()[0]
        for z, low, high in zip(at, table["ci_low"], table["ci_high"]):     # inside at each z, only in [low, high]
            for y, inside in ((low + 0.01 * (high - low), True), ((low + high) / 2, True),
                              (high - 0.01 * (high - low), True), (low - 0.05 * (high - low), False),
                              (high + 0.05 * (high - low), False)):
                if z not in (at.min(), at.max()):
                    assert polygon.contains_point((z, y)) == inside, (z, y, inside)


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


# ---- Monte Carlo results, grouped data, shrinkage

def _rates():
    return pd.DataFrame({"A": [0.21, 0.12, 0.07], "B": [0.05, np.nan, 0.0]},
                        index=pd.Index([5, 10, 20], name="number of clusters G"))


def test_mc_rate_plot_draws_rates_band_and_intervals():
    from statsmodels.stats.proportion import proportion_confint
    rates, R = _rates(), 2000
    ax = plots.mc_rate_plot(rates, R, intervals="wilson", styles={"B": {"color": "#000000", "marker": "x"}},
                            logx=True)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [5, 10, 20])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), rates["A"])
    np.testing.assert_allclose(ax.lines[1].get_xdata(), [5, 20])                  # the NaN left out
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.05, 0.0])
    assert ax.lines[1].get_color() == "#000000" and ax.lines[1].get_marker() == "x"
    low, high = proportion_confint(np.round(rates["A"] * R), R, alpha=0.05, method="wilson")
    segs = np.array(ax.collections[0].get_segments())
    np.testing.assert_allclose(segs[:, 0, 1], low, rtol=1e-10)
    np.testing.assert_allclose(segs[:, 1, 1], high, rtol=1e-10)
    band = ax.patches[0]
    half = stats.norm.ppf(0.975) * np.sqrt(0.05 * 0.95 / R)
    np.testing.assert_allclose([band.get_y(), band.get_y() + band.get_height()], [0.05 - half, 0.05 + half])
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "number of clusters G"
    assert [t.get_text() for t in ax.legend().get_texts()] == ["A", "B"]
    # binomial intervals at 90%, coverage rates around 0.95, no band
    ax = plots.mc_rate_plot(rates[["A"]], 500, nominal=0.95, level=0.9, band=False, intervals="binomial")
    p, z = rates["A"].to_numpy(), stats.norm.ppf(0.95)
    segs = np.array(ax.collections[0].get_segments())
    np.testing.assert_allclose(segs[:, 0, 1], p - z * np.sqrt(p * (1 - p) / 500))
    assert not ax.patches and ax.lines[-1].get_ydata()[0] == 0.95 and ax.get_ylabel() == "coverage rate"
    ax = plots.mc_rate_plot(rates, band=False, dodge=0.5)                       # series moved apart
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [4.75, 9.75, 19.75])
    np.testing.assert_allclose(ax.lines[1].get_xdata(), [5.25, 20.25])


def test_mc_estimate_plot_draws_estimates_intervals_and_theory():
    est = pd.DataFrame({"OLS": [0.1, 0.3], "RE": [0.05, 0.15]}, index=pd.Index([0.0, 0.6], name="r"))
    se = pd.DataFrame({"OLS": [0.01, 0.02], "RE": [0.01, 0.01]}, index=est.index)
    grid = np.linspace(0, 0.6, 7)
    theory = pd.DataFrame({"OLS": grid / 2, "bound": np.full(7, 0.2)}, index=grid)
    ax = plots.mc_estimate_plot(est, se, theory=theory, level=0.9, reference=0.0)
    z = stats.norm.ppf(0.95)
    for k, name in enumerate(est.columns):
        container = ax.containers[k]
        np.testing.assert_allclose(container.lines[0].get_ydata(), est[name])
        segs = np.array(container.lines[2][0].get_segments())
        np.testing.assert_allclose(segs[:, 0, 1], est[name] - z * se[name])
        np.testing.assert_allclose(segs[:, 1, 1], est[name] + z * se[name])
        assert container.lines[0].get_linestyle() == "None"                       # markers only
    curve, bound = ax.lines[0], ax.lines[1]
    np.testing.assert_allclose(curve.get_ydata(), grid / 2)
    assert curve.get_color() == ax.containers[0].lines[0].get_color()          # the series' colour
    assert [t.get_text() for t in ax.legend().get_texts()] == ["bound", "OLS", "RE"]
    assert ax.lines[-1].get_ydata()[0] == 0.0
    ax = plots.mc_estimate_plot(est, connect=True)                             # no se: no error bars
    assert ax.containers[0].lines[0].get_linestyle() != "None" and not ax.containers[0].has_yerr
    est.index = [5.0, 30.0]
    ax = plots.mc_estimate_plot(est, logx=True, dodge=0.1)                      # on a log axis, by factors
    np.testing.assert_allclose(ax.containers[1].lines[0].get_xdata(), est.index * np.exp(0.05))


def test_sampling_plot_draws_histograms_densities_truth_and_reference():
    rng = np.random.default_rng(4)
    draws = {"a": rng.normal(size=500), "b": rng.normal(0.5, 2, size=500)}
    ax = plots.sampling_plot(draws, bins=20, range=(-4, 4), truth=0.0, means=True)
    for k, values in enumerate(draws.values()):
        counts, edges = np.histogram(values, bins=20, range=(-4, 4))
        xy = ax.patches[k].get_xy()
        np.testing.assert_allclose(xy[1:-1:2, 1], counts / (values.size * np.diff(edges)))   # density of ALL draws
        np.testing.assert_allclose(xy[0::2, 0], edges)
        assert ax.lines[k].get_xdata()[0] == pytest.approx(values.mean())      # the mean lines
    assert ax.lines[-1].get_xdata()[0] == 0.0
    ax = plots.sampling_plot(draws["a"], kind="bar", bins=10, reference=stats.norm.pdf, reference_label="N(0, 1)")
    heights, _ = np.histogram(draws["a"], bins=10, density=True)
    np.testing.assert_allclose([p.get_height() for p in ax.patches], heights)
    grid = ax.lines[0].get_xdata()
    np.testing.assert_allclose(ax.lines[0].get_ydata(), stats.norm.pdf(grid))
    ax = plots.sampling_plot(draws, kind="kde", range=(-3, 3))
    for k, values in enumerate(draws.values()):
        line = ax.lines[k]
        np.testing.assert_allclose(line.get_ydata(), stats.gaussian_kde(values)(line.get_xdata()))
        np.testing.assert_allclose(line.get_xdata()[[0, -1]], [-3, 3])


def test_group_lines_plot_draws_each_groups_line_and_the_pooled_line():
    df = _two_level(seed=3, J=4, n=6)
    ax = plots.group_lines_plot(df, "x", "y", "g", groups=[2, 0])
    for k, g in enumerate([2, 0]):
        rows = df.g == g
        slope, intercept = np.polyfit(df.x[rows], df.y[rows], 1)
        line = ax.lines[k]
        np.testing.assert_allclose(line.get_xdata(), [df.x[rows].min(), df.x[rows].max()])
        np.testing.assert_allclose(line.get_ydata(), intercept + slope * line.get_xdata())
        np.testing.assert_allclose(ax.collections[k].get_offsets(), df.loc[rows, ["x", "y"]])
    slope, intercept = np.polyfit(df.x, df.y, 1)                                # every row, not only the groups drawn
    np.testing.assert_allclose(ax.lines[-1].get_ydata(), intercept + slope * ax.lines[-1].get_xdata())
    given = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.5, 0.0, -0.5, 1.0]})
    ax = plots.group_lines_plot(df, "x", "y", "g", lines=given, points=False, pooled=False, span="all",
                                color="#0072B2")
    assert len(ax.lines) == 4 and not ax.collections
    for g, line in enumerate(ax.lines):
        np.testing.assert_allclose(line.get_xdata(), [df.x.min(), df.x.max()])
        np.testing.assert_allclose(line.get_ydata(), given.a[g] + given.b[g] * line.get_xdata())


def test_shrinkage_plot_draws_own_and_eb_estimates(fits):
    null = quiet(hlmlib.mixed, "mathach ~ 1 + (1 | school)", HSB)
    ax = plots.shrinkage_plot(null)
    by_school = HSB.groupby("school")["mathach"]
    own, eb = ax.collections[0].get_offsets(), ax.collections[1].get_offsets()
    np.testing.assert_allclose(own[:, 0], by_school.size())
    np.testing.assert_allclose(own[:, 1], by_school.mean(), rtol=1e-10)           # the school means
    np.testing.assert_allclose(eb[:, 1], null.params["Intercept"] + null.ranef["Intercept"], rtol=1e-10)
    assert ax.lines[0].get_ydata()[0] == pytest.approx(null.params["Intercept"])
    arrow = ax.texts[0]
    np.testing.assert_allclose([arrow.xyann[1], arrow.xy[1]], [own[0, 1], eb[0, 1]])
    # a random slope against its reliability: the school's own OLS slope
    rc = fits["rc"]
    ax = plots.shrinkage_plot(rc, "cses", against="reliability")
    own = ax.collections[0].get_offsets()
    slopes = [np.polyfit(d.cses, d.mathach, 1)[0] for _, d in HSB.groupby("school")]
    np.testing.assert_allclose(own[:, 1], slopes, rtol=1e-8)
    np.testing.assert_allclose(own[:, 0], quiet(rc.reliability, per_group=True)["cses"])
    # with level-2 predictors: deviations from W_j gamma, centred on 0
    hlm = fits["hlm"]
    ax = plots.shrinkage_plot(hlm, "Intercept")
    first = HSB[HSB.school == hlm.group_labels[0]]
    b0 = np.polyfit(first.cses, first.mathach, 1)[1]
    w = hlm.params[["Intercept", "catholic", "meanses"]] @ np.array([1.0, first.catholic.iloc[0],
                                                                      first.meanses.iloc[0]])
    assert ax.collections[0].get_offsets()[0, 1] == pytest.approx(b0 - w, rel=1e-8)
    assert ax.lines[0].get_ydata()[0] == 0.0


def _unbalanced(seed=5, sizes=(1, 1, 2, 3, 5, 8, 13, 21, 4, 9)):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(len(sizes)), sizes)
    x, v = rng.normal(2, 1.5, g.size), rng.normal(size=g.size)
    y = 1 + 0.5 * x - 0.4 * v + rng.normal(0, 0.8, len(sizes))[g] + rng.normal(0, 0.4, len(sizes))[g] * x \
        + rng.normal(0, 1.2, g.size)
    return pd.DataFrame({"y": y, "x": x, "v": v, "g": [f"g{j:02d}" for j in g]})


def test_shrinkage_plot_with_a_fixed_level1_slope_draws_what_the_eb_estimate_shrinks():
    """Round 6, finding 2: with x's slope fixed, the own point is the group's mean of y - X beta-hat (plus the
    centre), not the intercept of the group's own regression, so the EB point lies between it and the centre at
    the ratio lambda_j = tau / (tau + sigma^2 / n_j) in every group (singletons included)."""
    df = _unbalanced()
    fit = quiet(hlmlib.mixed, "y ~ x + (1 | g)", df)
    lam = fit.shrinkage_factor().to_numpy()
    for against, xs in [("size", df.groupby("g").size().to_numpy()), ("reliability", lam)]:
        ax = plots.shrinkage_plot(fit, against=against)
        own, eb = ax.collections[0].get_offsets(), ax.collections[1].get_offsets()
        centre = ax.lines[0].get_ydata()[0]
        assert centre == pytest.approx(fit.params["Intercept"])
        np.testing.assert_allclose(np.asarray(own[:, 0], float), xs, rtol=1e-12)
        residual_mean = (df.y - fit.params["x"] * df.x).groupby(df.g).mean().to_numpy()
        np.testing.assert_allclose(np.asarray(own[:, 1], float), residual_mean, rtol=1e-10)
        ratio = (np.asarray(eb[:, 1], float) - centre) / (np.asarray(own[:, 1], float) - centre)
        np.testing.assert_allclose(ratio, lam, rtol=1e-8)
    # random slopes with a fixed level-1 slope: the EB vector is S_j times the drawn own vector
    fit = quiet(hlmlib.mixed, "y ~ x + v + (x | g)", df)
    with pytest.warns(UserWarning, match="2 of 10 groups"):                    # the singletons
        own = np.column_stack([np.asarray(plots.shrinkage_plot(fit, effect).collections[0].get_offsets()[:, 1], float)
                               - fit.params[effect] for effect in ("Intercept", "x")])
    usable = df.groupby("g").size().to_numpy() > 1
    np.testing.assert_allclose(np.einsum("jab,jb->ja", fit.shrinkage()[usable], own),
                               fit.ranef.to_numpy()[usable], rtol=1e-8, atol=1e-12)


def test_pooling_plot_default_groups_are_those_with_a_line_of_their_own():
    """Round 6, finding 3: with singleton groups the default choice skips them (the smallest group drawn has two
    rows); a singleton chosen explicitly is refused, naming it; x constant in every group is refused."""
    df = _unbalanced()
    fit = quiet(hlmlib.mixed, "y ~ x + (1 | g)", df)
    ax = plots.pooling_plot(fit, "x", max_groups=4)
    drawn = sorted(len(c.get_offsets()) for c in ax.collections)
    assert len(drawn) == 4 and drawn[0] == 2 and drawn[-1] == 21
    with pytest.raises(hlmlib.InputError, match="'x' is constant in group 'g00'"):
        plots.pooling_plot(fit, "x", groups=["g00", "g07"])
    df["w"] = df.groupby("g").x.transform("mean")
    fit = quiet(hlmlib.mixed, "y ~ w + (1 | g)", df)
    with pytest.raises(hlmlib.InputError, match="'w' is constant within every group"):
        plots.pooling_plot(fit, "w")


def test_coef_plot_reference_and_styles_and_a_band_alone(fits):
    ratio = pd.DataFrame({"estimate": [1.2, 0.9], "ci_low": [1.1, 0.8], "ci_high": [1.3, 1.0]}, index=["a", "b"])
    ax = plots.coef_plot({"CR": ratio}, styles={"CR": {"color": "#D55E00", "marker": "s"}}, reference=1.0)
    assert ax.lines[0].get_color() == "#D55E00" and ax.lines[0].get_marker() == "s"
    assert ax.lines[-1].get_xdata()[0] == 1.0
    table = fits["hlm"].marginal_effect("cses", "meanses", given={"catholic": 0})
    ax = plots.marginal_effect_plot(table, band="lines", show_estimate=False, zero_line=False,
                                    band_style={"linestyle": ":", "label": "95% CI, model"})
    assert len(ax.lines) == 2 and ax.lines[0].get_linestyle() == ":"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), table["ci_low"])
    assert [t.get_text() for t in ax.legend().get_texts()] == ["95% CI, model"]


# --- adversarial review round 4 -------------------------------------------------------------------------------

def test_sampling_plot_bars_are_the_density_of_all_draws_when_a_range_cuts_some_off():
    """A range (or edges) narrower than the draws: each bar is count / (n * width) with n all the draws, so the
    bars integrate to the share shown and match the density they are compared with (numpy's density=True would
    rescale them to integrate to 1, here by 1/0.68)."""
    a = np.random.default_rng(0).normal(size=2000)
    for kind, options in (("step", {"bins": 10, "range": (-1, 1)}), ("bar", {"bins": np.linspace(-1, 1, 11)})):
        ax = plots.sampling_plot(a, kind=kind, **options)
        heights = (ax.patches[0].get_xy()[1:-1:2, 1] if kind == "step"
                   else np.array([p.get_height() for p in ax.patches]))
        counts, edges = np.histogram(a, bins=10, range=(-1, 1))
        np.testing.assert_allclose(heights, counts / (a.size * 0.2), rtol=1e-12)
        assert np.sum(heights * np.diff(edges)) == pytest.approx(np.mean(np.abs(a) <= 1), rel=1e-12)
    with pytest.raises(hlmlib.InputError, match="constant: they have no kernel density"):
        plots.sampling_plot({"flat": np.ones(50)}, kind="kde")


def test_coef_plot_labels_the_tables_own_level_and_refuses_a_conflicting_alpha(fits):
    ols = fits["ols"]
    assert plots.coef_plot(ols.summary(alpha=0.1)).get_xlabel() == "estimate with 90% confidence interval"
    ax = plots.coef_plot([ols.summary(alpha=0.1), ols], terms=["cses"])       # the fit follows the table's level
    np.testing.assert_allclose(segments(ax.collections[1])[1], ols.summary(alpha=0.1).loc[["cses"], "ci_low"])
    with pytest.raises(hlmlib.InputError, match="hold intervals of another level"):
        plots.coef_plot(ols.summary(alpha=0.05), alpha=0.1)
    with pytest.raises(hlmlib.InputError, match="different levels"):
        plots.coef_plot([ols.summary(alpha=0.1), ols.summary()])
    ratio = pd.DataFrame({"estimate": [1.2], "ci_low": [1.1], "ci_high": [1.3]}, index=["a"])
    assert plots.coef_plot(ratio).get_xlabel() == "estimate with interval"     # a level it cannot know
    assert plots.coef_plot(ols, alpha=0.1).get_xlabel() == "estimate with 90% confidence interval"


def test_group_lines_plot_refuses_repeated_lines_and_names_a_bad_colour():
    df = _two_level(seed=3, J=4, n=6)
    lines = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.5, -0.5, 1.5]}, index=[0, 1, 0])
    with pytest.raises(hlmlib.InputError, match=r"several rows for the group\(s\) \[0\]"):
        plots.group_lines_plot(df, "x", "y", "g", lines=lines, groups=[0], pooled=False)
    with pytest.raises(hlmlib.InputError, match=r"not matplotlib colours .*\{0: 'zz'\}"):
        plots.group_lines_plot(df, "x", "y", "g", groups=[0], color={0: "zz"})
    with pytest.raises(hlmlib.InputError, match=r"has none for \[1\]"):
        plots.group_lines_plot(df, "x", "y", "g", groups=[0, 1], color={0: "red"})
    with pytest.raises(hlmlib.InputError, match="empty DataFrame"):
        plots.group_lines_plot(df.iloc[:0], "x", "y", "g")


def test_mc_plots_refuse_a_missing_se_beside_an_estimate_and_name_repeated_columns():
    est = pd.DataFrame({"a": [1.0, 2.0, np.nan], "b": [0.5, 0.7, 0.9]}, index=[5, 10, 20])
    se = pd.DataFrame({"a": [0.1, 0.2, np.nan], "b": [0.05, np.nan, 0.1]}, index=[5, 10, 20])
    with pytest.raises(hlmlib.InputError, match=r"se is NaN beside an estimate .*\(np.int64\(10\), 'b'\)|"
                                                r"se is NaN beside an estimate .*\(10, 'b'\)"):
        plots.mc_estimate_plot(est, se)
    ax = plots.mc_estimate_plot(est, se.fillna({"b": 0.02}))                  # NaN beside NaN: nothing drawn
    assert len(ax.containers[0].lines[0].get_xdata()) == 2
    for call in (lambda t: plots.mc_rate_plot(t, 1000), lambda t: plots.mc_estimate_plot(t)):
        with pytest.raises(hlmlib.InputError, match=r"repeated column name\(s\) \['A'\]"):
            call(pd.DataFrame([[0.05, 0.06], [0.04, 0.05]], index=[10, 20], columns=["A", "A"]))
