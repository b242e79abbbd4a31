r"""Feasible GLS as OLS on transformed data: FWLS, random-effects GLS, within (fixed effects), Mundlak, Hausman.

Each estimator transforms :math:`y` and :math:`X` and hands the result to
``hlmlib.ols.OLSResult.from_design``, so every result has the same ``params``,
``vcov(kind, cluster)``, ``se``, ``summary``, ``contrast`` and ``marginal_effect`` as OLS; robust
covariances are the usual HC/CR formulas of the transformed model. Results are :class:`GLSResult`
(an :class:`~hlmlib.OLSResult` with ``details``: the estimated weights or variance components).

* :func:`fwls`: weighted least squares with weights from the lecture's variance function
  :math:`\operatorname{Var}(e^\ast_i) = s_0^2 + s_1^2 x_i^2 + s_2^2 z_i^2`.
* :func:`re_gls`: random-intercept GLS, :math:`y_{ij} - \theta_j \bar y_j` on
  :math:`x_{ij} - \theta_j \bar x_j` (Swamy-Arora variance components).
* :func:`within`: the fixed-effects (within) estimator, df = :math:`N - G - k`.
* :func:`mundlak`: random-effects GLS with the group means of the time-varying regressors added.
* :func:`hausman`: Hausman's (1978) test of FE against RE.

The variance steps work on :math:`y` divided by a power of two near its largest value (exact in binary
floating point), so squared residuals neither overflow nor underflow for :math:`y` anywhere in the double
range; the estimates themselves are those of the final OLS on transformed data.

References
----------
- Wooldridge (2010), *Econometric Analysis of Cross Section and Panel Data*, 2nd ed., ch. 10.
- Baltagi (2021), *Econometric Analysis of Panel Data*, 6th ed., ch. 2-4 and 9.
- Baltagi & Chang (1994), *Journal of Econometrics* 62(2), 67-89.
- Greene (2018), *Econometric Analysis*, 8th ed., ch. 9 and 11.
- Mundlak (1978), *Econometrica* 46(1), 69-85.
- Hausman (1978), *Econometrica* 46(6), 1251-1271.
"""
from __future__ import annotations

import numbers
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd

from .lazy import stats
from .design import Design, InputError, formula_data, group_codes, labels_for, make_design, rhs_matrix
from .linalg import power_of_two_scale
from .ols import OLSResult

__all__ = ["fwls", "re_gls", "within", "mundlak", "hausman", "GLSResult", "HausmanResult"]

EPS = np.finfo(float).eps
# Below this many rounding units of y's scale a residual is zero: y is fitted exactly.
EXACT_FIT_ULPS = 1e3


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

    def predict(self, *args, **kwargs):
        """Not available: the fit is OLS on transformed data (weighted, quasi-demeaned or demeaned rows), so
        its fitted values and residual variance are those of the transformed model, and the within
        estimator has no group effects to predict with. For the mean :math:`x_0'b` of new rows use
        ``contrast(X0)`` (its confidence interval uses this fit's covariance)."""
        raise InputError(f"predict is for OLS fits (hlmlib.ols); this {self.label} fit is OLS on transformed data, "
                         "whose fitted values and residual variance are not the model's: for the mean x0'b of new "
                         "rows use .contrast(X0), which gives its standard error and confidence interval")


def _fit(design: Design, label: str, details: dict, df_resid=None) -> GLSResult:
    result = GLSResult.from_design(design, df_resid=df_resid, label=label)
    result.details = details
    return result


# ----------------------------------------------------------------------------------------------
# Argument checks and scale
# ----------------------------------------------------------------------------------------------

