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

**Model checks** (R&B 2002, ch. 9): Mahalanobis distances of the groups' random effects (:func:`mahalanobis`)
and the test of a homogeneous level-1 variance (:func:`level1_variance_test`).

**Variance explained** between two fits of the same data: Raudenbush & Bryk's proportion reduction in each
variance component (:func:`variance_explained`) and Snijders & Bosker's :math:`R^2_1` and :math:`R^2_2`
(:func:`snijders_bosker_r2`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .design import InputError, check_scalar, warn_user
from .lazy import stats

__all__ = ["UnitOLS", "unit_ols", "reliability", "homogeneity_test", "variance_explained", "snijders_bosker_r2",
           "mahalanobis", "Level1VarianceTest", "level1_variance_test"]

# relative size below which a column counts as lying in the span of others (exact level-2 products give ~1e-15)
_SPAN_TOL = 1e-8


@dataclass
class UnitOLS:
    r"""Each group's own least-squares regression (module docstring), one row per group.

    ``estimate`` (J x q): :math:`\hat u^{\text{OLS}}_j = \hat\beta_j - W_j\hat\gamma`; ``cov`` (J x q x q):
    :math:`V_j = \hat\sigma^2 (Z_j'M_{F_j}Z_j)^{-1}`, both NaN for groups without an OLS estimate;
    ``usable`` (J,): whether the group has one; ``n_level2`` (q,): the number of fixed effects in each
    random coefficient's level-2 model (R&B's :math:`S_q + 1`); ``level1_fixed``: the columns of :math:`X`
    taken as level-1 predictors with fixed coefficients (:math:`F`); ``rss`` and ``resid_df`` (J,): the residual
    sum of squares and degrees of freedom :math:`n_j - \operatorname{rank}[Z_j\ X_j]` of the group's regression
    on all its level-1 predictors (for :func:`level1_variance_test`)."""

    estimate: np.ndarray
    cov: np.ndarray
    usable: np.ndarray
    n_level2: np.ndarray
    level1_fixed: list[str]
    rss: np.ndarray
    resid_df: np.ndarray

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
             sigma2: float, x_names: list[str], project_fixed: bool = True) -> UnitOLS:
    r"""The unit-by-unit OLS regressions of the module docstring, one pass over the groups.

    ``project_fixed=False``: the regressions of :math:`y_j - X_j\hat\beta` on :math:`Z_j` alone, without
    projecting off :math:`F_j`: :math:`(Z_j'Z_j)^{-1} Z_j'(y_j - X_j\hat\beta)` with covariance
    :math:`\hat\sigma^2 (Z_j'Z_j)^{-1}`, the estimate that the empirical-Bayes one shrinks,
    :math:`\hat u_j = S_j (Z_j'Z_j)^{-1} Z_j'(y_j - X_j\hat\beta)` (:meth:`hlmlib.MixedResult.shrinkage`). The
    two are the same when :math:`F` is empty."""
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
            loads |= (np.abs(coef) * np.linalg.norm(Zj, axis=0)[:, None] > _SPAN_TOL * size) & (size > 0)
    F = X[:, ~in_span]
    resid = y - X @ beta
    estimate, cov = np.full((n_groups, q), np.nan), np.full((n_groups, q, q), np.nan)
    usable = np.zeros(n_groups, bool)
    rss, resid_df = np.empty(n_groups), np.empty(n_groups, dtype=int)
    for j, r in enumerate(rows):
        Zj, rj = Z[r], resid[r]
        rss[j], resid_df[j] = _residual_ss(np.column_stack([Zj, X[r]]), rj)
        norms = np.linalg.norm(Zj, axis=0)
        if F.shape[1] and project_fixed:
            # project off the group's fixed-coefficient level-1 columns
            basis = _span_basis(F[r])
            Zj = Zj - basis @ (basis.T @ Zj)
            rj = rj - basis @ (basis.T @ rj)
        if not _full_column_rank(Zj, norms):
            continue
        usable[j] = True
        estimate[j] = np.linalg.lstsq(Zj, rj, rcond=None)[0]
        cov[j] = sigma2 * np.linalg.inv(Zj.T @ Zj)
    in_model = loads & in_span[None, :]
    return UnitOLS(estimate=estimate, cov=cov, usable=usable, n_level2=in_model.sum(axis=1),
                   level1_fixed=[name for name, kept in zip(x_names, in_span) if not kept], rss=rss, resid_df=resid_df)


