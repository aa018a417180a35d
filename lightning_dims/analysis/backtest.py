"""Backtest of the plan's two routes (:mod:`lightning_dims.analysis.plan`): predict a loss that was
measured, from data that did not include it, and count how often the 95 % interval covered it.

* **curve** (per task): the task's runs without its largest N; OLS of ``log L = c - alpha log N``
  over the rest (two sizes suffice when seeds give 3+ runs: ``n - 2`` d.o.f.); predicted
  ``log L`` at the largest N with the t interval of the **mean of the m held-out runs**:
  ``t_{n-2} s sqrt(1/m + 1/n + (x - mean x)^2 / Sxx)`` (the observed value is that mean, so it
  carries its runs' own noise ``s^2 / m`` as well as the fit's).
* **law** (leave one task out): both across-task random-effects fits
  (:func:`lightning_dims.analysis.plan.fit_laws`) on the other tasks; the held-out task's
  ``log L`` at its largest N from its own K_F and d_data
  (:func:`lightning_dims.analysis.plan.predict_log_loss`, a parametric draw with tau).

Observed: the geometric mean of the held-out runs' losses (the mean of their log L). Per row:
covered or not, and the relative error ``|L_pred - L_obs| / L_obs``. Per route: coverage k of n
with a Clopper-Pearson interval (:func:`lightning_dims.analysis.stats.proportion`; tasks are the
units) and the median relative error. A well-calibrated 95 % interval covers about 95 % of rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from lightning_dims.analysis.plan import LEVEL, LawPoint, fit_laws, predict_log_loss
from lightning_dims.analysis.stats import FitError, Proportion, fit_line, proportion

__all__ = ["BacktestRow", "RouteBacktest", "curve_backtest", "law_backtest", "summarise"]


@dataclass(frozen=True)
class BacktestRow:
    """One held-out prediction: loss (nats) at ``n`` predicted vs observed, or the reason there is none."""

    route: str
    task: str
    n: int
    predicted: float | None = None
    interval: tuple[float, float] | None = None
    observed: float | None = None
    covered: bool | None = None
    relative_error: float | None = None
    reason: str | None = None


def _row(route: str, task: str, n: int, log_pred: float, log_interval: tuple[float, float], log_obs: float) -> BacktestRow:
    predicted, observed = math.exp(log_pred), math.exp(log_obs)
    return BacktestRow(route, task, n, predicted, (math.exp(log_interval[0]), math.exp(log_interval[1])), observed,
                       bool(log_interval[0] <= log_obs <= log_interval[1]), abs(predicted - observed) / observed)


def curve_backtest(task: str, n: Sequence[int], losses: Sequence[float], level: float = LEVEL) -> BacktestRow:
    """Fit the task without its largest N and predict the mean log loss there (module docstring)."""
    n, losses = np.asarray(n, dtype=np.float64), np.asarray(losses, dtype=np.float64)
    largest = int(n.max())
    held, kept = n == largest, n < largest
    try:
        fit = fit_line(np.log(n[kept]), np.log(losses[kept]), confidence=level)
    except FitError as error:
        return BacktestRow("curve", task, largest, reason=f"without N = {largest}: {error}")
    x = math.log(largest)
    se = fit.residual_sd * math.sqrt(1 / held.sum() + 1 / fit.n + (x - fit.x_mean) ** 2 / fit.sxx)
    half = float(stats.t.ppf((1 + level) / 2, fit.n - 2)) * se
    mean = float(fit.predict(x))
    return _row("curve", task, largest, mean, (mean - half, mean + half), float(np.log(losses[held]).mean()))


def law_backtest(points: Sequence[LawPoint], held_out: Mapping[str, tuple[int, Sequence[float]]], centre_n: float,
                 largest_n: int, level: float = LEVEL) -> list[BacktestRow]:
    """For each task of ``held_out`` (task -> (its largest N, its runs' losses there)), the laws fitted on the
    other points predict its loss at that N from its K_F and d_data."""
    rows = []
    for point in points:
        if point.task not in held_out:
            continue
        n, losses = held_out[point.task]
        if not (point.k_f and point.d_data):
            rows.append(BacktestRow("law", point.task, n, reason="no K_F or d_data at the reference size"))
            continue
        try:
            laws = fit_laws([p for p in points if p.task != point.task], centre_n, largest_n)
        except FitError as error:
            rows.append(BacktestRow("law", point.task, n, reason=f"the law without it: {error}"))
            continue
        mean, interval = predict_log_loss(laws, point.k_f, point.d_data, n, level)
        rows.append(_row("law", point.task, n, mean, interval, float(np.mean(np.log(losses)))))
    return rows


@dataclass(frozen=True)
class RouteBacktest:
    """Coverage (tasks as units, Clopper-Pearson) and median relative error of one route's rows."""

    route: str
    coverage: Proportion | None
    median_relative_error: float | None
    rows: tuple[BacktestRow, ...]

    def to_json(self) -> dict:
        return {"route": self.route, "coverage": None if self.coverage is None else asdict(self.coverage),
                "median_relative_error": self.median_relative_error, "rows": [asdict(r) for r in self.rows]}


def summarise(route: str, rows: Sequence[BacktestRow]) -> RouteBacktest:
    scored = [r for r in rows if r.covered is not None]
    if not scored:
        return RouteBacktest(route, None, None, tuple(rows))
    return RouteBacktest(route, proportion(sum(r.covered for r in scored), len(scored)),
                         float(np.median([r.relative_error for r in scored])), tuple(rows))
