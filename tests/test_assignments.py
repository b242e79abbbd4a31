"""The assignments and their grader.

Every assignment, generically: the instructor version scores full marks; the student version zero, also with its
test cells deleted or replaced by ``pass``; the instructor version keeps full marks with scratch cells added at the
top, with its visible tests edited to fail and moved, and under a course site's renamed file name. Plausible wrong
answers each lose the points they should, and attempts to game the grader score nothing. A cell that runs too
long ends its file's run with a report while the other files and the CSV still come; an unknown notebook is an
error. Everything is graded in one parallel run of the real command (``make.py grade``), reused by every check.
"""
import asyncio
import copy
import csv
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "assignments"))
import grader  # noqa: E402  (assignments/grader.py)
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


def _variants(instructor, student):
    """The generic checks' submissions for one assignment: name -> (notebook, file name or None)."""
    damaged = copy.deepcopy(student)                 # visible tests deleted, or replaced by pass, in turn
    tests = [c for c in damaged.cells if _kind(c) == "test"]
    for c in tests[1::2]:
        c.source = "pass"
    damaged.cells = [c for c in damaged.cells if c not in tests[::2]]
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


# Plausible wrong answers: (assignment, submission, name, cell id, wrong code, {question: points it should have}).
# Wrong answers to questions that do not depend on each other share a submission, to save runs.
WRONG = [
    ("01_moulton_by_simulation", "a", "omega-not-block-diagonal", "q1-answer",
     "def compound_cov(x, cluster, tau, sigma2):\n    Z = np.column_stack([np.ones(len(x)), x])\n"
     "    return Z @ np.asarray(tau) @ Z.T + sigma2 * np.eye(len(x))", {"q1": 0, "q3": 2}),
    ("01_moulton_by_simulation", "b", "random-effects-per-observation", "q2-answer",
     "def simulate_errors(x, cluster, tau, sigma2, R, rng):\n"
     "    u = rng.standard_normal((R, len(x), 2)) @ np.linalg.cholesky(tau).T\n"
     "    return u[..., 0] + u[..., 1] * x + np.sqrt(sigma2) * rng.standard_normal((R, len(x)))", {"q2": 0, "q1": 2}),
    ("01_moulton_by_simulation", "b", "moulton-with-n-not-n-1", "q3-answer",
     "def rho_x(x, cluster):\n    d = x - x.mean()\n    codes = np.unique(cluster, return_inverse=True)[1]\n"
     "    n = len(d) / (codes.max() + 1)\n"
     "    return np.sum(np.bincount(codes, d) ** 2 - np.bincount(codes, d ** 2)) / ((n - 1) * np.sum(d ** 2))\n"
     "def moulton(n, rho_x, rho):\n    return 1 + n * rho_x * rho", {"q3": 0, "q1": 2}),
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
    ("03_few_clusters_monte_carlo", "a", "cr1-test-with-z", "q2-answer",
     "def cr1_t_test(y, X, cluster, value=1.0):\n    fit = hlmlib.ols(y, X)\n"
     "    t = (fit.params.iloc[1] - value) / fit.se(kind='CR1', cluster=cluster).iloc[1]\n"
     "    return {'t': t, 'df': len(np.unique(cluster)) - 1, 'p': 2 * stats.norm.sf(abs(t))}", {"q2": 0, "q1": 2}),
    ("03_few_clusters_monte_carlo", "b", "rejection-with-z-critical-values", "q3-answer",
     "def rejection_rates(G, n, reps, seed):\n    rng = np.random.default_rng(seed)\n    c = {'classical': 0, 'CR1': 0}\n"
     "    for _ in range(reps):\n        y, X, cluster = cgm_sample(G, n, rng)\n        fit = hlmlib.ols(y, X)\n"
     "        c['classical'] += abs((fit.params.iloc[1] - 1) / fit.se().iloc[1]) > stats.t.ppf(0.975, G * n - 2)\n"
     "        c['CR1'] += abs(cr1_t_test(y, X, cluster)['t']) > 1.96\n"
     "    return {k: v / reps for k, v in c.items()}", {"q3": 0, "q2": 2}),
    ("01_moulton_by_simulation", "a", "hard-coded-variance-ratio", "q4-answer",
     "def variance_ratio(G, n, rho, rho_x_target, R, seed):\n"
     "    return {'ratio': 2.6584236040187, 'mc_se': 0.0841, 'moulton': 2.6498787860672}", {"q4": 0, "q3": 2}),
    ("03_few_clusters_monte_carlo", "c", "hard-coded-rates", "q3-answer",
     "def rejection_rates(G, n, reps, seed):\n    return {'classical': 0.5, 'CR1': 0.115}", {"q3": 0, "q1": 2, "q2": 2}),
    ("04_hsb_hlm", "a", "hard-coded-icc", "q1-answer",
     "def null_icc(data):\n    return 0.180352\nicc = null_icc(hsb)", {"q1": 0, "q2": 2}),
    ("04_hsb_hlm", "b", "ols-stored-as-hlm", "q2-answer",
     "hlm = hlmlib.ols('mathach ~ cses * catholic + cses * meanses', data=hsb)", {"q2": 0, "q1": 2}),
    ("04_hsb_hlm", "c", "hlm-without-random-slope", "q2-answer",
     "hlm = hlmlib.mixed('mathach ~ cses * catholic + cses * meanses', data=hsb, groups='school')",
     {"q2": 0, "q1": 2}),
    ("04_hsb_hlm", "a", "inverted-ratio", "q3-answer",
     "ols_fit = hlmlib.ols('mathach ~ cses * catholic + cses * meanses', data=hsb)\n"
     "se_ratio = hlm.se() / ols_fit.se(kind='CR2', cluster='school')", {"q3": 0, "q2": 2}),
]

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
    "shell-escape": "!echo hi",
}


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

    for aid in IDS:
        instructor = nbformat.read(built[("instructor", aid)], as_version=4)
        student = nbformat.read(built[("student", aid)], as_version=4)
        for variant, (nb, filename) in _variants(instructor, student).items():
            add(f"{aid}/{variant}", nb, filename and filename.format(id=aid))
    wrong = {}
    for aid, submission, name, cell_id, code, _ in WRONG:
        base = wrong.get((aid, submission)) or nbformat.read(built[("instructor", aid)], as_version=4)
        wrong[aid, submission] = _replace(base, cell_id, code)
    for (aid, submission), nb in wrong.items():
        add(f"{aid}/wrong/{submission}", nb)
    hsb = nbformat.read(built[("student", "04_hsb_hlm")], as_version=4)
    wrong_hsb = _replace(hsb, "q1-answer", "def null_icc(data):\n    return 0.5\nicc = null_icc(hsb)")
    for name, code in GAMING.items():
        nb = copy.deepcopy(wrong_hsb)
        nb.cells.insert(3, _scratch(code))
        add(f"gaming/{name}", nb)
    out = folder / "out"
    run = subprocess.run(MAKE + ["grade", *files.values(), "--csv", str(folder / "grades.csv"), "--out", str(out)],
                         capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = list(csv.DictReader(open(folder / "grades.csv", encoding="utf-8")))
    by_file = {r["file"]: r for r in rows}
    return {"rows": {name: by_file[str(path)] for name, path in files.items()}, "stdout": run.stdout,
            "csv": rows, "out": out, "files": files}


def _points(row, aid):
    return {q: float(row[q]) for q in CATALOGUE[aid].questions}


def test_there_is_an_assignment_for_each_part():
    assert len(IDS) >= 4
    parts = {a.notebook.metadata[make.KEY].get("part") for a in CATALOGUE.values()}
    assert {"I", "II", "III"} <= parts


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
    assert "q1 (0/2)" in hidden and "failed, 0/1: AssertionError: (0.180352" in hidden, hidden
    assert "passes on its own data only: q1-hidden" in visible, visible


@pytest.mark.parametrize("name", GAMING)
def test_gaming_the_grader_scores_nothing(name, graded):
    row = graded["rows"][f"gaming/{name}"]
    assert float(row["score"]) == 0, row
    changed = {"patch-through-pandas-api": "pandas.core.series.Series.reindex",
               "change-an-hlmlib-table-through-an-alias": "hlmlib.sandwich.CR_ADJUSTMENTS"}
    if name in changed:     # not visible to the static check; the guard in the kernel sees it
        assert row["status"] == "ok", row
        assert f"changed what the tests rely on: {changed[name]}" in _report(graded, f"gaming/{name}")
    elif name != "shadow-builtins":             # ordinary code: the tests see the real built-ins
        assert row["status"] == "flagged", row


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
        model = make.TEXT_SOLUTION.search(next(c.source for c in a.notebook.cells if _kind(c) == "written"))
        assert model.group(1).strip()[:60] in text
        assert str(graded["files"][f"{aid}/instructor"]) in text and "*(not answered)*" in text


def test_a_time_out_ends_that_file_with_a_report_and_the_others_still_come(built, tmp_path):
    nb = nbformat.read(built[("instructor", "02_sandwich_by_hand")], as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if make.cell_key(c) == "q3-prompt")
    nb.cells.insert(at + 1, _scratch("import time\nwhile True:\n    time.sleep(0.1)"))
    slow, unknown = tmp_path / "slow.ipynb", tmp_path / "unknown.ipynb"
    nbformat.write(nb, slow)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), unknown)
    other = built[("student", "01_moulton_by_simulation")]
    run = subprocess.run(MAKE + ["grade", str(slow), str(unknown), str(other), "--timeout", "10",
                                 "--csv", str(tmp_path / "g.csv"), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 1                      # the unknown notebook is an error ...
    assert f"{unknown}: error: not an assignment notebook" in run.stderr
    rows = {r["file"]: r for r in csv.DictReader(open(tmp_path / "g.csv", encoding="utf-8"))}
    assert rows[str(unknown)]["status"] == "error"
    assert rows[str(slow)]["status"] == "timeout" and "limit of 10 s" in rows[str(slow)]["message"]
    assert (rows[str(slow)]["q1"], rows[str(slow)]["q2"], rows[str(slow)]["q3"]) == ("2", "2", "0")
    assert rows[str(other)]["status"] == "ok"       # ... and the other files are graded all the same
    assert "TIMEOUT" in next(line for line in run.stdout.splitlines() if line.startswith(str(slow)))
    assert "not run" in (tmp_path / "out" / "slow.report.md").read_text()


def test_a_kernel_that_dies_ends_the_run_with_a_report(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("import os\nos._exit(3)"),
                                         nbformat.v4.new_code_cell("y = 2")])
    stopped, status, message = asyncio.run(grader._execute(nb, 60, str(tmp_path)))
    assert (stopped, status) == (1, "crashed") and "died" in message


def test_a_batch_whose_run_changed_the_environment_is_flagged(built, monkeypatch):
    stamps = iter([{"hlmlib/ols.py": (1, 1)}, {"hlmlib/ols.py": (1, 2)}])
    monkeypatch.setattr(grader, "_environment_files", lambda: next(stamps))
    [result] = grader.grade_many([built[("student", "02_sandwich_by_hand")]], timeout=120)
    assert result.status == "flagged" and "hlmlib/ols.py" in result.message


def test_an_unknown_assignment_is_an_error():
    nb = nbformat.v4.new_notebook(metadata={make.KEY: {"id": "99_no_such"}})
    with pytest.raises(grader.GradingError, match="unknown assignment"):
        grader.identify(nb, CATALOGUE)


def test_tests_are_placed_by_id_after_the_cells_the_student_added():
    a = CATALOGUE["02_sandwich_by_hand"]
    student = make.student_version(a)
    answer = next(i for i, c in enumerate(student.cells) if make.cell_key(c) == "q1-answer")
    student.cells.insert(answer + 1, _scratch("def helper():\n    pass"))
    student.cells.insert(0, _scratch("# scratch at the top"))
    nb, positions, _ = grader.assemble(student, a, "token")
    order = [make.cell_key(c) if i not in positions else positions[i] for i, c in enumerate(nb.cells)]
    assert order.index("q1-answer") < order.index(nb.cells[order.index("q1-answer") + 1]["id"]) < order.index("q1-test")
    assert order[order.index("q1-test"):order.index("q2-prompt")] == ["q1-test", "q1-twin", "q1-hidden"]
    assert len(positions) == len(a.tests)


@pytest.mark.parametrize("code", [
    "import sys", "import os as o", "from builtins import abs", "exec('1')", "getattr(np, 'x')",
    "x.__class__", "np.testing.assert_allclose = None", "hlmlib.ols.__code__ = None", "In[-1]", "_i3",
    "get_ipython().run_line_magic('load', 'f.py')", "%time exec('1')", "!ls", "setattr(np, 'pi', 3)",
    "class A(float):\n    def __lt__(self, o):\n        return True", "type('A', (float,), {'__lt__': 1})",
    "np.ctypeslib", "del np.testing", "np.random.x += 1", "t = np.testing\nt.assert_allclose = None",
    "for m in [np.testing]:\n    m.assert_allclose = None", "class A:\n    def f(self):\n        self.m.x = 1",
    "for np.x in range(3):\n    pass", "import warnings\nwarnings.sys", "np.savetxt('a.txt', [])",
    "import pandas as pd\npd.DataFrame().to_csv('a.csv')", "def f(g):\n    return g.f_code.co_consts",
    "import operator", "import pandas as pd\npd.eval('x.sys')", "import asyncio\nawait asyncio.sleep(0)",
    "import random\nrandom._os", "import typing", "import sympy", "import statsmodels.formula.api as smf",
    "import string\nstring.Formatter().get_field('0.x', [1], {})",
])
def test_the_integrity_check_flags_what_reaches_into_the_interpreter(code):
    assert integrity.check_cells([(1, "import numpy as np\nimport hlmlib\n" + code)]), code


@pytest.mark.parametrize("code", [
    "import numpy as np\nfrom scipy import stats\nx = np.zeros(3)\nx[0] = 1\nstats.t.ppf(0.975, 9)",
    "import pandas as pd\npd.options.display.max_rows = 10", "%matplotlib inline", "%time y = sum([1, 2])",
    "class Fit:\n    def __init__(self):\n        self.a = 1", "sum = 0\nfor v in range(3):\n    sum += v",
    "import matplotlib.pyplot as plt\nplt.rcParams['figure.dpi'] = 100",
    "import pandas as pd\ndf = pd.DataFrame({'a': [1]})\ndf.columns = ['b']\ndf.index.name = 'i'\ndf['c'] = 2",
    "class Fit:\n    def __init__(self, b):\n        self.b = b",
])
def test_the_integrity_check_lets_ordinary_code_through(code):
    assert integrity.check_cells([(1, code)]) == [], code


def test_a_notebook_that_lost_its_cell_ids_is_an_error():
    a = CATALOGUE["02_sandwich_by_hand"]
    student = make.student_version(a)
    for c in student.cells:
        c.metadata, c["id"] = {}, "x" + c["id"]
    with pytest.raises(grader.GradingError, match="metadata was lost"):
        grader.assemble(student, a, "token")


def test_a_cell_the_check_cannot_read_is_not_run():
    a = CATALOGUE["02_sandwich_by_hand"]
    student = make.student_version(a)
    student.cells.insert(0, _scratch("x = (1 +\nimport sys"))
    nb, _, _ = grader.assemble(student, a, "token")
    assert nb.cells[1].source.startswith("raise SyntaxError(")


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
