"""hlmlib.mc_mixed: mixed models fitted and tested for many replications at once.

1. Peers: one replication of the unbalanced simulated data sets of tests/fixtures/mixed_inference_reference.json
   (J = 10, random intercept and slope; J = 30 with singletons and three random effects) against lmerTest,
   pbkrtest and clubSandwich, with the tolerances of test_mixed_inference.py.
2. Replication by replication against hlmlib.mixed and its coef_table (itself checked against the peers): REML
   and ML, one and two random effects, balanced and unbalanced groups in shuffled order, a regressor redrawn in
   every replication or fixed, boundary fits with few groups, contrasts other than single coefficients.
3. Argument validation.
"""
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hlmlib import InputError, mixed
from hlmlib import simulate as sim
from hlmlib.mc_mixed import mixed_mc

REF = json.loads((Path(__file__).parent / "fixtures" / "mixed_inference_reference.json").read_text())
DF_RTOL, SE_RTOL = 1e-4, 1e-6
ALL_KINDS = ("model", "satterthwaite", "kenward-roger", "CR0", "CR1", "CR2", "CR3")


def _peer_case(name, fixed, random):
    data = pd.DataFrame(REF["data"][name])
    codes = pd.factorize(data["g"])[0]
    X = np.column_stack([np.ones(len(data))] + [np.prod([data[v] for v in term.split(":")], axis=0) for term in fixed])
    Z = np.column_stack([np.ones(len(data))] + [data[v] for v in random])
    return data["y"].to_numpy()[None], X, Z, codes


