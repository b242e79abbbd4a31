"""hlmlib.simulate: DGPs, population quantities, and the batched Monte Carlo OLS engine.

Peers: R (sandwich, clubSandwich) reference values in hlmlib/datasets/r_reference.json; statsmodels; direct
dense NumPy formulas; Angrist & Pischke's published Table 8.1.1 (reference/published_tables.md).
"""

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import statsmodels.api as sm

from hlmlib import datasets, simulate as S
from hlmlib.design import InputError, make_design

REF = datasets.load_r_reference()
R_TERMS = {"hsb_ols": ["Intercept", "catholic", "cses", "meanses", "catholic:cses", "cses:meanses"]}
FIXTURE_KEYS = {"hsb_ols": {"classical": "se_classical", "HC0": "se_HC0", "HC1": "se_HC1", "HC2": "se_HC2",
                            "HC3": "se_HC3", "HC4": "se_HC4", "CR0": "se_CR0", "CR1": "se_CR1_stata",
                            "CR2": "se_CR2", "CR3": "se_CR3"},
                "petersen_ols": {"classical": "se_classical", "HC0": "se_HC0", "HC1": "se_HC1", "HC2": "se_HC2",
                                 "HC3": "se_HC3", "CR0": "se_CL_firm_HC0", "CR1": "se_CL_firm_stata",
                                 "CR2": "se_CR2_firm", "CR3": "se_CR3_firm"}}


def _design(name):
    if name == "hsb_ols":
        df = datasets.load_hsb()
        d = make_design("mathach ~ catholic*cses + meanses*cses", data=df)
        order = [d.names.index(t if t != "cses:meanses" else "meanses:cses") for t in R_TERMS[name]]
        return d.X[:, order], d.y, df["school"].to_numpy()
    df = datasets.load_petersen()
    return np.column_stack([np.ones(len(df)), df["x"]]), df["y"].to_numpy(), df["firm"].to_numpy()


@pytest.mark.parametrize("name", ["hsb_ols", "petersen_ols"])
def test_engine_matches_r_reference(name):
    X, y, cluster = _design(name)
    kinds = list(FIXTURE_KEYS[name])
    mc = S.ols_mc(X, y[None], cluster=cluster, kinds=kinds)
    ref = REF[name]
    np.testing.assert_allclose(mc.params[0], ref["coef"], rtol=1e-10)
    for kind, key in FIXTURE_KEYS[name].items():
        np.testing.assert_allclose(mc.se[kind][0], ref[key], rtol=1e-9, err_msg=kind)
    np.testing.assert_allclose(mc.df["CR2"], ref["CR2_satt_df"], rtol=1e-9)
    np.testing.assert_array_equal(mc.df["CR1"], len(np.unique(cluster)) - 1)
    np.testing.assert_array_equal(mc.df["HC1"], len(y) - X.shape[1])


def _unequal_problem(seed=0, R=3):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 9, 12)
    cluster = rng.permutation(np.repeat(np.array([f"c{j}" for j in range(12)]), sizes))  # unsorted labels
    n = cluster.size
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n) ** 2])
    Y = 1 + X[:, 1] + rng.normal(size=(R, n)) * (1 + np.abs(X[:, 1]))
    return X, Y, cluster


def test_engine_matches_statsmodels_hc_and_cr1():
    X, Y, cluster = _unequal_problem()
    mc = S.ols_mc(X, Y, cluster=cluster, kinds=["classical", "HC0", "HC1", "HC2", "HC3", "CR1"])
    codes = pd.factorize(cluster)[0]
    for r in range(Y.shape[0]):
        fit = sm.OLS(Y[r], X).fit()
        np.testing.assert_allclose(mc.params[r], fit.params, rtol=1e-11)
        np.testing.assert_allclose(mc.se["classical"][r], fit.bse, rtol=1e-11)
        for kind in ("HC0", "HC1", "HC2", "HC3"):
            np.testing.assert_allclose(mc.se[kind][r], fit.get_robustcov_results(kind).bse, rtol=1e-11)
        cl = fit.get_robustcov_results("cluster", groups=codes, use_correction=True)
        np.testing.assert_allclose(mc.se["CR1"][r], cl.bse, rtol=1e-11)


