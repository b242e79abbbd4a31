"""A static check of a submission's code, before anything runs.

Two verdicts:

- :func:`not_run`: a cell the grader will not run, and why: one it cannot parse; one with a shell command or an
  IPython magic outside a short allow-list (``%time``, ``%timeit``, ``%matplotlib inline``, ``obj?``), since a
  magic's argument is code or a command that the check could not see; a help line (``obj?``) whose name reads
  IPython's history, a private attribute or a refused one on the way (:func:`_help_lookup`); one whose
  ``%time``/``%timeit`` code (its options parsed as IPython parses them) cannot be parsed, or nests them more than
  MAGIC_NESTING deep. Such a cell
  fails as an error in that cell only. The grader asks in a process of its own (``python integrity.py not-run``).
- :func:`check_cells`: constructs that reach into the interpreter to defeat the grader (see ``gradingkit.py``),
  in the code that will run, magics' code included: imports outside an allow-list (``from IPython.display import
  display``, ``Markdown``... is on it, IPython itself is not; ``sys``, ``builtins``,
  ``inspect``, ``gc``, ``importlib``, ``subprocess``, ``ctypes``, ``operator``, ``pickle``, ... are out);
  ``exec``, ``eval``, ``compile``, ``globals``, ``setattr`` and friends; IPython's ``get_ipython``; a read of
  IPython's history (``_i``, ``_ih``, ``Out``, ``_dh``, ``_i3``...) that the cell does not surely bind itself before
  (``for _i in ...`` and a function's own ``_i`` are the notebook's); dunder names, attributes and strings
  (``__version__``, ``__name__``, ``__doc__`` may be read, and so may ``self.__class__.__name__``; a method may call
  its base's ``super().__init__(...)``, ``super(Sub, self).__init__(...)`` in a method of ``Sub``, or
  ``Base.__init__(self, ...)``, ``Base`` a class of the notebook's);
  private attributes (``._x``, read, set, called or named to ``getattr`` by a constant string) whatever the
  expression they are taken from (``[warnings][0]._x``, ``w = warnings; w._x``, ``f()._x``), but ``self._x`` and
  ``cls._x`` in a method of the notebook's class that derives only from its own classes, ``object`` and the built-in
  exceptions, where the method binds ``self`` nowhere else, ``os._exit``, and reads of hlmlib's fit's ``_y``,
  ``_X``, ``_Z``, ``_codes`` (the check cannot tell an object's type: a private helper of a module, such as
  ``warnings._formatwarning_orig``, which prints any line linecache holds, or ``cbook._setattr_cm``, which sets any
  attribute, is refused wherever it is reached from; a name built at run time is refused by the student's
  ``getattr``, which takes no name with a leading underscore); ``warnings.warn_explicit`` (it prints the lines of
  any file name it is given);
  attributes that lead to the interpreter's internals (``warnings.sys``, ``tempfile._thread``, frames, code
  objects, tracing) or to IPython's shell (``exit._ip``, ``run_cell``), start processes or give raw memory
  (``as_strided``); in pandas ``query``/``eval`` strings and formulas, the same names; ``functools.singledispatch``
  and ``.register``, and string annotations that are not plain types (``typing.get_type_hints`` evaluates them as
  code); objects that hand out a frame's namespace (pandas' ``Scope``) and functions that import a module or
  resolve an attribute by name (``import_optional_dependency``); library functions that get or set an attribute of
  their argument by a name given at run time (pandas' ``temp_setattr``, ...: see FORBIDDEN_ATTRIBUTES) and
  libraries' internal submodules (``pd.core``, ``np.core``: INTERNAL_SUBMODULES); ``enum.global_enum``, and Enum's
  functional API with a ``module`` other than ``"__main__"`` (together they set any module's attribute: r15);
  setting an attribute of anything but ``self`` in a method and the notebook's own instances (a name bound only to
  calls of its plain classes, see :func:`_name_kinds`), or a data frame's columns, index or name, and pandas or
  matplotlib options (on such an instance and ``self``, any public name may be set and read; ``.stderr`` and
  ``.stdout`` may be read on a call's result or a name bound only to calls' results; ``scipy.signal`` is fine); ``functools.update_wrapper``/``wraps`` with attribute names that are not constant plain
  names, ``update_wrapper`` whose wrapper is not a name bound only to the notebook's own ``def`` (decorated by
  nothing but ``wraps``), ``wraps`` other than as the lowest decorator of a ``def`` (the wrapper's attributes are
  set: ``update_wrapper(os, holder, assigned=("fspath",))`` set ``os.fspath``), ``make_dataclass`` with a ``namespace``, ``types.new_class``, ``property`` outside a class body, any of
  these taken other than by a direct call, and ``.format`` on a string the check cannot read given anything but
  constants (``df.style.format("{:.3f}")``, ``.style.format(precision=4)`` pass: fields of a format string reach
  only the attributes of what it is given); and taking a method
  from its class (``Box.put(np.testing, f)``, ``type(box).put``,
  ``getattr(Box, "put")``, also through an alias ``B = Box``), since its ``self`` could then be a module; changing
  an item of an imported module, by assignment or by a mutating method (``os.environ.update``,
  ``warnings.filters.insert``, also inside ``or``, ``if``-``else``, displays, subscripts and ``:=``:
  ``(os.environ or {}).update``; an alias of the container or a call's result is not followed), ``os.putenv``,
  process-wide registries
  (``seterrcall``, pandas' ``register_*``) and matplotlib settings that name a program. A submission with any of
  these is not run: it scores 0 and is reported for the instructor to read.

Neither is complete. At run time the grading kit's audit hook refuses writes outside the run's folder, reads
outside the folders a run needs, strings compiled at run time that these rules would refuse, processes, native code
and the network; with this check it is a first layer that plain Python should not pass (what the hook calls at each
event is bound at set-up, and ``os``/``posixpath`` are watched), but plain Python has passed it before (round 14:
``update_wrapper`` replaced ``os.fspath``), and full Python passes it. What holds is the OS sandbox the kernels run
in, and the score comes from values compared outside the kernel. The check keeps the honest notebook running and
stops the plain ways to tamper.
"""
from __future__ import annotations

import ast
import builtins
import importlib
import math
import re
import sys
import threading
import types
import warnings

from IPython.core.inputtransformer2 import TransformerManager
from IPython.core.magic import Magics
from IPython.core.error import UsageError

ALLOWED_IMPORTS = {   # numerical work, and standard modules that neither evaluate strings nor reach the interpreter
    "numpy", "pandas", "scipy", "hlmlib", "matplotlib", "seaborn", "statsmodels", "sklearn", "linearmodels",
    "math", "cmath", "statistics", "random", "fractions", "decimal", "numbers", "itertools", "functools",
    "collections", "dataclasses", "abc", "enum", "typing", "__future__", "time", "datetime", "warnings", "re",
    "textwrap", "pprint", "json", "csv", "copy", "os", "io", "pathlib", "shutil", "tempfile", "tabulate",
    "cycler",   # matplotlib's own dependency (from cycler import cycler, for axes.prop_cycle): no I/O
}
FORBIDDEN_NAMES = {
    "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "setattr", "delattr", "input",
    "breakpoint", "memoryview", "get_ipython", "display_pub",
    # they evaluate a function's string annotations (typing.get_type_hints) with the notebook's namespace
    "singledispatch", "singledispatchmethod",
    # enum's: it writes an Enum class's members into the module its __module__ names (sys.setprofile; r15)
    "global_enum",
}
# IPython's input, output and folder history (the source of earlier cells, the objects they returned): refused where
# a read may find IPython's value, allowed as the notebook's own variables (see _HistoryReads)
HISTORY_NAMES = {"In", "Out", "_ih", "_oh", "_dh", "_i", "_ii", "_iii"}
INJECTED_NAMES = {"getattr"}     # the grader puts a checked version in the student's namespace: not to be rebound
# Functions that register a student's function or class in a library, process-wide: numpy calls the function inside
# later numerical code; pandas asks its dtype registry before NumPy (pandas_dtype("float32")) and puts an accessor
# on every DataFrame, Series or Index, a class the tests use (r16)
REGISTRIES = {"seterrcall", "register_extension_dtype", "register_dataframe_accessor", "register_series_accessor",
              "register_index_accessor"}
