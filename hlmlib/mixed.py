r"""Two-level linear mixed models by REML (default) or ML: ``mixed``, its result, and ``lrtest``.

For group :math:`j` (school, subject, ...) with :math:`n_j` rows,

.. math::

   y_j = X_j \beta + Z_j b_j + e_j, \quad b_j \sim N(0, \tau) \ (q \times q, \text{unstructured}),
   \quad e_j \sim N(0, \sigma^2 I),

so that :math:`y_j \sim N(X_j \beta, V_j)` with :math:`V_j = Z_j \tau Z_j' + \sigma^2 I`.
``mixed`` maximises

.. math::

   \begin{aligned}
   \text{ML:} \quad & \log L(\beta, \tau, \sigma^2) = -\tfrac12 \sum_j \left[ n_j \log 2\pi + \log|V_j|
     + (y_j - X_j \beta)' V_j^{-1} (y_j - X_j \beta) \right] \\
   \text{REML:} \quad & \log L_R(\tau, \sigma^2) = \log L(\hat\beta) - \tfrac12 \log|X'V^{-1} X|
     + \tfrac{p}{2} \log 2\pi
   \end{aligned}

(REML: the likelihood of the residual contrasts, Patterson & Thompson 1971; it removes the downward
bias of the ML variance components). Following lme4 and MixedModels.jl (Bates, Maechler, Bolker &
Walker 2015, *J. Stat. Softw.* 67(1)), :math:`\beta` and :math:`\sigma^2` are profiled out and the
criterion is minimised over :math:`\theta`, the lower triangle of :math:`\Lambda`,
:math:`\tau = \sigma^2 \Lambda \Lambda'`, with the diagonal of :math:`\Lambda \ge 0` so that a
singular :math:`\tau` (a boundary fit) is reachable. The data enter only through per-group
cross-products computed once; see :mod:`hlmlib.lmm_objective` for the criterion and its analytic
gradient. The minimiser is Newton's method with bounds (``newton_minimise``), started from a moment
estimate (``moment_start``), with the optimality conditions checked on the boundary
(``_escape_boundary``).

Conventions (as in the project's conventions page):

- REML is the default, as in lme4 (``lmer(REML = TRUE)``) and statsmodels
  (``MixedLM.fit(reml=True)``); ML (``reml=False``) is required to compare fixed effects by a
  likelihood-ratio test.
- ``llf`` is the maximised REML log-likelihood for REML fits, so ``-2 * llf`` is lme4's "REML
  criterion at convergence"; for ML fits it is ``logLik``.
- Standard errors are model-based, :math:`\sqrt{\operatorname{diag}(\sigma^2 (X'V^{-1}X)^{-1})}` at
  the estimates, as lme4's ``vcov`` (statsmodels' MixedLM reports slightly different ones: it
  inverts the Hessian of the likelihood in all parameters jointly).
- Tests use the normal distribution (z), as statsmodels; lme4 prints t values with no df. A t
  reference with a chosen df is available through ``summary(df=...)``; ``df="satterthwaite"``
  (lmerTest), ``df="kenward-roger"`` (pbkrtest) and cluster-robust ``kind="CR0"``-``"CR3"``
  (clubSandwich) are computed in :mod:`hlmlib.lmm_inference`, joint tests by ``wald_test``.
- A boundary fit (a diagonal element of :math:`\Lambda` below 1e-4, lme4's ``isSingular``
  tolerance: a zero variance component or a singular :math:`\tau`) is flagged in ``.boundary`` and
  warned about; :math:`\beta`, :math:`\sigma^2` and :math:`\tau` are still the maximisers
  (statsmodels can report converged zeros there, its issue 10239).
"""
from __future__ import annotations

import html
import re as regex          # (mixed() has an argument named re)
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from numbers import Number

import numpy as np
import pandas as pd

from .lazy import stats
from .design import (InputError, check_alpha, check_bool, check_finite_array, check_scalar, formula_data,
                     check_formula_syntax, columns_by_name, group_codes, labels_for, make_design, new_model_matrix,
                     protect_quoted, restore_quoted, rhs_model, warn_user)
from .linalg import largest_magnitude
from .inference import (CoefTable, check_term_names, contrast_matrix, contrast_table, given_text,
                        marginal_effect_table, moderator_grid)
from .export import TextTable, coef_table_text, escape_markdown, format_number
from .sandwich import Covariance
from .lmm_objective import (CrossProducts, blocked_cholesky, cross_products, deviance_gradient,
                            gradient_wrt_T, lower_triangle, objective, profiled_deviance,
                            theta_lower_bounds, theta_of)
from .lmm_inference import FixedEffectsInference, _label
from .wald import WaldTest, restriction_matrix

__all__ = ["mixed", "MixedResult", "MixedSummary", "LRTest", "lrtest", "lme4_formula", "BoundaryFitWarning"]

SINGULAR_TOL = 1e-4       # lme4's isSingular(tol = 1e-4) on the diagonal of Lambda
# The likelihood is computed from cross-products, and tau, sigma^2 and the covariance of beta are in
# units of y^2, y^2/z^2 and y^2/x^2: values beyond 1e+-140, or units 1e150 apart, leave the double range.
SCALE_LIMIT = 1e140
RATIO_LIMIT = 1e150


class BoundaryFitWarning(UserWarning):
    """The fit is on the boundary: a variance component is zero or tau is singular."""


# ----------------------------------------------------------------------------------------------
# Input: formula or arrays -> y, X, Z, group codes
# ----------------------------------------------------------------------------------------------

_NAME = regex.compile(r"^(?:[A-Za-z_][A-Za-z_0-9.]*|`[^`]+`)$")
_PEERS = "lme4 (lmer), MixedModels.jl, or statsmodels' MixedLM with vc_formula"


def _signed_terms(rhs: str) -> list[tuple[str, str]]:
    """The top-level terms of a right-hand side with their signs: 'x - 1 + (1 | g)' ->
    [('+', 'x'), ('-', '1'), ('+', '(1 | g)')]; nothing inside parentheses is split."""
    terms, depth, sign, current = [], 0, "+", ""
    for ch in rhs:
        depth += (ch in "([") - (ch in ")]")
        if ch in "+-" and depth == 0:
            if current.strip():
                terms.append((sign, current.strip()))
            sign, current = ch, ""
        else:
            current += ch
    if current.strip():
        terms.append((sign, current.strip()))
    return terms


def _bar_term(term: str) -> tuple[str, str] | None:
    """(expression, grouping) of a random-effects term '(expr | g)', or None for another term."""
    if not (term.startswith("(") and term.endswith(")")):
        return None
    depth = 0
    for i, ch in enumerate(term):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and i < len(term) - 1:
            return None                                   # '(a)(b)': the first parenthesis closes early
    inner, depth, bar = term[1:-1], 0, None
    for i, ch in enumerate(inner):
        depth += (ch in "([") - (ch in ")]")
        if ch == "|" and depth == 0:
            bar = i
            break
    if bar is None:
        return None
    if inner[bar:bar + 2] == "||":
        raise InputError(f"{term} asks for uncorrelated random effects (lme4's '||', a diagonal tau), which hlmlib "
                         f"does not fit (its tau is unstructured): write ({inner[:bar].strip()} | "
                         f"{inner[bar + 2:].strip()}) for correlated random effects, or use {_PEERS}")
    return inner[:bar].strip(), inner[bar + 1:].strip()


def lme4_formula(formula: str) -> tuple[str, str, str] | None:
    r"""Split lme4's formula for one grouping factor into hlmlib's pieces: ``"y ~ x + (1 + x | g)"`` ->
    ``("y ~ x", "~ 1 + x", "g")`` (the fixed-effects formula, ``re=`` and ``groups=``); None for a formula
    without a random-effects term.

    Accepted, as in lme4: ``(1 | g)`` (random intercept), ``(x | g)`` and ``(1 + x | g)`` (intercept and
    slope, correlated), ``(0 + x | g)`` or ``(-1 + x | g)`` (slope only). Refused with
    :class:`~hlmlib.design.InputError` saying what is unsupported and which software fits it: ``||``
    (uncorrelated effects), more than one bar term (crossed or nested factors, or independent blocks for one
    factor), nested grouping ``a/b`` or ``a:b``, a grouping expression other than a column name, a bar
    outside a parenthesised term.
    """
    if not isinstance(formula, str) or "|" not in protect_quoted(formula)[0]:
        return None
    bare, quoted = protect_quoted(formula)        # a '|' or '+' inside Q('a|b') or `a+b` is part of a name
    check_formula_syntax(formula)
    lhs, _, rhs = bare.partition("~")
    if "|" in lhs:
        raise InputError(f"formula {formula!r}: a random-effects term is on the left of '~'; the response goes "
                         "there, the random effects on the right: 'y ~ x + (1 | g)'")
    fixed, bars = [], []
    for sign, bare_term in _signed_terms(rhs):
        term = restore_quoted(bare_term, quoted)
        parsed = _bar_term(bare_term)
        if parsed is not None:
            parsed = tuple(restore_quoted(part, quoted) for part in parsed)
        if parsed is None:
            if "|" in bare_term:
                raise InputError(f"formula {formula!r}: the '|' in {term!r} is outside a random-effects term; "
                                 "write random effects as lme4 does, in parentheses: 'y ~ x + (1 + x | g)'")
            fixed.append(f"{sign} {term}")
        elif sign == "-":
            raise InputError(f"formula {formula!r}: a random-effects term cannot be subtracted (- {term})")
        else:
            bars.append((term, *parsed))
    if len(bars) > 1:
        shown = " + ".join(t for t, _, _ in bars)
        groupings = {g for _, _, g in bars}
        if len(groupings) == 1:
            raise InputError(f"formula {formula!r}: {shown} gives one grouping factor several independent blocks of "
                             "random effects, which hlmlib does not fit (one unstructured tau per group): write one "
                             f"term for correlated effects, such as (1 + x | {bars[0][2]}), or use {_PEERS}")
        raise InputError(f"formula {formula!r}: {shown} has {len(groupings)} grouping factors (crossed or nested "
                         f"random effects); hlmlib fits two-level models with one grouping factor; use {_PEERS}")
    term, expression, grouping = bars[0]
    if not _NAME.match(grouping):
        if "/" in grouping or ":" in grouping:
            what = f"nested grouping {grouping!r} (three levels: {grouping.replace(':', '/')})"
        else:
            what = f"the grouping expression {grouping!r}"
        raise InputError(f"formula {formula!r}: {what} is not supported; hlmlib's grouping factor is one column "
                         f"of the data (make it first, e.g. data['g'] = ...), and for nested or crossed factors "
                         f"use {_PEERS}")
    if not expression:
        raise InputError(f"formula {formula!r}: {term} has no random effects before the '|' (write (1 | g))")
    fixed_rhs = " ".join(fixed).removeprefix("+ ") or "1"
    return f"{restore_quoted(lhs, quoted).strip()} ~ {fixed_rhs}", f"~ {expression}", grouping.strip("`")


def _arrays(y, X, groups, Z, data, re):
    """Checked (design, Z, Z names, group labels, formulaic's spec of Z, the formula in lme4's notation, the
    grouping column's name) from either calling form."""
    if isinstance(y, str):
        X, data = formula_data(y, X, data)
        if Z is not None:
            raise InputError("with a formula, give the random effects as re='~ x' or in lme4's notation, not Z=")
        lme4 = lme4_formula(y)
        if lme4 is not None:
            if groups is not None or re is not None:
                raise InputError(f"formula {y!r} gives the random effects in lme4's notation: leave out groups= and "
                                 "re= (or write the formula without the '( ... | g)' term)")
            y, re, groups = lme4
        if groups is None:
            raise InputError("a mixed model needs a grouping factor: lme4's notation in the formula, 'y ~ x + (1 | g)', "
                             "or groups= (the column, or labels, identifying the groups)")
        re = "~ 1" if re is None else re
        if not isinstance(re, str) or "~" not in re:
            raise InputError(f"re must be a right-hand-side formula such as '~ 1' or '~ x', got {re!r}")
        extra_columns = [groups] if isinstance(groups, str) else []
        design = make_design(y, X, data=data, extra_formulas=[re], extra_columns=extra_columns)
        Zdf, re_spec = rhs_model(re, design.data, design.index)
        Zarr, znames = Zdf.to_numpy(dtype=float), [str(c) for c in Zdf.columns]
        bar = f"({re.partition('~')[2].strip()} | {groups})" if isinstance(groups, str) else None
        if not znames:
            what = bar if lme4 is not None else f"re={re!r}"
            raise InputError(f"{what} has no random effects ('0' or '-1' removes the intercept and nothing is left); "
                             "give at least one, e.g. (1 | g), or fit a model without random effects with hlmlib.ols")
        shown = f"{design.formula} + {bar}" if bar else design.formula
    else:
        if re is not None or data is not None:
            raise InputError("re= and data= go with a formula; with arrays give Z (default: intercept only)")
        if groups is None:
            raise InputError("a mixed model needs groups: one label per row")
        design = make_design(y, X)
        re_spec, shown = None, None
        if Z is None:
            Zarr, znames = np.ones((design.n, 1)), ["Intercept"]
        else:
            Zarr, znames = _random_effects_design(Z, design.n)
    labels = labels_for(groups, design, "groups")
    return design, Zarr, znames, labels, re_spec, shown, groups if isinstance(groups, str) else None