def _direct_cr(X, e, cluster, power, L):
    """Dense textbook formula: L M sum_g X_g' A_g e_g e_g' A_g X_g M L', A_g = (I - H_gg)^power (pinv)."""
    M = np.linalg.inv(X.T @ X)
    meat = np.zeros((X.shape[1], X.shape[1]))
    Ws = []
    for g in np.unique(cluster):
        idx = cluster == g
        Xg = X[idx]
        lam, U = np.linalg.eigh(np.eye(idx.sum()) - Xg @ M @ Xg.T)
        keep = lam > 1e-10
        A = (U[:, keep] * lam[keep] ** power) @ U[:, keep].T
        s = Xg.T @ A @ e[idx]
        meat += np.outer(s, s)
        Ws.append((idx, A @ Xg @ M @ L.T))
    V = L @ M @ meat @ M @ L.T
    # Bell-McCaffrey df with the explicit n x G matrix of u_g = (I - H)_{., g} A_g X_g M l
    IH = np.eye(X.shape[0]) - X @ M @ X.T
    df = []
    for j in range(L.shape[0]):
        Gm = np.column_stack([IH[:, idx] @ W[:, j] for idx, W in Ws])
        GtG = Gm.T @ Gm
        df.append(np.trace(GtG) ** 2 / np.trace(GtG @ GtG))
    return np.sqrt(np.diag(V)), np.array(df)


def test_cr2_cr3_contrasts_and_df_match_dense_formula():
    X, Y, cluster = _unequal_problem(seed=1, R=2)
    L = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, -2.0]])
    mc = S.ols_mc(X, Y, cluster=cluster, kinds=["CR2", "CR3"], contrasts=L)
    for r in range(2):
        e = Y[r] - X @ np.linalg.lstsq(X, Y[r], rcond=None)[0]
        se2, df2 = _direct_cr(X, e, cluster, -0.5, L)
        se3, _ = _direct_cr(X, e, cluster, -1.0, L)
        np.testing.assert_allclose(mc.se["CR2"][r], se2, rtol=1e-10)
        np.testing.assert_allclose(mc.se["CR3"][r], se3, rtol=1e-10)
        np.testing.assert_allclose(mc.df["CR2"], df2, rtol=1e-10)


def test_singular_cluster_block_uses_moore_penrose():
    # a dummy for cluster 0 gives I - H_00 a zero eigenvalue: CR2 uses the pseudo-inverse square root
    X, Y, cluster = _unequal_problem(seed=2, R=1)
    X = np.column_stack([X, (cluster == cluster[0]).astype(float)])
    mc = S.ols_mc(X, Y, cluster=cluster, kinds=["CR2"])
    e = Y[0] - X @ np.linalg.lstsq(X, Y[0], rcond=None)[0]
    se2, df2 = _direct_cr(X, e, cluster, -0.5, np.eye(X.shape[1]))
    np.testing.assert_allclose(mc.se["CR2"][0], se2, rtol=1e-9)
    np.testing.assert_allclose(mc.df["CR2"], df2, rtol=1e-8)


def test_varying_x_equals_one_fit_per_replication():
    b = S.hlm_eusup_batch(12, J=10, n=[3, 5, 8, 12, 20] * 2, seed=3)   # uncentred, cond(X) ~ 1e4
    assert not b.fixed_x
    mc = S.ols_mc(b, kinds=S.KINDS)
    for r in (0, 5, 11):
        one = S.ols_mc(b.X[r], b.Y[r:r + 1], cluster=b.cluster, kinds=S.KINDS)
        for kind in S.KINDS:
            np.testing.assert_allclose(mc.se[kind][r], one.se[kind][0], rtol=1e-10, err_msg=kind)
        np.testing.assert_allclose(mc.df["CR2"][r], one.df["CR2"], rtol=1e-10)
        np.testing.assert_allclose(mc.params[r], one.params[0], rtol=1e-10)


