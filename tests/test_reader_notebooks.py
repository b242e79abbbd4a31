"""The reader's copy of each chapter: the notebook a page's download button gives and a launch button opens.

- Every notebook page's download link gives a notebook that has outputs, none of the MyST syntax a plain Jupyter
  cannot render, and the page's numbers, equation numbers, figures and exercise numbers (read from the page).
- Two chapters run top to bottom in a new virtual environment outside the repository, after only the documented
  install (``pip install "<checkout>[book]"``, plus ipykernel, which any Jupyter front end brings), and re-create
  the numbers the text quotes.
- A small book built with a repository has Binder and Colab buttons pointing at it, one built without has none,
  and the real build's buttons agree with the checkout's remote; the remote -> https address is unit-tested.

The page checks read ``_build/html`` (``scripts/run-tests`` builds it first). The virtual-environment test needs the
package index (CI has it); without one it is skipped, saying so.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html"))
EXECUTED = SITE.parent / "jupyter_execute"
sys.path.insert(0, str(ROOT / "_ext"))
from bookext import launch, reader  # noqa: E402

built = pytest.mark.skipif(not (SITE / "index.html").exists(),
                           reason="the book is not built: run `bash scripts/build-book` (scripts/run-tests does it first)")

MYST_ONLY = re.compile(r"\{[\w:+-]+\}`"                       # roles: {glue:text}`..`, {eq}`..`, {cite:t}`..`
                       r"|^[ ]{0,3}(?::{3,}|`{3,})\{"          # directives: :::{exercise}, ```{note}
                       r"|^\s*\([^()\s]+\)=\s*$"               # targets: (label)=
                       r"|\$\$[ \t]*\([^()\s]+\)"              # labelled equations: $$ (eq-label)
                       r"|^\s*:(?:label|name|class|alt):", re.M)


class _Page(HTMLParser):
    """The links of a page (with their classes), and the texts of the spans of the classes asked for."""

    def __init__(self, span_classes=("pasted-text", "eqno", "caption-number")):
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.spans = {c: [] for c in span_classes}
        self._open: list[tuple[str | None, list[str]]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append((a["href"], a.get("class") or ""))
        if tag == "span":
            self._open.append((next((c for c in (a.get("class") or "").split() if c in self.spans), None), []))

    def handle_endtag(self, tag):
        if tag == "span" and self._open:
            cls, texts = self._open.pop()
            if cls:
                self.spans[cls].append("".join(texts).strip())

    def handle_data(self, data):
        for _, texts in self._open:      # a span's text includes what its inner elements hold
            texts.append(data)


def _page(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _chapter_pages() -> list[Path]:
    return sorted(p for p in (SITE / "chapters").glob("*.html") if (ROOT / "chapters" / f"{p.stem}.ipynb").exists())


def _downloaded(page_path: Path) -> nbformat.NotebookNode:
    links = [href for href, cls in _page(page_path).links if "btn-download-notebook-button" in cls]
    assert len(links) == 1, f"{page_path.name}: expected one notebook download link, found {links}"
    target = (page_path.parent / links[0]).resolve()
    assert target.is_relative_to(SITE.resolve()) and target.exists(), f"{page_path.name}: {links[0]} is not in the site"
    nb = nbformat.read(target, as_version=4)
    nbformat.validate(nb)
    return nb


def _markdown(nb) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


# ---------------------------------------------------------------------------------------------- the copies

@built
def test_every_chapter_downloads_a_notebook_that_reads_like_its_page():
    pages = _chapter_pages()
    assert len(pages) >= 10, pages
    problems = []
    for page_path in pages:
        nb, page = _downloaded(page_path), _page(page_path)
        text = _markdown(nb)
        name = page_path.stem
        leftovers = sorted({m.group(0) for m in MYST_ONLY.finditer(text)})
        if leftovers:
            problems.append(f"{name}: MyST left in the text: {leftovers[:5]}")
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        if not outputs:
            problems.append(f"{name}: no outputs")
        if any(o.output_type == "error" for o in outputs):
            problems.append(f"{name}: an error output")
        # every number the page pastes in, every equation number, figure and exercise number is in the notebook
        for value in page.spans["pasted-text"]:
            if value not in text:
                problems.append(f"{name}: the page's number {value!r} is not in the notebook's text")
        for eqno in page.spans["eqno"]:
            number = re.match(r"\(([\d.]+)\)", eqno)[1]
            if f"\\tag{{{number}}}" not in text:
                problems.append(f"{name}: equation ({number}) has no \\tag in the notebook")
        for caption in page.spans["caption-number"]:
            if f"**{caption}" not in text:
                problems.append(f"{name}: {caption!r} is not in the notebook")
        # each glued figure is a cell showing it, with an image or a table among its outputs
        source = nbformat.read(ROOT / "chapters" / f"{name}.ipynb", as_version=4)
        figures = sum(c.source.count("{glue:figure}") for c in source.cells if c.cell_type == "markdown")
        shown = [c for c in nb.cells if c.cell_type == "code" and "show(" in c.source
                 and any({"image/png", "text/html"} & set(o.get("data", {})) for o in c.outputs)]
        if len(shown) != figures:
            problems.append(f"{name}: {figures} glued figures on the page, {len(shown)} shown in the notebook")
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        if re.search(r"^\s*(from myst_nb import|import myst_nb)", code, re.M):
            problems.append(f"{name}: the notebook still imports myst_nb")
        if "[book]" not in "\n".join(c.source for c in nb.cells[:3]):     # the install line or instructions
            problems.append(f"{name}: no install instructions at the top")
    assert not problems, "\n".join(problems)


@built
def test_hidden_cells_are_kept_folded_and_solutions_are_drop_downs():
    nb = _downloaded(_chapter_pages()[0])
    hidden = [c for c in nb.cells if "remove-cell" in c.metadata.get("tags", [])]
    assert hidden and all(c.metadata["jupyter"] == {"source_hidden": True, "outputs_hidden": True} for c in hidden)
    assert all(c.metadata.get("cellView") == "form" and c.source.startswith("#@title") for c in hidden)
    assert "<details>" in _markdown(nb) and "<summary>Solution to Exercise" in _markdown(nb)


@built
def test_markdown_pages_keep_their_source_download():
    page = SITE / "chapters" / "conventions.html"
    links = [href for href, cls in _page(page).links if "btn-download" in cls]
    assert links == ["../_sources/chapters/conventions.md"], links


@built
def test_launch_buttons_of_the_real_build_follow_the_checkout_remote():
    repo = launch.repository(ROOT)
    links = [href for href, _ in _page(SITE / "chapters" / "01_clrm.html").links
             if href.startswith((launch.BINDER, launch.COLAB))]
    if repo is None:
        assert links == [], "no repository, yet launch buttons: " + ", ".join(links)
    else:
        assert repo.binder_url("notebooks/chapters/01_clrm.ipynb") in links, links
        assert (repo.colab_url("notebooks/chapters/01_clrm.ipynb") in links) == repo.on_github, links


# ---------------------------------------------------------------------------------------------- a fresh environment

def _fresh_environment(tmp: Path) -> Path:
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              f"{ROOT}[book]", "ipykernel"], capture_output=True, text=True, cwd=tmp)
    if install.returncode != 0:
        probe = subprocess.run([str(python), "-m", "pip", "download", "--no-deps", "-d", str(tmp / "probe"),
                                "sympy"], capture_output=True, text=True, cwd=tmp)
        if probe.returncode != 0:
            pytest.skip("cannot reach the package index (pip could not download sympy), so the documented install "
                        "cannot be tried: " + probe.stderr.strip().splitlines()[-1])
        pytest.fail("pip install \"<checkout>[book]\" failed:\n" + install.stdout + install.stderr)
    subprocess.run([str(python), "-m", "ipykernel", "install", "--prefix", str(tmp / "jupyter"), "--name",
                    "hlmlib-reader"], check=True, capture_output=True)
    return venv


def _numbers_glued(docname: str) -> dict[str, float]:
    glue = json.loads((EXECUTED / f"{docname}.glue.json").read_text(encoding="utf-8"))
    numbers = {}
    for key, output in glue.items():
        try:
            value = ast.literal_eval("".join(output["data"].get("text/plain", "")))
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            numbers[key] = value
    return numbers


@built
@pytest.mark.network
@pytest.mark.timeout(1200)
def test_two_chapters_run_in_a_fresh_environment_after_the_documented_install(tmp_path, monkeypatch):
    import numpy as np
    from nbclient import NotebookClient

    wanted = [p for p in _chapter_pages() if p.stem in {"04_hlm", "10_petersen"}] or _chapter_pages()[1:3]
    venv = _fresh_environment(tmp_path)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter" / "share" / "jupyter"))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    workdir = tmp_path / "reader"                       # outside the repository: hlmlib comes from the venv
    workdir.mkdir()
    for page_path in wanted:
        docname = f"chapters/{page_path.stem}"
        nb = _downloaded(page_path)
        expected = _numbers_glued(docname)
        nb.cells.append(nbformat.v4.new_code_cell(
            "import json, sys, hlmlib, hlmlib.book\n"
            f"print(json.dumps({{'prefix': sys.prefix, 'hlmlib': hlmlib.__file__, 'glued': "
            f"{{k: hlmlib.book.glued(k) for k in {sorted(expected)!r}}}}}))"))
        NotebookClient(nb, kernel_name="hlmlib-reader", timeout=600,
                       resources={"metadata": {"path": str(workdir)}}).execute()
        report = json.loads(nb.cells[-1].outputs[-1]["text"])
        assert Path(report["prefix"]).resolve() == venv.resolve(), report["prefix"]
        assert not Path(report["hlmlib"]).resolve().is_relative_to(ROOT), report["hlmlib"]
        # re-run with whatever versions pip chose, the chapter gives back the numbers its text quotes
        for key, value in expected.items():
            assert np.isclose(report["glued"][key], value, rtol=1e-6, atol=1e-9), (docname, key, report["glued"][key], value)
        shown = [c for c in nb.cells if c.cell_type == "code" and "show(" in c.source]
        assert shown and all(any("image/png" in o.get("data", {}) or "text/html" in o.get("data", {})
                                 for o in c.outputs) for c in shown), docname


# ---------------------------------------------------------------------------------------------- launch buttons

def _small_book(tmp: Path) -> Path:
    book = tmp / "book"
    (book / "chapters").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", book)
    shutil.copy(ROOT / "references.bib", book)
    shutil.copytree(ROOT / "assets", book / "assets")
    shutil.copytree(ROOT / "_ext", book / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "chapters" / "bibliography.md", book / "chapters")
    (book / "_toc.yml").write_text("format: jb-book\nroot: chapters/tiny\nchapters:\n  - file: chapters/bibliography\n")
    cite = next(iter(_bib_keys()))
    cells = [
        nbformat.v4.new_markdown_cell("(tiny-top)=\n# A tiny chapter\n\nIt cites {cite:t}`" + cite + "`."),
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nfrom myst_nb import glue"),
        nbformat.v4.new_code_cell('glue("tiny-x", 3.14159, display=False)\nfig, ax = plt.subplots()\n'
                                  'ax.plot([0, 1], [0, 1])\nglue("tiny-fig", fig, display=False)\nplt.close(fig)',
                                  metadata={"tags": ["remove-cell"]}),
        nbformat.v4.new_markdown_cell(
            "$$\nx = 1\n$$ (eq-tiny)\n\nBy {eq}`eq-tiny`, x is {glue:text}`tiny-x:.2f`.\n\n"
            ":::{glue:figure} tiny-fig\n:name: fig-tiny\n:alt: A straight line.\n\nA line.\n:::\n\n"
            ":::{exercise}\n:label: ex-tiny\n\nLook at {numref}`fig-tiny`.\n:::\n\n"
            ":::{solution} ex-tiny\n:class: dropdown\n\nIt is a line.\n:::\n"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}})
    nbformat.write(nb, book / "chapters" / "tiny.ipynb")
    return book


def _bib_keys():
    from pybtex.database import parse_file

    return parse_file(str(ROOT / "references.bib")).entries.keys()


def _build(book: Path, repository: str) -> Path:
    env = {**os.environ, launch.ENV_VAR: repository}
    done = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(book), "-W", "-n",
                           "--keep-going"], capture_output=True, text=True, env=env, cwd=book)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return book / "_build" / "html"


@pytest.mark.timeout(600)
def test_a_build_with_a_repository_has_launch_buttons_to_it_and_one_without_has_none(tmp_path):
    with_repo = _build(_small_book(tmp_path / "a"), "git@github.com:example-org/example-book.git")
    links = [href for href, _ in _page(with_repo / "chapters" / "tiny.html").links]
    binder = ("https://mybinder.org/v2/gh/example-org/example-book/gh-pages?urlpath=lab%2Ftree%2Fnotebooks%2F"
              "chapters%2Ftiny.ipynb")
    colab = "https://colab.research.google.com/github/example-org/example-book/blob/gh-pages/notebooks/chapters/tiny.ipynb"
    assert binder in links and colab in links, links
    assert (with_repo / "binder" / "requirements.txt").read_text().startswith(
        "hlmlib[book] @ git+https://github.com/example-org/example-book")
    nb = nbformat.read(with_repo / "notebooks" / "chapters" / "tiny.ipynb", as_version=4)
    text = _markdown(nb)
    assert 'git+https://github.com/example-org/example-book' in nb.cells[1].source
    assert "x is 3.14" in text and "\\tag{1}" in text and "By (1)" in text, text
    assert "**Fig. 1.**" in text and "Look at Fig. 1." in text and "<summary>Solution to Exercise 1</summary>" in text
    assert "White (1980)" in text and "## References" in text, text
    assert not MYST_ONLY.search(text), text

    without = _build(_small_book(tmp_path / "b"), "")
    links = [href for href, _ in _page(without / "chapters" / "tiny.html").links]
    assert not [h for h in links if h.startswith((launch.BINDER, launch.COLAB))], links
    assert not (without / "binder").exists()
    nb = nbformat.read(without / "notebooks" / "chapters" / "tiny.ipynb", as_version=4)
    assert nb.cells[1].cell_type == "markdown" and 'pip install ".[book]"' in nb.cells[1].source


# ---------------------------------------------------------------------------------------------- units

@pytest.mark.parametrize("remote, url", [
    ("git@github.com:org/repo.git", "https://github.com/org/repo"),
    ("ssh://git@github.com/org/repo.git", "https://github.com/org/repo"),
    ("ssh://git@gitlab.example.org:2222/group/sub/repo.git", "https://gitlab.example.org/group/sub/repo"),
    ("https://user:secret-token@github.com/org/repo.git", "https://github.com/org/repo"),
    ("git://github.com/org/repo", "https://github.com/org/repo"),
    ("https://git.example.org:8443/org/repo/", "https://git.example.org:8443/org/repo"),
    ("/work/main", None), ("../main", None), ("file:///work/main", None), ("", None), (None, None),
    ("https://github.com/org", None),
])
def test_remote_to_https(remote, url):
    assert launch.https_url(remote) == url


def test_launch_urls_by_host():
    gh = launch.Repository("https://github.com/org/repo", commit="abc123")
    assert gh.pip_requirement() == "hlmlib[book] @ git+https://github.com/org/repo@abc123"
    assert gh.site_url() == "https://org.github.io/repo/"
    assert launch.Repository("https://github.com/org/org.github.io").site_url() == "https://org.github.io/"
    assert gh.colab_url("notebooks/a.ipynb") == f"{launch.COLAB}/github/org/repo/blob/gh-pages/notebooks/a.ipynb"
    gl = launch.Repository("https://gitlab.com/group/repo")
    assert gl.binder_url("a.ipynb").startswith(f"{launch.BINDER}/v2/gl/group%2Frepo/gh-pages?")
    assert gl.colab_url("a.ipynb") is None and gl.site_url() is None and gl.pip_requirement().endswith("/repo")
    other = launch.Repository("https://git.example.org/org/repo")
    assert other.binder_url("a.ipynb").startswith(f"{launch.BINDER}/v2/git/https%3A%2F%2Fgit.example.org%2Forg%2Frepo/")


def test_repository_comes_from_the_variable_the_setting_or_the_git_remote(tmp_path, monkeypatch):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.delenv(launch.ENV_VAR, raising=False)
    assert launch.repository(tmp_path) is None                                  # no remote: no repository
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", "git@github.com:org/repo.git"], check=True)
    assert launch.repository(tmp_path).url == "https://github.com/org/repo"
    assert launch.repository(tmp_path, "https://gitlab.com/g/r").url == "https://gitlab.com/g/r"   # the setting wins
    monkeypatch.setenv(launch.ENV_VAR, "https://github.com/other/book")
    assert launch.repository(tmp_path).url == "https://github.com/other/book"
    monkeypatch.setenv(launch.ENV_VAR, "")
    assert launch.repository(tmp_path) is None                                  # set but empty: none


def _converted(text: str, book: reader.Book | None = None, docname: str = "chapters/x") -> list:
    ctx = reader._Context(book or reader.Book(), docname)
    return reader.convert_markdown(text, ctx), ctx


def test_markdown_conversion_pairs_dollar_blocks_and_leaves_code_alone():
    book = reader.Book()
    book.equations["eq-b"] = ("chapters/x", "2.1")
    book.numbers["ex-1"] = ("chapters/x", "Exercise", "2.3")
    book.secnumbers["chapters/x"] = {"": "2", "the-part-with-mathbf-b": "2.1"}
    text = ("# Title\n\n## The part with $\\mathbf{b}$\n\n$$\na\n$$\n\ntext\n\n$$\nb\n$$ (eq-b)\n\n"
            "```python\nprint('{eq}`eq-b`')\n```\n\n"
            "::::{exercise}\n:label: ex-1\n\nSee {eq}`eq-b`.\n\n:::{note}\nInner.\n:::\n::::\n\n"
            ":::{solution-start} ex-1\n:::\n\nSolved.\n\n:::{solution-end}\n:::\n\n(target)=\nEnd.")
    pieces, ctx = _converted(text, book)
    out = "\n".join(pieces)
    assert out.startswith("# 2. Title\n\n## 2.1. The part with $\\mathbf{b}$")
    assert "$$\na\n$$" in out and "$$\nb\n\\tag{2.1}\n$$" in out               # the unlabelled block untouched
    assert "print('{eq}`eq-b`')" in out                                          # code is verbatim
    assert "**Exercise 2.3.**\n\nSee (2.1).\n\n**Note.**\n\nInner." in out
    assert "**Solution to Exercise 2.3**" in out and "(target)=" not in out and "End." in out
    assert not ctx.warnings


def test_a_numbered_table_keeps_its_caption_and_number():
    book = reader.Book()
    book.numbers["tbl-a"] = ("chapters/x", "Table", "7.1")
    pieces, ctx = _converted(":::{table} The estimators.\n:name: tbl-a\n\n| a | b |\n|---|---|\n| 1 | 2 |\n:::\n\n"
                             "See {numref}`tbl-a`.", book)
    out = "\n".join(pieces)
    assert "**Table 7.1.** The estimators.\n\n| a | b |" in out and "See Table 7.1." in out
    assert not ctx.warnings


def test_unknown_syntax_is_reported_and_missing_references_fail():
    pieces, ctx = _converted(":::{margin}\nA side note.\n:::\n\nA {kbd}`Ctrl` key.")
    assert "A side note." in pieces[0] and "A Ctrl key." in pieces[0]
    assert len(ctx.warnings) == 2
    with pytest.raises(reader.ReaderCopyError, match="eq-missing"):
        _converted("See {eq}`eq-missing`.")
    with pytest.raises(reader.ReaderCopyError, match="no value glued"):
        _converted("{glue:text}`nothing:.2f`")


def test_citations_read_author_year():
    from pybtex.database import parse_string

    bib = parse_string("""@article{a, author={Cameron, A. Colin and Gelbach, Jonah B. and Miller, Douglas L.},
        title={T}, journal={J}, year={2008}}
        @article{b, author={Pinheiro, Jos{\\'e} C. and Bates, Douglas M.}, title={T}, journal={J}, year={2000}}""",
                       "bibtex")
    book = reader.Book()
    book.bib.update(bib.entries)
    pieces, ctx = _converted("{cite:t}`a` and {cite:p}`a,b`.", book)
    assert pieces == ["Cameron et al. (2008) and (Cameron et al., 2008; Pinheiro and Bates, 2000)."]
    assert ctx.cited == ["a", "b"]
    assert reader.references_markdown(ctx.cited, book).count("\n- ") == 2


# ---------------------------------------------------------------------------------------------- hlmlib.book

def test_glue_stand_in_keeps_values_for_show(capsys):
    import numpy as np

    from hlmlib import book

    book.glue("test-reader-x", np.float64(2.5), display=False)
    assert book.glued("test-reader-x") == 2.5 and type(book.glued("test-reader-x")) is float
    with pytest.raises(KeyError, match="test-reader-missing.*test-reader-x"):
        book.show("test-reader-missing")
    with pytest.raises(TypeError):
        book.glue("", 1)