def _label_kind(value) -> str:
    """The kind of a group label, to tell labels that cannot match apart: 'boolean', 'numeric', 'text', or
    its type's name."""
    if isinstance(value, (bool, np.bool_)):
        return "boolean"
    if isinstance(value, Number):
        return "numeric"
    return "text" if isinstance(value, str) else type(value).__name__


def _random_effects_design(Z, n: int) -> tuple[np.ndarray, list[str]]:
    """Checked Z (n x q) and its names: DataFrame columns, else z0, z1, ..."""
    if isinstance(Z, pd.Series):
        Z = Z.to_frame()
    if not isinstance(Z, pd.DataFrame):
        Z = np.asarray(Z)
        Z = Z[:, None] if Z.ndim == 1 else Z
        if Z.ndim != 2:
            raise InputError(f"Z must be 1- or 2-dimensional, got shape {Z.shape}")
        Z = pd.DataFrame(Z, columns=[f"z{a}" for a in range(Z.shape[1])])
    if len(Z) != n:
        raise InputError(f"Z has {len(Z)} rows but y has {n}: they must match")
    if Z.shape[1] == 0:
        raise InputError("the random-effects design Z has no columns: use OLS (hlmlib.ols) for a model "
                         "without random effects")
    checked = make_design(np.zeros(n), Z)          # the same numeric/finite checks as X, by column name
    return checked.X, checked.names


def _check_scales(design, Z: np.ndarray, znames: list[str]) -> None:
    """Refuse data that the cross-products cannot hold: a column whose values reach beyond
    ``SCALE_LIMIT`` (1e+-140; their squares leave the double range), or a column of X or Z whose units
    are more than ``RATIO_LIMIT`` from those of y (the covariance of beta and tau, in units of
    y^2/x^2, would). The estimates are equivariant, so rescaling is free."""
    named = [(design.yname, largest_magnitude(design.y))]
    named += list(zip(design.names, largest_magnitude(design.X))) + list(zip(znames, largest_magnitude(Z)))
    for name, peak in named:
        if peak > SCALE_LIMIT or 0 < peak < 1 / SCALE_LIMIT:
            raise InputError(f"column {name!r} has values of order {peak:.0e}: mixed works with sums of squares, "
                             f"which leave the double range beyond 1e+-{np.log10(SCALE_LIMIT):.0f}; rescale it (the "
                             "estimates are equivariant: beta, sqrt(tau) and sigma scale with y)")
    y_peak = named[0][1]
    for name, peak in named[1:]:
        if y_peak > 0 and peak > 0 and not 1 / RATIO_LIMIT < y_peak / peak < RATIO_LIMIT:
            raise InputError(f"y (values of order {y_peak:.0e}) and column {name!r} ({peak:.0e}) are more than "
                             f"1e{np.log10(RATIO_LIMIT):.0f} apart: coefficients and variances in units of y over "
                             f"{name!r} (squared) leave the double range; rescale one of them")


def _collinear_columns(M: np.ndarray, names: list[str]) -> list[str]:
    """Columns of a cross-product matrix M = A'A that are linear combinations of earlier ones."""
    scale = np.sqrt(np.clip(np.diag(M), 1e-300, None))
    C = M / np.outer(scale, scale)
    dependent, kept = [], []
    for k in range(len(names)):
        trial = kept + [k]
        if np.linalg.eigvalsh(C[np.ix_(trial, trial)])[0] <= 1e-10 * len(trial) or np.diag(M)[k] == 0:
            dependent.append(names[k])
        else:
            kept.append(k)
    return dependent


def _far_from_centred(A: np.ndarray, names: list[str]) -> list[str]:
    """Non-constant columns whose mean is more than 100 times their standard deviation (a calendar year, a
    date): nearly collinear with a constant, they leave the cross-products the likelihood is computed from
    with few accurate digits; centring them is a reparametrisation that fixes this."""
    mean, sd = A.mean(axis=0), A.std(axis=0)
    return [name for name, m, s in zip(names, mean, sd) if s > 0 and abs(m) > 100 * s]


def _centring_hint(columns: list[str]) -> str:
    return (f"; column(s) {columns} have a mean over 100 times their standard deviation: centre them (e.g. "
            "year - 2000), which gives the same model with well-conditioned cross-products") if columns else ""


def _within_residual_ss(cp: CrossProducts) -> float:
    """Residual sum of squares of y on X plus separate coefficients on Z in every group (a lower bound
    for sigma^2 * (N - ...)); zero when y is fitted exactly. From the cross-products:
    S = [X y]'[X y] - sum_j [X_j y_j]'Z_j (Z_j'Z_j)^+ Z_j'[X_j y_j], then S_yy - S_yX S_XX^+ S_Xy."""
    q, p = cp.q, cp.p
    C = cp.ZtZW[:, :, q:]
    S = cp.WtW - np.einsum("jak,jab,jbl->kl", C, np.linalg.pinv(cp.ZtZ, hermitian=True), C)
    if p == 0:
        return float(S[-1, -1])
    return float(S[-1, -1] - S[-1, :p] @ np.linalg.pinv(S[:p, :p], hermitian=True) @ S[:p, -1])


def _confounded_random_effects(cp: CrossProducts, znames: list[str]) -> list[str]:
    """Random-effects columns z_a whose group parts, the columns z_a 1[g = j] for every group j, all lie in the
    span of X: then X beta absorbs every b_ja, as a fixed intercept per group (C(g) among the fixed effects)
    absorbs a random intercept, and the criterion is flat in that variance. Each group's residual sum of
    squares on X, from the cross-products, d_j'd_j - d_j'X (X'X)^+ X'd_j, is compared with d_j'd_j (X's
    columns scaled to unit length first)."""
    q, p = cp.q, cp.p
    scale = np.sqrt(np.clip(np.diag(cp.WtW)[:p], 1e-300, None))
    XtX_pinv = np.linalg.pinv(cp.WtW[:p, :p] / np.outer(scale, scale), hermitian=True)
    confounded = []
    for a, name in enumerate(znames):
        d_sq = cp.ZtZ[:, a, a]                                      # d_j'd_j, one per group
        c = cp.ZtZW[:, a, q:q + p] / scale                           # X'd_j (scaled), one row per group
        resid = d_sq - np.einsum("jk,kl,jl->j", c, XtX_pinv, c)
        used = d_sq > 0
        if used.any() and np.all(resid[used] <= 1e-9 * d_sq[used]):
            confounded.append(name)
    return confounded


def _check_identifiable(design, Z, znames, codes, n_groups, cp: CrossProducts, group=None) -> None:
    """Refuse models whose parameters the data cannot identify, saying why (``group``: the grouping column, named
    in the messages)."""
    N, q = design.n, Z.shape[1]
    if n_groups <= q:
        raise InputError(f"{n_groups} group(s) for {q} random effect(s) per group: an unstructured "
                         f"{q} x {q} covariance tau needs more groups than random effects")
    if N <= n_groups * q:
        raise InputError(f"{N} observations for {n_groups} groups x {q} random effect(s): with N <= J q the "
                         "random effects and the residual variance are not separately identifiable (lme4's "
                         "check.nobs.vs.nRE); e.g. every group has a single observation")
    bad_X = _collinear_columns(cp.WtW[:-1, :-1], design.names)
    if bad_X:
        raise InputError(f"the fixed-effects design is rank deficient, or too nearly so for the cross-products the "
                         f"likelihood is computed from: column(s) {bad_X} are (nearly) linear combinations of "
                         f"earlier columns" + _centring_hint(_far_from_centred(design.X, design.names)))
    bad_Z = _collinear_columns(cp.ZtZ.sum(axis=0), znames)
    if bad_Z:
        raise InputError(f"the random-effects design Z is rank deficient, or too nearly so for the cross-products "
                         f"the likelihood is computed from: column(s) {bad_Z} are (nearly) linear combinations of "
                         f"earlier columns" + _centring_hint(_far_from_centred(Z, znames)))
    confounded = _confounded_random_effects(cp, znames)
    if confounded:
        raise InputError(f"the random effects of column(s) {confounded} are confounded with the fixed effects: in "
                         "every group that column is a combination of the fixed effects' columns (e.g. the fixed "
                         "effects include dummies of the grouping factor, C(g), or its interaction with the column), "
                         "so their variance is not identified (the REML criterion is flat in it); drop the fixed "
                         "group effects or these random effects")
    if _within_residual_ss(cp) <= 1e-12 * cp.WtW[-1, -1]:
        raise InputError("y is fitted exactly by X and group-specific coefficients on Z (e.g. y is constant "
                         "within every group): the residual variance sigma^2 would be zero")
    group_level, group_means = [], []
    for a, name in enumerate(znames):
        z = Z[:, a]
        group_sum = np.bincount(codes, weights=z, minlength=n_groups)
        within_ss = cp.ZtZ[:, a, a] - group_sum ** 2 / cp.n_obs      # sum_j sum_i (z_ij - zbar_j)^2
        if np.ptp(z) > 0 and within_ss.sum() <= 1e-10 * cp.ZtZ[:, a, a].sum():
            group_level.append(name)
            group_means.append(group_sum / cp.n_obs)
    if group_level:
        raise InputError(_group_level_message(group_level, np.column_stack(group_means), znames, Z, group))


def _group_level_message(names: list[str], means: np.ndarray, znames: list[str], Z: np.ndarray, group) -> str:
    """Why random effects on columns constant within every group (``names``; ``means``: their value in each group,
    J x k) are refused: the real reason for the model at hand, and where such a model can be fitted."""
    shown = ", ".join(repr(n) for n in names)
    group = group or "g"
    if any(np.ptp(Z[:, a]) == 0 and Z[0, a] != 0 for a in range(len(znames))):
        return (f"random-effects column(s) {shown} are constant within every group (group-level variables): "
                "with a random intercept their random slopes cannot be told apart from it (in each group both only "
                "shift every row by the same amount); keep them as fixed effects only")
    if len(names) > 1 and np.all((np.abs(means) > 0).sum(axis=1) <= 1):
        parsed = [regex.fullmatch(r"([A-Za-z_]\w*)\[(?:T\.)?(.+)\]", n) for n in names]
        example = (" + ".join(f'(0 + dummy({m[1]}, "{m[2]}") | {group})' for m in parsed)
                   if all(parsed) else f"one (0 + column | {group}) term per column")
        return (f"random-effects columns {shown} are constant within every group and each group has only one of "
                "them (e.g. (0 + s | g) with s a group-level factor: no random intercept, one column per category): "
                "no group has two of these random effects, so their covariances are not identified, and hlmlib "
                "fits one unstructured covariance tau for all the random effects. A group-level variance that "
                f"differs by category is a model with a separate variance per column and no covariances, e.g. "
                f"in lme4 {example}")
    return (f"random-effects column(s) {shown} are constant within every group (group-level variables) and the "
            "model has no random intercept: in each group their random effects only shift every row by the same "
            "amount, a group-level variance that depends on these variables, which hlmlib does not fit (its "
            "random effects are for a random intercept and level-1 slopes); lme4 fits such models")


# ----------------------------------------------------------------------------------------------
# Optimisation of the profiled criterion over theta
# ----------------------------------------------------------------------------------------------

