"""Grade submissions: rebuild each from the instructor's source, run it in a fresh kernel of its own, score the
values its tests hand out against the instructor's solution's, report.

For one submission:

1. the assignment is read from the notebook metadata (``assignment.id``); an unknown notebook is an error;
2. the submission's own copies of the test cells (found by id) are dropped, and every test of the source, visible
   or hidden, is placed where the source puts it (:func:`assemble`): after the submission's cell that precedes it
   in the source (found by id; if that cell was deleted, the nearest earlier one) and the cells the student added
   below that cell, up to where the student's copy of the question's visible test stands if it is still below it;
   a test that runs with the instructor's earlier answers (``reference``) runs after every test above it in the
   source;
3. the student's code is checked statically (``integrity.py``): a submission that reaches into the interpreter is
   not run (status ``flagged``, score 0); a cell the grader will not run (one it cannot parse, or one with a
   magic or shell command outside a short allow-list) fails as an error in that cell only, and is noted;
4. the notebook runs in a fresh kernel, in a sandbox (``sandbox.py``: Linux namespaces, and an unprivileged user
   when the grader runs as root) whose file system holds only the Python installation, hlmlib, the kit and the
   run's own folders, so that no code in it, whatever it does, can read the repository or the reference values;
   its working directory, home, IPython and matplotlib folders are a new folder of its own; a first cell loads
   ``gradingkit``, which installs an audit hook before any student code
   runs (see there); every cell runs in order, carrying on past errors; a cell that exceeds the time limit per
   cell, the notebook exceeding the limit per file, a kernel that dies, a run that writes more than WRITE_LIMIT
   in its folder (deleted files its kernel holds counted) or writes while the disk is nearly full, or a message from
   the kernel too large to read on the shell channel ends the run, and the tests not reached score 0; a run the
   grader cannot set up or clean up (a full disk) is ``crashed``, and the batch goes on;
5. the instructor version runs the same way once per batch (a reference run; its values are cached in
   ``build/reference/`` under a hash of everything they depend on), and every hidden test must record its values;
6. a submission's hidden tests run up to their last record (:func:`make.recorded_part`; their checks against
   values computed in the kernel run in the reference run only); a test scores its points if it ran to the end (it
   raised nothing, and the kit said so, with a digest of the code the grader sent, on the grader's own channel, a
   file the notebook can neither read nor write a valid line to) and every value it recorded matches the value the
   instructor's solution recorded, within the tolerances the reference run gave; a visible test scores only if
   the hidden test that guards it passes too. A line on that channel the kit did not write, a channel cut short
   (unless the kit said a write on it failed: ``crashed``), or the kernel's output streams replaced or patched
   during a test flags the run (score 0).

Several submissions run at once (``jobs``); each gets a report, and the written answers of all submissions of an
assignment are collected into one document beside the model answers.
"""
from __future__ import annotations

import ast
import asyncio
import bisect
import contextlib
import copy
import csv
import difflib
import hashlib
import hmac
import html
import io
import json
import logging
import math
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tokenize
import tempfile
import threading
import time
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import zmq
import zmq.asyncio
import zmq.utils.monitor
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from traitlets import List, default

import gradingkit
import integrity
import make
import sandbox
from make import Assignment, cell_key, cell_meta
from sandbox import described

# The first cell of a run. IPython's prefilter, which rewrites a one-line cell before it runs, is off (each of its
# checkers disabled): the static check does not see what it does. With automagic or autocall, a line such as
# "reset -f", valid Python ("reset - f"), runs the magic %reset -f; and whatever they are, a line that names an
# IPyAutocall object (exit, or an instance of a subclass of its type) hands that object the shell (set_ip), and one
# that names a Macro runs the macro's code.
SETUP = """def __grader_setup():
    import sys
    shell = get_ipython()
    shell.automagic, shell.autocall = False, 0
    for checker in shell.prefilter_manager.checkers:
        checker.enabled = False
    sys.path.insert(0, {here!r})
    import gradingkit
    sys.path.remove({here!r})
    gradingkit.setup(shell.user_ns, {work!r}, {log!r}, {channel!r}, denied={denied!r}, allowed={allowed!r},
                     forbidden_attributes={forbidden!r}, forbidden_names={names!r}, write_limit={write_limit!r})
    return gradingkit
__grader__ = __grader_setup()
del __grader_setup"""
KERNEL_ENVIRONMENT = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT")
CODE_SUFFIXES = (".py", ".pyc", ".pth", ".so", ".ipynb")
# The metadata keys that mark the grader's cells in the notebook it runs: a test's, the last one (the set-up is the
# first); :func:`submitted_cell` removes them from the submission's cells
TEST_KEY, END_KEY = "grader_test", "grader_end"
GRADER_KEYS = (TEST_KEY, END_KEY)
OUTPUT_LIMIT = 5_000_000          # characters of output a run keeps (the tests' records are a few thousand)
MESSAGE_LIMIT = 50_000_000        # bytes of one part of a message from the kernel (a larger one is not read)
# What a run may write. In the sandbox its working folder and its temporary folder are one size-limited tmpfs of
# WRITE_LIMIT + WRITE_SLACK bytes and WRITE_ENTRIES + ENTRY_SLACK files and folders (sandbox.py), where writing past it
# fails (ENOSPC). A watch, every WATCH_INTERVAL seconds, ends a run that takes more than WRITE_LIMIT bytes (that tmpfs,
# the rest of its folder, and the deleted files and memfds its kernel holds) or WRITE_ENTRIES entries, or a folder
# deeper than WRITE_DEPTH; while the folder's file system has less than FREE_FLOOR bytes free, it also ends a run that
# takes FREE_SLACK bytes more of that disk (its tmpfs, in memory, does not count there). No file the kernel writes is
# larger than WRITE_LIMIT (its RLIMIT_FSIZE).
WRITE_LIMIT, WRITE_ENTRIES, WATCH_INTERVAL = 100_000_000, 10_000, 0.2
WRITE_SLACK, ENTRY_SLACK, WRITE_DEPTH = 16_000_000, 1_000, 64
FREE_FLOOR, FREE_SLACK = 100_000_000, 1_000_000
# The address space a kernel may take (RLIMIT_AS, in the sandbox); the memory its files in memory (memfd) hold counts
# towards WRITE_LIMIT (:func:`deleted_but_held`). Kernels are the OOM killer's first choice, the grader its last.
MEMORY_LIMIT, GRADER_OOM_SCORE_ADJ = 6_000_000_000, -500
# A submission's code (bytes, all its cells) past which it is neither checked nor run (an honest one is a few tens of
# kB), and the wall-clock time and address space (RLIMIT_AS) of the process that checks it (:func:`static_check`)
CODE_LIMIT, STATIC_TIME, STATIC_MEMORY = 1_000_000, 120, 4_000_000_000
# A submission file is read only if it is a regular file of at most FILE_LIMIT bytes, and handed to nbformat only if
# its JSON holds at most CELL_LIMIT cells and VALUE_LIMIT values (objects, arrays, strings, numbers), which nbformat's
# conversion and validation cost the grader's own process up to some 450 bytes and 4 microseconds each (round 19: 58
# MB of one-character cells took it 4.5 GB). An honest notebook is some tens of kB, a few MB with its figures (a
# figure is one string of some 20-200 kB of base64), with some tens to hundreds of cells and some thousands of values
# (the book's chapters, executed: at most 1.3 MB, 125 cells, 5,500 values; Jupyter stores a printed output as one
# string per line). Within them, a file costs the grader at most about 1.5 GB for 5 s while it is read, and its parsed
# notebook holds at most about 60 MB.
FILE_LIMIT, CELL_LIMIT, VALUE_LIMIT = 50_000_000, 10_000, 100_000
# The processes and threads a run may have at once (a kernel has about 10; sandbox.py: a pids cgroup of its own when
# the grader runs as root, else RLIMIT_NPROC over what the kernels' user has), far below the machine's pid_max
TASK_LIMIT = 256
# The descriptors of a run's processes the disk watch looks at (a kernel holds about 100): past it, a run is over
HELD_DESCRIPTORS = 2_000
REFERENCE_CACHE = make.BUILD / "reference"
KIT = make.HERE / "gradingkit.py"          # copied for each batch into a folder the kernels may read
# Read-only system data that libraries read at run time (matplotlib's fonts, time zones, locale and MIME tables);
# system folders, not where a course's files are kept
SYSTEM_DATA = ("/usr/share", "/usr/lib", "/usr/local/share", "/etc", "/dev/null", "/dev/urandom")


class GradingError(Exception):
    """A file that cannot be graded (unreadable, or not a notebook of a known assignment)."""


class Unisolated(Exception):
    """The grading kernels cannot be sandboxed on this machine (see :meth:`Policy.check_sandbox`)."""


@dataclass
class TestResult:
    id: str
    question: str
    points: float
    hidden: bool
    guards: str | None = None
    passed: bool = False
    message: str = "not run"
    completed: bool = False              # in the kernel: ran to the end (said on the channel), raised nothing
    records: dict = field(default_factory=dict)


@dataclass
class Result:
    file: Path
    assignment: Assignment
    status: str = "ok"                    # ok, review, timeout, crashed, flagged
    message: str = ""
    tests: list[TestResult] = field(default_factory=list)
    graded: nbformat.NotebookNode | None = None
    submission: nbformat.NotebookNode | None = None
    notes: list[str] = field(default_factory=list)     # for the instructor: cells not run, refusals, changes
    writing: dict | Exception | None = None   # student_writing of the submission (the error if it cannot be read)
    unrun: set | None = None    # the positions (from 0) of the code cells the grader did not run (None: not assembled)

    @property
    def score(self) -> float:
        return 0 if self.status == "flagged" else sum(t.points for t in self.tests if t.passed)

    @property
    def total(self) -> float:
        return self.assignment.total

    def by_question(self) -> dict[str, float]:
        earned = dict.fromkeys(self.assignment.questions, 0)
        for t in self.tests:
            earned[t.question] += t.points if t.passed and self.status != "flagged" else 0
        return earned


def new_result(path: Path, a: Assignment, submission) -> Result:
    """The result of a submission not yet run: every test of the assignment, not passed."""
    return Result(path, a, submission=submission,
                  tests=[TestResult(t.id, t.question, t.points, t.hidden, t.guards) for t in a.tests])


def identify(nb, catalogue: dict[str, Assignment]) -> Assignment:
    meta = nb.metadata.get(make.KEY) or {}
    if not isinstance(meta, dict) or not isinstance(meta.get("id"), str) or not meta["id"]:
        raise GradingError("not an assignment notebook: its metadata has no assignment id "
                           f"({make.KEY}.id, a string; found {printable(repr(meta)[:100])}): grade the notebook "
                           "handed out, not a copy made another way")
    if meta["id"] not in catalogue:
        raise GradingError(f"unknown assignment {meta['id']!r} (known: {', '.join(catalogue)})")
    return catalogue[meta["id"]]


