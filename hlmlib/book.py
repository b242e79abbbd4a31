"""Running the book's chapters outside the book build: a stand-in for myst-nb's ``glue``.

The chapters quote computed numbers, figures and tables through ``myst_nb.glue``, which only the book build
(Sphinx) reads. In the notebook a reader downloads from a page, the build has already written those numbers into
the text and ``from myst_nb import glue`` has become ``from hlmlib.book import glue, show``:

- ``glue(name, value, display=True)`` keeps ``value`` under ``name`` (and displays it when ``display`` is true, as
  ``myst_nb.glue`` does), so a chapter re-runs top to bottom without myst-nb or Sphinx installed;
- ``show(name)`` displays a glued figure or table at the place the page shows it.

Where myst-nb is installed (the book build), ``glue`` also hands the value to ``myst_nb.glue``, so a chapter can
import ``glue`` from here or from myst-nb alike.
"""
from __future__ import annotations

from typing import Any

import numpy as np

_glued: dict[str, Any] = {}


def glue(name: str, value: Any, display: bool = True) -> None:
    """Keep ``value`` under ``name`` for :func:`show` and :func:`glued`; display it if ``display`` is true.

    The signature is myst-nb's ``glue(name, variable, display=True)``. A NumPy scalar is kept as the Python number
    it holds: NumPy 2 prints ``np.float64(2.8)``, which a ``{glue:text}`` format spec cannot read.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"glue: the name must be a non-empty string, got {name!r}")
    if isinstance(value, np.generic):
        value = value.item()
    _glued[name] = value
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            _display(value)
    else:
        myst_glue(name, value, display=display)


def glued(name: str) -> Any:
    """The value glued under ``name`` (a ``KeyError`` naming the known keys if there is none)."""
    try:
        return _glued[name]
    except KeyError:
        known = ", ".join(sorted(_glued)) or "none yet"
        raise KeyError(f"nothing is glued under {name!r}: run the cells above this one first "
                       f"(glued so far: {known})") from None


def show(name: str) -> None:
    """Display the figure, table or value glued under ``name``."""
    _display(glued(name))


def _display(value: Any) -> None:
    from IPython.display import display

    display(value)
