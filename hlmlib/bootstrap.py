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

Nothing is refitted: with :math:`q = Mc`, the numerator is :math:`q' \sum_g v_g s_g` and the CR1
score of cluster :math:`h` in draw :math:`v` is :math:`v_h q's_h - q' X_h'X_h M \sum_g v_g s_g`, so
each draw costs :math:`O(Gk)` given the :math:`G` per-cluster cross-products :math:`X_g'X_g` and
:math:`X_g'y_g`. Both pieces are linear in :math:`r`, so every :math:`p(r)` after the first is
:math:`O(B)`, and the confidence interval is found by inverting the test (bisection on :math:`r`).

With Rademacher weights there are only :math:`2^G` distinct draws; when :math:`2^G \le B` they are
all enumerated (exact p-value over the bootstrap distribution) and ``enumerated`` is True.

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

from .design import InputError, labels_for, make_design
from .sandwich import Clusters, cluster_factor, hc1_factor

__all__ = ["wild_cluster_bootstrap", "WildBootstrapResult", "bootstrap_weights"]

_WEBB = np.sqrt(np.array([0.5, 1.0, 1.5]))


def bootstrap_weights(G: int, B: int, kind: str = "rademacher", rng=None) -> tuple[np.ndarray, bool]:
    r"""A (G, B) matrix of cluster weights and whether it enumerates all :math:`2^G` Rademacher draws.

    ``"rademacher"``: :math:`\pm 1` with probability 1/2 each; when :math:`2^G \le B` the :math:`2^G`
    sign patterns are returned instead (columns = every pattern once). ``"webb"``:
    :math:`\pm\sqrt{1/2}, \pm 1, \pm\sqrt{3/2}`, each with probability 1/6.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if kind == "rademacher":
        if G < 31 and 2 ** G <= B:
            patterns = np.arange(2 ** G)
            bits = (patterns[None, :] >> np.arange(G)[:, None]) & 1
            return 2.0 * bits - 1.0, True
        return rng.choice(np.array([-1.0, 1.0]), size=(G, B)), False
    if kind == "webb":
        return rng.choice(np.r_[-_WEBB, _WEBB], size=(G, B)), False
    raise InputError(f"weights must be 'rademacher' or 'webb', got {kind!r}")


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
        The bootstrap p-value, share of :math:`|t^\ast| \ge |t|`.
    tstar : *array* (B,)
        The bootstrap statistics :math:`t^\ast`; ``B`` is their number.
    weights : str
        ``"rademacher"`` or ``"webb"``.
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
    weights: str
    enumerated: bool
    G: int
    _pieces: dict

    @property
    def B(self) -> int:
        return self.tstar.size

    def pvalue_at(self, r: float) -> float:
        r"""p-value of :math:`H_0\colon c'b = r` with the same draws (:math:`O(B)` per call)."""
        return _pvalue(self._pieces, r)[0]

    def ci(self, level: float = 0.95, tol: float = 1e-9) -> tuple[float, float]:
        r"""Confidence interval :math:`\{r : p(r) > 1 - \text{level}\}`, by bisection on each side of the
        estimate.

        Uses the same draws for every :math:`r`. If :math:`p(r)` never falls to 1 - ``level`` (few
        clusters: with Rademacher weights :math:`p \ge 2/2^G`), that side is infinite and a warning says
        so.
        """
        alpha = 1 - level
        if not 0 < alpha < 1:
            raise InputError(f"level must be in (0, 1), got {level}")
        bounds = []
        for sign in (-1.0, 1.0):
            inside, step = self.estimate, self.se
            outside = self.estimate + sign * step
            while self.pvalue_at(outside) > alpha:
                inside, step = outside, step * 2
                outside = self.estimate + sign * step
                if step > 1e8 * max(self.se, 1e-300):
                    warnings.warn(f"the wild bootstrap p-value does not fall to {alpha} on this side "
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
        how = f"all {self.B} Rademacher draws (2^{self.G})" if self.enumerated else f"B = {self.B} {self.weights} draws"
        return (f"Wild cluster bootstrap-t (null imposed, CR1 t), H0: {self.term} = {self.null:g}\n"
                f"  estimate {self.estimate:.6g}, CR1 se {self.se:.6g}, t = {self.tstat:.4f}, "
                f"p = {self.pvalue:.4f}; G = {self.G}, {how}")


def _pvalue(pieces, r):
    """p-value and t* for null value r, from the pieces linear in r (see module docstring)."""
    num = pieces["n0"] - r * pieces["n1"]
    ss = pieces["a"] - 2 * r * pieces["b"] + r * r * pieces["c"]
    tstar = num / np.sqrt(pieces["factor"] * np.maximum(ss, 0.0))
    t = (pieces["estimate"] - r) / pieces["se"]
    # ties within rounding (the draw v = 1 reproduces the sample exactly) count as exceedances
    exceed = np.abs(tstar) >= np.abs(t) * (1 - 1e-10)
    return exceed.mean(), tstar, t


def wild_cluster_bootstrap(y_or_formula, X=None, data=None, *, cluster, term, null: float = 0.0,
                           B: int = 9999, weights: str = "rademacher", seed=None) -> WildBootstrapResult:
    r"""Wild cluster restricted (WCR) bootstrap-t test of :math:`H_0\colon b_\text{term} = \text{null}`,
    and its inverted confidence interval.

    ``wild_cluster_bootstrap("y ~ x", data=df, cluster="firm", term="x")`` or with arrays
    ``wild_cluster_bootstrap(y, X, cluster=labels, term=1)``. The p-value is symmetric, the share of
    :math:`|t^\ast_b| \ge |t|`; :math:`t` uses CR1 (Stata's factor, which cancels). See the module
    docstring for the algebra; equivalent to Stata ``boottest x, cluster(firm) weight(rademacher)`` and
    R ``fwildclusterboot::boottest`` with ``impose_null = TRUE``, up to the random draws.

    Parameters
    ----------
    y_or_formula : str or *array*
        A formula such as ``"y ~ x"`` (with ``data``), or the response.
    X : *array* or None
        The design, when ``y_or_formula`` is an array.
    data : *DataFrame* or None
        The data of a formula fit.
    cluster : str or *array*
        A column name or one label per row.
    term : str or int
        The tested coefficient: a column name or index.
    null : float
        The value under :math:`H_0` (default 0).
    B : int
        The number of bootstrap draws (default 9999).
    weights : str
        ``"rademacher"`` (enumerated when :math:`2^G \le B`) or ``"webb"``.
    seed : int, *Generator* or None
        Seed of ``np.random.default_rng``.

    Returns
    -------
    WildBootstrapResult
        The statistic, the p-value, the draws and ``ci(level)``.
    """
    design = make_design(y_or_formula, X, data=data,
                         extra_columns=[cluster] if isinstance(cluster, str) and data is not None else ())
    clusters = Clusters.from_labels(labels_for(cluster, design, "cluster"))
    G = clusters.G
    if G < 2:
        raise InputError("the wild cluster bootstrap needs at least 2 clusters")
    if isinstance(term, str):
        if term not in design.names:
            raise InputError(f"term {term!r} is not a column of X; columns are {design.names}")
        j = design.names.index(term)
    else:
        j = int(term)
        if not 0 <= j < design.k:
            raise InputError(f"term index {term} out of range for {design.k} columns")
    if int(B) < 1:
        raise InputError(f"B must be a positive number of draws, got {B}")
    y, Xm, n, k = design.y, design.X, design.n, design.k
    # per-cluster cross-products, one pass over the data
    XtX_g = clusters.sums(Xm[:, :, None] * Xm[:, None, :])
    Xty_g = clusters.sums(Xm * y[:, None])
    XtX = XtX_g.sum(0)
    if np.linalg.matrix_rank(XtX) < k:
        raise InputError(f"X is rank deficient: columns {design.names} are collinear")
    M = np.linalg.inv(XtX)
    beta = M @ Xty_g.sum(0)
    q = M[:, j]                                           # M c with c = e_j
    factor = cluster_factor(G) * hc1_factor(n, k)         # CR1, as in sandwich.py
    scores = (Xty_g - XtX_g @ beta) @ q                   # c'M X_g'u^_g
    se = np.sqrt(factor * (scores ** 2).sum())
    # restricted fit b~(r) = b0 + r d: s_g(r) = X_g'u~_g = S0_g - r X_g'X_g d
    d = q / q[j]
    S0 = Xty_g - XtX_g @ (beta - d * beta[j])
    S1 = XtX_g @ d
    A = XtX_g @ q                                         # a_h = X_h'X_h q
    V, enumerated = bootstrap_weights(G, int(B), weights, seed)
    # K v = diag(S q) v - A M S'v for S = S0 and S = S1 (draws in columns)
    K0v = (S0 @ q)[:, None] * V - A @ (M @ (S0.T @ V))
    K1v = (S1 @ q)[:, None] * V - A @ (M @ (S1.T @ V))
    n1 = (S1 @ q) @ V
    # a constant draw v = +-1 reproduces the sample (t* = +-t for every r); K1 v is exactly 0 and
    # n1 = v there, so clear their rounding, which would otherwise break the tie at extreme r
    constant = (V == V[:1]).all(0)
    K1v[:, constant], n1[constant] = 0.0, V[0, constant]
    pieces = dict(n0=(S0 @ q) @ V, n1=n1, a=(K0v ** 2).sum(0), b=(K0v * K1v).sum(0),
                  c=(K1v ** 2).sum(0), factor=factor, estimate=beta[j], se=se)
    p, tstar, t = _pvalue(pieces, null)
    return WildBootstrapResult(term=design.names[j], null=float(null), estimate=float(beta[j]), se=float(se),
                               tstat=float(t), pvalue=float(p), tstar=tstar, weights=weights,
                               enumerated=enumerated, G=G, _pieces=pieces)
