r"""Tables as text, HTML, LaTeX and Markdown, with no dependency beyond the standard library.

hlmlib's tables (:class:`hlmlib.inference.CoefTable`, the mixed-model summary, :func:`hlmlib.tables.etable`) are
reduced to a :class:`TextTable` of formatted strings, which writes itself in each format: so a table reads
the same in a terminal, in Jupyter (``_repr_html_``), in a LaTeX paper and in a Markdown report. pandas'
``to_latex`` needs Jinja2 and ``to_markdown`` needs tabulate, neither of which hlmlib requires.

Numbers (:func:`format_number`, :func:`format_pvalue`, :func:`format_df`):

- estimates, standard errors, statistics and interval ends with ``digits`` significant digits (default 4,
  trailing zeros kept so that a column lines up: 1.940, not 1.94);
- p-values with 3 significant digits, and those below :data:`P_EPS` (the double-precision machine epsilon,
  :math:`2.2 \times 10^{-16}`) as ``<2e-16``: R's ``format.pval`` at its default ``eps =
  .Machine$double.eps`` prints exactly this (as in ``summary(lm)``), since smaller p-values are below the
  resolution at which their distributions are computed;
- degrees of freedom as integers when integral, else with one decimal; an infinite df (a normal, z,
  reference) is not printed as "inf": a table whose tests are all z tests drops its df column and heads
  its statistic "z" (:func:`coef_table_text`);
- NaN as ``NaN`` (a t or p that is undefined, e.g. for an essentially perfect fit), and a blank where a
  cell has no value (a correlation of a variance, a term a model does not have).

LaTeX output uses ``booktabs`` rules (``\usepackage{booktabs}``), as pandas' ``to_latex`` does, and escapes
LaTeX's special characters (``|`` as ``\textbar{}``: the default OT1 encoding prints it as an em-dash) and
refuses a ``label`` that would break ``\label{...}``; Markdown output is a GitHub/pandoc pipe table with
Markdown's special characters escaped (``$`` too, which pandoc, GitHub and Jupyter read as math); HTML output puts the caption in the table's ``<caption>`` (wrapped to the table's width by the
browser) and escapes everything.
"""
from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .design import InputError

__all__ = ["P_EPS", "TextTable", "format_number", "format_pvalue", "format_df", "escape_latex", "escape_markdown",
           "coef_table_text"]

#: p-values below this print as ``<2e-16``: R's ``format.pval`` default ``eps = .Machine$double.eps``.
P_EPS = float(np.finfo(float).eps)

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}
#: '$' too: pandoc, GitHub and Jupyter read $...$ as math
_MARKDOWN_SPECIAL = set("\\`*_[]|<>$^~")     # ^ and ~: pandoc's super- and subscripts
#: characters that would end or break ``\label{...}`` (a comment, a brace, a macro, a parameter)
_LABEL_FORBIDDEN = set("\\{}%#$&^~")


