"""The grader's side inside the kernel that runs a submission (imported by the first cell of a grading run).

The score does not rest on this module: a test's verdict is made by the grader outside the kernel, from the values
the test hands out with :func:`record`, compared with the values the instructor's solution gave in a reference
run (``grader.py``). What runs here is what must happen inside the kernel:

- :func:`setup`, before any student code: limits the size of a file the kernel writes (``RLIMIT_FSIZE``), removes
  the working directory from ``sys.path``, records the modules the tests use (a change to them is reported to the
  instructor; of ``sys``, its functions and ``modules``, ``path``, ``meta_path``, ``path_hooks``), gives the
  student's namespace a ``getattr``
  that refuses private and interpreter attributes, and installs an audit hook (PEP 578; Python has no way to
  remove one) that refuses, for the rest of the kernel's life: writing or creating files outside the run's own
  folder; reading anything but the folders the grader allows (the Python installation and its packages, hlmlib,
  read-only system data, the run's own folders: deny by default, so the repository, its ``.git`` included, and any
  other copy of the sources are refused; see :func:`_guard`); processes, signals, ``ctypes`` and ``cffi``,
  sockets, new code objects; code compiled from a string that the static check would refuse, or that is more than
  name look-ups when ``typing`` evaluates it as an annotation (:class:`_StringCode`); unpickling anything that
  names a global (``pickle.find_class``: ``np.load(allow_pickle=True)`` would otherwise hand the notebook any
  module's attribute) and ``marshal.load(s)`` outside the libraries; running code from files in the run's folder
  or importing with a changed ``sys.path``; and, except from this module, profilers and tracers. It also refuses
  starting threads from the notebook's code (Python 3.11 raises no audit event for them, so the functions that
  start them are replaced), since code in another thread would escape :func:`numpy_only`, and os's ``dir_fd``
  arguments (a path relative to a directory descriptor reaches the hook without its directory); and it replaces
  ``functools.update_wrapper`` by a version that copies only plain attribute names (:func:`_guard_update_wrapper`),
  and makes Enum's functional API refuse member names that are not plain names, and a ``module`` other than
  ``"__main__"``, and ``enum.global_enum``, called from the notebook (:func:`_guard_enum`).
  A refused operation raises :class:`Refused` (a ``PermissionError``) where it was attempted and is logged to a
  file outside the run's folder for the instructor's report.
- :func:`run_test` runs one instructor test in a copy of the student's namespace with the real built-ins; a test
  of a question that builds on an earlier answer runs with the instructor's version of that answer in place of the
  student's (so an earlier mistake is not counted twice). It sends ``done`` on the grader's channel when the test ran
  to the end, with a digest of the code it ran, which the grader compares with the test it sent (a wrapper that
  swallows the test's exception, or runs other code, gets no credit); before and after, it checks that
  ``sys.stdout`` and ``sys.stderr`` are still the kernel's own
  streams, unchanged (a change is sent to the grader, which flags the run). The grader's cells, which hold the tests'
  source and the instructor's code, are removed from ``linecache`` as they run, and a test's code is never put there
  (:func:`_forget_caller`).
- :func:`record` hands a value to the grader: it accepts numbers, strings, NumPy arrays of numbers or strings (the
  exact type, or NumPy's matrix: no other subclasses, no masked arrays), lists, tuples, dicts, and pandas Series and
  DataFrames of numbers (NumPy's dtypes, object included; not pandas' own extension dtypes), converts them to plain
  Python by C-level methods (no method of a student's object runs), and sends them as JSON on the grader's own
  channel (a file the notebook can neither read nor write a valid line to; see :func:`_channel`), never through the
  kernel's stdout. Only the test's own code may call it. A value of more than RECORD_ELEMENTS numbers or strings, or
  RECORD_LIMIT bytes, or past the channel's CHANNEL_LIMIT, is refused (a ValueError: the test fails); a write on the
  channel that fails ends it (:class:`ChannelFailed`).
- :func:`number` (for hidden tests) takes a student's number as ``float()`` does, for a list the test builds.
- :func:`numpy_only` (for hidden tests) runs code with the estimator packages made unavailable.

:func:`run_test`, :func:`record` and :func:`finish` are closures that :func:`setup` makes (:func:`_kit`): the
function that signs the channel's lines is held only there, in no module global and in no dict or attribute of one
(``_state`` holds nothing that writes to the channel).

None of this is a sandbox against code that gets past the static check (``integrity.py``) with full Python (raw
memory, say): such code can undo :func:`numpy_only`, the namespace copy and the audit hook itself (its state is
ordinary Python objects), and reach the signing function through those closures' ``__closure__``, a frame or the
interpreter's memory, and then sign records and ``done`` lines; nothing here detects that. What holds whatever the
notebook does is outside Python: the kernel runs in a sandbox (``sandbox.py``) in which the repository, the
instructor's sources, the reference values and the grader's other folders do not exist, as an unprivileged user
when the grader runs as root; so such code still has no solution to copy and cannot change the values the
instructor's solution gave, which decide the score.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import dis
import json
import keyword
import linecache
import math
import os
import re
import sys
import sysconfig
import threading
import types

# the modules whose replaced functions are reported: what the tests use, and what the kit's checks call (os and
# posixpath, which the kit binds at set-up all the same), and sys (SYS_WATCHED only: the kernel sets its other
# attributes, last_value and the like, as it runs)
WATCHED = ("numpy", "pandas", "scipy", "hlmlib", "math", "builtins", "gradingkit", "json", "os", "posixpath", "sys")
SYS_WATCHED = ("modules", "path", "meta_path", "path_hooks")     # and its public functions
# shared instances the tests use, whose own attributes are watched too: an attribute set on one (stats.t._ppf, by a
# library function that sets attributes by name) shadows its class's method (grader adversarial r15)
WATCHED_INSTANCES = (("scipy.stats", "t"), ("scipy.stats", "norm"), ("scipy.stats", "chi2"), ("scipy.stats", "f"))
# What the grader's channel takes (the tests' records are a few kilobytes; the grader holds what it reads in memory):
RECORD_ELEMENTS = 10_000        # numbers or strings in one recorded value
RECORD_LIMIT = 250_000          # bytes of one line (a record as JSON, signed)
CHANNEL_LIMIT = 2_000_000       # bytes of the whole channel, of which records may use all but CHANNEL_RESERVE:
CHANNEL_RESERVE = 200_000       # kept for the lines that say a test completed, what changed, and the end
REFUSAL_LOG_LIMIT = 200_000     # bytes of the log of refused operations (past it, refusals are not logged)
ESTIMATOR_PACKAGES = ("hlmlib", "statsmodels", "linearmodels", "sklearn")
_REAL_BUILTINS = builtins.__dict__.copy()
_MISSING = object()
_state: dict = {}


class Refused(PermissionError):
    """An operation the grader does not allow in a grading kernel."""


class ChannelFailed(RuntimeError):
    """The grader's channel could not be written (an OS error, such as a full disk, or the channel's size limit):
    the kit writes nothing more on it, and the grader ends the run's score there (not tampering)."""


def _refuse(what: str, write=os.write, dumps=json.encoder.encode_basestring_ascii, state=_state, refused=Refused):
    """Log ``what`` for the instructor's report (to a file outside the run's folder, up to REFUSAL_LOG_LIMIT bytes)
    and raise Refused. What it calls is bound when the kit is imported (before any student code): a notebook that
    replaced ``os.write`` would otherwise silence the log (grader adversarial r14)."""
    try:
        line = (dumps(what[:1000]) + "\n").encode()
        if state.get("log_used", 0) + len(line) <= REFUSAL_LOG_LIMIT:
            state["log_used"] = state.get("log_used", 0) + len(line)
            write(state["log_fd"], line)
    except (KeyError, OSError):
        pass
    raise refused(f"the grader does not allow {what}")