def moment_start(cp: CrossProducts) -> np.ndarray:
    """Cheap starting theta from group-by-group least squares (a method-of-moments estimate).

    b_j = (Z_j'Z_j)^-1 Z_j'(y_j - X_j beta_OLS) in the groups with residual degrees of freedom (n_j > q + 1)
    and a well-conditioned Z_j'Z_j; sigma^2 from the residuals within groups; T = tau / sigma^2 =
    cov(b_j) / sigma^2 - mean((Z_j'Z_j)^-1). In units of that sampling noise, T's eigenvalues are kept
    within [0.1, 1000], so that the start lies inside the parameter space and away from numerically
    extreme values. Falls back to lme4's start, Lambda = I, when fewer than q + 2 groups qualify.
    """
    q, p = cp.q, cp.p
    XtX, Xty = cp.WtW[:p, :p], cp.WtW[:p, p]
    beta = np.linalg.lstsq(XtX, Xty, rcond=None)[0]
    s = cp.ZtZW[:, :, -1] - cp.ZtZW[:, :, q:q + p] @ beta          # Z_j'(y_j - X_j beta)
    eig = np.linalg.eigvalsh(cp.ZtZ)
    use = (cp.n_obs > q + 1) & (eig[:, 0] > 1e-6 * eig[:, -1])
    resid_df = cp.N - q * use.sum() - p
    if use.sum() < q + 2 or resid_df <= 0:
        return theta_of(np.eye(q))
    ZtZ_inv = np.linalg.inv(cp.ZtZ[use])
    b = (ZtZ_inv @ s[use][:, :, None])[:, :, 0]
    sigma2 = (cp.WtW[p, p] - beta @ Xty - np.einsum("ja,ja->", s[use], b)) / resid_df
    if not sigma2 > 0:
        return theta_of(np.eye(q))
    noise = ZtZ_inv.mean(axis=0)
    d = 1 / np.sqrt(np.diag(noise))
    w, V = np.linalg.eigh(d[:, None] * (np.cov(b.T, ddof=1).reshape(q, q) / sigma2 - noise) * d)
    T = (V * np.clip(w, 0.1, 1000.0)) @ V.T / np.outer(d, d)
    return theta_of(np.linalg.cholesky(T))


def _kkt_tolerance(cp: CrossProducts) -> float:
    """Gradients below this (deviance units; the criterion is a sum over N rows) count as zero."""
    return 1e-4 + 1e-6 * cp.N


def _boundary_kkt_holds(fac, cp: CrossProducts, reml: bool) -> bool:
    """The first-order (KKT) conditions for T = Lambda Lambda' on the cone of covariance matrices, at a
    singular T: G T = 0 (equivalently G Lambda = 0, all entries) and G positive semi-definite on the null
    space of T, with G = dd/dT, to the tolerance ``_kkt_tolerance``. True inside the cone (no zero
    diagonal of Lambda), where the gradient conditions are Newton's."""
    if np.diag(fac.Lam).min() > 0:
        return True
    tol = _kkt_tolerance(cp)
    T = fac.Lam @ fac.Lam.T
    G = gradient_wrt_T(fac, cp, reml)
    w, V = np.linalg.eigh(T)
    null = V[:, w <= 1e-12 * max(w.max(), 1.0)]
    return bool(np.abs(2 * G @ fac.Lam).max() <= tol and np.linalg.eigvalsh(null.T @ G @ null)[0] >= -tol)


def _escape_boundary(theta: np.ndarray, cp: CrossProducts, reml: bool) -> tuple[np.ndarray | None, bool]:
    """(None, True) if theta is optimal for T = Lambda Lambda' on the cone of covariance matrices; else
    (a better start, False), or (None, False) when no better point is found.

    A gradient method in theta can stop short of the KKT conditions (``_boundary_kkt_holds``):
    dd/dtheta vanishes on a zero column of Lambda, and a zero diagonal of Lambda freezes the covariances
    below it. When a condition fails, take a projected gradient step in T, T - c G projected onto the
    positive semi-definite matrices (c halved until the criterion drops), and return the Cholesky factor
    of the result, whose diagonal is positive again.
    """
    fac = blocked_cholesky(theta, cp)
    if _boundary_kkt_holds(fac, cp, reml):
        return None, True
    T = fac.Lam @ fac.Lam.T
    G = gradient_wrt_T(fac, cp, reml)
    d0 = profiled_deviance(fac, cp, reml)
    scale = max(np.trace(T) / cp.q, cp.N / np.trace(cp.ZtZ.sum(axis=0)))   # a relative variance of note
    c = scale / np.abs(np.linalg.eigvalsh(G)).max()
    for _ in range(40):
        w, V = np.linalg.eigh(T - c * G)
        T_new = (V * np.maximum(w, 0)) @ V.T
        theta_new = theta_of(np.linalg.cholesky(T_new + 1e-10 * scale * np.eye(cp.q)))
        if objective(theta_new, cp, reml)[0] < d0:
            return theta_new, False
        c /= 4
    return None, False


@dataclass
class _ThetaFit:
    """Where a minimisation of the profiled deviance ended, with its diagnostics."""

    theta: np.ndarray
    deviance: float
    gradient: np.ndarray          # projected: zero where a bound holds the coordinate
    newton_decrement: float       # g'|H|^-1 g / 2: the predicted remaining decrease of the criterion
    converged: bool
    message: str
    n_evaluations: int
    boundary: bool = False        # a diagonal element of Lambda below SINGULAR_TOL, on the unit-scaled Z


def _hessian(theta: np.ndarray, grad: np.ndarray, free: np.ndarray, cp: CrossProducts, reml: bool):
    """The Hessian over the coordinates ``free``: forward differences of the analytic gradient."""
    H = np.empty((free.size, free.size))
    for k, i in enumerate(free):
        h = 1e-7 * max(1.0, abs(theta[i]))
        shifted = theta.copy()
        shifted[i] += h
        H[:, k] = (objective(shifted, cp, reml)[1][free] - grad[free]) / h
    return (H + H.T) / 2


def _newton_model(theta: np.ndarray, grad: np.ndarray, cp: CrossProducts, reml: bool, lower: np.ndarray):
    """The quadratic model at theta over the coordinates not held at their bound: (free coordinates,
    Hessian eigenvalues and vectors, the gradient in them, the absolute eigenvalues floored, the Newton
    decrement g' abs(H)^-1 g / 2, whether there is clearly negative curvature); None when every
    coordinate is held."""
    free = np.flatnonzero(~((theta <= lower) & (grad > 0)))
    if free.size == 0:
        return None
    w, V = np.linalg.eigh(_hessian(theta, grad, free, cp, reml))
    scale = max(np.abs(w).max(), 1e-12)
    along = V.T @ grad[free]                                # the gradient in H's eigenvectors
    w_abs = np.maximum(np.abs(w), 1e-8 * scale)
    decrement = float(along @ (along / w_abs)) / 2
    return free, w, V, along, w_abs, scale, decrement, bool(w[0] < -1e-4 * scale)


def newton_minimise(theta: np.ndarray, cp: CrossProducts, reml: bool, lower: np.ndarray,
                    max_iter: int = 200) -> _ThetaFit:
    """Minimise the profiled deviance over theta >= lower by a projected, modified Newton method.

    Each iteration holds the coordinates that sit at their bound with the gradient pushing against it
    (Bertsekas 1982, projected Newton); on the others it takes the Hessian H from differences of the
    analytic gradient g and steps by -|H|^-1 g (eigenvalues by absolute value, so the step goes downhill
    where H is indefinite), adding a move along a direction of negative curvature if there is one (at a
    saddle, g = 0); backtracking (Armijo) along the step projected onto the bounds. Stops when the Newton
    decrement g'|H|^-1 g / 2 is below 1e-11 with no negative curvature; near the optimum convergence
    is quadratic. Converged: at the point returned (re-evaluated there when the loop ended after a
    step, e.g. at the iteration limit), the Newton decrement of the projected gradient is below 1e-6
    (lme4's check that the Hessian-scaled gradient is small, in the same spirit) and there is no clearly
    negative curvature.
    """
    dev, grad = objective(theta, cp, reml)
    n_eval, decrement, message, negative = 1, np.inf, "iteration limit reached", False
    stale = False                      # whether decrement/negative describe an earlier point than theta
    for _ in range(max_iter):
        model = _newton_model(theta, grad, cp, reml, lower)
        stale = False
        if model is None:
            decrement, negative, message = 0.0, False, "every coordinate held at its bound"
            break
        free, w, V, along, w_abs, scale, decrement, negative = model
        n_eval += free.size
        if decrement < 1e-11 and w[0] >= -1e-6 * scale:
            message = "Newton decrement below 1e-11"
            break
        step = np.zeros_like(theta)
        step[free] = -V @ (along / w_abs)
        if w[0] < -1e-6 * scale:                                # leave a saddle downhill
            step[free] += -np.copysign(1.0, along[0]) * V[:, 0] * np.sqrt(-w[0] / scale) \
                * max(1.0, np.abs(theta).max())
        step *= min(1.0, 10 * max(1.0, np.abs(theta).max()) / np.abs(step).max())   # no wild steps
        t = 1.0
        while True:
            trial = np.maximum(theta + t * step, lower)
            trial_dev, trial_grad = objective(trial, cp, reml)
            n_eval += 1
            if trial_dev <= dev + 1e-4 * min(grad @ (trial - theta), 0.0):
                break
            t /= 2
            if t < 1e-10:
                break
        if t < 1e-10:
            message = "no step lowers the criterion (line search)"
            break
        progress = dev - trial_dev
        theta, dev, grad = trial, trial_dev, trial_grad
        stale = True
        if progress <= 1e-13 * abs(dev) and decrement < 1e-8:
            message = "no further progress"
            break
    if stale:                          # judge convergence where the search ended, not one step before
        model = _newton_model(theta, grad, cp, reml, lower)
        decrement, negative = (0.0, False) if model is None else model[6:]
        n_eval += 0 if model is None else model[0].size
    projected = np.where((theta <= lower) & (grad > 0), 0.0, grad)
    return _ThetaFit(theta=theta, deviance=float(dev), gradient=projected, newton_decrement=decrement,
                     converged=bool(decrement <= 1e-6 and not negative), message=message, n_evaluations=n_eval)


def _unit_scale(cp: CrossProducts) -> tuple[CrossProducts, np.ndarray]:
    """Cross-products of Z D^-1, the columns of Z at unit root mean square, and d = diag(D).

    The model is unchanged, Z Lambda = (Z D^-1)(D Lambda) with D Lambda lower triangular too, but theta is
    better scaled for the optimiser when Z's columns differ in scale by orders of magnitude."""
    d = cp.z_scale
    columns = np.r_[d, np.ones(cp.p + 1)]
    return CrossProducts(ZtZW=cp.ZtZW / d[:, None] / columns, WtW=cp.WtW, n_obs=cp.n_obs), d


def fit_theta(cp: CrossProducts, reml: bool = True, start: np.ndarray | None = None,
              max_restarts: int = 5) -> _ThetaFit:
    """Minimise the profiled deviance over theta, diag(Lambda) >= 0.

    On Z scaled to unit root mean square (``_unit_scale``), from ``moment_start``: ``newton_minimise``,
    restarted off a boundary point that is not optimal (``_escape_boundary``). Converged means, at the
    point returned: the Hessian-scaled projected gradient is negligible (Newton decrement below 1e-6, no
    negative curvature) and the boundary (KKT) optimality conditions hold; lme4 checks a gradient
    scaled by the Hessian in the same spirit. ``boundary`` is decided on this unit-scaled problem, so it
    does not depend on the units of Z. ``start`` is theta for the Z given (checked by ``mixed``); a start at
    which the criterion cannot be evaluated (so extreme for the data's units that the factorisation fails) is
    replaced by ``moment_start``.
    """
    q = cp.q
    unit, d = _unit_scale(cp)
    theta = None if start is None else theta_of(d[:, None] * lower_triangle(start, q))
    if theta is None or not np.isfinite(objective(theta, unit, reml)[0]):
        theta = moment_start(unit)
    lower = theta_lower_bounds(q)
    n_eval, best, kkt_holds = 0, None, False
    for _ in range(max_restarts + 1):
        fit = newton_minimise(theta, unit, reml, lower)
        n_eval += fit.n_evaluations
        if best is None or fit.deviance < best.deviance:
            best = fit
        theta, optimal = _escape_boundary(fit.theta, unit, reml)
        if theta is None:
            # converged only where the search ended at the best point and the KKT conditions hold
            # there (not merely because no projected step lowered the criterion)
            kkt_holds = best is fit and optimal
            break
    # back to the original Z: Lambda = D^-1 (D Lambda), and dd/dLambda_rc = d_r dd/d(D Lambda)_rc
    return _ThetaFit(theta=theta_of(lower_triangle(best.theta, q) / d[:, None]), deviance=best.deviance,
                     gradient=theta_of(lower_triangle(best.gradient, q) * d[:, None]),
                     newton_decrement=best.newton_decrement, converged=bool(kkt_holds and best.converged),
                     message=best.message, n_evaluations=n_eval,
                     boundary=bool(np.diag(lower_triangle(best.theta, q)).min() < SINGULAR_TOL))