def test_chunking_does_not_change_results():
    b = S.cgm_batch(30, G=6, n=5, seed=9)
    whole = S.ols_mc(b, kinds=["HC3", "CR2"])
    pieces = S.ols_mc(b, kinds=["HC3", "CR2"], chunk=7)
    np.testing.assert_allclose(whole.se["CR2"], pieces.se["CR2"], rtol=1e-12)
    np.testing.assert_allclose(whole.df["CR2"], pieces.df["CR2"], rtol=1e-12)


def test_bad_input_is_reported():
    X, Y, cluster = _unequal_problem()
    with pytest.raises(InputError, match="cluster"):
        S.ols_mc(X, Y, kinds=["CR1"])
    with pytest.raises(InputError, match="unknown kind"):
        S.ols_mc(X, Y, kinds=["HC9"])
    with pytest.raises(InputError, match="does not match"):
        S.ols_mc(X, Y[:, :-1])
    with pytest.raises(InputError, match="rank deficient"):
        S.ols_mc(np.column_stack([X, X[:, 1]]), Y)
    with pytest.raises(InputError, match="NaN"):
        S.ols_mc(X, np.where(np.arange(Y.shape[1]) == 3, np.nan, Y))
    with pytest.raises(InputError, match="tau"):
        S.hlm_eusup(5, 3, tau=[[1, 2], [2, 1]], seed=1)
    for units in (1e-20, 1e20):              # judged relative to tau's size: the same matrix in other units
        with pytest.raises(InputError, match="positive semi-definite"):
            S.error_variance(np.ones((4, 2)), np.array([[1, 2], [2, 1]]) * units)
        with pytest.raises(InputError, match="symmetric"):
            S.error_variance(np.ones((4, 2)), np.array([[1, 0.5], [0.6, 1]]) * units)
        assert np.isfinite(S.error_variance(np.ones((4, 2)), np.array([[1, 0.5], [0.5, 1]]) * units)).all()
    with pytest.raises(InputError, match="sizes"):
        S.hlm_eusup(5, [3, 4], seed=1)


# ----------------------------------------------------------------- data-generating processes

def test_hlm_eusup_follows_its_equations():
    df = S.hlm_eusup(J=40, n=np.arange(40) % 7 + 2, seed=5, tau=[[1.0, 0.1], [0.1, 0.05]])
    p = S._HLM_DEFAULTS
    assert list(df.columns) == ["country", "eusup", "lfrt", "GSPEND", "u0", "u1", "e"]
    assert (df.groupby("country")[["GSPEND", "u0", "u1"]].nunique() == 1).all().all()
    assert df.groupby("country").size().tolist() == (np.arange(40) % 7 + 2).tolist()
    rebuilt = (p["a0"] + p["a1"] * df.GSPEND + df.u0) + (p["g0"] + p["g1"] * df.GSPEND + df.u1) * df.lfrt + df.e
    np.testing.assert_allclose(df.eusup, rebuilt, rtol=1e-12)


def test_hlm_eusup_correlation_options():
    J = 20000
    df = S.hlm_eusup(J=J, n=2, seed=6, corr_u0_lfrt=0.6, corr_u0_gspend=-0.3, lfrt_within_sd=1e-9)
    cl = df.groupby("country").first()
    assert abs(np.corrcoef(cl.u0, cl.lfrt)[0, 1] - 0.6) < 0.03
    assert abs(np.corrcoef(cl.u0, cl.GSPEND)[0, 1] + 0.3) < 0.03
    with pytest.raises(InputError, match="exceed 1"):
        S.hlm_eusup(5, 3, corr_u0_lfrt=0.9, corr_u0_gspend=0.9)


