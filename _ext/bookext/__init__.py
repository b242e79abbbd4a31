"""The book's own Sphinx extension, loaded from _config.yml (sphinx.local_extensions).

- Every notebook page gets a reader's copy (``reader.py``) at ``<site>/notebooks/<page>.ipynb``, and the page's
  download button gives that copy instead of the output-less source.
- Binder and Colab launch buttons open those copies from the published branch of the repository the book is built
  from (``launch.py``); without a repository there are none.
- MathJax 3 is copied into the site from the installed package ``django-static-mathjax`` (pinned in
  requirements.txt), so equations render offline; ``mathjax_path`` in _config.yml points at the copy.
- sphinx-thebe's duplicated configuration script is dropped.
"""
from __future__ import annotations

import base64
import importlib.metadata
import importlib.resources
import os
import shutil
from pathlib import Path

import nbformat
from sphinx.util import logging

from . import launch, reader

logger = logging.getLogger(__name__)

# The parts of MathJax's es5 build that the tex-mml-chtml component loads (fonts, menu, accessibility and
# autoloaded TeX extensions); the package holds ~24 MB of other builds and sources the site does not need.
MATHJAX_PARTS = ["tex-mml-chtml.js", "a11y", "adaptors", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui"]
_MODULE_OF = {"ipython": "IPython"}


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    """Drop repeated <script> entries: sphinx-thebe registers its configuration once per read pass, and a second
    copy of `const THEBE_JS_URL = ...` is a JavaScript error on every page."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = (getattr(script, "filename", None) or "", tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def _is_notebook(app, docname: str) -> bool:
    return str(app.env.doc2path(docname)).endswith(".ipynb")


def _notebook_path(docname: str) -> str:
    return f"{reader.NOTEBOOK_DIR}/{docname}.ipynb"


def _find_repository(app, config):
    app.bookext_repository = launch.repository(Path(app.srcdir), config.book_repository_url, config.book_pages_branch)
    wanted = os.environ.get(launch.ENV_VAR) or config.book_repository_url
    if wanted and app.bookext_repository is None:
        logger.warning(f"bookext: {wanted!r} is not the address of a hosted git repository; "
                       "the book has no launch buttons")
    # A config value, so that a change of repository rewrites every page (Sphinx compares it between builds)
    config.book_launch_repository = app.bookext_repository.url if app.bookext_repository else ""


def _header_buttons(app, pagename, templatename, context, doctree):
    """The download button gives the reader's copy; Binder and Colab buttons open it from the published branch."""
    if pagename not in app.env.found_docs or not _is_notebook(app, pagename):
        return
    buttons = context.get("header_buttons", [])
    notebook = _notebook_path(pagename)
    for group in buttons:
        if group.get("label") == "download-buttons":
            group["buttons"] = [b for b in group["buttons"] if b.get("label") != "download-source-button"]
            group["buttons"].insert(0, {
                "type": "link", "url": context["pathto"](notebook, 1), "text": ".ipynb", "icon": "fas fa-code",
                "tooltip": "Download the notebook, with its outputs", "label": "download-notebook-button"})
    repo = app.bookext_repository
    if repo is None:
        return
    links = [("Binder", "_static/images/logo_binder.svg", repo.binder_url(notebook)),
             ("Colab", "_static/images/logo_colab.png", repo.colab_url(notebook))]
    buttons.insert(0, {
        "type": "group", "tooltip": "Launch interactive content", "icon": "fas fa-rocket", "label": "launch-buttons",
        "buttons": [{"type": "link", "text": name, "tooltip": f"Run this chapter on {name}", "icon": icon,
                     "url": url, "label": f"launch-{name.lower()}-button"} for name, icon, url in links if url]})


def _copy_mathjax(outdir: Path) -> None:
    try:
        es5 = importlib.resources.files("mathjax") / "static" / "mathjax" / "es5"
    except ModuleNotFoundError:
        raise RuntimeError("bookext: MathJax is missing: install django-static-mathjax "
                           "(pip install -r requirements.txt, as scripts/setup-env does)") from None
    target = outdir / "mathjax"
    for part in MATHJAX_PARTS:
        source = Path(str(es5 / part))
        if source.is_dir():
            shutil.copytree(source, target / part, dirs_exist_ok=True)
        else:
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)
    shutil.copy2(Path(str(es5.parent / "LICENSE")), target / "LICENSE")


