"""Build the student and instructor versions of every assignment from its one source, and grade submissions.

    python assignments/make.py                     # writes assignments/build/{student,instructor}/*.ipynb
    python assignments/make.py grade FILE [FILE ...] [--csv OUT] [--timeout S] [--timeout-file S] [--jobs N]
                                   [--out DIR] [--recompute-reference] [--unsafe-same-user]
    python assignments/make.py ids SOURCE [...]    # gives every cell of a source notebook that lacks one a stable id
    python assignments/make.py to-text SOURCE > X.py; python assignments/make.py to-ipynb X.py SOURCE  # edit as text

The format of a source (``assignments/source/*.ipynb``) is in the README's "Teaching with the book". In short,
the notebook's metadata ``assignment`` holds its ``id`` and ``title``; every cell's metadata ``assignment`` holds a
stable ``id``; a test cell adds ``kind`` (``test`` or ``hidden-test``), ``question`` and ``points``; every visible
test is named in ``guards`` by a hidden test, and then scores only if the hidden one passes too (the same check on
other data, so that an answer typed to match the visible test scores nothing); a test may name in ``reference`` the
answer cells of earlier questions its question builds on (the grader runs it with the instructor's versions of
them); a written answer adds ``kind: written``, ``question`` and ``points``. Solutions sit between
``# BEGIN SOLUTION`` and ``# END SOLUTION`` lines (code) or ``<!-- BEGIN SOLUTION -->`` and
``<!-- END SOLUTION -->`` (markdown), and ``{{points q1}}`` in markdown becomes "2 points".

Grading never trusts the submission's tests. The assignment is read from the notebook's metadata (not its file
name); every test, visible or hidden, comes from the instructor source and runs where the source puts it, found by
the ids of the cells around it, whatever the student did to the test cells (edited, deleted, moved). Hidden
tests hand their values to the grader, which compares them with the values of the instructor's solution. See
``grader.py`` for how a run is placed, executed and scored.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCE, BUILD = HERE / "source", HERE / "build"
KEY = "assignment"                               # the metadata key, on the notebook and on every cell
TEST_KINDS = ("test", "hidden-test")
CELL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")   # nbformat's rule for cell ids
CODE_SOLUTION = re.compile(r"^([ \t]*)# BEGIN SOLUTION.*?^[ \t]*# END SOLUTION[^\n]*\n?", re.S | re.M)
TEXT_SOLUTION = re.compile(r"<!-- BEGIN SOLUTION -->\n?(.*?)\n?<!-- END SOLUTION -->", re.S)
MARKER_LINE = re.compile(r"^\s*(# (BEGIN|END) SOLUTION|<!-- (BEGIN|END) SOLUTION -->)\s*$")
POINTS = re.compile(r"\{\{points ([\w-]+)\}\}")
STUDENT_CODE = 'raise NotImplementedError("your code here")\n'
STUDENT_TEXT = "*Write your answer here.*"


class SourceError(ValueError):
    """A source notebook that does not follow the format."""


def cell_meta(cell) -> dict:
    """A cell's assignment metadata; {} if it has none, or something other than a dict (a student's edit)."""
    metadata = cell.get("metadata")
    meta = metadata.get(KEY) if isinstance(metadata, dict) else None
    return meta if isinstance(meta, dict) else {}


def cell_key(cell) -> str | None:
    """A cell's stable id: the metadata's, else nbformat's own cell id (some front ends drop metadata); an id that
    is not a string is no id."""
    for key in (cell_meta(cell).get("id"), cell.get("id")):
        if isinstance(key, str) and key:
            return key
    return None


@dataclass
class Test:
    id: str
    question: str
    points: float
    hidden: bool
    source: str
    guards: str | None = None        # a visible test that scores only if this (hidden) test passes too
    reference: tuple[str, ...] = ()  # answer cells of earlier questions: the instructor's run in their place


@dataclass
class Assignment:
    id: str
    title: str
    path: Path
    notebook: nbformat.NotebookNode
    tests: list[Test] = field(default_factory=list)
    written: dict[str, float] = field(default_factory=dict)       # question -> points, graded by hand

    @property
    def questions(self) -> dict[str, float]:
        """Automatically graded questions and their points, in the order of the source."""
        out: dict[str, float] = {}
        for t in self.tests:
            out[t.question] = out.get(t.question, 0) + t.points
        return out

    @property
    def total(self) -> float:
        return sum(t.points for t in self.tests)


def _points_text(points: float) -> str:
    return f"{points:g} point" + ("" if points == 1 else "s")


def load_source(path: Path) -> Assignment:
    """Read and check a source notebook: ids present and unique, tests and written answers well formed."""
    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get(KEY, {})
    where = path.name
    if not meta.get("id") or not meta.get("title"):
        raise SourceError(f"{where}: the notebook metadata needs '{KEY}': {{'id': ..., 'title': ...}}")
    a = Assignment(meta["id"], meta["title"], path, nb)
    seen = set()
    for n, cell in enumerate(nb.cells, 1):
        m = cell_meta(cell)
        cid, kind = m.get("id"), m.get("kind")
        if not cid or not CELL_ID.match(cid) or cid in seen:
            raise SourceError(f"{where}, cell {n}: needs a unique metadata '{KEY}.id' of letters, digits, - and _ "
                              f"(got {cid!r}; 'python assignments/make.py ids {where}' adds missing ones)")
        seen.add(cid)
        if kind is None:
            continue
        points, guards, reference = m.get("points"), m.get("guards"), m.get("reference", [])
        if (not m.get("question") or not isinstance(points, (int, float)) or points < 0
                or points == 0 and not guards):
            raise SourceError(f"{where}, cell {n} ({cid}): a {kind} cell needs 'question' and positive 'points' "
                              "(0 only for a hidden test that guards a visible one)")
        if kind in TEST_KINDS and cell.cell_type == "code":
            if CODE_SOLUTION.search(cell.source):
                raise SourceError(f"{where}, cell {n} ({cid}): a test cell cannot hold a solution")
            guarded = next((t for t in a.tests if t.id == guards), None)
            if guards and (kind != "hidden-test" or not guarded or guarded.hidden or guarded.question != m["question"]):
                raise SourceError(f"{where}, cell {n} ({cid}): 'guards' names a visible test of the same question, "
                                  "above this hidden test")
            answers = {cell_meta(c).get("id") for c in nb.cells[:n - 1]
                       if c.cell_type == "code" and CODE_SOLUTION.search(c.source)}
            if not isinstance(reference, list) or not set(reference) <= answers:
                raise SourceError(f"{where}, cell {n} ({cid}): 'reference' lists answer cells (code cells with a "
                                  f"solution) above this test; {sorted(set(reference) - answers)} are not")
            a.tests.append(Test(cid, m["question"], points, kind == "hidden-test", cell.source, guards,
                                tuple(reference)))
        elif kind == "written" and cell.cell_type == "markdown" and TEXT_SOLUTION.search(cell.source):
            a.written[m["question"]] = a.written.get(m["question"], 0) + points
        else:
            raise SourceError(f"{where}, cell {n} ({cid}): kind {kind!r} does not fit a {cell.cell_type} cell "
                              "(tests are code cells; written answers are markdown cells with a model answer "
                              "between <!-- BEGIN SOLUTION --> and <!-- END SOLUTION -->)")
    if not a.tests:
        raise SourceError(f"{where}: no test cells")
    guarded_ids = {t.guards for t in a.tests}
    for t in a.tests:
        if not t.hidden and t.id not in guarded_ids:
            raise SourceError(f"{where}: the visible test {t.id} needs a hidden test that names it in 'guards' (its "
                              "points would otherwise rest on a check that runs in the student's kernel)")
    points = {**a.questions}
    for q, p in a.written.items():
        points[q] = points.get(q, 0) + p
    for cell in nb.cells:
        for q in POINTS.findall(cell.source):
            if q not in points:
                raise SourceError(f"{where}: {{{{points {q}}}}} names a question without tests or written answer")
    return a


def assignments() -> dict[str, Assignment]:
    """Every source, by assignment id."""
    out = {}
    for path in sorted(SOURCE.glob("*.ipynb")):
        a = load_source(path)
        if a.id in out:
            raise SourceError(f"{path.name}: assignment id {a.id!r} is also used by {out[a.id].path.name}")
        out[a.id] = a
    return out


def render_points(a: Assignment, text: str) -> str:
    """``{{points q1}}`` -> "2 points": the question's points from its tests and written answers."""
    points = {**a.questions}
    for q, p in a.written.items():
        points[q] = points.get(q, 0) + p
    return POINTS.sub(lambda m: _points_text(points[m.group(1)]), text)