# --- the audit hook ----------------------------------------------------------------------------------------------

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_WRITES = {   # event: positions of the paths it writes, creates or removes
    "os.mkdir": (0,), "os.remove": (0,), "os.rmdir": (0,), "os.rename": (0, 1), "os.truncate": (0,),
    "os.chmod": (0,), "os.chown": (0,), "os.chflags": (0,), "os.lchflags": (0,), "os.utime": (0,),
    "os.setxattr": (0,), "os.removexattr": (0,), "shutil.rmtree": (0,), "shutil.chown": (0,),
    "shutil.copyfile": (1,), "shutil.copymode": (1,), "shutil.copystat": (1,), "shutil.make_archive": (0,),
    "shutil.unpack_archive": (1,), "os.mkfifo": (0,), "os.mknod": (0,),
}
_READS = {"os.listdir": 0, "os.scandir": 0, "os.walk": 0, "os.chdir": 0, "os.fwalk": 0}
_REFUSED = {  # event: what it is, in the report
    **dict.fromkeys(("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.startfile",
                     "pty.spawn"), "starting a process"),
    **dict.fromkeys(("os.kill", "os.killpg", "signal.pthread_kill"), "sending a signal"),
    **dict.fromkeys(("ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function",
                     "ctypes.cdata", "ctypes.cdata/buffer", "ctypes.addressof", "ctypes.PyObj_FromPtr",
                     "ctypes.string_at", "ctypes.wstring_at", "ctypes.set_exception", "sqlite3.enable_load_extension",
                     "sqlite3.load_extension"), "native code or raw memory"),
    **dict.fromkeys(("socket.__new__", "socket.bind", "socket.connect", "socket.getaddrinfo",
                     "socket.gethostbyname", "socket.gethostbyaddr", "socket.sendto", "socket.sendmsg",
                     "urllib.Request", "webbrowser.open"), "using the network"),
    "os.link": "making a hard link", "os.symlink": "making a symbolic link",
    "gc.get_referrers": "searching the interpreter's objects",
    "gc.get_referents": "searching the interpreter's objects", "gc.get_objects": "searching the interpreter's objects",
    # os.environ's setters call these: (os.environ or {}).update(...) passes the static check (grader adversarial r17)
    "os.putenv": "changing the environment", "os.unsetenv": "changing the environment",
    "resource.setrlimit": "changing the process's limits", "resource.prlimit": "changing the process's limits",
}
# what /proc may be read for: the list of processes, their states and the machine's (ipykernel, through psutil,
# reads them to stop its children when it shuts down), not a process's memory, environment or command line
_PROC_READABLE = re.compile(r"^/proc(/(stat|uptime|cpuinfo|meminfo)|/\d+(/task/\d+)?/(stat|statm|status))?$")
_NATIVE_MODULES = {"cffi", "_cffi_backend", "_testcapi", "_testinternalcapi", "_xxsubinterpreters", "_ctypes"}


# --- code compiled from a string ----------------------------------------------------------------------------------

_LOOKUP_OPS = frozenset({"RESUME", "NOP", "CACHE", "PUSH_NULL", "LOAD_NAME", "LOAD_GLOBAL", "LOAD_ATTR", "LOAD_CONST",
                         "BINARY_SUBSCR", "BUILD_TUPLE", "BUILD_LIST", "RETURN_VALUE", "RETURN_CONST"})
# Files whose compiling and running is exempt: the kernel compiling and running the notebook's cells (code the static
# check read), %time and %timeit; the parsing of a traceback's source to point at the error, and of an object's
# source for IPython's help (obj??), never run; and code that dataclasses and collections.namedtuple generate from
# field names
_KERNEL = ("IPython/core/compilerop.py", "IPython/core/interactiveshell.py", "IPython/core/async_helpers.py",
           "IPython/core/magics/execution.py", "traceback.py", "executing/executing.py", "IPython/core/oinspect.py")
_GENERATORS = ("dataclasses.py", "collections/__init__.py")
_PASS_THROUGH = ("ast.py", "codeop.py", "timeit.py")       # they compile or run for their caller
_TYPING = "typing.py"                                       # evaluates annotations for its caller
# names libraries put into the expressions they compile: pandas' @local variables, formulaic's state
_LIBRARY_NAMES = re.compile(r"^(__pd_eval_local_[A-Za-z]\w*|__FORMULAIC_(CONTEXT|METADATA|STATE|SPEC)__)$")
_HISTORY = re.compile(r"^_i?\d+$")                         # IPython's input and output history (_i3, _7)


