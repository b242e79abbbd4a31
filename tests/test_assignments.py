"""The assignments and their grader.

Every assignment, generically: the instructor version scores full marks; the student version zero, also with its
test cells deleted or replaced by ``pass``; the instructor version keeps full marks with scratch cells added at the
top, with its visible tests edited to fail and moved, and under a course site's renamed file name. Plausible wrong
answers each lose the points they should, and a mistake in an earlier question is not counted again in a later
one; honest alternatives keep full marks; attempts to game the grader score nothing, whether the static check
sees them or not; a run cannot write outside its folder, read outside the folders the grader allows (the
repository and its history among those refused), run code compiled from a string the static check would refuse,
start processes or threads or load native code; and code that defeats every defence inside the kernel (the audit
hook turned off) still finds neither the solutions nor the reference values, which the kernel's sandbox does not
show, and a cached reference file changed outside a batch is not used. A cell that runs too long, a notebook over
its limit per file or a kernel that dies ends that file's run with a report while the other files and the CSV still
come; a run keeps a bounded output; an unknown notebook is an error. The notebooks are graded in one parallel run of
the real command (``make.py grade``), reused by every check; the rest are unit checks.
"""
import ast
import asyncio
import copy
import csv
import hashlib
import html
import json
import os
import re
import subprocess
import warnings
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "assignments"))
import grader  # noqa: E402  (assignments/grader.py)
import gradingkit  # noqa: E402
import integrity  # noqa: E402
import make  # noqa: E402

CATALOGUE = make.assignments()
IDS = sorted(CATALOGUE)
MAKE = [sys.executable, str(ROOT / "assignments" / "make.py")]


def _kind(cell):
    return make.cell_meta(cell).get("kind")


def _replace(nb, cell_id, source):
    """A copy of ``nb`` with the cell ``cell_id``'s code replaced: a student's wrong answer."""
    out = copy.deepcopy(nb)
    cell = next(c for c in out.cells if make.cell_key(c) == cell_id)
    cell.source = source
    return out


def _scratch(source, markdown=False):
    cell = nbformat.v4.new_markdown_cell(source) if markdown else nbformat.v4.new_code_cell(source)
    cell.metadata = {}
    return cell


ABOVE_THE_PLACEHOLDER = "My answer, typed in a cell I added above the placeholder."


def _variants(instructor, student):
    """The generic checks' submissions for one assignment: name -> (notebook, file name or None)."""
    damaged = copy.deepcopy(student)                 # visible tests deleted, or replaced by pass, in turn
    tests = [c for c in damaged.cells if _kind(c) == "test"]
    for c in tests[1::2]:
        c.source = "pass"
    damaged.cells = [c for c in damaged.cells if c not in tests[::2]]
    for n, c in reversed(list(enumerate(damaged.cells))):     # and a written answer typed above its placeholder
        if _kind(c) == "written":
            damaged.cells.insert(n, _scratch(ABOVE_THE_PLACEHOLDER, markdown=True))
    moved = copy.deepcopy(instructor)                # scratch cells on top, visible tests edited and moved
    tests = [c for c in moved.cells if _kind(c) == "test"]
    for c in tests:
        c.source = "assert False, 'edited by the student'"
    moved.cells = [_scratch("# scratch\nb, e, x, hlm = None, None, None, None\nprint('trying things')"),
                   _scratch("Notes to self.", markdown=True), _scratch("import numpy as np\nnp.zeros(3)"),
                   *tests, *[c for c in moved.cells if _kind(c) != "test"]]
    return {"instructor": (instructor, None), "student": (student, None),
            "student-tests-deleted-or-pass": (damaged, None),
            "renamed-scratch-top-tests-edited-moved": (moved, "smith_jane_12345_{id}")}


# Templates of assignment 5's wrong answers: the regression of the group means, the six answers, the rejection rates
_MEANS = ("def means_regression(y, W, groups):\n    labels, codes = np.unique(groups, return_inverse=True)\n"
          "    J, k = len(labels), W.shape[1]\n    means = np.bincount(codes, weights=y) / np.bincount(codes)\n"
          "    rows = np.zeros((J, k))\n    rows[codes] = W\n    b = np.linalg.lstsq(rows, means, rcond=None)[0]\n"
          "    e = means - rows @ b\n    se = np.sqrt(e @ e / (J - k) * np.diag(np.linalg.inv(rows.T @ rows)))\n"
          "    return {{'b': b, 'se': se, 'df': {df}, 'p': {p}}}")
_HLM_TABLES = ("tables = {'HLM z': hlm.coef_table(), 'HLM Satterthwaite': hlm.coef_table(df='satterthwaite'), "
               "'HLM Kenward-Roger': hlm.coef_table(df='kenward-roger'), 'HLM CR2': hlm.coef_table(kind='CR2'), ")
_SIX = ("def six_answers(data, formula, groups, re, term):\n"
        "    hlm = hlmlib.mixed(formula, data=data, groups=groups, re=re)\n    ols = hlmlib.ols(formula, data=data)\n"
        "    {tables}'OLS CR1': ols.summary(kind='CR1', cluster=groups), "
        "'OLS CR2': ols.summary(kind='CR2', cluster=groups)}}\n"
        "    return pd.DataFrame({{k: t.loc[term, ['estimate', 'se', 'df', 'p']] for k, t in tables.items()}}).T\n\n\n"
        "answers = six_answers(survey, formula, 'country', '~ lfrt', 'GSPEND')")
_RATES = ("def rejection_rates(J, n, R, seed, random_slope=True):\n"
          "    batch = sim.hlm_eusup_batch(R, J=J, n=n, seed=seed, **CENTRED)\n"
          "    Z = batch.extra['Z'] if random_slope else batch.extra['Z'][..., :1]\n"
          "    terms, kinds = ['GSPEND', 'lfrt:GSPEND'], ('model', 'satterthwaite', 'kenward-roger', 'CR2')\n"
          "    mc = mixed_mc(batch.X, batch.Y, batch.cluster, Z, contrasts=np.eye(4)[[1, 3]], names=terms)\n"
          "    truth = np.array([batch.truth[t] for t in terms])\n"
          "    return pd.DataFrame({{k: {reject}.mean(axis=0) for k in kinds}}, index=terms).T")

# Plausible wrong answers: (assignment, submission, name, cell id, wrong code, {question: points it should have}).
# Wrong answers to questions that do not depend on each other share a submission, to save runs; where a question
# builds on an earlier one, the later question's full points check that the earlier mistake is not counted twice.
WRONG = [
    ("01_moulton_by_simulation", "a", "omega-not-block-diagonal", "q1-answer",
     "def compound_cov(x, cluster, tau, sigma2):\n    Z = np.column_stack([np.ones(len(x)), x])\n"
     "    return Z @ np.asarray(tau) @ Z.T + sigma2 * np.eye(len(x))", {"q1": 0, "q2": 2, "q3": 2}),
    ("01_moulton_by_simulation", "b", "random-effects-per-observation", "q2-answer",
     "def simulate_errors(x, cluster, tau, sigma2, R, rng):\n"
     "    u = rng.standard_normal((R, len(x), 2)) @ np.linalg.cholesky(tau).T\n"
     "    return u[..., 0] + u[..., 1] * x + np.sqrt(sigma2) * rng.standard_normal((R, len(x)))", {"q2": 0, "q1": 2}),
    ("01_moulton_by_simulation", "b", "moulton-with-n-not-n-1", "q3-answer",
     "def rho_x(x, cluster):\n    d = x - x.mean()\n    codes = np.unique(cluster, return_inverse=True)[1]\n"
     "    n = len(d) / (codes.max() + 1)\n"
     "    return np.sum(np.bincount(codes, d) ** 2 - np.bincount(codes, d ** 2)) / ((n - 1) * np.sum(d ** 2))\n"
     "def moulton(n, rho_x, rho):\n    return 1 + n * rho_x * rho", {"q3": 0, "q1": 2, "q4": 2}),
    ("02_sandwich_by_hand", "a", "ols-through-hlmlib", "q1-answer",
     "def ols_fit(y, X):\n    b = hlmlib.ols(y, X).params.to_numpy()\n    return b, y - X @ b", {"q1": 0}),
    ("02_sandwich_by_hand", "a", "hc1-through-hlmlib", "q2-answer",
     "def hc1_se(X, e):\n    return hlmlib.ols(e, X).se(kind='HC1').to_numpy()", {"q2": 0}),
    ("02_sandwich_by_hand", "a", "cr1-through-an-hlmlib-default-argument", "q3-answer",
     "def cr1_se(X, e, cluster, fit=hlmlib.ols):\n    return fit(e, X).se(kind='CR1', cluster=cluster).to_numpy()",
     {"q3": 0}),
    ("02_sandwich_by_hand", "b", "masked-arrays", "q1-answer",     # np.testing.assert_allclose passes them
     "def ols_fit(y, X):\n    return np.ma.masked_all(X.shape[1]), np.ma.masked_all(len(y))", {"q1": 0}),
    ("02_sandwich_by_hand", "b", "cr1-for-sorted-integer-labels-only", "q3-answer",     # partial credit: 1 of 2
     "def cr1_se(X, e, cluster):\n    n, k = X.shape\n    codes = cluster - cluster.min()\n    G = codes.max() + 1\n"
     "    s = np.zeros((G, k))\n    np.add.at(s, codes, X * e[:, None])\n    B = np.linalg.inv(X.T @ X)\n"
     "    return np.sqrt(np.diag(G / (G - 1) * (n - 1) / (n - k) * B @ s.T @ s @ B))", {"q3": 1}),
    ("02_sandwich_by_hand", "b", "hc0-not-hc1", "q2-answer",
     "def hc1_se(X, e):\n    bread = np.linalg.inv(X.T @ X)\n"
     "    return np.sqrt(np.diag(bread @ ((X * e[:, None] ** 2).T @ X) @ bread))", {"q2": 0}),
    ("02_sandwich_by_hand", "c", "normal-equations", "q1-answer",   # the question rules it out; ill-conditioned X
     "def ols_fit(y, X):\n    b = np.linalg.inv(X.T @ X) @ X.T @ y\n    return b, y - X @ b",
     {"q1": 0, "q2": 2, "q3": 2}),
    ("03_few_clusters_monte_carlo", "a", "cr1-test-with-z", "q2-answer",
     "def cr1_t_test(y, X, cluster, value=1.0):\n    fit = hlmlib.ols(y, X)\n"
     "    t = (fit.params.iloc[1] - value) / fit.se(kind='CR1', cluster=cluster).iloc[1]\n"
     "    return {'t': t, 'df': len(np.unique(cluster)) - 1, 'p': 2 * stats.norm.sf(abs(t))}", {"q2": 0, "q3": 2}),
    ("03_few_clusters_monte_carlo", "a", "errors-drawn-in-another-order", "q1-answer",
     "def cgm_sample(G, n, rng):\n    cluster = np.repeat(np.arange(G), n)\n"
     "    x = rng.standard_normal(G)[cluster] + rng.standard_normal(G * n)\n"
     "    u = rng.standard_normal(G)[cluster] + rng.standard_normal(G * n)\n"
     "    return x + u, np.column_stack([np.ones(G * n), x]), cluster", {"q1": 0, "q3": 2}),
    ("03_few_clusters_monte_carlo", "b", "rejection-with-z-critical-values", "q3-answer",
     "def rejection_rates(G, n, reps, seed):\n    rng = np.random.default_rng(seed)\n    c = {'classical': 0, 'CR1': 0}\n"
     "    for _ in range(reps):\n        y, X, cluster = cgm_sample(G, n, rng)\n        fit = hlmlib.ols(y, X)\n"
     "        c['classical'] += abs((fit.params.iloc[1] - 1) / fit.se().iloc[1]) > stats.t.ppf(0.975, G * n - 2)\n"
     "        c['CR1'] += abs(cr1_t_test(y, X, cluster)['t']) > 1.96\n"
     "    return {k: v / reps for k, v in c.items()}", {"q3": 0, "q2": 2}),
    ("03_few_clusters_monte_carlo", "d", "classical-test-with-z", "q3-answer",
     "def rejection_rates(G, n, reps, seed):\n    rng = np.random.default_rng(seed)\n    c = {'classical': 0, 'CR1': 0}\n"
     "    for _ in range(reps):\n        y, X, cluster = cgm_sample(G, n, rng)\n        fit = hlmlib.ols(y, X)\n"
     "        c['classical'] += abs((fit.params.iloc[1] - 1) / fit.se().iloc[1]) > 1.96\n"
     "        c['CR1'] += cr1_t_test(y, X, cluster)['p'] < 0.05\n"
     "    return {k: v / reps for k, v in c.items()}", {"q3": 0, "q1": 2, "q2": 2}),
    ("01_moulton_by_simulation", "a", "hard-coded-variance-ratio", "q4-answer",
     "def variance_ratio(G, n, rho, rho_x_target, R, seed):\n"
     "    return {'ratio': 2.6584236040187, 'mc_se': 0.0841, 'moulton': 2.6498787860672}", {"q4": 0, "q3": 2}),
    ("03_few_clusters_monte_carlo", "c", "hard-coded-rates", "q3-answer",
     "def rejection_rates(G, n, reps, seed):\n    return {'classical': 0.5, 'CR1': 0.115}", {"q3": 0, "q1": 2}),
    ("03_few_clusters_monte_carlo", "c", "p-value-without-abs", "q2-answer",
     "def cr1_t_test(y, X, cluster, value=1.0):\n    fit = hlmlib.ols(y, X)\n"
     "    t = (fit.params.iloc[1] - value) / fit.se(kind='CR1', cluster=cluster).iloc[1]\n"
     "    df = len(np.unique(cluster)) - 1\n    return {'t': t, 'df': df, 'p': 2 * stats.t.sf(t, df)}", {"q2": 0}),
    ("04_hsb_hlm", "a", "hard-coded-icc", "q1-answer",
     "def null_icc(data):\n    return 0.180352\nicc = null_icc(hsb)", {"q1": 0, "q2": 2}),
    ("04_hsb_hlm", "b", "ols-stored-as-hlm", "q2-answer",
     "hlm = hlmlib.ols('mathach ~ cses * catholic + cses * meanses', data=hsb)", {"q2": 0, "q1": 2}),
    ("04_hsb_hlm", "c", "hlm-without-random-slope", "q2-answer",
     "hlm = hlmlib.mixed('mathach ~ cses * catholic + cses * meanses', data=hsb, groups='school')",
     {"q2": 0, "q1": 2, "q3": 2}),
    ("04_hsb_hlm", "a", "inverted-ratio", "q3-answer",
     "ols_fit = hlmlib.ols('mathach ~ cses * catholic + cses * meanses', data=hsb)\n"
     "se_ratio = hlm.se() / ols_fit.se(kind='CR2', cluster='school')", {"q3": 0, "q2": 2}),
    ("05_level2_few_clusters", "a", "means-regression-df-J-minus-1", "q1-answer",
     _MEANS.format(df="J - 1", p="2 * stats.t.sf(np.abs(b / se), J - 1)"), {"q1": 0}),
    ("05_level2_few_clusters", "b", "means-regression-normal-p-values", "q1-answer",
     _MEANS.format(df="J - k", p="2 * stats.norm.sf(np.abs(b / se))"), {"q1": 0}),
    ("05_level2_few_clusters", "c", "means-regression-for-sorted-groups-only", "q1-answer",   # partial: 1 of 2
     "def means_regression(y, W, groups):\n    J, k = len(np.unique(groups)), W.shape[1]\n"
     "    means, rows = y.reshape(J, -1).mean(axis=1), W[::len(y) // J]\n"
     "    b = np.linalg.lstsq(rows, means, rcond=None)[0]\n    e = means - rows @ b\n"
     "    se = np.sqrt(e @ e / (J - k) * np.diag(np.linalg.inv(rows.T @ rows)))\n"
     "    return {'b': b, 'se': se, 'df': J - k, 'p': 2 * stats.t.sf(np.abs(b / se), J - k)}", {"q1": 1}),
    ("05_level2_few_clusters", "d", "regression-on-all-rows", "q1-answer",
     "def means_regression(y, W, groups):\n    J, k = len(np.unique(groups)), W.shape[1]\n"
     "    b = np.linalg.lstsq(W, y, rcond=None)[0]\n    e = y - W @ b\n"
     "    se = np.sqrt(e @ e / (len(y) - k) * np.diag(np.linalg.inv(W.T @ W)))\n"
     "    return {'b': b, 'se': se, 'df': J - k, 'p': 2 * stats.t.sf(np.abs(b / se), J - k)}", {"q1": 0}),
    ("05_level2_few_clusters", "a", "z-for-every-hlm-answer", "q2-answer",
     _SIX.format(tables="z = hlm.coef_table()\n    tables = {'HLM z': z, 'HLM Satterthwaite': z, "
                 "'HLM Kenward-Roger': z, 'HLM CR2': z, "), {"q2": 0}),
    ("05_level2_few_clusters", "b", "hlm-cr2-taken-from-ols", "q2-answer",
     _SIX.format(tables=_HLM_TABLES.replace("hlm.coef_table(kind='CR2')",
                                                    "ols.summary(kind='CR2', cluster=groups)")), {"q2": 0}),
    ("05_level2_few_clusters", "c", "kenward-roger-df-with-the-model-based-se", "q2-answer",
     _SIX.format(tables="kr = hlm.coef_table(df='satterthwaite').copy()\n"
                 "    kr['df'] = hlm.coef_table(df='kenward-roger')['df']\n"
                 "    kr['p'] = 2 * stats.t.sf(np.abs(kr['estimate'] / kr['se']), kr['df'])\n    "
                 + _HLM_TABLES.replace("hlm.coef_table(df='kenward-roger')", "kr")), {"q2": 0}),
    ("05_level2_few_clusters", "d", "hlm-without-the-random-slope", "q2-answer",
     _SIX.format(tables=_HLM_TABLES).replace(", re=re)", ")"), {"q2": 0, "q3": 2}),
    ("05_level2_few_clusters", "e", "normal-df-only-on-the-visible-tests-data", "q2-answer",   # gave 2/2 (round 49)
     _SIX.format(tables=_HLM_TABLES).replace("    return pd.DataFrame({k: t.loc[term, ['estimate', 'se', 'df', 'p']] "
                                             "for k, t in tables.items()}).T\n",
                                             "    out = pd.DataFrame({k: t.loc[term, ['estimate', 'se', 'df', 'p']] "
                                             "for k, t in tables.items()}).T\n"
                                             "    if abs(out.loc['HLM z', 'estimate'] - 0.0938985435046537) > 1e-9:\n"
                                             "        out.loc['HLM z', 'df'] = float(len(data) - 2)\n"
                                             "    return out\n"), {"q2": 0}),
    ("05_level2_few_clusters", "a", "rejection-with-normal-critical-values", "q3-answer",
     _RATES.format(reject="(np.abs(mc.params - truth) / mc.se[k] > 1.96)"), {"q3": 0}),
    ("05_level2_few_clusters", "b", "rejection-of-a-zero-null", "q3-answer",
     _RATES.format(reject="mc.reject(k, 0.0)"), {"q3": 0}),
    ("05_level2_few_clusters", "c", "random-slope-whatever-the-argument", "q3-answer",
     _RATES.format(reject="mc.reject(k, truth)").replace(" if random_slope else batch.extra['Z'][..., :1]", ""),
     {"q3": 0}),
]

# Honest notebooks that must keep full marks: (assignment, name, {cell id: new code}, [(after cell id, code)],
# status). Other correct solutions, code the static check used to refuse, scratch cells after a test cell that
# rebind the answer's name, and a magic the grader does not run (its cell alone fails).
HONEST = [
    ("03_few_clusters_monte_carlo", "data-frame-X-timed-answer-future-typing-getattr-os-savefig-pip", {
        "q1-answer": "import pandas as pd\ndef cgm_sample(G, n, rng):\n    cluster = np.repeat(np.arange(G), n)\n"
                     "    x = rng.standard_normal(G)[cluster] + rng.standard_normal(G * n)\n"
                     "    e_ig = rng.standard_normal(G * n)\n    u = rng.standard_normal(G)[cluster] + e_ig\n"
                     "    return x + u, pd.DataFrame({'const': 1.0, 'x': x}), cluster",
        # t and p of one element (round 52)
        "q2-answer": "%%time\ndef cr1_t_test(y, X, cluster, value=1.0):\n    fit = hlmlib.ols(y, X)\n"
                     "    t = (fit.params.iloc[[1]] - value) / fit.se(kind='CR1', cluster=cluster).iloc[[1]]\n"
                     "    df = len(set(cluster)) - 1\n    return {'t': t, 'df': df, 'p': 2 * stats.t.sf(abs(t), df)}"},
     [("setup", "from __future__ import annotations\nimport os\nfrom typing import Tuple\n\n"
                "def pair(a: float) -> Tuple[float, float]:\n    return a, a\n\n"
                "for name in ['mean', 'std']:\n    print(name, getattr(np, name)([1.0, 2.0]))\nprint(os.getcwd())"),
      ("q1-test", "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2])\n"
                  "fig.savefig('figure.png')\nprint(np.__version__)"), ("q1-test", "%pip install tabulate")], "review"),
    ("04_hsb_hlm", "scratch-after-tests-rebinds-answers-statsmodels-query-labels-from-numpy", {
        "q3-answer": "import pandas as pd\nnames = np.array(list(hlm.params.index))   # numpy.str_ labels (round 50)\n"
                     "cr2 = hlmlib.ols('mathach ~ cses * catholic + cses * meanses', data=hsb).se(kind='CR2', "
                     "cluster='school')\nse_ratio = pd.Series({t: cr2[t] / hlm.se()[t] for t in names})"},
     [("q1-test", "icc = null_icc(hsb[hsb['catholic'] == 1])     # curiosity, after the test: Catholic schools"),
      ("q1-test", "np.mean??"),     # round 46: IPython's help parses np.mean's source (never run): no refusal
      ("q3-test", "import pandas as pd\nimport statsmodels.formula.api as smf\n"
                  "print(pd.api.types.is_numeric_dtype(hsb['ses']), len(hsb.query('catholic == 1')))\n"
                  "hlm = hlmlib.mixed('mathach ~ cses * catholic + cses * meanses + minority + female', data=hsb,\n"
                  "                   groups='school', re='~ cses')")], "ok"),
    ("05_level2_few_clusters", "a-frame-filled-row-by-row", {    # dtype object (round 50: q2 0/2)
        "q2-answer": _SIX.format(tables=_HLM_TABLES).replace(
            "    return pd.DataFrame({k: t.loc[term, ['estimate', 'se', 'df', 'p']] for k, t in tables.items()}).T\n",
            "    out = pd.DataFrame(index=list(tables), columns=['estimate', 'se', 'df', 'p'])\n"
            "    for name, table in tables.items():\n"
            "        out.loc[name] = table.loc[term, ['estimate', 'se', 'df', 'p']]\n"
            "    return out\n")}, [], "ok"),
]

HONEST.append(("02_sandwich_by_hand", "annotations-dataclass-namedtuple-matplotlib-formulas-query", {
    "q1-answer": "from __future__ import annotations\n\nfrom collections import namedtuple\n"
                 "from dataclasses import dataclass\n\nFit = namedtuple('Fit', ['b', 'e'])\n\n\n@dataclass\n"
                 "class Design:\n    X: np.ndarray\n    names: 'list[str] | None' = None\n\n\n"
                 "def ols_fit(y: np.ndarray, X: 'np.ndarray') -> tuple[np.ndarray, np.ndarray]:\n"
                 "    b = np.linalg.lstsq(Design(X).X, y, rcond=None)[0]\n    return Fit(b, y - X @ b)"},
    [("setup", "import matplotlib.pyplot as plt\nimport pandas as pd\nimport statsmodels.formula.api as smf\n\n"
               "fig, ax = plt.subplots()\nax.scatter(X[:, 1], y, s=2)\nax.set_title('Petersen: $y$ against $x$')\n"
               "fig.savefig('scatter.png')\nfig.savefig('scatter.pdf')\nplt.show()\n"
               "frame = petersen.assign(big=petersen['x'] > 0)\ncut = 0.5\n"
               "print(len(frame.query('x > @cut and big')), frame.eval('x + y').mean())\n"
               "print(smf.ols('y ~ x + np.log(year)', data=frame).fit().params.round(3).tolist())\n"
               "print(hlmlib.ols('y ~ x + I(x ** 2)', data=frame).params.round(3).tolist())")], "ok"))

HONEST.append(("05_level2_few_clusters", "group-means-by-pandas-and-qr-the-library-rejection-rule", {
    "q1-answer": "import pandas as pd\n\ndef means_regression(y, W, groups):\n"
                 "    frame = pd.DataFrame(W).assign(y=y, g=groups).groupby('g').mean()\n"
                 "    rows, means = frame.drop(columns='y').to_numpy(), frame['y'].to_numpy()\n"
                 "    Q, R = np.linalg.qr(rows)\n    b = np.linalg.solve(R, Q.T @ means)\n"
                 "    df = len(means) - rows.shape[1]\n    e = means - rows @ b\n"
                 "    se = np.sqrt(e @ e / df * np.sum(np.linalg.inv(R) ** 2, axis=1))\n"
                 "    return {'b': b, 'se': se, 'df': df, 'p': 2 * stats.t.sf(np.abs(b) / se, df)}",
    "q3-answer": _RATES.format(reject="mc.reject(k, truth)")}, [], "ok"))

# round 10: honest idioms the static check refused (the book's own code uses them): a base's __init__ through super()
# and by name, a class's name, pandas' Styler.format, IPython.display, the notebook's own _i, _x and _dh
HONEST.append(("02_sandwich_by_hand", "super-styler-format-ipython-display-underscore-names", {}, [("setup", """\
import pandas as pd
from IPython.display import display, Markdown


class Summary:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"{self.__class__.__name__}({self.name!r})"


class FitSummary(Summary):
    def __init__(self, name, beta):
        super().__init__(name)
        self.beta = beta


class Plain(Summary):
    def __init__(self, name):
        Summary.__init__(self, name)


table = pd.DataFrame({"beta": [FitSummary("ols", 1.0).beta]}, index=[Plain("x").name])
display(table.style.format("{:.3f}", na_rep=""))
display(table.style.format(precision=4))
display(Markdown(f"**{FitSummary('hlm', 2.0)!r}**"))
for _i in range(3):
    _x = _i * 2
_dh = [_x]
fmt = "{:.3f}" if _x > 0 else "{:.2f}"
print(_i, _dh, fmt.format(_x), "{:.2f}".format(1.5))""")], "ok"))

# Attempts to game the grader, added as a scratch cell to a submission with a wrong answer: each scores 0.
GAMING = {
    "monkeypatch-assert": "np.testing.assert_allclose = lambda *a, **k: None",
    "monkeypatch-through-an-alias": "t = np.testing\nt.assert_allclose = lambda *a, **k: None\n"
                                    "for m in [np.testing]:\n    m.assert_array_equal = lambda *a, **k: None",
    "swallow-exceptions": "get_ipython().set_custom_exc((Exception,), lambda *a, **k: None)",
    "patch-through-pandas-api": "import pandas as pd\n@pd.api.extensions.register_series_accessor('reindex')\n"
                                "class Anything:\n    def __init__(self, obj):\n        self.obj = obj",
    "change-an-hlmlib-table-through-an-alias": "adjust = hlmlib.sandwich.CR_ADJUSTMENTS\nadjust['CR2'] = adjust['CR3']",
    "reach-sys-through-warnings": "import warnings\nwarnings.sys.settrace(None)",
    "write-a-file": "np.savetxt('gradingkit.py', [], header='print(1)')",
    "shadow-builtins": "abs = lambda value: 0\nfloat = lambda value: 0.180352\nlen = lambda value: 6",
    "always-equal-object": "class Anything(float):\n    def __sub__(self, other):\n        return 0.0\n"
                           "icc = Anything(0.5)",
    "operators-through-type": "d = '_' * 2\nAnything = type('Anything', (float,), {d + 'sub' + d: lambda s, o: 0.0})\n"
                              "icc = Anything(0.5)",
    "timeit-options-hide-code": "%timeit -n1 -r1 import gradingkit; gradingkit.run_test = print",
    "shell-escape": "!echo hi",
    # a method taken from its class, its self given a module (np.testing.assert_allclose replaced), through an alias
    "self-named-setter-through-an-alias": "class Box:\n    def put(self, f):\n        self.assert_allclose = f\n"
                                          "B = Box\nB.put(np.testing, lambda *a, **k: None)",
    "contextlib-as-an-attribute": "stack = np.testing._private.utils.contextlib.ExitStack()",
}
# The attempts the static check does not flag run, a few to a notebook (each flagged one alone: it is not run);
# with the first few, attempts to write outside the run's folder and to read the grader's.
# (patch-through-pandas-api, reported by the kit until round 16, is now refused by the static check: a registry)
GAMING_RUN = {"review": ["change-an-hlmlib-table-through-an-alias", "shell-escape"],
              "ok": ["write-a-file", "shadow-builtins"]}
STARTUP = Path.home() / ".ipython" / "profile_default" / "startup" / "zz_planted.py"
OUTSIDE = ["import numpy\nimport shutil\npackage = hlmlib.datasets.resources.files('hlmlib')",
           "numpy.savetxt(str(package.joinpath('zz_planted.py')), [1])",
           "shutil.copy(str(package.joinpath('ols.py')), str(package.parent / 'assignments' / 'zz_copied.py'))",
           "print(open(str(package.parent / 'assignments' / 'source' / '02_sandwich_by_hand.ipynb')).read())",
           "open('tabulate.py', 'w').write('raise SystemExit(1)')\nimport tabulate\nprint(tabulate.tabulate([[1, 2]]))",
           f"open({str(STARTUP)!r}, 'w').write('print(1)')"]     # would run in every later kernel of the user

