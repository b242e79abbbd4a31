r"""The book's figures: a colour-blind-safe style, and the plots the chapters draw from fitted models.

Every plotting function draws on ``ax`` (a matplotlib Axes; a new figure's when None) and returns it, so
that figures with several panels are composed by the caller; the numbers plotted are the fit's own
(estimates, intervals, residuals), never recomputed differently. The style is applied with
``with book_style(): ...`` (a temporary change of matplotlib's settings) or, for a whole notebook,
``use_book_style()``.

- :func:`coef_plot`: estimates with confidence intervals of one or several fits (and covariance kinds);
- :func:`marginal_effect_plot`: a marginal-effect table (``marginal_effect(x, by)``) with its band;
- :func:`caterpillar_plot`: the groups' empirical-Bayes random effects, sorted, with intervals;
- :func:`pooling_plot`: no, complete and partial pooling (each group's OLS line, one line for all, the EB lines);
- :func:`qq_plot`: normal Q-Q plot of standardised EB or level-1 residuals, or Mahalanobis distances against
  :math:`\chi^2_q`;
- :func:`residual_plot`: level-1 residuals against fitted values, by category;
- :func:`shrinkage_plot`: each group's own OLS estimate pulled to its empirical-Bayes estimate, against size or
  reliability.

For Monte Carlo experiments and data:

- :func:`mc_rate_plot`: rejection (coverage) rates against a design parameter, with the nominal level, the
  Monte Carlo band of an exact test and, optionally, each rate's binomial or Wilson interval;
- :func:`mc_estimate_plot`: Monte Carlo estimates (bias, ratios, efficiency) against a design parameter, with
  their Monte Carlo intervals and the theoretical curves;
- :func:`sampling_plot`: sampling distributions (histograms or kernel densities) of estimators against the
  truth and a reference density;
- :func:`group_lines_plot`: grouped data with each group's line (its own OLS or given) and the pooled line.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from cycler import cycler

from .design import InputError, check_alpha, check_bool, check_finite_array, check_scalar
from .lazy import stats

__all__ = ["OKABE_ITO", "book_style", "use_book_style", "coef_plot", "marginal_effect_plot", "caterpillar_plot",
           "pooling_plot", "qq_plot", "residual_plot", "plotting_positions", "mc_rate_plot", "mc_estimate_plot",
           "sampling_plot", "group_lines_plot", "shrinkage_plot"]

#: The Okabe & Ito (2008) palette ("Color Universal Design"), distinguishable under the common
#: colour-vision deficiencies.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

#: The book's matplotlib settings (see :func:`book_style`).
BOOK_RC = {
    "axes.prop_cycle": cycler(color=OKABE_ITO[:6]) + cycler(linestyle=["-", "--", "-.", ":", "-", "--"]),
    "figure.figsize": (7.0, 4.2),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
}


@contextmanager
def book_style():
    """The book's figure style for the figures drawn inside ``with book_style(): ...``, matplotlib's settings
    restored afterwards (``matplotlib.rc_context``).

    The first six colours of ``OKABE_ITO`` cycle together with four line styles (solid, dashed,
    dash-dot, dotted), so curves stay apart in greyscale print too; top and right spines off, a
    light grid, no legend frame.

    References
    ----------
    Okabe, M. & Ito, K. (2008), "Color Universal Design (CUD): how to make figures and
    presentations that are friendly to colorblind people", https://jfly.uni-koeln.de/color/.
    """
    with mpl.rc_context(BOOK_RC):
        yield


def use_book_style() -> None:
    """Set the book's figure style (:func:`book_style`'s settings, ``BOOK_RC``) for the rest of the session,
    as a notebook's first cell does."""
    mpl.rcParams.update(BOOK_RC)


# ----------------------------------------------------------------------------------------------------------------
# helpers

def _axes(ax):
    if ax is None:
        return plt.subplots()[1]
    if not isinstance(ax, mpl.axes.Axes):
        raise InputError(f"ax must be a matplotlib Axes (or None for a new figure), got {type(ax).__name__}")
    return ax


def _check_mixed(fit, what: str):
    from .mixed import MixedResult
    if not isinstance(fit, MixedResult):
        raise InputError(f"{what} draws a mixed() fit (MixedResult), got {type(fit).__name__}")


def _sorted_levels(levels) -> list:
    """A column's distinct values in sorted order; values of mixed types (1 and "a") by their text."""
    try:
        return sorted(levels)
    except TypeError:
        return sorted(levels, key=lambda value: (str(type(value)), str(value)))


def plotting_positions(n: int) -> np.ndarray:
    r"""Probabilities for the sorted sample of a Q-Q plot, R's ``ppoints(n)``:
    :math:`(i - a)/(n + 1 - 2a)`, :math:`a = 3/8` for :math:`n \le 10` and :math:`1/2` otherwise (as R's
    ``qqnorm``)."""
    n = check_scalar(n, "n", integer=True, minimum=1)
    a = 3 / 8 if n <= 10 else 0.5
    return (np.arange(1, n + 1) - a) / (n + 1 - 2 * a)


def _coef_table(entry, kind, cluster, alpha):
    """A fit's (or a table's) coefficient table with estimate, ci_low and ci_high."""
    from .tables import _takes_kind
    if isinstance(entry, pd.DataFrame):
        missing = {"estimate", "ci_low", "ci_high"} - set(entry.columns)
        if missing:
            raise InputError("a table to plot needs the columns estimate, ci_low and ci_high; it lacks "
                             f"{sorted(missing)}")
        if kind is not None or cluster is not None:
            raise InputError("kind= and cluster= go with fitted models; a coefficient table has its own covariance")
        return entry
    if hasattr(entry, "coef_table"):                                     # a mixed model
        if cluster is not None:
            raise InputError(f"a {type(entry).__name__} takes no cluster= (its groups are its clusters); drop it")
        return entry.coef_table(alpha=alpha, kind="model" if kind is None else kind)
    if hasattr(entry, "summary") and _takes_kind(getattr(entry, "se", None)):
        return entry.summary(kind=kind, cluster=cluster, alpha=alpha)
    raise InputError(f"coef_plot draws fitted models (ols, mixed, ...) or coefficient tables, got "
                     f"{type(entry).__name__}")


def _interval_level(entries, labels, alpha) -> tuple[float, bool]:
    r"""The :math:`\alpha` of coef_plot's intervals and whether every interval drawn has that level: ``alpha``
    when given (refused if a table records another), else the tables' recorded level (refused when they differ),
    else 0.05."""
    recorded = {label: entry.attrs["alpha"] for label, entry in zip(labels, entries)
                if isinstance(entry, pd.DataFrame) and entry.attrs.get("alpha") is not None}
    if alpha is not None:
        alpha = check_alpha(alpha)
        other = {label: level for label, level in recorded.items() if not np.isclose(level, alpha, rtol=1e-12)}
        if other:
            raise InputError(f"alpha={alpha:g}, but the table(s) {other} (label: alpha) hold intervals of another "
                             f"level: a table keeps its own intervals; make it at alpha={alpha:g} (e.g. "
                             f"fit.summary(alpha={alpha:g})), or leave alpha out")
        return alpha, True
    levels = sorted(set(recorded.values()))
    if len(levels) > 1:
        raise InputError(f"the tables hold intervals of different levels {recorded} (label: alpha): one axis "
                         "label cannot name them; make them at one level")
    every_level_known = len(recorded) == sum(isinstance(entry, pd.DataFrame) for entry in entries)
    return (check_alpha(levels[0]) if levels else 0.05), every_level_known


# ----------------------------------------------------------------------------------------------------------------
# coefficients and marginal effects

