"""The assignments generate from one source each, and their autograder tests grade as they should:
every test passes on the instructor version, and fails on the student version where the work is missing."""
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "assignments"))
import make  # noqa: E402  (assignments/make.py)

SOURCES = sorted((ROOT / "assignments" / "source").glob("*.ipynb"))


def test_there_are_at_least_three_assignments():
    assert len(SOURCES) >= 3


@pytest.fixture(scope="module")
def versions():
    written = make.make_all()
    return {(p.parent.name, p.name): p for p in written}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_student_version_hides_solutions_and_hidden_tests(source, versions):
    student = nbformat.read(versions[("student", source.name)], as_version=4)
    text = "\n".join(c.source for c in student.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert not any("hidden-test" in c.metadata.get("tags", []) for c in student.cells)
    assert "your code here" in text
    instructor = nbformat.read(versions[("instructor", source.name)], as_version=4)
    assert "BEGIN SOLUTION" not in "\n".join(c.source for c in instructor.cells)
    assert not any(c.get("outputs") for c in student.cells + instructor.cells if c.cell_type == "code")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_instructor_version_passes_every_test(source, versions):
    result = make.grade(versions[("instructor", source.name)])
    assert result["total"] >= 3
    assert result["score"] == result["total"], result["tests"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_student_version_fails_where_work_is_missing(source, versions):
    result = make.grade(versions[("student", source.name)])
    assert result["total"] >= 3  # the instructor's hidden tests are graded too
    assert result["score"] == 0, [t for t in result["tests"] if t[1]]
