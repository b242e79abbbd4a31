"""hlmlib: from the classical linear regression model to multilevel models.

OLS with the full sandwich family (classical, HC0-HC5 and HC4m, CR0-CR3, two-way clustering), two-level
linear mixed models by REML/ML (profile intervals, parametric-bootstrap LRT), FGLS/FWLS and random-effects
GLS, and the data-generating processes of the book. Conventions (HC1, CR1, CR2 df, REML) are stated in every docstring and
summary, and mapped to Stata, R and statsmodels in the book's conventions page.
"""
import importlib

from . import datasets
from .design import InputError
from .ols import ols, OLSResult
from . import simulate
from .bootstrap import wild_cluster_bootstrap
from .tables import etable
from .gls import fwls, re_gls, within, mundlak, hausman
from .mixed import BoundaryFitWarning, MixedResult, lrtest, mixed
from .lmm_diagnostics import snijders_bosker_r2, variance_explained

__version__ = "0.1.0"
__all__ = ["datasets", "plots", "InputError", "ols", "OLSResult", "simulate", "wild_cluster_bootstrap", "etable", "fwls", "re_gls", "within", "mundlak", "hausman", "mixed", "MixedResult", "lrtest", "BoundaryFitWarning", "variance_explained", "snijders_bosker_r2"]


def __getattr__(name: str):
    # hlmlib.plots imports matplotlib, so it is imported when first used, not with hlmlib
    if name == "plots":
        return importlib.import_module(".plots", __name__)
    raise AttributeError(f"module 'hlmlib' has no attribute {name!r}")
