"""Grade submissions: rebuild each from the instructor's source, run it in a fresh kernel, score, report.

For one submission:

1. the assignment is read from the notebook metadata (``assignment.id``); an unknown notebook is an error;
2. the submission's own copies of the test cells (found by id) are dropped, and every test of the source, visible
   or hidden, is inserted after the submission's cell that precedes it in the source (found by id; if that cell
   was deleted, the nearest earlier one), past any cells the student added there;
3. the student's code is checked statically (``integrity.py``); a submission that reaches into the interpreter is
   not run;
4. a first cell loads ``gradingkit`` (which records the modules the tests rely on), then every cell runs in order
   in a fresh kernel, carrying on past errors; a cell that exceeds the time limit, or a kernel that dies, ends the
   run, and the tests not reached score 0;
5. a test scores its points if it printed the run's one-time token (``gradingkit.run_test``) and raised nothing.

Several submissions run at once (``jobs``); each gets a report, and the written answers of all submissions of an
assignment are collected into one document beside the model answers.
"""
from __future__ import annotations

import asyncio
import copy
import csv
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

import integrity
import make
from make import Assignment, cell_key, cell_meta

SETUP = f"""def __grader_setup():
    import sys
    sys.path.insert(0, {str(make.HERE)!r})
    import gradingkit
    gradingkit.setup(get_ipython().user_ns)
    return gradingkit
__grader__ = __grader_setup()
del __grader_setup"""


CODE_SUFFIXES = (".py", ".pyc", ".pth", ".so", ".ipynb")


class GradingError(Exception):
    """A file that cannot be graded (unreadable, or not a notebook of a known assignment)."""


@dataclass
class TestResult:
    id: str
    question: str
    points: float
    hidden: bool
    guards: str | None = None
    passed: bool = False
    message: str = "not run"


@dataclass
class Result:
    file: Path
    assignment: Assignment
    status: str = "ok"                    # ok, timeout, crashed, flagged
    message: str = ""
    tests: list[TestResult] = field(default_factory=list)
    graded: nbformat.NotebookNode | None = None
    submission: nbformat.NotebookNode | None = None

    @property
    def score(self) -> float:
        return sum(t.points for t in self.tests if t.passed)

    @property
    def total(self) -> float:
        return self.assignment.total

    def by_question(self) -> dict[str, float]:
        earned = dict.fromkeys(self.assignment.questions, 0)
        for t in self.tests:
            earned[t.question] += t.points if t.passed else 0
        return earned


def identify(nb, catalogue: dict[str, Assignment]) -> Assignment:
    meta = nb.metadata.get(make.KEY) or {}
    if not meta.get("id"):
        raise GradingError("not an assignment notebook: its metadata has no assignment id "
                           "(grade the notebook handed out, not a copy made another way)")
    if meta["id"] not in catalogue:
        raise GradingError(f"unknown assignment {meta['id']!r} (known: {', '.join(catalogue)})")
    return catalogue[meta["id"]]


def assemble(submission, a: Assignment, token: str):
    """The notebook to run: the submission's cells, its test cells replaced by the source's, placed by id.

    Returns the notebook, the position of each test in it ({index: test id}), and the submission's code cells
    that will run, numbered as in the submission (for the static check)."""
    source_ids = [cell_meta(c)["id"] for c in a.notebook.cells]
    tests = {t.id: t for t in a.tests}
    kept = [(n, c) for n, c in enumerate(submission.cells, 1)
            if cell_key(c) not in tests and c.cell_type in ("code", "markdown")]
    last = {cell_key(c): i for i, (_, c) in enumerate(kept) if cell_key(c) in source_ids}
    if not last:
        raise GradingError("none of the notebook's cells carries an id of the assignment's cells (its metadata was "
                           "lost): ask for the notebook as saved by Jupyter from the one handed out")
    before: dict[int, list] = {}
    for s, sid in enumerate(source_ids):
        if sid in tests:
            anchors = [last[p] for p in reversed(source_ids[:s]) if p in last and p not in tests]
            slot = anchors[0] + 1 if anchors else 0
            while slot < len(kept) and cell_key(kept[slot][1]) not in last:    # past the student's added cells
                slot += 1
            before.setdefault(slot, []).append(tests[sid])
    cells, positions = [nbformat.v4.new_code_cell(SETUP)], {}
    for i in range(len(kept) + 1):
        for t in before.get(i, []):
            positions[len(cells)] = t.id
            cells.append(nbformat.v4.new_code_cell(f"__grader__.run_test({t.id!r}, {token!r}, {t.source!r})"))
        if i < len(kept):
            cell = copy.deepcopy(kept[i][1])
            error = cell.cell_type == "code" and integrity.unparsable(cell.source)
            if error:          # what cannot be checked is not run: the cell fails as its syntax error would
                cell.source = f"raise SyntaxError({error!r})"
            cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(submission.metadata))
    return nb, positions, [(n, c.source) for n, c in kept if c.cell_type == "code"]


