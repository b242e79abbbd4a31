"""lrtest(..., bootstrap=B): the parametric-bootstrap likelihood-ratio test against pbkrtest's PBmodcomp, and
its behaviour under the null.

Fixture: tests/fixtures/pbmodcomp.json, written by tests/fixtures/pbmodcomp.R (PBmodcomp with nsim = 10000 on
8 HSB schools: a random slope, and the level-2 fixed effect meanses under ML). Two Monte Carlo estimates of the
same p-value, from B1 and B2 independent draws, differ by less than 4 sqrt(p (1 - p) (1/B1 + 1/B2)) but with
probability about 6e-5; the whole reference distributions are compared the same way (a two-sample
Kolmogorov-Smirnov bound at level 1e-4).
"""
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import hlmlib
from hlmlib import InputError, lmm_bootstrap
from hlmlib.mixed import BoundaryFitWarning

PB = json.loads((Path(__file__).parent / "fixtures" / "pbmodcomp.json").read_text())
B_HLM = 2000


def _fit(formula, data, re="~ 1", reml=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        return hlmlib.mixed(formula, data=data, groups="school", re=re, reml=reml)


@pytest.fixture(scope="module")
def few_schools():
    hsb = hlmlib.datasets.load_hsb()
    return hsb[hsb.school.isin(PB["schools"])]


@pytest.fixture(scope="module")
def small(few_schools):
    return _fit("mathach ~ cses", few_schools)


@pytest.fixture(scope="module")
def tests(few_schools, small):
    bigs = {"random_slope": _fit("mathach ~ cses", few_schools, re="~ cses"),
            "level2_fixed": _fit("mathach ~ cses + meanses", few_schools)}
    return {name: (big, hlmlib.lrtest(small, big, bootstrap=B_HLM, seed=20240612)) for name, big in bigs.items()}


@pytest.mark.parametrize("name", ["random_slope", "level2_fixed"])
def test_statistic_and_asymptotic_p_are_kept(tests, small, name):
    big, result = tests[name]
    ref = PB[name]
    assert len(small.group_labels) == 8 and small.nobs == PB["nobs"]
    assert result.statistic == pytest.approx(ref["statistic"], rel=1e-6)
    asymptotic = hlmlib.lrtest(small, big)
    assert result.pvalue == asymptotic.pvalue and result.reference == asymptotic.reference
    if name == "level2_fixed":
        assert result.pvalue == pytest.approx(ref["p_chisq"], rel=1e-5)


@pytest.mark.parametrize("name", ["random_slope", "level2_fixed"])
def test_bootstrap_p_agrees_with_pbmodcomp_within_monte_carlo_error(tests, name):
    _, result = tests[name]
    ref, boot = PB[name], tests[name][1].bootstrap
    B1, B2 = boot.n_used, PB["nsim"]
    for ours, theirs in [(boot.pvalue, ref["p_all"]), (boot.pvalue_positive, ref["p_pbmodcomp"])]:
        p = (ours * B1 + theirs * B2) / (B1 + B2)
        assert abs(ours - theirs) < 4 * np.sqrt(p * (1 - p) * (1 / B1 + 1 / B2)), (name, ours, theirs)
    # the asymptotic references are off by more than that here (few groups): the comparison can tell
    p = ref["p_all"]
    assert abs(result.pvalue - p) > 4 * np.sqrt(p * (1 - p) * (1 / B1 + 1 / B2))


@pytest.mark.parametrize("name", ["random_slope", "level2_fixed"])
def test_reference_distribution_matches_pbmodcomps(tests, name):
    boot = tests[name][1].bootstrap
    probs, quantiles = np.array(PB["probs"]), np.array(PB[name]["quantiles"])
    ecdf_at_r_quantiles = (boot.statistics[:, None] <= quantiles).mean(axis=0)
    B1, B2 = boot.n_used, PB["nsim"]
    ks_bound = np.sqrt(-np.log(1e-4 / 2) / 2) * np.sqrt(1 / B1 + 1 / B2)     # two-sample KS, level 1e-4
    assert np.abs(ecdf_at_r_quantiles - probs).max() < ks_bound


def test_result_states_monte_carlo_error_and_diagnostics(tests):
    _, result = tests["random_slope"]
    boot = result.bootstrap
    star, B = boot.statistics, boot.B
    assert B == B_HLM and boot.n_failed == 0 and boot.n_used == B and boot.n_negative == 0
    assert boot.pvalue == (1 + np.sum(star >= result.statistic - 1e-8)) / (1 + B)
    assert boot.mc_se == pytest.approx(np.sqrt(boot.pvalue * (1 - boot.pvalue) / B), rel=1e-12)
    assert result.pvalue_bootstrap == boot.pvalue
    # under H0 (no random slope) most refits of the big model have a singular tau with 8 schools
    assert B / 2 < boot.n_boundary_big <= B and boot.n_boundary_small < B / 10
    assert (star >= 0).all() and boot.n_zero == np.sum(star <= 1e-8)
    text = repr(result)
    assert f"parametric bootstrap (ML refits, B = {B_HLM})" in text and "Monte Carlo s.e." in text


def test_refits_equal_hlmlib_fits_of_the_simulated_responses(small, tests):
    # the bootstrap's cross-product updates against complete mixed() fits of the same simulated y
    big, result = tests["random_slope"]
    Y = lmm_bootstrap._simulate(small, np.random.default_rng(20240612), 3)
    for c in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BoundaryFitWarning)
            fits = [hlmlib.mixed(Y[:, c], fit._X, small._codes, fit._Z, reml=False) for fit in (small, big)]
        assert result.bootstrap.statistics[c] == pytest.approx(max(2 * (fits[1].llf - fits[0].llf), 0), abs=1e-6)


