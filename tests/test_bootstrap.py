"""hlmlib.bootstrap: the wild cluster restricted bootstrap against a refit-per-draw loop (statsmodels), and its
Monte Carlo version against one call per data set."""
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from hlmlib import simulate as S
from hlmlib.bootstrap import bootstrap_weights, wild_cluster_bootstrap, wild_cluster_bootstrap_mc
from hlmlib.design import InputError


def _refit_tstar(df, null, V):
    """The definition, one OLS fit per draw: y* = X b~ + v_g u~_g, t* = (b*_x - null) / CR1 se."""
    X = np.column_stack([np.ones(len(df)), df.x.to_numpy()])
    y, g = df.y.to_numpy(), df.cluster.to_numpy()
    intercept = (y - null * X[:, 1]).mean()
    b_restricted = np.array([intercept, null])
    u = y - X @ b_restricted
    out = []
    for b in range(V.shape[1]):
        fit = sm.OLS(X @ b_restricted + u * V[g, b], X).fit(cov_type="cluster", cov_kwds={"groups": g})
        out.append((fit.params[1] - null) / fit.bse[1])
    return np.array(out)


@pytest.mark.parametrize("weights", ["rademacher", "webb"])
def test_draws_equal_refitting_each_bootstrap_sample(weights):
    df = S.cgm(G=12, n=7, seed=4, heteroskedastic=True)
    res = wild_cluster_bootstrap("y ~ x", data=df, cluster="cluster", term="x", null=1.0, B=199,
                                 distribution=weights, seed=11)
    V, enumerated = bootstrap_weights(12, 199, weights, 11)
    assert not enumerated
    np.testing.assert_allclose(res.tstar, _refit_tstar(df, 1.0, V), rtol=1e-10)
    fit = sm.OLS(df.y, sm.add_constant(df.x)).fit(cov_type="cluster", cov_kwds={"groups": df.cluster})
    assert res.tstat == pytest.approx((fit.params["x"] - 1.0) / fit.bse["x"], rel=1e-12)
    assert res.pvalue == pytest.approx(np.mean(np.abs(res.tstar) >= abs(res.tstat) * (1 - 1e-10)))


def test_rademacher_enumerates_all_2_to_the_G_draws():
    df = S.cgm(G=6, n=10, seed=2)
    res = wild_cluster_bootstrap("y ~ x", data=df, cluster="cluster", term="x", null=1.0, B=999, seed=1)
    assert res.enumerated and res.B == 2 ** 6
    V, _ = bootstrap_weights(6, 999)
    assert len({tuple(col) for col in V.T}) == 64
    assert (res.pvalue * 64) == pytest.approx(round(res.pvalue * 64), abs=1e-9)
    # v = 1 reproduces the sample and v = -1 its mirror: p can never fall below 2 / 2^G
    assert res.pvalue >= 2 / 64
    np.testing.assert_allclose(np.sort(np.abs(res.tstar))[-1] >= abs(res.tstat) * (1 - 1e-10), True)


def test_pvalues_uniform_under_the_null():
    # CGM design, H0 true, 300 data sets with 199 draws each: p-values ~ U(0, 1)
    pvals = []
    rng = np.random.default_rng(2008)
    for _ in range(300):
        df = S.cgm(G=10, n=15, seed=rng)
        X = np.column_stack([np.ones(len(df)), df.x])
        pvals.append(wild_cluster_bootstrap(df.y.to_numpy(), X, cluster=df.cluster.to_numpy(), term=1,
                                            null=1.0, B=199, distribution="webb", seed=rng).pvalue)
    pvals = np.array(pvals)
    assert stats.kstest(pvals, "uniform").pvalue > 0.01
    assert abs((pvals < 0.05).mean() - 0.05) < 0.04   # binomial sd 0.013 at R = 300
    assert abs((pvals < 0.5).mean() - 0.5) < 0.09


def test_confidence_interval_inverts_the_test():
    df = S.cgm(G=20, n=10, seed=8)
    res = wild_cluster_bootstrap("y ~ x", data=df, cluster="cluster", term="x", null=1.0, B=1999, seed=3)
    lo, hi = res.ci(0.9)
    assert lo < res.estimate < hi
    for bound, outward in ((lo, -1), (hi, 1)):
        assert res.pvalue_at(bound - outward * 1e-6 * res.se) > 0.1
        assert res.pvalue_at(bound + outward * 1e-6 * res.se) <= 0.1
    # the same p-value when the null is imposed directly
    again = wild_cluster_bootstrap("y ~ x", data=df, cluster="cluster", term="x", null=hi, B=1999, seed=3)
    assert again.pvalue == pytest.approx(res.pvalue_at(hi))


