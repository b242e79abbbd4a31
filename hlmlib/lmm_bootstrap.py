r"""The parametric-bootstrap likelihood-ratio test of two nested mixed models (pbkrtest's ``PBmodcomp``).

With few groups the asymptotic references of :func:`hlmlib.lrtest` are poor: :math:`\chi^2` for fixed
effects is anti-conservative (its p-values are too small), and the 50:50 mixture for a variance
component is only a large-sample approximation. The parametric bootstrap simulates the statistic's
distribution under :math:`H_0` instead (Davison & Hinkley 1997, ch. 4; Halekoh & Hojsgaard 2014):

1. Draw :math:`y^\ast = X \hat\beta_0 + Z b^\ast + e^\ast` from the fitted small model, with
   :math:`b_j^\ast = \hat\sigma_0 \hat\Lambda_0 u_j`, :math:`u_j \sim N(0, I_q)` (so
   :math:`b_j^\ast \sim N(0, \hat\tau_0)`, singular :math:`\hat\tau_0` included) and
   :math:`e^\ast \sim N(0, \hat\sigma_0^2 I)`.
2. Refit both models to :math:`y^\ast` with the criterion of the original fits and take
   :math:`\mathrm{LRT}^\ast = \max(d_0^\ast - d_1^\ast, 0)`, :math:`d` the deviance (:math:`-2` log-likelihood).
3. :math:`p = \dfrac{1 + \#\{\mathrm{LRT}^\ast_b \ge \mathrm{LRT}\}}{1 + B}`, with Monte Carlo standard
   error :math:`\sqrt{p(1-p)/B}`.

Only :math:`y` changes between draws: :math:`X`, :math:`Z` and the groups do not, so the per-group
cross-products :math:`Z_j'Z_j`, :math:`Z_j'X_j`, :math:`X'X` of each model are those of its fit, and a draw
needs only :math:`Z_j'y^\ast`, :math:`X'y^\ast` and :math:`y^{\ast\prime} y^\ast` (one sparse product per batch of
draws), then ``hlmlib.mixed.fit_theta`` (from its moment start, faster here than from the estimate) on the
updated cross-products.

Conventions. pbkrtest refits both models by ML whatever their fit; here the bootstrap uses the fits'
own criterion (REML fits, which :func:`hlmlib.lrtest` compares only when their fixed effects agree, give
the REML statistic's bootstrap): pass ML fits (``reml=False``) to reproduce ``PBmodcomp``. ``PBmodcomp``
prints :math:`(1 + \#\{\mathrm{LRT}^\ast > \mathrm{LRT}\}) / (1 + \#\{\mathrm{LRT}^\ast > 0\})`, which
leaves out the draws whose statistic is zero (the big refit on the boundary, where it equals the small
one); that value is ``pvalue_positive`` here, while ``pvalue`` counts every draw, as the formula above
(Davison & Hinkley 1997, ch. 4; pbkrtest's ``summary`` computes it as ``p.PB.all`` but does not print it).
The two differ by the share of zero statistics: small for a random slope added to a random intercept (0.2% of
pbkrtest's draws in tests/fixtures/pbmodcomp.json), none for a fixed effect.

References
----------
- Davison & Hinkley (1997), *Bootstrap Methods and their Application*, Cambridge UP, ch. 4.
- Halekoh & Hojsgaard (2014), A Kenward-Roger approximation and parametric bootstrap methods for tests
  in linear mixed models -- the R package pbkrtest, *J. Stat. Softw.* 59(9).
"""
from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sparse

from .design import InputError, make_rng
from .lmm_objective import CrossProducts, lower_triangle

__all__ = ["BootstrapLRT", "bootstrap_lrt", "check_replications"]

# Deviance differences below this are optimiser noise (fit_theta stops at a Newton decrement of 1e-11):
# a statistic within it of another ties with it, and one below it counts as zero.
DEVIANCE_NOISE = 1e-8
CHUNK_BYTES = 32_000_000     # simulated responses held at once