def coef_plot(fits, terms=None, kind=None, cluster=None, alpha: float | None = None, names=None, styles=None,
              reference: float | None = 0.0, ax=None):
    r"""Estimates and :math:`1 - \alpha` confidence intervals of one or several fits, one row per term.

    ``fits``: a fitted model (:func:`hlmlib.ols`, :func:`hlmlib.mixed`, ...), a coefficient table (a DataFrame
    with ``estimate``, ``ci_low``, ``ci_high``, e.g. ``fit.summary("CR2", "school")``), a list of them, or a
    dict ``{label: fit or table}``. ``kind`` and ``cluster``: the covariance of each fit's intervals, one for
    all or a list with one per fit (as :func:`hlmlib.tables.etable`): an OLS fit's ``summary(kind, cluster, alpha)``
    (classical by default, CR1 with a cluster), a mixed fit's ``coef_table(alpha, kind=...)`` (model-based by
    default; ``"kenward-roger"``, ``"CR2"``, ...). So one fit under several covariances is
    ``coef_plot({"classical": fit.summary(), "CR2": fit.summary("CR2", "g")})`` or
    ``coef_plot([fit, fit], kind=["classical", "CR2"], cluster=[None, "g"], names=[...])``.

    ``terms``: the terms to show, in order (default: every term of the fits, in order of first appearance).
    Each fit is a point (its ``estimate``) and a horizontal segment (``ci_low`` to ``ci_high``), offset
    vertically from the others; a term a fit lacks is skipped. The segments of fit ``k`` are
    ``ax.collections[k]``, its points ``ax.lines[k]``. ``styles``: ``{label: {"color": ..., "marker": ...,
    "linewidth": ...}}`` per fit (default: the book's cycle). ``reference``: the value marked by a vertical
    line (0, a null effect; 1 for ratios; None for none). Any table with ``estimate``, ``ci_low`` and
    ``ci_high`` can be drawn, e.g. a ratio with the range of several estimators as its segment.

    ``alpha``: the level of the fits' intervals, :math:`1 - \alpha` (default: the tables' own level, else 0.05).
    A table keeps its own intervals, at the level in its ``attrs["alpha"]`` (hlmlib's tables record it), so an
    ``alpha`` that differs from a table's, or tables of different levels in one plot, are refused: the axis
    label names the one level of every interval drawn (a table without a recorded level is labelled
    "interval", unless ``alpha`` says its level).
    """
    from .tables import _per_model
    if isinstance(fits, dict):
        labels, entries = [str(k) for k in fits], list(fits.values())
    else:
        entries = list(fits) if isinstance(fits, (list, tuple)) else [fits]
        if names is not None and (not isinstance(names, (list, tuple)) or len(names) != len(entries)):
            raise InputError(f"names must be a list with one label per fit ({len(entries)}), got {names!r}")
        labels = [str(n) for n in names] if names is not None else (
            [f"({k + 1})" for k in range(len(entries))] if len(entries) > 1 else [""])
    if not entries:
        raise InputError("coef_plot needs at least one fit")
    if reference is not None:
        reference = check_scalar(reference, "reference")
    series_styles = _series_styles(labels, styles)
    kinds, clusters = _per_model(kind, len(entries), "kind"), _per_model(cluster, len(entries), "cluster")
    alpha, level_known = _interval_level(entries, labels, alpha)
    tables = [_coef_table(e, k, c, alpha) for e, k, c in zip(entries, kinds, clusters)]
    available = list(dict.fromkeys(str(t) for table in tables for t in table.index))
    if terms is None:
        terms = available
    else:
        terms = [terms] if isinstance(terms, str) else list(terms)
        unknown = [t for t in terms if t not in available]
        if not terms or unknown:
            raise InputError(f"terms {unknown or terms} are not terms of the fits ({', '.join(available)})")
    ax = _axes(ax)
    m = len(tables)
    offsets = np.linspace(-0.25, 0.25, m) if m > 1 else np.zeros(1)
    for k, (label, table) in enumerate(zip(labels, tables)):
        index = [str(t) for t in table.index]
        shown = [t for t in terms if t in index]
        rows = [index.index(t) for t in shown]
        y = np.array([terms.index(t) for t in shown], float) + offsets[k]
        style = series_styles[label]
        ax.hlines(y, table["ci_low"].to_numpy()[rows], table["ci_high"].to_numpy()[rows], color=style["color"],
                  linewidth=style.get("linewidth", 1.6), alpha=style.get("alpha"))
        ax.plot(table["estimate"].to_numpy()[rows], y, linestyle="", marker=style["marker"], color=style["color"],
                markersize=style.get("markersize"), label=label or None)
    if reference is not None:
        ax.axvline(reference, color="0.4", linewidth=0.8, zorder=0)
    ax.set_yticks(np.arange(len(terms)), terms)
    ax.set_ylim(len(terms) - 0.5, -0.5)                                 # the first term on top
    ax.set_xlabel(f"estimate with {100 * (1 - alpha):g}% confidence interval" if level_known
                  else "estimate with interval")
    if m > 1:
        ax.legend()
    return ax


def marginal_effect_plot(table, ax=None, label: str | None = "estimated effect", band: str = "fill",
                         color=None, zero_line: bool = True, show_estimate: bool = True, band_style=None):
    r"""A marginal-effect table (``fit.marginal_effect(x, by)``) as a line with its confidence band.

    The moderator (the table's first column) on the horizontal axis, its rows drawn in increasing order; the line is ``estimate``, the band runs
    from ``ci_low`` to ``ci_high`` (the table's own intervals: its covariance kind and df, e.g. CR2 with
    Satterthwaite df per point). ``band="fill"`` shades it, ``"lines"`` draws its two edges (dashed; to set
    several tables' bands side by side on one ``ax``), ``"none"`` leaves it out. ``zero_line`` draws
    :math:`y = 0`. The line is ``ax.lines[0]`` (of this call's lines); a filled band is a PolyCollection.
    ``show_estimate=False`` draws the band alone (a second covariance's band around the same estimate).
    ``band_style``: line properties of the band (``label``, ``linestyle``, ``alpha``, ``linewidth``, ``color``),
    replacing the defaults (label "95% confidence band", dashed edges, transparency 0.25).

    References
    ----------
    Brambor, Clark & Golder (2006), Understanding interaction models, *Political Analysis* 14(1).
    """
    if not isinstance(table, pd.DataFrame) or not {"estimate", "ci_low", "ci_high"} <= set(table.columns) \
            or table.columns[0] in ("estimate", "se"):
        raise InputError("marginal_effect_plot draws the table of fit.marginal_effect(x, by): a DataFrame whose first "
                         "column is the moderator, with estimate, ci_low and ci_high")
    for column in (table.columns[0], "estimate", "ci_low", "ci_high"):
        if not pd.api.types.is_numeric_dtype(table[column]) or pd.api.types.is_bool_dtype(table[column]):
            raise InputError(f"marginal_effect_plot: column {column!r} must hold numbers (the moderator's values, the "
                             f"effects and their intervals), got dtype {table[column].dtype}")
    if band not in ("fill", "lines", "none"):
        raise InputError(f"band must be 'fill', 'lines' or 'none', got {band!r}")
    zero_line, show_estimate = check_bool(zero_line, "zero_line"), check_bool(show_estimate, "show_estimate")
    band_style = _style_dict({} if band_style is None else band_style, "band_style", BAND_KEYS)
    if color is not None and not mpl.colors.is_color_like(color):
        raise InputError(f"color must be a matplotlib colour (a name, '#rrggbb', an RGB tuple), got {color!r}")
    ax = _axes(ax)
    by = table.columns[0]
    # the line and band join the points in order: a table with at= unsorted would draw a self-crossing band
    table = table.iloc[np.argsort(table[by].to_numpy(dtype=float), kind="stable")]
    z = table[by].to_numpy(dtype=float)
    color = OKABE_ITO[0] if color is None else color
    if show_estimate:
        ax.plot(z, table["estimate"].to_numpy(), color=color, linewidth=2, label=label)
    level = table.attrs.get("alpha")
    band_label = "confidence band" if level is None else f"{100 * (1 - level):g}% confidence band"
    if band == "fill":
        ax.fill_between(z, table["ci_low"].to_numpy(), table["ci_high"].to_numpy(),
                        **({"color": color, "alpha": 0.25, "linewidth": 0, "label": band_label} | band_style))
    elif band == "lines":
        edge = {"color": color, "linestyle": "--", "linewidth": 1.2} | band_style
        edge.pop("label", None)
        ax.plot(z, table["ci_low"].to_numpy(), **(edge | {"label": band_style.get("label", band_label)}))
        ax.plot(z, table["ci_high"].to_numpy(), **edge)
    if zero_line:
        ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel(str(by))
    ax.set_ylabel("marginal effect")
    return ax