def test_simulated_responses_have_the_small_models_moments(small):
    # mean X beta, variance z'tau z + sigma^2 and within-group covariance z_i'tau z_k, to 5 Monte Carlo s.e.
    R = 4000
    Y = lmm_bootstrap._simulate(small, np.random.default_rng(5), R)
    mean = small._X @ small.params.to_numpy()
    tau, sigma2 = small.tau.to_numpy()[0, 0], small.sigma2
    total = tau + sigma2
    np.testing.assert_array_less(np.abs(Y.mean(axis=1) - mean), 5 * np.sqrt(total / R))
    var = Y.var(axis=1)
    np.testing.assert_array_less(np.abs(var - total), 5 * total * np.sqrt(2 / R))
    same_group = np.flatnonzero(small._codes == small._codes[0])[:2]
    cov = np.cov(Y[same_group])[0, 1]
    assert abs(cov - tau) < 5 * np.sqrt((total ** 2 + tau ** 2) / R)


def test_same_seed_same_result_and_reml_fits_bootstrap_their_own_criterion(few_schools):
    small = _fit("mathach ~ cses", few_schools, reml=True)
    big = _fit("mathach ~ cses", few_schools, re="~ cses", reml=True)
    first = hlmlib.lrtest(small, big, bootstrap=40, seed=3)
    again = hlmlib.lrtest(small, big, bootstrap=40, seed=3)
    other = hlmlib.lrtest(small, big, bootstrap=40, seed=4)
    np.testing.assert_array_equal(first.bootstrap.statistics, again.bootstrap.statistics)
    assert not np.array_equal(first.bootstrap.statistics, other.bootstrap.statistics)
    assert first.criterion == "REML" and first.bootstrap.criterion == "REML"


