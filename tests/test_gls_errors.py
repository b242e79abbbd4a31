"""hlmlib.gls on bad and unusual input: every public function's arguments walked with bad values (each must
raise hlmlib.InputError, never a raw NumPy/pandas/scipy error or a silent NaN), exact fits, and scale
equivariance of the variance steps across the double range."""
import warnings

import numpy as np
import pandas as pd
import pytest

import hlmlib
from hlmlib import InputError
from hlmlib.gls import fwls, hausman, mundlak, re_gls, within


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(3)
    G, n = 30, 5
    g = np.repeat(np.arange(G), n)
    u = rng.standard_normal(G)
    x = rng.standard_normal(G * n) + 0.5 * u[g]
    z = rng.standard_normal(G * n)
    y = 1 + 0.5 * x - 0.2 * z + u[g] + rng.standard_normal(G * n)
    return pd.DataFrame(dict(y=y, x=x, z=z, g=g))


@pytest.fixture(scope="module")
def fits(panel):
    return within("y ~ x + z", data=panel, groups="g"), re_gls("y ~ x + z", data=panel, groups="g")


BAD_PANEL_CALLS = {
    "groups missing": dict(groups=None),
    "groups wrong length": dict(groups=np.arange(7)),
    "groups 2-d": dict(groups=np.zeros((150, 2))),
    "groups with NaN": dict(groups=np.r_[np.nan, np.arange(149) % 30]),
    "one group": dict(groups=np.zeros(150)),
    "groups column absent": dict(groups="school"),
}
BAD_RE_CALLS = {
    "variance_components (nan, 1)": dict(variance_components=(np.nan, 1.0)),
    "variance_components (1, nan)": dict(variance_components=(1.0, np.nan)),
    "variance_components (inf, 1)": dict(variance_components=(np.inf, 1.0)),
    "variance_components (0, 1)": dict(variance_components=(0.0, 1.0)),
    "variance_components (1, -1)": dict(variance_components=(1.0, -1.0)),
    "variance_components one number": dict(variance_components=1.0),
    "variance_components three numbers": dict(variance_components=(1.0, 1.0, 1.0)),
    "variance_components strings": dict(variance_components=("1", "2")),
    "variance_components a string": dict(variance_components="12"),
    "variance_components booleans": dict(variance_components=(True, True)),
    "variance_components complex": dict(variance_components=(1 + 1j, 1.0)),
    "sigma2_u_method unknown": dict(sigma2_u_method="swar"),
    "sigma2_u_method not a string": dict(sigma2_u_method=1),
}


def _raises_input_error(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError) as info:
            call()
    return str(info.value)


@pytest.mark.parametrize("estimator", [within, re_gls, mundlak])
@pytest.mark.parametrize("case", list(BAD_PANEL_CALLS))
def test_panel_estimators_refuse_bad_groups(panel, estimator, case):
    _raises_input_error(lambda: estimator("y ~ x + z", data=panel, **BAD_PANEL_CALLS[case]))


@pytest.mark.parametrize("estimator", [re_gls, mundlak])
@pytest.mark.parametrize("case", list(BAD_RE_CALLS))
def test_random_effects_estimators_refuse_bad_arguments(panel, estimator, case):
    message = _raises_input_error(lambda: estimator("y ~ x + z", data=panel, groups="g", **BAD_RE_CALLS[case]))
    assert next(iter(BAD_RE_CALLS[case])) in message


BAD_FWLS_CALLS = {
    "method unknown": dict(method="log"),
    "method not a string": dict(method=None),
    "variance wrong rows": dict(variance=np.ones(7)),
    "variance NaN": dict(variance=np.r_[np.nan, np.ones(149)]),
    "variance 3-d": dict(variance=np.ones((150, 1, 1))),
    "variance no columns": dict(variance=np.ones((150, 0))),
    "variance strings": dict(variance=np.array(["a"] * 150)),
    "variance an object": dict(variance=object()),
    "variance formula of an absent column": dict(variance="~ I(w**2)"),
    "variance formula with only a constant": dict(variance="~ 1"),
}


@pytest.mark.parametrize("case", list(BAD_FWLS_CALLS))
def test_fwls_refuses_bad_arguments(panel, case):
    _raises_input_error(lambda: fwls("y ~ x + z", data=panel, **BAD_FWLS_CALLS[case]))