# ----------------------------------------------------------------------------------------------------------------
# random effects

def _effect(fit, effect):
    if effect is None:
        return fit.re_names[0]
    if effect not in fit.re_names:
        raise InputError(f"effect must be one of the fit's random effects {fit.re_names}, got {effect!r}")
    return effect


def caterpillar_plot(fit, effect=None, level: float = 0.95, ax=None):
    r"""The groups' empirical-Bayes random effects of one kind, sorted, with intervals: a caterpillar plot.

    Each group :math:`j` is a point at :math:`\hat b_{qj}` (``fit.ranef[effect]``) with the interval
    :math:`\hat b_{qj} \pm z_{(1+\text{level})/2} \sqrt{\operatorname{Var}(b_{qj} \mid y)}` from the conditional
    variance (``ranef_se()``, lme4's ``condVar``; as lattice's ``dotplot(ranef(m, condVar = TRUE))``), the groups
    sorted by the estimate from bottom to top. Groups whose interval excludes 0 are drawn as squares in the
    second colour (``ax.lines[1]``, their intervals ``ax.collections[1]``), the others as dots
    (``ax.lines[0]``, ``ax.collections[0]``). ``effect``: a random effect's name (default the first,
    usually ``Intercept``).

    The intervals describe the uncertainty about each group's own effect given the estimates (they ignore the
    estimation of :math:`\beta` and :math:`\tau`); they are not a multiple-comparison procedure.
    """
    _check_mixed(fit, "caterpillar_plot")
    effect = _effect(fit, effect)
    level = check_scalar(level, "level", minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True)
    ax = _axes(ax)
    estimate = fit.ranef[effect].to_numpy()
    half = stats.norm.ppf((1 + level) / 2) * fit.ranef_se()[effect].to_numpy()
    order = np.argsort(estimate, kind="stable")
    est, hw, rank = estimate[order], half[order], np.arange(order.size)
    excludes = (est - hw > 0) | (est + hw < 0)
    for k, (mask, marker, label) in enumerate([(~excludes, "o", "interval covers 0"),
                                               (excludes, "s", "interval excludes 0")]):
        color = OKABE_ITO[0] if k == 0 else OKABE_ITO[3]
        ax.hlines(rank[mask], est[mask] - hw[mask], est[mask] + hw[mask], color=color, linewidth=0.8,
                  alpha=0.7 if k == 0 else 1.0)
        ax.plot(est[mask], rank[mask], linestyle="", marker=marker, markersize=2.5, color=color, label=label)
    ax.axvline(0, color="0.3", linewidth=0.8)
    ax.set_yticks([])
    ax.set_ylabel(f"groups, sorted by the estimate ({order.size})")
    ax.set_xlabel(f"{effect}: empirical-Bayes estimate, {100 * level:g}% interval")
    return ax


def pooling_plot(fit, x: str, groups=None, ax=None, max_groups: int = 6):
    r"""No, complete and partial pooling in one figure (Gelman & Hill 2007, ch. 12): for some groups, their
    data, their own OLS line (no pooling), and their empirical-Bayes line (partial pooling), with the OLS line
    of all the data ignoring the groups (complete pooling).

    - no pooling: group :math:`j`'s least-squares line of :math:`y` on ``x``, fitted to its rows alone
      (dashed);
    - partial pooling: the fit's conditional fitted values :math:`x_{ij}'\hat\beta + z_{ij}'\hat b_j` of the
      group's rows (``fit.fitted["conditional"]``), a straight line in ``x`` (solid);
    - complete pooling: the least-squares line of :math:`y` on ``x`` over all rows (black, thick).

    The partial-pooling line lies between the other two, the closer to the complete-pooling line the smaller
    the group (its reliability, :meth:`hlmlib.MixedResult.reliability`). ``x`` must be a column of a formula
    fit's data, and the only level-1 variable of the model (others constant within groups: level-2
    variables), so that the fitted values of a group are a line in ``x``. ``groups``: the group labels to draw
    (default: ``max_groups`` groups spread over the range of group sizes, smallest to largest, among the groups
    where ``x`` takes at least two values, i.e. that have a line of their own; a chosen group without one is an
    error).

    Lines in the order drawn: per group, its no-pooling line then its partial-pooling line, then the
    complete-pooling line; the data are one PathCollection per group.

    References
    ----------
    Gelman & Hill (2007), *Data Analysis Using Regression and Multilevel/Hierarchical Models*, secs. 12.2-12.3.
    """
    _check_mixed(fit, "pooling_plot")
    if not isinstance(x, str) or fit._data is None or x not in fit._data.columns:
        raise InputError(f"x must name a column of a formula fit's data, got {x!r}")
    max_groups = check_scalar(max_groups, "max_groups", integer=True, minimum=1)
    column = fit._data[x]
    if not pd.api.types.is_numeric_dtype(column) or column.isna().any():
        raise InputError(f"x must be a numeric column without missing values in the fit's rows; {x!r} is "
                         f"{column.dtype} with {int(column.isna().sum())} missing")
    xv = column.to_numpy(dtype=float)
    y, conditional, codes = fit._y, fit.fitted["conditional"].to_numpy(), fit._codes
    sizes = fit._cp.n_obs
    if groups is None:
        by_group = pd.Series(xv).groupby(codes)
        has_line = np.flatnonzero((by_group.max() - by_group.min()).reindex(range(fit.ngroups), fill_value=0) > 0)
        if not has_line.size:
            raise InputError(f"{x!r} is constant within every group: no group has a line of its own")
        by_size = has_line[np.argsort(sizes[has_line], kind="stable")]
        chosen = list(dict.fromkeys(by_size[np.linspace(0, by_size.size - 1, min(max_groups, by_size.size)).round()
                                            .astype(int)]))
    else:
        wanted = [groups] if np.isscalar(groups) else list(groups)
        chosen = list(fit.group_labels.get_indexer(pd.Index(wanted)))
        if not wanted or min(chosen) < 0:
            raise InputError(f"groups must be labels of the fit's groups; not found: "
                             f"{[w for w, c in zip(wanted, chosen) if c < 0] or wanted}")
    lines = []                                   # (rows, own intercept and slope) per group, all checked first
    for j in chosen:
        rows = codes == j
        xj, fj = xv[rows], conditional[rows]
        if np.ptp(xj) == 0:
            raise InputError(f"{x!r} is constant in group {fit.group_labels[j]!r}: it has no line of its own")
        D = np.column_stack([np.ones(xj.size), xj])
        if np.abs(fj - D @ np.linalg.lstsq(D, fj, rcond=None)[0]).max() > 1e-8 * max(np.abs(fj).max(), 1.0):
            raise InputError(f"the fitted values of group {fit.group_labels[j]!r} are not a line in {x!r}: the model "
                             "has other level-1 variables; pooling_plot needs x to be its only one")
        lines.append((rows, np.linalg.lstsq(D, y[rows], rcond=None)[0]))
    ax = _axes(ax)
    for k, (rows, own) in enumerate(lines):
        xj, yj, fj = xv[rows], y[rows], conditional[rows]
        color = OKABE_ITO[k % len(OKABE_ITO)]
        grid = np.array([xj.min(), xj.max()])
        ax.scatter(xj, yj, s=8, color=color, alpha=0.35)
        ax.plot(grid, own[0] + own[1] * grid, color=color, linestyle="--", linewidth=1.2,
                label="no pooling (the group's OLS)" if k == 0 else None)
        order = np.argsort(xj, kind="stable")
        ax.plot(xj[order], fj[order], color=color, linestyle="-", linewidth=1.8,
                label="partial pooling (EB)" if k == 0 else None)
    D = np.column_stack([np.ones(xv.size), xv])
    pooled = np.linalg.lstsq(D, y, rcond=None)[0]
    grid = np.array([xv.min(), xv.max()])
    ax.plot(grid, pooled[0] + pooled[1] * grid, color="black", linewidth=2.5, label="complete pooling (OLS)")
    ax.set_xlabel(x)
    ax.set_ylabel("response")
    ax.legend()
    return ax