class _StringCode:
    """The rules for code compiled from a string while a submission runs: a type annotation that
    ``typing.get_type_hints`` evaluates, a model formula's terms, a pandas ``query`` or ``eval`` expression, or any
    string a library compiles. The notebook's cells are compiled by IPython from the code the static check read;
    these strings the check may never have seen (one built at run time).

    Who asks is the first frame up the stack outside ``ast``, ``codeop``, ``timeit`` and ``typing`` (which compile
    or evaluate for their caller). Exempt: IPython compiling and running the notebook's cells, the grader's tests,
    the import system compiling a module's file outside the run's folder (:meth:`_module_source`), a library's module
    as it is imported (:meth:`_importing_a_library`), the parsing of tracebacks, and
    the code ``dataclasses`` and ``collections.namedtuple`` generate from field names (a data class's are checked
    to be identifiers first). Otherwise:

    - compiling (:meth:`check_compile`): the string (its syntax tree) may not import, use a name the static check
      refuses (``exec``, ``eval``, ``getattr``, ...) or a dunder name, an attribute that the check refuses (``sys``,
      ``modules``, ...) or that is private (except in an annotation, or of ``self``), a string with a dunder, nor
      build a class with ``type``;
    - running (:meth:`check_run`) code compiled from a string (its file name is not a path): a library (the
      standard library's or an installed package's code) runs it, since it passed the check above when compiled
      (formula terms, scipy's argument parsers, fontTools' table specifications); but an annotation that ``typing``
      evaluates, or code that anything else runs, only if it does nothing but look names and attributes up (no
      dunder, nor any the check refuses), subscript them and build tuples, lists or unions of them: what an
      annotation such as ``np.ndarray`` or ``list[int]`` compiles to.
    """

    def __init__(self, work, libraries, names, attributes):
        self.realpath = _path_resolver()              # bound now, as the audit hook's are

        def files(relative):
            return frozenset(self.realpath(os.path.join(folder, r)) for folder in libraries for r in relative)

        self.exempt = files(_KERNEL + _GENERATORS) | {self.realpath(__file__)}
        self.dataclasses = files(("dataclasses.py",))
        self.through, self.typing = files(_PASS_THROUGH + (_TYPING,)), files((_TYPING,))
        self.libraries = tuple(os.path.realpath(p) + os.sep for p in libraries)
        self.names, self.attributes, self.paths = frozenset(names), frozenset(attributes), {}
        self.work = os.path.realpath(work)

    def _file(self, frame) -> str:
        name = frame.f_code.co_filename
        if name not in self.paths:
            self.paths[name] = self.realpath(name) if name.startswith("/") else name
        return self.paths[name]

    def _requester(self, frame) -> tuple:
        """Who asks (see the class), its file, whether it is exempt, and whether typing asked for it."""
        annotation = False
        while frame is not None and self._file(frame) in self.through:
            annotation = annotation or self._file(frame) in self.typing
            frame = frame.f_back
        if frame is None:
            return None, "?", False, annotation
        where = self._file(frame)
        exempt = where in self.exempt or where.startswith("<frozen importlib") or self._importing_a_library(frame)
        return frame, where, exempt, annotation

    def _importing_a_library(self, frame) -> bool:
        """Whether ``frame`` is the import of a library's module: the module's top-level code, or library code it
        calls (mpmath and scipy generate functions as they are imported), no frame in between outside the libraries
        (the notebook's code cannot hand it a string)."""
        while frame is not None and self._file(frame).startswith(self.libraries):
            if frame.f_code.co_name == "<module>":
                return True
            frame = frame.f_back
        return False

    def check_compile(self, source, filename, frame) -> None:
        frame, where, exempt, annotation = self._requester(frame)
        if where in self.dataclasses and not self._dataclass_fields_are_names(frame):
            _refuse(f"a data class whose field names are not identifiers (in {where})")
        if where.startswith("<frozen importlib"):
            exempt = self._module_source(source, filename)
        problem = None if exempt else self.problem(source, private=annotation)
        if problem:
            text = (source.decode("utf-8", "replace") if isinstance(source, bytes) else source
                    if isinstance(source, str) else "a syntax tree")
            _refuse(f"compiling a string that uses {problem} ({text[:80]!r}, in {where})")

    def _module_source(self, source, filename) -> bool:
        """Whether the import system compiles a module's file as it is: ``source`` is the content of ``filename``,
        a file outside the run's folder (``SourceLoader.source_to_code`` takes any source under any name)."""
        if not (isinstance(filename, str) and filename.startswith("/") and isinstance(source, (bytes, str))):
            return False
        path = self.realpath(filename)
        if path == self.work or path.startswith(self.work + os.sep):
            return False
        try:
            with open(path, "rb") as file:
                content = file.read()
        except OSError:
            return False
        return content == (source if isinstance(source, bytes) else source.encode("utf-8"))

    def check_run(self, code, frame) -> None:
        frame, where, exempt, annotation = self._requester(frame)
        if not exempt and (annotation or not where.startswith(self.libraries)) and not self.lookup_only(code):
            _refuse(f"running code compiled from a string that does more than look names up "
                    f"({code.co_filename}, {'an annotation, ' if annotation else ''}in {where})")

    def _refused(self, name: str, attribute: bool = False) -> bool:
        return (name in (self.attributes if attribute else self.names) or _HISTORY.match(name) is not None
                or (name.startswith("__") and not _LIBRARY_NAMES.match(name)))

    def problem(self, source, private: bool = False) -> str | None:
        """What the string's code uses that the static check would refuse (see the class), or None; ``private``:
        private attributes allowed (an annotation)."""
        if isinstance(source, ast.AST):
            tree = source
        else:
            try:
                tree = ast.parse(source)
            except (SyntaxError, ValueError, TypeError):
                return None                       # compiling it fails as well
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                return "an import"
            if isinstance(node, ast.Name) and self._refused(node.id):
                return node.id
            if isinstance(node, ast.Attribute) and (self._refused(node.attr, attribute=True) or (
                    node.attr.startswith("_") and not private
                    and not (isinstance(node.value, ast.Name) and node.value.id == "self"))):
                return f".{node.attr}"
            if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)) and (
                    ("__" if isinstance(node.value, str) else b"__") in node.value):
                return "a string with a dunder"
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "type"
                    and len(node.args) == 3):
                return "type(name, bases, namespace)"
        return None

    def lookup_only(self, code) -> bool:
        """Whether ``code`` only looks names up (no dunder, none the static check refuses) and subscripts them."""
        return (all(i.opname in _LOOKUP_OPS or (i.opname == "BINARY_OP" and i.argrepr == "|")
                    for i in dis.get_instructions(code))
                and not any(self._refused(n) or self._refused(n, attribute=True) for n in code.co_names))

    def _dataclass_fields_are_names(self, frame) -> bool:
        """Whether the data class being made (the ``fields`` of ``dataclasses._process_class``, up the stack) has
        identifiers only as field names: dataclasses writes them into the code it compiles."""
        while frame is not None:
            if frame.f_code.co_name == "_process_class" and self._file(frame) in self.dataclasses:
                fields = frame.f_locals.get("fields")
                return isinstance(fields, dict) and all(type(k) is str and k.isidentifier()
                                                        and not keyword.iskeyword(k) for k in fields)
            frame = frame.f_back
        return False


def _bound_fsdecode():
    """``os.fsdecode`` made of what it calls, bound now: ``os.fsdecode`` (and ``os.path``'s functions) look
    ``os.fspath`` up at each call."""
    fspath, encoding, errors, bytes_, isinstance_ = os.fspath, sys.getfilesystemencoding(), \
        sys.getfilesystemencodeerrors(), bytes, isinstance

    def fsdecode(path) -> str:
        path = fspath(path)
        return path.decode(encoding, errors) if isinstance_(path, bytes_) else path

    return fsdecode


def _path_resolver():
    """``os.path.realpath`` (non-strict, as posixpath's) made of functions bound now, when the kit sets up: the
    audit hook and the kit's other checks resolve paths with it, so a notebook that replaces ``os.fspath``,
    ``os.fsdecode``, ``os.lstat`` or a ``posixpath`` function (which ``os.path.realpath`` looks up at each call)
    cannot make them check another path than the one the call uses (grader adversarial r14)."""
    fsdecode, lstat, readlink, getcwd, is_link = _bound_fsdecode(), os.lstat, os.readlink, os.getcwd, \
        __import__("stat").S_ISLNK
    os_error, reversed_, str_, max_ = OSError, reversed, str, max

    def realpath(path) -> str:
        path = fsdecode(path)
        if type(path) is not str_:
            raise TypeError("not a path")
        if not path.startswith("/"):
            path = getcwd() + "/" + path
        rest = [part for part in reversed_(path.split("/")) if part]      # the next component last
        resolved, links = "", 0
        while rest:
            name = rest.pop()
            if name == ".":
                continue
            if name == "..":
                resolved = resolved[:max_(resolved.rfind("/"), 0)]
                continue
            candidate = resolved + "/" + name
            try:
                link = is_link(lstat(candidate).st_mode)
            except os_error:
                link = False
            if not link:
                resolved = candidate
                continue
            links += 1
            if links > 40:        # a loop: left as it is (opening it fails), as posixpath does
                return candidate + "".join("/" + part for part in reversed_(rest))
            target = readlink(candidate)
            if target.startswith("/"):
                resolved = ""
            rest += [part for part in reversed_(target.split("/")) if part]
        return resolved or "/"

    return realpath


