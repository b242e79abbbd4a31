"""Run a grading kernel where the operating system, not Python, keeps it from the instructor's files (Linux).

    python sandbox.py SPEC -- COMMAND [ARG ...]

``SPEC`` is JSON: ``root`` (an empty folder of the grader's), ``read`` (folders and files the command may read),
``write`` (folders and files it may also write), ``cwd``, ``uid``/``gid`` (or null), the user it runs as, and
``give``, files (among ``write``) to give that user, and ``limited``: ``paths`` (among ``write``) that are, in the
sandbox, folders of one new tmpfs of ``bytes`` bytes and ``entries`` files and folders, where writing past either
fails (``ENOSPC``), filled at the start with a copy of what the folders hold outside; what the command writes there
is never on the machine's disk, and goes with the sandbox; ``seal``, folders (among ``write``) that become read-only
in the sandbox when this process gets the signal ``SEAL`` (once the command made what it must there: the kernel's
sockets), which is not forwarded. The command runs in new mount, process, network and IPC namespaces (and a user
namespace when this is not run as root), in a file system of its own: an empty, read-only root in which only
``read`` (read-only) and ``write`` are mounted, at their own paths, besides the system folders (``/usr``, ``/etc``,
``/lib``...), ``/dev/null``, ``/dev/zero``, ``/dev/urandom`` and a ``/proc`` that shows only its own processes.
Every other folder of the machine (the repository, its ``.git``, the reference values, the grader's private folder,
other clones, home folders) is not there at all, whatever the command does: the old root is unmounted
(``pivot_root``), and the command has no capability left to mount anything (run as root, it runs as ``uid``, an
unprivileged user; otherwise as the same user in a user namespace, which drops its capabilities on ``exec``), nor to
gain one (``no_new_privs``, and no set-user-id program is honoured), nor a new user namespace of its own, in which it
would have them all again (a seccomp filter: :func:`_seccomp_filter`). ``fallocate``, the ioctls that reserve space
and io_uring fail in it (the same filter), so a file it writes on the disk takes no more than RLIMIT_FSIZE. It has
no network, and it cannot see or signal other processes (another submission's kernel).

This process stays outside, as the command's parent (the kernel's manager sees it as the kernel): it forwards the
signals it gets, and if it is killed the command is killed too. With ``tasks`` (``limit`` and ``group``), it and
the command may have at most ``limit`` processes and threads in all (:func:`_limit_tasks`). :func:`unavailable` says
whether the machine allows
all this (a container without ``CAP_SYS_ADMIN``, or a system that forbids unprivileged user namespaces, does not).
"""
from __future__ import annotations

import ctypes
import json
import os
import platform
import pwd
import resource
import shutil
import signal
import subprocess
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID = 0x00020000, 0x10000000, 0x20000000
CLONE_NEWNET, CLONE_NEWIPC = 0x40000000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MS_RELATIME, MNT_DETACH = 1 << 21, 2
# statvfs's ST_* flags that are also MS_* flags with the same value (a read-only remount must keep them)
KEPT_FLAGS = 1 | 2 | 4 | 8 | 16 | 64 | 1024 | 2048
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
KEYCTL = {"x86_64": 250, "aarch64": 219, "arm64": 219, "riscv64": 219, "ppc64le": 271, "s390x": 280}
KEYCTL_JOIN_SESSION_KEYRING = 1
# The system call numbers of fallocate and ioctl, the audit architecture of each machine (seccomp's filter checks
# it), and where the low 32 bits of a call's second argument are in seccomp_data (args[1], 8 bytes at offset 24)
FALLOCATE = {"x86_64": (285, 16, 0xC000003E, 24), "aarch64": (47, 29, 0xC00000B7, 24),
             "arm64": (47, 29, 0xC00000B7, 24), "riscv64": (47, 29, 0xC00000F3, 24),
             "ppc64le": (309, 54, 0xC0000015, 24), "s390x": (314, 54, 0x80000016, 28)}