# ----------------------------------------------------------------------------------------------------------------
# residuals

def qq_plot(fit, kind: str = "ranef", effect=None, ax=None):
    r"""A Q-Q plot of a mixed fit's residuals (R&B 2002, ch. 9), with the line :math:`y = x`.

    - ``kind="ranef"``: the standardised empirical-Bayes residuals :math:`\hat b_{qj} / \mathrm{sd}(\hat b_{qj})`
      of ``effect`` (default the first random effect), with the marginal standard deviation
      (``ranef_se("marginal")``, so that under the model they are N(0, 1)), against normal quantiles;
    - ``kind="level1"``: the level-1 residuals scaled by :math:`\hat\sigma` (``residuals(scaled=True)``)
      against normal quantiles;
    - ``kind="mahalanobis"``: the Mahalanobis distances of the groups' random effects
      (:meth:`hlmlib.MixedResult.mahalanobis`) against :math:`\chi^2_q` quantiles.

    The sorted values are ``ax.lines[0]``'s y data, the theoretical quantiles at R's ``ppoints``
    (:func:`plotting_positions`) its x data; the line :math:`y = x` is ``ax.lines[1]``.
    """
    _check_mixed(fit, "qq_plot")
    if effect is not None and kind != "ranef":
        raise InputError("effect= goes with kind='ranef'")
    if kind == "ranef":
        effect = _effect(fit, effect)
        values = (fit.ranef[effect] / fit.ranef_se("marginal")[effect]).to_numpy()
        values = values[np.isfinite(values)]                    # a zero variance (boundary) has no scale
        dist, what = stats.norm, f"standardised EB residual ({effect})"
    elif kind == "level1":
        values, dist, what = fit.residuals(scaled=True).to_numpy(), stats.norm, "scaled level-1 residual"
    elif kind == "mahalanobis":
        values = fit.mahalanobis()["distance"].dropna().to_numpy()
        dist, what = stats.chi2(fit.q), f"Mahalanobis distance (chi2 with {fit.q} df)"
    else:
        raise InputError(f"kind must be 'ranef', 'level1' or 'mahalanobis', got {kind!r}")
    if values.size == 0:
        raise InputError(f"qq_plot: nothing to plot for kind={kind!r}: the random-effect variance is 0 (a boundary "
                         "fit, tau singular), so the empirical-Bayes residuals are all 0 and have no scale")
    ax = _axes(ax)
    sample = np.sort(values)
    theoretical = dist.ppf(plotting_positions(sample.size))
    ax.plot(theoretical, sample, linestyle="", marker="o", markersize=3, color=OKABE_ITO[0])
    ends = np.array([min(theoretical[0], sample[0]), max(theoretical[-1], sample[-1])])
    ax.plot(ends, ends, color="0.3", linewidth=1)
    ax.set_xlabel("theoretical quantile" + (" (chi-square)" if kind == "mahalanobis" else " (normal)"))
    ax.set_ylabel(what)
    return ax


def residual_plot(fit, by=None, ax=None):
    r"""Level-1 residuals :math:`y - X\hat\beta - Z\hat b` against the conditional fitted values (R&B 2002, ch. 9),
    with a zero line: a spread that changes with the fitted values or between categories questions a common
    :math:`\sigma^2` (:meth:`hlmlib.MixedResult.level1_variance_test` tests it).

    ``by``: a column of the fit's data (e.g. the sector) whose categories get their own colour and legend
    entry (one PathCollection each, in sorted order of the categories; categories of mixed types sorted by
    their text); rows without a value (NaN) are drawn last, in grey, with a warning. None: one colour. Works for
    :func:`hlmlib.mixed` fits (``residuals()``, ``fitted["conditional"]``) and OLS fits (their residuals and
    fitted values).
    """
    from .mixed import MixedResult
    from .ols import OLSResult
    if isinstance(fit, MixedResult):
        fitted, resid, data = fit.fitted["conditional"].to_numpy(), fit.residuals().to_numpy(), fit._data
    elif isinstance(fit, OLSResult):
        fitted, resid = np.asarray(fit.fitted, float), np.asarray(fit.resid, float)
        data = getattr(fit.design, "data", None)
    else:
        raise InputError(f"residual_plot draws a mixed() or ols() fit, got {type(fit).__name__}")
    if by is not None and (not isinstance(by, str) or data is None or by not in data.columns):
        raise InputError(f"by must name a column of a formula fit's data, got {by!r}")
    ax = _axes(ax)
    if by is None:
        ax.scatter(fitted, resid, s=6, alpha=0.35, color=OKABE_ITO[0])
    else:
        labels = data[by].reset_index(drop=True)                 # the fit's rows, by position
        missing = labels.isna().to_numpy()
        for k, level in enumerate(_sorted_levels(labels[~missing].unique())):
            rows = (labels == level).to_numpy() & ~missing
            ax.scatter(fitted[rows], resid[rows], s=6, alpha=0.35, color=OKABE_ITO[k % len(OKABE_ITO)],
                       label=f"{by} = {level}")
        if missing.any():                                        # drawn and said, not dropped
            warnings.warn(f"residual_plot: {missing.sum()} of {missing.size} rows have no value of {by!r} (NaN); "
                          f"they are drawn in grey as '{by} missing'", stacklevel=2)
            ax.scatter(fitted[missing], resid[missing], s=6, alpha=0.35, color="0.5",
                       label=f"{by} missing ({missing.sum()})")
        ax.legend(markerscale=2)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("fitted value")
    ax.set_ylabel("level-1 residual")
    return ax


# ----------------------------------------------------------------------------------------------------------------
# Monte Carlo results: rates and estimates against a design parameter, sampling distributions

#: The matplotlib properties a ``styles`` entry may set (one dict per series).
STYLE_KEYS = frozenset({"color", "linestyle", "ls", "linewidth", "lw", "marker", "markersize", "ms",
                        "markerfacecolor", "mfc", "markeredgecolor", "mec", "alpha", "zorder", "label"})


#: The properties of a band (``marginal_effect_plot``'s ``band_style``), a filled area or two edge lines.
BAND_KEYS = frozenset({"color", "linestyle", "ls", "linewidth", "lw", "alpha", "label"})


