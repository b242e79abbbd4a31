"""Invariances every OLS covariance must have, checked on random designs (hypothesis draws the
sizes and a seed; every random number comes from np.random.default_rng(seed)).

- permuting the rows changes nothing;
- relabelling the clusters changes nothing;
- rescaling a regressor by c rescales its coefficient and se by 1/c (t unchanged);
- with one observation per cluster, CR0 = HC0, CR1 = HC1, CR2 = HC2 and CR3 = HC3 exactly.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import hlmlib

FAST = settings(max_examples=20, deadline=None)
ALL_KINDS = ["classical", "HC0", "HC1", "HC2", "HC3", "HC4"]
CLUSTER_KINDS = ["CR0", "CR1", "CR2", "CR3"]


def clustered_data(seed, G, per, k):
    """Unbalanced clusters (1 to 2*per rows), a cluster-level and an observation-level regressor,
    random effects and heteroskedastic noise."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 2 * per + 1, G)
    cluster = np.repeat(np.arange(G), sizes)
    n = cluster.size
    X = np.column_stack([np.ones(n), rng.standard_normal(G)[cluster], rng.standard_normal((n, k - 2))])
    y = X @ rng.standard_normal(k) + rng.standard_normal(G)[cluster] + rng.standard_normal(n) * (1 + X[:, -1] ** 2)
    return y, X, cluster, rng


def all_tables(result, cluster):
    tables = [result.summary(kind) for kind in ALL_KINDS]
    tables += [result.summary(kind, cluster) for kind in CLUSTER_KINDS]
    return np.vstack([t.to_numpy() for t in tables])


data_args = dict(seed=st.integers(0, 2**32 - 1), G=st.integers(8, 25), per=st.integers(2, 6), k=st.integers(3, 5))


@FAST
@given(**data_args)
def test_permuting_rows_changes_nothing(seed, G, per, k):
    y, X, cluster, rng = clustered_data(seed, G, per, k)
    order = rng.permutation(y.size)
    before = all_tables(hlmlib.ols(y, X), cluster)
    after = all_tables(hlmlib.ols(y[order], X[order]), cluster[order])
    np.testing.assert_allclose(after, before, rtol=1e-8, atol=1e-12)


@FAST
@given(**data_args)
def test_relabelling_clusters_changes_nothing(seed, G, per, k):
    y, X, cluster, rng = clustered_data(seed, G, per, k)
    new_names = np.array([f"c{v}" for v in rng.permutation(10 * G)[:G]])   # strings, in another order
    result = hlmlib.ols(y, X)
    for kind in CLUSTER_KINDS:
        np.testing.assert_allclose(result.summary(kind, new_names[cluster]).to_numpy(),
                                   result.summary(kind, cluster).to_numpy(), rtol=1e-10)


@FAST
@given(**data_args, scale=st.floats(1e-4, 1e4).map(lambda v: v * (-1) ** int(v * 1000)))
def test_rescaling_a_regressor_rescales_its_coefficient_and_se(seed, G, per, k, scale):
    y, X, cluster, rng = clustered_data(seed, G, per, k)
    j = int(rng.integers(1, k))
    scaled = X.copy()
    scaled[:, j] *= scale
    before, after = hlmlib.ols(y, X), hlmlib.ols(y, scaled)
    factor = np.ones(k)
    factor[j] = 1 / scale
    np.testing.assert_allclose(after.params, before.params * factor, rtol=1e-8, atol=1e-10 * abs(before.params).max())
    for kind, clusters in [(kind, None) for kind in ALL_KINDS] + [(kind, cluster) for kind in CLUSTER_KINDS]:
        np.testing.assert_allclose(after.se(kind, clusters), before.se(kind, clusters) * np.abs(factor), rtol=1e-8)
        np.testing.assert_allclose(after.summary(kind, clusters)["df"], before.summary(kind, clusters)["df"], rtol=1e-8)


@FAST
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(8, 80), k=st.integers(2, 5))
def test_one_observation_per_cluster_gives_the_hc_estimators(seed, n, k):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, k - 1))])
    y = X @ rng.standard_normal(k) + rng.standard_normal(n) * np.exp(X[:, -1])
    result = hlmlib.ols(y, X)
    singletons = rng.permutation(n)                     # every row its own cluster, labels shuffled
    for cr, hc in [("CR0", "HC0"), ("CR1", "HC1"), ("CR2", "HC2"), ("CR3", "HC3")]:
        np.testing.assert_allclose(result.vcov(cr, singletons), result.vcov(hc), rtol=1e-9, atol=1e-15)