REGISTRY_NOTE = " (it registers the notebook's code in a library, for the whole process)"
FORBIDDEN_ATTRIBUTES = {
    # modules outside the allow-list, reached as attributes of allowed ones (warnings.sys, np.core._internal.ctypes)
    "sys", "builtins", "subprocess", "importlib", "inspect", "gc", "threading", "_thread", "signal",
    "atexit", "linecache", "IPython", "ipykernel", "ctypes", "ctypeslib", "cffi", "multiprocessing", "concurrent",
    "marshal", "runpy", "pkgutil", "gradingkit", "contextlib",
    # modules that read the call stack or its source (matplotlib.cbook.traceback, matplotlib.logging with
    # stack_info): a stack shows the grader's cells and the hidden tests (grader adversarial r12)
    "traceback", "logging", "pdb", "faulthandler", "cgitb", "tokenize", "walk_stack", "extract_stack",
    "format_stack", "print_stack", "stack_info",
    # warnings' functions that print any file's lines from linecache (a test's, the grader's cell) given its name
    "warn_explicit",
    # the interpreter's and IPython's internals: frames, code, tracing, streams, hooks, the user namespace
    "pythonapi", "modules", "meta_path", "path_hooks", "settrace", "setprofile", "_getframe", "exc_info", "f_back",
    "f_globals", "f_locals", "f_builtins", "f_code", "f_lineno", "f_trace", "co_consts", "co_code", "gi_frame",
    "gi_code", "cr_frame", "ag_frame", "tb_frame", "tb_next", "func_globals", "stdout", "stderr", "stdin",
    "displayhook", "excepthook", "showwarning", "formatwarning", "user_ns", "user_global_ns", "addaudithook",
    "redirect_stdout", "redirect_stderr", "_old_targets",
    # processes, signals and raw memory
    "system", "popen", "putenv", "unsetenv", "fork", "forkpty", "execv", "execve", "execvp", "execvpe", "execl",
    "execle", "execlp", "execlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp",
    "spawnlpe",
    "posix_spawn", "posix_spawnp", "kill", "killpg", "dup2", "as_strided", "byte_bounds",
    # IPython's shell (exit._ip, a backend's get_ipython) and its methods that run code or magics
    "_ip", "get_ipython", "InteractiveShell", "shell", "run_cell", "run_cell_async", "run_line_magic",
    "run_cell_magic", "run_code", "run_ast_nodes", "safe_execfile", "safe_execfile_ipy", "safe_run_module", "ex",
    "ev", "magic", "system_raw", "getoutput", "transform_cell",
    # getattr by another name, and evaluating strings
    "setattr", "delattr", "attrgetter", "methodcaller", "operator", "exec", "read_pickle", "get_type_hints",
    "ForwardRef", "_eval_type", "string", "Formatter", "get_field", "sympy", "sympify", "parse_expr",
    "singledispatch", "singledispatchmethod", "register", "get_annotations",
    # objects that hand out the namespaces of the frames that call them (the notebook's, with the real built-ins),
    # functions that import a module by name (sys, builtins, the grading kit), and the real getattr as an attribute
    "computation", "Scope", "EvalEnvironment", "capture_context", "import_optional_dependency", "import_module",
    "import_item", "unpickle_function", "getattr",
    # copy's helper that sets the attributes it is given on the object a function returns (a module, say)
    "_reconstruct",
    # enum's helper that writes an Enum class's members into any module (module="sys": sys.setprofile; r15)
    "global_enum",
    # libraries' internal submodules (pd.core, np.core: pd.core.common.temp_setattr sets any attribute; r15)
    "core", "distutils",
    # library functions that get or set an attribute of their argument by a name given at run time (grader
    # adversarial r15's scan, dev/scan_setattr.py and dev/scan_getattr.py, over numpy, pandas, scipy, statsmodels,
    # matplotlib and hlmlib: every public function that calls setattr or getattr with a parameter as the name)
    "temp_setattr",             # pandas.core.common: setattr(obj, attr, value), restored only when the block ends
    "default_array_ufunc", "array_ufunc", "dispatch_ufunc_with_out", "dispatch_reduction_ufunc",  # pandas.core.
    # arraylike: getattr(ufunc, method)(...), any attribute of any object called
    "compute_dict_like",        # pandas.core.apply: getattr(column, op_name)
    "assert_attr_equal",        # pandas._testing: getattr(left, attr)
    "replace_method",           # numpy.distutils.ccompiler: setattr(klass, method_name, func)
    "add_newdoc",               # numpy: getattr(__import__(place), obj), any module imported by name
    "populate_wrapper",         # statsmodels.base.wrapper: setattr(klass, name, ...) for names of its argument
    "getp",                     # matplotlib.artist (plt.getp): getattr(obj, "get_" + property)()
    "do_event",                 # matplotlib.testing.widgets: getattr(tool, etype)(event)
} | REGISTRIES
# Libraries' internal submodules, refused as imports (as attributes: "core", "distutils" above); the book and the
# assignments use none of them (np.lib stays: np.lib.stride_tricks.sliding_window_view)
INTERNAL_SUBMODULES = ("pandas.core", "numpy.core", "numpy.distutils", "statsmodels.base", "matplotlib.testing")
# Functions that get or set attributes by names given as arguments, or build a class from a namespace: allowed only
# called directly, with the names the check can read (see _Checker.visit_Call); refused by getattr at run time
CHECKED_CALLS = {"update_wrapper", "wraps", "make_dataclass", "new_class"}
# The attribute names functools.update_wrapper copies by default (besides names without a leading underscore)
WRAPPER_NAMES = {"__module__", "__name__", "__qualname__", "__doc__", "__annotations__", "__dict__"}
FORMAT_METHODS = {"format", "format_map"}    # str's, which look attributes up by the names in the string
# The private attributes of modules a notebook may use (os._exit ends the kernel: a test of a crash needs it)
PRIVATE_ALLOWED = {"os._exit"}
# Private attributes that may be read on any object: hlmlib's mixed-model fit keeps its design (_y, _X, _Z and the
# group codes), which the book's case study reads (chapter 15); no module of the allowed libraries has these names
# but hlmlib.simulate, whose _codes only turns labels into codes
PRIVATE_READABLE = {"_y", "_X", "_Z", "_codes"}
# Enum's functional API (Enum("E", names)) makes a class with the attribute names it is given, dunders included
ENUM_CLASSES = {"Enum", "IntEnum", "Flag", "IntFlag", "StrEnum", "ReprEnum", "EnumMeta", "EnumType"}
FRAME_ATTRIBUTES = {"columns", "index", "name", "names"}    # data-frame attributes students set
# Refused names that are a library's public result fields (scipy's linregress(...).stderr), read on call results
RESULT_ATTRIBUTES = {"stderr", "stdout"}
# Submodules of allowed libraries named like a refused module: (library, name)
LIBRARY_SUBMODULES = {("scipy", "signal")}
ALLOWED_DUNDER_METHODS = {"__init__", "__repr__", "__str__", "__post_init__", "__len__", "__iter__", "__getitem__",
                          "__enter__", "__exit__"}
READABLE_DUNDERS = {"__version__", "__name__", "__doc__", "__qualname__", "__module__"}
ALLOWED_MODULE_SETTINGS = ("pd.options", "pandas.options", "plt.rcParams", "matplotlib.rcParams", "mpl.rcParams")
# The same settings by what they are, reached through any import (``from matplotlib import rcParams``,
# ``from pandas import options``, ``import matplotlib.pyplot as p``): see _Checker._a_setting
SETTING_OBJECTS = ("pandas.options", "matplotlib.rcParams", "matplotlib.pyplot.rcParams")
# matplotlib settings (rcParams keys, their last part as keywords of plt.rc or a Text) that name or feed a program it
# starts: ffmpeg, ImageMagick's convert, LaTeX, ghostscript (the kit refuses every process; a script the run wrote,
# named as the program, was one: grader adversarial r16)
PROGRAM_SETTINGS = {"ffmpeg_path", "convert_path", "ffmpeg_args", "convert_args", "usetex", "usedistiller",
                    "texsystem", "preamble"}
# Methods that change a container in place: called on something an imported module holds (os.environ.update,
# warnings.filters.insert, copy.dispatch_table.setdefault), they change that module's state (r16)
MUTATING_METHODS = {"append", "extend", "insert", "pop", "popitem", "clear", "remove", "update", "setdefault",
                    "discard", "add"}
CODE_MAGICS = {"time", "timeit"}           # magics whose argument is code: allowed, and their code is checked
STRING_CODE_METHODS = {"query", "eval"}    # pandas methods that evaluate a string
DUNDER = re.compile(r"^__[A-Za-z0-9]\w*__$")
DUNDER_INSIDE = re.compile(r"__[A-Za-z0-9]\w*__")
HISTORY = re.compile(r"^_i?\d+$")        # IPython's _i3 (a cell's source) and _3 (its result)
# What a notebook may import from IPython (none of it runs code or reaches the shell; IPython itself is refused)
IPYTHON_DISPLAY = {"display", "Markdown", "HTML", "Latex", "Math", "Image", "SVG", "JSON", "Pretty", "clear_output",
                   "display_markdown", "display_html", "display_latex", "display_pretty"}
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


class _NotRun(Exception):
    """A cell the grader does not run; the message says why."""


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


