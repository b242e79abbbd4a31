"""The reader's copy of a chapter: the executed notebook, with its MyST turned into Markdown any Jupyter reads.

The book build (myst-nb) leaves each executed chapter in ``_build/jupyter_execute`` with its glued values beside it
(``<chapter>.glue.json``). From those and what Sphinx resolved (numbers of sections, equations, figures, theorems
and exercises; titles; the bibliography) this module writes a notebook that reads like the page in plain
JupyterLab, classic Jupyter or Colab:

- ``{glue:text}`` roles become their formatted values; ``{glue:figure}`` becomes a cell showing the glued figure
  (its stored output, and ``show(key)`` re-creates it when the notebook is run) with its numbered caption;
- ``{eq}``, ``{numref}``, ``{ref}``, ``{prf:ref}`` and ``{doc}`` become "(1.3)", "Fig. 1.1", "Theorem 1.2" or a
  title (a link to the book's web page when the reference is in another chapter and the site's address is known);
  numbered display equations carry ``\\tag{1.3}``; ``{cite:t}``/``{cite:p}`` become "Author (Year)" /
  "(Author, Year)" with a reference list at the end;
- theorems, proofs, exercises and admonitions become bold-titled paragraphs, drop-down solutions ``<details>``
  blocks, and ``(label)=`` targets disappear;
- cells hidden on the page stay (later cells use what they compute, and the checks still run), collapsed where
  the front end knows how (JupyterLab's ``source_hidden``, Colab's form view);
- ``from myst_nb import glue`` becomes ``from hlmlib.book import glue, show``, and a first cell installs hlmlib.
"""
from __future__ import annotations

import codecs
import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import latexcodec  # noqa: F401  (registers the "ulatex" codec used for author names)
import nbformat
from docutils.nodes import make_id

NOTEBOOK_DIR = "notebooks"           # reader's copies live at <site>/notebooks/<docname>.ipynb

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
_TARGET = re.compile(r"^\s*\([^()\s]+\)=\s*$")
_ROLE = re.compile(r"\{(?P<name>[\w:+-]+)\}`(?P<body>[^`]*)`")
_EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
_OPTION = re.compile(r"^\s*:(?P<key>[\w-]+):\s*(?P<value>.*)$")
_HEADING = re.compile(r"^(?P<hashes>#{1,6})[ \t]+(?P<title>.+?)[ \t]*#*[ \t]*$")
_MATH_LABEL = re.compile(r"^[ \t]*\((?P<label>[^()\s]+)\)")
# myst-nb imported for glue: "from myst_nb import glue [as g]" or "import myst_nb [as m]"
_MYST_NB_IMPORT = re.compile(r"^(?P<indent>[ \t]*)(?:from myst_nb import (?P<names>glue\b.*)|import myst_nb\b(?P<alias>.*))$",
                             re.M)

ADMONITIONS = {"note", "warning", "tip", "important", "caution", "attention", "danger", "error", "hint",
               "seealso"}
HIDDEN_TITLE = "#@title Hidden on the book's web page (later cells use what it computes; checks still run)\n"


@dataclass
class Display:
    """A glued object to show in a cell of its own, with its caption (Markdown) below it."""

    key: str
    caption: str = ""
    alt: str = ""