def check_replications(B, name: str = "bootstrap") -> int:
    """B as a positive int, or InputError."""
    if isinstance(B, bool) or not isinstance(B, numbers.Integral) or B < 1:
        raise InputError(f"{name} must be a positive integer number of bootstrap replications, got {B!r}")
    return int(B)


@dataclass
class BootstrapLRT:
    r"""The parametric bootstrap of a likelihood-ratio statistic (module docstring).

    ``pvalue``: :math:`(1 + \#\{\mathrm{LRT}^\ast \ge \mathrm{LRT}\})/(1 + B_\text{used})` with ``mc_se``
    its Monte Carlo standard error :math:`\sqrt{p(1-p)/B_\text{used}}`; ``pvalue_positive``: pbkrtest's
    printed ``PBtest`` p-value, over the draws with :math:`\mathrm{LRT}^\ast > 0` only. ``statistics``:
    the :math:`B_\text{used}` bootstrap statistics. Diagnostics: ``n_failed`` draws whose refit raised
    (left out; :math:`B_\text{used} = B - n_\text{failed}`), ``n_not_converged`` refits that did not meet
    the convergence test (kept), ``n_boundary_small``/``n_boundary_big`` refits on the boundary (a zero
    variance or singular :math:`\tau`, as ``MixedResult.boundary``), ``n_zero`` statistics at zero,
    ``n_negative`` of them set to zero from below :math:`-10^{-6}` (the big model's refit short of the small
    one's likelihood, which nesting excludes: a sign of an optimiser failure).
    """

    statistic: float
    statistics: np.ndarray = field(repr=False)
    pvalue: float
    mc_se: float
    pvalue_positive: float
    B: int
    n_failed: int
    n_not_converged: int
    n_boundary_small: int
    n_boundary_big: int
    n_zero: int
    n_negative: int
    criterion: str

    @property
    def n_used(self) -> int:
        return self.statistics.size

    def __repr__(self) -> str:
        return (f"parametric bootstrap ({self.criterion} refits, B = {self.B}): p = {self.pvalue:.4g} "
                f"(Monte Carlo s.e. {self.mc_se:.2g}); pbkrtest's p over LRT* > 0: {self.pvalue_positive:.4g}; "
                f"refits on the boundary: small {self.n_boundary_small}, big {self.n_boundary_big}; "
                f"failed draws {self.n_failed}, non-converged refits {self.n_not_converged}"
                + (f", big refit below the small one {self.n_negative}" if self.n_negative else ""))