def read_notebook(path: Path):
    """The notebook in the file ``path``, read within the limits FILE_LIMIT, CELL_LIMIT and VALUE_LIMIT: its size is
    known (``os.stat``) before a byte is read, and its JSON's cells and values are counted before nbformat converts
    and validates it, so no file, whatever it holds, costs the grader more than a bounded memory and time.
    Raises GradingError."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):     # a FIFO would block, /dev/zero never end
            raise GradingError("not a regular file: hand in the notebook itself")
        if info.st_size > FILE_LIMIT:
            raise GradingError(_too_large(f"{info.st_size / 1e6:.1f} MB"))
        with open(path, "rb") as file:
            content = file.read(FILE_LIMIT + 1)        # a file grown since the stat is read no further
        if len(content) > FILE_LIMIT:
            raise GradingError(_too_large(f"more than {FILE_LIMIT / 1e6:g} MB"))
        text = content.decode("utf-8")
        cells, values = _json_counts(json.loads(text))
        if cells > CELL_LIMIT:
            raise GradingError(f"the notebook has {cells:,} cells, more than the limit of {CELL_LIMIT:,}, so it is "
                               "not read further")
        if values > VALUE_LIMIT:
            raise GradingError(f"the notebook's JSON holds more than {VALUE_LIMIT:,} values, so it is not read "
                               "further: clear its outputs (Kernel > Restart & Clear Output), save it and hand it "
                               "in again")
        notebook = nbformat.reads(text, as_version=4)
        for cell in notebook.cells:       # Windows' or old Macs' line ends (CRLF, CR) as Jupyter's editor reads them
            if isinstance(cell.get("source"), str):
                cell.source = LINE_END.sub("\n", cell.source)
        return notebook
    except GradingError:
        raise
    except Exception as exc:  # any unreadable file: OS error, JSON, schema, encoding, nesting too deep
        raise GradingError(f"cannot read the notebook ({described(exc)})") from None


LINE_END = re.compile(r"\r\n?")


def _too_large(size: str) -> str:
    return (f"the file is {size}, larger than the {FILE_LIMIT / 1e6:g} MB limit, so it is not read: clear its outputs "
            "(Kernel > Restart & Clear Output), save it and hand it in again")


def _json_counts(value) -> tuple[int, int]:
    """The cells (``cells``, and those of nbformat 3's ``worksheets``) and the values (every object, array, string,
    number...) of a notebook's parsed JSON ``value``, the values counted on an explicit stack (no recursion) and
    no further than VALUE_LIMIT + 1."""
    sheets = [value] if isinstance(value, dict) else []
    if sheets and isinstance(value.get("worksheets"), list):
        sheets += value["worksheets"]
    cells = sum(len(s["cells"]) for s in sheets if isinstance(s, dict) and isinstance(s.get("cells"), list))
    values, stack = 0, [value]
    while stack and values <= VALUE_LIMIT:
        item = stack.pop()
        values += 1
        if isinstance(item, dict):
            stack += item.values()
        elif isinstance(item, list):
            stack += item
    return cells, values


# --- assembling the notebook that runs --------------------------------------------------------------------------

@dataclass
class Assembled:
    notebook: nbformat.NotebookNode
    positions: dict[int, str]            # index of a test cell in the notebook -> test id
    student_code: list[tuple[int, str]]  # the submission's code cells that run, numbered as in the submission
    not_run: list[str]                   # the submission's cells the grader does not run, and why
    sent: dict[str, str]                 # test id -> the digest of the code the grader sent for it


def assemble(submission, a: Assignment, reference_run: bool = False, reasons: dict | None = None) -> Assembled:
    """The notebook to run: the submission's cells, its test cells replaced by the source's, placed by id. Hidden
    tests run whole in the reference run (``reference_run``) only; otherwise up to their last record
    (:func:`make.recorded_part`). A code cell runs unless :func:`integrity.not_run` gives a reason: ``reasons``
    {cell number from 1: reason or None} (:func:`cells_not_run`), else asked here.

    A test runs after the submission's cell that precedes it in the source (the nearest earlier one the
    submission still has) and the cells the student added below that cell, but before any that the student put
    below their copy of the question's visible test, if that copy is still below the cell: cells placed after a
    test cell run after the test. A test that runs with the instructor's answers to earlier questions runs after
    every test above it in the source."""
    source_ids = [cell_meta(c)["id"] for c in a.notebook.cells]
    tests = {t.id: t for t in a.tests}
    kept, copies = [], {}
    for n, c in enumerate(submission.cells, 1):
        if cell_key(c) in tests:
            copies.setdefault(cell_key(c), len(kept))     # the student's copy stands before kept[len(kept)]
        elif c.cell_type in ("code", "markdown"):
            kept.append((n, c))
    last = {cell_key(c): i for i, (_, c) in enumerate(kept) if cell_key(c) in source_ids}
    if not last:
        raise GradingError("none of the notebook's cells carries an id of the assignment's cells (its metadata was "
                           "lost): ask for the notebook as saved by Jupyter from the one handed out")
    slots: dict[str, int] = {}                          # test id -> index in kept of the cell it runs before
    for s, sid in enumerate(source_ids):
        if sid not in tests:
            continue
        anchors = [last[p] for p in reversed(source_ids[:s]) if p in last and p not in tests]
        anchor = anchors[0] if anchors else -1
        group = _test_run(source_ids, s, tests)
        limits = [copies[g] for g in group if g in copies and copies[g] > anchor]
        limit = min(limits) if limits else len(kept)
        slot = anchor + 1
        while slot < limit and cell_key(kept[slot][1]) not in last:     # past the student's added cells
            slot += 1
        slots[sid] = slot
    # A test that runs with the instructor's answers to earlier questions (``reference``) runs after every test above
    # it in the source, wherever the student moved the cells: those answers stay in the kernel once handed out (a
    # function of the student's may keep them), so no test of an earlier question may run after them.
    latest = -1
    for t in a.tests:                                   # in the source's order
        if t.reference:
            slots[t.id] = max(slots[t.id], latest)
        latest = max(latest, slots[t.id])
    before: dict[int, list] = {}
    for t in a.tests:
        before.setdefault(slots[t.id], []).append(t)
    cells, positions, not_run, code = [nbformat.v4.new_code_cell("# the grader's set-up")], {}, [], []
    sent = {}
    for i in range(len(kept) + 1):
        for t in before.get(i, []):
            positions[len(cells)] = t.id
            source = t.source if reference_run or not t.hidden else make.recorded_part(t.source)
            reference = make.reference_cells(a, t)
            sent[t.id] = gradingkit.test_digest(source, reference)
            call = f"__grader__.run_test({t.id!r}, {source!r}, {reference!r})"
            cells.append(nbformat.v4.new_code_cell(call, metadata={TEST_KEY: t.id}))
        if i < len(kept):
            n, cell = kept[i][0], submitted_cell(kept[i][1])
            reason = cell.cell_type == "code" and (integrity.not_run(cell.source) if reasons is None else reasons[n])
            if reason:         # what the grader does not run fails in its cell, as its error would
                cell.source = f"raise RuntimeError({'the grader does not run this cell: ' + reason!r})"
                not_run.append(f"cell {n} not run: {reason}")
            elif cell.cell_type == "code":
                code.append((n, cell.source))
            cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(submission.metadata))
    return Assembled(nb, positions, code, not_run, sent)


def submitted_cell(cell):
    """A copy of a submitted code or markdown cell to run: without the metadata keys that mark the grader's own cells
    (GRADER_KEYS: a student's cell claiming them would be named as a test in the report, and kept out of IPython's
    history), and, for a code cell, without the outputs and execution count submitted, so that the graded notebook
    shows only what this run produced (a cell the run never reached shows none). A markdown cell keeps its
    attachments (an image pasted into a written answer), bounded with the rest of the file by FILE_LIMIT."""
    cell = copy.deepcopy(cell)
    metadata = cell.get("metadata")
    cell.metadata = nbformat.NotebookNode({k: v for k, v in metadata.items() if k not in GRADER_KEYS}
                                          if isinstance(metadata, dict) else {})
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


def _test_run(source_ids: list[str], s: int, tests: dict) -> list[str]:
    """The ids of the consecutive test cells of the source around position ``s``."""
    start, end = s, s
    while start > 0 and source_ids[start - 1] in tests:
        start -= 1
    while end + 1 < len(source_ids) and source_ids[end + 1] in tests:
        end += 1
    return source_ids[start:end + 1]


# --- running ------------------------------------------------------------------------------------------------------

@dataclass
class Policy:
    """What a grading kernel may read: the folders ``allowed``, except the folders inside them ``denied``; of the
    folders that contain a path, the deepest decides, and a path in none of them may not be read (deny by default).
    The sandbox (:meth:`sandbox_spec`) shows the kernel only ``allowed`` and the run's folders; the audit hook
    applies the same rule in the kernel, with ``denied`` (the repository, around its ``.venv`` and hlmlib).

    Allowed: the Python installation and its packages (``sys.prefix``, ``sys.base_prefix``, the standard library and
    site-packages, wherever they are, a ``.venv`` inside the repository too), the hlmlib package (its data sets
    included), read-only system data libraries read (``SYSTEM_DATA``: fonts, time zones, ``/etc``), and, added in
    the kernel, the run's own folders and the list and state of processes in ``/proc`` (``gradingkit._guard``).
    Denied: the repository holding this grader (its ``.git``, the sources, any build and every other file of it,
    hlmlib and a ``.venv`` excepted), the grader's private folder, the submissions' folders and the output folder.
    Any other copy of the repository, or of the sources, outside the allowed folders is refused too: checking where
    reads may go rather than where they may not makes that hold wherever an instructor keeps clones, which a list of
    forbidden folders cannot know. (Grading from a fresh copy without the solutions and their history would not:
    the kernel could still read the instructor's own checkout elsewhere on the machine.)"""
    denied: tuple[str, ...]
    allowed: tuple[str, ...]
    kit: Path                        # the folder with the batch's copy of gradingkit.py, which the kernels import
    fonts: Path | None = None        # matplotlib's font cache, built once for the batch (see matplotlib_fonts)
    isolate: bool = True             # run each kernel in a sandbox (sandbox.py); else as the grader's own user
    user: tuple[int, int] | None = None      # the kernels' user and group in the sandbox (None: the grader's)

    @classmethod
    def for_batch(cls, paths, out: Path | None, private: Path, isolate: bool = True) -> Policy:
        import hlmlib
        denied = {make.HERE.parent, make.HERE, private, *(Path(p).resolve().parent for p in paths)}
        if out is not None:
            denied.add(Path(out).resolve())
        paths_ = sysconfig.get_paths()
        allowed = {Path(hlmlib.__file__).parent, Path(sys.prefix), Path(sys.base_prefix), *SYSTEM_DATA,
                   *(Path(paths_[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib"))}
        kit = Path(private) / "kit"
        kit.mkdir()
        shutil.copy(KIT, kit / "gradingkit.py")
        kit.chmod(0o755)
        (kit / "gradingkit.py").chmod(0o644)
        policy = cls(tuple(sorted(str(p) for p in denied)), tuple(sorted(str(p) for p in allowed)), kit,
                     matplotlib_fonts(Path(private) / "matplotlib"), isolate,
                     sandbox.kernel_user() if isolate else None)
        if isolate:
            policy.check_sandbox(Path(private))
        return policy

    def sandbox_spec(self, folder: Path, writable: list[Path], limited: list[Path]) -> dict:
        """What a kernel sees (``sandbox.py``): the folders it may read (``allowed``, the kit) and the run's own
        ``writable`` folders and files; nothing else of the machine's file system, the repository included. The
        ``limited`` folders (among ``writable``) are one tmpfs of WRITE_LIMIT + WRITE_SLACK bytes and WRITE_ENTRIES +
        ENTRY_SLACK entries, a copy of what they hold: a write past it fails, whatever the way it is made."""
        read = [p for p in self.allowed if not p.startswith("/dev/")] + [str(self.kit)]
        return {"root": str(folder / "root"), "read": read, "write": [str(p) for p in writable],
                "cwd": str(writable[0]), "uid": self.user and self.user[0], "gid": self.user and self.user[1],
                "memory": MEMORY_LIMIT,
                "tasks": {"limit": TASK_LIMIT, "group": f"hlmgrader-{os.getpid()}-{folder.name}"},
                "limited": {"paths": [str(p) for p in limited], "bytes": WRITE_LIMIT + WRITE_SLACK,
                            "entries": WRITE_ENTRIES + ENTRY_SLACK}}

    def check_sandbox(self, private: Path) -> None:
        """Raise :class:`Unisolated` unless a sandboxed process can import what the tests use and cannot see the
        repository (its sources, the reference values, ``.git``)."""
        folder = Path(tempfile.mkdtemp(prefix="probe-", dir=private))
        try:
            (folder / "root").mkdir()
            work = folder / "work"
            work.mkdir()
            if self.user is not None:
                os.chown(work, *self.user)
            secrets = [str(p) for p in (make.SOURCE, REFERENCE_CACHE, make.HERE, make.HERE.parent / ".git")]
            probe = ("import os, sys, hlmlib, numpy, pandas, scipy, matplotlib\n"
                     f"seen = [p for p in {secrets!r} if os.path.exists(p)]\n"
                     "sys.exit(f'the sandbox shows {seen[0]}' if seen else 0)")
            spec = self.sandbox_spec(folder, [work], [work])
            why = sandbox.unavailable(spec, [sandbox.PYTHON, "-c", probe], _kernel_environment(work, work))
            with contextlib.suppress(OSError):
                sandbox.release_tasks(spec["tasks"]["group"])
        finally:
            remove_tree(folder)
        if why and ("FileNotFoundError" in why or "No such file" in why):
            raise Unisolated(f"the grading kernels could not be started in their sandbox ({why}): a path the grader "
                             "needs is not there. Namespaces are not what is missing: --unsafe-same-user is no "
                             "remedy for it")
        if why:
            raise Unisolated(
                f"the grading kernels cannot be isolated on this machine ({why}). The grader runs each kernel in "
                "Linux namespaces that hide the repository (sandbox.py): as root this needs CAP_SYS_ADMIN (a "
                "container started without it cannot), as another user it needs unprivileged user namespaces "
                "(sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04 also "
                "kernel.apparmor_restrict_unprivileged_userns=0). Without them, grade with --unsafe-same-user: "
                "kernels then run as your own user with only the in-process checks, and code that defeats them "
                "can read the instructor's solutions and change the reference values")

    def setup_cell(self, work: Path, tmp: Path, log: Path, channel: Path) -> str:
        """The first cell of a run (its temporary folder, where IPython names its cells' code, is readable)."""
        return SETUP.format(here=str(self.kit), work=str(work), log=str(log), channel=str(channel), denied=self.denied,
                            allowed=(*self.allowed, str(tmp)),
                            forbidden=sorted(integrity.FORBIDDEN_ATTRIBUTES | integrity.CHECKED_CALLS),
                            names=sorted(integrity.FORBIDDEN_NAMES | integrity.INJECTED_NAMES
                                         | integrity.HISTORY_NAMES),
                            write_limit=WRITE_LIMIT)


def matplotlib_fonts(folder: Path) -> Path | None:
    """A folder with matplotlib's font cache, built once by a process of its own, which every run copies into its
    own matplotlib folder (or None if it could not be built). A run that built it would start a thread to warn that
    building takes a while, which the kit refuses: matplotlib would not load."""
    env = {k: os.environ[k] for k in KERNEL_ENVIRONMENT if k in os.environ}
    env.update(MPLCONFIGDIR=str(folder), HOME=str(folder), MPLBACKEND="Agg")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sandbox.PYTHON, "-c", "import matplotlib.font_manager"], env=env, cwd=folder, timeout=300,
                       capture_output=True, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return folder if any(folder.glob("fontlist*.json")) else None


@dataclass
class Run:
    stopped_at: int | None               # index of the cell that stopped the run
    status: str
    message: str
    refusals: list[str]
    trimmed: list[int] = field(default_factory=list)     # cells whose output was dropped past OUTPUT_LIMIT
    channel: list[tuple] = field(default_factory=list)   # (test id, kind, payload): the kit's lines, verified
    tampering: str | None = None                         # why the channel cannot be trusted, if it cannot


class _BoundedKernelClient(AsyncKernelClient):
    """jupyter_client's client, whose sockets take no message part larger than MESSAGE_LIMIT (ZeroMQ's
    ``MAXMSGSIZE``): ZeroMQ drops a larger one, and the connection it came on, before it is read, so one message
    cannot fill the grader's memory (:func:`_watch_messages` takes it from there)."""

    monitors = List()          # (channel, socket reporting its connection's end) for shell and IOPub

    @default("context")
    def _bounded_context(self):
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, MESSAGE_LIMIT)    # the default of the sockets made from it
        self._created_context = True
        return context

    def _create_connected_socket(self, channel, identity=None):
        socket = super()._create_connected_socket(channel, identity)
        if channel in ("shell", "iopub"):
            self.monitors.append((channel, socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)))
        return socket


class _KernelManager(AsyncKernelManager):
    """jupyter_client's kernel manager, starting the kernel in the sandbox ``sandbox`` (a spec of ``sandbox.py``), if
    set."""

    sandbox: dict | None = None

    def format_kernel_cmd(self, extra_arguments=None) -> list[str]:
        argv = super().format_kernel_cmd(extra_arguments)
        if self.sandbox is None:
            return argv
        spec = {**self.sandbox, "give": [self.connection_file]}     # written by then, and readable by its owner only
        return sandbox.command(spec, argv)


class _TrimmingClient(NotebookClient):
    """nbclient's client, keeping at most OUTPUT_LIMIT characters of a run's output: a loop that prints sends tens
    of megabytes a second, which would fill the grader's memory. Every message that brings output is charged before
    nbclient handles it (streams, results, displays, comm messages and display updates: an update, or a display with
    a ``display_id``, rewrites every earlier output with that id, and is charged once for each), so what the run
    keeps, and the graded notebook written, stay under the limit. Past it only the errors are kept, shortened, and
    the cells trimmed are noted (the tests' records do not pass through the output: see :func:`read_channel`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.used, self.trimmed, self.running = 0, [], 0
        self.namespace = None            # a pidfd of the sandbox's process 1 (see _namespace_init)
        self.namespace_pid = None        # and its process id

    def drop_output(self, cell_index: int) -> None:
        """Keep no more output of the run, and note it in the cell ``cell_index``, once."""
        self.used = OUTPUT_LIMIT + 1
        if cell_index not in self.trimmed:
            self.trimmed.append(cell_index)
            self.nb.cells[cell_index].outputs.append(nbformat.v4.new_output("stream", name="stderr", text=(
                f"[the grader dropped the output past {OUTPUT_LIMIT:,} characters in this run]\n")))

    def process_message(self, msg, cell, cell_index):
        kind, content = msg["msg_type"], msg.get("content") or {}
        if kind in ("status", "execute_input", "clear_output"):
            return super().process_message(msg, cell, cell_index)
        text = content.get("text")
        size = (len(text) if kind == "stream" and isinstance(text, str) else len(json.dumps(content, default=str))
                + sum(len(b) for b in msg.get("buffers") or ()))
        display_id = (content.get("transient") or {}).get("display_id")
        if display_id and kind in ("execute_result", "display_data", "update_display_data"):
            rewritten = sum(len(outputs) for outputs in self._display_id_map.get(display_id, {}).values())
            size *= max(1, rewritten + (kind != "update_display_data"))
        if self.used + size <= OUTPUT_LIMIT:
            self.used += size
            return super().process_message(msg, cell, cell_index)
        self.drop_output(cell_index)
        if kind == "error":
            short = {"ename": str(content.get("ename", ""))[:200], "evalue": str(content.get("evalue", ""))[:2000],
                     "traceback": []}
            return super().process_message({**msg, "content": short}, cell, cell_index)
        return None


def _kernel_environment(work: Path, tmp: Path) -> dict:
    """The kernel's environment: no variable of the grader's but the locale and PATH, and folders of its own."""
    env = {k: os.environ[k] for k in KERNEL_ENVIRONMENT if k in os.environ}
    env.update(HOME=str(work), IPYTHONDIR=str(work / ".ipython"), MPLCONFIGDIR=str(work / ".matplotlib"),
               TMPDIR=str(tmp), JUPYTER_CONFIG_DIR=str(work / ".jupyter"), OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", PYTHONSAFEPATH="1",
               PYTHONNOUSERSITE="1")
    return env


def preallocate(path: Path, size: int) -> bool:
    """Create ``path`` empty, with ``size`` bytes of disk reserved for it (Linux's ``fallocate`` with
    ``FALLOC_FL_KEEP_SIZE``), so that appending up to ``size`` bytes cannot fail for want of space when other runs
    fill the disk; whether the space could be reserved (not on every file system)."""
    import ctypes
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fallocate = ctypes.CDLL(None, use_errno=True).fallocate
        fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
        return fallocate(fd, 1, 0, size) == 0           # 1: FALLOC_FL_KEEP_SIZE
    except (OSError, AttributeError):
        return False
    finally:
        os.close(fd)


class _TooMuch(Exception):
    """More entries, or deeper folders, than a run may make."""


def disk_use(folder: Path, entries: int, pid: int | None = None, depth: int | None = None) -> float:
    """The bytes the files under ``folder`` take on disk (their blocks, so a sparse file counts what it holds), and
    the files on its file system that process ``pid`` and its children hold open or mapped after they were deleted
    (:func:`deleted_but_held`), or infinity past ``entries`` files and folders, folders nested deeper than ``depth``
    (WRITE_DEPTH), or if a folder under it cannot be listed (one the run made unreadable). The walk goes through
    directory descriptors, so a path longer than the system takes (PATH_MAX) hides nothing, and holds one descriptor
    per level on an explicit stack: no recursion, which a deep tree would exhaust."""
    depth = WRITE_DEPTH if depth is None else depth
    total, seen = 0, 0

    def listing(fd: int):
        """The folders in the folder ``fd``, after counting its entries and their blocks."""
        nonlocal total, seen
        folders = []
        with os.scandir(fd) as it:
            for entry in it:
                seen += 1
                if seen > entries:
                    raise _TooMuch
                try:
                    st = entry.stat(follow_symlinks=False)
                except (FileNotFoundError, NotADirectoryError):      # removed since it was listed
                    continue
                total += st.st_blocks * 512
                if stat.S_ISDIR(st.st_mode):
                    folders.append(entry.name)
        return iter(folders)

    stack: list[list] = []                # [descriptor, the folders in it not walked yet], one per level
    try:
        stack.append([os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW), iter(())])
        stack[-1][1] = listing(stack[-1][0])
        while stack:
            name = next(stack[-1][1], None)
            if name is None:
                os.close(stack.pop()[0])
                continue
            if len(stack) > depth:
                return math.inf
            try:
                stack.append([os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=stack[-1][0]),
                              iter(())])
            except (FileNotFoundError, NotADirectoryError):
                continue
            stack[-1][1] = listing(stack[-1][0])
    except (_TooMuch, OSError):
        return math.inf
    finally:
        for fd, _ in stack:
            os.close(fd)
    return total if pid is None else total + deleted_but_held(pid, folder)


def limited_use(path: str) -> float:
    """The bytes the tmpfs at ``path`` (a run's, through ``/proc/PID/root``) holds, deleted files still open
    included, or infinity past WRITE_ENTRIES files and folders."""
    st = os.statvfs(path)
    if st.f_files - st.f_ffree > WRITE_ENTRIES:
        return math.inf
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def deleted_but_held(pid: int, folder: Path) -> int:
    """The bytes of the deleted files on ``folder``'s file system that process ``pid`` and its descendants still
    hold, through a file descriptor or a memory map (``/proc/PID/fd``, ``/proc/PID/map_files``): a file removed
    while open keeps its disk space until it is closed, out of sight of a count of the folder's files. Files made
    by ``memfd_create`` (memory in no folder, and in no process's resident size) count too, wherever they are.
    What one look costs is bounded: a deleted file mapped many times is looked at once (its maps share a device and
    inode), and past HELD_DESCRIPTORS descriptors in all the run counts as over its limit (infinity)."""
    try:
        device = os.stat(folder).st_dev
    except OSError:
        return 0
    counted, total, descriptors = set(), 0, 0
    for process in _descendants(pid):
        links, mapped = [], set()
        with contextlib.suppress(OSError):
            with os.scandir(f"/proc/{process}/fd") as entries:
                for entry in entries:
                    descriptors += 1
                    if descriptors > HELD_DESCRIPTORS:
                        return math.inf
                    links.append(entry.path)
        with contextlib.suppress(OSError), open(f"/proc/{process}/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)          # address, permissions, offset, device, inode, path
                if line.rstrip().endswith(" (deleted)") and len(fields) == 6 and (fields[3], fields[4]) not in mapped:
                    mapped.add((fields[3], fields[4]))
                    links.append(f"/proc/{process}/map_files/{fields[0]}")
        for link in links:
            try:
                target = os.readlink(link)
                if not target.endswith(" (deleted)"):
                    continue
                st = os.stat(link)          # the open file itself
            except OSError:
                continue
            ours = st.st_dev == device or target.startswith("/memfd:")    # a memfd: memory that no folder shows
            if stat.S_ISREG(st.st_mode) and ours and (st.st_dev, st.st_ino) not in counted:
                counted.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def _descendants(pid: int) -> list[int]:
    """``pid`` and the processes it started, and theirs (``/proc/PID/task/TID/children``)."""
    found, stack = [], [pid]
    while stack:
        process = stack.pop()
        found.append(process)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{process}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{process}/task/{task}/children") as children:
                    stack += [int(c) for c in children.read().split() if int(c) not in found]
    return found


def free_space(folder: Path) -> float:
    """The bytes an unprivileged process may still write on ``folder``'s file system (infinity if unknown)."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return math.inf
    return st.f_bavail * st.f_frsize


async def _watch_disk(folder: Path, client, over: list, limited: Path | None = None) -> None:
    """Every WATCH_INTERVAL seconds, the disk the run takes (:func:`disk_use`: its folder, and the deleted files its
    kernel holds; and, in the sandbox, its tmpfs, seen at ``limited`` in the run's root: :func:`limited_use`); past
    WRITE_LIMIT (or WRITE_ENTRIES entries), or FREE_SLACK more on the disk (the tmpfs, memory, is not counted there)
    than when the file system's free space fell below FREE_FLOOR while it stays there, note it in ``over`` and kill
    the kernel, which ends the run. Whatever fails in
    the watch ends the run too: a run the grader cannot measure is not let run unwatched."""
    low = None                             # the run's use of the disk when its free space fell below the floor
    try:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            pid = getattr(client.km.provisioner, "pid", None)
            used = on_disk = await asyncio.to_thread(disk_use, folder, WRITE_ENTRIES, pid)
            if limited is not None:
                if client.namespace_pid is None:
                    raise ProcessLookupError("the sandbox's process 1 was not found")
                try:
                    used += await asyncio.to_thread(limited_use, f"/proc/{client.namespace_pid}/root{limited}")
                except OSError:
                    if await _still_alive(client):
                        raise
            if free_space(folder) >= FREE_FLOOR:
                low = None
            elif low is None:
                low = on_disk
            if used > WRITE_LIMIT or (low is not None and on_disk > low + FREE_SLACK):
                over.append(
                    f"wrote more than {WRITE_ENTRIES:,} files and folders, folders deeper than {WRITE_DEPTH}, or a "
                    f"folder the grader cannot read, in its folder, or held more than {HELD_DESCRIPTORS:,} files "
                    "open" if used == math.inf
                    else f"wrote more than {WRITE_LIMIT / 1e6:g} MB in its folder (counting the deleted files it "
                         "held open)" if used > WRITE_LIMIT
                    else f"wrote {(on_disk - low) / 1e6:.3g} MB while the disk had less than {FREE_FLOOR / 1e6:g} MB "
                         "free")
                break
    except asyncio.CancelledError:
        raise
    except BaseException as exc:        # noqa: BLE001  (the watch is gone: so is the run)
        over.append(f"could not be measured by the grader's disk watch ({described(exc, 200)})")
    with contextlib.suppress(Exception):
        _kill_run(client)


def _alive(client) -> bool:
    """Whether the sandbox's process 1 (:func:`_namespace_init`) is still running: not gone, and not a zombie (a
    process that has exited takes signals until its parent reaps it, though its root is gone)."""
    try:
        signal.pidfd_send_signal(client.namespace, 0)
        with open(f"/proc/{client.namespace_pid}/stat", encoding="ascii", errors="replace") as status:
            state = status.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


async def _still_alive(client, within: float = 2.0) -> bool:
    """Whether the sandbox's process 1 is still running after ``within`` seconds: a process in the middle of exiting
    has lost its root before it is a zombie, so a failed look into its root is a death only once it is seen dead."""
    deadline = time.monotonic() + within
    while _alive(client):
        if time.monotonic() > deadline:
            return True
        await asyncio.sleep(0.05)
    return False


def _namespace_init(client) -> tuple[int | None, int | None]:
    """A pidfd of the sandbox's process 1 (the kernel: the child of the sandbox's parent process, which the kernel
    manager started), and its process id, or None, None (no sandbox, or it is gone). Killing it kills every process of
    the run's PID namespace, whatever they did to their parent-death signal; a pidfd cannot hit another process that
    took the same number."""
    parent = getattr(client.km.provisioner, "pid", None)
    if parent is None or client.km.sandbox is None:
        return None, None
    with contextlib.suppress(OSError, ValueError):
        with open(f"/proc/{parent}/task/{parent}/children", encoding="ascii") as children:
            pids = [int(c) for c in children.read().split()]
        if pids:
            return os.pidfd_open(pids[0]), pids[0]
    return None, None


async def _seal(client, folder: Path) -> None:
    """Have the sandbox make ``folder`` read-only in it (``sandbox.SEAL``) and wait until its mounts there say so
    (``/proc/PID/mountinfo`` of the sandbox's process 1); raise OSError if they do not within 5 s."""
    os.kill(client.km.provisioner.pid, sandbox.SEAL)
    names = {str(p).replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011").replace("\n", "\\012")
             for p in (folder, folder.resolve())}
    for _ in range(100):
        with open(f"/proc/{client.namespace_pid}/mountinfo", encoding="utf-8", errors="replace") as mountinfo:
            options = [line.split()[5] for line in mountinfo if line.split()[4] in names]
        if options and all("ro" in o.split(",") for o in options):
            return
        await asyncio.sleep(0.05)
    raise OSError(f"the folder of the kernel's sockets could not be made read-only in the sandbox ({options})")


def _kill_run(client, parent: bool = True) -> None:
    """End the run: SIGKILL the sandbox's process 1 (and with it its PID namespace: :func:`_namespace_init`) and,
    while the kernel manager still holds it (``parent``), the sandbox's parent process."""
    if client.namespace is not None:
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(client.namespace, signal.SIGKILL)
    if parent:
        with contextlib.suppress(Exception):
            os.kill(client.km.provisioner.pid, signal.SIGKILL)


async def _watch_messages(channel: str, monitor, client, over: list) -> None:
    """Each time ZeroMQ drops the connection of ``channel`` whose end ``monitor`` reports, for a message larger than
    MESSAGE_LIMIT (:class:`_BoundedKernelClient`), while the kernel is alive (a kernel that died is left to
    nbclient): on IOPub, connect again (what the kernel sent meanwhile is lost) and count the output dropped, as
    past OUTPUT_LIMIT; on the shell channel, whose reply the run waits for, note it in ``over`` and kill the kernel,
    which ends the run."""
    while True:
        event = zmq.utils.monitor.parse_monitor_message(await monitor.recv_multipart())
        if event["event"] != zmq.EVENT_DISCONNECTED:
            continue
        await asyncio.sleep(0.1)
        if not await client.km.is_alive():
            return
        if channel == "iopub":
            socket, url = client.kc.iopub_channel.socket, client.kc._make_url("iopub")
            with contextlib.suppress(zmq.ZMQError):
                socket.disconnect(url)
            socket.connect(url)
            client.drop_output(client.running)
            continue
        over.append(f"sent a message of more than {MESSAGE_LIMIT / 1e6:g} MB, which the grader does not read")
        _kill_run(client)
        return


async def _execute(nb, policy: Policy, folder: Path, timeout: float, timeout_file: float = math.inf) -> Run:
    """Run every cell in a fresh kernel whose folders are inside ``folder``; ``nb.cells[0]`` becomes the set-up,
    and a last cell ends the grader's channel.

    ``folder/work`` is the kernel's working directory and home (the only place it may write); ``folder`` itself holds
    the refusals the audit hook logs, the grader's channel, the kernel's own output and its sockets. In the sandbox,
    ``work`` and ``tmp`` are a size-limited tmpfs (:meth:`Policy.sandbox_spec`), where a write past WRITE_LIMIT +
    WRITE_SLACK fails and nothing reaches the disk; the kernel's files on the disk are each at most WRITE_LIMIT
    (RLIMIT_FSIZE; ``fallocate``, which reserves space past it, fails in the sandbox), and the sockets' folder
    becomes read-only in the sandbox once its sockets are made (:func:`_seal`).
    The channel and the log have their disk space reserved (:func:`preallocate`), and a run that takes more than
    WRITE_LIMIT in all is ended (:func:`_watch_disk`), after the fact: on the disk, a run can take 3 WRITE_LIMIT (those
    three files) for a fifth of a second, not fill it."""
    work, tmp, log, channel = folder / "work", folder / "tmp", folder / "refusals.log", folder / "channel"
    sockets = folder / "sockets"
    work.mkdir(parents=True)
    if policy.fonts is not None:
        shutil.copytree(policy.fonts, work / ".matplotlib")
    tmp.mkdir()
    sockets.mkdir()
    (folder / "root").mkdir()
    preallocate(log, gradingkit.REFUSAL_LOG_LIMIT)
    preallocate(channel, gradingkit.CHANNEL_LIMIT)
    if policy.user is not None:      # the kernel's own folders are its user's; the channel and log it may only write
        for path in (work, tmp, sockets):
            for inside, _, names in os.walk(path):
                for p in (inside, *(os.path.join(inside, n) for n in names)):
                    os.chown(p, *policy.user, follow_symlinks=False)
        for path in (log, channel):
            path.chmod(0o602)
    nb.cells[0].source = policy.setup_cell(work, tmp, log, channel)
    nb.cells.append(nbformat.v4.new_code_cell("__grader__.finish()", metadata={END_KEY: True}))
    client = _TrimmingClient(nb, timeout=math.ceil(timeout), kernel_name="python3", allow_errors=True,
                             resources={"metadata": {"path": str(work)}}, kernel_manager_class=_KernelManager,
                             extra_arguments=["--IPKernelApp.ignore_cwd=True"])
    client.km = client.create_kernel_manager()
    client.km.client_factory = _BoundedKernelClient
    client.km.transport, client.km.ip = "ipc", str(sockets / "kernel")   # local sockets, not TCP
    client.km.connection_file = str(sockets / "kernel.json")
    spec = policy.sandbox_spec(folder, [work, tmp, sockets, log, channel], [work, tmp])
    if policy.isolate:
        client.km.sandbox = {**spec, "seal": [str(sockets)]}
    deadline = time.monotonic() + timeout_file
    stopped, status, message, over, watches = None, "ok", "", [], []
    with open(folder / "kernel.log", "wb") as kernel_output:
        try:
            async with client.async_setup_kernel(env=_kernel_environment(work, tmp), stdout=kernel_output,
                                                 stderr=kernel_output):
                client.namespace, client.namespace_pid = _namespace_init(client)
                if policy.isolate:      # its sockets are made: the kernel may make no more files on the disk
                    await _seal(client, sockets)
                watches = [asyncio.create_task(_watch_disk(folder, client, over, work if policy.isolate else None)),
                           *(asyncio.create_task(_watch_messages(*m, client, over)) for m in client.kc.monitors)]
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type != "code":
                        continue
                    left = deadline - time.monotonic()
                    client.timeout = max(1, math.ceil(min(timeout, left)))     # nbclient takes whole seconds
                    per_file = left < timeout
                    limit = (f"the notebook ran longer than the limit of {timeout_file:g} s per file" if per_file
                             else f"{_where(nb, index)} ran longer than the limit of {timeout:g} s")
                    if left <= 0 or over:
                        stopped, status, message = index, "timeout", limit
                        break
                    try:
                        client.running = index
                        # the grader's own cells (set-up, tests, end) stay out of IPython's history (In, _ih, _i3),
                        # so that no student code can read their source there
                        ours = index == 0 or any(key in cell.metadata for key in GRADER_KEYS)
                        await client.async_execute_cell(cell, index, store_history=not ours)
                    except CellTimeoutError:
                        stopped, status, message = index, "timeout", limit + (
                            f" (in {_where(nb, index)})" if per_file else "")
                        break
                    except DeadKernelError:
                        stopped, status, message = index, "crashed", f"the kernel died in {_where(nb, index)}"
                        break
                    if index == 0 and _error_message(cell.outputs):
                        stopped, status = 0, "crashed"
                        message = "the grader's set-up cell failed: " + _error_message(cell.outputs)
                        break
                for watch in watches:       # before the kernel is shut down, which closes its sockets
                    watch.cancel()
        except Exception as exc:   # the kernel's sockets failing as it dies, or a kernel that cannot start
            if stopped is None:
                stopped, status = 0, "crashed"
                message = f"the kernel failed ({described(exc, 200)})"
        finally:
            for watch in watches:
                watch.cancel()
            _kill_run(client, parent=False)     # nothing the run started outlives it (a kernel that ignored shutdown)
            if client.namespace is not None:
                os.close(client.namespace)
            if policy.isolate:
                with contextlib.suppress(OSError):      # its processes are killed: an empty group at worst stays
                    await asyncio.to_thread(sandbox.release_tasks, spec["tasks"]["group"])
    if asyncio.current_task().cancelling():     # the batch was interrupted (nbclient may have taken it as a death)
        raise asyncio.CancelledError
    if over:
        status, message = "crashed", f"the run {over[0]}" + (
            f" (before or in {_where(nb, stopped)})" if stopped is not None else "")
    refusals = []
    with open(log, "rb") as file:                     # no more than the kit writes
        for line in file.read(gradingkit.REFUSAL_LOG_LIMIT).splitlines():
            try:
                what = str(json.loads(line))
            except ValueError:
                continue
            if what not in refusals:
                refusals.append(what)
    failed = channel_failure(nb.cells[-1].get("outputs", [])) if stopped is None else None
    if failed:
        status, message = "crashed", failed
    entries, tampering = read_channel(channel, complete=stopped is None and not failed)
    return Run(stopped, status, message, refusals, client.trimmed, entries, tampering)


def channel_failure(outputs) -> str | None:
    """Why the kit could no longer write the grader's channel, as the grader's last cell reports it (the kit's
    ChannelFailed: a write that failed, a full disk), or None. The run is then ``crashed``, not tampering: a
    notebook that raised such an error itself gains nothing, since only the lines signed before count."""
    error = _error_message(outputs)
    return error.replace("ChannelFailed: ", "", 1) + ": the tests after that count 0" \
        if error and error.startswith("ChannelFailed: ") else None


def read_channel(path: Path, complete: bool) -> tuple[list[tuple], str | None]:
    """The lines the kit sent on the grader's channel (``gradingkit._channel``), each checked against its HMAC and
    its number, and why the channel cannot be trusted, if it cannot: a line the kit did not write (one longer than
    the kit writes among them), a line missing, the kernel's output streams changed during a test (the kit's
    ``tampered``), more than the kit writes, or, for a run that ran to the end (``complete``), no ``end`` line or
    anything after it. Read line by line, at most ``CHANNEL_LIMIT`` bytes of it."""
    longest = gradingkit.RECORD_LIMIT + 200              # a record line and its signature
    entries: list[tuple] = []
    with open(path, "rb") as file:
        key_line = file.readline(200)
        try:
            key = bytes.fromhex(key_line.decode().rstrip("\n"))
        except ValueError:
            return [], "the grader's channel lost its key"
        used, number, tail = len(key_line), 0, b""
        while True:
            line = file.readline(longest + 1)
            used += len(line)
            if not line:
                break
            if used > gradingkit.CHANNEL_LIMIT:
                return entries, "the grader's channel holds more than the grading kit writes"
            if not line.endswith(b"\n"):
                if len(line) > longest:
                    return entries, "a line longer than the grading kit writes was found on the grader's channel"
                tail = line                         # after the last newline: a line cut short when the kernel died
                break
            mac, _, body = line[:-1].partition(b" ")
            if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).hexdigest().encode()):
                return entries, ("a line the grading kit did not write was found on the grader's channel "
                                 f"({line[:80]!r})")
            sent, test_id, kind, payload = json.loads(body)
            if sent != number:
                return entries, "lines of the grader's channel were removed"
            if kind == "tampered":
                return entries, f"the kernel's output streams were replaced or patched ({', '.join(payload[:3])})"
            entries.append((test_id, kind, payload))
            number += 1
    if complete and (tail or not entries or entries[-1][1] != "end"):
        return entries, "the grader's channel was cut short or written to after its end"
    return entries, None


def _where(nb, index: int) -> str:
    """A cell of the run, as the report names it: the test it runs, or its id and first line."""
    cell = nb.cells[index]
    if cell.metadata.get(TEST_KEY):
        return f"the test {cell.metadata[TEST_KEY]}"
    first = next((line for line in cell.source.splitlines() if line.strip()), "")[:60]
    return f"cell {cell_key(cell) or 'added by the student'} ({first!r})"


def _error_message(outputs) -> str | None:
    for o in outputs:
        if o.get("output_type") == "error":
            value = str(o.get("evalue", "")).strip()
            lines = [line for line in value.splitlines() if line.strip()][:6]
            return f"{o.get('ename')}: " + " / ".join(lines)[:600]
    return None


def _read_channel_entries(result: Result, entries: list[tuple], sent: dict[str, str]) -> None:
    """The tests' records and completions, and the changes the kit saw, from the channel's verified lines. A test
    completed only if the kit's ``done`` for it carries the digest of the code the grader sent for it (the test's
    source and the instructor's cells it builds on): a wrapper around the kit's ``run_test`` that ran other code,
    or none, gets no credit."""
    by_id = {t.id: t for t in result.tests}
    for test_id, kind, payload in entries:
        if kind == "changed":
            result.notes += [f"changed what the tests use: {c}" for c in payload
                             if f"changed what the tests use: {c}" not in result.notes]
        elif test_id in by_id and kind == "record":
            by_id[test_id].records[str(payload["name"])] = payload
        elif test_id in by_id and kind == "done":
            if isinstance(payload, dict) and payload.get("digest") == sent.get(test_id):
                by_id[test_id].completed = True
            else:
                result.notes.append(f"the test {test_id} said it completed, but not for the code the grader sent")


def _read_test_cell(result: TestResult, outputs) -> None:
    """Whether a test completed (it said so on the channel, and its cell shows no error), and why not."""
    error = _error_message(outputs)
    result.completed = result.completed and error is None
    result.message = "" if result.completed else error or "the test did not complete"


def remove_tree(path: Path) -> None:
    """Remove the folder ``path`` and everything under it, however deep: GNU ``rm``, whose walk has no recursion a
    deep tree could exhaust (``shutil.rmtree`` recurses once per level), staying on that file system; if something
    is left (a folder the run made unreadable, which a user other than root cannot list), after making the folders
    their owner's to list and change. Never raises: what cannot be removed stays on disk."""
    for argv in (["rm", "-rf", "--one-file-system", "--", str(path)], ["chmod", "-R", "u+rwx", "--", str(path)],
                 ["rm", "-rf", "--one-file-system", "--", str(path)]):
        if not os.path.lexists(path):
            return
        with contextlib.suppress(Exception):
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=900, check=False)


async def run_submission(path: Path, a: Assignment, submission, policy: Policy, private: Path,
                         timeout: float, timeout_file: float, reference_run: bool = False) -> Result:
    """Assemble, check and run one submission; its tests' verdicts come later, from :func:`score`."""
    result = new_result(path, a, submission)
    size = sum(len(str(cell.source).encode("utf-8", "surrogatepass")) for cell in submission.cells
               if cell.get("cell_type") == "code")
    if size > CODE_LIMIT:               # before anything parses it, here or in the static check's process
        return flagged(result, [f"the notebook's code is larger than {CODE_LIMIT:,} bytes ({size:,}), so it is "
                                "not checked or run"])
    try:
        reasons = await cells_not_run(submission)
    except StaticCheckFailed as exc:     # the submission's doing (a pathological notebook): this file only
        return flagged(result, [str(exc)])
    try:
        assembled = assemble(submission, a, reference_run, reasons)
    except GradingError:
        raise
    except Exception as exc:     # noqa: BLE001  (cells the grader cannot place: the notebook's, not the grader's)
        raise GradingError(f"the notebook's cells could not be put in order for grading ({described(exc)}): "
                           f"ask for the notebook as saved by Jupyter") from None
    result.notes += assembled.not_run
    result.unrun = {n - 1 for n, reason in reasons.items() if reason}
    try:
        problems = await static_check(assembled.student_code)
    except StaticCheckFailed as exc:     # the submission's doing (a pathological notebook): this file only
        problems = [str(exc)]
    by_id = {t.id: t for t in result.tests}
    if problems:
        return flagged(result, problems)
    try:
        folder = Path(tempfile.mkdtemp(prefix="run-", dir=private))
        try:
            run = await _execute(assembled.notebook, policy, folder, timeout, timeout_file)
        finally:
            remove_tree(folder)
    except OSError as exc:        # a full disk, most likely: this file is crashed, the batch goes on
        return crashed(result, f"{GRADER_FAILED} ({described(exc)}); is the disk full? "
                               "Grade it again")
    result.status, result.message = run.status, run.message
    if run.stopped_at is not None:
        result.message += "; the run stopped there"
    result.notes += [f"refused at run time: {r}" for r in run.refusals]
    if run.trimmed:
        result.notes.append(f"output past {OUTPUT_LIMIT:,} characters dropped, from "
                            f"{_where(assembled.notebook, run.trimmed[0])} on")
    _read_channel_entries(result, run.channel, assembled.sent)
    for index, test_id in assembled.positions.items():
        if run.stopped_at is not None and index >= run.stopped_at:
            by_id[test_id].completed, by_id[test_id].message = False, "not run: " + result.message
        else:
            _read_test_cell(by_id[test_id], assembled.notebook.cells[index].get("outputs", []))
    if run.tampering:
        result.status, result.message = "flagged", f"{run.tampering}: the score is 0, for the instructor to read"
    result.graded = assembled.notebook
    return result


GRADER_FAILED = "the grader could not set up, run or clean up this file's run"


def interrupted_result(path, a: Assignment, submission, signum: int) -> Result:
    """The result of a file the batch did not finish grading, stopped by the signal ``signum``: ``interrupted``,
    no test counted."""
    result = crashed(new_result(Path(path), a, submission),
                     f"the batch was interrupted ({signal.Signals(signum).name}) before this file was graded; "
                     "grade it again")
    result.status = "interrupted"
    return result


@contextlib.contextmanager
def _interruptible(interrupted: list):
    """While in it, SIGTERM (a CI job's time limit) stops the grader as SIGINT (Ctrl-C) does, by KeyboardInterrupt,
    so that its folders and cgroups are removed on the way out; the signal is appended to ``interrupted``. (During
    the runs, the event loop's handlers take over: see :func:`grade_many`.)"""
    def stop(signum, frame):
        interrupted.append(signum)
        raise KeyboardInterrupt
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


class StaticCheckFailed(Exception):
    """The static check could not judge a submission (too much code, or past its time or memory)."""


async def static_check(code: list[tuple[int, str]]) -> list[str]:
    """:func:`integrity.check_cells` on a submission's code, in a process of its own (:func:`_worker`). Raises
    StaticCheckFailed."""
    return await _worker([], code, "the static check of its code")


async def cells_not_run(submission) -> dict[int, str | None]:
    """{cell number from 1: :func:`integrity.not_run`'s reason, or None} for the submission's code cells, in a
    process of its own (:func:`_worker`: IPython's transformation of a cell can take minutes). Raises
    StaticCheckFailed."""
    numbers = [n for n, cell in enumerate(submission.cells, 1) if cell.cell_type == "code"]
    reasons = await _worker(["not-run"], [str(submission.cells[n - 1].source) for n in numbers],
                            "the reading of its code cells (which of them run)")
    return dict(zip(numbers, reasons))


async def _worker(args: list[str], payload, what: str):
    """``python integrity.py ARGS`` with ``payload`` as JSON on its input, its output read as JSON, with a
    wall-clock limit of STATIC_TIME seconds and an address space of STATIC_MEMORY bytes (RLIMIT_AS), so that a
    pathological notebook ends as that file's problem while the event loop, and every other file's run, goes on
    (:func:`run_submission` has refused code larger than CODE_LIMIT bytes before). Raises StaticCheckFailed."""
    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (STATIC_MEMORY, STATIC_MEMORY))

    process = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(integrity.__file__)), *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, preexec_fn=limit_memory,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    try:
        out, err = await asyncio.wait_for(process.communicate(json.dumps(payload).encode()), STATIC_TIME)
    except asyncio.TimeoutError:
        raise StaticCheckFailed(f"{what} took longer than {STATIC_TIME:g} s") from None
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {process.returncode}"]
        reason = ("it took more than the static check's memory limit" if "MemoryError" in last[0] else last[0])
        raise StaticCheckFailed(f"{what} failed: {reason}")
    return json.loads(out)


