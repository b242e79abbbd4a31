"""Round-trip chapter notebooks and a plain-text 'percent' form, for authoring and reviewing diffs.

    python scripts/nbtext.py to-py chapters/ch01.ipynb > /tmp/ch01.py     # edit as text
    python scripts/nbtext.py to-ipynb /tmp/ch01.py chapters/ch01.ipynb     # write back, no outputs

Cells start with a line '# %%' (code) or '# %% [markdown]'; tags go after it: '# %% tags=["remove-cell"]'.
Markdown cells are written as comment lines ('# ' prefixed). The .ipynb is the file the book and tests use.
"""
import json
import re
import sys

import nbformat

HEADER = re.compile(r'^# %%(?: \[(markdown)\])?(?: tags=(\[.*\]))?\s*$')


def to_ipynb(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    cells, kind, tags, lines = [], None, [], []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(l[2:] if l.startswith("# ") else l[1:] if l.startswith("#") else l
                             for l in body.split("\n"))
            cell = nbformat.v4.new_markdown_cell(body)
        else:
            cell = nbformat.v4.new_code_cell(body)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in text.split("\n"):
        m = HEADER.match(line)
        if m:
            flush()
            kind = "markdown" if m.group(1) else "code"
            tags = json.loads(m.group(2)) if m.group(2) else []
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    for i, c in enumerate(cells):
        c["id"] = f"cell-{i}"
    nb.cells = cells
    return nb


def to_py(nb) -> str:
    out = []
    for c in nb.cells:
        tags = c.get("metadata", {}).get("tags")
        head = "# %% [markdown]" if c.cell_type == "markdown" else "# %%"
        if tags:
            head += " tags=" + json.dumps(tags)
        out.append(head)
        if c.cell_type == "markdown":
            out.extend(("# " + l) if l else "#" for l in c.source.split("\n"))
        else:
            out.append(c.source)
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    cmd, src = sys.argv[1], sys.argv[2]
    if cmd == "to-ipynb":
        nb = to_ipynb(open(src, encoding="utf-8").read())
        nbformat.write(nb, sys.argv[3])
    elif cmd == "to-py":
        sys.stdout.write(to_py(nbformat.read(src, as_version=4)))
    else:
        sys.exit(__doc__)
