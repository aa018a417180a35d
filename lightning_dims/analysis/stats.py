"""The statistics of the report, on top of ``scipy.stats``: line fits, correlations, partial correlation, proportions.

Every estimate comes with a two-sided ``confidence`` interval (default 95 %) and the number of
points it rests on. Which interval, and under which assumption:

* **Line fit** ``y = intercept + slope x`` (:func:`fit_line`): ordinary least squares,
  ``scipy.stats.linregress``; intervals ``estimate +- t_{(1+c)/2, n-2} * stderr``, exact when the
  residuals are independent and normal with one variance. :meth:`LineFit.mean_at` gives the fitted
  mean at one ``x`` with its interval ``s * sqrt(1/n + (x - mean x)^2 / Sxx)``.
* **Weighted line fit** (:func:`fit_weighted_line`), for points that are themselves estimates
  with standard errors ``se_i`` (one fitted value per task): weighted least squares with weights
  ``w_i = 1 / se_i^2``; ``xw = sum w x / sum w``, ``Sxx_w = sum w (x - xw)^2``,
  ``slope = sum w (x - xw)(y - yw) / Sxx_w``. The scale is ``max(1, chi2 / (n - 2))`` with
  ``chi2 = sum w (y - fit)^2``: the standard errors alone when the points scatter no more than
  they say, inflated by the extra scatter between tasks when they do (never deflated below the
  points' own errors). ``SE(slope) = sqrt(scale / Sxx_w)``, ``SE(intercept) = sqrt(scale (1/sum w
  + xw^2 / Sxx_w))``, t intervals with ``n - 2`` degrees of freedom (conservative when the
  ``se_i`` are the whole story). Errors in x are not modelled.
* **Whole-group bootstrap** (:func:`group_bootstrap`): for points that come in groups sharing one
  value of the quantity under test (runs of one task share its K_F), the groups, not the points,
  are resampled: each resample draws as many groups as there are, with replacement (seeded), and
  recomputes the statistic over all points of the drawn groups (a group drawn twice counts twice).
  Percentile interval. Resamples where the statistic is undefined (e.g. every drawn group the
  same, so x is constant) are dropped and counted; when more than :data:`MAX_UNDEFINED` of them
  are, no interval is given.
* **Pearson r** (:func:`correlate`): ``scipy.stats.pearsonr``; interval from Fisher's
  ``z = artanh r`` with standard error ``1/sqrt(n - 3)`` (``pearsonr(...).confidence_interval``),
  exact for bivariate normal data, needs n >= 4. For task-level correlations (``task_level=True``)
  also a **task-permutation p**: two-sided, the tasks' y values permuted against their x
  (``scipy.stats.permutation_test``, ``permutation_type="pairings"``, exact up to 7 tasks (7! <= 9999), else
  9999 random permutations with a fixed seed); it assumes only exchangeable tasks under no association.
* **Spearman rho**: ``scipy.stats.spearmanr``; interval by ``scipy.stats.bootstrap`` (paired
  resampling of the points, BCa, 9999 resamples, fixed seed). When some resamples have a constant
  variable (few points, or few distinct values), rho is undefined there and the interval is
  reported as unavailable rather than made up; when every resample gives the same rho the
  interval is that value; when BCa's correction is undefined the percentile interval of the same
  resamples is given, with a note.
* **Partial correlation** of x and y given z (:func:`partial_correlation`): Pearson r of the
  residuals of x on z and of y on z (each an OLS fit with intercept); Fisher interval with
  standard error ``1/sqrt(n - 4)`` (one covariate) and a t test with ``n - 3`` degrees of freedom.
* **Proportion** k of n (:func:`proportion`): Clopper-Pearson exact interval
  (``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``); for independent units only.
* **Ratio of two groups' geometric means** (:func:`geometric_mean_ratio`): ``exp(mean log a -
  mean log b)`` with Welch's t interval of the difference of mean logs (Welch-Satterthwaite
  degrees of freedom; ``scipy.stats.ttest_ind(equal_var=False).confidence_interval``); needs 2 values per group, every value positive; units are the values
  (e.g. one K_F per dataset).
* **Group means** (:func:`group_means`): one point per group, the mean of its points, so that
  groups, not points, are the units of a correlation.

Numbers are float64. Nothing here knows about runs or tasks: arrays (and group labels) in,
dataclasses out.
:class:`FitError` (a ``ValueError``) says in words why a fit cannot be made (too few points, no
spread); the callers turn it into a reported skip.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "CONFIDENCE",
    "MAX_UNDEFINED",
    "Correlation",
    "FitError",
    "GroupBootstrap",
    "Interval",
    "LineFit",
    "PartialCorrelation",
    "Proportion",
    "Ratio",
    "correlate",
    "fit_line",
    "fit_weighted_line",
    "geometric_mean_ratio",
    "group_bootstrap",
    "group_codes",
    "group_means",
    "partial_correlation",
    "permutation_p",
    "proportion",
    "rank_correlation",
    "residuals",
    "spearman_interval",
    "weighted_mean",
    "weighted_pearson",
]

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0
MAX_UNDEFINED = 0.05
"""A whole-group bootstrap gives no interval when more than this fraction of its resamples is undefined."""

Interval = tuple[float | None, float | None]


class FitError(ValueError):
    """A fit or correlation that cannot be computed from these points; the message says why."""


def _as_arrays(*columns: Sequence[float]) -> list[np.ndarray]:
    arrays = [np.asarray(column, dtype=np.float64) for column in columns]
    if any(a.ndim != 1 or len(a) != len(arrays[0]) for a in arrays):
        raise ValueError(f"expected 1-d columns of equal length, got shapes {[a.shape for a in arrays]}")
    if any(not np.all(np.isfinite(a)) for a in arrays):
        raise FitError("non-finite values among the points")
    return arrays


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _need_spread(values: np.ndarray, name: str) -> None:
    if np.ptp(values) == 0:
        raise FitError(f"all {len(values)} points have the same {name}")


@dataclass(frozen=True)
class LineFit:
    """``y = intercept + slope * x`` with t intervals, OLS or WLS (``method``; see module docstring).

    ``x_mean`` and ``sxx`` are weighted for WLS; ``sum_weights`` is ``n`` for OLS and ``sum w``
    for WLS; ``residual_sd`` is ``s`` for OLS and ``sqrt(scale)`` for WLS.
    """

    slope: float
    slope_ci: Interval
    slope_se: float
    intercept: float
    intercept_ci: Interval
    r2: float
    p_value: float
    n: int
    confidence: float
    x_mean: float
    sxx: float
    residual_sd: float
    sum_weights: float
    method: str = "ols"

    def predict(self, x: float | np.ndarray) -> float | np.ndarray:
        return self.intercept + self.slope * np.asarray(x, dtype=np.float64)

    def mean_se_at(self, x: float) -> float:
        """Standard error of the fitted mean at ``x``: ``s sqrt(1/sum w + (x - mean x)^2 / Sxx)``."""
        return self.residual_sd * math.sqrt(1.0 / self.sum_weights + (x - self.x_mean) ** 2 / self.sxx)

    def mean_at(self, x: float) -> tuple[float, Interval]:
        """The fitted mean at ``x`` and its t interval (``n - 2`` degrees of freedom)."""
        half = stats.t.ppf((1 + self.confidence) / 2, self.n - 2) * self.mean_se_at(x)
        centre = float(self.predict(x))
        return centre, (_finite(centre - half), _finite(centre + half))


def fit_line(x: Sequence[float], y: Sequence[float], confidence: float = CONFIDENCE) -> LineFit:
    """OLS fit of ``y`` on ``x`` (``scipy.stats.linregress``) with t intervals; needs 3 points and spread in x."""
    x, y = _as_arrays(x, y)
    if len(x) < 3:
        raise FitError(f"a line through {len(x)} point(s) has no uncertainty (needs at least 3)")
    _need_spread(x, "x")
    result = stats.linregress(x, y)
    n = len(x)
    t = stats.t.ppf((1 + confidence) / 2, n - 2)
    residuals = y - (result.intercept + result.slope * x)
    residual_sd = math.sqrt(float(residuals @ residuals) / (n - 2))
    return LineFit(
        slope=float(result.slope),
        slope_ci=(_finite(result.slope - t * result.stderr), _finite(result.slope + t * result.stderr)),
        slope_se=float(result.stderr),
        intercept=float(result.intercept),
        intercept_ci=(
            _finite(result.intercept - t * result.intercept_stderr),
            _finite(result.intercept + t * result.intercept_stderr),
        ),
        r2=float(result.rvalue**2),
        p_value=float(result.pvalue),
        n=n,
        confidence=confidence,
        x_mean=float(x.mean()),
        sxx=float(((x - x.mean()) ** 2).sum()),
        residual_sd=residual_sd,
        sum_weights=float(n),
    )


def fit_weighted_line(
    x: Sequence[float], y: Sequence[float], se: Sequence[float], confidence: float = CONFIDENCE
) -> LineFit:
    """WLS fit of ``y`` on ``x`` with weights ``1 / se^2`` and the scale ``max(1, chi2 / (n - 2))`` (module docstring).

    Needs 3 points, spread in x and every ``se`` positive and finite.
    """
    x, y, se = _as_arrays(x, y, se)
    if len(x) < 3:
        raise FitError(f"a line through {len(x)} point(s) has no uncertainty (needs at least 3)")
    _need_spread(x, "x")
    if np.any(se <= 0):
        raise FitError("a point with standard error 0 cannot be weighted by 1/SE^2")
    n = len(x)
    w = 1.0 / se**2
    sum_w = float(w.sum())
    xw, yw = float(w @ x) / sum_w, float(w @ y) / sum_w
    sxx = float(w @ (x - xw) ** 2)
    slope = float(w @ ((x - xw) * (y - yw))) / sxx
    intercept = yw - slope * xw
    chi2 = float(w @ (y - intercept - slope * x) ** 2)
    scale = max(1.0, chi2 / (n - 2))
    slope_se = math.sqrt(scale / sxx)
    intercept_se = math.sqrt(scale * (1.0 / sum_w + xw**2 / sxx))
    t = stats.t.ppf((1 + confidence) / 2, n - 2)
    syy = float(w @ (y - yw) ** 2)
    return LineFit(
        slope=slope,
        slope_ci=(float(slope - t * slope_se), float(slope + t * slope_se)),
        slope_se=slope_se,
        intercept=intercept,
        intercept_ci=(float(intercept - t * intercept_se), float(intercept + t * intercept_se)),
        r2=1.0 - chi2 / syy if syy > 0 else 1.0,
        p_value=float(2 * stats.t.sf(abs(slope / slope_se), n - 2)),
        n=n,
        confidence=confidence,
        x_mean=xw,
        sxx=sxx,
        residual_sd=math.sqrt(scale),
        sum_weights=sum_w,
        method="wls",
    )


@dataclass(frozen=True)
class Correlation:
    """Pearson r (Fisher interval) and Spearman rho (bootstrap interval) of paired points."""

    pearson: float
    pearson_ci: Interval
    pearson_p: float
    spearman: float
    spearman_ci: Interval
    spearman_p: float
    n: int
    confidence: float
    note: str | None = None
    permutation_p: float | None = None


def rank_correlation(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Spearman rho along ``axis`` (Pearson r of average ranks), vectorised for ``scipy.stats.bootstrap``."""
    ra, rb = stats.rankdata(a, axis=axis), stats.rankdata(b, axis=axis)
    ra = ra - ra.mean(axis=axis, keepdims=True)
    rb = rb - rb.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(axis=axis) / np.sqrt((ra**2).sum(axis=axis) * (rb**2).sum(axis=axis))


