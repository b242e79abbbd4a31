"""Modules imported when first used, so that ``import hlmlib`` loads neither SciPy's statistics nor
matplotlib (together about a second, and most of hlmlib's import time)."""
from __future__ import annotations

import importlib


class LazyModule:
    """Stands for the module ``name`` and imports it at the first attribute read: ``stats.t.sf(...)``
    imports ``scipy.stats`` then, not when hlmlib is imported."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str):
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<lazily imported module {self._name!r}>"


#: ``scipy.stats``, imported when a distribution is first needed.
stats = LazyModule("scipy.stats")