def _guard(work: str, denied: tuple, allowed: tuple, libraries: tuple, channel: int, strings: _StringCode):
    """The audit hook, and the switch with which this module (only) may set a profiler.

    ``allowed``: the folders a run may read (its own folder is added), ``denied``: folders inside them it may not;
    of the folders that contain a path, the deepest decides, and a path in none of them may not be read.
    ``libraries``: the folders of the standard library and the installed packages, whose code may make code objects
    (``types.coroutine`` does); ``channel``: the descriptor of the grader's channel (:func:`_channel`), which may not
    be truncated; ``strings``: the rules for code compiled from a string (:class:`_StringCode`).

    What the hook calls at each event is bound here, at set-up (:func:`_path_resolver`, ``os.fsdecode``, the tables
    of events), not looked up in a module the notebook could change."""
    realpath, sep, getframe, fsdecode = _path_resolver(), os.sep, sys._getframe, _bound_fsdecode()
    devnull, proc_readable, write_flags, native = os.devnull, _PROC_READABLE.match, _WRITE_FLAGS, \
        frozenset(_NATIVE_MODULES)
    writes, reads, refused, events = dict(_WRITES), dict(_READS), dict(_REFUSED), frozenset(_EVENTS)
    refuse, any_, isinstance_, str_, list_, id_, type_, getattr_ = _refuse, any, isinstance, str, list, id, type, \
        getattr
    refused_error, no_more_hooks = Refused, _NoMoreHooks
    work = realpath(work)
    roots = sorted([(realpath(p), True) for p in (*allowed, work)] + [(realpath(p), False) for p in denied],
                   key=lambda root: (len(root[0]), not root[1]))     # at equal depth, a denial comes last
    search_path = list(sys.path)
    finders = {id(f) for f in sys.meta_path} | {id(h) for h in sys.path_hooks}
    busy = threading.local()
    kit = [0]                                         # > 0 while numpy_only() sets or removes its profiler

    def inside(path, roots):
        return any_(path == r or path.startswith(r + sep) for r in roots)

    def resolve(path):
        if isinstance_(path, int) or path is None:
            return None                               # a file descriptor: opened through an audited call
        return realpath(path)

    def write(path):
        p = resolve(path)
        if p is not None and p != devnull and not inside(p, (work,)):
            refuse(f"writing {p} (a grading run may write only in its own folder, {work})")

    def read(path):
        p = resolve(path if path is not None else ".")
        if p is None:
            return
        readable = proc_readable(p) is not None
        for root, allow in roots:                     # shallowest first: the deepest that contains p decides
            if p == root or p.startswith(root + sep):
                readable = allow
        if not readable:
            refuse(f"reading {p} (a grading run may read only the Python installation, the installed packages, "
                    "hlmlib and its own folder)")

    def check(event, args):
        if event == "open":
            path, mode, flags = args
            if (isinstance_(mode, str_) and any_(c in mode for c in "wax+")) or (flags or 0) & write_flags:
                write(path)
            else:
                read(path)
        elif event == "os.truncate" and args[0] == channel:
            refuse("truncating the grader's channel")
        elif event in ("shutil.rmtree", "os.fwalk") and args[-1] is not None:
            refuse(f"{event} relative to a directory descriptor")
        elif event in writes:
            for i in writes[event]:
                write(args[i])
        elif event in reads:
            read(args[reads[event]])
        elif event == "exec":
            name = getattr_(args[0], "co_filename", "")
            if isinstance_(name, str_) and name.startswith("/"):
                if inside(realpath(name), (work,)):
                    refuse(f"running code from {name}, a file the run wrote")
            else:                                     # compiled from a string, not read from a file
                strings.check_run(args[0], getframe(2))
        elif event == "compile":
            strings.check_compile(args[0], args[1], getframe(2))
        elif event == "import":
            module = str_(args[0]).partition(".")[0]
            if module in native:
                refuse(f"importing {module}")
            if list_(sys.path) != search_path:
                refuse(f"importing {args[0]} with a changed sys.path")
            if any_(id_(f) not in finders for f in [*sys.meta_path, *sys.path_hooks]
                   if type_(f).__module__ == "__main__"):
                refuse(f"importing {args[0]} through a finder the notebook defined")
        elif event == "subprocess.Popen":   # every one: a program of any name may be a script the run wrote, and the
            program = args[0] if args[0] is not None else \
                (args[1][0] if type_(args[1]) in (list_, tuple) and args[1] else args[1])
            shown = program if type_(program) in (str_, bytes) else type_(program).__name__    # no student code
            refuse(f"starting a process ({shown})")   # grader built matplotlib's font cache (fc-list) before the run
        elif event in ("sys.setprofile", "sys.settrace"):
            if not kit[0]:
                refuse(f"{event[4:]} (a profiler or tracer)")
        elif event == "sqlite3.connect":
            database = fsdecode(args[0]) if isinstance_(args[0], (str_, bytes)) else args[0]
            if database not in (":memory:", ""):
                write(str_(database).removeprefix("file:").partition("?")[0])
        elif event == "code.__new__":
            caller = getframe(2).f_code.co_filename           # under check() and hook(): who made the code
            if not inside(caller, libraries):
                refuse(f"making a code object (in {caller})")
        elif event == "pickle.find_class":         # unpickling resolves any module's attribute by name
            refuse(f"unpickling (it resolves {args[0]}.{args[1]})")
        elif event in ("marshal.load", "marshal.loads"):   # code objects without code.__new__
            caller = getframe(2).f_code.co_filename
            if not (caller.startswith("<frozen importlib") or inside(caller, libraries)):
                refuse(f"{event} (in {caller})")
        elif event == "sys.addaudithook":
            raise no_more_hooks()          # a RuntimeError: Python then skips the new hook silently
        elif event in refused:
            refuse(refused[event])

    def hook(event, args):
        if event not in events or getattr_(busy, "on", False):
            return
        busy.on = True
        try:
            check(event, args)
        except (refused_error, no_more_hooks):
            raise
        except Exception as exc:          # an argument the check cannot read: refuse rather than let it through
            refuse(f"{event} with arguments the grader cannot check ({type_(exc).__name__})")
        finally:
            busy.on = False

    return hook, kit


class _NoMoreHooks(RuntimeError):
    pass


_EVENTS = frozenset({"open", "exec", "compile", "import", "subprocess.Popen", "sys.setprofile", "sys.settrace",
                     "sqlite3.connect", "sys.addaudithook", "code.__new__", "pickle.find_class", "marshal.load",
                     "marshal.loads", *_WRITES, *_READS, *_REFUSED})


def _replace_everywhere(replacements: list) -> None:
    """For each (function, replacement) pair, replace the function (by identity) wherever a loaded module holds it."""
    by_id = {id(f): r for f, r in replacements}
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if isinstance(namespace, dict):
            for key, value in list(namespace.items()):
                if id(value) in by_id:
                    namespace[key] = by_id[id(value)]


def _disarm_ctypes() -> None:
    """Replace the ctypes functions that read or write memory without an audit event (``cast``, ``memmove``,
    ``memset``), wherever a loaded module holds them, and the addresses they are made from."""
    import _ctypes
    import ctypes

    def refused(*args, **kwargs):
        _refuse("ctypes' raw memory functions (cast, memmove, memset)")

    _replace_everywhere([(getattr(ctypes, name), refused) for name in ("cast", "_cast", "memmove", "memset")])
    for module in (ctypes, _ctypes):
        for name in ("_cast_addr", "_memmove_addr", "_memset_addr", "_string_at_addr", "_wstring_at_addr"):
            if hasattr(module, name):
                setattr(module, name, 0)


def _disarm_threads() -> None:
    """Refuse starting a thread from the main thread, where the notebook's code runs (Python 3.11 raises no audit
    event for threads, so the functions that start them are replaced wherever a loaded module holds them): code in
    another thread would escape :func:`numpy_only`'s profiler, which watches this one. The kernel's own threads
    (ipykernel's, zmq's) start threads of their own, from other threads, which stays allowed."""
    import _thread

    main = threading.main_thread().ident

    def guarded(start):
        def start_thread(*args, **kwargs):
            if _thread.get_ident() == main:
                _refuse("starting a thread")
            return start(*args, **kwargs)
        return start_thread

    _replace_everywhere([(getattr(_thread, name), guarded(getattr(_thread, name)))
                         for name in ("start_new_thread", "start_new", "start_joinable_thread")
                         if hasattr(_thread, name)])


_DIR_FD_FUNCTIONS = ("open", "mkdir", "rename", "replace", "unlink", "remove", "rmdir", "chmod", "chown", "utime",
                     "mkfifo", "mknod")