def _choice(value, name: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def _flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _real(value, name: str) -> float:
    """A finite real number (not a bool, string or complex), as float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise InputError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def _y_scale(y: np.ndarray) -> float:
    """A power of two near max|y|: y / scale is exact and of order one."""
    return float(power_of_two_scale(np.abs(y).max(initial=0.0)))


def _in_units(value, scale: float, what: str):
    """``value`` (computed on y / scale) times scale^2, in y's units; a warning when that leaves the double
    range (the estimates do not depend on it: only ratios of variances enter the weights)."""
    with np.errstate(over="ignore", under="ignore"):
        out = np.asarray(value, dtype=float) * scale * scale
    lost = ~np.isfinite(out) | ((out == 0) & (np.asarray(value) != 0))
    if np.any(lost):
        warnings.warn(f"{what} in the units of y^2 is outside the double range at this scale of y (|y| up "
                      f"to about {scale:.3g}); reported as {'inf' if np.isinf(out).any() else '0'}. Only "
                      f"ratios of variances enter the weights, so the estimates do not depend on it", stacklevel=3)
    return float(out) if np.ndim(out) == 0 else out


def _scaled_lstsq(A: np.ndarray, b: np.ndarray, scale_from: np.ndarray | None = None):
    """Least squares with A's columns divided by powers of two near their largest values (those of
    ``scale_from``, default A), so the rank is that of the columns' directions, not of their units.
    Returns the residuals and the rank."""
    source = A if scale_from is None else scale_from
    s = power_of_two_scale(np.abs(source).max(axis=0, initial=0.0))
    coef, _, rank, _ = np.linalg.lstsq(A / s, b, rcond=None)
    return b - (A / s) @ coef, int(rank)


# ----------------------------------------------------------------------------------------------
# Group means
# ----------------------------------------------------------------------------------------------

def _group_codes(groups, design: Design, what="groups"):
    if groups is None:
        raise InputError(f"{what}= is required: a column name (formula fits) or one label per row")
    labels = labels_for(groups, design, what)
    if len(labels) != design.n:      # data.loc[rows] repeats a duplicated index label
        raise InputError(f"{what} has {len(labels)} labels for {design.n} rows: the data's index has duplicated "
                         f"labels; reset it (data.reset_index(drop=True))")
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

def _unit_max(v: np.ndarray) -> np.ndarray:
    m = np.abs(v).max()
    return v / m if m > 0 else v


def _is_product_of_others(X: np.ndarray, j: int, candidates) -> bool:
    """Whether column j is (numerically) proportional to the product of two other columns, like x:z or
    x**2 = x*x. The default variance function squares only main effects, so it is s0^2 + s1^2 x^2 + s2^2 z^2
    for y ~ x*z whether the fit came from a formula (term "x:z") or from arrays (an unnamed product column).
    Columns are compared scaled to unit maximum, so the test is the same in any units."""
    others = [a for a in candidates if a != j]
    target = _unit_max(X[:, j])
    for i, a in enumerate(others):
        for b in others[i:]:
            product = _unit_max(_unit_max(X[:, a]) * _unit_max(X[:, b]))
            if any(np.allclose(sign * product, target, rtol=1e-10, atol=1e-12) for sign in (1, -1)):
                return True
    return False


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
        from formulaic.errors import FormulaicError

        try:
            frame = rhs_matrix(variance if "~" in variance else "~ " + variance, design.data.loc[design.rows])
        except FormulaicError as err:
            raise InputError(f"variance={variance!r} cannot be evaluated on the data: {err}") from None
        frame = frame.drop(columns=[c for c in frame.columns if c == "Intercept"])
        if frame.shape[0] != design.n:   # data.loc[rows] repeats a duplicated index label
            raise InputError("variance= as a formula needs a data index without duplicated labels; reset it "
                             "(data.reset_index(drop=True))")
        if frame.shape[1] == 0:
            raise InputError(f"variance={variance!r} has no regressor besides the constant")
        return frame.to_numpy(float), [str(c) for c in frame.columns]
    try:
        V = np.asarray(variance, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"variance= must be a formula string or a numeric array, got {type(variance).__name__}") from None
    V = V[:, None] if V.ndim == 1 else V
    if V.ndim != 2 or V.shape[0] != design.n or V.shape[1] == 0:
        raise InputError(f"variance= must have one row per observation ({design.n}) and at least one column; "
                         f"got shape {np.shape(variance)}")
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
       the mean of :math:`e^2`, with a warning.

       ``method="exp"``: Harvey's (1976) multiplicative model, :math:`\log e_i^2` on :math:`[1, g_i]`,
       :math:`h_i = \exp(\text{fit})` (always positive; its constant's bias is irrelevant for weights).
    3. WLS with weights :math:`w_i \propto 1/h_i`, scaled to mean 1 (Stata's normalisation of
       ``aweight``; WLS does not depend on the scale of the weights), i.e. OLS on
       :math:`\sqrt{w_i}\, y_i` and :math:`\sqrt{w_i}\, x_i` (statsmodels ``WLS(y, X, weights=w)``;
       Stata ``regress [aweight=w]``).

    Returns a :class:`GLSResult`: ``vcov("classical")`` is :math:`s^2 (X'WX)^{-1}` and
    ``vcov("HC1")`` etc. the HC/CR formulas of the transformed OLS (robust to a misspecified variance
    function). CR2 is the CR2 of that transformed OLS (adjustment matrices from the hat matrix of
    :math:`W^{1/2}X`): it equals clubSandwich's CR2 of the transformed ``lm(sqrt(w) * y ~ 0 + sqrt(w) * X)``
    and differs from clubSandwich's CR2 of ``lm(y ~ X, weights = w)`` (with or without ``inverse_var``);
    CR1 equals sandwich's ``vcovCL`` on the weighted ``lm`` (tests/test_gls.py). ``details`` holds ``weights`` (mean 1), ``fitted_variance`` (:math:`h_i`),
    ``variance_params`` (:math:`\hat s`, Series) and ``method``.

    The variance function is fitted on :math:`e_i / c` (:math:`c` a power of two near
    :math:`\max |e_i|`) and on its regressors scaled to unit maximum, so the weights are right for
    :math:`y` and :math:`X` in any units; ``fitted_variance`` and ``variance_params`` are reported in
    the units of :math:`y^2`, with a warning where those leave the double range.

    References
    ----------
    Greene (2018), sec. 9.6; Wooldridge (2010), sec. 8.
    """
    _choice(method, "method", ("nnls", "exp"))
    design = _with_columns(make_design(y_or_formula, X, data=data))
    G, gnames = _variance_regressors(design, variance)
    first = OLSResult.from_design(design)
    resid = first.resid.to_numpy()
    c = _y_scale(resid)
    if np.abs(resid).max() <= EXACT_FIT_ULPS * EPS * np.abs(design.y).max():
        raise InputError("X fits y exactly (every OLS residual is zero to rounding): there is no error "
                         "variance for FWLS to model")
    e2 = (resid / c) ** 2
    g_scale = power_of_two_scale(np.abs(G).max(axis=0))
    Zs = np.column_stack([np.ones(design.n), G / g_scale])
    names = ["1"] + gnames
    if method == "nnls":
        from scipy.optimize import nnls           # here: scipy.optimize would add a third to hlmlib's import time

        coef_s, _ = nnls(Zs, e2)
        h = Zs @ coef_s
        floor = 1e-6 * e2.mean()
        if (h <= floor).any():
            warnings.warn(f"FWLS: {int((h <= floor).sum())} fitted variance(s) at or below zero floored "
                          f"at 1e-6 x the mean squared residual", stacklevel=2)
            h = np.maximum(h, floor)
    else:
        if (e2 == 0).any():
            raise InputError(f"method='exp' needs log e^2: {int((e2 == 0).sum())} OLS residual(s) are exactly zero")
        coef_s = np.linalg.lstsq(Zs, np.log(e2), rcond=None)[0]
        h = np.exp(Zs @ coef_s)
    w = 1.0 / h
    w = w / w.mean()
    sw = np.sqrt(w)
    if method == "nnls":
        params = _in_units(coef_s / np.concatenate([[1.0], g_scale]), c, "the variance function's coefficients")
    else:   # log h = a + g's: the constant absorbs log c^2 and the scales of g
        params = coef_s / np.concatenate([[1.0], g_scale])
        params[0] += 2 * np.log(c)
    details = dict(weights=w, fitted_variance=_in_units(h, c, "the fitted variances"),
                   variance_params=pd.Series(params, index=names), method=method)
    return _fit(_transformed(design, design.y * sw, design.X * sw[:, None]), f"FWLS ({method})", details)