def test_cgm_and_mhe_designs():
    df = S.cgm(G=5, n=30, seed=1)
    assert df.shape == (150, 3) and df.cluster.nunique() == 5
    m = S.mhe_811(0.5, seed=1)
    assert m.d.sum() == 3 and len(m) == 30
    h = np.diag(m[["d"]].assign(c=1).to_numpy() @ np.linalg.pinv(m[["d"]].assign(c=1).to_numpy()))
    np.testing.assert_allclose(h[m.d == 1], 1 / 3)


# ----------------------------------------------------------------- population quantities

def test_error_covariance_is_the_lecture_formula():
    df = S.hlm_eusup(J=4, n=3, seed=2)
    Z = np.column_stack([np.ones(len(df)), df.lfrt])
    tau, s2 = np.array([[1.0, 0.3], [0.3, 0.2]]), 0.7
    Om = S.error_covariance(Z, tau, s2, cluster=df.country)
    x, c = df.lfrt.to_numpy(), df.country.to_numpy()
    for i in range(len(df)):
        for k in range(len(df)):
            want = (tau[0, 0] + tau[0, 1] * (x[i] + x[k]) + tau[1, 1] * x[i] * x[k]) * (c[i] == c[k]) + s2 * (i == k)
            assert Om[i, k] == pytest.approx(want, rel=1e-12, abs=1e-14)
    rc = S.random_coefficient(n=6, seed=3)
    Zrc = np.column_stack([np.ones(6), rc.x, rc.z])
    np.testing.assert_allclose(S.error_variance(Zrc, np.diag([1.0, 0.25, 0.09])),
                               1.0 + 0.25 * rc.x ** 2 + 0.09 * rc.z ** 2, rtol=1e-12)


def test_population_vcov_blockwise_equals_dense_sandwich():
    b = S.hlm_eusup_batch(1, J=15, n=np.arange(15) % 5 + 1, fixed_x=True, seed=4)
    X, Z, c = b.X, b.extra["Z"], b.cluster
    tau, s2 = np.array([[1.0, -0.2], [-0.2, 0.1]]), 2.0
    Om = S.error_covariance(Z, tau, s2, cluster=c)
    M = np.linalg.inv(X.T @ X)
    np.testing.assert_allclose(S.population_vcov(X, Z, tau, s2, cluster=c), M @ X.T @ Om @ X @ M, rtol=1e-10)
    n, k = X.shape
    Es2 = np.trace((np.eye(n) - X @ M @ X.T) @ Om) / (n - k)
    np.testing.assert_allclose(S.expected_classical_vcov(X, Z, tau, s2, cluster=c), Es2 * M, rtol=1e-10)


def test_monte_carlo_agrees_with_population_sandwich():
    # random-coefficient model, X fixed: Var(b) over replications -> (X'X)^-1 X' Omega X (X'X)^-1,
    # and the mean of HC0 variances -> the same (consistent), the classical one -> E[s^2](X'X)^-1
    b = S.random_coefficient_batch(4000, n=400, fixed_x=True, seed=7, s1=1.0, s2=0.8)
    mc = S.ols_mc(b, kinds=["classical", "HC3"])
    Vpop = S.population_vcov(b.X, b.extra["Z"], b.extra["tau"])
    Vcls = S.expected_classical_vcov(b.X, b.extra["Z"], b.extra["tau"])
    sd_mc = mc.params.std(0, ddof=1)
    # 4000 replications: the sd of b is estimated to about 1.1% (1 / sqrt(2 R)); allow 5%
    np.testing.assert_allclose(sd_mc, np.sqrt(np.diag(Vpop)), rtol=0.05)
    np.testing.assert_allclose((mc.se["classical"] ** 2).mean(0), np.diag(Vcls), rtol=0.02)
    np.testing.assert_allclose((mc.se["HC3"] ** 2).mean(0), np.diag(Vpop), rtol=0.05)
    assert not np.allclose(np.diag(Vcls), np.diag(Vpop), rtol=0.1)  # the design does make classical wrong


