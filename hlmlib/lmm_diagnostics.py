r"""What Raudenbush & Bryk's HLM reports beside the estimates of a two-level model, from each group's own
least-squares regression: the reliabilities of the random coefficients and the homogeneity tests of their
variances.

**The unit-by-unit OLS regressions** (Raudenbush & Bryk 2002, sec. 3.5 and ch. 4; HLM's "Level-1 OLS
regressions"). In R&B's notation the level-1 model of group :math:`j` is
:math:`y_j = Z_j \beta_j + F_j \beta_F + e_j`: :math:`Z_j` the level-1 predictors with random coefficients and
:math:`F_j` those with fixed ones, and the level-2 model predicts :math:`\beta_j = W_j \gamma + u_j`. hlmlib fits
the same model in its mixed form :math:`y = X\beta + Zu + e`, so the two parts are read off :math:`X`:

- a column of :math:`X` that within every group is a combination of :math:`Z_j`'s columns (a level-2 variable
  times a random-effects column, e.g. ``catholic`` = catholic\ :sub:`j` :math:`\times` 1 and ``cses:meanses`` =
  meanses\ :sub:`j` :math:`\times` cses) belongs to the level-2 model, :math:`X_j \hat\beta = Z_j W_j\hat\gamma
  + \dots`; it *enters the level-2 model of* each column of :math:`Z` it loads on;
- the other columns are level-1 predictors with fixed coefficients, :math:`F_j`, which each group's regression
  estimates for itself, as HLM's does.

For a group :math:`j` whose :math:`[Z_j\ F_j]` has full column rank, the OLS estimate of its random coefficients
minus their fitted level-2 prediction, and its sampling covariance at :math:`\hat\sigma^2`, are (Frisch-Waugh, with
:math:`M_{F_j}` the projection off the columns of :math:`F_j`)

.. math::

   \hat u^{\text{OLS}}_j = \hat\beta_j - W_j\hat\gamma = (Z_j'M_{F_j}Z_j)^{-1} Z_j'M_{F_j}(y_j - X_j\hat\beta),
   \qquad V_j = \hat\sigma^2 (Z_j'M_{F_j}Z_j)^{-1},

which is :math:`(Z_j'Z_j)^{-1}Z_j'(y_j - X_j\hat\beta)` and :math:`\hat\sigma^2 (Z_j'Z_j)^{-1}` when every
level-1 predictor has a random coefficient (the models of R&B ch. 4). A group with too few observations or a
singular design (:math:`n_j` below the number of columns of :math:`[Z_j\ F_j]`, a random slope's variable
constant in the group, ...) has no OLS estimate: it is left out of the quantities below, as HLM leaves out the
units without "sufficient data", and a warning gives their number. :math:`\hat\beta`, :math:`\hat\sigma^2` and
:math:`\hat\tau` are the fit's (REML or ML), as HLM's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .design import warn_user
from .lazy import stats

__all__ = ["UnitOLS", "unit_ols", "reliability", "homogeneity_test"]

# relative size below which a column counts as lying in the span of others (exact level-2 products give ~1e-15)
_SPAN_TOL = 1e-8


@dataclass
class UnitOLS:
    r"""Each group's own least-squares regression (module docstring), one row per group.

    ``estimate`` (J x q): :math:`\hat u^{\text{OLS}}_j = \hat\beta_j - W_j\hat\gamma`; ``cov`` (J x q x q):
    :math:`V_j = \hat\sigma^2 (Z_j'M_{F_j}Z_j)^{-1}`, both NaN for groups without an OLS estimate;
    ``usable`` (J,): whether the group has one; ``n_level2`` (q,): the number of fixed effects in each
    random coefficient's level-2 model (R&B's :math:`S_q + 1`); ``level1_fixed``: the columns of :math:`X`
    taken as level-1 predictors with fixed coefficients (:math:`F`)."""

    estimate: np.ndarray
    cov: np.ndarray
    usable: np.ndarray
    n_level2: np.ndarray
    level1_fixed: list[str]

    def warn_unusable(self, what: str) -> None:
        """Warn, naming ``what`` is computed without them, when some groups have no OLS estimate."""
        missing = int((~self.usable).sum())
        if missing:
            warn_user(f"{missing} of {self.usable.size} groups have too few observations or a singular level-1 "
                      f"design for their own OLS regression (n_j below the number of level-1 coefficients, or a "
                      f"variable with a random slope constant within the group): {what} uses the other "
                      f"{int(self.usable.sum())}, as HLM uses only the units with sufficient data")


def _group_rows(codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """The row positions of each group, in group-code order."""
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.cumsum(np.bincount(codes, minlength=n_groups))[:-1])


def _full_column_rank(A: np.ndarray, norms: np.ndarray | None = None) -> bool:
    """Whether A (rows x k) has rank k, judged on its columns divided by ``norms`` (default: their own lengths;
    for a projected matrix, the lengths before projection, so that a column projected to rounding noise is
    not mistaken for a direction of its own)."""
    norms = np.linalg.norm(A, axis=0) if norms is None else norms
    if A.shape[0] < A.shape[1] or np.any(norms == 0):
        return False
    s = np.linalg.svd(A / norms, compute_uv=False)
    return bool(s[-1] > _SPAN_TOL * max(s[0], 1.0))


def unit_ols(y: np.ndarray, X: np.ndarray, Z: np.ndarray, codes: np.ndarray, n_groups: int, beta: np.ndarray,
             sigma2: float, x_names: list[str]) -> UnitOLS:
    """The unit-by-unit OLS regressions of the module docstring, one pass over the groups."""
    q, p = Z.shape[1], X.shape[1]
    rows = _group_rows(codes, n_groups)
    # which columns of X lie, within every group, in the span of the group's Z (the level-2 model), and on which
    # columns of Z they load (judged in the groups whose Z_j has full rank, where the loading is unique)
    in_span, loads = np.ones(p, bool), np.zeros((q, p), bool)
    for r in rows:
        Zj, Xj = Z[r], X[r]
        coef = np.linalg.lstsq(Zj, Xj, rcond=None)[0]
        size = np.linalg.norm(Xj, axis=0)
        in_span &= np.linalg.norm(Xj - Zj @ coef, axis=0) <= _SPAN_TOL * np.maximum(size, 1e-300)
        if _full_column_rank(Zj):
            loads |= np.abs(coef) * np.linalg.norm(Zj, axis=0)[:, None] > _SPAN_TOL * size
    F = X[:, ~in_span]
    resid = y - X @ beta
    estimate, cov = np.full((n_groups, q), np.nan), np.full((n_groups, q, q), np.nan)
    usable = np.zeros(n_groups, bool)
    for j, r in enumerate(rows):
        Zj, rj = Z[r], resid[r]
        norms = np.linalg.norm(Zj, axis=0)
        if F.shape[1]:
            # project off the group's fixed-coefficient level-1 columns (an orthonormal basis of their span)
            U, s, _ = np.linalg.svd(F[r], full_matrices=False)
            basis = U[:, s > _SPAN_TOL * s.max()] if s.size and s.max() > 0 else U[:, :0]
            Zj = Zj - basis @ (basis.T @ Zj)
            rj = rj - basis @ (basis.T @ rj)
        if not _full_column_rank(Zj, norms):
            continue
        usable[j] = True
        estimate[j] = np.linalg.lstsq(Zj, rj, rcond=None)[0]
        cov[j] = sigma2 * np.linalg.inv(Zj.T @ Zj)
    in_model = loads & in_span[None, :]
    return UnitOLS(estimate=estimate, cov=cov, usable=usable, n_level2=in_model.sum(axis=1),
                   level1_fixed=[name for name, kept in zip(x_names, in_span) if not kept])


def reliability(fit, per_group: bool = False):
    r"""Raudenbush & Bryk's reliability of each group's OLS estimate of its random coefficients (module
    docstring), :meth:`hlmlib.MixedResult.reliability`."""
    units = fit._unit_ols
    units.warn_unusable("the reliability")
    tau = np.diag(fit.tau.to_numpy())
    v = np.diagonal(units.cov, axis1=1, axis2=2)
    with np.errstate(invalid="ignore"):
        lam = tau / (tau + v)
    table = pd.DataFrame(lam, index=fit.group_labels, columns=fit.re_names)
    if per_group:
        return table
    return table[units.usable].mean().rename("reliability")


def homogeneity_test(fit) -> pd.DataFrame:
    r"""Raudenbush & Bryk's chi-square test of :math:`\tau_{qq} = 0` for each random coefficient (module
    docstring), :meth:`hlmlib.MixedResult.homogeneity_test`."""
    units = fit._unit_ols
    units.warn_unusable("the homogeneity test")
    used = units.usable
    v = np.diagonal(units.cov[used], axis1=1, axis2=2)
    chi2 = (units.estimate[used] ** 2 / v).sum(axis=0)
    df = int(used.sum()) - units.n_level2
    if np.any(df <= 0):
        warn_user(f"the homogeneity test has no degrees of freedom left for "
                  f"{[n for n, d in zip(fit.re_names, df) if d <= 0]} (groups used minus fixed effects in the "
                  "level-2 model <= 0): its p-value is NaN")
    with np.errstate(invalid="ignore"):
        p = np.where(df > 0, stats.chi2.sf(chi2, np.maximum(df, 1)), np.nan)
    table = pd.DataFrame({"chi2": chi2, "df": df, "p": p, "groups": int(used.sum())},
                         index=pd.Index(fit.re_names, name="effect"))
    table.attrs["caption"] = ("Homogeneity tests of tau_qq = 0 (Raudenbush & Bryk 2002, eq. 3.103): sum over groups "
                              "of (OLS estimate - fitted level-2 prediction)^2 / its sampling variance, chi2(J' - S_q - 1)")
    return table
