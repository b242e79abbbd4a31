r"""Monte Carlo for two-level linear mixed models: ``R`` responses fitted and tested at once.

A simulation that fits :func:`hlmlib.mixed` to every replication spends most of its time in Python: one
optimiser per replication, each evaluating a small objective dozens of times. :func:`mixed_mc` runs the same
computations with a leading replication axis, so that each step of the optimiser, and each small-sample
correction, is one set of array operations over all replications:

1. **Cross-products** per replication and group: the Gram matrix of :math:`[X_j\ Z_j\ y_j]`, and from it the
   :math:`Z_j'[Z_j\ X_j\ y_j]` and :math:`[X\ y]'[X\ y]` of :mod:`hlmlib.lmm_objective`, in one pass over a chunk of
   replications (a reshape when the groups are of equal size).
2. **The profiled (RE)ML criterion and its analytic gradient** (:mod:`hlmlib.lmm_objective`'s formulas, with the
   replication axis first), minimised by the projected Newton method of ``hlmlib.mixed.newton_minimise``
   run on all replications together, each with its own step length and stopping rule, from the moment estimate
   of ``hlmlib.mixed.moment_start`` (vectorised), on Z's columns scaled to unit root mean square as
   ``hlmlib.mixed.fit_theta`` does (so that neither depends on Z's units). A replication that ends on the
   boundary with more than one random effect, or that has not converged, is refitted alone by
   ``hlmlib.mixed.fit_theta`` from there (it checks the boundary's optimality conditions), so every fit is the
   one :func:`hlmlib.mixed` finds, to the optimiser's tolerance.
3. **Inference for contrasts** :math:`c'\beta` (:mod:`hlmlib.lmm_inference`'s formulas, replication axis first):
   the model-based variance :math:`\hat\sigma^2 c'(X'V_*^{-1}X)^{-1}c` with the normal reference (``"model"``)
   or lmerTest's Satterthwaite df (``"satterthwaite"``); Kenward and Roger's adjusted variance and df
   (``"kenward-roger"``, pbkrtest); and the cluster-robust ``"CR0"``-``"CR3"`` with the fitted model as working
   model and clubSandwich's Satterthwaite df, the :math:`n_j \times n_j` algebra reduced to the span of each
   group's :math:`[X_j\ Z_j]` (as :func:`hlmlib.lmm_inference.cluster_robust` does).

Everything here computes the same numbers as a :func:`hlmlib.mixed` fit of each replication and its
``coef_table(df=..., kind=...)`` (the tests compare them replication by replication); only the bookkeeping
differs. Two things are quieter than in a single fit: a boundary fit is flagged in ``boundary`` instead of
warned about, and where the Hessian of the deviance (in :mod:`hlmlib.lmm_inference`'s unit-free coordinates) has
eigenvalues at or below 1e-8, the Satterthwaite df use its pseudo-inverse (as lmerTest and
:mod:`hlmlib.lmm_inference` do) without a warning. The result is a
:class:`MonteCarloMixed`, which has :class:`hlmlib.simulate.MonteCarloOLS`'s ``reject``, ``rejection_rate``, ``ci``
and ``coverage``.

Conventions: REML by default; model-based standard errors as lme4's ``vcov``; Satterthwaite df as lmerTest's
``summary(m, ddf = "Satterthwaite")``; Kenward-Roger as pbkrtest's ``vcovAdj`` and ``Lb_ddf`` (REML only);
CR1 for mixed models is clubSandwich's :math:`J/(J-1)`; the cluster-robust df are clubSandwich's
``coef_test(..., test = "Satterthwaite")``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from pandas import isna as pd_isna

from . import sandwich as sw
from .design import InputError, check_bool, check_scalar, group_codes
from .lmm_inference import HESSIAN_TOL, GroupBlocks, kenward_roger_df, unit_z_blocks
from .lmm_objective import CrossProducts, _tril_indices, theta_lower_bounds
from .mixed import SINGULAR_TOL, fit_theta
from .simulate import Batch, MonteCarloOLS
from .wald import _einsum

__all__ = ["mixed_mc", "MonteCarloMixed", "MC_KINDS"]

MC_KINDS = ("model", "satterthwaite", "kenward-roger") + sw.CR_KINDS


def _T(A: np.ndarray) -> np.ndarray:
    """The transpose of the last two axes."""
    return np.swapaxes(A, -1, -2)


def _solve_vec(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A^-1 b for stacks A (..., k, k) and vectors b (..., k)."""
    return np.linalg.solve(A, b[..., None])[..., 0]


# ----------------------------------------------------------------------------------------------
# groups and cross-products, a leading replication axis everywhere
# ----------------------------------------------------------------------------------------------

class _Groups:
    """Rows sorted by group; per-group Gram matrices by a reshape (equal sizes) or ``np.add.reduceat``."""

    def __init__(self, groups, N: int):
        groups = np.asarray(groups)
        if groups.shape != (N,):
            raise InputError(f"groups must have one label per row ({N}), got shape {groups.shape}")
        if pd_isna(groups).any():
            raise InputError(f"groups has missing labels at row(s) {np.flatnonzero(pd_isna(groups))[:5].tolist()}")
        codes, _ = group_codes(groups)
        self.J = int(codes.max()) + 1
        self.order = np.argsort(codes, kind="stable")
        self.n_obs = np.bincount(codes, minlength=self.J).astype(float)
        self.starts = np.r_[0, np.cumsum(self.n_obs[:-1])].astype(int)
        self.balanced = bool(np.all(self.n_obs == self.n_obs[0]))

    def gram(self, A: np.ndarray) -> np.ndarray:
        """Per-group A_j'A_j: (R, N, k) -> (R, J, k, k)."""
        A = A[:, self.order]
        if self.balanced:
            A = A.reshape(A.shape[0], self.J, -1, A.shape[-1])
            return _T(A) @ A
        return np.add.reduceat(A[..., :, None] * A[..., None, :], self.starts, axis=1)