# ----------------------------------------------------------------- Angrist & Pischke, MHE Table 8.1.1

# published (mean se, sd se, reject normal, reject t(28)); reference/published_tables.md sec. 1, 25,000 reps
MHE_A = {"classical": (.331, .052, .278, .257), "HC1": (.447, .218, .223, .208),
         "HC2": (.523, .260, .177, .164), "HC3": (.636, .321, .130, .120)}
MHE_A_MAX = {"HC1": (.473, .190, .173, .157), "HC3": (.649, .305, .107, .097)}
MHE_A_PUBLISHED_HC0 = (.417, .203)


def test_reproduces_mhe_table_811_panel_a():
    b = S.mhe_811_batch(25_000, sigma=0.5, seed=811)
    mc = S.ols_mc(b, kinds=["classical", "HC0", "HC1", "HC2", "HC3"])
    assert mc.params[:, 1].std() == pytest.approx(np.sqrt(1 / 3 + 0.25 / 27), abs=0.01)   # 0.585
    for kind, (mean, sd, rej_z, rej_t) in MHE_A.items():
        se = mc.se[kind][:, 1]
        assert se.mean() == pytest.approx(mean, abs=0.004), kind
        assert se.std() == pytest.approx(sd, abs=0.004), kind
        assert mc.reject(kind, 0.0, dist="normal")[:, 1].mean() == pytest.approx(rej_z, abs=0.01), kind
        assert mc.reject(kind, 0.0, dist="t")[:, 1].mean() == pytest.approx(rej_t, abs=0.01), kind
    t_crit, z_crit = 2.048407141795244, 1.959963984540054   # t(28) and N(0,1) 97.5% points
    for kind, (mean, sd, rej_z, rej_t) in MHE_A_MAX.items():
        se = np.maximum(mc.se["classical"][:, 1], mc.se[kind][:, 1])
        assert se.mean() == pytest.approx(mean, abs=0.004)
        assert (np.abs(mc.params[:, 1]) / se > z_crit).mean() == pytest.approx(rej_z, abs=0.01)
        assert (np.abs(mc.params[:, 1]) / se > t_crit).mean() == pytest.approx(rej_t, abs=0.01)
    # the published HC0 row is HC1 x 28/30 (a variance factor applied to the se), not a correct HC0
    hc0_published_way = mc.se["HC1"][:, 1] * 28 / 30
    assert hc0_published_way.mean() == pytest.approx(MHE_A_PUBLISHED_HC0[0], abs=0.004)
    assert mc.se["HC0"][:, 1].mean() / MHE_A_PUBLISHED_HC0[0] == pytest.approx(np.sqrt(30 / 28), abs=0.012)


def test_summary_and_coverage_api():
    b = S.cgm_batch(400, G=10, n=10, seed=12)
    mc = S.ols_mc(b, kinds=["CR1", "CR2"])
    tab = mc.summary(b.truth)
    assert list(tab.index) == ["CR1", "CR2"] and tab.attrs["term"] == "x"
    cov = mc.coverage("CR2", b.truth)
    np.testing.assert_allclose(cov, 1 - mc.rejection_rate("CR2", b.truth), rtol=1e-12)
    with pytest.raises(InputError, match="not computed"):
        mc.ci("HC1")


def test_engine_equals_hlmlib_ols_on_each_replication():
    import hlmlib

    b = S.hlm_eusup_batch(5, J=12, n=np.arange(12) % 4 + 3, seed=21, tau=[[1.0, 0.2], [0.2, 0.1]])
    mc = S.ols_mc(b, kinds=S.KINDS)
    for r in (0, 4):
        fit = hlmlib.ols(b.Y[r], b.X[r])
        for kind in S.KINDS:
            se = fit.se(kind, cluster=b.cluster if kind.startswith("CR") else None)
            np.testing.assert_allclose(mc.se[kind][r], se.to_numpy(), rtol=1e-10, err_msg=kind)
        np.testing.assert_allclose(mc.params[r], fit.params.to_numpy(), rtol=1e-10)
        df = fit.summary("CR2", cluster=b.cluster)["df"].to_numpy()
        np.testing.assert_allclose(mc.df["CR2"][r], df, rtol=1e-8)


