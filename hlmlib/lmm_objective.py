r"""The profiled (RE)ML criterion of a two-level linear mixed model, from per-group cross-products.

The model, for group :math:`j = 1, \dots, J` with :math:`n_j` rows, fixed-effects design
:math:`X_j` (:math:`n_j \times p`) and random-effects design :math:`Z_j` (:math:`n_j \times q`):

.. math::

   y_j = X_j \beta + Z_j b_j + e_j, \quad b_j \sim N(0, \tau), \quad e_j \sim N(0, \sigma^2 I),
   \quad \tau = \sigma^2 \Lambda \Lambda',

with :math:`\Lambda` lower triangular (diagonal :math:`\ge 0`); :math:`\theta` is its lower
triangle, column by column (lme4's and MixedModels.jl's order). With the spherical random effects
:math:`u_j = \Lambda^{-1} b_j`, everything the likelihood needs is one Cholesky factor per group and
one small one for the fixed effects (Bates et al. 2015, *J. Stat. Softw.* 67(1), sec. 3;
MixedModels.jl ``updateL!``):

.. math::

   \begin{aligned}
   L_j L_j' &= \Lambda' Z_j'Z_j \Lambda + I
     && (q \times q, \text{ one per group}) \\
   R_j &= L_j^{-1} \Lambda' Z_j'[Z_j\ X_j\ y_j]
     && (q \times (q + p + 1)) \\
   L_W L_W' &= [X\ y]'[X\ y] - \textstyle\sum_j R_{jW}' R_{jW}
     = \begin{bmatrix} R_X'R_X & \cdot \\ \cdot & \cdot \end{bmatrix}
   \end{aligned}

(:math:`R_{jW}`: the :math:`X` and :math:`y` columns of :math:`R_j`). The last diagonal element of :math:`L_W` is :math:`\sqrt{\text{pwrss}}`, the penalised weighted
residual sum of squares at the conditional estimate of :math:`\beta`; the first :math:`p` give
:math:`|R_X|`. With :math:`N` observations and :math:`\text{dof} = N` (ML) or :math:`N - p` (REML),
the profiled deviance (:math:`-2` log-likelihood with :math:`\beta` and :math:`\sigma^2` replaced by
their estimates) is

.. math::

   d(\theta) = \log|L|^2 \; [+ \log|R_X|^2 \text{ for REML}]
     + \text{dof} \cdot \left(1 + \log \frac{2 \pi\, \text{pwrss}}{\text{dof}}\right),

:math:`\log|L|^2 = \sum_j \log|L_j|^2 = \sum_j \log|V_j|` with
:math:`V_j = I + Z_j \Lambda \Lambda' Z_j'`. Once the cross-products are computed (one pass over
the :math:`N` rows), an evaluation costs :math:`O(J q^2 (q + p))` and never touches the rows.

**Gradient.** With :math:`T = \Lambda \Lambda'`,
:math:`P_j = Z_j' V_j^{-1} [Z_j\ X_j\ y_j] = Z_j'[Z_j\ X_j\ y_j] - R_{jZ}' R_j` (:math:`R_{jZ}`:
the first :math:`q` columns of :math:`R_j`) and :math:`s_j = Z_j' V_j^{-1} (y_j - X_j \beta)`,

.. math::

   \begin{aligned}
   \frac{\partial d}{\partial T} = G &= \sum_j P_{jZ} - \frac{\text{dof}}{\text{pwrss}} \sum_j s_j s_j'
     \; \Big[- \sum_j P_{jX} (R_X'R_X)^{-1} P_{jX}' \text{ for REML}\Big], \\
   \frac{\partial d}{\partial \Lambda} &= 2 G \Lambda,
   \end{aligned}

from :math:`d \log|V| = \operatorname{tr}(V^{-1} dV)`,
:math:`d\,\text{pwrss} = -\sum_j s_j'\, dT\, s_j` at fixed :math:`\beta` (:math:`\beta` minimises
pwrss, so its own change does not enter), and
:math:`d \log|X'V^{-1}X| = \operatorname{tr}((X'V^{-1}X)^{-1}\, d(X'V^{-1}X))`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["CrossProducts", "cross_products", "lower_triangle", "theta_of", "BlockedCholesky",
           "blocked_cholesky", "profiled_deviance", "deviance_at_sigma2", "weighted_products", "gradient_wrt_T",
           "deviance_gradient", "objective", "theta_lower_bounds", "forward_solve"]


@dataclass
class CrossProducts:
    r"""Everything the likelihood needs from the data, computed in one pass.

    ``ZtZW[j]`` = :math:`Z_j'[Z_j\ X_j\ y_j]` (J x q x (q + p + 1)), ``WtW`` = :math:`[X\ y]'[X\ y]`
    ((p+1) x (p+1)) and the group sizes ``n_obs`` (J,).
    """

    ZtZW: np.ndarray
    WtW: np.ndarray
    n_obs: np.ndarray

    @property
    def q(self) -> int:
        return self.ZtZW.shape[1]

    @property
    def p(self) -> int:
        return self.WtW.shape[0] - 1

    @property
    def N(self) -> int:
        return int(self.n_obs.sum())

    @property
    def ZtZ(self) -> np.ndarray:
        return self.ZtZW[:, :, :self.q]

    @property
    def z_scale(self) -> np.ndarray:
        r"""The root mean square of each column of :math:`Z` (q,): :math:`Z D^{-1}`, :math:`D` = diag of these,
        has columns at unit root mean square, and :math:`D\Lambda` is :math:`\Lambda` in units free of Z's."""
        return np.sqrt(np.diag(self.ZtZ.sum(axis=0)) / self.N)


