"""The API people expect (issue 14): the data second after a formula, CR1 when a cluster comes without a kind,
two-way clustering only from a tuple, one name (kind=) for the covariance, the bootstrap's distribution=, the
deprecated names still working with a DeprecationWarning, warnings at the caller's line, and a light import."""
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import hlmlib
from hlmlib import InputError
from hlmlib.bootstrap import bootstrap_weights


@pytest.fixture(scope="module")
def hsb():
    return hlmlib.datasets.load_hsb()


@pytest.fixture(scope="module")
def fit(hsb):
    return hlmlib.ols("mathach ~ ses * catholic", hsb)


def same_frame(a, b):
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b), check_exact=True)


# ---------------------------------------------------------------------------------------------------------------
# the DataFrame as the second positional argument


@pytest.mark.parametrize("estimator, options", [
    (hlmlib.ols, {}),
    (hlmlib.fwls, {}),
    (hlmlib.within, {"groups": "school"}),
    (hlmlib.re_gls, {"groups": "school"}),
    (hlmlib.mundlak, {"groups": "school"}),
])
def test_formula_then_data_positionally(hsb, estimator, options):
    formula = "mathach ~ ses + female" if estimator is not hlmlib.fwls else "mathach ~ ses"
    a, b = estimator(formula, hsb, **options), estimator(formula, data=hsb, **options)
    np.testing.assert_array_equal(a.params, b.params)
    same_frame(a.summary("CR1", "school"), b.summary("CR1", "school"))


def test_formula_then_data_positionally_for_mixed_and_the_bootstrap(hsb):
    a = hlmlib.mixed("mathach ~ ses", hsb, groups="school")
    b = hlmlib.mixed("mathach ~ ses", data=hsb, groups="school")
    np.testing.assert_array_equal(a.params, b.params)
    assert a.llf == b.llf
    data = hsb.assign(school=hsb.school.where(np.arange(len(hsb)) % 40 != 0))   # missing clusters: dropped
    with pytest.warns(UserWarning, match="dropped listwise"):
        p = hlmlib.wild_cluster_bootstrap("mathach ~ ses", data, cluster="school", term="ses", B=99, seed=1)
    with pytest.warns(UserWarning, match="dropped listwise"):
        q = hlmlib.wild_cluster_bootstrap("mathach ~ ses", data=data, cluster="school", term="ses", B=99, seed=1)
    assert (p.pvalue, p.tstat) == (q.pvalue, q.tstat)


def test_arrays_keep_working_and_misplaced_data_is_refused(hsb):
    y, X = hsb.mathach.to_numpy(), np.column_stack([np.ones(len(hsb)), hsb.ses])
    np.testing.assert_array_equal(hlmlib.ols(y, X).params, hlmlib.ols(pd.Series(y), pd.DataFrame(X)).params)
    with pytest.raises(InputError, match="second argument is the data"):
        hlmlib.ols("mathach ~ ses", X)
    with pytest.raises(InputError, match="give the data once"):
        hlmlib.ols("mathach ~ ses", hsb, data=hsb)


# ---------------------------------------------------------------------------------------------------------------
# cluster= without kind= is CR1; kind= is the one name


def test_a_cluster_without_a_kind_means_cr1(fit):
    same_frame(fit.summary(cluster="school"), fit.summary("CR1", "school"))
    assert "Covariance CR1 by school" in fit.summary(cluster="school").caption
    same_frame(fit.vcov(cluster="school"), fit.vcov("CR1", "school"))
    np.testing.assert_array_equal(fit.se(cluster="school"), fit.se("CR1", "school"))
    assert fit.covariance(cluster="school").kind == "CR1"
    same_frame(fit.contrast({"ses": 1, "ses:catholic": 1}, cluster="school"),
               fit.contrast({"ses": 1, "ses:catholic": 1}, kind="CR1", cluster="school"))
    same_frame(fit.marginal_effect("ses", "catholic", at=[0, 1], cluster="school"),
               fit.marginal_effect("ses", "catholic", at=[0, 1], kind="CR1", cluster="school"))
    assert fit.wald_test(["catholic"], cluster="school").p == fit.wald_test(["catholic"], kind="CR1", cluster="school").p
    same_frame(fit.tidy(cluster="school"), fit.tidy(kind="CR1", cluster="school"))
    # and without a cluster, classical, as before
    same_frame(fit.summary(), fit.summary("classical"))
    # etable: a table-wide or a per-model cluster without a kind is CR1 too
    t = hlmlib.etable([fit], cluster="school")
    same_frame(t.se, hlmlib.etable([fit], kind="CR1", cluster="school").se)
    assert t.covariances.iloc[0] == "CR1 by school"
    u = hlmlib.etable({"a": (fit, dict(cluster="school")), "b": fit})
    assert list(u.covariances) == ["CR1 by school", "classical"]


def test_etable_kinds_is_deprecated_and_still_works(fit):
    with pytest.warns(DeprecationWarning, match="kinds= is deprecated") as caught:
        old = hlmlib.etable([fit, fit], kinds=["classical", "HC1"])
    assert caught[0].filename == __file__
    same_frame(old.frame, hlmlib.etable([fit, fit], kind=["classical", "HC1"]).frame)


