r"""Coefficient tables, linear contrasts and marginal effects from an estimate and its covariance.

Everything here is a linear contrast :math:`c'b` of the coefficients, so one function does the
work: estimate :math:`c'b`, standard error :math:`\sqrt{c'Vc}` (the delta method, exact for linear
functions), :math:`t = c'b/\mathrm{se}`, two-sided :math:`p` from :math:`t(\mathrm{df})`, and the
interval :math:`c'b \pm t_{1-\alpha/2}(\mathrm{df})\, \mathrm{se}`. The df follow the covariance
(:class:`hlmlib.sandwich.Covariance`): :math:`n-k` for classical and HC, :math:`G-1` for
CR0/CR1/CR3, :math:`\min(G_A, G_B) - 1` two-way, Bell-McCaffrey/Satterthwaite per contrast for CR2
(clubSandwich's ``coef_test`` and ``linear_contrast``; Stata's ``lincom``/``margins`` with the same
vce; R's ``lmtest::coeftest``).

A marginal effect of :math:`x` in a model with the interaction :math:`x{:}z`,
:math:`dy/dx = b_x + b_{xz} z`, is the contrast :math:`c = e_x + z\, e_{xz}`, so

.. math::

   \operatorname{Var}(dy/dx) = V_{xx} + 2 z V_{x,xz} + z^2 V_{xz,xz}.

When :math:`x` interacts with other variables too (``x*z + x*catholic``), :math:`dy/dx` depends on them as
well, and their values are given explicitly (``given={"catholic": 0}``; :func:`marginal_effect_table`).

References
----------
- Brambor, Clark & Golder (2006), *Political Analysis* 14, 63-82.
- Aiken & West (1991), *Multiple Regression: Testing and Interpreting Interactions*.
"""
from __future__ import annotations

import functools
import itertools
import operator
import re
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

from .lazy import stats
from .design import InputError, check_alpha, check_bool, check_finite_array, check_scalar
from .export import coef_table_text
from .sandwich import Covariance

__all__ = ["CoefTable", "term_index", "contrast_matrix", "contrast_table", "interaction_term",
           "marginal_effect_table", "moderator_grid", "check_term_names", "given_text"]

COLUMNS = ["estimate", "se", "df", "t", "p", "ci_low", "ci_high"]


#: broom's names for the columns of a coefficient table (``broom::tidy``)
TIDY_COLUMNS = {"estimate": "estimate", "se": "std.error", "t": "statistic", "p": "p.value",
                "ci_low": "conf.low", "ci_high": "conf.high"}


class CoefTable(pd.DataFrame):
    r"""A DataFrame of estimate, se, df, t, p, ci_low, ci_high whose printout starts with its caption.

    The caption (``.attrs["caption"]``) names the estimator, the covariance convention and the df
    rule, so a table can never be read without them; ``.attrs["convention"]`` holds the convention.
    It prints, and renders in Jupyter (``_repr_html_``), with the formatting of :mod:`hlmlib.export`: the
    whole table (no truncation), p-values below 2.2e-16 as ``<2e-16`` (R's convention), no df column for z
    tests; :meth:`to_latex` and :meth:`to_markdown` write the same table, :meth:`tidy` gives broom's
    layout. The numbers themselves stay in the columns at full precision. Operations on the table return
    plain DataFrames.
    """

    @property
    def _constructor(self):
        return pd.DataFrame

    @property
    def caption(self) -> str:
        return self.attrs.get("caption", "")

    def _text_table(self, digits: int = 4):
        return coef_table_text(self, self.caption, check_scalar(digits, "digits", integer=True, minimum=1,
                                                                maximum=17))

    def __repr__(self) -> str:
        return self._text_table().to_text()

    def _repr_html_(self) -> str:
        return self._text_table().to_html()

    def to_latex(self, digits: int = 4, caption: bool = True, label: str | None = None) -> str:
        r"""The table as LaTeX (booktabs rules; ``\usepackage{booktabs}``), in a ``table`` environment with
        the caption (and ``\label{label}``), or the bare ``tabular`` with ``caption=False``. ``digits``:
        significant digits of the numbers (p-values: 3). No Jinja2 needed (unlike pandas' ``to_latex``)."""
        return self._text_table(digits).to_latex(check_bool(caption, "caption"), label)

    def to_markdown(self, digits: int = 4) -> str:
        """The table as a Markdown pipe table with the caption above it. No tabulate needed (unlike
        pandas' ``to_markdown``)."""
        return self._text_table(digits).to_markdown()

    def tidy(self) -> pd.DataFrame:
        """One row per term in broom's layout (R's ``broom::tidy``): ``term``, ``estimate``, ``std.error``,
        ``statistic``, ``p.value``, ``conf.low``, ``conf.high``; other columns (the moderator of a
        marginal-effects table) are kept after ``term``. The df (a column of the table itself) are left out
        as in broom's ``tidy.lm``; the caption is kept in ``.attrs``."""
        out = pd.DataFrame({"term": [str(label) for label in self.index]})
        for column in self.columns:
            if column not in COLUMNS:
                out[column] = self[column].to_numpy()
        for column, name in TIDY_COLUMNS.items():
            out[name] = self[column].to_numpy()
        out.attrs.update(self.attrs)
        return out