def _magic_call(node):
    """(kind, name, arguments) if ``node`` is IPython's translation of a magic or shell command, else None."""
    func = node.func
    if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name) and func.value.func.id == "get_ipython"
            and func.attr in ("run_line_magic", "run_cell_magic", "system", "getoutput")):
        args = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None for a in node.args]
        return func.attr, args
    return None


def _magic_code(kind: str, args: list) -> list[str]:
    """The code an allowed magic runs, as IPython would take it from its arguments; raises _NotRun otherwise."""
    if kind in ("system", "getoutput"):
        raise _NotRun("it runs a shell command")
    if not args or any(a is None for a in args) or len(args) != (2 if kind == "run_line_magic" else 3):
        raise _NotRun("it calls a magic in a way the check cannot read")
    name, line, cell = args[0].lstrip("%"), args[1], (args[2] if kind == "run_cell_magic" else None)
    if name == "matplotlib" and cell is None and line.strip() in ("", "inline"):
        return []
    if name in ("pinfo", "pinfo2") and cell is None:
        # %pinfo takes "pinfo x", "?x", "x?" as x (IPython's pinfo magic); with a * in it, it searches (%psearch)
        target = re.match(r"(pinfo )?(\?*)(.*?)(\??$)", line).group(3) if name == "pinfo" else line
        if name == "pinfo2" or "*" not in target:
            _help_lookup(target.strip())
            return []
        name = "psearch"
    if name == "psearch":
        raise _NotRun("its help line searches names by a pattern (*: IPython's %psearch), which the grader does not "
                      "run")
    if name == "time":
        return [c for c in (line, cell) if c is not None]
    if name == "timeit":
        try:
            _, statement = Magics.parse_options(_NoDefaults(), line, "n:r:tcp:qo", posix=False, strict=False,
                                                preserve_non_opts=True)
        except (UsageError, ValueError) as exc:
            raise _NotRun(f"the options of %timeit cannot be read ({exc})") from None
        return [statement] + ([cell] if cell is not None else [])
    raise _NotRun(f"it uses the magic %{name} (the grader runs only %time, %timeit, %matplotlib inline and obj?)")


def _help_lookup(target: str) -> None:
    """Raises _NotRun where IPython's help (``obj?``), which looks ``target`` up part by part (:func:`_help_parts`:
    an attribute by the real ``getattr``, a whole number between brackets by indexing) and then only documents what it
    finds, would reach what code may not: IPython's history (``In``, ``_oh``, ``_3``, as code may not: the last
    results ``_``, ``__`` may be read), a dunder name (but ``__doc__``, ``x.__class__.__name__`` and the others code
    may read), a private attribute (``exit._ip``, ``exit[_ip]``; hlmlib's fit's ``_X`` aside, as in code), or a
    refused attribute on the way (``warnings.sys.path``). The notebook's own names may be private (``_design?``), and
    the last name may be a refused one (``os.system?``, ``functools.wraps?``): it is only documented."""
    parts = None if target.startswith("%") else _help_parts(target)    # %x: a magic's help, nothing looked up
    if not parts:       # IPython looks nothing up
        return
    first, rest = parts[0], parts[1:]
    # x.__class__.__name__, which code may read (np.ones(2).__class__.__name__? is looked up from __class__ on)
    class_name = {n for n, part in enumerate(parts[:-1]) if part == "__class__" and parts[n + 1] in READABLE_DUNDERS}
    if _history_name(first):
        raise _NotRun(f"its help line ({target[:80]}?) reads IPython's history ({first}), which code may not")
    if DUNDER.match(first) and first != "__name__" and 0 not in class_name:
        raise _NotRun(f"its help line ({target[:80]}?) looks up {first[:60]}, which code may not")
    for n, part in enumerate(rest):
        if _whole_number(part) or n + 1 in class_name:
            continue
        dunder = DUNDER.match(part) is not None
        if (dunder and part not in READABLE_DUNDERS or not dunder and part.startswith("_")
                and part not in PRIVATE_READABLE):
            raise _NotRun(f"its help line ({target[:80]}?) looks up the attribute .{part[:60]}, which code may not")
        if part in FORBIDDEN_ATTRIBUTES and n < len(rest) - 1:
            raise _NotRun(f"its help line ({target[:80]}?) looks up the attribute .{part} on the way, which code "
                          "may not")


def _help_parts(target: str) -> list[str] | None:
    """The parts IPython's help looks ``target`` up by (``InteractiveShell._find_parts`` of the pinned IPython 8):
    ``a.b[0].c`` gives a, b, 0, c; any text between brackets is a part (looked up by ``getattr`` unless a whole
    number); None where it looks nothing up (a part that is not a name)."""
    parts = []
    for piece in target.split("."):
        if piece.endswith("]"):
            name, *indices = piece.split("[")
            if not name.isidentifier() or any(i[-1:] != "]" and not _whole_number(i[:-1]) for i in indices):
                return None
            parts += [name] + [i[:-1] for i in indices]
        elif piece.isidentifier():
            parts.append(piece)
        else:
            return None
    return parts