FS_IOC_RESVSP, FS_IOC_RESVSP64 = 0x40305828, 0x4030582A     # ioctls that reserve space as fallocate's KEEP_SIZE
# io_uring_setup, io_uring_enter and io_uring_register (the same numbers on every architecture): a ring runs
# fallocate, and other operations, in a kernel thread that makes no system call the filter could see
IO_URING_FIRST, IO_URING_END = 425, 428
# clone and unshare, and where the low 32 bits of clone's flags and of unshare's are in seccomp_data (s390x: big
# endian, and clone's flags second); clone3 (the same number everywhere) passes its flags in memory, out of the
# filter's sight, so it fails with ENOSYS, and glibc then calls clone, which the filter sees
NAMESPACE_CALLS = {"x86_64": (56, 272, 16, 16), "aarch64": (220, 97, 16, 16), "arm64": (220, 97, 16, 16),
                   "riscv64": (220, 97, 16, 16), "ppc64le": (120, 282, 16, 16), "s390x": (120, 303, 28, 20)}
CLONE3 = 435
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
EPERM, ENOSYS, EOPNOTSUPP = 1, 38, 95
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")
FAILED = 125                     # the exit status when the sandbox cannot be set up (its reason on stderr)
SEAL = signal.SIGUSR2             # makes the ``seal`` folders read-only in the sandbox (sent to this process)
USER = "hlmgrader"               # the user a kernel runs as when the grader runs as root (else nobody)

_libc = ctypes.CDLL(None, use_errno=True)


def _call(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source, target, fstype, flags, data=None) -> None:
    _call(_libc.mount(*(None if v is None else os.fsencode(v) for v in (source, target, fstype)),
                      ctypes.c_ulong(flags), None if data is None else os.fsencode(data)),
          f"mount {source or ''} on {target}")


def kernel_user() -> tuple[int, int] | None:
    """The user and group a kernel runs as: ``hlmgrader`` if it exists, else ``nobody``, when the grader runs as root;
    None otherwise (the kernel then runs as the grader's user, in a user namespace)."""
    if os.geteuid() != 0:
        return None
    for name in (USER, "nobody"):
        try:
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
        except KeyError:
            continue
    return 65534, 65534


# This interpreter, by an absolute path without ".." (one started as ../.venv/bin/python has a sys.executable through
# a folder the sandbox does not show); not resolved, which would leave the virtual environment behind its symlink
PYTHON = os.path.abspath(sys.executable)


def command(spec: dict, argv: list[str]) -> list[str]:
    """The command line that runs ``argv`` in the sandbox ``spec`` (this interpreter in it by PYTHON's path)."""
    argv = [PYTHON if a == sys.executable else a for a in argv]
    return [PYTHON, os.path.abspath(__file__), json.dumps(spec), "--", *argv]


def described(exc: BaseException, limit: int = 300) -> str:
    """``exc`` as its type and at most ``limit`` characters of its message, for a report or a printed line (an
    error raised inside a submission's run can carry a message of any length)."""
    return f"{type(exc).__name__}: {str(exc)[:limit]}"


def unavailable(spec: dict, probe: list[str], env: dict | None = None) -> str | None:
    """Why ``probe`` (a command that must succeed in the sandbox, in the environment ``env``) fails there, or None
    if it works."""
    try:
        done = subprocess.run(command(spec, probe), capture_output=True, timeout=120, env=env)
    except (OSError, subprocess.SubprocessError) as exc:
        return described(exc)
    if done.returncode == 0:
        return None
    return (done.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit status {done.returncode}"])[-1]


def _within(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def _make_mount_point(root: str, path: str, folder: bool) -> str:
    target = _within(root, path)
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    if folder:
        os.makedirs(target, mode=0o755, exist_ok=True)
    elif not os.path.exists(target):
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))
    return target


def _bind(root: str, source: str, writable: bool, at: str | None = None) -> None:
    """Mount ``source`` at its own path in ``root`` (or at ``at``: the name a program uses for it, through a
    symlink), read-only unless ``writable``."""
    target = _make_mount_point(root, at or source, os.path.isdir(source))
    _mount(source, target, None, MS_BIND | MS_REC)
    if not writable:
        _read_only(target)


def _read_only(target: str) -> None:
    """Make the bind mount at ``target`` read-only, keeping the flags the machine's mount has (a user namespace
    must)."""
    flags = os.statvfs(target).f_flag
    kept = (flags & KEPT_FLAGS) | (MS_RELATIME if flags & 4096 else 0)
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | kept)


