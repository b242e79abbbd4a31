r"""The book's data-generating processes, their population quantities, and batched Monte Carlo OLS.

Every data set made here is **simulated**: the numbers are draws from the equations stated in each
docstring, not observations of countries, firms or people. Every function that draws takes ``seed``
(a non-negative int, ``None`` or a ``np.random.Generator``) and draws only through
``np.random.default_rng``. Arguments are checked (:class:`~hlmlib.design.InputError`): counts (R, J,
G, n) are integers of at least 1, standard deviations are non-negative, correlations lie in [-1, 1],
every parameter is a finite number, ``tau`` a positive semi-definite matrix, flags True or False.

Three parts:

1. Data-generating processes, one data set as a DataFrame (:func:`hlm_eusup`,
   :func:`random_coefficient`, :func:`cgm`, :func:`mhe_811`) or ``R`` replications at once as
   arrays (the ``*_batch`` functions, which return a :class:`Batch` of ``X`` (n, k) or (R, n, k),
   ``Y`` (R, n), cluster labels and true values).
2. Population quantities for an error covariance
   :math:`\Omega = V(e^\ast) = \operatorname{blockdiag}_g(Z_g \tau Z_g') + \sigma^2 I`:
   :func:`error_variance`, :func:`error_covariance`, :func:`population_vcov` (the sandwich
   :math:`(X'X)^{-1} X' \Omega X (X'X)^{-1}` from per-cluster cross-products, never an N x N
   matrix) and :func:`expected_classical_vcov` (what the classical formula estimates on average).
3. :func:`ols_mc`: OLS with classical, HC0-HC5 (and HC4m) and CR0-CR3 standard errors for all ``R``
   replications with array operations, not a Python loop per replication.

Conventions (as everywhere in hlmlib, see the :ref:`conventions page <conventions>`): HC1 =
:math:`n/(n-k)` (Stata ``, robust``); CR1 = :math:`G/(G-1) \cdot (N-1)/(N-k)` (Stata
``vce(cluster)``, R ``sandwich::vcovCL(type = "HC1")``); CR2 is Bell-McCaffrey's
:math:`(I - H_{gg})^{-1/2}` adjustment with Satterthwaite degrees of freedom (clubSandwich
``coef_test(..., test = "Satterthwaite")``); CR3 is clubSandwich's :math:`(I - H_{gg})^{-1}` without
the :math:`(G-1)/G` jackknife factor. Tests use :math:`t(n-k)` for classical and HC, :math:`t(G-1)`
for CR0/CR1/CR3, the Satterthwaite df for CR2.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .lazy import stats
from .design import (InputError, check_alpha, check_bool, check_finite_array, check_labels, check_scalar,
                     group_codes, make_rng)
from .linalg import EPS, PERFECT_FIT_ULPS, largest_magnitude, least_squares, power_of_two_scale
from . import sandwich as sw

__all__ = [
    "Batch", "hlm_eusup", "hlm_eusup_batch", "random_coefficient", "random_coefficient_batch",
    "cgm", "cgm_batch", "mhe_811", "mhe_811_batch", "error_variance", "error_covariance",
    "population_vcov", "expected_classical_vcov", "ols_mc", "MonteCarloOLS", "KINDS",
]

KINDS = ("classical", "HC0", "HC1", "HC2", "HC3", "HC4", "HC4m", "HC5", "CR0", "CR1", "CR2", "CR3")


def _rng(seed) -> np.random.Generator:
    return make_rng(seed)


# parameters that are standard deviations (>= 0) or correlations ([-1, 1]); every other scalar is any
# finite number, and tau is checked as a covariance matrix
_SDS = {"sigma", "lfrt_between_sd", "lfrt_within_sd", "gspend_sd", "s0", "s1", "s2"}
_CORRELATIONS = {"corr_u0_lfrt", "corr_u0_gspend"}


def _with_defaults(defaults: dict, params: dict) -> dict:
    """The process's parameters: ``defaults`` updated by ``params``, refusing names it does not have and
    values out of range (NaN or inf anywhere, a negative standard deviation, a correlation outside
    [-1, 1])."""
    unknown = set(params) - set(defaults)
    if unknown:
        raise InputError(f"unknown parameter(s) {sorted(unknown)}; known: {sorted(defaults)}")
    checked = {}
    for name, value in params.items():
        if name == "tau":
            checked[name] = value                   # checked as a matrix where it is used
        elif name in _SDS:
            checked[name] = check_scalar(value, name, minimum=0)
        elif name in _CORRELATIONS:
            checked[name] = check_scalar(value, name, minimum=-1, maximum=1)
        else:
            checked[name] = check_scalar(value, name)
    return {**defaults, **checked}


def _count(value, name: str, minimum: int = 1) -> int:
    """A count (replications, clusters, observations): an integer >= ``minimum`` and below 2**31 (NumPy's
    array dimensions; a larger count could not be simulated in memory anyway)."""
    return check_scalar(value, name, integer=True, minimum=minimum, maximum=2**31 - 1)


@dataclass
class Batch:
    r"""``R`` simulated replications, as the ``*_batch`` functions return them for :func:`ols_mc`.

    Parameters
    ----------
    X : *array* (n, k) or (R, n, k)
        (n, k) if the regressors are fixed across replications, else (R, n, k).
    Y : *array* (R, n)
        The responses, one row per replication.
    names : list
        The names of the columns of ``X``.
    truth : dict
        The true coefficients by name.
    cluster : *array* (n,) or None
        Cluster labels, the same in every replication.
    extra : dict
        What :func:`population_vcov` needs (``Z``, ``tau``, ``sigma2``), where the process has it.
    """

    X: np.ndarray
    Y: np.ndarray
    names: list
    truth: dict
    cluster: np.ndarray | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def fixed_x(self) -> bool:
        return self.X.ndim == 2


# --------------------------------------------------------------------------------------------
# 1. Data-generating processes
# --------------------------------------------------------------------------------------------

def _cluster_sizes(J: int, n) -> np.ndarray:
    J = _count(J, "J (the number of clusters)")
    if np.ndim(n) == 0:
        sizes = np.full(J, _count(n, "n (the cluster size)"), dtype=int)
    else:
        values = check_finite_array(n, "n (the cluster sizes)", ndim=1)
        if np.any(values != np.round(values)):
            raise InputError("cluster sizes n must be integers")
        sizes = values.astype(int)
    if sizes.shape != (J,):
        raise InputError(f"cluster sizes n must be one integer or {J} integers (one per cluster), got shape {sizes.shape}")
    if (sizes < 1).any():
        raise InputError(f"cluster sizes must be at least 1; cluster(s) {np.flatnonzero(sizes < 1)[:5].tolist()} are not")
    return sizes


def _check_tau(tau, q: int) -> np.ndarray:
    tau = np.atleast_2d(check_finite_array(tau, "tau", ndim=(0, 1, 2), numbers_only=True))
    if tau.shape != (q, q):
        raise InputError(f"tau must be {q} x {q}, got shape {tau.shape}")
    scale = np.abs(tau).max()                   # relative to tau's own size: variances in any units
    if not np.allclose(tau, tau.T, atol=1e-8 * scale):
        raise InputError("tau must be symmetric")
    if np.linalg.eigvalsh(tau).min() < -1e-12 * scale:
        raise InputError(f"tau must be positive semi-definite; its eigenvalues are {np.linalg.eigvalsh(tau)}")
    return tau


def _hlm_draw(rng, R, J, n, a0, a1, g0, g1, tau, sigma, lfrt_mean, lfrt_between_sd, lfrt_within_sd,
              gspend_mean, gspend_sd, corr_u0_lfrt, corr_u0_gspend, fixed_x):
    R, fixed_x = _count(R, "R (the number of replications)"), check_bool(fixed_x, "fixed_x")
    sizes = _cluster_sizes(J, n)
    tau = _check_tau(tau, 2)
    if corr_u0_lfrt ** 2 + corr_u0_gspend ** 2 > 1:
        raise InputError("corr_u0_lfrt^2 + corr_u0_gspend^2 must not exceed 1 (the two regressors are independent)")
    country = np.repeat(np.arange(J), sizes)
    N = sizes.sum()
    reps_x = 1 if fixed_x else R
    # standardized cluster mean of lfrt and GSPEND, independent of each other
    m_std = rng.standard_normal((reps_x, J))
    gs_std = rng.standard_normal((reps_x, J))
    lfrt = (lfrt_mean + lfrt_between_sd * m_std)[:, country] + lfrt_within_sd * rng.standard_normal((reps_x, N))
    gspend = gspend_mean + gspend_sd * gs_std
    # u0 / sqrt(tau00) = r1 m_std + r2 gs_std + sqrt(1 - r1^2 - r2^2) xi: corr(u0, m) = r1, corr(u0, GSPEND) = r2
    xi0, xi1 = rng.standard_normal((R, J)), rng.standard_normal((R, J))
    t00, t01, t11 = tau[0, 0], tau[0, 1], tau[1, 1]
    u0 = np.sqrt(t00) * (corr_u0_lfrt * m_std + corr_u0_gspend * gs_std
                         + np.sqrt(1 - corr_u0_lfrt ** 2 - corr_u0_gspend ** 2) * xi0)
    # u1 given u0 keeps Var(u1) = tau11 and Cov(u0, u1) = tau01
    slope = t01 / t00 if t00 > 0 else 0.0
    u1 = slope * u0 + np.sqrt(max(t11 - slope * t01, 0.0)) * xi1
    b0 = a0 + a1 * gspend + u0
    b_lr = g0 + g1 * gspend + u1
    e = sigma * rng.standard_normal((R, N))
    eusup = b0[:, country] + b_lr[:, country] * lfrt + e
    return dict(country=country, lfrt=lfrt, GSPEND=gspend[:, country], u0=u0, u1=u1, e=e, eusup=eusup)


_HLM_DEFAULTS = dict(a0=2.0, a1=0.05, g0=-0.10, g1=0.01, tau=((1.0, 0.0), (0.0, 0.04)), sigma=1.0,
                     lfrt_mean=5.0, lfrt_between_sd=1.0, lfrt_within_sd=2.0, gspend_mean=40.0, gspend_sd=8.0,
                     corr_u0_lfrt=0.0, corr_u0_gspend=0.0)


def hlm_eusup(J: int = 30, n=20, *, seed=None, **params) -> pd.DataFrame:
    r"""One **simulated** data set from the lecture's two-level model (support for the EU by country).

    Level 1 (person :math:`i` in country :math:`j`) and level 2 (country :math:`j`):

    .. math::

       \begin{aligned}
       \text{eusup}_{ij} &= b_{0j} + b_{\text{lr},j}\, \text{lfrt}_{ij} + e_{ij},
         & e_{ij} &\sim N(0, \sigma^2), \\
       b_{0j} &= a_0 + a_1 \text{GSPEND}_j + u_{0j}, \\
       b_{\text{lr},j} &= g_0 + g_1 \text{GSPEND}_j + u_{1j},
         & (u_{0j}, u_{1j}) &\sim N(0, \tau).
       \end{aligned}

    Combined,

    .. math::

       \begin{aligned}
       \text{eusup}_{ij} = {} & a_0 + a_1 \text{GSPEND}_j + g_0 \text{lfrt}_{ij}
         + g_1 \text{lfrt}_{ij} \text{GSPEND}_j \\
         & + (u_{0j} + u_{1j} \text{lfrt}_{ij} + e_{ij}),
       \end{aligned}

    the linear-interaction model with compound error
    :math:`e^\ast_{ij} = u_{0j} + u_{1j} \text{lfrt}_{ij} + e_{ij}`.

    Regressors: ``lfrt_ij = m_j + lfrt_within_sd * N(0, 1)``,
    ``m_j = lfrt_mean + lfrt_between_sd * N(0, 1)``;
    ``GSPEND_j = gspend_mean + gspend_sd * N(0, 1)``. The defaults
    (``a0=2, a1=0.05, g0=-0.1, g1=0.01``, ``tau=[[1, 0], [0, 0.04]]``, ``sigma=1``, lfrt mean 5 /
    between-sd 1 / within-sd 2, GSPEND 40 / 8) are illustrative, not estimates from any survey.
    ``corr_u0_lfrt`` and ``corr_u0_gspend`` set :math:`\operatorname{corr}(u_{0j}, m_j)` and
    :math:`\operatorname{corr}(u_{0j}, \text{GSPEND}_j)`: nonzero values break :math:`E(u \mid X) = 0`
    and so bias OLS and random-effects estimates (the lecture's "heterogeneity that covaries with X");
    with :math:`\tau_{01} \ne 0`, :math:`u_1` inherits part of that correlation through :math:`u_0`.

    Returns a DataFrame with columns ``country``, ``eusup``, ``lfrt``, ``GSPEND`` and, for teaching,
    the true ``u0``, ``u1`` and ``e`` (never observed in real data).

    Parameters
    ----------
    J : int
        The number of countries (clusters).
    n : int or list of int
        One cluster size, or a sequence of ``J`` sizes (unbalanced).
    seed : int, *Generator* or None
        Seed of ``np.random.default_rng``.
    **params
        Any of ``a0, a1, g0, g1, tau, sigma, lfrt_mean, lfrt_between_sd, lfrt_within_sd,
        gspend_mean, gspend_sd, corr_u0_lfrt, corr_u0_gspend``.
    """
    p = _with_defaults(_HLM_DEFAULTS, params)
    d = _hlm_draw(_rng(seed), 1, J, n, fixed_x=True, **p)
    c = d["country"]
    return pd.DataFrame({"country": c, "eusup": d["eusup"][0], "lfrt": d["lfrt"][0], "GSPEND": d["GSPEND"][0],
                         "u0": d["u0"][0, c], "u1": d["u1"][0, c], "e": d["e"][0]})


def hlm_eusup_batch(R: int, J: int = 30, n=20, *, fixed_x: bool = False, seed=None, **params) -> Batch:
    r"""``R`` replications of :func:`hlm_eusup` as arrays for :func:`ols_mc`.

    ``X`` columns: Intercept, GSPEND, lfrt, lfrt:GSPEND (true values a0, a1, g0, g1).
    ``fixed_x=True`` draws the regressors once and redraws only :math:`u_0, u_1, e` (inference
    conditional on :math:`X`, as in the lecture's derivation); ``extra`` holds ``Z`` = [1, lfrt] and
    ``tau``, ``sigma2`` for :func:`population_vcov`. Returns a :class:`Batch`.
    """
    p = _with_defaults(_HLM_DEFAULTS, params)
    d = _hlm_draw(_rng(seed), R, J, n, fixed_x=fixed_x, **p)
    lfrt, gs = d["lfrt"], d["GSPEND"]
    X = np.stack([np.ones_like(lfrt), gs, lfrt, lfrt * gs], axis=-1)
    Z = np.stack([np.ones_like(lfrt), lfrt], axis=-1)
    if fixed_x:
        X, Z = X[0], Z[0]
    truth = {"Intercept": p["a0"], "GSPEND": p["a1"], "lfrt": p["g0"], "lfrt:GSPEND": p["g1"]}
    return Batch(X=X, Y=d["eusup"], names=list(truth), truth=truth, cluster=d["country"],
                 extra=dict(Z=Z, tau=np.asarray(p["tau"], float), sigma2=p["sigma"] ** 2))


_RC_DEFAULTS = dict(b0=1.0, a0=0.5, g0=0.8, a1=0.2, g1=0.1, s0=1.0, s1=0.5, s2=0.5)


def _rc_draw(rng, R, n, p, fixed_x):
    R, fixed_x = _count(R, "R (the number of replications)"), check_bool(fixed_x, "fixed_x")
    n = _count(n, "n (the number of observations)")
    reps_x = 1 if fixed_x else R
    x, z = rng.standard_normal((reps_x, n)), rng.standard_normal((reps_x, n))
    e0, e1, e2 = (s * rng.standard_normal((R, n)) for s in (p["s0"], p["s1"], p["s2"]))
    estar = e0 + e1 * x + e2 * z
    y = p["b0"] + p["a0"] * x + p["g0"] * z + (p["a1"] + p["g1"]) * x * z + estar
    return x, z, y, estar


def random_coefficient(n: int = 500, *, seed=None, **params) -> pd.DataFrame:
    r"""One **simulated** data set from the lecture's random-coefficient (linear-interaction) model.

    .. math::

       \begin{aligned}
       y &= b_0 + b_1 x + b_2 z + e_0, \\
       b_1 &= dy/dx = a_0 + a_1 z + e_1, \\
       b_2 &= dy/dz = g_0 + g_1 x + e_2,
       \end{aligned}

    so

    .. math::

       y = b_0 + a_0 x + g_0 z + (a_1 + g_1) xz + (e_0 + e_1 x + e_2 z),

    with :math:`e_{0i}, e_{1i}, e_{2i}` independent :math:`N(0, s_0^2)`, :math:`N(0, s_1^2)`,
    :math:`N(0, s_2^2)`, independent across :math:`i`. The compound error
    :math:`e^\ast_i = e_{0i} + e_{1i} x_i + e_{2i} z_i` is heteroskedastic,
    :math:`\operatorname{Var}(e^\ast_i \mid x, z) = s_0^2 + s_1^2 x_i^2 + s_2^2 z_i^2`, and
    uncorrelated across :math:`i`. :math:`x, z \sim N(0, 1)` independent. Defaults ``b0=1, a0=0.5,
    g0=0.8, a1=0.2, g1=0.1, s0=1, s1=s2=0.5``.

    Returns a DataFrame with columns ``y``, ``x``, ``z`` and the true compound error ``estar``.
    """
    p = _with_defaults(_RC_DEFAULTS, params)
    x, z, y, estar = _rc_draw(_rng(seed), 1, n, p, True)
    return pd.DataFrame({"y": y[0], "x": x[0], "z": z[0], "estar": estar[0]})


def random_coefficient_batch(R: int, n: int = 500, *, fixed_x: bool = False, seed=None, **params) -> Batch:
    r"""``R`` replications of :func:`random_coefficient`, a :class:`Batch`.

    ``X`` columns Intercept, x, z, x:z (truth b0, a0, g0, a1 + g1); ``extra`` holds
    ``Z`` = [1, x, z] and :math:`\tau = \operatorname{diag}(s_0^2, s_1^2, s_2^2)` for
    :func:`population_vcov`.
    """
    p = _with_defaults(_RC_DEFAULTS, params)
    x, z, y, _ = _rc_draw(_rng(seed), R, n, p, fixed_x)
    X = np.stack([np.ones_like(x), x, z, x * z], axis=-1)
    Z = X[..., :3]
    if fixed_x:
        X, Z = X[0], Z[0]
    truth = {"Intercept": p["b0"], "x": p["a0"], "z": p["g0"], "x:z": p["a1"] + p["g1"]}
    return Batch(X=X, Y=y, names=list(truth), truth=truth,
                 extra=dict(Z=Z, tau=np.diag([p["s0"] ** 2, p["s1"] ** 2, p["s2"] ** 2]), sigma2=0.0))


def _cgm_draw(rng, R, G, n, b0, b1, heteroskedastic, fixed_x):
    R, fixed_x = _count(R, "R (the number of replications)"), check_bool(fixed_x, "fixed_x")
    G, n = _count(G, "G (the number of clusters)"), _count(n, "n (the cluster size)")
    b0, b1 = check_scalar(b0, "b0"), check_scalar(b1, "b1")
    heteroskedastic = check_bool(heteroskedastic, "heteroskedastic")
    cluster = np.repeat(np.arange(G), n)
    reps_x = 1 if fixed_x else R
    x = np.repeat(rng.standard_normal((reps_x, G)), n, axis=1) + rng.standard_normal((reps_x, G * n))
    e_ig = rng.standard_normal((R, G * n))
    if heteroskedastic:
        e_ig = e_ig * 3.0 * np.abs(x)
    u = np.repeat(rng.standard_normal((R, G)), n, axis=1) + e_ig
    return x, b0 + b1 * x + u, cluster


def cgm(G: int = 10, n: int = 30, *, b0: float = 0.0, b1: float = 1.0, heteroskedastic: bool = False,
        seed=None) -> pd.DataFrame:
    r"""One **simulated** data set from Cameron, Gelbach & Miller's (2008) few-cluster design.

    .. math::

       y_{ig} = b_0 + b_1 x_{ig} + u_{ig}, \quad x_{ig} = z_g + z_{ig}, \quad u_{ig} = e_g + e_{ig},

    all components :math:`N(0, 1)`, :math:`n` observations in each of :math:`G` clusters;
    heteroskedastic variant: :math:`e_{ig} \sim N(0, 9 x_{ig}^2)`. Returns columns ``cluster``, ``y``,
    ``x``.

    References
    ----------
    Cameron, Gelbach & Miller (2008), "Bootstrap-based improvements for inference with clustered
    errors", *Review of Economics and Statistics* 90(3), 414-427 (their tests: :math:`H_0\colon b_1 = 1`).
    """
    x, y, cluster = _cgm_draw(_rng(seed), 1, G, n, b0, b1, heteroskedastic, True)
    return pd.DataFrame({"cluster": cluster, "y": y[0], "x": x[0]})


def cgm_batch(R: int, G: int = 10, n: int = 30, *, b0: float = 0.0, b1: float = 1.0,
              heteroskedastic: bool = False, fixed_x: bool = False, seed=None) -> Batch:
    r"""``R`` replications of :func:`cgm` (x redrawn each time unless ``fixed_x``); ``X`` = [1, x]."""
    x, y, cluster = _cgm_draw(_rng(seed), R, G, n, b0, b1, heteroskedastic, fixed_x)
    X = np.stack([np.ones_like(x), x], axis=-1)
    return Batch(X=X[0] if fixed_x else X, Y=y, names=["Intercept", "x"], truth={"Intercept": b0, "x": b1},
                 cluster=cluster)


def mhe_811(sigma: float = 0.5, *, n: int = 30, n_treated: int = 3, b0: float = 0.0, b1: float = 0.0,
            seed=None) -> pd.DataFrame:
    r"""One **simulated** data set from Angrist & Pischke's *Mostly Harmless Econometrics* Table 8.1.1.

    :math:`y_i = b_0 + b_1 d_i + e_i`, :math:`d_i = 1` for ``n_treated`` of ``n`` observations (the
    last ones), else 0; :math:`e_i \sim N(0, \sigma^2)` if :math:`d_i = 0` and :math:`N(0, 1)` if
    :math:`d_i = 1`. The book's panels: :math:`\sigma` = 0.5, 0.85, 1; n = 30, 3 treated,
    :math:`b_1 = 0`; the sd of :math:`\hat b_1` is
    :math:`\sqrt{1/n_\text{treated} + \sigma^2/(n - n_\text{treated})}`. Returns columns ``y``, ``d``.
    """
    b = mhe_811_batch(1, sigma, n=n, n_treated=n_treated, b0=b0, b1=b1, seed=seed)
    return pd.DataFrame({"y": b.Y[0], "d": b.X[:, 1]})


def mhe_811_batch(R: int, sigma: float = 0.5, *, n: int = 30, n_treated: int = 3, b0: float = 0.0,
                  b1: float = 0.0, seed=None) -> Batch:
    r"""``R`` replications of :func:`mhe_811`; ``X`` = [1, d] is fixed, as in the design."""
    R, n = _count(R, "R (the number of replications)"), _count(n, "n (the number of observations)", 2)
    n_treated = check_scalar(n_treated, "n_treated", integer=True)
    sigma = check_scalar(sigma, "sigma (the control group's error sd)", minimum=0)
    b0, b1 = check_scalar(b0, "b0"), check_scalar(b1, "b1")
    if not 0 < n_treated < n:
        raise InputError(f"n_treated must be between 1 and n - 1 = {n - 1}, got {n_treated}")
    d = np.r_[np.zeros(n - n_treated), np.ones(n_treated)]
    sd = np.where(d == 1, 1.0, sigma)
    Y = b0 + b1 * d + sd * _rng(seed).standard_normal((R, n))
    return Batch(X=np.column_stack([np.ones(n), d]), Y=Y, names=["Intercept", "d"], truth={"Intercept": b0, "d": b1})


# --------------------------------------------------------------------------------------------
# 2. Population quantities: Omega = blockdiag_g(Z_g tau Z_g') + sigma2 I
# --------------------------------------------------------------------------------------------

def _as_2d(a, name):
    a = check_finite_array(a, name, ndim=(1, 2))
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise InputError(f"{name} must be a 2-D array (rows = observations), got shape {a.shape}")
    return a


def error_variance(Z, tau, sigma2: float = 0.0) -> np.ndarray:
    r""":math:`\operatorname{Var}(e^\ast_i) = z_i' \tau z_i + \sigma^2` (``sigma2``) for every row of ``Z``.

    HLM (:math:`Z = [1, x]`): :math:`\tau_{00} + 2 \tau_{01} x_{ij} + \tau_{11} x_{ij}^2 + \sigma^2`;
    random coefficients (:math:`Z = [1, x, z]`, :math:`\tau = \operatorname{diag}(s_0^2, s_1^2, s_2^2)`,
    ``sigma2 = 0``): :math:`s_0^2 + s_1^2 x_i^2 + s_2^2 z_i^2`.
    """
    Z = _as_2d(Z, "Z")
    tau = _check_tau(tau, Z.shape[1])
    return np.einsum("ij,jk,ik->i", Z, tau, Z) + _sigma2(sigma2)


def _sigma2(value) -> float:
    return check_scalar(value, "sigma2 (the level-1 variance)", minimum=0)


def error_covariance(Z, tau, sigma2: float = 0.0, cluster=None, max_n: int = 5000) -> np.ndarray:
    r"""The dense N x N error covariance :math:`\Omega = V(e^\ast)`, for small teaching examples.

    Within cluster :math:`g`: :math:`\Omega_g = Z_g \tau Z_g' + \sigma^2 I`, i.e. for the HLM
    (:math:`Z = [1, x]`)
    :math:`\operatorname{Cov}(e^\ast_{ij}, e^\ast_{i'j}) = \tau_{00} + \tau_{01} (x_{ij} + x_{i'j})
    + \tau_{11} x_{ij} x_{i'j}` (:math:`+ \sigma^2` if :math:`i = i'`); zero across clusters.
    ``cluster=None``: every observation is its own cluster (:math:`\Omega` diagonal, the
    random-coefficient model). Refuses N > ``max_n``: use :func:`population_vcov`, which never forms
    :math:`\Omega`.
    """
    Z = _as_2d(Z, "Z")
    tau = _check_tau(tau, Z.shape[1])
    sigma2, max_n = _sigma2(sigma2), _count(max_n, "max_n")
    N = Z.shape[0]
    if N > max_n:
        raise InputError(f"N = {N} > max_n = {max_n}: an N x N Omega is too big; population_vcov works block by block")
    if cluster is None:
        return np.diag(error_variance(Z, tau, sigma2))
    codes = _codes(cluster, N)
    same = codes[:, None] == codes[None, :]
    return np.where(same, Z @ tau @ Z.T, 0.0) + sigma2 * np.eye(N)


def _codes(cluster, N):
    cluster = np.asarray(cluster)
    if cluster.shape != (N,):
        raise InputError(f"cluster labels must have one entry per row ({N}), got shape {cluster.shape}")
    check_labels(cluster, "cluster labels")
    return group_codes(cluster)[0]


def _xt_omega_x(X, Z, tau, sigma2, cluster):
    if cluster is None:
        return (X * error_variance(Z, tau, sigma2)[:, None]).T @ X
    codes = _codes(cluster, X.shape[0])
    G = codes.max() + 1
    # per-cluster cross-products X_g'Z_g (G, k, q), accumulated in one pass
    XZ = np.zeros((G, X.shape[1], Z.shape[1]))
    np.add.at(XZ, codes, X[:, :, None] * Z[:, None, :])
    return np.einsum("gkq,qr,glr->kl", XZ, tau, XZ) + sigma2 * X.T @ X


def population_vcov(X, Z, tau, sigma2: float = 0.0, cluster=None) -> np.ndarray:
    r"""The true sampling covariance of OLS given :math:`X`:
    :math:`V(b) = (X'X)^{-1} X' \Omega X (X'X)^{-1}`.

    :math:`\Omega = \operatorname{blockdiag}_g(Z_g \tau Z_g') + \sigma^2 I` (see
    :func:`error_covariance`); the middle is

    .. math::

       X' \Omega X = \sum_g (X_g'Z_g)\, \tau\, (Z_g'X_g) + \sigma^2 X'X,

    from per-cluster cross-products, so the cost is :math:`O(Nkq)` and no N x N matrix is formed. This
    is the lecture's :math:`(X'X)^{-1} X'[V(e_0) + V(e_1 x) + V(e_2 z)] X (X'X)^{-1}` evaluated
    exactly; a Monte Carlo variance of :math:`b` and the average of a consistent sandwich estimator
    should approach it. Assumes :math:`E(e^\ast \mid X) = 0`.
    """
    X, Z = _as_2d(X, "X"), _as_2d(Z, "Z")
    if Z.shape[0] != X.shape[0]:
        raise InputError(f"X has {X.shape[0]} rows but Z has {Z.shape[0]}")
    tau = _check_tau(tau, Z.shape[1])
    M = _xtx_inverse(X)
    return M @ _xt_omega_x(X, Z, tau, _sigma2(sigma2), cluster) @ M


def _xtx_inverse(X) -> np.ndarray:
    """(X'X)^-1 from hlmlib's column-scaled QR: a singular X is an InputError naming the collinear
    columns (never NumPy's LinAlgError), an ill-conditioned one is refined."""
    return least_squares(X, np.zeros(X.shape[0]), [f"x{j}" for j in range(X.shape[1])]).xtx_inv


def expected_classical_vcov(X, Z, tau, sigma2: float = 0.0, cluster=None) -> np.ndarray:
    r""":math:`E[s^2] (X'X)^{-1}`, the average of the classical OLS covariance under :math:`\Omega`.

    .. math::

       E[s^2] = \frac{E[e'e]}{N-k} = \frac{\operatorname{tr}((I - H)\Omega)}{N-k}
       = \frac{\operatorname{tr}(\Omega) - \operatorname{tr}((X'X)^{-1} X'\Omega X)}{N-k}.

    Compare with :func:`population_vcov` to see how wrong the classical standard error is on average.
    """
    X, Z = _as_2d(X, "X"), _as_2d(Z, "Z")
    if Z.shape[0] != X.shape[0]:
        raise InputError(f"X has {X.shape[0]} rows but Z has {Z.shape[0]}")
    tau = _check_tau(tau, Z.shape[1])
    M = _xtx_inverse(X)
    trace_omega = error_variance(Z, tau, sigma2).sum()
    s2 = (trace_omega - np.trace(M @ _xt_omega_x(X, Z, tau, sigma2, cluster))) / (X.shape[0] - X.shape[1])
    return s2 * M


# --------------------------------------------------------------------------------------------
# 3. Batched OLS with classical, HC and CR standard errors
# --------------------------------------------------------------------------------------------

class _Layout:
    """Rows grouped by cluster and clusters grouped by size, so that equal-size clusters stack into
    arrays; when the rows are already sorted by cluster with equal sizes, the grouping is a reshape."""

    def __init__(self, cluster, n):
        codes = _codes(cluster, n)
        self.G = codes.max() + 1
        order = np.argsort(codes, kind="stable")
        sizes = np.bincount(codes)
        starts = np.r_[0, np.cumsum(sizes)[:-1]]
        self.groups = []  # (cluster ids (G_m,), row index (G_m, m) or None for "reshape all rows")
        for m in np.unique(sizes):
            ids = np.flatnonzero(sizes == m)
            rows = order[starts[ids][:, None] + np.arange(m)]
            contiguous = ids.size == self.G and np.array_equal(rows.ravel(), np.arange(n))
            self.groups.append((ids, None if contiguous else rows))

    def take(self, A, rows):
        """A[:, rows] for rows (G_m, m); a free reshape (G, n/G) of axis 1 when rows is None."""
        if rows is None:
            return A.reshape(A.shape[0], self.G, A.shape[1] // self.G, *A.shape[2:])
        return A[:, rows]


def _orthogonalize(X):
    """Q (s, n, k) with orthonormal columns and R (s, k, k) upper triangular, X = QR, per replication.

    One X (s = 1): Householder QR. Stacked X: CholeskyQR2 (two Cholesky-QR passes, orthogonal to
    machine precision for cond(X) < 1e8; Yamamoto et al. 2015), which runs as a few batched matrix
    products instead of one LAPACK call per replication; Householder where Cholesky fails.
    """
    if X.shape[0] == 1:
        Q, R = np.linalg.qr(X)
    else:
        try:
            # R' = cholesky(X'X), Q = X R^-1 (k x k inverses: cheap, and a stacked matmul)
            R1 = np.swapaxes(np.linalg.cholesky(np.swapaxes(X, -1, -2) @ X), -1, -2)
            Q1 = X @ np.linalg.inv(R1)
            R2 = np.swapaxes(np.linalg.cholesky(np.swapaxes(Q1, -1, -2) @ Q1), -1, -2)
            Q = Q1 @ np.linalg.inv(R2)
            R = R2 @ R1
        except np.linalg.LinAlgError:
            Q, R = np.linalg.qr(X)
    # |R_jj| / ||x_j||: the sine of column j's angle to the span of those before it (scale-free)
    diag = np.abs(np.diagonal(R, axis1=-2, axis2=-1))
    deficient = (diag <= 1e-10 * np.linalg.norm(R, axis=-2)).any(-1)
    if deficient.any():
        raise InputError(f"X is rank deficient (collinear columns) in replication(s) "
                         f"{np.flatnonzero(deficient)[:5].tolist()} of this chunk")
    return Q, R


def _least_squares(Q, Rm, Y):
    """OLS of each row of Y (r, n) on X = QR (Q (s, n, k), s = 1 or r): Q'y (r, k), the residuals (r, n), the
    coefficients (r, k) and which fits are essentially perfect (residuals at the rounding level of the data,
    ||e|| <= 16 eps (||y|| + sum_j |b_j| ||x_j||), as :mod:`hlmlib.linalg` decides)."""
    s = Q.shape[0]
    Qty = Y @ Q[0] if s == 1 else np.einsum("rn,rnk->rk", Y, Q)
    E = Y - (Qty @ Q[0].T if s == 1 else np.einsum("rnk,rk->rn", Q, Qty))
    b = np.linalg.solve(Rm, Qty[..., None])[..., 0] if s > 1 else np.linalg.solve(Rm[0], Qty.T).T
    data_size = np.linalg.norm(Y, axis=1) + (np.abs(b) * np.linalg.norm(Rm, axis=-2)).sum(-1)
    return Qty, E, b, np.linalg.norm(E, axis=1) <= PERFECT_FIT_ULPS * EPS * data_size


def _by_cluster(E, Q):
    """Per size group: z[r, g] = sum_m E[r, g, m] Q[s, g, m, :], with s = 1 (fixed X) or r."""
    if Q.shape[0] == 1:  # G batched BLAS products (r, m) @ (m, k)
        return np.matmul(E.transpose(1, 0, 2), Q[0]).transpose(1, 0, 2)
    return np.einsum("rgm,rgmk->rgk", E, Q)


def _apply(z, U):
    """score[r, g] = z[r, g] @ U[s, g], with s = 1 or r."""
    return np.einsum("rgk,gkq->rgq", z, U[0]) if U.shape[0] == 1 else np.einsum("rgk,rgkq->rgq", z, U)


def _chunk_ols(X, Y, L, kinds, layout):
    """One chunk: X (n, k) or (r, n, k), Y (r, n), contrasts L (q, k).

    Works in the coordinates of X = QR: L b = T'Q'y with T = R^-T L', so L (X'X)^-1 L' = T'T and
    X (X'X)^-1 L' = Q T. Every X-derived array has a leading axis s = 1 (fixed X) or r. Returns
    L b (r, q), {kind: Var(L b) diagonal (r, q)} and the CR2 Satterthwaite df (s, q) or None.
    """
    Xs = X[None] if X.ndim == 2 else X
    r, n = Y.shape
    s, k = Xs.shape[0], Xs.shape[2]
    Q, Rm = _orthogonalize(Xs)
    T = np.swapaxes(np.linalg.inv(Rm), -1, -2) @ L.T             # (s, k, q)
    Qty, E, _, perfect = _least_squares(Q, Rm, Y)
    Lb = Qty @ T[0] if s == 1 else np.einsum("rk,rkq->rq", Qty, T)
    var = {}
    hc_kinds = [c for c in kinds if c.startswith("HC")]
    if hc_kinds:
        PL2 = (Q @ T) ** 2                                          # (s, n, q)
        h = (Q ** 2).sum(-1)                                        # leverages h_ii
        for c in hc_kinds:
            weighted = E ** 2 * sw.hc_weights(c, h[0] if s == 1 else h, n, k)
            var[c] = weighted @ PL2[0] if s == 1 else np.einsum("rn,rnq->rq", weighted, PL2)
    if "classical" in kinds:
        var["classical"] = (E ** 2).sum(1, keepdims=True) / (n - k) * (T ** 2).sum(-2)
    cr_kinds = [c for c in kinds if c.startswith("CR")]
    if not cr_kinds:
        return Lb, var, None, perfect
    G, q = layout.G, L.shape[0]
    z = np.empty((r, G, k))                  # Q_g'e_g
    lam, V = np.empty((s, G, k)), np.empty((s, G, k, k))
    need_eig = bool({"CR2", "CR3"} & set(cr_kinds))
    for ids, rows in layout.groups:
        Qg = layout.take(Q, rows)                                   # (s, Gm, m, k)
        z[:, ids] = _by_cluster(layout.take(E, rows), Qg)
        if need_eig:
            # H_gg = Q_g Q_g'; its nonzero eigenvalues are those of W_g = Q_g'Q_g = V diag(lam) V'
            lam[:, ids], V[:, ids] = np.linalg.eigh(np.swapaxes(Qg, -1, -2) @ Qg)
    Tg = T[:, None]                                                 # (s, 1, k, q)
    if need_eig:
        VtT = np.swapaxes(V, -1, -2) @ Tg                           # (s, G, k, q)
    for c in cr_kinds:
        if c in ("CR0", "CR1"):
            scores = _apply(z, np.broadcast_to(Tg, (s, G, k, q)))
        else:
            # Q_g'(I - H_gg)^p e_g = V diag((1 - lam)^p) V' Q_g'e_g, so the score of L b is
            # z_g' V diag((1 - lam)^p) V' T; Moore-Penrose (weight 0) where lam = 1.
            scores = _apply(z, V @ (_adjustment(c, lam)[..., None] * VtT))
        var[c] = (sw.cluster_factor(G) * sw.hc1_factor(n, k) if c == "CR1" else 1.0) * (scores ** 2).sum(1)
    df = None
    if "CR2" in cr_kinds:
        f = _adjustment("CR2", lam)
        w_sq = (lam * f ** 2)[..., None] * VtT ** 2                 # |A_g Q_g t|^2 = t'V lam f^2 V't
        a = V @ ((lam * f)[..., None] * VtT)                        # Q_g'A_g Q_g t, Q coordinates
        df = _satterthwaite(w_sq.sum(-2), a)
    return Lb, var, df, perfect


def _adjustment(kind, lam):
    """sandwich's CR2/CR3 function of the cluster leverages, f(lam) = (1 - lam)^(-1/2) or (1 - lam)^-1
    (``sw.CR_ADJUSTMENTS``), with weight 0 where lam = 1: Moore-Penrose, for clusters with I - H_gg
    singular, where sandwich.py raises instead (a Monte Carlo run should not stop at one such draw)."""
    singular = 1.0 - lam < sw.SINGULAR_TOL
    return np.where(singular, 0.0, sw.CR_ADJUSTMENTS[kind](np.where(singular, 0.0, lam)))


def _satterthwaite(w_sq, a):
    """Bell-McCaffrey df tr(G'G)^2 / tr((G'G)^2) for each contrast, in the orthonormal basis Q.

    The CR2 variance of l'b is sum_g (u_g' eps)^2 with u_g = (I - H)_{.,g} w_g, w_g = A_g Q_g t, so
    under the working model eps ~ (0, I): G'G = diag(w_g'w_g) - C, C_gh = a_g'a_h, a_g = Q_g'w_g (the
    bread (Q'Q)^-1 is I). With W = diag(w_g'w_g) and A the G x k matrix of a_g': tr(G'G) = tr W - tr(A'A)
    and tr((G'G)^2) = tr W^2 - 2 sum_g W_g C_gg + tr((A'A)^2); no G x G matrix is formed. This is
    sandwich.cr2_satterthwaite_df's formula with a leading batch axis and Moore-Penrose weights.
    Shapes: w_sq (s, G, q), a (s, G, k, q) -> df (s, q).
    """
    A = np.moveaxis(a, -1, 1)                               # (s, q, G, k)
    AtA = np.swapaxes(A, -1, -2) @ A                        # (s, q, k, k)
    C_diag = (A * A).sum(-1)                                # (s, q, G)
    W = np.swapaxes(w_sq, 1, 2)                             # (s, q, G)
    trace = W.sum(-1) - np.trace(AtA, axis1=-2, axis2=-1)
    trace_sq = (W ** 2).sum(-1) - 2 * (W * C_diag).sum(-1) + (AtA * np.swapaxes(AtA, -1, -2)).sum((-2, -1))
    return trace ** 2 / trace_sq


class MonteCarloOLS:
    r"""OLS estimates and standard errors for ``R`` replications, as :func:`ols_mc` returns them.

    - ``params``: the estimates, an (R, q) array (no DataFrames);
    - ``se[kind]``: (R, q) standard errors of each kind;
    - ``df[kind]``: degrees of freedom, broadcastable to (R, q);
    - ``names``: the q term (or contrast) names.
    """

    def __init__(self, params, se, df, names, n, k, G):
        self.params, self.se, self.df, self.names = params, se, df, list(names)
        self.n, self.k, self.G = n, k, G
        self._critical = {}          # (kind, alpha) -> t quantiles: one scipy call per kind, not per use

    @property
    def R(self) -> int:
        return self.params.shape[0]

    def _crit(self, kind, alpha, dist):
        alpha = check_alpha(alpha)
        if dist == "normal":
            return stats.norm.ppf(1 - alpha / 2)
        if dist == "t":
            if (kind, alpha) not in self._critical:
                self._critical[(kind, alpha)] = stats.t.ppf(1 - alpha / 2, self.df[kind])
            return self._critical[(kind, alpha)]
        raise InputError(f"dist must be 't' or 'normal', got {dist!r}")

    def _null(self, null):
        if isinstance(null, dict):
            missing = [nm for nm in self.names if nm not in null]
            if missing:
                raise InputError(f"null/truth has no value for {missing}")
            return np.array([check_scalar(null[nm], f"null/truth of {nm!r}") for nm in self.names])
        values = check_finite_array(null, "null/truth", ndim=(0, 1), numbers_only=True)
        if values.ndim == 1 and values.size != len(self.names):
            raise InputError(f"null/truth has {values.size} values for {len(self.names)} terms {self.names}")
        return np.broadcast_to(values, (len(self.names),))

    def _rate(self, hits: np.ndarray, kind: str) -> np.ndarray:
        """The share of ``hits`` among the replications whose standard error is defined (not an
        essentially perfect fit)."""
        defined = np.isfinite(self.se[kind])
        with np.errstate(invalid="ignore"):
            return (hits & defined).sum(0) / defined.sum(0)

    def tstat(self, kind: str, null=0.0) -> np.ndarray:
        r""":math:`(b_r - \text{null}) / \mathrm{se}_r` for every replication and term, (R, q); NaN for the
        replications that are essentially perfect fits."""
        self._check_kind(kind)
        return (self.params - self._null(null)) / self.se[kind]

    def reject(self, kind: str, null=0.0, alpha: float = 0.05, dist: str = "t") -> np.ndarray:
        r"""Two-sided test of :math:`b = \text{null}` at level ``alpha`` in each replication, (R, q)
        booleans (False where the t statistic is undefined).

        ``dist="t"`` uses the kind's df (:math:`n-k`, :math:`G-1`, or CR2's Satterthwaite df),
        ``"normal"`` the z critical value.
        """
        with np.errstate(invalid="ignore"):
            return np.abs(self.tstat(kind, null)) > self._crit(kind, alpha, dist)

    def rejection_rate(self, kind: str, null=0.0, alpha: float = 0.05, dist: str = "t") -> pd.Series:
        r"""The share of replications that reject ``null`` (see :meth:`reject`) among those with a defined
        standard error, a Series by term."""
        return pd.Series(self._rate(self.reject(kind, null, alpha, dist), kind), index=self.names,
                         name=f"{kind} ({dist})")

    def ci(self, kind: str, level: float = 0.95, dist: str = "t"):
        r"""Lower and upper confidence limits, each (R, q); ``level`` in (0, 1)."""
        self._check_kind(kind)
        half = self._crit(kind, 1 - check_alpha(level, "level"), dist) * self.se[kind]
        return self.params - half, self.params + half

    def coverage(self, kind: str, truth, level: float = 0.95, dist: str = "t") -> pd.Series:
        r"""The share of replications whose interval (see :meth:`ci`) covers ``truth``, among those with a
        defined standard error, a Series by term."""
        lo, hi = self.ci(kind, level, dist)
        t = self._null(truth)
        return pd.Series(self._rate((lo <= t) & (t <= hi), kind), index=self.names, name=f"{kind} ({dist})")

    def summary(self, truth, alpha: float = 0.05, term=None) -> pd.DataFrame:
        r"""Per kind: mean standard error, its ratio to the Monte Carlo sd of :math:`b`, and rejection rates
        of the true value with t and Normal critical values, for one ``term`` (default: the last);
        replications without a defined standard error (essentially perfect fits) are left out."""
        if term is not None and term not in self.names:
            raise InputError(f"term {term!r} is not among {self.names}")
        j = self.names.index(term) if term is not None else len(self.names) - 1
        sd = self.params[:, j].std(ddof=1)
        rows = {}
        for kind in self.se:
            se = self.se[kind][:, j]
            rows[kind] = {"mean se": np.nanmean(se), "sd se": np.nanstd(se, ddof=1),
                          "mean se / sd(b)": np.nanmean(se) / sd,
                          "reject (t)": self.rejection_rate(kind, truth, alpha, "t").iloc[j],
                          "reject (normal)": self.rejection_rate(kind, truth, alpha, "normal").iloc[j]}
        frame = pd.DataFrame(rows).T
        frame.attrs.update(term=self.names[j], mean_b=self.params[:, j].mean(), sd_b=sd, R=self.R)
        return frame

    def _check_kind(self, kind):
        if not isinstance(kind, str) or kind not in self.se:
            raise InputError(f"kind {kind!r} was not computed; available: {list(self.se)}")


def _stacked_data(X, Y):
    """X (n, k) or (R, n, k) and Y (R, n), checked (finite numbers, matching shapes, 0 < k < n); Y (n,) is one
    replication."""
    X = check_finite_array(X, "X", ndim=(2, 3))
    Y = check_finite_array(Y, "Y", ndim=(1, 2))
    Y = Y[None] if Y.ndim == 1 else Y
    R, n = Y.shape
    if X.shape[-2] != n or (X.ndim == 3 and X.shape[0] != R):
        raise InputError(f"X {X.shape} does not match Y {Y.shape}: need X (n, k) or (R, n, k) with Y (R, n)")
    k = X.shape[-1]
    if k == 0:
        raise InputError("X has no columns")
    if n <= k:
        raise InputError(f"n = {n} observations do not exceed k = {k} coefficients")
    return X, Y


def ols_mc(X, Y=None, cluster=None, kinds=None, contrasts=None,
           chunk: int | None = None) -> MonteCarloOLS:
    r"""OLS for ``R`` replications at once, with classical, HC0-HC5 (and HC4m) and CR0-CR3 standard errors.

    Fixed :math:`X`: :math:`(X'X)^{-1}`, leverages and the per-cluster CR2/CR3 adjustments are
    computed once, then all residuals and meats for a chunk of replications are matrix products.
    Varying :math:`X`: the same algebra on stacked (r, n, k) arrays (batched QR, eigh of k x k
    matrices). Formulas, with :math:`P = X (X'X)^{-1} L'` and :math:`e` the OLS residuals:

    classical
        :math:`s^2 L (X'X)^{-1} L'`, :math:`s^2 = e'e/(n-k)`.
    HC
        :math:`\operatorname{Var}(l'b) = \sum_i w_i e_i^2 P_i^2` (HC0 :math:`1`, HC1 :math:`n/(n-k)`,
        HC2 :math:`1/(1-h)`, HC3 :math:`1/(1-h)^2`, HC4 :math:`1/(1-h)^{\min(4,\, nh/k)}`; HC4m and HC5
        as :func:`hlmlib.sandwich.hc_weights`, HC5 with the largest leverage of each replication).
    CR
        :math:`\operatorname{Var}(l'b) = c \sum_g (P_g' A_g e_g)^2` (CR0/CR1 :math:`A_g = I`, CR1
        :math:`c = G/(G-1) \cdot (n-1)/(n-k)`; CR2 :math:`A_g = (I - H_{gg})^{-1/2}`; CR3
        :math:`A_g = (I - H_{gg})^{-1}`; Moore-Penrose where :math:`I - H_{gg}` is singular).

    The df: :math:`n-k` (classical, HC), :math:`G-1` (CR0, CR1, CR3), Bell-McCaffrey Satterthwaite
    (CR2; per replication if :math:`X` varies). Matches the Stata/sandwich/clubSandwich conventions
    stated in the module docstring.

    Scale-equivariant: when the columns of :math:`X` are in units far apart, or :math:`y` or :math:`X`
    far from 1, the work is done on power-of-two scaled copies (exact), so results hold for data
    anywhere in the double range. A replication whose residuals are at the rounding level of
    :math:`y` (an essentially perfect fit) gets NaN standard errors, a warning, and is left out of
    rejection rates and coverage. Refused (:class:`~hlmlib.design.InputError`): NaN, inf or complex values, Y of more
    than two dimensions, contrasts that are not finite or all zero, unknown kinds, a ``chunk`` that is
    not a positive integer, a rank-deficient X.

    Parameters
    ----------
    X : *array* or Batch
        (n, k) when the regressors are the same in every replication, else (R, n, k). A
        :class:`Batch` can be passed as ``X`` alone.
    Y : *array* (R, n)
        The responses.
    cluster : *array* (n,) or None
        Cluster labels, the same in every replication.
    kinds : list of str or None
        Defaults to classical and HC1, plus CR1 and CR2 when there are clusters.
    contrasts : *array* (q, k) or None
        Linear combinations :math:`Lb` (default: every coefficient).
    chunk : int or None
        Replications per batch of array operations (default: stacked arrays of tens of MB).

    Returns
    -------
    MonteCarloOLS
        Estimates, standard errors and df of every replication, with rejection rates and coverage.
    """
    names = None
    if isinstance(X, Batch):
        batch = X
        X, Y, names = batch.X, batch.Y, batch.names
        cluster = batch.cluster if cluster is None else cluster
    if Y is None:
        raise InputError("give the responses Y (R, n), or a Batch as X")
    X, Y = _stacked_data(X, Y)
    R, n = Y.shape
    k = X.shape[-1]
    if kinds is None:
        kinds = ["classical", "HC1"] + (["CR1", "CR2"] if cluster is not None else [])
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    bad = [c for c in kinds if not isinstance(c, str) or c not in KINDS]
    if bad or not kinds:
        raise InputError(f"unknown kind(s) {bad}; choose from {KINDS}")
    layout = None
    if any(c.startswith("CR") for c in kinds):
        if cluster is None:
            raise InputError("CR kinds need cluster= labels (one per observation)")
        layout = _Layout(cluster, n)
        if layout.G < 2:
            raise InputError("cluster-robust standard errors need at least 2 clusters")
    L = np.eye(k) if contrasts is None else np.atleast_2d(check_finite_array(contrasts, "contrasts", ndim=(1, 2), numbers_only=True))
    if L.shape[1] != k:
        raise InputError(f"contrasts must have k = {k} columns, got shape {L.shape}")
    if not L.any(axis=1).all():
        raise InputError(f"contrast row(s) {np.flatnonzero(~L.any(axis=1)).tolist()} have all weights 0")
    if contrasts is not None or not names:
        names = [f"b{j}" for j in range(L.shape[0])]
    if chunk is None:  # keep the stacked (r, n, k) arrays around tens of MB
        chunk = max(1, 4_000_000 // (n * (k if X.ndim == 3 else 1) + 1))
    chunk = _count(chunk, "chunk")
    # scale-equivariance: with columns of X in units far apart (beyond 2^10) or y or X far from 1 (beyond
    # 2^+-200, 1e+-60), work with y / s_y and X D^-1 (powers of two: exact) and the contrasts in those
    # units, each row at unit size, so that the batched QR sees a well-scaled X and no square leaves the
    # double range
    y_scale = power_of_two_scale(np.array([largest_magnitude(Y.ravel())]))[0]
    col_scale = power_of_two_scale(largest_magnitude(X))
    rescale_y = abs(np.log2(y_scale)) > 200
    rescale_x = np.ptp(np.log2(col_scale)) > 10 or np.abs(np.log2(col_scale)).max() > 200
    y_scale = y_scale if rescale_y else 1.0
    out_scale = np.full(L.shape[0], y_scale)                    # L b = out_scale * (L_unit b_s)
    if rescale_x:
        L = L / col_scale
        out_scale = out_scale * np.abs(L).max(axis=1)
        L = L / np.abs(L).max(axis=1, keepdims=True)
        X = X / col_scale if X.ndim == 2 else X
    params, var, dfs, perfect = [], {c: [] for c in kinds}, [], []
    for s in range(0, R, chunk):
        Xc = X if X.ndim == 2 else X[s:s + chunk]
        Yc = Y[s:s + chunk] / y_scale if rescale_y else Y[s:s + chunk]
        Xc = Xc / col_scale if rescale_x and X.ndim == 3 else Xc
        b, v, d, exact = _chunk_ols(Xc, Yc, L, kinds, layout)
        params.append(b)
        perfect.append(exact)
        for c in kinds:
            var[c].append(v[c])
        if d is not None:
            dfs.append(d)
            if X.ndim == 2:  # fixed X: the df does not depend on y
                dfs = [d]
    perfect = np.concatenate(perfect)
    params = np.concatenate(params)
    se = {c: np.sqrt(np.concatenate(var[c])) for c in kinds}
    if rescale_x or rescale_y:
        params = params * out_scale
        se = {c: v * out_scale for c, v in se.items()}
    if perfect.any():
        warnings.warn(f"essentially perfect fit in {int(perfect.sum())} of {R} replication(s) (residuals at the "
                      "rounding level of y): their standard errors are NaN, and they are left out of rejection "
                      "rates and coverage", UserWarning, stacklevel=2)
        for c in kinds:
            se[c][perfect] = np.nan
    df = {}
    for c in kinds:
        if c == "classical" or c.startswith("HC"):
            df[c] = np.full(L.shape[0], n - k, dtype=float)
        elif c == "CR2":
            df[c] = dfs[0][0] if X.ndim == 2 else np.concatenate(dfs)
        else:
            df[c] = np.full(L.shape[0], layout.G - 1, dtype=float)
    return MonteCarloOLS(params, se, df, names, n, k, layout.G if layout else None)