# ----------------------------------------------------------------------------------------------
# Panel estimators: within, random-effects GLS, Mundlak
# ----------------------------------------------------------------------------------------------

def _with_columns(design: Design) -> Design:
    if design.k == 0:
        raise InputError("X has no columns: give at least one regressor (or an intercept)")
    return design


def _panel(y_or_formula, X, data, groups):
    X, data = formula_data(y_or_formula, X, data)
    extra = [groups] if isinstance(groups, str) else ()
    design = _with_columns(make_design(y_or_formula, X, data=data, extra_columns=extra if data is not None else ()))
    codes, uniques = _group_codes(groups, design)
    counts = np.bincount(codes).astype(float)
    return design, codes, counts


def _varies_within(X, codes, counts):
    """Columns whose within-group deviations are not all (numerically) zero."""
    dev = X - _group_means(X, codes, counts)
    scale = np.maximum(np.abs(X).max(0), np.finfo(float).tiny)
    return np.abs(dev).max(0) > 1e-10 * scale


def _within_pieces(design, codes, counts):
    """The columns that vary within groups, and the names of those absorbed by the fixed effects (the
    constant column, whatever its name, is not reported: within() estimates an intercept anyway)."""
    varying = _varies_within(design.X, codes, counts)
    constant = np.all(design.X == design.X[:1], axis=0)
    dropped = [nm for nm, v, c in zip(design.names, varying, constant) if not v and not c]
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


