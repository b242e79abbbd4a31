r"""Profile-likelihood confidence intervals for the variance components of a mixed model (lme4's
``confint(m, method = "profile")``).

The parameters are lme4's, on the standard-deviation scale: for the random effects :math:`b_j \sim N(0, C)`,
:math:`C = \sigma^2 \Lambda\Lambda'`, the standard deviations :math:`\sqrt{C_{aa}}` and correlations
:math:`C_{ab}/\sqrt{C_{aa} C_{bb}}` in the order of :math:`\theta` (lower triangle column by column:
``.sig01`` = sd of the first random effect, ``.sig02`` = its correlation with the second, ...), then
``.sigma`` = :math:`\sigma`. For a parameter :math:`\psi` the profile deviance is the deviance minimised
over everything else with :math:`\psi` held fixed,

.. math::

   d_\text{prof}(\psi) = \min_{\text{others}} d(\Lambda, \sigma^2), \qquad
   \zeta(\psi) = \operatorname{sign}(\psi - \hat\psi) \sqrt{d_\text{prof}(\psi) - d(\hat\Lambda, \hat\sigma^2)},

with :math:`d` lme4's ``devfun2``, :func:`hlmlib.lmm_objective.deviance_at_sigma2` (:math:`\beta` profiled
out). The :math:`1 - \alpha` interval is :math:`\{\psi : |\zeta(\psi)| \le z_{1 - \alpha/2}\}`
(Bates et al. 2015, sec. 5.1; Pinheiro & Bates 2000, sec. 2.4); as lme4, an end that the profile does not
reach before the parameter's bound is that bound (0 for a standard deviation, :math:`\pm 1` for a
correlation).

How. To hold :math:`\psi` fixed with box constraints only, the random effects are reordered (the deviance
does not depend on their order) and :math:`C = K K'` is written through its Cholesky factor :math:`K` in that
order: a standard deviation put first is :math:`K_{11}`; a correlation between the first two is fixed by
:math:`(K_{21}, K_{22}) = m (\rho, \sqrt{1 - \rho^2})`, :math:`m \ge 0`; :math:`\sigma` is fixed as itself. The
other entries of :math:`K` and :math:`\sigma` are free (diagonal of :math:`K` :math:`\ge 0`) and the deviance and
its analytic gradient (:func:`hlmlib.lmm_objective.gradient_wrt_T` at a given :math:`\sigma^2`) go to
L-BFGS-B. A fixed effect :math:`\beta_k` is profiled by refitting :math:`y - x_k \beta_k` on the other columns
by ML (``hlmlib.mixed.fit_theta``).

Starts. The deviance in the other parameters is not convex: it can have several local minima (one with a
variance at 0 or a correlation at :math:`\pm 1`, another inside or across that boundary), and when the fit is
singular the one a warm start follows can be the higher. At every point of a profile the inner minimisation
therefore starts from the previous point's solution and from the estimate (for a fixed effect also from the
moment start) and keeps the lowest deviance (:class:`ProfileTrace`). When the estimate is singular (a diagonal
element of :math:`\Lambda` below lme4's ``isSingular`` tolerance, on unit-scaled :math:`Z`) or the previous
point's solution is, it also starts from points on the other side of the boundary: the moment start, the
estimate with its correlations' signs flipped (:math:`DTD` for every sign matrix
:math:`D = \operatorname{diag}(1, \pm 1, \dots)`) and ``N_GLOBAL`` random covariances from
``np.random.default_rng(SEED)`` (the same at every point, so the profile is one function of :math:`\psi`).

Ends. Each end is found by stepping out from :math:`\hat\psi` (secant steps on :math:`\zeta`) until
:math:`\zeta` crosses :math:`\pm z`, then by Brent's method to :math:`10^{-10}` relative, where lme4 interpolates
a spline through profile points :math:`\approx 0.6` apart in :math:`\zeta` (``delta.cutoff = 1/8``), which moves
its ends by up to about :math:`10^{-4}` relative. The deviance at the end so found is then minimised again from
those starts and ``N_CHECK`` more random ones; if that is lower, the profile was too high there and the end too
early: the lower solution joins the starts and the search goes on outward.

What is guaranteed. Each end returned is a root of the profile so computed (the lowest of these local minima
at each point), or the parameter's bound, and at it no check start found a lower deviance. That is not a proof
that the minimum is global: a minimum that none of the starts reaches would be missed and the interval would
be too short. A singular fit, where this can happen, is reported by a ``UserWarning`` naming the standard
deviations at 0 and correlations at :math:`\pm 1` (lme4's ``profile`` stops with an error on such fits).

Conventions. lme4 profiles the ML deviance even for a REML fit (``devfun2`` calls ``refitML``); so does
``criterion="ML"`` (the default) here, centring the intervals on the ML estimates. ``criterion="REML"``
profiles the REML criterion of a REML fit instead (not in lme4).

References
----------
- Bates, Maechler, Bolker & Walker (2015), Fitting linear mixed-effects models using lme4,
  *J. Stat. Softw.* 67(1), sec. 5.1.
- Pinheiro & Bates (2000), *Mixed-Effects Models in S and S-PLUS*, Springer, sec. 2.4.
"""
from __future__ import annotations