def _whole_number(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


class _NoDefaults:
    """Stands for the IPython Magics object that ``Magics.parse_options`` reads default options from."""
    options_table: dict = {}


class _Checker(ast.NodeVisitor):
    def __init__(self, imported: set[str], classes=frozenset(), methods=frozenset(), enums=frozenset(),
                 templates=frozenset(), own_classes=frozenset(), plain_classes=frozenset(), functions=frozenset(),
                 kinds=None):
        """``classes``: the names bound to the notebook's classes; ``methods``: the names of their methods;
        ``enums``: the names of Enum's classes and of the notebook's classes derived from them; ``templates``: the
        names the notebook binds only to constant strings (:func:`_constant_strings`); ``own_classes``: those bound
        to its classes only (:func:`_own_classes`); ``plain_classes``: those of them that derive from nothing but
        the notebook's classes, ``object`` and the built-in exceptions (:func:`_plain_classes`); ``functions``: the names
        bound to the notebook's own functions only (:func:`_own_functions`); ``kinds``: the names bound only to
        what :func:`_name_kinds` says (``"call"``, ``"instance"``, ``"scipy"``)."""
        self.own_classes, self.plain_classes, self.functions = own_classes, plain_classes, functions
        self.kinds = kinds or {}
        self.private_owner = []         # the name whose ._x may be used (a plain class's method's self), or None
        self.imported, self.problems, self.method_self = imported, [], []
        self.method_class = []          # the class of the method being read (None outside a method), innermost last
        self.classes, self.methods, self.enums, self.templates = classes, methods, enums | ENUM_CLASSES, templates
        self.scopes = ["module"]           # "class" where a class body's statements run, else "function" or "module"

    def flag(self, node, what):
        self.problems.append((getattr(node, "lineno", 0), what))

    def visit_Import(self, node):
        self._aliases(node)
        for alias in node.names:
            self._import(node, alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        self._aliases(node)
        self._import(node, "." * node.level + (node.module or ""), allowed=node.level == 0 and node.module ==
                     "IPython.display" and all(alias.name in IPYTHON_DISPLAY for alias in node.names))
        for alias in node.names:
            if (DUNDER.match(alias.name) or alias.name in FORBIDDEN_ATTRIBUTES | FORBIDDEN_NAMES | HISTORY_NAMES
                    or alias.name.startswith("_") or f"{node.module}.{alias.name}" in INTERNAL_SUBMODULES) \
                    and (node.module, alias.name) not in LIBRARY_SUBMODULES:
                self.flag(node, f"imports {alias.name}" + (REGISTRY_NOTE if alias.name in REGISTRIES else ""))
            elif alias.name in CHECKED_CALLS and alias.asname not in (None, alias.name):
                self.flag(node, f"imports {alias.name} under another name")

    def _aliases(self, node):
        for alias in node.names:
            if alias.asname in INJECTED_NAMES | FORBIDDEN_NAMES:
                self.flag(node, f"imports {alias.name} as {alias.asname}")

    def _import(self, node, name, allowed=False):
        if allowed:
            return
        if name.split(".")[0] not in ALLOWED_IMPORTS:
            self.flag(node, f"imports {name or 'a relative module'}, which is not on the list of allowed modules")
        elif any(part.startswith("_") for part in name.split(".")[1:]):
            self.flag(node, f"imports {name}, a private module")
        elif any(name == m or name.startswith(m + ".") for m in INTERNAL_SUBMODULES):
            self.flag(node, f"imports {name}, a library's internal module")

    def visit_Name(self, node):
        self._checked_call_used(node, node.id)
        if node.id == "property" and self.scopes[-1] != "class":
            self.flag(node, "makes a property outside a class body (where its name could be made at run time)")
        if (node.id in FORBIDDEN_NAMES or getattr(node, "_history_read", False)
                or DUNDER.match(node.id) and not (node.id == "__name__" and isinstance(node.ctx, ast.Load))):
            self.flag(node, f"uses {node.id}" + (" (IPython's history, unless the cell binds it before)"
                                                 if getattr(node, "_history_read", False) else ""))
        elif node.id in INJECTED_NAMES and not isinstance(node.ctx, ast.Load):
            self.flag(node, f"rebinds {node.id}")

    def visit_Constant(self, node):
        if isinstance(node.value, str) and node.value != "__main__" and DUNDER_INSIDE.search(node.value):
            self.flag(node, f"uses the string {node.value[:60]!r}")
        if isinstance(node.value, str) and _program_setting(node.value):
            self.flag(node, f"uses the matplotlib setting {node.value!r} (it names or feeds a program to start)")

    def _function(self, node):
        if DUNDER.match(node.name) and node.name not in ALLOWED_DUNDER_METHODS:
            self.flag(node, f"defines {node.name}")
        for name in (node.name, *(a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg))):
            if name in INJECTED_NAMES:
                self.flag(node, f"rebinds {name}")
        for annotation in [a.annotation for a in ast.walk(node.args) if isinstance(a, ast.arg)] + [node.returns]:
            self._annotation(annotation)
        for i, decorator in enumerate(node.decorator_list):          # evaluated where the function is defined
            if all(_wraps_call(d) for d in node.decorator_list[i:]):
                decorator._decorates_def = True    # @wraps(f), with no other decorator below: its wrapper is this def
            self.visit(decorator)
        self.method_self.append(getattr(node, "_self", None))    # set by visit_ClassDef for a method
        self.method_class.append(getattr(node, "_class", None))
        self.private_owner.append(getattr(node, "_owner", self._enclosing_owner()))
        self.scopes.append("function")
        for part in (node.args, node.returns, *node.body):
            if part is not None:
                self.visit(part)
        self.scopes.pop()
        self.method_self.pop()
        self.method_class.pop()
        self.private_owner.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_AnnAssign(self, node):
        self._annotation(node.annotation)
        self.generic_visit(node)

    def _annotation(self, node):
        """A string in an annotation (which typing.get_type_hints would evaluate as code): a type only, such as
        'np.ndarray', 'list[int]' or 'float | None'."""
        for constant in ast.walk(node) if node is not None else ():
            if (isinstance(constant, ast.Constant) and isinstance(constant.value, str)
                    and not _plain_type(constant.value)):
                self.flag(constant, f"has the string annotation {constant.value[:60]!r}, which is not a plain type "
                                    "name")

    def visit_ClassDef(self, node):
        for item in node.body:      # a method's first parameter is the only "self" whose attributes may be set
            if not isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            decorators = {_dotted(d) for d in item.decorator_list}
            first = item.args.args[0].arg if item.args.args and "staticmethod" not in decorators else None
            if first is not None and [name for name, _ in _bindings([item]) if name == first] != [first]:
                first = None           # the method binds its self again (self = np; for self in ...): not its own
            if first is not None and "classmethod" not in decorators:
                item._self, item._class = first, node.name
            # the private attributes of a plain class's self (or cls); its nested functions and lambdas see the same
            item._owner = first if node.name in self.plain_classes else None
        for part in (*node.decorator_list, *node.bases, *node.keywords):
            self.visit(part)
        self.scopes.append("class")
        for statement in node.body:
            self.visit(statement)
        self.scopes.pop()

    def _super_of_self(self, node) -> bool:
        """Whether ``node`` is ``super()`` or, in a method of the notebook's class ``C`` (bound to nothing else),
        ``super(C, self)``, ``self`` the method's first parameter."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
                and not node.keywords):
            return False
        if not node.args:
            return True
        return (len(node.args) == 2 and all(isinstance(a, ast.Name) for a in node.args) and bool(self.method_self)
                and node.args[0].id == self.method_class[-1] and node.args[0].id in self.own_classes
                and node.args[1].id == self.method_self[-1])

    def _enclosing_owner(self):
        return self.private_owner[-1] if self.private_owner else None

    def visit_Lambda(self, node):
        self.method_self.append(None)
        self.method_class.append(None)
        self.private_owner.append(self._enclosing_owner())
        self.scopes.append("function")
        self.generic_visit(node)
        self.scopes.pop()
        self.method_self.pop()
        self.method_class.pop()
        self.private_owner.pop()

    def _comprehension(self, node):
        self.scopes.append("function")
        self.generic_visit(node)
        self.scopes.pop()

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def _checked_call_used(self, node, name):
        """A function of CHECKED_CALLS used other than called directly (an alias would escape visit_Call)."""
        if name in CHECKED_CALLS and isinstance(node.ctx, ast.Load) and not getattr(node, "_callee", False):
            self.flag(node, f"uses {name} other than by calling it")

    def _enum_call(self, node, name):
        """Enum's functional API: the member names (a second argument, or ``names``) must be a constant string or a
        constant list or tuple of names (or of (name, value) pairs, or a dict) that are not dunders."""
        given = node.args[1:2] + [k.value for k in node.keywords if k.arg == "names"]
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords) \
                or not all(_constant_names(g) for g in given):
            self.flag(node, f"calls {name} with member names that are not constant, plain names (Enum's functional "
                            "API makes attributes by any name, dunders included)")
        module = [k.value for k in node.keywords if k.arg == "module"]
        if module and not (isinstance(module[0], ast.Constant) and module[0].value in ("__main__", None)
                           or isinstance(module[0], ast.Name) and module[0].id == "__name__"):  # which is "__main__"
            self.flag(node, f"calls {name} with a module other than the notebook's (its class then claims to be "
                            "another module's)")

    def _a_class(self, node) -> bool:
        """Whether ``node`` names one of the notebook's classes, or is ``type(...)``."""
        return ((isinstance(node, ast.Name) and node.id in self.classes)
                or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "type"))

    def visit_Attribute(self, node):
        self._checked_call_used(node, node.attr)
        if (isinstance(node.ctx, ast.Load) and node.attr in self.methods and self._a_class(node.value)
                and not getattr(node, "_called_with_self", False)):
            self.flag(node, f"takes the method .{node.attr} from its class (its self could then be any object, "
                            "such as a module)")
        if isinstance(node.ctx, ast.Load) and node.attr in READABLE_DUNDERS and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "__class__":
            node.value._class_name = True                # self.__class__.__name__: a string, not the class
        if ((DUNDER.match(node.attr) and not (node.attr in READABLE_DUNDERS and isinstance(node.ctx, ast.Load))
             and not getattr(node, "_base_call", False) and not getattr(node, "_class_name", False))
                or (node.attr in FORBIDDEN_ATTRIBUTES or node.attr.lstrip("_") in FORBIDDEN_ATTRIBUTES)  # _sys, _thread
                and not self._harmless_attribute(node)):
            self.flag(node, f"uses the attribute .{node.attr}" + (REGISTRY_NOTE if node.attr in REGISTRIES else ""))
        elif node.attr.startswith("_") and not DUNDER.match(node.attr) and not self._own_private(node):
            # a library's private helpers do what its public API does not (cbook._setattr_cm sets any attribute,
            # warnings._formatwarning_orig reads linecache, Enum._create_ makes members of any name), whatever the
            # expression that reaches them ([warnings][0]._x, w = warnings; w._x, f()._x)
            self.flag(node, f"uses {_dotted(node) or '.' + node.attr}, a private attribute (only self._x in a method "
                            "of the notebook's own class may be used)")
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            dotted = _dotted(node)
            own = (isinstance(node.value, ast.Name) and (self.method_self and node.value.id == self.method_self[-1]
                                                          or self.kinds.get(node.value.id) == "instance"))
            frame = node.attr in FRAME_ATTRIBUTES and dotted.split(".")[0] not in self.imported
            if not (own or frame or self._a_setting(dotted)):
                self.flag(node, f"sets {dotted or '.' + node.attr} (code may set only self.x in a method, a data "
                                f"frame's {', '.join(sorted(FRAME_ATTRIBUTES))}, and pandas or matplotlib options)")
        self.generic_visit(node)

    def _a_setting(self, dotted: str) -> bool:
        """Whether ``dotted`` is in pandas' or matplotlib's options (ALLOWED_MODULE_SETTINGS, SETTING_OBJECTS),
        spelled as a module's attribute (``pd.options.x``) or as a name imported from it (``from matplotlib import
        rcParams``) that the notebook binds by such imports only (``kinds``: ``rcParams = os.environ`` is not one)."""
        first, _, rest = dotted.partition(".")
        if dotted.startswith(ALLOWED_MODULE_SETTINGS) or self.kinds.get(first) == "setting":
            return True
        path = self.imported.get(first, "") if isinstance(self.imported, dict) else ""
        full = ".".join(filter(None, (path, rest)))
        return path not in SETTING_OBJECTS and any(full == s or full.startswith(s + ".") for s in SETTING_OBJECTS)

    def _containers(self, node) -> list[str]:
        """The parts of imported modules (not modules, not the options of :meth:`_a_setting`) that the expression
        ``node`` may evaluate to or index into: a dotted name rooted at an imported name, also inside ``or``/``and``,
        ``x if c else y``, list, tuple and set displays, subscripts, ``(n := ...)`` and ``*x`` (``(os.environ or
        {})``, ``[warnings.filters][0]``). A call's result is not followed (``np.zeros(3).tolist()`` is new)."""
        dotted = _dotted(node)
        if dotted:
            if dotted.split(".")[0] in self.imported and not self._a_setting(dotted) \
                    and not _a_module(dotted, self.imported):
                return [dotted]
            return []
        if isinstance(node, ast.BoolOp):
            parts = node.values
        elif isinstance(node, ast.IfExp):
            parts = [node.body, node.orelse]
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            parts = node.elts
        elif isinstance(node, (ast.Subscript, ast.NamedExpr, ast.Starred)):
            parts = [node.value]
        else:
            parts = []
        return [found for part in parts for found in self._containers(part)]

    def _harmless_attribute(self, node) -> bool:
        """A refused name that cannot reach what it is refused for: any, set or read, on an instance of the
        notebook's plain class (``self`` in its methods, or a name :func:`_name_kinds` calls an instance: ``c.ex``,
        ``self.system``); a read of ``.stderr``/``.stdout`` of a call's
        result or of a name bound only to calls' results (``stats.linregress(x, y).stderr``, a slope's standard
        error: only the ``sys`` module's lead to the streams, and ``sys`` cannot be reached as a value), and
        ``scipy.signal`` (signal processing, not the standard ``signal`` module)."""
        value = node.value
        if isinstance(value, ast.Name) and (self.kinds.get(value.id) == "instance"
                                            or value.id == self._enclosing_owner() is not None):
            return True    # the notebook's plain object: its attributes hold only what the notebook put there
        if not isinstance(node.ctx, ast.Load):
            return False
        if node.attr in RESULT_ATTRIBUTES:
            return isinstance(value, ast.Call) or isinstance(value, ast.Name) and self.kinds.get(value.id) in (
                "call", "instance")
        return (isinstance(value, ast.Name) and self.kinds.get(value.id) == "scipy"
                and ("scipy", node.attr) in LIBRARY_SUBMODULES)

    def _own_private(self, node) -> bool:
        """Whether the private attribute ``node`` is ``self._x`` (``cls._x``) in a method of one of the notebook's
        classes that derives from its own classes only (:func:`_plain_classes`), one of PRIVATE_ALLOWED, or a read
        of one of PRIVATE_READABLE."""
        return (_dotted(node) in PRIVATE_ALLOWED or node.attr in PRIVATE_READABLE and isinstance(node.ctx, ast.Load)
                or isinstance(node.value, ast.Name) and node.value.id == self._enclosing_owner() is not None)

    def visit_Subscript(self, node):
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            for dotted in self._containers(node.value):
                self.flag(node, f"changes {dotted}, part of an imported module")
        self.generic_visit(node)

    def visit_Call(self, node):
        magic = _magic_call(node)
        if magic is not None:       # get_ipython().run_line_magic("time", "code") and friends, after transformation
            try:
                for code in _magic_code(*magic):
                    self.problems += _check_code(code, self.imported, self.classes, self.methods,
                                                 self.enums - ENUM_CLASSES, self.templates, self.own_classes,
                                                 self.plain_classes, self.functions, self.kinds)
            except _NotRun:
                pass                # such a cell does not run (see not_run)
            return
        func = node.func
        if (isinstance(func, ast.Attribute) and node.args and isinstance(node.args[0], ast.Name)
                and self.method_self and node.args[0].id == self.method_self[-1]):
            func._called_with_self = True            # Base.method(self, ...) in a subclass's method
        if isinstance(func, ast.Attribute) and func.attr in ALLOWED_DUNDER_METHODS and (
                (self._super_of_self(func.value))
                or (getattr(func, "_called_with_self", False) and isinstance(func.value, ast.Name)
                    and func.value.id in self.own_classes)):
            func._base_call = True       # super().__init__(...), Base.__init__(self, ...): called, on self only
        if (isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2
                and self._a_class(node.args[0]) and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in self.methods):
            self.flag(node, f"takes the method {node.args[1].value!r} from its class with getattr")
        if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2:
            name = _constant_string(node.args[1])
            if name is not None and name.startswith("_") and not DUNDER.match(name):    # as the kit's getattr does
                self.flag(node, f"uses getattr(..., {name[:60]!r}), a private attribute")
        if isinstance(func, ast.Name) and func.id == "type" and len(node.args) == 3:
            self.flag(node, "builds a class with type(name, bases, namespace)")
        if isinstance(func, ast.Attribute) and func.attr in STRING_CODE_METHODS:
            self._string_code(node, f".{func.attr}()")
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if isinstance(func, ast.Attribute) and func.attr in MUTATING_METHODS:
            for receiver in self._containers(func.value):
                self.flag(node, f"calls {receiver}.{func.attr}(), which changes part of an imported module")
        for keyword in node.keywords:
            if keyword.arg in PROGRAM_SETTINGS:
                self.flag(node, f"passes the matplotlib setting {keyword.arg} (it names or feeds a program to start)")
        if name in CHECKED_CALLS:
            func._callee = True
            self._checked_call(node, name)
        if name in self.enums:
            self._enum_call(node, name)
        elif isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "type":
            self._enum_call(node, "the class of an object")          # type(Color.RED)("E", names)
        if name in FORMAT_METHODS and isinstance(func, ast.Attribute):
            unbound = _dotted(func.value) == "str" and node.args         # str.format(template, ...)
            text = node.args[0] if unbound else func.value
            problem = _format_problem(text, self.templates)
            if problem == UNREADABLE and all(_inert(a) for a in node.args[1 if unbound else 0:]) \
                    and all(k.arg is not None and _inert(k.value) for k in node.keywords):
                problem = None       # whatever the string, its fields can look up only constants' attributes
            if problem:
                self.flag(node, f"calls .{name}() on {problem} (it looks attributes up by the names in it)")
        self.generic_visit(node)

    def _checked_call(self, node, name):
        """update_wrapper and wraps with no names but constant ones (see WRAPPER_NAMES), make_dataclass with no
        namespace, and no new_class: the attributes they get, set or define are then the ones the check reads."""
        if name == "new_class" or any(isinstance(a, ast.Starred) for a in node.args) \
                or any(k.arg is None for k in node.keywords):
            self.flag(node, f"calls {name} in a way the check cannot read")
        elif name == "make_dataclass" and any(k.arg == "namespace" for k in node.keywords):
            self.flag(node, "calls make_dataclass with a namespace (attributes by names made at run time)")
        elif name in ("update_wrapper", "wraps"):
            # the wrapper, whose attributes are set, must be the notebook's own function: update_wrapper(os, holder,
            # assigned=("fspath",)) would set os.fspath (grader adversarial r14)
            wrapper = (node.args[:1] + [k.value for k in node.keywords if k.arg == "wrapper"])[:1]
            if name == "wraps" and not getattr(node, "_decorates_def", False):
                self.flag(node, "calls wraps other than as the decorator of a def (@wraps(f) or @functools.wraps(f))")
            elif name == "update_wrapper" and not (wrapper and isinstance(wrapper[0], ast.Name)
                                                   and wrapper[0].id in self.functions):
                self.flag(node, "calls update_wrapper on a wrapper that is not a function the notebook defines with "
                                "def (it sets the wrapper's attributes)")
            first = 2 if name == "update_wrapper" else 1           # the names come after the wrapper and the wrapped
            for names in node.args[first:] + [k.value for k in node.keywords if k.arg in ("assigned", "updated")]:
                if not (isinstance(names, (ast.Tuple, ast.List)) and all(
                        isinstance(n, ast.Constant) and type(n.value) is str and wrapper_name(n.value, ())
                        for n in names.elts)):
                    self.flag(node, f"calls {name} with attribute names that are not constant, plain names")

    def _string_code(self, node, where):
        """A pandas query or eval string: a constant, without the names the check refuses."""
        text = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "expr"), None)
        if not (isinstance(text, ast.Constant) and isinstance(text.value, str)):
            self.flag(node, f"passes {where} a string the check cannot read")
            return
        self._tokens(node, text.value, where)

    def _tokens(self, node, text, where):
        bad = set(IDENTIFIER.findall(text)) & (FORBIDDEN_NAMES | HISTORY_NAMES | FORBIDDEN_ATTRIBUTES | {"getattr"})
        if bad or "__" in text:
            self.flag(node, f"{where} evaluates {sorted(bad) or ['a dunder name']}")