SIGMA2_U_METHODS = ("harmonic", "baltagi-chang")


def _swamy_arora(design, codes, counts, sigma2_u_method="harmonic"):
    r"""Swamy-Arora variance components, in the units of (y / c)^2 with c = ``_y_scale(y)``; returns
    (sigma2_e, sigma2_u, c).

    sigma_e^2 = e_w'e_w / (N - G - r_w), from the within regression (r_w = rank of the within-varying
    columns after demeaning). From the between regression (r_b = rank of the group means of X, which
    counts Mundlak's added group-mean columns once, as they repeat the means of x):

    * "harmonic": e_b from OLS of ybar_j on xbar_j (one row per group);
      sigma_u^2 = max(0, e_b'e_b / (G - r_b) - sigma_e^2 / T), T = harmonic mean of n_j.
    * "baltagi-chang": e_b from OLS of ybar_j on xbar_j weighted by n_j (the data replaced by group
      means); sigma_u^2 = max(0, (sum_j n_j e_bj^2 - (G - r_b) sigma_e^2) / (N - tr)),
      tr = trace[(sum_j n_j xbar_j xbar_j')^+ sum_j n_j^2 xbar_j xbar_j'] (Baltagi & Chang 1994).

    Both are the same in a balanced panel.
    """
    N, G = design.n, counts.size
    c = _y_scale(design.y)
    y = design.y / c
    varying = _varies_within(design.X, codes, counts)
    Xb, yb = _means_by_group(design.X, codes, counts), _means_by_group(y, codes, counts)
    Xw, yw = design.X[:, varying] - Xb[codes][:, varying], y - yb[codes]
    e_w, r_w = _scaled_lstsq(Xw, yw, design.X[:, varying]) if varying.any() else (yw, 0)
    if N - G - r_w <= 0:
        raise InputError(f"Swamy-Arora's within regression has no residual degrees of freedom (N - G - k_w = "
                         f"{N} - {G} - {r_w}) to estimate sigma_e^2: give variance_components=(sigma_e^2, sigma_u^2)")
    rss_w = float(e_w @ e_w)
    if np.sqrt(rss_w / N) <= EXACT_FIT_ULPS * EPS * np.abs(y).max(initial=0.0) or rss_w == 0:
        raise InputError("the within regression fits y exactly (every within residual is zero to rounding), so "
                         "sigma_e^2 = 0 and the random-effects weights are undefined"
                         + (": y is constant" if np.ptp(design.y) == 0 else "")
                         + "; give variance_components=(sigma_e^2, sigma_u^2) to fit with chosen weights")
    sigma2_e = rss_w / (N - G - r_w)
    root_n = np.sqrt(counts) if sigma2_u_method == "baltagi-chang" else np.ones(G)
    e_b, r_b = _scaled_lstsq(root_n[:, None] * Xb, root_n * yb, Xb)
    e_b = e_b / root_n
    if G - r_b <= 0:
        raise InputError(f"Swamy-Arora needs more groups ({G}) than the rank of the group means of X ({r_b}) "
                         f"for the between regression")
    if sigma2_u_method == "harmonic":
        T = G / np.sum(1.0 / counts)
        sigma2_u = float(e_b @ e_b) / (G - r_b) - sigma2_e / T
    else:
        s = power_of_two_scale(np.abs(Xb).max(axis=0))
        M = (Xb / s).T @ (counts[:, None] * Xb / s)
        S = (Xb / s).T @ (counts[:, None] ** 2 * Xb / s)
        tr = float(np.trace(np.linalg.pinv(M, hermitian=True) @ S))
        sigma2_u = (float(counts @ e_b ** 2) - (G - r_b) * sigma2_e) / (N - tr)
    return sigma2_e, max(0.0, sigma2_u), c


def _variance_components(value):
    if isinstance(value, (str, bytes)) or np.ndim(value) != 1 or len(value) != 2:
        raise InputError(f"variance_components must be a pair (sigma_e^2, sigma_u^2), got {value!r}")
    sigma2_e, sigma2_u = (_real(v, "each of variance_components") for v in value)
    if sigma2_e <= 0 or sigma2_u < 0:
        raise InputError(f"variance_components must be (sigma_e^2 > 0, sigma_u^2 >= 0), got {tuple(value)}")
    return sigma2_e, sigma2_u