def _disarm_dir_fd() -> None:
    """Refuse the ``dir_fd`` arguments of os's functions that open, create, change or remove files (wherever a loaded
    module holds them): the audit hook sees the path without the directory it is relative to, and would check it
    against the wrong folder. ``shutil.rmtree`` and ``os.fwalk`` (whose folder the hook has checked, and which
    themselves get no descriptor: see :func:`_guard`) keep them."""
    realpath, getframe = _path_resolver(), sys._getframe         # bound now, as the audit hook's are
    shutil_file, os_file = (realpath(m.__file__) for m in (__import__("shutil"), os))
    walks = {(shutil_file, "rmtree"), (os_file, "fwalk")}

    def below_a_walk(frame) -> bool:
        if realpath(frame.f_code.co_filename) not in (shutil_file, os_file):
            return False
        while frame is not None:
            if (realpath(frame.f_code.co_filename), frame.f_code.co_name) in walks:
                return True
            frame = frame.f_back
        return False

    def guarded(function):
        def call(*args, **kwargs):
            if any(kwargs.get(k) is not None for k in ("dir_fd", "src_dir_fd", "dst_dir_fd")) \
                    and not below_a_walk(getframe(1)):
                _refuse(f"os.{function.__name__} relative to a directory descriptor")
            return function(*args, **kwargs)
        return call

    _replace_everywhere([(getattr(os, name), guarded(getattr(os, name))) for name in _DIR_FD_FUNCTIONS
                         if hasattr(os, name)])


def _guard_update_wrapper(forbidden: frozenset, user_ns: dict, libraries: frozenset) -> None:
    """Replace ``functools.update_wrapper`` (which ``functools.wraps`` calls), wherever a loaded module holds it, by a
    version that copies only the attributes it copies by default and names without a leading underscore that the
    static check does not refuse: with other names it is a real ``getattr`` and ``setattr`` by names made at run
    time (``wraps(f).func`` hands it out whatever the static check saw). It sets attributes of its wrapper, so the
    wrapper may not be a module or a class, and when the notebook calls it (``wraps(f)`` is a partial whose caller
    is the notebook's frame) only a function the notebook defined: ``update_wrapper(os, holder,
    assigned=("fspath",))`` would set ``os.fspath`` (grader adversarial r14). ``libraries``: the folders of the
    standard library and the installed packages (their code, such as ``lru_cache``, wraps its own objects)."""
    import functools

    real = functools.update_wrapper
    default = frozenset((*functools.WRAPPER_ASSIGNMENTS, *functools.WRAPPER_UPDATES))
    getframe, function_type, module_type, isinstance_, type_, startswith = sys._getframe, types.FunctionType, \
        types.ModuleType, isinstance, type, str.startswith
    library_roots = tuple(os.path.join(p, "") for p in libraries)

    def update_wrapper(wrapper, wrapped, assigned=functools.WRAPPER_ASSIGNMENTS, updated=functools.WRAPPER_UPDATES):
        for name in (*assigned, *updated):
            if type_(name) is not str or (name not in default and (name.startswith("_") or name in forbidden)):
                _refuse(f"functools.update_wrapper of the attribute {name!r}")
        caller = getframe(1).f_code.co_filename
        if isinstance_(wrapper, (module_type, type_)) or not startswith(caller, library_roots) and not (
                type_(wrapper) is function_type and wrapper.__globals__ is user_ns):
            _refuse(f"functools.update_wrapper of a {type_(wrapper).__name__} (its wrapper may be only a function the "
                    "notebook defines)")
        return real(wrapper, wrapped, assigned, updated)

    _replace_everywhere([(real, update_wrapper)])


def _guard_enum(libraries: frozenset) -> None:
    """Make Enum's functional API (``Enum("E", names)``, by whatever name the class is reached) refuse member names
    that are not plain names: it sets attributes by the names it is given, dunders included, so that
    ``__array_interface__`` would hand NumPy any address. Every call of the API goes through
    ``EnumType._create_``. Called by the notebook (not by a library's code), it also refuses a ``module`` other
    than ``"__main__"``, and ``enum.global_enum`` is refused: it writes a class's members into the module its
    ``__module__`` names, so ``Enum("P", [("setprofile", (noop,))], module="sys", type=functools.partial)`` with
    ``global_enum`` replaced ``sys.setprofile`` and :func:`numpy_only` never started its profiler (grader adversarial
    r15). ``libraries``: the folders of the standard library and the installed packages (``ssl``, ``re`` and
    ``matplotlib.ft2font`` make their enums this way as they are imported)."""
    import enum

    real, real_global = enum.EnumType._create_, enum.global_enum
    getframe, startswith, realpath = sys._getframe, str.startswith, _path_resolver()
    enum_file, library_roots = realpath(enum.__file__), tuple(os.path.join(p, "") for p in libraries)

    def from_a_library() -> bool:
        """Whether the first caller outside enum.py (up from the guard's caller) is a library's code or the import
        system (importing an extension module, such as matplotlib.ft2font, which makes its enums this way)."""
        frame = getframe(2)
        while frame is not None and realpath(frame.f_code.co_filename) == enum_file:
            frame = frame.f_back
        return frame is not None and startswith(frame.f_code.co_filename, (*library_roots, "<frozen importlib"))

    def _create_(cls, class_name, names, **options):
        if isinstance(names, str):
            listed = names.replace(",", " ").split()
        else:
            names = dict(names) if isinstance(names, dict) else list(names)
            listed = [n if isinstance(n, str) else n[0] if isinstance(n, (tuple, list)) and n else n for n in names]
        for name in listed:
            if type(name) is not str or name.startswith("_"):
                _refuse(f"an Enum member named {str(name)[:80]!r} (Enum's functional API)")
        if options.get("module") not in (None, "__main__") and not from_a_library():
            _refuse(f"an Enum class of the module {str(options['module'])[:80]!r} (Enum's functional API)")
        return real(cls, class_name, names, **options)

    def global_enum(cls, update_str=False):
        if not from_a_library():
            _refuse("enum.global_enum (it writes an Enum's members into the module it names)")
        return real_global(cls, update_str)

    enum.EnumType._create_ = _create_
    _replace_everywhere([(real_global, global_enum)])


def _checked_getattr(forbidden: frozenset):
    """``getattr`` for the student's namespace: no private, dunder or interpreter attributes (the static check
    cannot see a name built at run time)."""
    real = builtins.getattr

    def getattr(obj, name, *default):  # noqa: A001  (it replaces the built-in in the student's namespace)
        if type(name) is str and (name.startswith("_") or name in forbidden):
            _refuse(f"getattr(..., {name!r})")
        return real(obj, name, *default)
    return getattr