def flagged(result: Result, problems: list[str]) -> Result:
    """``result`` as a submission not run, for the instructor to read: ``flagged``, the first problems named."""
    result.status, result.message = "flagged", "not run, for the instructor to read: " + "; ".join(problems[:5])
    for t in result.tests:
        t.message = "not run: " + result.message
    return result


def crashed(result: Result, message: str) -> Result:
    """``result`` as a run the grader could not complete, for a reason not the submission's: ``crashed``, no test
    run."""
    result.status, result.message = "crashed", message
    for t in result.tests:
        t.completed, t.message = False, "not run: " + message
    return result


# --- scoring against the reference run ----------------------------------------------------------------------------

def mismatch(got, want, rtol: float, atol, where: str) -> str | None:
    """Why ``got`` is not ``want`` within ``atol + rtol * |want|`` (``atol`` a number or a structure like ``want``),
    or None. Plain values only (from JSON); a structure must match exactly, strings and booleans too (an array or
    Series of one element comes as the number it holds: gradingkit's ``record``); NaN matches only NaN and an
    infinity only the same infinity, whatever the tolerance (as ``numpy.isclose``)."""
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            keys = sorted(got) if isinstance(got, dict) else type(got).__name__
            return f"{where}: {keys} instead of the keys {sorted(want)}"
        for key in want:
            m = mismatch(got[key], want[key], rtol, atol[key] if isinstance(atol, dict) else atol, f"{where}[{key!r}]")
            if m:
                return m
        return None
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            size = len(got) if isinstance(got, list) else type(got).__name__
            return f"{where}: {size} entries instead of {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            m = mismatch(g, w, rtol, atol[i] if isinstance(atol, list) else atol, f"{where}[{i}]")
            if m:
                return m
        return None
    if isinstance(want, (bool, str)) or want is None:
        return None if type(got) is type(want) and got == want else f"{where}: {got!r} instead of {want!r}"
    if type(got) not in (int, float) or not isinstance(atol, (int, float)):
        return f"{where}: {got!r} instead of a number near {want!r}"
    if got == want:
        return None
    try:                                 # an int too large for a float (10 ** 400) is a number no test wants
        got, want, atol = float(got), float(want), float(atol)
    except OverflowError:
        return f"{where}: {_short(got)} instead of {_short(want)} (a number too large to compare)"
    # not through the tolerance below: ``rtol * inf`` would accept any number
    if math.isnan(want) or math.isnan(got) or math.isinf(want) or math.isinf(got):
        return None if math.isnan(want) and math.isnan(got) else f"{where}: {got!r} instead of {want!r}"
    if abs(got - want) <= atol + rtol * abs(want):
        return None
    return f"{where}: {got!r} instead of {want!r} (the instructor's, within rtol {rtol:g} and atol {atol:g})"


