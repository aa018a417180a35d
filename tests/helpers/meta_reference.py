"""Independent references for the random-effects meta-regression: metafor's BCG data and a brute-force
REML (scipy over the restricted log-likelihood), shared by the meta and verdict tests."""

from __future__ import annotations

import numpy as np
from scipy import optimize

# metafor's dat.bcg (Colditz et al. 1994): BCG vaccine trials, columns tpos, tneg, cpos, cneg, ablat.
BCG = np.array([
    [4, 119, 11, 128, 44], [6, 300, 29, 274, 55], [3, 228, 11, 209, 42], [62, 13536, 248, 12619, 52],
    [33, 5036, 47, 5761, 13], [180, 1361, 372, 1079, 44], [8, 2537, 10, 619, 19], [505, 87886, 499, 87892, 13],
    [29, 7470, 45, 7232, 27], [17, 1699, 65, 1600, 42], [186, 50448, 141, 27197, 18], [5, 2493, 3, 2338, 33],
    [27, 16886, 29, 17825, 33],
], dtype=np.float64)


def bcg_log_risk_ratios():
    """(ablat, yi, sqrt(vi)) as metafor's ``escalc(measure = "RR", ...)`` computes them."""
    tpos, tneg, cpos, cneg, ablat = BCG.T
    yi = np.log(tpos / (tpos + tneg)) - np.log(cpos / (cpos + cneg))
    vi = 1 / tpos - 1 / (tpos + tneg) + 1 / cpos - 1 / (cpos + cneg)
    return ablat, yi, np.sqrt(vi)


def brute_force(x, y, se):
    """REML tau^2 by scipy over the restricted log-likelihood, then WLS and the Knapp-Hartung covariance."""
    design = np.column_stack([np.ones_like(x), x])

    def solve(tau2):
        w = 1 / (se**2 + tau2)
        information = design.T @ (w[:, None] * design)
        beta = np.linalg.solve(information, design.T @ (w * y))
        return w, information, beta, y - design @ beta

    def negative_restricted_log_likelihood(tau2):
        w, information, _, r = solve(tau2)
        return 0.5 * (-np.log(w).sum() + np.linalg.slogdet(information)[1] + (w * r * r).sum())

    tau2 = optimize.minimize_scalar(negative_restricted_log_likelihood, bounds=(0, 10), method="bounded",
                                    options={"xatol": 1e-12}).x
    w, information, beta, r = solve(tau2)
    s2 = (w * r * r).sum() / (len(y) - 2)
    return tau2, beta, s2 * np.linalg.inv(information)
