"""hlmlib: from the classical linear regression model to multilevel models.

OLS with the full sandwich family (classical, HC0-HC5 and HC4m, CR0-CR3, two-way clustering), two-level
linear mixed models by REML/ML (profile intervals, parametric-bootstrap LRT), FGLS/FWLS and random-effects
GLS, and the data-generating processes of the book. Conventions (HC1, CR1, CR2 df, REML) are stated in every docstring and
summary, and mapped to Stata, R and statsmodels in the book's conventions page.
"""
from . import datasets, plots
from .design import InputError
from .ols import ols, OLSResult
from . import simulate
from .bootstrap import wild_cluster_bootstrap
from .tables import etable
from .gls import fwls, re_gls, within, mundlak, hausman
from .mixed import BoundaryFitWarning, MixedResult, lrtest, mixed

__version__ = "0.1.0"
__all__ = ["datasets", "plots", "InputError", "ols", "OLSResult", "simulate", "wild_cluster_bootstrap", "etable", "fwls", "re_gls", "within", "mundlak", "hausman", "mixed", "MixedResult", "lrtest", "BoundaryFitWarning"]