def _short(number) -> str:
    """A number as a report shows it: a huge int by its size, not its digits."""
    return f"an integer of {number.bit_length()} bits" if type(number) is int and number.bit_length() > 64 \
        else repr(number)


def score(result: Result, reference: dict[str, dict]) -> None:
    """Each test's verdict: completed in the kernel, and every value it recorded as in the reference run."""
    tests = {t.id: t for t in result.tests}
    for t in result.tests:
        if not t.completed:
            t.passed = False
            continue
        problem = None
        for name, want in reference.get(t.id, {}).items():
            got = t.records.get(name)
            problem = (f"{name}: not recorded" if got is None
                       else mismatch(got.get("value"), want["value"], want["rtol"], want["atol"], name))
            if problem:
                break
        t.passed, t.message = problem is None, problem or ""
    for t in result.tests:
        if t.guards and not t.passed and tests[t.guards].passed:
            tests[t.guards].passed = False
            tests[t.guards].message = (f"passes on its own data only: {t.id}, the same check on other data, "
                                       f"failed ({t.message})")
    if result.status == "ok" and result.notes:
        result.status = "review"
        result.message = "; ".join(result.notes[:3]) + (f"; and {len(result.notes) - 3} more" if
                                                          len(result.notes) > 3 else "")
    elif result.notes and result.status in ("timeout", "crashed"):
        result.message += "; " + "; ".join(result.notes[:3])