def cross_products(y: np.ndarray, X: np.ndarray, Z: np.ndarray, codes: np.ndarray, n_groups: int) -> CrossProducts:
    r"""The one pass over the data: per-group :math:`Z_j'[Z_j\ X_j\ y_j]` (one ``np.bincount`` of the
    row-wise products per pair of columns), the totals :math:`[X\ y]'[X\ y]`, and the group sizes.
    ``codes``: :math:`0, \dots, J-1`."""
    q = Z.shape[1]
    ZW = np.vstack([Z.T, X.T, y])                  # one row per variable, so each product is contiguous
    ZtZW = np.empty((n_groups, q, ZW.shape[0]))
    for a in range(q):
        for c in range(ZW.shape[0]):
            ZtZW[:, a, c] = np.bincount(codes, weights=ZW[a] * ZW[c], minlength=n_groups)
    W = ZW[q:]
    return CrossProducts(ZtZW=ZtZW, WtW=W @ W.T, n_obs=np.bincount(codes, minlength=n_groups).astype(float))


@lru_cache(maxsize=None)
def _tril_indices(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the lower triangle, column by column (lme4's order of theta)."""
    cols, rows = np.triu_indices(q)
    return rows, cols


def lower_triangle(theta: np.ndarray, q: int) -> np.ndarray:
    r""":math:`\Lambda` (q x q lower triangular) from :math:`\theta`, its lower triangle column by column."""
    Lam = np.zeros((q, q))
    Lam[_tril_indices(q)] = theta
    return Lam


def theta_of(Lam: np.ndarray) -> np.ndarray:
    r""":math:`\theta` from :math:`\Lambda`: the inverse of :func:`lower_triangle`."""
    return Lam[_tril_indices(Lam.shape[0])]


def theta_lower_bounds(q: int) -> np.ndarray:
    r"""Lower bounds on :math:`\theta`: 0 for the diagonal of :math:`\Lambda`, :math:`-\infty` for the
    rest (as lme4)."""
    rows, cols = _tril_indices(q)
    return np.where(rows == cols, 0.0, -np.inf)


def forward_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    r""":math:`X_j = L_j^{-1} B_j` for a stack of lower-triangular :math:`L_j` (J x q x q),
    :math:`B_j` (J x q x k).

    Forward substitution row by row, vectorised over the J groups (a loop over q, not over groups);
    for the small q of a mixed model this is several times faster than a batched LU solve.
    """
    X = np.empty(np.broadcast_shapes(L.shape[:-1], B.shape[:-1]) + B.shape[-1:])
    for a in range(L.shape[-1]):
        X[:, a] = (B[:, a] - np.einsum("jb,jbk->jk", L[:, a, :a], X[:, :a])) / L[:, a, a, None]
    return X


@dataclass
class BlockedCholesky:
    r"""The blocked factor at :math:`\theta`: :math:`\Lambda`, the per-group :math:`L_j` (J x q x q),
    :math:`R_j` (J x q x (q+p+1)), :math:`L_W`."""

    Lam: np.ndarray
    L: np.ndarray
    R: np.ndarray
    LW: np.ndarray

    @property
    def pwrss(self) -> float:
        return self.LW[-1, -1] ** 2

    @property
    def RX_diag(self) -> np.ndarray:
        return np.diag(self.LW)[:-1]

    def beta(self) -> np.ndarray:
        r"""The fixed effects solving :math:`R_X'R_X \beta = X'V^{-1} y` (conditional on :math:`\theta`)."""
        p = self.LW.shape[0] - 1
        return np.linalg.solve(self.LW[:p, :p].T, self.LW[p, :p])


def blocked_cholesky(theta: np.ndarray, cp: CrossProducts) -> BlockedCholesky:
    r"""Map :math:`\theta` to the blocked Cholesky factor (MixedModels.jl's ``updateL!``), batched over
    groups."""
    q = cp.q
    Lam = lower_triangle(theta, q)
    LamT_C = Lam.T @ cp.ZtZW                                   # Lambda' Z_j'[Z_j X_j y_j]
    L = np.linalg.cholesky(LamT_C[:, :, :q] @ Lam + np.eye(q))
    R = forward_solve(L, LamT_C)                               # L_j^-1 Lambda' Z_j'[Z_j X_j y_j]
    RW = R[:, :, q:].reshape(-1, cp.p + 1)                     # stacked over groups
    LW = np.linalg.cholesky(cp.WtW - RW.T @ RW)
    return BlockedCholesky(Lam=Lam, L=L, R=R, LW=LW)


def profiled_deviance(fac: BlockedCholesky, cp: CrossProducts, reml: bool = True) -> float:
    r""":math:`-2` log-likelihood (REML or ML), :math:`\beta` and :math:`\sigma^2` profiled out: the
    criterion lme4 minimises: :func:`deviance_at_sigma2` at :math:`\hat\sigma^2 = \text{pwrss}/\text{dof}`,
    which is :math:`\log|L|^2\ [+ \log|R_X|^2] + \text{dof} (1 + \log(2 \pi\, \text{pwrss}/\text{dof}))`."""
    dof = cp.N - cp.p if reml else cp.N
    return deviance_at_sigma2(fac, cp, fac.pwrss / dof, reml)


def weighted_products(fac: BlockedCholesky, cp: CrossProducts) -> np.ndarray:
    r""":math:`P_j = Z_j' V_j^{-1} [Z_j\ X_j\ y_j] = Z_j'[Z_j\ X_j\ y_j] - R_{jZ}' R_j` (J x q x (q+p+1)),
    :math:`V_j = I + Z_j \Lambda \Lambda' Z_j'` (module docstring)."""
    return cp.ZtZW - np.swapaxes(fac.R[:, :, :cp.q], 1, 2) @ fac.R


def gradient_wrt_T(fac: BlockedCholesky, cp: CrossProducts, reml: bool = True,
                   sigma2: float | None = None) -> np.ndarray:
    r""":math:`G = \partial d / \partial T`, :math:`T = \Lambda \Lambda'` (q x q, symmetric; module
    docstring), :math:`d` the profiled deviance; with ``sigma2`` given, of the deviance at that
    :math:`\sigma^2` instead of the profiled one (:math:`1/\sigma^2` replaces
    :math:`\text{dof}/\text{pwrss}`, see :func:`deviance_at_sigma2`)."""
    q, p = cp.q, cp.p
    dof = cp.N - p if reml else cp.N
    P = weighted_products(fac, cp)                             # Z_j' V_j^-1 [Z_j X_j y_j]
    PX = P[:, :, q:q + p]
    s = P[:, :, -1] - PX @ fac.beta()                          # Z_j' V_j^-1 (y_j - X_j beta)
    weight = dof / fac.pwrss if sigma2 is None else 1 / sigma2
    G = P[:, :, :q].sum(axis=0) - weight * s.T @ s
    if reml and p:
        XtVinvX_inv = np.linalg.inv(fac.LW[:p, :p] @ fac.LW[:p, :p].T)
        G -= np.einsum("jak,jbk->ab", PX @ XtVinvX_inv, PX)
    return G


def deviance_at_sigma2(fac: BlockedCholesky, cp: CrossProducts, sigma2: float, reml: bool = True) -> float:
    r""":math:`-2` log-likelihood (REML or ML) at :math:`\theta` and a given :math:`\sigma^2`, :math:`\beta`
    profiled out: :math:`\log|L|^2\ [+ \log|R_X|^2] + \text{pwrss}/\sigma^2 + \text{dof} \log(2\pi\sigma^2)`
    (lme4's ``devfun2``, the function its ``profile`` works on). Minimised over :math:`\sigma^2` it is
    :func:`profiled_deviance`; its derivative in :math:`\sigma^2` is
    :math:`\text{dof}/\sigma^2 - \text{pwrss}/\sigma^4`."""
    dof = cp.N - cp.p if reml else cp.N
    logdet = 2 * np.log(np.diagonal(fac.L, axis1=1, axis2=2)).sum()
    if reml:
        logdet += 2 * np.log(fac.RX_diag).sum()
    return logdet + fac.pwrss / sigma2 + dof * np.log(2 * np.pi * sigma2)


def deviance_gradient(fac: BlockedCholesky, cp: CrossProducts, reml: bool = True) -> np.ndarray:
    r""":math:`\partial d / \partial \theta`, the lower triangle of :math:`2 G \Lambda` (:math:`d` the
    profiled deviance)."""
    return theta_of(2 * gradient_wrt_T(fac, cp, reml) @ fac.Lam)


def objective(theta: np.ndarray, cp: CrossProducts, reml: bool = True) -> tuple[float, np.ndarray]:
    r"""The profiled deviance and its gradient at :math:`\theta`, for a gradient-based optimiser.

    Where the factorisation fails numerically (extreme :math:`\theta`, at which :math:`X'V^{-1}X`
    loses its last digits), the value is :math:`+\infty`, so that the optimiser's line search backs off
    instead of crashing.
    """
    try:
        fac = blocked_cholesky(theta, cp)
    except np.linalg.LinAlgError:
        return np.inf, np.zeros_like(theta)
    return profiled_deviance(fac, cp, reml), deviance_gradient(fac, cp, reml)