class Book:
    """What the build resolved, for the text of references: numbers, titles, glue values and the bibliography.

    Built from a Sphinx environment by :func:`from_sphinx`; tests may fill the dictionaries directly.
    """

    def __init__(self, site_url: str | None = None):
        self.site_url = site_url
        self.numbers: dict[str, tuple[str, str, str]] = {}      # label -> (docname, "Fig." / "Theorem", "1.2")
        self.equations: dict[str, tuple[str, str]] = {}         # label -> (docname, "1.3")
        self.sections: dict[str, tuple[str, str, str]] = {}     # label -> (docname, anchor, title)
        self.titles: dict[str, str] = {}                        # docname -> title
        self.secnumbers: dict[str, dict[str, str]] = {}         # docname -> {anchor id: "1.2"}
        self.glue: dict[str, dict] = {}                         # docname -> {key: output (mime bundle)}
        self.bib: dict = {}                                     # key -> pybtex Entry
        self.bib_style = "alpha"
        self.format_text: Callable[[str, str], str] = _format_plain_text

    # ------------------------------------------------------------------------------------------ references
    def link(self, here: str, docname: str, anchor: str, text: str) -> str:
        """``text``, linked to the web page when it points into another chapter and the site is known."""
        if docname == here or not self.site_url:
            return text
        return f"[{text}]({self.site_url}{docname}.html{'#' + anchor if anchor else ''})"

    def glued(self, docname: str, key: str) -> dict:
        try:
            return self.glue[docname][key]
        except KeyError:
            raise ReaderCopyError(f"{docname}: no value glued under {key!r}") from None


class ReaderCopyError(Exception):
    """Something in a chapter the reader's copy cannot render: the build reports it as a warning."""


@dataclass
class _Context:
    book: Book
    docname: str
    cited: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- Markdown

def convert_markdown(text: str, ctx: _Context, top_level: bool = True) -> list:
    """MyST Markdown -> a list of Markdown strings and :class:`Display` items (those only at the top level)."""
    pieces: list = []
    plain: list[str] = []

    def flush():
        if plain:
            pieces.append(_inline("\n".join(plain), ctx, number_headings=top_level))
            plain.clear()

    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        directive = m and m["info"].strip().startswith("{")
        if m and (directive or m["fence"][0] != ":"):
            close = _closing_line(lines, i + 1, m["fence"])
            flush()
            if directive:
                name, _, argument = m["info"].strip()[1:].partition("}")
                pieces.extend(_directive(name.strip(), argument.strip(), lines[i + 1:close], ctx, top_level))
            else:
                pieces.append("\n".join(lines[i:close + 1]))        # a code block, verbatim
            i = close + 1
            continue
        if not _TARGET.match(lines[i]):
            plain.append(lines[i])
        i += 1
    flush()
    return _merge(pieces)


def _closing_line(lines: list[str], start: int, fence: str) -> int:
    closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
    return next((j for j in range(start, len(lines)) if closing.match(lines[j])), len(lines))


def _merge(pieces: list) -> list:
    merged: list = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1].rstrip("\n") + "\n\n" + piece.lstrip("\n")
        elif not (isinstance(piece, str) and not piece.strip()):
            merged.append(piece)
    return merged


def _markdown_only(pieces: list, ctx: _Context) -> str:
    """Pieces inside a directive: a glued figure there has no cell of its own, so it is embedded as an image."""
    out = []
    for piece in pieces:
        if isinstance(piece, Display):
            out.append(_embedded(ctx.book.glued(ctx.docname, piece.key), piece.alt))
            if piece.caption:
                out.append(piece.caption)
        else:
            out.append(piece)
    return "\n\n".join(p.strip("\n") for p in out if p.strip())


def _embedded(output: dict, alt: str) -> str:
    data = output.get("data", {})
    if "image/png" in data:
        alt = alt.replace('"', "&quot;")
        return f'<img src="data:image/png;base64,{"".join(data["image/png"]).strip()}" alt="{alt}">'
    if "text/html" in data:
        return "".join(data["text/html"])
    return "".join(data.get("text/plain", ""))


def _options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    options, i = {}, 0
    while i < len(body) and (m := _OPTION.match(body[i])):
        options[m["key"]] = m["value"].strip()
        i += 1
    return options, body[i:]