def reference_of(result: Result) -> dict[str, dict]:
    """The values the instructor version recorded, test by test; every test must pass and every hidden test must
    record a value (else the source is broken: a GradingError)."""
    a = result.assignment
    failing = [t for t in result.tests if not t.completed or (t.hidden and not t.records)]
    if result.status == "crashed" and result.message.startswith(GRADER_FAILED):
        raise GradingError(f"the instructor version of {a.id} could not be run: {result.message}")
    if result.status != "ok" or failing or result.notes:
        what = (f"{failing[0].id}: {failing[0].message or 'records no value'}" if failing
                else f"{result.status}: {result.message}" if result.status != "ok" else "; ".join(result.notes))
        raise GradingError(f"the instructor's solution of {a.id} fails in the reference run ({what}); fix "
                           f"{a.path.name} (every hidden test must record its values)")
    for t in result.tests:
        for name, record in t.records.items():
            # the instructor's value must match itself as a submission's will be matched: an ``atol`` of another
            # structure than the value would fail (or, too short, crash) every submission's comparison
            value, rtol, atol = record["value"], record["rtol"], record["atol"]
            try:
                problem = mismatch(value, value, rtol, atol, name)
            except (IndexError, KeyError):
                problem = f"{name}: an atol of another structure than the value"
            if problem:
                raise GradingError(f"the tolerance of a value {t.id} records in {a.id} does not fit it ({problem}); "
                                   f"fix {a.path.name} (atol is a number or an array of the value's shape)")
    return {t.id: t.records for t in result.tests}


def _reference_key(a: Assignment) -> str:
    """A hash of what the reference values depend on: the source, the kit, hlmlib and the libraries' versions."""
    import hlmlib
    import numpy
    import pandas
    import scipy
    digest = hashlib.sha256()
    package = Path(hlmlib.__file__).parent
    files = [a.path, make.HERE / "gradingkit.py", make.HERE / "make.py",
             *sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts)]
    for path in files:
        digest.update(str(path.relative_to(path.anchor)).encode() + b"\0" + path.read_bytes())
    digest.update(f"{sys.version}|{numpy.__version__}|{scipy.__version__}|{pandas.__version__}".encode())
    return digest.hexdigest()[:20]