def _channel(path: str):
    """The grader's channel: a function that appends signed, numbered lines to the file ``path``, outside the run's
    folder (the audit hook refuses opening it, and the descriptor is write-only, so the notebook cannot read it).

    The first line is a key drawn here, before any student code; every later line is ``MAC JSON``, JSON being
    ``[number, test, kind, payload]`` and MAC its HMAC-SHA256 under the key. The key, the descriptor and the
    function that writes (``emit``) live only in closures (this one and :func:`_kit`'s): no module, no global and no
    dict or attribute of one holds them. What makes, signs and writes a line is C code taken now: the JSON comes
    from an encoder made here (``_json.make_encoder``, with the C string encoder and json.dumps's separators), not
    from ``json.dumps``, which looks up ``json._default_encoder`` and ``json.encoder``'s globals at each call; the
    MAC from ``_hashlib.hmac_digest``, not ``hmac.new``, which looks up ``hmac``'s globals; and ``os.write``. So
    replacing any of these module attributes, or the ``JSONEncoder`` class's methods, later does not reach the
    lines (``json`` is among the WATCHED modules too, so such a change is reported). Code in the notebook can reach
    them only through a function's ``__closure__`` or a frame, which needs full Python (see the module's docstring
    for what that means)."""
    from _hashlib import hmac_digest
    from _json import encode_basestring_ascii, make_encoder

    def not_json(value):
        raise TypeError(f"{type(value).__name__} is not JSON")

    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    key = os.urandom(32)
    encoder = make_encoder(None, not_json, encode_basestring_ascii, None, ": ", ", ", False, False, True)
    write, join = os.write, "".join

    def dumps(value) -> str:
        return join(encoder(value, 0))

    first = key.hex().encode() + b"\n"
    write(fd, first)
    count, used, failed = [0], [len(first)], [None]

    def emit(test_id: str, kind: str, payload=None) -> None:
        """Send a line. A record larger than RECORD_LIMIT, or past CHANNEL_LIMIT less CHANNEL_RESERVE, is refused
        (ValueError: that test fails); a write that fails, or a line past CHANNEL_LIMIT, ends the channel
        (ChannelFailed, now and for every later line: the grader counts what came before)."""
        if failed[0]:
            raise ChannelFailed(failed[0])
        line = dumps([count[0], test_id, kind, payload]).encode()
        if kind == "record" and (len(line) > RECORD_LIMIT or used[0] + len(line) > CHANNEL_LIMIT - CHANNEL_RESERVE):
            raise ValueError(f"record({payload['name']!r}): {len(line):,} bytes as JSON; the grader takes at most "
                             f"{RECORD_LIMIT:,} bytes per value and {CHANNEL_LIMIT - CHANNEL_RESERVE:,} for all the "
                             "values of a run")
        data = hmac_digest(key, line, "sha256").hex().encode() + b" " + line + b"\n"
        written, error = -1, "the channel's size limit reached"
        if used[0] + len(data) <= CHANNEL_LIMIT:
            try:
                written, error = write(fd, data), "a write cut short"
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
        if written != len(data):
            failed[0] = f"the grader's channel could not be written ({error})"
            raise ChannelFailed(failed[0])
        count[0] += 1
        used[0] += len(data)
    return emit, fd


def test_digest(source: str, reference) -> str:
    """What a test's ``done`` line carries: a digest of the code it ran (its source and the instructor's cells it
    builds on), which the grader compares with the test it sent (a wrapper that runs other code gets no credit)."""
    import hashlib
    return hashlib.sha256(json.dumps([source, reference]).encode()).hexdigest()


def _instance_methods(stream) -> dict:
    """The attributes of a stream object that stand for its methods: those its class also has, or callables."""
    return {k: id(v) for k, v in list(getattr(stream, "__dict__", {}).items())
            if hasattr(type(stream), k) or callable(v)}


def _stream_state() -> list:
    """What must not change about the kernel's output streams while tests run: the objects ``sys.stdout`` and
    ``sys.stderr``, the methods set on them, and their classes' namespaces."""
    return [(stream, _instance_methods(stream),
             [(cls, _record_namespace(vars(cls))) for cls in type(stream).__mro__ if cls is not object])
            for stream in (sys.stdout, sys.stderr)]


def _streams_changed() -> list[str]:
    """How sys.stdout or sys.stderr differ from the kernel's own streams recorded at set-up."""
    changed = []
    for name, current, (stream, methods, classes) in zip(("stdout", "stderr"), (sys.stdout, sys.stderr),
                                                         _state["streams"]):
        if current is not stream:
            changed.append(f"sys.{name} replaced by a {type(current).__qualname__}")
            continue
        now = _instance_methods(stream)
        changed += [f"sys.{name}.{k}" for k in sorted(now.keys() | methods.keys()) if now.get(k) != methods.get(k)]
        for cls, recorded in classes:
            changed += _differences(recorded, vars(cls), f"{cls.__module__}.{cls.__qualname__}", vars(cls))
    return changed


# --- set-up and the tests' side -----------------------------------------------------------------------------------

def _watched_modules():
    return {name: mod for name, mod in list(sys.modules.items())
            if mod is not None and name.split(".")[0] in WATCHED}


def _watched_namespace(name: str, module) -> dict:
    """What is recorded of a watched module: its namespace; of ``sys``, its public functions and SYS_WATCHED."""
    namespace = vars(module)
    if name != "sys":
        return namespace
    return {k: v for k, v in list(namespace.items())
            if k in SYS_WATCHED or not k.startswith("_") and isinstance(v, types.BuiltinFunctionType)}


def _fingerprint(value, entries: bool = False):
    """What must not change about an object a module or class holds: the object, a function's code, and with
    ``entries`` (hlmlib's modules) the entries of a dict or list, such as its table of CR adjustments."""
    if isinstance(value, types.FunctionType):
        return value, value.__code__, value.__defaults__, value.__kwdefaults__
    if entries and type(value) in (dict, list) and value is not builtins.__dict__:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return (value, *((k, id(v)) for k, v in list(items)))
    return (value,)


def _record_namespace(namespace, entries: bool = False) -> dict:
    return {key: _fingerprint(value, entries) for key, value in list(namespace.items())}


def _own(module_name: str) -> bool:
    return module_name.split(".")[0] == "hlmlib"


def setup(user_ns: dict, work: str, log: str, channel: str, denied=(), allowed=(), forbidden_attributes=(),
          forbidden_names=(), write_limit: int | None = None) -> None:
    """Prepare the kernel; called once, by the grader's first cell, before any student code. ``channel``: the file
    the tests' records go to (:func:`_channel`); ``allowed`` and ``denied``: the folders the run may and may not read
    (see :func:`_guard`); ``forbidden_attributes`` and ``forbidden_names``: what the static check refuses, refused
    in the student's ``getattr`` and in code compiled from strings (:class:`_StringCode`); ``write_limit``: the
    largest file, in bytes, the kernel may write (``RLIMIT_FSIZE``, soft and hard: the hook refuses raising it)."""
    import ctypes  # noqa: F401  (imported now: importing it later loads a library, which the hook refuses)
    import resource

    if write_limit is not None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (write_limit, write_limit))

    import hlmlib  # noqa: F401  (import what the tests use, so that it is recorded)
    import numpy.testing  # noqa: F401
    import scipy.stats  # noqa: F401

    _value_types()
    libraries = {os.path.realpath(p) for key, p in sysconfig.get_paths().items()
                 if key in ("stdlib", "platstdlib", "purelib", "platlib")}
    # before the modules are recorded: it replaces theirs
    _guard_update_wrapper(frozenset(forbidden_attributes), user_ns, frozenset(libraries))
    _guard_enum(frozenset(libraries))
    _disarm_ctypes()
    _disarm_threads()
    _disarm_dir_fd()                    # before the modules are recorded: it replaces os's functions
    emit, channel_fd = _channel(channel)
    globals().update(_kit(emit))        # before the modules are recorded: the kit's functions are then watched
    modules = _watched_modules()
    classes = {}
    for mod in modules.values():
        for value in list(vars(mod).values()):
            if isinstance(value, type) and value.__module__.split(".")[0] in WATCHED:
                classes[id(value)] = (value, _record_namespace(vars(value), _own(value.__module__)))
    here = os.path.realpath(work)
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.realpath(p) != here]
    log_fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    _state.update(streams=_stream_state(), user_ns=user_ns, log_fd=log_fd,
                  modules={n: (m, _record_namespace(_watched_namespace(n, m), _own(n))) for n, m in modules.items()},
                  classes=list(classes.values()), reported=set(), instances=[
                      (obj, f"{module}.{name}", _record_namespace(vars(obj)), frozenset(dir(type(obj))))
                      for module, name in WATCHED_INSTANCES for obj in [getattr(sys.modules[module], name)]])
    user_ns["getattr"] = _checked_getattr(frozenset(forbidden_attributes))
    strings = _StringCode(work, libraries, forbidden_names, forbidden_attributes)
    hook, kit = _guard(work, tuple(denied), (*allowed, __file__), tuple(libraries), channel_fd, strings)
    _state["kit"] = kit
    sys.addaudithook(hook)
    _forget_caller()                    # the set-up cell (through __grader_setup, defined in it)


