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
- :func:`residual_plot`: level-1 residuals against fitted values, by category.
"""
from __future__ import annotations

from contextlib import contextmanager

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from cycler import cycler

from .design import InputError, check_alpha, check_bool, check_scalar
from .lazy import stats

__all__ = ["OKABE_ITO", "book_style", "use_book_style", "coef_plot", "marginal_effect_plot", "caterpillar_plot",
           "pooling_plot", "qq_plot", "residual_plot", "plotting_positions"]

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


# ----------------------------------------------------------------------------------------------------------------
# coefficients and marginal effects

def coef_plot(fits, terms=None, kind=None, cluster=None, alpha: float = 0.05, names=None, ax=None):
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
    ``ax.collections[k]``, its points ``ax.lines[k]``.
    """
    from .tables import _per_model
    alpha = check_alpha(alpha)
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
    kinds, clusters = _per_model(kind, len(entries), "kind"), _per_model(cluster, len(entries), "cluster")
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
        color, marker = OKABE_ITO[k % len(OKABE_ITO)], "os^Dv<>p"[k % 8]
        ax.hlines(y, table["ci_low"].to_numpy()[rows], table["ci_high"].to_numpy()[rows], color=color, linewidth=1.6)
        ax.plot(table["estimate"].to_numpy()[rows], y, linestyle="", marker=marker, color=color, label=label or None)
    ax.axvline(0, color="0.4", linewidth=0.8, zorder=0)
    ax.set_yticks(np.arange(len(terms)), terms)
    ax.set_ylim(len(terms) - 0.5, -0.5)                                 # the first term on top
    ax.set_xlabel(f"estimate with {100 * (1 - alpha):g}% confidence interval")
    if m > 1:
        ax.legend()
    return ax


def marginal_effect_plot(table, ax=None, label: str | None = "estimated effect", band: str = "fill",
                         color=None, zero_line: bool = True):
    r"""A marginal-effect table (``fit.marginal_effect(x, by)``) as a line with its confidence band.

    The moderator (the table's first column) on the horizontal axis; the line is ``estimate``, the band runs
    from ``ci_low`` to ``ci_high`` (the table's own intervals: its covariance kind and df, e.g. CR2 with
    Satterthwaite df per point). ``band="fill"`` shades it, ``"lines"`` draws its two edges (dashed; to set
    several tables' bands side by side on one ``ax``), ``"none"`` leaves it out. ``zero_line`` draws
    :math:`y = 0`. The line is ``ax.lines[0]`` (of this call's lines); a filled band is a PolyCollection.

    References
    ----------
    Brambor, Clark & Golder (2006), Understanding interaction models, *Political Analysis* 14(1).
    """
    if not isinstance(table, pd.DataFrame) or not {"estimate", "ci_low", "ci_high"} <= set(table.columns) \
            or table.columns[0] in ("estimate", "se"):
        raise InputError("marginal_effect_plot draws the table of fit.marginal_effect(x, by): a DataFrame whose first "
                         "column is the moderator, with estimate, ci_low and ci_high")
    if band not in ("fill", "lines", "none"):
        raise InputError(f"band must be 'fill', 'lines' or 'none', got {band!r}")
    zero_line = check_bool(zero_line, "zero_line")
    if color is not None and not mpl.colors.is_color_like(color):
        raise InputError(f"color must be a matplotlib colour (a name, '#rrggbb', an RGB tuple), got {color!r}")
    ax = _axes(ax)
    by = table.columns[0]
    z = table[by].to_numpy(dtype=float)
    color = OKABE_ITO[0] if color is None else color
    line, = ax.plot(z, table["estimate"].to_numpy(), color=color, linewidth=2, label=label)
    level = table.attrs.get("alpha")
    band_label = "confidence band" if level is None else f"{100 * (1 - level):g}% confidence band"
    if band == "fill":
        ax.fill_between(z, table["ci_low"].to_numpy(), table["ci_high"].to_numpy(), color=color, alpha=0.25,
                        linewidth=0, label=band_label)
    elif band == "lines":
        ax.plot(z, table["ci_low"].to_numpy(), color=color, linestyle="--", linewidth=1.2, label=band_label)
        ax.plot(z, table["ci_high"].to_numpy(), color=color, linestyle="--", linewidth=1.2)
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
    (default: ``max_groups`` groups spread over the range of group sizes, smallest to largest).

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
    xv = fit._data[x].to_numpy(dtype=float)
    y, conditional, codes = fit._y, fit.fitted["conditional"].to_numpy(), fit._codes
    sizes = fit._cp.n_obs
    if groups is None:
        by_size = np.argsort(sizes, kind="stable")
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
    entry (one PathCollection each, in sorted order of the categories); None: one colour. Works for
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
        labels = data[by].to_numpy()
        for k, level in enumerate(pd.unique(np.sort(labels))):
            rows = labels == level
            ax.scatter(fitted[rows], resid[rows], s=6, alpha=0.35, color=OKABE_ITO[k % len(OKABE_ITO)],
                       label=f"{by} = {level}")
        ax.legend(markerscale=2)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("fitted value")
    ax.set_ylabel("level-1 residual")
    return ax