class _RefitData:
    """A fitted model's cross-products without y (fixed across draws) and the maps that give the y parts."""

    def __init__(self, fit):
        cp = fit._cp
        self.fit = fit
        self.fixed_ZtZX = cp.ZtZW[:, :, :-1]                         # Z_j'[Z_j X_j]
        self.XtX = cp.WtW[:-1, :-1]
        self.X = fit._X
        J, q, N = cp.ZtZW.shape[0], cp.q, cp.N
        # S (Jq x N): row j q + a holds column a of Z on group j's rows, so S y = (Z_j'y)_j stacked
        rows = (fit._codes[:, None] * q + np.arange(q)).ravel()
        self.S = sparse.csr_matrix((fit._Z.ravel(), (rows, np.repeat(np.arange(N), q))), shape=(J * q, N))
        self.shape = (J, q)
        self.n_obs = cp.n_obs

    def responses(self, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Z_j'y, X'y and y'y for every column y of Y (N x C): (C, J, q), (C, p), (C,)."""
        C = Y.shape[1]
        ZtY = np.asarray(self.S @ Y).T.reshape(C, *self.shape)
        return ZtY, (self.X.T @ Y).T, np.einsum("nc,nc->c", Y, Y)

    def cross_products(self, Zty: np.ndarray, Xty: np.ndarray, yty: float) -> CrossProducts:
        """The model's cross-products for one response, from its y parts."""
        WtW = np.block([[self.XtX, Xty[:, None]], [Xty[None, :], np.array([[yty]])]])
        return CrossProducts(ZtZW=np.concatenate([self.fixed_ZtZX, Zty[:, :, None]], axis=2), WtW=WtW,
                             n_obs=self.n_obs)


def _simulate(fit, rng: np.random.Generator, C: int) -> np.ndarray:
    r"""C responses from the fitted model, N x C: :math:`X\hat\beta + Z_j \hat\sigma \Lambda u_j + \hat\sigma \epsilon`.

    Drawn one replication at a time (u: J x q, then e: N), so the draws do not depend on the batch size."""
    J, q, N = fit.ngroups, fit.q, fit.nobs
    sigma = np.sqrt(fit.sigma2)
    mean = fit._X @ fit.params.to_numpy()
    Lam_t = sigma * lower_triangle(fit.theta, q).T
    Y = np.empty((N, C))
    for c in range(C):
        b = rng.standard_normal((J, q)) @ Lam_t                  # b_j ~ N(0, tau), rows
        Y[:, c] = mean + np.einsum("na,na->n", fit._Z, b[fit._codes]) + sigma * rng.standard_normal(N)
    return Y


def bootstrap_lrt(small, big, statistic: float, B: int, seed=None) -> BootstrapLRT:
    r"""Parametric-bootstrap p-value of the likelihood-ratio statistic ``statistic`` of ``small`` nested in
    ``big`` (two checked :class:`hlmlib.MixedResult` fits on the same data; :func:`hlmlib.lrtest` checks
    them and calls this with ``bootstrap=B``). Module docstring: the algorithm, the convention, pbkrtest.
    """
    from .mixed import SINGULAR_TOL, fit_theta

    B = check_replications(B)
    rng = make_rng(seed)
    reml = small.reml
    models = [_RefitData(small), _RefitData(big)]
    chunk = int(max(1, min(B, CHUNK_BYTES // (8 * small.nobs))))
    stats_, n_failed, n_not_converged, n_boundary = [], 0, 0, [0, 0]
    for first in range(0, B, chunk):
        Y = _simulate(small, rng, min(chunk, B - first))
        parts = [m.responses(Y) for m in models]
        for c in range(Y.shape[1]):
            deviances = []
            for k, (model, (ZtY, XtY, yty)) in enumerate(zip(models, parts)):
                cp = model.cross_products(ZtY[c], XtY[c], yty[c])
                try:
                    fit = fit_theta(cp, reml=reml)
                except (np.linalg.LinAlgError, FloatingPointError, ValueError):
                    break
                if not np.isfinite(fit.deviance):
                    break
                deviances.append(fit.deviance)
                n_not_converged += not fit.converged
                n_boundary[k] += bool(np.diag(lower_triangle(fit.theta, cp.q)).min() < SINGULAR_TOL)
            if len(deviances) < 2:
                n_failed += 1
                continue
            stats_.append(deviances[0] - deviances[1])
    raw = np.asarray(stats_)
    star = np.maximum(raw, 0.0)
    if star.size == 0:
        raise InputError(f"every one of the {B} bootstrap refits failed; the models cannot be refitted to data "
                         "simulated from the small one")
    if n_failed or (raw < -1e-6).any():
        warnings.warn(f"parametric bootstrap: {n_failed} of {B} draws failed to refit and were left out; "
                      f"{int((raw < -1e-6).sum())} big-model refits ended below the small model's likelihood "
                      "(set to LRT* = 0)", RuntimeWarning, stacklevel=3)
    extreme = star >= statistic - DEVIANCE_NOISE
    pvalue = (1 + extreme.sum()) / (1 + star.size)
    positive = star > DEVIANCE_NOISE
    pvalue_positive = (1 + (star[positive] > statistic).sum()) / (1 + positive.sum())
    return BootstrapLRT(statistic=float(statistic), statistics=star, pvalue=float(pvalue),
                        mc_se=float(np.sqrt(pvalue * (1 - pvalue) / star.size)),
                        pvalue_positive=float(pvalue_positive), B=B, n_failed=n_failed,
                        n_not_converged=n_not_converged, n_boundary_small=n_boundary[0],
                        n_boundary_big=n_boundary[1], n_zero=int((~positive).sum()),
                        n_negative=int((raw < -1e-6).sum()),
                        criterion="REML" if reml else "ML")