def re_gls(y_or_formula, X=None, data=None, *, groups, variance_components=None,
           sigma2_u_method: str = "harmonic") -> GLSResult:
    r"""Random-effects (random-intercept) GLS: :math:`y_{ij} = x_{ij}'b + u_j + e_{ij}`,
    :math:`u_j \sim (0, \sigma_u^2)`, :math:`e \sim (0, \sigma_e^2)`.

    GLS with :math:`V_j = \sigma_e^2 I + \sigma_u^2 \mathbf{1}\mathbf{1}'` is OLS on quasi-demeaned data

    .. math::

       y_{ij} - \theta_j \bar y_j \ \text{ on } \ x_{ij} - \theta_j \bar x_j, \qquad
       \theta_j = 1 - \sqrt{\frac{\sigma_e^2}{\sigma_e^2 + n_j \sigma_u^2}}

    (the intercept becomes :math:`1 - \theta_j`), since :math:`V_j^{-1/2}` is proportional to
    :math:`I - \theta_j J/n_j`. :math:`\theta_j = 0` gives pooled OLS and :math:`\theta_j \to 1`
    (:math:`n_j \sigma_u^2 \gg \sigma_e^2`) the within estimator.

    Variance components (Swamy-Arora): :math:`\hat\sigma_e^2 = e_w'e_w / (N - G - r_w)` from the
    within regression (:math:`r_w` the rank of the regressors that vary within groups) and
    :math:`\hat\sigma_u^2` from the between regression of :math:`\bar y_j` on :math:`\bar x_j`, whose
    residual df are :math:`G - r_b` (:math:`r_b` the rank of the group means of :math:`X`).
    ``sigma2_u_method`` chooses how, in an unbalanced panel (both agree when every :math:`n_j` is equal):

    * ``"harmonic"`` (the default):
      :math:`\hat\sigma_u^2 = \max(0, e_b'e_b/(G - r_b) - \hat\sigma_e^2 / \bar T)`, :math:`e_b` from
      the unweighted regression of the group means and :math:`\bar T` the harmonic mean of the
      :math:`n_j`. linearmodels' ``RandomEffects`` (default ``small_sample=False``); plm's
      ``random.method="swar"`` on balanced panels.
    * ``"baltagi-chang"``: Baltagi & Chang's (1994) unbiased quadratic form,
      :math:`\hat\sigma_u^2 = \max(0, [\sum_j n_j e_{bj}^2 - (G - r_b)\hat\sigma_e^2] / [N - \operatorname{tr}])`,
      :math:`e_b` from the regression of the group means weighted by :math:`n_j` and
      :math:`\operatorname{tr} = \operatorname{tr}[(\sum_j n_j \bar x_j \bar x_j')^{+} \sum_j n_j^2 \bar x_j \bar x_j']`.
      plm's ``random.method="swar"`` on unbalanced panels; linearmodels' ``small_sample=True``.

    ``variance_components=(sigma_e^2, sigma_u^2)`` fixes them instead. The components are computed on
    :math:`y` scaled by a power of two (exact), so they are right for :math:`y` in any units.

    Classical se: :math:`s^2 (X^{\ast\prime} X^\ast)^{-1}` with :math:`s^2` from the transformed
    residuals, df :math:`N - k` (as linearmodels' ``RandomEffects`` and plm report them).
    Robust kinds: HC/CR of the transformed model; with ``cluster`` = the groups, CR1 is Stata
    ``xtreg, re vce(cluster)`` up to its small-sample factor. ``details``: ``sigma2_e``, ``sigma2_u``,
    ``theta`` (one per group, in sorted order of the group labels), ``sigma2_u_method``.

    References
    ----------
    Baltagi (2021), sec. 2.3 and 9.2; Baltagi & Chang (1994); Wooldridge (2010), sec. 10.7.
    """
    _choice(sigma2_u_method, "sigma2_u_method", SIGMA2_U_METHODS)
    fixed = None if variance_components is None else _variance_components(variance_components)
    design, codes, counts = _panel(y_or_formula, X, data, groups)
    return _re_fit(design, codes, counts, fixed, sigma2_u_method, "RE-GLS")