import itertools
import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .design import InputError
from .lmm_objective import (CrossProducts, blocked_cholesky, deviance_at_sigma2, gradient_wrt_T,
                            lower_triangle, profiled_deviance, theta_of)

__all__ = ["profile_confint", "variance_parameters", "ProfileTrace", "check_level"]

XTOL = 1e-10          # relative accuracy of each end of the interval
N_GLOBAL, N_CHECK, SEED = 3, 3, 20261206   # random starts at every point (when singular), at each end; their seed


def check_level(level) -> float:
    """A confidence level strictly between 0 and 1, as a float; InputError otherwise."""
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise InputError(f"level must be a number strictly between 0 and 1 (e.g. 0.95), got {level!r}")
    return float(level)


def _tril_positions(q: int) -> list[tuple[int, int]]:
    """(row, column) of each element of theta, column by column (lme4's order)."""
    return [(r, c) for c in range(q) for r in range(c, q)]


def variance_parameters(theta: np.ndarray, sigma: float, names: list[str]) -> pd.DataFrame:
    r"""lme4's standard-deviation-scale parameters (``.sig01``, ..., ``.sigma``) of :math:`\theta` and
    :math:`\sigma`: a frame with the readable ``parameter`` name and ``estimate`` (NaN for a correlation
    with a zero standard deviation)."""
    q = len(names)
    K = sigma * lower_triangle(theta, q)
    C = K @ K.T
    sd = np.sqrt(np.diag(C))
    rows, labels = [], []
    for r, c in _tril_positions(q):
        if r == c:
            labels.append(f"sd({names[r]})")
            rows.append(sd[r])
        else:
            labels.append(f"cor({names[c]},{names[r]})")
            rows.append(C[r, c] / (sd[r] * sd[c]) if sd[r] > 0 and sd[c] > 0 else np.nan)
    labels.append("sigma")
    rows.append(sigma)
    index = [f".sig{i + 1:02d}" for i in range(len(rows) - 1)] + [".sigma"]
    return pd.DataFrame({"parameter": labels, "estimate": rows}, index=index)


