"""Small Sphinx fixes for the book, loaded from _config.yml (sphinx.local_extensions)."""


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


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=999)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