def test_unbounded_interval_with_too_few_clusters_warns():
    df = S.cgm(G=4, n=10, seed=1)
    res = wild_cluster_bootstrap("y ~ x", data=df, cluster="cluster", term="x", null=1.0, B=999)
    assert res.B == 16 and res.pvalue >= 2 / 16
    with pytest.warns(UserWarning, match="unbounded"):
        lo, hi = res.ci(0.95)
    assert np.isinf(lo) and np.isinf(hi)


def test_array_interface_and_errors():
    df = S.cgm(G=8, n=5, seed=5)
    X = np.column_stack([np.ones(len(df)), df.x])
    a = wild_cluster_bootstrap(df.y.to_numpy(), X, cluster=df.cluster.to_numpy(), term=1, null=1.0, B=99, seed=1)
    f = wild_cluster_bootstrap("y ~ x", data=df, cluster="cluster", term="x", null=1.0, B=99, seed=1)
    assert a.pvalue == f.pvalue and a.tstat == pytest.approx(f.tstat, rel=1e-12)
    with pytest.raises(InputError, match="term"):
        wild_cluster_bootstrap("y ~ x", data=df, cluster="cluster", term="z")
    with pytest.raises(InputError, match="distribution"):
        wild_cluster_bootstrap("y ~ x", data=df, cluster="cluster", term="x", distribution="normal")
    with pytest.raises(InputError, match="at least 2 clusters"):
        wild_cluster_bootstrap("y ~ x", data=df.assign(cluster=1), cluster="cluster", term="x")


def _ill_conditioned(mean_over_sd, seed=3, G=40, n=25):
    """An intercept with a regressor of mean/sd = mean_over_sd (condition number about twice that)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(G), n)
    x = mean_over_sd + rng.normal(size=G * n)
    y = 1 + 0.3 * (x - mean_over_sd) + rng.normal(size=G)[g] + rng.normal(size=G * n)
    return y, np.column_stack([np.ones(G * n), x]), g


@pytest.mark.parametrize("mean_over_sd", [1e2, 1e4, 1e6])
def test_the_sample_t_is_ols_cr1_t_on_ill_conditioned_designs(mean_over_sd):
    """hlmlib's own least squares (no inv(X'X), no matrix_rank): designs ols fits, the bootstrap fits
    (an intercept with a regressor of mean/sd 1e4 was once refused), with ols' CR1 t to ~1e-10."""
    from hlmlib import ols

    y, X, g = _ill_conditioned(mean_over_sd)
    fit = ols(y, X)
    if mean_over_sd >= 1e6:
        assert fit.lstsq.cond > 1e6
    table = fit.summary("CR1", g)
    for null in (0.0, 0.3, 2.0):
        res = wild_cluster_bootstrap(y, X, cluster=g, term=1, null=null, B=99, seed=1)
        t = (table.estimate.iloc[1] - null) / table.se.iloc[1]
        assert res.tstat == pytest.approx(t, rel=1e-10)
        assert res.se == pytest.approx(table.se.iloc[1], rel=1e-10)


@pytest.mark.parametrize("weights", ["rademacher", "webb"])
def test_chunks_of_draws_give_the_same_draws_and_results(weights):
    df = S.cgm(G=30, n=6, seed=9)
    results = [wild_cluster_bootstrap("y ~ x", data=df, cluster="cluster", term="x", null=1.0, B=999,
                                      distribution=weights, seed=4, chunk=chunk) for chunk in (1, 7, 64, None)]
    for other in results[1:]:
        assert other.pvalue == results[0].pvalue
        np.testing.assert_allclose(other.tstar, results[0].tstar, rtol=1e-10, atol=1e-12)
    V, _ = bootstrap_weights(30, 999, weights, 4)
    np.testing.assert_allclose(results[0].tstar, _refit_tstar(df, 1.0, V), rtol=1e-9)


# ---- wild_cluster_bootstrap_mc: R data sets at once, against one call per data set with the same generator