async def reference_run(a: Assignment, policy: Policy, private: Path, timeout: float, timeout_file: float,
                        use_cache: bool = True, written: dict | None = None) -> dict[str, dict]:
    """The instructor version's records, from the cache or (``use_cache`` false, none cached, or a cached file whose
    signature does not match: :func:`_signed`) from a run, which then updates the cache. Kernels can neither read
    nor write the cache: it is not in their sandbox, and the audit hook refuses it too. ``written``: the cache's
    files this writes (their size and time) or removes (None), for the batch's check of the environment."""
    written = {} if written is None else written
    _cache_key(written)                     # made now if missing, so that the batch's check knows the grader made it
    cached = REFERENCE_CACHE / f"{a.id}-{_reference_key(a)}.json"
    if use_cache and cached.exists():
        try:
            return _signed(cached, json.loads(cached.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            print(printable(f"the cached reference values of {a.id} are not used ({exc}): the instructor version "
                            "runs again"), file=sys.stderr)
    result = await run_submission(Path(f"<the instructor version of {a.id}>"), a, make.instructor_version(a),
                                  policy, private, timeout, timeout_file, reference_run=True)
    reference = reference_of(result)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        for old in cached.parent.glob(f"{a.id}-*.json"):
            old.unlink()
            written[str(old)] = None
        write_atomically(cached, json.dumps({"values": reference, "mac": _mac(cached.name, reference)}))
        st = cached.stat()
        written[str(cached)] = (st.st_size, st.st_mtime_ns)
    except OSError as exc:        # the values are used all the same; the next batch runs the instructor version again
        print(printable(f"the reference values of {a.id} could not be cached ({described(exc)})"),
              file=sys.stderr)
    return reference


def _mac(name: str, values: dict) -> str:
    """The signature of the cached reference values ``values`` of the file ``name``: an HMAC-SHA256 under the
    key in ``build/reference/key`` (made on first use, readable by the grader's user only; see :func:`_cache_key`)."""
    text = json.dumps({"file": name, "values": values}, sort_keys=True).encode()
    return hmac.new(_cache_key(), text, hashlib.sha256).hexdigest()


def _signed(path: Path, content: dict) -> dict:
    """The values of a cached file ``content``, if its signature is the grader's; else ValueError."""
    if not hmac.compare_digest(str(content["mac"]), _mac(path.name, content["values"])):
        raise ValueError(f"{path.name} was changed since the grader wrote it: its signature does not match")
    return content["values"]


def _cache_key(written: dict | None = None) -> bytes:
    """The key that signs the reference cache, from ``build/reference/key``, made there if missing or unreadable
    (the cached values then count as unsigned, and are computed again). ``written``: as in :func:`reference_run`."""
    path = REFERENCE_CACHE / "key"
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        pass
    key = os.urandom(32)
    REFERENCE_CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_name("key.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(key.hex())
    partial.replace(path)
    if written is not None:
        st = path.stat()
        written[str(path)] = (st.st_size, st.st_mtime_ns)
    return key


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it, so that a failed write (a full disk) leaves no
    file cut short; the OSError is raised. A lone surrogate (valid in a notebook's JSON, not in UTF-8) is written as
    its escape, which JSON reads back as the same character."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(text, encoding="utf-8", errors="backslashreplace")   # a lone surrogate: JSON's \ud800
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def grade(path: Path, timeout: float = 300, timeout_file: float = 900) -> Result:
    """Grade one submission (see the module docstring)."""
    [outcome] = grade_many([path], timeout=timeout, timeout_file=timeout_file)
    if isinstance(outcome, GradingError):
        raise outcome
    return outcome


def _environment_files() -> dict[str, tuple[int, int]]:
    """Size and modification time of the code the kernels import or the grader runs (the assignments folder,
    hlmlib, the installed packages and the standard library's start-up hooks) and of the reference cache's files."""
    import hlmlib
    paths = sysconfig.get_paths()
    trees = {make.HERE, Path(hlmlib.__file__).parent, Path(paths["purelib"]), Path(paths["platlib"])}
    stamps = {}

    def stamp(path):
        try:
            st = os.stat(path)
            stamps[path] = (st.st_size, st.st_mtime_ns)
        except OSError:
            pass

    for root in trees:
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = [d for d in subfolders if d != "build"]
            for name in names:
                if name.endswith(CODE_SUFFIXES):
                    stamp(os.path.join(folder, name))
    for name in ("sitecustomize.py", "usercustomize.py"):
        stamp(os.path.join(paths["stdlib"], name))
    if REFERENCE_CACHE.is_dir():
        for path in REFERENCE_CACHE.iterdir():
            stamp(str(path))
    return stamps


def grade_many(paths, timeout: float = 300, timeout_file: float = 900, jobs: int | None = None,
               out: Path | None = None, use_cache: bool = True, isolate: bool = True,
               interrupted: list | None = None) -> list[Result | GradingError]:
    """Grade several submissions, ``jobs`` at a time; a file that cannot be graded gives its GradingError.

    SIGINT (Ctrl-C) or SIGTERM stops the batch, its signal appended to ``interrupted``: during the runs, every run is
    cancelled (its kernel killed, its folder and cgroup removed) and each file not graded by then is
    ``interrupted`` (:func:`interrupted_result`); before or after them, KeyboardInterrupt is raised once the
    batch's folder is removed.

    Every submission is read before any runs; the instructor version of each assignment present runs first (or
    comes from the cache). Each kernel runs in a sandbox (``sandbox.py``) unless ``isolate`` is false; where none
    can be made, :class:`Unisolated` is raised before anything runs. The files of the environment and the reference
    cache are compared before and after: kernels cannot see them (the sandbox) nor write them (the audit hook
    refuses it too), so a change the grader did not make came from outside this batch, and every result is
    flagged."""
    interrupted = [] if interrupted is None else interrupted
    with _interruptible(interrupted):
        return _grade_many(paths, timeout, timeout_file, jobs, out, use_cache, isolate, interrupted)


def _grade_many(paths, timeout, timeout_file, jobs, out, use_cache, isolate, interrupted):
    catalogue = make.assignments()
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w", encoding="ascii") as adj:
        adj.write(str(GRADER_OOM_SCORE_ADJ))          # lowering it needs root (CAP_SYS_RESOURCE); else it stays
    before = _environment_files()
    loaded: dict[int, tuple] = {}
    outcomes: list = [None] * len(paths)
    for i, p in enumerate(paths):
        try:
            submission = read_notebook(Path(p))
            loaded[i] = (submission, identify(submission, catalogue))
        except GradingError as exc:
            outcomes[i] = _error_of(p, exc)
        except Exception as exc:        # noqa: BLE001  (whatever is wrong with one file, it is that file's error)
            outcomes[i] = _error_of(p, GradingError(f"the notebook could not be read or identified "
                                                    f"({described(exc)})"))
    needed = {a.id: a for _, a in loaded.values()}
    private = Path(tempfile.mkdtemp(prefix="grading-"))
    try:
        policy = Policy.for_batch(paths, out, private, isolate)
    except BaseException:
        remove_tree(private)
        raise
    written: dict[str, tuple | None] = {}        # the reference cache's files the grader wrote or removed
    limit = asyncio.Semaphore(jobs or os.cpu_count() or 2)
    references: dict[str, dict | GradingError] = {}
    ready: dict[str, asyncio.Event] = {}
    layouts: dict[str, WrittenLayout] = {}       # each assignment's, made once for its files

    async def reference(a):
        try:
            async with limit:
                references[a.id] = await reference_run(a, policy, private, timeout, timeout_file, use_cache,
                                                       written)
        except GradingError as exc:
            references[a.id] = exc
        except Exception as exc:     # whatever failed, the other assignments' files are still graded
            references[a.id] = GradingError(f"the instructor version of {a.id} could not be run "
                                            f"({described(exc)})")
        finally:
            ready[a.id].set()

    async def one(i):
        """Run and score file ``i``: whatever fails on the way ends this file only (``crashed``, or its error)."""
        submission, a = loaded[i]
        try:
            async with limit:
                try:
                    result = await run_submission(Path(paths[i]), a, submission, policy, private, timeout,
                                                  timeout_file)
                except GradingError as exc:
                    outcomes[i] = _error_of(paths[i], exc)
                    return
                except Exception as exc:     # a failure of the grader's on this file ends this file only
                    result = crashed(new_result(Path(paths[i]), a, submission),
                                     f"{GRADER_FAILED} ({described(exc)})")
            add_writing(result, layouts)
            await ready[a.id].wait()
            ref = references.get(a.id)
            if ref is None:             # its reference run was interrupted: so is this file
                return
            if isinstance(ref, GradingError):
                outcomes[i] = _error_of(paths[i], GradingError(str(ref)))
                return
            try:
                score(result, ref)
            except Exception as exc:     # noqa: BLE001
                result = crashed(result, f"the grader could not score this file ({described(exc)}); "
                                         f"report it with the file")
            for t in result.tests:          # scored: the values are not held for the rest of the batch
                t.records = {}
            outcomes[i] = result
        except Exception as exc:         # noqa: BLE001  (never the batch)
            outcomes[i] = _error_of(paths[i], GradingError(f"the grader failed on this file ({described(exc)})"))

    async def everything():
        _quiet_kernel_shutdowns()
        ready.update({aid: asyncio.Event() for aid in needed})
        tasks = [asyncio.ensure_future(c) for c in (*(reference(a) for a in needed.values()),
                                                    *(one(i) for i in loaded))]

        def stop(signum):
            interrupted.append(signum)
            if len(interrupted) == 1:      # a second Ctrl-C does not cut the clean-up short
                for task in tasks:
                    task.cancel()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ValueError, RuntimeError):     # not in the main thread: no signals here
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop, signum)
        # nbclient sets its own handlers for each run (shutting that kernel down, and the batch running on), and
        # removes them after it: these stay the batch's while it runs
        loop.add_signal_handler = loop.remove_signal_handler = lambda *args, **kwargs: None
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            del loop.add_signal_handler, loop.remove_signal_handler

    try:
        asyncio.run(everything())
    finally:
        remove_tree(private)
    if interrupted:
        for i, (submission, a) in loaded.items():
            if outcomes[i] is None:
                outcomes[i] = interrupted_result(paths[i], a, submission, interrupted[0])
    before.update(written)
    after = _environment_files()
    changed = sorted(f for f in before.keys() | after.keys() if before.get(f) != after.get(f))
    if changed:
        for o in outcomes:
            if isinstance(o, Result):
                o.status, o.message = "flagged", (
                    f"files of the grader, its reference values, hlmlib or the Python environment changed while "
                    "this batch ran "
                    f"({', '.join(changed[:3])}); the kernels cannot write there, so something outside the batch "
                    "did: another batch graded at the same time in this checkout (it writes the reference values it "
                    "computes; grade one batch at a time, and grade this one again), or else restore them (git "
                    "checkout, pip install -r requirements.txt) and grade again")
    return outcomes


def _error_of(path, error: GradingError) -> GradingError:
    """``error``, as the error of the file ``path``."""
    error.file = Path(path)
    return error


def _quiet_kernel_shutdowns() -> None:
    """A kernel that died leaves its sockets' errors to asyncio and jupyter_client's loggers: the report says what
    happened, so their tracebacks are not printed."""
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
    for name in ("traitlets", "nbclient", "jupyter_client", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


# --- reports ---------------------------------------------------------------------------------------------------

def printable(text, lines: bool = False) -> str:
    """``text`` with its control and format characters escaped (``\\r``, ``\\x1b``, ``\\u202e``, ...), so that a
    submission's text (a refused path, an error message, a written answer, a file name) cannot rewrite or hide what
    a terminal, or a reader of the printed lines or the CSV, shows. With ``lines``, newlines and tabs stay (written
    answers). In Markdown, such text goes through :func:`inline` (outside a fence) or :func:`fenced`."""
    keep = "\n\t" if lines else ""
    return "".join(c if c in keep or unicodedata.category(c) not in _UNPRINTABLE
                   else c.encode("unicode_escape").decode("ascii") for c in str(text))


_UNPRINTABLE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co"}     # control, format (bidi), separators, surrogates, private
_MARKDOWN_ACTIVE = re.compile(r"([\\`\[\]|])")


def inline(text) -> str:
    """A submission's text (a file name, a refused path, a message) for Markdown outside a fence (a heading, a list
    item, a table cell), shown as it is when rendered: :func:`printable`, with ``&``, ``<`` and ``>`` as HTML
    entities (a ``<template>`` or ``<!--`` in a file name would otherwise hide all that follows in a browser, and
    an entity such as ``&#8238;`` would reverse it) and backslashes, backticks, brackets and ``|`` escaped with a
    backslash (no link, image or code span is made, and no table cell ends)."""
    return html.escape(_MARKDOWN_ACTIVE.sub(r"\\\1", printable(text)), quote=False)


def summary_line(r: Result) -> str:
    per_q = ", ".join(f"{q} {earned:g}/{r.assignment.questions[q]:g}" for q, earned in r.by_question().items())
    note = f"{r.status.upper()} ({r.message}): " if r.status != "ok" else ""
    return printable(f"{r.file}: {r.assignment.id}: {note}{per_q}: {r.score:g}/{r.total:g}")


def report(r: Result) -> str:
    lines = [f"# {inline(r.file)}: {r.assignment.title}", "",
             f"Assignment `{r.assignment.id}`, score **{r.score:g} / {r.total:g}**"
             + ("" if r.status == "ok" else f" ({r.status}: {inline(r.message)})"), ""]
    if r.notes:
        lines += ["For the instructor to read:", "", *(f"- {inline(n)}" for n in r.notes), ""]
    lines += ["| question | points | test | result |", "|---|---|---|---|"]
    earned = r.by_question()
    for t in r.tests:
        q = f"{t.question} ({earned[t.question]:g}/{r.assignment.questions[t.question]:g})"
        kind = "hidden" if t.hidden else "visible"
        outcome = f"passed, {t.points:g}" if t.passed else f"failed, 0/{t.points:g}: {inline(t.message)}"
        lines.append(f"| {q} | {t.points:g} | {t.id} ({kind}) | {outcome} |")
    if r.assignment.written:
        lines += ["", "Written answers (" + ", ".join(f"{q}: {p:g} points" for q, p in r.assignment.written.items())
                  + ") are graded by hand: see the written-answers document."]
    return "\n".join(printable(line) for line in lines) + "\n"


@dataclass
class WrittenLayout:
    """Where a source's written answers are. Each has a part of the notebook: its own question's cell
    (:func:`_own_question`) and the plain code cells (neither a test nor a code answer) around the answer, up to the
    next question, test, code answer or written answer."""
    answers: list[tuple[int, str, dict]]  # (index in the source, answer cell id, metadata)
    questions: dict[str, str]             # answer cell id -> its own question's cell id (where there is one)
    part: dict[str, str]                  # source cell id -> the id of the written answer whose part it is in
    handed_out: dict[str, str]            # source cell id -> its text as handed out (the student's version)
    tests: set[str]                       # tests (the graded notebook drops every cell with a test's id)
    answers_code: set[str]                # code answers: the student's code, the tests' to judge
    types: dict[str, str]                 # source cell id -> its cell type in the source


def written_layout(a: Assignment) -> WrittenLayout:
    """The :class:`WrittenLayout` of an assignment's source."""
    cells = a.notebook.cells
    order = [cell_meta(c)["id"] for c in cells]
    tests = {order[j] for j, c in enumerate(cells) if cell_meta(c).get("kind") in make.TEST_KINDS}
    answers_code = {order[j] for j, c in enumerate(cells)
                    if c.cell_type == "code" and make.CODE_SOLUTION.search(c.source)}
    written = {order[j] for j, c in enumerate(cells) if cell_meta(c).get("kind") == "written"}
    answers = [key in tests | answers_code | written for key in order]

    def plain(j):
        return cells[j].cell_type == "code" and not answers[j]

    layout = WrittenLayout([], {}, {}, {order[j]: make.handed_out(a, c, True) for j, c in enumerate(cells)}, tests,
                           answers_code,
                           {order[j]: c.cell_type for j, c in enumerate(cells)})
    for n, cell in enumerate(cells):
        if order[n] not in written:
            continue
        question = _own_question(cells, n, answers)
        start, end = (n if question is None else question), n + 1
        while question is None and start > 0 and plain(start - 1):
            start -= 1
        while end < len(cells) and plain(end):
            end += 1
        layout.part.update((order[j], order[n]) for j in range(start, end))
        layout.answers.append((n, order[n], cell_meta(cell)))
        if question is not None:
            layout.questions[order[n]] = order[question]
    return layout


@dataclass
class Writing:
    """What a student wrote for one written answer (or outside every written answer's part)."""
    pieces: list = field(default_factory=list)   # see student_writing
    found: bool = False                          # a cell carries the answer cell's id
    in_place: bool = False                       # ... and one of them is a markdown cell with an answer in it
    retyped: set = field(default_factory=set)    # the types the answer cell, or a copy of it, was changed to
    copied: bool = False                         # ... beside a markdown cell with its id (a copy, or the cell)
    code_retyped: dict = field(default_factory=dict)   # (outside the written answers) code answer id ->
    #                                                   (its new types, all its cells changed, its text shown)
    test_added: dict = field(default_factory=dict)     # (outside the written answers) test cell id -> its lines
    #                                                   of code not in the source's (:func:`_code_added`; not run)


def student_writing(submission, layout: WrittenLayout, unrun: set | None = None) -> dict[str | None, Writing]:
    """Everything a student wrote that a hand grader may need, by the written answer whose part of the notebook
    holds it (key None: outside every part), so that no text is lost wherever the student put it:

    - a cell with an answer cell's id (the answer cell, its parts after Split Cell, a copy): its text, under that
      answer (labelled with its type if it became a raw or code cell, with its place if it is outside the part:
      moved, or a copy);
    - a cell the student added, labelled with its place: it belongs to the part of the cell above it (a copy of a
      source cell counts as that cell; an answer cell, moved or copied, as its answer's part): markdown and raw
      cells; code cells in a written answer's part, and elsewhere those that hold prose (:func:`_code_prose`);
    - a source markdown cell the student changed (also one turned into code or raw), and the parts and copies of a
      source code cell turned into markdown or raw: those not as handed out, together (a split line put back:
      :func:`_joined`), in full, marked against it (:func:`_marked`), with their places; a code answer cell, part
      or copy changed to markdown or raw is also noted (``code_retyped``: it did not run);
    - text added to a source code cell (its code copies and parts together, a line split by Split Cell put back),
      the lines not in the cell as handed out (:func:`_added_lines`), and but for a code answer only those of its
      code and comments that differ from the cell's (:func:`_code_added`: a formatter's re-wrapped lines are not
      added), with the places of the copies that hold them: of a code cell in a written answer's part; of a test
      cell (the graded notebook runs the instructor's test in its place: its code noted, as ``test_added``); of
      other code cells, where the added lines hold prose; of a code answer, only where a cell of it did not run
      (``unrun``: the graded notebook has the student's code that ran, and replaces what did not; for a submission
      not assembled, where a cell does not parse).

    A place names the cell above ("after the cell X"; "after a copy or part of the cell X" where X has copies or
    parts, and then "that is below the cell Y", Y the nearest cell above with neither, where X and Y are in
    different parts: a copy counts as its cell wherever it is, and this says where it is).

    Each piece is (position, Markdown, images the graded notebook keeps, images only the submitted notebook has,
    what it is: "text" (typed in a markdown or raw cell, or the answer cell), "prose" or "words" in code
    (:func:`_code_prose`), or "" (code); see :func:`written_entry` for the report notes these call for)."""
    ids = {w for _, w, _ in layout.answers}
    out = {w: Writing() for w in ids} | {None: Writing()}
    budget, marking = PARSE_BUDGET, MARK_LINES

    def prose(code, lines=None):     # parse no more than PARSE_BUDGET characters of the notebook in all
        nonlocal budget
        budget -= len(code)
        return "prose" if budget < 0 else _code_prose(code, lines)

    def code_added(text, given, cells):     # within PARSE_BUDGET, as prose() (past it: every added line)
        nonlocal budget
        budget -= 2 * len(text)             # parsed, and tokenized
        return _code_added(text, given, cells) if budget >= 0 and len(text) <= PARSE_LIMIT else None

    def runs(i):        # whether the grader ran the code cell i (``unrun``); not assembled: whether it parses
        nonlocal budget
        if unrun is not None:
            return i not in unrun
        budget -= len(submission.cells[i].source)
        return budget >= 0 and _parses(submission.cells[i].source)
    copies: dict[str, list[tuple[int, str]]] = {}      # source cell id -> [(position, place)] of its copies or parts
    anchor = None           # the id of the last source or answer cell above: its part holds the cells added below it
    single = None           # ... and of the last one above that has no copy or part
    times = Counter(cell_key(c) for c in submission.cells)
    markdown_ids = {cell_key(c) for c in submission.cells if c.cell_type == "markdown"}

    def place():
        if not anchor:
            return "at the top of the notebook"
        if times[anchor] == 1:
            return f"after the cell {anchor}"
        # a copy elsewhere counts as its cell: say where it is when that is another written answer's part
        near = f" that is below the cell {single}" if single and layout.part.get(single) != layout.part.get(
            anchor) else ""
        return f"after a copy or part of the cell {anchor}{near}"

    def images(cells):      # the graded notebook keeps markdown cells, except copies of tests (it drops their ids)
        kept = [c.cell_type == "markdown" and cell_key(c) not in layout.tests for c in cells]
        return [sum(len(c.get("attachments") or {}) for c, k in zip(cells, kept) if k == graded)
                for graded in (True, False)]

    for i, cell in enumerate(submission.cells):
        key = cell_key(cell)
        if key in ids:
            mine = out[key]
            mine.found = True
            if _has_text(cell):
                away = "" if layout.part.get(anchor) == key else f"*(the answer cell or a copy of it, {place()})*\n"
                if cell.cell_type == "markdown":
                    mine.in_place = True
                    mine.pieces.append((i, away + cell.source, *images([cell]), "text"))
                else:
                    mine.retyped.add(cell.cell_type)
                    # beside a markdown cell with its id, which of the two the student copied cannot be told
                    mine.copied = key in markdown_ids
                    what = "the answer cell or a copy of it is" if mine.copied else "the answer cell was changed to"
                    mine.pieces.append((i, f"{away}*({what} a {cell.cell_type} cell)*\n" + fenced(cell.source),
                                        *images([cell]), "text"))
            anchor, single = key, key if times[key] == 1 else single
        elif key in layout.handed_out:
            copies.setdefault(key, []).append((i, place()))
            anchor, single = key, key if times[key] == 1 else single
        elif _has_text(cell):
            w = layout.part.get(anchor)
            is_prose = "text" if cell.cell_type != "code" else prose(cell.source)
            if w is None and not is_prose:
                continue
            out[w].pieces.append((i, f"*(in a new {cell.cell_type} cell {place()})*\n" + fenced(cell.source),
                                  *images([cell]), is_prose))
    for key, every in copies.items():
        w = layout.part.get(key)
        question = w is not None and layout.questions.get(w) == key
        given = layout.handed_out[key]
        # a source code cell's copies that are code run as code (or are replaced where the grader does not run
        # them); its other copies, and every copy of a markdown cell, are text
        code = "code" if layout.types[key] == "code" else None
        at = [(i, where) for i, where in every if submission.cells[i].cell_type == code]
        if at:
            cells = [submission.cells[i] for i, _ in at]
            text, starts = _joined([c.source for c in cells], given)     # a line split in two put back
            lines = _added_lines(text, given, len(cells))
            if key not in layout.answers_code and lines:
                # added: the lines not in the cell of the statements that differ from its, as code (a formatter's
                # re-wrapped lines are not added), and of the comments it does not have; in a test cell, the code
                # the student added never ran (the instructor's test runs in its place)
                found = code_added(text, given, len(cells))
                statements, comments = (lines, set()) if found is None else (found[0] & lines, found[1] & lines)
                lines = statements | comments
                if statements and key in layout.tests:
                    out[w].test_added[key] = len(statements)
            is_prose = prose(text, lines) if lines else ""
            # a code answer whose cells all run is the student's code, in the graded notebook; a cell the grader
            # does not run (each judged alone) it replaces there, so their text comes here; a test cell's, as above;
            # outside the written answers, other code cells' prose only
            if lines and not (all(runs(i) for i, _ in at) if key in layout.answers_code else
                              key not in layout.tests and w is None and not is_prose):
                holding = sorted({bisect.bisect_left(starts, m) - 1 for m in lines})    # the cells that hold them
                places = "; ".join(dict.fromkeys(at[n][1] for n in holding))
                added = "\n".join(line for n, line in enumerate(text.split("\n"), 1) if n in lines)
                whose = ("the question's cell" if question else
                         f"the {'test' if key in layout.tests else 'code'} cell {key}")
                out[w].pieces.append((at[holding[0]][0], f"*(added to {whose}, {places})*\n" + fenced(added),
                                      *images(cells), is_prose))
        at = [(i, where) for i, where in every if submission.cells[i].cell_type != code]
        if not at:
            continue
        # text: its parts or copies not as handed out, together, in full and marked against it, so that no line the
        # student typed is lost, even one that repeats a line of the cell
        changed = [(i, where) for i, where in at if _squeezed(submission.cells[i].source) != _squeezed(given)]
        text = _joined([submission.cells[i].source for i, _ in changed], given)[0]
        listed = bool(changed) and _squeezed(text) != _squeezed(given)      # not split or re-saved only
        if key in layout.answers_code:                  # a part or copy of a code answer that did not run
            out[None].code_retyped[key] = (sorted({submission.cells[i].cell_type for i, _ in at}),
                                           len(at) == len(every), listed)
        if not listed:
            continue
        marking -= text.count("\n") + 1
        shown, how = ((_marked(text, given), ": + a line not in the cell as handed out at that place (typed, copied, "
                       "changed or moved), - a line of it not there") if marking >= 0 else (text, ""))
        indices = {i for i, _ in changed}
        # one place for parts side by side (Split Cell), one for each copy
        places = "; ".join(dict.fromkeys(where for i, where in changed if i - 1 not in indices))
        kinds = sorted({submission.cells[i].cell_type for i, _ in changed})
        whose = ("the question's cell" if question else f"the {kinds[0]} cell {key}" if len(kinds) == 1 else
                 f"the cell {key} ({' and '.join(kinds)} cells)")
        out[w].pieces.append((changed[0][0], f"*({whose}, {places}, as the student left it{how})*\n" + fenced(shown),
                              *images([submission.cells[i] for i, _ in changed]), "text"))
    for mine in out.values():
        mine.pieces.sort(key=lambda piece: piece[0])
    return out


def _has_text(cell) -> bool:
    return str(cell.source).strip() not in ("", make.STUDENT_TEXT)


PARSE_LIMIT = 100_000     # characters of a code cell the prose check parses (ast costs about 500 bytes a character)
PARSE_BUDGET = 1_000_000  # ... and of a whole notebook: past it, cells count as prose unparsed (each file's time)
# obj?, obj??, ?obj, ? obj, x[0]?: help, as IPython takes it (not pass, nor a sentence)
IPYTHON_HELP = re.compile(r"\?{1,2}\s*[\w.*\[\]-]+|[\w*]+(?:\.[\w*]+|\[-?\d+\])*\?{1,2}")


def _code_prose(code: str, lines: set[int] | None = None) -> str:
    """Whether a code cell's text (on ``lines``, numbered from 1: the lines a student added; None: all) is prose
    rather than code: "prose" where the cell does not parse as Python (IPython's ``%``, ``!`` and ``?`` lines
    aside: text typed into a code cell); else "words" where it holds a comment that does not parse (a sentence;
    ``# print(x)``, commented-out code, parses) or strings of eight or more words in all (an answer typed as a
    string, or a docstring, a message); else "" (code). A cell longer than PARSE_LIMIT is not parsed here (the
    grader's own memory): it counts as prose, so it is shown."""
    if len(code) > PARSE_LIMIT:
        return "prose"
    python = "\n".join("" if (s := line.strip()).startswith(("%", "!")) or IPYTHON_HELP.fullmatch(s) else line
                       for line in code.split("\n"))
    try:
        tree = _parse_quietly(python)
        comments = [t for t in tokenize.generate_tokens(io.StringIO(python).readline) if t.type == tokenize.COMMENT]
    except (SyntaxError, ValueError, RecursionError, MemoryError, tokenize.TokenError):
        return "prose"
    words = sum(len(node.value.split()) for node in ast.walk(tree) if isinstance(node, ast.Constant)
                and isinstance(node.value, str) and (lines is None or node.lineno in lines))
    return ("words" if words >= 8 or any(not _parses(t.string.lstrip("#").strip()) for t in comments
                                         if lines is None or t.start[0] in lines) else "")


def _parses(code: str) -> bool:
    """Whether ``code`` parses as Python; longer than PARSE_LIMIT, it is not parsed and counts as not."""
    if len(code) > PARSE_LIMIT:
        return False
    try:
        _parse_quietly(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


MARK_LINES = 20_000     # lines of changed markdown cells a notebook has marked against the source (difflib's time)


def _marked(text: str, given: str) -> str:
    """A source cell's ``text`` as the student left it, line by line against the cell as handed out, ``given``
    (white space around a line ignored; difflib): ``+`` a line not in ``given`` at that place (typed, copied, changed
    or moved), ``-`` a line of ``given`` not there, two spaces a line as handed out."""
    new, old = text.split("\n"), given.split("\n")
    matcher = difflib.SequenceMatcher(None, [line.strip() for line in old], [line.strip() for line in new],
                                      autojunk=False)
    marked = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            marked += ["  " + line for line in new[j1:j2]]
        else:
            marked += ["- " + line for line in old[i1:i2]] + ["+ " + line for line in new[j1:j2]]
    return "\n".join(marked)


def _joined(parts: list[str], given: str) -> tuple[str, list[int]]:
    """The parts of a cell (after Split Cell, or copies) as one text: a line split between two parts (Split Cell
    in mid-line) is joined back where the two halves make a line of the cell as handed out, ``given``; and the
    number of lines of the text before each part (the line a part joined back starts on counts as its)."""
    lines = {_squeezed(line) for line in given.split("\n")}
    out, starts = parts[:1], [0]
    for before, part in zip(parts, parts[1:]):
        last, first = before.rsplit("\n", 1)[-1], part.split("\n", 1)[0]
        split = _squeezed(last + first) in lines and _squeezed(last) not in lines and _squeezed(first) not in lines
        out += ["" if split else "\n", part]
        starts.append(starts[-1] + before.count("\n") + (0 if split else 1))
    return "".join(out), starts


def _squeezed(text: str) -> str:
    """``text`` without its white space: a cell split mid-line, or re-saved, is the same cell."""
    return "".join(text.split())


def _added_lines(text: str, handed_out: str, cells: int = 1) -> set[int]:
    """The numbers (from 1) of the lines of ``text`` that the student added to a source code cell: ``text`` is the
    cell as submitted (its ``cells`` parts or copies joined), and a line is added where it is there more often than
    in the cell as handed out, once for each part or copy; none when it differs from it only in white space (a cell
    split mid-line). White space around a line is ignored, and blank lines."""
    if _squeezed(text) == _squeezed(handed_out):
        return set()
    given = Counter(line.strip() for line in handed_out.split("\n"))
    seen = Counter()
    added = set()
    for n, line in enumerate(text.split("\n"), 1):
        seen[line.strip()] += 1
        if line.strip() and seen[line.strip()] > cells * given[line.strip()]:
            added.add(n)
    return added


def _code_added(text: str, handed_out: str, cells: int = 1) -> tuple[set[int], set[int]] | None:
    """The numbers (from 1) of the lines of ``text`` that hold its top-level statements, and its comments, that the
    cell as handed out does not hold, compared as code: statements by ``ast.dump`` (white space, line breaks, quotes
    and trailing commas aside, so that a formatter such as black adds nothing), comments by their words; each allowed
    once for each of ``cells`` parts or copies. None where either does not parse as Python (a magic, say), or where
    ``text`` holds a lone carriage return (a line break to Python, not to :func:`_added_lines`)."""
    if "\r" in text:
        return None
    try:
        found = [(_statements(_parse_quietly(source)), _comments(source)) for source in (text, handed_out)]
    except (SyntaxError, ValueError, RecursionError, MemoryError, tokenize.TokenError):
        return None
    (statements, comments), (given_statements, given_comments) = found
    return _beyond(statements, given_statements, cells), _beyond(comments, given_comments, cells)


def _parse_quietly(code: str):
    """``ast.parse`` of a student's code in the grader's process, without the warnings Python prints for it on the
    grader's stderr (a SyntaxWarning for each ``1if``: megabytes for a crafted cell)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(code)


def _statements(tree) -> list[tuple[range, str]]:
    """The lines and the code (``ast.dump``) of each top-level statement of ``tree``, decorators included."""
    return [(range(min([s.lineno] + [d.lineno for d in getattr(s, "decorator_list", [])]), s.end_lineno + 1),
             ast.dump(s)) for s in tree.body]


def _comments(source: str) -> list[tuple[range, str]]:
    """The line and the words of each comment of ``source``."""
    return [(range(t.start[0], t.start[0] + 1), " ".join(t.string.lstrip("#").split()))
            for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT]


def _beyond(mine: list[tuple[range, str]], given: list[tuple[range, str]], cells: int) -> set[int]:
    """The lines of the items of ``mine`` whose key ``given`` does not have, each key allowed as many times as it
    has it, once for each of ``cells`` parts or copies."""
    left = Counter({key: n * cells for key, n in Counter(key for _, key in given).items()})
    out = set()
    for lines, key in mine:
        if left[key] > 0:
            left[key] -= 1
        else:
            out.update(lines)
    return out


def written_entry(writing: dict, answer_id: str) -> tuple[str, str | None, int, int]:
    """A submission's entry for one written answer in the written-answers document (:func:`student_writing`), the
    note for its report when the answer cell does not hold the answer (deleted while the student wrote anything in
    its part or listed at the end, changed to raw or code, or left without an answer beside prose, words or text in its
    part, or text in a markdown or raw cell or prose in code elsewhere: words in code, a comment or a string, are
    too common elsewhere to call for a note; else None), and its images that the graded notebook keeps and that only
    the submitted one has. The entry points to the end of the document where the student wrote there more than words
    in code, or anything and the answer cell holds no answer."""
    mine, elsewhere = writing[answer_id], writing[None].pieces
    parts = [piece[1] for piece in mine.pieces] or ["*(not answered)*" if mine.found else
                                                    "*(the answer cell was deleted)*"]
    state = None if mine.in_place or mine.retyped else "was deleted" if not mine.found else "holds no answer"
    # far from the answer cell, words in code (a scratch comment, a docstring, a message) are too common to point
    # to, or note, unless the answer cell holds no answer
    far = any(piece[4] in ("text", "prose") or not mine.found for piece in elsewhere)
    if far or (state and elsewhere):
        parts.append("*(this student also wrote text outside the written answers: see the end of this document)*")
    near = any(piece[4] or not mine.found for piece in mine.pieces)    # after a deletion, code near it too
    note = None
    if mine.retyped and not mine.in_place:
        note = (f"the answer cell {answer_id} " + ("or a copy of it is a markdown cell with no answer and the other a "
                                                    if mine.copied else "was changed to a ")
                + f"{' and a '.join(sorted(mine.retyped))} cell; its text is in the written answers")
    elif state and (near or far):
        where = " and ".join(w for w, some in (("in its part of the notebook", near),
                                               ("elsewhere in the notebook", far)) if some)
        note = f"the answer cell {answer_id} {state}; what the student wrote {where} is in the written answers"
    label = f"*(written outside the answer cell, which {state})*\n\n" if state and mine.pieces else ""
    return (label + "\n\n".join(parts), note, sum(piece[2] for piece in mine.pieces),
            sum(piece[3] for piece in mine.pieces))


def add_writing(result: Result, layouts: dict[str, WrittenLayout]) -> None:
    """Read what the student wrote (:func:`student_writing`), once, for the written-answers document, and note in
    the report the written answers whose answer cell does not hold them (:func:`written_entry`), the code answer
    cells, or parts or copies of them, the student changed to markdown or raw (not run, so not graded; their text is
    in the written answers when it is not the code as handed out), and the test cells that hold code not in the
    source's (not run: the instructor's test runs in their place).
    ``layouts``: {assignment id: its :func:`written_layout`}, filled as needed."""
    a = result.assignment
    try:
        if a.id not in layouts:
            layouts[a.id] = written_layout(a)
        layout = layouts[a.id]
        result.writing = student_writing(result.submission, layout, result.unrun)
        notes = [written_entry(result.writing, w)[1] for _, w, _ in layout.answers] + [
            (f"the code answer cell {key} was changed to a " if whole else
             f"a part or copy of the code answer cell {key} is a ") + f"{' and a '.join(types)} cell, so it did not run"
            + ("; its text is in the written answers" if shown else " (it holds the code as handed out)")
            for key, (types, whole, shown) in result.writing[None].code_retyped.items()] + [
            f"the test cell {key} holds {count} line(s) of code not in the source's, which did not run (the grader "
            "runs the instructor's test in its place): " + ("they are in the written answers" if a.written else
                                                            "see the submitted notebook")
            for writing in result.writing.values() for key, count in writing.test_added.items()]
    except Exception as exc:     # noqa: BLE001  (the written-answers document says it could not be read)
        result.writing = exc
        return
    result.notes[:0] = [n for n in notes if n]


def _own_question(cells, n: int, answers: list[bool]) -> int | None:
    """The index of the question cell of the written answer ``n`` (:func:`_prompt_at`), when every source cell
    between them is that question's alone (``answers[j]``: cell j is a test, a code answer or a written answer; none
    between): then what a student types in or right under the question belongs to this answer, not to another's."""
    at = _prompt_at(cells, n)
    return None if at is None or any(answers[at + 1:n]) else at


def _prompt_at(cells, n: int) -> int | None:
    """The index of the question a written answer answers: the nearest markdown cell above it that is not an answer."""
    return next((i for i in range(n - 1, -1, -1)
                 if cells[i].cell_type == "markdown" and cell_meta(cells[i]).get("kind") != "written"), None)


def _prompt(cells, n: int) -> str:
    """The question a written answer answers (:func:`_prompt_at`), its text."""
    at = _prompt_at(cells, n)
    return "" if at is None else cells[at].source


def written_answers(a: Assignment, results: list[Result], names: dict | None = None) -> str:
    """One document for hand grading: each written question's model answer, then every submission's answer
    (:func:`written_entry`); at the end, the text each student wrote outside the written answers' parts. Pasted
    images (attachments) are not copied: a line says how many, and where they are (the graded notebook, named by
    ``names``, {id(result): name}, keeps those on markdown cells; raw cells are in the submitted notebook only)."""
    lines = [f"# Written answers: {a.title}", "", f"Assignment `{a.id}`, {len(results)} submissions.", ""]
    cells = a.notebook.cells
    layout = written_layout(a)
    entries, others = {}, []       # {id(result): {answer id: entry}}; [(result, its text outside the answers)]
    for r in results:
        try:
            writing = student_writing(r.submission, layout, r.unrun) if r.writing is None else r.writing
            if isinstance(writing, Exception):
                raise writing
            entries[id(r)] = {w: written_entry(writing, w) for _, w, _ in layout.answers}
            pieces = writing[None].pieces
            if pieces:
                others.append((r, ("\n\n".join(p[1] for p in pieces), None, sum(p[2] for p in pieces),
                                   sum(p[3] for p in pieces))))
        except Exception as exc:     # noqa: BLE001  (one submission's cells never lose the others' answers)
            failed = f"*(the answer could not be read: {described(exc, 200)})*"
            entries[id(r)] = {w: (failed, None, 0, 0) for _, w, _ in layout.answers}

    def entry(r, text, _note, images, raw_images):
        lines.extend([f"### {inline(r.file)}", "", fenced(printable(text, lines=True)), ""])
        if images:
            where = (f"{names[id(r)]}.graded.ipynb" if names and r.graded is not None and id(r) in names
                     else "the submitted notebook")
            lines.extend([f"This has {images} attached image(s): see {inline(where)}.", ""])
        if raw_images:          # on raw cells or copies of tests, which the graded notebook does not hold
            lines.extend([f"This has {raw_images} image(s) attached to raw cells or to copies of test cells: see the "
                          "submitted notebook.", ""])

    for n, answer_id, meta in layout.answers:
        model = "\n".join(m.strip() for m in make.TEXT_SOLUTION.findall(cells[n].source))
        lines += [f"## {meta['question']} ({make._points_text(meta['points'])})", "",
                  make.render_points(a, _prompt(cells, n)), "", "### Model answer", "", model, ""]
        for r in results:
            entry(r, *entries[id(r)][answer_id])
    lines += ["## Text written outside the written answers", "",
              "What each student wrote outside the written answers' parts of the notebook: the markdown and raw "
              "cells they added, and the code cells they added that hold prose or words (a sentence as a comment, "
              "strings of eight or more words); the source's markdown cells they changed, as they left them; the "
              "code and comments they added to its test cells (that code did not run: the instructor's tests ran in "
              "their place), and the lines they added to its other code cells where those hold prose or words."
              if others else
              "None of the submissions has any.", ""]
    for r, other in others:
        entry(r, *other)
    return "\n".join(lines)


def fenced(text: str) -> str:
    """A student's answer as a fenced block, longer than any run of backticks in it: Markdown and HTML inside it
    are shown, not interpreted, so one answer cannot hide or forge the ones after it (an unclosed <!-- or a fake
    heading); the headings between answers (file names) go through :func:`inline`."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence}text\n{text}\n{fence}"


def output_names(results: list) -> dict[int, str]:
    """A distinct name per result (or error) for its report and graded notebook: the file's name, with as many of
    its folders as it takes to tell it from the others' (a/x.ipynb and b/x.ipynb give a__x and b__x), and a counter
    if two names still collide (compared without case)."""
    parts = [(*p.parent.parts[1:], p.stem or "file") for p in (Path(r.file).resolve() for r in results)]
    depth = [1] * len(parts)

    def name(i):
        return "__".join(parts[i][-depth[i]:])

    while True:
        groups: dict[str, list[int]] = {}
        for i in range(len(parts)):
            groups.setdefault(name(i).lower(), []).append(i)
        longer = [i for g in groups.values() if len(g) > 1 for i in g if depth[i] < len(parts[i])]
        if not longer:
            break
        for i in longer:
            depth[i] += 1
    names, used = {}, set()
    for r, i in zip(results, range(len(parts))):
        base, n = name(i), 1
        candidate = base
        while candidate.lower() in used:
            n += 1
            candidate = f"{base}-{n}"
        used.add(candidate.lower())
        names[id(r)] = candidate
    return names


def write_outputs(outcomes: list, out: Path) -> list[str]:
    """Each report (a file that is an error gets one too, with the reason), graded notebook and written-answers
    document, each written on its own (through a temporary file): what could not be written (a full disk) is
    returned, one line each, and the others are written all the same."""
    failed = []

    def write(path: Path, make_text) -> None:
        try:
            write_atomically(path, make_text())
        except Exception as exc:     # noqa: BLE001  (one output lost, never the others)
            failed.append(printable(f"{path}: not written ({described(exc)})"))

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return [printable(f"{out}: not created ({described(exc)})")]
    names = output_names(outcomes)
    results = [o for o in outcomes if isinstance(o, Result)]
    for o in outcomes:
        if isinstance(o, GradingError):
            write(out / f"{names[id(o)]}.report.md", lambda: f"# {inline(o.file)}\n\nNot graded (error): {inline(o)}\n")
    for r in results:
        write(out / f"{names[id(r)]}.report.md", lambda: report(r))
        if r.graded is not None:
            write(out / f"{names[id(r)]}.graded.ipynb", lambda: nbformat.writes(r.graded) + "\n")
    by_assignment: dict[str, list[Result]] = {}
    for r in results:
        by_assignment.setdefault(r.assignment.id, []).append(r)
    for aid, rs in by_assignment.items():
        if rs[0].assignment.written:
            write(out / f"written_{aid}.md", lambda: written_answers(rs[0].assignment, rs, names))
    return failed


def csv_text(outcomes: list) -> str:
    """The CSV: one row per file (see the README)."""
    questions: list[str] = []
    for o in outcomes:
        if isinstance(o, Result):
            questions += [q for q in o.assignment.questions if q not in questions]
    f = io.StringIO(newline="")
    w = csv.writer(f)
    w.writerow(["file", "assignment", "score", "total", *questions, "status", "message"])
    for o in outcomes:
        if isinstance(o, GradingError):
            w.writerow([spreadsheet_text(o.file), "", "", "", *[""] * len(questions), "error", spreadsheet_text(o)])
            continue
        earned = o.by_question()
        w.writerow([spreadsheet_text(o.file), o.assignment.id, f"{o.score:g}", f"{o.total:g}",
                    *[f"{earned[q]:g}" if q in earned else "" for q in questions], o.status,
                    spreadsheet_text(o.message)])
    return f.getvalue()


def spreadsheet_text(text) -> str:
    """``text`` (:func:`printable`) for a CSV cell that a spreadsheet shows as text: one that begins with ``=``,
    ``+``, ``-`` or ``@`` (a file name a student chose, such as ``=HYPERLINK(...).ipynb``) would be read as a formula
    by Excel or LibreOffice, so it gets a leading ``'``, as OWASP's guard against CSV injection does (a tab or a
    carriage return, which OWASP lists too, :func:`printable` has escaped)."""
    text = printable(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def cli(args) -> int:
    """Grade, print one line per file, then write the CSV, then the other outputs: each on its own, so that one that
    cannot be written (a full disk) loses none of the others. Exit status 1 if a file is an error or an output could
    not be written."""
    interrupted: list[int] = []
    try:
        outcomes = grade_many(args.files, timeout=args.timeout, timeout_file=args.timeout_file, jobs=args.jobs,
                              out=args.out, use_cache=not args.recompute_reference, isolate=not args.unsafe_same_user,
                              interrupted=interrupted)
    except KeyboardInterrupt:
        signum = interrupted[0] if interrupted else signal.SIGINT
        print(f"error: the batch was interrupted ({signal.Signals(signum).name}) before or after its runs: "
              "no result was written", file=sys.stderr)
        return 128 + signum
    except OSError as exc:       # before any run: the grader's own folder could not be made
        print(printable(f"error: the batch could not start ({described(exc)})"), file=sys.stderr)
        return 1
    except Unisolated as exc:
        print(printable(f"error: nothing was graded: {exc}"), file=sys.stderr)
        return 2
    results = [o for o in outcomes if isinstance(o, Result)]
    for o in outcomes:
        if isinstance(o, GradingError):
            print(printable(f"{o.file}: error: {o}"), file=sys.stderr)
        else:
            print(summary_line(o))
    sys.stdout.flush()
    failed = []
    if args.csv:
        try:
            write_atomically(Path(args.csv), csv_text(outcomes))
        except OSError as exc:
            failed.append(printable(f"{args.csv}: not written ({described(exc)})"))
    failed += write_outputs(outcomes, Path(args.out))
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    print(f"reports, graded notebooks and written answers in {args.out}", file=sys.stderr)
    if interrupted:
        stopped = sum(r.status == "interrupted" for r in results)
        print(f"error: the batch was interrupted ({signal.Signals(interrupted[0]).name}): {stopped} of "
              f"{len(outcomes)} files not graded (status interrupted)", file=sys.stderr)
        return 128 + interrupted[0]
    return 1 if failed or len(results) < len(outcomes) else 0