def _directive(name: str, argument: str, body: list[str], ctx: _Context, top_level: bool) -> list:
    options, content = _options(body)
    inner = _markdown_only(convert_markdown("\n".join(content), ctx, top_level=False), ctx)
    book, label = ctx.book, options.get("label") or options.get("name")

    def titled(title: str) -> list:
        return [f"**{title}**" + ("\n\n" + inner if inner else "")]

    if name in {"glue:figure", "glue", "glue:", "glue:any", "glue:md", "glue:math"}:
        number = _number_text(book, options.get("name"))
        caption = f"**{number}.** {inner}" if number and inner else inner
        item = Display(argument, caption, options.get("alt", ""))
        return [item] if top_level else [_markdown_only([item], ctx)]
    if name.startswith("prf:"):
        kind = name[4:]
        if kind == "proof":    # "*Proof.*" runs into the first paragraph unless the proof opens with a block
            opens_block = re.match(r"\s*([-*+>|#<]|\d+[.)]|\$\$)", inner)
            return [("*Proof.*" + ("\n\n" if opens_block else " ") + inner + " ∎") if inner else ""]
        number = _number_text(book, label) or kind.capitalize()
        return titled(number + (f" ({_inline(argument, ctx)})" if argument else "") + ".")
    if name == "exercise":
        number = _number_text(book, label) or "Exercise"
        return titled(number + (f" ({_inline(argument, ctx)})" if argument else "") + ".")
    if name in {"solution", "solution-start"}:
        title = "Solution to " + (_number_text(book, argument) or "the exercise")
        if name == "solution" and "dropdown" in options.get("class", "").split():
            return [f"<details>\n<summary>{title}</summary>\n\n{inner}\n\n</details>"]
        return titled(title)
    if name in {"solution-end", "exercise-end"}:
        return []
    if name == "exercise-start":
        number = _number_text(book, label) or "Exercise"
        return titled(number + (f" ({_inline(argument, ctx)})" if argument else "") + ".")
    if name in {"math", "equation"}:
        return [_display_math(inner or argument, options.get("label"), ctx)]
    if name == "table":          # the caption above the table, numbered as on the page
        number = _number_text(book, label)
        caption = _inline(argument, ctx)
        return [(f"**{number}.** {caption}" if number else f"**{caption}**") + ("\n\n" + inner if inner else "")]
    if name == "dropdown":
        return [f"<details>\n<summary>{_inline(argument, ctx)}</summary>\n\n{inner}\n\n</details>"]
    if name == "admonition" or name in ADMONITIONS:
        title = _inline(argument, ctx) if name == "admonition" else name.capitalize()
        return titled(title + ("" if title.endswith((".", "?", "!", ":")) else "."))
    ctx.warnings.append(f"{ctx.docname}: the reader's copy keeps only the content of the {{{name}}} directive")
    return [inner]


def _lookup(table: dict, label: str | None):
    """``table[label]``, also under the lower-case and docutils-normalised forms Sphinx stores labels in."""
    if not label:
        return None
    for key in (label, label.lower(), make_id(label)):
        if key in table:
            return table[key]
    return None


def _number_text(book: Book, label: str | None) -> str | None:
    found = _lookup(book.numbers, label)
    return f"{found[1]} {found[2]}" if found else None


def _display_math(tex: str, label: str | None, ctx: _Context) -> str:
    number = (_lookup(ctx.book.equations, label) or (None, None))[1]
    return "$$\n" + tex.strip() + (f"\n\\tag{{{number}}}" if number else "") + "\n$$"


def _inline(text: str, ctx: _Context, number_headings: bool = False) -> str:
    """Labelled display maths, roles and (at the top level) section numbers in a stretch of plain Markdown."""
    out, pos, in_math = [], 0, False
    # Pair the $$ delimiters in order; a closing one followed by "(label)" is a numbered equation.
    for m in re.finditer(r"\$\$", text):
        if not in_math:
            out.append(_roles_and_headings(text[pos:m.start()], ctx, number_headings))
            pos, in_math = m.end(), True
            continue
        tex, after = text[pos:m.start()], text[m.end():]
        label = _MATH_LABEL.match(after)
        if label:
            out.append(_display_math(tex, label["label"], ctx))
            pos = m.end() + label.end()
        else:
            out.append("$$" + tex + "$$")
            pos = m.end()
        in_math = False
    rest = text[pos:]
    out.append(("$$" + rest) if in_math else _roles_and_headings(rest, ctx, number_headings))
    return "".join(out)


