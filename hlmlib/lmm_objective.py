r"""The profiled (RE)ML criterion of a two-level linear mixed model, from per-group cross-products.

The model, for group j = 1..J with n_j rows, fixed-effects design X_j (n_j x p) and random-effects
design Z_j (n_j x q):

    y_j = X_j beta + Z_j b_j + e_j,   b_j ~ N(0, tau),   e_j ~ N(0, sigma^2 I),   tau = sigma^2 Lambda Lambda'

with Lambda lower triangular (diagonal >= 0); theta is its lower triangle, column by column (lme4's and
MixedModels.jl's order). With the spherical random effects u_j = Lambda^-1 b_j, everything the
likelihood needs is one Cholesky factor per group and one small one for the fixed effects
(Bates et al. 2015, *J. Stat. Softw.* 67(1), sec. 3; MixedModels.jl ``updateL!``):

    L_j L_j'  = Lambda' Z_j'Z_j Lambda + I                          (q x q, one per group)
    R_j       = L_j^-1 Lambda' Z_j'[Z_j X_j y_j]                    (q x (q + p + 1))
    L_W L_W'  = [X y]'[X y] - sum_j R_jW' R_jW = [[R_X'R_X, .], [., .]]  (R_jW: the X and y columns of R_j)

The last diagonal element of L_W is sqrt(pwrss), the penalised weighted residual sum of squares at the
conditional estimate of beta; the first p give |R_X|. With N observations and dof = N (ML) or N - p
(REML), the profiled deviance (-2 log-likelihood with beta and sigma^2 replaced by their estimates) is

    d(theta) = log|L|^2 [+ log|R_X|^2 for REML] + dof * (1 + log(2 pi pwrss / dof)),

log|L|^2 = sum_j log|L_j|^2 = sum_j log|V_j| with V_j = I + Z_j Lambda Lambda' Z_j'. Once the cross-products are
computed (one pass over the N rows), an evaluation costs O(J q^2 (q + p)) and never touches the rows.

Gradient. With T = Lambda Lambda', P_j = Z_j' V_j^-1 [Z_j X_j y_j] = Z_j'[Z_j X_j y_j] - R_jZ' R_j
(R_jZ: the first q columns of R_j) and s_j = Z_j' V_j^-1 (y_j - X_j beta),

    dd/dT = G = sum_j P_jZ - (dof / pwrss) sum_j s_j s_j' [- sum_j P_jX (R_X'R_X)^-1 P_jX' for REML],
    dd/dLambda = 2 G Lambda,

from d log|V| = tr(V^-1 dV), d pwrss = -sum_j s_j' dT s_j at fixed beta (beta minimises pwrss, so
its own change does not enter), and d log|X'V^-1X| = tr((X'V^-1X)^-1 d(X'V^-1X)).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["CrossProducts", "cross_products", "lower_triangle", "theta_of", "BlockedCholesky",
           "blocked_cholesky", "profiled_deviance", "gradient_wrt_T", "deviance_gradient", "objective",
           "theta_lower_bounds", "forward_solve"]


@dataclass
class CrossProducts:
    """Everything the likelihood needs from the data, computed in one pass.

    ``ZtZW[j] = Z_j'[Z_j X_j y_j]`` (J x q x (q + p + 1)), ``WtW = [X y]'[X y]`` ((p+1) x (p+1)) and the
    group sizes ``n_obs`` (J,).
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


def cross_products(y: np.ndarray, X: np.ndarray, Z: np.ndarray, codes: np.ndarray, n_groups: int) -> CrossProducts:
    """The one pass over the data: per-group Z_j'[Z_j X_j y_j] (one ``np.bincount`` of the row-wise
    products per pair of columns), the totals [X y]'[X y], and the group sizes. ``codes``: 0..J-1."""
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
    """Lambda (q x q lower triangular) from theta, its lower triangle column by column."""
    Lam = np.zeros((q, q))
    Lam[_tril_indices(q)] = theta
    return Lam


def theta_of(Lam: np.ndarray) -> np.ndarray:
    """theta from Lambda: the inverse of ``lower_triangle``."""
    return Lam[_tril_indices(Lam.shape[0])]


def theta_lower_bounds(q: int) -> np.ndarray:
    """Lower bounds on theta: 0 for the diagonal of Lambda, -inf for the rest (as lme4)."""
    rows, cols = _tril_indices(q)
    return np.where(rows == cols, 0.0, -np.inf)