@dataclass
class _BatchCrossProducts:
    r""":class:`hlmlib.lmm_objective.CrossProducts` for R replications: ``ZtZW`` (R, J, q, q+p+1), ``WtW``
    (R, p+1, p+1), ``n_obs`` (J,); and for the cluster-robust covariances ``gram`` (R, J, c+1, c+1), the
    per-group Gram matrix of :math:`[U\ y]`, :math:`U = [X\ Z]` without the columns of Z that are columns of X
    (``z_index``: where Z's columns are in U)."""

    ZtZW: np.ndarray
    WtW: np.ndarray
    n_obs: np.ndarray
    gram: np.ndarray | None = None
    z_index: np.ndarray | None = None

    @property
    def q(self) -> int:
        return self.ZtZW.shape[2]

    @property
    def p(self) -> int:
        return self.WtW.shape[1] - 1

    @property
    def N(self) -> int:
        return int(self.n_obs.sum())

    @property
    def z_scale(self) -> np.ndarray:
        """:attr:`hlmlib.lmm_objective.CrossProducts.z_scale` of every replication (R, q)."""
        return np.sqrt(np.einsum("rjaa->ra", self.ZtZW[..., :self.q]) / self.N)

    def unit_scaled(self) -> "_BatchCrossProducts":
        """The cross-products of Z D^-1, Z's columns at unit root mean square (``hlmlib.mixed._unit_scale``)."""
        d = self.z_scale
        columns = np.concatenate([d, np.ones((d.shape[0], self.p + 1))], axis=1)
        return _BatchCrossProducts(ZtZW=self.ZtZW / d[:, None, :, None] / columns[:, None, None, :], WtW=self.WtW,
                                   n_obs=self.n_obs)

    def one(self, r: int) -> CrossProducts:
        """The cross-products of replication r, as :func:`hlmlib.mixed` computes them."""
        return CrossProducts(ZtZW=self.ZtZW[r], WtW=self.WtW[r], n_obs=self.n_obs)

    def subset(self, rows) -> "_BatchCrossProducts":
        return _BatchCrossProducts(ZtZW=self.ZtZW[rows], WtW=self.WtW[rows], n_obs=self.n_obs)


def _union_columns(X: np.ndarray, Z: np.ndarray):
    """U = [X, the columns of Z that are not columns of X] (R, N, c), and where Z's columns are in U."""
    extra, z_index = [], []
    for a in range(Z.shape[-1]):
        same = next((k for k in range(X.shape[-1]) if np.array_equal(Z[..., a], X[..., k])), None)
        if same is None:
            same = X.shape[-1] + len(extra)
            extra.append(Z[..., a:a + 1])
        z_index.append(same)
    return np.concatenate([X, *extra], axis=-1), np.asarray(z_index)


def _cross_products(Y, X, Z, groups: _Groups) -> _BatchCrossProducts:
    r"""Per group and replication, the Gram matrix of :math:`[U\ y]`, and from it the cross-products of the
    likelihood: :math:`Z_j'[Z_j\ X_j\ y_j]` and :math:`[X\ y]'[X\ y]` (summed over groups)."""
    p = X.shape[-1]
    U, z_index = _union_columns(X, Z)
    c = U.shape[-1]
    gram = groups.gram(np.concatenate([U, Y[..., None]], axis=-1))
    w = np.r_[np.arange(p), c]                                         # the columns of [X y] in [U y]
    ZtZW = gram[:, :, z_index][..., np.r_[z_index, w]]
    WtW = gram[:, :, w][..., w].sum(axis=1)
    return _BatchCrossProducts(ZtZW=ZtZW, WtW=WtW, n_obs=groups.n_obs, gram=gram, z_index=z_index)


# ----------------------------------------------------------------------------------------------
# the profiled criterion and its gradient (hlmlib.lmm_objective, replication axis first)
# ----------------------------------------------------------------------------------------------

@dataclass
class _Factor:
    """The blocked Cholesky factor of every replication: Lam (R, q, q), L (R, J, q, q), Rm (R, J, q, c),
    LW (R, p+1, p+1); ``ok`` marks replications whose factorisation succeeded."""

    Lam: np.ndarray
    L: np.ndarray
    Rm: np.ndarray
    LW: np.ndarray
    ok: np.ndarray

    @property
    def pwrss(self) -> np.ndarray:
        return self.LW[:, -1, -1] ** 2

    def beta(self) -> np.ndarray:
        p = self.LW.shape[1] - 1
        return _solve_vec(_T(self.LW[:, :p, :p]), self.LW[:, p, :p])


def _lower(theta: np.ndarray, q: int) -> np.ndarray:
    Lam = np.zeros((theta.shape[0], q, q))
    rows, cols = _tril_indices(q)
    Lam[:, rows, cols] = theta
    return Lam


def _cholesky(A: np.ndarray):
    """Cholesky factors of a stack (R, ..., k, k) and which replications succeeded (a failed one gets I)."""
    try:
        return np.linalg.cholesky(A), np.ones(A.shape[0], bool)
    except np.linalg.LinAlgError:
        out, ok = np.empty_like(A), np.ones(A.shape[0], bool)
        for r in range(A.shape[0]):
            try:
                out[r] = np.linalg.cholesky(A[r])
            except np.linalg.LinAlgError:
                out[r], ok[r] = np.broadcast_to(np.eye(A.shape[-1]), A.shape[1:]), False
        return out, ok


def _forward_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """L^-1 B for stacks of lower-triangular L (..., q, q): :func:`hlmlib.lmm_objective.forward_solve` with any
    number of leading axes."""
    X = np.empty(np.broadcast_shapes(L.shape[:-1], B.shape[:-1]) + B.shape[-1:])
    for a in range(L.shape[-1]):
        X[..., a, :] = (B[..., a, :] - (L[..., a, :a, None] * X[..., :a, :]).sum(-2)) / L[..., a, a, None]
    return X


