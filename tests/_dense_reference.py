"""Brute-force implementations of the peers' algorithms on small data, written from their R source, to check
hlmlib's per-group formulas on data R never saw:

- lmerTest's Satterthwaite df: the deviance ``devfun_vp(theta, sigma)`` from the N x N marginal covariance,
  its Hessian and the Jacobian of Var(beta) by Richardson-extrapolated central differences (as numDeriv);
- pbkrtest's ``vcovAdj_internal``, ``.KR_adjust`` and ``Lb_ddf`` line by line, with N x N matrices G_r;
- clubSandwich's ``vcov_CR`` with ``CR2``/``CR3`` adjustments per group (n_j x n_j matrices, Cholesky factors of
  the target as clubSandwich takes them), and the Satterthwaite df and HTZ test from N-vectors
  p_j = (I - H)'g_j and the full N x N target (``coef_test``, ``Wald_testing``).

Nothing here is imported from hlmlib except the data layout conventions (theta in lme4's column order).
"""
from __future__ import annotations

import numpy as np
from scipy import linalg


def lower_from_theta(theta, q):
    """Lambda from theta, lme4's order: the lower triangle column by column."""
    Lam = np.zeros((q, q))
    k = 0
    for c in range(q):
        for r in range(c, q):
            Lam[r, c] = theta[k]
            k += 1
    return Lam


def block_diag_Z(Z, codes):
    """The N x (J q) random-effects design of all groups."""
    J, q = codes.max() + 1, Z.shape[1]
    Zbig = np.zeros((Z.shape[0], J * q))
    for i, j in enumerate(codes):
        Zbig[i, j * q:(j + 1) * q] = Z[i]
    return Zbig


def relative_covariance(theta, Z, codes):
    """V_* = I + Z (I_J x Lambda Lambda') Z' (N x N)."""
    q = Z.shape[1]
    Lam = lower_from_theta(theta, q)
    Zbig = block_diag_Z(Z, codes)
    J = codes.max() + 1
    return np.eye(Z.shape[0]) + Zbig @ np.kron(np.eye(J), Lam @ Lam.T) @ Zbig.T


def deviance(varpar, y, X, Z, codes, reml):
    """lmerTest's devfun_vp: -2 log-likelihood at (theta, sigma), beta at its GLS value given theta."""
    theta, sigma = varpar[:-1], varpar[-1]
    V = relative_covariance(theta, Z, codes)
    Vinv = np.linalg.inv(V)
    A = X.T @ Vinv @ X
    beta = np.linalg.solve(A, X.T @ Vinv @ y)
    r = y - X @ beta
    N, p = X.shape
    dev = np.linalg.slogdet(V)[1] + r @ Vinv @ r / sigma**2 + N * np.log(2 * np.pi * sigma**2)
    if reml:
        dev += np.linalg.slogdet(A)[1] - p * np.log(2 * np.pi * sigma**2)
    return dev


def vcov_beta(varpar, X, Z, codes):
    """sigma^2 (X'V_*^-1 X)^-1 at (theta, sigma): lmerTest's get_covbeta."""
    theta, sigma = varpar[:-1], varpar[-1]
    Vinv = np.linalg.inv(relative_covariance(theta, Z, codes))
    return sigma**2 * np.linalg.inv(X.T @ Vinv @ X)


def _richardson(estimate, h):
    """Two-level Richardson extrapolation of a central-difference estimate with error O(h^2)."""
    return (4 * estimate(h / 2) - estimate(h)) / 3


def numerical_hessian(f, x, h=1e-3):
    n = x.size

    def at(step):
        H = np.empty((n, n))
        for i in range(n):
            for j in range(i, n):
                ei, ej = np.eye(n)[i] * step, np.eye(n)[j] * step
                H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * step**2)
        return H
    return _richardson(at, h)


def numerical_jacobian(f, x, h=1e-3):
    """d f / d x_k for a matrix-valued f: (n, ...)."""
    def at(step):
        return np.stack([(f(x + np.eye(x.size)[k] * step) - f(x - np.eye(x.size)[k] * step)) / (2 * step)
                         for k in range(x.size)])
    return _richardson(at, h)