def test_bootstrap_p_values_are_uniform_under_the_null():
    # A level-2 effect with J = 6 groups, simulated under H0 (no effect) M times; each time the bootstrap
    # p-value with B = 19 draws. Were the statistic's distribution the same in every data set, the rank of the
    # observed LRT among the 20 would be uniform on 0..19 (p on 1/20, ..., 1); the parametric bootstrap is
    # close to that. Bounds: chi-square goodness of fit of the M ranks at level 1e-3, the share of p <= 0.05
    # and the mean of p within 4 binomial / uniform Monte Carlo s.e.
    M, B, J, n = 200, 19, 6, 5
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(J), n)
    p_boot, p_chi2 = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        for m in range(M):
            x, z = rng.standard_normal(J * n), rng.standard_normal(J)[g]
            y = 1 + 0.5 * x + 0.7 * rng.standard_normal(J)[g] + rng.standard_normal(J * n)
            X = np.column_stack([np.ones(J * n), x, z])
            small = hlmlib.mixed(y, X[:, :2], g, reml=False)
            big = hlmlib.mixed(y, X, g, reml=False)
            result = hlmlib.lrtest(small, big, bootstrap=B, seed=1000 + m)
            p_boot.append(result.pvalue_bootstrap)
            p_chi2.append(result.pvalue)
    p_boot = np.array(p_boot)
    ranks = np.rint(p_boot * (B + 1)).astype(int) - 1
    counts = np.bincount(ranks, minlength=B + 1)
    expected = M / (B + 1)
    from scipy import stats
    assert ((counts - expected) ** 2 / expected).sum() < stats.chi2.ppf(0.999, B)
    assert abs(np.mean(p_boot <= 0.05) - 0.05) < 4 * np.sqrt(0.05 * 0.95 / M)
    sd_uniform = np.sqrt(((B + 1) ** 2 - 1) / 12) / (B + 1)
    assert abs(p_boot.mean() - (B + 2) / (2 * (B + 1))) < 4 * sd_uniform / np.sqrt(M)


def test_failed_refits_are_left_out_counted_and_warned_about(small, tests, monkeypatch):
    big, _ = tests["level2_fixed"]
    module = sys.modules["hlmlib.mixed"]
    real, calls = module.fit_theta, {"n": 0, "raised": 0}

    def failing_every_fifth(cp, reml=True, start=None):
        calls["n"] += 1
        if calls["n"] % 5 == 0:
            calls["raised"] += 1
            raise np.linalg.LinAlgError("simulated failure")
        return real(cp, reml=reml, start=start)

    monkeypatch.setattr(module, "fit_theta", failing_every_fifth)
    with pytest.warns(RuntimeWarning, match=r"parametric bootstrap: \d+ of 20 draws failed to refit"):
        result = hlmlib.lrtest(small, big, bootstrap=20, seed=1)
    boot = result.bootstrap
    assert boot.n_failed == calls["raised"] > 0 and boot.n_used == 20 - boot.n_failed == boot.statistics.size
    assert boot.pvalue == (1 + np.sum(boot.statistics >= result.statistic - 1e-8)) / (1 + boot.n_used)


@pytest.mark.parametrize("B", [0, -5, 2.5, True, "100", None.__class__])
def test_bad_replications_are_refused(small, tests, B):
    big, _ = tests["level2_fixed"]
    with pytest.raises(InputError, match="bootstrap must be a positive integer"):
        hlmlib.lrtest(small, big, bootstrap=B, seed=1)


@pytest.mark.parametrize("seed", ["a", -1, 1.5, True])
def test_bad_seeds_are_refused(small, tests, seed):
    big, _ = tests["level2_fixed"]
    with pytest.raises(InputError, match="seed must be"):
        hlmlib.lrtest(small, big, bootstrap=10, seed=seed)


def test_lrtests_own_checks_come_first(small, few_schools):
    reml_big = _fit("mathach ~ cses + meanses", few_schools, reml=True)
    with pytest.raises(InputError, match="one fit is REML and the other ML"):
        hlmlib.lrtest(small, reml_big, bootstrap=10, seed=1)
    with pytest.raises(InputError, match="pass the smaller"):
        hlmlib.lrtest(_fit("mathach ~ cses + meanses", few_schools), small, bootstrap=10, seed=1)
