"""mixed's converged flag means what it says: the Hessian-scaled projected gradient is negligible where
the search ended and, on the boundary, the KKT conditions hold; otherwise converged is False and a
warning says so."""
import sys
import warnings

import numpy as np
import pytest

from hlmlib.lmm_objective import blocked_cholesky, cross_products, theta_lower_bounds
from hlmlib.mixed import _boundary_kkt_holds, _unit_scale, fit_theta, mixed, newton_minimise


def random_slope_data(seed=4, J=20, n=8):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=g.size)
    X = np.column_stack([np.ones(g.size), x])
    u = rng.normal(size=(J, 2)) * [1.0, 0.7]
    y = X @ [1.0, 0.5] + u[g, 0] + u[g, 1] * x + rng.normal(size=g.size)
    return y, X, g


def test_the_iteration_limit_is_not_convergence():
    y, X, g = random_slope_data()
    unit, _ = _unit_scale(cross_products(y, X, X, g, 20))
    stopped = newton_minimise(np.array([5.0, -3.0, 0.01]), unit, True, theta_lower_bounds(2), max_iter=1)
    assert stopped.message == "iteration limit reached" and not stopped.converged
    full = newton_minimise(np.array([5.0, -3.0, 0.01]), unit, True, theta_lower_bounds(2))
    assert full.converged and full.deviance < stopped.deviance


def test_the_boundary_kkt_check():
    """At tau = 0 the conditions fail for data with group effects (the variance should grow) and hold
    for data whose residuals have exactly zero group means (tau = 0 is the maximum there). A gradient
    method in theta cannot tell these apart at a zero column of Lambda, where dd/dtheta vanishes."""
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(12), 5)
    x = rng.normal(size=g.size)
    x -= (np.bincount(g, x) / 5)[g]
    e = rng.normal(size=g.size)
    e -= (np.bincount(g, e) / 5)[g]
    X, Z = np.column_stack([np.ones(g.size), x]), np.ones((g.size, 1))
    at_zero = np.array([0.0])
    for y, optimal in ((2 + 0.5 * x + e, True), (2 + 0.5 * x + e + 3 * rng.normal(size=12)[g], False)):
        unit, _ = _unit_scale(cross_products(y, X, Z, g, 12))
        assert _boundary_kkt_holds(blocked_cholesky(at_zero, unit), unit, True) is optimal
    y, X, g = random_slope_data()
    unit, _ = _unit_scale(cross_products(y, X, X, g, 20))
    assert not _boundary_kkt_holds(blocked_cholesky(np.array([1.0, 0.0, 0.0]), unit), unit, True)


def test_an_unconverged_fit_warns_and_says_so(monkeypatch):
    y, X, g = random_slope_data()
    module = sys.modules["hlmlib.mixed"]
    original = module.newton_minimise
    monkeypatch.setattr(module, "newton_minimise",
                        lambda theta, cp, reml, lower, max_iter=200: original(theta, cp, reml, lower, max_iter=1))
    with pytest.warns(RuntimeWarning, match="may not have converged"):
        fit = mixed(y, X, g, X)
    assert not fit.converged and "Converged: False" in str(fit.summary())


def test_converged_fits_are_optimal_across_designs():
    """Where mixed says converged, no other start finds a lower criterion (checked from three starts)."""
    for seed in range(8):
        y, X, g = random_slope_data(seed, J=8 + seed, n=3 + seed % 4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = mixed(y, X, g, X, reml=bool(seed % 2))
        cp = cross_products(y, X, X, g, len(np.unique(g)))
        others = [fit_theta(cp, bool(seed % 2), start=np.array(s)).deviance
                  for s in ([0.1, 0.0, 0.1], [3.0, 1.0, 2.0], [1.0, -1.0, 0.5])]
        if fit.converged:
            assert fit.deviance <= min(others) + 1e-6