@dataclass
class _Constrained:
    r"""The deviance as a function of the free parameters ``v`` when one parameter is held at ``value``.

    ``cp`` has the random effects reordered so that the parameter sits in the first row(s) of :math:`K`
    (module docstring); the theta-order entries of :math:`K` are
    ``A @ v[:n_K] + k0`` (a linear map: fixed entries in ``k0``), and :math:`\sigma` is ``v[-1]`` or,
    when profiling :math:`\sigma`, ``sigma_fixed``. Everything is in units of the estimate of :math:`\sigma`
    (``unit``), so that the optimiser sees numbers near 1.
    """

    cp: CrossProducts
    reml: bool
    A: np.ndarray
    k0: np.ndarray
    sigma_fixed: float | None
    lower: np.ndarray
    unit: float

    def split(self, v: np.ndarray) -> tuple[np.ndarray, float]:
        n_K = self.A.shape[1]
        k = self.A @ v[:n_K] + self.k0
        sigma = self.sigma_fixed if self.sigma_fixed is not None else v[n_K]
        return k * self.unit, sigma * self.unit

    def __call__(self, v: np.ndarray) -> tuple[float, np.ndarray]:
        k, sigma = self.split(v)
        if not sigma > 0:
            return np.inf, np.zeros_like(v)
        theta, sigma2 = k / sigma, sigma ** 2
        try:
            fac = blocked_cholesky(theta, self.cp)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(v)
        dev = deviance_at_sigma2(fac, self.cp, sigma2, self.reml)
        d_theta = theta_of(2 * gradient_wrt_T(fac, self.cp, self.reml, sigma2=sigma2) @ fac.Lam)
        dof = self.cp.N - self.cp.p if self.reml else self.cp.N
        d_sigma2 = dof / sigma2 - fac.pwrss / sigma2 ** 2
        d_k = d_theta / sigma                                             # theta = k / sigma
        grad = self.A.T @ d_k
        if self.sigma_fixed is None:
            grad = np.r_[grad, -(d_theta @ k) / sigma ** 2 + 2 * sigma * d_sigma2]
        return float(dev), grad * self.unit

    def scale_at(self, v0: np.ndarray) -> np.ndarray:
        """1/sqrt of the deviance's curvature in each variable at ``v0`` (differences of the gradient)."""
        g0 = self(v0)[1]
        step = 1e-6 * np.maximum(np.abs(v0), 1e-3)
        curvature = np.array([(self(v0 + step[i] * np.eye(v0.size)[i])[1][i] - g0[i]) / step[i]
                              for i in range(v0.size)])
        return np.where(curvature > 0, 1 / np.sqrt(np.abs(curvature)), 1.0)

    def minimise(self, v0: np.ndarray, scale: np.ndarray) -> tuple[float, np.ndarray]:
        """L-BFGS-B from ``v0``, on variables scaled by ``scale`` (:meth:`scale_at`): sigma's curvature is
        about 2N, the others' about J, and unscaled the line search stalls far from the minimum. The
        deviance is taken relative to its start, so the stopping rule is on the gradient (in those units)
        alone."""
        v0 = np.maximum(v0, self.lower)
        f0 = self(v0)[0]

        def scaled(u):
            f, g = self(u * scale)
            return f - f0, g * scale

        out = optimize.minimize(scaled, v0 / scale, jac=True, method="L-BFGS-B",
                                bounds=[(lo / s, None) for lo, s in zip(self.lower, scale)],
                                options=dict(ftol=0.0, gtol=1e-9, maxiter=2000, maxfun=10000))
        return float(out.fun + f0), out.x * scale