def _factor(theta: np.ndarray, cp: _BatchCrossProducts) -> _Factor:
    r""":func:`hlmlib.lmm_objective.blocked_cholesky` for every replication."""
    q = cp.q
    Lam = _lower(theta, q)
    LamT_C = _T(Lam)[:, None] @ cp.ZtZW                                 # Lambda' Z_j'[Z_j X_j y_j]
    L, ok_L = _cholesky(LamT_C[..., :q] @ Lam[:, None] + np.eye(q))
    Rm = _forward_solve(L, LamT_C)                                      # L_j^-1 Lambda' Z_j'[...]
    RW = Rm[..., q:].reshape(Rm.shape[0], -1, cp.p + 1)                 # stacked over groups
    LW, ok_W = _cholesky(cp.WtW - _T(RW) @ RW)
    return _Factor(Lam=Lam, L=L, Rm=Rm, LW=LW, ok=ok_L & ok_W)


def _deviance(fac: _Factor, cp: _BatchCrossProducts, reml: bool) -> np.ndarray:
    r""":func:`hlmlib.lmm_objective.profiled_deviance` for every replication (+inf where the factor failed)."""
    p = cp.p
    dof = cp.N - p if reml else cp.N
    logdet = 2 * np.log(np.diagonal(fac.L, axis1=-2, axis2=-1)).sum(axis=(1, 2))
    if reml:
        logdet = logdet + 2 * np.log(np.diagonal(fac.LW, axis1=-2, axis2=-1)[:, :p]).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = logdet + dof * (1 + np.log(2 * np.pi * fac.pwrss / dof))
    return np.where(fac.ok & np.isfinite(dev), dev, np.inf)


def _gradient(fac: _Factor, cp: _BatchCrossProducts, reml: bool) -> np.ndarray:
    r""":func:`hlmlib.lmm_objective.deviance_gradient` for every replication, (R, K)."""
    q, p = cp.q, cp.p
    dof = cp.N - p if reml else cp.N
    R = fac.Rm.shape[0]
    P = cp.ZtZW - _T(fac.Rm[..., :q]) @ fac.Rm                          # Z_j'V_j^-1 [Z_j X_j y_j]
    PX = P[..., q:q + p]
    s = P[..., -1] - (PX @ fac.beta()[:, None, :, None])[..., 0]        # Z_j'V_j^-1 (y_j - X_j beta)
    G = P[..., :q].sum(axis=1) - (dof / fac.pwrss)[:, None, None] * (_T(s) @ s)
    if reml and p:
        RX = fac.LW[:, :p, :p]
        PXC = PX @ np.linalg.inv(RX @ _T(RX))[:, None]
        flat = lambda A: np.swapaxes(A, 1, 2).reshape(R, q, -1)        # (R, J, q, p) -> (R, q, J p)
        G -= flat(PXC) @ _T(flat(PX))
    rows, cols = _tril_indices(q)
    return (2 * G @ fac.Lam)[:, rows, cols]


def _objective(theta, cp, reml):
    fac = _factor(theta, cp)
    dev = _deviance(fac, cp, reml)
    grad = np.where(np.isfinite(dev)[:, None], _gradient(fac, cp, reml), 0.0)
    return dev, grad


# ----------------------------------------------------------------------------------------------
# the optimiser: hlmlib.mixed.newton_minimise on all replications at once
# ----------------------------------------------------------------------------------------------

def _newton(theta: np.ndarray, cp: _BatchCrossProducts, reml: bool, max_iter: int = 100):
    """Projected, modified Newton (see ``hlmlib.mixed.newton_minimise``), each replication with its own
    free coordinates, step length and stopping rule. Returns theta (R, K) and whether each converged."""
    R, K = theta.shape
    lower = theta_lower_bounds(cp.q)
    dev, grad = _objective(theta, cp, reml)
    active = np.isfinite(dev)
    converged = np.zeros(R, bool)
    for _ in range(max_iter):
        if not active.any():
            break
        a = np.flatnonzero(active)
        th, g = theta[a], grad[a]
        cp_a = cp if a.size == R else cp.subset(a)
        held = (th <= lower) & (g > 0)
        H = np.empty((a.size, K, K))                                  # forward differences of the gradient
        for k in range(K):
            h = 1e-7 * np.maximum(1.0, np.abs(th[:, k]))
            shifted = th.copy()
            shifted[:, k] += h
            H[:, :, k] = (_objective(shifted, cp_a, reml)[1] - g) / h[:, None]
        H = (H + _T(H)) / 2
        H = np.where(held[:, :, None] | held[:, None, :], 0.0, H) + held[:, :, None] * np.eye(K)
        g = np.where(held, 0.0, g)
        w, V = np.linalg.eigh(H)
        scale = np.maximum(np.abs(w).max(axis=1), 1e-12)
        along = _einsum("rkl,rk->rl", V, g)
        w_abs = np.maximum(np.abs(w), 1e-8 * scale[:, None])
        decrement = (along**2 / w_abs).sum(axis=1) / 2
        flat = w[:, 0] >= -1e-6 * scale
        done = (decrement < 1e-11) & flat
        converged[a[done]] = True
        step = -_einsum("rkl,rl->rk", V, along / w_abs)
        saddle = ~flat                                                 # leave a saddle downhill
        step[saddle] += (-np.copysign(1.0, along[saddle, 0])[:, None] * V[saddle, :, 0]
                         * np.sqrt(-w[saddle, 0] / scale[saddle])[:, None]
                         * np.maximum(1.0, np.abs(th[saddle]).max(axis=1))[:, None])
        size = np.abs(step).max(axis=1)
        step *= np.minimum(1.0, 10 * np.maximum(1.0, np.abs(th).max(axis=1)) / np.maximum(size, 1e-300))[:, None]
        go = ~done
        t = np.ones(a.size)
        accepted = ~go
        new_th, new_dev, new_g = th.copy(), dev[a].copy(), grad[a].copy()
        for _ in range(40):                                            # backtracking (Armijo), per replication
            todo = np.flatnonzero(~accepted)
            if todo.size == 0:
                break
            trial = np.maximum(th[todo] + t[todo, None] * step[todo], lower)
            d_trial, g_trial = _objective(trial, cp_a if todo.size == a.size else cp_a.subset(todo), reml)
            ok = d_trial <= dev[a[todo]] + 1e-4 * np.minimum(((trial - th[todo]) * grad[a[todo]]).sum(1), 0.0)
            new_th[todo[ok]], new_dev[todo[ok]], new_g[todo[ok]] = trial[ok], d_trial[ok], g_trial[ok]
            accepted[todo[ok]] = True
            t[todo[~ok]] /= 2
        stuck = go & ~accepted                                         # no step lowers the criterion
        progress = dev[a] - new_dev
        theta[a], dev[a], grad[a] = new_th, new_dev, new_g
        stalled = go & accepted & (progress <= 1e-13 * np.abs(new_dev)) & (decrement < 1e-8)
        converged[a[stalled]] = True
        active[a[done | stuck | stalled]] = False
    return theta, converged


