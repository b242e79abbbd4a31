"""The book's figure style: a colour-blind-safe palette, readable on screen and in print."""
from __future__ import annotations

import matplotlib as mpl
from cycler import cycler

#: The Okabe & Ito (2008) palette ("Color Universal Design"), distinguishable under the common
#: colour-vision deficiencies.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def use_book_style() -> None:
    """Set matplotlib defaults for the book: Okabe-Ito colours, line styles that also differ in print.

    The first six colours of ``OKABE_ITO`` cycle together with four line styles (solid, dashed,
    dash-dot, dotted), so curves stay apart in greyscale print too; top and right spines off, a
    light grid, no legend frame.

    References
    ----------
    Okabe, M. & Ito, K. (2008), "Color Universal Design (CUD): how to make figures and
    presentations that are friendly to colorblind people", https://jfly.uni-koeln.de/color/.
    """
    mpl.rcParams.update({
        "axes.prop_cycle": cycler(color=OKABE_ITO[:6]) + cycler(linestyle=["-", "--", "-.", ":", "-", "--"]),
        "figure.figsize": (7.0, 4.2),
        "figure.dpi": 110,
        "savefig.dpi": 150,
        "font.size": 11,
        "axes.titlesize": 12,
        "axes.labelsize": 11,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "legend.frameon": False,
    })