def _span_basis(A: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the span of A's columns, its rank judged on the columns scaled to unit length
    (so that columns in different units count alike; zero columns add nothing)."""
    norms = np.linalg.norm(A, axis=0)
    A = A[:, norms > 0] / norms[norms > 0]
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    return U[:, s > _SPAN_TOL * s.max()] if s.size else U


def _residual_ss(A: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """Residual sum of squares of y on the span of A's columns, and n - rank(A)."""
    basis = _span_basis(A)
    e = y - basis @ (basis.T @ y)
    return float(e @ e), y.size - basis.shape[1]


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
    used = units.usable
    if not used.any():
        raise InputError(f"none of the {used.size} groups has its own OLS estimate (each has fewer observations "
                         "than level-1 coefficients, or a random-slope variable constant within it): the homogeneity "
                         "test has no groups to use")
    units.warn_unusable("the homogeneity test")
    v = np.diagonal(units.cov[used], axis1=1, axis2=2)
    df = int(used.sum()) - units.n_level2
    chi2 = np.where(df > 0, (units.estimate[used] ** 2 / v).sum(axis=0), np.nan)
    if np.any(df <= 0):
        warn_user(f"the homogeneity test has no degrees of freedom left for "
                  f"{[n for n, d in zip(fit.re_names, df) if d <= 0]} ({int(used.sum())} groups used minus the fixed "
                  "effects in the level-2 model <= 0): its chi2 and p-value are NaN")
    with np.errstate(invalid="ignore"):
        p = np.where(df > 0, stats.chi2.sf(chi2, np.maximum(df, 1)), np.nan)
    table = pd.DataFrame({"chi2": chi2, "df": df, "p": p, "groups": int(used.sum())},
                         index=pd.Index(fit.re_names, name="effect"))
    table.attrs["caption"] = ("Homogeneity tests of tau_qq = 0 (Raudenbush & Bryk 2002, ch. 3): sum over groups "
                              "of (OLS estimate - fitted level-2 prediction)^2 / its sampling variance, "
                              "chi2(J' - S_q - 1)")
    return table


def _check_pair(base, fit) -> None:
    """Two mixed fits of the same rows, response and groups, by the same criterion."""
    from .mixed import MixedResult
    for name, model in (("base", base), ("fit", fit)):
        if not isinstance(model, MixedResult):
            raise InputError(f"{name} must be a mixed() fit (MixedResult), got {type(model).__name__}")
    if base.nobs != fit.nobs or not np.array_equal(base._y, fit._y) or not np.array_equal(base._codes, fit._codes):
        raise InputError("base and fit are not fits of the same data (observations, response or groups differ): "
                         "variance components are compared on the same rows")
    if base.reml != fit.reml:
        raise InputError("one fit is REML and the other ML: fit both the same way to compare their variance "
                         "components")


def variance_explained(base, fit) -> pd.DataFrame:
    r"""Raudenbush & Bryk's proportion reduction in each variance component from ``base`` to ``fit``.

    .. math::

       \frac{\hat\sigma^2_\text{base} - \hat\sigma^2_\text{fit}}{\hat\sigma^2_\text{base}}, \qquad
       \frac{\hat\tau_{qq,\text{base}} - \hat\tau_{qq,\text{fit}}}{\hat\tau_{qq,\text{base}}}

    (R&B 2002, ch. 4: the proportion of level-1 variance explained by the level-1 predictors added, and of
    the variance of each random coefficient explained by the level-2 predictors added). Rows:
    ``residual variance`` (:math:`\sigma^2`) and ``var(a)`` for each random effect ``a`` of both fits (same
    name, same column of :math:`Z`); columns ``base``, ``fit`` and ``reduction``.

    R&B's proportions compare :math:`\tau_{qq}` of models with the same level-1 model: the variance of an
    intercept is that of the outcome where the level-1 predictors are zero, so adding or recentring a level-1
    predictor changes what it is the variance of (compare the random-coefficient model and the
    intercepts-and-slopes-as-outcomes model for :math:`\tau`, the null and the random-coefficient model for
    :math:`\sigma^2`). A reduction can be negative: the components are estimated separately in each fit, and a
    level-1 predictor that explains within-group variance raises :math:`\hat\tau_{00}`, whose estimate in the
    base model had been net of :math:`\sigma^2/n_j` (Snijders & Bosker 2012, sec. 7.1; :func:`snijders_bosker_r2`).
    Both fits must be of the same data, by the same criterion (REML or ML).

    References
    ----------
    Raudenbush & Bryk (2002), *Hierarchical Linear Models*, 2nd ed., ch. 4.
    """
    _check_pair(base, fit)
    rows = {"residual variance": (base.sigma2, fit.sigma2)}
    for a, name in enumerate(fit.re_names):
        if name in base.re_names:
            b = base.re_names.index(name)
            if np.array_equal(base._Z[:, b], fit._Z[:, a]):
                rows[f"var({name})"] = (base.tau.iloc[b, b], fit.tau.iloc[a, a])
    table = pd.DataFrame(rows, index=["base", "fit"]).T.rename_axis("component")
    with np.errstate(invalid="ignore", divide="ignore"):
        table["reduction"] = (table["base"] - table["fit"]) / table["base"]
    if (table["base"] == 0).any():
        warn_user(f"{list(table.index[table['base'] == 0])} is zero in base (a boundary fit): no proportion of it "
                  "can be explained (NaN)")
        table.loc[table["base"] == 0, "reduction"] = np.nan
    table.attrs["caption"] = "Proportion reduction in variance, (base - fit) / base (Raudenbush & Bryk 2002, ch. 4)"
    return table


def snijders_bosker_r2(base, fit, n=None) -> pd.Series:
    r"""Snijders & Bosker's explained variance at level 1 and level 2, :math:`R^2_1` and :math:`R^2_2`.

    .. math::

       R^2_1 = 1 - \frac{\hat\sigma^2_F + \hat\tau_{00,F}}{\hat\sigma^2_B + \hat\tau_{00,B}}, \qquad
       R^2_2 = 1 - \frac{\hat\sigma^2_F / n + \hat\tau_{00,F}}{\hat\sigma^2_B / n + \hat\tau_{00,B}}

    (Snijders & Bosker 2012, sec. 7.1; Snijders & Bosker 1994): :math:`B` the base model (theirs is the empty
    model, ``y ~ 1 + (1 | g)``), :math:`F` the fitted one. :math:`R^2_1` is the proportional reduction of the
    mean squared error of predicting an individual outcome, :math:`R^2_2` that of predicting a group mean of
    :math:`n` individuals. ``n`` is a typical group size: by default the harmonic mean
    :math:`J / \sum_j n_j^{-1}` of the group sizes, as Snijders & Bosker (1994) recommend for unequal groups;
    give a number to use another (e.g. the arithmetic mean, :math:`N/J`).

    **Why** :math:`R^2_1` **can be negative.** In the population it cannot: adding a predictor cannot increase
    the total residual variance :math:`\sigma^2 + \tau_{00}` of a correctly specified model. In a sample it can,
    because the two models' components are estimated separately: by chance when the predictors explain little,
    and systematically when the fitted model is misspecified, e.g. a level-1 variable entered with one
    coefficient although its within-group and between-group regressions differ (Snijders & Bosker 2012, sec.
    7.1). A negative or falling :math:`R^2_1` is therefore a hint to look at the specification, not a
    computational error. Unlike R&B's separate reductions of :math:`\sigma^2` and :math:`\tau_{00}`
    (:func:`variance_explained`), it is not made negative merely by a within-group predictor moving variance
    between the two components.

    Both fits must be random-intercept models (one random effect, the intercept) of the same data by the same
    criterion: for random slopes Snijders & Bosker compute the :math:`R^2` of the random-intercept models with
    the same fixed effects, which is what to pass here.

    References
    ----------
    Snijders & Bosker (1994), Modeled variance in two-level models, *Sociological Methods & Research* 22(3);
    Snijders & Bosker (2012), *Multilevel Analysis*, 2nd ed., sec. 7.1.
    """
    _check_pair(base, fit)
    for name, model in (("base", base), ("fit", fit)):
        if model.q != 1 or not np.all(model._Z == 1):
            raise InputError(f"{name} has random effects {model.re_names}: Snijders & Bosker's R^2 is defined for "
                             "random-intercept models; for random slopes they compute it from the random-intercept "
                             "models with the same fixed effects (refit with (1 | group))")
    if n is None:
        n = fit.ngroups / np.sum(1 / fit._cp.n_obs)
    else:
        n = check_scalar(n, "n (a typical group size)", minimum=0, exclusive_minimum=True)
    total = {name: m.sigma2 + m.tau.iloc[0, 0] for name, m in (("base", base), ("fit", fit))}
    means = {name: m.sigma2 / n + m.tau.iloc[0, 0] for name, m in (("base", base), ("fit", fit))}
    return pd.Series({"R2_1": 1 - total["fit"] / total["base"], "R2_2": 1 - means["fit"] / means["base"],
                      "n": float(n)}, name="Snijders-Bosker R2")


def mahalanobis(fit) -> pd.DataFrame:
    r"""Mahalanobis distances of the groups' empirical-Bayes random effects, :meth:`hlmlib.MixedResult.mahalanobis`."""
    cp, q = fit._cp, fit.q
    s = cp.ZtZW[:, :, -1] - cp.ZtZW[:, :, q:-1] @ fit.params.to_numpy()          # Z_j'(y_j - X_j beta)
    scale = np.sqrt(np.diagonal(cp.ZtZ, axis1=1, axis2=2))
    full = np.all(scale > 0, axis=1)
    full[full] = np.linalg.eigvalsh(cp.ZtZ[full] / (scale[full, :, None] * scale[full, None, :]))[:, 0] > 1e-12
    ZtZ_inv = np.linalg.inv(cp.ZtZ[full])
    b_ols = (ZtZ_inv @ s[full][:, :, None])[:, :, 0]                               # (Z_j'Z_j)^-1 Z_j'(y_j - X_j beta)
    delta = fit.tau.to_numpy() + fit.sigma2 * ZtZ_inv                              # Var(b_ols) = T + V_j
    distance = np.full(fit.ngroups, np.nan)
    distance[full] = np.einsum("ja,ja->j", b_ols, np.linalg.solve(delta, b_ols[:, :, None])[:, :, 0])
    if not full.all():
        warn_user(f"{int((~full).sum())} of {full.size} groups have a singular Z_j'Z_j (fewer rows than random "
                  f"effects, or a random slope's variable constant in the group): their random effects have a "
                  f"singular variance and no Mahalanobis distance (NaN)")
    table = pd.DataFrame({"distance": distance, "df": q, "p": stats.chi2.sf(distance, q),
                          "n": cp.n_obs.astype(int)}, index=pd.Index(fit.group_labels, name="group"))
    table.attrs["caption"] = ("Mahalanobis distances of the empirical-Bayes random effects, "
                              f"u_j' (T - Var(u_j | y))^-1 u_j, against chi2({q})")
    return table


@dataclass(repr=False)
class Level1VarianceTest:
    r"""Raudenbush & Bryk's test of a homogeneous level-1 variance (:func:`level1_variance_test`).

    ``statistic`` (:math:`H`, or its between-category part with ``by``), ``df``, ``pvalue``; ``groups``: one row
    per group used (``n``, ``df`` = :math:`f_j`, ``s2`` = :math:`s_j^2`, ``d`` = :math:`d_j`, and the category);
    ``categories``: with ``by``, one row per category (``groups``, ``df`` = :math:`\sum f_j`, ``log_s2`` =
    the df-weighted mean of :math:`\ln s_j^2`, ``s2`` = its exponential, the geometric mean that the statistic
    uses, biased below the category's level-1 variance; ``s2_pooled`` = :math:`\sum_j \text{SSR}_j / \sum_j f_j`,
    the category's pooled level-1 variance, the one to report or to plug in elsewhere); ``left_out``: the groups with fewer
    than ``min_df`` residual degrees of freedom."""

    statistic: float
    df: int
    pvalue: float
    groups: pd.DataFrame
    categories: pd.DataFrame | None
    by: str | None
    min_df: int
    left_out: int

    def __repr__(self) -> str:
        what = (f"H = {self.statistic:.4f}" if self.by is None
                else f"between-category part of H (by {self.by}) = {self.statistic:.4f}")
        return (f"Homogeneity of the level-1 variance (Raudenbush & Bryk 2002, ch. 9): {what}, df = {self.df}, "
                f"p = {self.pvalue:.4g}\n  {len(self.groups)} groups with at least {self.min_df} residual df "
                f"({self.left_out} left out)")


def _group_categories(fit, by) -> tuple[np.ndarray, str]:
    """One category per group (in group order) from a column of the fit's data or a Series indexed by group."""
    if isinstance(by, str):
        if fit._data is None or by not in fit._data.columns:
            raise InputError(f"by={by!r} is not a column of the fit's data (give a Series of categories indexed by "
                             "the group labels instead)")
        column = fit._data[by].reset_index(drop=True)
        if column.isna().any():
            raise InputError(f"column {by!r} has missing values")
        per_group = column.groupby(fit._codes).nunique()
        if (per_group > 1).any():
            bad = fit.group_labels[per_group.index[per_group > 1][0]]
            bad = bad.item() if isinstance(bad, np.generic) else bad       # 0, not np.int64(0)
            raise InputError(f"column {by!r} varies within group {bad!r}: by= must be a level-2 variable (constant "
                             "within every group)")
        return column.groupby(fit._codes).first().to_numpy(), by
    if isinstance(by, pd.Series):
        repeated = by.index[by.index.duplicated()]
        if len(repeated):
            raise InputError(f"by has more than one category for group label(s) {list(dict.fromkeys(repeated))[:5]}: "
                             "index it by the group labels, each once")
        values = by.reindex(fit.group_labels)
        if values.isna().any():
            raise InputError(f"by has no category (or a missing one) for group(s) "
                             f"{list(fit.group_labels[values.isna().to_numpy()][:5])}: index it by every group label")
        return values.to_numpy(), str(by.name) if by.name is not None else "by"
    raise InputError(f"by must be None, the name of a level-2 column of the fit's data, or a Series of categories "
                     f"indexed by the group labels; got {type(by).__name__}")


def level1_variance_test(fit, by=None, min_df: int = 10) -> Level1VarianceTest:
    r"""Raudenbush & Bryk's test of a homogeneous level-1 variance, :meth:`hlmlib.MixedResult.level1_variance_test`."""
    min_df = check_scalar(min_df, "min_df", integer=True, minimum=1)
    units = fit._unit_ols
    f, rss = units.resid_df, units.rss
    used = (f >= min_df) & (rss > 0)
    if used.sum() < 2:
        raise InputError(f"only {int(used.sum())} group(s) have at least min_df = {min_df} residual degrees of "
                         f"freedom (n_j minus the level-1 coefficients): the test compares groups; lower min_df "
                         f"(Snijders & Bosker advise at least 10)")
    if np.any((f >= min_df) & (rss == 0)):
        warn_user("some groups' level-1 regressions fit exactly (residual variance 0): they are left out")
    f, s2 = f[used], rss[used] / f[used]
    log_s2 = np.log(s2)
    pooled = np.sum(f * log_s2) / np.sum(f)
    d = (log_s2 - pooled) / np.sqrt(2 / f)
    groups = pd.DataFrame({"n": fit._cp.n_obs[used].astype(int), "df": f, "s2": s2, "d": d},
                          index=pd.Index(fit.group_labels[used], name="group"))
    categories, name = None, None
    if by is None:
        statistic, df = float(np.sum(d ** 2)), int(used.sum()) - 1
    else:
        labels, name = _group_categories(fit, by)
        groups[name] = labels[used]
        grouped = pd.DataFrame({"c": labels[used], "f": f, "fl": f * log_s2, "rss": rss[used]}).groupby("c",
                                                                                                   sort=True)
        categories = pd.DataFrame({"groups": grouped.size(), "df": grouped["f"].sum()})
        categories["log_s2"] = grouped["fl"].sum() / categories["df"]
        categories["s2"] = np.exp(categories["log_s2"])
        categories["s2_pooled"] = grouped["rss"].sum() / categories["df"]
        categories.index.name = name
        if len(categories) < 2:
            raise InputError(f"by={name!r} has a single category among the groups used: nothing to compare")
        statistic = float(np.sum(categories["df"] / 2 * (categories["log_s2"] - pooled) ** 2))
        df = len(categories) - 1
    return Level1VarianceTest(statistic=statistic, df=df, pvalue=float(stats.chi2.sf(statistic, df)), groups=groups,
                              categories=categories, by=name, min_df=min_df, left_out=int((~used).sum()))