def _error_message(outputs) -> str | None:
    for o in outputs:
        if o.get("output_type") == "error":
            value = str(o.get("evalue", "")).strip()
            lines = [line for line in value.splitlines() if line.strip()][:6]
            return f"{o.get('ename')}: " + " / ".join(lines)[:600]
    return None


def _score(result: Result, nb, positions: dict[int, str], token: str, stopped_at: int | None) -> None:
    tests = {t.id: t for t in result.tests}
    for index, test_id in positions.items():
        t = tests[test_id]
        if stopped_at is not None and index >= stopped_at:
            t.message = "not run: " + result.message
            continue
        outputs = nb.cells[index].get("outputs", [])
        error = _error_message(outputs)
        printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
        t.passed = error is None and token in printed
        t.message = "" if t.passed else error or "the test did not complete"
    for t in result.tests:
        if t.guards and not t.passed and tests[t.guards].passed:
            tests[t.guards].passed = False
            tests[t.guards].message = (f"passes on its own data only: {t.id}, the same check on other data, "
                                       f"failed ({t.message})")


async def _execute(nb, timeout: float, workdir: str) -> tuple[int | None, str, str]:
    """Run every cell; returns (index of the cell that stopped the run or None, status, message)."""
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": workdir}})
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    client.km = client.create_kernel_manager()
    client.km.transport, client.km.ip = "ipc", os.path.join(workdir, "kernel")   # local sockets, not TCP
    async with client.async_setup_kernel(env=env):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                await client.async_execute_cell(cell, index)
            except CellTimeoutError:
                return index, "timeout", f"cell {_where(nb, index)} ran longer than the limit of {timeout:g} s"
            except DeadKernelError:
                return index, "crashed", f"the kernel died in cell {_where(nb, index)}"
            if index == 0 and _error_message(cell.outputs):
                return 0, "crashed", "the grader's set-up cell failed: " + _error_message(cell.outputs)
    return None, "ok", ""


def _where(nb, index: int) -> str:
    cell = nb.cells[index]
    first = next((line for line in cell.source.splitlines() if line.strip()), "")[:60]
    return f"{cell_key(cell) or 'added by the student'} ({first!r})"


async def grade_async(path: Path, catalogue: dict[str, Assignment], timeout: float, content=None) -> Result:
    try:
        if isinstance(content, Exception):
            raise content
        submission = nbformat.reads(content.decode("utf-8"), as_version=4) if content is not None \
            else nbformat.read(path, as_version=4)
    except Exception as exc:  # any unreadable file: JSON, schema, encoding
        raise GradingError(f"cannot read the notebook ({type(exc).__name__}: {exc})") from None
    a = identify(submission, catalogue)
    result = Result(path, a, submission=submission,
                    tests=[TestResult(t.id, t.question, t.points, t.hidden, t.guards) for t in a.tests])
    token = secrets.token_hex(16)
    nb, positions, student_code = assemble(submission, a, token)
    problems = integrity.check_cells(student_code)
    if problems:
        result.status, result.message = "flagged", "not run, for the instructor to read: " + "; ".join(problems[:5])
        _score(result, nb, positions, token, stopped_at=0)
        return result
    with tempfile.TemporaryDirectory(prefix="grade-") as workdir:
        stopped_at, result.status, result.message = await _execute(nb, timeout, workdir)
    if stopped_at is not None:
        result.message += "; the run stopped there"
    _score(result, nb, positions, token, stopped_at)
    result.graded = nb
    return result


