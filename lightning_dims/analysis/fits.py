"""The paper's laws as fits over finished runs (paper.md §3). Pure functions over plain rows.

Each row is one finished run: a mapping with at least ``domain``, ``arch``, ``dataset``,
``train_size`` (N), ``d_data``, ``label_sharpness`` (K_F), ``test_loss``, and optionally
``loss_penalty`` (FGSM attacked minus clean test loss at one eps) and ``d_repr`` (one layer).

Fits (the paper reports none; these are ours):

* Generalization, per group (domain, or domain and arch):
  ``log L = a + b * d_data`` (the paper's Fig. 1 trend: slope ``b`` steeper for medical) and
  ``log L = a' + s * (log N / d_data)`` (the law ``log L <= -(1/d) log N + log K_F + a``
  predicts ``s`` near -1). The intercept gap between two domains at fixed ``log N / d_data``
  is compared with ``log(mean K_F_medical / mean K_F_natural)``.
* Robustness: Pearson and Spearman correlation of loss penalty with K_F, with percentile
  bootstrap confidence intervals, pooled and per arch.
* Representations: the fraction of runs with ``d_repr <= d_data``.
* Planning: the training size needed for a target loss from a fitted law and a dataset's
  ``d_data``: ``N = exp(d_data * (log L_target - a') / s)``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class LineFit:
    """Ordinary least squares ``y = intercept + slope * x`` with the slope's standard error."""

    slope: float
    intercept: float
    slope_stderr: float
    r2: float
    n: int

    def predict(self, x: float | np.ndarray) -> float | np.ndarray:
        return self.intercept + self.slope * np.asarray(x)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Correlation:
    """Pearson and Spearman correlation with percentile bootstrap confidence intervals."""

    pearson: float
    pearson_ci: tuple[float, float]
    spearman: float
    spearman_ci: tuple[float, float]
    n: int
    confidence: float

    def to_dict(self) -> dict:
        return asdict(self)


def fit_line(x: Sequence[float], y: Sequence[float]) -> LineFit:
    """OLS fit of ``y`` on ``x``; needs at least 3 points with ``x`` not all equal."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d of equal length, got {x.shape} and {y.shape}")
    if len(x) < 3:
        raise ValueError(f"a line fit needs at least 3 runs, got {len(x)}")
    x_centred = x - x.mean()
    sxx = float(x_centred @ x_centred)
    if sxx == 0:
        raise ValueError("a line fit needs runs with different x values (all x are equal)")
    slope = float(x_centred @ (y - y.mean())) / sxx
    intercept = float(y.mean() - slope * x.mean())
    residuals = y - (intercept + slope * x)
    ss_res = float(residuals @ residuals)
    ss_tot = float((y - y.mean()) @ (y - y.mean()))
    stderr = math.sqrt(ss_res / (len(x) - 2) / sxx)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return LineFit(slope=slope, intercept=intercept, slope_stderr=stderr, r2=r2, n=len(x))


def ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean rank), 0-based."""
    order = np.argsort(values, kind="stable")
    ranked = np.empty(len(values), dtype=np.float64)
    ranked[order] = np.arange(len(values), dtype=np.float64)
    for value in np.unique(values):
        tied = values == value
        if tied.sum() > 1:
            ranked[tied] = ranked[tied].mean()
    return ranked


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / denominator if denominator > 0 else math.nan