def _style_dict(style, what: str, allowed=STYLE_KEYS) -> dict:
    """A dict of matplotlib line properties among ``allowed``, short names (``ls``, ``lw``, ...) spelt out, every
    value checked now (colours, markers, line styles, numbers; alpha in [0, 1]) rather than when the figure is
    drawn."""
    if not isinstance(style, dict):
        raise InputError(f"{what} must be a dict of line properties (color, linestyle, marker, ...), got {style!r}")
    unknown = sorted(str(k) for k in style if k not in allowed)
    if unknown:
        raise InputError(f"{what} has unknown properties {unknown}; allowed: {sorted(allowed)}")
    style = dict(style)
    for short, long in (("ls", "linestyle"), ("lw", "linewidth"), ("ms", "markersize"), ("mfc", "markerfacecolor"),
                        ("mec", "markeredgecolor")):
        if short in style:
            style[long] = style.pop(short)
    for key in ("color", "markerfacecolor", "markeredgecolor"):
        if key in style and not mpl.colors.is_color_like(style[key]):
            raise InputError(f"{what}: {key} must be a matplotlib colour, got {style[key]!r}")
    for key in ("linewidth", "markersize", "zorder", "alpha"):
        if key in style and style[key] is not None:
            check_scalar(style[key], f"{what}: {key}", minimum=None if key == "zorder" else 0,
                         maximum=1 if key == "alpha" else None)
    if "label" in style and style["label"] is not None and not isinstance(style["label"], str):
        raise InputError(f"{what}: label must be a string or None, got {style['label']!r}")
    try:                                          # matplotlib's own check of markers and line styles
        mpl.lines.Line2D([], [], **{k: style[k] for k in ("marker", "linestyle") if k in style})
    except (ValueError, TypeError) as error:
        raise InputError(f"{what}: {error}") from None
    return style


def _series_styles(names, styles) -> dict:
    """One style per series: the book's cycle (colour, line style and marker change together, series k taking
    the k-th of each), updated by ``styles[name]`` where given."""
    if styles is None:
        styles = {}
    if not isinstance(styles, dict):
        raise InputError(f"styles must be a dict {{series name: {{property: value}}}}, got {type(styles).__name__}")
    unknown = [k for k in styles if k not in names]
    if unknown:
        raise InputError(f"styles names {unknown}, which are not series of the data ({list(names)})")
    colors, lines, markers = OKABE_ITO[:6] + ["#000000", "0.45"], ["-", "--", "-.", ":"], "osD^vPX*"
    out = {}
    for k, name in enumerate(names):
        base = {"color": colors[k % len(colors)], "linestyle": lines[k % len(lines)],
                "marker": markers[k % len(markers)]}
        out[name] = base | _style_dict(styles.get(name, {}), f"styles[{name!r}]")
    return out


def _design_table(table, what: str, *, minimum=None, maximum=None) -> pd.DataFrame:
    """A DataFrame (or Series) of Monte Carlo results: numeric design values as the index, one column per
    series, numbers (NaN: not computed) within the bounds."""
    if isinstance(table, pd.Series):
        table = table.to_frame(table.name if table.name is not None else "")
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise InputError(f"{what} must be a non-empty DataFrame (index: the design parameter, one column per "
                         f"series) or a Series, got {type(table).__name__}")
    if not pd.api.types.is_numeric_dtype(table.index) or pd.api.types.is_bool_dtype(table.index) \
            or not np.isfinite(table.index.to_numpy(dtype=float)).all():
        raise InputError(f"{what}'s index must hold the design parameter's finite numeric values, got "
                         f"{list(table.index)[:5]}")
    if not table.columns.is_unique:
        repeated = list(dict.fromkeys(table.columns[table.columns.duplicated()]))
        raise InputError(f"{what} has repeated column name(s) {repeated}: each series needs its own name")
    bad = [c for c in table.columns
           if not pd.api.types.is_numeric_dtype(table[c]) or pd.api.types.is_bool_dtype(table[c])]
    if bad:
        raise InputError(f"{what}: columns {bad} are not numeric")
    values = table.to_numpy(dtype=float)
    if np.isinf(values).any():
        raise InputError(f"{what} holds infinite values")
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise InputError(f"{what} holds no values (all NaN)")
    if (minimum is not None and finite.min() < minimum) or (maximum is not None and finite.max() > maximum):
        raise InputError(f"{what} must lie in [{minimum}, {maximum}]; it ranges from {finite.min():g} to "
                         f"{finite.max():g}")
    return table.sort_index()


def _log_design_axis(ax, values) -> None:
    """A logarithmic x axis with a plain tick at each design value (and no minor ticks)."""
    values = np.unique(np.asarray(values, float))
    if values.min() <= 0:
        raise InputError("logx=True needs positive design values")
    ax.set_xscale("log")
    ax.set_xticks(values, labels=[f"{v:g}" for v in values])
    ax.minorticks_off()


def _dodged(x, k: int, m: int, dodge: float, logx: bool):
    r"""Series ``k`` of ``m`` moved sideways by :math:`(k - (m-1)/2)` times ``dodge`` (a factor
    :math:`e^{(k - (m-1)/2)\,\text{dodge}}` on a log axis)."""
    shift = (k - (m - 1) / 2) * dodge
    return x * np.exp(shift) if logx else x + shift


def _z(level: float) -> float:
    return float(stats.norm.ppf((1 + level) / 2))


def _wilson_interval(p, replications, level: float = 0.95):
    """Wilson's (1927) score interval (low, high) for proportions ``p`` out of ``replications`` independent
    trials (the formula in :func:`mc_rate_plot`)."""
    p = check_finite_array(p, "p", numbers_only=True)
    if p.min() < 0 or p.max() > 1:
        raise InputError(f"p must be proportions in [0, 1], got values from {p.min():g} to {p.max():g}")
    R = check_scalar(replications, "replications", integer=True, minimum=1)
    z = _z(check_alpha(level, "level"))
    centre = (p + z ** 2 / (2 * R)) / (1 + z ** 2 / R)
    half = z / (1 + z ** 2 / R) * np.sqrt(p * (1 - p) / R + z ** 2 / (4 * R ** 2))
    return centre - half, centre + half


def mc_rate_plot(rates, replications=None, nominal: float = 0.05, level: float = 0.95, band: bool = True,
                 intervals=None, styles=None, logx: bool = False, dodge: float = 0.0, ax=None):
    r"""Monte Carlo rejection rates (or coverage rates) of several methods against a design parameter, with the
    nominal level and the Monte Carlo band of an exact procedure.

    ``rates``: a DataFrame whose index is the design parameter (number of clusters, cluster size, a
    correlation, ...) and whose columns are the methods, each value the share of ``replications`` independent
    replications in which the test rejected (or the interval covered); NaN where a method was not run (its
    line joins the other points). Each method is a line with markers (``ax.lines[k]`` for column ``k``, in the
    columns' order), styled by ``styles`` (``{column: {"color": ..., "linestyle": ..., "marker": ...}}``,
    default the book's cycle).

    - the nominal level :math:`p_0` (``nominal``; 0.05 for a 5% test, 0.95 for the coverage of 95% intervals)
      is a thin horizontal line;
    - ``band``: the grey band :math:`p_0 \pm z\sqrt{p_0(1 - p_0)/R}`, :math:`z = \Phi^{-1}((1+\text{level})/2)`,
      where the rate of an exact procedure falls in a share ``level`` of Monte Carlo experiments of
      :math:`R` replications (its rate is binomial(:math:`R, p_0`)/:math:`R`): a rate outside it is evidence of
      a size (coverage) distortion (``ax.patches[0]``, its corners :math:`p_0 \pm` half-width);
    - ``intervals``: each point's own ``level`` Monte Carlo interval, ``"binomial"``
      (:math:`\hat p \pm z\sqrt{\hat p(1-\hat p)/R}`) or ``"wilson"`` (Wilson's 1927 score interval,
      :math:`\frac{\hat p + z^2/(2R)}{1 + z^2/R} \pm \frac{z}{1 + z^2/R}\sqrt{\frac{\hat p(1-\hat p)}{R} +
      \frac{z^2}{4R^2}}`, as statsmodels' ``proportion_confint(method="wilson")``: inside [0, 1], of positive width
      at 0 and 1), drawn as error bars (``ax.collections``, one LineCollection per method); None for none.

    ``logx``: the design parameter on a log scale, a tick at each of its values. ``dodge``: the horizontal
    distance between neighbouring series (series :math:`k` of :math:`m` moved by :math:`(k - (m-1)/2)` times
    ``dodge``, on a log axis by the factor :math:`e^{(k - (m-1)/2)\,\text{dodge}}`), so that overlapping
    intervals stay visible. Returns the Axes.
    """
    nominal = check_alpha(nominal, "nominal")
    level = check_alpha(level, "level")
    band, logx = check_bool(band, "band"), check_bool(logx, "logx")
    dodge = check_scalar(dodge, "dodge")
    if intervals not in (None, "binomial", "wilson"):
        raise InputError(f"intervals must be None, 'binomial' or 'wilson', got {intervals!r}")
    table = _design_table(rates, "rates", minimum=0, maximum=1)
    if replications is None:
        if band or intervals is not None:
            raise InputError("replications (the number of Monte Carlo replications R) is needed for the band and "
                             "the intervals; pass it, or band=False and intervals=None")
        R = None
    else:
        R = check_scalar(replications, "replications", integer=True, minimum=1)
    styles = _series_styles(list(table.columns), styles)
    ax = _axes(ax)
    z = _z(level)
    for k, name in enumerate(table.columns):
        column = table[name].dropna()
        x = _dodged(column.index.to_numpy(dtype=float), k, table.shape[1], dodge, logx)
        p = column.to_numpy(dtype=float)
        style = {"label": str(name)} | styles[name]
        line, = ax.plot(x, p, **style)
        if intervals is not None:
            low, high = (_wilson_interval(p, R, level) if intervals == "wilson"
                         else (p - z * np.sqrt(p * (1 - p) / R), p + z * np.sqrt(p * (1 - p) / R)))
            ax.vlines(x, low, high, color=line.get_color(), linewidth=1.0)
    if band:
        half = z * np.sqrt(nominal * (1 - nominal) / R)
        ax.axhspan(nominal - half, nominal + half, color="0.8", alpha=0.6, linewidth=0, zorder=0)
    ax.axhline(nominal, color="0.3", linewidth=0.8)
    if logx:
        _log_design_axis(ax, table.index)
    if table.index.name is not None:
        ax.set_xlabel(str(table.index.name))
    ax.set_ylabel("rejection rate" if nominal < 0.5 else "coverage rate")
    return ax