class ProfileTrace:
    r"""The profile of one parameter: ``zeta(value)`` and every point evaluated (``points``: value -> zeta).

    ``minimise(value, start) -> (deviance, solution)`` minimises the deviance with the parameter held at
    ``value`` from ``start``. Each point is minimised from the previous point's solution and from every one
    of ``starts`` (the estimate; for a fixed effect also ``None``, the moment start), keeping the lowest
    deviance: the deviance in the other parameters can have several minima (one with a variance at 0 or a
    correlation at +-1, one inside or across that boundary), and a single warm start can stay on the higher
    one and make the profile too high and the interval too short. When the estimate is singular
    (``singular_estimate``) or the previous point's solution is (``on_boundary(value, solution)``), the starts
    ``global_starts`` are added: starts on the other side of the boundary (moment start, correlations' signs
    flipped, seeded random covariances). The profile is the lowest of these local minima at every point.

    :meth:`end` then re-minimises at each end from ``check_starts`` (more, spread-out starts); a lower deviance
    there means the profile was too high, and the search continues outward from that solution.
    """

    def __init__(self, name: str, estimate: float, base: float, minimise, starts, global_starts=(),
                 check_starts=(), singular_estimate: bool = False, on_boundary=lambda value, solution: False):
        self.name, self.estimate, self.base = name, estimate, base
        self._minimise, self._starts = minimise, list(starts)
        self._global, self._check = list(global_starts), list(check_starts)
        self._singular, self._on_boundary = singular_estimate, on_boundary
        self.points: dict[float, float] = {}
        self.continued = 0                      # how often an end's check found a lower deviance
        self._last = None

    def _best(self, value: float, starts) -> tuple[float, object]:
        return min((self._minimise(value, start) for start in starts), key=lambda fit: fit[0])

    def zeta(self, value: float) -> float:
        if float(value) in self.points:         # Brent's method re-evaluates the bracket's ends
            return self.points[float(value)]
        starts = self._starts if self._last is None else [self._last[1]] + self._starts
        if self._singular or (self._last is not None and self._on_boundary(*self._last)):
            starts = starts + self._global
        dev, solution = self._best(value, starts)
        self._last = (value, solution)
        return self._record(value, dev)

    def _record(self, value: float, dev: float) -> float:
        if dev < self.base - 1e-6:
            warnings.warn(f"profiling {self.name} found a lower deviance ({dev:.8f} < {self.base:.8f}): the fit "
                          "was not at its optimum", RuntimeWarning, stacklevel=5)
        z = float(np.sign(value - self.estimate) * np.sqrt(max(dev - self.base, 0.0)))
        self.points[float(value)] = z
        return z

    def end(self, target: float, bound: float, first_step: float) -> float:
        """The value where zeta crosses ``target`` on the side of ``bound``, or ``bound`` if it does not.

        ``_search`` finds the crossing; the deviance there is then minimised from ``check_starts``. If that
        is lower (by more than 1e-6) than the profile's, the crossing is not the end: the solution found joins
        the starts, the points beyond are forgotten and the search goes on outward from there (at most 20
        times, then a RuntimeWarning)."""
        self._last = None
        if self.estimate == bound:
            return bound
        x_from, z_from = self.estimate, 0.0
        for _ in range(20):
            root = self._search(target, bound, first_step, x_from, z_from)
            if root == bound or not self._check:
                return root
            dev, solution = self._best(root, self._check)
            if not dev < self.base + self.points[float(root)] ** 2 - 1e-6:
                return root
            self.continued += 1
            self._starts.append(solution)
            side = np.sign(target)
            self.points = {x: z for x, z in self.points.items() if side * (x - root) < 0}
            self._last = (root, solution)
            x_from, z_from = root, self._record(root, dev)
        warnings.warn(f"the profile of {self.name} kept finding lower deviances near {root:.6g}: the interval "
                      "may be too short", RuntimeWarning, stacklevel=3)
        return root

    def _search(self, target: float, bound: float, first_step: float, x_from: float, z_from: float) -> float:
        """Steps out from ``x_from`` (where zeta is ``z_from``; first ``first_step``, then secant steps on zeta
        to 2% past ``target``, at most 100 times the previous step; doubled where the profile is flat) until
        zeta crosses ``target``, then Brent's method to XTOL relative."""
        side = np.sign(target)
        x_prev, z_prev = x_from, z_from
        step = first_step if x_from == self.estimate else max(first_step, 0.05 * abs(x_from - self.estimate))
        for _ in range(200):
            x = x_prev + side * step
            x = min(x, bound) if side > 0 else max(x, bound)
            z = self.zeta(x)
            if side * z >= side * target:
                lo, hi = sorted((x_prev, x))
                return optimize.brentq(lambda t: self.zeta(t) - target, lo, hi,
                                       xtol=XTOL * max(abs(x), first_step), rtol=1e-15)
            if x == bound:
                return bound
            rise = side * (z - z_prev)
            if rise < -1e-3:
                warnings.warn(f"the profile of {self.name} decreases away from the estimate near {x:.6g} "
                              "(an optimisation may have failed)", RuntimeWarning, stacklevel=4)
            if rise <= 1e-8:                                  # flat: widen the step
                step = 2 * abs(x - x_prev)
            else:                                             # secant, 2% past the target to bracket it
                step = min(1.02 * abs((target - z) * (x - x_prev) / (z - z_prev)), 100 * abs(x - x_prev))
            x_prev, z_prev = x, z
        raise RuntimeError(f"could not bracket the {target:+.3g} crossing of the profile of {self.name}")