def test_two_way_only_from_a_tuple_and_a_list_in_etable_is_per_model(hsb):
    petersen = hlmlib.datasets.load_petersen()
    m = hlmlib.ols("y ~ x", petersen)
    two_way = m.se("CR1", ("firm", "year"))
    # a list in etable is one cluster per model, never a two-way pair
    t = hlmlib.etable([m, m], cluster=["firm", "year"])
    assert list(t.covariances) == ["CR1 by firm", "CR1 by year"]
    np.testing.assert_array_equal(t.se.iloc[:, 0], m.se("CR1", "firm"))
    np.testing.assert_array_equal(t.se.iloc[:, 1], m.se("CR1", "year"))
    # a tuple is two-way, for every model or (in a per-model list) for one
    t = hlmlib.etable([m, m], cluster=[("firm", "year"), "firm"])
    np.testing.assert_array_equal(t.se.iloc[:, 0], two_way)
    assert t.covariances.iloc[0] == "CR1 by firm & year"
    np.testing.assert_array_equal(hlmlib.etable([m], cluster=("firm", "year")).se.iloc[:, 0], two_way)
    # a list of two cluster variables given to a method is the deprecated spelling of the tuple
    with pytest.warns(DeprecationWarning, match="pass a tuple") as caught:
        old = m.se("CR1", ["firm", "year"])
    assert caught[0].filename == __file__
    np.testing.assert_array_equal(old, two_way)


def test_bootstrap_distribution_and_its_deprecated_name(hsb):
    kwargs = dict(cluster="school", term="ses", B=199, seed=3)
    new = hlmlib.wild_cluster_bootstrap("mathach ~ ses", hsb, distribution="webb", **kwargs)
    with pytest.warns(DeprecationWarning, match="weights= is deprecated") as caught:
        old = hlmlib.wild_cluster_bootstrap("mathach ~ ses", hsb, weights="webb", **kwargs)
    assert caught[0].filename == __file__
    np.testing.assert_array_equal(new.tstar, old.tstar)
    assert new.distribution == "webb" and "webb draws" in repr(new)
    with pytest.warns(DeprecationWarning, match=r"\.weights is deprecated"):
        assert new.weights == "webb"
    with pytest.raises(InputError, match="give distribution= only"):
        hlmlib.wild_cluster_bootstrap("mathach ~ ses", hsb, weights="webb", distribution="webb", **kwargs)
    with pytest.warns(DeprecationWarning, match="kind= is deprecated"):
        np.testing.assert_array_equal(bootstrap_weights(5, 40, kind="webb", rng=1)[0],
                                      bootstrap_weights(5, 40, distribution="webb", rng=1)[0])


def test_marginal_effect_at_is_optional_for_ols_and_mixed(hsb):
    formula = "mathach ~ ses * meanses"
    ols_fit = hlmlib.ols(formula, hsb)
    hlm = hlmlib.mixed(formula + " + (1 | school)", hsb)
    grid = np.linspace(hsb.meanses.min(), hsb.meanses.max(), 25)
    for result in (ols_fit, hlm):
        default = result.marginal_effect("ses", "meanses")
        np.testing.assert_array_equal(default["meanses"], grid)
        same_frame(default, result.marginal_effect("ses", "meanses", at=grid))
    # a moderator that is only in the data (no main effect), read from the fit's own rows
    hlm2 = hlmlib.mixed("mathach ~ ses + ses:meanses + (1 | school)", hsb)
    np.testing.assert_array_equal(hlm2.marginal_effect("ses", "meanses")["meanses"], grid)


# ---------------------------------------------------------------------------------------------------------------
# warnings at the caller's line; a light import


@pytest.mark.parametrize("call", [
    lambda d: hlmlib.ols("mathach ~ ses", d),
    lambda d: hlmlib.fwls("mathach ~ ses", d),
    lambda d: hlmlib.within("mathach ~ ses", d, groups="school"),
    lambda d: hlmlib.re_gls("mathach ~ ses", d, groups="school"),
    lambda d: hlmlib.mundlak("mathach ~ ses", d, groups="school"),
    lambda d: hlmlib.mixed("mathach ~ ses + (1 | school)", d),
    lambda d: hlmlib.wild_cluster_bootstrap("mathach ~ ses", d, cluster="school", term="ses", B=9, seed=1),
], ids=["ols", "fwls", "within", "re_gls", "mundlak", "mixed", "wild_cluster_bootstrap"])
def test_listwise_deletion_warning_names_the_callers_file(hsb, call):
    data = hsb.assign(ses=hsb.ses.where(np.arange(len(hsb)) % 100 != 0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call(data)
    listwise = [w for w in caught if "dropped listwise" in str(w.message)]
    assert len(listwise) == 1 and listwise[0].filename == __file__


def test_import_loads_neither_matplotlib_nor_scipy_stats():
    code = ("import sys, hlmlib\n"
            "assert 'matplotlib' not in sys.modules and 'scipy.stats' not in sys.modules, "
            "sorted(m for m in sys.modules if m.startswith(('matplotlib', 'scipy.stats')))\n"
            "hlmlib.plots.use_book_style()\n"
            "assert 'matplotlib' in sys.modules\n"
            "from hlmlib import plots\n"
            "fit = hlmlib.ols('mathach ~ ses', hlmlib.datasets.load_hsb())\n"
            "fit.summary()\n"
            "assert 'scipy.stats' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
