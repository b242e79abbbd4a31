r"""Feasible GLS as OLS on transformed data: FWLS, random-effects GLS, within (fixed effects), Mundlak, Hausman.

Each estimator transforms :math:`y` and :math:`X` and hands the result to
``hlmlib.ols.OLSResult.from_design``, so every result has the same ``params``,
``vcov(kind, cluster)``, ``se``, ``summary``, ``contrast`` and ``marginal_effect`` as OLS; robust
covariances are the usual HC/CR formulas of the transformed model. Results are :class:`GLSResult`
(an :class:`~hlmlib.OLSResult` with ``details``: the estimated weights or variance components).

* :func:`fwls`: weighted least squares with weights from the lecture's variance function
  :math:`\operatorname{Var}(e^\ast_i) = s_0^2 + s_1^2 x_i^2 + s_2^2 z_i^2`.
* :func:`re_gls`: random-intercept GLS, :math:`y_{ij} - \theta_j \bar y_j` on
  :math:`x_{ij} - \theta_j \bar x_j` (Swamy-Arora).
* :func:`within`: the fixed-effects (within) estimator, df = :math:`N - G - k`.
* :func:`mundlak`: random-effects GLS with the group means of the time-varying regressors added.
* :func:`hausman`: Hausman's (1978) test of FE against RE.

References
----------
- Wooldridge (2010), *Econometric Analysis of Cross Section and Panel Data*, 2nd ed., ch. 10.
- Baltagi (2021), *Econometric Analysis of Panel Data*, 6th ed., ch. 2-4 and 9.
- Greene (2018), *Econometric Analysis*, 8th ed., ch. 9 and 11.
- Mundlak (1978), *Econometrica* 46(1), 69-85.
- Hausman (1978), *Econometrica* 46(6), 1251-1271.
"""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import nnls

from .design import Design, InputError, group_codes, labels_for, make_design, rhs_matrix
from .ols import OLSResult

__all__ = ["fwls", "re_gls", "within", "mundlak", "hausman", "GLSResult", "HausmanResult"]


class GLSResult(OLSResult):
    r"""An :class:`~hlmlib.OLSResult` of the transformed regression, plus ``details`` (dict)
    describing the transformation: weights and variance-function coefficients (FWLS),
    :math:`\theta` and variance components (RE-GLS), number of groups (within)."""

    details: dict

    @property
    def table_footer(self) -> dict:
        r"""Lines :func:`hlmlib.tables.etable` adds under this column."""
        d, out = self.details, {}
        if "sigma2_u" in d:
            out.update({"sigma_u^2 (between)": d["sigma2_u"], "sigma_e^2 (within)": d["sigma2_e"],
                        "theta (mean)": float(np.mean(d["theta"]))})
        if "variance_params" in d:
            out.update({f"variance: {k}": v for k, v in d["variance_params"].items()})
        if "n_groups" in d:
            out["Groups (absorbed)"] = str(d["n_groups"])
        return out


def _fit(design: Design, label: str, details: dict, df_resid=None) -> GLSResult:
    result = GLSResult.from_design(design, df_resid=df_resid, label=label)
    result.details = details
    return result


def _group_codes(groups, design: Design, what="groups"):
    labels = labels_for(groups, design, what)
    codes, uniques = group_codes(labels)
    if uniques.size < 2:
        raise InputError(f"{what} has a single group: these estimators need at least 2")
    return codes, uniques