@pytest.mark.parametrize("case, fixed, random, reml", [
    ("sim_small_reml", ["x", "w", "x:w"], ["x"], True),
    ("sim_small_ml", ["x", "w", "x:w"], ["x"], False),
    ("sim_q3_reml", ["x1", "x2", "w", "x1:w"], ["x1", "x2"], True),
])
def test_one_replication_matches_lmerTest_pbkrtest_clubSandwich(case, fixed, random, reml):
    ref = REF["mixed"][case]
    Y, X, Z, codes = _peer_case(ref["data"], fixed, random)
    kinds = [k for k in ALL_KINDS if reml or k != "kenward-roger"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mc = mixed_mc(X, Y, codes, Z, reml=reml, kinds=kinds)
    np.testing.assert_allclose(mc.params[0], ref["beta"], rtol=1e-6)
    peers = {"model": "satterthwaite", "satterthwaite": "satterthwaite", "kenward-roger": "kenward_roger",
             "CR0": "CR0", "CR1": "CR1", "CR2": "CR2", "CR3": "CR3"}
    for kind in kinds:
        peer = ref[peers[kind]]
        np.testing.assert_allclose(mc.se[kind][0], peer["se"], rtol=SE_RTOL, err_msg=kind)
        if kind != "model":
            np.testing.assert_allclose(mc.df[kind][0], peer["df"], rtol=DF_RTOL, err_msg=kind)
    contrast = np.atleast_2d(ref["contrast"])
    mc_c = mixed_mc(X, Y, codes, Z, reml=reml, kinds=["satterthwaite", "CR2"], contrasts=contrast, names=["c"])
    np.testing.assert_allclose(mc_c.se["CR2"][0, 0], ref["CR2"]["contrast"]["se"], rtol=SE_RTOL)
    np.testing.assert_allclose(mc_c.df["CR2"][0, 0], ref["CR2"]["contrast"]["df"], rtol=DF_RTOL)
    np.testing.assert_allclose(mc_c.df["satterthwaite"][0, 0], ref["satterthwaite"]["contrast"]["df"], rtol=DF_RTOL)


@pytest.mark.parametrize("scale_y, scale_x", [(1e-8, 1.0), (1e8, 1.0), (1.0, 1e-8), (1.0, 1e8), (1e6, 1e-6)])
def test_df_do_not_depend_on_units(scale_y, scale_x):
    """The batched Satterthwaite and Kenward-Roger df use hlmlib.lmm_inference's unit-free coordinates too: y or x
    rescaled (x in X, in x:w and in Z) gives lmerTest's and pbkrtest's unscaled df, and the same boundary flag."""
    ref = REF["mixed"]["sim_small_reml"]
    Y, X, Z, codes = _peer_case(ref["data"], ["x", "w", "x:w"], ["x"])
    units = np.array([1.0, scale_x, 1.0, scale_x])
    mc = mixed_mc(X * units, Y * scale_y, codes, Z * units[:2], kinds=["satterthwaite", "kenward-roger"])
    for kind, peer in [("satterthwaite", "satterthwaite"), ("kenward-roger", "kenward_roger")]:
        np.testing.assert_allclose(mc.df[kind][0], ref[peer]["df"], rtol=DF_RTOL, err_msg=kind)
        np.testing.assert_allclose(mc.se[kind][0] * units / scale_y, ref[peer]["se"], rtol=1e-5, err_msg=kind)
    assert not mc.boundary[0]


def _single_fit_table(y, X, groups, Z, reml, kind):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mixed(y, X, groups, Z, reml=reml)
        if kind == "model":
            return fit, fit.coef_table()
        if kind in ("satterthwaite", "kenward-roger"):
            return fit, fit.coef_table(df=kind)
        return fit, fit.coef_table(kind=kind)


def _compare(mc, Y, X, groups, Z, reml, kinds, se_rtol=1e-6, df_rtol=1e-5):
    for r in range(Y.shape[0]):
        Xr = X if X.ndim == 2 else X[r]
        Zr = Z if Z is None or Z.ndim == 2 else Z[r]
        for kind in kinds:
            fit, table = _single_fit_table(Y[r], Xr, groups, Zr, reml, kind)
            np.testing.assert_allclose(mc.params[r], fit.params.to_numpy(), rtol=1e-6, atol=1e-8 * fit.se().max())
            np.testing.assert_allclose(mc.se[kind][r], table["se"].to_numpy(), rtol=se_rtol, err_msg=f"{kind}, r={r}")
            np.testing.assert_allclose(mc.df[kind][r], table["df"].to_numpy(), rtol=df_rtol, err_msg=f"{kind}, r={r}")
        np.testing.assert_allclose(mc.sigma2[r], fit.sigma2, rtol=1e-6)
        assert mc.boundary[r] == fit.boundary


@pytest.mark.parametrize("J, q, reml", [(5, 2, True), (8, 1, True), (12, 2, False), (30, 2, True)])
def test_batch_equals_hlmlib_mixed_replication_by_replication(J, q, reml):
    """The lecture's model with the regressors redrawn in every replication; J = 5 gives boundary fits."""
    b = sim.hlm_eusup_batch(12, J=J, n=8, seed=100 + J, lfrt_mean=0.0, gspend_mean=0.0)
    Z = b.extra["Z"][..., :q]
    kinds = [k for k in ALL_KINDS if reml or k != "kenward-roger"]
    mc = mixed_mc(b.X, b.Y, b.cluster, Z, reml=reml, kinds=kinds)
    if J == 5:
        assert mc.boundary.any() and mc.refitted.any()            # the boundary path is exercised
    _compare(mc, b.Y, b.X, b.cluster, Z, reml, kinds, se_rtol=1e-5, df_rtol=1e-4)


def test_unbalanced_shuffled_groups_fixed_design_and_contrasts():
    rng = np.random.default_rng(7)
    sizes = np.r_[1, 2, rng.integers(2, 12, 10)]
    labels = np.repeat([f"g{j}" for j in range(sizes.size)], sizes)
    order = rng.permutation(labels.size)
    labels = labels[order]
    codes = pd.factorize(labels, sort=True)[0]
    N = labels.size
    w = rng.standard_normal(sizes.size)[codes]
    x = rng.standard_normal(N) + 0.3 * w
    X = np.column_stack([np.ones(N), x, w, x * w])
    Z = np.column_stack([np.ones(N), x])
    u = rng.standard_normal((6, sizes.size, 2)) * [1.0, 0.5]
    Y = X @ [1.0, 0.5, 0.3, 0.2] + (u[:, codes] * Z).sum(-1) + rng.standard_normal((6, N))
    L = np.array([[0, 1, 0, 1.5], [0, 0, 1, 0]])
    kinds = ("satterthwaite", "kenward-roger", "CR2", "CR3")
    mc = mixed_mc(X, Y, labels, Z, contrasts=L, names=["slope at w=1.5", "w"], kinds=kinds)
    assert mc.names == ["slope at w=1.5", "w"]
    for r in range(Y.shape[0]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = mixed(Y[r], X, labels, Z)
            for kind in kinds:
                args = dict(df=kind) if kind in ("satterthwaite", "kenward-roger") else dict(kind=kind)
                table = fit.contrast(L, **args)
                np.testing.assert_allclose(mc.params[r], table["estimate"].to_numpy(), rtol=1e-6)
                np.testing.assert_allclose(mc.se[kind][r], table["se"].to_numpy(), rtol=1e-6, err_msg=kind)
                np.testing.assert_allclose(mc.df[kind][r], table["df"].to_numpy(), rtol=1e-5, err_msg=kind)


def test_batch_input_and_rejection_rates_use_the_df():
    b = sim.hlm_eusup_batch(20, J=6, n=10, seed=3, lfrt_mean=0.0, gspend_mean=0.0)
    mc = mixed_mc(b)                                           # X, Y, groups, Z and names from the Batch
    assert mc.names == b.names and set(mc.se) == {"model", "satterthwaite", "kenward-roger", "CR2"}
    assert np.isinf(mc.df["model"]).all()
    from scipy import stats
    t = np.abs(mc.params - np.array([b.truth[n] for n in b.names])) / mc.se["satterthwaite"]
    expected = t > stats.t.ppf(0.975, mc.df["satterthwaite"])
    np.testing.assert_array_equal(mc.reject("satterthwaite", b.truth), expected)
    assert (mc.reject("model", b.truth) >= mc.reject("satterthwaite", b.truth)).all()


def test_ml_default_kinds_leave_out_kenward_roger():
    b = sim.hlm_eusup_batch(3, J=10, n=6, seed=5, lfrt_mean=0.0, gspend_mean=0.0)
    mc = mixed_mc(b, reml=False)
    assert "kenward-roger" not in mc.se and "satterthwaite" in mc.se


@pytest.mark.parametrize("kwargs, message", [
    (dict(kinds=["HC1"]), "unknown kind"),
    (dict(kinds=["kenward-roger"], reml=False), "REML"),
    (dict(contrasts=np.ones((1, 3))), "columns"),
    (dict(contrasts=np.eye(4), names=["a"]), "names"),
])
def test_bad_arguments(kwargs, message):
    b = sim.hlm_eusup_batch(2, J=6, n=5, seed=1)
    with pytest.raises(InputError, match=message):
        mixed_mc(b.X, b.Y, b.cluster, b.extra["Z"], **kwargs)


def test_bad_data():
    b = sim.hlm_eusup_batch(2, J=6, n=5, seed=1)
    with pytest.raises(InputError, match="NaN"):
        mixed_mc(b.X, np.where(np.arange(b.Y.size).reshape(b.Y.shape) == 3, np.nan, b.Y), b.cluster)
    with pytest.raises(InputError, match="one label per row"):
        mixed_mc(b.X, b.Y, b.cluster[:-1])
    with pytest.raises(InputError, match=r"\(N, k\) or \(R, N, k\)"):
        mixed_mc(b.X[:, :-1], b.Y, b.cluster)
    collinear = b.X.copy()
    collinear[1, :, 3] = collinear[1, :, 2]
    with pytest.raises(InputError, match=r"rank deficient .*\[1\]"):
        mixed_mc(collinear, b.Y, b.cluster)
    with pytest.raises(InputError, match="groups"):
        mixed_mc(b.X, b.Y, np.zeros(b.Y.shape[1]))
    with pytest.raises(InputError, match="missing"):
        mixed_mc(b.X, b.Y, np.where(np.arange(b.Y.shape[1]) == 2, None, b.cluster.astype(object)))