def test_hausman_refuses_bad_arguments(panel, fits):
    fe, re = fits
    mx = hlmlib.mixed("y ~ x + z", data=panel, groups="g")
    bad = {
        "fe a DataFrame": lambda: hausman(panel, re),
        "re a string": lambda: hausman(fe, "re"),
        "mixed as fe": lambda: hausman(mx, re),
        "kind a number": lambda: hausman(fe, re, kind=3),
        "kind unknown": lambda: hausman(fe, re, kind="HC9"),
        "kind cluster-robust": lambda: hausman(fe, re, kind="CR2"),
        "mixed with HC1": lambda: hausman(fe, mx, kind="HC1"),
        "terms absent": lambda: hausman(fe, re, terms=["w"]),
        "terms empty": lambda: hausman(fe, re, terms=[]),
        "sigmamore a string": lambda: hausman(fe, re, sigmamore="yes"),
        "sigmamore 1": lambda: hausman(fe, re, sigmamore=1),
        "sigmamore with HC1": lambda: hausman(fe, re, kind="HC1", sigmamore=True),
        "rtol NaN": lambda: hausman(fe, re, rtol=np.nan),
        "rtol negative": lambda: hausman(fe, re, rtol=-1e-8),
        "rtol one": lambda: hausman(fe, re, rtol=1.0),
        "rtol a string": lambda: hausman(fe, re, rtol="1e-8"),
    }
    for case, call in bad.items():
        _raises_input_error(call)
    # a single term given as a string is that term, not its letters
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")              # this panel's own-sigma difference is not positive definite
        assert hausman(fe, re, terms="x").terms == ["x"]


def test_constant_y_is_reported_as_such(panel):
    flat = panel.assign(y=3.0)
    for estimator in (re_gls, mundlak):
        message = _raises_input_error(lambda: estimator("y ~ x + z", data=flat, groups="g"))
        assert "y is constant" in message and "all zeros" not in message
    message = _raises_input_error(lambda: fwls("y ~ x + z", data=flat))
    assert "fits y exactly" in message
    # y exactly linear in X within groups: sigma_e^2 = 0, said so
    exact = panel.assign(y=1 + 2 * panel.x + panel.g)
    assert "fits y exactly" in _raises_input_error(lambda: re_gls("y ~ x + z", data=exact, groups="g"))