def _differences(recorded: dict, current, where: str, new_keys) -> list[str]:
    """Keys replaced or removed since recorded, and keys added that would shadow something (``new_keys``)."""
    return ([f"{where}.{key}" for key, fp in recorded.items() if key != "__warningregistry__"
             and (key not in current or _fingerprint(current[key], _own(where)) != fp)]
            + [f"{where}.{key}" for key in current if key not in recorded and key in new_keys])


def _changed(loaded=sys.modules) -> list[str]:
    changed = []
    for name, (module, recorded) in _state["modules"].items():
        if loaded.get(name, module) is not module:
            changed.append(f"sys.modules[{name!r}]")
        else:
            changed += _differences(recorded, _watched_namespace(name, module), name, _REAL_BUILTINS)
    for cls, recorded in _state["classes"]:
        changed += _differences(recorded, vars(cls), f"{cls.__module__}.{cls.__qualname__}", vars(cls))
    for obj, where, recorded, class_names in _state["instances"]:
        changed += _differences(recorded, vars(obj), where, class_names)
    return changed


def _instructor_names(reference) -> dict:
    """Run the instructor's cells ``reference`` ((code, substitute) pairs) in a fresh namespace; return the names
    the cells marked ``substitute`` bound."""
    namespace = {"__builtins__": _REAL_BUILTINS, "__name__": "__main__"}
    bound = {}
    for n, (code, substitute) in enumerate(reference):
        before = dict(namespace)
        exec(compile(code, f"<instructor's cell {n + 1}>", "exec"), namespace)  # noqa: S102
        if substitute:
            bound.update({k: v for k, v in namespace.items() if k not in before or before[k] is not v})
    bound.pop("__builtins__", None)
    return bound


def _forget_caller(getframe=sys._getframe, cache=linecache.cache) -> None:
    """Remove from ``linecache`` the source of the cell that called the kit's function that calls this (IPython
    registers each cell there, under the name its code is compiled with): the grader's cells hold the hidden tests'
    source and the instructor's code, which anything that formats a traceback or a warning would read there. A
    test's own code is compiled as ``<test ID>`` and never registered (a traceback in the graded notebook shows its
    line numbers, not its lines)."""
    cache.pop(getframe(2).f_code.co_filename, None)


def _kit(emit) -> dict:
    """The functions that write on the grader's channel, as closures over ``emit`` (:func:`_channel`): set-up puts
    them in this module's namespace as :func:`run_test`, :func:`record` and :func:`finish`. What they call that
    could receive ``emit`` is in this closure too, not looked up in the module when they run."""
    running = [None]                    # (test id, the file name its code runs under) while a test runs
    changed, streams_changed, instructor_names, plain = _changed, _streams_changed, _instructor_names, _plain
    digest, real_exec, real_compile, forget, getframe = test_digest, exec, compile, _forget_caller, sys._getframe

    def report_changes(test_id: str) -> None:
        """Send, once each, the recorded objects the submission replaced (for the instructor to read), and any
        change to the kernel's output streams (which the grader flags)."""
        new = [c for c in changed() if c not in _state["reported"]]
        if new:
            _state["reported"].update(new)
            emit(test_id, "changed", [c[:200] for c in new[:50]])
        streams = streams_changed()
        if streams:
            emit(test_id, "tampered", [c[:200] for c in streams[:50]])

    def run_test(test_id: str, source: str, reference=()) -> None:
        """Run one test cell's code; send ``done``, with the digest of the code it ran (:func:`test_digest`), on
        the grader's channel only if it completed.

        ``reference``: the instructor's code of the cells this test's question builds on, as (code, substitute)
        pairs; while the test runs, the names the substituted cells define are the instructor's, for the test and
        for the student's functions it calls."""
        forget()                     # the grader's cell, which holds the test's source and the reference code
        report_changes(test_id)
        user_ns, saved = _state["user_ns"], {}
        filename = f"<test {test_id}>"
        running[0] = (test_id, filename)
        try:
            for name, value in instructor_names(reference).items():
                saved[name] = user_ns.get(name, _MISSING)
                user_ns[name] = value
            namespace = {k: v for k, v in user_ns.items() if k not in _REAL_BUILTINS}
            namespace.update(__builtins__=_REAL_BUILTINS, __name__="__main__")
            real_exec(real_compile(source, filename, "exec"), namespace)  # noqa: S102  (the instructor's test)
        finally:
            running[0] = None
            for name, value in saved.items():
                if value is _MISSING:
                    user_ns.pop(name, None)
                else:
                    user_ns[name] = value
        report_changes(test_id)      # student code the test called may have changed something while it ran
        emit(test_id, "done", {"digest": digest(source, reference)})

    def finish() -> None:
        """The grader's last cell: the end of the channel (a channel without it was cut short)."""
        forget()
        report_changes("end")
        emit("end", "end")

    def record(name: str, value, rtol: float = 0.0, atol=0.0, labels: bool = False):
        """Hand ``value`` to the grader, which compares it with the instructor's, within ``rtol`` and ``atol`` (a
        number or, elementwise, an array of the value's shape), taken from the instructor's run. Returns the plain
        value. It is sent at once: nothing in the kernel holds it back.

        Series and DataFrames count by their values; with ``labels`` a Series counts as {label: value} (in any
        order; a label repeated, as a string, is a ValueError) and a DataFrame with its row and column labels. A
        ``value`` that is an array or unlabelled Series of one element is the number it holds (:func:`number`, which
        a test uses for the entries of a list it builds); inside ``value`` structures are kept as they are."""
        test = running[0]
        if test is None or getframe(1).f_code.co_filename != test[1]:   # not a function the test called
            raise RuntimeError("record() works only in the code of a test run by the grader")
        value = plain(value, labels, name, [RECORD_ELEMENTS], one=True)
        tolerance = _tolerance(plain(atol, False, f"{name} (atol)"), f"{name}: atol")
        emit(test[0], "record", {"name": name, "value": value, "rtol": _tolerance(float(rtol), f"{name}: rtol"),
                                 "atol": tolerance})
        return value

    return {"run_test": run_test, "finish": finish, "record": record}


def _not_set_up(*args, **kwargs):
    raise RuntimeError("the grading kit is not set up: its functions work only in a grading run")


run_test = finish = record = _not_set_up        # replaced by setup() with _kit's closures


def _value_types():
    """NumPy, pandas and NumPy's real-number, boolean and string scalar types (imported when first needed); a
    ``numpy.str_`` is what pandas keeps as a label taken from a NumPy array."""
    if "scalars" not in _state:
        import numpy
        import pandas
        _state.update(numpy=numpy, pandas=pandas,
                      scalars=frozenset(t for t in numpy.sctypeDict.values()
                                        if issubclass(t, (numpy.number, numpy.bool_, numpy.str_))
                                        and not issubclass(t, (numpy.complexfloating, numpy.timedelta64))))
    return _state["numpy"], _state["pandas"], _state["scalars"]