def _factors(name: str) -> frozenset:
    return frozenset(part.strip() for part in str(name).split(":"))


def term_index(term: str, names) -> int:
    r"""Position of ``term`` among ``names``; an interaction matches whatever order its factors have
    ('cses:catholic' finds 'catholic:cses'), as formulaic and R order them differently."""
    names = list(names)
    if not isinstance(term, str):
        raise InputError(f"a term is a coefficient name (a string) among {names}, got {term!r}")
    if term in names:
        return names.index(term)
    matches = [j for j, nm in enumerate(names) if _factors(nm) == _factors(term)]
    if len(matches) == 1:
        return matches[0]
    raise InputError(f"term {term!r} is not among the coefficients {names}")


def _contrast_label(weights, terms) -> str:
    """'x1 - z', '2.5*x1:z + x1': readable labels for contrast rows."""
    parts = []
    for w, term in zip(weights, terms):
        if w == 0:
            continue
        size = "" if abs(w) == 1 else f"{abs(w):g}*"
        sign = ("-" if w < 0 else "") if not parts else (" - " if w < 0 else " + ")
        parts.append(f"{sign}{size}{term}")
    return "".join(parts) or "0"


def contrast_matrix(L, names) -> tuple[np.ndarray, list[str]]:
    r"""Rows of contrast weights (m, k) and their labels from an array, a dict ``{term: weight}``, or a
    list of them.

    Refused with :class:`~hlmlib.design.InputError`: an empty specification, an unknown term, weights
    that are not finite real numbers, a wrong number of weights, and a row of zeros (a contrast that
    tests nothing)."""
    names = list(names)
    k = len(names)

    def weight(value, where):
        if isinstance(value, (bool, np.bool_, str, bytes)) or np.ndim(value) != 0 or np.iscomplexobj(value):
            raise InputError(f"contrast weight {where} must be a real number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InputError(f"contrast weight {where} must be a real number, got {value!r}") from None

    def one(spec):
        if isinstance(spec, dict):
            if not spec:
                raise InputError("a contrast given as a dict needs at least one {term: weight}")
            row = np.zeros(k)
            weights = []
            for term, w in spec.items():
                if not isinstance(term, str):
                    raise InputError(f"contrast terms are coefficient names (strings), got {term!r}")
                weights.append(weight(w, f"of {term!r}"))
                row[term_index(term, names)] += weights[-1]
            return row, _contrast_label(weights, list(spec))
        row = check_finite_array(spec, "contrast weights", allow_empty=True, numbers_only=True)
        if row.ndim != 1 or row.size != k:
            raise InputError(f"a contrast needs {k} weights, one per coefficient {names}; got shape {row.shape}")
        return row, _contrast_label(row, names)

    if isinstance(L, dict):
        specs = [L]
    elif isinstance(L, (list, tuple)) and len(L) and (isinstance(L[0], dict) or np.ndim(L[0]) == 1):
        specs = list(L)
    else:
        arr = check_finite_array(L, "contrast weights", ndim=(1, 2), numbers_only=True)
        specs = [arr] if arr.ndim == 1 else list(arr)
    if not specs:
        raise InputError("no contrast given: pass k weights, a {term: weight} dict, or a list of them")
    rows, labels = zip(*(one(s) for s in specs))
    matrix = np.vstack(rows)
    if not np.isfinite(matrix).all():
        raise InputError("contrast weights must be finite numbers")
    zero = ~matrix.any(axis=1)
    if zero.any():
        raise InputError(f"contrast(s) {np.flatnonzero(zero).tolist()} have all weights 0: they test nothing")
    return matrix, list(labels)


def contrast_table(L: np.ndarray, coef: np.ndarray, cov: Covariance, alpha: float = 0.05,
                   labels=None, caption: str = "") -> CoefTable:
    r"""Estimate, se, df, t, p and the :math:`1 - \alpha` interval of each contrast :math:`c'b` (rows
    of ``L``).

    :math:`\mathrm{se} = \sqrt{c'Vc}` (from the covariance's scaled form when it has one:
    :meth:`~hlmlib.sandwich.Covariance.contrast_se`); df from ``cov.df_for`` (per contrast under CR2:
    Satterthwaite); :math:`p` two-sided from :math:`t(\mathrm{df})`; interval
    :math:`c'b \pm t_{1-\alpha/2}(\mathrm{df})\, \mathrm{se}`. ``alpha`` in (0, 1). Where t is not
    defined, t and p are NaN, never rounding noise: for an essentially perfect fit
    (``cov.perfect_fit``, warned where the covariance was made) and, with a warning, for a contrast
    whose se is 0 or NaN (a covariance not positive semi-definite in that direction).

    References
    ----------
    Pustejovsky & Tipton (2018) for the CR2 df; any regression text for the rest (e.g. Wooldridge
    2010, ch. 4).
    """
    alpha = check_alpha(alpha)
    L = np.atleast_2d(L)
    estimate = L @ coef
    se = cov.contrast_se(L)
    df = cov.df_for(L)
    undefined = ~(se > 0)
    if cov.perfect_fit:
        # R's summary.lm warns and prints t values of 1e15; here they are not reported at all
        undefined[:] = True
    elif np.any(undefined & ~np.isnan(se)):
        warnings.warn(f"{int((undefined & ~np.isnan(se)).sum())} contrast(s) have a standard error of 0 "
                      f"({cov.kind}): their t statistics and p-values are undefined and reported as NaN",
                      stacklevel=3)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(undefined, np.nan, estimate / np.where(undefined, 1.0, se))
    p = 2 * stats.t.sf(np.abs(t), df)
    half_width = np.where(undefined, np.nan, stats.t.ppf(1 - alpha / 2, df) * se)   # no t, no interval
    table = CoefTable(
        {"estimate": estimate, "se": se, "df": df, "t": t, "p": p,
         "ci_low": estimate - half_width, "ci_high": estimate + half_width},
        index=labels,
    )
    table.attrs.update({"convention": cov.convention, "kind": cov.kind, "df_rule": cov.df_rule,
                        "n_clusters": cov.n_clusters, "alpha": alpha, "caption": caption})
    return table


def interaction_term(x: str, by: str, names) -> str:
    r"""The name of the x-by-z interaction column, whichever order the formula wrote it in."""
    for nm in names:
        if _factors(nm) == {x, by}:
            return nm
    raise InputError(f"no interaction of {x!r} and {by!r} among the coefficients {list(names)}; "
                     f"fit a model with {x}*{by} or {x}:{by}")


_LEVEL = re.compile(r"\[[^\]]*\]")                                 # a factor level: c[T.b], C(c)[T.b]
_VARIABLE = re.compile(r"(?<![\w.])[^\W\d]\w*(?![\w.(])")          # not a function (I(, np.log() or number


def _variables(term: str) -> set[str]:
    """The variables in a column name of a fit from arrays (no formula to read them from): 'x:c[T.b]' -> {x, c},
    'I(x ** 2)' -> {x}, 'np.log(w + 5)' -> {w} (function names and factor levels left out); a name with none
    ('1x') stands for itself."""
    return set(_VARIABLE.findall(_LEVEL.sub("", str(term)))) or {str(term)}


class _Factor(NamedTuple):
    """One factor of a model term: its name in the column names ('x', 'C(c, Sum)', 'np.exp(z)'), the data columns
    it reads, and for a categorical factor formulaic's coding (a ``ContrastsState``) and whether it has one column
    fewer than levels there."""
    expr: str
    variables: frozenset
    contrasts: object = None
    reduced: bool = True


def _model_terms(names, spec, columns=None) -> list[tuple[list[_Factor], float, list[str]]]:
    """The model's terms as (factors, scale, columns): formulaic's structure for formula fits (``spec``; a
    term's columns are the products of its factors' columns, named by joining theirs with ':'), with the data
    ``columns`` each factor reads; for fits from arrays one term per column, its ':'-separated parts as
    numeric factors."""
    if spec is None:
        return [([_Factor(part, frozenset(_variables(part))) for part in name.split(":")], 1.0, [name])
                for name in names]
    # what formulaic looked up, less what is not a data column (the function in np.log(z), a stateful transform)
    columns = None if columns is None else set(map(str, columns))
    read = {str(factor): {str(v) for v in variables if columns is None or str(v) in columns}
            for factor, variables in spec.factor_variables.items()}
    terms = []
    for structure in spec.structure:
        for scoped in structure.scoped_terms:
            factors = []
            for scoped_factor in scoped.factors:
                expr = scoped_factor.factor.expr
                state = spec.encoder_state.get(expr, (None, {}))[1]
                factors.append(_Factor(expr, frozenset(read.get(expr, ())), state.get("contrasts"),
                                       scoped_factor.reduced))
            terms.append((factors, float(scoped.scale), list(structure.columns)))
    return terms


def _factor_columns(factor: _Factor, key: str, value) -> dict:
    """The columns of a factor at a given value, by name: a numeric factor's one column is the value; a
    categorical factor's are the row of its coding matrix for the level (treatment, sum, polynomial or any
    other coding, as the fit encoded it). A level must be one of the fit's."""
    if factor.contrasts is None:
        return {factor.expr: _given_number(key, value)}
    levels = list(factor.contrasts.levels)
    matches = [level for level in levels if str(level) == str(value)]
    if not matches or isinstance(value, (list, tuple, dict, set)):
        shown = [level.item() if isinstance(level, np.generic) else level for level in levels]
        raise InputError(f"given[{key!r}] = {value!r} is not a level of {factor.expr!r} (its levels in the fit: "
                         f"{shown})")
    contrasts = factor.contrasts.contrasts
    coding = contrasts.get_coding_matrix(levels, factor.reduced)
    name = contrasts.get_factor_format(levels, factor.reduced)
    return {name.format(name=factor.expr, field=field): float(coding.loc[matches[0], field])
            for field in coding.columns}


def _given_for(factor: _Factor, given: dict) -> str | None:
    """The key of ``given`` that sets a factor: its name ('C(c, Sum)', 'np.exp(z)'), or for a categorical factor
    of one column the column's name ('c')."""
    keys = [factor.expr] + (sorted(factor.variables) if factor.contrasts is not None
                            and len(factor.variables) == 1 else [])
    return next((key for key in keys if key in given), None)


def check_term_names(**terms) -> None:
    """Refuse a term or moderator name that is not a string (a list, a number) with a clear message."""
    for name, value in terms.items():
        if not isinstance(value, str):
            raise InputError(f"{name}= must be a term name (a string), got {value!r}")


def moderator_grid(by: str, names, X: np.ndarray, data: pd.DataFrame | None = None, points: int = 25) -> np.ndarray:
    r"""The default ``at=`` of a marginal effect: ``points`` (25) evenly spaced values from the smallest to
    the largest observed value of the moderator ``by``, read from its column of the design ``X`` (when it is
    a term) or of the fit's data. A categorical moderator is refused (its effect differs by level, one
    interaction term each), as is a name that is neither."""
    names = list(names)
    if by in names:
        values = X[:, names.index(by)]
    elif data is not None and by in data.columns:
        column = data[by]
        if isinstance(column.dtype, pd.CategoricalDtype) or column.dtype.kind not in "biuf":
            raise InputError(f"the moderator {by!r} is categorical (dtype {column.dtype}): the effect differs by "
                             f"level, one interaction term each; use contrast() with those terms, or a numeric "
                             f"moderator")
        values = column.to_numpy(dtype=float)
    else:
        raise InputError(f"give at= (values of {by!r}): {by!r} is neither a term nor a data column")
    return np.linspace(values.min(), values.max(), points)


def marginal_effect_table(x: str, by: str, at, coef: np.ndarray, cov: Covariance, names,
                          alpha: float = 0.05, caption: str = "", given=None,
                          data: pd.DataFrame | None = None, spec=None) -> CoefTable:
    r""":math:`dy/dx = b_x + b_{x:z}\, z` at each :math:`z` in ``at``, with delta-method se and
    intervals.

    :math:`\operatorname{Var}(dy/dx) = V_{xx} + 2 z V_{x,xz} + z^2 V_{xz,xz}` (exact: the effect is
    linear in :math:`b`), with the df of the covariance (CR2: Satterthwaite per :math:`z`). Returns a
    DataFrame with a column named after the moderator and the columns of :func:`contrast_table`,
    ready to plot. Stata: ``margins, dydx(x) at(z=(...))``; R: ``marginaleffects::slopes`` /
    ``interactions::johnson_neyman``.

    When :math:`x` enters through other terms too, each must be :math:`x` times other columns (an interaction
    ``x:c[T.b]``, ``x:z:w``), and ``given`` must hold the value of every other variable in them
    (``{"catholic": 0}``, ``{"c": "b"}`` for a factor's level): the derivative is then
    :math:`\sum_t b_t \prod_{f \in t, f \ne x} f`, with the moderator at :math:`z` and the others at their given
    values (Stata's ``margins, dydx(x) at(z=(...) catholic=0)``), and the caption says at which values. Without
    them, or with a term in which :math:`x` is transformed (``I(x ** 2)``), the effect depends on values not
    given and :class:`~hlmlib.design.InputError` names those terms: :math:`b_x + b_{x:z} z` alone would be the
    effect at a reference level or at :math:`x = 0`, not what Stata's ``margins, dydx(x)`` reports (the average
    over the data). The terms and the variables each reads come from the formula as formulaic parsed it
    (``spec``, the fit's model spec; for fits from arrays, from the column names), and a categorical variable's
    columns at its given level are that level's row of the coding the fit used (treatment, ``C(c, Sum)``,
    ``Treatment('b')``, polynomial, ...): a level must be one of the fit's, and the key is the factor as written
    (``'C(c, Sum)'``, any spacing) or its column (``'c'``). Two values for factors of one variable (``'z'`` and
    ``'np.exp(z)'``) are refused, as is a moderator that is itself a function of :math:`x` (``x:I(x ** 2)``).

    References
    ----------
    Brambor, Clark & Golder (2006).
    """
    names = list(names)
    check_term_names(x=x, by=by)
    j_x, j_xz = term_index(x, names), term_index(interaction_term(x, by, names), names)
    z = np.atleast_1d(check_finite_array(at, f"at= (the values of {by!r})", ndim=(0, 1), numbers_only=True))
    terms = _model_terms(names, spec, None if data is None else data.columns)
    x_factor = next((factors[0] for factors, _, columns in terms if columns == [names[j_x]] and len(factors) == 1
                     and factors[0].expr == names[j_x] and factors[0].contrasts is None), None)
    if x_factor is None:
        raise InputError(f"{x!r} is not a numeric variable of the model (a column of its own, not a level of a "
                         f"categorical factor or a product): dy/d{x} is not defined; compare levels with contrast()")
    xz_factors = next((factors for factors, _, columns in terms if columns == [names[j_xz]]), [])
    by_factor = next((f for f in xz_factors if f != x_factor and f.contrasts is None), None)
    if by_factor is None or len(xz_factors) != 2:
        raise InputError(f"the moderator {by!r} must be a numeric variable interacted with {x!r} (its term "
                         f"{names[j_xz]!r}); for a categorical one use contrast() with its levels' terms")
    if by_factor.variables & x_factor.variables:
        raise InputError(f"the moderator {by!r} reads {sorted(by_factor.variables & x_factor.variables)}, as {x!r} "
                         f"does: in the term {names[j_xz]!r} {x!r} is multiplied by a function of itself, so dy/d{x} "
                         f"is not b_{names[j_x]} + b_{names[j_xz]} * {by} (the derivative of {by} counts too); "
                         f"write the derivative at the values you mean with contrast()")
    L = np.zeros((z.size, len(names)))
    L[:, j_x] = 1.0
    L[:, j_xz] = z
    given = _normalised_given(_check_given(given))
    used, missing, transformed, others, weights, read_by = set(), [], [], [], {}, {}
    for factors, scale, columns in terms:
        if columns in ([names[j_x]], [names[j_xz]]) or not any(f.variables & x_factor.variables for f in factors):
            continue
        others += [column for column in columns if column in names and column not in others]
        rest = [f for f in factors if f != x_factor]
        if len(rest) != len(factors) - 1 or any(f != by_factor and f.variables & (x_factor.variables
                                                                                  | by_factor.variables)
                                                for f in rest):
            transformed += [column for column in columns if column in names]
            continue
        parts = []
        for factor in factors:
            if factor in (x_factor, by_factor):
                parts.append({factor.expr: 1.0 if factor == x_factor else z})
                continue
            key = _given_for(factor, given)
            if key is None:
                missing.append(factor)
                continue
            used.add(key)
            read_by[key] = read_by.get(key, frozenset()) | factor.variables
            parts.append(_factor_columns(factor, key, given[key]))
        if len(parts) == len(factors):
            # formulaic's columns of a term: the products of its factors' columns, named by joining theirs
            for combination in itertools.product(*(part.items() for part in parts)):
                weights[":".join(name for name, _ in combination)] = functools.reduce(
                    operator.mul, (w for _, w in combination), np.full(z.size, scale))
    if transformed:
        raise InputError(f"{x!r} also enters the model through {transformed}, not as {x} times other columns (or "
                         f"with {by} transformed there): dy/d{x} then depends on {x} itself, or on {by} otherwise than "
                         f"in proportion (at {x} = 0 it is not what Stata's margins, dydx({x}) reports, the average "
                         f"over the data); write the derivative at the values you mean with contrast()")
    keys = sorted({_given_for(f, {v: 0 for v in f.variables}) or f.expr for f in missing})
    unused = sorted(set(given) - used)
    if unused:
        expected = sorted(used | set(keys))
        raise InputError(f"given= names {unused}, which no other term containing {x!r} uses (those are {others}"
                         + (f"; given= takes {expected}" if expected else "") + ")")
    if missing:
        factor = missing[0]
        level = factor.contrasts.levels[0] if factor.contrasts is not None else 0
        example = repr(level.item() if isinstance(level, np.generic) else level)
        raise InputError(f"{x!r} also enters the model through {others}, so dy/d{x} depends on {keys} too: give "
                         f"their values with given= (e.g. given={{{keys[0]!r}: {example}}}, as Stata's margins, "
                         f"dydx({x}) at(...); a categorical variable's value is one of its levels); "
                         f"b_{names[j_x]} + b_{names[j_xz]} * {by} alone is the effect at 0 or the reference level")
    clashes = [(a, b) for a, b in itertools.combinations(sorted(read_by), 2) if read_by[a] & read_by[b]]
    if clashes:
        a, b = clashes[0]
        raise InputError(f"given= sets both {a!r} and {b!r}, which read the same variable(s) "
                         f"{sorted(read_by[a] & read_by[b])}: their values must come from one value of it, which "
                         f"hlmlib does not check (the effect could be at no possible point); write the derivative at "
                         f"that point with contrast()")
    unread = [column for column in others if column not in weights]
    if unread:
        raise InputError(f"the column(s) {unread} of the terms containing {x!r} could not be evaluated at the given "
                         f"values (a factor of several columns, such as poly(z, 2)): write the derivative with "
                         f"contrast()")
    for column in others:
        L[:, names.index(column)] = weights[column]
    table = contrast_table(L, coef, cov, alpha, caption=caption)
    out = CoefTable(table)
    out.insert(0, by, z)
    out.index = pd.RangeIndex(z.size)
    out.attrs.update(table.attrs)
    return out


def _check_given(given) -> dict:
    if given is None:
        return {}
    if not isinstance(given, dict) or not all(isinstance(key, str) for key in given):
        raise InputError(f"given= must be a dict of values by variable name, e.g. {{'catholic': 0}}; got {given!r}")
    return dict(given)


def _normalised_given(given: dict) -> dict:
    """``given`` with each key spelt as formulaic names the factor (``'C(c,Sum)'`` as ``'C(c, Sum)'``,
    ``'I(x**2)'`` as ``'I(x ** 2)'``); a key that is not one factor (a column name with a space) stays as it is.
    Two keys for one factor are refused."""
    import formulaic

    out, spelt = {}, {}
    for key, value in given.items():
        try:
            terms = [term for term in formulaic.Formula(key) if str(term) != "1"]
            name = terms[0].factors[0].expr if len(terms) == 1 and len(terms[0].factors) == 1 else key
        except Exception:               # not a formula: matched as written
            name = key
        if name in out:
            raise InputError(f"given= sets {name!r} twice, as {spelt[name]!r} and {key!r}")
        out[name], spelt[name] = value, key
    return out


def given_text(given) -> str:
    """' at catholic = 0, c = b' for a caption (checked as :func:`marginal_effect_table` checks ``given``)."""
    given = _check_given(given)
    return " at " + ", ".join(f"{key} = {value}" for key, value in given.items()) if given else ""


def _given_number(key: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value):
        raise InputError(f"given[{key!r}] must be a finite number (the value of {key!r}), got {value!r}")
    return float(value)