def _no_warnings(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


# y in 1e-250..1e250 (the variance steps are scaled internally); the standard errors are those of the final
# OLS on transformed data, checked where hlmlib.ols itself is exact (|scale| within 1e+-150 here).
Y_SCALES = [1e-250, 1e-150, 1e-30, 1e30, 1e150, 1e250]


@pytest.mark.parametrize("c", Y_SCALES)
def test_panel_estimators_are_scale_equivariant_in_y(panel, c):
    for estimator, kw in ((re_gls, {}), (re_gls, dict(sigma2_u_method="baltagi-chang")), (mundlak, {}),
                          (within, {})):
        base = estimator("y ~ x + z", data=panel, groups="g", **kw)
        with warnings.catch_warnings():
            # inside hlmlib.ols's exact range no warning at all; beyond it sigma^2 in y^2 units leaves the range
            warnings.simplefilter("error" if abs(np.log10(c)) < 150 else "ignore")
            scaled = estimator("y ~ x + z", data=panel.assign(y=panel.y * c), groups="g", **kw)
        np.testing.assert_allclose(scaled.params.to_numpy() / c, base.params.to_numpy(), rtol=1e-10)
        if "theta" in base.details:
            np.testing.assert_allclose(scaled.details["theta"], base.details["theta"], rtol=1e-12)
        if abs(np.log10(c)) <= 150:
            np.testing.assert_allclose(scaled.se().to_numpy() / c, base.se().to_numpy(), rtol=1e-10)
            if "sigma2_u" in base.details:
                assert scaled.details["sigma2_u"] / c ** 2 == pytest.approx(base.details["sigma2_u"], rel=1e-10)


def test_variance_components_outside_the_double_range_warn(panel):
    with pytest.warns(UserWarning, match="outside the double range"):
        with np.errstate(over="ignore"):              # hlmlib.ols's own rss at this scale (issue 11's part)
            fit = re_gls("y ~ x + z", data=panel.assign(y=panel.y * 1e250), groups="g")
    assert np.isinf(fit.details["sigma2_e"]) and np.isfinite(fit.params).all()


@pytest.mark.parametrize("c", Y_SCALES)
@pytest.mark.parametrize("method", ["nnls", "exp"])
def test_fwls_is_scale_equivariant_in_y(c, method):
    df = hlmlib.simulate.random_coefficient(300, seed=8)
    base = fwls("y ~ x * z", data=df, method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # variance parameters in y^2 units may leave the double range
        scaled = fwls("y ~ x * z", data=df.assign(y=df.y * c), method=method)
    np.testing.assert_allclose(scaled.details["weights"], base.details["weights"], rtol=1e-10)
    np.testing.assert_allclose(scaled.params.to_numpy() / c, base.params.to_numpy(), rtol=1e-10)
    if abs(np.log10(c)) <= 150:
        np.testing.assert_allclose(scaled.se("HC1").to_numpy() / c, base.se("HC1").to_numpy(), rtol=1e-10)


@pytest.mark.parametrize("c", [1e-150, 1e-60, 1e60, 1e150])
def test_fwls_and_re_gls_are_scale_equivariant_in_a_column(panel, c):
    df = hlmlib.simulate.random_coefficient(300, seed=8)
    base = fwls("y ~ x * z", data=df)
    scaled = _no_warnings(lambda: fwls("y ~ x * z", data=df.assign(x=df.x * c)))
    assert list(scaled.details["variance_params"].index) == ["1", "x^2", "z^2"]
    np.testing.assert_allclose(scaled.details["weights"], base.details["weights"], rtol=1e-9)
    np.testing.assert_allclose(scaled.params[["x", "x:z"]] * c, base.params[["x", "x:z"]], rtol=1e-9)
    np.testing.assert_allclose(scaled.se()[["x", "x:z"]] * c, base.se()[["x", "x:z"]], rtol=1e-9)
    for estimator in (re_gls, mundlak):
        b = estimator("y ~ x + z", data=panel, groups="g")
        s = _no_warnings(lambda: estimator("y ~ x + z", data=panel.assign(x=panel.x * c), groups="g"))
        np.testing.assert_allclose(s.details["theta"], b.details["theta"], rtol=1e-10)
        np.testing.assert_allclose(s.params["x"] * c, b.params["x"], rtol=1e-9)
        np.testing.assert_allclose(s.se()["x"] * c, b.se()["x"], rtol=1e-9)


def test_more_refusals_with_clear_messages(panel, fits):
    fe, re = fits
    X = np.column_stack([np.ones(len(panel)), panel.x, panel.z])
    assert "no columns" in _raises_input_error(lambda: re_gls(panel.y, np.empty((len(panel), 0)), groups=panel.g))
    assert "fixed effects first" in _raises_input_error(lambda: hausman(re, fe))
    assert "repeats a term" in _raises_input_error(lambda: hausman(fe, re, terms=["x", "x"]))
    # sigma_e^2 -> 0: the weights are 1 everywhere and the group-constant columns are not identified; said so
    message = _raises_input_error(lambda: re_gls(panel.y, X, groups=panel.g, variance_components=(1e-300, 1.0)))
    assert "within estimator" in message and "x0" in message and "all zeros" not in message


def test_duplicated_index_labels_never_give_a_silently_different_fit(panel):
    """A duplicated index label (pd.concat without ignore_index) must give the fit of the reset index or a clear error,
    never a different number."""
    dup = panel.copy()
    dup.index = [0] + list(range(len(panel) - 1))
    for estimator in (within, re_gls, mundlak):
        base = estimator("y ~ x + z", data=panel, groups="g")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fit = estimator("y ~ x + z", data=dup, groups="g")
            except InputError as err:
                assert "duplicated" in str(err)
                continue
        np.testing.assert_allclose(fit.params.to_numpy(), base.params.to_numpy(), rtol=1e-12)
        np.testing.assert_allclose(fit.se("CR1", "g").to_numpy(), base.se("CR1", "g").to_numpy(), rtol=1e-12)