def satterthwaite_df(L, theta, sigma, y, X, Z, codes, reml):
    """lmerTest's contest1D df for each row of L, with numerical derivatives of the N x N deviance."""
    varpar = np.r_[theta, sigma]
    H = numerical_hessian(lambda v: deviance(v, y, X, Z, codes, reml), varpar)
    w, U = np.linalg.eigh(H)
    keep = w > 1e-8
    A = 2 * (U[:, keep] / w[keep]) @ U[:, keep].T
    Jac = numerical_jacobian(lambda v: vcov_beta(v, X, Z, codes), varpar)
    Phi = vcov_beta(varpar, X, Z, codes)
    out = []
    for c in np.atleast_2d(L):
        g = np.array([c @ Jk @ c for Jk in Jac])
        out.append(2 * (c @ Phi @ c) ** 2 / (g @ A @ g))
    return np.array(out), Phi, Jac, A


# ----------------------------------------------------------------------------------------------------------
# pbkrtest
# ----------------------------------------------------------------------------------------------------------

def kenward_roger(X, Z, codes, tau, sigma2):
    """pbkrtest's vcovAdj_internal (PhiA, P, W) with N x N G matrices, as .get_SigmaG builds them."""
    q = Z.shape[1]
    J = codes.max() + 1
    Zbig = block_diag_Z(Z, codes)
    G, gamma = [], []
    for a in range(q):
        for b in range(a, q):
            E = np.zeros((q, q))
            E[a, b] = E[b, a] = 1.0
            G.append(Zbig @ np.kron(np.eye(J), E) @ Zbig.T)
            gamma.append(tau[a, b])
    G.append(np.eye(X.shape[0]))
    gamma.append(sigma2)
    Sigma = sum(g * Gr for g, Gr in zip(gamma, G))
    SigmaInv = np.linalg.inv(Sigma)
    Phi = np.linalg.inv(X.T @ SigmaInv @ X)
    n = len(G)
    TT = SigmaInv @ X
    HH = [Gr @ SigmaInv for Gr in G]
    OO = [Hr @ X for Hr in HH]
    PP = [-(O.T @ TT) for O in OO]
    QQ = {(r, s): OO[r].T @ SigmaInv @ OO[s] for r in range(n) for s in range(r, n)}
    Ktrace = np.array([[np.sum(HH[r].T * HH[s]) for s in range(n)] for r in range(n)])
    IE2 = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            IE2[i, j] = IE2[j, i] = Ktrace[i, j] - 2 * np.sum(Phi * QQ[i, j]) + np.sum((Phi @ PP[i]) * (PP[j] @ Phi))
    W = 2 * np.linalg.inv(IE2)
    UU = np.zeros_like(Phi)
    for i in range(n - 1):
        for j in range(i + 1, n):
            UU += W[i, j] * (QQ[i, j] - PP[i] @ Phi @ PP[j])
    UU = UU + UU.T
    for i in range(n):
        UU += W[i, i] * (QQ[i, i] - PP[i] @ Phi @ PP[i])
    return Phi + 2 * Phi @ UU @ Phi, Phi, PP, W


def _kr_A(Theta, Phi, P, W):
    A1 = A2 = 0.0
    for i in range(len(P)):
        for j in range(i, len(P)):
            e = 1 if i == j else 2
            ui, uj = Theta @ Phi @ P[i] @ Phi, Theta @ Phi @ P[j] @ Phi
            A1 += e * W[i, j] * np.trace(ui) * np.trace(uj)
            A2 += e * W[i, j] * np.sum(ui * uj.T)
    return A1, A2


