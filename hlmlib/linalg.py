r"""Least squares by a column-scaled QR decomposition, refined in extended precision when needed.

The normal equations :math:`X'X b = X'y` square the condition number of :math:`X`; a truncated
pseudo-inverse silently drops directions of the data. hlmlib instead

1. scales every column of :math:`X` by a power of two near its norm (exact in binary floating
   point, so the scaled problem has exactly the solution of the original one, and the condition
   number becomes that of the columns' *directions*, not of their units);
2. factors :math:`[X, y] = Q\,[R, Q'y]` by Householder QR, blocked for tall matrices as a "TSQR"
   (each block of ``BLOCK_ROWS`` rows is factored in cache, then the stacked small R factors;
   as stable as one Householder QR: Demmel, Grigori, Hoemmen & Langou 2012), and checks that no
   diagonal element :math:`R_{jj}` is negligible against its column's norm: :math:`|R_{jj}|` is
   the distance of column :math:`j` from the span of the columns before it, so a negligible one
   means column :math:`j` is collinear with them, and the error names the columns and the
   combination;
3. solves :math:`R_s b_s = Q'y`, and when the code's own first-order error bound says double
   precision is not enough (above ``REFINE_ABOVE_ERROR``; see :func:`error_bound`) refines
   :math:`b` and :math:`(X'X)^{-1}` together by Björck's (1967) iterative refinement of the
   augmented system

   .. math::

      \begin{bmatrix} I & X \\ X' & 0 \end{bmatrix}
      \begin{bmatrix} r \\ b \end{bmatrix} = \begin{bmatrix} y \\ 0 \end{bmatrix},

   whose residuals are computed in extended precision (``np.longdouble``, 64-bit mantissa on
   x86-64). Each step gains about :math:`-\log_{10}(\kappa\,\varepsilon)` digits
   (:math:`\kappa` the condition number, :math:`\varepsilon` the machine epsilon), so even NIST's
   Filip (scaled condition number 5e9) converges in a few steps. An ordinary design such as an
   intercept with a calendar year (:math:`\kappa \approx 450`) stays on the fast path.

:math:`y` is scaled by a power of two as well, and everything the covariance estimators need is
kept in these scaled units (``*_s`` attributes), so that :math:`y` and the columns of :math:`X` may
lie anywhere in the double range: :math:`e'e` of a :math:`y` of order 1e200 would overflow, and its
square root, the residual standard deviation, would not.

References
----------
- Björck, Å. (1967), "Iterative refinement of linear least squares solutions I", *BIT* 7, 257-278.
- Golub, G. H. & Van Loan, C. F. (2013), *Matrix Computations*, 4th ed., sec. 5.3.
- Higham, N. J. (2002), *Accuracy and Stability of Numerical Algorithms*, 2nd ed., ch. 20.
- Demmel, J., Grigori, L., Hoemmen, M. & Langou, J. (2012), "Communication-optimal parallel and
  sequential QR and LU factorizations", *SIAM J. Sci. Comput.* 34, A206-A239.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .design import InputError

__all__ = ["LeastSquares", "least_squares", "r_factor", "power_of_two_scale", "check_full_rank",
           "error_bound", "column_norms", "largest_magnitude", "REFINE_ABOVE_ERROR"]

EPS = np.finfo(float).eps
# Refine in extended precision when the first-order error bound of the double-precision solution
# (relative, see error_bound) exceeds this: tables report 4-6 digits and the sandwiches add a few
# roundings of their own, so 1e-10 leaves every reported digit and the peers' tolerances intact.
REFINE_ABOVE_ERROR = 1e-10
# A fit is "essentially perfect" when its residuals are within this many units of rounding of the
# data: ||e|| <= PERFECT_FIT_ULPS * eps * (||y|| + sum_j |b_j| ||x_j||). Exactly linear data leaves
# residuals of about 1-5 such units (the rounding of y and X themselves).
PERFECT_FIT_ULPS = 16
MAX_REFINEMENT_STEPS = 10
# Rows per block of the blocked QR: a 512 x (k+1) block stays in cache, and small enough that
# OpenBLAS does not spread it over threads (which on a busy 2-core machine only adds waiting).
BLOCK_ROWS = 512
BLOCKS_PER_PASS = 64
# Column scales beyond 2^+-400 (1e+-120) make X'X-type products leave the double range: the
# sandwiches then work on the scaled columns X D^-1 instead of X.
EXTREME_SCALE = 2.0 ** 400


@dataclass
class LeastSquares:
    r"""The solution of :math:`\min_b \lVert y - X b \rVert` and the pieces every covariance estimator reuses.

    The factors are kept in scaled units, :math:`X_s = X D^{-1}` and :math:`y_s = y / s_y` (:math:`D`
    and :math:`s_y` powers of two, so the scaling is exact), in which every quantity is of moderate
    size whatever the units of the data; ``R``, ``R_inv``, ``xtx_inv`` and ``rss`` give them back in
    the units of the data (where these overflow or underflow, work with the scaled ones).

    Parameters
    ----------
    coef : *array* (k,)
        The least-squares coefficients :math:`b = s_y D^{-1} b_s`.
    resid : *array* (n,)
        The residuals :math:`e = y - Xb`.
    fitted : *array* (n,)
        The fitted values :math:`Xb`.
    column_scale : *array* (k,)
        :math:`D`, the power-of-two column scales.
    y_scale : float
        :math:`s_y`, the power-of-two scale of :math:`y`.
    Rs : *array* (k, k)
        Upper triangular with :math:`X_s = QR_s`.
    Rs_inv : *array* (k, k)
        :math:`R_s^{-1}`.
    xtx_inv_s : *array* (k, k)
        :math:`(X_s'X_s)^{-1} = R_s^{-1} R_s^{-T}`, refined in extended precision when needed.
    resid_s : *array* (n,)
        :math:`e / s_y`.
    rss_s : float
        :math:`e'e / s_y^2`.
    cond : float
        The 2-norm condition number of :math:`X_s`.
    error_bound : float
        The first-order bound on the relative error of the double-precision solution
        (:func:`error_bound`); refinement ran when it exceeded ``REFINE_ABOVE_ERROR``.
    refinement_steps : int
        0 when double precision sufficed.
    perfect_fit : bool
        The residuals are at the rounding level of the data (``PERFECT_FIT_ULPS``): t statistics and
        p-values of the fit are then rounding noise.
    X : *array* (n, k)
        The design.
    Q : *array* (n, k) or None
        The explicit orthonormal factor of :math:`X_s`, kept only when it was formed (for the
        refinement of an ill-conditioned :math:`X`).
    """

    coef: np.ndarray
    resid: np.ndarray
    fitted: np.ndarray
    column_scale: np.ndarray
    y_scale: float
    Rs: np.ndarray
    Rs_inv: np.ndarray
    xtx_inv_s: np.ndarray
    resid_s: np.ndarray
    rss_s: float
    cond: float
    error_bound: float
    refinement_steps: int
    perfect_fit: bool
    X: np.ndarray
    Q: np.ndarray | None = None

    @property
    def well_conditioned(self) -> bool:
        """Whether double precision sufficed (no refinement), so that :math:`X` and :math:`(X'X)^{-1}` are
        accurate enough to evaluate the sandwiches in."""
        return self.refinement_steps == 0

    @property
    def extreme_scale(self) -> bool:
        """A column scale beyond ``EXTREME_SCALE``: products of two columns may leave the double range."""
        return bool(np.any(np.abs(np.log2(self.column_scale)) > np.log2(EXTREME_SCALE)))

    @property
    def R(self) -> np.ndarray:
        """:math:`R = R_s D` with :math:`X = QR`, in the units of :math:`X`."""
        return self.Rs * self.column_scale

    @property
    def R_inv(self) -> np.ndarray:
        """:math:`R^{-1} = D^{-1} R_s^{-1}`."""
        return self.Rs_inv / self.column_scale[:, None]

    @property
    def xtx_inv(self) -> np.ndarray:
        """:math:`(X'X)^{-1} = D^{-1} (X_s'X_s)^{-1} D^{-1}` (underflows for columns beyond 1e150)."""
        return self.xtx_inv_s / np.outer(self.column_scale, self.column_scale)

    @property
    def rss(self) -> float:
        """:math:`e'e = s_y^2\\, e_s'e_s` (infinite or 0 where it leaves the double range, for a :math:`y`
        beyond about 1e150 or 1e-150: use ``rss_s``)."""
        with np.errstate(over="ignore", under="ignore"):
            return float(np.float64(self.rss_s) * np.float64(self.y_scale) ** 2)

    @cached_property
    def Xs(self) -> np.ndarray:
        """:math:`X_s = X D^{-1}`, the scaled design (an n x k copy, made when asked for)."""
        return self.X / self.column_scale

    @cached_property
    def U(self) -> np.ndarray:
        r"""An orthonormal basis :math:`U = X R^{-1} = X_s R_s^{-1}` of the column space (so the hat matrix
        is :math:`H = UU'`), in which sandwiches with leverages are evaluated.

        The product is orthonormal to about :math:`\kappa\,\varepsilon` (condition number times machine
        epsilon), so for an ill-conditioned :math:`X` the explicit Householder :math:`Q` is used instead.
        (``einsum`` rather than BLAS: a threaded n x k times k x k product waits for busy cores.)
        """
        if self.Q is not None:
            return self.Q
        if self.extreme_scale:
            return np.einsum("ij,jk->ik", self.Xs, self.Rs_inv)
        return np.einsum("ij,jk->ik", self.X, self.R_inv)


def power_of_two_scale(norms: np.ndarray) -> np.ndarray:
    r"""Scale factors :math:`s_j = 2^{\operatorname{round}(\log_2 \lVert x_j \rVert)}` from the column
    norms: dividing by them is exact.

    Column scaling leaves the least-squares solution unchanged (:math:`b_j = b_{s,j} / s_j`) and
    brings the condition number within a factor :math:`\sqrt{k}` of its minimum over column scalings
    (van der Sluis 1969; Higham 2002, sec. 7.3). Householder QR commutes exactly with power-of-two
    column scaling, so the factor of :math:`X D^{-1}` is :math:`R D^{-1}`: the scaling costs no pass
    over the data.
    """
    norms = np.asarray(norms, dtype=float)
    return np.exp2(np.round(np.log2(np.where(norms > 0, norms, 1.0))))


def check_full_rank(R_scaled: np.ndarray, scaled_norms: np.ndarray, names, n: int, scale=None) -> None:
    r"""Raise :class:`~hlmlib.design.InputError` naming the collinear columns if some
    :math:`|R_{jj}|` is negligible.

    :math:`|R_{jj}| / \lVert x_j \rVert` is the sine of the angle between column :math:`j` and the
    span of columns :math:`0, \dots, j-1`. It is negligible below :math:`\max(n, k)\,\varepsilon`
    (the rounding level of a Householder QR, as LAPACK and NumPy's ``matrix_rank`` use); then column
    :math:`j` is (numerically) a linear combination of earlier, independent columns, whose weights are
    found from the small triangular factor (``scale``: the column scales, to report the weights in the
    units of :math:`X`).
    """
    k = R_scaled.shape[1]
    scale = np.ones(k) if scale is None else scale
    tol = max(n, k) * EPS
    ratio = np.abs(np.diag(R_scaled)) / np.where(scaled_norms > 0, scaled_norms, 1.0)
    dependent = [j for j in range(k) if scaled_norms[j] == 0 or ratio[j] <= tol]
    if not dependent:
        return
    messages = []
    for j in dependent:
        if scaled_norms[j] == 0:
            messages.append(f"column {names[j]!r} is all zeros")
            continue
        basis = [i for i in range(j) if i not in dependent]
        # x_j = X_basis w  <=>  R[:, j] = R[:, basis] w, since X = Q R with Q orthonormal
        w = np.linalg.lstsq(R_scaled[: j + 1, basis], R_scaled[: j + 1, j], rcond=None)[0] if basis else np.array([])
        used = [(names[i], wi * scale[j] / scale[i]) for i, wi in zip(basis, w)
                if abs(wi) > 1e-8 * max(1.0, np.abs(w).max())]
        formula = " + ".join(f"{wi:.6g}*{nm}" for nm, wi in used)
        if not used:
            messages.append(f"column {names[j]!r} is numerically zero")
        elif len(used) == 1:
            messages.append(f"column {names[j]!r} duplicates {used[0][0]!r} up to a factor ({names[j]} = {formula})")
        else:
            messages.append(f"column {names[j]!r} is a linear combination of "
                            + ", ".join(repr(nm) for nm, _ in used) + f" ({names[j]} = {formula})")
    raise InputError("X is rank-deficient (collinear columns): " + "; ".join(messages)
                     + ". Drop or combine these columns.")


def _back_substitute(R: np.ndarray, B: np.ndarray) -> np.ndarray:
    """R^-1 B for upper-triangular R. LAPACK's LU finds no pivot to swap below R's zeros, so this is
    back substitution. (Everything here stays in NumPy's LAPACK: when NumPy's and SciPy's BLAS
    alternate, their two thread pools contend, 30x slower for small problems on a busy machine.)"""
    return np.linalg.solve(R, B)


def _augmented_solve(Q, R_inv, f, g):
    """Solve [I X; X' 0][r; b] = [f; g] with X = Q R (Björck 1967): b = R^-1 (Q'f - R^-T g),
    r = f - Q (Q'f - R^-T g). (Products with the triangular R^-1 keep every step in NumPy's BLAS.)"""
    d = Q.T @ f - R_inv.T @ g
    return f - Q @ d, R_inv @ d


def _refine(Xs, y, Q, R_inv, b, xtx_inv):
    """Björck's iterative refinement of b and (X'X)^-1 with residuals in extended precision.

    Both solve the augmented system [I X; X' 0][r; B] = [F; G]: the coefficients with F = y, G = 0,
    the columns of (X'X)^-1 with F = 0, G = -I. The residuals F - r - X B and G - X'r are computed in
    np.longdouble; the corrections reuse the double-precision QR.
    """
    n, k = Xs.shape
    long = np.longdouble
    X_long = Xs.astype(long)
    F = np.zeros((n, k + 1), dtype=long)
    F[:, 0] = y
    G = np.zeros((k, k + 1), dtype=long)
    G[:, 1:] = -np.eye(k)
    B = np.column_stack([b, xtx_inv]).astype(long)
    r = F - X_long @ B
    previous = np.inf
    steps = 0
    for steps in range(1, MAX_REFINEMENT_STEPS + 1):
        f_res = F - r - X_long @ B
        g_res = G - X_long.T @ r
        dr, dB = _augmented_solve(Q, R_inv, f_res.astype(float), g_res.astype(float))
        r += dr
        B += dB
        # relative size of the correction; once it stops halving, the residuals are at the
        # extended-precision noise floor and further steps only stir the last digits
        change = float(np.max(np.abs(dB).max(axis=0) / np.maximum(np.abs(B).max(axis=0), np.finfo(float).tiny)))
        if change <= np.finfo(long).eps or change > previous / 2:
            break
        previous = change
    return B[:, 0], B[:, 1:], r[:, 0], steps


def r_factor(X: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    r"""The triangular factor :math:`R` of :math:`[X, y] = QR` (n >= columns), by a blocked "TSQR".

    The rows are cut into blocks of ``BLOCK_ROWS``; each block's :math:`R_i` comes from a batched
    Householder QR (``np.linalg.qr`` on stacked blocks, ``BLOCKS_PER_PASS`` at a time so that the
    copies stay in cache), and :math:`R` is the R factor of the stacked :math:`R_i`:
    :math:`A'A = \sum_i R_i'R_i = R'R`, without ever forming :math:`A'A`. Backward stable like a
    single Householder QR (Demmel et al. 2012), and faster on tall matrices. Signs of :math:`R`'s
    rows may differ from LAPACK's ``dgeqrf``.
    """
    n = X.shape[0]
    p = X.shape[1] + (y is not None)
    rows = max(BLOCK_ROWS, 4 * p)
    factors = []
    for start in range(0, n, rows * BLOCKS_PER_PASS):
        stop = min(n, start + rows * BLOCKS_PER_PASS)
        chunk = X[start:stop] if y is None else np.column_stack([X[start:stop], y[start:stop]])
        whole = (stop - start) // rows * rows
        if whole:
            factors.append(np.linalg.qr(chunk[:whole].reshape(-1, rows, p), mode="r").reshape(-1, p))
        factors.append(chunk[whole:])
    return np.linalg.qr(np.concatenate(factors), mode="r")


def largest_magnitude(A: np.ndarray) -> np.ndarray:
    """The largest absolute value in each column of ``A`` (each index of its last axis; a number for a
    vector), from the column's max and min: no temporary the size of A, and one 1-D pass per column
    (NumPy's max along axis 0 is many times slower)."""
    if A.ndim == 1:
        return max(A.max(), -A.min()) if A.size else 0.0
    return np.array([max(A[..., j].max(), -A[..., j].min()) if A.size else 0.0 for j in range(A.shape[-1])])


def column_norms(A: np.ndarray) -> np.ndarray:
    r"""Euclidean norms of the columns of ``A``, without overflow or underflow: each column is divided
    by its largest entry first (as LAPACK's ``dnrm2``), so a column of order 1e200 or 1e-200 has its
    norm, not ``inf`` or 0."""
    largest = np.abs(A).max(axis=0)
    safe = np.where(largest > 0, largest, 1.0)
    return largest * np.linalg.norm(A / safe, axis=0)


def error_bound(cond: float, coef: np.ndarray, resid_norm: float, y_norm: float,
                norms: np.ndarray) -> float:
    r"""First-order bound on the relative error of a least-squares solution from a backward-stable QR
    in double precision, in the column-scaled units (:math:`\lVert x_j \rVert \approx 1`).

    .. math::

       \varepsilon \max\Bigl(\kappa^2,\; \kappa + \frac{\lVert y \rVert + \sum_j |b_j| \lVert x_j \rVert}
       {\lVert e \rVert}\Bigr):

    :math:`\varepsilon\kappa^2` bounds the relative error of :math:`(X'X)^{-1}`, and of :math:`b` measured
    against :math:`\lVert b \rVert + \lVert e \rVert / \lVert X \rVert` (Golub & Van Loan 2013, thm
    5.3.1; Higham 2002, thm 20.3); the second term that of the residuals :math:`e`, whose error is
    :math:`\varepsilon (\lVert y \rVert + \lVert X \rVert \lVert b \rVert + \kappa \lVert e \rVert)`
    to first order (and so large, relative to :math:`e`, for a nearly perfect fit). Constants of order
    one; no factor of :math:`n`, whose worst case rounding never meets.
    """
    if resid_norm <= 0:         # an exact fit: its residuals are all rounding (none at all if y = 0)
        return float(EPS * cond ** 2) if y_norm == 0 else np.inf
    return float(EPS * max(cond ** 2, cond + (y_norm + np.abs(coef) @ norms) / resid_norm))


def least_squares(X: np.ndarray, y: np.ndarray, names=None) -> LeastSquares:
    r"""Solve :math:`\min_b \lVert y - X b \rVert_2` by a column-scaled QR, refined in extended
    precision where double precision is not enough.

    Formula: :math:`[X, y] = Q\,[R, Q'y]`, :math:`R_s = R D^{-1}` (:math:`D` = diagonal of power-of-two
    column scales, so that :math:`X D^{-1} = Q R_s` has unit-size columns), :math:`s_y` a power of two
    near :math:`\lVert y \rVert`,

    .. math::

       b = s_y D^{-1} R_s^{-1} Q'y / s_y, \qquad (X'X)^{-1} = D^{-1} R_s^{-1} R_s^{-T} D^{-1}.

    Refinement (Björck 1967) runs when :func:`error_bound` exceeds ``REFINE_ABOVE_ERROR``. Raises
    :class:`~hlmlib.design.InputError` naming collinear columns if :math:`X` is rank-deficient, if
    :math:`X` has no columns or :math:`n \le k`, and if the coefficients' units (units of :math:`y`
    over those of a column) leave the double range. Same estimate as R's ``lm`` (which uses an unscaled
    QR with tolerance 1e-7 and so declares NIST's Filip data rank-deficient), Stata's ``regress`` and
    statsmodels' ``OLS`` (pseudo-inverse by default), to the accuracy of each.

    Returns
    -------
    LeastSquares
        The coefficients, residuals and the factors the covariance estimators reuse, in scaled units.

    References
    ----------
    Björck (1967); Golub & Van Loan (2013), sec. 5.3; Higham (2002), ch. 20.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, k = X.shape
    names = list(names) if names is not None else [f"x{j}" for j in range(k)]
    if k == 0:
        raise InputError("X has no columns: least squares needs at least one regressor")
    if n <= k:
        raise InputError(f"{n} observations but {k} coefficients ({', '.join(names)}): OLS needs n > k")
    # Householder QR is column-wise backward stable, so it runs on the data in its own units; every
    # norm is taken safely, and everything after this is in the scaled units
    R_augmented = r_factor(X, y)                 # [R, Q'y; 0, +-||e||]
    norms = column_norms(R_augmented)            # ||x_j|| = ||R e_j||, and ||y||
    scale = power_of_two_scale(norms[:k])
    y_scale = float(power_of_two_scale(norms[k:])[0])
    with np.errstate(over="ignore", under="ignore"):
        units = y_scale / scale
    outside = ~((units < np.inf) & (units > np.finfo(float).tiny))
    if outside.any():
        j = int(np.flatnonzero(outside)[0])
        raise InputError(f"the coefficient of {names[j]!r} is in units of y over {names[j]!r}, "
                         f"{np.log10(y_scale) - np.log10(scale[j]):.0f} orders of magnitude: outside the double "
                         f"range; rescale y or {names[j]!r} (the fit is equivariant)")
    Rs = R_augmented[:k, :k] / scale             # the factor of X D^-1, exactly
    check_full_rank(Rs, norms[:k] / scale, names, n, scale)
    Rs_inv = _back_substitute(Rs, np.eye(k))
    singular = np.linalg.svd(Rs, compute_uv=False)
    cond = float(singular[0] / singular[-1])
    y_s = y / y_scale
    coef_s = _back_substitute(Rs, R_augmented[:k, k] / y_scale)
    bound = error_bound(cond, coef_s, abs(R_augmented[k, k]) / y_scale, norms[k] / y_scale, norms[:k] / scale)
    Q, steps = None, 0
    if bound <= REFINE_ABOVE_ERROR:
        xtx_inv_s = Rs_inv @ Rs_inv.T
        resid_s = y_s - X @ (coef_s / scale)
        rss_s = float(resid_s @ resid_s)
    else:
        # Björck's refinement needs the explicit Q: factor X_s once more, keeping Q
        Xs = X / scale
        Q, Rs = np.linalg.qr(Xs)
        Rs_inv = _back_substitute(Rs, np.eye(k))
        coef_s, xtx_inv_s, resid_long, steps = _refine(
            Xs, y_s, Q, Rs_inv, _back_substitute(Rs, Q.T @ y_s), Rs_inv @ Rs_inv.T)
        rss_s = float(np.sum(resid_long * resid_long))
        coef_s, xtx_inv_s, resid_s = coef_s.astype(float), xtx_inv_s.astype(float), resid_long.astype(float)
    xtx_inv_s = (xtx_inv_s + xtx_inv_s.T) / 2
    rounding = PERFECT_FIT_ULPS * EPS * (norms[k] / y_scale + np.abs(coef_s) @ (norms[:k] / scale))
    resid = resid_s * y_scale
    return LeastSquares(
        coef=coef_s * units,
        resid=resid,
        fitted=y - resid,
        column_scale=scale,
        y_scale=y_scale,
        Rs=Rs,
        Rs_inv=Rs_inv,
        xtx_inv_s=xtx_inv_s,
        resid_s=resid_s,
        rss_s=rss_s,
        cond=cond,
        error_bound=bound,
        refinement_steps=steps,
        perfect_fit=bool(np.sqrt(rss_s) <= rounding),
        X=X,
        Q=Q,
    )
