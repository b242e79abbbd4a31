"""A static check of a submission's code, before anything runs: constructs that reach into the interpreter.

An assignment needs NumPy, pandas, SciPy and hlmlib, not the interpreter's machinery. The check lists every use of
what could defeat the grader from inside the kernel (see ``gradingkit.py``): imports outside an allow-list
(``sys``, ``os``, ``builtins``, ``inspect``, ``gc``, and modules that evaluate strings: ``typing``, SymPy,
statsmodels' formulas, ...); ``exec``, ``eval``, ``getattr``, ``globals`` and friends; IPython's ``get_ipython``
and input history; dunder names and attributes; attributes that lead to the interpreter's internals
(``warnings.sys``, frames, code objects, tracing) or write files; setting an attribute of anything but ``self``
(or a data frame's columns, index or name: patching a library function during a test and putting it back
afterwards needs an attribute assignment); changing an item of an imported module; shell escapes, and magics
other than ``%matplotlib``, ``%time`` and ``%timeit`` (whose code is checked too). A submission with any of these
is not run: it scores 0 and is reported for the instructor to read.
"""
from __future__ import annotations

import ast
import re

from IPython.core.inputtransformer2 import TransformerManager

ALLOWED_IMPORTS = {   # numerical work, and standard modules that neither evaluate strings nor reach the interpreter
    "numpy", "pandas", "scipy", "hlmlib", "matplotlib", "seaborn", "math", "cmath", "statistics", "random",
    "fractions", "decimal", "itertools", "functools", "collections", "time", "warnings", "re", "textwrap",
    "pprint", "json", "copy", "datetime", "tabulate",
}
FORBIDDEN_NAMES = {
    "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "getattr", "setattr", "delattr",
    "open", "input", "breakpoint", "exit", "quit", "memoryview", "get_ipython", "display_pub",
    "In", "Out", "_ih", "_oh", "_dh", "_i", "_ii", "_iii",
}
FORBIDDEN_ATTRIBUTES = {
    # modules outside the allow-list, reached as attributes of allowed ones (warnings.sys, pd.io.common.os)
    "sys", "os", "io", "builtins", "types", "subprocess", "shutil", "pathlib", "importlib", "inspect", "gc",
    "threading", "_thread", "signal", "atexit", "linecache", "IPython", "ipykernel", "ctypes", "ctypeslib",
    # the interpreter's and IPython's internals: frames, code, tracing, streams, the user namespace
    "pythonapi", "modules", "meta_path", "settrace", "setprofile", "_getframe", "exc_info", "f_back",
    "f_globals", "f_locals", "f_builtins", "f_code", "f_lineno", "f_trace", "co_consts", "co_code", "gi_frame",
    "gi_code", "cr_frame", "ag_frame", "tb_frame", "tb_next", "func_globals", "stdout", "stderr", "stdin",
    "displayhook", "excepthook", "showwarning", "formatwarning", "user_ns", "user_global_ns", "environ",
    "system", "popen",
    # getattr by another name, and evaluating strings (pandas' eval and query resolve attributes)
    "getattr", "setattr", "delattr", "attrgetter", "methodcaller", "operator", "eval", "exec", "query",
    "read_pickle", "typing", "get_type_hints", "ForwardRef", "string", "Formatter", "get_field", "sympy",
    "sympify", "parse_expr", "patsy", "statsmodels", "formulaic", "linearmodels",
    # writing files (a submission must not change the grader, hlmlib or another submission on disk)
    "savetxt", "save", "savez", "savez_compressed", "tofile", "memmap", "open_memmap", "to_csv", "to_pickle",
    "to_json", "to_excel", "to_parquet", "to_hdf", "to_feather", "to_stata", "to_sql", "to_xml", "to_orc",
    "savefig", "dump", "write", "writelines", "write_text", "write_bytes", "mkdir", "makedirs", "unlink",
    "rmdir", "rmtree", "chmod", "symlink", "imsave", "ExcelWriter", "HDFStore",
}
FRAME_ATTRIBUTES = {"columns", "index", "name", "names"}    # data-frame attributes students set
ALLOWED_DUNDER_METHODS = {"__init__", "__repr__", "__str__", "__post_init__"}
ALLOWED_MODULE_SETTINGS = ("pd.options", "pandas.options", "plt.rcParams", "matplotlib.rcParams", "mpl.rcParams")
CODE_MAGICS = {"time", "timeit"}           # magics whose argument is code: allowed, and their code is checked
HARMLESS_MAGICS = {"matplotlib"}
DUNDER = re.compile(r"^__\w+__$")
HISTORY = re.compile(r"^_i?\d+$")