class _FormulaChecker(_Checker):
    """Also checks strings that look like model formulas ("y ~ x"), which formulaic and patsy evaluate as code."""

    def visit_Constant(self, node):
        super().visit_Constant(node)
        if isinstance(node.value, str) and "~" in node.value:
            self._tokens(node, node.value, "a formula")


_TYPE_NODES = (ast.Expression, ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.List, ast.Constant, ast.Load,
               ast.BinOp, ast.BitOr)


def _plain_type(text: str) -> bool:
    """Whether ``text`` is a type expression only: names and attributes (no dunder), subscripts, tuples, lists,
    constants and ``|``, strings inside being plain types too."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return False
    return all(isinstance(n, _TYPE_NODES)
               and not (isinstance(n, ast.BinOp) and not isinstance(n.op, ast.BitOr))
               and "__" not in getattr(n, "id", getattr(n, "attr", ""))
               and not (isinstance(n, ast.Constant) and isinstance(n.value, str) and not _plain_type(n.value))
               for n in ast.walk(tree))


def _constant_names(node) -> bool:
    """Whether ``node`` is a constant string, or a list, tuple or set of constant strings or (constant string,
    value) pairs, or a dict with constant string keys, no name a dunder (Enum's member names)."""
    def plain(n):
        return isinstance(n, ast.Constant) and type(n.value) is str and "__" not in n.value

    if plain(node):
        return True
    if isinstance(node, ast.Dict):
        return all(k is not None and plain(k) for k in node.keys)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return all(plain(e) or (isinstance(e, (ast.Tuple, ast.List)) and len(e.elts) == 2 and plain(e.elts[0]))
                   for e in node.elts)
    return False


def _constant_string(node) -> str | None:
    """The value of a constant string, or of a concatenation of them (``"beta " + "{:.2f}"``), else None."""
    if isinstance(node, ast.Constant) and type(node.value) is str:
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _constant_string(node.left), _constant_string(node.right)
        return None if left is None or right is None else left + right
    return None


def _constant_strings_of(node) -> list[str] | None:
    """The values a constant string expression may take: :func:`_constant_string`'s, or either branch of a
    conditional expression of them (``"{:.3f}" if c else "{:.2f}"``), else None."""
    if isinstance(node, ast.IfExp):
        body, orelse = _constant_strings_of(node.body), _constant_strings_of(node.orelse)
        return None if body is None or orelse is None else body + orelse
    text = _constant_string(node)
    return None if text is None else [text]


UNREADABLE = "a string the check cannot read"


def _inert(node) -> bool:
    """Whether ``node`` is a constant (a number, string, bytes, True, False, None) or a tuple, list, set or dict
    display of them: what a format string's fields can then reach (through attributes and items, never a call) are
    built-in types and their slots, not a function's globals or a module."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return isinstance(node.operand, ast.Constant)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_inert(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _inert(k) for k in node.keys) and all(_inert(v) for v in node.values)
    return False


def _format_problem(node, templates) -> str | None:
    """Why ``.format`` may not be called on ``node``, or None: it must be a constant string (or a concatenation of
    them, or a conditional expression choosing between such), or a name the notebook binds only to such strings
    (``templates``: the name's every value), and its fields may not look up attributes or items (``{0.x}``,
    ``{0[k]}``, in a format spec too). Its caller lets an unreadable one through when it is given constants only."""
    texts = _constant_strings_of(node)
    if texts is None and isinstance(node, ast.Name):
        texts = templates.get(node.id)
    if texts is None:
        return UNREADABLE
    for text in texts:
        if not _plain_fields(text):
            return f"the string {text[:60]!r}, whose fields look up attributes or items"
    return None


def _plain_fields(text: str) -> bool:
    """Whether the format string ``text`` parses and its fields (those in format specs too) are plain names or
    numbers (no ``.`` or ``[``)."""
    import string
    try:
        for _, field, spec, _ in string.Formatter().parse(text):
            if field is not None and ("." in field or "[" in field):
                return False
            if spec and not _plain_fields(spec):
                return False
    except ValueError:
        return False
    return True


def _constant_strings(trees) -> dict[str, list[str]]:
    """The names the notebook binds only by plain assignments (``row = "{:<12}"``, ``row: str = "a" + "b"``) of
    constant strings (:func:`_constant_strings_of`), with every value each takes; a name bound any other way anywhere
    (a loop, a parameter, an import, unpacking, ``+=``) is not one."""
    values: dict[str, list[str]] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                texts = _constant_strings_of(node.value)
                for target in targets:
                    if isinstance(target, ast.Name) and texts is not None:
                        values.setdefault(target.id, []).extend(texts)
                        target._constant = True
    other = {name for name, where in _bindings(trees) if not getattr(where, "_constant", False)}
    return {name: texts for name, texts in values.items() if name not in other}


def _bindings(trees):
    """(name, the node that binds it) for every way the notebook binds a name: assignment and deletion targets,
    parameters, definitions, imports, ``except ... as``, match captures, ``global`` and ``nonlocal``."""
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                yield node.id, node
            elif isinstance(node, ast.arg):
                yield node.arg, node
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield node.name, node
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                yield from (((a.asname or a.name).split(".")[0], node) for a in node.names)
            elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
                yield node.name, node
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                yield from ((name, node) for name in node.names)


def _own_classes(trees) -> frozenset:
    """The names the notebook binds to its classes and to nothing else (so ``Base.__init__`` is its class's)."""
    bindings = list(_bindings(trees))
    return frozenset({n for n, where in bindings if isinstance(where, ast.ClassDef)}
                     - {n for n, where in bindings if not isinstance(where, ast.ClassDef)})


def _name_kinds(trees, plain_classes: frozenset) -> dict[str, str]:
    """The names the notebook binds one way only (every binding of them, in every cell): ``"instance"``, by
    ``x = C(...)`` with ``C`` one of its plain classes (:func:`_plain_classes`) decorated by nothing but
    ``dataclasses``' ``dataclass`` (so ``x`` holds an instance of ``C``, whose attributes may be set); ``"call"``,
    by ``x = f(...)`` (a call's result); ``"scipy"``, by ``import scipy`` (``as x``); ``"setting"``, by importing
    pandas' or matplotlib's options (``from matplotlib import rcParams``: SETTING_OBJECTS). Names with a leading
    underscore and built-in names are none of them (IPython's ``_`` holds the last output, which may be a module)."""
    bound = list(_bindings(trees))
    decorated = {node.name for tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                 and not all(_dataclass_decorator(d, bound) for d in node.decorator_list)}
    instances = plain_classes - decorated

    def kind(name, where):
        parent = getattr(where, "_assigned", None)
        if isinstance(where, ast.Import) and any(a.name == "scipy" and a.asname == name or a.asname is None
                                                 and a.name.split(".")[0] == "scipy" == name for a in where.names):
            return "scipy"
        if isinstance(where, ast.ImportFrom) and any((a.asname or a.name) == name and f"{where.module}.{a.name}"
                                                     in SETTING_OBJECTS for a in where.names):
            return "setting"
        if isinstance(parent, ast.Call):
            return "instance" if isinstance(parent.func, ast.Name) and parent.func.id in instances else "call"
        return None

    for tree in trees:             # the value a plain name is assigned (x = ..., x: T = ..., (x := ...))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        target._assigned = node.value
    kinds: dict[str, set] = {}
    for name, where in bound:
        kinds.setdefault(name, set()).add(kind(name, where))
    return {name: k.pop() for name, k in kinds.items() if len(k) == 1 and None not in k
            and not name.startswith("_") and not hasattr(builtins, name) and name not in INJECTED_NAMES}


def _dataclass_decorator(node, bound) -> bool:
    """Whether ``node`` is ``dataclass``, ``dataclasses.dataclass`` or a call of either, the name bound only by
    ``from dataclasses import dataclass`` or ``import dataclasses``."""
    node = node.func if isinstance(node, ast.Call) else node
    name = _dotted(node)
    if name not in ("dataclass", "dataclasses.dataclass") or isinstance(node, ast.Attribute) and not isinstance(
            node.value, ast.Name):
        return False
    root = name.split(".")[0]
    return all(isinstance(where, (ast.Import, ast.ImportFrom)) and (
        where.module == "dataclasses" if isinstance(where, ast.ImportFrom) else True)
        and all(a.name == "dataclasses" and a.asname is None if isinstance(where, ast.Import) else
                a.name == "dataclass" and a.asname is None for a in where.names if (a.asname or a.name) == root)
        for n, where in bound if n == root)


def _own_functions(trees) -> frozenset:
    """The names the notebook binds to its functions (``def``) and to nothing else, the functions having no decorator
    but ``@wraps(...)`` (which returns the function): such a name holds a function of the notebook's."""
    bindings = list(_bindings(trees))
    return frozenset({n for n, where in bindings if isinstance(where, (ast.FunctionDef, ast.AsyncFunctionDef))}
                     - {n for n, where in bindings if not isinstance(where, (ast.FunctionDef, ast.AsyncFunctionDef))
                        or not all(_wraps_call(d) for d in where.decorator_list)})


def _wraps_call(node) -> bool:
    """Whether ``node`` is ``wraps(...)`` or ``functools.wraps(...)``."""
    return isinstance(node, ast.Call) and _dotted(node.func) in ("wraps", "functools.wraps")


def _plain_classes(trees, own: frozenset) -> frozenset:
    """The notebook's classes (bound to classes only) all of whose definitions have no keywords (a metaclass) and
    derive from nothing but such classes, ``object`` and the built-in exceptions the notebook does not rebind: in
    their methods ``self`` holds no private attribute of a library's (a subclass of ``warnings.catch_warnings`` has
    ``self._module``)."""
    bound = {name for name, _ in _bindings(trees)}
    builtin = {"object"} | {name for name, value in vars(builtins).items()
                            if isinstance(value, type) and issubclass(value, BaseException)}
    definitions: dict[str, list] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name in own:
                definitions.setdefault(node.name, []).append(node)
    # a worklist over the bases (linear in the classes): a class waits for its own classes among its bases, and is
    # plain once none is left (a class of a metaclass, of an expression or of another name is never plain)
    waiting: dict[str, set] = {}
    for name, nodes in definitions.items():
        needs, possible = set(), True
        for node in nodes:
            for base in node.bases:
                if node.keywords or not isinstance(base, ast.Name):
                    possible = False
                elif not (base.id in builtin and base.id not in bound):
                    needs.add(base.id)
            possible = possible and not node.keywords
        if possible:
            waiting[name] = needs
    dependents: dict[str, list] = {}
    for name, needs in waiting.items():
        for base in needs:
            dependents.setdefault(base, []).append(name)
    ready = [name for name, needs in waiting.items() if not needs]
    plain = set()
    while ready:
        name = ready.pop()
        plain.add(name)
        for dependent in dependents.get(name, ()):
            waiting[dependent].discard(name)
            if not waiting[dependent] and dependent not in plain:
                ready.append(dependent)
    return frozenset(plain)


def wrapper_name(name: str, forbidden=FORBIDDEN_ATTRIBUTES) -> bool:
    """Whether functools.update_wrapper may copy the attribute ``name``: one it copies by default, or a name without
    a leading underscore that the check does not refuse."""
    return name in WRAPPER_NAMES or not (name.startswith("_") or name in forbidden)


def _imported_names(tree) -> dict[str, str]:
    """The names the imports bind, each with what it names (``np``: ``numpy``, ``dispatch_table``:
    ``copy.dispatch_table``; ``import os.path`` binds ``os``)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.asname: a.name for a in node.names if a.asname}
            names |= {a.name.split(".")[0]: a.name.split(".")[0] for a in node.names if not a.asname}
        elif isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name: f"{node.module}.{a.name}" for a in node.names}
    return names


def _a_module(dotted: str, imported: dict[str, str]) -> bool:
    """Whether ``dotted`` (rooted at an imported name) is a module of an allowed library (``np.char``, whose
    ``add`` is a function, not a container's method): the module is imported here, in the grader, to see."""
    first, _, rest = dotted.partition(".")
    path = imported.get(first, "")
    if path.split(".")[0] not in ALLOWED_IMPORTS:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")              # a library's deprecated alias
            value = importlib.import_module(path.split(".")[0])
            for part in (*path.split(".")[1:], *filter(None, rest.split("."))):
                value = getattr(value, part)
    except Exception:                                    # not there: not a module
        return False
    return isinstance(value, types.ModuleType)


def _program_setting(text: str) -> bool:
    """Whether ``text`` is a matplotlib setting that names or feeds a program (see PROGRAM_SETTINGS)."""
    group, _, key = text.rpartition(".")
    return bool(group) and (key in PROGRAM_SETTINGS or key.endswith("_path") and group == "animation")


def _parse(source: str):
    """The AST of a cell as IPython runs it: magics transformed, top-level ``await`` allowed."""
    return compile(TransformerManager().transform_cell(source), "<cell>", "exec",
                   flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)


def _classes_and_methods(trees) -> tuple[frozenset, frozenset]:
    """The names bound to the notebook's classes (their own names, and plain aliases ``B = Box``), and the names
    of the methods they define (not static or class methods)."""
    classes, methods, aliases = set(), set(), []
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                classes.add(node.name)
                methods |= {item.name for item in node.body if isinstance(item, (ast.FunctionDef,
                                                                                 ast.AsyncFunctionDef))
                            and not any(_dotted(d) in ("staticmethod", "classmethod") for d in item.decorator_list)}
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and isinstance(node.value, ast.Name):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                aliases += [(t.id, node.value.id) for t in targets if isinstance(t, ast.Name)]
    while True:
        new = {name for name, value in aliases if value in classes} - classes
        if not new:
            return frozenset(classes), frozenset(methods)
        classes |= new


def _enum_classes(trees) -> frozenset:
    """The notebook's classes derived, directly or not, from Enum's (``class Color(enum.Enum)``)."""
    bases = {node.name: {_dotted(b).split(".")[-1] for b in node.bases}
             for tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    found = set(ENUM_CLASSES)
    while True:
        new = {name for name, parents in bases.items() if parents & found} - found
        if not new:
            return frozenset(found - ENUM_CLASSES)
        found |= new


def _history_name(name: str) -> bool:
    return name in HISTORY_NAMES or HISTORY.match(name) is not None


class _HistoryReads:
    """Marks (``_history_read``) each read of a history name (HISTORY_NAMES, ``_i3``, ``_3``) that may find IPython's
    value rather than the notebook's own: at a cell's top level, a read the cell's statements before it do not
    surely bind (IPython rebinds ``_i`` and its kind between cells, so a binding in an earlier cell does not count);
    in a function, a read of a name that neither it nor an enclosing function binds (a local is never looked up in
    the namespace). A loop's target counts as bound in its body, and after it if the loop surely runs
    (:func:`_never_empty`); a name bound in one branch of an ``if``, a loop's body or a ``try`` does not after it.
    A class body is no scope for what is inside it: its comprehensions, lambdas and functions see only the enclosing
    functions' locals; in a function, a name the class body binds is the class's (a read before the class binds it
    finds the global), and a name a function declares ``global`` is not its enclosing function's."""

    def __init__(self):
        self.enclosing = []            # the locals of the functions being read, innermost last
        self.in_class = [False]        # whether the innermost scope being read is a class body

    def block(self, statements, bound: frozenset, function: bool = False) -> frozenset:
        for statement in statements:
            bound = self.statement(statement, bound, function)
        return bound

    def statement(self, node, bound, function):
        def stored(*targets):
            return frozenset(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)
                             and not isinstance(n.ctx, ast.Load))

        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for part in [node.value, *targets, getattr(node, "annotation", None)]:
                self.expression(part, bound, function)
            return bound | stored(*targets) if node.value is not None else bound
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and _history_name(node.target.id) \
                and node.target.id not in bound:
            node.target._history_read = True         # read before it is written
        if isinstance(node, (ast.For, ast.AsyncFor)):
            self.expression(node.iter, bound, function)
            self.expression(node.target, bound, function)
            self.block(node.body, bound | stored(node.target), function)
            self.block(node.orelse, bound, function)
            return bound | stored(node.target) if _never_empty(node.iter) else bound
        if isinstance(node, ast.While):
            self.expression(node.test, bound, function)
            self.block(node.body, bound, function)
            self.block(node.orelse, bound, function)
            return bound
        if isinstance(node, ast.If):
            self.expression(node.test, bound, function)
            return self.block(node.body, bound, function) & self.block(node.orelse, bound, function)
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.expression(item.context_expr, bound, function)
                if item.optional_vars is not None:
                    self.expression(item.optional_vars, bound, function)
                    bound = bound | stored(item.optional_vars)
            return self.block(node.body, bound, function)
        if isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            after = self.block(node.body, bound, function)
            for handler in node.handlers:
                self.expression(handler.type, bound, function)
                self.block(handler.body, bound | ({handler.name} if handler.name else set()), function)
            self.block(node.orelse, after, function)
            self.block(node.finalbody, bound, function)
            return bound
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for part in (*node.decorator_list, *getattr(node, "bases", ()), *getattr(node, "keywords", ()),
                         getattr(node, "args", None), getattr(node, "returns", None)):
                self.expression(part, bound, function)
            if isinstance(node, ast.ClassDef):
                own = frozenset(_class_bindings(node))
                self.in_class.append(True)
                self.block(node.body, bound - own if function else bound, function)
                self.in_class.pop()
            else:
                self.function(node)
            return bound | {node.name}
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return bound | {(a.asname or a.name).split(".")[0] for a in node.names}
        if isinstance(node, ast.Match):
            self.expression(node.subject, bound, function)
            for case in node.cases:
                self.expression(case.guard, bound | stored(case.pattern), function)
                self.block(case.body, bound | {n.name for n in ast.walk(case.pattern)
                                               if isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name}, function)
            return bound
        for child in ast.iter_child_nodes(node):
            self.expression(child, bound, function)
        return bound

    def function(self, node) -> None:
        """A function's (or lambda's) body: its own locals, and those of the functions around it (not what a flow
        bound there: a global, read when the function is called, may be IPython's again), are bound."""
        local, declared = set(), set()
        for n in _scope_nodes(node):
            if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
                local.add(n.id)
            elif isinstance(n, ast.arg):
                local.add(n.arg)
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n is not node:
                local.add(n.name)
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                local |= {(a.asname or a.name).split(".")[0] for a in n.names}
            elif isinstance(n, ast.ExceptHandler) and n.name:
                local.add(n.name)
            elif isinstance(n, ast.Global):
                declared |= set(n.names)
        bound = ((self.enclosing[-1] if self.enclosing else frozenset()) | local) - declared
        self.enclosing.append(bound)
        self.in_class.append(False)
        if isinstance(node, ast.Lambda):
            self.expression(node.body, bound, True)
        else:
            self.block(node.body, bound, True)
        self.in_class.pop()
        self.enclosing.pop()

    def expression(self, node, bound, function: bool = False) -> None:
        if node is None:
            return
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load) and _history_name(node.id) and node.id not in bound:
                node._history_read = True
        elif isinstance(node, ast.Lambda):
            self.expression(node.args, bound, function)
            self.function(node)
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            targets = frozenset(n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name))
            if self.in_class[-1]:       # a class's names are not seen in its comprehensions
                bound = self.enclosing[-1] if self.enclosing else frozenset()
            self.in_class.append(False)
            for child in ast.iter_child_nodes(node):
                self.expression(child, bound | targets, function)
            self.in_class.pop()
        else:
            for child in ast.iter_child_nodes(node):
                self.expression(child, bound, function)


def _never_empty(node) -> bool:
    """Whether a loop over ``node`` surely runs: ``range(k)`` with a constant k >= 1, or a non-empty display."""
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return bool(node.elts) and not any(isinstance(e, ast.Starred) for e in node.elts)
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Constant)
            and type(node.args[0].value) is int and node.args[0].value >= 1)


