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

from .design import (InputError, check_alpha, check_scalar, formula_data, labels_for, make_design, make_rng,
                     renamed_argument, warn_user)
from .linalg import least_squares
from .sandwich import Clusters, cluster_factor, cluster_gram, hc1_factor

__all__ = ["wild_cluster_bootstrap", "WildBootstrapResult", "bootstrap_weights"]

_WEBB = np.sqrt(np.array([0.5, 1.0, 1.5]))
DISTRIBUTIONS = ("rademacher", "webb")
# draws per chunk: G x chunk weights (and two G x chunk work arrays) of about 8 MB each
CHUNK_ENTRIES = 2 ** 20


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
    values = np.array([-1.0, 1.0]) if kind == "rademacher" else np.r_[-_WEBB, _WEBB]
    for start in range(0, B, chunk):
        yield rng.choice(values, size=(min(B, start + chunk) - start, G))


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
    G = check_scalar(G, "G", integer=True, minimum=1)
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
        return _pvalue(self._pieces, check_scalar(r, "r"))[0]

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
        if self._pieces["perfect_fit"]:
            warnings.warn("essentially perfect fit: no bootstrap interval (NaN, NaN)", UserWarning, stacklevel=2)
            return np.nan, np.nan
        bounds = []
        for sign in (-1.0, 1.0):
            inside, step = self.estimate, self.se
            outside = self.estimate + sign * step
            while self.pvalue_at(outside) > alpha:
                inside, step = outside, step * 2
                outside = self.estimate + sign * step
                if step > 1e8 * max(self.se, 1e-300):
                    warnings.warn(f"the wild bootstrap p-value does not fall to {alpha:g} on this side "
                                  f"(G = {self.G}, B = {self.B}): the {level:.0%} interval is unbounded", stacklevel=2)
                    outside = None
                    break
            if outside is None:
                bounds.append(sign * np.inf)
                continue
            while abs(outside - inside) > tol * self.se:
                mid = 0.5 * (inside + outside)
                if self.pvalue_at(mid) > alpha:
                    inside = mid
                else:
                    outside = mid
            bounds.append(0.5 * (inside + outside))
        return bounds[0], bounds[1]

    def __repr__(self) -> str:
        how = f"all {self.B} Rademacher draws (2^{self.G})" if self.enumerated else f"B = {self.B} {self.distribution} draws"
        return (f"Wild cluster bootstrap-t (null imposed, CR1 t), H0: {self.term} = {self.null:g}\n"
                f"  estimate {self.estimate:.6g}, CR1 se {self.se:.6g}, t = {self.tstat:.4f}, "
                f"p = {self.pvalue:.4f}; G = {self.G}, {how}")


def _pvalue(pieces, r):
    """p-value and t* for null value r (in the data's units), from the pieces linear in r (see module
    docstring), which are in the scaled units of the least-squares fit."""
    r = r / pieces["unit"]
    num = pieces["n0"] - r * pieces["n1"]
    ss = pieces["a"] - 2 * r * pieces["b"] + r * r * pieces["c"]
    with np.errstate(divide="ignore", invalid="ignore"):
        tstar = num / np.sqrt(pieces["factor"] * np.maximum(ss, 0.0))
        t = (pieces["estimate"] - r) / pieces["se"]
    if pieces["perfect_fit"]:
        return np.nan, np.full_like(tstar, np.nan), np.nan
    # ties within rounding (the draw v = 1 reproduces the sample exactly) count as exceedances
    exceed = np.abs(tstar) >= np.abs(t) * (1 - 1e-10)
    return exceed.mean(), tstar, t


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
    parts = {key: [] for key in ("n0", "n1", "a", "b", "c")}
    for V in _draw_chunks(G, B, distribution, rng, chunk):      # V: (draws, G)
        # K v = diag(S t) v - A (S'v) for S = S0 and S = S1, one row per draw
        K0v = V * s0 - (V @ S0) @ A.T
        K1v = V * s1 - (V @ S1) @ A.T
        n1 = V @ s1
        # a constant draw v = +-1 reproduces the sample (t* = +-t for every r); K1 v is exactly 0 and
        # n1 = v there, so clear their rounding, which would otherwise break the tie at extreme r
        constant = (V == V[:, :1]).all(1)
        K1v[constant], n1[constant] = 0.0, V[constant, 0]
        for key, value in (("n0", V @ s0), ("n1", n1), ("a", (K0v ** 2).sum(1)), ("b", (K0v * K1v).sum(1)),
                           ("c", (K1v ** 2).sum(1))):
            parts[key].append(value)
    pieces = {key: np.concatenate(value) for key, value in parts.items()}
    pieces.update(factor=factor, estimate=estimate, se=se, unit=unit, perfect_fit=fit.perfect_fit)
    p, tstar, tstat = _pvalue(pieces, null)
    return WildBootstrapResult(term=design.names[j], null=null, estimate=float(estimate * unit),
                               se=float(se * unit), tstat=float(tstat), pvalue=float(p), tstar=tstar,
                               distribution=distribution, enumerated=_enumerates(G, B, distribution), G=G,
                               _pieces=pieces)