# ----------------------------------------------------------------------------------------------
# The result
# ----------------------------------------------------------------------------------------------

@dataclass(repr=False)
class MixedSummary:
    """The printed summary of a mixed model: header lines, fixed effects and variance components.

    Prints as text, renders as HTML tables in Jupyter (``_repr_html_``), and writes LaTeX
    (:meth:`to_latex`) and Markdown (:meth:`to_markdown`) with the formatting of :mod:`hlmlib.export` (z
    tests without a df column, p-values below 2.2e-16 as ``<2e-16``); :meth:`tidy` gives the fixed effects
    in broom's layout."""

    header: list[str]
    coefficients: CoefTable
    variance_components: pd.DataFrame

    def _tables(self, digits: int = 4):
        digits = check_scalar(digits, "digits", integer=True, minimum=1, maximum=17)
        fixed = coef_table_text(self.coefficients, "Fixed effects", digits)
        vc = self.variance_components
        rows = [[str(label)] + ["" if np.isnan(v) else format_number(v, digits) for v in values]
                for label, values in zip(vc.index, vc.to_numpy(dtype=float))]
        return fixed, TextTable([""] + [str(c) for c in vc.columns], rows, "Variance components")

    def __str__(self) -> str:
        fixed, vc = self._tables()
        return "\n".join(self.header + ["", fixed.to_text(), "", vc.to_text()])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        fixed, vc = self._tables()
        lines = "<br>".join(html.escape(line) for line in self.header)
        return f"<p>{lines}</p>{fixed.to_html()}{vc.to_html()}"

    def to_latex(self, digits: int = 4, label: str | None = None) -> str:
        r"""Two LaTeX tables (booktabs rules): the fixed effects, captioned with the header lines (the model,
        the criterion, the covariance and df rule), then the variance components; ``label`` labels the first.
        ``digits``: significant digits."""
        fixed, vc = self._tables(digits)
        fixed.caption = " ".join(self.header)
        vc.caption = "Variance components (random effects' variances and covariances; residual variance)"
        return fixed.to_latex(True, label) + "\n\n" + vc.to_latex(True)

    def to_markdown(self, digits: int = 4) -> str:
        """The header lines, then the fixed effects and the variance components as Markdown pipe tables."""
        fixed, vc = self._tables(digits)
        return "\n".join(["  \n".join(escape_markdown(line) for line in self.header), "", fixed.to_markdown(), "",
                          vc.to_markdown()])

    def tidy(self) -> pd.DataFrame:
        """The fixed effects in broom's layout (:meth:`hlmlib.inference.CoefTable.tidy`)."""
        return self.coefficients.tidy()


