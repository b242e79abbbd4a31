"""Running the book's chapters outside the book build: a stand-in for myst-nb's ``glue``.

The chapters quote computed numbers, figures and tables through ``myst_nb.glue``, which only the book build
(Sphinx) reads. In the notebook a reader downloads from a page, the build has already written those numbers into
the text and ``from myst_nb import glue`` has become ``from hlmlib.book import glue, show``:

- ``glue(name, value, display=True)`` keeps ``value`` under ``name`` (and displays it when ``display`` is true, as
  ``myst_nb.glue`` does), so a chapter re-runs top to bottom without myst-nb or Sphinx installed;
- ``show(name)`` displays a glued figure or table at the place the page shows it.

Where myst-nb is installed (the book build), ``glue`` also hands the value to ``myst_nb.glue``, so a chapter can
import ``glue`` from here or from myst-nb alike.

The chapters glue bounds and ranges rounded on the safe side, by :func:`round_up`, :func:`round_down` and
:func:`round_up_sig`: "at most" and "within" bounds and a range's upper end up, "at least" bounds and a range's
lower end down, at the digits the text prints.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .design import InputError, check_scalar

_glued: dict[str, Any] = {}
_MAX_DECIMALS = 308         # 10.0 ** 309 overflows


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


def round_up(x: float, decimals: int) -> float:
    """``x`` rounded up (towards +inf) at ``decimals`` decimal places: ``ceil(x * 10**decimals) / 10**decimals``.

    Why: a bound the text prints ("at most", "within", a range's upper end) must stay a bound after rounding to the
    printed digits; rounding to nearest could print a number below the value it bounds. ``decimals`` may be zero
    (whole numbers) or negative (``-1`` rounds up to tens).

    The scaled value is first rounded to 9 decimal places, so that binary floating-point noise does not move the
    result up a whole step: ``0.0051 * 1e4`` is ``51.00000000000001`` and would otherwise round up to 52, printing
    0.0052 for a value whose decimal spelling is exactly 0.0051. (A value within 1e-9 of a step, in units of the
    step, is thereby taken to be on it.)

    >>> round_up(0.0051, 4), round_up(0.12301, 3), round_up(-0.129, 2), round_up(123, -1)
    (0.0051, 0.124, -0.12, 130.0)
    """
    return _round_at(x, decimals, math.ceil, "round_up")


def round_down(x: float, decimals: int) -> float:
    """``x`` rounded down (towards -inf) at ``decimals`` decimal places: ``floor(x * 10**decimals) / 10**decimals``.

    Why: an "at least" bound or a range's lower end must stay below the values it bounds after rounding to the
    printed digits. ``round_down(-x, d) == -round_up(x, d)``; the inner rounding to 9 places is that of
    :func:`round_up` (``round_down(0.29, 2)`` is 0.29, not 0.28 for ``0.29 * 100 = 28.999999999999996``).

    >>> round_down(0.0015, 4), round_down(0.12399, 3), round_down(-0.121, 2), round_down(129, -1)
    (0.0015, 0.123, -0.13, 120.0)
    """
    return _round_at(x, decimals, math.floor, "round_down")


def round_up_sig(x: float, digits: int = 1) -> float:
    """``x`` rounded up (towards +inf) to ``digits`` significant digits, so that a bound printed in the ``:.0e``
    format (``digits=1``; ``:.1e`` is ``digits=2``) stays a bound: ``round_up_sig(3.2e-7)`` is ``4e-07``.

    The decimal place is that of ``x``'s leading digit, ``floor(log10|x|)``; the rounding is :func:`round_up`'s,
    inner rounding to 9 places included. Zero stays zero.

    >>> round_up_sig(3.2e-7), round_up_sig(0.0015), round_up_sig(0.0123, 2)
    (4e-07, 0.002, 0.013)
    """
    x = check_scalar(x, "round_up_sig: x")
    digits = check_scalar(digits, "round_up_sig: digits", integer=True, minimum=1)
    if x == 0:
        return 0.0
    decimals = digits - 1 - math.floor(math.log10(abs(x)))
    if abs(decimals) > _MAX_DECIMALS:
        raise InputError(f"round_up_sig: x = {x!r} needs {decimals} decimal places for {digits} significant digits, "
                         f"more than a float can scale by (at most {_MAX_DECIMALS})")
    return _round_at(x, decimals, math.ceil, "round_up_sig")


def _round_at(x: float, decimals: int, to_integer, caller: str) -> float:
    x = check_scalar(x, f"{caller}: x")
    decimals = check_scalar(decimals, f"{caller}: decimals", integer=True, minimum=-_MAX_DECIMALS,
                            maximum=_MAX_DECIMALS)
    # a whole number of steps times or divided by an exact power of ten: 10**decimals is an exact float up to 1e22,
    # 0.1 is not, so negative decimals divide by 10**-decimals rather than multiply by 10.0**decimals
    scale = 10.0 ** abs(decimals)
    scaled = x * scale if decimals >= 0 else x / scale
    if not math.isfinite(scaled):
        raise InputError(f"{caller}: x = {x!r} at {decimals} decimal places is out of floating-point range")
    steps = to_integer(round(scaled, 9))
    result = steps / scale if decimals >= 0 else steps * scale
    if not math.isfinite(result):
        raise InputError(f"{caller}: x = {x!r} rounded at {decimals} decimal places is out of floating-point range")
    return float(result)