def _means_by_group(values: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Group means, (G,) or (G, k), of ``values`` (n,) or (n, k): one bincount per column."""
    if values.ndim == 1:
        return np.bincount(codes, weights=values) / counts
    means = np.empty((counts.size, values.shape[1]))
    for j in range(values.shape[1]):
        means[:, j] = np.bincount(codes, weights=values[:, j]) / counts
    return means


def _group_means(values: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-row group means: every row gets its group's mean."""
    return _means_by_group(values, codes, counts)[codes]


def _transformed(design: Design, y, X, names=None) -> Design:
    """A Design for transformed data that keeps the original data and rows (so cluster='col' works)."""
    return replace(design, y=np.ascontiguousarray(y), X=np.ascontiguousarray(X),
                   names=list(design.names if names is None else names))


# ----------------------------------------------------------------------------------------------
# FWLS
# ----------------------------------------------------------------------------------------------

def _is_product_of_others(X: np.ndarray, j: int, candidates) -> bool:
    """Whether column j is (numerically) the product of two other columns, like x:z or x**2 = x*x.
    The default variance function squares only main effects, so it is s0^2 + s1^2 x^2 + s2^2 z^2 for
    y ~ x*z whether the fit came from a formula (term "x:z") or from arrays (an unnamed product column)."""
    others = [a for a in candidates if a != j]
    scale = np.abs(X[:, j]).max()
    return any(np.allclose(X[:, a] * X[:, b], X[:, j], rtol=1e-10, atol=1e-12 * scale)
               for i, a in enumerate(others) for b in others[i:])


def _variance_regressors(design: Design, variance):
    """The regressors of the variance function, without the constant (added later)."""
    if variance is None:
        X = design.X
        varying = np.flatnonzero(np.any(X != X[:1], axis=0)).tolist()
        keep = [j for j in varying if not _is_product_of_others(X, j, varying)]
        if not keep:
            raise InputError("no non-constant main-effect column to build the default variance function from; "
                             "give variance=")
        return design.X[:, keep] ** 2, [f"{design.names[j]}^2" for j in keep]
    if isinstance(variance, str):
        if design.data is None:
            raise InputError("variance= as a formula needs a formula fit with data=; with arrays pass an array")
        frame = rhs_matrix(variance if "~" in variance else "~ " + variance, design.data.loc[design.rows])
        frame = frame.drop(columns=[c for c in frame.columns if c == "Intercept"])
        return frame.to_numpy(float), [str(c) for c in frame.columns]
    V = np.asarray(variance, dtype=float)
    V = V[:, None] if V.ndim == 1 else V
    if V.shape[0] != design.n:
        raise InputError(f"variance= has {V.shape[0]} rows, the fit has {design.n}")
    if not np.isfinite(V).all():
        raise InputError("variance= has NaN or inf values")
    return V, [f"v{j}" for j in range(V.shape[1])]


def fwls(y_or_formula, X=None, data=None, *, variance=None, method: str = "nnls") -> GLSResult:
    r"""Feasible weighted least squares for the lecture's random-coefficient error.

    Model: :math:`y = Xb + e^\ast`,
    :math:`\operatorname{Var}(e^\ast_i) = s_0^2 + s_1^2 x_i^2 + s_2^2 z_i^2` (:math:`= g_i' s`,
    :math:`s \ge 0`), independent across :math:`i`. Steps:

    1. OLS of :math:`y` on :math:`X`; squared residuals :math:`e_i^2`.
    2. The variance function: regress :math:`e_i^2` on :math:`[1, g_i]` (default :math:`g_i` = the
       squares of the non-constant main-effect columns of :math:`X`, e.g. :math:`x^2` and :math:`z^2`
       for ``"y ~ x*z"``; or ``variance=`` a formula such as ``"~ I(x**2) + I(z**2)"`` or an array).

       ``method="nnls"`` (default): non-negative least squares, so every :math:`s_j^2 \ge 0` as the
       model requires, and fitted variances :math:`h_i = [1, g_i] \hat s`; a fit with
       :math:`h_i \le 0` somewhere (possible only when :math:`\hat s_0^2 = 0`) is floored at 1e-6 times
       the mean of :math:`e^2`.

       ``method="exp"``: Harvey's (1976) multiplicative model, :math:`\log e_i^2` on :math:`[1, g_i]`,
       :math:`h_i = \exp(\text{fit})` (always positive; its constant's bias is irrelevant for weights).
    3. WLS with weights :math:`w_i = 1/h_i`, i.e. OLS on :math:`\sqrt{w_i}\, y_i` and
       :math:`\sqrt{w_i}\, x_i` (statsmodels ``WLS(y, X, weights=w)``; Stata ``regress [aweight=w]`` up
       to the scale of :math:`w`).

    Returns a :class:`GLSResult`: ``vcov("classical")`` is :math:`s^2 (X'WX)^{-1}` and
    ``vcov("HC1")`` etc. the HC/CR formulas of the transformed model (robust to a misspecified variance
    function); ``details`` holds ``weights``, ``variance_params`` (:math:`\hat s`, Series) and
    ``method``.

    References
    ----------
    Greene (2018), sec. 9.6; Wooldridge (2010), sec. 8.
    """
    design = make_design(y_or_formula, X, data=data)
    first = OLSResult.from_design(design)
    e2 = first.resid.to_numpy() ** 2
    G, gnames = _variance_regressors(design, variance)
    Zv = np.column_stack([np.ones(design.n), G])
    names = ["1"] + gnames
    if method == "nnls":
        scale = np.sqrt((Zv ** 2).sum(0))  # column scaling: nnls on a well-scaled problem
        coef, _ = nnls(Zv / scale, e2)
        coef = coef / scale
        h = Zv @ coef
        floor = 1e-6 * e2.mean()
        if (h <= floor).any():
            warnings.warn(f"FWLS: {int((h <= floor).sum())} fitted variance(s) at or below zero floored "
                          f"at {floor:.3g} (1e-6 x mean squared residual)", stacklevel=2)
            h = np.maximum(h, floor)
    elif method == "exp":
        if (e2 <= 0).any():
            raise InputError("method='exp' needs log e^2: some OLS residuals are exactly zero")
        coef = np.linalg.lstsq(Zv, np.log(e2), rcond=None)[0]
        h = np.exp(Zv @ coef)
    else:
        raise InputError(f"method must be 'nnls' or 'exp', got {method!r}")
    w = 1.0 / h
    sw = np.sqrt(w)
    details = dict(weights=w, fitted_variance=h, variance_params=pd.Series(coef, index=names),
                   method=method)
    return _fit(_transformed(design, design.y * sw, design.X * sw[:, None]), f"FWLS ({method})", details)


# ----------------------------------------------------------------------------------------------
# Panel estimators: within, random-effects GLS, Mundlak
# ----------------------------------------------------------------------------------------------

def _panel(y_or_formula, X, data, groups):
    extra = [groups] if isinstance(groups, str) else ()
    design = make_design(y_or_formula, X, data=data, extra_columns=extra if data is not None else ())
    codes, uniques = _group_codes(groups, design)
    counts = np.bincount(codes).astype(float)
    return design, codes, counts


def _varies_within(X, codes, counts):
    """Columns whose within-group deviations are not all (numerically) zero."""
    dev = X - _group_means(X, codes, counts)
    scale = np.maximum(np.abs(X).max(0), 1e-300)
    return np.abs(dev).max(0) > 1e-10 * scale


def _within_pieces(design, codes, counts):
    varying = _varies_within(design.X, codes, counts)
    dropped = [nm for nm, v in zip(design.names, varying) if not v and nm != "Intercept"]
    return varying, dropped


def within(y_or_formula, X=None, data=None, *, groups) -> GLSResult:
    r"""The within (fixed-effects) estimator: OLS of :math:`y_{ij} - \bar y_j` on :math:`x_{ij} - \bar x_j`.

    Parameterised as Stata's ``xtreg, fe``: the grand means are added back
    (:math:`y_{ij} - \bar y_j + \bar y`, :math:`x_{ij} - \bar x_j + \bar x`) and an intercept
    estimated (the average of the fixed effects), so the slopes equal the dummy-variable (LSDV)
    regression's. Columns constant within every group (the intercept, group-level variables such as
    :math:`\text{GSPEND}_j`) are absorbed by the fixed effects and dropped, with a warning that names
    them.

    Degrees of freedom: :math:`s^2 = e'e / (N - G - k)`, :math:`k` = slopes, and classical/HC tests
    use :math:`t(N - G - k)`; so the classical se equal LSDV's, and HC0/HC1 equal LSDV's (HC1 =
    :math:`N/(N - G - k)`, statsmodels' LSDV convention). Cluster-robust: CR1 =
    :math:`G/(G-1) \cdot (N-1)/(N-k-1)`, Stata ``xtreg, fe vce(cluster g)`` (the fixed effects nested
    in the clusters are not counted), which is smaller than Stata ``regress ... i.g, vce(cluster g)``,
    whose :math:`(N-1)/(N-G-k)` counts them; CR0 equals LSDV's CR0. HC2/HC3/CR2/CR3 use the leverages
    of the demeaned design. Cluster df: :math:`G - 1`.

    References
    ----------
    Wooldridge (2010), sec. 10.5; Stata [XT] xtreg.
    """
    design, codes, counts = _panel(y_or_formula, X, data, groups)
    varying, dropped = _within_pieces(design, codes, counts)
    if dropped:
        warnings.warn(f"within: column(s) {dropped} do not vary within {groups if isinstance(groups, str) else 'groups'} "
                      f"and are absorbed by the fixed effects (dropped)", stacklevel=2)
    if not varying.any():
        raise InputError("within: no column of X varies within groups; nothing is identified")
    Xv, names = design.X[:, varying], [nm for nm, v in zip(design.names, varying) if v]
    y_dm = design.y - _group_means(design.y, codes, counts) + design.y.mean()
    X_dm = Xv - _group_means(Xv, codes, counts) + Xv.mean(0)
    N, G, k = design.n, counts.size, Xv.shape[1]
    if N - G - k <= 0:
        raise InputError(f"within: N - G - k = {N} - {G} - {k} leaves no residual degrees of freedom")
    X_fit = np.column_stack([np.ones(N), X_dm])
    details = dict(n_groups=G, absorbed=dropped, df_resid=N - G - k)
    return _fit(_transformed(design, y_dm, X_fit, ["Intercept"] + names), "within (FE)", details, df_resid=N - G - k)


def _swamy_arora(design, codes, counts):
    """sigma_e^2 from the within regression, sigma_u^2 from the between regression (group means).

    sigma_e^2 = e_w'e_w / (N - G - k_w)  (k_w = regressors that vary within groups);
    sigma_b^2 = e_b'e_b / (G - k)        (OLS of ybar_j on xbar_j, one row per group);
    sigma_u^2 = max(0, sigma_b^2 - sigma_e^2 / T),  T = harmonic mean of n_j (= n in a balanced panel).
    """
    N, G, k = design.n, counts.size, design.k
    if G <= k:
        raise InputError(f"Swamy-Arora needs more groups ({G}) than coefficients ({k}) for the between regression")
    varying = _varies_within(design.X, codes, counts)
    k_w = int(varying.sum())
    if N - G - k_w <= 0:
        raise InputError(f"Swamy-Arora's within regression has no residual degrees of freedom (N - G - k_w = "
                         f"{N} - {G} - {k_w}) to estimate sigma_e^2: give variance_components=(sigma_e^2, sigma_u^2)")
    Xb, yb = _means_by_group(design.X, codes, counts), _means_by_group(design.y, codes, counts)
    Xw, yw = design.X[:, varying] - Xb[codes][:, varying], design.y - yb[codes]
    e_w = yw - Xw @ np.linalg.lstsq(Xw, yw, rcond=None)[0] if k_w else yw
    sigma2_e = float(e_w @ e_w) / (N - G - k_w)
    e_b = yb - Xb @ np.linalg.lstsq(Xb, yb, rcond=None)[0]
    sigma2_b = float(e_b @ e_b) / (G - k)
    T = G / np.sum(1.0 / counts)
    return sigma2_e, max(0.0, sigma2_b - sigma2_e / T)


def re_gls(y_or_formula, X=None, data=None, *, groups, variance_components=None) -> GLSResult:
    r"""Random-effects (random-intercept) GLS: :math:`y_{ij} = x_{ij}'b + u_j + e_{ij}`,
    :math:`u_j \sim (0, \sigma_u^2)`, :math:`e \sim (0, \sigma_e^2)`.

    GLS with :math:`V_j = \sigma_e^2 I + \sigma_u^2 \mathbf{1}\mathbf{1}'` is OLS on quasi-demeaned data

    .. math::

       y_{ij} - \theta_j \bar y_j \ \text{ on } \ x_{ij} - \theta_j \bar x_j, \qquad
       \theta_j = 1 - \sqrt{\frac{\sigma_e^2}{\sigma_e^2 + n_j \sigma_u^2}}

    (the intercept becomes :math:`1 - \theta_j`), since :math:`V_j^{-1/2}` is proportional to :math:`I - \theta_j J/n_j`. :math:`\theta_j = 0` gives
    pooled OLS and :math:`\theta_j \to 1` (:math:`n_j \sigma_u^2 \gg \sigma_e^2`) the within
    estimator. The variance components are Swamy-Arora's (Stata ``xtreg, re`` default for balanced
    panels; linearmodels ``RandomEffects``; see ``_swamy_arora``):
    :math:`\hat\sigma_e^2 = e_w'e_w / (N - G - k_w)` from the within regression (:math:`k_w`
    regressors that vary within groups), :math:`\hat\sigma_b^2 = e_b'e_b / (G - k)` from the between
    regression of :math:`\bar y_j` on :math:`\bar x_j`, and
    :math:`\hat\sigma_u^2 = \max(0, \hat\sigma_b^2 - \hat\sigma_e^2 / T)`, :math:`T` the harmonic
    mean of the :math:`n_j` (the group size in a balanced panel; Stata's unbalanced formula differs
    slightly). ``variance_components=(sigma_e^2, sigma_u^2)`` fixes them.

    Classical se: :math:`s^2 (X^{\ast\prime} X^\ast)^{-1}` with :math:`s^2` from the transformed
    residuals, df :math:`N - k` (as linearmodels; Stata's z-tests use :math:`\sigma_e^2` directly).
    Robust kinds: HC/CR of the transformed model; with ``cluster`` = the groups, CR1 is Stata
    ``xtreg, re vce(cluster)`` up to its small-sample factor.

    References
    ----------
    Baltagi (2021), sec. 2.3 and 9.2; Wooldridge (2010), sec. 10.7.
    """
    design, codes, counts = _panel(y_or_formula, X, data, groups)
    return _re_fit(design, codes, counts, variance_components, "RE-GLS")


def _re_fit(design, codes, counts, variance_components, label):
    if variance_components is None:
        sigma2_e, sigma2_u = _swamy_arora(design, codes, counts)
    else:
        sigma2_e, sigma2_u = map(float, variance_components)
        if sigma2_e <= 0 or sigma2_u < 0:
            raise InputError(f"variance_components must be (sigma_e^2 > 0, sigma_u^2 >= 0), got {variance_components}")
    theta_g = 1.0 - np.sqrt(sigma2_e / (sigma2_e + counts * sigma2_u))
    theta = theta_g[codes]
    y_star = design.y - theta * _group_means(design.y, codes, counts)
    X_star = design.X - theta[:, None] * _group_means(design.X, codes, counts)
    details = dict(sigma2_e=sigma2_e, sigma2_u=sigma2_u, theta=theta_g)
    return _fit(_transformed(design, y_star, X_star), label, details)


def mundlak(y_or_formula, X=None, data=None, *, groups, variance_components=None) -> GLSResult:
    r"""The Mundlak (1978) device: random-effects GLS with the group means of the regressors that vary
    within groups added as regressors ("mean(x)").

    :math:`y_{ij} = x_{ij}'b + z_j'g + \bar x_j'\pi + u_j + e_{ij}`. The slope :math:`b` on each
    time-varying :math:`x` equals the within estimator exactly (balanced or not: the quasi-demeaned
    :math:`x` splits into the within deviation :math:`x - \bar x`, orthogonal to every group-constant
    column, and a multiple of :math:`\bar x`). :math:`\pi = 0` is the hypothesis under which RE is
    consistent; test it with ``.contrast`` on the mean(...) terms and a cluster-robust kind (a robust
    alternative to :func:`hausman`; Wooldridge 2010, sec. 10.7.3).
    """
    design, codes, counts = _panel(y_or_formula, X, data, groups)
    varying = _varies_within(design.X, codes, counts)
    if not varying.any():
        raise InputError("mundlak: no column of X varies within groups")
    means = _group_means(design.X[:, varying], codes, counts)
    mean_names = [f"mean({nm})" for nm, v in zip(design.names, varying) if v]
    augmented = _transformed(design, design.y, np.column_stack([design.X, means]), design.names + mean_names)
    return _re_fit(augmented, codes, counts, variance_components, "Mundlak (RE-GLS + group means)")


# ----------------------------------------------------------------------------------------------
# Hausman
# ----------------------------------------------------------------------------------------------

class HausmanResult:
    r"""The result of :func:`hausman`: ``statistic``, ``df``, ``pvalue``, ``terms``, ``difference``
    (:math:`b_\text{FE} - b_\text{RE}`), ``vcov_difference``, ``generalized_inverse`` (True when
    :math:`V_\text{FE} - V_\text{RE}` was not positive definite)."""

    def __init__(self, statistic, df, terms, difference, vcov_difference, generalized_inverse, kind):
        self.statistic, self.df, self.terms = float(statistic), int(df), list(terms)
        self.difference, self.vcov_difference = difference, vcov_difference
        self.generalized_inverse, self.kind = generalized_inverse, kind
        self.pvalue = float(stats.chi2.sf(self.statistic, self.df)) if self.df > 0 else np.nan

    def __repr__(self) -> str:
        note = ("; V_FE - V_RE is not positive definite: Moore-Penrose inverse, df = its rank"
                if self.generalized_inverse else "")
        return (f"Hausman test, FE vs RE on {self.terms} ({self.kind} covariances): chi2({self.df}) = "
                f"{self.statistic:.4f}, p = {self.pvalue:.4g}{note}")


def hausman(fe: OLSResult, re: OLSResult, kind: str = "classical", terms=None) -> HausmanResult:
    r"""Hausman's test of :math:`H_0`: the random effects are uncorrelated with the regressors (RE
    consistent and efficient, FE consistent).

    .. math::

       H = (b_\text{FE} - b_\text{RE})' \, [V_\text{FE} - V_\text{RE}]^{-1} (b_\text{FE} - b_\text{RE}) \sim \chi^2(m)

    on the :math:`m` coefficients common to both fits that vary within groups (the intercept
    excluded). Each fit's own ``vcov(kind)`` is used, as Stata's ``hausman fe re`` (which uses each
    model's sigma). If :math:`V_\text{FE} - V_\text{RE}` is not positive definite (it can happen in finite
    samples), a warning says so and the Moore-Penrose generalized inverse is used with df = the
    number of positive eigenvalues (Stata does the same and notes it). Under heteroskedasticity or
    serial correlation the test is invalid: use the Mundlak test with a cluster-robust covariance
    instead.
    """
    if str(kind).upper().startswith("CR"):
        raise InputError("hausman compares V_FE - V_RE, the variance of the difference only when RE is efficient, "
                         "which a cluster-robust covariance denies; test mundlak(...)'s coefficients on the group "
                         "means with a cluster-robust contrast instead")
    common = [t for t in fe.names if t in re.names and t != "Intercept"] if terms is None else list(terms)
    missing = [t for t in common if t not in fe.names or t not in re.names]
    if missing or not common:
        raise InputError(f"hausman needs terms present in both fits; missing {missing or 'all'}")
    d = (fe.params[common] - re.params[common]).to_numpy()
    V = fe.vcov(kind).loc[common, common].to_numpy() - re.vcov(kind).loc[common, common].to_numpy()
    lam, U = np.linalg.eigh((V + V.T) / 2)
    tol = max(lam.max(), 0.0) * len(lam) * np.finfo(float).eps * 10
    positive = lam > tol
    generalized = not positive.all()
    if generalized:
        warnings.warn(f"hausman: V_FE - V_RE is not positive definite (eigenvalues {np.round(lam, 12)}); "
                      f"using its Moore-Penrose inverse with df = {int(positive.sum())}", stacklevel=2)
    proj = U[:, positive].T @ d
    statistic = float(np.sum(proj ** 2 / lam[positive]))
    return HausmanResult(statistic, int(positive.sum()), common, pd.Series(d, index=common),
                         pd.DataFrame(V, index=common, columns=common), generalized, kind)
