r"""Several fits side by side in one regression table, as R's ``fixest::etable`` or ``stargazer``.

``etable([m1, m2], kind=["classical", "CR1"], cluster="school")`` or
``etable({"OLS": (m1, dict(kind="CR1", cluster="school")), "HLM": m2})``. The table prints as text,
renders as HTML in Jupyter, and writes LaTeX (``.to_latex()``) and Markdown (``.to_markdown()``) with no
dependency beyond the standard library (:mod:`hlmlib.export`); ``.tidy()`` gives one row per model and term.

Rows: one per term, the estimate with its standard error beneath in parentheses (stars optional),
then per column the covariance used, N, the number of clusters or groups, the variance components
(:math:`\tau`, :math:`\sigma^2`) and the criterion (:math:`-2` log-likelihood, REML or ML) of mixed
fits. Works with any result that has ``params`` and ``se`` (duck-typed): hlmlib's OLS and GLS
results, whose ``se(kind, cluster)`` picks the covariance, and mixed results, whose ``se()`` is
model-based.
"""
from __future__ import annotations

import inspect

import numpy as np
import pandas as pd

from .design import InputError, check_scalar, renamed_argument
from .export import TextTable

__all__ = ["etable", "ETable"]

#: R's ``summary.lm`` codes: ``***`` p < 0.001, ``**`` p < 0.01, ``*`` p < 0.05
DEFAULT_STARS = {0.001: "***", 0.01: "**", 0.05: "*"}