def mc_estimate_plot(estimates, se=None, theory=None, level: float = 0.95, reference=None, connect: bool = False,
                     styles=None, logx: bool = False, dodge: float = 0.0, ax=None):
    r"""Monte Carlo estimates (a mean bias, a ratio of standard errors, a relative efficiency, ...) of several
    series against a design parameter, with their Monte Carlo intervals and the values theory predicts.

    ``estimates``: a DataFrame whose index is the design parameter and whose columns are the series (NaN: not
    computed). ``se``: their Monte Carlo standard errors, a DataFrame of the same shape (e.g. the standard
    deviation across replications over :math:`\sqrt R`, or across independent blocks over the square root of
    their number), drawn as error bars :math:`\hat\theta \pm z\,\mathrm{se}`,
    :math:`z = \Phi^{-1}((1+\text{level})/2)`; None for none. A NaN standard error beside an estimate is refused
    (the point would look exact). Each series is ``ax.containers[k]`` (an
    ErrorbarContainer: its points ``ax.containers[k].lines[0]``), markers only unless ``connect``.

    ``theory``: exact or theoretical values, a DataFrame on any grid of the design parameter (its index),
    drawn as lines: a column named like a series of ``estimates`` in that series' colour and line style without
    a legend entry (the points and their curve belong together; thin when ``connect`` joins the points, which
    then make their own line), any other column in its own style (from ``styles``) with its name in the legend.
    ``reference``: a value drawn as a thin horizontal line (the truth, 1 for a ratio, 0 for a bias).
    ``styles``: ``{name: {property: value}}`` for series and theory columns (default: the book's cycle).
    ``logx``: the design parameter on a log scale, a tick at each design value of ``estimates``. ``dodge``: the
    horizontal distance between neighbouring series, as in :func:`mc_rate_plot` (the theory lines stay in place).
    Returns the Axes.
    """
    level = check_alpha(level, "level")
    connect, logx = check_bool(connect, "connect"), check_bool(logx, "logx")
    dodge = check_scalar(dodge, "dodge")
    table = _design_table(estimates, "estimates")
    if se is not None:
        se = _design_table(se, "se", minimum=0)
        if list(se.columns) != list(table.columns) or not se.index.equals(table.index):
            raise InputError("se must have the index and columns of estimates (one standard error per estimate)")
        lacking = se.isna().to_numpy() & table.notna().to_numpy()
        if lacking.any():
            cells = [(table.index[i], table.columns[j]) for i, j in zip(*np.nonzero(lacking))]
            raise InputError(f"se is NaN beside an estimate at {len(cells)} cell(s) (design value, series) "
                             f"{cells[:5]}: the point would be drawn with no error bar, as if exact; give its "
                             "standard error, or set the estimate to NaN too")
    if theory is not None:
        theory = _design_table(theory, "theory")
    if reference is not None:
        reference = check_scalar(reference, "reference")
    extra = [c for c in (theory.columns if theory is not None else []) if c not in table.columns]
    styles = _series_styles(list(table.columns) + extra, styles)
    ax = _axes(ax)
    z = _z(level)
    if theory is not None:
        for name in theory.columns:
            curve = theory[name].dropna()
            if name in table.columns:                         # the series' curve: thin when its points are joined
                style = {"color": styles[name]["color"], "linestyle": styles[name]["linestyle"]}
                style["linewidth"] = 0.9 if connect else styles[name].get("linewidth", 1.8)
            else:
                style = {"label": str(name)} | styles[name] | {"marker": None}
            ax.plot(curve.index.to_numpy(dtype=float), curve.to_numpy(dtype=float), **style)
    for k, name in enumerate(table.columns):
        rows = table[name].notna().to_numpy()
        x = _dodged(table.index.to_numpy(dtype=float)[rows], k, table.shape[1], dodge, logx)
        y = table[name].to_numpy(dtype=float)[rows]
        yerr = None if se is None else z * se[name].to_numpy(dtype=float)[rows]
        style = {"label": str(name)} | styles[name]
        if not connect:
            style["linestyle"] = "none"
        ax.errorbar(x, y, yerr=yerr, capsize=3, **style)
    if reference is not None:
        ax.axhline(reference, color="0.3", linewidth=0.8)
    if logx:
        _log_design_axis(ax, table.index)
    if table.index.name is not None:
        ax.set_xlabel(str(table.index.name))
    return ax