def strip_markers(text: str) -> str:
    """The instructor's text of a cell: the solution markers' lines removed."""
    return "\n".join(line for line in text.split("\n") if not MARKER_LINE.match(line))


def recorded_part(source: str) -> str:
    """A hidden test as a submission's run gets it: its code up to the last top-level statement that records a
    value. What follows (checks against references computed in the kernel, R's values) runs in the reference run
    only, where it checks the instructor's solution: in a submission's run the verdict comes from the recorded
    values compared with the reference run's, outside the kernel, so no reference value is computed in the kernel
    after the records for the notebook's code to copy."""
    import ast
    body = ast.parse(source).body
    records = [s for s in body if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "record"
                                      for n in ast.walk(s))]
    if not records:
        return source
    return "".join(source.splitlines(True)[:records[-1].end_lineno])


def reference_cells(a: Assignment, test: Test) -> list[tuple[str, bool]]:
    """The instructor's code a test runs with, as (code, substitute) pairs: the answer cells in ``test.reference``
    (substitute: their names replace the student's while the test runs) and, before them, the source's code cells
    above the last of them that are neither answers nor tests (the imports and data they need)."""
    if not test.reference:
        return []
    ids = [cell_meta(c)["id"] for c in a.notebook.cells]
    last = max(ids.index(r) for r in test.reference)
    out = []
    for cell in a.notebook.cells[:last + 1]:
        m = cell_meta(cell)
        if cell.cell_type != "code" or m.get("kind") in TEST_KINDS:
            continue
        answer = bool(CODE_SOLUTION.search(cell.source))
        if m["id"] in test.reference or not answer:
            out.append((strip_markers(cell.source), m["id"] in test.reference))
    return out


