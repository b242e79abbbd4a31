r"""Ordinary least squares and its result: coefficients, the sandwich family, tests and contrasts.

``ols(y, X)`` or ``ols("mathach ~ cses * catholic", data=df)`` fits
:math:`b = \arg\min_b \lVert y - X b \rVert` by a column-scaled QR (``hlmlib.linalg``), and returns
an ``OLSResult`` whose ``vcov``, ``se``, ``summary``, ``contrast``, ``marginal_effect`` and ``wald_test`` take
``kind`` (classical, HC0-HC5 and HC4m, CR0-CR3; default classical, or CR1 when ``cluster`` is given) and
``cluster`` (labels, a column name, or a tuple of two of them for two-way clustering); ``predict`` gives
fitted values and R's confidence and prediction intervals on new data.

Other estimators that are OLS on transformed data reuse all of it through
``OLSResult.from_design(design, df_resid=..., label=...)`` (alias ``fit_design``):

* FWLS / WLS: OLS on :math:`\sqrt{w_i}\, y_i`, :math:`\sqrt{w_i}\, x_i`;
* random-effects GLS: OLS on quasi-demeaned :math:`y_{ij} - \theta_j \bar y_j`,
  :math:`x_{ij} - \theta_j \bar x_j`;
* the within (fixed-effects) estimator: OLS on cluster-demeaned data with
  ``df_resid`` = :math:`N - G - k`, so that :math:`s^2` and classical/HC1 tests use the right
  residual df.

Conventions, stated in every summary caption: HC1 = :math:`n/(n-k)` (Stata ``robust``), CR1 =
:math:`G/(G-1) \cdot (N-1)/(N-k)` (Stata ``vce(cluster)``, sandwich ``vcovCL``), CR2 with
Bell-McCaffrey/Satterthwaite df (clubSandwich), :math:`t(n-k)` for classical/HC, :math:`t(G-1)` for
CR0/CR1/CR3.
"""
from __future__ import annotations

import warnings
from functools import cached_property

import numpy as np
import pandas as pd

from . import inference, sandwich as sw
from .lazy import stats
from .design import (Design, InputError, check_alpha, check_scalar, check_finite_array, columns_by_name, labels_for,
                     make_design, new_model_matrix, warn_user)
from .linalg import LeastSquares, least_squares
from .wald import WaldTest, ols_wald_test

__all__ = ["ols", "OLSResult", "fit_design"]


def _canonical_kind(kind, cluster=None) -> str:
    """The covariance kind by its canonical name; ``None`` means CR1 when ``cluster`` is given (Stata's
    ``vce(cluster)``, statsmodels' and pyfixest's clustered default), else classical."""
    if kind is None:
        return "classical" if cluster is None else "CR1"
    if not isinstance(kind, str):
        raise InputError(f"kind must be a string, one of {', '.join(sw.KINDS)}; got {kind!r}")
    by_upper = {k.upper(): k for k in sw.KINDS}          # "hc4m" -> "HC4m"
    canonical = "classical" if kind.lower() in ("classical", "nonrobust", "ols") else by_upper.get(kind.upper())
    if canonical not in sw.KINDS:
        raise InputError(f"unknown covariance kind {kind!r}; choose one of {', '.join(sw.KINDS)}")
    return canonical


def _is_pair(cluster) -> bool:
    """Two-way clustering is asked for by a tuple of two cluster variables, ``("firm", "year")``. A list of two
    was read so before and still is, with a DeprecationWarning: a list is one label per row (and, in
    :func:`hlmlib.tables.etable`, one cluster per model)."""
    if isinstance(cluster, tuple):
        return True
    if (isinstance(cluster, list) and len(cluster) == 2
            and all(isinstance(c, str) or np.ndim(c) == 1 for c in cluster)):
        warn_user("two-way clustering from a list of two cluster variables is deprecated: pass a tuple, "
                  "cluster=(a, b)", DeprecationWarning)
        return True
    return False


