"""Tables as text, HTML, LaTeX and Markdown (hlmlib.export), and tidy frames in broom's layout: the numbers
written are the table's, p-values follow R's format.pval, z tests show no df, nothing is truncated, and no
optional dependency (Jinja2, tabulate) is needed."""
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import hlmlib
from hlmlib.export import P_EPS, format_df, format_number, format_pvalue


@pytest.fixture(scope="module")
def hsb():
    return hlmlib.datasets.load_hsb()


@pytest.fixture(scope="module")
def ols_fit(hsb):
    return hlmlib.ols("mathach ~ ses * catholic + minority", hsb)


@pytest.fixture(scope="module")
def hlm(hsb):
    return hlmlib.mixed("mathach ~ ses * catholic + (1 + cses | school)", hsb)


def markdown_rows(text):
    """The body rows of the first pipe table in ``text``, as lists of unescaped cells."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    rows = [[re.sub(r"\\(.)", r"\1", c.strip()) for c in line.strip("|").split(" | ")] for line in lines]
    return rows[0], rows[2:]


def test_pvalues_follow_r_format_pval():
    # R: format.pval(c(1e-300, 1e-17, 2.3e-16, 0.0123456, 0.5), digits = 3) gives
    # "<2e-16" "<2e-16" "2.3e-16" "0.0123" "0.5" (eps = .Machine$double.eps)
    assert [format_pvalue(p) for p in (1e-300, 0.0, 1e-17, 2.3e-16, 0.0123456, 0.5)] == \
        ["<2e-16", "<2e-16", "<2e-16", "2.3e-16", "0.0123", "0.5"]
    assert P_EPS == np.finfo(float).eps and format_pvalue(P_EPS) != "<2e-16" and format_pvalue(np.nan) == "NaN"
    assert [format_df(d) for d in (7180.0, 159.0, 12.345, np.inf)] == ["7180", "159", "12.3", ""]
    assert [format_number(v) for v in (-1.94, 123.94, 0.0001234, np.nan)] == ["-1.940", "123.9", "0.0001234", "NaN"]


def test_coef_table_markdown_holds_the_tables_numbers(ols_fit):
    table = ols_fit.summary("CR2", "school")
    header, rows = markdown_rows(table.to_markdown(digits=6))
    assert header == ["", "estimate", "se", "df", "t", "p", "ci_low", "ci_high"]
    assert [r[0] for r in rows] == list(table.index)
    for row, (_, values) in zip(rows, table.iterrows()):
        for cell, column in zip(row[1:], header[1:]):
            if cell == "<2e-16":
                assert values[column] < P_EPS
            else:
                tolerance = {"p": 5e-3, "df": 1e-3}.get(column, 5e-6)          # p: 3 digits, df: 1 decimal
                np.testing.assert_allclose(float(cell), values[column], rtol=tolerance)
    assert table.to_markdown().startswith(table.caption.replace("~", "\\~").replace("*", "\\*")[:40])


def test_coef_table_latex(ols_fit):
    table = ols_fit.summary()
    assert (table["p"] < P_EPS).any()                        # the intercept's and ses's p-values are tiny
    latex = table.to_latex(label="tab:ols")
    assert latex.startswith("\\begin{table}[htbp]") and "\\label{tab:ols}" in latex
    assert "\\begin{tabular}{lrrrrrrr}" in latex and latex.count("\\toprule") == 1 and "\\bottomrule" in latex
    assert "\\textless{}2e-16" in latex and "<" not in latex.replace("\\textless{}", "")
    assert "95\\% intervals" in latex and "s\\textasciicircum{}2" in latex      # the caption, escaped
    body = table.to_latex(caption=False)
    assert body.startswith("\\begin{tabular}") and "\\caption" not in body
    assert len([line for line in body.splitlines() if line.endswith("\\\\")]) == 1 + len(table)


def test_z_tests_show_no_df_and_are_headed_z(hlm):
    summary = hlm.summary()
    assert np.isinf(summary.coefficients["df"]).all()
    for text in (str(summary), summary.to_markdown(), summary.to_latex(), summary._repr_html_()):
        assert "inf" not in text.lower().replace("information", "")
    header, _ = markdown_rows(summary.to_markdown())
    assert header == ["", "estimate", "se", "z", "p", "ci_low", "ci_high"]
    # with a finite df the column is back and the statistic is t
    header, _ = markdown_rows(hlm.coef_table(df="satterthwaite").to_markdown())
    assert header == ["", "estimate", "se", "df", "t", "p", "ci_low", "ci_high"]
    latex = summary.to_latex(label="tab:hlm")
    assert latex.count("\\begin{table}") == 2 and "Variance components" in latex and "\\label{tab:hlm}" in latex


def test_html_has_the_caption_and_every_row(hsb):
    many = hlmlib.ols("mathach ~ ses + C(school)", hsb)        # 161 terms: pandas would truncate at 60 rows
    table = many.summary()
    text = table._repr_html_()
    assert f"{table.caption.replace(chr(39), '&#x27;')}</caption>" in text
    assert text.count("<tr") == 1 + len(table) and "..." not in text
    assert len(repr(table).splitlines()) >= len(table) + 2
    assert "<caption" in many._repr_html_()                    # the result itself renders its summary


def test_results_render_in_jupyter(ols_fit, hlm):
    html = hlm._repr_html_()
    assert html.startswith("<p>Linear mixed model fit by REML: mathach ~ ses * catholic + (1 + cses | school)")
    assert html.count("<table") == 2 and "Variance components" in html
    assert ols_fit._repr_html_() == ols_fit.summary()._repr_html_()
    assert "<table" in hlmlib.etable([ols_fit, hlm])._repr_html_()


def test_etable_exports(ols_fit, hlm):
    table = hlmlib.etable([ols_fit, hlm], stars=True, names=["OLS", "HLM"])
    header, rows = markdown_rows(table.to_markdown())
    assert header == ["", "OLS", "HLM"] and len(rows) == len(table.frame)
    assert rows[0][1] == table.frame.iloc[0, 0]                  # stars unescaped back
    latex = table.to_latex(caption="Math achievement", label="tab:both")
    assert "\\caption{Math achievement}" in latex and latex.count("\\midrule") == 2   # header, then the footer
    assert "\\label{tab:both}" in latex and "Standard errors in parentheses" in latex
    assert str(table).splitlines()[-1].startswith("Standard errors in parentheses")


def test_tidy_frames_in_broom_layout(ols_fit, hlm):
    broom = ["term", "estimate", "std.error", "statistic", "p.value", "conf.low", "conf.high"]
    tidy = ols_fit.tidy(kind="HC1", alpha=0.1)
    table = ols_fit.summary("HC1", alpha=0.1)
    assert list(tidy.columns) == broom and list(tidy.term) == list(table.index)
    np.testing.assert_array_equal(tidy["std.error"], table["se"])
    np.testing.assert_array_equal(tidy["conf.low"], table["ci_low"])
    assert list(hlm.tidy(df="kenward-roger").columns) == broom
    np.testing.assert_array_equal(hlm.tidy(kind="CR2")["p.value"], hlm.coef_table(kind="CR2")["p"])
    assert hlm.summary().tidy().equals(hlm.tidy())
    effect = ols_fit.marginal_effect("ses", "catholic", at=[0, 1]).tidy()
    assert list(effect.columns) == ["term", "catholic"] + broom[1:]
    long = hlmlib.etable([ols_fit, hlm], names=["OLS", "HLM"]).tidy()
    assert list(long.columns) == ["model"] + broom
    assert (long.model == "OLS").sum() == len(ols_fit.params) and (long.model == "HLM").sum() == len(hlm.params)


def test_export_needs_neither_jinja2_nor_tabulate():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('jinja2', 'tabulate'):\n"
            "            raise ImportError(name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import hlmlib\n"
            "d = hlmlib.datasets.load_hsb()\n"
            "f = hlmlib.ols('mathach ~ ses', d)\n"
            "m = hlmlib.mixed('mathach ~ ses + (1 | school)', d)\n"
            "for t in (f.summary(), m.summary(), hlmlib.etable([f, m])):\n"
            "    t.to_latex(); t.to_markdown(); t._repr_html_(); str(t)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_dollar_bar_and_label_are_escaped_or_refused(hsb):
    """'$' in Markdown would start math (pandoc, GitHub, Jupyter); '|' in LaTeX's default OT1 encoding prints as
    an em-dash; a label with '%' or a brace breaks \\label{...}."""
    data = hsb.assign(**{"cost$": hsb.ses, "price$": hsb.meanses})
    fit = hlmlib.ols("mathach ~ Q('cost$') + Q('price$')", data)
    markdown = fit.summary().to_markdown()
    assert "$" not in markdown.replace("\\$", "")
    header, rows = markdown_rows(markdown)
    assert [r[0] for r in rows][1:] == ["Q('cost$')", "Q('price$')"]    # unescaped back: the terms
    hlm = hlmlib.mixed("mathach ~ cses + (1 + cses | school)", hsb)
    latex = hlm.summary().to_latex()
    assert "(1 + cses \\textbar{} school)" in latex and "|" not in latex.replace("\\textbar{}", "")
    for bad in ("tab:a%b", "tab:{x}", "tab:a\\b", "tab:a#1", "tab:a\nb"):
        with pytest.raises(hlmlib.InputError, match="label must be a string"):
            fit.summary().to_latex(label=bad)
        with pytest.raises(hlmlib.InputError, match="label must be a string"):
            hlmlib.etable([fit]).to_latex(label=bad)
    assert "\\label{tab:a-b_1}" in fit.summary().to_latex(label="tab:a-b_1")