def _re_fit(design, codes, counts, fixed, sigma2_u_method, label):
    if fixed is None:
        sigma2_e_s, sigma2_u_s, c = _swamy_arora(design, codes, counts, sigma2_u_method)
        ratio = sigma2_u_s / sigma2_e_s
        sigma2_e = _in_units(sigma2_e_s, c, "sigma_e^2")
        sigma2_u = _in_units(sigma2_u_s, c, "sigma_u^2")
    else:
        sigma2_e, sigma2_u = fixed
        with np.errstate(over="ignore"):
            ratio = sigma2_u / sigma2_e
        sigma2_u_method = "given"
    theta_g = 1.0 - 1.0 / np.sqrt(1.0 + counts * ratio)
    constant_within = ~_varies_within(design.X, codes, counts)
    if np.all(theta_g == 1.0) and constant_within.any():
        raise InputError(f"sigma_u^2 / sigma_e^2 = {ratio:.3g} makes the quasi-demeaning weight 1 in every group, so "
                         f"RE-GLS is the within estimator and the group-constant column(s) "
                         f"{[nm for nm, c in zip(design.names, constant_within) if c]} are not identified; use within()")
    theta = theta_g[codes]
    y_star = design.y - theta * _group_means(design.y, codes, counts)
    X_star = design.X - theta[:, None] * _group_means(design.X, codes, counts)
    details = dict(sigma2_e=sigma2_e, sigma2_u=sigma2_u, theta=theta_g, sigma2_u_method=sigma2_u_method)
    return _fit(_transformed(design, y_star, X_star), label, details)


def mundlak(y_or_formula, X=None, data=None, *, groups, variance_components=None,
            sigma2_u_method: str = "harmonic") -> GLSResult:
    r"""The Mundlak (1978) device: random-effects GLS with the group means of the regressors that vary
    within groups added as regressors ("mean(x)").

    :math:`y_{ij} = x_{ij}'b + z_j'g + \bar x_j'\pi + u_j + e_{ij}`. The slope :math:`b` on each
    time-varying :math:`x` equals the within estimator exactly (balanced or not: the quasi-demeaned
    :math:`x` splits into the within deviation :math:`x - \bar x`, orthogonal to every group-constant
    column, and a multiple of :math:`\bar x`). :math:`\pi = 0` is the hypothesis under which RE is
    consistent; test it with ``.contrast`` on the mean(...) terms and a cluster-robust kind (a robust
    alternative to :func:`hausman`; Wooldridge 2010, sec. 10.7.3).

    The variance components are :func:`re_gls`'s on the augmented design (same ``sigma2_u_method``):
    the group means of the added columns repeat those of :math:`x`, so the between regression's
    residual df are :math:`G - r_b` with :math:`r_b` the rank of the group means, as linearmodels'
    ``RandomEffects`` on the same augmented design. (Stata's ``xtreg, cre`` fits this regression.)
    """
    _choice(sigma2_u_method, "sigma2_u_method", SIGMA2_U_METHODS)
    fixed = None if variance_components is None else _variance_components(variance_components)
    design, codes, counts = _panel(y_or_formula, X, data, groups)
    varying = _varies_within(design.X, codes, counts)
    if not varying.any():
        raise InputError("mundlak: no column of X varies within groups")
    means = _group_means(design.X[:, varying], codes, counts)
    mean_names = [f"mean({nm})" for nm, v in zip(design.names, varying) if v]
    augmented = _transformed(design, design.y, np.column_stack([design.X, means]), design.names + mean_names)
    return _re_fit(augmented, codes, counts, fixed, sigma2_u_method, "Mundlak (RE-GLS + group means)")


# ----------------------------------------------------------------------------------------------
# Hausman
# ----------------------------------------------------------------------------------------------

class HausmanResult:
    r"""The result of :func:`hausman`.

    ``statistic`` (:math:`H`), ``df`` (the rank of :math:`V_\text{FE} - V_\text{RE}`), ``pvalue``
    (:math:`P(\chi^2_\text{df} > H)`), ``terms``, ``difference`` (:math:`b_\text{FE} - b_\text{RE}`),
    ``vcov_difference``, ``eigenvalues`` (of the difference in units of the FE standard errors,
    :math:`S^{-1}(V_\text{FE} - V_\text{RE})S^{-1}`, ascending; see :func:`hausman`), ``n_negative`` (eigenvalues
    below :math:`-\text{tol}`), ``tol``, ``generalized_inverse`` (True when the difference was not
    positive definite), ``sigmamore``, ``kind``."""

    def __init__(self, statistic, df, terms, difference, vcov_difference, eigenvalues, tol, kind, sigmamore):
        self.statistic, self.df, self.terms = float(statistic), int(df), list(terms)
        self.difference, self.vcov_difference = difference, vcov_difference
        self.eigenvalues, self.tol = eigenvalues, float(tol)
        self.n_negative = int(np.sum(eigenvalues < -tol))
        self.generalized_inverse = bool(np.any(eigenvalues <= tol))
        self.kind, self.sigmamore = kind, bool(sigmamore)
        self.pvalue = float(stats.chi2.sf(self.statistic, self.df)) if self.df > 0 else np.nan

    def __repr__(self) -> str:
        note = ""
        if self.generalized_inverse:
            note = (f"; V_FE - V_RE is not positive definite ({self.n_negative} negative eigenvalue(s)): "
                    f"Moore-Penrose inverse, df = its rank")
        how = "common sigma^2 of the RE fit (sigmamore)" if self.sigmamore else "each fit's own"
        return (f"Hausman test, FE vs RE on {self.terms} ({self.kind} covariances, {how}): chi2({self.df}) = "
                f"{self.statistic:.4f}, p = {self.pvalue:.4g}{note}")


