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

import re
import warnings

import numpy as np
import pandas as pd

from .lazy import stats
from .design import InputError, check_alpha, check_bool, check_finite_array, check_scalar
from .export import coef_table_text
from .sandwich import Covariance

__all__ = ["CoefTable", "term_index", "contrast_matrix", "contrast_table", "interaction_term",
           "marginal_effect_table", "moderator_grid", "check_term_names", "terms_containing", "given_text"]

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
_VARIABLE = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?![\w.(])")           # not a function (I(, np.log() or number


def _variables(term: str) -> set[str]:
    """The variables a coefficient's column is made of: 'x:c[T.b]' -> {x, c}, 'I(x ** 2)' -> {x},
    'np.log(w + 5)' -> {w} (function names and factor levels left out)."""
    return set(_VARIABLE.findall(_LEVEL.sub("", str(term))))


def terms_containing(x: str, names, but=()) -> list[str]:
    """The coefficients other than ``but`` whose columns are made of a variable of the term ``x`` (its
    interactions and transformations: 'x:c[T.b]', 'I(x ** 2)'), in ``names`` order."""
    variables = _variables(x)
    return [nm for nm in names if nm not in but and nm != x and variables & _variables(nm)]


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
                          data: pd.DataFrame | None = None) -> CoefTable:
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
    over the data). A level in ``given`` must be one of the variable's values in ``data`` (the fit's rows).

    References
    ----------
    Brambor, Clark & Golder (2006).
    """
    names = list(names)
    check_term_names(x=x, by=by)
    j_x, j_xz = term_index(x, names), term_index(interaction_term(x, by, names), names)
    z = np.atleast_1d(check_finite_array(at, f"at= (the values of {by!r})", ndim=(0, 1), numbers_only=True))
    L = np.zeros((z.size, len(names)))
    L[:, j_x] = 1.0
    L[:, j_xz] = z
    others = terms_containing(x, names, but=(names[j_x], names[j_xz]))
    given = _check_given(given)
    used, missing, transformed = set(), [], []
    for term in others:
        factors = [f.strip() for f in term.split(":")]
        rest = [f for f in factors if f != names[j_x]]
        if len(rest) != len(factors) - 1 or any(_variables(f) & _variables(x) for f in rest):
            transformed.append(term)
            continue
        weight = np.ones(z.size)
        for factor in rest:
            if factor == by:
                weight = weight * z
                continue
            key, level, variable = _given_key(factor, given)
            if key is None:
                missing.append((variable, level))
                continue
            used.add(key)
            value = given[key]
            if level is None:
                weight = weight * _given_number(key, value)
            else:
                _check_level(key, value, data)
                weight = weight * float(str(value) == level)
        L[:, names.index(term)] = weight
    if transformed:
        raise InputError(f"{x!r} also enters the model through {transformed}, not as {x} times other columns: dy/d{x} "
                         f"then depends on {x} itself (at {x} = 0 it is not what Stata's margins, dydx({x}) reports, "
                         f"the average over the data); write the derivative at the values you mean with contrast()")
    if missing:
        variable, level = missing[0]
        example = f"{{'{variable}': {0 if level is None else repr(level)}}}"
        raise InputError(f"{x!r} also enters the model through {others}, so dy/d{x} depends on "
                         f"{sorted({v for v, _ in missing})} too: give their values with given= (e.g. given={example}, "
                         f"as Stata's margins, dydx({x}) at(...); a factor's value is one of its levels); "
                         f"b_{names[j_x]} + b_{names[j_xz]} * {by} alone is the effect at 0 or the reference level")
    unused = sorted(set(given) - used)
    if unused:
        raise InputError(f"given= names {unused}, which no other term containing {x!r} uses (those are {others})")
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


def given_text(given) -> str:
    """' at catholic = 0, c = b' for a caption (checked as :func:`marginal_effect_table` checks ``given``)."""
    given = _check_given(given)
    return " at " + ", ".join(f"{key} = {value}" for key, value in given.items()) if given else ""


def _given_key(factor: str, given: dict) -> tuple[str | None, str | None, str]:
    """The key of ``given`` that sets a factor of a term, the level it stands for and the variable's name:
    'catholic' -> ('catholic', None, 'catholic'); 'c[T.b]' or 'C(c)[T.b]' -> ('c' or 'C(c)', 'b', 'c'); key None
    when ``given`` has no such key."""
    level_match = re.fullmatch(r"(.+)\[(?:T\.)?([^\]]*)\]", factor)
    name, level = (level_match[1], level_match[2]) if level_match else (factor, None)
    inner = re.fullmatch(r"C\((\w+)\)", name)
    variable = inner[1] if inner else name
    for key in (name, variable):
        if key in given:
            return key, level, variable
    return None, level, variable


def _check_level(key: str, value, data: pd.DataFrame | None) -> None:
    """A level given for a factor must be one of its values in the fit's rows (else it would count silently as the
    reference level)."""
    inner = re.fullmatch(r"C\((\w+)\)", key)
    column = inner[1] if inner else key
    if data is not None and column in data.columns:
        levels = pd.unique(data[column].dropna())
        if not any(str(value) == str(level) for level in levels):
            raise InputError(f"given[{key!r}] = {value!r} is not a level of {column!r} (its levels: {list(levels)})")


def _given_number(key: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value):
        raise InputError(f"given[{key!r}] must be a finite number (the value of {key!r}), got {value!r}")
    return float(value)