def spearman_interval(x: np.ndarray, y: np.ndarray, confidence: float) -> tuple[Interval, str | None]:
    """BCa bootstrap interval of Spearman rho; ``(None, None)`` and the reason when resamples degenerate."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns when the interval is NaN; we say why instead
        result = stats.bootstrap(
            (x, y),
            rank_correlation,
            paired=True,
            vectorized=True,
            n_resamples=BOOTSTRAP_RESAMPLES,
            confidence_level=confidence,
            method="BCa",
            rng=np.random.default_rng(BOOTSTRAP_SEED),
        )
    low, high = _finite(result.confidence_interval.low), _finite(result.confidence_interval.high)
    if low is not None and high is not None:
        return (low, high), None
    replicates = result.bootstrap_distribution
    if np.isnan(replicates).any():
        return (None, None), f"no rank interval: some of the {len(x)}-point resamples have a constant variable"
    if np.ptp(replicates) == 0:  # every resample gives the same rho (e.g. a strictly monotone relation)
        return (float(replicates[0]),) * 2, None
    tail = (1 - confidence) / 2 * 100  # BCa's correction is undefined here: plain percentile interval
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return (float(low), float(high)), "percentile bootstrap interval (BCa undefined for these points)"


def permutation_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided permutation p of Pearson r (module docstring): exact up to 7 points, else 9999 seeded permutations.

    Only ``y`` is permuted (``x`` held fixed), so the ``n!`` orderings are the permutation distribution.
    """
    x = np.asarray(x, dtype=np.float64)
    dx = x - x.mean()

    def pearson(b, axis=-1):
        b = b - b.mean(axis=axis, keepdims=True)
        return (dx * b).sum(axis=axis) / np.sqrt((dx * dx).sum() * (b * b).sum(axis=axis))

    result = stats.permutation_test((np.asarray(y, dtype=np.float64),), pearson, permutation_type="pairings",
                                    vectorized=True, n_resamples=BOOTSTRAP_RESAMPLES, alternative="two-sided",
                                    rng=np.random.default_rng(BOOTSTRAP_SEED))
    return float(result.pvalue)