def handed_out(a: Assignment, cell, student: bool) -> str:
    """A source cell's text in the student's or the instructor's version: solutions replaced by the placeholders
    (student), points filled in (markdown), the solution markers' lines removed."""
    text = cell.source
    if cell.cell_type == "code":
        text = CODE_SOLUTION.sub(lambda m: m.group(1) + STUDENT_CODE, text) if student else text
    else:
        text = render_points(a, TEXT_SOLUTION.sub(STUDENT_TEXT, text) if student else text)
    return strip_markers(text)


def _version(a: Assignment, student: bool) -> nbformat.NotebookNode:
    out = copy.deepcopy(a.notebook)
    if student:
        out.cells = [c for c in out.cells if cell_meta(c).get("kind") != "hidden-test"]
    for cell in out.cells:
        cell["id"] = cell_meta(cell)["id"]
        if cell.cell_type == "code":
            cell.update(outputs=[], execution_count=None)
        cell.source = handed_out(a, cell, student)
    return out


def instructor_version(a: Assignment) -> nbformat.NotebookNode:
    return _version(a, student=False)


def student_version(a: Assignment) -> nbformat.NotebookNode:
    return _version(a, student=True)


def make_all() -> list[Path]:
    written = []
    for a in assignments().values():
        for kind, version in (("instructor", instructor_version(a)), ("student", student_version(a))):
            dest = BUILD / kind / a.path.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(version, dest)
            written.append(dest)
    return written


def stamp_ids(path: Path) -> int:
    """Give every cell of a source that has no metadata id one (kept from then on); returns how many."""
    nb = nbformat.read(path, as_version=4)
    added = 0
    for cell in nb.cells:
        meta = cell.metadata.setdefault(KEY, {})
        if not meta.get("id"):
            meta["id"] = f"{cell.cell_type[:2]}-{secrets.token_hex(4)}"
            added += 1
        cell["id"] = meta["id"]
    nbformat.write(nb, path)
    return added