def _variance_profile(cp: CrossProducts, reml: bool, theta: np.ndarray, sigma: float, index: int,
                      z_scale: np.ndarray):
    """For variance parameter ``index`` (theta order; len(theta) means sigma): ``minimise(value, start)`` for
    :class:`ProfileTrace`, ``start_at(theta, s)``, the start for the covariance of theta (model order) and residual
    sd ``s``, and ``on_boundary(value, solution)``. ``cp`` and ``theta`` are for Z's columns scaled by ``1 / z_scale``
    (unit root mean square), ``value`` is in the units of the original Z: a standard deviation of random effect r
    is ``z_scale[r]`` times larger for the scaled column."""
    q = cp.q
    positions = _tril_positions(q)
    n_theta = len(positions)
    if index == n_theta:
        kind, order = "sigma", np.arange(q)
    else:
        r, c = positions[index]
        kind = "sd" if r == c else "cor"
        first = [c] if r == c else [c, r]
        order = np.r_[first, [a for a in range(q) if a not in first]].astype(int)
    columns = np.r_[order, np.arange(q, cp.ZtZW.shape[2])]
    reordered = CrossProducts(ZtZW=cp.ZtZW[:, order][:, :, columns], WtW=cp.WtW, n_obs=cp.n_obs)
    diagonal = np.array([r == c for r, c in positions])
    lower_K = np.where(diagonal, 0.0, -np.inf)
    identity = np.eye(n_theta)
    if kind == "sigma":                          # K free, sigma fixed
        A, lower = identity, lower_K
    elif kind == "sd":                           # K_11 fixed, the rest and sigma free
        A, lower = identity[:, 1:], np.r_[lower_K[1:], 1e-8]
    else:                                        # (K_21, K_22) = m (rho, sqrt(1 - rho^2)): theta positions 1, q
        A = np.delete(identity, q, axis=1)
        lower = np.r_[np.delete(lower_K, q), 1e-8]
        lower[1] = 0.0

    def start_at(theta_start, s):
        # its Cholesky factor in the new order, in units of sigma (jitter: tau may be singular)
        Lam = lower_triangle(theta_start, q)[order]
        k = _cholesky_theta(Lam @ Lam.T) * s / sigma
        if kind == "sigma":
            return k
        if kind == "sd":
            return np.r_[k[1:], s / sigma]
        v = np.r_[np.delete(k, q), s / sigma]
        v[1] = np.hypot(k[1], k[q])
        return v

    def problem_at(value):
        k0, A_v = np.zeros(n_theta), A.copy()
        if kind == "sd":
            k0[0] = value * z_scale[order[0]] / sigma
        elif kind == "cor":
            A_v[1, 1], A_v[q, 1] = value, np.sqrt(max(1 - value ** 2, 0.0))
        return _Constrained(cp=reordered, reml=reml, A=A_v, k0=k0, lower=lower, unit=sigma,
                            sigma_fixed=value / sigma if kind == "sigma" else None)

    scale = []                                   # the curvature scaling, from the first evaluation

    def minimise(value, v0):
        problem = problem_at(value)
        if not scale:
            scale.append(problem.scale_at(np.maximum(v0, lower)))
        return problem.minimise(v0, scale[0])

    def on_boundary(value, v):
        k, s = problem_at(value).split(v)
        return _singular(theta_of(lower_triangle(k / s, q)))

    return minimise, start_at, on_boundary