def _moment_start(cp: _BatchCrossProducts) -> np.ndarray:
    """``hlmlib.mixed.moment_start`` for every replication (R, K): group-by-group least squares, in the groups
    with residual df and a well-conditioned Z_j'Z_j; lme4's start Lambda = I where too few groups qualify."""
    q, p = cp.q, cp.p
    R = cp.WtW.shape[0]
    Xty, yty = cp.WtW[:, :p, p], cp.WtW[:, p, p]
    beta = _solve_vec(cp.WtW[:, :p, :p], Xty)
    s = cp.ZtZW[..., -1] - (cp.ZtZW[..., q:q + p] @ beta[:, None, :, None])[..., 0]
    ZtZ = cp.ZtZW[..., :q]
    eig = np.linalg.eigvalsh(ZtZ)
    use = (cp.n_obs > q + 1) & (eig[..., 0] > 1e-6 * eig[..., -1])          # (R, J)
    n_use = use.sum(axis=1)
    resid_df = cp.N - q * n_use - p
    ZtZ_inv = np.where(use[..., None, None], np.linalg.inv(np.where(use[..., None, None], ZtZ, np.eye(q))), 0.0)
    b = (ZtZ_inv @ s[..., None])[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma2 = (yty - (beta * Xty).sum(1) - (s * b).sum(axis=(1, 2))) / resid_df
        noise = ZtZ_inv.sum(axis=1) / n_use[:, None, None]
        dev = np.where(use[..., None], b - b.sum(axis=1, keepdims=True) / n_use[:, None, None], 0.0)
        cov = _T(dev) @ dev / (n_use - 1)[:, None, None]
        d = 1 / np.sqrt(np.diagonal(noise, axis1=1, axis2=2))
    fallback = (n_use < q + 2) | (resid_df <= 0) | ~(sigma2 > 0)
    d = np.where(fallback[:, None], 1.0, d)
    Dd = d[:, :, None] * d[:, None, :]
    w, V = np.linalg.eigh(np.where(fallback[:, None, None], np.eye(q), Dd * (cov / sigma2[:, None, None] - noise)))
    T = (V * np.clip(w, 0.1, 1000.0)[:, None, :]) @ _T(V) / Dd
    T = np.where(fallback[:, None, None], np.eye(q), T)
    rows, cols = _tril_indices(q)
    return np.linalg.cholesky(T)[:, rows, cols]


def _fit(cp: _BatchCrossProducts, reml: bool):
    """theta-hat (R, K), and which replications were refitted alone by hlmlib.mixed.fit_theta (from the batch's
    estimate): those not converged and, with two or more random effects, those on the boundary, where
    fit_theta checks the optimality conditions of a singular tau."""
    unit = cp.unit_scaled()                                # as fit_theta: theta better scaled, whatever Z's units
    theta, converged = _newton(_moment_start(unit), unit, reml)
    theta = theta / cp.z_scale[:, _tril_indices(cp.q)[0]]  # back to Z: Lambda = D^-1 (D Lambda)
    refit = ~converged | ((cp.q > 1) & _on_boundary(theta, cp))
    for r in np.flatnonzero(refit):
        theta[r] = fit_theta(cp.one(r), reml=reml, start=theta[r]).theta
    return theta, refit


def _on_boundary(theta: np.ndarray, cp: _BatchCrossProducts) -> np.ndarray:
    """lme4's isSingular as :func:`hlmlib.mixed` decides it: a diagonal element of Lambda below SINGULAR_TOL for Z's
    columns at unit root mean square (so not depending on the units of Z), (R,)."""
    diag = np.diagonal(_lower(theta, cp.q), axis1=1, axis2=2) * cp.z_scale
    return diag.min(axis=1) < SINGULAR_TOL


# ----------------------------------------------------------------------------------------------
# inference (hlmlib.lmm_inference, replication axis first)
# ----------------------------------------------------------------------------------------------

@dataclass
class _Blocks(GroupBlocks):
    r""":class:`hlmlib.lmm_inference.GroupBlocks` for every replication, with the replication axis first: T (R, q, q),
    M (R, J, q, q), B (R, J, q, p), s (R, J, q), A and A_inv (R, p, p), pwrss (R,), n_obs (J,); and Lam (R, q, q)."""

    Lam: np.ndarray = None


def _blocks(fac: _Factor, cp: _BatchCrossProducts) -> _Blocks:
    q, p = cp.q, cp.p
    P = cp.ZtZW - _T(fac.Rm[..., :q]) @ fac.Rm
    M, B = P[..., :q], P[..., q:q + p]
    s = P[..., -1] - _einsum("rjap,rp->rja", B, fac.beta())
    RX = fac.LW[:, :p, :p]
    RX_inv = np.linalg.inv(RX)
    return _Blocks(T=fac.Lam @ _T(fac.Lam), M=(M + _T(M)) / 2, B=B, s=s, A=RX @ _T(RX), A_inv=_T(RX_inv) @ RX_inv,
                   pwrss=fac.pwrss, n_obs=cp.n_obs, Lam=fac.Lam)


def _directions(Lam: np.ndarray) -> np.ndarray:
    r""":math:`\partial T/\partial\theta_k = E_k\Lambda' + \Lambda E_k'` (R, K, q, q)
    (:func:`hlmlib.lmm_inference.theta_directions`)."""
    q = Lam.shape[-1]
    rows, cols = _tril_indices(q)
    E = np.zeros((rows.size, q, q))
    E[np.arange(rows.size), rows, cols] = 1.0
    ELt = E[None] @ _T(Lam)[:, None]
    return ELt + _T(ELt)


def _pair_traces(DX, DY):
    r"""Sum over groups of :math:`\operatorname{tr}(D^X_{jk} D^Y_{jl})` for stacks DX (R, J, K, a, b) and
    DY (R, J, L, b, a): one batched product over the flattened (j, a, b) (``einsum("rjkab,rjlba->rkl")``)."""
    R, J, K, a, b = DX.shape
    return (np.moveaxis(DX, 2, 1).reshape(R, K, -1)
            @ np.moveaxis(np.swapaxes(DY, -1, -2), 2, -1).reshape(R, J * a * b, -1))


def _group_products(D, M):
    """D_k M_j for D (R, K, a, b) and M (R, J, b, c): (R, J, K, a, c) (``einsum("rkab,rjbc->rjkac")``)."""
    return D[:, None] @ M[:, :, None]


def _sum_over_groups(X, Y):
    r""":math:`\sum_{j,a} X_{j i a p} Y_{j a \ldots}` for X (R, J, I, a, P) and Y (R, J, a, ...), as one batched
    product over the flattened (j, a): (R, I, P, ...)."""
    R, J, I, a, P = X.shape
    rest = Y.shape[3:]
    out = np.moveaxis(X, (2, 4), (1, 2)).reshape(R, I * P, J * a) @ Y.reshape(R, J * a, -1)
    return out.reshape((R, I, P) + rest)


def _satterthwaite_df(b: _Blocks, sigma: np.ndarray, reml: bool, dof: float, L: np.ndarray,
                      z_scale: np.ndarray) -> np.ndarray:
    r"""lmerTest's Satterthwaite df of each contrast (rows of L) in every replication, (R, m):
    :func:`hlmlib.lmm_inference.deviance_hessian` and :func:`hlmlib.lmm_inference.satterthwaite`, in the same
    unit-free coordinates (theta for Z's columns at unit root mean square, sigma / sigma-hat)."""
    Lam = z_scale[:, :, None] * b.Lam
    b = unit_z_blocks(b, z_scale)
    D = _directions(Lam)
    R, K = D.shape[:2]
    rows, cols = _tril_indices(Lam.shape[-1])
    s2 = (sigma**2)[:, None, None]
    SS = b.s[..., :, None] * b.s[..., None, :]
    DM = _group_products(D, b.M)
    u = _einsum("rjap,rkab,rjb->rkp", b.B, D, b.s)
    H = -_pair_traces(DM, DM) + (2 * _pair_traces(DM, _group_products(D, SS))
                                 - 2 * _einsum("rkp,rpq,rlq->rkl", u, b.A_inv, u)) / s2
    G = b.M.sum(axis=1) - SS.sum(axis=1) / s2
    if reml:
        N = _einsum("rjap,rpq,rjbq->rjab", b.B, b.A_inv, b.B)
        AdA = -b.A_inv[:, None] @ _einsum("rjap,rkab,rjbq->rkpq", b.B, D, b.B)
        H += 2 * _pair_traces(DM, _group_products(D, N)) - _einsum("rkpq,rlqp->rkl", AdA, AdA)
        G -= N.sum(axis=1)
    H += 2 * (cols[:, None] == cols[None, :]) * G[:, rows[:, None], rows[None, :]]
    dpwrss = -_einsum("rja,rkab,rjb->rk", b.s, D, b.s)
    Hfull = np.empty((R, K + 1, K + 1))
    Hfull[:, :K, :K] = (H + _T(H)) / 2
    Hfull[:, K, :K] = Hfull[:, :K, K] = -2 * dpwrss / sigma[:, None] ** 2
    Hfull[:, K, K] = 6 * b.pwrss / sigma**2 - 2 * dof
    w, U = np.linalg.eigh(Hfull)
    keep = w > HESSIAN_TOL                                      # lmerTest: pseudo-inverse over these
    vcov_varpar = 2 * _einsum("rak,rk,rbk->rab", U, np.where(keep, 1 / np.where(keep, w, 1.0), 0.0), U)
    BDB = _einsum("rjap,rkab,rjbq->rkpq", b.B, D, b.B)
    Phi = s2 * b.A_inv
    jac = np.concatenate([Phi[:, None] @ BDB @ b.A_inv[:, None], 2 * Phi[:, None]], axis=1)
    var = _einsum("mi,rij,mj->rm", L, Phi, L)
    g = _einsum("mi,rkij,mj->rmk", L, jac, L)
    return 2 * var**2 / _einsum("rmk,rkl,rml->rm", g, vcov_varpar, g)


def _kenward_roger(b: _Blocks, sigma2: np.ndarray, L: np.ndarray, z_scale: np.ndarray):
    r"""Kenward-Roger adjusted variance and df of each contrast (rows of L) in every replication, both (R, m):
    :func:`hlmlib.lmm_inference.kenward_roger` and :class:`hlmlib.lmm_inference.KenwardRoger` (in the same
    unit-free parameters)."""
    b = unit_z_blocks(b, z_scale)
    q, p = b.M.shape[-1], b.A.shape[-1]
    rows, cols = _tril_indices(q)
    n = rows.size + 1
    D = np.zeros((n, q, q))                                    # G_r = Z D_r Z' for tau's entries, then I
    D[np.arange(n - 1), rows, cols] = 1.0
    D[np.arange(n - 1), cols, rows] = 1.0
    c = np.zeros(n)
    c[-1] = 1.0
    s2 = sigma2[:, None, None]
    T = b.T[:, None]
    Mv, Bv = b.M / s2[:, None], b.B / s2[:, None]
    MT = b.M @ T
    TB = T @ b.B
    BTB = _einsum("rjap,rjaq->rpq", b.B, TB)
    ZV2Z = (b.M - MT @ b.M).sum(axis=1) / s2**2
    ZV2X = (b.B - MT @ b.B) / s2[:, None] ** 2
    XV2X = (b.A - BTB) / s2**2
    XV3X = (b.A - 2 * BTB + _einsum("rjap,rjab,rjbq->rpq", TB, b.M, TB)) / s2**3
    trV2 = (b.n_obs.sum() - 2 * _einsum("rjaa->r", MT) + _einsum("rjab,rjba->r", MT, MT)) / sigma2**2
    Phi = s2 * b.A_inv
    DB = _einsum("iab,rjbp->rjiap", D, Bv)
    # P_i = -X'V^-1 G_i V^-1 X
    P = -(np.moveaxis(_sum_over_groups(DB, Bv), 2, 3) + c[None, :, None, None] * XV2X[:, None])
    MDB = _einsum("rjab,rjibp->rjiap", Mv, DB)
    Q = np.swapaxes(_sum_over_groups(DB, np.moveaxis(MDB, 2, 3)), 2, 3)          # (R, i, k, p, q)
    Rr = _sum_over_groups(DB, ZV2X)
    Q = Q + (c[None, None, :, None, None] * Rr[:, :, None] + c[None, :, None, None, None] * _T(Rr)[:, None]
             + np.outer(c, c)[None, :, :, None, None] * XV3X[:, None, None])
    DM = _einsum("iab,rjbc->rjiac", D, Mv)
    k2 = _einsum("iab,rba->ri", D, ZV2Z)
    Ktrace = (_pair_traces(DM, DM) + k2[:, :, None] * c[None, None, :] + c[None, :, None] * k2[:, None, :]
              + np.outer(c, c)[None] * trV2[:, None, None])
    PhiP = Phi[:, None] @ P
    IE2 = Ktrace - 2 * _einsum("rpq,rikqp->rik", Phi, Q) + _einsum("ripq,rkqp->rik", PhiP, PhiP)
    IE2 = (IE2 + _T(IE2)) / 2 * s2**2                      # for gamma / sigma2-hat: free of y's units
    w, U = np.linalg.eigh(IE2)
    # pbkrtest: the inverse, or MASS::ginv (eigenvalues above sqrt(eps) of the largest) when near singular
    singular = np.abs(w).min(axis=1) <= 1e-10
    cut = np.where(singular, np.sqrt(np.finfo(float).eps) * np.abs(w).max(axis=1), 0.0)[:, None]
    keep = np.where(singular[:, None], np.abs(w) > cut, True)
    W = 2 * _einsum("rak,rk,rbk->rab", U, np.where(keep, 1 / np.where(keep, w, 1.0), 0.0), U) * s2**2
    U_sum = _einsum("rik,rikpq->rpq", W, Q) - _einsum("rik,ripq,rkqs->rps", W, P @ Phi[:, None], P)
    Phi_A = Phi + 2 * Phi @ U_sum @ Phi
    PhiL = _einsum("mp,rpq->rmq", L, Phi)
    var_A = _einsum("mp,rpq,mq->rm", L, Phi_A, L)
    wgt = _einsum("rmp,ripq,rmq->rmi", PhiL, P, PhiL) / _einsum("rmp,mp->rm", PhiL, L)[..., None]
    A = _einsum("rmi,rik,rmk->rm", wgt, W, wgt)
    return var_A, kenward_roger_df(A, A, 1)


def _cluster_robust(b: _Blocks, beta: np.ndarray, cp: _BatchCrossProducts, kind: str, L: np.ndarray):
    r"""clubSandwich's cluster-robust variance (the fitted model as working model) and Satterthwaite df of each
    contrast in every replication, both (R, m) (:func:`hlmlib.lmm_inference.cluster_robust`).

    Per group, with :math:`\Phi_j = I + Z_jTZ_j'` the fitted working covariance (relative to :math:`\sigma^2`,
    which cancels), :math:`W_j = \Phi_j^{-1}`, :math:`M = (X'V_*^{-1}X)^{-1}`: :math:`E_j = X_j'W_jA_j` with
    :math:`A_j = I` (CR0, CR1), :math:`D_j'B_j^{-1/2}D_j`, :math:`D_j'D_j = \Phi_j`,
    :math:`B_j = D_j(\Phi_j - X_jMX_j')D_j'` (CR2), :math:`(I - X_jMX_j'W_j)^{-1}` (CR3);
    :math:`\operatorname{Var}(c'\hat\beta) = f \sum_j (c'ME_je_j)^2` (:math:`f = J/(J-1)` for CR1, else 1); and
    the df :math:`(\sum_j d_j - \sum_j \lVert z_j\rVert^2)^2 / (\sum_j d_j^2 - 2\sum_j d_j\lVert z_j\rVert^2
    + \lVert \sum_j z_jz_j' \rVert_F^2)` with :math:`v_j = E_j'Mc`, :math:`d_j = v_j'\Phi_jv_j`,
    :math:`z_j = L_M'X_j'v_j`, :math:`L_ML_M' = M` (:func:`hlmlib.sandwich.cr2_satterthwaite_df`).

    Every :math:`n_j \times n_j` matrix here is :math:`\alpha(I - O_jO_j') + O_jKO_j'` for an orthonormal basis
    :math:`O_j = U_jS_j` of the span of :math:`U_j = [X_j\ Z_j]`, so the algebra runs on the small matrices
    :math:`K` (c x c): :math:`S_j` from the eigen-decomposition of :math:`U_j'U_j` (directions with eigenvalue below
    1e-11 of the largest, exact collinearities within the group such as a group-level covariate beside the
    intercept, get a zero column), :math:`\tilde x_j = S_j'U_j'X_j`, :math:`\tilde z_j = S_j'U_j'Z_j`,
    :math:`\tilde e_j = S_j'U_j'e_j`, all from the per-group Gram matrix of :math:`[U\ y]`.
    """
    R, p = beta.shape
    c = cp.gram.shape[-1] - 1
    M = b.A_inv
    G = cp.gram[..., :c, :c]
    scale = np.sqrt(np.einsum("rjaa->a", G) / (R * cp.N))             # columns to unit root mean square
    scale = np.where(scale > 0, scale, 1.0)
    lam, V = np.linalg.eigh(G / np.outer(scale, scale))
    keep = lam > 1e-11 * lam[..., -1:]
    S = V * np.where(keep, 1 / np.sqrt(np.where(keep, lam, 1.0)), 0.0)[..., None, :] / scale[:, None]
    St = _T(S)
    x = St @ G[..., :p]                                                 # O_j'X_j (R, J, c, p)
    z = St @ G[..., cp.z_index]                                         # O_j'Z_j
    e = _einsum("rjab,rjb->rja", St, cp.gram[..., :c, c] - _einsum("rjap,rp->rja", G[..., :p], beta))
    Phi = np.eye(c) + z @ b.T[:, None] @ _T(z)
    W = np.linalg.inv(Phi)
    if kind == "CR2":
        Lc = np.linalg.cholesky(Phi)                                    # D_j = L', D_j'D_j = Phi_j
        Bm = _T(Lc) @ (Phi - x @ M[:, None] @ _T(x)) @ Lc
        bl, bV = np.linalg.eigh((Bm + _T(Bm)) / 2)
        if (bl <= sw.SINGULAR_TOL).any():
            raise InputError("CR2 is undefined in some replication: a group alone determines a combination of the "
                             "fixed effects (Phi_j - X_j M X_j' is singular)")
        A = Lc @ (bV / np.sqrt(bl)[..., None, :]) @ _T(bV) @ _T(Lc)
    elif kind == "CR3":
        A = np.linalg.inv(np.eye(c) - x @ M[:, None] @ _T(x) @ W)
    else:
        A = np.broadcast_to(np.eye(c), Phi.shape)
    t = _einsum("mp,rpq->rmq", L, M)                                   # M c for each contrast
    v = _T(_T(A) @ W @ x @ _T(t)[:, None])                            # O_j'v_j, v_j = E_j'Mc, (R, J, m, c)
    factor = sw.cluster_factor(cp.n_obs.size) if kind == "CR1" else 1.0
    var = factor * (_einsum("rjma,rja->rjm", v, e) ** 2).sum(axis=1)
    d = _einsum("rjma,rjab,rjmb->rjm", v, Phi, v)
    zz = _einsum("rpa,rjbp,rjmb->rjma", np.linalg.cholesky(M), x, v)    # L_M'X_j'v_j
    z2 = (zz**2).sum(-1)
    ZtZ = _einsum("rjma,rjmb->rmab", zz, zz)
    trace = d.sum(1) - z2.sum(1)
    frob2 = (d**2).sum(1) - 2 * (d * z2).sum(1) + _einsum("rmab,rmab->rm", ZtZ, ZtZ)
    return var, trace**2 / frob2


# ----------------------------------------------------------------------------------------------
# the result and the entry point
# ----------------------------------------------------------------------------------------------

class MonteCarloMixed(MonteCarloOLS):
    r"""Mixed-model estimates, standard errors and df for ``R`` replications, as :func:`mixed_mc` returns them.

    As :class:`hlmlib.simulate.MonteCarloOLS`: ``params`` (R, m) the contrasts :math:`L\hat\beta`, ``se[kind]``
    and ``df[kind]`` (R, m) for each computed kind (``"model"`` has df :math:`\infty`: the normal reference),
    with ``reject``, ``rejection_rate``, ``ci``, ``coverage`` and ``summary``. Also ``theta`` (R, K),
    ``sigma2`` (R,), ``tau`` (R, q, q), ``boundary`` (R,) (a diagonal element of :math:`\Lambda` below 1e-4 for Z's
    columns at unit root mean square, as :func:`hlmlib.mixed`) and ``refitted`` (R,) (replications fitted alone by
    ``hlmlib.mixed.fit_theta``).
    """

    def __init__(self, params, se, df, names, n, k, G, theta, sigma2, tau, boundary, refitted):
        super().__init__(params, se, df, names, n, k, G)
        self.theta, self.sigma2, self.tau = theta, sigma2, tau
        self.boundary, self.refitted = boundary, refitted


def _as_stack(A, R: int, N: int, name: str) -> np.ndarray:
    A = np.asarray(A, dtype=float)
    if A.ndim == 2:
        A = np.broadcast_to(A, (R,) + A.shape)
    if A.ndim != 3 or A.shape[:2] != (R, N):
        raise InputError(f"{name} must be (N, k) or (R, N, k) with N = {N}, R = {R}; got shape {A.shape}")
    if not np.isfinite(A).all():
        raise InputError(f"{name} has NaN or inf values")
    if A.shape[2] == 0:
        raise InputError(f"{name} has no columns" + (" (no random effects: a mixed model needs at least one)"
                                                      if name == "Z" else ""))
    return A


def mixed_mc(X, Y=None, groups=None, Z=None, *, reml: bool = True, contrasts=None, names=None, kinds=None,
             chunk: int | None = None) -> MonteCarloMixed:
    r"""Fit the two-level linear mixed model to ``R`` simulated responses at once and test contrasts of its fixed
    effects with every small-sample method of :meth:`hlmlib.MixedResult.coef_table`.

    The model of :func:`hlmlib.mixed`, :math:`y_j = X_j\beta + Z_jb_j + e_j`, by REML (default) or ML, for each
    row of ``Y``; the numbers are those of ``hlmlib.mixed(Y[r], X[r], groups, Z[r], reml=reml)`` and its
    ``coef_table`` (see the module docstring for how they are computed together).

    Parameters
    ----------
    X : *array* (N, p) or (R, N, p), or a :class:`hlmlib.simulate.Batch`
        The fixed-effects design, the same in every replication or one per replication. A ``Batch`` (from
        ``hlm_eusup_batch`` and the like) supplies ``X``, ``Y``, ``groups`` (its ``cluster``), ``Z`` (its
        ``extra["Z"]``) and the names.
    Y : *array* (R, N)
        The responses, one row per replication.
    groups : *array* (N,)
        Group labels, the same in every replication.
    Z : *array* (N, q) or (R, N, q), or None
        The random-effects design (default: a random intercept).
    reml : bool
        REML (default) or ML.
    contrasts : *array* (m, p) or None
        The contrasts :math:`L\beta` to test (default: every coefficient).
    names : list of str or None
        Names of the contrasts (default: the Batch's names, else b0, b1, ...).
    kinds : list of str or None
        Any of ``"model"`` (model-based se, normal reference), ``"satterthwaite"`` (model-based se, lmerTest's
        df), ``"kenward-roger"`` (REML only) and ``"CR0"``-``"CR3"`` (clubSandwich, Satterthwaite df); default
        ``("model", "satterthwaite", "kenward-roger", "CR2")`` (no Kenward-Roger for ML).
    chunk : int or None
        Replications per batch of array operations (default: arrays of a few tens of MB).

    Returns
    -------
    MonteCarloMixed
        Contrasts, standard errors and df of every replication, with rejection rates and coverage.
    """
    reml = check_bool(reml, "reml")
    if isinstance(X, Batch):
        batch = X
        X, Y, groups = batch.X, batch.Y, batch.cluster if groups is None else groups
        Z = batch.extra.get("Z") if Z is None else Z
        names = batch.names if names is None and contrasts is None else names
    if Y is None or groups is None:
        raise InputError("mixed_mc needs X, Y (R, N) and groups (N,), or a simulate.Batch")
    Y = np.atleast_2d(np.asarray(Y, dtype=float))
    if not np.isfinite(Y).all():
        raise InputError("Y has NaN or inf values")
    R, N = Y.shape
    X = _as_stack(X, R, N, "X")
    Z = _as_stack(np.ones((N, 1)) if Z is None else (np.asarray(Z)[..., None] if np.ndim(Z) == 1 else Z), R, N, "Z")
    p, q = X.shape[-1], Z.shape[-1]
    grp = _Groups(groups, N)
    XtX = np.swapaxes(X, 1, 2) @ X
    scale = np.sqrt(np.einsum("rkk->rk", XtX))
    deficient = np.linalg.eigvalsh(XtX / (scale[:, :, None] * scale[:, None, :] + 1e-300))[:, 0] <= 1e-10
    if deficient.any():
        raise InputError(f"X is rank deficient (collinear columns) in replication(s) "
                         f"{np.flatnonzero(deficient)[:5].tolist()}")
    if grp.J <= q or N <= grp.J * q:
        raise InputError(f"{grp.J} groups and N = {N} cannot identify {q} random effect(s) per group")
    if kinds is None:
        kinds = ["model", "satterthwaite"] + (["kenward-roger"] if reml else []) + ["CR2"]
    kinds = list(kinds)
    bad = [k for k in kinds if k not in MC_KINDS]
    if bad:
        raise InputError(f"unknown kind(s) {bad}; choose from {MC_KINDS}")
    if "kenward-roger" in kinds and not reml:
        raise InputError("Kenward-Roger's method is for REML fits (as pbkrtest); drop it or use reml=True")
    L = np.eye(p) if contrasts is None else np.atleast_2d(np.asarray(contrasts, dtype=float))
    if L.shape[1] != p:
        raise InputError(f"contrasts must have p = {p} columns, got shape {L.shape}")
    names = [f"b{i}" for i in range(L.shape[0])] if names is None else list(names)
    if len(names) != L.shape[0]:
        raise InputError(f"{len(names)} names for {L.shape[0]} contrasts")
    if chunk is None:                                          # the (chunk, N, q + p + 1) products: tens of MB
        chunk = max(1, 2_000_000 // (N * (q + p + 1)))
    else:
        chunk = check_scalar(chunk, "chunk", integer=True, minimum=1, maximum=2**31 - 1)
    dof = N - p if reml else N
    out = {key: [] for key in ("params", "theta", "sigma2", "refit", "tau", "boundary")}
    se, df = {k: [] for k in kinds}, {k: [] for k in kinds}
    for start in range(0, R, chunk):
        rs = slice(start, start + chunk)
        cp = _cross_products(Y[rs], X[rs], Z[rs], grp)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)           # the optimiser's trial points
            theta, refit = _fit(cp, reml)
        fac = _factor(theta, cp)
        b = _blocks(fac, cp)
        sigma2 = fac.pwrss / dof
        beta = fac.beta()
        out["params"].append(beta @ L.T)
        out["theta"].append(theta)
        out["sigma2"].append(sigma2)
        out["refit"].append(refit)
        out["boundary"].append(_on_boundary(theta, cp))
        out["tau"].append(sigma2[:, None, None] * b.T)
        model_var = sigma2[:, None] * _einsum("mi,rij,mj->rm", L, b.A_inv, L)
        for kind in kinds:
            if kind == "model":
                var, d = model_var, np.full_like(model_var, np.inf)
            elif kind == "satterthwaite":
                var, d = model_var, _satterthwaite_df(b, np.sqrt(sigma2), reml, dof, L, cp.z_scale)
            elif kind == "kenward-roger":
                var, d = _kenward_roger(b, sigma2, L, cp.z_scale)
            else:
                var, d = _cluster_robust(b, beta, cp, kind, L)
            se[kind].append(np.sqrt(var))
            df[kind].append(d)
    return MonteCarloMixed(np.concatenate(out["params"]), {k: np.concatenate(v) for k, v in se.items()},
                           {k: np.concatenate(v) for k, v in df.items()}, names, N, p, grp.J,
                           theta=np.concatenate(out["theta"]), sigma2=np.concatenate(out["sigma2"]),
                           tau=np.concatenate(out["tau"]), boundary=np.concatenate(out["boundary"]),
                           refitted=np.concatenate(out["refit"]))