@dataclass(repr=False, eq=False)
class MixedResult:
    r"""A fitted two-level linear mixed model (see the :mod:`hlmlib.mixed` module docstring).

    Attributes: ``params`` (fixed effects), ``tau`` (q x q covariance of the random effects),
    ``sigma2`` (residual variance), ``theta`` (lower triangle of :math:`\Lambda`,
    :math:`\tau = \sigma^2 \Lambda \Lambda'`, lme4's order), ``llf`` (maximised log-likelihood: REML for
    REML fits, so ``-2 llf`` is lme4's REML criterion), ``deviance`` (``-2 llf``), ``converged``,
    ``boundary``, ``gradient`` (projected, at :math:`\theta`), ``nobs``, ``ngroups``, ``reml``.
    Methods: ``vcov()``, ``se()``, ``coef_table()``, ``summary()``, ``contrast()``, ``marginal_effect()`` and
    ``wald_test()`` (each with ``kind`` and ``df``: model-based, Kenward-Roger or cluster-robust covariances;
    normal, Satterthwaite or Kenward-Roger references; see :meth:`coef_table`), ``confint()``
    (profile-likelihood or Wald intervals), ``icc()``, ``shrinkage()``, ``shrinkage_factor()``, ``predict()``
    (lme4's ``predict``), ``tidy()`` (broom's layout); Raudenbush & Bryk's ``reliability()`` and
    ``homogeneity_test()``; model checks ``residuals(kind)``, ``ranef_se(kind)``, ``mahalanobis()`` and
    ``level1_variance_test(by)`` (:mod:`hlmlib.lmm_diagnostics`);
    properties ``ranef``, ``ranef_cov``, ``ranef_var``, ``fitted``, ``resid``, ``aic``, ``bic``,
    ``variance_components``. ``formula`` is the model in lme4's notation (``y ~ x + (1 + x | g)``) when the
    groups are a column. In Jupyter a result shows its summary as HTML tables.
    """

    params: pd.Series
    tau: pd.DataFrame
    sigma2: float
    theta: np.ndarray
    llf: float
    reml: bool
    converged: bool
    boundary: bool
    gradient: np.ndarray
    nobs: int
    ngroups: int
    group_labels: pd.Index
    optimizer_message: str
    n_evaluations: int
    n_dropped: int
    formula: str | None
    re_names: list[str]
    _cp: CrossProducts = field(repr=False)
    _y: np.ndarray = field(repr=False)
    _X: np.ndarray = field(repr=False)
    _Z: np.ndarray = field(repr=False)
    _codes: np.ndarray = field(repr=False)
    # for predict and the default grid of marginal_effect: formulaic's specs of X and Z (formula fits), the
    # grouping column's name, the fit's own copy of its rows
    _spec: object = field(default=None, repr=False)
    _re_spec: object = field(default=None, repr=False)
    _groups_column: str | None = field(default=None, repr=False)
    _data: pd.DataFrame | None = field(default=None, repr=False)
    # the labels of the fit's rows in the caller's data (0..n-1 for arrays): the index of fitted values,
    # residuals and predict(); rows are aligned by position inside, the labels only name them
    _row_labels: pd.Index | None = field(default=None, repr=False)

    # --- fixed effects --------------------------------------------------------------------------
    @cached_property
    def _factor(self):
        return blocked_cholesky(self.theta, self._cp)

    def vcov(self, kind: str = "model") -> pd.DataFrame:
        r"""Covariance of the fixed effects; ``.attrs["convention"]`` names it.

        ``kind="model"`` (default): :math:`\sigma^2 (X'V^{-1} X)^{-1}` with :math:`V = I + Z T Z'` at the
        estimates, lme4's ``vcov`` (model-based). ``"kenward-roger"``: Kenward & Roger's (1997) adjusted
        :math:`\Phi_A` (pbkrtest ``vcovAdj``; REML fits). ``"CR0"``-``"CR3"``: cluster-robust with the groups as
        clusters and the fitted model as working model (clubSandwich ``vcovCR`` for lmer fits; mixed-model
        CR1 is clubSandwich's :math:`J/(J-1)`, unlike OLS's Stata CR1). Formulas in
        :mod:`hlmlib.lmm_inference`.
        """
        names = self.params.index
        cov = self._inference.covariance(kind)
        frame = pd.DataFrame(cov.matrix, index=names, columns=names)
        frame.attrs.update({"kind": cov.kind, "convention": cov.convention})
        return frame

    def se(self, kind: str = "model") -> pd.Series:
        r"""Standard errors :math:`\sqrt{\operatorname{diag}(V)}`, :math:`V` = ``vcov(kind)``; model-based by
        default, as lme4's ``sqrt(diag(vcov(m)))``."""
        return pd.Series(np.sqrt(np.diag(self.vcov(kind))), index=self.params.index, name="se")

    @cached_property
    def _inference(self) -> FixedEffectsInference:
        return FixedEffectsInference(self._factor, self._cp, self.sigma2, self.reml, self.params.to_numpy(),
                                     self._y, self._X, self._Z, self._codes, self.group_labels)

    def coef_table(self, alpha: float = 0.05, df=None, kind: str = "model") -> CoefTable:
        r"""Estimate, se, df, t, p, ci_low, ci_high per fixed effect (:mod:`hlmlib.inference` layout).

        ``kind`` chooses the covariance (as :meth:`vcov`), ``df`` the reference distribution of
        :math:`t = \hat\beta / \mathrm{se}` (formulas in :mod:`hlmlib.lmm_inference`):

        - ``None`` (default): the kind's own rule -- the normal reference for ``"model"`` (as statsmodels'
          MixedLM; lme4 prints t values without df), Kenward-Roger df for ``"kenward-roger"``, and
          clubSandwich's Satterthwaite df for ``"CR0"``-``"CR3"`` (``coef_test``'s default);
        - a number: :math:`t(\mathrm{df})` (``np.inf``: normal);
        - ``"satterthwaite"``: with ``kind="model"``, lmerTest's Satterthwaite df (``summary(m, ddf =
          "Satterthwaite")``; REML and ML), from the derivatives of :math:`\operatorname{Var}(\hat\beta)` in
          lmerTest's variance parameters; with a cluster-robust kind, clubSandwich's
          ``coef_test(..., test = "Satterthwaite")`` with the fitted model as working model;
        - ``"kenward-roger"``: Kenward & Roger's adjusted covariance and df (lmerTest ``summary(m, ddf =
          "Kenward-Roger")``, pbkrtest ``vcovAdj``/``Lb_ddf``); REML fits only, and the se is the adjusted one.

        The caption names the covariance and the df rule.
        """
        cov, caption = self._covariance(df, kind)
        return contrast_table(np.eye(len(self.params)), self.params.to_numpy(), cov, alpha,
                              labels=list(self.params.index), caption=caption)

    def _covariance(self, df=None, kind: str = "model") -> tuple[Covariance, str]:
        cov = self._inference.covariance(kind, df)
        return cov, self._inference.caption(cov)

    def contrast(self, L, alpha: float = 0.05, df=None, kind: str = "model") -> CoefTable:
        r"""Linear contrasts :math:`c'\hat\beta` of the fixed effects with se :math:`\sqrt{c'Vc}`,
        :math:`V` = ``vcov(kind)``; ``L`` as in :meth:`hlmlib.OLSResult.contrast` (weights, a
        ``{term: weight}`` dict, or a list of them). ``df`` as :meth:`coef_table` (Satterthwaite and
        Kenward-Roger df per contrast: lmerTest's ``contest(joint = FALSE)``, clubSandwich's
        ``linear_contrast``)."""
        matrix, labels = contrast_matrix(L, list(self.params.index))
        cov, caption = self._covariance(df, kind)
        return contrast_table(matrix, self.params.to_numpy(), cov, alpha, labels, caption + ", linear contrasts")

    def marginal_effect(self, x: str, by: str, at=None, alpha: float = 0.05, df=None, kind: str = "model",
                        given=None) -> CoefTable:
        r"""The *expected* effect :math:`E(dy/dx) = \beta_x + \beta_{x:z}\, z` at each :math:`z` in ``at``,
        with delta-method se :math:`\sqrt{V_{xx} + 2 z V_{x,xz} + z^2 V_{xz,xz}}` from ``vcov(kind)`` and the
        df of :meth:`coef_table` per :math:`z`. ``at`` defaults to 25 evenly spaced values from the smallest to
        the largest observed value of ``by`` (:func:`hlmlib.inference.moderator_grid`, as
        :meth:`hlmlib.OLSResult.marginal_effect`).

        A cluster's own slope adds its random effect :math:`u_j^1` (see ``ranef``), so its uncertainty
        also includes the slope variance :math:`\tau_{11}`: this is the average effect, not a
        cluster's. One row per :math:`z`, as :meth:`hlmlib.OLSResult.marginal_effect`; as there, when ``x`` enters
        through other fixed-effects interactions too (``x:catholic``, ``x:c[T.b]``), ``given`` holds the values of
        their other variables (``{"catholic": 0}``), and without them, or with ``x`` transformed elsewhere
        (``I(x ** 2)``), the effect is refused naming those terms.
        """
        if at is None:
            check_term_names(x=x, by=by)
            at = moderator_grid(by, self.params.index, self._X, self._data)
        cov, caption = self._covariance(df, kind)
        return marginal_effect_table(x, by, at, self.params.to_numpy(), cov, list(self.params.index), alpha,
                                     caption + f", expected marginal effect of {x} by {by}" + given_text(given),
                                     given=given, data=self._data, spec=self._spec)

    def wald_test(self, L, df=None, kind: str = "model") -> WaldTest:
        r"""Joint Wald test of :math:`L\beta = 0`: ``L`` a matrix with one row per restriction (columns in
        ``params`` order), ``{term: weight}`` dicts, or a list of term names meaning "all zero".

        :math:`W = (L\hat\beta)'(LVL')^{-1}(L\hat\beta)` with :math:`V` = ``vcov(kind)``, referred to the test
        that goes with ``kind`` and ``df`` (as in :meth:`coef_table`; formulas in :mod:`hlmlib.lmm_inference`
        and :mod:`hlmlib.wald`):

        - ``kind="model"``, ``df=None``: :math:`W \sim \chi^2(q)` (Stata's ``test`` after ``mixed``);
          a number: :math:`W/q \sim F(q, \mathrm{df})`;
        - ``df="satterthwaite"``: lmerTest's F, ``contest(m, L, joint = TRUE)``: :math:`W/q` on
          :math:`(q, \nu)`, :math:`\nu` from the Satterthwaite df of the eigen-contrasts of :math:`L\Phi L'`;
        - ``df="kenward-roger"`` (or ``kind="kenward-roger"``): pbkrtest's ``KRmodcomp``, :math:`\lambda W_A/q`
          on :math:`(q, m)` with the adjusted covariance, Kenward & Roger's scale :math:`\lambda` and df
          :math:`m` (REML fits);
        - ``kind="CR0"``-``"CR3"``, ``df=None`` or ``"satterthwaite"``: clubSandwich's HTZ test
          (``Wald_test(m, L, vcov = "CR2", test = "HTZ")``); a number: :math:`W/q` on :math:`(q, \mathrm{df})`
          (``G - 1``: clubSandwich's "Naive-F").

        Returns a :class:`hlmlib.wald.WaldTest` (``F``, ``df_num``, ``df_denom``, ``p``, ``statistic`` = W).
        """
        R, labels = restriction_matrix(L, list(self.params.index))
        return self._inference.wald_test(R, labels, kind, df)

    def confint(self, level: float = 0.95, method: str = "profile", parm=None, df=None,
                criterion: str = "ML") -> pd.DataFrame:
        r"""Confidence intervals at ``level``: profile likelihood (default) or Wald.

        ``method="profile"``: lme4's ``confint(m, method = "profile")``. Rows ``.sig01``, ... (standard
        deviations and correlations of the random effects, in :math:`\theta`'s order), ``.sigma``, then the
        fixed effects; ``parm`` picks ``"theta_"`` (variance parameters), ``"beta_"`` (fixed effects) or a
        list of row names. Each end is where the signed root of the profiled deviance difference equals
        :math:`\mp z_{1-(1-\text{level})/2}`, or the parameter's bound (0 for a standard deviation,
        :math:`\pm 1` for a correlation) if the profile does not get there. As lme4 the deviance is the
        ML one, also for a REML fit (``criterion="REML"`` profiles a REML fit's variance parameters on its
        own criterion instead). Each end is a root of the profile computed from several starts at every point
        and re-checked from more (not a proof that the profile is global); when the fit profiled is singular
        (a standard deviation at 0 or a correlation at :math:`\pm 1`), where a missed minimum would make the
        interval too short, a ``UserWarning`` says so. See :mod:`hlmlib.lmm_profile`.

        ``method="wald"``: the fixed effects' :math:`\hat\beta \pm q \cdot \mathrm{se}`, model-based se and
        the reference of :meth:`coef_table` with ``df`` (None: normal quantiles, lme4's
        ``confint(m, method = "Wald")``; a number: :math:`t(\mathrm{df})`).

        Returns a DataFrame with ``parameter``, ``estimate``, ``ci_low``, ``ci_high``.
        """
        from .lmm_profile import check_level, profile_confint

        level = check_level(level)
        if not (parm is None or isinstance(parm, str) or (isinstance(parm, (list, tuple, pd.Index))
                                                           and all(isinstance(name, str) for name in parm))):
            raise InputError(f"parm must be None, 'theta_', 'beta_', a row name or a list of row names (e.g. "
                             f"['.sig01', 'x']), got {parm!r}")
        chosen = method.lower() if isinstance(method, str) else method
        if chosen == "profile":
            if df is not None:
                raise InputError("df= goes with method='wald'; profile intervals use the likelihood itself")
            return profile_confint(self, level, parm, criterion)
        if chosen == "wald":
            if not (parm is None or (isinstance(parm, str) and parm == "beta_")):
                raise InputError("method='wald' gives intervals for the fixed effects only (parm=None or 'beta_'); "
                                 "for the variance parameters use method='profile'")
            table = self.coef_table(alpha=1 - level, df=df)
            out = pd.DataFrame({"parameter": list(table.index), "estimate": table["estimate"],
                                "ci_low": table["ci_low"], "ci_high": table["ci_high"]}, index=table.index)
            out.attrs.update({"level": level, "method": "wald", "caption": table.attrs.get("caption", "")})
            return out
        raise InputError(f"method must be 'profile' or 'wald', got {method!r}")

    # --- variance components ---------------------------------------------------------------------
    @property
    def q(self) -> int:
        return len(self.re_names)

    @property
    def variance_components(self) -> pd.Series:
        r"""The variance of each random effect, then their covariances (a before b), then the residual
        variance.

        As lme4's ``VarCorr``, in the order the project's fixtures use: ``var(a)`` for each random effect
        ``a``, then ``cov(a,b)``, then the residual variance.
        """
        T, names = self.tau.to_numpy(), self.re_names
        entries = {f"var({a})": T[i, i] for i, a in enumerate(names)}
        entries.update({f"cov({names[i]},{names[k]})": T[k, i]
                        for i in range(self.q) for k in range(i + 1, self.q)})
        entries["residual variance"] = self.sigma2
        return pd.Series(entries, name="variance component")

    def icc(self) -> float:
        r"""Intra-class correlation of a random-intercept model, :math:`\tau_{00} / (\tau_{00} + \sigma^2)`.

        The correlation of two observations of the same group (and the share of the variance that lies
        between groups). With random slopes it depends on the covariates, so it is refused.
        """
        if self.q != 1:
            raise InputError("the intra-class correlation is defined here for random-intercept models only; "
                             "with random slopes it varies with the covariates")
        tau00 = self.tau.iloc[0, 0]
        return float(tau00 / (tau00 + self.sigma2))

    # --- random effects -------------------------------------------------------------------------
    @cached_property
    def _u(self) -> np.ndarray:
        """Spherical conditional modes u_j = L_j^-T (R_jy - R_jX beta), J x q."""
        fac, q = self._factor, self.q
        r = fac.R[:, :, -1] - fac.R[:, :, q:-1] @ self.params.to_numpy()
        return np.linalg.solve(np.swapaxes(fac.L, 1, 2), r[:, :, None])[:, :, 0]

    @cached_property
    def _Linv_LamT(self) -> np.ndarray:
        """L_j^-1 Lambda' (J x q x q): its cross-product is Lambda M_j^-1 Lambda'."""
        fac = self._factor
        return np.linalg.solve(fac.L, np.broadcast_to(fac.Lam.T, fac.L.shape))

    @property
    def ranef(self) -> pd.DataFrame:
        r"""BLUPs (conditional modes) :math:`b_j = E(b_j \mid y)` at the estimates, one row per group
        (lme4's ``ranef``)."""
        return pd.DataFrame(self._u @ self._factor.Lam.T, index=self.group_labels, columns=self.re_names)

    @property
    def ranef_cov(self) -> np.ndarray:
        r"""Conditional covariances
        :math:`\operatorname{Var}(b_j \mid y) = \sigma^2 \Lambda (\Lambda'Z_j'Z_j \Lambda + I)^{-1} \Lambda'`,
        J x q x q.

        As lme4's ``ranef(condVar = TRUE)``: conditional on :math:`\beta = \hat\beta` (no allowance for its
        estimation error).
        """
        K = self._Linv_LamT
        return self.sigma2 * np.swapaxes(K, 1, 2) @ K

    @property
    def ranef_var(self) -> pd.DataFrame:
        r"""The conditional variances (diagonals of ``ranef_cov``), shaped like ``ranef``."""
        return pd.DataFrame(np.diagonal(self.ranef_cov, axis1=1, axis2=2), index=self.group_labels,
                            columns=self.re_names)

    def ranef_se(self, kind: str = "conditional") -> pd.DataFrame:
        r"""Standard deviations of the empirical-Bayes random effects, shaped like ``ranef``.

        - ``"conditional"`` (default): :math:`\sqrt{\operatorname{diag} \operatorname{Var}(b_j \mid y)}`, the
          square roots of ``ranef_var``: lme4's ``ranef(m, condVar = TRUE)`` ("postVar"), the uncertainty about
          a group's own effect, for intervals around it (caterpillar plots) and comparisons of groups
          (Goldstein's "comparative" variance).
        - ``"marginal"``: :math:`\sqrt{\operatorname{diag}(\tau - \operatorname{Var}(b_j \mid y))}`, the standard
          deviation of the estimate :math:`\hat b_j` itself over repeated samples,
          :math:`\operatorname{Var}(\hat b_j) = \tau - \operatorname{Var}(b_j \mid y) = \tau Z_j'V_j^{-1}Z_j \tau`:
          the scale on which to standardise EB residuals for normal Q-Q plots and outlier checks (Goldstein's
          "diagnostic" variance; R&B 2002, ch. 9).

        Both treat :math:`\hat\beta`, :math:`\hat\tau` and :math:`\hat\sigma^2` as known, as lme4 does.

        References
        ----------
        Goldstein (2011), *Multilevel Statistical Models*, 4th ed. (comparative and diagnostic
        variances); Bates et al. (2015), lme4's ``ranef.merMod``.
        """
        chosen = kind.lower() if isinstance(kind, str) else kind
        if chosen == "conditional":
            var = self.ranef_var.to_numpy()
        elif chosen == "marginal":
            var = np.clip(np.diag(self.tau.to_numpy()) - self.ranef_var.to_numpy(), 0.0, None)
        else:
            raise InputError(f"kind must be 'conditional' (lme4's condVar) or 'marginal' (the variance of the "
                             f"estimate, for standardising), got {kind!r}")
        return pd.DataFrame(np.sqrt(var), index=self.group_labels, columns=self.re_names)

    def mahalanobis(self) -> pd.DataFrame:
        r"""Mahalanobis distance of each group's empirical-Bayes random effects from zero, with a
        :math:`\chi^2_q` reference (R&B 2002, ch. 9: a Q-Q plot of the distances against :math:`\chi^2_q`
        quantiles checks the multivariate normality of the random effects and points to outlying groups).

        .. math::

           D_j = \hat b_j' \operatorname{Var}(\hat b_j)^{-1} \hat b_j
               = \hat b_j^{\text{OLS}\prime} (\tau + V_j)^{-1} \hat b_j^{\text{OLS}},

        with the marginal variance of the EB estimate,
        :math:`\operatorname{Var}(\hat b_j) = \tau - \operatorname{Var}(b_j \mid y)` (``ranef_se(kind="marginal")``),
        the standard choice: under the model :math:`\hat b_j \sim N(0,
        \operatorname{Var}(\hat b_j))`, so :math:`D_j \sim \chi^2_q` (with the parameters known). The equality
        holds because :math:`\hat b_j = \tau(\tau + V_j)^{-1} \hat b_j^{\text{OLS}}` with
        :math:`\hat b_j^{\text{OLS}} = (Z_j'Z_j)^{-1}Z_j'(y_j - X_j\hat\beta)` and :math:`V_j = \hat\sigma^2
        (Z_j'Z_j)^{-1}`: the right-hand side is what is computed, so a singular :math:`\hat\tau` (a boundary fit)
        is no obstacle. Groups with a singular :math:`Z_j'Z_j` (e.g. one row and a random slope) have a singular
        :math:`\operatorname{Var}(\hat b_j)` and get NaN, with a warning. The conditional variance (lme4's
        ``condVar``) would be the wrong scale: it measures the uncertainty about :math:`b_j`, not the spread of
        :math:`\hat b_j`.

        Returns a DataFrame indexed by group: ``distance``, ``df`` (:math:`q`), ``p`` (the :math:`\chi^2_q`
        upper tail) and ``n`` (the group's size).

        References
        ----------
        Raudenbush & Bryk (2002), *Hierarchical Linear Models*, 2nd ed., ch. 9; Goldstein (2011), *Multilevel
        Statistical Models*, 4th ed.
        """
        from .lmm_diagnostics import mahalanobis
        return mahalanobis(self)

    def level1_variance_test(self, by=None, min_df: int = 10):
        r"""Raudenbush & Bryk's test that the level-1 variance :math:`\sigma^2` is the same in every group (or
        in every category of a level-2 variable).

        Each group :math:`j` with at least ``min_df`` residual degrees of freedom is fitted by OLS on all its
        level-1 predictors (the columns of :math:`[Z_j\ X_j]`, so level-2 variables only shift its intercept):
        residual variance :math:`s_j^2` on :math:`f_j = n_j - \operatorname{rank}[Z_j\ X_j]` df. With
        :math:`\bar L = \sum_j f_j \ln s_j^2 / \sum_j f_j`,

        .. math::

           d_j = \frac{\ln s_j^2 - \bar L}{\sqrt{2 / f_j}}, \qquad H = \sum_j d_j^2 \;\sim\; \chi^2(J' - 1)

        under homogeneity, :math:`J'` the groups used (:math:`\ln s_j^2` is approximately normal with variance
        :math:`2/f_j`). R&B 2002, ch. 9, and Snijders & Bosker 2012, sec. 10.4.1, who advise ``min_df`` = 10
        (the default) for the :math:`\chi^2` reference to hold.

        ``by``: a level-2 variable (a column of the fit's data constant within groups, or a Series of categories
        indexed by the group labels, e.g. the sector): the statistic is then the between-category part of
        :math:`H`, :math:`\sum_c \tfrac{F_c}{2} (\bar L_c - \bar L)^2 \sim \chi^2(C - 1)` with
        :math:`F_c = \sum_{j \in c} f_j` and :math:`\bar L_c` the :math:`f`-weighted mean of :math:`\ln s_j^2` in
        category :math:`c` (each :math:`\bar L_c` has variance :math:`2/F_c`; :math:`H` is this plus the
        within-category parts): is :math:`\sigma^2` the same in Catholic and public schools? It is the
        test of a level-1 variance that depends on a level-2 category, which R&B (ch. 9) model as
        :math:`\ln \sigma^2_j = \alpha_0 + \alpha_1 W_j` (HLM's heterogeneous level-1 variance; in R, nlme's
        ``lme(..., weights = varIdent(form = ~ 1 | sector))``, which hlmlib does not fit).

        Returns a :class:`hlmlib.lmm_diagnostics.Level1VarianceTest` (``statistic``, ``df``, ``pvalue``, the
        per-group ``groups`` table with :math:`d_j` for plots, and ``categories`` with ``by``).

        References
        ----------
        Raudenbush & Bryk (2002), *Hierarchical Linear Models*, 2nd ed., ch. 9; Snijders & Bosker (2012),
        *Multilevel Analysis*, 2nd ed., sec. 10.4.1.
        """
        from .lmm_diagnostics import level1_variance_test
        return level1_variance_test(self, by, min_df)

    def shrinkage(self) -> np.ndarray:
        r"""Shrinkage matrices :math:`S_j` (J x q x q): :math:`b_j = S_j b_j^\text{OLS}`,
        :math:`b_j^\text{OLS} = (Z_j'Z_j)^{-1} Z_j'(y_j - X_j \beta)`.

        .. math::

           S_j = \Lambda (\Lambda'Z_j'Z_j \Lambda + I)^{-1} \Lambda' Z_j'Z_j
               = \tau \left(\tau + \sigma^2 (Z_j'Z_j)^{-1}\right)^{-1}

        when :math:`Z_j'Z_j` is invertible; for a random intercept,
        :math:`\tau_{00} / (\tau_{00} + \sigma^2 / n_j)` (Raudenbush & Bryk 2002, eq. 3.56: the reliability
        of the group mean).
        """
        K = self._Linv_LamT
        return np.swapaxes(K, 1, 2) @ K @ self._cp.ZtZ

    @cached_property
    def _unit_ols(self):
        return self._unit_regressions()

    def _unit_regressions(self, project_fixed: bool = True):
        """Each group's own regression (:func:`hlmlib.lmm_diagnostics.unit_ols`)."""
        from .lmm_diagnostics import unit_ols
        return unit_ols(self._y, self._X, self._Z, self._codes, self.ngroups, self.params.to_numpy(), self.sigma2,
                        list(self.params.index), project_fixed)

    def reliability(self, per_group: bool = False):
        r"""Raudenbush & Bryk's reliability of each group's OLS estimate of each random coefficient.

        .. math::

           \lambda_{qj} = \frac{\hat\tau_{qq}}{\hat\tau_{qq} + v_{qqj}}, \qquad
           V_j = \hat\sigma^2 (Z_j'M_{F_j}Z_j)^{-1},

        :math:`v_{qqj}` the :math:`q`-th diagonal element of :math:`V_j`, the sampling covariance of group
        :math:`j`'s OLS estimate of its random coefficients (:math:`\hat\sigma^2 (Z_j'Z_j)^{-1}` when every
        level-1 predictor has a random coefficient; :mod:`hlmlib.lmm_diagnostics` for the general case): the
        share of the variance of that estimate that is parameter variance rather than sampling noise (R&B
        2002, ch. 3, the estimation of random level-1 coefficients, and the reliabilities of ch. 4's tables).
        For a random intercept with no other level-1 predictor it is
        :math:`\hat\tau_{00} / (\hat\tau_{00} + \hat\sigma^2/n_j)` (``shrinkage_factor()``). :math:`\hat\tau`
        and :math:`\hat\sigma^2` are the fit's (REML or ML), as in HLM's output; with level-2 predictors :math:`\hat\tau` is the residual (conditional) variance, so the
        reliability is that of :math:`\hat\beta_j` as an estimate of :math:`\beta_j` given :math:`W_j`.

        Returns a Series (one value per random effect: the mean of :math:`\lambda_{qj}` over the groups, HLM's
        "Reliability estimate") or, with ``per_group=True``, a DataFrame (groups x random effects). A group
        without its own OLS estimate (too few observations, or a singular level-1 design: e.g. a random
        slope's variable constant in the group) has NaN there and is left out of the mean, as HLM uses only
        the units with sufficient data; a warning says how many.

        References
        ----------
        Raudenbush & Bryk (2002), *Hierarchical Linear Models*, 2nd ed., chs. 3 and 4.
        """
        from .lmm_diagnostics import reliability
        return reliability(self, check_bool(per_group, "per_group"))

    def homogeneity_test(self) -> pd.DataFrame:
        r"""Raudenbush & Bryk's chi-square test of :math:`H_0: \tau_{qq} = 0` for each random coefficient.

        .. math::

           \chi^2_q = \sum_{j=1}^{J'} \frac{(\hat\beta_{qj} - W_{qj}\hat\gamma_q)^2}{v_{qqj}}
           \;\sim\; \chi^2(J' - S_q - 1) \text{ under } H_0,

        :math:`\hat\beta_{qj}` group :math:`j`'s own OLS estimate of the coefficient, :math:`W_{qj}\hat\gamma_q` its
        prediction from the fitted level-2 model (the fit's :math:`\hat\beta`), :math:`v_{qqj}` the sampling variance
        of the OLS estimate, :math:`\hat\sigma^2 [(Z_j'M_{F_j}Z_j)^{-1}]_{qq}` (as in :meth:`reliability`;
        :mod:`hlmlib.lmm_diagnostics`), :math:`J'` the groups with an OLS estimate and :math:`S_q + 1` the number
        of fixed effects in the coefficient's level-2 model (the columns of :math:`X` that load on column
        :math:`q` of :math:`Z`: for ``mathach ~ cses * catholic + cses * meanses + (cses | school)``, three for
        the intercept and three for the ``cses`` slope). R&B 2002, eq. 3.103, and the chi-square column of
        HLM's "Final estimation of variance components" (R&B's Tables 4.2-4.5); :math:`\hat\sigma^2` and
        :math:`\hat\gamma` are the fit's, as HLM's (checked against its output for the HSB null model).

        Unlike the likelihood-ratio test of the variance (:func:`hlmlib.lrtest`, a boundary mixture), it uses
        only groups with their own OLS fit, weights each by the precision of that fit, and does not use
        :math:`\hat\tau`; the two can disagree when many groups are small or the variance is small.

        Returns a DataFrame indexed by the random effects with ``chi2``, ``df``, ``p`` and ``groups``
        (:math:`J'`); groups without an OLS estimate are left out with a warning saying how many.

        References
        ----------
        Raudenbush & Bryk (2002), *Hierarchical Linear Models*, 2nd ed., ch. 3 (eq. 3.103) and ch. 4.
        """
        from .lmm_diagnostics import homogeneity_test
        return homogeneity_test(self)

    def shrinkage_factor(self) -> pd.Series:
        r""":math:`\tau_{00} / (\tau_{00} + \sigma^2 / n_j)` per group, for a random-intercept model."""
        if self.q != 1:
            raise InputError("shrinkage_factor() is for random-intercept models; use shrinkage() for the "
                             "matrix version")
        return pd.Series(self.shrinkage()[:, 0, 0], index=self.group_labels, name="shrinkage")

    # --- fitted values and residuals ------------------------------------------------------------
    @cached_property
    def fitted(self) -> pd.DataFrame:
        r"""Fitted values, one row per observation (lme4's ``fitted``), indexed by the labels of the fit's rows
        in the data (as ``ols``; 0..n-1 for arrays).

        ``marginal`` :math:`X \hat\beta` and ``conditional`` :math:`X \hat\beta + Z b_j`.
        """
        marginal = self._X @ self.params.to_numpy()
        b = self.ranef.to_numpy()
        conditional = marginal + np.einsum("na,na->n", self._Z, b[self._codes])
        return pd.DataFrame({"marginal": marginal, "conditional": conditional}, index=self._row_labels)

    @property
    def resid(self) -> pd.DataFrame:
        r"""Residuals, one row per observation (lme4's ``residuals``), indexed as :attr:`fitted`.

        ``marginal`` :math:`y - X \hat\beta` and ``conditional`` :math:`y - X \hat\beta - Z b_j`.
        """
        return pd.DataFrame({k: self._y - v.to_numpy() for k, v in self.fitted.items()}, index=self._row_labels)

    def residuals(self, kind: str = "level1", scaled: bool = False) -> pd.Series:
        r"""Residuals of one kind, one value per observation (in the fit's row order, indexed by the labels of
        the fit's rows in the data, as :attr:`fitted`).

        - ``"level1"`` (default): :math:`y_{ij} - x_{ij}'\hat\beta - z_{ij}'\hat b_j`, the within-group
          residuals, estimates of :math:`e_{ij}` (lme4's ``residuals(m)``; ``resid["conditional"]``);
        - ``"marginal"``: :math:`y_{ij} - x_{ij}'\hat\beta`, the residuals from the fixed part, estimates of the
          compound error :math:`z_{ij}'b_j + e_{ij}` (``y - predict(m, re.form = NA)`` in lme4;
          ``resid["marginal"]``).

        ``scaled=True`` divides by :math:`\hat\sigma` (lme4's ``residuals(m, scaled = TRUE)``). The level-2
        (empirical-Bayes) residuals are ``ranef``, with ``ranef_se`` and :meth:`mahalanobis`.
        """
        chosen = kind.lower() if isinstance(kind, str) else kind
        columns = {"level1": "conditional", "marginal": "marginal"}
        if chosen not in columns:
            raise InputError(f"kind must be 'level1' (y - X beta - Z b) or 'marginal' (y - X beta), got {kind!r}")
        values = self.resid[columns[chosen]]
        if check_bool(scaled, "scaled"):
            values = values / np.sqrt(self.sigma2)
        return values.rename(f"{chosen} residual" + (" (scaled)" if scaled else ""))

    def predict(self, newdata=None, random_effects: bool = True, *, groups=None, Z=None) -> pd.Series:
        r"""Predictions for new data: :math:`x_0'\hat\beta + z_0'b_j` for a group :math:`j` of the fit, and
        :math:`x_0'\hat\beta` (the population level) for a group it did not see.

        ``random_effects=True`` is lme4's ``predict(m, newdata, re.form = NULL, allow.new.levels = TRUE)``: rows
        of a group of the fit add its BLUP :math:`b_j` (``ranef``); rows of a new group, or with a missing group
        label, get the population-level :math:`x_0'\hat\beta`, as lme4 does (no error: a new school's expected
        score is the population's). ``random_effects=False`` is ``re.form = NA``: :math:`x_0'\hat\beta` for
        every row. ``newdata=None`` gives the fitted values of the fit's rows (``fitted["conditional"]`` or
        ``["marginal"]``).

        ``newdata``: for a formula fit, a DataFrame with the variables of the fixed and random parts and the
        grouping column; :math:`x_0` and :math:`z_0` are rebuilt with the fit's formulas (formulaic's model
        specs: the fit's coding of categorical variables and state of stateful transforms; a level the fit
        did not see is an :class:`~hlmlib.design.InputError` naming the column and the level; a row with a
        missing value predicts NaN, with a warning). ``groups=`` gives the group labels of the new rows when
        the fit's groups were labels rather than a column. For an array fit: ``newdata`` the matrix
        :math:`X_0` (the fit's p columns), ``groups`` the labels of its rows and ``Z`` their random-effects
        design (omit it for a random-intercept fit); a DataFrame (``newdata`` or ``Z``) is matched to the
        fit's columns by name, a matrix by position. ``Z=`` with a formula fit is refused (its formula makes
        :math:`z_0`). Group labels are matched to the fit's by value; a label of a kind none of the fit's has
        (the text '9' among numbers, 0 or 1 for True/False groups) would match none, and is refused rather
        than read as a new group. The rows predicted at the population level because of a new or missing
        group are counted in a warning. Returns a Series named ``fit``. (lme4 gives no intervals for these predictions, and neither
        does hlmlib: their variance would need the uncertainty of :math:`\hat\beta`, :math:`b_j` and
        :math:`\tau` together.)

        References
        ----------
        Bates, Maechler, Bolker & Walker (2015), lme4's ``predict.merMod``; Raudenbush & Bryk (2002), ch. 3.
        """
        random_effects = check_bool(random_effects, "random_effects")
        if newdata is None:
            if groups is not None or Z is not None:
                raise InputError("groups= and Z= describe the rows of newdata: give newdata too")
            fitted = self.fitted["conditional" if random_effects else "marginal"]
            return fitted.rename("fit")
        names = list(self.params.index)
        if self._spec is not None:
            X0, complete = new_model_matrix(self._spec, newdata, names, "the fixed effects' formula", self._data)
            index = newdata.index
        else:
            index = newdata.index if isinstance(newdata, pd.DataFrame) else None
            X0 = check_finite_array(columns_by_name(newdata, names, "newdata", "x"), "newdata (the new rows of X)",
                                    ndim=2)
            if X0.shape[1] != len(names):
                raise InputError(f"newdata has {X0.shape[1]} column(s); this array fit has {len(names)} "
                                 f"({', '.join(names)})")
            complete = np.ones(X0.shape[0], bool)
            index = pd.RangeIndex(X0.shape[0]) if index is None else index
        fit = X0 @ self.params.to_numpy()
        if random_effects:
            Z0, labels = self._new_random_effects(newdata, groups, Z, X0.shape[0])
            rows = self.group_labels.get_indexer(pd.Index(labels))
            known = (rows >= 0) & ~np.isnan(Z0).any(axis=1)
            complete &= ~np.isnan(Z0).any(axis=1) | (rows < 0)
            fit[~complete] = np.nan
            b = self.ranef.to_numpy()
            fit[known] += np.einsum("na,na->n", Z0[known], b[rows[known]])
            missing_label = np.asarray(pd.isna(labels)) & complete
            new_group = (rows < 0) & ~missing_label & complete
            reasons = []
            if new_group.any():
                shown = ", ".join(repr(_label(v)) for v in pd.unique(labels[new_group])[:5])
                reasons.append(f"{int(new_group.sum())} with a group the fit did not see ({shown})")
            if missing_label.any():
                reasons.append(f"{int(missing_label.sum())} with a missing group label")
            if reasons:
                warn_user(f"{int((new_group | missing_label).sum())} of {complete.size} rows of newdata are predicted "
                          f"at the population level, x0'beta ({' and '.join(reasons)}), as lme4's "
                          "allow.new.levels = TRUE")
        if not complete.all():
            warn_user(f"{int((~complete).sum())} of {complete.size} rows of newdata have missing values in the model's "
                      "variables: their predictions are NaN")
        return pd.Series(fit, index=index, name="fit")

    def _check_label_kinds(self, observed: np.ndarray) -> None:
        """Refuse group labels of a kind (number, text, boolean, ...) that none of the fit's labels has: the
        text '9' is not the group 9, nor the number 1 the group True, and they would silently be predicted as
        new groups, at the population level."""
        fit_kinds = {_label_kind(v) for v in self.group_labels}
        for value in pd.unique(observed):
            if _label_kind(value) not in fit_kinds:
                shown = ", ".join(repr(_label(v)) for v in self.group_labels[:3])
                raise InputError(f"group label {_label(value)!r} of newdata is {_label_kind(value)}, and the fit's "
                                 f"group labels ({shown}, ...) are {' or '.join(sorted(fit_kinds))}: it would match no "
                                 "group; convert the labels to the fit's type")

    def _new_random_effects(self, newdata, groups, Z, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Z of the new rows (NaN where incomplete) and their group labels, checked against the fit's."""
        if groups is None:
            if self._groups_column is None or not isinstance(newdata, pd.DataFrame):
                raise InputError("give groups=: the group label of each row of newdata (the fit's groups were "
                                 "labels, not a column), or random_effects=False for the population level")
            if self._groups_column not in newdata.columns:
                raise InputError(f"newdata lacks the grouping column {self._groups_column!r} (or give groups=, or "
                                 "random_effects=False for the population level)")
            labels = newdata[self._groups_column].to_numpy()
        else:
            labels = groups.to_numpy() if isinstance(groups, pd.Series) else np.asarray(groups)
            if labels.ndim != 1 or labels.shape[0] != n:
                raise InputError(f"groups must be one label per row of newdata ({n}), got shape {labels.shape}")
        self._check_label_kinds(labels[~np.asarray(pd.isna(labels))])
        if self._re_spec is not None:
            if Z is not None:
                raise InputError("Z= is for array fits: this fit's random-effects design is rebuilt from newdata by its "
                                 "formula; leave Z= out")
            Z0, _ = new_model_matrix(self._re_spec, newdata, self.re_names, "the random effects' formula",
                                     self._data)
        elif Z is not None:
            Z0 = check_finite_array(columns_by_name(Z.to_frame() if isinstance(Z, pd.Series) else Z, self.re_names,
                                                    "Z", "z"),
                                    "Z (the random-effects design of newdata)", ndim=(1, 2))
            Z0 = Z0[:, None] if Z0.ndim == 1 else Z0
            if Z0.shape != (n, self.q):
                raise InputError(f"Z must have one row per row of newdata and {self.q} column(s) "
                                 f"({', '.join(self.re_names)}), got shape {Z0.shape}")
        elif self.q == 1 and np.all(self._Z == 1):
            Z0 = np.ones((n, 1))
        else:
            raise InputError(f"give Z=: the random-effects design ({', '.join(self.re_names)}) of the rows of newdata")
        return Z0, labels

    # --- likelihood -----------------------------------------------------------------------------
    @property
    def deviance(self) -> float:
        r"""The deviance ``-2 llf``, lme4's REML criterion (REML fits) or deviance (ML fits)."""
        return -2 * self.llf

    @property
    def n_params(self) -> int:
        r"""The number of parameters k, counting the fixed effects, the covariance parameters of
        :math:`\tau` and :math:`\sigma^2`."""
        return len(self.params) + len(self.theta) + 1

    @property
    def aic(self) -> float:
        r"""Akaike's criterion ``-2 llf + 2 k`` for ML fits, NaN for REML fits.

        As statsmodels: REML likelihoods of models with different fixed effects are not comparable.
        """
        return np.nan if self.reml else -2 * self.llf + 2 * self.n_params

    @property
    def bic(self) -> float:
        r"""Schwarz's criterion ``-2 llf + log(N) k`` for ML fits, NaN for REML fits."""
        return np.nan if self.reml else -2 * self.llf + np.log(self.nobs) * self.n_params

    # --- printing -------------------------------------------------------------------------------
    def summary(self, alpha: float = 0.05, df=None, kind: str = "model") -> MixedSummary:
        r"""Fixed effects (estimate, se, df, z or t, p, CI) and variance components, with the criterion.

        By default tests use the normal reference (df = :math:`\infty`) and model-based standard errors, as
        statsmodels' MixedLM; lme4 reports no df. ``df=`` a number gives :math:`t(\mathrm{df})` instead (e.g.
        J - number of level-2 coefficients, a common HLM choice); ``df="satterthwaite"`` or
        ``"kenward-roger"`` and ``kind=`` as in :meth:`coef_table` (lmerTest's ``summary(m, ddf = ...)``).
        """
        alpha = check_alpha(alpha)
        crit = "REML criterion (-2 REML log-likelihood)" if self.reml else "-2 log-likelihood"
        coefficients = self.coef_table(alpha, df, kind)
        header = [f"Linear mixed model fit by {'REML' if self.reml else 'maximum likelihood'}"
                  + (f": {self.formula}" if self.formula else ""),
                  f"Observations: {self.nobs}   groups: {self.ngroups}   random effects per group: {self.q}",
                  f"{crit}: {self.deviance:.6f}"
                  + ("" if self.reml else f"   AIC: {self.aic:.4f}   BIC: {self.bic:.4f}"),
                  f"Converged: {self.converged}   boundary (singular tau): {self.boundary}",
                  f"Standard errors: {coefficients.attrs['convention']}; {coefficients.attrs['df_rule']}"]
        if self.boundary:
            header.append("WARNING: boundary fit -- a variance component is zero or tau is singular")
        vc = self.variance_components
        T = self.tau.to_numpy()
        sd_tau = np.sqrt(np.diag(T))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = T / np.outer(sd_tau, sd_tau)
        sd = np.r_[sd_tau, np.full(len(vc) - self.q - 1, np.nan), np.sqrt(self.sigma2)]
        rho = np.r_[np.full(self.q, np.nan), [corr[k, i] for i in range(self.q) for k in range(i + 1, self.q)], np.nan]
        table = pd.DataFrame({"estimate": vc, "sd": sd, "corr": rho})
        return MixedSummary(header=header, coefficients=coefficients, variance_components=table)

    def tidy(self, alpha: float = 0.05, df=None, kind: str = "model") -> pd.DataFrame:
        """The fixed effects in broom's layout (``term``, ``estimate``, ``std.error``, ``statistic``,
        ``p.value``, ``conf.low``, ``conf.high``; broom.mixed's ``tidy(m, effects = "fixed", conf.int =
        TRUE)``), from :meth:`coef_table` with ``alpha``, ``df`` and ``kind``."""
        return self.coef_table(alpha, df, kind).tidy()

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def __repr__(self) -> str:
        return (f"<MixedResult {'REML' if self.reml else 'ML'}: {len(self.params)} fixed effects, "
                f"{self.q} random effect(s) in {self.ngroups} groups, N={self.nobs}, "
                f"-2llf={self.deviance:.4f}{', BOUNDARY' if self.boundary else ''}>")


def mixed(y, X=None, groups=None, Z=None, reml: bool = True, *, data: pd.DataFrame | None = None,
          re: str | None = None, start=None) -> MixedResult:
    r"""Fit a two-level linear mixed model by REML (default) or ML.

    Array form: ``mixed(y, X, groups, Z=None, reml=True)``: y (N,), X (N x p), groups (N labels),
    Z (N x q, random-effects design; default a random intercept). Names come from DataFrame columns,
    else x0.., z0..; NaN, non-numeric columns and mismatched lengths raise ``InputError``.

    Formula form: ``mixed("mathach ~ cses*catholic", data=df, groups="school", re="~ cses")`` with
    ``re`` defaulting to ``"~ 1"``; rows incomplete in any variable used (formula, re, groups) are
    dropped listwise with a warning. This is lme4's
    ``lmer(mathach ~ cses*catholic + (1 + cses | school))`` and statsmodels'
    ``MixedLM.from_formula(..., groups="school", re_formula="~cses")``. lme4's notation for one grouping
    factor is accepted too, and gives the identical fit: ``mixed("mathach ~ cses*catholic + (1 + cses |
    school)", df)``, with ``(1 | g)``, ``(x | g)`` and ``(0 + x | g)`` (:func:`hlmlib.mixed.lme4_formula`; crossed or
    nested factors, ``||`` and grouping expressions are refused, naming software that fits them). The
    DataFrame may come second, positionally, as above.

    The model :math:`y_j = X_j \beta + Z_j b_j + e_j`, :math:`b_j \sim N(0, \tau)` unstructured,
    :math:`e_j \sim N(0, \sigma^2 I)` is fitted by maximising the REML (default, as lme4 and
    statsmodels) or ML log-likelihood (module docstring), with :math:`\beta` and :math:`\sigma^2`
    profiled out, over :math:`\theta` (:math:`\tau = \sigma^2 \Lambda \Lambda'`,
    :math:`\operatorname{diag}(\Lambda) \ge 0`). ML (``reml=False``) is needed to compare fixed effects
    with ``lrtest``. Groups with a single observation are allowed (they inform the fixed effects and
    :math:`\tau`); a model with :math:`N \le J q` (e.g. only singletons and a random intercept) is
    refused as not identifiable, as by lme4. A fit with a zero variance or a singular :math:`\tau` is
    reported (``.boundary``, ``BoundaryFitWarning``) with the maximising estimates; the test is made on
    :math:`Z` scaled to unit root mean square, so it does not depend on the units of :math:`Z`.
    ``converged`` is True only where the search ended with a negligible Hessian-scaled projected
    gradient (Newton decrement below 1e-6, no negative curvature) and, on the boundary, the KKT
    conditions hold; otherwise a ``RuntimeWarning`` says so.

    Checks (:class:`~hlmlib.design.InputError`): ``reml`` must be True or False (``"no"`` is not False); ``start``
    (theta, lme4's order) must be q(q+1)/2 finite numbers with a non-negative diagonal; y, X and Z are
    checked as in :func:`hlmlib.ols` (rows by position, Series aligned, copies kept); data whose sums of
    squares or variances would leave the double range (values beyond 1e+-140, or a column's units more
    than 1e150 from y's) are refused with a request to rescale (the estimates are equivariant).

    References
    ----------
    - Bates, Maechler, Bolker & Walker (2015), Fitting linear mixed-effects models using lme4,
      *J. Stat. Softw.* 67(1).
    - Raudenbush & Bryk (2002), *Hierarchical Linear Models*, 2nd ed.
    """
    reml = check_bool(reml, "reml")
    design, Z, znames, labels, re_spec, shown, groups_column = _arrays(y, X, groups, Z, data, re)
    q = Z.shape[1]
    if start is not None:
        start = check_finite_array(start, "start", ndim=1, numbers_only=True)
        if start.size != q * (q + 1) // 2:
            raise InputError(f"start has {start.size} values; theta for {q} random effect(s) has "
                             f"q (q + 1) / 2 = {q * (q + 1) // 2} (the lower triangle of Lambda, column by column)")
        if np.any(start < theta_lower_bounds(q)):
            raise InputError("start has a negative diagonal element of Lambda; they must be >= 0 (as lme4's bounds)")
    _check_scales(design, Z, znames)
    codes, uniques = group_codes(labels)
    n_groups = len(uniques)
    cp = cross_products(design.y, design.X, Z, codes, n_groups)
    _check_identifiable(design, Z, znames, codes, n_groups, cp, groups_column)
    fit = fit_theta(cp, reml=reml, start=start)
    fac = blocked_cholesky(fit.theta, cp)
    dof = cp.N - cp.p if reml else cp.N
    sigma2 = fac.pwrss / dof
    boundary = fit.boundary
    if boundary:
        warnings.warn("boundary (singular) fit: a variance component is zero or tau is singular, so the fit is "
                      "that of a model with fewer random effects (those in the range of tau); "
                      + ("the estimates are still the maximisers. " if fit.converged else
                         "the optimiser did not converge, so these estimates need not be the maximisers. ")
                      + "Consider dropping the degenerate random effect.", BoundaryFitWarning, stacklevel=2)
    if not fit.converged:
        warnings.warn(f"the optimiser may not have converged ({fit.message}; projected gradient "
                      f"{np.abs(fit.gradient).max():.3g}, Newton decrement {fit.newton_decrement:.3g})"
                      + _centring_hint(_far_from_centred(design.X, design.names) + _far_from_centred(Z, znames)),
                      RuntimeWarning, stacklevel=2)
    return MixedResult(
        params=pd.Series(fac.beta(), index=design.names, name="estimate"),
        tau=pd.DataFrame(sigma2 * fac.Lam @ fac.Lam.T, index=znames, columns=znames),
        sigma2=float(sigma2), theta=fit.theta, llf=-fit.deviance / 2, reml=reml, converged=fit.converged,
        boundary=boundary, gradient=fit.gradient, nobs=cp.N, ngroups=n_groups, group_labels=pd.Index(uniques),
        optimizer_message=fit.message, n_evaluations=fit.n_evaluations, n_dropped=design.n_dropped,
        formula=shown, re_names=znames,
        _cp=cp, _y=design.y, _X=design.X, _Z=Z, _codes=codes, _spec=design.spec, _re_spec=re_spec,
        _groups_column=groups_column, _data=design.data, _row_labels=design.row_labels)


# ----------------------------------------------------------------------------------------------
# Likelihood-ratio tests between nested fits
# ----------------------------------------------------------------------------------------------

@dataclass
class LRTest:
    """A likelihood-ratio test: statistic 2 (llf_big - llf_small), its df, p-value and the reference used.

    ``bootstrap``: with ``lrtest(..., bootstrap=B)``, the parametric bootstrap
    (:class:`hlmlib.lmm_bootstrap.BootstrapLRT`), whose p-value is ``pvalue_bootstrap``; ``pvalue`` stays the
    asymptotic one."""

    statistic: float
    df: int
    pvalue: float
    reference: str
    criterion: str
    bootstrap: "BootstrapLRT | None" = None

    @property
    def pvalue_bootstrap(self) -> float:
        """The parametric-bootstrap p-value (NaN without ``bootstrap=``)."""
        return np.nan if self.bootstrap is None else self.bootstrap.pvalue

    def __repr__(self) -> str:
        return (f"Likelihood-ratio test ({self.criterion}): LR = {self.statistic:.4f}, df = {self.df}, "
                f"p = {self.pvalue:.4g}\n  reference: {self.reference}"
                + ("" if self.bootstrap is None else f"\n  {self.bootstrap!r}"))


def _spans(big: np.ndarray, small: np.ndarray) -> bool:
    """Whether every column of ``small`` lies in the column space of ``big``: its least-squares residual on
    big's columns is below 1e-8 of its own length. Relative to each column's scale, so that a column in
    small units (``I(x * 1e-10)``) is not taken for zero; big's columns are scaled to unit length first, so
    that lstsq's rank cutoff does not drop one of them for its units."""
    if small.shape[1] == 0:
        return True
    lengths = np.linalg.norm(big, axis=0)
    unit = big / np.where(lengths > 0, lengths, 1.0)
    coef, *_ = np.linalg.lstsq(unit, small, rcond=None)
    return bool(np.all(np.linalg.norm(small - unit @ coef, axis=0) <= 1e-8 * np.linalg.norm(small, axis=0)))


def check_same_data(a: MixedResult, b: MixedResult, what: str) -> None:
    """Refuse two fits that are not of the same rows in the same order (response and groups, by position),
    saying so when they hold the same values in another order (rows are compared by position: the labels of
    a fit's rows may repeat, or be 0..n-1 for arrays, so they do not identify rows)."""
    if a.nobs == b.nobs and np.array_equal(a._y, b._y) and np.array_equal(a._codes, b._codes):
        return
    reordered = a.nobs == b.nobs and np.array_equal(np.sort(a._y), np.sort(b._y))
    raise InputError(f"{what} needs two fits of the same data, its rows in the same order; "
                     + ("these have the same responses in another row order: fit both models on the data sorted "
                        "the same way" if reordered else "the observations, response or groups differ"))


def _reml_parametrisation_shift(small: MixedResult, big: MixedResult) -> float:
    """For REML fits with the same fixed-effects column space, X_big = X_small A: lme4's REML log-likelihood
    carries -1/2 log|X'V^{-1}X|, so it moves by -log|det A| under the reparametrisation. The shift that puts
    big's on small's parametrisation, 1/2 (log|X_big'X_big| - log|X_small'X_small|) (Harville's REML
    likelihood, with + 1/2 log|X'X|, is invariant)."""
    logdet = [np.linalg.slogdet(f._X.T @ f._X)[1] for f in (big, small)]
    return 0.5 * (logdet[0] - logdet[1])


def lrtest(small: MixedResult, big: MixedResult, bootstrap: int | None = None, seed=None) -> LRTest:
    r"""Likelihood-ratio test of a mixed model ``small`` nested in ``big`` (same data and groups).

    :math:`LR = 2 (\ell_\text{big} - \ell_\text{small})` (``llf`` of each fit), df = difference in the
    number of parameters (fixed effects + :math:`\theta` + 1).

    - Fixed effects differ: both fits must be ML (``reml=False``); REML likelihoods of models with
      different fixed effects are likelihoods of different data (different residual contrasts) and
      cannot be compared (Pinheiro & Bates 2000, sec. 2.4.2; lme4's ``anova`` refits with ML).
      Reference: :math:`\chi^2(\mathrm{df})`.

    "Same fixed effects" means the same column space of X (terms in another order, x centred or rescaled
    are the same model), and nesting means small's columns are in the span of big's, each column judged
    relative to its own scale. For REML fits with the same fixed effects in another parametrisation
    :math:`X_\text{big} = X_\text{small} A`, big's REML log-likelihood is moved by
    :math:`\log|\det A|` (lme4's REML criterion depends on the parametrisation of X through
    :math:`\log|X'V^{-1}X|`; Harville's REML likelihood, with :math:`+\tfrac12 \log|X'X|`, does not).

    - Same fixed effects, ``big`` adds one random effect (its variance and its covariances,
      :math:`q \to q + 1`): the variance is on the boundary of its space under :math:`H_0`, so the
      reference is the 50:50 mixture :math:`\tfrac12 \chi^2(q) + \tfrac12 \chi^2(q + 1)` (Self & Liang
      1987; Stram & Lee 1994); REML or ML fits (both alike).
    - Same fixed effects, several random effects added: :math:`\chi^2(\mathrm{df})`, which is
      conservative there (the exact reference is a chi-bar-square mixture); the result says so.

    The reference used is stated in ``.reference``.

    ``bootstrap=B`` adds the parametric-bootstrap p-value (pbkrtest's ``PBmodcomp``; B refits of both models
    to data simulated from ``small``, with ``np.random.default_rng(seed)``) as ``.bootstrap`` and
    ``.pvalue_bootstrap``, with its Monte Carlo error and refit diagnostics; for variance components with
    few groups and fixed effects (ML fits) with few groups, where the references above are approximate.
    See :mod:`hlmlib.lmm_bootstrap` for the algorithm and its conventions.
    """
    for name, fit in (("small", small), ("big", big)):
        if not isinstance(fit, MixedResult):
            raise InputError(f"lrtest compares two mixed() fits; {name} is a {type(fit).__name__}")
    check_same_data(small, big, "a likelihood-ratio test")
    if small.reml != big.reml:
        raise InputError("one fit is REML and the other ML; refit both the same way (ML to compare fixed effects)")
    df = big.n_params - small.n_params
    if df <= 0:
        raise InputError(f"big must have more parameters than small ({big.n_params} vs {small.n_params}): "
                         "pass the smaller (nested) model first")
    # the same fixed effects: the same column space (terms reordered, x centred or rescaled), not the same matrix
    same_fixed = _spans(big._X, small._X) and _spans(small._X, big._X)
    if not (_spans(big._X, small._X) and _spans(big._Z, small._Z)):
        raise InputError("small is not nested in big: its fixed- or random-effects columns are not in the "
                         "span of big's")
    if not same_fixed and (small.reml or big.reml):
        raise InputError("the fits differ in their fixed effects, so they must be fitted by ML: refit both "
                         "with reml=False (REML likelihoods of different fixed-effects models are not "
                         "comparable)")
    shift = _reml_parametrisation_shift(small, big) if same_fixed and big.reml else 0.0
    statistic = max(2 * (big.llf + shift - small.llf), 0.0)
    criterion = "REML" if big.reml else "ML"
    q_small, q_big = small.q, big.q
    if same_fixed and q_big == q_small + 1:
        pvalue = 0.5 * stats.chi2.sf(statistic, q_small) + 0.5 * stats.chi2.sf(statistic, q_small + 1)
        reference = (f"50:50 mixture of chi2({q_small}) and chi2({q_small + 1}): one added random effect whose "
                     "variance is on the boundary under H0 (Self & Liang 1987; Stram & Lee 1994)")
    elif same_fixed:
        pvalue = stats.chi2.sf(statistic, df)
        reference = (f"chi2({df}); conservative for variance components on the boundary (the exact reference "
                     "is a chi-bar-square mixture)")
    else:
        pvalue = stats.chi2.sf(statistic, df)
        reference = f"chi2({df}) (fixed effects, ML fits)"
        if q_small != q_big:
            reference += "; the random effects differ too: boundary mixture ignored, so conservative"
    boot = None
    if bootstrap is not None:
        from .lmm_bootstrap import bootstrap_lrt
        boot = bootstrap_lrt(small, big, statistic, bootstrap, seed)
    return LRTest(statistic=float(statistic), df=int(df), pvalue=float(pvalue), reference=reference,
                  criterion=criterion, bootstrap=boot)