def _takes_kind(method) -> bool:
    """Whether ``se`` takes the OLS family's ``kind`` and ``cluster`` (a mixed result's ``se(kind)`` has no
    cluster: its columns stay model-based)."""
    try:
        return {"kind", "cluster"} <= set(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        return False


class _Column:
    """One fitted model with the covariance chosen for it, reduced to what the table shows."""

    def __init__(self, name, model, kind, cluster):
        if not hasattr(model, "params") or not hasattr(model, "se"):
            raise InputError(f"column {name!r}: a {type(model).__name__} has no params/se; "
                             f"etable takes fitted results (ols, gls, mixed ...)")
        self.name, self.model = name, model
        self.params = pd.Series(model.params, dtype=float)
        robust = _takes_kind(model.se)
        if not robust and (kind is not None or cluster is not None):
            raise InputError(f"column {name!r}: {type(model).__name__}.se() takes no kind/cluster "
                             f"(its standard errors are model-based); drop kind=/cluster= for it")
        if robust and kind is None:
            kind = "classical" if cluster is None else "CR1"      # as OLSResult.summary: CR1 with a cluster
        # a robust column's se, p and cluster count come from one summary (one covariance computation)
        table = self._summary_table(kind, cluster, robust)
        self.table = table
        self.pvalues = table["p"] if table is not None and "p" in table else None
        if robust and table is not None and "se" in table:
            self.se = pd.Series(table["se"], dtype=float)
        else:
            self.se = pd.Series(model.se(kind, cluster) if robust else model.se(), dtype=float)
        self.covariance = self._describe(kind, cluster, robust)
        self.footer = self._footer(kind, cluster, robust, table)

    def _summary_table(self, kind, cluster, robust):
        """The model's coefficient table (a DataFrame), or None if it has none."""
        try:
            out = self.model.summary(kind, cluster) if robust else self.model.summary()
        except (TypeError, AttributeError):
            return None
        table = out if isinstance(out, pd.DataFrame) else getattr(out, "coefficients", None)
        return table if isinstance(table, pd.DataFrame) else None

    def _describe(self, kind, cluster, robust):
        if not robust:
            return "model-based"
        if cluster is None:
            return str(kind)
        cname = cluster if isinstance(cluster, str) else (
            " & ".join(map(str, cluster)) if isinstance(cluster, tuple) else "cluster")
        return f"{kind} by {cname}"

    def _footer(self, kind, cluster, robust, table):
        m, rows = self.model, {}
        rows["N"] = f"{int(m.nobs):,}" if hasattr(m, "nobs") else ""
        groups = ""
        clustered = robust and cluster is not None
        G = table.attrs.get("n_clusters") if clustered and table is not None else None
        if clustered and G is None and hasattr(m, "covariance"):   # a summary that does not carry it
            G = m.covariance(kind, cluster).n_clusters
        if G is not None:
            groups = " x ".join(map(str, G)) if isinstance(G, tuple) else str(G)
        elif hasattr(m, "ngroups"):
            groups = str(m.ngroups)
        rows["Clusters / groups"] = groups
        vc = getattr(m, "variance_components", None)
        if isinstance(vc, pd.Series):
            for label, value in vc.items():
                rows[f"tau: {label}" if label != "residual variance" else "sigma^2 (residual)"] = value
        if hasattr(m, "llf") and hasattr(m, "reml"):
            rows["-2 log-likelihood"] = f"{-2 * m.llf:.3f} ({'REML' if m.reml else 'ML'})"
        extra = getattr(m, "table_footer", None)  # estimators may add their own lines (e.g. theta of RE-GLS)
        if isinstance(extra, dict):
            rows.update(extra)
        return rows


class ETable:
    r"""The table returned by :func:`etable`; prints as text, renders as HTML in notebooks.

    - ``frame``: the formatted strings, an estimate row and a standard-error row per term, then the
      footer (covariance, N, clusters or groups, variance components, criterion);
    - ``estimates`` and ``se``: the numbers (DataFrames, terms x models);
    - ``covariances``: the covariance kind of each column.
    """

    def __init__(self, columns, digits, stars):
        self.columns = columns
        names = [c.name for c in columns]
        terms = list(dict.fromkeys(t for c in columns for t in c.params.index))
        self.estimates = pd.DataFrame({c.name: c.params for c in columns}, index=terms)[names]
        self.se = pd.DataFrame({c.name: c.se for c in columns}, index=terms)[names]
        self.covariances = pd.Series({c.name: c.covariance for c in columns})
        self.digits, self.stars = digits, stars
        self.frame = self._build()

    def _stars(self, column, term):
        if not self.stars or column.pvalues is None or term not in column.pvalues:
            return ""
        p = column.pvalues[term]
        return next((mark for cut, mark in sorted(self.stars.items()) if p < cut), "")

    def _build(self) -> pd.DataFrame:
        fmt = f"{{:.{self.digits}f}}"
        rows, index = [], []
        for term in self.estimates.index:
            est, se = [], []
            for c in self.columns:
                if term in c.params:
                    est.append(fmt.format(c.params[term]) + self._stars(c, term))
                    se.append("(" + fmt.format(c.se[term]) + ")")
                else:
                    est.append("")
                    se.append("")
            rows += [est, se]
            index += [(term, "estimate"), (term, "se")]
        rows.append([c.covariance for c in self.columns])
        index.append(("Covariance", ""))
        footer_labels = list(dict.fromkeys(k for c in self.columns for k in c.footer))
        for label in footer_labels:
            values = [c.footer.get(label, "") for c in self.columns]
            if all(v == "" for v in values):
                continue
            rows.append([fmt.format(v) if isinstance(v, (float, np.floating)) else str(v) for v in values])
            index.append((label, ""))
        return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["row", "line"]),
                            columns=[c.name for c in self.columns])

    def _display(self) -> pd.DataFrame:
        labels = [term if line != "se" else "" for term, line in self.frame.index]
        return pd.DataFrame(self.frame.to_numpy(), index=labels, columns=self.frame.columns)

    @property
    def note(self) -> str:
        text = "Standard errors in parentheses."
        if self.stars:
            text += " " + ", ".join(f"{mark} p < {cut:g}" for cut, mark in sorted(self.stars.items()))
            text += " (t or z reference of each column's covariance)."
        return text

    def _text_table(self):
        shown = self._display()
        rows = [[str(label), *map(str, values)] for label, values in zip(shown.index, shown.to_numpy())]
        return TextTable(["", *map(str, shown.columns)], rows, notes=[self.note],
                         rules=[2 * len(self.estimates.index)])

    def __str__(self) -> str:
        return self._text_table().to_text(width=10_000)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self._text_table().to_html()

    def to_latex(self, caption: str | None = None, label: str | None = None) -> str:
        r"""The table as LaTeX: a ``table`` environment (with ``\caption{caption}`` and ``\label{label}`` when
        given) around a ``tabular`` with booktabs rules (``\usepackage{booktabs}``), the footer below a rule
        and the note under the table. No Jinja2 needed (unlike pandas' ``to_latex``)."""
        if caption is not None and not isinstance(caption, str):
            raise InputError(f"caption must be a string, got {caption!r}")
        table = self._text_table()
        table.caption = caption or ""
        return table.to_latex(True, label)

    def to_markdown(self) -> str:
        """The table as a Markdown pipe table, the note below it. No tabulate needed."""
        return self._text_table().to_markdown()

    def tidy(self) -> pd.DataFrame:
        """One row per model and term, in broom's layout with a ``model`` column first: ``model``, ``term``,
        ``estimate``, ``std.error``, ``statistic``, ``p.value``, ``conf.low``, ``conf.high``, from each column's
        coefficient table with the covariance the table shows (as ``modelsummary``'s long format)."""
        frames = []
        for column in self.columns:
            if column.table is not None and hasattr(column.table, "tidy"):
                frame = column.table.tidy()
            else:                                              # a duck-typed model without a coefficient table
                frame = pd.DataFrame({"term": list(map(str, column.params.index)), "estimate": column.params.to_numpy(),
                                      "std.error": column.se.reindex(column.params.index).to_numpy()})
            frame.insert(0, "model", column.name)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)


def _per_model(value, n, what):
    """One value per model: a list is one per model (a tuple too, for kind), anything else is one for all;
    a tuple of clusters is a two-way pair for every model, never a list of per-model clusters."""
    if isinstance(value, list) or (isinstance(value, tuple) and what == "kind"):
        if len(value) != n:
            raise InputError(f"{what}= has {len(value)} entries for {n} models; give one per model (a list) or one "
                             "for all" + (" (two-way clustering: a tuple of two, for all models)"
                                          if what == "cluster" else ""))
        return list(value)
    return [value] * n