def _stage_limited(spec: dict, store: str) -> dict[str, str]:
    """Mount the size-limited tmpfs of ``spec["limited"]`` on ``store`` and copy each of its folders there, owned by
    the command's user: {the folder's real path: its copy}, which :func:`_build_root` mounts at the folder's path."""
    limited = spec.get("limited")
    if not limited:
        return {}
    os.mkdir(store, 0o755)
    _mount("tmpfs", store, "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={int(limited['bytes'])},nr_inodes={int(limited['entries'])},mode=0755")
    staged = {}
    for number, path in enumerate(limited["paths"]):
        copy = staged[os.path.realpath(path)] = os.path.join(store, str(number))
        shutil.copytree(path, copy, symlinks=True)      # what the grader put there before the run: a few files
        if spec.get("uid") is not None:
            for inside, _, names in os.walk(copy):
                for name in (inside, *(os.path.join(inside, n) for n in names)):
                    os.chown(name, spec["uid"], spec["gid"], follow_symlinks=False)
    return staged


def _build_root(spec: dict) -> None:
    """Mount the command's file system on ``spec["root"]`` and make it the root (see the module's docstring)."""
    root = spec["root"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)          # nothing done here reaches the machine's mounts
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    mounted: list[str] = []

    def covered(path):
        return any(path == m or path.startswith(m + "/") for m in mounted)

    for path in SYSTEM:
        if os.path.islink(path):                            # /bin -> usr/bin on a merged /usr
            os.symlink(os.readlink(path), _within(root, path))
        elif os.path.isdir(path):
            _bind(root, path, writable=False)
            mounted.append(path)
    staged = _stage_limited(spec, _within(root, "/.limited"))
    wanted = [(p, False) for p in spec["read"]] + [(p, True) for p in spec["write"]]
    for path, writable in sorted(wanted, key=lambda w: len(w[0])):
        if not os.path.lexists(path):
            continue
        real, name = os.path.realpath(path), os.path.abspath(path)
        for at in dict.fromkeys((real, name)):
            if writable or not covered(at):
                _bind(root, staged.get(real, real) if writable else real, writable, at)
                mounted.append(at)
    if staged:
        _call(_libc.umount2(os.fsencode(_within(root, "/.limited")), MNT_DETACH), "unmount the tmpfs's staging")
    for device in DEVICES:
        if os.path.exists(device):
            target = _make_mount_point(root, device, folder=False)
            _mount(device, target, None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, _within(root, f"/dev/{name}"))
    os.makedirs(_within(root, "/proc"), mode=0o555, exist_ok=True)
    os.makedirs(_within(root, "/tmp"), mode=0o755, exist_ok=True)
    _mount("proc", _within(root, "/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    number = PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(f"pivot_root: unknown system call number on {platform.machine()}")
    os.chdir(root)
    _call(_libc.syscall(ctypes.c_long(number), b".", b"."), "pivot_root")
    _call(_libc.umount2(b".", MNT_DETACH), "unmount the old root")      # the machine's root, stacked on ours
    os.chdir("/")


def _map_user(uid: int, gid: int) -> None:
    """In the new user namespace, stay user ``uid`` and group ``gid``, as outside (a single mapping, which needs no
    privilege)."""
    for name, line in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY)        # no O_TRUNC: proc refuses it
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def _own_keyring() -> None:
    """Join a new anonymous session keyring: the kernel keyring of the session that started the grader (Kerberos
    caches, cached passphrases) is not the command's (keyrings are in no namespace, and a change of user keeps them)."""
    number = KEYCTL.get(platform.machine())
    if number is None:
        raise OSError(f"keyctl: unknown system call number on {platform.machine()}")
    _libc.syscall.restype = ctypes.c_long
    if _libc.syscall(ctypes.c_long(number), ctypes.c_long(KEYCTL_JOIN_SESSION_KEYRING), None) < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"join a new session keyring: {os.strerror(errno)}")


def _limit_memory(limit: int | None) -> None:
    """At most ``limit`` bytes of address space (``RLIMIT_AS``), and first in line for the OOM killer
    (``oom_score_adj`` 1000), so that a run short of memory ends itself, not the grader or another job."""
    if limit is not None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    with open("/proc/self/oom_score_adj", "w", encoding="ascii") as adj:
        adj.write("1000")


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _assembled(program: list) -> list[tuple[int, int, int, int]]:
    """A classic BPF program, ``(code, jt, jf, k)`` each, from one whose jumps may name a label (a string in the
    list marks the place of the instruction after it) instead of counting the instructions to skip."""
    at, n = {}, 0
    for item in program:
        if isinstance(item, str):
            at[item] = n
        else:
            n += 1
    code = [item for item in program if not isinstance(item, str)]
    out = [(op, at[jt] - n - 1 if isinstance(jt, str) else jt, at[jf] - n - 1 if isinstance(jf, str) else jf, k)
           for n, (op, jt, jf, k) in enumerate(code)]
    if not all(0 <= jump <= 255 for _, jt, jf, _ in out for jump in (jt, jf)):
        raise ValueError("seccomp: a jump goes backwards or too far (BPF jumps forward, 255 instructions at most)")
    return out