def _roles_and_headings(text: str, ctx: _Context, number_headings: bool) -> str:
    text = _ROLE.sub(lambda m: _role(m["name"], m["body"], ctx), text)
    if not number_headings:
        return text
    numbers = ctx.book.secnumbers.get(ctx.docname, {})

    def numbered(m: re.Match) -> str:
        anchor = "" if len(m["hashes"]) == 1 else make_id(m["title"])
        number = numbers.get(anchor)
        return f"{m['hashes']} {number}. {m['title']}" if number else m.group(0)

    return re.sub(_HEADING.pattern, numbered, text, flags=re.M)


def _role(name: str, body: str, ctx: _Context) -> str:
    book, here = ctx.book, ctx.docname
    explicit = _EXPLICIT.match(body)
    text, target = (explicit["text"], explicit["target"]) if explicit else (None, body.strip())
    if name in {"glue:text", "glue", "glue:", "glue:any", "glue:md"}:
        key, _, spec = body.rpartition(":") if name == "glue:text" and ":" in body else (body, "", "")
        output = book.glued(here, key.strip())
        data = output.get("data", {})
        if name == "glue:md" and "text/markdown" in data:
            return "".join(data["text/markdown"])
        return book.format_text("".join(data.get("text/plain", "")), spec)
    if name == "eq":
        if _lookup(book.equations, target) is None:
            raise ReaderCopyError(f"{here}: unknown equation label {target!r}")
        docname, number = _lookup(book.equations, target)
        return book.link(here, docname, make_id(f"equation-{target}"), text or f"({number})")
    if name in {"numref", "prf:ref", "ref"} and _lookup(book.numbers, target):
        docname, kind, number = _lookup(book.numbers, target)
        shown = (text.replace("%s", number).replace("{number}", number) if text else f"{kind} {number}")
        return book.link(here, docname, make_id(target), shown)
    if name in {"ref", "numref"} and _lookup(book.sections, target):
        docname, anchor, title = _lookup(book.sections, target)
        number = book.secnumbers.get(docname, {}).get(anchor)
        shown = text.replace("%s", number or "").replace("{number}", number or "") if text else title
        return book.link(here, docname, anchor, shown)
    if name == "doc":
        docname = _resolve_doc(here, target)
        return book.link(here, docname, "", text or book.titles.get(docname, target))
    if name.startswith("cite"):
        return _cite(name, body, ctx)
    if name == "math":
        return f"${body}$"
    if name in {"sub", "sup"}:
        return f"<{name}>{body}</{name}>"
    if name in {"ref", "numref", "prf:ref"}:
        raise ReaderCopyError(f"{here}: unknown reference target {target!r} in {{{name}}}")
    ctx.warnings.append(f"{here}: the reader's copy shows the {{{name}}} role as plain text")
    return text or body


def _resolve_doc(here: str, target: str) -> str:
    if target.startswith("/"):
        return target.strip("/")
    parts = here.split("/")[:-1]
    for part in target.split("/"):
        if part == "..":
            parts = parts[:-1]
        elif part not in {"", "."}:
            parts.append(part)
    return "/".join(parts)


# ---------------------------------------------------------------------------------------------- citations

def _plain_latex(text: str) -> str:
    return codecs.decode(text, "ulatex").replace("{", "").replace("}", "")


