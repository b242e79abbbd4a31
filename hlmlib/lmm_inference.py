r"""Small-sample inference for the fixed effects of a two-level linear mixed model, from per-group blocks.

Three answers to "how uncertain is :math:`\hat\beta`, and against which distribution do I test it?", each
computed exactly from the per-group cross-products of :mod:`hlmlib.lmm_objective` in :math:`O(J)` work after
the fit -- never an N x N matrix (lmerTest and pbkrtest differentiate or invert N x N matrices):

1. **Satterthwaite** (lmerTest's ``summary(m, ddf = "Satterthwaite")``, ``contest``): for a contrast
   :math:`c`, with :math:`\Phi(\psi) = \sigma^2 (X'V_*^{-1}X)^{-1}` the covariance of :math:`\hat\beta` as a
   function of lmerTest's variance parameters :math:`\psi = (\theta, \sigma)`
   (:math:`V_* = I + Z \Lambda_\theta \Lambda_\theta' Z'`),

   .. math::

      \mathrm{df} = \frac{2 (c'\Phi c)^2}{g' A g}, \qquad g_k = c' \frac{\partial \Phi}{\partial \psi_k} c,
      \qquad A = 2 H^{-1},

   :math:`H` the Hessian of the (RE)ML deviance :math:`D(\theta, \sigma)` (:math:`\beta` profiled out,
   :math:`\sigma` not) at the estimates, so :math:`A` is the asymptotic covariance of :math:`\hat\psi`
   (Satterthwaite 1946; Giesbrecht & Burns 1985; Kuznetsova, Brockhoff & Christensen 2017). lmerTest gets
   :math:`H` and :math:`\partial\Phi/\partial\psi` by numerical differentiation; here they are analytic.
   With :math:`T = \Lambda\Lambda'`, a direction :math:`\Delta` in :math:`T`, and per group
   :math:`M_j = Z_j'V_{*j}^{-1}Z_j`, :math:`B_j = Z_j'V_{*j}^{-1}X_j`,
   :math:`s_j = Z_j'V_{*j}^{-1}(y_j - X_j\hat\beta)`, :math:`A_X = X'V_*^{-1}X`,
   :math:`N_j = B_j A_X^{-1} B_j'`, :math:`u_\Delta = \sum_j B_j'\Delta s_j`:

   .. math::

      \begin{aligned}
      \partial^2_{\Delta_1\Delta_2} \log|V_*| &= -\textstyle\sum_j \operatorname{tr}(\Delta_1 M_j \Delta_2 M_j) \\
      \partial^2_{\Delta_1\Delta_2}\, \text{pwrss} &= 2 \textstyle\sum_j s_j'\Delta_1 M_j \Delta_2 s_j
        - 2\, u_{\Delta_1}' A_X^{-1} u_{\Delta_2} \\
      \partial^2_{\Delta_1\Delta_2} \log|A_X| &= 2 \textstyle\sum_j \operatorname{tr}(\Delta_1 M_j \Delta_2 N_j)
        - \operatorname{tr}(A_X^{-1} \partial_{\Delta_1} A_X\, A_X^{-1} \partial_{\Delta_2} A_X),
        \quad \partial_\Delta A_X = -\textstyle\sum_j B_j'\Delta B_j ,
      \end{aligned}

   and :math:`\theta` enters through :math:`\partial T/\partial\theta_k = E_k\Lambda' + \Lambda E_k'`
   (:math:`E_k` the unit matrix at :math:`\theta_k`'s place). :math:`D = \log|V_*| [+ \log|A_X|]
   + \text{pwrss}/\sigma^2 + \text{dof} \log(2\pi\sigma^2)` (dof :math:`N - p` for REML, :math:`N` for
   ML). As lmerTest, :math:`H^{-1}` is the pseudo-inverse over eigenvalues above 1e-8, with a warning
   when an eigenvalue is negative or near zero; unlike lmerTest, :math:`H` is taken in coordinates free of the
   data's units (:math:`\theta` for :math:`Z`'s columns at unit root mean square, :math:`\sigma/\hat\sigma`),
   which leaves the df unchanged but makes that cut mean the same thing whatever the units of y, x and Z
   (lmerTest's :math:`\sigma` entries are of order :math:`N/\sigma^2`: with y in small units it keeps
   rounding noise, with y in large units it drops :math:`\sigma`). A joint F test (lmerTest ``contest``,
   ``contestMD``) is :math:`F = W/q` with :math:`W` from the model-based :math:`\Phi`, and denominator df from
   the df :math:`\nu_m` of the eigen-contrasts of :math:`L\Phi L'` (taken from the graded factor of
   :math:`L\Phi L'`, accurate when the restrictions' variances differ by many orders):
   :math:`2E/(E - q)`, :math:`E = \sum_m \nu_m/(\nu_m - 2)` (2 if some :math:`\nu_m \le 2`).

2. **Kenward-Roger** (pbkrtest ``vcovAdj``, ``Lb_ddf``, ``KRmodcomp``; lmerTest ``ddf = "Kenward-Roger"``;
   REML fits only): with :math:`V = \sum_r \gamma_r G_r` linear in the covariance parameters (each entry of
   :math:`\tau`, then :math:`\sigma^2`; :math:`G_r = Z D_r Z'` or :math:`I`), :math:`P_r = -X'V^{-1}G_rV^{-1}X`,
   :math:`Q_{rs} = X'V^{-1}G_rV^{-1}G_sV^{-1}X`, the expected REML information
   :math:`\mathcal I_{rs} = \tfrac12[\operatorname{tr}(V^{-1}G_rV^{-1}G_s) - 2\operatorname{tr}(\Phi Q_{rs})
   + \operatorname{tr}(\Phi P_r \Phi P_s)]` and :math:`W = \mathcal I^{-1}`,

   .. math::

      \Phi_A = \Phi + 2 \Phi \Big[\textstyle\sum_{r,s} W_{rs} (Q_{rs} - P_r \Phi P_s)\Big] \Phi

   (Kenward & Roger 1997, eq. 5, without the second-derivative term, which vanishes for a linear
   :math:`V`). Every trace is a sum over groups: with :math:`V_{*j}^{-1}Z_j = Z_j(I - TM_j)`,
   :math:`Z_j'V_{*j}^{-2}Z_j = M_j - M_jTM_j`, :math:`Z_j'V_{*j}^{-2}X_j = B_j - M_jTB_j`,
   :math:`X'V_*^{-2}X = A_X - \sum_j B_j'TB_j`,
   :math:`X'V_*^{-3}X = A_X - 2\sum_j B_j'TB_j + \sum_j B_j'TM_jTB_j` and
   :math:`\operatorname{tr} V_{*j}^{-2} = n_j - 2\operatorname{tr}(TM_j) + \operatorname{tr}(TM_jTM_j)`.
   The df and the scaled F of :math:`q` restrictions follow Kenward & Roger's (1997) sec. 4 from
   :math:`A_1 = \sum W_{rs} \operatorname{tr}(\Theta\Phi P_r\Phi) \operatorname{tr}(\Theta\Phi P_s\Phi)`,
   :math:`A_2 = \sum W_{rs} \operatorname{tr}(\Theta\Phi P_r\Phi\Theta\Phi P_s\Phi)`,
   :math:`\Theta = L'(L\Phi L')^{-1}L`, exactly as pbkrtest writes them (:func:`kenward_roger_df`).

3. **Cluster-robust** (clubSandwich ``vcovCR`` for lmer fits, the groups as clusters and the fitted
   marginal covariance :math:`\Phi_j = V_{*j}` as working model, :math:`W_j = \Phi_j^{-1}`):

   .. math::

      V^{CR} = M \Big[\textstyle\sum_j X_j'W_jA_j e_j e_j' A_j' W_j X_j\Big] M, \qquad M = (X'WX)^{-1},
      \quad e_j = y_j - X_j\hat\beta,

   CR0 :math:`A_j = I`; CR1 the same times :math:`J/(J-1)` (clubSandwich's CR1; OLS's CR1 is Stata's
   :math:`G/(G-1)\,(N-1)/(N-k)`); CR2 :math:`A_j = D_j' B_j^{-1/2} D_j`, :math:`D_j'D_j = \Phi_j`,
   :math:`B_j = D_j(\Phi_j - X_jMX_j')D_j'` (Pustejovsky & Tipton 2018, eq. 6; any square root
   :math:`D_j` gives the same :math:`A_j`, and hlmlib takes the symmetric one); CR3
   :math:`A_j = (I - X_jMX_j'W_j)^{-1}`. Every :math:`n_j \times n_j` matrix here lies in the algebra
   spanned by :math:`I` and the columns of :math:`[Z_j\ X_j]`, so it is computed in an orthonormal basis of
   that span (:math:`r \le q + p` dimensions, from the per-group Gram matrix):
   :math:`f(\alpha I + O K O') = f(\alpha)(I - OO') + O f(\alpha I + K) O'`. The Satterthwaite df of a
   contrast (``coef_test(test = "Satterthwaite")``) and the HTZ test use the same per-group
   :math:`E_j = X_j'W_jA_j` through :class:`hlmlib.sandwich.Satterthwaite`.

**Boundary fits** (a zero variance, a singular :math:`\tau`) are handled as the peers handle them, at the
maximiser: Satterthwaite's :math:`H` is taken in :math:`(\theta, \sigma)` as lmerTest does, so a direction in
which :math:`\operatorname{Var}(\hat\beta)` does not move contributes nothing (with a zero random-intercept
variance the df are those of :math:`\sigma` alone, :math:`N - p` for REML, :math:`N` for ML), and eigenvalues of
:math:`H` (in unit-free coordinates) at or below 1e-8 are dropped with a warning; Kenward-Roger's information
matrix is inverted, or pseudo-inverted when an eigenvalue is below 1e-10 in absolute value (pbkrtest's
``MASS::ginv``), in the same unit-free coordinates (:math:`\tau` for Z at unit root mean square, relative to
:math:`\hat\sigma^2`, and :math:`\sigma^2/\hat\sigma^2`); the
cluster-robust covariances need no variance parameter to be positive.

References
----------
- Satterthwaite (1946), *Biometrics Bulletin* 2, 110-114; Giesbrecht & Burns (1985), *Biometrics* 41, 477-486.
- Kuznetsova, Brockhoff & Christensen (2017), lmerTest, *J. Stat. Softw.* 82(13).
- Kenward & Roger (1997), *Biometrics* 53, 983-997; Halekoh & Højsgaard (2014), pbkrtest, *J. Stat. Softw.*
  59(9).
- Bell & McCaffrey (2002), *Survey Methodology* 28, 169-181; Pustejovsky & Tipton (2018), *J. Bus. Econ.
  Stat.* 36, 672-683; Tipton & Pustejovsky (2015), *J. Educ. Behav. Stat.* 40, 604-634.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Callable

import numpy as np

from .lazy import stats
from . import sandwich as sw
from .design import InputError
from .lmm_objective import BlockedCholesky, CrossProducts, _tril_indices, weighted_products
from .wald import WaldTest, _einsum, f_test, htz_test, wald_statistic

__all__ = ["GroupBlocks", "group_blocks", "unit_z_blocks", "theta_directions", "deviance_hessian", "LmerSatterthwaite",
           "satterthwaite", "KenwardRoger", "kenward_roger", "kenward_roger_df", "cluster_robust",
           "FixedEffectsInference", "DfCovariance", "KINDS"]

KINDS = ("model", "kenward-roger") + sw.CR_KINDS
HESSIAN_TOL = 1e-8        # lmerTest's as_lmerModLT(tol = 1e-8): eigenvalues of H (unit-free here) at or below it
                          # are dropped


# ----------------------------------------------------------------------------------------------
# per-group blocks at the estimates
# ----------------------------------------------------------------------------------------------

@dataclass
class GroupBlocks:
    r"""Per-group pieces at :math:`\hat\theta`, :math:`V_{*j} = I + Z_j T Z_j'` (relative to :math:`\sigma^2`):
    ``M`` :math:`Z_j'V_{*j}^{-1}Z_j` (J, q, q), ``B`` :math:`Z_j'V_{*j}^{-1}X_j` (J, q, p), ``s``
    :math:`Z_j'V_{*j}^{-1}(y_j - X_j\hat\beta)` (J, q), ``A`` :math:`X'V_*^{-1}X` and ``A_inv`` its inverse
    (p, p), ``T`` :math:`\Lambda\Lambda'`, ``pwrss``, ``n_obs``."""

    T: np.ndarray
    M: np.ndarray
    B: np.ndarray
    s: np.ndarray
    A: np.ndarray
    A_inv: np.ndarray
    pwrss: float
    n_obs: np.ndarray


def group_blocks(fac: BlockedCholesky, cp: CrossProducts) -> GroupBlocks:
    r"""The :class:`GroupBlocks` from the blocked Cholesky factor at :math:`\hat\theta`."""
    q, p = cp.q, cp.p
    P = weighted_products(fac, cp)
    M = P[:, :, :q]
    B = P[:, :, q:q + p]
    s = P[:, :, -1] - B @ fac.beta()
    RX = fac.LW[:p, :p]
    RX_inv = np.linalg.inv(RX)
    return GroupBlocks(T=fac.Lam @ fac.Lam.T, M=(M + np.swapaxes(M, 1, 2)) / 2, B=B, s=s, A=RX @ RX.T,
                       A_inv=RX_inv.T @ RX_inv, pwrss=fac.pwrss, n_obs=cp.n_obs)


def _sandwiched(D: np.ndarray, X: np.ndarray) -> np.ndarray:
    r""":math:`D_k X_j` for every direction k and group j: (K, q, q) x (J, q, c) -> (J, K, q, c)."""
    return _einsum("kab,jbc->jkac", D, X)


def _pair_traces(DX: np.ndarray, DY: np.ndarray) -> np.ndarray:
    r""":math:`\sum_j \operatorname{tr}(D_k X_j D_l Y_j)` (K, K) from :math:`D_k X_j` and :math:`D_l Y_j`."""
    return _einsum("jkab,jlba->kl", DX, DY)


# ----------------------------------------------------------------------------------------------
# Satterthwaite (lmerTest)
# ----------------------------------------------------------------------------------------------

def theta_directions(Lam: np.ndarray) -> np.ndarray:
    r""":math:`\partial T/\partial\theta_k = E_k\Lambda' + \Lambda E_k'` for every :math:`\theta_k` (K, q, q)."""
    q = Lam.shape[0]
    rows, cols = _tril_indices(q)
    E = np.zeros((rows.size, q, q))
    E[np.arange(rows.size), rows, cols] = 1.0
    ELt = E @ Lam.T
    return ELt + np.swapaxes(ELt, 1, 2)


def deviance_hessian(b: GroupBlocks, Lam: np.ndarray, sigma: float, reml: bool, dof: float) -> np.ndarray:
    r"""Hessian of the deviance :math:`D(\theta, \sigma)` (lmerTest's ``devfun_vp``) in
    :math:`(\theta, \sigma/\hat\sigma)` at :math:`\sigma = \hat\sigma` (``sigma``), analytic (module docstring),
    (K + 1) x (K + 1). The :math:`\sigma` row and column are :math:`\hat\sigma` times lmerTest's: its Hessian in
    :math:`\sigma` has entries of order :math:`N/\sigma^2`, which depend on the units of y."""
    D = theta_directions(Lam)
    K = D.shape[0]
    rows, cols = _tril_indices(Lam.shape[0])
    s2 = sigma**2
    SS = b.s[:, :, None] * b.s[:, None, :]
    DM = _sandwiched(D, b.M)
    u = _einsum("jap,kab,jb->kp", b.B, D, b.s)                  # u_k = sum_j B_j' D_k s_j
    H = -_pair_traces(DM, DM) + (2 * _pair_traces(DM, _sandwiched(D, SS)) - 2 * u @ b.A_inv @ u.T) / s2
    G = b.M.sum(axis=0) - SS.sum(axis=0) / s2                     # dD/dT at (theta, sigma)
    if reml:
        N = _einsum("jap,pq,jbq->jab", b.B, b.A_inv, b.B)
        AdA = b.A_inv @ -_einsum("jap,kab,jbq->kpq", b.B, D, b.B)
        H += 2 * _pair_traces(DM, _sandwiched(D, N)) - _einsum("kpq,lqp->kl", AdA, AdA)
        G -= N.sum(axis=0)
    # second derivative of T itself: d2T/dtheta_k dtheta_l = E_k E_l' + E_l E_k'
    H += 2 * (cols[:, None] == cols[None, :]) * G[rows[:, None], rows[None, :]]
    dpwrss = -_einsum("ja,kab,jb->k", b.s, D, b.s)
    out = np.empty((K + 1, K + 1))
    out[:K, :K] = (H + H.T) / 2
    # in sigma / sigma-hat at sigma-hat: sigma-hat times d/dsigma, sigma-hat^2 times d2/dsigma2
    out[K, :K] = out[:K, K] = -2 * dpwrss / s2
    out[K, K] = 6 * b.pwrss / s2 - 2 * dof
    return out


def _fstat_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """lmerTest's get_Fstat_ddf: the denominator df of a joint F test from the df of its eigen-contrasts."""
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    E = np.sum(nu / (nu - 2))
    return float(2 * E / (E - nu.size))


@dataclass
class LmerSatterthwaite:
    r"""lmerTest's Satterthwaite machinery for one fit: the model-based covariance ``vcov`` (p, p), its
    derivatives ``jacobian`` (K + 1, p, p) in :math:`\psi = (\theta, \sigma/\hat\sigma)`, :math:`\theta` for
    :math:`Z`'s columns at unit root mean square (:func:`satterthwaite`), the Hessian ``hessian`` of the deviance
    and ``vcov_varpar`` :math:`= 2 H^{+}` in the same coordinates."""

    vcov: np.ndarray
    jacobian: np.ndarray
    hessian: np.ndarray
    vcov_varpar: np.ndarray

    def __call__(self, L: np.ndarray) -> np.ndarray:
        r"""Satterthwaite df of each contrast (row of ``L``): :math:`2 (c'\Phi c)^2 / (g'Ag)`."""
        L = np.atleast_2d(L)
        var = _einsum("mi,ij,mj->m", L, self.vcov, L)
        g = _einsum("mi,kij,mj->mk", L, self.jacobian, L)
        return 2 * var**2 / _einsum("mk,kl,ml->m", g, self.vcov_varpar, g)

    def ftest(self, R: np.ndarray, beta: np.ndarray, description: str, labels=()) -> WaldTest:
        r"""lmerTest's ``contest(joint = TRUE)``: :math:`F = W/q` on :math:`(q, \nu)` (module docstring)."""
        W = wald_statistic(R, beta, self.vcov)                      # refuses a singular L Phi L'
        # the eigenvectors of L Phi L' (lmerTest's eigen-contrasts) as the left singular vectors of its graded
        # factor diag(d) chol(C), C its correlation form: accurate however much the restrictions' variances
        # differ (an eigen-decomposition of L Phi L' itself loses the small ones below the large ones' rounding)
        C, d = sw.correlation_form(R @ self.vcov @ R.T)
        P = np.linalg.svd(d[:, None] * np.linalg.cholesky(C))[0]
        q = R.shape[0]
        ddf = _fstat_ddf(self(P.T @ R))
        return WaldTest(F=W / q, df_num=q, df_denom=ddf, p=float(stats.f.sf(W / q, q, ddf)), statistic=W,
                        test="Satterthwaite", description=description, restrictions=list(labels))


def unit_z_blocks(b: GroupBlocks, z_scale: np.ndarray) -> GroupBlocks:
    r"""The blocks of the same fit with :math:`Z D^{-1}` for :math:`Z`, :math:`D` = diag(``z_scale``)
    (:attr:`hlmlib.lmm_objective.CrossProducts.z_scale`: columns at unit root mean square): :math:`DTD`,
    :math:`D^{-1}M_jD^{-1}`, :math:`D^{-1}B_j`, :math:`D^{-1}s_j` (and :math:`\Lambda` becomes :math:`D\Lambda`),
    so that :math:`\theta` depends neither on the units of y (it is relative to :math:`\sigma`) nor on Z's. With a
    leading replication axis too (``z_scale`` (R, q) and the blocks of :mod:`hlmlib.mc_mixed`)."""
    d = np.asarray(z_scale, float)
    e = d[..., None, :]                                              # one per group
    return replace(b, T=b.T * d[..., :, None] * d[..., None, :], M=b.M / (e[..., :, None] * e[..., None, :]),
                   B=b.B / e[..., :, None], s=b.s / e)


def _hessian_warning(w: np.ndarray) -> None:
    negative, near_zero = w < -HESSIAN_TOL, np.abs(w) <= HESSIAN_TOL
    if negative.any() or near_zero.any():
        warnings.warn("the Hessian of the deviance in (theta, sigma / sigma-hat), theta for Z's columns at unit "
                      "root mean square, has "
                      + (f"negative eigenvalue(s) {w[negative]} (the fit may not be a maximum)" if negative.any()
                         else f"eigenvalue(s) {w[near_zero]} near zero (a boundary or flat fit)")
                      + "; as lmerTest, its pseudo-inverse over the eigenvalues above 1e-8 is used for the "
                      "Satterthwaite df", RuntimeWarning, stacklevel=5)


def satterthwaite(b: GroupBlocks, Lam: np.ndarray, sigma: float, reml: bool, dof: float,
                  z_scale: np.ndarray) -> LmerSatterthwaite:
    r"""The :class:`LmerSatterthwaite` of a fit at :math:`(\hat\theta, \hat\sigma)` (module docstring), in
    coordinates free of the data's units: :math:`\theta` for :math:`Z`'s columns at unit root mean square
    (:func:`unit_z_blocks`) and :math:`\sigma/\hat\sigma`. The df are invariant to this reparametrisation
    (:math:`g` and :math:`H` change by the same diagonal Jacobian), so they are lmerTest's; but lmerTest's
    pseudo-inverse over eigenvalues above an absolute 1e-8 is taken here, where the eigenvalues no longer move
    with the units of y, x or Z (in lmerTest's (theta, sigma) the sigma entries are of order :math:`N/\sigma^2`,
    and rescaling y drops or keeps directions at will)."""
    b, Lam = unit_z_blocks(b, z_scale), z_scale[:, None] * Lam
    H = deviance_hessian(b, Lam, sigma, reml, dof)
    w, U = np.linalg.eigh(H)
    _hessian_warning(w)
    keep = w > HESSIAN_TOL
    vcov_varpar = 2 * (U[:, keep] / w[keep]) @ U[:, keep].T
    D = theta_directions(Lam)
    BDB = _einsum("jap,kab,jbq->kpq", b.B, D, b.B)
    Phi = sigma**2 * b.A_inv
    jacobian = np.concatenate([Phi @ BDB @ b.A_inv, 2 * Phi[None]])     # d Phi / d(theta, sigma / sigma-hat)
    return LmerSatterthwaite(vcov=Phi, jacobian=jacobian, hessian=H, vcov_varpar=vcov_varpar)


# ----------------------------------------------------------------------------------------------
# Kenward-Roger (pbkrtest)
# ----------------------------------------------------------------------------------------------

def _div_zero(x, y, tol: float = 1e-14):
    """pbkrtest's .divZero: x / y, or 1 when both are below tol."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((np.abs(x) < tol) & (np.abs(y) < tol), 1.0, x / y)


def kenward_roger_df(A1, A2, q: int):
    r"""Kenward & Roger's (1997, sec. 4) denominator df :math:`m` from :math:`A_1, A_2` (pbkrtest's
    ``.KR_adjust`` and ``Lb_ddf``): :math:`B = (A_1 + 6A_2)/(2q)`,
    :math:`g = ((q+1)A_1 - (q+4)A_2)/((q+2)A_2)`, :math:`c_{1,2,3} = (g, q - g, q + 2 - g)/(3q + 2(1-g))`,
    :math:`\rho = \frac1q \big(\frac{1 - A_2/q}{1 - c_2 B}\big)^2 \frac{1 + c_1 B}{1 - c_3 B}`,
    :math:`m = 4 + (q + 2)/(q\rho - 1)`."""
    A1, A2 = np.asarray(A1, float), np.asarray(A2, float)
    B = (A1 + 6 * A2) / (2 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    denom = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
    V0, V1, V2 = 1 + c1 * B, 1 - c2 * B, 1 - c3 * B
    V0 = np.where(np.abs(V0) < 1e-10, 0.0, V0)
    rho = _div_zero(1 - A2 / q, V1) ** 2 * V0 / V2 / q
    return 4 + (q + 2) / (q * rho - 1)


@dataclass
class KenwardRoger:
    r"""pbkrtest's ``vcovAdj`` for one fit: ``vcov`` :math:`\Phi`, ``vcov_adjusted`` :math:`\Phi_A`,
    ``P`` (n, p, p) and ``W`` (n, n) over the n covariance parameters (entries of :math:`\tau` for :math:`Z`'s
    columns at unit root mean square, then :math:`\sigma^2`)."""

    vcov: np.ndarray
    vcov_adjusted: np.ndarray
    P: np.ndarray
    W: np.ndarray

    def __call__(self, L: np.ndarray) -> np.ndarray:
        r"""Kenward-Roger df of each contrast (row of ``L``), pbkrtest's ``Lb_ddf`` (lmerTest's t tests)."""
        L = np.atleast_2d(L)
        PhiL = L @ self.vcov
        w = _einsum("mp,ipq,mq->mi", PhiL, self.P, PhiL) / _einsum("mp,mp->m", PhiL, L)[:, None]
        A = _einsum("mi,ik,mk->m", w, self.W, w)                  # A1 = A2 for one contrast
        return kenward_roger_df(A, A, 1)

    def ftest(self, R: np.ndarray, beta: np.ndarray, description: str, labels=()) -> WaldTest:
        r"""pbkrtest's ``KRmodcomp``: :math:`F = \lambda\, W_A / q` on :math:`(q, m)`, :math:`W_A` with
        :math:`\Phi_A`, scaling :math:`\lambda = m (1 - A_2/q)/(m - 2)` (1 when :math:`|m - 2| < 0.01`)."""
        q = R.shape[0]
        C, d = sw.correlation_form(R @ self.vcov @ R.T)            # Theta = L'(L Phi L')^-1 L, rows scaled
        Theta = (R / d[:, None]).T @ np.linalg.solve(C, R / d[:, None])
        u = Theta @ self.vcov @ self.P @ self.vcov                     # (n, p, p)
        tr = _einsum("ipp->i", u)
        A1 = tr @ self.W @ tr
        A2 = _einsum("ik,ipq,kqp->", self.W, u, u)
        m = float(kenward_roger_df(A1, A2, q))
        scaling = 1.0 if abs(m - 2) < 1e-2 else float(m * (1 - A2 / q) / (m - 2))
        W = wald_statistic(R, beta, self.vcov_adjusted)
        F = scaling * W / q
        return WaldTest(F=F, df_num=q, df_denom=m, p=float(stats.f.sf(F, q, m)), statistic=W,
                        test="Kenward-Roger", description=description + f"; F scaled by {scaling:.6g} "
                        "(pbkrtest KRmodcomp)", restrictions=list(labels))


def kenward_roger(b: GroupBlocks, sigma2: float, z_scale: np.ndarray) -> KenwardRoger:
    r"""The :class:`KenwardRoger` adjustment of a REML fit (module docstring), from the group blocks.

    The covariance parameters are :math:`\tau` for :math:`Z`'s columns at unit root mean square
    (:func:`unit_z_blocks`) and :math:`\sigma^2`; the information matrix is judged singular, and inverted, with both
    relative to :math:`\hat\sigma^2`, so that pbkrtest's cut (an eigenvalue below 1e-10 in absolute value) does
    not depend on the units of y, x or Z. :math:`\Phi_A` and the df are invariant to that reparametrisation."""
    b = unit_z_blocks(b, z_scale)
    q, p = b.M.shape[1], b.A.shape[0]
    rows, cols = _tril_indices(q)
    n = rows.size + 1
    D = np.zeros((n, q, q))                                    # G_r = Z D_r Z' for tau's entries ...
    D[np.arange(n - 1), rows, cols] = 1.0
    D[np.arange(n - 1), cols, rows] = 1.0
    c = np.zeros(n)                                            # ... and G = I for sigma^2
    c[-1] = 1.0
    s2, T = sigma2, b.T
    Mv, Bv = b.M / s2, b.B / s2                                # Z'V^-1 Z, Z'V^-1 X with V = s2 V_*
    MT = b.M @ T
    TB = T @ b.B
    BTB = _einsum("jap,jaq->pq", b.B, TB)
    ZV2Z = (b.M - MT @ b.M).sum(axis=0) / s2**2
    ZV2X = (b.B - MT @ b.B) / s2**2
    XV2X = (b.A - BTB) / s2**2
    XV3X = (b.A - 2 * BTB + _einsum("jap,jab,jbq->pq", TB, b.M, TB)) / s2**3
    trV2 = (b.n_obs.sum() - 2 * _einsum("jaa->", MT) + _einsum("jab,jba->", MT, MT)) / s2**2
    Phi = s2 * b.A_inv
    DB = _sandwiched(D, Bv)                                    # D_r Z'V^-1 X_j, (J, n, q, p)
    P = -(_einsum("jap,jiaq->ipq", Bv, DB) + c[:, None, None] * XV2X)
    MDB = Mv[:, None] @ DB
    Q = np.transpose(np.tensordot(DB, MDB, axes=([0, 2], [0, 2])), (0, 2, 1, 3))   # sum_j (D_r B)'M(D_s B)
    R = _einsum("jiap,jaq->ipq", DB, ZV2X)                  # X'V^-1 G_r V^-2 X
    Q += (c[None, :, None, None] * R[:, None] + c[:, None, None, None] * np.swapaxes(R, 1, 2)[None, :]
          + np.multiply.outer(np.outer(c, c), XV3X))
    DM = _sandwiched(D, Mv)
    k2 = _einsum("iab,ba->i", D, ZV2Z)
    Ktrace = _pair_traces(DM, DM) + np.outer(k2, c) + np.outer(c, k2) + np.outer(c, c) * trV2
    PhiP = Phi @ P
    IE2 = Ktrace - 2 * _einsum("pq,ikqp->ik", Phi, Q) + _einsum("ipq,kqp->ik", PhiP, PhiP)
    IE2 = (IE2 + IE2.T) / 2 * s2**2                              # for gamma / sigma2-hat: free of y's units
    if np.abs(np.linalg.eigvalsh(IE2)).min() > 1e-10:           # pbkrtest: solve, else MASS::ginv
        W = 2 * np.linalg.inv(IE2)
    else:
        W = 2 * np.linalg.pinv(IE2, rcond=np.sqrt(np.finfo(float).eps), hermitian=True)
    W = (W + W.T) / 2 * s2**2
    U = _einsum("ik,ikpq->pq", W, Q) - _einsum("ik,ipq,kqs->ps", W, P @ Phi, P)
    Phi_A = Phi + 2 * Phi @ U @ Phi
    return KenwardRoger(vcov=Phi, vcov_adjusted=(Phi_A + Phi_A.T) / 2, P=P, W=W)


# ----------------------------------------------------------------------------------------------
# cluster-robust covariances with the fitted model as working model (clubSandwich)
# ----------------------------------------------------------------------------------------------

def _union_columns(X: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct columns of [X Z] (a column of Z equal to one of X is taken once), and the position of each
    column of Z among them (X's are the first p)."""
    columns, z_index = [X], []
    for a in range(Z.shape[1]):
        same = next((k for k in range(X.shape[1]) if np.array_equal(Z[:, a], X[:, k])), None)
        if same is None:
            same = X.shape[1] + len(columns) - 1
            columns.append(Z[:, a:a + 1])
        z_index.append(same)
    return np.hstack(columns), np.asarray(z_index)