def _class_bindings(node):
    """The names a class body binds in its own scope (not in the functions, classes and comprehensions in it)."""
    holder = ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
                        body=node.body)
    for n in _scope_nodes(holder):
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            yield n.id
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield n.name
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            yield from ((a.asname or a.name).split(".")[0] for a in n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            yield n.name


def _scope_nodes(function):
    """The nodes of a function's own scope: its parameters and body, not those of the functions, lambdas,
    classes and comprehensions inside it (their names and defaults are)."""
    stack = [function.args] + (list(function.body) if isinstance(function.body, list) else [function.body])
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack += [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None),
                      *getattr(node, "decorator_list", ())]
        elif isinstance(node, ast.ClassDef):
            stack += [*node.decorator_list, *node.bases]
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            stack.append(node.generators[0].iter)
        else:
            stack += list(ast.iter_child_nodes(node))


def _check_code(source: str, imported: set[str], classes=frozenset(), methods=frozenset(), enums=frozenset(),
                templates=None, own_classes=frozenset(), plain_classes=frozenset(),
                functions=frozenset(), kinds=None) -> list[tuple[int, str]]:
    try:
        tree = _parse(source)
    except (SyntaxError, ValueError):
        return []          # not checked, and not run either: see not_run()
    _HistoryReads().block(tree.body, frozenset())
    checker = _FormulaChecker(imported, classes, methods, enums, templates or {}, own_classes, plain_classes,
                              functions, kinds)
    checker.visit(tree)
    return checker.problems