def _seccomp_filter() -> None:
    """A seccomp filter (inherited by every process the command starts, and irremovable) under which ``fallocate``
    fails with EOPNOTSUPP, as on a file system without it (glibc's ``posix_fallocate`` then writes the blocks, which
    RLIMIT_FSIZE bounds): with ``FALLOC_FL_KEEP_SIZE`` it would reserve any amount of the disk through a file the
    kernel holds there, whatever that limit; so would the ioctls ``FS_IOC_RESVSP`` and ``FS_IOC_RESVSP64``, which
    fail the same way. io_uring (``io_uring_setup``, ``io_uring_enter``, ``io_uring_register``), whose rings run
    ``fallocate`` where no system call is made, fails with ENOSYS, as on a kernel without it. A new user namespace
    (``unshare`` or ``clone`` with ``CLONE_NEWUSER``) fails with EPERM, as where unprivileged user namespaces are off:
    in one, the command would have every capability again, enough to mount a tmpfs (memory no limit of the grader's
    counts); ``clone3``, whose flags the filter cannot read, fails with ENOSYS, as on kernels before 5.3 (glibc then
    starts threads and processes with ``clone``). System calls of another architecture (i386 on x86_64), which
    number these otherwise, fail with ENOSYS, and x32's with EOPNOTSUPP."""
    if platform.machine() not in FALLOCATE:
        raise OSError(f"seccomp: unknown system call numbers on {platform.machine()}")
    fallocate, ioctl, arch, request = FALLOCATE[platform.machine()]
    clone, unshare, clone_flags, unshare_flags = NAMESPACE_CALLS[platform.machine()]
    load, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06   # BPF_LD|W|ABS, BPF_JMP|JEQ/JGE/JSET|K, BPF_RET|K
    program = _assembled([
        (load, 0, 0, 4),                                # seccomp_data.arch
        (jeq, 1, 0, arch), (ret, 0, 0, SECCOMP_RET_ERRNO | ENOSYS),
        (load, 0, 0, 0),                                # seccomp_data.nr
        (jge, "unsupported", 0, 0x40000000),            # x32's numbers
        (jeq, "unsupported", 0, fallocate),
        (jeq, "absent", 0, CLONE3),
        (jge, 0, "other", IO_URING_FIRST),
        (jge, 0, "absent", IO_URING_END),               # io_uring
        "other",
        (jeq, "ioctl", 0, ioctl),
        (jeq, "clone", 0, clone),
        (jeq, "unshare", 0, unshare),
        (ret, 0, 0, SECCOMP_RET_ALLOW),
        "ioctl",
        (load, 0, 0, request),                          # the ioctl's request
        (jeq, "unsupported", 0, FS_IOC_RESVSP), (jeq, "unsupported", 0, FS_IOC_RESVSP64),
        (ret, 0, 0, SECCOMP_RET_ALLOW),
        "clone",
        (load, 0, 0, clone_flags),
        (jset, "denied", 0, CLONE_NEWUSER), (ret, 0, 0, SECCOMP_RET_ALLOW),
        "unshare",
        (load, 0, 0, unshare_flags),
        (jset, "denied", 0, CLONE_NEWUSER), (ret, 0, 0, SECCOMP_RET_ALLOW),
        "denied", (ret, 0, 0, SECCOMP_RET_ERRNO | EPERM),
        "unsupported", (ret, 0, 0, SECCOMP_RET_ERRNO | EOPNOTSUPP),
        "absent", (ret, 0, 0, SECCOMP_RET_ERRNO | ENOSYS)])
    filters = (_SockFilter * len(program))(*(_SockFilter(*p) for p in program))
    fprog = _SockFprog(len(program), filters)
    _call(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")


def _pids_hierarchy() -> str | None:
    """The root of a cgroup hierarchy with the ``pids`` controller that this process may add groups to (cgroup v1's
    ``pids``, or v2's where its root delegates ``pids``), or None."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            kind, options = fields[fields.index("-") + 1], fields[-1].split(",")
            point = fields[4].replace("\\040", " ")
            if kind == "cgroup" and "pids" in options or kind == "cgroup2" and "pids" in _read(
                    os.path.join(point, "cgroup.subtree_control")).split():
                if os.access(point, os.W_OK):
                    return point
    return None


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as file:
            return file.read()
    except OSError:
        return ""


def tasks_group(name: str) -> str | None:
    """The folder of the pids cgroup called ``name`` (see ``spec["tasks"]``), or None where there is none."""
    root = _pids_hierarchy() if os.geteuid() == 0 else None
    return None if root is None else os.path.join(root, name)


def _limit_tasks(spec: dict) -> None:
    """At most ``spec["tasks"]["limit"]`` processes and threads for this process and all it starts: a pids cgroup of
    its own, ``spec["tasks"]["group"]``, when run as root on a machine with the pids controller (which whoever
    started this removes after it, :func:`release_tasks`: this process no longer sees the cgroup file system); else
    RLIMIT_NPROC
    set to the tasks the command's user has now plus that limit (it counts all of that user's: other runs' kernels
    too, so the bound is the machine's, shared by the runs of a batch)."""
    tasks = spec.get("tasks")
    if not tasks:
        return
    group = tasks_group(tasks["group"])
    if group is not None:
        try:
            os.mkdir(group, 0o755)
            with open(os.path.join(group, "pids.max"), "w", encoding="ascii") as limit:
                limit.write(str(int(tasks["limit"])))
            with open(os.path.join(group, "cgroup.procs"), "w", encoding="ascii") as procs:
                procs.write(str(os.getpid()))
            return
        except OSError:                   # a cgroup file system that looked writable but is not: the limit below
            pass
    uid = spec["uid"] if spec.get("uid") is not None else os.getuid()
    used = 0
    for process in os.listdir("/proc"):
        status = _read(f"/proc/{process}/status") if process.isdigit() else ""
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            used += int(fields.get("Threads", "1"))
    limit = used + int(tasks["limit"])
    resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))