# The adversarial reviewer's relay (round 2): stub answers of the right shape, and a cell that replaces sys.stdout
# (through np.testing._private.utils.contextlib) and np.testing.assert_allclose (through Box.put(np.testing, f)), to
# rewrite the records the grader once printed with the values the hidden tests computed in the kernel. 6/6 then.
FIXTURES = ROOT / "tests" / "fixtures"
RELAYS = ("assignment02_relay", "assignment05_relay")
# Round 3: stub answers and a cell that reaches gradingkit._state (its emit, then), setattr and sys.modules through
# np.load(..., allow_pickle=True) of a pickle naming them, holds the records until the hidden test computed its
# reference in the kernel, swaps the values, and (05) wraps run_test to swallow the tests' exceptions. 6/6 then.
UNPICKLING_RELAYS = ("assignment02_relay4", "assignment05_relay4")
# Round 4: stub answers and a cell in which functools.singledispatch's register evaluates the annotation "exec(P)"
# (typing.get_type_hints, with the notebook's namespace); P reads the instructor's source from the repository's git
# objects and runs its answer cells. 6/6 then.
DISPATCH = ("assignment02_dispatch", "assignment05_dispatch")
# Round 5: a later question whose tests run with the instructor's earlier answers moved above those answers; its
# function keeps the instructor's functions the tests hand it, and the earlier answers bind them (4/6 and 2/8 then).
# Written by tests/fixtures/make_reorder_fixtures.py; the honest counterpart moves the instructor's cells the same way.
REORDERED = {"assignment01_reorder": ("01_moulton_by_simulation", "q4"),
             "assignment03_reorder": ("03_few_clusters_monte_carlo", "q3")}
# Round 6 (tests/fixtures/make_round6_fixtures.py): deleted files kept open or mapped, out of sight of the folder's
# count (the disk filled, then an OSError in the next run's set-up ended the batch); display updates, which bypassed
# the output budget (gigabytes in the grader, a notebook of 1 GB); functools.update_wrapper as a real getattr by a
# name made at run time, into a property make_dataclass put on a class (it reached the kit's signing function)
ROUND6 = ("assignment02_diskhold", "assignment02_display", "assignment02_wrapper")
# Round 9 (tests/fixtures/make_round9_fixtures.py): the instructor's answers and plain Python that nests 1,100 folders
# (the clean-up's recursion lost the batch), nests them to stop the disk watch then writes 150 MB, or reserves disk
# with posix_fallocate (150 MB, then 22 MB at a time)
ROUND9 = ("assignment02_deepbomb", "assignment02_deadwatch", "assignment02_fallocate")
# Round 7 (tests/fixtures/make_round7_fixtures.py): raw memory through Enum's functional API with a member named
# __array_interface__ made at run time, the real getattr, the audit hook turned off through its own frame; then the
# instructor's solution run from the grader's checkout (6/6), or the reference cache rewritten (every later honest
# submission 0). And a false positive: .format on variables bound only to constant strings (flagged, 0/6).
ROUND7 = ("assignment02_escape", "assignment02_tamper")
HONEST_FORMAT = "assignment02_honest_format"
# Run past the static check: the kit's run_test wrapped to swallow a test's exception, or to run other code in its
# place under the test's name. Neither can send ``done`` for the test the grader sent.
WRAPPERS = {
    "swallows-the-exceptions": "import sys\nkit = sys.modules['gradingkit']\nreal = kit.run_test\n\n"
                               "def lenient(test_id, source, reference=()):\n    try:\n"
                               "        real(test_id, source, reference)\n    except Exception:\n        pass\n\n"
                               "kit.run_test = lenient",
    "runs-other-code": "import sys\nkit = sys.modules['gradingkit']\nreal = kit.run_test\n\n"
                      "def other(test_id, source, reference=()):\n    real(test_id, 'pass', reference)\n\n"
                      "kit.run_test = other",
}
# Written on every write-only file descriptor (the grader's channel among them): a line as the kit writes them,
# with a made-up HMAC (passes the static check).
FORGE_ON_THE_CHANNEL = ("import os\nfor fd in range(3, 256):\n    try:\n        os.read(fd, 0)\n"
                        "    except OSError:\n"
                        "        try:\n            os.write(fd, b'0' * 64 + b' [9, \"q1-hidden\", \"done\", null]\\n')\n"
                        "        except OSError:\n            pass")

# Attempts that pass the static check, defeated in the kernel (the audit hook) or outside it (the values of the
# hidden tests against the instructor's): (assignment, base version, {cell id: code}, [(after cell id, code)]).
UNSEEN = {
    "values-computed-later-by-hlmlib": ("02_sandwich_by_hand", "student", {
        "q2-answer": "from collections import UserList\n\nclass Lazy(UserList):\n"
                     "    def __init__(self, compute):\n        self.compute, self.done = compute, None\n\n"
                     "    @property\n    def data(self):\n        if self.done is None:\n"
                     "            self.done = self.compute()\n        return self.done\n\n"
                     "def hc1_se(X, e):\n    return Lazy(lambda: hlmlib.ols(e, X).se(kind='HC1').to_numpy())",
        "q3-answer": "def cr1_se(X, e, cluster):\n"
                     "    return Lazy(lambda: hlmlib.ols(e, X).se(kind='CR1', cluster=cluster).to_numpy())"}, []),
    # "reset -f" is valid Python ("reset - f"), which IPython's automagic would run as %reset -f: the namespace
    # emptied, the checked getattr with it; the real one would then reach gradingkit and undo numpy_only
    "automagic-reset-then-hlmlib-where-numpy-only": ("02_sandwich_by_hand", "student", {
        "q1-answer": "def ols_fit(y, X):\n    b = hlmlib.ols(y, X).params.to_numpy()\n    return b, y - X @ b",
        "q2-answer": "def hc1_se(X, e):\n    return hlmlib.ols(e, X).se(kind='HC1').to_numpy()",
        "q3-answer": "def cr1_se(X, e, cluster):\n"
                     "    return hlmlib.ols(e, X).se(kind='CR1', cluster=cluster).to_numpy()"},
        [("setup", "reset -f"),
         ("setup", "import os\nimport hlmlib\nimport numpy as np\nd = '_' * 2\n\n\nclass Nothing:\n"
                   "    def __enter__(self):\n        return self\n\n    def __exit__(self, *args):\n"
                   "        return False\n\n\n"
                   "kit = getattr(getattr(os, 's' + 'ys'), 'mod' + 'ules')['grading' + 'kit']\n"
                   "getattr(kit, d[0] + 'state')['user_ns'][d + 'grader' + d] = kit\n"
                   "getattr(kit, d + 'dict' + d)['numpy_only'] = Nothing\n"
                   "petersen = hlmlib.datasets.load_petersen()\ny = petersen['y'].to_numpy()\n"
                   "X = np.column_stack([np.ones(len(petersen)), petersen['x'].to_numpy()])\n"
                   "firm, year = petersen['firm'].to_numpy(), petersen['year'].to_numpy()")]),
    # round 39: IPython's prefilter hands an IPyAutocall object named alone on a line (exit, or an instance of a
    # subclass of its type) the shell (set_ip), whatever automagic and autocall are; the grader turns the prefilter
    # off, so 'grab' is only a name and q1's answer is never defined
    "shell-through-an-autocall-object": ("02_sandwich_by_hand", "student", {}, [
        ("setup", "class Grab(type(exit)):\n    def set_ip(self, shell):\n        global ols_fit\n\n"
                  "        def ols_fit(y, X):\n            b = np.linalg.lstsq(X, y, rcond=None)[0]\n"
                  "            return b, y - X @ b\n\n\ngrab = Grab()"),
        ("q1-answer", "grab")]),
    # a float whose subtraction always gives 0, its class built by type() reached by another name (which the static
    # check cannot see): record() takes floats, not their subclasses, so the hidden test fails
    "operators-through-a-metaclass-by-another-name": ("04_hsb_hlm", "instructor", {
        "q1-answer": "d = '_' * 2\nmeta = type(float)\n"
                     "Anything = meta('Anything', (float,), {d + 'sub' + d: lambda s, o: 0.0})\n"
                     "def null_icc(data):\n    return Anything(0.5)\nicc = null_icc(hsb)"}, []),
    # round 5: answers of ten million numbers (the grader's memory, once); a refused path, and a written answer, with
    # control characters that rewrite a terminal's line ("\r", ESC[K, ESC[8m hides the rest) or add lines
    "huge-values": ("02_sandwich_by_hand", "student", {
        "q1-answer": "def ols_fit(y, X):\n    return np.zeros(10**7), list(np.zeros(10**5))"}, []),
    "control-characters": ("02_sandwich_by_hand", "student", {"q4-answer": "My answer\x1b[8m, hidden\r"}, [
        ("setup", r"""fake = "\rfake.ipynb: 02_sandwich_by_hand: q1 2/2: 6/6\x1b[K\x1b[8m\nother.ipynb: x: 6/6\u202e"
try:
    open("/x" + fake)
except OSError:
    pass""")]),
    "patch-stats-t-through-a-method": ("03_few_clusters_monte_carlo", "student", {
        "q2-answer": "class Put:\n    def sf(self, function):\n        self.sf = function\n\n"
                     "Put.sf(stats.t, lambda x, df, *args, **kwargs: stats.norm.sf(x))\n\n"
                     "def cr1_t_test(y, X, cluster, value=1.0):\n    fit = hlmlib.ols(y, X)\n"
                     "    t = (fit.params.iloc[1] - value) / fit.se(kind='CR1', cluster=cluster).iloc[1]\n"
                     "    return {'t': t, 'df': len(np.unique(cluster)) - 1, 'p': 2 * stats.norm.sf(abs(t))}"}, []),
}


def _edited(nb, replace, insert):
    """A copy of ``nb`` with cells' code replaced by id and scratch cells inserted after cells, by id."""
    out = copy.deepcopy(nb)
    for cell_id, code in replace.items():
        next(c for c in out.cells if make.cell_key(c) == cell_id).source = code
    for after, code in reversed(insert):
        at = next(i for i, c in enumerate(out.cells) if make.cell_key(c) == after)
        out.cells.insert(at + 1, _scratch(code))
    return out


def _moved_up(nb, question):
    """A copy of ``nb`` with the question's prompt, answer and visible test moved to just below the set-up."""
    out = copy.deepcopy(nb)
    moved = [c for c in out.cells if make.cell_key(c) in (f"{question}-prompt", f"{question}-answer",
                                                          f"{question}-test")]
    rest = [c for c in out.cells if c not in moved]
    at = [make.cell_key(c) for c in rest].index("setup") + 1
    out.cells = rest[:at] + moved + rest[at:]
    return out


def _split(nb, cell_id, parts):
    """A copy of ``nb`` with the cell ``cell_id`` split into cells of the sources ``parts``, each with the cell's
    metadata, as JupyterLab's Split Cell (and copy and paste) makes them: its id repeated, nbformat's ids new."""
    out = copy.deepcopy(nb)
    at = next(i for i, c in enumerate(out.cells) if make.cell_key(c) == cell_id)
    cells = [copy.deepcopy(out.cells[at]) for _ in parts]
    for n, (cell, source) in enumerate(zip(cells, parts)):
        cell.source, cell.id = source, f"{cell_id}-part{n}"
    out.cells[at:at + 1] = cells
    return out


MARKUP = ("for path in ['/<template>a', '../<template>b']:\n    try:\n        open(path, 'w')\n"
          "    except Exception as exc:\n        print(type(exc).__name__)")     # refused at run time, and listed
SPLIT_ANSWER = ("The firm-clustered standard error is the larger one.", "The Moulton factor explains it.")


def _written_elsewhere(nb):
    """Round 22: the q4 answer typed in a new markdown cell after the answer cell was deleted, in the answer cell
    changed to raw or code (JupyterLab's R and Y keep its source and metadata), and with a pasted image."""
    at = next(i for i, c in enumerate(nb.cells) if make.cell_key(c) == "q4-answer")
    out = {}
    for name in ("retyped", "raw", "code", "attached", "above", "rawimg", "keep", "inprompt", "comment"):
        out[name] = copy.deepcopy(nb)
        cell = out[name].cells[at]
        if name == "retyped":
            out[name].cells[at] = nbformat.v4.new_markdown_cell(WRITTEN_ELSEWHERE[name] + cell.source)
        elif name == "above":          # round 23: retyped right under the question, above the source's code cell
            del out[name].cells[at]
            prompt = next(i for i, c in enumerate(out[name].cells) if make.cell_key(c) == "q4-prompt")
            out[name].cells.insert(prompt + 1, nbformat.v4.new_markdown_cell(WRITTEN_ELSEWHERE[name] + cell.source))
        elif name in ("keep", "inprompt"):     # round 24: the answer cell left as handed out, the answer typed
            prompt = next(i for i, c in enumerate(out[name].cells) if make.cell_key(c) == "q4-prompt")
            text, cell.source = WRITTEN_ELSEWHERE[name] + cell.source, make.STUDENT_TEXT
            if name == "keep":         # in a new cell right under the question, above the source's code cell
                out[name].cells.insert(prompt + 1, nbformat.v4.new_markdown_cell(text))
            else:                      # into the question's own cell
                out[name].cells[prompt].source += "\n\n" + text
        elif name == "comment":        # round 24: the answer cell deleted, the answer as comments in a code cell
            out[name].cells[at] = nbformat.v4.new_code_cell("\n".join(
                "# " + line for line in (WRITTEN_ELSEWHERE[name][2:] + cell.source).split("\n")))
        elif name == "rawimg":         # round 23: an image on the answer cell changed to raw (kept by JupyterLab's R)
            cell.cell_type, cell.source = "raw", WRITTEN_ELSEWHERE[name] + cell.source
            cell.attachments = {"derivation.png": {"image/png": PNG}}
        elif name == "attached":
            cell.source = WRITTEN_ELSEWHERE[name] + "\n\n![derivation.png](attachment:derivation.png)\n"
            cell.attachments = {"derivation.png": {"image/png": PNG}}
        else:
            cell.cell_type, cell.source = name, WRITTEN_ELSEWHERE[name] + cell.source
            if name == "code":
                cell.outputs, cell.execution_count = [], None
    return out


WRITTEN_ELSEWHERE = {"retyped": "RETYPED ANSWER. ", "raw": "RAW ANSWER. ", "code": "CODE ANSWER. ",
                     "attached": "My derivation of the Moulton factor is in the photo:", "above": "ABOVE. ",
                     "rawimg": "RAW WITH IMAGE. ", "keep": "KEPT. ", "inprompt": "IN THE QUESTION. ",
                     "comment": "# AS COMMENTS. "}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def built():
    written = make.make_all()
    return {(p.parent.name, make.load_source(make.SOURCE / p.name).id): p for p in written}