def check_cells(cells: list[tuple[int, str]]) -> list[str]:
    """Problems in the student's code cells that run, given as (cell number in the submission, source) pairs."""
    imported, trees = {}, []
    for _, source in cells:
        try:
            trees.append(_parse(source))
        except (SyntaxError, ValueError):
            continue
        imported |= _imported_names(trees[-1])
    classes, methods = _classes_and_methods(trees)
    enums, templates, own = _enum_classes(trees), _constant_strings(trees), _own_classes(trees)
    plain, functions = _plain_classes(trees, own), _own_functions(trees)
    kinds = _name_kinds(trees, plain)
    return [f"cell {n}, line {line}: {what}" for n, source in cells
            for line, what in _check_code(source, imported, classes, methods, enums, templates, own, plain,
                                          functions, kinds)]


MAGIC_NESTING = 3       # %time of %time of ... code: deeper, a cell is not run (each level is parsed again)
REASON_LIMIT = 300      # characters of a reason not to run a cell (it may quote the student's text)


def not_run(source: str) -> str | None:
    """Why the grader does not run this code cell, or None (see the module docstring), in at most REASON_LIMIT
    characters."""
    reason = _not_run(source, 0)
    return reason if reason is None or len(reason) <= REASON_LIMIT else reason[:REASON_LIMIT - 1] + "…"