def _dotted(node) -> str:
    parts = []
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


class _Checker(ast.NodeVisitor):
    def __init__(self, imported: set[str]):
        self.imported, self.problems = imported, []

    def flag(self, node, what):
        self.problems.append((getattr(node, "lineno", 0), what))

    def visit_Import(self, node):
        for alias in node.names:
            self._import(node, alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        self._import(node, "." * node.level + (node.module or ""))
        for alias in node.names:
            if DUNDER.match(alias.name) or alias.name in FORBIDDEN_ATTRIBUTES:
                self.flag(node, f"imports {alias.name}")

    def _import(self, node, name):
        if name.split(".")[0] not in ALLOWED_IMPORTS:
            self.flag(node, f"imports {name or 'a relative module'}, which is not on the list of allowed modules")

    def visit_Name(self, node):
        if node.id in FORBIDDEN_NAMES or DUNDER.match(node.id) or HISTORY.match(node.id):
            self.flag(node, f"uses {node.id}")

    def visit_Constant(self, node):
        if isinstance(node.value, str) and DUNDER.match(node.value):
            self.flag(node, f"uses the string {node.value!r}")

    def _function(self, node):
        if DUNDER.match(node.name) and node.name not in ALLOWED_DUNDER_METHODS:
            self.flag(node, f"defines {node.name}")
        self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Attribute(self, node):
        if DUNDER.match(node.attr) or node.attr.lstrip("_") in FORBIDDEN_ATTRIBUTES:    # random._os is os
            self.flag(node, f"uses the attribute .{node.attr}")
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            dotted = _dotted(node)
            own = isinstance(node.value, ast.Name) and node.value.id == "self"
            frame = node.attr in FRAME_ATTRIBUTES and dotted.split(".")[0] not in self.imported
            if not (own or frame or dotted.startswith(ALLOWED_MODULE_SETTINGS)):
                self.flag(node, f"sets {dotted} (code may set only self.x in a method, a data frame's "
                                f"{', '.join(sorted(FRAME_ATTRIBUTES))}, and pandas or matplotlib options)")
        self.generic_visit(node)

    def visit_Subscript(self, node):
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            dotted = _dotted(node)
            if dotted.split(".")[0] in self.imported and not dotted.startswith(ALLOWED_MODULE_SETTINGS):
                self.flag(node, f"changes {dotted}, part of an imported module")
        self.generic_visit(node)

    def visit_Call(self, node):  # get_ipython().run_line_magic("time", "code") and friends, after transformation
        func = node.func
        if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
                and isinstance(func.value.func, ast.Name) and func.value.func.id == "get_ipython"
                and func.attr in ("run_line_magic", "run_cell_magic") and node.args
                and isinstance(node.args[0], ast.Constant)):
            magic = str(node.args[0].value).lstrip("%")
            if magic in HARMLESS_MAGICS:
                return
            if magic in CODE_MAGICS and all(isinstance(a, ast.Constant) for a in node.args[1:]):
                for arg in node.args[1:]:
                    self.problems += _check_code(str(arg.value), self.imported)
                return
            self.flag(node, f"runs the magic %{magic}")
            return
        self.generic_visit(node)


def _imported_names(tree) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _parse(source: str):
    """The AST of a cell as IPython runs it: magics transformed, top-level ``await`` allowed."""
    return compile(TransformerManager().transform_cell(source), "<cell>", "exec",
                   flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)


def _check_code(source: str, imported: set[str]) -> list[tuple[int, str]]:
    try:
        tree = _parse(source)
    except (SyntaxError, ValueError):
        return []          # not checked, and not run either: see unparsable()
    checker = _Checker(imported)
    checker.visit(tree)
    return checker.problems


def check_cells(cells: list[tuple[int, str]]) -> list[str]:
    """Problems in the student's code cells, given as (cell number in the submission, source) pairs."""
    imported = set()
    for _, source in cells:
        try:
            imported |= _imported_names(_parse(source))
        except SyntaxError:
            pass
    return [f"cell {n}, line {line}: {what}" for n, source in cells for line, what in _check_code(source, imported)]


def unparsable(source: str) -> str | None:
    """The syntax error of a cell this check cannot read (the grader runs such a cell as a ``raise``), or None."""
    try:
        _parse(source)
        return None
    except (SyntaxError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