def _group_gram(U: np.ndarray, y: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    r"""Per-group :math:`[U_j\ y_j]'[U_j\ y_j]` (J, r + 1, r + 1), one ``np.bincount`` per entry."""
    W = np.vstack([U.T, y])
    k = W.shape[0]
    gram = np.empty((n_groups, k, k))
    for a in range(k):
        for c in range(a, k):
            gram[:, a, c] = gram[:, c, a] = np.bincount(codes, weights=W[a] * W[c], minlength=n_groups)
    return gram


def _groupwise_basis(G: np.ndarray, n_obs: np.ndarray, tol: float = 1e-11):
    """Columns to keep for the per-group bases, and how every column is made of them group by group.

    A column that is, within every group, a multiple of an earlier kept column (a group-level covariate beside
    the intercept, a cross-level interaction beside its level-1 variable) adds nothing to any group's span:
    by Cauchy-Schwarz, G_ii G_kk = G_ik^2 in every group (up to rounding; columns zero in a group count as
    multiples there). Returns the kept columns and coef (J, kept, r) with column i = sum_k kept_k coef[j, k, i].
    """
    J, r, _ = G.shape
    tiny = 1e-14 * np.maximum(n_obs, 1.0)
    kept, coef = [], np.zeros((J, r, r))
    for i in range(r):
        for pos, k in enumerate(kept):
            Gii, Gkk, Gik = G[:, i, i], G[:, k, k], G[:, i, k]
            zero = Gkk <= tiny
            if np.all(np.where(zero, Gii <= tiny, Gii * Gkk - Gik**2 <= tol * Gii * Gkk)):
                coef[:, pos, i] = np.where(zero, 0.0, Gik / np.where(zero, 1.0, Gkk))
                break
        else:
            coef[:, len(kept), i] = 1.0
            kept.append(i)
    return kept, coef[:, :len(kept)]


def cluster_robust(b: GroupBlocks, y: np.ndarray, X: np.ndarray, Z: np.ndarray, codes: np.ndarray,
                   beta: np.ndarray, kind: str, group_labels) -> sw.Covariance:
    r"""clubSandwich's ``vcovCR`` of an lmer fit (CR0-CR3), with its Satterthwaite pieces (module docstring).

    The :math:`n_j \times n_j` algebra is evaluated in an orthonormal basis :math:`O_j` of the span of the
    group's :math:`[Z_j\ X_j]`, from the eigen-decomposition of its Gram matrix (columns scaled to unit root
    mean square first; columns that are within every group multiples of another, such as group-level
    covariates and cross-level interactions, are left out of it, and directions with eigenvalue below 1e-14 of
    the group's largest are exact collinearities within that group). In that basis
    :math:`\tilde\Phi_j = I + \tilde z_j T \tilde z_j'` (:math:`\tilde z_j = O_j'Z_j`),
    :math:`\tilde x_j = O_j'X_j`, :math:`\tilde e_j = O_j'e_j`, and, for CR2,
    :math:`X_j'W_jA_je_j = \tilde x_j'\tilde\Phi_j^{-1/2} \tilde B_j^{-1/2} \tilde\Phi_j^{1/2} \tilde e_j` with
    :math:`\tilde B_j = \tilde\Phi_j^{1/2}(\tilde\Phi_j - \tilde x_j M \tilde x_j')\tilde\Phi_j^{1/2}`. The
    covariance carries ``satterthwaite`` (:class:`hlmlib.sandwich.Satterthwaite` with :math:`R^{-1} = M`,
    :math:`B_{d,j} = E_j\Phi_jE_j'`, :math:`B_{z,j} = L_M'(E_jX_j)'`, :math:`L_ML_M' = M`), clubSandwich's
    ``get_GH`` in per-group form. CR2/CR3 raise :class:`~hlmlib.design.InputError` naming a group that alone
    determines a combination of the fixed effects (its :math:`\Phi_j - X_jMX_j'` is singular).
    """
    n_groups, p = b.B.shape[0], b.B.shape[2]
    U, z_index = _union_columns(X, Z)
    r = U.shape[1]
    gram = _group_gram(U, y, codes, n_groups)
    scale = np.sqrt(_einsum("jaa->a", gram[:, :r, :r]) / y.size)
    scale = np.where(scale > 0, scale, 1.0)
    G = gram[:, :r, :r] / np.outer(scale, scale)                   # Gram of U D^-1
    Sx = np.zeros((r, p))                                          # X = (U D^-1) Sx
    Sx[np.arange(p), np.arange(p)] = scale[:p]
    Sz = np.zeros((r, Z.shape[1]))
    Sz[z_index, np.arange(Z.shape[1])] = scale[z_index]
    kept, coef = _groupwise_basis(G, b.n_obs)                      # U D^-1 = (U D^-1)[:, kept] coef_j
    G = G[:, kept][:, :, kept]
    Sx, Sz = coef @ Sx, coef @ Sz
    r = len(kept)
    lam, E = np.linalg.eigh(G)
    keep = lam > 1e-14 * lam[:, -1:]
    root = np.sqrt(np.where(keep, lam, 0.0))
    Et = np.swapaxes(E, 1, 2)
    x = root[:, :, None] * (Et @ Sx)                               # O'X_j (J, r, p)
    z = root[:, :, None] * (Et @ Sz)                               # O'Z_j (J, r, q)
    Uty = gram[:, kept, -1] / scale[kept]                          # (U D^-1)' y_j
    resid = Uty - _einsum("jab,jbp,p->ja", G, Sx, beta)            # (U D^-1)' e_j
    e = np.where(keep, 1 / np.where(keep, root, 1.0), 0.0) * _einsum("jba,jb->ja", E, resid)
    Phi = np.eye(r) + z @ b.T @ np.swapaxes(z, 1, 2)               # O' V_*j O = L L'
    L = np.linalg.cholesky(Phi)
    L_inv = np.linalg.inv(L)
    x_w, e_w = L_inv @ x, _einsum("jab,jb->ja", L_inv, e)        # whitened: working covariance I
    xt_w = np.swapaxes(x_w, 1, 2)
    M = b.A_inv
    XtWX = xt_w @ x_w                                              # X_j'W_jX_j
    L_M = np.linalg.cholesky(M)
    if kind in ("CR2", "CR3"):
        H = x_w @ M @ xt_w                                          # the group's hat block, whitened
        leverage = np.linalg.eigvalsh(H)[:, -1]                     # 1: Phi_j - X_j M X_j' singular
        singular = np.flatnonzero(leverage >= 1 - sw.SINGULAR_TOL)
        if singular.size:
            shown = ", ".join(repr(_label(group_labels[g])) for g in singular[:5])
            raise InputError(f"{kind} is undefined: Phi_j - X_j M X_j' is singular for group(s) {shown} "
                             f"({singular.size} group(s)): the group alone determines a combination of the fixed "
                             "effects (e.g. a dummy non-zero only there); use CR0/CR1, or drop that column")
    # E_j = X_j'W_jA_j acting on the whitened residual; with D_j = L' (D_j'D_j = Phi_j) and P = L'L,
    # CR2's B_j = D_j(Phi_j - X_jMX_j')D_j' is P (I - x_w M x_w') P and X_j'W_jA_j L = x_w' B_j^(-1/2) P
    if kind == "CR2":
        P = np.swapaxes(L, 1, 2) @ L
        Bt = P @ (np.eye(r) - H) @ P
        bw, bV = np.linalg.eigh((Bt + np.swapaxes(Bt, 1, 2)) / 2)
        Emat = xt_w @ ((bV / np.sqrt(bw)[:, None, :]) @ np.swapaxes(bV, 1, 2)) @ P
    elif kind == "CR3":
        Emat = np.linalg.solve(np.eye(p) - XtWX @ M, xt_w)
    else:
        Emat = xt_w
    factor = sw.cluster_factor(n_groups) if kind == "CR1" else 1.0
    s = _einsum("jpa,ja->jp", Emat, e_w)                         # X_j'W_jA_je_j
    V = factor * M @ (s.T @ s) @ M
    Omega = Emat @ np.swapaxes(Emat, 1, 2)                          # E_j Phi_j E_j'
    Bz = L_M.T @ np.swapaxes(Emat @ x_w, 1, 2)
    stt = sw.Satterthwaite(R_inv=M, B_d=factor * Omega, B_z=np.sqrt(factor) * Bz)
    return sw.Covariance((V + V.T) / 2, kind, CONVENTIONS[kind], df=n_groups - 1, satterthwaite=stt,
                         n_clusters=n_groups, cluster_name="group")


def _label(value):
    return value.item() if isinstance(value, np.generic) else value


# ----------------------------------------------------------------------------------------------
# choosing a covariance and a reference distribution
# ----------------------------------------------------------------------------------------------

CONVENTIONS = {
    "model": "model-based sigma^2 (X'V^-1X)^-1 (lme4 vcov)",
    "kenward-roger": "Kenward-Roger (1997) adjusted covariance (pbkrtest vcovAdj; lmerTest ddf='Kenward-Roger')",
    "CR0": "cluster-robust CR0 by group, the fitted model as working model, no factor (clubSandwich vcovCR "
           "'CR0' on the lmer fit)",
    "CR1": "cluster-robust CR1 by group, the fitted model as working model, factor J/(J-1) (clubSandwich vcovCR "
           "'CR1'; hlmlib's OLS CR1 is Stata's, with (N-1)/(N-k) too)",
    "CR2": "cluster-robust CR2 by group, Bell-McCaffrey with the fitted model as working model (clubSandwich "
           "vcovCR 'CR2' on the lmer fit)",
    "CR3": "cluster-robust CR3 by group, A_j = (I - X_j M X_j'W_j)^-1 with the fitted model as working model "
           "(clubSandwich vcovCR 'CR3')",
}
DF_RULES = {
    "z": "normal (z) reference",
    "satterthwaite": "Satterthwaite df per coefficient or contrast, from the derivatives of Var(beta) in "
                     "(theta, sigma) (lmerTest)",
    "kenward-roger": "Kenward-Roger df per coefficient or contrast (pbkrtest Lb_ddf; lmerTest ddf='Kenward-Roger')",
    "cluster-satterthwaite": "Satterthwaite df per coefficient or contrast with the fitted model as working model "
                             "(clubSandwich coef_test)",
}


@dataclass
class DfCovariance(sw.Covariance):
    r"""A :class:`hlmlib.sandwich.Covariance` whose df come from ``df_function`` (a callable giving the df of each
    row of a contrast matrix) or the number ``df``; ``reference`` names the rule (``"z"``, ``"t"``,
    ``"satterthwaite"``, ``"kenward-roger"``, ``"cluster-satterthwaite"``), ``rule`` describes it."""

    df_function: Callable | None = None
    reference: str = "z"
    rule: str = ""

    def df_for(self, L: np.ndarray) -> np.ndarray:
        L = np.atleast_2d(L)
        if self.df_function is not None:
            return np.asarray(self.df_function(L), dtype=float)
        return np.full(L.shape[0], float(self.df))

    @property
    def df_rule(self) -> str:
        return self.rule


def canonical_kind(kind) -> str:
    """'model', 'kenward-roger' or CR0-CR3 from the names users write (case-insensitive; 'KR')."""
    if isinstance(kind, str):
        low = kind.strip().lower()
        if low in ("model", "model-based"):
            return "model"
        if low in ("kenward-roger", "kenward_roger", "kr"):
            return "kenward-roger"
        if low.upper() in sw.CR_KINDS:
            return low.upper()
    raise InputError(f"unknown covariance kind {kind!r} for a mixed model; choose one of {', '.join(KINDS)}")


def canonical_df(df):
    """None, a positive number (np.inf: normal), 'satterthwaite' or 'kenward-roger' (case-insensitive; 'KR')."""
    if df is None:
        return None
    if isinstance(df, str):
        low = df.strip().lower()
        if low == "satterthwaite":
            return "satterthwaite"
        if low in ("kenward-roger", "kenward_roger", "kr"):
            return "kenward-roger"
        raise InputError(f"unknown df {df!r}; give a number, 'satterthwaite' or 'kenward-roger' (or None)")
    if isinstance(df, (bool, np.bool_)) or not isinstance(df, (int, float, np.integer, np.floating)):
        raise InputError(f"df must be None, a positive number, 'satterthwaite' or 'kenward-roger'; got {df!r}")
    if not float(df) > 0:
        raise InputError(f"df must be positive, got {df}")
    return float(df)


class FixedEffectsInference:
    r"""Covariances and reference distributions for the fixed effects of one fit, computed when first asked.

    ``covariance(kind, df)`` resolves the pair (see :meth:`hlmlib.MixedResult.coef_table`); ``wald_test``
    picks the joint test that goes with it.
    """

    def __init__(self, fac: BlockedCholesky, cp: CrossProducts, sigma2: float, reml: bool, beta: np.ndarray,
                 y: np.ndarray, X: np.ndarray, Z: np.ndarray, codes: np.ndarray, group_labels):
        self.fac, self.cp, self.sigma2, self.reml, self.beta = fac, cp, sigma2, reml, beta
        self.y, self.X, self.Z, self.codes, self.group_labels = y, X, Z, codes, group_labels
        self._cluster_robust: dict[str, sw.Covariance] = {}

    @cached_property
    def blocks(self) -> GroupBlocks:
        return group_blocks(self.fac, self.cp)

    @cached_property
    def satterthwaite(self) -> LmerSatterthwaite:
        dof = self.cp.N - self.cp.p if self.reml else self.cp.N
        return satterthwaite(self.blocks, self.fac.Lam, np.sqrt(self.sigma2), self.reml, dof, self.cp.z_scale)

    @cached_property
    def kenward_roger(self) -> KenwardRoger:
        if not self.reml:
            raise InputError("Kenward-Roger's method is for REML fits (as pbkrtest and lmerTest); refit with "
                             "reml=True, or use df='satterthwaite'")
        return kenward_roger(self.blocks, self.sigma2, self.cp.z_scale)

    def cluster_robust(self, kind: str) -> sw.Covariance:
        if kind not in self._cluster_robust:
            self._cluster_robust[kind] = cluster_robust(self.blocks, self.y, self.X, self.Z, self.codes, self.beta,
                                                        kind, self.group_labels)
        return self._cluster_robust[kind]

    def covariance(self, kind="model", df=None) -> DfCovariance:
        r"""The covariance of ``kind`` with the df rule ``df`` (None: the kind's default), as a
        :class:`DfCovariance`."""
        kind, df = canonical_kind(kind), canonical_df(df)
        clusters = {}
        if kind == "kenward-roger" or df == "kenward-roger":
            if kind not in ("model", "kenward-roger"):
                raise InputError(f"Kenward-Roger df go with the model-based covariance (which they adjust), not "
                                 f"kind={kind!r}; with a cluster-robust covariance use df='satterthwaite'")
            if df == "satterthwaite":
                raise InputError("kind='kenward-roger' goes with Kenward-Roger df, not Satterthwaite's")
            kr = self.kenward_roger
            matrix, kind, stt, function = kr.vcov_adjusted, "kenward-roger", None, kr
            reference = "kenward-roger"
        elif kind == "model":
            matrix, stt = self.sigma2 * self.blocks.A_inv, None
            function, reference = (self.satterthwaite, "satterthwaite") if df == "satterthwaite" else (None, "z")
        else:
            cov = self.cluster_robust(kind)
            matrix, stt, function, reference = cov.matrix, cov.satterthwaite, cov.satterthwaite, "cluster-satterthwaite"
            clusters = dict(n_clusters=cov.n_clusters, cluster_name=cov.cluster_name)
        if isinstance(df, float):
            function, reference = None, "z" if np.isinf(df) else "t"
        rule = DF_RULES[reference] if reference != "t" else f"t({df:g}) reference"
        return DfCovariance(matrix=matrix, kind=kind, convention=CONVENTIONS[kind],
                            df=np.inf if reference == "z" else (df if isinstance(df, float) else None),
                            satterthwaite=stt, df_function=function, reference=reference, rule=rule, **clusters)

    def caption(self, cov: DfCovariance) -> str:
        return f"Linear mixed model ({'REML' if self.reml else 'ML'}), {cov.convention}; {cov.df_rule}"

    def wald_test(self, R: np.ndarray, labels, kind="model", df=None) -> WaldTest:
        r"""The joint test of :math:`R\beta = 0` that goes with ``kind`` and ``df`` (see
        :meth:`hlmlib.MixedResult.wald_test`)."""
        cov = self.covariance(kind, df)
        description = f"Linear mixed model ({'REML' if self.reml else 'ML'}), covariance {cov.convention}"
        if cov.reference == "kenward-roger":
            return self.kenward_roger.ftest(R, self.beta, description, labels)
        if cov.reference == "satterthwaite":
            return self.satterthwaite.ftest(R, self.beta, description + "; Satterthwaite F (lmerTest contest)",
                                            labels)
        if cov.reference == "cluster-satterthwaite":
            return htz_test(R, self.beta, cov.matrix, cov.satterthwaite, description, labels)
        reference = "chi2(q) (W on q df)" if np.isinf(cov.df) else f"F(q, {cov.df:g})"
        return f_test(R, self.beta, cov.matrix, cov.df, description + f"; W/q on {reference}", labels)