def release_tasks(name: str, wait: float = 5.0) -> None:
    """Remove the pids cgroup ``name`` once the processes in it are gone (waiting up to ``wait`` seconds)."""
    import time
    group = tasks_group(name)
    if group is None or not os.path.isdir(group):
        return
    deadline = time.monotonic() + wait
    while True:
        try:
            os.rmdir(group)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _child(spec: dict, argv: list[str]) -> None:
    """Process 1 of the new namespaces: build the file system, drop privileges, run the command."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setsid()          # a signal to the manager's process group reaches the parent only, which forwards it
    _own_keyring()
    _limit_memory(spec.get("memory"))
    _build_root(spec)
    if spec.get("uid") is not None:
        for path in spec.get("give", ()):                            # files the user must read (the connection file)
            os.chown(path, spec["uid"], spec["gid"])
        os.setgroups([])
        os.setresgid(spec["gid"], spec["gid"], spec["gid"])
        os.setresuid(spec["uid"], spec["uid"], spec["uid"])        # all capabilities are dropped with root
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)      # a change of user clears it
    _call(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _seccomp_filter()
    os.chdir(spec["cwd"])
    os.execve(argv[0], argv, os.environ)


def main(args: list[str]) -> int:
    spec, argv = json.loads(args[0]), args[2:]
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC
    try:
        _limit_tasks(spec)
        if os.geteuid() != 0:
            uid, gid = os.getuid(), os.getgid()         # before: a new user namespace has no user mapped yet
            _call(_libc.unshare(flags | CLONE_NEWUSER), "unshare (a user namespace)")
            _map_user(uid, gid)
        else:
            _call(_libc.unshare(flags), "unshare")
    except (OSError, ValueError) as exc:
        print(f"sandbox: the kernel cannot be isolated here ({exc})", file=sys.stderr)
        return FAILED
    pid = os.fork()
    if pid == 0:
        try:
            _child(spec, argv)
        except BaseException as exc:       # noqa: BLE001  (whatever failed, say it and exit)
            print(f"sandbox: the kernel cannot be isolated here ({type(exc).__name__}: {exc})", file=sys.stderr,
                  flush=True)
        os._exit(FAILED)

    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def seal(signum, frame):
        for path in spec.get("seal", ()):
            for at in dict.fromkeys((os.path.realpath(path), os.path.abspath(path))):
                try:
                    _read_only(at)
                except OSError as exc:
                    print(f"sandbox: {at} stays writable ({exc})", file=sys.stderr, flush=True)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1):
        signal.signal(signum, forward)
    signal.signal(SEAL, seal)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
