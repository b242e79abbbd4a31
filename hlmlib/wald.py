r"""Joint Wald tests of linear restrictions :math:`H_0: L\beta = 0`, for OLS and mixed models alike.

With :math:`q` restrictions (the rows of :math:`L`, full row rank), the estimate :math:`b` and a covariance
:math:`V` of it,

.. math::

   W = (Lb)'(L V L')^{-1}(Lb), \qquad F = W / q .

What differs between the tests is the covariance and the reference distribution of :math:`F`:

- ``F``: :math:`F(q, \mathrm{df})` with the df of the covariance: :math:`n-k` for classical and HC,
  :math:`G-1` for CR, :math:`\min(G_A, G_B) - 1` two-way. R ``anova``, ``car::linearHypothesis``; Stata's
  ``test`` after ``regress`` (classical), ``regress, vce(robust)`` (HC1 on :math:`(q, N-k)`) and
  ``regress, vce(cluster)`` (CR1 on :math:`(q, G-1)`; clubSandwich's "Naive-F").
- ``chi2``: :math:`W \sim \chi^2(q)`, reported as :math:`F = W/q` on :math:`(q, \infty)` (clubSandwich's
  "chi-sq"; Stata's ``test`` after ``mixed``).
- ``HTZ``: :math:`\tfrac{\nu - q + 1}{\nu} F \sim F(q, \nu - q + 1)`, Hotelling's :math:`T^2` with
  :math:`\nu` matched to the total variance of the cluster-robust :math:`LVL'` under the working model
  (Tipton & Pustejovsky 2015; clubSandwich ``Wald_test(test = "HTZ")``).

The Satterthwaite F (lmerTest ``contest``) and Kenward-Roger F (pbkrtest ``KRmodcomp``) of mixed models are
computed in :mod:`hlmlib.lmm_inference` and returned as the same :class:`WaldTest`.

**HTZ.** Write the cluster-robust variance of a contrast as a quadratic form in the working model's errors,
:math:`c'V^{CR}c = \sum_g (p_g' \varepsilon)^2`. For restrictions :math:`s, t` the matrices
:math:`P^{st}_{gh} = p_{sg}'\Phi\, p_{th}` are, in the terms of :class:`hlmlib.sandwich.Satterthwaite`,
:math:`P^{st}_{gh} = \delta_{gh} d^{st}_g - z_{sg}'z_{th}`, with :math:`d^{st}_g = t_s' B_{d,g} t_t` and
:math:`z_{sg} = B_{z,g} t_s`, :math:`t_s = R^{-T} L_s'`. Then :math:`\Omega = E(LV^{CR}L')` has entries
:math:`\operatorname{tr} P^{st}`; with :math:`\tilde L = \Omega^{-1/2} L` and the same arrays :math:`\tilde P`
for it,

.. math::

   \nu = \frac{q (q + 1)}{\sum_{s,t} \sum_{g,h} \left(\tilde P^{st}_{gh} \tilde P^{ts}_{gh}
     + \tilde P^{ss}_{gh} \tilde P^{tt}_{gh}\right)},

every sum over :math:`g, h` taken from :math:`O(G k^2)` per-cluster products (never a G x G or N x N matrix).
With one restriction :math:`\nu` is the Bell-McCaffrey/Satterthwaite df and HTZ is the squared t test.

References
----------
- Tipton & Pustejovsky (2015), *J. Educ. Behav. Stat.* 40, 604-634 (HTZ).
- Pustejovsky & Tipton (2018), *J. Bus. Econ. Stat.* 36, 672-683.
- Stata manual, ``[R] test`` and ``[U] 20.22``; Cameron & Miller (2015), *J. Human Resources* 50, 317-372.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .lazy import stats
from . import sandwich as sw
from .design import InputError
from .inference import contrast_matrix, term_index

__all__ = ["WaldTest", "restriction_matrix", "wald_statistic", "f_test", "htz_degrees_of_freedom", "htz_test",
           "ols_wald_test", "OLS_TESTS"]

OLS_TESTS = ("F", "chi2", "HTZ")


def _einsum(*operands):
    """np.einsum with its contraction order optimised: sums over groups then run as BLAS products (ten times
    faster than einsum's own loops for the per-group arrays here)."""
    return np.einsum(*operands, optimize=True)


@dataclass
class WaldTest:
    r"""A joint test of :math:`q` linear restrictions :math:`L\beta = 0`.

    ``F`` is the test statistic on :math:`F(\text{df\_num}, \text{df\_denom})` (``df_denom`` infinite for a
    chi-square test, where ``F = statistic / q``), ``p`` its p-value, ``statistic`` the Wald statistic
    :math:`W = (Lb)'(LVL')^{-1}(Lb)` with the covariance the test uses, ``test`` the name of the test and
    ``description`` the covariance, the reference distribution and the peer that computes the same.
    """

    F: float
    df_num: int
    df_denom: float
    p: float
    statistic: float
    test: str
    description: str
    restrictions: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        rows = "; ".join(f"{r} = 0" for r in self.restrictions)
        return (f"Wald test ({self.test}) of {self.df_num} restriction(s){': ' + rows if rows else ''}\n"
                f"  F = {self.F:.6g} on ({self.df_num}, {self.df_denom:.6g}) df, p = {self.p:.6g}\n"
                f"  {self.description}")


def restriction_matrix(L, names) -> tuple[np.ndarray, list[str]]:
    r"""The restrictions as a q x k matrix (one row per restriction, columns in ``names`` order) and their labels.

    ``L``: a matrix (or one row) of weights; a ``{term: weight}`` dict or a list of them; or a list of term
    names (a single name allowed), meaning "all these coefficients are zero". Checked: each row has one weight
    per coefficient, the weights are finite, no row is zero and the rows are linearly independent (a
    redundant restriction makes :math:`LVL'` singular; drop it).
    """
    names = list(names)
    if isinstance(L, str):
        L = [L]
    if isinstance(L, (list, tuple)) and len(L) == 0 or (isinstance(L, np.ndarray) and L.size == 0):
        raise InputError("L has no restrictions: give at least one row of weights or one term name")
    if isinstance(L, (list, tuple)) and all(isinstance(t, str) for t in L):
        R = np.zeros((len(L), len(names)))
        for i, term in enumerate(L):
            R[i, term_index(term, names)] = 1.0
        labels = list(L)
    else:
        R, labels = contrast_matrix(L, names)
    norms = np.linalg.norm(R, axis=1)
    if np.any(norms == 0):
        raise InputError(f"restriction(s) {list(np.flatnonzero(norms == 0))} of L have all weights zero")
    singular = np.linalg.svd(R / norms[:, None], compute_uv=False)
    rank = int(np.sum(singular > 1e-10 * singular[0]))
    if rank < R.shape[0]:
        raise InputError(f"L is rank deficient: its {R.shape[0]} restrictions have rank {rank} (some row is a "
                         "linear combination of the others); drop the redundant restriction(s)")
    return R, labels


def wald_statistic(R: np.ndarray, b: np.ndarray, V: np.ndarray) -> float:
    r""":math:`W = (Rb)'(RVR')^{-1}(Rb)`; refuses a covariance that is singular along the restrictions, judged on
    the correlation form of :math:`RVR'` (its smallest eigenvalue at or below 1e-12 of its largest), so that
    neither the units of the coefficients nor the scale of each restriction matters, as for :math:`W` itself."""
    C, d = sw.correlation_form(R @ V @ R.T)
    eig = np.linalg.eigvalsh(C)
    if not (d.min() > 0 and eig[0] > 1e-12 * eig[-1]):
        raise InputError("the covariance is singular (or not positive definite) along the restrictions, so "
                         "their Wald statistic is undefined (e.g. a cluster-robust covariance with fewer "
                         "clusters than restrictions); test fewer restrictions or use another covariance")
    z = (R @ b) / d
    return float(z @ np.linalg.solve(C, z))


def f_test(R, b, V, df_denom: float, description: str, labels=(), test: str = "F") -> WaldTest:
    r""":math:`F = W/q` on :math:`(q, \mathrm{df})`; an infinite df gives the chi-square test of :math:`W`
    on :math:`q` df (``test="chi2"``)."""
    q = R.shape[0]
    W = wald_statistic(R, b, V)
    if np.isinf(df_denom):
        p, test = stats.chi2.sf(W, q), "chi2"
    else:
        p = stats.f.sf(W / q, q, df_denom)
    return WaldTest(F=W / q, df_num=q, df_denom=float(df_denom), p=float(p), statistic=W, test=test,
                    description=description, restrictions=list(labels))


def _inverse_sqrt(S: np.ndarray) -> np.ndarray:
    r"""A matrix :math:`K` with :math:`KSK' = I` on the range of :math:`S`: :math:`C^{-1/2}D^{-1/2}` from the
    correlation form :math:`C = D^{-1/2}SD^{-1/2}` (:math:`D = \operatorname{diag}(S)`), with eigenvalues of
    :math:`C` at or below 1e-12 of its largest set to 0 (clubSandwich's ``matrix_power`` cuts at an absolute
    1e-12 on :math:`S` itself, which returns NaN once a restriction's variance is that small, e.g. a coefficient
    on income in dollars). The HTZ df do not depend on which :math:`K`: any two differ by a rotation of the
    restrictions, which leaves :math:`\nu` unchanged (module docstring)."""
    C, d = sw.correlation_form(S)
    w, U = np.linalg.eigh(C)
    keep = w > 1e-12 * max(w[-1], 0.0)
    root = np.where(keep, 1 / np.sqrt(np.where(keep, w, 1.0)), 0.0)
    return (U * root) @ U.T * np.where(d > 0, 1 / np.where(d > 0, d, 1.0), 0.0)


def _htz_blocks(stt: sw.Satterthwaite, R: np.ndarray):
    r"""For the restrictions (rows of ``R``): :math:`d^{st}_g` (G, q, q) and :math:`z_{sg}` (G, q, k)."""
    T = R @ stt.R_inv
    d = _einsum("sa,gab,tb->gst", T, stt.B_d, T)
    z = _einsum("gab,sb->gsa", stt.B_z, T)
    return d, z


def htz_degrees_of_freedom(stt: sw.Satterthwaite, R: np.ndarray) -> float:
    r"""The HTZ :math:`\nu` of Tipton & Pustejovsky (2015) for the restrictions ``R`` (module docstring)."""
    q = R.shape[0]
    d, z = _htz_blocks(stt, R)
    Omega = d.sum(axis=0) - _einsum("gsa,gta->st", z, z)
    d, z = _htz_blocks(stt, _inverse_sqrt(Omega) @ R)
    zz = _einsum("gsa,gta->gst", z, z)                       # z_sg'z_tg
    K = _einsum("gsa,gtb->stab", z, z)                       # K_st = sum_g z_sg z_tg'
    diag_d = _einsum("gss->gs", d)
    diag_zz = _einsum("gss->gs", zz)
    # sum_{g,h} P_st P_ts and P_ss P_tt, from the diagonal (d) and low-rank (z'z) parts of P
    cross = (d**2).sum(axis=0) - 2 * (d * zz).sum(axis=0) + _einsum("tsab,tsba->st", K, K)
    same = (_einsum("gs,gt->st", diag_d, diag_d) - _einsum("gs,gt->st", diag_d, diag_zz)
            - _einsum("gs,gt->st", diag_zz, diag_d) + _einsum("tsab,stba->st", K, K))
    return float(q * (q + 1) / (cross + same).sum())


def htz_test(R, b, V, stt: sw.Satterthwaite, description: str, labels=()) -> WaldTest:
    r"""clubSandwich's HTZ test: :math:`\delta F` on :math:`(q, \nu - q + 1)`, :math:`\delta = (\nu - q + 1)/\nu`
    (module docstring; ``Wald_test(..., test = "HTZ")``)."""
    q = R.shape[0]
    W = wald_statistic(R, b, V)
    nu = htz_degrees_of_freedom(stt, R)
    delta = max((nu - q + 1) / nu, 0.0)
    df = nu - q + 1
    F = delta * W / q
    p = stats.f.sf(F, q, df) if df > 0 else np.nan
    return WaldTest(F=F, df_num=q, df_denom=df, p=float(p), statistic=W, test="HTZ",
                    description=description + f"; Hotelling T^2 approximation HTZ, nu = {nu:.6g} (clubSandwich "
                    "Wald_test test='HTZ')", restrictions=list(labels))


def _ols_cluster_satterthwaite(fit, cov: sw.Covariance, cluster) -> sw.Satterthwaite:
    """The Satterthwaite pieces of any one-way CR kind of an OLS fit (CR2's come with its covariance)."""
    if cov.satterthwaite is not None:
        return cov.satterthwaite
    clusters = fit._clusters(cluster)
    C = sw.cluster_gram(fit.lstsq.U, clusters)
    if cov.kind == "CR3":
        lam, W = sw.cluster_eigen(C, clusters, "CR3")
    else:
        lam, W = np.linalg.eigh(C)
    return sw.Satterthwaite.from_eigen(np.clip(lam, 0.0, None), W, fit.lstsq.R_inv, cov.kind)


def ols_wald_test(fit, L, kind: str | None = None, cluster=None, test: str | None = None) -> WaldTest:
    r"""Joint Wald test of :math:`Lb = 0` for an OLS fit (see :meth:`hlmlib.OLSResult.wald_test`)."""
    R, labels = restriction_matrix(L, fit.names)
    cov = fit.covariance(kind, cluster)
    one_way = cov.n_clusters is not None and not isinstance(cov.n_clusters, tuple)
    if test is None:
        test = "HTZ" if cov.kind == "CR2" and one_way else "F"
    if test not in OLS_TESTS:
        raise InputError(f"unknown test {test!r}; choose one of {', '.join(OLS_TESTS)}")
    b = fit.params.to_numpy()
    clustered = f" by {cov.cluster_name} (G = {cov.n_clusters})" if cov.cluster_name else ""
    description = f"{fit.label}, covariance {cov.kind}{clustered}: {cov.convention}"
    if test == "HTZ":
        if not one_way:
            raise InputError(f"the HTZ test is for one-way cluster-robust covariances (CR0-CR3), not kind={cov.kind!r}"
                             + (" with two-way clustering" if cov.n_clusters is not None else ""))
        return htz_test(R, b, cov.matrix, _ols_cluster_satterthwaite(fit, cov, cluster), description, labels)
    df = np.inf if test == "chi2" else float(cov.df)
    reference = f"chi2({R.shape[0]})" if test == "chi2" else f"F({R.shape[0]}, {df:g})"
    return f_test(R, b, cov.matrix, df, description + f"; W/q on {reference}", labels, test)