def sampling_plot(draws, kind: str = "step", bins=50, range=None, truth=None, reference=None, means: bool = False,
                  styles=None, truth_style=None, truth_label: str | None = "true value", reference_label=None,
                  ax=None):
    r"""The sampling distributions of one or several estimators (or standard errors, statistics) over Monte
    Carlo replications, against the true value and a reference density.

    ``draws``: a dict ``{label: 1-D array of the replications' values}`` (or one array). ``kind``:

    - ``"step"``: a density histogram outline per estimator (``ax.patches[k]``, a Polygon), so several overlay;
    - ``"bar"``: filled density histograms (one Rectangle per bin, in ``ax.patches``), for one or two;
    - ``"kde"``: a Gaussian kernel density estimate (``scipy.stats.gaussian_kde``, Scott's bandwidth) on 400
      points spanning ``range`` (``ax.lines[k]``).

    Histograms have ``bins`` (a number, or the edges) over ``range`` (default: the draws' range); a bar's height is
    its count over the total number of draws times its width, the density of the draws, so they compare with
    densities. When ``range`` or the edges leave some draws out, the bars stay the density of all the draws where
    shown (they integrate to the share of draws shown, not to 1: numpy's ``density=True`` would inflate them).
    A ``"kde"`` of constant draws is refused (no density). ``truth``: the true value (or the
    target), a vertical line (``truth_style``: its line properties, default black; ``truth_label``: its legend
    entry). ``reference``: a reference density, a function of a NumPy array (e.g. the normal density the
    theory predicts, ``lambda x: stats.norm.pdf(x, beta, sd)``), drawn as a black curve on 400 points of the
    range (``reference_label``). ``means``: a thin vertical line at each estimator's Monte Carlo mean, in its
    style. ``styles``: ``{label: {property: value}}`` (default: the book's cycle; ``"bar"`` uses the colour
    with transparency 0.6). Returns the Axes.
    """
    if kind not in ("step", "bar", "kde"):
        raise InputError(f"kind must be 'step', 'bar' or 'kde', got {kind!r}")
    if not isinstance(draws, dict):
        draws = {"": draws}
    if not draws:
        raise InputError("draws must hold at least one estimator's values")
    arrays = {name: check_finite_array(values, f"draws[{name!r}]", ndim=1) for name, values in draws.items()}
    if any(a.size < 2 for a in arrays.values()):
        raise InputError("each estimator needs at least two draws to show a distribution")
    constant = [name for name, a in arrays.items() if np.ptp(a) == 0]
    if kind == "kde" and constant:
        raise InputError(f"draws{constant} are constant: they have no kernel density (a point mass); use kind='step' "
                         "or 'bar'")
    means = check_bool(means, "means")
    if range is None:
        range = (min(a.min() for a in arrays.values()), max(a.max() for a in arrays.values()))
    else:
        range = tuple(check_finite_array(range, "range", ndim=1, numbers_only=True))
        if len(range) != 2 or not range[0] < range[1]:
            raise InputError(f"range must be (low, high) with low < high, got {range!r}")
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        bins = check_scalar(bins, "bins", integer=True, minimum=1)
    else:
        edges = check_finite_array(bins, "bins", ndim=1, numbers_only=True)
        if edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise InputError("bins must be a number of bins or increasing bin edges (at least two)")
        bins = edges
    if truth is not None:
        truth = check_scalar(truth, "truth")
    if reference is not None and not callable(reference):
        raise InputError(f"reference must be a density function of an array (e.g. lambda x: stats.norm.pdf(x)), "
                         f"got {type(reference).__name__}")
    truth_style = _style_dict({} if truth_style is None else truth_style, "truth_style")
    styles = _series_styles(list(arrays), styles)
    ax = _axes(ax)
    grid = np.linspace(range[0], range[1], 400)
    for name, values in arrays.items():
        style = styles[name]
        label = str(name) or None
        if kind == "kde":
            ax.plot(grid, stats.gaussian_kde(values)(grid), color=style["color"], linestyle=style["linestyle"],
                    linewidth=style.get("linewidth", 2), label=label)
        else:
            # each draw weighs 1/(n * width of its bin): the density of all n draws, also where some are not shown
            counts, edges = np.histogram(values, bins=bins, range=range)
            heights = counts / (values.size * np.diff(edges))
            look = ({"histtype": "step", "linestyle": style["linestyle"], "linewidth": style.get("linewidth", 1.6)}
                    if kind == "step" else {"alpha": style.get("alpha", 0.6)})
            ax.hist(edges[:-1], bins=edges, weights=heights, color=style["color"], label=label, **look)
        if means:
            ax.axvline(values.mean(), color=style["color"], linestyle=style["linestyle"], linewidth=1.0)
    if reference is not None:
        density = np.asarray(reference(grid), float)
        if density.shape != grid.shape or not np.isfinite(density).all():
            raise InputError("reference must return a finite density value for each point of an array")
        ax.plot(grid, density, color="#000000", linewidth=1.8, label=reference_label)
    if truth is not None:
        ax.axvline(truth, **({"color": "#000000", "linewidth": 1.2, "label": truth_label} | truth_style))
    ax.set_ylabel("density")
    return ax


# ----------------------------------------------------------------------------------------------------------------
# grouped data

def group_lines_plot(data, x: str, y: str, group: str, lines=None, groups=None, points: bool = True, pooled=True,
                     span: str = "group", color=None, ax=None):
    r"""Grouped data with one straight line per group, and the pooled least-squares line of all the rows.

    ``data``: a DataFrame with numeric columns ``x`` and ``y`` and a ``group`` column. Each group's line is

    - ``lines=None``: the group's own least-squares line of ``y`` on ``x`` (no pooling; a group whose ``x`` is
      constant has none and is refused);
    - ``lines`` a DataFrame indexed by group with two columns, intercept and slope (in that order), one row per
      group (a repeated group is refused): given lines (the true lines of simulated data, lines with a common
      slope, ...).

    drawn over the group's range of ``x`` (``span="group"``) or over the range of all rows (``"all"``), with
    the group's points (``points``) in the same colour. ``groups``: the groups to draw (default all; the
    pooled line still uses every row). ``pooled``: draw the least-squares line of ``y`` on ``x`` over all the
    rows of ``data`` (complete pooling), black and dashed; a string is its legend entry. ``color``: one colour
    for every group, a dict ``{group: colour}``, or None for the book's cycle (colour, line style and marker
    per group).

    Lines in the order drawn: one per group (in the order of ``groups``, else sorted), then the pooled line;
    the points are one PathCollection per group. Compare :func:`pooling_plot`, which adds a mixed model's
    partial-pooling lines. Returns the Axes.
    """
    if not isinstance(data, pd.DataFrame) or data.empty:
        raise InputError(f"data must be a DataFrame with rows, got "
                         f"{'an empty DataFrame' if isinstance(data, pd.DataFrame) else type(data).__name__}")
    for what, name in (("x", x), ("y", y), ("group", group)):
        if not isinstance(name, str) or name not in data.columns:
            raise InputError(f"{what} must name a column of data, got {name!r}")
    for name in (x, y):
        column = data[name]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column) \
                or not np.isfinite(column.to_numpy(dtype=float)).all():
            raise InputError(f"column {name!r} must be numeric with finite values (no NaN)")
    if data[group].isna().any():
        rows = list(np.flatnonzero(data[group].isna()))[:5]
        raise InputError(f"column {group!r} has missing group labels (rows {rows})")
    points = check_bool(points, "points")
    if span not in ("group", "all"):
        raise InputError(f"span must be 'group' or 'all', got {span!r}")
    if not (isinstance(pooled, (bool, np.bool_)) or isinstance(pooled, str)):
        raise InputError(f"pooled must be True, False or a legend label, got {pooled!r}")
    labels = data[group].to_numpy()
    present = _sorted_levels(pd.unique(labels))
    if groups is None:
        chosen = present
    else:
        chosen = [groups] if np.isscalar(groups) else list(groups)
        unknown = [g for g in chosen if g not in set(present)]
        if not chosen or unknown:
            raise InputError(f"groups must be labels of the column {group!r}; not found: {unknown or chosen}")
    if lines is not None:
        if not isinstance(lines, pd.DataFrame) or lines.shape[1] != 2:
            raise InputError("lines must be a DataFrame indexed by group with two columns: intercept and slope")
        missing = [g for g in chosen if g not in lines.index]
        if missing:
            raise InputError(f"lines has no row for the groups {missing[:5]}")
        repeated = list(dict.fromkeys(lines.index[lines.index.duplicated()]))
        if repeated:
            raise InputError(f"lines has several rows for the group(s) {repeated[:5]}: one line (intercept, slope) "
                             "per group")
        check_finite_array(lines.loc[chosen].to_numpy(), "lines", ndim=2, numbers_only=True)
    if color is None:
        colors = {g: OKABE_ITO[k % len(OKABE_ITO)] for k, g in enumerate(chosen)}
    elif isinstance(color, dict):
        missing = [g for g in chosen if g not in color]
        if missing:
            raise InputError(f"color must give a colour for every group drawn; it has none for {missing[:5]}")
        invalid = {g: c for g, c in color.items() if not mpl.colors.is_color_like(c)}
        if invalid:
            raise InputError(f"color gives values that are not matplotlib colours (a name, '#rrggbb', an RGB "
                             f"tuple): {invalid}")
        colors = color
    elif mpl.colors.is_color_like(color):
        colors = {g: color for g in chosen}
    else:
        raise InputError(f"color must be a matplotlib colour, a dict {{group: colour}} or None, got {color!r}")
    cycle = color is None
    xv, yv = data[x].to_numpy(dtype=float), data[y].to_numpy(dtype=float)
    coefs = {}
    for g in chosen:
        rows = labels == g
        if lines is not None:
            coefs[g] = lines.loc[g].to_numpy(dtype=float)
        elif np.ptp(xv[rows]) == 0:
            raise InputError(f"{x!r} is constant in group {g!r}: it has no least-squares line of its own")
        else:
            D = np.column_stack([np.ones(rows.sum()), xv[rows]])
            coefs[g] = np.linalg.lstsq(D, yv[rows], rcond=None)[0]
    ax = _axes(ax)
    for k, g in enumerate(chosen):
        rows = labels == g
        ends = np.array([xv[rows].min(), xv[rows].max()]) if span == "group" else np.array([xv.min(), xv.max()])
        linestyle = ["-", "--", "-.", ":", (0, (5, 1, 1, 1))][k % 5] if cycle else "-"
        ax.plot(ends, coefs[g][0] + coefs[g][1] * ends, color=colors[g], linestyle=linestyle, linewidth=1.6)
        if points:
            ax.scatter(xv[rows], yv[rows], s=12, color=colors[g], alpha=0.6,
                       marker="osD^vPX*"[k % 8] if cycle else "o")
    if pooled is not False:
        D = np.column_stack([np.ones(xv.size), xv])
        b = np.linalg.lstsq(D, yv, rcond=None)[0]
        ends = np.array([xv.min(), xv.max()])
        ax.plot(ends, b[0] + b[1] * ends, color="#000000", linestyle="--", linewidth=2.0,
                label=pooled if isinstance(pooled, str) else "pooled OLS")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    return ax


