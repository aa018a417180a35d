"""Random-effects meta-regression over tasks: one fitted point per task, each with its standard error.

The model, for task ``i`` with point ``y_i`` (its fitted alpha, its log loss at the centre N),
standard error ``se_i`` and covariate ``x_i`` (1/d_data, log K_F)::

    y_i = b0 + b1 x_i + u_i + e_i,    u_i ~ N(0, tau^2),  e_i ~ N(0, se_i^2)

``tau^2`` is the between-task variance: what tasks differ by beyond their own fitting error.
It is estimated by restricted maximum likelihood (REML); ``(b0, b1)`` is then the weighted
least-squares solution with weights ``w_i = 1 / (se_i^2 + tau^2)``. The covariance is the
Knapp-Hartung one, ``s^2 (X' W X)^-1`` with ``s^2 = sum w_i r_i^2 / (n - 2)`` (not truncated at
1, as metafor's ``test = "knha"``), and intervals are t with ``n - 2`` degrees of freedom
(Knapp & Hartung 2003, Stat. Med. 22:2693).

Why not ``1 / se^2`` weights with a multiplicative scale
(:func:`lightning_dims.analysis.stats.fit_weighted_line`): that fit absorbs the between-task
excess by scaling every error alike, so a task with a small ``se_i`` keeps its large share of the
weight however much tasks scatter. Under random effects every weight is capped by ``1 / tau^2``,
so once tasks scatter more than their errors say they count more nearly alike. The scaled fit
stays in the report as a labelled sensitivity line.

The computation is PyMARE's (``pymare.estimators.VarianceBasedLikelihoodEstimator(method="REML")``
with its default ``small_sample_correction="knapp-hartung"``; PyMARE checks it against metafor).
This module only validates the inputs, calls it and keeps the result with its labels.

**Clustered by dataset** (:func:`clustered`): class pairs of one dataset are not independent tasks.
The same REML fit with the tasks grouped by dataset gives PyMARE's cluster-robust (CR2)
covariance with Satterthwaite degrees of freedom (Tipton 2015, Psychol. Methods 20:375): the
slope's interval when datasets, not tasks, are the independent units. With few datasets the
degrees of freedom are small and the interval wide; PyMARE's warnings about that are kept as notes.
:func:`random_effects` raises :class:`lightning_dims.analysis.stats.FitError` (a ``ValueError``)
with the reason when a fit cannot be made.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from lightning_dims.analysis.stats import FitError

__all__ = ["CLUSTERED_METHOD", "METHOD", "ClusteredCheck", "MetaRegression", "clustered", "random_effects"]

METHOD = "REML tau^2, Knapp-Hartung t with n - 2 d.o.f. (PyMARE)"
"""What :func:`random_effects` fits, as it is printed beside each fit."""

CLUSTERED_METHOD = "REML tau^2, CR2 cluster-robust by dataset, Satterthwaite t (PyMARE)"


@dataclass(frozen=True)
class MetaRegression:
    """Random-effects meta-regression y_i = b0 + b1 * x_i + u_i + e_i, u_i ~ N(0, tau^2),
    e_i ~ N(0, se_i^2): tau^2 by REML, Knapp-Hartung covariance, t intervals with n - 2 d.o.f."""

    x: np.ndarray
    y: np.ndarray
    se: np.ndarray
    labels: tuple[str, ...]
    intercept: float
    slope: float
    cov: np.ndarray
    """2x2 covariance of (intercept, slope), Knapp-Hartung adjusted."""
    tau2: float
    """Between-task variance (REML), in squared units of y."""
    df: int
    """Degrees of freedom of the t intervals: n - 2."""
    method: str = METHOD

    @property
    def tau(self) -> float:
        """Between-task standard deviation, units of y."""
        return math.sqrt(self.tau2)

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def weights(self) -> np.ndarray:
        """Each task's share of the weight, ``w_i / sum w`` with ``w_i = 1 / (se_i^2 + tau^2)``; sums to 1."""
        w = 1.0 / (self.se**2 + self.tau2)
        return w / w.sum()

    @property
    def max_weight_share(self) -> float:
        return float(self.weights.max())

    @property
    def heaviest(self) -> str:
        """Label of the task with the largest weight share."""
        return self.labels[int(np.argmax(self.weights))]

    @property
    def slope_se(self) -> float:
        return math.sqrt(self.cov[1, 1])

    def _t(self, level: float) -> float:
        return float(stats.t.ppf((1 + level) / 2, self.df))

    def slope_interval(self, level: float = 0.95) -> tuple[float, float]:
        """``slope -/+ t_{(1+level)/2, n-2} * SE(slope)``."""
        half = self._t(level) * self.slope_se
        return (self.slope - half, self.slope + half)

    def slope_p(self, null: float = 0.0) -> float:
        """Two-sided t test (``n - 2`` d.o.f.) of ``slope = null``; NaN when the slope's SE is 0 (a perfect fit)."""
        if self.slope_se == 0:
            return math.nan
        return float(2 * stats.t.sf(abs(self.slope - null) / self.slope_se, self.df))

    def predict(self, x_new: float, level: float = 0.95, *, new_task: bool = True) -> tuple[float, tuple[float, float]]:
        """The mean ``b0 + b1 x_new`` and its interval ``mean -/+ t_{df} sqrt([1, x] cov [1, x]' (+ tau^2))``.

        ``new_task=True`` (a prediction interval: where a new task's own mean lies) adds ``tau^2``;
        ``False`` gives the interval of the line's mean at ``x_new``.
        """
        design = np.array([1.0, float(x_new)])
        mean = self.intercept + self.slope * float(x_new)
        variance = float(design @ self.cov @ design) + (self.tau2 if new_task else 0.0)
        half = self._t(level) * math.sqrt(variance)
        return mean, (mean - half, mean + half)