def _params_vcov_sigma2(fit, kind: str, which: str):
    """(params, vcov, sigma^2) of an OLS-type result (hlmlib.OLSResult and the GLS results) or, as the
    efficient fit, of a mixed model (model-based covariance)."""
    from .mixed import MixedResult

    if isinstance(fit, OLSResult):
        is_within = isinstance(getattr(fit, "details", None), dict) and "n_groups" in fit.details
        if which == "re" and is_within:
            raise InputError("hausman's re is a within() fit: the call is hausman(fe, re), fixed effects first")
        if which == "fe" and isinstance(getattr(fit, "details", None), dict) and "sigma2_u" in fit.details:
            raise InputError("hausman's fe is a random-effects fit: the call is hausman(fe, re), fixed effects first")
        return fit.params, fit.vcov(kind), fit.sigma ** 2
    if isinstance(fit, MixedResult) and which == "re":
        if kind != "classical":
            raise InputError(f"a mixed-model fit has only its model-based covariance: use kind='classical', "
                             f"got {kind!r}")
        return fit.params, fit.vcov(), fit.sigma2
    allowed = "a within(...) result" if which == "fe" else "an re_gls(...) or mixed(...) result"
    raise InputError(f"hausman's {which} must be {allowed} (an hlmlib result with params and vcov), "
                     f"got {type(fit).__name__}")


def moore_penrose(V: np.ndarray, rtol: float, scale: float):
    r"""Moore-Penrose inverse of a symmetric matrix by its eigen-decomposition, with eigenvalues of
    absolute value at most ``rtol * scale`` counted as zero. Returns (inverse, eigenvalues, tol)."""
    lam, U = np.linalg.eigh((V + V.T) / 2)
    tol = rtol * scale
    keep = np.abs(lam) > tol
    return (U[:, keep] / lam[keep]) @ U[:, keep].T, lam, tol