def test_u0_correlated_with_gspend_biases_ols_and_uncorrelated_does_not():
    # E(u0 | GSPEND) = 0.5 sqrt(tau00) (GSPEND - 40)/8 shifts the GSPEND coefficient a1 by
    # 0.5 * 1 / 8 = 0.0625 (the lecture's "heterogeneity that covaries with X")
    kw = dict(R=600, J=40, n=10, seed=17)
    clean = S.ols_mc(S.hlm_eusup_batch(**kw), kinds=["CR1"])
    biased = S.ols_mc(S.hlm_eusup_batch(corr_u0_gspend=0.5, **kw), kinds=["CR1"])
    a1 = S._HLM_DEFAULTS["a1"]
    mc_se = clean.params[:, 1].std() / np.sqrt(600)
    assert abs(clean.params[:, 1].mean() - a1) < 4 * mc_se
    assert biased.params[:, 1].mean() - a1 == pytest.approx(0.5 / 8, abs=4 * mc_se)


def test_hlm_monte_carlo_agrees_with_population_sandwich():
    tau = np.array([[1.0, 0.1], [0.1, 0.05]])
    b = S.hlm_eusup_batch(3000, J=30, n=10, fixed_x=True, seed=23, tau=tau, sigma=1.5)
    mc = S.ols_mc(b, kinds=["CR1"])
    Vpop = S.population_vcov(b.X, b.extra["Z"], b.extra["tau"], b.extra["sigma2"], cluster=b.cluster)
    np.testing.assert_allclose(mc.params.std(0, ddof=1), np.sqrt(np.diag(Vpop)), rtol=0.05)
    mc_error = np.sqrt(np.diag(Vpop) / 3000)
    assert (np.abs(mc.params.mean(0) - np.array(list(b.truth.values()))) < 4 * mc_error).all()   # unbiased


def test_ols_mc_names_come_from_the_batch_unless_contrasts_are_given():
    batch = S.cgm_batch(5, G=4, n=6, seed=3)
    assert S.ols_mc(batch).names == ["Intercept", "x"]
    assert S.ols_mc(batch.X, batch.Y).names == ["b0", "b1"]
    assert S.ols_mc(batch, contrasts=[[0.0, 1.0]]).names == ["b0"]


@pytest.mark.parametrize("make", [lambda: S.hlm_eusup(seed=1, sgima=2.0),
                                  lambda: S.hlm_eusup_batch(3, seed=1, sgima=2.0),
                                  lambda: S.random_coefficient(seed=1, sigma=2.0),
                                  lambda: S.random_coefficient_batch(3, seed=1, sigma=2.0)])
def test_unknown_process_parameters_are_refused_not_ignored(make):
    with pytest.raises(InputError, match="unknown parameter"):
        make()


def test_a_seed_may_be_a_sequence_of_integers_as_in_numpy():
    # default_rng([base, replication]) is the usual way to seed independent replications; hlmlib takes the same
    from hlmlib.design import make_rng
    assert make_rng([20240604, 3]).normal() == np.random.default_rng([20240604, 3]).normal()
    a = S.hlm_eusup(J=5, n=4, seed=[7, 1])
    b = S.hlm_eusup(J=5, n=4, seed=np.random.SeedSequence([7, 1]))
    pd.testing.assert_frame_equal(a, b)
    for bad in ([], [1, -2], [1.5], [[1, 2]], ["a"]):
        with pytest.raises(InputError, match="seed"):
            make_rng(bad)
