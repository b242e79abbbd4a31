r"""The wild cluster bootstrap of a t test (null imposed, restricted residuals), from per-cluster
cross-products.

Model :math:`y = Xb + u` with clusters :math:`g = 1, \dots, G`; test :math:`H_0\colon c'b = r`
(``term`` picks :math:`c` = a unit vector).

1. Restricted fit: :math:`\tilde b = \hat b - M c\,(c'Mc)^{-1} (c'\hat b - r)`,
   :math:`M = (X'X)^{-1}`; residuals :math:`\tilde u = y - X \tilde b`.
2. Draw cluster weights :math:`v_g` (Rademacher :math:`\pm 1`; Webb's six points
   :math:`\pm\sqrt{1/2}, \pm 1, \pm\sqrt{3/2}`) and build :math:`y^\ast = X \tilde b + v_g \tilde u_g`.
   Its OLS estimate is :math:`b^\ast = \tilde b + M \sum_g v_g s_g`, with :math:`s_g = X_g' \tilde u_g`.
3. :math:`t^\ast = (c'b^\ast - r) / \mathrm{se}_{CR1}(c'b^\ast)`, the same statistic as the sample's
   :math:`t = (c'\hat b - r) / \mathrm{se}_{CR1}(c'\hat b)`.
4. :math:`p` = share of :math:`|t^\ast| \ge |t|` (symmetric test).

Nothing is refitted, and nothing is inverted: everything is written in the orthonormal basis
:math:`U = X R^{-1}` of hlmlib's own least squares (:func:`hlmlib.linalg.least_squares`, the fit
``ols`` makes, refined in extended precision where needed), where :math:`M = (X'X)^{-1}` becomes
:math:`I` and :math:`c` becomes :math:`t = R^{-T} c`. With :math:`s_g = U_g'\tilde u_g` and
:math:`C_g = U_g'U_g`, the numerator is :math:`t' \sum_g v_g s_g` and the CR1 score of cluster
:math:`h` in draw :math:`v` is :math:`v_h t's_h - t'C_h \sum_g v_g s_g`, so each draw costs
:math:`O(Gk)` given the :math:`G` per-cluster cross-products. Both pieces are linear in :math:`r`, so
every :math:`p(r)` after the first is :math:`O(B)`, and the confidence interval is found by inverting
the test (bisection on :math:`r`). The draws are made and used in chunks (``chunk`` draws at a time,
each draw's :math:`G` weights consecutive in the random stream), so the memory is
:math:`O(Nk + G \cdot \text{chunk})` and the results do not depend on the chunk size.

:func:`wild_cluster_bootstrap_mc` runs the same test for ``R`` simulated data sets at once (a Monte Carlo
of the bootstrap): the same algebra with a leading replication axis, each replication's draws taken from
the generator in turn, so that its p-values and intervals are those of :func:`wild_cluster_bootstrap`
called on each replication with the same generator.

With Rademacher weights there are only :math:`2^G` distinct draws; when :math:`2^G \le B` they are
all enumerated (exact p-value over the bootstrap distribution) and ``enumerated`` is True. An
essentially perfect fit (residuals at the rounding level of :math:`y`, e.g. a constant :math:`y`) has
no test: a warning says so and the p-value is NaN.

CR1 here is Stata's factor :math:`G/(G-1) \cdot (N-1)/(N-k)`; it cancels between :math:`t` and
:math:`t^\ast` and does not change :math:`p`.

References
----------
- Cameron, Gelbach & Miller (2008), *Review of Economics and Statistics* 90(3), 414-427.
- Webb (2023), "Reworking wild bootstrap-based inference for clustered errors", *Canadian Journal
  of Economics* 56(3).
- Roodman, MacKinnon, Nielsen & Webb (2019), "Fast and wild: bootstrap inference in Stata using
  boottest", *Stata Journal* 19(1), 4-60 (same algebra; Stata ``boottest``, R ``fwildclusterboot``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .design import (InputError, check_alpha, check_finite_array, check_scalar, formula_data, labels_for,
                     make_design, make_rng, renamed_argument, warn_user)
from .linalg import largest_magnitude, least_squares, power_of_two_scale
from .sandwich import Clusters, cluster_factor, cluster_gram, hc1_factor
from .simulate import _Layout, _by_cluster, _least_squares, _orthogonalize, _stacked_data

__all__ = ["wild_cluster_bootstrap", "WildBootstrapResult", "bootstrap_weights", "wild_cluster_bootstrap_mc",
           "WildBootstrapMC"]

_WEBB = np.sqrt(np.array([0.5, 1.0, 1.5]))
DISTRIBUTIONS = ("rademacher", "webb")
# draws per chunk: G x chunk weights (and two G x chunk work arrays) of about 8 MB each
CHUNK_ENTRIES = 2 ** 20
# data sets per chunk of wild_cluster_bootstrap_mc: G x B x chunk weights of about 2 MB, so that the
# arrays of a chunk stay in cache (larger chunks are several times slower)
MC_CHUNK_ENTRIES = 2 ** 18


def _check_distribution(kind) -> str:
    if kind not in DISTRIBUTIONS:
        raise InputError(f"distribution must be 'rademacher' or 'webb', got {kind!r}")
    return kind


def _enumerates(G: int, B: int, kind: str) -> bool:
    return kind == "rademacher" and G < 31 and 2 ** G <= B


def _draw_chunks(G: int, B: int, kind: str, rng, chunk: int):
    """Blocks of cluster weights, (draws, G), ``chunk`` draws at a time: the 2^G Rademacher sign
    patterns in order when they number at most B, else draws from ``rng``, each draw's G weights
    consecutive in its stream (so the blocks concatenate to the same draws whatever ``chunk``)."""
    if _enumerates(G, B, kind):
        bits = np.arange(G)
        for start in range(0, 2 ** G, chunk):
            patterns = np.arange(start, min(2 ** G, start + chunk))
            yield 2.0 * ((patterns[:, None] >> bits) & 1) - 1.0
        return
    for start in range(0, B, chunk):
        yield _random_weights(G, min(B, start + chunk) - start, kind, rng)


def _random_weights(G: int, draws: int, kind: str, rng) -> np.ndarray:
    """(draws, G) cluster weights from ``rng``, each draw's G weights consecutive in its stream (so that blocks of
    draws concatenate to the draws of one block)."""
    values = np.array([-1.0, 1.0]) if kind == "rademacher" else np.r_[-_WEBB, _WEBB]
    return rng.choice(values, size=(draws, G))


def bootstrap_weights(G: int, B: int, distribution: str = "rademacher", rng=None, *,
                      kind: str | None = None) -> tuple[np.ndarray, bool]:
    r"""A (G, B) matrix of cluster weights and whether it enumerates all :math:`2^G` Rademacher draws:
    the draws :func:`wild_cluster_bootstrap` makes with the same ``rng`` (column b = draw b).

    ``"rademacher"``: :math:`\pm 1` with probability 1/2 each; when :math:`2^G \le B` the :math:`2^G`
    sign patterns are returned instead (columns = every pattern once). ``"webb"``:
    :math:`\pm\sqrt{1/2}, \pm 1, \pm\sqrt{3/2}`, each with probability 1/6. ``G`` and ``B`` are
    positive integers; ``rng`` a seed or a ``np.random.Generator``. ``kind=`` is the deprecated name of
    ``distribution=``.
    """
    G = check_scalar(G, "G", integer=True, minimum=1, maximum=2**31 - 1)     # NumPy's array limit
    B = check_scalar(B, "B", integer=True, minimum=1)
    kind = _check_distribution(renamed_argument("distribution", distribution, "kind", kind, "rademacher"))
    draws = np.concatenate(list(_draw_chunks(G, B, kind, make_rng(rng), max(B, 1))))
    return draws.T, _enumerates(G, B, kind)


@dataclass
class WildBootstrapResult:
    r"""Result of :func:`wild_cluster_bootstrap`; ``ci(level)`` inverts the test.

    Parameters
    ----------
    term : str
        The tested coefficient.
    null : float
        The null value :math:`r`.
    estimate : float
        :math:`c'\hat b`.
    se : float
        Its CR1 standard error.
    tstat : float
        The sample's :math:`t`.
    pvalue : float
        The bootstrap p-value, share of :math:`|t^\ast| \ge |t|` (NaN for an essentially perfect fit).
    tstar : *array* (B,)
        The bootstrap statistics :math:`t^\ast`; ``B`` is their number.
    distribution : str
        The distribution of the cluster weights :math:`v_g`, ``"rademacher"`` or ``"webb"`` (``weights``
        is its deprecated name).
    enumerated : bool
        True when all :math:`2^G` Rademacher draws were used.
    G : int
        The number of clusters.
    """

    term: str
    null: float
    estimate: float
    se: float
    tstat: float
    pvalue: float
    tstar: np.ndarray
    distribution: str
    enumerated: bool
    G: int
    _pieces: dict

    @property
    def B(self) -> int:
        return self.tstar.size

    @property
    def weights(self) -> str:
        """Deprecated name of ``distribution``."""
        warn_user("WildBootstrapResult.weights is deprecated: use .distribution", DeprecationWarning)
        return self.distribution

    def pvalue_at(self, r: float) -> float:
        r"""p-value of :math:`H_0\colon c'b = r` with the same draws (:math:`O(B)` per call); ``r`` finite."""
        return float(_pvalue(self._pieces, np.array([check_scalar(r, "r")]))[0][0])

    def ci(self, level: float = 0.95, tol: float = 1e-9) -> tuple[float, float]:
        r"""Confidence interval :math:`\{r : p(r) > 1 - \text{level}\}`, by bisection on each side of the
        estimate.

        Uses the same draws for every :math:`r`. If :math:`p(r)` never falls to 1 - ``level`` (few
        clusters: with Rademacher weights :math:`p \ge 2/2^G`), that side is infinite and a warning says
        so. ``level`` in (0, 1); ``tol`` (relative to the se) positive. An essentially perfect fit has
        no interval: (NaN, NaN) with a warning.
        """
        alpha = 1 - check_alpha(level, "level")
        tol = check_scalar(tol, "tol", minimum=0, exclusive_minimum=True)
        if self._pieces["perfect_fit"][0]:
            warnings.warn("essentially perfect fit: no bootstrap interval (NaN, NaN)", UserWarning, stacklevel=2)
            return np.nan, np.nan
        low, high, unbounded = _invert_test(self._pieces, alpha, tol)
        for _ in range(int(unbounded.sum())):
            warnings.warn(f"the wild bootstrap p-value does not fall to {alpha:g} on this side "
                          f"(G = {self.G}, B = {self.B}): the {level:.0%} interval is unbounded", stacklevel=2)
        return float(low[0]), float(high[0])

    def __repr__(self) -> str:
        how = f"all {self.B} Rademacher draws (2^{self.G})" if self.enumerated else f"B = {self.B} {self.distribution} draws"
        return (f"Wild cluster bootstrap-t (null imposed, CR1 t), H0: {self.term} = {self.null:g}\n"
                f"  estimate {self.estimate:.6g}, CR1 se {self.se:.6g}, t = {self.tstat:.4f}, "
                f"p = {self.pvalue:.4f}; G = {self.G}, {how}")


def _T(A: np.ndarray) -> np.ndarray:
    return np.swapaxes(A, -1, -2)


def _draw_pieces(V, S0, S1, A, s0, s1) -> dict:
    r"""For draws ``V`` (R, b, G) of the cluster weights of R data sets, the parts of :math:`t^\ast(r)` that
    are linear in r (module docstring), each (R, b): the numerator ``n0 - r n1`` and the CR1 sum of squares
    ``a - 2 r b + r^2 c``. ``S0``, ``S1``, ``A`` (R, G, k); ``s0``, ``s1`` (R, G) their products with t."""
    # K v = diag(S t) v - A (S'v) for S = S0 and S = S1, one row per draw
    K0v = V * s0[:, None] - (V @ S0) @ _T(A)
    K1v = V * s1[:, None] - (V @ S1) @ _T(A)
    n1 = (V @ s1[..., None])[..., 0]
    # a constant draw v = +-1 reproduces the sample (t* = +-t for every r); K1 v is exactly 0 and
    # n1 = v there, so clear their rounding, which would otherwise break the tie at extreme r
    constant = (V == V[..., :1]).all(-1)
    K1v[constant], n1[constant] = 0.0, V[constant][:, 0]
    return {"n0": (V @ s0[..., None])[..., 0], "n1": n1, "a": (K0v ** 2).sum(-1), "b": (K0v * K1v).sum(-1),
            "c": (K1v ** 2).sum(-1)}


def _pvalue(P, r):
    """p-values (R,), t* (R, B) and t (R,) of the data sets of the pieces ``P`` for null values ``r`` (one per data
    set, in the data's units), from the pieces linear in r (see module docstring), which are in the scaled units of
    each fit. NaN for an essentially perfect fit."""
    r = r / P["unit"]
    num = P["n0"] - r[:, None] * P["n1"]
    ss = P["a"] - 2 * r[:, None] * P["b"] + (r * r)[:, None] * P["c"]
    with np.errstate(divide="ignore", invalid="ignore"):
        tstar = num / np.sqrt(P["factor"][:, None] * np.maximum(ss, 0.0))
        t = (P["estimate"] - r) / P["se"]
    # ties within rounding (the draw v = 1 reproduces the sample exactly) count as exceedances
    p = (np.abs(tstar) >= (np.abs(t) * (1 - 1e-10))[:, None]).mean(axis=1)
    perfect = P["perfect_fit"]
    tstar[perfect] = np.nan
    return np.where(perfect, np.nan, p), tstar, np.where(perfect, np.nan, t)


def _share_exceeding(P, r) -> np.ndarray:
    r"""The p-values of :func:`_pvalue` alone, for the data sets of the pieces ``P`` at null values ``r`` (R,):
    :math:`|t^\ast| \ge |t|` compared as squares, :math:`n^2 \ge t^2 f\,ss`, without forming t*."""
    r = r / P["unit"]
    num = P["n0"] - r[:, None] * P["n1"]
    ss = P["a"] - 2 * r[:, None] * P["b"] + (r * r)[:, None] * P["c"]
    bound = ((P["estimate"] - r) / P["se"] * (1 - 1e-10)) ** 2 * P["factor"]
    return (num * num >= bound[:, None] * np.maximum(ss, 0.0)).mean(axis=1)


def _subset(pieces, rows) -> dict:
    return {key: value[rows] for key, value in pieces.items()}


def _invert_test(pieces, alpha: float, tol: float):
    """The interval {r : p(r) > alpha} of every data set, by bisection on each side of its estimate with the
    same draws for every r: lower and upper bounds (R,) (infinite on a side where p never falls to alpha,
    NaN for an essentially perfect fit) and which sides are unbounded (R, 2). All data sets step together; the
    pieces of the data sets still searching are copied out only when their number has halved."""
    unit = pieces["unit"]
    est, se = pieces["estimate"] * unit, pieces["se"] * unit
    live = ~pieces["perfect_fit"]
    bounds, unbounded = np.full((est.size, 2), np.nan), np.zeros((est.size, 2), bool)
    for side, sign in enumerate((-1.0, 1.0)):
        inside, step = est.copy(), se.copy()
        outside = est + sign * step
        rows = np.flatnonzero(live)
        while rows.size:                                    # double the step until the test rejects
            rows = rows[_share_exceeding(_subset(pieces, rows), outside[rows]) > alpha]
            inside[rows], step[rows] = outside[rows], 2 * step[rows]
            outside[rows] = est[rows] + sign * step[rows]
            far = step[rows] > 1e8 * np.maximum(se[rows], 1e-300)
            unbounded[rows[far], side] = True
            rows = rows[~far]
        rows = np.flatnonzero(live & ~unbounded[:, side])
        held, P = rows, _subset(pieces, rows)               # the data sets whose pieces P holds
        while True:                                         # bisect between the last step and the one before
            rows = rows[np.abs(outside[rows] - inside[rows]) > tol * se[rows]]
            if not rows.size:
                break
            if rows.size < held.size / 2:
                held, P = rows, _subset(pieces, rows)
            mid = 0.5 * (inside[held] + outside[held])
            above = _share_exceeding(P, mid) > alpha
            going = np.isin(held, rows, assume_unique=True)
            inside[held[going & above]] = mid[going & above]
            outside[held[going & ~above]] = mid[going & ~above]
        bounds[live, side] = np.where(unbounded[live, side], sign * np.inf, 0.5 * (inside + outside)[live])
    return bounds[:, 0], bounds[:, 1], unbounded


def _term_index(term, names) -> int:
    if isinstance(term, str):
        if term not in names:
            raise InputError(f"term {term!r} is not a column of X; columns are {names}")
        return names.index(term)
    j = check_scalar(term, "term (a column index or name)", integer=True)
    if not 0 <= j < len(names):
        raise InputError(f"term index {term} out of range for {len(names)} columns {names}")
    return j


def wild_cluster_bootstrap(y_or_formula, X=None, data=None, *, cluster, term, null: float = 0.0,
                           B: int = 9999, distribution: str = "rademacher", seed=None,
                           chunk: int | None = None, weights: str | None = None) -> WildBootstrapResult:
    r"""Wild cluster restricted (WCR) bootstrap-t test of :math:`H_0\colon b_\text{term} = \text{null}`,
    and its inverted confidence interval.

    ``wild_cluster_bootstrap("y ~ x", data=df, cluster="firm", term="x")`` or with arrays
    ``wild_cluster_bootstrap(y, X, cluster=labels, term=1)``. The p-value is symmetric, the share of
    :math:`|t^\ast_b| \ge |t|`; :math:`t` uses CR1 (Stata's factor, which cancels) and equals
    ``ols(...).summary("CR1", cluster)``'s t for the same null. See the module docstring for the
    algebra; equivalent to Stata ``boottest x, cluster(firm) weight(rademacher)`` and R
    ``fwildclusterboot::boottest`` with ``impose_null = TRUE``, up to the random draws.

    Parameters
    ----------
    y_or_formula : str or *array*
        A formula such as ``"y ~ x"`` (with ``data``), or the response.
    X : *array* or None
        The design, when ``y_or_formula`` is an array.
    data : *DataFrame* or None
        The data of a formula fit.
    cluster : str or *array*
        A column name or one label per row (a pandas Series is aligned by its index).
    term : str or int
        The tested coefficient: a column name or an integer index (2.0 is 2; 1.7 is refused).
    null : float
        The value under :math:`H_0` (default 0), finite.
    B : int
        The number of bootstrap draws (default 9999), a positive integer.
    distribution : str
        The distribution of the cluster weights :math:`v_g`: ``"rademacher"`` (enumerated when
        :math:`2^G \le B`) or ``"webb"`` (Stata boottest's ``weighttype()``, fwildclusterboot's ``type``).
    seed : int, *Generator* or None
        Seed of ``np.random.default_rng`` (a non-negative integer), or a Generator.
    chunk : int or None
        Draws per block of work (default: about a million weights per block); memory is
        :math:`O(Nk + G \cdot \text{chunk})`, and the result does not depend on it.
    weights : str or None
        Deprecated name of ``distribution`` (read as regression weights, which this is not).

    Returns
    -------
    WildBootstrapResult
        The statistic, the p-value, the draws and ``ci(level)``. An essentially perfect fit warns and
        has p-value NaN.
    """
    X, data = formula_data(y_or_formula, X, data)
    design = make_design(y_or_formula, X, data=data,
                         extra_columns=[cluster] if isinstance(cluster, str) and data is not None else ())
    clusters = Clusters.from_labels(labels_for(cluster, design, "cluster"),
                                    cluster if isinstance(cluster, str) else "cluster")
    G = clusters.G
    if G < 2:
        raise InputError("the wild cluster bootstrap needs at least 2 clusters")
    j = _term_index(term, design.names)
    B = check_scalar(B, "B", integer=True, minimum=1)
    null = check_scalar(null, "null")
    distribution = _check_distribution(renamed_argument("distribution", distribution, "weights", weights, "rademacher"))
    rng = make_rng(seed)
    chunk = max(1, CHUNK_ENTRIES // G) if chunk is None else check_scalar(chunk, "chunk", integer=True, minimum=1)
    fit = least_squares(design.X, design.y, design.names)
    if fit.perfect_fit:
        warnings.warn("essentially perfect fit: the residuals are at the rounding level of y, so there is no "
                      "bootstrap test (p-value NaN)", UserWarning, stacklevel=2)
    n, k = design.n, design.k
    # in the basis U = X R^-1 (scaled units of the fit): M = I, c = e_j becomes t = R_s^-T e_j
    U, resid = fit.U, fit.resid_s
    unit = fit.y_scale / fit.column_scale[j]
    estimate = fit.coef[j] / unit
    t = fit.Rs_inv[j]
    tt = t @ t
    C = cluster_gram(U, clusters)                         # U_g'U_g, (G, k, k)
    S_hat = clusters.sums(U * resid[:, None])             # U_g'u^_g, (G, k)
    A = C @ t                                             # a_h = C_h t
    factor = cluster_factor(G) * hc1_factor(n, k)         # CR1, as in sandwich.py
    se = np.sqrt(factor * ((S_hat @ t) ** 2).sum())
    # restricted residuals u~(r) = u^ + U t (c'b^ - r) / t't, so s_g(r) = U_g'u~_g = S0_g - r S1_g
    S1 = A / tt
    S0 = S_hat + estimate * S1
    s0, s1 = S0 @ t, S1 @ t
    parts = [_draw_pieces(V[None], S0[None], S1[None], A[None], s0[None], s1[None])     # V: (draws, G)
             for V in _draw_chunks(G, B, distribution, rng, chunk)]
    pieces = {key: np.concatenate([part[key] for part in parts], axis=1) for key in parts[0]}
    pieces.update(factor=np.array([factor]), estimate=np.array([estimate]), se=np.array([se]),
                  unit=np.array([unit]), perfect_fit=np.array([fit.perfect_fit]))
    p, tstar, tstat = (value[0] for value in _pvalue(pieces, np.array([null])))
    return WildBootstrapResult(term=design.names[j], null=null, estimate=float(estimate * unit),
                               se=float(se * unit), tstat=float(tstat), pvalue=float(p), tstar=tstar,
                               distribution=distribution, enumerated=_enumerates(G, B, distribution), G=G,
                               _pieces=pieces)


# ----------------------------------------------------------------------------------------------
# R data sets at once: a Monte Carlo of the bootstrap
# ----------------------------------------------------------------------------------------------

@dataclass
class WildBootstrapMC:
    r"""The wild cluster bootstrap of ``R`` data sets, as :func:`wild_cluster_bootstrap_mc` returns it.

    Arrays of length R: ``null`` (the tested values), ``estimate`` (:math:`c'\hat b`), ``se`` (its CR1 standard
    error), ``tstat`` and ``pvalue`` (NaN for an essentially perfect fit); ``B`` draws per data set,
    ``distribution``, ``enumerated`` and ``G`` as in :class:`WildBootstrapResult`. Methods: ``reject(alpha)``,
    ``rejection_rate(alpha)``, ``pvalue_at(r)`` and ``ci(level)``, each for every data set.
    """

    null: np.ndarray
    estimate: np.ndarray
    se: np.ndarray
    tstat: np.ndarray
    pvalue: np.ndarray
    B: int
    distribution: str
    enumerated: bool
    G: int
    _pieces: dict

    @property
    def R(self) -> int:
        return self.pvalue.size

    def reject(self, alpha: float = 0.05) -> np.ndarray:
        """Whether each data set's test rejects at level ``alpha`` (p < alpha); False for a perfect fit."""
        return self.pvalue < check_alpha(alpha)

    def rejection_rate(self, alpha: float = 0.05) -> float:
        """The share of data sets whose test rejects at level ``alpha``, perfect fits left out."""
        return float(self.reject(alpha)[np.isfinite(self.pvalue)].mean())

    def pvalue_at(self, r) -> np.ndarray:
        r"""p-values of :math:`H_0\colon c'b = r` with the same draws: ``r`` a number or one per data set."""
        return _pvalue(self._pieces, _per_data_set(r, "r", self.R))[0]

    def ci(self, level: float = 0.95, tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds (R,) of each data set's interval, as :meth:`WildBootstrapResult.ci`: infinite
        where the p-value never falls to 1 - ``level`` (one warning gives their number), NaN for a perfect fit."""
        alpha = 1 - check_alpha(level, "level")
        tol = check_scalar(tol, "tol", minimum=0, exclusive_minimum=True)
        low, high, unbounded = _invert_test(self._pieces, alpha, tol)
        if unbounded.any():
            warnings.warn(f"the wild bootstrap p-value does not fall to {alpha:g} on one side or both in "
                          f"{int(unbounded.any(1).sum())} of {self.R} data sets (G = {self.G}, B = {self.B}): "
                          f"their {level:.0%} intervals are unbounded", stacklevel=2)
        return low, high


def _per_data_set(values, name: str, R: int) -> np.ndarray:
    """A finite number, or one per data set, as an array (R,); InputError otherwise."""
    values = check_finite_array(values, name, ndim=(0, 1))
    if values.ndim == 1 and values.shape != (R,):
        raise InputError(f"{name} must be a number or one value per data set ({R}), got {values.size} values")
    return np.broadcast_to(values, (R,))


def wild_cluster_bootstrap_mc(X, Y, cluster, *, term, null=0.0, B: int = 199, distribution: str = "rademacher",
                              seed=None, chunk: int | None = None) -> WildBootstrapMC:
    r"""The wild cluster restricted bootstrap-t of :func:`wild_cluster_bootstrap` for ``R`` data sets at once.

    For a Monte Carlo of the bootstrap: data set r is ``(Y[r], X[r])`` (or ``X`` when the regressors are the
    same in every data set) with the clusters ``cluster``, and its test of :math:`H_0\colon b_\text{term} =
    \text{null}` is that of ``wild_cluster_bootstrap(Y[r], X[r], cluster=cluster, term=term, null=null, B=B,
    distribution=distribution, seed=rng)`` called for r = 0, 1, ... in turn with one generator ``rng`` (the draws of
    data set r are taken from the stream after those of data set r - 1): the same p-values, and intervals
    equal to the bisection tolerance. The algebra of the module docstring runs with a leading axis over the
    data sets (batched QR, per-cluster cross-products by size group), chunks of data sets at a time.

    Parameters
    ----------
    X : *array* (n, k) or (R, n, k)
        The regressors, the same in every data set or one design per data set.
    Y : *array* (R, n)
        The responses.
    cluster : *array* (n,)
        Cluster labels, the same in every data set.
    term : int
        The column of X tested.
    null : float or *array* (R,)
        The value under :math:`H_0`, the same for every data set or one each (finite).
    B, distribution, seed
        As :func:`wild_cluster_bootstrap` (default ``B = 199``: :math:`\alpha(B + 1)` is an integer for
        :math:`\alpha` = 0.05 and 0.01).
    chunk : int or None
        Data sets per block of work (default: about 250,000 cluster weights per block, which stay in cache);
        the results do not depend on it.

    Returns
    -------
    WildBootstrapMC
        The estimates, statistics and p-values of every data set, with ``reject``, ``rejection_rate`` and
        ``ci``. Essentially perfect fits get NaN p-values and a warning.
    """
    X, Y = _stacked_data(X, Y)
    R, n = Y.shape
    k = X.shape[-1]
    layout = _Layout(cluster, n)
    G = int(layout.G)
    if G < 2:
        raise InputError("the wild cluster bootstrap needs at least 2 clusters")
    j = _term_index(term, [f"column {i}" for i in range(k)])
    nulls = _per_data_set(null, "null", R)
    B = check_scalar(B, "B", integer=True, minimum=1)
    distribution = _check_distribution(distribution)
    rng = make_rng(seed)
    chunk = max(1, MC_CHUNK_ENTRIES // (B * G)) if chunk is None \
        else check_scalar(chunk, "chunk", integer=True, minimum=1)
    # power-of-two scales (exact): y / s_y and X D^-1, as ols_mc, so that the batched QR sees unit columns
    y_scale = float(power_of_two_scale(np.array([largest_magnitude(Y.ravel())]))[0])
    col_scale = power_of_two_scale(largest_magnitude(X))
    factor = cluster_factor(G) * hc1_factor(n, k)             # CR1, as in sandwich.py
    B_drawn = 2 ** G if _enumerates(G, B, distribution) else B
    parts = []
    for start in range(0, R, chunk):
        rs = slice(start, min(R, start + chunk))
        Q, Rm = _orthogonalize((X[None] if X.ndim == 2 else X[rs]) / col_scale)
        Yc = Y[rs] / y_scale
        _, E, b, perfect = _least_squares(Q, Rm, Yc)
        t = np.linalg.inv(Rm)[:, j, :]                        # c = e_j becomes t = R^-T e_j, (s, k)
        C, S_hat = np.empty((Q.shape[0], G, k, k)), np.empty((Yc.shape[0], G, k))
        for ids, rows in layout.groups:
            Qg = layout.take(Q, rows)                         # (s, G_m, m, k)
            C[:, ids] = _T(Qg) @ Qg                           # U_g'U_g
            S_hat[:, ids] = _by_cluster(layout.take(E, rows), Qg)     # U_g'u^_g
        A = (C @ t[:, None, :, None])[..., 0]                 # a_h = C_h t, (s, G, k)
        estimate = b[:, j]
        se = np.sqrt(factor * ((S_hat @ t[..., None])[..., 0] ** 2).sum(1))
        # restricted residuals u~(r) = u^ + U t (c'b^ - r) / t't, so s_g(r) = U_g'u~_g = S0_g - r S1_g
        S1 = A / (t * t).sum(-1)[:, None, None]
        S0 = S_hat + estimate[:, None, None] * S1
        S1, A, t = (np.broadcast_to(M, (Yc.shape[0],) + M.shape[1:]) for M in (S1, A, t))
        s0, s1 = (S0 @ t[..., None])[..., 0], (S1 @ t[..., None])[..., 0]
        if _enumerates(G, B, distribution):                  # the same 2^G sign patterns for every data set
            V = np.broadcast_to(next(_draw_chunks(G, B, distribution, rng, B_drawn)), (Yc.shape[0], B_drawn, G))
        else:                                                 # data set r's B draws follow those of r - 1
            V = _random_weights(G, Yc.shape[0] * B, distribution, rng).reshape(-1, B, G)
        pieces = _draw_pieces(V, S0, S1, A, s0, s1)
        pieces.update(factor=np.full(Yc.shape[0], factor), estimate=estimate, se=se,
                      unit=np.full(Yc.shape[0], y_scale / col_scale[j]), perfect_fit=perfect)
        parts.append(pieces)
    pieces = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    if pieces["perfect_fit"].any():
        warnings.warn(f"essentially perfect fit in {int(pieces['perfect_fit'].sum())} of {R} data set(s) (residuals "
                      "at the rounding level of y): their p-values are NaN", UserWarning, stacklevel=2)
    p, _, tstat = _pvalue(pieces, nulls)
    unit = pieces["unit"]
    return WildBootstrapMC(null=np.array(nulls, dtype=float), estimate=pieces["estimate"] * unit,
                           se=pieces["se"] * unit, tstat=tstat, pvalue=p, B=pieces["n0"].shape[1],
                           distribution=distribution, enumerated=_enumerates(G, B, distribution), G=G, _pieces=pieces)