def grade(path: Path, timeout: float = 300) -> Result:
    """Grade one submission (see the module docstring)."""
    return asyncio.run(grade_async(Path(path), make.assignments(), timeout))


def _environment_files() -> dict[str, tuple[int, int]]:
    """Size and modification time of the code the kernels import or the grader runs: the assignments folder,
    hlmlib, the installed packages and the standard library's start-up hooks (a submission that wrote there
    could change the runs after it)."""
    import sysconfig

    import hlmlib
    paths = sysconfig.get_paths()
    trees = {make.HERE, Path(hlmlib.__file__).parent, Path(paths["purelib"]), Path(paths["platlib"])}
    stamps = {}

    def stamp(path):
        try:
            st = os.stat(path)
            stamps[path] = (st.st_size, st.st_mtime_ns)
        except OSError:
            pass

    for root in trees:
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = [d for d in subfolders if d != "build"]
            for name in names:
                if name.endswith(CODE_SUFFIXES):
                    stamp(os.path.join(folder, name))
    for name in ("sitecustomize.py", "usercustomize.py"):
        stamp(os.path.join(paths["stdlib"], name))
    return stamps


def grade_many(paths, timeout: float = 300, jobs: int | None = None) -> list[Result | GradingError]:
    """Grade several submissions, ``jobs`` at a time; a file that cannot be graded gives its GradingError.

    Every submission is read before any runs, and the files of the environment are compared before and after:
    if a run changed them, every result is flagged (no sandbox stops a kernel from writing files; this notices)."""
    catalogue = make.assignments()
    limit = asyncio.Semaphore(jobs or os.cpu_count() or 2)
    before = _environment_files()
    texts = {}
    for p in paths:
        try:
            texts[p] = Path(p).read_bytes()
        except OSError as exc:
            texts[p] = exc

    async def one(path):
        async with limit:
            try:
                return await grade_async(Path(path), catalogue, timeout, texts[path])
            except GradingError as exc:
                exc.file = Path(path)
                return exc

    async def everything():
        return await asyncio.gather(*(one(p) for p in paths))

    outcomes = asyncio.run(everything())
    after = _environment_files()
    changed = sorted(f for f in before.keys() | after.keys() if before.get(f) != after.get(f))
    if changed:
        for o in outcomes:
            if isinstance(o, Result):
                o.status, o.message = "flagged", ("files of the grader, hlmlib or the Python environment changed "
                                                  f"while this batch ran ({', '.join(changed[:3])}): restore them "
                                                  "(git checkout, pip install -r requirements.txt) and grade again")
    return outcomes


# --- reports ---------------------------------------------------------------------------------------------------

def summary_line(r: Result) -> str:
    per_q = ", ".join(f"{q} {earned:g}/{r.assignment.questions[q]:g}" for q, earned in r.by_question().items())
    note = f"{r.status.upper()} ({r.message}): " if r.status != "ok" else ""
    return f"{r.file}: {r.assignment.id}: {note}{per_q}: {r.score:g}/{r.total:g}"


def report(r: Result) -> str:
    lines = [f"# {r.file}: {r.assignment.title}", "",
             f"Assignment `{r.assignment.id}`, score **{r.score:g} / {r.total:g}**"
             + ("" if r.status == "ok" else f" ({r.status}: {r.message})"), "",
             "| question | points | test | result |", "|---|---|---|---|"]
    earned = r.by_question()
    for t in r.tests:
        q = f"{t.question} ({earned[t.question]:g}/{r.assignment.questions[t.question]:g})"
        kind = "hidden" if t.hidden else "visible"
        outcome = f"passed, {t.points:g}" if t.passed else f"failed, 0/{t.points:g}: {t.message}"
        lines.append(f"| {q} | {t.points:g} | {t.id} ({kind}) | {outcome.replace('|', '/')} |")
    if r.assignment.written:
        lines += ["", "Written answers (" + ", ".join(f"{q}: {p:g} points" for q, p in r.assignment.written.items())
                  + ") are graded by hand: see the written-answers document."]
    return "\n".join(lines) + "\n"