TEXT_HEADER = re.compile(r"^# %%( \[markdown\])?(?: (\{.*\}))?\s*$")


def to_text(path: Path) -> str:
    """A source as text: each cell starts with '# %%' (code) or '# %% [markdown]' and its metadata as JSON."""
    nb = nbformat.read(path, as_version=4)
    out = [f"# assignment {json.dumps(nb.metadata.get(KEY, {}))}", ""]
    for cell in nb.cells:
        head = "# %% [markdown]" if cell.cell_type == "markdown" else "# %%"
        out.append(f"{head} {json.dumps(cell_meta(cell))}")
        if cell.cell_type == "markdown":
            out += [("# " + line) if line else "#" for line in cell.source.split("\n")]
        else:
            out.append(cell.source)
        out.append("")
    return "\n".join(out)


def from_text(text: str) -> nbformat.NotebookNode:
    """The inverse of :func:`to_text`."""
    cells, current, assignment_meta = [], None, {}
    for line in text.split("\n"):
        m = TEXT_HEADER.match(line)
        if current is None and line.startswith("# assignment {"):
            assignment_meta = json.loads(line[len("# assignment "):])
        elif m:
            current = (bool(m.group(1)), json.loads(m.group(2) or "{}"), [])
            cells.append(current)
        elif current is not None:
            current[2].append(line)
    nb = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}, KEY: assignment_meta})
    for markdown, meta, lines in cells:
        body = "\n".join(lines).strip("\n")
        if markdown:
            body = "\n".join(l[2:] if l.startswith("# ") else l[1:] if l.startswith("#") else l
                             for l in body.split("\n"))
        cell = nbformat.v4.new_markdown_cell(body) if markdown else nbformat.v4.new_code_cell(body)
        cell.metadata[KEY] = meta
        if meta.get("id"):
            cell["id"] = meta["id"]
        nb.cells.append(cell)
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    g = sub.add_parser("grade", help="grade submissions")
    g.add_argument("files", nargs="+", type=Path)
    g.add_argument("--csv", type=Path, help="write one row per file: file, assignment, score, total, questions")
    g.add_argument("--timeout", type=float, default=300, help="seconds one cell may run (default 300)")
    g.add_argument("--timeout-file", type=float, default=900,
                   help="seconds one notebook may run, all cells together (default 900)")
    g.add_argument("--jobs", type=int, default=None, help="submissions run at once (default: the CPU count)")
    g.add_argument("--recompute-reference", action="store_true",
                   help="run the instructor versions afresh instead of taking their values from build/reference/")
    g.add_argument("--unsafe-same-user", action="store_true",
                   help="where the kernels cannot be sandboxed (see the README), run them as your own user with only "
                        "the in-process checks (static check, kit, audit hook): a first layer, which plain Python "
                        "has got past before; a submission that gets past them can read the solutions, the "
                        "reference values and other students' reports, and write outside its run folder")
    g.add_argument("--out", type=Path, default=BUILD / "graded",
                   help="folder for the per-file reports, graded notebooks and written answers")
    i = sub.add_parser("ids", help="give cells of source notebooks stable ids")
    i.add_argument("sources", nargs="+", type=Path)
    t = sub.add_parser("to-text", help="print a source notebook as text, for editing")
    t.add_argument("source", type=Path)
    n = sub.add_parser("to-ipynb", help="write a source notebook from its text")
    n.add_argument("text", type=Path)
    n.add_argument("source", type=Path)
    args = parser.parse_args(argv)
    if args.command == "grade":
        import grader
        return grader.cli(args)
    if args.command == "ids":
        for path in args.sources:
            print(f"{path}: {stamp_ids(path)} ids added")
        return 0
    if args.command == "to-text":
        sys.stdout.write(to_text(args.source))
        return 0
    if args.command == "to-ipynb":
        nbformat.write(from_text(args.text.read_text(encoding="utf-8")), args.source)
        return 0
    for p in make_all():
        print(p.relative_to(HERE.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
