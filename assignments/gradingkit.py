"""The grader's side inside the kernel that runs a submission (imported by the first cell of a grading run).

- :func:`setup` records, before any student code runs, every module the tests rely on (NumPy, pandas, SciPy,
  hlmlib, the built-ins): the objects their namespaces and classes hold, the code of their functions, and the
  entries of hlmlib's module-level tables.
- :func:`run_test` runs one instructor test in a copy of the student's namespace with the real built-ins (a
  student's variable called ``abs`` or ``float`` does not reach the test). Before and after, it checks that nothing
  recorded was replaced, so a test cannot be passed by monkeypatching ``np.testing.assert_allclose`` or a pandas
  method, even from inside a function the test calls. Then it prints a one-time token the student's code never
  sees: the grader counts a test as passed only if that token was printed and no error was, so an exception that
  student code swallowed still fails the test.
- :func:`numpy_only` (for hidden tests) runs code with the estimator packages made unavailable: ``import hlmlib``
  fails, and a call into hlmlib, statsmodels, linearmodels or scikit-learn by any route (an alias, a default
  argument, a closure) is caught by a profiler and fails the test.

None of this is a sandbox: Python cannot protect code from other code in the same process. The static check in
``integrity.py`` refuses, before anything runs, the constructs that would reach into the interpreter to defeat
these checks (``sys``, ``get_ipython``, dunder attributes, ``exec``, ...).
"""
from __future__ import annotations

import builtins
import contextlib
import linecache
import sys
import types

WATCHED = ("numpy", "pandas", "scipy", "hlmlib", "math", "builtins", "gradingkit")
ESTIMATOR_PACKAGES = ("hlmlib", "statsmodels", "linearmodels", "sklearn")
_REAL_BUILTINS = builtins.__dict__.copy()
_state: dict = {}


def _watched_modules():
    return {name: mod for name, mod in list(sys.modules.items())
            if mod is not None and name.split(".")[0] in WATCHED}


def _fingerprint(value, entries: bool = False):
    """What must not change about an object a module or class holds: the object, a function's code, and with
    ``entries`` (hlmlib's modules) the entries of a dict or list, such as its table of CR adjustments."""
    if isinstance(value, types.FunctionType):
        return value, value.__code__, value.__defaults__, value.__kwdefaults__
    if entries and type(value) in (dict, list) and value is not builtins.__dict__:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return (value, *((k, id(v)) for k, v in list(items)))
    return (value,)


def _record(namespace, entries: bool = False) -> dict:
    return {key: _fingerprint(value, entries) for key, value in list(namespace.items())}


def setup(user_ns: dict) -> None:
    """Record the watched modules and their classes; called once, before any student code."""
    import hlmlib  # noqa: F401  (import what the tests use, so that it is recorded)
    import numpy  # noqa: F401
    import numpy.testing  # noqa: F401
    import pandas  # noqa: F401
    import scipy.stats  # noqa: F401

    modules = _watched_modules()
    classes = {}
    for mod in modules.values():
        for value in list(vars(mod).values()):
            if isinstance(value, type) and value.__module__.split(".")[0] in WATCHED:
                classes[id(value)] = (value, _record(vars(value), _own(value.__module__)))
    _state.update(user_ns=user_ns, modules={n: (m, _record(vars(m), _own(n))) for n, m in modules.items()},
                  classes=list(classes.values()))


def _own(module_name: str) -> bool:
    return module_name.split(".")[0] == "hlmlib"


def _differences(recorded: dict, current, where: str, new_keys) -> list[str]:
    """Keys replaced or removed since recorded, and keys added that would shadow something (``new_keys``)."""
    return ([f"{where}.{key}" for key, fp in recorded.items() if key != "__warningregistry__"
             and (key not in current or _fingerprint(current[key], _own(where)) != fp)]
            + [f"{where}.{key}" for key in current if key not in recorded and key in new_keys])


def _changed() -> list[str]:
    changed = []
    for name, (module, recorded) in _state["modules"].items():
        if sys.modules.get(name, module) is not module:
            changed.append(f"sys.modules[{name!r}]")
        else:
            changed += _differences(recorded, vars(module), name, _REAL_BUILTINS)
    for cls, recorded in _state["classes"]:
        changed += _differences(recorded, vars(cls), f"{cls.__module__}.{cls.__qualname__}", vars(cls))
    return changed


class TamperingError(AssertionError):
    """The submission changed a module or class the tests rely on."""


def _check_untouched() -> None:
    changed = _changed()
    if changed:
        raise TamperingError("the submission changed what the tests rely on: " + ", ".join(changed[:5]))


def run_test(test_id: str, token: str, source: str) -> None:
    """Run one test cell's code; print ``token`` only if it completed."""
    _check_untouched()
    namespace = {k: v for k, v in _state["user_ns"].items() if k not in _REAL_BUILTINS}
    namespace.update(__builtins__=_REAL_BUILTINS, __name__="__main__")
    filename = f"<test {test_id}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102  (the instructor's test code)
    _check_untouched()     # student code the test called may have changed something while it ran
    print(token)


@contextlib.contextmanager
def numpy_only():
    """Run the block with hlmlib, statsmodels, linearmodels and scikit-learn unavailable.

    ``import hlmlib`` (or any of them) raises ImportError inside the block, and any call into their code, by
    whatever name it was reached, makes the block fail with an AssertionError naming the function called."""
    saved = {n: m for n, m in sys.modules.items() if n.split(".")[0] in ESTIMATOR_PACKAGES}
    folders = tuple(sorted({m.__path__[0] for n, m in saved.items() if m is not None and "." not in n
                            and hasattr(m, "__path__")}))
    calls: list[str] = []

    def profiler(frame, event, arg):
        if event == "call" and folders and frame.f_code.co_filename.startswith(folders) and not calls:
            calls.append(f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_name}")

    for name in list(saved) + [p for p in ESTIMATOR_PACKAGES if p not in saved]:
        sys.modules[name] = None
    previous = sys.getprofile()
    sys.setprofile(profiler)
    try:
        yield
    finally:
        sys.setprofile(previous)
        for name in ESTIMATOR_PACKAGES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    if calls:
        raise AssertionError(f"this must use NumPy only, but it called {calls[0]}")