def _kr_ddf(A1, A2, q):
    B = (A1 + 6 * A2) / (2 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    c1 = g / (3 * q + 2 * (1 - g))
    c2 = (q - g) / (3 * q + 2 * (1 - g))
    c3 = (q + 2 - g) / (3 * q + 2 * (1 - g))
    V0, V1, V2 = 1 + c1 * B, 1 - c2 * B, 1 - c3 * B
    rho = 1 / q * ((1 - A2 / q) / V1) ** 2 * V0 / V2
    return 4 + (q + 2) / (q * rho - 1)


def kr_test(L, beta, PhiA, Phi, P, W):
    """pbkrtest's .KR_adjust: (F, ddf, F.scaling); with one row of L, ddf is Lb_ddf's."""
    L = np.atleast_2d(L)
    q = L.shape[0]
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    A1, A2 = _kr_A(Theta, Phi, P, W)
    ddf = _kr_ddf(A1, A2, q)
    scaling = 1.0 if abs(ddf - 2) < 1e-2 else ddf * (1 - A2 / q) / (ddf - 2)
    Lb = L @ beta
    Wald = Lb @ np.linalg.solve(L @ PhiA @ L.T, Lb)
    return scaling * Wald / q, ddf, scaling


# ----------------------------------------------------------------------------------------------------------
# clubSandwich
# ----------------------------------------------------------------------------------------------------------

def _matrix_power(x, p, tol=1e-12):
    w, U = np.linalg.eigh((x + x.T) / 2)
    return (U * np.where(w > tol, np.abs(w) ** p, 0.0)) @ U.T


def club_sandwich(X, e, codes, Theta_list, kind):
    """clubSandwich's vcov_CR with inverse_var = TRUE (W_j = Theta_j^-1): the covariance and the per-group
    E_j = X_j'W_jA_j (CR1 with the factor sqrt(J/(J-1)) in E_j, as adjust_est_mats)."""
    J = len(Theta_list)
    X_list = [X[codes == j] for j in range(J)]
    e_list = [e[codes == j] for j in range(J)]
    W_list = [np.linalg.inv(T) for T in Theta_list]
    XW_list = [x.T @ w for x, w in zip(X_list, W_list)]
    M = np.linalg.inv(sum(xw @ x for xw, x in zip(XW_list, X_list)))
    E_list = []
    for x, xw, T in zip(X_list, XW_list, Theta_list):
        IH = np.eye(x.shape[0]) - x @ M @ xw
        if kind == "CR2":
            R = np.linalg.cholesky(T).T                     # R's chol(): upper, R'R = Theta
            G = R @ IH @ T @ R.T
            A = R.T @ _matrix_power(G, -0.5) @ R
        elif kind == "CR3":
            A = np.linalg.inv(IH)
        else:
            A = np.eye(x.shape[0]) * (np.sqrt(J / (J - 1)) if kind == "CR1" else 1.0)
        E_list.append(xw @ A)
    meat = sum(np.outer(E @ r, E @ r) for E, r in zip(E_list, e_list))
    return M @ meat @ M, M, E_list


def club_p_array(C, X, codes, Theta_list, M, E_list):
    """P[s, t][j, k] = p_sj' Theta p_tk with N-vectors p_sj = (I - H)' g_sj, H = X M X'W, g_sj = E_j'M c_s on
    group j's rows (the working model's covariance of the robust variance's components)."""
    N = X.shape[0]
    J = len(Theta_list)
    Theta = linalg.block_diag(*Theta_list)
    order = np.concatenate([np.flatnonzero(codes == j) for j in range(J)])
    Xs = X[order]
    W = np.linalg.inv(Theta)
    IH = np.eye(N) - Xs @ M @ Xs.T @ W
    starts = np.r_[0, np.cumsum([np.sum(codes == j) for j in range(J)])]
    C = np.atleast_2d(C)
    p = np.zeros((C.shape[0], J, N))
    for s, c in enumerate(C):
        for j in range(J):
            g = np.zeros(N)
            g[starts[j]:starts[j + 1]] = E_list[j].T @ M @ c
            p[s, j] = IH.T @ g
    return np.einsum("sjn,nm,tkm->stjk", p, Theta, p)


def club_satterthwaite_df(P):
    """coef_test's Satterthwaite: 2 E^2 / V with E = tr(P), V = 2 sum(P^2), per contrast (diagonal of P)."""
    return np.array([np.trace(P[s, s]) ** 2 / np.sum(P[s, s] ** 2) for s in range(P.shape[0])])


def club_htz(P, Q):
    """Wald_testing's HTZ from the P array of the restrictions and the Wald statistic Q: (F, df_denom, nu)."""
    q = P.shape[0]
    Omega = np.array([[np.trace(P[s, t]) for t in range(q)] for s in range(q)])
    On = _matrix_power(Omega, -0.5)
    B = np.einsum("as,stjk,tb->abjk", On, P, On)
    var_mat = np.array([[np.sum(B[s, t] * B[t, s]) + np.sum(B[s, s] * B[t, t]) for t in range(q)] for s in range(q)])
    nu = q * (q + 1) / var_mat.sum()
    delta = max((nu - q + 1) / nu, 0)
    return delta * Q / q, nu - q + 1, nu


def wald(C, b, V):
    Cb = np.atleast_2d(C) @ b
    return float(Cb @ np.linalg.solve(np.atleast_2d(C) @ V @ np.atleast_2d(C).T, Cb))