def author_year(entry) -> tuple[str, str]:
    """("Cameron, Gelbach and Miller" style short authors, year) of a pybtex entry: one, two, or "et al."."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_plain_latex(" ".join(p.prelast_names + p.last_names)) for p in persons]
    if not names:
        authors = _plain_latex(entry.fields.get("organization", entry.fields.get("title", "?")))
    elif len(names) == 1:
        authors = names[0]
    elif len(names) == 2:
        authors = f"{names[0]} and {names[1]}"
    else:
        authors = f"{names[0]} et al."
    return authors, _plain_latex(entry.fields.get("year", "n.d."))


def _cite(name: str, body: str, ctx: _Context) -> str:
    keys = [k.strip() for k in body.split(",") if k.strip()]
    parts = []
    for key in keys:
        if key not in ctx.book.bib:
            raise ReaderCopyError(f"{ctx.docname}: citation key {key!r} is not in the bibliography")
        if key not in ctx.cited:
            ctx.cited.append(key)
        authors, year = author_year(ctx.book.bib[key])
        parts.append(f"{authors} ({year})" if name in {"cite:t", "cite:ts"} else f"{authors}, {year}")
    return "; ".join(parts) if name in {"cite:t", "cite:ts"} else "(" + "; ".join(parts) + ")"


def references_markdown(keys: list[str], book: Book) -> str:
    """The cited works, formatted by pybtex in the bibliography's style, as a Markdown list."""
    from pybtex.database import BibliographyData
    from pybtex.plugin import find_plugin

    style = find_plugin("pybtex.style.formatting", book.bib_style)()
    data = BibliographyData({key: book.bib[key] for key in keys})
    entries = style.format_entries(data.entries.values())
    return "## References\n\n" + "\n".join("- " + " ".join(e.text.render_as("markdown").split()) for e in entries)


# ---------------------------------------------------------------------------------------------- notebook

def _format_plain_text(text: str, spec: str) -> str:
    from myst_nb.core.variables import format_plain_text   # the function myst-nb's {glue:text} role uses

    return format_plain_text(text, spec)


def _hlmlib_book_import(m: re.Match) -> str:
    """``hlmlib.book`` stands in for myst-nb outside the build: same ``glue``, under the name the chapter uses."""
    if m["names"] is not None:
        return f"{m['indent']}from hlmlib.book import {m['names']}"
    alias = m["alias"].strip()
    return f"{m['indent']}import hlmlib.book {alias or 'as myst_nb'}  # myst-nb's glue, outside the book build"


def _hide(cell: nbformat.NotebookNode) -> None:
    tags = set(cell.metadata.get("tags", []))
    hide_source = tags & {"remove-cell", "remove-input", "hide-input", "hide-cell"}
    hide_output = tags & {"remove-cell", "remove-output", "hide-output", "hide-cell"}
    if hide_source or hide_output:
        cell.metadata["jupyter"] = {"source_hidden": bool(hide_source), "outputs_hidden": bool(hide_output)}
    if hide_source:
        cell.metadata["cellView"] = "form"         # Colab folds a "#@title" cell in form view
        cell.source = HIDDEN_TITLE + cell.source


def install_cells(repo, extra_modules: list[str]) -> list[nbformat.NotebookNode]:
    """The first code cell: install hlmlib (with the chapters' extra) if any module the chapters use is missing."""
    if repo is None:
        return [nbformat.v4.new_markdown_cell(
            "**Before running this notebook**, install hlmlib and the packages the chapters use, from a checkout "
            "of the book's repository: run `pip install \".[book]\"` in its top folder (the book's README says "
            "more).")]
    source = (
        "#@title Installs hlmlib and the packages the chapters use, if they are missing (Colab, Binder, a fresh "
        "environment)\n"
        "import importlib.util, subprocess, sys\n"
        f"if any(importlib.util.find_spec(m) is None for m in {['hlmlib', *extra_modules]!r}):\n"
        f"    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"--quiet\", "
        f"{repo.pip_requirement()!r}], check=True)")
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["cellView"] = "form"
    return [cell]