def _checked(x, y, se, labels):
    """Validated float arrays and labels (the rules of :func:`random_effects`)."""
    x, y, se = (np.asarray(column, dtype=np.float64) for column in (x, y, se))
    if x.ndim != 1 or y.shape != x.shape or se.shape != x.shape:
        raise FitError(f"x, y and se must be 1-d and of equal length, got shapes {x.shape}, {y.shape}, {se.shape}")
    n = len(x)
    if n < 3:
        raise FitError(f"a random-effects line through {n} point(s) has no degrees of freedom left (needs at least 3)")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(np.isfinite(se))):
        raise FitError("non-finite values among the points: drop them before fitting")
    if np.ptp(x) == 0:
        raise FitError(f"all {n} points have the same x: a slope needs spread in x")
    if np.any(se <= 0):
        raise FitError("a point with standard error <= 0: raise it to a floor (a task fitted exactly) before fitting")
    names = tuple(str(label) for label in labels) if labels is not None else tuple(str(i) for i in range(n))
    if len(names) != n:
        raise FitError(f"{n} points but {len(names)} labels")
    return x, y, se, names


def _fit(x, y, se, groups=None):
    """PyMARE's REML estimator fitted; its warnings returned as text."""
    # PyMARE (with pandas and formulaic) takes about a second to import: only when a fit is made.
    from pymare import Dataset
    from pymare.estimators import VarianceBasedLikelihoodEstimator

    estimator = VarianceBasedLikelihoodEstimator(method="REML", small_sample_correction="knapp-hartung")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit_dataset(Dataset(y=y, v=se**2, X=x[:, None], g=groups, add_intercept=True))
    return estimator.params_, tuple(dict.fromkeys(str(w.message).split(". ")[0] for w in caught))


def random_effects(
    x: Sequence[float], y: Sequence[float], se: Sequence[float], labels: Sequence[str] | None = None
) -> MetaRegression:
    """Fit the random-effects meta-regression of the module docstring (PyMARE, REML, Knapp-Hartung).

    Needs 3 points, spread in x, every value finite and every ``se`` positive; raises
    :class:`FitError` (a ``ValueError``) saying which is missing. ``labels`` name the points
    (default ``"0"``, ``"1"``, ...).
    """
    x, y, se, names = _checked(x, y, se, labels)
    params, _ = _fit(x, y, se)
    beta = np.asarray(params["fe_params"], dtype=np.float64).ravel()
    cov = np.asarray(params["inv_cov"], dtype=np.float64).reshape(2, 2)
    tau2 = float(np.asarray(params["tau2"]).ravel()[0])
    return MetaRegression(x=x, y=y, se=se, labels=names, intercept=float(beta[0]), slope=float(beta[1]),
                          cov=cov, tau2=max(tau2, 0.0), df=len(x) - 2)


@dataclass(frozen=True)
class ClusteredCheck:
    """The random-effects slope with datasets as the units (CR2, Satterthwaite ``dof``); ``notes``: PyMARE's warnings."""

    slope: float
    interval: tuple[float, float]
    dof: float
    n_clusters: int
    level: float
    notes: tuple[str, ...] = ()
    method: str = CLUSTERED_METHOD


def clustered(
    x: Sequence[float], y: Sequence[float], se: Sequence[float], groups: Sequence[str], level: float = 0.95
) -> ClusteredCheck:
    """The slope of :func:`random_effects` with a cluster-robust interval over ``groups`` (module docstring).

    Needs 3 groups (2 leave no degrees of freedom for a slope's cluster-robust error); raises
    :class:`FitError` otherwise.
    """
    x, y, se, _ = _checked(x, y, se, None)
    keys = list(dict.fromkeys(str(g) for g in groups))
    if len(groups) != len(x):
        raise FitError(f"{len(x)} points but {len(groups)} group labels")
    if len(keys) < 3:
        raise FitError(f"{len(keys)} dataset(s) ({', '.join(keys)}): a slope clustered by dataset needs at least 3")
    codes = np.array([keys.index(str(g)) for g in groups])
    params, notes = _fit(x, y, se, codes)
    slope = float(np.asarray(params["fe_params"]).ravel()[1])
    slope_se = math.sqrt(float(np.asarray(params["inv_cov"]).reshape(2, 2)[1, 1]))
    dof = float(np.asarray(params["dof"]).ravel()[1])
    half = float(stats.t.ppf((1 + level) / 2, dof)) * slope_se
    return ClusteredCheck(slope, (slope - half, slope + half), dof, len(keys), level, notes)
