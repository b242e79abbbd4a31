"""The book's standards, checked on the chapter notebooks' source (nbval and the book build execute them):
stored without outputs, listed in the table of contents, seeded random numbers only, every glued key defined,
derivations checked by hidden assert cells, at least three exercises with hidden solutions, figures with alt
text and captions, unique labels across the book, links to headings with math that name their text, no control characters in any cell or docstring, no line inside
inline math that Markdown would read as a list item, and (in the chapters listed in POSITION_FREE) cross-references
by label rather than by position."""
import ast
import re
from collections import Counter
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
ALL_NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
ASSIGNMENT_SOURCES = sorted((ROOT / "assignments" / "source").glob("*.ipynb"))


def _cells(path):
    return nbformat.read(path, as_version=4).cells


def _markdown(path):
    return "\n".join(c.source for c in _cells(path) if c.cell_type == "markdown")


def _code(path):
    return "\n".join(c.source for c in _cells(path) if c.cell_type == "code")


def test_there_are_chapters():
    assert len(CHAPTERS) >= 10


def test_every_notebook_is_in_the_table_of_contents():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {toc["root"]}
    for part in toc.get("parts", []):
        files |= {entry["file"] for entry in part["chapters"]}
    missing = [p.name for p in ALL_NOTEBOOKS if f"chapters/{p.stem}" not in files]
    assert not missing, f"not in _toc.yml: {missing}"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    stored = [i for i, c in enumerate(_cells(path)) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not stored, f"cells {stored} have stored outputs: clear them (the build executes the notebook)"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_random_numbers_come_from_seeded_generators(path):
    code = _code(path)
    legacy = re.findall(r"np\.random\.(?!default_rng|Generator)[a-z_]+\(", code)
    assert not legacy, f"legacy global-state random calls {legacy}: use np.random.default_rng(seed)"
    unseeded = re.findall(r"default_rng\(\s*\)", code)
    assert not unseeded, "np.random.default_rng() without a seed: a rebuild would not give the same book"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_every_glued_key_is_defined(path):
    used = set(re.findall(r"\{glue(?::text|:figure|:math|:any)?\}`([^`:]+)", _markdown(path)))
    used |= set(re.findall(r":::\{glue:figure\}\s+(\S+)", _markdown(path)))
    code = _code(path)
    undefined = sorted(k for k in used if f'"{k}"' not in code and f"'{k}'" not in code
                       and not re.search(r"glue\(\s*f[\"']", code))
    assert not undefined, f"glued in the prose but never glued in code: {undefined}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_derivations_are_checked_by_hidden_assert_cells(path):
    hidden_checks = [c for c in _cells(path) if c.cell_type == "code"
                     and "remove-cell" in c.metadata.get("tags", []) and "assert" in c.source]
    assert hidden_checks, "no hidden (remove-cell) cell asserts anything: check each derivation numerically"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_at_least_three_exercises_with_hidden_solutions(path):
    text = _markdown(path)
    exercises = re.findall(r"\{exercise\}[^\n]*\n:label: (\S+)", text)
    solutions = re.findall(r"\{solution(?:-start)?\} (\S+)\n(?::[a-z-]+:[^\n]*\n)*?:class: dropdown", text)
    assert len(exercises) >= 3, f"{len(exercises)} exercises"
    assert set(exercises) <= set(solutions), f"exercises without a dropdown solution: {set(exercises) - set(solutions)}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_figures_have_alt_text_and_a_caption(path):
    text = _markdown(path)
    for block in re.findall(r":::\{glue:figure\}.*?\n:::", text, flags=re.S):
        assert ":alt:" in block, f"figure without alt text:\n{block[:200]}"
        body = [l for l in block.split("\n")[1:-1] if l.strip() and not l.startswith(":")]
        assert body, f"figure without a caption:\n{block[:200]}"


def test_labels_are_unique_across_the_book():
    labels = []
    for path in ALL_NOTEBOOKS + sorted((ROOT / "chapters").glob("*.md")):
        text = _markdown(path) if path.suffix == ".ipynb" else path.read_text()
        labels += re.findall(r"^:(?:label|name): (\S+)", text, flags=re.M)
        labels += re.findall(r"\$\$ \((eq-[^)]+)\)", text)
        labels += re.findall(r"^\((\S+)\)=", text, flags=re.M)
    duplicated = [k for k, n in Counter(labels).items() if n > 1]
    assert not duplicated, f"labels used twice: {duplicated}"


def test_links_to_headings_with_math_give_their_own_text():
    """A bare {ref} to a heading that contains $...$ shows the raw LaTeX as its link text: name the link."""
    texts = {path: (_markdown(path) if path.suffix == ".ipynb" else path.read_text())
             for path in ALL_NOTEBOOKS + sorted((ROOT / "chapters").glob("*.md"))}
    math_headings = {label for text in texts.values()
                     for label, heading in re.findall(r"^\((\S+)\)=\s*\n(#+ .*)$", text, flags=re.M)
                     if "$" in heading}
    bare = [f"{path.name}: {{ref}}`{label}`" for path, text in texts.items()
            for label in re.findall(r"\{ref\}`([^`<]+)`", text) if label in math_headings]
    assert not bare, f"links whose text would be raw LaTeX: {bare}"


def test_links_to_labels_without_a_title_give_their_own_text():
    """A bare {ref} to a label on a paragraph (not a heading, figure or table) has no title to show: Sphinx warns,
    and the build (warnings as errors) fails. Such links must name their text."""
    texts = {path: (_markdown(path) if path.suffix == ".ipynb" else path.read_text())
             for path in ALL_NOTEBOOKS + sorted((ROOT / "chapters").glob("*.md"))}
    untitled = {label for text in texts.values()
                for label, following in re.findall(r"^\((\S+)\)=\s*\n(.*)$", text, flags=re.M)
                if not following.startswith(("#", ":::", "```"))}
    bare = [f"{path.name}: {{ref}}`{label}`" for path, text in texts.items()
            for label in re.findall(r"\{ref\}`([^`<]+)`", text) if label in untitled]
    assert not bare, f"links to untitled labels without their own text: {bare}"


def _control_characters(text):
    """(position, repr) of every ASCII control character other than the newline, and DEL: a TAB typed where
    ``\\t`` was meant (``$\\text{...}$`` written in a non-raw string) renders as a blank in the book."""
    return [(i, repr(ch)) for i, ch in enumerate(text) if (ord(ch) < 32 and ch != "\n") or ord(ch) == 127]


@pytest.mark.parametrize("path", ALL_NOTEBOOKS + ASSIGNMENT_SOURCES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_control_characters_in_cell_sources(path):
    found = {i: _control_characters(c.source)[:3] for i, c in enumerate(_cells(path)) if _control_characters(c.source)}
    assert not found, f"control characters (cell index: [(offset, char)]): {found}"


def test_no_control_characters_in_hlmlib_docstrings():
    """The docstrings are rendered into the book's API page, so they are held to the same rule."""
    found = []
    for path in sorted((ROOT / "hlmlib").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=False) or ""
                if _control_characters(doc):
                    found.append(f"{path.relative_to(ROOT)}:{getattr(node, 'name', '<module>')}")
    assert not found, f"docstrings with control characters: {found}"


# Every chapter refers to others by label ({ref}, {numref}, {eq}, {doc}), never by position.
POSITION_FREE = sorted(p.stem for p in (ROOT / "chapters").glob("*.ipynb"))
POSITIONAL = re.compile(r"\b(?:the|this|that)\s+(?:next|previous|preceding|following|last|coming)\s+"
                        r"(?:two\s+|three\s+)?(?:chapters?|parts?|sections?)\b|\b(?:earlier|later)\s+chapters?\b",
                        flags=re.I)


@pytest.mark.parametrize("stem", POSITION_FREE)
def test_chapters_refer_to_each_other_by_label_not_position(stem):
    text = re.sub(r"\s+", " ", _markdown(ROOT / "chapters" / f"{stem}.ipynb"))
    found = sorted({m.group(0) for m in POSITIONAL.finditer(text)})
    assert not found, f"positional references {found}: link with {{ref}}/{{numref}}/{{eq}}/{{doc}} instead"


# Markdown reads a line that starts with "+ ", "- ", "* " or "1. " as a list item (and "# " as a heading, "> " as a
# quote) even in the middle of a paragraph: inside $...$ that ends the paragraph, and the page shows a raw "$", the
# formula's tail as a list item and stray emphasis. Display math ($$ at the start of a line) is a block of its own.
BLOCK_START = re.compile(r"[ \t]*(?:[-+*]|1[.)]|#{1,6}|>)(?:[ \t]|$)")
DISPLAY_MATH = re.compile(r"[ \t]{0,3}\$\$")
FENCE = re.compile(r"[ \t]*(?:```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", flags=re.S)


def _lines_breaking_inline_math(source):
    """(line number, line) of each line of a markdown source that starts inside inline math ($...$, or $$...$$
    within a paragraph) and would start a list, heading or quote, or is blank (which ends the paragraph)."""
    kept, in_fence, in_display = [], False, False
    for line in source.split("\n"):
        if FENCE.match(line):                       # fenced code: no math
            in_fence = not in_fence
            line = ""
        elif in_fence:
            line = ""
        elif in_display or DISPLAY_MATH.match(line):
            # the block closes on the line with its second $$ (the opening line may hold both)
            if line.count("$$") % 2:
                in_display = not in_display
            line = ""
        kept.append(line)
    text = CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), "\n".join(kept))   # code spans, roles
    text = text.replace("\\$", "  ")
    found, delimiter = [], None                     # "$" or "$$" while inside inline math
    for number, line in enumerate(text.split("\n"), start=1):
        if delimiter and (BLOCK_START.match(line) or not line.strip()):
            found.append((number, line))
        for token in re.findall(r"\$\$|\$", line):
            delimiter = token if delimiter is None else (None if token == delimiter else delimiter)
    return found


def test_the_inline_math_check_finds_a_broken_formula():
    broken = "A sum $a\n+ b$ and $$c\n- d$$ and $e\n\nf$."
    assert [n for n, _ in _lines_breaking_inline_math(broken)] == [2, 3, 4]
    fine = ("$$\na\n+ b\n$$ (eq-x)\n\n- a list item with $x$\n* and `$` in code, \\$5, $y +\nz$\n"
            "```python\n$a\n- b\n```\n:::{prf:proof}\n$u\n= v$\n:::")
    assert _lines_breaking_inline_math(fine) == []


@pytest.mark.parametrize("path", ALL_NOTEBOOKS + sorted((ROOT / "chapters").glob("*.md")), ids=lambda p: p.name)
def test_no_line_inside_inline_math_starts_a_list(path):
    sources = [c.source for c in _cells(path) if c.cell_type == "markdown"] if path.suffix == ".ipynb" \
        else [path.read_text()]
    found = {i: lines for i, lines in enumerate(map(_lines_breaking_inline_math, sources)) if lines}
    assert not found, ("a line inside $...$ starts with a list, heading or quote marker (or is blank), which ends the "
                       f"paragraph and breaks the formula; rewrap it (markdown cell: [(line, text)]): {found}")