def reader_notebook(executed: nbformat.NotebookNode, docname: str, book: Book, repo=None,
                    extra_modules: list[str] = (), book_title: str = "") -> tuple[nbformat.NotebookNode, list[str]]:
    """The reader's copy of one executed chapter, and the warnings met while writing it."""
    ctx = _Context(book, docname)
    title = book.titles.get(docname, docname)
    site = f" Its web page: <{book.site_url}{docname}.html>." if book.site_url else ""
    heading = f"*{book_title}* — {title}." if book_title else f"{title}."
    cells = [nbformat.v4.new_markdown_cell(
        heading + "\n\n"
        "*This is the chapter's notebook as the book's build ran it, with its outputs, and with the text as the "
        "web page shows it. Cells hidden on the page (the code behind figures and numbers, and the checks of the "
        f"text's claims) are folded here: later cells use what they compute.{site}*"),
        *install_cells(repo, list(extra_modules))]
    glue_imported = False
    for cell in executed.cells:
        if cell.cell_type == "markdown":
            for piece in convert_markdown(cell.source, ctx):
                if isinstance(piece, Display):
                    output = copy.deepcopy(book.glued(docname, piece.key))
                    output["output_type"] = "display_data"
                    output.setdefault("metadata", {}).pop("scrapbook", None)
                    show = nbformat.v4.new_code_cell(f"from hlmlib.book import show\nshow({piece.key!r})",
                                                     outputs=[nbformat.from_dict(output)])
                    show.metadata["jupyter"] = {"source_hidden": True}
                    cells.append(show)
                    if piece.caption:
                        cells.append(nbformat.v4.new_markdown_cell(piece.caption))
                else:
                    cells.append(nbformat.v4.new_markdown_cell(piece))
        elif cell.cell_type == "code":
            new = copy.deepcopy(cell)
            new.source, n = _MYST_NB_IMPORT.subn(_hlmlib_book_import, new.source)
            glue_imported = glue_imported or n > 0 or "from hlmlib.book import glue" in new.source
            _hide(new)
            cells.append(new)
    if not glue_imported and book.glue.get(docname):
        raise ReaderCopyError(f"{docname}: glues values but imports glue neither from myst_nb nor from hlmlib.book")
    if ctx.cited:
        cells.append(nbformat.v4.new_markdown_cell(references_markdown(ctx.cited, book)))
    nb = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(executed.metadata))
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i}"
        c.metadata.pop("execution", None)
    return nb, ctx.warnings


# ---------------------------------------------------------------------------------------------- from Sphinx

def from_sphinx(env, glue_dir: Path, site_url: str | None) -> Book:
    """A :class:`Book` from a Sphinx build environment after the build (numbers are assigned by then)."""
    book = Book(site_url)
    proofs = getattr(env, "proof_list", {})
    fmt = env.config.numfig_format
    for docname, kinds in env.toc_fignumbers.items():
        for kind, ids in kinds.items():
            if kind == "displaymath":
                continue
            for node_id, number in ids.items():
                if node_id in proofs:
                    word = proofs[node_id]["realtype"].capitalize()
                else:
                    word = fmt.get(kind, kind.capitalize() + " %s").replace("%s", "").strip()
                book.numbers[node_id] = (docname, word, ".".join(map(str, number)))
    for label, (docname, _) in env.domaindata["math"]["objects"].items():
        number = env.toc_fignumbers.get(docname, {}).get("displaymath", {}).get(make_id(f"equation-{label}"))
        if number:
            book.equations[label] = (docname, ".".join(map(str, number)))
    # A label on a paragraph or admonition has no title: Sphinx keeps it in anonlabels only, and a {ref} to it
    # must give its own text (Sphinx requires that too).
    for label, (docname, anchor) in env.domaindata["std"]["anonlabels"].items():
        book.sections.setdefault(label, (docname, anchor, ""))
    for label, (docname, anchor, title) in env.domaindata["std"]["labels"].items():
        book.sections[label] = (docname, anchor, title)
    for docname, numbers in env.toc_secnumbers.items():
        book.secnumbers[docname] = {anchor.lstrip("#"): ".".join(map(str, n)) for anchor, n in numbers.items()}
    for docname, title in env.titles.items():
        book.titles[docname] = title.astext()
    for path in glue_dir.rglob("*.glue.json"):
        docname = path.relative_to(glue_dir).as_posix().removesuffix(".glue.json")
        book.glue[docname] = json.loads(path.read_text(encoding="utf-8"))
    bibdata = env.domaindata.get("cite", {}).get("bibdata")
    if bibdata is not None:
        book.bib.update(bibdata.data.entries)
    book.bib_style = getattr(env.config, "bibtex_default_style", "alpha")
    return book