def _plain(value, labels: bool, where: str, budget: list | None = None, one: bool = False):
    """``value`` as plain Python (numbers, strings, lists, dicts), or TypeError; no method of ``value`` runs. With
    ``budget`` (``[n]``: how many numbers or strings it may still have), a larger value is a ValueError, found before
    it is converted. With ``one``, ``value`` itself, if a NumPy array or (unlabelled) Series holding one number, is
    that number, as ``float()`` takes it; inside ``value`` structures are kept as they are (a column of k, or a
    list of k one-element arrays, is not a vector of k)."""
    np, pd, scalars = _value_types()
    kind = type(value)
    budget = [math.inf] if budget is None else budget

    def spend(n: int) -> None:
        budget[0] -= n
        if budget[0] < 0:
            raise ValueError(f"{where}: a value of more than {RECORD_ELEMENTS:,} numbers or strings; the grader "
                             "records no larger values (the tests' are far smaller)")

    if value is None or kind in (bool, int, float, str):
        return value
    if kind in scalars:           # a long double's item() keeps its type (no JSON): a float, as in the grader
        return float(value) if kind is np.longdouble else value.item()
    if kind is np.matrix:              # NumPy's own subclass: taken as the array it holds, by ndarray's C-level view
        value, kind = np.ndarray.view(value, np.ndarray), np.ndarray
    if one and kind is np.ndarray and value.size == 1 and value.dtype.kind in "biufO":
        element = _plain(value.reshape(-1)[0], labels, where, budget)
        if type(element) in (bool, int, float):        # a number, as float() takes it; anything else as it is
            return element
    if kind is np.ndarray:
        if value.dtype.kind == "O":        # labels: every element must pass these checks itself
            return _plain(value.tolist(), labels, where, budget)
        if value.dtype.kind not in "biufU":
            raise TypeError(f"{where}: an array of {value.dtype}; the grader takes arrays of numbers or strings")
        spend(value.size)
        return (value.astype(float) if value.dtype.kind == "f" and value.dtype.itemsize > 8 else value).tolist()
    if kind in (list, tuple):
        spend(len(value))
        return [_plain(v, labels, f"{where}[{i}]", budget) for i, v in enumerate(value)]
    if kind is dict:
        spend(len(value))
        out = {}
        for key, v in value.items():
            key = key.item() if type(key) in scalars else key
            if type(key) not in (str, int):
                raise TypeError(f"{where}: a dict key of type {type(key).__name__}; the grader takes str or int keys")
            if str(key) in out:
                raise ValueError(f"{where}: two keys read as {str(key)!r} (the grader's keys are strings)")
            out[str(key)] = _plain(v, labels, f"{where}[{key!r}]", budget)
        return out
    if kind in (pd.Series, pd.DataFrame):
        dtypes = [value.dtype] if kind is pd.Series else list(value.dtypes)
        other = next((d for d in dtypes if not (isinstance(d, np.dtype) and d.kind in "biufO")), None)
        if other is not None:              # pandas' own extension types run code of their own: not taken
            raise TypeError(f"{where}: a pandas {kind.__name__} of dtype {other}, not of numbers (NumPy's); "
                            ".astype(float) makes it one")
        if value.size > budget[0]:
            spend(value.size)              # refused before the values are copied
        values = value.to_numpy()
        if type(values) is not np.ndarray:
            raise TypeError(f"{where}: a pandas {kind.__name__} whose values are not a NumPy array")
        values = _plain(values, labels, where, budget)
        # dtype object (a frame filled row by row, say): each entry checked as above, and each must be a number
        entries = values if kind is pd.Series else [entry for row in values for entry in row]
        other = next((entry for entry in entries if type(entry) not in (bool, int, float)), entries)
        if other is not entries:
            raise TypeError(f"{where}: a pandas {kind.__name__} holding a {type(other).__name__}, not of numbers")
        if not labels:
            return values[0] if one and kind is pd.Series and len(values) == 1 else values
        index = _plain(value.index.to_numpy(), labels, f"{where}.index", budget)
        if kind is pd.Series:          # {label: value}: a label twice would keep one of its values only
            keys = [str(i) for i in index]
            if len(set(keys)) < len(keys):
                repeated = next(key for i, key in enumerate(keys) if key in keys[:i])
                raise ValueError(f"{where}: the label {repeated!r} more than once; with labels the grader takes a "
                                 "Series whose labels are distinct")
            return dict(zip(keys, values))
        return {"columns": _plain(value.columns.to_numpy(), labels, f"{where}.columns", budget), "index": index,
                "values": values}
    raise TypeError(f"{where}: a {kind.__module__}.{kind.__qualname__}; the grader takes numbers, strings, NumPy "
                    "arrays (not subclasses such as masked arrays), lists, tuples, dicts, and pandas Series or "
                    "DataFrames of numbers")


def _tolerance(value, where: str):
    """``value`` (a plain number, or a list or dict of them) if every number in it is finite and not negative, else
    ValueError: a NaN tolerance would fail every answer but the instructor's own, an infinite one pass any."""
    numbers = value.values() if type(value) is dict else value if type(value) is list else [value]
    for number in numbers:
        if type(number) in (list, dict):
            _tolerance(number, where)
        elif type(number) not in (int, float) or not 0 <= number < math.inf:
            raise ValueError(f"{where} is {number!r}; a tolerance is a finite number, 0 or more")
    return value


def array(value, name: str = "value"):
    """``value`` as a NumPy array, through the checks of :func:`record` (no method of a student's object runs)."""
    return _value_types()[0].array(_plain(value, False, name))


def number(value, name: str = "value"):
    """``value`` as a number, as ``float()`` takes it: a number, or a NumPy array or (unlabelled) pandas Series of
    one element, else TypeError; no method of a student's object runs. For the entries of a list a test builds from
    the student's numbers (``record("t, df, p", [number(r[key]) for key in ("t", "df", "p")])``), where the visible
    test takes them with ``float()`` or ``abs()``; :func:`record` takes a whole value of one element the same way."""
    got = _plain(value, False, name, one=True)
    if type(got) not in (int, float):
        kind = type(value)
        raise TypeError(f"{name}: a {kind.__module__}.{kind.__qualname__} that is not a number, nor an array or "
                        "Series of one")
    return got


def _numpy_only(modules=sys.modules, getprofile=sys.getprofile, setprofile=sys.setprofile, state=_state,
                packages=ESTIMATOR_PACKAGES):
    """:func:`numpy_only`, made of what it calls bound when the kit is imported (before any student code): looked
    up in ``sys`` at each call, a notebook that replaced ``sys.setprofile`` kept its profiler from starting (grader
    adversarial r15, through ``enum.global_enum``)."""

    @contextlib.contextmanager
    def numpy_only():
        """Run the block with hlmlib, statsmodels, linearmodels and scikit-learn unavailable.

        ``import hlmlib`` (or any of them) raises ImportError inside the block, and any call into their code, by
        whatever name it was reached, makes the block fail with an AssertionError naming the function called. Call
        :func:`record` inside the block: it accepts only values already computed (no object whose contents are
        computed later, outside the block)."""
        saved = {n: m for n, m in modules.items() if n.split(".")[0] in packages}
        folders = tuple(sorted({m.__path__[0] for n, m in saved.items() if m is not None and "." not in n
                                and hasattr(m, "__path__")}))
        calls: list[str] = []

        def profiler(frame, event, arg):
            if event == "call" and folders and frame.f_code.co_filename.startswith(folders) and not calls:
                calls.append(f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_name}")

        for name in list(saved) + [p for p in packages if p not in saved]:
            modules[name] = None
        kit = state.get("kit", [0])
        kit[0] += 1
        previous = getprofile()
        setprofile(profiler)
        started = getprofile() is profiler
        kit[0] -= 1
        try:
            yield
        finally:
            kit[0] += 1
            setprofile(previous)
            kit[0] -= 1
            for name in packages:
                modules.pop(name, None)
            modules.update(saved)
        if not started:
            raise AssertionError("the NumPy-only check could not start its profiler")
        if calls:
            raise AssertionError(f"this must use NumPy only, but it called {calls[0]}")

    return numpy_only


numpy_only = _numpy_only()