def correlate(x: Sequence[float], y: Sequence[float], confidence: float = CONFIDENCE, *,
              task_level: bool = False) -> Correlation:
    """Pearson and Spearman correlation of paired points with intervals (module docstring); needs 4 points.

    ``task_level``: the points are tasks (independent units): add the task-permutation p.
    """
    x, y = _as_arrays(x, y)
    if len(x) < 4:
        raise FitError(f"a correlation interval needs at least 4 points, got {len(x)}")
    _need_spread(x, "x")
    _need_spread(y, "y")
    pearson = stats.pearsonr(x, y)
    interval = pearson.confidence_interval(confidence_level=confidence)
    spearman = stats.spearmanr(x, y)
    spearman_ci, note = spearman_interval(x, y, confidence)
    return Correlation(
        pearson=float(pearson.statistic),
        pearson_ci=(_finite(interval.low), _finite(interval.high)),
        pearson_p=float(pearson.pvalue),
        spearman=float(spearman.statistic),
        spearman_ci=spearman_ci,
        spearman_p=float(spearman.pvalue),
        n=len(x),
        confidence=confidence,
        note=note,
        permutation_p=permutation_p(x, y) if task_level else None,
    )


@dataclass(frozen=True)
class PartialCorrelation:
    """Pearson r of x and y after removing the linear effect of one covariate z from both."""

    r: float
    ci: Interval
    p_value: float
    n: int
    confidence: float
    covariate: str