def _not_run(source: str, depth: int) -> str | None:
    """:func:`not_run` of ``source``, the code of ``depth`` nested %time or %timeit magics."""
    try:
        tree = _parse(source)
    except (SyntaxError, ValueError) as exc:
        return f"it cannot be parsed ({type(exc).__name__}: {exc})"
    except (RecursionError, MemoryError):     # the parser's own limits: deep nesting, not the machine's memory
        return ("it nests an expression deeper than Python parses at its default recursion limit (Jupyter's "
                "kernel cannot run it either)")
    except Exception as exc:    # noqa: BLE001  (IPython's transformation failing, as in its kernel, which fails
        # that cell too: a RuntimeError past some 500 magics in a cell, an IndexError on x = %""")
        return f"IPython cannot transform it ({type(exc).__name__}: {exc})"
    for node in ast.walk(tree):
        magic = isinstance(node, ast.Call) and _magic_call(node)
        if magic:
            try:
                for code in _magic_code(*magic):
                    if depth == MAGIC_NESTING:
                        return f"it nests %time or %timeit more than {MAGIC_NESTING} deep"
                    reason = _not_run(code, depth + 1)
                    if reason:
                        return f"the code of a %time or %timeit: {reason}"
            except _NotRun as exc:
                return str(exc)
    return None


# The static check's worker follows the AST by recursion (ast.NodeVisitor), a few frames per level: it runs in a
# thread with a stack of WORKER_STACK bytes and Python's recursion limit raised to WORKER_RECURSION frames, far past
# what Jupyter's kernel compiles (about 1,000 levels), within the worker's time and memory limits (grader.py).
WORKER_RECURSION, WORKER_STACK = 100_000, 256 * 2 ** 20


def _depth(tree) -> int:
    """The number of levels of the AST ``tree``, on an explicit stack (no recursion)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack += [(child, level + 1) for child in ast.iter_child_nodes(node)]
    return deepest


def _deepest(cells: list[tuple[int, str]]) -> tuple[float, int]:
    """The number of levels of the deepest cell's AST (infinite for one nested deeper than Python parses at the
    recursion limit), and that cell's number."""
    levels = [(0, 0)]
    for n, source in cells:
        try:
            levels.append((_depth(_parse(source)), n))
        except RecursionError:
            levels.append((math.inf, n))
        except (SyntaxError, ValueError):
            continue
    return max(levels)


def check_deep_cells(cells: list[tuple[int, str]]) -> list[str]:
    """:func:`check_cells` in a thread with a stack of WORKER_STACK bytes and a recursion limit of WORKER_RECURSION.
    Code nested deeper than that (a cell under the grader's code size limit can be) is a plain problem, its depth
    named, not a RecursionError. Call it in a process of its own: the recursion limit is the process's."""
    outcome = []

    def check():
        try:
            outcome.append(check_cells(cells))
        except RecursionError:
            depth, n = _deepest(cells)
            outcome.append([f"cell {n}: an expression nested deeper than the static check follows ("
                            + ("deeper than Python parses" if depth == math.inf else f"{depth:,} levels")
                            + "; it follows some 30,000)"])
        except BaseException as exc:      # noqa: BLE001  (raised again below, in the worker's main thread)
            outcome.append(exc)

    sys.setrecursionlimit(WORKER_RECURSION)
    threading.stack_size(WORKER_STACK)
    worker = threading.Thread(target=check)
    try:
        worker.start()
    except RuntimeError:        # no room for its stack under the worker's address space limit
        raise MemoryError from None
    worker.join()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


if __name__ == "__main__":       # the grader's worker (grader.static_check): cells as JSON in, problems as JSON out
    import json
    if sys.argv[1:] == ["not-run"]:     # (grader.cells_not_run) sources in, not_run's reasons out
        json.dump([not_run(source) for source in json.load(sys.stdin)], sys.stdout)
    else:
        json.dump(check_deep_cells([(n, source) for n, source in json.load(sys.stdin)]), sys.stdout)