def shrinkage_plot(fit, effect=None, against: str = "size", ax=None):
    r"""Shrinkage of a random coefficient: each group's own estimate (no pooling, open circle), an arrow to its
    empirical-Bayes estimate (partial pooling, filled diamond), and the level-2 prediction they are pulled
    towards (complete pooling, dashed), against the group's size or the reliability of its own estimate.

    The own estimate is what the EB estimate shrinks: the least-squares regression of the group's marginal
    residuals on its random-effects columns,

    .. math::

       \tilde u_j = (Z_j'Z_j)^{-1} Z_j'(y_j - X_j\hat\beta), \qquad
       \hat u_j = S_j \tilde u_j, \quad S_j = \hat\tau\left(\hat\tau + \hat\sigma^2 (Z_j'Z_j)^{-1}\right)^{-1}

    (:math:`\hat u_j` = ``fit.ranef``, :math:`S_j` = :meth:`hlmlib.MixedResult.shrinkage`). For the random
    coefficient ``effect`` (:math:`q`; default the first, usually the intercept) the arrow runs from
    :math:`c + \tilde u_{qj}` to :math:`c + \hat u_{qj}`. When every level-1 predictor has a random coefficient,
    :math:`\tilde u_j` is the group's own OLS coefficients minus their level-2 prediction,
    :math:`\hat\beta_j - W_j\hat\gamma` (R&B's unit-by-unit OLS, :mod:`hlmlib.lmm_diagnostics`); a level-1
    predictor with a fixed coefficient stays in :math:`X_j\hat\beta` at the common estimate, so with a random
    intercept alone :math:`\tilde u_{0j}` is the group's mean of :math:`y - X\hat\beta` (not the intercept of
    the group's own regression with its own slopes, which HLM's unit OLS and
    :meth:`hlmlib.MixedResult.reliability` use). When the coefficient's level-2 model is its fixed effect alone
    (a fixed effect of the same name, no level-2 predictors), :math:`c = \hat\gamma_q` and the ends are the group's coefficient (for a null model the group
    mean; with fixed level-1 slopes the group's mean of :math:`y` adjusted by them) and
    :math:`\hat\gamma_q + \hat u_{qj}`; with level-2 predictors :math:`c = 0` and they are deviations from the
    prediction.

    For a random intercept alone, :math:`S_j` is the number :math:`\lambda_j =
    \hat\tau_{00}/(\hat\tau_{00} + \hat\sigma^2/n_j)` (R&B 2002, eq. 3.56; ``shrinkage_factor()``): the EB
    point lies between the own point and :math:`c`, the fraction :math:`\lambda_j` of the way out from
    :math:`c`. With random slopes :math:`S_j` is a matrix, so a coefficient's EB estimate also moves with the
    group's other own estimates, and its arrow need not point at :math:`c`.

    ``against="size"``: the horizontal axis is :math:`n_j`; ``"reliability"``: the reliability of
    :math:`\tilde u_{qj}`, :math:`\hat\tau_{qq}/(\hat\tau_{qq} + \hat\sigma^2[(Z_j'Z_j)^{-1}]_{qq})` (R&B's
    per-group reliability, :meth:`hlmlib.MixedResult.reliability` ``(per_group=True)``, when every level-1
    predictor has a random coefficient; :math:`\lambda_j` for a random intercept alone). Groups without an own
    estimate (:math:`Z_j'Z_j` singular: fewer rows than random effects, or a random slope's variable constant in
    the group) are left out, with a warning. The own estimates are ``ax.collections[0]``'s offsets, the EB ones
    ``ax.collections[1]``'s, the arrows ``ax.texts`` (Annotations from ``xyann`` to ``xy``), the centre line
    ``ax.lines[0]``. Returns the Axes.

    References
    ----------
    Raudenbush & Bryk (2002), *Hierarchical Linear Models*, 2nd ed., secs. 3.5 and 4.5; Gelman & Hill (2007),
    sec. 12.2.
    """
    _check_mixed(fit, "shrinkage_plot")
    effect = _effect(fit, effect)
    if against not in ("size", "reliability"):
        raise InputError(f"against must be 'size' or 'reliability', got {against!r}")
    q = fit.re_names.index(effect)
    units = fit._unit_ols
    fixed_slopes = bool(units.level1_fixed)
    own_alone = units.n_level2[q] == 1 and effect in fit.params.index
    if fixed_slopes:                       # the regression on Z_j alone, y - X beta-hat at the common slopes
        units = fit._unit_regressions(project_fixed=False)
    units.warn_unusable("shrinkage_plot")
    centre = float(fit.params[effect]) if own_alone else 0.0
    use = units.usable
    own = centre + units.estimate[use, q]
    eb = centre + fit.ranef[effect].to_numpy()[use]
    if against == "size":
        xs, xlabel = np.asarray(fit._cp.n_obs, float)[use], "group size $n_j$"
    else:
        tau = fit.tau.to_numpy()[q, q]
        xs = tau / (tau + units.cov[use, q, q])
        xlabel = f"reliability of the group's own estimate ({effect})"
    ax = _axes(ax)
    ax.axhline(centre, color="0.2", linestyle="--", linewidth=1,
               label=f"complete pooling ($\\hat\\gamma$, {effect})" if own_alone else "level-2 prediction")
    for xj, a, b in zip(xs, own, eb):
        ax.annotate("", xy=(xj, b), xytext=(xj, a),
                    arrowprops=dict(arrowstyle="->", color="0.55", lw=0.7, shrinkA=0, shrinkB=1.5))
    ax.scatter(xs, own, s=16, facecolors="none", edgecolors=OKABE_ITO[1], zorder=3,
               label="no pooling (the group's own estimate)" if fixed_slopes else "no pooling (the group's OLS)")
    ax.scatter(xs, eb, s=10, color=OKABE_ITO[0], marker="D", zorder=3, label="partial pooling (EB)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(effect if own_alone else f"{effect}: deviation from the level-2 prediction")
    return ax