def residuals(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``y`` minus its OLS fit on ``z`` (with intercept)."""
    fit = stats.linregress(z, y)
    return y - (fit.intercept + fit.slope * z)


def partial_correlation(
    x: Sequence[float], y: Sequence[float], z: Sequence[float], covariate: str = "z", confidence: float = CONFIDENCE
) -> PartialCorrelation:
    """Partial correlation r(x, y | z) with a Fisher interval (``1/sqrt(n-4)``) and t test (``n-3`` dof); needs 5 points."""
    x, y, z = _as_arrays(x, y, z)
    if len(x) < 5:
        raise FitError(f"a partial correlation interval needs at least 5 points, got {len(x)}")
    for values, name in ((x, "x"), (y, "y"), (z, covariate)):
        _need_spread(values, name)
    rx, ry = residuals(x, z), residuals(y, z)
    if np.allclose(rx, 0) or np.allclose(ry, 0):
        raise FitError(f"{covariate} explains x or y exactly: nothing is left to correlate")
    r = float(np.clip(stats.pearsonr(rx, ry).statistic, -1.0, 1.0))
    n = len(x)
    dof = n - 3
    t = r * math.sqrt(dof / max(1e-300, 1 - r * r))
    p_value = float(2 * stats.t.sf(abs(t), dof))
    half = stats.norm.ppf((1 + confidence) / 2) / math.sqrt(n - 4)
    centre = math.atanh(min(max(r, -1 + 1e-15), 1 - 1e-15))
    return PartialCorrelation(
        r=r,
        ci=(math.tanh(centre - half), math.tanh(centre + half)),
        p_value=p_value,
        n=n,
        confidence=confidence,
        covariate=covariate,
    )


@dataclass(frozen=True)
class Proportion:
    """k of n with a Clopper-Pearson interval."""

    k: int
    n: int
    fraction: float
    ci: Interval
    confidence: float


def proportion(k: int, n: int, confidence: float = CONFIDENCE) -> Proportion:
    if n < 1:
        raise FitError("a proportion of no runs")
    interval = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return Proportion(k=k, n=n, fraction=k / n, ci=(float(interval.low), float(interval.high)), confidence=confidence)


def group_codes(groups: Sequence[str], n_points: int) -> tuple[list[str], np.ndarray]:
    """(the groups in first-seen order, each point's index into them)."""
    if len(groups) != n_points:
        raise ValueError(f"{n_points} values but {len(groups)} group labels")
    keys = list(dict.fromkeys(groups))
    index = {key: i for i, key in enumerate(keys)}
    return keys, np.array([index[g] for g in groups], dtype=np.int64)


def group_means(values: Sequence[float], groups: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """(groups in first-seen order, the mean of each group's values): one point per group."""
    (values,) = _as_arrays(values)
    keys, codes = group_codes(groups, len(values))
    return keys, np.bincount(codes, weights=values, minlength=len(keys)) / np.bincount(codes, minlength=len(keys))


def weighted_pearson(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Pearson r of ``x``, ``y`` (n,) under each row of ``weights`` (B, n) (a point of weight 2 counts twice).

    NaN where x or y has no spread under the weights (less than 1e-12 of its unweighted variance).
    """
    total = weights.sum(axis=1)
    dx = x[None, :] - (weights @ x / total)[:, None]
    dy = y[None, :] - (weights @ y / total)[:, None]
    var_x, var_y = (weights * dx * dx).sum(1) / total, (weights * dy * dy).sum(1) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (weights * dx * dy).sum(1) / total / np.sqrt(var_x * var_y)
    undefined = (var_x <= 1e-12 * np.var(x)) | (var_y <= 1e-12 * np.var(y))
    return np.where(undefined, np.nan, np.clip(r, -1.0, 1.0))


def weighted_mean(v: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean of ``v`` (n,) under each row of ``weights`` (B, n)."""
    return (weights @ v) / weights.sum(axis=1)


@dataclass(frozen=True)
class GroupBootstrap:
    """A percentile interval from resampling whole groups (module docstring)."""

    ci: Interval
    n_groups: int
    n_points: int
    resamples: int
    undefined: int
    seed: int
    confidence: float
    note: str | None = None


def group_bootstrap(
    statistic, columns: Sequence[Sequence[float]], groups: Sequence[str], confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
) -> GroupBootstrap:
    """Percentile interval of ``statistic(*columns, weights)`` over resamples of whole groups.

    ``statistic`` takes the columns (each (n,)) and a (B, n) weight matrix whose row b counts how
    often each point's group was drawn in resample b (:func:`weighted_pearson`, :func:`weighted_mean`).
    Needs 2 groups.
    """
    arrays = _as_arrays(*columns)
    keys, codes = group_codes(groups, len(arrays[0]))
    if len(keys) < 2:
        raise FitError(f"a bootstrap over groups needs at least 2 groups, got {len(keys)}")
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(keys), size=(resamples, len(keys)))
    counts = np.zeros((resamples, len(keys)))
    np.add.at(counts, (np.repeat(np.arange(resamples), len(keys)), drawn.ravel()), 1.0)
    replicates = statistic(*arrays, counts[:, codes])
    defined = replicates[np.isfinite(replicates)]
    undefined = resamples - len(defined)
    common = dict(n_groups=len(keys), n_points=len(arrays[0]), resamples=resamples, undefined=undefined,
                  seed=seed, confidence=confidence)
    if undefined > MAX_UNDEFINED * resamples:
        return GroupBootstrap((None, None), **common,
                              note=f"no interval: the statistic is undefined in {undefined} of {resamples} resamples")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return GroupBootstrap((float(low), float(high)), **common)


@dataclass(frozen=True)
class Ratio:
    """``exp(mean log a - mean log b)`` with Welch's t interval (module docstring)."""

    ratio: float
    ci: Interval
    n_numerator: int
    n_denominator: int
    dof: float
    confidence: float


def geometric_mean_ratio(numerator: Sequence[float], denominator: Sequence[float], confidence: float = CONFIDENCE) -> Ratio:
    """Ratio of geometric means with a Welch t interval on the log scale; needs 2 positive values per side."""
    (a,), (b,) = _as_arrays(numerator), _as_arrays(denominator)
    if len(a) < 2 or len(b) < 2:
        raise FitError(f"a ratio interval needs at least 2 values on each side, got {len(a)} and {len(b)}")
    if np.any(a <= 0) or np.any(b <= 0):
        raise FitError("a ratio of geometric means needs positive values")
    la, lb = np.log(a), np.log(b)
    difference = float(la.mean() - lb.mean())
    if la.var() == 0 and lb.var() == 0:  # Welch's t is undefined; the ratio is exact
        return Ratio(math.exp(difference), (math.exp(difference),) * 2, len(a), len(b), math.inf, confidence)
    welch = stats.ttest_ind(la, lb, equal_var=False)
    interval = welch.confidence_interval(confidence_level=confidence)
    return Ratio(math.exp(difference), (math.exp(interval.low), math.exp(interval.high)), len(a), len(b),
                 float(welch.df), confidence)