def _fixed_effect_profile(cp: CrossProducts, theta: np.ndarray, k: int):
    r"""For fixed effect ``k``: ``minimise(value, start)`` = the ML fit with :math:`\beta_k` held at ``value``,
    i.e. of :math:`y - x_k \beta_k` on the other columns (lme4's offset), from the cross-products, and the
    starts for :class:`ProfileTrace`: the estimate's theta and ``None`` (``fit_theta``'s moment start).

    Only the y parts change with the value: :math:`Z_j'(y - x_k b) = Z_j'y - b Z_j'x_k`,
    :math:`X_{-k}'(y - x_k b)` and :math:`(y - x_k b)'(y - x_k b) = y'y - 2b x_k'y + b^2 x_k'x_k`."""
    from .mixed import fit_theta

    q, p = cp.q, cp.p
    keep = np.r_[np.arange(q + p), q + p]
    keep = keep[keep != q + k]                           # Z, X without column k, y
    x_col = q + k

    def minimise(value, start):
        ZtZW = cp.ZtZW[:, :, keep].copy()
        ZtZW[:, :, -1] -= value * cp.ZtZW[:, :, x_col]
        W = np.r_[np.delete(np.arange(p), k), p]        # rows/columns of [X y]'[X y] kept
        WtW = cp.WtW[np.ix_(W, W)].copy()
        cross = cp.WtW[W, k]                               # [X_-k y]'x_k
        WtW[-1, :] -= value * cross
        WtW[:, -1] -= value * cross
        WtW[-1, -1] += value ** 2 * cp.WtW[k, k]
        fit = fit_theta(CrossProducts(ZtZW=ZtZW, WtW=WtW, n_obs=cp.n_obs), reml=False, start=start)
        return fit.deviance, fit.theta

    return minimise, [theta, None]                       # from the estimate and from fit_theta's moment start


def _singular(theta: np.ndarray) -> bool:
    """A diagonal element of Lambda below lme4's isSingular tolerance (on unit-scaled Z, as ``fit_theta``)."""
    from .mixed import SINGULAR_TOL

    return bool(np.diag(lower_triangle(theta, _order_of(theta))).min() < SINGULAR_TOL)


def _order_of(theta: np.ndarray) -> int:
    """q, from len(theta) = q (q + 1) / 2."""
    return int(round((np.sqrt(8 * len(theta) + 1) - 1) / 2))


def _sign_flips(theta: np.ndarray) -> list[np.ndarray]:
    r"""The covariance of ``theta`` with the signs of random effects flipped, :math:`D T D` for every
    :math:`D = \operatorname{diag}(1, \pm 1, \dots)` but the identity: each correlation's sign changes with
    one of the two effects (for q = 2, the one correlation), and :math:`D T D` stays a covariance matrix."""
    q = _order_of(theta)
    T = lower_triangle(theta, q) @ lower_triangle(theta, q).T
    out = []
    for signs in itertools.product((1.0, -1.0), repeat=q - 1):
        if -1.0 in signs:
            D = np.r_[1.0, signs]
            out.append(_cholesky_theta(D[:, None] * T * D))
    return out


def _cholesky_theta(T: np.ndarray) -> np.ndarray:
    """theta of a covariance matrix T (possibly singular: a relative jitter of 1e-12)."""
    return theta_of(np.linalg.cholesky(T + 1e-12 * max(np.trace(T), 1.0) * np.eye(len(T))))