def format_number(value, digits: int = 4) -> str:
    """``value`` with ``digits`` significant digits; NaN as "NaN", None as a blank."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    value = float(value)
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    return f"{value:#.{digits}g}".rstrip(".")


def format_pvalue(p) -> str:
    """A p-value with 3 significant digits; below :data:`P_EPS` as ``<2e-16`` (R's ``format.pval``)."""
    if p is None:
        return ""
    p = float(p)
    if np.isnan(p):
        return "NaN"
    return "<2e-16" if p < P_EPS else f"{p:.3g}"


def format_df(df) -> str:
    """Degrees of freedom: an integer when integral, else one decimal; infinite (a z test) as a blank."""
    df = float(df)
    if np.isnan(df):
        return "NaN"
    if np.isinf(df):
        return ""
    return f"{df:.0f}" if df == round(df) else f"{df:.1f}"


def escape_latex(text: str) -> str:
    """``text`` with LaTeX's special characters escaped (for text mode)."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))


def escape_markdown(text: str) -> str:
    """``text`` with Markdown's special characters backslash-escaped."""
    return "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in str(text))


@dataclass
class TextTable:
    """A table of formatted strings: ``columns`` (the header, the first entry heads the row labels),
    ``rows`` (each a label and one cell per column), a ``caption`` above and ``notes`` below; ``rules`` are
    the row positions before which a horizontal rule is drawn (e.g. before a footer)."""

    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    notes: list[str] = field(default_factory=list)
    rules: list[int] = field(default_factory=list)

    def to_text(self, width: int = 100) -> str:
        """Plain text: the caption wrapped at ``width`` characters, the columns right-aligned."""
        widths = [max(len(str(row[j])) for row in [self.columns, *self.rows]) for j in range(len(self.columns))]

        def line(cells):
            return "  ".join(str(c).ljust(w) if j == 0 else str(c).rjust(w)
                             for j, (c, w) in enumerate(zip(cells, widths))).rstrip()

        wrap = lambda text: textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)  # noqa: E731
        out = wrap(self.caption) if self.caption else []
        out.append(line(self.columns))
        rule = "-" * len(line(self.columns))
        out.append(rule)
        for i, row in enumerate(self.rows):
            if i in self.rules:
                out.append(rule)
            out.append(line(row))
        out += [wrapped for note in self.notes for wrapped in wrap(note)]
        return "\n".join(out)

    def to_html(self) -> str:
        """An HTML table: the caption in ``<caption>``, numbers right-aligned, nothing truncated."""
        def cell(tag, text, left=False):
            style = ' style="text-align: left"' if left else ' style="text-align: right"'
            return f"<{tag}{style}>{html.escape(str(text))}</{tag}>"

        parts = ['<table class="hlmlib-table" border="0">']
        if self.caption:
            parts.append('<caption style="caption-side: top; text-align: left; white-space: normal">'
                         f"{html.escape(self.caption)}</caption>")
        parts.append("<thead><tr>" + "".join(cell("th", c, j == 0) for j, c in enumerate(self.columns))
                     + "</tr></thead><tbody>")
        for i, row in enumerate(self.rows):
            rule = ' style="border-top: 1px solid"' if i in self.rules else ""
            parts.append(f"<tr{rule}>" + cell("th", row[0], True) + "".join(cell("td", c) for c in row[1:]) + "</tr>")
        parts.append("</tbody></table>")
        parts += [f"<p><em>{html.escape(note)}</em></p>" for note in self.notes]
        return "".join(parts)

    def to_latex(self, caption: bool = True, label: str | None = None) -> str:
        r"""A LaTeX ``table`` (with ``\caption`` and, if given, ``\label``) around a ``tabular`` with booktabs
        rules, or the ``tabular`` alone with ``caption=False``; notes follow the tabular as a small paragraph."""
        if label is not None and (not isinstance(label, str) or not label.isprintable()
                                  or _LABEL_FORBIDDEN & set(label)):
            raise InputError(f"label must be a string such as 'tab:results', without any of "
                             f"{' '.join(sorted(_LABEL_FORBIDDEN))} or line breaks; got {label!r}")
        body = [r"\begin{tabular}{l" + "r" * (len(self.columns) - 1) + "}", r"\toprule",
                " & ".join(escape_latex(c) for c in self.columns) + r" \\", r"\midrule"]
        for i, row in enumerate(self.rows):
            if i in self.rules:
                body.append(r"\midrule")
            body.append(" & ".join(escape_latex(c) for c in row) + r" \\")
        body += [r"\bottomrule", r"\end{tabular}"]
        if self.notes:
            body.append(r"\par\smallskip{\footnotesize " + " ".join(escape_latex(n) for n in self.notes) + "}")
        if not caption:
            return "\n".join(body)
        head = [r"\begin{table}[htbp]", r"\centering"]
        if self.caption:
            head.append(r"\caption{" + escape_latex(self.caption) + "}")
        if label:
            if not self.caption:     # \label takes its number from \caption; without one \ref gives the section's
                raise InputError("label= needs a caption (LaTeX numbers a table's label from its \\caption): "
                                 "give caption=... as well")
            head.append(r"\label{" + label + "}")
        return "\n".join(head + body + [r"\end{table}"])

    def to_markdown(self) -> str:
        """A pipe table (GitHub, pandoc), the caption as a paragraph above, the notes below."""
        out = [escape_markdown(self.caption), ""] if self.caption else []
        out.append("| " + " | ".join(escape_markdown(c) for c in self.columns) + " |")
        out.append("|:--" + "".join("|--:" for _ in self.columns[1:]) + "|")
        out += ["| " + " | ".join(escape_markdown(c) for c in row) + " |" for row in self.rows]
        if self.notes:
            out += [""] + [escape_markdown(n) for n in self.notes]
        return "\n".join(out)


def coef_table_text(table: pd.DataFrame, caption: str = "", digits: int = 4) -> TextTable:
    """A coefficient table (columns of ``hlmlib.inference.COLUMNS``, and any others first, such as the
    moderator of a marginal-effects table) formatted for display: see the module docstring. With every df
    infinite (z tests) the df column is left out and the statistic is headed "z"."""
    df = table["df"].to_numpy(dtype=float) if "df" in table else np.array([])
    all_z = df.size > 0 and np.isinf(df).all()
    columns, formatters = [], []
    for name in table.columns:
        if name == "df":
            if all_z:
                continue
            formatter = format_df
        elif name == "p":
            formatter = format_pvalue
        else:
            formatter = lambda v: format_number(v, digits)     # noqa: E731
        columns.append(name)
        formatters.append(formatter)
    header = [""] + ["z" if (c == "t" and all_z) else str(c) for c in columns]
    rows = [[str(label)] + [f(table[c].iloc[i]) for c, f in zip(columns, formatters)]
            for i, label in enumerate(table.index)]
    return TextTable(header, rows, caption)
