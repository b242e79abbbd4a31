r"""Sandwich covariance estimators for least squares, one function per formula.

Every estimator here has the form :math:`V = B M B'`, :math:`B` the *bread* and :math:`M` the *meat*
(R's ``sandwich`` package, Zeileis 2004/2006). For OLS the bread is :math:`(X'X)^{-1}` and the meat
is :math:`X' \hat\Omega X`, a sum of outer products of the *scores* :math:`x_i e_i`, weighted (HC)
or summed within clusters first (CR).

Every function below takes any basis of the column space. In the orthonormal basis
:math:`U = X R^{-1}` (:math:`X = QR`, so :math:`U = Q`) the bread is :math:`R^{-1}` in the sense
:math:`V = R^{-1} M_U R^{-T}`, which equals :math:`(X'X)^{-1} X' \hat\Omega X (X'X)^{-1}` exactly,
and the hat matrix is :math:`H = UU'`. The cluster adjustments CR2/CR3 are written in terms of
:math:`H`, so they take :math:`U`; hlmlib also uses :math:`U` for the other kinds when :math:`X` is
ill-conditioned, and :math:`X` itself with bread :math:`(X'X)^{-1}` otherwise.

Conventions (as the book's :ref:`conventions page <conventions>` states them); HC weights :math:`w_i` enter :math:`M = \sum_i w_i e_i^2 x_i x_i'`, cluster
adjustments :math:`A_g` enter :math:`M = \sum_g X_g' A_g e_g e_g' A_g' X_g`:

====  ============================================================  ============================================================
kind  formula                                                       other software
====  ============================================================  ============================================================
HC0   :math:`w_i = 1`                                               White (1980); sandwich ``vcovHC(type="HC0")``
HC1   :math:`w_i = n/(n-k)`                                         Stata ``, robust``; statsmodels ``HC1``; sandwich "HC1"
HC2   :math:`w_i = 1/(1-h_{ii})`                                    MacKinnon & White (1985); statsmodels/sandwich "HC2"
HC3   :math:`w_i = 1/(1-h_{ii})^2`                                  R sandwich's default (Long & Ervin 2000); "HC3"
HC4   :math:`w_i = 1/(1-h_{ii})^{\min(4,\, n h_{ii}/k)}`            Cribari-Neto (2004); sandwich "HC4"
HC4m  :math:`w_i = 1/(1-h_{ii})^{\delta_i}` (below)                 Cribari-Neto & da Silva (2011); sandwich "HC4m"
HC5   :math:`w_i = 1/(1-h_{ii})^{\alpha_i/2}` (below)               Cribari-Neto, Souza & Vasconcellos (2007); sandwich "HC5"
CR0   :math:`A_g = I`, no factor                                    sandwich ``vcovCL(type="HC0", cadjust=FALSE)``; linearmodels
CR1   :math:`A_g = I`, factor :math:`\frac{G}{G-1}\frac{N-1}{N-k}`  Stata ``vce(cluster)``; sandwich ``vcovCL`` (HC1);
                                                                    statsmodels ``use_correction=True``; clubSandwich "CR1S"
CR2   :math:`A_g = (I - H_{gg})^{-1/2}`                             Bell & McCaffrey (2002); clubSandwich "CR2"
CR3   :math:`A_g = (I - H_{gg})^{-1}`                               clubSandwich "CR3" (jackknife, without :math:`(G-1)/G`)
====  ============================================================  ============================================================

HC4m: :math:`\delta_i = \min(\gamma_1, n h_{ii}/k) + \min(\gamma_2, n h_{ii}/k)`, :math:`\gamma = (1, 1.5)`.

HC5: :math:`\alpha_i = \min(n h_{ii}/k,\ \max(4,\ c\, n \max_l h_{ll}/k))`, :math:`c = 0.7`. The constants are
the authors' recommendations and R sandwich's fixed defaults (``HC4M_GAMMA``, ``HC5_K``).

Two-way clustering (Cameron, Gelbach & Miller 2011): :math:`V = V_A + V_B - V_{A \cap B}`.

References
----------
- White (1980), *Econometrica* 48, 817-838.
- MacKinnon & White (1985), *J. Econometrics* 29, 305-325.
- Long & Ervin (2000), *Am. Statistician* 54, 217-224.
- Cribari-Neto (2004), *Comp. Stat. & Data Analysis* 45, 215-233.
- Cribari-Neto, Souza & Vasconcellos (2007), *Comm. Stat. Theory Methods* 36, 1877-1888.
- Cribari-Neto & da Silva (2011), *AStA Adv. Stat. Anal.* 95, 129-146.
- Bell & McCaffrey (2002), *Survey Methodology* 28, 169-181.
- Pustejovsky & Tipton (2018), *J. Bus. Econ. Stat.* 36, 672-683.
- Cameron, Gelbach & Miller (2011), *J. Bus. Econ. Stat.* 29, 238-249.
- Petersen (2009), *Rev. Fin. Stud.* 22, 435-480.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .design import InputError, check_labels, group_codes

__all__ = [
    "HC_KINDS", "CR_KINDS", "KINDS", "HC_WEIGHTS", "CR_ADJUSTMENTS", "CONVENTIONS",
    "Clusters", "Covariance", "sandwich", "bread", "leverage", "hc_weights", "meat_hc", "HC4M_GAMMA", "HC5_K",
    "cluster_factor", "hc1_factor", "meat_cluster", "cluster_gram", "cluster_eigen", "meat_cr_adjusted",
    "cr2_satterthwaite_df", "Satterthwaite", "twoway_cluster_vcov", "correlation_form", "nearest_psd",
]

HC_KINDS = ("HC0", "HC1", "HC2", "HC3", "HC4", "HC4m", "HC5")
CR_KINDS = ("CR0", "CR1", "CR2", "CR3")
KINDS = ("classical",) + HC_KINDS + CR_KINDS

# Cluster-level leverages lambda at or above 1 - SINGULAR_TOL make I - H_gg singular for CR2/CR3.
SINGULAR_TOL = 1e-10

CONVENTIONS = {
    "classical": "classical s^2 (X'X)^-1, s^2 = e'e/(n-k) (R vcov(lm); Stata regress; statsmodels nonrobust)",
    "HC0": "HC0, White (1980): weights 1 (sandwich vcovHC type 'HC0'; statsmodels HC0)",
    "HC1": "HC1: weights n/(n-k) (Stata ', robust'; statsmodels HC1; sandwich 'HC1')",
    "HC2": "HC2, MacKinnon & White (1985): weights 1/(1-h_ii) (sandwich/statsmodels 'HC2')",
    "HC3": "HC3: weights 1/(1-h_ii)^2 (R sandwich's default; Long & Ervin 2000; statsmodels 'HC3')",
    "HC4": "HC4, Cribari-Neto (2004): weights 1/(1-h_ii)^min(4, n h_ii/k) (sandwich 'HC4')",
    "HC4m": "HC4m, Cribari-Neto & da Silva (2011): weights 1/(1-h_ii)^(min(1, n h_ii/k) + min(1.5, n h_ii/k)) "
            "(sandwich 'HC4m')",
    "HC5": "HC5, Cribari-Neto, Souza & Vasconcellos (2007): weights 1/(1-h_ii)^(a_i/2), "
           "a_i = min(n h_ii/k, max(4, 0.7 n max(h)/k)) (sandwich 'HC5')",
    "CR0": "CR0: no small-sample factor (sandwich vcovCL type 'HC0', cadjust=FALSE; linearmodels default)",
    "CR1": "CR1: factor G/(G-1) (N-1)/(N-k) (Stata vce(cluster); sandwich vcovCL 'HC1'; "
           "statsmodels use_correction=True; clubSandwich 'CR1S')",
    "CR2": "CR2, Bell & McCaffrey (2002): A_g = (I - H_gg)^(-1/2) (clubSandwich 'CR2', working model I)",
    "CR3": "CR3: A_g = (I - H_gg)^(-1), the leave-one-cluster-out jackknife without its (G-1)/G "
           "(clubSandwich 'CR3')",
}


# ----------------------------------------------------------------------------------------------
# bread and sandwich


def sandwich(bread: np.ndarray, meat: np.ndarray) -> np.ndarray:
    r""":math:`V = B M B'` (R's ``sandwich::sandwich``, up to its scaling by :math:`n`).

    With :math:`B = (X'X)^{-1}` and :math:`M = X' \hat\Omega X` this is the
    heteroskedasticity/cluster-robust covariance of OLS (White 1980). :math:`B` need not be symmetric:
    hlmlib passes :math:`B = R^{-1}` with the meat in the basis :math:`U = X R^{-1}`, giving the same
    :math:`V`.
    """
    return bread @ meat @ bread.T


def bread(X: np.ndarray) -> np.ndarray:
    r"""The OLS bread :math:`(X'X)^{-1} = R^{-1} R^{-T}`, from a column-scaled QR of :math:`X` (never
    :math:`X'X` itself).

    R's ``sandwich::bread(lm)`` is :math:`n` times this.

    References
    ----------
    Zeileis (2006), *J. Stat. Software* 16(9).
    """
    from .linalg import least_squares

    return least_squares(X, np.zeros(X.shape[0])).xtx_inv


def leverage(U: np.ndarray) -> np.ndarray:
    r"""Hat values :math:`h_{ii} = u_i'u_i`, the diagonal of :math:`H = X (X'X)^{-1} X' = UU'`
    (:math:`U = X R^{-1}` orthonormal).

    R ``hatvalues(lm)``; Stata ``predict, hat``; statsmodels ``get_influence().hat_matrix_diag``.

    References
    ----------
    Hoaglin & Welsch (1978), *The American Statistician* 32, 17-22.
    """
    return np.einsum("ij,ij->i", U, U)


# ----------------------------------------------------------------------------------------------
# heteroskedasticity-consistent (HC) meats


def _hc4_weight(h, n, k):
    return 1.0 / (1.0 - h) ** np.minimum(4.0, n * h / k)


HC4M_GAMMA = (1.0, 1.5)   # Cribari-Neto & da Silva (2011); fixed in R sandwich's meatHC
HC5_K = 0.7               # Cribari-Neto, Souza & Vasconcellos (2007); fixed in R sandwich's meatHC


def _hc4m_weight(h, n, k):
    relative = n * h / k
    return 1.0 / (1.0 - h) ** (np.minimum(HC4M_GAMMA[0], relative) + np.minimum(HC4M_GAMMA[1], relative))


def _hc5_weight(h, n, k):
    # the largest leverage of the sample (of each replication, for the stacked (r, n) leverages of simulate)
    h_max = np.max(h, axis=-1, keepdims=True)
    alpha = np.minimum(n * h / k, np.maximum(4.0, HC5_K * n * h_max / k))
    return 1.0 / (1.0 - h) ** (alpha / 2)


# w_i(h_ii, n, k, df_resid): one line per type, as R's sandwich::meatHC
HC_WEIGHTS: dict[str, Callable] = {
    "HC0": lambda h, n, k, df: np.ones_like(h),
    "HC1": lambda h, n, k, df: np.full_like(h, n / df),
    "HC2": lambda h, n, k, df: 1.0 / (1.0 - h),
    "HC3": lambda h, n, k, df: 1.0 / (1.0 - h) ** 2,
    "HC4": lambda h, n, k, df: _hc4_weight(h, n, k),
    "HC4m": lambda h, n, k, df: _hc4m_weight(h, n, k),
    "HC5": lambda h, n, k, df: _hc5_weight(h, n, k),
}


def hc_weights(kind: str, h: np.ndarray, n: int, k: int, df_resid: float | None = None) -> np.ndarray:
    r"""The HC weight :math:`w_i` of each observation (table ``HC_WEIGHTS``; conventions in the module
    docstring).

    HC0: :math:`1` (White 1980); HC1: :math:`n/(n-k)` (Stata ``robust``; ``df_resid`` replaces
    :math:`n-k` when a derived estimator has other residual df, as statsmodels does); HC2:
    :math:`1/(1-h_{ii})`; HC3: :math:`1/(1-h_{ii})^2` (MacKinnon & White 1985; Long & Ervin 2000);
    HC4: :math:`1/(1-h_{ii})^{\delta_i}`, :math:`\delta_i = \min(4, n h_{ii}/k)` (Cribari-Neto 2004);
    HC4m: :math:`\delta_i = \min(1, n h_{ii}/k) + \min(1.5, n h_{ii}/k)` (Cribari-Neto & da Silva 2011);
    HC5: :math:`1/(1-h_{ii})^{\alpha_i/2}`,
    :math:`\alpha_i = \min(n h_{ii}/k, \max(4, 0.7\, n \max_l h_{ll}/k))` (Cribari-Neto, Souza &
    Vasconcellos 2007); the constants are R sandwich's (``HC4M_GAMMA``, ``HC5_K``), which uses
    :math:`k = \operatorname{round}(\sum_i h_{ii})`, the rank. An observation with :math:`h_{ii} = 1`
    (it alone determines a coefficient) makes HC2-HC5 undefined.
    """
    if kind not in HC_WEIGHTS:
        raise InputError(f"unknown HC kind {kind!r}; choose one of {', '.join(HC_WEIGHTS)}")
    if kind not in ("HC0", "HC1"):
        bad = np.flatnonzero(h >= 1.0 - SINGULAR_TOL)
        if bad.size:
            raise InputError(f"{kind} is undefined: observation(s) at row(s) {', '.join(map(str, bad[:5]))} "
                             f"have leverage h_ii = 1 (each alone determines a coefficient)")
    return HC_WEIGHTS[kind](h, n, k, n - k if df_resid is None else df_resid)


def meat_hc(X: np.ndarray, resid: np.ndarray, weights: np.ndarray) -> np.ndarray:
    r"""HC meat :math:`M = \sum_i w_i e_i^2 x_i x_i' = X' \operatorname{diag}(w_i e_i^2) X` (R
    ``sandwich::meatHC``, times :math:`n`).

    With the weights of :func:`hc_weights`; :math:`V` = ``sandwich((X'X)^-1, M)``.

    References
    ----------
    White (1980); MacKinnon & White (1985).
    """
    scaled = X * (np.sqrt(weights) * resid)[:, None]
    return scaled.T @ scaled


def hc1_factor(n: int, k: int) -> float:
    r""":math:`(N-1)/(N-k)`: the observation-count part of Stata's CR1 factor (sandwich ``vcovCL`` type
    "HC1"; statsmodels ``use_correction=True``).

    References
    ----------
    Stata manual [U] 20.22; Cameron & Miller (2015), *J. Human Resources* 50, 317-372, sec. VI.A.
    """
    return (n - 1) / (n - k)


def cluster_factor(G: int) -> float:
    r""":math:`G/(G-1)`: the cluster-count part of the CR1 factor (sandwich ``vcovCL(cadjust=TRUE)``;
    clubSandwich's own "CR1" is this alone).

    References
    ----------
    Cameron & Miller (2015), sec. VI.A.
    """
    return G / (G - 1)


# ----------------------------------------------------------------------------------------------
# clusters


@dataclass
class Clusters:
    r"""Integer cluster codes :math:`0, \dots, G-1` for the rows, and fast within-cluster sums.

    Sums use one ``np.add.reduceat`` pass over rows sorted by cluster (already sorted data, the
    usual panel layout, is detected and not copied); otherwise the rows are put in order once.
    ``name`` is used in messages (a column name, or "cluster"). Build one with
    ``Clusters.from_labels(labels, name)``.
    """

    codes: np.ndarray
    labels: np.ndarray
    name: str = "cluster"
    order: np.ndarray | None = field(default=None, repr=False)
    starts: np.ndarray = field(default=None, repr=False)

    @classmethod
    def from_labels(cls, labels, name: str = "cluster") -> "Clusters":
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise InputError(f"{name} labels must be one-dimensional, got shape {labels.shape}")
        check_labels(labels, name)
        codes, uniques = group_codes(labels)
        order = None
        if codes.size > 1 and np.any(codes[1:] < codes[:-1]):
            order = np.argsort(codes, kind="stable")
        sorted_codes = codes if order is None else codes[order]
        starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if codes.size else np.array([], int)
        return cls(codes=codes, labels=uniques, name=name, order=order, starts=starts)

    @property
    def G(self) -> int:
        return len(self.labels)

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(np.r_[self.starts, self.codes.size])

    def label_text(self, g: int) -> str:
        """Cluster g's label as the user wrote it (no NumPy scalar repr)."""
        label = self.labels[g]
        return repr(label.item() if isinstance(label, np.generic) else label)

    def sorted_rows(self, values: np.ndarray) -> np.ndarray:
        return values if self.order is None else values[self.order]

    def sums(self, values: np.ndarray, presorted: bool = False) -> np.ndarray:
        r""":math:`\sum_{i \in g} \text{values}_i` for every cluster :math:`g`: (n, ...) -> (G, ...)."""
        rows = values if presorted else self.sorted_rows(values)
        return np.add.reduceat(rows, self.starts, axis=0)

    def intersect(self, other: "Clusters") -> "Clusters":
        r"""The clusters of the distinct pairs (a, b): the ":math:`A \cap B`" term of two-way clustering."""
        return Clusters.from_labels(self.codes.astype(np.int64) * other.G + other.codes,
                                    f"{self.name} x {other.name}")


def meat_cluster(X: np.ndarray, resid: np.ndarray, clusters: Clusters) -> np.ndarray:
    r"""CR0 meat :math:`M = \sum_g (X_g'e_g)(X_g'e_g)'` (Liang & Zeger 1986; R ``sandwich::meatCL``,
    times :math:`n`).

    The scores :math:`x_i e_i` are summed within clusters in one pass. CR1 multiplies the resulting
    :math:`V` by ``cluster_factor(G) * hc1_factor(N, k)`` (Stata ``vce(cluster)``; sandwich ``vcovCL``
    default).
    """
    S = clusters.sums(X * resid[:, None])
    return S.T @ S


# ----------------------------------------------------------------------------------------------
# bias-reduced linearization: CR2 and CR3


def cluster_gram(U: np.ndarray, clusters: Clusters) -> np.ndarray:
    r""":math:`C_g = U_g'U_g` (G, k, k): the k x k form of the cluster's hat block :math:`H_{gg} = U_g U_g'`.

    :math:`H_{gg}` and :math:`C_g` have the same non-zero eigenvalues :math:`\lambda` (cluster
    leverages, in [0, 1]), so every function of :math:`I - H_{gg}` that CR2/CR3 need is a k x k
    computation (never :math:`n_g \times n_g`). Computed with one reduceat pass per entry.

    References
    ----------
    Bell & McCaffrey (2002); Pustejovsky & Tipton (2018).
    """
    Us = clusters.sorted_rows(U)
    k = U.shape[1]
    C = np.empty((clusters.G, k, k))
    for a in range(k):
        for b in range(a, k):
            C[:, a, b] = C[:, b, a] = clusters.sums(Us[:, a] * Us[:, b], presorted=True)
    return C


def cluster_eigen(C: np.ndarray, clusters: Clusters, kind: str = "CR2"):
    r"""Eigen-decomposition :math:`C_g = W \operatorname{diag}(\lambda) W'` of every cluster's k x k
    hat form, checked.

    A cluster leverage :math:`\lambda = 1` makes :math:`I - H_{gg}` singular, and CR2/CR3 raise
    :class:`~hlmlib.design.InputError` naming the cluster (Bell & McCaffrey 2002 assume
    :math:`I - H_{gg}` positive definite).
    """
    lam, W = np.linalg.eigh(C)
    lam = np.clip(lam, 0.0, None)
    singular = np.flatnonzero(lam[:, -1] >= 1.0 - SINGULAR_TOL)
    if singular.size:
        shown = ", ".join(clusters.label_text(g) for g in singular[:5])
        raise InputError(
            f"{kind} is undefined: I - H_gg is singular for {clusters.name} {shown} "
            f"({singular.size} cluster(s)): the cluster alone determines a combination of the "
            f"coefficients (e.g. a dummy or a regressor non-zero only there); use CR1, or drop that column"
        )
    return lam, W


# the adjustment in U coordinates: U_g'A_g e_g = f(C_g) U_g'e_g, since U'(I - U U')^p = (I - U'U)^p U'
CR_ADJUSTMENTS: dict[str, Callable] = {
    "CR2": lambda lam: (1.0 - lam) ** -0.5,
    "CR3": lambda lam: 1.0 / (1.0 - lam),
}


def meat_cr_adjusted(U: np.ndarray, resid: np.ndarray, clusters: Clusters, kind: str = "CR2",
                     eigen=None) -> np.ndarray:
    r"""CR2/CR3 meat :math:`M = \sum_g U_g' A_g e_g e_g' A_g U_g` in the orthonormal basis
    :math:`U = X R^{-1}`.

    CR2 (Bell & McCaffrey 2002; clubSandwich "CR2" with working model :math:`I`):
    :math:`A_g = (I - H_{gg})^{-1/2}`, the symmetric inverse square root. CR3 (clubSandwich "CR3"):
    :math:`A_g = (I - H_{gg})^{-1}`; since :math:`b - b_{(g)} = (X'X)^{-1} X_g'(I - H_{gg})^{-1} e_g`
    this is :math:`\sum_g (b_{(g)} - b)(b_{(g)} - b)'`, the leave-one-cluster-out jackknife without
    its factor :math:`(G-1)/G` (Efron 1982; MacKinnon & White 1985).

    With :math:`C_g = U_g'U_g = W \operatorname{diag}(\lambda) W'`,
    :math:`U_g'A_g e_g = W \operatorname{diag}(f(\lambda)) W' U_g'e_g`, :math:`f = (1-\lambda)^{-1/2}`
    or :math:`(1-\lambda)^{-1}`: a k x k product per cluster, :math:`O(N k^2 + G k^3)` in all, never
    an :math:`n_g \times n_g` matrix. Map back with :math:`V = R^{-1} M R^{-T}`. A cluster whose
    :math:`I - H_{gg}` is singular raises :class:`~hlmlib.design.InputError` naming it.

    References
    ----------
    Bell & McCaffrey (2002); Pustejovsky & Tipton (2018).
    """
    if kind not in CR_ADJUSTMENTS:
        raise InputError(f"adjusted cluster meat is for CR2 or CR3, not {kind!r}")
    lam, W = eigen if eigen is not None else cluster_eigen(cluster_gram(U, clusters), clusters, kind)
    s = clusters.sums(U * resid[:, None])                                   # U_g'e_g, (G, k)
    in_eigenbasis = np.einsum("gcb,gc->gb", W, s)                          # W'U_g'e_g
    adjusted = np.einsum("gab,gb->ga", W, CR_ADJUSTMENTS[kind](lam) * in_eigenbasis)
    return adjusted.T @ adjusted


# ----------------------------------------------------------------------------------------------
# Bell-McCaffrey / Satterthwaite degrees of freedom for CR2


@dataclass
class Satterthwaite:
    r"""What the CR2 Satterthwaite df of any contrast needs, kept so a contrast never refits.

    With :math:`U = X R^{-1}`, :math:`C_g = U_g'U_g`, :math:`t = R^{-T} c`:
    :math:`d_g = t' C_g (I - C_g)^{-1} t`, :math:`z_g = (I - C_g)^{-1/2} C_g t`, and

    .. math::

       \mathrm{df} = \frac{\left(\sum_g d_g - \sum_g \lVert z_g \rVert^2\right)^2}
       {\sum_g d_g^2 - 2 \sum_g d_g \lVert z_g \rVert^2 + \lVert Z'Z \rVert_F^2}.

    Calling the object with a contrast matrix ``L`` returns :func:`cr2_satterthwaite_df`.
    """

    R_inv: np.ndarray
    B_d: np.ndarray   # C_g (I - C_g)^-1, (G, k, k)
    B_z: np.ndarray   # (I - C_g)^(-1/2) C_g, (G, k, k)

    @classmethod
    def from_eigen(cls, lam: np.ndarray, W: np.ndarray, R_inv: np.ndarray, kind: str = "CR2") -> "Satterthwaite":
        r"""From the eigen-decomposition of the :math:`C_g`: :math:`B_d = C_g f(C_g)^2`,
        :math:`B_z = C_g f(C_g)` with :math:`f` the adjustment of ``kind`` (``CR_ADJUSTMENTS``; 1 for
        CR0/CR1, whose factors do not change df)."""
        def matrix_function(values):
            return np.einsum("gab,gb,gcb->gac", W, values, W)
        f = CR_ADJUSTMENTS[kind](lam) if kind in CR_ADJUSTMENTS else np.ones_like(lam)
        return cls(R_inv=R_inv, B_d=matrix_function(lam * f**2), B_z=matrix_function(lam * f))

    def __call__(self, L: np.ndarray) -> np.ndarray:
        return cr2_satterthwaite_df(self, L)


def cr2_satterthwaite_df(stt: Satterthwaite, L: np.ndarray) -> np.ndarray:
    r"""Bell-McCaffrey/Satterthwaite df of each contrast :math:`c` (rows of ``L``) under CR2.

    .. math::

       \mathrm{df} = \frac{(\operatorname{tr} \Gamma)^2}{\lVert \Gamma \rVert_F^2}, \qquad
       \Gamma_{gh} = p_g'p_h, \qquad p_g = (I - H)_{\cdot, g} A_g X_g M c,

    :math:`M = (X'X)^{-1}`, working model :math:`\Omega = I`.
    :math:`\Gamma_{gh} = \delta_{gh} v_g'v_g - w_g'M w_h` with :math:`v_g = A_g X_g M c`,
    :math:`w_g = X_g'v_g`; in the basis :math:`U`: :math:`v_g'v_g = t'C_g(I - C_g)^{-1} t` and
    :math:`R^{-T} w_g = (I - C_g)^{-1/2} C_g t =: z_g`, :math:`t = R^{-T} c`, so
    :math:`\Gamma = \operatorname{diag}(d) - ZZ'`, and its trace and Frobenius norm need only
    :math:`O(G k^2)` work per contrast, never a G x G or N x N matrix.

    Equals clubSandwich's ``coef_test(..., vcov = "CR2", test = "Satterthwaite")$df_Satt`` (Stata:
    ``reg_sandwich``'s df; Imbens & Kolesar 2016 "BM" df).

    References
    ----------
    Bell & McCaffrey (2002), sec. 3; Pustejovsky & Tipton (2018), eq. 11.
    """
    L = np.atleast_2d(np.asarray(L, dtype=float))
    T = L @ stt.R_inv                                          # rows t_m' = c_m' R^-1, (m, k)
    size = np.abs(T).max(axis=1, keepdims=True)                # df is invariant to c -> a c: keep t of order 1,
    T = T / np.where(size > 0, size, 1.0)                      # so its fourth powers stay in the double range
    d = np.einsum("ma,gab,mb->gm", T, stt.B_d, T)              # (G, m)
    Z = np.einsum("gab,mb->gma", stt.B_z, T)                   # (G, m, k)
    z2 = np.einsum("gma,gma->gm", Z, Z)
    ZtZ = np.einsum("gma,gmb->mab", Z, Z)                      # Z'Z per contrast, (m, k, k)
    trace = d.sum(axis=0) - z2.sum(axis=0)
    frob2 = (d**2).sum(axis=0) - 2 * (d * z2).sum(axis=0) + np.einsum("mab,mab->m", ZtZ, ZtZ)
    return trace**2 / frob2


# ----------------------------------------------------------------------------------------------
# two-way clustering


def correlation_form(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`C = D^{-1/2} S D^{-1/2}` and :math:`d = \operatorname{diag}(S)^{1/2}` for a symmetric :math:`S`: the
    form in which to judge a covariance singular or indefinite, since it does not depend on the units of each
    coefficient or the scale of each contrast (on :math:`S` itself, a direction of small variance is lost below
    the rounding of the large ones). A zero or negative diagonal entry gives :math:`d = 0` there and a zero row
    and column of :math:`C`."""
    S = (S + S.T) / 2
    d = np.sqrt(np.clip(np.diag(S), 0.0, None))
    inv = np.where(d > 0, 1 / np.where(d > 0, d, 1.0), 0.0)
    return S * np.outer(inv, inv), d


def nearest_psd(V: np.ndarray) -> np.ndarray:
    r"""Eigenvalue fix of Cameron, Gelbach & Miller (2011, sec. 2.3): negative eigenvalues set to 0.

    Optional (``fix="psd"`` in :func:`twoway_cluster_vcov`); sandwich's ``vcovCL(fix = TRUE)`` does
    the same.
    """
    lam, W = np.linalg.eigh((V + V.T) / 2)
    return (W * np.clip(lam, 0.0, None)) @ W.T


def twoway_cluster_vcov(X: np.ndarray, resid: np.ndarray, bread_: np.ndarray, first: Clusters,
                        second: Clusters, kind: str = "CR1", k: int | None = None,
                        fix: str | None = None, units: np.ndarray | None = None) -> np.ndarray:
    r"""Two-way cluster-robust covariance (Cameron, Gelbach & Miller 2011).

    .. math::

       V = f_A V_A + f_B V_B - f_{AB} V_{A \cap B},

    each :math:`V_\ast` = ``sandwich(bread, meat_cluster(X, e, clusters))`` for the clusters of A,
    of B, and of the distinct pairs :math:`(a, b)`.

    CR1: :math:`f_\ast = G_\ast/(G_\ast - 1)` each (the intersection's :math:`G` counts the pairs),
    and the sum times :math:`(N-1)/(N-k)`; CR0: all factors 1. This is sandwich's ``vcovCL(m, cluster = ~ a + b, type = "HC1")`` (and reproduces the 0.0536 that
    Petersen's page of test data reports for the firm-and-year standard error of x); Stata's ``cgmreg``/``reghdfe`` use the same
    sum. The sum can fail to be positive semi-definite: then a warning says so, and ``fix="psd"``
    applies the eigenvalue fix of :func:`nearest_psd`. Tests use :math:`t` with
    :math:`\min(G_A, G_B) - 1` df.

    ``units`` (optional): when ``X``, ``resid`` are in scaled units (hlmlib's OLS passes them so), the
    covariance in the data's units is :math:`\operatorname{diag}(u) V \operatorname{diag}(u)`. Whether
    the sum is positive semi-definite does not depend on that scaling (Sylvester's law of inertia): it is
    judged, and the warning reports the smallest eigenvalue, on the unit-free correlation form
    :math:`D^{-1/2} V D^{-1/2}` (:func:`correlation_form`); the warning adds the smallest eigenvalue in the
    data's units when it is resolved there (negative), and the fix is taken in the data's units, as sandwich's
    ``vcovCL(fix = TRUE)``, wherever that covariance is representable in double precision.
    """
    if kind not in ("CR0", "CR1"):
        raise InputError(f"two-way clustering is implemented for CR0 and CR1 (Cameron, Gelbach & Miller "
                         f"2011), not {kind} (CR2/CR3 adjust one cluster dimension's hat blocks)")
    n = X.shape[0]
    k = X.shape[1] if k is None else k
    both = first.intersect(second)
    parts = []
    for clusters in (first, second, both):
        factor = cluster_factor(clusters.G) if kind == "CR1" else 1.0
        parts.append(factor * sandwich(bread_, meat_cluster(X, resid, clusters)))
    V = parts[0] + parts[1] - parts[2]
    if kind == "CR1":
        V = V * hc1_factor(n, k)
    outer = np.ones_like(V) if units is None else np.outer(units, units)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        V_data = outer * V
    in_data_units = bool(np.all(np.isfinite(V_data)) and np.all((V_data != 0) | (V == 0)))
    checked = V_data if in_data_units else V
    lam = np.linalg.eigvalsh((checked + checked.T) / 2)
    # indefinite or not judged on the correlation form: a negative variance of a contrast of coefficients with
    # small variances is below the rounding of the others' on V itself
    rho = np.linalg.eigvalsh(correlation_form(V)[0])
    if np.diag(V).min() < 0 or rho[0] < -1e-12 * max(rho[-1], 1.0):
        # the eigenvalue the decision is made on; in the data's units a negative one can be lost in the rounding
        # of much larger ones (a coefficient in tiny units), and is then not reported
        where = "in the data's units" if in_data_units else "of the internally scaled covariance"
        units_text = (f"; smallest eigenvalue {where} {lam[0]:.3g}" if lam[0] < 0 else
                      f"; in the data's units the negative eigenvalue is below the rounding of the others")
        message = (f"two-way cluster covariance by {first.name} and {second.name} is not positive semi-definite: the "
                   f"smallest eigenvalue of its correlation form D^-1/2 V D^-1/2 (unit-free; the one judged) is "
                   f"{rho[0]:.3g}{units_text}; some contrasts have negative variance")
        if fix == "psd":
            V = nearest_psd(V_data) / outer if in_data_units else nearest_psd(V)
            message += "; the eigenvalue fix (Cameron, Gelbach & Miller 2011) set the negative ones to 0"
        warnings.warn(message, stacklevel=3)
    return V


# ----------------------------------------------------------------------------------------------
# a covariance that knows its degrees of freedom


@dataclass
class Covariance:
    r"""A coefficient covariance with what its tests need: df per contrast and the convention.

    ``df`` is a number (:math:`n-k` for classical/HC; :math:`G-1` for CR0/CR1/CR3;
    :math:`\min(G_A, G_B) - 1` two-way) or, for CR2, ``satterthwaite``, a callable giving the
    Bell-McCaffrey df of each contrast. The idea is clubSandwich's: the covariance carries what the df
    need later, so a contrast never refits.

    ``scaled`` and ``units`` (optional) hold the same covariance as :math:`V = \operatorname{diag}(u)\,
    V_s \operatorname{diag}(u)`, with :math:`V_s` of moderate size: standard errors
    (:meth:`contrast_se`) are computed from them, so they are right even where ``matrix`` itself
    overflows or underflows (a :math:`y` of order 1e200 has variances of order 1e400).
    ``perfect_fit`` marks the covariance of a fit whose residuals are rounding noise: its t statistics
    and p-values are then reported as NaN.
    """

    matrix: np.ndarray
    kind: str
    convention: str
    df: float | None = None
    satterthwaite: Satterthwaite | None = None
    n_clusters: int | tuple | None = None
    cluster_name: str | None = None
    scaled: np.ndarray | None = field(default=None, repr=False)
    units: np.ndarray | None = field(default=None, repr=False)
    perfect_fit: bool = False

    @classmethod
    def in_units(cls, scaled: np.ndarray, units: np.ndarray, kind: str, convention: str, **details) -> "Covariance":
        r"""The covariance :math:`\operatorname{diag}(u)\, V_s \operatorname{diag}(u)` from its scaled form
        (``matrix`` is inf or 0 where an entry leaves the double range)."""
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            matrix = units[:, None] * scaled * units[None, :]
        return cls(matrix, kind, convention, scaled=scaled, units=units, **details)

    @property
    def representable(self) -> bool:
        """Whether ``matrix`` holds every entry of the covariance (none overflowed or underflowed)."""
        if self.scaled is None:
            return True
        lost = ~np.isfinite(self.matrix) | ((np.abs(self.matrix) < np.finfo(float).tiny) & (self.scaled != 0))
        return not lost.any()

    def contrast_variance(self, L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r""":math:`c'Vc` of each row :math:`c` of ``L`` as (factor, v) with :math:`c'Vc = \text{factor}^2 v`,
        both of moderate size even where :math:`c'Vc` leaves the double range."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        if self.scaled is None:
            return np.ones(L.shape[0]), np.einsum("mi,ij,mj->m", L, self.matrix, L)
        with np.errstate(over="ignore", under="ignore"):
            W = L * self.units
        factor = np.abs(W).max(axis=1)
        W = W / np.where(factor > 0, factor, 1.0)[:, None]
        return factor, np.einsum("mi,ij,mj->m", W, self.scaled, W)

    def contrast_se(self, L: np.ndarray) -> np.ndarray:
        r""":math:`\sqrt{c'Vc}` for each row :math:`c` of ``L``; NaN, with a warning, where the covariance is
        not positive semi-definite in that direction."""
        factor, variance = self.contrast_variance(L)
        if np.any(variance < 0):
            warnings.warn("a contrast has negative estimated variance (the covariance is not positive "
                          "semi-definite); its se is reported as NaN", stacklevel=3)
        with np.errstate(over="ignore"):
            return factor * np.sqrt(np.where(variance >= 0, variance, np.nan))

    @property
    def se(self) -> np.ndarray:
        """Standard errors of the coefficients, from the scaled form when there is one."""
        return self.contrast_se(np.eye(self.matrix.shape[0]))

    def df_for(self, L: np.ndarray) -> np.ndarray:
        r"""Degrees of freedom for each row (contrast) of ``L``."""
        L = np.atleast_2d(L)
        if self.satterthwaite is not None:
            return self.satterthwaite(L)
        return np.full(L.shape[0], float(self.df))

    @property
    def df_rule(self) -> str:
        if self.satterthwaite is not None:
            return "Bell-McCaffrey/Satterthwaite df per coefficient or contrast (clubSandwich coef_test)"
        if isinstance(self.n_clusters, tuple):
            return f"df = min(G_A, G_B) - 1 = {self.df:g} (two-way)"
        if self.n_clusters is not None:
            return f"df = G - 1 = {self.df:g}"
        if np.isinf(self.df):
            return "normal (z) reference"
        return f"residual df = {self.df:g}"