class OLSResult:
    r"""The OLS fit :math:`b = (X'X)^{-1} X'y` (computed by QR) with every covariance estimator of the
    book.

    Attributes: ``params`` (Series by term), ``names``, ``nobs``, ``df_resid``, ``resid``,
    ``fitted``, ``sigma`` (:math:`s = \sqrt{e'e/\mathrm{df}_\mathrm{resid}}`), ``rss``, ``rsquared``,
    ``n_dropped`` (rows dropped listwise by a formula fit), ``design`` (the
    :class:`hlmlib.design.Design`), ``lstsq`` (the QR pieces, a :class:`hlmlib.linalg.LeastSquares`),
    ``label`` ("OLS", or the name a derived estimator gives).

    Methods take ``kind`` in classical, HC0-HC5 and HC4m, CR0-CR3 and ``cluster`` = labels (one per row, or
    per row of the data for formula fits), a pandas Series (aligned by its index to the fit's rows), a
    column name (formula fits: read from the fit's own copy of the data), or a tuple of two of them for
    two-way clustering (CR0/CR1). ``kind=None`` (the default) is classical without ``cluster`` and CR1
    with it (Stata's ``vce(cluster)``, the clustered default of statsmodels and pyfixest), so
    ``summary(cluster="g")`` is CR1. See :mod:`hlmlib.sandwich` for each formula and the names Stata, R and
    statsmodels use. Covariances are computed in the scaled units of ``lstsq`` and carried to the
    data's units only for display (:class:`hlmlib.sandwich.Covariance`), so ``se`` and the tables are
    right even where ``vcov``'s entries (of order :math:`y^2/x^2`) leave the double range (``vcov`` then
    warns). Bad ``kind``, ``cluster``, ``alpha``, contrasts or ``at`` values raise :class:`~hlmlib.design.InputError`.

    Estimators that are OLS on transformed data (FWLS, random-effects GLS, the within estimator) build
    their results with :meth:`from_design`, so they have every method below.
    """

    def __init__(self, design: Design, lstsq: LeastSquares, df_resid: float | None = None, label: str = "OLS"):
        self.design = design
        self.lstsq = lstsq
        self.label = label
        self.names = list(design.names)
        self.nobs = design.n
        self.k = design.k
        self.df_resid = float(self.nobs - self.k if df_resid is None else check_scalar(df_resid, "df_resid"))
        if self.df_resid <= 0:
            raise InputError(f"df_resid = {self.df_resid:g}: no residual degrees of freedom left")
        self.n_dropped = design.n_dropped
        index = design.row_labels
        self.params = pd.Series(lstsq.coef, index=self.names, name="estimate")
        self.resid = pd.Series(lstsq.resid, index=index, name="resid")
        self.fitted = pd.Series(lstsq.fitted, index=index, name="fitted")
        self.rss = lstsq.rss
        self.sigma = float(lstsq.y_scale * np.sqrt(lstsq.rss_s / self.df_resid))

    @classmethod
    def from_design(cls, design: Design, df_resid: float | None = None, label: str = "OLS") -> "OLSResult":
        r"""OLS on a checked ``Design`` (from :func:`hlmlib.design.make_design` or built by another
        estimator on transformed data), with the residual df ``df_resid`` (default :math:`n - k`).

        ``df_resid`` sets :math:`s^2 = e'e/\mathrm{df}_\mathrm{resid}`, the HC1 factor
        :math:`n/\mathrm{df}_\mathrm{resid}` (statsmodels' convention) and the
        :math:`t(\mathrm{df}_\mathrm{resid})` of classical and HC tests; the CR1 factor stays :math:`(N-1)/(N-k)` with :math:`k` the columns of :math:`X` (Stata's
        ``xtreg, fe vce(cluster)`` for the within estimator, whose cluster dummies are nested in the
        clusters) and cluster df stay :math:`G-1`. Example, the within estimator:
        ``OLSResult.from_design(Design(y_dm, X_dm, names), df_resid=N - G - k, label="within")``.
        Leverages (HC2-HC5, CR2, CR3) are those of the given :math:`X`.
        """
        return cls(design, least_squares(design.X, design.y, design.names), df_resid, label)

    # ------------------------------------------------------------------------------------------
    @cached_property
    def leverage(self) -> np.ndarray:
        r"""Hat values :math:`h_{ii}` (R ``hatvalues``), from the orthonormal basis :math:`U = X R^{-1}`."""
        return sw.leverage(self.lstsq.U)

    @cached_property
    def rsquared(self) -> float:
        r""":math:`1 - e'e / \sum_i (y_i - \bar y)^2` with an intercept column, else :math:`1 - e'e / y'y`
        (as R's ``lm``)."""
        y = self.design.y / self.lstsq.y_scale                  # in scaled units: y'y may overflow
        has_constant = np.any(np.all(self.design.X == self.design.X[:1], axis=0) & (self.design.X[0] != 0))
        total = np.sum((y - y.mean()) ** 2) if has_constant else float(y @ y)
        return float(1 - self.lstsq.rss_s / total)

    @property
    def _basis_and_bread(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where the meat is evaluated, with its bread and column factor c, so that the covariance in the
        scaled units of ``lstsq`` (y / s_y, X D^-1) is V_s = diag(c) B M B' diag(c) with M evaluated on
        e / s_y: X with bread (X'X)^-1 and c = D for a well-conditioned X (no n x k product needed), the
        scaled columns X D^-1 with (X_s'X_s)^-1 where a column's scale would take X'X out of the double
        range, else the orthonormal U = X R^-1 with bread R_s^-1."""
        fit = self.lstsq
        if not fit.well_conditioned:
            return fit.U, fit.Rs_inv, np.ones(self.k)
        if fit.extreme_scale:
            return fit.Xs, fit.xtx_inv_s, np.ones(self.k)
        return fit.X, fit.xtx_inv, fit.column_scale

    def _clusters(self, spec) -> sw.Clusters:
        name = spec if isinstance(spec, str) else "cluster"
        clusters = sw.Clusters.from_labels(labels_for(spec, self.design), name)
        if clusters.G < 2:
            where = f"cluster column {spec!r}" if isinstance(spec, str) else "the cluster labels"
            raise InputError(f"all rows are in one cluster ({clusters.label_text(0)}) of {where}: "
                             f"cluster-robust covariances need at least 2 clusters (and are unreliable with few)")
        return clusters

    def covariance(self, kind: str | None = None, cluster=None) -> sw.Covariance:
        r"""The covariance of the coefficients with its df rule (:class:`hlmlib.sandwich.Covariance`).

        classical: :math:`s^2 (X'X)^{-1}`; HC*: :math:`(X'X)^{-1} X' \operatorname{diag}(w_i e_i^2) X (X'X)^{-1}`;
        CR*: cluster sandwich (formulas in :mod:`hlmlib.sandwich`). CR2/CR3 are evaluated as
        :math:`R^{-1} M_U R^{-T}` in the basis :math:`U = X R^{-1}`, where :math:`H_{gg} = U_g U_g'`; so
        are the others when :math:`X` is ill-conditioned. Everything is evaluated on :math:`e / s_y` and
        (for columns beyond 1e120) :math:`X D^{-1}`, and the :class:`~hlmlib.sandwich.Covariance` keeps
        that scaled form. Warns, as R's ``summary.lm``, on an essentially perfect fit. ``kind=None``: CR1
        with ``cluster``, else classical.
        """
        kind = _canonical_kind(kind, cluster)
        fit, n, k = self.lstsq, self.nobs, self.k
        e = fit.resid_s
        basis, bread, c = self._basis_and_bread
        details = {}
        if kind == "classical" or kind in sw.HC_KINDS:
            if cluster is not None:
                raise InputError(f"cluster= was given but kind={kind!r} ignores it; use CR0-CR3 for "
                                 f"cluster-robust standard errors")
            if kind == "classical":
                V = fit.rss_s / self.df_resid * fit.xtx_inv_s
            else:
                weights = sw.hc_weights(kind, self.leverage, n, k, self.df_resid)
                V = np.outer(c, c) * sw.sandwich(bread, sw.meat_hc(basis, e, weights))
            convention = sw.CONVENTIONS[kind]
            if self.df_resid != n - k:      # e.g. the within estimator's N - G - k: say which divisor was used
                convention = convention.replace("(n-k)", f"(df), df = {self.df_resid:g} (this estimator's "
                                                         f"residual df, not n - k = {n - k:g})")
            return self._in_units(V, kind, convention, df=self.df_resid)
        if cluster is None:
            raise InputError(f"kind={kind!r} is cluster-robust: give cluster= (labels, a column name, "
                             f"or a tuple of two of them for two-way clustering)")
        if _is_pair(cluster):
            if len(cluster) != 2:
                raise InputError(f"two-way clustering takes exactly two cluster variables, got {len(cluster)}")
            first, second = (self._clusters(c) for c in cluster)
            V = np.outer(c, c) * sw.twoway_cluster_vcov(basis, e, bread, first, second, kind, k,
                                                        units=c * fit.y_scale / fit.column_scale)
            G = (first.G, second.G)
            convention = (sw.CONVENTIONS[kind] + f"; two-way by {first.name} and {second.name} "
                          f"(Cameron, Gelbach & Miller 2011: V_A + V_B - V_AB"
                          + (", each with its own G/(G-1), times (N-1)/(N-k); sandwich vcovCL type 'HC1')"
                             if kind == "CR1" else ", no factors)"))
            return self._in_units(V, kind, convention, df=min(G) - 1, n_clusters=G,
                                  cluster_name=f"{first.name} and {second.name}")
        clusters = self._clusters(cluster)
        G = clusters.G
        if kind in ("CR0", "CR1"):
            V = np.outer(c, c) * sw.sandwich(bread, sw.meat_cluster(basis, e, clusters))
            if kind == "CR1":
                V = V * sw.cluster_factor(G) * sw.hc1_factor(n, k)
        else:
            U = fit.U
            eigen = sw.cluster_eigen(sw.cluster_gram(U, clusters), clusters, kind)
            V = sw.sandwich(fit.Rs_inv, sw.meat_cr_adjusted(U, e, clusters, kind, eigen))
            if kind == "CR2":
                details["satterthwaite"] = sw.Satterthwaite.from_eigen(*eigen, fit.R_inv)
        return self._in_units(V, kind, sw.CONVENTIONS[kind], df=G - 1, n_clusters=G,
                              cluster_name=clusters.name, **details)

    def _in_units(self, V_scaled: np.ndarray, kind: str, convention: str, **details) -> sw.Covariance:
        """The covariance in the data's units from V in the scaled units of ``lstsq``; warns, as R's
        summary.lm does, when the fit is essentially perfect (its tests are then rounding noise)."""
        fit = self.lstsq
        if fit.perfect_fit:
            warnings.warn(f"essentially perfect fit: summary may be unreliable ({self.label}: the residuals are at "
                          "the rounding level of y, so standard errors are rounding noise; t statistics and "
                          "p-values are reported as NaN)", UserWarning, stacklevel=4)
        return sw.Covariance.in_units(V_scaled, fit.y_scale / fit.column_scale, kind, convention,
                                      perfect_fit=fit.perfect_fit, **details)

    def vcov(self, kind: str | None = None, cluster=None) -> pd.DataFrame:
        r"""k x k covariance matrix of the coefficients as a DataFrame; ``.attrs["convention"]`` names it.

        ``kind``: classical (:math:`s^2 (X'X)^{-1}`; R ``vcov(lm)``), HC0-HC5 (R ``sandwich::vcovHC``;
        Stata ``robust`` = HC1; statsmodels ``cov_type="HC1"``), CR0-CR3 (sandwich ``vcovCL`` for
        CR0/CR1, clubSandwich ``vcovCR`` for CR2/CR3; Stata ``vce(cluster)`` = CR1). Formulas and
        references (White 1980; MacKinnon & White 1985; Long & Ervin 2000; Cribari-Neto 2004; Bell &
        McCaffrey 2002; Cameron, Gelbach & Miller 2011) in :mod:`hlmlib.sandwich`. ``kind=None``: CR1 with
        ``cluster``, else classical.
        """
        cov = self.covariance(kind, cluster)
        if not cov.representable:
            warnings.warn(f"the {cov.kind} covariance matrix leaves the double range in these units (entries of "
                          "order y^2 / x^2 overflow or underflow): it shows inf or 0 there; se(), summary() and "
                          "contrast() are computed in scaled units and are exact. Rescale y or the columns to "
                          "get the matrix itself", UserWarning, stacklevel=2)
        frame = pd.DataFrame(cov.matrix, index=self.names, columns=self.names)
        frame.attrs.update({"kind": cov.kind, "convention": cov.convention, "df_rule": cov.df_rule})
        return frame

    def se(self, kind: str | None = None, cluster=None) -> pd.Series:
        r"""Standard errors :math:`\sqrt{\operatorname{diag}(V)}`, :math:`V` = ``vcov(kind, cluster)``, a
        Series by term (``kind=None``: CR1 with ``cluster``, else classical)."""
        cov = self.covariance(kind, cluster)
        return pd.Series(cov.se, index=self.names, name=f"se ({cov.kind})")

    def _caption(self, cov: sw.Covariance, alpha: float, what: str = "") -> str:
        alpha = check_alpha(alpha)
        dropped = f", {self.n_dropped} incomplete row(s) dropped listwise" if self.n_dropped else ""
        clustered = ""
        if cov.cluster_name is not None:
            G = cov.n_clusters
            clustered = f" by {cov.cluster_name} (G = {' and '.join(map(str, G)) if isinstance(G, tuple) else G})"
        model = self.design.formula or f"{self.design.yname} on {', '.join(self.names)}"
        return (f"{self.label}{what}: {model}; n = {self.nobs}{dropped}, k = {self.k}. "
                f"Covariance {cov.kind}{clustered}: {cov.convention}. Tests: t with {cov.df_rule}; "
                f"{100 * (1 - alpha):g}% intervals.")

    def summary(self, kind: str | None = None, cluster=None, alpha: float = 0.05) -> inference.CoefTable:
        r"""Coefficient table: estimate, se, df, t, p, ci_low, ci_high (:math:`1 - \alpha` intervals).

        df: :math:`n-k` for classical/HC (R ``summary(lm)``, ``lmtest::coeftest``; Stata); :math:`G-1`
        for CR0/CR1/CR3 (Stata ``vce(cluster)``); :math:`\min(G_A, G_B) - 1` for two-way;
        Bell-McCaffrey/Satterthwaite per coefficient for CR2 (clubSandwich
        ``coef_test(..., "Satterthwaite")``, Pustejovsky & Tipton 2018). The caption (printed first, and
        ``.attrs["caption"]``) names the convention, the df rule and any rows dropped. ``kind=None``: CR1
        with ``cluster`` (``summary(cluster="g")`` is Stata's ``vce(cluster g)``), else classical. Returns a
        :class:`hlmlib.inference.CoefTable` (``.to_latex()``, ``.to_markdown()``, ``.tidy()``; an HTML table
        in Jupyter).
        """
        cov = self.covariance(kind, cluster)
        return inference.contrast_table(np.eye(self.k), self.params.to_numpy(), cov, alpha, self.names,
                                        self._caption(cov, alpha))

    def contrast(self, L, kind: str | None = None, cluster=None, alpha: float = 0.05) -> inference.CoefTable:
        r"""Linear contrasts :math:`c'b` with se :math:`\sqrt{c'Vc}`, t, p and intervals, with the df of
        ``kind`` (CR2: Satterthwaite per contrast).

        ``L``: an array of k weights (or m x k), a dict ``{term: weight}`` (interaction names match in any
        order of their factors), or a list of them. Stata ``lincom``; R ``multcomp::glht`` / clubSandwich
        ``linear_contrast``. ``kind=None``: CR1 with ``cluster``, else classical.
        """
        matrix, labels = inference.contrast_matrix(L, self.names)
        cov = self.covariance(kind, cluster)
        return inference.contrast_table(matrix, self.params.to_numpy(), cov, alpha, labels,
                                        self._caption(cov, alpha, ", linear contrasts"))

    def marginal_effect(self, x: str, by: str, at=None, kind: str | None = None, cluster=None,
                        alpha: float = 0.05, given=None) -> pd.DataFrame:
        r""":math:`dy/dx = b_x + b_{x:\text{by}}\, z` over a grid of :math:`z`, with delta-method se and
        :math:`1 - \alpha` intervals.

        The grid is ``at`` (default: 25 evenly spaced values from the smallest to the largest observed
        value of ``by``, :func:`hlmlib.inference.moderator_grid`); the variance is
        :math:`\operatorname{Var} = V_{xx} + 2 z V_{x,xz} + z^2 V_{xz,xz}`, with the df of ``kind``
        (CR2: Satterthwaite at each :math:`z`). One row per :math:`z`, ready to plot. Stata
        ``margins, dydx(x) at(...)``. When ``x`` also enters through other interactions (``x:c[T.b]``,
        ``x:by:w``), ``given`` holds the values of their other variables (``{"catholic": 0}``, ``{"c": "b"}``),
        as Stata's ``at(catholic=0)``, and each such term adds :math:`b_t` times their product; without them, or
        with ``x`` transformed in another term (``I(x ** 2)``), the effect is refused naming those terms
        (:func:`hlmlib.inference.marginal_effect_table`). Brambor, Clark & Golder (2006). A categorical
        moderator (its effect differs by level, one interaction term each) and an empty ``at`` are refused.
        ``kind=None``: CR1 with ``cluster``, else classical.
        """
        inference.check_term_names(x=x, by=by)
        if at is None:
            at = inference.moderator_grid(by, self.names, self.design.X, self.design.data)
        cov = self.covariance(kind, cluster)
        return inference.marginal_effect_table(x, by, at, self.params.to_numpy(), cov, self.names, alpha,
                                               self._caption(cov, alpha, f", marginal effect of {x} by {by}"
                                                                         + inference.given_text(given)),
                                               given=given, data=self.design.data, spec=self.design.spec)

    def wald_test(self, L, kind: str | None = None, cluster=None, test: str | None = None) -> WaldTest:
        r"""Joint Wald test of :math:`Lb = 0` with the covariance of ``kind``: ``L`` a matrix with one row per
        restriction (columns in ``params`` order), ``{term: weight}`` dicts, or a list of term names meaning
        "all zero".

        :math:`W = (Lb)'(LVL')^{-1}(Lb)`, :math:`V` = ``vcov(kind, cluster)``, and ``test``:

        - ``"F"``: :math:`W/q` on :math:`(q, \mathrm{df})` with the df of the covariance -- :math:`n-k` for
          classical (the classical F test; R ``anova``, ``car::linearHypothesis``) and HC (Stata's ``test``
          after ``regress, vce(robust)``: HC1 on :math:`(q, N-k)`), :math:`G-1` for CR0-CR3 (Stata's ``test``
          after ``regress, vce(cluster)``: CR1 on :math:`(q, G-1)`), :math:`\min(G_A, G_B)-1` two-way;
        - ``"chi2"``: :math:`W \sim \chi^2(q)`;
        - ``"HTZ"``: clubSandwich's Hotelling-:math:`T^2` test (``Wald_test(m, L, vcov = "CR2", test =
          "HTZ")``; Tipton & Pustejovsky 2015), for one-way CR kinds (with CR1, hlmlib's Stata CR1 is
          clubSandwich's "CR1S").

        Default ``test=None``: ``"HTZ"`` for CR2 (as the Bell-McCaffrey df of its t tests), ``"F"`` otherwise;
        ``kind=None``: CR1 with ``cluster``, else classical.
        Returns a :class:`hlmlib.wald.WaldTest` (``F``, ``df_num``, ``df_denom``, ``p``, ``statistic`` = W).
        """
        return ols_wald_test(self, L, kind, cluster, test)

    # ------------------------------------------------------------------------------------------
    def _new_design(self, newdata) -> tuple[np.ndarray, np.ndarray, pd.Index]:
        """The design matrix of ``newdata`` (rows of NaN where incomplete), the mask of complete rows and
        the index of the predictions."""
        if self.design.spec is not None:
            X, complete = new_model_matrix(self.design.spec, newdata, self.names,
                                           f"the formula {self.design.formula!r}", self.design.data)
            if not complete.all():
                warn_user(f"{int((~complete).sum())} of {len(complete)} rows of newdata have missing values in the "
                          "formula's variables: their predictions are NaN (as R's predict with na.pass)")
            return X, complete, newdata.index
        index = newdata.index if isinstance(newdata, pd.DataFrame) else None
        X = check_finite_array(columns_by_name(newdata, self.names, "newdata", "x"), "newdata", ndim=2)
        if X.shape[1] != self.k:
            raise InputError(f"newdata has {X.shape[1]} column(s); this array fit has {self.k} ({', '.join(self.names)}), "
                             "in that order (a DataFrame with those column names is matched by name)")
        return X, np.ones(X.shape[0], bool), pd.RangeIndex(X.shape[0]) if index is None else index

    def predict(self, newdata=None, interval: str | None = None, alpha: float = 0.05, kind: str | None = None,
                cluster=None):
        r"""Predicted means :math:`\hat y_0 = x_0'b` for new data, with R's confidence or prediction intervals.

        ``newdata``: for a formula fit, a DataFrame with the formula's variables; the design is rebuilt
        with the fit's formula as the fit built it (formulaic's model spec: the same coding of categorical
        variables, interactions, and the state of stateful transforms such as ``center(x)``, ``scale(x)``
        or ``poly(x, 2)``, which keep the fit's mean and scale). A level of a categorical variable that the
        fit did not see is an :class:`~hlmlib.design.InputError` naming the column and the level (its effect
        was not estimated); a row with a missing value predicts NaN, with a warning (R's ``na.pass``).
        For an array fit, a matrix with the fit's k columns in order (or a DataFrame with the fit's column
        names). ``None``: the fitted values of the fit's own rows (R's ``fitted``).

        ``interval`` (R's ``predict.lm(fit, newdata, interval = ..., level = 1 - alpha)``):

        - ``None``: a Series of predictions, named ``fit``;
        - ``"confidence"``: an interval for the mean :math:`x_0'\beta`,
          :math:`\hat y_0 \pm t_{1-\alpha/2}(n-k)\, \mathrm{se}_0`, :math:`\mathrm{se}_0 = \sqrt{x_0'Vx_0}`;
        - ``"prediction"``: an interval for a new observation :math:`y_0 = x_0'\beta + e_0`,
          :math:`\hat y_0 \pm t_{1-\alpha/2}(n-k) \sqrt{\mathrm{se}_0^2 + s^2}`.

        Both return a DataFrame with ``fit``, ``se_fit`` (:math:`\mathrm{se}_0`, R's ``se.fit``), ``df``,
        ``lwr`` and ``upr`` (R's column names), indexed as ``newdata``. ``kind`` and ``cluster`` choose
        :math:`V` for a confidence interval as in :meth:`summary` (default classical, as R; CR1 when
        ``cluster`` is given), with that covariance's df (:math:`t(G-1)` for CR1, Bell-McCaffrey df per
        row for CR2): a robust interval for the mean, as ``marginaleffects::predictions(vcov = ...)``. A
        prediction interval needs the variance of a new observation's error, which only the classical
        model states (:math:`\sigma^2`, estimated by :math:`s^2`), so it is refused with another kind.

        References
        ----------
        R's ``predict.lm``; Wooldridge (2020), *Introductory Econometrics*, 7th ed., sec. 6.4.
        """
        if interval not in (None, "confidence", "prediction"):
            raise InputError(f"interval must be None, 'confidence' or 'prediction' (R's predict.lm), got {interval!r}")
        alpha = check_alpha(alpha)
        if newdata is None:
            X, complete, index = self.design.X, np.ones(self.nobs, bool), self.design.row_labels
        else:
            X, complete, index = self._new_design(newdata)
        fit = X @ self.params.to_numpy()
        if interval is None:
            if kind is not None or cluster is not None:
                raise InputError("kind= and cluster= choose the covariance of an interval: give interval='confidence'")
            return pd.Series(fit, index=index, name="fit")
        cov = self.covariance(kind, cluster)
        if interval == "prediction" and cov.kind != "classical":
            raise InputError(f"a prediction interval needs the variance of a new observation's error, which only the "
                             f"classical model states (sigma^2); with kind={cov.kind!r} use interval='confidence' for "
                             "the mean")
        se, df = np.full(len(fit), np.nan), np.full(len(fit), np.nan)
        if complete.any():
            se[complete], df[complete] = cov.contrast_se(X[complete]), cov.df_for(X[complete])
        spread = np.hypot(se, self.sigma) if interval == "prediction" else se
        half_width = stats.t.ppf(1 - alpha / 2, df) * spread
        if cov.perfect_fit:           # the spread is rounding noise (warned): no interval, as no t in summary()
            half_width[:] = np.nan
        out = pd.DataFrame({"fit": fit, "se_fit": se, "df": df, "lwr": fit - half_width, "upr": fit + half_width},
                           index=index)
        what = ", prediction intervals for new observations" if interval == "prediction" else \
            ", confidence intervals for the mean"
        out.attrs["caption"] = self._caption(cov, alpha, what)
        return out

    def tidy(self, kind: str | None = None, cluster=None, alpha: float = 0.05) -> pd.DataFrame:
        """The coefficient table in broom's layout (R's ``broom::tidy(lm, conf.int = TRUE)``): ``term``,
        ``estimate``, ``std.error``, ``statistic``, ``p.value``, ``conf.low``, ``conf.high``, with the
        covariance of ``kind`` and ``cluster`` as in :meth:`summary`."""
        return self.summary(kind, cluster, alpha).tidy()

    def __repr__(self) -> str:
        return repr(self.summary())

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


fit_design = OLSResult.from_design


def ols(y_or_formula, X=None, data=None) -> OLSResult:
    r"""Ordinary least squares: ``ols(y, X)`` on arrays, or ``ols("y ~ x1 * x2", df)`` (or ``data=df``).

    .. math::

       b = \arg\min_b \lVert y - X b \rVert^2 = (X'X)^{-1} X'y,

    computed by a column-scaled QR with extended-precision refinement where its error bound says double
    precision is not enough (:func:`hlmlib.linalg.least_squares`; LRE >= 7 on every NIST StRD linear
    problem). Same estimates as R ``lm``, Stata ``regress``, statsmodels ``OLS``. Everything is computed
    in power-of-two scaled units, so y anywhere in about 1e-250..1e250 and columns in 1e-150..1e150
    give the same standard errors, t and p as well-scaled data. The result keeps its own copies of the
    data (changing ``y``, ``X`` or ``data`` afterwards changes nothing).

    Checks: rows of a formula fit are selected by position (repeated index labels are harmless); a
    pandas ``y`` and ``X`` must share their index (as statsmodels requires); refused with
    :class:`~hlmlib.design.InputError`: NaN or inf (naming the column and row), complex, string and pandas Categorical
    columns of an array ``X`` (use a formula's ``C(x)`` for dummies), an ``X`` without columns, a
    non-numeric response, a formula that does not parse or evaluate. An *essentially perfect fit*
    (residuals at the rounding level of y, e.g. a constant y or y exactly linear in X) warns, as R's
    ``summary.lm`` does, and its tables report t and p as NaN.

    Parameters
    ----------
    y_or_formula : str or *array*
        A formula in formulaic's Wilkinson syntax (term names such as "Intercept",
        "catholic:cses"), or the response.
    X : *array* or None
        The design, when ``y_or_formula`` is an array. Names come from DataFrame columns, else
        x0, x1, ...; include a column of ones for an intercept.
    data : *DataFrame* or None
        The data of a formula fit; incomplete rows are dropped listwise with a warning and counted
        in ``.n_dropped``. It may also come second, positionally, as in statsmodels' and pyfixest's
        formula functions: ``ols("y ~ x", df)`` (a DataFrame after a formula is the data; arrays
        ``ols(y, X)`` are told apart by the type of the first argument).

    Returns
    -------
    OLSResult
        Coefficients and every covariance estimator of the book.

    Raises
    ------
    InputError
        If :math:`X` is rank-deficient (the message names the collinear columns), or the input is
        otherwise unusable.
    """
    return OLSResult.from_design(make_design(y_or_formula, X, data=data))