def _one_at_a_time(X, Y, cluster, term, nulls, B, distribution, seed, level):
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                     # unbounded intervals with few clusters
        runs = [wild_cluster_bootstrap(Y[r], X if X.ndim == 2 else X[r], cluster=cluster, term=term, null=nulls[r],
                                       B=B, distribution=distribution, seed=rng) for r in range(len(Y))]
        return runs, np.array([run.ci(level) for run in runs])


@pytest.mark.parametrize("distribution, G, B", [("webb", 9, 199), ("rademacher", 9, 199), ("rademacher", 5, 99)])
@pytest.mark.parametrize("fixed_x", [False, True])
def test_monte_carlo_equals_one_data_set_at_a_time(distribution, G, B, fixed_x):
    """Unequal clusters in shuffled order, a null per data set, chunks of 1, 4 and all data sets: the same
    p-values (draws from the generator in turn), statistics to rounding, intervals to the bisection tolerance
    (G = 5 with Rademacher weights enumerates 32 draws, so p >= 1/16: every 95% interval is unbounded)."""
    rng = np.random.default_rng(160 + G)
    R, sizes = 12, rng.integers(2, 9, size=G)
    cluster = rng.permutation(np.repeat(np.arange(G) * 7 + 3, sizes))           # labels need not be 0..G-1
    n = cluster.size
    x = rng.normal(size=(R, n)) + rng.normal(size=(R, G))[:, cluster // 7]     # correlated within clusters
    X = np.stack([np.ones((R, n)), x, rng.normal(size=(R, n))], axis=-1)
    X = X[0] if fixed_x else X
    Y = 1 + 0.5 * X[..., 1] + rng.normal(size=(R, G))[:, cluster // 7] + rng.normal(size=(R, n))
    nulls = 0.5 + 0.3 * rng.normal(size=R)
    runs, cis = _one_at_a_time(X, Y, cluster, 1, nulls, B, distribution, seed=7, level=0.9)
    for chunk in (1, 4, None):
        mc = wild_cluster_bootstrap_mc(X, Y, cluster, term=1, null=nulls, B=B, distribution=distribution, seed=7,
                                       chunk=chunk)
        np.testing.assert_array_equal(mc.pvalue, [run.pvalue for run in runs])
        np.testing.assert_allclose(mc.tstat, [run.tstat for run in runs], rtol=1e-10)
        np.testing.assert_allclose(mc.se, [run.se for run in runs], rtol=1e-10)
        np.testing.assert_allclose(mc.estimate, [run.estimate for run in runs], rtol=1e-10)
        assert mc.B == runs[0].B and mc.enumerated == runs[0].enumerated and mc.G == G
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            low, high = mc.ci(0.9)
        se = mc.se
        for mine, theirs in ((low, cis[:, 0]), (high, cis[:, 1])):
            assert np.array_equal(np.isinf(mine), np.isinf(theirs))
            finite = np.isfinite(theirs)
            np.testing.assert_allclose(mine[finite], theirs[finite], rtol=0, atol=1e-8 * se[finite].max())
        np.testing.assert_allclose(mc.pvalue_at(nulls + se), [run.pvalue_at(v) for run, v in zip(runs, nulls + se)])
        assert mc.rejection_rate(0.1) == np.mean([run.pvalue < 0.1 for run in runs])
    assert np.isfinite(cis).any()
    if distribution == "rademacher" and G == 5:
        with pytest.warns(UserWarning, match=f"both in {R} of {R} data sets"):
            assert np.isinf(mc.ci(0.95)).all()
        with pytest.warns(UserWarning, match="unbounded"):
            assert np.isinf(runs[0].ci(0.95)).all()


def test_monte_carlo_perfect_fit_is_nan_with_a_warning():
    batch = S.cgm_batch(3, G=6, n=5, seed=1)
    Y = batch.Y.copy()
    Y[1] = 2.0 + 3.0 * batch.X[1, :, 1]                                   # exactly linear: no test
    with pytest.warns(UserWarning, match="perfect fit in 1 of 3"):
        mc = wild_cluster_bootstrap_mc(batch.X, Y, batch.cluster, term=1, B=99, seed=2)
    assert np.isnan(mc.pvalue[1]) and np.isfinite(mc.pvalue[[0, 2]]).all() and not mc.reject()[1]
    low, high = mc.ci()
    assert np.isnan([low[1], high[1]]).all() and (low[[0, 2]] < mc.estimate[[0, 2]]).all()