@pytest.fixture(scope="module")
def graded(built, tmp_path_factory):
    """Grade every submission of every check in one run of the command: {name: row}, stdout, CSV rows."""
    folder = tmp_path_factory.mktemp("submissions")
    files = {}

    def add(name, nb, filename=None):
        path = folder / f"{filename or name.replace('/', '__')}.ipynb"
        nbformat.write(nb, path)
        files[name] = path

    versions = {(kind, aid): nbformat.read(built[(kind, aid)], as_version=4)
                for kind in ("instructor", "student") for aid in IDS}
    for aid in IDS:
        for variant, (nb, filename) in _variants(versions["instructor", aid], versions["student", aid]).items():
            add(f"{aid}/{variant}", nb, filename and filename.format(id=aid))
    wrong = {}
    for aid, submission, name, cell_id, code, _ in WRONG:
        base = wrong.get((aid, submission)) or versions["instructor", aid]
        wrong[aid, submission] = _replace(base, cell_id, code)
    for (aid, submission), nb in wrong.items():
        add(f"{aid}/wrong/{submission}", nb)
    for aid, name, replace, insert, _ in HONEST:
        add(f"honest/{name}", _edited(versions["instructor", aid], replace, insert))
    wrong_hsb = _replace(versions["student", "04_hsb_hlm"], "q1-answer",
                         "def null_icc(data):\n    return 0.5\nicc = null_icc(hsb)")
    for name, code in GAMING.items():
        if not any(name in names for names in GAMING_RUN.values()):
            add(f"gaming/{name}", _edited(wrong_hsb, {}, [("setup", code)]))
    for status, names in GAMING_RUN.items():
        outside = [("setup", code) for code in OUTSIDE] if status == "review" else []
        add(f"gaming/{status}", _edited(wrong_hsb, {}, [("setup", GAMING[name]) for name in names] + outside))
    for name, (aid, kind, replace, insert) in UNSEEN.items():
        add(f"unseen/{name}", _edited(versions[kind, aid], replace, insert))
    for name in RELAYS + UNPICKLING_RELAYS + DISPATCH + ROUND6[2:] + ROUND7:
        add(f"relay/{name}", nbformat.read(FIXTURES / f"{name}.ipynb", as_version=4))
    add(f"honest/{HONEST_FORMAT}", nbformat.read(FIXTURES / f"{HONEST_FORMAT}.ipynb", as_version=4))
    for name, (aid, question) in REORDERED.items():
        add(f"relay/{name}", nbformat.read(FIXTURES / f"{name}.ipynb", as_version=4))
        add(f"honest/{name}", _moved_up(versions["instructor", aid], question))
    split = _split(versions["instructor", "02_sandwich_by_hand"], "q4-answer", SPLIT_ANSWER)
    code = next(c.source for c in split.cells if make.cell_key(c) == "q3-answer")
    add("honest/split-cells", _split(split, "q3-answer", ["import numpy as np\n", code]))
    for name, nb in _written_elsewhere(versions["instructor", "02_sandwich_by_hand"]).items():
        add(f"written/{name}", nb)
    add("markup/template", _edited(versions["instructor", "02_sandwich_by_hand"], {}, [("setup", MARKUP)]),
        "a<template>_02_sandwich_by_hand")
    out = folder / "out"
    run = subprocess.run(MAKE + ["grade", *files.values(), "--csv", str(folder / "grades.csv"), "--out", str(out)],
                         capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = list(csv.DictReader(open(folder / "grades.csv", encoding="utf-8")))
    by_file = {r["file"]: r for r in rows}
    return {"rows": {name: by_file[str(path)] for name, path in files.items()}, "stdout": run.stdout,
            "stderr": run.stderr, "csv": rows, "out": out, "files": files}


def _points(row, aid):
    return {q: float(row[q]) for q in CATALOGUE[aid].questions}


def test_there_is_an_assignment_for_each_part_of_the_book_and_the_readme_lists_them():
    parts = re.findall(r'caption: "Part ([IVX]+)\.', (ROOT / "_toc.yml").read_text(encoding="utf-8"))
    assert len(parts) >= 4
    assigned = {a.notebook.metadata[make.KEY].get("part") for a in CATALOGUE.values()}
    assert set(parts) <= assigned, (parts, assigned)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for aid, a in CATALOGUE.items():
        assert f"| `{aid}` | {a.notebook.metadata[make.KEY]['part']} |" in readme, aid


def test_the_r_values_in_assignment_5_are_those_of_the_r_script_on_the_survey_it_uses():
    import numpy as np
    import pandas as pd
    from hlmlib import simulate
    fixtures = ROOT / "tests" / "fixtures"
    stored = pd.read_csv(fixtures / "assignment05_survey.csv", float_precision="round_trip")
    survey = simulate.hlm_eusup(J=10, n=20, seed=1647, lfrt_mean=0.0, gspend_mean=0.0)
    assert np.array_equal(stored.to_numpy(), survey[stored.columns].to_numpy())      # what the R script read
    reference = json.loads((fixtures / "assignment05_reference.json").read_text(encoding="utf-8"))["GSPEND"]
    [test] = [t for t in CATALOGUE["05_level2_few_clusters"].tests if t.id == "q2-test"]
    [typed] = [node.value for node in ast.walk(ast.parse(test.source))
               if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "R_VALUES"]
    typed = eval(compile(ast.Expression(typed), "R_VALUES", "eval"), {"np": np})  # noqa: S307 (the source's own)
    assert set(typed) == set(reference)
    for name, values in typed.items():
        r = reference[name]
        assert values == (r["estimate"], r["se"], np.inf if r["df"] == "inf" else r["df"], r["p"]), name


@pytest.mark.parametrize("aid", IDS)
def test_student_version_hides_solutions_and_hidden_tests(aid, built):
    student = nbformat.read(built[("student", aid)], as_version=4)
    text = "\n".join(c.source for c in student.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text and "{{points" not in text
    assert not any(_kind(c) == "hidden-test" for c in student.cells)
    assert "your code here" in text and "Write your answer here" in text
    assert student.metadata[make.KEY]["id"] == aid
    instructor = nbformat.read(built[("instructor", aid)], as_version=4)
    assert "BEGIN SOLUTION" not in "\n".join(c.source for c in instructor.cells)
    assert any(_kind(c) == "hidden-test" for c in instructor.cells)
    assert not any(c.get("outputs") for c in student.cells + instructor.cells if c.cell_type == "code")
    assert all(c["id"] == make.cell_meta(c)["id"] for c in student.cells)


@pytest.mark.parametrize("aid", IDS)
def test_every_question_has_a_visible_and_a_hidden_test(aid):
    a = CATALOGUE[aid]
    for q in a.questions:
        assert {t.hidden for t in a.tests if t.question == q} == {False, True}, q


@pytest.mark.parametrize("aid", IDS)
def test_instructor_version_scores_full_marks(aid, graded):
    row = graded["rows"][f"{aid}/instructor"]
    assert row["status"] == "ok", row
    assert float(row["score"]) == float(row["total"]) == CATALOGUE[aid].total > 0, row


@pytest.mark.parametrize("variant", ["student", "student-tests-deleted-or-pass"])
@pytest.mark.parametrize("aid", IDS)
def test_student_version_scores_zero_whatever_is_done_to_its_tests(aid, variant, graded):
    row = graded["rows"][f"{aid}/{variant}"]
    assert (float(row["score"]), float(row["total"])) == (0, CATALOGUE[aid].total), row


@pytest.mark.parametrize("aid", IDS)
def test_instructor_version_keeps_full_marks_renamed_with_scratch_cells_and_its_tests_edited_and_moved(aid, graded):
    reference = graded["rows"][f"{aid}/instructor"]
    row = graded["rows"][f"{aid}/renamed-scratch-top-tests-edited-moved"]
    assert row["assignment"] == aid
    assert _points(row, aid) == _points(reference, aid) and row["score"] == reference["score"], row


@pytest.mark.parametrize("aid, submission, name, cell_id, code, keeps", WRONG, ids=[w[2] for w in WRONG])
def test_a_wrong_answer_loses_its_points(aid, submission, name, cell_id, code, keeps, graded):
    row = graded["rows"][f"{aid}/wrong/{submission}"]
    assert row["status"] == "ok", row
    points = _points(row, aid)
    assert {q: points[q] for q in keeps} == {q: float(v) for q, v in keeps.items()}, points


def _report(graded, name):
    return (graded["out"] / f"{graded['files'][name].stem}.report.md").read_text()


def test_the_report_names_the_failing_test_and_its_message(graded):
    report = _report(graded, "04_hsb_hlm/wrong/a")         # the hard-coded ICC
    hidden = next(line for line in report.splitlines() if "| q1-hidden (hidden) |" in line)
    visible = next(line for line in report.splitlines() if "| q1-test (visible) |" in line)
    # the hidden test's checks in the kernel run in the reference run only: the message is the grader's comparison
    assert "q1 (0/2)" in hidden and "failed, 0/1: ICC: 0.180352 instead of 0.1443" in hidden, hidden
    assert "passes on its own data only: q1-hidden" in visible, visible


@pytest.mark.parametrize("aid, name, replace, insert, status", HONEST, ids=[h[1] for h in HONEST])
def test_honest_notebooks_keep_full_marks(aid, name, replace, insert, status, graded):
    row = graded["rows"][f"honest/{name}"]
    assert row["status"] == status and float(row["score"]) == CATALOGUE[aid].total, row
    if status == "ok":          # nothing refused, and no cell the student added or changed failed
        graded_nb = nbformat.read(graded["out"] / f"{graded['files'][f'honest/{name}'].stem}.graded.ipynb",
                                  as_version=4)
        errors = [(c.source[:60], grader._error_message(c.outputs)) for c in graded_nb.cells
                  if c.cell_type == "code" and grader._error_message(c.get("outputs", []))]
        assert errors == [], errors
        # the grader's own cells (set-up, tests, end) are not in IPython's history: the student's cells alone are
        student = [c.execution_count for c in graded_nb.cells[1:] if c.cell_type == "code"
                   and not any(key in c.metadata for key in grader.GRADER_KEYS)]
        assert student == list(range(1, len(student) + 1)), student


@pytest.mark.parametrize("name", GAMING)
def test_gaming_the_grader_scores_nothing(name, graded):
    status = next((status for status, names in GAMING_RUN.items() if name in names), "flagged")
    row = graded["rows"][f"gaming/{name if status == 'flagged' else status}"]
    assert float(row["score"]) == 0 and row["status"] == status, row
    noted = {"change-an-hlmlib-table-through-an-alias": "changed what the tests use: hlmlib.sandwich.CR_ADJUSTMENTS",
             "shell-escape": "not run: it runs a shell command"}
    if name in noted:       # not seen by the static check: the kit or the grader notes it for the instructor
        assert noted[name] in _report(graded, f"gaming/{status}")



async def no_static_check(code):
    """In place of grader.static_check, to run code the static check would refuse (what the run time refuses)."""
    return []


def test_attempts_the_static_check_does_not_see_score_nothing(graded):
    # values computed by hlmlib when converted, later, make q2's and q3's visible tests pass in the kernel; the hidden
    # tests' values, compared outside, make them score nothing
    row = graded["rows"]["unseen/values-computed-later-by-hlmlib"]
    report = _report(graded, "unseen/values-computed-later-by-hlmlib")
    assert float(row["score"]) == 0, row
    for test in ("q2-test", "q3-test"):
        assert f"| {test} (visible) | failed, 0/1: passes on its own data only" in report, report
    assert "the grader takes numbers, strings, NumPy arrays" in report
    name = "unseen/automagic-reset-then-hlmlib-where-numpy-only"      # no automagic: 'reset' is just a name
    row = graded["rows"][name]
    assert float(row["score"]) == 0 and row["status"] == "review", row
    assert "refused at run time: getattr(..., 'sys')" in _report(graded, name)
    row = graded["rows"]["unseen/shell-through-an-autocall-object"]     # no prefilter: set_ip is never called
    assert _points(row, "02_sandwich_by_hand")["q1"] == 0 and row["status"] == "ok", row
    row = graded["rows"]["unseen/operators-through-a-metaclass-by-another-name"]
    assert _points(row, "04_hsb_hlm")["q1"] == 0 and float(row["score"]) == 4, row
    assert "a __main__.Anything; the grader takes numbers" in _report(
        graded, "unseen/operators-through-a-metaclass-by-another-name")
    row = graded["rows"]["unseen/patch-stats-t-through-a-method"]      # once unseen: Put.sf(stats.t, ...)
    assert float(row["score"]) == 0 and row["status"] == "flagged", row
    assert "takes the method .sf from its class" in row["message"], row


def test_a_value_too_large_to_record_fails_its_test_with_a_note(graded):
    row = graded["rows"]["unseen/huge-values"]
    assert float(row["score"]) == 0 and row["status"] == "ok", row
    assert "ValueError: b: a value of more than 10,000 numbers or strings" in _report(graded, "unseen/huge-values")


def test_control_characters_from_a_submission_are_escaped_in_every_output(graded):
    name = "unseen/control-characters"
    row, report = graded["rows"][name], _report(graded, name)
    written = (graded["out"] / "written_02_sandwich_by_hand.md").read_text(encoding="utf-8")
    [line] = [line for line in graded["stdout"].splitlines() if line.startswith(str(graded["files"][name]))]
    assert line.endswith(": 0/6") and "\\rfake.ipynb" in line and "\\x1b[8m\\nother.ipynb: x: 6/6\\u202e" in line
    assert "\\rfake.ipynb" in row["message"] and "\\rfake.ipynb" in report, (row, report)
    # the lone CR at its end is a line end, as Jupyter's editor reads it (round 46), not a character to escape
    assert "My answer\\x1b[8m, hidden\n" in written and "hidden\\r" not in written
    for text in (graded["stdout"], graded["stderr"], row["message"], report, written):
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f\u202e]", text), repr(text[:300])


def test_printable_escapes_control_and_format_characters():
    assert grader.printable("a\rb\x1b[8mc\nd\te\u202ef\u2028g") == "a\\rb\\x1b[8mc\\nd\\te\\u202ef\\u2028g"
    assert grader.printable("line\n\tindented\r", lines=True) == "line\n\tindented\\r"
    assert grader.printable("café, ρ = 0.2, $\\bar x$") == "café, ρ = 0.2, $\\bar x$"


def test_a_written_answer_cannot_hide_or_forge_the_answers_after_it():
    hostile = "short\n### game/honest_02.ipynb\n*(not answered)*\n<!--\n```\n````"
    block = grader.fenced(hostile)
    fence = block.splitlines()[0][:-len("text")]
    assert set(fence) == {"`"} and len(fence) == 5 and block.endswith("\n" + fence)
    assert hostile in block and block.count(fence) == 2          # the answer sits whole inside one fence


def test_a_run_that_writes_past_its_limit_is_ended_and_the_batch_is_graded(built, monkeypatch, tmp_path):
    # a low limit for the test (the default is 100 MB): the writer's run is ended as its folder passes it; the honest
    # run beside it keeps its marks
    monkeypatch.setattr(grader, "WRITE_LIMIT", 20_000_000)
    student = nbformat.read(built[("student", "02_sandwich_by_hand")], as_version=4)
    writer = ("import time\nchunk = b'0' * 2**20\n"
              "for i in range(100):\n    with open(f'part{i}.bin', 'wb') as f:\n        f.write(chunk)\n"
              "time.sleep(60)")
    nbformat.write(_edited(student, {}, [("setup", writer)]), tmp_path / "writer.ipynb")
    writer_result, honest = grader.grade_many([tmp_path / "writer.ipynb",
                                               built[("instructor", "02_sandwich_by_hand")]], timeout=120)
    assert writer_result.status == "crashed" and writer_result.score == 0, grader.report(writer_result)
    assert "the run wrote more than 20 MB in its folder" in writer_result.message, writer_result.message
    assert honest.status == "ok" and honest.score == honest.total, grader.report(honest)


def test_the_channel_and_the_log_have_their_space_reserved(tmp_path):
    if not grader.preallocate(tmp_path / "channel", gradingkit.CHANNEL_LIMIT):
        pytest.skip("this file system cannot reserve space (fallocate)")
    st = (tmp_path / "channel").stat()
    assert st.st_size == 0 and st.st_blocks * 512 >= gradingkit.CHANNEL_LIMIT


def test_a_channel_write_that_fails_ends_the_channel_and_the_run_is_crashed_not_flagged(tmp_path, monkeypatch):
    import os
    path, real, writes = tmp_path / "channel", os.write, []
    path.touch()

    def full_disk(fd, data):      # the key and one line, then no space left
        if len(writes) == 2:
            raise OSError(28, "No space left on device")
        writes.append(data)
        return real(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    emit, fd = gradingkit._channel(str(path))
    emit("q1-test", "done", {"digest": "x"})
    for line in (("q2-test", "done", {"digest": "y"}), ("end", "end")):     # every later line refused the same way
        with pytest.raises(gradingkit.ChannelFailed, match="could not be written .OSError: .Errno 28. No space"):
            emit(*line)
    monkeypatch.undo()
    os.close(fd)
    entries, tampering = grader.read_channel(path, complete=False)
    assert entries == [("q1-test", "done", {"digest": "x"})] and tampering is None
    finish = [nbformat.v4.new_output("error", ename="ChannelFailed", evalue=str(gradingkit.ChannelFailed("it failed")),
                                     traceback=[])]
    assert grader.channel_failure(finish) == "it failed: the tests after that count 0"
    assert grader.channel_failure([nbformat.v4.new_output("error", ename="Refused", evalue="x", traceback=[])]) is None


def test_the_channel_takes_values_up_to_its_limits_and_the_grader_reads_no_more(tmp_path, monkeypatch):
    import numpy as np
    path = tmp_path / "channel"
    path.touch()
    emit, fd = gradingkit._channel(str(path))
    for value in (np.zeros(10**7), [[0.0] * 5_000, [0.0] * 5_001]):       # what record() takes
        with pytest.raises(ValueError, match="more than 10,000 numbers"):
            gradingkit._plain(value, False, "b", [gradingkit.RECORD_ELEMENTS])
    assert gradingkit.array(np.zeros((20_000, 5))).shape == (20_000, 5)       # array(): in the kernel, no limit
    with pytest.raises(ValueError, match="bytes as JSON; the grader takes at most 250,000 bytes per value"):
        emit("q1", "record", {"name": "s", "value": "x" * gradingkit.RECORD_LIMIT})
    sent = 0
    with pytest.raises(ValueError, match="1,800,000 for all the values of a run"):
        while True:
            emit("q1", "record", {"name": f"v{sent}", "value": "x" * 200_000})
            sent += 1
    emit("q1", "done", {"digest": "d"})             # the reserve: the lines that are not records still go
    emit("end", "end")
    os = __import__("os")
    os.close(fd)
    entries, tampering = grader.read_channel(path, complete=True)
    assert tampering is None and len(entries) == sent + 2 == 10, (len(entries), tampering)
    valid = path.read_bytes()                         # more than the kit writes: a line too long, or too much
    path.write_bytes(valid + b"0" * (gradingkit.RECORD_LIMIT + 1000))
    assert "longer than the grading kit writes" in grader.read_channel(path, complete=True)[1]
    path.write_bytes(valid)
    monkeypatch.setattr(gradingkit, "CHANNEL_LIMIT", len(valid) - 100)     # signed lines past the limit
    assert "more than the grading kit writes" in grader.read_channel(path, complete=True)[1]


@pytest.mark.parametrize("name", RELAYS)
def test_the_relay_that_rewrote_the_records_is_flagged_by_the_static_check(name, graded):
    row = graded["rows"][f"relay/{name}"]
    assert row["status"] == "flagged" and float(row["score"]) == 0, row
    assert "uses the attribute .contextlib" in row["message"] and "takes the method .put from its class" in \
        row["message"], row


@pytest.mark.parametrize("name", UNPICKLING_RELAYS)
def test_the_relay_that_reached_the_kit_by_unpickling_scores_nothing(name, graded):
    row = graded["rows"][f"relay/{name}"]
    assert float(row["score"]) == 0 and row["status"] in ("review", "flagged"), row
    assert "refused at run time: unpickling (it resolves gradingkit._state)" in row["message"], row


@pytest.mark.parametrize("name", REORDERED)
def test_moving_a_later_answer_above_earlier_ones_gains_none_of_the_instructors_answers(name, graded):
    # the later question's tests, which run with the instructor's earlier answers, run after the earlier questions'
    # tests wherever the student moved its cells: the attack scores what its work earns (0); moving the instructor's
    # cells the same way keeps full marks
    aid, question = REORDERED[name]
    row = graded["rows"][f"relay/{name}"]
    assert float(row["score"]) == 0 and row["status"] == "ok", row
    honest = graded["rows"][f"honest/{name}"]
    assert honest["status"] == "ok" and float(honest["score"]) == CATALOGUE[aid].total, honest


@pytest.mark.parametrize("aid", [aid for aid in IDS if any(t.reference for t in CATALOGUE[aid].tests)])
def test_a_test_with_the_instructors_earlier_answers_runs_after_every_test_above_it_in_the_source(aid):
    a = CATALOGUE[aid]
    question = next(t.question for t in a.tests if t.reference)
    source_order = [t.id for t in a.tests]
    for nb in (make.student_version(a), _moved_up(make.student_version(a), question)):
        ran = [t for _, t in sorted(grader.assemble(nb, a).positions.items())]
        for t in a.tests:
            if t.reference:
                earlier = source_order[:source_order.index(t.id)]
                assert set(earlier) <= set(ran[:ran.index(t.id)]), (t.id, ran)


@pytest.mark.parametrize("name", DISPATCH)
def test_the_annotation_evaluated_by_singledispatch_is_flagged_by_the_static_check(name, graded):
    row = graded["rows"][f"relay/{name}"]
    assert row["status"] == "flagged" and float(row["score"]) == 0, row
    assert "uses the attribute .singledispatch" in row["message"] and \
        "has the string annotation 'exec(P)'" in row["message"], row


def test_update_wrapper_as_a_getattr_by_a_name_made_at_run_time_is_flagged_by_the_static_check(graded):
    row = graded["rows"]["relay/assignment02_wrapper"]
    assert row["status"] == "flagged" and float(row["score"]) == 0, row
    for what in ("calls make_dataclass with a namespace", "makes a property outside a class body",
                 "calls update_wrapper with attribute names that are not constant"):
        assert what in row["message"], row


def test_held_deleted_files_display_updates_and_a_failed_set_up_or_output_cost_only_their_own_file(
        built, monkeypatch, tmp_path):
    # round 6 in one batch of the command, with small limits: the run holding deleted files is ended as they pass
    # the write limit; the display updates are charged (the graded notebook stays under the output limit) and the
    # message larger than the grader reads is dropped; the update_wrapper route, run as if the static check had not
    # seen it (full Python), is refused in the kernel, however update_wrapper is reached; a disk full when a run is
    # set up (the font cache's copy fails) makes that file crashed; an output that cannot be written is reported.
    # The honest file keeps full marks, and the CSV, the reports and the other outputs are written.
    monkeypatch.setattr(grader, "WRITE_LIMIT", 20_000_000)
    monkeypatch.setattr(grader, "OUTPUT_LIMIT", 200_000)
    monkeypatch.setattr(grader, "MESSAGE_LIMIT", 1_000_000)
    monkeypatch.setattr(grader, "static_check", no_static_check)
    wrapper = nbformat.read(FIXTURES / "assignment02_wrapper.ipynb", as_version=4)
    for cell in wrapper.cells:          # wraps(f).func is update_wrapper, wherever the static check looked
        cell.source = cell.source.replace("functools.update_wrapper(Holder(), obj",
                                          "functools.wraps(obj).func(Holder(), obj")
    nbformat.write(wrapper, tmp_path / "wrapper_func.ipynb")
    instructor = nbformat.read(built[("instructor", "02_sandwich_by_hand")], as_version=4)
    nbformat.write(_edited(instructor, {}, [("setup", "# the disk is full when this run is set up")]),
                   tmp_path / "disk_full.ipynb")
    real_copytree, real_execute, full = grader.shutil.copytree, grader._execute, []

    def copytree(src, dst, *args, **kwargs):
        if full:
            raise grader.shutil.Error([(str(src), str(dst), "[Errno 28] No space left on device")])
        return real_copytree(src, dst, *args, **kwargs)

    async def execute(nb, *args, **kwargs):        # its set-up runs before any other run's: nothing awaited before
        full[:] = [True] if any("the disk is full" in c.source for c in nb.cells) else []
        return await real_execute(nb, *args, **kwargs)

    monkeypatch.setattr(grader.shutil, "copytree", copytree)
    monkeypatch.setattr(grader, "_execute", execute)
    honest = built[("instructor", "02_sandwich_by_hand")]
    files = [FIXTURES / f"{name}.ipynb" for name in ROUND6] + [tmp_path / "wrapper_func.ipynb",
                                                               tmp_path / "disk_full.ipynb", honest]
    out = tmp_path / "out"
    (out / "disk_full.report.md").mkdir(parents=True)           # this output cannot be written
    status = make.main(["grade", *map(str, files), "--csv", str(tmp_path / "g.csv"), "--out", str(out), "--jobs", "2",
                        "--timeout", "120"])
    assert status == 1                                            # an output was not written
    rows = {Path(r["file"]).stem: r for r in csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8"))}
    assert len(rows) == len(files)
    held = rows["assignment02_diskhold"]
    assert held["status"] == "crashed" and float(held["score"]) == 0, held
    assert "more than 20 MB in its folder (counting the deleted files it held open)" in held["message"], held
    display = rows["assignment02_display"]
    assert display["status"] == "review" and float(display["score"]) == 0, display
    assert "output past 200,000 characters dropped" in display["message"], display
    graded_nb = nbformat.read(out / "assignment02_display.graded.ipynb", as_version=4)
    assert sum(len(json.dumps(o)) for c in graded_nb.cells for o in c.get("outputs", [])) < 250_000
    for name in ("assignment02_wrapper", "wrapper_func"):
        row = rows[name]
        assert row["status"] == "review" and float(row["score"]) == 0, row
        assert "refused at run time: functools.update_wrapper of the attribute '__globals__'" in row["message"], row
        assert "signing function: <" not in (out / f"{name}.graded.ipynb").read_text(encoding="utf-8")
    full_disk = rows["disk_full"]
    assert full_disk["status"] == "crashed" and float(full_disk["score"]) == 0, full_disk
    assert "could not set up" in full_disk["message"] and "No space left" in full_disk["message"], full_disk
    assert rows[honest.stem]["status"] == "ok" and float(rows[honest.stem]["score"]) == 6, rows[honest.stem]
    assert (out / f"{honest.stem}.report.md").is_file() and (out / "written_02_sandwich_by_hand.md").is_file()
    assert (out / "disk_full.graded.ipynb").is_file() is False and (out / "disk_full.report.md").is_dir()


def test_a_submitted_cell_can_neither_claim_to_be_the_graders_nor_keep_its_submitted_outputs(built, tmp_path):
    # grader round 20: a student's looping cell whose metadata names a grader test is reported as the student's cell;
    # a cell claiming to be the grader's last one changes nothing (it runs in IPython's history, as the student's
    # cells do); cells the run never reached show no output, not the forged ones nor a large one submitted.
    instructor = nbformat.read(built[("instructor", "02_sandwich_by_hand")], as_version=4)
    hang = "import time\nwhile True:\n    time.sleep(1)"
    claims = _edited(instructor, {}, [("setup", hang)])
    claims.cells[[make.cell_key(c) for c in claims.cells].index("setup") + 1].metadata = {
        "grader_test": "q3_hidden_instructor_bug"}
    forged = _edited(instructor, {}, [("setup", hang)])
    fake = nbformat.v4.new_output("stream", name="stdout", text="q1-test passed\nALL TESTS PASSED (grader)\n")
    code = [c for c in forged.cells if c.cell_type == "code"]
    for cell in code:
        cell.outputs, cell.execution_count = [fake], 1
    code[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 8_000_000)]
    end = _edited(instructor, {}, [("setup", "claimed = 'the end'")])
    end.cells[[make.cell_key(c) for c in end.cells].index("setup") + 1].metadata = {"grader_end": True}
    for name, nb in (("claims", claims), ("forged", forged), ("end", end)):
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    assert (tmp_path / "forged.ipynb").stat().st_size > 8_000_000
    out = tmp_path / "out"
    make.main(["grade", *(str(tmp_path / f"{n}.ipynb") for n in ("claims", "forged", "end")), "--csv",
               str(tmp_path / "g.csv"), "--out", str(out), "--jobs", "2", "--timeout", "8"])
    rows = {Path(r["file"]).stem: r for r in csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8"))}
    for name in ("claims", "forged"):
        assert rows[name]["status"] == "timeout" and float(rows[name]["score"]) == 0, rows[name]
    message = rows["claims"]["message"]
    assert "('import time') ran longer than the limit of 8 s" in message and "the test" not in message, message
    assert "q3_hidden_instructor_bug" not in (out / "claims.report.md").read_text(encoding="utf-8")
    text = (out / "forged.graded.ipynb").read_text(encoding="utf-8")
    assert "ALL TESTS PASSED" not in text and len(text) < 200_000, len(text)
    assert rows["end"]["status"] == "ok" and float(rows["end"]["score"]) == 6, rows["end"]
    graded_nb = nbformat.read(out / "end.graded.ipynb", as_version=4)
    student = [c for c in graded_nb.cells[1:] if c.cell_type == "code" and not c.source.startswith("__grader__.")]
    assert "claimed = 'the end'" in [c.source for c in student]
    assert [c.execution_count for c in student] == list(range(1, len(student) + 1)), student


def test_the_disk_watch_counts_deleted_files_held_open_or_mapped(tmp_path):
    import mmap
    import os
    before = grader.deleted_but_held(os.getpid(), tmp_path)
    with open(tmp_path / "open.bin", "wb") as kept, open(tmp_path / "mapped.bin", "wb+") as source:
        kept.write(b"0" * 3_000_000)
        kept.flush()
        source.write(b"1" * 2_000_000)
        source.flush()
        mapped = mmap.mmap(source.fileno(), 4096)
        os.remove(tmp_path / "open.bin")
        os.remove(tmp_path / "mapped.bin")
        assert grader.deleted_but_held(os.getpid(), tmp_path) - before >= 3_000_000
        source.close()                     # the map keeps the file (and a descriptor of its own)
        assert grader.deleted_but_held(os.getpid(), tmp_path) - before >= 5_000_000
        assert grader.disk_use(tmp_path, 100, os.getpid()) >= 5_000_000 > grader.disk_use(tmp_path, 100)
        mapped.close()


def test_a_look_of_the_disk_watch_costs_a_bounded_number_of_system_calls(tmp_path, monkeypatch):
    # round 10: 20,000 maps of one deleted file and 20,000 descriptors cost the grader half a core: the maps of one
    # file are looked at once, and past HELD_DESCRIPTORS descriptors the run is over its limit
    import mmap
    import os
    real_stat, looked = os.stat, []
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: looked.append(str(path)) or real_stat(path, *a, **k))
    with open(tmp_path / "mapped.bin", "wb+") as source:
        source.write(b"1" * 4096)
        source.flush()
        maps = [mmap.mmap(source.fileno(), 4096, access=mmap.ACCESS_READ) for _ in range(300)]
        os.remove(tmp_path / "mapped.bin")
        assert grader.deleted_but_held(os.getpid(), tmp_path) >= 4096
        assert sum("map_files" in p for p in looked) == 1, len(looked)
        monkeypatch.setattr(grader, "HELD_DESCRIPTORS", 100)
        assert grader.deleted_but_held(os.getpid(), tmp_path) == float("inf")      # 300 maps' descriptors
        for m in maps:
            m.close()


def test_the_disk_watch_counts_files_deeper_than_path_max_and_held_memfds(tmp_path):
    # round 8: 20 nested folders of 250-character names put a file past PATH_MAX, out of reach of any absolute path
    import os
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        for n in range(20):
            os.mkdir("d" * 249 + str(n % 10))
            os.chdir("d" * 249 + str(n % 10))
        with open("deep.bin", "wb") as file:
            file.write(b"1" * 3_000_000)
    finally:
        os.chdir(here)
    assert grader.disk_use(tmp_path, 100) >= 3_000_000
    assert grader.disk_use(tmp_path, 10) == float("inf")          # past the number of entries
    before = grader.deleted_but_held(os.getpid(), tmp_path)
    fd = os.memfd_create("hog")
    try:
        os.write(fd, b"1" * 4_000_000)
        assert grader.deleted_but_held(os.getpid(), tmp_path) - before >= 4_000_000
    finally:
        os.close(fd)


def test_nested_folders_and_disk_reservations_are_stopped_and_the_batch_is_graded(built, monkeypatch, tmp_path,
                                                                                   request):
    # round 9, in one batch of the command: each attacker is stopped at the size-limited tmpfs of its run (writes and
    # reservations past it fail) and ended past 100 MB; the folders nested 1,100 deep go with the tmpfs (and the
    # kernel may not write beside its sockets); the lines, the CSV and the reports come, nothing is left on disk,
    # and the honest file keeps full marks
    import tempfile
    short = Path(tempfile.mkdtemp(prefix="r9-"))            # the kernel's socket paths stay short enough
    monkeypatch.setattr(grader.tempfile, "tempdir", str(short))
    request.addfinalizer(lambda: grader.remove_tree(short))
    honest = built[("instructor", "02_sandwich_by_hand")]
    files = [FIXTURES / f"{name}.ipynb" for name in ROUND9] + [honest]
    out = tmp_path / "out"
    status = make.main(["grade", *map(str, files), "--csv", str(tmp_path / "g.csv"), "--out", str(out), "--jobs", "2",
                        "--timeout", "300"])   # generous: no cell here should reach it, even on a loaded machine
    assert status == 0
    rows = {Path(r["file"]).stem: r for r in csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8"))}
    assert len(rows) == len(files) and not list(short.iterdir())
    assert rows[honest.stem]["status"] == "ok" and float(rows[honest.stem]["score"]) == 6, rows[honest.stem]
    for name in ("assignment02_deadwatch", "assignment02_fallocate"):
        row = rows[name]
        assert row["status"] == "crashed" and float(row["score"]) == 0, row
        assert "the run wrote more than 100 MB in its folder" in row["message"], row
    reserved = (out / "assignment02_fallocate.graded.ipynb").read_text(encoding="utf-8")
    # RLIMIT_FSIZE: no file past 100 MB. The run may be stopped by the disk watch before the cell prints (a race
    # with the 0.2 s watch on a loaded machine); if it printed, the reservation failed as too large
    assert "150 MB: reserved" not in reserved
    assert "150 MB:" not in reserved or "150 MB: File too large" in reserved
    deep = rows["assignment02_deepbomb"]
    assert deep["status"] == "review" and float(deep["score"]) == 6, deep
    assert re.search("refused at run time: reading .*/sockets", deep["message"]), deep
    assert "work: made" in (out / "assignment02_deepbomb.graded.ipynb").read_text(encoding="utf-8")


def test_the_disk_walk_and_the_clean_up_take_any_depth_without_recursion(tmp_path):
    # round 9: os.fwalk and shutil.rmtree recurse once per level (RecursionError at about 1,000)
    import os
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        os.symlink(".", "loop")                       # followed by neither
        for _ in range(1100):
            os.mkdir("d")
            os.chdir("d")
        with open("deep.bin", "wb") as file:
            file.write(b"1" * 1_000_000)
    finally:
        os.chdir(here)
    assert grader.disk_use(tmp_path, 10_000) == float("inf")                # deeper than WRITE_DEPTH
    assert 1_000_000 <= grader.disk_use(tmp_path, 10_000, depth=2_000) < 10_000_000
    assert grader.disk_use(tmp_path, 1_000, depth=2_000) == float("inf")   # past the number of entries
    grader.remove_tree(tmp_path / "d")
    assert sorted(os.listdir(tmp_path)) == ["loop"]


def test_a_run_the_disk_watch_cannot_measure_is_ended(tmp_path, monkeypatch):
    # round 9: the watch that fails (it died silently) ends its run; so does a folder too deep (no sandbox here, so
    # the run's folders are on the disk and walked; in the sandbox they are the tmpfs, which goes with the run)
    cell = nbformat.v4.new_code_cell
    nest = "import os\nfor _ in range(100):\n    os.mkdir('d')\n    os.chdir('d')\nimport time\ntime.sleep(30)"
    unsafe = grader.Policy.for_batch([], None, tmp_path, isolate=False)
    monkeypatch.setattr(grader.Policy, "setup_cell", lambda self, *args: "pass")
    deep = asyncio.run(grader._execute(nbformat.v4.new_notebook(cells=[cell(""), cell(nest)]), unsafe,
                                       tmp_path / "deep", 60))
    assert deep.status == "crashed" and "folders deeper than 64" in deep.message, deep
    grader.remove_tree(tmp_path / "deep")
    assert not (tmp_path / "deep").exists()

    def broken(*args):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(grader, "disk_use", broken)
    (tmp_path / "sandboxed").mkdir()
    policy = grader.Policy.for_batch([], None, tmp_path / "sandboxed")
    sleeper = nbformat.v4.new_notebook(cells=[cell(""), cell("import time\ntime.sleep(30)")])
    ended = asyncio.run(grader._execute(sleeper, policy, tmp_path / "unmeasured", 60))
    assert ended.status == "crashed" and "could not be measured by the grader's disk watch (RecursionError" in \
        ended.message, ended


def test_once_its_sockets_are_made_a_kernel_can_write_nothing_beside_them(tmp_path, monkeypatch):
    # round 9: the folder of the kernel's sockets is on the disk, out of the tmpfs; past every defence in the kernel
    policy = grader.Policy.for_batch([], None, tmp_path)
    monkeypatch.setattr(grader.Policy, "setup_cell", lambda self, *args: "pass")
    probe = ("import os\ntry:\n    open('../sockets/x', 'w')\nexcept OSError as exc:\n"
             "    print(os.strerror(exc.errno))\nprint(sorted(os.listdir('../sockets')))")
    cell = nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook(cells=[cell(""), cell(probe)])
    run = asyncio.run(grader._execute(nb, policy, tmp_path / "run", 60))
    assert run.status == "ok", run
    assert "Read-only file system" in str(nb.cells[1].outputs) and "kernel.json" in str(nb.cells[1].outputs), \
        nb.cells[1].outputs


@pytest.fixture
def sandbox_run(tmp_path):
    """A batch policy and one run's folders as the grader lays them out (the work folder owned by the kernel's user).
    The run's pids cgroup is removed after the test: the runs of these tests share a name, and a group left behind
    would make the next run's ``mkdir`` fail and that run fall back to the weaker bound (RLIMIT_NPROC)."""
    import contextlib
    import sandbox
    private = tmp_path / "private"
    private.mkdir()
    policy = grader.Policy.for_batch([], None, private)
    work, root = private / "run" / "work", private / "run" / "root"
    work.mkdir(parents=True)
    root.mkdir()
    if policy.user is not None:
        os.chown(work, *policy.user)
    yield policy, private, work, root
    with contextlib.suppress(OSError):
        sandbox.release_tasks(policy.sandbox_spec(private / "run", [work], [work])["tasks"]["group"])


def test_the_sandboxs_writable_folders_are_a_size_limited_tmpfs_that_starts_with_their_files(sandbox_run):
    # round 9: past its size or its number of entries a write fails, whatever the way (a reservation too), and the
    # files it holds are the run's only: the folder on the disk gets none of them
    import sandbox
    policy, private, work, root = sandbox_run
    (work / "given.txt").write_text("from the grader")
    spec = {**policy.sandbox_spec(private / "run", [work], [work]),
            "limited": {"paths": [str(work)], "bytes": 10_000_000, "entries": 200}}
    probe = """import os
def attempt(what):
    try:
        what()
        return "done"
    except OSError as exc:
        return os.strerror(exc.errno)
def reserve(name, size):
    fd = os.open(name, os.O_CREAT | os.O_WRONLY)
    try:
        os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)
print(open("given.txt").read())
print(attempt(lambda: reserve("big", 12_000_000)), os.path.getsize("big") < 12_000_000)
os.remove("big")
print(attempt(lambda: open("blocks", "wb").write(b"0" * 12_000_000)))
os.remove("blocks")
print(attempt(lambda: [os.mkdir(f"d{k}") for k in range(300)]), os.statvfs(".").f_files)"""
    done = subprocess.run(sandbox.command(spec, [sys.executable, "-c", probe]), capture_output=True, text=True,
                          timeout=120, env=grader._kernel_environment(work, work))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["from the grader", "No space left on device True", "No space left on device",
                                        "No space left on device 200"], done.stdout
    assert sorted(p.name for p in work.iterdir()) == ["given.txt"]


def test_in_the_sandbox_fallocate_cannot_reserve_disk_past_the_file_size_limit(sandbox_run):
    # round 10 (and io_uring, round 11): FALLOC_FL_KEEP_SIZE ignores RLIMIT_FSIZE: through a file the kernel holds on the disk (its log), one
    # call reserved any amount of the disk (so does the ioctl FS_IOC_RESVSP64). Under the sandbox's seccomp filter
    # both fail, and posix_fallocate writes the blocks instead, which the limit bounds
    import sandbox
    policy, private, work, root = sandbox_run
    log = private / "run" / "kernel.log"
    log.touch()
    log.chmod(0o666)
    probe = f"""import ctypes, os, resource
resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
fd = os.open({str(log)!r}, os.O_WRONLY)
fallocate = ctypes.CDLL(None, use_errno=True).fallocate
fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
print(fallocate(fd, 1, 0, 50_000_000), os.strerror(ctypes.get_errno()))       # 1: FALLOC_FL_KEEP_SIZE
import fcntl, struct
try:                                            # FS_IOC_RESVSP64: the same reservation by ioctl (struct space_resv)
    fcntl.ioctl(fd, 0x4030582A, bytearray(struct.pack("hhxxxxqqiI16x", 0, 0, 0, 50_000_000, 0, 0)))
except OSError as exc:
    print(os.strerror(exc.errno))
try:
    os.posix_fallocate(fd, 0, 50_000_000)
except OSError as exc:
    print(os.strerror(exc.errno))
syscall = ctypes.CDLL(None, use_errno=True).syscall
for nr in (425, 426, 427):                      # round 11: io_uring's FALLOCATE runs where no system call is seen
    print(syscall(nr, 0, 0, 0, 0, 0), os.strerror(ctypes.get_errno()))"""
    spec = policy.sandbox_spec(private / "run", [work, log], [work])
    done = subprocess.run(sandbox.command(spec, [sys.executable, "-c", probe]), capture_output=True, text=True,
                          timeout=120, env=grader._kernel_environment(work, work))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["-1 Operation not supported", "Operation not supported", "File too large",
                                        *["-1 Function not implemented"] * 3], done.stdout
    assert log.stat().st_blocks * 512 <= 1_100_000, log.stat()


def test_in_the_sandbox_no_new_user_namespace_gives_the_capabilities_back(sandbox_run):
    # round 21: `unshare -U -r -m` gave code in the sandbox every capability in a nested user namespace, enough to
    # mount a tmpfs (memory no limit counts); unshare and clone with CLONE_NEWUSER now fail, clone3 is ENOSYS, and
    # threads, fork and subprocesses still start (glibc falls back to clone)
    import platform

    import sandbox
    policy, private, work, root = sandbox_run
    probe = """import ctypes, os, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
print(libc.unshare(0x10000000), os.strerror(ctypes.get_errno()))                 # CLONE_NEWUSER
print(libc.syscall(CLONE_NR, 0x10000000 | 17, 0, 0, 0, 0),
      os.strerror(ctypes.get_errno()))                                           # clone(CLONE_NEWUSER | SIGCHLD)
print(libc.syscall(435, 0, 0), os.strerror(ctypes.get_errno()))                  # clone3
print(subprocess.run(['unshare', '-U', '-r', '-m', 'true'], capture_output=True).returncode != 0)
done = []
thread = threading.Thread(target=done.append, args=(1,))
thread.start()
thread.join()
pid = os.fork()
if pid == 0:
    os._exit(3)
print(done, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), subprocess.run(['true']).returncode)"""
    probe = probe.replace("CLONE_NR", str(sandbox.NAMESPACE_CALLS[platform.machine()][0]))
    spec = policy.sandbox_spec(private / "run", [work], [work])
    done = subprocess.run(sandbox.command(spec, [sys.executable, "-c", probe]), capture_output=True, text=True,
                          timeout=120, env=grader._kernel_environment(work, work))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["-1 Operation not permitted", "-1 Operation not permitted",
                                        "-1 Function not implemented", "True", "[1] 3 0"], done.stdout


def test_a_fork_loop_in_the_sandbox_stops_at_the_runs_task_limit(sandbox_run):
    # round 10: code past the in-process defences could fork until the machine had no process ids left. Bounded
    # here (600 forks at most): the forks past TASK_LIMIT fail, and the run's pids cgroup goes with it. Where the
    # machine has the pids controller the run is in its own group (not the per-user fallback, which other runs of
    # the same user share)
    import sandbox
    policy, private, work, root = sandbox_run
    probe = """import os, signal, time
groups = open("/proc/self/cgroup").read()
children = []
try:
    for _ in range(600):
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
    print("unbounded", len(children), end=" ")
except BlockingIOError:
    print("stopped", len(children), end=" ")
print("/hlmgrader-" in groups)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)"""
    spec = policy.sandbox_spec(private / "run", [work], [work])
    done = subprocess.run(sandbox.command(spec, [sys.executable, "-c", probe]), capture_output=True, text=True,
                          timeout=120, env=grader._kernel_environment(work, work))
    sandbox.release_tasks(spec["tasks"]["group"])
    assert done.returncode == 0, done.stderr[-2000:]
    kind, forks, in_group = done.stdout.split()
    assert kind == "stopped" and grader.TASK_LIMIT // 2 < int(forks) < grader.TASK_LIMIT, done.stdout
    group = sandbox.tasks_group(spec["tasks"]["group"])
    assert group is None or in_group == "True", "the run was not in its pids cgroup"
    assert group is None or not os.path.exists(group), group


def test_the_sandbox_gives_a_new_session_keyring_a_memory_limit_and_the_oom_killers_first_place(sandbox_run):
    # round 8: the kernel keyring of the grader's session is not the sandbox's; address space is bounded
    import sandbox
    policy, private, work, root = sandbox_run
    probe = f"""import ctypes, json, resource
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
session = libc.syscall(250, 0, ctypes.c_long(-3), 1)          # KEYCTL_GET_KEYRING_ID of @s, made if missing
buf = ctypes.create_string_buffer(64)
secret = libc.syscall(250, 11, ctypes.c_long(int(__import__("sys").argv[1])), buf, 64)    # KEYCTL_READ
try:
    bytearray({grader.MEMORY_LIMIT})
    big = "allocated"
except MemoryError:
    big = "refused"
print(json.dumps({{"session": session, "secret": secret, "as": resource.getrlimit(resource.RLIMIT_AS)[0],
                   "oom": open("/proc/self/oom_score_adj").read().strip(), "big": big}}))"""
    spec = policy.sandbox_spec(private / "run", [work], [work])
    outer = f"""import ctypes, json, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
assert libc.syscall(250, 1, None) > 0                         # a session keyring of this test's own
key = libc.syscall(250 - 2, b"user", b"hlm-test-token", b"s3cret", 6, ctypes.c_long(-3))   # add_key
session = libc.syscall(250, 0, ctypes.c_long(-3), 0)
done = subprocess.run({sandbox.command(spec, [sys.executable, "-c", probe])!r} + [str(key)], capture_output=True,
                      text=True, env={grader._kernel_environment(work, work)!r})
print(json.dumps({{"key": key, "session": session, "out": done.stdout, "err": done.stderr[-2000:]}}))"""
    import platform
    if platform.machine() != "x86_64":
        pytest.skip("the probe uses x86_64's system call numbers")
    done = subprocess.run([sys.executable, "-c", outer], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    assert found["key"] > 0 and found["out"], found
    inside = json.loads(found["out"].splitlines()[-1])
    assert inside["session"] != found["session"] and inside["secret"] < 0, (found, inside)
    assert inside["as"] == grader.MEMORY_LIMIT and inside["big"] == "refused" and inside["oom"] == "1000", inside


def test_no_process_of_a_run_outlives_it(tmp_path, monkeypatch):
    # round 8: a kernel that clears its parent-death signal, spins at exit, and starts a process in a session of its
    # own; past every defence inside the kernel (no kit: the set-up cell is replaced)
    import os
    import time
    policy = grader.Policy.for_batch([], None, tmp_path)
    monkeypatch.setattr(grader.Policy, "setup_cell", lambda self, *args: "pass")
    linger = ("import atexit, ctypes, subprocess, sys, time\nctypes.CDLL(None).prctl(1, 0, 0, 0, 0)\n"
              "subprocess.Popen([sys.executable, '-c', 'import time\\nwhile True: time.sleep(0.1)'], "
              "start_new_session=True)\n"
              "def spin():\n    while True:\n        time.sleep(0.05)\natexit.register(spin)\nprint('lingering')")
    cell = nbformat.v4.new_code_cell
    nb = nbformat.v4.new_notebook(cells=[cell(""), cell(linger)])
    asyncio.run(grader._execute(nb, policy, tmp_path / "run", 60))
    assert "lingering" in str(nb.cells[1].outputs), nb.cells[1].outputs

    def of_the_run():
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read()
                kid = os.stat(f"/proc/{pid}").st_uid
            except OSError:
                continue
            if str(tmp_path).encode() in cmdline or (policy.user and kid == policy.user[0]
                                                     and b"while True" in cmdline):
                found.append((pid, cmdline[:200]))
        return found

    for _ in range(50):
        if not of_the_run():
            break
        time.sleep(0.1)
    assert not of_the_run()


def test_a_run_that_grows_while_the_disk_is_nearly_full_is_ended(tmp_path, monkeypatch):
    monkeypatch.setattr(grader, "free_space", lambda folder: 0)
    policy = grader.Policy.for_batch([], None, tmp_path)
    cell = nbformat.v4.new_code_cell
    # 3 MB to the kernel's stdout, its log on the disk; the same to its working folder, a tmpfs: memory, not disk
    writer = "import os, time\nos.write(1, b'0' * 3_000_000)\ntime.sleep(30)"
    in_memory = "import time\nopen('a.bin', 'wb').write(b'0' * 3_000_000)\ntime.sleep(2)\nprint(1)"
    quiet = nbformat.v4.new_notebook(cells=[cell(""), cell(in_memory)])
    loud = nbformat.v4.new_notebook(cells=[cell(""), cell(writer)])
    ok = asyncio.run(grader._execute(quiet, policy, tmp_path / "quiet", 60))
    assert ok.status == "ok", ok
    ended = asyncio.run(grader._execute(loud, policy, tmp_path / "loud", 60))
    assert ended.status == "crashed" and "while the disk had less than 100 MB free" in ended.message, ended


# Reads, plain Python, what a submission must not: the repository (its git objects; any file of it) and a copy of the
# sources elsewhere on the machine ({copy}); prints what it could read
READ_THE_SOURCES = """import os
import hlmlib
root = os.path.dirname(str(hlmlib.datasets.resources.files('hlmlib')))
for path in [os.path.join(root, '.git'), os.path.join(root, 'README.md'), {copy!r}]:
    try:
        print(path, open(path).read()[:100])
    except OSError as exc:
        print(path, type(exc).__name__)"""


def test_code_past_the_static_check_can_neither_evaluate_code_in_strings_nor_read_the_repository(
        built, monkeypatch, tmp_path):
    # round 4 run as if the static check had not seen it: the annotation is refused when typing compiles it (and
    # would be when it ran it), so the answers never run; reading the repository, .git included, or another copy of
    # the sources is refused, wherever it is. The honest version beside them keeps its marks.
    monkeypatch.setattr(grader, "static_check", no_static_check)
    copy = tmp_path / "another-checkout" / "assignments" / "source" / "02_sandwich_by_hand.ipynb"
    copy.parent.mkdir(parents=True)
    copy.write_bytes((make.SOURCE / copy.name).read_bytes())
    student = nbformat.read(built[("student", "02_sandwich_by_hand")], as_version=4)
    nbformat.write(_edited(student, {}, [("setup", READ_THE_SOURCES.format(copy=str(copy)))]),
                   tmp_path / "reader.ipynb")
    paths = [FIXTURES / f"{name}.ipynb" for name in DISPATCH] + [tmp_path / "reader.ipynb",
                                                                 built[("instructor", "02_sandwich_by_hand")]]
    *dispatched, reader, honest = grader.grade_many(paths, timeout=120)
    for result in dispatched:
        assert result.score == 0 and result.status == "review", grader.report(result)
        assert any(n.startswith("refused at run time: compiling a string that uses exec ('exec(P)'")
                   for n in result.notes), result.notes
    assert reader.score == 0 and reader.status == "review", grader.report(reader)
    for path in (ROOT / ".git", ROOT / "README.md", copy):
        assert any(n.startswith(f"refused at run time: reading {path} ") for n in reader.notes), reader.notes
    assert honest.status == "ok" and honest.score == honest.total, grader.report(honest)


def test_a_wrapped_run_test_cannot_make_a_failing_or_other_test_count(built, monkeypatch, tmp_path):
    # past the static check (as code with full Python would be): the student version's stubs raise in every test
    monkeypatch.setattr(grader, "static_check", no_static_check)
    student = nbformat.read(built[("student", "02_sandwich_by_hand")], as_version=4)
    paths = []
    for name, code in WRAPPERS.items():
        nbformat.write(_edited(student, {}, [("setup", code)]), tmp_path / f"{name}.ipynb")
        paths.append(tmp_path / f"{name}.ipynb")
    swallowed, other = grader.grade_many(paths, timeout=120)
    for result in (swallowed, other):
        assert result.score == 0 and not any(t.passed for t in result.tests), grader.report(result)
        assert "changed what the tests use: gradingkit.run_test" in result.notes, result.notes
    assert not any(t.completed for t in swallowed.tests), grader.report(swallowed)
    assert any("said it completed, but not for the code the grader sent" in n for n in other.notes), other.notes


def test_code_past_the_static_check_cannot_forge_the_records(built, monkeypatch, tmp_path):
    # the relay run as if the static check had not seen it (sys.stdout replaced), and a line written on the
    # grader's channel by its file descriptor: both flagged, 0; the honest version beside them keeps its marks
    monkeypatch.setattr(grader, "static_check", no_static_check)
    instructor = built[("instructor", "02_sandwich_by_hand")]
    forged = _edited(nbformat.read(instructor, as_version=4), {}, [("q1-answer", FORGE_ON_THE_CHANNEL)])
    nbformat.write(forged, tmp_path / "forged.ipynb")
    paths = [FIXTURES / "assignment02_relay.ipynb", tmp_path / "forged.ipynb", instructor]
    relay, forge, honest = grader.grade_many(paths, timeout=120)
    assert relay.status == "flagged" and relay.score == 0 and "sys.stdout replaced by a Relay" in relay.message, \
        relay.message
    assert forge.status == "flagged" and forge.score == 0 and "did not write" in forge.message, forge.message
    assert honest.status == "ok" and honest.score == honest.total


@pytest.mark.parametrize("name", ROUND7)
def test_raw_memory_through_enums_functional_api_is_flagged_by_the_static_check(name, graded):
    row = graded["rows"][f"relay/{name}"]
    assert row["status"] == "flagged" and float(row["score"]) == 0, row
    assert "calls Enum with member names that are not constant, plain names" in row["message"], row


def test_format_strings_held_in_variables_bound_to_constants_keep_full_marks(graded):
    row = graded["rows"][f"honest/{HONEST_FORMAT}"]
    assert row["status"] == "ok" and float(row["score"]) == float(row["total"]), row


def _without_enum_guard(tmp_path, monkeypatch):
    """A kit whose Enum guard is off: code with full Python, past every defence inside the kernel."""
    kit = tmp_path / "kit" / "gradingkit.py"
    kit.parent.mkdir()
    text = (ROOT / "assignments" / "gradingkit.py").read_text(encoding="utf-8")
    assert text.count("    _guard_enum(frozenset(libraries))\n") == 1
    kit.write_text(text.replace("    _guard_enum(frozenset(libraries))\n", ""), encoding="utf-8")
    monkeypatch.setattr(grader, "KIT", kit)


# round 15, past the static check: Enum's functional API with module="sys" and enum.global_enum replaced
# sys.setprofile, so numpy_only never started its profiler and an hc1_se that calls hlmlib got q2's marks; and a
# private method set on a shared scipy distribution (pandas' temp_setattr did it by a name given at run time)
GLOBAL_ENUM = """\
import enum
import functools
import hlmlib
from scipy import stats

stats.t._ppf = lambda q, df: q * 0 + 1.96


def noop(*args, **kwargs):
    return None


P = enum.Enum("P", [("setprofile", (noop,))], module="sys", type=functools.partial)
enum.global_enum(P)


def hc1_se(X, e):
    return hlmlib.ols(e, X).se(kind="HC1").to_numpy()
"""


@pytest.mark.parametrize("enum_guard", [True, False])
def test_a_sys_setprofile_replaced_through_global_enum_does_not_stop_numpy_only(enum_guard, built, monkeypatch,
                                                                                tmp_path):
    # with the kit's Enum guard the module="sys" class is refused; without it, sys.setprofile is replaced, but
    # numpy_only's profiler, bound at set-up, still catches hlmlib, and the change to sys is reported; the
    # replaced stats.t._ppf is reported either way
    monkeypatch.setattr(grader, "static_check", no_static_check)
    if not enum_guard:
        _without_enum_guard(tmp_path, monkeypatch)
    student = nbformat.read(built[("student", "02_sandwich_by_hand")], as_version=4)
    nbformat.write(_edited(student, {"q2-answer": GLOBAL_ENUM}, []), tmp_path / "noprof.ipynb")
    out = tmp_path / "out"
    make.main(["grade", str(tmp_path / "noprof.ipynb"), "--out", str(out), "--csv", str(tmp_path / "g.csv"),
               "--timeout", "120"])
    row = next(csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8")))
    assert float(row["q2"]) == 0 and row["status"] == "review", row
    report = (out / "noprof.report.md").read_text(encoding="utf-8")
    expected = ("an Enum class of the module 'sys'" if enum_guard
                else "changed what the tests use: sys.setprofile")
    assert expected in report and "changed what the tests use: scipy.stats.t._ppf" in report, report


# round 16: a script the notebook wrote, named fc-list (the one program the audit hook let start), run by
# matplotlib as its "ffmpeg": it ran hlmlib in a child process numpy_only() does not see, and got q2's marks
OFFLOAD = """\
import os
import numpy as np
import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.animation import FFMpegWriter

here = os.getcwd()
helper = os.path.join(here, "fc-list")
with open(helper, "w") as f:
    f.write("#!/bin/sh\\n"
            "cat > /dev/null\\n"
            "D=\\"$(dirname \\"$0\\")\\"\\n"
            "PY=\\"$(tr '\\\\000' '\\\\n' < /proc/$PPID/cmdline | head -1)\\"\\n"
            "\\"$PY\\" -c \\"import numpy as np, hlmlib; X = np.load('$D/X.npy'); e = np.load('$D/e.npy'); "
            "np.save('$D/se.npy', hlmlib.ols(e, X).se(kind='HC1').to_numpy())\\"\\n")
os.chmod(helper, 0o755)
mpl.rcParams["animation.ffmpeg_path"] = helper


def hc1_se(X, e):
    np.save(os.path.join(here, "X.npy"), np.asarray(X, dtype=float))
    np.save(os.path.join(here, "e.npy"), np.asarray(e, dtype=float))
    fig = plt.figure()
    with FFMpegWriter(fps=1).saving(fig, os.path.join(here, "x.mp4"), 10):
        pass
    plt.close(fig)
    return np.load(os.path.join(here, "se.npy"))
"""


def test_a_script_named_fc_list_cannot_do_the_work_in_another_process(built, monkeypatch, tmp_path):
    # the static check refuses the setting that names the program; past it, the kit refuses starting any process,
    # so hc1_se fails and q2 gets nothing
    assert any("animation.ffmpeg_path" in p for p in integrity.check_cells([(1, OFFLOAD)]))
    monkeypatch.setattr(grader, "static_check", no_static_check)
    student = nbformat.read(built[("student", "02_sandwich_by_hand")], as_version=4)
    nbformat.write(_edited(student, {"q2-answer": OFFLOAD}, []), tmp_path / "offload.ipynb")
    out = tmp_path / "out"
    make.main(["grade", str(tmp_path / "offload.ipynb"), "--out", str(out), "--csv", str(tmp_path / "g.csv"),
               "--timeout", "120"])
    row = next(csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8")))
    assert float(row["q2"]) == 0 and row["status"] != "ok", row
    report = (out / "offload.report.md").read_text(encoding="utf-8")
    assert "refused at run time: starting a process" in report, report


def _cache() -> dict:
    return {p.name: p.read_bytes() for p in sorted(grader.REFERENCE_CACHE.glob("*"))} \
        if grader.REFERENCE_CACHE.is_dir() else {}


# round 13, past the static check: a cell after the hidden tests looks for their lines, the reference code and the
# grader's cells in linecache (which warnings' formatter and tracebacks read); a cell replaces json's encoder (which
# rewrote the kit's "changed" lines) and np.testing.assert_allclose
LINECACHE_PROBE = """\
import hashlib, linecache
wanted = {wanted!r}
found = [(name, line) for name, entry in list(linecache.cache.items()) if len(entry) > 2 for line in entry[2]
         if hashlib.sha256(line.strip().encode()).hexdigest() in wanted
         or ('__grader__' + '.run_test(') in line or ('gradingkit' + '.setup(') in line]
print('LINECACHE', len(linecache.cache), 'FOUND', len(found), found[:3])"""
ENCODER_PATCH = """\
import json
import numpy as np

class Enc(json.JSONEncoder):
    def encode(self, o):
        if isinstance(o, list) and len(o) == 4 and o[2] in ("changed", "tampered"):
            o = [o[0], o[1], "changed", []]
        return super().encode(o)

json._default_encoder = Enc()
json.dumps = lambda o, **k: Enc().encode(o)
np.testing.assert_allclose = lambda *a, **k: None"""


def test_the_grader_leaves_no_test_nor_its_own_cells_in_linecache_and_a_replaced_json_encoder_is_reported(
        built, monkeypatch, tmp_path):
    monkeypatch.setattr(grader, "static_check", no_static_check)
    a = CATALOGUE["01_moulton_by_simulation"]
    student = nbformat.read(built[("student", a.id)], as_version=4)
    own = {line.strip() for c in student.cells if c.cell_type == "code" for line in c.source.splitlines()}
    secret = [line.strip() for t in a.tests for line in (make.recorded_part(t.source) if t.hidden else t.source)
              .splitlines() + [line for code, _ in make.reference_cells(a, t) for line in code.splitlines()]]
    wanted = {hashlib.sha256(line.encode()).hexdigest() for line in secret if len(line) >= 20 and line not in own}
    assert len(wanted) >= 10
    probe = _edited(student, {}, [("q5-answer", LINECACHE_PROBE.format(wanted=sorted(wanted)))])
    nbformat.write(probe, tmp_path / "probe.ipynb")
    patched = _edited(nbformat.read(built[("instructor", "02_sandwich_by_hand")], as_version=4), {},
                      [("setup", ENCODER_PATCH)])
    nbformat.write(patched, tmp_path / "patched.ipynb")
    out = tmp_path / "out"
    assert make.main(["grade", str(tmp_path / "probe.ipynb"), str(tmp_path / "patched.ipynb"), "--out", str(out),
                      "--csv", str(tmp_path / "g.csv"), "--timeout", "120"]) == 0
    text = (out / "probe.graded.ipynb").read_text(encoding="utf-8")
    assert re.search(r"LINECACHE \d+ FOUND 0 \[\]", text), re.findall(r"LINECACHE.{0,300}", text)
    rows = {Path(r["file"]).stem: r for r in csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8"))}
    assert rows["patched"]["status"] == "review", rows["patched"]
    report = (out / "patched.report.md").read_text(encoding="utf-8")
    for changed in ("numpy.testing.assert_allclose", "json._default_encoder", "json.dumps"):
        assert f"changed what the tests use: {changed}" in report, report


# round 14, past the static check: update_wrapper on a module (it set os.fspath), and the functions the audit hook
# called at each event (os.fspath, os.fsdecode, os.path.realpath, os.write in the refusal log) replaced in the kernel
HOOK_BLINDING = """\
import functools, os, posixpath
target = "/proc/1/cmdline"
outcome = {}
def attempt(label, action):
    try:
        action()
        outcome[label] = "allowed"
    except PermissionError:
        outcome[label] = "refused"
    except Exception as exc:
        outcome[label] = type(exc).__name__
class Holder:
    def __init__(self, f):
        self.fspath = f
def model():
    return 1
@functools.wraps(model)
def mine():
    return 2
attempt("wraps a module", lambda: functools.wraps(Holder(len), assigned=("fspath",), updated=())(os))
attempt("wraps a class", lambda: functools.wraps(model)(Holder))
attempt("wraps the notebook's function", lambda: functools.wraps(model)(mine))
attempt("lru_cache", lambda: functools.lru_cache(model)())
attempt("read a refused path before", lambda: open(target).read())
real_fspath, real_fsdecode, real_realpath, real_write = os.fspath, os.fsdecode, posixpath.realpath, os.write
os.fspath = lambda p: "." if p == target else real_fspath(p)
os.fsdecode = lambda p: "." if p == target else real_fsdecode(p)
posixpath.realpath = lambda p, **k: "." if p == target else real_realpath(p, **k)
os.write = lambda fd, data: len(data)
attempt("read a refused path", lambda: open(target).read())
attempt("list a refused folder", lambda: os.listdir(target.rsplit("/", 1)[0]))
os.write = real_write
print("BLINDING", sorted(outcome.items()))"""


def test_a_replaced_fspath_or_update_wrapper_on_a_module_does_not_blind_the_audit_hook(built, monkeypatch, tmp_path):
    monkeypatch.setattr(grader, "static_check", no_static_check)
    student = nbformat.read(built[("student", "01_moulton_by_simulation")], as_version=4)
    nbformat.write(_edited(student, {}, [("q5-answer", HOOK_BLINDING)]), tmp_path / "blind.ipynb")
    out = tmp_path / "out"
    make.main(["grade", str(tmp_path / "blind.ipynb"), "--out", str(out), "--csv", str(tmp_path / "g.csv"),
               "--timeout", "120"])
    text = (out / "blind.graded.ipynb").read_text(encoding="utf-8")
    found = re.findall(r"BLINDING (\[.*?\])", text)
    assert found, text[-3000:]
    assert ast.literal_eval(found[0].replace('\\"', '"')) == [
        ("list a refused folder", "refused"), ("lru_cache", "allowed"), ("read a refused path", "refused"),
        ("read a refused path before", "refused"),
        ("wraps a class", "refused"), ("wraps a module", "refused"), ("wraps the notebook's function", "allowed")]
    row = next(csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8")))
    assert row["status"] == "review", row
    report = (out / "blind.report.md").read_text(encoding="utf-8")
    for what in ("reading /proc/1/cmdline", "reading /proc/1", "functools.update_wrapper of a module"):
        assert what in report, report        # logged, the replaced os.write notwithstanding
    for changed in ("os.fspath", "os.fsdecode", "posixpath.realpath"):
        assert f"changed what the tests use: {changed}" in report, report


def test_code_with_full_python_can_neither_read_the_solutions_nor_change_the_reference_values(
        built, monkeypatch, tmp_path):
    # round 7 past the static check and the kit's Enum guard: the audit hook is off, and only the sandbox holds.
    # The solution is not found, the cache is not there to rewrite (nor written), and the batches after it grade
    # an honest notebook as before.
    monkeypatch.setattr(grader, "static_check", no_static_check)
    _without_enum_guard(tmp_path, monkeypatch)
    honest = built[("instructor", "02_sandwich_by_hand")]
    before = _cache()
    out = tmp_path / "out"
    status = make.main(["grade", *(str(FIXTURES / f"{n}.ipynb") for n in ROUND7), str(honest), "--out", str(out),
                        "--csv", str(tmp_path / "g.csv"), "--timeout", "120"])
    assert status == 0
    rows = {Path(r["file"]).stem: r for r in csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8"))}
    for name in ROUND7:
        assert float(rows[name]["score"]) == 0 and rows[name]["status"] != "flagged", rows[name]
        text = (out / f"{name}.graded.ipynb").read_text(encoding="utf-8")
        assert "hook off" in text, f"{name} no longer turns the hook off: the sandbox is not what this tests"
    assert "make.py found in []" in (out / "assignment02_escape.graded.ipynb").read_text(encoding="utf-8")
    assert "No such file or directory" in (out / "assignment02_tamper.graded.ipynb").read_text(encoding="utf-8")
    assert float(rows[honest.stem]["score"]) == float(rows[honest.stem]["total"]), rows[honest.stem]
    after = _cache()
    assert {k: v for k, v in after.items() if k in before} == before
    for name, content in after.items():
        if name.endswith(".json"):
            grader._signed(grader.REFERENCE_CACHE / name, json.loads(content))
    [again] = grader.grade_many([honest], timeout=120)
    assert again.status == "ok" and again.score == again.total, grader.report(again)


def test_the_sandbox_shows_a_kernel_neither_the_repository_nor_the_reference_cache(sandbox_run):
    # plain Python in a kernel's sandbox, as the grader makes it: it imports hlmlib and reads its data, writes in its
    # folder, and finds no file of the repository but hlmlib and the environment; it writes nowhere else
    import hlmlib
    import sandbox
    policy, private, work, root = sandbox_run
    secret = [make.SOURCE / "02_sandwich_by_hand.ipynb", ROOT / "assignments" / "make.py", ROOT / ".git",
              ROOT / "README.md", grader.REFERENCE_CACHE / "key", private / "kit" / ".." / "matplotlib"]
    probe = f"""import json, os, hlmlib
seen = {{p: os.path.exists(p) for p in {[str(p) for p in secret]!r}}}
writes = {{}}
for p in {[str(grader.REFERENCE_CACHE / "x.json"), str(ROOT / "hlmlib" / "x.py"), "/tmp/x", str(work / "x")]!r}:
    try:
        open(p, "w").write("x")
        writes[p] = "written"
    except OSError as exc:
        writes[p] = exc.strerror
print(json.dumps({{"seen": seen, "writes": writes, "uid": os.getuid(), "rows": len(hlmlib.datasets.load_hsb()),
                  "repository": sorted(os.listdir({str(ROOT)!r}))}}))"""
    spec = policy.sandbox_spec(private / "run", [work], [work])
    done = subprocess.run(sandbox.command(spec, [sys.executable, "-c", probe]), capture_output=True, text=True,
                          env=grader._kernel_environment(work, work), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert not any(found["seen"].values()), found
    assert found["writes"].pop(str(work / "x")) == "written", found
    assert len(found["writes"]) == 3 and "written" not in found["writes"].values(), found
    assert not (grader.REFERENCE_CACHE / "x.json").exists() and not (ROOT / "hlmlib" / "x.py").exists()
    assert set(found["repository"]) <= {"hlmlib", ".venv"} and "hlmlib" in found["repository"], found
    assert found["rows"] == len(hlmlib.datasets.load_hsb())
    import os
    # as root, the kernel runs as an unprivileged user; as a normal user, as that user (in a user namespace)
    assert found["uid"] == (policy.user[0] if os.geteuid() == 0 else os.getuid()) != 0, found


def test_a_cached_reference_changed_outside_a_batch_is_not_used(built, capsys):
    honest = built[("instructor", "02_sandwich_by_hand")]
    grader.grade_many([honest], timeout=120)                      # the cache is there, signed
    [path] = grader.REFERENCE_CACHE.glob("02_sandwich_by_hand-*.json")
    content = json.loads(path.read_text(encoding="utf-8"))
    test_id, records = next((t, r) for t, r in content["values"].items() if r)
    name = next(iter(records))
    records[name]["value"] = "changed"
    path.write_text(json.dumps(content), encoding="utf-8")
    capsys.readouterr()
    [result] = grader.grade_many([honest], timeout=120)
    assert "its signature does not match" in capsys.readouterr().err
    assert result.status == "ok" and result.score == result.total, grader.report(result)
    fresh = json.loads(path.read_text(encoding="utf-8"))
    assert fresh["values"][test_id][name]["value"] != "changed" and grader._signed(path, fresh)


def test_without_a_sandbox_nothing_is_graded_unless_asked_to_run_as_the_same_user(built, monkeypatch, tmp_path,
                                                                                  capsys):
    import sandbox
    monkeypatch.setattr(sandbox, "unavailable", lambda *args, **kwargs: "unshare: Operation not permitted")
    honest = str(built[("instructor", "02_sandwich_by_hand")])
    assert make.main(["grade", honest, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot be isolated on this machine (unshare: Operation not permitted)" in err and \
        "--unsafe-same-user" in err, err
    assert not (tmp_path / "out").exists()
    assert make.main(["grade", honest, "--out", str(tmp_path / "out"), "--unsafe-same-user"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("6/6")


def test_a_run_cannot_write_outside_its_folder_nor_read_the_grader(graded):
    row = graded["rows"]["gaming/review"]
    report = _report(graded, "gaming/review")
    assert row["status"] == "review" and float(row["score"]) == 0, row
    for what in (f"writing {ROOT / 'hlmlib' / 'zz_planted.py'}", f"writing {ROOT / 'assignments' / 'zz_copied.py'}",
                 f"reading {ROOT / 'assignments' / 'source' / '02_sandwich_by_hand.ipynb'}", f"writing {STARTUP}"):
        assert f"refused at run time: {what}" in report, report
    assert not (ROOT / "hlmlib" / "zz_planted.py").exists() and not (ROOT / "assignments" / "zz_copied.py").exists()
    assert not STARTUP.exists()
    graded_nb = nbformat.read(graded["out"] / f"{graded['files']['gaming/review'].stem}.graded.ipynb", as_version=4)
    planted = next(c for c in graded_nb.cells if "import tabulate" in c.source)   # the real one, not the file written
    assert not any(o.get("output_type") == "error" for o in planted.outputs), planted.outputs


def test_csv_matches_the_printed_lines(graded):
    printed = {}
    for line in graded["stdout"].splitlines():
        m = re.match(r"^(.*?): (\S+): .*?(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)$", line)
        assert m, line
        printed[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    assert printed == {r["file"]: (r["assignment"], r["score"], r["total"]) for r in graded["csv"]}
    assert len(printed) == len(graded["files"])


def test_written_answers_are_collected_beside_the_model_answer(graded):
    for aid in IDS:
        text = (graded["out"] / f"written_{aid}.md").read_text()
        a = CATALOGUE[aid]
        n, answer = next((n, c) for n, c in enumerate(a.notebook.cells) if _kind(c) == "written")
        assert make.TEXT_SOLUTION.search(answer.source).group(1).strip()[:60] in text
        prompt = next(c.source for c in reversed(a.notebook.cells[:n]) if c.cell_type == "markdown")
        assert prompt.startswith("**Question") and make.render_points(a, prompt)[:80] in text   # the question asked
        assert str(graded["files"][f"{aid}/instructor"]) in text and "*(not answered)*" in text
        damaged = text.split(f"### {graded['files'][f'{aid}/student-tests-deleted-or-pass']}")[1].split("###")[0]
        assert ABOVE_THE_PLACEHOLDER in damaged          # an answer typed in a cell the student added, labelled
        assert "*(written outside the answer cell, which holds no answer)*" in damaged, damaged


def _writing(a, nb):
    """The written-answers document's entry for the one written answer of ``a`` in ``nb``, its report note, and the
    text the student wrote outside the written answers."""
    layout = grader.written_layout(a)
    writing = grader.student_writing(nb, layout)
    (_, answer_id, _), = layout.answers
    text, note, _, _ = grader.written_entry(writing, answer_id)
    return text, note, "\n".join(piece[1] for piece in writing[None].pieces)


def _at(nb, key):
    return next(i for i, c in enumerate(nb.cells) if make.cell_key(c) == key)


def test_whatever_the_student_did_to_the_cells_around_a_written_answer_its_text_reaches_the_document(tmp_path):
    # round 25: assignment 2's question 4 (a question cell, a code cell of the source, the answer cell); no case may
    # lose the student's text, and the report's note comes exactly when the answer cell does not hold the answer
    a = CATALOGUE["02_sandwich_by_hand"]
    student = make.student_version(a)
    md = nbformat.v4.new_markdown_cell
    no_answer = ("the answer cell q4-answer holds no answer; what the student wrote in its part of the notebook is in "
                 "the written answers")
    cases = {}
    nb = copy.deepcopy(student)                      # the question split in two, answer (a) typed between the parts
    at = _at(nb, "q4-prompt")
    first, second = copy.deepcopy(nb.cells[at]), copy.deepcopy(nb.cells[at])
    cut = len(first.source) // 2                     # mid-line
    first.source, second.source = first.source[:cut], first.source[cut:]
    nb.cells[at:at + 1] = [first, md("ANSWER (a)."), second]
    nb.cells[_at(nb, "q4-answer")].source = "ANSWER (b)."
    cases["split question"] = (nb, ["ANSWER (a).", "ANSWER (b)."], None)
    nb = copy.deepcopy(student)                      # comments typed into the source's code cell under the question
    nb.cells[_at(nb, "q4-code")].source += "\n# ANSWER IN THE CODE CELL."
    cases["comments in the code cell"] = (nb, ["*(added to the code cell q4-code, after the cell q4-prompt)*",
                                               "# ANSWER IN THE CODE CELL."],
                                          no_answer)
    nb = copy.deepcopy(student)                      # Merge Cell Above on an answered answer cell
    at = _at(nb, "q4-answer")
    nb.cells[at - 1].source += "\n\nMERGED ANSWER."
    del nb.cells[at]
    cases["merged above"] = (nb, ["*(written outside the answer cell, which was deleted)*", "MERGED ANSWER."],
                             "the answer cell q4-answer was deleted; what the student wrote in its part of the "
                             "notebook is in the written answers")
    nb = copy.deepcopy(student)                      # the code cell copied below the answer, the answer continued
    at = _at(nb, "q4-answer")
    nb.cells[at].source = "PART 1."
    nb.cells[at + 1:at + 1] = [copy.deepcopy(nb.cells[at - 1]), md("PART 2.")]
    cases["code copied below"] = (nb, ["PART 1.", "PART 2."], None)
    nb = copy.deepcopy(student)                      # the answer cell moved above the code cell, continued below it
    at = _at(nb, "q4-answer")
    answer = nb.cells.pop(at)
    answer.source = "PART 1."
    nb.cells[at - 1:at - 1] = [answer]
    nb.cells.append(md("PART 2."))
    cases["answer moved above the code"] = (nb, ["PART 1.", "PART 2."], None)
    nb = copy.deepcopy(student)                      # the question cell replaced by the answer
    at = _at(nb, "q4-prompt")
    nb.cells[at] = md("ANSWER WHERE THE QUESTION WAS.")
    cases["question replaced"] = (nb, ["see the end of this document"],
                                  "the answer cell q4-answer holds no answer; what the student wrote elsewhere in the "
                                  "notebook is in the written answers")
    nb = copy.deepcopy(student)                      # a tick added to the question, the answer in place: no note
    nb.cells[_at(nb, "q4-prompt")].source += " ✓"
    nb.cells[_at(nb, "q4-answer")].source = "ANSWERED IN PLACE."
    cases["ticked"] = (nb, ["*(the question's cell, after the cell q3-test, as the student left it: + a line not in "
                            "the cell as handed out at that place (typed, copied, changed or moved), - a line of it "
                            "not there)*", "- more than", "+ more than", "✓",
                            "ANSWERED IN PLACE."], None)
    for name, (nb, shown, note) in cases.items():
        text, got, other = _writing(a, nb)
        assert all(s in text for s in shown), (name, text)
        assert [text.index(s) for s in shown] == sorted(text.index(s) for s in shown), (name, text)
        assert got == note, (name, got)
    assert "ANSWER WHERE THE QUESTION WAS." in _writing(a, cases["question replaced"][0])[2]
    # a visible test cell changed to markdown and typed into: its new lines are text outside the written answers
    nb = copy.deepcopy(student)
    test = nb.cells[_at(nb, "q3-test")]
    test.cell_type, test.source = "markdown", test.source + "\nTEXT IN A TEST CELL."
    test.pop("outputs"), test.pop("execution_count")
    other = _writing(a, nb)[2]
    assert "*(the markdown cell q3-test, after the cell q3-answer, as the student left it" in other, other
    assert "\n+ TEXT IN A TEST CELL." in other, other
    # a copy of the answer cell pasted under question 1 as notes: shown with its place; the notes the student added
    # before question 2 are not taken into the answer, but listed as text outside the written answers
    nb = copy.deepcopy(student)
    nb.cells[_at(nb, "q4-answer")].source = "MY ANSWER."
    answer = copy.deepcopy(nb.cells[_at(nb, "q4-answer")])
    answer.source = "NOTES ON Q1."
    nb.cells.insert(_at(nb, "q1-test") + 1, answer)
    nb.cells.insert(_at(nb, "q2-prompt") + 1, md("SCRATCH FOR Q2."))
    text, note, other = _writing(a, nb)
    assert "*(the answer cell or a copy of it, after the cell q1-test)*\nNOTES ON Q1." in text and "MY ANSWER." in text
    assert "SCRATCH FOR Q2." not in text and "SCRATCH FOR Q2." in other and note is None, (text, other)
    # ... but a cell added right under that copy follows it, with its place (it may continue a moved answer)
    nb.cells.insert(_at(nb, "q4-answer") + 1, md("RIGHT UNDER THE COPY."))
    text = _writing(a, nb)[0]
    assert ("*(in a new markdown cell after a copy or part of the cell q4-answer that is below the cell q1-test)*\n"
            "```text\nRIGHT UNDER THE COPY." in text), text
    # round 26: a copy of the answered answer cell turned into scratch code, an import added to the set-up cell, a
    # scratch code cell beside a blank answer: shown where they belong, but no note (no prose outside the answer
    # cell); an answer cell moved to the top and continued right under it: both parts under the question; an image
    # on a markdown copy of a test cell: only in the submitted notebook (the graded one drops test cells)
    nb = copy.deepcopy(student)
    nb.cells[_at(nb, "q4-answer")].source = "MY ANSWER."
    scratch = copy.deepcopy(nb.cells[_at(nb, "q4-answer")])
    scratch.cell_type, scratch.source, scratch.outputs, scratch.execution_count = "code", "print(1)", [], None
    nb.cells.insert(_at(nb, "q1-answer") + 1, scratch)
    nb.cells[_at(nb, "setup")].source += "\nimport pandas as pd"
    text, note, other = _writing(a, nb)
    assert "MY ANSWER." in text and "print(1)" in text and note is None and other == "", (text, note, other)
    nb = copy.deepcopy(student)
    nb.cells[_at(nb, "setup")].source += "\nimport pandas as pd\n# I used pandas for the table"
    nb.cells.insert(_at(nb, "q4-answer"), nbformat.v4.new_code_cell("print(2)"))
    text, note, other = _writing(a, nb)
    # round 29: a comment in code elsewhere is listed at the end, with no note (the entry points there, the answer
    # cell being blank); text typed in a markdown cell, a note; answered in place, comments elsewhere: no pointer
    assert "print(2)" in text and "# I used pandas for the table" in other and note is None, (other, note)
    assert "see the end of this document" in text, text
    nb.cells.insert(1, md("Jane Smith"))
    assert _writing(a, nb)[1] == ("the answer cell q4-answer holds no answer; what the student wrote elsewhere in the "
                                  "notebook is in the written answers")
    nb = copy.deepcopy(student)
    nb.cells[_at(nb, "q4-answer")].source = "MY ANSWER."
    nb.cells.insert(_at(nb, "q3-test") + 1, nbformat.v4.new_code_cell("# check the shapes\nprint(1)"))
    text, note, other = _writing(a, nb)
    assert text == "MY ANSWER." and note is None and "# check the shapes" in other, (text, other)
    # rounds 29-30: a line typed into the question's cell, or a part of it after Split Cell, that repeats a line of
    # the question, and text typed over a copy of a markdown cell (lines like $$ that the cell also has): the cell
    # as the student left it, in full; a copy left as handed out adds nothing
    for split in (False, True):
        nb = copy.deepcopy(student)
        at = _at(nb, "q4-prompt")
        line = max(nb.cells[at].source.split("\n"), key=len)
        if split:
            nb.cells.insert(at + 1, copy.deepcopy(nb.cells[at]))
            nb.cells[at].source, nb.cells[at + 1].source = nb.cells[at].source[:20], nb.cells[at].source[20:]
        nb.cells[at + split].source += "\nMY ANSWER:\n" + line
        text, note, other = _writing(a, nb)
        assert text.count(line.strip()) == 2 and "MY ANSWER:" in text, text
        assert "*(the question's cell, after the cell q3-test, as the student left it" in text, text
        assert note == ("the answer cell q4-answer holds no answer; what the student wrote in its part of the notebook "
                        "is in the written answers") and other == "", (note, other)
    nb = copy.deepcopy(student)
    intro = copy.deepcopy(nb.cells[0])
    nb.cells.insert(1, copy.deepcopy(intro))
    intro.source = "My notes:\n" + nb.cells[0].source
    nb.cells.insert(2, intro)
    other = _writing(a, nb)[2]
    assert other.count("as the student left it") == 1 and "\n+ My notes:\n  " in other, other
    # round 31: words in code elsewhere (a docstring, a message, an answer as strings in pieces) are listed, with no
    # note and, beside an answer in place, no pointer; an f-string answer in the part of a blank answer: a note; a
    # copy of the question's cell shown with its place, and a cell under a copy named so; a typo marked
    helper = 'def summarize(rates):\n    """Print the rejection rates of each test, one line for each test."""'
    pieces = 'ans = ("Both x and u have a " + "cluster component, so " + "the classical errors over-reject")'
    for blank in (True, False):
        for code in (helper, pieces):
            nb = copy.deepcopy(student)
            if not blank:
                nb.cells[_at(nb, "q4-answer")].source = "MY ANSWER."
            nb.cells.insert(_at(nb, "q3-test") + 1, nbformat.v4.new_code_cell(code))
            text, note, other = _writing(a, nb)
            assert code in other and note is None, (code, other, note)
            assert ("see the end of this document" in text) == blank, text
    nb = copy.deepcopy(student)
    nb.cells[_at(nb, "q4-code")].source += '\nprint(f"Firm clustering gives {se} which is larger than White {w} here")'
    assert _writing(a, nb)[1] == ("the answer cell q4-answer holds no answer; what the student wrote in its part of "
                                  "the notebook is in the written answers")
    nb = copy.deepcopy(student)
    question = copy.deepcopy(nb.cells[_at(nb, "q4-prompt")])
    question.source += "\nMY ANSWER AT THE TOP."
    intro = copy.deepcopy(nb.cells[0])
    nb.cells[_at(nb, "q4-answer"):_at(nb, "q4-answer")] = [intro, md("UNDER A COPY OF THE INTRO.")]
    nb.cells.insert(0, question)
    nb.cells[_at(nb, "intro")].source = nb.cells[_at(nb, "intro")].source.replace("the", "teh", 1)
    text, note, other = _writing(a, nb)
    assert "*(the question's cell, at the top of the notebook, as the student left it" in text, text
    assert "\n+ MY ANSWER AT THE TOP." in text, text
    assert ("*(in a new markdown cell after a copy or part of the cell intro that is below the cell q4-code)*\n"
            "```text\nUNDER A COPY OF THE INTRO."
            in other)
    assert len([line for line in other.split("\n") if line.startswith(("+ ", "- "))]) == 2, other
    # round 32: the cell as handed out is the student's version, never the solution: a code answer written right
    # and turned into markdown (M by mistake) is listed, marked against the placeholder, and noted (it did not run);
    # a code answer that no longer parses is listed whole, its solution-like lines too; a question split at a line
    # end, a new cell between its parts, and a word typed in the second part: one line marked; copies of code cells
    # typed into at the end of the notebook: listed with their place, after the answer
    solution = make.instructor_version(a).cells[_at(student, "q1-answer")].source
    nb = copy.deepcopy(student)
    nb.cells[_at(nb, "q4-answer")].source = "MY ANSWER."
    nb.cells[_at(nb, "q1-answer")].update(cell_type="markdown", source=solution)
    nb.cells[_at(nb, "q1-answer")].pop("outputs"), nb.cells[_at(nb, "q1-answer")].pop("execution_count")
    result = grader.new_result(Path("m.ipynb"), a, nb)
    grader.add_writing(result, {})
    other = "\n".join(piece[1] for piece in result.writing[None].pieces)
    handed = student.cells[_at(student, "q1-answer")].source.split("\n")
    assert all(("  " if line in handed else "+ ") + line in other.split("\n") for line in solution.split("\n")), other
    assert result.notes == ["the code answer cell q1-answer was changed to a markdown cell, so it did not run; its "
                            "text is in the written answers"], result.notes
    nb.cells.insert(_at(nb, "q1-answer"), copy.deepcopy(student.cells[_at(student, "q1-answer")]))
    result = grader.new_result(Path("m.ipynb"), a, nb)         # a code copy of it is left, and runs
    grader.add_writing(result, {})
    assert result.notes == ["a part or copy of the code answer cell q1-answer is a markdown cell, so it did not run; "
                            "its text is in the written answers"], result.notes
    assert "\n+     e = y - X @ b" in "\n".join(p[1] for p in result.writing[None].pieces)
    # round 33: the placeholder turned into markdown: noted as such (nothing to list); one-word lines (pass,
    # continue) are Python, not IPython's help
    nb = copy.deepcopy(student)
    nb.cells[_at(nb, "q1-answer")].cell_type = "markdown"
    result = grader.new_result(Path("m.ipynb"), a, nb)
    grader.add_writing(result, {})
    assert result.notes[-1] == ("the code answer cell q1-answer was changed to a markdown cell, so it did not run (it "
                                "holds the code as handed out)"), result.notes
    for code in ("for g in range(3):\n    if g > 1:\n        continue",
                 "try:\n    import a\nexcept ImportError:\n    pass",
                 "def f(v):\n    if v is None:\n        return\n    return v"):
        assert grader._code_prose(code) == "", code
    # round 37: a raw copy of the answer cell holding the answer, the answer cell left blank in place (round 38: or
    # the other way round, which cannot be told apart): not "the answer cell was changed"
    nb = copy.deepcopy(student)
    raw = copy.deepcopy(nb.cells[_at(nb, "q4-answer")])
    raw.update(cell_type="raw", source="MY ANSWER IN A RAW COPY.")
    nb.cells.insert(0, raw)
    result = grader.new_result(Path("m.ipynb"), a, nb)
    grader.add_writing(result, {})
    assert "*(the answer cell or a copy of it is a raw cell)*\n```text\nMY ANSWER IN A RAW COPY." in \
        grader.written_entry(result.writing, "q4-answer")[0]
    assert result.notes == ["the answer cell q4-answer or a copy of it is a markdown cell with no answer and the other "
                            "a raw cell; its text is in the written answers"], result.notes
    # round 39: the solution typed into the visible test cell, under the answer left as handed out: it did not run
    # (the instructor's test runs there), so its lines are listed and noted; for an assignment without written
    # answers, the note points to the submitted notebook; only lines added count (nothing for a test cell re-saved)
    nb = copy.deepcopy(student)
    instructor = make.instructor_version(a)
    typed = instructor.cells[_at(instructor, "q3-answer")].source
    nb.cells[_at(nb, "q3-test")].source = typed + "\n\n" + nb.cells[_at(nb, "q3-test")].source
    result = grader.new_result(Path("m.ipynb"), a, nb)
    grader.add_writing(result, {})
    other = "\n".join(piece[1] for piece in result.writing[None].pieces)
    added = [line for line in typed.split("\n") if line.strip()]
    assert "*(added to the test cell q3-test, after the cell q3-answer)*\n```text\n" + "\n".join(added) in other, other
    assert result.notes == [f"the test cell q3-test holds {len(added)} line(s) of code not in the source's, which did "
                            "not run (the grader runs the instructor's test in its place): they are in the written "
                            "answers"], result.notes
    # round 40: compared as code, statement by statement: a test cell re-formatted (as black formats on save;
    # ast.unparse re-wraps every line and drops the comments) holds no code of the student's; a comment typed into
    # one is listed with no note; a line that does not parse as Python (a magic) counts as code
    test = student.cells[_at(student, "q3-test")].source
    nb = copy.deepcopy(student)
    nb.cells[_at(nb, "q3-test")].source = ast.unparse(ast.parse(test))
    assert grader._added_lines(ast.unparse(ast.parse(test)), test), "the re-formatted cell has no new line"
    nb.cells[_at(nb, "q2-test")].source += "\n# I think this test is wrong about the df"
    result = grader.new_result(Path("m.ipynb"), a, nb)
    grader.add_writing(result, {})
    other = "\n".join(piece[1] for piece in result.writing[None].pieces)
    assert result.notes == [] and "q3-test" not in other, (result.notes, other)
    assert "*(added to the test cell q2-test, after the cell q2-answer)*\n```text\n# I think this test is wrong about " \
           "the df\n```" in other, other
    # round 41: a comment typed after an unchanged statement is listed; a number changed on the second line of a
    # two-line statement is one line of code; a lone carriage return (a line break to Python only) breaks nothing
    nb = copy.deepcopy(student)
    nb.cells[_at(nb, "q4-answer")].source = "MY ANSWER."
    q1 = nb.cells[_at(nb, "q1-test")]
    q1.source = q1.source.replace(".params.to_numpy()\n", ".params.to_numpy()  # I GET ANOTHER b ON MY LAPTOP\n")
    nb.cells[_at(nb, "q3-test")].source = test.replace("rtol=1e-8, strict=True)", "rtol=1e-6, strict=True)")
    nb.cells[_at(nb, "q2-test")].source += "\nmine = 1\rmine = 2"
    result = grader.new_result(Path("m.ipynb"), a, nb)
    grader.add_writing(result, {})
    other = "\n".join(piece[1] for piece in result.writing[None].pieces)
    assert "*(added to the test cell q1-test, after the cell q1-answer)*\n```text\nwant = hlmlib.ols(y_t, X_t)" \
           ".params.to_numpy()  # I GET ANOTHER b ON MY LAPTOP\n```" in other, other
    assert "fit.se(kind=\"CR1\", cluster=firm_t).to_numpy(), rtol=1e-6, strict=True)\n```" in other, other
    assert result.notes == [f"the test cell {key} holds 1 line(s) of code not in the source's, which did not run (the "
                            "grader runs the instructor's test in its place): they are in the written answers"
                            for key in ("q2-test", "q3-test")], result.notes
    assert grader.written_entry(result.writing, "q4-answer")[0] == "MY ANSWER."
    # round 44: a test cell split in mid-line (Split Cell), then a comment typed: the line is put back together, so
    # only the comment is listed, with no note; an indexed help line (x[0]?) is IPython's, not prose
    nb = copy.deepcopy(student)
    at = _at(nb, "q1-test")
    second = copy.deepcopy(nb.cells[at])
    cut = nb.cells[at].source.index("datasets")
    nb.cells[at].source, second.source = nb.cells[at].source[:cut], nb.cells[at].source[cut:] + "\n# CHECKED BY HAND"
    nb.cells.insert(at + 1, second)
    result = grader.new_result(Path("m.ipynb"), a, nb)
    grader.add_writing(result, {})
    other = "\n".join(piece[1] for piece in result.writing[None].pieces)
    assert result.notes == [] and "```text\n# CHECKED BY HAND\n```" in other, (result.notes, other)
    assert grader._code_prose("example = [1]\nexample[0]?\nexample[-1].real??") == ""
    # round 45: IPython's help with a space (? x) is not prose; a source code cell re-formatted in a written answer's
    # part adds nothing; Windows line ends (CRLF, which some editors save) are read as plain ones: a help line in such
    # a cell is IPython's, and a re-formatted test cell adds nothing
    assert grader._code_prose("? np.mean\n?? np.mean") == ""
    with warnings.catch_warnings():           # round 46: no SyntaxWarning of the student's code on the grader's stderr
        warnings.simplefilter("error")
        assert grader._code_prose("x = 1if 1else 0  # a sentence that does not parse") == "words"
    nb = copy.deepcopy(student)
    code = nb.cells[_at(nb, "q4-code")]
    code.source = ast.unparse(ast.parse(code.source))
    assert grader._added_lines(code.source, student.cells[_at(student, "q4-code")].source)
    nb.cells[_at(nb, "q1-test")].source = ast.unparse(ast.parse(nb.cells[_at(nb, "q1-test")].source))
    nb.cells.insert(_at(nb, "q1-answer") + 1, nbformat.v4.new_code_cell("b = 1\nols_fit?"))
    for cell in nb.cells:
        cell.source = cell.source.replace("\n", "\r\n")
    nbformat.write(nb, tmp_path / "crlf.ipynb")
    nb = grader.read_notebook(tmp_path / "crlf.ipynb")
    assert not any("\r" in cell.source for cell in nb.cells)
    nbformat.write(make.student_version(a), tmp_path / "cr.ipynb")       # round 46: a lone CR, and CR CR LF, too
    (tmp_path / "cr.ipynb").write_text((tmp_path / "cr.ipynb").read_text().replace("\\n", "\\r\\r\\n"))
    assert not any("\r" in cell.source for cell in grader.read_notebook(tmp_path / "cr.ipynb").cells)
    assert integrity.not_run(nb.cells[_at(nb, "q1-answer") + 1].source) is None
    assert _writing(a, nb) == ("*(not answered)*", None, "")
    nb = copy.deepcopy(student)
    nb.cells[_at(nb, "q3-test")].source = "%time " + test
    result = grader.new_result(Path("m.ipynb"), a, nb)
    grader.add_writing(result, {})
    assert result.notes == ["the test cell q3-test holds 1 line(s) of code not in the source's, which did not run "
                            "(the grader runs the instructor's test in its place): they are in the written answers"]
    source = nbformat.read(make.SOURCE / "04_hsb_hlm.ipynb", as_version=4)     # without its written question
    source.cells = [c for c in source.cells if make.cell_key(c) not in ("q4-prompt", "q4-answer")]
    nbformat.write(source, tmp_path / "04_hsb_hlm.ipynb")
    hsb = make.load_source(tmp_path / "04_hsb_hlm.ipynb")
    assert not hsb.written
    nb = make.student_version(hsb)
    nb.cells[_at(nb, "q1-test")].source = "pass"
    nb.cells[_at(nb, "q2-test")].source += "\n"
    result = grader.new_result(Path("m.ipynb"), hsb, nb)
    grader.add_writing(result, {})
    assert result.notes == ["the test cell q1-test holds 1 line(s) of code not in the source's, which did not run (the "
                            "grader runs the instructor's test in its place): see the submitted notebook"], result.notes
    # round 34: a code answer split (Split Cell) inside brackets: neither part runs (the graded notebook replaces
    # both), though the parts joined parse: the added lines are listed; a solved code answer beside a markdown copy
    # of the placeholder: the note says the copy holds the code as handed out; a raw copy of an old attempt above the
    # solved code cell: only the raw cell is shown, as raw (the code cell ran)
    nb = copy.deepcopy(student)
    at = _at(nb, "q1-answer")
    second = copy.deepcopy(nb.cells[at])
    nb.cells[at].source, second.source = "def split_here(x):\n    y = (x", "         + 1)\n    return y"
    nb.cells.insert(at + 1, second)
    other = _writing(a, nb)[2]
    assert "*(added to the code cell q1-answer, after the cell q1-prompt; after a copy or part of the cell " \
           "q1-answer)*\n```text\ndef split_here(x):\n    y = (x\n         + 1)\n    return y\n```" in other, other
    layout = grader.written_layout(a)       # as the run judged the cells: both replaced, or (made up) both ran
    assert grader.student_writing(nb, layout, {at, at + 1})[None].pieces[0][1] in other
    assert grader.student_writing(nb, layout, set())[None].pieces == []
    nb = copy.deepcopy(student)
    nb.cells[_at(nb, "q1-answer")].source = solution
    nb.cells.insert(_at(nb, "q1-answer") + 1, md(student.cells[_at(student, "q1-answer")].source))
    nb.cells[_at(nb, "q1-answer") + 1].metadata = copy.deepcopy(student.cells[_at(student, "q1-answer")].metadata)
    result = grader.new_result(Path("m.ipynb"), a, nb)
    grader.add_writing(result, {})
    assert result.notes == ["a part or copy of the code answer cell q1-answer is a markdown cell, so it did not run "
                            "(it holds the code as handed out)"], result.notes
    assert result.writing[None].pieces == [], result.writing[None].pieces
    nb = copy.deepcopy(student)
    nb.cells[_at(nb, "q1-answer")].source = solution
    old = nbformat.v4.new_raw_cell("OLD ATTEMPT", metadata=copy.deepcopy(nb.cells[_at(nb, "q1-answer")].metadata))
    nb.cells.insert(_at(nb, "q1-answer"), old)
    other = _writing(a, nb)[2]
    assert other.startswith("*(the raw cell q1-answer, after the cell q1-prompt, as the student left it") and \
        "+ OLD ATTEMPT" in other and "e = y - X @ b" not in other, other
    nb = copy.deepcopy(student)
    nb.cells[_at(nb, "q1-answer")].source = solution + "\nprint(b.shape"
    typed = [line for line in (solution + "\nprint(b.shape").split("\n") if line not in handed]
    assert len(typed) == 3 and "\n".join(typed) in _writing(a, nb)[2]
    nb = copy.deepcopy(student)
    at = _at(nb, "q4-prompt")
    first, rest = nb.cells[at].source.split("\n", 1)
    second = copy.deepcopy(nb.cells[at])
    nb.cells[at].source, second.source = first, rest + " (done)"
    nb.cells[at + 1:at + 1] = [md("BETWEEN THE PARTS."), second]
    text = _writing(a, nb)[0]
    assert [line for line in text.split("\n") if line.startswith(("+ ", "- "))] == [
        "- " + rest.split("\n")[-1], "+ " + rest.split("\n")[-1] + " (done)"], text
    nb = copy.deepcopy(student)
    nb.cells[_at(nb, "q4-answer")].source = "MY ANSWER."
    for key, line in (("q2-test", "# I am not sure of the df here, please check"), ("q4-code", "ratio = 2")):
        scratch = copy.deepcopy(nb.cells[_at(nb, key)])
        scratch.source += "\n" + line
        nb.cells.append(scratch)
    text, note, other = _writing(a, nb)
    assert text.index("MY ANSWER.") < text.index("*(added to the code cell q4-code, after a copy or part of the cell "
                                                 "q2-test that is below the cell q4-answer)*\n```text\nratio = 2"), text
    assert "*(added to the test cell q2-test, after the cell q4-answer)*" in other, other
    assert grader._added_lines("a\nb\n a", "a\nb") == {3} and grader._added_lines("a\nb\na\nb", "a\nb", 2) == set()
    nb = copy.deepcopy(student)
    answer = nb.cells.pop(_at(nb, "q4-answer"))
    answer.source = "PART 1."
    nb.cells[1:1] = [answer, md("PART 2.")]
    text, note, other = _writing(a, nb)
    assert text.index("PART 1.") < text.index("PART 2.") and other == "" and note is None, (text, other)
    nb = copy.deepcopy(student)
    test = copy.deepcopy(nb.cells[_at(nb, "q3-test")])
    test.cell_type, test.source = "markdown", "My sketch: ![s.png](attachment:s.png)"
    test.attachments = {"s.png": {"image/png": PNG}}
    test.pop("outputs"), test.pop("execution_count")
    nb.cells.insert(_at(nb, "q3-test") + 1, test)
    writing = grader.student_writing(nb, grader.written_layout(a))[None].pieces
    assert [piece[2:4] for piece in writing] == [(0, 1)], writing
    # round 27: outside the written answers, prose typed in a code cell (that does not parse, or as a long string),
    # a note to the grader added to a visible test, a name typed into the intro turned into code: listed at the
    # end (and, beside a blank answer, a note: since round 29, none for a comment in code); commented-out code in a
    # scratch cell is not prose: nothing, no note
    elsewhere = ("the answer cell q4-answer holds no answer; what the student wrote elsewhere in the notebook is in the "
                 "written answers")
    for edit, shown, noted in (       # (since round 31, a note for prose in code; none for a comment or a string)
            (lambda nb: nb.cells.insert(_at(nb, "q3-test") + 1, nbformat.v4.new_code_cell(
                "The firm-clustered one is larger, as the Moulton factor says.")), "as the Moulton factor says",
             elsewhere),
            (lambda nb: nb.cells.insert(_at(nb, "q3-test") + 1, nbformat.v4.new_code_cell(
                'answer = """The firm-clustered one is larger, as the Moulton factor says."""')), "Moulton factor",
             None),
            (lambda nb: nb.cells[_at(nb, "q2-test")].__setitem__("source", nb.cells[_at(nb, "q2-test")].source
                                                                + "\n# Note for the grader: I used n - k here."),
             "# Note for the grader: I used n - k here.", None),
            (lambda nb: nb.cells[0].update(cell_type="code", outputs=[], execution_count=None,
                                           source=nb.cells[0].source + "\nJane Smith, with Ann Lee"),
             "Jane Smith, with Ann Lee", elsewhere)):
        nb = copy.deepcopy(student)
        edit(nb)
        text, note, other = _writing(a, nb)
        assert shown in other and note == noted, (shown, other, note)
        assert text.startswith("*(not answered)*") and "see the end of this document" in text, text
    nb = copy.deepcopy(student)
    nb.cells.insert(_at(nb, "q3-test") + 1, nbformat.v4.new_code_cell("# print(cr1_se(X, e, firm))"))
    nb.cells.insert(_at(nb, "q3-test") + 1, nbformat.v4.new_code_cell("%matplotlib inline\n!ls\nhlmlib.ols?"))
    assert _writing(a, nb) == ("*(not answered)*", None, "")
    # round 28: a sentence as a comment at the end of a test's line, or an answer typed as a string into a test; a
    # code answer that no longer parses (the graded notebook replaces it): listed; a huge cell is not parsed here
    for key, line in (("q2-test", "assert True  # Note for the grader: my df is n - k on purpose"),
                      ("q2-test", 'answer = "The firm-clustered one is larger, as the Moulton factor says."'),
                      ("q3-answer", "I could not get the meat right: my idea was to sum the scores by firm.")):
        nb = copy.deepcopy(student)
        nb.cells[_at(nb, key)].source += "\n" + line
        assert line in _writing(a, nb)[2], (key, line)
    assert grader._code_prose("x = [" + "0, " * 60_000 + "]") and not grader._parses("x = 1\n" * 60_000)
    # round 29: a sentence ending in a question mark is prose, not IPython's help; the notebook's parsing is bounded
    assert grader._code_prose("# Is the firm one larger because of the Moulton factor?")
    assert not grader._code_prose("hlmlib.ols?\n??np.sum")
    nb = copy.deepcopy(student)
    big = "x = [" + "0, " * 30_000 + "]\n# a sentence, not code."
    nb.cells[1:1] = [nbformat.v4.new_code_cell(big) for _ in range(20)]      # 1.8 million characters
    from unittest import mock
    with mock.patch.object(grader, "_code_prose", side_effect=grader._code_prose) as parsed:
        assert _writing(a, nb)[2].count("a sentence, not code.") == 20
    assert 0 < sum(len(call.args[0]) for call in parsed.call_args_list) <= grader.PARSE_BUDGET
    # a lone surrogate (valid in a notebook's JSON) is written as its JSON escape, and reads back
    path = tmp_path / "surrogate.json"
    grader.write_atomically(path, json.dumps({"s": "a\ud800b"}, ensure_ascii=False))
    assert json.loads(path.read_text(encoding="utf-8")) == {"s": "a\ud800b"}
    # one submission's unreadable cell (a source that is not text) loses no other submission's answer
    good, bad = copy.deepcopy(student), copy.deepcopy(student)
    good.cells[_at(good, "q4-answer")].source = "THE GOOD ANSWER."
    bad.cells[_at(bad, "q4-answer")]["source"] = {"not": "text"}
    document = grader.written_answers(a, [grader.new_result(Path(f"{n}.ipynb"), a, nb)
                                          for n, nb in (("bad", bad), ("good", good))])
    assert "THE GOOD ANSWER." in document.split("### good.ipynb")[1], document
    assert "the answer could not be read" in document.split("### bad.ipynb")[1].split("###")[0], document
    # the question re-saved with other white space, or split at a line end, adds nothing
    nb = copy.deepcopy(student)
    at = _at(nb, "q4-prompt")
    first, _, rest = nb.cells[at].source.partition(" ")
    resaved = copy.deepcopy(nb.cells[at])
    nb.cells[at].source, resaved.source = first + "  \n", rest + "\n"
    nb.cells.insert(at + 1, resaved)
    assert _writing(a, nb) == ("*(not answered)*", None, "")
    # without a question cell of its own (q4's deleted from the source), a written answer takes nothing typed under
    # the nearest question above (q3's, a code question's): that is text outside the written answers
    source = nbformat.read(make.SOURCE / "02_sandwich_by_hand.ipynb", as_version=4)
    source.cells = [c for c in source.cells if make.cell_key(c) != "q4-prompt"]
    nbformat.write(source, tmp_path / "02_sandwich_by_hand.ipynb")
    a = make.load_source(tmp_path / "02_sandwich_by_hand.ipynb")
    assert grader.written_layout(a).questions == {}
    nb = make.student_version(a)
    nb.cells.insert(_at(nb, "q3-prompt") + 1, md("How my cr1_se works."))
    text, note, other = _writing(a, nb)
    assert "How my cr1_se works." not in text and "How my cr1_se works." in other, (text, other)


def test_a_split_answer_cell_keeps_every_part_in_the_written_answers_and_its_marks(graded):
    # JupyterLab's Split Cell gives both parts the cell's id: the written answer keeps both halves, in order, and the
    # split code answer is still placed before its tests
    row = graded["rows"]["honest/split-cells"]
    assert row["status"] == "ok" and float(row["score"]) == CATALOGUE["02_sandwich_by_hand"].total, row
    text = (graded["out"] / "written_02_sandwich_by_hand.md").read_text()
    answer = text.split(f"### {graded['files']['honest/split-cells']}\n")[1].split("\n### ")[0]
    first, second = (answer.index(part) for part in SPLIT_ANSWER)
    assert first < second, answer


def test_an_answer_in_a_new_cell_or_a_retyped_cell_reaches_the_written_answers_and_the_report_says_so(graded):
    # round 22: the answer cell deleted and the answer typed in a new cell in its place, or the answer cell changed
    # to raw or code: the text is in the document, labelled, and the report has a note (status review, not ok);
    # round 24: the answer typed under the question or into the question's cell, the answer cell left as handed
    # out, or written as comments in a code cell in place of the deleted answer cell
    text = (graded["out"] / "written_02_sandwich_by_hand.md").read_text()
    labels = {"retyped": "*(written outside the answer cell, which was deleted)*",
              "raw": "*(the answer cell was changed to a raw cell)*",
              "code": "*(the answer cell was changed to a code cell)*",
              "above": "*(written outside the answer cell, which was deleted)*",
              "rawimg": "*(the answer cell was changed to a raw cell)*",
              "keep": "*(written outside the answer cell, which holds no answer)*",
              "inprompt": "*(the question's cell, after the cell q3-hidden, as the student left it",
              "comment": "*(written outside the answer cell, which was deleted)*\n\n*(in a new code cell after the "
                         "cell q4-code)*"}
    deleted = ("the answer cell q4-answer was deleted; what the student wrote in its part of the notebook is in the "
               "written answers")
    no_answer = ("the answer cell q4-answer holds no answer; what the student wrote in its part of the notebook is in "
                 "the written answers")
    notes = {"retyped": deleted, "above": deleted, "keep": no_answer, "inprompt": no_answer, "comment": deleted,
             "rawimg": "the answer cell q4-answer was changed to a raw cell; its text is in the written answers",
             "raw": "the answer cell q4-answer was changed to a raw cell; its text is in the written answers",
             "code": "the answer cell q4-answer was changed to a code cell; its text is in the written answers"}
    for name, label in labels.items():
        path = graded["files"][f"written/{name}"]
        answer = text.split(f"### {path}\n")[1].split("\n### ")[0]
        assert label in answer and WRITTEN_ELSEWHERE[name] + "The firm-clustered" in answer, (name, answer)
        assert answer.index(label) < answer.index(WRITTEN_ELSEWHERE[name]), answer
        assert graded["rows"][f"written/{name}"]["status"] == "review", graded["rows"][f"written/{name}"]
        report = (graded["out"] / f"{path.stem}.report.md").read_text()
        assert f"- {notes[name]}" in report.split("| question |")[0], report
    path = graded["files"]["written/attached"]
    answer = text.split(f"### {path}\n")[1].split("\n### ")[0]
    assert WRITTEN_ELSEWHERE["attached"] in answer and "has 1 attached image(s): see " in answer, answer
    assert f"see {path.stem}.graded.ipynb." in answer, answer
    graded_nb = nbformat.read(graded["out"] / f"{path.stem}.graded.ipynb", as_version=4)
    assert any("derivation.png" in (c.get("attachments") or {}) for c in graded_nb.cells)
    assert graded["rows"]["written/attached"]["status"] == "ok", graded["rows"]["written/attached"]
    # round 23: an image on a raw cell is not in the graded notebook, and the document says where it is
    path = graded["files"]["written/rawimg"]
    answer = text.split(f"### {path}\n")[1].split("\n### ")[0]
    assert "1 image(s) attached to raw cells or to copies of test cells: see the submitted notebook" in answer
    assert ".graded.ipynb" not in answer
    elsewhere = {str(graded["files"][f"written/{name}"]) for name in labels} | {
        str(graded["files"]["02_sandwich_by_hand/student-tests-deleted-or-pass"])}    # its answer above the placeholder
    others = [part for part in text.split("\n### ")[1:] if part.split("\n")[0] not in elsewhere]
    assert len(others) > 10 and not any(label in part for part in others for label in (
        "written outside the answer cell", "answer cell was changed", "the question's cell, after"))


def test_html_in_a_file_name_or_a_refused_path_hides_nothing_in_the_rendered_reports(graded):
    # a file named a<template>_02...ipynb whose cell tries open('/<template>a', 'w'): rendered, the report keeps its
    # notes and table of tests, and the written answers keep the answers after its heading (another student's)
    from markdown_it import MarkdownIt
    render = MarkdownIt("commonmark").enable("table").render
    path = graded["files"]["markup/template"]
    assert graded["rows"]["markup/template"]["status"] == "review"       # the refused write, listed for review
    report = render((graded["out"] / f"{path.stem}.report.md").read_text())
    written = render((graded["out"] / "written_02_sandwich_by_hand.md").read_text())
    for text in (report, written):
        assert "<template" not in text and html.escape(path.name, quote=False) in text, text[:3000]
    assert "writing /&lt;template&gt;a" in report and "q3-hidden (hidden)" in report.split("<table>")[1], report
    after = [f"<h3>{html.escape(str(graded['files'][name]), quote=False)}</h3>" for name in graded["files"]
             if graded["rows"][name]["assignment"] == "02_sandwich_by_hand"]
    assert all(heading in written for heading in after), [h for h in after if h not in written]
    assert grader.inline("a`b`|[x](y)<!--\\&#8238;") == "a\\`b\\`\\|\\[x\\](y)&lt;!--\\\\&amp;#8238;"


def test_output_names_are_distinct():
    a = CATALOGUE["02_sandwich_by_hand"]
    files = ["/s/x-2.ipynb", "/s/a/x.ipynb", "/s/b/x.ipynb", "/s/x.ipynb", "/s/X.ipynb", "/s/a__x.ipynb"]
    results = [grader.Result(Path(f), a) for f in files]
    names = grader.output_names(results[:5])
    assert [names[id(r)] for r in results[:5]] == ["x-2", "a__x", "b__x", "s__x", "s__X-2"]
    names = grader.output_names(results)
    assert len({names[id(r)].lower() for r in results}) == len(results), names
    assert grader.output_names(results[:1]) == {id(results[0]): "x-2"}


def test_a_time_out_or_a_crash_ends_that_file_with_a_report_and_the_others_still_come(built, tmp_path):
    nb = nbformat.read(built[("instructor", "02_sandwich_by_hand")], as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if make.cell_key(c) == "q3-prompt")
    slow, crash, unknown = tmp_path / "slow.ipynb", tmp_path / "crash.ipynb", tmp_path / "unknown.ipynb"
    nbformat.write(_edited(nb, {}, [("q3-prompt", "import time\nwhile True:\n    time.sleep(0.1)")]), slow)
    nbformat.write(_edited(nb, {}, [("q1-test", "import os\nos._exit(3)")]), crash)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), unknown)
    other = built[("student", "01_moulton_by_simulation")]
    run = subprocess.run(MAKE + ["grade", str(slow), str(crash), str(unknown), str(other), "--timeout", "10",
                                 "--csv", str(tmp_path / "g.csv"), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 1                      # the unknown notebook is an error ...
    assert f"{unknown}: error: not an assignment notebook" in run.stderr
    assert "Traceback" not in run.stderr, run.stderr           # a kernel that died leaves no raw traceback
    rows = {r["file"]: r for r in csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8"))}
    assert rows[str(unknown)]["status"] == "error"
    assert rows[str(slow)]["status"] == "timeout" and "limit of 10 s" in rows[str(slow)]["message"]
    assert (rows[str(slow)]["q1"], rows[str(slow)]["q2"], rows[str(slow)]["q3"]) == ("2", "2", "0")
    assert rows[str(crash)]["status"] == "crashed" and "died" in rows[str(crash)]["message"]
    assert (rows[str(crash)]["q1"], rows[str(crash)]["q2"]) == ("2", "0")
    assert rows[str(other)]["status"] == "ok"       # ... and the other files are graded all the same
    assert "TIMEOUT" in next(line for line in run.stdout.splitlines() if line.startswith(str(slow)))
    assert "not run" in (tmp_path / "out" / "slow.report.md").read_text()


def test_a_kernel_that_has_exited_is_dead_before_it_is_reaped():
    # a kernel that died is a zombie until the kernel manager reaps it: it still takes signals, but its root is
    # gone, and the disk watch, finding no root, must see a death (the crash's "died"), not an unmeasurable run
    exited = subprocess.Popen(["true"])
    running = subprocess.Popen(["sleep", "30"])
    clients = [type("Client", (), {"namespace": os.pidfd_open(p.pid), "namespace_pid": p.pid})() for p in
               (exited, running)]
    try:
        for _ in range(200):           # wait until "true" has exited (it stays a zombie: nothing waits for it)
            with open(f"/proc/{exited.pid}/stat") as status:
                if status.read().rpartition(")")[2].split()[0] == "Z":
                    break
            asyncio.run(asyncio.sleep(0.01))
        assert not grader._alive(clients[0]) and not asyncio.run(grader._still_alive(clients[0], 0.2))
        assert grader._alive(clients[1]) and asyncio.run(grader._still_alive(clients[1], 0.2))
    finally:
        running.kill()
        for p, c in zip((exited, running), clients):
            p.wait()
            os.close(c.namespace)


def test_a_notebook_over_the_limit_per_file_ends_the_run(tmp_path):
    policy = grader.Policy.for_batch([], None, tmp_path)
    cell = nbformat.v4.new_code_cell
    slow = nbformat.v4.new_notebook(cells=[cell("")] + [cell("import time\ntime.sleep(2)") for _ in range(6)])
    run = asyncio.run(grader._execute(slow, policy, tmp_path / "slow", 60, timeout_file=12))
    assert run.status == "timeout" and "limit of 12 s per file" in run.message and run.stopped_at >= 1, run


def test_a_run_keeps_a_bounded_output_and_its_errors_past_it(tmp_path, monkeypatch):
    # a loop that prints sends tens of megabytes a second: kept, they would fill the grader's memory
    monkeypatch.setattr(grader, "OUTPUT_LIMIT", 200_000)
    policy = grader.Policy.for_batch([], None, tmp_path)
    cell = nbformat.v4.new_code_cell
    flood = ("import time\nstart = time.time()\nwhile time.time() - start < 3:\n    print('x' * 999, end='')\n"
             "print('\\nTOKEN record 1')\nprint('after')")
    nb = nbformat.v4.new_notebook(cells=[cell(""), cell(flood), cell("print('later')\n1 / 0")])
    run = asyncio.run(grader._execute(nb, policy, tmp_path / "run", 60))
    assert run.status == "ok" and run.trimmed == [1, 2] and run.tampering is None, run
    assert sum(len(json.dumps(o)) for c in nb.cells for o in c.outputs) < 250_000
    text = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert "TOKEN record 1" not in text and "after" not in text and "dropped the output past 200,000" in text
    assert grader._error_message(nb.cells[2].outputs).startswith("ZeroDivisionError")


def test_a_batch_whose_run_changed_the_environment_is_flagged(built, monkeypatch):
    stamps = iter([{"hlmlib/ols.py": (1, 1)}, {"hlmlib/ols.py": (1, 2)}])
    monkeypatch.setattr(grader, "_environment_files", lambda: next(stamps))
    [result] = grader.grade_many([built[("instructor", "02_sandwich_by_hand")]], timeout=120)
    assert result.status == "flagged" and "hlmlib/ols.py" in result.message and result.score == 0


def test_an_unknown_assignment_is_an_error():
    nb = nbformat.v4.new_notebook(metadata={make.KEY: {"id": "99_no_such"}})
    with pytest.raises(grader.GradingError, match="unknown assignment"):
        grader.identify(nb, CATALOGUE)


def test_malformed_notebook_metadata_is_that_files_error():
    for meta in ("02_sandwich_by_hand", {"id": ["02_sandwich_by_hand"]}, {"id": 2}, ["x"]):
        nb = nbformat.v4.new_notebook(metadata={make.KEY: meta})
        with pytest.raises(grader.GradingError, match="not an assignment notebook"):
            grader.identify(nb, CATALOGUE)


def test_malformed_cell_metadata_is_ignored():
    for meta in ("scratch", ["q1-answer"], 3, None):
        cell = nbformat.v4.new_markdown_cell("notes", metadata={make.KEY: meta})
        assert make.cell_meta(cell) == {} and make.cell_key(cell) == cell["id"]
    cell = nbformat.v4.new_code_cell("", metadata={make.KEY: {"id": ["q1-answer"]}})
    assert make.cell_key(cell) == cell["id"]           # an id that is not a string is no id
    cell["id"] = 7
    assert make.cell_key(cell) is None


def test_an_integer_too_large_for_a_float_is_a_mismatch_not_an_error():
    for got, want in ((10 ** 400, 1.5), (-10 ** 400, 0.0), (1.5, 10 ** 400), ([1.0, 10 ** 400], [1.0, 2.0])):
        problem = grader.mismatch(got, want, 1e-8, 0.0, "se")
        assert problem and "too large to compare" in problem and len(problem) < 200, problem
    assert grader.mismatch(10 ** 400, 10 ** 400, 1e-8, 0.0, "x") is None
    assert grader.mismatch(3, 3.0, 0.0, 0.0, "x") is None and grader.mismatch(3, 3.5, 0.0, 0.0, "x")


def test_no_file_can_end_the_batch(built, tmp_path, monkeypatch):
    # round 8: a 401-digit int recorded, notebook metadata that is not a dict or whose id is not a string, a cell's
    # metadata that is a string, a cell whose source the grader cannot read, and a scoring that fails: each ends its
    # own file only; the lines, the CSV, the reports and the written answers of the assignment all come.
    instructor = nbformat.read(built[("instructor", "02_sandwich_by_hand")], as_version=4)
    honest, bigint, cellmeta = tmp_path / "honest.ipynb", tmp_path / "bigint.ipynb", tmp_path / "cellmeta.ipynb"
    nbformat.write(instructor, honest)
    nbformat.write(_replace(instructor, "q2-answer", "def hc1_se(X, e):\n    return [10 ** 400, 1.0]\n"), bigint)
    scratch = nbformat.v4.new_markdown_cell("my notes", metadata={make.KEY: "scratch"})
    with_scratch = copy.deepcopy(instructor)
    with_scratch.cells.insert(3, scratch)
    nbformat.write(with_scratch, cellmeta)
    raw = json.loads(honest.read_text())
    bad = {}
    for name, meta in (("meta_str", "02_sandwich_by_hand"), ("meta_list", {"id": ["02_sandwich_by_hand"]})):
        bad[name] = tmp_path / f"{name}.ipynb"
        bad[name].write_text(json.dumps({**raw, "metadata": {**raw["metadata"], make.KEY: meta}}))
    broken = copy.deepcopy(raw)
    broken["cells"][1]["source"] = 7                     # not a string: the grader cannot place it
    bad["broken"] = tmp_path / "broken.ipynb"
    bad["broken"].write_text(json.dumps(broken))
    real_score = grader.score

    def score(result, reference):
        if result.file.name == "cellmeta.ipynb":
            raise ValueError("a failure of the grader's")
        return real_score(result, reference)

    monkeypatch.setattr(grader, "score", score)
    files = [honest, bigint, cellmeta, *bad.values()]
    out = tmp_path / "out"
    status = make.main(["grade", *map(str, files), "--csv", str(tmp_path / "g.csv"), "--out", str(out), "--jobs", "2",
                        "--timeout", "120"])
    assert status == 1                                      # files are errors
    rows = {Path(r["file"]).stem: r for r in csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8"))}
    assert len(rows) == len(files)
    assert rows["honest"]["status"] == "ok" and float(rows["honest"]["score"]) == 6, rows["honest"]
    big = rows["bigint"]
    assert big["status"] == "ok" and big["q2"] == "0" and float(big["score"]) == 4, big
    assert "too large to compare" in (out / "bigint.report.md").read_text()
    for name in ("meta_str", "meta_list"):
        assert rows[name]["status"] == "error" and "not an assignment notebook" in rows[name]["message"], rows[name]
    assert rows["broken"]["status"] == "error" and "could not" in rows["broken"]["message"], rows["broken"]
    assert rows["cellmeta"]["status"] == "crashed" and "could not score" in rows["cellmeta"]["message"]
    written = (out / "written_02_sandwich_by_hand.md").read_text()
    assert all(f"### {p}" in written for p in (honest, bigint, cellmeta))



def test_a_file_past_the_size_cell_or_value_limit_is_not_read_and_is_that_files_error(built, tmp_path, monkeypatch):
    # round 19: the grader read every file whole, and nbformat took 78 times its size in memory (58 MB: 4.5 GB)
    instructor = nbformat.read(built[("instructor", "02_sandwich_by_hand")], as_version=4)
    honest, big, cells, values = (tmp_path / f"{n}.ipynb" for n in ("honest", "big", "cells", "values"))
    nbformat.write(instructor, honest)
    monkeypatch.setattr(grader, "FILE_LIMIT", 200_000)
    monkeypatch.setattr(grader, "CELL_LIMIT", 2 * len(instructor.cells))
    monkeypatch.setattr(grader, "VALUE_LIMIT", 5_000)
    padded = copy.deepcopy(instructor)
    padded.cells.append(_scratch("x" * 300_000, markdown=True))
    nbformat.write(padded, big)
    padded = copy.deepcopy(instructor)
    padded.cells += [_scratch("x", markdown=True) for _ in range(2 * len(instructor.cells))]
    nbformat.write(padded, cells)
    padded = copy.deepcopy(instructor)
    padded.cells[0].metadata["notes"] = [{} for _ in range(5_000)]
    nbformat.write(padded, values)
    fifo = tmp_path / "fifo.ipynb"        # read before its stat, it would block the batch
    os.mkfifo(fifo)
    files, out = [honest, big, cells, values, fifo], tmp_path / "out"
    status = make.main(["grade", *map(str, files), "--csv", str(tmp_path / "g.csv"), "--out", str(out),
                        "--timeout", "120"])
    assert status == 1
    rows = {Path(r["file"]).stem: r for r in csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8"))}
    assert rows["honest"]["status"] == "ok" and float(rows["honest"]["score"]) == 6, rows["honest"]
    size = big.stat().st_size / 1e6
    want = {"big": f"the file is {size:.1f} MB, larger than the {grader.FILE_LIMIT / 1e6:g} MB limit",
            "cells": f"the notebook has {3 * len(instructor.cells)} cells, more than the limit of "
                     f"{2 * len(instructor.cells)}",
            "values": "the notebook's JSON holds more than 5,000 values", "fifo": "not a regular file"}
    for name, message in want.items():
        assert rows[name]["status"] == "error" and rows[name]["message"].startswith(message), rows[name]
        assert message in (out / f"{name}.report.md").read_text()
    assert "6 / 6" in (out / "honest.report.md").read_text()
    assert set(rows) == {"honest", *want}

def _order(assembled):
    """The assembled notebook's cells as test ids, source ids, or (cells the student added) their source."""
    ids = {make.cell_meta(c)["id"] for c in CATALOGUE["02_sandwich_by_hand"].notebook.cells}
    return [assembled.positions.get(i) or (make.cell_key(c) if make.cell_key(c) in ids else c.source)
            for i, c in enumerate(assembled.notebook.cells)]


def test_tests_run_after_the_answer_and_the_cells_added_below_it_but_before_those_below_the_test_cell():
    a = CATALOGUE["02_sandwich_by_hand"]
    student = _edited(make.student_version(a), {}, [("q1-answer", "helper = 1"), ("q1-test", "b = None"),
                                                    ("q2-answer", "after_q2 = 1")])
    student.cells.insert(0, _scratch("top = 1"))
    student.cells = [c for c in student.cells if make.cell_key(c) != "q2-test"]      # a deleted test cell
    order = _order(grader.assemble(student, a))
    assert order[order.index("q1-answer"):order.index("q2-prompt")] == \
        ["q1-answer", "helper = 1", "q1-test", "q1-twin", "q1-hidden", "b = None"]
    assert order[order.index("q2-answer"):order.index("q3-prompt")] == \
        ["q2-answer", "after_q2 = 1", "q2-test", "q2-twin", "q2-hidden"]
    assert order[1] == "top = 1" and sum(1 for c in order if c in {t.id for t in a.tests}) == len(a.tests)


def test_a_question_that_builds_on_an_earlier_one_runs_its_tests_with_the_instructors_answer():
    a = CATALOGUE["01_moulton_by_simulation"]
    [q4] = [t for t in a.tests if t.id == "q4-test"]
    cells = make.reference_cells(a, q4)
    assert [substitute for _, substitute in cells] == [False, True]
    assert cells[0][0].startswith("import numpy as np") and "def rho_x" in cells[1][0] and "SOLUTION" not in cells[1][0]
    assert all(make.reference_cells(a, t) == [] for t in a.tests if t.question != "q4")


FLAGGED = [
    "import sys", "from builtins import abs", "exec('1')", "getattr = print", "x.__class__",
    "np.testing.assert_allclose = None", "hlmlib.ols.__code__ = None", "In[-1]", "_i3", "%time exec('1')",
    "%timeit -n1 -r1 import sys", "%%timeit -n1 import sys\nx = 1", "setattr(np, 'pi', 3)",
    "class A(float):\n    def __lt__(self, o):\n        return True", "type('A', (float,), {'__lt__': 1})",
    "type('A', (), {'_' * 2 + 'lt' + '_' * 2: 1})", "np.ctypeslib", "del np.testing", "np.random.x += 1",
    "t = np.testing\nt.assert_allclose = None", "for m in [np.testing]:\n    m.assert_allclose = None",
    "class A:\n    def f(self):\n        self.m.x = 1", "def put(self, f):\n    self.x = f",
    "class A:\n    @staticmethod\n    def f(self):\n        self.x = 1", "for np.x in range(3):\n    pass",
    "import warnings\nwarnings.sys", "def f(g):\n    return g.f_code.co_consts", "import operator",
    "import pandas as pd\npd.eval('x.sys')", "import pandas as pd\npd.DataFrame().query('@warnings.sys.modules')",
    "hlmlib.ols('y ~ I(np.testing.__dict__)', data=None)", "'{0.__class__}'.format(1)",
    "import asyncio\nawait asyncio.sleep(0)", "import sympy",
    "import string\nstring.Formatter().get_field('0.x', [1], {})",
    "np.lib.stride_tricks.as_strided(np.zeros(1), (9,), (8,))", "import os\nos.system('ls')", "import gradingkit",
    "import ctypes", "import subprocess", "import tempfile\ntempfile._thread.start_new_thread(print, ())",
    "exit._ip.run_cell('import sys')", "import matplotlib.pyplot as plt\nplt._backend_mod.get_ipython()",
    # round 4: singledispatch's register evaluates a string annotation; the namespace of a frame; import by name
    "import functools\n@functools.singledispatch\ndef f(x):\n    return 0", "from functools import singledispatchmethod",
    "f.register(g)", "def g(x: 'exec(P)'):\n    return 1", "def g(x) -> 'np.__dict__':\n    pass",
    "x: list['f(1)'] = []", "import pandas as pd\npd.core.computation.scope.Scope(level=0)",
    "import pandas as pd\npd.compat._optional.import_optional_dependency('builtins')", "np.getattr",
    "import scipy\nscipy._lib._uarray._backend.unpickle_function('builtins', 'getattr', None)",
    # round 6: update_wrapper/wraps with names made at run time (a real getattr and setattr), taken by another name;
    # a class namespace or a property by a run-time name; str.format looking attributes up by run-time names
    "import functools\nfunctools.update_wrapper(g, f, assigned=(name,), updated=())",
    "import functools\nfunctools.wraps(f, (name,))(g)", "from functools import wraps as w",
    "import functools\nuw = functools.update_wrapper", "import functools\nfunctools.wraps(f, **options)",
    "import dataclasses\ndataclasses.make_dataclass('H', [], namespace={name: 1})",
    "import dataclasses\ndataclasses.types.new_class('H')", "p = property(get, keep)",
    "class A:\n    def f(self):\n        return property(g)", "fmt = '{0.x}'\nfmt.format(f)", "str.format(fmt, f)",
    "import copy\ncopy._reconstruct(None, None, f, ())",
    # round 7: Enum's functional API with member names made at run time (raw memory through __array_interface__),
    # a module's private helper that sets attributes by name, format strings whose fields look attributes up
    "import enum\nE = enum.Enum('E', [(name, 1)])", "import enum\nE = enum.IntEnum('E', names=names)",
    "from enum import Flag\nE = Flag('E', ' '.join(names))", "import enum\nE = enum.Enum('E', *args)",
    "import enum\nclass C(enum.Enum):\n    pass\nE = C('E', names)", "E = type(member)('E', names)",
    "import enum\nenum.Enum._create_('E', ['a'])", "from matplotlib import cbook\ncbook._setattr_cm(h, **{name: 1})",
    "from matplotlib.cbook import _setattr_cm", "import numpy._core", "'{0.real}'.format(1)",
    # round 12: the call stack (the grader's cells, the hidden tests' source) through modules reached as attributes
    "import matplotlib.cbook as cb\ns = cb.traceback.format_stack()", "import matplotlib as mpl\nmpl.logging.warning('x', stack_info=True)",
    "from matplotlib.cbook import traceback", "import matplotlib.cbook as cb\ncb.traceback.walk_stack(None)",
    "row = '{0[x]}'\nrow.format(d)", "'{:{0.imag}}'.format(1)", "row = '{}'\nfor row in rows:\n    row.format(f)",
    "row = '{}'\ndef f(row):\n    return row.format(np)", "row = '{' + name + '}'\nrow.format(x=f)",
    # round 10: what the rules now let through stays refused in its risky form: a read of IPython's history the cell
    # does not bind first, .format on an unreadable string given something other than constants (a Series label
    # can make `.style` a string), a base's dunder taken other than called on self, a module's __init__
    "print(_i)", "if x:\n    _i = 1\nprint(_i)", "_i = 1\ndef f():\n    return _i",
    "for _i in rows:\n    pass\nprint(_i)",
    "_oh += 1", "f = lambda: _ih", "def f():\n    global _i\n    return _i", "t.style.format(lambda v: str(v))",
    "t.style.format('{:.2f}', subset=cols)", "class A:\n    def f(self):\n        return super().__init__",
    "class A:\n    def f(self):\n        np.__init__(self)", "class A:\n    pass\nA = np\nclass B:\n    def f(self):\n"
    "        A.__init__(self)", "class A:\n    def f(self):\n        return self.__class__.__mro__",
    "from IPython.display import display, get_ipython", "import IPython.display", "from IPython import display",
    "def f():\n    global _i\n    _i = 1\n    def g():\n        return _i\n    return g",
    "class A:\n    def f(self):\n        super(type(np), np).__init__('x')",
    "from IPython.display import display as getattr",
    # round 11: history reads past the scope rules: a class's names are not seen in its comprehensions, a class body
    # in a function reads a name it binds later from the globals, `global` hides the enclosing function's name
    "class C:\n    _ih = None\n    got = [_ih for k in range(1)][0]",
    "def f():\n    _ih = None\n    class C:\n        got = _ih\n        _ih = 0\n    return C.got",
    "def f():\n    Out = None\n    def g():\n        global Out\n        return Out\n    return g()",
    # super(C, self) only with the method's own class and first parameter, the class bound to nothing else
    "class B:\n    def f(self, o):\n        super(B, o).__init__(1)",
    "class B:\n    def f(self):\n        return super(B, self).__init__",
    "class B:\n    def f(self):\n        super(B, self).__init__(1)\nB = np",
    "class A:\n    pass\nclass B(A):\n    def f(self):\n        g = lambda self: super(B, self).__init__(1)",
    # round 13: private attributes reached from any expression (warnings' formatter prints the lines linecache holds:
    # the hidden tests, the grader's cells; cbook._setattr_cm sets any attribute; json._default_encoder rewrites the
    # grader's channel), warn_explicit, and self._x where self is not surely the notebook's plain object
    "import warnings\nf = [warnings][0]._formatwarning_orig", "import warnings\nw = warnings\nw._showwarnmsg_impl",
    "import matplotlib.cbook as cb\n[cb][0]._setattr_cm(np, pi=3)", "import json\njson._default_encoder = None",
    "import warnings\nwarnings.warn_explicit('x', UserWarning, '<test q1-hidden>', 1)", "f()._x", "(a or b)._x",
    "getattr(np, '_NoValue')", "import warnings\nclass W(warnings.catch_warnings):\n    def f(self):\n"
    "        return self._module", "class A:\n    def f(self):\n        self = np\n        return self._x",
    "class A:\n    def f(self):\n        return [self._x for self in [np]]",
    "class A:\n    def f(self):\n        self = np\n        self.pi = 3", "class A:\n    def f(self):\n"
    "        for self in [np]:\n            self.pi = 3",
    "E = np.ndarray\nclass A(E):\n    def f(self):\n        return self._x", "fit._X = np",
    "import warnings\nwarnings._x",
    # round 14: update_wrapper/wraps whose wrapper (the object whose attributes are set) is not surely a function of
    # the notebook's: update_wrapper(os, holder, assigned=("fspath",)) set os.fspath and blinded the audit hook
    "import functools, os\nclass H:\n    def __init__(self, f):\n        self.fspath = f\n"
    "functools.update_wrapper(os, H(len), assigned=('fspath',), updated=())",
    "import functools\nfunctools.update_wrapper(wrapper=np, wrapped=f)", "from functools import wraps\nwraps(f)(np)",
    "import functools\ndef g():\n    pass\ng = np\nfunctools.update_wrapper(g, f)",
    "import functools\n@(lambda f: np)\ndef g():\n    pass\nfunctools.update_wrapper(g, f)",
    "import functools\n@functools.wraps(f)\n@(lambda f: np)\ndef g():\n    pass",
    "import functools\n@functools.wraps(f)\nclass C:\n    pass", "import functools\nw = [functools.wraps(f)][0]",
    # round 14, what the false positives' fixes still refuse: .stderr of a module or of a name bound otherwise than
    # to a call's result, the standard signal module, and attributes set on names not surely the notebook's instances
    "import warnings\nwarnings.sys.stderr", "np.stderr", "x = f()\nx.stderr = 1", "import signal",
    "from os import signal", "import os\nos.signal", "import scipy\nscipy = np\nscipy.signal",
    "class Fit:\n    pass\nf = Fit()\nf = np\nf.pi = 3", "@(lambda c: (lambda: np))\nclass Fit:\n    pass\n"
    "f = Fit()\nf.pi = 3", "dataclass = lambda c: (lambda: np)\n@dataclass\nclass Fit:\n    pass\nf = Fit()\nf.pi = 3",
    "class Fit:\n    pass\nif False:\n    _ = Fit()\n_.pi = 3", "import warnings\nclass W(warnings.catch_warnings):\n"
    "    pass\nw = W()\nw.x = 1", "class Fit:\n    pass\nf = Fit()\ndef g(f):\n    f.pi = 3",
    "import warnings\nclass W(warnings.catch_warnings):\n    def f(self):\n        return self.register",
    "class C:\n    pass\nc = C() if x else np\nc.modules",
    # round 15: enum.global_enum writes an Enum's members into the module its class names (sys.setprofile)
    "import enum\nenum.global_enum(P)", "from enum import global_enum", "import enum as e\ng = e.global_enum",
    "import enum\nP = enum.Enum('P', [('setprofile', 1)], module='sys')", "from enum import Enum\nEnum('P', 'a', module=m)",
    # round 15: library functions that set or get an attribute by a name given at run time, and internal submodules
    "import pandas as pd\nwith pd.core.common.temp_setattr(obj, name, 1):\n    pass",
    "import pandas as pd\np = pd\np.core", "from pandas.core.common import temp_setattr", "import pandas.core.common",
    "from pandas.core import arraylike", "from pandas import core", "import numpy as np\nnp.core",
    "import numpy.core", "from statsmodels.base.wrapper import populate_wrapper", "from statsmodels import base",
    "import numpy as np\nnp.lib.add_newdoc('sys', 'x', 'y')", "import matplotlib.pyplot as plt\nplt.getp(ax, p)",
    "f = m.default_array_ufunc", "m.array_ufunc(1)", "m.dispatch_ufunc_with_out", "m.replace_method",
    "import matplotlib.testing.widgets", "from numpy.distutils import ccompiler",
    # round 16: matplotlib settings that name a program (a script the run wrote, named fc-list, ran as "ffmpeg"),
    # changes of the environment, mutating calls on an imported module's containers, process-wide registries
    "import matplotlib as mpl\nmpl.rcParams['animation.ffmpeg_path'] = 'fc-list'",
    "import matplotlib.pyplot as plt\nplt.rcParams.update({'animation.convert_path': 'x'})",
    "import matplotlib.pyplot as plt\nplt.rc('animation', ffmpeg_path='x')",
    "import matplotlib.pyplot as plt\nplt.rc('text', usetex=True)", "import os\nos.environ.update(PATH='.')",
    "import os\nos.environ.setdefault('PATH', '.')", "import os\nos.environ.pop('PATH')",
    "import os\nos.environ.clear()", "import os\nos.putenv('PATH', '.')", "import os\nos.unsetenv('PATH')",
    "from os import environ\nenviron.update(A='b')",
    "import warnings\nwarnings.filters.insert(0, f)", "import copy\ncopy.dispatch_table.update({int: f})",
    "import copy as c\nc.dispatch_table.setdefault(int, f)", "import numpy as np\nnp.sctypeDict.update({})",
    "import numpy as np\nnp.seterrcall(print)", "from pandas.api.extensions import register_extension_dtype",
    "import pandas as pd\n@pd.api.extensions.register_dataframe_accessor('c')\nclass A:\n    pass",
    "import pandas as pd\npd.api.extensions.register_series_accessor('c')",
    "import pandas as pd\npd.api.extensions.register_index_accessor('c')",
    # round 17: the options imported by name still refuse the keys that name or feed a program, and a name
    # imported as the options but bound otherwise too is not them; containers reached through an expression
    "from matplotlib import rcParams\nrcParams['animation.ffmpeg_path'] = 'x'",
    "from matplotlib import rcParams\nrcParams.update({'text.usetex': True})",
    "from matplotlib.pyplot import rcParams as rc\nrc.update({'animation.convert_path': 'x'})",
    "from matplotlib import rc_context\nwith rc_context({'animation.ffmpeg_args': ['x']}):\n    pass",
    "from matplotlib import rc\nrc('text', usetex=True)",
    "from matplotlib import rcParams\nimport os\nrcParams = os.environ\nrcParams.update(PATH='.')",
    "from pandas import options\nimport os\noptions = os\noptions.environ['A'] = '1'",
    "import os\n(os.environ or {}).update(A='1')", "import os\n(os.environ or {})['A'] = '1'",
    "import warnings\n[warnings.filters][0].insert(0, f)", "import os\n(e := os.environ).pop('A')",
    "import os\n(os.environ if x else {}).clear()",
]
ALLOWED = [
    # round 17: pandas' and matplotlib's options imported by name, as they are allowed as modules' attributes
    "from matplotlib import rcParams\nrcParams.update({'font.size': 9, 'figure.figsize': (6, 4)})\n"
    "rcParams['axes.grid'] = True",
    "from matplotlib.pyplot import rcParams\nrcParams.update({'font.size': 9})",
    "from matplotlib import rcParams as rc\nrc['font.size'] = 9\nfrom matplotlib import pyplot\n"
    "pyplot.rcParams['figure.dpi'] = 100",
    "from pandas import options\noptions.display.max_rows = 10",
    "import numpy as np\n(np.arange(3).tolist() or []).append(1)\nd = {}\n(d or {}).update(a=1)",
    # round 16: module functions named like a container's mutating method; a functional Enum of this module
    "import numpy as np\nx = np.append([1], 2)\ny = np.char.add(['a'], ['b'])\nz = np.ma.append([1], [2])\n"
    "np.insert([1], 0, 2)\nfrom scipy import interpolate\ninterpolate.insert\nimport os\nos.remove",
    "import matplotlib.pyplot as plt\nplt.rcParams.update({'font.size': 10})\nimport os\np = os.environ.get('HOME')",
    "import pandas as pd\ndf = pd.DataFrame({'a': [1]})\ndf.update(df)\nd = {}\nd.update(a=1)\ns = set()\ns.add(1)",
    "import enum\nK = enum.Enum('K', ['HC0', 'HC1'], module=__name__)",
    "import numpy as np\nw = np.lib.stride_tricks.sliding_window_view(np.arange(5), 2)\nimport pandas.testing\n"
    "import numpy.linalg\nimport matplotlib.pyplot as plt\nplt.setp([], color='k')\nx = np.arange(3)\nx.base",
    "import enum\nE = enum.Enum('E', 'A B')\nF = enum.IntEnum('F', ['X', 'Y'], module='__main__')",
    # round 14: scipy's public result field .stderr (a slope's standard error), scipy.signal, and attributes set on
    # instances of the notebook's plain classes and data classes
    "from scipy import stats\nres = stats.linregress([1, 2, 3], [2, 3, 5])\n"
    "print(res.stderr, stats.linregress([1, 2], [1, 2]).stderr)",
    "from scipy import signal\nimport scipy\nimport scipy.signal\nscipy.signal.welch\nimport scipy as sp\nsp.signal",
    "class Fit:\n    pass\nf = Fit()\nf.b = 2.0", "from dataclasses import dataclass\n@dataclass\nclass Fit:\n"
    "    b: float = 0.0\nf = Fit()\nf.b = 2.0\nimport dataclasses\n@dataclasses.dataclass(frozen=False)\nclass G:\n"
    "    a: int = 1\ng = G()\ng.a = 3",
    "class C:\n    def __init__(self):\n        self.ex = 1\n        self.stderr = 0.1\n    def system(self):\n"
    "        return self.ex\nc = C()\nprint(c.ex, c.stderr, c.system())",
    # round 13: a plain class's own private attributes, in its methods, their lambdas and its class methods; the
    # design that hlmlib's mixed-model fit keeps, which the book's case study reads (chapter 15)
    "class A:\n    def __init__(self):\n        self._n = 1\n    def f(self):\n        return lambda: self._n\n"
    "    @classmethod\n    def g(cls):\n        return cls._m\nclass B(A, Exception):\n    def h(self):\n"
    "        return self._n", "import hlmlib\nZ, codes = fit._Z, fit._codes\nprint(fit._X.shape, fit._y.mean())",
    # a data frame column called "code" read as an attribute (round 13: the stack-module rule must not refuse it)
    "df = pd.DataFrame({'code': [1, 2]})\ndf.code.mean()",
    "import numpy as np\nfrom scipy import stats\nx = np.zeros(3)\nx[0] = 1\nstats.t.ppf(0.975, 9)",
    "import pandas as pd\npd.options.display.max_rows = 10", "%matplotlib inline", "%time y = sum([1, 2])",
    "%timeit -n1 -r1 y = sum([1, 2])", "%%time\ndef f():\n    return 1", "np.mean?", "??np.linalg.lstsq",
    "import functools\nfunctools.wraps?", "import os\nos.system?", "np.lib.stride_tricks.as_strided?",
    "import warnings\nwarnings.sys?", "get_ipython?",
    # round 42: the notebook's own private names may be looked up, as code may use them
    "def _design(x):\n    return x\n_design?", "_x = 3\n_x?", "fit._X?",
    # round 43: indexes and names with a double underscore in them, as IPython takes them
    "example = [1]\nexample[0]?", "vals = [1]\nvals[-1]?", "x[0][0]??", "my__var = 1\nmy__var?", "np.mean.__doc__?",
    "%time?", "??np.*", "_?", "__?",  # round 44: the last results, which code may read
    "x = np.ones(2)\nx.__class__.__name__?", "np.ones(2).__class__.__qualname__?",  # round 47: as code may read them
    "class Fit:\n    def __init__(self):\n        self.a = 1", "sum = 0\nfor v in range(3):\n    sum += v",
    "import matplotlib.pyplot as plt\nplt.rcParams['figure.dpi'] = 100\nplt.gcf().savefig('f.png')",
    "import pandas as pd\ndf = pd.DataFrame({'a': [1]})\ndf.columns = ['b']\ndf.index.name = 'i'\ndf['c'] = 2",
    "class Fit:\n    def __init__(self, b):\n        self.b = b\n    def set(self, v):\n        self.v = v",
    "import os\nos.getcwd()", "from __future__ import annotations", "from typing import Tuple",
    "import numpy as np\ngetattr(np, 'mean')", "import numpy as np\nprint(np.__version__)",
    "if __name__ == '__main__':\n    pass", "print('_' * 20, '______')", "import statsmodels.formula.api as smf",
    "import pandas as pd\npd.DataFrame({'a': [1]}).query('a == 1')", "import numpy as np\nnp.savetxt('a.txt', [1])",
    "import pandas as pd\npd.DataFrame().to_csv('a.csv')", "import pandas as pd\npd.api.types.is_numeric_dtype",
    "with open('notes.txt', 'w') as f:\n    f.write('x')",
    "def g(x: 'np.ndarray', y: 'list[int] | None' = None) -> 'tuple[float, float]':\n    pass",
    "from dataclasses import dataclass\n@dataclass\nclass Fit:\n    b: 'np.ndarray'\n    se: float = 0.0",
    "import functools\ndef logged(f):\n    @functools.wraps(f)\n    def g(*a):\n        return f(*a)\n    return g",
    "from functools import wraps\n@wraps(f, assigned=('note',), updated=())\ndef g():\n    pass",
    "import functools\ndef g():\n    pass\ndef h():\n    pass\nfunctools.update_wrapper(g, h)",
    "class Fit:\n    @property\n    def b(self):\n        return 1\n    se = property(lambda self: 2)",
    "from dataclasses import make_dataclass\nPoint = make_dataclass('Point', ['x', ('y', float)])",
    "print('{:.3f} and {}'.format(1.0, 2))",
    "import enum\nclass Color(enum.Enum):\n    RED = 1\nColor(1)\nColor.RED.name\nisinstance(Color.RED, Color)",
    "import enum\nE = enum.Enum('E', 'A B')\nF = enum.IntEnum('F', [('A', 1), ('B', 2)])\nG = enum.Flag('G', {'X': 1})",
    "row = '{:<12}{:>10.4f}'\nfor n, v in [('a', 1.0)]:\n    print(row.format(n, v))",
    "print(('beta ' + '{:.2f}').format(1.5))", "head: str = '{n:>{w}}'\nhead.format(n=1, w=4)",
    "row = '{} {}'\nstr.format(row, 1, 2)", "row = '{0}'\nrow = '{1}'\nrow.format(1, 2)",
    # round 10: idioms of the book that were refused
    "row = '{}'\nfor row in rows:\n    row.format(1)", "row = '{' + name + '}'\nrow.format(1, x=(2, 'a'))",
    "def f(template):\n    return template.format(-1.5, {'a': [None]})",
    "fmt = '{:.3f}' if x else '{:.2f}'\nfmt.format(x)",
    "import pandas as pd\nt = pd.DataFrame({'a': [1.0]})\nt.style.format('{:.3f}', na_rep='')\n"
    "t.style.format(precision=4)\nt.style.format({'a': '{:.1e}'}, subset=['a'])",
    "from IPython.display import display, Markdown\ndisplay(Markdown('**x**'))",
    "class A:\n    def __init__(self, n):\n        self.n = n\n    def __repr__(self):\n"
    "        return self.__class__.__name__\nclass B(A):\n    def __init__(self, n):\n        super().__init__(n)\n"
    "class C(A):\n    def __init__(self, n):\n        A.__init__(self, n)",
    "class E(ValueError):\n    def __init__(self, m):\n        super().__init__(m)",
    "for _i in range(3):\n    print(_i)\nprint(_i)", "_i = 2\nprint(_i + 1)",
    "class D:\n    _i = 3\n    y = _i",
    "class A:\n    def __init__(self, n):\n        self.n = n\nclass B(A):\n    def __init__(self, n):\n"
    "        super(B, self).__init__(n)", "def f():\n    _ih = 1\n    class C:\n        x = _ih\n    return C",
    "def f(_i):\n    return [_i for _ in 'ab']",
    "print([_i * 2 for _i in range(3)])", "_dh = 3\nif _dh:\n    print(_dh)",
    "_x = 1\ndef g():\n    global _x\n    _x += 1",
    "def f():\n    _i = 1\n    def g():\n        return _i\n    return g()", "with open('a') as _i:\n    print(_i)",
]
NOT_RUN = ["!ls", "x = !ls", "%pip install numpy", "%config A.b = 1", "%matplotlib {get_ipython()}", "%load f.py",
           "%%bash\nls", "%timeit -n1 x = (", "x = (1 +", "%%writefile a.py\nx = 1", "%time %pip list",
           # round 40: IPython's help looks a dotted name up with the real getattr: not through a private or refused
           # name, nor IPython's history (round 41: a refused name last is only documented: see ALLOWED)
           "exit._ip.user_ns??", "import warnings\nwarnings.sys.path?", "In??", "_oh?", "%pinfo2 exit._ip",
           "_3?", "_i2??", "rng._bit_generator?",
           # round 43: IPython's help takes any text between brackets as a name to look up (?x[_ip] is x._ip)
           "?exit[_ip]", "%pinfo exit[_ip].user_ns", "x.__class__?", "__builtins__?", "np.*mean*?"]


@pytest.mark.parametrize("code", FLAGGED)
def test_the_integrity_check_flags_what_reaches_into_the_interpreter(code):
    assert integrity.check_cells([(1, "import numpy as np\nimport hlmlib\n" + code)]), code


@pytest.mark.parametrize("code", ALLOWED)
def test_the_integrity_check_lets_ordinary_code_through(code):
    assert integrity.check_cells([(1, code)]) == [] and integrity.not_run(code) is None, code


# What the book's chapters do that a submission may not: tooling (symbolic algebra, glue, showing a function's
# source), and constructs that stay refused because the check cannot tell them from tampering
BOOK_ONLY_IMPORTS = {"sympy", "sympy.stats", "myst_nb", "types", "inspect"}
BOOK_REFUSED = {
    # an attribute set on an object the notebook did not make (hlmlib's batch): it could be a module
    ("16_level2_few_clusters", "sets batch.Y"),
    # Styler.format given pd.IndexSlice[...] of a comprehension: were `.style` a string (a Series' label can make it
    # one), its fields could reach what it is given
    ("16_level2_few_clusters", "calls .format() on a string the check cannot read"),
    # the environment of the process (BLAS threads before NumPy loads): a submission may not change it (round 16,
    # os.environ.update(PATH=...) let a script the run wrote start as fc-list)
    ("12_efficiency", "calls os.environ.setdefault()"), ("13_re_bias", "calls os.environ.setdefault()"),
}


def test_the_books_own_code_passes_the_static_check_but_for_its_tooling():
    """Every code cell of the book's chapters, checked as one notebook per chapter (the book is a corpus of honest
    code): each problem is an import of the book's tooling or one of BOOK_REFUSED, and each of those still occurs."""
    unexpected, met = [], set()
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cells = [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        for problem in integrity.check_cells(cells):
            what = problem.split(": ", 1)[1]
            imported = re.match(r"imports (\S+), which is not on the list", what)
            known = [k for k in BOOK_REFUSED if k[0] == path.stem and what.startswith(k[1])]
            if imported and imported.group(1) in BOOK_ONLY_IMPORTS:
                continue
            met.update(known)
            if not known:
                unexpected.append(f"{path.name}: {problem}")
    assert unexpected == [] and met == BOOK_REFUSED, (unexpected, BOOK_REFUSED - met)


@pytest.mark.parametrize("code", NOT_RUN)
def test_a_cell_with_a_magic_outside_the_list_or_code_that_cannot_be_parsed_is_not_run(code):
    assert integrity.not_run(code), code


def test_a_notebook_that_lost_its_cell_ids_is_an_error():
    a = CATALOGUE["02_sandwich_by_hand"]
    student = make.student_version(a)
    for c in student.cells:
        c.metadata, c["id"] = {}, "x" + c["id"]
    with pytest.raises(grader.GradingError, match="metadata was lost"):
        grader.assemble(student, a)


def test_a_cell_the_grader_does_not_run_fails_alone_and_is_noted():
    a = CATALOGUE["02_sandwich_by_hand"]
    student = make.student_version(a)
    student.cells.insert(0, _scratch("x = (1 +\nimport sys"))
    student.cells.insert(1, _scratch("%pip install numpy"))
    assembled = grader.assemble(student, a)
    assert all(c.source.startswith("raise RuntimeError(") and "the grader does not run this cell" in c.source
               for c in assembled.notebook.cells[1:3])
    assert [n.split(":")[0] for n in assembled.not_run] == ["cell 1 not run", "cell 2 not run"]
    assert 1 not in {n for n, _ in assembled.student_code}       # not run, so not checked: no flag for 'import sys'


@pytest.mark.parametrize("aid", IDS)
def test_a_submissions_hidden_tests_stop_at_their_last_record_and_the_reference_run_runs_them_whole(aid):
    # no reference value is computed in a submission's kernel after the records (it could be copied); the checks
    # after the records still check the instructor's solution in the reference run
    a = CATALOGUE[aid]
    version = make.instructor_version(a)
    sent = {True: grader.assemble(version, a, reference_run=True), False: grader.assemble(version, a)}
    for reference_run, assembled in sent.items():
        for index, test_id in assembled.positions.items():
            t = next(t for t in a.tests if t.id == test_id)
            source = ast.literal_eval(ast.parse(assembled.notebook.cells[index].source).body[0].value.args[1])
            last = ast.parse(source).body[-1]
            if reference_run or not t.hidden:
                assert source == t.source
            else:
                assert source != t.source and t.source.startswith(source), test_id
                assert any(isinstance(n, ast.Call) and getattr(n.func, "id", "") == "record" for n in ast.walk(last))
            assert assembled.sent[test_id] == gradingkit.test_digest(source, make.reference_cells(a, t))


def test_values_are_compared_with_the_instructors_exactly_in_structure_and_within_tolerance_in_number():
    m = grader.mismatch
    assert m([1.0, 2.0], [1.0, 2.0 + 1e-13], 1e-12, 0, "b") is None
    # structures exactly: a column of k is not a vector of k (round 53); a NumPy array or Series of one element
    # reaches the grader as a number (gradingkit's record, below)
    assert m([[1.0], [2.0]], [1.0, 2.0], 0, 0, "b") and m([2.5], 2.5, 0, 0, "t") and m(2.5, [2.5], 0, 0, "t")
    inf = float("inf")        # an infinity equals only itself, whatever the tolerance (rtol * inf accepted anything)
    assert m(inf, inf, 1e-6, 0, "df") is None and m(-inf, -inf, 1e-6, 0.1, "df") is None
    for got, want in ((30.0, inf), (-inf, inf), (10 ** 6, inf), (1e308, inf), (inf, -inf), (inf, 5.0), (0.0, -inf)):
        problem = m(got, want, 1e-6, 0.5, "df")
        assert problem and problem.startswith("df: ") and problem.endswith(f" instead of {want!r}"), (got, want)
    assert "instead of" in m([1.0, 2.1], [1.0, 2.0], 1e-12, 0, "b")
    assert m({"a": 1.0}, {"a": 1.0, "b": 2.0}, 0, 0, "d") and m([1.0], [[1.0]], 0, 0, "x")
    assert m(9, 9.0, 0, 0, "df") is None and m("9", 9.0, 0, 0, "df") and m(True, 1.0, 0, 0, "flag")
    assert m(1.0, True, 0, 0, "flag") and m("MixedResult", "MixedResult", 0, 0, "class") is None
    assert m(float("nan"), float("nan"), 0, 0, "x") is None and m(0.0, float("nan"), 0, 0, "x")
    assert m([1.0, 5.0], [1.5, 5.0], 0, [0.6, 0.0], "x") is None and m([1.0, 5.1], [1.5, 5.0], 0, [0.6, 0.0], "x")


def test_record_takes_plain_values_only_and_no_method_of_a_students_object_runs():
    import gradingkit
    import numpy as np
    import pandas as pd
    plain = gradingkit._plain
    assert plain((np.float64(1.5), np.arange(2), {"k": np.int64(3)}), False, "v") == [1.5, [0, 1], {"k": 3}]
    assert plain(pd.Series([1.0], index=["a"]), True, "v") == {"a": 1.0}
    assert plain(pd.DataFrame({"c": [1.0, 2.0]}), False, "v") == [[1.0], [2.0]]
    # labels taken from a NumPy array (numpy.str_, kept by pandas), a frame filled row by row (dtype object): as
    # they are (q3 of 04 and q2 of 05 gave 0 for such right answers, round 50)
    names = np.array(["a", "b"])
    assert plain(pd.Series([1.0, 2.0], index=list(names)), True, "v") == {"a": 1.0, "b": 2.0}
    assert plain({names[0]: 1.0, np.int64(3): 2.0}, False, "v") == {"a": 1.0, "3": 2.0}
    filled = pd.DataFrame(index=["r"], columns=names)
    filled.loc["r"] = [np.float64(1.5), 2]
    assert list(filled.dtypes) == [object, object] and plain(filled, False, "v") == [[1.5, 2]]
    assert plain(filled, True, "v") == {"columns": ["a", "b"], "index": ["r"], "values": [[1.5, 2]]}
    # a recorded value, or an entry a test takes with number(), of one element is the number it holds, as float()
    # takes it (round 52: a right t as a Series of one gave 0/2); inside a value structures are kept (rounds 53, 54:
    # a column of k, or a list of k one-element arrays, is not a vector of k)
    assert plain(pd.Series([2.5], index=["x"]), False, "v", one=True) == 2.5 == plain(np.array([[2.5]]), False, "v",
                                                                                        one=True)
    assert plain([pd.Series([2.5]), 9, np.array([[0.02]])], False, "v", one=True) == [[2.5], 9, [[0.02]]]
    assert plain(list(np.ones((2, 1))), False, "v", one=True) == [[1.0], [1.0]]
    wrapped = np.empty(1, dtype=object)
    wrapped[0] = np.array([1.0, 2.0])            # a vector in an object array of one: not a number (round 55)
    assert plain(wrapped, False, "v", one=True) == [[1.0, 2.0]]
    assert plain(np.array(["2.5"]), False, "v", one=True) == ["2.5"]
    assert plain(np.array([2.5], dtype=object), False, "v", one=True) == 2.5
    numbers = (pd.Series([2.5]), 9, np.array([[0.02]]), np.float64(1.5))
    assert [gradingkit.number(v) for v in numbers] == [2.5, 9, 0.02, 1.5]
    for value in (np.array([1.0, 2.0]), [2.5], pd.DataFrame([[1.0]]), "2.5", True, {"x": 2.5}, wrapped):
        with pytest.raises(TypeError, match="is not a number, nor an array or Series of one"):
            gradingkit.number(value)
    assert plain(np.array([[1.0], [2.0]]), False, "v") == [[1.0], [2.0]]
    assert plain(np.ones((2, 1, 1)), False, "v") == [[[1.0]], [[1.0]]]
    assert plain(pd.Series([2.5], index=["x"]), True, "v") == {"x": 2.5}
    assert plain(pd.DataFrame([[1.0]]), False, "v") == [[1.0]]
    assert gradingkit.array(np.array([2.5])).shape == (1,)
    # NumPy's long double as a float (its item() and tolist() keep the type, which JSON refuses: 0 for a right
    # answer, round 51); a label or key twice refused (the dict kept the last value only: a wrong entry dropped)
    assert type(plain(np.longdouble(1.5), False, "v")) is float
    long = [np.longdouble(1.5), np.array([[2.5, 3.5]], dtype=np.longdouble)]
    assert json.dumps(plain(long, False, "v")) == "[1.5, [[2.5, 3.5]]]"
    for value in (pd.Series([1.0, 2.0], index=["a", "a"]), pd.Series([1.0, 2.0], index=[1, "1"]), {1: 2.0, "1": 3.0}):
        with pytest.raises(ValueError, match="more than once|two keys read as '1'"):
            plain(value, True, "v")
    assert plain(pd.Series([1.0, 2.0], index=["a", "a"]), False, "v") == [1.0, 2.0]

    class Lazy(list):
        pass

    assert plain(np.zeros((1, 2)).view(np.matrix), False, "v") == [[0.0, 0.0]]       # NumPy's own: as its array
    for value in (np.ma.masked_all(2), np.zeros(2).view(type("Sub", (np.ndarray,), {})), Lazy([1.0]),
                  [object()], np.array([object()]),
                  pd.Series(["a", "b"]), pd.Series([1], dtype="Int64"), pd.Series([1.0], dtype="Float64"), 1 + 2j,
                  pd.Series([1.0, None], dtype=object), pd.Series([[1.0], 2.0], dtype=object), {1.5: 1.0},
                  pd.DataFrame({"x": [1.0], "y": ["s"]}), pd.Series([Lazy([1.0])], dtype=object),
                  np.timedelta64(3, "ns"), np.timedelta64("NaT")):
        with pytest.raises(TypeError):
            plain(value, False, "v")

    # an instructor's tolerance: NaN would fail every answer but the instructor's own, inf pass any (the reference
    # run then fails, naming the test)
    assert gradingkit._tolerance([0.0, [1e-6], {"a": 3}], "x") == [0.0, [1e-6], {"a": 3}]
    for value in (float("nan"), -1e-9, float("inf"), [0.1, float("nan")], {"a": -1.0}, None, True, "0.1"):
        with pytest.raises(ValueError, match="a tolerance is a finite number, 0 or more"):
            gradingkit._tolerance(value, "x: atol")


HOOK_PROBE = r"""
import json, os, sqlite3, subprocess, sys
sys.path.insert(0, {assignments!r})
import grader, gradingkit
work, private = {work!r}, {private!r}
os.chdir(work)
policy = grader.Policy.for_batch([], None, private)
namespace = {{}}
channel = os.path.join(private, "channel")
open(channel, "w").close()
gradingkit.setup(namespace, work, os.path.join(private, "refusals.log"), channel, policy.denied, policy.allowed,
                 sorted(grader.integrity.FORBIDDEN_ATTRIBUTES), sorted(grader.integrity.FORBIDDEN_NAMES),
                 write_limit=1_000_000)
outcome = {{}}
def attempt(label, action):
    try:
        action()
        outcome[label] = "allowed"
    except PermissionError:
        outcome[label] = "refused"
    except Exception as exc:
        outcome[label] = type(exc).__name__
hlmlib_dir = os.path.dirname(grader.make.HERE) + "/hlmlib"
attempt("write in the run's folder", lambda: open("notes.txt", "w").write("x"))
attempt("write past the file-size limit", lambda: open("big.bin", "wb").write(b"0" * 2_000_000))
import resource
attempt("raise the file-size limit", lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (-1, -1)))
attempt("write into hlmlib", lambda: open(hlmlib_dir + "/zz.py", "w"))
attempt("write through os.open", lambda: os.open(hlmlib_dir + "/zz.py", os.O_WRONLY | os.O_CREAT))
attempt("write a database outside", lambda: sqlite3.connect(hlmlib_dir + "/zz.db"))
attempt("move a file out", lambda: os.rename("notes.txt", hlmlib_dir + "/zz.py"))
attempt("symbolic link", lambda: os.symlink("/", "root"))
attempt("memory of the process", lambda: open("/proc/self/mem", "r+b"))
attempt("read the grader's channel", lambda: open(channel).read())
channel_fd = next(fd for fd in range(3, 256) if os.path.realpath(f"/proc/self/fd/{{fd}}") == os.path.realpath(channel))
attempt("truncate the grader's channel", lambda: os.ftruncate(channel_fd, 0))
attempt("read the grader's sources", lambda: open(os.path.join(grader.make.HERE, "make.py")).read())
attempt("read hlmlib's data", lambda: grader.make.assignments and __import__("hlmlib").datasets.load_petersen())
attempt("start a process", lambda: subprocess.run(["true"]))
attempt("start a shell", lambda: os.system("true"))
attempt("send a signal", lambda: os.kill(os.getppid(), 0))
attempt("change the environment", lambda: (os.environ or {{}}).update(HLM_TEST="1"))
attempt("remove from the environment", lambda: os.unsetenv("HOME"))
attempt("native code", lambda: __import__("ctypes").CDLL(None))
attempt("raw memory", lambda: __import__("ctypes").cast(id(namespace), __import__("ctypes").c_void_p))
attempt("cffi", lambda: __import__("cffi"))
attempt("network", lambda: __import__("socket").socket())
attempt("tracer", lambda: sys.settrace(None))
attempt("code object", lambda: (lambda: 1).__code__.replace(co_consts=(2,)))
import _thread, threading, tempfile
attempt("start a thread", lambda: threading.Thread(target=print).start())
attempt("start a thread through _thread", lambda: tempfile._thread.start_new_thread(print, ()))
attempt("start a thread through its alias", lambda: _thread.start_new(print, ()))
open("planted.py", "w").write("x = 1")
sys.path.insert(0, work)
attempt("import from a changed sys.path", lambda: __import__("planted"))
sys.path.pop(0)
import importlib.util
spec = importlib.util.spec_from_file_location("planted", os.path.join(work, "planted.py"))
attempt("run a file the run wrote", lambda: spec.loader.exec_module(importlib.util.module_from_spec(spec)))
attempt("getattr of a dunder", lambda: namespace["getattr"](os, "__dict__"))
attempt("getattr of a forbidden name", lambda: namespace["getattr"](grader, "ctypes"))
attempt("getattr of a public name", lambda: namespace["getattr"](os, "getcwd"))
with gradingkit.numpy_only():
    attempt("numpy only sets its profiler", lambda: None)
import io, marshal, pickle
import numpy as np
attempt("unpickle a global through np.load", lambda: np.load(io.BytesIO(b"cgradingkit\n_state\n."),
                                                            allow_pickle=True))
attempt("unpickle exec", lambda: pickle.loads(b"cbuiltins\nexec\n."))
attempt("unpickle plain data", lambda: pickle.loads(pickle.dumps([1, 2.0])))
attempt("unmarshal", lambda: marshal.loads(marshal.dumps((lambda: 1).__code__)))
attempt("import a module not loaded yet", lambda: __import__("fractions"))
# reads: only the Python installation, the packages, hlmlib, system data and the run's folders
root = os.path.dirname(grader.make.HERE)
attempt("read the repository's history", lambda: open(os.path.join(root, ".git")).read())
attempt("list the repository", lambda: os.listdir(root))
attempt("read the repository's README", lambda: open(os.path.join(root, "README.md")).read())
attempt("read another copy of the sources", lambda: open({copy!r}).read())
attempt("read a system file", lambda: open("/etc/passwd").read())
attempt("read the process's state", lambda: open("/proc/self/stat").read())
attempt("read the process's memory", lambda: open("/proc/self/mem", "rb").read(1))
attempt("read the process's environment", lambda: open("/proc/self/environ", "rb").read())
hlmlib_fd = os.open(hlmlib_dir, os.O_RDONLY)
attempt("read relative to a directory descriptor", lambda: os.open("../README.md", os.O_RDONLY, dir_fd=hlmlib_fd))
attempt("remove relative to a directory descriptor", lambda: os.unlink("ols.py", dir_fd=hlmlib_fd))
import shutil
attempt("remove a tree relative to a directory descriptor", lambda: shutil.rmtree("hlmlib", dir_fd=hlmlib_fd))
os.makedirs("tree/inner")
attempt("remove a tree in the run's folder", lambda: shutil.rmtree("tree"))
# code compiled from strings
import dataclasses, functools, typing, collections
import pandas as pd
def typed(x: "np.ndarray", y: "typing.Optional[list[int]]" = None) -> "float | None":
    pass
def runs(x: "print(1)"):
    pass
def dispatched(x):
    pass
def dispatch(x: "exec('import os')"):
    pass
attempt("an annotation naming types", lambda: typing.get_type_hints(typed, {{"np": np, "typing": typing}}))
attempt("an annotation that calls a function", lambda: typing.get_type_hints(runs))
attempt("an annotation that runs exec", lambda: functools.singledispatch(dispatched).register(dispatch))
attempt("a data class and a named tuple", lambda: dataclasses.dataclass(type("Fit", (), {{"__annotations__": {{"b": float}}}}))
        and collections.namedtuple("Pair", "a b"))
attempt("a data class with a field that is not a name", lambda: dataclasses.dataclass(
    type("Bad", (), {{"__annotations__": {{"x=print(1)": int}}}})))
frame = pd.DataFrame({{"a": [1.0, 2.0], "b": [3.0, 4.0]}})
limit = 1.5
attempt("a pandas query", lambda: frame.query("a > @limit and b < 4"))
attempt("a pandas query with a dunder", lambda: frame.query("a.__class__"))
attempt("a pandas eval reaching sys", lambda: pd.eval("limit.warnings.sys"))
import hlmlib
attempt("a formula", lambda: hlmlib.ols("b ~ a + I(a ** 2)", data=pd.DataFrame({{"a": [1.0, 2, 3, 4], "b": [2.0, 1, 4, 3]}})))
attempt("a formula with a dunder", lambda: hlmlib.ols("b ~ I(a.__class__)", data=frame))
from importlib.machinery import SourceFileLoader    # its code objects run without exec through FunctionType
open("payload.py", "w").write("import os")
attempt("compile a file the run wrote through the import system",
        lambda: SourceFileLoader("payload", os.path.join(work, "payload.py")).get_code("payload"))
attempt("compile any source under a library's name",
        lambda: SourceFileLoader("np", np.__file__).source_to_code(b"import os", np.__file__))
attempt("exec of an import", lambda: exec("import os"))
attempt("exec of a statement", lambda: exec("x = 1", {{}}))
attempt("eval of a name", lambda: eval("limit"))
import sympy          # sympify imports sympy's names with exec: refused, whatever the string
attempt("sympify an expression", lambda: sympy.sympify("x + 1"))
attempt("sympify code", lambda: sympy.sympify("__import__('os').system('true')"))
# the channel's writer: in no global of the kit, nor in its state
emit_reachable = [k for k, v in [*vars(gradingkit).items(), *gradingkit._state.items()]
                  if getattr(v, "__name__", "") == "emit"]
print(json.dumps([outcome, emit_reachable]))
"""


def test_the_audit_hook_refuses_what_a_run_must_not_do(tmp_path):
    work, private = tmp_path / "private" / "work", tmp_path / "private"
    work.mkdir(parents=True)
    copy = tmp_path / "another-checkout" / "assignments" / "source" / "02_sandwich_by_hand.ipynb"
    copy.parent.mkdir(parents=True)
    copy.write_bytes((make.SOURCE / copy.name).read_bytes())
    script = HOOK_PROBE.format(assignments=str(ROOT / "assignments"), work=str(work), private=str(private),
                               copy=str(copy))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=work,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(work), "MPLBACKEND": "Agg"})
    assert run.returncode == 0, run.stderr[-2000:]
    outcome, emit_reachable = json.loads(run.stdout.strip().splitlines()[-1])
    assert emit_reachable == []
    log = (private / "refusals.log").read_text().splitlines()
    allowed = {"write in the run's folder", "read hlmlib's data", "getattr of a public name",
               "numpy only sets its profiler", "import a module not loaded yet", "unpickle plain data",
               "read a system file", "read the process's state", "remove a tree in the run's folder",
               "an annotation naming types", "a data class and a named tuple", "a pandas query", "a formula",
               "eval of a name"}
    assert {k for k, v in outcome.items() if v == "allowed"} == allowed, json.dumps(outcome)
    # np.load turns the refusal into an UnpicklingError (raised from it); the refusal is logged all the same
    assert outcome.pop("unpickle a global through np.load") == "UnpicklingError"
    assert outcome.pop("write past the file-size limit") == "OSError"        # EFBIG: the kernel's RLIMIT_FSIZE
    assert any("unpickling (it resolves gradingkit._state)" in line for line in log), log
    assert {k for k, v in outcome.items() if v == "refused"} == set(outcome) - allowed, json.dumps(outcome)
    assert any("hlmlib/zz.py" in line for line in log) and any("starting a process" in line for line in log)
    assert any("changing the environment" in line for line in log), log
    assert any(f"reading {ROOT / '.git'}" in line for line in log) and any("reading /proc/" in line for line in log)
    assert any("compiling a string that uses exec" in line and "functools.py" in line for line in log), log


def test_a_source_needs_a_hidden_guard_for_each_visible_test_and_references_to_answers(tmp_path):
    nb = copy.deepcopy(CATALOGUE["02_sandwich_by_hand"].notebook)
    twin = next(c for c in nb.cells if make.cell_meta(c)["id"] == "q1-twin")
    del twin.metadata[make.KEY]["guards"]
    twin.metadata[make.KEY]["points"] = 1
    nbformat.write(nb, tmp_path / "bad.ipynb")
    with pytest.raises(make.SourceError, match="q1-test needs a hidden test"):
        make.load_source(tmp_path / "bad.ipynb")
    nb = copy.deepcopy(CATALOGUE["02_sandwich_by_hand"].notebook)
    next(c for c in nb.cells if make.cell_meta(c)["id"] == "q1-test").metadata[make.KEY]["reference"] = ["q2-answer"]
    nbformat.write(nb, tmp_path / "bad.ipynb")
    with pytest.raises(make.SourceError, match="'reference' lists answer cells"):
        make.load_source(tmp_path / "bad.ipynb")


def test_an_instructor_version_that_fails_a_test_or_records_nothing_is_an_error():
    a = CATALOGUE["02_sandwich_by_hand"]
    value = {"v": {"value": 1.0, "rtol": 0.0, "atol": 0.0}}
    result = grader.Result(Path("x"), a, tests=[grader.TestResult(t.id, t.question, t.points, t.hidden, t.guards,
                                                                  completed=True, records=value)
                                                for t in a.tests])
    assert set(grader.reference_of(result)) == {t.id for t in a.tests}
    result.tests[1].records = {}
    with pytest.raises(grader.GradingError, match="fails in the reference run"):
        grader.reference_of(result)
    result.tests[1].records = {"v": {"value": [1.0, 2.0], "rtol": 0.0, "atol": [0.1, 0.1]}}
    assert grader.reference_of(result)
    for atol in ([0.1], [[0.1], 0.1], {"a": 0.1}):      # too short (IndexError in the comparison), too deep, a dict
        result.tests[1].records = {"v": {"value": [1.0, 2.0], "rtol": 0.0, "atol": atol}}
        with pytest.raises(grader.GradingError, match="does not fit it"):
            grader.reference_of(result)


def test_a_source_with_a_missing_or_repeated_cell_id_is_refused(tmp_path):
    nb = copy.deepcopy(CATALOGUE["02_sandwich_by_hand"].notebook)
    nb.cells[2].metadata[make.KEY]["id"] = nb.cells[1].metadata[make.KEY]["id"]
    nbformat.write(nb, tmp_path / "bad.ipynb")
    with pytest.raises(make.SourceError, match="unique"):
        make.load_source(tmp_path / "bad.ipynb")
    del nb.cells[2].metadata[make.KEY]["id"]
    nbformat.write(nb, tmp_path / "bad.ipynb")
    assert make.stamp_ids(tmp_path / "bad.ipynb") == 1
    assert make.load_source(tmp_path / "bad.ipynb").id == "02_sandwich_by_hand"


def test_sources_round_trip_through_text(tmp_path):
    for a in CATALOGUE.values():
        (tmp_path / "x.py").write_text(make.to_text(a.path))
        back = make.from_text((tmp_path / "x.py").read_text())
        assert [(c.cell_type, c.source, make.cell_meta(c)) for c in back.cells] == \
               [(c.cell_type, c.source, make.cell_meta(c)) for c in a.notebook.cells]
        assert back.metadata[make.KEY] == a.notebook.metadata[make.KEY]


def test_the_grader_started_by_a_relative_interpreter_path_isolates_its_kernels(built, tmp_path):
    # round 11: `../.venv/bin/python make.py grade` gave the kernels an interpreter path through assignments/, which
    # the sandbox does not show, and the grader refused to grade, naming --unsafe-same-user as the remedy
    import os
    python = os.path.relpath(sys.executable, ROOT / "assignments")
    assert python.startswith(".."), python
    run = subprocess.run([python, "make.py", "grade", str(built[("student", "01_moulton_by_simulation")]),
                          "--csv", str(tmp_path / "g.csv"), "--out", str(tmp_path / "out"), "--jobs", "1"],
                         cwd=ROOT / "assignments", capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert [r["status"] for r in csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8"))] == ["ok"]


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_an_interrupted_batch_stops_cleanly_and_says_so(signum, built, tmp_path):
    # round 11: Ctrl-C let the batch run on, gave the file then running a false `crashed` (an "oversized message")
    # and exit status 0; SIGTERM left the batch's folder and the runs' pids cgroups behind
    import glob
    import os
    import shutil
    import signal
    import tempfile
    import time
    nb = nbformat.read(built[("instructor", "02_sandwich_by_hand")], as_version=4)
    slow = tmp_path / "slow.ipynb"
    nbformat.write(_edited(nb, {}, [("q3-prompt", "import time\nwhile True:\n    time.sleep(0.1)")]), slow)
    temporary = tempfile.mkdtemp(prefix="interrupt-", dir="/tmp")       # the batch's folder is made in it
    os.chmod(temporary, 0o755)
    try:
        grading = subprocess.Popen(MAKE + ["grade", str(slow), str(built[("student", "01_moulton_by_simulation")]),
                                           "--jobs", "1", "--csv", str(tmp_path / "g.csv"), "--out",
                                           str(tmp_path / "out")],
                                   env={**os.environ, "TMPDIR": temporary}, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not glob.glob(os.path.join(temporary, "grading-*", "run-*", "kernel.log")):   # a kernel runs
            assert time.monotonic() < deadline and grading.poll() is None, grading.communicate()
            time.sleep(0.2)
        time.sleep(3)
        grading.send_signal(getattr(signal, signum))
        stdout, stderr = grading.communicate(timeout=120)
        assert grading.returncode == 128 + getattr(signal, signum), stderr[-2000:]
        assert f"the batch was interrupted ({signum})" in stderr, stderr[-2000:]
        rows = list(csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8")))
        assert [(r["file"], r["status"]) for r in rows] == [(str(slow), "interrupted"),
                                                            (rows[1]["file"], "interrupted")], rows
        assert all(r["score"] == "0" and signum in r["message"] for r in rows), rows
        assert os.listdir(temporary) == []
        assert glob.glob(f"/sys/fs/cgroup/*/hlmgrader-{grading.pid}-*") == []
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def test_a_file_name_is_no_spreadsheet_formula_in_the_csv():
    # round 11: a student's upload named `=HYPERLINK(...).ipynb` became a formula in Excel or LibreOffice
    import io
    outcomes = [grader._error_of('=HYPERLINK("http-x",2+3).ipynb', grader.GradingError("@SUM(1)")),
                grader._error_of("-a.ipynb", grader.GradingError("+1")),
                grader._error_of("a=b.ipynb", grader.GradingError("not a notebook"))]
    rows = list(csv.reader(io.StringIO(grader.csv_text(outcomes))))[1:]
    assert [(r[0], r[-1]) for r in rows] == [("'=HYPERLINK(\"http-x\",2+3).ipynb", "'@SUM(1)"),
                                             ("'-a.ipynb", "'+1"), ("a=b.ipynb", "not a notebook")], rows


def chained_classes(n):
    """The code of n classes, each derived from the one before (adversarial round 18: cubic in n once)."""
    return "class C0:\n    pass\n" + "".join(f"class C{i}(C{i - 1}):\n    pass\n" for i in range(1, n))


def test_a_chain_of_classes_is_checked_in_a_worker_and_passes():
    # 2000 chained classes took about 100 s in the grader's own process; now a worklist, in a worker process
    code = chained_classes(2000)
    assert integrity._plain_classes([ast.parse(code)], frozenset(f"C{i}" for i in range(2000))) == frozenset(
        f"C{i}" for i in range(2000))
    assert asyncio.run(grader.static_check([(1, code)])) == []
    assert asyncio.run(grader.static_check([(1, "import os\nos.system('true')")])) == [
        "cell 1, line 2: uses the attribute .system"]


def test_plain_classes_still_needs_plain_bases_in_every_definition():
    code = ("class A:\n    pass\nclass B(A, metaclass=type):\n    pass\nclass C(B):\n    pass\n"
            "class D(Exception):\n    pass\nclass E(D):\n    pass\nclass E(int):\n    pass\nclass F(F):\n    pass\n")
    own = frozenset("ABCDEF")
    assert integrity._plain_classes([ast.parse(code)], own) == {"A", "D"}


def test_the_static_check_ends_the_file_only_past_its_size_time_or_memory(monkeypatch, tmp_path):
    a = CATALOGUE[IDS[0]]
    big = make.instructor_version(a)
    big.cells.insert(0, nbformat.v4.new_code_cell("x = [" + "1, " * 400_000 + "]"))
    monkeypatch.setattr(grader, "assemble", None)     # refused before anything parses it
    result = asyncio.run(grader.run_submission(tmp_path / "big.ipynb", a, big, None, tmp_path, 60, 60))
    assert result.status == "flagged" and "code is larger than 1,000,000 bytes" in result.message
    monkeypatch.setattr(grader, "STATIC_TIME", 0.2)
    with pytest.raises(grader.StaticCheckFailed, match="took longer than 0.2 s"):
        asyncio.run(grader.static_check([(1, chained_classes(4000))]))
    monkeypatch.setattr(grader, "STATIC_TIME", 120)
    monkeypatch.setattr(grader, "STATIC_MEMORY", 500_000_000)       # room for the worker's thread, not the list
    with pytest.raises(grader.StaticCheckFailed, match="took more than the static check's memory limit"):
        asyncio.run(grader.static_check([(1, "x = [" + "[1], " * 180_000 + "]")]))


def test_which_cells_run_is_read_in_a_worker_process_with_a_time_limit(monkeypatch, tmp_path):
    # round 35: IPython's transformation of a crafted cell (magics nested thousands deep, each level parsed again; or
    # 500 magics, IPython's own limit, each found by tokenizing the whole cell again) took minutes in the grader's
    # own process, on the event loop every other file's run shares. Nested more than 3 deep, a cell is not run
    a = CATALOGUE[IDS[0]]
    nb = make.instructor_version(a)
    nb.cells[0:0] = [_scratch("%time " * 4 + "x = 1"), _scratch("%time x = 1\n" * 501), _scratch("%time " * 3 + "x"),
                     _scratch("x = %\"\"\"a"), _scratch("x = 1"), _scratch("%" + "a" * 100_000)]
    monkeypatch.setattr(integrity, "not_run", None)      # not asked in this process
    reasons = asyncio.run(grader.cells_not_run(nb))
    assert reasons[1] == "the code of a %time or %timeit: " * 3 + "it nests %time or %timeit more than 3 deep"
    assert reasons[2].startswith("IPython cannot transform it (RuntimeError: Input transformation still changing")
    assert reasons[3] is None and set(reasons) == {n for n, c in enumerate(nb.cells, 1) if c.cell_type == "code"}
    # round 36: any failure of IPython's transformation is that cell's (as in its kernel), and a reason quoting
    # the student's text is short
    assert reasons[4].startswith("IPython cannot transform it (IndexError") and reasons[5] is None
    assert reasons[6] == ("it uses the magic %" + "a" * 1000)[:integrity.REASON_LIMIT - 1] + "…"
    assert [n for n, reason in reasons.items() if reason] == [1, 2, 4, 6]       # the instructor's code runs
    monkeypatch.setattr(grader, "STATIC_TIME", 0.2)
    result = asyncio.run(grader.run_submission(tmp_path / "x.ipynb", a, nb, None, tmp_path, 60, 60))
    assert result.status == "flagged" and "(which of them run) took longer than 0.2 s" in result.message, result


def test_the_cycler_import_is_allowed():
    code = ("import matplotlib as mpl\nfrom cycler import cycler\n"
            "mpl.rcParams['axes.prop_cycle'] = cycler(color=['k', 'r'])\n")
    assert integrity.check_cells([(1, code)]) == []


def test_deep_honest_expressions_pass_the_static_check_and_deeper_ones_are_named_in_plain_words():
    # round 19: a 500-term sum overflowed the visitor's recursion in the worker (a bare RecursionError, flagged)
    def plus(n):
        return "s = " + " + ".join(f"'a{i}'" for i in range(n))

    for code in (plus(500), plus(5_000), "x = 'a'" + ".strip()" * 2_000):
        assert asyncio.run(grader.static_check([(1, code)])) == [], code[:50]
    # the deepest code the worker parses (Python's recursion limit raised to 100,000) and deeper, under the code cap
    deep, deeper = "x = " + "+".join(["a"] * 60_000), "x = " + "+".join(["a"] * 300_000)
    assert len(deeper.encode()) < grader.CODE_LIMIT
    assert asyncio.run(grader.static_check([(1, "x = 1"), (2, deep)])) == [  # Module, Assign, 59,999 BinOps, Name, Load
        "cell 2: an expression nested deeper than the static check follows (60,003 levels; it follows some 30,000)"]
    assert asyncio.run(grader.static_check([(3, deeper)])) == [
        "cell 3: an expression nested deeper than the static check follows (deeper than Python parses; it follows "
        "some 30,000)"]
    # in the grader's own process (default recursion limit), as in Jupyter's kernel: that cell is not run, in words
    for code in (plus(5_000), deep, deeper, "x = " + "-" * 999_000 + "1"):      # the last: the parser's MemoryError
        assert integrity.not_run(code).startswith("it nests an expression deeper than Python parses")
    assert integrity.not_run(plus(500)) is None
