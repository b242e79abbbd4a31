"""Generate the student and instructor versions of every assignment from its one source, and grade submissions.

    python assignments/make.py                          # writes assignments/build/{student,instructor}/*.ipynb
    python assignments/make.py grade SUBMISSION.ipynb   # executes a notebook and scores its test cells

A source notebook (assignments/source/*.ipynb) marks

- solution code between lines ``# BEGIN SOLUTION`` and ``# END SOLUTION`` in a code cell: the student version
  replaces it by ``raise NotImplementedError("your code here")``;
- a written answer between ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->`` in a markdown cell: the
  student version replaces it by a prompt to answer;
- test cells with the tag ``test`` (visible to students, one point each) and ``hidden-test`` (instructor version
  only, run when grading).

Grading runs every cell in order in a fresh kernel, keeps going past errors (as nbgrader's autograder does), and
counts the test cells that ran without error. It grades against the instructor version's hidden tests when the
submission lacks them, so students cannot delete a test to pass it.
"""
from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
SOURCE, BUILD = HERE / "source", HERE / "build"
CODE_SOLUTION = re.compile(r"^[ \t]*# BEGIN SOLUTION.*?^[ \t]*# END SOLUTION[^\n]*\n?", re.S | re.M)
TEXT_SOLUTION = re.compile(r"<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->", re.S)
STUDENT_CODE = 'raise NotImplementedError("your code here")\n'
STUDENT_TEXT = "*Write your answer here.*"


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _strip_markers(text: str) -> str:
    return "\n".join(l for l in text.split("\n") if not re.match(r"\s*(# (BEGIN|END) SOLUTION|<!-- (BEGIN|END) SOLUTION -->)\s*$", l))


def instructor_version(nb):
    out = copy.deepcopy(nb)
    for cell in out.cells:
        cell.source = _strip_markers(cell.source)
        if cell.cell_type == "code":
            cell.update(outputs=[], execution_count=None)
    return out


def student_version(nb):
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if "hidden-test" not in _tags(c)]
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.source = CODE_SOLUTION.sub(lambda m: re.match(r"[ \t]*", m.group(0)).group(0) + STUDENT_CODE, cell.source)
            cell.update(outputs=[], execution_count=None)
        else:
            cell.source = TEXT_SOLUTION.sub(STUDENT_TEXT, cell.source)
    return out


def make_all() -> list[Path]:
    written = []
    for src in sorted(SOURCE.glob("*.ipynb")):
        nb = nbformat.read(src, as_version=4)
        for kind, version in (("instructor", instructor_version(nb)), ("student", student_version(nb))):
            dest = BUILD / kind / src.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(version, dest)
            written.append(dest)
    return written


def grade(path: Path, timeout: int = 600) -> dict:
    """Execute ``path`` and score its test cells: {'score', 'total', 'tests': [(label, passed, error)]}."""
    nb = nbformat.read(path, as_version=4)
    reference = SOURCE / path.name
    if reference.exists():  # grade with the instructor's hidden tests, in place, after the cell they follow
        hidden = [(i, c) for i, c in enumerate(nbformat.read(reference, as_version=4).cells) if "hidden-test" in _tags(c)]
        present = {c.source for c in nb.cells}
        for i, cell in hidden:
            if cell.source not in present:
                nb.cells.insert(min(i, len(nb.cells)), copy.deepcopy(cell))
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    tests = []
    for cell in nb.cells:
        if cell.cell_type == "code" and {"test", "hidden-test"} & set(_tags(cell)):
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            label = cell.source.strip().split("\n")[0][:70]
            tests.append((label, not errors, f"{errors[0]['ename']}: {errors[0]['evalue']}" if errors else ""))
    return {"score": sum(p for _, p, _ in tests), "total": len(tests), "tests": tests}


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "grade":
        result = grade(Path(sys.argv[2]).resolve())
        for label, passed, err in result["tests"]:
            print(("PASS " if passed else "FAIL ") + label + (f"  [{err}]" if err else ""))
        print(f"score: {result['score']} / {result['total']}")
    else:
        for p in make_all():
            print(p.relative_to(HERE.parent))