def forward_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """X_j = L_j^-1 B_j for a stack of lower-triangular L_j (J x q x q), B_j (J x q x k).

    Forward substitution row by row, vectorised over the J groups (a loop over q, not over groups);
    for the small q of a mixed model this is several times faster than a batched LU solve.
    """
    X = np.empty(np.broadcast_shapes(L.shape[:-1], B.shape[:-1]) + B.shape[-1:])
    for a in range(L.shape[-1]):
        X[:, a] = (B[:, a] - np.einsum("jb,jbk->jk", L[:, a, :a], X[:, :a])) / L[:, a, a, None]
    return X


@dataclass
class BlockedCholesky:
    """The blocked factor at theta: Lambda, the per-group L_j (J x q x q), R_j (J x q x (q+p+1)), L_W."""

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
        """The fixed effects solving R_X'R_X beta = X'V^-1 y (conditional on theta)."""
        p = self.LW.shape[0] - 1
        return np.linalg.solve(self.LW[:p, :p].T, self.LW[p, :p])


def blocked_cholesky(theta: np.ndarray, cp: CrossProducts) -> BlockedCholesky:
    """Map theta to the blocked Cholesky factor (MixedModels.jl's ``updateL!``), batched over groups."""
    q = cp.q
    Lam = lower_triangle(theta, q)
    LamT_C = Lam.T @ cp.ZtZW                                   # Lambda' Z_j'[Z_j X_j y_j]
    L = np.linalg.cholesky(LamT_C[:, :, :q] @ Lam + np.eye(q))
    R = forward_solve(L, LamT_C)                               # L_j^-1 Lambda' Z_j'[Z_j X_j y_j]
    RW = R[:, :, q:].reshape(-1, cp.p + 1)                     # stacked over groups
    LW = np.linalg.cholesky(cp.WtW - RW.T @ RW)
    return BlockedCholesky(Lam=Lam, L=L, R=R, LW=LW)


def profiled_deviance(fac: BlockedCholesky, cp: CrossProducts, reml: bool = True) -> float:
    """-2 log-likelihood (REML or ML), beta and sigma^2 profiled out: the criterion lme4 minimises."""
    dof = cp.N - cp.p if reml else cp.N
    logdet = 2 * np.log(np.diagonal(fac.L, axis1=1, axis2=2)).sum()
    if reml:
        logdet += 2 * np.log(fac.RX_diag).sum()
    return logdet + dof * (1 + np.log(2 * np.pi * fac.pwrss / dof))


def gradient_wrt_T(fac: BlockedCholesky, cp: CrossProducts, reml: bool = True) -> np.ndarray:
    """G = d profiled_deviance / dT, T = Lambda Lambda' (q x q, symmetric; module docstring)."""
    q, p = cp.q, cp.p
    dof = cp.N - p if reml else cp.N
    P = cp.ZtZW - np.swapaxes(fac.R[:, :, :q], 1, 2) @ fac.R   # Z_j' V_j^-1 [Z_j X_j y_j]
    PX = P[:, :, q:q + p]
    s = P[:, :, -1] - PX @ fac.beta()                          # Z_j' V_j^-1 (y_j - X_j beta)
    G = P[:, :, :q].sum(axis=0) - (dof / fac.pwrss) * s.T @ s
    if reml and p:
        XtVinvX_inv = np.linalg.inv(fac.LW[:p, :p] @ fac.LW[:p, :p].T)
        G -= np.einsum("jak,jbk->ab", PX @ XtVinvX_inv, PX)
    return G


def deviance_gradient(fac: BlockedCholesky, cp: CrossProducts, reml: bool = True) -> np.ndarray:
    """d profiled_deviance / d theta = the lower triangle of 2 G Lambda."""
    return theta_of(2 * gradient_wrt_T(fac, cp, reml) @ fac.Lam)


def objective(theta: np.ndarray, cp: CrossProducts, reml: bool = True) -> tuple[float, np.ndarray]:
    """The profiled deviance and its gradient at theta, for a gradient-based optimiser.

    Where the factorisation fails numerically (extreme theta, at which X'V^-1X loses its last digits),
    the value is +inf, so that the optimiser's line search backs off instead of crashing."""
    try:
        fac = blocked_cholesky(theta, cp)
    except np.linalg.LinAlgError:
        return np.inf, np.zeros_like(theta)
    return profiled_deviance(fac, cp, reml), deviance_gradient(fac, cp, reml)