def _random_starts(scale: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    r"""``n`` random covariances (as theta) from ``np.random.default_rng(seed)``: standard deviations
    ``scale * exp(N(0, 1))`` and the correlations of random unit rows of a lower triangle (uniform signs)."""
    rng = np.random.default_rng(seed)
    q = len(scale)
    out = []
    for _ in range(n):
        rows = np.tril(rng.normal(size=(q, q)))
        rows[np.diag_indices(q)] = np.abs(rows[np.diag_indices(q)])
        rows /= np.linalg.norm(rows, axis=1)[:, None]
        out.append(theta_of(scale[:, None] * np.exp(rng.normal(size=(q, 1))) * rows))
    return out


PARAMETER_SETS = ("theta_", "beta_")


def profile_confint(result, level: float = 0.95, parm=None, criterion: str = "ML") -> pd.DataFrame:
    r"""Profile-likelihood intervals of a :class:`hlmlib.MixedResult` (module docstring): one row per
    variance parameter (``.sig01``, ..., ``.sigma``) and fixed effect, with ``parameter``, ``estimate`` (of
    the profiled criterion), ``ci_low``, ``ci_high``. ``parm``: None (all, as lme4's default), ``"theta_"``
    (the variance parameters), ``"beta_"`` (the fixed effects) or a list of row names. ``.attrs`` hold the
    level, the criterion and each parameter's :class:`ProfileTrace`. A ``UserWarning`` if the fit profiled
    (for ``criterion="ML"``, the ML fit) is singular: its intervals rest on a non-convex inner minimisation
    (module docstring, "What is guaranteed").

    Fixed effects are profiled on the ML deviance (lme4 does the same); ``criterion="REML"`` is for the
    variance parameters of a REML fit only.
    """
    from .mixed import _unit_scale, fit_theta

    if criterion not in ("ML", "REML"):
        raise InputError(f"criterion must be 'ML' (lme4's profile) or 'REML', got {criterion!r}")
    if criterion == "REML" and not result.reml:
        raise InputError("criterion='REML' profiles the REML criterion of a REML fit; this fit is ML")
    cp, reml = result._cp, criterion == "REML"
    theta = result.theta if reml == result.reml else fit_theta(cp, reml=False, start=result.theta).theta
    table_theta = theta
    # profiled on Z's columns at unit root mean square (the same deviance), where theta does not depend on Z's
    # units: in raw units a random slope on x * 1e8 has theta of order 1e-8, and the optimiser fails
    cp, d = _unit_scale(cp)
    theta = theta_of(d[:, None] * lower_triangle(theta, cp.q))
    fac = blocked_cholesky(theta, cp)
    base = profiled_deviance(fac, cp, reml)
    sigma = float(np.sqrt(fac.pwrss / (cp.N - cp.p if reml else cp.N)))
    table = variance_parameters(table_theta, sigma, result.re_names)
    n_var = len(table)
    beta = fac.beta()
    se = np.sqrt(np.diag(np.linalg.inv(fac.LW[:-1, :-1] @ fac.LW[:-1, :-1].T))) * sigma
    names = list(result.params.index)
    table = pd.concat([table, pd.DataFrame({"parameter": names, "estimate": beta}, index=names)])
    rows = _chosen_rows(parm, list(table.index), n_var)
    if reml and max(rows) >= n_var:
        raise InputError("the fixed effects are profiled on the ML deviance (as lme4); use criterion='ML' or "
                         "parm='theta_'")
    z = stats.norm.ppf(0.5 + level / 2)
    positions = _tril_positions(cp.q)
    singular = _singular(theta)
    if singular:
        warnings.warn(f"the {'REML' if reml else 'ML'} fit being profiled is singular "
                      f"({_boundary_parameters(table, theta)}): profile intervals at a boundary rest on a non-convex "
                      "minimisation over the other parameters (several starts at every point, each end re-checked "
                      "from more), and may be too short if a lower minimum is missed; lme4's profile stops with an "
                      "error on such fits", UserWarning, stacklevel=3)
    global_thetas, check_thetas = _spread_starts(theta, cp)
    lows, highs, traces = [], [], {}
    for i in rows:
        name, row = table.index[i], table.iloc[i]
        if i >= n_var:
            k = i - n_var
            minimise, starts = _fixed_effect_profile(cp, theta, k)
            global_starts, check_starts = global_thetas, check_thetas
            on_boundary = lambda value, solution: _singular(solution)           # noqa: E731
            bounds, first_step = (-np.inf, np.inf), 0.5 * se[k]
        else:
            is_cor = i < len(positions) and positions[i][0] != positions[i][1]
            bounds = (-1.0, 1.0) if is_cor else (0.0, np.inf)
            if np.isnan(row.estimate):            # a correlation with a zero sd: the deviance does not depend on it
                lows.append(bounds[0])
                highs.append(bounds[1])
                continue
            minimise, start_at, on_boundary = _variance_profile(cp, reml, theta, sigma, i, d)
            starts = [start_at(theta, sigma)]
            global_starts = [start_at(t, sigma) for t in global_thetas]
            check_starts = [start_at(t, sigma) for t in check_thetas]
            # from a zero estimate: 1% of sigma (of a unit-scaled Z's sd), or of the correlation's range
            typical = 1.0 if is_cor else sigma / d[positions[i][0]] if i < len(positions) else sigma
            first_step = 0.01 * (abs(row.estimate) if row.estimate != 0 else typical)
        trace = ProfileTrace(f"{name} ({row.parameter})", row.estimate, base, minimise, starts, global_starts,
                             check_starts, singular, on_boundary)
        lows.append(trace.end(-z, bounds[0], first_step))
        highs.append(trace.end(z, bounds[1], first_step))
        traces[name] = trace
    table = table.iloc[rows].copy()
    table["ci_low"], table["ci_high"] = lows, highs
    table.attrs.update({"level": level, "criterion": criterion, "method": "profile", "traces": traces,
                        "caption": f"{100 * level:g}% profile-likelihood intervals ({criterion} deviance; "
                                   "lme4's confint(method = 'profile'): standard deviations, correlations, sigma, "
                                   "fixed effects)"})
    return table


def _spread_starts(theta: np.ndarray, cp: CrossProducts) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Starts (theta, unit-scaled Z) that leave the estimate's side of the boundary: for every point of a
    singular profile, the moment start, the estimate with its correlations' signs flipped (``_sign_flips``) and
    N_GLOBAL seeded random covariances; for the check at each end, those and N_CHECK more. The random standard
    deviations are spread around the larger of the estimate's and the moment start's (at least 5% of the
    largest)."""
    from .mixed import moment_start

    q = cp.q
    moment = moment_start(cp)
    sd = np.maximum(*(np.linalg.norm(lower_triangle(t, q), axis=1) for t in (theta, moment)))
    sd = np.maximum(sd, 0.05 * sd.max() if sd.max() > 0 else 1.0)
    global_starts = [moment, *_sign_flips(theta), *_random_starts(sd, N_GLOBAL, SEED)]
    return global_starts, global_starts + _random_starts(sd, N_CHECK, SEED + 1)


def _boundary_parameters(table: pd.DataFrame, theta: np.ndarray) -> str:
    """The rows of ``table`` at a bound: standard deviations at 0 (relative to sigma, on unit-scaled Z: ``theta``)
    and correlations at +-1; or that tau is singular without either."""
    from .mixed import SINGULAR_TOL

    relative_sd = iter(np.linalg.norm(lower_triangle(theta, _order_of(theta)), axis=1))
    at_bound = []
    for name, row in table.iloc[:len(theta)].iterrows():
        if row.parameter.startswith("sd(") and next(relative_sd) < SINGULAR_TOL:
            at_bound.append(f"{name} {row.parameter} = 0")
        elif row.parameter.startswith("cor(") and abs(row.estimate) > 1 - 1e-6:
            at_bound.append(f"{name} {row.parameter} = {np.sign(row.estimate):+.0f}")
    return ", ".join(at_bound) if at_bound else "tau is singular: a random effect is a combination of the others"


def _chosen_rows(parm, index: list[str], n_var: int) -> list[int]:
    """Positions of the rows ``parm`` names: None (all), 'theta_', 'beta_' or a list of names (lme4's parm)."""
    if parm is None:
        return list(range(len(index)))
    if isinstance(parm, str) and parm in PARAMETER_SETS:
        return list(range(n_var)) if parm == "theta_" else list(range(n_var, len(index)))
    names = [parm] if isinstance(parm, str) else list(parm)
    unknown = [n for n in names if n not in index]
    if unknown or not names:
        raise InputError(f"parm must be None, 'theta_', 'beta_' or names among {index}; unknown: {unknown}")
    return sorted({index.index(n) for n in names})