def etable(models, kind=None, cluster=None, *, stars=False, digits: int = 3, names=None, kinds=None) -> ETable:
    r"""Line up fitted models in one table (rows: terms; columns: models), as fixest's ``etable``.

    Parameters
    ----------
    models : list or dict
        A list of results, or a dict ``{column name: result or (result, dict(kind=..., cluster=...))}``.
        Per-model settings in the dict form override ``kind=`` / ``cluster=``.
    kind : str, list or None
        One covariance kind for every robust-capable column (OLS, GLS: classical, HC0-HC5, HC4m, CR0-CR3),
        or a list with one per model (None for a mixed model, whose standard errors are model-based).
        None (the default) is, as in :meth:`hlmlib.OLSResult.summary`, classical for a column without a
        cluster and CR1 (Stata's ``vce(cluster)``) for one with a cluster.
    cluster : str, *array*, tuple, list or None
        Labels or a column name: one for all (used by the cluster-robust columns, and making a column
        without a kind CR1), or a *list* with one per model (None for a column without clustering). A
        *tuple* of two is two-way clustering (for all models; in a per-model list, for that model), so a
        list of per-model clusters is never read as a two-way pair.
    kinds : str, list or None
        The deprecated name of ``kind`` (a DeprecationWarning; removed in the next release).
    stars : bool or dict
        False, True (R's codes: ``***`` p < 0.001, ``**`` p < 0.01, ``*`` p < 0.05, from each column's
        own t or z test) or a dict ``{cutoff: mark}`` with cutoffs in (0, 1) and string marks.
    digits : int
        Decimals shown, an integer from 0 to 15.
    names : list or None
        Column names for a list of models (default "(1)", "(2)", ...).

    Returns
    -------
    ETable
        ``.frame``, ``.estimates``, ``.se``; text via ``print``, HTML in Jupyter.
    """
    if isinstance(models, dict):
        labels, entries = list(models), list(models.values())
    else:
        entries = list(models) if isinstance(models, (list, tuple)) else [models]
        if names is not None and not isinstance(names, (list, tuple)):
            raise InputError(f"names must be a list of column names, got {names!r}")
        labels = list(names) if names is not None else [f"({i + 1})" for i in range(len(entries))]
    if not entries:
        raise InputError("etable needs at least one fitted model")
    if len(labels) != len(entries):
        raise InputError(f"names has {len(labels)} entries for {len(entries)} models")
    if len(set(map(str, labels))) != len(labels):
        raise InputError(f"column names must differ, got {list(labels)}")
    kind = renamed_argument("kind", kind, "kinds", kinds)
    kind_list = _per_model(kind, len(entries), "kind")
    cluster_list = _per_model(cluster, len(entries), "cluster")
    table_wide_kind = not isinstance(kind, (list, tuple))
    table_wide_cluster = not isinstance(cluster, list)
    columns = []
    for label, entry, kind, clus in zip(labels, entries, kind_list, cluster_list):
        explicit = False
        if isinstance(entry, tuple):
            if len(entry) != 2 or not isinstance(entry[1], dict):
                raise InputError(f"column {label!r}: give (result, dict(kind=..., cluster=...))")
            entry, options = entry
            unknown = set(options) - {"kind", "cluster"}
            if unknown:
                raise InputError(f"column {label!r}: unknown option(s) {sorted(unknown)}; use kind= and cluster=")
            kind, clus = options.get("kind", kind), options.get("cluster", clus)
            explicit = bool(options)
        if not explicit and not _takes_kind(getattr(entry, "se", None)):
            # a table-wide kind/cluster does not apply to a model-based (mixed) column
            kind = None if table_wide_kind else kind
            clus = None if table_wide_cluster else clus
        if not explicit and table_wide_cluster and kind is not None and not str(kind).upper().startswith("CR"):
            clus = None  # a table-wide cluster= applies to the cluster-robust columns (and those without a kind)
        columns.append(_Column(str(label), entry, kind, clus))
    return ETable(columns, check_scalar(digits, "digits", integer=True, minimum=0, maximum=15), _check_stars(stars))


def _check_stars(stars) -> dict:
    """``False``, ``True`` (R's codes) or a dict ``{cutoff in (0, 1): mark}``; anything else refused."""
    if isinstance(stars, (bool, np.bool_)):
        return DEFAULT_STARS if stars else {}
    if not isinstance(stars, dict):
        raise InputError(f"stars must be True, False or a dict {{cutoff: mark}} such as {DEFAULT_STARS}, got {stars!r}")
    checked = {}
    for cutoff, mark in stars.items():
        cutoff = check_scalar(cutoff, f"the stars cutoff {cutoff!r}", minimum=0, maximum=1,
                              exclusive_minimum=True, exclusive_maximum=True)
        if not isinstance(mark, str):
            raise InputError(f"the stars mark for p < {cutoff:g} must be a string such as '*', got {mark!r}")
        checked[cutoff] = mark
    return checked