def book_extra_modules() -> list[str]:
    """The modules of hlmlib's ``book`` extra (what the chapters import beyond hlmlib), from its metadata."""
    from packaging.requirements import Requirement

    modules = []
    for line in importlib.metadata.requires("hlmlib") or []:
        req = Requirement(line)
        if req.marker is not None and req.marker.evaluate({"extra": "book"}) and not req.marker.evaluate({"extra": ""}):
            name = req.name.lower()
            modules.append(_MODULE_OF.get(name, name.replace("-", "_")))
    return modules


def _write_reader_copies(app) -> None:
    outdir = Path(app.outdir)
    executed_dir = outdir.parent / "jupyter_execute"
    repo = app.bookext_repository
    site_url = os.environ.get("BOOK_SITE_URL") or (repo.site_url() if repo else None)
    book = reader.from_sphinx(app.env, executed_dir, site_url)
    extra = book_extra_modules()
    for docname in sorted(app.env.found_docs):
        if not _is_notebook(app, docname):
            continue
        executed = executed_dir / f"{docname}.ipynb"
        try:
            nb, warnings = reader.reader_notebook(nbformat.read(executed, as_version=4), docname, book, repo,
                                                  extra, app.config.html_title)
        except (reader.ReaderCopyError, OSError) as err:
            logger.warning(f"bookext: no reader's copy of {docname}: {err}")
            continue
        for warning in warnings:
            logger.warning(f"bookext: {warning}")
        target = outdir / _notebook_path(docname)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
    binder = outdir / "binder"     # Binder builds the published branch: it installs what the reader's copies need
    shutil.rmtree(binder, ignore_errors=True)
    if repo is not None:
        binder.mkdir()
        (binder / "requirements.txt").write_text(repo.pip_requirement() + "\n", encoding="utf-8")


def _write_index_redirect(app) -> None:
    """The site's index.html: a redirect to the first page, as sphinx-external-toc writes when none exists,
    but a complete page with the favicon inlined as a data URI: a browser opening the site then requests
    neither /favicon.ico (a 404) nor a favicon file that the immediate redirect would abort."""
    first = f"{app.config.root_doc}.html"
    favicon = Path(app.confdir) / (app.config.html_favicon or "")
    icon = ("data:image/svg+xml;base64," + base64.b64encode(favicon.read_bytes()).decode("ascii")
            if favicon.is_file() and favicon.suffix == ".svg" else "data:,")
    (Path(app.outdir) / "index.html").write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Refresh" content="0; url={first}">\n'
        f'<link rel="icon" href="{icon}">\n'
        f"<title>{app.config.html_title or app.config.project}</title></head>\n"
        f'<body><p><a href="{first}">Go to the book</a></p></body></html>\n', encoding="utf-8")


def _build_finished(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    _copy_mathjax(Path(app.outdir))
    _write_index_redirect(app)
    _write_reader_copies(app)


def setup(app):
    app.add_config_value("book_repository_url", None, "html")
    app.add_config_value("book_pages_branch", "gh-pages", "html")
    app.add_config_value("book_launch_repository", "", "html")    # set by _find_repository
    app.connect("config-inited", _find_repository)
    app.connect("html-page-context", _dedupe_scripts, priority=999)
    app.connect("html-page-context", _header_buttons, priority=600)   # after sphinx-book-theme's (501)
    app.connect("build-finished", _build_finished, priority=400)   # before sphinx-external-toc's bare redirect
    return {"parallel_read_safe": True, "parallel_write_safe": True}