def hausman(fe, re, kind: str = "classical", terms=None, *, sigmamore: bool = False,
            rtol: float = 1e-10) -> HausmanResult:
    r"""Hausman's test of :math:`H_0`: the random effects are uncorrelated with the regressors (RE
    consistent and efficient, FE consistent).

    .. math::

       H = (b_\text{FE} - b_\text{RE})' \, [V_\text{FE} - V_\text{RE}]^{+} (b_\text{FE} - b_\text{RE})
       \ \sim\ \chi^2(\operatorname{rank}[V_\text{FE} - V_\text{RE}])

    on the :math:`m` coefficients common to both fits (the intercept excluded; ``terms=`` a list to
    choose). ``fe`` is a :func:`within` result; ``re`` an :func:`re_gls` result or a random-intercept
    :func:`~hlmlib.mixed` fit (its model-based covariance).

    Covariances: by default each fit's own ``vcov(kind)``, so each uses its own :math:`\hat\sigma^2`.
    With ``sigmamore=True`` (``kind="classical"`` only) both use the efficient (RE) fit's
    :math:`\hat\sigma^2`, :math:`V_\text{FE} \hat\sigma^2_\text{RE} / \hat\sigma^2_\text{FE}`: the
    difference is then :math:`\hat\sigma^2_\text{RE}` times the difference of two inverse cross-product
    matrices of which the RE one is the larger (quasi-demeaning adds a between part to the within
    cross-products), so it is positive semi-definite. This is Stata's ``hausman fe re, sigmamore``
    ([R] hausman) and linearmodels' ``RandomEffectsResults.hausman(fe, sigmamore=True)``.

    :math:`[\,\cdot\,]^{+}` is the Moore-Penrose inverse in units of the FE standard errors,
    :math:`S^{-1} [S^{-1}(V_\text{FE} - V_\text{RE})S^{-1}]^{+} S^{-1}` with
    :math:`S^2 = \operatorname{diag}(V_\text{FE})`
    (the inverse when the difference is nonsingular; unlike the difference's own Moore-Penrose inverse, it does
    not depend on the units of the regressors, as Stata's ``invsym``): from the eigen-decomposition
    :math:`S^{-1}(V_\text{FE} - V_\text{RE})S^{-1} = \sum_i \lambda_i u_i u_i'`, :math:`\sum_{|\lambda_i| >
    \text{tol}} u_i u_i' / \lambda_i`, with :math:`\text{tol}` = ``rtol`` times the largest eigenvalue of
    :math:`S^{-1}V_\text{FE}S^{-1}` and :math:`S^{-1}V_\text{RE}S^{-1}` (the difference of two matrices of that
    size is known only to about their rounding error, so smaller eigenvalues are zero). df = the number of
    nonzero eigenvalues. A negative eigenvalue (possible in finite samples with each fit's own
    :math:`\hat\sigma^2`) is kept, as the Moore-Penrose inverse keeps it, so :math:`H` can be negative;
    a warning reports the eigenvalues and suggests ``sigmamore``. (plm's ``phtest`` instead takes
    the ordinary inverse, reports :math:`|H|` and df = :math:`m`; linearmodels uses a pseudo-inverse
    with df = :math:`m`.)

    Under heteroskedasticity or serial correlation the test is invalid (RE is then not efficient):
    use the Mundlak test with a cluster-robust covariance instead; cluster-robust kinds are refused.

    References
    ----------
    Hausman (1978); Wooldridge (2010), sec. 10.7.3; Baltagi (2021), sec. 4.3.
    """
    if not isinstance(kind, str):
        raise InputError(f"kind must be a string such as 'classical' or 'HC1', got {kind!r}")
    if kind.upper().startswith("CR"):
        raise InputError("hausman compares V_FE - V_RE, the variance of the difference only when RE is efficient, "
                         "which a cluster-robust covariance denies; test mundlak(...)'s coefficients on the group "
                         "means with a cluster-robust contrast instead")
    sigmamore = _flag(sigmamore, "sigmamore")
    rtol = _real(rtol, "rtol")
    if not 0 <= rtol < 1:
        raise InputError(f"rtol must be in [0, 1), got {rtol!r}")
    b_fe, V_fe, s2_fe = _params_vcov_sigma2(fe, kind, "fe")
    b_re, V_re, s2_re = _params_vcov_sigma2(re, kind, "re")
    if sigmamore:
        if kind.lower() not in ("classical", "nonrobust", "ols"):
            raise InputError(f"sigmamore rescales s^2 (X'X)^-1, the classical covariance; kind={kind!r} has no "
                             f"single sigma^2 to share")
        V_fe = V_fe * (s2_re / s2_fe)
    if terms is None:
        common = [t for t in b_fe.index if t in b_re.index and t != "Intercept"]
    else:
        common = [terms] if isinstance(terms, str) else list(terms)
        if len(set(common)) != len(common):
            raise InputError(f"terms= repeats a term: {common}")
    missing = [t for t in common if t not in b_fe.index or t not in b_re.index]
    if missing or not common:
        raise InputError(f"hausman needs terms present in both fits; missing {missing or 'all'} "
                         f"(FE has {list(b_fe.index)}, RE has {list(b_re.index)})")
    d = (b_fe[common] - b_re[common]).to_numpy()
    A, B = V_fe.loc[common, common].to_numpy(), V_re.loc[common, common].to_numpy()
    V = A - B
    # in units of the FE standard errors: neither the rank nor H then depends on the units of the regressors
    # (in V itself a coefficient in small units has a variance below the others' rounding, and is dropped)
    se = np.sqrt(np.clip(np.diag(A), 0.0, None))
    se = np.where(se > 0, se, 1.0)
    A_s, B_s = A / np.outer(se, se), B / np.outer(se, se)
    scale = max(np.abs(np.linalg.eigvalsh(A_s)).max(), np.abs(np.linalg.eigvalsh(B_s)).max())
    V_plus, lam, tol = moore_penrose(A_s - B_s, rtol, scale)
    df = int(np.sum(np.abs(lam) > tol))
    statistic = float((d / se) @ V_plus @ (d / se))
    if np.any(lam <= tol):
        negative = lam[lam < -tol]
        warnings.warn(f"hausman: V_FE - V_RE is not positive definite (eigenvalues in FE-se units "
                      f"{np.array2string(lam, precision=4)}; "
                      f"{negative.size} negative): Moore-Penrose inverse, df = {df}"
                      + ("; with negative eigenvalues H can be negative and is not chi-squared: "
                         "sigmamore=True makes the difference positive semi-definite" if negative.size else ""),
                      stacklevel=2)
    return HausmanResult(statistic, df, common, pd.Series(d, index=common),
                         pd.DataFrame(V, index=common, columns=common), lam, tol, kind, sigmamore)