def correlate(
    x: Sequence[float], y: Sequence[float], *, n_bootstrap: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Correlation:
    """Pearson and Spearman correlations with percentile bootstrap CIs (resampling runs)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 3:
        raise ValueError(f"a correlation needs at least 3 runs, got {len(x)}")
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(x), size=(n_bootstrap, len(x)))
    boot_pearson = np.array([pearson(x[s], y[s]) for s in samples])
    boot_spearman = np.array([pearson(ranks(x[s]), ranks(y[s])) for s in samples])
    tail = (1.0 - confidence) / 2 * 100

    def interval(values: np.ndarray) -> tuple[float, float]:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return (math.nan, math.nan)
        low, high = np.percentile(finite, [tail, 100 - tail])
        return (float(low), float(high))

    return Correlation(
        pearson=pearson(x, y),
        pearson_ci=interval(boot_pearson),
        spearman=pearson(ranks(x), ranks(y)),
        spearman_ci=interval(boot_spearman),
        n=len(x),
        confidence=confidence,
    )


def group_rows(rows: Iterable[Mapping], keys: Sequence[str]) -> dict[tuple, list[Mapping]]:
    """Rows grouped by the values of ``keys`` (an empty ``keys`` gives one group, ``()``)."""
    groups: dict[tuple, list[Mapping]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[key] for key in keys)].append(row)
    return dict(groups)


def usable(rows: Iterable[Mapping], fields: Sequence[str]) -> list[Mapping]:
    """Rows whose ``fields`` are all present, finite, and positive where logs are taken."""
    kept = []
    for row in rows:
        values = [row.get(field) for field in fields]
        if all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values):
            kept.append(row)
    return kept


def generalization_fits(rows: Iterable[Mapping], by: Sequence[str] = ("domain",)) -> dict[tuple, dict]:
    """Per group: ``log L`` against ``d_data`` and against ``log N / d_data`` (see module docstring).

    Groups with fewer than 3 usable runs or a single ``d_data`` value are skipped.
    """
    fits = {}
    for key, group in group_rows(usable(rows, ("test_loss", "d_data", "train_size")), by).items():
        log_loss = [math.log(r["test_loss"]) for r in group]
        entry = {"n_runs": len(group)}
        try:
            entry["log_loss_vs_d_data"] = fit_line([r["d_data"] for r in group], log_loss).to_dict()
            entry["log_loss_vs_log_n_over_d_data"] = fit_line(
                [math.log(r["train_size"]) / r["d_data"] for r in group], log_loss
            ).to_dict()
        except ValueError:
            continue
        k_f = [r["label_sharpness"] for r in group if r.get("label_sharpness")]
        entry["mean_label_sharpness"] = float(np.mean(k_f)) if k_f else None
        fits[key] = entry
    return fits


def domain_gap(fits: Mapping[tuple, dict], medical: tuple = ("medical",), natural: tuple = ("natural",)) -> dict | None:
    """Intercept gap of ``log L`` vs ``log N / d_data`` between two domains, beside ``log(K_F ratio)``.

    The law predicts the gap from ``log K_F``: ``gap ~ log(mean K_F_medical / mean K_F_natural)``.
    The gap is the difference of the intercepts (at ``log N / d_data = 0``); it is only
    meaningful when the two slopes are close, so both slopes are returned beside it.
    """
    if medical not in fits or natural not in fits:
        return None
    med, nat = (fits[medical]["log_loss_vs_log_n_over_d_data"], fits[natural]["log_loss_vs_log_n_over_d_data"])
    gap = med["intercept"] - nat["intercept"]
    k_med, k_nat = fits[medical]["mean_label_sharpness"], fits[natural]["mean_label_sharpness"]
    log_ratio = math.log(k_med / k_nat) if k_med and k_nat else None
    return {"intercept_gap": gap, "log_label_sharpness_ratio": log_ratio, "slopes": [med["slope"], nat["slope"]]}


def robustness_fits(rows: Iterable[Mapping], by: Sequence[str] = (), seed: int = 0) -> dict[tuple, dict]:
    """Correlation of the FGSM loss penalty with K_F, per group (``()`` pools all runs)."""
    out = {}
    candidates = [r for r in rows if isinstance(r.get("loss_penalty"), (int, float)) and math.isfinite(r["loss_penalty"])]
    for key, group in group_rows(usable(candidates, ("label_sharpness",)), by).items():
        if len(group) >= 3:
            out[key] = correlate(
                [r["label_sharpness"] for r in group], [r["loss_penalty"] for r in group], seed=seed
            ).to_dict()
    return out


def representation_summary(rows: Iterable[Mapping]) -> dict:
    """How often the learned representation's dimension stays under the data's: ``d_repr <= d_data``."""
    pairs = [(r["d_repr"], r["d_data"]) for r in usable(rows, ("d_repr", "d_data"))]
    if not pairs:
        return {"n_runs": 0, "fraction_below": None}
    below = sum(d_repr <= d_data for d_repr, d_data in pairs)
    return {"n_runs": len(pairs), "fraction_below": below / len(pairs)}


def required_training_size(law: Mapping, d_data: float, target_loss: float) -> float:
    """N at which the fitted ``log L = a' + s (log N / d_data)`` reaches ``target_loss``.

    ``law`` is a ``log_loss_vs_log_n_over_d_data`` fit; needs a negative slope ``s``.
    """
    slope, intercept = law["slope"], law["intercept"]
    if slope >= 0:
        raise ValueError(f"the fitted law does not decrease with N (slope {slope:.3g}); more data will not help it")
    if target_loss <= 0:
        raise ValueError(f"target_loss must be positive, got {target_loss}")
    return float(math.exp(d_data * (math.log(target_loss) - intercept) / slope))