def _answer(submission, cid: str, source_ids: set) -> str:
    """The student's answer cell with this id, with any markdown cells they added right after it."""
    cells = submission.cells
    found = [i for i, c in enumerate(cells) if cell_key(c) == cid]
    if not found:
        return "*(the answer cell was deleted)*"
    parts = [cells[found[-1]].source]
    for c in cells[found[-1] + 1:]:
        if cell_key(c) in source_ids or c.cell_type != "markdown":
            break
        parts.append(c.source)
    text = "\n\n".join(p for p in parts if p.strip())
    return "*(not answered)*" if text.strip() in ("", make.STUDENT_TEXT) else text


def written_answers(a: Assignment, results: list[Result]) -> str:
    """One document for hand grading: each written question's model answer, then every submission's answer."""
    lines = [f"# Written answers: {a.title}", "", f"Assignment `{a.id}`, {len(results)} submissions.", ""]
    cells = a.notebook.cells
    source_ids = {cell_meta(c)["id"] for c in cells}
    for n, cell in enumerate(cells):
        meta = cell_meta(cell)
        if meta.get("kind") != "written":
            continue
        prompt = cells[n - 1].source if n and cells[n - 1].cell_type == "markdown" else ""
        model = "\n".join(m.strip() for m in make.TEXT_SOLUTION.findall(cell.source))
        lines += [f"## {meta['question']} ({make._points_text(meta['points'])})", "", make.render_points(a, prompt), "",
                  "### Model answer", "", model, ""]
        for r in results:
            lines += [f"### {r.file}", "", _answer(r.submission, meta["id"], source_ids), ""]
    return "\n".join(lines)


def _unique_stems(results) -> dict:
    stems, seen = {}, {}
    for r in results:
        stem = r.file.stem
        seen[stem] = seen.get(stem, 0) + 1
        stems[id(r)] = stem if seen[stem] == 1 else f"{stem}-{seen[stem]}"
    return stems


def write_outputs(results: list[Result], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stems = _unique_stems(results)
    for r in results:
        (out / f"{stems[id(r)]}.report.md").write_text(report(r), encoding="utf-8")
        if r.graded is not None:
            nbformat.write(r.graded, out / f"{stems[id(r)]}.graded.ipynb")
    by_assignment: dict[str, list[Result]] = {}
    for r in results:
        by_assignment.setdefault(r.assignment.id, []).append(r)
    for aid, rs in by_assignment.items():
        if rs[0].assignment.written:
            (out / f"written_{aid}.md").write_text(written_answers(rs[0].assignment, rs), encoding="utf-8")


def write_csv(outcomes: list, path: Path) -> None:
    questions: list[str] = []
    for o in outcomes:
        if isinstance(o, Result):
            questions += [q for q in o.assignment.questions if q not in questions]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file", "assignment", "score", "total", *questions, "status", "message"])
        for o in outcomes:
            if isinstance(o, GradingError):
                w.writerow([str(o.file), "", "", "", *[""] * len(questions), "error", str(o)])
                continue
            earned = o.by_question()
            w.writerow([str(o.file), o.assignment.id, f"{o.score:g}", f"{o.total:g}",
                        *[f"{earned[q]:g}" if q in earned else "" for q in questions], o.status, o.message])


def cli(args) -> int:
    outcomes = grade_many(args.files, timeout=args.timeout, jobs=args.jobs)
    results = [o for o in outcomes if isinstance(o, Result)]
    for o in outcomes:
        if isinstance(o, GradingError):
            print(f"{o.file}: error: {o}", file=sys.stderr)
        else:
            print(summary_line(o))
    write_outputs(results, args.out)
    if args.csv:
        write_csv(outcomes, args.csv)
    print(f"reports, graded notebooks and written answers in {args.out}", file=sys.stderr)
    return 1 if len(results) < len(outcomes) else 0
